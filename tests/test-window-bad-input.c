/* test-window-bad-input.c: the real application under Xvfb, given what goes wrong in a user's
 * hands (issue 7): no Vulkan device, no language model chosen yet, model files that fail to
 * load. Each time the window must say what happened and what to do (the banner, a toast, the
 * assistant's status line) and stay usable: the editor takes typing again, Continue is
 * sensitive again, the modes switch, and after the bad files a good model writes.
 *
 * Each case runs the application in a child process (g_test_trap_subprocess): the engine looks
 * the device up once per process and keeps the answer, and ATELIER_DEVICE must be set before
 * its first thread. The parent checks what a case needs (a display, a Vulkan device, the tiny
 * llama_chat model from tools/ref/tiny_llm.py) and skips there, so no child passes by skipping.
 * The children see no model on the machine (the discovery roots are turned off) and a fresh
 * history in a temp folder. */
#include <adwaita.h>
#include <string.h>

#include "at-test-util.h"
#include "at-ui-test-util.h"
#include "atelier-application.h"
#include "atelier-models-dialog.h"
#include "atelier-settings.h"
#include "atelier-window.h"
#include "atelier-write-page.h"

#define STOPPED "The assistant stopped: "

static const char *document = "Once upon a time, in a small village by the sea,";

/* -- finding what the user sees -- */

static GtkWidget *
find_button_labelled (GtkWidget *w, const char *label)
{
  if (GTK_IS_BUTTON (w) && g_strcmp0 (gtk_button_get_label (GTK_BUTTON (w)), label) == 0)
    return w;
  for (GtkWidget *c = gtk_widget_get_first_child (w); c != NULL;
       c = gtk_widget_get_next_sibling (c))
    {
      GtkWidget *found = find_button_labelled (c, label);

      if (found != NULL)
        return found;
    }
  return NULL;
}

/* The toast's own widget: the overlay's child that holds `label`. */
static GtkWidget *
toast_of (GtkLabel *label)
{
  GtkWidget *w = GTK_WIDGET (label);

  while (gtk_widget_get_parent (w) != NULL && !ADW_IS_TOAST_OVERLAY (gtk_widget_get_parent (w)))
    w = gtk_widget_get_parent (w);
  g_assert_nonnull (gtk_widget_get_parent (w));
  return w;
}

/* Clicks the toast's close button: the one with no action (the other is the toast's own). */
static void
close_toast (GtkLabel *label)
{
  GtkWidget *close = NULL;

  for (GtkWidget *c = gtk_widget_get_first_child (toast_of (label)); c != NULL;
       c = gtk_widget_get_next_sibling (c))
    if (GTK_IS_BUTTON (c) && gtk_actionable_get_action_name (GTK_ACTIONABLE (c)) == NULL)
      close = c;
  g_assert_nonnull (close);
  g_signal_emit_by_name (close, "clicked");
}

static gboolean
device_looked_up (gpointer window)
{
  return at_ui_find_label (window, "Looking", NULL) == NULL;
}

typedef struct
{
  GtkWidget *window;
  const char *prefix;
} ToastWait;

static gboolean
toast_shown (gpointer data)
{
  ToastWait *t = data;
  GtkLabel *label = at_ui_find_toast (t->window, t->prefix);

  return label != NULL && gtk_widget_is_visible (GTK_WIDGET (label));
}

static gboolean
toast_gone (gpointer data)
{
  ToastWait *t = data;

  return at_ui_find_toast (t->window, t->prefix) == NULL;
}

static gboolean
models_dialog_shown (gpointer data)
{
  GListModel *toplevels = gtk_window_get_toplevels (); /* not a new reference */

  for (guint i = 0; i < g_list_model_get_n_items (toplevels); i++)
    {
      g_autoptr (GtkWidget) w = g_list_model_get_item (toplevels, i);

      if (ATELIER_IS_MODELS_DIALOG (w) && gtk_widget_get_visible (w))
        return TRUE;
    }
  return FALSE;
}

static void
close_models_dialogs (void)
{
  GListModel *toplevels = gtk_window_get_toplevels (); /* not a new reference */

  for (guint i = g_list_model_get_n_items (toplevels); i > 0; i--)
    {
      g_autoptr (GtkWidget) w = g_list_model_get_item (toplevels, i - 1);

      if (ATELIER_IS_MODELS_DIALOG (w))
        gtk_window_destroy (GTK_WINDOW (w));
    }
}

/* -- what every case checks -- */

/* Asserts that the toast says `prefix`..., offers the model manager, and closes as a person
 * would close it (its close button's action), so the next toast is not queued behind it. */
static void
assert_toast (GtkWidget *window, const char *prefix, const char *button)
{
  ToastWait t = { window, prefix };
  GtkLabel *label;

  if (!at_ui_wait_for (toast_shown, &t, 20))
    g_error ("no toast starting \"%s\" appeared", prefix);
  label = at_ui_find_toast (window, prefix);
  g_test_message ("toast: %s", gtk_label_get_text (label));
  if (button != NULL)
    g_assert_nonnull (find_button_labelled (toast_of (label), button));
  close_toast (label);
  g_assert_true (at_ui_wait_for (toast_gone, &t, 20));
}

/* The page is free again: the editor takes typing, Continue is sensitive, Stop is not. */
static void
assert_usable (AtelierWritePage *page)
{
  GtkTextBuffer *buffer = atelier_write_page_get_buffer (page);
  GtkTextView *editor = at_ui_find_editor (GTK_WIDGET (page), buffer);
  GtkWidget *cont = at_ui_find_action_button (GTK_WIDGET (page), "write.continue");
  GtkWidget *stop = at_ui_find_action_button (GTK_WIDGET (page), "write.stop");
  int before = gtk_text_buffer_get_char_count (buffer);
  GtkTextIter a, b;

  g_assert_nonnull (editor);
  g_assert_nonnull (cont);
  g_assert_true (gtk_text_view_get_editable (editor));
  /* As typing does: an insertion, then its deletion, that respect the editor's editable state. */
  gtk_text_buffer_get_end_iter (buffer, &a);
  g_assert_true (gtk_text_buffer_insert_interactive (buffer, &a, " x", -1,
                                                     gtk_text_view_get_editable (editor)));
  g_assert_cmpint (gtk_text_buffer_get_char_count (buffer), ==, before + 2);
  gtk_text_buffer_get_iter_at_offset (buffer, &a, before);
  gtk_text_buffer_get_end_iter (buffer, &b);
  g_assert_true (
      gtk_text_buffer_delete_interactive (buffer, &a, &b, gtk_text_view_get_editable (editor)));
  g_assert_cmpint (gtk_text_buffer_get_char_count (buffer), ==, before);
  g_assert_true (gtk_widget_get_sensitive (cont));
  /* Stop is hidden or insensitive: nothing runs. */
  g_assert_true (stop == NULL || !gtk_widget_get_visible (stop) || !gtk_widget_is_sensitive (stop));
}

/* Runs write.continue with `model` and asserts that it failed with a status line and a toast
 * that start "The assistant stopped: " and hold each of `fragments`. Returns the status text. */
static char *
continue_fails (GtkWidget *window, AtelierWritePage *page, const char *model,
                const char *const *fragments)
{
  AtelierJob *job;
  GtkLabel *status;
  g_autofree char *text = NULL;

  atelier_write_page_set_model (page, model);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (page), "write.continue", NULL));
  job = atelier_write_page_get_job (page);
  g_assert_nonnull (job);
  g_assert_true (at_ui_wait_for (at_ui_job_done, page, 60));
  g_assert_cmpint (atelier_job_get_state (job), ==, ATELIER_JOB_FAILED);
  g_assert_false (atelier_write_page_has_proposal (page));
  status = at_ui_find_label (GTK_WIDGET (page), STOPPED, NULL);
  if (status == NULL)
    g_error ("the job failed (%s) but no status line starts \"%s\"",
             atelier_job_get_error (job)->message, STOPPED);
  text = g_strdup (gtk_label_get_text (status));
  g_test_message ("status: %s", text);
  g_assert_true (gtk_widget_is_visible (GTK_WIDGET (status)));
  for (guint i = 0; fragments[i] != NULL; i++)
    if (strstr (text, fragments[i]) == NULL)
      g_error ("the status line \"%s\" does not say \"%s\"", text, fragments[i]);
  /* The toast says the same, with the way to the model manager. */
  assert_toast (window, text, "Models");
  assert_usable (page);
  return g_steal_pointer (&text);
}

static void
put_document (AtelierWritePage *page)
{
  GtkTextBuffer *buffer = atelier_write_page_get_buffer (page);
  GtkTextIter end;

  gtk_text_buffer_set_text (buffer, document, -1);
  gtk_text_buffer_get_end_iter (buffer, &end);
  gtk_text_buffer_place_cursor (buffer, &end);
}

/* -- the cases (in the child process, inside "activate") -- */

typedef void (*Case) (AtelierApplication *app, GtkWidget *window, AtelierWritePage *page);

static void
case_no_device (AtelierApplication *app, GtkWidget *window, AtelierWritePage *page)
{
  AdwViewStack *modes = ADW_VIEW_STACK (at_ui_find_type (window, ADW_TYPE_VIEW_STACK));
  GtkLabel *gpu, *banner_label;
  GtkWidget *device_label, *banner;
  const char *text;
  const char *const job_says[] = { "no-such-device-xyz", "Vulkan", NULL };

  /* Both lookups end, in either order: the device (a worker thread) and the history. The
   * banner must still be about the device once the history has opened. */
  g_assert_true (at_ui_wait_for (device_looked_up, window, 60));
  g_assert_true (at_ui_wait_for (at_ui_store_open, app, 60));
  g_assert_true (at_ui_wait_for (at_ui_drawn, window, 30));

  gpu = at_ui_find_label (window, "GPU:", NULL);
  g_assert_nonnull (gpu);
  device_label = gtk_widget_get_next_sibling (GTK_WIDGET (gpu));
  g_assert_true (GTK_IS_LABEL (device_label));
  g_assert_cmpstr (gtk_label_get_text (GTK_LABEL (device_label)), ==, "None");

  banner_label = at_ui_find_label (window, "No Vulkan device", NULL);
  if (banner_label == NULL)
    g_error (
        "no label starts \"No Vulkan device\" once the device lookup failed and the history opened "
        "(store_changed in ui/atelier-window.c hides the banner when the history opens last)");
  text = gtk_label_get_text (banner_label);
  g_test_message ("banner: %s", text);
  banner = gtk_widget_get_ancestor (GTK_WIDGET (banner_label), GTK_TYPE_REVEALER);
  g_assert_nonnull (banner);
  g_assert_true (gtk_revealer_get_reveal_child (GTK_REVEALER (banner)));
  g_assert_true (gtk_widget_get_visible (banner));
  /* What is wrong (the device asked for) and what to install. */
  g_assert_nonnull (strstr (text, "no-such-device-xyz"));
  g_assert_nonnull (strstr (text, "mesa-vulkan-drivers"));

  /* The modes still switch. */
  for (guint i = 0; i < 3; i++)
    {
      const char *mode = (const char *[]){ "image", "music", "write" }[i];

      g_assert_true (gtk_widget_activate_action (window, "win.mode", "s", mode));
      g_assert_cmpstr (adw_view_stack_get_visible_child_name (modes), ==, mode);
    }

  /* A real model: the job gets as far as the device, fails there, and says so. */
  put_document (page);
  g_free (continue_fails (window, page, g_getenv ("ATELIER_TEST_LLAMA_CHAT"), job_says));
}

static void
case_no_model (AtelierApplication *app, GtkWidget *window, AtelierWritePage *page)
{
  GtkDropDown *models = GTK_DROP_DOWN (at_ui_find_type (GTK_WIDGET (page), GTK_TYPE_DROP_DOWN));
  ToastWait t = { window, "Choose a language model first" };
  GtkLabel *label;
  GtkWidget *button;

  g_assert_true (at_ui_wait_for (at_ui_store_open, app, 60));
  g_assert_true (at_ui_wait_for (at_ui_drawn, window, 30));
  g_assert_nonnull (models);
  g_assert_cmpuint (g_list_model_get_n_items (gtk_drop_down_get_model (models)), ==, 0);
  put_document (page);

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (page), "write.continue", NULL));
  /* Nothing starts: no job, nothing in the queue. */
  g_assert_null (atelier_write_page_get_job (page));
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (atelier_application_get_jobs (app))),
                    ==, 0);
  if (!at_ui_wait_for (toast_shown, &t, 20))
    g_error ("no toast starting \"%s\" after Continue with no model", t.prefix);
  label = at_ui_find_toast (window, t.prefix);
  g_test_message ("toast: %s", gtk_label_get_text (label));
  /* What to do: its button opens the model manager. */
  g_assert_nonnull (strstr (gtk_label_get_text (label), "model manager"));
  button = find_button_labelled (toast_of (label), "Models");
  g_assert_nonnull (button);
  g_assert_false (models_dialog_shown (NULL));
  g_signal_emit_by_name (button, "clicked");
  g_assert_true (at_ui_wait_for (models_dialog_shown, NULL, 20));
  close_models_dialogs ();
  assert_usable (page);
}

static void
case_bad_models (AtelierApplication *app, GtkWidget *window, AtelierWritePage *page)
{
  const char *tmp = at_test_tmpdir ();
  /* A name with markup's characters in it: toasts and job rows show it as it is. */
  g_autofree char *bad = g_build_filename (tmp, "bad & <odd>.gguf", NULL);
  g_autofree char *cut = g_build_filename (tmp, "tiny-llama-cut.gguf", NULL);
  g_autofree char *cut_chat = g_build_filename (tmp, "llama-chat-cut.gguf", NULL);
  g_autofree char *chat_bytes = NULL;
  g_autoptr (GBytes) tiny = at_test_tiny_llama_gguf ();
  g_autoptr (GError) error = NULL;
  guint8 garbage[4096];
  gsize chat_len;
  const char *const bad_says[] = { "bad & <odd>.gguf", "not a model file format", NULL };
  const char *const cut_says[] = { "tiny-llama-cut.gguf", "past the end of the file", NULL };
  const char *const cut_chat_says[] = { "llama-chat-cut.gguf", NULL };
  const char *good = g_getenv ("ATELIER_TEST_LLAMA_CHAT");
  AtelierJob *job;
  GtkTextIter a, b;
  g_autofree char *after = NULL, *expected = NULL;

  /* Garbage bytes; the tiny llama GGUF cut inside its tensor data; the real chat model cut
   * inside its metadata. */
  for (guint i = 0; i < sizeof garbage; i++)
    garbage[i] = (guint8) g_test_rand_int_range (0, 256);
  at_test_write_file (bad, garbage, sizeof garbage);
  at_test_write_file (cut, g_bytes_get_data (tiny, NULL), g_bytes_get_size (tiny) - 100);
  g_assert_true (g_file_get_contents (good, &chat_bytes, &chat_len, &error));
  g_assert_no_error (error);
  at_test_write_file (cut_chat, chat_bytes, 1000);

  g_assert_true (at_ui_wait_for (at_ui_store_open, app, 60));
  g_assert_true (at_ui_wait_for (at_ui_drawn, window, 30));
  put_document (page);
  g_free (continue_fails (window, page, bad, bad_says));
  g_free (continue_fails (window, page, cut, cut_says));
  g_free (continue_fails (window, page, cut_chat, cut_chat_says));

  /* The window recovers: the good model writes, and the proposal is accepted. */
  put_document (page);
  atelier_write_page_set_model (page, good);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (page), "write.continue", NULL));
  job = atelier_write_page_get_job (page);
  g_assert_true (at_ui_wait_for (at_ui_job_done, page, 120));
  if (atelier_job_get_error (job) != NULL)
    g_error ("the good model failed after the bad ones: %s", atelier_job_get_error (job)->message);
  g_assert_cmpint (atelier_job_get_state (job), ==, ATELIER_JOB_DONE);
  g_assert_true (atelier_write_page_has_proposal (page));
  g_assert_null (at_ui_find_label (GTK_WIDGET (page), STOPPED, NULL));
  g_assert_nonnull (at_ui_find_label (GTK_WIDGET (page), "Accept the proposal", NULL));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (page), "write.accept", NULL));
  gtk_text_buffer_get_bounds (atelier_write_page_get_buffer (page), &a, &b);
  after = gtk_text_buffer_get_text (atelier_write_page_get_buffer (page), &a, &b, FALSE);
  expected = g_strconcat (document, atelier_job_get_text (job), NULL);
  g_assert_cmpstr (after, ==, expected);
  assert_usable (page);
}

/* -- running a case -- */

static gboolean case_ran;

static void
activate_cb (GApplication *gapp, gpointer data)
{
  Case run = (Case) data;
  GtkWidget *window = GTK_WIDGET (gtk_application_get_active_window (GTK_APPLICATION (gapp)));
  AtelierWritePage *page;

  g_assert_true (ATELIER_IS_WINDOW (window));
  /* Toasts and the banner appear and go at once. Besides speed: libadwaita 1.2's toast overlay
   * frees a toast that is closed while it still slides in, and its show animation's "done"
   * handler then unrefs through the freed memory (a crash under MALLOC_PERTURB_). */
  g_object_set (gtk_settings_get_default (), "gtk-enable-animations", FALSE, NULL);
  page = ATELIER_WRITE_PAGE (at_ui_find_type (window, ATELIER_TYPE_WRITE_PAGE));
  g_assert_true (gtk_widget_activate_action (window, "win.mode", "s", "write"));
  run (ATELIER_APPLICATION (gapp), window, page);
  case_ran = TRUE;
  g_application_quit (gapp);
}

/* In the child: a fresh history, no model found on the machine, greedy and short. */
static void
run_case (Case run, const char *device)
{
  g_autofree char *data = g_build_filename (at_test_tmpdir (), "history", NULL);

  g_setenv ("ATELIER_DATA_DIR", data, TRUE);
  g_setenv ("ATELIER_HF_HUB_CACHE", "", TRUE);
  g_setenv ("ATELIER_LMSTUDIO_DIR", "", TRUE);
  g_setenv ("ATELIER_OLLAMA_DIR", "", TRUE);
  if (device != NULL)
    g_setenv ("ATELIER_DEVICE", device, TRUE);
  g_assert_nonnull (atelier_settings_get ());
  g_settings_set_string (atelier_settings_get (), "text-model", "");
  g_settings_set_strv (atelier_settings_get (), "model-folders", NULL);
  g_settings_set_double (atelier_settings_get (), "temperature", 0);
  g_settings_set_int (atelier_settings_get (), "max-tokens", 8);
  at_ui_run_app (G_CALLBACK (activate_cb), (gpointer) run);
  /* The case ran to its end, not just the application. */
  g_assert_true (case_ran);
}

/* In the parent: the tiny chat model (a byte-level tokenizer and a chat template), made once
 * and handed to the children in ATELIER_TEST_LLAMA_CHAT. FALSE after g_test_skip(). */
static gboolean
have_chat_model (void)
{
  g_autofree char *gguf = at_ui_tiny_llm ("llama_chat.gguf");

  if (gguf == NULL)
    return FALSE;
  g_setenv ("ATELIER_TEST_LLAMA_CHAT", gguf, TRUE);
  return TRUE;
}

static void
in_child (void)
{
  g_test_trap_subprocess (NULL, 240 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

static void
test_no_device (void)
{
  if (g_test_subprocess ())
    {
      run_case (case_no_device, "no-such-device-xyz");
      return;
    }
  /* The child's ATELIER_DEVICE names none of the devices there are; with no Vulkan at all the
   * messages would say something else (at_test_device fails under ATELIER_REQUIRE_VULKAN=1). */
  if (!at_ui_have_display () || !have_chat_model () || at_test_device () == NULL)
    return;
  in_child ();
}

static void
test_no_model (void)
{
  if (g_test_subprocess ())
    {
      run_case (case_no_model, NULL);
      return;
    }
  if (!at_ui_have_display ())
    return;
  in_child ();
}

static void
test_bad_models (void)
{
  if (g_test_subprocess ())
    {
      run_case (case_bad_models, NULL);
      return;
    }
  if (!at_ui_have_display () || !have_chat_model ())
    return;
  /* The good model must run at the end: no device here is a skip, not a pass. */
  if (at_test_device () == NULL)
    return;
  in_child ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ui/bad-input/no-device", test_no_device);
  g_test_add_func ("/ui/bad-input/no-model", test_no_model);
  g_test_add_func ("/ui/bad-input/bad-models", test_bad_models);
  return g_test_run ();
}
