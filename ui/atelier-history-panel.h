/* atelier-history-panel.h: the history sidebar shared by the modes: items of every kind,
 * newest first, search as you type (the store's full-text search), a kind filter,
 * favourites, and a variants view (an item's tree). Every query runs off the main thread. */
#pragma once

#include <adwaita.h>

#include "atelier-store.h"

G_BEGIN_DECLS

#define ATELIER_TYPE_HISTORY_PANEL (atelier_history_panel_get_type ())
G_DECLARE_FINAL_TYPE (AtelierHistoryPanel, atelier_history_panel, ATELIER, HISTORY_PANEL, GtkBox)

/* NULL while the history opens or when it cannot be used. */
void atelier_history_panel_set_store (AtelierHistoryPanel *self, AtelierStore *store);
/* Runs the current query again (after a save). */
void atelier_history_panel_refresh (AtelierHistoryPanel *self);
void atelier_history_panel_focus_search (AtelierHistoryPanel *self);
/* How many rows the last finished query showed; FALSE while one runs. For tests and a11y. */
gboolean atelier_history_panel_is_idle (AtelierHistoryPanel *self);
guint atelier_history_panel_get_n_rows (AtelierHistoryPanel *self);

/* Signal "item-activated" (gint64 id): the user chose an item to reopen. */

G_END_DECLS
