/* at-ops-elementwise.c: binary ops with broadcasting and unary activations.
 * Shaders: shaders/binary.comp, shaders/unary.comp. */
#include "at-ops-elementwise.h"

#include <math.h>

#include "at-error.h"

#define WG 256

enum { BIN_ADD, BIN_MUL, BIN_SUB, BIN_DIV };
enum { UN_SCALE, UN_GELU, UN_QUICK_GELU, UN_SILU, UN_TANH, UN_RELU, UN_GELU_ERF };

typedef struct
{
  guint32 op;
  gint64 sa[4], sb[4]; /* broadcast strides in elements, 4-d */
} BinaryParams;

typedef struct
{
  guint32 op;
  float scale, bias;
} UnaryParams;

/* Mirrors of the shaders' push-constant blocks. */
typedef struct
{
  guint32 ne[4], sa[4], sb[4];
  guint32 oa, ob, od, n;
} BinaryPush;
G_STATIC_ASSERT (sizeof (BinaryPush) == 64);

typedef struct
{
  guint32 ne[4], sa[4];
  guint32 oa, od, n;
  float scale, bias;
} UnaryPush;
G_STATIC_ASSERT (sizeof (UnaryPush) == 52);

static const char *const binary_names[] = { "add", "mul", "sub", "div" };
static const char *const unary_names[] = { "scale", "gelu", "quick_gelu", "silu", "tanh", "relu", "gelu_erf" };

static gboolean
check_f32 (AtGraph *g, const char *op, AtTensor *t)
{
  if (t != NULL && t->dtype != AT_DTYPE_F32)
    {
      at_graph_fail (g, op, "%s is %s; elementwise ops take f32 (convert with at_cast)", t->name,
                     at_dtype_name (t->dtype));
      return FALSE;
    }
  return TRUE;
}

static gboolean
fits_u32 (AtTensor *t)
{
  return at_tensor_numel (t) < G_MAXUINT32;
}

/* ---- binary ---- */

static float
apply_binary (guint32 op, float x, float y)
{
  switch (op)
    {
    case BIN_ADD:
      return x + y;
    case BIN_MUL:
      return x * y;
    case BIN_SUB:
      return x - y;
    default:
      return x / y;
    }
}

static void
ref_binary (const AtTensor *dst, const float *const *src, float *out)
{
  const BinaryParams *p = (const BinaryParams *) dst->params;
  gint64 ne[4], st[4], n = 0, sa[4], sb[4];

  at_tensor_shape4 (dst, ne, st);
  at_tensor_broadcast_strides (dst->src[0], sa);
  at_tensor_broadcast_strides (dst->src[1], sb);
  for (gint64 i0 = 0; i0 < ne[0]; i0++)
    for (gint64 i1 = 0; i1 < ne[1]; i1++)
      for (gint64 i2 = 0; i2 < ne[2]; i2++)
        for (gint64 i3 = 0; i3 < ne[3]; i3++)
          out[n++] = apply_binary (p->op, src[0][i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + i3 * sa[3]],
                                   src[1][i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + i3 * sb[3]]);
}

static gboolean
encode_binary (AtEncoder *enc, AtTensor *dst, GError **error)
{
  const BinaryParams *p = (const BinaryParams *) dst->params;
  AtTensor *a = dst->src[0], *bb = dst->src[1];
  gboolean contig = at_tensor_same_shape (a, dst) && at_tensor_same_shape (bb, dst)
                    && at_tensor_is_contiguous (a) && at_tensor_is_contiguous (bb);
  AtPipelineDesc desc = { "binary", 5, { WG, 1, 1, p->op, contig }, 3, sizeof (BinaryPush) };
  gint64 ne[4], st[4];
  BinaryPush push = { 0 };
  AtBinding b[3];
  guint32 gx, gy;

  at_tensor_shape4 (dst, ne, st);
  for (int i = 0; i < 4; i++)
    {
      push.ne[i] = (guint32) ne[i];
      push.sa[i] = (guint32) p->sa[i];
      push.sb[i] = (guint32) p->sb[i];
    }
  push.n = (guint32) at_tensor_numel (dst);
  b[0] = at_encoder_bind (enc, dst->src[0], FALSE, &push.oa, 4);
  b[1] = at_encoder_bind (enc, dst->src[1], FALSE, &push.ob, 4);
  b[2] = at_encoder_bind (enc, dst, TRUE, &push.od, 4);
  /* Four elements an invocation when everything is contiguous and vec4-aligned. */
  if (contig && push.n % 4 == 0 && push.oa % 4 == 0 && push.ob % 4 == 0 && push.od % 4 == 0)
    {
      desc.shader = "binary_vec4";
      push.n /= 4;
      push.oa /= 4;
      push.ob /= 4;
      push.od /= 4;
    }
  at_encoder_grid (enc, (push.n + WG - 1) / WG, &gx, &gy);
  return at_encoder_dispatch (enc, &desc, binary_names[p->op], &push, b, gx, gy, 1, error);
}

static const AtOp binary_op = { "binary", encode_binary, ref_binary };

static AtTensor *
binary (AtGraph *g, guint32 op, AtTensor *a, AtTensor *b)
{
  const char *name = binary_names[op];
  BinaryParams p = { op };
  gint64 shape[AT_MAX_DIMS], as[4], ast[4], bs[4], bst[4];
  int ndim;
  AtTensor *srcs[2] = { a, b };

  if (a == NULL || b == NULL)
    return at_graph_new_node (g, &binary_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, srcs, 2, NULL, 0);
  if (!check_f32 (g, name, a) || !check_f32 (g, name, b))
    return NULL;
  ndim = MAX (a->ndim, b->ndim);
  at_tensor_shape4 (a, as, ast);
  at_tensor_shape4 (b, bs, bst);
  for (int i = 0; i < 4; i++)
    {
      if (as[i] != bs[i] && as[i] != 1 && bs[i] != 1)
        {
          g_autofree char *da = at_tensor_describe (a), *db = at_tensor_describe (b);
          return at_graph_fail (g, name, "shapes do not broadcast: %s and %s", da, db);
        }
      p.sa[i] = as[i] == 1 ? 0 : ast[i];
      p.sb[i] = bs[i] == 1 ? 0 : bst[i];
      if (i >= 4 - ndim)
        shape[i - (4 - ndim)] = MAX (as[i], bs[i]);
    }
  {
    AtTensor *t = at_graph_new_node (g, &binary_op, AT_DTYPE_F32, ndim, shape, srcs, 2, &p, sizeof p);
    if (t != NULL && !fits_u32 (t))
      return at_graph_fail (g, name, "more than 2^32 elements");
    return t;
  }
}

AtTensor *
at_add (AtGraph *g, AtTensor *a, AtTensor *b)
{
  return binary (g, BIN_ADD, a, b);
}

AtTensor *
at_sub (AtGraph *g, AtTensor *a, AtTensor *b)
{
  return binary (g, BIN_SUB, a, b);
}

AtTensor *
at_mul (AtGraph *g, AtTensor *a, AtTensor *b)
{
  return binary (g, BIN_MUL, a, b);
}

AtTensor *
at_div (AtGraph *g, AtTensor *a, AtTensor *b)
{
  return binary (g, BIN_DIV, a, b);
}

/* ---- unary ---- */

static float
apply_unary (guint32 op, float x)
{
  switch (op)
    {
    case UN_GELU:
      return 0.5f * x * (1.0f + tanhf (0.7978845608f * (x + 0.044715f * x * x * x)));
    case UN_GELU_ERF:
      return 0.5f * x * erfcf (-x * 0.7071067812f); /* = 1 + erf (z), without its cancellation */
    case UN_QUICK_GELU:
      return x / (1.0f + expf (-1.702f * x));
    case UN_SILU:
      return x / (1.0f + expf (-x));
    case UN_TANH:
      return tanhf (x);
    case UN_RELU:
      return x > 0 ? x : 0;
    default:
      return x;
    }
}

static void
ref_unary (const AtTensor *dst, const float *const *src, float *out)
{
  const UnaryParams *p = (const UnaryParams *) dst->params;
  gint64 n = at_tensor_numel (dst);

  for (gint64 i = 0; i < n; i++)
    out[i] = apply_unary (p->op, src[0][i] * p->scale + p->bias);
}

static gboolean
encode_unary (AtEncoder *enc, AtTensor *dst, GError **error)
{
  const UnaryParams *p = (const UnaryParams *) dst->params;
  gboolean contig = at_tensor_is_contiguous (dst->src[0]);
  AtPipelineDesc desc = { "unary", 5, { WG, 1, 1, p->op, contig }, 2, sizeof (UnaryPush) };
  gint64 ne[4], st[4];
  UnaryPush push = { 0 };
  AtBinding b[2];
  guint32 gx, gy;

  at_tensor_shape4 (dst->src[0], ne, st);
  for (int i = 0; i < 4; i++)
    {
      push.ne[i] = (guint32) ne[i];
      push.sa[i] = (guint32) st[i];
    }
  push.n = (guint32) at_tensor_numel (dst);
  push.scale = p->scale;
  push.bias = p->bias;
  b[0] = at_encoder_bind (enc, dst->src[0], FALSE, &push.oa, 4);
  b[1] = at_encoder_bind (enc, dst, TRUE, &push.od, 4);
  if (contig && push.n % 4 == 0 && push.oa % 4 == 0 && push.od % 4 == 0)
    {
      desc.shader = "unary_vec4";
      push.n /= 4;
      push.oa /= 4;
      push.od /= 4;
    }
  at_encoder_grid (enc, (push.n + WG - 1) / WG, &gx, &gy);
  return at_encoder_dispatch (enc, &desc, unary_names[p->op], &push, b, gx, gy, 1, error);
}

static const AtOp unary_op = { "unary", encode_unary, ref_unary };

static AtTensor *
unary (AtGraph *g, guint32 op, AtTensor *a, float scale, float bias)
{
  UnaryParams p = { op, scale, bias };
  AtTensor *t;

  if (a == NULL)
    return at_graph_new_node (g, &unary_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, &a, 1, NULL, 0);
  if (!check_f32 (g, unary_names[op], a))
    return NULL;
  t = at_graph_new_node (g, &unary_op, AT_DTYPE_F32, a->ndim, a->shape, &a, 1, &p, sizeof p);
  if (t != NULL && !fits_u32 (t))
    return at_graph_fail (g, unary_names[op], "more than 2^32 elements");
  return t;
}

AtTensor *
at_scale (AtGraph *g, AtTensor *a, float scale)
{
  return unary (g, UN_SCALE, a, scale, 0);
}

AtTensor *
at_affine (AtGraph *g, AtTensor *a, float scale, float bias)
{
  return unary (g, UN_SCALE, a, scale, bias);
}

AtTensor *
at_gelu (AtGraph *g, AtTensor *a)
{
  return unary (g, UN_GELU, a, 1, 0);
}

AtTensor *
at_gelu_erf (AtGraph *g, AtTensor *a)
{
  return unary (g, UN_GELU_ERF, a, 1, 0);
}

AtTensor *
at_quick_gelu (AtGraph *g, AtTensor *a)
{
  return unary (g, UN_QUICK_GELU, a, 1, 0);
}

AtTensor *
at_silu (AtGraph *g, AtTensor *a)
{
  return unary (g, UN_SILU, a, 1, 0);
}

AtTensor *
at_tanh (AtGraph *g, AtTensor *a)
{
  return unary (g, UN_TANH, a, 1, 0);
}

AtTensor *
at_relu (AtGraph *g, AtTensor *a)
{
  return unary (g, UN_RELU, a, 1, 0);
}

AtTensor *
at_cont (AtGraph *g, AtTensor *a)
{
  return unary (g, UN_SCALE, a, 1, 0);
}
