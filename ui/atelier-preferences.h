/* atelier-preferences.h: the Preferences window over the org.atelier.Atelier settings. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define ATELIER_TYPE_PREFERENCES (atelier_preferences_get_type ())
G_DECLARE_FINAL_TYPE (AtelierPreferences, atelier_preferences, ATELIER, PREFERENCES, AdwPreferencesWindow)

/* Transient for `parent` (may be NULL). The Vulkan devices are listed off the main thread;
 * the "loading-devices" property turns FALSE once the device row is filled in. */
AtelierPreferences *atelier_preferences_new (GtkWindow *parent);

gboolean atelier_preferences_get_loading_devices (AtelierPreferences *self);

G_END_DECLS
