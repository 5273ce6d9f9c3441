/* test-dtype.c: half/bfloat16 conversion on known values, and the dequantisation of every GGUF
 * block type checked element by element against the block layout of the GGUF specification
 * (written here per element, independently of the block loops in at-dtype.c), plus hand-made
 * blocks with known values. The GPU side of dequantisation is checked by the matmul tests
 * against at_dequantize_row. */
#include "at-test-util.h"

#include <math.h>
#include <string.h>

static void
test_half (void)
{
  static const struct { float f; guint16 h; } cases[] = {
    { 1.0f, 0x3c00 }, { -2.0f, 0xc000 }, { 0.0f, 0x0000 }, { 65504.0f, 0x7bff },
    { 65520.0f, 0x7c00 },                    /* rounds up to infinity */
    { 5.9604644775390625e-08f, 0x0001 },     /* smallest subnormal, 2^-24 */
    { 6.103515625e-05f, 0x0400 },            /* smallest normal, 2^-14 */
    { 0.1f, 0x2e66 },
    { 1.00048828125f, 0x3c00 },              /* 1 + 2^-11: a tie, to even */
    { 1.00146484375f, 0x3c02 },              /* 1 + 3 * 2^-11: a tie, to even (up) */
    { 2.98023223876953125e-08f, 0x0000 },    /* 2^-25: a tie with 0, to even */
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_assert_cmphex (at_f32_to_f16 (cases[i].f), ==, cases[i].h);
      if (cases[i].h != 0x7c00 && cases[i].f != 1.00048828125f && cases[i].f != 1.00146484375f
          && cases[i].f != 2.98023223876953125e-08f && cases[i].f != 0.1f)
        g_assert_cmpfloat (at_f16_to_f32 (cases[i].h), ==, cases[i].f);
    }
  g_assert_true (isinf (at_f16_to_f32 (0x7c00)));
  g_assert_true (isnan (at_f16_to_f32 (0x7e00)));
  /* Every finite half survives the round trip. */
  for (guint32 h = 0; h < 0x10000; h++)
    if ((h & 0x7c00) != 0x7c00)
      g_assert_cmphex (at_f32_to_f16 (at_f16_to_f32 ((guint16) h)), ==, h);
}

static void
test_bfloat (void)
{
  g_assert_cmphex (at_f32_to_bf16 (1.0f), ==, 0x3f80);
  g_assert_cmphex (at_f32_to_bf16 (-3.0f), ==, 0xc040);
  /* 1 + 2^-8 is a tie between 1 and 1 + 2^-7: to even (1). 1 + 3 * 2^-8 goes up. */
  g_assert_cmphex (at_f32_to_bf16 (1.00390625f), ==, 0x3f80);
  g_assert_cmphex (at_f32_to_bf16 (1.01171875f), ==, 0x3f82);
  g_assert_cmpfloat (at_bf16_to_f32 (0x4049), ==, 3.140625f);
  g_assert_true (isnan (at_bf16_to_f32 (at_f32_to_bf16 (NAN))));
}

static float
h16 (const guint8 *p)
{
  return at_f16_to_f32 ((guint16) (p[0] | p[1] << 8));
}

/* The value of element e (0 <= e < block size) of one block, from the GGUF layout. */
static float
element (AtDtype t, const guint8 *b, int e)
{
  switch (t)
    {
    case AT_DTYPE_Q8_0:
      return h16 (b) * (gint8) b[2 + e];
    case AT_DTYPE_Q4_0:
    case AT_DTYPE_Q4_1:
      {
        const guint8 *qs = b + (t == AT_DTYPE_Q4_1 ? 4 : 2);
        int nib = e < 16 ? qs[e] & 15 : qs[e - 16] >> 4;
        return t == AT_DTYPE_Q4_1 ? h16 (b) * nib + h16 (b + 2) : h16 (b) * (nib - 8);
      }
    case AT_DTYPE_Q5_0:
    case AT_DTYPE_Q5_1:
      {
        int one = t == AT_DTYPE_Q5_1;
        const guint8 *qh = b + (one ? 4 : 2), *qs = qh + 4;
        int nib = e < 16 ? qs[e] & 15 : qs[e - 16] >> 4;
        int high = (qh[e / 8] >> (e % 8)) & 1; /* bit e of the little-endian u32 */
        int q = nib + 16 * high;
        return one ? h16 (b) * q + h16 (b + 2) : h16 (b) * (q - 16);
      }
    case AT_DTYPE_Q4_K:
    case AT_DTYPE_Q5_K:
      {
        int five = t == AT_DTYPE_Q5_K;
        const guint8 *sc = b + 4, *qh = b + 16, *qs = b + (five ? 48 : 16);
        int j = e / 32, l = e % 32, c = e / 64;
        int scale, min, q;
        if (j < 4)
          {
            scale = sc[j] & 63;
            min = sc[j + 4] & 63;
          }
        else
          {
            scale = (sc[j + 4] & 15) + 16 * (sc[j - 4] >> 6);
            min = (sc[j + 4] >> 4) + 16 * (sc[j] >> 6);
          }
        q = (j % 2 == 0) ? qs[c * 32 + l] & 15 : qs[c * 32 + l] >> 4;
        if (five)
          q += 16 * ((qh[l] >> j) & 1);
        return h16 (b) * scale * q - h16 (b + 2) * min;
      }
    case AT_DTYPE_Q6_K:
      {
        const guint8 *ql = b, *qh = b + 128;
        const gint8 *sc = (const gint8 *) (b + 192);
        int n = e / 128, g = (e % 128) / 32, l = e % 32;
        int low = ql[n * 64 + (g % 2) * 32 + l];
        low = g < 2 ? low & 15 : low >> 4;
        return h16 (b + 208) * sc[e / 16] * (low + 16 * ((qh[n * 32 + l] >> (2 * g)) & 3) - 32);
      }
    default:
      g_assert_not_reached ();
    }
}

/* Random bytes, with every half field set to a finite value so no element is inf or NaN. */
static void
random_block (AtDtype t, guint8 *b, guint size)
{
  for (guint i = 0; i < size; i++)
    b[i] = (guint8) g_test_rand_int_range (0, 256);
#define HALF(off) G_STMT_START { guint16 h = at_f32_to_f16 ((float) g_test_rand_double_range (-2, 2)); \
    b[off] = h & 0xff; b[(off) + 1] = h >> 8; } G_STMT_END
  switch (t)
    {
    case AT_DTYPE_Q4_1:
    case AT_DTYPE_Q5_1:
    case AT_DTYPE_Q4_K:
    case AT_DTYPE_Q5_K:
      HALF (0);
      HALF (2);
      break;
    case AT_DTYPE_Q6_K:
      HALF (208);
      break;
    default:
      HALF (0);
    }
#undef HALF
}

static void
test_dequant_layout (void)
{
  for (AtDtype t = AT_DTYPE_Q8_0; t < AT_N_DTYPES; t++)
    {
      const AtDtypeInfo *info = at_dtype_info (t);
      guint n_blocks = 3;
      g_autofree guint8 *raw = g_malloc (info->type_size * n_blocks);
      g_autofree float *got = g_new (float, info->block_size * n_blocks);

      for (guint k = 0; k < n_blocks; k++)
        random_block (t, raw + k * info->type_size, info->type_size);
      at_dequantize_row (t, raw, got, info->block_size * n_blocks);
      for (guint k = 0; k < n_blocks; k++)
        for (guint e = 0; e < info->block_size; e++)
          {
            float want = element (t, raw + k * info->type_size, (int) e);
            if (got[k * info->block_size + e] != want)
              g_error ("%s block %u element %u: %g, the layout says %g", info->name, k, e,
                       got[k * info->block_size + e], want);
          }
    }
}

/* Hand-made blocks whose values are known without any formula. */
static void
test_dequant_known (void)
{
  guint8 q40[18] = { 0x00, 0x38 }; /* d = 0.5 */
  guint8 q80[34] = { 0x00, 0x40 }; /* d = 2 */
  guint8 q6k[210] = { 0 };
  float y[256];

  for (int i = 0; i < 16; i++)
    q40[2 + i] = (guint8) (i | (15 - i) << 4);
  at_dequantize_row (AT_DTYPE_Q4_0, q40, y, 32);
  g_assert_cmpfloat (y[0], ==, -4.0f);   /* (0 - 8) * 0.5 */
  g_assert_cmpfloat (y[15], ==, 3.5f);   /* (15 - 8) * 0.5 */
  g_assert_cmpfloat (y[16], ==, 3.5f);   /* high nibble of byte 0: 15 */
  g_assert_cmpfloat (y[31], ==, -4.0f);

  q80[2] = 0x81; /* -127 */
  q80[33] = 5;
  at_dequantize_row (AT_DTYPE_Q8_0, q80, y, 32);
  g_assert_cmpfloat (y[0], ==, -254.0f);
  g_assert_cmpfloat (y[31], ==, 10.0f);
  g_assert_cmpfloat (y[1], ==, 0.0f);

  /* Q6_K with d = 1, all scales 1 except sub-block 15 (scale -2); element 255 has low nibble
   * 0xF (high half of ql[127]) and high bits 3 (qh[63] >> 6): q = 63 - 32 = 31. */
  q6k[209] = 0x3c; /* d = 1.0 */
  for (int j = 0; j < 16; j++)
    q6k[192 + j] = 1;
  q6k[192 + 15] = (guint8) -2;
  q6k[127] = 0xf0;
  q6k[128 + 63] = 0xc0;
  at_dequantize_row (AT_DTYPE_Q6_K, q6k, y, 256);
  g_assert_cmpfloat (y[0], ==, -32.0f);
  g_assert_cmpfloat (y[255], ==, -62.0f); /* 31 * -2 */
  g_assert_cmpfloat (y[127], ==, -32.0f);
}

/* Quantising then dequantising stays close: proves the writer side makes valid blocks. */
static void
test_quantize_roundtrip (void)
{
  static const double bound[AT_N_DTYPES] = {
    [AT_DTYPE_Q8_0] = 1e-4, [AT_DTYPE_Q4_0] = 2e-2, [AT_DTYPE_Q4_1] = 1e-2,
    [AT_DTYPE_Q5_0] = 5e-3, [AT_DTYPE_Q5_1] = 3e-3, [AT_DTYPE_Q4_K] = 1e-2,
    [AT_DTYPE_Q5_K] = 3e-3, [AT_DTYPE_Q6_K] = 1e-3,
  };
  gint64 n = 1024;
  g_autofree float *x = g_new (float, n), *y = g_new (float, n);

  at_test_fill (x, (gsize) n, -1, 1);
  for (AtDtype t = AT_DTYPE_Q8_0; t < AT_N_DTYPES; t++)
    {
      g_autofree guint8 *raw = g_malloc (at_dtype_row_bytes (t, n));
      double e;
      at_quantize_row (t, x, raw, n);
      at_dequantize_row (t, raw, y, n);
      e = at_nmse (x, y, (gsize) n);
      g_test_message ("%s round trip NMSE %.3g", at_dtype_name (t), e);
      g_assert_cmpfloat (e, <=, bound[t]);
    }
}

static void
test_names (void)
{
  g_assert_cmpint (at_dtype_from_name ("q4_K"), ==, AT_DTYPE_Q4_K);
  g_assert_cmpint (at_dtype_from_name ("F16"), ==, AT_DTYPE_F16);
  g_assert_cmpint (at_dtype_from_name ("iq2_xs"), ==, AT_N_DTYPES);
  g_assert_cmpuint (at_dtype_row_bytes (AT_DTYPE_Q6_K, 512), ==, 420);
  g_assert_cmpuint (at_dtype_row_bytes (AT_DTYPE_Q8_0, 33), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/dtype/half", test_half);
  g_test_add_func ("/engine/dtype/bfloat16", test_bfloat);
  g_test_add_func ("/engine/dtype/dequant-layout", test_dequant_layout);
  g_test_add_func ("/engine/dtype/dequant-known", test_dequant_known);
  g_test_add_func ("/engine/dtype/quantize-roundtrip", test_quantize_roundtrip);
  g_test_add_func ("/engine/dtype/names", test_names);
  return g_test_run ();
}
