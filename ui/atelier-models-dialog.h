/* atelier-models-dialog.h: the model manager: the models Atelier knows (the user's own list and
 * the ones discovered on the machine, atelier-discovery.h) grouped by kind, with Import… (file
 * chooser or drag and drop), Remove from the user's list, and Search Again. */
#pragma once

#include <adwaita.h>

#include "atelier-store.h"

G_BEGIN_DECLS

#define ATELIER_TYPE_MODELS_DIALOG (atelier_models_dialog_get_type ())
G_DECLARE_FINAL_TYPE (AtelierModelsDialog, atelier_models_dialog, ATELIER, MODELS_DIALOG, AdwWindow)

/* Modal, transient for `parent` (may be NULL). `store` may be NULL while the history opens:
 * then the user's list is not shown and Import says to try again. `extra_folders` (may be
 * NULL) are searched besides the usual places. Scanning starts at once, off the main thread.
 *
 * Signal "model-chosen" (const char *path): a language model's Use button was clicked. */
AtelierModelsDialog *atelier_models_dialog_new (GtkWindow *parent, AtelierStore *store,
                                                const char *const *extra_folders);

/* Checks `file` off the main thread (atelier_discovery_add_user_model) and puts it on the
 * user's list, then searches again; a failure is a toast naming the file. What the file
 * chooser and a drop call. */
void atelier_models_dialog_import (AtelierModelsDialog *self, GFile *file);

/* Searches again, cancelling a search under way. */
void atelier_models_dialog_rescan (AtelierModelsDialog *self);

/* TRUE while a search, an import or a removal is under way (property "busy"). */
gboolean atelier_models_dialog_get_busy (AtelierModelsDialog *self);

G_END_DECLS
