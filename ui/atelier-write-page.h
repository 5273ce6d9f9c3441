/* atelier-write-page.h: the Write mode: an editor for plain text and Markdown, and the
 * assistant sidebar (model chooser, Continue / Rewrite / Summarize / Brainstorm, the chat
 * about the document, sampling settings, the proposal streaming in and then shown as a change with
 * Accept / Discard / Regenerate / Stop). Generation runs through the application's job queue;
 * every accepted or discarded proposal goes into the history as a variant of the document
 * state it came from. While a proposal runs or waits for Accept or Discard, the editor is
 * read-only: the proposal applies to exactly the text it was made from. */
#pragma once

#include <adwaita.h>

#include "atelier-application.h"

G_BEGIN_DECLS

#define ATELIER_TYPE_WRITE_PAGE (atelier_write_page_get_type ())
G_DECLARE_FINAL_TYPE (AtelierWritePage, atelier_write_page, ATELIER, WRITE_PAGE, GtkBox)

/* Called once by the window: the page's jobs, writer and store come from `app`. */
void atelier_write_page_attach (AtelierWritePage *self, AtelierApplication *app);
void atelier_write_page_open_file (AtelierWritePage *self, GFile *file);
/* Before the document is replaced: FALSE (and a toast) while a proposal runs; a proposal waiting
 * for Accept or Discard is discarded, and kept in the history as such. */
gboolean atelier_write_page_leave_proposal (AtelierWritePage *self);
/* A text item from the history: a document state opens in the editor; a proposal opens the
 * document it came from with its settings restored. */
void atelier_write_page_open_item (AtelierWritePage *self, const AtelierItem *item);
/* The language model the assistant uses (a path; added to the chooser if new). */
void atelier_write_page_set_model (AtelierWritePage *self, const char *path);
/* Asks `question` about the document in the chat (the window's prompt bar in Write mode). TRUE
 * when it was sent; FALSE (and a toast saying why) when it is empty or a proposal is running
 * or waiting. */
gboolean atelier_write_page_ask (AtelierWritePage *self, const char *question);
/* Closing: the document's state goes into the history now, on the calling thread (one
 * commit), unless it is there already. */
void atelier_write_page_keep_in_history (AtelierWritePage *self);
/* The document's file when it has changes not saved to it; NULL otherwise. */
GFile *atelier_write_page_get_unsaved_file (AtelierWritePage *self);
/* Saves the document to its file now (atomically, with a backup). */
gboolean atelier_write_page_save_now (AtelierWritePage *self, GError **error);
typedef void (*AtelierWritePageThen) (AtelierWritePage *self, gpointer data);
/* Before the document is replaced: keeps it in the history, then runs `then` at once, or, when
 * its file has unsaved changes, after asking Save / Discard / Cancel (Cancel: never). `destroy`
 * frees `data` either way. */
void atelier_write_page_confirm_unsaved (AtelierWritePage *self, AtelierWritePageThen then, gpointer data,
                                         GDestroyNotify destroy);
/* Scans for models again (after the model manager closes). */
void atelier_write_page_refresh_models (AtelierWritePage *self);

GtkTextBuffer *atelier_write_page_get_buffer (AtelierWritePage *self);
/* The running or last job (NULL before the first). */
AtelierJob *atelier_write_page_get_job (AtelierWritePage *self);
/* A finished proposal waits for Accept or Discard. */
gboolean atelier_write_page_has_proposal (AtelierWritePage *self);
/* The id of the last item this page recorded (0: none yet); recording runs off the main
 * thread, so it changes after "history-changed". */
gint64 atelier_write_page_get_last_recorded (AtelierWritePage *self);

/* Signals: "history-changed" (something was recorded); "toast" (message, button label or
 * NULL, action or NULL); "prompt" (text for the window's prompt bar: a question reopened from
 * the history). Actions (group "write"): new, open, save, save-as, continue, rewrite,
 * summarize, brainstorm, new-chat, accept, discard, regenerate, stop. */

G_END_DECLS
