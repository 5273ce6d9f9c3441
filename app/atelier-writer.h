/* atelier-writer.h: the writer's generation as the window and the CLI share it: a request
 * (model, action, document and selection, sampling) in, streamed text and a result out, and
 * the result recorded in the history.
 *
 * An AtelierWriter keeps the last model it loaded (file, tokenizer, weights on the device), so
 * a second request on the same file (same path, size and modification time) starts at once.
 * It is used from one thread at a time (the job queue's worker); atelier_writer_run holds its
 * lock for the whole generation. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "at-engine.h"
#include "atelier-jobs.h"
#include "atelier-store.h"

G_BEGIN_DECLS

typedef struct
{
  char *model_path;
  AtTextAction action;
  /* A free question about the document: a conversation ([{role, content}, ...]) sent through
   * the model's chat template instead of `action`'s recipe; NULL for an action. */
  JsonArray *messages;
  char *document;            /* UTF-8; NULL when `messages` is used */
  gsize sel_start, sel_end;  /* bytes of `document`; equal: the cursor */
  char *instruction;         /* rewrite's "shorter", ..., ask's question; may be NULL */
  JsonArray *turns;          /* ask: the conversation's earlier turns, oldest first; may be NULL */
  char *system;              /* an extra system message; may be NULL */
  double temperature, top_p, min_p, repeat_penalty;
  int top_k;
  guint max_tokens;  /* 0: 256, at most half the context */
  gint64 seed;       /* < 0: random (the result says which) */
  guint ctx;         /* 0: the model's, at most 4096 */
  AtDtype kv_type;   /* the KV cache's: AT_DTYPE_F16 (the default) or AT_DTYPE_F32 */
  char **stop;       /* NULL-terminated, or NULL */
} AtelierWriteRequest;

/* The CLI's defaults: continue, temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, repeat
 * penalty 1.1, random seed, an f16 KV cache. */
void atelier_write_request_init (AtelierWriteRequest *request);
void atelier_write_request_clear (AtelierWriteRequest *request);
AtelierWriteRequest *atelier_write_request_copy (const AtelierWriteRequest *request);
void atelier_write_request_free (AtelierWriteRequest *request);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (AtelierWriteRequest, atelier_write_request_clear)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtelierWriteRequest, atelier_write_request_free)

typedef struct
{
  char *text;               /* what was generated (stop strings cut) */
  guint32 seed;             /* the seed used */
  guint n_ctx, max_tokens;  /* what was used */
  AtDtype kv_type;          /* the KV cache's (f32 where the device has no 16-bit storage) */
  char *description;        /* at_text_prompt_describe(), or NULL for a conversation */
  gsize context_start, context_end; /* bytes of the document the prompt carried */
  gboolean trimmed;
  guint turns_sent;         /* ask: the earlier turns the prompt carried */
  char *model_kind, *model_family; /* at_model_file_recognize()'s */
  AtCompleteStats stats;    /* stats.cancelled: stopped by the user */
} AtelierWriteResult;

void atelier_write_result_clear (AtelierWriteResult *result);
void atelier_write_result_free (AtelierWriteResult *result);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (AtelierWriteResult, atelier_write_result_clear)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtelierWriteResult, atelier_write_result_free)

typedef struct _AtelierWriter AtelierWriter;

AtelierWriter *atelier_writer_new (void);
void atelier_writer_free (AtelierWriter *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtelierWriter, atelier_writer_free)

/* The exact prompt text the model would receive (loads only the tokenizer side of the file
 * when the weights are not loaded yet); for --print-prompt and the sidebar's "what is sent". */
char *atelier_writer_render_prompt (AtelierWriter *self, const AtelierWriteRequest *request, GError **error);
/* The same, plus at_text_prompt_describe()'s lines in `description` (NULL for a conversation). */
char *atelier_writer_render_prompt_full (AtelierWriter *self, const AtelierWriteRequest *request, char **description,
                                         GError **error);

/* Loads the model if needed, builds the prompt and generates; each piece goes to `on_piece`
 * (which may return FALSE to stop). A cancel is not an error (result->stats.cancelled). */
gboolean atelier_writer_run (AtelierWriter *self, const AtelierWriteRequest *request, AtCompleteFunc on_piece,
                             gpointer user_data, GCancellable *cancellable, AtelierWriteResult *result,
                             GError **error);

/* Records a result: kind text, the generated text as the main asset and the text column, the
 * document (or the conversation as JSON) as the `input` asset, every setting plus the stats in
 * the params, `outcome` ("accepted", "discarded", or NULL for the CLI) among them, the model
 * row (hashed). `parent_id` 0: no parent. Returns the item id, or 0. */
gint64 atelier_writer_record (AtelierStore *store, const AtelierWriteRequest *request,
                              const AtelierWriteResult *result, gint64 parent_id, const char *outcome,
                              GError **error);

/* Records a document state (what the editor held when a proposal was asked for, or an
 * autosave): kind text, prompt = `title`, the text as main asset and text column, params
 * {"source": "editor", "title": ..., "file": path or null}. Returns the item id, or 0. */
gint64 atelier_writer_record_document (AtelierStore *store, const char *title, const char *file_path,
                                       const char *text, gint64 parent_id, GError **error);

/* A job for the queue: runs `request` (taken) on `writer` (which must outlive the job); every
 * piece is streamed (atelier_job_stream), progress is tokens / max_tokens, and the result is
 * an AtelierWriteResult (atelier_job_get_result). */
AtelierJob *atelier_writer_job_new (AtelierWriter *writer, AtelierWriteRequest *request, const char *title);

G_END_DECLS
