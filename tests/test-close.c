/* test-close.c: closing the window loses nothing. The real application under Xvfb, each case
 * with a fresh application and history folder, closed through app.quit (Ctrl+Q):
 * /ui/close/untitled: text typed into a new document is in the history once the window closes
 *   (no question asked), and the application ends.
 * /ui/close/unsaved-file: a file with unsaved changes asks; Cancel keeps the window open;
 *   Discard leaves the file as it was (the text still in the history); Save writes it.
 * /ui/close/new-asks: New (and so Open, and a history item) on a file with unsaved changes asks
 *   the same; Cancel keeps the document, Discard replaces it, the file as it was. */
#include <glib/gstdio.h>
#include <string.h>

#include "at-test-util.h"
#include "at-ui-test-util.h"
#include "atelier-window.h"

static const char *typed = "A line typed just before closing.";

typedef struct
{
  const char *answer; /* the unsaved-changes dialog's response; NULL: none expected */
  char *file;         /* the document's file, or NULL */
  gboolean asked, ran;
} Case;


static gboolean
file_loaded (gpointer buffer)
{
  GtkTextIter a, b;
  g_autofree char *text = NULL;

  gtk_text_buffer_get_bounds (buffer, &a, &b);
  text = gtk_text_buffer_get_text (buffer, &a, &b, FALSE);
  return g_str_has_prefix (text, "On disk.");
}

static GtkWindow *
find_dialog (void)
{
  GListModel *toplevels = gtk_window_get_toplevels ();

  for (guint i = 0; i < g_list_model_get_n_items (toplevels); i++)
    {
      g_autoptr (GObject) w = g_list_model_get_item (toplevels, i);

      if (ADW_IS_MESSAGE_DIALOG (w) && gtk_widget_get_visible (GTK_WIDGET (w)))
        return GTK_WINDOW (w);
    }
  return NULL;
}

static gboolean
dialog_shown (gpointer data)
{
  return find_dialog () != NULL;
}

static gboolean
dialog_gone (gpointer data)
{
  return find_dialog () == NULL;
}

static gboolean
is_button_labelled (GtkWidget *w, gconstpointer label)
{
  return GTK_IS_BUTTON (w) && g_strcmp0 (gtk_button_get_label (GTK_BUTTON (w)), label) == 0;
}

/* Clicks the dialog's button for `response`, as a person does. */
static void
click (GtkWindow *dialog, const char *response)
{
  const char *label = adw_message_dialog_get_response_label (ADW_MESSAGE_DIALOG (dialog), response);
  GtkWidget *button = at_ui_find (GTK_WIDGET (dialog), is_button_labelled, label, NULL);

  g_assert_nonnull (button);
  g_signal_emit_by_name (button, "clicked");
}

static void
activate_cb (GApplication *gapp, gpointer data)
{
  Case *c = data;
  GtkWidget *window;
  AtelierWritePage *page = at_ui_active_page (gapp, &window);
  GtkTextBuffer *buffer = atelier_write_page_get_buffer (page);
  GtkTextIter end;

  g_assert_true (at_ui_wait_for (at_ui_store_open, gapp, 60));
  g_assert_nonnull (atelier_application_get_store (ATELIER_APPLICATION (gapp)));
  g_assert_true (at_ui_wait_for (at_ui_drawn, window, 30));
  if (c->file != NULL)
    {
      g_autoptr (GFile) file = g_file_new_for_path (c->file);

      atelier_write_page_open_file (page, file);
      g_assert_true (at_ui_wait_for (file_loaded, buffer, 30));
    }
  /* Typed as a person types: at the end, as one user action. */
  gtk_text_buffer_get_end_iter (buffer, &end);
  gtk_text_buffer_begin_user_action (buffer);
  gtk_text_buffer_insert_interactive (buffer, &end, typed, -1, TRUE);
  gtk_text_buffer_end_user_action (buffer);

  /* Closed as a person closes it (the title bar's button, Ctrl+Q). */
  g_action_group_activate_action (G_ACTION_GROUP (gapp), "quit", NULL);
  if (c->answer != NULL)
    {
      GtkWindow *dialog;

      g_assert_true (at_ui_wait_for (dialog_shown, NULL, 20));
      c->asked = TRUE;
      dialog = find_dialog ();
      /* Cancel first: the window stays, with the text. */
      click (dialog, "cancel");
      g_assert_true (at_ui_wait_for (dialog_gone, NULL, 20));
      g_assert_true (gtk_widget_get_visible (window));
      g_assert_nonnull (gtk_application_get_active_window (GTK_APPLICATION (gapp)));
      /* Again, and this time the case's answer. */
      gtk_window_close (GTK_WINDOW (window));
      g_assert_true (at_ui_wait_for (dialog_shown, NULL, 20));
      click (find_dialog (), c->answer);
    }
  else
    g_assert_null (find_dialog ());
  c->ran = TRUE;
}

static gboolean
buffer_empty (gpointer buffer)
{
  return gtk_text_buffer_get_char_count (buffer) == 0;
}

/* New on a modified file: asks; Cancel keeps it, Discard gives the empty document. */
static void
new_activate_cb (GApplication *gapp, gpointer data)
{
  Case *c = data;
  GtkWidget *window;
  AtelierWritePage *page = at_ui_active_page (gapp, &window);
  GtkTextBuffer *buffer = atelier_write_page_get_buffer (page);
  g_autoptr (GFile) file = g_file_new_for_path (c->file);
  GtkTextIter end;

  g_assert_true (at_ui_wait_for (at_ui_store_open, gapp, 60));
  g_assert_true (at_ui_wait_for (at_ui_drawn, window, 30));
  atelier_write_page_open_file (page, file);
  g_assert_true (at_ui_wait_for (file_loaded, buffer, 30));
  gtk_text_buffer_get_end_iter (buffer, &end);
  gtk_text_buffer_insert_interactive (buffer, &end, typed, -1, TRUE);

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (page), "write.new", NULL));
  g_assert_true (at_ui_wait_for (dialog_shown, NULL, 20));
  click (find_dialog (), "cancel");
  g_assert_true (at_ui_wait_for (dialog_gone, NULL, 20));
  g_assert_true (file_loaded (buffer));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (page), "write.new", NULL));
  g_assert_true (at_ui_wait_for (dialog_shown, NULL, 20));
  c->asked = TRUE;
  click (find_dialog (), "discard");
  g_assert_true (at_ui_wait_for (buffer_empty, buffer, 20));
  g_assert_null (atelier_write_page_get_unsaved_file (page));
  c->ran = TRUE;
  /* As Ctrl+Q: the application ends once the old document's record has committed. */
  g_action_group_activate_action (G_ACTION_GROUP (gapp), "quit", NULL);
}

/* The newest text item in the history of `data_dir`. */
static char *
newest_text (const char *data_dir)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = atelier_store_open (data_dir, &error);
  AtelierQuery query = ATELIER_QUERY_INIT;
  g_autoptr (GPtrArray) items = NULL;
  const AtelierAsset *asset;
  char *text = NULL;

  g_assert_no_error (error);
  query.limit = 1;
  items = atelier_store_find (store, &query, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (items->len, ==, 1);
  asset = atelier_item_get_asset (g_ptr_array_index (items, 0), "main");
  g_assert_nonnull (asset);
  g_assert_true (g_file_get_contents (asset->path, &text, NULL, NULL));
  return text;
}

static void
run_case_with (Case *c, const char *data_dir, GCallback activate)
{
  g_setenv ("ATELIER_DATA_DIR", data_dir, TRUE);
  /* It returns only when the last window has closed. */
  at_ui_run_app (activate, c);
  g_assert_true (c->ran);
  g_assert_true (c->asked == (c->answer != NULL));
}

static void
run_case (Case *c, const char *data_dir)
{
  run_case_with (c, data_dir, G_CALLBACK (activate_cb));
}

static void
test_untitled (void)
{
  g_autofree char *data = g_build_filename (at_test_tmpdir (), "untitled-history", NULL);
  g_autofree char *kept = NULL;
  Case c = { 0 };

  if (!at_ui_have_display ())
    return;
  run_case (&c, data);
  kept = newest_text (data);
  g_assert_cmpstr (kept, ==, typed);
}

static void
check_file_case (const char *answer)
{
  g_autofree char *dir = g_build_filename (at_test_tmpdir (), answer, NULL);
  g_autofree char *data = g_build_filename (dir, "history", NULL);
  g_autofree char *path = g_build_filename (dir, "notes.md", NULL);
  g_autofree char *on_disk = NULL, *kept = NULL, *both = NULL;
  Case c = { answer, NULL, FALSE, FALSE };

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_assert_true (g_file_set_contents (path, "On disk.\n", -1, NULL));
  c.file = path;
  run_case (&c, data);
  both = g_strconcat ("On disk.\n", typed, NULL);
  g_assert_true (g_file_get_contents (path, &on_disk, NULL, NULL));
  g_assert_cmpstr (on_disk, ==, g_strcmp0 (answer, "save") == 0 ? both : "On disk.\n");
  /* Either way, the text as it was is in the history. */
  kept = newest_text (data);
  g_assert_cmpstr (kept, ==, both);
}

static void
test_unsaved_file (void)
{
  if (!at_ui_have_display ())
    return;
  check_file_case ("discard");
  check_file_case ("save");
}

static void
test_new_asks (void)
{
  g_autofree char *dir = g_build_filename (at_test_tmpdir (), "new", NULL);
  g_autofree char *data = g_build_filename (dir, "history", NULL);
  g_autofree char *path = g_build_filename (dir, "notes.md", NULL);
  g_autofree char *on_disk = NULL, *kept = NULL, *both = NULL;
  Case c = { "discard", NULL, FALSE, FALSE };

  if (!at_ui_have_display ())
    return;
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_assert_true (g_file_set_contents (path, "On disk.\n", -1, NULL));
  c.file = path;
  run_case_with (&c, data, G_CALLBACK (new_activate_cb));
  g_assert_true (g_file_get_contents (path, &on_disk, NULL, NULL));
  g_assert_cmpstr (on_disk, ==, "On disk.\n");
  both = g_strconcat ("On disk.\n", typed, NULL);
  kept = newest_text (data);
  g_assert_cmpstr (kept, ==, both);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ui/close/untitled", test_untitled);
  g_test_add_func ("/ui/close/unsaved-file", test_unsaved_file);
  g_test_add_func ("/ui/close/new-asks", test_new_asks);
  return g_test_run ();
}
