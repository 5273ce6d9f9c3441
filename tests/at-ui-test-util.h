/* at-ui-test-util.h: helpers for the window tests under Xvfb: finding widgets in the real
 * widget tree (as a person finds them on screen: by type, text, action), and turning the main
 * loop until something holds. */
#pragma once

#include <adwaita.h>

#include "atelier-application.h"
#include "atelier-write-page.h"

G_BEGIN_DECLS

/* TRUE when `w` is what is looked for. */
typedef gboolean (*AtUiMatch) (GtkWidget *w, gconstpointer data);

/* The first widget under `root` (itself included, depth first) that `match` accepts, leaving
 * out `skip` and what is under it (NULL: nothing left out). */
GtkWidget *at_ui_find (GtkWidget *root, AtUiMatch match, gconstpointer data, GtkWidget *skip);
GtkWidget *at_ui_find_type (GtkWidget *root, GType type);
/* The active window of `app` (into `window`) and its Write page. */
AtelierWritePage *at_ui_active_page (GApplication *app, GtkWidget **window);
/* A label whose text starts with `prefix`. */
GtkLabel *at_ui_find_label (GtkWidget *root, const char *prefix, GtkWidget *skip);
/* A button bound to `action` ("write.continue"). */
GtkWidget *at_ui_find_action_button (GtkWidget *root, const char *action);
/* The text view showing `buffer`. */
GtkTextView *at_ui_find_editor (GtkWidget *root, GtkTextBuffer *buffer);
/* An entry whose placeholder is `placeholder`. */
GtkEditable *at_ui_find_entry (GtkWidget *root, const char *placeholder);
/* A toast on screen whose text starts with `prefix`: a label inside the window's toast overlay
 * but not inside its content. */
GtkLabel *at_ui_find_toast (GtkWidget *window, const char *prefix);

typedef gboolean (*AtUiCondition) (gpointer data);

/* Turns the main loop until `cond` holds, at most `seconds`; jobs' callbacks run meanwhile.
 * Returns whether it holds. */
gboolean at_ui_wait_for (AtUiCondition cond, gpointer data, int seconds);

/* Conditions: the application's history opened (or failed to), the write page's job ended, the
 * window on screen. */
gboolean at_ui_store_open (gpointer app);
gboolean at_ui_job_done (gpointer page);
gboolean at_ui_drawn (gpointer window);

/* Runs a new AtelierApplication (not unique, no arguments) with `activate` connected after its
 * own "activate" handler, and asserts that it ends with status 0. */
void at_ui_run_app (GCallback activate, gpointer data);

/* tools/ref/tiny_llm.py's model file `name` ("llama_chat.gguf"), the models made once in the
 * test's temporary folder; NULL after g_test_skip() (no python3-torch). */
char *at_ui_tiny_llm (const char *name);

/* TRUE with a display; FALSE after g_test_skip() without one. */
gboolean at_ui_have_display (void);

G_END_DECLS
