/* atelier-window.c: the main window. The modes' own content arrives with their issues; this
 * shell shows the modes and which Vulkan device the engine found (looked up off the main
 * thread, since creating a device can take a moment). */
#include "config.h"

#include "atelier-window.h"

#include <glib/gi18n.h>

#include "at-engine.h"

struct _AtelierWindow
{
  AdwApplicationWindow parent_instance;

  AdwToastOverlay *toasts;
  GtkLabel *device_label;
};

G_DEFINE_FINAL_TYPE (AtelierWindow, atelier_window, ADW_TYPE_APPLICATION_WINDOW)

static void
device_worker (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  GError *error = NULL;
  AtDevice *dev = at_device_get_default (&error);

  if (dev == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_strdup_printf ("%s (%s)", at_device_get_name (dev),
                                                  at_device_type_name (at_device_get_info (dev)->type)),
                           g_free);
}

static void
device_ready_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AtelierWindow *self = ATELIER_WINDOW (source);
  g_autoptr (GError) error = NULL;
  g_autofree char *name = g_task_propagate_pointer (G_TASK (result), &error);

  if (name == NULL)
    {
      gtk_label_set_text (self->device_label, _("No GPU"));
      adw_toast_overlay_add_toast (self->toasts, adw_toast_new (error->message));
      return;
    }
  gtk_label_set_text (self->device_label, name);
}

static void
atelier_window_class_init (AtelierWindowClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  gtk_widget_class_set_template_from_resource (widget_class, "/org/atelier/Atelier/atelier-window.ui");
  gtk_widget_class_bind_template_child (widget_class, AtelierWindow, toasts);
  gtk_widget_class_bind_template_child (widget_class, AtelierWindow, device_label);
}

static void
atelier_window_init (AtelierWindow *self)
{
  g_autoptr (GTask) task = NULL;

  gtk_widget_init_template (GTK_WIDGET (self));
  task = g_task_new (self, NULL, device_ready_cb, NULL);
  g_task_run_in_thread (task, device_worker);
}

AtelierWindow *
atelier_window_new (AtelierApplication *app)
{
  return g_object_new (ATELIER_TYPE_WINDOW, "application", app, NULL);
}
