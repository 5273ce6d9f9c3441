/* fuzz-replay.c: runs files through a fuzz target's LLVMFuzzerTestOneInput without libFuzzer,
 * so the corpus and every crasher found run in `meson test` (and under ASan/UBSan in the
 * sanitizer build). Arguments are files or folders of files. */
#include <glib.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput (const guint8 *data, gsize size);

static int n_run;

static gboolean
run_file (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize size;

  if (!g_file_get_contents (path, &contents, &size, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      return FALSE;
    }
  /* Hand the target a buffer of exactly `size` bytes so ASan sees any read past the end. */
  {
    g_autofree guint8 *exact = g_memdup2 (contents, size);

    LLVMFuzzerTestOneInput (exact, size);
  }
  n_run++;
  return TRUE;
}

int
main (int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    {
      if (g_file_test (argv[i], G_FILE_TEST_IS_DIR))
        {
          g_autoptr (GDir) dir = g_dir_open (argv[i], 0, NULL);
          const char *name;

          if (dir == NULL)
            return 1;
          while ((name = g_dir_read_name (dir)) != NULL)
            {
              g_autofree char *path = g_build_filename (argv[i], name, NULL);

              if (g_file_test (path, G_FILE_TEST_IS_REGULAR) && !run_file (path))
                return 1;
            }
        }
      else if (!run_file (argv[i]))
        return 1;
    }
  printf ("%d inputs ran\n", n_run);
  return n_run > 0 ? 0 : 1;
}
