/* at-diffusers.h: sharded safetensors (a *.safetensors.index.json beside its shards) and
 * diffusers pipeline folders (model_index.json + one subfolder per component).
 *
 * A sharded index is {"metadata": {"total_size": N}, "weight_map": {tensor -> shard}}; the
 * shards are plain file names in the index's folder. The result is ONE tensor set whose
 * entries point into every shard's mapping (`entry->container` = the shard's index in
 * order of first mention in the weight map).
 *
 * A diffusers folder's model_index.json names the pipeline class ("_class_name") and its
 * components, each `name: [library, class]` ("unet": ["diffusers", "UNet2DConditionModel"]);
 * [null, null] marks an absent optional component (a removed safety checker). Each component
 * folder holds a config (config.json; scheduler_config.json for schedulers,
 * tokenizer_config.json for tokenizers, preprocessor_config.json for feature extractors) and
 * maybe weights: diffusion_pytorch_model.safetensors (diffusers models), model.safetensors
 * (transformers models), a sharded "*.safetensors.index.json", variants such as
 * diffusion_pytorch_model.fp16.safetensors, or PyTorch pickles (*.bin).
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "at-file-tensors.h"

G_BEGIN_DECLS

/* Opens every shard the index names and checks that each tensor sits in the shard the index
 * says (and nowhere else). Shards are mapped, not copied; the set keeps them alive. */
AtTensorSet *at_safetensors_open_sharded (const char *index_path, GError **error);

typedef enum
{
  AT_DIFFUSERS_WEIGHTS_NONE,                /* no weights (scheduler, tokenizer) */
  AT_DIFFUSERS_WEIGHTS_SAFETENSORS,         /* one .safetensors file, opened */
  AT_DIFFUSERS_WEIGHTS_SAFETENSORS_SHARDED, /* a .safetensors.index.json, opened */
  /* A PyTorch pickle (.bin): `weights_path` names it, `tensors` is NULL; open it with the
   * PyTorch parser. */
  AT_DIFFUSERS_WEIGHTS_PYTORCH,
} AtDiffusersWeights;

typedef struct
{
  char *name;         /* "unet" */
  char *library;      /* "diffusers", "transformers" */
  char *class_name;   /* "UNet2DConditionModel" */
  char *folder;       /* absolute path */
  char *config_path;  /* the config file read, or NULL */
  JsonObject *config; /* its object, or NULL when the component has none */
  AtDiffusersWeights weights_format;
  char *weights_path;   /* the file chosen (see AtDiffusersWeights), or NULL */
  AtTensorSet *tensors; /* NULL unless the weights are safetensors */
} AtDiffusersComponent;

typedef struct _AtDiffusers AtDiffusers;

/* Opens the pipeline in `dir`. Where both full-precision and variant weights exist the full
 * file is taken (it loses nothing; the engine converts on upload). */
AtDiffusers *at_diffusers_open (const char *dir, GError **error);
/* Same, preferring the weights of `variant` ("fp16": diffusion_pytorch_model.fp16.safetensors)
 * and falling back to the full files for components without that variant. NULL = none. */
AtDiffusers *at_diffusers_open_variant (const char *dir, const char *variant, GError **error);
void at_diffusers_free (AtDiffusers *diffusers);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtDiffusers, at_diffusers_free)

const char *at_diffusers_get_class_name (AtDiffusers *diffusers);
/* "_diffusers_version", or NULL. */
const char *at_diffusers_get_version (AtDiffusers *diffusers);
/* Components with a library, in model_index.json order ([null, null] ones are left out). */
guint at_diffusers_get_n_components (AtDiffusers *diffusers);
const AtDiffusersComponent *at_diffusers_get_component (AtDiffusers *diffusers, guint index);
const AtDiffusersComponent *at_diffusers_find_component (AtDiffusers *diffusers, const char *name);

G_END_DECLS
