/* test-matmul.c: at_matmul on every weight dtype and every kernel (forced with
 * ATELIER_MATMUL_PATH), against the C reference (double accumulation over the dequantised
 * weights, so quantised weights get tight tolerances too), at sizes that are not multiples of
 * the tiles; f16 activations, batches with broadcasting and GQA, strided a and b, weights split
 * into several bindings (ATELIER_MAX_BINDING_BYTES, ATELIER_MAX_TEXEL_ELEMENTS), the fused
 * add of at_matmul_add, norm of at_matmul_rms, SwiGLU of at_matmul_swiglu and RoPE with the
 * KV cache writes of at_matmul_rope_cache, and shape errors. */
#include "at-test-util.h"

#include <string.h>

/* The matrix-vector kernel and the CPU GEMM each read storage buffers (GPUs) or texel buffers
 * (CPU devices). */
static const char *const paths[] = { "matvec-storage", "matvec-texel", "gemm-cpu-storage",
                                     "gemm-cpu-texel", "gemm-gpu", "matvec-multi" };

/* A variant this device does not use by default (storage on CPU devices, texel on GPUs):
 * tested on a few cases only, since each pipeline costs a JIT compile on lavapipe; the GPU
 * runs cover it fully. */
static gboolean
is_other_variant (const char *path)
{
  AtDevice *dev = at_test_device ();
  gboolean cpu = dev != NULL && at_device_get_info (dev)->type == VK_PHYSICAL_DEVICE_TYPE_CPU;

  return g_str_has_suffix (path, cpu ? "-storage" : "-texel");
}

static const AtDtype wtypes[] = {
  AT_DTYPE_F32, AT_DTYPE_F16, AT_DTYPE_BF16, AT_DTYPE_Q8_0, AT_DTYPE_Q4_0, AT_DTYPE_Q4_1,
  AT_DTYPE_Q5_0, AT_DTYPE_Q5_1, AT_DTYPE_Q4_K, AT_DTYPE_Q5_K, AT_DTYPE_Q6_K,
};

/* a [M, K] of `atype` @ weight [N, K] of `wtype`, on kernel `path`; returns the number of
 * dispatches it took. One dot product (M = N = 1) takes positive operands: the NMSE of one
 * random signed sum is ill-conditioned when it cancels to near zero (2.3e-6 once, bf16 at K
 * 32), where the rounding of a sum of positive terms stays near f32's epsilon. */
static guint
check_2d (const char *path, AtDtype atype, AtDtype wtype, gint64 M, gint64 N, gint64 K, double tol)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  const gint64 sa[] = { M, K }, sb[] = { N, K };
  double lo = M == 1 && N == 1 ? 0.25 : -1;
  g_autofree char *what = NULL;
  AtTensor *a, *b;

  if (dev == NULL)
    return 0;
  g_setenv ("ATELIER_MATMUL_PATH", path, TRUE);
  g = at_graph_new (dev);
  a = at_test_input (g, "a", atype, 2, sa, lo, 1);
  b = at_test_weight (g, "w", wtype, 2, sb, lo, 1);
  what = g_strdup_printf ("%s a %s w %s M=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT
                          " K=%" G_GINT64_FORMAT, path, at_dtype_name (atype),
                          at_dtype_name (wtype), M, N, K);
  at_test_assert_nmse (at_test_run (g, at_matmul (g, a, b)), tol, what);
  g_unsetenv ("ATELIER_MATMUL_PATH");
  return at_command_get_n_dispatches (at_graph_get_command (g));
}

static void
test_dtypes (void)
{
  /* M, N, K (K in units of 32, or 256 for K-quants: 1, 3, 9 blocks). All three weight
   * kernels run at every size, matvec included (it loops over M in groups of 4). */
  static const gint64 sizes[][3] = { { 1, 1, 1 }, { 3, 31, 3 }, { 17, 67, 9 }, { 70, 129, 3 } };

  for (guint p = 0; p < G_N_ELEMENTS (paths); p++)
    for (guint w = 0; w < G_N_ELEMENTS (wtypes); w++)
      for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
        {
          guint block = at_dtype_info (wtypes[w])->block_size == 256 ? 256 : 32;
          double tol = wtypes[w] == AT_DTYPE_F32 ? 1e-10 : 1e-9;

          /* The cross-subgroup fold does not depend on the dtype: a few keep the test short
           * (each pipeline costs a JIT compile on lavapipe); the same for the other variant. */
          if ((g_str_equal (paths[p], "matvec-multi") || is_other_variant (paths[p]))
              && wtypes[w] != AT_DTYPE_F32 && wtypes[w] != AT_DTYPE_Q8_0 && wtypes[w] != AT_DTYPE_Q4_K)
            continue;
          check_2d (paths[p], AT_DTYPE_F32, wtypes[w], sizes[s][0], sizes[s][1],
                    sizes[s][2] * block, tol);
        }
}

static void
test_odd_k (void)
{
  /* Plain weights take any K: tails of 1..3 elements past the last group of four. */
  static const gint64 ks[] = { 1, 5, 77, 130 };

  for (guint p = 0; p < G_N_ELEMENTS (paths); p++)
    for (guint i = 0; i < G_N_ELEMENTS (ks); i++)
      {
        check_2d (paths[p], AT_DTYPE_F32, AT_DTYPE_F32, 9, 33, ks[i], 1e-10);
        if (is_other_variant (paths[p]))
          continue;
        check_2d (paths[p], AT_DTYPE_F16, AT_DTYPE_F16, 9, 33, ks[i], 1e-6);
        check_2d (paths[p], AT_DTYPE_F32, AT_DTYPE_BF16, 2, 5, ks[i], 1e-9);
      }
}

static void
test_texel_groups (void)
{
  /* q8_0 / q4_0 with K % 256 == 0, and q4_K, are read 256 elements per texel group on the
   * texel kernel for a vector (8 rows of b a workgroup; N is no multiple of that). test_dtypes
   * covers q4_K and the f16 / bf16 texels; few pipelines here, as each is a long JIT compile
   * on lavapipe. */
  check_2d ("matvec-texel", AT_DTYPE_F32, AT_DTYPE_Q8_0, 1, 37, 256, 1e-9);
  check_2d ("matvec-texel", AT_DTYPE_F32, AT_DTYPE_Q8_0, 1, 5, 768, 1e-9);
  check_2d ("matvec-texel", AT_DTYPE_F16, AT_DTYPE_Q4_0, 1, 21, 512, 1e-6);
  /* f32 rows that miss the 16-byte texels: word texels. */
  check_2d ("matvec-texel", AT_DTYPE_F32, AT_DTYPE_F32, 1, 37, 258, 1e-10);
}

static void
test_vector_rows (void)
{
  /* A vector times q8_0 / q4_0 (and q4_K, whose rows are whole texels) on the texel path: lanes own rows (matvec_rows.comp). Rows of
   * 34 K / 32 (18 K / 32) bytes start 0, 2, 4 or 8 bytes into a texel in turn (1, 8, 4, 2
   * passes of rows); K / 32 % 8 blocks follow the whole steps of 8; N leaves lanes and passes
   * without rows. Up to 8 steps (K 2303) are unrolled code, more a run-time loop (K 2336).
   * N is 2, not 1: the NMSE of one random dot product is ill-conditioned when the sum cancels
   * to near zero (an ASan run failed so, 1.3e-9 at K 576). */
  static const gint64 ks[] = { 32, 64, 128, 256, 320, 544, 576, 2080, 1536, 2336 };
  static const gint64 ns[] = { 2, 67, 131 };

  for (guint i = 0; i < G_N_ELEMENTS (ks); i++)
    {
      check_2d ("matvec-texel", AT_DTYPE_F32, AT_DTYPE_Q8_0, 1, ns[i % G_N_ELEMENTS (ns)], ks[i], 1e-9);
      check_2d ("matvec-texel", AT_DTYPE_F32, AT_DTYPE_Q4_0, 1, ns[(i + 1) % G_N_ELEMENTS (ns)], ks[i], 1e-9);
      if (ks[i] % 256 == 0)
        check_2d ("matvec-texel", AT_DTYPE_F32, AT_DTYPE_Q4_K, 1, ns[(i + 2) % G_N_ELEMENTS (ns)], ks[i], 1e-9);
    }
  /* q8_0, q4_0 and q4_K take a quantised to 8 bits there (QA8); f32 a (ATELIER_MATMUL_QA8=0)
   * through the run-time loop over K here, and unrolled in test-llm's models. */
  g_setenv ("ATELIER_MATMUL_QA8", "0", TRUE);
  check_2d ("matvec-texel", AT_DTYPE_F32, AT_DTYPE_Q8_0, 1, 131, 2336, 1e-9);
  g_unsetenv ("ATELIER_MATMUL_QA8");
  /* q6_K, read as words: rows of 210 K / 256 bytes start on odd halfwords when K / 256 is
   * odd, and every odd super-block of a row does. */
  check_2d ("matvec-texel", AT_DTYPE_F32, AT_DTYPE_Q6_K, 1, 67, 256, 1e-9);
  check_2d ("matvec-texel", AT_DTYPE_F32, AT_DTYPE_Q6_K, 1, 131, 768, 1e-9);
  check_2d ("matvec-texel", AT_DTYPE_F32, AT_DTYPE_Q6_K, 1, 2, 1536, 1e-9);
}

static void
test_f16_activations (void)
{
  for (guint p = 0; p < G_N_ELEMENTS (paths); p++)
    {
      if (is_other_variant (paths[p]))
        continue;
      check_2d (paths[p], AT_DTYPE_F16, AT_DTYPE_F32, 17, 67, 96, 1e-6);
      check_2d (paths[p], AT_DTYPE_F16, AT_DTYPE_F16, 70, 31, 288, 1e-6);
      check_2d (paths[p], AT_DTYPE_F16, AT_DTYPE_Q8_0, 3, 129, 96, 1e-6);
      check_2d (paths[p], AT_DTYPE_F16, AT_DTYPE_Q4_K, 5, 31, 512, 1e-6);
    }
}

/* a [sa] @ b [sb]^T with batch broadcasting; b is an input (activations in attention). */
static void
check_batched (const char *path, AtDtype wtype, int na, const gint64 *sa, int nb, const gint64 *sb,
               const char *what)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  g_autofree char *full = NULL;
  AtTensor *a, *b;

  if (dev == NULL)
    return;
  g_setenv ("ATELIER_MATMUL_PATH", path, TRUE);
  g = at_graph_new (dev);
  a = at_test_input (g, "a", AT_DTYPE_F32, na, sa, -1, 1);
  b = at_test_weight (g, "b", wtype, nb, sb, -1, 1);
  full = g_strdup_printf ("%s %s %s", what, path, at_dtype_name (wtype));
  at_test_assert_nmse (at_test_run (g, at_matmul (g, a, b)), 1e-9, full);
  g_unsetenv ("ATELIER_MATMUL_PATH");
}

static void
test_batched (void)
{
  const gint64 a4[] = { 2, 6, 5, 64 }, b4_gqa[] = { 2, 3, 19, 64 }, b4_one[] = { 1, 1, 19, 64 };
  const gint64 b2[] = { 19, 64 }, a4_bc[] = { 1, 3, 5, 64 }, b4_full[] = { 2, 3, 19, 64 };
  const gint64 a3[] = { 4, 18, 32 }, b3[] = { 2, 7, 32 };

  for (guint p = 0; p < G_N_ELEMENTS (paths); p++)
    {
      if (is_other_variant (paths[p]))
        continue;
      check_batched (paths[p], AT_DTYPE_F32, 4, a4, 4, b4_gqa, "GQA 6/3");
      check_batched (paths[p], AT_DTYPE_Q8_0, 4, a4, 4, b4_gqa, "GQA 6/3");
      check_batched (paths[p], AT_DTYPE_F16, 4, a4, 4, b4_one, "b batch 1");
      check_batched (paths[p], AT_DTYPE_F32, 4, a4, 2, b2, "b 2-d");
      check_batched (paths[p], AT_DTYPE_F32, 4, a4_bc, 4, b4_full, "a broadcasts");
      check_batched (paths[p], AT_DTYPE_Q4_0, 3, a3, 3, b3, "3-d GQA 4/2");
    }
}

static void
test_strided (void)
{
  AtDevice *dev = at_test_device ();

  if (dev == NULL)
    return;
  for (guint p = 0; p < G_N_ELEMENTS (paths); p++)
    {
      /* Attention-style: q [L, H, D] viewed as [H, L, D] (rows strided by H * D), and the
       * keys the same way as b; then a view with an element offset (the second half of K). */
      g_autoptr (AtGraph) g = at_graph_new (dev);
      const gint64 sq[] = { 13, 3, 40 }, sk[] = { 21, 3, 40 }, sw[] = { 37, 64 };
      const gint64 sv[] = { 13, 64 }, stv[] = { 128, 1 };
      AtTensor *q, *k, *qt, *kt, *x, *xv, *w;

      if (is_other_variant (paths[p]))
        continue;
      g_setenv ("ATELIER_MATMUL_PATH", paths[p], TRUE);
      q = at_test_input (g, "q", AT_DTYPE_F32, 3, sq, -1, 1);
      k = at_test_input (g, "k", AT_DTYPE_F16, 3, sk, -1, 1);
      qt = at_transpose (g, q, 0, 1);
      kt = at_transpose (g, k, 0, 1);
      g_assert_nonnull (kt);
      /* b may be any tensor, here an f16 input. */
      at_test_assert_nmse (at_test_run (g, at_matmul (g, qt, kt)), 1e-9, "strided q, k");
      g_clear_pointer (&g, at_graph_free);

      g = at_graph_new (dev);
      x = at_test_input (g, "x", AT_DTYPE_F32, 2, (gint64[]){ 13, 128 }, -1, 1);
      xv = at_view (g, x, 2, sv, stv, 64);
      w = at_test_weight (g, "w", AT_DTYPE_Q5_1, 2, sw, -1, 1);
      at_test_assert_nmse (at_test_run (g, at_matmul (g, xv, w)), 1e-9, "offset view");
      g_unsetenv ("ATELIER_MATMUL_PATH");
    }
}

static void
test_chunked (void)
{
  /* 129 rows of b split into bindings of at most 4 KiB: f32 rows of 384 bytes give 10 rows a
   * chunk, q8_0 rows of 102 bytes about 39. */
  if (at_test_device () == NULL)
    return;
  g_setenv ("ATELIER_MAX_BINDING_BYTES", "4096", TRUE);
  g_setenv ("ATELIER_MAX_TEXEL_ELEMENTS", "1024", TRUE);
  for (guint p = 0; p < G_N_ELEMENTS (paths); p++)
    {
      g_assert_cmpuint (check_2d (paths[p], AT_DTYPE_F32, AT_DTYPE_F32, 3, 129, 96, 1e-10), >=, 10);
      if (is_other_variant (paths[p]))
        continue;
      g_assert_cmpuint (check_2d (paths[p], AT_DTYPE_F32, AT_DTYPE_Q8_0, 17, 129, 96, 1e-9), >=, 4);
      g_assert_cmpuint (check_2d (paths[p], AT_DTYPE_F16, AT_DTYPE_Q6_K, 5, 67, 256, 1e-6), >, 3);
    }
  /* q8_0 rows of 272 bytes, and of 102 (each chunk's first row at another offset into its
   * first texel), split across views of 1024 words. */
  g_assert_cmpuint (check_2d ("matvec-texel", AT_DTYPE_F32, AT_DTYPE_Q8_0, 1, 129, 256, 1e-9), >=, 9);
  g_assert_cmpuint (check_2d ("matvec-texel", AT_DTYPE_F32, AT_DTYPE_Q8_0, 1, 129, 96, 1e-9), >=, 4);
  g_unsetenv ("ATELIER_MAX_BINDING_BYTES");
  g_unsetenv ("ATELIER_MAX_TEXEL_ELEMENTS");
}

static double fused_tol (AtGraph *g, AtDtype wtype);

/* at_matmul_add: a [B, M, K] @ w [N, K] + c [B, M, N] on kernel `path`, with w split into
 * bindings of `max_bytes` (0: whole), so c's index follows each chunk's first row. */
static void
check_add (const char *path, AtDtype wtype, gint64 B, gint64 M, gint64 N, gint64 K, guint max_bytes)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  const gint64 sa[] = { B, M, K }, sb[] = { N, K }, sc[] = { B, M, N };
  g_autofree char *what = NULL, *limit = g_strdup_printf ("%u", max_bytes);
  AtTensor *a, *b, *c;

  if (dev == NULL)
    return;
  g_setenv ("ATELIER_MATMUL_PATH", path, TRUE);
  if (max_bytes > 0)
    {
      g_setenv ("ATELIER_MAX_BINDING_BYTES", limit, TRUE);
      g_setenv ("ATELIER_MAX_TEXEL_ELEMENTS", limit, TRUE);
    }
  g = at_graph_new (dev);
  a = at_test_input (g, "a", AT_DTYPE_F32, 3, sa, -1, 1);
  b = at_test_weight (g, "w", wtype, 2, sb, -1, 1);
  c = at_test_input (g, "c", AT_DTYPE_F32, 3, sc, -10, 10);
  what = g_strdup_printf ("add %s w %s B=%" G_GINT64_FORMAT " M=%" G_GINT64_FORMAT
                          " N=%" G_GINT64_FORMAT " K=%" G_GINT64_FORMAT " binding %u", path,
                          at_dtype_name (wtype), B, M, N, K, max_bytes);
  /* A vector times q8_0 on a CPU device quantises a to 8 bits (QA8): an element a hair from
   * a rounding boundary may land on the other step there (2.2e-7 once, K 576), as in the
   * fused ops (fused_tol). */
  at_test_assert_nmse (at_test_run (g, at_matmul_add (g, a, b, c)),
                       M == 1 && fused_tol (g, wtype) > 1e-9 ? 1e-5 : 1e-10, what);
  g_unsetenv ("ATELIER_MATMUL_PATH");
  g_unsetenv ("ATELIER_MAX_BINDING_BYTES");
  g_unsetenv ("ATELIER_MAX_TEXEL_ELEMENTS");
}

/* The addend is added where every kernel stores d: each path, batches, chunks of rows, the
 * lanes-own-rows kernel of a vector times q8_0 (a transformer's residual in token
 * generation), and the shape errors. */
static void
test_add (void)
{
  AtDevice *dev = at_test_device ();

  for (guint p = 0; p < G_N_ELEMENTS (paths); p++)
    {
      check_add (paths[p], AT_DTYPE_F32, 2, 3, 67, 96, 0);
      if (!is_other_variant (paths[p]))
        check_add (paths[p], AT_DTYPE_Q8_0, 1, 37, 129, 96, 4096);
    }
  check_add ("matvec-texel", AT_DTYPE_Q8_0, 1, 1, 131, 576, 0);
  check_add ("matvec-texel", AT_DTYPE_Q8_0, 2, 1, 129, 256, 1024);
  if (dev == NULL)
    return;
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *a = at_graph_input (g, "a", AT_DTYPE_F32, 2, (gint64[]){ 3, 64 });
    AtTensor *b = at_graph_input (g, "b", AT_DTYPE_F32, 2, (gint64[]){ 5, 64 });
    AtTensor *c = at_graph_input (g, "c", AT_DTYPE_F32, 2, (gint64[]){ 3, 4 });
    at_test_expect_error (g, at_matmul_add (g, a, b, c), "the product's shape");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *a = at_graph_input (g, "a", AT_DTYPE_F32, 2, (gint64[]){ 3, 64 });
    AtTensor *b = at_graph_input (g, "b", AT_DTYPE_F32, 2, (gint64[]){ 5, 64 });
    AtTensor *c = at_graph_input (g, "c", AT_DTYPE_F32, 2, (gint64[]){ 5, 3 });
    at_test_expect_error (g, at_matmul_add (g, a, b, at_transpose (g, c, 0, 1)), "contiguous");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *a = at_graph_input (g, "a", AT_DTYPE_F32, 2, (gint64[]){ 3, 64 });
    AtTensor *b = at_graph_input (g, "b", AT_DTYPE_F32, 2, (gint64[]){ 5, 32 });
    AtTensor *c = at_graph_input (g, "c", AT_DTYPE_F32, 2, (gint64[]){ 3, 5 });
    at_test_expect_error (g, at_matmul_add (g, a, b, c), "K differs");
  }
}

/* A graph for a fused matmul on kernel `path` (NULL: the device's choice; the fused
 * constructors read it), and its run against the reference; the run returns the dispatches. */
static AtGraph *
fused_graph (const char *path)
{
  if (path != NULL)
    g_setenv ("ATELIER_MATMUL_PATH", path, TRUE);
  return at_graph_new (at_test_device ());
}

/* The fused ops compute their input (the norm, silu (gate) * up) in f32 on the device and in
 * the reference in another order: an ulp apart. Where the kernel then quantises it to 8 bits
 * (QA8: q4_0, q8_0 and q4_K on CPU devices), an element a hair from a rounding boundary may
 * land on the other step, ~1e-6 of NMSE each (measured 8.8e-7 once in a q8_0 case): the bound
 * there allows a few. Any real error (a sign, a scale, a wrong element) is ~1e-2 and up. */
static double
fused_tol (AtGraph *g, AtDtype wtype)
{
  gboolean cpu = at_device_get_info (at_graph_get_device (g))->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
  gboolean qa8 = wtype == AT_DTYPE_Q4_0 || wtype == AT_DTYPE_Q8_0 || wtype == AT_DTYPE_Q4_K;

  return cpu && qa8 && g_strcmp0 (g_getenv ("ATELIER_MATMUL_PATH"), "gemm-cpu") != 0 ? 1e-5 : 1e-9;
}

static guint
run_fused (AtGraph *g, AtTensor *out, AtDtype wtype, const char *what)
{
  at_test_assert_nmse (at_test_run (g, out), fused_tol (g, wtype), what);
  g_unsetenv ("ATELIER_MATMUL_PATH");
  return at_command_get_n_dispatches (at_graph_get_command (g));
}

/* at_matmul_rms: rms_norm (a, w, eps) @ b^T, a vector a [1, K]; returns the dispatches. The
 * norm weight starts `skew` elements into its buffer (1: not on a texel). */
static guint
check_rms_at (const char *path, AtDtype wtype, gint64 N, gint64 K, gint64 skew)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  const gint64 sa[] = { 1, K }, sb[] = { N, K }, sw[] = { K + skew }, one[] = { 1 };
  g_autofree char *what = NULL;
  AtTensor *a, *b, *w;

  if (dev == NULL)
    return 0;
  g = fused_graph (path);
  a = at_test_input (g, "a", AT_DTYPE_F32, 2, sa, -3, 3);
  b = at_test_weight (g, "w", wtype, 2, sb, -1, 1);
  w = at_test_weight (g, "norm", AT_DTYPE_F32, 1, sw, 0.5, 1.5);
  if (skew > 0)
    w = at_view (g, w, 1, sa + 1, one, skew);
  what = g_strdup_printf ("rms %s w %s N=%" G_GINT64_FORMAT " K=%" G_GINT64_FORMAT " skew %"
                          G_GINT64_FORMAT, path ? path : "default", at_dtype_name (wtype), N, K, skew);
  return run_fused (g, at_matmul_rms (g, a, w, 1e-5f, b), wtype, what);
}

static guint
check_rms (const char *path, AtDtype wtype, gint64 N, gint64 K)
{
  return check_rms_at (path, wtype, N, K, 0);
}

/* The norm inside the rows kernel (one dispatch on CPU devices) for each of its weight types,
 * K with whole steps of 8 blocks and tails, rows at every misalignment; elsewhere (other
 * weights, a forced GEMM path, GPUs) the two ops, against the same reference. */
static void
test_rms (void)
{
  AtDevice *dev = at_test_device ();
  gboolean cpu = dev != NULL && at_device_get_info (dev)->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
  static const gint64 ks[] = { 576, 1536, 96 };

  if (dev == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (ks); i++)
    {
      g_assert_cmpuint (check_rms (NULL, AT_DTYPE_Q8_0, 67 + 64 * i, ks[i]), ==, cpu ? 1 : 2);
      g_assert_cmpuint (check_rms (NULL, AT_DTYPE_Q4_0, 131, ks[i]), ==, cpu ? 1 : 2);
    }
  g_assert_cmpuint (check_rms (NULL, AT_DTYPE_Q4_K, 37, 512), ==, cpu ? 1 : 2);
  /* Nine super-blocks: the run-time loop over K, not the unrolled one. */
  g_assert_cmpuint (check_rms (NULL, AT_DTYPE_Q4_K, 19, 2304), ==, cpu ? 1 : 2);
  g_assert_cmpuint (check_rms_at (NULL, AT_DTYPE_Q8_0, 67, 576, 1), ==, cpu ? 1 : 2);
  g_assert_cmpuint (check_rms (NULL, AT_DTYPE_F16, 37, 512), ==, 2);
  g_assert_cmpuint (check_rms ("gemm-cpu", AT_DTYPE_Q8_0, 37, 576), ==, 2);
}

/* at_matmul_swiglu: silu (gate) * up of a [gate | up] vector, @ b^T (+ c [1, N] with
 * `add`); returns the dispatches. */
static guint
check_swiglu (const char *path, AtDtype wtype, gint64 N, gint64 K, gboolean add)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  const gint64 sa[] = { 1, 2 * K }, sb[] = { N, K }, sc[] = { 1, N };
  g_autofree char *what = NULL;
  AtTensor *a, *b, *c = NULL;

  if (dev == NULL)
    return 0;
  g = fused_graph (path);
  a = at_test_input (g, "a", AT_DTYPE_F32, 2, sa, -4, 4);
  b = at_test_weight (g, "w", wtype, 2, sb, -1, 1);
  if (add)
    c = at_test_input (g, "c", AT_DTYPE_F32, 2, sc, -10, 10);
  what = g_strdup_printf ("swiglu %s w %s N=%" G_GINT64_FORMAT " K=%" G_GINT64_FORMAT "%s",
                          path ? path : "default", at_dtype_name (wtype), N, K, add ? " + c" : "");
  return run_fused (g, at_matmul_swiglu (g, a, b, c), wtype, what);
}

/* silu (gate) * up inside the rows kernel on CPU devices (SmolLM's down projection, K 1536,
 * and K with a tail of blocks), the two ops elsewhere. */
static void
test_swiglu (void)
{
  AtDevice *dev = at_test_device ();
  gboolean cpu = dev != NULL && at_device_get_info (dev)->type == VK_PHYSICAL_DEVICE_TYPE_CPU;

  if (dev == NULL)
    return;
  g_assert_cmpuint (check_swiglu (NULL, AT_DTYPE_Q8_0, 67, 1536, FALSE), ==, cpu ? 1 : 2);
  g_assert_cmpuint (check_swiglu (NULL, AT_DTYPE_Q8_0, 67, 1536, TRUE), ==, cpu ? 1 : 2);
  g_assert_cmpuint (check_swiglu (NULL, AT_DTYPE_Q4_0, 131, 96, TRUE), ==, cpu ? 1 : 2);
  g_assert_cmpuint (check_swiglu (NULL, AT_DTYPE_Q4_K, 37, 512, FALSE), ==, cpu ? 1 : 2);
  g_assert_cmpuint (check_swiglu (NULL, AT_DTYPE_F32, 37, 64, TRUE), ==, 2);
  g_assert_cmpuint (check_swiglu ("gemm-cpu", AT_DTYPE_Q8_0, 37, 576, TRUE), ==, 2);
}

/* One case of at_matmul_rope_cache: the token's heads [nq + 2 nkv, hd] of a `wtype` product
 * after an RMS norm, turned at position `pos` (freq_factors with `ff`), against the
 * reference; and the caches [rows, nkv, hd] (f16 with `f16`): row pos holds the result's k
 * and v heads (rounded to f16), every other row keeps its sentinel. Returns the dispatches. */
typedef struct
{
  AtDtype wtype;
  gint64 K, nq, nkv, hd;
  int n_rot;
  AtRopeMode mode;
  gboolean f16, ff;
  float pos;
} RopeCase;

static guint
check_rope_cache (const RopeCase *c)
{
  AtDevice *dev = at_test_device ();
  const gint64 heads = c->nq + 2 * c->nkv, rows = 6, n = heads * c->hd, cn = rows * c->nkv * c->hd;
  const gint64 sa[] = { 1, c->K }, sb[] = { n, c->K }, sw[] = { c->K }, one[] = { 1 };
  const gint64 cshape[] = { rows, c->nkv, c->hd }, sf[] = { c->n_rot / 2 };
  const float sentinel = -7.5f;
  AtDtype cdt = c->f16 ? AT_DTYPE_F16 : AT_DTYPE_F32;
  gsize cbytes = (gsize) cn * (c->f16 ? 2 : 4);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtGraph) g = NULL;
  g_autoptr (AtBuffer) kbuf = NULL, vbuf = NULL;
  g_autofree float *y = g_new (float, n), *kc = g_new (float, cn), *vc = g_new (float, cn);
  g_autofree guint8 *raw = g_malloc (cbytes);
  g_autofree char *what = NULL;
  union { float f; guint32 u; } fill = { sentinel };
  AtTensor *out;
  guint dispatches;

  if (dev == NULL)
    return 0;
  g = at_graph_new (dev);
  kbuf = at_buffer_new (dev, cbytes, AT_BUFFER_DEVICE, "k cache", &error);
  vbuf = at_buffer_new (dev, cbytes, AT_BUFFER_DEVICE, "v cache", &error);
  g_assert_no_error (error);
  if (c->f16)
    fill.u = at_f32_to_f16 (sentinel) * 0x10001u;
  g_assert_true (at_buffer_fill (kbuf, 0, cbytes, fill.u, &error));
  g_assert_true (at_buffer_fill (vbuf, 0, cbytes, fill.u, &error));
  out = at_matmul_rope_cache (g, at_test_input (g, "a", AT_DTYPE_F32, 2, sa, -3, 3),
                              at_test_weight (g, "norm", AT_DTYPE_F32, 1, sw, 0.5, 1.5), 1e-5f,
                              at_test_weight (g, "w", c->wtype, 2, sb, -1, 1),
                              at_test_input_values (g, "pos", AT_DTYPE_I32, 1, one, &c->pos),
                              c->n_rot, 10000.0f, 0.75f, c->mode,
                              c->ff ? at_test_weight (g, "ff", AT_DTYPE_F32, 1, sf, 1, 4) : NULL,
                              (int) c->nq, at_graph_weight (g, "k cache", cdt, 3, cshape, kbuf, 0),
                              at_graph_weight (g, "v cache", cdt, 3, cshape, vbuf, 0));
  what = g_strdup_printf ("rope cache %s K=%" G_GINT64_FORMAT " heads %" G_GINT64_FORMAT "+2x%"
                          G_GINT64_FORMAT " hd %" G_GINT64_FORMAT " n_rot %d%s%s%s at %g",
                          at_dtype_name (c->wtype), c->K, c->nq, c->nkv, c->hd, c->n_rot,
                          c->mode == AT_ROPE_NEOX ? " neox" : "", c->f16 ? " f16" : "",
                          c->ff ? " ff" : "", c->pos);
  /* The fused node's result is [1, heads x hd] under a view of the heads. */
  if (out != NULL && out->view_src != NULL)
    out = out->view_src;
  at_test_assert_nmse (at_test_run (g, out), fused_tol (g, c->wtype), what);
  dispatches = at_command_get_n_dispatches (at_graph_get_command (g));
  g_assert_true (at_graph_get_output (g, out, y, (gsize) n * sizeof (float), &error));
  g_assert_true (at_buffer_download (kbuf, 0, raw, cbytes, &error));
  at_dequantize_row (cdt, raw, kc, cn);
  g_assert_true (at_buffer_download (vbuf, 0, raw, cbytes, &error));
  at_dequantize_row (cdt, raw, vc, cn);
  g_assert_no_error (error);
  for (gint64 r = 0; r < rows; r++)
    for (gint64 e = 0; e < c->nkv * c->hd; e++)
      {
        gboolean at = r == (gint64) c->pos;
        float want_k = at ? y[c->nq * c->hd + e] : sentinel;
        float want_v = at ? y[(c->nq + c->nkv) * c->hd + e] : sentinel;

        if (c->f16 && at)
          {
            g_assert_true (at_test_is_f16_of (kc[r * c->nkv * c->hd + e], want_k));
            g_assert_true (at_test_is_f16_of (vc[r * c->nkv * c->hd + e], want_v));
            continue;
          }
        g_assert_cmpfloat (kc[r * c->nkv * c->hd + e], ==, want_k);
        g_assert_cmpfloat (vc[r * c->nkv * c->hd + e], ==, want_v);
      }
  return dispatches;
}

/* The turn and the cache writes inside the rows kernel on CPU devices: SmolLM's shape (q8_0
 * rows in four passes, partners across passes), one pass (partners in the next lane), eight
 * passes, q4_0 (8-bit a), q4_K and q6_K (four rows a lane), n_rot < hd, frequency factors,
 * f32 and f16 caches, a position past the caches; the two ops for NEOX RoPE, a plain weight
 * and elsewhere, against the same reference. */
static void
test_rope_cache (void)
{
  AtDevice *dev = at_test_device ();
  gboolean cpu = dev != NULL && at_device_get_info (dev)->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
  static const RopeCase fused[] = {
    { AT_DTYPE_Q8_0, 576, 9, 3, 64, 64, AT_ROPE_NORMAL, TRUE, FALSE, 5 },
    { AT_DTYPE_Q8_0, 256, 3, 1, 16, 8, AT_ROPE_NORMAL, FALSE, TRUE, 0 },
    { AT_DTYPE_Q8_0, 96, 4, 2, 24, 24, AT_ROPE_NORMAL, TRUE, TRUE, 3 },
    { AT_DTYPE_Q4_0, 512, 4, 2, 32, 32, AT_ROPE_NORMAL, TRUE, FALSE, 2 },
    { AT_DTYPE_Q4_K, 256, 2, 1, 8, 6, AT_ROPE_NORMAL, FALSE, FALSE, 1 },
    { AT_DTYPE_Q6_K, 256, 6, 2, 10, 10, AT_ROPE_NORMAL, TRUE, FALSE, 4 },
    { AT_DTYPE_Q8_0, 576, 9, 3, 64, 64, AT_ROPE_NORMAL, TRUE, FALSE, 6 },
  };
  static const RopeCase apart[] = {
    { AT_DTYPE_Q8_0, 256, 3, 1, 16, 16, AT_ROPE_NEOX, TRUE, FALSE, 2 },
    { AT_DTYPE_F16, 64, 3, 1, 16, 16, AT_ROPE_NORMAL, FALSE, TRUE, 1 },
  };

  if (dev == NULL)
    return;
  /* Elsewhere: the norm, the product and the rope (the norm inside the product on CPUs). */
  for (guint i = 0; i < G_N_ELEMENTS (fused); i++)
    g_assert_cmpuint (check_rope_cache (&fused[i]), ==, cpu ? 1 : 3);
  g_assert_cmpuint (check_rope_cache (&apart[0]), ==, cpu ? 2 : 3);
  g_assert_cmpuint (check_rope_cache (&apart[1]), ==, 3);
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    g_autoptr (AtBuffer) buf = at_buffer_new (dev, 4096, AT_BUFFER_DEVICE, "cache", NULL);
    AtTensor *a = at_graph_input (g, "a", AT_DTYPE_F32, 2, (gint64[]){ 1, 256 });
    AtTensor *w = at_test_weight (g, "w", AT_DTYPE_Q8_0, 2, (gint64[]){ 5 * 8, 256 }, -1, 1);
    AtTensor *nw = at_test_weight (g, "norm", AT_DTYPE_F32, 1, (gint64[]){ 256 }, -1, 1);
    AtTensor *p = at_graph_input (g, "pos", AT_DTYPE_I32, 1, (gint64[]){ 1 });
    AtTensor *kc = at_graph_weight (g, "kc", AT_DTYPE_F32, 3, (gint64[]){ 4, 2, 8 }, buf, 0);
    /* 5 heads of 8 rows, where 3 q heads and 2 kv heads need 7. */
    at_test_expect_error (g, at_matmul_rope_cache (g, a, nw, 1e-5f, w, p, 8, 1e4f, 1, AT_ROPE_NORMAL,
                                                   NULL, 3, kc, kc),
                          "must be [56 rows, K]");
  }
}

static void
test_errors (void)
{
  AtDevice *dev = at_test_device ();
  const gint64 s364[] = { 3, 64 }, s532[] = { 5, 32 }, s564[] = { 5, 64 };

  if (dev == NULL)
    return;
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *a = at_graph_input (g, "a", AT_DTYPE_F32, 2, s364);
    AtTensor *b = at_graph_input (g, "b", AT_DTYPE_F32, 2, s532);
    at_test_expect_error (g, at_matmul (g, a, b), "K differs");
    /* Ops after a failure return NULL. */
    g_assert_null (at_matmul (g, NULL, b));
  }
  {
    /* K = 320 is whole q8_0 blocks but not whole q4_K super-blocks: such a weight cannot
     * even be made, and a q8_0 one multiplies fine. */
    g_autoptr (AtGraph) g = at_graph_new (dev);
    g_autoptr (AtBuffer) buf = at_buffer_new (dev, 4096, AT_BUFFER_DEVICE, "w", NULL);
    AtTensor *a = at_graph_input (g, "a", AT_DTYPE_F32, 2, (gint64[]){ 3, 320 });
    AtTensor *w8 = at_graph_weight (g, "w8", AT_DTYPE_Q8_0, 2, (gint64[]){ 5, 320 }, buf, 0);
    g_assert_nonnull (at_matmul (g, a, w8));
    at_test_expect_error (g, at_graph_weight (g, "wk", AT_DTYPE_Q4_K, 2, (gint64[]){ 5, 320 }, buf, 0),
                  "not a multiple of the q4_K block size");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *a = at_test_weight (g, "aq", AT_DTYPE_Q8_0, 2, s364, -1, 1);
    AtTensor *b = at_test_weight (g, "w", AT_DTYPE_Q8_0, 2, s564, -1, 1);
    at_test_expect_error (g, at_matmul (g, a, b), "a must be f32 or f16");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *a = at_graph_input (g, "a", AT_DTYPE_F32, 2, (gint64[]){ 64, 3 });
    AtTensor *b = at_graph_input (g, "b", AT_DTYPE_F32, 2, s564);
    at_test_expect_error (g, at_matmul (g, at_transpose (g, a, 0, 1), b), "K must be contiguous");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *a = at_graph_input (g, "a", AT_DTYPE_F32, 3, (gint64[]){ 4, 3, 64 });
    AtTensor *b = at_graph_input (g, "b", AT_DTYPE_F32, 3, (gint64[]){ 3, 5, 64 });
    at_test_expect_error (g, at_matmul (g, a, b), "do not broadcast");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *a = at_graph_input (g, "a", AT_DTYPE_F32, 2, s364);
    AtTensor *b = at_graph_input (g, "b", AT_DTYPE_I32, 2, s564);
    at_test_expect_error (g, at_matmul (g, a, b), "unsupported weight type");
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/matmul/dtypes", test_dtypes);
  g_test_add_func ("/engine/matmul/odd-k", test_odd_k);
  g_test_add_func ("/engine/matmul/f16-activations", test_f16_activations);
  g_test_add_func ("/engine/matmul/texel-groups", test_texel_groups);
  g_test_add_func ("/engine/matmul/vector-rows", test_vector_rows);
  g_test_add_func ("/engine/matmul/batched", test_batched);
  g_test_add_func ("/engine/matmul/strided", test_strided);
  g_test_add_func ("/engine/matmul/chunked", test_chunked);
  g_test_add_func ("/engine/matmul/add", test_add);
  g_test_add_func ("/engine/matmul/rms", test_rms);
  g_test_add_func ("/engine/matmul/swiglu", test_swiglu);
  g_test_add_func ("/engine/matmul/rope-cache", test_rope_cache);
  g_test_add_func ("/engine/matmul/errors", test_errors);
  return g_test_run ();
}
