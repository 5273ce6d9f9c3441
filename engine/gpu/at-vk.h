/* at-vk.h: the Vulkan entry points the engine uses, loaded at run time.
 *
 * The engine does not link against libvulkan: it opens libvulkan.so.1 with GModule when the
 * first device is needed, so a machine without the loader starts normally and gets a GError
 * that says how to install one. Every function the engine calls is listed once in the X-macro
 * lists below; `at_vk.vkCreateBuffer (...)` calls it.
 */
#pragma once

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>
#include <glib.h>

G_BEGIN_DECLS

/* Loaded with vkGetInstanceProcAddr (NULL, ...). */
#define AT_VK_GLOBAL_FUNCS(X)                                                                      \
  X (vkCreateInstance)                                                                             \
  X (vkEnumerateInstanceExtensionProperties)                                                       \
  X (vkEnumerateInstanceLayerProperties)                                                           \
  X (vkEnumerateInstanceVersion)

/* Loaded with vkGetInstanceProcAddr (instance, ...). */
#define AT_VK_INSTANCE_FUNCS(X)                                                                    \
  X (vkDestroyInstance)                                                                            \
  X (vkEnumeratePhysicalDevices)                                                                   \
  X (vkGetPhysicalDeviceProperties)                                                                \
  X (vkGetPhysicalDeviceProperties2)                                                               \
  X (vkGetPhysicalDeviceFeatures2)                                                                 \
  X (vkGetPhysicalDeviceMemoryProperties)                                                          \
  X (vkGetPhysicalDeviceFormatProperties)                                                          \
  X (vkGetPhysicalDeviceQueueFamilyProperties)                                                     \
  X (vkEnumerateDeviceExtensionProperties)                                                         \
  X (vkCreateDevice)                                                                               \
  X (vkGetDeviceProcAddr)

/* Optional instance functions (an extension): NULL when absent. */
#define AT_VK_INSTANCE_OPTIONAL_FUNCS(X)                                                           \
  X (vkCreateDebugUtilsMessengerEXT)                                                               \
  X (vkDestroyDebugUtilsMessengerEXT)

/* Loaded with vkGetDeviceProcAddr. */
#define AT_VK_DEVICE_FUNCS(X)                                                                      \
  X (vkDestroyDevice)                                                                              \
  X (vkGetDeviceQueue)                                                                             \
  X (vkDeviceWaitIdle)                                                                             \
  X (vkCreateBuffer)                                                                               \
  X (vkDestroyBuffer)                                                                              \
  X (vkCreateBufferView)                                                                           \
  X (vkDestroyBufferView)                                                                          \
  X (vkGetBufferMemoryRequirements)                                                                \
  X (vkAllocateMemory)                                                                             \
  X (vkFreeMemory)                                                                                 \
  X (vkBindBufferMemory)                                                                           \
  X (vkMapMemory)                                                                                  \
  X (vkUnmapMemory)                                                                                \
  X (vkFlushMappedMemoryRanges)                                                                    \
  X (vkInvalidateMappedMemoryRanges)                                                               \
  X (vkCreateShaderModule)                                                                         \
  X (vkDestroyShaderModule)                                                                        \
  X (vkCreateDescriptorSetLayout)                                                                  \
  X (vkDestroyDescriptorSetLayout)                                                                 \
  X (vkCreatePipelineLayout)                                                                       \
  X (vkDestroyPipelineLayout)                                                                      \
  X (vkCreateComputePipelines)                                                                     \
  X (vkDestroyPipeline)                                                                            \
  X (vkCreatePipelineCache)                                                                        \
  X (vkDestroyPipelineCache)                                                                       \
  X (vkGetPipelineCacheData)                                                                       \
  X (vkCreateDescriptorPool)                                                                       \
  X (vkDestroyDescriptorPool)                                                                      \
  X (vkAllocateDescriptorSets)                                                                     \
  X (vkUpdateDescriptorSets)                                                                       \
  X (vkCreateCommandPool)                                                                          \
  X (vkDestroyCommandPool)                                                                         \
  X (vkAllocateCommandBuffers)                                                                     \
  X (vkFreeCommandBuffers)                                                                         \
  X (vkBeginCommandBuffer)                                                                         \
  X (vkEndCommandBuffer)                                                                           \
  X (vkCmdBindPipeline)                                                                            \
  X (vkCmdBindDescriptorSets)                                                                      \
  X (vkCmdPushConstants)                                                                           \
  X (vkCmdDispatch)                                                                                \
  X (vkCmdPipelineBarrier)                                                                         \
  X (vkCmdCopyBuffer)                                                                              \
  X (vkCmdFillBuffer)                                                                              \
  X (vkCmdWriteTimestamp)                                                                          \
  X (vkCmdResetQueryPool)                                                                          \
  X (vkCreateQueryPool)                                                                            \
  X (vkDestroyQueryPool)                                                                           \
  X (vkGetQueryPoolResults)                                                                        \
  X (vkCreateFence)                                                                                \
  X (vkDestroyFence)                                                                               \
  X (vkResetFences)                                                                                \
  X (vkWaitForFences)                                                                              \
  X (vkQueueSubmit)

#define AT_VK_DECLARE(name) PFN_##name name;

typedef struct
{
  PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
  AT_VK_GLOBAL_FUNCS (AT_VK_DECLARE)
  AT_VK_INSTANCE_FUNCS (AT_VK_DECLARE)
  AT_VK_INSTANCE_OPTIONAL_FUNCS (AT_VK_DECLARE)
  AT_VK_DEVICE_FUNCS (AT_VK_DECLARE)
} AtVkFuncs;

#undef AT_VK_DECLARE

/* One table: the engine uses one instance and, per process, one set of device functions
 * (all devices of one loader share dispatch through the loader trampolines). */
extern AtVkFuncs at_vk;

gboolean at_vk_load_loader (GError **error);
gboolean at_vk_load_instance (VkInstance instance, GError **error);
gboolean at_vk_load_device (VkDevice device, GError **error);

/* Turn a failed VkResult into a GError: OUT_OF_DEVICE_MEMORY, DEVICE_LOST and the rest get their
 * own codes; `what` names the call or the object ("allocating 512 MiB for weights"). */
gboolean at_vk_check (VkResult result, const char *what, GError **error);
const char *at_vk_result_name (VkResult result);

G_END_DECLS
