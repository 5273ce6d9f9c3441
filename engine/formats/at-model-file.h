/* at-model-file.h: open whatever model path a user hands us, and say what it is.
 *
 * `at_model_file_open` takes a file (recognised by its first bytes, not its extension: GGUF,
 * safetensors, a PyTorch zip, a legacy PyTorch file, which is refused) or a folder (a diffusers
 * pipeline or single component, an ml5 style-network folder, a sharded safetensors index) and
 * returns one object holding every tensor set it opened. `at_model_file_recognize` then looks at
 * configs, metadata and tensor names and says which model it is.
 *
 * Tensors are reached by the names of the file's own state dict ("model.diffusion_model.
 * input_blocks.0.0.weight" in an SD checkpoint, "blk.0.attn_q.weight" in a GGUF); in a folder of
 * several components by "component/name" ("unet/conv_in.weight").
 * `at_model_file_expect` fetches one and checks its dtype and shape against what the model
 * expects, with a message that says which tensor is wrong and how.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "at-file-tensors.h"
#include "at-gguf.h"

G_BEGIN_DECLS

typedef enum
{
  AT_MODEL_FORMAT_GGUF,
  AT_MODEL_FORMAT_SAFETENSORS,
  AT_MODEL_FORMAT_SAFETENSORS_SHARDED, /* a *.safetensors.index.json (or a folder holding one) */
  AT_MODEL_FORMAT_DIFFUSERS,           /* a folder with model_index.json, or one component */
  AT_MODEL_FORMAT_TORCH,               /* .ckpt / .pt / .pth zip archive */
  AT_MODEL_FORMAT_ML5,                 /* manifest.json + raw float32 variables */
} AtModelFormat;

const char *at_model_format_name (AtModelFormat format);

typedef enum
{
  AT_MODEL_KIND_UNKNOWN,
  AT_MODEL_KIND_SD,       /* a whole Stable Diffusion checkpoint or pipeline */
  AT_MODEL_KIND_SD_UNET,  /* a Stable Diffusion UNet alone */
  AT_MODEL_KIND_VAE,      /* an AutoencoderKL alone */
  AT_MODEL_KIND_LLM,      /* a decoder-only language model */
  AT_MODEL_KIND_STYLE,    /* a feed-forward style-transfer network */
} AtModelKind;

const char *at_model_kind_name (AtModelKind kind);

typedef enum
{
  AT_PREDICTION_UNKNOWN,
  AT_PREDICTION_EPSILON,
  AT_PREDICTION_V,
} AtPrediction;

typedef struct
{
  AtModelKind kind;
  /* "sd1", "sd2", "sdxl", "llama", "qwen2", "phi3", "johnson", "engstrom", "cyclegan",
   * "animeganv2", ... NULL when unknown. */
  char *family;
  gboolean supported;       /* Atelier can run it (or will, in the issue that adds it) */
  gboolean inpainting;      /* an SD UNet with 9 input channels */
  gboolean vocabulary_only; /* a GGUF with a tokenizer but no weights */
  AtPrediction prediction;  /* SD only */
  /* Why: the evidence for a known kind ("UNet input conv has 9 channels"), what is missing
   * for an unknown one. One line per finding. */
  char *reason;
  /* What was read: context_dim, block_count, n_residual_blocks, ... (never NULL). */
  JsonObject *hyperparameters;
} AtModelInfo;

void at_model_info_clear (AtModelInfo *info);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (AtModelInfo, at_model_info_clear)

typedef struct _AtModelFile AtModelFile;

AtModelFile *at_model_file_open (const char *path, GError **error);
void at_model_file_free (AtModelFile *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtModelFile, at_model_file_free)

AtModelFormat at_model_file_get_format (AtModelFile *file);
const char *at_model_file_get_path (AtModelFile *file);
/* One line: "GGUF v3, alignment 32", "safetensors, header 12 KiB", "diffusers
 * StableDiffusionPipeline", ... */
char *at_model_file_describe_format (AtModelFile *file);

/* The tensor sets: one for a single file; one per component with weights for a diffusers
 * folder (named by the component: "unet", "vae", ...; "" for a single file). */
guint at_model_file_get_n_parts (AtModelFile *file);
const char *at_model_file_get_part_name (AtModelFile *file, guint i);
AtTensorSet *at_model_file_get_part (AtModelFile *file, guint i);
AtTensorSet *at_model_file_find_part (AtModelFile *file, const char *name);
guint at_model_file_get_n_tensors (AtModelFile *file);

/* The metadata a user can read, as JSON: GGUF key/values (arrays longer than `max_items`
 * summarised; 0 keeps all), safetensors __metadata__, PyTorch non-tensor entries, diffusers
 * model_index.json and every component's config. Never NULL (g_object_unref... json_object_unref). */
JsonObject *at_model_file_dup_metadata (AtModelFile *file, guint max_items);

/* The format's own handle, or NULL when the file is another format. */
AtGguf *at_model_file_get_gguf (AtModelFile *file);
struct _AtDiffusers *at_model_file_get_diffusers (AtModelFile *file);

/* A tensor by state-dict name ("part/name" inside a diffusers folder); NULL when absent. */
const AtTensorEntry *at_model_file_find_tensor (AtModelFile *file, const char *name, AtTensorSet **set);

/* Dtype classes for at_model_file_expect: bitmasks over AtFileDtype. */
#define AT_FILE_DTYPE_MASK(d) (1u << (d))
#define AT_FILE_DTYPES_FLOAT                                                                  \
  (AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_F64) | AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_F32)                \
   | AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_F16) | AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_BF16)             \
   | AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_F8_E4M3) | AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_F8_E5M2))
#define AT_FILE_DTYPES_QUANT                                                                  \
  (AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_Q8_0) | AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_Q4_0)              \
   | AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_Q4_1) | AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_Q5_0)            \
   | AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_Q5_1) | AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_Q2_K)            \
   | AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_Q3_K) | AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_Q4_K)            \
   | AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_Q5_K) | AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_Q6_K))

/* The tensor `name`, checked: present, its dtype in `dtypes` (a mask), `ndim` dimensions of
 * `shape` (outermost first; -1 in `shape` accepts any size). The error names the tensor, what
 * it is and what was expected. */
const AtTensorEntry *at_model_file_expect (AtModelFile *file, const char *name, guint32 dtypes, int ndim,
                                           const gint64 *shape, AtTensorSet **set, GError **error);

/* What the model is. Never fails: an unknown model is AT_MODEL_KIND_UNKNOWN with the reason. */
void at_model_file_recognize (AtModelFile *file, AtModelInfo *info);

G_END_DECLS
