/* at-model-file.c: open any model path (file by magic bytes, folder by contents). */
#include "at-model-file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "at-diffusers.h"
#include "at-error.h"
#include "at-ml5.h"
#include "at-safetensors.h"
#include "at-torch.h"

typedef struct
{
  char *name;          /* "" for a single file, the component for a folder */
  AtTensorSet *set;    /* borrowed from the format handle, or owned (`own_set`) */
  gboolean own_set;
} Part;

struct _AtModelFile
{
  char *path;
  AtModelFormat format;
  AtGguf *gguf;
  AtSafetensors *safetensors;
  AtDiffusers *diffusers;
  AtTorchFile *torch;
  AtMl5 *ml5;
  /* A single diffusers/transformers component folder: its config.json. */
  JsonObject *config;
  /* PyTorch weights of folder components (pytorch_model.bin, diffusion_pytorch_model.bin). */
  GPtrArray *torch_parts;
  GArray *parts;       /* Part */
};

const char *
at_model_format_name (AtModelFormat format)
{
  switch (format)
    {
    case AT_MODEL_FORMAT_GGUF:
      return "GGUF";
    case AT_MODEL_FORMAT_SAFETENSORS:
      return "safetensors";
    case AT_MODEL_FORMAT_SAFETENSORS_SHARDED:
      return "sharded safetensors";
    case AT_MODEL_FORMAT_DIFFUSERS:
      return "diffusers";
    case AT_MODEL_FORMAT_TORCH:
      return "PyTorch";
    case AT_MODEL_FORMAT_ML5:
      return "ml5 / TensorFlow.js";
    default:
      return "unknown";
    }
}

static void
part_clear (gpointer p)
{
  Part *part = p;

  g_free (part->name);
  if (part->own_set)
    at_tensor_set_free (part->set);
}

static void
add_part (AtModelFile *file, const char *name, AtTensorSet *set, gboolean own)
{
  Part part = { g_strdup (name), set, own };

  g_array_append_val (file->parts, part);
}

void
at_model_file_free (AtModelFile *file)
{
  if (file == NULL)
    return;
  g_array_unref (file->parts);
  g_ptr_array_unref (file->torch_parts);
  g_clear_pointer (&file->gguf, at_gguf_free);
  g_clear_pointer (&file->safetensors, at_safetensors_free);
  g_clear_pointer (&file->diffusers, at_diffusers_free);
  g_clear_pointer (&file->torch, at_torch_free);
  g_clear_pointer (&file->ml5, at_ml5_free);
  g_clear_pointer (&file->config, json_object_unref);
  g_free (file->path);
  g_free (file);
}

static AtModelFile *
model_file_new (const char *path, AtModelFormat format)
{
  AtModelFile *file = g_new0 (AtModelFile, 1);

  file->path = g_strdup (path);
  file->format = format;
  file->parts = g_array_new (FALSE, TRUE, sizeof (Part));
  file->torch_parts = g_ptr_array_new_with_free_func ((GDestroyNotify) at_torch_free);
  g_array_set_clear_func (file->parts, part_clear);
  return file;
}

/* A JSON object from a small file; NULL with the error naming the file. */
static JsonObject *
load_json_object (const char *path, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *contents = NULL;
  gsize size;
  JsonNode *root;

  if (!g_file_get_contents (path, &contents, &size, error))
    return NULL;
  if (size > 16 << 20)
    {
      at_file_error (error, base, "%" G_GSIZE_FORMAT " bytes is too large for a config file", size);
      return NULL;
    }
  if (!json_parser_load_from_data (parser, contents, (gssize) size, NULL))
    {
      at_file_error (error, base, "not valid JSON");
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      at_file_error (error, base, "not a JSON object");
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
}

/* One weights file of a known format (`file_path`) as the model at `model_path` (the file
 * itself, or the folder holding it). */
static AtModelFile *
open_weights (const char *model_path, const char *file_path, AtModelFormat format, GError **error)
{
  AtModelFile *file;
  AtTensorSet *set;

  switch (format)
    {
    case AT_MODEL_FORMAT_GGUF:
      {
        AtGguf *g = at_gguf_open (file_path, error);

        if (g == NULL)
          return NULL;
        file = model_file_new (model_path, format);
        file->gguf = g;
        add_part (file, "", at_gguf_get_tensors (g), FALSE);
        return file;
      }
    case AT_MODEL_FORMAT_TORCH:
      {
        AtTorchFile *t = at_torch_open (file_path, error);

        if (t == NULL)
          return NULL;
        file = model_file_new (model_path, format);
        file->torch = t;
        add_part (file, "", at_torch_get_tensors (t), FALSE);
        return file;
      }
    case AT_MODEL_FORMAT_SAFETENSORS:
      {
        AtSafetensors *st = at_safetensors_open (file_path, error);

        if (st == NULL)
          return NULL;
        file = model_file_new (model_path, format);
        file->safetensors = st;
        add_part (file, "", at_safetensors_get_tensors (st), FALSE);
        return file;
      }
    case AT_MODEL_FORMAT_SAFETENSORS_SHARDED:
      if ((set = at_safetensors_open_sharded (file_path, error)) == NULL)
        return NULL;
      file = model_file_new (model_path, format);
      add_part (file, "", set, TRUE);
      return file;
    default:
      g_return_val_if_reached (NULL);
    }
}

static AtModelFile *
open_folder (const char *path, GError **error)
{
  g_autofree char *index = g_build_filename (path, "model_index.json", NULL);
  g_autofree char *manifest = g_build_filename (path, "manifest.json", NULL);
  g_autofree char *config = g_build_filename (path, "config.json", NULL);
  g_autofree char *base = g_path_get_basename (path);
  /* A single component's weights, in order of preference: sharded, whole, fp16, PyTorch. */
  static const struct
  {
    const char *name;
    AtModelFormat format;
  } weights[] = {
    { "diffusion_pytorch_model.safetensors.index.json", AT_MODEL_FORMAT_SAFETENSORS_SHARDED },
    { "model.safetensors.index.json", AT_MODEL_FORMAT_SAFETENSORS_SHARDED },
    { "diffusion_pytorch_model.safetensors", AT_MODEL_FORMAT_SAFETENSORS },
    { "model.safetensors", AT_MODEL_FORMAT_SAFETENSORS },
    { "diffusion_pytorch_model.fp16.safetensors", AT_MODEL_FORMAT_SAFETENSORS },
    { "model.fp16.safetensors", AT_MODEL_FORMAT_SAFETENSORS },
    { "diffusion_pytorch_model.bin", AT_MODEL_FORMAT_TORCH },
    { "pytorch_model.bin", AT_MODEL_FORMAT_TORCH },
  };
  AtModelFile *file;

  if (g_file_test (index, G_FILE_TEST_EXISTS))
    {
      AtDiffusers *d = at_diffusers_open (path, error);

      if (d == NULL)
        return NULL;
      file = model_file_new (path, AT_MODEL_FORMAT_DIFFUSERS);
      file->diffusers = d;
      for (guint i = 0; i < at_diffusers_get_n_components (d); i++)
        {
          const AtDiffusersComponent *c = at_diffusers_get_component (d, i);

          if (c->tensors != NULL)
            add_part (file, c->name, c->tensors, FALSE);
          else if (c->weights_format == AT_DIFFUSERS_WEIGHTS_PYTORCH)
            {
              /* Older pipelines ship .bin (torch.save) weights: through the restricted
               * unpickler like any checkpoint. */
              AtTorchFile *t = at_torch_open (c->weights_path, error);

              if (t == NULL)
                {
                  at_model_file_free (file);
                  return NULL;
                }
              g_ptr_array_add (file->torch_parts, t);
              add_part (file, c->name, at_torch_get_tensors (t), FALSE);
            }
        }
      return file;
    }
  if (g_file_test (manifest, G_FILE_TEST_EXISTS))
    {
      AtMl5 *m = at_ml5_open (path, error);

      if (m == NULL)
        return NULL;
      file = model_file_new (path, AT_MODEL_FORMAT_ML5);
      file->ml5 = m;
      add_part (file, "", at_ml5_get_tensors (m), FALSE);
      return file;
    }
  /* One component (a vae/ or unet/ folder, a Hugging Face model folder): config.json and the
   * weights. */
  for (guint i = 0; i < G_N_ELEMENTS (weights); i++)
    {
      g_autofree char *p = g_build_filename (path, weights[i].name, NULL);

      if (!g_file_test (p, G_FILE_TEST_EXISTS))
        continue;
      if ((file = open_weights (path, p, weights[i].format, error)) == NULL)
        return NULL;
      if (g_file_test (config, G_FILE_TEST_EXISTS) && (file->config = load_json_object (config, error)) == NULL)
        {
          at_model_file_free (file);
          return NULL;
        }
      return file;
    }
  g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED,
               "%s: a folder without model_index.json (diffusers), manifest.json (ml5 style network), "
               "or config.json with safetensors or PyTorch weights",
               base);
  return NULL;
}

static gboolean
has_suffix_ci (const char *s, const char *suffix)
{
  gsize n = strlen (s), m = strlen (suffix);

  return n >= m && g_ascii_strcasecmp (s + n - m, suffix) == 0;
}

AtModelFile *
at_model_file_open (const char *path, GError **error)
{
  g_autofree char *base = g_path_get_basename (path);
  guint8 head[512] = { 0 };
  gssize got;
  FILE *f;

  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    return open_folder (path, error);
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "%s: no such file or folder", path);
      return NULL;
    }
  if (has_suffix_ci (path, ".safetensors.index.json"))
    return open_weights (path, path, AT_MODEL_FORMAT_SAFETENSORS_SHARDED, error);

  f = fopen (path, "rb");
  if (f == NULL)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "%s: cannot be read: %s", path, g_strerror (errno));
      return NULL;
    }
  got = (gssize) fread (head, 1, sizeof head, f);
  fclose (f);

  if (got >= 4 && memcmp (head, "GGUF", 4) == 0)
    return open_weights (path, path, AT_MODEL_FORMAT_GGUF, error);
  /* PyTorch: a zip (current), a tar or a bare pickle stream (legacy; at_torch_open says so). */
  if ((got >= 4 && memcmp (head, "PK\x03\x04", 4) == 0) || (got >= 2 && head[0] == 0x80 && head[1] <= 5)
      || (got >= 262 && memcmp (head + 257, "ustar", 5) == 0))
    return open_weights (path, path, AT_MODEL_FORMAT_TORCH, error);
  /* safetensors: a little-endian u64 header length, then a JSON object. */
  if (got >= 9 && head[8] == '{')
    return open_weights (path, path, AT_MODEL_FORMAT_SAFETENSORS, error);
  g_set_error (error, AT_ERROR, got == 0 ? AT_ERROR_BAD_FILE : AT_ERROR_UNSUPPORTED,
               "%s: %s; Atelier reads GGUF, safetensors, PyTorch .ckpt/.pt/.pth, diffusers folders and "
               "ml5 style folders",
               base, got == 0 ? "the file is empty" : "not a model file format Atelier knows");
  return NULL;
}

AtModelFormat
at_model_file_get_format (AtModelFile *file)
{
  return file->format;
}

const char *
at_model_file_get_path (AtModelFile *file)
{
  return file->path;
}

AtGguf *
at_model_file_get_gguf (AtModelFile *file)
{
  return file->gguf;
}

AtDiffusers *
at_model_file_get_diffusers (AtModelFile *file)
{
  return file->diffusers;
}

char *
at_model_file_describe_format (AtModelFile *file)
{
  switch (file->format)
    {
    case AT_MODEL_FORMAT_GGUF:
      return g_strdup_printf ("GGUF v%u, alignment %u", at_gguf_get_version (file->gguf),
                              at_gguf_get_alignment (file->gguf));
    case AT_MODEL_FORMAT_SAFETENSORS:
      return g_strdup_printf ("safetensors, %" G_GUINT64_FORMAT "-byte header",
                              at_safetensors_get_header_size (file->safetensors));
    case AT_MODEL_FORMAT_SAFETENSORS_SHARDED:
      return g_strdup ("safetensors, sharded (index.json)");
    case AT_MODEL_FORMAT_DIFFUSERS:
      return g_strdup_printf ("diffusers folder, %s with %u components",
                              at_diffusers_get_class_name (file->diffusers),
                              at_diffusers_get_n_components (file->diffusers));
    case AT_MODEL_FORMAT_TORCH:
      return g_strdup ("PyTorch zip archive (restricted unpickler)");
    case AT_MODEL_FORMAT_ML5:
      return g_strdup ("ml5 / TensorFlow.js manifest with raw float32 variables");
    default:
      return g_strdup ("unknown");
    }
}

guint
at_model_file_get_n_parts (AtModelFile *file)
{
  return file->parts->len;
}

const char *
at_model_file_get_part_name (AtModelFile *file, guint i)
{
  g_return_val_if_fail (i < file->parts->len, NULL);
  return g_array_index (file->parts, Part, i).name;
}

AtTensorSet *
at_model_file_get_part (AtModelFile *file, guint i)
{
  g_return_val_if_fail (i < file->parts->len, NULL);
  return g_array_index (file->parts, Part, i).set;
}

AtTensorSet *
at_model_file_find_part (AtModelFile *file, const char *name)
{
  for (guint i = 0; i < file->parts->len; i++)
    if (strcmp (g_array_index (file->parts, Part, i).name, name) == 0)
      return g_array_index (file->parts, Part, i).set;
  return NULL;
}

guint
at_model_file_get_n_tensors (AtModelFile *file)
{
  guint n = 0;

  for (guint i = 0; i < file->parts->len; i++)
    n += at_tensor_set_get_n_tensors (g_array_index (file->parts, Part, i).set);
  return n;
}

const AtTensorEntry *
at_model_file_find_tensor (AtModelFile *file, const char *name, AtTensorSet **set)
{
  const char *slash;

  for (guint i = 0; i < file->parts->len; i++)
    {
      Part *part = &g_array_index (file->parts, Part, i);
      const AtTensorEntry *e = NULL;

      if (part->name[0] == '\0')
        e = at_tensor_set_find (part->set, name);
      else if ((slash = strchr (name, '/')) != NULL && (gsize) (slash - name) == strlen (part->name)
               && strncmp (name, part->name, (gsize) (slash - name)) == 0)
        e = at_tensor_set_find (part->set, slash + 1);
      if (e != NULL)
        {
          if (set != NULL)
            *set = part->set;
          return e;
        }
    }
  return NULL;
}

static char *
dtype_mask_string (guint32 mask)
{
  GString *s = g_string_new (NULL);

  for (guint d = 0; d < AT_N_FILE_DTYPES; d++)
    if (mask & AT_FILE_DTYPE_MASK (d))
      g_string_append_printf (s, "%s%s", s->len > 0 ? "/" : "", at_file_dtype_name (d));
  return g_string_free (s, FALSE);
}

const AtTensorEntry *
at_model_file_expect (AtModelFile *file, const char *name, guint32 dtypes, int ndim, const gint64 *shape,
                      AtTensorSet **set, GError **error)
{
  g_autofree char *base = g_path_get_basename (file->path);
  const AtTensorEntry *e = at_model_file_find_tensor (file, name, set);
  gboolean match;

  if (e == NULL)
    {
      at_file_error (error, base, "tensor \"%s\" is missing", name);
      return NULL;
    }
  if ((dtypes & AT_FILE_DTYPE_MASK (e->dtype)) == 0)
    {
      g_autofree char *want = dtype_mask_string (dtypes);

      at_file_error (error, base, "tensor \"%s\" is %s; expected %s", name, at_file_dtype_name (e->dtype), want);
      return NULL;
    }
  match = e->ndim == ndim;
  for (int i = 0; match && i < ndim; i++)
    match = shape[i] < 0 || shape[i] == e->shape[i];
  if (!match)
    {
      g_autofree char *got = at_file_shape_string (e->ndim, e->shape);
      g_autofree char *want = at_file_shape_string (ndim, shape);

      at_file_error (error, base, "tensor \"%s\" has shape %s; expected %s", name, got, want);
      return NULL;
    }
  return e;
}

JsonObject *
at_model_file_dup_metadata (AtModelFile *file, guint max_items)
{
  JsonObject *meta = json_object_new ();

  switch (file->format)
    {
    case AT_MODEL_FORMAT_GGUF:
      for (guint i = 0; i < at_gguf_get_n_kv (file->gguf); i++)
        {
          const AtGgufKv *kv = at_gguf_get_kv (file->gguf, i);

          json_object_set_member (meta, at_gguf_kv_get_key (kv), at_gguf_kv_to_json (kv, max_items));
        }
      break;
    case AT_MODEL_FORMAT_SAFETENSORS:
      {
        GHashTable *m = at_safetensors_get_metadata (file->safetensors);
        g_autoptr (GList) keys = g_list_sort (g_hash_table_get_keys (m), (GCompareFunc) strcmp);

        for (GList *l = keys; l != NULL; l = l->next)
          json_object_set_string_member (meta, l->data, g_hash_table_lookup (m, l->data));
        if (file->config != NULL)
          json_object_set_object_member (meta, "config.json", json_object_ref (file->config));
      }
      break;
    case AT_MODEL_FORMAT_SAFETENSORS_SHARDED:
      if (file->config != NULL)
        json_object_set_object_member (meta, "config.json", json_object_ref (file->config));
      break;
    case AT_MODEL_FORMAT_TORCH:
      {
        JsonObject *m = at_torch_get_metadata (file->torch);
        g_autoptr (GList) members = json_object_get_members (m);

        for (GList *l = members; l != NULL; l = l->next)
          json_object_set_member (meta, l->data, json_node_copy (json_object_get_member (m, l->data)));
        if (file->config != NULL)
          json_object_set_object_member (meta, "config.json", json_object_ref (file->config));
      }
      break;
    case AT_MODEL_FORMAT_DIFFUSERS:
      json_object_set_string_member (meta, "_class_name", at_diffusers_get_class_name (file->diffusers));
      for (guint i = 0; i < at_diffusers_get_n_components (file->diffusers); i++)
        {
          const AtDiffusersComponent *c = at_diffusers_get_component (file->diffusers, i);
          JsonObject *o = json_object_new ();

          json_object_set_string_member (o, "library", c->library);
          json_object_set_string_member (o, "class", c->class_name);
          if (c->config != NULL)
            json_object_set_object_member (o, "config", json_object_ref (c->config));
          if (c->weights_path != NULL)
            {
              g_autofree char *w = g_path_get_basename (c->weights_path);

              json_object_set_string_member (o, "weights", w);
            }
          json_object_set_object_member (meta, c->name, o);
        }
      break;
    case AT_MODEL_FORMAT_ML5:
      break;
    }
  return meta;
}
