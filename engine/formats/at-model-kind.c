/* at-model-kind.c: which model a file holds, from its configs, metadata and tensor names.
 *
 * The evidence, strongest first: a diffusers pipeline's configs (unet cross_attention_dim,
 * in_channels, scheduler prediction_type); a GGUF's general.architecture; then the tensor names
 * and shapes every known checkpoint layout has (an SD checkpoint's
 * model.diffusion_model.input_blocks.0.0.weight, whose input channels tell an inpainting UNet,
 * and attn2.to_k, whose input width tells SD 1.x (768, CLIP ViT-L) from 2.x (1024, OpenCLIP
 * ViT-H)). Every finding is written into `reason`, so `atelier models inspect` can say why.
 */
#include "at-model-file.h"

#include <string.h>

#include "at-diffusers.h"
#include "at-safetensors.h"

typedef struct
{
  AtModelFile *file;
  AtModelInfo *info;
  GString *reason;
} Ctx;

static void G_GNUC_PRINTF (2, 3)
note (Ctx *c, const char *format, ...)
{
  va_list args;

  if (c->reason->len > 0)
    g_string_append_c (c->reason, '\n');
  va_start (args, format);
  g_string_append_vprintf (c->reason, format, args);
  va_end (args);
}

static const AtTensorEntry *
find (Ctx *c, const char *name)
{
  return at_model_file_find_tensor (c->file, name, NULL);
}

/* Dimension `dim` of tensor `name`, or -1 when absent or too small. */
static gint64
dim_of (Ctx *c, const char *name, int dim)
{
  const AtTensorEntry *e = find (c, name);

  return e != NULL && dim < e->ndim ? e->shape[dim] : -1;
}

static void
set_int (Ctx *c, const char *key, gint64 v)
{
  json_object_set_int_member (c->info->hyperparameters, key, v);
}

static void
set_string (Ctx *c, const char *key, const char *v)
{
  json_object_set_string_member (c->info->hyperparameters, key, v);
}

void
at_model_info_clear (AtModelInfo *info)
{
  g_clear_pointer (&info->family, g_free);
  g_clear_pointer (&info->reason, g_free);
  g_clear_pointer (&info->hyperparameters, json_object_unref);
  memset (info, 0, sizeof *info);
}

const char *
at_model_kind_name (AtModelKind kind)
{
  switch (kind)
    {
    case AT_MODEL_KIND_SD:
      return "Stable Diffusion checkpoint";
    case AT_MODEL_KIND_SD_UNET:
      return "Stable Diffusion UNet";
    case AT_MODEL_KIND_VAE:
      return "VAE (AutoencoderKL)";
    case AT_MODEL_KIND_LLM:
      return "language model";
    case AT_MODEL_KIND_STYLE:
      return "style network";
    default:
      return "unknown";
    }
}

static void
sd_family_from_context (Ctx *c, gint64 context_dim)
{
  AtModelInfo *info = c->info;

  set_int (c, "context_dim", context_dim);
  if (context_dim == 768)
    {
      info->family = g_strdup ("sd1");
      info->supported = TRUE;
      set_string (c, "text_encoder", "CLIP ViT-L/14");
      note (c, "cross-attention takes 768-wide text features (CLIP ViT-L/14): SD 1.x");
    }
  else if (context_dim == 1024)
    {
      info->family = g_strdup ("sd2");
      info->supported = TRUE;
      set_string (c, "text_encoder", "OpenCLIP ViT-H/14");
      note (c, "cross-attention takes 1024-wide text features (OpenCLIP ViT-H/14): SD 2.x");
    }
  else if (context_dim == 2048)
    {
      info->family = g_strdup ("sdxl");
      note (c, "cross-attention takes 2048-wide text features: SD XL, which Atelier does not run yet");
    }
  else
    note (c, "cross-attention width %" G_GINT64_FORMAT " matches no Stable Diffusion version", context_dim);
}

static void
sd_unet_channels (Ctx *c, gint64 in_channels, gint64 model_channels)
{
  set_int (c, "in_channels", in_channels);
  if (model_channels > 0)
    set_int (c, "model_channels", model_channels);
  if (in_channels == 9)
    {
      c->info->inpainting = TRUE;
      note (c, "the UNet's input convolution takes 9 channels (latent + mask + masked image): inpainting");
    }
  else if (in_channels == 8)
    {
      c->info->supported = FALSE;
      note (c, "the UNet's input convolution takes 8 channels (an image-editing model such as "
               "InstructPix2Pix), which Atelier does not run");
    }
  else if (in_channels != 4)
    {
      c->info->supported = FALSE;
      note (c, "the UNet's input convolution takes %" G_GINT64_FORMAT " channels (4 expected)", in_channels);
    }
}

/* The sidecar `<name>.yaml` that A1111 reads beside a checkpoint: parameterization: "v". */
static gboolean
sidecar_says_v (Ctx *c)
{
  const char *path = at_model_file_get_path (c->file);
  const char *dot = strrchr (path, '.');
  g_autofree char *stem = dot != NULL ? g_strndup (path, (gsize) (dot - path)) : g_strdup (path);
  g_autofree char *yaml = g_strconcat (stem, ".yaml", NULL);
  g_autofree char *text = NULL;
  gsize size;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents (yaml, &text, &size, NULL) || size > 1 << 20)
    return FALSE;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autofree char *l = g_strstrip (g_strdup (lines[i]));

      if (g_str_has_prefix (l, "parameterization:"))
        {
          g_autofree char *v = g_strstrip (g_strdup (l + strlen ("parameterization:")));

          if (strcmp (v, "\"v\"") == 0 || strcmp (v, "'v'") == 0 || strcmp (v, "v") == 0)
            {
              note (c, "%s beside the file says parameterization: v", yaml);
              return TRUE;
            }
        }
    }
  return FALSE;
}

static void
sd_prediction_single_file (Ctx *c)
{
  AtModelInfo *info = c->info;
  const char *ms = NULL;

  if (find (c, "v_pred") != NULL)
    {
      info->prediction = AT_PREDICTION_V;
      note (c, "a \"v_pred\" tensor marks v-prediction");
      return;
    }
  /* Stability's ModelSpec metadata (safetensors __metadata__). */
  {
    g_autoptr (JsonObject) m = at_model_file_dup_metadata (c->file, 1);

    if (json_object_has_member (m, "modelspec.prediction_type"))
      ms = json_object_get_string_member_with_default (m, "modelspec.prediction_type", NULL);
    if (ms != NULL)
      {
        info->prediction = g_str_has_prefix (ms, "v") ? AT_PREDICTION_V : AT_PREDICTION_EPSILON;
        note (c, "metadata modelspec.prediction_type is \"%s\"", ms);
        return;
      }
  }
  if (sidecar_says_v (c))
    {
      info->prediction = AT_PREDICTION_V;
      return;
    }
  if (g_strcmp0 (info->family, "sd1") == 0)
    info->prediction = AT_PREDICTION_EPSILON;
  else if (g_strcmp0 (info->family, "sd2") == 0)
    note (c, "an SD 2.x file does not record whether it predicts noise (512-base) or v (768-v): "
             "put a .yaml with parameterization: \"v\" beside a 768-v file");
}

static gboolean
recognize_sd_checkpoint (Ctx *c)
{
  AtModelInfo *info = c->info;
  const char *p = "model.diffusion_model.";
  g_autofree char *in_name = g_strconcat (p, "input_blocks.0.0.weight", NULL);
  g_autofree char *k_name = g_strconcat (p, "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", NULL);
  gint64 in_ch = dim_of (c, in_name, 1);
  gint64 ctx = dim_of (c, k_name, 1);
  gboolean vae, te;

  if (in_ch < 0)
    {
      /* A bare LDM UNet ("input_blocks.0.0.weight" without the prefix). */
      in_ch = dim_of (c, "input_blocks.0.0.weight", 1);
      ctx = dim_of (c, "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", 1);
      if (in_ch < 0)
        return FALSE;
      info->kind = AT_MODEL_KIND_SD_UNET;
      note (c, "LDM UNet tensor names without a prefix: a UNet alone");
      sd_family_from_context (c, ctx);
      sd_unet_channels (c, in_ch, dim_of (c, "input_blocks.0.0.weight", 0));
      sd_prediction_single_file (c);
      return TRUE;
    }
  if (find (c, "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight") != NULL
      && ctx == 2048)
    note (c, "two text encoders (conditioner.embedders.*)");
  vae = find (c, "first_stage_model.decoder.conv_out.weight") != NULL;
  te = find (c, "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight") != NULL
       || find (c, "cond_stage_model.model.token_embedding.weight") != NULL
       || find (c, "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight") != NULL;
  info->kind = vae && te ? AT_MODEL_KIND_SD : AT_MODEL_KIND_SD_UNET;
  note (c, "LDM checkpoint layout (model.diffusion_model.*)%s%s", vae ? ", with its VAE" : ", no VAE",
        te ? " and text encoder" : ", no text encoder");
  sd_family_from_context (c, ctx);
  sd_unet_channels (c, in_ch, dim_of (c, in_name, 0));
  sd_prediction_single_file (c);
  return TRUE;
}

static gint64
config_int (JsonObject *o, const char *key)
{
  JsonNode *n = o != NULL ? json_object_get_member (o, key) : NULL;

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return -1;
  return json_node_get_int (n);
}

static const char *
config_string (JsonObject *o, const char *key)
{
  JsonNode *n = o != NULL ? json_object_get_member (o, key) : NULL;

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static gboolean
recognize_diffusers (Ctx *c, AtDiffusers *d)
{
  AtModelInfo *info = c->info;
  const AtDiffusersComponent *unet = at_diffusers_find_component (d, "unet");
  const AtDiffusersComponent *sched = at_diffusers_find_component (d, "scheduler");
  const char *cls = at_diffusers_get_class_name (d);
  const char *pred;
  gint64 ctx, in_ch;

  note (c, "diffusers pipeline %s", cls);
  if (unet == NULL || unet->config == NULL)
    {
      note (c, "no unet component with a config.json");
      return FALSE;
    }
  info->kind = AT_MODEL_KIND_SD;
  ctx = config_int (unet->config, "cross_attention_dim");
  in_ch = config_int (unet->config, "in_channels");
  if (strstr (cls, "XL") != NULL)
    ctx = 2048;
  sd_family_from_context (c, ctx);
  {
    JsonNode *boc = json_object_get_member (unet->config, "block_out_channels");
    gint64 mc = -1;

    if (boc != NULL && JSON_NODE_HOLDS_ARRAY (boc) && json_array_get_length (json_node_get_array (boc)) > 0)
      {
        JsonNode *first = json_array_get_element (json_node_get_array (boc), 0);

        if (JSON_NODE_HOLDS_VALUE (first) && json_node_get_value_type (first) == G_TYPE_INT64)
          mc = json_node_get_int (first);
      }
    sd_unet_channels (c, in_ch, mc);
  }
  if (config_int (unet->config, "sample_size") > 0)
    set_int (c, "latent_size", config_int (unet->config, "sample_size"));
  pred = sched != NULL ? config_string (sched->config, "prediction_type") : NULL;
  if (pred != NULL)
    {
      info->prediction = strcmp (pred, "v_prediction") == 0 ? AT_PREDICTION_V
                         : strcmp (pred, "epsilon") == 0     ? AT_PREDICTION_EPSILON
                                                             : AT_PREDICTION_UNKNOWN;
      note (c, "scheduler prediction_type is \"%s\"", pred);
    }
  else
    {
      info->prediction = AT_PREDICTION_EPSILON;
      note (c, "no scheduler prediction_type: epsilon, the diffusers default");
    }
  if (unet->weights_path == NULL)
    {
      info->supported = FALSE;
      note (c, "the unet folder has no weights");
    }
  return TRUE;
}

static gboolean
recognize_diffusers_unet (Ctx *c)
{
  gint64 in_ch = dim_of (c, "conv_in.weight", 1);
  gint64 ctx = dim_of (c, "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", 1);

  if (in_ch < 0 || find (c, "time_embedding.linear_1.weight") == NULL)
    return FALSE;
  c->info->kind = AT_MODEL_KIND_SD_UNET;
  note (c, "diffusers UNet2DConditionModel tensor names");
  sd_family_from_context (c, ctx);
  sd_unet_channels (c, in_ch, dim_of (c, "conv_in.weight", 0));
  sd_prediction_single_file (c);
  return TRUE;
}

static gboolean
recognize_vae (Ctx *c)
{
  static const char *const prefixes[] = { "", "first_stage_model.", "vae." };

  for (guint i = 0; i < G_N_ELEMENTS (prefixes); i++)
    {
      g_autofree char *conv_in = g_strconcat (prefixes[i], "encoder.conv_in.weight", NULL);
      g_autofree char *conv_out = g_strconcat (prefixes[i], "decoder.conv_out.weight", NULL);
      g_autofree char *quant = g_strconcat (prefixes[i], "quant_conv.weight", NULL);
      g_autofree char *ldm = g_strconcat (prefixes[i], "decoder.up.0.block.0.conv1.weight", NULL);
      gint64 z2;

      if (find (c, conv_in) == NULL || find (c, conv_out) == NULL)
        continue;
      c->info->kind = AT_MODEL_KIND_VAE;
      c->info->family = g_strdup ("autoencoder-kl");
      c->info->supported = TRUE;
      set_string (c, "layout", find (c, ldm) != NULL ? "ldm" : "diffusers");
      z2 = dim_of (c, quant, 0);
      if (z2 > 0)
        set_int (c, "latent_channels", z2 / 2);
      set_int (c, "base_channels", dim_of (c, conv_in, 0));
      note (c, "encoder.conv_in and decoder.conv_out without a UNet: a VAE alone (%s names)",
            find (c, ldm) != NULL ? "LDM" : "diffusers");
      return TRUE;
    }
  return FALSE;
}

static const char *const gguf_llm_keys[] = {
  "context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count",
  "attention.head_count_kv", "rope.freq_base", "attention.layer_norm_rms_epsilon", "rope.dimension_count",
};

static gboolean
recognize_gguf (Ctx *c, AtGguf *g)
{
  AtModelInfo *info = c->info;
  g_autofree char *arch = at_gguf_dup_string (g, "general.architecture", NULL);
  const AtGgufKv *tokens = at_gguf_find_kv (g, "tokenizer.ggml.tokens");
  g_autofree char *tok_model = at_gguf_dup_string (g, "tokenizer.ggml.model", NULL);
  g_autofree char *name = at_gguf_dup_string (g, "general.name", NULL);
  static const char *const supported[] = { "llama", "qwen2", "phi3", "gemma", "gemma2" };

  if (arch == NULL)
    {
      note (c, "a GGUF without general.architecture");
      return FALSE;
    }
  info->kind = AT_MODEL_KIND_LLM;
  info->family = g_strdup (arch);
  for (guint i = 0; i < G_N_ELEMENTS (supported); i++)
    if (strcmp (arch, supported[i]) == 0)
      info->supported = TRUE;
  note (c, "general.architecture is \"%s\"%s", arch,
        info->supported ? ""
                        : ", an architecture Atelier does not run (llama, qwen2, phi3, gemma, gemma2 are)");
  if (name != NULL)
    set_string (c, "name", name);
  for (guint i = 0; i < G_N_ELEMENTS (gguf_llm_keys); i++)
    {
      g_autofree char *key = g_strconcat (arch, ".", gguf_llm_keys[i], NULL);
      const AtGgufKv *kv = at_gguf_find_kv (g, key);
      gint64 iv;
      double fv;

      if (kv == NULL)
        continue;
      if (at_gguf_get_int (g, key, &iv, NULL))
        set_int (c, gguf_llm_keys[i], iv);
      else if (at_gguf_get_float (g, key, &fv, NULL))
        {
          char buf[G_ASCII_DTOSTR_BUF_SIZE];

          /* An f32 as the double nearest its 7-digit decimal (1e-06, not 9.99999997e-07). */
          if (at_gguf_kv_get_type (kv) == AT_GGUF_TYPE_FLOAT32)
            fv = g_ascii_strtod (g_ascii_formatd (buf, sizeof buf, "%.7g", fv), NULL);
          json_object_set_double_member (info->hyperparameters, gguf_llm_keys[i], fv);
        }
    }
  if (tokens != NULL && at_gguf_kv_get_type (tokens) == AT_GGUF_TYPE_ARRAY)
    set_int (c, "vocab_size", (gint64) at_gguf_kv_get_array_length (tokens));
  if (tok_model != NULL)
    set_string (c, "tokenizer", tok_model);
  if (at_tensor_set_get_n_tensors (at_gguf_get_tensors (g)) == 0)
    {
      info->vocabulary_only = TRUE;
      note (c, "no tensors: a vocabulary-only file (a tokenizer, no weights)");
    }
  else if (find (c, "token_embd.weight") == NULL)
    {
      info->supported = FALSE;
      note (c, "no token_embd.weight tensor");
    }
  return TRUE;
}

/* A Hugging Face transformers folder or file of a causal LM. */
static gboolean
recognize_hf_llm (Ctx *c)
{
  gint64 vocab = dim_of (c, "model.embed_tokens.weight", 0);

  if (vocab < 0 || find (c, "model.layers.0.self_attn.q_proj.weight") == NULL)
    return FALSE;
  c->info->kind = AT_MODEL_KIND_LLM;
  c->info->family = g_strdup ("llama");
  c->info->supported = FALSE;
  set_int (c, "vocab_size", vocab);
  set_int (c, "embedding_length", dim_of (c, "model.embed_tokens.weight", 1));
  note (c, "Hugging Face Llama-style tensor names (model.layers.*.self_attn): Atelier runs language "
           "models from GGUF files; convert this one to GGUF");
  return TRUE;
}

static gboolean
recognize_style (Ctx *c)
{
  AtModelInfo *info = c->info;

  if (at_model_file_get_format (c->file) == AT_MODEL_FORMAT_ML5)
    {
      const AtTensorEntry *v = find (c, "Variable");

      info->kind = AT_MODEL_KIND_STYLE;
      if (v != NULL && v->ndim == 4 && v->shape[0] == 9 && v->shape[1] == 9 && v->shape[2] == 3)
        {
          info->family = g_strdup ("engstrom");
          info->supported = TRUE;
          set_int (c, "base_channels", v->shape[3]);
          set_int (c, "variables", at_model_file_get_n_tensors (c->file));
          note (c, "ml5 manifest whose first variable is a 9x9x3 convolution: Johnson et al.'s "
                   "transform network as trained by Engstrom's fast-style-transfer (TensorFlow layout)");
        }
      else
        note (c, "an ml5 manifest, but not the fast-style-transfer network");
      return TRUE;
    }
  if (find (c, "conv1.conv2d.weight") != NULL && find (c, "res1.conv1.conv2d.weight") != NULL
      && find (c, "deconv3.conv2d.weight") != NULL)
    {
      gint64 n = 0;

      for (int i = 1; i <= 64; i++)
        {
          g_autofree char *k = g_strdup_printf ("res%d.conv1.conv2d.weight", i);

          if (find (c, k) != NULL)
            n++;
        }
      info->kind = AT_MODEL_KIND_STYLE;
      info->family = g_strdup ("johnson");
      info->supported = TRUE;
      set_int (c, "residual_blocks", n);
      set_int (c, "base_channels", dim_of (c, "conv1.conv2d.weight", 0));
      note (c, "conv1/res*/deconv* names: PyTorch fast_neural_style TransformerNet (Johnson et al.)");
      return TRUE;
    }
  if (find (c, "out_layer.0.weight") != NULL && find (c, "block_a.0.1.weight") != NULL)
    {
      info->kind = AT_MODEL_KIND_STYLE;
      info->family = g_strdup ("animeganv2");
      info->supported = TRUE;
      note (c, "block_a..block_e and out_layer names: AnimeGANv2 generator");
      return TRUE;
    }
  if (dim_of (c, "model.1.weight", 1) == 3 && dim_of (c, "model.1.weight", 2) == 7)
    {
      gint64 n = 0;

      for (int i = 0; i < 64; i++)
        {
          g_autofree char *k = g_strdup_printf ("model.%d.conv_block.1.weight", i);

          if (find (c, k) != NULL)
            n++;
        }
      if (n == 0)
        return FALSE;
      info->kind = AT_MODEL_KIND_STYLE;
      info->family = g_strdup ("cyclegan");
      info->supported = TRUE;
      set_int (c, "residual_blocks", n);
      set_int (c, "base_channels", dim_of (c, "model.1.weight", 0));
      note (c, "a 7x7 input convolution and model.N.conv_block residual blocks: CycleGAN ResnetGenerator");
      return TRUE;
    }
  return FALSE;
}

void
at_model_file_recognize (AtModelFile *file, AtModelInfo *info)
{
  Ctx c = { file, info, g_string_new (NULL) };
  gboolean known = FALSE;

  memset (info, 0, sizeof *info);
  info->hyperparameters = json_object_new ();

  if (at_model_file_get_gguf (file) != NULL && at_gguf_find_kv (at_model_file_get_gguf (file), "general.architecture") != NULL
      && find (&c, "model.diffusion_model.input_blocks.0.0.weight") == NULL)
    known = recognize_gguf (&c, at_model_file_get_gguf (file));
  else if (at_model_file_get_format (file) == AT_MODEL_FORMAT_DIFFUSERS)
    known = recognize_diffusers (&c, at_model_file_get_diffusers (file));
  if (!known)
    known = recognize_sd_checkpoint (&c) || recognize_diffusers_unet (&c) || recognize_vae (&c)
            || recognize_style (&c) || recognize_hf_llm (&c);
  if (!known)
    {
      GString *names = g_string_new (NULL);

      info->kind = AT_MODEL_KIND_UNKNOWN;
      for (guint p = 0; p < at_model_file_get_n_parts (file); p++)
        {
          AtTensorSet *set = at_model_file_get_part (file, p);

          for (guint i = 0; i < at_tensor_set_get_n_tensors (set) && i < 3; i++)
            g_string_append_printf (names, "%s\"%s\"", names->len > 0 ? ", " : "", at_tensor_set_get (set, i)->name);
        }
      if (names->len > 0)
        note (&c, "no tensor names of a model Atelier knows (the first are %s)", names->str);
      else
        note (&c, "the file holds no tensors");
      g_string_free (names, TRUE);
    }
  info->reason = g_string_free (c.reason, FALSE);
}
