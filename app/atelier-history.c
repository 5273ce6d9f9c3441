/* atelier-history.c: `atelier history list|search|show|tree|export|tag|fav|rm|check`: the
 * history store (atelier-store.h) on the command line. Every failure is one line
 * "atelier history: what is wrong" on stderr and a non-zero exit.
 *
 * `export` writes a text or MIDI asset as it is stored, and a PNG with a `parameters` text
 * chunk before IEND in the convention other image tools read (AUTOMATIC1111's: the prompt, a
 * "Negative prompt: ..." line, then "Steps: 20, Seed: 42, ..."); tEXt when the text is
 * Latin-1, else iTXt (UTF-8), as the PNG specification asks. The stored PNG's structure is
 * checked first: a malformed file is refused, not patched. */
#include "config.h"

#include "atelier-commands.h"
#include "atelier-store.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PNG_MAX_CHUNK 0x7fffffffu

static void
fail (GError *error)
{
  fprintf (stderr, "atelier history: %s\n", error->message);
}

/* Opens the store and reconciles it, saying on stderr when items have lost files. */
static AtelierStore *
open_store (gboolean quiet, GError **error)
{
  g_autoptr (AtelierStore) store = atelier_store_open (NULL, error);
  g_auto (AtelierStoreReport) report = { 0 };

  if (store == NULL || !atelier_store_reconcile (store, FALSE, &report, error))
    return NULL;
  if (!quiet && report.missing_items->len > 0)
    fprintf (stderr, "atelier history: %u items have missing asset files (atelier history check)\n",
             report.missing_items->len);
  return g_steal_pointer (&store);
}

static gboolean
parse_id (const char *s, gint64 *id, GError **error)
{
  if (s == NULL || !g_ascii_string_to_signed (s, 10, 1, G_MAXINT64, id, NULL))
    {
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID, "\"%s\" is not an item id",
                   s != NULL ? s : "");
      return FALSE;
    }
  return TRUE;
}

/* "2026-11-23" or an ISO 8601 time, as microseconds since 1970. */
static gboolean
parse_date (const char *s, gint64 *us, GError **error)
{
  g_autoptr (GDateTime) dt = NULL;
  g_autoptr (GTimeZone) utc = g_time_zone_new_utc ();

  if (s == NULL)
    return TRUE;
  if (strlen (s) == 10)
    {
      g_autofree char *full = g_strconcat (s, "T00:00:00Z", NULL);

      dt = g_date_time_new_from_iso8601 (full, utc);
    }
  else
    dt = g_date_time_new_from_iso8601 (s, utc);
  if (dt == NULL)
    {
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID,
                   "\"%s\" is not a date (YYYY-MM-DD or an ISO 8601 time)", s);
      return FALSE;
    }
  *us = g_date_time_to_unix (dt) * G_USEC_PER_SEC + g_date_time_get_microsecond (dt);
  return TRUE;
}

static char *
format_time (gint64 us)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (us / G_USEC_PER_SEC);

  return dt != NULL ? g_date_time_format (dt, "%Y-%m-%d %H:%M:%S") : g_strdup ("?");
}

/* The item's members, inside an object the caller opened. */
static void
add_item_json (JsonBuilder *b, const AtelierItem *item)
{
  g_autoptr (JsonNode) params = json_from_string (item->params_json, NULL);
  g_autofree char *created = format_time (item->created_us);

  json_builder_set_member_name (b, "id");
  json_builder_add_int_value (b, item->id);
  json_builder_set_member_name (b, "kind");
  json_builder_add_string_value (b, atelier_item_kind_name (item->kind));
  json_builder_set_member_name (b, "created");
  json_builder_add_string_value (b, created);
  json_builder_set_member_name (b, "created_us");
  json_builder_add_int_value (b, item->created_us);
  json_builder_set_member_name (b, "prompt");
  json_builder_add_string_value (b, item->prompt);
  json_builder_set_member_name (b, "negative");
  json_builder_add_string_value (b, item->negative);
  json_builder_set_member_name (b, "params");
  if (params != NULL)
    json_builder_add_value (b, g_steal_pointer (&params));
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "seed");
  if (item->has_seed)
    json_builder_add_int_value (b, item->seed);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "model");
  if (item->model_id > 0)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "id");
      json_builder_add_int_value (b, item->model_id);
      json_builder_set_member_name (b, "path");
      json_builder_add_string_value (b, item->model_path);
      json_builder_set_member_name (b, "hash");
      json_builder_add_string_value (b, item->model_hash);
      json_builder_end_object (b);
    }
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "parent");
  if (item->parent_id > 0)
    json_builder_add_int_value (b, item->parent_id);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "favourite");
  json_builder_add_boolean_value (b, item->favourite);
  json_builder_set_member_name (b, "missing");
  json_builder_add_boolean_value (b, item->missing);
  json_builder_set_member_name (b, "preview");
  json_builder_add_string_value (b, item->preview);
  json_builder_set_member_name (b, "depth");
  json_builder_add_int_value (b, item->depth);
  json_builder_set_member_name (b, "tags");
  json_builder_begin_array (b);
  for (guint i = 0; item->tags != NULL && item->tags[i] != NULL; i++)
    json_builder_add_string_value (b, item->tags[i]);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "assets");
  json_builder_begin_array (b);
  for (guint i = 0; item->assets != NULL && i < item->assets->len; i++)
    {
      const AtelierAsset *a = g_ptr_array_index (item->assets, i);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "role");
      json_builder_add_string_value (b, a->role);
      json_builder_set_member_name (b, "media_type");
      json_builder_add_string_value (b, a->media_type);
      json_builder_set_member_name (b, "sha256");
      json_builder_add_string_value (b, a->sha256);
      json_builder_set_member_name (b, "size");
      json_builder_add_int_value (b, a->size);
      json_builder_set_member_name (b, "path");
      json_builder_add_string_value (b, a->path);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

static void
print_json (JsonBuilder *b)
{
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *out = json_to_string (root, TRUE);

  printf ("%s\n", out);
}

/* One line: the prompt (or the preview) cut to `width` characters, newlines as spaces. */
static char *
one_line (const AtelierItem *item, glong width)
{
  const char *s = item->prompt != NULL && item->prompt[0] != '\0' ? item->prompt : item->preview;
  g_autofree char *cut = NULL;

  if (s == NULL)
    return g_strdup ("");
  if (g_utf8_strlen (s, -1) > width)
    {
      g_autofree char *head = g_utf8_substring (s, 0, width - 1);

      cut = g_strconcat (head, "…", NULL);
    }
  else
    cut = g_strdup (s);
  g_strdelimit (cut, "\n\r\t", ' ');
  return g_steal_pointer (&cut);
}

static void
print_items (GPtrArray *items, gboolean json)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  if (json)
    {
      json_builder_begin_array (b);
      for (guint i = 0; i < items->len; i++)
        {
          json_builder_begin_object (b);
          add_item_json (b, g_ptr_array_index (items, i));
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      print_json (b);
      return;
    }
  for (guint i = 0; i < items->len; i++)
    {
      const AtelierItem *item = g_ptr_array_index (items, i);
      g_autofree char *when = format_time (item->created_us);
      g_autofree char *line = one_line (item, 60);

      printf ("%6" G_GINT64_FORMAT "  %-6s  %s  %s%s%s\n", item->id, atelier_item_kind_name (item->kind), when,
              item->favourite ? "* " : "", item->missing ? "[missing] " : "", line);
    }
}

/* list and search share their filters. */
static int
cmd_find (int argc, char **argv, gboolean search)
{
  g_autofree char *kind = NULL, *from = NULL, *to = NULL;
  gboolean json = FALSE, favourites = FALSE;
  int limit = 50, offset = 0;
  gint64 model = 0;
  GOptionEntry entries[] = {
    { "kind", 0, 0, G_OPTION_ARG_STRING, &kind, "image, text, melody or style", "K" },
    { "limit", 'n', 0, G_OPTION_ARG_INT, &limit, "At most N items (50)", "N" },
    { "offset", 0, 0, G_OPTION_ARG_INT, &offset, "Skip the first N", "N" },
    { "favourites", 0, 0, G_OPTION_ARG_NONE, &favourites, "Favourites only", NULL },
    { "model", 0, 0, G_OPTION_ARG_INT64, &model, "Made with the model row ID", "ID" },
    { "from", 0, 0, G_OPTION_ARG_STRING, &from, "Made on or after (YYYY-MM-DD or ISO 8601)", "DATE" },
    { "to", 0, 0, G_OPTION_ARG_STRING, &to, "Made before", "DATE" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (search ? "QUERY - search the history"
                                                                : "- the newest items of the history");
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = NULL;
  g_autoptr (GPtrArray) items = NULL;
  AtelierQuery q = ATELIER_QUERY_INIT;
  AtelierItemKind k;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    goto fail;
  if ((search && argc != 2) || (!search && argc != 1) || limit <= 0 || offset < 0)
    {
      fprintf (stderr, "Usage: atelier history %s [--kind K] [--limit N] [--offset N] [--favourites] [--model ID] "
                       "[--from DATE] [--to DATE] [--json]\n",
               search ? "search QUERY" : "list");
      return 2;
    }
  if (kind != NULL)
    {
      if (!atelier_item_kind_from_name (kind, &k))
        {
          fprintf (stderr, "atelier history: --kind %s: expected image, text, melody or style\n", kind);
          return 2;
        }
      q.kind = (int) k;
    }
  q.text = search ? argv[1] : NULL;
  q.limit = (guint) limit;
  q.offset = (guint) offset;
  q.favourite_only = favourites;
  q.model_id = model;
  if (!parse_date (from, &q.created_from_us, &error) || !parse_date (to, &q.created_to_us, &error)
      || (store = open_store (json, &error)) == NULL || (items = atelier_store_find (store, &q, &error)) == NULL)
    goto fail;
  print_items (items, json);
  return 0;

fail:
  fail (error);
  return 1;
}

/* Parses `SUB [options] ID`: the options, then exactly one id. */
static gboolean
parse_one_id (GOptionContext *ctx, int *argc, char ***argv, gint64 *id, GError **error)
{
  if (!g_option_context_parse (ctx, argc, argv, error))
    return FALSE;
  if (*argc != 2)
    {
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID, "%s needs one item id", (*argv)[0]);
      return FALSE;
    }
  return parse_id ((*argv)[1], id, error);
}

static GArray *
ids_of (GPtrArray *items)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint64));

  for (guint i = 0; i < items->len; i++)
    g_array_append_val (ids, ((AtelierItem *) g_ptr_array_index (items, i))->id);
  return ids;
}

static void
add_ids_json (JsonBuilder *b, const char *name, GArray *ids)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_array (b);
  for (guint i = 0; i < ids->len; i++)
    json_builder_add_int_value (b, g_array_index (ids, gint64, i));
  json_builder_end_array (b);
}

static void
print_show (const AtelierItem *item, GArray *lineage, GArray *children)
{
  g_autofree char *when = format_time (item->created_us);
  g_autoptr (JsonNode) params = json_from_string (item->params_json, NULL);
  g_autofree char *params_text = params != NULL ? json_to_string (params, TRUE) : g_strdup (item->params_json);

  printf ("item %" G_GINT64_FORMAT " (%s), made %s UTC%s%s\n", item->id, atelier_item_kind_name (item->kind), when,
          item->favourite ? ", favourite" : "", item->missing ? ", ASSET FILES MISSING" : "");
  printf ("prompt: %s\n", item->prompt);
  if (item->negative[0] != '\0')
    printf ("negative prompt: %s\n", item->negative);
  if (item->has_seed)
    printf ("seed: %" G_GINT64_FORMAT "\n", item->seed);
  if (item->model_id > 0)
    printf ("model: %s (%s)\n", item->model_path, item->model_hash);
  printf ("parameters: %s\n", params_text);
  if (item->tags[0] != NULL)
    {
      g_autofree char *tags = g_strjoinv (", ", item->tags);

      printf ("tags: %s\n", tags);
    }
  if (item->preview != NULL)
    printf ("preview: %s\n", item->preview);
  for (guint i = 0; i < item->assets->len; i++)
    {
      const AtelierAsset *a = g_ptr_array_index (item->assets, i);

      printf ("asset %s: %s, %" G_GINT64_FORMAT " bytes, %s\n", a->role, a->media_type, a->size, a->path);
    }
  printf ("lineage:");
  for (guint i = 0; i < lineage->len; i++)
    printf ("%s%" G_GINT64_FORMAT, i == 0 ? " " : " <- ", g_array_index (lineage, gint64, i));
  printf (" (root)\nchildren:");
  for (guint i = 0; i < children->len; i++)
    printf (" %" G_GINT64_FORMAT, g_array_index (children, gint64, i));
  printf ("%s\n", children->len == 0 ? " none" : "");
}

static int
cmd_show (int argc, char **argv)
{
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("ID - an item, its lineage and its variants");
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = NULL;
  g_autoptr (AtelierItem) item = NULL;
  g_autoptr (GPtrArray) lineage = NULL, children = NULL;
  g_autoptr (GArray) up = NULL, down = NULL;
  gint64 id;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!parse_one_id (ctx, &argc, &argv, &id, &error) || (store = open_store (json, &error)) == NULL
      || (item = atelier_store_get (store, id, &error)) == NULL
      || (lineage = atelier_store_lineage (store, id, &error)) == NULL
      || (children = atelier_store_children (store, id, &error)) == NULL)
    {
      fail (error);
      return 1;
    }
  up = ids_of (lineage);
  down = ids_of (children);
  if (json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();

      json_builder_begin_object (b);
      add_item_json (b, item);
      add_ids_json (b, "lineage", up);
      add_ids_json (b, "children", down);
      json_builder_end_object (b);
      print_json (b);
    }
  else
    print_show (item, up, down);
  return 0;
}

static int
cmd_tree (int argc, char **argv)
{
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("ID - the variant tree that holds an item");
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = NULL;
  g_autoptr (GPtrArray) tree = NULL;
  gint64 id;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!parse_one_id (ctx, &argc, &argv, &id, &error) || (store = open_store (json, &error)) == NULL
      || (tree = atelier_store_tree (store, id, &error)) == NULL)
    {
      fail (error);
      return 1;
    }
  if (json)
    {
      print_items (tree, TRUE);
      return 0;
    }
  for (guint i = 0; i < tree->len; i++)
    {
      const AtelierItem *item = g_ptr_array_index (tree, i);
      g_autofree char *line = one_line (item, 60);

      printf ("%*s%s %" G_GINT64_FORMAT " %s: %s\n", (int) MIN (item->depth, 40) * 2, "", item->id == id ? "*" : "-",
              item->id, atelier_item_kind_name (item->kind), line);
    }
  return 0;
}

static guint32
crc32_update (guint32 crc, const guint8 *p, gsize n)
{
  static guint32 table[256];
  static gsize init;

  /* The PNG specification's CRC-32 (ISO 3309, reflected, polynomial 0xEDB88320). */
  if (g_once_init_enter (&init))
    {
      for (guint32 i = 0; i < 256; i++)
        {
          guint32 c = i;

          for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
          table[i] = c;
        }
      g_once_init_leave (&init, 1);
    }
  crc ^= 0xffffffffu;
  for (gsize i = 0; i < n; i++)
    crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

static guint32
read_be32 (const guint8 *p)
{
  return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
}

static void
append_be32 (GByteArray *out, guint32 v)
{
  guint8 b[4] = { v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff };

  g_byte_array_append (out, b, 4);
}

/* The offset of the IEND chunk after checking every chunk's bounds and CRC, or 0. */
static gsize
png_find_iend (const guint8 *data, gsize len, const char *path, GError **error)
{
  static const guint8 signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  gsize off = 8;

  if (len < 8 || memcmp (data, signature, 8) != 0)
    {
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID, "%s: not a PNG (no PNG signature)", path);
      return 0;
    }
  while (off + 12 <= len)
    {
      guint32 n = read_be32 (data + off);

      if (n > PNG_MAX_CHUNK || n > len - off - 12)
        break;
      if (crc32_update (0, data + off + 4, (gsize) n + 4) != read_be32 (data + off + 8 + n))
        {
          g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID,
                       "%s: the PNG chunk at byte %" G_GSIZE_FORMAT " has a wrong CRC", path, off);
          return 0;
        }
      if (off == 8 && memcmp (data + off + 4, "IHDR", 4) != 0)
        break;
      if (memcmp (data + off + 4, "IEND", 4) == 0)
        return off;
      off += (gsize) n + 12;
    }
  g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID,
               "%s: malformed PNG (chunk at byte %" G_GSIZE_FORMAT " runs past the end, or no IHDR / IEND)", path, off);
  return 0;
}

static void
append_param (GString *s, const char *name, const char *value)
{
  if (s->len > 0)
    g_string_append (s, ", ");
  g_string_append_printf (s, "%s: %s", name, value);
}

/* The A1111 "parameters" text: prompt, negative prompt line, then the settings line. */
static char *
a1111_parameters (const AtelierItem *item)
{
  static const char *const names[][2] = {
    { "steps", "Steps" }, { "sampler", "Sampler" }, { "cfg_scale", "CFG scale" }, { "cfg", "CFG scale" },
    { "guidance", "CFG scale" }, { "strength", "Denoising strength" },
  };
  g_autoptr (GString) out = g_string_new (item->prompt);
  g_autoptr (GString) settings = g_string_new (NULL);
  g_autoptr (JsonNode) root = json_from_string (item->params_json, NULL);
  JsonObject *o = root != NULL && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  g_autoptr (GList) members = o != NULL ? json_object_get_members (o) : NULL;

  if (item->negative[0] != '\0')
    g_string_append_printf (out, "\nNegative prompt: %s", item->negative);
  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *key = l->data, *name = key;
      JsonNode *v = json_object_get_member (o, key);
      g_autofree char *text = NULL;

      if (strcmp (key, "width") == 0 || strcmp (key, "height") == 0 || strcmp (key, "seed") == 0)
        continue;
      for (guint i = 0; i < G_N_ELEMENTS (names); i++)
        if (strcmp (key, names[i][0]) == 0)
          name = names[i][1];
      text = JSON_NODE_HOLDS_VALUE (v) && json_node_get_value_type (v) == G_TYPE_STRING
               ? g_strdup (json_node_get_string (v))
               : json_to_string (v, FALSE);
      append_param (settings, name, text);
    }
  if (item->has_seed)
    {
      g_autofree char *seed = g_strdup_printf ("%" G_GINT64_FORMAT, item->seed);

      append_param (settings, "Seed", seed);
    }
  if (o != NULL && json_object_has_member (o, "width") && json_object_has_member (o, "height"))
    {
      g_autofree char *size = g_strdup_printf ("%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT,
                                               json_object_get_int_member (o, "width"),
                                               json_object_get_int_member (o, "height"));

      append_param (settings, "Size", size);
    }
  if (item->model_path != NULL)
    {
      g_autofree char *base = g_path_get_basename (item->model_path);

      append_param (settings, "Model", base);
    }
  if (settings->len > 0)
    g_string_append_printf (out, "\n%s", settings->str);
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* The PNG with a "parameters" text chunk inserted before IEND. */
static GBytes *
png_with_parameters (GBytes *png, const char *path, const char *text, GError **error)
{
  gsize len, iend;
  const guint8 *data = g_bytes_get_data (png, &len);
  g_autoptr (GByteArray) chunk = g_byte_array_new ();
  g_autoptr (GByteArray) out = g_byte_array_new ();
  gboolean latin1 = TRUE;

  if ((iend = png_find_iend (data, len, path, error)) == 0)
    return NULL;
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    latin1 = latin1 && g_utf8_get_char (p) < 256;
  g_byte_array_append (chunk, (const guint8 *) (latin1 ? "tEXt" : "iTXt"), 4);
  g_byte_array_append (chunk, (const guint8 *) "parameters", sizeof "parameters");
  if (latin1)
    for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
      {
        guint8 c = (guint8) g_utf8_get_char (p);

        g_byte_array_append (chunk, &c, 1);
      }
  else
    {
      /* Not compressed, method 0, no language tag, no translated keyword. */
      static const guint8 itxt_head[4] = { 0, 0, 0, 0 };

      g_byte_array_append (chunk, itxt_head, 4);
      g_byte_array_append (chunk, (const guint8 *) text, strlen (text));
    }
  g_byte_array_append (out, data, iend);
  append_be32 (out, chunk->len - 4);
  g_byte_array_append (out, chunk->data, chunk->len);
  append_be32 (out, crc32_update (0, chunk->data, chunk->len));
  g_byte_array_append (out, data + iend, len - iend);
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

static int
cmd_export (int argc, char **argv)
{
  g_autofree char *output = NULL, *role = NULL;
  GOptionEntry entries[] = {
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Write to PATH", "PATH" },
    { "role", 0, 0, G_OPTION_ARG_STRING, &role, "Which asset: main (default), thumbnail, preview", "ROLE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("ID -o PATH - write an item's file");
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = NULL;
  g_autoptr (AtelierItem) item = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autofree char *contents = NULL, *sha = NULL;
  const AtelierAsset *asset;
  gsize len;
  gint64 id;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!parse_one_id (ctx, &argc, &argv, &id, &error))
    goto fail;
  if (output == NULL)
    {
      fprintf (stderr, "Usage: atelier history export ID -o PATH [--role main|thumbnail|preview]\n");
      return 2;
    }
  if ((store = open_store (FALSE, &error)) == NULL || (item = atelier_store_get (store, id, &error)) == NULL)
    goto fail;
  if ((asset = atelier_item_get_asset (item, role != NULL ? role : "main")) == NULL)
    {
      g_set_error (&error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND, "item %" G_GINT64_FORMAT
                   " has no %s asset", id, role != NULL ? role : "main");
      goto fail;
    }
  if (!g_file_get_contents (asset->path, &contents, &len, &error))
    goto fail;
  bytes = g_bytes_new_take (g_steal_pointer (&contents), len);
  sha = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, bytes);
  if (strcmp (sha, asset->sha256) != 0)
    {
      g_set_error (&error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_CORRUPT,
                   "%s: the file is damaged (its content does not match its hash)", asset->path);
      goto fail;
    }
  if (strcmp (asset->media_type, "image/png") == 0)
    {
      g_autofree char *text = a1111_parameters (item);
      GBytes *png = png_with_parameters (bytes, asset->path, text, &error);

      if (png == NULL)
        goto fail;
      g_bytes_unref (bytes);
      bytes = png;
    }
  if (!g_file_set_contents (output, g_bytes_get_data (bytes, NULL), (gssize) g_bytes_get_size (bytes), &error))
    goto fail;
  fprintf (stderr, "wrote %s (%s, %" G_GSIZE_FORMAT " bytes)\n", output, asset->media_type, g_bytes_get_size (bytes));
  return 0;

fail:
  fail (error);
  return 1;
}

static int
cmd_tag (int argc, char **argv)
{
  g_autoptr (GOptionContext) ctx = g_option_context_new ("ID TAG - tag an item");
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = NULL;
  gint64 id;

  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    goto fail;
  if (argc != 3)
    {
      fprintf (stderr, "Usage: atelier history tag ID TAG\n");
      return 2;
    }
  if (!parse_id (argv[1], &id, &error) || (store = open_store (FALSE, &error)) == NULL
      || !atelier_store_add_tag (store, id, argv[2], &error))
    goto fail;
  return 0;

fail:
  fail (error);
  return 1;
}

static int
cmd_fav (int argc, char **argv)
{
  gboolean off = FALSE;
  GOptionEntry entries[] = {
    { "off", 0, 0, G_OPTION_ARG_NONE, &off, "No longer a favourite", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("ID - mark an item as a favourite");
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = NULL;
  gint64 id;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!parse_one_id (ctx, &argc, &argv, &id, &error) || (store = open_store (FALSE, &error)) == NULL
      || !atelier_store_set_favourite (store, id, !off, &error))
    {
      fail (error);
      return 1;
    }
  return 0;
}

static int
cmd_rm (int argc, char **argv)
{
  gboolean yes = FALSE;
  GOptionEntry entries[] = {
    { "yes", 'y', 0, G_OPTION_ARG_NONE, &yes, "Do not ask", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("ID - delete an item (its variants stay)");
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = NULL;
  g_autoptr (AtelierItem) item = NULL;
  gint64 id;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!parse_one_id (ctx, &argc, &argv, &id, &error) || (store = open_store (FALSE, &error)) == NULL
      || (item = atelier_store_get (store, id, &error)) == NULL)
    goto fail;
  if (!yes)
    {
      g_autofree char *line = one_line (item, 60);
      char answer[16] = "";

      fprintf (stderr, "Delete item %" G_GINT64_FORMAT " (%s: %s)? Its variants stay. [y/N] ", id,
               atelier_item_kind_name (item->kind), line);
      fflush (stderr);
      if (fgets (answer, sizeof answer, stdin) == NULL || (answer[0] != 'y' && answer[0] != 'Y'))
        {
          fprintf (stderr, "atelier history: item %" G_GINT64_FORMAT " kept\n", id);
          return 1;
        }
    }
  if (!atelier_store_delete (store, id, &error))
    goto fail;
  return 0;

fail:
  fail (error);
  return 1;
}

static int
cmd_check (int argc, char **argv)
{
  gboolean verify = FALSE, move_aside = FALSE;
  GOptionEntry entries[] = {
    { "verify", 0, 0, G_OPTION_ARG_NONE, &verify, "Also re-hash every asset file (slow)", NULL },
    { "move-aside", 0, 0, G_OPTION_ARG_NONE, &move_aside,
      "If the database is damaged, rename it (never overwriting) and start a new one", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- integrity check and reconciliation report");
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = NULL;
  g_autoptr (GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  g_auto (AtelierStoreReport) report = { 0 };
  gboolean ok;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    goto fail;
  if ((store = atelier_store_open (NULL, &error)) == NULL)
    {
      g_autofree char *dir = atelier_store_default_dir ();
      g_autofree char *path = g_build_filename (dir, "history.sqlite3", NULL);
      g_autofree char *moved = NULL;

      if (!move_aside || !g_error_matches (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_CORRUPT))
        goto fail;
      fail (error);
      g_clear_error (&error);
      if (!atelier_store_move_aside (path, &moved, &error) || (store = atelier_store_open (NULL, &error)) == NULL)
        goto fail;
      printf ("moved the damaged database to %s; started a new history\n", moved);
    }
  ok = atelier_store_check_integrity (store, problems, &error);
  if (error != NULL || !atelier_store_reconcile (store, verify, &report, &error))
    goto fail;
  for (guint i = 0; i < problems->len; i++)
    printf ("%s\n", (char *) g_ptr_array_index (problems, i));
  printf ("database: %s, %s\n", atelier_store_get_db_path (store), ok ? "integrity ok" : "DAMAGED");
  printf ("assets: %u orphan files removed, %u temporary files removed, %u items found again\n",
          report.n_orphans_removed, report.n_temps_removed, report.n_found_again);
  for (guint i = 0; i < report.problems->len; i++)
    printf ("%s\n", (char *) g_ptr_array_index (report.problems, i));
  printf ("%u items with missing asset files\n", report.missing_items->len);
  return ok && report.problems->len == 0 ? 0 : 1;

fail:
  fail (error);
  return 1;
}

int
atelier_cmd_history (int argc, char **argv)
{
  static const struct
  {
    const char *name;
    int (*run) (int argc, char **argv);
  } subs[] = {
    { "show", cmd_show }, { "tree", cmd_tree }, { "export", cmd_export }, { "tag", cmd_tag },
    { "fav", cmd_fav },   { "rm", cmd_rm },     { "check", cmd_check },
  };

  if (argc >= 2 && strcmp (argv[1], "list") == 0)
    return cmd_find (argc - 1, argv + 1, FALSE);
  if (argc >= 2 && strcmp (argv[1], "search") == 0)
    return cmd_find (argc - 1, argv + 1, TRUE);
  for (guint i = 0; argc >= 2 && i < G_N_ELEMENTS (subs); i++)
    if (strcmp (argv[1], subs[i].name) == 0)
      return subs[i].run (argc - 1, argv + 1);
  fprintf (stderr, "Usage: atelier history list|search QUERY|show ID|tree ID|export ID -o PATH|tag ID TAG|fav ID|"
                   "rm ID|check  (--help after each for its options)\n");
  return 2;
}
