/* at-ops-attention.h: fused scaled-dot-product attention that never materialises the
 * [Lq, Lk] score matrix (flash-style online softmax).
 *
 *   out[b, i, h, :] = sum_j softmax_j (cap (scale * q[b, h, i, :] . k[b, h / G, j, :]) + mask[.., i, j])
 *                     * v[b, h / G, j, :]
 *
 * where cap (s) = softcap * tanh (s / softcap) with a softcap (Gemma 2), else s; over the keys
 * j that row i may see: j < kv_len, and with `causal` also j <= i + (kv_len - Lq) (the queries
 * are the last Lq positions of the kv_len valid keys), and with a sliding `window` (causal
 * only) also j > i + (kv_len - Lq) - window: a query sees itself and the window - 1 keys
 * before it.
 * A row that sees no key (fully masked, or kv_len 0) outputs 0, not NaN.
 *
 * Shapes (3-d tensors are read as B = 1):
 *   q        [B, Hq, Lq, D]   f32
 *   k, v     [B, Hkv, Lk, D]  f32 or f16 (both the same), Hq a multiple of Hkv (GQA: query head
 *                             h reads kv head h / (Hq / Hkv))
 *   mask     optional f32, broadcastable to [B, Hq, Lq, Lk] ([Lq, Lk], [B or 1, 1, Lq, Lk], ...);
 *            added to the scaled scores; may hold -INFINITY
 *   kv_len   optional i32 with one element: the number of valid keys at run time (clamped to
 *            Lk), so one compiled graph serves a growing KV cache; NULL means all Lk are valid
 * q, k, v may be strided views (e.g. at_transpose of [B, L, H, D] projections) as long as D is
 * contiguous; D is at most 256.
 *
 * The OUTPUT is [B, Lq, Hq, D] f32, contiguous: heads interleaved per position, NOT
 * [B, Hq, Lq, D]. at_reshape to [B, Lq, Hq * D] is free and feeds the output projection.
 */
#pragma once

#include "at-graph.h"

G_BEGIN_DECLS

#define AT_ATTENTION_MAX_D 256

typedef struct
{
  float scale;      /* usually 1 / sqrt (D) */
  gboolean causal;  /* query i (of Lq) sees keys j <= i + (Lk_valid - Lq) */
  /* Splits of the key range (split-K, combined by a second dispatch): 0 chooses from the
   * device and the shapes; tests set it to exercise both paths. At most 64. */
  int n_splits;
  float softcap;    /* > 0: scores become softcap * tanh (score / softcap) before the mask */
  int window;       /* > 0 (causal only): each query sees at most its last `window` keys */
} AtAttentionParams;

AtTensor *at_attention (AtGraph *g, AtTensor *q, AtTensor *k, AtTensor *v, AtTensor *mask,
                        AtTensor *kv_len, const AtAttentionParams *p);

G_END_DECLS
