/* test-write-e2e.c: the real application, as a writer would use it. Under Xvfb it opens the
 * window, picks the tiny Llama from tools/ref/tiny_llm.py as the language model, types a
 * document, runs Continue through the real job queue (the text streams into the proposal),
 * accepts it (one undoable edit), finds the proposal in the history as a variant of the
 * document state it came from, asks two questions in the chat (the second carries the first
 * turn, as the history's record of it shows), and saves a screenshot of the window
 * (write-e2e-proposal.png, write-e2e-accepted.png and write-e2e-dark.png in
 * $ATELIER_SCREENSHOT_DIR, else $G_TEST_BUILDDIR). Needs a Vulkan device and
 * python3-torch (skipped without them). */
#include <adwaita.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "at-test-util.h"
#include "at-ui-test-util.h"
#include "atelier-application.h"
#include "atelier-history-panel.h"
#include "atelier-settings.h"
#include "atelier-window.h"
#include "atelier-write-page.h"

static const char *model_path;
static const char *document = "Once upon a time, in a small village by the sea,";

static gboolean
recorded (gpointer page)
{
  return atelier_write_page_get_last_recorded (page) > 0;
}

static gboolean
history_shows_two (gpointer panel)
{
  return atelier_history_panel_is_idle (panel) && atelier_history_panel_get_n_rows (panel) >= 2;
}

static gint64 recorded_before;

static AtelierStore *the_store;

/* The sidebar shows exactly the store's newest items, in order (its refreshes add rows on
 * top rather than rebuilding the list: this checks they add the right ones). */
static gboolean
history_matches_store (gpointer panel)
{
  AtelierQuery query = ATELIER_QUERY_INIT;
  g_autoptr (GPtrArray) items = NULL;
  GtkWidget *list = at_ui_find_type (panel, GTK_TYPE_LIST_BOX);
  guint i = 0;

  if (!atelier_history_panel_is_idle (panel))
    return FALSE;
  query.limit = 100;
  items = atelier_store_find (the_store, &query, NULL);
  g_assert_nonnull (items);
  for (GtkWidget *c = gtk_widget_get_first_child (list); c != NULL; c = gtk_widget_get_next_sibling (c))
    {
      if (!GTK_IS_LIST_BOX_ROW (c))
        continue;
      if (i >= items->len
          || (gint64) GPOINTER_TO_SIZE (g_object_get_data (G_OBJECT (c), "item-id"))
               != ((AtelierItem *) g_ptr_array_index (items, i))->id)
        return FALSE;
      i++;
    }
  return i == items->len;
}

static gint64 starred_id;

static gboolean
starred_in_store (gpointer data)
{
  g_autoptr (AtelierItem) item = atelier_store_get (the_store, starred_id, NULL);

  return item != NULL && item->favourite;
}

static gboolean
is_toggle (GtkWidget *w, gconstpointer data)
{
  return GTK_IS_TOGGLE_BUTTON (w);
}

static gboolean
prompt_is_second_question (gpointer entry)
{
  return g_strcmp0 (gtk_editable_get_text (entry), "And who lives there?") == 0;
}

static gboolean
recorded_again (gpointer page)
{
  return atelier_write_page_get_last_recorded (page) > recorded_before;
}

#define PROMPT_PLACEHOLDER "Ask the assistant about the document…"

/* Asks `question` as a person does, typed into the window's prompt bar and sent with Enter;
 * waits for the answer, discards it (into the history), and returns the history item the
 * discarded answer became. */
static AtelierItem *
ask (GtkWidget *window, AtelierWritePage *page, AtelierStore *store, const char *question, char **answer)
{
  GtkEditable *entry = at_ui_find_entry (window, PROMPT_PLACEHOLDER);
  AtelierJob *job;

  g_assert_nonnull (entry);
  gtk_editable_set_text (entry, question);
  g_signal_emit_by_name (entry, "activate");
  /* Sent: the question leaves the bar and the job runs. */
  g_assert_cmpstr (gtk_editable_get_text (entry), ==, "");
  g_assert_nonnull (atelier_write_page_get_job (page));
  g_assert_true (at_ui_wait_for (at_ui_job_done, page, 240));
  job = atelier_write_page_get_job (page);
  if (atelier_job_get_error (job) != NULL)
    g_error ("the question failed: %s", atelier_job_get_error (job)->message);
  *answer = g_strdup (atelier_job_get_text (job));
  recorded_before = atelier_write_page_get_last_recorded (page);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (page), "write.discard", NULL));
  g_assert_true (at_ui_wait_for (recorded_again, page, 60));
  return atelier_store_get (store, atelier_write_page_get_last_recorded (page), NULL);
}

/* A recorded question's earlier turns (its "conversation" asset), or NULL without one. */
static JsonArray *
asked_turns (const AtelierItem *item)
{
  const AtelierAsset *asset = atelier_item_get_asset (item, "conversation");
  g_autoptr (JsonParser) parser = json_parser_new ();

  if (asset == NULL)
    return NULL;
  g_assert_cmpstr (asset->media_type, ==, "application/json");
  g_assert_true (json_parser_load_from_file (parser, asset->path, NULL));
  g_assert_true (JSON_NODE_HOLDS_ARRAY (json_parser_get_root (parser)));
  return json_array_ref (json_node_get_array (json_parser_get_root (parser)));
}

static const char *
message_part (JsonArray *messages, guint i, const char *member)
{
  return json_object_get_string_member (json_array_get_object_element (messages, i), member);
}

static gint64
param_int (const AtelierItem *item, const char *name)
{
  g_autoptr (JsonNode) params = json_from_string (item->params_json, NULL);

  return json_object_get_int_member_with_default (json_node_get_object (params), name, -1);
}

/* Mapped, then a few frames, so what changed last is laid out and drawn. */
static void
settle (GtkWidget *window)
{
  g_assert_true (at_ui_wait_for (at_ui_drawn, window, 30));
  for (int i = 0; i < 20; i++)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (10000);
    }
}

static void
save_screenshot (GtkWidget *window, const char *name)
{
  g_autoptr (GdkPaintable) paintable = gtk_widget_paintable_new (window);
  g_autoptr (GtkSnapshot) snapshot = gtk_snapshot_new ();
  g_autoptr (GskRenderNode) node = NULL;
  g_autoptr (GdkTexture) texture = NULL;
  const char *dir = g_getenv ("ATELIER_SCREENSHOT_DIR") != NULL ? g_getenv ("ATELIER_SCREENSHOT_DIR")
                                                                 : g_getenv ("G_TEST_BUILDDIR");
  g_autofree char *path = g_build_filename (dir != NULL ? dir : ".", name, NULL);
  int w, h;

  settle (window);
  w = gtk_widget_get_width (window);
  h = gtk_widget_get_height (window);
  gdk_paintable_snapshot (paintable, snapshot, w, h);
  node = gtk_snapshot_free_to_node (g_steal_pointer (&snapshot));
  g_assert_nonnull (node);
  texture = gsk_renderer_render_texture (gtk_native_get_renderer (GTK_NATIVE (window)), node,
                                         &GRAPHENE_RECT_INIT (0, 0, w, h));
  g_assert_true (gdk_texture_save_to_png (texture, path));
  g_test_message ("screenshot: %s (%dx%d)", path, w, h);
}

static void
activate_cb (GApplication *gapp, gpointer data)
{
  AtelierApplication *app = ATELIER_APPLICATION (gapp);
  GtkWidget *window;
  AtelierWritePage *page = at_ui_active_page (gapp, &window);
  AtelierHistoryPanel *panel = ATELIER_HISTORY_PANEL (at_ui_find_type (window, ATELIER_TYPE_HISTORY_PANEL));
  GtkTextBuffer *buffer = atelier_write_page_get_buffer (page);
  AtelierStore *store;
  AtelierJob *job;
  GtkTextIter a, b;
  g_autofree char *proposal = NULL, *after = NULL, *undone = NULL;
  g_autoptr (AtelierItem) item = NULL, parent = NULL;
  g_autoptr (JsonNode) params = NULL;
  const char *streamed;
  GtkEditable *prompt_entry;

  g_assert_true (at_ui_wait_for (at_ui_store_open, app, 60));
  store = atelier_application_get_store (app);
  g_assert_nonnull (store);

  gtk_widget_activate_action (window, "win.mode", "s", "write");
  atelier_write_page_set_model (page, model_path);
  gtk_text_buffer_set_text (buffer, document, -1);
  gtk_text_buffer_get_end_iter (buffer, &a);
  gtk_text_buffer_place_cursor (buffer, &a);

  /* As a person would: the window is on screen before they ask for anything (the first frame
   * of a software-rendered window would otherwise fall inside the job's latency figures). */
  settle (window);

  /* Continue, as Ctrl+Return would. While it runs, the editor is frozen and Stop is on. */
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (page), "write.continue", NULL));
  job = atelier_write_page_get_job (page);
  g_assert_nonnull (job);
  g_assert_false (atelier_job_is_finished (job));
  g_assert_true (at_ui_wait_for (at_ui_job_done, page, 240));
  if (atelier_job_get_error (job) != NULL)
    g_error ("the job failed: %s", atelier_job_get_error (job)->message);
  g_assert_cmpint (atelier_job_get_state (job), ==, ATELIER_JOB_DONE);
  g_assert_true (atelier_write_page_has_proposal (page));
  streamed = atelier_job_get_text (job);
  g_assert_cmpuint (strlen (streamed), >, 0);

  save_screenshot (window, "write-e2e-proposal.png");

  /* Accept: the proposal lands after the cursor as one undoable edit. */
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (page), "write.accept", NULL));
  g_assert_false (atelier_write_page_has_proposal (page));
  gtk_text_buffer_get_bounds (buffer, &a, &b);
  after = gtk_text_buffer_get_text (buffer, &a, &b, FALSE);
  proposal = g_strconcat (document, streamed, NULL);
  g_assert_cmpstr (after, ==, proposal);
  g_assert_true (gtk_text_buffer_get_can_undo (buffer));
  gtk_text_buffer_undo (buffer);
  gtk_text_buffer_get_bounds (buffer, &a, &b);
  undone = gtk_text_buffer_get_text (buffer, &a, &b, FALSE);
  g_assert_cmpstr (undone, ==, document);
  gtk_text_buffer_redo (buffer);

  /* The history: the accepted proposal, a child of the document state it came from. */
  g_assert_true (at_ui_wait_for (recorded, page, 60));
  item = atelier_store_get (store, atelier_write_page_get_last_recorded (page), NULL);
  g_assert_nonnull (item);
  g_assert_cmpint (item->kind, ==, ATELIER_ITEM_TEXT);
  params = json_from_string (item->params_json, NULL);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (params), "outcome"), ==, "accepted");
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (params), "action"), ==, "continue");
  g_assert_cmpstr (item->model_path, ==, model_path);
  g_assert_cmpint (item->parent_id, >, 0);
  parent = atelier_store_get (store, item->parent_id, NULL);
  g_assert_nonnull (parent);
  g_assert_true (g_str_has_prefix (parent->preview, "Once upon a time"));
  g_assert_true (at_ui_wait_for (history_shows_two, panel, 30));

  save_screenshot (window, "write-e2e-accepted.png");

  /* The chat: a question, then a follow-up that carries the first turn. */
  {
    g_autofree char *first = NULL, *second = NULL;
    g_autoptr (AtelierItem) q1 = ask (window, page, store, "Where does the story take place?", &first);
    g_autoptr (AtelierItem) q2 = ask (window, page, store, "And who lives there?", &second);
    g_autoptr (JsonArray) t1 = asked_turns (q1);
    g_autoptr (JsonArray) t2 = asked_turns (q2);

    /* The first question has no earlier turns; the second carries the first, all of it sent. */
    g_assert_cmpstr (q1->prompt, ==, "Where does the story take place?");
    g_assert_null (t1);
    g_assert_cmpint (param_int (q1, "turns_sent"), ==, 0);
    g_assert_cmpstr (q2->prompt, ==, "And who lives there?");
    g_assert_nonnull (t2);
    g_assert_cmpuint (json_array_get_length (t2), ==, 2);
    g_assert_cmpstr (message_part (t2, 0, "role"), ==, "user");
    g_assert_cmpstr (message_part (t2, 0, "content"), ==, "Where does the story take place?");
    g_assert_cmpstr (message_part (t2, 1, "role"), ==, "assistant");
    g_assert_cmpstr (message_part (t2, 1, "content"), ==, first);
    g_assert_cmpint (param_int (q2, "turns"), ==, 1);
    g_assert_cmpint (param_int (q2, "turns_sent"), ==, 1);
    g_assert_cmpint (q2->parent_id, >, 0);
    /* A discarded answer leaves the document as it was. */
    gtk_text_buffer_get_bounds (buffer, &a, &b);
    g_free (after);
    after = gtk_text_buffer_get_text (buffer, &a, &b, FALSE);
    g_assert_cmpstr (after, ==, proposal);
    the_store = store;
    g_assert_true (at_ui_wait_for (history_matches_store, panel, 30));
    g_assert_cmpuint (atelier_history_panel_get_n_rows (panel), ==, 5);
    /* The star on the newest row (the second question) marks it a favourite in the store. */
    {
      GtkWidget *row = GTK_WIDGET (gtk_list_box_get_row_at_index (
        GTK_LIST_BOX (at_ui_find_type (GTK_WIDGET (panel), GTK_TYPE_LIST_BOX)), 0));

      starred_id = (gint64) GPOINTER_TO_SIZE (g_object_get_data (G_OBJECT (row), "item-id"));
      g_assert_cmpint (starred_id, ==, q2->id);
      gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (at_ui_find (row, is_toggle, NULL, NULL)), TRUE);
      g_assert_true (at_ui_wait_for (starred_in_store, NULL, 30));
    }
    save_screenshot (window, "write-e2e-chat.png");

    /* Choosing the second question in the history puts it back in the prompt bar. */
    g_signal_emit_by_name (panel, "item-activated", q2->id);
    prompt_entry = at_ui_find_entry (window, PROMPT_PLACEHOLDER);
    g_assert_true (at_ui_wait_for (prompt_is_second_question, prompt_entry, 30));
  }
  /* The dark style, to look at: every colour the window sets must read on both. */
  adw_style_manager_set_color_scheme (adw_style_manager_get_default (), ADW_COLOR_SCHEME_FORCE_DARK);
  save_screenshot (window, "write-e2e-dark.png");
  g_application_quit (gapp);
}

static void
test_write_continue_accept (void)
{
  g_autofree char *gguf = NULL;
  g_autofree char *data = g_build_filename (at_test_tmpdir (), "history", NULL);

  if (!at_ui_have_display ())
    return;
  if (at_test_device () == NULL)
    return;
  /* The chat model with a 1,024-token window: the questions' recipe needs more than 128. */
  if ((gguf = at_ui_tiny_llm ("llama_chat_1k.gguf")) == NULL)
    return;
  model_path = gguf;
  g_setenv ("ATELIER_DATA_DIR", data, TRUE);
  /* Greedy, short: the test checks the plumbing; the generation itself is checked against
   * PyTorch in test-complete-text. The suite's settings live in memory. */
  g_assert_nonnull (atelier_settings_get ());
  g_settings_set_double (atelier_settings_get (), "temperature", 0);
  g_settings_set_int (atelier_settings_get (), "max-tokens", 24);
  at_ui_run_app (G_CALLBACK (activate_cb), NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ui/write/continue-accept", test_write_continue_accept);
  return g_test_run ();
}
