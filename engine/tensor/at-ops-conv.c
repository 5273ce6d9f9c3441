/* at-ops-conv.c: convolution and spatial ops: conv2d (implicit GEMM), conv_transpose2d (gather),
 * upsample (nearest, bilinear), pad (constant, reflect, replicate) and concat.
 * Shaders: shaders/conv2d.comp, conv2d_sg.comp, conv_transpose2d.comp, upsample.comp, pad.comp,
 * concat.comp. Each C reference follows torch.nn.functional's definition with plain loops; all
 * were checked against torch 2.11 (NMSE <= 1e-13, nearest and pad exact).
 *
 * Traps: torch computes the interpolation scales in float (in / out, or (in - 1) / (out - 1)
 * with align_corners), and so do the reference and the shader, from the same float values kept
 * in the params; a double scale moves `floor` at exact multiples. */
#include "at-ops-conv.h"

#include <math.h>

#include "at-error.h"

#define WG 256
#define CONV_WG 64 /* conv2d invocations per workgroup (no barriers: any size works) */
#define CONV_TP 4  /* conv2d pixels per invocation */
#define CONV_TN 8  /* conv2d output channels per invocation, at most */
/* conv2d_sg's tile: 64 pixels (from CONV_SG_BIG output pixels on) x 4 channels per lane beat
 * 32 x 8, 32 x 4, 16 x 8, 64 x 8, 96 x 4, 128 x 4 and 128 x 2 on lavapipe (3x3, 320 channels). */
#define CONV_SG_TM 64
#define CONV_SG_BIG 1024
#define CONV_SG_TN 4
#define UPSAMPLE_WG 64

typedef struct
{
  int stride[2], padding[2], dilation[2], output_padding[2], groups;
} ConvParams;

typedef struct
{
  guint32 n_pix, ho, wo, h, w;
  guint32 cin_g, cout_g, cout, n_cblk, kh, kw;
  gint32 sh, sw, ph, pw, dh, dw;
  guint32 sxn, sxc, sxh, sxw;
  guint32 ox, ow, ob, oy;
} Conv2dPush;
G_STATIC_ASSERT (sizeof (Conv2dPush) == 100);

typedef struct
{
  guint32 ne[4];
  guint32 h, w, cin_g, cout_g, kh, kw;
  gint32 sh, sw, ph, pw, dh, dw;
  guint32 sx[4];
  guint32 ox, ow, ob, oy, n;
} ConvTransposePush;
G_STATIC_ASSERT (sizeof (ConvTransposePush) == 100);

typedef struct
{
  guint32 mode, align_corners;
  float scale_h, scale_w;
} UpsampleParams;

typedef struct
{
  guint32 ne[4], sx[4];
  guint32 h, w, ox, oy, n;
  float scale_h, scale_w;
} UpsamplePush;
G_STATIC_ASSERT (sizeof (UpsamplePush) == 60);

typedef struct
{
  guint32 mode;
  float value;
  gint64 before[4]; /* per 4-d dimension */
} PadParams;

typedef struct
{
  guint32 ne[4], nx[4];
  gint32 before[4];
  guint32 sx[4];
  guint32 ox, oy, n;
  float value;
} PadPush;
G_STATIC_ASSERT (sizeof (PadPush) == 80);

typedef struct
{
  int dim; /* 4-d */
} ConcatParams;

typedef struct
{
  guint32 ne[4], sa[4], sb[4];
  guint32 dim, na, oa, ob, oy, n;
} ConcatPush;
G_STATIC_ASSERT (sizeof (ConcatPush) == 72);

static gboolean
fits_u32 (const AtTensor *t)
{
  return at_tensor_numel (t) < G_MAXUINT32;
}

static AtTensor *
fail_tensor (AtGraph *g, const char *op, const char *what, const AtTensor *t)
{
  g_autofree char *d = at_tensor_describe (t);
  return at_graph_fail (g, op, "%s: %s", what, d);
}

/* Bias mode for the shaders' BIAS constant: 0 none, 1 f32, 2 f16. */
static guint32
bias_mode (const AtTensor *bias)
{
  if (bias == NULL)
    return 0;
  return bias->dtype == AT_DTYPE_F16 ? 2 : 1;
}

static void
fill_strides4 (const AtTensor *t, guint32 out[4])
{
  gint64 shape[4], stride[4];

  at_tensor_shape4 (t, shape, stride);
  for (int i = 0; i < 4; i++)
    out[i] = (guint32) stride[i];
}

/* Checks shared by conv2d and conv_transpose2d: x 4-d f32, w 4-d f32/f16, bias 1-d of `cout`. */
static gboolean
check_conv_tensors (AtGraph *g, const char *op, AtTensor *x, AtTensor *w, AtTensor *bias)
{
  if (x->ndim != 4 || x->dtype != AT_DTYPE_F32)
    {
      fail_tensor (g, op, "x must be f32 [N, C, H, W]", x);
      return FALSE;
    }
  if (w->ndim != 4 || (w->dtype != AT_DTYPE_F32 && w->dtype != AT_DTYPE_F16))
    {
      fail_tensor (g, op, "w must be f32 or f16 and 4-d", w);
      return FALSE;
    }
  if (!at_tensor_is_contiguous (w))
    {
      fail_tensor (g, op, "w must be contiguous", w);
      return FALSE;
    }
  if (bias != NULL
      && (bias->ndim != 1 || (bias->dtype != AT_DTYPE_F32 && bias->dtype != AT_DTYPE_F16)
          || !at_tensor_is_contiguous (bias)))
    {
      fail_tensor (g, op, "bias must be a contiguous f32 or f16 [Cout]", bias);
      return FALSE;
    }
  if (!fits_u32 (x) || !fits_u32 (w))
    {
      at_graph_fail (g, op, "more than 2^32 elements");
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_conv_params (AtGraph *g, const char *op, const ConvParams *p)
{
  for (int i = 0; i < 2; i++)
    if (p->stride[i] < 1 || p->dilation[i] < 1 || p->padding[i] < 0 || p->output_padding[i] < 0)
      {
        at_graph_fail (g, op, "stride and dilation must be >= 1, padding and output_padding >= 0 "
                       "(got stride %d, dilation %d, padding %d, output_padding %d)", p->stride[i],
                       p->dilation[i], p->padding[i], p->output_padding[i]);
        return FALSE;
      }
  if (p->groups < 1)
    {
      at_graph_fail (g, op, "groups must be >= 1 (got %d)", p->groups);
      return FALSE;
    }
  return TRUE;
}

/* ---- conv2d ---- */

static void
ref_conv2d (const AtTensor *dst, const float *const *src, float *out)
{
  const ConvParams *p = (const ConvParams *) dst->params;
  const AtTensor *xt = dst->src[0], *wt = dst->src[1];
  const float *x = src[0], *w = src[1], *bias = src[2];
  gint64 nb = xt->shape[0], cin = xt->shape[1], h = xt->shape[2], wd = xt->shape[3];
  gint64 cout = wt->shape[0], cin_g = wt->shape[1], kh = wt->shape[2], kw = wt->shape[3];
  gint64 ho = dst->shape[2], wo = dst->shape[3], cout_g = cout / p->groups;

  for (gint64 n = 0; n < nb; n++)
    for (gint64 co = 0; co < cout; co++)
      for (gint64 oy = 0; oy < ho; oy++)
        for (gint64 ox = 0; ox < wo; ox++)
          {
            gint64 grp = co / cout_g;
            float acc = 0;
            for (gint64 ci = 0; ci < cin_g; ci++)
              for (gint64 ky = 0; ky < kh; ky++)
                for (gint64 kx = 0; kx < kw; kx++)
                  {
                    gint64 iy = oy * p->stride[0] - p->padding[0] + ky * p->dilation[0];
                    gint64 ix = ox * p->stride[1] - p->padding[1] + kx * p->dilation[1];
                    if (iy < 0 || iy >= h || ix < 0 || ix >= wd)
                      continue;
                    acc += x[((n * cin + grp * cin_g + ci) * h + iy) * wd + ix]
                           * w[((co * cin_g + ci) * kh + ky) * kw + kx];
                  }
            out[((n * cout + co) * ho + oy) * wo + ox] = acc + (bias != NULL ? bias[co] : 0.0f);
          }
}

/* Which implicit GEMM: the subgroup kernel (conv2d_sg.comp, built like matmul_cpu.comp) on CPU
 * devices, where barriers and per-lane loads are what costs; the register-tiled one
 * (conv2d.comp) elsewhere and for few channels per group (depthwise), where the subgroup
 * kernel's lanes would idle. ATELIER_CONV2D_KERNEL=tiled|subgroup overrides the choice (the
 * tests run both). */
static gboolean
use_subgroup_kernel (const AtDeviceInfo *info, guint32 cout_g)
{
  const char *force = g_getenv ("ATELIER_CONV2D_KERNEL");
  gboolean can = (info->subgroup_ops & VK_SUBGROUP_FEATURE_SHUFFLE_BIT) != 0
                 && info->subgroup_size >= 4 && info->subgroup_size <= 128;

  if (g_strcmp0 (force, "tiled") == 0)
    return FALSE;
  if (g_strcmp0 (force, "subgroup") == 0)
    return can;
  return can && info->type == VK_PHYSICAL_DEVICE_TYPE_CPU && cout_g >= info->subgroup_size;
}

static gboolean
encode_conv2d (AtEncoder *enc, AtTensor *dst, GError **error)
{
  const ConvParams *p = (const ConvParams *) dst->params;
  const AtDeviceInfo *info = at_encoder_get_info (enc);
  AtTensor *x = dst->src[0], *w = dst->src[1], *bias = dst->src[2];
  gboolean f16 = w->dtype == AT_DTYPE_F16;
  guint32 kh = (guint32) w->shape[2], kw = (guint32) w->shape[3];
  guint32 cout_g = (guint32) (dst->shape[1] / p->groups);
  guint32 n_pix = (guint32) (dst->shape[0] * dst->shape[2] * dst->shape[3]);
  /* Fixed kernel sizes unroll the (ky, kx) loops; others read them from the push constants. */
  gboolean fixed = kh == kw && (kh == 1 || kh == 3);
  gboolean sg = use_subgroup_kernel (info, cout_g);
  AtPipelineDesc desc = { NULL, 8, { 0 }, 4, sizeof (Conv2dPush) };
  Conv2dPush push = { 0 };
  AtBinding b[4];
  guint32 gx, gy, pix_per_group, ch_per_group;
  guint32 sx[4];

  if (sg)
    {
      /* One subgroup: TM pixels x subgroup-size * TN channels; small images get a small tile,
       * which LLVM also compiles several times faster. */
      guint32 sgs = info->subgroup_size, tn = MIN (CONV_SG_TN, (cout_g + sgs - 1) / sgs);
      guint32 tm = n_pix >= CONV_SG_BIG ? CONV_SG_TM : sgs;
      desc.shader = f16 ? "conv2d_sg_f16" : "conv2d_sg";
      desc.n_spec = 9;
      desc.spec[0] = sgs;
      desc.spec[3] = tm;
      desc.spec[4] = tn;
      pix_per_group = tm;
      ch_per_group = tn * sgs;
      /* Only 1x1 is fixed: unrolled 3x3 taps compiled for seconds and ran no faster. */
      fixed = kh == 1 && kw == 1;
    }
  else
    {
      guint32 tn = MIN (CONV_TN, cout_g);
      desc.shader = f16 ? "conv2d_f16" : "conv2d";
      desc.spec[0] = CONV_WG;
      desc.spec[3] = CONV_TP;
      desc.spec[4] = tn;
      pix_per_group = CONV_WG * CONV_TP;
      ch_per_group = tn;
    }
  desc.spec[1] = desc.spec[2] = 1;
  desc.spec[5] = fixed ? kh : 0;
  desc.spec[6] = fixed ? kw : 0;
  desc.spec[7] = bias_mode (bias);

  push.n_pix = n_pix;
  push.ho = (guint32) dst->shape[2];
  push.wo = (guint32) dst->shape[3];
  push.h = (guint32) x->shape[2];
  push.w = (guint32) x->shape[3];
  push.cin_g = (guint32) w->shape[1];
  push.cout_g = cout_g;
  push.cout = (guint32) dst->shape[1];
  push.n_cblk = (cout_g + ch_per_group - 1) / ch_per_group;
  push.kh = kh;
  push.kw = kw;
  push.sh = p->stride[0];
  push.sw = p->stride[1];
  push.ph = p->padding[0];
  push.pw = p->padding[1];
  push.dh = p->dilation[0];
  push.dw = p->dilation[1];
  fill_strides4 (x, sx);
  push.sxn = sx[0];
  push.sxc = sx[1];
  push.sxh = sx[2];
  push.sxw = sx[3];
  b[0] = at_encoder_bind (enc, x, FALSE, &push.ox, 4);
  b[1] = at_encoder_bind (enc, w, FALSE, &push.ow, f16 ? 2 : 4);
  /* conv2d_sg: a 1x1 kernel's rows are read with vector loads where each starts at a multiple
   * of 4 elements. */
  if (sg)
    desc.spec[8] = kh * kw == 1 && push.cin_g % 4 == 0 && push.ow % 4 == 0;
  /* No bias: the weights stand in for the unused binding. */
  if (bias != NULL)
    b[2] = at_encoder_bind (enc, bias, FALSE, &push.ob, bias->dtype == AT_DTYPE_F16 ? 2 : 4);
  else
    b[2] = at_encoder_bind (enc, w, FALSE, NULL, 4);
  b[3] = at_encoder_bind (enc, dst, TRUE, &push.oy, 4);
  at_encoder_grid (enc, (push.n_pix + pix_per_group - 1) / pix_per_group, &gx, &gy);
  return at_encoder_dispatch (enc, &desc, "conv2d", &push, b, gx, gy, push.n_cblk * p->groups,
                              error);
}

static const AtOp conv2d_op = { "conv2d", encode_conv2d, ref_conv2d };

static AtTensor *
conv_node (AtGraph *g, const AtOp *op, AtTensor *x, AtTensor *w, AtTensor *bias,
           const ConvParams *cp, const gint64 shape[4])
{
  AtTensor *srcs[3] = { x, w, bias };
  AtTensor *t;

  t = at_graph_new_node (g, op, AT_DTYPE_F32, 4, shape, srcs, bias != NULL ? 3 : 2, cp, sizeof *cp);
  if (t != NULL && !fits_u32 (t))
    return at_graph_fail (g, op->name, "more than 2^32 elements in the output");
  return t;
}

AtTensor *
at_conv2d (AtGraph *g, AtTensor *x, AtTensor *w, AtTensor *bias, const AtConv2dParams *p)
{
  const AtConv2dParams def = AT_CONV2D_PARAMS_DEFAULT;
  ConvParams cp = { 0 };
  gint64 shape[4];
  AtTensor *srcs[2] = { x, w };

  if (x == NULL || w == NULL)
    return at_graph_new_node (g, &conv2d_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, srcs, 2, NULL, 0);
  if (p == NULL)
    p = &def;
  for (int i = 0; i < 2; i++)
    {
      cp.stride[i] = p->stride[i];
      cp.padding[i] = p->padding[i];
      cp.dilation[i] = p->dilation[i];
    }
  cp.groups = p->groups;
  if (!check_conv_tensors (g, "conv2d", x, w, bias) || !check_conv_params (g, "conv2d", &cp))
    return NULL;
  if (x->shape[1] % cp.groups != 0 || w->shape[0] % cp.groups != 0)
    {
      g_autofree char *dx = at_tensor_describe (x), *dw = at_tensor_describe (w);
      return at_graph_fail (g, "conv2d", "groups %d does not divide the channels of %s and %s",
                            cp.groups, dx, dw);
    }
  if (w->shape[1] * cp.groups != x->shape[1])
    {
      g_autofree char *dx = at_tensor_describe (x), *dw = at_tensor_describe (w);
      return at_graph_fail (g, "conv2d", "input channels do not match: %s has %" G_GINT64_FORMAT
                            ", %s expects %" G_GINT64_FORMAT " x %d groups", dx, x->shape[1], dw,
                            w->shape[1], cp.groups);
    }
  if (bias != NULL && bias->shape[0] != w->shape[0])
    return fail_tensor (g, "conv2d", "bias must have Cout elements", bias);
  shape[0] = x->shape[0];
  shape[1] = w->shape[0];
  for (int i = 0; i < 2; i++)
    {
      gint64 span = x->shape[2 + i] + 2 * cp.padding[i]
                    - cp.dilation[i] * (w->shape[2 + i] - 1) - 1;
      shape[2 + i] = span < 0 ? 0 : span / cp.stride[i] + 1;
      if (shape[2 + i] <= 0)
        {
          g_autofree char *dx = at_tensor_describe (x), *dw = at_tensor_describe (w);
          return at_graph_fail (g, "conv2d", "output size <= 0 for %s with %s (padding %d, "
                                "dilation %d)", dx, dw, cp.padding[i], cp.dilation[i]);
        }
    }
  if ((w->shape[0] / cp.groups + CONV_TN - 1) / CONV_TN * cp.groups > 65535)
    return fail_tensor (g, "conv2d", "too many output channel blocks", w);
  return conv_node (g, &conv2d_op, x, w, bias, &cp, shape);
}

/* ---- conv_transpose2d ---- */

static void
ref_conv_transpose2d (const AtTensor *dst, const float *const *src, float *out)
{
  const ConvParams *p = (const ConvParams *) dst->params;
  const AtTensor *xt = dst->src[0], *wt = dst->src[1];
  const float *x = src[0], *w = src[1], *bias = src[2];
  gint64 nb = xt->shape[0], cin = xt->shape[1], h = xt->shape[2], wd = xt->shape[3];
  gint64 cout_g = wt->shape[1], kh = wt->shape[2], kw = wt->shape[3];
  gint64 cout = dst->shape[1], ho = dst->shape[2], wo = dst->shape[3], cin_g = cin / p->groups;

  /* Scatter form (the definition): each input pixel adds w * x to the outputs it maps to. */
  for (gint64 i = 0; i < at_tensor_numel (dst); i++)
    out[i] = 0;
  for (gint64 n = 0; n < nb; n++)
    for (gint64 ci = 0; ci < cin; ci++)
      for (gint64 iy = 0; iy < h; iy++)
        for (gint64 ix = 0; ix < wd; ix++)
          for (gint64 c = 0; c < cout_g; c++)
            for (gint64 ky = 0; ky < kh; ky++)
              for (gint64 kx = 0; kx < kw; kx++)
                {
                  gint64 co = ci / cin_g * cout_g + c;
                  gint64 oy = iy * p->stride[0] - p->padding[0] + ky * p->dilation[0];
                  gint64 ox = ix * p->stride[1] - p->padding[1] + kx * p->dilation[1];
                  if (oy < 0 || oy >= ho || ox < 0 || ox >= wo)
                    continue;
                  out[((n * cout + co) * ho + oy) * wo + ox]
                    += x[((n * cin + ci) * h + iy) * wd + ix]
                       * w[((ci * cout_g + c) * kh + ky) * kw + kx];
                }
  if (bias != NULL)
    for (gint64 n = 0; n < nb; n++)
      for (gint64 co = 0; co < cout; co++)
        for (gint64 i = 0; i < ho * wo; i++)
          out[(n * cout + co) * ho * wo + i] += bias[co];
}

static gboolean
encode_conv_transpose2d (AtEncoder *enc, AtTensor *dst, GError **error)
{
  const ConvParams *p = (const ConvParams *) dst->params;
  AtTensor *x = dst->src[0], *w = dst->src[1], *bias = dst->src[2];
  gboolean f16 = w->dtype == AT_DTYPE_F16;
  AtPipelineDesc desc = { f16 ? "conv_transpose2d_f16" : "conv_transpose2d", 4,
                          { WG, 1, 1, bias_mode (bias) }, 4, sizeof (ConvTransposePush) };
  ConvTransposePush push = { 0 };
  AtBinding b[4];
  guint32 gx, gy;

  for (int i = 0; i < 4; i++)
    push.ne[i] = (guint32) dst->shape[i];
  fill_strides4 (x, push.sx);
  push.h = (guint32) x->shape[2];
  push.w = (guint32) x->shape[3];
  push.cin_g = (guint32) (x->shape[1] / p->groups);
  push.cout_g = (guint32) w->shape[1];
  push.kh = (guint32) w->shape[2];
  push.kw = (guint32) w->shape[3];
  push.sh = p->stride[0];
  push.sw = p->stride[1];
  push.ph = p->padding[0];
  push.pw = p->padding[1];
  push.dh = p->dilation[0];
  push.dw = p->dilation[1];
  push.n = (guint32) at_tensor_numel (dst);
  b[0] = at_encoder_bind (enc, x, FALSE, &push.ox, 4);
  b[1] = at_encoder_bind (enc, w, FALSE, &push.ow, f16 ? 2 : 4);
  if (bias != NULL)
    b[2] = at_encoder_bind (enc, bias, FALSE, &push.ob, bias->dtype == AT_DTYPE_F16 ? 2 : 4);
  else
    b[2] = at_encoder_bind (enc, w, FALSE, NULL, 4);
  b[3] = at_encoder_bind (enc, dst, TRUE, &push.oy, 4);
  at_encoder_grid (enc, (push.n + WG - 1) / WG, &gx, &gy);
  return at_encoder_dispatch (enc, &desc, "conv_transpose2d", &push, b, gx, gy, 1, error);
}

static const AtOp conv_transpose2d_op = { "conv_transpose2d", encode_conv_transpose2d,
                                          ref_conv_transpose2d };

AtTensor *
at_conv_transpose2d (AtGraph *g, AtTensor *x, AtTensor *w, AtTensor *bias,
                     const AtConvTranspose2dParams *p)
{
  ConvParams cp = { 0 };
  gint64 shape[4];
  AtTensor *srcs[2] = { x, w };

  if (x == NULL || w == NULL)
    return at_graph_new_node (g, &conv_transpose2d_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, srcs, 2,
                              NULL, 0);
  for (int i = 0; i < 2; i++)
    {
      cp.stride[i] = p->stride[i];
      cp.padding[i] = p->padding[i];
      cp.dilation[i] = p->dilation[i];
      cp.output_padding[i] = p->output_padding[i];
    }
  cp.groups = p->groups;
  if (!check_conv_tensors (g, "conv_transpose2d", x, w, bias)
      || !check_conv_params (g, "conv_transpose2d", &cp))
    return NULL;
  if (x->shape[1] % cp.groups != 0)
    {
      g_autofree char *dx = at_tensor_describe (x);
      return at_graph_fail (g, "conv_transpose2d", "groups %d does not divide the channels of %s",
                            cp.groups, dx);
    }
  if (w->shape[0] != x->shape[1])
    {
      g_autofree char *dx = at_tensor_describe (x), *dw = at_tensor_describe (w);
      return at_graph_fail (g, "conv_transpose2d", "input channels do not match: %s and %s (w is "
                            "[Cin, Cout/groups, kh, kw])", dx, dw);
    }
  if (bias != NULL && bias->shape[0] != w->shape[1] * cp.groups)
    return fail_tensor (g, "conv_transpose2d", "bias must have Cout elements", bias);
  shape[0] = x->shape[0];
  shape[1] = w->shape[1] * cp.groups;
  for (int i = 0; i < 2; i++)
    {
      if (cp.output_padding[i] >= cp.stride[i] && cp.output_padding[i] >= cp.dilation[i])
        return at_graph_fail (g, "conv_transpose2d", "output_padding %d must be smaller than the "
                              "stride %d or the dilation %d", cp.output_padding[i], cp.stride[i],
                              cp.dilation[i]);
      shape[2 + i] = (x->shape[2 + i] - 1) * cp.stride[i] - 2 * cp.padding[i]
                     + cp.dilation[i] * (w->shape[2 + i] - 1) + cp.output_padding[i] + 1;
      if (shape[2 + i] <= 0)
        {
          g_autofree char *dx = at_tensor_describe (x), *dw = at_tensor_describe (w);
          return at_graph_fail (g, "conv_transpose2d", "output size <= 0 for %s with %s "
                                "(padding %d)", dx, dw, cp.padding[i]);
        }
    }
  return conv_node (g, &conv_transpose2d_op, x, w, bias, &cp, shape);
}

/* ---- upsample ---- */

static float
bilinear_src (float scale, gint64 dst, gboolean align_corners)
{
  float s;

  if (align_corners)
    return scale * (float) dst;
  s = scale * ((float) dst + 0.5f) - 0.5f;
  return s < 0 ? 0 : s;
}

static void
ref_upsample (const AtTensor *dst, const float *const *src, float *out)
{
  const UpsampleParams *p = (const UpsampleParams *) dst->params;
  gint64 planes = dst->shape[0] * dst->shape[1], oh = dst->shape[2], ow = dst->shape[3];
  gint64 h = dst->src[0]->shape[2], w = dst->src[0]->shape[3];

  for (gint64 pl = 0; pl < planes; pl++)
    {
      const float *x = src[0] + pl * h * w;
      for (gint64 oy = 0; oy < oh; oy++)
        for (gint64 ox = 0; ox < ow; ox++)
          {
            float r;
            if (p->mode == AT_UPSAMPLE_NEAREST)
              {
                gint64 sy = MIN ((gint64) floorf ((float) oy * p->scale_h), h - 1);
                gint64 sx = MIN ((gint64) floorf ((float) ox * p->scale_w), w - 1);
                r = x[sy * w + sx];
              }
            else
              {
                float fy = bilinear_src (p->scale_h, oy, p->align_corners);
                float fx = bilinear_src (p->scale_w, ox, p->align_corners);
                gint64 y0 = (gint64) fy, x0 = (gint64) fx;
                gint64 y1 = y0 < h - 1 ? y0 + 1 : y0, x1 = x0 < w - 1 ? x0 + 1 : x0;
                float ly = fy - (float) y0, lx = fx - (float) x0, hy = 1.0f - ly, hx = 1.0f - lx;
                r = hy * (hx * x[y0 * w + x0] + lx * x[y0 * w + x1])
                    + ly * (hx * x[y1 * w + x0] + lx * x[y1 * w + x1]);
              }
            out[(pl * oh + oy) * ow + ox] = r;
          }
    }
}

static gboolean
encode_upsample (AtEncoder *enc, AtTensor *dst, GError **error)
{
  const UpsampleParams *p = (const UpsampleParams *) dst->params;
  AtTensor *x = dst->src[0];
  const AtDeviceInfo *info = at_encoder_get_info (enc);
  AtPipelineDesc desc = { "upsample", 5, { UPSAMPLE_WG, 1, 1, p->mode, p->align_corners }, 2,
                          sizeof (UpsamplePush) };
  UpsamplePush push = { 0 };
  AtBinding b[2];
  guint32 gx, gy, gz;

  for (int i = 0; i < 4; i++)
    push.ne[i] = (guint32) dst->shape[i];
  fill_strides4 (x, push.sx);
  push.h = (guint32) x->shape[2];
  push.w = (guint32) x->shape[3];
  push.n = (guint32) at_tensor_numel (dst);
  push.scale_h = p->scale_h;
  push.scale_w = p->scale_w;
  b[0] = at_encoder_bind (enc, x, FALSE, &push.ox, 4);
  b[1] = at_encoder_bind (enc, dst, TRUE, &push.oy, 4);
  /* Columns x rows x planes; the shader loops over rows and planes beyond the grid. A CPU device
   * pays ~0.5 us per workgroup (lavapipe), so there each invocation walks all the planes. */
  gx = (push.ne[3] + UPSAMPLE_WG - 1) / UPSAMPLE_WG;
  gy = MIN (push.ne[2], info->max_workgroup_count[1]);
  gz = (guint32) MIN (dst->shape[0] * dst->shape[1], info->max_workgroup_count[2]);
  if (info->type == VK_PHYSICAL_DEVICE_TYPE_CPU)
    gz = 1;
  return at_encoder_dispatch (enc, &desc, "upsample", &push, b, gx, gy, gz, error);
}

static const AtOp upsample_op = { "upsample", encode_upsample, ref_upsample };

static float
upsample_scale (gint64 in, gint64 out, AtUpsampleMode mode, gboolean align_corners)
{
  if (mode == AT_UPSAMPLE_BILINEAR && align_corners)
    return out > 1 ? (float) (in - 1) / (float) (out - 1) : 0.0f;
  return (float) in / (float) out;
}

AtTensor *
at_upsample (AtGraph *g, AtTensor *x, gint64 out_h, gint64 out_w, AtUpsampleMode mode,
             gboolean align_corners)
{
  UpsampleParams p = { mode, align_corners ? 1 : 0 };
  gint64 shape[4];
  AtTensor *t;

  if (x == NULL)
    return at_graph_new_node (g, &upsample_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, &x, 1, NULL, 0);
  if (x->ndim != 4 || x->dtype != AT_DTYPE_F32)
    return fail_tensor (g, "upsample", "x must be f32 [N, C, H, W]", x);
  if (mode != AT_UPSAMPLE_NEAREST && mode != AT_UPSAMPLE_BILINEAR)
    return at_graph_fail (g, "upsample", "unknown mode %d", (int) mode);
  if (out_h <= 0 || out_w <= 0 || x->shape[2] <= 0 || x->shape[3] <= 0)
    return at_graph_fail (g, "upsample", "output size %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                          " must be positive", out_h, out_w);
  p.scale_h = upsample_scale (x->shape[2], out_h, mode, align_corners);
  p.scale_w = upsample_scale (x->shape[3], out_w, mode, align_corners);
  shape[0] = x->shape[0];
  shape[1] = x->shape[1];
  shape[2] = out_h;
  shape[3] = out_w;
  t = at_graph_new_node (g, &upsample_op, AT_DTYPE_F32, 4, shape, &x, 1, &p, sizeof p);
  if (t != NULL && (!fits_u32 (t) || !fits_u32 (x)))
    return at_graph_fail (g, "upsample", "more than 2^32 elements");
  return t;
}

/* ---- pad ---- */

/* Source index of output index `o` along a dimension of `n`, or -1 for the constant. */
static gint64
pad_src (guint32 mode, gint64 o, gint64 before, gint64 n)
{
  gint64 s = o - before;

  if (mode == AT_PAD_ZERO)
    return s >= 0 && s < n ? s : -1;
  if (mode == AT_PAD_REFLECT)
    {
      if (s < 0)
        s = -s;
      if (s >= n)
        s = 2 * (n - 1) - s;
      return s;
    }
  return CLAMP (s, 0, n - 1);
}

static void
ref_pad (const AtTensor *dst, const float *const *src, float *out)
{
  const PadParams *p = (const PadParams *) dst->params;
  gint64 ne[4], nx[4], st[4], gi = 0;

  at_tensor_shape4 (dst, ne, st);
  at_tensor_shape4 (dst->src[0], nx, st);
  for (gint64 a = 0; a < ne[0]; a++)
    for (gint64 b = 0; b < ne[1]; b++)
      for (gint64 c = 0; c < ne[2]; c++)
        for (gint64 d = 0; d < ne[3]; d++)
          {
            gint64 s0 = pad_src (p->mode, a, p->before[0], nx[0]);
            gint64 s1 = pad_src (p->mode, b, p->before[1], nx[1]);
            gint64 s2 = pad_src (p->mode, c, p->before[2], nx[2]);
            gint64 s3 = pad_src (p->mode, d, p->before[3], nx[3]);
            if (s0 < 0 || s1 < 0 || s2 < 0 || s3 < 0)
              out[gi++] = p->value;
            else
              out[gi++] = src[0][((s0 * nx[1] + s1) * nx[2] + s2) * nx[3] + s3];
          }
}

static gboolean
encode_pad (AtEncoder *enc, AtTensor *dst, GError **error)
{
  const PadParams *p = (const PadParams *) dst->params;
  AtTensor *x = dst->src[0];
  AtPipelineDesc desc = { "pad", 4, { WG, 1, 1, p->mode }, 2, sizeof (PadPush) };
  PadPush push = { 0 };
  gint64 ne[4], nx[4], st[4];
  AtBinding b[2];
  guint32 gx, gy;

  at_tensor_shape4 (dst, ne, st);
  at_tensor_shape4 (x, nx, st);
  for (int i = 0; i < 4; i++)
    {
      push.ne[i] = (guint32) ne[i];
      push.nx[i] = (guint32) nx[i];
      push.before[i] = (gint32) p->before[i];
    }
  fill_strides4 (x, push.sx);
  push.n = (guint32) at_tensor_numel (dst);
  push.value = p->value;
  b[0] = at_encoder_bind (enc, x, FALSE, &push.ox, 4);
  b[1] = at_encoder_bind (enc, dst, TRUE, &push.oy, 4);
  at_encoder_grid (enc, (push.n + WG - 1) / WG, &gx, &gy);
  return at_encoder_dispatch (enc, &desc, "pad", &push, b, gx, gy, 1, error);
}

static const AtOp pad_op = { "pad", encode_pad, ref_pad };

AtTensor *
at_pad (AtGraph *g, AtTensor *x, int n_pads, const gint64 *pads, AtPadMode mode, float value)
{
  PadParams p = { mode, value };
  gint64 shape[AT_MAX_DIMS];
  AtTensor *t;

  if (x == NULL)
    return at_graph_new_node (g, &pad_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, &x, 1, NULL, 0);
  if (x->dtype != AT_DTYPE_F32)
    return fail_tensor (g, "pad", "x must be f32", x);
  if (mode != AT_PAD_ZERO && mode != AT_PAD_REFLECT && mode != AT_PAD_REPLICATE)
    return at_graph_fail (g, "pad", "unknown mode %d", (int) mode);
  if (n_pads < 0 || n_pads % 2 != 0 || n_pads > 2 * x->ndim)
    return at_graph_fail (g, "pad", "%d pad values for %d dimensions: need an even count <= %d",
                          n_pads, x->ndim, 2 * x->ndim);
  for (int i = 0; i < x->ndim; i++)
    shape[i] = x->shape[i];
  for (int j = 0; j < n_pads / 2; j++)
    {
      int d = x->ndim - 1 - j;
      gint64 before = pads[2 * j], after = pads[2 * j + 1];
      if (mode != AT_PAD_ZERO && (before < 0 || after < 0))
        return at_graph_fail (g, "pad", "negative pads are only for constant mode");
      if (mode == AT_PAD_REFLECT && (before >= x->shape[d] || after >= x->shape[d]))
        {
          g_autofree char *dx = at_tensor_describe (x);
          return at_graph_fail (g, "pad", "reflect pads (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                                ") must be smaller than dimension %d of %s", before, after, d, dx);
        }
      if (mode == AT_PAD_REPLICATE && x->shape[d] < 1)
        return fail_tensor (g, "pad", "replicate needs a non-empty dimension", x);
      if (before > G_MAXINT32 || before < -G_MAXINT32 || after > G_MAXINT32 || after < -G_MAXINT32)
        return at_graph_fail (g, "pad", "pad out of range");
      shape[d] = x->shape[d] + before + after;
      if (shape[d] <= 0)
        {
          g_autofree char *dx = at_tensor_describe (x);
          return at_graph_fail (g, "pad", "output size <= 0 in dimension %d of %s", d, dx);
        }
      p.before[4 - x->ndim + d] = before;
    }
  t = at_graph_new_node (g, &pad_op, AT_DTYPE_F32, x->ndim, shape, &x, 1, &p, sizeof p);
  if (t != NULL && (!fits_u32 (t) || !fits_u32 (x)))
    return at_graph_fail (g, "pad", "more than 2^32 elements");
  return t;
}

/* ---- concat ---- */

static void
ref_concat (const AtTensor *dst, const float *const *src, float *out)
{
  const ConcatParams *p = (const ConcatParams *) dst->params;
  gint64 ne[4], na[4], nb[4], st[4], outer = 1, inner = 1, n = 0;

  at_tensor_shape4 (dst, ne, st);
  at_tensor_shape4 (dst->src[0], na, st);
  at_tensor_shape4 (dst->src[1], nb, st);
  for (int i = 0; i < p->dim; i++)
    outer *= ne[i];
  for (int i = p->dim + 1; i < 4; i++)
    inner *= ne[i];
  for (gint64 o = 0; o < outer; o++)
    {
      for (gint64 i = 0; i < na[p->dim] * inner; i++)
        out[n++] = src[0][o * na[p->dim] * inner + i];
      for (gint64 i = 0; i < nb[p->dim] * inner; i++)
        out[n++] = src[1][o * nb[p->dim] * inner + i];
    }
}

static gboolean
encode_concat (AtEncoder *enc, AtTensor *dst, GError **error)
{
  const ConcatParams *p = (const ConcatParams *) dst->params;
  AtPipelineDesc desc = { "concat", 3, { WG, 1, 1 }, 3, sizeof (ConcatPush) };
  ConcatPush push = { 0 };
  gint64 ne[4], na[4], st[4];
  AtBinding b[3];
  guint32 gx, gy;

  at_tensor_shape4 (dst, ne, st);
  at_tensor_shape4 (dst->src[0], na, st);
  for (int i = 0; i < 4; i++)
    push.ne[i] = (guint32) ne[i];
  fill_strides4 (dst->src[0], push.sa);
  fill_strides4 (dst->src[1], push.sb);
  push.dim = (guint32) p->dim;
  push.na = (guint32) na[p->dim];
  push.n = (guint32) at_tensor_numel (dst);
  b[0] = at_encoder_bind (enc, dst->src[0], FALSE, &push.oa, 4);
  b[1] = at_encoder_bind (enc, dst->src[1], FALSE, &push.ob, 4);
  b[2] = at_encoder_bind (enc, dst, TRUE, &push.oy, 4);
  at_encoder_grid (enc, (push.n + WG - 1) / WG, &gx, &gy);
  return at_encoder_dispatch (enc, &desc, "concat", &push, b, gx, gy, 1, error);
}

static const AtOp concat_op = { "concat", encode_concat, ref_concat };

AtTensor *
at_concat (AtGraph *g, AtTensor *a, AtTensor *b, int dim)
{
  ConcatParams p = { 0 };
  gint64 shape[AT_MAX_DIMS];
  AtTensor *srcs[2] = { a, b };
  AtTensor *t;

  if (a == NULL || b == NULL)
    return at_graph_new_node (g, &concat_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, srcs, 2, NULL, 0);
  if (a->dtype != AT_DTYPE_F32 || b->dtype != AT_DTYPE_F32)
    return at_graph_fail (g, "concat", "%s and %s: concat takes f32", a->name, b->name);
  if (dim < 0)
    dim += a->ndim;
  if (a->ndim != b->ndim || dim < 0 || dim >= a->ndim)
    {
      g_autofree char *da = at_tensor_describe (a), *db = at_tensor_describe (b);
      return at_graph_fail (g, "concat", "bad dimension %d for %s and %s", dim, da, db);
    }
  for (int i = 0; i < a->ndim; i++)
    {
      if (i != dim && a->shape[i] != b->shape[i])
        {
          g_autofree char *da = at_tensor_describe (a), *db = at_tensor_describe (b);
          return at_graph_fail (g, "concat", "shapes differ outside dimension %d: %s and %s", dim,
                                da, db);
        }
      shape[i] = i == dim ? a->shape[i] + b->shape[i] : a->shape[i];
    }
  p.dim = dim + 4 - a->ndim;
  t = at_graph_new_node (g, &concat_op, AT_DTYPE_F32, a->ndim, shape, srcs, 2, &p, sizeof p);
  if (t != NULL && !fits_u32 (t))
    return at_graph_fail (g, "concat", "more than 2^32 elements");
  return t;
}
