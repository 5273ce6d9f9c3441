/* test-preferences.c: the settings object found in the build tree, the Preferences window
 * reading and writing GSettings both ways, the Vulkan device list filled in off the main
 * thread, and the shortcuts window resource. Runs under Xvfb with GSETTINGS_BACKEND=memory. */
#include <adwaita.h>
#include <glib/gstdio.h>

#include "atelier-preferences.h"
#include "atelier-settings.h"
#include "gpu/at-device.h"

/* Set in main() before GTK looks at the default schema source. */
static gboolean schema_installed;

static GtkWidget *
child (AtelierPreferences *prefs, const char *name)
{
  GObject *object = gtk_widget_get_template_child (GTK_WIDGET (prefs), ATELIER_TYPE_PREFERENCES, name);

  g_assert_nonnull (object);
  return GTK_WIDGET (object);
}

static void
spin_events (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
test_settings_from_build_dir (void)
{
  GSettings *settings = atelier_settings_get ();
  g_autoptr (GSettingsSchema) schema = NULL;
  g_autoptr (GSettingsSchemaKey) key = NULL;
  static const char *const keys[] = { "device", "text-model", "image-model", "data-folder", "temperature", "top-k",
                                      "top-p", "min-p", "repeat-penalty", "max-tokens", "window-width",
                                      "window-height", "window-maximized", "sidebar-visible", "model-folders" };

  if (schema_installed)
    g_test_message ("org.atelier.Atelier is installed system-wide too; the build tree's copy is used first");
  g_assert_nonnull (settings);
  g_assert_true (atelier_settings_get () == settings);
  g_object_get (settings, "settings-schema", &schema, NULL);
  g_assert_cmpstr (g_settings_schema_get_id (schema), ==, "org.atelier.Atelier");
  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    g_assert_true (g_settings_schema_has_key (schema, keys[i]));
  g_assert_cmpfloat (g_settings_get_double (settings, "temperature"), ==, 0.8);
  g_assert_cmpint (g_settings_get_int (settings, "top-k"), ==, 40);
  g_assert_cmpint (g_settings_get_int (settings, "max-tokens"), ==, 256);
  g_assert_true (g_settings_get_boolean (settings, "sidebar-visible"));
  /* Ranges: a temperature of 50 is refused, not stored. */
  key = g_settings_schema_get_key (schema, "temperature");
  g_assert_false (g_settings_schema_key_range_check (key, g_variant_new_double (50.0)));
  g_assert_true (g_settings_schema_key_range_check (key, g_variant_new_double (1.5)));
}

static void
test_settings_apply_device (void)
{
  GSettings *settings = atelier_settings_get ();

  g_unsetenv ("ATELIER_DEVICE");
  atelier_settings_apply_device ();
  g_assert_null (g_getenv ("ATELIER_DEVICE"));
  g_settings_set_string (settings, "device", "llvmpipe");
  atelier_settings_apply_device ();
  g_assert_cmpstr (g_getenv ("ATELIER_DEVICE"), ==, "llvmpipe");
  /* The environment the user set wins. */
  g_setenv ("ATELIER_DEVICE", "1", TRUE);
  atelier_settings_apply_device ();
  g_assert_cmpstr (g_getenv ("ATELIER_DEVICE"), ==, "1");
  g_unsetenv ("ATELIER_DEVICE");
  g_settings_reset (settings, "device");
}

static void
test_spin_writes_key (void)
{
  GSettings *settings = atelier_settings_get ();
  AtelierPreferences *prefs = atelier_preferences_new (NULL);

  gtk_window_present (GTK_WINDOW (prefs));
  g_assert_cmpfloat (gtk_spin_button_get_value (GTK_SPIN_BUTTON (child (prefs, "temperature_spin"))), ==, 0.8);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (child (prefs, "temperature_spin")), 1.25);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (child (prefs, "top_k_spin")), 7);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (child (prefs, "top_p_spin")), 0.5);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (child (prefs, "min_p_spin")), 0.1);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (child (prefs, "repeat_penalty_spin")), 1.3);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (child (prefs, "max_tokens_spin")), 512);
  spin_events ();
  g_assert_cmpfloat_with_epsilon (g_settings_get_double (settings, "temperature"), 1.25, 1e-9);
  g_assert_cmpint (g_settings_get_int (settings, "top-k"), ==, 7);
  g_assert_cmpfloat_with_epsilon (g_settings_get_double (settings, "top-p"), 0.5, 1e-9);
  g_assert_cmpfloat_with_epsilon (g_settings_get_double (settings, "min-p"), 0.1, 1e-9);
  g_assert_cmpfloat_with_epsilon (g_settings_get_double (settings, "repeat-penalty"), 1.3, 1e-9);
  g_assert_cmpint (g_settings_get_int (settings, "max-tokens"), ==, 512);
  gtk_window_destroy (GTK_WINDOW (prefs));
  for (const char *const *k = (const char *const[]) { "temperature", "top-k", "top-p", "min-p", "repeat-penalty",
                                                      "max-tokens", NULL };
       *k != NULL; k++)
    g_settings_reset (settings, *k);
}

static guint
n_rows (GtkListBox *list)
{
  guint n = 0;

  while (gtk_list_box_get_row_at_index (list, n) != NULL)
    n++;
  return n;
}

/* The remove button of folder row `i`: the only GtkButton inside it. */
static GtkButton *
find_button (GtkWidget *w)
{
  if (GTK_IS_BUTTON (w))
    return GTK_BUTTON (w);
  for (GtkWidget *c = gtk_widget_get_first_child (w); c != NULL; c = gtk_widget_get_next_sibling (c))
    {
      GtkButton *b = find_button (c);

      if (b != NULL)
        return b;
    }
  return NULL;
}

static void
test_key_moves_widgets (void)
{
  GSettings *settings = atelier_settings_get ();
  AtelierPreferences *prefs = atelier_preferences_new (NULL);
  AdwActionRow *text_row = ADW_ACTION_ROW (child (prefs, "text_model_row"));
  GtkListBox *folders = GTK_LIST_BOX (child (prefs, "folders_list"));
  g_autofree char *dir = g_dir_make_tmp ("atelier-prefs-XXXXXX", NULL);
  g_autofree char *model = g_build_filename (dir, "tiny.gguf", NULL);
  const char *const two[] = { "/srv/models", "/home/me/models", NULL };
  g_auto (GStrv) left = NULL;

  gtk_window_present (GTK_WINDOW (prefs));
  g_assert_cmpstr (adw_action_row_get_subtitle (text_row), ==, "None");
  g_assert_false (gtk_widget_get_sensitive (child (prefs, "text_model_clear")));

  g_settings_set_double (settings, "top-p", 0.42);
  g_settings_set_int (settings, "max-tokens", 1000);
  spin_events ();
  g_assert_cmpfloat_with_epsilon (gtk_spin_button_get_value (GTK_SPIN_BUTTON (child (prefs, "top_p_spin"))), 0.42,
                                  1e-9);
  g_assert_cmpfloat (gtk_spin_button_get_value (GTK_SPIN_BUTTON (child (prefs, "max_tokens_spin"))), ==, 1000);

  /* A default model that went away says so instead of looking chosen. */
  g_settings_set_string (settings, "text-model", "/nonexistent/model.gguf");
  spin_events ();
  g_assert_true (g_str_has_suffix (adw_action_row_get_subtitle (text_row), "(not found)"));
  g_assert_true (g_file_set_contents (model, "GGUF", 4, NULL));
  g_settings_set_string (settings, "text-model", model);
  spin_events ();
  g_assert_cmpstr (adw_action_row_get_subtitle (text_row), ==, model);
  g_assert_true (gtk_widget_get_sensitive (child (prefs, "text_model_clear")));
  g_signal_emit_by_name (child (prefs, "text_model_clear"), "clicked");
  spin_events ();
  g_assert_cmpstr (g_settings_get_string (settings, "text-model"), ==, "");
  g_assert_cmpstr (adw_action_row_get_subtitle (text_row), ==, "None");

  g_assert_cmpuint (n_rows (folders), ==, 0);
  g_settings_set_strv (settings, "model-folders", two);
  spin_events ();
  g_assert_cmpuint (n_rows (folders), ==, 2);
  g_assert_cmpstr (adw_action_row_get_subtitle (ADW_ACTION_ROW (gtk_list_box_get_row_at_index (folders, 0))), ==,
                   "/srv/models");
  g_signal_emit_by_name (find_button (GTK_WIDGET (gtk_list_box_get_row_at_index (folders, 0))), "clicked");
  spin_events ();
  left = g_settings_get_strv (settings, "model-folders");
  g_assert_cmpuint (g_strv_length (left), ==, 1);
  g_assert_cmpstr (left[0], ==, "/home/me/models");
  g_assert_cmpuint (n_rows (folders), ==, 1);

  gtk_window_destroy (GTK_WINDOW (prefs));
  for (const char *const *k = (const char *const[]) { "top-p", "max-tokens", "model-folders", NULL }; *k != NULL; k++)
    g_settings_reset (settings, *k);
  g_unlink (model);
  g_rmdir (dir);
}

static void
wait_for_devices (AtelierPreferences *prefs)
{
  gint64 deadline = g_get_monotonic_time () + 50 * G_USEC_PER_SEC;

  while (atelier_preferences_get_loading_devices (prefs) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (atelier_preferences_get_loading_devices (prefs));
}

static void
test_devices (void)
{
  GSettings *settings = atelier_settings_get ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) list = NULL;
  AtelierPreferences *prefs;
  AdwComboRow *row;
  GListModel *model;
  guint n_before;

  /* A choice made earlier must survive opening the window while the list is loading. */
  g_settings_set_string (settings, "device", "Imaginary GPU 9000");
  prefs = atelier_preferences_new (NULL);
  row = ADW_COMBO_ROW (child (prefs, "device_row"));
  model = adw_combo_row_get_model (row);
  gtk_window_present (GTK_WINDOW (prefs));
  /* Construction returned before the enumeration finished: it runs on a worker thread. */
  g_assert_true (atelier_preferences_get_loading_devices (prefs));
  g_assert_cmpuint (g_list_model_get_n_items (model), ==, 1);
  wait_for_devices (prefs);
  g_assert_cmpstr (g_settings_get_string (settings, "device"), ==, "Imaginary GPU 9000");
  list = at_device_list (&error);
  n_before = list != NULL ? list->len : 0;
  g_test_message ("%u Vulkan devices", n_before);
  /* "Automatic", the devices, the remembered one marked as not found. */
  g_assert_cmpuint (g_list_model_get_n_items (model), ==, n_before + 2);
  g_assert_cmpuint (adw_combo_row_get_selected (row), ==, n_before + 1);
  g_assert_cmpstr (gtk_string_list_get_string (GTK_STRING_LIST (model), n_before + 1), ==,
                   "Imaginary GPU 9000 (not found)");
  if (list == NULL)
    g_test_message ("no Vulkan device here: %s", error->message);
  else
    {
      adw_combo_row_set_selected (row, 1);
      g_assert_cmpstr (g_settings_get_string (settings, "device"), ==,
                       g_array_index (list, AtDeviceInfo, 0).name);
    }
  adw_combo_row_set_selected (row, 0);
  g_assert_cmpstr (g_settings_get_string (settings, "device"), ==, "");
  gtk_window_destroy (GTK_WINDOW (prefs));
  g_settings_reset (settings, "device");
}

/* Without any Vulkan driver the row says so and offers only "Automatic"; in a subprocess,
 * because the engine keeps its Vulkan instance for the life of the process. */
static void
test_no_device (void)
{
  g_auto (GStrv) saved = NULL;

  if (g_test_subprocess ())
    {
      AtelierPreferences *prefs = atelier_preferences_new (NULL);
      AdwComboRow *row = ADW_COMBO_ROW (child (prefs, "device_row"));

      gtk_window_present (GTK_WINDOW (prefs));
      wait_for_devices (prefs);
      g_assert_cmpuint (g_list_model_get_n_items (adw_combo_row_get_model (row)), ==, 1);
      g_assert_true (g_str_has_prefix (adw_action_row_get_subtitle (ADW_ACTION_ROW (row)), "No Vulkan device: "));
      g_test_message ("%s", adw_action_row_get_subtitle (ADW_ACTION_ROW (row)));
      gtk_window_destroy (GTK_WINDOW (prefs));
      return;
    }
  /* The child inherits these; g_test_trap_subprocess_with_envp() needs GLib 2.80. This
   * process's own Vulkan instance already exists and is unaffected. */
  saved = g_get_environ ();
  g_setenv ("VK_ICD_FILENAMES", "/nonexistent/icd.json", TRUE);
  g_setenv ("VK_DRIVER_FILES", "/nonexistent/icd.json", TRUE);
  g_test_trap_subprocess (NULL, 50 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  for (const char *const *name = (const char *const[]) { "VK_ICD_FILENAMES", "VK_DRIVER_FILES", NULL }; *name != NULL;
       name++)
    if (g_environ_getenv (saved, *name) != NULL)
      g_setenv (*name, g_environ_getenv (saved, *name), TRUE);
    else
      g_unsetenv (*name);
  g_test_trap_assert_passed ();
}

static void
test_shortcuts_window (void)
{
  g_autoptr (GtkBuilder) builder = gtk_builder_new_from_resource ("/org/atelier/Atelier/gtk/help-overlay.ui");
  GObject *window = gtk_builder_get_object (builder, "help_overlay");
  g_autoptr (GSList) objects = gtk_builder_get_objects (builder);
  g_autoptr (GString) all = g_string_new (" ");
  static const char *const expected[] = { "<Primary>q", "<Primary>comma", "<Primary>question", "<Primary>n",
                                          "<Primary>o", "<Primary>s", "<Primary><Shift>s", "<Primary>z",
                                          "<Primary><Shift>z", "F9", "<Primary>f", "<Primary>Return",
                                          "<Primary><Shift>r", "<Alt>Return", "Escape", "<Primary>m",
                                          "<Primary>1", "<Primary>2", "<Primary>3" };

  g_assert_true (GTK_IS_SHORTCUTS_WINDOW (window));
  for (GSList *l = objects; l != NULL; l = l->next)
    {
      g_autofree char *accel = NULL;
      guint key = 0;
      GdkModifierType mods = 0;

      if (!GTK_IS_SHORTCUTS_SHORTCUT (l->data))
        continue;
      g_object_get (l->data, "accelerator", &accel, NULL);
      g_assert_nonnull (accel);
      g_assert_true (gtk_accelerator_parse (accel, &key, &mods));
      g_assert_cmpuint (key, !=, 0);
      g_string_append_printf (all, "%s ", accel);
    }
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_autofree char *needle = g_strdup_printf (" %s ", expected[i]);

      if (strstr (all->str, needle) == NULL)
        g_error ("the shortcuts window lacks %s (it has:%s)", expected[i], all->str);
    }
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
test_no_display (void)
{
  g_test_skip ("no display (the suite runs under xvfb-run in tools/test.sh)");
}

int
main (int argc, char **argv)
{
  GSettingsSchemaSource *source;

  /* Never the user's own dconf, whoever runs this. */
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  /* The schema must come from the build tree beside this binary, not from the path the suite
   * also sets (which would hide a broken lookup); unset before anything reads it. */
  g_unsetenv ("GSETTINGS_SCHEMA_DIR");
  source = g_settings_schema_source_get_default ();
  if (source != NULL)
    {
      g_autoptr (GSettingsSchema) installed = g_settings_schema_source_lookup (source, "org.atelier.Atelier", TRUE);

      schema_installed = installed != NULL;
    }
  if (g_getenv ("DISPLAY") == NULL && g_getenv ("WAYLAND_DISPLAY") == NULL)
    {
      g_test_init (&argc, &argv, NULL);
      g_test_add_func ("/ui/preferences/no-display", test_no_display);
      return g_test_run ();
    }
  gtk_test_init (&argc, &argv, NULL);
  adw_init ();
  g_test_add_func ("/ui/settings/schema-from-build-dir", test_settings_from_build_dir);
  g_test_add_func ("/ui/settings/apply-device", test_settings_apply_device);
  g_test_add_func ("/ui/preferences/spin-writes-key", test_spin_writes_key);
  g_test_add_func ("/ui/preferences/key-moves-widgets", test_key_moves_widgets);
  g_test_add_func ("/ui/preferences/devices", test_devices);
  g_test_add_func ("/ui/preferences/no-device", test_no_device);
  g_test_add_func ("/ui/shortcuts/window", test_shortcuts_window);
  return g_test_run ();
}
