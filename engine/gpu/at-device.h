/* at-device.h: one Vulkan instance, the physical devices it sees, and the logical device the
 * engine computes on.
 *
 * Choice: ATELIER_DEVICE=<index|name substring> when set, otherwise by type preference
 * (discrete > integrated > virtual > CPU). The features that decide which shader paths can run
 * (fp16 arithmetic, 16/8-bit storage, subgroup size and operations, integer dot product,
 * cooperative matrix) are queried and recorded in AtDeviceInfo.
 */
#pragma once

#include <glib.h>

#include "at-vk.h"

G_BEGIN_DECLS

typedef struct _AtDevice AtDevice;
typedef struct _AtPipeline AtPipeline;

typedef struct
{
  guint64 size;
  gboolean device_local;
} AtMemoryHeap;

typedef struct
{
  guint index;                 /* in vkEnumeratePhysicalDevices order */
  char name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE];
  VkPhysicalDeviceType type;
  guint32 vendor_id, device_id;
  guint32 api_version, driver_version;
  char driver_name[VK_MAX_DRIVER_NAME_SIZE];
  char driver_info[VK_MAX_DRIVER_INFO_SIZE];

  guint n_heaps;
  AtMemoryHeap heaps[VK_MAX_MEMORY_HEAPS];
  gboolean unified_memory;     /* a device-local memory type that is also host-visible */

  /* Features the shaders can use. */
  gboolean fp16_arithmetic;    /* shaderFloat16 */
  gboolean int8_arithmetic;    /* shaderInt8 */
  gboolean storage_16bit;      /* storageBuffer16BitAccess */
  gboolean storage_8bit;       /* storageBuffer8BitAccess */
  guint subgroup_size;
  guint subgroup_min_size, subgroup_max_size; /* subgroup size control, 0 when absent */
  VkSubgroupFeatureFlags subgroup_ops;        /* in compute shaders */
  gboolean integer_dot_product;               /* shaderIntegerDotProduct */
  gboolean integer_dot_product_accelerated;   /* 4x8-bit packed signed, accelerated */
  gboolean cooperative_matrix;                /* VK_KHR_cooperative_matrix */
  gboolean cooperative_matrix_nv;             /* VK_NV_cooperative_matrix */

  /* Limits the engine plans around. */
  guint64 max_storage_buffer_range;
  guint64 max_buffer_size;          /* maxBufferSize or maxMemoryAllocationSize */
  guint64 min_storage_buffer_offset_alignment;
  guint32 max_push_constants_size;
  guint32 max_compute_shared_memory;
  guint32 max_workgroup_count[3];
  guint32 max_workgroup_invocations;
  float timestamp_period;           /* ns per tick; 0 when compute queues have no timestamps */
} AtDeviceInfo;

const char *at_device_type_name (VkPhysicalDeviceType type);

/* Every device the loader sees, in enumeration order (an array of AtDeviceInfo). */
GArray *at_device_list (GError **error);

/* `selector` NULL uses $ATELIER_DEVICE, then type preference. */
AtDevice *at_device_new (const char *selector, GError **error);
void at_device_free (AtDevice *device);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtDevice, at_device_free)

/* The process-wide default device, created on first use (thread-safe). */
AtDevice *at_device_get_default (GError **error);

const AtDeviceInfo *at_device_get_info (AtDevice *device);
const char *at_device_get_name (AtDevice *device);

/* For the other gpu/ modules. */
VkDevice at_device_get_vk (AtDevice *device);
VkPhysicalDevice at_device_get_physical (AtDevice *device);
VkQueue at_device_get_queue (AtDevice *device);
guint32 at_device_get_queue_family (AtDevice *device);
VkPipelineCache at_device_get_pipeline_cache (AtDevice *device);
/* A memory type index with `required` flags (and `preferred` when one has them too). */
gint at_device_find_memory_type (AtDevice *device, guint32 type_bits,
                                 VkMemoryPropertyFlags required, VkMemoryPropertyFlags preferred);
gboolean at_device_memory_type_is (AtDevice *device, guint type_index, VkMemoryPropertyFlags flags);
/* Whether device-local memory may be mapped for direct uploads: only where the mappable
 * device-local type sits on the largest device-local heap (unified memory, resizable BAR), not a
 * 256 MiB BAR window; never with ATELIER_NO_MAPPED_DEVICE_MEMORY=1 (tests use it to exercise
 * the staging path). */
gboolean at_device_maps_device_memory (AtDevice *device);

/* Submission on the one queue is serialised by the device (Vulkan requires external
 * synchronisation of a VkQueue). */
void at_device_lock_queue (AtDevice *device);
void at_device_unlock_queue (AtDevice *device);

/* The pipelines of this device, keyed by shader name and specialisation; see at-pipeline.h. */
GHashTable *at_device_get_pipelines (AtDevice *device);
GMutex *at_device_get_pipelines_lock (AtDevice *device);

/* Writes the VkPipelineCache to the user cache dir now (also done by at_device_free). */
void at_device_save_pipeline_cache (AtDevice *device);

/* Count of validation-layer messages seen (ATELIER_VALIDATION=1); tests assert it stays 0. */
guint at_device_get_validation_message_count (AtDevice *device);

G_END_DECLS
