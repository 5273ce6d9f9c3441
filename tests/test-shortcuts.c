/* test-shortcuts.c: the keyboard shortcuts of the real application under Xvfb.
 *
 * /ui/shortcuts/listed: every accelerator the application sets (its list in
 * ui/atelier-application.c, read back with gtk_application_list_action_descriptions) and every
 * shortcut the Write page declares (its global-scope GtkShortcutController) appears in the
 * shortcuts window (ui/gtk/help-overlay.ui as the window builds it), and the shortcuts window
 * lists nothing else but the editor's own Undo and Redo.
 *
 * The others press the keys as a person presses them: xdotool sends them through XTest to the
 * window that has the X input focus (given with `xdotool windowfocus`, as Xvfb runs no window
 * manager), and each key's effect on the window is awaited.
 * /ui/shortcuts/keys: the window's and the application's keys: Ctrl+1/2/3 (the mode), F9 (the
 *   history sidebar), Ctrl+F (the history search gets the focus), Ctrl+L (the prompt bar), typing into the editor,
 *   Ctrl+M (the model manager), Ctrl+? (the shortcuts window), Ctrl+comma (the preferences),
 *   Ctrl+Q (quits).
 * /ui/shortcuts/write-keys: the Write mode's, with no model: Ctrl+N (a new, empty document),
 *   Ctrl+Return and Ctrl+Shift+R (the toast asking for a model), Ctrl+O, Ctrl+S, Ctrl+Shift+S
 *   (a file chooser, cancelled with Escape).
 * /ui/shortcuts/assistant-keys: with the tiny chat model from tools/ref/tiny_llm.py and a Vulkan
 *   device: Ctrl+Return, Escape (stops the job), Ctrl+Return again, Alt+Return (accepts).
 * Needs xdotool (tools/install-deps.sh --test); skipped without it. */
#include <adwaita.h>
#include <gdk/x11/gdkx.h>
#include <string.h>

#include "at-test-util.h"
#include "at-ui-test-util.h"
#include "atelier-application.h"
#include "atelier-history-panel.h"
#include "atelier-models-dialog.h"
#include "atelier-settings.h"
#include "atelier-window.h"
#include "atelier-write-page.h"

static const char *document = "Once upon a time, in a small village by the sea,";
static char *chat_model; /* the tiny chat model's path, once made */

/* -- finding what the user sees -- */

/* A shown toplevel other than the main window, of `type`. */
static GtkWindow *
find_toplevel (GType type)
{
  GListModel *toplevels = gtk_window_get_toplevels (); /* not a new reference */

  for (guint i = 0; i < g_list_model_get_n_items (toplevels); i++)
    {
      g_autoptr (GtkWidget) w = g_list_model_get_item (toplevels, i);

      if (G_TYPE_CHECK_INSTANCE_TYPE (w, type) && gtk_widget_get_visible (w))
        return GTK_WINDOW (w);
    }
  return NULL;
}

/* -- the accelerators against the shortcuts window -- */

typedef struct
{
  guint key;
  GdkModifierType mods;
} Accel;

static Accel
parse_accel (const char *text)
{
  Accel a = { 0, 0 };

  g_assert_true (gtk_accelerator_parse (text, &a.key, &a.mods));
  a.key = gdk_keyval_to_lower (a.key);
  return a;
}

static gboolean
accel_in (GArray *accels, Accel a)
{
  for (guint i = 0; i < accels->len; i++)
    {
      Accel b = g_array_index (accels, Accel, i);

      if (b.key == a.key && b.mods == a.mods)
        return TRUE;
    }
  return FALSE;
}

/* Every "accelerator" of the overlay's GtkShortcutsShortcut widgets (each may hold several,
 * space-separated). */
static void
collect_listed (GtkWidget *w, GArray *listed, GPtrArray *texts)
{
  if (GTK_IS_SHORTCUTS_SHORTCUT (w))
    {
      g_autofree char *accelerator = NULL;
      g_auto (GStrv) each = NULL;

      g_object_get (w, "accelerator", &accelerator, NULL);
      each = g_strsplit (accelerator != NULL ? accelerator : "", " ", -1);
      for (guint i = 0; each[i] != NULL; i++)
        if (each[i][0] != '\0')
          {
            Accel a = parse_accel (each[i]);

            g_array_append_val (listed, a);
            g_ptr_array_add (texts, g_strdup (each[i]));
          }
    }
  for (GtkWidget *c = gtk_widget_get_first_child (w); c != NULL;
       c = gtk_widget_get_next_sibling (c))
    collect_listed (c, listed, texts);
}

static void
listed_activate_cb (GApplication *gapp, gpointer data)
{
  GtkApplication *app = GTK_APPLICATION (gapp);
  GtkWindow *window = gtk_application_get_active_window (app);
  GtkShortcutsWindow *overlay
      = gtk_application_window_get_help_overlay (GTK_APPLICATION_WINDOW (window));
  g_auto (GStrv) actions = gtk_application_list_action_descriptions (app);
  g_autoptr (GArray) listed = g_array_new (FALSE, FALSE, sizeof (Accel));
  g_autoptr (GArray) set = g_array_new (FALSE, FALSE, sizeof (Accel));
  g_autoptr (GPtrArray) texts = g_ptr_array_new_with_free_func (g_free);
  /* GtkTextView's own: in the shortcuts window for the writer, not set by the application. */
  const Accel builtin[] = { parse_accel ("<Control>z"), parse_accel ("<Control><Shift>z") };
  guint n_set = 0;

  g_assert_nonnull (overlay);
  collect_listed (GTK_WIDGET (overlay), listed, texts);
  g_assert_cmpuint (listed->len, >, 0);

  /* The application's accelerators: every one is in the shortcuts window. The list in
   * ui/atelier-application.c has 17 actions; fewer here means some were not set. */
  for (guint i = 0; actions[i] != NULL; i++)
    {
      g_auto (GStrv) accels = gtk_application_get_accels_for_action (app, actions[i]);

      for (guint j = 0; accels[j] != NULL; j++)
        {
          Accel a = parse_accel (accels[j]);

          g_test_message ("%s: %s", actions[i], accels[j]);
          if (!accel_in (listed, a))
            g_error ("%s (%s) is not in the shortcuts window (ui/gtk/help-overlay.ui)", accels[j],
                     actions[i]);
          g_array_append_val (set, a);
          n_set++;
        }
    }
  /* The Write mode's keys: its page's own shortcut controller. */
  {
    GtkWidget *page = at_ui_find_type (GTK_WIDGET (window), ATELIER_TYPE_WRITE_PAGE);
    g_autoptr (GListModel) controllers = NULL;
    guint n_page = 0;

    g_assert_nonnull (page);
    controllers = gtk_widget_observe_controllers (page);
    for (guint c = 0; c < g_list_model_get_n_items (controllers); c++)
      {
        g_autoptr (GObject) controller = g_list_model_get_item (controllers, c);

        if (!GTK_IS_SHORTCUT_CONTROLLER (controller))
          continue;
        for (guint i = 0; i < g_list_model_get_n_items (G_LIST_MODEL (controller)); i++)
          {
            g_autoptr (GtkShortcut) shortcut = g_list_model_get_item (G_LIST_MODEL (controller), i);
            g_autofree char *trigger = gtk_shortcut_trigger_to_string (gtk_shortcut_get_trigger (shortcut));
            Accel a = parse_accel (trigger);

            g_test_message ("write page: %s", trigger);
            if (!accel_in (listed, a))
              g_error ("%s (the Write page's) is not in the shortcuts window (ui/gtk/help-overlay.ui)", trigger);
            g_array_append_val (set, a);
            n_page++;
          }
      }
    /* new, open, save, save as, continue, rewrite, accept, stop */
    g_assert_cmpuint (n_page, ==, 8);
    n_set += n_page;
  }
  g_assert_cmpuint (g_strv_length (actions), >=, 9);
  g_assert_cmpuint (n_set, >=, 17);

  /* And the shortcuts window promises nothing the application does not set. */
  for (guint i = 0; i < listed->len; i++)
    {
      Accel a = g_array_index (listed, Accel, i);
      gboolean known = accel_in (set, a);

      for (guint k = 0; k < G_N_ELEMENTS (builtin); k++)
        known = known || (builtin[k].key == a.key && builtin[k].mods == a.mods);
      if (!known)
        g_error ("the shortcuts window lists %s, which nothing sets",
                 (const char *) g_ptr_array_index (texts, i));
    }
  *(gboolean *) data = TRUE;
  g_application_quit (gapp);
}

/* -- keys pressed as a person presses them -- */

typedef struct
{
  AtelierApplication *app;
  GtkWidget *window;
  AtelierWritePage *page;
  GtkTextView *editor;
  AdwViewStack *modes;
  GtkWidget *history;
  gulong xid;
  gboolean quit;
  gboolean ran;        /* the test's callback reached its end (or a TODO) */
  AtelierJob *old_job; /* the page's job before a key that starts one (a reference: a new job
                        * must not be taken for it at the same address) */
  const char *expect;  /* for the conditions that compare with a string */
} Keys;

static void
xdotool (const char *const *args)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *err = NULL;
  int status;

  g_ptr_array_add (argv, (gpointer) "xdotool");
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  if (!g_spawn_sync (NULL, (char **) argv->pdata, NULL,
                     G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err,
                     &status, &error)
      || !g_spawn_check_wait_status (status, &error))
    g_error ("xdotool %s: %s %s", args[0], error->message, err != NULL ? err : "");
}

static void
press (const char *keys)
{
  g_test_message ("key %s", keys);
  xdotool ((const char *[]){ "key", "--clearmodifiers", keys, NULL });
}

static void
type (const char *text)
{
  xdotool ((const char *[]){ "type", "--delay", "20", text, NULL });
}

static gboolean
mapped (gpointer widget)
{
  return gtk_widget_get_mapped (widget);
}

static gboolean
window_active (gpointer data)
{
  return gtk_window_is_active (GTK_WINDOW (((Keys *) data)->window));
}

/* The main window gets the X input focus, as a click on it would give it. */
static void
focus_window (Keys *k)
{
  g_autofree char *id = g_strdup_printf ("%lu", k->xid);

  xdotool ((const char *[]){ "windowfocus", "--sync", id, NULL });
  g_assert_true (at_ui_wait_for (window_active, k, 20));
}

static gboolean
mode_is (gpointer data)
{
  Keys *k = data;

  return g_strcmp0 (adw_view_stack_get_visible_child_name (k->modes), k->expect) == 0;
}

static gboolean
prompt_focused (gpointer data)
{
  Keys *k = data;
  GtkWidget *focus = gtk_root_get_focus (GTK_ROOT (k->window));
  GtkWidget *entry = focus != NULL ? gtk_widget_get_ancestor (focus, GTK_TYPE_ENTRY) : NULL;

  return entry != NULL
         && g_strcmp0 (gtk_entry_get_placeholder_text (GTK_ENTRY (entry)), "Ask the assistant about the document…") == 0;
}

static gboolean
sidebar_hidden (gpointer data)
{
  return !gtk_widget_get_visible (((Keys *) data)->history);
}

static gboolean
sidebar_shown (gpointer data)
{
  return gtk_widget_get_visible (((Keys *) data)->history);
}

static gboolean
search_focused (gpointer data)
{
  Keys *k = data;
  GtkWidget *focus = gtk_root_get_focus (GTK_ROOT (k->window));
  GtkWidget *entry = focus != NULL ? gtk_widget_get_ancestor (focus, GTK_TYPE_SEARCH_ENTRY) : NULL;

  return entry != NULL && gtk_widget_is_ancestor (entry, k->history);
}

static gboolean
buffer_is (gpointer data)
{
  Keys *k = data;
  GtkTextIter a, b;
  g_autofree char *text = NULL;

  gtk_text_buffer_get_bounds (atelier_write_page_get_buffer (k->page), &a, &b);
  text = gtk_text_buffer_get_text (atelier_write_page_get_buffer (k->page), &a, &b, FALSE);
  return g_strcmp0 (text, k->expect) == 0;
}

static GtkLabel *
find_toast (Keys *k)
{
  GtkWidget *overlay = at_ui_find_type (k->window, ADW_TYPE_TOAST_OVERLAY);

  return at_ui_find_label (overlay, k->expect, adw_toast_overlay_get_child (ADW_TOAST_OVERLAY (overlay)));
}

static gboolean
toast_shown (gpointer data)
{
  return find_toast (data) != NULL;
}

static gboolean
toast_gone (gpointer data)
{
  return find_toast (data) == NULL;
}

static gboolean
models_dialog_shown (gpointer data)
{
  return find_toplevel (ATELIER_TYPE_MODELS_DIALOG) != NULL;
}

static gboolean
shortcuts_shown (gpointer data)
{
  return find_toplevel (GTK_TYPE_SHORTCUTS_WINDOW) != NULL;
}

static gboolean
preferences_shown (gpointer data)
{
  return find_toplevel (ADW_TYPE_PREFERENCES_WINDOW) != NULL;
}

static gboolean
chooser_shown (gpointer data)
{
  return find_toplevel (GTK_TYPE_FILE_CHOOSER_DIALOG) != NULL;
}

/* The page has a job, and not the one it had before the key. */
static gboolean
job_started (gpointer data)
{
  Keys *k = data;
  AtelierJob *job = atelier_write_page_get_job (k->page);

  return job != NULL && job != k->old_job;
}

static gboolean
job_stopped (gpointer page)
{
  AtelierJob *job = atelier_write_page_get_job (page);

  return job != NULL && atelier_job_get_state (job) == ATELIER_JOB_CANCELLED;
}

static gboolean
quit_activated (gpointer data)
{
  return ((Keys *) data)->quit;
}

static void
quit_cb (GSimpleAction *action, GVariant *param, gpointer data)
{
  ((Keys *) data)->quit = TRUE;
}

/* Presses `keys` and waits for `cond`; `what` says what should have happened. */
static void
press_expect (Keys *k, const char *keys, AtUiCondition cond, gpointer data, const char *what)
{
  press (keys);
  if (!at_ui_wait_for (cond, data, 20))
    g_error ("%s: %s did not happen", keys, what);
}

/* Closes the toplevel of `type` that a key opened, and gives the main window the focus back. */
static void
close_toplevel (Keys *k, GType type)
{
  GtkWindow *shown = find_toplevel (type);

  g_assert_nonnull (shown);
  gtk_window_destroy (shown);
  g_assert_null (find_toplevel (type));
  focus_window (k);
}

static gboolean
chooser_gone (gpointer data)
{
  return find_toplevel (GTK_TYPE_FILE_CHOOSER_DIALOG) == NULL;
}

/* Cancels the file chooser as a person would, with Escape in it: destroying its window would
 * leave its GtkFileChooserNative waiting for an answer. */
static void
cancel_chooser (Keys *k)
{
  GtkWindow *chooser = find_toplevel (GTK_TYPE_FILE_CHOOSER_DIALOG);
  g_autofree char *id = NULL;

  g_assert_nonnull (chooser);
  id = g_strdup_printf (
      "%lu", (gulong) gdk_x11_surface_get_xid (gtk_native_get_surface (GTK_NATIVE (chooser))));
  xdotool ((const char *[]){ "windowfocus", "--sync", id, NULL });
  press ("Escape");
  g_assert_true (at_ui_wait_for (chooser_gone, NULL, 20));
  focus_window (k);
}

/* Closes the toast that says `k->expect` with its close button. */
static void
close_toast (Keys *k)
{
  GtkWidget *overlay = at_ui_find_type (k->window, ADW_TYPE_TOAST_OVERLAY);
  GtkWidget *toast = GTK_WIDGET (find_toast (k)), *close = NULL;

  while (gtk_widget_get_parent (toast) != overlay)
    toast = gtk_widget_get_parent (toast);
  for (GtkWidget *c = gtk_widget_get_first_child (toast); c != NULL;
       c = gtk_widget_get_next_sibling (c))
    if (GTK_IS_BUTTON (c) && gtk_actionable_get_action_name (GTK_ACTIONABLE (c)) == NULL)
      close = c;
  g_assert_nonnull (close);
  g_signal_emit_by_name (close, "clicked");
  g_assert_true (at_ui_wait_for (toast_gone, k, 20));
}

static void
press_mode (Keys *k, const char *keys, const char *mode)
{
  k->expect = mode;
  press_expect (k, keys, mode_is, k, mode);
}

/* Finds the window's parts, turns animations off (see test-window-bad-input.c: a toast closed
 * while it slides in crashes libadwaita 1.2), and gives the window the X input focus. */
static void
keys_setup (Keys *k, GApplication *gapp)
{
  GtkTextBuffer *buffer;
  GSimpleAction *quit;
  GdkSurface *surface;

  k->app = ATELIER_APPLICATION (gapp);
  k->window = GTK_WIDGET (gtk_application_get_active_window (GTK_APPLICATION (gapp)));
  k->page = ATELIER_WRITE_PAGE (at_ui_find_type (k->window, ATELIER_TYPE_WRITE_PAGE));
  k->modes = ADW_VIEW_STACK (at_ui_find_type (k->window, ADW_TYPE_VIEW_STACK));
  k->history = at_ui_find_type (k->window, ATELIER_TYPE_HISTORY_PANEL);
  buffer = atelier_write_page_get_buffer (k->page);
  k->editor = at_ui_find_editor (GTK_WIDGET (k->page), buffer);
  g_assert_nonnull (k->editor);
  g_assert_nonnull (k->history);
  g_object_set (gtk_settings_get_default (), "gtk-enable-animations", FALSE, NULL);
  quit = G_SIMPLE_ACTION (g_action_map_lookup_action (G_ACTION_MAP (gapp), "quit"));
  g_signal_connect_after (quit, "activate", G_CALLBACK (quit_cb), k);
  g_assert_true (at_ui_wait_for (mapped, k->window, 30));
  /* The window opens on the first mode; the editor must be on screen to take the focus. */
  g_assert_true (gtk_widget_activate_action (k->window, "win.mode", "s", "write"));
  surface = gtk_native_get_surface (GTK_NATIVE (k->window));
  g_assert_true (GDK_IS_X11_SURFACE (surface));
  k->xid = (gulong) gdk_x11_surface_get_xid (surface);
  focus_window (k);
}

/* The window's and the application's keys. */
static void
keys_activate_cb (GApplication *gapp, gpointer data)
{
  Keys *k = data;

  keys_setup (k, gapp);
  press_mode (k, "ctrl+1", "image");
  press_mode (k, "ctrl+3", "music");
  press_mode (k, "ctrl+2", "write");

  g_assert_true (sidebar_shown (k));
  press_expect (k, "F9", sidebar_hidden, k, "the history sidebar hides");
  press_expect (k, "F9", sidebar_shown, k, "the history sidebar shows");
  /* Ctrl+F shows the sidebar when it is hidden, and focuses its search. */
  press_expect (k, "F9", sidebar_hidden, k, "the history sidebar hides");
  press_expect (k, "ctrl+f", search_focused, k, "the history search gets the focus");
  g_assert_true (sidebar_shown (k));
  press_expect (k, "ctrl+l", prompt_focused, k, "the prompt bar gets the focus");

  /* The keys reach the editor too: typing lands in the document. */
  g_assert_true (gtk_widget_grab_focus (GTK_WIDGET (k->editor)));
  type ("draft");
  k->expect = "draft";
  g_assert_true (at_ui_wait_for (buffer_is, k, 20));

  press_expect (k, "ctrl+m", models_dialog_shown, NULL, "the model manager opens");
  close_toplevel (k, ATELIER_TYPE_MODELS_DIALOG);
  press_expect (k, "ctrl+question", shortcuts_shown, NULL, "the shortcuts window opens");
  close_toplevel (k, GTK_TYPE_SHORTCUTS_WINDOW);
  press_expect (k, "ctrl+comma", preferences_shown, NULL, "the preferences open");
  close_toplevel (k, ADW_TYPE_PREFERENCES_WINDOW);

  /* Ctrl+Q quits: g_application_run returns once this handler does. */
  press_expect (k, "ctrl+q", quit_activated, k, "the application quits");
}

/* The Write mode's keys, with no model: a new document, Continue and Rewrite (their toast), the
 * file choosers. */
static void
write_keys_activate_cb (GApplication *gapp, gpointer data)
{
  Keys *k = data;

  keys_setup (k, gapp);
  g_assert_true (gtk_widget_grab_focus (GTK_WIDGET (k->editor)));
  type ("draft");
  k->expect = "draft";
  g_assert_true (at_ui_wait_for (buffer_is, k, 20));
  k->expect = "";
  press_expect (k, "ctrl+n", buffer_is, k, "a new, empty document");
  type ("draft");
  k->expect = "Choose a language model first";
  press_expect (k, "ctrl+Return", toast_shown, k, "Continue's toast asking for a model");
  close_toast (k);
  press_expect (k, "ctrl+shift+r", toast_shown, k, "Rewrite's toast asking for a model");
  close_toast (k);
  g_assert_null (atelier_write_page_get_job (k->page));
  for (guint i = 0; i < 3; i++)
    {
      const char *keys = (const char *[]){ "ctrl+o", "ctrl+s", "ctrl+shift+s" }[i];

      g_assert_true (gtk_widget_grab_focus (GTK_WIDGET (k->editor)));
      press_expect (k, keys, chooser_shown, NULL, "a file chooser opens");
      cancel_chooser (k);
    }
  k->ran = TRUE;
  g_application_quit (gapp);
}

/* A job that holds the queue until released, so the next one waits in it. */
typedef struct
{
  GMutex lock;
  GCond cond;
  gboolean released;
} Blocker;

static gboolean
blocker_run (AtelierJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  Blocker *b = data;

  g_mutex_lock (&b->lock);
  while (!b->released)
    g_cond_wait (&b->cond, &b->lock);
  g_mutex_unlock (&b->lock);
  return TRUE;
}

static void
blocker_release (Blocker *b)
{
  g_mutex_lock (&b->lock);
  b->released = TRUE;
  g_cond_signal (&b->cond);
  g_mutex_unlock (&b->lock);
}

static gboolean
job_running (gpointer job)
{
  return atelier_job_get_state (job) == ATELIER_JOB_RUNNING;
}

static gboolean
job_finished (gpointer job)
{
  return atelier_job_is_finished (job);
}

/* The assistant's keys with the chat model: Continue (Ctrl+Return) and Stop (Escape) while it
 * waits in the queue behind another job (the tiny model writes ~400 tokens/s, faster than a key
 * can stop it), then Continue to the end and Accept (Alt+Return). */
static void
assistant_keys_activate_cb (GApplication *gapp, gpointer data)
{
  Keys *k = data;
  Blocker b = { 0 };
  g_autoptr (AtelierJob) blocker = atelier_job_new ("Blocker", blocker_run, &b, NULL);
  GtkTextBuffer *buffer;
  AtelierJob *job;
  GtkTextIter end;
  g_autofree char *expected = NULL;

  keys_setup (k, gapp);
  buffer = atelier_write_page_get_buffer (k->page);
  gtk_text_buffer_set_text (buffer, document, -1);
  gtk_text_buffer_get_end_iter (buffer, &end);
  gtk_text_buffer_place_cursor (buffer, &end);
  atelier_write_page_set_model (k->page, chat_model);
  g_assert_true (gtk_widget_grab_focus (GTK_WIDGET (k->editor)));

  g_mutex_init (&b.lock);
  g_cond_init (&b.cond);
  atelier_job_queue_push (atelier_application_get_jobs (k->app), blocker);
  g_assert_true (at_ui_wait_for (job_running, blocker, 20));
  press_expect (k, "ctrl+Return", job_started, k, "Continue queues a job");
  job = atelier_write_page_get_job (k->page);
  g_assert_cmpint (atelier_job_get_state (job), ==, ATELIER_JOB_QUEUED);
  g_assert_false (gtk_text_view_get_editable (k->editor));
  /* New stays enabled (its button keeps still when a job starts) but refuses, and says why. */
  k->expect = "Stop the running proposal first";
  press_expect (k, "ctrl+n", toast_shown, k, "New under a running proposal says to stop it");
  k->expect = document;
  g_assert_true (buffer_is (k));
  press_expect (k, "Escape", job_stopped, k->page, "Stop cancels the waiting job");
  blocker_release (&b);
  g_assert_true (at_ui_wait_for (job_finished, blocker, 20));
  g_assert_false (atelier_write_page_has_proposal (k->page));
  g_assert_true (gtk_text_view_get_editable (k->editor));
  /* Stopped on purpose: said in the status line, and no toast about a failure. */
  g_assert_nonnull (at_ui_find_label (k->window, "Stopped before any text came.", NULL));
  k->expect = "The assistant stopped";
  g_assert_null (find_toast (k));

  /* Again, to the end this time: the proposal, then Accept. */
  k->old_job = g_object_ref (job);
  press_expect (k, "ctrl+Return", job_started, k, "Continue starts a job");
  job = atelier_write_page_get_job (k->page);
  g_assert_true (at_ui_wait_for (job_finished, job, 120));
  if (atelier_job_get_error (job) != NULL)
    g_error ("Continue failed: %s", atelier_job_get_error (job)->message);
  g_assert_cmpint (atelier_job_get_state (job), ==, ATELIER_JOB_DONE);
  g_assert_true (atelier_write_page_has_proposal (k->page));
  expected = g_strconcat (document, atelier_job_get_text (job), NULL);
  k->expect = expected;
  press_expect (k, "alt+Return", buffer_is, k,
                           "Accept puts the proposal in the document");
  g_assert_false (atelier_write_page_has_proposal (k->page));
  g_clear_object (&k->old_job);
  blocker_release (&b);
  g_assert_true (at_ui_wait_for (job_finished, blocker, 20));
  g_mutex_clear (&b.lock);
  g_cond_clear (&b.cond);
  k->ran = TRUE;
  g_application_quit (gapp);
}

/* -- running the application -- */


/* xdotool and an X display (XTest): FALSE after g_test_skip(). */
static gboolean
have_xdotool (void)
{
  g_autofree char *path = g_find_program_in_path ("xdotool");

  if (!at_ui_have_display ())
    return FALSE;
  if (g_getenv ("DISPLAY") == NULL)
    {
      g_test_skip ("keys are sent through X11's XTest; this display is not X11");
      return FALSE;
    }
  if (path == NULL)
    {
      g_test_skip ("xdotool is missing (tools/install-deps.sh --test installs it)");
      return FALSE;
    }
  return TRUE;
}

/* The tiny chat model (tools/ref/tiny_llm.py) in `chat_model`; FALSE after g_test_skip(). */
static gboolean
have_chat_model (void)
{
  g_autofree char *gguf = at_ui_tiny_llm ("llama_chat.gguf");

  if (gguf == NULL)
    return FALSE;
  g_free (chat_model);
  chat_model = g_steal_pointer (&gguf);
  return TRUE;
}

static void
test_listed (void)
{
  gboolean ran = FALSE;

  if (!at_ui_have_display ())
    return;
  at_ui_run_app (G_CALLBACK (listed_activate_cb), &ran);
  g_assert_true (ran);
}

static void
test_keys (void)
{
  Keys k = { 0 };

  if (!have_xdotool ())
    return;
  at_ui_run_app (G_CALLBACK (keys_activate_cb), &k);
  g_assert_true (k.quit);
}

static void
test_write_keys (void)
{
  Keys k = { 0 };

  if (!have_xdotool ())
    return;
  at_ui_run_app (G_CALLBACK (write_keys_activate_cb), &k);
  g_assert_true (k.ran);
}

static void
test_assistant_keys (void)
{
  Keys k = { 0 };

  if (!have_xdotool () || !have_chat_model () || at_test_device () == NULL)
    return;
  g_settings_set_int (atelier_settings_get (), "max-tokens", 24);
  at_ui_run_app (G_CALLBACK (assistant_keys_activate_cb), &k);
  g_assert_true (k.ran);
}

/* The shortcuts window has two pages (ui/gtk/help-overlay.ui: max-height 12), and GTK 4.8 with
 * libadwaita 1.2's style sizes the labels "1" and "2" of its page buttons at -3 pixels, with a
 * warning. That one warning is not the test's business (it is dropped here); every other goes
 * to GLib's writer, which keeps warnings fatal. */
static GLogWriterOutput
log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
  const char *domain = NULL, *message = NULL;

  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0)
      domain = fields[i].value;
    else if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
      message = fields[i].value;
  if (g_strcmp0 (domain, "Gtk") == 0 && message != NULL && g_str_has_prefix (message, "GtkLabel ")
      && strstr (message, "reported min width -") != NULL)
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (level, fields, n_fields, data);
}

int
main (int argc, char **argv)
{
  g_autofree char *data = NULL;

  g_test_init (&argc, &argv, NULL);
  g_log_set_writer_func (log_writer, NULL, NULL);
  /* Before any thread: a fresh history, no model found on the machine, greedy writing. */
  data = g_build_filename (at_test_tmpdir (), "history", NULL);
  g_setenv ("ATELIER_DATA_DIR", data, TRUE);
  g_setenv ("ATELIER_HF_HUB_CACHE", "", TRUE);
  g_setenv ("ATELIER_LMSTUDIO_DIR", "", TRUE);
  g_setenv ("ATELIER_OLLAMA_DIR", "", TRUE);
  if (atelier_settings_get () != NULL)
    {
      g_settings_set_string (atelier_settings_get (), "text-model", "");
      g_settings_set_double (atelier_settings_get (), "temperature", 0);
    }
  g_test_add_func ("/ui/shortcuts/listed", test_listed);
  g_test_add_func ("/ui/shortcuts/keys", test_keys);
  g_test_add_func ("/ui/shortcuts/write-keys", test_write_keys);
  g_test_add_func ("/ui/shortcuts/assistant-keys", test_assistant_keys);
  return g_test_run ();
}
