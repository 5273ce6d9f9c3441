/* atelier-devices.c: `atelier devices [--json]`: every Vulkan device, its type, memory heaps
 * and the features the engine's shader paths depend on. */
#include "atelier-commands.h"

#include <json-glib/json-glib.h>
#include <stdio.h>

#include "at-engine.h"

static char *
version_string (guint32 v)
{
  return g_strdup_printf ("%u.%u.%u", VK_API_VERSION_MAJOR (v), VK_API_VERSION_MINOR (v),
                          VK_API_VERSION_PATCH (v));
}

static void
subgroup_ops_to (VkSubgroupFeatureFlags f, GPtrArray *out)
{
  static const struct { VkSubgroupFeatureFlags bit; const char *name; } ops[] = {
    { VK_SUBGROUP_FEATURE_BASIC_BIT, "basic" },
    { VK_SUBGROUP_FEATURE_VOTE_BIT, "vote" },
    { VK_SUBGROUP_FEATURE_ARITHMETIC_BIT, "arithmetic" },
    { VK_SUBGROUP_FEATURE_BALLOT_BIT, "ballot" },
    { VK_SUBGROUP_FEATURE_SHUFFLE_BIT, "shuffle" },
    { VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT, "shuffle_relative" },
    { VK_SUBGROUP_FEATURE_CLUSTERED_BIT, "clustered" },
    { VK_SUBGROUP_FEATURE_QUAD_BIT, "quad" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (ops); i++)
    if (f & ops[i].bit)
      g_ptr_array_add (out, (gpointer) ops[i].name);
}

static JsonNode *
device_json (const AtDeviceInfo *d, gboolean chosen)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *api = version_string (d->api_version);
  g_autoptr (GPtrArray) ops = g_ptr_array_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "index");
  json_builder_add_int_value (b, d->index);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, d->name);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, at_device_type_name (d->type));
  json_builder_set_member_name (b, "default");
  json_builder_add_boolean_value (b, chosen);
  json_builder_set_member_name (b, "vulkan");
  json_builder_add_string_value (b, api);
  json_builder_set_member_name (b, "driver");
  json_builder_add_string_value (b, d->driver_name);
  json_builder_set_member_name (b, "driver_info");
  json_builder_add_string_value (b, d->driver_info);
  json_builder_set_member_name (b, "heaps");
  json_builder_begin_array (b);
  for (guint i = 0; i < d->n_heaps; i++)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "bytes");
      json_builder_add_int_value (b, (gint64) d->heaps[i].size);
      json_builder_set_member_name (b, "device_local");
      json_builder_add_boolean_value (b, d->heaps[i].device_local);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "unified_memory");
  json_builder_add_boolean_value (b, d->unified_memory);
#define BOOL(key, v)                                                                               \
  json_builder_set_member_name (b, key);                                                           \
  json_builder_add_boolean_value (b, v);
  BOOL ("fp16_arithmetic", d->fp16_arithmetic)
  BOOL ("int8_arithmetic", d->int8_arithmetic)
  BOOL ("storage_16bit", d->storage_16bit)
  BOOL ("storage_8bit", d->storage_8bit)
  BOOL ("integer_dot_product", d->integer_dot_product)
  BOOL ("integer_dot_product_accelerated", d->integer_dot_product_accelerated)
  BOOL ("cooperative_matrix", d->cooperative_matrix)
  BOOL ("cooperative_matrix_nv", d->cooperative_matrix_nv)
#undef BOOL
  json_builder_set_member_name (b, "subgroup_size");
  json_builder_add_int_value (b, d->subgroup_size);
  json_builder_set_member_name (b, "subgroup_size_range");
  json_builder_begin_array (b);
  json_builder_add_int_value (b, d->subgroup_min_size);
  json_builder_add_int_value (b, d->subgroup_max_size);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "subgroup_operations");
  json_builder_begin_array (b);
  subgroup_ops_to (d->subgroup_ops, ops);
  for (guint i = 0; i < ops->len; i++)
    json_builder_add_string_value (b, g_ptr_array_index (ops, i));
  json_builder_end_array (b);
  json_builder_set_member_name (b, "max_storage_buffer_range");
  json_builder_add_int_value (b, (gint64) d->max_storage_buffer_range);
  json_builder_set_member_name (b, "max_shared_memory");
  json_builder_add_int_value (b, d->max_compute_shared_memory);
  json_builder_set_member_name (b, "timestamps");
  json_builder_add_boolean_value (b, d->timestamp_period > 0);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static void
print_device (const AtDeviceInfo *d, gboolean chosen)
{
  g_autofree char *api = version_string (d->api_version);
  g_autoptr (GPtrArray) ops = g_ptr_array_new ();
  g_autofree char *ops_text = NULL;
  const char *yes = "yes", *no = "no";

  printf ("%s%u: %s\n", chosen ? "* " : "  ", d->index, d->name);
  printf ("    type            %s\n", at_device_type_name (d->type));
  printf ("    vulkan          %s, driver %s %s\n", api, d->driver_name, d->driver_info);
  for (guint i = 0; i < d->n_heaps; i++)
    printf ("    memory heap %u   %.1f GiB%s\n", i, d->heaps[i].size / 1073741824.0,
            d->heaps[i].device_local ? ", device-local" : "");
  printf ("    unified memory  %s\n", d->unified_memory ? yes : no);
  printf ("    fp16 arithmetic %s; int8 arithmetic %s\n", d->fp16_arithmetic ? yes : no,
          d->int8_arithmetic ? yes : no);
  printf ("    16/8-bit storage %s / %s\n", d->storage_16bit ? yes : no, d->storage_8bit ? yes : no);
  subgroup_ops_to (d->subgroup_ops, ops);
  g_ptr_array_add (ops, NULL);
  ops_text = g_strjoinv (", ", (char **) ops->pdata);
  printf ("    subgroup        size %u (range %u-%u); %s\n", d->subgroup_size, d->subgroup_min_size,
          d->subgroup_max_size, ops_text);
  printf ("    integer dot     %s%s\n", d->integer_dot_product ? yes : no,
          d->integer_dot_product_accelerated ? " (accelerated)" : "");
  printf ("    cooperative matrix %s%s\n", d->cooperative_matrix ? "KHR" : no,
          d->cooperative_matrix_nv ? " (NV extension too)" : "");
  printf ("    max storage range %.0f MiB; shared memory %u KiB; timestamps %s\n",
          d->max_storage_buffer_range / 1048576.0, d->max_compute_shared_memory / 1024,
          d->timestamp_period > 0 ? yes : no);
}

int
atelier_cmd_devices (int argc, char **argv)
{
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- list Vulkan devices");
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) list = NULL;
  gint chosen = -1;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "atelier devices: %s\n", error->message);
      return 2;
    }
  if ((list = at_device_list (&error)) == NULL)
    {
      fprintf (stderr, "atelier devices: %s\n", error->message);
      return 1;
    }
  {
    /* Which one the engine would pick. */
    g_autoptr (GError) e2 = NULL;
    AtDevice *dev = at_device_get_default (&e2);
    if (dev != NULL)
      chosen = (gint) at_device_get_info (dev)->index;
    else if (!json)
      fprintf (stderr, "atelier devices: %s\n", e2->message);
  }
  if (json)
    {
      g_autoptr (JsonArray) arr = json_array_new ();
      g_autoptr (JsonNode) root = json_node_new (JSON_NODE_ARRAY);
      g_autofree char *text = NULL;
      for (guint i = 0; i < list->len; i++)
        json_array_add_element (arr, device_json (&g_array_index (list, AtDeviceInfo, i), (gint) i == chosen));
      json_node_set_array (root, arr);
      text = json_to_string (root, TRUE);
      printf ("%s\n", text);
    }
  else
    {
      if (list->len == 0)
        printf ("No Vulkan devices. Install Mesa's lavapipe: apt-get install mesa-vulkan-drivers\n");
      for (guint i = 0; i < list->len; i++)
        print_device (&g_array_index (list, AtDeviceInfo, i), (gint) i == chosen);
    }
  return list->len > 0 ? 0 : 1;
}
