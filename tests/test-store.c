/* test-store.c: the history store (app/atelier-store*.c): opening, migrations from every
 * earlier schema, newer and corrupt files refused untouched, moving aside, save and get, search
 * (prefixes, phrases, hostile query strings), filters, variant trees and re-parenting, shared
 * assets, reconciliation, concurrent reads on a main loop while a thread writes, and a full disk
 * (RLIMIT_FSIZE) leaving the store as it was. */
#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "at-test-util.h"
#include "atelier-store-private.h"

/* A fresh store folder under the test's temporary folder. */
static char *
new_dir (void)
{
  static guint n;

  return g_strdup_printf ("%s/store-%u", at_test_tmpdir (), n++);
}

static GBytes *
read_bytes (const char *path)
{
  g_autoptr (GError) error = NULL;
  char *contents = NULL;
  gsize len = 0;

  g_assert_true (g_file_get_contents (path, &contents, &len, &error));
  g_assert_no_error (error);
  return g_bytes_new_take (contents, len);
}

static gint64
save_simple (AtelierStore *store, AtelierItemKind kind, const char *prompt, const char *asset_text, gint64 parent)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) data = asset_text != NULL ? g_bytes_new (asset_text, strlen (asset_text)) : NULL;
  AtelierAssetNew asset = { "main", "text/plain", data };
  AtelierItemNew item = { 0 };
  gint64 id;

  item.kind = kind;
  item.prompt = prompt;
  item.parent_id = parent;
  item.assets = &asset;
  item.n_assets = data != NULL ? 1 : 0;
  id = atelier_store_save (store, &item, &error);
  g_assert_no_error (error);
  g_assert_cmpint (id, >, 0);
  return id;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Names of the files under assets/ (temporary ones included), sorted, as one string. */
static char *
list_assets (const char *dir)
{
  g_autofree char *top_path = g_build_filename (dir, "assets", NULL);
  g_autoptr (GDir) top = g_dir_open (top_path, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *sub, *name;

  while (top != NULL && (sub = g_dir_read_name (top)) != NULL)
    {
      g_autofree char *p = g_build_filename (top_path, sub, NULL);
      g_autoptr (GDir) d = g_dir_open (p, 0, NULL);

      while (d != NULL && (name = g_dir_read_name (d)) != NULL)
        g_ptr_array_add (names, g_strdup_printf ("%s/%s", sub, name));
    }
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (" ", (char **) names->pdata);
}

static void
test_open_new (void)
{
  g_autofree char *dir = new_dir ();
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = atelier_store_open (dir, &error);
  g_autofree char *db = g_build_filename (dir, ATELIER_STORE_DB_NAME, NULL);
  sqlite3 *raw = NULL;
  sqlite3_stmt *st = NULL;

  g_assert_no_error (error);
  g_assert_cmpstr (atelier_store_get_db_path (store), ==, db);
  g_assert_cmpint (atelier_store_count (store, &error), ==, 0);
  g_assert_cmpint (sqlite3_open_v2 (db, &raw, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (raw, "PRAGMA journal_mode", -1, &st, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);
  g_assert_cmpstr ((const char *) sqlite3_column_text (st, 0), ==, "wal");
  sqlite3_finalize (st);
  g_assert_cmpint (sqlite3_prepare_v2 (raw, "PRAGMA user_version", -1, &st, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (st), ==, SQLITE_ROW);
  g_assert_cmpint (sqlite3_column_int (st, 0), ==, atelier_store_schema_version ());
  sqlite3_finalize (st);
  sqlite3_close (raw);
  /* Opening again is a no-op migration. */
  {
    g_autoptr (AtelierStore) again = atelier_store_open (dir, &error);

    g_assert_no_error (error);
  }
}

static void
exec_raw (sqlite3 *db, const char *sql)
{
  char *msg = NULL;

  if (sqlite3_exec (db, sql, NULL, NULL, &msg) != SQLITE_OK)
    g_error ("%s: %s", sql, msg);
}

/* For every earlier version k: a store as version k left it, with data written through that
 * version's schema, opened by this build; the data must survive and the later features work. */
static void
test_migrations (void)
{
  for (int k = 0; k < atelier_store_schema_version (); k++)
    {
      g_autofree char *dir = new_dir ();
      g_autofree char *db = g_build_filename (dir, ATELIER_STORE_DB_NAME, NULL);
      g_autoptr (GError) error = NULL;
      g_autoptr (AtelierItem) item = NULL;
      g_autoptr (GPtrArray) found = NULL;
      AtelierQuery q = ATELIER_QUERY_INIT;
      gint64 id = 0;

      g_test_message ("from schema %d", k);
      {
        g_autoptr (AtelierStore) old = _atelier_store_open_version (dir, k, &error);

        g_assert_no_error (error);
      }
      if (k >= 1)
        {
          /* Only what version 1 had: the writes an old Atelier could make. */
          sqlite3 *raw = NULL;

          g_assert_cmpint (sqlite3_open (db, &raw), ==, SQLITE_OK);
          exec_raw (raw, "INSERT INTO models (path, kind, family, size, hash) VALUES ('/m/sd.safetensors', 'sd', "
                         "'sd1', 42, 'h');"
                         "INSERT INTO items (kind, prompt, negative, params, seed, model_id, created, text, preview)"
                         " VALUES ('image', 'a lighthouse at dusk', 'blurry', '{\"steps\": 20}', 7, 1, 1000, NULL,"
                         " NULL);"
                         "INSERT INTO items (kind, prompt, params, parent_id, created, text, preview)"
                         " VALUES ('text', 'a poem', '{}', 1, 2000, 'waves on the harbour wall', 'waves');"
                         "INSERT INTO item_tags (item_id, tag) VALUES (1, 'seascape');");
          sqlite3_close (raw);
          id = 1;
        }
      {
        g_autoptr (AtelierStore) store = atelier_store_open (dir, &error);

        g_assert_no_error (error);
        if (id == 0)
          {
            id = save_simple (store, ATELIER_ITEM_IMAGE, "a lighthouse at dusk", NULL, 0);
            g_assert_true (atelier_store_add_tag (store, id, "seascape", &error));
            save_simple (store, ATELIER_ITEM_TEXT, "a poem", NULL, id);
          }
        item = atelier_store_get (store, id, &error);
        g_assert_no_error (error);
        g_assert_cmpstr (item->prompt, ==, "a lighthouse at dusk");
        g_assert_false (item->missing);
        g_assert_cmpstr (item->tags[0], ==, "seascape");
        /* Search over rows written before the FTS table existed. */
        q.text = "seascape";
        found = atelier_store_find (store, &q, &error);
        g_assert_no_error (error);
        g_assert_cmpuint (found->len, ==, 1);
        g_clear_pointer (&found, g_ptr_array_unref);
        q.text = "lighthouse";
        found = atelier_store_find (store, &q, &error);
        g_assert_no_error (error);
        g_assert_cmpuint (found->len, ==, 1);
        g_clear_pointer (&found, g_ptr_array_unref);
        found = atelier_store_children (store, id, &error);
        g_assert_no_error (error);
        g_assert_cmpuint (found->len, ==, 1);
        g_assert_cmpstr (((AtelierItem *) g_ptr_array_index (found, 0))->prompt, ==, "a poem");
        g_clear_pointer (&found, g_ptr_array_unref);
        /* Schema 4: the user's list of models starts empty and takes a path. */
        found = atelier_store_list_user_models (store, &error);
        g_assert_no_error (error);
        g_assert_cmpuint (found->len, ==, 0);
        g_assert_cmpint (atelier_store_add_user_model (store, "/m/sd.safetensors", &error), >, 0);
        g_assert_no_error (error);
      }
    }
}

static void
test_newer_refused (void)
{
  g_autofree char *dir = new_dir ();
  g_autofree char *db = g_build_filename (dir, ATELIER_STORE_DB_NAME, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) before = NULL, after = NULL;
  g_autoptr (AtelierStore) store = NULL;
  sqlite3 *raw = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_cmpint (sqlite3_open (db, &raw), ==, SQLITE_OK);
  exec_raw (raw, "CREATE TABLE future (x); INSERT INTO future VALUES (1); PRAGMA user_version = 99;");
  sqlite3_close (raw);
  before = read_bytes (db);
  store = atelier_store_open (dir, &error);
  g_assert_null (store);
  g_assert_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NEWER);
  g_assert_nonnull (strstr (error->message, db));
  g_assert_nonnull (strstr (error->message, "newer"));
  after = read_bytes (db);
  g_assert_true (g_bytes_equal (before, after));
  {
    g_autofree char *assets = g_build_filename (dir, "assets", NULL);

    g_assert_false (g_file_test (assets, G_FILE_TEST_EXISTS));
  }
}

static void
expect_corrupt (const char *dir, const char *db)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) before = read_bytes (db), after = NULL;
  g_autoptr (AtelierStore) store = atelier_store_open (dir, &error);

  g_assert_null (store);
  g_assert_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, db));
  g_test_message ("%s", error->message);
  after = read_bytes (db);
  g_assert_true (g_bytes_equal (before, after));
}

static void
test_corrupt_garbage (void)
{
  g_autofree char *dir = new_dir ();
  g_autofree char *db = g_build_filename (dir, ATELIER_STORE_DB_NAME, NULL);
  guint8 junk[8192];
  g_autoptr (GError) error = NULL;

  for (gsize i = 0; i < sizeof junk; i++)
    junk[i] = (guint8) g_test_rand_int ();
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (db, (const char *) junk, sizeof junk, &error));
  expect_corrupt (dir, db);
  /* Text that is not a database, and a header with nothing after it. */
  g_assert_true (g_file_set_contents (db, "hello, this is not a database\n", -1, &error));
  expect_corrupt (dir, db);
  g_assert_true (g_file_set_contents (db, "SQLite format 3", 16, &error));
  expect_corrupt (dir, db);
}

static void
fill_store (const char *dir, guint n)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = atelier_store_open (dir, &error);

  g_assert_no_error (error);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *prompt = g_strdup_printf ("item %u %s", i, "a long prompt that fills pages quickly, "
                                                                  "with words to index in the search table");
      save_simple (store, ATELIER_ITEM_IMAGE, prompt, NULL, 0);
    }
}

static void
test_corrupt_truncated (void)
{
  g_autofree char *dir = new_dir ();
  g_autofree char *db = g_build_filename (dir, ATELIER_STORE_DB_NAME, NULL);
  g_autoptr (GBytes) whole = NULL;
  g_autoptr (GError) error = NULL;
  gsize len;
  const char *data;

  fill_store (dir, 300);
  whole = read_bytes (db);
  data = g_bytes_get_data (whole, &len);
  g_assert_cmpuint (len, >, 16 * 4096);
  for (guint i = 0; i < 3; i++)
    {
      static const double fraction[] = { 0.5, 0.9, 0.01 };
      gsize cut = (gsize) (len * fraction[i]);

      g_test_message ("truncated to %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes", cut, len);
      g_assert_true (g_file_set_contents (db, data, (gssize) cut, &error));
      g_assert_no_error (error);
      expect_corrupt (dir, db);
    }
}

static void
test_move_aside (void)
{
  g_autofree char *dir = new_dir ();
  g_autofree char *db = g_build_filename (dir, ATELIER_STORE_DB_NAME, NULL);
  g_autofree char *first = NULL, *second = NULL, *wal = g_strconcat (db, "-wal", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) first_bytes = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (db, "garbage one, garbage one, garbage one", -1, &error));
  g_assert_true (g_file_set_contents (wal, "an old log", -1, &error));
  g_assert_true (atelier_store_move_aside (db, &first, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (db, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (wal, G_FILE_TEST_EXISTS));
  {
    g_autofree char *moved_wal = g_strconcat (first, "-wal", NULL);

    g_assert_true (g_file_test (moved_wal, G_FILE_TEST_EXISTS));
  }
  first_bytes = read_bytes (first);
  /* A second damaged file in the same second gets another name; the first copy stays. */
  g_assert_true (g_file_set_contents (db, "garbage two", -1, &error));
  g_assert_true (atelier_store_move_aside (db, &second, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (first, !=, second);
  {
    g_autoptr (GBytes) again = read_bytes (first);
    g_autoptr (GBytes) moved = read_bytes (second);

    g_assert_true (g_bytes_equal (first_bytes, again));
    g_assert_cmpmem (g_bytes_get_data (moved, NULL), g_bytes_get_size (moved), "garbage two", 11);
  }
  /* And a new store starts. */
  {
    g_autoptr (AtelierStore) store = atelier_store_open (dir, &error);

    g_assert_no_error (error);
  }
}

static void
test_round_trip (void)
{
  g_autofree char *dir = new_dir ();
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = atelier_store_open (dir, &error);
  g_autoptr (GBytes) png = g_bytes_new_static ("\x89PNG not really", 15);
  g_autoptr (GBytes) thumb = g_bytes_new_static ("thumb", 5);
  const char *tags[] = { "seascape", "dusk", NULL };
  AtelierAssetNew assets[] = { { "main", "image/png", png }, { "thumbnail", "image/png", thumb } };
  AtelierItemNew item = { 0 };
  g_autoptr (AtelierItem) got = NULL;
  g_autoptr (JsonNode) params = NULL;
  const AtelierAsset *a;
  gint64 model, id;

  g_assert_no_error (error);
  model = atelier_store_ensure_model (store, "/models/sd15.safetensors", "sd", "sd1", 4265380512, "sha256-edges:ab",
                                      &error);
  g_assert_no_error (error);
  g_assert_cmpint (model, ==,
                   atelier_store_ensure_model (store, "/models/sd15.safetensors", "sd", "sd1", 4265380512,
                                               "sha256-edges:ab", &error));
  g_assert_cmpint (model, !=,
                   atelier_store_ensure_model (store, "/models/sd15.safetensors", "sd", "sd1", 4265380512,
                                               "sha256-edges:cd", &error));
  item.kind = ATELIER_ITEM_IMAGE;
  item.prompt = "a lighthouse at dusk, oil on canvas — «café»";
  item.negative = "blurry";
  item.params_json = "{\"steps\": 30, \"cfg_scale\": 7.5, \"sampler\": \"euler_a\", \"width\": 512, \"height\": 512}";
  item.has_seed = TRUE;
  item.seed = 4294967295;
  item.model_id = model;
  item.tags = tags;
  item.assets = assets;
  item.n_assets = 2;
  id = atelier_store_save (store, &item, &error);
  g_assert_no_error (error);
  got = atelier_store_get (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (got->kind, ==, ATELIER_ITEM_IMAGE);
  g_assert_cmpstr (got->prompt, ==, item.prompt);
  g_assert_cmpstr (got->negative, ==, "blurry");
  g_assert_true (got->has_seed);
  g_assert_cmpint (got->seed, ==, 4294967295);
  g_assert_cmpint (got->model_id, ==, model);
  g_assert_cmpstr (got->model_path, ==, "/models/sd15.safetensors");
  g_assert_cmpint (got->parent_id, ==, 0);
  g_assert_false (got->favourite);
  g_assert_cmpint (ABS (got->created_us - g_get_real_time ()), <, 60 * G_USEC_PER_SEC);
  g_assert_cmpstr (got->tags[0], ==, "dusk");
  g_assert_cmpstr (got->tags[1], ==, "seascape");
  params = json_from_string (got->params_json, &error);
  g_assert_no_error (error);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (params), "steps"), ==, 30);
  g_assert_cmpfloat (json_object_get_double_member (json_node_get_object (params), "cfg_scale"), ==, 7.5);
  a = atelier_item_get_asset (got, "main");
  g_assert_nonnull (a);
  {
    g_autoptr (GBytes) on_disk = read_bytes (a->path);
    g_autofree char *sha = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, png);

    g_assert_true (g_bytes_equal (on_disk, png));
    g_assert_cmpstr (a->sha256, ==, sha);
    g_assert_cmpint (a->size, ==, 15);
    g_assert_cmpstr (a->media_type, ==, "image/png");
  }
  g_assert_nonnull (atelier_item_get_asset (got, "thumbnail"));
  g_assert_true (atelier_store_set_favourite (store, id, TRUE, &error));
  g_assert_true (atelier_store_set_favourite (store, id, TRUE, &error));
  g_clear_pointer (&got, atelier_item_free);
  got = atelier_store_get (store, id, &error);
  g_assert_true (got->favourite);

  /* A text's preview is its first 200 characters. */
  {
    g_autoptr (GString) text = g_string_new (NULL);
    g_autoptr (AtelierItem) t = NULL;
    AtelierItemNew ti = { 0 };
    gint64 tid;

    for (guint i = 0; i < 100; i++)
      g_string_append (text, "ünï ");
    ti.kind = ATELIER_ITEM_TEXT;
    ti.prompt = "shorter";
    ti.text = text->str;
    tid = atelier_store_save (store, &ti, &error);
    g_assert_no_error (error);
    t = atelier_store_get (store, tid, &error);
    g_assert_cmpint (g_utf8_strlen (t->preview, -1), ==, 200);
    g_assert_false (t->has_seed);
    g_assert_cmpint (t->model_id, ==, 0);
    g_assert_cmpuint (t->assets->len, ==, 0);
  }

  /* Refused input: nothing saved, no file left. */
  {
    g_autoptr (GBytes) lost = g_bytes_new_static ("never stored", 12);
    AtelierAssetNew lost_asset = { "main", "text/plain", lost };
    AtelierItemNew bad = { 0 };
    g_autofree char *files_before = list_assets (dir), *files_after = NULL;
    gint64 n = atelier_store_count (store, NULL);
    static const char *const bad_params[] = { "[1, 2]", "{", "\"text\"", "{\"a\": }" };

    bad.kind = ATELIER_ITEM_TEXT;
    bad.assets = &lost_asset;
    bad.n_assets = 1;
    for (guint i = 0; i < G_N_ELEMENTS (bad_params); i++)
      {
        g_autoptr (GError) e = NULL;

        bad.params_json = bad_params[i];
        g_assert_cmpint (atelier_store_save (store, &bad, &e), ==, 0);
        g_assert_error (e, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID);
      }
    bad.params_json = NULL;
    bad.parent_id = 999999;
    {
      g_autoptr (GError) e = NULL;

      g_assert_cmpint (atelier_store_save (store, &bad, &e), ==, 0);
      g_assert_error (e, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND);
      g_assert_nonnull (strstr (e->message, "999999"));
    }
    bad.parent_id = 0;
    bad.prompt = "\xff\xfe not UTF-8";
    {
      g_autoptr (GError) e = NULL;

      g_assert_cmpint (atelier_store_save (store, &bad, &e), ==, 0);
      g_assert_error (e, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID);
    }
    files_after = list_assets (dir);
    g_assert_cmpstr (files_before, ==, files_after);
    g_assert_cmpint (atelier_store_count (store, NULL), ==, n);
  }
  {
    g_autoptr (GError) e = NULL;

    g_assert_null (atelier_store_get (store, 424242, &e));
    g_assert_error (e, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND);
  }
}

static guint
count_found (AtelierStore *store, const char *text)
{
  g_autoptr (GError) error = NULL;
  AtelierQuery q = ATELIER_QUERY_INIT;
  g_autoptr (GPtrArray) items = NULL;

  q.text = text;
  items = atelier_store_find (store, &q, &error);
  g_assert_no_error (error);
  return items->len;
}

static void
test_search (void)
{
  g_autofree char *dir = new_dir ();
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = atelier_store_open (dir, &error);
  static const char *const hostile[] = {
    "\"", "*", "AND OR", "NEAR(", "NEAR(a b", "a\"b", "))", "(", "-", "^", "prompt:red", "col:foo", "a OR", "NOT",
    "\"\"", "* * *", "'", "';DROP TABLE items;--", "{prompt negative}: red", "red + blue", "🙂", "東京", "\\",
    "a AND", "lighthouse\" OR \"x", "%", "_", "\t\n", "",
  };
  AtelierItemNew item = { 0 };
  gint64 a, b, c;

  g_assert_no_error (error);
  item.kind = ATELIER_ITEM_IMAGE;
  item.prompt = "a red lighthouse at dusk";
  item.negative = "blurry, watermark";
  a = atelier_store_save (store, &item, &error);
  item.kind = ATELIER_ITEM_TEXT;
  item.prompt = "the lighthouse keeper's diary";
  item.negative = NULL;
  item.text = "The storm came in from the north; the café lamps went dark.";
  b = atelier_store_save (store, &item, &error);
  item.kind = ATELIER_ITEM_MELODY;
  item.prompt = "a reel in D";
  item.text = NULL;
  c = atelier_store_save (store, &item, &error);
  g_assert_no_error (error);
  g_assert_true (atelier_store_add_tag (store, c, "oil painting", &error));
  g_assert_true (atelier_store_add_tag (store, c, "seascape", &error));
  g_assert_no_error (error);

  g_assert_cmpuint (count_found (store, "lighthouse"), ==, 2);
  g_assert_cmpuint (count_found (store, "LIGHTHOUSE"), ==, 2);
  g_assert_cmpuint (count_found (store, "light*"), ==, 2);
  g_assert_cmpuint (count_found (store, "lig*"), ==, 2);
  g_assert_cmpuint (count_found (store, "light"), ==, 0);
  g_assert_cmpuint (count_found (store, "\"red lighthouse\""), ==, 1);
  g_assert_cmpuint (count_found (store, "\"lighthouse red\""), ==, 0);
  g_assert_cmpuint (count_found (store, "lighthouse dusk"), ==, 1);
  g_assert_cmpuint (count_found (store, "storm"), ==, 1);      /* text content */
  g_assert_cmpuint (count_found (store, "watermark"), ==, 1);  /* negative prompt */
  g_assert_cmpuint (count_found (store, "seascape"), ==, 1);   /* tag, added after the save */
  g_assert_cmpuint (count_found (store, "\"oil painting\""), ==, 1);
  g_assert_cmpuint (count_found (store, "cafe"), ==, 1);       /* diacritics folded */
  g_assert_cmpuint (count_found (store, "keeper's"), ==, 1);
  {
    AtelierQuery q = ATELIER_QUERY_INIT;
    g_autoptr (GPtrArray) items = NULL;

    q.text = "lighthouse";
    items = atelier_store_find (store, &q, &error);
    g_assert_no_error (error);
    /* Newest first. */
    g_assert_cmpint (((AtelierItem *) g_ptr_array_index (items, 0))->id, ==, b);
    g_assert_cmpint (((AtelierItem *) g_ptr_array_index (items, 1))->id, ==, a);
  }
  for (guint i = 0; i < G_N_ELEMENTS (hostile); i++)
    {
      g_autoptr (GError) e = NULL;
      AtelierQuery q = ATELIER_QUERY_INIT;
      g_autoptr (GPtrArray) items = NULL;

      q.text = hostile[i];
      items = atelier_store_find (store, &q, &e);
      g_test_message ("%s -> %s", hostile[i], e != NULL ? e->message : "ok");
      if (items == NULL)
        g_assert_error (e, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_QUERY);
    }
  /* An operator word is searched as a word. */
  g_assert_cmpuint (count_found (store, "lighthouse AND"), ==, 0);
  {
    g_autoptr (GError) e = NULL;
    AtelierQuery q = ATELIER_QUERY_INIT;

    q.text = "\xc3\x28";
    g_assert_null (atelier_store_find (store, &q, &e));
    g_assert_error (e, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_QUERY);
  }
  /* Removing the item removes it from the index. */
  g_assert_true (atelier_store_delete (store, c, &error));
  g_assert_cmpuint (count_found (store, "seascape"), ==, 0);
}

static guint
count_query (AtelierStore *store, const AtelierQuery *q)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) items = atelier_store_find (store, q, &error);

  g_assert_no_error (error);
  return items->len;
}

static void
test_filters (void)
{
  g_autofree char *dir = new_dir ();
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = atelier_store_open (dir, &error);
  g_autoptr (AtelierItem) third = NULL;
  AtelierQuery q = ATELIER_QUERY_INIT;
  AtelierItemNew item = { 0 };
  gint64 model, ids[6];

  model = atelier_store_ensure_model (store, "/m/a.gguf", "llm", "llama", 1, "x", &error);
  for (guint i = 0; i < 6; i++)
    {
      g_autofree char *prompt = g_strdup_printf ("harbour %u", i);

      item.kind = i % 2 == 0 ? ATELIER_ITEM_IMAGE : ATELIER_ITEM_TEXT;
      item.prompt = prompt;
      item.model_id = i < 2 ? model : 0;
      ids[i] = atelier_store_save (store, &item, &error);
      g_assert_no_error (error);
      g_usleep (2000);
    }
  atelier_store_set_favourite (store, ids[4], TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (count_query (store, &q), ==, 6);
  q.kind = ATELIER_ITEM_TEXT;
  g_assert_cmpuint (count_query (store, &q), ==, 3);
  q.text = "harbour";
  g_assert_cmpuint (count_query (store, &q), ==, 3);
  q.kind = ATELIER_ITEM_MELODY;
  g_assert_cmpuint (count_query (store, &q), ==, 0);
  q.kind = -1;
  q.favourite_only = TRUE;
  g_assert_cmpuint (count_query (store, &q), ==, 1);
  q.text = NULL;
  g_assert_cmpuint (count_query (store, &q), ==, 1);
  q.favourite_only = FALSE;
  q.model_id = model;
  g_assert_cmpuint (count_query (store, &q), ==, 2);
  q.model_id = 0;
  third = atelier_store_get (store, ids[3], &error);
  q.created_from_us = third->created_us;
  g_assert_cmpuint (count_query (store, &q), ==, 3);
  q.created_to_us = third->created_us + 1;
  g_assert_cmpuint (count_query (store, &q), ==, 1);
  q.text = "harbour";
  g_assert_cmpuint (count_query (store, &q), ==, 1);
  q.created_from_us = q.created_to_us = 0;
  q.text = NULL;
  q.limit = 2;
  q.offset = 1;
  {
    g_autoptr (GPtrArray) items = atelier_store_find (store, &q, &error);

    g_assert_cmpuint (items->len, ==, 2);
    g_assert_cmpint (((AtelierItem *) g_ptr_array_index (items, 0))->id, ==, ids[4]);
    g_assert_cmpint (((AtelierItem *) g_ptr_array_index (items, 1))->id, ==, ids[3]);
  }
}

static void
assert_parent (AtelierStore *store, gint64 id, gint64 parent)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierItem) item = atelier_store_get (store, id, &error);

  g_assert_no_error (error);
  g_assert_cmpint (item->parent_id, ==, parent);
}

static void
test_tree (void)
{
  g_autofree char *dir = new_dir ();
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = atelier_store_open (dir, &error);
  g_autoptr (GPtrArray) tree = NULL, lineage = NULL, children = NULL;
  gint64 a, b, c, d, e;

  a = save_simple (store, ATELIER_ITEM_IMAGE, "root", NULL, 0);
  b = save_simple (store, ATELIER_ITEM_IMAGE, "variant", NULL, a);
  c = save_simple (store, ATELIER_ITEM_IMAGE, "variant of variant", NULL, b);
  d = save_simple (store, ATELIER_ITEM_IMAGE, "other variant of variant", NULL, b);
  e = save_simple (store, ATELIER_ITEM_IMAGE, "second variant", NULL, a);
  lineage = atelier_store_lineage (store, c, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (lineage->len, ==, 3);
  g_assert_cmpint (((AtelierItem *) g_ptr_array_index (lineage, 0))->id, ==, c);
  g_assert_cmpint (((AtelierItem *) g_ptr_array_index (lineage, 2))->id, ==, a);
  tree = atelier_store_tree (store, d, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (tree->len, ==, 5);
  g_assert_cmpint (((AtelierItem *) g_ptr_array_index (tree, 0))->id, ==, a);
  g_assert_cmpuint (((AtelierItem *) g_ptr_array_index (tree, 0))->depth, ==, 0);
  /* Depth first: b's subtree comes before e. */
  g_assert_cmpint (((AtelierItem *) g_ptr_array_index (tree, 1))->id, ==, b);
  g_assert_cmpuint (((AtelierItem *) g_ptr_array_index (tree, 2))->depth, ==, 2);
  g_assert_cmpuint (((AtelierItem *) g_ptr_array_index (tree, 3))->depth, ==, 2);
  g_assert_cmpint (((AtelierItem *) g_ptr_array_index (tree, 4))->id, ==, e);

  /* Deleting b hands c and d to a. */
  g_assert_true (atelier_store_delete (store, b, &error));
  g_assert_no_error (error);
  assert_parent (store, c, a);
  assert_parent (store, d, a);
  children = atelier_store_children (store, a, &error);
  g_assert_cmpuint (children->len, ==, 3);
  g_clear_pointer (&tree, g_ptr_array_unref);
  tree = atelier_store_tree (store, c, &error);
  g_assert_cmpuint (tree->len, ==, 4);
  /* Deleting the root makes its variants roots; none is lost. */
  g_assert_true (atelier_store_delete (store, a, &error));
  assert_parent (store, c, 0);
  assert_parent (store, d, 0);
  assert_parent (store, e, 0);
  g_assert_cmpint (atelier_store_count (store, &error), ==, 3);
  {
    g_autoptr (GError) err = NULL;

    g_assert_false (atelier_store_delete (store, a, &err));
    g_assert_error (err, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND);
  }
  {
    g_autoptr (GError) err = NULL;

    g_assert_null (atelier_store_tree (store, a, &err));
    g_assert_error (err, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND);
  }
}

static void
test_shared_asset (void)
{
  g_autofree char *dir = new_dir ();
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = atelier_store_open (dir, &error);
  g_autoptr (AtelierItem) item = NULL;
  g_autofree char *path = NULL;
  gint64 a, b;

  a = save_simple (store, ATELIER_ITEM_TEXT, "first", "the same words", 0);
  b = save_simple (store, ATELIER_ITEM_TEXT, "second", "the same words", a);
  item = atelier_store_get (store, a, &error);
  path = g_strdup (atelier_item_get_asset (item, "main")->path);
  g_assert_true (g_file_test (path, G_FILE_TEST_IS_REGULAR));
  g_assert_true (atelier_store_delete (store, a, &error));
  g_assert_true (g_file_test (path, G_FILE_TEST_IS_REGULAR));
  g_assert_true (atelier_store_delete (store, b, &error));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
}

static void
test_reconcile (void)
{
  g_autofree char *dir = new_dir ();
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = atelier_store_open (dir, &error);
  g_autoptr (AtelierItem) item = NULL;
  g_autoptr (GBytes) kept = NULL;
  g_auto (AtelierStoreReport) r1 = { 0 };
  g_auto (AtelierStoreReport) r2 = { 0 };
  g_auto (AtelierStoreReport) r3 = { 0 };
  g_autofree char *orphan = NULL, *dead_tmp = NULL, *live_tmp = NULL, *path = NULL;
  g_autofree char *sub = g_build_filename (dir, "assets", "ab", NULL);
  const char *argv[] = { "/bin/true", NULL };
  GPid dead;
  int status;
  gint64 id, other;

  id = save_simple (store, ATELIER_ITEM_TEXT, "will lose its file", "lost words", 0);
  other = save_simple (store, ATELIER_ITEM_TEXT, "keeps its file", "kept words", 0);
  item = atelier_store_get (store, id, &error);
  path = g_strdup (atelier_item_get_asset (item, "main")->path);
  kept = read_bytes (path);
  g_assert_cmpint (g_unlink (path), ==, 0);

  /* An orphan, a dead writer's temporary file, and a live writer's (pid 1 always exists). */
  g_assert_cmpint (g_mkdir_with_parents (sub, 0700), ==, 0);
  orphan = g_build_filename (sub, "ab0000000000000000000000000000000000000000000000000000000000000000", NULL);
  g_assert_true (g_file_set_contents (orphan, "nobody's", -1, &error));
  g_assert_true (g_spawn_async (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &dead, &error));
  g_assert_no_error (error);
  waitpid (dead, &status, 0);
  dead_tmp = g_strdup_printf ("%s/" ATELIER_STORE_TMP_PREFIX "%d-0000", sub, (int) dead);
  live_tmp = g_strdup_printf ("%s/" ATELIER_STORE_TMP_PREFIX "1-0000", sub);
  g_assert_true (g_file_set_contents (dead_tmp, "half", -1, &error));
  g_assert_true (g_file_set_contents (live_tmp, "in flight", -1, &error));

  g_assert_true (atelier_store_reconcile (store, FALSE, &r1, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (r1.n_orphans_removed, ==, 1);
  g_assert_cmpuint (r1.n_temps_removed, ==, 1);
  g_assert_false (g_file_test (orphan, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (dead_tmp, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (live_tmp, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (r1.missing_items->len, ==, 1);
  g_assert_cmpint (g_array_index (r1.missing_items, gint64, 0), ==, id);
  g_assert_cmpuint (r1.problems->len, ==, 1);
  g_assert_nonnull (strstr (g_ptr_array_index (r1.problems, 0), path));
  g_clear_pointer (&item, atelier_item_free);
  item = atelier_store_get (store, id, &error);
  g_assert_true (item->missing);
  g_clear_pointer (&item, atelier_item_free);
  item = atelier_store_get (store, other, &error);
  g_assert_false (item->missing);
  /* The row stays; the file comes back: unmarked. */
  g_assert_cmpint (atelier_store_count (store, NULL), ==, 2);
  g_assert_true (g_file_set_contents (path, g_bytes_get_data (kept, NULL), (gssize) g_bytes_get_size (kept), &error));
  g_assert_true (atelier_store_reconcile (store, TRUE, &r2, &error));
  g_assert_cmpuint (r2.n_found_again, ==, 1);
  g_assert_cmpuint (r2.missing_items->len, ==, 0);
  g_clear_pointer (&item, atelier_item_free);
  item = atelier_store_get (store, id, &error);
  g_assert_false (item->missing);
  /* A damaged file: verify finds it, the file stays for the user to look at. */
  g_assert_true (g_file_set_contents (path, "changed", -1, &error));
  g_assert_true (atelier_store_reconcile (store, TRUE, &r3, &error));
  g_assert_cmpuint (r3.missing_items->len, ==, 1);
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  g_unlink (live_tmp);
}

/* Concurrency: a thread saves items with assets while the main loop reads through the async
 * API; every item a read returns must have its asset file. */
typedef struct
{
  AtelierStore *store;
  GMainLoop *loop;
  gint done;
  guint reads, max_seen, pending;
} Concurrent;

static gpointer
writer_thread (gpointer data)
{
  Concurrent *c = data;

  for (guint i = 0; i < 150; i++)
    {
      g_autofree char *prompt = g_strdup_printf ("concurrent %u", i);
      g_autofree char *words = g_strdup_printf ("asset number %u", i);
      gint64 id = save_simple (c->store, ATELIER_ITEM_TEXT, prompt, words, 0);

      g_assert_cmpint (id, >, 0);
    }
  g_atomic_int_set (&c->done, 1);
  return NULL;
}

static void read_next (Concurrent *c);

static void
on_found (GObject *source, GAsyncResult *result, gpointer data)
{
  Concurrent *c = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) items = atelier_store_find_finish (c->store, result, &error);

  g_assert_no_error (error);
  for (guint i = 0; i < items->len; i++)
    {
      const AtelierItem *item = g_ptr_array_index (items, i);

      g_assert_cmpuint (item->assets->len, ==, 1);
      g_assert_true (g_file_test (((AtelierAsset *) g_ptr_array_index (item->assets, 0))->path,
                                  G_FILE_TEST_IS_REGULAR));
      if (i > 0)
        g_assert_cmpint (item->id, <, ((AtelierItem *) g_ptr_array_index (items, i - 1))->id);
    }
  c->max_seen = MAX (c->max_seen, items->len);
  c->reads++;
  c->pending--;
  read_next (c);
}

static void
on_tree (GObject *source, GAsyncResult *result, gpointer data)
{
  Concurrent *c = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) items = atelier_store_tree_finish (c->store, result, &error);

  if (items == NULL)
    g_assert_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND);
  c->pending--;
  read_next (c);
}

static void
read_next (Concurrent *c)
{
  AtelierQuery q = ATELIER_QUERY_INIT;

  if (g_atomic_int_get (&c->done) && c->pending == 0)
    {
      g_main_loop_quit (c->loop);
      return;
    }
  if (c->pending > 0)
    return;
  q.limit = 500;
  q.text = c->reads % 2 == 0 ? "concurrent" : NULL;
  c->pending = 2;
  atelier_store_find_async (c->store, &q, NULL, on_found, c);
  atelier_store_tree_async (c->store, 1, NULL, on_tree, c);
}

static void
on_get (GObject *source, GAsyncResult *result, gpointer data)
{
  Concurrent *c = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierItem) item = NULL;

  item = atelier_store_get_finish (c->store, result, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (item->prompt, ==, "concurrent 0");
  g_main_loop_quit (c->loop);
}

static void
on_opened (GObject *source, GAsyncResult *result, gpointer data)
{
  Concurrent *c = data;
  g_autoptr (GError) error = NULL;
  g_auto (AtelierStoreReport) report = { 0 };

  c->store = atelier_store_open_finish (result, &report, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (report.missing_items->len, ==, 0);
  g_main_loop_quit (c->loop);
}

static void
test_concurrency (void)
{
  g_autofree char *dir = new_dir ();
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = NULL;
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Concurrent c = { NULL, loop, 0, 0, 0, 0 };
  GThread *thread;

  atelier_store_open_async (dir, NULL, on_opened, &c);
  g_main_loop_run (loop);
  store = c.store;
  thread = g_thread_new ("writer", writer_thread, &c);
  read_next (&c);
  g_main_loop_run (loop);
  g_thread_join (thread);
  g_test_message ("%u reads while writing", c.reads);
  g_assert_cmpuint (c.reads, >, 1);
  g_assert_cmpint (atelier_store_count (store, &error), ==, 150);
  atelier_store_get_async (store, 1, NULL, on_get, &c);
  g_main_loop_run (loop);
}

static void
limit_file_size (gpointer data)
{
  struct rlimit rl;

  rl.rlim_cur = rl.rlim_max = GPOINTER_TO_SIZE (data);
  /* Past the limit write() fails with EFBIG instead of the process being killed. */
  signal (SIGXFSZ, SIG_IGN);
  setrlimit (RLIMIT_FSIZE, &rl);
}

/* The state a failed save must not change: the rows, the asset files, the integrity. */
static char *
snapshot (const char *dir)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = atelier_store_open (dir, &error);
  g_autoptr (GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  AtelierQuery q = ATELIER_QUERY_INIT;
  g_autoptr (GPtrArray) items = NULL;
  g_autoptr (GString) s = g_string_new (NULL);
  g_autofree char *files = list_assets (dir);

  g_assert_no_error (error);
  g_assert_true (atelier_store_check_integrity (store, problems, &error));
  q.limit = 100000;
  items = atelier_store_find (store, &q, &error);
  for (guint i = 0; i < items->len; i++)
    {
      const AtelierItem *item = g_ptr_array_index (items, i);

      g_string_append_printf (s, "%" G_GINT64_FORMAT ":%s;", item->id, item->prompt);
    }
  g_string_append_printf (s, " files: %s", files);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static void
run_full_disk (const char *dir, const char *mode, gsize bytes, gsize limit)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *writer = g_test_build_filename (G_TEST_BUILT, "store-writer", NULL);
  g_autofree char *n = g_strdup_printf ("%" G_GSIZE_FORMAT, bytes);
  g_autofree char *out = NULL, *before = snapshot (dir), *after = NULL;
  const char *argv[] = { writer, dir, mode, n, NULL };
  int status;

  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, limit_file_size, GSIZE_TO_POINTER (limit),
                               &out, NULL, &status, &error));
  g_assert_no_error (error);
  g_test_message ("%s %" G_GSIZE_FORMAT " under a %" G_GSIZE_FORMAT "-byte limit: %s", mode, bytes, limit, out);
  g_assert_true (WIFEXITED (status));
  /* 3: the save failed with ATELIER_STORE_ERROR_FULL. */
  g_assert_cmpint (WEXITSTATUS (status), ==, 3);
  after = snapshot (dir);
  g_assert_cmpstr (before, ==, after);
}

static void
test_full_disk (void)
{
  g_autofree char *dir = new_dir ();

  fill_store (dir, 20);
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (AtelierStore) store = atelier_store_open (dir, &error);

    save_simple (store, ATELIER_ITEM_TEXT, "with a file", "some words", 0);
  }
  /* The asset cannot be written; then the row cannot (the WAL grows past the limit). */
  run_full_disk (dir, "asset", 4 << 20, 2 << 20);
  run_full_disk (dir, "prompt", 4 << 20, 2 << 20);
}

static void
test_model_hash (void)
{
  g_autofree char *path = g_build_filename (at_test_tmpdir (), "model.bin", NULL);
  g_autoptr (GError) error = NULL;
  gsize len = 3 << 20;
  g_autofree char *data = g_malloc0 (len);
  g_autofree char *h1 = NULL, *h2 = NULL, *h3 = NULL, *h4 = NULL;
  gint64 size = 0;

  g_assert_true (g_file_set_contents (path, data, (gssize) len, &error));
  h1 = atelier_store_hash_model_file (path, &size, &error);
  g_assert_no_error (error);
  g_assert_cmpint (size, ==, (gint64) len);
  g_assert_true (g_str_has_prefix (h1, "sha256-edges:"));
  /* A byte in the middle MiB is not hashed (the price of speed); the last one is. */
  data[len / 2] = 1;
  g_assert_true (g_file_set_contents (path, data, (gssize) len, &error));
  h2 = atelier_store_hash_model_file (path, NULL, &error);
  g_assert_cmpstr (h1, ==, h2);
  data[len - 1] = 1;
  g_assert_true (g_file_set_contents (path, data, (gssize) len, &error));
  h3 = atelier_store_hash_model_file (path, NULL, &error);
  g_assert_cmpstr (h1, !=, h3);
  /* A small file is hashed whole. */
  g_assert_true (g_file_set_contents (path, "tiny", -1, &error));
  h4 = atelier_store_hash_model_file (path, &size, &error);
  g_assert_cmpint (size, ==, 4);
  g_assert_null (atelier_store_hash_model_file ("/nonexistent/model.gguf", NULL, &error));
  g_assert_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_IO);
}

static void
test_fts_query (void)
{
  static const char *const cases[][2] = {
    { "red lighthouse", "\"red\" \"lighthouse\"" },
    { "light*", "\"light\"*" },
    { "\"red light\"", "\"red light\"" },
    { "\"unclosed phrase", "\"unclosed phrase\"" },
    { "a\"b", "\"a\" \"b\"" },
    { "NEAR(a", "\"NEAR(a\"" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *q = _atelier_store_fts_query (cases[i][0], &error);

      g_assert_no_error (error);
      g_assert_cmpstr (q, ==, cases[i][1]);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/app/store/open-new", test_open_new);
  g_test_add_func ("/app/store/migrations-from-every-version", test_migrations);
  g_test_add_func ("/app/store/newer-schema-refused", test_newer_refused);
  g_test_add_func ("/app/store/corrupt-garbage", test_corrupt_garbage);
  g_test_add_func ("/app/store/corrupt-truncated", test_corrupt_truncated);
  g_test_add_func ("/app/store/move-aside", test_move_aside);
  g_test_add_func ("/app/store/round-trip", test_round_trip);
  g_test_add_func ("/app/store/fts-query", test_fts_query);
  g_test_add_func ("/app/store/search", test_search);
  g_test_add_func ("/app/store/filters", test_filters);
  g_test_add_func ("/app/store/tree-and-reparent", test_tree);
  g_test_add_func ("/app/store/shared-asset", test_shared_asset);
  g_test_add_func ("/app/store/reconcile", test_reconcile);
  g_test_add_func ("/app/store/concurrency", test_concurrency);
  g_test_add_func ("/app/store/full-disk", test_full_disk);
  g_test_add_func ("/app/store/model-hash", test_model_hash);
  return g_test_run ();
}
