/* test-llm.c: GGUF language models on the engine against an independent PyTorch forward pass
 * (tools/ref/tiny_llm.py: tiny random llama in F32, F16 with tied output, Q8_0 and Q4_0, and
 * with Llama 3's rope_freqs; qwen2 and phi3 in F32; gemma and gemma2 in F32 and Q8_0). Logits at every
 * prompt position fed token by token, the prompt at once and in two chunks (the cache path of
 * prompt graphs), 32 greedy tokens, graphs over cache prefixes of several lengths, and the
 * errors: an unknown architecture, a missing tensor, a tensor of the wrong shape, inconsistent
 * head counts, the context overflowing, a token outside the vocabulary, and llama.cpp's
 * vocabulary-only files (real hyperparameters, no weights). */
#include "at-test-util.h"

#include <math.h>
#include <string.h>

#define N_CTX 64

/* The reference runs in double on the same (dequantised) weights: f32 differs by the
 * engine's f32 rounding only; f16 and Q8_0 weights are the same on both sides too, so the
 * same bound holds, loosened a little for the larger rounding of bigger values. */
#define TOL_F32 1e-10
#define TOL_F16 1e-10
#define TOL_Q8_0 1e-10
#define TOL_Q4_0 1e-10
#define TOL_QA8 2e-3 /* activations in 8 bits (check_quantized) */
/* Batched (GEMM) against one-at-a-time (matrix-vector): only the summation order differs. */
#define TOL_BATCH 1e-10
/* An f16 KV cache against the reference's f16 keys and values: rounded from f32 here and from
 * double there, the odd value lands one f16 step apart (~5e-4 of it): measured up to 8e-10.
 * Batched against one at a time, a key summed in another order may round to the other
 * neighbour: measured up to 1.1e-11. */
#define TOL_KV16 1e-8
#define TOL_KV16_BATCH 1e-9

typedef struct
{
  JsonParser *parser;
  gint32 prompt[64];
  guint n_prompt;
  gint32 greedy[32];
  guint n_vocab;
  float *logits; /* [n_prompt][n_vocab] */
} Ref;

static const char *
models_dir (void)
{
  static char *dir;
  static gboolean tried, ok;

  if (!tried)
    {
      const char *args[3];
      tried = TRUE;
      dir = g_build_filename (at_test_tmpdir (), "llm", NULL);
      args[0] = dir;
      args[1] = NULL;
      ok = at_test_run_ref_tool ("tiny_llm.py", args);
    }
  else if (!ok)
    g_test_skip ("tiny_llm.py could not run");
  return ok ? dir : NULL;
}

static void
ref_clear (Ref *r)
{
  g_clear_object (&r->parser);
  g_clear_pointer (&r->logits, g_free);
}

/* The reference for an f32 KV cache, or (kv16) for an f16 one: keys and values rounded to
 * f16 in the PyTorch forward too. */
static gboolean
ref_load_kv (const char *name, gboolean kv16, Ref *r)
{
  const char *dir = models_dir ();
  g_autofree char *file = NULL, *path = NULL;
  g_autoptr (GError) error = NULL;
  JsonObject *o;
  JsonArray *a, *rows;

  memset (r, 0, sizeof *r);
  if (dir == NULL)
    return FALSE;
  file = g_strconcat (name, ".json", NULL);
  path = g_build_filename (dir, file, NULL);
  r->parser = json_parser_new ();
  json_parser_load_from_file (r->parser, path, &error);
  g_assert_no_error (error);
  o = json_node_get_object (json_parser_get_root (r->parser));
  a = json_object_get_array_member (o, "prompt");
  r->n_prompt = json_array_get_length (a);
  g_assert_cmpuint (r->n_prompt, <=, G_N_ELEMENTS (r->prompt));
  for (guint i = 0; i < r->n_prompt; i++)
    r->prompt[i] = (gint32) json_array_get_int_element (a, i);
  a = json_object_get_array_member (o, kv16 ? "greedy_kv16" : "greedy");
  g_assert_cmpuint (json_array_get_length (a), ==, 32);
  for (guint i = 0; i < 32; i++)
    r->greedy[i] = (gint32) json_array_get_int_element (a, i);
  r->n_vocab = (guint) json_object_get_int_member (o, "vocab");
  rows = json_object_get_array_member (o, kv16 ? "logits_kv16" : "logits");
  g_assert_cmpuint (json_array_get_length (rows), ==, r->n_prompt);
  r->logits = g_new (float, (gsize) r->n_prompt * r->n_vocab);
  for (guint i = 0; i < r->n_prompt; i++)
    {
      JsonArray *row = json_array_get_array_element (rows, i);
      g_assert_cmpuint (json_array_get_length (row), ==, r->n_vocab);
      for (guint j = 0; j < r->n_vocab; j++)
        r->logits[i * r->n_vocab + j] = (float) json_array_get_double_element (row, j);
    }
  return TRUE;
}

static gboolean
ref_load (const char *name, Ref *r)
{
  return ref_load_kv (name, FALSE, r);
}

static AtLlm *
open_model_kv (const char *name, guint n_ctx, AtDtype kv_dtype, GError **error)
{
  g_autofree char *file = g_strconcat (name, ".gguf", NULL);
  g_autofree char *path = g_build_filename (models_dir (), file, NULL);
  g_autoptr (AtGguf) gguf = at_gguf_open (path, error);

  if (gguf == NULL)
    return NULL;
  return at_llm_new (at_test_device (), gguf, n_ctx, kv_dtype, error);
}

static AtLlm *
open_model (const char *name, guint n_ctx, GError **error)
{
  return open_model_kv (name, n_ctx, AT_DTYPE_F32, error);
}

static gint32
argmax (const float *x, guint n)
{
  guint best = 0;
  for (guint i = 1; i < n; i++)
    if (x[i] > x[best])
      best = i;
  return (gint32) best;
}

static void
check_model_kv (const char *name, const char *arch, AtDtype kv, double tol, double tol_batch,
                gboolean check_greedy)
{
  Ref r;
  g_autoptr (AtLlm) m = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree float *logits = NULL, *step_last = NULL;
  double worst = 0;
  gint32 tok;
  guint matched = 0;

  if (at_test_device () == NULL || !ref_load_kv (name, kv == AT_DTYPE_F16, &r))
    return;
  m = open_model_kv (name, N_CTX, kv, &error);
  g_assert_no_error (error);
  if (at_llm_get_kv_dtype (m) != kv)
    {
      g_test_skip ("the device has no 16-bit storage buffers: the KV cache stays f32");
      ref_clear (&r);
      return;
    }
  g_assert_cmpstr (at_llm_get_arch (m), ==, arch);
  g_assert_cmpuint (at_llm_get_n_vocab (m), ==, r.n_vocab);
  g_assert_cmpuint (at_llm_get_n_ctx (m), ==, N_CTX);
  logits = g_new (float, r.n_vocab);
  step_last = g_new (float, r.n_vocab);

  /* Token by token: the decode graph replayed, logits at every position. */
  for (guint i = 0; i < r.n_prompt; i++)
    {
      double e;
      g_assert_true (at_llm_eval (m, &r.prompt[i], 1, logits, &error));
      g_assert_no_error (error);
      e = at_nmse (&r.logits[i * r.n_vocab], logits, r.n_vocab);
      worst = MAX (worst, e);
    }
  g_test_message ("%s: token-by-token logits worst NMSE %.3g", name, worst);
  g_assert_cmpfloat (worst, <, tol);
  g_assert_cmpuint (at_llm_get_position (m), ==, r.n_prompt);
  memcpy (step_last, logits, r.n_vocab * sizeof (float));

  /* The whole prompt at once. */
  at_llm_reset (m);
  g_assert_true (at_llm_eval (m, r.prompt, r.n_prompt, logits, &error));
  g_assert_no_error (error);
  g_test_message ("%s: prompt at once NMSE %.3g vs ref, %.3g vs token by token", name,
                  at_nmse (&r.logits[(r.n_prompt - 1) * r.n_vocab], logits, r.n_vocab),
                  at_nmse (step_last, logits, r.n_vocab));
  g_assert_cmpfloat (at_nmse (&r.logits[(r.n_prompt - 1) * r.n_vocab], logits, r.n_vocab), <, tol);
  g_assert_cmpfloat (at_nmse (step_last, logits, r.n_vocab), <, tol_batch);

  /* In two chunks: the second prompt graph attends over the cache the first wrote. */
  at_llm_reset (m);
  g_assert_true (at_llm_eval (m, r.prompt, 5, logits, &error));
  g_assert_cmpfloat (at_nmse (&r.logits[4 * r.n_vocab], logits, r.n_vocab), <, tol);
  g_assert_true (at_llm_eval (m, r.prompt + 5, r.n_prompt - 5, logits, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (at_nmse (&r.logits[(r.n_prompt - 1) * r.n_vocab], logits, r.n_vocab), <, tol);

  /* Greedy continuation from the prompt. */
  for (guint i = 0; i < 32; i++)
    {
      tok = argmax (logits, r.n_vocab);
      if (tok == r.greedy[i] && matched == i)
        matched++;
      if (check_greedy)
        g_assert_cmpint (tok, ==, r.greedy[i]);
      if (i + 1 < 32)
        {
          g_assert_true (at_llm_eval (m, &tok, 1, logits, &error));
          g_assert_no_error (error);
        }
    }
  g_test_message ("%s: greedy tokens matching the reference before the first difference: %u / 32",
                  name, matched);
  ref_clear (&r);
}

static void
check_model (const char *name, const char *arch, double tol, gboolean check_greedy)
{
  check_model_kv (name, arch, AT_DTYPE_F32, tol, TOL_BATCH, check_greedy);
}

static void
test_llama_f32 (void)
{
  check_model ("llama_f32", "llama", TOL_F32, TRUE);
}

/* Graphs that see a prefix of the cache, its length doubling from 4 rows as the position
 * grows: decode and prompt graphs for several prefix lengths; prompts in chunks. */
static void
test_cache_views (void)
{
  g_setenv ("ATELIER_LLM_CACHE_VIEW", "4", TRUE);
  check_model ("llama_f32", "llama", TOL_F32, TRUE);
  /* And prompts split into chunks of 3 tokens. */
  g_setenv ("ATELIER_LLM_BATCH", "3", TRUE);
  check_model ("qwen2_f32", "qwen2", TOL_F32, TRUE);
  g_unsetenv ("ATELIER_LLM_BATCH");
  g_unsetenv ("ATELIER_LLM_CACHE_VIEW");
}

/* On CPU devices the q4_0 and q8_0 matrix-vector products quantise the activations to 8 bits
 * per block of 32, as llama.cpp's CPU backend does (test-matmul checks that kernel against a
 * reference that quantises alike): the logits then stand ~2e-4 to 3e-4 (NMSE, measured) from
 * the f32 forward, token by token and against the prompt's f32 GEMM. So a quantised model is
 * checked as it runs there, and then with f32 activations throughout (ATELIER_MATMUL_QA8=0)
 * to the usual bound. */
static void
check_quantized (const char *name, const char *arch, AtDtype kv, double tol, double tol_batch)
{
  AtDevice *dev = at_test_device ();

  if (dev != NULL && at_device_get_info (dev)->type == VK_PHYSICAL_DEVICE_TYPE_CPU)
    check_model_kv (name, arch, kv, TOL_QA8, TOL_QA8, FALSE);
  g_setenv ("ATELIER_MATMUL_QA8", "0", TRUE);
  check_model_kv (name, arch, kv, tol, tol_batch, FALSE);
  g_unsetenv ("ATELIER_MATMUL_QA8");
}

/* q, k, v and gate, up each on their own (as when their dtypes differ) instead of stacked. */
static void
test_unstacked (void)
{
  g_setenv ("ATELIER_LLM_STACK", "0", TRUE);
  check_quantized ("llama_q8_0", "llama", AT_DTYPE_F32, TOL_Q8_0, TOL_BATCH);
  check_model ("qwen2_f32", "qwen2", TOL_F32, TRUE);
  g_unsetenv ("ATELIER_LLM_STACK");
}

static void
test_llama_f16 (void)
{
  check_model ("llama_f16", "llama", TOL_F16, FALSE);
}

static void
test_llama_q8_0 (void)
{
  check_quantized ("llama_q8_0", "llama", AT_DTYPE_F32, TOL_Q8_0, TOL_BATCH);
}

static void
test_llama_q4_0 (void)
{
  check_quantized ("llama_q4_0", "llama", AT_DTYPE_F32, TOL_Q4_0, TOL_BATCH);
}

static void
test_llama3 (void)
{
  check_model ("llama3_f32", "llama", TOL_F32, TRUE);
}

static void
test_qwen2 (void)
{
  check_model ("qwen2_f32", "qwen2", TOL_F32, TRUE);
}

static void
test_phi3 (void)
{
  check_model ("phi3_f32", "phi3", TOL_F32, TRUE);
}

/* Gemma: embeddings scaled, GELU gate (stacked with up, and apart), tied output, a head
 * dimension that is not dim / heads. */
static void
test_gemma (void)
{
  check_model ("gemma_f32", "gemma", TOL_F32, TRUE);
  check_quantized ("gemma_q8_0", "gemma", AT_DTYPE_F32, TOL_Q8_0, TOL_BATCH);
  g_setenv ("ATELIER_LLM_STACK", "0", TRUE);
  check_model ("gemma_f32", "gemma", TOL_F32, TRUE);
  g_unsetenv ("ATELIER_LLM_STACK");
}

/* An f16 KV cache (the writer's default) against a reference that rounds keys and values to
 * f16 too: the fused RoPE's cache writes (stacked q/k/v) and at_write_rows' (apart), the decode
 * and prompt kernels reading halves, over cache views of several lengths; gemma 2's sliding
 * window and soft cap. */
static void
test_kv_f16 (void)
{
  check_model_kv ("llama_f32", "llama", AT_DTYPE_F16, TOL_KV16, TOL_KV16_BATCH, TRUE);
  g_setenv ("ATELIER_LLM_STACK", "0", TRUE);
  g_setenv ("ATELIER_LLM_CACHE_VIEW", "4", TRUE);
  check_model_kv ("llama_f32", "llama", AT_DTYPE_F16, TOL_KV16, TOL_KV16_BATCH, TRUE);
  g_unsetenv ("ATELIER_LLM_CACHE_VIEW");
  g_unsetenv ("ATELIER_LLM_STACK");
  check_model_kv ("gemma2_f32", "gemma2", AT_DTYPE_F16, TOL_KV16, TOL_KV16_BATCH, TRUE);
  check_quantized ("llama_q8_0", "llama", AT_DTYPE_F16, TOL_KV16, TOL_KV16_BATCH);
}

/* Gemma 2: gemma's, plus soft-capped attention scores and logits, post-norms, and a sliding
 * window of 5 on even layers; the window in the decode kernel and in the prompt mask, over
 * cache views of several lengths and prompts in chunks of 3. */
static void
test_gemma2 (void)
{
  check_model ("gemma2_f32", "gemma2", TOL_F32, TRUE);
  check_quantized ("gemma2_q8_0", "gemma2", AT_DTYPE_F32, TOL_Q8_0, TOL_BATCH);
  g_setenv ("ATELIER_LLM_CACHE_VIEW", "4", TRUE);
  g_setenv ("ATELIER_LLM_BATCH", "3", TRUE);
  check_model ("gemma2_f32", "gemma2", TOL_F32, TRUE);
  g_unsetenv ("ATELIER_LLM_BATCH");
  g_unsetenv ("ATELIER_LLM_CACHE_VIEW");
}

/* The end of the context: 40 tokens, then 20 more, whose chunk padded to 32 would pass the
 * 64-token context and is cut (16, then 4). The last logits against the same 60 tokens fed
 * one at a time (the decode graphs). */
static void
test_context_end (void)
{
  Ref r;
  g_autoptr (AtLlm) m = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree float *batch = NULL, *single = NULL;
  gint32 toks[60];

  if (at_test_device () == NULL || !ref_load ("llama_f32", &r))
    return;
  m = open_model ("llama_f32", N_CTX, &error);
  g_assert_no_error (error);
  batch = g_new (float, r.n_vocab);
  single = g_new (float, r.n_vocab);
  for (guint i = 0; i < G_N_ELEMENTS (toks); i++)
    toks[i] = (gint32) ((i * 37 + 11) % r.n_vocab);
  g_assert_true (at_llm_eval (m, toks, 40, NULL, &error));
  g_assert_true (at_llm_eval (m, toks + 40, 20, batch, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (at_llm_get_position (m), ==, 60);
  at_llm_reset (m);
  for (guint i = 0; i < G_N_ELEMENTS (toks); i++)
    g_assert_true (at_llm_eval (m, &toks[i], 1, single, &error));
  g_assert_no_error (error);
  g_test_message ("context end: NMSE %.3g", at_nmse (single, batch, r.n_vocab));
  g_assert_cmpfloat (at_nmse (single, batch, r.n_vocab), <, TOL_BATCH);
  ref_clear (&r);
}

static void
expect_open_error (const char *name, int code, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtLlm) m = NULL;

  m = open_model (name, N_CTX, &error);
  g_assert_null (m);
  g_assert_error (error, AT_ERROR, code);
  if (strstr (error->message, fragment) == NULL)
    g_error ("%s: \"%s\" does not mention \"%s\"", name, error->message, fragment);
}

static void
test_errors (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtLlm) m = NULL;
  gint32 toks[N_CTX] = { 0 };
  gint32 bad = 256;

  if (at_test_device () == NULL || models_dir () == NULL)
    return;
  expect_open_error ("bad_arch", AT_ERROR_UNSUPPORTED, "\"mamba\"");
  expect_open_error ("missing", AT_ERROR_BAD_FILE, "blk.1.ffn_down.weight is missing");
  expect_open_error ("bad_shape", AT_ERROR_BAD_FILE, "blk.0.attn_k.weight has shape [16, 64]");
  expect_open_error ("bad_heads", AT_ERROR_BAD_FILE,
                     "head_count 4 is not a multiple of head_count_kv 3");
  m = open_model ("llama_f32", 0, &error);
  g_assert_null (m);
  g_assert_error (error, AT_ERROR, AT_ERROR_INVALID);
  g_clear_error (&error);

  m = open_model ("llama_f32", 8, &error);
  g_assert_no_error (error);
  g_assert_false (at_llm_eval (m, toks, 9, NULL, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "context of 8 tokens exceeded"));
  g_clear_error (&error);
  g_assert_true (at_llm_eval (m, toks, 6, NULL, &error));
  g_assert_true (at_llm_eval (m, toks, 1, NULL, &error));
  g_assert_true (at_llm_eval (m, toks, 1, NULL, &error));
  g_assert_false (at_llm_eval (m, toks, 1, NULL, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "exceeded"));
  g_clear_error (&error);
  g_assert_cmpuint (at_llm_get_position (m), ==, 8);
  at_llm_reset (m);
  g_assert_false (at_llm_eval (m, &bad, 1, NULL, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "token 256"));
  g_assert_cmpuint (at_llm_get_position (m), ==, 0);
}

/* llama.cpp's vocabulary-only files: real hyperparameters that must pass, then no weights. */
static void
test_vocab_only (void)
{
  static const char *const files[] = { "llama-bpe", "llama-spm", "phi-3", "qwen2" };

  if (at_test_device () == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *rel = g_strdup_printf ("tokenizers/ggml-vocab-%s.gguf", files[i]);
      g_autofree char *path = at_test_shared_path (rel);
      g_autoptr (AtGguf) gguf = NULL;
      g_autoptr (AtLlm) m = NULL;
      g_autoptr (GError) error = NULL;

      if (path == NULL)
        return;
      gguf = at_gguf_open (path, &error);
      g_assert_no_error (error);
      m = at_llm_new (at_test_device (), gguf, N_CTX, AT_DTYPE_F32, &error);
      g_assert_null (m);
      g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
      g_assert_nonnull (strstr (error->message, "token_embd.weight is missing"));
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/models/llm/llama-f32", test_llama_f32);
  g_test_add_func ("/models/llm/cache-views", test_cache_views);
  g_test_add_func ("/models/llm/unstacked", test_unstacked);
  g_test_add_func ("/models/llm/llama-f16-tied", test_llama_f16);
  g_test_add_func ("/models/llm/llama-q8_0", test_llama_q8_0);
  g_test_add_func ("/models/llm/llama-q4_0", test_llama_q4_0);
  g_test_add_func ("/models/llm/llama3-rope-freqs", test_llama3);
  g_test_add_func ("/models/llm/qwen2", test_qwen2);
  g_test_add_func ("/models/llm/phi3", test_phi3);
  g_test_add_func ("/models/llm/gemma", test_gemma);
  g_test_add_func ("/models/llm/gemma2", test_gemma2);
  g_test_add_func ("/models/llm/kv-f16", test_kv_f16);
  g_test_add_func ("/models/llm/context-end", test_context_end);
  g_test_add_func ("/models/llm/errors", test_errors);
  g_test_add_func ("/models/llm/vocab-only", test_vocab_only);
  return g_test_run ();
}
