/* atelier-window.c: the main window. It wires the shared pieces together: the modes, the
 * history sidebar (which reopens an item in its mode), the job indicator bound to the
 * application's queue, the model manager, and the banner for a history that could not be
 * opened. The Vulkan device is looked up off the main thread (creating one can take a moment). */
#include "config.h"

#include "atelier-window.h"

#include <glib/gi18n.h>

#include "at-engine.h"
#include "atelier-history-panel.h"
#include "atelier-models-dialog.h"
#include "atelier-settings.h"
#include "atelier-write-page.h"

struct _AtelierWindow
{
  AdwApplicationWindow parent_instance;

  AdwToastOverlay *toasts;
  GtkLabel *device_label;
  GtkPaned *split;
  AdwViewStack *modes;
  AtelierHistoryPanel *history;
  AtelierWritePage *write_page;
  GtkMenuButton *jobs_button;
  GtkListBox *jobs_list;
  GtkRevealer *banner;
  GtkLabel *banner_label;
  GtkButton *banner_button;
  GtkEntry *prompt_entry;
  GtkButton *prompt_button;
  GHashTable *prompts;  /* mode name -> the prompt bar's text while another mode is shown */
  char *prompt_mode;    /* the mode the prompt bar's text belongs to */
  char *device_problem; /* the banner's text while there is no device; NULL: one was found */
  gboolean closing;     /* the unsaved-changes question was answered: close now */

  GCancellable *cancellable;
  gulong store_handler;
};

G_DEFINE_FINAL_TYPE (AtelierWindow, atelier_window, ADW_TYPE_APPLICATION_WINDOW)

static AtelierApplication *
app_of (AtelierWindow *self)
{
  return ATELIER_APPLICATION (gtk_window_get_application (GTK_WINDOW (self)));
}

void
atelier_window_toast (AtelierWindow *self, const char *message, const char *label, const char *action)
{
  /* libadwaita 1.2 reads a toast's title as markup: a file named "Tom & Jerry.gguf" must not
   * break it. */
  g_autofree char *escaped = g_markup_escape_text (message, -1);
  AdwToast *toast = adw_toast_new (escaped);

  adw_toast_set_timeout (toast, 8);
  if (label != NULL && action != NULL)
    {
      adw_toast_set_button_label (toast, label);
      adw_toast_set_action_name (toast, action);
    }
  adw_toast_overlay_add_toast (self->toasts, toast);
}

static void
show_banner (AtelierWindow *self, const char *text, gboolean offer_reset)
{
  gtk_label_set_text (self->banner_label, text);
  gtk_widget_set_visible (GTK_WIDGET (self->banner_button), offer_reset);
  gtk_revealer_set_reveal_child (self->banner, text != NULL);
}

/* -- the device -- */

static void
device_worker (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  GError *error = NULL;
  AtDevice *dev = at_device_get_default (&error);

  if (dev == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_strdup_printf ("%s (%s)", at_device_get_name (dev),
                                                  at_device_type_name (at_device_get_info (dev)->type)),
                           g_free);
}

static void
device_ready_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AtelierWindow *self = ATELIER_WINDOW (source);
  g_autoptr (GError) error = NULL;
  g_autofree char *name = g_task_propagate_pointer (G_TASK (result), &error);
  g_autofree char *text = NULL;

  if (name != NULL)
    {
      gtk_label_set_text (self->device_label, name);
      return;
    }
  gtk_label_set_text (self->device_label, _("None"));
  text = g_strdup_printf (_("No Vulkan device: %s. Install your GPU's Vulkan driver, or Mesa's lavapipe "
                            "(mesa-vulkan-drivers) to run on the processor."),
                          error->message);
  g_free (self->device_problem);
  self->device_problem = g_strdup (text);
  show_banner (self, text, FALSE);
}

/* -- the history -- */

static void
store_changed (AtelierWindow *self)
{
  AtelierApplication *app = app_of (self);
  AtelierStore *store = atelier_application_get_store (app);
  const GError *error = atelier_application_get_store_error (app);

  atelier_history_panel_set_store (self->history, store);
  /* The history open: the banner goes back to the device's problem, if there is one. */
  if (store != NULL)
    show_banner (self, self->device_problem, FALSE);
  else if (error != NULL)
    {
      g_autofree char *text = g_strdup_printf (_("Your history could not be opened: %s. Atelier works without it, "
                                                 "but keeps nothing you make."),
                                               error->message);
      /* A damaged file can be moved aside (never overwritten); other errors (permissions, a
       * newer version) are the user's to fix. */
      show_banner (self, text, g_error_matches (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_CORRUPT));
    }
}

static void
store_notify_cb (GObject *app, GParamSpec *pspec, gpointer user_data)
{
  store_changed (ATELIER_WINDOW (user_data));
}

static void
open_item_then (AtelierWritePage *page, gpointer item)
{
  atelier_write_page_open_item (page, item);
}

static void
open_file_then (AtelierWritePage *page, gpointer file)
{
  atelier_write_page_open_file (page, file);
}

static void
item_ready_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (AtelierWindow) self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierItem) item = atelier_store_get_finish ((AtelierStore *) source, result, &error);

  if (item == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        atelier_window_toast (self, error->message, NULL, NULL);
      return;
    }
  if (item->kind != ATELIER_ITEM_TEXT)
    {
      atelier_window_toast (self, _("Images and melodies open in their modes, which arrive in a later version"), NULL,
                            NULL);
      return;
    }
  adw_view_stack_set_visible_child_name (self->modes, "write");
  atelier_write_page_confirm_unsaved (self->write_page, open_item_then, g_steal_pointer (&item),
                                      (GDestroyNotify) atelier_item_free);
}

static void
item_activated_cb (AtelierHistoryPanel *panel, gint64 id, gpointer user_data)
{
  AtelierWindow *self = user_data;
  AtelierStore *store = atelier_application_get_store (app_of (self));

  if (store != NULL)
    atelier_store_get_async (store, id, self->cancellable, item_ready_cb, g_object_ref (self));
}

static void
history_changed_cb (AtelierWritePage *page, gpointer user_data)
{
  atelier_history_panel_refresh (ATELIER_WINDOW (user_data)->history);
}

static void
page_toast_cb (AtelierWritePage *page, const char *message, const char *label, const char *action,
               gpointer user_data)
{
  atelier_window_toast (ATELIER_WINDOW (user_data), message, label, action);
}

/* -- the prompt bar -- */

/* What the prompt bar asks in each mode; Image and Music say what they will take. */
static void
prompt_bar_for_mode (AtelierWindow *self)
{
  const char *mode = adw_view_stack_get_visible_child_name (self->modes);
  gboolean write = g_strcmp0 (mode, "write") == 0;
  const char *text;

  if (mode == NULL)
    return;
  /* Each mode keeps its own prompt while another is shown. */
  if (self->prompt_mode != NULL)
    g_hash_table_replace (self->prompts, g_strdup (self->prompt_mode),
                          g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->prompt_entry))));
  g_free (self->prompt_mode);
  self->prompt_mode = g_strdup (mode);
  text = g_hash_table_lookup (self->prompts, mode);
  gtk_editable_set_text (GTK_EDITABLE (self->prompt_entry), text != NULL ? text : "");

  if (write)
    gtk_entry_set_placeholder_text (self->prompt_entry, _("Ask the assistant about the document…"));
  else if (g_strcmp0 (mode, "image") == 0)
    gtk_entry_set_placeholder_text (self->prompt_entry, _("Describe an image (image generation arrives in a later version)"));
  else
    gtk_entry_set_placeholder_text (self->prompt_entry, _("Describe a melody (melodies arrive in a later version)"));
  gtk_button_set_label (self->prompt_button, write ? _("_Ask") : _("_Generate"));
  gtk_widget_set_sensitive (GTK_WIDGET (self->prompt_entry), write);
  gtk_widget_set_sensitive (GTK_WIDGET (self->prompt_button), write);
}

static void
mode_changed_cb (GObject *stack, GParamSpec *pspec, gpointer user_data)
{
  prompt_bar_for_mode (ATELIER_WINDOW (user_data));
}

/* Enter or the button: the shown mode takes the prompt; sent, it leaves the bar. */
static void
prompt_send_cb (AtelierWindow *self)
{
  const char *mode = adw_view_stack_get_visible_child_name (self->modes);

  if (g_strcmp0 (mode, "write") == 0
      && atelier_write_page_ask (self->write_page, gtk_editable_get_text (GTK_EDITABLE (self->prompt_entry))))
    gtk_editable_set_text (GTK_EDITABLE (self->prompt_entry), "");
}

/* A question reopened from the history comes back into the bar. */
static void
page_prompt_cb (AtelierWritePage *page, const char *text, gpointer user_data)
{
  AtelierWindow *self = user_data;

  gtk_editable_set_text (GTK_EDITABLE (self->prompt_entry), text);
  gtk_widget_grab_focus (GTK_WIDGET (self->prompt_entry));
}

/* -- the job queue -- */

static void
job_notify_cb (GObject *job, GParamSpec *pspec, gpointer user_data)
{
  GtkWidget *row = user_data;
  AtelierJob *j = ATELIER_JOB (job);
  double fraction = atelier_job_get_fraction (j);

  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), atelier_job_get_status (j) != NULL
                                                      ? atelier_job_get_status (j)
                                                      : atelier_job_get_state (j) == ATELIER_JOB_QUEUED
                                                          ? _("Waiting")
                                                          : "");
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (g_object_get_data (G_OBJECT (row), "progress")),
                                 fraction >= 0 ? fraction : 0);
}

static void
cancel_job_cb (GtkButton *button, gpointer user_data)
{
  atelier_job_cancel (ATELIER_JOB (user_data));
}

static GtkWidget *
job_row_new (gpointer item, gpointer user_data)
{
  AtelierJob *job = item;
  GtkWidget *row = adw_action_row_new ();
  GtkWidget *cancel = gtk_button_new_from_icon_name ("process-stop-symbolic");
  GtkWidget *progress = gtk_progress_bar_new ();

  /* Titles hold file names: plain text, not markup. */
  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), atelier_job_get_title (job));
  gtk_widget_set_tooltip_text (cancel, _("Cancel"));
  gtk_widget_set_valign (cancel, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (cancel, "flat");
  g_signal_connect_object (cancel, "clicked", G_CALLBACK (cancel_job_cb), job, 0);
  gtk_widget_set_valign (progress, GTK_ALIGN_CENTER);
  gtk_widget_set_size_request (progress, 60, -1);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), progress);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), cancel);
  g_object_set_data (G_OBJECT (row), "progress", progress);
  g_signal_connect_object (job, "notify", G_CALLBACK (job_notify_cb), row, 0);
  job_notify_cb (G_OBJECT (job), NULL, row);
  return row;
}

static void
jobs_changed_cb (GListModel *jobs, guint position, guint removed, guint added, gpointer user_data)
{
  AtelierWindow *self = user_data;
  gboolean busy = g_list_model_get_n_items (jobs) > 0;

  /* Shown or not, the button keeps its place: a job starting changes no layout (a header bar
   * laid out again is a whole frame's work for a software renderer). Its icon is still, not a
   * spinner: a spinner's animation made every frame of a job repaint from the header bar down
   * to the streaming proposal, the extents of both, and ticks came up to 38 ms late. */
  gtk_widget_set_opacity (GTK_WIDGET (self->jobs_button), busy ? 1.0 : 0.0);
  gtk_widget_set_can_target (GTK_WIDGET (self->jobs_button), busy);
  gtk_widget_set_sensitive (GTK_WIDGET (self->jobs_button), busy);
}

/* -- actions -- */

static void
toggle_sidebar_action (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  AtelierWindow *self = user_data;
  gboolean shown = !gtk_widget_get_visible (GTK_WIDGET (self->history));

  gtk_widget_set_visible (GTK_WIDGET (self->history), shown);
  g_simple_action_set_state (action, g_variant_new_boolean (shown));
}

static void
focus_prompt_action (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  AtelierWindow *self = user_data;

  gtk_widget_grab_focus (GTK_WIDGET (self->prompt_entry));
}

static void
search_history_action (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  AtelierWindow *self = user_data;

  gtk_widget_set_visible (GTK_WIDGET (self->history), TRUE);
  g_action_group_change_action_state (G_ACTION_GROUP (self), "toggle-sidebar", g_variant_new_boolean (TRUE));
  atelier_history_panel_focus_search (self->history);
}

static void
mode_action (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  adw_view_stack_set_visible_child_name (ATELIER_WINDOW (user_data)->modes, g_variant_get_string (param, NULL));
}

static void
reset_history_action (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  atelier_application_reset_store (app_of (ATELIER_WINDOW (user_data)));
}

static void
model_chosen_cb (AtelierModelsDialog *dialog, const char *path, gpointer user_data)
{
  AtelierWindow *self = user_data;

  adw_view_stack_set_visible_child_name (self->modes, "write");
  atelier_write_page_set_model (self->write_page, path);
}

static void
models_action (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  AtelierWindow *self = user_data;
  GSettings *settings = atelier_settings_get ();
  g_auto (GStrv) folders = settings != NULL ? g_settings_get_strv (settings, "model-folders") : NULL;
  AtelierModelsDialog *dialog = atelier_models_dialog_new (GTK_WINDOW (self),
                                                           atelier_application_get_store (app_of (self)),
                                                           (const char *const *) folders);

  g_signal_connect_object (dialog, "model-chosen", G_CALLBACK (model_chosen_cb), self, 0);
  g_signal_connect_object (dialog, "destroy", G_CALLBACK (atelier_write_page_refresh_models), self->write_page,
                           G_CONNECT_SWAPPED);
  gtk_window_present (GTK_WINDOW (dialog));
}

void
atelier_window_open_file (AtelierWindow *self, GFile *file)
{
  g_autofree char *type = g_content_type_guess (g_file_peek_path (file), NULL, 0, NULL);

  if (g_content_type_is_a (type, "text/plain"))
    {
      adw_view_stack_set_visible_child_name (self->modes, "write");
      if (atelier_write_page_leave_proposal (self->write_page))
        atelier_write_page_confirm_unsaved (self->write_page, open_file_then, g_object_ref (file),
                                            g_object_unref);
    }
  else
    {
      g_autofree char *name = g_file_get_basename (file);
      g_autofree char *text = g_strdup_printf (_("%s: Atelier opens text and Markdown files for now"), name);

      atelier_window_toast (self, text, NULL, NULL);
    }
}

/* After the window has its application (GtkWindow sets that after construction). */
static void
attach (AtelierWindow *self, AtelierApplication *app)
{
  GListModel *jobs = G_LIST_MODEL (atelier_application_get_jobs (app));
  GSettings *settings = atelier_settings_get ();

  atelier_write_page_attach (self->write_page, app);
  gtk_list_box_bind_model (self->jobs_list, jobs, job_row_new, self, NULL);
  g_signal_connect_object (jobs, "items-changed", G_CALLBACK (jobs_changed_cb), self, 0);
  jobs_changed_cb (jobs, 0, 0, 0, self);
  self->store_handler = g_signal_connect_object (app, "notify::store", G_CALLBACK (store_notify_cb), self, 0);
  store_changed (self);
  if (settings != NULL)
    {
      g_settings_bind (settings, "window-width", self, "default-width", G_SETTINGS_BIND_DEFAULT);
      g_settings_bind (settings, "window-height", self, "default-height", G_SETTINGS_BIND_DEFAULT);
      g_settings_bind (settings, "window-maximized", self, "maximized", G_SETTINGS_BIND_DEFAULT);
      g_settings_bind (settings, "sidebar-visible", self->history, "visible", G_SETTINGS_BIND_DEFAULT);
    }
  g_action_group_change_action_state (G_ACTION_GROUP (self), "toggle-sidebar",
                                      g_variant_new_boolean (gtk_widget_get_visible (GTK_WIDGET (self->history))));
}

/* -- closing -- */

static gboolean
close_idle_cb (gpointer data)
{
  gtk_window_close (GTK_WINDOW (data));
  return G_SOURCE_REMOVE;
}

/* The unsaved-changes question answered Save (and saved) or Discard. */
static void
close_then (AtelierWritePage *page, gpointer data)
{
  AtelierWindow *self = data;

  self->closing = TRUE;
  /* Once the dialog, which is transient for this window, has gone. */
  g_idle_add_full (G_PRIORITY_DEFAULT_IDLE, close_idle_cb, g_object_ref (self), g_object_unref);
}

/* Nothing typed is lost: the document goes into the history first, whatever happens next, and
 * a file with unsaved changes asks whether to save them. */
static gboolean
atelier_window_close_request (GtkWindow *window)
{
  AtelierWindow *self = ATELIER_WINDOW (window);

  if (!self->closing)
    {
      atelier_write_page_keep_in_history (self->write_page);
      if (atelier_write_page_get_unsaved_file (self->write_page) != NULL)
        {
          atelier_write_page_confirm_unsaved (self->write_page, close_then, self, NULL);
          return TRUE;
        }
    }
  return GTK_WINDOW_CLASS (atelier_window_parent_class)->close_request (window);
}

static void
atelier_window_dispose (GObject *object)
{
  AtelierWindow *self = ATELIER_WINDOW (object);

  g_cancellable_cancel (self->cancellable);
  G_OBJECT_CLASS (atelier_window_parent_class)->dispose (object);
}

static void
atelier_window_finalize (GObject *object)
{
  g_clear_object (&ATELIER_WINDOW (object)->cancellable);
  g_free (ATELIER_WINDOW (object)->device_problem);
  g_free (ATELIER_WINDOW (object)->prompt_mode);
  g_clear_pointer (&ATELIER_WINDOW (object)->prompts, g_hash_table_unref);
  G_OBJECT_CLASS (atelier_window_parent_class)->finalize (object);
}

static void
atelier_window_class_init (AtelierWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = atelier_window_dispose;
  object_class->finalize = atelier_window_finalize;
  GTK_WINDOW_CLASS (klass)->close_request = atelier_window_close_request;
  g_type_ensure (ATELIER_TYPE_HISTORY_PANEL);
  g_type_ensure (ATELIER_TYPE_WRITE_PAGE);
  gtk_widget_class_set_template_from_resource (widget_class, "/org/atelier/Atelier/atelier-window.ui");
  gtk_widget_class_bind_template_child (widget_class, AtelierWindow, toasts);
  gtk_widget_class_bind_template_child (widget_class, AtelierWindow, device_label);
  gtk_widget_class_bind_template_child (widget_class, AtelierWindow, split);
  gtk_widget_class_bind_template_child (widget_class, AtelierWindow, modes);
  gtk_widget_class_bind_template_child (widget_class, AtelierWindow, history);
  gtk_widget_class_bind_template_child (widget_class, AtelierWindow, write_page);
  gtk_widget_class_bind_template_child (widget_class, AtelierWindow, jobs_button);
  gtk_widget_class_bind_template_child (widget_class, AtelierWindow, jobs_list);
  gtk_widget_class_bind_template_child (widget_class, AtelierWindow, banner);
  gtk_widget_class_bind_template_child (widget_class, AtelierWindow, banner_label);
  gtk_widget_class_bind_template_child (widget_class, AtelierWindow, banner_button);
  gtk_widget_class_bind_template_child (widget_class, AtelierWindow, prompt_entry);
  gtk_widget_class_bind_template_child (widget_class, AtelierWindow, prompt_button);
}

static void
atelier_window_init (AtelierWindow *self)
{
  static const GActionEntry actions[] = {
    { "toggle-sidebar", toggle_sidebar_action, NULL, "true" },
    { "search-history", search_history_action },
    { "focus-prompt", focus_prompt_action },
    { "mode", mode_action, "s" },
    { "models", models_action },
    { "reset-history", reset_history_action },
  };
  g_autoptr (GTask) task = NULL;
  g_autoptr (GtkCssProvider) css = gtk_css_provider_new ();

  gtk_widget_init_template (GTK_WIDGET (self));
  self->cancellable = g_cancellable_new ();
  g_action_map_add_action_entries (G_ACTION_MAP (self), actions, G_N_ELEMENTS (actions), self);
  gtk_css_provider_load_from_data (css,
                                   ".atelier-banner { background-color: alpha(@warning_color, 0.18); }"
                                   " .atelier-inserted { background-color: alpha(@success_color, 0.2); }"
                                   " .atelier-deleted { background-color: alpha(@error_color, 0.2); }",
                                   -1);
  gtk_style_context_add_provider_for_display (gdk_display_get_default (), GTK_STYLE_PROVIDER (css),
                                              GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
  g_signal_connect_object (self->history, "item-activated", G_CALLBACK (item_activated_cb), self, 0);
  g_signal_connect_object (self->write_page, "history-changed", G_CALLBACK (history_changed_cb), self, 0);
  g_signal_connect_object (self->write_page, "toast", G_CALLBACK (page_toast_cb), self, 0);
  g_signal_connect_object (self->write_page, "prompt", G_CALLBACK (page_prompt_cb), self, 0);
  self->prompts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_signal_connect_object (self->modes, "notify::visible-child-name", G_CALLBACK (mode_changed_cb), self, 0);
  g_signal_connect_swapped (self->prompt_entry, "activate", G_CALLBACK (prompt_send_cb), self);
  g_signal_connect_swapped (self->prompt_button, "clicked", G_CALLBACK (prompt_send_cb), self);
  prompt_bar_for_mode (self);
  task = g_task_new (self, self->cancellable, device_ready_cb, NULL);
  g_task_run_in_thread (task, device_worker);
}

AtelierWindow *
atelier_window_new (AtelierApplication *app)
{
  AtelierWindow *self = g_object_new (ATELIER_TYPE_WINDOW, "application", app, NULL);

  attach (self, app);
  return self;
}
