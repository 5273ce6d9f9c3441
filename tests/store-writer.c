/* store-writer.c: the crash harness's writer (tests/test-store-crash.c) and the full-disk
 * writer (tests/test-store.c).
 *
 *   store-writer DIR loop SEED    opens the store (reconciling it), prints "ready", then saves
 *                                 items forever: a random asset of 0..64 KiB (one in eight
 *                                 repeats an earlier content, so hashes are shared), sometimes a
 *                                 variant of an earlier item, sometimes a delete. After each save
 *                                 returns: "committed ID SHA256"; around each delete "deleting ID"
 *                                 and "deleted ID". Every line is flushed before the next step.
 *   store-writer DIR asset BYTES  one save with an asset of BYTES; prints the error and exits 3
 *                                 when the save fails, 0 when it succeeds.
 *   store-writer DIR prompt BYTES the same with a prompt (and text) of BYTES. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atelier-store.h"

static int
loop (AtelierStore *store, guint32 seed)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr (GPtrArray) contents = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);

  for (guint n = 0;; n++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GBytes) data = NULL;
      g_autofree char *prompt = g_strdup_printf ("round %u item %u of seed %u", n, n, seed);
      g_autofree char *sha = NULL;
      AtelierAssetNew asset = { "main", "application/octet-stream", NULL };
      AtelierItemNew item = { 0 };
      gint64 id;

      if (ids->len > 4 && g_rand_int_range (rand, 0, 10) == 0)
        {
          guint k = (guint) g_rand_int_range (rand, 0, (gint32) ids->len);
          gint64 victim = g_array_index (ids, gint64, k);

          printf ("deleting %" G_GINT64_FORMAT "\n", victim);
          fflush (stdout);
          if (!atelier_store_delete (store, victim, &error))
            {
              fprintf (stderr, "store-writer: %s\n", error->message);
              return 1;
            }
          printf ("deleted %" G_GINT64_FORMAT "\n", victim);
          fflush (stdout);
          g_array_remove_index_fast (ids, k);
          continue;
        }
      if (contents->len > 0 && g_rand_int_range (rand, 0, 8) == 0)
        data = g_bytes_ref (g_ptr_array_index (contents, g_rand_int_range (rand, 0, (gint32) contents->len)));
      else
        {
          gsize len = (gsize) g_rand_int_range (rand, 0, 64 * 1024 + 1);
          guint8 *buf = g_malloc (len + 1);

          for (gsize i = 0; i < len; i++)
            buf[i] = (guint8) g_rand_int (rand);
          data = g_bytes_new_take (buf, len);
          if (contents->len < 64)
            g_ptr_array_add (contents, g_bytes_ref (data));
        }
      asset.data = data;
      item.kind = ATELIER_ITEM_IMAGE;
      item.prompt = prompt;
      item.params_json = "{\"steps\": 20}";
      item.has_seed = TRUE;
      item.seed = n;
      item.assets = &asset;
      item.n_assets = 1;
      if (ids->len > 0 && g_rand_boolean (rand))
        item.parent_id = g_array_index (ids, gint64, g_rand_int_range (rand, 0, (gint32) ids->len));
      if ((id = atelier_store_save (store, &item, &error)) == 0)
        {
          fprintf (stderr, "store-writer: %s\n", error->message);
          return 1;
        }
      sha = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, data);
      printf ("committed %" G_GINT64_FORMAT " %s\n", id, sha);
      fflush (stdout);
      g_array_append_val (ids, id);
    }
  return 0;
}

static int
one_big (AtelierStore *store, gboolean big_asset, gsize bytes)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *big = g_malloc (bytes + 1);
  g_autoptr (GBytes) data = NULL;
  AtelierAssetNew asset = { "main", "text/plain", NULL };
  AtelierItemNew item = { 0 };

  memset (big, 'x', bytes);
  big[bytes] = '\0';
  data = big_asset ? g_bytes_new (big, bytes) : g_bytes_new_static ("small", 5);
  asset.data = data;
  item.kind = ATELIER_ITEM_TEXT;
  item.prompt = big_asset ? "a big asset" : big;
  item.text = big_asset ? NULL : big;
  item.assets = &asset;
  item.n_assets = 1;
  if (atelier_store_save (store, &item, &error) == 0)
    {
      printf ("%s\n", error->message);
      return error->domain == ATELIER_STORE_ERROR && error->code == ATELIER_STORE_ERROR_FULL ? 3 : 4;
    }
  return 0;
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = NULL;
  g_auto (AtelierStoreReport) report = { 0 };
  guint64 n;

  if (argc != 4 || !g_ascii_string_to_unsigned (argv[3], 10, 0, G_MAXUINT32, &n, NULL))
    {
      fprintf (stderr, "Usage: store-writer DIR loop SEED | DIR asset BYTES | DIR prompt BYTES\n");
      return 2;
    }
  if ((store = atelier_store_open (argv[1], &error)) == NULL
      || !atelier_store_reconcile (store, FALSE, &report, &error))
    {
      fprintf (stderr, "store-writer: %s\n", error->message);
      return 1;
    }
  if (strcmp (argv[2], "loop") == 0)
    {
      printf ("ready\n");
      fflush (stdout);
      return loop (store, (guint32) n);
    }
  return one_big (store, strcmp (argv[2], "asset") == 0, (gsize) n);
}
