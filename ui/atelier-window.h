/* atelier-window.h: the main window: a mode switcher (Image, Write, Music) over one history
 * sidebar, the job queue's indicator, a banner for what stops the window from working fully
 * (no history, no GPU) and toasts for what went wrong. */
#pragma once

#include <adwaita.h>

#include "atelier-application.h"

G_BEGIN_DECLS

#define ATELIER_TYPE_WINDOW (atelier_window_get_type ())
G_DECLARE_FINAL_TYPE (AtelierWindow, atelier_window, ATELIER, WINDOW, AdwApplicationWindow)

AtelierWindow *atelier_window_new (AtelierApplication *app);

/* Opens a file in the mode that takes it (text and Markdown: Write). */
void atelier_window_open_file (AtelierWindow *self, GFile *file);
/* A toast; `action`/`label` (both or neither) add a button. */
void atelier_window_toast (AtelierWindow *self, const char *message, const char *label, const char *action);

G_END_DECLS
