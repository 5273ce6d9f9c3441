/* atelier-bench-text.c: `atelier bench text --model FILE [--json]`: a language model's speed on
 * the chosen device. A 512-token prompt (the model's own tokens, cycled) is evaluated, then 128
 * tokens are generated greedily; it reports prompt tokens/s, generated tokens/s, the time to
 * the first token, and the GB/s of weights that generation reads (every weight byte once per
 * token: the figure that bounds it) with its ratio to the CPU's streaming read. */
#include "config.h"

#include "atelier-bench-cases.h"

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

int
atelier_bench_text (AtDevice *dev, JsonBuilder *b, gboolean json, gboolean quick, double stream_read,
                    const char *model_path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtModelFile) file = NULL;
  g_autoptr (AtTokenizer) tok = NULL;
  g_autoptr (AtLlm) llm = NULL;
  g_autoptr (GArray) prompt = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (GArray) times = g_array_new (FALSE, FALSE, sizeof (gint64));
  double median_s = 0;
  AtCompleteParams params = { 0 };
  AtCompleteStats stats;
  AtGguf *gguf;
  AtTensorSet *set;
  guint64 weight_bytes = 0;
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
  if ((tok = at_tokenizer_new_from_gguf (gguf, &error)) == NULL
      || (llm = at_llm_new (dev, gguf, n_prompt + n_gen + 8, &error)) == NULL)
    goto fail;
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
  at_sampler_params_init (&params.sampler);
  params.sampler.temperature = 0;
  params.max_tokens = n_gen;
  /* Once to compile the graphs (lavapipe compiles shaders at first dispatch), then measured. */
  if (!at_complete_text (llm, tok, (const gint32 *) (gpointer) prompt->data, prompt->len, &params, NULL, NULL, NULL,
                         NULL, &stats, &error)
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
    printf ("model: %s (%s, %.1f MiB of weights)\n", model_path, at_llm_get_arch (llm), weight_bytes / 1048576.0);
  g_snprintf (name, sizeof name, "prompt, %u tokens", stats.prompt_tokens);
  atelier_bench_report (b, json, name, "tokens_per_s", stats.prompt_tokens / MAX (stats.prompt_seconds, 1e-9),
                        0);
  g_snprintf (name, sizeof name, "generate, %u tokens", stats.generated_tokens);
  atelier_bench_report (b, json, name, "tokens_per_s",
                        stats.generated_tokens / MAX (stats.generate_seconds, 1e-9), 0);
  if (median_s > 0)
    atelier_bench_report (b, json, "generate, median token", "tokens_per_s", 1.0 / median_s, 0);
  atelier_bench_report (b, json, "generate, weights read", "gbps",
                        weight_bytes * (double) stats.generated_tokens / MAX (stats.generate_seconds, 1e-9) / 1e9,
                        stream_read);
  atelier_bench_report (b, json, "time to first token", "ms", stats.first_token_seconds * 1e3, 0);
  /* ATELIER_PROFILE=1: where the GPU time went, op by op. */
  if (at_profile_enabled ())
    at_llm_print_profile (llm, stderr);
  return 0;

fail:
  fprintf (stderr, "atelier bench text: %s\n", error->message);
  return 1;
}
