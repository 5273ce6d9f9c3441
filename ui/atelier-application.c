/* atelier-application.c: application lifetime, app-wide actions and shortcuts, the shared job
 * queue, writer and history store. */
#include "config.h"

#include "atelier-application.h"

#include <glib/gi18n.h>

#include "atelier-preferences.h"
#include "atelier-settings.h"
#include "atelier-window.h"

struct _AtelierApplication
{
  AdwApplication parent_instance;

  AtelierJobQueue *jobs;
  AtelierWriter *writer;
  AtelierStore *store;
  GError *store_error;
  GCancellable *cancellable;
};

G_DEFINE_FINAL_TYPE (AtelierApplication, atelier_application, ADW_TYPE_APPLICATION)

enum
{
  PROP_0,
  PROP_STORE,
  N_PROPS,
};

static GParamSpec *properties[N_PROPS];

static void
store_opened_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AtelierApplication *self = user_data;
  g_auto (AtelierStoreReport) report = { 0 };
  g_autoptr (GError) error = NULL;
  AtelierStore *store = atelier_store_open_finish (result, &report, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_object_unref (self);
      return;
    }
  g_clear_error (&self->store_error);
  if (store == NULL)
    {
      g_warning ("history: %s", error->message);
      self->store_error = g_steal_pointer (&error);
    }
  else
    {
      self->store = store;
      for (guint i = 0; report.problems != NULL && i < report.problems->len; i++)
        g_warning ("history: %s", (const char *) g_ptr_array_index (report.problems, i));
    }
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STORE]);
  g_object_unref (self);
}

static void
open_store (AtelierApplication *self)
{
  GSettings *settings = atelier_settings_get ();
  g_autofree char *folder = settings != NULL ? g_settings_get_string (settings, "data-folder") : NULL;

  /* ATELIER_DATA_DIR (the tests') wins over the preference; "" is the default folder. */
  if (g_getenv ("ATELIER_DATA_DIR") != NULL || (folder != NULL && folder[0] == '\0'))
    g_clear_pointer (&folder, g_free);
  atelier_store_open_async (folder, self->cancellable, store_opened_cb, g_object_ref (self));
}

void
atelier_application_reset_store (AtelierApplication *self)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = NULL, *db = NULL, *moved = NULL;
  GSettings *settings = atelier_settings_get ();
  g_autofree char *folder = settings != NULL ? g_settings_get_string (settings, "data-folder") : NULL;

  if (self->store != NULL)
    return;
  dir = g_getenv ("ATELIER_DATA_DIR") == NULL && folder != NULL && folder[0] != '\0' ? g_strdup (folder)
                                                                                    : atelier_store_default_dir ();
  db = g_build_filename (dir, "history.sqlite3", NULL);
  if (!atelier_store_move_aside (db, &moved, &error))
    {
      g_clear_error (&self->store_error);
      self->store_error = g_steal_pointer (&error);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STORE]);
      return;
    }
  g_message ("history: the damaged file was moved to %s", moved);
  open_store (self);
}

AtelierJobQueue *
atelier_application_get_jobs (AtelierApplication *self)
{
  return self->jobs;
}

AtelierWriter *
atelier_application_get_writer (AtelierApplication *self)
{
  return self->writer;
}

AtelierStore *
atelier_application_get_store (AtelierApplication *self)
{
  return self->store;
}

const GError *
atelier_application_get_store_error (AtelierApplication *self)
{
  return self->store_error;
}

static void
atelier_application_activate (GApplication *app)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (app));

  if (window == NULL)
    window = GTK_WINDOW (atelier_window_new (ATELIER_APPLICATION (app)));
  gtk_window_present (window);
}

static void
atelier_application_open (GApplication *app, GFile **files, int n_files, const char *hint)
{
  AtelierWindow *window;

  atelier_application_activate (app);
  window = ATELIER_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  /* Text and Markdown open in the Write mode; the other kinds' modes arrive with their issues
   * and the window says so. */
  for (int i = 0; i < n_files; i++)
    atelier_window_open_file (window, files[i]);
}

static void
about_action (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (user_data));

  adw_show_about_window (window,
                         "application-name", _("Atelier"),
                         "application-icon", ATELIER_APP_ID,
                         "version", ATELIER_VERSION,
                         "license-type", GTK_LICENSE_GPL_3_0,
                         "comments", _("A studio for generative images, text and melodies, "
                                       "running on your own GPU, offline"),
                         NULL);
}

static void
preferences_action (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (user_data));

  gtk_window_present (GTK_WINDOW (atelier_preferences_new (window)));
}

static gpointer
ref_window (gconstpointer window, gpointer data)
{
  return g_object_ref ((gpointer) window);
}

static void
quit_action (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  AtelierApplication *self = user_data;

  GList *windows = g_list_copy_deep (gtk_application_get_windows (GTK_APPLICATION (self)), ref_window, NULL);

  /* A running generation ends at its next token; the queue's destruction joins it. */
  atelier_job_queue_cancel_all (self->jobs);
  /* Closed as a person closes them, so each keeps its document and may ask about unsaved
   * changes; the application ends with its last window. */
  for (GList *l = windows; l != NULL; l = l->next)
    gtk_window_close (l->data);
  g_list_free_full (windows, g_object_unref);
}

static void
atelier_application_startup (GApplication *app)
{
  AtelierApplication *self = ATELIER_APPLICATION (app);
  static const GActionEntry actions[] = {
    { "about", about_action },
    { "preferences", preferences_action },
    { "quit", quit_action },
  };
  static const struct
  {
    const char *action;
    const char *accels[3];
  } accels[] = {
    { "app.quit", { "<Control>q", NULL } },
    { "app.preferences", { "<Control>comma", NULL } },
    { "win.show-help-overlay", { "<Control>question", NULL } },
    { "win.toggle-sidebar", { "F9", NULL } },
    { "win.search-history", { "<Control>f", NULL } },
    { "win.focus-prompt", { "<Control>l", NULL } },
    { "win.models", { "<Control>m", NULL } },
    { "win.mode('image')", { "<Control>1", NULL } },
    { "win.mode('write')", { "<Control>2", NULL } },
    { "win.mode('music')", { "<Control>3", NULL } },
    /* The Write mode's own keys are its page's (atelier-write-page.c: add_shortcuts). */
  };

  /* Before the first engine thread: setenv is not thread-safe. */
  atelier_settings_apply_device ();
  G_APPLICATION_CLASS (atelier_application_parent_class)->startup (app);
  g_action_map_add_action_entries (G_ACTION_MAP (app), actions, G_N_ELEMENTS (actions), app);
  for (guint i = 0; i < G_N_ELEMENTS (accels); i++)
    gtk_application_set_accels_for_action (GTK_APPLICATION (app), accels[i].action, accels[i].accels);
  self->jobs = atelier_job_queue_new ();
  self->writer = atelier_writer_new ();
  open_store (self);
}

static void
atelier_application_shutdown (GApplication *app)
{
  AtelierApplication *self = ATELIER_APPLICATION (app);

  g_cancellable_cancel (self->cancellable);
  if (self->jobs != NULL)
    atelier_job_queue_cancel_all (self->jobs);
  /* The queue joins its worker before the writer (which the worker may be using) goes. */
  g_clear_object (&self->jobs);
  g_clear_pointer (&self->writer, atelier_writer_free);
  g_clear_pointer (&self->store, atelier_store_unref);
  G_APPLICATION_CLASS (atelier_application_parent_class)->shutdown (app);
}

static void
atelier_application_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  AtelierApplication *self = ATELIER_APPLICATION (object);

  switch (prop_id)
    {
    case PROP_STORE:
      g_value_set_pointer (value, self->store);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
atelier_application_finalize (GObject *object)
{
  AtelierApplication *self = ATELIER_APPLICATION (object);

  g_clear_object (&self->cancellable);
  g_clear_error (&self->store_error);
  G_OBJECT_CLASS (atelier_application_parent_class)->finalize (object);
}

static void
atelier_application_class_init (AtelierApplicationClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  object_class->get_property = atelier_application_get_property;
  object_class->finalize = atelier_application_finalize;
  app_class->activate = atelier_application_activate;
  app_class->open = atelier_application_open;
  app_class->startup = atelier_application_startup;
  app_class->shutdown = atelier_application_shutdown;
  properties[PROP_STORE] = g_param_spec_pointer ("store", NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
atelier_application_init (AtelierApplication *self)
{
  self->cancellable = g_cancellable_new ();
}

AtelierApplication *
atelier_application_new (void)
{
  return g_object_new (ATELIER_TYPE_APPLICATION,
                       "application-id", ATELIER_APP_ID,
                       "flags", G_APPLICATION_HANDLES_OPEN,
                       "resource-base-path", "/org/atelier/Atelier",
                       NULL);
}
