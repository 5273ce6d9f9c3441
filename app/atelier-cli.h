/* atelier-cli.h: the command-line front end (`atelier devices`, `atelier bench`, ...). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Whether argv names a CLI command (as opposed to opening the window). */
gboolean atelier_cli_handles (int argc, char **argv);
/* Runs it; returns the process exit status. */
int atelier_cli_run (int argc, char **argv);

G_END_DECLS
