/* atelier-bench-norm.c: normalisation, softmax, RoPE and SwiGLU cases for `atelier bench ops`.
 * All are bandwidth-bound: GB/s counts the activation bytes read once and written once. */
#include "atelier-bench-cases.h"

/* rms_norm or layer_norm of x [rows, d] with an f32 weight (and bias). */
static gboolean
build_norm (AtGraph *g, const AtBenchCase *c, GError **error)
{
  const gint64 xs[] = { c->dims[0].value, c->dims[1].value }, ws[] = { c->dims[1].value };
  AtTensor *x = at_bench_input (g, "x", AT_DTYPE_F32, 2, xs, error);
  AtTensor *w = at_bench_weight (g, "w", AT_DTYPE_F32, 1, ws, error);
  AtTensor *y = g_str_equal (c->op, "rms_norm") ? at_rms_norm (g, x, w, 1e-6f)
                                                : at_layer_norm (g, x, w, w, 1e-5f);

  at_graph_output (g, y, "y");
  return at_graph_check (g, error);
}

/* Self-attention scores of CLIP's text encoder: [heads, 77, 77], causal. */
static gboolean
build_softmax (AtGraph *g, const AtBenchCase *c, GError **error)
{
  const gint64 xs[] = { c->dims[0].value, c->dims[1].value, c->dims[2].value };
  AtTensor *x = at_bench_input (g, "x", AT_DTYPE_F32, 3, xs, error);

  at_graph_output (g, at_softmax (g, x, NULL, 0.125f, TRUE), "y");
  return at_graph_check (g, error);
}

/* Stable Diffusion's UNet GroupNorm: [1, 320, 64, 64], 32 groups, f32 affine. */
static gboolean
build_group_norm (AtGraph *g, const AtBenchCase *c, GError **error)
{
  const gint64 xs[] = { 1, c->dims[0].value, c->dims[1].value, c->dims[1].value };
  const gint64 ws[] = { c->dims[0].value };
  AtTensor *x = at_bench_input (g, "x", AT_DTYPE_F32, 4, xs, error);
  AtTensor *w = at_bench_weight (g, "w", AT_DTYPE_F32, 1, ws, error);

  at_graph_output (g, at_group_norm (g, x, (int) c->dims[2].value, w, w, 1e-5f), "y");
  return at_graph_check (g, error);
}

/* Llama's query RoPE over a 512-token prompt: [1, 512, 32, 128], neox off. */
static gboolean
build_rope (AtGraph *g, const AtBenchCase *c, GError **error)
{
  const gint64 xs[] = { 1, c->dims[0].value, c->dims[1].value, c->dims[2].value };
  const gint64 ps[] = { c->dims[0].value };
  AtTensor *x = at_bench_input (g, "x", AT_DTYPE_F32, 4, xs, error);
  AtTensor *p = at_bench_input (g, "pos", AT_DTYPE_I32, 1, ps, error);

  at_graph_output (g, at_rope (g, x, p, (int) c->dims[2].value, 10000.0f, 1.0f, AT_ROPE_NORMAL, NULL),
                   "y");
  return at_graph_check (g, error);
}

/* Llama's feed-forward gate: silu(gate) * up over [rows, 11008]. */
static gboolean
build_swiglu (AtGraph *g, const AtBenchCase *c, GError **error)
{
  const gint64 xs[] = { c->dims[0].value, c->dims[1].value };
  AtTensor *gate = at_bench_input (g, "gate", AT_DTYPE_F32, 2, xs, error);
  AtTensor *up = at_bench_input (g, "up", AT_DTYPE_F32, 2, xs, error);

  at_graph_output (g, at_swiglu (g, gate, up), "y");
  return at_graph_check (g, error);
}

const AtBenchCase at_bench_cases_norm[] = {
  { "rms_norm f32 [512, 4096]", "rms_norm", "f32", "f32", { { "rows", 512 }, { "d", 4096 } },
    AT_BENCH_GBPS, 2.0 * 4 * 512 * 4096, 1, build_norm },
  { "layer_norm f32 [512, 4096]", "layer_norm", "f32", "f32", { { "rows", 512 }, { "d", 4096 } },
    AT_BENCH_GBPS, 2.0 * 4 * 512 * 4096, 1, build_norm },
  { "softmax causal [8, 77, 77]", "softmax", "f32", NULL, { { "h", 8 }, { "lq", 77 }, { "lk", 77 } },
    AT_BENCH_US, 0, 1, build_softmax },
  { "softmax [8, 1024, 1024]", "softmax", "f32", NULL, { { "h", 8 }, { "lq", 1024 }, { "lk", 1024 } },
    AT_BENCH_GBPS, 2.0 * 4 * 8 * 1024 * 1024, 1, build_softmax },
  { "group_norm 32 groups [1, 320, 64, 64]", "group_norm", "f32", "f32",
    { { "c", 320 }, { "hw", 64 }, { "groups", 32 } }, AT_BENCH_GBPS, 2.0 * 4 * 320 * 64 * 64, 1,
    build_group_norm },
  { "rope [1, 512, 32, 128]", "rope", "f32", NULL, { { "l", 512 }, { "h", 32 }, { "d", 128 } },
    AT_BENCH_GBPS, 2.0 * 4 * 512 * 32 * 128, 1, build_rope },
  { "swiglu [512, 11008]", "swiglu", "f32", NULL, { { "rows", 512 }, { "d", 11008 } }, AT_BENCH_GBPS,
    3.0 * 4 * 512 * 11008, 1, build_swiglu },
  { NULL },
};
