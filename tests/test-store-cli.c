/* test-store-cli.c: `atelier history ...` end to end: the real binary ($ATELIER_BIN) run as a
 * process with ATELIER_DATA_DIR on a store this test fills through the API. list, search, show,
 * tree with --json; export of a text and of a PNG (its `parameters` chunk parsed back and its
 * CRC checked); tag, fav, rm (asks, --yes); check and its report; a damaged, a newer and a
 * malformed-PNG case; `atelier write --parent` with an item that does not exist, and a real
 * `atelier write` run recorded (when a device and tools/ref can make the tiny model). */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "at-test-util.h"
#include "atelier-store-private.h"

/* A 1x1 RGBA PNG. */
static const guint8 tiny_png[] = {
  0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00,
  0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00,
  0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01,
  0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
};

typedef struct
{
  int status;
  char *out, *err;
} Run;

static void
run_clear (Run *r)
{
  g_clear_pointer (&r->out, g_free);
  g_clear_pointer (&r->err, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Run, run_clear)

static char *data_dir;

/* Runs `atelier ARGS...` with ATELIER_DATA_DIR = `dir` and `input` on its stdin. */
static void
run_in (Run *r, const char *dir, const char *input, ...)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
    G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr (GSubprocess) proc = NULL;
  const char *arg;
  va_list ap;

  g_ptr_array_add (argv, (gpointer) g_getenv ("ATELIER_BIN"));
  va_start (ap, input);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_subprocess_launcher_setenv (launcher, "ATELIER_DATA_DIR", dir, TRUE);
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (proc, input != NULL ? input : "", NULL, &r->out, &r->err, &error));
  g_assert_no_error (error);
  /* Whatever the input, a failure is an exit status, never a crash. */
  g_assert_true (g_subprocess_get_if_exited (proc));
  r->status = g_subprocess_get_exit_status (proc);
}

#define RUN(r, ...) run_in (r, data_dir, NULL, __VA_ARGS__, NULL)

static JsonNode *
parse (const char *text)
{
  g_autoptr (GError) error = NULL;
  JsonNode *node = json_from_string (text, &error);

  g_assert_no_error (error);
  return node;
}

static gint64 ids[5];

static void
fill (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = atelier_store_open (data_dir, &error);
  g_autoptr (GBytes) png = g_bytes_new_static (tiny_png, sizeof tiny_png);
  g_autoptr (GBytes) text = g_bytes_new_static ("The storm came in from the north.\n", 34);
  g_autoptr (GBytes) bad_png = g_bytes_new_static ("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
  AtelierAssetNew png_asset = { "main", "image/png", png };
  AtelierAssetNew text_asset = { "main", "text/plain", text };
  AtelierAssetNew bad_asset = { "main", "image/png", bad_png };
  AtelierItemNew item = { 0 };
  gint64 model;

  g_assert_no_error (error);
  model = atelier_store_ensure_model (store, "/m/sd15.safetensors", "sd", "sd1", 100, "h", &error);
  item.kind = ATELIER_ITEM_IMAGE;
  item.prompt = "a lighthouse at dusk";
  item.negative = "blurry";
  item.params_json = "{\"steps\": 20, \"sampler\": \"euler_a\", \"cfg_scale\": 7, \"width\": 512, \"height\": 512}";
  item.has_seed = TRUE;
  item.seed = 42;
  item.model_id = model;
  item.assets = &png_asset;
  item.n_assets = 1;
  ids[0] = atelier_store_save (store, &item, &error);
  item.prompt = "a lighthouse at dawn, «très» calme";
  item.parent_id = ids[0];
  ids[1] = atelier_store_save (store, &item, &error);
  memset (&item, 0, sizeof item);
  item.kind = ATELIER_ITEM_TEXT;
  item.prompt = "the keeper's diary";
  item.text = "The storm came in from the north.\n";
  item.assets = &text_asset;
  item.n_assets = 1;
  item.parent_id = ids[1];
  ids[2] = atelier_store_save (store, &item, &error);
  memset (&item, 0, sizeof item);
  item.kind = ATELIER_ITEM_IMAGE;
  item.prompt = "a broken file";
  item.assets = &bad_asset;
  item.n_assets = 1;
  ids[3] = atelier_store_save (store, &item, &error);
  memset (&item, 0, sizeof item);
  item.kind = ATELIER_ITEM_MELODY;
  item.prompt = "a reel in D";
  ids[4] = atelier_store_save (store, &item, &error);
  g_assert_no_error (error);
}

static void
test_list_search (void)
{
  g_auto (Run) r = { 0 };
  g_autoptr (JsonNode) root = NULL;
  static const char *const hostile[] = { "\"", "*", "AND OR", "NEAR(", "a\"b", "🙂", "') OR 1=1 --", "東京*" };

  RUN (&r, "history", "list", "--json");
  g_assert_cmpint (r.status, ==, 0);
  root = parse (r.out);
  g_assert_cmpuint (json_array_get_length (json_node_get_array (root)), ==, 5);
  g_assert_cmpint (json_object_get_int_member (json_array_get_object_element (json_node_get_array (root), 0), "id"), ==,
                   ids[4]);
  g_clear_pointer (&root, json_node_unref);
  run_clear (&r);

  RUN (&r, "history", "list", "--kind", "text", "--json");
  g_assert_cmpint (r.status, ==, 0);
  root = parse (r.out);
  g_assert_cmpuint (json_array_get_length (json_node_get_array (root)), ==, 1);
  g_clear_pointer (&root, json_node_unref);
  run_clear (&r);

  RUN (&r, "history", "list", "--limit", "2");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "a reel in D"));
  g_assert_nonnull (strstr (r.out, "a broken file"));
  g_assert_null (strstr (r.out, "lighthouse"));
  run_clear (&r);

  RUN (&r, "history", "list", "--kind", "sculpture");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "sculpture"));
  run_clear (&r);

  RUN (&r, "history", "search", "light*", "--json");
  g_assert_cmpint (r.status, ==, 0);
  root = parse (r.out);
  g_assert_cmpuint (json_array_get_length (json_node_get_array (root)), ==, 2);
  g_clear_pointer (&root, json_node_unref);
  run_clear (&r);

  RUN (&r, "history", "search", "\"lighthouse at dusk\"", "--json");
  root = parse (r.out);
  g_assert_cmpuint (json_array_get_length (json_node_get_array (root)), ==, 1);
  g_clear_pointer (&root, json_node_unref);
  run_clear (&r);

  RUN (&r, "history", "search", "storm");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "keeper"));
  run_clear (&r);

  for (guint i = 0; i < G_N_ELEMENTS (hostile); i++)
    {
      g_auto (Run) h = { 0 };

      RUN (&h, "history", "search", hostile[i]);
      g_assert_cmpint (h.status, <=, 1);
      if (h.status == 1)
        g_assert_true (g_str_has_prefix (h.err, "atelier history: "));
    }
}

static void
test_show_tree (void)
{
  g_auto (Run) r = { 0 };
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, ids[1]);
  JsonObject *o;
  JsonArray *a;

  RUN (&r, "history", "show", id, "--json");
  g_assert_cmpint (r.status, ==, 0);
  root = parse (r.out);
  o = json_node_get_object (root);
  g_assert_cmpstr (json_object_get_string_member (o, "prompt"), ==, "a lighthouse at dawn, «très» calme");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (o, "params"), "steps"), ==, 20);
  g_assert_cmpint (json_object_get_int_member (o, "seed"), ==, 42);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (o, "model"), "path"), ==,
                   "/m/sd15.safetensors");
  a = json_object_get_array_member (o, "lineage");
  g_assert_cmpuint (json_array_get_length (a), ==, 2);
  g_assert_cmpint (json_array_get_int_element (a, 1), ==, ids[0]);
  a = json_object_get_array_member (o, "children");
  g_assert_cmpuint (json_array_get_length (a), ==, 1);
  g_assert_cmpint (json_array_get_int_element (a, 0), ==, ids[2]);
  g_clear_pointer (&root, json_node_unref);
  run_clear (&r);

  RUN (&r, "history", "show", id);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "lineage:"));
  g_assert_nonnull (strstr (r.out, "negative prompt: blurry"));
  run_clear (&r);

  RUN (&r, "history", "tree", id, "--json");
  g_assert_cmpint (r.status, ==, 0);
  root = parse (r.out);
  a = json_node_get_array (root);
  g_assert_cmpuint (json_array_get_length (a), ==, 3);
  g_assert_cmpint (json_object_get_int_member (json_array_get_object_element (a, 0), "id"), ==, ids[0]);
  g_assert_cmpint (json_object_get_int_member (json_array_get_object_element (a, 2), "depth"), ==, 2);
  g_clear_pointer (&root, json_node_unref);
  run_clear (&r);

  RUN (&r, "history", "tree", id);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "    - "));
  run_clear (&r);

  RUN (&r, "history", "show", "99999");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_cmpstr (r.err, ==, "atelier history: no history item 99999\n");
  run_clear (&r);

  RUN (&r, "history", "show", "zero");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "not an item id"));
}

static guint32
crc32 (const guint8 *p, gsize n)
{
  guint32 c = 0xffffffffu;

  for (gsize i = 0; i < n; i++)
    {
      c ^= p[i];
      for (int k = 0; k < 8; k++)
        c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
  return c ^ 0xffffffffu;
}

static guint32
be32 (const guint8 *p)
{
  return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
}

/* The PNG's chunks, checked; returns the text of the "parameters" chunk (tEXt or iTXt). */
static char *
png_parameters (const guint8 *data, gsize len, char *type_out)
{
  gsize off = 8;
  char *found = NULL;
  gboolean iend = FALSE;

  g_assert_cmpmem (data, 8, tiny_png, 8);
  while (off + 12 <= len)
    {
      guint32 n = be32 (data + off);
      const guint8 *body = data + off + 8;

      g_assert_cmpuint (off + 12 + n, <=, len);
      g_assert_cmphex (crc32 (data + off + 4, n + 4), ==, be32 (body + n));
      if (memcmp (data + off + 4, "IEND", 4) == 0)
        {
          iend = TRUE;
          g_assert_cmpuint (off + 12, ==, len);
        }
      else if (n > 11 && memcmp (body, "parameters", 11) == 0)
        {
          g_assert_null (found);
          memcpy (type_out, data + off + 4, 4);
          /* tEXt: keyword NUL text; iTXt: keyword NUL flag method lang NUL translated NUL text. */
          found = memcmp (type_out, "tEXt", 4) == 0 ? g_strndup ((const char *) body + 11, n - 11)
                                                    : g_strndup ((const char *) body + 15, n - 15);
        }
      off += 12 + n;
    }
  g_assert_true (iend);
  return found;
}

static void
test_export (void)
{
  g_auto (Run) r = { 0 };
  g_autofree char *png_path = g_build_filename (at_test_tmpdir (), "out.png", NULL);
  g_autofree char *txt_path = g_build_filename (at_test_tmpdir (), "out.txt", NULL);
  g_autofree char *id0 = g_strdup_printf ("%" G_GINT64_FORMAT, ids[0]);
  g_autofree char *id1 = g_strdup_printf ("%" G_GINT64_FORMAT, ids[1]);
  g_autofree char *id2 = g_strdup_printf ("%" G_GINT64_FORMAT, ids[2]);
  g_autofree char *id3 = g_strdup_printf ("%" G_GINT64_FORMAT, ids[3]);
  g_autofree char *id4 = g_strdup_printf ("%" G_GINT64_FORMAT, ids[4]);
  g_autofree char *contents = NULL, *text = NULL;
  gsize len;
  char type[5] = { 0 };

  RUN (&r, "history", "export", id2, "-o", txt_path);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (g_file_get_contents (txt_path, &contents, &len, NULL));
  g_assert_cmpstr (contents, ==, "The storm came in from the north.\n");
  g_clear_pointer (&contents, g_free);
  run_clear (&r);

  RUN (&r, "history", "export", id0, "-o", png_path);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (g_file_get_contents (png_path, &contents, &len, NULL));
  text = png_parameters ((const guint8 *) contents, len, type);
  g_assert_cmpstr (type, ==, "tEXt");
  g_assert_cmpstr (text, ==,
                   "a lighthouse at dusk\nNegative prompt: blurry\nSteps: 20, Sampler: euler_a, CFG scale: 7, "
                   "Seed: 42, Size: 512x512, Model: sd15.safetensors");
  g_clear_pointer (&contents, g_free);
  g_clear_pointer (&text, g_free);
  run_clear (&r);

  /* Latin-1 text stays tEXt («très» is Latin-1); beyond it, iTXt. */
  RUN (&r, "history", "export", id1, "-o", png_path);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (g_file_get_contents (png_path, &contents, &len, NULL));
  text = png_parameters ((const guint8 *) contents, len, type);
  g_assert_cmpstr (type, ==, "tEXt");
  g_assert_true (g_str_has_prefix (text, "a lighthouse at dawn, \xabtr\xe8s\xbb calme\n"));
  g_clear_pointer (&contents, g_free);
  g_clear_pointer (&text, g_free);
  run_clear (&r);

  RUN (&r, "history", "export", id3, "-o", png_path);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "PNG"));
  run_clear (&r);

  RUN (&r, "history", "export", id4, "-o", png_path);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "has no main asset"));
  run_clear (&r);

  RUN (&r, "history", "export", id4);
  g_assert_cmpint (r.status, ==, 2);
}

static void
test_itxt (void)
{
  g_autofree char *dir = g_build_filename (at_test_tmpdir (), "itxt", NULL);
  g_autofree char *png_path = g_build_filename (at_test_tmpdir (), "itxt.png", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) png = g_bytes_new_static (tiny_png, sizeof tiny_png);
  AtelierAssetNew asset = { "main", "image/png", png };
  AtelierItemNew item = { 0 };
  g_auto (Run) r = { 0 };
  g_autofree char *contents = NULL, *text = NULL, *id = NULL;
  char type[5] = { 0 };
  gsize len;

  {
    g_autoptr (AtelierStore) store = atelier_store_open (dir, &error);

    item.kind = ATELIER_ITEM_IMAGE;
    item.prompt = "東京の灯台";
    item.assets = &asset;
    item.n_assets = 1;
    id = g_strdup_printf ("%" G_GINT64_FORMAT, atelier_store_save (store, &item, &error));
    g_assert_no_error (error);
  }
  run_in (&r, dir, NULL, "history", "export", id, "-o", png_path, NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (g_file_get_contents (png_path, &contents, &len, NULL));
  text = png_parameters ((const guint8 *) contents, len, type);
  g_assert_cmpstr (type, ==, "iTXt");
  g_assert_cmpstr (text, ==, "東京の灯台");
}

static void
test_tag_fav_rm (void)
{
  g_auto (Run) r = { 0 };
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *id4 = g_strdup_printf ("%" G_GINT64_FORMAT, ids[4]);
  g_autofree char *id1 = g_strdup_printf ("%" G_GINT64_FORMAT, ids[1]);

  RUN (&r, "history", "tag", id4, "jig");
  g_assert_cmpint (r.status, ==, 0);
  run_clear (&r);
  RUN (&r, "history", "search", "jig", "--json");
  root = parse (r.out);
  g_assert_cmpuint (json_array_get_length (json_node_get_array (root)), ==, 1);
  g_clear_pointer (&root, json_node_unref);
  run_clear (&r);
  RUN (&r, "history", "tag", "99999", "jig");
  g_assert_cmpint (r.status, ==, 1);
  run_clear (&r);
  RUN (&r, "history", "tag", id4, "");
  g_assert_cmpint (r.status, ==, 1);
  run_clear (&r);

  RUN (&r, "history", "fav", id4);
  g_assert_cmpint (r.status, ==, 0);
  run_clear (&r);
  RUN (&r, "history", "list", "--favourites", "--json");
  root = parse (r.out);
  g_assert_cmpuint (json_array_get_length (json_node_get_array (root)), ==, 1);
  g_clear_pointer (&root, json_node_unref);
  run_clear (&r);
  RUN (&r, "history", "fav", "--off", id4);
  g_assert_cmpint (r.status, ==, 0);
  run_clear (&r);

  /* rm asks; "n" (or nothing) keeps the item. */
  run_in (&r, data_dir, "n\n", "history", "rm", id1, NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "[y/N]"));
  run_clear (&r);
  run_in (&r, data_dir, NULL, "history", "rm", id1, NULL);
  g_assert_cmpint (r.status, ==, 1);
  run_clear (&r);
  RUN (&r, "history", "show", id1);
  g_assert_cmpint (r.status, ==, 0);
  run_clear (&r);
  run_in (&r, data_dir, "y\n", "history", "rm", id1, NULL);
  g_assert_cmpint (r.status, ==, 0);
  run_clear (&r);
  RUN (&r, "history", "show", id1);
  g_assert_cmpint (r.status, ==, 1);
  run_clear (&r);
  /* Its variant now hangs from its parent. */
  {
    g_autofree char *id2 = g_strdup_printf ("%" G_GINT64_FORMAT, ids[2]);

    RUN (&r, "history", "show", id2, "--json");
    root = parse (r.out);
    g_assert_cmpint (json_object_get_int_member (json_node_get_object (root), "parent"), ==, ids[0]);
    run_clear (&r);
  }
  RUN (&r, "history", "rm", "--yes", "99999");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "99999"));
}

static void
test_check (void)
{
  g_auto (Run) r = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierItem) item = NULL;
  g_autofree char *path = NULL;

  RUN (&r, "history", "check");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "integrity ok"));
  run_clear (&r);
  {
    g_autoptr (AtelierStore) store = atelier_store_open (data_dir, &error);

    item = atelier_store_get (store, ids[2], &error);
    g_assert_no_error (error);
  }
  path = g_strdup (atelier_item_get_asset (item, "main")->path);
  g_assert_cmpint (g_unlink (path), ==, 0);
  RUN (&r, "history", "check");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.out, path));
  g_assert_nonnull (strstr (r.out, "1 items with missing asset files"));
  run_clear (&r);
  RUN (&r, "history", "list");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "[missing]"));
  g_assert_nonnull (strstr (r.err, "missing asset files"));
}

static void
test_damaged (void)
{
  g_autofree char *dir = g_build_filename (at_test_tmpdir (), "damaged", NULL);
  g_autofree char *db = g_build_filename (dir, ATELIER_STORE_DB_NAME, NULL);
  g_autoptr (GError) error = NULL;
  g_auto (Run) r = { 0 };
  g_autofree char *moved = NULL;
  const char *junk = "this is not a database, and must not be overwritten";

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (db, junk, -1, &error));
  run_in (&r, dir, NULL, "history", "list", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, db));
  g_assert_nonnull (strstr (r.err, "--move-aside"));
  run_clear (&r);
  run_in (&r, dir, NULL, "history", "check", "--move-aside", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "moved the damaged database to "));
  moved = g_strndup (strstr (r.out, "to ") + 3, strcspn (strstr (r.out, "to ") + 3, ";"));
  {
    g_autofree char *contents = NULL;

    g_assert_true (g_file_get_contents (moved, &contents, NULL, &error));
    g_assert_cmpstr (contents, ==, junk);
  }
  run_clear (&r);
  run_in (&r, dir, NULL, "history", "list", NULL);
  g_assert_cmpint (r.status, ==, 0);
}

static void
test_newer (void)
{
  g_autofree char *dir = g_build_filename (at_test_tmpdir (), "newer", NULL);
  g_autofree char *db = g_build_filename (dir, ATELIER_STORE_DB_NAME, NULL);
  g_auto (Run) r = { 0 };
  sqlite3 *raw = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_cmpint (sqlite3_open (db, &raw), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (raw, "PRAGMA user_version = 1000", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (raw);
  run_in (&r, dir, NULL, "history", "list", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "newer Atelier"));
  g_assert_nonnull (strstr (r.err, db));
}

static void
test_write_parent (void)
{
  g_auto (Run) r = { 0 };

  RUN (&r, "write", "--model", "/nonexistent/model.gguf", "--parent", "99999");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "--parent 99999: no history item 99999"));
  run_clear (&r);
  /* Without the history, the parent is not looked at. */
  RUN (&r, "write", "--model", "/nonexistent/model.gguf", "--parent", "99999", "--no-history");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_null (strstr (r.err, "--parent"));
  g_assert_nonnull (strstr (r.err, "/nonexistent/model.gguf"));
}

/* A real run of `atelier write` on the tiny random Llama from tools/ref/tiny_llm.py: the text,
 * its input, its settings and the model are recorded; --parent makes a variant; --no-history
 * records nothing. Needs a Vulkan device and python3-torch (skipped without them). */
static void
test_write_records (void)
{
  const char *tmp = at_test_tmpdir ();
  const char *args[] = { tmp, NULL };
  g_autofree char *gguf = g_build_filename (tmp, "llama_chat.gguf", NULL);
  g_autofree char *input = g_build_filename (tmp, "hello.txt", NULL);
  g_autofree char *dir = g_build_filename (tmp, "write", NULL);
  g_autofree char *id = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = NULL;
  g_auto (Run) r = { 0 };
  JsonObject *o, *params;
  const char *saved;

  if (at_test_device () == NULL)
    return;
  if (!g_file_test (gguf, G_FILE_TEST_EXISTS) && !at_test_run_ref_tool ("tiny_llm.py", args))
    return;
  g_assert_true (g_file_set_contents (input, "Hello", -1, &error));
  run_in (&r, dir, NULL, "write", "--model", gguf, "--input", input, "--temperature", "0", "--max-tokens", "8",
          "--seed", "5", NULL);
  g_assert_cmpint (r.status, ==, 0);
  saved = strstr (r.err, "saved as history item ");
  g_assert_nonnull (saved);
  id = g_strndup (saved + 22, strspn (saved + 22, "0123456789"));
  run_clear (&r);
  run_in (&r, dir, NULL, "history", "show", id, "--json", NULL);
  g_assert_cmpint (r.status, ==, 0);
  root = parse (r.out);
  o = json_node_get_object (root);
  params = json_object_get_object_member (o, "params");
  g_assert_cmpstr (json_object_get_string_member (o, "kind"), ==, "text");
  g_assert_cmpstr (json_object_get_string_member (o, "prompt"), ==, "continue");
  g_assert_cmpint (json_object_get_int_member (o, "seed"), ==, 5);
  g_assert_cmpint (json_object_get_int_member (params, "max_tokens"), ==, 8);
  g_assert_cmpfloat (json_object_get_double_member (params, "temperature"), ==, 0);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (o, "model"), "path"), ==, gguf);
  g_assert_true (g_str_has_prefix (
    json_object_get_string_member (json_object_get_object_member (o, "model"), "hash"), "sha256-edges:"));
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (o, "assets")), ==, 2);
  run_clear (&r);

  run_in (&r, dir, NULL, "write", "--model", gguf, "--input", input, "--temperature", "0", "--max-tokens", "4",
          "--parent", id, NULL);
  g_assert_cmpint (r.status, ==, 0);
  run_clear (&r);
  run_in (&r, dir, NULL, "write", "--model", gguf, "--input", input, "--max-tokens", "4", "--no-history", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_null (strstr (r.err, "saved as history item"));
  run_clear (&r);
  g_clear_pointer (&root, json_node_unref);
  run_in (&r, dir, NULL, "history", "tree", id, "--json", NULL);
  root = parse (r.out);
  g_assert_cmpuint (json_array_get_length (json_node_get_array (root)), ==, 2);
  g_assert_cmpint (json_object_get_int_member (json_array_get_object_element (json_node_get_array (root), 1),
                                               "parent"), ==, g_ascii_strtoll (id, NULL, 10));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (g_getenv ("ATELIER_BIN") == NULL)
    {
      g_test_skip ("ATELIER_BIN is not set");
      return g_test_run ();
    }
  data_dir = g_build_filename (at_test_tmpdir (), "history", NULL);
  fill ();
  g_test_add_func ("/app/history/list-search", test_list_search);
  g_test_add_func ("/app/history/show-tree", test_show_tree);
  g_test_add_func ("/app/history/export", test_export);
  g_test_add_func ("/app/history/export-itxt", test_itxt);
  g_test_add_func ("/app/history/tag-fav-rm", test_tag_fav_rm);
  g_test_add_func ("/app/history/check", test_check);
  g_test_add_func ("/app/history/damaged", test_damaged);
  g_test_add_func ("/app/history/newer", test_newer);
  g_test_add_func ("/app/history/write-parent", test_write_parent);
  g_test_add_func ("/app/history/write-records", test_write_records);
  return g_test_run ();
}
