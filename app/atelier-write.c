/* atelier-write.c: `atelier write --model FILE ...`: the writer's assistant on the command
 * line. An action (continue, rewrite, summarize, brainstorm) over a document and selection, or
 * a conversation from --messages, becomes the model's prompt (its own chat template); the tokens
 * stream to stdout as they come, Ctrl-C stops after the current token. --print-prompt prints
 * the exact text the model would receive and exits (a vocabulary-only GGUF is enough). */
#include "atelier-commands.h"

#include <json-glib/json-glib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "at-engine.h"

static volatile sig_atomic_t interrupted;

static void
on_sigint (int sig)
{
  interrupted = 1;
}

typedef struct
{
  AtTokenizer *tokenizer;
} CountData;

static gsize
count_tokens (const char *text, gsize len, gpointer data)
{
  CountData *c = data;
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));

  if (!at_tokenizer_encode (c->tokenizer, text, (gssize) len, FALSE, FALSE, ids, NULL))
    return len; /* invalid text never reaches here (checked before); be safe */
  return ids->len;
}

static gboolean
on_piece (const char *piece, const char *text, gpointer data)
{
  fputs (piece, stdout);
  fflush (stdout);
  return !interrupted;
}

static char *
read_input (const char *path, GError **error)
{
  g_autoptr (GString) s = g_string_new (NULL);
  char buf[65536];
  size_t n;
  char *contents = NULL;

  if (path != NULL && strcmp (path, "-") != 0)
    return g_file_get_contents (path, &contents, NULL, error) ? contents : NULL;
  while ((n = fread (buf, 1, sizeof buf, stdin)) > 0)
    g_string_append_len (s, buf, (gssize) n);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

/* "START:END" in characters into byte offsets of `doc`. */
static gboolean
parse_selection (const char *spec, const char *doc, gsize *start, gsize *end, GError **error)
{
  glong n = g_utf8_strlen (doc, -1);
  gint64 a, b;
  g_auto (GStrv) parts = g_strsplit (spec, ":", 2);

  if (g_strv_length (parts) != 2 || !g_ascii_string_to_signed (parts[0], 10, 0, n, &a, NULL)
      || !g_ascii_string_to_signed (parts[1], 10, 0, n, &b, NULL) || a > b)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID,
                   "--selection %s: expected START:END in characters, 0 <= START <= END <= %ld", spec, n);
      return FALSE;
    }
  *start = (gsize) (g_utf8_offset_to_pointer (doc, (glong) a) - doc);
  *end = (gsize) (g_utf8_offset_to_pointer (doc, (glong) b) - doc);
  return TRUE;
}

static JsonArray *
load_messages (const char *path, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;
  JsonArray *arr;

  if (!json_parser_load_from_file (parser, path, error))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_ARRAY (root))
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "%s: expected a JSON array of {\"role\", \"content\"}", path);
      return NULL;
    }
  arr = json_node_get_array (root);
  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      JsonNode *n = json_array_get_element (arr, i);
      JsonObject *o = JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;

      if (o == NULL || json_object_get_string_member_with_default (o, "role", NULL) == NULL
          || json_object_get_string_member_with_default (o, "content", NULL) == NULL)
        {
          g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "%s: message %u needs string \"role\" and \"content\"", path,
                       i);
          return NULL;
        }
    }
  return json_array_ref (arr);
}

/* The GGUF of a language model, or an error that says what the file is instead. */
static AtGguf *
language_model (AtModelFile *file, GError **error)
{
  g_auto (AtModelInfo) info = { 0 };
  g_autofree char *base = g_path_get_basename (at_model_file_get_path (file));

  at_model_file_recognize (file, &info);
  if (info.kind != AT_MODEL_KIND_LLM || at_model_file_get_gguf (file) == NULL)
    {
      if (info.kind == AT_MODEL_KIND_UNKNOWN)
        g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED, "%s is not a GGUF language model (%s)", base,
                     info.reason);
      else
        g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED, "%s is a %s%s%s%s, not a GGUF language model", base,
                     at_model_kind_name (info.kind), info.family != NULL ? " (" : "",
                     info.family != NULL ? info.family : "", info.family != NULL ? ")" : "");
      return NULL;
    }
  return at_model_file_get_gguf (file);
}

int
atelier_cmd_write (int argc, char **argv)
{
  g_autofree char *model_path = NULL, *action_name = NULL, *instruction = NULL, *input = NULL, *selection = NULL;
  g_autofree char *system = NULL, *messages_path = NULL;
  g_auto (GStrv) stops = NULL;
  int max_tokens = 0, top_k = 40, ctx = 0;
  double temperature = 0.8, top_p = 0.95, min_p = 0.05, repeat_penalty = 1.1;
  gint64 seed = -1;
  gboolean print_prompt = FALSE;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "The GGUF language model", "FILE" },
    { "action", 0, 0, G_OPTION_ARG_STRING, &action_name, "continue (default), rewrite, summarize, brainstorm", "A" },
    { "instruction", 0, 0, G_OPTION_ARG_STRING, &instruction, "How to rewrite (\"shorter\", ...)", "TEXT" },
    { "input", 'i', 0, G_OPTION_ARG_FILENAME, &input, "The document (default: standard input)", "FILE|-" },
    { "selection", 0, 0, G_OPTION_ARG_STRING, &selection, "Selected characters (default: cursor at the end)",
      "START:END" },
    { "system", 0, 0, G_OPTION_ARG_STRING, &system, "An extra system message", "TEXT" },
    { "messages", 0, 0, G_OPTION_ARG_FILENAME, &messages_path, "A conversation as JSON instead of an action", "FILE" },
    { "max-tokens", 'n', 0, G_OPTION_ARG_INT, &max_tokens, "Most tokens to generate (256, at most half the context)",
      "N" },
    { "temperature", 0, 0, G_OPTION_ARG_DOUBLE, &temperature, "0 = greedy (0.8)", "T" },
    { "top-k", 0, 0, G_OPTION_ARG_INT, &top_k, "Keep the K most likely (40; 0 = all)", "K" },
    { "top-p", 0, 0, G_OPTION_ARG_DOUBLE, &top_p, "Nucleus (0.95)", "P" },
    { "min-p", 0, 0, G_OPTION_ARG_DOUBLE, &min_p, "Drop below P x the most likely (0.05)", "P" },
    { "repeat-penalty", 0, 0, G_OPTION_ARG_DOUBLE, &repeat_penalty, "Over the last 64 tokens (1.1)", "R" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Makes a run reproducible (default: random)", "S" },
    { "ctx", 'c', 0, G_OPTION_ARG_INT, &ctx, "Context tokens (default: the model's, at most 4096)", "N" },
    { "stop", 0, 0, G_OPTION_ARG_STRING_ARRAY, &stops, "Stop at this text (repeatable)", "TEXT" },
    { "print-prompt", 0, 0, G_OPTION_ARG_NONE, &print_prompt, "Print the exact prompt and exit", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) octx = g_option_context_new ("- write with a language model");
  g_autoptr (GError) error = NULL;
  g_autoptr (AtModelFile) file = NULL;
  g_autoptr (AtTokenizer) tok = NULL;
  g_autoptr (JsonArray) messages = NULL;
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (AtLlm) llm = NULL;
  g_autofree char *template = NULL, *prompt_text = NULL, *doc = NULL;
  g_auto (AtTextPrompt) prompt = { 0 };
  AtTextAction action = AT_TEXT_CONTINUE;
  AtCompleteParams params = { 0 };
  AtCompleteStats stats;
  AtGguf *gguf;
  AtDevice *dev;
  gboolean from_template;
  gint64 file_ctx = 0;
  guint n_ctx;

  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    {
      fprintf (stderr, "atelier write: %s\n", error->message);
      return 2;
    }
  if (model_path == NULL || argc > 1 || max_tokens < 0 || ctx < 0
      || (action_name != NULL && !at_text_action_from_name (action_name, &action)))
    {
      fprintf (stderr, "Usage: atelier write --model FILE [--action continue|rewrite|summarize|brainstorm] "
                       "[--instruction TEXT] [--input FILE|-] [--selection START:END] [--system TEXT] [--messages FILE] "
                       "[--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] "
                       "[--seed S] [--ctx N] [--stop TEXT] [--print-prompt]\n");
      return 2;
    }

  if ((file = at_model_file_open (model_path, &error)) == NULL || (gguf = language_model (file, &error)) == NULL
      || (tok = at_tokenizer_new_from_gguf (gguf, &error)) == NULL)
    goto fail;
  template = at_gguf_dup_string (gguf, "tokenizer.chat_template", NULL);
  {
    g_autofree char *arch = at_gguf_dup_string (gguf, "general.architecture", NULL);
    g_autofree char *key = g_strconcat (arch, ".context_length", NULL);

    at_gguf_get_int (gguf, key, &file_ctx, NULL);
  }
  n_ctx = ctx > 0 ? (guint) ctx : file_ctx > 0 ? (guint) MIN (file_ctx, 4096) : 2048;
  if (max_tokens == 0)
    max_tokens = (int) MIN (256, n_ctx / 2);
  if ((guint) max_tokens >= n_ctx)
    {
      g_set_error (&error, AT_ERROR, AT_ERROR_INVALID, "--max-tokens %d leaves no room in a %u-token context",
                   max_tokens, n_ctx);
      goto fail;
    }

  if (messages_path != NULL)
    {
      if ((messages = load_messages (messages_path, &error)) == NULL)
        goto fail;
    }
  else
    {
      CountData cd = { tok };
      gsize start, end, overhead;
      g_auto (AtTextPrompt) empty = { 0 };
      g_autofree char *empty_text = NULL;
      gboolean ft;

      if ((doc = read_input (input, &error)) == NULL)
        goto fail;
      start = end = strlen (doc);
      if (selection != NULL && !parse_selection (selection, doc, &start, &end, &error))
        goto fail;
      /* What the recipe and the template cost without the document. */
      if (!at_text_prompt_build (&empty, action, "", 0, 0, instruction, system, G_MAXSIZE, count_tokens, &cd, &error)
          || (empty_text = at_text_render_prompt (empty.completion, empty.messages, template, tok, &ft, &error)) == NULL)
        goto fail;
      overhead = count_tokens (empty_text, strlen (empty_text), &cd) + 8;
      if (overhead + (guint) max_tokens >= n_ctx)
        {
          g_set_error (&error, AT_ERROR, AT_ERROR_INVALID, "a %u-token context has no room for the text", n_ctx);
          goto fail;
        }
      if (!at_text_prompt_build (&prompt, action, doc, start, end, instruction, system,
                                 n_ctx - (guint) max_tokens - overhead, count_tokens, &cd, &error))
        goto fail;
      {
        g_autofree char *what = at_text_prompt_describe (&prompt);

        fprintf (stderr, "%s\n", what);
      }
    }
  prompt_text = at_text_render_prompt (prompt.completion, messages != NULL ? messages : prompt.messages, template, tok,
                                       &from_template, &error);
  if (prompt_text == NULL || !at_text_prompt_tokens (tok, prompt_text, from_template, ids, &error))
    goto fail;
  if (print_prompt)
    {
      fputs (prompt_text, stdout);
      return 0;
    }

  if ((dev = at_device_get_default (&error)) == NULL || (llm = at_llm_new (dev, gguf, n_ctx, &error)) == NULL)
    goto fail;
  at_sampler_params_init (&params.sampler);
  params.sampler.temperature = (float) temperature;
  params.sampler.top_k = (guint) MAX (top_k, 0);
  params.sampler.top_p = (float) top_p;
  params.sampler.min_p = (float) min_p;
  params.sampler.repeat_penalty = (float) repeat_penalty;
  params.sampler.seed = seed >= 0 ? (guint32) seed : g_random_int ();
  params.max_tokens = (guint) max_tokens;
  params.stop = (const char *const *) stops;
  signal (SIGINT, on_sigint);
  if (!at_complete_text (llm, tok, (const gint32 *) (gpointer) ids->data, ids->len, &params, NULL, on_piece, NULL,
                         NULL, &stats, &error))
    goto fail;
  signal (SIGINT, SIG_DFL);
  printf ("\n");
  fprintf (stderr, "%u prompt tokens (%.1f tokens/s), %u generated (%.1f tokens/s), seed %u%s\n", stats.prompt_tokens,
           stats.prompt_tokens / MAX (stats.prompt_seconds, 1e-9), stats.generated_tokens,
           stats.generated_tokens / MAX (stats.generate_seconds, 1e-9), params.sampler.seed,
           interrupted ? ", stopped by Ctrl-C" : "");
  return 0;

fail:
  fprintf (stderr, "atelier write: %s\n", error->message);
  return 1;
}
