/* at-file-tensors.h: what every model-file parser produces — the tensors a file holds, as
 * the file stores them, and the checks and limits every parser applies to what it reads.
 *
 * A parser (GGUF, safetensors, PyTorch zip, ml5 manifest) never copies weights: each entry
 * either points into the file's memory mapping (`data`) or, for a tensor inside a compressed
 * or unmappable container, names a reader that fetches its bytes on demand. Shapes are
 * outermost first as everywhere in the engine (GGUF's innermost-first `ne` is reversed), and
 * strides are in elements: contiguous for every format except PyTorch, whose saved tensors
 * may be views (a transposed weight, a slice of a shared storage).
 *
 * Everything sized by a file goes through the checked helpers here, and every failure is a
 * GError in AT_ERROR / AT_ERROR_BAD_FILE whose message starts with the file's name.
 */
#pragma once

#include <glib.h>

#include "at-dtype.h"
#include "gpu/at-buffer.h"

G_BEGIN_DECLS

/* Limits on what a file may declare. Real models stay far below them (the largest known
 * checkpoints hold ~2,000 tensors, names under 200 bytes, vocabularies under 300,000 tokens). */
#define AT_FILE_MAX_DIMS 8
#define AT_FILE_MAX_TENSORS (1u << 20)
#define AT_FILE_MAX_NAME 4096                     /* bytes in a tensor name or metadata key */
#define AT_FILE_MAX_STRING (G_GUINT64_CONSTANT (1) << 26) /* bytes in one string value */
#define AT_FILE_MAX_ARRAY (G_GUINT64_CONSTANT (1) << 26)  /* elements in one array value */
#define AT_FILE_MAX_METADATA (1u << 20)           /* metadata entries */
#define AT_FILE_MAX_HEADER (G_GUINT64_CONSTANT (1) << 30) /* bytes of a JSON header or pickle */
#define AT_FILE_MAX_DIM (G_GINT64_CONSTANT (1) << 40)     /* one dimension */
#define AT_FILE_MAX_ELEMENTS (G_GINT64_CONSTANT (1) << 42) /* elements of one tensor */
#define AT_FILE_MAX_NESTING 64                    /* JSON / pickle container depth */

/* Element types as files store them: every safetensors dtype, the GGUF tensor types the engine
 * knows, and what PyTorch storages hold. Names are spelled as the file formats spell them. */
typedef enum
{
  AT_FILE_DTYPE_F64,
  AT_FILE_DTYPE_F32,
  AT_FILE_DTYPE_F16,
  AT_FILE_DTYPE_BF16,
  AT_FILE_DTYPE_I64,
  AT_FILE_DTYPE_I32,
  AT_FILE_DTYPE_I16,
  AT_FILE_DTYPE_I8,
  AT_FILE_DTYPE_U8,
  AT_FILE_DTYPE_BOOL,
  AT_FILE_DTYPE_F8_E4M3,
  AT_FILE_DTYPE_F8_E5M2,
  AT_FILE_DTYPE_Q8_0,
  AT_FILE_DTYPE_Q4_0,
  AT_FILE_DTYPE_Q4_1,
  AT_FILE_DTYPE_Q5_0,
  AT_FILE_DTYPE_Q5_1,
  AT_FILE_DTYPE_Q2_K,
  AT_FILE_DTYPE_Q3_K,
  AT_FILE_DTYPE_Q4_K,
  AT_FILE_DTYPE_Q5_K,
  AT_FILE_DTYPE_Q6_K,
  AT_N_FILE_DTYPES
} AtFileDtype;

typedef struct
{
  const char *name;      /* "F32", "BF16", "F8_E4M3", "Q4_K" */
  guint block_size;      /* elements per block (1 for plain types) */
  guint type_size;       /* bytes per block */
  /* The engine dtype the data is used as without conversion, or AT_N_DTYPES when it must be
   * converted on upload (see at_file_dtype_upload_dtype). */
  AtDtype engine_dtype;
} AtFileDtypeInfo;

const AtFileDtypeInfo *at_file_dtype_info (AtFileDtype dtype);
const char *at_file_dtype_name (AtFileDtype dtype);
/* Case-insensitive; AT_N_FILE_DTYPES when unknown. */
AtFileDtype at_file_dtype_from_name (const char *name);
/* What the engine holds this type as after upload: itself when the engine has it, f32 for
 * f64 / 8-bit floats / small integers / Q2_K / Q3_K, i32 for i64. */
AtDtype at_file_dtype_upload_dtype (AtFileDtype dtype);

typedef struct _AtTensorSet AtTensorSet;

typedef struct
{
  char *name;
  AtFileDtype dtype;
  int ndim;
  gint64 shape[AT_FILE_MAX_DIMS];  /* outermost first */
  gint64 stride[AT_FILE_MAX_DIMS]; /* elements; contiguous unless the format has views */
  gint64 numel;
  /* Where the bytes are: `container` is the file of a sharded set, the zip member of a
   * PyTorch archive, the variable file of an ml5 folder (parser-defined, shown by inspect);
   * `offset` is the byte offset of element 0 in it; `nbytes` the bytes the tensor spans. */
  guint container;
  guint64 offset;
  guint64 nbytes;
  /* The bytes in the mapping, or NULL when only the set's reader can fetch them. */
  const guint8 *data;
} AtTensorEntry;

/* Fetches `size` bytes at byte `offset` of `entry`'s span (offset + size <= nbytes). */
typedef gboolean (*AtTensorReadFunc) (gpointer user_data, const AtTensorEntry *entry, guint64 offset,
                                      void *dst, gsize size, GError **error);

/* `file_name` is what messages call the file (its basename, usually). */
AtTensorSet *at_tensor_set_new (const char *file_name);
void at_tensor_set_free (AtTensorSet *set);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtTensorSet, at_tensor_set_free)

const char *at_tensor_set_get_file_name (AtTensorSet *set);
/* For formats whose bytes are not all mapped (zip members). `user_data` outlives the set or is
 * freed with `destroy`. */
void at_tensor_set_set_reader (AtTensorSet *set, AtTensorReadFunc read, gpointer user_data,
                               GDestroyNotify destroy);
/* Keeps `owner` (a GBytes of the mapping, say) alive as long as the set. */
void at_tensor_set_take_owner (AtTensorSet *set, gpointer owner, GDestroyNotify destroy);

/* Adds a tensor after checking it: a name of 1..AT_FILE_MAX_NAME bytes, valid UTF-8, not seen
 * before in this set; 0 <= ndim <= AT_FILE_MAX_DIMS; every dimension in [0, AT_FILE_MAX_DIM];
 * the element count within AT_FILE_MAX_ELEMENTS; for block types the innermost dimension a
 * multiple of the block size. `stride` may be NULL (contiguous). Computes numel and nbytes
 * (the span the strides reach); `data` may be NULL. The returned entry belongs to the set and
 * stays valid until the set is freed (the caller may then fill container/offset/data).
 * `name` need not be NUL-terminated: `name_len` bytes are taken. */
AtTensorEntry *at_tensor_set_add (AtTensorSet *set, const char *name, gsize name_len,
                                  AtFileDtype dtype, int ndim, const gint64 *shape,
                                  const gint64 *stride, GError **error);

guint at_tensor_set_get_n_tensors (AtTensorSet *set);
/* In file order. */
const AtTensorEntry *at_tensor_set_get (AtTensorSet *set, guint index);
const AtTensorEntry *at_tensor_set_find (AtTensorSet *set, const char *name);
/* Total bytes per dtype, into `bytes[AT_N_FILE_DTYPES]`. */
void at_tensor_set_bytes_by_dtype (AtTensorSet *set, guint64 *bytes);

gboolean at_tensor_entry_is_contiguous (const AtTensorEntry *entry);
/* "[3, 5]"; a negative size (an expectation's wildcard) prints as "*". */
char *at_file_shape_string (int ndim, const gint64 *shape);

/* Copies `size` bytes of the entry's span from `offset` (from the mapping, or via the
 * reader). */
gboolean at_tensor_set_read (AtTensorSet *set, const AtTensorEntry *entry, guint64 offset,
                             void *dst, gsize size, GError **error);
/* The whole tensor, contiguous, converted to f32 (dequantised, gathered through strides):
 * numel floats into `dst`. */
gboolean at_tensor_set_read_f32 (AtTensorSet *set, const AtTensorEntry *entry, float *dst,
                                 GError **error);

/* Uploading to the GPU. The engine holds a tensor as at_file_dtype_upload_dtype (entry->dtype):
 * types the engine has are copied straight from the mapping (or streamed through the reader);
 * the rest are converted on the way in chunks (f64 / 8-bit floats / small integers / Q2_K / Q3_K
 * to f32; i64 to i32, refusing values outside its range). Strided views are gathered into the
 * contiguous layout. `at_tensor_entry_upload_size` is the bytes that takes. */
gsize at_tensor_entry_upload_size (const AtTensorEntry *entry);
gboolean at_tensor_set_upload (AtTensorSet *set, const AtTensorEntry *entry, AtBuffer *buffer, gsize offset,
                               GError **error);

/* Errors: "FILE: message" in AT_ERROR / AT_ERROR_BAD_FILE (code given for _code). */
void at_file_error (GError **error, const char *file_name, const char *format, ...) G_GNUC_PRINTF (3, 4);
void at_file_error_code (GError **error, int code, const char *file_name, const char *format, ...)
  G_GNUC_PRINTF (4, 5);

/* Overflow-checked arithmetic on sizes read from files: FALSE on overflow. */
static inline gboolean
at_checked_add (guint64 a, guint64 b, guint64 *out)
{
  return g_uint64_checked_add (out, a, b);
}

static inline gboolean
at_checked_mul (guint64 a, guint64 b, guint64 *out)
{
  return g_uint64_checked_mul (out, a, b);
}

/* A bounded little-endian reader over untrusted bytes: every read checks the remaining length
 * and fails (sets `failed`) instead of reading past the end. */
typedef struct
{
  const guint8 *data;
  gsize size;
  gsize pos;
  gboolean failed;
} AtByteReader;

void at_byte_reader_init (AtByteReader *r, const guint8 *data, gsize size);
gboolean at_byte_reader_skip (AtByteReader *r, gsize n);
gboolean at_byte_reader_u8 (AtByteReader *r, guint8 *out);
gboolean at_byte_reader_u16 (AtByteReader *r, guint16 *out);
gboolean at_byte_reader_u32 (AtByteReader *r, guint32 *out);
gboolean at_byte_reader_u64 (AtByteReader *r, guint64 *out);
/* A pointer to the next `n` bytes (no copy), advancing past them. */
gboolean at_byte_reader_bytes (AtByteReader *r, gsize n, const guint8 **out);

G_END_DECLS
