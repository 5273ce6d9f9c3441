/* atelier-bench-text.c: `atelier bench text --model FILE [--json] [--llama-bench PATH]`: a
 * language model's speed on the chosen device. A 512-token prompt (the model's own tokens,
 * cycled) is evaluated, then 128 tokens are generated greedily; it reports prompt tokens/s,
 * generated tokens/s (and the median token interval as tokens/s), the time to the first token,
 * and the GB/s of weights that generation reads (every weight byte once per token: the figure
 * that bounds it) with its ratio to the CPU's streaming read.
 *
 * The anchor is llama.cpp's CPU backend on the same file, measured in the same run by its own
 * llama-bench (same prompt and generation lengths, every core): the speeds get their ratio to
 * it. Its generation is measured where ours is, after the prompt (llama-bench's `-d`, the
 * depth of context its test starts from): each token's attention reads the whole cache, so a
 * token at depth 512 costs more than one at depth 0, llama-bench's default, which is printed
 * beside it. llama.cpp is never part of Atelier; README's Benchmarks says how to build llama-bench
 * outside the tree. */
#include "config.h"

#include "atelier-bench-cases.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

#define PROMPT_TOKENS 512
#define GEN_TOKENS 128

/* The time of each streamed token, for the median interval: a steadier figure than the mean
 * on a shared machine, where a neighbour's burst stretches a few tokens. */
static gboolean
note_token (const char *piece, const char *text, gpointer user_data)
{
  gint64 now = g_get_monotonic_time ();

  g_array_append_val ((GArray *) user_data, now);
  return TRUE;
}

static int
cmp_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return (x > y) - (x < y);
}

/* What llama-bench measured: tokens/s of its prompt ("pp") test, of its generation ("tg") test
 * after the prompt (at depth n_prompt; 0 where this llama-bench has no -d) and from an empty
 * context (generate0). */
typedef struct
{
  double prompt, generate, generate0;
  char *build;
} LlamaAnchor;

/* llama-bench's binary: `given`, else $ATELIER_LLAMA_BENCH, else llama-bench on PATH; NULL if
 * none. */
static char *
find_llama_bench (const char *given)
{
  const char *env = g_getenv ("ATELIER_LLAMA_BENCH");

  if (given != NULL && *given != '\0')
    return g_strdup (given);
  if (env != NULL && *env != '\0')
    return g_strdup (env);
  return g_find_program_in_path ("llama-bench");
}

/* Runs llama-bench (`exe`) on `model` with our prompt and generation lengths on every core,
 * once, at depths 0 and n_prompt (`with_depth`), and reads its JSON records; FALSE with `error`
 * when it fails or reports no figures. */
static gboolean
run_llama_bench (const char *exe, const char *model, guint n_prompt, guint n_gen,
                 gboolean with_depth, LlamaAnchor *out, GError **error)
{
  g_autofree char *np = g_strdup_printf ("%u", n_prompt), *ng = g_strdup_printf ("%u", n_gen);
  g_autofree char *nt = g_strdup_printf ("%u", g_get_num_processors ());
  g_autofree char *nd = g_strdup_printf ("0,%u", n_prompt);
  /* Without the depths, the list ends where "-d" would stand. */
  const char *argv[] = { exe, "-m", model, "-p", np, "-n", ng, "-t", nt, "-r", "1", "-o", "json",
                         with_depth ? "-d" : NULL, nd, NULL };
  g_autofree char *stdout_text = NULL, *stderr_text = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;
  int status;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &stdout_text, &stderr_text,
                     &status, error))
    return FALSE;
  if (!g_spawn_check_wait_status (status, error))
    {
      /* Its own last word says why (a model it cannot load, an unknown option). */
      g_autofree char *tail = g_strstrip (g_strdup (stderr_text ? stderr_text : ""));
      char *last = strrchr (tail, '\n');

      g_prefix_error (error, "%s: ", exe);
      if (*tail != '\0')
        g_prefix_error (error, "%s; ", last ? last + 1 : tail);
      return FALSE;
    }
  if (!json_parser_load_from_data (parser, stdout_text, -1, error))
    {
      g_prefix_error (error, "%s printed no JSON: ", exe);
      return FALSE;
    }
  root = json_parser_get_root (parser);
  if (root != NULL && JSON_NODE_HOLDS_ARRAY (root))
    {
      JsonArray *records = json_node_get_array (root);

      for (guint i = 0; i < json_array_get_length (records); i++)
        {
          JsonNode *node = json_array_get_element (records, i);
          JsonObject *o = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
          gint64 p, g, d;
          double ts;

          if (o == NULL)
            continue;
          p = json_object_get_int_member_with_default (o, "n_prompt", 0);
          g = json_object_get_int_member_with_default (o, "n_gen", 0);
          d = json_object_get_int_member_with_default (o, "n_depth", 0);
          ts = json_object_get_double_member_with_default (o, "avg_ts", 0);
          if (p > 0 && g == 0 && d == 0)
            out->prompt = ts;
          else if (g > 0 && p == 0 && d == 0)
            out->generate0 = ts;
          else if (g > 0 && p == 0 && d == (gint64) n_prompt)
            out->generate = ts;
          if (out->build == NULL && json_object_has_member (o, "build_commit"))
            out->build = g_strdup (json_object_get_string_member_with_default (o, "build_commit", ""));
        }
    }
  if (!with_depth)
    out->generate = out->generate0;
  if (out->prompt <= 0 || out->generate <= 0)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_FAILED,
                   "%s reported no prompt and generation speeds (records with n_prompt, n_gen, avg_ts)",
                   exe);
      return FALSE;
    }
  return TRUE;
}

/* Measures the anchor and adds its record; a missing or failing llama-bench is said, not fatal. */
static void
llama_anchor (JsonBuilder *b, gboolean json, const char *given, const char *model, guint n_prompt,
              guint n_gen, LlamaAnchor *anchor)
{
  g_autofree char *exe = find_llama_bench (given);
  g_autoptr (GError) error = NULL;
  gboolean with_depth = TRUE;

  if (exe == NULL)
    {
      if (!json)
        printf ("anchor: llama.cpp's llama-bench not found (README, Benchmarks: build it outside "
                "the tree, then --llama-bench PATH)\n");
      return;
    }
  /* A llama-bench older than its -d measures generation from an empty context only. */
  if (!run_llama_bench (exe, model, n_prompt, n_gen, TRUE, anchor, &error))
    {
      g_autoptr (GError) error2 = NULL;

      if (!run_llama_bench (exe, model, n_prompt, n_gen, FALSE, anchor, &error2))
        {
          fprintf (stderr, "atelier bench text: the llama.cpp anchor failed: %s\n", error->message);
          anchor->prompt = anchor->generate = anchor->generate0 = 0;
          return;
        }
      fprintf (stderr, "atelier bench text: llama-bench measured generation from an empty context "
               "only (%s): the ratio compares tokens at different depths\n", error->message);
      with_depth = FALSE;
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "anchor");
  json_builder_add_string_value (b, "llama_cpp_cpu");
  json_builder_set_member_name (b, "build");
  json_builder_add_string_value (b, anchor->build ? anchor->build : "");
  json_builder_set_member_name (b, "prompt_tokens_per_s");
  json_builder_add_double_value (b, atelier_bench_round2 (anchor->prompt));
  json_builder_set_member_name (b, "generate_tokens_per_s");
  json_builder_add_double_value (b, atelier_bench_round2 (anchor->generate));
  json_builder_set_member_name (b, "generate_depth");
  json_builder_add_int_value (b, with_depth ? n_prompt : 0);
  json_builder_set_member_name (b, "generate_empty_context_tokens_per_s");
  json_builder_add_double_value (b, atelier_bench_round2 (anchor->generate0));
  json_builder_end_object (b);
  if (json)
    return;
  printf ("anchor: llama.cpp CPU (llama-bench %s, %u threads): prompt %.2f tokens/s, generate %.2f "
          "tokens/s ", anchor->build ? anchor->build : "", g_get_num_processors (), anchor->prompt,
          anchor->generate);
  if (with_depth)
    printf ("after the %u-token prompt (%.2f from an empty context)\n", n_prompt, anchor->generate0);
  else
    printf ("from an empty context\n");
}

int
atelier_bench_text (AtDevice *dev, JsonBuilder *b, gboolean json, gboolean quick, double stream_read,
                    const char *model_path, AtDtype kv_dtype, const char *llama_bench,
                    gboolean no_anchors)
{
  LlamaAnchor anchor = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (AtModelFile) file = NULL;
  g_autoptr (AtTokenizer) tok = NULL;
  g_autoptr (AtLlm) llm = NULL;
  g_autoptr (GArray) prompt = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (GArray) times = g_array_new (FALSE, FALSE, sizeof (gint64));
  double median_s = 0;
  AtCompleteParams params = { 0 };
  AtCompleteStats stats, first_stats;
  AtGguf *gguf;
  gint64 load_start;
  double load_s;
  AtTensorSet *set;
  guint64 weight_bytes = 0, mem_weights, mem_kv, mem_act;
  guint n_prompt = quick ? 128 : PROMPT_TOKENS, n_gen = quick ? 32 : GEN_TOKENS, n_vocab;
  char name[128];

  if (model_path == NULL)
    {
      fprintf (stderr, "atelier bench text: say which model: --model FILE.gguf\n");
      return 2;
    }
  if ((file = at_model_file_open (model_path, &error)) == NULL)
    goto fail;
  if ((gguf = at_model_file_get_gguf (file)) == NULL)
    {
      g_set_error (&error, AT_ERROR, AT_ERROR_UNSUPPORTED, "%s: not a GGUF language model", model_path);
      goto fail;
    }
  load_start = g_get_monotonic_time ();
  if ((tok = at_tokenizer_new_from_gguf (gguf, &error)) == NULL
      || (llm = at_llm_new (dev, gguf, n_prompt + n_gen + 8, kv_dtype, &error)) == NULL)
    goto fail;
  load_s = (g_get_monotonic_time () - load_start) / 1e6;
  set = at_gguf_get_tensors (gguf);
  for (guint i = 0; i < at_tensor_set_get_n_tensors (set); i++)
    {
      const AtTensorEntry *e = at_tensor_set_get (set, i);

      /* The embedding table is read one row per token, not whole. */
      if (strcmp (e->name, "token_embd.weight") != 0 || at_tensor_set_find (set, "output.weight") == NULL)
        weight_bytes += e->nbytes;
    }
  /* A prompt of ordinary tokens: the vocabulary from 1000 on (past the special and byte
   * tokens), cycled. */
  n_vocab = at_llm_get_n_vocab (llm);
  for (guint i = 0; i < n_prompt; i++)
    {
      gint32 id = (gint32) ((n_vocab > 2000 ? 1000 : 0) + (i * 7919u) % (n_vocab > 2000 ? n_vocab - 1000 : n_vocab));

      g_array_append_val (prompt, id);
    }
  if (!no_anchors)
    llama_anchor (b, json, llama_bench, model_path, n_prompt, n_gen, &anchor);
  at_sampler_params_init (&params.sampler);
  params.sampler.temperature = 0;
  params.max_tokens = n_gen;
  /* Once to compile the graphs (pipelines, and lavapipe compiles shaders at first dispatch),
   * then measured; the first run's time to first token is what a user waits for at the first
   * request after loading. */
  if (!at_complete_text (llm, tok, (const gint32 *) (gpointer) prompt->data, prompt->len, &params, NULL, NULL, NULL,
                         NULL, &first_stats, &error)
      || !at_complete_text (llm, tok, (const gint32 *) (gpointer) prompt->data, prompt->len, &params, NULL,
                            note_token, times, NULL, &stats, &error))
    goto fail;
  if (times->len >= 3)
    {
      gint64 *t = (gint64 *) (gpointer) times->data;

      /* Intervals between tokens (the first follows the prompt), sorted in place. */
      for (guint i = 0; i + 1 < times->len; i++)
        t[i] = t[i + 1] - t[i];
      g_array_set_size (times, times->len - 1);
      g_array_sort (times, cmp_gint64);
      median_s = g_array_index (times, gint64, times->len / 2) / 1e6;
    }
  if (!json)
    printf ("model: %s (%s, %.1f MiB of weights, %s KV cache)\n", model_path, at_llm_get_arch (llm),
            weight_bytes / 1048576.0, at_dtype_name (at_llm_get_kv_dtype (llm)));
  g_snprintf (name, sizeof name, "prompt, %u tokens", stats.prompt_tokens);
  atelier_bench_report_vs (b, json, name, "tokens_per_s",
                           stats.prompt_tokens / MAX (stats.prompt_seconds, 1e-9), anchor.prompt,
                           "llama.cpp CPU");
  g_snprintf (name, sizeof name, "generate, %u tokens", stats.generated_tokens);
  atelier_bench_report_vs (b, json, name, "tokens_per_s",
                           stats.generated_tokens / MAX (stats.generate_seconds, 1e-9), anchor.generate,
                           "llama.cpp CPU");
  if (median_s > 0)
    atelier_bench_report_vs (b, json, "generate, median token", "tokens_per_s", 1.0 / median_s,
                             anchor.generate, "llama.cpp CPU");
  atelier_bench_report (b, json, "generate, weights read", "gbps",
                        weight_bytes * (double) stats.generated_tokens / MAX (stats.generate_seconds, 1e-9) / 1e9,
                        stream_read);
  atelier_bench_report (b, json, "time to first token", "ms", stats.first_token_seconds * 1e3, 0);
  atelier_bench_report (b, json, "load: tokenizer, weights to the device", "ms", load_s * 1e3, 0);
  atelier_bench_report (b, json, "first run: time to first token, compiling", "ms",
                        first_stats.first_token_seconds * 1e3, 0);
  /* Device memory: weights, the KV cache for this run's context, the graphs' arenas. */
  at_llm_get_memory (llm, &mem_weights, &mem_kv, &mem_act);
  atelier_bench_report (b, json, "device memory, weights", "mib", mem_weights / 1048576.0, 0);
  g_snprintf (name, sizeof name, "device memory, KV cache (%u tokens)", at_llm_get_n_ctx (llm));
  atelier_bench_report (b, json, name, "mib", mem_kv / 1048576.0, 0);
  atelier_bench_report (b, json, "device memory, activations", "mib", mem_act / 1048576.0, 0);
  /* ATELIER_PROFILE=1: where the GPU time went, op by op. */
  if (at_profile_enabled ())
    at_llm_print_profile (llm, stderr);
  g_free (anchor.build);
  return 0;

fail:
  g_free (anchor.build);
  fprintf (stderr, "atelier bench text: %s\n", error->message);
  return 1;
}
