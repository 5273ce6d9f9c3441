/* test-models-dialog.c: the model manager (ui/atelier-models-dialog.c) under Xvfb, over fake
 * discovery roots in a temp folder (a GGUF in the Hugging Face hub cache behind a symlinked
 * blob, one in LM Studio's folder, an Ollama manifest that is not JSON, an extra folder with a
 * file of bad bytes and a safetensors file) and a temp store. It waits for the search (off the
 * main thread) to end, then finds the rows by walking the widget tree: each model under its
 * kind's group, with its details, Use on language models ("model-chosen"), Remove on the
 * user's own list. Then Import of a valid file (it joins the list and the store), of a bad one
 * (a toast naming it, no row, nothing stored), Remove (gone from the list and the store, the
 * file still there), and Import while the store is not open yet. */
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "at-test-util.h"
#include "atelier-models-dialog.h"
#include "atelier-store.h"

#define BLOB_HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char *root, *extra_dir, *own_dir;
static AtelierStore *store;

static void
make_roots (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *hub = NULL, *blob = NULL, *snap = NULL, *lms = NULL, *oll = NULL, *st = NULL;
  g_autofree char *corpus = NULL, *st_text = NULL;
  gsize st_len = 0;

  root = g_dir_make_tmp ("atelier-models-dialog-XXXXXX", &error);
  g_assert_no_error (error);
  hub = g_build_filename (root, "hub", NULL);
  blob = g_build_filename (hub, "models--org--tiny", "blobs", BLOB_HEX, NULL);
  at_test_write_tiny_llama (blob);
  snap = g_build_filename (hub, "models--org--tiny", "snapshots", "rev1", NULL);
  g_assert_cmpint (g_mkdir_with_parents (snap, 0755), ==, 0);
  g_free (snap);
  snap = g_build_filename (hub, "models--org--tiny", "snapshots", "rev1", "tiny.gguf", NULL);
  g_assert_cmpint (symlink ("../../blobs/" BLOB_HEX, snap), ==, 0);
  lms = g_build_filename (root, "lmstudio", NULL);
  g_free (blob);
  blob = g_build_filename (lms, "pub", "repo", "chat.gguf", NULL);
  at_test_write_tiny_llama (blob);
  oll = g_build_filename (root, "ollama", NULL);
  g_free (blob);
  blob = g_build_filename (oll, "manifests", "registry.ollama.ai", "library", "broken", "latest", NULL);
  at_test_write_text (blob, "{\"layers\": [");
  extra_dir = g_build_filename (root, "extra", NULL);
  g_free (blob);
  blob = g_build_filename (extra_dir, "garbage.gguf", NULL);
  at_test_write_text (blob, "this is not a model at all");
  corpus = g_test_build_filename (G_TEST_DIST, "corpus", "safetensors", "small-padded.safetensors", NULL);
  g_assert_true (g_file_get_contents (corpus, &st_text, &st_len, &error));
  g_assert_no_error (error);
  st = g_build_filename (extra_dir, "small.safetensors", NULL);
  g_assert_true (g_file_set_contents (st, st_text, (gssize) st_len, &error));
  g_assert_no_error (error);
  own_dir = g_build_filename (root, "mine", NULL);
  g_assert_cmpint (g_mkdir_with_parents (own_dir, 0755), ==, 0);

  g_setenv ("ATELIER_HF_HUB_CACHE", hub, TRUE);
  g_setenv ("ATELIER_LMSTUDIO_DIR", lms, TRUE);
  g_setenv ("ATELIER_OLLAMA_DIR", oll, TRUE);
}

/* ---- the widget tree ---- */

static void
collect (GtkWidget *widget, GType type, GPtrArray *out)
{
  if (G_TYPE_CHECK_INSTANCE_TYPE (widget, type))
    g_ptr_array_add (out, widget);
  for (GtkWidget *c = gtk_widget_get_first_child (widget); c != NULL; c = gtk_widget_get_next_sibling (c))
    collect (c, type, out);
}

/* The row titled `title`, or NULL; fails on two. */
static AdwActionRow *
find_row (AtelierModelsDialog *dialog, const char *title)
{
  g_autoptr (GPtrArray) rows = g_ptr_array_new ();
  AdwActionRow *found = NULL;

  collect (GTK_WIDGET (dialog), ADW_TYPE_ACTION_ROW, rows);
  for (guint i = 0; i < rows->len; i++)
    if (g_strcmp0 (adw_preferences_row_get_title (rows->pdata[i]), title) == 0)
      {
        g_assert_null (found);
        found = rows->pdata[i];
      }
  return found;
}

static const char *
group_of (AdwActionRow *row)
{
  GtkWidget *group = gtk_widget_get_ancestor (GTK_WIDGET (row), ADW_TYPE_PREFERENCES_GROUP);

  g_assert_nonnull (group);
  g_assert_true (gtk_widget_get_visible (group));
  return adw_preferences_group_get_title (ADW_PREFERENCES_GROUP (group));
}

static GtkButton *
find_button (AdwActionRow *row, const char *name)
{
  g_autoptr (GPtrArray) buttons = g_ptr_array_new ();

  collect (GTK_WIDGET (row), GTK_TYPE_BUTTON, buttons);
  for (guint i = 0; i < buttons->len; i++)
    if (g_strcmp0 (gtk_widget_get_name (buttons->pdata[i]), name) == 0)
      return buttons->pdata[i];
  return NULL;
}

/* Whether a label anywhere in the window (a toast's) holds `fragment`. */
static gboolean
has_label (AtelierModelsDialog *dialog, const char *fragment)
{
  g_autoptr (GPtrArray) labels = g_ptr_array_new ();

  collect (GTK_WIDGET (dialog), GTK_TYPE_LABEL, labels);
  for (guint i = 0; i < labels->len; i++)
    if (strstr (gtk_label_get_text (labels->pdata[i]), fragment) != NULL)
      return TRUE;
  return FALSE;
}

/* Turns the main loop until the dialog is idle; fails after 20 s rather than hang. */
static void
wait_idle (AtelierModelsDialog *dialog)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  while (atelier_models_dialog_get_busy (dialog))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (1000);
    }
  /* Let the rows be laid out once. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static gboolean
store_has (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) list = atelier_store_list_user_models (store, &error);

  g_assert_no_error (error);
  for (guint i = 0; i < list->len; i++)
    if (strcmp (((AtelierUserModel *) list->pdata[i])->path, path) == 0)
      return TRUE;
  return FALSE;
}

static AtelierModelsDialog *
open_dialog (AtelierStore *with_store)
{
  const char *folders[] = { extra_dir, NULL };
  AtelierModelsDialog *dialog = atelier_models_dialog_new (NULL, with_store, folders);

  g_assert_true (atelier_models_dialog_get_busy (dialog));
  gtk_window_present (GTK_WINDOW (dialog));
  wait_idle (dialog);
  return dialog;
}

static void
on_chosen (AtelierModelsDialog *dialog, const char *path, char **out)
{
  g_free (*out);
  *out = g_strdup (path);
}

static void
test_list (void)
{
  AtelierModelsDialog *dialog = open_dialog (store);
  AdwActionRow *row;
  g_autofree char *chosen = NULL;
  g_autofree char *blob = g_build_filename (root, "hub", "models--org--tiny", "blobs", BLOB_HEX, NULL);
  g_autofree char *garbage = g_build_filename (extra_dir, "garbage.gguf", NULL);
  g_autofree char *size = NULL, *subtitle = NULL;
  GStatBuf st;

  row = find_row (dialog, "org/tiny/tiny.gguf");
  g_assert_nonnull (row);
  g_assert_cmpstr (group_of (row), ==, "Language Models");
  g_assert_true (g_stat (blob, &st) == 0);
  size = g_format_size (st.st_size);
  subtitle = g_strdup_printf ("llama · Q8_0 · %s · Hugging Face", size);
  g_assert_cmpstr (adw_action_row_get_subtitle (row), ==, subtitle);
  /* The symlink resolved: what is opened is the blob. */
  g_assert_cmpstr (gtk_widget_get_tooltip_text (GTK_WIDGET (row)), ==, blob);
  g_assert_null (find_button (row, "remove-button"));
  g_signal_connect (dialog, "model-chosen", G_CALLBACK (on_chosen), &chosen);
  g_signal_emit_by_name (find_button (row, "use-button"), "clicked");
  g_assert_cmpstr (chosen, ==, blob);

  row = find_row (dialog, "pub/repo/chat.gguf");
  g_assert_nonnull (row);
  g_assert_cmpstr (group_of (row), ==, "Language Models");
  g_assert_nonnull (strstr (adw_action_row_get_subtitle (row), "LM Studio"));
  g_assert_nonnull (find_button (row, "use-button"));

  row = find_row (dialog, "broken:latest");
  g_assert_nonnull (row);
  g_assert_cmpstr (group_of (row), ==, "Other or Unusable");
  g_assert_true (gtk_widget_has_css_class (GTK_WIDGET (row), "error"));
  g_assert_null (find_button (row, "use-button"));

  row = find_row (dialog, "garbage.gguf");
  g_assert_nonnull (row);
  g_assert_cmpstr (group_of (row), ==, "Other or Unusable");
  /* The error is shown, naming the file. */
  g_assert_nonnull (strstr (adw_action_row_get_subtitle (row), garbage));
  g_assert_null (find_button (row, "use-button"));

  row = find_row (dialog, "small.safetensors");
  g_assert_nonnull (row);
  g_assert_cmpstr (group_of (row), ==, "Other or Unusable");
  g_assert_false (gtk_widget_has_css_class (GTK_WIDGET (row), "error"));

  gtk_window_destroy (GTK_WINDOW (dialog));
}

static void
test_import_remove (void)
{
  AtelierModelsDialog *dialog = open_dialog (store);
  g_autofree char *own = g_build_filename (own_dir, "own.gguf", NULL);
  g_autofree char *bad = g_build_filename (own_dir, "bad.gguf", NULL);
  g_autoptr (GFile) own_file = g_file_new_for_path (own);
  g_autoptr (GFile) bad_file = g_file_new_for_path (bad);
  AdwActionRow *row;

  at_test_write_tiny_llama (own);
  at_test_write_text (bad, "GGUF but nothing after");
  g_assert_null (find_row (dialog, "own.gguf"));

  atelier_models_dialog_import (dialog, own_file);
  g_assert_true (atelier_models_dialog_get_busy (dialog));
  wait_idle (dialog);
  row = find_row (dialog, "own.gguf");
  g_assert_nonnull (row);
  g_assert_cmpstr (group_of (row), ==, "Language Models");
  g_assert_nonnull (strstr (adw_action_row_get_subtitle (row), "your list"));
  g_assert_nonnull (find_button (row, "use-button"));
  g_assert_nonnull (find_button (row, "remove-button"));
  g_assert_true (store_has (own));
  g_assert_true (has_label (dialog, "Added own.gguf"));

  atelier_models_dialog_import (dialog, bad_file);
  wait_idle (dialog);
  g_assert_null (find_row (dialog, "bad.gguf"));
  g_assert_false (store_has (bad));
  g_assert_true (has_label (dialog, "Could not import bad.gguf"));

  row = find_row (dialog, "own.gguf");
  g_signal_emit_by_name (find_button (row, "remove-button"), "clicked");
  g_assert_true (atelier_models_dialog_get_busy (dialog));
  wait_idle (dialog);
  g_assert_null (find_row (dialog, "own.gguf"));
  g_assert_false (store_has (own));
  g_assert_true (g_file_test (own, G_FILE_TEST_IS_REGULAR));
  /* What discovery found is still there. */
  g_assert_nonnull (find_row (dialog, "org/tiny/tiny.gguf"));

  gtk_window_destroy (GTK_WINDOW (dialog));
}

/* A drop of files on the window takes the import's path: GtkDropTarget's "drop" emitted with
 * the file list a drag from a file manager carries. */
static void
test_drop (void)
{
  AtelierModelsDialog *dialog = open_dialog (store);
  g_autofree char *path = g_build_filename (own_dir, "dropped.gguf", NULL);
  g_autoptr (GListModel) controllers = gtk_widget_observe_controllers (GTK_WIDGET (dialog));
  GtkDropTarget *target = NULL;
  GValue value = G_VALUE_INIT;
  GSList *files;
  gboolean accepted = FALSE;

  at_test_write_tiny_llama (path);
  for (guint i = 0; i < g_list_model_get_n_items (controllers); i++)
    {
      g_autoptr (GObject) c = g_list_model_get_item (controllers, i);

      if (GTK_IS_DROP_TARGET (c))
        target = GTK_DROP_TARGET (c);
    }
  g_assert_nonnull (target);
  files = g_slist_append (NULL, g_file_new_for_path (path));
  g_value_init (&value, GDK_TYPE_FILE_LIST);
  g_value_take_boxed (&value, files);
  g_signal_emit_by_name (target, "drop", &value, 10.0, 10.0, &accepted);
  g_value_unset (&value);
  g_assert_true (accepted);
  wait_idle (dialog);
  g_assert_nonnull (find_row (dialog, "dropped.gguf"));
  g_assert_true (store_has (path));
  g_assert_true (atelier_store_remove_user_model (store, 0, path, NULL));
  gtk_window_destroy (GTK_WINDOW (dialog));
}

/* The history has not opened yet: no user list, and Import says to try again. */
static void
test_no_store (void)
{
  AtelierModelsDialog *dialog = open_dialog (NULL);
  g_autofree char *own = g_build_filename (own_dir, "later.gguf", NULL);
  g_autoptr (GFile) file = g_file_new_for_path (own);

  at_test_write_tiny_llama (own);
  g_assert_nonnull (find_row (dialog, "pub/repo/chat.gguf"));
  atelier_models_dialog_import (dialog, file);
  wait_idle (dialog);
  g_assert_true (has_label (dialog, "still opening"));
  g_assert_false (store_has (own));
  gtk_window_destroy (GTK_WINDOW (dialog));
}

/* Closed while the search runs: the tasks hold no reference, so the window goes at once, and
 * the search's result, arriving later, is dropped without touching it. */
static void
test_close_while_scanning (void)
{
  const char *folders[] = { extra_dir, NULL };
  AtelierModelsDialog *dialog = atelier_models_dialog_new (NULL, store, folders);
  gpointer weak = dialog;
  gint64 deadline = g_get_monotonic_time () + G_USEC_PER_SEC;

  g_object_add_weak_pointer (G_OBJECT (dialog), &weak);
  g_assert_true (atelier_models_dialog_get_busy (dialog));
  gtk_window_destroy (GTK_WINDOW (dialog));
  g_assert_null (weak);
  while (g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
}

/* Deletes what make_roots and the tests wrote; symlinks are removed, never followed. */
static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = NULL;
  const char *name;

  if (!g_file_test (path, G_FILE_TEST_IS_SYMLINK) && g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      dir = g_dir_open (path, 0, NULL);
      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);

          remove_tree (child);
        }
    }
  g_remove (path);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *store_dir = NULL;
  int result;

  g_test_init (&argc, &argv, NULL);
  gtk_init ();
  adw_init ();
  make_roots ();
  store_dir = g_build_filename (root, "store", NULL);
  store = atelier_store_open (store_dir, &error);
  g_assert_no_error (error);
  g_test_add_func ("/ui/models-dialog/list", test_list);
  g_test_add_func ("/ui/models-dialog/import-remove", test_import_remove);
  g_test_add_func ("/ui/models-dialog/drop", test_drop);
  g_test_add_func ("/ui/models-dialog/no-store", test_no_store);
  g_test_add_func ("/ui/models-dialog/close-while-scanning", test_close_while_scanning);
  result = g_test_run ();
  atelier_store_unref (store);
  if (g_getenv ("ATELIER_KEEP_TMP") == NULL)
    remove_tree (root);
  return result;
}
