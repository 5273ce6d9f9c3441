/* at-dtype.c: dtype table, half/bfloat16 conversion, reference (de)quantisation of the GGUF
 * block formats. The layouts are those of the GGUF specification; each function below states
 * the block it reads. */
#include "at-dtype.h"

#include <math.h>
#include <string.h>

static const AtDtypeInfo infos[AT_N_DTYPES] = {
  [AT_DTYPE_F32] = { "f32", 1, 4, FALSE },
  [AT_DTYPE_F16] = { "f16", 1, 2, FALSE },
  [AT_DTYPE_BF16] = { "bf16", 1, 2, FALSE },
  [AT_DTYPE_I32] = { "i32", 1, 4, FALSE },
  [AT_DTYPE_Q8_0] = { "q8_0", 32, 34, TRUE },
  [AT_DTYPE_Q4_0] = { "q4_0", 32, 18, TRUE },
  [AT_DTYPE_Q4_1] = { "q4_1", 32, 20, TRUE },
  [AT_DTYPE_Q5_0] = { "q5_0", 32, 22, TRUE },
  [AT_DTYPE_Q5_1] = { "q5_1", 32, 24, TRUE },
  [AT_DTYPE_Q4_K] = { "q4_K", 256, 144, TRUE },
  [AT_DTYPE_Q5_K] = { "q5_K", 256, 176, TRUE },
  [AT_DTYPE_Q6_K] = { "q6_K", 256, 210, TRUE },
};

const AtDtypeInfo *
at_dtype_info (AtDtype dtype)
{
  g_return_val_if_fail (dtype < AT_N_DTYPES, &infos[0]);
  return &infos[dtype];
}

const char *
at_dtype_name (AtDtype dtype)
{
  return dtype < AT_N_DTYPES ? infos[dtype].name : "(invalid)";
}

AtDtype
at_dtype_from_name (const char *name)
{
  for (guint i = 0; i < AT_N_DTYPES; i++)
    if (g_ascii_strcasecmp (infos[i].name, name) == 0)
      return (AtDtype) i;
  return AT_N_DTYPES;
}

gsize
at_dtype_row_bytes (AtDtype dtype, gint64 n)
{
  const AtDtypeInfo *info = at_dtype_info (dtype);

  if (n < 0 || n % info->block_size != 0)
    return 0;
  return (gsize) (n / info->block_size) * info->type_size;
}

float
at_f16_to_f32 (guint16 h)
{
  guint32 sign = (guint32) (h >> 15) << 31;
  guint32 exp = (h >> 10) & 0x1f;
  guint32 mant = h & 0x3ff;
  guint32 bits;
  float f;

  if (exp == 0x1f)
    bits = sign | 0x7f800000u | (mant << 13);
  else if (exp != 0)
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  else if (mant == 0)
    bits = sign;
  else
    {
      /* Subnormal half: value = mant * 2^-24. */
      f = (float) mant * (1.0f / 16777216.0f);
      return sign ? -f : f;
    }
  memcpy (&f, &bits, 4);
  return f;
}

guint16
at_f32_to_f16 (float f)
{
  guint32 x, sign, exp, mant;

  memcpy (&x, &f, 4);
  sign = (x >> 16) & 0x8000;
  exp = (x >> 23) & 0xff;
  mant = x & 0x7fffff;
  if (exp == 0xff)
    return (guint16) (sign | 0x7c00 | (mant ? 0x200 : 0));
  if (exp > 142) /* overflow: >= 2^16 */
    return (guint16) (sign | 0x7c00);
  if (exp < 113)
    {
      /* Subnormal or zero half: round mant * 2^(exp-150) to a multiple of 2^-24. */
      guint32 m, shift, half, r;
      if (exp < 102)
        return (guint16) sign;
      m = mant | 0x800000;
      shift = 126 - exp;
      half = 1u << (shift - 1);
      r = m >> shift;
      if ((m & ((1u << shift) - 1)) > half || ((m & ((1u << shift) - 1)) == half && (r & 1)))
        r++;
      return (guint16) (sign | r);
    }
  {
    guint32 h = ((exp - 112) << 10) | (mant >> 13);
    guint32 rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
      h++; /* may carry into the exponent, which is right (and gives inf at the top) */
    return (guint16) (sign | h);
  }
}

float
at_bf16_to_f32 (guint16 h)
{
  guint32 bits = (guint32) h << 16;
  float f;

  memcpy (&f, &bits, 4);
  return f;
}

guint16
at_f32_to_bf16 (float f)
{
  guint32 x;

  memcpy (&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000)
    return (guint16) ((x >> 16) | 0x40); /* quiet NaN */
  x += 0x7fff + ((x >> 16) & 1);
  return (guint16) (x >> 16);
}

static inline float
half_at (const guint8 *p)
{
  return at_f16_to_f32 ((guint16) (p[0] | (p[1] << 8)));
}

static inline void
put_half (guint8 *p, float v)
{
  guint16 h = at_f32_to_f16 (v);
  p[0] = h & 0xff;
  p[1] = h >> 8;
}

/* K-quant scales: 8 six-bit scales and 8 six-bit mins packed in 12 bytes. */
static void
scale_min_k4 (int j, const guint8 *q, guint8 *sc, guint8 *m)
{
  if (j < 4)
    {
      *sc = q[j] & 63;
      *m = q[j + 4] & 63;
    }
  else
    {
      *sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
      *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

static void
dequant_block (AtDtype t, const guint8 *b, float *y)
{
  switch (t)
    {
    case AT_DTYPE_Q8_0: /* f16 d; i8 q[32] */
      for (int i = 0; i < 32; i++)
        y[i] = half_at (b) * (gint8) b[2 + i];
      break;
    case AT_DTYPE_Q4_0: /* f16 d; u8 qs[16]: low nibbles are 0..15, high 16..31 */
      for (int i = 0; i < 16; i++)
        {
          y[i] = half_at (b) * ((b[2 + i] & 0xf) - 8);
          y[i + 16] = half_at (b) * ((b[2 + i] >> 4) - 8);
        }
      break;
    case AT_DTYPE_Q4_1: /* f16 d, m; u8 qs[16] */
      for (int i = 0; i < 16; i++)
        {
          y[i] = half_at (b) * (b[4 + i] & 0xf) + half_at (b + 2);
          y[i + 16] = half_at (b) * (b[4 + i] >> 4) + half_at (b + 2);
        }
      break;
    case AT_DTYPE_Q5_0: /* f16 d; u32 qh (fifth bits); u8 qs[16] */
    case AT_DTYPE_Q5_1: /* f16 d, m; u32 qh; u8 qs[16] */
      {
        gboolean has_min = t == AT_DTYPE_Q5_1;
        const guint8 *p = b + (has_min ? 4 : 2);
        guint32 qh = p[0] | (p[1] << 8) | (p[2] << 16) | ((guint32) p[3] << 24);
        float d = half_at (b), m = has_min ? half_at (b + 2) : 0;
        int off = has_min ? 0 : 16;
        for (int i = 0; i < 16; i++)
          {
            int lo = (p[4 + i] & 0xf) | (((qh >> i) & 1) << 4);
            int hi = (p[4 + i] >> 4) | (((qh >> (i + 16)) & 1) << 4);
            y[i] = d * (lo - off) + m;
            y[i + 16] = d * (hi - off) + m;
          }
      }
      break;
    case AT_DTYPE_Q4_K: /* f16 d, dmin; u8 scales[12]; u8 qs[128] */
    case AT_DTYPE_Q5_K: /* f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] */
      {
        gboolean five = t == AT_DTYPE_Q5_K;
        float d = half_at (b), dmin = half_at (b + 2);
        const guint8 *scales = b + 4, *qh = b + 16, *qs = b + (five ? 48 : 16);
        for (int c = 0; c < 4; c++)
          {
            guint8 sc1, m1, sc2, m2;
            scale_min_k4 (2 * c, scales, &sc1, &m1);
            scale_min_k4 (2 * c + 1, scales, &sc2, &m2);
            for (int l = 0; l < 32; l++)
              {
                int q1 = qs[c * 32 + l] & 0xf, q2 = qs[c * 32 + l] >> 4;
                if (five)
                  {
                    q1 |= ((qh[l] >> (2 * c)) & 1) << 4;
                    q2 |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
                  }
                y[c * 64 + l] = d * sc1 * q1 - dmin * m1;
                y[c * 64 + 32 + l] = d * sc2 * q2 - dmin * m2;
              }
          }
      }
      break;
    case AT_DTYPE_Q6_K: /* u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d */
      {
        const guint8 *ql = b, *qh = b + 128;
        const gint8 *sc = (const gint8 *) (b + 192);
        float d = half_at (b + 208);
        for (int i = 0; i < 256; i++)
          {
            int n = i / 128, o = i % 128, g = o / 32, l = o % 32;
            int low = (ql[n * 64 + (g & 1) * 32 + l] >> (g >= 2 ? 4 : 0)) & 0xf;
            int high = (qh[n * 32 + l] >> (2 * g)) & 3;
            y[i] = d * sc[i / 16] * ((low | (high << 4)) - 32);
          }
      }
      break;
    default:
      g_return_if_reached ();
    }
}

void
at_dequantize_row (AtDtype dtype, const void *src, float *dst, gint64 n)
{
  const AtDtypeInfo *info = at_dtype_info (dtype);
  const guint8 *s = src;

  switch (dtype)
    {
    case AT_DTYPE_F32:
      memcpy (dst, src, (gsize) n * 4);
      return;
    case AT_DTYPE_F16:
    case AT_DTYPE_BF16:
      for (gint64 i = 0; i < n; i++)
        {
          guint16 h = (guint16) (s[2 * i] | (s[2 * i + 1] << 8));
          dst[i] = dtype == AT_DTYPE_F16 ? at_f16_to_f32 (h) : at_bf16_to_f32 (h);
        }
      return;
    case AT_DTYPE_I32:
      for (gint64 i = 0; i < n; i++)
        dst[i] = (float) ((const gint32 *) src)[i];
      return;
    default:
      g_return_if_fail (n % info->block_size == 0);
      for (gint64 b = 0; b < n / info->block_size; b++)
        dequant_block (dtype, s + b * info->type_size, dst + b * info->block_size);
    }
}

static float
absmax_signed (const float *x, int n)
{
  float v = 0;
  for (int i = 0; i < n; i++)
    if (fabsf (x[i]) > fabsf (v))
      v = x[i];
  return v;
}

static int
clampi (int v, int lo, int hi)
{
  return v < lo ? lo : v > hi ? hi : v;
}

/* Sub-block scales and mins of a K-quant super-block, as 6-bit integers of d and dmin. */
static void
quant_k_scales (const float *x, int nq, guint8 *scales, float *d_out, float *dmin_out,
                guint8 sc[8], guint8 mn[8])
{
  float scale[8], min[8], max_scale = 0, max_min = 0, d, dmin;

  for (int j = 0; j < 8; j++)
    {
      float lo = x[j * 32], hi = x[j * 32];
      for (int l = 1; l < 32; l++)
        {
          lo = MIN (lo, x[j * 32 + l]);
          hi = MAX (hi, x[j * 32 + l]);
        }
      min[j] = lo < 0 ? -lo : 0;
      scale[j] = (hi + min[j]) / nq;
      max_scale = MAX (max_scale, scale[j]);
      max_min = MAX (max_min, min[j]);
    }
  d = max_scale / 63;
  dmin = max_min / 63;
  /* Round through half so the scales below match what the decoder will read. */
  d = at_f16_to_f32 (at_f32_to_f16 (d));
  dmin = at_f16_to_f32 (at_f32_to_f16 (dmin));
  for (int j = 0; j < 8; j++)
    {
      sc[j] = d > 0 ? (guint8) clampi ((int) ceilf (scale[j] / d), 0, 63) : 0;
      mn[j] = dmin > 0 ? (guint8) clampi ((int) ceilf (min[j] / dmin), 0, 63) : 0;
    }
  for (int j = 0; j < 4; j++)
    {
      scales[j] = (sc[j] & 63) | ((sc[j + 4] >> 4) << 6);
      scales[j + 4] = (mn[j] & 63) | ((mn[j + 4] >> 4) << 6);
      scales[j + 8] = (sc[j + 4] & 0xf) | ((mn[j + 4] & 0xf) << 4);
    }
  *d_out = d;
  *dmin_out = dmin;
}

static void
quant_block (AtDtype t, const float *x, guint8 *b)
{
  switch (t)
    {
    case AT_DTYPE_Q8_0:
      {
        float amax = fabsf (absmax_signed (x, 32)), d = amax / 127, id;
        put_half (b, d);
        d = half_at (b);
        id = d != 0 ? 1 / d : 0;
        for (int i = 0; i < 32; i++)
          b[2 + i] = (guint8) (gint8) clampi ((int) lrintf (x[i] * id), -127, 127);
      }
      break;
    case AT_DTYPE_Q4_0:
    case AT_DTYPE_Q5_0:
      {
        gboolean five = t == AT_DTYPE_Q5_0;
        int half_range = five ? 16 : 8, maxq = five ? 31 : 15;
        float d = absmax_signed (x, 32) / -half_range, id;
        guint8 *qs = b + (five ? 6 : 2);
        guint32 qh = 0;
        put_half (b, d);
        d = half_at (b);
        id = d != 0 ? 1 / d : 0;
        for (int i = 0; i < 16; i++)
          {
            int lo = clampi ((int) lrintf (x[i] * id) + half_range, 0, maxq);
            int hi = clampi ((int) lrintf (x[i + 16] * id) + half_range, 0, maxq);
            qs[i] = (guint8) ((lo & 0xf) | ((hi & 0xf) << 4));
            qh |= (guint32) ((lo >> 4) & 1) << i;
            qh |= (guint32) ((hi >> 4) & 1) << (i + 16);
          }
        if (five)
          for (int k = 0; k < 4; k++)
            b[2 + k] = (guint8) (qh >> (8 * k));
      }
      break;
    case AT_DTYPE_Q4_1:
    case AT_DTYPE_Q5_1:
      {
        gboolean five = t == AT_DTYPE_Q5_1;
        int maxq = five ? 31 : 15;
        float lo = x[0], hi = x[0], d, m, id;
        guint8 *qs = b + (five ? 8 : 4);
        guint32 qh = 0;
        for (int i = 1; i < 32; i++)
          {
            lo = MIN (lo, x[i]);
            hi = MAX (hi, x[i]);
          }
        put_half (b, (hi - lo) / maxq);
        put_half (b + 2, lo);
        d = half_at (b);
        m = half_at (b + 2);
        id = d != 0 ? 1 / d : 0;
        for (int i = 0; i < 16; i++)
          {
            int q0 = clampi ((int) lrintf ((x[i] - m) * id), 0, maxq);
            int q1 = clampi ((int) lrintf ((x[i + 16] - m) * id), 0, maxq);
            qs[i] = (guint8) ((q0 & 0xf) | ((q1 & 0xf) << 4));
            qh |= (guint32) ((q0 >> 4) & 1) << i;
            qh |= (guint32) ((q1 >> 4) & 1) << (i + 16);
          }
        if (five)
          for (int k = 0; k < 4; k++)
            b[4 + k] = (guint8) (qh >> (8 * k));
      }
      break;
    case AT_DTYPE_Q4_K:
    case AT_DTYPE_Q5_K:
      {
        gboolean five = t == AT_DTYPE_Q5_K;
        int maxq = five ? 31 : 15;
        guint8 sc[8], mn[8];
        float d, dmin;
        guint8 *qh = b + 16, *qs = b + (five ? 48 : 16);
        quant_k_scales (x, maxq, b + 4, &d, &dmin, sc, mn);
        put_half (b, d);
        put_half (b + 2, dmin);
        if (five)
          memset (qh, 0, 32);
        for (int c = 0; c < 4; c++)
          for (int l = 0; l < 32; l++)
            {
              int q[2];
              for (int h = 0; h < 2; h++)
                {
                  int j = 2 * c + h;
                  float s = d * sc[j];
                  float v = x[j * 32 + l] + dmin * mn[j];
                  q[h] = s > 0 ? clampi ((int) lrintf (v / s), 0, maxq) : 0;
                  if (five)
                    qh[l] |= (guint8) (((q[h] >> 4) & 1) << j);
                }
              qs[c * 32 + l] = (guint8) ((q[0] & 0xf) | ((q[1] & 0xf) << 4));
            }
      }
      break;
    case AT_DTYPE_Q6_K:
      {
        guint8 *ql = b, *qh = b + 128;
        gint8 *sc = (gint8 *) (b + 192);
        float scale[16], amax = 0, d;
        for (int j = 0; j < 16; j++)
          {
            scale[j] = absmax_signed (x + j * 16, 16) / -32;
            amax = MAX (amax, fabsf (scale[j]));
          }
        put_half (b + 208, amax / 127);
        d = half_at (b + 208);
        memset (b, 0, 192);
        for (int j = 0; j < 16; j++)
          sc[j] = (gint8) (d > 0 ? clampi ((int) lrintf (scale[j] / d), -127, 127) : 0);
        for (int i = 0; i < 256; i++)
          {
            float s = d * sc[i / 16];
            int q = s != 0 ? clampi ((int) lrintf (x[i] / s), -32, 31) + 32 : 32;
            int n = i / 128, o = i % 128, g = o / 32, l = o % 32;
            ql[n * 64 + (g & 1) * 32 + l] |= (guint8) ((q & 0xf) << (g >= 2 ? 4 : 0));
            qh[n * 32 + l] |= (guint8) ((q >> 4) << (2 * g));
          }
      }
      break;
    default:
      g_return_if_reached ();
    }
}

void
at_quantize_row (AtDtype dtype, const float *src, void *dst, gint64 n)
{
  const AtDtypeInfo *info = at_dtype_info (dtype);
  guint8 *d = dst;

  switch (dtype)
    {
    case AT_DTYPE_F32:
      memcpy (dst, src, (gsize) n * 4);
      return;
    case AT_DTYPE_F16:
    case AT_DTYPE_BF16:
      for (gint64 i = 0; i < n; i++)
        {
          guint16 h = dtype == AT_DTYPE_F16 ? at_f32_to_f16 (src[i]) : at_f32_to_bf16 (src[i]);
          d[2 * i] = h & 0xff;
          d[2 * i + 1] = h >> 8;
        }
      return;
    case AT_DTYPE_I32:
      for (gint64 i = 0; i < n; i++)
        ((gint32 *) dst)[i] = (gint32) lrintf (src[i]);
      return;
    default:
      g_return_if_fail (n % info->block_size == 0);
      for (gint64 b = 0; b < n / info->block_size; b++)
        quant_block (dtype, src + b * info->block_size, d + b * info->type_size);
    }
}
