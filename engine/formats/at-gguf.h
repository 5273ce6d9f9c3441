/* at-gguf.h: GGUF v2 and v3 files (llama.cpp's single-file model format): the metadata
 * key/value pairs and the tensors, read from a memory mapping without copying any weight.
 *
 * Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata count, the
 * metadata pairs (string key, u32 value type, value), the tensor infos (string name, u32
 * n_dims, u64 ne[n_dims] innermost first, u32 ggml type, u64 offset into the data section),
 * then the data section, which starts at the end of the infos rounded up to
 * `general.alignment` (32 when absent). Strings are a u64 byte count and the bytes, with no
 * terminating NUL.
 *
 * Everything the file declares is checked before it is used (counts and lengths against the
 * bytes that remain and the AT_FILE_MAX_* limits, tensor spans against the data section,
 * overlaps between tensors, duplicate keys and names), and every failure is a GError in
 * AT_ERROR: AT_ERROR_BAD_FILE for a corrupt or hostile file, AT_ERROR_UNSUPPORTED for a valid
 * file Atelier cannot use (GGUF v1, a big-endian file, an IQ/TQ quantisation).
 *
 * Metadata values are views into the mapping: a string value is a pointer and a length, not
 * NUL-terminated, and may hold any bytes (keys are checked to be UTF-8). Array elements are
 * reached in O(1), strings included (their positions are recorded once while parsing).
 */
#pragma once

#include <json-glib/json-glib.h>

#include "at-file-tensors.h"

G_BEGIN_DECLS

/* Metadata value types, numbered as in the file. */
typedef enum
{
  AT_GGUF_TYPE_UINT8 = 0,
  AT_GGUF_TYPE_INT8,
  AT_GGUF_TYPE_UINT16,
  AT_GGUF_TYPE_INT16,
  AT_GGUF_TYPE_UINT32,
  AT_GGUF_TYPE_INT32,
  AT_GGUF_TYPE_FLOAT32,
  AT_GGUF_TYPE_BOOL,
  AT_GGUF_TYPE_STRING,
  AT_GGUF_TYPE_ARRAY,
  AT_GGUF_TYPE_UINT64,
  AT_GGUF_TYPE_INT64,
  AT_GGUF_TYPE_FLOAT64,
  AT_GGUF_N_TYPES
} AtGgufType;

/* How deeply arrays may nest (an array of arrays is depth 2). */
#define AT_GGUF_MAX_ARRAY_DEPTH AT_FILE_MAX_NESTING

typedef struct _AtGguf AtGguf;
/* One metadata pair, or one element of a nested array (which has no key). Owned by its
 * AtGguf. */
typedef struct _AtGgufKv AtGgufKv;

/* Maps and parses the file at `path`. What messages call it is its basename. A file that
 * cannot be opened or mapped gives the G_FILE_ERROR from GLib; a bad file an AT_ERROR. */
AtGguf *at_gguf_open (const char *path, GError **error);
/* Parses `bytes` (kept referenced as long as the result and its tensor set live); `file_name`
 * is what messages call the file. Empty bytes (NULL data) are a bad file, not a crash. */
AtGguf *at_gguf_new_from_bytes (GBytes *bytes, const char *file_name, GError **error);
void at_gguf_free (AtGguf *g);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtGguf, at_gguf_free)

const char *at_gguf_get_file_name (AtGguf *g);
/* 2 or 3. */
guint32 at_gguf_get_version (AtGguf *g);
/* `general.alignment`, or 32. */
guint32 at_gguf_get_alignment (AtGguf *g);
/* Byte offset of the data section in the file. In a file without tensors (a vocab-only file)
 * this may lie past the end of the file: such files often stop before the padding. */
guint64 at_gguf_get_data_offset (AtGguf *g);
/* The tensors, in file order, shapes outermost first (GGUF's `ne` reversed); `data` points
 * into the mapping, `offset` is the absolute file offset, `container` 0. Owned by `g` (it
 * keeps the mapping alive by itself, too). */
AtTensorSet *at_gguf_get_tensors (AtGguf *g);

/* Metadata pairs, in file order. */
guint at_gguf_get_n_kv (AtGguf *g);
const AtGgufKv *at_gguf_get_kv (AtGguf *g, guint i);
/* NULL when `key` is absent. */
const AtGgufKv *at_gguf_find_kv (AtGguf *g, const char *key);

/* "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64",
 * "f64"; "invalid" for anything else. */
const char *at_gguf_type_name (AtGgufType t);

/* The key (NUL-terminated, valid UTF-8); NULL for an element of a nested array. */
const char *at_gguf_kv_get_key (const AtGgufKv *kv);
AtGgufType at_gguf_kv_get_type (const AtGgufKv *kv);
/* For an ARRAY, its element type; AT_GGUF_N_TYPES for anything else. */
AtGgufType at_gguf_kv_get_array_type (const AtGgufKv *kv);
/* For an ARRAY, its element count; 0 for anything else. */
guint64 at_gguf_kv_get_array_length (const AtGgufKv *kv);

/* Scalar values. Each returns FALSE (and leaves `out` alone) when the value is not of a
 * fitting type. Integers: any integer type whose value fits in a gint64 (not bool). Floats:
 * f32, f64, and any integer type. Strings: a pointer into the mapping and the byte count,
 * NOT NUL-terminated; the _dup_ variant returns a NUL-terminated copy (NULL when not a
 * string; the copy holds whatever bytes the file has, embedded NULs included). */
gboolean at_gguf_kv_get_int (const AtGgufKv *kv, gint64 *out);
gboolean at_gguf_kv_get_float (const AtGgufKv *kv, double *out);
gboolean at_gguf_kv_get_bool (const AtGgufKv *kv, gboolean *out);
gboolean at_gguf_kv_get_string (const AtGgufKv *kv, const char **str, gsize *len);
char *at_gguf_kv_dup_string (const AtGgufKv *kv);

/* Element `i` of an array, in O(1), with the same type rules as the scalar getters; FALSE
 * when `kv` is not an array, `i` is out of range or the element type does not fit. */
gboolean at_gguf_kv_array_get_int (const AtGgufKv *kv, guint64 i, gint64 *out);
gboolean at_gguf_kv_array_get_float (const AtGgufKv *kv, guint64 i, double *out);
gboolean at_gguf_kv_array_get_bool (const AtGgufKv *kv, guint64 i, gboolean *out);
gboolean at_gguf_kv_array_get_string (const AtGgufKv *kv, guint64 i, const char **str, gsize *len);
char *at_gguf_kv_array_dup_string (const AtGgufKv *kv, guint64 i);
/* Element `i` of an array of arrays (itself an ARRAY kv without a key); NULL otherwise. */
const AtGgufKv *at_gguf_kv_array_get_array (const AtGgufKv *kv, guint64 i);

/* Typed getters by key. A missing key, or a value of another type, is an AT_ERROR_BAD_FILE
 * naming the file, the key and the type found. at_gguf_get_float accepts integers too. */
gboolean at_gguf_get_int (AtGguf *g, const char *key, gint64 *out, GError **error);
gboolean at_gguf_get_float (AtGguf *g, const char *key, double *out, GError **error);
gboolean at_gguf_get_bool (AtGguf *g, const char *key, gboolean *out, GError **error);
char *at_gguf_dup_string (AtGguf *g, const char *key, GError **error);

/* The value as JSON, for display (`atelier models inspect`). Integers as JSON integers (a u64
 * above 2^63 - 1 as a double), floats as doubles (NaN and infinities, which JSON lacks, as
 * the strings "nan", "inf", "-inf"), strings made valid UTF-8. An array of more than
 * `max_items` elements (0: no limit) becomes {"type": "array", "element_type": "string",
 * "length": N, "first": [the first max_items elements]}; nested arrays follow the same rule. */
JsonNode *at_gguf_kv_to_json (const AtGgufKv *kv, guint max_items);

G_END_DECLS
