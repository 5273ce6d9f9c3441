/* atelier-bench-matmul.c: GEMM (GFLOP/s = 2 M N K / t) and matrix-vector (GB/s of weight bytes
 * read) speed of at_matmul. */
#include "atelier-bench-cases.h"

/* d [m, n] = a [m, k] @ b [n, k]^T; dims are m, n, k (GEMM) or rows, cols (matrix-vector). */
static gboolean
build_matmul (AtGraph *g, const AtBenchCase *c, GError **error)
{
  gboolean mv = g_str_equal (c->op, "matvec");
  gint64 m = mv ? 1 : c->dims[0].value;
  gint64 n = c->dims[mv ? 0 : 1].value, k = c->dims[mv ? 1 : 2].value;
  const gint64 sa[] = { m, k }, sb[] = { n, k };
  AtTensor *a = at_bench_input (g, "a", at_dtype_from_name (c->dtype), 2, sa, error);
  AtTensor *b = at_bench_weight (g, "b", at_dtype_from_name (c->wtype), 2, sb, error);

  if (b == NULL)
    return FALSE;
  at_graph_output (g, at_matmul (g, a, b), "d");
  return at_graph_check (g, error);
}

#define GEMM(wt, M, N, K)                                                                          \
  { "matmul " wt " " #M "x" #N "x" #K, "matmul", "f32", wt,                                      \
    { { "m", M }, { "n", N }, { "k", K } }, AT_BENCH_GFLOPS, 2.0 * M * N * K, 1, build_matmul }
/* Weight bytes of a rows x cols matrix: cols / block * block bytes per row. */
#define MATVEC(wt, R, C, block, bytes)                                                             \
  { "matvec " wt " " #R "x" #C, "matvec", "f32", wt, { { "rows", R }, { "cols", C } },            \
    AT_BENCH_GBPS, (double) R * (C / block) * bytes, 1, build_matmul }

const AtBenchCase at_bench_cases_matmul[] = {
  GEMM ("f32", 1024, 1024, 1024),
  GEMM ("f32", 2048, 2048, 2048),
  GEMM ("f32", 4096, 320, 320),
  GEMM ("f32", 77, 3072, 768),
  GEMM ("f16", 1024, 1024, 1024),
  GEMM ("f16", 2048, 2048, 2048),
  GEMM ("f16", 4096, 320, 320),
  GEMM ("f16", 77, 3072, 768),
  /* A language model's prompt: SmolLM-135M's gate / up and down projections (q8_0, rows of
   * 612 and 1632 bytes), TinyLlama-1.1B's attention (q4_0), 512 tokens. */
  GEMM ("q8_0", 512, 1536, 576),
  GEMM ("q8_0", 512, 576, 1536),
  GEMM ("q4_0", 512, 2048, 2048),
  MATVEC ("f32", 4096, 4096, 1, 4),
  MATVEC ("f16", 4096, 4096, 1, 2),
  MATVEC ("q8_0", 4096, 4096, 32, 34),
  /* SmolLM-135M's feed-forward: rows of 612 bytes, not whole texels. */
  MATVEC ("q8_0", 1536, 576, 32, 34),
  /* Its down projection, and TinyLlama-1.1B's attention (K of 8 steps: unrolled code). */
  MATVEC ("q8_0", 576, 1536, 32, 34),
  MATVEC ("q8_0", 2048, 2048, 32, 34),
  MATVEC ("q4_0", 4096, 4096, 32, 18),
  /* TinyLlama-1.1B's (its Q4_0 file): attention, gate and up stacked, the down projection
   * (K of 22 steps: the run-time loop). */
  MATVEC ("q4_0", 2048, 2048, 32, 18),
  MATVEC ("q4_0", 11264, 2048, 32, 18),
  MATVEC ("q4_0", 2048, 5632, 32, 18),
  MATVEC ("q4_K", 4096, 4096, 256, 144),
  /* Q4_K_M files keep some tensors (the output, half the down projections) in q6_K. */
  MATVEC ("q6_K", 4096, 4096, 256, 210),
  { NULL },
};

/* Matrix-vector products as a model runs them: a chain of distinct square weights, d_i =
 * d_(i-1) @ b_i^T, together larger than the caches, so every weight comes from RAM. */
static gboolean
build_matvec_chain (AtGraph *g, const AtBenchCase *c, GError **error)
{
  gint64 k = c->dims[0].value;
  const gint64 sa[] = { 1, k }, sb[] = { k, k };
  AtTensor *a = at_bench_input (g, "a", AT_DTYPE_F32, 2, sa, error);

  for (gint64 i = 0; a != NULL && i < c->dims[1].value; i++)
    {
      g_autofree char *name = g_strdup_printf ("b%" G_GINT64_FORMAT, i);
      AtTensor *b = at_bench_weight (g, name, at_dtype_from_name (c->wtype), 2, sb, error);

      if (b == NULL)
        return FALSE;
      a = at_matmul (g, a, b);
    }
  at_graph_output (g, a, "d");
  return at_graph_check (g, error);
}

/* n square matrices of side k, weight bytes read per run. */
#define MATVEC_RAM(wt, K, N, block, bytes)                                                         \
  { "matvec " wt " " #K "x" #K " x" #N " from RAM", "matvec", "f32", wt,                           \
    { { "cols", K }, { "matrices", N } }, AT_BENCH_GBPS, (double) N * K * (K / block) * bytes, 1,   \
    build_matvec_chain }

const AtBenchCase at_bench_cases_matvec_ram[] = {
  MATVEC_RAM ("q8_0", 4096, 4, 32, 34),
  MATVEC_RAM ("q4_0", 4096, 4, 32, 18),
  MATVEC_RAM ("q4_K", 4096, 4, 256, 144),
  /* SmolLM-135M's down projection's K, 30 layers. */
  MATVEC_RAM ("q8_0", 1536, 30, 32, 34),
  { NULL },
};
