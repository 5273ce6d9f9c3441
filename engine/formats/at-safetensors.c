/* at-safetensors.c: safetensors files, and the hardened JSON loader the JSON-based formats
 * share.
 *
 * Format facts (from the safetensors specification, README "Format"): u64 LE header length
 * N, N bytes of UTF-8 JSON, then the data buffer; every tensor's data_offsets are relative to
 * the buffer start, [begin, end) must hold exactly numel * dtype size bytes, and the tensors
 * together must cover the buffer with no gap, overlap or tail.
 *
 * Traps:
 * - json-glib keeps the LAST of two members with one name without a word: duplicates are
 *   caught with the parser's "object-member" signal, which fires once per member parsed (also
 *   for a repeat), while the object only grows for new names.
 * - json-glib recurses once per nesting level with no limit: the bytes are scanned for depth
 *   before it sees them. Its scanner also accepts 'single-quoted' strings and comments, which
 *   would hide brackets from that scan: outside strings only strict JSON characters pass.
 * - json-glib reads integers beyond int64 as clamped int64 and "1.0" / "1e3" as doubles: only
 *   G_TYPE_INT64 values are dimensions or offsets.
 * - Data offsets need not be aligned (N is arbitrary): readers memcpy, never cast.
 */
#include "at-safetensors.h"

#include <string.h>

#include "at-error.h"

struct _AtSafetensors
{
  char *file_name;
  GBytes *bytes;
  AtTensorSet *tensors;
  GHashTable *metadata; /* char* -> char* */
  guint64 header_size;
};

/* The dtypes a safetensors file may name, spelled exactly as the format spells them. */
static const struct
{
  const char *name;
  AtFileDtype dtype;
} st_dtypes[] = {
  { "F64", AT_FILE_DTYPE_F64 },         { "F32", AT_FILE_DTYPE_F32 },
  { "F16", AT_FILE_DTYPE_F16 },         { "BF16", AT_FILE_DTYPE_BF16 },
  { "I64", AT_FILE_DTYPE_I64 },         { "I32", AT_FILE_DTYPE_I32 },
  { "I16", AT_FILE_DTYPE_I16 },         { "I8", AT_FILE_DTYPE_I8 },
  { "U8", AT_FILE_DTYPE_U8 },           { "BOOL", AT_FILE_DTYPE_BOOL },
  { "F8_E4M3", AT_FILE_DTYPE_F8_E4M3 }, { "F8_E5M2", AT_FILE_DTYPE_F8_E5M2 },
};

/* A tensor as the header declares it, before it joins the set in data order. */
typedef struct
{
  const char *name; /* borrowed from the JSON tree */
  AtFileDtype dtype;
  int ndim;
  gint64 shape[AT_FILE_MAX_DIMS];
  guint64 begin, end;
} StTensor;

/* A tensor or key name fit for a message: at most ~200 bytes, escaped. */
static char *
shown_name (const char *name)
{
  gsize len = strlen (name);
  g_autofree char *valid = g_utf8_make_valid (name, MIN (len, 200));

  return g_strescape (valid, NULL);
}

/* ---- JSON ---- */

typedef struct
{
  GHashTable *counts; /* JsonObject* -> members seen */
  char *duplicate;    /* the first repeated member name */
} DupCheck;

static void
on_object_member (JsonParser *parser, JsonObject *object, const char *name, gpointer user_data)
{
  DupCheck *dc = user_data;
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (dc->counts, object)) + 1;

  /* Once a repeat is found, a freed object's address may be reused by a later one and its
   * stale count would mislead: only the first repeat is reported. */
  g_hash_table_insert (dc->counts, object, GUINT_TO_POINTER (n));
  if (dc->duplicate == NULL && n > json_object_get_size (object))
    dc->duplicate = g_strdup (name);
}

/* Checks the nesting depth before json-glib recurses. json-glib's scanner also takes
 * single-quoted strings and comments, which would hide brackets from a scan that only knows
 * JSON: so outside double-quoted strings only strict JSON's characters are let through, and
 * then this scan and json-glib see the same brackets. */
static gboolean
json_prescan (const char *text, gsize len, const char *file_name, GError **error)
{
  guint depth = 0;
  gboolean in_string = FALSE, escaped = FALSE;

  for (gsize i = 0; i < len; i++)
    {
      char c = text[i];

      if (in_string)
        {
          if (escaped)
            escaped = FALSE;
          else if (c == '\\')
            escaped = TRUE;
          else if (c == '"')
            in_string = FALSE;
        }
      else if (c == '"')
        in_string = TRUE;
      else if (c == '[' || c == '{')
        {
          if (++depth > AT_FILE_MAX_NESTING)
            {
              at_file_error (error, file_name, "JSON nests deeper than %d levels", AT_FILE_MAX_NESTING);
              return FALSE;
            }
        }
      else if (c == ']' || c == '}')
        depth = depth > 0 ? depth - 1 : 0;
      else if (c == '\0' || strchr (" \t\r\n:,+-.0123456789eEtrufalsn", c) == NULL)
        {
          at_file_error (error, file_name,
                         "JSON has an unexpected character (0x%02x) at byte %" G_GSIZE_FORMAT,
                         (guchar) c, i);
          return FALSE;
        }
    }
  return TRUE;
}

JsonNode *
at_json_parse_untrusted (const char *text, gsize len, const char *file_name, GError **error)
{
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GError) local = NULL;
  DupCheck dc = { NULL, NULL };
  const char *end;
  JsonNode *root;

  if (len > G_MAXSSIZE)
    {
      at_file_error (error, file_name, "JSON text too large");
      return NULL;
    }
  if (!g_utf8_validate_len (text, len, &end))
    {
      at_file_error (error, file_name, "JSON text is not valid UTF-8 (byte %" G_GSIZE_FORMAT ")",
                     (gsize) (end - text));
      return NULL;
    }
  if (!json_prescan (text, len, file_name, error))
    return NULL;
  parser = json_parser_new_immutable ();
  dc.counts = g_hash_table_new (NULL, NULL);
  g_signal_connect (parser, "object-member", G_CALLBACK (on_object_member), &dc);
  if (!json_parser_load_from_data (parser, text, (gssize) len, &local))
    {
      at_file_error (error, file_name, "JSON does not parse: %s", local->message);
      g_hash_table_unref (dc.counts);
      g_free (dc.duplicate);
      return NULL;
    }
  g_hash_table_unref (dc.counts);
  if (dc.duplicate != NULL)
    {
      g_autofree char *shown = shown_name (dc.duplicate);

      at_file_error (error, file_name, "JSON member \"%s\" appears twice in one object", shown);
      g_free (dc.duplicate);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL)
    {
      at_file_error (error, file_name, "JSON text is empty");
      return NULL;
    }
  return json_node_ref (root);
}

JsonNode *
at_json_load_file (const char *path, guint64 max_size, GError **error)
{
  g_autofree char *base = g_path_get_basename (path);
  g_autoptr (GMappedFile) mapped = NULL;
  g_autoptr (GError) local = NULL;

  mapped = g_mapped_file_new (path, FALSE, &local);
  if (mapped == NULL)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_BAD_FILE, "%s: %s", base, local->message);
      return NULL;
    }
  if (g_mapped_file_get_length (mapped) > max_size)
    {
      at_file_error (error, base,
                     "JSON file of %" G_GSIZE_FORMAT " bytes (at most %" G_GUINT64_FORMAT ")",
                     g_mapped_file_get_length (mapped), max_size);
      return NULL;
    }
  /* An empty file maps to NULL contents. */
  return at_json_parse_untrusted (
      g_mapped_file_get_length (mapped) > 0 ? g_mapped_file_get_contents (mapped) : "",
      g_mapped_file_get_length (mapped), base, error);
}

gboolean
at_json_get_uint (JsonNode *node, gint64 max, gint64 *out)
{
  gint64 v;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  v = json_node_get_int (node);
  if (v < 0 || v > max)
    return FALSE;
  *out = v;
  return TRUE;
}

gboolean
at_file_name_is_plain (const char *name)
{
  gsize len = strlen (name);

  return len > 0 && len <= 255 && strchr (name, '/') == NULL && strchr (name, '\\') == NULL
         && strcmp (name, ".") != 0 && strcmp (name, "..") != 0;
}

char *
at_json_describe (JsonNode *node)
{
  if (node == NULL)
    return g_strdup ("nothing");
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      return g_strdup ("an object");
    case JSON_NODE_ARRAY:
      return g_strdup ("an array");
    case JSON_NODE_NULL:
      return g_strdup ("null");
    case JSON_NODE_VALUE:
    default:
      break;
    }
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    return g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (node));
  if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
    return g_strdup_printf ("float %.17g", json_node_get_double (node));
  if (json_node_get_value_type (node) == G_TYPE_BOOLEAN)
    return g_strdup (json_node_get_boolean (node) ? "true" : "false");
  return g_strdup ("a string");
}

/* ---- Header ---- */

static gboolean
parse_dtype (const char *file_name, const char *shown, JsonObject *info, AtFileDtype *out,
             GError **error)
{
  JsonNode *node = json_object_get_member (info, "dtype");
  const char *name;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      at_file_error (error, file_name, "tensor \"%s\" has no \"dtype\" string", shown);
      return FALSE;
    }
  name = json_node_get_string (node);
  for (guint i = 0; i < G_N_ELEMENTS (st_dtypes); i++)
    if (strcmp (name, st_dtypes[i].name) == 0)
      {
        *out = st_dtypes[i].dtype;
        return TRUE;
      }
  {
    g_autofree char *shown_dtype = shown_name (name);

    at_file_error_code (error, AT_ERROR_UNSUPPORTED, file_name,
                        "tensor \"%s\" has dtype \"%s\", which is not supported", shown,
                        shown_dtype);
  }
  return FALSE;
}

static gboolean
parse_shape (const char *file_name, const char *shown, JsonObject *info, StTensor *t,
             GError **error)
{
  JsonNode *node = json_object_get_member (info, "shape");
  JsonArray *dims;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    {
      at_file_error (error, file_name, "tensor \"%s\" has no \"shape\" array", shown);
      return FALSE;
    }
  dims = json_node_get_array (node);
  if (json_array_get_length (dims) > AT_FILE_MAX_DIMS)
    {
      at_file_error (error, file_name, "tensor \"%s\" has %u dimensions (at most %d)", shown,
                     json_array_get_length (dims), AT_FILE_MAX_DIMS);
      return FALSE;
    }
  t->ndim = (int) json_array_get_length (dims);
  for (int i = 0; i < t->ndim; i++)
    if (!at_json_get_uint (json_array_get_element (dims, (guint) i), AT_FILE_MAX_DIM, &t->shape[i]))
      {
        g_autofree char *what = at_json_describe (json_array_get_element (dims, (guint) i));

        at_file_error (error, file_name,
                       "tensor \"%s\" has dimension %d of %s, not an integer in [0, 2^40]", shown,
                       i, what);
        return FALSE;
      }
  return TRUE;
}

static gboolean
parse_offsets (const char *file_name, const char *shown, JsonObject *info, StTensor *t,
               GError **error)
{
  JsonNode *node = json_object_get_member (info, "data_offsets");
  JsonArray *offs;
  gint64 begin, end;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node)
      || json_array_get_length (offs = json_node_get_array (node)) != 2)
    {
      at_file_error (error, file_name, "tensor \"%s\" has no \"data_offsets\" pair", shown);
      return FALSE;
    }
  if (!at_json_get_uint (json_array_get_element (offs, 0), G_MAXINT64, &begin)
      || !at_json_get_uint (json_array_get_element (offs, 1), G_MAXINT64, &end))
    {
      at_file_error (error, file_name,
                     "tensor \"%s\" has data_offsets that are not non-negative integers", shown);
      return FALSE;
    }
  if (end < begin)
    {
      at_file_error (error, file_name,
                     "tensor \"%s\" ends (%" G_GINT64_FORMAT ") before it begins (%" G_GINT64_FORMAT
                     ")",
                     shown, end, begin);
      return FALSE;
    }
  t->begin = (guint64) begin;
  t->end = (guint64) end;
  return TRUE;
}

/* One tensor member: its dtype, shape and offsets, checked against the data buffer. */
static gboolean
parse_tensor (const char *file_name, const char *name, JsonNode *node, guint64 data_size,
              StTensor *t, GError **error)
{
  g_autofree char *shown = shown_name (name);
  JsonObject *info;
  guint64 numel = 1, nbytes;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      at_file_error (error, file_name, "tensor \"%s\" is not a JSON object", shown);
      return FALSE;
    }
  info = json_node_get_object (node);
  t->name = name;
  if (!parse_dtype (file_name, shown, info, &t->dtype, error)
      || !parse_shape (file_name, shown, info, t, error)
      || !parse_offsets (file_name, shown, info, t, error))
    return FALSE;
  for (int i = 0; i < t->ndim; i++)
    if (!at_checked_mul (numel, (guint64) t->shape[i], &numel)
        || numel > (guint64) AT_FILE_MAX_ELEMENTS)
      {
        at_file_error (error, file_name, "tensor \"%s\" has more than 2^42 elements", shown);
        return FALSE;
      }
  nbytes = numel * at_file_dtype_info (t->dtype)->type_size;
  if (t->end - t->begin != nbytes)
    {
      at_file_error (error, file_name,
                     "tensor \"%s\" (%s, %" G_GUINT64_FORMAT " elements) needs %" G_GUINT64_FORMAT
                     " bytes but its data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                     "] span %" G_GUINT64_FORMAT,
                     shown, at_file_dtype_name (t->dtype), numel, nbytes, t->begin, t->end,
                     t->end - t->begin);
      return FALSE;
    }
  if (t->end > data_size)
    {
      at_file_error (error, file_name,
                     "tensor \"%s\" ends at data offset %" G_GUINT64_FORMAT
                     ", past the %" G_GUINT64_FORMAT "-byte data buffer",
                     shown, t->end, data_size);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_metadata (const char *file_name, JsonNode *node, GHashTable *metadata, GError **error)
{
  JsonObject *obj;
  g_autoptr (GList) members = NULL;

  if (JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      at_file_error (error, file_name, "\"__metadata__\" is not a JSON object");
      return FALSE;
    }
  obj = json_node_get_object (node);
  if (json_object_get_size (obj) > AT_FILE_MAX_METADATA)
    {
      at_file_error (error, file_name, "\"__metadata__\" has more than %u entries",
                     AT_FILE_MAX_METADATA);
      return FALSE;
    }
  members = json_object_get_members (obj);
  for (GList *l = members; l != NULL; l = l->next)
    {
      JsonNode *value = json_object_get_member (obj, l->data);
      g_autofree char *shown = shown_name (l->data);

      if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING)
        {
          at_file_error (error, file_name, "\"__metadata__\" value \"%s\" is not a string", shown);
          return FALSE;
        }
      if (strlen (l->data) > AT_FILE_MAX_NAME
          || strlen (json_node_get_string (value)) > AT_FILE_MAX_STRING)
        {
          at_file_error (error, file_name, "\"__metadata__\" entry \"%s\" is too long", shown);
          return FALSE;
        }
      g_hash_table_insert (metadata, g_strdup (l->data), g_strdup (json_node_get_string (value)));
    }
  return TRUE;
}

static int
compare_by_offset (gconstpointer a, gconstpointer b)
{
  const StTensor *x = a, *y = b;

  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return strcmp (x->name, y->name);
}

/* Sorted by offset, the tensors must tile [0, data_size) exactly. Zero-size tensors sit on a
 * boundary (they sort before a tensor beginning at the same offset). */
static gboolean
check_tiling (const char *file_name, GArray *tensors, guint64 data_size, GError **error)
{
  guint64 at = 0;
  const char *prev = NULL;

  for (guint i = 0; i < tensors->len; i++)
    {
      const StTensor *t = &g_array_index (tensors, StTensor, i);
      g_autofree char *shown = shown_name (t->name);
      g_autofree char *shown_prev = prev != NULL ? shown_name (prev) : NULL;

      if (t->begin < at)
        {
          at_file_error (error, file_name,
                         "tensor \"%s\" (data offset %" G_GUINT64_FORMAT ") overlaps tensor \"%s\"",
                         shown, t->begin, shown_prev);
          return FALSE;
        }
      if (t->begin > at)
        {
          at_file_error (error, file_name,
                         "gap of %" G_GUINT64_FORMAT
                         " bytes in the data buffer at [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                         ") before tensor \"%s\"",
                         t->begin - at, at, t->begin, shown);
          return FALSE;
        }
      at = t->end;
      prev = t->name;
    }
  if (at != data_size)
    {
      at_file_error (error, file_name,
                     "%" G_GUINT64_FORMAT " trailing bytes in the data buffer after the last "
                                          "tensor (data ends at %" G_GUINT64_FORMAT
                     ", buffer is %" G_GUINT64_FORMAT " bytes)",
                     data_size - at, at, data_size);
      return FALSE;
    }
  return TRUE;
}

/* Reads the header object into `tensors` (data order) and `st->metadata`. */
static gboolean
parse_header (AtSafetensors *st, JsonObject *root, guint64 data_size, GArray *tensors,
              GError **error)
{
  g_autoptr (GList) members = json_object_get_members (root);

  if (json_object_get_size (root) > AT_FILE_MAX_TENSORS + 1)
    {
      at_file_error (error, st->file_name, "more than %u tensors", AT_FILE_MAX_TENSORS);
      return FALSE;
    }
  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *name = l->data;
      JsonNode *node = json_object_get_member (root, name);
      StTensor t = { 0 };

      if (strcmp (name, "__metadata__") == 0)
        {
          if (!parse_metadata (st->file_name, node, st->metadata, error))
            return FALSE;
          continue;
        }
      if (!parse_tensor (st->file_name, name, node, data_size, &t, error))
        return FALSE;
      g_array_append_val (tensors, t);
    }
  g_array_sort (tensors, compare_by_offset);
  return check_tiling (st->file_name, tensors, data_size, error);
}

static gboolean
parse (AtSafetensors *st, GError **error)
{
  gsize size = 0;
  const guint8 *data = g_bytes_get_data (st->bytes, &size);
  const guint8 *json;
  AtByteReader r;
  guint64 n, data_start, data_size;
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GArray) tensors = g_array_new (FALSE, TRUE, sizeof (StTensor));

  at_byte_reader_init (&r, data, size);
  if (!at_byte_reader_u64 (&r, &n))
    {
      at_file_error (error, st->file_name,
                     "%" G_GSIZE_FORMAT " bytes is too short for a safetensors header", size);
      return FALSE;
    }
  if (n > AT_FILE_MAX_HEADER)
    {
      at_file_error (error, st->file_name,
                     "header length %" G_GUINT64_FORMAT " is over the %" G_GUINT64_FORMAT
                     "-byte limit",
                     n, AT_FILE_MAX_HEADER);
      return FALSE;
    }
  if (!at_byte_reader_bytes (&r, (gsize) n, &json))
    {
      at_file_error (error, st->file_name,
                     "header length %" G_GUINT64_FORMAT
                     " runs past the end of the file (%" G_GSIZE_FORMAT " bytes)",
                     n, size);
      return FALSE;
    }
  st->header_size = n;
  data_start = 8 + n;
  data_size = size - data_start;
  root = at_json_parse_untrusted ((const char *) json, (gsize) n, st->file_name, error);
  if (root == NULL)
    return FALSE;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      at_file_error (error, st->file_name, "the header is not a JSON object");
      return FALSE;
    }
  if (!parse_header (st, json_node_get_object (root), data_size, tensors, error))
    return FALSE;
  for (guint i = 0; i < tensors->len; i++)
    {
      const StTensor *t = &g_array_index (tensors, StTensor, i);
      AtTensorEntry *e = at_tensor_set_add (st->tensors, t->name, strlen (t->name), t->dtype,
                                            t->ndim, t->shape, NULL, error);

      if (e == NULL)
        return FALSE;
      e->container = 0;
      e->offset = data_start + t->begin;
      e->data = data + e->offset;
    }
  return TRUE;
}

AtSafetensors *
at_safetensors_new_from_bytes (GBytes *bytes, const char *file_name, GError **error)
{
  g_autoptr (AtSafetensors) st = g_new0 (AtSafetensors, 1);

  g_return_val_if_fail (bytes != NULL, NULL);
  st->file_name = g_strdup (file_name != NULL ? file_name : "safetensors");
  st->bytes = g_bytes_ref (bytes);
  st->tensors = at_tensor_set_new (st->file_name);
  at_tensor_set_take_owner (st->tensors, g_bytes_ref (bytes), (GDestroyNotify) g_bytes_unref);
  st->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (!parse (st, error))
    return NULL;
  return g_steal_pointer (&st);
}

AtSafetensors *
at_safetensors_open (const char *path, GError **error)
{
  g_autofree char *base = g_path_get_basename (path);
  g_autoptr (GMappedFile) mapped = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GError) local = NULL;

  mapped = g_mapped_file_new (path, FALSE, &local);
  if (mapped == NULL)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_BAD_FILE, "%s: %s", base, local->message);
      return NULL;
    }
  bytes = g_mapped_file_get_bytes (mapped);
  return at_safetensors_new_from_bytes (bytes, base, error);
}

void
at_safetensors_free (AtSafetensors *st)
{
  if (st == NULL)
    return;
  at_tensor_set_free (st->tensors);
  g_clear_pointer (&st->metadata, g_hash_table_unref);
  g_bytes_unref (st->bytes);
  g_free (st->file_name);
  g_free (st);
}

AtTensorSet *
at_safetensors_get_tensors (AtSafetensors *st)
{
  return st->tensors;
}

AtTensorSet *
at_safetensors_steal_tensors (AtSafetensors *st)
{
  return g_steal_pointer (&st->tensors);
}

GHashTable *
at_safetensors_get_metadata (AtSafetensors *st)
{
  return st->metadata;
}

guint64
at_safetensors_get_header_size (AtSafetensors *st)
{
  return st->header_size;
}
