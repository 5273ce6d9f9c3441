/* at-pipeline.c: VkPipeline creation from embedded SPIR-V, cached per device. */
#include "at-pipeline.h"

#include <gio/gio.h>

#include "at-error.h"
#include "at-shaders.h"

/* The embedded shaders (registered once; a static library gives no constructor a chance). */
static GResource *
shaders_resource (void)
{
  static gsize once;

  if (g_once_init_enter (&once))
    {
      at_shaders_register_resource ();
      g_once_init_leave (&once, 1);
    }
  return at_shaders_get_resource ();
}

static char *
pipeline_key (const AtPipelineDesc *d)
{
  GString *s = g_string_new (d->shader);

  g_string_append_printf (s, "/b%u/p%u", d->n_bindings, d->push_size);
  if (d->texel_bindings != 0)
    g_string_append_printf (s, "/t%x", d->texel_bindings);
  for (guint i = 0; i < d->n_spec; i++)
    g_string_append_printf (s, "/%08x", d->spec[i]);
  return g_string_free (s, FALSE);
}

static GBytes *
load_spirv (const char *name, GError **error)
{
  g_autofree char *path = g_strdup_printf ("/org/atelier/shaders/%s.spv", name);
  GBytes *bytes = g_resource_lookup_data (shaders_resource (), path,
                                         G_RESOURCE_LOOKUP_FLAGS_NONE, NULL);

  if (bytes == NULL)
    g_set_error (error, AT_ERROR, AT_ERROR_SHADER,
                 "The shader '%s' is not built into this engine (rebuild Atelier)", name);
  return bytes;
}

gboolean
at_pipeline_shader_exists (const char *name)
{
  g_autofree char *path = g_strdup_printf ("/org/atelier/shaders/%s.spv", name);
  return g_resource_get_info (shaders_resource (), path, G_RESOURCE_LOOKUP_FLAGS_NONE, NULL,
                             NULL, NULL);
}

void _at_pipeline_free (AtDevice *device, AtPipeline *p);

void
_at_pipeline_free (AtDevice *device, AtPipeline *p)
{
  VkDevice dev = at_device_get_vk (device);

  if (p->pipeline != VK_NULL_HANDLE)
    at_vk.vkDestroyPipeline (dev, p->pipeline, NULL);
  if (p->layout != VK_NULL_HANDLE)
    at_vk.vkDestroyPipelineLayout (dev, p->layout, NULL);
  if (p->set_layout != VK_NULL_HANDLE)
    at_vk.vkDestroyDescriptorSetLayout (dev, p->set_layout, NULL);
  g_free (p->key);
  g_free (p);
}

static AtPipeline *
create_pipeline (AtDevice *device, const AtPipelineDesc *d, const char *key, GError **error)
{
  VkDevice dev = at_device_get_vk (device);
  g_autoptr (GBytes) spirv = NULL;
  VkDescriptorSetLayoutBinding bindings[AT_MAX_BINDINGS];
  VkSpecializationMapEntry entries[AT_MAX_SPEC_CONSTANTS];
  VkShaderModule module = VK_NULL_HANDLE;
  g_autofree char *doing = g_strdup_printf ("building the '%s' pipeline", d->shader);
  AtPipeline *p = g_new0 (AtPipeline, 1);
  gsize len;
  const guint32 *code;

  p->key = g_strdup (key);
  p->n_bindings = d->n_bindings;
  p->push_size = d->push_size;
  p->texel_bindings = d->texel_bindings;
  for (guint i = 0; i < 3; i++)
    p->local_size[i] = i < d->n_spec ? d->spec[i] : 1;

  if ((spirv = load_spirv (d->shader, error)) == NULL)
    goto fail;
  code = g_bytes_get_data (spirv, &len);
  if (len < 20 || len % 4 != 0 || code[0] != 0x07230203u)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_SHADER, "The shader '%s' is not valid SPIR-V",
                   d->shader);
      goto fail;
    }

  for (guint i = 0; i < d->n_bindings; i++)
    bindings[i] = (VkDescriptorSetLayoutBinding) {
      .binding = i,
      .descriptorType = (d->texel_bindings >> i) & 1 ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
                                                     : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .descriptorCount = 1,
      .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    };
  {
    VkDescriptorSetLayoutCreateInfo li = {
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
      .bindingCount = d->n_bindings,
      .pBindings = bindings,
    };
    if (!at_vk_check (at_vk.vkCreateDescriptorSetLayout (dev, &li, NULL, &p->set_layout), doing, error))
      goto fail;
  }
  {
    VkPushConstantRange range = {
      .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
      .offset = 0,
      .size = d->push_size,
    };
    VkPipelineLayoutCreateInfo pi = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
      .setLayoutCount = 1,
      .pSetLayouts = &p->set_layout,
      .pushConstantRangeCount = d->push_size > 0 ? 1 : 0,
      .pPushConstantRanges = &range,
    };
    if (!at_vk_check (at_vk.vkCreatePipelineLayout (dev, &pi, NULL, &p->layout), doing, error))
      goto fail;
  }
  {
    VkShaderModuleCreateInfo mi = {
      .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
      .codeSize = len,
      .pCode = code,
    };
    if (!at_vk_check (at_vk.vkCreateShaderModule (dev, &mi, NULL, &module), doing, error))
      goto fail;
  }
  for (guint i = 0; i < d->n_spec; i++)
    entries[i] = (VkSpecializationMapEntry) { .constantID = i, .offset = i * 4, .size = 4 };
  {
    VkSpecializationInfo si = {
      .mapEntryCount = d->n_spec,
      .pMapEntries = entries,
      .dataSize = d->n_spec * 4,
      .pData = d->spec,
    };
    VkComputePipelineCreateInfo ci = {
      .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
      .stage = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
        .stage = VK_SHADER_STAGE_COMPUTE_BIT,
        .module = module,
        .pName = "main",
        .pSpecializationInfo = d->n_spec > 0 ? &si : NULL,
      },
      .layout = p->layout,
    };
    VkResult r = at_vk.vkCreateComputePipelines (dev, at_device_get_pipeline_cache (device), 1,
                                                 &ci, NULL, &p->pipeline);
    at_vk.vkDestroyShaderModule (dev, module, NULL);
    if (!at_vk_check (r, doing, error))
      goto fail;
  }
  return p;

fail:
  p->pipeline = VK_NULL_HANDLE;
  _at_pipeline_free (device, p);
  return NULL;
}

AtPipeline *
at_pipeline_get (AtDevice *device, const AtPipelineDesc *desc, GError **error)
{
  GMutex *lock = at_device_get_pipelines_lock (device);
  GHashTable *table = at_device_get_pipelines (device);
  const AtDeviceInfo *info = at_device_get_info (device);
  char *key;
  AtPipeline *p;

  if (desc->n_bindings > AT_MAX_BINDINGS || desc->n_spec > AT_MAX_SPEC_CONSTANTS
      || desc->push_size % 4 != 0 || desc->push_size > info->max_push_constants_size
      || (desc->texel_bindings >> desc->n_bindings) != 0)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID,
                   "Pipeline '%s': %u bindings, %u constants, %u push bytes exceed the limits",
                   desc->shader, desc->n_bindings, desc->n_spec, desc->push_size);
      return NULL;
    }
  key = pipeline_key (desc);
  g_mutex_lock (lock);
  p = g_hash_table_lookup (table, key);
  if (p == NULL && (p = create_pipeline (device, desc, key, error)) != NULL)
    g_hash_table_insert (table, g_steal_pointer (&key), p);
  g_free (key);
  g_mutex_unlock (lock);
  return p;
}
