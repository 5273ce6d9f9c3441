/* at-ops-norm.c: layer / RMS / group / instance norm, softmax, RoPE, SwiGLU and GEGLU.
 * Shaders: shaders/norm.comp, group_norm.comp, softmax.comp, rope.comp, glu.comp.
 * References: torch.nn.LayerNorm, GroupNorm, InstanceNorm2d, functional.softmax; Llama's
 * RMSNorm; RoFormer (arXiv:2104.09864) for RoPE; Shazeer, "GLU Variants Improve Transformer"
 * (arXiv:2002.05202) for the gated activations.
 *
 * Traps: optional sources (weight, bias, mask, freq_factors) are packed after x, so their
 * src[] index depends on which are present (the params record it); f16 vectors are bound in
 * units of halves.
 */
#include "at-ops-norm.h"
#include "at-ops-private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "at-error.h"

#define WG_ELEMENTWISE 256
#define MAX_SUBGROUPS 64 /* the shaders' shared arrays */

enum { NORM_LAYER, NORM_RMS };
enum { VEC_NONE, VEC_F32, VEC_F16 }; /* spec constant values for optional vectors */

typedef struct
{
  guint32 kind;
  float eps;
  gint32 w, b; /* src index of weight and bias, -1 when absent */
} NormParams;

typedef struct
{
  gint32 n_groups;
  float eps;
  gint32 w, b;
} GroupNormParams;

typedef struct
{
  float scale;
  gint32 causal;
  gint32 mask; /* src index, -1 when absent */
} SoftmaxParams;

typedef struct
{
  gint32 n_rot, mode;
  float base, freq_scale;
  gint32 ff; /* src index of freq_factors, -1 when absent */
  /* at_rope_cache: src indices of the k and v caches (-1: plain rope), q and kv heads. */
  gint32 kc, vc;
  gint32 nq, nkv;
} RopeParams;

typedef struct
{
  guint32 gelu;  /* activation: 0 silu, 1 gelu (erf), 2 gelu (tanh form) */
  gint32 fused;  /* 1: one source x, halves as AtGluKind says; 0: gate = src[0], up = src[1] */
  gint32 gate_second; /* fused only: the activated half is the second one (GEGLU) */
} GluParams;

/* Mirrors of the shaders' push-constant blocks. */
typedef struct
{
  guint32 ne[4], sx[4];
  guint32 ox, ow, ob, od;
  guint32 n_rows;
  float eps;
} NormPush;
G_STATIC_ASSERT (sizeof (NormPush) == 56);

typedef struct
{
  guint32 ox, ow, ob, od;
  guint32 n_rows, groups, cpg, s;
  float eps;
} GroupNormPush;
G_STATIC_ASSERT (sizeof (GroupNormPush) == 36);

typedef struct
{
  guint32 ne[4], sx[4], sm[4];
  guint32 ox, om, od;
  guint32 n_rows;
  float scale;
  guint32 causal;
} SoftmaxPush;
G_STATIC_ASSERT (sizeof (SoftmaxPush) == 72);

typedef struct
{
  guint32 ne[4], sx[4];
  guint32 ox, op, of, od;
  guint32 n_rot, per_row, n;
  float base, freq_scale;
  guint32 nq, nkv, okc, ovc, ncache;
} RopePush;
G_STATIC_ASSERT (sizeof (RopePush) == 88);

typedef struct
{
  guint32 ne[4], sg[4], su[4];
  guint32 og, ou, od, n;
} GluPush;
G_STATIC_ASSERT (sizeof (GluPush) == 64);

/* ---- shared helpers ---- */

static const AtTensor *
opt_src (const AtTensor *dst, gint32 index)
{
  return index < 0 ? NULL : dst->src[index];
}

static const float *
opt_ref (const float *const *srcs, gint32 index)
{
  return index < 0 ? NULL : srcs[index];
}

/* Workgroup size for one-row-per-workgroup reductions: one subgroup on CPU devices (barriers
 * are coroutine switches there) and for short rows; 256 invocations on GPUs. */
static guint32
reduce_workgroup (AtEncoder *enc, gint64 row_len)
{
  const AtDeviceInfo *info = at_encoder_get_info (enc);
  guint32 sg = MAX (info->subgroup_size, 1);
  guint32 limit = MIN (MIN (256u, info->max_workgroup_invocations), sg * MAX_SUBGROUPS);
  const char *env = g_getenv ("ATELIER_NORM_WG");

  if (env != NULL)
    {
      guint64 wg = g_ascii_strtoull (env, NULL, 10);
      if (wg >= sg && wg <= limit && wg % sg == 0)
        return (guint32) wg;
    }
  if (info->type == VK_PHYSICAL_DEVICE_TYPE_CPU || row_len < 1024 || limit < sg)
    return sg;
  return limit / sg * sg;
}

/* Rows shorter than this take one subgroup each, ROWS_PER_WORKGROUP to a workgroup. */
#define SHORT_ROW 1024
#define ROWS_PER_WORKGROUP 8

/* The layout of a row reduction: `*rows` rows of a subgroup each per workgroup (short rows;
 * fewer, larger workgroups cost less to launch), or 0 and one workgroup a row. */
static guint32
reduce_layout (AtEncoder *enc, gint64 row_len, guint32 *rows)
{
  const AtDeviceInfo *info = at_encoder_get_info (enc);
  guint32 sg = MAX (info->subgroup_size, 1);

  *rows = 0;
  if (g_getenv ("ATELIER_NORM_WG") != NULL || row_len >= SHORT_ROW)
    return reduce_workgroup (enc, row_len);
  *rows = MAX (MIN (ROWS_PER_WORKGROUP, info->max_workgroup_invocations / sg), 1);
  return *rows * sg;
}

/* Binds an optional f32/f16 vector (weight, bias, mask); an absent one binds `dummy`.
 * Returns the shader's type code. */
static guint32
bind_optional (AtEncoder *enc, const AtTensor *t, const AtTensor *dummy, AtBinding *b, guint32 *off)
{
  if (t == NULL)
    {
      *b = at_encoder_bind (enc, dummy, FALSE, off, 4);
      *off = 0;
      return VEC_NONE;
    }
  *b = at_encoder_bind (enc, t, FALSE, off, t->dtype == AT_DTYPE_F16 ? 2 : 4);
  return t->dtype == AT_DTYPE_F16 ? VEC_F16 : VEC_F32;
}

static gboolean
check_f32 (AtGraph *g, const char *op, AtTensor *t)
{
  if (t->dtype != AT_DTYPE_F32)
    {
      g_autofree char *d = at_tensor_describe (t);
      at_graph_fail (g, op, "%s: activations must be f32", d);
      return FALSE;
    }
  if (at_tensor_numel (t) >= G_MAXUINT32)
    {
      g_autofree char *d = at_tensor_describe (t);
      at_graph_fail (g, op, "%s: 2^32 elements or more", d);
      return FALSE;
    }
  return TRUE;
}

/* An optional weight-like vector: NULL, or a contiguous f32/f16 tensor of `n` elements. */
static gboolean
check_vector (AtGraph *g, const char *op, const char *role, AtTensor *t, gint64 n, const char *of)
{
  g_autofree char *d = NULL;

  if (t == NULL)
    return TRUE;
  d = at_tensor_describe (t);
  if (t->dtype != AT_DTYPE_F32 && t->dtype != AT_DTYPE_F16)
    at_graph_fail (g, op, "%s %s must be f32 or f16", role, d);
  else if (at_tensor_numel (t) != n)
    at_graph_fail (g, op, "%s %s must have %" G_GINT64_FORMAT " elements (%s)", role, d, n, of);
  else if (!at_tensor_is_contiguous (t))
    at_graph_fail (g, op, "%s %s must be contiguous", role, d);
  else
    return TRUE;
  return FALSE;
}

/* Appends an optional source; returns its index or -1. */
static gint32
add_src (AtTensor **srcs, guint *n, AtTensor *t)
{
  if (t == NULL)
    return -1;
  srcs[*n] = t;
  return (gint32) (*n)++;
}

static void
copy_shape4 (const AtTensor *t, guint32 ne[4], guint32 st[4])
{
  gint64 shape[4], stride[4];

  at_tensor_shape4 (t, shape, stride);
  for (int i = 0; i < 4; i++)
    {
      ne[i] = (guint32) shape[i];
      st[i] = (guint32) stride[i];
    }
}

/* Whether rows of [n0, n1, n2, D] with strides `st` and the element offsets `off` can be read as
 * vec4s: D contiguous and a multiple of 4, row strides and offsets multiples of 4. */
static gboolean
vec4_rows (const guint32 ne[4], const guint32 st[4], const guint32 *off, guint n_off)
{
  if (ne[3] % 4 != 0 || st[3] != 1)
    return FALSE;
  for (int i = 0; i < 3; i++)
    if (ne[i] > 1 && st[i] % 4 != 0)
      return FALSE;
  for (guint i = 0; i < n_off; i++)
    if (off[i] % 4 != 0)
      return FALSE;
  return TRUE;
}

/* ---- layer norm and RMS norm ---- */

static void
ref_norm (const AtTensor *dst, const float *const *srcs, float *out)
{
  const NormParams *p = (const NormParams *) dst->params;
  const float *x = srcs[0], *w = opt_ref (srcs, p->w), *b = opt_ref (srcs, p->b);
  gint64 n = dst->shape[dst->ndim - 1], rows = at_tensor_numel (dst) / n;

  for (gint64 r = 0; r < rows; r++)
    {
      const float *xr = x + r * n;
      double mean = 0, var = 0;
      float rstd;

      if (p->kind == NORM_LAYER)
        {
          for (gint64 i = 0; i < n; i++)
            mean += xr[i];
          mean /= n;
        }
      for (gint64 i = 0; i < n; i++)
        var += (xr[i] - mean) * (xr[i] - mean);
      rstd = (float) (1.0 / sqrt (var / n + p->eps));
      for (gint64 i = 0; i < n; i++)
        {
          float y = (xr[i] - (float) mean) * rstd;
          if (w != NULL)
            y *= w[i];
          if (b != NULL)
            y += b[i];
          out[r * n + i] = y;
        }
    }
}

static gboolean
encode_norm (AtEncoder *enc, AtTensor *dst, GError **error)
{
  const NormParams *p = (const NormParams *) dst->params;
  const AtTensor *x = dst->src[0];
  NormPush push = { 0 };
  AtPipelineDesc desc = { "norm", 7, { 0, 1, 1, p->kind == NORM_RMS }, 4, sizeof (NormPush) };
  AtBinding b[4];
  guint32 gx, gy;

  copy_shape4 (x, push.ne, push.sx);
  push.n_rows = (guint32) (at_tensor_numel (dst) / push.ne[3]);
  push.eps = p->eps;
  desc.spec[0] = reduce_layout (enc, push.ne[3], &desc.spec[6]);
  b[0] = at_encoder_bind (enc, x, FALSE, &push.ox, 4);
  desc.spec[4] = bind_optional (enc, opt_src (dst, p->w), x, &b[1], &push.ow);
  desc.spec[5] = bind_optional (enc, opt_src (dst, p->b), x, &b[2], &push.ob);
  b[3] = at_encoder_bind (enc, dst, TRUE, &push.od, 4);
  if (vec4_rows (push.ne, push.sx, (guint32[]){ push.ox, push.od, push.ow, push.ob }, 4))
    {
      desc.shader = "norm_vec4";
      push.ne[3] /= 4;
      for (int i = 0; i < 3; i++)
        push.sx[i] /= 4;
      push.ox /= 4, push.od /= 4, push.ow /= 4, push.ob /= 4;
    }
  at_encoder_grid (enc, (push.n_rows + MAX (desc.spec[6], 1) - 1) / MAX (desc.spec[6], 1), &gx, &gy);
  return at_encoder_dispatch (enc, &desc, p->kind == NORM_RMS ? "rms_norm" : "layer_norm", &push, b,
                              gx, gy, 1, error);
}

static const AtOp norm_op = { "norm", encode_norm, ref_norm };

static AtTensor *
norm (AtGraph *g, const char *name, guint32 kind, AtTensor *x, AtTensor *weight, AtTensor *bias,
      float eps)
{
  NormParams p = { kind, eps, -1, -1 };
  AtTensor *srcs[3] = { x };
  guint n = 1;
  gint64 d;

  if (x == NULL)
    return at_graph_new_node (g, &norm_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, &x, 1, NULL, 0);
  if (!check_f32 (g, name, x))
    return NULL;
  d = x->shape[x->ndim - 1];
  if (!check_vector (g, name, "weight", weight, d, "the last dimension of x")
      || !check_vector (g, name, "bias", bias, d, "the last dimension of x"))
    return NULL;
  p.w = add_src (srcs, &n, weight);
  p.b = add_src (srcs, &n, bias);
  return at_graph_new_node (g, &norm_op, AT_DTYPE_F32, x->ndim, x->shape, srcs, n, &p, sizeof p);
}

AtTensor *
at_layer_norm (AtGraph *g, AtTensor *x, AtTensor *weight, AtTensor *bias, float eps)
{
  return norm (g, "layer_norm", NORM_LAYER, x, weight, bias, eps);
}

AtTensor *
at_rms_norm (AtGraph *g, AtTensor *x, AtTensor *weight, float eps)
{
  return norm (g, "rms_norm", NORM_RMS, x, weight, NULL, eps);
}

/* ---- group norm and instance norm ---- */

static void
ref_group_norm (const AtTensor *dst, const float *const *srcs, float *out)
{
  const GroupNormParams *p = (const GroupNormParams *) dst->params;
  const float *x = srcs[0], *w = opt_ref (srcs, p->w), *b = opt_ref (srcs, p->b);
  gint64 n = dst->shape[0], c = dst->shape[1], s = at_tensor_numel (dst) / (n * c);
  gint64 cpg = c / p->n_groups, len = cpg * s;

  for (gint64 r = 0; r < n * p->n_groups; r++)
    {
      const float *xr = x + r * len;
      double mean = 0, var = 0;
      float rstd;

      for (gint64 i = 0; i < len; i++)
        mean += xr[i];
      mean /= len;
      for (gint64 i = 0; i < len; i++)
        var += (xr[i] - mean) * (xr[i] - mean);
      rstd = (float) (1.0 / sqrt (var / len + p->eps));
      for (gint64 i = 0; i < len; i++)
        {
          gint64 ch = (r % p->n_groups) * cpg + i / s;
          out[r * len + i] = (xr[i] - (float) mean) * rstd * (w ? w[ch] : 1.0f) + (b ? b[ch] : 0.0f);
        }
    }
}

static gboolean
encode_group_norm (AtEncoder *enc, AtTensor *dst, GError **error)
{
  const GroupNormParams *p = (const GroupNormParams *) dst->params;
  const AtTensor *x = dst->src[0];
  GroupNormPush push = { 0 };
  AtPipelineDesc desc = { "group_norm", 5, { 0, 1, 1 }, 4, sizeof (GroupNormPush) };
  AtBinding b[4];
  guint32 gx, gy;
  gint64 c = x->shape[1];

  push.groups = (guint32) p->n_groups;
  push.cpg = (guint32) (c / p->n_groups);
  push.s = (guint32) (at_tensor_numel (x) / (x->shape[0] * c));
  push.n_rows = (guint32) (x->shape[0] * p->n_groups);
  push.eps = p->eps;
  desc.spec[0] = reduce_workgroup (enc, (gint64) push.cpg * push.s);
  b[0] = at_encoder_bind (enc, x, FALSE, &push.ox, 4);
  desc.spec[3] = bind_optional (enc, opt_src (dst, p->w), x, &b[1], &push.ow);
  desc.spec[4] = bind_optional (enc, opt_src (dst, p->b), x, &b[2], &push.ob);
  b[3] = at_encoder_bind (enc, dst, TRUE, &push.od, 4);
  if (push.s % 4 == 0 && push.ox % 4 == 0 && push.od % 4 == 0)
    {
      desc.shader = "group_norm_vec4";
      push.s /= 4, push.ox /= 4, push.od /= 4;
    }
  at_encoder_grid (enc, push.n_rows, &gx, &gy);
  return at_encoder_dispatch (enc, &desc, "group_norm", &push, b, gx, gy, 1, error);
}

static const AtOp group_norm_op = { "group_norm", encode_group_norm, ref_group_norm };

static AtTensor *
group_norm (AtGraph *g, const char *name, AtTensor *x, int n_groups, AtTensor *weight,
            AtTensor *bias, float eps)
{
  GroupNormParams p = { n_groups, eps, -1, -1 };
  AtTensor *srcs[3] = { x };
  g_autofree char *d = NULL;
  guint n = 1;

  if (x == NULL)
    return at_graph_new_node (g, &group_norm_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, &x, 1, NULL, 0);
  if (!check_f32 (g, name, x))
    return NULL;
  d = at_tensor_describe (x);
  if (x->ndim != 3 && x->ndim != 4)
    return at_graph_fail (g, name, "x %s must be [N, C, L] or [N, C, H, W]", d);
  if (!at_tensor_is_contiguous (x))
    return at_graph_fail (g, name, "x %s must be contiguous (copy it with at_cont)", d);
  if (n_groups < 1 || x->shape[1] % n_groups != 0)
    return at_graph_fail (g, name, "the %" G_GINT64_FORMAT " channels of x %s do not split into %d "
                          "groups", x->shape[1], d, n_groups);
  if (!check_vector (g, name, "weight", weight, x->shape[1], "the channels of x")
      || !check_vector (g, name, "bias", bias, x->shape[1], "the channels of x"))
    return NULL;
  p.w = add_src (srcs, &n, weight);
  p.b = add_src (srcs, &n, bias);
  return at_graph_new_node (g, &group_norm_op, AT_DTYPE_F32, x->ndim, x->shape, srcs, n, &p, sizeof p);
}

AtTensor *
at_group_norm (AtGraph *g, AtTensor *x, int n_groups, AtTensor *weight, AtTensor *bias, float eps)
{
  return group_norm (g, "group_norm", x, n_groups, weight, bias, eps);
}

AtTensor *
at_instance_norm (AtGraph *g, AtTensor *x, AtTensor *weight, AtTensor *bias, float eps)
{
  int c = x != NULL && x->ndim >= 2 && x->shape[1] <= G_MAXINT ? (int) x->shape[1] : 1;

  return group_norm (g, "instance_norm", x, c, weight, bias, eps);
}

/* ---- softmax ---- */

static void
ref_softmax (const AtTensor *dst, const float *const *srcs, float *out)
{
  const SoftmaxParams *p = (const SoftmaxParams *) dst->params;
  const AtTensor *mt = opt_src (dst, p->mask);
  const float *x = srcs[0], *mask = opt_ref (srcs, p->mask);
  gint64 ne[4], st[4], ms[4] = { 0 };

  at_tensor_shape4 (dst, ne, st);
  if (mt != NULL)
    at_tensor_broadcast_strides (mt, ms);
  for (gint64 i0 = 0; i0 < ne[0]; i0++)
    for (gint64 i1 = 0; i1 < ne[1]; i1++)
      for (gint64 q = 0; q < ne[2]; q++)
        {
          gint64 row = (i0 * ne[1] + i1) * ne[2] + q;
          gint64 see = p->causal ? q + ne[3] - ne[2] + 1 : ne[3];
          const float *xr = x + row * ne[3];
          float *yr = out + row * ne[3];
          double mx = -INFINITY, sum = 0;

          for (gint64 j = 0; j < ne[3]; j++)
            {
              float v = xr[j] * p->scale;
              if (mask != NULL)
                v += mask[i0 * ms[0] + i1 * ms[1] + q * ms[2] + j * ms[3]];
              yr[j] = j < see ? v : -INFINITY; /* the logits, for now */
              mx = MAX (mx, yr[j]);
            }
          for (gint64 j = 0; j < ne[3]; j++)
            {
              yr[j] = mx == -INFINITY ? 0.0f : (float) exp (yr[j] - mx);
              sum += yr[j];
            }
          for (gint64 j = 0; j < ne[3]; j++)
            yr[j] = sum > 0 ? (float) (yr[j] / sum) : 0.0f;
        }
}

static gboolean
encode_softmax (AtEncoder *enc, AtTensor *dst, GError **error)
{
  const SoftmaxParams *p = (const SoftmaxParams *) dst->params;
  const AtTensor *x = dst->src[0], *mask = opt_src (dst, p->mask);
  SoftmaxPush push = { 0 };
  AtPipelineDesc desc = { "softmax", 5, { 0, 1, 1 }, 3, sizeof (SoftmaxPush) };
  AtBinding b[3];
  guint32 gx, gy;

  copy_shape4 (x, push.ne, push.sx);
  if (mask != NULL)
    {
      guint32 mne[4];
      copy_shape4 (mask, mne, push.sm);
      for (int i = 0; i < 4; i++)
        if (mne[i] == 1)
          push.sm[i] = 0;
    }
  push.n_rows = (guint32) (at_tensor_numel (dst) / push.ne[3]);
  push.scale = p->scale;
  push.causal = p->causal != 0;
  desc.spec[0] = reduce_layout (enc, push.ne[3], &desc.spec[4]);
  b[0] = at_encoder_bind (enc, x, FALSE, &push.ox, 4);
  desc.spec[3] = bind_optional (enc, mask, x, &b[1], &push.om);
  b[2] = at_encoder_bind (enc, dst, TRUE, &push.od, 4);
  if (vec4_rows (push.ne, push.sx, (guint32[]){ push.ox, push.od, push.om }, 3)
      && (mask == NULL || vec4_rows (push.ne, push.sm, &push.om, 1)))
    {
      desc.shader = "softmax_vec4";
      push.ne[3] /= 4;
      for (int i = 0; i < 3; i++)
        push.sx[i] /= 4, push.sm[i] /= 4;
      push.ox /= 4, push.od /= 4, push.om /= 4;
    }
  at_encoder_grid (enc, (push.n_rows + MAX (desc.spec[4], 1) - 1) / MAX (desc.spec[4], 1), &gx, &gy);
  return at_encoder_dispatch (enc, &desc, "softmax", &push, b, gx, gy, 1, error);
}

static const AtOp softmax_op = { "softmax", encode_softmax, ref_softmax };

AtTensor *
at_softmax (AtGraph *g, AtTensor *x, AtTensor *mask, float scale, gboolean causal)
{
  SoftmaxParams p = { scale, causal != FALSE, -1 };
  AtTensor *srcs[2] = { x };
  guint n = 1;

  if (x == NULL)
    return at_graph_new_node (g, &softmax_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, &x, 1, NULL, 0);
  if (!check_f32 (g, "softmax", x))
    return NULL;
  if (mask != NULL)
    {
      gint64 xs[4], xst[4], ms[4], mst[4];
      g_autofree char *dx = at_tensor_describe (x), *dm = at_tensor_describe (mask);

      if (mask->dtype != AT_DTYPE_F32 && mask->dtype != AT_DTYPE_F16)
        return at_graph_fail (g, "softmax", "mask %s must be f32 or f16", dm);
      if (mask->ndim > x->ndim)
        return at_graph_fail (g, "softmax", "mask %s has more dimensions than x %s", dm, dx);
      at_tensor_shape4 (x, xs, xst);
      at_tensor_shape4 (mask, ms, mst);
      for (int i = 0; i < 4; i++)
        if (ms[i] != 1 && ms[i] != xs[i])
          return at_graph_fail (g, "softmax", "mask %s does not broadcast to x %s", dm, dx);
      p.mask = add_src (srcs, &n, mask);
    }
  return at_graph_new_node (g, &softmax_op, AT_DTYPE_F32, x->ndim, x->shape, srcs, n, &p, sizeof p);
}

/* ---- RoPE ---- */

void
at_rope_ref_token (const float *x, float *y, gint64 heads, gint64 n_turn, gint64 d, int n_rot,
                   AtRopeMode mode, float pos, float base, float freq_scale, const float *ff)
{
  gint64 half = n_rot / 2;

  for (gint64 h = 0; h < heads; h++)
    {
      const float *xr = x + h * d;
      float *yr = y + h * d;

      for (gint64 k = h < n_turn ? n_rot : 0; k < d; k++)
        yr[k] = xr[k];
      if (h >= n_turn)
        continue;
      for (gint64 i = 0; i < half; i++)
        {
          gint64 ia = mode == AT_ROPE_NEOX ? i : 2 * i;
          gint64 ib = mode == AT_ROPE_NEOX ? i + half : 2 * i + 1;
          float theta = pos * freq_scale * powf (base, -2.0f * (float) i / (float) n_rot);
          if (ff != NULL)
            theta /= ff[i];
          yr[ia] = xr[ia] * cosf (theta) - xr[ib] * sinf (theta);
          yr[ib] = xr[ia] * sinf (theta) + xr[ib] * cosf (theta);
        }
    }
}

static void
ref_rope (const AtTensor *dst, const float *const *srcs, float *out)
{
  const RopeParams *p = (const RopeParams *) dst->params;
  gint64 ne[4], st[4];

  at_tensor_shape4 (dst, ne, st);
  /* at_rope_cache's v heads are copied (their cache writes are checked by the tests from the
   * caches themselves). */
  for (gint64 bi = 0; bi < ne[0]; bi++)
    for (gint64 l = 0; l < ne[1]; l++)
      {
        gint64 row = (bi * ne[1] + l) * ne[2] * ne[3];

        at_rope_ref_token (srcs[0] + row, out + row, ne[2], p->kc >= 0 ? p->nq + p->nkv : ne[2],
                           ne[3], p->n_rot, p->mode, srcs[1][l], p->base, p->freq_scale,
                           opt_ref (srcs, p->ff));
      }
}

static gboolean
encode_rope (AtEncoder *enc, AtTensor *dst, GError **error)
{
  const RopeParams *p = (const RopeParams *) dst->params;
  const AtTensor *x = dst->src[0], *ff = opt_src (dst, p->ff);
  RopePush push = { 0 };
  AtPipelineDesc desc = { "rope", 5, { WG_ELEMENTWISE, 1, 1, p->mode == AT_ROPE_NEOX, ff != NULL }, 6,
                          sizeof (RopePush) };
  AtBinding b[6];
  guint32 gx, gy;
  gboolean f16 = FALSE;

  copy_shape4 (x, push.ne, push.sx);
  push.n_rot = (guint32) p->n_rot;
  push.per_row = push.n_rot / 2 + (push.ne[3] - push.n_rot);
  push.n = push.ne[0] * push.ne[1] * push.per_row;
  push.base = p->base;
  push.freq_scale = p->freq_scale;
  b[0] = at_encoder_bind (enc, x, FALSE, &push.ox, 4);
  b[1] = at_encoder_bind (enc, dst->src[1], FALSE, &push.op, 4);
  b[2] = at_encoder_bind (enc, ff != NULL ? ff : x, FALSE, &push.of, 4);
  b[3] = at_encoder_bind (enc, dst, TRUE, &push.od, 4);
  /* at_rope_cache's caches; else the output again (written here anyway: the shader declares
   * them written). */
  if (p->kc >= 0)
    {
      const AtTensor *kc = dst->src[p->kc];
      guint unit = kc->dtype == AT_DTYPE_F16 ? 2 : 4;

      if (unit == 2 && !at_encoder_get_info (enc)->storage_16bit)
        {
          g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED,
                       "rope_cache: f16 caches need a device with 16-bit storage buffers");
          return FALSE;
        }
      f16 = unit == 2;
      b[4] = at_encoder_bind (enc, kc, TRUE, &push.okc, unit);
      b[5] = at_encoder_bind (enc, dst->src[p->vc], TRUE, &push.ovc, unit);
      push.nq = (guint32) p->nq;
      push.nkv = (guint32) p->nkv;
      push.ncache = (guint32) kc->shape[0];
    }
  else
    b[4] = b[5] = at_encoder_bind (enc, dst, TRUE, NULL, 4);
  if (push.n_rot % (p->mode == AT_ROPE_NEOX ? 8 : 4) == 0
      && vec4_rows (push.ne, push.sx, (guint32[]){ push.ox, push.od }, 2)
      && push.okc % 4 == 0 && push.ovc % 4 == 0)
    {
      /* Items of 4 elements: 2 pairs (normal) or 4 pairs (neox), then copies of 4. */
      desc.shader = f16 ? "rope_vec4_cache_f16" : "rope_vec4";
      push.per_row = push.n_rot / (p->mode == AT_ROPE_NEOX ? 8 : 4) + (push.ne[3] - push.n_rot) / 4;
      push.n = push.ne[0] * push.ne[1] * push.per_row;
      push.ne[3] /= 4;
      for (int i = 0; i < 3; i++)
        push.sx[i] /= 4;
      push.ox /= 4, push.od /= 4, push.okc /= 4, push.ovc /= 4;
    }
  else if (f16)
    desc.shader = "rope_cache_f16";
  at_encoder_grid (enc, (push.n + WG_ELEMENTWISE - 1) / WG_ELEMENTWISE, &gx, &gy);
  return at_encoder_dispatch (enc, &desc, "rope", &push, b, gx, gy, 1, error);
}

static const AtOp rope_op = { "rope", encode_rope, ref_rope };

gboolean
at_rope_check (AtGraph *g, const char *op, const char *dx, gint64 l, gint64 d, AtTensor *positions,
               int n_rot, AtRopeMode mode, AtTensor *freq_factors)
{
  g_autofree char *dp = at_tensor_describe (positions);

  if (mode != AT_ROPE_NORMAL && mode != AT_ROPE_NEOX)
    at_graph_fail (g, op, "unknown mode %d", (int) mode);
  else if (n_rot < 2 || n_rot % 2 != 0 || n_rot > d)
    at_graph_fail (g, op, "n_rot %d must be even, at least 2 and at most D of x %s", n_rot, dx);
  else if (positions->dtype != AT_DTYPE_I32 || positions->ndim != 1 || positions->shape[0] != l
           || !at_tensor_is_contiguous (positions))
    at_graph_fail (g, op, "positions %s must be contiguous i32 [%" G_GINT64_FORMAT "] (L of x %s)",
                   dp, l, dx);
  else if (freq_factors != NULL && freq_factors->dtype != AT_DTYPE_F32)
    at_graph_fail (g, op, "freq_factors must be f32");
  else
    return check_vector (g, op, "freq_factors", freq_factors, n_rot / 2, "n_rot / 2");
  return FALSE;
}

gboolean
at_rope_check_caches (AtGraph *g, const char *op, const char *dx, gint64 heads, gint64 d,
                      int n_q_heads, AtTensor *k_cache, AtTensor *v_cache, gint64 *nkv)
{
  g_autofree char *dk = NULL, *dv = NULL;

  if (k_cache == NULL || v_cache == NULL)
    {
      at_graph_fail (g, op, "a cache is missing");
      return FALSE;
    }
  dk = at_tensor_describe (k_cache);
  dv = at_tensor_describe (v_cache);
  *nkv = k_cache->ndim == 3 ? k_cache->shape[1] : 0;
  if (n_q_heads < 0 || heads != n_q_heads + 2 * *nkv)
    at_graph_fail (g, op, "x %s must be [L, %d q heads + 2 x %" G_GINT64_FORMAT " kv heads, D]"
                   " for the caches %s", dx, n_q_heads, *nkv, dk);
  else if ((k_cache->dtype != AT_DTYPE_F32 && k_cache->dtype != AT_DTYPE_F16)
           || k_cache->ndim != 3 || k_cache->shape[2] != d
           || !at_tensor_is_contiguous (k_cache) || v_cache->dtype != k_cache->dtype
           || v_cache->ndim != 3 || memcmp (v_cache->shape, k_cache->shape, 3 * sizeof (gint64)) != 0
           || !at_tensor_is_contiguous (v_cache))
    at_graph_fail (g, op, "the caches %s and %s must be contiguous f32 or f16 [rows, %" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT "], both of one dtype", dk, dv, *nkv, d);
  else
    return TRUE;
  return FALSE;
}

/* The rope node: plain (no caches), or at_rope_cache's with its caches and q heads. */
static AtTensor *
rope_node (AtGraph *g, const char *op, AtTensor *x, AtTensor *positions, int n_rot, float base,
           float freq_scale, AtRopeMode mode, AtTensor *freq_factors, int n_q_heads, AtTensor *k_cache,
           AtTensor *v_cache)
{
  RopeParams p = { n_rot, mode, base, freq_scale, -1, -1, -1, 0, 0 };
  AtTensor *srcs[AT_MAX_SRC] = { x, positions };
  g_autofree char *dx = NULL;
  guint n = 2;
  gint64 d, l;

  if (x == NULL || positions == NULL)
    return at_graph_new_node (g, &rope_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, srcs, 2, NULL, 0);
  if (!check_f32 (g, op, x))
    return NULL;
  dx = at_tensor_describe (x);
  if (x->ndim != 3 && x->ndim != 4)
    return at_graph_fail (g, op, "x %s must be [B, L, H, D] or [L, H, D]", dx);
  d = x->shape[x->ndim - 1];
  l = x->shape[x->ndim - 3];
  if (x->stride[x->ndim - 1] != 1 && d > 1)
    return at_graph_fail (g, op, "the last dimension of x %s must be contiguous", dx);
  if (!at_rope_check (g, op, dx, l, d, positions, n_rot, mode, freq_factors))
    return NULL;
  p.ff = add_src (srcs, &n, freq_factors);
  if (k_cache != NULL || v_cache != NULL)
    {
      gint64 nkv;

      if (x->ndim != 3)
        return at_graph_fail (g, op, "x %s must be [L, heads, D] for the caches", dx);
      if (!at_rope_check_caches (g, op, dx, x->shape[1], d, n_q_heads, k_cache, v_cache, &nkv))
        return NULL;
      p.kc = add_src (srcs, &n, k_cache);
      p.vc = add_src (srcs, &n, v_cache);
      p.nq = n_q_heads;
      p.nkv = (gint32) nkv;
    }
  return at_graph_new_node (g, &rope_op, AT_DTYPE_F32, x->ndim, x->shape, srcs, n, &p, sizeof p);
}

AtTensor *
at_rope (AtGraph *g, AtTensor *x, AtTensor *positions, int n_rot, float base, float freq_scale,
         AtRopeMode mode, AtTensor *freq_factors)
{
  return rope_node (g, "rope", x, positions, n_rot, base, freq_scale, mode, freq_factors, 0, NULL,
                    NULL);
}

AtTensor *
at_rope_cache (AtGraph *g, AtTensor *x, AtTensor *positions, int n_rot, float base, float freq_scale,
               AtRopeMode mode, AtTensor *freq_factors, int n_q_heads, AtTensor *k_cache,
               AtTensor *v_cache)
{
  if (k_cache == NULL || v_cache == NULL)
    return at_graph_failed (g) ? NULL : at_graph_fail (g, "rope_cache", "a cache is missing");
  return rope_node (g, "rope_cache", x, positions, n_rot, base, freq_scale, mode, freq_factors,
                    n_q_heads, k_cache, v_cache);
}

/* ---- SwiGLU and GEGLU ---- */

static float
gelu_erf (float x)
{
  return 0.5f * x * erfcf (-x * 0.7071067812f); /* = 1 + erf (z), without its cancellation */
}

static float
gelu_tanh (float x)
{
  return 0.5f * x * (1.0f + tanhf (0.7978845608f * (x + 0.044715f * x * x * x)));
}

static float
silu (float x)
{
  return x / (1.0f + expf (-x));
}

static void
ref_glu (const AtTensor *dst, const float *const *srcs, float *out)
{
  const GluParams *p = (const GluParams *) dst->params;
  gint64 n = at_tensor_numel (dst), half = dst->shape[dst->ndim - 1];

  for (gint64 i = 0; i < n; i++)
    {
      float gate, up;
      if (p->fused)
        {
          /* x row r is [first half | second half], each `half` long. */
          const float *xr = srcs[0] + (i / half) * 2 * half;
          gate = xr[i % half + (p->gate_second ? half : 0)];
          up = xr[i % half + (p->gate_second ? 0 : half)];
        }
      else
        {
          gate = srcs[0][i];
          up = srcs[1][i];
        }
      out[i] = (p->gelu == 1 ? gelu_erf (gate) : p->gelu == 2 ? gelu_tanh (gate) : silu (gate)) * up;
    }
}

/* The stride between rows of [n0, n1, n2, ne[3]] when every outer index maps to row * stride
 * (0 for a single row, or rows broadcast by stride-0 views), or -1. */
static gint64
row_stride (const guint32 ne[4], const guint32 st[4])
{
  gint64 rs = -1, span = 1;

  for (int k = 2; k >= 0; k--)
    {
      if (ne[k] == 1)
        continue;
      if (rs < 0)
        rs = st[k];
      else if (st[k] != rs * span)
        return -1;
      span *= ne[k];
    }
  return rs < 0 ? 0 : rs;
}

enum { GLU_STRIDED, GLU_ROWS, GLU_FLAT };

static gboolean
encode_glu (AtEncoder *enc, AtTensor *dst, GError **error)
{
  const GluParams *p = (const GluParams *) dst->params;
  GluPush push = { 0 };
  AtPipelineDesc desc = { "glu", 5, { WG_ELEMENTWISE, 1, 1, p->gelu, GLU_STRIDED }, 3, sizeof (GluPush) };
  AtBinding b[3];
  guint32 gx, gy, ne[4], w;
  gint64 rg, ru;

  push.n = (guint32) at_tensor_numel (dst);
  if (p->fused)
    {
      /* Both halves are windows on x: same strides, the second starts half a row later. */
      const AtTensor *x = dst->src[0];
      guint32 half = (guint32) dst->shape[dst->ndim - 1], o;
      copy_shape4 (x, ne, push.sg);
      memcpy (push.su, push.sg, sizeof push.su);
      b[0] = at_encoder_bind (enc, x, FALSE, &o, 4);
      b[1] = b[0];
      push.og = o + (p->gate_second ? half * push.sg[3] : 0);
      push.ou = o + (p->gate_second ? 0 : half * push.sg[3]);
    }
  else
    {
      copy_shape4 (dst->src[0], ne, push.sg);
      copy_shape4 (dst->src[1], ne, push.su);
      b[0] = at_encoder_bind (enc, dst->src[0], FALSE, &push.og, 4);
      b[1] = at_encoder_bind (enc, dst->src[1], FALSE, &push.ou, 4);
    }
  copy_shape4 (dst, push.ne, ne);
  b[2] = at_encoder_bind (enc, dst, TRUE, &push.od, 4);

  /* Contiguous rows skip the 4-d index arithmetic; multiples of 4 read vec4s. */
  w = push.ne[3];
  rg = row_stride (push.ne, push.sg);
  ru = row_stride (push.ne, push.su);
  if ((push.sg[3] == 1 || w == 1) && (push.su[3] == 1 || w == 1) && rg >= 0 && ru >= 0
      && rg <= G_MAXUINT32 && ru <= G_MAXUINT32)
    {
      gboolean flat = push.ne[0] * push.ne[1] * push.ne[2] == 1 || (rg == w && ru == w);
      guint32 v = (flat ? push.n : w) % 4 == 0 && rg % 4 == 0 && ru % 4 == 0 && push.og % 4 == 0
                  && push.ou % 4 == 0 && push.od % 4 == 0 ? 4 : 1;
      desc.spec[4] = flat ? GLU_FLAT : GLU_ROWS;
      desc.shader = v == 4 ? "glu_vec4" : "glu";
      push.ne[3] = w / v;
      push.sg[0] = (guint32) rg / v, push.su[0] = (guint32) ru / v;
      push.n /= v, push.og /= v, push.ou /= v, push.od /= v;
    }
  at_encoder_grid (enc, (push.n + WG_ELEMENTWISE - 1) / WG_ELEMENTWISE, &gx, &gy);
  return at_encoder_dispatch (enc, &desc, p->gelu ? "geglu" : "swiglu", &push, b, gx, gy, 1, error);
}

static const AtOp glu_op = { "glu", encode_glu, ref_glu };

/* GluParams.gelu for a kind. */
static guint32
glu_activation (AtGluKind kind)
{
  return kind == AT_GLU_GEGLU ? 1 : kind == AT_GLU_GELU_TANH ? 2 : 0;
}

AtTensor *
at_glu_pair (AtGraph *g, AtTensor *gate, AtTensor *up, AtGluKind kind)
{
  GluParams p = { glu_activation (kind), 0, 0 };
  AtTensor *srcs[2] = { gate, up };
  const char *name = kind == AT_GLU_SWIGLU ? "swiglu" : "glu";

  if (gate == NULL || up == NULL)
    return at_graph_new_node (g, &glu_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, srcs, 2, NULL, 0);
  if (kind != AT_GLU_GEGLU && kind != AT_GLU_SWIGLU && kind != AT_GLU_GELU_TANH)
    return at_graph_fail (g, name, "unknown kind %d", (int) kind);
  if (!check_f32 (g, name, gate) || !check_f32 (g, name, up))
    return NULL;
  if (!at_tensor_same_shape (gate, up))
    {
      g_autofree char *dg = at_tensor_describe (gate), *du = at_tensor_describe (up);
      return at_graph_fail (g, name, "gate %s and up %s differ in shape", dg, du);
    }
  return at_graph_new_node (g, &glu_op, AT_DTYPE_F32, gate->ndim, gate->shape, srcs, 2, &p, sizeof p);
}

AtTensor *
at_swiglu (AtGraph *g, AtTensor *gate, AtTensor *up)
{
  return at_glu_pair (g, gate, up, AT_GLU_SWIGLU);
}

AtTensor *
at_glu (AtGraph *g, AtTensor *x, AtGluKind kind)
{
  GluParams p = { glu_activation (kind), 1, kind == AT_GLU_GEGLU };
  gint64 shape[AT_MAX_DIMS];

  if (x == NULL)
    return at_graph_new_node (g, &glu_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, &x, 1, NULL, 0);
  if (!check_f32 (g, "glu", x))
    return NULL;
  if (kind != AT_GLU_GEGLU && kind != AT_GLU_SWIGLU && kind != AT_GLU_GELU_TANH)
    return at_graph_fail (g, "glu", "unknown kind %d", (int) kind);
  if (x->shape[x->ndim - 1] % 2 != 0)
    {
      g_autofree char *d = at_tensor_describe (x);
      return at_graph_fail (g, "glu", "the last dimension of x %s is odd (it must split in halves)", d);
    }
  memcpy (shape, x->shape, sizeof shape);
  shape[x->ndim - 1] /= 2;
  return at_graph_new_node (g, &glu_op, AT_DTYPE_F32, x->ndim, shape, &x, 1, &p, sizeof p);
}
