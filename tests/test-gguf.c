/* test-gguf.c: the GGUF reader against the five real vocab-only files (facts read a second
 * time by tools/ref/gguf_facts.py, a standard-library Python reader, plus a few facts checked
 * by hand), against files written here with every metadata type and every tensor type
 * Atelier maps, and against hostile files, each of which must fail with the right code and a
 * message that says what is wrong.
 *
 * With AT_GGUF_CORPUS_DIR set, every file this test writes is also saved there (that is how
 * the fuzz seeds in tests/corpus/gguf/ were made).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "at-test-util.h"

/* ---- A GGUF writer ---- */

typedef struct
{
  GByteArray *kv; /* the metadata pairs */
  guint64 n_kv;
  GByteArray *info; /* the tensor infos */
  guint64 n_tensors;
  GByteArray *data; /* the data section */
  guint32 alignment;
} Writer;

static void
put (GByteArray *b, const void *p, gsize n)
{
  g_byte_array_append (b, p, (guint) n);
}

static void
put_u8 (GByteArray *b, guint8 v)
{
  put (b, &v, 1);
}

static void
put_u16 (GByteArray *b, guint16 v)
{
  guint8 p[2] = { v & 0xff, v >> 8 };

  put (b, p, 2);
}

static void
put_u32 (GByteArray *b, guint32 v)
{
  for (int i = 0; i < 4; i++)
    put_u8 (b, (guint8) (v >> (8 * i)));
}

static void
put_u64 (GByteArray *b, guint64 v)
{
  put_u32 (b, (guint32) v);
  put_u32 (b, (guint32) (v >> 32));
}

static void
put_f32 (GByteArray *b, float f)
{
  guint32 bits;

  memcpy (&bits, &f, 4);
  put_u32 (b, bits);
}

static void
put_f64 (GByteArray *b, double d)
{
  guint64 bits;

  memcpy (&bits, &d, 8);
  put_u64 (b, bits);
}

static void
put_str_len (GByteArray *b, const char *s, gsize len)
{
  put_u64 (b, len);
  put (b, s, len);
}

static void
put_str (GByteArray *b, const char *s)
{
  put_str_len (b, s, strlen (s));
}

static void
pad (GByteArray *b, guint32 alignment)
{
  while (b->len % alignment != 0)
    put_u8 (b, 0);
}

static Writer *
writer_new (guint32 alignment)
{
  Writer *w = g_new0 (Writer, 1);

  w->kv = g_byte_array_new ();
  w->info = g_byte_array_new ();
  w->data = g_byte_array_new ();
  w->alignment = alignment;
  return w;
}

static void
writer_free (Writer *w)
{
  g_byte_array_unref (w->kv);
  g_byte_array_unref (w->info);
  g_byte_array_unref (w->data);
  g_free (w);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Writer, writer_free)

static void
kv_begin (Writer *w, const char *key, AtGgufType type)
{
  put_str (w->kv, key);
  put_u32 (w->kv, type);
  w->n_kv++;
}

static void
kv_u32 (Writer *w, const char *key, guint32 v)
{
  kv_begin (w, key, AT_GGUF_TYPE_UINT32);
  put_u32 (w->kv, v);
}

static void
kv_string (Writer *w, const char *key, const char *s)
{
  kv_begin (w, key, AT_GGUF_TYPE_STRING);
  put_str (w->kv, s);
}

static void
kv_array (Writer *w, const char *key, AtGgufType etype, guint64 n)
{
  kv_begin (w, key, AT_GGUF_TYPE_ARRAY);
  put_u32 (w->kv, etype);
  put_u64 (w->kv, n);
}

static void
tensor_info (Writer *w, const char *name, guint32 n_dims, const guint64 *ne, guint32 type,
             guint64 offset)
{
  put_str (w->info, name);
  put_u32 (w->info, n_dims);
  for (guint32 d = 0; d < n_dims; d++)
    put_u64 (w->info, ne[d]);
  put_u32 (w->info, type);
  put_u64 (w->info, offset);
  w->n_tensors++;
}

/* Appends the bytes, aligned, to the data section and writes the info; returns the offset. */
static guint64
tensor_add (Writer *w, const char *name, guint32 n_dims, const guint64 *ne, guint32 type,
            const void *bytes, gsize n)
{
  guint64 offset;

  pad (w->data, w->alignment);
  offset = w->data->len;
  put (w->data, bytes, n);
  tensor_info (w, name, n_dims, ne, type, offset);
  return offset;
}

static GBytes *
writer_finish (Writer *w, guint32 version)
{
  GByteArray *out = g_byte_array_new ();

  put (out, "GGUF", 4);
  put_u32 (out, version);
  put_u64 (out, w->n_tensors);
  put_u64 (out, w->n_kv);
  put (out, w->kv->data, w->kv->len);
  put (out, w->info->data, w->info->len);
  if (w->data->len > 0)
    {
      pad (out, w->alignment);
      put (out, w->data->data, w->data->len);
    }
  return g_byte_array_free_to_bytes (out);
}

static void
save_seed (GBytes *bytes, const char *name)
{
  const char *dir = g_getenv ("AT_GGUF_CORPUS_DIR");
  g_autofree char *file = NULL, *path = NULL;
  gsize size;
  const char *data = g_bytes_get_data (bytes, &size);

  if (dir == NULL)
    return;
  file = g_strconcat (name, ".gguf", NULL);
  path = g_build_filename (dir, file, NULL);
  g_assert_true (g_file_set_contents (path, data != NULL ? data : "", (gssize) size, NULL));
}

static AtGguf *
open_ok (GBytes *bytes, const char *seed)
{
  g_autoptr (GError) error = NULL;
  AtGguf *g;

  if (seed != NULL)
    save_seed (bytes, seed);
  g = at_gguf_new_from_bytes (bytes, "t.gguf", &error);
  g_assert_no_error (error);
  g_assert_nonnull (g);
  return g;
}

static void
expect_error (GBytes *bytes, const char *seed, int code, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtGguf) g = NULL;

  if (seed != NULL)
    save_seed (bytes, seed);
  g = at_gguf_new_from_bytes (bytes, "bad.gguf", &error);
  g_assert_null (g);
  g_assert_error (error, AT_ERROR, code);
  g_assert_true (g_str_has_prefix (error->message, "bad.gguf: "));
  if (strstr (error->message, fragment) == NULL)
    g_error ("expected \"%s\" in: %s", fragment, error->message);
  g_test_message ("%s", error->message);
}

/* ---- Every metadata type, every mapped tensor type ---- */

static const guint8 q2_k_block_scales[16] = { 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
                                              0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f };

/* Q2_K, worked by hand (as in test-file-tensors): d = 0.5, dmin = 0.25, group g has scale g and
 * min 1, every 2-bit value 3 except value 0, which is 1. */
static void
make_q2_k (guint8 *block, float *expect)
{
  memset (block, 0, 84);
  memcpy (block, q2_k_block_scales, 16);
  memset (block + 16, 0xff, 64);
  block[16] = 0xfd;
  block[80] = 0x00, block[81] = 0x38;
  block[82] = 0x00, block[83] = 0x34;
  for (int v = 0; v < 256; v++)
    expect[v] = 0.5f * (float) (v / 16) * (v == 0 ? 1 : 3) - 0.25f;
}

/* Q3_K, worked by hand: d = 2, group g's scale g + 1, every low 2-bit field 2, high bits set
 * except value 1's, which subtracts 4. */
static void
make_q3_k (guint8 *block, float *expect)
{
  memset (block, 0, 110);
  for (int g = 0; g < 16; g++)
    {
      int field = g + 1 + 32;

      if (g < 8)
        block[96 + g] |= (guint8) (field & 15);
      else
        block[96 + g - 8] |= (guint8) ((field & 15) << 4);
      block[104 + (g & 3)] |= (guint8) (((field >> 4) & 3) << (2 * (g >> 2)));
    }
  memset (block, 0xff, 32);
  block[1] = 0xfe;
  memset (block + 32, 0xaa, 64);
  block[108] = 0x00, block[109] = 0x40;
  for (int v = 0; v < 256; v++)
    expect[v] = 2.0f * (float) (v / 16 + 1) * (v == 1 ? -2.0f : 2.0f);
}

typedef struct
{
  const char *name;
  guint32 ggml;
  AtFileDtype dtype;
  AtDtype quant; /* the engine type to quantise with, or AT_N_DTYPES */
} TypeCase;

static const TypeCase type_cases[] = {
  { "w.f32", 0, AT_FILE_DTYPE_F32, AT_N_DTYPES },
  { "w.f16", 1, AT_FILE_DTYPE_F16, AT_N_DTYPES },
  { "w.bf16", 30, AT_FILE_DTYPE_BF16, AT_N_DTYPES },
  { "w.f64", 28, AT_FILE_DTYPE_F64, AT_N_DTYPES },
  { "w.i8", 24, AT_FILE_DTYPE_I8, AT_N_DTYPES },
  { "w.i16", 25, AT_FILE_DTYPE_I16, AT_N_DTYPES },
  { "w.i32", 26, AT_FILE_DTYPE_I32, AT_N_DTYPES },
  { "w.i64", 27, AT_FILE_DTYPE_I64, AT_N_DTYPES },
  { "w.q8_0", 8, AT_FILE_DTYPE_Q8_0, AT_DTYPE_Q8_0 },
  { "w.q4_0", 2, AT_FILE_DTYPE_Q4_0, AT_DTYPE_Q4_0 },
  { "w.q4_1", 3, AT_FILE_DTYPE_Q4_1, AT_DTYPE_Q4_1 },
  { "w.q5_0", 6, AT_FILE_DTYPE_Q5_0, AT_DTYPE_Q5_0 },
  { "w.q5_1", 7, AT_FILE_DTYPE_Q5_1, AT_DTYPE_Q5_1 },
  { "w.q4_k", 12, AT_FILE_DTYPE_Q4_K, AT_DTYPE_Q4_K },
  { "w.q5_k", 13, AT_FILE_DTYPE_Q5_K, AT_DTYPE_Q5_K },
  { "w.q6_k", 14, AT_FILE_DTYPE_Q6_K, AT_DTYPE_Q6_K },
  { "w.q2_k", 10, AT_FILE_DTYPE_Q2_K, AT_N_DTYPES },
  { "w.q3_k", 11, AT_FILE_DTYPE_Q3_K, AT_N_DTYPES },
};

/* The GGUF ne of `tc`'s tensor: rows of 5 plain values, 2 blocks of 32 or one of 256, two rows
 * (one for the hand-made Q2_K and Q3_K blocks). */
static void
case_ne (const TypeCase *tc, guint64 *ne)
{
  guint block = at_file_dtype_info (tc->dtype)->block_size;

  ne[0] = block == 1 ? 5 : block == 32 ? 64 : 256;
  ne[1] = block == 256 && tc->quant == AT_N_DTYPES ? 1 : 2;
}

/* Writes the tensor of `tc` and its expected f32 values (`expect`, 512 floats at most);
 * returns the element count. */
static gint64
write_type_case (Writer *w, const TypeCase *tc, float *expect)
{
  g_autoptr (GByteArray) b = g_byte_array_new ();
  guint64 ne[2];
  gint64 n;

  case_ne (tc, ne);
  n = (gint64) (ne[0] * ne[1]);
  if (tc->dtype == AT_FILE_DTYPE_Q2_K || tc->dtype == AT_FILE_DTYPE_Q3_K)
    {
      guint8 raw[110];

      if (tc->dtype == AT_FILE_DTYPE_Q2_K)
        make_q2_k (raw, expect);
      else
        make_q3_k (raw, expect);
      put (b, raw, at_file_dtype_info (tc->dtype)->type_size);
    }
  else if (tc->quant != AT_N_DTYPES)
    {
      float v[512];
      g_autofree guint8 *raw = g_malloc (at_dtype_row_bytes (tc->quant, n));

      for (gint64 i = 0; i < n; i++)
        v[i] = sinf ((float) i * 0.37f) * 3.0f;
      at_quantize_row (tc->quant, v, raw, n);
      at_dequantize_row (tc->quant, raw, expect, n);
      put (b, raw, at_dtype_row_bytes (tc->quant, n));
    }
  else
    for (gint64 i = 0; i < n; i++)
      {
        /* Integers for the integer types; halves (exact in f16 and bf16) for the floats. */
        gboolean is_int = tc->dtype >= AT_FILE_DTYPE_I64 && tc->dtype <= AT_FILE_DTYPE_I8;
        float v = is_int ? (float) (i - 7) * 9.0f : (float) (i - 7) * 0.5f;

        expect[i] = v;
        switch (tc->dtype)
          {
            case AT_FILE_DTYPE_F32:
              put_f32 (b, v);
              break;
            case AT_FILE_DTYPE_F16:
              put_u16 (b, at_f32_to_f16 (v));
              break;
            case AT_FILE_DTYPE_BF16:
              put_u16 (b, at_f32_to_bf16 (v));
              break;
            case AT_FILE_DTYPE_F64:
              put_f64 (b, v);
              break;
            case AT_FILE_DTYPE_I8:
              put_u8 (b, (guint8) (gint8) v);
              break;
            case AT_FILE_DTYPE_I16:
              put_u16 (b, (guint16) (gint16) v);
              break;
            case AT_FILE_DTYPE_I32:
              put_u32 (b, (guint32) (gint32) v);
              break;
            case AT_FILE_DTYPE_I64:
              put_u64 (b, (guint64) (gint64) v);
              break;
            default:
              g_assert_not_reached ();
          }
      }
  tensor_add (w, tc->name, 2, ne, tc->ggml, b->data, b->len);
  return n;
}

/* Every scalar type, arrays of every type, nested arrays, and an invalid-UTF-8 string value. */
static void
write_all_metadata (Writer *w)
{
  kv_u32 (w, "general.alignment", w->alignment);
  kv_string (w, "general.architecture", "test");
  kv_begin (w, "s.u8", AT_GGUF_TYPE_UINT8), put_u8 (w->kv, 200);
  kv_begin (w, "s.i8", AT_GGUF_TYPE_INT8), put_u8 (w->kv, (guint8) -100);
  kv_begin (w, "s.u16", AT_GGUF_TYPE_UINT16), put_u16 (w->kv, 60000);
  kv_begin (w, "s.i16", AT_GGUF_TYPE_INT16), put_u16 (w->kv, (guint16) -30000);
  kv_u32 (w, "s.u32", 4000000000u);
  kv_begin (w, "s.i32", AT_GGUF_TYPE_INT32), put_u32 (w->kv, (guint32) -2000000000);
  kv_begin (w, "s.f32", AT_GGUF_TYPE_FLOAT32), put_f32 (w->kv, 1.5f);
  kv_begin (w, "s.bool", AT_GGUF_TYPE_BOOL), put_u8 (w->kv, 1);
  kv_begin (w, "s.string", AT_GGUF_TYPE_STRING), put_str_len (w->kv, "h\xc3\xa9llo\xff\0!", 9);
  kv_begin (w, "s.u64", AT_GGUF_TYPE_UINT64), put_u64 (w->kv, (G_GUINT64_CONSTANT (1) << 63) + 5);
  kv_begin (w, "s.u64small", AT_GGUF_TYPE_UINT64), put_u64 (w->kv, 1234567890123ull);
  kv_begin (w, "s.i64", AT_GGUF_TYPE_INT64),
      put_u64 (w->kv, (guint64) G_GINT64_CONSTANT (-1099511627776));
  kv_begin (w, "s.f64", AT_GGUF_TYPE_FLOAT64), put_f64 (w->kv, -0.1);
  kv_begin (w, "s.nan", AT_GGUF_TYPE_FLOAT32), put_f32 (w->kv, NAN);

  kv_array (w, "a.u8", AT_GGUF_TYPE_UINT8, 3), put_u8 (w->kv, 1), put_u8 (w->kv, 2),
      put_u8 (w->kv, 255);
  kv_array (w, "a.i8", AT_GGUF_TYPE_INT8, 3), put_u8 (w->kv, 0xff), put_u8 (w->kv, 0),
      put_u8 (w->kv, 127);
  kv_array (w, "a.u16", AT_GGUF_TYPE_UINT16, 2), put_u16 (w->kv, 65535), put_u16 (w->kv, 7);
  kv_array (w, "a.i16", AT_GGUF_TYPE_INT16, 2), put_u16 (w->kv, (guint16) -32768),
      put_u16 (w->kv, 7);
  kv_array (w, "a.u32", AT_GGUF_TYPE_UINT32, 2), put_u32 (w->kv, 0xffffffffu), put_u32 (w->kv, 7);
  kv_array (w, "a.i32", AT_GGUF_TYPE_INT32, 2), put_u32 (w->kv, (guint32) G_MININT32),
      put_u32 (w->kv, 7);
  kv_array (w, "a.f32", AT_GGUF_TYPE_FLOAT32, 3), put_f32 (w->kv, 0.5f), put_f32 (w->kv, -2.0f),
      put_f32 (w->kv, INFINITY);
  kv_array (w, "a.bool", AT_GGUF_TYPE_BOOL, 3), put_u8 (w->kv, 1), put_u8 (w->kv, 0),
      put_u8 (w->kv, 1);
  kv_array (w, "a.string", AT_GGUF_TYPE_STRING, 4), put_str (w->kv, "a"), put_str (w->kv, ""),
      put_str (w->kv, "\xff\xfe"), put_str (w->kv, "\xe2\x96\x81the");
  kv_array (w, "a.u64", AT_GGUF_TYPE_UINT64, 2), put_u64 (w->kv, G_MAXUINT64), put_u64 (w->kv, 7);
  kv_array (w, "a.i64", AT_GGUF_TYPE_INT64, 2), put_u64 (w->kv, (guint64) G_MININT64),
      put_u64 (w->kv, 7);
  kv_array (w, "a.f64", AT_GGUF_TYPE_FLOAT64, 2), put_f64 (w->kv, 1e300), put_f64 (w->kv, -0.25);
  kv_array (w, "a.empty", AT_GGUF_TYPE_STRING, 0);
  /* [[1, 2], [3]] as i32, then [[["x"]]]. */
  kv_array (w, "a.nested", AT_GGUF_TYPE_ARRAY, 2);
  put_u32 (w->kv, AT_GGUF_TYPE_INT32), put_u64 (w->kv, 2), put_u32 (w->kv, 1), put_u32 (w->kv, 2);
  put_u32 (w->kv, AT_GGUF_TYPE_INT32), put_u64 (w->kv, 1), put_u32 (w->kv, 3);
  kv_array (w, "a.deep", AT_GGUF_TYPE_ARRAY, 1);
  put_u32 (w->kv, AT_GGUF_TYPE_ARRAY), put_u64 (w->kv, 1);
  put_u32 (w->kv, AT_GGUF_TYPE_STRING), put_u64 (w->kv, 1), put_str (w->kv, "x");
}

static void
check_scalars (AtGguf *g)
{
  g_autoptr (GError) error = NULL;
  gint64 i;
  double d;
  gboolean b;
  const char *s;
  gsize len;
  g_autofree char *arch = NULL, *dup = NULL;
  const AtGgufKv *kv;

  g_assert_true (at_gguf_get_int (g, "s.u8", &i, &error));
  g_assert_cmpint (i, ==, 200);
  g_assert_true (at_gguf_get_int (g, "s.i8", &i, &error));
  g_assert_cmpint (i, ==, -100);
  g_assert_true (at_gguf_get_int (g, "s.u16", &i, &error));
  g_assert_cmpint (i, ==, 60000);
  g_assert_true (at_gguf_get_int (g, "s.i16", &i, &error));
  g_assert_cmpint (i, ==, -30000);
  g_assert_true (at_gguf_get_int (g, "s.u32", &i, &error));
  g_assert_cmpint (i, ==, 4000000000);
  g_assert_true (at_gguf_get_int (g, "s.i32", &i, &error));
  g_assert_cmpint (i, ==, -2000000000);
  g_assert_true (at_gguf_get_int (g, "s.u64small", &i, &error));
  g_assert_cmpint (i, ==, 1234567890123);
  g_assert_true (at_gguf_get_int (g, "s.i64", &i, &error));
  g_assert_cmpint (i, ==, -(G_GINT64_CONSTANT (1) << 40));
  g_assert_true (at_gguf_get_float (g, "s.f32", &d, &error));
  g_assert_cmpfloat (d, ==, 1.5);
  g_assert_true (at_gguf_get_float (g, "s.f64", &d, &error));
  g_assert_cmpfloat (d, ==, -0.1);
  g_assert_true (at_gguf_get_float (g, "s.i32", &d, &error));
  g_assert_cmpfloat (d, ==, -2e9);
  g_assert_true (at_gguf_get_float (g, "s.u64", &d, &error));
  g_assert_cmpfloat (d, ==, ldexp (1, 63));
  g_assert_true (at_gguf_get_bool (g, "s.bool", &b, &error));
  g_assert_true (b);
  g_assert_no_error (error);
  arch = at_gguf_dup_string (g, "general.architecture", &error);
  g_assert_cmpstr (arch, ==, "test");

  /* String values keep their bytes: invalid UTF-8 and an embedded NUL included. */
  kv = at_gguf_find_kv (g, "s.string");
  g_assert_cmpint (at_gguf_kv_get_type (kv), ==, AT_GGUF_TYPE_STRING);
  g_assert_true (at_gguf_kv_get_string (kv, &s, &len));
  g_assert_cmpmem (s, len, "h\xc3\xa9llo\xff\0!", 9);
  dup = at_gguf_dup_string (g, "s.string", &error);
  g_assert_cmpmem (dup, 10, "h\xc3\xa9llo\xff\0!\0", 10);

  /* Wrong types and missing keys name the key and the type. */
  g_assert_false (at_gguf_get_int (g, "s.u64", &i, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
  g_assert_nonnull (strstr (error->message, "\"s.u64\" is u64 9223372036854775813, too large"));
  g_clear_error (&error);
  g_assert_false (at_gguf_get_int (g, "s.f32", &i, &error));
  g_assert_nonnull (
      strstr (error->message, "t.gguf: metadata key \"s.f32\" is f32, not an integer"));
  g_clear_error (&error);
  g_assert_false (at_gguf_get_float (g, "s.bool", &d, &error));
  g_assert_nonnull (strstr (error->message, "\"s.bool\" is bool, not a number"));
  g_clear_error (&error);
  g_assert_false (at_gguf_get_bool (g, "a.bool", &b, &error));
  g_assert_nonnull (strstr (error->message, "\"a.bool\" is an array of bool, not bool"));
  g_clear_error (&error);
  g_assert_null (at_gguf_dup_string (g, "s.u8", &error));
  g_assert_nonnull (strstr (error->message, "\"s.u8\" is u8, not a string"));
  g_clear_error (&error);
  g_assert_false (at_gguf_get_int (g, "no.such.key", &i, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
  g_assert_nonnull (strstr (error->message, "metadata key \"no.such.key\" is missing"));
  g_clear_error (&error);
  g_assert_null (at_gguf_find_kv (g, "no.such.key"));
}

static void
check_arrays (AtGguf *g)
{
  const AtGgufKv *kv, *inner;
  gint64 i;
  double d;
  gboolean b;
  const char *s;
  gsize len;
  g_autofree char *dup = NULL;

  kv = at_gguf_find_kv (g, "a.u8");
  g_assert_cmpint (at_gguf_kv_get_type (kv), ==, AT_GGUF_TYPE_ARRAY);
  g_assert_cmpint (at_gguf_kv_get_array_type (kv), ==, AT_GGUF_TYPE_UINT8);
  g_assert_cmpuint (at_gguf_kv_get_array_length (kv), ==, 3);
  g_assert_true (at_gguf_kv_array_get_int (kv, 2, &i));
  g_assert_cmpint (i, ==, 255);
  g_assert_false (at_gguf_kv_array_get_int (kv, 3, &i));
  g_assert_false (at_gguf_kv_array_get_string (kv, 0, &s, &len));
  g_assert_true (at_gguf_kv_array_get_int (at_gguf_find_kv (g, "a.i8"), 0, &i));
  g_assert_cmpint (i, ==, -1);
  g_assert_true (at_gguf_kv_array_get_int (at_gguf_find_kv (g, "a.u16"), 0, &i));
  g_assert_cmpint (i, ==, 65535);
  g_assert_true (at_gguf_kv_array_get_int (at_gguf_find_kv (g, "a.i16"), 0, &i));
  g_assert_cmpint (i, ==, -32768);
  g_assert_true (at_gguf_kv_array_get_int (at_gguf_find_kv (g, "a.u32"), 0, &i));
  g_assert_cmpint (i, ==, 0xffffffffll);
  g_assert_true (at_gguf_kv_array_get_int (at_gguf_find_kv (g, "a.i32"), 0, &i));
  g_assert_cmpint (i, ==, G_MININT32);
  g_assert_false (at_gguf_kv_array_get_int (at_gguf_find_kv (g, "a.u64"), 0, &i));
  g_assert_true (at_gguf_kv_array_get_int (at_gguf_find_kv (g, "a.u64"), 1, &i));
  g_assert_cmpint (i, ==, 7);
  g_assert_true (at_gguf_kv_array_get_int (at_gguf_find_kv (g, "a.i64"), 0, &i));
  g_assert_cmpint (i, ==, G_MININT64);
  g_assert_true (at_gguf_kv_array_get_float (at_gguf_find_kv (g, "a.f32"), 1, &d));
  g_assert_cmpfloat (d, ==, -2.0);
  g_assert_true (at_gguf_kv_array_get_float (at_gguf_find_kv (g, "a.f32"), 2, &d));
  g_assert_true (isinf (d));
  g_assert_true (at_gguf_kv_array_get_float (at_gguf_find_kv (g, "a.f64"), 0, &d));
  g_assert_cmpfloat (d, ==, 1e300);
  g_assert_true (at_gguf_kv_array_get_float (at_gguf_find_kv (g, "a.i8"), 0, &d));
  g_assert_cmpfloat (d, ==, -1);
  g_assert_false (at_gguf_kv_array_get_int (at_gguf_find_kv (g, "a.f64"), 0, &i));
  g_assert_true (at_gguf_kv_array_get_bool (at_gguf_find_kv (g, "a.bool"), 1, &b));
  g_assert_false (b);
  g_assert_true (at_gguf_kv_array_get_bool (at_gguf_find_kv (g, "a.bool"), 2, &b));
  g_assert_true (b);

  kv = at_gguf_find_kv (g, "a.string");
  g_assert_cmpint (at_gguf_kv_get_array_type (kv), ==, AT_GGUF_TYPE_STRING);
  g_assert_true (at_gguf_kv_array_get_string (kv, 0, &s, &len));
  g_assert_cmpmem (s, len, "a", 1);
  g_assert_true (at_gguf_kv_array_get_string (kv, 1, &s, &len));
  g_assert_cmpuint (len, ==, 0);
  g_assert_true (at_gguf_kv_array_get_string (kv, 2, &s, &len));
  g_assert_cmpmem (s, len, "\xff\xfe", 2);
  dup = at_gguf_kv_array_dup_string (kv, 3);
  g_assert_cmpstr (dup, ==, "\xe2\x96\x81the");
  g_assert_false (at_gguf_kv_array_get_string (kv, 4, &s, &len));
  g_assert_cmpuint (at_gguf_kv_get_array_length (at_gguf_find_kv (g, "a.empty")), ==, 0);

  kv = at_gguf_find_kv (g, "a.nested");
  g_assert_cmpint (at_gguf_kv_get_array_type (kv), ==, AT_GGUF_TYPE_ARRAY);
  inner = at_gguf_kv_array_get_array (kv, 0);
  g_assert_null (at_gguf_kv_get_key (inner));
  g_assert_cmpint (at_gguf_kv_get_array_type (inner), ==, AT_GGUF_TYPE_INT32);
  g_assert_cmpuint (at_gguf_kv_get_array_length (inner), ==, 2);
  g_assert_true (at_gguf_kv_array_get_int (inner, 1, &i));
  g_assert_cmpint (i, ==, 2);
  inner = at_gguf_kv_array_get_array (kv, 1);
  g_assert_true (at_gguf_kv_array_get_int (inner, 0, &i));
  g_assert_cmpint (i, ==, 3);
  g_assert_null (at_gguf_kv_array_get_array (kv, 2));
  inner = at_gguf_kv_array_get_array (at_gguf_kv_array_get_array (at_gguf_find_kv (g, "a.deep"), 0),
                                      0);
  g_assert_true (at_gguf_kv_array_get_string (inner, 0, &s, &len));
  g_assert_cmpmem (s, len, "x", 1);
}

static char *
kv_json (AtGguf *g, const char *key, guint max_items)
{
  g_autoptr (JsonNode) node = at_gguf_kv_to_json (at_gguf_find_kv (g, key), max_items);

  return json_to_string (node, FALSE);
}

static void
check_json (AtGguf *g)
{
  static const struct
  {
    const char *key;
    guint max;
    const char *json;
  } cases[] = {
    { "s.u8", 0, "200" },
    { "s.i64", 0, "-1099511627776" },
    { "s.bool", 0, "true" },
    { "s.f32", 0, "1.5" },
    { "s.nan", 0, "\"nan\"" },
    /* Invalid bytes become U+FFFD; the NUL is invalid in JSON text too. */
    { "s.string", 0, "\"h\xc3\xa9llo\xef\xbf\xbd\xef\xbf\xbd!\"" },
    { "a.i8", 0, "[-1,0,127]" },
    { "a.i8", 3, "[-1,0,127]" },
    { "a.i8", 2, "{\"type\":\"array\",\"element_type\":\"i8\",\"length\":3,\"first\":[-1,0]}" },
    { "a.f32", 0, "[0.5,-2.0,\"inf\"]" },
    { "a.bool", 0, "[true,false,true]" },
    { "a.string", 2,
      "{\"type\":\"array\",\"element_type\":\"string\",\"length\":4,\"first\":[\"a\",\"\"]}" },
    { "a.string", 0, "[\"a\",\"\",\"\xef\xbf\xbd\xef\xbf\xbd\",\"\xe2\x96\x81the\"]" },
    { "a.empty", 1, "[]" },
    { "a.nested", 0, "[[1,2],[3]]" },
    { "a.nested", 1,
      "{\"type\":\"array\",\"element_type\":\"array\",\"length\":2,\"first\":[{\"type\":"
      "\"array\",\"element_type\":\"i32\",\"length\":2,\"first\":[1]}]}" },
    { "a.deep", 0, "[[[\"x\"]]]" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *got = kv_json (g, cases[i].key, cases[i].max);

      g_assert_cmpstr (got, ==, cases[i].json);
    }
}

static void
check_tensors (AtGguf *g, GBytes *bytes, gint64 *numel, float expect[][512])
{
  AtTensorSet *set = at_gguf_get_tensors (g);
  const guint8 *base = g_bytes_get_data (bytes, NULL);
  g_autoptr (GError) error = NULL;
  const AtTensorEntry *e;
  const gint64 shape4[4] = { 5, 4, 3, 2 };

  g_assert_cmpuint (at_tensor_set_get_n_tensors (set), ==, G_N_ELEMENTS (type_cases) + 2);
  for (guint t = 0; t < G_N_ELEMENTS (type_cases); t++)
    {
      float got[512];
      guint64 ne[2];

      e = at_tensor_set_get (set, t);
      case_ne (&type_cases[t], ne);
      g_assert_cmpstr (e->name, ==, type_cases[t].name);
      g_assert_cmpint (e->dtype, ==, type_cases[t].dtype);
      g_assert_cmpint (e->ndim, ==, 2);
      g_assert_cmpint (e->shape[0], ==, ne[1]);
      g_assert_cmpint (e->shape[1], ==, ne[0]);
      g_assert_cmpint (e->numel, ==, numel[t]);
      g_assert_cmpuint (e->container, ==, 0);
      g_assert_cmpuint (e->offset % 64, ==, 0);
      g_assert_true (e->data == base + e->offset);
      g_assert_true (at_tensor_set_read_f32 (set, e, got, &error));
      g_assert_no_error (error);
      for (gint64 i = 0; i < numel[t]; i++)
        if (got[i] != expect[t][i])
          g_error ("%s[%" G_GINT64_FORMAT "]: %g, expected %g", e->name, i, got[i], expect[t][i]);
    }
  /* ne (2, 3, 4, 5) reads as shape [5, 4, 3, 2]; a zero dimension is a valid empty tensor. */
  e = at_tensor_set_find (set, "w.4d");
  g_assert_cmpint (e->ndim, ==, 4);
  g_assert_cmpmem (e->shape, sizeof shape4, shape4, sizeof shape4);
  e = at_tensor_set_find (set, "w.empty");
  g_assert_cmpint (e->numel, ==, 0);
  g_assert_cmpint (e->shape[0], ==, 0);
  g_assert_cmpint (e->shape[1], ==, 4);
}

static GBytes *
write_full (guint32 version, gint64 *numel, float expect[][512])
{
  g_autoptr (Writer) w = writer_new (64);
  float v[120];
  const guint64 ne4[4] = { 2, 3, 4, 5 }, ne_empty[2] = { 4, 0 };

  write_all_metadata (w);
  for (guint t = 0; t < G_N_ELEMENTS (type_cases); t++)
    numel[t] = write_type_case (w, &type_cases[t], expect[t]);
  for (int i = 0; i < 120; i++)
    v[i] = (float) i;
  tensor_add (w, "w.4d", 4, ne4, 0, v, sizeof v);
  tensor_add (w, "w.empty", 2, ne_empty, 0, NULL, 0);
  return writer_finish (w, version);
}

static void
test_written (gconstpointer data)
{
  guint32 version = GPOINTER_TO_UINT (data);
  gint64 numel[G_N_ELEMENTS (type_cases)];
  static float expect[G_N_ELEMENTS (type_cases)][512];
  g_autoptr (GBytes) bytes = write_full (version, numel, expect);
  g_autoptr (AtGguf) g = open_ok (bytes, version == 3 ? "all-types-v3" : "all-types-v2");

  g_assert_cmpuint (at_gguf_get_version (g), ==, version);
  g_assert_cmpuint (at_gguf_get_alignment (g), ==, 64);
  g_assert_cmpuint (at_gguf_get_data_offset (g) % 64, ==, 0);
  g_assert_cmpuint (at_gguf_get_n_kv (g), ==, 31);
  g_assert_cmpstr (at_gguf_kv_get_key (at_gguf_get_kv (g, 0)), ==, "general.alignment");
  g_assert_cmpstr (at_gguf_kv_get_key (at_gguf_get_kv (g, 30)), ==, "a.deep");
  g_assert_true (at_gguf_get_kv (g, 5)
                 == at_gguf_find_kv (g, at_gguf_kv_get_key (at_gguf_get_kv (g, 5))));
  check_scalars (g);
  check_arrays (g);
  check_json (g);
  check_tensors (g, bytes, numel, expect);
}

/* Through a real file: mapped, named by its basename, tensors viewing the mapping. */
static void
test_open_file (void)
{
  gint64 numel[G_N_ELEMENTS (type_cases)];
  static float expect[G_N_ELEMENTS (type_cases)][512];
  g_autoptr (GBytes) bytes = write_full (3, numel, expect);
  g_autofree char *path = g_build_filename (at_test_tmpdir (), "model.gguf", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtGguf) g = NULL;
  AtTensorSet *set;
  const AtTensorEntry *e;
  float got[512];

  g_assert_true (g_file_set_contents (path, g_bytes_get_data (bytes, NULL),
                                      (gssize) g_bytes_get_size (bytes), &error));
  g = at_gguf_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (at_gguf_get_file_name (g), ==, "model.gguf");
  set = at_gguf_get_tensors (g);
  g_assert_cmpstr (at_tensor_set_get_file_name (set), ==, "model.gguf");
  e = at_tensor_set_find (set, "w.q4_k");
  g_assert_true (at_tensor_set_read_f32 (set, e, got, &error));
  g_assert_cmpmem (got, sizeof (float) * 512, expect[13], sizeof (float) * 512);

  g_assert_null (at_gguf_open ("/nonexistent/x.gguf", &error));
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

/* ---- The real vocab-only files ---- */

typedef struct
{
  const char *name;
  guint64 n_kv;
  guint64 vocab;
  guint64 merges;
  const char *model;
  const char *first;
  const char *last;
} VocabFacts;

/* Checked by hand: vocab sizes as published for each model family (LLaMA 2 32,000, Llama 3
 * 128,256, GPT-2 50,257, Qwen2 151,936 with padding, Phi-3 32,064), GPT-2's 50,000 merges. */
static const VocabFacts vocab_facts[] = {
  { "llama-spm", 22, 32000, 0, "llama", "<unk>", "\xe7\xbb\x99" },
  { "llama-bpe", 20, 128256, 280147, "gpt2", "!", "<|reserved_special_token_250|>" },
  { "gpt-2", 16, 50257, 50000, "gpt2", "!", "<|endoftext|>" },
  { "qwen2", 20, 151936, 151387, "gpt2", "!", "[PAD151935]" },
  { "phi-3", 26, 32064, 0, "llama", "<unk>", "[PAD32063]" },
};

static JsonObject *
load_facts (const char *gguf, const char *name, JsonParser *parser)
{
  g_autofree char *out_name = g_strconcat (name, ".json", NULL);
  g_autofree char *out = g_build_filename (at_test_tmpdir (), out_name, NULL);
  const char *args[] = { gguf, out, NULL };
  g_autoptr (GError) error = NULL;

  if (!at_test_run_ref_tool ("gguf_facts.py", args))
    return NULL;
  g_assert_true (json_parser_load_from_file (parser, out, &error));
  g_assert_no_error (error);
  return json_node_get_object (json_parser_get_root (parser));
}

static void
compare_scalar (AtGguf *g, const char *key, JsonNode *ref)
{
  g_autoptr (GError) error = NULL;
  GType type = json_node_get_value_type (ref);

  if (type == G_TYPE_INT64)
    {
      gint64 i;

      g_assert_true (at_gguf_get_int (g, key, &i, &error));
      g_assert_cmpint (i, ==, json_node_get_int (ref));
    }
  else if (type == G_TYPE_DOUBLE)
    {
      double d;

      g_assert_true (at_gguf_get_float (g, key, &d, &error));
      g_assert_cmpfloat (d, ==, json_node_get_double (ref));
    }
  else if (type == G_TYPE_BOOLEAN)
    {
      gboolean b;

      g_assert_true (at_gguf_get_bool (g, key, &b, &error));
      g_assert_cmpint (b, ==, json_node_get_boolean (ref));
    }
  else
    {
      g_autofree char *s = at_gguf_dup_string (g, key, &error);

      g_assert_cmpstr (s, ==, json_node_get_string (ref));
    }
  g_assert_no_error (error);
}

static void
check_tokens (AtGguf *g, JsonObject *facts, const VocabFacts *hand)
{
  const AtGgufKv *tokens = at_gguf_find_kv (g, "tokenizer.ggml.tokens");
  const AtGgufKv *types = at_gguf_find_kv (g, "tokenizer.ggml.token_type");
  const AtGgufKv *merges = at_gguf_find_kv (g, "tokenizer.ggml.merges");
  JsonObject *counts = json_object_get_object_member (facts, "token_type_counts");
  guint64 n = at_gguf_kv_get_array_length (tokens), count[8] = { 0 };
  g_autofree char *first = at_gguf_kv_array_dup_string (tokens, 0);
  g_autofree char *last = at_gguf_kv_array_dup_string (tokens, n - 1);
  g_autoptr (GList) members = json_object_get_members (counts);

  g_assert_cmpuint (n, ==, hand->vocab);
  g_assert_cmpuint (n, ==, (guint64) json_object_get_int_member (facts, "vocab_size"));
  g_assert_cmpuint (at_gguf_kv_get_array_length (types), ==, n);
  g_assert_cmpuint (merges != NULL ? at_gguf_kv_get_array_length (merges) : 0, ==, hand->merges);
  g_assert_cmpuint (merges != NULL ? at_gguf_kv_get_array_length (merges) : 0, ==,
                    (guint64) json_object_get_int_member (facts, "merges_count"));
  g_assert_cmpstr (first, ==, hand->first);
  g_assert_cmpstr (last, ==, hand->last);
  g_assert_cmpstr (first, ==, json_object_get_string_member (facts, "first_token"));
  g_assert_cmpstr (last, ==, json_object_get_string_member (facts, "last_token"));
  for (guint64 i = 0; i < n; i++)
    {
      gint64 t;
      const char *s;
      gsize len;

      g_assert_true (at_gguf_kv_array_get_string (tokens, i, &s, &len));
      g_assert_true (at_gguf_kv_array_get_int (types, i, &t));
      g_assert_true (t >= 0 && t < 8);
      count[t]++;
    }
  for (GList *l = members; l != NULL; l = l->next)
    g_assert_cmpuint (count[atoi (l->data)], ==,
                      (guint64) json_object_get_int_member (counts, l->data));
  g_assert_cmpuint (g_list_length (members), ==,
                    (guint) (count[0] > 0) + (count[1] > 0) + (count[2] > 0) + (count[3] > 0)
                        + (count[4] > 0) + (count[5] > 0) + (count[6] > 0) + (count[7] > 0));
}

static void
test_vocab (gconstpointer data)
{
  const VocabFacts *hand = data;
  g_autofree char *rel = g_strdup_printf ("tokenizers/ggml-vocab-%s.gguf", hand->name);
  g_autofree char *path = at_test_shared_path (rel);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (AtGguf) g = NULL;
  g_autoptr (GList) keys = NULL;
  g_autofree char *model = NULL;
  JsonObject *facts, *scalars, *arrays, *special;
  static const char *const special_keys[][2] = {
    { "bos", "tokenizer.ggml.bos_token_id" },
    { "eos", "tokenizer.ggml.eos_token_id" },
    { "unknown", "tokenizer.ggml.unknown_token_id" },
    { "padding", "tokenizer.ggml.padding_token_id" },
  };

  if (path == NULL)
    return;
  g = at_gguf_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (at_gguf_get_version (g), ==, 3);
  g_assert_cmpuint (at_gguf_get_n_kv (g), ==, hand->n_kv);
  g_assert_cmpuint (at_tensor_set_get_n_tensors (at_gguf_get_tensors (g)), ==, 0);
  model = at_gguf_dup_string (g, "tokenizer.ggml.model", &error);
  g_assert_cmpstr (model, ==, hand->model);

  facts = load_facts (path, hand->name, parser);
  if (facts == NULL)
    return;
  g_assert_cmpuint (at_gguf_get_version (g), ==,
                    (guint64) json_object_get_int_member (facts, "version"));
  g_assert_cmpuint (at_gguf_get_n_kv (g), ==,
                    (guint64) json_object_get_int_member (facts, "kv_count"));
  g_assert_cmpuint (0, ==, json_object_get_int_member (facts, "tensor_count"));
  g_assert_cmpuint (at_gguf_get_alignment (g), ==,
                    (guint64) json_object_get_int_member (facts, "alignment"));
  g_assert_cmpuint (at_gguf_get_data_offset (g), ==,
                    (guint64) json_object_get_int_member (facts, "data_offset"));
  g_assert_cmpstr (model, ==, json_object_get_string_member (facts, "tokenizer_model"));

  scalars = json_object_get_object_member (facts, "scalars");
  arrays = json_object_get_object_member (facts, "arrays");
  g_assert_cmpuint (json_object_get_size (scalars) + json_object_get_size (arrays), ==,
                    at_gguf_get_n_kv (g));
  keys = json_object_get_members (scalars);
  for (GList *l = keys; l != NULL; l = l->next)
    compare_scalar (g, l->data, json_object_get_member (scalars, l->data));
  g_clear_pointer (&keys, g_list_free);
  keys = json_object_get_members (arrays);
  for (GList *l = keys; l != NULL; l = l->next)
    {
      const AtGgufKv *kv = at_gguf_find_kv (g, l->data);
      JsonObject *ref = json_object_get_object_member (arrays, l->data);

      g_assert_cmpstr (at_gguf_type_name (at_gguf_kv_get_array_type (kv)), ==,
                       json_object_get_string_member (ref, "element_type"));
      g_assert_cmpuint (at_gguf_kv_get_array_length (kv), ==,
                        (guint64) json_object_get_int_member (ref, "length"));
    }

  special = json_object_get_object_member (facts, "special_ids");
  for (guint i = 0; i < G_N_ELEMENTS (special_keys); i++)
    {
      gint64 id;

      g_assert_cmpint (json_object_has_member (special, special_keys[i][0]), ==,
                       at_gguf_find_kv (g, special_keys[i][1]) != NULL);
      if (!json_object_has_member (special, special_keys[i][0]))
        continue;
      g_assert_true (at_gguf_get_int (g, special_keys[i][1], &id, &error));
      g_assert_cmpint (id, ==, json_object_get_int_member (special, special_keys[i][0]));
    }
  {
    g_autofree char *arch = at_gguf_dup_string (g, "general.architecture", &error);

    g_assert_cmpstr (arch, ==, json_object_get_string_member (facts, "architecture"));
  }
  check_tokens (g, facts, hand);
  {
    g_autofree char *json = kv_json (g, "tokenizer.ggml.tokens", 2);
    g_autofree char *expect = g_strdup_printf (
        "{\"type\":\"array\",\"element_type\":\"string\",\"length\":%" G_GUINT64_FORMAT
        ",\"first\":[",
        hand->vocab);

    g_assert_true (g_str_has_prefix (json, expect));
  }
}

/* ---- Hostile files ---- */

/* A small valid v3 file: two kvs and two f32 tensors, the last ending at the end of the file. */
static Writer *
small_writer (void)
{
  Writer *w = writer_new (32);
  const float a[6] = { 1, 2, 3, 4, 5, 6 }, b[4] = { -1, -2, -3, -4 };
  const guint64 ne_a[2] = { 3, 2 }, ne_b[1] = { 4 };

  kv_string (w, "general.architecture", "tiny");
  kv_array (w, "tokenizer.ggml.tokens", AT_GGUF_TYPE_STRING, 2);
  put_str (w->kv, "a"), put_str (w->kv, "b");
  tensor_add (w, "a", 2, ne_a, 0, a, sizeof a);
  tensor_add (w, "b", 1, ne_b, 0, b, sizeof b);
  return w;
}

static void
test_small_valid (void)
{
  g_autoptr (Writer) w = small_writer ();
  g_autoptr (GBytes) v3 = writer_finish (w, 3);
  g_autoptr (GBytes) v2 = writer_finish (w, 2);
  g_autoptr (AtGguf) g3 = open_ok (v3, "small-v3");
  g_autoptr (AtGguf) g2 = open_ok (v2, "small-v2");
  const AtTensorEntry *a = at_tensor_set_find (at_gguf_get_tensors (g3), "a");
  float got[6];

  g_assert_cmpuint (at_gguf_get_version (g2), ==, 2);
  g_assert_cmpint (a->shape[0], ==, 2);
  g_assert_cmpint (a->shape[1], ==, 3);
  g_assert_true (at_tensor_set_read_f32 (at_gguf_get_tensors (g3), a, got, NULL));
  g_assert_cmpfloat (got[5], ==, 6);
}

static GBytes *
patched (GBytes *bytes, gsize at, const void *p, gsize n)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);
  guint8 *copy = g_memdup2 (data, size);

  g_assert_cmpuint (at + n, <=, size);
  memcpy (copy + at, p, n);
  return g_bytes_new_take (copy, size);
}

static void
test_header (void)
{
  g_autoptr (Writer) w = small_writer ();
  g_autoptr (GBytes) good = writer_finish (w, 3);
  g_autoptr (GBytes) empty = g_bytes_new (NULL, 0);
  g_autoptr (GBytes) magic = patched (good, 0, "GGUX", 4);
  g_autoptr (GBytes) v1 = patched (good, 4, "\x01\0\0\0", 4);
  g_autoptr (GBytes) v9 = patched (good, 4, "\x09\0\0\0", 4);
  g_autoptr (GBytes) be = patched (good, 4, "\0\0\0\x03", 4);
  const guint8 huge[8] = { 0, 0, 0, 0, 0, 0, 0, 0x10 }; /* 2^60 */
  const guint8 many[8] = { 0xe8, 0x03 }; /* 1000 */
  g_autoptr (GBytes) n_tensors = patched (good, 8, huge, 8);
  g_autoptr (GBytes) n_kv = patched (good, 16, huge, 8);
  g_autoptr (GBytes) n_kv_lie = patched (good, 16, many, 8);
  g_autoptr (GBytes) n_tensors_lie = patched (good, 8, many, 8);

  expect_error (empty, "empty", AT_ERROR_BAD_FILE, "too short to be a GGUF file (0 bytes)");
  expect_error (magic, "bad-magic", AT_ERROR_BAD_FILE,
                "not a GGUF file: it starts with 47 47 55 58");
  expect_error (v1, "v1", AT_ERROR_UNSUPPORTED, "GGUF v1 is not supported");
  expect_error (v9, "v9", AT_ERROR_UNSUPPORTED, "GGUF version 9 is not supported");
  expect_error (be, "big-endian", AT_ERROR_UNSUPPORTED, "a big-endian GGUF file");
  expect_error (n_tensors, "huge-tensor-count", AT_ERROR_BAD_FILE,
                "declares 1152921504606846976 tensors (at most 1048576)");
  expect_error (n_kv, "huge-kv-count", AT_ERROR_BAD_FILE,
                "declares 1152921504606846976 metadata pairs");
  expect_error (n_kv_lie, "lying-kv-count", AT_ERROR_BAD_FILE, "more than the");
  expect_error (
      n_tensors_lie, "lying-tensor-count", AT_ERROR_BAD_FILE,
      "declares 2 metadata pairs and 1000 tensors, more than the 248 bytes that follow can hold");
}

/* Every prefix of a valid file fails cleanly (its last tensor ends at the end of the file). */
static void
test_truncated (void)
{
  g_autoptr (Writer) w = small_writer ();
  g_autoptr (GBytes) good = writer_finish (w, 3);
  gsize size;
  const guint8 *data = g_bytes_get_data (good, &size);

  for (gsize n = 0; n < size; n++)
    {
      g_autoptr (GError) error = NULL;
      /* An exact-size copy, so a sanitizer sees any read past the end. */
      g_autoptr (GBytes) cut = g_bytes_new (data, n);
      g_autoptr (AtGguf) g = at_gguf_new_from_bytes (cut, "cut.gguf", &error);

      g_assert_null (g);
      g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
      if (n > 0 && n % 49 == 0)
        {
          g_autofree char *seed = g_strdup_printf ("truncated-%03" G_GSIZE_FORMAT, n);

          save_seed (cut, seed);
        }
    }
}

/* One kv after the architecture key, written by `write`, then the small file's tensors. */
static GBytes *
with_kv (void (*write) (Writer *w))
{
  g_autoptr (Writer) w = small_writer ();
  g_autoptr (Writer) out = writer_new (32);

  kv_string (out, "general.architecture", "tiny");
  write (out);
  g_byte_array_append (out->info, w->info->data, w->info->len);
  g_byte_array_append (out->data, w->data->data, w->data->len);
  out->n_tensors = w->n_tensors;
  return writer_finish (out, 3);
}

static void
kv_huge_key (Writer *w)
{
  put_u64 (w->kv, G_GUINT64_CONSTANT (1) << 60);
  w->n_kv++;
}

static void
kv_huge_string (Writer *w)
{
  kv_begin (w, "k", AT_GGUF_TYPE_STRING);
  put_u64 (w->kv, G_GUINT64_CONSTANT (1) << 60);
}

static void
kv_lying_string (Writer *w)
{
  kv_begin (w, "k", AT_GGUF_TYPE_STRING);
  put_u64 (w->kv, 1 << 20);
}

static void
kv_huge_array (Writer *w)
{
  kv_array (w, "k", AT_GGUF_TYPE_UINT8, G_GUINT64_CONSTANT (1) << 60);
}

static void
kv_lying_array (Writer *w)
{
  kv_array (w, "k", AT_GGUF_TYPE_STRING, 1 << 20);
}

static void
kv_duplicate (Writer *w)
{
  kv_u32 (w, "k", 1);
  kv_u32 (w, "k", 2);
}

static void
kv_bool_2 (Writer *w)
{
  kv_begin (w, "k", AT_GGUF_TYPE_BOOL);
  put_u8 (w->kv, 2);
}

static void
kv_bool_array_2 (Writer *w)
{
  kv_array (w, "k", AT_GGUF_TYPE_BOOL, 3);
  put_u8 (w->kv, 0), put_u8 (w->kv, 1), put_u8 (w->kv, 2);
}

static void
kv_alignment_0 (Writer *w)
{
  kv_u32 (w, "general.alignment", 0);
}

static void
kv_alignment_3 (Writer *w)
{
  kv_u32 (w, "general.alignment", 3);
}

static void
kv_alignment_i32 (Writer *w)
{
  kv_begin (w, "general.alignment", AT_GGUF_TYPE_INT32);
  put_u32 (w->kv, 32);
}

static void
kv_unknown_type (Writer *w)
{
  kv_begin (w, "k", 13);
  put_u32 (w->kv, 0);
}

static void
kv_unknown_element_type (Writer *w)
{
  kv_array (w, "k", 99, 1);
}

static void
kv_bad_key (Writer *w)
{
  kv_begin (w, "k\xc3", AT_GGUF_TYPE_UINT8);
  put_u8 (w->kv, 0);
}

static void
kv_empty_key (Writer *w)
{
  kv_begin (w, "", AT_GGUF_TYPE_UINT8);
  put_u8 (w->kv, 0);
}

/* `depth` arrays, each the single element of the one around it; the innermost holds no u8. */
static void
nest (Writer *w, guint depth)
{
  kv_array (w, "k", AT_GGUF_TYPE_ARRAY, 1);
  for (guint d = 2; d < depth; d++)
    put_u32 (w->kv, AT_GGUF_TYPE_ARRAY), put_u64 (w->kv, 1);
  put_u32 (w->kv, AT_GGUF_TYPE_UINT8), put_u64 (w->kv, 0);
}

static void
kv_nest_64 (Writer *w)
{
  nest (w, AT_GGUF_MAX_ARRAY_DEPTH);
}

static void
kv_nest_65 (Writer *w)
{
  nest (w, AT_GGUF_MAX_ARRAY_DEPTH + 1);
}

static void
test_metadata (void)
{
  static const struct
  {
    void (*write) (Writer *w);
    const char *seed;
    const char *fragment;
  } cases[] = {
    { kv_huge_key, "huge-key-length", "is 1152921504606846976 bytes long (at most 4096)" },
    { kv_huge_string, "huge-string-length",
      "is 1152921504606846976 bytes long (at most 67108864)" },
    { kv_lying_string, "lying-string-length", "the string value of metadata key \"k\" at byte" },
    { kv_huge_array, "huge-array-count", "\"k\" has an array of 1152921504606846976 elements" },
    { kv_lying_array, "lying-array-count", "declares 1048576 string elements, more than the" },
    { kv_duplicate, "duplicate-key", "metadata key \"k\" appears twice" },
    { kv_bool_2, "bool-2", "metadata key \"k\" is a bool of value 2" },
    { kv_bool_array_2, "bool-array-2", "element 2 of bool array \"k\" is 2" },
    { kv_alignment_0, "alignment-0", "general.alignment is 0, not a power of two" },
    { kv_alignment_3, "alignment-3", "general.alignment is 3, not a power of two" },
    { kv_alignment_i32, "alignment-i32", "general.alignment is i32, not u32" },
    { kv_unknown_type, "unknown-value-type", "metadata key \"k\" has unknown value type 13" },
    { kv_unknown_element_type, "unknown-element-type",
      "\"k\" is an array of unknown value type 99" },
    { kv_bad_key, "bad-utf8-key", "is not valid UTF-8 text" },
    { kv_empty_key, "empty-key", "is empty" },
    { kv_nest_65, "nested-65", "metadata key \"k\" nests arrays more than 64 deep" },
  };
  g_autoptr (GBytes) ok = with_kv (kv_nest_64);
  g_autoptr (AtGguf) g = open_ok (ok, "nested-64");
  const AtGgufKv *kv = at_gguf_find_kv (g, "k");

  for (int d = 1; d < AT_GGUF_MAX_ARRAY_DEPTH; d++)
    kv = at_gguf_kv_array_get_array (kv, 0);
  g_assert_cmpint (at_gguf_kv_get_array_type (kv), ==, AT_GGUF_TYPE_UINT8);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GBytes) bytes = with_kv (cases[i].write);

      expect_error (bytes, cases[i].seed, AT_ERROR_BAD_FILE, cases[i].fragment);
    }
}

/* A file of the tensor infos written by `write` (with `data_bytes` of zeros as data). */
static GBytes *
with_tensors (void (*write) (Writer *w), gsize data_bytes)
{
  g_autoptr (Writer) w = writer_new (32);

  kv_string (w, "general.architecture", "tiny");
  write (w);
  g_byte_array_set_size (w->data, (guint) data_bytes);
  if (data_bytes > 0)
    memset (w->data->data, 0, data_bytes);
  return writer_finish (w, 3);
}

static void
t_five_dims (Writer *w)
{
  const guint64 ne[5] = { 1, 1, 1, 1, 1 };

  tensor_info (w, "t", 5, ne, 0, 0);
}

static void
t_zero_dim (Writer *w)
{
  const guint64 ne[2] = { 0, 7 };

  tensor_info (w, "t", 2, ne, 0, 0);
}

static void
t_overflow (Writer *w)
{
  const guint64 ne[2] = { G_GUINT64_CONSTANT (1) << 40, G_GUINT64_CONSTANT (1) << 40 };

  tensor_info (w, "t", 2, ne, 0, 0);
}

/* Empty, but its other dimensions multiply past 2^63 (a fuzzer find). */
static void
t_zero_overflow (Writer *w)
{
  const guint64 ne[3] = { 0, G_GUINT64_CONSTANT (1) << 40, G_GUINT64_CONSTANT (1) << 35 };

  tensor_info (w, "t", 3, ne, 0, 0);
}

static void
t_huge_dim (Writer *w)
{
  const guint64 ne[1] = { G_GUINT64_CONSTANT (1) << 63 };

  tensor_info (w, "t", 1, ne, 0, 0);
}

static void
t_type_99 (Writer *w)
{
  const guint64 ne[1] = { 4 };

  tensor_info (w, "t", 1, ne, 99, 0);
}

static void
t_removed (Writer *w)
{
  const guint64 ne[1] = { 32 };

  tensor_info (w, "t", 1, ne, 4, 0);
}

static void
t_iq2_xxs (Writer *w)
{
  const guint64 ne[1] = { 256 };

  tensor_info (w, "blk.0.attn_q.weight", 1, ne, 16, 0);
}

static void
t_unaligned (Writer *w)
{
  const guint64 ne[1] = { 4 };

  tensor_info (w, "t", 1, ne, 0, 8);
}

static void
t_past_end (Writer *w)
{
  const guint64 ne[1] = { 4 };

  tensor_info (w, "a", 1, ne, 0, 0);
  tensor_info (w, "t", 1, ne, 0, 32);
}

static void
t_offset_overflow (Writer *w)
{
  const guint64 ne[1] = { 4 };

  tensor_info (w, "t", 1, ne, 0, G_MAXUINT64 - 31);
}

static void
t_overlap (Writer *w)
{
  const guint64 ne_a[1] = { 16 }, ne_b[1] = { 8 }, ne_c[1] = { 0 };

  tensor_info (w, "a", 1, ne_a, 0, 0);
  tensor_info (w, "empty", 1, ne_c, 0, 32);
  tensor_info (w, "b", 1, ne_b, 0, 32);
}

static void
t_duplicate (Writer *w)
{
  const guint64 ne[1] = { 4 };

  tensor_info (w, "t", 1, ne, 0, 0);
  tensor_info (w, "t", 1, ne, 0, 32);
}

static void
t_bad_block (Writer *w)
{
  const guint64 ne[2] = { 33, 1 };

  tensor_info (w, "t", 2, ne, 8, 0);
}

static void
test_tensor_infos (void)
{
  static const struct
  {
    void (*write) (Writer *w);
    gsize data;
    const char *seed;
    int code;
    const char *fragment;
  } cases[] = {
    { t_five_dims, 4, "five-dims", AT_ERROR_BAD_FILE,
      "tensor \"t\" has 5 dimensions (GGUF allows at most 4)" },
    { t_zero_overflow, 4, "zero-dim-overflow", AT_ERROR_BAD_FILE,
      "tensor \"t\" has more than 2^42 elements" },
    { t_overflow, 4, "element-overflow", AT_ERROR_BAD_FILE,
      "tensor \"t\" has more than 2^42 elements" },
    { t_huge_dim, 4, "huge-dim", AT_ERROR_BAD_FILE,
      "tensor \"t\" has a dimension of 9223372036854775808 elements" },
    { t_type_99, 16, "type-99", AT_ERROR_BAD_FILE, "tensor \"t\" has unknown ggml type 99" },
    { t_removed, 64, "type-q4_2", AT_ERROR_UNSUPPORTED,
      "tensor \"t\" is Q4_2, a type ggml has since removed" },
    { t_iq2_xxs, 64, "type-iq2_xxs", AT_ERROR_UNSUPPORTED,
      "tensor \"blk.0.attn_q.weight\" is IQ2_XXS, a quantisation Atelier does not support" },
    { t_unaligned, 64, "unaligned", AT_ERROR_BAD_FILE,
      "tensor \"t\" starts at data offset 8, not a multiple of the alignment (32)" },
    { t_past_end, 40, "past-end", AT_ERROR_BAD_FILE,
      "tensor \"t\" (16 bytes at data offset 32) runs past the end of the file (the data section "
      "holds 40 bytes)" },
    { t_offset_overflow, 64, "offset-overflow", AT_ERROR_BAD_FILE,
      "runs past the end of the file" },
    { t_overlap, 64, "overlap", AT_ERROR_BAD_FILE, "tensors \"a\" (bytes" },
    { t_duplicate, 64, "duplicate-name", AT_ERROR_BAD_FILE, "tensor \"t\" appears twice" },
    { t_bad_block, 64, "bad-block", AT_ERROR_BAD_FILE, "rows must be a multiple of 32 elements" },
  };
  g_autoptr (GBytes) zero = with_tensors (t_zero_dim, 0);
  g_autoptr (AtGguf) g = open_ok (zero, "zero-dim");
  const AtTensorEntry *e = at_tensor_set_find (at_gguf_get_tensors (g), "t");

  g_assert_cmpint (e->numel, ==, 0);
  g_assert_cmpint (e->shape[0], ==, 7);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GBytes) bytes = with_tensors (cases[i].write, cases[i].data);

      expect_error (bytes, cases[i].seed, cases[i].code, cases[i].fragment);
    }
  {
    /* The overlap message names both tensors and their spans. */
    g_autoptr (GBytes) bytes = with_tensors (t_overlap, 64);
    g_autoptr (GError) error = NULL;
    g_autoptr (AtGguf) bad = at_gguf_new_from_bytes (bytes, "o.gguf", &error);

    g_assert_null (bad);
    g_assert_nonnull (strstr (error->message, "and \"b\" ("));
    g_assert_nonnull (strstr (error->message, ") overlap"));
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/formats/gguf/written-v3", GUINT_TO_POINTER (3), test_written);
  g_test_add_data_func ("/formats/gguf/written-v2", GUINT_TO_POINTER (2), test_written);
  g_test_add_func ("/formats/gguf/open-file", test_open_file);
  g_test_add_func ("/formats/gguf/small-valid", test_small_valid);
  for (guint i = 0; i < G_N_ELEMENTS (vocab_facts); i++)
    {
      g_autofree char *path = g_strdup_printf ("/formats/gguf/vocab/%s", vocab_facts[i].name);

      g_test_add_data_func (path, &vocab_facts[i], test_vocab);
    }
  g_test_add_func ("/formats/gguf/hostile/header", test_header);
  g_test_add_func ("/formats/gguf/hostile/truncated", test_truncated);
  g_test_add_func ("/formats/gguf/hostile/metadata", test_metadata);
  g_test_add_func ("/formats/gguf/hostile/tensor-infos", test_tensor_infos);
  return g_test_run ();
}
