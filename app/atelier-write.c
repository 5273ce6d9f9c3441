/* atelier-write.c: `atelier write --model FILE ...`: the writer's assistant on the command
 * line. An action (continue, rewrite, summarize, brainstorm, ask) over a document and selection, or
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
#include "atelier-writer.h"

static volatile sig_atomic_t interrupted;

static void
on_sigint (int sig)
{
  interrupted = 1;
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

int
atelier_cmd_write (int argc, char **argv)
{
  g_autofree char *model_path = NULL, *action_name = NULL, *instruction = NULL, *input = NULL, *selection = NULL;
  g_autofree char *system = NULL, *messages_path = NULL, *kv_type = NULL;
  g_auto (GStrv) stops = NULL;
  int max_tokens = 0, top_k = 40, ctx = 0;
  double temperature = 0.8, top_p = 0.95, min_p = 0.05, repeat_penalty = 1.1;
  gint64 seed = -1;
  gboolean print_prompt = FALSE, no_history = FALSE;
  gint64 parent_id = 0;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "The GGUF language model", "FILE" },
    { "action", 0, 0, G_OPTION_ARG_STRING, &action_name, "continue (default), rewrite, summarize, brainstorm, ask", "A" },
    { "instruction", 0, 0, G_OPTION_ARG_STRING, &instruction, "How to rewrite (\"shorter\", ...); ask: the question", "TEXT" },
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
    { "kv-type", 0, 0, G_OPTION_ARG_STRING, &kv_type, "The KV cache's type: f16 (default) or f32",
      "TYPE" },
    { "stop", 0, 0, G_OPTION_ARG_STRING_ARRAY, &stops, "Stop at this text (repeatable)", "TEXT" },
    { "print-prompt", 0, 0, G_OPTION_ARG_NONE, &print_prompt, "Print the exact prompt and exit", NULL },
    { "no-history", 0, 0, G_OPTION_ARG_NONE, &no_history, "Do not record the result in the history", NULL },
    { "parent", 0, 0, G_OPTION_ARG_INT64, &parent_id, "Record the result as a variant of history item ID", "ID" },
    { NULL },
  };
  g_autoptr (GOptionContext) octx = g_option_context_new ("- write with a language model");
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = NULL;
  g_autoptr (AtelierWriter) writer = atelier_writer_new ();
  g_auto (AtelierWriteRequest) request = { 0 };
  g_auto (AtelierWriteResult) result = { 0 };
  g_autofree char *prompt_text = NULL, *description = NULL;
  AtTextAction action = AT_TEXT_CONTINUE;

  atelier_write_request_init (&request);
  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    {
      fprintf (stderr, "atelier write: %s\n", error->message);
      return 2;
    }
  if (model_path == NULL || argc > 1 || max_tokens < 0 || ctx < 0 || parent_id < 0
      || (action_name != NULL && !at_text_action_from_name (action_name, &action))
      || (kv_type != NULL && !at_llm_parse_kv_dtype (kv_type, &request.kv_type)))
    {
      fprintf (stderr, "Usage: atelier write --model FILE [--action continue|rewrite|summarize|brainstorm|ask] "
                       "[--instruction TEXT] [--input FILE|-] [--selection START:END] [--system TEXT] "
                       "[--messages FILE] [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] "
                       "[--repeat-penalty R] [--seed S] [--ctx N] [--kv-type f16|f32] [--stop TEXT] "
                       "[--print-prompt] [--no-history] [--parent ID]\n");
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

  request.model_path = g_steal_pointer (&model_path);
  request.action = action;
  request.instruction = g_steal_pointer (&instruction);
  request.system = g_steal_pointer (&system);
  request.temperature = temperature;
  request.top_k = top_k;
  request.top_p = top_p;
  request.min_p = min_p;
  request.repeat_penalty = repeat_penalty;
  request.max_tokens = (guint) max_tokens;
  request.seed = seed;
  request.ctx = (guint) ctx;
  request.stop = g_steal_pointer (&stops);
  /* The model and the settings are checked before the document is read: a wrong --model
   * should not wait for a document typed on standard input. The model stays loaded. */
  request.document = g_strdup ("");
  if ((prompt_text = atelier_writer_render_prompt (writer, &request, &error)) == NULL)
    goto fail;
  g_clear_pointer (&prompt_text, g_free);
  g_clear_pointer (&request.document, g_free);
  if (messages_path != NULL)
    {
      if ((request.messages = load_messages (messages_path, &error)) == NULL)
        goto fail;
    }
  else
    {
      if ((request.document = read_input (input, &error)) == NULL)
        goto fail;
      request.sel_start = request.sel_end = strlen (request.document);
      if (selection != NULL
          && !parse_selection (selection, request.document, &request.sel_start, &request.sel_end, &error))
        goto fail;
    }
  if ((prompt_text = atelier_writer_render_prompt_full (writer, &request, &description, &error)) == NULL)
    goto fail;
  if (description != NULL)
    fprintf (stderr, "%s\n", description);
  if (print_prompt)
    {
      fputs (prompt_text, stdout);
      return 0;
    }

  signal (SIGINT, on_sigint);
  if (!atelier_writer_run (writer, &request, on_piece, NULL, NULL, &result, &error))
    goto fail;
  signal (SIGINT, SIG_DFL);
  printf ("\n");
  fprintf (stderr, "%u prompt tokens (%.1f tokens/s), %u generated (%.1f tokens/s), seed %u%s\n",
           result.stats.prompt_tokens, result.stats.prompt_tokens / MAX (result.stats.prompt_seconds, 1e-9),
           result.stats.generated_tokens, result.stats.generated_tokens / MAX (result.stats.generate_seconds, 1e-9),
           result.seed, interrupted ? ", stopped by Ctrl-C" : "");
  if (store != NULL)
    {
      gint64 id = atelier_writer_record (store, &request, &result, parent_id, NULL, &error);

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
