/* atelier-settings.c: finds the org.atelier.Atelier schema and hands out one GSettings.
 *
 * Trap: g_settings_new() aborts the process when the schema is not installed, which is the
 * normal state of a fresh build tree, so the schema is looked up first and a missing one is a
 * warning. The build tree is tried before the default source: an uninstalled build next to an
 * older installed schema would otherwise read keys that schema lacks, and GSettings aborts on
 * an unknown key too.
 */
#include "config.h"

#include "atelier-settings.h"

static GSettingsSchema *
lookup_in_dir (const char *dir)
{
  g_autoptr (GSettingsSchemaSource) source = NULL;
  g_autofree char *compiled = g_build_filename (dir, "gschemas.compiled", NULL);

  if (!g_file_test (compiled, G_FILE_TEST_IS_REGULAR))
    return NULL;
  source = g_settings_schema_source_new_from_directory (dir, g_settings_schema_source_get_default (), FALSE, NULL);
  if (source == NULL)
    return NULL;
  return g_settings_schema_source_lookup (source, ATELIER_SETTINGS_SCHEMA_ID, FALSE);
}

/* `assets/` beside the executable (./_build/atelier), then `../assets/` (./_build/tests/test-x). */
static GSettingsSchema *
lookup_in_build_tree (void)
{
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *exe_dir = NULL;
  g_autofree char *here = NULL;
  g_autofree char *above = NULL;
  GSettingsSchema *schema;

  if (exe == NULL)
    return NULL;
  exe_dir = g_path_get_dirname (exe);
  here = g_build_filename (exe_dir, "assets", NULL);
  if ((schema = lookup_in_dir (here)) != NULL)
    return schema;
  above = g_build_filename (exe_dir, "..", "assets", NULL);
  return lookup_in_dir (above);
}

static GSettings *
settings_new (void)
{
  g_autoptr (GSettingsSchema) schema = lookup_in_build_tree ();
  GSettingsSchemaSource *source;

  if (schema == NULL && (source = g_settings_schema_source_get_default ()) != NULL)
    schema = g_settings_schema_source_lookup (source, ATELIER_SETTINGS_SCHEMA_ID, TRUE);
  if (schema == NULL)
    {
      g_warning ("The settings schema %s is neither installed nor in the build tree; preferences "
                 "will not be kept (install Atelier, or run it from its build folder)",
                 ATELIER_SETTINGS_SCHEMA_ID);
      return NULL;
    }
  return g_settings_new_full (schema, NULL, NULL);
}

GSettings *
atelier_settings_get (void)
{
  static GSettings *settings;
  static gsize initialized;

  if (g_once_init_enter (&initialized))
    {
      settings = settings_new ();
      g_once_init_leave (&initialized, 1);
    }
  return settings;
}

void
atelier_settings_apply_device (void)
{
  GSettings *settings = atelier_settings_get ();
  g_autofree char *device = NULL;

  if (settings == NULL || g_getenv ("ATELIER_DEVICE") != NULL)
    return;
  device = g_settings_get_string (settings, "device");
  if (device[0] != '\0')
    g_setenv ("ATELIER_DEVICE", device, TRUE);
}
