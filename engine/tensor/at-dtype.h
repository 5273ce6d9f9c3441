/* at-dtype.h: element types, and the GGUF block-quantised weight formats.
 *
 * Block layouts follow the GGUF file format (ggml's block_q8_0, block_q4_K, ...): a block of
 * `block_size` elements stored in `type_size` bytes, little-endian, scales in IEEE half.
 * Quantised types are weight storage only: ops read them (dequantising in the shader) and
 * never write them.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  AT_DTYPE_F32,
  AT_DTYPE_F16,
  AT_DTYPE_BF16,
  AT_DTYPE_I32,
  AT_DTYPE_Q8_0,
  AT_DTYPE_Q4_0,
  AT_DTYPE_Q4_1,
  AT_DTYPE_Q5_0,
  AT_DTYPE_Q5_1,
  AT_DTYPE_Q4_K,
  AT_DTYPE_Q5_K,
  AT_DTYPE_Q6_K,
  AT_N_DTYPES
} AtDtype;

typedef struct
{
  const char *name;     /* "f32", "q4_K", ... as GGUF spells them */
  guint block_size;     /* elements per block (1 for plain types) */
  guint type_size;      /* bytes per block */
  gboolean quantized;
} AtDtypeInfo;

const AtDtypeInfo *at_dtype_info (AtDtype dtype);
const char *at_dtype_name (AtDtype dtype);
/* AT_N_DTYPES when `name` is none of them. */
AtDtype at_dtype_from_name (const char *name);
/* Bytes for a row of `n` elements; 0 if `n` is not a multiple of the block size. */
gsize at_dtype_row_bytes (AtDtype dtype, gint64 n);

/* IEEE half and bfloat16, round to nearest even. */
float at_f16_to_f32 (guint16 h);
guint16 at_f32_to_f16 (float f);
float at_bf16_to_f32 (guint16 h);
guint16 at_f32_to_bf16 (float f);

/* Reference conversions, used by the C reference ops and the tests.
 * `n` must be a multiple of the block size. */
void at_dequantize_row (AtDtype dtype, const void *src, float *dst, gint64 n);
/* Quantise with a simple round-to-nearest per block (not llama.cpp's search): enough to make
 * valid blocks for tests and benchmarks. */
void at_quantize_row (AtDtype dtype, const float *src, void *dst, gint64 n);

G_END_DECLS
