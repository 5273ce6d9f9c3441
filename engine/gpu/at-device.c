/* at-device.c: instance, physical device choice, feature query, logical device, pipeline cache. */
#include "at-device.h"

#include <gio/gio.h>
#include <string.h>

#include "at-error.h"

/* VK_KHR_cooperative_matrix is newer than Debian 12's headers; only its name is needed here. */
#define AT_EXT_COOPERATIVE_MATRIX_KHR "VK_KHR_cooperative_matrix"
#define AT_EXT_COOPERATIVE_MATRIX_NV "VK_NV_cooperative_matrix"

struct _AtDevice
{
  AtDeviceInfo info;
  VkPhysicalDevice physical;
  VkDevice device;
  VkQueue queue;
  guint32 queue_family;
  VkPhysicalDeviceMemoryProperties memory;
  GMutex queue_lock;

  VkPipelineCache pipeline_cache;
  char *pipeline_cache_path;
  GHashTable *pipelines; /* key string -> AtPipeline */
  GMutex pipelines_lock;
};

/* One instance per process; devices borrow it. */
static VkInstance instance;
static VkDebugUtilsMessengerEXT messenger;
static guint validation_messages;
static GMutex instance_lock;

const char *
at_device_type_name (VkPhysicalDeviceType type)
{
  switch (type)
    {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
      return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      return "CPU";
    default:
      return "other";
    }
}

static VKAPI_ATTR VkBool32 VKAPI_CALL
validation_cb (VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT type,
               const VkDebugUtilsMessengerCallbackDataEXT *data, void *user_data)
{
  if (severity < VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT)
    return VK_FALSE;
  g_atomic_int_inc (&validation_messages);
  /* g_critical: fatal inside GLib tests, so a validation message fails the test that caused it. */
  g_critical ("Vulkan validation: %s", data->pMessage);
  return VK_FALSE;
}

static gboolean
instance_has_layer (const char *name)
{
  guint32 n = 0;
  g_autofree VkLayerProperties *layers = NULL;

  if (at_vk.vkEnumerateInstanceLayerProperties (&n, NULL) != VK_SUCCESS)
    return FALSE;
  layers = g_new0 (VkLayerProperties, MAX (n, 1));
  if (at_vk.vkEnumerateInstanceLayerProperties (&n, layers) != VK_SUCCESS)
    return FALSE;
  for (guint i = 0; i < n; i++)
    if (strcmp (layers[i].layerName, name) == 0)
      return TRUE;
  return FALSE;
}

/* ATELIER_VALIDATION=1 turns on the Khronos validation layer with synchronization validation;
 * every warning or error it reports is a g_critical. */
static gboolean
ensure_instance (GError **error)
{
  static const char *const validation_layer = "VK_LAYER_KHRONOS_validation";
  VkApplicationInfo app = {
    .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
    .pApplicationName = "Atelier",
    .pEngineName = "atelier-engine",
    .apiVersion = VK_API_VERSION_1_2,
  };
  VkValidationFeatureEnableEXT enables[] = {
    VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT,
  };
  VkValidationFeaturesEXT features = {
    .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
    .enabledValidationFeatureCount = G_N_ELEMENTS (enables),
    .pEnabledValidationFeatures = enables,
  };
  const char *layers[1];
  const char *extensions[1];
  VkInstanceCreateInfo info = {
    .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
    .pApplicationInfo = &app,
  };
  gboolean validate = g_strcmp0 (g_getenv ("ATELIER_VALIDATION"), "1") == 0;
  guint32 version = VK_API_VERSION_1_0;

  g_mutex_lock (&instance_lock);
  if (instance != VK_NULL_HANDLE)
    {
      g_mutex_unlock (&instance_lock);
      return TRUE;
    }
  if (!at_vk_load_loader (error))
    goto fail;
  if (at_vk.vkEnumerateInstanceVersion != NULL)
    at_vk.vkEnumerateInstanceVersion (&version);
  if (version < VK_API_VERSION_1_1)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_NO_VULKAN,
                   "The Vulkan loader supports only Vulkan %u.%u; Atelier needs 1.1 or newer "
                   "(update libvulkan1)",
                   VK_API_VERSION_MAJOR (version), VK_API_VERSION_MINOR (version));
      goto fail;
    }
  if (validate)
    {
      if (!instance_has_layer (validation_layer))
        {
          g_set_error (error, AT_ERROR, AT_ERROR_NO_VULKAN,
                       "ATELIER_VALIDATION=1 but %s is not installed "
                       "(apt-get install vulkan-validationlayers)",
                       validation_layer);
          goto fail;
        }
      layers[0] = validation_layer;
      extensions[0] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
      info.enabledLayerCount = 1;
      info.ppEnabledLayerNames = layers;
      info.enabledExtensionCount = 1;
      info.ppEnabledExtensionNames = extensions;
      info.pNext = &features;
    }
  if (!at_vk_check (at_vk.vkCreateInstance (&info, NULL, &instance), "creating the Vulkan instance",
                    error))
    {
      g_prefix_error (error, "No usable Vulkan driver (install Mesa's lavapipe with "
                             "'apt-get install mesa-vulkan-drivers'): ");
      instance = VK_NULL_HANDLE;
      goto fail;
    }
  if (!at_vk_load_instance (instance, error))
    goto fail;
  if (validate && at_vk.vkCreateDebugUtilsMessengerEXT != NULL)
    {
      VkDebugUtilsMessengerCreateInfoEXT mi = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT
                           | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT
                       | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT
                       | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = validation_cb,
      };
      if (!at_vk_check (at_vk.vkCreateDebugUtilsMessengerEXT (instance, &mi, NULL, &messenger),
                        "creating the validation messenger", error))
        goto fail;
    }
  g_mutex_unlock (&instance_lock);
  return TRUE;

fail:
  g_mutex_unlock (&instance_lock);
  return FALSE;
}

static gboolean
has_extension (const VkExtensionProperties *exts, guint n, const char *name)
{
  for (guint i = 0; i < n; i++)
    if (strcmp (exts[i].extensionName, name) == 0)
      return TRUE;
  return FALSE;
}

static void
query_info (VkPhysicalDevice pd, guint index, AtDeviceInfo *out)
{
  VkPhysicalDeviceDriverProperties driver = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES };
  VkPhysicalDeviceSubgroupProperties subgroup = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES, .pNext = &driver
  };
  VkPhysicalDeviceSubgroupSizeControlProperties size_control = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES, .pNext = &subgroup
  };
  VkPhysicalDeviceShaderIntegerDotProductProperties dotp = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES,
    .pNext = &size_control
  };
  VkPhysicalDeviceProperties2 props = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2 };
  VkPhysicalDevice16BitStorageFeatures s16 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES
  };
  VkPhysicalDevice8BitStorageFeatures s8 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES, .pNext = &s16
  };
  VkPhysicalDeviceShaderFloat16Int8Features f16 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES, .pNext = &s8
  };
  VkPhysicalDeviceShaderIntegerDotProductFeatures dotf = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES, .pNext = &f16
  };
  VkPhysicalDeviceFeatures2 feats = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2 };
  VkPhysicalDeviceMemoryProperties mem;
  g_autofree VkExtensionProperties *exts = NULL;
  guint32 n_exts = 0, n_families = 0;
  g_autofree VkQueueFamilyProperties *families = NULL;
  VkPhysicalDeviceProperties base;
  gboolean vk13;

  memset (out, 0, sizeof *out);
  out->index = index;
  at_vk.vkGetPhysicalDeviceProperties (pd, &base);
  vk13 = base.apiVersion >= VK_API_VERSION_1_3;

  at_vk.vkEnumerateDeviceExtensionProperties (pd, NULL, &n_exts, NULL);
  exts = g_new0 (VkExtensionProperties, MAX (n_exts, 1));
  at_vk.vkEnumerateDeviceExtensionProperties (pd, NULL, &n_exts, exts);

  /* Chain only the structures the device's API version (or an extension) defines. */
  props.pNext = vk13 ? (void *) &dotp : (void *) &subgroup;
  if (!vk13 && !has_extension (exts, n_exts, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME)
      && base.apiVersion < VK_API_VERSION_1_2)
    subgroup.pNext = NULL;
  at_vk.vkGetPhysicalDeviceProperties2 (pd, &props);
  feats.pNext = vk13 ? (void *) &dotf : (void *) &f16;
  at_vk.vkGetPhysicalDeviceFeatures2 (pd, &feats);
  at_vk.vkGetPhysicalDeviceMemoryProperties (pd, &mem);

  g_strlcpy (out->name, props.properties.deviceName, sizeof out->name);
  out->type = props.properties.deviceType;
  out->vendor_id = props.properties.vendorID;
  out->device_id = props.properties.deviceID;
  out->api_version = props.properties.apiVersion;
  out->driver_version = props.properties.driverVersion;
  g_strlcpy (out->driver_name, driver.driverName, sizeof out->driver_name);
  g_strlcpy (out->driver_info, driver.driverInfo, sizeof out->driver_info);

  out->n_heaps = mem.memoryHeapCount;
  for (guint i = 0; i < mem.memoryHeapCount; i++)
    {
      out->heaps[i].size = mem.memoryHeaps[i].size;
      out->heaps[i].device_local = (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
    }
  for (guint i = 0; i < mem.memoryTypeCount; i++)
    {
      VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
      if ((mem.memoryTypes[i].propertyFlags & want) == want)
        out->unified_memory = TRUE;
    }

  out->fp16_arithmetic = f16.shaderFloat16;
  out->int8_arithmetic = f16.shaderInt8;
  out->storage_16bit = s16.storageBuffer16BitAccess;
  out->storage_8bit = s8.storageBuffer8BitAccess;
  out->subgroup_size = subgroup.subgroupSize;
  if (vk13)
    {
      out->subgroup_min_size = size_control.minSubgroupSize;
      out->subgroup_max_size = size_control.maxSubgroupSize;
      out->integer_dot_product = dotf.shaderIntegerDotProduct;
      out->integer_dot_product_accelerated = dotp.integerDotProduct4x8BitPackedSignedAccelerated;
    }
  if (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT)
    out->subgroup_ops = subgroup.supportedOperations;
  out->cooperative_matrix = has_extension (exts, n_exts, AT_EXT_COOPERATIVE_MATRIX_KHR);
  out->cooperative_matrix_nv = has_extension (exts, n_exts, AT_EXT_COOPERATIVE_MATRIX_NV);

  out->max_storage_buffer_range = props.properties.limits.maxStorageBufferRange;
  out->max_buffer_size = G_MAXUINT32; /* maxBufferSize is Vulkan 1.3; 4 GiB is the safe floor */
  out->min_storage_buffer_offset_alignment = props.properties.limits.minStorageBufferOffsetAlignment;
  out->max_push_constants_size = props.properties.limits.maxPushConstantsSize;
  out->max_compute_shared_memory = props.properties.limits.maxComputeSharedMemorySize;
  memcpy (out->max_workgroup_count, props.properties.limits.maxComputeWorkGroupCount,
          sizeof out->max_workgroup_count);
  out->max_workgroup_invocations = props.properties.limits.maxComputeWorkGroupInvocations;

  at_vk.vkGetPhysicalDeviceQueueFamilyProperties (pd, &n_families, NULL);
  families = g_new0 (VkQueueFamilyProperties, MAX (n_families, 1));
  at_vk.vkGetPhysicalDeviceQueueFamilyProperties (pd, &n_families, families);
  for (guint i = 0; i < n_families; i++)
    if ((families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && families[i].timestampValidBits > 0)
      {
        out->timestamp_period = props.properties.limits.timestampPeriod;
        break;
      }
}

static GPtrArray *
enumerate_physical (GError **error)
{
  guint32 n = 0;
  g_autoptr (GPtrArray) out = NULL;
  g_autofree VkPhysicalDevice *pds = NULL;

  if (!ensure_instance (error))
    return NULL;
  if (!at_vk_check (at_vk.vkEnumeratePhysicalDevices (instance, &n, NULL), "listing devices", error))
    return NULL;
  pds = g_new0 (VkPhysicalDevice, MAX (n, 1));
  if (!at_vk_check (at_vk.vkEnumeratePhysicalDevices (instance, &n, pds), "listing devices", error))
    return NULL;
  out = g_ptr_array_new ();
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (out, pds[i]);
  return g_steal_pointer (&out);
}

GArray *
at_device_list (GError **error)
{
  g_autoptr (GPtrArray) pds = enumerate_physical (error);
  GArray *out;

  if (pds == NULL)
    return NULL;
  out = g_array_sized_new (FALSE, TRUE, sizeof (AtDeviceInfo), pds->len);
  g_array_set_size (out, pds->len);
  for (guint i = 0; i < pds->len; i++)
    query_info (g_ptr_array_index (pds, i), i, &g_array_index (out, AtDeviceInfo, i));
  return out;
}

static int
type_rank (VkPhysicalDeviceType type)
{
  switch (type)
    {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
      return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      return 1;
    default:
      return 0;
    }
}

/* Returns the index into `infos` of the chosen device, or -1 with `error` set. */
static gint
choose_device (GArray *infos, const char *selector, GError **error)
{
  gint best = -1;

  if (infos->len == 0)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_NO_DEVICE,
                   "Vulkan found no device: install a GPU driver, or Mesa's lavapipe CPU device "
                   "with 'apt-get install mesa-vulkan-drivers'");
      return -1;
    }
  if (selector != NULL && *selector != '\0')
    {
      char *end = NULL;
      guint64 idx = g_ascii_strtoull (selector, &end, 10);
      if (end != selector && *end == '\0')
        {
          if (idx < infos->len)
            return (gint) idx;
          g_set_error (error, AT_ERROR, AT_ERROR_NO_DEVICE,
                       "ATELIER_DEVICE=%s: there are only %u Vulkan devices (0 to %u); "
                       "'atelier devices' lists them",
                       selector, infos->len, infos->len - 1);
          return -1;
        }
      for (guint i = 0; i < infos->len; i++)
        {
          g_autofree char *a = g_utf8_casefold (g_array_index (infos, AtDeviceInfo, i).name, -1);
          g_autofree char *b = g_utf8_casefold (selector, -1);
          if (strstr (a, b) != NULL)
            return (gint) i;
        }
      g_set_error (error, AT_ERROR, AT_ERROR_NO_DEVICE,
                   "ATELIER_DEVICE=%s names no Vulkan device; 'atelier devices' lists them",
                   selector);
      return -1;
    }
  for (guint i = 0; i < infos->len; i++)
    if (best < 0
        || type_rank (g_array_index (infos, AtDeviceInfo, i).type)
               > type_rank (g_array_index (infos, AtDeviceInfo, best).type))
      best = (gint) i;
  return best;
}

static char *
pipeline_cache_path (const AtDeviceInfo *info)
{
  g_autofree char *base = g_strdup_printf ("pipelines-%04x-%04x-%08x.bin", info->vendor_id,
                                           info->device_id, info->driver_version);
  return g_build_filename (g_get_user_cache_dir (), "atelier", base, NULL);
}

static void
create_pipeline_cache (AtDevice *self)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  VkPipelineCacheCreateInfo ci = { .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO };

  self->pipeline_cache_path = pipeline_cache_path (&self->info);
  /* A stale or foreign cache is rejected by the driver's own header check; a failed read
   * just starts empty. */
  if (g_file_get_contents (self->pipeline_cache_path, &data, &len, NULL))
    {
      ci.initialDataSize = len;
      ci.pInitialData = data;
    }
  if (at_vk.vkCreatePipelineCache (self->device, &ci, NULL, &self->pipeline_cache) != VK_SUCCESS)
    {
      ci.initialDataSize = 0;
      ci.pInitialData = NULL;
      if (at_vk.vkCreatePipelineCache (self->device, &ci, NULL, &self->pipeline_cache) != VK_SUCCESS)
        self->pipeline_cache = VK_NULL_HANDLE;
    }
}

void
at_device_save_pipeline_cache (AtDevice *self)
{
  size_t len = 0;
  g_autofree char *data = NULL;
  g_autofree char *dir = NULL;

  if (self->pipeline_cache == VK_NULL_HANDLE || self->pipeline_cache_path == NULL)
    return;
  if (at_vk.vkGetPipelineCacheData (self->device, self->pipeline_cache, &len, NULL) != VK_SUCCESS
      || len == 0)
    return;
  data = g_malloc (len);
  if (at_vk.vkGetPipelineCacheData (self->device, self->pipeline_cache, &len, data) != VK_SUCCESS)
    return;
  dir = g_path_get_dirname (self->pipeline_cache_path);
  /* The cache is an optimisation: a read-only or full cache dir only costs compile time. */
  if (g_mkdir_with_parents (dir, 0700) == 0)
    g_file_set_contents (self->pipeline_cache_path, data, (gssize) len, NULL);
}

static gboolean
create_logical (AtDevice *self, GError **error)
{
  float priority = 1.0f;
  guint32 n_families = 0;
  g_autofree VkQueueFamilyProperties *families = NULL;
  gint family = -1;
  VkPhysicalDevice16BitStorageFeatures s16 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
    .storageBuffer16BitAccess = self->info.storage_16bit,
  };
  VkPhysicalDevice8BitStorageFeatures s8 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES,
    .pNext = &s16,
    .storageBuffer8BitAccess = self->info.storage_8bit,
  };
  VkPhysicalDeviceShaderFloat16Int8Features f16 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
    .pNext = &s8,
    .shaderFloat16 = self->info.fp16_arithmetic,
    .shaderInt8 = self->info.int8_arithmetic,
  };
  VkDeviceQueueCreateInfo qi = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
    .queueCount = 1,
    .pQueuePriorities = &priority,
  };
  VkDeviceCreateInfo di = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
    .pNext = &f16,
    .queueCreateInfoCount = 1,
    .pQueueCreateInfos = &qi,
  };

  at_vk.vkGetPhysicalDeviceQueueFamilyProperties (self->physical, &n_families, NULL);
  families = g_new0 (VkQueueFamilyProperties, MAX (n_families, 1));
  at_vk.vkGetPhysicalDeviceQueueFamilyProperties (self->physical, &n_families, families);
  /* Prefer a compute family with timestamps; take any compute family otherwise. */
  for (guint i = 0; i < n_families; i++)
    if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
      {
        if (family < 0 || (families[i].timestampValidBits > 0 && families[family].timestampValidBits == 0))
          family = (gint) i;
      }
  if (family < 0)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_NO_DEVICE, "The Vulkan device %s has no compute queue",
                   self->info.name);
      return FALSE;
    }
  self->queue_family = (guint32) family;
  qi.queueFamilyIndex = self->queue_family;
  if (!at_vk_check (at_vk.vkCreateDevice (self->physical, &di, NULL, &self->device),
                    "opening the Vulkan device", error))
    {
      g_prefix_error (error, "%s: ", self->info.name);
      self->device = VK_NULL_HANDLE;
      return FALSE;
    }
  if (!at_vk_load_device (self->device, error))
    return FALSE;
  at_vk.vkGetDeviceQueue (self->device, self->queue_family, 0, &self->queue);
  return TRUE;
}

AtDevice *
at_device_new (const char *selector, GError **error)
{
  g_autoptr (GPtrArray) pds = NULL;
  g_autoptr (GArray) infos = NULL;
  g_autoptr (AtDevice) self = NULL;
  gint chosen;

  if (selector == NULL)
    selector = g_getenv ("ATELIER_DEVICE");
  if ((pds = enumerate_physical (error)) == NULL)
    return NULL;
  infos = g_array_sized_new (FALSE, TRUE, sizeof (AtDeviceInfo), pds->len);
  g_array_set_size (infos, pds->len);
  for (guint i = 0; i < pds->len; i++)
    query_info (g_ptr_array_index (pds, i), i, &g_array_index (infos, AtDeviceInfo, i));
  if ((chosen = choose_device (infos, selector, error)) < 0)
    return NULL;

  self = g_new0 (AtDevice, 1);
  g_mutex_init (&self->queue_lock);
  g_mutex_init (&self->pipelines_lock);
  self->info = g_array_index (infos, AtDeviceInfo, chosen);
  self->physical = g_ptr_array_index (pds, chosen);
  at_vk.vkGetPhysicalDeviceMemoryProperties (self->physical, &self->memory);
  if (self->info.api_version < VK_API_VERSION_1_1)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_NO_DEVICE,
                   "The Vulkan device %s supports only Vulkan %u.%u; Atelier needs 1.1",
                   self->info.name, VK_API_VERSION_MAJOR (self->info.api_version),
                   VK_API_VERSION_MINOR (self->info.api_version));
      return NULL;
    }
  if (!create_logical (self, error))
    return NULL;
  self->pipelines = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  create_pipeline_cache (self);
  return g_steal_pointer (&self);
}

/* Declared in at-pipeline.h; the device owns its pipelines. */
void _at_pipeline_free (AtDevice *device, AtPipeline *pipeline);

void
at_device_free (AtDevice *self)
{
  if (self == NULL)
    return;
  if (self->device != VK_NULL_HANDLE)
    {
      GHashTableIter iter;
      gpointer value;

      at_vk.vkDeviceWaitIdle (self->device);
      at_device_save_pipeline_cache (self);
      if (self->pipelines != NULL)
        {
          g_hash_table_iter_init (&iter, self->pipelines);
          while (g_hash_table_iter_next (&iter, NULL, &value))
            _at_pipeline_free (self, value);
        }
      if (self->pipeline_cache != VK_NULL_HANDLE)
        at_vk.vkDestroyPipelineCache (self->device, self->pipeline_cache, NULL);
      at_vk.vkDestroyDevice (self->device, NULL);
    }
  g_clear_pointer (&self->pipelines, g_hash_table_unref);
  g_free (self->pipeline_cache_path);
  g_mutex_clear (&self->queue_lock);
  g_mutex_clear (&self->pipelines_lock);
  g_free (self);
}

AtDevice *
at_device_get_default (GError **error)
{
  static GMutex lock;
  static AtDevice *def;
  static GError *def_error;
  AtDevice *ret;

  g_mutex_lock (&lock);
  if (def == NULL && def_error == NULL)
    def = at_device_new (NULL, &def_error);
  if (def == NULL)
    g_propagate_error (error, g_error_copy (def_error));
  ret = def;
  g_mutex_unlock (&lock);
  return ret;
}

const AtDeviceInfo *
at_device_get_info (AtDevice *self)
{
  return &self->info;
}

const char *
at_device_get_name (AtDevice *self)
{
  return self->info.name;
}

VkDevice
at_device_get_vk (AtDevice *self)
{
  return self->device;
}

VkPhysicalDevice
at_device_get_physical (AtDevice *self)
{
  return self->physical;
}

VkQueue
at_device_get_queue (AtDevice *self)
{
  return self->queue;
}

guint32
at_device_get_queue_family (AtDevice *self)
{
  return self->queue_family;
}

VkPipelineCache
at_device_get_pipeline_cache (AtDevice *self)
{
  return self->pipeline_cache;
}

gint
at_device_find_memory_type (AtDevice *self, guint32 type_bits, VkMemoryPropertyFlags required,
                            VkMemoryPropertyFlags preferred)
{
  gint fallback = -1;

  for (guint i = 0; i < self->memory.memoryTypeCount; i++)
    {
      VkMemoryPropertyFlags f = self->memory.memoryTypes[i].propertyFlags;
      if (!(type_bits & (1u << i)) || (f & required) != required)
        continue;
      if ((f & preferred) == preferred)
        return (gint) i;
      if (fallback < 0)
        fallback = (gint) i;
    }
  return fallback;
}

gboolean
at_device_memory_type_is (AtDevice *self, guint type_index, VkMemoryPropertyFlags flags)
{
  return type_index < self->memory.memoryTypeCount
         && (self->memory.memoryTypes[type_index].propertyFlags & flags) == flags;
}

gboolean
at_device_maps_device_memory (AtDevice *self)
{
  VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
  VkDeviceSize largest = 0;

  if (g_strcmp0 (g_getenv ("ATELIER_NO_MAPPED_DEVICE_MEMORY"), "1") == 0)
    return FALSE;
  for (guint i = 0; i < self->memory.memoryHeapCount; i++)
    if (self->memory.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
      largest = MAX (largest, self->memory.memoryHeaps[i].size);
  for (guint i = 0; i < self->memory.memoryTypeCount; i++)
    if ((self->memory.memoryTypes[i].propertyFlags & want) == want
        && self->memory.memoryHeaps[self->memory.memoryTypes[i].heapIndex].size >= largest)
      return TRUE;
  return FALSE;
}

void
at_device_lock_queue (AtDevice *self)
{
  g_mutex_lock (&self->queue_lock);
}

void
at_device_unlock_queue (AtDevice *self)
{
  g_mutex_unlock (&self->queue_lock);
}

GHashTable *
at_device_get_pipelines (AtDevice *self)
{
  return self->pipelines;
}

GMutex *
at_device_get_pipelines_lock (AtDevice *self)
{
  return &self->pipelines_lock;
}

guint
at_device_get_validation_message_count (AtDevice *self)
{
  return g_atomic_int_get (&validation_messages);
}
