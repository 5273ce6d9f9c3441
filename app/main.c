/* main.c: `atelier COMMAND ...` runs the command-line front end; anything else opens the window. */
#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>

#include "atelier-application.h"
#include "atelier-cli.h"

int
main (int argc, char **argv)
{
  g_autoptr (AtelierApplication) app = NULL;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  if (atelier_cli_handles (argc, argv))
    return atelier_cli_run (argc, argv);

  app = atelier_application_new ();
  return g_application_run (G_APPLICATION (app), argc, argv);
}
