/* test-conv.c: conv2d, conv_transpose2d, upsample, pad and concat, GPU against the C
 * references, at sizes that are not multiples of the tiles; one conv checked against values
 * worked out by hand; shape errors. */
#include "at-test-util.h"

#include <string.h>

/* Case tables: stride, padding, dilation as (h, w) pairs, then groups (and output_padding for
 * the transposed conv, after padding). */
#define P(sh, sw, ph, pw, dh, dw, groups) { { sh, sw }, { ph, pw }, { dh, dw }, groups }
#define PT(sh, sw, ph, pw, oph, opw, dh, dw, groups)                                               \
  { { sh, sw }, { ph, pw }, { oph, opw }, { dh, dw }, groups }
#define F32 AT_DTYPE_F32
#define F16 AT_DTYPE_F16

typedef struct
{
  const char *what;
  gint64 n, cin, cout, h, w, kh, kw;
  AtConv2dParams p;
  AtDtype wtype;
  int bias; /* 0 none, 1 f32, 2 f16 */
} ConvCase;

static AtTensor *
make_bias (AtGraph *g, int bias, gint64 cout)
{
  const gint64 shape[] = { cout };

  if (bias == 0)
    return NULL;
  return at_test_weight (g, "bias", bias == 2 ? AT_DTYPE_F16 : AT_DTYPE_F32, 1, shape, -1, 1);
}

static void
check_conv (const ConvCase *c)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  const gint64 xs[] = { c->n, c->cin, c->h, c->w };
  const gint64 ws[] = { c->cout, c->cin / c->p.groups, c->kh, c->kw };
  AtTensor *x, *w, *y;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  x = at_test_input (g, "x", AT_DTYPE_F32, 4, xs, -1, 1);
  w = at_test_weight (g, "w", c->wtype, 4, ws, -1, 1);
  y = at_conv2d (g, x, w, make_bias (g, c->bias, c->cout), &c->p);
  at_test_assert_nmse (at_test_run (g, y), 1e-10, c->what);
}

static void
test_conv2d (void)
{
  const ConvCase cases[] = {
    { "1x1", 1, 16, 20, 7, 9, 1, 1, P (1, 1, 0, 0, 1, 1, 1), F32, 1 },
    { "3x3 odd N=2", 2, 3, 5, 7, 9, 3, 3, P (1, 1, 1, 1, 1, 1, 1), F32, 1 },
    { "3x3 pad 0", 1, 3, 5, 7, 9, 3, 3, P (1, 1, 0, 0, 1, 1, 1), F32, 0 },
    { "3x3 stride 2", 1, 6, 9, 11, 8, 3, 3, P (2, 2, 1, 1, 1, 1, 1), F32, 0 },
    { "3x3 asym", 1, 4, 7, 9, 10, 3, 3, P (1, 2, 2, 0, 1, 1, 1), F32, 1 },
    { "3x3 dilation 2", 2, 5, 6, 12, 10, 3, 3, P (1, 1, 2, 2, 2, 2, 1), F32, 1 },
    { "3x3 dilation asym", 1, 3, 4, 12, 10, 3, 3, P (2, 1, 1, 2, 2, 3, 1), F32, 0 },
    { "groups 2", 1, 6, 4, 8, 9, 3, 3, P (1, 1, 1, 1, 1, 1, 2), F32, 1 },
    { "groups 3 2x-multiplier", 1, 9, 6, 5, 7, 3, 3, P (1, 1, 1, 1, 1, 1, 3), F32, 0 },
    { "depthwise", 2, 10, 10, 9, 7, 3, 3, P (1, 1, 1, 1, 1, 1, 10), F32, 1 },
    { "depthwise x2", 1, 4, 8, 9, 7, 3, 3, P (2, 2, 1, 1, 1, 1, 4), F32, 1 },
    { "4x4 stride 2 (VAE/GAN)", 1, 5, 12, 16, 15, 4, 4, P (2, 2, 1, 1, 1, 1, 1), F32, 1 },
    { "5x3 generic", 1, 3, 7, 11, 6, 5, 3, P (1, 1, 2, 1, 1, 1, 1), F32, 1 },
    { "3x3 many tiles", 1, 32, 41, 21, 23, 3, 3, P (1, 1, 1, 1, 1, 1, 1), F32, 1 },
    { "1x1 many tiles N=2", 2, 24, 17, 19, 17, 1, 1, P (1, 1, 0, 0, 1, 1, 1), F32, 0 },
    { "f16 3x3 f16 bias", 1, 17, 19, 13, 11, 3, 3, P (1, 1, 1, 1, 1, 1, 1), F16, 2 },
    { "f16 1x1 f32 bias", 2, 9, 11, 5, 6, 1, 1, P (1, 1, 0, 0, 1, 1, 1), F16, 1 },
    { "f16 4x4 stride 2 groups", 1, 6, 4, 9, 10, 4, 4, P (2, 2, 1, 1, 1, 1, 2), F16, 0 },
    { "size-1 edges", 1, 1, 1, 1, 1, 1, 1, P (1, 1, 0, 0, 1, 1, 1), F32, 1 },
    { "1x1 input 3x3 pad 1", 1, 2, 3, 1, 1, 3, 3, P (1, 1, 1, 1, 1, 1, 1), F32, 0 },
    /* >= 1024 output pixels: conv2d_sg's large tile (64 pixels), partial tiles both ways. */
    { "big 3x3", 1, 12, 20, 33, 35, 3, 3, P (1, 1, 1, 1, 1, 1, 1), F32, 1 },
    { "big f16 stride 2 groups", 2, 8, 18, 45, 47, 3, 3, P (2, 2, 1, 1, 1, 1, 2), F16, 2 },
    { "big 1x1 channel tail", 1, 6, 17, 40, 30, 1, 1, P (1, 1, 0, 0, 1, 1, 1), F32, 0 },
    { "big f16 1x1 vector weights", 1, 8, 12, 32, 33, 1, 1, P (1, 1, 0, 0, 1, 1, 1), F16, 2 },
    { "big 4x4 stride 2 f16 tail", 1, 5, 9, 70, 66, 4, 4, P (2, 2, 1, 1, 1, 1, 1), F16, 1 },
  };

  /* Both implicit-GEMM kernels, whatever the device would pick. */
  const char *const kernels[] = { "tiled", "subgroup" };

  for (guint k = 0; k < G_N_ELEMENTS (kernels); k++)
    {
      g_setenv ("ATELIER_CONV2D_KERNEL", kernels[k], TRUE);
      g_test_message ("kernel %s", kernels[k]);
      for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
        check_conv (&cases[i]);
    }
  g_unsetenv ("ATELIER_CONV2D_KERNEL");
}

/* The input read through a view: x [1, 4, 9, 7] as the transpose of a [1, 4, 7, 9] tensor,
 * with both kernels. */
static void
test_conv2d_strided (void)
{
  const char *const kernels[] = { "tiled", "subgroup" };
  AtDevice *dev = at_test_device ();

  if (dev == NULL)
    return;
  for (guint k = 0; k < G_N_ELEMENTS (kernels); k++)
    {
      g_autoptr (AtGraph) g = at_graph_new (dev);
      const gint64 xs[] = { 1, 4, 7, 9 }, ws[] = { 6, 4, 3, 3 };
      const AtConv2dParams p = { { 1, 1 }, { 1, 1 }, { 1, 1 }, 1 };
      AtTensor *x = at_test_input (g, "x", AT_DTYPE_F32, 4, xs, -1, 1);
      AtTensor *w = at_test_weight (g, "w", AT_DTYPE_F32, 4, ws, -1, 1);

      x = at_transpose (g, x, 2, 3);
      g_setenv ("ATELIER_CONV2D_KERNEL", kernels[k], TRUE);
      at_test_assert_nmse (at_test_run (g, at_conv2d (g, x, w, NULL, &p)), 1e-10, kernels[k]);
    }
  g_unsetenv ("ATELIER_CONV2D_KERNEL");
}

/* f16 weights viewed at an odd element offset (unaligned halves), with both kernels. */
static void
test_conv2d_f16_offset (void)
{
  const char *const kernels[] = { "tiled", "subgroup" };
  AtDevice *dev = at_test_device ();

  if (dev == NULL)
    return;
  for (guint k = 0; k < G_N_ELEMENTS (kernels); k++)
    {
      g_autoptr (AtGraph) g = at_graph_new (dev);
      const gint64 xs[] = { 1, 10, 9, 11 }, big[] = { 12 * 10 * 9 + 1 }, ws[] = { 12, 10, 3, 3 };
      const gint64 wst[] = { 90, 9, 3, 1 };
      const AtConv2dParams p = { { 1, 1 }, { 1, 1 }, { 1, 1 }, 1 };
      AtTensor *x = at_test_input (g, "x", AT_DTYPE_F32, 4, xs, -1, 1);
      AtTensor *wb = at_test_weight (g, "w", AT_DTYPE_F16, 1, big, -1, 1);
      AtTensor *w = at_view (g, wb, 4, ws, wst, 1);

      g_setenv ("ATELIER_CONV2D_KERNEL", kernels[k], TRUE);
      at_test_assert_nmse (at_test_run (g, at_conv2d (g, x, w, NULL, &p)), 1e-10, kernels[k]);
    }
  g_unsetenv ("ATELIER_CONV2D_KERNEL");
}

/* A 1-channel 3x3 image with a Sobel kernel, padding 1, worked out by hand. */
static void
test_conv2d_by_hand (void)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  g_autoptr (GError) error = NULL;
  const gint64 s[] = { 1, 1, 3, 3 };
  const float xv[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
  const float wv[] = { 1, 0, -1, 2, 0, -2, 1, 0, -1 };
  const float expect[] = { -9, -6, 9, -20, -8, 20, -21, -6, 21 };
  const AtConv2dParams p = { { 1, 1 }, { 1, 1 }, { 1, 1 }, 1 };
  float out[9];
  g_autofree float *ref = NULL;
  AtTensor *x, *w, *y;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  x = at_graph_input (g, "x", AT_DTYPE_F32, 4, s);
  w = at_graph_input (g, "w", AT_DTYPE_F32, 4, s);
  y = at_conv2d (g, x, w, NULL, &p);
  at_graph_output (g, y, "y");
  g_assert_true (at_graph_compile (g, &error));
  g_assert_true (at_graph_set_input (g, x, xv, sizeof xv, &error));
  g_assert_true (at_graph_set_input (g, w, wv, sizeof wv, &error));
  g_assert_true (at_graph_run (g, &error));
  g_assert_true (at_graph_get_output (g, y, out, sizeof out, &error));
  g_assert_no_error (error);
  ref = at_graph_run_reference (g, y, &error);
  g_assert_no_error (error);
  for (int i = 0; i < 9; i++)
    {
      g_assert_cmpfloat (out[i], ==, expect[i]);
      g_assert_cmpfloat (ref[i], ==, expect[i]);
    }
}

typedef struct
{
  const char *what;
  gint64 n, cin, cout, h, w, kh, kw;
  AtConvTranspose2dParams p;
  AtDtype wtype;
  int bias;
} ConvTCase;

static void
test_conv_transpose2d (void)
{
  const ConvTCase cases[] = {
    { "3x3 s2 p1 op1", 1, 4, 6, 5, 7, 3, 3, PT (2, 2, 1, 1, 1, 1, 1, 1, 1), F32, 1 },
    { "4x4 s2 p1 (GAN) N=2", 2, 6, 3, 6, 5, 4, 4, PT (2, 2, 1, 1, 0, 0, 1, 1, 1), F32, 0 },
    { "groups 2 f16", 1, 6, 4, 5, 6, 3, 3, PT (2, 2, 1, 1, 1, 1, 1, 1, 2), F16, 2 },
    { "asym stride, dilation", 1, 3, 5, 4, 6, 3, 2, PT (2, 3, 0, 1, 1, 2, 2, 1, 1), F32, 1 },
    { "1x1 s1", 1, 7, 9, 5, 3, 1, 1, PT (1, 1, 0, 0, 0, 0, 1, 1, 1), F32, 0 },
    { "depthwise", 1, 5, 5, 6, 4, 3, 3, PT (2, 2, 1, 1, 1, 1, 1, 1, 5), F32, 1 },
  };
  AtDevice *dev = at_test_device ();

  if (dev == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const ConvTCase *c = &cases[i];
      g_autoptr (AtGraph) g = at_graph_new (dev);
      const gint64 xs[] = { c->n, c->cin, c->h, c->w };
      const gint64 ws[] = { c->cin, c->cout / c->p.groups, c->kh, c->kw };
      AtTensor *x = at_test_input (g, "x", AT_DTYPE_F32, 4, xs, -1, 1);
      AtTensor *w = at_test_weight (g, "w", c->wtype, 4, ws, -1, 1);
      AtTensor *y = at_conv_transpose2d (g, x, w, make_bias (g, c->bias, c->cout), &c->p);
      at_test_assert_nmse (at_test_run (g, y), 1e-10, c->what);
    }
}

static void
check_upsample (const gint64 *xs, gint64 oh, gint64 ow, AtUpsampleMode mode, gboolean align,
                gboolean strided, const char *what)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  AtTensor *x;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  x = at_test_input (g, "x", AT_DTYPE_F32, 4, xs, -1, 1);
  if (strided)
    x = at_transpose (g, x, 2, 3);
  at_test_assert_nmse (at_test_run (g, at_upsample (g, x, oh, ow, mode, align)), 1e-12, what);
}

static void
test_upsample (void)
{
  const gint64 s1[] = { 2, 3, 7, 9 }, s2[] = { 1, 2, 1, 1 }, s3[] = { 1, 4, 33, 17 };

  check_upsample (s1, 14, 18, AT_UPSAMPLE_NEAREST, FALSE, FALSE, "nearest 2x");
  check_upsample (s1, 12, 20, AT_UPSAMPLE_NEAREST, FALSE, FALSE, "nearest non-integer");
  check_upsample (s1, 5, 4, AT_UPSAMPLE_NEAREST, FALSE, FALSE, "nearest down");
  check_upsample (s1, 14, 18, AT_UPSAMPLE_BILINEAR, FALSE, FALSE, "bilinear 2x");
  check_upsample (s1, 12, 20, AT_UPSAMPLE_BILINEAR, FALSE, FALSE, "bilinear non-integer");
  check_upsample (s1, 12, 20, AT_UPSAMPLE_BILINEAR, TRUE, FALSE, "bilinear align_corners");
  check_upsample (s1, 1, 5, AT_UPSAMPLE_BILINEAR, TRUE, FALSE, "bilinear align_corners out 1");
  check_upsample (s1, 4, 6, AT_UPSAMPLE_BILINEAR, FALSE, FALSE, "bilinear down");
  check_upsample (s2, 3, 2, AT_UPSAMPLE_BILINEAR, FALSE, FALSE, "bilinear from 1x1");
  check_upsample (s3, 40, 51, AT_UPSAMPLE_BILINEAR, TRUE, TRUE, "bilinear strided");
  check_upsample (s3, 34, 66, AT_UPSAMPLE_NEAREST, FALSE, TRUE, "nearest strided");
}

static void
check_pad (int ndim, const gint64 *xs, int n_pads, const gint64 *pads, AtPadMode mode, float value,
           gboolean strided, const char *what)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  AtTensor *x;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  x = at_test_input (g, "x", AT_DTYPE_F32, ndim, xs, -1, 1);
  if (strided)
    x = at_transpose (g, x, ndim - 2, ndim - 1);
  at_test_assert_nmse (at_test_run (g, at_pad (g, x, n_pads, pads, mode, value)), 1e-12, what);
}

static void
test_pad (void)
{
  const gint64 s4[] = { 2, 3, 5, 6 }, s3[] = { 3, 4, 5 };
  const gint64 p1[] = { 1, 2, 0, 3 }, p2[] = { 2, 1, 4, 3 }, p3[] = { 1, 0, 2, 1, 1, 2 };
  const gint64 p4[] = { -1, 2, 1, -2 }, p5[] = { 5, 0, 3, 4 };

  check_pad (4, s4, 4, p1, AT_PAD_ZERO, 0.0f, FALSE, "zero asym");
  check_pad (4, s4, 4, p1, AT_PAD_ZERO, 0.5f, FALSE, "constant 0.5");
  check_pad (4, s4, 4, p2, AT_PAD_REFLECT, 0, FALSE, "reflect asym");
  check_pad (4, s4, 4, p2, AT_PAD_REFLECT, 0, TRUE, "reflect strided");
  check_pad (3, s3, 6, p3, AT_PAD_ZERO, -1.0f, FALSE, "constant 3 dims");
  check_pad (3, s3, 6, p3, AT_PAD_REFLECT, 0, FALSE, "reflect 3 dims");
  check_pad (4, s4, 4, p4, AT_PAD_ZERO, 0, FALSE, "negative crops");
  check_pad (4, s4, 4, p5, AT_PAD_REPLICATE, 0, FALSE, "replicate");
  check_pad (4, s4, 2, p2, AT_PAD_REFLECT, 0, FALSE, "reflect last dim only");
}

static void
check_concat (const gint64 *as, const gint64 *bs, int dim, gboolean strided, const char *what)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  AtTensor *a, *b;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  a = at_test_input (g, "a", AT_DTYPE_F32, 4, as, -1, 1);
  b = at_test_input (g, "b", AT_DTYPE_F32, 4, bs, -1, 1);
  if (strided)
    b = at_transpose (g, b, 2, 3);
  at_test_assert_nmse (at_test_run (g, at_concat (g, a, b, dim)), 0, what);
}

static void
test_concat (void)
{
  const gint64 a[] = { 2, 3, 4, 5 };
  const gint64 b0[] = { 3, 3, 4, 5 }, b1[] = { 2, 7, 4, 5 }, b2[] = { 2, 3, 1, 5 };
  const gint64 b3[] = { 2, 3, 4, 9 };
  const gint64 bt[] = { 2, 6, 5, 4 }; /* transposed to [2, 6, 4, 5] */

  check_concat (a, b0, 0, FALSE, "dim 0");
  check_concat (a, b1, 1, FALSE, "dim 1");
  check_concat (a, b2, 2, FALSE, "dim 2");
  check_concat (a, b3, -1, FALSE, "dim -1");
  check_concat (a, bt, 1, TRUE, "dim 1 strided b");
  {
    /* A strided `a` (a channel slice of a bigger tensor) and 2-d tensors. */
    AtDevice *dev = at_test_device ();
    g_autoptr (AtGraph) g = NULL;
    const gint64 big[] = { 2, 8, 3, 3 }, cs[] = { 2, 2, 3, 3 }, m1[] = { 5, 3 }, m2[] = { 5, 4 };
    const gint64 st[] = { 72, 9, 3, 1 };
    AtTensor *x, *v, *c, *p, *q;

    if (dev == NULL)
      return;
    g = at_graph_new (dev);
    x = at_test_input (g, "x", AT_DTYPE_F32, 4, big, -1, 1);
    v = at_view (g, x, 4, cs, st, 3 * 9); /* x[:, 3:5] */
    c = at_test_input (g, "c", AT_DTYPE_F32, 4, cs, -1, 1);
    at_test_assert_nmse (at_test_run (g, at_concat (g, v, c, 1)), 0, "channel slice a");
    g_clear_pointer (&g, at_graph_free);
    g = at_graph_new (dev);
    p = at_test_input (g, "p", AT_DTYPE_F32, 2, m1, -1, 1);
    q = at_test_input (g, "q", AT_DTYPE_F32, 2, m2, -1, 1);
    at_test_assert_nmse (at_test_run (g, at_concat (g, p, q, 1)), 0, "2-d");
  }
}

static void
test_bad_shapes (void)
{
  AtDevice *dev = at_test_device ();
  const gint64 xs[] = { 1, 4, 5, 5 }, ys[] = { 1, 4, 6, 5 }, pads[] = { 1, 5 };
  const gint64 w3[] = { 6, 3, 3, 3 }, w2[] = { 6, 2, 3, 3 }, w7[] = { 6, 4, 7, 7 };
  const gint64 wt[] = { 3, 2, 3, 3 }, w4t[] = { 4, 2, 3, 3 };
  const AtConv2dParams p1 = P (1, 1, 0, 0, 1, 1, 1), p3 = P (1, 1, 0, 0, 1, 1, 3);
  const AtConvTranspose2dParams pt = { { 2, 2 }, { 1, 1 }, { 1, 1 }, { 1, 1 }, 1 };
  const AtConvTranspose2dParams pt_op = { { 2, 2 }, { 1, 1 }, { 2, 2 }, { 1, 1 }, 1 };
  const AtConvTranspose2dParams pt_big = { { 1, 1 }, { 4, 4 }, { 0, 0 }, { 1, 1 }, 1 };

  if (dev == NULL)
    return;
#define CASE(expr, fragment)                                                                       \
  {                                                                                                \
    g_autoptr (AtGraph) g = at_graph_new (dev);                                                    \
    AtTensor *x = at_graph_input (g, "x", AT_DTYPE_F32, 4, xs);                                    \
    AtTensor *y = at_graph_input (g, "y", AT_DTYPE_F32, 4, ys);                                    \
    (void) x;                                                                                      \
    (void) y;                                                                                      \
    at_test_expect_error (g, (expr), fragment);                                                            \
  }
#define W(shape) at_graph_input (g, "w", AT_DTYPE_F32, 4, shape)
  CASE (at_conv2d (g, x, W (w3), NULL, &p1), "input channels do not match");
  CASE (at_conv2d (g, x, W (w2), NULL, &p3), "does not divide");
  CASE (at_conv2d (g, x, W (w7), NULL, &p1), "output size <= 0");
  CASE (at_conv2d (g, x, W (w2), NULL, &p1), "input channels do not match");
  CASE (at_conv_transpose2d (g, x, W (wt), NULL, &pt), "input channels do not match");
  CASE (at_conv_transpose2d (g, x, W (w4t), NULL, &pt_op), "output_padding");
  CASE (at_conv_transpose2d (g, x, W (w4t), NULL, &pt_big), "output size <= 0");
  CASE (at_pad (g, x, 2, pads, AT_PAD_REFLECT, 0), "must be smaller");
  CASE (at_upsample (g, x, 0, 4, AT_UPSAMPLE_NEAREST, FALSE), "must be positive");
  CASE (at_concat (g, x, y, 1), "shapes differ");
  CASE (at_concat (g, x, y, 4), "bad dimension");
#undef W
#undef CASE
  {
    /* Failures propagate: a NULL source gives NULL without a crash. */
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *x = at_graph_input (g, "x", AT_DTYPE_F32, 4, xs);
    AtTensor *bad = at_concat (g, x, at_graph_input (g, "y", AT_DTYPE_F32, 4, ys), 3);
    g_assert_null (at_conv2d (g, bad, at_graph_input (g, "w", AT_DTYPE_F32, 4, w3), NULL, &p1));
    g_assert_null (at_upsample (g, bad, 4, 4, AT_UPSAMPLE_NEAREST, FALSE));
    g_assert_null (at_pad (g, bad, 2, pads, AT_PAD_ZERO, 0));
    g_assert_null (at_concat (g, bad, x, 0));
    at_test_expect_error (g, NULL, "shapes differ");
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/conv/conv2d", test_conv2d);
  g_test_add_func ("/engine/conv/conv2d-strided", test_conv2d_strided);
  g_test_add_func ("/engine/conv/conv2d-f16-offset", test_conv2d_f16_offset);
  g_test_add_func ("/engine/conv/conv2d-by-hand", test_conv2d_by_hand);
  g_test_add_func ("/engine/conv/conv-transpose2d", test_conv_transpose2d);
  g_test_add_func ("/engine/conv/upsample", test_upsample);
  g_test_add_func ("/engine/conv/pad", test_pad);
  g_test_add_func ("/engine/conv/concat", test_concat);
  g_test_add_func ("/engine/conv/bad-shapes", test_bad_shapes);
  return g_test_run ();
}
