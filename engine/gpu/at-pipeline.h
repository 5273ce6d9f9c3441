/* at-pipeline.h: compute pipelines from the embedded SPIR-V.
 *
 * Every shader in shaders/ is compiled by glslc at build time and embedded in the engine as
 * the GResource /org/atelier/shaders/<name>.spv. A pipeline is that module with its
 * specialisation constants (ids 0, 1, 2 are the workgroup size; later ids are op variants),
 * `n_bindings` buffers at set 0, bindings 0..n-1 (storage buffers, or uniform texel buffers
 * where `texel_bindings` has their bit), and one push-constant block.
 * Pipelines are created once per device and key, kept by the device, and go through the
 * device's VkPipelineCache.
 */
#pragma once

#include <glib.h>

#include "at-device.h"

G_BEGIN_DECLS

#define AT_MAX_SPEC_CONSTANTS 25
#define AT_MAX_BINDINGS 9

typedef struct
{
  const char *shader;                     /* resource name without .spv, e.g. "add" */
  guint n_spec;
  guint32 spec[AT_MAX_SPEC_CONSTANTS];    /* 4-byte values for constant_id 0..n_spec-1 */
  guint n_bindings;
  guint push_size;                        /* bytes, multiple of 4, at most 128 */
  guint32 texel_bindings;                 /* bit i: binding i is a uniform texel buffer */
} AtPipelineDesc;

struct _AtPipeline
{
  char *key;
  VkPipeline pipeline;
  VkPipelineLayout layout;
  VkDescriptorSetLayout set_layout;
  guint n_bindings;
  guint push_size;
  guint32 texel_bindings;
  guint32 local_size[3];
};

/* Borrowed: owned by the device. */
AtPipeline *at_pipeline_get (AtDevice *device, const AtPipelineDesc *desc, GError **error);

/* Whether the shader `name` is embedded (variants are only built for what meson lists). */
gboolean at_pipeline_shader_exists (const char *name);

G_END_DECLS
