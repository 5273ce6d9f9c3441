/* main.c: `atelier COMMAND ...` runs the command-line front end; anything else opens the window. */
#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>

#include "atelier-application.h"
#include "atelier-cli.h"

/* Mesa's lavapipe (Vulkan on the CPU) compiles shaders for 256-bit vectors unless asked for
 * 512. On a CPU with AVX-512 the wide mode (subgroup size 16) measured on the CI's class of
 * machine: f32 GEMM 2048^3 65 -> 77 GFLOP/s, f16-weight GEMM +37%, conv2d +30%, attention +20%,
 * dispatch overhead 32 -> 26 us; quantised matrix-vector 20-40% slower (its kernels were tuned at
 * 8 lanes). Set before any thread exists (setenv is not thread-safe); a user's own
 * LP_NATIVE_VECTOR_WIDTH wins, and other Vulkan drivers ignore it. */
static void
prefer_wide_lavapipe (void)
{
#if defined(__x86_64__) || defined(__i386__)
  if (g_getenv ("LP_NATIVE_VECTOR_WIDTH") == NULL && __builtin_cpu_supports ("avx512f"))
    g_setenv ("LP_NATIVE_VECTOR_WIDTH", "512", FALSE);
#endif
}

int
main (int argc, char **argv)
{
  g_autoptr (AtelierApplication) app = NULL;

  prefer_wide_lavapipe ();
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  if (atelier_cli_handles (argc, argv))
    return atelier_cli_run (argc, argv);

  app = atelier_application_new ();
  return g_application_run (G_APPLICATION (app), argc, argv);
}
