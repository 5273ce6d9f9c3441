/* test-window.c: the real application class under Xvfb: one window with the three modes, the
 * prompt bar following the mode, the device lookup finishing off the main thread, and the main
 * loop staying responsive while it runs. */
#include <adwaita.h>

#include "atelier-application.h"
#include "at-ui-test-util.h"
#include "atelier-window.h"

static gboolean
device_shown (GtkWidget *window)
{
  return at_ui_find_label (window, "Looking", NULL) == NULL;
}

static void
activate_cb (GApplication *app, gpointer data)
{
  GtkWindow *window;
  AdwViewStack *stack;
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  window = gtk_application_get_active_window (GTK_APPLICATION (app));
  g_assert_nonnull (window);
  g_assert_true (ATELIER_IS_WINDOW (window));
  stack = ADW_VIEW_STACK (at_ui_find_type (GTK_WIDGET (window), ADW_TYPE_VIEW_STACK));
  g_assert_nonnull (stack);
  g_assert_nonnull (adw_view_stack_get_child_by_name (stack, "image"));
  g_assert_nonnull (adw_view_stack_get_child_by_name (stack, "write"));
  g_assert_nonnull (adw_view_stack_get_child_by_name (stack, "music"));
  adw_view_stack_set_visible_child_name (stack, "write");
  g_assert_cmpstr (adw_view_stack_get_visible_child_name (stack), ==, "write");

  /* The prompt bar follows the mode: Write asks the assistant; Image and Music say what they
   * will take and take nothing yet. Each mode keeps its own text. */
  {
    GtkEditable *prompt = at_ui_find_entry (GTK_WIDGET (window), "Ask the assistant about the document…");

    g_assert_nonnull (prompt);
    g_assert_true (gtk_widget_is_sensitive (GTK_WIDGET (prompt)));
    gtk_editable_set_text (prompt, "Who tells the story?");
    adw_view_stack_set_visible_child_name (stack, "image");
    g_assert_true (g_str_has_prefix (gtk_entry_get_placeholder_text (GTK_ENTRY (prompt)), "Describe an image"));
    g_assert_false (gtk_widget_is_sensitive (GTK_WIDGET (prompt)));
    g_assert_cmpstr (gtk_editable_get_text (prompt), ==, "");
    adw_view_stack_set_visible_child_name (stack, "music");
    g_assert_true (g_str_has_prefix (gtk_entry_get_placeholder_text (GTK_ENTRY (prompt)), "Describe a melody"));
    adw_view_stack_set_visible_child_name (stack, "write");
    g_assert_true (gtk_widget_is_sensitive (GTK_WIDGET (prompt)));
    g_assert_cmpstr (gtk_editable_get_text (prompt), ==, "Who tells the story?");
  }

  /* The device is looked up on a worker thread; the loop keeps turning meanwhile. */
  while (!device_shown (GTK_WIDGET (window)) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (device_shown (GTK_WIDGET (window)));
  g_application_quit (app);
}

static void
test_window_opens (void)
{

  if (!at_ui_have_display ())
    return;
  at_ui_run_app (G_CALLBACK (activate_cb), NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ui/window/opens", test_window_opens);
  return g_test_run ();
}
