/* at-ops-attention.c: fused attention (flash-style online softmax), optionally split over the
 * keys (split-K) with a combine pass. Shaders: shaders/attention.comp (attention_f16 for f16
 * k/v), shaders/attention_combine.comp. See at-ops-attention.h for the math and the layouts.
 *
 * Graph shape: one "attention" node when the key range is not split; otherwise an
 * "attention_split" node writing partials [B * Lq * Hq, n_splits, D + 2] (acc[D], m, l per
 * split) and an "attention_combine" node that reads them. The combine node keeps q, k, v,
 * mask and kv_len as sources too, so its C reference is the plain formula.
 *
 * Traps: optional sources are packed (a NULL source means a failed op to at_graph_new_node),
 * so params record where mask and kv_len sit in src[]. kv_len is read on the GPU at run time:
 * nothing in the recording may depend on its value.
 */
#include "at-ops-attention.h"

#include <math.h>

#include "at-error.h"

#define MAX_SPLITS 64
#define MIN_KEYS_PER_SPLIT 128
#define MAX_GROUPS 65535

typedef struct
{
  float scale;
  gboolean causal;
  guint32 n_splits;
  float softcap;   /* 0: none */
  guint32 window;  /* 0: none */
  int mask_src;  /* index in src[], or -1 */
  int kvlen_src; /* index in src[], or -1 */
} AttnParams;

/* Mirrors the push-constant blocks of attention.comp and attention_combine.comp. */
typedef struct
{
  guint32 oq, ok, ov, om, ol, oo;
  guint32 sqb, sqh, sqi;
  guint32 skb, skh, skj;
  guint32 svb, svh, svj;
  guint32 smb, smh, smi, smj;
  guint32 lq, lk, hq, g;
  guint32 nsplit, split_len;
  float scale;
  guint32 flags;
  float softcap;
  guint32 window;
} AttnPush;
G_STATIC_ASSERT (sizeof (AttnPush) == 116);

typedef struct
{
  guint32 op, oo, d, nsplit, n;
} CombinePush;
G_STATIC_ASSERT (sizeof (CombinePush) == 20);

/* Sizes of one attention, from its sources. */
typedef struct
{
  gint64 b, hq, hkv, lq, lk, d;
} Dims;

/* The dimensions of q and k (read as 4-d). */
static void
dims_of (const AtTensor *q, const AtTensor *k, Dims *s)
{
  gint64 qs[4], ks[4], st[4];

  at_tensor_shape4 (q, qs, st);
  at_tensor_shape4 (k, ks, st);
  s->b = qs[0];
  s->hq = qs[1];
  s->lq = qs[2];
  s->d = qs[3];
  s->hkv = ks[1];
  s->lk = ks[2];
}

static void
get_dims (const AtTensor *dst, Dims *s)
{
  dims_of (dst->src[0], dst->src[1], s);
}

static gint64
split_len (gint64 lk, guint32 n_splits)
{
  return (lk + n_splits - 1) / n_splits;
}

/* A workgroup is one subgroup of `nl` lanes. Rows on lanes: each lane owns `rpl` query rows,
 * several on lavapipe so every shuffled K/V value feeds several FMAs, one on a GPU (registers).
 * Keys on lanes, when a kv head has fewer query rows than lanes (decode): every lane owns the
 * same `rpl` rows and takes every nl-th key. */
typedef struct
{
  guint32 nl, rpl, rows_per_group;
  gboolean keys_on_lanes;
} Tiles;

static void
choose_tiles (const AtDeviceInfo *info, gint64 d, gint64 rows, Tiles *t)
{
  t->nl = MAX (info->subgroup_size, 4);
  t->keys_on_lanes = rows < t->nl;
  /* Rows x D of q and acc live in registers. Measured on lavapipe at 4096 tokens, D 40 (busy
   * machine): 1 row per lane ~15 GFLOP/s, 2 ~17, 4 10-19 and seconds more of LLVM per
   * pipeline. Keys on lanes: the rows share each lane's K/V loads, so take the GQA group. */
  if (rows == 1 || d > 128 || (!t->keys_on_lanes && info->type != VK_PHYSICAL_DEVICE_TYPE_CPU))
    t->rpl = 1;
  else if (t->keys_on_lanes)
    t->rpl = d <= 64 ? 4 : 2;
  else
    t->rpl = d <= 64 ? 2 : 1;
  t->rows_per_group = t->keys_on_lanes ? t->rpl : t->nl * t->rpl;
}

/* Whether attention_decode.comp takes this attention (the caller also needs f32 K and V in
 * texel views, rows on whole texels): one query position on a CPU device, no mask, no split,
 * at most DECODE_GMAX query heads per kv head, a row in at most 8 texels a lane.
 * ATELIER_ATTENTION_DECODE=0 turns it off (tests compare both kernels). */
#define DECODE_GMAX 8
static gboolean
decode_kernel (const AtDeviceInfo *info, const Dims *n, const AttnParams *p)
{
  return info->type == VK_PHYSICAL_DEVICE_TYPE_CPU && n->lq == 1 && n->d % 4 == 0
         && n->d <= 32 * (gint64) info->subgroup_size && n->hq / n->hkv <= DECODE_GMAX
         && info->subgroup_size >= 4 && info->subgroup_size <= 16
         && p->mask_src < 0 && p->n_splits <= 1
         && g_strcmp0 (g_getenv ("ATELIER_ATTENTION_DECODE"), "0") != 0;
}

/* ---- reference ---- */

typedef struct
{
  Dims n;
  const float *q, *k, *v, *mask; /* contiguous */
  gint64 ms[4];                  /* mask strides over [B, Hq, Lq, Lk], 0 where broadcast */
  gint64 nvalid;
  gboolean causal;
  double scale, softcap;
  gint64 window;
} RefCtx;

static void
ref_init (RefCtx *c, const AtTensor *dst, const float *const *src)
{
  const AttnParams *p = (const AttnParams *) dst->params;

  get_dims (dst, &c->n);
  c->q = src[0];
  c->k = src[1];
  c->v = src[2];
  c->mask = p->mask_src >= 0 ? src[p->mask_src] : NULL;
  c->causal = p->causal;
  c->scale = p->scale;
  c->softcap = p->softcap;
  c->window = p->window;
  c->nvalid = c->n.lk;
  if (p->kvlen_src >= 0)
    c->nvalid = CLAMP ((gint64) src[p->kvlen_src][0], 0, c->n.lk);
  if (c->mask != NULL)
    at_tensor_broadcast_strides (dst->src[p->mask_src], c->ms);
}

/* The score of query (b, h, i) against key j; -INFINITY where j is not visible. */
static double
ref_score (const RefCtx *c, gint64 b, gint64 h, gint64 i, gint64 j)
{
  const Dims *n = &c->n;
  gint64 kvh = h / (n->hq / n->hkv);
  const float *qr = c->q + ((b * n->hq + h) * n->lq + i) * n->d;
  const float *kr = c->k + ((b * n->hkv + kvh) * n->lk + j) * n->d;
  double s = 0;

  if (j >= c->nvalid || (c->causal && j > i + c->nvalid - n->lq)
      || (c->window > 0 && j <= i + c->nvalid - n->lq - c->window))
    return -INFINITY;
  for (gint64 d = 0; d < n->d; d++)
    s += (double) qr[d] * kr[d];
  s *= c->scale;
  if (c->softcap > 0)
    s = c->softcap * tanh (s / c->softcap);
  if (c->mask != NULL)
    s += c->mask[b * c->ms[0] + h * c->ms[1] + i * c->ms[2] + j * c->ms[3]];
  return s;
}

/* Softmax over keys [j0, j1) of one row: writes m (max score), l (sum of e^(s - m)) and
 * acc[d] (sum of e^(s - m) v[j, d]); m = -INFINITY, l = 0, acc = 0 when no key is visible. */
static void
ref_row (const RefCtx *c, gint64 b, gint64 h, gint64 i, gint64 j0, gint64 j1, double *m,
         double *l, double *acc)
{
  const Dims *n = &c->n;
  gint64 kvh = h / (n->hq / n->hkv);

  *m = -INFINITY;
  *l = 0;
  for (gint64 d = 0; d < n->d; d++)
    acc[d] = 0;
  for (gint64 j = j0; j < j1; j++)
    *m = MAX (*m, ref_score (c, b, h, i, j));
  if (*m == -INFINITY)
    return;
  for (gint64 j = j0; j < j1; j++)
    {
      double e = exp (ref_score (c, b, h, i, j) - *m);
      const float *vr = c->v + ((b * n->hkv + kvh) * n->lk + j) * n->d;
      *l += e;
      for (gint64 d = 0; d < n->d; d++)
        acc[d] += e * vr[d];
    }
}

/* out [B, Lq, Hq, D]: the plain formula. */
static void
ref_attention (const AtTensor *dst, const float *const *src, float *out)
{
  RefCtx c;
  g_autofree double *acc = NULL;

  ref_init (&c, dst, src);
  acc = g_new (double, c.n.d);
  for (gint64 b = 0; b < c.n.b; b++)
    for (gint64 h = 0; h < c.n.hq; h++)
      for (gint64 i = 0; i < c.n.lq; i++)
        {
          float *o = out + ((b * c.n.lq + i) * c.n.hq + h) * c.n.d;
          double m, l;
          ref_row (&c, b, h, i, 0, c.n.lk, &m, &l, acc);
          for (gint64 d = 0; d < c.n.d; d++)
            o[d] = l > 0 ? (float) (acc[d] / l) : 0.0f;
        }
}

/* out [B * Lq * Hq, n_splits, D + 2]: per split of the keys, acc[D], m, l (m = -INFINITY and
 * l = 0 for a split with no visible key). */
static void
ref_attention_split (const AtTensor *dst, const float *const *src, float *out)
{
  const AttnParams *p = (const AttnParams *) dst->params;
  RefCtx c;
  g_autofree double *acc = NULL;
  gint64 len;

  ref_init (&c, dst, src);
  len = split_len (c.n.lk, p->n_splits);
  acc = g_new (double, c.n.d);
  for (gint64 b = 0; b < c.n.b; b++)
    for (gint64 h = 0; h < c.n.hq; h++)
      for (gint64 i = 0; i < c.n.lq; i++)
        for (gint64 s = 0; s < p->n_splits; s++)
          {
            gint64 row = (b * c.n.lq + i) * c.n.hq + h;
            float *o = out + (row * p->n_splits + s) * (c.n.d + 2);
            double m, l;
            ref_row (&c, b, h, i, MIN (s * len, c.n.lk), MIN ((s + 1) * len, c.n.lk), &m, &l, acc);
            for (gint64 d = 0; d < c.n.d; d++)
              o[d] = (float) acc[d];
            o[c.n.d] = (float) m;
            o[c.n.d + 1] = (float) l;
          }
}

/* ---- encode ---- */

static void
strides3 (const AtTensor *t, guint32 *sb, guint32 *sh, guint32 *sl)
{
  gint64 shape[4], st[4];

  at_tensor_shape4 (t, shape, st);
  *sb = shape[0] == 1 ? 0 : (guint32) st[0];
  *sh = shape[1] == 1 ? 0 : (guint32) st[1];
  *sl = shape[2] == 1 ? 0 : (guint32) st[2];
}

/* Records attention.comp: the output (SPLIT FALSE) or the partials (`dst` is the split node). */
static gboolean
encode_attention (AtEncoder *enc, AtTensor *dst, GError **error)
{
  const AttnParams *p = (const AttnParams *) dst->params;
  const AtDeviceInfo *info = at_encoder_get_info (enc);
  AtTensor *q = dst->src[0], *k = dst->src[1], *v = dst->src[2];
  gboolean f16 = k->dtype == AT_DTYPE_F16, split = p->n_splits > 1;
  guint kv_unit = f16 ? 2 : 4;
  AttnPush push = { 0 };
  AtBinding b[6];
  Dims n;
  Tiles tl;
  guint32 paired, vec4;
  gboolean texel = FALSE;

  get_dims (dst, &n);
  choose_tiles (info, n.d, n.hq / n.hkv * n.lq, &tl);
  strides3 (q, &push.sqb, &push.sqh, &push.sqi);
  strides3 (k, &push.skb, &push.skh, &push.skj);
  strides3 (v, &push.svb, &push.svh, &push.svj);
  b[0] = at_encoder_bind (enc, q, FALSE, &push.oq, 4);
  /* K and V in texel views on CPU devices when every row starts on a texel of 4 elements: f32
   * in RGBA32UI, f16 in RG32UI (ATELIER_ATTENTION_TEXEL=0 turns it off, for tests). */
  if (info->type == VK_PHYSICAL_DEVICE_TYPE_CPU && n.d % 4 == 0
      && (push.skb | push.skh | push.skj | push.svb | push.svh | push.svj) % 4 == 0
      && g_strcmp0 (g_getenv ("ATELIER_ATTENTION_TEXEL"), "0") != 0)
    {
      VkFormat format = f16 ? VK_FORMAT_R32G32_UINT : VK_FORMAT_R32G32B32A32_UINT;

      texel = at_encoder_bind_texel (enc, k, 0, 0, format, &b[1], &push.ok, kv_unit)
              && at_encoder_bind_texel (enc, v, 0, 0, format, &b[2], &push.ov, kv_unit)
              && push.ok % 4 == 0 && push.ov % 4 == 0;
    }
  if (!texel)
    {
      b[1] = at_encoder_bind (enc, k, FALSE, &push.ok, kv_unit);
      b[2] = at_encoder_bind (enc, v, FALSE, &push.ov, kv_unit);
    }
  if (p->mask_src >= 0)
    {
      AtTensor *mask = dst->src[p->mask_src];
      gint64 shape[4], st[4];
      guint32 *ms[4] = { &push.smb, &push.smh, &push.smi, &push.smj };
      at_tensor_shape4 (mask, shape, st);
      for (int i = 0; i < 4; i++)
        *ms[i] = shape[i] == 1 ? 0 : (guint32) st[i];
      b[3] = at_encoder_bind (enc, mask, FALSE, &push.om, 4);
    }
  else
    b[3] = at_encoder_bind (enc, q, FALSE, NULL, 4); /* unread */
  if (p->kvlen_src >= 0)
    b[4] = at_encoder_bind (enc, dst->src[p->kvlen_src], FALSE, &push.ol, 4);
  else
    b[4] = at_encoder_bind (enc, q, FALSE, NULL, 4); /* unread */
  b[5] = at_encoder_bind (enc, dst, TRUE, &push.oo, 4);
  push.lq = (guint32) n.lq;
  push.lk = (guint32) n.lk;
  push.hq = (guint32) n.hq;
  push.g = (guint32) (n.hq / n.hkv);
  push.nsplit = p->n_splits;
  push.split_len = (guint32) split_len (n.lk, p->n_splits);
  push.scale = p->scale;
  push.flags = (p->causal ? 1 : 0) | (p->mask_src >= 0 ? 2 : 0) | (p->kvlen_src >= 0 ? 4 : 0)
               | (split ? 8 : 0) | (p->softcap > 0 ? 16 : 0) | (p->window > 0 ? 32 : 0);
  push.softcap = p->softcap;
  push.window = p->window;
  /* Halves two per word: only when every row starts on a word. */
  paired = f16 && n.d % 2 == 0 && push.ok % 2 == 0 && push.ov % 2 == 0
           && (push.skb | push.skh | push.skj | push.svb | push.svh | push.svj) % 2 == 0;
  /* Rows of whole 4-element chunks (16 bytes of f32, 8 of f16) that start on one. */
  vec4 = n.d % 4 == 0 && push.ok % 4 == 0 && push.ov % 4 == 0
         && (push.skb | push.skh | push.skj | push.svb | push.svh | push.svj) % 4 == 0;
  if (texel && decode_kernel (info, &n, p))
    {
      /* One query position on a CPU device: attention_decode.comp, a workgroup per kv head. */
      AtPipelineDesc desc = {
        f16 ? "attention_decode_f16" : "attention_decode", 8,
        { tl.nl, 1, 1, (guint32) n.d, push.g, 0, tl.nl, FALSE }, 6, sizeof (AttnPush), 0x6,
      };
      AtBinding k8;
      guint32 ok8;

      /* f16 K rows of whole 8-half texels: RGBA32UI, one fetch for two chunks (K8). */
      if (f16 && n.d % 8 == 0 && (push.skb | push.skh | push.skj) % 8 == 0
          && at_encoder_bind_texel (enc, k, 0, 0, VK_FORMAT_R32G32B32A32_UINT, &k8, &ok8, 2)
          && ok8 % 8 == 0)
        {
          b[1] = k8;
          push.ok = ok8;
          desc.spec[7] = TRUE;
        }
      return at_encoder_dispatch (enc, &desc, "attention_decode", &push, b, 1, 1,
                                  (guint32) (n.b * n.hkv), error);
    }
  {
    AtPipelineDesc desc = {
      texel ? (f16 ? "attention_texel_f16" : "attention_texel")
            : f16 ? "attention_f16" : "attention",
      9,
      { tl.nl, 1, 1, (guint32) n.d, tl.rpl, paired, tl.nl, vec4, tl.keys_on_lanes },
      6, sizeof (AttnPush), texel ? 0x6 : 0,
    };
    guint32 gx = (guint32) ((push.g * n.lq + tl.rows_per_group - 1) / tl.rows_per_group);
    return at_encoder_dispatch (enc, &desc, split ? "attention_split" : "attention", &push, b, gx,
                                p->n_splits, (guint32) (n.b * n.hkv), error);
  }
}

static gboolean
encode_combine (AtEncoder *enc, AtTensor *dst, GError **error)
{
  const AttnParams *p = (const AttnParams *) dst->params;
  AtPipelineDesc desc = { "attention_combine", 3, { 256, 1, 1 }, 2, sizeof (CombinePush) };
  /* The partials follow q, k, v and the optional sources. */
  AtTensor *part = dst->src[3 + (p->mask_src >= 0) + (p->kvlen_src >= 0)];
  CombinePush push = { 0 };
  AtBinding b[2];
  guint32 gx, gy;

  push.d = (guint32) dst->shape[3];
  push.nsplit = p->n_splits;
  push.n = (guint32) at_tensor_numel (dst);
  b[0] = at_encoder_bind (enc, part, FALSE, &push.op, 4);
  b[1] = at_encoder_bind (enc, dst, TRUE, &push.oo, 4);
  at_encoder_grid (enc, (push.n + 255) / 256, &gx, &gy);
  return at_encoder_dispatch (enc, &desc, "attention_combine", &push, b, gx, gy, 1, error);
}

static const AtOp attention_op = { "attention", encode_attention, ref_attention };
static const AtOp attention_split_op = { "attention_split", encode_attention, ref_attention_split };
static const AtOp attention_combine_op = { "attention_combine", encode_combine, ref_attention };

/* ---- constructor ---- */

/* The largest element index of `t` plus one (its extent in elements). */
static gint64
extent (const AtTensor *t)
{
  gint64 e = 1;
  for (int i = 0; i < t->ndim; i++)
    e += (t->shape[i] - 1) * t->stride[i];
  return e;
}

/* Records the error naming `a` (and `b`); returns FALSE. */
static gboolean
fail_shapes (AtGraph *g, const char *what, AtTensor *a, AtTensor *b)
{
  g_autofree char *da = at_tensor_describe (a), *db = b ? at_tensor_describe (b) : NULL;
  at_graph_fail (g, "attention", "%s: %s%s%s", what, da, db ? " and " : "", db ? db : "");
  return FALSE;
}

/* Checks q, k, v, mask and kv_len; fills `n`. */
static gboolean
check_sources (AtGraph *g, AtTensor *q, AtTensor *k, AtTensor *v, AtTensor *mask, AtTensor *kv_len,
               Dims *n)
{
  gint64 qs[4], ks[4], vs[4], st[4];
  AtTensor *all[3] = { q, k, v };

  for (int i = 0; i < 3; i++)
    {
      if (all[i]->ndim < 3)
        return fail_shapes (g, "q, k, v must be [B, H, L, D] (or [H, L, D])", all[i], NULL);
      if (all[i]->shape[all[i]->ndim - 1] > 1 && all[i]->stride[all[i]->ndim - 1] != 1)
        return fail_shapes (g, "D must be contiguous (stride 1)", all[i], NULL);
      if (extent (all[i]) > G_MAXINT32)
        return fail_shapes (g, "more than 2^31 elements", all[i], NULL);
    }
  if (q->dtype != AT_DTYPE_F32)
    return fail_shapes (g, "q must be f32", q, NULL);
  if (k->dtype != v->dtype || (k->dtype != AT_DTYPE_F32 && k->dtype != AT_DTYPE_F16))
    return fail_shapes (g, "k and v must both be f32 or both f16", k, v);
  at_tensor_shape4 (q, qs, st);
  at_tensor_shape4 (k, ks, st);
  at_tensor_shape4 (v, vs, st);
  for (int i = 0; i < 4; i++)
    if (ks[i] != vs[i])
      return fail_shapes (g, "k and v shapes differ", k, v);
  if (qs[3] != ks[3])
    return fail_shapes (g, "head dimension D of q and k differs", q, k);
  if (qs[3] > AT_ATTENTION_MAX_D)
    return fail_shapes (g, "D above 256 is not supported", q, NULL);
  if (qs[0] != ks[0])
    return fail_shapes (g, "batch B of q and k differs", q, k);
  if (qs[1] % ks[1] != 0)
    return fail_shapes (g, "query heads Hq are not a multiple of kv heads Hkv", q, k);
  dims_of (q, k, n);
  if (n->b * n->lq * n->hq * (n->d + 2) * MAX_SPLITS > G_MAXUINT32)
    return fail_shapes (g, "the output has too many elements", q, NULL);
  if (n->b * n->hkv > MAX_GROUPS)
    return fail_shapes (g, "B * Hkv above 65535", k, NULL);
  if (mask != NULL)
    {
      gint64 ms[4], want[4] = { n->b, n->hq, n->lq, n->lk };
      if (mask->dtype != AT_DTYPE_F32 || mask->ndim < 2)
        return fail_shapes (g, "the mask must be f32 [Lq, Lk] or [B, 1, Lq, Lk]", mask, NULL);
      at_tensor_shape4 (mask, ms, st);
      for (int i = 0; i < 4; i++)
        if (ms[i] != want[i] && ms[i] != 1)
          return fail_shapes (g, "the mask does not broadcast to [B, Hq, Lq, Lk] of", mask, q);
      if (extent (mask) > G_MAXINT32)
        return fail_shapes (g, "more than 2^31 elements", mask, NULL);
    }
  if (kv_len != NULL && (kv_len->dtype != AT_DTYPE_I32 || at_tensor_numel (kv_len) != 1))
    return fail_shapes (g, "kv_len must be one i32", kv_len, NULL);
  return TRUE;
}

/* Splits of the key range: enough workgroups to fill the device, each split at least
 * MIN_KEYS_PER_SPLIT keys. None where attention_decode.comp will run: on a CPU device a combine
 * dispatch (~26 us on lavapipe) costs more than the split saves at these sizes. */
static guint32
choose_splits (AtGraph *g, const Dims *n, const AttnParams *ap, int wanted)
{
  const AtDeviceInfo *info = at_device_get_info (at_graph_get_device (g));
  gboolean cpu = info->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
  Tiles tl;
  gint64 groups, target = cpu ? 16 : 256, s;

  if (wanted > 0)
    return (guint32) MIN (MIN (wanted, MAX_SPLITS), n->lk);
  if (decode_kernel (info, n, ap))
    return 1;
  choose_tiles (info, n->d, n->hq / n->hkv * n->lq, &tl);
  groups = n->b * n->hkv * ((n->hq / n->hkv * n->lq + tl.rows_per_group - 1) / tl.rows_per_group);
  if (groups >= target)
    return 1;
  s = MIN ((target + groups - 1) / groups, n->lk / MIN_KEYS_PER_SPLIT);
  return (guint32) CLAMP (s, 1, MAX_SPLITS);
}

AtTensor *
at_attention (AtGraph *g, AtTensor *q, AtTensor *k, AtTensor *v, AtTensor *mask, AtTensor *kv_len,
              const AtAttentionParams *p)
{
  AtTensor *srcs[AT_MAX_SRC] = { q, k, v };
  AttnParams ap = { 0 };
  guint n_srcs = 3;
  Dims n = { 0 };
  gint64 out_shape[4];

  if (q == NULL || k == NULL || v == NULL)
    return at_graph_new_node (g, &attention_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, srcs, 3, NULL, 0);
  if (at_graph_failed (g))
    return NULL; /* a NULL mask or kv_len may be an earlier failure */
  if (p == NULL)
    return at_graph_fail (g, "attention", "no parameters");
  if (p->n_splits < 0 || p->n_splits > MAX_SPLITS)
    return at_graph_fail (g, "attention", "n_splits %d (0 to %d)", p->n_splits, MAX_SPLITS);
  if (p->window < 0 || (p->window > 0 && !p->causal))
    return at_graph_fail (g, "attention", "a sliding window (%d) needs causal attention", p->window);
  if (!(p->softcap >= 0 && p->softcap < INFINITY))
    return at_graph_fail (g, "attention", "softcap %g (0 for none, else positive)", p->softcap);
  if (!check_sources (g, q, k, v, mask, kv_len, &n))
    return NULL;
  {
    const AtDeviceInfo *info = at_device_get_info (at_graph_get_device (g));
    VkSubgroupFeatureFlags need = VK_SUBGROUP_FEATURE_SHUFFLE_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
    Tiles tl;
    choose_tiles (info, n.d, n.hq / n.hkv * n.lq, &tl);
    if (info->subgroup_size < 4 || (info->subgroup_ops & need) != need)
      return at_graph_fail (g, "attention", "the device lacks subgroup shuffles and arithmetic "
                            "(subgroup size %u)", info->subgroup_size);
    if ((n.hq / n.hkv * n.lq + tl.rows_per_group - 1) / tl.rows_per_group > MAX_GROUPS)
      {
        fail_shapes (g, "too many query rows per kv head", q, NULL);
        return NULL;
      }
  }
  ap.scale = p->scale;
  ap.causal = p->causal;
  ap.softcap = p->softcap;
  ap.window = (guint32) p->window;
  ap.mask_src = ap.kvlen_src = -1;
  if (mask != NULL)
    {
      ap.mask_src = (int) n_srcs;
      srcs[n_srcs++] = mask;
    }
  if (kv_len != NULL)
    {
      ap.kvlen_src = (int) n_srcs;
      srcs[n_srcs++] = kv_len;
    }
  ap.n_splits = choose_splits (g, &n, &ap, p->n_splits);
  out_shape[0] = n.b;
  out_shape[1] = n.lq;
  out_shape[2] = n.hq;
  out_shape[3] = n.d;
  if (ap.n_splits > 1)
    {
      gint64 part_shape[3] = { n.b * n.lq * n.hq, ap.n_splits, n.d + 2 };
      srcs[n_srcs] = at_graph_new_node (g, &attention_split_op, AT_DTYPE_F32, 3, part_shape, srcs,
                                        n_srcs, &ap, sizeof ap);
      return at_graph_new_node (g, &attention_combine_op, AT_DTYPE_F32, 4, out_shape, srcs,
                                n_srcs + 1, &ap, sizeof ap);
    }
  return at_graph_new_node (g, &attention_op, AT_DTYPE_F32, 4, out_shape, srcs, n_srcs, &ap,
                            sizeof ap);
}
