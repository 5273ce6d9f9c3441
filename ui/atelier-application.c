/* atelier-application.c: application lifetime, app-wide actions, the about dialog. */
#include "config.h"

#include "atelier-application.h"

#include <glib/gi18n.h>

#include "atelier-window.h"

struct _AtelierApplication
{
  AdwApplication parent_instance;
};

G_DEFINE_FINAL_TYPE (AtelierApplication, atelier_application, ADW_TYPE_APPLICATION)

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
  /* Files open in the mode that fits them once the modes load files (issue-tracked); for now
   * the window opens and names them. */
  atelier_application_activate (app);
  for (int i = 0; i < n_files; i++)
    g_message ("open: %s", g_file_peek_path (files[i]));
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
quit_action (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  g_application_quit (G_APPLICATION (user_data));
}

static void
atelier_application_startup (GApplication *app)
{
  static const GActionEntry actions[] = {
    { "about", about_action },
    { "quit", quit_action },
  };
  static const char *const quit_accels[] = { "<Control>q", NULL };

  G_APPLICATION_CLASS (atelier_application_parent_class)->startup (app);
  g_action_map_add_action_entries (G_ACTION_MAP (app), actions, G_N_ELEMENTS (actions), app);
  gtk_application_set_accels_for_action (GTK_APPLICATION (app), "app.quit", quit_accels);
}

static void
atelier_application_class_init (AtelierApplicationClass *klass)
{
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  app_class->activate = atelier_application_activate;
  app_class->open = atelier_application_open;
  app_class->startup = atelier_application_startup;
}

static void
atelier_application_init (AtelierApplication *self)
{
}

AtelierApplication *
atelier_application_new (void)
{
  return g_object_new (ATELIER_TYPE_APPLICATION,
                       "application-id", ATELIER_APP_ID,
                       "flags", G_APPLICATION_HANDLES_OPEN,
                       NULL);
}
