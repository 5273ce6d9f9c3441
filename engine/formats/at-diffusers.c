/* at-diffusers.c: sharded safetensors indexes and diffusers pipeline folders.
 *
 * Layouts as Hugging Face's libraries write them (transformers' "sharded checkpoints",
 * diffusers' DiffusionPipeline.save_pretrained): see at-diffusers.h.
 *
 * Traps:
 * - File names come from JSON the user downloaded: a shard or component named "../x" or
 *   "/etc/x" must not lead outside the folder, so only bare names are accepted.
 * - A variant's sharded index is "stem.safetensors.index.fp16.json", not
 *   "stem.fp16.safetensors.index.json".
 * - model_index.json also holds pipeline settings ("requires_safety_checker": true): only
 *   array values are components.
 */
#include "at-diffusers.h"

#include <string.h>

#include "at-error.h"
#include "at-safetensors.h"

/* Configs are a few KiB; anything near this is not a config. */
#define MAX_CONFIG_BYTES AT_FILE_MAX_STRING

static char *
shown (const char *text)
{
  g_autofree char *valid = g_utf8_make_valid (text, MIN (strlen (text), 200));

  return g_strescape (valid, NULL);
}

/* ---- Sharded safetensors ---- */

/* The weight map's shard names, each checked, in order of first mention. */
static gboolean
collect_shards (const char *base, JsonObject *weight_map, GPtrArray *names, GHashTable *index,
                GError **error)
{
  g_autoptr (GList) members = json_object_get_members (weight_map);

  for (GList *l = members; l != NULL; l = l->next)
    {
      JsonNode *node = json_object_get_member (weight_map, l->data);
      const char *shard;

      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
        {
          g_autofree char *t = shown (l->data);

          at_file_error (error, base, "weight_map entry \"%s\" is not a file name", t);
          return FALSE;
        }
      shard = json_node_get_string (node);
      if (!at_file_name_is_plain (shard))
        {
          g_autofree char *t = shown (l->data), *s = shown (shard);

          at_file_error (error, base,
                         "weight_map puts tensor \"%s\" in \"%s\", which is not a file name in the "
                         "index's folder",
                         t, s);
          return FALSE;
        }
      if (!g_hash_table_contains (index, shard))
        {
          g_hash_table_insert (index, (gpointer) shard, GUINT_TO_POINTER (names->len));
          g_ptr_array_add (names, (gpointer) shard);
        }
    }
  return TRUE;
}

/* Adds shard `i`'s tensors to `merged`, each where the weight map says it is. */
static gboolean
merge_shard (const char *base, JsonObject *weight_map, GPtrArray *names, GHashTable *index, guint i,
             AtTensorSet *shard, AtTensorSet *merged, GError **error)
{
  const char *shard_name = g_ptr_array_index (names, i);

  for (guint k = 0; k < at_tensor_set_get_n_tensors (shard); k++)
    {
      const AtTensorEntry *e = at_tensor_set_get (shard, k);
      const AtTensorEntry *before = at_tensor_set_find (merged, e->name);
      JsonNode *listed = json_object_get_member (weight_map, e->name);
      g_autofree char *t = shown (e->name);
      AtTensorEntry *m;

      if (before != NULL)
        {
          at_file_error (error, base, "tensor \"%s\" is in both shard %s and shard %s", t,
                         (const char *) g_ptr_array_index (names, before->container), shard_name);
          return FALSE;
        }
      if (listed == NULL)
        {
          at_file_error (error, base,
                         "shard %s holds tensor \"%s\", which the weight_map does not list",
                         shard_name, t);
          return FALSE;
        }
      if (GPOINTER_TO_UINT (g_hash_table_lookup (index, json_node_get_string (listed))) != i)
        {
          at_file_error (error, base,
                         "weight_map puts tensor \"%s\" in shard %s, but shard %s holds it", t,
                         json_node_get_string (listed), shard_name);
          return FALSE;
        }
      m = at_tensor_set_add (merged, e->name, strlen (e->name), e->dtype, e->ndim, e->shape, NULL,
                             error);
      if (m == NULL)
        return FALSE;
      m->container = i;
      m->offset = e->offset;
      m->data = e->data;
    }
  return TRUE;
}

AtTensorSet *
at_safetensors_open_sharded (const char *index_path, GError **error)
{
  g_autofree char *base = g_path_get_basename (index_path);
  g_autofree char *dir = g_path_get_dirname (index_path);
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  g_autoptr (GHashTable) index = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GPtrArray) shards
      = g_ptr_array_new_with_free_func ((GDestroyNotify) at_tensor_set_free);
  g_autoptr (AtTensorSet) merged = at_tensor_set_new (base);
  g_autoptr (GList) members = NULL;
  JsonObject *obj, *weight_map;
  JsonNode *node;

  root = at_json_load_file (index_path, AT_FILE_MAX_HEADER, error);
  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      at_file_error (error, base, "the index is not a JSON object");
      return NULL;
    }
  obj = json_node_get_object (root);
  node = json_object_get_member (obj, "metadata");
  if (node != NULL && !JSON_NODE_HOLDS_OBJECT (node) && !JSON_NODE_HOLDS_NULL (node))
    {
      at_file_error (error, base, "\"metadata\" is not a JSON object");
      return NULL;
    }
  node = json_object_get_member (obj, "weight_map");
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      at_file_error (error, base, "the index has no \"weight_map\" object");
      return NULL;
    }
  weight_map = json_node_get_object (node);
  if (json_object_get_size (weight_map) > AT_FILE_MAX_TENSORS)
    {
      at_file_error (error, base, "weight_map lists more than %u tensors", AT_FILE_MAX_TENSORS);
      return NULL;
    }
  if (!collect_shards (base, weight_map, names, index, error))
    return NULL;
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, g_ptr_array_index (names, i), NULL);
      g_autoptr (AtSafetensors) st = at_safetensors_open (path, error);

      if (st == NULL)
        {
          g_prefix_error (error, "%s: ", base);
          return NULL;
        }
      g_ptr_array_add (shards, at_safetensors_steal_tensors (st));
      if (!merge_shard (base, weight_map, names, index, i, g_ptr_array_index (shards, i), merged,
                        error))
        return NULL;
    }
  members = json_object_get_members (weight_map);
  for (GList *l = members; l != NULL; l = l->next)
    if (at_tensor_set_find (merged, l->data) == NULL)
      {
        g_autofree char *t = shown (l->data);

        at_file_error (error, base,
                       "weight_map puts tensor \"%s\" in shard %s, which does not hold it", t,
                       json_object_get_string_member (weight_map, l->data));
        return NULL;
      }
  at_tensor_set_take_owner (merged, g_steal_pointer (&shards), (GDestroyNotify) g_ptr_array_unref);
  return g_steal_pointer (&merged);
}

/* ---- Diffusers folders ---- */

struct _AtDiffusers
{
  char *dir;
  char *class_name;
  char *version;
  GPtrArray *components; /* AtDiffusersComponent* */
};

static void
component_free (gpointer p)
{
  AtDiffusersComponent *c = p;

  g_free (c->name);
  g_free (c->library);
  g_free (c->class_name);
  g_free (c->folder);
  g_free (c->config_path);
  g_clear_pointer (&c->config, json_object_unref);
  g_free (c->weights_path);
  at_tensor_set_free (c->tensors);
  g_free (c);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtDiffusersComponent, component_free)

/* The first config file present, which must hold a JSON object. */
static gboolean
load_config (AtDiffusersComponent *c, GError **error)
{
  static const char *const configs[] = {
    "config.json",
    "scheduler_config.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
  };

  for (guint i = 0; i < G_N_ELEMENTS (configs); i++)
    {
      g_autofree char *path = g_build_filename (c->folder, configs[i], NULL);
      g_autoptr (JsonNode) root = NULL;

      if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
        continue;
      root = at_json_load_file (path, MAX_CONFIG_BYTES, error);
      if (root == NULL)
        {
          g_prefix_error (error, "%s/", c->name);
          return FALSE;
        }
      if (!JSON_NODE_HOLDS_OBJECT (root))
        {
          g_set_error (error, AT_ERROR, AT_ERROR_BAD_FILE, "%s/%s: the config is not a JSON object",
                       c->name, configs[i]);
          return FALSE;
        }
      c->config_path = g_steal_pointer (&path);
      c->config = json_object_ref (json_node_get_object (root));
      return TRUE;
    }
  return TRUE;
}

/* The weight file to use: safetensors before pickles; within each, the preferred variant
 * first. Without a variant the full-precision file comes first (it loses nothing and the
 * engine converts on upload), then an fp16 one (often all a download holds). */
static void
find_weights (AtDiffusersComponent *c, const char *variant)
{
  static const char *const st_stems[] = { "diffusion_pytorch_model", "model" };
  static const char *const pt_stems[] = { "diffusion_pytorch_model", "pytorch_model" };
  const char *order[2] = { NULL, "fp16" };

  if (variant != NULL)
    {
      order[0] = variant;
      order[1] = NULL;
    }
  for (int pickle = 0; pickle < 2; pickle++)
    for (guint v = 0; v < 2; v++)
      for (guint s = 0; s < 2; s++)
        for (int sharded = 0; sharded < (pickle ? 1 : 2); sharded++)
          {
            g_autofree char *file = NULL, *path = NULL;
            const char *dot = order[v] != NULL ? "." : "", *var = order[v] != NULL ? order[v] : "";

            if (pickle)
              file = g_strdup_printf ("%s%s%s.bin", pt_stems[s], dot, var);
            else if (sharded)
              file = g_strdup_printf ("%s.safetensors.index%s%s.json", st_stems[s], dot, var);
            else
              file = g_strdup_printf ("%s%s%s.safetensors", st_stems[s], dot, var);
            path = g_build_filename (c->folder, file, NULL);
            if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
              {
                c->weights_path = g_steal_pointer (&path);
                c->weights_format = pickle    ? AT_DIFFUSERS_WEIGHTS_PYTORCH
                                    : sharded ? AT_DIFFUSERS_WEIGHTS_SAFETENSORS_SHARDED
                                              : AT_DIFFUSERS_WEIGHTS_SAFETENSORS;
                return;
              }
          }
}

static gboolean
open_weights (AtDiffusersComponent *c, GError **error)
{
  if (c->weights_format == AT_DIFFUSERS_WEIGHTS_SAFETENSORS)
    {
      g_autoptr (AtSafetensors) st = at_safetensors_open (c->weights_path, error);

      if (st != NULL)
        c->tensors = at_safetensors_steal_tensors (st);
    }
  else if (c->weights_format == AT_DIFFUSERS_WEIGHTS_SAFETENSORS_SHARDED)
    c->tensors = at_safetensors_open_sharded (c->weights_path, error);
  else
    return TRUE;
  if (c->tensors == NULL)
    {
      g_prefix_error (error, "%s/", c->name);
      return FALSE;
    }
  return TRUE;
}

/* One `name: [library, class]` member; NULL with no error for [null, null]. */
static AtDiffusersComponent *
open_component (const char *dir, const char *name, JsonArray *spec, const char *variant,
                GError **error)
{
  g_autoptr (AtDiffusersComponent) c = NULL;
  g_autofree char *n = shown (name);
  JsonNode *lib, *cls;

  lib = json_array_get_length (spec) == 2 ? json_array_get_element (spec, 0) : NULL;
  cls = json_array_get_length (spec) == 2 ? json_array_get_element (spec, 1) : NULL;
  if (lib == NULL || cls == NULL
      || (!JSON_NODE_HOLDS_NULL (lib) && json_node_get_value_type (lib) != G_TYPE_STRING)
      || (!JSON_NODE_HOLDS_NULL (cls) && json_node_get_value_type (cls) != G_TYPE_STRING))
    {
      at_file_error (error, "model_index.json",
                     "component \"%s\" is not a [library, class] pair of strings", n);
      return NULL;
    }
  if (JSON_NODE_HOLDS_NULL (lib))
    return NULL;
  if (JSON_NODE_HOLDS_NULL (cls))
    {
      at_file_error (error, "model_index.json", "component \"%s\" has a library but no class", n);
      return NULL;
    }
  if (!at_file_name_is_plain (name))
    {
      at_file_error (error, "model_index.json", "component \"%s\" is not a folder name", n);
      return NULL;
    }
  c = g_new0 (AtDiffusersComponent, 1);
  c->name = g_strdup (name);
  c->library = g_strdup (json_node_get_string (lib));
  c->class_name = g_strdup (json_node_get_string (cls));
  c->folder = g_build_filename (dir, name, NULL);
  if (!g_file_test (c->folder, G_FILE_TEST_IS_DIR))
    {
      at_file_error (error, "model_index.json", "component \"%s\" (%s) has no folder %s/", n,
                     c->class_name, n);
      return NULL;
    }
  if (!load_config (c, error))
    return NULL;
  find_weights (c, variant);
  if (!open_weights (c, error))
    return NULL;
  return g_steal_pointer (&c);
}

static gboolean
read_components (AtDiffusers *d, JsonObject *obj, const char *variant, GError **error)
{
  g_autoptr (GList) members = json_object_get_members (obj);

  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *name = l->data;
      JsonNode *node = json_object_get_member (obj, name);
      AtDiffusersComponent *c;
      g_autoptr (GError) local = NULL;

      /* "_class_name", "_diffusers_version", "_name_or_path"; settings such as
       * "requires_safety_checker": true. */
      if (name[0] == '_' || !JSON_NODE_HOLDS_ARRAY (node))
        continue;
      if (d->components->len >= 256)
        {
          at_file_error (error, "model_index.json", "more than 256 components");
          return FALSE;
        }
      c = open_component (d->dir, name, json_node_get_array (node), variant, &local);
      if (local != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      if (c != NULL)
        g_ptr_array_add (d->components, c);
    }
  return TRUE;
}

AtDiffusers *
at_diffusers_open_variant (const char *dir, const char *variant, GError **error)
{
  g_autoptr (AtDiffusers) d = g_new0 (AtDiffusers, 1);
  g_autofree char *index_path = NULL;
  g_autoptr (JsonNode) root = NULL;
  JsonObject *obj;
  JsonNode *node;

  if (variant != NULL && (!at_file_name_is_plain (variant) || strlen (variant) > 32))
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "\"%s\" is not a weights variant name",
                   variant);
      return NULL;
    }
  d->dir = g_canonicalize_filename (dir, NULL);
  d->components = g_ptr_array_new_with_free_func (component_free);
  index_path = g_build_filename (d->dir, "model_index.json", NULL);
  if (!g_file_test (index_path, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, AT_ERROR, AT_ERROR_BAD_FILE,
                   "%s: no model_index.json (not a diffusers folder)", d->dir);
      return NULL;
    }
  root = at_json_load_file (index_path, MAX_CONFIG_BYTES, error);
  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      at_file_error (error, "model_index.json", "not a JSON object");
      return NULL;
    }
  obj = json_node_get_object (root);
  node = json_object_get_member (obj, "_class_name");
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      at_file_error (error, "model_index.json", "no \"_class_name\" string");
      return NULL;
    }
  d->class_name = g_strdup (json_node_get_string (node));
  node = json_object_get_member (obj, "_diffusers_version");
  if (node != NULL && JSON_NODE_HOLDS_VALUE (node)
      && json_node_get_value_type (node) == G_TYPE_STRING)
    d->version = g_strdup (json_node_get_string (node));
  if (!read_components (d, obj, variant, error))
    return NULL;
  return g_steal_pointer (&d);
}

AtDiffusers *
at_diffusers_open (const char *dir, GError **error)
{
  return at_diffusers_open_variant (dir, NULL, error);
}

void
at_diffusers_free (AtDiffusers *d)
{
  if (d == NULL)
    return;
  g_clear_pointer (&d->components, g_ptr_array_unref);
  g_free (d->dir);
  g_free (d->class_name);
  g_free (d->version);
  g_free (d);
}

const char *
at_diffusers_get_class_name (AtDiffusers *d)
{
  return d->class_name;
}

const char *
at_diffusers_get_version (AtDiffusers *d)
{
  return d->version;
}

guint
at_diffusers_get_n_components (AtDiffusers *d)
{
  return d->components->len;
}

const AtDiffusersComponent *
at_diffusers_get_component (AtDiffusers *d, guint index)
{
  g_return_val_if_fail (index < d->components->len, NULL);
  return g_ptr_array_index (d->components, index);
}

const AtDiffusersComponent *
at_diffusers_find_component (AtDiffusers *d, const char *name)
{
  for (guint i = 0; i < d->components->len; i++)
    {
      const AtDiffusersComponent *c = g_ptr_array_index (d->components, i);

      if (strcmp (c->name, name) == 0)
        return c;
    }
  return NULL;
}
