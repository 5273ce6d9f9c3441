/* atelier-history-panel.c: the history sidebar. Queries go through the store's _async calls
 * (a worker thread and a pooled read connection); a newer query cancels the one before, so
 * typing fast never shows stale results. Rows are built for at most one page of results. */
#include "config.h"

#include "atelier-history-panel.h"

#include <glib/gi18n.h>

#define PAGE_SIZE 100

struct _AtelierHistoryPanel
{
  GtkBox parent_instance;

  AtelierStore *store;
  GtkSearchEntry *search;
  GtkDropDown *kind;
  GtkToggleButton *favourites;
  GtkListBox *list;
  GtkStack *stack;
  AdwStatusPage *empty;
  GtkWidget *variants_bar;
  GtkLabel *variants_label;
  GCancellable *query;
  gint64 tree_root; /* > 0: showing this item's variants */
  gboolean idle;
  guint n_rows;
};

G_DEFINE_FINAL_TYPE (AtelierHistoryPanel, atelier_history_panel, GTK_TYPE_BOX)

enum
{
  ITEM_ACTIVATED,
  N_SIGNALS,
};

static guint signals[N_SIGNALS];

static void run_query (AtelierHistoryPanel *self);

static const char *
kind_icon (AtelierItemKind kind)
{
  switch (kind)
    {
    case ATELIER_ITEM_IMAGE:
    case ATELIER_ITEM_STYLE:
      return "image-x-generic-symbolic";
    case ATELIER_ITEM_MELODY:
      return "audio-x-generic-symbolic";
    case ATELIER_ITEM_TEXT:
    default:
      return "document-edit-symbolic";
    }
}

/* The row's title: the prompt (an action's instruction, a document's title), else the preview. */
static char *
item_title (const AtelierItem *item)
{
  const char *t = item->prompt != NULL && item->prompt[0] != '\0' ? item->prompt : item->preview;
  g_autofree char *line = g_strdup (t != NULL ? t : "");
  char *nl = strchr (line, '\n');

  if (nl != NULL)
    *nl = '\0';
  if (g_utf8_strlen (line, -1) > 60)
    {
      g_autofree char *cut = g_utf8_substring (line, 0, 59);
      return g_strconcat (cut, "…", NULL);
    }
  return g_steal_pointer (&line);
}

static char *
item_subtitle (const AtelierItem *item)
{
  g_autoptr (GDateTime) t = g_date_time_new_from_unix_local (item->created_us / G_USEC_PER_SEC);
  g_autofree char *when = t != NULL ? g_date_time_format (t, "%x %H:%M") : g_strdup ("");
  g_autofree char *model = item->model_path != NULL ? g_path_get_basename (item->model_path) : NULL;
  g_autofree char *preview = NULL;
  GString *s = g_string_new (when);

  if (model != NULL)
    g_string_append_printf (s, " · %s", model);
  if (item->missing)
    g_string_append_printf (s, " · %s", _("file missing"));
  if (item->preview != NULL && item->prompt != NULL && item->prompt[0] != '\0')
    {
      preview = g_utf8_substring (item->preview, 0, MIN (g_utf8_strlen (item->preview, -1), 80));
      g_strdelimit (preview, "\n", ' ');
      g_string_append_printf (s, "\n%s", preview);
    }
  {
    g_autofree char *plain = g_string_free (s, FALSE);

    return g_markup_escape_text (plain, -1);
  }
}

typedef struct
{
  AtelierStore *store;
  gint64 id;
  gboolean on;
} Favourite;

static void
favourite_free (Favourite *f)
{
  atelier_store_unref (f->store);
  g_free (f);
}

static void
favourite_worker (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  Favourite *f = data;
  GError *error = NULL;

  if (atelier_store_set_favourite (f->store, f->id, f->on, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
favourite_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    g_warning ("history: %s", error->message);
}

static void
favourite_toggled_cb (GtkToggleButton *button, gpointer user_data)
{
  AtelierHistoryPanel *self = user_data;
  gboolean on = gtk_toggle_button_get_active (button);
  g_autoptr (GTask) task = NULL;
  Favourite *f;

  gtk_button_set_icon_name (GTK_BUTTON (button), on ? "starred-symbolic" : "non-starred-symbolic");
  if (self->store == NULL)
    return;
  /* One row's UPDATE, but a commit's fsync: off the main thread, as every write is. */
  f = g_new0 (Favourite, 1);
  f->store = atelier_store_ref (self->store);
  f->id = (gint64) GPOINTER_TO_SIZE (g_object_get_data (G_OBJECT (button), "item-id"));
  f->on = on;
  task = g_task_new (NULL, NULL, favourite_done_cb, NULL);
  g_task_set_task_data (task, f, (GDestroyNotify) favourite_free);
  g_task_run_in_thread (task, favourite_worker);
}

static void
variants_clicked_cb (GtkButton *button, gpointer user_data)
{
  AtelierHistoryPanel *self = user_data;

  self->tree_root = (gint64) GPOINTER_TO_SIZE (g_object_get_data (G_OBJECT (button), "item-id"));
  run_query (self);
}

static GtkWidget *
row_new (AtelierHistoryPanel *self, const AtelierItem *item, gboolean in_tree)
{
  GtkWidget *row = adw_action_row_new ();
  GtkWidget *fav = gtk_toggle_button_new ();
  GtkWidget *icon = gtk_image_new_from_icon_name (kind_icon (item->kind));
  g_autofree char *title = item_title (item);
  g_autofree char *subtitle = item_subtitle (item);
  g_autofree char *escaped = g_markup_escape_text (title, -1);

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), escaped[0] != '\0' ? escaped : _("(untitled)"));
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  adw_action_row_set_subtitle_lines (ADW_ACTION_ROW (row), 2);
  adw_action_row_set_title_lines (ADW_ACTION_ROW (row), 1);
  if (in_tree)
    gtk_widget_set_margin_start (icon, 12 * (int) MIN (item->depth, 8));
  adw_action_row_add_prefix (ADW_ACTION_ROW (row), icon);
  gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), TRUE);
  g_object_set_data (G_OBJECT (row), "item-id", GSIZE_TO_POINTER ((gsize) item->id));

  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (fav), item->favourite);
  gtk_button_set_icon_name (GTK_BUTTON (fav), item->favourite ? "starred-symbolic" : "non-starred-symbolic");
  gtk_widget_set_tooltip_text (fav, _("Favourite"));
  gtk_widget_set_valign (fav, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (fav, "flat");
  g_object_set_data (G_OBJECT (fav), "item-id", GSIZE_TO_POINTER ((gsize) item->id));
  g_signal_connect (fav, "toggled", G_CALLBACK (favourite_toggled_cb), self);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), fav);
  if (!in_tree)
    {
      GtkWidget *variants = gtk_button_new_from_icon_name ("view-list-symbolic");

      gtk_widget_set_tooltip_text (variants, _("Variants"));
      gtk_widget_set_valign (variants, GTK_ALIGN_CENTER);
      gtk_widget_add_css_class (variants, "flat");
      g_object_set_data (G_OBJECT (variants), "item-id", GSIZE_TO_POINTER ((gsize) item->id));
      g_signal_connect (variants, "clicked", G_CALLBACK (variants_clicked_cb), self);
      adw_action_row_add_suffix (ADW_ACTION_ROW (row), variants);
    }
  return row;
}

/* What a row shows, to tell whether a row can stay as it is. */
static char *
row_signature (const AtelierItem *item, gboolean in_tree)
{
  g_autofree char *title = item_title (item);
  g_autofree char *subtitle = item_subtitle (item);

  return g_strdup_printf ("%d|%d|%d|%d|%s|%s", in_tree, item->favourite, item->kind, in_tree ? item->depth : 0,
                          title, subtitle);
}

static GtkWidget *
signed_row_new (AtelierHistoryPanel *self, const AtelierItem *item, gboolean in_tree)
{
  GtkWidget *row = row_new (self, item, in_tree);

  g_object_set_data_full (G_OBJECT (row), "signature", row_signature (item, in_tree), g_free);
  return row;
}

/* Puts `items` in the list. A refresh after something was recorded usually finds the same
 * rows with new ones on top: then only those are made (and any that fell off the end
 * removed), so the main loop does not rebuild a hundred rows for one new item. Anything else
 * rebuilds the list. */
static void
show_items (AtelierHistoryPanel *self, GPtrArray *items, const GError *error)
{
  gboolean in_tree = self->tree_root > 0;
  guint n = items != NULL ? items->len : 0, fresh = 0;
  g_autoptr (GPtrArray) rows = g_ptr_array_new ();
  gboolean keep = FALSE;
  GtkWidget *child;

  for (child = gtk_widget_get_first_child (GTK_WIDGET (self->list)); child != NULL;
       child = gtk_widget_get_next_sibling (child))
    if (GTK_IS_LIST_BOX_ROW (child))
      g_ptr_array_add (rows, child);
  if (rows->len > 0 && n > 0)
    {
      gint64 first = (gint64) GPOINTER_TO_SIZE (g_object_get_data (g_ptr_array_index (rows, 0), "item-id"));

      /* How many new items come before the first row shown now. */
      while (fresh < n && ((const AtelierItem *) g_ptr_array_index (items, fresh))->id != first)
        fresh++;
      keep = fresh < n;
      for (guint i = fresh; keep && i < n && i - fresh < rows->len; i++)
        {
          g_autofree char *sig = row_signature (g_ptr_array_index (items, i), in_tree);

          keep = g_strcmp0 (sig, g_object_get_data (g_ptr_array_index (rows, i - fresh), "signature")) == 0;
        }
    }
  if (keep)
    {
      /* The rows past the new end go; the new items go on top. */
      for (guint i = n - fresh; i < rows->len; i++)
        gtk_list_box_remove (self->list, g_ptr_array_index (rows, i));
      for (guint i = fresh; i > 0; i--)
        gtk_list_box_prepend (self->list, signed_row_new (self, g_ptr_array_index (items, i - 1), in_tree));
      for (guint i = rows->len + fresh; i < n; i++)
        gtk_list_box_append (self->list, signed_row_new (self, g_ptr_array_index (items, i), in_tree));
    }
  else
    {
      while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->list))) != NULL)
        gtk_list_box_remove (self->list, child);
      for (guint i = 0; i < n; i++)
        gtk_list_box_append (self->list, signed_row_new (self, g_ptr_array_index (items, i), in_tree));
    }
  self->n_rows = n;
  gtk_widget_set_visible (self->variants_bar, in_tree);
  if (error != NULL)
    {
      adw_status_page_set_title (self->empty, _("The history cannot be read"));
      adw_status_page_set_description (self->empty, error->message);
    }
  else if (self->store == NULL)
    {
      adw_status_page_set_title (self->empty, _("No history"));
      adw_status_page_set_description (self->empty, _("The history is opening, or could not be opened."));
    }
  else
    {
      const char *text = gtk_editable_get_text (GTK_EDITABLE (self->search));

      adw_status_page_set_title (self->empty, text[0] != '\0' ? _("Nothing found") : _("Nothing yet"));
      adw_status_page_set_description (self->empty, text[0] != '\0'
                                                      ? _("No item matches every word.")
                                                      : _("What you make appears here, newest first."));
    }
  gtk_stack_set_visible_child_name (self->stack, self->n_rows > 0 ? "list" : "empty");
  self->idle = TRUE;
}

static void
query_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (AtelierHistoryPanel) self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) items = NULL;

  if (g_task_get_source_tag (G_TASK (result)) == atelier_store_tree_async)
    items = atelier_store_tree_finish ((AtelierStore *) source, result, &error);
  else
    items = atelier_store_find_finish ((AtelierStore *) source, result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  /* A search with nothing searchable in it ("!!") is an empty result, not a failure. */
  if (g_error_matches (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_QUERY))
    g_clear_error (&error);
  show_items (self, items, error);
}

static void
run_query (AtelierHistoryPanel *self)
{
  AtelierQuery query = ATELIER_QUERY_INIT;
  const char *text = gtk_editable_get_text (GTK_EDITABLE (self->search));
  guint kind = gtk_drop_down_get_selected (self->kind);

  g_cancellable_cancel (self->query);
  g_clear_object (&self->query);
  if (self->store == NULL)
    {
      show_items (self, NULL, NULL);
      return;
    }
  self->idle = FALSE;
  self->query = g_cancellable_new ();
  if (self->tree_root > 0)
    {
      g_autofree char *label = g_strdup_printf (_("Variants of item %" G_GINT64_FORMAT), self->tree_root);

      gtk_label_set_text (self->variants_label, label);
      atelier_store_tree_async (self->store, self->tree_root, self->query, query_done_cb, g_object_ref (self));
      return;
    }
  query.text = text[0] != '\0' ? text : NULL;
  /* The drop-down's rows: all, images, texts, melodies, style results. */
  query.kind = kind == 0 || kind == GTK_INVALID_LIST_POSITION ? -1 : (int) kind - 1;
  query.favourite_only = gtk_toggle_button_get_active (self->favourites);
  query.limit = PAGE_SIZE;
  atelier_store_find_async (self->store, &query, self->query, query_done_cb, g_object_ref (self));
}

static void
search_changed_cb (GtkSearchEntry *entry, gpointer user_data)
{
  AtelierHistoryPanel *self = user_data;

  self->tree_root = 0;
  run_query (self);
}

static void
filter_changed_cb (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  search_changed_cb (NULL, user_data);
}

static void
back_clicked_cb (GtkButton *button, gpointer user_data)
{
  search_changed_cb (NULL, user_data);
}

static void
row_activated_cb (GtkListBox *list, GtkListBoxRow *row, gpointer user_data)
{
  gint64 id = (gint64) GPOINTER_TO_SIZE (g_object_get_data (G_OBJECT (row), "item-id"));

  g_signal_emit (user_data, signals[ITEM_ACTIVATED], 0, id);
}

void
atelier_history_panel_set_store (AtelierHistoryPanel *self, AtelierStore *store)
{
  if (store == self->store)
    return;
  g_clear_pointer (&self->store, atelier_store_unref);
  self->store = store != NULL ? atelier_store_ref (store) : NULL;
  self->tree_root = 0;
  run_query (self);
}

void
atelier_history_panel_refresh (AtelierHistoryPanel *self)
{
  run_query (self);
}

void
atelier_history_panel_focus_search (AtelierHistoryPanel *self)
{
  gtk_widget_grab_focus (GTK_WIDGET (self->search));
}

gboolean
atelier_history_panel_is_idle (AtelierHistoryPanel *self)
{
  return self->idle;
}

guint
atelier_history_panel_get_n_rows (AtelierHistoryPanel *self)
{
  return self->n_rows;
}

static void
atelier_history_panel_dispose (GObject *object)
{
  AtelierHistoryPanel *self = ATELIER_HISTORY_PANEL (object);

  g_cancellable_cancel (self->query);
  g_clear_object (&self->query);
  g_clear_pointer (&self->store, atelier_store_unref);
  G_OBJECT_CLASS (atelier_history_panel_parent_class)->dispose (object);
}

static void
atelier_history_panel_class_init (AtelierHistoryPanelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = atelier_history_panel_dispose;
  signals[ITEM_ACTIVATED] = g_signal_new ("item-activated", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                          NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT64);
}

static void
atelier_history_panel_init (AtelierHistoryPanel *self)
{
  static const char *const kinds[] = { N_("All"), N_("Images"), N_("Texts"), N_("Melodies"), N_("Styles"), NULL };
  const char *translated[G_N_ELEMENTS (kinds)];
  GtkWidget *filters = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *scroller = gtk_scrolled_window_new ();
  GtkWidget *back = gtk_button_new_from_icon_name ("go-previous-symbolic");

  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    translated[i] = kinds[i] != NULL ? _(kinds[i]) : NULL;
  gtk_orientable_set_orientation (GTK_ORIENTABLE (self), GTK_ORIENTATION_VERTICAL);
  gtk_box_set_spacing (GTK_BOX (self), 6);
  self->search = GTK_SEARCH_ENTRY (gtk_search_entry_new ());
  g_object_set (self->search, "placeholder-text", _("Search the history"), NULL);
  gtk_widget_set_margin_start (GTK_WIDGET (self->search), 6);
  gtk_widget_set_margin_end (GTK_WIDGET (self->search), 6);
  gtk_widget_set_margin_top (GTK_WIDGET (self->search), 6);
  gtk_box_append (GTK_BOX (self), GTK_WIDGET (self->search));

  self->kind = GTK_DROP_DOWN (gtk_drop_down_new_from_strings (translated));
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->kind), _("Kind"));
  gtk_widget_set_hexpand (GTK_WIDGET (self->kind), TRUE);
  self->favourites = GTK_TOGGLE_BUTTON (gtk_toggle_button_new ());
  gtk_button_set_icon_name (GTK_BUTTON (self->favourites), "starred-symbolic");
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->favourites), _("Favourites only"));
  gtk_box_append (GTK_BOX (filters), GTK_WIDGET (self->kind));
  gtk_box_append (GTK_BOX (filters), GTK_WIDGET (self->favourites));
  gtk_widget_set_margin_start (filters, 6);
  gtk_widget_set_margin_end (filters, 6);
  gtk_box_append (GTK_BOX (self), filters);

  self->variants_bar = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->variants_label = GTK_LABEL (gtk_label_new (NULL));
  gtk_widget_set_tooltip_text (back, _("Back to the history"));
  gtk_widget_add_css_class (back, "flat");
  gtk_box_append (GTK_BOX (self->variants_bar), back);
  gtk_box_append (GTK_BOX (self->variants_bar), GTK_WIDGET (self->variants_label));
  gtk_widget_set_margin_start (self->variants_bar, 6);
  gtk_widget_set_visible (self->variants_bar, FALSE);
  gtk_box_append (GTK_BOX (self), self->variants_bar);

  self->list = GTK_LIST_BOX (gtk_list_box_new ());
  gtk_list_box_set_selection_mode (self->list, GTK_SELECTION_SINGLE);
  gtk_widget_add_css_class (GTK_WIDGET (self->list), "navigation-sidebar");
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroller), GTK_WIDGET (self->list));
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroller), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  self->empty = ADW_STATUS_PAGE (adw_status_page_new ());
  adw_status_page_set_icon_name (self->empty, "document-open-recent-symbolic");
  gtk_widget_add_css_class (GTK_WIDGET (self->empty), "compact");
  self->stack = GTK_STACK (gtk_stack_new ());
  gtk_stack_add_named (self->stack, scroller, "list");
  gtk_stack_add_named (self->stack, GTK_WIDGET (self->empty), "empty");
  gtk_widget_set_vexpand (GTK_WIDGET (self->stack), TRUE);
  gtk_box_append (GTK_BOX (self), GTK_WIDGET (self->stack));

  g_signal_connect (self->search, "search-changed", G_CALLBACK (search_changed_cb), self);
  g_signal_connect (self->kind, "notify::selected", G_CALLBACK (filter_changed_cb), self);
  g_signal_connect (self->favourites, "toggled", G_CALLBACK (filter_changed_cb), self);
  g_signal_connect (back, "clicked", G_CALLBACK (back_clicked_cb), self);
  g_signal_connect (self->list, "row-activated", G_CALLBACK (row_activated_cb), self);
  show_items (self, NULL, NULL);
}
