/* test-writer.c: the writer's shared code (app/atelier-writer.c) on the tiny random Llama that
 * tools/ref/tiny_llm.py writes (llama_chat: a byte-level tokenizer and a chat template).
 *
 * The independent check of the generated text is `atelier write` itself: the CLI's greedy
 * output is compared with the PyTorch reference in test-complete-text.c, so a greedy run here
 * must give byte for byte what `$ATELIER_BIN write --temperature 0` prints, and the prompt
 * what `--print-prompt` prints. Also: a job through the queue streams exactly the result's
 * text; cancel mid-generation; wrong and non-LLM model files give errors naming them; the
 * history rows of a proposal and of a document state; a second run on the cached model.
 * Generation needs a Vulkan device and python3-torch (skipped with the reason without). */
#include <glib/gstdio.h>
#include <string.h>

#include "at-test-util.h"
#include "atelier-writer.h"

static GThread *main_thread;
static char *model_path;
static gboolean model_tried;

/* llama_chat.gguf, made once; NULL after g_test_skip(). */
static const char *
tiny_model (void)
{
  const char *args[] = { at_test_tmpdir (), NULL };
  g_autofree char *path = g_build_filename (at_test_tmpdir (), "llama_chat.gguf", NULL);

  if (model_path == NULL && !model_tried)
    {
      model_tried = TRUE;
      if (at_test_run_ref_tool ("tiny_llm.py", args))
        model_path = g_steal_pointer (&path);
      return model_path;
    }
  if (model_path == NULL)
    g_test_skip ("tools/ref/tiny_llm.py could not make the model (see the first test's message)");
  return model_path;
}

static void
greedy_request (AtelierWriteRequest *r, const char *document, guint max_tokens)
{
  atelier_write_request_init (r);
  r->model_path = g_strdup (model_path);
  r->document = g_strdup (document);
  r->sel_start = r->sel_end = strlen (document);
  r->temperature = 0;
  r->seed = 5;
  r->max_tokens = max_tokens;
}

/* FALSE after g_test_skip() when there is no `atelier` to compare with. */
static gboolean
have_cli (void)
{
  if (g_getenv ("ATELIER_BIN") != NULL)
    return TRUE;
  g_test_skip ("ATELIER_BIN is not set (meson test sets it)");
  return FALSE;
}

/* `$ATELIER_BIN write ...` with the document on a file; its stdout. */
static char *
run_cli (const char *document, const char *const *extra)
{
  g_autofree char *input = g_build_filename (at_test_tmpdir (), "cli-input.txt", NULL);
  g_autofree char *data_dir = g_build_filename (at_test_tmpdir (), "cli-data", NULL);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_auto (GStrv) env = g_environ_setenv (g_get_environ (), "ATELIER_DATA_DIR", data_dir, TRUE);
  g_autoptr (GError) error = NULL;
  char *out = NULL;
  g_autofree char *err = NULL;
  int status;

  g_assert_true (g_file_set_contents (input, document, -1, &error));
  g_ptr_array_add (argv, (gpointer) g_getenv ("ATELIER_BIN"));
  g_ptr_array_add (argv, (gpointer) "write");
  g_ptr_array_add (argv, (gpointer) "--model");
  g_ptr_array_add (argv, model_path);
  g_ptr_array_add (argv, (gpointer) "--input");
  g_ptr_array_add (argv, input);
  g_ptr_array_add (argv, (gpointer) "--no-history");
  for (guint i = 0; extra[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) extra[i]);
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, env, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                               &error));
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("atelier write failed: %s", err);
  return out;
}

static gboolean
collect_piece (const char *piece, const char *text, gpointer data)
{
  g_string_append ((GString *) data, piece);
  return TRUE;
}

/* ---- no device needed ---- */

static const char *
asset_path (const AtelierItem *item, const char *role)
{
  const AtelierAsset *asset = atelier_item_get_asset (item, role);

  g_assert_nonnull (asset);
  return asset->path;
}

static void
test_bad_model (void)
{
  g_autoptr (AtelierWriter) writer = atelier_writer_new ();
  g_autofree char *not_llm = g_build_filename (at_test_tmpdir (), "notes-not-a-model.gguf", NULL);
  g_auto (AtelierWriteRequest) r = { 0 };
  g_auto (AtelierWriteResult) result = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *prompt = NULL;

  atelier_write_request_init (&r);
  r.model_path = g_strdup ("/nonexistent/folder/model.gguf");
  r.document = g_strdup ("Hello");
  r.sel_start = r.sel_end = 5;
  g_assert_false (atelier_writer_run (writer, &r, collect_piece, NULL, NULL, &result, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "/nonexistent/folder/model.gguf"));
  g_assert_null (result.text);
  g_clear_error (&error);
  g_assert_null (atelier_writer_render_prompt (writer, &r, &error));
  g_assert_nonnull (strstr (error->message, "/nonexistent/folder/model.gguf"));
  g_clear_error (&error);

  /* A file that is no model at all. */
  g_assert_true (g_file_set_contents (not_llm, "just some notes, not weights\n", -1, &error));
  g_free (r.model_path);
  r.model_path = g_strdup (not_llm);
  g_assert_false (atelier_writer_run (writer, &r, collect_piece, NULL, NULL, &result, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "notes-not-a-model.gguf"));
  g_clear_error (&error);

  /* No model chosen. */
  g_clear_pointer (&r.model_path, g_free);
  g_assert_null (prompt = atelier_writer_render_prompt (writer, &r, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_INVALID);
}

/* A model file of another kind (a safetensors file of one tensor): the error names it and
 * says it is not a language model. */
static void
test_not_llm_file (void)
{
  g_autoptr (AtelierWriter) writer = atelier_writer_new ();
  g_autofree char *path = g_build_filename (at_test_tmpdir (), "weights.safetensors", NULL);
  const char *header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
  g_autoptr (GByteArray) bytes = g_byte_array_new ();
  guint64 n = strlen (header);
  guint8 le[8];
  float w = 1.0f;
  g_auto (AtelierWriteRequest) r = { 0 };
  g_auto (AtelierWriteResult) result = { 0 };
  g_autoptr (GError) error = NULL;

  for (int i = 0; i < 8; i++)
    le[i] = (guint8) (n >> (8 * i));
  g_byte_array_append (bytes, le, 8);
  g_byte_array_append (bytes, (const guint8 *) header, (guint) n);
  g_byte_array_append (bytes, (const guint8 *) &w, 4);
  g_assert_true (g_file_set_contents (path, (const char *) bytes->data, bytes->len, &error));
  atelier_write_request_init (&r);
  r.model_path = g_strdup (path);
  r.document = g_strdup ("Hello");
  r.sel_start = r.sel_end = 5;
  g_assert_false (atelier_writer_run (writer, &r, NULL, NULL, NULL, &result, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "weights.safetensors"));
  g_assert_nonnull (strstr (error->message, "not a GGUF language model"));
}

/* The rows a proposal and its document state make, with results built by hand: no device. */
static void
test_record (void)
{
  g_autofree char *dir = g_build_filename (at_test_tmpdir (), "store", NULL);
  g_autofree char *fake_model = g_build_filename (at_test_tmpdir (), "fake-model.gguf", NULL);
  g_autoptr (AtelierStore) store = NULL;
  g_autoptr (AtelierItem) doc_item = NULL, item = NULL, chat_item = NULL;
  g_autoptr (JsonNode) params = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (AtelierWriteRequest) r = { 0 };
  g_auto (AtelierWriteResult) res = { 0 };
  g_autofree char *input = NULL, *main_text = NULL;
  const char *document = "Caf\xc3\xa9 au lait. The rain fell.";
  JsonObject *o;
  gint64 doc_id, id, chat_id;

  g_assert_true (g_file_set_contents (fake_model, "GGUF and some bytes", -1, &error));
  store = atelier_store_open (dir, &error);
  g_assert_no_error (error);

  doc_id = atelier_writer_record_document (store, "Letter", "/home/me/letter.txt", document, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpint (doc_id, >, 0);
  doc_item = atelier_store_get (store, doc_id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (doc_item->kind, ==, ATELIER_ITEM_TEXT);
  g_assert_cmpstr (doc_item->prompt, ==, "Letter");
  g_assert_cmpint (doc_item->parent_id, ==, 0);
  g_assert_cmpint (doc_item->model_id, ==, 0);
  params = json_from_string (doc_item->params_json, &error);
  g_assert_no_error (error);
  o = json_node_get_object (params);
  g_assert_cmpstr (json_object_get_string_member (o, "source"), ==, "editor");
  g_assert_cmpstr (json_object_get_string_member (o, "title"), ==, "Letter");
  g_assert_cmpstr (json_object_get_string_member (o, "file"), ==, "/home/me/letter.txt");
  g_assert_true (g_file_get_contents (asset_path (doc_item, "main"), &main_text, NULL, &error));
  g_assert_cmpstr (main_text, ==, document);
  g_clear_pointer (&main_text, g_free);
  g_clear_pointer (&params, json_node_unref);

  /* The proposal: a rewrite of "The rain fell." (bytes 15..29, characters 14..28). */
  atelier_write_request_init (&r);
  r.model_path = g_strdup (fake_model);
  r.action = AT_TEXT_REWRITE;
  r.instruction = g_strdup ("shorter");
  r.document = g_strdup (document);
  r.sel_start = 15;
  r.sel_end = strlen (document);
  r.temperature = 0.5;
  r.stop = g_strsplit ("\n\n", ",", -1);
  res.text = g_strdup ("Rain.");
  res.seed = 77;
  res.n_ctx = 512;
  res.kv_type = AT_DTYPE_F16;
  res.max_tokens = 32;
  res.model_family = g_strdup ("llama");
  res.stats.prompt_tokens = 40;
  res.stats.generated_tokens = 3;
  id = atelier_writer_record (store, &r, &res, doc_id, "accepted", &error);
  g_assert_no_error (error);
  g_assert_cmpint (id, >, doc_id);
  item = atelier_store_get (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (item->kind, ==, ATELIER_ITEM_TEXT);
  g_assert_cmpint (item->parent_id, ==, doc_id);
  g_assert_cmpstr (item->prompt, ==, "shorter");
  g_assert_true (item->has_seed);
  g_assert_cmpint (item->seed, ==, 77);
  g_assert_cmpstr (item->model_path, ==, fake_model);
  g_assert_true (g_str_has_prefix (item->model_hash, "sha256-edges:"));
  params = json_from_string (item->params_json, &error);
  g_assert_no_error (error);
  o = json_node_get_object (params);
  g_assert_cmpstr (json_object_get_string_member (o, "outcome"), ==, "accepted");
  g_assert_cmpstr (json_object_get_string_member (o, "action"), ==, "rewrite");
  g_assert_cmpstr (json_object_get_string_member (o, "instruction"), ==, "shorter");
  g_assert_cmpstr (json_object_get_string_member (o, "selection"), ==, "14:28");
  g_assert_cmpfloat (json_object_get_double_member (o, "temperature"), ==, 0.5);
  g_assert_cmpint (json_object_get_int_member (o, "seed"), ==, 77);
  g_assert_cmpint (json_object_get_int_member (o, "max_tokens"), ==, 32);
  g_assert_cmpint (json_object_get_int_member (o, "ctx"), ==, 512);
  g_assert_cmpstr (json_object_get_string_member (o, "kv_type"), ==, "f16");
  g_assert_cmpint (json_object_get_int_member (o, "generated_tokens"), ==, 3);
  g_assert_cmpstr (json_array_get_string_element (json_object_get_array_member (o, "stop"), 0), ==, "\n\n");
  g_assert_false (json_object_get_boolean_member (o, "stopped"));
  g_assert_true (g_file_get_contents (asset_path (item, "main"), &main_text, NULL, &error));
  g_assert_cmpstr (main_text, ==, "Rain.");
  g_assert_true (g_file_get_contents (asset_path (item, "input"), &input, NULL, &error));
  g_assert_cmpstr (input, ==, document);
  g_assert_cmpstr (atelier_item_get_asset (item, "input")->media_type, ==, "text/plain");
  g_clear_pointer (&params, json_node_unref);
  g_clear_pointer (&input, g_free);

  /* A conversation: the input is the JSON, the prompt its last message; no outcome (the CLI). */
  g_clear_pointer (&r.document, g_free);
  g_clear_pointer (&r.instruction, g_free);
  params = json_from_string ("[{\"role\": \"user\", \"content\": \"Name a colour\"}]", &error);
  g_assert_no_error (error);
  r.messages = json_array_ref (json_node_get_array (params));
  g_clear_pointer (&params, json_node_unref);
  chat_id = atelier_writer_record (store, &r, &res, 0, NULL, &error);
  g_assert_no_error (error);
  chat_item = atelier_store_get (store, chat_id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (chat_item->parent_id, ==, 0);
  g_assert_cmpstr (chat_item->prompt, ==, "Name a colour");
  g_assert_nonnull (asset_path (chat_item, "input"));
  g_assert_cmpstr (atelier_item_get_asset (chat_item, "input")->media_type, ==, "application/json");
  g_assert_true (g_file_get_contents (asset_path (chat_item, "input"), &input, NULL, &error));
  g_assert_nonnull (strstr (input, "Name a colour"));
  params = json_from_string (chat_item->params_json, &error);
  o = json_node_get_object (params);
  g_assert_cmpstr (json_object_get_string_member (o, "action"), ==, "messages");
  g_assert_false (json_object_has_member (o, "outcome"));
  g_assert_false (json_object_has_member (o, "selection"));

  /* A parent that does not exist: an error, not a row. */
  g_assert_cmpint (atelier_writer_record (store, &r, &res, 999999, "discarded", &error), ==, 0);
  g_assert_nonnull (error);
}

/* The prompt is the one `atelier write --print-prompt` prints (needs the model, no device). */
static void
test_render_prompt (void)
{
  g_autoptr (AtelierWriter) writer = atelier_writer_new ();
  g_auto (AtelierWriteRequest) r = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *prompt = NULL, *cli = NULL;
  const char *extra[] = { "--selection", "5:9", "--max-tokens", "16", "--print-prompt", NULL };

  if (!have_cli () || tiny_model () == NULL)
    return;
  /* The model's context is 128 byte-level tokens: room for a continuation's recipe only. The
   * cursor after "upon" (characters 5..9 selected, bytes too: ASCII). */
  greedy_request (&r, "Once upon a time there was a fox.", 16);
  r.sel_start = 5;
  r.sel_end = 9;
  prompt = atelier_writer_render_prompt (writer, &r, &error);
  g_assert_no_error (error);
  cli = run_cli (r.document, extra);
  g_assert_cmpstr (prompt, ==, cli);
  g_assert_nonnull (strstr (prompt, "Once"));
}

/* ---- generation ---- */

static void
test_greedy_matches_cli (void)
{
  g_autoptr (AtelierWriter) writer = atelier_writer_new ();
  g_auto (AtelierWriteRequest) r = { 0 };
  g_auto (AtelierWriteResult) result = { 0 };
  g_auto (AtelierWriteResult) again = { 0 };
  g_autoptr (GString) pieces = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *cli = NULL, *want = NULL;
  const char *extra[] = { "--temperature", "0", "--max-tokens", "16", "--seed", "5", NULL };

  if (!have_cli () || tiny_model () == NULL || at_test_device () == NULL)
    return;
  greedy_request (&r, "Hello", 16);
  g_assert_true (atelier_writer_run (writer, &r, collect_piece, pieces, NULL, &result, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (result.text, ==, pieces->str);
  g_assert_cmpuint (result.stats.generated_tokens, >, 0);
  g_assert_cmpuint (result.max_tokens, ==, 16);
  g_assert_cmpuint (result.seed, ==, 5);
  g_assert_cmpstr (result.model_kind, ==, at_model_kind_name (AT_MODEL_KIND_LLM));
  g_assert_nonnull (result.description);
  g_assert_false (result.stats.cancelled);
  g_assert_cmpint (result.kv_type, ==,
                   at_device_get_info (at_test_device ())->storage_16bit ? AT_DTYPE_F16 : AT_DTYPE_F32);
  cli = run_cli ("Hello", extra);
  want = g_strconcat (result.text, "\n", NULL);
  g_assert_cmpstr (cli, ==, want);
  g_test_message ("greedy: \"%s\" (%u tokens)", result.text, result.stats.generated_tokens);

  /* The second run starts from the cached model and gives the same text. */
  g_assert_true (atelier_writer_run (writer, &r, NULL, NULL, NULL, &again, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (again.text, ==, result.text);

  /* An f32 KV cache on request: the model is set up again with it. */
  atelier_write_result_clear (&again);
  r.kv_type = AT_DTYPE_F32;
  g_assert_true (atelier_writer_run (writer, &r, NULL, NULL, NULL, &again, &error));
  g_assert_no_error (error);
  g_assert_cmpint (again.kv_type, ==, AT_DTYPE_F32);
  g_assert_cmpuint (again.stats.generated_tokens, >, 0);
}

typedef struct
{
  GString *streamed;
  gboolean finished;
  gboolean saw_token_status;
} JobSeen;

static void
on_job_stream (AtelierJob *job, const char *piece, JobSeen *seen)
{
  g_assert_true (g_thread_self () == main_thread);
  g_string_append (seen->streamed, piece);
}

static void
on_job_status (AtelierJob *job, GParamSpec *pspec, JobSeen *seen)
{
  const char *status = atelier_job_get_status (job);

  if (status != NULL && g_str_has_suffix (status, " of 16 tokens"))
    seen->saw_token_status = TRUE;
}

static void
on_job_finished (AtelierJob *job, JobSeen *seen)
{
  seen->finished = TRUE;
}

static void
wait_for (const gboolean *flag)
{
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

  while (!*flag)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (500);
    }
}

static void
test_job (void)
{
  g_autoptr (AtelierWriter) writer = atelier_writer_new ();
  g_autoptr (AtelierJobQueue) queue = atelier_job_queue_new ();
  g_autoptr (AtelierJob) job = NULL;
  g_auto (AtelierWriteRequest) r = { 0 };
  g_auto (AtelierWriteResult) direct = { 0 };
  g_autoptr (GError) error = NULL;
  AtelierWriteRequest *taken;
  AtelierWriteResult *result;
  JobSeen seen = { g_string_new (NULL), FALSE, FALSE };

  if (tiny_model () == NULL || at_test_device () == NULL)
    return;
  greedy_request (&r, "Hello", 16);
  g_assert_true (atelier_writer_run (writer, &r, NULL, NULL, NULL, &direct, &error));
  g_assert_no_error (error);

  taken = atelier_write_request_copy (&r);
  job = atelier_writer_job_new (writer, taken, "Continue with llama_chat");
  g_signal_connect (job, "stream", G_CALLBACK (on_job_stream), &seen);
  g_signal_connect (job, "notify::status", G_CALLBACK (on_job_status), &seen);
  g_signal_connect (job, "finished", G_CALLBACK (on_job_finished), &seen);
  atelier_job_queue_push (queue, job);
  wait_for (&seen.finished);
  g_assert_cmpint (atelier_job_get_state (job), ==, ATELIER_JOB_DONE);
  result = atelier_job_get_result (job);
  g_assert_nonnull (result);
  g_assert_cmpstr (seen.streamed->str, ==, result->text);
  g_assert_cmpstr (atelier_job_get_text (job), ==, result->text);
  g_assert_cmpstr (result->text, ==, direct.text);
  g_assert_cmpfloat (atelier_job_get_fraction (job), ==, 1.0);
  /* The tokens are counted against the budget ("N of 16 tokens") at least once on the way, or
   * the generation finished within one frame. */
  g_test_message ("status seen: %s", seen.saw_token_status ? "yes" : "no (finished within a frame)");
  g_string_free (seen.streamed, TRUE);
}

typedef struct
{
  GCancellable *cancellable;
  guint n;
} CancelAfter;

static gboolean
cancel_after_two (const char *piece, const char *text, gpointer data)
{
  CancelAfter *c = data;

  if (++c->n == 2)
    g_cancellable_cancel (c->cancellable);
  return TRUE;
}

static gboolean
stop_after_one (const char *piece, const char *text, gpointer data)
{
  return FALSE;
}

static void
test_cancel (void)
{
  g_autoptr (AtelierWriter) writer = atelier_writer_new ();
  g_autoptr (AtelierJobQueue) queue = atelier_job_queue_new ();
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (AtelierJob) job = NULL;
  g_auto (AtelierWriteRequest) r = { 0 };
  g_auto (AtelierWriteResult) result = { 0 };
  g_auto (AtelierWriteResult) stopped = { 0 };
  g_autoptr (GError) error = NULL;
  CancelAfter c = { cancellable, 0 };
  JobSeen seen = { g_string_new (NULL), FALSE, FALSE };

  if (tiny_model () == NULL || at_test_device () == NULL)
    return;
  /* Greedy with no repeat penalty may end early on an end token; 40 tokens leave room. */
  greedy_request (&r, "Hello", 40);
  r.temperature = 1.0;
  g_assert_true (atelier_writer_run (writer, &r, cancel_after_two, &c, cancellable, &result, &error));
  g_assert_no_error (error);
  if (c.n < 2)
    {
      g_test_skip ("the model ended before its second piece");
      g_string_free (seen.streamed, TRUE);
      return;
    }
  /* Cancelled within a token of the cancel. */
  g_assert_true (result.stats.cancelled);
  g_assert_cmpuint (result.stats.generated_tokens, <=, 3);
  g_assert_cmpuint (c.n, ==, 2);

  /* The callback saying stop is a stop by the user too. */
  g_assert_true (atelier_writer_run (writer, &r, stop_after_one, NULL, NULL, &stopped, &error));
  g_assert_true (stopped.stats.cancelled);
  g_assert_cmpuint (stopped.stats.generated_tokens, <=, 2);

  /* A job cancelled while it loads or generates ends CANCELLED, not FAILED. */
  job = atelier_writer_job_new (writer, atelier_write_request_copy (&r), "Continue");
  g_signal_connect (job, "finished", G_CALLBACK (on_job_finished), &seen);
  atelier_job_queue_push (queue, job);
  atelier_job_cancel (job);
  wait_for (&seen.finished);
  g_assert_cmpint (atelier_job_get_state (job), ==, ATELIER_JOB_CANCELLED);
  g_assert_null (atelier_job_get_error (job));
  g_string_free (seen.streamed, TRUE);
}

/* The application's shutdown: cancel everything, drop the queue, free the writer, while a
 * generation runs. The queue waits for the job, so the writer is not freed under it (ASan). */
static void
test_shutdown (void)
{
  AtelierWriter *writer = atelier_writer_new ();
  AtelierJobQueue *queue = atelier_job_queue_new ();
  g_autoptr (AtelierJob) job = NULL;
  g_auto (AtelierWriteRequest) r = { 0 };
  JobSeen seen = { g_string_new (NULL), FALSE, FALSE };

  if (tiny_model () == NULL || at_test_device () == NULL)
    {
      atelier_writer_free (writer);
      g_object_unref (queue);
      g_string_free (seen.streamed, TRUE);
      return;
    }
  greedy_request (&r, "Hello", 40);
  job = atelier_writer_job_new (writer, atelier_write_request_copy (&r), "Continue");
  g_signal_connect (job, "finished", G_CALLBACK (on_job_finished), &seen);
  atelier_job_queue_push (queue, job);
  g_usleep (20000);
  atelier_job_queue_cancel_all (queue);
  g_object_unref (queue);
  atelier_writer_free (writer);
  wait_for (&seen.finished);
  g_assert_true (atelier_job_is_finished (job));
  g_string_free (seen.streamed, TRUE);
}

/* The cache is keyed by the file's identity: a file replaced under the same name is reloaded. */
static void
test_cache_reload (void)
{
  g_autoptr (AtelierWriter) writer = atelier_writer_new ();
  g_autofree char *copy = g_build_filename (at_test_tmpdir (), "swapped.gguf", NULL);
  g_autofree char *contents = NULL;
  gsize len;
  g_auto (AtelierWriteRequest) r = { 0 };
  g_auto (AtelierWriteResult) first = { 0 };
  g_auto (AtelierWriteResult) second = { 0 };
  g_autoptr (GError) error = NULL;

  if (tiny_model () == NULL || at_test_device () == NULL)
    return;
  g_assert_true (g_file_get_contents (model_path, &contents, &len, &error));
  g_assert_true (g_file_set_contents (copy, contents, (gssize) len, &error));
  greedy_request (&r, "Hello", 8);
  g_free (r.model_path);
  r.model_path = g_strdup (copy);
  g_assert_true (atelier_writer_run (writer, &r, NULL, NULL, NULL, &first, &error));
  g_assert_no_error (error);
  /* Now the name holds something else: the cached weights must not be used. */
  g_assert_true (g_file_set_contents (copy, "not a model any more", -1, &error));
  g_assert_false (atelier_writer_run (writer, &r, NULL, NULL, NULL, &second, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "swapped.gguf"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  main_thread = g_thread_self ();
  g_test_add_func ("/app/writer/bad-model", test_bad_model);
  g_test_add_func ("/app/writer/record", test_record);
  g_test_add_func ("/app/writer/not-llm-file", test_not_llm_file);
  g_test_add_func ("/app/writer/render-prompt", test_render_prompt);
  g_test_add_func ("/app/writer/greedy-matches-cli", test_greedy_matches_cli);
  g_test_add_func ("/app/writer/job", test_job);
  g_test_add_func ("/app/writer/cancel", test_cancel);
  g_test_add_func ("/app/writer/shutdown", test_shutdown);
  g_test_add_func ("/app/writer/cache-reload", test_cache_reload);
  return g_test_run ();
}
