/* atelier-models-dialog.c: the model manager (atelier-models-dialog.h).
 *
 * Every blocking step runs in a GTask: the search (the user's list read from the store, then
 * atelier_discovery_scan, which opens every file's headers), an import (opens and hashes the
 * file) and a removal (a store write). A task holds only a weak reference on the dialog, so
 * closing the window frees it at once (and cancels what runs); a callback that finds the
 * dialog gone drops the result. The worker gets all it needs in its Job, never the dialog.
 * A new search cancels the one under way; a cancelled search's result is dropped.
 *
 * The rows are rebuilt after each search. AdwPreferencesGroup (1.2) has no way to list or
 * clear its rows, so the rows added are kept in `rows` to be removed again.
 */
#include "config.h"

#include "atelier-models-dialog.h"

#include <glib/gi18n.h>
#include <string.h>

#include "atelier-discovery.h"

struct _AtelierModelsDialog
{
  AdwWindow parent_instance;

  AdwToastOverlay *toast_overlay;
  GtkButton *import_button;
  GtkButton *rescan_button;
  GtkSpinner *spinner;
  GtkLabel *empty_label;
  AdwPreferencesGroup *llm_group;
  AdwPreferencesGroup *image_group;
  AdwPreferencesGroup *style_group;
  AdwPreferencesGroup *other_group;

  AtelierStore *store;  /* NULL while the history opens */
  char **folders;
  GCancellable *scan_cancellable;  /* the search under way, or NULL */
  GCancellable *cancellable;       /* imports and removals; cancelled at dispose */
  guint pending;                   /* imports and removals under way */
  GPtrArray *rows;                 /* (row, group) pairs added by the last search */
  GtkNativeDialog *chooser;        /* the open file chooser, or NULL */
};

G_DEFINE_FINAL_TYPE (AtelierModelsDialog, atelier_models_dialog, ADW_TYPE_WINDOW)

enum
{
  PROP_0,
  PROP_BUSY,
  N_PROPS,
};

static GParamSpec *props[N_PROPS];

enum
{
  SIGNAL_MODEL_CHOSEN,
  N_SIGNALS,
};

static guint signals[N_SIGNALS];

/* Errors jump the queue: one toast shows at a time, and a failed import must not wait behind
 * "Added …" of the file imported just before. */
static void
toast_full (AtelierModelsDialog *self, const char *text, gboolean error)
{
  /* The title is Pango markup, and paths hold '&' and '<' often enough. */
  g_autofree char *escaped = g_markup_escape_text (text, -1);
  AdwToast *t = adw_toast_new (escaped);

  adw_toast_set_timeout (t, 8);
  if (error)
    adw_toast_set_priority (t, ADW_TOAST_PRIORITY_HIGH);
  adw_toast_overlay_add_toast (self->toast_overlay, t);
}

static void
toast (AtelierModelsDialog *self, const char *text)
{
  toast_full (self, text, FALSE);
}

static void
toast_error (AtelierModelsDialog *self, const char *text)
{
  toast_full (self, text, TRUE);
}

static void
update_busy (AtelierModelsDialog *self)
{
  gboolean scanning = self->scan_cancellable != NULL;

  gtk_spinner_set_spinning (self->spinner, scanning || self->pending > 0);
  gtk_widget_set_visible (GTK_WIDGET (self->spinner), scanning || self->pending > 0);
  gtk_widget_set_sensitive (GTK_WIDGET (self->rescan_button), !scanning);
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_BUSY]);
}

gboolean
atelier_models_dialog_get_busy (AtelierModelsDialog *self)
{
  g_return_val_if_fail (ATELIER_IS_MODELS_DIALOG (self), FALSE);
  return self->scan_cancellable != NULL || self->pending > 0;
}

/* What a task's worker needs, copied from the dialog, and the way back to it. */
typedef struct
{
  GWeakRef dialog;
  AtelierStore *store;  /* may be NULL for a search */
  char *path;           /* import, remove */
  char **folders;       /* search */
} Job;

static void
job_free (Job *job)
{
  g_weak_ref_clear (&job->dialog);
  g_clear_pointer (&job->store, atelier_store_unref);
  g_free (job->path);
  g_strfreev (job->folders);
  g_free (job);
}

static GTask *
job_task (AtelierModelsDialog *self, GCancellable *cancellable, GAsyncReadyCallback callback, char *path)
{
  GTask *task = g_task_new (NULL, cancellable, callback, NULL);
  Job *job = g_new0 (Job, 1);

  g_weak_ref_init (&job->dialog, self);
  job->store = self->store != NULL ? atelier_store_ref (self->store) : NULL;
  job->path = path;
  g_task_set_task_data (task, job, (GDestroyNotify) job_free);
  return task;
}

/* The dialog the task belongs to, or NULL when it is gone. */
static AtelierModelsDialog *
job_dialog (GAsyncResult *result)
{
  Job *job = g_task_get_task_data (G_TASK (result));

  return g_weak_ref_get (&job->dialog);
}

/* ---- rows ---- */

static const char *
source_label (AtelierModelSource source)
{
  switch (source)
    {
    case ATELIER_MODEL_SOURCE_USER:
      return _("your list");
    case ATELIER_MODEL_SOURCE_FOLDER:
      return _("folder");
    case ATELIER_MODEL_SOURCE_HUGGING_FACE:
      return _("Hugging Face");
    case ATELIER_MODEL_SOURCE_LM_STUDIO:
      return _("LM Studio");
    case ATELIER_MODEL_SOURCE_OLLAMA:
      return _("Ollama");
    default:
      return "";
    }
}

static AdwPreferencesGroup *
group_for (AtelierModelsDialog *self, const AtelierFoundModel *m)
{
  if (m->error != NULL || !m->supported)
    return self->other_group;
  switch (m->kind)
    {
    case AT_MODEL_KIND_LLM:
      return self->llm_group;
    case AT_MODEL_KIND_SD:
    case AT_MODEL_KIND_SD_UNET:
    case AT_MODEL_KIND_VAE:
      return self->image_group;
    case AT_MODEL_KIND_STYLE:
      return self->style_group;
    case AT_MODEL_KIND_UNKNOWN:
    default:
      return self->other_group;
    }
}

/* "llama · Q8_0 · 424 bytes · Hugging Face"; an unusable model says why instead. */
static char *
details (const AtelierFoundModel *m)
{
  g_autoptr (GPtrArray) parts = g_ptr_array_new_with_free_func (g_free);

  if (m->error != NULL)
    g_ptr_array_add (parts, g_strdup (m->error));
  else
    {
      if (m->family != NULL)
        g_ptr_array_add (parts, g_strdup (m->family));
      else if (m->architecture != NULL)
        g_ptr_array_add (parts, g_strdup (m->architecture));
      if (m->quant != NULL)
        g_ptr_array_add (parts, g_strdup (m->quant));
      g_ptr_array_add (parts, g_format_size (m->size));
      if (!m->supported)
        g_ptr_array_add (parts, g_strdup (_("not supported")));
    }
  g_ptr_array_add (parts, g_strdup (source_label (m->source)));
  g_ptr_array_add (parts, NULL);
  return g_strjoinv (" · ", (char **) parts->pdata);
}

static void
use_clicked (GtkButton *button, AtelierModelsDialog *self)
{
  const char *path = g_object_get_data (G_OBJECT (button), "atelier-path");

  g_signal_emit (self, signals[SIGNAL_MODEL_CHOSEN], 0, path);
}

static void
remove_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (AtelierModelsDialog) self = job_dialog (result);
  g_autoptr (GError) error = NULL;
  const char *path = ((Job *) g_task_get_task_data (G_TASK (result)))->path;
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *text = NULL;
  gboolean ok = g_task_propagate_boolean (G_TASK (result), &error);

  if (self == NULL)
    return;
  self->pending--;
  if (!ok)
    {
      text = g_strdup_printf (_("Could not remove %s from your list: %s"), path, error->message);
      toast_error (self, text);
      update_busy (self);
      return;
    }
  text = g_strdup_printf (_("Removed %s from your list; the file is still on disk"), base);
  toast (self, text);
  atelier_models_dialog_rescan (self);
}

static void
remove_worker (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  Job *job = task_data;
  GError *error = NULL;

  /* By path: the list's ids are not kept, and a path is on the list at most once. The file
   * itself is never touched. */
  if (!atelier_store_remove_user_model (job->store, 0, job->path, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
remove_clicked (GtkButton *button, AtelierModelsDialog *self)
{
  const char *path = g_object_get_data (G_OBJECT (button), "atelier-path");
  g_autoptr (GTask) task = job_task (self, self->cancellable, remove_done, g_strdup (path));

  /* Twice-clicked: the row goes on the next search. */
  gtk_widget_set_sensitive (GTK_WIDGET (button), FALSE);
  self->pending++;
  update_busy (self);
  g_task_run_in_thread (task, remove_worker);
}

static GtkWidget *
row_button (const char *path, const char *label, const char *icon, const char *tooltip, const char *name)
{
  GtkWidget *button = label != NULL ? gtk_button_new_with_label (label) : gtk_button_new_from_icon_name (icon);

  gtk_widget_set_valign (button, GTK_ALIGN_CENTER);
  gtk_widget_set_tooltip_text (button, tooltip);
  /* Names the tests (and the CSS) find the buttons by. */
  gtk_widget_set_name (button, name);
  if (icon != NULL)
    gtk_widget_add_css_class (button, "flat");
  g_object_set_data_full (G_OBJECT (button), "atelier-path", g_strdup (path), g_free);
  return button;
}

static void
add_row (AtelierModelsDialog *self, const AtelierFoundModel *m)
{
  AdwPreferencesGroup *group = group_for (self, m);
  AdwActionRow *row = ADW_ACTION_ROW (adw_action_row_new ());
  g_autofree char *title = g_markup_escape_text (m->name, -1);
  g_autofree char *subtitle_text = details (m);
  g_autofree char *subtitle = g_markup_escape_text (subtitle_text, -1);

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  adw_action_row_set_subtitle (row, subtitle);
  adw_action_row_set_subtitle_lines (row, 3);
  gtk_widget_set_tooltip_text (GTK_WIDGET (row), m->path);
  if (m->error != NULL)
    {
      GtkWidget *icon = gtk_image_new_from_icon_name ("dialog-warning-symbolic");

      gtk_widget_set_tooltip_text (icon, _("This model cannot be used"));
      adw_action_row_add_prefix (row, icon);
      gtk_widget_add_css_class (GTK_WIDGET (row), "error");
    }
  if (m->error == NULL && m->supported && m->kind == AT_MODEL_KIND_LLM)
    {
      GtkWidget *use = row_button (m->path, _("Use"), NULL, _("Write with this model"), "use-button");

      g_signal_connect (use, "clicked", G_CALLBACK (use_clicked), self);
      adw_action_row_add_suffix (row, use);
    }
  if (m->source == ATELIER_MODEL_SOURCE_USER && self->store != NULL)
    {
      GtkWidget *remove = row_button (m->path, NULL, "list-remove-symbolic",
                                      _("Remove from your list (the file stays on disk)"), "remove-button");

      g_signal_connect (remove, "clicked", G_CALLBACK (remove_clicked), self);
      adw_action_row_add_suffix (row, remove);
    }
  adw_preferences_group_add (group, GTK_WIDGET (row));
  gtk_widget_set_visible (GTK_WIDGET (group), TRUE);
  g_ptr_array_add (self->rows, row);
  g_ptr_array_add (self->rows, group);
}

static void
clear_rows (AtelierModelsDialog *self)
{
  for (guint i = 0; i + 1 < self->rows->len; i += 2)
    adw_preferences_group_remove (self->rows->pdata[i + 1], self->rows->pdata[i]);
  g_ptr_array_set_size (self->rows, 0);
  gtk_widget_set_visible (GTK_WIDGET (self->llm_group), FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->image_group), FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->style_group), FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->other_group), FALSE);
}

/* ---- searching ---- */

typedef struct
{
  GPtrArray *found;
  char *user_list_error;  /* the user's list could not be read; the rest was still searched */
} ScanResult;

static void
scan_result_free (ScanResult *result)
{
  g_clear_pointer (&result->found, g_ptr_array_unref);
  g_free (result->user_list_error);
  g_free (result);
}

static void
scan_worker (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  Job *data = task_data;
  g_autoptr (GPtrArray) users = NULL;
  g_autoptr (GPtrArray) paths = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  AtelierDiscoveryOptions options = { 0 };
  ScanResult *result = g_new0 (ScanResult, 1);

  if (data->store != NULL)
    {
      users = atelier_store_list_user_models (data->store, &error);
      if (users == NULL)
        result->user_list_error = g_strdup (error->message);
      g_clear_error (&error);
    }
  for (guint i = 0; users != NULL && i < users->len; i++)
    g_ptr_array_add (paths, ((AtelierUserModel *) g_ptr_array_index (users, i))->path);
  g_ptr_array_add (paths, NULL);
  options.user_paths = (const char *const *) paths->pdata;
  options.folders = (const char *const *) data->folders;
  result->found = atelier_discovery_scan (&options, cancellable, &error);
  if (result->found == NULL)
    {
      scan_result_free (result);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_task_return_pointer (task, result, (GDestroyNotify) scan_result_free);
}

static void
scan_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (AtelierModelsDialog) self = job_dialog (res);
  GCancellable *cancellable = g_task_get_cancellable (G_TASK (res));
  g_autoptr (GError) error = NULL;
  ScanResult *result = g_task_propagate_pointer (G_TASK (res), &error);

  /* The window is gone, or a newer search replaced this one. */
  if (self == NULL || g_cancellable_is_cancelled (cancellable))
    {
      g_clear_pointer (&result, scan_result_free);
      return;
    }
  g_clear_object (&self->scan_cancellable);
  update_busy (self);
  if (result == NULL)
    {
      g_autofree char *text = g_strdup_printf (_("Could not search for models: %s"), error->message);

      toast_error (self, text);
      return;
    }
  clear_rows (self);
  if (result->user_list_error != NULL)
    {
      g_autofree char *text = g_strdup_printf (_("Your list of models cannot be read: %s"), result->user_list_error);

      toast_error (self, text);
    }
  for (guint i = 0; i < result->found->len; i++)
    add_row (self, g_ptr_array_index (result->found, i));
  gtk_widget_set_visible (GTK_WIDGET (self->empty_label), result->found->len == 0);
  scan_result_free (result);
}

void
atelier_models_dialog_rescan (AtelierModelsDialog *self)
{
  g_autoptr (GTask) task = NULL;

  g_return_if_fail (ATELIER_IS_MODELS_DIALOG (self));
  if (self->scan_cancellable != NULL)
    g_cancellable_cancel (self->scan_cancellable);
  g_clear_object (&self->scan_cancellable);
  self->scan_cancellable = g_cancellable_new ();
  task = job_task (self, self->scan_cancellable, scan_done, NULL);
  ((Job *) g_task_get_task_data (task))->folders = g_strdupv (self->folders);
  update_busy (self);
  g_task_run_in_thread (task, scan_worker);
}

/* ---- importing ---- */

static void
import_worker (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  Job *job = task_data;
  GError *error = NULL;

  if (atelier_discovery_add_user_model (job->store, job->path, NULL, &error) == 0)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
import_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (AtelierModelsDialog) self = job_dialog (result);
  const char *path = ((Job *) g_task_get_task_data (G_TASK (result)))->path;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *base = g_path_get_basename (path);
  gboolean ok = g_task_propagate_boolean (G_TASK (result), &error);

  if (self == NULL)
    return;
  self->pending--;
  if (!ok)
    {
      const char *why = error->message;
      gsize n = strlen (path);

      /* The message starts with the whole path (atelier_discovery_add_user_model), too long
       * for a toast: the file's name says which one. */
      if (strncmp (why, path, n) == 0 && why[n] == ':' && why[n + 1] == ' ')
        why += n + 2;
      text = g_strdup_printf (_("Could not import %s: %s"), base, why);
      toast_error (self, text);
      update_busy (self);
      return;
    }
  text = g_strdup_printf (_("Added %s to your list"), base);
  toast (self, text);
  /* Searching before "busy" is notified: a watcher never sees it drop between the two. */
  atelier_models_dialog_rescan (self);
}

void
atelier_models_dialog_import (AtelierModelsDialog *self, GFile *file)
{
  g_autoptr (GTask) task = NULL;
  g_autofree char *path = NULL;

  g_return_if_fail (ATELIER_IS_MODELS_DIALOG (self));
  g_return_if_fail (G_IS_FILE (file));
  if (self->store == NULL)
    {
      toast_error (self, _("The history is still opening; import the model again in a moment"));
      return;
    }
  path = g_file_get_path (file);
  if (path == NULL)
    {
      g_autofree char *uri = g_file_get_uri (file);
      g_autofree char *text = g_strdup_printf (_("Could not import %s: only files on this computer can be used"),
                                               uri);

      toast_error (self, text);
      return;
    }
  task = job_task (self, self->cancellable, import_done, g_canonicalize_filename (path, NULL));
  self->pending++;
  update_busy (self);
  g_task_run_in_thread (task, import_worker);
}

static void
chooser_response (GtkNativeDialog *chooser, int response, AtelierModelsDialog *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr (GListModel) files = gtk_file_chooser_get_files (GTK_FILE_CHOOSER (chooser));

      for (guint i = 0; i < g_list_model_get_n_items (files); i++)
        {
          g_autoptr (GFile) file = g_list_model_get_item (files, i);

          atelier_models_dialog_import (self, file);
        }
    }
  if (self->chooser == chooser)
    g_clear_object (&self->chooser);
}

static void
import_clicked (AtelierModelsDialog *self)
{
  GtkFileChooserNative *chooser;
  g_autoptr (GtkFileFilter) models = gtk_file_filter_new ();
  g_autoptr (GtkFileFilter) all = gtk_file_filter_new ();

  if (self->chooser != NULL)
    {
      gtk_native_dialog_show (self->chooser);
      return;
    }
  /* GtkFileDialog is GTK 4.10; Debian 12 has 4.8. */
  chooser = gtk_file_chooser_native_new (_("Import Models"), GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_OPEN,
                                         _("_Import"), _("_Cancel"));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), TRUE);
  gtk_file_chooser_set_select_multiple (GTK_FILE_CHOOSER (chooser), TRUE);
  gtk_file_filter_set_name (models, _("Model Files"));
  gtk_file_filter_add_suffix (models, "gguf");
  gtk_file_filter_add_suffix (models, "safetensors");
  gtk_file_filter_add_suffix (models, "ckpt");
  gtk_file_filter_add_suffix (models, "pt");
  gtk_file_filter_add_suffix (models, "pth");
  gtk_file_filter_add_suffix (models, "bin");
  gtk_file_filter_set_name (all, _("All Files"));
  gtk_file_filter_add_pattern (all, "*");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), models);
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), all);
  g_signal_connect (chooser, "response", G_CALLBACK (chooser_response), self);
  self->chooser = GTK_NATIVE_DIALOG (chooser);
  gtk_native_dialog_show (self->chooser);
}

static gboolean
on_drop (GtkDropTarget *target, const GValue *value, double x, double y, AtelierModelsDialog *self)
{
  GSList *files;

  if (!G_VALUE_HOLDS (value, GDK_TYPE_FILE_LIST))
    return FALSE;
  files = g_value_get_boxed (value);
  for (GSList *l = files; l != NULL; l = l->next)
    atelier_models_dialog_import (self, l->data);
  return files != NULL;
}

/* ---- the object ---- */

static void
atelier_models_dialog_dispose (GObject *object)
{
  AtelierModelsDialog *self = ATELIER_MODELS_DIALOG (object);

  if (self->scan_cancellable != NULL)
    g_cancellable_cancel (self->scan_cancellable);
  g_clear_object (&self->scan_cancellable);
  g_cancellable_cancel (self->cancellable);
  if (self->chooser != NULL)
    gtk_native_dialog_destroy (self->chooser);
  g_clear_object (&self->chooser);
  gtk_widget_dispose_template (GTK_WIDGET (self), ATELIER_TYPE_MODELS_DIALOG);
  G_OBJECT_CLASS (atelier_models_dialog_parent_class)->dispose (object);
}

static void
atelier_models_dialog_finalize (GObject *object)
{
  AtelierModelsDialog *self = ATELIER_MODELS_DIALOG (object);

  g_clear_pointer (&self->store, atelier_store_unref);
  g_strfreev (self->folders);
  g_clear_object (&self->cancellable);
  g_ptr_array_unref (self->rows);
  G_OBJECT_CLASS (atelier_models_dialog_parent_class)->finalize (object);
}

static void
atelier_models_dialog_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  AtelierModelsDialog *self = ATELIER_MODELS_DIALOG (object);

  switch (prop_id)
    {
    case PROP_BUSY:
      g_value_set_boolean (value, atelier_models_dialog_get_busy (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
atelier_models_dialog_class_init (AtelierModelsDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = atelier_models_dialog_dispose;
  object_class->finalize = atelier_models_dialog_finalize;
  object_class->get_property = atelier_models_dialog_get_property;

  props[PROP_BUSY] = g_param_spec_boolean ("busy", NULL, NULL, FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);

  signals[SIGNAL_MODEL_CHOSEN] = g_signal_new ("model-chosen", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                               NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);

  gtk_widget_class_set_template_from_resource (widget_class, "/org/atelier/Atelier/atelier-models-dialog.ui");
  gtk_widget_class_bind_template_child (widget_class, AtelierModelsDialog, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, AtelierModelsDialog, import_button);
  gtk_widget_class_bind_template_child (widget_class, AtelierModelsDialog, rescan_button);
  gtk_widget_class_bind_template_child (widget_class, AtelierModelsDialog, spinner);
  gtk_widget_class_bind_template_child (widget_class, AtelierModelsDialog, empty_label);
  gtk_widget_class_bind_template_child (widget_class, AtelierModelsDialog, llm_group);
  gtk_widget_class_bind_template_child (widget_class, AtelierModelsDialog, image_group);
  gtk_widget_class_bind_template_child (widget_class, AtelierModelsDialog, style_group);
  gtk_widget_class_bind_template_child (widget_class, AtelierModelsDialog, other_group);
}

static void
atelier_models_dialog_init (AtelierModelsDialog *self)
{
  GtkDropTarget *drop;

  gtk_widget_init_template (GTK_WIDGET (self));
  self->cancellable = g_cancellable_new ();
  self->rows = g_ptr_array_new ();
  /* Here, not in the .ui: a line there would be far too long. */
  gtk_label_set_label (self->empty_label, _("No models found. Import a GGUF, safetensors or .ckpt file, drop one "
                                            "here, or add a folder to search in Preferences."));
  g_signal_connect_swapped (self->import_button, "clicked", G_CALLBACK (import_clicked), self);
  g_signal_connect_swapped (self->rescan_button, "clicked", G_CALLBACK (atelier_models_dialog_rescan), self);
  drop = gtk_drop_target_new (GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
  g_signal_connect (drop, "drop", G_CALLBACK (on_drop), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drop));
}

AtelierModelsDialog *
atelier_models_dialog_new (GtkWindow *parent, AtelierStore *store, const char *const *extra_folders)
{
  AtelierModelsDialog *self = g_object_new (ATELIER_TYPE_MODELS_DIALOG, "transient-for", parent, NULL);

  self->store = store != NULL ? atelier_store_ref (store) : NULL;
  self->folders = g_strdupv ((char **) extra_folders);
  atelier_models_dialog_rescan (self);
  return self;
}
