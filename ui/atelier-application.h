/* atelier-application.h: the AdwApplication: single instance, one window per request. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define ATELIER_TYPE_APPLICATION (atelier_application_get_type ())
G_DECLARE_FINAL_TYPE (AtelierApplication, atelier_application, ATELIER, APPLICATION, AdwApplication)

AtelierApplication *atelier_application_new (void);

G_END_DECLS
