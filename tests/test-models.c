/* test-models.c: at_model_file_open on every kind of path, and recognition: the real vocab GGUFs
 * and style networks in ../shared/data, style networks saved by real torch.save
 * (tools/ref/style_nets.py), and checkpoint layouts written here as safetensors with the tensor
 * names and shapes of the real files (SD 1.x, SD 2.x inpainting, SD XL, a UNet alone, a VAE
 * alone, a diffusers pipeline, a Hugging Face LLM). */
#include <glib/gstdio.h>
#include <string.h>

#include "at-test-util.h"

typedef struct
{
  const char *name;
  int ndim;
  gint64 shape[4];
} Spec;

/* A safetensors file of F16 zeros with these tensors (the format: u64 header length, JSON,
 * data). */
static char *
write_safetensors (const char *file_name, const Spec *specs, guint n, const char *metadata_json)
{
  g_autoptr (GString) header = g_string_new ("{");
  char *path = g_build_filename (at_test_tmpdir (), file_name, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GByteArray) out = g_byte_array_new ();
  guint64 offset = 0, hlen;

  if (metadata_json != NULL)
    g_string_append_printf (header, "\"__metadata__\":%s,", metadata_json);
  for (guint i = 0; i < n; i++)
    {
      guint64 bytes = 2;

      g_string_append_printf (header, "%s\"%s\":{\"dtype\":\"F16\",\"shape\":[", i > 0 ? "," : "", specs[i].name);
      for (int d = 0; d < specs[i].ndim; d++)
        {
          g_string_append_printf (header, "%s%" G_GINT64_FORMAT, d > 0 ? "," : "", specs[i].shape[d]);
          bytes *= (guint64) specs[i].shape[d];
        }
      g_string_append_printf (header, "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "]}", offset,
                              offset + bytes);
      offset += bytes;
    }
  g_string_append_c (header, '}');
  while (header->len % 8 != 0)
    g_string_append_c (header, ' ');
  hlen = GUINT64_TO_LE ((guint64) header->len);
  g_byte_array_append (out, (const guint8 *) &hlen, 8);
  g_byte_array_append (out, (const guint8 *) header->str, header->len);
  g_byte_array_set_size (out, out->len + (guint) offset);
  memset (out->data + 8 + header->len, 0, offset);
  g_file_set_contents (path, (const char *) out->data, out->len, &error);
  g_assert_no_error (error);
  return path;
}

static void
write_text (const char *path, const char *text)
{
  g_autoptr (GError) error = NULL;

  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
}

static AtModelFile *
open_ok (const char *path, AtModelInfo *info)
{
  g_autoptr (GError) error = NULL;
  AtModelFile *file = at_model_file_open (path, &error);

  g_assert_no_error (error);
  g_assert_nonnull (file);
  at_model_file_recognize (file, info);
  g_test_message ("%s: %s / %s\n%s", path, at_model_kind_name (info->kind), info->family, info->reason);
  return file;
}

static gint64
hyper_int (const AtModelInfo *info, const char *key)
{
  g_assert_true (json_object_has_member (info->hyperparameters, key));
  return json_object_get_int_member (info->hyperparameters, key);
}

/* An LDM single-file checkpoint: UNet (input conv, one cross-attention key), VAE and text
 * encoder markers. Shapes that recognition does not read are kept tiny. */
static char *
write_sd_checkpoint (const char *file_name, gint64 in_channels, gint64 context_dim, gboolean open_clip,
                     gboolean with_vae, gboolean v_pred)
{
  Spec specs[6] = {
    { "model.diffusion_model.input_blocks.0.0.weight", 4, { 320, in_channels, 3, 3 } },
    { "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", 2, { 320, context_dim } },
    { open_clip ? "cond_stage_model.model.token_embedding.weight"
                : "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
      2, { 1, context_dim } },
    { "first_stage_model.decoder.conv_out.weight", 4, { 3, 128, 3, 3 } },
    { "v_pred", 0, { 0 } },
  };
  guint n = 3;

  if (with_vae)
    n++;
  if (v_pred)
    specs[n++] = specs[4];
  return write_safetensors (file_name, specs, n, NULL);
}

static void
test_sd_checkpoints (void)
{
  g_autofree char *sd1 = write_sd_checkpoint ("sd15.safetensors", 4, 768, FALSE, TRUE, FALSE);
  g_autofree char *sd2 = write_sd_checkpoint ("sd2-inpaint.safetensors", 9, 1024, TRUE, TRUE, TRUE);
  g_autofree char *sd2_yaml = write_sd_checkpoint ("sd21-768.safetensors", 4, 1024, TRUE, TRUE, FALSE);
  g_autofree char *sd2_plain = write_sd_checkpoint ("sd21-base.safetensors", 4, 1024, TRUE, TRUE, FALSE);
  g_autofree char *yaml = g_build_filename (at_test_tmpdir (), "sd21-768.yaml", NULL);
  g_autofree char *xl = write_sd_checkpoint ("sdxl.safetensors", 4, 2048, FALSE, TRUE, FALSE);
  g_autofree char *unet_only = write_sd_checkpoint ("unet-only.safetensors", 4, 768, FALSE, FALSE, FALSE);

  {
    g_auto (AtModelInfo) info = { 0 };
    g_autoptr (AtModelFile) f = open_ok (sd1, &info);

    g_assert_cmpint (at_model_file_get_format (f), ==, AT_MODEL_FORMAT_SAFETENSORS);
    g_assert_cmpint (info.kind, ==, AT_MODEL_KIND_SD);
    g_assert_cmpstr (info.family, ==, "sd1");
    g_assert_true (info.supported);
    g_assert_false (info.inpainting);
    g_assert_cmpint (info.prediction, ==, AT_PREDICTION_EPSILON);
    g_assert_cmpint (hyper_int (&info, "context_dim"), ==, 768);
    g_assert_cmpint (hyper_int (&info, "model_channels"), ==, 320);
  }
  {
    g_auto (AtModelInfo) info = { 0 };
    g_autoptr (AtModelFile) f = open_ok (sd2, &info);

    g_assert_cmpint (info.kind, ==, AT_MODEL_KIND_SD);
    g_assert_cmpstr (info.family, ==, "sd2");
    g_assert_true (info.inpainting);
    g_assert_cmpint (info.prediction, ==, AT_PREDICTION_V);
    g_assert_nonnull (strstr (info.reason, "9 channels"));
  }
  {
    g_auto (AtModelInfo) info = { 0 };
    g_autoptr (AtModelFile) f = NULL;

    write_text (yaml, "model:\n  params:\n    parameterization: \"v\"\n");
    f = open_ok (sd2_yaml, &info);
    g_assert_cmpint (info.prediction, ==, AT_PREDICTION_V);
  }
  {
    g_auto (AtModelInfo) info = { 0 };
    g_autoptr (AtModelFile) f = open_ok (sd2_plain, &info);

    g_assert_cmpint (info.prediction, ==, AT_PREDICTION_UNKNOWN);
    g_assert_nonnull (strstr (info.reason, ".yaml"));
  }
  {
    g_auto (AtModelInfo) info = { 0 };
    g_autoptr (AtModelFile) f = open_ok (xl, &info);

    g_assert_cmpstr (info.family, ==, "sdxl");
    g_assert_false (info.supported);
  }
  {
    g_auto (AtModelInfo) info = { 0 };
    g_autoptr (AtModelFile) f = open_ok (unet_only, &info);

    g_assert_cmpint (info.kind, ==, AT_MODEL_KIND_SD_UNET);
  }
}

static void
test_vae_and_unknown (void)
{
  const Spec vae[] = {
    { "encoder.conv_in.weight", 4, { 128, 3, 3, 3 } },
    { "decoder.conv_out.weight", 4, { 3, 128, 3, 3 } },
    { "decoder.up.0.block.0.conv1.weight", 4, { 1, 1, 1, 1 } },
    { "quant_conv.weight", 4, { 8, 8, 1, 1 } },
  };
  const Spec other[] = { { "fc.weight", 2, { 4, 4 } }, { "fc.bias", 1, { 4 } } };
  const Spec llm[] = {
    { "model.embed_tokens.weight", 2, { 32, 16 } },
    { "model.layers.0.self_attn.q_proj.weight", 2, { 16, 16 } },
  };
  g_autofree char *vae_path = write_safetensors ("vae.safetensors", vae, G_N_ELEMENTS (vae), NULL);
  g_autofree char *other_path = write_safetensors ("mlp.safetensors", other, G_N_ELEMENTS (other), "{\"a\":\"b\"}");
  g_autofree char *llm_path = write_safetensors ("hf.safetensors", llm, G_N_ELEMENTS (llm), NULL);

  {
    g_auto (AtModelInfo) info = { 0 };
    g_autoptr (AtModelFile) f = open_ok (vae_path, &info);

    g_assert_cmpint (info.kind, ==, AT_MODEL_KIND_VAE);
    g_assert_cmpint (hyper_int (&info, "latent_channels"), ==, 4);
    g_assert_cmpstr (json_object_get_string_member (info.hyperparameters, "layout"), ==, "ldm");
  }
  {
    g_auto (AtModelInfo) info = { 0 };
    g_autoptr (AtModelFile) f = open_ok (other_path, &info);
    g_autoptr (JsonObject) meta = at_model_file_dup_metadata (f, 0);

    g_assert_cmpint (info.kind, ==, AT_MODEL_KIND_UNKNOWN);
    g_assert_nonnull (strstr (info.reason, "\"fc.weight\""));
    g_assert_cmpstr (json_object_get_string_member (meta, "a"), ==, "b");
  }
  {
    g_auto (AtModelInfo) info = { 0 };
    g_autoptr (AtModelFile) f = open_ok (llm_path, &info);

    g_assert_cmpint (info.kind, ==, AT_MODEL_KIND_LLM);
    g_assert_false (info.supported);
    g_assert_nonnull (strstr (info.reason, "GGUF"));
  }
}

static void
test_expect (void)
{
  const Spec specs[] = { { "w", 2, { 3, 5 } } };
  g_autofree char *path = write_safetensors ("expect.safetensors", specs, 1, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtModelFile) f = at_model_file_open (path, &error);
  const gint64 ok[2] = { 3, -1 }, bad[2] = { 3, 4 };
  AtTensorSet *set = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (at_model_file_expect (f, "w", AT_FILE_DTYPES_FLOAT, 2, ok, &set, &error));
  g_assert_no_error (error);
  g_assert_nonnull (set);
  g_assert_null (at_model_file_expect (f, "w", AT_FILE_DTYPES_FLOAT, 2, bad, NULL, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
  g_assert_nonnull (strstr (error->message, "expect.safetensors: tensor \"w\" has shape [3, 5]; expected [3, 4]"));
  g_clear_error (&error);
  g_assert_null (at_model_file_expect (f, "w", AT_FILE_DTYPE_MASK (AT_FILE_DTYPE_F32), 2, ok, NULL, &error));
  g_assert_nonnull (strstr (error->message, "is F16; expected F32"));
  g_clear_error (&error);
  g_assert_null (at_model_file_expect (f, "missing.weight", AT_FILE_DTYPES_FLOAT, 2, ok, NULL, &error));
  g_assert_nonnull (strstr (error->message, "tensor \"missing.weight\" is missing"));
}

static void
test_diffusers_pipeline (void)
{
  g_autofree char *dir = g_build_filename (at_test_tmpdir (), "sd2-pipeline", NULL);
  g_autofree char *unet = g_build_filename (dir, "unet", NULL);
  g_autofree char *sched = g_build_filename (dir, "scheduler", NULL);
  g_autofree char *unet_cfg = g_build_filename (unet, "config.json", NULL);
  g_autofree char *sched_cfg = g_build_filename (sched, "scheduler_config.json", NULL);
  g_autofree char *index = g_build_filename (dir, "model_index.json", NULL);
  g_autofree char *weights = NULL;
  const Spec specs[] = { { "conv_in.weight", 4, { 320, 4, 3, 3 } } };
  g_auto (AtModelInfo) info = { 0 };
  g_autoptr (AtModelFile) f = NULL;

  g_mkdir_with_parents (unet, 0755);
  g_mkdir_with_parents (sched, 0755);
  write_text (index, "{\"_class_name\": \"StableDiffusionPipeline\", \"_diffusers_version\": \"0.21.0\","
                     " \"unet\": [\"diffusers\", \"UNet2DConditionModel\"],"
                     " \"scheduler\": [\"diffusers\", \"DDIMScheduler\"],"
                     " \"safety_checker\": [null, null]}");
  write_text (unet_cfg, "{\"_class_name\": \"UNet2DConditionModel\", \"cross_attention_dim\": 1024,"
                        " \"in_channels\": 4, \"sample_size\": 96, \"block_out_channels\": [320, 640, 1280, 1280]}");
  write_text (sched_cfg, "{\"_class_name\": \"DDIMScheduler\", \"prediction_type\": \"v_prediction\"}");
  weights = write_safetensors ("diffusion_pytorch_model.safetensors", specs, 1, NULL);
  {
    g_autofree char *dst = g_build_filename (unet, "diffusion_pytorch_model.safetensors", NULL);

    g_assert_cmpint (g_rename (weights, dst), ==, 0);
  }
  f = open_ok (dir, &info);
  g_assert_cmpint (at_model_file_get_format (f), ==, AT_MODEL_FORMAT_DIFFUSERS);
  g_assert_cmpint (info.kind, ==, AT_MODEL_KIND_SD);
  g_assert_cmpstr (info.family, ==, "sd2");
  g_assert_cmpint (info.prediction, ==, AT_PREDICTION_V);
  g_assert_cmpint (hyper_int (&info, "latent_size"), ==, 96);
  g_assert_nonnull (at_model_file_find_tensor (f, "unet/conv_in.weight", NULL));
  g_assert_null (at_model_file_find_tensor (f, "conv_in.weight", NULL));
}

/* The real vocabulary-only GGUFs: the architecture and vocabulary come from their metadata. */
static void
test_vocab_gguf (void)
{
  static const struct
  {
    const char *file;
    const char *family;
    gboolean supported;
    gint64 vocab;
  } cases[] = {
    { "tokenizers/ggml-vocab-llama-spm.gguf", "llama", TRUE, 32000 },
    { "tokenizers/ggml-vocab-llama-bpe.gguf", "llama", TRUE, 128256 },
    { "tokenizers/ggml-vocab-qwen2.gguf", "qwen2", TRUE, 151936 },
    { "tokenizers/ggml-vocab-phi-3.gguf", "phi3", TRUE, 32064 },
    { "tokenizers/ggml-vocab-gpt-2.gguf", "gpt2", FALSE, 50257 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = at_test_shared_path (cases[i].file);
      g_auto (AtModelInfo) info = { 0 };
      g_autoptr (AtModelFile) f = NULL;

      if (path == NULL)
        return;
      f = open_ok (path, &info);
      g_assert_cmpint (at_model_file_get_format (f), ==, AT_MODEL_FORMAT_GGUF);
      g_assert_cmpint (info.kind, ==, AT_MODEL_KIND_LLM);
      g_assert_cmpstr (info.family, ==, cases[i].family);
      g_assert_cmpint (info.supported, ==, cases[i].supported);
      g_assert_true (info.vocabulary_only);
      g_assert_cmpint (hyper_int (&info, "vocab_size"), ==, cases[i].vocab);
    }
}

static void
test_style_ml5 (void)
{
  static const char *const nets[] = { "style/wave", "style/udnie" };

  for (guint i = 0; i < G_N_ELEMENTS (nets); i++)
    {
      g_autofree char *path = at_test_shared_path (nets[i]);
      g_auto (AtModelInfo) info = { 0 };
      g_autoptr (AtModelFile) f = NULL;

      if (path == NULL)
        return;
      f = open_ok (path, &info);
      g_assert_cmpint (at_model_file_get_format (f), ==, AT_MODEL_FORMAT_ML5);
      g_assert_cmpint (info.kind, ==, AT_MODEL_KIND_STYLE);
      g_assert_cmpstr (info.family, ==, "engstrom");
      g_assert_cmpint (hyper_int (&info, "base_channels"), ==, 32);
      g_assert_cmpint (at_model_file_get_n_tensors (f), ==, 48);
    }
}

/* Style networks saved by real torch.save; the names and shapes torch reports must all be
 * there. */
static void
test_style_torch (void)
{
  const char *dir = at_test_tmpdir ();
  const char *args[] = { dir, NULL };
  static const struct
  {
    const char *name;
    gint64 blocks;
  } nets[] = { { "johnson", 5 }, { "cyclegan", 9 }, { "animeganv2", -1 } };
  g_autofree char *facts_path = g_build_filename (dir, "style_nets.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonObject *facts;

  if (!at_test_run_ref_tool ("style_nets.py", args))
    return;
  json_parser_load_from_file (parser, facts_path, &error);
  g_assert_no_error (error);
  facts = json_node_get_object (json_parser_get_root (parser));
  for (guint i = 0; i < G_N_ELEMENTS (nets); i++)
    {
      g_autofree char *file = g_strconcat (nets[i].name, ".pth", NULL);
      g_autofree char *path = g_build_filename (dir, file, NULL);
      JsonObject *names = json_object_get_object_member (facts, nets[i].name);
      g_autoptr (GList) members = json_object_get_members (names);
      g_auto (AtModelInfo) info = { 0 };
      g_autoptr (AtModelFile) f = open_ok (path, &info);

      g_assert_cmpint (at_model_file_get_format (f), ==, AT_MODEL_FORMAT_TORCH);
      g_assert_cmpint (info.kind, ==, AT_MODEL_KIND_STYLE);
      g_assert_cmpstr (info.family, ==, nets[i].name);
      if (nets[i].blocks > 0)
        g_assert_cmpint (hyper_int (&info, "residual_blocks"), ==, nets[i].blocks);
      g_assert_cmpuint (at_model_file_get_n_tensors (f), ==, g_list_length (members));
      for (GList *l = members; l != NULL; l = l->next)
        {
          JsonArray *shape = json_object_get_array_member (names, l->data);
          const AtTensorEntry *e = at_model_file_find_tensor (f, l->data, NULL);

          g_assert_nonnull (e);
          g_assert_cmpint (e->ndim, ==, (int) json_array_get_length (shape));
          for (int d = 0; d < e->ndim; d++)
            g_assert_cmpint (e->shape[d], ==, json_array_get_int_element (shape, (guint) d));
        }
    }
}

static void
copy_file (const char *from, const char *to)
{
  g_autofree char *contents = NULL;
  gsize size;
  g_autoptr (GError) error = NULL;

  g_file_get_contents (from, &contents, &size, &error);
  g_assert_no_error (error);
  g_file_set_contents (to, contents, (gssize) size, &error);
  g_assert_no_error (error);
}

/* Folders whose weights are torch.save files: a Hugging Face / diffusers component folder
 * (config.json + pytorch_model.bin) and a diffusers pipeline with a .bin-only component. */
static void
test_torch_in_folders (void)
{
  const char *dir = at_test_tmpdir ();
  const char *args[] = { dir, NULL };
  g_autofree char *johnson = g_build_filename (dir, "johnson.pth", NULL);
  g_autofree char *comp = g_build_filename (dir, "hf-component", NULL);
  g_autofree char *comp_bin = g_build_filename (comp, "pytorch_model.bin", NULL);
  g_autofree char *comp_cfg = g_build_filename (comp, "config.json", NULL);
  g_autofree char *pipe = g_build_filename (dir, "bin-pipeline", NULL);
  g_autofree char *pipe_net = g_build_filename (pipe, "style", NULL);
  g_autofree char *pipe_bin = g_build_filename (pipe_net, "diffusion_pytorch_model.bin", NULL);
  g_autofree char *pipe_cfg = g_build_filename (pipe_net, "config.json", NULL);
  g_autofree char *pipe_index = g_build_filename (pipe, "model_index.json", NULL);

  if (!g_file_test (johnson, G_FILE_TEST_EXISTS) && !at_test_run_ref_tool ("style_nets.py", args))
    return;
  g_mkdir_with_parents (comp, 0755);
  g_mkdir_with_parents (pipe_net, 0755);
  copy_file (johnson, comp_bin);
  copy_file (johnson, pipe_bin);
  write_text (comp_cfg, "{\"architectures\": [\"TransformerNet\"]}");
  write_text (pipe_cfg, "{\"_class_name\": \"TransformerNet\"}");
  write_text (pipe_index, "{\"_class_name\": \"StylePipeline\", \"style\": [\"diffusers\", \"TransformerNet\"]}");
  {
    g_auto (AtModelInfo) info = { 0 };
    g_autoptr (AtModelFile) f = open_ok (comp, &info);
    g_autoptr (JsonObject) meta = at_model_file_dup_metadata (f, 0);

    g_assert_cmpint (at_model_file_get_format (f), ==, AT_MODEL_FORMAT_TORCH);
    g_assert_cmpstr (info.family, ==, "johnson");
    g_assert_true (json_object_has_member (meta, "config.json"));
  }
  {
    g_auto (AtModelInfo) info = { 0 };
    g_autoptr (AtModelFile) f = open_ok (pipe, &info);

    g_assert_cmpint (at_model_file_get_format (f), ==, AT_MODEL_FORMAT_DIFFUSERS);
    g_assert_nonnull (at_model_file_find_tensor (f, "style/conv1.conv2d.weight", NULL));
    g_assert_cmpuint (at_model_file_get_n_tensors (f), ==, 62);
  }
}

static void
test_open_errors (void)
{
  g_autofree char *empty = g_build_filename (at_test_tmpdir (), "empty.ckpt", NULL);
  g_autofree char *text = g_build_filename (at_test_tmpdir (), "notes.txt", NULL);
  g_autofree char *folder = g_build_filename (at_test_tmpdir (), "nothing-here", NULL);
  g_autoptr (GError) error = NULL;

  write_text (empty, "");
  write_text (text, "hello, this is not a model\n");
  g_mkdir_with_parents (folder, 0755);

  g_assert_null (at_model_file_open (empty, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
  g_assert_nonnull (strstr (error->message, "empty.ckpt: the file is empty"));
  g_clear_error (&error);
  g_assert_null (at_model_file_open (text, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "notes.txt: not a model file format"));
  g_clear_error (&error);
  g_assert_null (at_model_file_open (folder, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "nothing-here: a folder without model_index.json"));
  g_clear_error (&error);
  g_assert_null (at_model_file_open ("/nonexistent/model.gguf", &error));
  g_assert_nonnull (strstr (error->message, "no such file"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/formats/models/sd-checkpoints", test_sd_checkpoints);
  g_test_add_func ("/formats/models/vae-llm-unknown", test_vae_and_unknown);
  g_test_add_func ("/formats/models/expect", test_expect);
  g_test_add_func ("/formats/models/diffusers", test_diffusers_pipeline);
  g_test_add_func ("/formats/models/vocab-gguf", test_vocab_gguf);
  g_test_add_func ("/formats/models/style-ml5", test_style_ml5);
  g_test_add_func ("/formats/models/style-torch", test_style_torch);
  g_test_add_func ("/formats/models/torch-in-folders", test_torch_in_folders);
  g_test_add_func ("/formats/models/open-errors", test_open_errors);
  return g_test_run ();
}
