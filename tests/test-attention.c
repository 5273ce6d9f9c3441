/* test-attention.c: fused attention, GPU against the plain C formula (scores, mask, causal,
 * softmax, weighted sum in double), on shapes that are not multiples of the row tiles: decode
 * (Lq = 1), causal with an offset, GQA, head sizes of SD and LLMs (Gemma's 256 too), masks
 * with -inf, a run-time kv_len replayed with different values, strided views, f16 caches,
 * split-K, Gemma 2's score soft-capping and sliding window, and shape errors. */
#include "at-test-util.h"

#include <math.h>
#include <string.h>

typedef struct
{
  gint64 b, hq, hkv, lq, lk, d;
  gboolean causal;
  gboolean f16;       /* k and v f16 */
  gboolean strided;   /* q, k, v are transposed views of [B, L, H, D] inputs */
  int mask;           /* 0 none, 2 [Lq, Lk], 4 [B, 1, Lq, Lk] */
  gint64 kv_len;      /* 0: no kv_len input */
  int n_splits;       /* 0 automatic */
  float softcap;      /* 0 none */
  int window;         /* 0 none (causal only) */
} Case;

/* f32 accumulations against a double reference; f16 k/v are exact halves on both sides, the
 * looser bound leaves room for the f32 rounding of bigger sums. */
#define TOL_F32 1e-10
#define TOL_F16 1e-6

/* Values in [-3, 3] with scale 1/sqrt(D): scores of standard deviation ~3, peaky softmaxes that
 * exercise the running-maximum rescale. */
static AtTensor *
qkv_input (AtGraph *g, const char *name, AtDtype dtype, gboolean strided, gint64 b, gint64 h,
           gint64 l, gint64 d)
{
  if (strided)
    {
      const gint64 shape[] = { b, l, h, d };
      return at_transpose (g, at_test_input (g, name, dtype, 4, shape, -3, 3), 1, 2);
    }
  else
    {
      const gint64 shape[] = { b, h, l, d };
      return at_test_input (g, name, dtype, 4, shape, -3, 3);
    }
}

/* A mask in [-1, 1] with scattered -inf and, when Lq > 2, row 1 entirely -inf. */
static AtTensor *
mask_input (AtGraph *g, int ndim, gint64 b, gint64 lq, gint64 lk)
{
  gint64 n = (ndim == 4 ? b : 1) * lq * lk;
  g_autofree float *m = g_new (float, n);
  const gint64 s2[] = { lq, lk }, s4[] = { b, 1, lq, lk };

  at_test_fill (m, n, -1, 1);
  for (gint64 e = 0; e < n; e++)
    {
      gint64 i = e / lk % lq;
      if (e % 5 == 2 || (lq > 2 && i == 1))
        m[e] = -INFINITY;
    }
  return at_test_input_values (g, "mask", AT_DTYPE_F32, ndim, ndim == 4 ? s4 : s2, m);
}

static AtTensor *
build_case (AtGraph *g, const Case *c, AtTensor **kv_len_out)
{
  AtDtype kv = c->f16 ? AT_DTYPE_F16 : AT_DTYPE_F32;
  AtAttentionParams p = { 1.0f / sqrtf ((float) c->d), c->causal, c->n_splits, c->softcap, c->window };
  AtTensor *q, *k, *v, *mask = NULL, *kv_len = NULL;

  q = qkv_input (g, "q", AT_DTYPE_F32, c->strided, c->b, c->hq, c->lq, c->d);
  k = qkv_input (g, "k", kv, c->strided, c->b, c->hkv, c->lk, c->d);
  v = qkv_input (g, "v", kv, c->strided, c->b, c->hkv, c->lk, c->d);
  if (c->mask)
    mask = mask_input (g, c->mask, c->b, c->lq, c->lk);
  if (c->kv_len > 0)
    {
      const gint64 one[] = { 1 };
      float value = (float) c->kv_len;
      kv_len = at_test_input_values (g, "kv_len", AT_DTYPE_I32, 1, one, &value);
    }
  if (kv_len_out != NULL)
    *kv_len_out = kv_len;
  return at_attention (g, q, k, v, mask, kv_len, &p);
}

static void
check_case (const char *what, const Case *c)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  g_autofree char *label = NULL;
  AtTensor *o;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  o = build_case (g, c, NULL);
  label = g_strdup_printf ("%s (B%" G_GINT64_FORMAT " Hq%" G_GINT64_FORMAT " Hkv%" G_GINT64_FORMAT
                           " Lq%" G_GINT64_FORMAT " Lk%" G_GINT64_FORMAT " D%" G_GINT64_FORMAT
                           "%s%s splits %d softcap %g window %d)",
                           what, c->b, c->hq, c->hkv, c->lq, c->lk, c->d, c->causal ? " causal" : "",
                           c->f16 ? " f16" : "", c->n_splits, c->softcap, c->window);
  g_assert_nonnull (o);
  at_test_assert_nmse (at_test_run (g, o), c->f16 ? TOL_F16 : TOL_F32, label);
}

/* Each case twice: one pass over the keys, and split over the keys with a combine pass. */
static void
check_both (const char *what, const Case *c)
{
  Case split = *c;

  check_case (what, c);
  split.n_splits = 3;
  check_case (what, &split);
}

static void
test_tiny (void)
{
  check_both ("Lq = Lk = 1", &(Case){ 1, 1, 1, 1, 1, 64 });
  check_both ("Lq = Lk = 1 causal", &(Case){ 1, 3, 3, 1, 1, 64, TRUE });
}

static void
test_decode (void)
{
  check_both ("decode", &(Case){ 1, 4, 4, 1, 37, 64 });
  check_both ("decode causal", &(Case){ 1, 4, 4, 1, 37, 64, TRUE });
  check_both ("decode f16", &(Case){ 1, 4, 4, 1, 300, 128, TRUE, TRUE });
  check_case ("decode auto splits", &(Case){ 1, 2, 2, 1, 1000, 64 });
}

/* Shapes of the decode kernel of CPU devices (attention_decode.comp: one query position, f32
 * or f16 K and V, at most 8 query heads per kv head): SmolLM's GQA group of 3 over keys that
 * are not a multiple of the lanes, 8 heads of 128 on one kv head in batches of strided views,
 * 7 heads of 40 (fewer texels than lanes), and fewer keys than lanes. f16 (a language model's
 * f16 KV cache): K rows of whole 8-half texels (K8) at SmolLM's shape and strided, and rows
 * of 36 halves (K four halves a texel). On a GPU these take the general kernel, against the
 * same reference. */
static void
test_decode_kernel (void)
{
  check_case ("decode gqa 3", &(Case){ 1, 9, 3, 1, 600, 64, TRUE });
  check_case ("decode gqa 8 strided", &(Case){ 2, 8, 1, 1, 77, 128, .strided = TRUE });
  check_case ("decode gqa 7 d40", &(Case){ 1, 14, 2, 1, 33, 40 });
  check_case ("decode few keys", &(Case){ 1, 2, 2, 1, 5, 4 });
  check_case ("decode gqa 3 f16", &(Case){ 1, 9, 3, 1, 600, 64, TRUE, TRUE });
  check_case ("decode gqa 8 strided f16", &(Case){ 2, 8, 1, 1, 77, 128, FALSE, TRUE, TRUE });
  check_case ("decode f16 d36", &(Case){ 1, 6, 2, 1, 45, 36, TRUE, TRUE });
}

static void
test_square (void)
{
  check_both ("square", &(Case){ 1, 2, 2, 100, 100, 64 });
  check_both ("square causal", &(Case){ 1, 2, 2, 100, 100, 64, TRUE });
}

static void
test_causal_offset (void)
{
  check_both ("Lq < Lk causal", &(Case){ 1, 3, 3, 7, 23, 64, TRUE });
  check_case ("Lq < Lk", &(Case){ 1, 3, 3, 7, 23, 64 });
}

static void
test_gqa (void)
{
  check_both ("gqa", &(Case){ 1, 8, 2, 13, 29, 64 });
  check_both ("gqa causal", &(Case){ 2, 8, 2, 13, 29, 64, TRUE });
  check_both ("gqa decode f16", &(Case){ 1, 8, 2, 1, 77, 128, TRUE, TRUE });
}

/* CPU devices read K and V through texel views (attention_texel, attention_texel_f16 and
 * the decode kernel); the storage-buffer kernels, which GPUs use, for the same cases. */
static void
test_storage_kv (void)
{
  g_setenv ("ATELIER_ATTENTION_TEXEL", "0", TRUE);
  check_both ("storage decode causal", &(Case){ 1, 4, 4, 1, 37, 64, TRUE });
  check_both ("storage gqa causal", &(Case){ 2, 8, 2, 13, 29, 64, TRUE });
  check_case ("storage mask", &(Case){ 1, 2, 2, 9, 21, 40, .mask = 2 });
  check_both ("storage gqa decode f16", &(Case){ 1, 8, 2, 1, 77, 128, TRUE, TRUE });
  g_unsetenv ("ATELIER_ATTENTION_TEXEL");
}

static void
test_head_dims (void)
{
  /* SD and LLM head sizes, and odd ones for the partial last chunk. Each D is its own pipeline
   * (seconds of LLVM on a cold lavapipe cache), so f16 only where it adds a path. */
  const gint64 dims[] = { 40, 64, 80, 128, 1, 13 };

  for (guint i = 0; i < G_N_ELEMENTS (dims); i++)
    check_case ("head dim", &(Case){ 1, 2, 2, 19, 33, dims[i] });
  check_case ("head dim f16", &(Case){ 1, 2, 2, 19, 33, 80, TRUE, TRUE });
  check_case ("head dim f16", &(Case){ 1, 2, 2, 19, 33, 13, TRUE, TRUE });
  check_case ("head dim 256", &(Case){ 1, 2, 2, 19, 33, 256 });
  check_case ("head dim 256 decode", &(Case){ 1, 4, 2, 1, 77, 256 });
}

static void
test_mask (void)
{
  check_both ("mask [Lq, Lk]", &(Case){ 1, 2, 2, 9, 21, 40, .mask = 2 });
  check_both ("mask [B, 1, Lq, Lk] causal", &(Case){ 2, 4, 2, 9, 21, 40, TRUE, .mask = 4 });
  check_both ("mask decode", &(Case){ 1, 2, 2, 1, 21, 40, .mask = 2 });
}

/* One compiled graph replayed with a different kv_len each run, as a language model does with
 * its cache. */
static void
test_kv_len (void)
{
  AtDevice *dev = at_test_device ();
  const gint64 lens[] = { 17, 5, 40, 1, 0 };

  if (dev == NULL)
    return;
  for (int lq = 3; lq >= 1; lq -= 2) /* Lq 1 with one split: the decode kernel on CPUs */
  for (int split = 1; split <= 4; split += 3)
    for (int causal = 0; causal < 2; causal++)
      {
        g_autoptr (AtGraph) g = at_graph_new (dev);
        g_autoptr (GError) error = NULL;
        Case c = { 1, 4, 2, lq, 40, 64, causal, FALSE, TRUE, lq == 1 ? 0 : 2, 23, split };
        AtTensor *kv_len, *o = build_case (g, &c, &kv_len);
        gint64 n;

        g_assert_nonnull (o);
        at_test_assert_nmse (at_test_run (g, o), TOL_F32, "kv_len 23");
        n = at_tensor_numel (o);
        for (guint r = 0; r < G_N_ELEMENTS (lens); r++)
          {
            gint32 len = (gint32) lens[r];
            g_autofree float *gpu = g_new (float, n), *ref = NULL;
            g_autofree char *what = g_strdup_printf ("kv_len replay %d Lq %d causal %d splits %d",
                                                     len, lq, causal, split);
            g_assert_true (at_graph_set_input (g, kv_len, &len, sizeof len, &error));
            g_assert_true (at_graph_run (g, &error));
            g_assert_true (at_graph_get_output (g, o, gpu, n * sizeof (float), &error));
            ref = at_graph_run_reference (g, o, &error);
            g_assert_no_error (error);
            at_test_assert_nmse (at_nmse (ref, gpu, n), TOL_F32, what);
            if (len == 0)
              for (gint64 e = 0; e < n; e++)
                g_assert_cmpfloat (gpu[e], ==, 0.0f);
          }
      }
}

static void
test_strided (void)
{
  check_both ("strided", &(Case){ 2, 4, 4, 11, 19, 64, .strided = TRUE });
  check_both ("strided gqa causal f16", &(Case){ 2, 6, 3, 11, 19, 40, TRUE, TRUE, TRUE });
  /* Odd strides in halves: the f16 path that reads one half at a time. */
  check_both ("strided f16 odd", &(Case){ 2, 3, 3, 5, 9, 7, FALSE, TRUE, TRUE });
}

/* Gemma 2: scores capped by softcap tanh(s / softcap) (a cap of 2 bends most of these scores,
 * whose deviation is ~3), and every other layer a sliding window over the last keys, in the
 * prompt kernel (rows on lanes and keys on lanes, split or not) and the decode kernel, at its
 * head size of 256. */
static void
test_softcap_window (void)
{
  check_both ("softcap", &(Case){ 1, 4, 2, 13, 29, 64, TRUE, .softcap = 2 });
  check_both ("softcap mask", &(Case){ 1, 2, 2, 9, 21, 40, .mask = 2, .softcap = 2 });
  check_both ("window", &(Case){ 1, 4, 2, 13, 29, 64, TRUE, .window = 5 });
  check_both ("window wider than the keys", &(Case){ 1, 4, 2, 13, 29, 64, TRUE, .window = 100 });
  check_both ("window 1", &(Case){ 1, 2, 1, 7, 7, 40, TRUE, .window = 1 });
  check_both ("window long", &(Case){ 1, 2, 2, 300, 300, 64, TRUE, .window = 37 });
  check_both ("gemma 2 prompt", &(Case){ 1, 8, 4, 19, 33, 256, TRUE, .softcap = 2, .window = 9 });
  check_case ("gemma 2 decode", &(Case){ 1, 8, 4, 1, 300, 256, TRUE, .softcap = 2, .window = 41 });
  check_case ("gemma 2 decode kv_len", &(Case){ 1, 8, 4, 1, 300, 256, TRUE, .kv_len = 200,
                                                .softcap = 2, .window = 41 });
  check_case ("decode window", &(Case){ 1, 9, 3, 1, 600, 64, TRUE, .window = 100 });
  check_case ("decode f16 window", &(Case){ 1, 4, 2, 1, 90, 256, TRUE, TRUE, .softcap = 3, .window = 17 });
  /* Keys on lanes (one query row per kv head) in the general kernel. */
  g_setenv ("ATELIER_ATTENTION_DECODE", "0", TRUE);
  check_both ("general decode window", &(Case){ 1, 4, 2, 1, 70, 64, TRUE, .softcap = 2, .window = 21 });
  g_unsetenv ("ATELIER_ATTENTION_DECODE");
}

static void
test_long (void)
{
  check_case ("long", &(Case){ 1, 2, 2, 1024, 1024, 40 });
  check_case ("long causal", &(Case){ 1, 2, 2, 1024, 1024, 40, TRUE });
}

static void
expect_error (AtGraph *g, AtTensor *q, AtTensor *k, AtTensor *v, AtTensor *mask, AtTensor *kv_len,
              const char *message)
{
  AtAttentionParams p = { 0.125f, FALSE, 0 };

  at_test_expect_error (g, at_attention (g, q, k, v, mask, kv_len, &p), message);
}

static void
test_bad_shapes (void)
{
  AtDevice *dev = at_test_device ();
  const gint64 q4[] = { 1, 4, 5, 64 }, k4[] = { 1, 2, 7, 64 }, k3[] = { 1, 3, 7, 64 };
  const gint64 k32[] = { 1, 2, 7, 32 }, m_bad[] = { 5, 8 }, m_ok[] = { 5, 7 }, two[] = { 2 };
  const gint64 qt[] = { 1, 4, 64, 5 };

  if (dev == NULL)
    return;
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *q = at_graph_input (g, "q", AT_DTYPE_F32, 4, q4);
    AtTensor *k = at_graph_input (g, "k", AT_DTYPE_F32, 4, k32);
    expect_error (g, q, k, k, NULL, NULL, "head dimension D");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *q = at_graph_input (g, "q", AT_DTYPE_F32, 4, q4);
    AtTensor *k = at_graph_input (g, "k", AT_DTYPE_F32, 4, k3);
    expect_error (g, q, k, k, NULL, NULL, "not a multiple");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *q = at_graph_input (g, "q", AT_DTYPE_F32, 4, q4);
    AtTensor *k = at_graph_input (g, "k", AT_DTYPE_F32, 4, k4);
    AtTensor *m = at_graph_input (g, "mask", AT_DTYPE_F32, 2, m_bad);
    expect_error (g, q, k, k, m, NULL, "mask does not broadcast");
  }
  {
    /* D not contiguous: a transposed [.., 64, 5] view whose last dimension has stride 5. */
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *q = at_transpose (g, at_graph_input (g, "q", AT_DTYPE_F32, 4, qt), 2, 3);
    AtTensor *k = at_graph_input (g, "k", AT_DTYPE_F32, 4, k4);
    expect_error (g, q, k, k, NULL, NULL, "contiguous");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *q = at_graph_input (g, "q", AT_DTYPE_F32, 4, q4);
    AtTensor *k = at_graph_input (g, "k", AT_DTYPE_F32, 4, k4);
    AtTensor *v = at_graph_input (g, "v", AT_DTYPE_F16, 4, k4);
    expect_error (g, q, k, v, NULL, NULL, "must both be f32");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtTensor *q = at_graph_input (g, "q", AT_DTYPE_F32, 4, q4);
    AtTensor *k = at_graph_input (g, "k", AT_DTYPE_F32, 4, k4);
    AtTensor *l = at_graph_input (g, "kv_len", AT_DTYPE_I32, 1, two);
    expect_error (g, q, k, k, NULL, l, "kv_len");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtAttentionParams p = { 0.125f, FALSE, 0, 0, 16 };
    AtTensor *q = at_graph_input (g, "q", AT_DTYPE_F32, 4, q4);
    AtTensor *k = at_graph_input (g, "k", AT_DTYPE_F32, 4, k4);
    at_test_expect_error (g, at_attention (g, q, k, k, NULL, NULL, &p), "needs causal");
  }
  {
    g_autoptr (AtGraph) g = at_graph_new (dev);
    AtAttentionParams p = { 0.125f, TRUE, 0, -1 };
    AtTensor *q = at_graph_input (g, "q", AT_DTYPE_F32, 4, q4);
    AtTensor *k = at_graph_input (g, "k", AT_DTYPE_F32, 4, k4);
    at_test_expect_error (g, at_attention (g, q, k, k, NULL, NULL, &p), "softcap");
  }
  {
    /* A failed source propagates: NULL in, NULL out, the first error kept. */
    g_autoptr (AtGraph) g = at_graph_new (dev);
    g_autoptr (GError) error = NULL;
    AtAttentionParams p = { 0.125f, TRUE, 0 };
    AtTensor *q = at_graph_input (g, "q", AT_DTYPE_F32, 4, q4);
    AtTensor *k = at_graph_input (g, "k", AT_DTYPE_F32, 4, k4);
    AtTensor *m = at_graph_input (g, "mask", AT_DTYPE_F32, 2, m_ok);
    g_assert_null (at_reshape (g, q, 1, (gint64[]){ 7 }));
    g_assert_null (at_attention (g, q, k, k, m, NULL, &p));
    g_assert_null (at_attention (g, NULL, k, k, NULL, NULL, &p));
    g_assert_false (at_graph_check (g, &error));
    g_assert_nonnull (strstr (error->message, "reshape"));
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/attention/tiny", test_tiny);
  g_test_add_func ("/engine/attention/decode", test_decode);
  g_test_add_func ("/engine/attention/decode-kernel", test_decode_kernel);
  g_test_add_func ("/engine/attention/square", test_square);
  g_test_add_func ("/engine/attention/causal-offset", test_causal_offset);
  g_test_add_func ("/engine/attention/gqa", test_gqa);
  g_test_add_func ("/engine/attention/storage-kv", test_storage_kv);
  g_test_add_func ("/engine/attention/head-dims", test_head_dims);
  g_test_add_func ("/engine/attention/mask", test_mask);
  g_test_add_func ("/engine/attention/kv-len", test_kv_len);
  g_test_add_func ("/engine/attention/strided", test_strided);
  g_test_add_func ("/engine/attention/softcap-window", test_softcap_window);
  g_test_add_func ("/engine/attention/long", test_long);
  g_test_add_func ("/engine/attention/bad-shapes", test_bad_shapes);
  return g_test_run ();
}
