/* at-ui-test-util.c: see the header. */
#include "at-ui-test-util.h"

#include "at-test-util.h"

GtkWidget *
at_ui_find (GtkWidget *root, AtUiMatch match, gconstpointer data, GtkWidget *skip)
{
  if (root == skip)
    return NULL;
  if (match (root, data))
    return root;
  for (GtkWidget *c = gtk_widget_get_first_child (root); c != NULL; c = gtk_widget_get_next_sibling (c))
    {
      GtkWidget *found = at_ui_find (c, match, data, skip);

      if (found != NULL)
        return found;
    }
  return NULL;
}

static gboolean
is_type (GtkWidget *w, gconstpointer data)
{
  return G_TYPE_CHECK_INSTANCE_TYPE (w, *(const GType *) data);
}

GtkWidget *
at_ui_find_type (GtkWidget *root, GType type)
{
  return at_ui_find (root, is_type, &type, NULL);
}

static gboolean
is_label (GtkWidget *w, gconstpointer prefix)
{
  return GTK_IS_LABEL (w) && g_str_has_prefix (gtk_label_get_text (GTK_LABEL (w)), prefix);
}

AtelierWritePage *
at_ui_active_page (GApplication *app, GtkWidget **window)
{
  *window = GTK_WIDGET (gtk_application_get_active_window (GTK_APPLICATION (app)));
  return ATELIER_WRITE_PAGE (at_ui_find_type (*window, ATELIER_TYPE_WRITE_PAGE));
}

GtkLabel *
at_ui_find_label (GtkWidget *root, const char *prefix, GtkWidget *skip)
{
  return GTK_LABEL (at_ui_find (root, is_label, prefix, skip));
}

static gboolean
is_action_button (GtkWidget *w, gconstpointer action)
{
  return GTK_IS_BUTTON (w) && g_strcmp0 (gtk_actionable_get_action_name (GTK_ACTIONABLE (w)), action) == 0;
}

GtkWidget *
at_ui_find_action_button (GtkWidget *root, const char *action)
{
  return at_ui_find (root, is_action_button, action, NULL);
}

static gboolean
is_editor (GtkWidget *w, gconstpointer buffer)
{
  return GTK_IS_TEXT_VIEW (w) && gtk_text_view_get_buffer (GTK_TEXT_VIEW (w)) == buffer;
}

GtkTextView *
at_ui_find_editor (GtkWidget *root, GtkTextBuffer *buffer)
{
  return GTK_TEXT_VIEW (at_ui_find (root, is_editor, buffer, NULL));
}

static gboolean
is_entry (GtkWidget *w, gconstpointer placeholder)
{
  return GTK_IS_ENTRY (w) && g_strcmp0 (gtk_entry_get_placeholder_text (GTK_ENTRY (w)), placeholder) == 0;
}

GtkEditable *
at_ui_find_entry (GtkWidget *root, const char *placeholder)
{
  GtkWidget *w = at_ui_find (root, is_entry, placeholder, NULL);

  return w != NULL ? GTK_EDITABLE (w) : NULL;
}

GtkLabel *
at_ui_find_toast (GtkWidget *window, const char *prefix)
{
  GtkWidget *overlay = at_ui_find_type (window, ADW_TYPE_TOAST_OVERLAY);

  g_assert_nonnull (overlay);
  return at_ui_find_label (overlay, prefix, adw_toast_overlay_get_child (ADW_TOAST_OVERLAY (overlay)));
}

gboolean
at_ui_wait_for (AtUiCondition cond, gpointer data, int seconds)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) seconds * G_USEC_PER_SEC;

  while (!cond (data) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, FALSE) || (g_usleep (1000), TRUE);
  return cond (data);
}

gboolean
at_ui_store_open (gpointer app)
{
  return atelier_application_get_store (app) != NULL || atelier_application_get_store_error (app) != NULL;
}

gboolean
at_ui_job_done (gpointer page)
{
  AtelierJob *job = atelier_write_page_get_job (page);

  return job != NULL && atelier_job_is_finished (job);
}

gboolean
at_ui_drawn (gpointer window)
{
  return gtk_widget_get_mapped (window) && gtk_widget_get_width (window) > 0;
}

void
at_ui_run_app (GCallback activate, gpointer data)
{
  g_autoptr (AtelierApplication) app = atelier_application_new ();
  char *argv[] = { (char *) "atelier", NULL };

  g_application_set_flags (G_APPLICATION (app), G_APPLICATION_NON_UNIQUE);
  g_signal_connect_after (app, "activate", activate, data);
  g_assert_cmpint (g_application_run (G_APPLICATION (app), 1, argv), ==, 0);
}

char *
at_ui_tiny_llm (const char *name)
{
  const char *tmp = at_test_tmpdir ();
  const char *args[] = { tmp, NULL };
  g_autofree char *path = g_build_filename (tmp, name, NULL);

  if (!g_file_test (path, G_FILE_TEST_EXISTS) && !at_test_run_ref_tool ("tiny_llm.py", args))
    return NULL;
  return g_steal_pointer (&path);
}

gboolean
at_ui_have_display (void)
{
  if (g_getenv ("DISPLAY") != NULL || g_getenv ("WAYLAND_DISPLAY") != NULL)
    return TRUE;
  g_test_skip ("no display (the suite runs under xvfb-run in tools/test.sh)");
  return FALSE;
}
