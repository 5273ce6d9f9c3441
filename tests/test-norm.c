/* test-norm.c: layer / RMS / group / instance norm, softmax, RoPE, SwiGLU and GEGLU, GPU against
 * the C reference at sizes that are not multiples of the workgroup, size-1 edges, f16 weights,
 * masks with -INFINITY, causal rows, and values worked out by formula for softmax and RoPE. */
#include "at-test-util.h"

#include <math.h>
#include <string.h>

/* f32 accumulations in a different order than the double reference. */
#define TOL_F32 1e-10
/* RoPE: the GPU's pow/sin/cos differ from libm by a few ulp of theta (positions < 100). */
#define TOL_ROPE 1e-9

/* Runs the graph (GPU against the reference) and returns the GPU's values of `out`. */
static float *
run_values (AtGraph *g, AtTensor *out, double tol, const char *what)
{
  g_autoptr (GError) error = NULL;
  gint64 n;
  float *v;

  at_test_assert_nmse (at_test_run (g, out), tol, what);
  n = at_tensor_numel (out);
  v = g_new (float, n);
  g_assert_true (at_graph_get_output (g, out, v, n * sizeof (float), &error));
  g_assert_no_error (error);
  return v;
}

/* ---- layer norm, RMS norm ---- */

static void
check_norm (gboolean rms, int ndim, const gint64 *shape, AtDtype wtype, gboolean with_w,
            gboolean with_b, float lo, float hi, const char *what)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  const gint64 d[] = { shape[ndim - 1] };
  AtTensor *x, *w = NULL, *b = NULL, *y;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  x = at_test_input (g, "x", AT_DTYPE_F32, ndim, shape, lo, hi);
  if (with_w)
    w = at_test_weight (g, "w", wtype, 1, d, 0.5, 1.5);
  if (with_b)
    b = at_test_weight (g, "b", wtype, 1, d, -1, 1);
  y = rms ? at_rms_norm (g, x, w, 1e-6f) : at_layer_norm (g, x, w, b, 1e-5f);
  at_test_assert_nmse (at_test_run (g, y), TOL_F32, what);
}

static void
test_layer_norm (void)
{
  const gint64 s1[] = { 3, 5, 37 }, s2[] = { 2, 4096 }, s3[] = { 4, 1 }, s4[] = { 1, 1, 1, 7 };
  const gint64 s5[] = { 9, 77 }, s6[] = { 5, 4 }, s7[] = { 3, 12 };

  check_norm (FALSE, 3, s1, AT_DTYPE_F32, TRUE, TRUE, -2, 2, "layer_norm [3,5,37] f32 w,b");
  check_norm (FALSE, 2, s2, AT_DTYPE_F16, TRUE, TRUE, -2, 2, "layer_norm [2,4096] f16 w,b");
  check_norm (FALSE, 2, s5, AT_DTYPE_F32, FALSE, FALSE, 3, 5, "layer_norm [9,77] offset, no w");
  check_norm (FALSE, 2, s5, AT_DTYPE_F16, TRUE, FALSE, -1, 1, "layer_norm [9,77] f16 w only");
  check_norm (FALSE, 2, s3, AT_DTYPE_F32, TRUE, TRUE, -2, 2, "layer_norm D=1");
  check_norm (FALSE, 4, s4, AT_DTYPE_F32, TRUE, TRUE, -2, 2, "layer_norm 1 row of 7");
  check_norm (FALSE, 2, s6, AT_DTYPE_F32, TRUE, TRUE, -2, 2, "layer_norm [5,4] vec4, one per row");
  check_norm (FALSE, 2, s7, AT_DTYPE_F16, TRUE, TRUE, -2, 2, "layer_norm [3,12] vec4 f16 w,b");
}

static void
test_rms_norm (void)
{
  const gint64 s1[] = { 4, 4096 }, s2[] = { 3, 77 }, s3[] = { 5, 1 }, s4[] = { 2, 3, 129 };

  check_norm (TRUE, 2, s1, AT_DTYPE_F32, TRUE, FALSE, -2, 2, "rms_norm [4,4096] f32 w");
  check_norm (TRUE, 2, s2, AT_DTYPE_F16, TRUE, FALSE, -2, 2, "rms_norm [3,77] f16 w");
  check_norm (TRUE, 3, s4, AT_DTYPE_F32, FALSE, FALSE, -2, 2, "rms_norm [2,3,129] no w");
  check_norm (TRUE, 2, s3, AT_DTYPE_F32, TRUE, FALSE, -2, 2, "rms_norm D=1");
}

static void
test_norm_strided (void)
{
  /* A transposed view: rows are strided and so is the last dimension. */
  AtDevice *dev = at_test_device ();
  const gint64 shape[] = { 2, 33, 65 }, d[] = { 33 };

  if (dev == NULL)
    return;
  for (int rms = 0; rms < 2; rms++)
    {
      g_autoptr (AtGraph) g = at_graph_new (dev);
      AtTensor *x = at_test_input (g, "x", AT_DTYPE_F32, 3, shape, -1, 1);
      AtTensor *t = at_transpose (g, x, 1, 2); /* [2, 65, 33] */
      AtTensor *w = at_test_weight (g, "w", AT_DTYPE_F32, 1, d, -1, 1);
      AtTensor *y = rms ? at_rms_norm (g, t, w, 1e-6f) : at_layer_norm (g, t, w, w, 1e-5f);
      at_test_assert_nmse (at_test_run (g, y), TOL_F32, rms ? "rms_norm transposed" : "layer_norm transposed");
    }
}

/* ---- group norm, instance norm ---- */

static void
check_group_norm (int ndim, const gint64 *shape, int groups, AtDtype wtype, gboolean affine,
                  const char *what)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  const gint64 c[] = { shape[1] };
  AtTensor *x, *w = NULL, *b = NULL, *y;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  x = at_test_input (g, "x", AT_DTYPE_F32, ndim, shape, -1, 3);
  if (affine)
    {
      w = at_test_weight (g, "w", wtype, 1, c, 0.5, 1.5);
      b = at_test_weight (g, "b", wtype, 1, c, -1, 1);
    }
  y = groups > 0 ? at_group_norm (g, x, groups, w, b, 1e-5f) : at_instance_norm (g, x, w, b, 1e-5f);
  at_test_assert_nmse (at_test_run (g, y), TOL_F32, what);
}

static void
test_group_norm (void)
{
  const gint64 s1[] = { 1, 320, 24, 17 }, s2[] = { 2, 6, 5 }, s3[] = { 2, 5, 7, 3 };
  const gint64 s4[] = { 1, 4, 1, 1 }, s5[] = { 2, 3, 9, 11 }, s6[] = { 3, 7, 1 };
  const gint64 s7[] = { 2, 3, 4, 4 }, s8[] = { 2, 5, 4, 3 };

  check_group_norm (4, s1, 32, AT_DTYPE_F32, TRUE, "group_norm [1,320,24,17] 32 groups");
  check_group_norm (4, s1, 32, AT_DTYPE_F16, TRUE, "group_norm [1,320,24,17] f16 w,b");
  check_group_norm (3, s2, 3, AT_DTYPE_F32, TRUE, "group_norm [2,6,5] 3 groups");
  check_group_norm (4, s3, 1, AT_DTYPE_F32, FALSE, "group_norm one group, no affine");
  check_group_norm (4, s4, 2, AT_DTYPE_F32, TRUE, "group_norm 1x1 spatial");
  check_group_norm (4, s5, 0, AT_DTYPE_F32, TRUE, "instance_norm [2,3,9,11]");
  check_group_norm (4, s5, 0, AT_DTYPE_F16, FALSE, "instance_norm no affine");
  check_group_norm (3, s6, 0, AT_DTYPE_F16, TRUE, "instance_norm spatial 1");
  check_group_norm (4, s7, 0, AT_DTYPE_F32, TRUE, "instance_norm vec4 [2,3,4,4]");
  check_group_norm (4, s8, 1, AT_DTYPE_F16, TRUE, "group_norm vec4 one group [2,5,4,3]");
}

/* ---- softmax ---- */

/* `mask` NULL: none; otherwise values for a mask of `mshape`, stored as `mtype`. */
static void
check_softmax (int ndim, const gint64 *shape, int mndim, const gint64 *mshape, const float *mask,
               AtDtype mtype, float scale, gboolean causal, const char *what)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  AtTensor *x, *m = NULL;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  x = at_test_input (g, "x", AT_DTYPE_F32, ndim, shape, -8, 8);
  if (mask != NULL)
    m = at_test_input_values (g, "mask", mtype, mndim, mshape, mask);
  at_test_assert_nmse (at_test_run (g, at_softmax (g, x, m, scale, causal)), TOL_F32, what);
}

/* A random mask with a fraction of -INFINITY entries and the rest in [-2, 2]. */
static float *
random_mask (gint64 n, double p_hidden)
{
  float *m = g_new (float, n);

  for (gint64 i = 0; i < n; i++)
    m[i] = g_test_rand_double () < p_hidden ? -INFINITY : (float) g_test_rand_double_range (-2, 2);
  return m;
}

static void
test_softmax (void)
{
  const gint64 s1[] = { 2, 3, 77, 77 }, m1[] = { 77, 77 }, m2[] = { 1, 1, 77, 77 };
  const gint64 s3[] = { 1, 2, 5, 13 }, s4[] = { 6, 1 }, s5[] = { 3, 4096 };
  const gint64 s6[] = { 2, 3, 7, 19 }, m6[] = { 2, 1, 1, 19 }, s7[] = { 1, 1, 9, 4 };
  g_autofree float *mask1 = random_mask (77 * 77, 0.3);
  const gint64 s8[] = { 2, 3, 13, 20 }, m8[] = { 13, 20 }, s9[] = { 2, 3, 13, 12 }, m9[] = { 1, 1, 13, 12 };
  const gint64 s10[] = { 2, 3, 5, 16 }, m10[] = { 2, 1, 1, 16 };
  g_autofree float *mask6 = random_mask (2 * 19, 0.2);
  g_autofree float *mask8 = random_mask (13 * 20, 0.3);

  check_softmax (4, s1, 0, NULL, NULL, AT_DTYPE_F32, 0.125f, FALSE, "softmax [2,3,77,77]");
  check_softmax (4, s1, 2, m1, mask1, AT_DTYPE_F32, 0.125f, FALSE, "softmax mask f32 [77,77] -inf");
  check_softmax (4, s1, 4, m2, mask1, AT_DTYPE_F16, 0.125f, FALSE, "softmax mask f16 [1,1,77,77]");
  check_softmax (4, s1, 2, m1, mask1, AT_DTYPE_F32, 1.0f, TRUE, "softmax mask + causal");
  check_softmax (4, s3, 0, NULL, NULL, AT_DTYPE_F32, 1.0f, TRUE, "softmax causal Lq 5 < Lk 13");
  check_softmax (4, s7, 0, NULL, NULL, AT_DTYPE_F32, 1.0f, TRUE, "softmax causal Lq 9 > Lk 4");
  check_softmax (2, s4, 0, NULL, NULL, AT_DTYPE_F32, 1.0f, FALSE, "softmax Lk=1");
  check_softmax (2, s4, 0, NULL, NULL, AT_DTYPE_F32, 1.0f, TRUE, "softmax Lk=1 causal");
  check_softmax (2, s5, 0, NULL, NULL, AT_DTYPE_F32, 1.0f, FALSE, "softmax [3,4096]");
  check_softmax (4, s6, 4, m6, mask6, AT_DTYPE_F16, 0.5f, FALSE, "softmax padding mask [2,1,1,19]");
  /* Lk a multiple of 4: the vec4 path, with a causal edge inside a vec4. */
  check_softmax (4, s8, 2, m8, mask8, AT_DTYPE_F32, 0.7f, TRUE, "softmax vec4 mask f32 + causal");
  check_softmax (4, s9, 4, m9, mask8, AT_DTYPE_F16, 0.7f, FALSE, "softmax vec4 mask f16 Lk 12");
  check_softmax (4, s9, 4, m9, mask8, AT_DTYPE_F16, 0.7f, TRUE, "softmax vec4 mask f16 + causal");
  check_softmax (4, s10, 4, m10, mask6, AT_DTYPE_F32, 1.0f, TRUE, "softmax vec4 padding mask");
}

static void
test_softmax_values (void)
{
  /* Rows worked out by hand: [1, 2, 3] -> e^k / (e + e^2 + e^3); a row whose mask hides every
   * column -> 0s; a row with one hidden column; causal rows of Lq 2 < Lk 3 with scale 2. */
  AtDevice *dev = at_test_device ();
  const gint64 shape[] = { 3, 3 }, causal_shape[] = { 2, 3 };
  const float x[] = { 1, 2, 3, 5, 6, 7, 0, 0, 9 };
  const float mask[] = { 0, 0, 0, -INFINITY, -INFINITY, -INFINITY, 0, -INFINITY, 0 };
  const float cx[] = { 0.5f, 1.0f, 100.0f, 0.0f, 0.5f, 1.0f };
  double e = exp (1.0), s = e + e * e + e * e * e;
  const double expect[] = { e / s, e * e / s, e * e * e / s, 0, 0, 0,
                            1 / (1 + exp (9.0)), 0, exp (9.0) / (1 + exp (9.0)) };
  /* Row 0 sees columns 0, 1 of x * 2 = [1, 2]; row 1 sees all of [0, 1, 2]. */
  double s1 = e + e * e, s2 = 1 + e + e * e;
  const double cexpect[] = { e / s1, e * e / s1, 0, 1 / s2, e / s2, e * e / s2 };

  if (dev == NULL)
    return;
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *tx = at_test_input_values (g, "x", AT_DTYPE_F32, 2, shape, x);
    AtTensor *tm = at_test_input_values (g, "mask", AT_DTYPE_F32, 2, shape, mask);
    g_autofree float *y = run_values (g, at_softmax (g, tx, tm, 1.0f, FALSE), TOL_F32, "softmax known rows");
    for (int i = 0; i < 9; i++)
      g_assert_cmpfloat_with_epsilon (y[i], expect[i], 1e-6);
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *tx = at_test_input_values (g, "x", AT_DTYPE_F32, 2, causal_shape, cx);
    g_autofree float *y = run_values (g, at_softmax (g, tx, NULL, 2.0f, TRUE), TOL_F32, "softmax known causal");
    for (int i = 0; i < 6; i++)
      g_assert_cmpfloat_with_epsilon (y[i], cexpect[i], 1e-6);
  }
}

static void
test_softmax_strided (void)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  const gint64 shape[] = { 2, 21, 30 };
  AtTensor *x;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  x = at_test_input (g, "x", AT_DTYPE_F32, 3, shape, -4, 4);
  at_test_assert_nmse (at_test_run (g, at_softmax (g, at_transpose (g, x, 1, 2), NULL, 1.0f, TRUE)),
                       TOL_F32, "softmax transposed causal");
}

/* ---- RoPE ---- */

static void
check_rope (int ndim, const gint64 *shape, int n_rot, AtRopeMode mode, gboolean with_ff,
            gboolean fused, const char *what)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  gint64 l = shape[ndim - 3], half[] = { n_rot / 2 }, lshape[] = { l };
  g_autofree float *pos = g_new (float, l);
  AtTensor *x, *p, *ff = NULL;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  /* Non-sequential positions: a scramble of 0..3L (3 when L is 1). */
  for (gint64 i = 0; i < l; i++)
    pos[i] = (float) ((i * 7 + 3) % (3 * l + 1));
  if (fused)
    {
      /* x is the K slice of a fused QKV projection [B, L, 3 * H * D]. */
      gint64 qkv[] = { shape[0], shape[1], 3 * shape[2] * shape[3] };
      gint64 st[] = { qkv[1] * qkv[2], qkv[2], shape[3], 1 };
      AtTensor *all = at_test_input (g, "qkv", AT_DTYPE_F32, 3, qkv, -1, 1);
      x = at_view (g, all, 4, shape, st, shape[2] * shape[3]);
    }
  else
    x = at_test_input (g, "x", AT_DTYPE_F32, ndim, shape, -1, 1);
  p = at_test_input_values (g, "pos", AT_DTYPE_I32, 1, lshape, pos);
  if (with_ff)
    ff = at_test_weight (g, "ff", AT_DTYPE_F32, 1, half, 1, 8);
  at_test_assert_nmse (at_test_run (g, at_rope (g, x, p, n_rot, 10000.0f, 0.75f, mode, ff)), TOL_ROPE,
                       what);
}

static void
test_rope (void)
{
  const gint64 s1[] = { 2, 9, 3, 64 }, s2[] = { 7, 5, 18 }, s3[] = { 1, 1, 1, 2 };
  const gint64 s4[] = { 2, 5, 4, 33 }, s5[] = { 2, 5, 4, 36 };

  check_rope (4, s1, 64, AT_ROPE_NORMAL, FALSE, FALSE, "rope normal [2,9,3,64]");
  check_rope (4, s1, 64, AT_ROPE_NEOX, FALSE, FALSE, "rope neox [2,9,3,64]");
  check_rope (4, s1, 32, AT_ROPE_NORMAL, TRUE, FALSE, "rope normal n_rot 32 < 64, ff");
  check_rope (4, s1, 32, AT_ROPE_NEOX, TRUE, FALSE, "rope neox n_rot 32 < 64, ff");
  check_rope (3, s2, 10, AT_ROPE_NEOX, FALSE, FALSE, "rope neox [7,5,18] n_rot 10");
  check_rope (4, s4, 18, AT_ROPE_NORMAL, TRUE, TRUE, "rope normal strided K of QKV, odd D");
  check_rope (4, s4, 32, AT_ROPE_NEOX, FALSE, TRUE, "rope neox strided K of QKV");
  check_rope (4, s5, 20, AT_ROPE_NORMAL, TRUE, TRUE, "rope vec4 normal strided, n_rot 20 < 36");
  check_rope (4, s5, 24, AT_ROPE_NEOX, TRUE, TRUE, "rope vec4 neox strided, n_rot 24 < 36");
  check_rope (4, s5, 20, AT_ROPE_NEOX, FALSE, TRUE, "rope neox n_rot 20 (not vec4)");
  check_rope (4, s3, 2, AT_ROPE_NORMAL, FALSE, FALSE, "rope D=2 normal");
  check_rope (4, s3, 2, AT_ROPE_NEOX, TRUE, FALSE, "rope D=2 neox");
}

/* at_rope_cache on [L, Hq + 2 Hkv, D] (plain or a strided view): the result against the
 * reference (q and k heads turned, v heads copied), and the caches: row positions[l] holds
 * token l's k and v heads exactly as in the result (f16 caches: rounded to f16), positions
 * past the cache's rows write nothing, and the other rows keep what they held. */
static void
check_rope_cache (gboolean strided, gint64 d, int n_rot, AtRopeMode mode, gboolean f16,
                  const char *what)
{
  AtDevice *dev = at_test_device ();
  const gint64 l = 5, nq = 3, nkv = 2, h = nq + 2 * nkv, rows = 7;
  const gint64 lshape[] = { l }, cshape[] = { rows, nkv, d }, xshape[] = { l, h, d };
  const float pos[] = { 4, 2, 6, 7, 9 }; /* 7 and 9 fall past the 7 rows */
  const float sentinel = 7.5f;
  AtDtype cdt = f16 ? AT_DTYPE_F16 : AT_DTYPE_F32;
  gsize cbytes = (gsize) (rows * nkv * d) * (f16 ? 2 : 4);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtGraph) g = NULL;
  g_autoptr (AtBuffer) kbuf = NULL, vbuf = NULL;
  g_autofree float *y = g_new (float, l * h * d), *kc = g_new (float, rows * nkv * d);
  g_autofree float *vc = g_new (float, rows * nkv * d);
  g_autofree guint8 *raw = g_malloc (cbytes);
  AtTensor *x, *out;
  union { float f; guint32 u; } fill = { sentinel };

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  if (strided)
    {
      /* Rows of h D + 3 floats, as the heads of a projection with other columns. */
      const gint64 wide[] = { l, h * d + 3 }, st[] = { h * d + 3, d, 1 };
      x = at_view (g, at_test_input (g, "qkv", AT_DTYPE_F32, 2, wide, -1, 1), 3, xshape, st, 3);
    }
  else
    x = at_test_input (g, "x", AT_DTYPE_F32, 3, xshape, -1, 1);
  kbuf = at_buffer_new (dev, cbytes, AT_BUFFER_DEVICE, "k cache", &error);
  vbuf = at_buffer_new (dev, cbytes, AT_BUFFER_DEVICE, "v cache", &error);
  g_assert_no_error (error);
  if (f16)
    fill.u = at_f32_to_f16 (sentinel) * 0x10001u; /* the sentinel in both halves */
  g_assert_true (at_buffer_fill (kbuf, 0, cbytes, fill.u, &error));
  g_assert_true (at_buffer_fill (vbuf, 0, cbytes, fill.u, &error));
  out = at_rope_cache (g, x, at_test_input_values (g, "pos", AT_DTYPE_I32, 1, lshape, pos), n_rot,
                       10000.0f, 0.75f, mode, NULL, (int) nq,
                       at_graph_weight (g, "k cache", cdt, 3, cshape, kbuf, 0),
                       at_graph_weight (g, "v cache", cdt, 3, cshape, vbuf, 0));
  at_test_assert_nmse (at_test_run (g, out), TOL_ROPE, what);
  g_assert_true (at_graph_get_output (g, out, y, (gsize) (l * h * d) * sizeof (float), &error));
  g_assert_true (at_buffer_download (kbuf, 0, raw, cbytes, &error));
  at_dequantize_row (cdt, raw, kc, rows * nkv * d);
  g_assert_true (at_buffer_download (vbuf, 0, raw, cbytes, &error));
  at_dequantize_row (cdt, raw, vc, rows * nkv * d);
  g_assert_no_error (error);
  for (gint64 r = 0; r < rows; r++)
    {
      gint64 tok = -1;

      for (gint64 i = 0; i < l; i++)
        if ((gint64) pos[i] == r)
          tok = i;
      for (gint64 e = 0; e < nkv * d; e++)
        {
          float want_k = tok < 0 ? sentinel : y[(tok * h + nq) * d + e];
          float want_v = tok < 0 ? sentinel : y[(tok * h + nq + nkv) * d + e];
          if (f16 && tok >= 0)
            {
              g_assert_true (at_test_is_f16_of (kc[r * nkv * d + e], want_k));
              g_assert_true (at_test_is_f16_of (vc[r * nkv * d + e], want_v));
              continue;
            }
          g_assert_cmpfloat (kc[r * nkv * d + e], ==, want_k);
          g_assert_cmpfloat (vc[r * nkv * d + e], ==, want_v);
        }
    }
}

static void
test_rope_cache (void)
{
  check_rope_cache (FALSE, 16, 16, AT_ROPE_NORMAL, FALSE, "rope cache vec4 normal");
  check_rope_cache (FALSE, 16, 8, AT_ROPE_NEOX, FALSE, "rope cache vec4 neox, n_rot 8 < 16");
  check_rope_cache (TRUE, 16, 8, AT_ROPE_NEOX, FALSE, "rope cache neox strided (scalar), n_rot 8 < 16");
  check_rope_cache (FALSE, 10, 6, AT_ROPE_NORMAL, FALSE, "rope cache D 10, n_rot 6");
  check_rope_cache (TRUE, 10, 10, AT_ROPE_NEOX, FALSE, "rope cache strided D 10 neox");
  /* f16 caches (a language model's default KV cache), vec4 and scalar. */
  check_rope_cache (FALSE, 16, 8, AT_ROPE_NEOX, TRUE, "rope cache f16 vec4 neox");
  check_rope_cache (FALSE, 16, 16, AT_ROPE_NORMAL, TRUE, "rope cache f16 vec4 normal");
  check_rope_cache (TRUE, 10, 6, AT_ROPE_NORMAL, TRUE, "rope cache f16 strided D 10");
  {
    AtDevice *dev = at_test_device ();
    g_autoptr (AtGraph) g = NULL;
    g_autoptr (AtBuffer) buf = NULL;
    AtTensor *x, *p, *kc;

    if (dev == NULL)
      return;
    g = at_graph_new (dev);
    buf = at_buffer_new (dev, 4096, AT_BUFFER_DEVICE, "cache", NULL);
    x = at_graph_input (g, "x", AT_DTYPE_F32, 3, (gint64[]){ 2, 6, 8 });
    p = at_graph_input (g, "pos", AT_DTYPE_I32, 1, (gint64[]){ 2 });
    kc = at_graph_weight (g, "kc", AT_DTYPE_F32, 3, (gint64[]){ 4, 2, 8 }, buf, 0);
    at_test_expect_error (g, at_rope_cache (g, x, p, 8, 10000.0f, 1.0f, AT_ROPE_NORMAL, NULL, 3, kc, kc),
                          "3 q heads + 2 x 2 kv heads");
  }
}

static void
test_rope_values (void)
{
  /* x [1, 2, 1, 6]: every row is e0 + 2 e2 + 5 e5, at positions {3, 7}; n_rot 4, base 10000,
   * freq_scale 0.5, freq_factors {1, 4}: theta_0 = pos / 2, theta_1 = pos / 2 / 100 / 4. */
  AtDevice *dev = at_test_device ();
  const gint64 shape[] = { 1, 2, 1, 6 }, lshape[] = { 2 }, fshape[] = { 2 };
  const float x[] = { 1, 0, 2, 0, 0, 5, 1, 0, 2, 0, 0, 5 };
  const float pos[] = { 3, 7 }, ffv[] = { 1, 4 };

  if (dev == NULL)
    return;
  for (int mode = AT_ROPE_NORMAL; mode <= AT_ROPE_NEOX; mode++)
    {
      g_autoptr (AtGraph) g = at_graph_new (dev);
      AtTensor *tx = at_test_input_values (g, "x", AT_DTYPE_F32, 4, shape, x);
      AtTensor *tp = at_test_input_values (g, "pos", AT_DTYPE_I32, 1, lshape, pos);
      AtTensor *tf = at_test_input_values (g, "ff", AT_DTYPE_F32, 1, fshape, ffv);
      g_autofree float *y = run_values (g, at_rope (g, tx, tp, 4, 10000.0f, 0.5f, mode, tf), TOL_ROPE,
                                        mode == AT_ROPE_NORMAL ? "rope normal known" : "rope neox known");
      for (int l = 0; l < 2; l++)
        {
          double t0 = pos[l] * 0.5, t1 = pos[l] * 0.5 / 100.0 / 4.0;
          double expect[6];
          if (mode == AT_ROPE_NORMAL)
            {
              /* pairs (0, 1) by t0 and (2, 3) by t1: e0 -> (cos, sin), 2 e2 -> 2 (cos, sin) */
              double e[] = { cos (t0), sin (t0), 2 * cos (t1), 2 * sin (t1), 0, 5 };
              memcpy (expect, e, sizeof e);
            }
          else
            {
              /* pairs (0, 2) by t0 and (1, 3) by t1: e0 -> cos e0 + sin e2, e2 -> -sin e0 + cos e2 */
              double e[] = { cos (t0) - 2 * sin (t0), 0, sin (t0) + 2 * cos (t0), 0, 0, 5 };
              memcpy (expect, e, sizeof e);
            }
          for (int k = 0; k < 6; k++)
            g_assert_cmpfloat_with_epsilon (y[l * 6 + k], expect[k], 1e-5);
        }
    }
}

static void
test_rope_values_vec4 (void)
{
  /* x [1, 2, 1, 8]: every row is e0 + 2 e2 + 5 e5 + 7 e7 at positions {3, 7}; n_rot 8, base
   * 10000, freq_scale 0.5, freq_factors {1, 4, 2, 1}: theta_i = pos / 2 * 10^-i / ff_i. */
  AtDevice *dev = at_test_device ();
  const gint64 shape[] = { 1, 2, 1, 8 }, lshape[] = { 2 }, fshape[] = { 4 };
  const float x[] = { 1, 0, 2, 0, 0, 5, 0, 7, 1, 0, 2, 0, 0, 5, 0, 7 };
  const float pos[] = { 3, 7 }, ffv[] = { 1, 4, 2, 1 };

  if (dev == NULL)
    return;
  for (int mode = AT_ROPE_NORMAL; mode <= AT_ROPE_NEOX; mode++)
    {
      g_autoptr (AtGraph) g = at_graph_new (dev);
      AtTensor *tx = at_test_input_values (g, "x", AT_DTYPE_F32, 4, shape, x);
      AtTensor *tp = at_test_input_values (g, "pos", AT_DTYPE_I32, 1, lshape, pos);
      AtTensor *tf = at_test_input_values (g, "ff", AT_DTYPE_F32, 1, fshape, ffv);
      g_autofree float *y = run_values (g, at_rope (g, tx, tp, 8, 10000.0f, 0.5f, mode, tf), TOL_ROPE,
                                        mode == AT_ROPE_NORMAL ? "rope normal known D=8" : "rope neox known D=8");
      for (int l = 0; l < 2; l++)
        {
          double t[4];
          double expect[8];
          for (int i = 0; i < 4; i++)
            t[i] = pos[l] * 0.5 * pow (10.0, -i) / ffv[i];
          if (mode == AT_ROPE_NORMAL)
            {
              /* pairs (0,1) (2,3) (4,5) (6,7): 1 e0, 2 e2 turn from the first axis; 5 e5, 7 e7
               * from the second: (0, b) -> (-b sin, b cos). */
              double e[] = { cos (t[0]), sin (t[0]), 2 * cos (t[1]), 2 * sin (t[1]),
                             -5 * sin (t[2]), 5 * cos (t[2]), -7 * sin (t[3]), 7 * cos (t[3]) };
              memcpy (expect, e, sizeof e);
            }
          else
            {
              /* pairs (0,4) (1,5) (2,6) (3,7) with x = (1, 0, 2, 0 | 0, 5, 0, 7). */
              double e[] = { cos (t[0]), -5 * sin (t[1]), 2 * cos (t[2]), -7 * sin (t[3]),
                             sin (t[0]), 5 * cos (t[1]), 2 * sin (t[2]), 7 * cos (t[3]) };
              memcpy (expect, e, sizeof e);
            }
          for (int k = 0; k < 8; k++)
            g_assert_cmpfloat_with_epsilon (y[l * 8 + k], expect[k], 1e-5);
        }
    }
}

/* ---- SwiGLU, GEGLU ---- */

static void
test_glu (void)
{
  AtDevice *dev = at_test_device ();
  const gint64 s1[] = { 3, 5, 129 }, s2[] = { 4, 7, 130 }, s3[] = { 3, 2 }, s4[] = { 2, 33, 40 };
  const gint64 s5[] = { 2, 3, 64 }, s6[] = { 7, 136 }, s7[] = { 5, 8 };

  if (dev == NULL)
    return;
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *gate = at_test_input (g, "gate", AT_DTYPE_F32, 3, s1, -6, 6);
    AtTensor *up = at_test_input (g, "up", AT_DTYPE_F32, 3, s1, -2, 2);
    at_test_assert_nmse (at_test_run (g, at_swiglu (g, gate, up)), TOL_F32, "swiglu [3,5,129]");
  }
  /* The GELU (tanh form) gate of a pair held apart (gemma's unstacked feed-forward). */
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *gate = at_test_input (g, "gate", AT_DTYPE_F32, 3, s1, -6, 6);
    AtTensor *up = at_test_input (g, "up", AT_DTYPE_F32, 3, s1, -2, 2);
    at_test_assert_nmse (at_test_run (g, at_glu_pair (g, gate, up, AT_GLU_GELU_TANH)), TOL_F32,
                         "glu pair gelu-tanh [3,5,129]");
  }
  {
    /* A transposed gate against a contiguous up. */
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *gate = at_test_input (g, "gate", AT_DTYPE_F32, 3, s4, -6, 6);
    const gint64 ts[] = { 2, 40, 33 };
    AtTensor *up = at_test_input (g, "up", AT_DTYPE_F32, 3, ts, -2, 2);
    at_test_assert_nmse (at_test_run (g, at_swiglu (g, at_transpose (g, gate, 1, 2), up)), TOL_F32,
                         "swiglu strided gate");
  }
  {
    /* Contiguous, a multiple of 4: the flat vec4 path. */
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *gate = at_test_input (g, "gate", AT_DTYPE_F32, 3, s5, -6, 6);
    AtTensor *up = at_test_input (g, "up", AT_DTYPE_F32, 3, s5, -2, 2);
    at_test_assert_nmse (at_test_run (g, at_swiglu (g, gate, up)), TOL_F32, "swiglu [2,3,64] vec4");
  }
  {
    /* gate and up are the two halves of x [3, 5, 72]: strided rows, read as vec4s. */
    g_autoptr (AtGraph) g = at_graph_new (dev);
    const gint64 xs[] = { 3, 5, 72 }, hs[] = { 3, 5, 36 }, st[] = { 360, 72, 1 };
    AtTensor *x = at_test_input (g, "x", AT_DTYPE_F32, 3, xs, -6, 6);
    AtTensor *gate = at_view (g, x, 3, hs, st, 0), *up = at_view (g, x, 3, hs, st, 36);
    at_test_assert_nmse (at_test_run (g, at_swiglu (g, gate, up)), TOL_F32, "swiglu halves of x");
  }
  {
    /* up broadcast over rows by a stride-0 view. */
    g_autoptr (AtGraph) g = at_graph_new (dev);
    const gint64 gs[] = { 3, 40 }, us[] = { 1, 40 }, st[] = { 0, 1 };
    AtTensor *gate = at_test_input (g, "gate", AT_DTYPE_F32, 2, gs, -6, 6);
    AtTensor *up = at_test_input (g, "up", AT_DTYPE_F32, 2, us, -2, 2);
    at_test_assert_nmse (at_test_run (g, at_swiglu (g, gate, at_view (g, up, 2, gs, st, 0))), TOL_F32,
                         "swiglu up broadcast by stride 0");
  }
  for (int kind = AT_GLU_GEGLU; kind <= AT_GLU_GELU_TANH; kind++)
    for (int c = 0; c < 4; c++)
      {
        g_autoptr (AtGraph) g = at_graph_new (dev);
        const gint64 *shape = c == 0 ? s2 : c == 1 ? s3 : c == 2 ? s6 : s7;
        AtTensor *x = at_test_input (g, "x", AT_DTYPE_F32, c == 0 ? 3 : 2, shape, -4, 4);
        g_autofree char *what = g_strdup_printf ("glu %s [..., %" G_GINT64_FORMAT "]",
                                                 kind == AT_GLU_GEGLU ? "geglu" : kind == AT_GLU_SWIGLU ? "swiglu" : "gelu-tanh",
                                                 shape[c == 0 ? 2 : 1]);
        at_test_assert_nmse (at_test_run (g, at_glu (g, x, kind)), TOL_F32, what);
      }
}

static void
test_glu_values (void)
{
  /* x = [1, 2 | 3, -1]: GEGLU = hidden * gelu(gate) = [1 gelu(3), 2 gelu(-1)];
   * SWIGLU = silu(gate) * up = [silu(1) 3, silu(2) (-1)]; GELU_TANH the same with GELU's tanh
   * form for silu. */
  AtDevice *dev = at_test_device ();
  const gint64 shape[] = { 1, 4 };
  const float x[] = { 1, 2, 3, -1 };
  double gelu3 = 1.5 * (1 + erf (3 / sqrt (2.0))), gelu_m1 = -0.5 * (1 + erf (-1 / sqrt (2.0)));
  double gt1 = 0.5 * (1 + tanh (sqrt (2 / M_PI) * (1 + 0.044715))),
         gt2 = 1.0 * (1 + tanh (sqrt (2 / M_PI) * (2 + 0.044715 * 8)));
  const double expect[3][2] = { { gelu3, 2 * gelu_m1 },
                                { 3 / (1 + exp (-1.0)), -2 / (1 + exp (-2.0)) },
                                { 3 * gt1, -gt2 } };

  if (dev == NULL)
    return;
  for (int kind = AT_GLU_GEGLU; kind <= AT_GLU_GELU_TANH; kind++)
    {
      g_autoptr (AtGraph) g = at_graph_new (dev);
      AtTensor *tx = at_test_input_values (g, "x", AT_DTYPE_F32, 2, shape, x);
      g_autofree float *y = run_values (g, at_glu (g, tx, kind), TOL_F32, "glu known");
      for (int i = 0; i < 2; i++)
        g_assert_cmpfloat_with_epsilon (y[i], expect[kind][i], 1e-5);
    }
}

/* ---- the multi-subgroup reduction path (GPUs) on any device ---- */

static void
test_workgroup_path (void)
{
  const gint64 s1[] = { 3, 1000 }, s2[] = { 2, 4096 }, s3[] = { 2, 64, 9, 7 }, s4[] = { 2, 3, 7, 77 };
  const gint64 s5[] = { 5, 1 }, m4[] = { 7, 77 }, s6[] = { 2, 3, 7, 76 }, m6[] = { 7, 76 };
  const gint64 s7[] = { 2, 64, 8, 6 };
  g_autofree float *mask = random_mask (7 * 77, 0.5);

  /* Full-row masks hit the all-hidden combine. */
  for (int j = 0; j < 77; j++)
    mask[3 * 77 + j] = -INFINITY;
  g_setenv ("ATELIER_NORM_WG", "64", TRUE);
  check_norm (FALSE, 2, s1, AT_DTYPE_F16, TRUE, TRUE, -2, 2, "wg64 layer_norm [3,1000]");
  check_norm (TRUE, 2, s2, AT_DTYPE_F32, TRUE, FALSE, -2, 2, "wg64 rms_norm [2,4096]");
  check_norm (FALSE, 2, s5, AT_DTYPE_F32, TRUE, TRUE, -2, 2, "wg64 layer_norm D=1");
  check_group_norm (4, s3, 32, AT_DTYPE_F32, TRUE, "wg64 group_norm [2,64,9,7]");
  check_softmax (4, s4, 2, m4, mask, AT_DTYPE_F32, 0.3f, TRUE, "wg64 softmax mask causal");
  check_softmax (4, s4, 2, m4, mask, AT_DTYPE_F16, 0.3f, FALSE, "wg64 softmax mask f16");
  check_softmax (4, s6, 2, m6, mask, AT_DTYPE_F32, 0.3f, TRUE, "wg64 softmax vec4 mask causal");
  check_group_norm (4, s7, 16, AT_DTYPE_F16, TRUE, "wg64 group_norm vec4 [2,64,8,6]");
  g_unsetenv ("ATELIER_NORM_WG");
}

static void
test_fully_masked (void)
{
  /* Every column of row 1 hidden by the mask: 0s, not NaN (the reference agrees; NaN fails NMSE). */
  for (gint64 lk = 11; lk <= 12; lk++)
    {
      const gint64 shape[] = { 2, 4, lk }, mshape[] = { 4, lk };
      float mask[48];

      for (int i = 0; i < 4 * lk; i++)
        mask[i] = i / lk == 1 || i % 3 == 0 ? -INFINITY : 0.0f;
      check_softmax (3, shape, 2, mshape, mask, AT_DTYPE_F32, 1.0f, FALSE,
                     lk == 11 ? "softmax fully masked row" : "softmax vec4 fully masked row");
      check_softmax (3, shape, 2, mshape, mask, AT_DTYPE_F16, 1.0f, TRUE,
                     lk == 11 ? "softmax fully masked row causal" : "softmax vec4 fully masked row causal");
    }
}

/* ---- bad shapes ---- */

static void
test_bad_shapes (void)
{
  AtDevice *dev = at_test_device ();
  const gint64 s1[] = { 3, 8 }, w7[] = { 7 }, s4[] = { 2, 6, 4, 4 }, odd[] = { 2, 5 };
  const gint64 rs[] = { 1, 5, 2, 8 }, p4[] = { 4 }, p5[] = { 5 }, ff3[] = { 3 };

  if (dev == NULL)
    return;
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *x = at_graph_input (g, "x", AT_DTYPE_F32, 2, s1);
    AtTensor *w = at_test_weight (g, "w", AT_DTYPE_F32, 1, w7, 0, 1);
    at_test_expect_error (g, at_layer_norm (g, x, w, NULL, 1e-5f), "weight w f32 [7] must have 8 elements");
    /* Ops after a failure return NULL without crashing. */
    g_assert_null (at_rms_norm (g, NULL, NULL, 1e-5f));
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *x = at_graph_input (g, "x", AT_DTYPE_F32, 2, s1);
    AtTensor *w = at_test_weight (g, "w", AT_DTYPE_F32, 1, w7, 0, 1);
    at_test_expect_error (g, at_rms_norm (g, x, w, 1e-5f), "must have 8 elements");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *x = at_graph_input (g, "x", AT_DTYPE_F32, 4, s4);
    at_test_expect_error (g, at_group_norm (g, x, 4, NULL, NULL, 1e-5f), "do not split into 4 groups");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *x = at_graph_input (g, "x", AT_DTYPE_F32, 4, s4);
    AtTensor *w = at_test_weight (g, "w", AT_DTYPE_F16, 1, w7, 0, 1);
    at_test_expect_error (g, at_group_norm (g, x, 2, w, NULL, 1e-5f), "must have 6 elements");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *x = at_graph_input (g, "x", AT_DTYPE_F32, 2, odd);
    at_test_expect_error (g, at_glu (g, x, AT_GLU_GEGLU), "is odd");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *x = at_graph_input (g, "x", AT_DTYPE_F32, 4, rs);
    AtTensor *p = at_graph_input (g, "pos", AT_DTYPE_I32, 1, p4);
    at_test_expect_error (g, at_rope (g, x, p, 8, 10000, 1, AT_ROPE_NORMAL, NULL), "positions pos i32 [4] must be");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *x = at_graph_input (g, "x", AT_DTYPE_F32, 4, rs);
    AtTensor *p = at_graph_input (g, "pos", AT_DTYPE_I32, 1, p5);
    at_test_expect_error (g, at_rope (g, x, p, 7, 10000, 1, AT_ROPE_NORMAL, NULL), "must be even");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *x = at_graph_input (g, "x", AT_DTYPE_F32, 4, rs);
    AtTensor *p = at_graph_input (g, "pos", AT_DTYPE_I32, 1, p5);
    AtTensor *ff = at_graph_input (g, "ff", AT_DTYPE_F32, 1, ff3);
    at_test_expect_error (g, at_rope (g, x, p, 8, 10000, 1, AT_ROPE_NEOX, ff), "must have 4 elements");
  }
  {
    /* D not contiguous: a transposed view. */
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *x = at_graph_input (g, "x", AT_DTYPE_F32, 4, rs);
    AtTensor *p = at_graph_input (g, "pos", AT_DTYPE_I32, 1, p5);
    at_test_expect_error (g, at_rope (g, at_transpose (g, x, 2, 3), p, 2, 10000, 1, AT_ROPE_NORMAL, NULL),
                  "must be contiguous");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *x = at_graph_input (g, "x", AT_DTYPE_F32, 2, s1);
    AtTensor *m = at_graph_input (g, "mask", AT_DTYPE_F32, 1, w7);
    at_test_expect_error (g, at_softmax (g, x, m, 1, FALSE), "does not broadcast");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *a = at_graph_input (g, "a", AT_DTYPE_F32, 2, s1);
    AtTensor *b = at_graph_input (g, "b", AT_DTYPE_F32, 2, odd);
    at_test_expect_error (g, at_swiglu (g, a, b), "differ in shape");
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/norm/layer-norm", test_layer_norm);
  g_test_add_func ("/engine/norm/rms-norm", test_rms_norm);
  g_test_add_func ("/engine/norm/norm-strided", test_norm_strided);
  g_test_add_func ("/engine/norm/group-norm", test_group_norm);
  g_test_add_func ("/engine/norm/softmax", test_softmax);
  g_test_add_func ("/engine/norm/softmax-values", test_softmax_values);
  g_test_add_func ("/engine/norm/softmax-strided", test_softmax_strided);
  g_test_add_func ("/engine/norm/softmax-fully-masked", test_fully_masked);
  g_test_add_func ("/engine/norm/rope", test_rope);
  g_test_add_func ("/engine/norm/rope-cache", test_rope_cache);
  g_test_add_func ("/engine/norm/rope-values", test_rope_values);
  g_test_add_func ("/engine/norm/rope-values-vec4", test_rope_values_vec4);
  g_test_add_func ("/engine/norm/glu", test_glu);
  g_test_add_func ("/engine/norm/glu-values", test_glu_values);
  g_test_add_func ("/engine/norm/workgroup-path", test_workgroup_path);
  g_test_add_func ("/engine/norm/bad-shapes", test_bad_shapes);
  return g_test_run ();
}
