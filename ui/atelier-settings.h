/* atelier-settings.h: the process-wide GSettings for org.atelier.Atelier.
 *
 * The schema comes from the build tree when the executable runs uninstalled (the folder
 * `assets/` next to it, or `../assets/` for the test binaries in `tests/`), else from the
 * default schema source (the install prefix, $GSETTINGS_SCHEMA_DIR). When neither has it,
 * atelier_settings_get() returns NULL and callers use their built-in defaults.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ATELIER_SETTINGS_SCHEMA_ID "org.atelier.Atelier"

/* Borrowed, created on the first call; NULL when no schema was found (warned about once).
 * GSettings emits "changed" in the thread-default context of the thread that created it: make
 * the first call on the main thread (application startup does). */
GSettings *atelier_settings_get (void);

/* Exports the `device` preference as ATELIER_DEVICE unless that is already set, so the engine
 * picks it. setenv() is not thread-safe: call it before any thread starts (application
 * startup). */
void atelier_settings_apply_device (void);

G_END_DECLS
