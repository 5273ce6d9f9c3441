/* atelier-models.c: `atelier models inspect PATH [--tensors] [--json]`: what a model file or
 * folder is (format, recognised kind and family, hyperparameters), its tensors by dtype, and its
 * metadata (long arrays summarised); with --tensors every tensor's name, dtype, shape and
 * offset. `atelier models list|add|remove`: the models on the machine (atelier-discovery.h)
 * and the user's own list of them (the history store's user_models). */
#include "atelier-commands.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

#include "at-engine.h"
#include "atelier-discovery.h"
#include "atelier-store.h"

#define MAX_ARRAY_ITEMS 8  /* array elements shown before summarising */

#define MODELS_USAGE                                                                            \
  "Usage: atelier models inspect PATH [--tensors] [--json]\n"                                   \
  "       atelier models list [--json] [--folder DIR]...\n"                                      \
  "       atelier models add PATH\n"                                                             \
  "       atelier models remove PATH|ID\n"

static const char *
prediction_name (AtPrediction p)
{
  switch (p)
    {
    case AT_PREDICTION_EPSILON:
      return "epsilon";
    case AT_PREDICTION_V:
      return "v";
    default:
      return "unknown";
    }
}

static char *
format_bytes (guint64 n)
{
  return g_format_size_full (n, G_FORMAT_SIZE_IEC_UNITS);
}

/* Every tensor of every part, named as at_model_file_find_tensor finds them. */
static JsonArray *
tensors_json (AtModelFile *file)
{
  JsonArray *arr = json_array_new ();

  for (guint p = 0; p < at_model_file_get_n_parts (file); p++)
    {
      AtTensorSet *set = at_model_file_get_part (file, p);
      const char *part = at_model_file_get_part_name (file, p);

      for (guint i = 0; i < at_tensor_set_get_n_tensors (set); i++)
        {
          const AtTensorEntry *e = at_tensor_set_get (set, i);
          JsonObject *o = json_object_new ();
          JsonArray *shape = json_array_new ();
          g_autofree char *name = part[0] != '\0' ? g_strconcat (part, "/", e->name, NULL) : g_strdup (e->name);

          json_object_set_string_member (o, "name", name);
          json_object_set_string_member (o, "dtype", at_file_dtype_name (e->dtype));
          for (int d = 0; d < e->ndim; d++)
            json_array_add_int_element (shape, e->shape[d]);
          json_object_set_array_member (o, "shape", shape);
          if (!at_tensor_entry_is_contiguous (e))
            {
              JsonArray *stride = json_array_new ();

              for (int d = 0; d < e->ndim; d++)
                json_array_add_int_element (stride, e->stride[d]);
              json_object_set_array_member (o, "stride", stride);
            }
          json_object_set_int_member (o, "offset", (gint64) e->offset);
          json_object_set_int_member (o, "bytes", (gint64) e->nbytes);
          if (e->container != 0)
            json_object_set_int_member (o, "container", e->container);
          json_array_add_object_element (arr, o);
        }
    }
  return arr;
}

static void
bytes_by_dtype (AtModelFile *file, guint64 *total, guint64 *by)
{
  memset (by, 0, sizeof (guint64) * AT_N_FILE_DTYPES);
  *total = 0;
  for (guint p = 0; p < at_model_file_get_n_parts (file); p++)
    {
      guint64 part[AT_N_FILE_DTYPES];

      at_tensor_set_bytes_by_dtype (at_model_file_get_part (file, p), part);
      for (guint d = 0; d < AT_N_FILE_DTYPES; d++)
        {
          by[d] += part[d];
          *total += part[d];
        }
    }
}

static JsonNode *
inspect_json (AtModelFile *file, const AtModelInfo *info, gboolean with_tensors)
{
  JsonObject *o = json_object_new ();
  JsonObject *by_dtype = json_object_new ();
  JsonArray *reasons = json_array_new ();
  JsonNode *root = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *desc = at_model_file_describe_format (file);
  g_auto (GStrv) lines = g_strsplit (info->reason, "\n", -1);
  guint64 total, by[AT_N_FILE_DTYPES];

  json_object_set_string_member (o, "path", at_model_file_get_path (file));
  json_object_set_string_member (o, "format", at_model_format_name (at_model_file_get_format (file)));
  json_object_set_string_member (o, "format_details", desc);
  json_object_set_string_member (o, "kind", at_model_kind_name (info->kind));
  if (info->family != NULL)
    json_object_set_string_member (o, "family", info->family);
  else
    json_object_set_null_member (o, "family");
  json_object_set_boolean_member (o, "supported", info->supported);
  if (info->kind == AT_MODEL_KIND_SD || info->kind == AT_MODEL_KIND_SD_UNET)
    {
      json_object_set_boolean_member (o, "inpainting", info->inpainting);
      json_object_set_string_member (o, "prediction", prediction_name (info->prediction));
    }
  if (info->kind == AT_MODEL_KIND_LLM)
    json_object_set_boolean_member (o, "vocabulary_only", info->vocabulary_only);
  for (guint i = 0; lines[i] != NULL; i++)
    if (lines[i][0] != '\0')
      json_array_add_string_element (reasons, lines[i]);
  json_object_set_array_member (o, "reason", reasons);
  json_object_set_object_member (o, "hyperparameters", json_object_ref (info->hyperparameters));
  json_object_set_int_member (o, "tensor_count", at_model_file_get_n_tensors (file));
  bytes_by_dtype (file, &total, by);
  json_object_set_int_member (o, "total_bytes", (gint64) total);
  for (guint d = 0; d < AT_N_FILE_DTYPES; d++)
    if (by[d] > 0)
      json_object_set_int_member (by_dtype, at_file_dtype_name (d), (gint64) by[d]);
  json_object_set_object_member (o, "bytes_by_dtype", by_dtype);
  json_object_set_object_member (o, "metadata", at_model_file_dup_metadata (file, MAX_ARRAY_ITEMS));
  if (with_tensors)
    json_object_set_array_member (o, "tensors", tensors_json (file));
  json_node_take_object (root, o);
  return root;
}

/* One metadata value on one line, cut at `width` characters; a summarised array (see
 * at_gguf_kv_to_json) as "[string x N] first, second, ...". */
static char *
value_line (JsonNode *node, int width)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autofree char *text = NULL;
  JsonObject *o = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;

  if (o != NULL && json_object_has_member (o, "length") && json_object_has_member (o, "first")
      && json_object_has_member (o, "element_type"))
    {
      g_autoptr (JsonNode) first = json_node_copy (json_object_get_member (o, "first"));
      g_autofree char *items = NULL;

      json_generator_set_root (gen, first);
      items = json_generator_to_data (gen, NULL);
      text = g_strdup_printf ("[%s x %" G_GINT64_FORMAT "] %s", json_object_get_string_member (o, "element_type"),
                              json_object_get_int_member (o, "length"), items);
    }
  else if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_DOUBLE)
    {
      char buf[G_ASCII_DTOSTR_BUF_SIZE];

      /* Most are f32 in the file: 7 significant digits say all they hold. */
      text = g_strdup (g_ascii_formatd (buf, sizeof buf, "%.7g", json_node_get_double (node)));
    }
  else
    {
      json_generator_set_root (gen, node);
      text = json_generator_to_data (gen, NULL);
    }
  if (g_utf8_strlen (text, -1) > width)
    {
      g_autofree char *cut = g_utf8_substring (text, 0, width - 3);

      return g_strconcat (cut, "...", NULL);
    }
  return g_steal_pointer (&text);
}

static void
print_inspect (AtModelFile *file, const AtModelInfo *info, gboolean with_tensors)
{
  g_autofree char *desc = at_model_file_describe_format (file);
  g_auto (GStrv) lines = g_strsplit (info->reason, "\n", -1);
  g_autoptr (JsonObject) meta = at_model_file_dup_metadata (file, MAX_ARRAY_ITEMS);
  g_autoptr (GList) hyper = json_object_get_members (info->hyperparameters);
  g_autoptr (GList) keys = json_object_get_members (meta);
  g_autofree char *total_text = NULL;
  guint64 total, by[AT_N_FILE_DTYPES];

  printf ("%s\n", at_model_file_get_path (file));
  printf ("  format      %s\n", desc);
  printf ("  kind        %s", at_model_kind_name (info->kind));
  if (info->family != NULL)
    printf (", family %s", info->family);
  if (info->inpainting)
    printf (", inpainting");
  if (info->kind == AT_MODEL_KIND_SD || info->kind == AT_MODEL_KIND_SD_UNET)
    printf (", prediction %s", prediction_name (info->prediction));
  if (info->vocabulary_only)
    printf (", vocabulary only");
  if (info->kind != AT_MODEL_KIND_UNKNOWN)
    printf (info->supported ? " (supported)" : " (not supported)");
  printf ("\n");
  for (guint i = 0; lines[i] != NULL; i++)
    printf ("  %-11s %s\n", i == 0 ? "why" : "", lines[i]);
  if (hyper != NULL)
    printf ("  hyperparameters\n");
  for (GList *l = hyper; l != NULL; l = l->next)
    {
      g_autofree char *v = value_line (json_object_get_member (info->hyperparameters, l->data), 60);

      printf ("    %-32s %s\n", (const char *) l->data, v);
    }
  bytes_by_dtype (file, &total, by);
  total_text = format_bytes (total);
  printf ("  tensors     %u, %s\n", at_model_file_get_n_tensors (file), total_text);
  for (guint d = 0; d < AT_N_FILE_DTYPES; d++)
    if (by[d] > 0)
      {
        g_autofree char *t = format_bytes (by[d]);

        printf ("    %-8s %s\n", at_file_dtype_name (d), t);
      }
  printf ("  metadata    %u entries\n", g_list_length (keys));
  for (GList *l = keys; l != NULL; l = l->next)
    {
      g_autofree char *v = value_line (json_object_get_member (meta, l->data), 100);

      printf ("    %-40s %s\n", (const char *) l->data, v);
    }
  if (!with_tensors)
    return;
  printf ("  %-60s %-7s %-24s %s\n", "name", "dtype", "shape", "offset");
  for (guint p = 0; p < at_model_file_get_n_parts (file); p++)
    {
      AtTensorSet *set = at_model_file_get_part (file, p);
      const char *part = at_model_file_get_part_name (file, p);

      for (guint i = 0; i < at_tensor_set_get_n_tensors (set); i++)
        {
          const AtTensorEntry *e = at_tensor_set_get (set, i);
          g_autofree char *shape = at_file_shape_string (e->ndim, e->shape);
          g_autofree char *name = part[0] != '\0' ? g_strconcat (part, "/", e->name, NULL) : g_strdup (e->name);

          printf ("  %-60s %-7s %-24s %" G_GUINT64_FORMAT, name, at_file_dtype_name (e->dtype), shape, e->offset);
          /* Which file of a sharded set / member of a zip / variable file of an ml5 folder. */
          if (e->container != 0)
            printf (" in #%u", e->container);
          printf ("%s\n", at_tensor_entry_is_contiguous (e) ? "" : " (strided view)");
        }
    }
}

static int
models_inspect (int argc, char **argv)
{
  gboolean json = FALSE, tensors = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { "tensors", 0, 0, G_OPTION_ARG_NONE, &tensors, "List every tensor", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("PATH - what a model file or folder holds");
  g_autoptr (GError) error = NULL;
  g_autoptr (AtModelFile) file = NULL;
  g_auto (AtModelInfo) info = { 0 };

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "atelier models inspect: %s\n", error->message);
      return 2;
    }
  if (argc != 2)
    {
      fprintf (stderr, MODELS_USAGE);
      return 2;
    }
  file = at_model_file_open (argv[1], &error);
  if (file == NULL)
    {
      fprintf (stderr, "atelier models inspect: %s\n", error->message);
      return 1;
    }
  at_model_file_recognize (file, &info);
  if (json)
    {
      g_autoptr (JsonNode) root = inspect_json (file, &info, tensors);
      g_autofree char *text = json_to_string (root, TRUE);

      printf ("%s\n", text);
    }
  else
    print_inspect (file, &info, tensors);
  return 0;
}

/* The user's list, or NULL (with a warning) when the store cannot be read: discovery still
 * lists what is on the machine. */
static GPtrArray *
user_list (AtelierStore **store_out)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = atelier_store_open (NULL, &error);
  GPtrArray *list = NULL;

  if (store != NULL)
    list = atelier_store_list_user_models (store, &error);
  if (list == NULL)
    fprintf (stderr, "atelier models list: your own list of models cannot be read: %s\n", error->message);
  *store_out = g_steal_pointer (&store);
  return list;
}

static gint64
user_id_of (GPtrArray *users, const char *path)
{
  for (guint i = 0; users != NULL && i < users->len; i++)
    {
      AtelierUserModel *u = g_ptr_array_index (users, i);

      if (strcmp (u->path, path) == 0)
        return u->id;
    }
  return 0;
}

static void
set_string_or_null (JsonObject *o, const char *name, const char *value)
{
  if (value != NULL)
    json_object_set_string_member (o, name, value);
  else
    json_object_set_null_member (o, name);
}

static JsonNode *
found_json (GPtrArray *found, GPtrArray *users)
{
  JsonArray *arr = json_array_new ();
  JsonNode *root = json_node_new (JSON_NODE_ARRAY);

  for (guint i = 0; i < found->len; i++)
    {
      AtelierFoundModel *m = g_ptr_array_index (found, i);
      JsonObject *o = json_object_new ();
      gint64 id = m->source == ATELIER_MODEL_SOURCE_USER ? user_id_of (users, m->path) : 0;

      json_object_set_string_member (o, "source", atelier_model_source_name (m->source));
      if (id != 0)
        json_object_set_int_member (o, "id", id);
      json_object_set_string_member (o, "name", m->name);
      set_string_or_null (o, "repo", m->repo);
      json_object_set_string_member (o, "path", m->path);
      json_object_set_boolean_member (o, "folder", m->is_folder);
      json_object_set_int_member (o, "size", (gint64) m->size);
      json_object_set_int_member (o, "mtime_us", m->mtime_us);
      if (m->error == NULL)
        {
          json_object_set_string_member (o, "format", at_model_format_name (m->format));
          json_object_set_string_member (o, "kind", at_model_kind_name (m->kind));
          json_object_set_boolean_member (o, "supported", m->supported);
        }
      set_string_or_null (o, "family", m->family);
      set_string_or_null (o, "architecture", m->architecture);
      set_string_or_null (o, "quant", m->quant);
      set_string_or_null (o, "error", m->error);
      json_array_add_object_element (arr, o);
    }
  json_node_take_array (root, arr);
  return root;
}

static void
print_found (GPtrArray *found, GPtrArray *users)
{
  for (guint i = 0; i < found->len; i++)
    {
      AtelierFoundModel *m = g_ptr_array_index (found, i);
      gint64 id = m->source == ATELIER_MODEL_SOURCE_USER ? user_id_of (users, m->path) : 0;
      g_autofree char *source = id != 0 ? g_strdup_printf ("user#%" G_GINT64_FORMAT, id)
                                        : g_strdup (atelier_model_source_name (m->source));
      g_autofree char *size = format_bytes (m->size);
      g_autofree char *kind = NULL;

      if (m->error != NULL)
        {
          /* Listed where the user looks for it, and why it cannot be used on stderr. */
          printf ("%-12s %-40s %-24s %-6s %10s  %s\n", source, m->name, "(cannot be used)", "-", "-", m->path);
          if (m->source == ATELIER_MODEL_SOURCE_USER || m->source == ATELIER_MODEL_SOURCE_FOLDER)
            fprintf (stderr, "atelier models list: %s\n", m->error);
          else
            fprintf (stderr, "atelier models list: %s: %s\n", m->name, m->error);
          continue;
        }
      kind = m->family != NULL ? g_strdup_printf ("%s/%s", at_model_kind_name (m->kind), m->family)
                               : g_strdup (at_model_kind_name (m->kind));
      printf ("%-12s %-40s %-24s %-6s %10s  %s\n", source, m->name, kind, m->quant != NULL ? m->quant : "-", size,
              m->path);
    }
}

static int
models_list (int argc, char **argv)
{
  gboolean json = FALSE;
  g_auto (GStrv) folders = NULL;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { "folder", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &folders, "Also search this folder", "DIR" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- the models on this machine and your own list");
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = NULL;
  g_autoptr (GPtrArray) users = NULL;
  g_autoptr (GPtrArray) paths = g_ptr_array_new ();
  g_autoptr (GPtrArray) found = NULL;
  AtelierDiscoveryOptions options = { 0 };

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "atelier models list: %s\n", error->message);
      return 2;
    }
  if (argc != 1)
    {
      fprintf (stderr, MODELS_USAGE);
      return 2;
    }
  for (guint i = 0; folders != NULL && folders[i] != NULL; i++)
    {
      char *abs = g_canonicalize_filename (folders[i], NULL);

      g_free (folders[i]);
      folders[i] = abs;
    }
  users = user_list (&store);
  for (guint i = 0; users != NULL && i < users->len; i++)
    g_ptr_array_add (paths, ((AtelierUserModel *) g_ptr_array_index (users, i))->path);
  g_ptr_array_add (paths, NULL);
  options.user_paths = (const char *const *) paths->pdata;
  options.folders = (const char *const *) folders;
  found = atelier_discovery_scan (&options, NULL, &error);
  if (found == NULL)
    {
      fprintf (stderr, "atelier models list: %s\n", error->message);
      return 1;
    }
  if (json)
    {
      g_autoptr (JsonNode) root = found_json (found, users);
      g_autofree char *text = json_to_string (root, TRUE);

      printf ("%s\n", text);
    }
  else if (found->len == 0)
    fprintf (stderr, "atelier models list: no models found; add one with `atelier models add PATH` or search a "
                     "folder with --folder DIR\n");
  else
    print_found (found, users);
  return 0;
}

static int
models_add (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = NULL;
  g_auto (AtModelInfo) info = { 0 };
  g_autofree char *path = NULL;
  gint64 id;

  if (argc != 2)
    {
      fprintf (stderr, MODELS_USAGE);
      return 2;
    }
  path = g_canonicalize_filename (argv[1], NULL);
  store = atelier_store_open (NULL, &error);
  if (store == NULL)
    {
      fprintf (stderr, "atelier models add: %s\n", error->message);
      return 1;
    }
  /* Shared with the model manager's Import. */
  id = atelier_discovery_add_user_model (store, path, &info, &error);
  if (id == 0)
    {
      fprintf (stderr, "atelier models add: %s\n", error->message);
      return 1;
    }
  printf ("%" G_GINT64_FORMAT "\t%s\t%s%s%s\n", id, path, at_model_kind_name (info.kind),
          info.family != NULL ? "/" : "", info.family != NULL ? info.family : "");
  return 0;
}

static int
models_remove (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = NULL;
  g_autofree char *path = NULL;
  const char *arg;
  guint64 id = 0;

  if (argc != 2)
    {
      fprintf (stderr, MODELS_USAGE);
      return 2;
    }
  arg = argv[1];
  store = atelier_store_open (NULL, &error);
  if (store == NULL)
    {
      fprintf (stderr, "atelier models remove: %s\n", error->message);
      return 1;
    }
  /* A number is an id (`models list` shows them as user#ID); a file named "3" is "./3". */
  if (g_ascii_string_to_unsigned (arg, 10, 1, G_MAXINT64, &id, NULL))
    {
      if (!atelier_store_remove_user_model (store, (gint64) id, NULL, &error))
        {
          fprintf (stderr, "atelier models remove: %s\n", error->message);
          return 1;
        }
      return 0;
    }
  path = g_canonicalize_filename (arg, NULL);
  if (!atelier_store_remove_user_model (store, 0, path, &error))
    {
      fprintf (stderr, "atelier models remove: %s\n", error->message);
      return 1;
    }
  return 0;
}

int
atelier_cmd_models (int argc, char **argv)
{
  if (argc >= 2 && strcmp (argv[1], "inspect") == 0)
    return models_inspect (argc - 1, argv + 1);
  if (argc >= 2 && strcmp (argv[1], "list") == 0)
    return models_list (argc - 1, argv + 1);
  if (argc >= 2 && strcmp (argv[1], "add") == 0)
    return models_add (argc - 1, argv + 1);
  if (argc >= 2 && strcmp (argv[1], "remove") == 0)
    return models_remove (argc - 1, argv + 1);
  fprintf (stderr, MODELS_USAGE);
  return 2;
}
