/* atelier-bench-history.c: `atelier bench history [--json] [--quick]`: the history store at
 * scale. A temporary store gets 100,000 items (10,000 with --quick) in transactions of 10,000
 * (rows only: no asset files, whose cost is the disk's, not the store's): prompts from a small
 * vocabulary, a third of them texts with content, a fifth variants of an earlier item, one or two
 * tags each, and a chain of 50 variants. Then the medians of:
 *   - search a common word (in about half the items), newest 50;
 *   - search a rare word (in 10 items);
 *   - list the newest 50 by date;
 *   - open the variant tree of the depth-50 chain (from its leaf: lineage to the root, then the
 *     whole tree from there);
 * each a whole call as the window makes it (the 50 items loaded with their tags and assets), and
 * the time to open the store (quick_check reads every page), the insert rate, and the database
 * bytes per item after a checkpoint. Figures are printed, never asserted. */
#include "config.h"

#include "atelier-bench-history.h"
#include "atelier-store-private.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

#define BATCH 10000
#define CHAIN 51 /* a root and 50 generations of variants: depth 50 */

static const char *const adjectives[] = { "quiet", "stormy", "golden", "misty", "crimson", "ancient", "frozen",
                                          "electric", "gentle", "hollow", "bright", "distant", "silver", "wild" };
static const char *const nouns[] = { "harbour", "forest", "castle", "meadow", "city", "river", "mountain", "garden",
                                     "desert", "library", "station", "island", "valley", "tower", "market", "bridge" };
static const char *const styles[] = { "oil painting", "watercolour", "photograph", "ink sketch", "pixel art",
                                      "charcoal", "gouache", "linocut" };
static const char *const kinds_tags[] = { "landscape", "portrait", "draft", "keeper", "series-a", "series-b",
                                          "night", "morning" };

typedef struct
{
  GArray *ids;
  GRand *rand;
  char prompt[256];
  char text[512];
  const char *tags[3];
  gboolean chain;
  guint total;
} Fill;

static void
fill_item (guint index, AtelierItemNew *item, gpointer user_data)
{
  Fill *f = user_data;
  guint n = f->ids->len;
  const char *adj = adjectives[g_rand_int_range (f->rand, 0, G_N_ELEMENTS (adjectives))];
  const char *noun = nouns[g_rand_int_range (f->rand, 0, G_N_ELEMENTS (nouns))];
  const char *noun2 = nouns[g_rand_int_range (f->rand, 0, G_N_ELEMENTS (nouns))];
  const char *style = styles[g_rand_int_range (f->rand, 0, G_N_ELEMENTS (styles))];
  /* "lantern": the common word, in about half; "zanzibar": the rare one, in 10 items. */
  gboolean common = g_rand_boolean (f->rand);
  gboolean rare = f->total > 0 && n % (f->total / 10) == 7;

  g_snprintf (f->prompt, sizeof f->prompt, "a %s %s beside the %s%s, %s%s, item %u", adj, noun, noun2,
              common ? " with a lantern" : "", style, rare ? ", zanzibar" : "", n);
  item->prompt = f->prompt;
  item->negative = "blurry, low quality";
  item->params_json = "{\"steps\": 30, \"cfg_scale\": 7.0, \"sampler\": \"euler_a\", \"width\": 512, \"height\": 512}";
  item->has_seed = TRUE;
  item->seed = g_rand_int (f->rand);
  item->kind = n % 3 == 1 ? ATELIER_ITEM_TEXT : ATELIER_ITEM_IMAGE;
  if (item->kind == ATELIER_ITEM_TEXT)
    {
      g_snprintf (f->text, sizeof f->text,
                  "The %s %s was %s that evening. Nobody at the %s remembered how long it had been since the "
                  "last %s, and the %s stood %s against the sky.",
                  noun, noun2, adj, noun2, style, noun, adj);
      item->text = f->text;
    }
  f->tags[0] = kinds_tags[g_rand_int_range (f->rand, 0, G_N_ELEMENTS (kinds_tags))];
  f->tags[1] = g_rand_boolean (f->rand) ? kinds_tags[g_rand_int_range (f->rand, 0, G_N_ELEMENTS (kinds_tags))] : NULL;
  f->tags[2] = NULL;
  item->tags = f->tags;
  if (f->chain && n > 0)
    item->parent_id = g_array_index (f->ids, gint64, n - 1);
  else if (n > 0 && g_rand_int_range (f->rand, 0, 5) == 0)
    item->parent_id = g_array_index (f->ids, gint64, g_rand_int_range (f->rand, 0, (gint32) n));
}

static int
compare_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

typedef GPtrArray *(*QueryFunc) (AtelierStore *store, gpointer data, GError **error);

/* Median seconds of `reps` calls; `n_items` gets the size of the last result. */
static gboolean
time_query (AtelierStore *store, QueryFunc fn, gpointer data, guint reps, double *median, guint *n_items,
            GError **error)
{
  g_autoptr (GArray) times = g_array_new (FALSE, FALSE, sizeof (double));

  for (guint i = 0; i < reps + 1; i++)
    {
      gint64 t0 = g_get_monotonic_time ();
      g_autoptr (GPtrArray) items = fn (store, data, error);
      double dt = (g_get_monotonic_time () - t0) / 1e6;

      if (items == NULL)
        return FALSE;
      *n_items = items->len;
      /* The first call warms the page cache and the connection. */
      if (i > 0)
        g_array_append_val (times, dt);
    }
  g_array_sort (times, compare_double);
  *median = g_array_index (times, double, times->len / 2);
  return TRUE;
}

static GPtrArray *
query_find (AtelierStore *store, gpointer data, GError **error)
{
  return atelier_store_find (store, data, error);
}

static GPtrArray *
query_tree (AtelierStore *store, gpointer data, GError **error)
{
  gint64 leaf = *(gint64 *) data;
  g_autoptr (GPtrArray) lineage = atelier_store_lineage (store, leaf, error);

  if (lineage == NULL)
    return NULL;
  return atelier_store_tree (store, leaf, error);
}

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
report (JsonBuilder *b, gboolean json, const char *name, const char *unit, double figure, guint n_items)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "case");
  json_builder_add_string_value (b, name);
  json_builder_set_member_name (b, unit);
  json_builder_add_double_value (b, ((gint64) (figure * 1000 + 0.5)) / 1000.0);
  if (n_items > 0)
    {
      json_builder_set_member_name (b, "results");
      json_builder_add_int_value (b, n_items);
    }
  json_builder_end_object (b);
  if (!json)
    {
      printf ("%-48s %10.3f %s", name, figure, unit);
      if (n_items > 0)
        printf ("   (%u items)", n_items);
      printf ("\n");
      fflush (stdout);
    }
}

static gboolean
fill_store (AtelierStore *store, guint total, gint64 *leaf, double *insert_s, GError **error)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (20261123);
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr (GArray) chain = g_array_new (FALSE, FALSE, sizeof (gint64));
  Fill f = { ids, rand, "", "", { NULL }, FALSE, total };
  gint64 t0 = g_get_monotonic_time ();

  for (guint done = 0; done < total; done += BATCH)
    if (!_atelier_store_insert_batch (store, MIN (BATCH, total - done), fill_item, &f, ids, error))
      return FALSE;
  *insert_s = (g_get_monotonic_time () - t0) / 1e6;
  f.ids = chain;
  f.chain = TRUE;
  f.total = 0;
  if (!_atelier_store_insert_batch (store, CHAIN, fill_item, &f, chain, error))
    return FALSE;
  *leaf = g_array_index (chain, gint64, CHAIN - 1);
  return TRUE;
}

int
atelier_bench_history (gboolean json, gboolean quick)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("atelier-bench-history-XXXXXX", &error);
  g_autofree char *db = NULL;
  g_autoptr (AtelierStore) store = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  guint total = quick ? 10000 : 100000, reps = quick ? 5 : 21, n = 0;
  AtelierQuery common = ATELIER_QUERY_INIT, rare = ATELIER_QUERY_INIT, list = ATELIER_QUERY_INIT;
  double insert_s = 0, t = 0;
  gint64 leaf = 0, t0;
  GStatBuf sb;
  int status = 1;

  json_builder_begin_array (b);
  if (dir == NULL)
    goto out;
  db = g_build_filename (dir, ATELIER_STORE_DB_NAME, NULL);
  if ((store = atelier_store_open (dir, &error)) == NULL || !fill_store (store, total, &leaf, &insert_s, &error))
    goto out;
  report (b, json, "insert (transactions of 10,000)", "items_per_s", total / MAX (insert_s, 1e-9), 0);
  /* Closing checkpoints the WAL into the file; reopening runs quick_check over every page. */
  g_clear_pointer (&store, atelier_store_unref);
  t0 = g_get_monotonic_time ();
  if ((store = atelier_store_open (dir, &error)) == NULL)
    goto out;
  report (b, json, "open (with quick_check)", "ms", (g_get_monotonic_time () - t0) / 1e3, 0);
  if (g_stat (db, &sb) != 0)
    {
      g_set_error (&error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s: gone", db);
      goto out;
    }
  report (b, json, "database size per item", "bytes", (double) sb.st_size / (total + CHAIN), 0);

  common.text = "lantern";
  rare.text = "zanzibar";
  if (!time_query (store, query_find, &common, reps, &t, &n, &error))
    goto out;
  report (b, json, "search a common word, newest 50", "ms", t * 1e3, n);
  if (!time_query (store, query_find, &rare, reps, &t, &n, &error))
    goto out;
  report (b, json, "search a rare word", "ms", t * 1e3, n);
  if (!time_query (store, query_find, &list, reps, &t, &n, &error))
    goto out;
  report (b, json, "list the newest 50 by date", "ms", t * 1e3, n);
  if (!time_query (store, query_tree, &leaf, reps, &t, &n, &error))
    goto out;
  report (b, json, "variant tree of depth 50 (lineage + tree)", "ms", t * 1e3, n);
  status = 0;

out:
  if (error != NULL)
    fprintf (stderr, "atelier bench history: %s\n", error->message);
  g_clear_pointer (&store, atelier_store_unref);
  if (dir != NULL)
    remove_tree (dir);
  json_builder_end_array (b);
  if (json && status == 0)
    {
      g_autoptr (JsonNode) root = json_builder_get_root (b);
      g_autofree char *out = json_to_string (root, TRUE);

      printf ("%s\n", out);
    }
  return status;
}
