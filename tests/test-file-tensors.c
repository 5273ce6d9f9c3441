/* test-file-tensors.c: the checks every parser relies on (tensor limits, overflow, duplicate
 * names) and the conversions of the file-only dtypes against values worked out by hand from
 * the format definitions. */
#include <math.h>
#include <string.h>

#include "at-test-util.h"

static void
test_add_checks (void)
{
  g_autoptr (AtTensorSet) set = at_tensor_set_new ("t.bin");
  g_autoptr (GError) error = NULL;
  const gint64 ok[2] = { 3, 4 }, neg[2] = { 3, -1 }, huge[3] = { G_GINT64_CONSTANT (1) << 40, 1 << 20, 8 };
  const gint64 q[2] = { 2, 48 };
  const gint64 wrap[2] = { G_GINT64_CONSTANT (1) << 40, G_GINT64_CONSTANT (1) << 40 };
  const gint64 wrap_zero[3] = { G_GINT64_CONSTANT (1) << 35, G_GINT64_CONSTANT (1) << 40, 0 };
  AtTensorEntry *e;

  e = at_tensor_set_add (set, "a", 1, AT_FILE_DTYPE_F16, 2, ok, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (e->numel, ==, 12);
  g_assert_cmpuint (e->nbytes, ==, 24);
  g_assert_cmpint (e->stride[0], ==, 4);

  g_assert_null (at_tensor_set_add (set, "a", 1, AT_FILE_DTYPE_F32, 2, ok, NULL, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
  g_assert_nonnull (strstr (error->message, "t.bin: tensor \"a\" appears twice"));
  g_clear_error (&error);

  g_assert_null (at_tensor_set_add (set, "b", 1, AT_FILE_DTYPE_F32, 2, neg, NULL, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
  g_clear_error (&error);
  g_assert_null (at_tensor_set_add (set, "c", 1, AT_FILE_DTYPE_F32, 3, huge, NULL, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
  g_clear_error (&error);
  /* 2^40 * 2^40 wraps a 64-bit product to 0: refused, not taken for an empty tensor. */
  g_assert_null (at_tensor_set_add (set, "c2", 2, AT_FILE_DTYPE_F32, 2, wrap, NULL, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
  g_clear_error (&error);
  e = at_tensor_set_add (set, "c3", 2, AT_FILE_DTYPE_F32, 3, wrap_zero, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (e->numel, ==, 0);
  g_assert_cmpuint (e->nbytes, ==, 0);
  g_assert_null (at_tensor_set_add (set, "d", 1, AT_FILE_DTYPE_Q4_K, 2, q, NULL, &error));
  g_assert_nonnull (strstr (error->message, "multiple of 256"));
  g_clear_error (&error);
  g_assert_null (at_tensor_set_add (set, "e\xff", 2, AT_FILE_DTYPE_F32, 2, ok, NULL, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
  g_clear_error (&error);
  g_assert_null (at_tensor_set_add (set, "f", 1, AT_FILE_DTYPE_F32, 9, ok, NULL, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
  g_clear_error (&error);
  g_assert_cmpuint (at_tensor_set_get_n_tensors (set), ==, 2);
}

static void
test_strided (void)
{
  g_autoptr (AtTensorSet) set = at_tensor_set_new ("t.bin");
  g_autoptr (GError) error = NULL;
  /* A [3, 2] transposed view of a [2, 3] f32 storage. */
  static const float storage[6] = { 0, 1, 2, 3, 4, 5 };
  const gint64 shape[2] = { 3, 2 }, stride[2] = { 1, 3 };
  const float expect[6] = { 0, 3, 1, 4, 2, 5 };
  float got[6];
  AtTensorEntry *e;

  e = at_tensor_set_add (set, "w", 1, AT_FILE_DTYPE_F32, 2, shape, stride, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (e->nbytes, ==, 24);
  g_assert_false (at_tensor_entry_is_contiguous (e));
  e->data = (const guint8 *) storage;
  g_assert_true (at_tensor_set_read_f32 (set, e, got, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (got, sizeof got, expect, sizeof expect);
}

static float
convert_one (AtFileDtype dtype, const guint8 *bytes)
{
  g_autoptr (AtTensorSet) set = at_tensor_set_new ("t.bin");
  const gint64 shape[1] = { 1 };
  AtTensorEntry *e = at_tensor_set_add (set, "x", 1, dtype, 1, shape, NULL, NULL);
  float v = -12345;

  e->data = bytes;
  g_assert_true (at_tensor_set_read_f32 (set, e, &v, NULL));
  return v;
}

static void
test_small_types (void)
{
  /* E4M3: 0x38 = 0.0111.000 = 2^0; 0x01 = smallest subnormal 2^-9; 0xfe = -448; 0x7f NaN. */
  const guint8 e4[] = { 0x38, 0x01, 0xfe, 0x7f };
  /* E5M2: 0x3c = 1.0; 0x7c = inf; 0x01 = 2^-16. */
  const guint8 e5[] = { 0x3c, 0x7c, 0x01 };
  const guint8 i16[] = { 0xfe, 0xff }, b[] = { 7 };
  const double f64 = -2.5;
  const gint64 i64 = -(G_GINT64_CONSTANT (1) << 40);

  g_assert_cmpfloat (convert_one (AT_FILE_DTYPE_F8_E4M3, &e4[0]), ==, 1.0f);
  g_assert_cmpfloat (convert_one (AT_FILE_DTYPE_F8_E4M3, &e4[1]), ==, ldexpf (1, -9));
  g_assert_cmpfloat (convert_one (AT_FILE_DTYPE_F8_E4M3, &e4[2]), ==, -448.0f);
  g_assert_true (isnan (convert_one (AT_FILE_DTYPE_F8_E4M3, &e4[3])));
  g_assert_cmpfloat (convert_one (AT_FILE_DTYPE_F8_E5M2, &e5[0]), ==, 1.0f);
  g_assert_true (isinf (convert_one (AT_FILE_DTYPE_F8_E5M2, &e5[1])));
  g_assert_cmpfloat (convert_one (AT_FILE_DTYPE_F8_E5M2, &e5[2]), ==, ldexpf (1, -16));
  g_assert_cmpfloat (convert_one (AT_FILE_DTYPE_I16, i16), ==, -2.0f);
  g_assert_cmpfloat (convert_one (AT_FILE_DTYPE_BOOL, b), ==, 1.0f);
  g_assert_cmpfloat (convert_one (AT_FILE_DTYPE_F64, (const guint8 *) &f64), ==, -2.5f);
  g_assert_cmpfloat (convert_one (AT_FILE_DTYPE_I64, (const guint8 *) &i64), ==, ldexpf (-1, 40));
}

/* Q2_K worked by hand: d = 0.5, dmin = 0.25; group g has scale (g % 16) and min 1 (scales byte
 * 0x10 | g); every 2-bit value is 3 except value 0's field, 1. Value v of the block sits in
 * byte (v / 128) * 32 + v % 32 at bit shift 2 * ((v % 128) / 32); its group is v / 16. */
static void
test_q2_k (void)
{
  guint8 block[84] = { 0 };
  float y[256];
  g_autoptr (AtTensorSet) set = at_tensor_set_new ("t.bin");
  const gint64 shape[1] = { 256 };
  AtTensorEntry *e = at_tensor_set_add (set, "x", 1, AT_FILE_DTYPE_Q2_K, 1, shape, NULL, NULL);

  for (int g = 0; g < 16; g++)
    block[g] = (guint8) (0x10 | g);
  memset (block + 16, 0xff, 64);
  block[16] = 0xfd; /* value 0 -> 1, values 32, 64, 96 stay 3 */
  block[80] = 0x00, block[81] = 0x38; /* half 0.5 */
  block[82] = 0x00, block[83] = 0x34; /* half 0.25 */
  e->data = block;
  g_assert_true (at_tensor_set_read_f32 (set, e, y, NULL));
  g_assert_cmpfloat (y[0], ==, 0.5f * 0 * 1 - 0.25f);
  for (int v = 1; v < 256; v++)
    g_assert_cmpfloat (y[v], ==, 0.5f * (float) (v / 16) * 3 - 0.25f);
}

/* Q3_K worked by hand: d = 2; group g's scale is g + 1 (stored plus 32: low nibbles in bytes
 * 0-7, group g in the low nibble of byte g for g < 8 and the high nibble of byte g - 8 after;
 * the top two bits of group g in byte 8 + g % 4 at shift 2 * (g / 4)); all low bits 2 and high bits set except the one of
 * value 1 (hmask byte 1, bit 0), which subtracts 4. */
static void
test_q3_k (void)
{
  guint8 block[110] = { 0 };
  float y[256];
  g_autoptr (AtTensorSet) set = at_tensor_set_new ("t.bin");
  const gint64 shape[1] = { 256 };
  AtTensorEntry *e = at_tensor_set_add (set, "x", 1, AT_FILE_DTYPE_Q3_K, 1, shape, NULL, NULL);

  for (int g = 0; g < 16; g++)
    {
      int field = g + 1 + 32; /* the 6-bit field holds scale + 32 */

      if (g < 8)
        block[96 + g] |= (guint8) (field & 15);
      else
        block[96 + g - 8] |= (guint8) ((field & 15) << 4);
      block[104 + (g & 3)] |= (guint8) (((field >> 4) & 3) << (2 * (g >> 2)));
    }
  memset (block, 0xff, 32);
  block[1] = 0xfe;
  memset (block + 32, 0xaa, 64); /* every 2-bit field = 2 */
  block[108] = 0x00, block[109] = 0x40; /* half 2.0 */
  e->data = block;
  g_assert_true (at_tensor_set_read_f32 (set, e, y, NULL));
  for (int v = 0; v < 256; v++)
    {
      float q = v == 1 ? 2 - 4 : 2;

      g_assert_cmpfloat (y[v], ==, 2.0f * (float) (v / 16 + 1) * q);
    }
}

/* Upload converts on the way: a strided f64 view and i64 land as contiguous f32 / i32, f16 as
 * is; what comes back from the device equals at_tensor_set_read_f32 (itself checked above). */
static void
test_upload (void)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtTensorSet) set = at_tensor_set_new ("t.bin");
  g_autoptr (GError) error = NULL;
  static const double f64[6] = { 0.5, -1, 2, 3.25, 4, 1e-3 };
  static const gint64 i64[3] = { 7, -8, G_MAXINT32 }, big[1] = { G_GINT64_CONSTANT (1) << 33 };
  static const guint16 f16[3] = { 0x3c00, 0xc000, 0x3800 };
  const gint64 shape23[2] = { 3, 2 }, stride23[2] = { 1, 3 }, three[1] = { 3 }, one[1] = { 1 };
  AtTensorEntry *a, *b, *c, *d;

  if (dev == NULL)
    return;
  a = at_tensor_set_add (set, "a", 1, AT_FILE_DTYPE_F64, 2, shape23, stride23, &error);
  b = at_tensor_set_add (set, "b", 1, AT_FILE_DTYPE_I64, 1, three, NULL, &error);
  c = at_tensor_set_add (set, "c", 1, AT_FILE_DTYPE_F16, 1, three, NULL, &error);
  d = at_tensor_set_add (set, "d", 1, AT_FILE_DTYPE_I64, 1, one, NULL, &error);
  g_assert_no_error (error);
  a->data = (const guint8 *) f64;
  b->data = (const guint8 *) i64;
  c->data = (const guint8 *) f16;
  d->data = (const guint8 *) big;
  g_assert_cmpuint (at_tensor_entry_upload_size (a), ==, 24);
  g_assert_cmpuint (at_tensor_entry_upload_size (b), ==, 12);
  g_assert_cmpuint (at_tensor_entry_upload_size (c), ==, 6);
  {
    g_autoptr (AtBuffer) buf = at_buffer_new (dev, 64, AT_BUFFER_DEVICE, "upload test", &error);
    float got[6], want[6];
    gint32 ints[3];
    guint16 halves[3];

    g_assert_no_error (error);
    g_assert_true (at_tensor_set_upload (set, a, buf, 0, &error));
    g_assert_true (at_tensor_set_upload (set, b, buf, 24, &error));
    g_assert_true (at_tensor_set_upload (set, c, buf, 36, &error));
    g_assert_no_error (error);
    g_assert_true (at_buffer_download (buf, 0, got, sizeof got, &error));
    g_assert_true (at_buffer_download (buf, 24, ints, sizeof ints, &error));
    g_assert_true (at_buffer_download (buf, 36, halves, sizeof halves, &error));
    g_assert_true (at_tensor_set_read_f32 (set, a, want, &error));
    g_assert_cmpmem (got, sizeof got, want, sizeof want);
    g_assert_cmpint (ints[0], ==, 7);
    g_assert_cmpint (ints[1], ==, -8);
    g_assert_cmpint (ints[2], ==, G_MAXINT32);
    g_assert_cmpmem (halves, sizeof halves, f16, sizeof f16);
    g_assert_false (at_tensor_set_upload (set, d, buf, 48, &error));
    g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
    g_assert_nonnull (strstr (error->message, "32-bit range"));
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/formats/tensors/add-checks", test_add_checks);
  g_test_add_func ("/formats/tensors/strided", test_strided);
  g_test_add_func ("/formats/tensors/small-types", test_small_types);
  g_test_add_func ("/formats/tensors/q2_k", test_q2_k);
  g_test_add_func ("/formats/tensors/q3_k", test_q3_k);
  g_test_add_func ("/formats/tensors/upload", test_upload);
  return g_test_run ();
}
