/* at-ml5.c: ml5.js / TensorFlow.js style-transfer folders (manifest.json + one raw float32
 * file per variable); see at-ml5.h for the layout.
 *
 * Traps: the manifest lists variables sorted as text ("Variable_10" before "Variable_2"), so
 * they are put in natural order here; a file name from the manifest must be a bare name in
 * the folder, and each file belongs to one variable.
 */
#include "at-ml5.h"

#include <string.h>

#include "at-error.h"
#include "at-safetensors.h"

struct _AtMl5
{
  AtTensorSet *tensors;
};

/* Natural order: runs of digits compare as numbers ("Variable_2" < "Variable_10"), the rest
 * byte by byte; equal ones (leading zeros) fall back to plain order. */
static int
natural_compare (const char *a, const char *b)
{
  const char *x = a, *y = b;

  while (*x != '\0' && *y != '\0')
    {
      if (g_ascii_isdigit (*x) && g_ascii_isdigit (*y))
        {
          const char *xs, *ys;
          gsize xl, yl;
          int c;

          while (*x == '0' && g_ascii_isdigit (x[1]))
            x++;
          while (*y == '0' && g_ascii_isdigit (y[1]))
            y++;
          for (xs = x; g_ascii_isdigit (*x); x++)
            ;
          for (ys = y; g_ascii_isdigit (*y); y++)
            ;
          xl = (gsize) (x - xs);
          yl = (gsize) (y - ys);
          if (xl != yl)
            return xl < yl ? -1 : 1;
          c = memcmp (xs, ys, xl);
          if (c != 0)
            return c;
          continue;
        }
      if (*x != *y)
        return (guchar) *x < (guchar) *y ? -1 : 1;
      x++;
      y++;
    }
  if (*x != *y)
    return *x == '\0' ? -1 : 1;
  return strcmp (a, b);
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return natural_compare (*(const char *const *) a, *(const char *const *) b);
}

static char *
shown (const char *text)
{
  g_autofree char *valid = g_utf8_make_valid (text, MIN (strlen (text), 200));

  return g_strescape (valid, NULL);
}

/* Reads {"filename", "shape"} for variable `name` into the set (data not yet attached). */
static AtTensorEntry *
add_variable (AtTensorSet *set, const char *name, JsonNode *node, const char **file, GError **error)
{
  g_autofree char *n = shown (name);
  JsonObject *obj;
  JsonNode *fnode, *snode;
  JsonArray *dims;
  gint64 shape[AT_FILE_MAX_DIMS];
  guint ndim;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      at_file_error (error, "manifest.json", "variable \"%s\" is not a JSON object", n);
      return NULL;
    }
  obj = json_node_get_object (node);
  fnode = json_object_get_member (obj, "filename");
  snode = json_object_get_member (obj, "shape");
  if (fnode == NULL || !JSON_NODE_HOLDS_VALUE (fnode)
      || json_node_get_value_type (fnode) != G_TYPE_STRING
      || !at_file_name_is_plain (json_node_get_string (fnode)))
    {
      at_file_error (error, "manifest.json",
                     "variable \"%s\" has no \"filename\" naming a file in the folder", n);
      return NULL;
    }
  if (snode == NULL || !JSON_NODE_HOLDS_ARRAY (snode)
      || json_array_get_length (dims = json_node_get_array (snode)) > AT_FILE_MAX_DIMS)
    {
      at_file_error (error, "manifest.json",
                     "variable \"%s\" has no \"shape\" array of at most %d dimensions", n,
                     AT_FILE_MAX_DIMS);
      return NULL;
    }
  ndim = json_array_get_length (dims);
  for (guint i = 0; i < ndim; i++)
    if (!at_json_get_uint (json_array_get_element (dims, i), AT_FILE_MAX_DIM, &shape[i]))
      {
        g_autofree char *what = at_json_describe (json_array_get_element (dims, i));

        at_file_error (error, "manifest.json",
                       "variable \"%s\" has dimension %u of %s, not an integer in [0, 2^40]", n, i,
                       what);
        return NULL;
      }
  *file = json_node_get_string (fnode);
  return at_tensor_set_add (set, name, strlen (name), AT_FILE_DTYPE_F32, (int) ndim, shape, NULL,
                            error);
}

/* Maps the variable's file and checks it holds exactly the shape's bytes. */
static gboolean
map_variable (AtTensorEntry *e, const char *dir, const char *file, GPtrArray *mappings,
              GError **error)
{
  static const guint8 empty[1];
  g_autofree char *path = g_build_filename (dir, file, NULL);
  g_autofree char *n = shown (e->name), *f = shown (file);
  g_autoptr (GMappedFile) mapped = NULL;
  g_autoptr (GError) local = NULL;
  GBytes *bytes;
  gsize size;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      at_file_error (error, "manifest.json", "variable \"%s\": file %s is missing", n, f);
      return FALSE;
    }
  mapped = g_mapped_file_new (path, FALSE, &local);
  if (mapped == NULL)
    {
      at_file_error (error, f, "%s", local->message);
      return FALSE;
    }
  bytes = g_mapped_file_get_bytes (mapped);
  g_ptr_array_add (mappings, bytes);
  size = g_bytes_get_size (bytes);
  if (size != e->nbytes)
    {
      at_file_error (error, f,
                     "variable \"%s\" needs %" G_GUINT64_FORMAT " bytes (%" G_GINT64_FORMAT
                     " float32 values) but the "
                     "file has %" G_GSIZE_FORMAT,
                     n, e->nbytes, e->numel, size);
      return FALSE;
    }
  e->offset = 0;
  /* An empty file maps to NULL contents. */
  e->data = size > 0 ? g_bytes_get_data (bytes, NULL) : empty;
  return TRUE;
}

AtMl5 *
at_ml5_new_from_manifest_bytes (GBytes *manifest, const char *dir, GError **error)
{
  g_autoptr (AtMl5) ml5 = g_new0 (AtMl5, 1);
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GHashTable) files = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GPtrArray) names = NULL;
  GPtrArray *mappings = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  gsize size;
  const char *text = g_bytes_get_data (manifest, &size);
  JsonObject *obj;
  GList *members;

  ml5->tensors = at_tensor_set_new ("manifest.json");
  at_tensor_set_take_owner (ml5->tensors, mappings, (GDestroyNotify) g_ptr_array_unref);
  if (size > AT_FILE_MAX_HEADER)
    {
      at_file_error (error, "manifest.json",
                     "%" G_GSIZE_FORMAT " bytes is too large for a manifest", size);
      return NULL;
    }
  root = at_json_parse_untrusted (size > 0 ? text : "", size, "manifest.json", error);
  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      at_file_error (error, "manifest.json", "not a JSON object");
      return NULL;
    }
  obj = json_node_get_object (root);
  if (json_object_get_size (obj) > AT_FILE_MAX_TENSORS)
    {
      at_file_error (error, "manifest.json", "more than %u variables", AT_FILE_MAX_TENSORS);
      return NULL;
    }
  members = json_object_get_members (obj);
  names = g_ptr_array_new ();
  for (GList *l = members; l != NULL; l = l->next)
    g_ptr_array_add (names, l->data);
  g_list_free (members);
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i), *file = NULL;
      AtTensorEntry *e
          = add_variable (ml5->tensors, name, json_object_get_member (obj, name), &file, error);

      if (e == NULL)
        return NULL;
      if (g_hash_table_contains (files, file))
        {
          g_autofree char *n = shown (name), *f = shown (file),
                          *other = shown (g_hash_table_lookup (files, file));

          at_file_error (error, "manifest.json", "variables \"%s\" and \"%s\" both name file %s",
                         other, n, f);
          return NULL;
        }
      g_hash_table_insert (files, (gpointer) file, (gpointer) name);
      e->container = i;
      if (!map_variable (e, dir, file, mappings, error))
        return NULL;
    }
  return g_steal_pointer (&ml5);
}

AtMl5 *
at_ml5_open (const char *dir, GError **error)
{
  g_autofree char *path = g_build_filename (dir, "manifest.json", NULL);
  g_autoptr (GMappedFile) mapped = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GError) local = NULL;

  mapped = g_mapped_file_new (path, FALSE, &local);
  if (mapped == NULL)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_BAD_FILE, "manifest.json: %s", local->message);
      return NULL;
    }
  bytes = g_mapped_file_get_bytes (mapped);
  return at_ml5_new_from_manifest_bytes (bytes, dir, error);
}

void
at_ml5_free (AtMl5 *ml5)
{
  if (ml5 == NULL)
    return;
  at_tensor_set_free (ml5->tensors);
  g_free (ml5);
}

AtTensorSet *
at_ml5_get_tensors (AtMl5 *ml5)
{
  return ml5->tensors;
}
