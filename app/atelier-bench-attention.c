/* atelier-bench-attention.c: fused attention cases for `atelier bench ops`: Stable Diffusion's
 * 64x64 self-attention (compute-bound) and one LLM decode step against a 4096-key f16 cache
 * (bandwidth-bound). */
#include "atelier-bench-cases.h"

#include <math.h>
#include <string.h>

static gint64
dim (const AtBenchCase *c, const char *name, gint64 fallback)
{
  for (guint i = 0; i < G_N_ELEMENTS (c->dims) && c->dims[i].name != NULL; i++)
    if (strcmp (c->dims[i].name, name) == 0)
      return c->dims[i].value;
  return fallback;
}

/* q [B, H, Lq, D] f32, k and v [B, HK, Lk, D] in `kv`; dims b, h, hk (H, or fewer: grouped
 * query heads), d and l (or lq and lk). */
static gboolean
build_attention (AtGraph *g, const AtBenchCase *c, AtDtype kv, GError **error)
{
  gint64 b = dim (c, "b", 1), h = dim (c, "h", 1), d = dim (c, "d", 64), l = dim (c, "l", 1);
  gint64 lq = dim (c, "lq", l), lk = dim (c, "lk", l), hk = dim (c, "hk", h);
  const gint64 qs[] = { b, h, lq, d }, ks[] = { b, hk, lk, d };
  AtAttentionParams p = { 1.0f / sqrtf ((float) d), FALSE, 0 };
  AtTensor *q = at_bench_input (g, "q", AT_DTYPE_F32, 4, qs, error);
  AtTensor *k = at_bench_input (g, "k", kv, 4, ks, error);
  AtTensor *v = at_bench_input (g, "v", kv, 4, ks, error);

  at_graph_output (g, at_attention (g, q, k, v, NULL, NULL, &p), "o");
  return at_graph_check (g, error);
}

static gboolean
build_f32 (AtGraph *g, const AtBenchCase *c, GError **error)
{
  return build_attention (g, c, AT_DTYPE_F32, error);
}

static gboolean
build_f16 (AtGraph *g, const AtBenchCase *c, GError **error)
{
  return build_attention (g, c, AT_DTYPE_F16, error);
}

const AtBenchCase at_bench_cases_attention[] = {
  /* GFLOP/s = 4 B H Lq Lk D / t (QK^T and PV, a multiply-add counted as 2). */
  { "attention f32 4096 tok d40 h8", "attention", "f32", "f32",
    { { "b", 1 }, { "h", 8 }, { "l", 4096 }, { "d", 40 } }, AT_BENCH_GFLOPS,
    4.0 * 1 * 8 * 4096 * 4096 * 40, 1, build_f32 },
  /* GB/s of the K and V bytes read: 2 B H Lk D x 2 bytes. */
  { "attention decode f16 kv 4096 d128 h32", "attention", "f32", "f16",
    { { "b", 1 }, { "h", 32 }, { "lq", 1 }, { "lk", 4096 }, { "d", 128 } }, AT_BENCH_GBPS,
    2.0 * 1 * 32 * 4096 * 128 * 2, 1, build_f16 },
  /* A token of SmolLM-135M after a 512-token prompt: 9 query heads share 3 kv heads. */
  { "attention decode f16 kv 640 d64 h9 kv3", "attention", "f32", "f16",
    { { "b", 1 }, { "h", 9 }, { "hk", 3 }, { "lq", 1 }, { "lk", 640 }, { "d", 64 } }, AT_BENCH_GBPS,
    2.0 * 1 * 3 * 640 * 64 * 2, 1, build_f16 },
  /* The f32 KV cache of the writer's models (4 bytes an element). */
  { "attention decode f32 kv 4096 d64 h8", "attention", "f32", "f32",
    { { "b", 1 }, { "h", 8 }, { "lq", 1 }, { "lk", 4096 }, { "d", 64 } }, AT_BENCH_GBPS,
    2.0 * 1 * 8 * 4096 * 64 * 4, 1, build_f32 },
  { NULL },
};
