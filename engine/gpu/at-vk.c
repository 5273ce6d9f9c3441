/* at-vk.c: open the Vulkan loader and resolve the entry points listed in at-vk.h. */
#include "at-vk.h"

#include <gmodule.h>

#include "at-error.h"

AtVkFuncs at_vk;

static GModule *loader_module;

gboolean
at_vk_load_loader (GError **error)
{
  static const char *const names[] = { "libvulkan.so.1", "libvulkan.so" };
  gpointer sym = NULL;

  if (at_vk.vkGetInstanceProcAddr != NULL)
    return TRUE;

  /* An override for tests and for machines with a loader outside the library path. */
  if (g_getenv ("ATELIER_VULKAN_LOADER") != NULL)
    loader_module = g_module_open (g_getenv ("ATELIER_VULKAN_LOADER"), G_MODULE_BIND_LOCAL);
  else
    for (guint i = 0; i < G_N_ELEMENTS (names) && loader_module == NULL; i++)
      loader_module = g_module_open (names[i], G_MODULE_BIND_LOCAL);

  if (loader_module == NULL)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_NO_VULKAN,
                   "No Vulkan loader found (libvulkan.so.1): install it with "
                   "'apt-get install libvulkan1 mesa-vulkan-drivers' (Mesa's lavapipe runs "
                   "Atelier on the CPU when there is no GPU driver)");
      return FALSE;
    }
  if (!g_module_symbol (loader_module, "vkGetInstanceProcAddr", &sym) || sym == NULL)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_NO_VULKAN,
                   "The Vulkan loader %s has no vkGetInstanceProcAddr; reinstall libvulkan1",
                   g_module_name (loader_module));
      g_clear_pointer (&loader_module, g_module_close);
      return FALSE;
    }
  at_vk.vkGetInstanceProcAddr = (PFN_vkGetInstanceProcAddr) sym;

#define LOAD_GLOBAL(name) at_vk.name = (PFN_##name) at_vk.vkGetInstanceProcAddr (NULL, #name);
  AT_VK_GLOBAL_FUNCS (LOAD_GLOBAL)
#undef LOAD_GLOBAL

  if (at_vk.vkCreateInstance == NULL || at_vk.vkEnumerateInstanceExtensionProperties == NULL)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_NO_VULKAN,
                   "The Vulkan loader %s is broken (no vkCreateInstance)",
                   g_module_name (loader_module));
      return FALSE;
    }
  return TRUE;
}

gboolean
at_vk_load_instance (VkInstance instance, GError **error)
{
#define LOAD_INSTANCE(name)                                                                        \
  at_vk.name = (PFN_##name) at_vk.vkGetInstanceProcAddr (instance, #name);                         \
  if (at_vk.name == NULL)                                                                          \
    {                                                                                              \
      g_set_error (error, AT_ERROR, AT_ERROR_NO_VULKAN,                                            \
                   "The Vulkan loader lacks %s; it is older than Vulkan 1.1", #name);              \
      return FALSE;                                                                                \
    }
  AT_VK_INSTANCE_FUNCS (LOAD_INSTANCE)
#undef LOAD_INSTANCE
#define LOAD_OPTIONAL(name) at_vk.name = (PFN_##name) at_vk.vkGetInstanceProcAddr (instance, #name);
  AT_VK_INSTANCE_OPTIONAL_FUNCS (LOAD_OPTIONAL)
#undef LOAD_OPTIONAL
  return TRUE;
}

gboolean
at_vk_load_device (VkDevice device, GError **error)
{
#define LOAD_DEVICE(name)                                                                          \
  at_vk.name = (PFN_##name) at_vk.vkGetDeviceProcAddr (device, #name);                             \
  if (at_vk.name == NULL)                                                                          \
    {                                                                                              \
      g_set_error (error, AT_ERROR, AT_ERROR_NO_VULKAN, "The Vulkan driver lacks %s", #name);      \
      return FALSE;                                                                                \
    }
  AT_VK_DEVICE_FUNCS (LOAD_DEVICE)
#undef LOAD_DEVICE
  return TRUE;
}

const char *
at_vk_result_name (VkResult result)
{
  switch (result)
    {
#define CASE(r)                                                                                    \
  case r:                                                                                          \
    return #r;
      CASE (VK_SUCCESS)
      CASE (VK_NOT_READY)
      CASE (VK_TIMEOUT)
      CASE (VK_INCOMPLETE)
      CASE (VK_ERROR_OUT_OF_HOST_MEMORY)
      CASE (VK_ERROR_OUT_OF_DEVICE_MEMORY)
      CASE (VK_ERROR_INITIALIZATION_FAILED)
      CASE (VK_ERROR_DEVICE_LOST)
      CASE (VK_ERROR_MEMORY_MAP_FAILED)
      CASE (VK_ERROR_LAYER_NOT_PRESENT)
      CASE (VK_ERROR_EXTENSION_NOT_PRESENT)
      CASE (VK_ERROR_FEATURE_NOT_PRESENT)
      CASE (VK_ERROR_INCOMPATIBLE_DRIVER)
      CASE (VK_ERROR_TOO_MANY_OBJECTS)
      CASE (VK_ERROR_FORMAT_NOT_SUPPORTED)
      CASE (VK_ERROR_FRAGMENTED_POOL)
      CASE (VK_ERROR_OUT_OF_POOL_MEMORY)
      CASE (VK_ERROR_INVALID_SHADER_NV)
      CASE (VK_ERROR_UNKNOWN)
#undef CASE
    default:
      return "VK_ERROR_(unknown)";
    }
}

gboolean
at_vk_check (VkResult result, const char *what, GError **error)
{
  if (result == VK_SUCCESS)
    return TRUE;

  switch (result)
    {
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
      g_set_error (error, AT_ERROR, AT_ERROR_OUT_OF_DEVICE_MEMORY,
                   "Out of GPU memory while %s: close other GPU programs, or use a smaller "
                   "size, fewer tiles or a lower-precision model",
                   what);
      break;
    case VK_ERROR_OUT_OF_HOST_MEMORY:
      g_set_error (error, AT_ERROR, AT_ERROR_OUT_OF_HOST_MEMORY,
                   "Out of memory while %s (%s)", what, at_vk_result_name (result));
      break;
    case VK_ERROR_DEVICE_LOST:
      g_set_error (error, AT_ERROR, AT_ERROR_DEVICE_LOST,
                   "The GPU was lost while %s (driver reset or crash); restart the job", what);
      break;
    default:
      g_set_error (error, AT_ERROR, AT_ERROR_VULKAN, "Vulkan failed while %s: %s", what,
                   at_vk_result_name (result));
      break;
    }
  return FALSE;
}
