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
#include "atelier-store.h"

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
  g_string_append ((GString *) data, piece);
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

/* What a run records in the history: the generated text (the main asset, and searchable),
 * the document or conversation it worked on (the "input" asset), and every setting in the
 * parameters. The model's hash covers its size and first and last MiB only: hashing a
 * multi-gigabyte file on every run would cost seconds. */
static gint64
record_history (AtelierStore *store, const char *model_path, const char *family, const char *prompt,
                const char *input, const char *input_type, const char *generated, gint64 parent_id,
                JsonBuilder *params, GError **error)
{
  g_autoptr (JsonNode) root = json_builder_get_root (params);
  g_autofree char *params_json = json_to_string (root, FALSE);
  g_autofree char *hash = NULL;
  /* The asset keeps the exact bytes; the searchable text must be UTF-8, and a stop (Ctrl-C, a
   * token limit) can cut a character in half. */
  g_autofree char *searchable = g_utf8_make_valid (generated, -1);
  g_autoptr (GBytes) main_bytes = g_bytes_new (generated, strlen (generated));
  g_autoptr (GBytes) input_bytes = input != NULL ? g_bytes_new (input, strlen (input)) : NULL;
  AtelierAssetNew assets[2] = {
    { "main", "text/plain", main_bytes },
    { "input", input_type, input_bytes },
  };
  AtelierItemNew item = { 0 };
  JsonObject *o = json_node_get_object (root);
  gint64 size = 0;

  if ((hash = atelier_store_hash_model_file (model_path, &size, error)) == NULL
      || (item.model_id = atelier_store_ensure_model (store, model_path, "llm", family, size, hash, error)) == 0)
    return 0;
  item.kind = ATELIER_ITEM_TEXT;
  item.prompt = prompt;
  item.params_json = params_json;
  item.has_seed = TRUE;
  item.seed = json_object_get_int_member (o, "seed");
  item.parent_id = parent_id;
  item.text = searchable;
  item.assets = assets;
  item.n_assets = input != NULL ? 2 : 1;
  return atelier_store_save (store, &item, error);
}

static void
add_param_double (JsonBuilder *b, const char *name, double v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_double_value (b, v);
}

static void
add_param_int (JsonBuilder *b, const char *name, gint64 v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, v);
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
  gboolean print_prompt = FALSE, no_history = FALSE;
  gint64 parent_id = 0;
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
    { "no-history", 0, 0, G_OPTION_ARG_NONE, &no_history, "Do not record the result in the history", NULL },
    { "parent", 0, 0, G_OPTION_ARG_INT64, &parent_id, "Record the result as a variant of history item ID", "ID" },
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
  g_autoptr (AtelierStore) store = NULL;
  g_autoptr (GString) generated = g_string_new (NULL);
  g_autoptr (JsonBuilder) record = json_builder_new ();
  g_auto (AtModelInfo) info = { 0 };
  g_autofree char *doc_for_history = NULL;
  const char *history_prompt;
  gboolean from_template;
  gint64 file_ctx = 0;
  guint n_ctx;

  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    {
      fprintf (stderr, "atelier write: %s\n", error->message);
      return 2;
    }
  if (model_path == NULL || argc > 1 || max_tokens < 0 || ctx < 0 || parent_id < 0
      || (action_name != NULL && !at_text_action_from_name (action_name, &action)))
    {
      fprintf (stderr, "Usage: atelier write --model FILE [--action continue|rewrite|summarize|brainstorm] "
                       "[--instruction TEXT] [--input FILE|-] [--selection START:END] [--system TEXT] [--messages FILE] "
                       "[--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] "
                       "[--seed S] [--ctx N] [--stop TEXT] [--print-prompt] [--no-history] [--parent ID]\n");
      return 2;
    }
  /* The history is opened first: a wrong --parent should not cost a generation. */
  if (!no_history && !print_prompt)
    {
      g_autoptr (AtelierItem) parent = NULL;

      if ((store = atelier_store_open (NULL, &error)) == NULL)
        goto fail;
      if (parent_id > 0 && (parent = atelier_store_get (store, parent_id, &error)) == NULL)
        {
          g_prefix_error (&error, "--parent %" G_GINT64_FORMAT ": ", parent_id);
          goto fail;
        }
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
      doc_for_history = g_strdup (doc);
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
  if (!at_complete_text (llm, tok, (const gint32 *) (gpointer) ids->data, ids->len, &params, NULL, on_piece, generated,
                         NULL, &stats, &error))
    goto fail;
  signal (SIGINT, SIG_DFL);
  printf ("\n");
  fprintf (stderr, "%u prompt tokens (%.1f tokens/s), %u generated (%.1f tokens/s), seed %u%s\n", stats.prompt_tokens,
           stats.prompt_tokens / MAX (stats.prompt_seconds, 1e-9), stats.generated_tokens,
           stats.generated_tokens / MAX (stats.generate_seconds, 1e-9), params.sampler.seed,
           interrupted ? ", stopped by Ctrl-C" : "");
  if (store != NULL)
    {
      gint64 id;

      json_builder_begin_object (record);
      json_builder_set_member_name (record, "action");
      json_builder_add_string_value (record, messages != NULL ? "messages" : at_text_action_name (action));
      if (instruction != NULL)
        {
          json_builder_set_member_name (record, "instruction");
          json_builder_add_string_value (record, instruction);
        }
      if (system != NULL)
        {
          json_builder_set_member_name (record, "system");
          json_builder_add_string_value (record, system);
        }
      if (selection != NULL)
        {
          json_builder_set_member_name (record, "selection");
          json_builder_add_string_value (record, selection);
        }
      add_param_double (record, "temperature", temperature);
      add_param_int (record, "top_k", top_k);
      add_param_double (record, "top_p", top_p);
      add_param_double (record, "min_p", min_p);
      add_param_double (record, "repeat_penalty", repeat_penalty);
      add_param_int (record, "seed", params.sampler.seed);
      add_param_int (record, "max_tokens", max_tokens);
      add_param_int (record, "ctx", n_ctx);
      json_builder_set_member_name (record, "stop");
      json_builder_begin_array (record);
      for (guint i = 0; stops != NULL && stops[i] != NULL; i++)
        json_builder_add_string_value (record, stops[i]);
      json_builder_end_array (record);
      json_builder_set_member_name (record, "model");
      json_builder_add_string_value (record, model_path);
      add_param_int (record, "prompt_tokens", stats.prompt_tokens);
      add_param_int (record, "generated_tokens", stats.generated_tokens);
      json_builder_set_member_name (record, "stopped");
      json_builder_add_boolean_value (record, interrupted != 0);
      json_builder_end_object (record);
      at_model_file_recognize (file, &info);
      /* The prompt a search finds it by: the instruction, else the last message, else the action. */
      history_prompt = instruction != NULL ? instruction : at_text_action_name (action);
      if (messages != NULL && json_array_get_length (messages) > 0)
        history_prompt = json_object_get_string_member_with_default (
          json_array_get_object_element (messages, json_array_get_length (messages) - 1), "content", history_prompt);
      {
        g_autoptr (JsonNode) messages_node = messages != NULL ? json_node_init_array (json_node_alloc (), messages)
                                                               : NULL;
        g_autofree char *messages_text = messages_node != NULL ? json_to_string (messages_node, FALSE) : NULL;

        id = record_history (store, model_path, info.family, history_prompt,
                             messages != NULL ? messages_text : doc_for_history,
                             messages != NULL ? "application/json" : "text/plain", generated->str, parent_id, record,
                             &error);
      }
      if (id == 0)
        {
          g_prefix_error (&error, "the text was not saved in the history: ");
          goto fail;
        }
      fprintf (stderr, "saved as history item %" G_GINT64_FORMAT "\n", id);
    }
  return 0;

fail:
  fprintf (stderr, "atelier write: %s\n", error->message);
  return 1;
}
