/* atelier-application.h: the AdwApplication: single instance, one window per request. It owns
 * what every window shares: the job queue (engine work, one job at a time), the writer (the
 * loaded language model) and the history store, opened off the main thread at startup. */
#pragma once

#include <adwaita.h>

#include "atelier-jobs.h"
#include "atelier-store.h"
#include "atelier-writer.h"

G_BEGIN_DECLS

#define ATELIER_TYPE_APPLICATION (atelier_application_get_type ())
G_DECLARE_FINAL_TYPE (AtelierApplication, atelier_application, ATELIER, APPLICATION, AdwApplication)

AtelierApplication *atelier_application_new (void);

AtelierJobQueue *atelier_application_get_jobs (AtelierApplication *self);
AtelierWriter *atelier_application_get_writer (AtelierApplication *self);
/* NULL while the history opens, or when it could not be opened (then get_store_error says
 * why). "notify::store" fires when the opening ends either way. */
AtelierStore *atelier_application_get_store (AtelierApplication *self);
const GError *atelier_application_get_store_error (AtelierApplication *self);
/* Moves a damaged history aside and opens a new one (the window's banner offers this). */
void atelier_application_reset_store (AtelierApplication *self);

G_END_DECLS
