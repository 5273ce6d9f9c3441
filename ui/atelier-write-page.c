/* atelier-write-page.c: the Write mode. The editor is a GtkSourceView (Markdown highlighting,
 * the buffer's own undo); the assistant builds an AtelierWriteRequest from the buffer and the
 * sidebar, runs it as a job, streams the text into the proposal view, then shows it as a word
 * diff against the passage it replaces. Questions go to the Chat page instead: each one carries
 * the conversation so far. Recording (a commit's fsync) and file I/O run off the main thread. */
#include "config.h"

#include "atelier-write-page.h"

#include <adwaita.h>
#include <glib/gi18n.h>
#include <gtksourceview/gtksource.h>
#include <string.h>

#include "atelier-diff.h"
#include "atelier-discovery.h"
#include "atelier-settings.h"

#define AUTOSAVE_SECONDS 30

struct _AtelierWritePage
{
  GtkBox parent_instance;

  AtelierApplication *app; /* not a reference: the application outlives its windows */
  GSimpleActionGroup *actions;
  GCancellable *cancellable;
  /* the job waiting for its first frame (push_after_frame) */
  GdkFrameClock *push_clock;
  gulong push_handler;
  guint push_timeout;

  /* the editor */
  GtkTextView *editor;
  GtkTextBuffer *buffer;
  GtkLabel *file_label, *count_label;
  GFile *file;
  guint count_idle, autosave_timeout;
  gint64 doc_id;        /* the last recorded state of this document, 0: none */
  char *doc_recorded;   /* its text, to tell whether it changed */

  /* the assistant */
  GtkDropDown *model_drop;
  GtkStringList *model_names;
  GPtrArray *model_paths;
  GCancellable *scan;
  GtkEntry *instruction;
  char *question;                 /* the question being asked (the window's prompt bar gave it) */
  GtkSpinButton *temperature, *top_p, *top_k, *max_tokens, *seed;
  GtkLabel *status_label;
  GtkTextView *proposal_view;
  GtkTextBuffer *proposal;
  GtkStack *side_stack;           /* "proposal", "chat" */
  GtkTextView *chat_view;
  GtkTextBuffer *chat;
  JsonArray *conversation;        /* the finished turns: {role, content} objects */
  GtkProgressBar *progress;
  GtkWidget *stop_button, *accept_button, *discard_button, *regenerate_button;

  /* the proposal */
  AtelierJob *job;
  AtelierWriteRequest *request; /* what the job ran, for Regenerate and the record */
  AtelierWriteResult *result;
  gint64 parent_id;             /* the document state the proposal came from */
  GtkTextMark *range_start, *range_end; /* what Accept replaces (equal: inserts) */
  gboolean replaces;            /* rewrite: the range is replaced; else text goes after it */
  gint64 last_recorded;
};

G_DEFINE_FINAL_TYPE (AtelierWritePage, atelier_write_page, GTK_TYPE_BOX)

enum
{
  HISTORY_CHANGED,
  TOAST,
  PROMPT,
  N_SIGNALS,
};

static guint signals[N_SIGNALS];

static void
toast (AtelierWritePage *self, const char *message, const char *label, const char *action)
{
  g_signal_emit (self, signals[TOAST], 0, message, label, action);
}

static AtelierStore *
store_of (AtelierWritePage *self)
{
  return self->app != NULL ? atelier_application_get_store (self->app) : NULL;
}

static char *
buffer_text (GtkTextBuffer *buffer)
{
  GtkTextIter a, b;

  gtk_text_buffer_get_bounds (buffer, &a, &b);
  return gtk_text_buffer_get_text (buffer, &a, &b, FALSE);
}

static char *
document_title (AtelierWritePage *self)
{
  return self->file != NULL ? g_file_get_basename (self->file) : g_strdup (_("Untitled document"));
}

static void
set_enabled (AtelierWritePage *self, const char *name, gboolean on)
{
  g_simple_action_set_enabled (G_SIMPLE_ACTION (g_action_map_lookup_action (G_ACTION_MAP (self->actions), name)),
                               on);
}

/* Which actions make sense now: one proposal at a time, and the editor frozen under it. New
 * and Open stay enabled and refuse with a toast while a proposal runs (leave_proposal below):
 * turned insensitive at the editor's top left as a job started, they made its first frame
 * repaint the whole window (the X11 cairo renderer paints the extents of all damage). */
static void
update_state (AtelierWritePage *self)
{
  gboolean running = self->job != NULL && !atelier_job_is_finished (self->job);
  gboolean pending = !running && self->result != NULL;
  gboolean free_ = !running && !pending;
  static const char *const asks[] = { "continue", "rewrite", "summarize", "brainstorm",
                                       "new-chat" };

  for (guint i = 0; i < G_N_ELEMENTS (asks); i++)
    set_enabled (self, asks[i], free_);
  set_enabled (self, "stop", running);
  set_enabled (self, "accept", pending && self->result->text[0] != '\0');
  set_enabled (self, "discard", pending);
  set_enabled (self, "regenerate", pending);
  gtk_text_view_set_editable (self->editor, free_);
  /* Stop and the progress bar keep their place (Stop insensitive, the bar empty when idle): a
   * job starting changes no layout, so its first frame redraws only what it must. */
  if (!running)
    gtk_progress_bar_set_fraction (self->progress, 0);
}

/* -- recording, off the main thread -- */

typedef struct
{
  AtelierStore *store;
  AtelierWriteRequest *request;   /* NULL: a document state */
  AtelierWriteResult *result;
  gint64 parent_id;
  char *outcome, *title, *file, *text;
} Record;

static void
record_free (Record *r)
{
  atelier_store_unref (r->store);
  g_clear_pointer (&r->request, atelier_write_request_free);
  g_clear_pointer (&r->result, atelier_write_result_free);
  g_free (r->outcome);
  g_free (r->title);
  g_free (r->file);
  g_free (r->text);
  g_free (r);
}

static void
record_worker (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  Record *r = data;
  GError *error = NULL;
  gint64 id = r->request != NULL
                ? atelier_writer_record (r->store, r->request, r->result, r->parent_id, r->outcome, &error)
                : atelier_writer_record_document (r->store, r->title, r->file, r->text, r->parent_id, &error);

  if (id == 0)
    g_task_return_error (task, error);
  else
    g_task_return_int (task, (gssize) id);
}

static void
record_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AtelierWritePage *self = ATELIER_WRITE_PAGE (source);
  g_autoptr (GError) error = NULL;
  gssize id = g_task_propagate_int (G_TASK (result), &error);

  if (user_data != NULL)
    {
      g_application_release (user_data);
      g_object_unref (user_data);
    }

  if (id <= 0)
    {
      g_autofree char *text = g_strdup_printf (_("Not saved in the history: %s"), error->message);

      toast (self, text, NULL, NULL);
      return;
    }
  self->last_recorded = id;
  g_signal_emit (self, signals[HISTORY_CHANGED], 0);
}

static void
record_async (AtelierWritePage *self, Record *r)
{
  /* The application waits for the commit before it ends: closing right after New, say, must
   * not cut the old document's record short. */
  GApplication *app = self->app != NULL ? G_APPLICATION (self->app) : NULL;
  g_autoptr (GTask) task = g_task_new (self, NULL, record_done_cb, app != NULL ? g_object_ref (app) : NULL);

  if (app != NULL)
    g_application_hold (app);
  g_task_set_task_data (task, r, (GDestroyNotify) record_free);
  g_task_run_in_thread (task, record_worker);
}

/* The document's current state as a history item, unless it is what was recorded last. The
 * id is known at once only when nothing changed; a proposal job records the state itself (on
 * its worker) so its parent is exact. */
static void
autosave (AtelierWritePage *self)
{
  AtelierStore *store = store_of (self);
  g_autofree char *text = buffer_text (self->buffer);
  Record *r;

  if (store == NULL || text[0] == '\0' || g_strcmp0 (text, self->doc_recorded) == 0)
    return;
  r = g_new0 (Record, 1);
  r->store = atelier_store_ref (store);
  r->title = document_title (self);
  r->file = self->file != NULL ? g_file_get_path (self->file) : NULL;
  r->text = g_strdup (text);
  g_free (self->doc_recorded);
  self->doc_recorded = g_steal_pointer (&text);
  record_async (self, r);
}

static gboolean
autosave_timeout_cb (gpointer data)
{
  AtelierWritePage *self = data;

  self->autosave_timeout = 0;
  if (self->job == NULL || atelier_job_is_finished (self->job))
    autosave (self);
  return G_SOURCE_REMOVE;
}

/* -- the editor -- */

static gboolean
count_idle_cb (gpointer data)
{
  AtelierWritePage *self = data;
  GtkTextIter it;
  guint words = 0;
  g_autofree char *text = NULL;

  self->count_idle = 0;
  gtk_text_buffer_get_start_iter (self->buffer, &it);
  while (gtk_text_iter_forward_word_end (&it))
    words++;
  text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u word", "%u words", words), words);
  gtk_label_set_text (self->count_label, text);
  return G_SOURCE_REMOVE;
}

static void
update_title (AtelierWritePage *self)
{
  g_autofree char *title = document_title (self);
  g_autofree char *text = gtk_text_buffer_get_modified (self->buffer) ? g_strconcat ("• ", title, NULL)
                                                                       : g_strdup (title);

  gtk_label_set_text (self->file_label, text);
}

static void
buffer_changed_cb (GtkTextBuffer *buffer, gpointer data)
{
  AtelierWritePage *self = data;

  if (self->count_idle == 0)
    self->count_idle = g_timeout_add (200, count_idle_cb, self);
  g_clear_handle_id (&self->autosave_timeout, g_source_remove);
  self->autosave_timeout = g_timeout_add_seconds (AUTOSAVE_SECONDS, autosave_timeout_cb, self);
}

/* Markdown unless the file says otherwise: a writer's draft with `*emphasis*` and headings
 * reads better highlighted, and plain text has nothing Markdown would mark. */
static void
update_language (AtelierWritePage *self)
{
  GtkSourceLanguageManager *manager = gtk_source_language_manager_get_default ();
  g_autofree char *name = self->file != NULL ? g_file_get_basename (self->file) : NULL;
  g_autofree char *type = name != NULL ? g_content_type_guess (name, NULL, 0, NULL) : NULL;
  GtkSourceLanguage *language = NULL;

  if (name == NULL || g_content_type_is_a (type, "text/markdown"))
    language = gtk_source_language_manager_get_language (manager, "markdown");
  else if (!g_content_type_equals (type, "text/plain"))
    language = gtk_source_language_manager_guess_language (manager, name, type);
  gtk_source_buffer_set_language (GTK_SOURCE_BUFFER (self->buffer), language);
}

/* The editor's colours follow the light or dark style. */
static void
update_scheme (AtelierWritePage *self)
{
  gboolean dark = adw_style_manager_get_dark (adw_style_manager_get_default ());
  GtkSourceStyleScheme *scheme = gtk_source_style_scheme_manager_get_scheme (
    gtk_source_style_scheme_manager_get_default (), dark ? "Adwaita-dark" : "Adwaita");

  gtk_source_buffer_set_style_scheme (GTK_SOURCE_BUFFER (self->buffer), scheme);
}

static void
dark_changed_cb (GObject *manager, GParamSpec *pspec, gpointer data)
{
  update_scheme (data);
}

static void clear_chat (AtelierWritePage *self);

static void
set_document (AtelierWritePage *self, const char *text, GFile *file)
{
  /* A new document is not undone into the old one. */
  gtk_text_buffer_begin_irreversible_action (self->buffer);
  gtk_text_buffer_set_text (self->buffer, text, -1);
  gtk_text_buffer_end_irreversible_action (self->buffer);
  gtk_text_buffer_set_modified (self->buffer, FALSE);
  g_set_object (&self->file, file);
  self->doc_id = 0;
  g_clear_pointer (&self->doc_recorded, g_free);
  update_title (self);
  update_language (self);
  /* The conversation was about the other document. */
  clear_chat (self);
}

static void
load_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (AtelierWritePage) self = user_data;
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *name = g_file_get_basename (G_FILE (source));
  gsize len;

  if (!g_file_load_contents_finish (G_FILE (source), result, &contents, &len, NULL, &error))
    {
      g_autofree char *text = g_strdup_printf (_("%s could not be opened: %s"), name, error->message);

      toast (self, text, NULL, NULL);
      return;
    }
  if (!g_utf8_validate_len (contents, len, NULL) || memchr (contents, '\0', len) != NULL)
    {
      g_autofree char *text = g_strdup_printf (_("%s is not UTF-8 text; Atelier opens plain text and Markdown"),
                                               name);

      toast (self, text, NULL, NULL);
      return;
    }
  /* Whatever the editor held is kept in the history before it is replaced. */
  autosave (self);
  set_document (self, contents, G_FILE (source));
}

void
atelier_write_page_open_file (AtelierWritePage *self, GFile *file)
{
  g_file_load_contents_async (file, self->cancellable, load_done_cb, g_object_ref (self));
}

static void
save_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (AtelierWritePage) self = user_data;
  g_autoptr (GError) error = NULL;

  if (!g_file_replace_contents_finish (G_FILE (source), result, NULL, &error))
    {
      g_autofree char *name = g_file_get_basename (G_FILE (source));
      g_autofree char *text = g_strdup_printf (_("%s was not saved: %s"), name, error->message);

      toast (self, text, NULL, NULL);
      return;
    }
  if (self->file == NULL || !g_file_equal (G_FILE (source), self->file))
    {
      g_set_object (&self->file, G_FILE (source));
      update_language (self);
    }
  gtk_text_buffer_set_modified (self->buffer, FALSE);
  update_title (self);
  autosave (self);
}

static void
save_to (AtelierWritePage *self, GFile *file)
{
  g_autofree char *text = buffer_text (self->buffer);
  gsize len = strlen (text);

  /* The file is replaced atomically (a temporary file renamed over it), with a backup. */
  g_file_replace_contents_bytes_async (file, g_bytes_new_take (g_steal_pointer (&text), len), NULL, TRUE,
                                       G_FILE_CREATE_NONE, self->cancellable, save_done_cb, g_object_ref (self));
}

static void
chooser_response_cb (GtkNativeDialog *dialog, int response, gpointer user_data)
{
  AtelierWritePage *self = user_data;
  g_autoptr (GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
  gboolean saving = gtk_file_chooser_get_action (GTK_FILE_CHOOSER (dialog)) == GTK_FILE_CHOOSER_ACTION_SAVE;

  if (response == GTK_RESPONSE_ACCEPT && file != NULL)
    {
      if (saving)
        save_to (self, file);
      else
        atelier_write_page_open_file (self, file);
    }
  gtk_native_dialog_destroy (dialog);
  g_object_unref (dialog);
}

static void
run_chooser (AtelierWritePage *self, gboolean save)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  GtkFileChooserNative *dialog = gtk_file_chooser_native_new (save ? _("Save Document") : _("Open Document"),
                                                              GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                                                              save ? GTK_FILE_CHOOSER_ACTION_SAVE
                                                                   : GTK_FILE_CHOOSER_ACTION_OPEN,
                                                              save ? _("_Save") : _("_Open"), _("_Cancel"));
  GtkFileFilter *filter = gtk_file_filter_new ();

  gtk_file_filter_set_name (filter, _("Text and Markdown"));
  gtk_file_filter_add_mime_type (filter, "text/plain");
  gtk_file_filter_add_suffix (filter, "md");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (dialog), filter);
  g_object_unref (filter);
  if (save)
    gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (dialog), _("Untitled.md"));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (dialog), TRUE);
  g_signal_connect (dialog, "response", G_CALLBACK (chooser_response_cb), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}

/* -- leaving a document -- */

typedef struct
{
  AtelierWritePage *self;
  AtelierWritePageThen then;
  gpointer data;
  GDestroyNotify destroy;
} Leaving;

static void
leaving_free (gpointer data, GClosure *closure)
{
  Leaving *l = data;

  if (l->destroy != NULL)
    l->destroy (l->data);
  g_object_unref (l->self);
  g_free (l);
}

static void
leaving_response_cb (AdwMessageDialog *dialog, const char *response, gpointer user_data)
{
  Leaving *l = user_data;
  g_autoptr (GError) error = NULL;

  if (g_strcmp0 (response, "save") == 0 && !atelier_write_page_save_now (l->self, &error))
    {
      g_autofree char *text = g_strdup_printf (_("Not saved: %s"), error->message);

      toast (l->self, text, NULL, NULL);
      return;
    }
  if (g_strcmp0 (response, "save") == 0 || g_strcmp0 (response, "discard") == 0)
    l->then (l->self, l->data);
}

void
atelier_write_page_confirm_unsaved (AtelierWritePage *self, AtelierWritePageThen then, gpointer data,
                                    GDestroyNotify destroy)
{
  GFile *file = atelier_write_page_get_unsaved_file (self);
  g_autofree char *name = NULL, *heading = NULL;
  AdwMessageDialog *dialog;
  Leaving *l;

  /* Whatever is answered, the text as it is goes into the history. */
  autosave (self);
  if (file == NULL)
    {
      then (self, data);
      if (destroy != NULL)
        destroy (data);
      return;
    }
  l = g_new0 (Leaving, 1);
  l->self = g_object_ref (self);
  l->then = then;
  l->data = data;
  l->destroy = destroy;
  name = g_file_get_basename (file);
  heading = g_strdup_printf (_("Save Changes to “%s”?"), name);
  dialog = ADW_MESSAGE_DIALOG (adw_message_dialog_new (GTK_WINDOW (gtk_widget_get_root (GTK_WIDGET (self))), heading,
                                                       _("The text as it is now is kept in the history either way.")));
  adw_message_dialog_add_responses (dialog, "cancel", _("_Cancel"), "discard", _("_Discard"), "save", _("_Save"),
                                    NULL);
  adw_message_dialog_set_response_appearance (dialog, "discard", ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_response_appearance (dialog, "save", ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (dialog, "save");
  adw_message_dialog_set_close_response (dialog, "cancel");
  g_signal_connect_data (dialog, "response", G_CALLBACK (leaving_response_cb), l, leaving_free, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

static void finish_proposal (AtelierWritePage *self, const char *outcome);

gboolean
atelier_write_page_leave_proposal (AtelierWritePage *self)
{
  if (self->job != NULL && !atelier_job_is_finished (self->job))
    {
      toast (self, _("Stop the running proposal first"), NULL, NULL);
      return FALSE;
    }
  if (self->result != NULL)
    finish_proposal (self, "discarded");
  return TRUE;
}

static void
new_then (AtelierWritePage *self, gpointer data)
{
  set_document (self, "", NULL);
}

static void
new_action (GSimpleAction *a, GVariant *p, gpointer data)
{
  if (atelier_write_page_leave_proposal (data))
    atelier_write_page_confirm_unsaved (data, new_then, NULL, NULL);
}

static void
open_then (AtelierWritePage *self, gpointer data)
{
  run_chooser (self, FALSE);
}

static void
open_action (GSimpleAction *a, GVariant *p, gpointer data)
{
  if (atelier_write_page_leave_proposal (data))
    atelier_write_page_confirm_unsaved (data, open_then, NULL, NULL);
}

static void
save_action (GSimpleAction *a, GVariant *p, gpointer data)
{
  AtelierWritePage *self = data;

  if (self->file != NULL)
    save_to (self, self->file);
  else
    run_chooser (self, TRUE);
}

static void
save_as_action (GSimpleAction *a, GVariant *p, gpointer data)
{
  run_chooser (data, TRUE);
}

/* -- the models -- */

static const char *
chosen_model (AtelierWritePage *self)
{
  guint i = gtk_drop_down_get_selected (self->model_drop);

  return i < self->model_paths->len ? g_ptr_array_index (self->model_paths, i) : NULL;
}

static guint
add_model (AtelierWritePage *self, const char *path, const char *name)
{
  g_autofree char *base = NULL;

  for (guint i = 0; i < self->model_paths->len; i++)
    if (strcmp (g_ptr_array_index (self->model_paths, i), path) == 0)
      return i;
  base = g_path_get_basename (path);
  g_ptr_array_add (self->model_paths, g_strdup (path));
  gtk_string_list_append (self->model_names, name != NULL ? name : base);
  return self->model_paths->len - 1;
}

void
atelier_write_page_set_model (AtelierWritePage *self, const char *path)
{
  GSettings *settings = atelier_settings_get ();

  gtk_drop_down_set_selected (self->model_drop, add_model (self, path, NULL));
  if (settings != NULL)
    g_settings_set_string (settings, "text-model", path);
}

static void
scan_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (AtelierWritePage) self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) found = atelier_discovery_scan_finish (result, &error);

  if (found == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        toast (self, error->message, NULL, NULL);
      return;
    }
  for (guint i = 0; i < found->len; i++)
    {
      AtelierFoundModel *m = g_ptr_array_index (found, i);

      if (m->error == NULL && m->supported && m->kind == AT_MODEL_KIND_LLM)
        add_model (self, m->path, m->name);
    }
}

void
atelier_write_page_refresh_models (AtelierWritePage *self)
{
  AtelierDiscoveryOptions options = { 0 };
  GSettings *settings = atelier_settings_get ();
  g_auto (GStrv) folders = settings != NULL ? g_settings_get_strv (settings, "model-folders") : NULL;
  g_autoptr (GPtrArray) users = NULL;
  g_autoptr (GPtrArray) paths = g_ptr_array_new ();
  AtelierStore *store = store_of (self);

  if (store != NULL && (users = atelier_store_list_user_models (store, NULL)) != NULL)
    for (guint i = 0; i < users->len; i++)
      g_ptr_array_add (paths, ((AtelierUserModel *) g_ptr_array_index (users, i))->path);
  g_ptr_array_add (paths, NULL);
  options.user_paths = (const char *const *) paths->pdata;
  options.folders = (const char *const *) folders;
  g_cancellable_cancel (self->scan);
  g_clear_object (&self->scan);
  self->scan = g_cancellable_new ();
  atelier_discovery_scan_async (&options, self->scan, scan_done_cb, g_object_ref (self));
}

/* -- the proposal -- */

static void
show_diff (AtelierWritePage *self, const char *original, const char *proposal)
{
  g_autoptr (GPtrArray) runs = atelier_diff_words (original, proposal);
  GtkTextIter end;

  gtk_text_buffer_set_text (self->proposal, "", 0);
  for (guint i = 0; i < runs->len; i++)
    {
      AtelierDiffRun *run = g_ptr_array_index (runs, i);

      gtk_text_buffer_get_end_iter (self->proposal, &end);
      if (run->op == ATELIER_DIFF_KEEP)
        gtk_text_buffer_insert (self->proposal, &end, run->text, -1);
      else
        gtk_text_buffer_insert_with_tags_by_name (self->proposal, &end, run->text, -1,
                                                  run->op == ATELIER_DIFF_INSERT ? "inserted" : "deleted", NULL);
    }
}

static void
clear_proposal (AtelierWritePage *self)
{
  g_clear_pointer (&self->result, atelier_write_result_free);
  gtk_text_buffer_set_text (self->proposal, "", 0);
  gtk_label_set_text (self->status_label, "");
  update_state (self);
}

typedef struct
{
  AtelierWriter *writer;
  AtelierWriteRequest *request;
  AtelierStore *store;      /* NULL: no history */
  char *title, *file, *doc; /* the document state to record first; doc NULL: recorded already */
  gint64 parent_id;
} ProposalJob;

typedef struct
{
  gint64 parent_id;
  AtelierWriteResult *result;
} ProposalResult;

static void
proposal_job_free (ProposalJob *j)
{
  atelier_write_request_free (j->request);
  g_clear_pointer (&j->store, atelier_store_unref);
  g_free (j->title);
  g_free (j->file);
  g_free (j->doc);
  g_free (j);
}

static void
proposal_result_free (ProposalResult *r)
{
  g_clear_pointer (&r->result, atelier_write_result_free);
  g_free (r);
}

/* -- the chat -- */

static JsonObject *
message_new (const char *role, const char *content)
{
  JsonObject *m = json_object_new ();

  json_object_set_string_member (m, "role", role);
  json_object_set_string_member (m, "content", content);
  return m;
}

static void
chat_append (AtelierWritePage *self, const char *text, const char *tag)
{
  GtkTextIter end;

  gtk_text_buffer_get_end_iter (self->chat, &end);
  if (tag != NULL)
    gtk_text_buffer_insert_with_tags_by_name (self->chat, &end, text, -1, tag, NULL);
  else
    gtk_text_buffer_insert (self->chat, &end, text, -1);
  /* The newest text in view. */
  gtk_text_buffer_get_end_iter (self->chat, &end);
  gtk_text_view_scroll_to_iter (self->chat_view, &end, 0, FALSE, 0, 0);
}

static void
clear_chat (AtelierWritePage *self)
{
  g_clear_pointer (&self->conversation, json_array_unref);
  self->conversation = json_array_new ();
  if (self->chat != NULL)
    gtk_text_buffer_set_text (self->chat, "", 0);
}

/* The conversation so far, as a question carries it (the writer keeps the newest turns that
 * fit the model's window). Its own array: the conversation grows after the request is made. */
static JsonArray *
chat_turns (AtelierWritePage *self)
{
  JsonArray *turns = json_array_sized_new (json_array_get_length (self->conversation));

  for (guint i = 0; i < json_array_get_length (self->conversation); i++)
    json_array_add_object_element (turns, json_object_ref (json_array_get_object_element (self->conversation, i)));
  return turns;
}

/* -- proposals, as jobs -- */

static gboolean
stream_piece (const char *piece, const char *text, gpointer data)
{
  AtelierJob *job = data;
  double max = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (job), "max-tokens"));
  guint n = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (job), "pieces")) + 1;
  g_autofree char *status = g_strdup_printf (_("%u pieces of text"), n);

  g_object_set_data (G_OBJECT (job), "pieces", GUINT_TO_POINTER (n));
  atelier_job_stream (job, piece);
  atelier_job_report (job, max > 0 ? MIN (n / max, 1.0) : -1, status);
  return TRUE;
}

static gboolean
proposal_job_run (AtelierJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  ProposalJob *j = data;
  ProposalResult *r = g_new0 (ProposalResult, 1);
  GError *record_error = NULL;

  r->parent_id = j->parent_id;
  /* The document state goes into the history before the model runs: whatever happens next,
   * the text the proposal was made from is kept. A history failure does not stop writing. */
  if (j->store != NULL && j->doc != NULL)
    {
      r->parent_id = atelier_writer_record_document (j->store, j->title, j->file, j->doc, 0, &record_error);
      if (r->parent_id == 0)
        {
          g_warning ("history: %s", record_error->message);
          g_clear_error (&record_error);
        }
    }
  atelier_job_report (job, -1, _("Loading the model"));
  r->result = g_new0 (AtelierWriteResult, 1);
  if (!atelier_writer_run (j->writer, j->request, stream_piece, job, cancellable, r->result, error))
    {
      atelier_job_set_result (job, r, (GDestroyNotify) proposal_result_free);
      return FALSE;
    }
  atelier_job_set_result (job, r, (GDestroyNotify) proposal_result_free);
  return TRUE;
}

static void
job_stream_cb (AtelierJob *job, const char *piece, gpointer data)
{
  AtelierWritePage *self = data;
  GtkTextIter end;

  if (self->request != NULL && self->request->action == AT_TEXT_ASK)
    {
      chat_append (self, piece, NULL);
      return;
    }
  gtk_text_buffer_get_end_iter (self->proposal, &end);
  gtk_text_buffer_insert_with_tags_by_name (self->proposal, &end, piece, -1, "inserted", NULL);
}

static void
job_notify_cb (GObject *object, GParamSpec *pspec, gpointer data)
{
  AtelierWritePage *self = data;
  AtelierJob *job = ATELIER_JOB (object);
  double f = atelier_job_get_fraction (job);

  if (atelier_job_get_status (job) != NULL)
    gtk_label_set_text (self->status_label, atelier_job_get_status (job));
  if (f >= 0)
    gtk_progress_bar_set_fraction (self->progress, f);
  else
    gtk_progress_bar_pulse (self->progress);
}

static char *
offset_text (GtkTextBuffer *buffer, GtkTextMark *a, GtkTextMark *b)
{
  GtkTextIter ia, ib;

  gtk_text_buffer_get_iter_at_mark (buffer, &ia, a);
  gtk_text_buffer_get_iter_at_mark (buffer, &ib, b);
  return gtk_text_buffer_get_text (buffer, &ia, &ib, FALSE);
}

static void
job_finished_cb (AtelierJob *job, gpointer data)
{
  AtelierWritePage *self = data;
  ProposalResult *r = atelier_job_get_result (job);
  AtelierJobState state = atelier_job_get_state (job);

  if (r != NULL && r->parent_id > 0)
    {
      self->doc_id = r->parent_id;
      g_signal_emit (self, signals[HISTORY_CHANGED], 0);
    }
  self->parent_id = r != NULL ? r->parent_id : 0;
  if (state == ATELIER_JOB_CANCELLED && (r == NULL || r->result == NULL || r->result->text == NULL))
    {
      /* Stopped before any text (while it waited, or loaded the model): nothing went wrong. */
      clear_proposal (self);
      gtk_label_set_text (self->status_label, _("Stopped before any text came."));
      if (self->request->action == AT_TEXT_ASK)
        chat_append (self, _("(stopped)"), "note");
      return;
    }
  if (state == ATELIER_JOB_FAILED || r == NULL || r->result == NULL || r->result->text == NULL)
    {
      const GError *error = atelier_job_get_error (job);
      g_autofree char *text = g_strdup_printf (_("The assistant stopped: %s"),
                                               error != NULL ? error->message : _("no text came back"));

      gtk_label_set_text (self->status_label, text);
      toast (self, text, _("Models"), "win.models");
      clear_proposal (self);
      gtk_label_set_text (self->status_label, text);
      if (self->request->action == AT_TEXT_ASK)
        chat_append (self, text, "note");
      return;
    }
  self->result = g_steal_pointer (&r->result);
  if (self->request->action == AT_TEXT_ASK)
    {
      /* The turn joins the conversation: the next question carries it. */
      json_array_add_object_element (self->conversation, message_new ("user", self->request->instruction));
      json_array_add_object_element (self->conversation, message_new ("assistant", self->result->text));
    }
  /* A rewrite with nothing selected replaces the paragraph the prompt carried. */
  if (self->replaces && self->request->sel_start == self->request->sel_end)
    {
      GtkTextIter a, b;
      const char *doc = self->request->document;

      gtk_text_buffer_get_iter_at_offset (self->buffer, &a,
                                          (int) g_utf8_pointer_to_offset (doc, doc + self->result->context_start));
      gtk_text_buffer_get_iter_at_offset (self->buffer, &b,
                                          (int) g_utf8_pointer_to_offset (doc, doc + self->result->context_end));
      gtk_text_buffer_move_mark (self->buffer, self->range_start, &a);
      gtk_text_buffer_move_mark (self->buffer, self->range_end, &b);
    }
  if (self->replaces)
    {
      g_autofree char *original = offset_text (self->buffer, self->range_start, self->range_end);

      show_diff (self, original, self->result->text);
    }
  gtk_label_set_text (self->status_label,
                      state == ATELIER_JOB_CANCELLED ? _("Stopped. Accept what came, or discard it.")
                                                     : _("Accept the proposal, or discard it."));
  update_state (self);
}

static void
push_cancel (AtelierWritePage *self)
{
  if (self->push_clock != NULL)
    g_clear_signal_handler (&self->push_handler, self->push_clock);
  g_clear_object (&self->push_clock);
  g_clear_handle_id (&self->push_timeout, g_source_remove);
}

static void
push_now (AtelierWritePage *self)
{
  push_cancel (self);
  atelier_job_queue_push (atelier_application_get_jobs (self->app), self->job);
}

static gboolean
push_timeout_cb (gpointer data)
{
  AtelierWritePage *self = data;

  self->push_timeout = 0;
  push_now (self);
  return G_SOURCE_REMOVE;
}

/* The job goes to the queue once the frame showing it started is drawn: that frame (actions
 * turning insensitive, the status, the sidebar repainted) then has the CPU to itself, not a
 * share of it beside a model loading on a CPU device, and no main-loop tick waits for it. A
 * window that draws no frames (hidden, or not mapped yet) starts it within 50 ms anyway. */
static void
push_after_frame (AtelierWritePage *self)
{
  GdkFrameClock *clock = gtk_widget_get_frame_clock (GTK_WIDGET (self));

  if (clock == NULL)
    {
      push_now (self);
      return;
    }
  self->push_clock = g_object_ref (clock);
  self->push_handler = g_signal_connect_swapped (clock, "after-paint", G_CALLBACK (push_now), self);
  self->push_timeout = g_timeout_add (50, push_timeout_cb, self);
  gdk_frame_clock_request_phase (clock, GDK_FRAME_CLOCK_PHASE_PAINT);
}

static void
start_job (AtelierWritePage *self, AtelierWriteRequest *request)
{
  AtelierStore *store = store_of (self);
  ProposalJob *j = g_new0 (ProposalJob, 1);
  g_autofree char *model = g_path_get_basename (request->model_path);
  g_autofree char *title = NULL;
  const char *what = request->action == AT_TEXT_ASK ? _("Question") : _(at_text_action_name (request->action));

  title = g_strdup_printf (_("%s with %s"), what, model);
  j->writer = atelier_application_get_writer (self->app);
  j->request = atelier_write_request_copy (request);
  j->store = store != NULL ? atelier_store_ref (store) : NULL;
  j->parent_id = self->doc_id;
  if (store != NULL && g_strcmp0 (request->document, self->doc_recorded) != 0 && request->document != NULL)
    {
      j->title = document_title (self);
      j->file = self->file != NULL ? g_file_get_path (self->file) : NULL;
      j->doc = g_strdup (request->document);
      g_free (self->doc_recorded);
      self->doc_recorded = g_strdup (request->document);
    }
  g_clear_object (&self->job);
  self->job = atelier_job_new (title, proposal_job_run, j, (GDestroyNotify) proposal_job_free);
  g_object_set_data (G_OBJECT (self->job), "max-tokens", GUINT_TO_POINTER (request->max_tokens));
  g_signal_connect_object (self->job, "stream", G_CALLBACK (job_stream_cb), self, 0);
  g_signal_connect_object (self->job, "notify", G_CALLBACK (job_notify_cb), self, 0);
  g_signal_connect_object (self->job, "finished", G_CALLBACK (job_finished_cb), self, 0);
  g_clear_pointer (&self->request, atelier_write_request_free);
  self->request = request;
  clear_proposal (self);
  if (request->action == AT_TEXT_ASK)
    {
      g_autofree char *header = g_strdup_printf ("%s%s\n", gtk_text_buffer_get_char_count (self->chat) > 0 ? "\n" : "",
                                                 request->instruction);

      chat_append (self, header, "question");
      gtk_stack_set_visible_child_name (self->side_stack, "chat");
    }
  else
    gtk_stack_set_visible_child_name (self->side_stack, "proposal");
  gtk_label_set_text (self->status_label, _("Waiting for the model"));
  update_state (self);
  push_after_frame (self);
}

/* The request for `action` from the editor and the sidebar; NULL (and a toast) when it cannot
 * run yet. */
static AtelierWriteRequest *
make_request (AtelierWritePage *self, AtTextAction action)
{
  const char *model = chosen_model (self);
  AtelierWriteRequest *r;
  GtkTextIter a, b;
  int sa, sb;

  if (model == NULL)
    {
      toast (self, _("Choose a language model first: add a GGUF file in the model manager"), _("Models"),
             "win.models");
      return NULL;
    }
  r = g_new0 (AtelierWriteRequest, 1);
  atelier_write_request_init (r);
  r->model_path = g_strdup (model);
  r->action = action;
  r->temperature = gtk_spin_button_get_value (self->temperature);
  r->top_p = gtk_spin_button_get_value (self->top_p);
  r->top_k = gtk_spin_button_get_value_as_int (self->top_k);
  r->max_tokens = (guint) gtk_spin_button_get_value_as_int (self->max_tokens);
  r->seed = (gint64) gtk_spin_button_get_value (self->seed);
  r->document = buffer_text (self->buffer);
  gtk_text_buffer_get_selection_bounds (self->buffer, &a, &b);
  sa = gtk_text_iter_get_offset (&a);
  sb = gtk_text_iter_get_offset (&b);
  r->sel_start = (gsize) (g_utf8_offset_to_pointer (r->document, sa) - r->document);
  r->sel_end = (gsize) (g_utf8_offset_to_pointer (r->document, sb) - r->document);
  if (action == AT_TEXT_REWRITE && gtk_entry_get_text_length (self->instruction) > 0)
    r->instruction = g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->instruction)));
  if (action == AT_TEXT_ASK)
    {
      r->instruction = g_strdup (self->question);
      r->turns = chat_turns (self);
    }
  /* Accept replaces the selection (rewrite) or goes after it (the others). */
  self->replaces = action == AT_TEXT_REWRITE;
  gtk_text_buffer_move_mark (self->buffer, self->range_start, self->replaces ? &a : &b);
  gtk_text_buffer_move_mark (self->buffer, self->range_end, &b);
  return r;
}

static void
run_action (AtelierWritePage *self, AtTextAction action)
{
  AtelierWriteRequest *r = make_request (self, action);

  if (r != NULL)
    start_job (self, r);
}

static void
continue_action (GSimpleAction *a, GVariant *p, gpointer data)
{
  run_action (data, AT_TEXT_CONTINUE);
}

static void
rewrite_action (GSimpleAction *a, GVariant *p, gpointer data)
{
  run_action (data, AT_TEXT_REWRITE);
}

static void
summarize_action (GSimpleAction *a, GVariant *p, gpointer data)
{
  run_action (data, AT_TEXT_SUMMARIZE);
}

static void
brainstorm_action (GSimpleAction *a, GVariant *p, gpointer data)
{
  run_action (data, AT_TEXT_BRAINSTORM);
}

gboolean
atelier_write_page_ask (AtelierWritePage *self, const char *question)
{
  g_autofree char *trimmed = g_strstrip (g_strdup (question != NULL ? question : ""));

  g_return_val_if_fail (ATELIER_IS_WRITE_PAGE (self), FALSE);
  if (trimmed[0] == '\0')
    {
      toast (self, _("Type a question about the document first"), NULL, NULL);
      return FALSE;
    }
  if ((self->job != NULL && !atelier_job_is_finished (self->job)) || self->result != NULL)
    {
      toast (self, _("Finish the current proposal first: accept, discard or stop it"), NULL, NULL);
      return FALSE;
    }
  g_free (self->question);
  self->question = g_steal_pointer (&trimmed);
  run_action (self, AT_TEXT_ASK);
  return self->job != NULL && !atelier_job_is_finished (self->job);
}

static void
new_chat_action (GSimpleAction *a, GVariant *p, gpointer data)
{
  clear_chat (data);
}

static void
stop_action (GSimpleAction *a, GVariant *p, gpointer data)
{
  AtelierWritePage *self = data;

  if (self->job != NULL)
    atelier_job_cancel (self->job);
}

static void
finish_proposal (AtelierWritePage *self, const char *outcome)
{
  AtelierStore *store = store_of (self);

  if (store != NULL && self->result != NULL)
    {
      Record *r = g_new0 (Record, 1);

      r->store = atelier_store_ref (store);
      r->request = atelier_write_request_copy (self->request);
      r->result = g_steal_pointer (&self->result);
      r->parent_id = self->parent_id;
      r->outcome = g_strdup (outcome);
      record_async (self, r);
    }
  clear_proposal (self);
}

static void
accept_action (GSimpleAction *a, GVariant *p, gpointer data)
{
  AtelierWritePage *self = data;
  GtkTextIter start, end;
  const char *text;
  g_autofree char *joined = NULL;

  if (self->result == NULL)
    return;
  text = self->result->text;
  gtk_text_view_set_editable (self->editor, TRUE);
  /* One user action: one Ctrl+Z takes the whole proposal back. */
  gtk_text_buffer_begin_user_action (self->buffer);
  gtk_text_buffer_get_iter_at_mark (self->buffer, &start, self->range_start);
  gtk_text_buffer_get_iter_at_mark (self->buffer, &end, self->range_end);
  if (self->replaces)
    gtk_text_buffer_delete (self->buffer, &start, &end);
  else if (self->request->action != AT_TEXT_CONTINUE)
    text = joined = g_strconcat ("\n\n", text, NULL);
  gtk_text_buffer_get_iter_at_mark (self->buffer, &start, self->range_start);
  gtk_text_buffer_insert (self->buffer, &start, text, -1);
  gtk_text_buffer_end_user_action (self->buffer);
  finish_proposal (self, "accepted");
}

static void
discard_action (GSimpleAction *a, GVariant *p, gpointer data)
{
  finish_proposal (data, "discarded");
}

static void
regenerate_action (GSimpleAction *a, GVariant *p, gpointer data)
{
  AtelierWritePage *self = data;
  AtelierWriteRequest *again;

  if (self->request == NULL)
    return;
  again = atelier_write_request_copy (self->request);
  /* A question asked again: its first answer leaves the conversation. */
  if (again->action == AT_TEXT_ASK && self->result != NULL && json_array_get_length (self->conversation) >= 2)
    {
      json_array_remove_element (self->conversation, json_array_get_length (self->conversation) - 1);
      json_array_remove_element (self->conversation, json_array_get_length (self->conversation) - 1);
    }
  finish_proposal (self, "discarded");
  /* A fixed seed would give the same text again: a regeneration draws a new one. */
  again->seed = -1;
  start_job (self, again);
}

/* -- reopening from the history -- */

static void
open_item_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (AtelierWritePage) self = user_data;
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize len;

  if (!g_file_load_contents_finish (G_FILE (source), result, &contents, &len, NULL, &error))
    {
      g_autofree char *text = g_strdup_printf (_("This history item's text is missing: %s"), error->message);

      toast (self, text, NULL, NULL);
      return;
    }
  if (!g_utf8_validate_len (contents, len, NULL))
    {
      toast (self, _("This history item's text is not UTF-8"), NULL, NULL);
      return;
    }
  autosave (self);
  set_document (self, contents, NULL);
  self->doc_id = GPOINTER_TO_SIZE (g_object_get_data (G_OBJECT (source), "item-id"));
  g_free (self->doc_recorded);
  self->doc_recorded = g_strdup (contents);
}

void
atelier_write_page_open_item (AtelierWritePage *self, const AtelierItem *item)
{
  g_autoptr (JsonNode) params = item->params_json != NULL ? json_from_string (item->params_json, NULL) : NULL;
  JsonObject *o = params != NULL && JSON_NODE_HOLDS_OBJECT (params) ? json_node_get_object (params) : NULL;
  gboolean proposal = o != NULL && json_object_has_member (o, "action");
  const AtelierAsset *asset = atelier_item_get_asset (item, proposal ? "input" : "main");
  g_autoptr (GFile) file = NULL;

  if (!atelier_write_page_leave_proposal (self))
    return;
  if (proposal)
    {
      /* The settings it was made with, so Continue (or Rewrite) runs it again. */
      gtk_spin_button_set_value (self->temperature, json_object_get_double_member_with_default (o, "temperature",
                                                                                                 0.8));
      gtk_spin_button_set_value (self->top_p, json_object_get_double_member_with_default (o, "top_p", 0.95));
      gtk_spin_button_set_value (self->top_k, (double) json_object_get_int_member_with_default (o, "top_k", 40));
      gtk_spin_button_set_value (self->seed, (double) json_object_get_int_member_with_default (o, "seed", -1));
      /* A question goes back into the window's prompt bar, a rewrite's instruction into its
       * own field. */
      if (g_strcmp0 (json_object_get_string_member (o, "action"), "ask") == 0)
        g_signal_emit (self, signals[PROMPT], 0, json_object_get_string_member_with_default (o, "instruction", ""));
      else
        gtk_editable_set_text (GTK_EDITABLE (self->instruction),
                               json_object_get_string_member_with_default (o, "instruction", ""));
      if (item->model_path != NULL)
        atelier_write_page_set_model (self, item->model_path);
      toast (self, _("The document and settings of this proposal are restored"), NULL, NULL);
    }
  if (asset == NULL || (proposal && g_strcmp0 (asset->media_type, "text/plain") != 0))
    return;
  file = g_file_new_for_path (asset->path);
  g_object_set_data (G_OBJECT (file), "item-id", GSIZE_TO_POINTER ((gsize) (proposal ? item->parent_id : item->id)));
  g_file_load_contents_async (file, self->cancellable, open_item_done_cb, g_object_ref (self));
}

/* -- closing -- */

void
atelier_write_page_keep_in_history (AtelierWritePage *self)
{
  AtelierStore *store = store_of (self);
  g_autofree char *text = buffer_text (self->buffer);
  g_autofree char *title = document_title (self);
  g_autofree char *path = self->file != NULL ? g_file_get_path (self->file) : NULL;
  g_autoptr (GError) error = NULL;

  g_return_if_fail (ATELIER_IS_WRITE_PAGE (self));
  if (store == NULL || text[0] == '\0' || g_strcmp0 (text, self->doc_recorded) == 0)
    return;
  /* On the main thread, once: the window is closing and must not go before the commit. */
  if (atelier_writer_record_document (store, title, path, text, 0, &error) == 0)
    {
      g_warning ("history: the document was not kept: %s", error->message);
      return;
    }
  g_free (self->doc_recorded);
  self->doc_recorded = g_steal_pointer (&text);
}

GFile *
atelier_write_page_get_unsaved_file (AtelierWritePage *self)
{
  g_return_val_if_fail (ATELIER_IS_WRITE_PAGE (self), NULL);
  return self->file != NULL && gtk_text_buffer_get_modified (self->buffer) ? self->file : NULL;
}

gboolean
atelier_write_page_save_now (AtelierWritePage *self, GError **error)
{
  g_autofree char *text = buffer_text (self->buffer);

  g_return_val_if_fail (ATELIER_IS_WRITE_PAGE (self) && self->file != NULL, FALSE);
  /* Replaced atomically (a temporary file renamed over it), with a backup, as Save does. */
  if (!g_file_replace_contents (self->file, text, strlen (text), NULL, TRUE, G_FILE_CREATE_NONE, NULL, NULL,
                                error))
    return FALSE;
  gtk_text_buffer_set_modified (self->buffer, FALSE);
  return TRUE;
}

/* -- accessors -- */

GtkTextBuffer *
atelier_write_page_get_buffer (AtelierWritePage *self)
{
  return self->buffer;
}

AtelierJob *
atelier_write_page_get_job (AtelierWritePage *self)
{
  return self->job;
}

gboolean
atelier_write_page_has_proposal (AtelierWritePage *self)
{
  return self->result != NULL;
}

gint64
atelier_write_page_get_last_recorded (AtelierWritePage *self)
{
  return self->last_recorded;
}

void
atelier_write_page_attach (AtelierWritePage *self, AtelierApplication *app)
{
  GSettings *settings = atelier_settings_get ();
  g_autofree char *model = settings != NULL ? g_settings_get_string (settings, "text-model") : NULL;

  self->app = app;
  if (model != NULL && model[0] != '\0')
    gtk_drop_down_set_selected (self->model_drop, add_model (self, model, NULL));
  atelier_write_page_refresh_models (self);
}

/* -- construction -- */

static GtkSpinButton *
spin_row (GtkWidget *grid, int row, const char *label, double lo, double hi, double step, int digits,
          const char *key, double fallback)
{
  GtkWidget *l = gtk_label_new (label);
  GtkWidget *spin = gtk_spin_button_new_with_range (lo, hi, step);
  GSettings *settings = atelier_settings_get ();

  gtk_spin_button_set_digits (GTK_SPIN_BUTTON (spin), (guint) digits);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (spin), fallback);
  gtk_label_set_xalign (GTK_LABEL (l), 0);
  gtk_grid_attach (GTK_GRID (grid), l, 0, row, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), spin, 1, row, 1, 1);
  /* The preferences hold the defaults; changing one here changes them too. */
  if (settings != NULL && key != NULL)
    g_settings_bind (settings, key, spin, "value", G_SETTINGS_BIND_DEFAULT);
  return GTK_SPIN_BUTTON (spin);
}

static GtkWidget *
button (const char *label, const char *action, const char *tooltip)
{
  GtkWidget *b = gtk_button_new_with_mnemonic (label);

  gtk_actionable_set_action_name (GTK_ACTIONABLE (b), action);
  if (tooltip != NULL)
    gtk_widget_set_tooltip_text (b, tooltip);
  return b;
}

static GtkWidget *
build_sidebar (AtelierWritePage *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 8);
  GtkWidget *models = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *manage = button (NULL, "win.models", _("Model manager (Ctrl+M)"));
  GtkWidget *actions = gtk_grid_new ();
  GtkWidget *grid = gtk_grid_new ();
  GtkWidget *popover = gtk_popover_new ();
  GtkWidget *settings_button = gtk_menu_button_new ();
  GtkWidget *ask = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *scroller = gtk_scrolled_window_new ();
  GtkWidget *chat_scroller = gtk_scrolled_window_new ();
  GtkWidget *chat_page = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  GtkWidget *switcher = gtk_stack_switcher_new ();
  GtkWidget *new_chat = button (NULL, "write.new-chat", _("Start a new conversation"));
  GtkWidget *hint;
  GtkWidget *decide = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *running = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
  GtkWidget *heading = gtk_label_new (_("Assistant"));
  GtkWidget *rewrite_box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);

  gtk_widget_set_size_request (box, 340, -1);
  g_object_set (box, "margin-start", 12, "margin-end", 12, "margin-top", 12, "margin-bottom", 12, NULL);
  gtk_widget_add_css_class (heading, "heading");
  gtk_label_set_xalign (GTK_LABEL (heading), 0);
  gtk_box_append (GTK_BOX (box), heading);

  self->model_names = gtk_string_list_new (NULL);
  self->model_drop = GTK_DROP_DOWN (gtk_drop_down_new (G_LIST_MODEL (g_object_ref (self->model_names)), NULL));
  gtk_widget_set_hexpand (GTK_WIDGET (self->model_drop), TRUE);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->model_drop), _("Language model"));
  gtk_button_set_icon_name (GTK_BUTTON (manage), "view-more-symbolic");
  gtk_box_append (GTK_BOX (models), GTK_WIDGET (self->model_drop));
  gtk_box_append (GTK_BOX (models), manage);
  gtk_box_append (GTK_BOX (box), models);

  gtk_grid_set_row_spacing (GTK_GRID (actions), 6);
  gtk_grid_set_column_spacing (GTK_GRID (actions), 6);
  gtk_grid_set_column_homogeneous (GTK_GRID (actions), TRUE);
  gtk_grid_attach (GTK_GRID (actions), button (_("_Continue"), "write.continue", _("Write on from the cursor (Ctrl+Return)")), 0, 0, 1, 1);
  gtk_grid_attach (GTK_GRID (actions), button (_("_Summarize"), "write.summarize", _("Summarize the selection or the document")), 1, 0, 1, 1);
  gtk_grid_attach (GTK_GRID (actions), button (_("_Brainstorm"), "write.brainstorm", _("Ideas for what could come next")), 0, 1, 1, 1);
  gtk_grid_attach (GTK_GRID (actions), settings_button, 1, 1, 1, 1);
  gtk_box_append (GTK_BOX (box), actions);

  self->instruction = GTK_ENTRY (gtk_entry_new ());
  gtk_entry_set_placeholder_text (self->instruction, _("Rewrite: shorter, more formal…"));
  gtk_widget_set_hexpand (GTK_WIDGET (self->instruction), TRUE);
  gtk_box_append (GTK_BOX (rewrite_box), GTK_WIDGET (self->instruction));
  gtk_box_append (GTK_BOX (rewrite_box), button (_("_Rewrite"), "write.rewrite",
                                                 _("Rewrite the selection or the paragraph (Ctrl+Shift+R)")));
  gtk_box_append (GTK_BOX (box), rewrite_box);


  gtk_grid_set_row_spacing (GTK_GRID (grid), 6);
  gtk_grid_set_column_spacing (GTK_GRID (grid), 12);
  self->temperature = spin_row (grid, 0, _("Temperature"), 0, 2, 0.05, 2, "temperature", 0.8);
  self->top_p = spin_row (grid, 1, _("Top p"), 0, 1, 0.01, 2, "top-p", 0.95);
  self->top_k = spin_row (grid, 2, _("Top k"), 0, 1000, 1, 0, "top-k", 40);
  self->max_tokens = spin_row (grid, 3, _("Most tokens"), 1, 4096, 16, 0, "max-tokens", 256);
  self->seed = spin_row (grid, 4, _("Seed (−1: random)"), -1, 4294967295.0, 1, 0, NULL, -1);
  gtk_popover_set_child (GTK_POPOVER (popover), grid);
  gtk_menu_button_set_popover (GTK_MENU_BUTTON (settings_button), popover);
  gtk_menu_button_set_label (GTK_MENU_BUTTON (settings_button), _("Sampling"));
  gtk_widget_set_tooltip_text (settings_button, _("Sampling settings"));

  /* Two pages: the proposal (the actions' text, as a change) and the chat (questions). */
  self->side_stack = GTK_STACK (gtk_stack_new ());
  gtk_stack_switcher_set_stack (GTK_STACK_SWITCHER (switcher), self->side_stack);
  gtk_box_append (GTK_BOX (box), switcher);
  self->proposal_view = GTK_TEXT_VIEW (gtk_text_view_new ());
  self->proposal = gtk_text_view_get_buffer (self->proposal_view);
  gtk_text_view_set_editable (self->proposal_view, FALSE);
  gtk_text_view_set_wrap_mode (self->proposal_view, GTK_WRAP_WORD_CHAR);
  gtk_text_view_set_left_margin (self->proposal_view, 6);
  gtk_text_view_set_right_margin (self->proposal_view, 6);
  gtk_text_view_set_top_margin (self->proposal_view, 6);
  gtk_text_buffer_create_tag (self->proposal, "inserted", "underline", PANGO_UNDERLINE_SINGLE, "foreground",
                              "#26a269", NULL);
  gtk_text_buffer_create_tag (self->proposal, "deleted", "strikethrough", TRUE, "foreground", "#c01c28", NULL);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroller), GTK_WIDGET (self->proposal_view));
  gtk_widget_set_vexpand (scroller, TRUE);
  gtk_widget_add_css_class (scroller, "card");
  gtk_stack_add_titled (self->side_stack, scroller, "proposal", _("Proposal"));

  self->chat_view = GTK_TEXT_VIEW (gtk_text_view_new ());
  self->chat = gtk_text_view_get_buffer (self->chat_view);
  gtk_text_view_set_editable (self->chat_view, FALSE);
  gtk_text_view_set_cursor_visible (self->chat_view, FALSE);
  gtk_text_view_set_wrap_mode (self->chat_view, GTK_WRAP_WORD_CHAR);
  gtk_text_view_set_left_margin (self->chat_view, 6);
  gtk_text_view_set_right_margin (self->chat_view, 6);
  gtk_text_view_set_top_margin (self->chat_view, 6);
  gtk_text_view_set_bottom_margin (self->chat_view, 6);
  gtk_text_buffer_create_tag (self->chat, "question", "weight", PANGO_WEIGHT_BOLD, "pixels-above-lines", 10,
                              NULL);
  gtk_text_buffer_create_tag (self->chat, "note", "style", PANGO_STYLE_ITALIC, NULL);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (chat_scroller), GTK_WIDGET (self->chat_view));
  gtk_widget_set_vexpand (chat_scroller, TRUE);
  gtk_widget_add_css_class (chat_scroller, "card");
  gtk_box_append (GTK_BOX (chat_page), chat_scroller);
  /* Questions are typed in the window's prompt bar; here the conversation can start again. */
  hint = gtk_label_new (_("Ask in the prompt bar below."));
  gtk_widget_add_css_class (hint, "dim-label");
  gtk_widget_set_hexpand (hint, TRUE);
  gtk_label_set_xalign (GTK_LABEL (hint), 0);
  gtk_button_set_label (GTK_BUTTON (new_chat), _("_New Chat"));
  gtk_button_set_use_underline (GTK_BUTTON (new_chat), TRUE);
  gtk_box_append (GTK_BOX (ask), hint);
  gtk_box_append (GTK_BOX (ask), new_chat);
  gtk_box_append (GTK_BOX (chat_page), ask);
  gtk_stack_add_titled (self->side_stack, chat_page, "chat", _("Chat"));
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->side_stack));

  /* The progress bar and Stop share a row, both always there (see update_state). */
  self->progress = GTK_PROGRESS_BAR (gtk_progress_bar_new ());
  gtk_widget_set_hexpand (GTK_WIDGET (self->progress), TRUE);
  gtk_widget_set_valign (GTK_WIDGET (self->progress), GTK_ALIGN_CENTER);
  self->stop_button = button (_("S_top"), "write.stop", _("Stop generating (Escape)"));
  gtk_widget_add_css_class (self->stop_button, "destructive-action");
  gtk_box_append (GTK_BOX (running), GTK_WIDGET (self->progress));
  gtk_box_append (GTK_BOX (running), self->stop_button);
  gtk_box_append (GTK_BOX (box), running);
  self->status_label = GTK_LABEL (gtk_label_new (""));
  gtk_label_set_wrap (self->status_label, TRUE);
  gtk_label_set_xalign (self->status_label, 0);
  gtk_widget_add_css_class (GTK_WIDGET (self->status_label), "dim-label");
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->status_label));

  self->accept_button = button (_("_Accept"), "write.accept", _("Apply the proposal (Alt+Return)"));
  gtk_widget_add_css_class (self->accept_button, "suggested-action");
  self->discard_button = button (_("_Discard"), "write.discard", NULL);
  self->regenerate_button = button (_("Re_generate"), "write.regenerate", NULL);
  gtk_box_append (GTK_BOX (decide), self->accept_button);
  gtk_box_append (GTK_BOX (decide), self->discard_button);
  gtk_box_append (GTK_BOX (decide), self->regenerate_button);
  gtk_box_set_homogeneous (GTK_BOX (decide), TRUE);
  gtk_box_append (GTK_BOX (box), decide);
  return box;
}

static GtkWidget *
build_editor (AtelierWritePage *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  GtkWidget *bar = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *scroller = gtk_scrolled_window_new ();
  GtkWidget *status = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
  GtkWidget *b;

  g_object_set (bar, "margin-start", 6, "margin-end", 6, "margin-top", 6, "margin-bottom", 6, NULL);
  b = button (NULL, "write.new", _("New document (Ctrl+N)"));
  gtk_button_set_icon_name (GTK_BUTTON (b), "document-new-symbolic");
  gtk_box_append (GTK_BOX (bar), b);
  b = button (NULL, "write.open", _("Open a text or Markdown file (Ctrl+O)"));
  gtk_button_set_icon_name (GTK_BUTTON (b), "document-open-symbolic");
  gtk_box_append (GTK_BOX (bar), b);
  b = button (NULL, "write.save", _("Save (Ctrl+S)"));
  gtk_button_set_icon_name (GTK_BUTTON (b), "document-save-symbolic");
  gtk_box_append (GTK_BOX (bar), b);
  b = button (NULL, "write.save-as", _("Save as (Ctrl+Shift+S)"));
  gtk_button_set_icon_name (GTK_BUTTON (b), "document-save-as-symbolic");
  gtk_box_append (GTK_BOX (bar), b);
  gtk_box_append (GTK_BOX (box), bar);

  self->editor = GTK_TEXT_VIEW (gtk_source_view_new ());
  self->buffer = gtk_text_view_get_buffer (self->editor);
  gtk_source_buffer_set_highlight_matching_brackets (GTK_SOURCE_BUFFER (self->buffer), FALSE);
  update_language (self);
  update_scheme (self);
  gtk_text_view_set_wrap_mode (self->editor, GTK_WRAP_WORD_CHAR);
  gtk_text_view_set_left_margin (self->editor, 24);
  gtk_text_view_set_right_margin (self->editor, 24);
  gtk_text_view_set_top_margin (self->editor, 18);
  gtk_text_view_set_bottom_margin (self->editor, 18);
  gtk_text_view_set_pixels_below_lines (self->editor, 4);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroller), GTK_WIDGET (self->editor));
  gtk_widget_set_vexpand (scroller, TRUE);
  gtk_widget_set_hexpand (scroller, TRUE);
  gtk_box_append (GTK_BOX (box), scroller);

  self->file_label = GTK_LABEL (gtk_label_new (NULL));
  self->count_label = GTK_LABEL (gtk_label_new (NULL));
  gtk_widget_set_hexpand (GTK_WIDGET (self->file_label), TRUE);
  gtk_label_set_xalign (self->file_label, 0);
  gtk_label_set_ellipsize (self->file_label, PANGO_ELLIPSIZE_MIDDLE);
  gtk_widget_add_css_class (GTK_WIDGET (self->count_label), "dim-label");
  g_object_set (status, "margin-start", 12, "margin-end", 12, "margin-top", 4, "margin-bottom", 4, NULL);
  gtk_box_append (GTK_BOX (status), GTK_WIDGET (self->file_label));
  gtk_box_append (GTK_BOX (status), GTK_WIDGET (self->count_label));
  gtk_box_append (GTK_BOX (box), status);
  return box;
}

static void
atelier_write_page_dispose (GObject *object)
{
  AtelierWritePage *self = ATELIER_WRITE_PAGE (object);

  g_cancellable_cancel (self->cancellable);
  g_cancellable_cancel (self->scan);
  push_cancel (self); /* a job not started yet never starts */
  if (self->job != NULL)
    atelier_job_cancel (self->job);
  g_clear_object (&self->job);
  g_clear_handle_id (&self->count_idle, g_source_remove);
  g_clear_handle_id (&self->autosave_timeout, g_source_remove);
  G_OBJECT_CLASS (atelier_write_page_parent_class)->dispose (object);
}

static void
atelier_write_page_finalize (GObject *object)
{
  AtelierWritePage *self = ATELIER_WRITE_PAGE (object);

  g_clear_object (&self->cancellable);
  g_clear_object (&self->scan);
  g_clear_object (&self->actions);
  g_clear_object (&self->file);
  g_clear_object (&self->model_names);
  g_clear_pointer (&self->model_paths, g_ptr_array_unref);
  g_clear_pointer (&self->request, atelier_write_request_free);
  g_clear_pointer (&self->result, atelier_write_result_free);
  g_clear_pointer (&self->conversation, json_array_unref);
  g_free (self->question);
  g_free (self->doc_recorded);
  G_OBJECT_CLASS (atelier_write_page_parent_class)->finalize (object);
}

static void
atelier_write_page_class_init (AtelierWritePageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = atelier_write_page_dispose;
  object_class->finalize = atelier_write_page_finalize;
  gtk_source_init ();
  signals[HISTORY_CHANGED] = g_signal_new ("history-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                           NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[TOAST] = g_signal_new ("toast", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                 G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
  signals[PROMPT] = g_signal_new ("prompt", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                  G_TYPE_NONE, 1, G_TYPE_STRING);
}

/* The Write mode's keys. Global scope: they work wherever the focus is in the window, but only
 * while the page is mapped (GTK skips an unmapped widget's shortcuts), so another mode can give
 * the same keys their own meaning. The application's accelerators would resolve write.* on the
 * window, which does not hold this page's actions. An action that is disabled (Stop with
 * nothing running) lets its key through to the focused widget. */
static void
add_shortcuts (AtelierWritePage *self)
{
  static const struct
  {
    const char *trigger, *action;
  } keys[] = {
    { "<Control>n", "write.new" },
    { "<Control>o", "write.open" },
    { "<Control>s", "write.save" },
    { "<Control><Shift>s", "write.save-as" },
    { "<Control>Return", "write.continue" },
    { "<Control><Shift>r", "write.rewrite" },
    { "<Alt>Return", "write.accept" },
    { "Escape", "write.stop" },
  };
  GtkEventController *controller = gtk_shortcut_controller_new ();

  gtk_shortcut_controller_set_scope (GTK_SHORTCUT_CONTROLLER (controller), GTK_SHORTCUT_SCOPE_GLOBAL);
  /* Before the focused widget: the editor would take Ctrl+Return as a new line. */
  gtk_event_controller_set_propagation_phase (controller, GTK_PHASE_CAPTURE);
  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    gtk_shortcut_controller_add_shortcut (GTK_SHORTCUT_CONTROLLER (controller),
                                          gtk_shortcut_new (gtk_shortcut_trigger_parse_string (keys[i].trigger),
                                                            gtk_named_action_new (keys[i].action)));
  gtk_widget_add_controller (GTK_WIDGET (self), controller);
}

static void
atelier_write_page_init (AtelierWritePage *self)
{
  static const GActionEntry entries[] = {
    { "new", new_action },
    { "open", open_action },
    { "save", save_action },
    { "save-as", save_as_action },
    { "continue", continue_action },
    { "rewrite", rewrite_action },
    { "summarize", summarize_action },
    { "brainstorm", brainstorm_action },
    { "new-chat", new_chat_action },
    { "accept", accept_action },
    { "discard", discard_action },
    { "regenerate", regenerate_action },
    { "stop", stop_action },
  };
  GtkWidget *paned = gtk_paned_new (GTK_ORIENTATION_HORIZONTAL);
  GtkTextIter start;

  self->cancellable = g_cancellable_new ();
  self->conversation = json_array_new ();
  self->model_paths = g_ptr_array_new_with_free_func (g_free);
  self->actions = g_simple_action_group_new ();
  g_action_map_add_action_entries (G_ACTION_MAP (self->actions), entries, G_N_ELEMENTS (entries), self);
  gtk_widget_insert_action_group (GTK_WIDGET (self), "write", G_ACTION_GROUP (self->actions));
  add_shortcuts (self);

  gtk_paned_set_start_child (GTK_PANED (paned), build_editor (self));
  gtk_paned_set_end_child (GTK_PANED (paned), build_sidebar (self));
  gtk_paned_set_resize_end_child (GTK_PANED (paned), FALSE);
  gtk_paned_set_shrink_end_child (GTK_PANED (paned), FALSE);
  gtk_widget_set_hexpand (paned, TRUE);
  gtk_box_append (GTK_BOX (self), paned);

  gtk_text_buffer_get_start_iter (self->buffer, &start);
  self->range_start = gtk_text_buffer_create_mark (self->buffer, NULL, &start, TRUE);
  self->range_end = gtk_text_buffer_create_mark (self->buffer, NULL, &start, FALSE);
  g_signal_connect (self->buffer, "changed", G_CALLBACK (buffer_changed_cb), self);
  g_signal_connect_swapped (self->buffer, "modified-changed", G_CALLBACK (update_title), self);
  g_signal_connect_object (adw_style_manager_get_default (), "notify::dark", G_CALLBACK (dark_changed_cb), self, 0);
  update_title (self);
  count_idle_cb (self);
  update_state (self);
}
