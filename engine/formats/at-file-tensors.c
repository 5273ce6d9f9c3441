/* at-file-tensors.c: the tensor list every parser fills, its checks, and f32 conversion. */
#include "at-file-tensors.h"

#include <math.h>
#include <string.h>

#include "at-error.h"

static const AtFileDtypeInfo file_dtypes[AT_N_FILE_DTYPES] = {
  [AT_FILE_DTYPE_F64] = { "F64", 1, 8, AT_N_DTYPES },
  [AT_FILE_DTYPE_F32] = { "F32", 1, 4, AT_DTYPE_F32 },
  [AT_FILE_DTYPE_F16] = { "F16", 1, 2, AT_DTYPE_F16 },
  [AT_FILE_DTYPE_BF16] = { "BF16", 1, 2, AT_DTYPE_BF16 },
  [AT_FILE_DTYPE_I64] = { "I64", 1, 8, AT_N_DTYPES },
  [AT_FILE_DTYPE_I32] = { "I32", 1, 4, AT_DTYPE_I32 },
  [AT_FILE_DTYPE_I16] = { "I16", 1, 2, AT_N_DTYPES },
  [AT_FILE_DTYPE_I8] = { "I8", 1, 1, AT_N_DTYPES },
  [AT_FILE_DTYPE_U8] = { "U8", 1, 1, AT_N_DTYPES },
  [AT_FILE_DTYPE_BOOL] = { "BOOL", 1, 1, AT_N_DTYPES },
  [AT_FILE_DTYPE_F8_E4M3] = { "F8_E4M3", 1, 1, AT_N_DTYPES },
  [AT_FILE_DTYPE_F8_E5M2] = { "F8_E5M2", 1, 1, AT_N_DTYPES },
  [AT_FILE_DTYPE_Q8_0] = { "Q8_0", 32, 34, AT_DTYPE_Q8_0 },
  [AT_FILE_DTYPE_Q4_0] = { "Q4_0", 32, 18, AT_DTYPE_Q4_0 },
  [AT_FILE_DTYPE_Q4_1] = { "Q4_1", 32, 20, AT_DTYPE_Q4_1 },
  [AT_FILE_DTYPE_Q5_0] = { "Q5_0", 32, 22, AT_DTYPE_Q5_0 },
  [AT_FILE_DTYPE_Q5_1] = { "Q5_1", 32, 24, AT_DTYPE_Q5_1 },
  [AT_FILE_DTYPE_Q2_K] = { "Q2_K", 256, 84, AT_N_DTYPES },
  [AT_FILE_DTYPE_Q3_K] = { "Q3_K", 256, 110, AT_N_DTYPES },
  [AT_FILE_DTYPE_Q4_K] = { "Q4_K", 256, 144, AT_DTYPE_Q4_K },
  [AT_FILE_DTYPE_Q5_K] = { "Q5_K", 256, 176, AT_DTYPE_Q5_K },
  [AT_FILE_DTYPE_Q6_K] = { "Q6_K", 256, 210, AT_DTYPE_Q6_K },
};

const AtFileDtypeInfo *
at_file_dtype_info (AtFileDtype dtype)
{
  g_return_val_if_fail ((guint) dtype < AT_N_FILE_DTYPES, NULL);
  return &file_dtypes[dtype];
}

const char *
at_file_dtype_name (AtFileDtype dtype)
{
  return (guint) dtype < AT_N_FILE_DTYPES ? file_dtypes[dtype].name : "invalid";
}

AtFileDtype
at_file_dtype_from_name (const char *name)
{
  for (guint i = 0; i < AT_N_FILE_DTYPES; i++)
    if (g_ascii_strcasecmp (name, file_dtypes[i].name) == 0)
      return i;
  return AT_N_FILE_DTYPES;
}

AtDtype
at_file_dtype_upload_dtype (AtFileDtype dtype)
{
  if ((guint) dtype >= AT_N_FILE_DTYPES)
    return AT_N_DTYPES;
  if (file_dtypes[dtype].engine_dtype != AT_N_DTYPES)
    return file_dtypes[dtype].engine_dtype;
  return dtype == AT_FILE_DTYPE_I64 ? AT_DTYPE_I32 : AT_DTYPE_F32;
}

struct _AtTensorSet
{
  char *file_name;
  GPtrArray *entries;   /* AtTensorEntry*, file order */
  GHashTable *by_name;  /* name -> entry */
  AtTensorReadFunc read;
  gpointer read_data;
  GDestroyNotify read_destroy;
  gpointer owner;
  GDestroyNotify owner_destroy;
};

static void
entry_free (gpointer p)
{
  AtTensorEntry *e = p;

  g_free (e->name);
  g_free (e);
}

AtTensorSet *
at_tensor_set_new (const char *file_name)
{
  AtTensorSet *set = g_new0 (AtTensorSet, 1);

  set->file_name = g_strdup (file_name);
  set->entries = g_ptr_array_new_with_free_func (entry_free);
  set->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  return set;
}

void
at_tensor_set_free (AtTensorSet *set)
{
  if (set == NULL)
    return;
  g_hash_table_unref (set->by_name);
  g_ptr_array_unref (set->entries);
  if (set->read_destroy != NULL)
    set->read_destroy (set->read_data);
  if (set->owner_destroy != NULL)
    set->owner_destroy (set->owner);
  g_free (set->file_name);
  g_free (set);
}

const char *
at_tensor_set_get_file_name (AtTensorSet *set)
{
  return set->file_name;
}

void
at_tensor_set_set_reader (AtTensorSet *set, AtTensorReadFunc read, gpointer user_data,
                          GDestroyNotify destroy)
{
  if (set->read_destroy != NULL)
    set->read_destroy (set->read_data);
  set->read = read;
  set->read_data = user_data;
  set->read_destroy = destroy;
}

void
at_tensor_set_take_owner (AtTensorSet *set, gpointer owner, GDestroyNotify destroy)
{
  if (set->owner_destroy != NULL)
    set->owner_destroy (set->owner);
  set->owner = owner;
  set->owner_destroy = destroy;
}

void
at_file_error_code (GError **error, int code, const char *file_name, const char *format, ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, AT_ERROR, code, "%s: %s", file_name, message);
}

void
at_file_error (GError **error, const char *file_name, const char *format, ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, AT_ERROR, AT_ERROR_BAD_FILE, "%s: %s", file_name, message);
}

/* A name for messages: printable, bounded. */
static char *
printable_name (const char *name, gsize len)
{
  g_autofree char *valid = g_utf8_make_valid (name, MIN (len, 200));

  return g_strescape (valid, NULL);
}

AtTensorEntry *
at_tensor_set_add (AtTensorSet *set, const char *name, gsize name_len, AtFileDtype dtype, int ndim,
                   const gint64 *shape, const gint64 *stride, GError **error)
{
  AtTensorEntry *e;
  gint64 numel = 1;
  guint64 span = 1; /* elements the strides reach */
  const AtFileDtypeInfo *info;
  g_autofree char *shown = NULL;

  if (name_len == 0 || name_len > AT_FILE_MAX_NAME)
    {
      at_file_error (error, set->file_name, "a tensor name is %" G_GSIZE_FORMAT " bytes long (1 to %d allowed)",
                     name_len, AT_FILE_MAX_NAME);
      return NULL;
    }
  shown = printable_name (name, name_len);
  if (!g_utf8_validate_len (name, name_len, NULL) || memchr (name, '\0', name_len) != NULL)
    {
      at_file_error (error, set->file_name, "tensor name \"%s\" is not valid UTF-8 text", shown);
      return NULL;
    }
  if (set->entries->len >= AT_FILE_MAX_TENSORS)
    {
      at_file_error (error, set->file_name, "more than %u tensors", AT_FILE_MAX_TENSORS);
      return NULL;
    }
  if ((guint) dtype >= AT_N_FILE_DTYPES)
    {
      at_file_error (error, set->file_name, "tensor \"%s\" has an unknown dtype", shown);
      return NULL;
    }
  info = &file_dtypes[dtype];
  if (ndim < 0 || ndim > AT_FILE_MAX_DIMS)
    {
      at_file_error (error, set->file_name, "tensor \"%s\" has %d dimensions (at most %d)", shown, ndim,
                     AT_FILE_MAX_DIMS);
      return NULL;
    }
  for (int i = 0; i < ndim; i++)
    {
      if (shape[i] < 0 || shape[i] > AT_FILE_MAX_DIM)
        {
          at_file_error (error, set->file_name, "tensor \"%s\" has dimension %d of size %" G_GINT64_FORMAT,
                         shown, i, shape[i]);
          return NULL;
        }
      if (stride != NULL && (stride[i] < 0 || stride[i] > AT_FILE_MAX_ELEMENTS))
        {
          at_file_error (error, set->file_name, "tensor \"%s\" has stride %" G_GINT64_FORMAT " on dimension %d",
                         shown, stride[i], i);
          return NULL;
        }
    }
  /* A zero dimension makes an empty tensor whatever the others are; otherwise the product is
   * checked before it can overflow (two dimensions of 2^40 must not wrap to 0). */
  for (int i = 0; i < ndim; i++)
    if (shape[i] == 0)
      numel = 0;
  for (int i = 0; i < ndim && numel != 0; i++)
    {
      if (numel > AT_FILE_MAX_ELEMENTS / shape[i])
        {
          at_file_error (error, set->file_name, "tensor \"%s\" has more than 2^42 elements", shown);
          return NULL;
        }
      numel *= shape[i];
    }
  if (info->block_size > 1 && (ndim == 0 || shape[ndim - 1] % info->block_size != 0))
    {
      at_file_error (error, set->file_name,
                     "tensor \"%s\" is %s, whose rows must be a multiple of %u elements, but its innermost "
                     "dimension is %" G_GINT64_FORMAT,
                     shown, info->name, info->block_size, ndim == 0 ? 1 : shape[ndim - 1]);
      return NULL;
    }
  if (stride != NULL && info->block_size > 1)
    {
      gint64 expect = 1;

      for (int i = ndim - 1; i >= 0; i--)
        {
          if (shape[i] > 1 && stride[i] != expect)
            {
              at_file_error (error, set->file_name, "block-quantised tensor \"%s\" is not contiguous", shown);
              return NULL;
            }
          expect *= shape[i];
        }
    }
  e = g_new0 (AtTensorEntry, 1);
  e->name = g_strndup (name, name_len);
  if (g_hash_table_contains (set->by_name, e->name))
    {
      at_file_error (error, set->file_name, "tensor \"%s\" appears twice", shown);
      entry_free (e);
      return NULL;
    }
  e->dtype = dtype;
  e->ndim = ndim;
  e->numel = numel;
  {
    gint64 contiguous = 1;

    for (int i = ndim - 1; i >= 0; i--)
      {
        e->shape[i] = shape[i];
        e->stride[i] = stride != NULL ? stride[i] : contiguous;
        contiguous *= shape[i];
      }
  }
  /* The span the strides reach: 1 + sum (shape - 1) * stride, each step checked. */
  if (numel > 0 && stride != NULL)
    {
      guint64 s = 1, term;

      for (int i = 0; i < ndim; i++)
        if (!at_checked_mul ((guint64) (e->shape[i] - 1), (guint64) e->stride[i], &term)
            || !at_checked_add (s, term, &s) || s > (guint64) AT_FILE_MAX_ELEMENTS)
          {
            at_file_error (error, set->file_name, "tensor \"%s\" has strides that reach past 2^42 elements",
                           shown);
            entry_free (e);
            return NULL;
          }
      span = s;
    }
  else
    span = (guint64) numel;
  e->nbytes = span / info->block_size * info->type_size;
  g_ptr_array_add (set->entries, e);
  g_hash_table_insert (set->by_name, e->name, e);
  return e;
}

guint
at_tensor_set_get_n_tensors (AtTensorSet *set)
{
  return set->entries->len;
}

const AtTensorEntry *
at_tensor_set_get (AtTensorSet *set, guint index)
{
  g_return_val_if_fail (index < set->entries->len, NULL);
  return g_ptr_array_index (set->entries, index);
}

const AtTensorEntry *
at_tensor_set_find (AtTensorSet *set, const char *name)
{
  return g_hash_table_lookup (set->by_name, name);
}

void
at_tensor_set_bytes_by_dtype (AtTensorSet *set, guint64 *bytes)
{
  memset (bytes, 0, sizeof (guint64) * AT_N_FILE_DTYPES);
  for (guint i = 0; i < set->entries->len; i++)
    {
      const AtTensorEntry *e = g_ptr_array_index (set->entries, i);

      bytes[e->dtype] += e->nbytes;
    }
}

gboolean
at_tensor_entry_is_contiguous (const AtTensorEntry *entry)
{
  gint64 expect = 1;

  for (int i = entry->ndim - 1; i >= 0; i--)
    {
      if (entry->shape[i] > 1 && entry->stride[i] != expect)
        return FALSE;
      expect *= entry->shape[i];
    }
  return TRUE;
}

char *
at_file_shape_string (int ndim, const gint64 *shape)
{
  GString *s = g_string_new ("[");

  for (int i = 0; i < ndim; i++)
    {
      if (shape[i] < 0)
        g_string_append_printf (s, "%s*", i > 0 ? ", " : "");
      else
        g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i > 0 ? ", " : "", shape[i]);
    }
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

gboolean
at_tensor_set_read (AtTensorSet *set, const AtTensorEntry *entry, guint64 offset, void *dst, gsize size,
                    GError **error)
{
  guint64 end;

  if (!at_checked_add (offset, size, &end) || end > entry->nbytes)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "%s: read of %" G_GSIZE_FORMAT " bytes at %" G_GUINT64_FORMAT
                   " is outside tensor \"%s\" (%" G_GUINT64_FORMAT " bytes)",
                   set->file_name, size, offset, entry->name, entry->nbytes);
      return FALSE;
    }
  if (entry->data != NULL)
    {
      memcpy (dst, entry->data + offset, size);
      return TRUE;
    }
  if (set->read == NULL)
    {
      at_file_error (error, set->file_name, "tensor \"%s\" has no data", entry->name);
      return FALSE;
    }
  return set->read (set->read_data, entry, offset, dst, size, error);
}

/* 8-bit floats. E4M3 ("fn": no infinities, S.1111.111 is NaN, bias 7); E5M2 is the top byte of
 * an IEEE half. */
static float
f8_e4m3_to_f32 (guint8 b)
{
  int sign = b >> 7, exp = (b >> 3) & 15, mant = b & 7;
  float v;

  if (exp == 15 && mant == 7)
    return NAN;
  if (exp == 0)
    v = ldexpf ((float) mant / 8.0f, -6);
  else
    v = ldexpf (1.0f + (float) mant / 8.0f, exp - 7);
  return sign ? -v : v;
}

static float
f8_e5m2_to_f32 (guint8 b)
{
  return at_f16_to_f32 ((guint16) (b << 8));
}

static guint16
le16 (const guint8 *p)
{
  return (guint16) (p[0] | (p[1] << 8));
}

/* GGUF's 2-bit k-quant: 256 values in 16 groups of 16; per group a 4-bit scale and 4-bit min
 * (scales[16]), 2-bit values (qs[64]: byte j of each 32-byte half holds values j, j+32, j+64,
 * j+96 of that half in bits 0-1, 2-3, 4-5, 6-7), then half d and half dmin.
 * x = d * scale * q - dmin * min. */
static void
dequant_q2_k (const guint8 *b, float *y)
{
  const guint8 *scales = b, *qs = b + 16;
  float d = at_f16_to_f32 (le16 (b + 80)), dmin = at_f16_to_f32 (le16 (b + 82));

  for (int half = 0; half < 2; half++)
    for (int shift = 0; shift < 4; shift++)
      for (int part = 0; part < 2; part++)
        {
          int group = half * 8 + shift * 2 + part;
          float dl = d * (float) (scales[group] & 15), ml = dmin * (float) (scales[group] >> 4);

          for (int l = 0; l < 16; l++)
            {
              int q = (qs[half * 32 + part * 16 + l] >> (2 * shift)) & 3;

              y[half * 128 + shift * 32 + part * 16 + l] = dl * (float) q - ml;
            }
        }
}

/* GGUF's 3-bit k-quant: hmask[32] (the high bit of each value: bit k of byte l is value
 * l + 32k... per 128-half as below), qs[64] (low 2 bits, laid out as in Q2_K), scales[12]
 * (16 six-bit signed scales, offset 32: low 4 bits in bytes 0-7, high 2 bits in bytes 8-11),
 * half d. x = d * (scale - 32) * (q - (high bit ? 0 : 4)). */
static void
dequant_q3_k (const guint8 *b, float *y)
{
  const guint8 *hmask = b, *qs = b + 32, *sc = b + 96;
  float d = at_f16_to_f32 (le16 (b + 108));
  int scale[16];

  for (int i = 0; i < 16; i++)
    {
      int low = i < 8 ? sc[i] & 15 : sc[i - 8] >> 4;
      int high = (sc[8 + (i & 3)] >> (2 * (i >> 2))) & 3;

      scale[i] = (low | (high << 4)) - 32;
    }
  for (int half = 0; half < 2; half++)
    for (int shift = 0; shift < 4; shift++)
      for (int part = 0; part < 2; part++)
        {
          int group = half * 8 + shift * 2 + part;
          int bit = half * 4 + shift;
          float dl = d * (float) scale[group];

          for (int l = 0; l < 16; l++)
            {
              int q = (qs[half * 32 + part * 16 + l] >> (2 * shift)) & 3;
              int h = (hmask[part * 16 + l] >> bit) & 1;

              y[half * 128 + shift * 32 + part * 16 + l] = dl * (float) (q - (h ? 0 : 4));
            }
        }
}

/* Converts `n` consecutive elements (a whole number of blocks for block types). */
static void
convert_run (AtFileDtype dtype, const guint8 *src, float *dst, gint64 n)
{
  const AtFileDtypeInfo *info = &file_dtypes[dtype];

  if (info->engine_dtype != AT_N_DTYPES && info->engine_dtype != AT_DTYPE_I32)
    {
      at_dequantize_row (info->engine_dtype, src, dst, n);
      return;
    }
  for (gint64 i = 0; i < n; i++)
    {
      const guint8 *p = src + (gsize) i * info->type_size;

      switch (dtype)
        {
        case AT_FILE_DTYPE_F64:
          {
            double v;

            memcpy (&v, p, 8);
            dst[i] = (float) v;
          }
          break;
        case AT_FILE_DTYPE_I64:
          {
            gint64 v;

            memcpy (&v, p, 8);
            dst[i] = (float) v;
          }
          break;
        case AT_FILE_DTYPE_I32:
          {
            gint32 v;

            memcpy (&v, p, 4);
            dst[i] = (float) v;
          }
          break;
        case AT_FILE_DTYPE_I16:
          dst[i] = (float) (gint16) le16 (p);
          break;
        case AT_FILE_DTYPE_I8:
          dst[i] = (float) (gint8) p[0];
          break;
        case AT_FILE_DTYPE_U8:
          dst[i] = (float) p[0];
          break;
        case AT_FILE_DTYPE_BOOL:
          dst[i] = p[0] != 0 ? 1.0f : 0.0f;
          break;
        case AT_FILE_DTYPE_F8_E4M3:
          dst[i] = f8_e4m3_to_f32 (p[0]);
          break;
        case AT_FILE_DTYPE_F8_E5M2:
          dst[i] = f8_e5m2_to_f32 (p[0]);
          break;
        case AT_FILE_DTYPE_Q2_K:
          if (i % 256 == 0)
            dequant_q2_k (src + (gsize) (i / 256) * info->type_size, dst + i);
          break;
        case AT_FILE_DTYPE_Q3_K:
          if (i % 256 == 0)
            dequant_q3_k (src + (gsize) (i / 256) * info->type_size, dst + i);
          break;
        default:
          g_assert_not_reached ();
        }
    }
}

/* Element `n` (row-major over the shape) of `entry` as its byte offset in the span. */
static guint64
element_offset (const AtTensorEntry *entry, gint64 n)
{
  guint64 off = 0;

  for (int d = entry->ndim - 1; d >= 0; d--)
    {
      off += (guint64) (n % entry->shape[d]) * (guint64) entry->stride[d];
      n /= entry->shape[d];
    }
  return off * file_dtypes[entry->dtype].type_size;
}

/* The entry's whole span: the mapping itself, or read once into `*copy` (freed by the
 * caller). NULL on error. */
static const guint8 *
entry_bytes (AtTensorSet *set, const AtTensorEntry *entry, guint8 **copy, GError **error)
{
  if (entry->data != NULL)
    return entry->data;
  *copy = g_try_malloc (entry->nbytes);
  if (*copy == NULL)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_OUT_OF_HOST_MEMORY,
                   "%s: no memory for the %" G_GUINT64_FORMAT " bytes of tensor \"%s\"", set->file_name,
                   entry->nbytes, entry->name);
      return NULL;
    }
  return at_tensor_set_read (set, entry, 0, *copy, entry->nbytes, error) ? *copy : NULL;
}

gboolean
at_tensor_set_read_f32 (AtTensorSet *set, const AtTensorEntry *entry, float *dst, GError **error)
{
  g_autofree guint8 *copy = NULL;
  const guint8 *bytes;

  if (entry->numel == 0)
    return TRUE;
  if ((bytes = entry_bytes (set, entry, &copy, error)) == NULL)
    return FALSE;
  if (file_dtypes[entry->dtype].block_size > 1 || at_tensor_entry_is_contiguous (entry))
    {
      convert_run (entry->dtype, bytes, dst, entry->numel);
      return TRUE;
    }
  /* Gather a strided view element by element. */
  for (gint64 n = 0; n < entry->numel; n++)
    convert_run (entry->dtype, bytes + element_offset (entry, n), dst + n, 1);
  return TRUE;
}

gsize
at_tensor_entry_upload_size (const AtTensorEntry *entry)
{
  AtDtype dtype = at_file_dtype_upload_dtype (entry->dtype);

  return at_dtype_row_bytes (dtype, entry->numel);
}

#define UPLOAD_CHUNK (4u << 20) /* elements converted at a time */

gboolean
at_tensor_set_upload (AtTensorSet *set, const AtTensorEntry *entry, AtBuffer *buffer, gsize offset,
                      GError **error)
{
  const AtFileDtypeInfo *info = &file_dtypes[entry->dtype];
  AtDtype target = at_file_dtype_upload_dtype (entry->dtype);
  gsize esize = at_dtype_info (target)->type_size; /* plain targets only below */
  gboolean contiguous = at_tensor_entry_is_contiguous (entry);
  g_autofree guint8 *span = NULL;
  g_autofree guint8 *out = NULL;
  const guint8 *bytes;

  if (entry->numel == 0)
    return TRUE;
  if ((bytes = entry_bytes (set, entry, &span, error)) == NULL)
    return FALSE;
  /* The engine's own dtype, contiguous: one copy from the mapping into the buffer. */
  if (info->engine_dtype != AT_N_DTYPES && contiguous)
    return at_buffer_upload (buffer, offset, bytes, entry->nbytes, error);
  /* Everything else goes element by element. */
  if (info->block_size > 1)
    {
      /* Q2_K / Q3_K (always contiguous): whole blocks to f32. */
      gint64 chunk = UPLOAD_CHUNK / 256 * 256;

      out = g_try_malloc ((gsize) MIN (chunk, entry->numel) * 4);
      if (out == NULL)
        goto oom;
      for (gint64 n = 0; n < entry->numel; n += chunk)
        {
          gint64 m = MIN (chunk, entry->numel - n);

          convert_run (entry->dtype, bytes + (gsize) (n / 256) * info->type_size, (float *) out, m);
          if (!at_buffer_upload (buffer, offset + (gsize) n * 4, out, (gsize) m * 4, error))
            return FALSE;
        }
      return TRUE;
    }
  out = g_try_malloc ((gsize) MIN ((gint64) UPLOAD_CHUNK, entry->numel) * esize);
  if (out == NULL)
    goto oom;
  for (gint64 n = 0; n < entry->numel; n += UPLOAD_CHUNK)
    {
      gint64 m = MIN ((gint64) UPLOAD_CHUNK, entry->numel - n);

      for (gint64 i = 0; i < m; i++)
        {
          const guint8 *src = bytes + element_offset (entry, n + i);
          guint8 *dst = out + (gsize) i * esize;

          if (info->engine_dtype != AT_N_DTYPES)
            memcpy (dst, src, esize); /* an engine dtype gathered from a strided view */
          else if (entry->dtype == AT_FILE_DTYPE_I64)
            {
              gint64 v;
              gint32 v32;

              memcpy (&v, src, 8);
              if (v < G_MININT32 || v > G_MAXINT32)
                {
                  at_file_error (error, set->file_name, "tensor \"%s\" holds %" G_GINT64_FORMAT
                                 ", outside the 32-bit range the engine keeps integers in", entry->name, v);
                  return FALSE;
                }
              v32 = (gint32) v;
              memcpy (dst, &v32, 4);
            }
          else
            convert_run (entry->dtype, src, (float *) (gpointer) dst, 1);
        }
      if (!at_buffer_upload (buffer, offset + (gsize) n * esize, out, (gsize) m * esize, error))
        return FALSE;
    }
  return TRUE;

oom:
  g_set_error (error, AT_ERROR, AT_ERROR_OUT_OF_HOST_MEMORY, "%s: no memory to upload tensor \"%s\" (%"
               G_GUINT64_FORMAT " bytes)", set->file_name, entry->name, entry->nbytes);
  return FALSE;
}

void
at_byte_reader_init (AtByteReader *r, const guint8 *data, gsize size)
{
  r->data = data;
  r->size = size;
  r->pos = 0;
  r->failed = FALSE;
}

gboolean
at_byte_reader_bytes (AtByteReader *r, gsize n, const guint8 **out)
{
  if (r->failed || n > r->size - r->pos)
    {
      r->failed = TRUE;
      return FALSE;
    }
  if (out != NULL)
    *out = r->data + r->pos;
  r->pos += n;
  return TRUE;
}

gboolean
at_byte_reader_skip (AtByteReader *r, gsize n)
{
  return at_byte_reader_bytes (r, n, NULL);
}

gboolean
at_byte_reader_u8 (AtByteReader *r, guint8 *out)
{
  const guint8 *p;

  if (!at_byte_reader_bytes (r, 1, &p))
    return FALSE;
  *out = p[0];
  return TRUE;
}

gboolean
at_byte_reader_u16 (AtByteReader *r, guint16 *out)
{
  const guint8 *p;

  if (!at_byte_reader_bytes (r, 2, &p))
    return FALSE;
  *out = le16 (p);
  return TRUE;
}

gboolean
at_byte_reader_u32 (AtByteReader *r, guint32 *out)
{
  const guint8 *p;

  if (!at_byte_reader_bytes (r, 4, &p))
    return FALSE;
  *out = (guint32) p[0] | ((guint32) p[1] << 8) | ((guint32) p[2] << 16) | ((guint32) p[3] << 24);
  return TRUE;
}

gboolean
at_byte_reader_u64 (AtByteReader *r, guint64 *out)
{
  guint32 lo, hi;

  if (!at_byte_reader_u32 (r, &lo) || !at_byte_reader_u32 (r, &hi))
    return FALSE;
  *out = (guint64) lo | ((guint64) hi << 32);
  return TRUE;
}
