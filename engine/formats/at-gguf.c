/* at-gguf.c: the GGUF v2/v3 reader (layout in at-gguf.h).
 *
 * Reference: the GGUF format description (ggml's docs/gguf.md) for the layout and the ggml
 * type numbers; the code is our own.
 *
 * The file is hostile until proven otherwise. Traps worth remembering:
 * - v1 stored counts and string lengths as u32; v2 made them u64 (v3 only added big-endian
 *   files, which read here as versions like 0x03000000). v2 and v3 parse identically.
 * - A count must be checked against the bytes that remain before anything is allocated for
 *   it: a 40-byte file can claim 2^60 tensors.
 * - `ne[0]` is the innermost dimension; our shapes are outermost first, so it is reversed.
 * - Vocab-only files (tokenizers) end right after the metadata without the padding that would
 *   start the data section, so with no tensors the data offset may lie past the end.
 * - Tensor offsets are relative to the data section, must be multiples of the alignment, and
 *   nothing in the format stops two tensors from claiming the same bytes: sort and check.
 */
#include "at-gguf.h"

#include <math.h>
#include <string.h>

#include "at-error.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
/* Bytes the smallest metadata pair (empty key length, type, u8) and tensor info (name length,
 * n_dims, type, offset) take: n of them need at least n times this. */
#define GGUF_MIN_KV_BYTES (8 + 4 + 1)
#define GGUF_MIN_TENSOR_BYTES (8 + 4 + 4 + 8)
/* An array element that is itself an array: element type and count. */
#define GGUF_MIN_ARRAY_BYTES (4 + 8)

struct _AtGgufKv
{
  char *key; /* NULL for an element of a nested array */
  AtGgufType type;
  AtGgufType array_type; /* ARRAY only; AT_GGUF_N_TYPES otherwise */
  guint64 length; /* ARRAY: elements; STRING: bytes */
  const guint8 *value; /* the scalar's bytes, the string's bytes, or the first element */
  const guint8 **strings; /* ARRAY of STRING: each element's u64 length, its bytes follow */
  AtGgufKv *items; /* ARRAY of ARRAY: `length` nested arrays */
};

struct _AtGguf
{
  char *file_name;
  GBytes *bytes;
  guint32 version;
  guint32 alignment;
  guint64 data_offset;
  AtGgufKv *kvs; /* n_kv, file order; zero-filled beyond what parsed */
  guint n_kv;
  GHashTable *kv_by_key; /* key -> AtGgufKv* (keys owned by the kvs) */
  AtTensorSet *tensors;
};

/* Bytes of one value of each fixed-size type; 0 for STRING and ARRAY. */
static const guint8 value_size[AT_GGUF_N_TYPES] = {
  [AT_GGUF_TYPE_UINT8] = 1,   [AT_GGUF_TYPE_INT8] = 1,    [AT_GGUF_TYPE_UINT16] = 2,
  [AT_GGUF_TYPE_INT16] = 2,   [AT_GGUF_TYPE_UINT32] = 4,  [AT_GGUF_TYPE_INT32] = 4,
  [AT_GGUF_TYPE_FLOAT32] = 4, [AT_GGUF_TYPE_BOOL] = 1,    [AT_GGUF_TYPE_UINT64] = 8,
  [AT_GGUF_TYPE_INT64] = 8,   [AT_GGUF_TYPE_FLOAT64] = 8,
};

static const char *const type_names[AT_GGUF_N_TYPES] = {
  "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

/* ggml tensor types by id. `dtype` is -1 for a type Atelier does not read; `removed` marks ids
 * that ggml retired (old files may still hold them). */
typedef struct
{
  const char *name;
  int dtype;
  gboolean removed;
} GgmlType;

static const GgmlType ggml_types[] = {
  [0] = { "F32", AT_FILE_DTYPE_F32, FALSE },
  [1] = { "F16", AT_FILE_DTYPE_F16, FALSE },
  [2] = { "Q4_0", AT_FILE_DTYPE_Q4_0, FALSE },
  [3] = { "Q4_1", AT_FILE_DTYPE_Q4_1, FALSE },
  [4] = { "Q4_2", -1, TRUE },
  [5] = { "Q4_3", -1, TRUE },
  [6] = { "Q5_0", AT_FILE_DTYPE_Q5_0, FALSE },
  [7] = { "Q5_1", AT_FILE_DTYPE_Q5_1, FALSE },
  [8] = { "Q8_0", AT_FILE_DTYPE_Q8_0, FALSE },
  [9] = { "Q8_1", -1, FALSE },
  [10] = { "Q2_K", AT_FILE_DTYPE_Q2_K, FALSE },
  [11] = { "Q3_K", AT_FILE_DTYPE_Q3_K, FALSE },
  [12] = { "Q4_K", AT_FILE_DTYPE_Q4_K, FALSE },
  [13] = { "Q5_K", AT_FILE_DTYPE_Q5_K, FALSE },
  [14] = { "Q6_K", AT_FILE_DTYPE_Q6_K, FALSE },
  [15] = { "Q8_K", -1, FALSE },
  [16] = { "IQ2_XXS", -1, FALSE },
  [17] = { "IQ2_XS", -1, FALSE },
  [18] = { "IQ3_XXS", -1, FALSE },
  [19] = { "IQ1_S", -1, FALSE },
  [20] = { "IQ4_NL", -1, FALSE },
  [21] = { "IQ3_S", -1, FALSE },
  [22] = { "IQ2_S", -1, FALSE },
  [23] = { "IQ4_XS", -1, FALSE },
  [24] = { "I8", AT_FILE_DTYPE_I8, FALSE },
  [25] = { "I16", AT_FILE_DTYPE_I16, FALSE },
  [26] = { "I32", AT_FILE_DTYPE_I32, FALSE },
  [27] = { "I64", AT_FILE_DTYPE_I64, FALSE },
  [28] = { "F64", AT_FILE_DTYPE_F64, FALSE },
  [29] = { "IQ1_M", -1, FALSE },
  [30] = { "BF16", AT_FILE_DTYPE_BF16, FALSE },
  [31] = { "Q4_0_4_4", -1, TRUE },
  [32] = { "Q4_0_4_8", -1, TRUE },
  [33] = { "Q4_0_8_8", -1, TRUE },
  [34] = { "TQ1_0", -1, FALSE },
  [35] = { "TQ2_0", -1, FALSE },
};

typedef struct
{
  AtByteReader r;
  const char *file_name;
  const char *key; /* the metadata key being read, for messages */
} Parser;

static guint16
le16 (const guint8 *p)
{
  return (guint16) (p[0] | (p[1] << 8));
}

static guint32
le32 (const guint8 *p)
{
  return (guint32) p[0] | ((guint32) p[1] << 8) | ((guint32) p[2] << 16) | ((guint32) p[3] << 24);
}

static guint64
le64 (const guint8 *p)
{
  return (guint64) le32 (p) | ((guint64) le32 (p + 4) << 32);
}

/* A name or key for messages: valid UTF-8, escaped, at most 200 bytes of it. */
static char *
shown (const guint8 *s, gsize len)
{
  g_autofree char *valid = g_utf8_make_valid ((const char *) s, (gssize) MIN (len, 200));

  return g_strescape (valid, NULL);
}

static gsize
remaining (Parser *p)
{
  return p->r.size - p->r.pos;
}

static gboolean
fail_truncated (Parser *p, const char *what, GError **error)
{
  at_file_error (error, p->file_name,
                 "the file ends inside %s (at byte %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT ")",
                 what, p->r.pos, p->r.size);
  return FALSE;
}

static gboolean
read_u32 (Parser *p, guint32 *out, const char *what, GError **error)
{
  return at_byte_reader_u32 (&p->r, out) || fail_truncated (p, what, error);
}

static gboolean
read_u64 (Parser *p, guint64 *out, const char *what, GError **error)
{
  return at_byte_reader_u64 (&p->r, out) || fail_truncated (p, what, error);
}

/* A u64 length and that many bytes, at most `max`. */
static gboolean
read_string (Parser *p, guint64 max, const char *what, const guint8 **str, guint64 *len,
             GError **error)
{
  gsize at = p->r.pos;

  if (!read_u64 (p, len, what, error))
    return FALSE;
  if (*len > max)
    {
      at_file_error (error, p->file_name,
                     "%s at byte %" G_GSIZE_FORMAT " is %" G_GUINT64_FORMAT
                     " bytes long (at most %" G_GUINT64_FORMAT ")",
                     what, at, *len, max);
      return FALSE;
    }
  if (*len > remaining (p))
    {
      at_file_error (error, p->file_name,
                     "%s at byte %" G_GSIZE_FORMAT " (%" G_GUINT64_FORMAT
                     " bytes) runs past the end of the file",
                     what, at, *len);
      return FALSE;
    }
  return at_byte_reader_bytes (&p->r, (gsize) *len, str);
}

static void
kv_clear (AtGgufKv *kv)
{
  g_free (kv->key);
  g_free (kv->strings);
  if (kv->items != NULL)
    {
      /* Depth is bounded by AT_GGUF_MAX_ARRAY_DEPTH: parsing built no deeper. */
      for (guint64 i = 0; i < kv->length; i++)
        kv_clear (&kv->items[i]);
      g_free (kv->items);
    }
}

static gboolean read_array (Parser *p, AtGgufKv *kv, guint depth, GError **error);

/* A value of `type` (already checked to be a known type) into `kv`. `depth` counts the arrays
 * around it. */
static gboolean
read_value (Parser *p, AtGgufKv *kv, AtGgufType type, guint depth, GError **error)
{
  g_autofree char *what = NULL;

  kv->type = type;
  kv->array_type = AT_GGUF_N_TYPES;
  if (type == AT_GGUF_TYPE_ARRAY)
    return read_array (p, kv, depth + 1, error);
  if (type == AT_GGUF_TYPE_STRING)
    {
      what = g_strdup_printf ("the string value of metadata key \"%s\"", p->key);
      return read_string (p, AT_FILE_MAX_STRING, what, &kv->value, &kv->length, error);
    }
  if (!at_byte_reader_bytes (&p->r, value_size[type], &kv->value))
    {
      what = g_strdup_printf ("the value of metadata key \"%s\"", p->key);
      return fail_truncated (p, what, error);
    }
  if (type == AT_GGUF_TYPE_BOOL && kv->value[0] > 1)
    {
      at_file_error (error, p->file_name,
                     "metadata key \"%s\" is a bool of value %u (0 or 1 allowed)", p->key,
                     kv->value[0]);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_string_elements (Parser *p, AtGgufKv *kv, GError **error)
{
  g_autofree char *what = g_strdup_printf ("a string in the array of metadata key \"%s\"", p->key);

  if (kv->length == 0)
    return TRUE;
  kv->strings = g_try_new (const guint8 *, kv->length);
  if (kv->strings == NULL)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_OUT_OF_HOST_MEMORY,
                   "%s: no memory for the %" G_GUINT64_FORMAT " strings of metadata key \"%s\"",
                   p->file_name, kv->length, p->key);
      return FALSE;
    }
  for (guint64 i = 0; i < kv->length; i++)
    {
      const guint8 *s;
      guint64 len;

      kv->strings[i] = p->r.data + p->r.pos;
      if (!read_string (p, AT_FILE_MAX_STRING, what, &s, &len, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
read_array_elements (Parser *p, AtGgufKv *kv, guint depth, GError **error)
{
  if (kv->length == 0)
    return TRUE;
  kv->items = g_try_new0 (AtGgufKv, kv->length);
  if (kv->items == NULL)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_OUT_OF_HOST_MEMORY,
                   "%s: no memory for the %" G_GUINT64_FORMAT " arrays of metadata key \"%s\"",
                   p->file_name, kv->length, p->key);
      kv->length = 0;
      return FALSE;
    }
  for (guint64 i = 0; i < kv->length; i++)
    if (!read_array (p, &kv->items[i], depth + 1, error))
      return FALSE;
  return TRUE;
}

/* An array (element type, count, elements) at nesting `depth` (1 for a metadata value). */
static gboolean
read_array (Parser *p, AtGgufKv *kv, guint depth, GError **error)
{
  g_autofree char *what = g_strdup_printf ("the array of metadata key \"%s\"", p->key);
  guint32 etype;
  guint64 count, min_bytes, need;

  kv->type = AT_GGUF_TYPE_ARRAY;
  kv->array_type = AT_GGUF_N_TYPES;
  if (depth > AT_GGUF_MAX_ARRAY_DEPTH)
    {
      at_file_error (error, p->file_name, "metadata key \"%s\" nests arrays more than %d deep",
                     p->key, AT_GGUF_MAX_ARRAY_DEPTH);
      return FALSE;
    }
  if (!read_u32 (p, &etype, what, error) || !read_u64 (p, &count, what, error))
    return FALSE;
  if (etype >= AT_GGUF_N_TYPES)
    {
      at_file_error (error, p->file_name,
                     "metadata key \"%s\" is an array of unknown value type %u", p->key, etype);
      return FALSE;
    }
  min_bytes = etype == AT_GGUF_TYPE_STRING  ? 8
              : etype == AT_GGUF_TYPE_ARRAY ? GGUF_MIN_ARRAY_BYTES
                                            : value_size[etype];
  if (count > AT_FILE_MAX_ARRAY)
    {
      at_file_error (error, p->file_name,
                     "metadata key \"%s\" has an array of %" G_GUINT64_FORMAT
                     " elements (at most %" G_GUINT64_FORMAT ")",
                     p->key, count, AT_FILE_MAX_ARRAY);
      return FALSE;
    }
  if (!at_checked_mul (count, min_bytes, &need) || need > remaining (p))
    {
      at_file_error (error, p->file_name,
                     "the array of metadata key \"%s\" declares %" G_GUINT64_FORMAT
                     " %s elements, more than the %" G_GSIZE_FORMAT " bytes left can hold",
                     p->key, count, type_names[etype], remaining (p));
      return FALSE;
    }
  kv->array_type = etype;
  kv->length = count;
  if (etype == AT_GGUF_TYPE_STRING)
    return read_string_elements (p, kv, error);
  if (etype == AT_GGUF_TYPE_ARRAY)
    return read_array_elements (p, kv, depth, error);
  at_byte_reader_bytes (&p->r, (gsize) need, &kv->value);
  if (etype == AT_GGUF_TYPE_BOOL)
    for (guint64 i = 0; i < count; i++)
      if (kv->value[i] > 1)
        {
          at_file_error (error, p->file_name,
                         "element %" G_GUINT64_FORMAT
                         " of bool array \"%s\" is %u (0 or 1 allowed)",
                         i, p->key, kv->value[i]);
          return FALSE;
        }
  return TRUE;
}

static gboolean
parse_header (Parser *p, AtGguf *g, guint64 *n_tensors, guint64 *n_kv, GError **error)
{
  const guint8 *magic;
  guint64 need_kv, need_tensors, need;

  if (!at_byte_reader_bytes (&p->r, 4, &magic))
    {
      at_file_error (error, p->file_name,
                     "the file is too short to be a GGUF file (%" G_GSIZE_FORMAT " bytes)",
                     p->r.size);
      return FALSE;
    }
  if (memcmp (magic, "GGUF", 4) != 0)
    {
      at_file_error (error, p->file_name,
                     "not a GGUF file: it starts with %02x %02x %02x %02x, not \"GGUF\"", magic[0],
                     magic[1], magic[2], magic[3]);
      return FALSE;
    }
  if (!read_u32 (p, &g->version, "the header", error))
    return FALSE;
  if (g->version == 1)
    {
      at_file_error_code (
          error, AT_ERROR_UNSUPPORTED, p->file_name,
          "GGUF v1 is not supported (convert the model again with a current llama.cpp)");
      return FALSE;
    }
  /* A big-endian writer stores the version byte-swapped too: 3 reads as 0x03000000. */
  if ((g->version & 0xffff) == 0 && GUINT32_SWAP_LE_BE (g->version) <= 3)
    {
      at_file_error_code (
          error, AT_ERROR_UNSUPPORTED, p->file_name,
          "a big-endian GGUF file (version %u byte-swapped), which Atelier does not read",
          GUINT32_SWAP_LE_BE (g->version));
      return FALSE;
    }
  if (g->version != 2 && g->version != 3)
    {
      at_file_error_code (error, AT_ERROR_UNSUPPORTED, p->file_name,
                          "GGUF version %u is not supported (Atelier reads versions 2 and 3)",
                          g->version);
      return FALSE;
    }
  if (!read_u64 (p, n_tensors, "the header", error) || !read_u64 (p, n_kv, "the header", error))
    return FALSE;
  if (*n_tensors > AT_FILE_MAX_TENSORS)
    {
      at_file_error (error, p->file_name,
                     "the header declares %" G_GUINT64_FORMAT " tensors (at most %u)", *n_tensors,
                     AT_FILE_MAX_TENSORS);
      return FALSE;
    }
  if (*n_kv > AT_FILE_MAX_METADATA)
    {
      at_file_error (error, p->file_name,
                     "the header declares %" G_GUINT64_FORMAT " metadata pairs (at most %u)", *n_kv,
                     AT_FILE_MAX_METADATA);
      return FALSE;
    }
  /* Both counts are below 2^21 here: no overflow. */
  need_kv = *n_kv * GGUF_MIN_KV_BYTES;
  need_tensors = *n_tensors * GGUF_MIN_TENSOR_BYTES;
  need = need_kv + need_tensors;
  if (need > remaining (p))
    {
      at_file_error (error, p->file_name,
                     "the header declares %" G_GUINT64_FORMAT
                     " metadata pairs and %" G_GUINT64_FORMAT
                     " tensors, more than the %" G_GSIZE_FORMAT " bytes that follow can hold",
                     *n_kv, *n_tensors, remaining (p));
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_kv (Parser *p, AtGguf *g, AtGgufKv *kv, GError **error)
{
  const guint8 *key;
  guint64 key_len;
  guint32 type;
  gsize at = p->r.pos;

  if (!read_string (p, AT_FILE_MAX_NAME, "a metadata key", &key, &key_len, error))
    return FALSE;
  if (key_len == 0 || !g_utf8_validate_len ((const char *) key, (gsize) key_len, NULL)
      || memchr (key, '\0', (gsize) key_len) != NULL)
    {
      g_autofree char *s = shown (key, (gsize) key_len);

      at_file_error (error, p->file_name,
                     "the metadata key at byte %" G_GSIZE_FORMAT " (\"%s\") is %s", at, s,
                     key_len == 0 ? "empty" : "not valid UTF-8 text");
      return FALSE;
    }
  kv->key = g_strndup ((const char *) key, (gsize) key_len);
  p->key = kv->key;
  if (g_hash_table_contains (g->kv_by_key, kv->key))
    {
      at_file_error (error, p->file_name, "metadata key \"%s\" appears twice", kv->key);
      return FALSE;
    }
  g_hash_table_insert (g->kv_by_key, kv->key, kv);
  if (!read_u32 (p, &type, "a metadata value type", error))
    return FALSE;
  if (type >= AT_GGUF_N_TYPES)
    {
      at_file_error (error, p->file_name, "metadata key \"%s\" has unknown value type %u", kv->key,
                     type);
      return FALSE;
    }
  return read_value (p, kv, type, 0, error);
}

static gboolean
parse_metadata (Parser *p, AtGguf *g, guint64 n_kv, GError **error)
{
  const AtGgufKv *align;

  if (n_kv > 0)
    {
      /* n_kv <= AT_FILE_MAX_METADATA and at least 13 bytes of file each (parse_header). */
      g->kvs = g_try_new0 (AtGgufKv, n_kv);
      if (g->kvs == NULL)
        {
          g_set_error (error, AT_ERROR, AT_ERROR_OUT_OF_HOST_MEMORY,
                       "%s: no memory for %" G_GUINT64_FORMAT " metadata pairs", p->file_name,
                       n_kv);
          return FALSE;
        }
      g->n_kv = (guint) n_kv;
    }
  for (guint i = 0; i < g->n_kv; i++)
    if (!parse_kv (p, g, &g->kvs[i], error))
      return FALSE;
  p->key = NULL;

  align = at_gguf_find_kv (g, "general.alignment");
  if (align != NULL)
    {
      guint32 a;

      if (align->type != AT_GGUF_TYPE_UINT32)
        {
          at_file_error (error, p->file_name, "general.alignment is %s, not u32",
                         type_names[align->type]);
          return FALSE;
        }
      a = le32 (align->value);
      if (a == 0 || (a & (a - 1)) != 0)
        {
          at_file_error (error, p->file_name, "general.alignment is %u, not a power of two", a);
          return FALSE;
        }
      g->alignment = a;
    }
  return TRUE;
}

/* Resolves a ggml type id to a file dtype, or fails naming the tensor. */
static gboolean
resolve_type (Parser *p, guint32 type, const char *name, AtFileDtype *out, GError **error)
{
  const GgmlType *t = type < G_N_ELEMENTS (ggml_types) ? &ggml_types[type] : NULL;

  if (t == NULL || t->name == NULL)
    {
      at_file_error (error, p->file_name, "tensor \"%s\" has unknown ggml type %u", name, type);
      return FALSE;
    }
  if (t->dtype < 0)
    {
      at_file_error_code (
          error, AT_ERROR_UNSUPPORTED, p->file_name, "tensor \"%s\" is %s, %s", name, t->name,
          t->removed ? "a type ggml has since removed, which Atelier does not support"
                     : "a quantisation Atelier does not support");
      return FALSE;
    }
  *out = (AtFileDtype) t->dtype;
  return TRUE;
}

/* One tensor info into the set; its offset (relative to the data section) into `rel`. */
static AtTensorEntry *
parse_tensor_info (Parser *p, AtGguf *g, guint64 *rel, GError **error)
{
  const guint8 *name;
  guint64 name_len, ne;
  guint32 n_dims, type;
  gint64 shape[GGUF_MAX_DIMS];
  guint64 numel = 1;
  g_autofree char *s = NULL;
  AtFileDtype dtype;

  if (!read_string (p, AT_FILE_MAX_NAME, "a tensor name", &name, &name_len, error))
    return NULL;
  s = shown (name, (gsize) name_len);
  if (!read_u32 (p, &n_dims, "a tensor info", error))
    return NULL;
  if (n_dims > GGUF_MAX_DIMS)
    {
      at_file_error (error, p->file_name,
                     "tensor \"%s\" has %u dimensions (GGUF allows at most %d)", s, n_dims,
                     GGUF_MAX_DIMS);
      return NULL;
    }
  for (guint d = 0; d < n_dims; d++)
    {
      if (!read_u64 (p, &ne, "a tensor info", error))
        return NULL;
      if (ne > (guint64) AT_FILE_MAX_DIM)
        {
          at_file_error (error, p->file_name,
                         "tensor \"%s\" has a dimension of %" G_GUINT64_FORMAT
                         " elements (at most 2^40)",
                         s, ne);
          return NULL;
        }
      shape[n_dims - 1 - d] = (gint64) ne;
      /* The product of the nonzero dimensions is bounded here because at_tensor_set_add
       * multiplies before it compares: [2^35, 2^40, 0] overflows there on its way to 0. */
      if (ne > 0 && (!at_checked_mul (numel, ne, &numel) || numel > (guint64) AT_FILE_MAX_ELEMENTS))
        {
          at_file_error (error, p->file_name, "tensor \"%s\" has more than 2^42 elements", s);
          return NULL;
        }
    }
  if (!read_u32 (p, &type, "a tensor info", error) || !read_u64 (p, rel, "a tensor info", error))
    return NULL;
  if (!resolve_type (p, type, s, &dtype, error))
    return NULL;
  return at_tensor_set_add (g->tensors, (const char *) name, (gsize) name_len, dtype, (int) n_dims,
                            shape, NULL, error);
}

static int
compare_by_offset (gconstpointer a, gconstpointer b)
{
  const AtTensorEntry *x = *(AtTensorEntry *const *) a, *y = *(AtTensorEntry *const *) b;

  if (x->offset != y->offset)
    return x->offset < y->offset ? -1 : 1;
  return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* No two tensors share a byte. Sorted by start, each must begin at or after the furthest end
 * seen so far; zero-size tensors claim nothing. */
static gboolean
check_overlaps (Parser *p, GPtrArray *entries, GError **error)
{
  g_autoptr (GPtrArray) sorted = g_ptr_array_copy (entries, NULL, NULL);
  const AtTensorEntry *furthest = NULL;

  g_ptr_array_sort (sorted, compare_by_offset);
  for (guint i = 0; i < sorted->len; i++)
    {
      const AtTensorEntry *e = g_ptr_array_index (sorted, i);

      if (e->nbytes == 0)
        continue;
      if (furthest != NULL && e->offset < furthest->offset + furthest->nbytes)
        {
          g_autofree char *a = shown ((const guint8 *) furthest->name, strlen (furthest->name));
          g_autofree char *b = shown ((const guint8 *) e->name, strlen (e->name));

          at_file_error (error, p->file_name,
                         "tensors \"%s\" (bytes %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT
                         ") and \"%s\" (bytes %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT
                         ") overlap",
                         a, furthest->offset, furthest->offset + furthest->nbytes, b, e->offset,
                         e->offset + e->nbytes);
          return FALSE;
        }
      if (furthest == NULL || e->offset + e->nbytes > furthest->offset + furthest->nbytes)
        furthest = e;
    }
  return TRUE;
}

/* Places every tensor in the data section: aligned, inside the file, not overlapping. */
static gboolean
place_tensors (Parser *p, AtGguf *g, GPtrArray *entries, const guint64 *rel, GError **error)
{
  guint64 start, avail, end;

  if (!at_checked_add (p->r.pos, g->alignment - 1, &start))
    return fail_truncated (p, "the tensor infos", error);
  start = start / g->alignment * g->alignment;
  g->data_offset = start;
  avail = start <= p->r.size ? p->r.size - start : 0;
  for (guint i = 0; i < entries->len; i++)
    {
      AtTensorEntry *e = g_ptr_array_index (entries, i);
      g_autofree char *s = shown ((const guint8 *) e->name, strlen (e->name));

      /* Only empty tensors may sit in a data section that starts past the end. */
      if (start > p->r.size && e->nbytes > 0)
        {
          at_file_error (error, p->file_name,
                         "tensor \"%s\" has %" G_GUINT64_FORMAT " bytes of data, but the data "
                         "section would start at byte %" G_GUINT64_FORMAT
                         ", past the end of the file (%" G_GSIZE_FORMAT " bytes)",
                         s, e->nbytes, start, p->r.size);
          return FALSE;
        }

      if (rel[i] % g->alignment != 0)
        {
          at_file_error (error, p->file_name,
                         "tensor \"%s\" starts at data offset %" G_GUINT64_FORMAT
                         ", not a multiple of the alignment (%u)",
                         s, rel[i], g->alignment);
          return FALSE;
        }
      if (!at_checked_add (rel[i], e->nbytes, &end) || end > avail)
        {
          at_file_error (
              error, p->file_name,
              "tensor \"%s\" (%" G_GUINT64_FORMAT " bytes at data offset %" G_GUINT64_FORMAT
              ") runs past the end of the file (the data section holds %" G_GUINT64_FORMAT
              " bytes)",
              s, e->nbytes, rel[i], avail);
          return FALSE;
        }
      e->container = 0;
      e->offset = start + rel[i];
      /* An empty tensor's pointer stays inside the mapping; it is never read. */
      e->data = p->r.data + MIN (e->offset, p->r.size);
    }
  return check_overlaps (p, entries, error);
}

static gboolean
parse_tensors (Parser *p, AtGguf *g, guint64 n_tensors, GError **error)
{
  g_autoptr (GPtrArray) entries = g_ptr_array_sized_new ((guint) n_tensors);
  /* n_tensors <= AT_FILE_MAX_TENSORS and 24 bytes of file each (parse_header). */
  g_autofree guint64 *rel = g_try_new (guint64, MAX (n_tensors, 1));

  if (rel == NULL)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_OUT_OF_HOST_MEMORY,
                   "%s: no memory for %" G_GUINT64_FORMAT " tensors", p->file_name, n_tensors);
      return FALSE;
    }
  for (guint64 i = 0; i < n_tensors; i++)
    {
      AtTensorEntry *e = parse_tensor_info (p, g, &rel[i], error);

      if (e == NULL)
        return FALSE;
      g_ptr_array_add (entries, e);
    }
  return place_tensors (p, g, entries, rel, error);
}

AtGguf *
at_gguf_new_from_bytes (GBytes *bytes, const char *file_name, GError **error)
{
  g_autoptr (AtGguf) g = NULL;
  Parser p = { .file_name = file_name };
  const guint8 *data;
  gsize size;
  guint64 n_tensors, n_kv;

  g_return_val_if_fail (bytes != NULL, NULL);
  g_return_val_if_fail (file_name != NULL, NULL);
  data = g_bytes_get_data (bytes, &size);
  g = g_new0 (AtGguf, 1);
  g->file_name = g_strdup (file_name);
  g->bytes = g_bytes_ref (bytes);
  g->alignment = GGUF_DEFAULT_ALIGNMENT;
  g->kv_by_key = g_hash_table_new (g_str_hash, g_str_equal);
  g->tensors = at_tensor_set_new (file_name);
  at_tensor_set_take_owner (g->tensors, g_bytes_ref (bytes), (GDestroyNotify) g_bytes_unref);
  at_byte_reader_init (&p.r, data, data != NULL ? size : 0);

  if (!parse_header (&p, g, &n_tensors, &n_kv, error) || !parse_metadata (&p, g, n_kv, error)
      || !parse_tensors (&p, g, n_tensors, error))
    return NULL;
  return g_steal_pointer (&g);
}

AtGguf *
at_gguf_open (const char *path, GError **error)
{
  g_autoptr (GMappedFile) file = g_mapped_file_new (path, FALSE, error);
  g_autoptr (GBytes) bytes = NULL;
  g_autofree char *name = g_path_get_basename (path);

  if (file == NULL)
    return NULL;
  bytes = g_mapped_file_get_bytes (file);
  return at_gguf_new_from_bytes (bytes, name, error);
}

void
at_gguf_free (AtGguf *g)
{
  if (g == NULL)
    return;
  at_tensor_set_free (g->tensors);
  g_hash_table_unref (g->kv_by_key);
  for (guint i = 0; i < g->n_kv; i++)
    kv_clear (&g->kvs[i]);
  g_free (g->kvs);
  g_bytes_unref (g->bytes);
  g_free (g->file_name);
  g_free (g);
}

const char *
at_gguf_get_file_name (AtGguf *g)
{
  return g->file_name;
}

guint32
at_gguf_get_version (AtGguf *g)
{
  return g->version;
}

guint32
at_gguf_get_alignment (AtGguf *g)
{
  return g->alignment;
}

guint64
at_gguf_get_data_offset (AtGguf *g)
{
  return g->data_offset;
}

AtTensorSet *
at_gguf_get_tensors (AtGguf *g)
{
  return g->tensors;
}

guint
at_gguf_get_n_kv (AtGguf *g)
{
  return g->n_kv;
}

const AtGgufKv *
at_gguf_get_kv (AtGguf *g, guint i)
{
  g_return_val_if_fail (i < g->n_kv, NULL);
  return &g->kvs[i];
}

const AtGgufKv *
at_gguf_find_kv (AtGguf *g, const char *key)
{
  return g_hash_table_lookup (g->kv_by_key, key);
}

const char *
at_gguf_type_name (AtGgufType t)
{
  return (guint) t < AT_GGUF_N_TYPES ? type_names[t] : "invalid";
}

const char *
at_gguf_kv_get_key (const AtGgufKv *kv)
{
  return kv->key;
}

AtGgufType
at_gguf_kv_get_type (const AtGgufKv *kv)
{
  return kv->type;
}

AtGgufType
at_gguf_kv_get_array_type (const AtGgufKv *kv)
{
  return kv->type == AT_GGUF_TYPE_ARRAY ? kv->array_type : AT_GGUF_N_TYPES;
}

guint64
at_gguf_kv_get_array_length (const AtGgufKv *kv)
{
  return kv->type == AT_GGUF_TYPE_ARRAY ? kv->length : 0;
}

/* One value of a fixed-size type at `p`, as an integer when it is one and fits. */
static gboolean
value_int (AtGgufType t, const guint8 *p, gint64 *out)
{
  guint64 u;

  switch (t)
    {
      case AT_GGUF_TYPE_UINT8:
        *out = p[0];
        return TRUE;
      case AT_GGUF_TYPE_INT8:
        *out = (gint8) p[0];
        return TRUE;
      case AT_GGUF_TYPE_UINT16:
        *out = le16 (p);
        return TRUE;
      case AT_GGUF_TYPE_INT16:
        *out = (gint16) le16 (p);
        return TRUE;
      case AT_GGUF_TYPE_UINT32:
        *out = le32 (p);
        return TRUE;
      case AT_GGUF_TYPE_INT32:
        *out = (gint32) le32 (p);
        return TRUE;
      case AT_GGUF_TYPE_UINT64:
        u = le64 (p);
        if (u > G_MAXINT64)
          return FALSE;
        *out = (gint64) u;
        return TRUE;
      case AT_GGUF_TYPE_INT64:
        *out = (gint64) le64 (p);
        return TRUE;
      default:
        return FALSE;
    }
}

static gboolean
value_float (AtGgufType t, const guint8 *p, double *out)
{
  gint64 i;

  if (t == AT_GGUF_TYPE_FLOAT32)
    {
      guint32 bits = le32 (p);
      float f;

      memcpy (&f, &bits, 4);
      *out = f;
      return TRUE;
    }
  if (t == AT_GGUF_TYPE_FLOAT64)
    {
      guint64 bits = le64 (p);

      memcpy (out, &bits, 8);
      return TRUE;
    }
  if (t == AT_GGUF_TYPE_UINT64)
    {
      *out = (double) le64 (p);
      return TRUE;
    }
  if (!value_int (t, p, &i))
    return FALSE;
  *out = (double) i;
  return TRUE;
}

gboolean
at_gguf_kv_get_int (const AtGgufKv *kv, gint64 *out)
{
  return kv->type != AT_GGUF_TYPE_ARRAY && kv->type != AT_GGUF_TYPE_STRING
         && value_int (kv->type, kv->value, out);
}

gboolean
at_gguf_kv_get_float (const AtGgufKv *kv, double *out)
{
  return kv->type != AT_GGUF_TYPE_ARRAY && kv->type != AT_GGUF_TYPE_STRING
         && kv->type != AT_GGUF_TYPE_BOOL && value_float (kv->type, kv->value, out);
}

gboolean
at_gguf_kv_get_bool (const AtGgufKv *kv, gboolean *out)
{
  if (kv->type != AT_GGUF_TYPE_BOOL)
    return FALSE;
  *out = kv->value[0] != 0;
  return TRUE;
}

gboolean
at_gguf_kv_get_string (const AtGgufKv *kv, const char **str, gsize *len)
{
  if (kv->type != AT_GGUF_TYPE_STRING)
    return FALSE;
  *str = (const char *) kv->value;
  *len = (gsize) kv->length;
  return TRUE;
}

/* A NUL-terminated copy of `len` bytes that may hold NULs themselves. */
static char *
dup_bytes (const char *s, gsize len)
{
  char *copy = g_malloc (len + 1);

  if (len > 0)
    memcpy (copy, s, len);
  copy[len] = '\0';
  return copy;
}

char *
at_gguf_kv_dup_string (const AtGgufKv *kv)
{
  const char *s;
  gsize len;

  return at_gguf_kv_get_string (kv, &s, &len) ? dup_bytes (s, len) : NULL;
}

/* Element `i` of an array of a fixed-size type, or NULL. */
static const guint8 *
fixed_element (const AtGgufKv *kv, guint64 i)
{
  if (kv->type != AT_GGUF_TYPE_ARRAY || i >= kv->length || kv->array_type == AT_GGUF_TYPE_STRING
      || kv->array_type == AT_GGUF_TYPE_ARRAY)
    return NULL;
  /* i * size lies inside the span checked at parse time. */
  return kv->value + i * value_size[kv->array_type];
}

gboolean
at_gguf_kv_array_get_int (const AtGgufKv *kv, guint64 i, gint64 *out)
{
  const guint8 *p = fixed_element (kv, i);

  return p != NULL && value_int (kv->array_type, p, out);
}

gboolean
at_gguf_kv_array_get_float (const AtGgufKv *kv, guint64 i, double *out)
{
  const guint8 *p = fixed_element (kv, i);

  return p != NULL && kv->array_type != AT_GGUF_TYPE_BOOL && value_float (kv->array_type, p, out);
}

gboolean
at_gguf_kv_array_get_bool (const AtGgufKv *kv, guint64 i, gboolean *out)
{
  const guint8 *p = fixed_element (kv, i);

  if (p == NULL || kv->array_type != AT_GGUF_TYPE_BOOL)
    return FALSE;
  *out = p[0] != 0;
  return TRUE;
}

gboolean
at_gguf_kv_array_get_string (const AtGgufKv *kv, guint64 i, const char **str, gsize *len)
{
  if (kv->type != AT_GGUF_TYPE_ARRAY || kv->array_type != AT_GGUF_TYPE_STRING || i >= kv->length)
    return FALSE;
  *len = (gsize) le64 (kv->strings[i]);
  *str = (const char *) kv->strings[i] + 8;
  return TRUE;
}

char *
at_gguf_kv_array_dup_string (const AtGgufKv *kv, guint64 i)
{
  const char *s;
  gsize len;

  return at_gguf_kv_array_get_string (kv, i, &s, &len) ? dup_bytes (s, len) : NULL;
}

const AtGgufKv *
at_gguf_kv_array_get_array (const AtGgufKv *kv, guint64 i)
{
  if (kv->type != AT_GGUF_TYPE_ARRAY || kv->array_type != AT_GGUF_TYPE_ARRAY || i >= kv->length)
    return NULL;
  return &kv->items[i];
}

static const AtGgufKv *
find_typed (AtGguf *g, const char *key, GError **error)
{
  const AtGgufKv *kv = at_gguf_find_kv (g, key);

  if (kv == NULL)
    at_file_error (error, g->file_name, "metadata key \"%s\" is missing", key);
  return kv;
}

static gboolean
wrong_type (AtGguf *g, const AtGgufKv *kv, const char *wanted, GError **error)
{
  if (kv->type == AT_GGUF_TYPE_ARRAY)
    at_file_error (error, g->file_name, "metadata key \"%s\" is an array of %s, not %s", kv->key,
                   type_names[kv->array_type], wanted);
  else
    at_file_error (error, g->file_name, "metadata key \"%s\" is %s, not %s", kv->key,
                   type_names[kv->type], wanted);
  return FALSE;
}

gboolean
at_gguf_get_int (AtGguf *g, const char *key, gint64 *out, GError **error)
{
  const AtGgufKv *kv = find_typed (g, key, error);

  if (kv == NULL)
    return FALSE;
  if (kv->type == AT_GGUF_TYPE_UINT64 && !at_gguf_kv_get_int (kv, out))
    {
      at_file_error (error, g->file_name,
                     "metadata key \"%s\" is u64 %" G_GUINT64_FORMAT ", too large", key,
                     le64 (kv->value));
      return FALSE;
    }
  return at_gguf_kv_get_int (kv, out) || wrong_type (g, kv, "an integer", error);
}

gboolean
at_gguf_get_float (AtGguf *g, const char *key, double *out, GError **error)
{
  const AtGgufKv *kv = find_typed (g, key, error);

  return kv != NULL && (at_gguf_kv_get_float (kv, out) || wrong_type (g, kv, "a number", error));
}

gboolean
at_gguf_get_bool (AtGguf *g, const char *key, gboolean *out, GError **error)
{
  const AtGgufKv *kv = find_typed (g, key, error);

  return kv != NULL && (at_gguf_kv_get_bool (kv, out) || wrong_type (g, kv, "bool", error));
}

char *
at_gguf_dup_string (AtGguf *g, const char *key, GError **error)
{
  const AtGgufKv *kv = find_typed (g, key, error);
  char *s;

  if (kv == NULL)
    return NULL;
  s = at_gguf_kv_dup_string (kv);
  if (s == NULL)
    wrong_type (g, kv, "a string", error);
  return s;
}

static JsonNode *
double_to_json (double v)
{
  JsonNode *node = json_node_alloc ();

  if (isnan (v))
    return json_node_init_string (node, "nan");
  if (isinf (v))
    return json_node_init_string (node, v > 0 ? "inf" : "-inf");
  return json_node_init_double (node, v);
}

static JsonNode *
string_to_json (const char *s, gsize len)
{
  g_autofree char *valid = g_utf8_make_valid (s, (gssize) len);

  return json_node_init_string (json_node_alloc (), valid);
}

/* A fixed-size value at `p`. */
static JsonNode *
value_to_json (AtGgufType t, const guint8 *p)
{
  gint64 i;
  double d;

  if (t == AT_GGUF_TYPE_BOOL)
    return json_node_init_boolean (json_node_alloc (), p[0] != 0);
  if (value_int (t, p, &i))
    return json_node_init_int (json_node_alloc (), i);
  value_float (t, p, &d);
  return double_to_json (d);
}

static JsonNode *
element_to_json (const AtGgufKv *kv, guint64 i, guint max_items)
{
  const char *s;
  gsize len;

  if (kv->array_type == AT_GGUF_TYPE_STRING)
    {
      at_gguf_kv_array_get_string (kv, i, &s, &len);
      return string_to_json (s, len);
    }
  if (kv->array_type == AT_GGUF_TYPE_ARRAY)
    return at_gguf_kv_to_json (&kv->items[i], max_items);
  return value_to_json (kv->array_type, fixed_element (kv, i));
}

JsonNode *
at_gguf_kv_to_json (const AtGgufKv *kv, guint max_items)
{
  g_autoptr (JsonArray) array = NULL;
  g_autoptr (JsonObject) object = NULL;
  guint64 n;

  if (kv->type == AT_GGUF_TYPE_STRING)
    return string_to_json ((const char *) kv->value, (gsize) kv->length);
  if (kv->type != AT_GGUF_TYPE_ARRAY)
    return value_to_json (kv->type, kv->value);
  n = max_items > 0 ? MIN (kv->length, max_items) : kv->length;
  array = json_array_sized_new ((guint) n);
  /* Nesting is bounded by AT_GGUF_MAX_ARRAY_DEPTH. */
  for (guint64 i = 0; i < n; i++)
    json_array_add_element (array, element_to_json (kv, i, max_items));
  if (n == kv->length)
    return json_node_init_array (json_node_alloc (), array);
  object = json_object_new ();
  json_object_set_string_member (object, "type", "array");
  json_object_set_string_member (object, "element_type", type_names[kv->array_type]);
  json_object_set_int_member (object, "length", (gint64) kv->length);
  json_object_set_array_member (object, "first", g_steal_pointer (&array));
  /* json_node_init_array / _object take their own reference. */
  return json_node_init_object (json_node_alloc (), object);
}
