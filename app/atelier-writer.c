/* atelier-writer.c: the writer's generation, shared by `atelier write` (app/atelier-write.c)
 * and the window (see atelier-writer.h). A request becomes a prompt in three steps: the
 * context size and the answer's budget (max_tokens, at most half the context by default),
 * the document trimmed to what is left once the recipe and the template have taken their
 * tokens (at_text_prompt_build), then the model's own chat template (at_text_render_prompt).
 *
 * Traps:
 * - The model cache is keyed by path, size and modification time: a file replaced under the
 *   same name (a re-download) must not run with the old weights or, worse, the old tokenizer.
 * - atelier_writer_run holds the lock for a whole generation; render_prompt, which the window
 *   calls on its main thread, never waits for it: when the lock is taken it opens the file's
 *   headers on its own (cheap: a mapping and the vocabulary).
 * - The recorded text is what the callback saw, which is what the user saw: after a stop
 *   (the callback returning FALSE) at_complete_text's own text may hold one more token. */
#include "config.h"

#include "atelier-writer.h"

#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>

/* What one model file gives: its headers and tokenizer at once, the weights when a run
 * needs them. */
typedef struct
{
  char *path;
  gint64 size, mtime_us;
  AtModelFile *file;
  AtGguf *gguf; /* the file's */
  AtTokenizer *tok;
  char *template;
  gint64 file_ctx; /* the file's context length, 0 when it says none */
  char *kind, *family;
  AtLlm *llm;
  guint llm_ctx;
  AtDtype llm_kv;
} Model;

struct _AtelierWriter
{
  GMutex lock;
  Model model; /* the cached one; path NULL when none */
};

static void
model_clear (Model *m)
{
  g_clear_pointer (&m->llm, at_llm_free);
  g_clear_pointer (&m->tok, at_tokenizer_free);
  g_clear_pointer (&m->file, at_model_file_free);
  g_clear_pointer (&m->path, g_free);
  g_clear_pointer (&m->template, g_free);
  g_clear_pointer (&m->kind, g_free);
  g_clear_pointer (&m->family, g_free);
  memset (m, 0, sizeof *m);
}

/* Size and modification time, or FALSE when the path cannot be looked at (the open that
 * follows then says why). */
static gboolean
model_identity (const char *path, gint64 *size, gint64 *mtime_us)
{
  GStatBuf st;

  if (g_stat (path, &st) != 0)
    return FALSE;
  *size = (gint64) st.st_size;
  *mtime_us = (gint64) st.st_mtim.tv_sec * G_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000;
  return TRUE;
}

/* Opens `path`'s headers and tokenizer into `m` (cleared first); an error says what the file
 * is when it is not a GGUF language model. */
static gboolean
model_open (Model *m, const char *path, GError **error)
{
  g_auto (AtModelInfo) info = { 0 };
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *arch = NULL, *key = NULL;

  model_clear (m);
  if (!model_identity (path, &m->size, &m->mtime_us))
    m->size = m->mtime_us = -1;
  if ((m->file = at_model_file_open (path, error)) == NULL)
    return FALSE;
  at_model_file_recognize (m->file, &info);
  if (info.kind != AT_MODEL_KIND_LLM || at_model_file_get_gguf (m->file) == NULL)
    {
      if (info.kind == AT_MODEL_KIND_UNKNOWN)
        g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED, "%s is not a GGUF language model (%s)", base,
                     info.reason);
      else
        g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED, "%s is a %s%s%s%s, not a GGUF language model", base,
                     at_model_kind_name (info.kind), info.family != NULL ? " (" : "",
                     info.family != NULL ? info.family : "", info.family != NULL ? ")" : "");
      model_clear (m);
      return FALSE;
    }
  m->gguf = at_model_file_get_gguf (m->file);
  /* Its errors name the file already. */
  if ((m->tok = at_tokenizer_new_from_gguf (m->gguf, error)) == NULL)
    {
      model_clear (m);
      return FALSE;
    }
  m->path = g_strdup (path);
  m->kind = g_strdup (at_model_kind_name (info.kind));
  m->family = g_strdup (info.family);
  m->template = at_gguf_dup_string (m->gguf, "tokenizer.chat_template", NULL);
  arch = at_gguf_dup_string (m->gguf, "general.architecture", NULL);
  key = g_strconcat (arch != NULL ? arch : "", ".context_length", NULL);
  if (!at_gguf_get_int (m->gguf, key, &m->file_ctx, NULL) || m->file_ctx < 0)
    m->file_ctx = 0;
  return TRUE;
}

/* The cached model when it is still `path` as it is on disk now, else a fresh open. */
static gboolean
model_ensure (Model *m, const char *path, GError **error)
{
  gint64 size, mtime_us;

  if (m->path != NULL && strcmp (m->path, path) == 0 && model_identity (path, &size, &mtime_us)
      && size == m->size && mtime_us == m->mtime_us)
    return TRUE;
  return model_open (m, path, error);
}

static gboolean
model_ensure_llm (Model *m, guint n_ctx, AtDtype kv_type, GError **error)
{
  AtDevice *dev;

  if (m->llm != NULL && m->llm_ctx == n_ctx && m->llm_kv == kv_type)
    return TRUE;
  g_clear_pointer (&m->llm, at_llm_free);
  if ((dev = at_device_get_default (error)) == NULL
      || (m->llm = at_llm_new (dev, m->gguf, n_ctx, kv_type, error)) == NULL)
    return FALSE;
  m->llm_ctx = n_ctx;
  m->llm_kv = kv_type;
  return TRUE;
}

/* ---- the request ---- */

void
atelier_write_request_init (AtelierWriteRequest *request)
{
  memset (request, 0, sizeof *request);
  request->action = AT_TEXT_CONTINUE;
  request->temperature = 0.8;
  request->top_k = 40;
  request->top_p = 0.95;
  request->min_p = 0.05;
  request->repeat_penalty = 1.1;
  request->seed = -1;
  request->kv_type = AT_DTYPE_F16;
}

void
atelier_write_request_clear (AtelierWriteRequest *request)
{
  g_clear_pointer (&request->model_path, g_free);
  g_clear_pointer (&request->messages, json_array_unref);
  g_clear_pointer (&request->turns, json_array_unref);
  g_clear_pointer (&request->document, g_free);
  g_clear_pointer (&request->instruction, g_free);
  g_clear_pointer (&request->system, g_free);
  g_clear_pointer (&request->stop, g_strfreev);
}

/* `messages` and `turns` are shared, not copied: a request's conversation is never changed once
 * made. */
AtelierWriteRequest *
atelier_write_request_copy (const AtelierWriteRequest *request)
{
  AtelierWriteRequest *copy = g_new (AtelierWriteRequest, 1);

  *copy = *request;
  copy->model_path = g_strdup (request->model_path);
  copy->messages = request->messages != NULL ? json_array_ref (request->messages) : NULL;
  copy->turns = request->turns != NULL ? json_array_ref (request->turns) : NULL;
  copy->document = g_strdup (request->document);
  copy->instruction = g_strdup (request->instruction);
  copy->system = g_strdup (request->system);
  copy->stop = g_strdupv (request->stop);
  return copy;
}

void
atelier_write_request_free (AtelierWriteRequest *request)
{
  if (request == NULL)
    return;
  atelier_write_request_clear (request);
  g_free (request);
}

void
atelier_write_result_clear (AtelierWriteResult *result)
{
  g_clear_pointer (&result->text, g_free);
  g_clear_pointer (&result->description, g_free);
  g_clear_pointer (&result->model_kind, g_free);
  g_clear_pointer (&result->model_family, g_free);
}

void
atelier_write_result_free (AtelierWriteResult *result)
{
  if (result == NULL)
    return;
  atelier_write_result_clear (result);
  g_free (result);
}

AtelierWriter *
atelier_writer_new (void)
{
  AtelierWriter *self = g_new0 (AtelierWriter, 1);

  g_mutex_init (&self->lock);
  return self;
}

void
atelier_writer_free (AtelierWriter *self)
{
  if (self == NULL)
    return;
  model_clear (&self->model);
  g_mutex_clear (&self->lock);
  g_free (self);
}

/* ---- the prompt ---- */

typedef struct
{
  guint n_ctx, max_tokens;
  AtTextPrompt prompt;
  char *text; /* what the model receives */
  gboolean from_template;
} Prepared;

static void
prepared_clear (Prepared *p)
{
  at_text_prompt_clear (&p->prompt);
  g_clear_pointer (&p->text, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Prepared, prepared_clear)

static gsize
count_tokens (const char *text, gsize len, gpointer data)
{
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));

  if (!at_tokenizer_encode (data, text, (gssize) len, FALSE, FALSE, ids, NULL))
    return len; /* the document was checked to be UTF-8; an estimate is safe anyway */
  return ids->len;
}

/* The context size, the answer's budget and the document's part of the window. */
static gboolean
prepare_document (Model *m, const AtelierWriteRequest *r, Prepared *p, GError **error)
{
  const char *doc = r->document != NULL ? r->document : "";
  gsize overhead;
  g_auto (AtTextPrompt) empty = { 0 };
  g_autofree char *empty_text = NULL;
  gboolean ft;

  /* What the recipe and the template cost without the document. */
  if (!at_text_prompt_build (&empty, r->action, "", 0, 0, r->instruction, r->system, G_MAXSIZE, count_tokens, m->tok,
                             error)
      || (empty_text = at_text_render_prompt (empty.completion, empty.messages, m->template, m->tok, &ft, error))
           == NULL)
    return FALSE;
  overhead = count_tokens (empty_text, strlen (empty_text), m->tok) + 8;
  if (overhead + p->max_tokens >= p->n_ctx)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "a %u-token context has no room for the text", p->n_ctx);
      return FALSE;
    }
  if (r->action == AT_TEXT_ASK)
    return at_text_prompt_build_ask (&p->prompt, doc, r->sel_start, r->sel_end, r->instruction, r->turns, r->system,
                                     p->n_ctx - p->max_tokens - overhead, count_tokens, m->tok, error);
  return at_text_prompt_build (&p->prompt, r->action, doc, r->sel_start, r->sel_end, r->instruction, r->system,
                               p->n_ctx - p->max_tokens - overhead, count_tokens, m->tok, error);
}

static gboolean
prepare (Model *m, const AtelierWriteRequest *r, Prepared *p, GError **error)
{
  p->n_ctx = r->ctx > 0 ? r->ctx : m->file_ctx > 0 ? (guint) MIN (m->file_ctx, 4096) : 2048;
  p->max_tokens = r->max_tokens > 0 ? r->max_tokens : MIN (256, p->n_ctx / 2);
  if (p->max_tokens >= p->n_ctx)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "--max-tokens %u leaves no room in a %u-token context",
                   p->max_tokens, p->n_ctx);
      return FALSE;
    }
  if (r->messages == NULL && !prepare_document (m, r, p, error))
    return FALSE;
  p->text = at_text_render_prompt (p->prompt.completion, r->messages != NULL ? r->messages : p->prompt.messages,
                                   m->template, m->tok, &p->from_template, error);
  return p->text != NULL;
}

static char *
render_on (Model *m, const AtelierWriteRequest *request, char **description, GError **error)
{
  g_auto (Prepared) p = { 0 };

  if (!model_ensure (m, request->model_path, error) || !prepare (m, request, &p, error))
    return NULL;
  if (description != NULL)
    *description = request->messages == NULL ? at_text_prompt_describe (&p.prompt) : NULL;
  return g_steal_pointer (&p.text);
}

char *
atelier_writer_render_prompt_full (AtelierWriter *self, const AtelierWriteRequest *request, char **description,
                                   GError **error)
{
  char *text;

  g_return_val_if_fail (self != NULL && request != NULL, NULL);
  if (description != NULL)
    *description = NULL;
  if (request->model_path == NULL)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "no language model was chosen");
      return NULL;
    }
  if (g_mutex_trylock (&self->lock))
    {
      text = render_on (&self->model, request, description, error);
      g_mutex_unlock (&self->lock);
    }
  else
    {
      Model m = { 0 };

      text = render_on (&m, request, description, error);
      model_clear (&m);
    }
  return text;
}

char *
atelier_writer_render_prompt (AtelierWriter *self, const AtelierWriteRequest *request, GError **error)
{
  return atelier_writer_render_prompt_full (self, request, NULL, error);
}

/* ---- the run ---- */

typedef struct
{
  GString *text;
  AtCompleteFunc on_piece;
  gpointer user_data;
  gboolean stopped;
} RunData;

static gboolean
run_piece (const char *piece, const char *text, gpointer data)
{
  RunData *rd = data;

  /* at_complete_text hands over the held-back tail even after a stop; keep it, as it was shown. */
  g_string_append (rd->text, piece);
  if (rd->on_piece != NULL && !rd->on_piece (piece, rd->text->str, rd->user_data))
    rd->stopped = TRUE;
  return !rd->stopped;
}

static gboolean
run_locked (Model *m, const AtelierWriteRequest *request, AtCompleteFunc on_piece, gpointer user_data,
            GCancellable *cancellable, AtelierWriteResult *result, GError **error)
{
  g_auto (Prepared) p = { 0 };
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (GString) text = g_string_new (NULL);
  AtCompleteParams params = { 0 };
  RunData rd = { text, on_piece, user_data, FALSE };

  if (!model_ensure (m, request->model_path, error) || !prepare (m, request, &p, error)
      || !at_text_prompt_tokens (m->tok, p.text, p.from_template, ids, error)
      || !model_ensure_llm (m, p.n_ctx,
                            request->kv_type == AT_DTYPE_F32 ? AT_DTYPE_F32 : AT_DTYPE_F16, error))
    return FALSE;
  at_sampler_params_init (&params.sampler);
  params.sampler.temperature = (float) request->temperature;
  params.sampler.top_k = (guint) MAX (request->top_k, 0);
  params.sampler.top_p = (float) request->top_p;
  params.sampler.min_p = (float) request->min_p;
  params.sampler.repeat_penalty = (float) request->repeat_penalty;
  params.sampler.seed = request->seed >= 0 ? (guint32) request->seed : g_random_int ();
  params.max_tokens = p.max_tokens;
  params.stop = (const char *const *) request->stop;

  result->seed = params.sampler.seed;
  result->n_ctx = p.n_ctx;
  result->kv_type = at_llm_get_kv_dtype (m->llm);
  result->max_tokens = p.max_tokens;
  result->description = request->messages == NULL ? at_text_prompt_describe (&p.prompt) : NULL;
  result->context_start = p.prompt.context_start;
  result->context_end = p.prompt.context_end;
  result->trimmed = p.prompt.trimmed;
  result->turns_sent = p.prompt.turns_sent;
  result->model_kind = g_strdup (m->kind);
  result->model_family = g_strdup (m->family);
  if (!at_complete_text (m->llm, m->tok, (const gint32 *) (gpointer) ids->data, ids->len, &params, cancellable,
                         run_piece, &rd, NULL, &result->stats, error))
    return FALSE;
  if (rd.stopped || g_cancellable_is_cancelled (cancellable))
    result->stats.cancelled = TRUE;
  result->text = g_string_free (g_steal_pointer (&text), FALSE);
  return TRUE;
}

gboolean
atelier_writer_run (AtelierWriter *self, const AtelierWriteRequest *request, AtCompleteFunc on_piece,
                    gpointer user_data, GCancellable *cancellable, AtelierWriteResult *result, GError **error)
{
  gboolean ok;

  g_return_val_if_fail (self != NULL && request != NULL && result != NULL, FALSE);
  memset (result, 0, sizeof *result);
  if (request->model_path == NULL)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "no language model was chosen");
      return FALSE;
    }
  g_mutex_lock (&self->lock);
  ok = run_locked (&self->model, request, on_piece, user_data, cancellable, result, error);
  g_mutex_unlock (&self->lock);
  if (!ok)
    atelier_write_result_clear (result);
  return ok;
}

/* ---- the history ---- */

static void
add_string (JsonBuilder *b, const char *name, const char *v)
{
  json_builder_set_member_name (b, name);
  if (v != NULL)
    json_builder_add_string_value (b, v);
  else
    json_builder_add_null_value (b);
}

static void
add_double (JsonBuilder *b, const char *name, double v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_double_value (b, v);
}

static void
add_int (JsonBuilder *b, const char *name, gint64 v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, v);
}

/* Every setting and the stats, as `atelier history show` prints them. */
static char *
write_params_json (const AtelierWriteRequest *r, const AtelierWriteResult *res, const char *outcome)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
  add_string (b, "action", r->messages != NULL ? "messages" : at_text_action_name (r->action));
  if (r->instruction != NULL)
    add_string (b, "instruction", r->instruction);
  if (r->system != NULL)
    add_string (b, "system", r->system);
  if (r->messages == NULL && r->action == AT_TEXT_ASK)
    {
      add_int (b, "turns", r->turns != NULL ? json_array_get_length (r->turns) / 2 : 0);
      add_int (b, "turns_sent", res->turns_sent);
    }
  /* In characters, as --selection takes it; the default (the cursor at the end) is left out. */
  if (r->messages == NULL && r->document != NULL
      && !(r->sel_start == r->sel_end && r->sel_end == strlen (r->document)))
    {
      glong a = g_utf8_pointer_to_offset (r->document, r->document + r->sel_start);
      glong z = g_utf8_pointer_to_offset (r->document, r->document + r->sel_end);
      g_autofree char *sel = g_strdup_printf ("%ld:%ld", a, z);

      add_string (b, "selection", sel);
    }
  add_double (b, "temperature", r->temperature);
  add_int (b, "top_k", r->top_k);
  add_double (b, "top_p", r->top_p);
  add_double (b, "min_p", r->min_p);
  add_double (b, "repeat_penalty", r->repeat_penalty);
  add_int (b, "seed", res->seed);
  add_int (b, "max_tokens", res->max_tokens);
  add_int (b, "ctx", res->n_ctx);
  add_string (b, "kv_type", at_dtype_name (res->kv_type));
  json_builder_set_member_name (b, "stop");
  json_builder_begin_array (b);
  for (guint i = 0; r->stop != NULL && r->stop[i] != NULL; i++)
    json_builder_add_string_value (b, r->stop[i]);
  json_builder_end_array (b);
  add_string (b, "model", r->model_path);
  add_int (b, "prompt_tokens", res->stats.prompt_tokens);
  add_int (b, "generated_tokens", res->stats.generated_tokens);
  json_builder_set_member_name (b, "stopped");
  json_builder_add_boolean_value (b, res->stats.cancelled);
  if (outcome != NULL)
    add_string (b, "outcome", outcome);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

/* The model's hash covers its size and first and last MiB only: hashing a multi-gigabyte file
 * on every run would cost seconds. */
gint64
atelier_writer_record (AtelierStore *store, const AtelierWriteRequest *request, const AtelierWriteResult *result,
                       gint64 parent_id, const char *outcome, GError **error)
{
  const char *generated = result->text != NULL ? result->text : "";
  g_autofree char *params_json = write_params_json (request, result, outcome);
  g_autofree char *hash = NULL, *messages_text = NULL, *turns_text = NULL;
  /* The asset keeps the exact bytes; the searchable text must be UTF-8, and a stop (Ctrl-C, a
   * token limit) can cut a character in half. */
  g_autofree char *searchable = g_utf8_make_valid (generated, -1);
  g_autoptr (GBytes) main_bytes = g_bytes_new (generated, strlen (generated));
  g_autoptr (GBytes) input_bytes = NULL, turns_bytes = NULL;
  AtelierAssetNew assets[3] = {
    { "main", "text/plain", main_bytes },
    { "input", "text/plain", NULL },
    { "conversation", "application/json", NULL },
  };
  AtelierItemNew item = { 0 };
  const char *prompt;
  gint64 size = 0;

  g_return_val_if_fail (store != NULL && request != NULL && result != NULL, 0);
  /* The prompt a search finds it by: the instruction, else the last message, else the action. */
  prompt = request->instruction != NULL ? request->instruction : at_text_action_name (request->action);
  if (request->messages != NULL)
    {
      g_autoptr (JsonNode) node = json_node_init_array (json_node_alloc (), request->messages);
      guint n = json_array_get_length (request->messages);

      messages_text = json_to_string (node, FALSE);
      input_bytes = g_bytes_new (messages_text, strlen (messages_text));
      assets[1].media_type = "application/json";
      if (n > 0)
        prompt = json_object_get_string_member_with_default (
          json_array_get_object_element (request->messages, n - 1), "content", prompt);
    }
  else if (request->document != NULL)
    input_bytes = g_bytes_new (request->document, strlen (request->document));
  assets[1].data = input_bytes;
  /* A question's earlier turns, as the writer had them. */
  if (request->messages == NULL && request->turns != NULL && json_array_get_length (request->turns) > 0)
    {
      g_autoptr (JsonNode) node = json_node_init_array (json_node_alloc (), request->turns);

      turns_text = json_to_string (node, FALSE);
      turns_bytes = g_bytes_new (turns_text, strlen (turns_text));
    }

  if ((hash = atelier_store_hash_model_file (request->model_path, &size, error)) == NULL
      || (item.model_id = atelier_store_ensure_model (store, request->model_path, "llm", result->model_family, size,
                                                      hash, error)) == 0)
    return 0;
  item.kind = ATELIER_ITEM_TEXT;
  item.prompt = prompt;
  item.params_json = params_json;
  item.has_seed = TRUE;
  item.seed = result->seed;
  item.parent_id = parent_id;
  item.text = searchable;
  item.assets = assets;
  if (input_bytes == NULL)
    item.n_assets = 1;
  else if (turns_bytes == NULL)
    item.n_assets = 2;
  else
    {
      assets[2].data = turns_bytes;
      item.n_assets = 3;
    }
  return atelier_store_save (store, &item, error);
}

gint64
atelier_writer_record_document (AtelierStore *store, const char *title, const char *file_path, const char *text,
                                gint64 parent_id, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *params_json = NULL;
  g_autofree char *searchable = NULL;
  g_autoptr (GBytes) bytes = NULL;
  AtelierAssetNew asset = { "main", "text/plain", NULL };
  AtelierItemNew item = { 0 };

  g_return_val_if_fail (store != NULL && text != NULL, 0);
  json_builder_begin_object (b);
  add_string (b, "source", "editor");
  add_string (b, "title", title);
  add_string (b, "file", file_path);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  params_json = json_to_string (root, FALSE);
  searchable = g_utf8_make_valid (text, -1);
  bytes = g_bytes_new (text, strlen (text));
  asset.data = bytes;
  item.kind = ATELIER_ITEM_TEXT;
  item.prompt = title;
  item.params_json = params_json;
  item.parent_id = parent_id;
  item.text = searchable;
  item.assets = &asset;
  item.n_assets = 1;
  return atelier_store_save (store, &item, error);
}

/* ---- the job ---- */

typedef struct
{
  AtelierWriter *writer;
  AtelierWriteRequest *request;
  AtelierJob *job; /* not a reference: the job outlives its function */
  GCancellable *cancellable;
  AtelierWriteResult *result; /* the one being filled */
  guint n_pieces;
} WriterJob;

static void
writer_job_free (gpointer data)
{
  WriterJob *wj = data;

  atelier_write_request_free (wj->request);
  g_free (wj);
}

/* Progress counts the pieces, each one token or a few (a character split over tokens, text
 * held back while it could begin a stop string): close to the token count, never above it. */
static gboolean
writer_job_piece (const char *piece, const char *text, gpointer data)
{
  WriterJob *wj = data;
  guint max = wj->result->max_tokens;
  g_autofree char *status = NULL;

  wj->n_pieces++;
  atelier_job_stream (wj->job, piece);
  if (max > 0)
    {
      /* Translators: progress of a generation, "12 of 256 tokens". */
      status = g_strdup_printf (_("%u of %u tokens"), MIN (wj->n_pieces, max), max);
      atelier_job_report (wj->job, (double) MIN (wj->n_pieces, max) / max, status);
    }
  return !g_cancellable_is_cancelled (wj->cancellable);
}

static gboolean
writer_job_func (AtelierJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  WriterJob *wj = data;
  g_autoptr (AtelierWriteResult) result = g_new0 (AtelierWriteResult, 1);

  wj->job = job;
  wj->cancellable = cancellable;
  /* run sets result->max_tokens (the budget, once the model's context is known) before the
   * first piece; until then the progress is unknown. */
  wj->result = result;
  atelier_job_report (job, -1, _("Loading the model…"));
  if (!atelier_writer_run (wj->writer, wj->request, writer_job_piece, wj, cancellable, result, error))
    return FALSE;
  atelier_job_report (job, 1, NULL);
  atelier_job_set_result (job, g_steal_pointer (&result), (GDestroyNotify) atelier_write_result_free);
  return TRUE;
}

AtelierJob *
atelier_writer_job_new (AtelierWriter *writer, AtelierWriteRequest *request, const char *title)
{
  WriterJob *wj = g_new0 (WriterJob, 1);

  wj->writer = writer;
  wj->request = request;
  return atelier_job_new (title, writer_job_func, wj, writer_job_free);
}
