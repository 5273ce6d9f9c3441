/* test-complete-text.c: the generation job end to end on a tiny llama with a byte-level
 * tokenizer and a chat template (tools/ref/tiny_llm.py's llama_chat): greedy generation gives
 * the text of the PyTorch reference's greedy tokens, stop strings are cut, a callback or a
 * cancel stops within a token, prompts render through the model's template; and `atelier
 * write` prints the same text. */
#include <string.h>

#include "at-test-util.h"

typedef struct
{
  AtModelFile *file;
  AtTokenizer *tok;
  AtLlm *llm;
  GArray *prompt;   /* gint32 */
  GArray *greedy;   /* gint32, the reference */
  char *expected;   /* the reference greedy tokens as text */
  char *gguf_path;
} Fixture;

static gboolean
fixture_init (Fixture *f)
{
  const char *dir = at_test_tmpdir ();
  const char *args[] = { dir, NULL };
  g_autofree char *json_path = g_build_filename (dir, "llama_chat.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  AtDevice *dev = at_test_device ();
  JsonObject *ref;
  JsonArray *greedy;

  memset (f, 0, sizeof *f);
  if (dev == NULL)
    return FALSE;
  f->gguf_path = g_build_filename (dir, "llama_chat.gguf", NULL);
  if (!g_file_test (f->gguf_path, G_FILE_TEST_EXISTS) && !at_test_run_ref_tool ("tiny_llm.py", args))
    return FALSE;
  json_parser_load_from_file (parser, json_path, &error);
  g_assert_no_error (error);
  ref = json_node_get_object (json_parser_get_root (parser));
  f->file = at_model_file_open (f->gguf_path, &error);
  g_assert_no_error (error);
  f->tok = at_tokenizer_new_from_gguf (at_model_file_get_gguf (f->file), &error);
  g_assert_no_error (error);
  f->llm = at_llm_new (dev, at_model_file_get_gguf (f->file), 128, AT_DTYPE_F16, &error);
  g_assert_no_error (error);
  f->prompt = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_assert_true (at_text_prompt_tokens (f->tok, "Hello", FALSE, f->prompt, &error));
  /* The reference's prompt: the bytes of "Hello" (id = byte in this vocabulary). */
  g_assert_cmpuint (f->prompt->len, ==, json_array_get_length (json_object_get_array_member (ref, "prompt")));
  for (guint i = 0; i < f->prompt->len; i++)
    g_assert_cmpint (g_array_index (f->prompt, gint32, i), ==,
                     json_array_get_int_element (json_object_get_array_member (ref, "prompt"), i));
  greedy = json_object_get_array_member (ref, "greedy");
  f->greedy = g_array_new (FALSE, FALSE, sizeof (gint32));
  for (guint i = 0; i < json_array_get_length (greedy); i++)
    {
      gint32 id = (gint32) json_array_get_int_element (greedy, i);

      g_array_append_val (f->greedy, id);
    }
  f->expected = at_tokenizer_decode (f->tok, (const gint32 *) (gpointer) f->greedy->data, f->greedy->len, TRUE);
  return TRUE;
}

static void
fixture_clear (Fixture *f)
{
  g_clear_pointer (&f->llm, at_llm_free);
  g_clear_pointer (&f->tok, at_tokenizer_free);
  g_clear_pointer (&f->file, at_model_file_free);
  g_clear_pointer (&f->prompt, g_array_unref);
  g_clear_pointer (&f->greedy, g_array_unref);
  g_clear_pointer (&f->expected, g_free);
  g_clear_pointer (&f->gguf_path, g_free);
}

static void
greedy_params (AtCompleteParams *p, guint max_tokens)
{
  memset (p, 0, sizeof *p);
  at_sampler_params_init (&p->sampler);
  p->sampler.temperature = 0;
  p->max_tokens = max_tokens;
}

static gboolean
collect (const char *piece, const char *text, gpointer data)
{
  GString *s = data;

  g_assert_true (g_utf8_validate (piece, -1, NULL));
  g_string_append (s, piece);
  g_assert_cmpstr (s->str, ==, text);
  return TRUE;
}

static void
test_greedy (void)
{
  Fixture f;
  AtCompleteParams p;
  AtCompleteStats stats;
  g_autoptr (GString) streamed = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;

  if (!fixture_init (&f))
    return;
  greedy_params (&p, f.greedy->len);
  g_assert_true (at_complete_text (f.llm, f.tok, (const gint32 *) (gpointer) f.prompt->data, f.prompt->len, &p, NULL,
                                   collect, streamed, &text, &stats, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, f.expected);
  g_assert_cmpstr (streamed->str, ==, f.expected);
  g_assert_cmpuint (stats.generated_tokens, ==, f.greedy->len);
  g_assert_cmpuint (stats.prompt_tokens, ==, f.prompt->len);
  g_assert_true (stats.stopped_max);
  fixture_clear (&f);
}

static void
test_stop_string (void)
{
  Fixture f;
  AtCompleteParams p;
  AtCompleteStats stats;
  g_autoptr (GString) streamed = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL, *stop = NULL;
  const char *stops[2];
  const char *at;

  if (!fixture_init (&f))
    return;
  /* Two characters from the middle of the reference text: generation ends just before their
   * first occurrence, and no part of them is ever streamed. */
  at = g_utf8_offset_to_pointer (f.expected, 6);
  stop = g_strndup (at, (gsize) (g_utf8_offset_to_pointer (at, 2) - at));
  stops[0] = stop;
  stops[1] = NULL;
  greedy_params (&p, f.greedy->len);
  p.stop = stops;
  g_assert_true (at_complete_text (f.llm, f.tok, (const gint32 *) (gpointer) f.prompt->data, f.prompt->len, &p, NULL,
                                   collect, streamed, &text, &stats, &error));
  g_assert_no_error (error);
  g_assert_true (stats.stopped_string);
  g_assert_cmpuint (strlen (text), ==, (gsize) (strstr (f.expected, stop) - f.expected));
  g_assert_true (strncmp (text, f.expected, strlen (text)) == 0);
  g_assert_cmpstr (streamed->str, ==, text);
  fixture_clear (&f);
}

static gboolean
stop_after_three (const char *piece, const char *text, gpointer data)
{
  return ++*(int *) data < 3;
}

static void
test_stop_early (void)
{
  Fixture f;
  AtCompleteParams p;
  AtCompleteStats stats;
  g_autoptr (GError) error = NULL;
  g_autoptr (GCancellable) cancel = g_cancellable_new ();
  int calls = 0;

  if (!fixture_init (&f))
    return;
  greedy_params (&p, f.greedy->len);
  g_assert_true (at_complete_text (f.llm, f.tok, (const gint32 *) (gpointer) f.prompt->data, f.prompt->len, &p, NULL,
                                   stop_after_three, &calls, NULL, &stats, &error));
  g_assert_cmpint (calls, ==, 3);
  g_assert_cmpuint (stats.generated_tokens, <=, 4);

  g_cancellable_cancel (cancel);
  g_assert_true (at_complete_text (f.llm, f.tok, (const gint32 *) (gpointer) f.prompt->data, f.prompt->len, &p, cancel,
                                   NULL, NULL, NULL, &stats, &error));
  g_assert_true (stats.cancelled);
  g_assert_cmpuint (stats.generated_tokens, ==, 0);

  /* A prompt the context cannot hold is refused with a message. */
  {
    g_autoptr (GArray) long_prompt = g_array_new (FALSE, TRUE, sizeof (gint32));

    g_array_set_size (long_prompt, 200);
    g_assert_false (at_complete_text (f.llm, f.tok, (const gint32 *) (gpointer) long_prompt->data, long_prompt->len,
                                      &p, NULL, NULL, NULL, NULL, &stats, &error));
    g_assert_error (error, AT_ERROR, AT_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "128-token context"));
  }
  fixture_clear (&f);
}

static void
test_render (void)
{
  Fixture f;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonArray) messages = json_array_new ();
  JsonObject *m = json_object_new ();
  g_autofree char *template = NULL, *with = NULL, *without = NULL;
  gboolean from_template;

  if (!fixture_init (&f))
    return;
  json_object_set_string_member (m, "role", "user");
  json_object_set_string_member (m, "content", "Hi");
  json_array_add_object_element (messages, m);
  template = at_gguf_dup_string (at_model_file_get_gguf (f.file), "tokenizer.chat_template", &error);
  g_assert_no_error (error);
  with = at_text_render_prompt (NULL, messages, template, f.tok, &from_template, &error);
  g_assert_cmpstr (with, ==, "user: Hi\nassistant:");
  g_assert_true (from_template);
  without = at_text_render_prompt (NULL, messages, NULL, f.tok, &from_template, &error);
  g_assert_cmpstr (without, ==, "Hi\n\n");
  g_assert_false (from_template);
  fixture_clear (&f);
}

/* Gemma 2's template refuses a system role: the system text opens the first user turn
 * instead (the expected text follows the template by hand). A refusal of anything else is
 * still reported. */
static void
test_render_system_refused (void)
{
  Fixture f;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *path = at_test_shared_path ("chat-templates/google-gemma-2-2b-it.jinja");
  g_autofree char *template = NULL, *text = NULL, *bad = NULL, *want = NULL, *bos = NULL;
  gboolean from_template;
  JsonArray *messages;
  gsize len = 0;
  const char *b;

  if (path == NULL || !fixture_init (&f))
    return;
  g_assert_true (g_file_get_contents (path, &template, NULL, &error));
  g_assert_true (json_parser_load_from_data (parser,
                                             "[{\"role\": \"system\", \"content\": \"Be brief.\"},"
                                             " {\"role\": \"user\", \"content\": \"Hi\"},"
                                             " {\"role\": \"assistant\", \"content\": \"Hello.\"},"
                                             " {\"role\": \"user\", \"content\": \"And?\"}]",
                                             -1, &error));
  messages = json_node_get_array (json_parser_get_root (parser));
  text = at_text_render_prompt (NULL, messages, template, f.tok, &from_template, &error);
  g_assert_no_error (error);
  b = at_tokenizer_get_token_text (f.tok, at_tokenizer_get_bos (f.tok), &len);
  bos = g_strndup (b != NULL ? b : "", len);
  want = g_strconcat (bos, "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
                      "<start_of_turn>user\nAnd?<end_of_turn>\n<start_of_turn>model\n", NULL);
  g_assert_cmpstr (text, ==, want);
  g_assert_true (from_template);
  /* Two user turns in a row: the template's other refusal, with its own words. */
  json_array_remove_element (messages, 2);
  bad = at_text_render_prompt (NULL, messages, template, f.tok, &from_template, &error);
  g_assert_null (bad);
  g_assert_error (error, AT_ERROR, AT_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "Conversation roles must alternate"));
  fixture_clear (&f);
}

/* `atelier write` streams the same text (plus a newline) for the same prompt. */
static void
test_cli (void)
{
  Fixture f;
  const char *bin = g_getenv ("ATELIER_BIN");
  g_autofree char *input = g_build_filename (at_test_tmpdir (), "hello.txt", NULL);
  g_autofree char *out = NULL, *err = NULL, *want = NULL;
  g_autoptr (GError) error = NULL;
  int status;

  if (!fixture_init (&f))
    return;
  if (bin == NULL)
    {
      g_test_skip ("ATELIER_BIN is not set");
      fixture_clear (&f);
      return;
    }
  g_file_set_contents (input, "Hello", -1, &error);
  g_assert_no_error (error);
  {
    const char *argv[] = { bin, "write", "--model", f.gguf_path, "--input", input, "--temperature", "0",
                           "--repeat-penalty", "1", "--max-tokens", "32", NULL };

    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error));
  }
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  want = g_strconcat (f.expected, "\n", NULL);
  g_assert_cmpstr (out, ==, want);
  g_assert_nonnull (strstr (err, "32 generated"));
  fixture_clear (&f);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/models/complete/greedy", test_greedy);
  g_test_add_func ("/models/complete/stop-string", test_stop_string);
  g_test_add_func ("/models/complete/stop-early", test_stop_early);
  g_test_add_func ("/models/complete/render", test_render);
  g_test_add_func ("/models/complete/render-system-refused", test_render_system_refused);
  g_test_add_func ("/models/complete/cli", test_cli);
  return g_test_run ();
}
