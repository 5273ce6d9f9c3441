/* atelier-preferences.c: the Preferences window: device, default models, model folders, data
 * folder and the writer's sampling defaults, all read from and written to GSettings.
 *
 * The spin buttons are bound with g_settings_bind; the rows that show a path, the folder list
 * and the device combo follow "changed" by hand. Trap: GSettings emits "changed" only for keys
 * read after the handler was connected, so every key is read once after connecting.
 */
#include "config.h"

#include "atelier-preferences.h"

#include <glib/gi18n.h>

#include "atelier-settings.h"
#include "atelier-store.h"
#include "gpu/at-device.h"

struct _AtelierPreferences
{
  AdwPreferencesWindow parent_instance;

  AdwPreferencesPage *general_page;
  AdwPreferencesPage *writer_page;
  AdwComboRow *device_row;
  GtkSpinner *device_spinner;
  AdwActionRow *text_model_row;
  GtkButton *text_model_choose;
  GtkButton *text_model_clear;
  AdwActionRow *image_model_row;
  GtkButton *image_model_choose;
  GtkButton *image_model_clear;
  GtkButton *folder_add;
  GtkListBox *folders_list;
  AdwActionRow *data_folder_row;
  GtkButton *data_folder_choose;
  GtkButton *data_folder_clear;
  GtkSpinButton *temperature_spin;
  GtkSpinButton *top_k_spin;
  GtkSpinButton *top_p_spin;
  GtkSpinButton *min_p_spin;
  GtkSpinButton *repeat_penalty_spin;
  GtkSpinButton *max_tokens_spin;

  GSettings *settings;          /* NULL without a schema: the window shows defaults, read-only */
  GCancellable *cancellable;
  GtkStringList *device_names;  /* what the combo shows; [0] is "Automatic" */
  GPtrArray *device_values;     /* the `device` value of each entry; [0] is "" */
  gboolean loading_devices;
  gboolean syncing_device;      /* the combo is being set from the key: don't write it back */
  GtkNativeDialog *chooser;     /* the one open file chooser */
};

G_DEFINE_FINAL_TYPE (AtelierPreferences, atelier_preferences, ADW_TYPE_PREFERENCES_WINDOW)

enum
{
  PROP_0,
  PROP_LOADING_DEVICES,
  N_PROPS,
};

static GParamSpec *properties[N_PROPS];

/* --- the device combo --- */

static void
device_append (AtelierPreferences *self, const char *label, const char *value)
{
  g_ptr_array_add (self->device_values, g_strdup (value));
  gtk_string_list_append (self->device_names, label);
}

static void
device_sync_from_key (AtelierPreferences *self)
{
  g_autofree char *value = self->settings != NULL ? g_settings_get_string (self->settings, "device") : g_strdup ("");
  guint i;

  for (i = 0; i < self->device_values->len; i++)
    if (g_strcmp0 (g_ptr_array_index (self->device_values, i), value) == 0)
      break;
  self->syncing_device = TRUE;
  /* A device chosen earlier that is not here now (unplugged, another driver) stays listed, so
   * opening Preferences never rewrites the user's choice. */
  if (i == self->device_values->len && !self->loading_devices)
    {
      g_autofree char *label = g_strdup_printf (_("%s (not found)"), value);

      device_append (self, label, value);
    }
  if (i < self->device_values->len)
    adw_combo_row_set_selected (self->device_row, i);
  self->syncing_device = FALSE;
}

static void
device_selected_cb (AtelierPreferences *self)
{
  guint i = adw_combo_row_get_selected (self->device_row);

  if (self->syncing_device || self->settings == NULL || i >= self->device_values->len)
    return;
  g_settings_set_string (self->settings, "device", g_ptr_array_index (self->device_values, i));
}

static void
list_devices_worker (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  GError *error = NULL;
  GArray *list = at_device_list (&error);

  if (list == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, list, (GDestroyNotify) g_array_unref);
}

/* The value stored for device `i`: its name, which survives a reordering, unless the engine's
 * selector (the first device whose name contains it, case-folded: choose_device() in
 * at-device.c) would resolve that name to another device; then its index. */
static char *
device_value (GArray *list, guint i)
{
  const AtDeviceInfo *info = &g_array_index (list, AtDeviceInfo, i);
  g_autofree char *needle = g_utf8_casefold (info->name, -1);

  for (guint j = 0; j < i; j++)
    {
      g_autofree char *hay = g_utf8_casefold (g_array_index (list, AtDeviceInfo, j).name, -1);

      if (strstr (hay, needle) != NULL)
        return g_strdup_printf ("%u", info->index);
    }
  return g_strdup (info->name);
}

static void
list_devices_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AtelierPreferences *self = ATELIER_PREFERENCES (source);
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) list = g_task_propagate_pointer (G_TASK (result), &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  /* The engine's messages already say what to install. */
  if (list == NULL)
    {
      g_autofree char *text = g_strdup_printf (_("No Vulkan device: %s"), error->message);

      adw_action_row_set_subtitle (ADW_ACTION_ROW (self->device_row), text);
    }
  else if (list->len == 0)
    adw_action_row_set_subtitle (ADW_ACTION_ROW (self->device_row),
                                 _("No Vulkan device: install a GPU driver, or Mesa’s lavapipe "
                                   "(mesa-vulkan-drivers) to compute on the CPU"));
  /* Appending must not move the selection and write it back over the user's choice. */
  self->syncing_device = TRUE;
  for (guint i = 0; list != NULL && i < list->len; i++)
    {
      const AtDeviceInfo *info = &g_array_index (list, AtDeviceInfo, i);
      g_autofree char *value = device_value (list, i);
      g_autofree char *label = g_strdup_printf ("%s (%s)", info->name, at_device_type_name (info->type));

      device_append (self, label, value);
    }
  self->syncing_device = FALSE;
  self->loading_devices = FALSE;
  gtk_widget_set_visible (GTK_WIDGET (self->device_spinner), FALSE);
  gtk_spinner_set_spinning (self->device_spinner, FALSE);
  device_sync_from_key (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LOADING_DEVICES]);
}

/* Opening a Vulkan instance and querying each device takes from milliseconds to seconds
 * (a driver that loads its compiler): never on the main thread. */
static void
list_devices (AtelierPreferences *self)
{
  g_autoptr (GTask) task = g_task_new (self, self->cancellable, list_devices_cb, NULL);

  g_task_set_source_tag (task, list_devices);
  g_task_run_in_thread (task, list_devices_worker);
}

/* --- rows that show a path --- */

static void
path_row_update (AtelierPreferences *self, AdwActionRow *row, GtkButton *clear, const char *key)
{
  g_autofree char *path = self->settings != NULL ? g_settings_get_string (self->settings, key) : g_strdup ("");
  g_autofree char *shown = NULL;

  gtk_widget_set_sensitive (GTK_WIDGET (clear), path[0] != '\0');
  if (path[0] == '\0' && row == self->data_folder_row)
    {
      g_autofree char *dir = atelier_store_default_dir ();
      g_autofree char *dir_shown = g_filename_display_name (dir);

      shown = g_strdup_printf (_("Default (%s)"), dir_shown);
    }
  else if (path[0] == '\0')
    shown = g_strdup (_("None"));
  else
    {
      g_autofree char *display = g_filename_display_name (path);

      shown = g_file_test (path, G_FILE_TEST_EXISTS) ? g_steal_pointer (&display)
                                                       : g_strdup_printf (_("%s (not found)"), display);
    }
  adw_action_row_set_subtitle (row, shown);
}

/* --- the model folder list --- */

static void folder_remove_cb (GtkButton *button, AtelierPreferences *self);

static GtkWidget *
folder_row_new (AtelierPreferences *self, const char *folder)
{
  AdwActionRow *row = ADW_ACTION_ROW (adw_action_row_new ());
  GtkWidget *remove = gtk_button_new_from_icon_name ("list-remove-symbolic");
  g_autofree char *base = g_path_get_basename (folder);
  g_autofree char *base_shown = g_filename_display_name (base);
  g_autofree char *shown = g_filename_display_name (folder);

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), base_shown);
  adw_action_row_set_subtitle (row, shown);
  gtk_widget_set_tooltip_text (remove, _("Remove From the List"));
  gtk_widget_set_valign (remove, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (remove, "flat");
  g_object_set_data_full (G_OBJECT (remove), "folder", g_strdup (folder), g_free);
  g_signal_connect_object (remove, "clicked", G_CALLBACK (folder_remove_cb), self, 0);
  adw_action_row_add_suffix (row, remove);
  return GTK_WIDGET (row);
}

static void
folders_update (AtelierPreferences *self)
{
  g_auto (GStrv) folders = self->settings != NULL ? g_settings_get_strv (self->settings, "model-folders") : NULL;
  GtkListBoxRow *row;

  while ((row = gtk_list_box_get_row_at_index (self->folders_list, 0)) != NULL)
    gtk_list_box_remove (self->folders_list, GTK_WIDGET (row));
  for (guint i = 0; folders != NULL && folders[i] != NULL; i++)
    gtk_list_box_append (self->folders_list, folder_row_new (self, folders[i]));
}

static void
folder_remove_cb (GtkButton *button, AtelierPreferences *self)
{
  const char *folder = g_object_get_data (G_OBJECT (button), "folder");
  g_auto (GStrv) folders = g_settings_get_strv (self->settings, "model-folders");
  g_autoptr (GStrvBuilder) kept = g_strv_builder_new ();
  g_auto (GStrv) result = NULL;

  for (guint i = 0; folders[i] != NULL; i++)
    if (g_strcmp0 (folders[i], folder) != 0)
      g_strv_builder_add (kept, folders[i]);
  result = g_strv_builder_end (kept);
  g_settings_set_strv (self->settings, "model-folders", (const char *const *) result);
}

/* --- file choosers --- */

static void
chooser_response_cb (GtkNativeDialog *chooser, int response, AtelierPreferences *self)
{
  const char *key = g_object_get_data (G_OBJECT (chooser), "key");
  g_autoptr (GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));
  const char *path = file != NULL ? g_file_peek_path (file) : NULL;

  if (response == GTK_RESPONSE_ACCEPT && path == NULL)
    {
      AdwToast *toast = adw_toast_new (_("Atelier can only use local files; choose one on this computer"));

      adw_preferences_window_add_toast (ADW_PREFERENCES_WINDOW (self), toast);
    }
  else if (response == GTK_RESPONSE_ACCEPT && g_strcmp0 (key, "model-folders") == 0)
    {
      g_auto (GStrv) folders = g_settings_get_strv (self->settings, key);

      if (!g_strv_contains ((const char *const *) folders, path))
        {
          g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
          g_auto (GStrv) result = NULL;

          g_strv_builder_addv (builder, (const char **) folders);
          g_strv_builder_add (builder, path);
          result = g_strv_builder_end (builder);
          g_settings_set_strv (self->settings, key, (const char *const *) result);
        }
    }
  else if (response == GTK_RESPONSE_ACCEPT)
    g_settings_set_string (self->settings, key, path);
  gtk_native_dialog_destroy (chooser);
  g_clear_object (&self->chooser);
}

static void
choose (AtelierPreferences *self, const char *title, GtkFileChooserAction action, const char *key)
{
  GtkFileChooserNative *chooser;

  if (self->settings == NULL)
    return;
  if (self->chooser != NULL)
    gtk_native_dialog_destroy (self->chooser);
  g_clear_object (&self->chooser);
  chooser = gtk_file_chooser_native_new (title, GTK_WINDOW (self), action, _("_Select"), _("_Cancel"));
  if (action == GTK_FILE_CHOOSER_ACTION_OPEN)
    {
      GtkFileFilter *models = gtk_file_filter_new ();
      GtkFileFilter *all = gtk_file_filter_new ();

      gtk_file_filter_set_name (models, _("Model Files"));
      for (const char *const *p = (const char *const[]) { "*.gguf", "*.safetensors", "*.ckpt", "*.pt", "*.pth",
                                                         "*.bin", "*.json", NULL };
           *p != NULL; p++)
        gtk_file_filter_add_pattern (models, *p);
      gtk_file_filter_set_name (all, _("All Files"));
      gtk_file_filter_add_pattern (all, "*");
      gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), models);
      gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), all);
      g_object_unref (models);
      g_object_unref (all);
    }
  g_object_set_data_full (G_OBJECT (chooser), "key", g_strdup (key), g_free);
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), TRUE);
  g_signal_connect_object (chooser, "response", G_CALLBACK (chooser_response_cb), self, 0);
  self->chooser = GTK_NATIVE_DIALOG (chooser);
  gtk_native_dialog_show (self->chooser);
}

static void
text_model_choose_cb (AtelierPreferences *self)
{
  choose (self, _("Default Language Model"), GTK_FILE_CHOOSER_ACTION_OPEN, "text-model");
}

static void
image_model_choose_cb (AtelierPreferences *self)
{
  choose (self, _("Default Image Model"), GTK_FILE_CHOOSER_ACTION_OPEN, "image-model");
}

static void
data_folder_choose_cb (AtelierPreferences *self)
{
  choose (self, _("Data Folder"), GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, "data-folder");
}

static void
folder_add_cb (AtelierPreferences *self)
{
  choose (self, _("Add a Model Folder"), GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, "model-folders");
}

static void
clear_cb (GtkButton *button, AtelierPreferences *self)
{
  const char *key = button == self->text_model_clear    ? "text-model"
                    : button == self->image_model_clear ? "image-model"
                                                        : "data-folder";

  if (self->settings != NULL)
    g_settings_reset (self->settings, key);
}

/* --- settings --- */

static void
settings_changed_cb (GSettings *settings, const char *key, AtelierPreferences *self)
{
  if (g_str_equal (key, "device"))
    device_sync_from_key (self);
  else if (g_str_equal (key, "text-model"))
    path_row_update (self, self->text_model_row, self->text_model_clear, key);
  else if (g_str_equal (key, "image-model"))
    path_row_update (self, self->image_model_row, self->image_model_clear, key);
  else if (g_str_equal (key, "data-folder"))
    path_row_update (self, self->data_folder_row, self->data_folder_clear, key);
  else if (g_str_equal (key, "model-folders"))
    folders_update (self);
}

static void
bind_settings (AtelierPreferences *self)
{
  static const struct
  {
    const char *key;
    gsize offset;
  } spins[] = {
    { "temperature", G_STRUCT_OFFSET (AtelierPreferences, temperature_spin) },
    { "top-k", G_STRUCT_OFFSET (AtelierPreferences, top_k_spin) },
    { "top-p", G_STRUCT_OFFSET (AtelierPreferences, top_p_spin) },
    { "min-p", G_STRUCT_OFFSET (AtelierPreferences, min_p_spin) },
    { "repeat-penalty", G_STRUCT_OFFSET (AtelierPreferences, repeat_penalty_spin) },
    { "max-tokens", G_STRUCT_OFFSET (AtelierPreferences, max_tokens_spin) },
  };

  for (guint i = 0; i < G_N_ELEMENTS (spins); i++)
    g_settings_bind (self->settings, spins[i].key, G_STRUCT_MEMBER (GtkSpinButton *, self, spins[i].offset), "value",
                     G_SETTINGS_BIND_DEFAULT);
  g_signal_connect_object (self->settings, "changed", G_CALLBACK (settings_changed_cb), self, 0);
  for (const char *const *key = (const char *const[]) { "device", "text-model", "image-model", "data-folder",
                                                        "model-folders", NULL };
       *key != NULL; key++)
    settings_changed_cb (self->settings, *key, self);
}

/* Without a schema nothing can be kept: show the defaults the widgets hold, locked. */
static void
lock_without_settings (AtelierPreferences *self)
{
  gtk_widget_set_sensitive (GTK_WIDGET (self->general_page), FALSE);
  gtk_widget_set_sensitive (GTK_WIDGET (self->writer_page), FALSE);
  path_row_update (self, self->text_model_row, self->text_model_clear, "text-model");
  path_row_update (self, self->image_model_row, self->image_model_clear, "image-model");
  path_row_update (self, self->data_folder_row, self->data_folder_clear, "data-folder");
  /* A toast holds one short line; the warning on the terminal names the schema. */
  adw_preferences_window_add_toast (ADW_PREFERENCES_WINDOW (self),
                                    adw_toast_new (_("Preferences cannot be saved; reinstall Atelier")));
}

/* --- the object --- */

static void
atelier_preferences_constructed (GObject *object)
{
  AtelierPreferences *self = ATELIER_PREFERENCES (object);

  G_OBJECT_CLASS (atelier_preferences_parent_class)->constructed (object);
  self->settings = atelier_settings_get ();
  if (self->settings != NULL)
    {
      g_object_ref (self->settings);
      bind_settings (self);
    }
  else
    lock_without_settings (self);
  list_devices (self);
}

static void
atelier_preferences_dispose (GObject *object)
{
  AtelierPreferences *self = ATELIER_PREFERENCES (object);

  g_cancellable_cancel (self->cancellable);
  if (self->chooser != NULL)
    gtk_native_dialog_destroy (self->chooser);
  g_clear_object (&self->chooser);
  gtk_widget_dispose_template (GTK_WIDGET (self), ATELIER_TYPE_PREFERENCES);
  G_OBJECT_CLASS (atelier_preferences_parent_class)->dispose (object);
}

static void
atelier_preferences_finalize (GObject *object)
{
  AtelierPreferences *self = ATELIER_PREFERENCES (object);

  g_clear_object (&self->settings);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->device_names);
  g_clear_pointer (&self->device_values, g_ptr_array_unref);
  G_OBJECT_CLASS (atelier_preferences_parent_class)->finalize (object);
}

static void
atelier_preferences_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  AtelierPreferences *self = ATELIER_PREFERENCES (object);

  switch (prop_id)
    {
    case PROP_LOADING_DEVICES:
      g_value_set_boolean (value, self->loading_devices);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
atelier_preferences_class_init (AtelierPreferencesClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->constructed = atelier_preferences_constructed;
  object_class->dispose = atelier_preferences_dispose;
  object_class->finalize = atelier_preferences_finalize;
  object_class->get_property = atelier_preferences_get_property;

  properties[PROP_LOADING_DEVICES] = g_param_spec_boolean ("loading-devices", NULL, NULL, FALSE,
                                                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_template_from_resource (widget_class, "/org/atelier/Atelier/atelier-preferences.ui");
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, general_page);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, writer_page);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, device_row);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, device_spinner);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, text_model_row);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, text_model_choose);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, text_model_clear);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, image_model_row);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, image_model_choose);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, image_model_clear);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, folder_add);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, folders_list);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, data_folder_row);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, data_folder_choose);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, data_folder_clear);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, temperature_spin);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, top_k_spin);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, top_p_spin);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, min_p_spin);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, repeat_penalty_spin);
  gtk_widget_class_bind_template_child (widget_class, AtelierPreferences, max_tokens_spin);
}

static void
atelier_preferences_init (AtelierPreferences *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->cancellable = g_cancellable_new ();
  self->device_names = gtk_string_list_new (NULL);
  self->device_values = g_ptr_array_new_with_free_func (g_free);
  /* Until the list arrives, a remembered device is not "not found", only not known yet. */
  self->loading_devices = TRUE;
  device_append (self, _("Automatic"), "");
  adw_combo_row_set_model (self->device_row, G_LIST_MODEL (self->device_names));
  g_signal_connect_object (self->device_row, "notify::selected", G_CALLBACK (device_selected_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->text_model_choose, "clicked", G_CALLBACK (text_model_choose_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->image_model_choose, "clicked", G_CALLBACK (image_model_choose_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->data_folder_choose, "clicked", G_CALLBACK (data_folder_choose_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->folder_add, "clicked", G_CALLBACK (folder_add_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->text_model_clear, "clicked", G_CALLBACK (clear_cb), self, 0);
  g_signal_connect_object (self->image_model_clear, "clicked", G_CALLBACK (clear_cb), self, 0);
  g_signal_connect_object (self->data_folder_clear, "clicked", G_CALLBACK (clear_cb), self, 0);
}

AtelierPreferences *
atelier_preferences_new (GtkWindow *parent)
{
  return g_object_new (ATELIER_TYPE_PREFERENCES, "transient-for", parent, NULL);
}

gboolean
atelier_preferences_get_loading_devices (AtelierPreferences *self)
{
  g_return_val_if_fail (ATELIER_IS_PREFERENCES (self), FALSE);
  return self->loading_devices;
}
