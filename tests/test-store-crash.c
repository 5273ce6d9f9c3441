/* test-store-crash.c: the crash harness. A writer process (tests/store-writer.c) saves items
 * with asset files in a loop and is killed with SIGKILL at least 200 times (ATELIER_CRASH_ROUNDS
 * overrides, for quick runs while developing): after it has reported a random 0-3 commits of
 * this round, a random 0-10 ms later, so that the kills land inside saves however slow the
 * machine is (a fixed delay alone let a loaded CI machine's writer commit almost nothing). After each kill the
 * store is reopened (reconciled) and must hold:
 *   1. PRAGMA integrity_check is ok;
 *   2. every row has its asset file, with the content hash it was saved with;
 *   3. no orphan or temporary file survives reconciliation;
 *   4. every item the writer reported committed is there (unless it reported deleting it).
 * One round in ten kills the writer before it reports "ready", so opening, migrating and
 * reconciling are killed too. Kills only test process death, not power loss: the fsyncs are
 * there for that and cannot be tested here. */
#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "at-test-util.h"
#include "atelier-store-private.h"

typedef struct
{
  GHashTable *committed; /* id -> sha256: reported committed, not deleted */
  GHashTable *deleting;  /* id: a delete was under way when the writer died */
  guint n_committed, n_deleted;
} Ledger;

static gint64 *
id_key (gint64 id)
{
  return g_memdup2 (&id, sizeof id);
}

static void
ledger_read_line (Ledger *l, const char *line)
{
  g_auto (GStrv) w = g_strsplit (line, " ", 3);
  gint64 id;

  if (w[0] == NULL || w[1] == NULL || !g_ascii_string_to_signed (w[1], 10, 1, G_MAXINT64, &id, NULL))
    return;
  if (strcmp (w[0], "committed") == 0 && w[2] != NULL)
    {
      g_hash_table_insert (l->committed, id_key (id), g_strdup (w[2]));
      l->n_committed++;
    }
  else if (strcmp (w[0], "deleting") == 0)
    g_hash_table_add (l->deleting, id_key (id));
  else if (strcmp (w[0], "deleted") == 0)
    {
      g_hash_table_remove (l->committed, &id);
      g_hash_table_remove (l->deleting, &id);
      l->n_deleted++;
    }
}

/* Reads complete lines from `fd` until EOF, until a "ready" line when `until_ready`, or until
 * the ledger counts `until_commits` commits; a last line cut off by the kill is ignored. */
static gboolean
read_lines (int fd, GString *pending, Ledger *l, gboolean until_ready, guint until_commits)
{
  char buf[4096];
  ssize_t n;

  for (;;)
    {
      char *nl;

      while ((nl = memchr (pending->str, '\n', pending->len)) != NULL)
        {
          g_autofree char *line = g_strndup (pending->str, (gsize) (nl - pending->str));

          g_string_erase (pending, 0, (gssize) (nl - pending->str) + 1);
          if (strcmp (line, "ready") == 0)
            {
              if (until_ready)
                return TRUE;
              continue;
            }
          ledger_read_line (l, line);
          if (l->n_committed >= until_commits)
            return TRUE;
        }
      n = read (fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      g_string_append_len (pending, buf, n);
    }
}

static void
check_asset (const AtelierItem *item, const char *want_sha)
{
  const AtelierAsset *a = atelier_item_get_asset (item, "main");
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL, *got = NULL;
  gsize len;

  g_assert_nonnull (a);
  if (want_sha != NULL)
    g_assert_cmpstr (a->sha256, ==, want_sha);
  g_assert_true (g_file_get_contents (a->path, &contents, &len, &error));
  g_assert_no_error (error);
  got = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) contents, len);
  g_assert_cmpstr (got, ==, a->sha256);
  g_assert_cmpint ((gint64) len, ==, a->size);
}

static guint
check_store (const char *dir, Ledger *l)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = atelier_store_open (dir, &error);
  g_autoptr (GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) referenced = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GPtrArray) items = NULL;
  g_auto (AtelierStoreReport) report = { 0 };
  g_autofree char *assets = g_build_filename (dir, "assets", NULL);
  g_autoptr (GDir) top = NULL;
  AtelierQuery q = ATELIER_QUERY_INIT;
  GHashTableIter it;
  gpointer key, value;
  const char *sub;

  g_assert_no_error (error);
  g_assert_true (atelier_store_reconcile (store, FALSE, &report, &error));
  g_assert_no_error (error);
  /* 1. */
  if (!atelier_store_check_integrity (store, problems, &error))
    g_error ("integrity: %s", problems->len > 0 ? (char *) g_ptr_array_index (problems, 0) : error->message);
  /* 2: no row lost its file; every row's file has its content. */
  g_assert_cmpuint (report.missing_items->len, ==, 0);
  q.limit = G_MAXUINT;
  items = atelier_store_find (store, &q, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < items->len; i++)
    {
      const AtelierItem *item = g_ptr_array_index (items, i);

      check_asset (item, g_hash_table_lookup (l->committed, &item->id));
      g_hash_table_add (referenced, atelier_item_get_asset (item, "main")->sha256);
    }
  /* 4: every reported commit is there. */
  g_hash_table_iter_init (&it, l->committed);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      g_autoptr (GError) e = NULL;
      g_autoptr (AtelierItem) item = atelier_store_get (store, *(gint64 *) key, &e);

      if (item == NULL && g_hash_table_contains (l->deleting, key))
        continue;
      g_assert_no_error (e);
    }
  /* 3: no orphan, no temporary file. */
  top = g_dir_open (assets, 0, NULL);
  while (top != NULL && (sub = g_dir_read_name (top)) != NULL)
    {
      g_autofree char *path = g_build_filename (assets, sub, NULL);
      g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
      const char *name;

      while (d != NULL && (name = g_dir_read_name (d)) != NULL)
        if (!g_hash_table_contains (referenced, name))
          g_error ("%s/%s survived reconciliation", path, name);
    }
  /* The items an interrupted delete left are known now: present or gone for good. */
  g_hash_table_iter_init (&it, l->deleting);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      g_autoptr (AtelierItem) item = atelier_store_get (store, *(gint64 *) key, NULL);

      if (item == NULL)
        g_hash_table_remove (l->committed, key);
      g_hash_table_iter_remove (&it);
    }
  return items->len;
}

static void
test_crash (void)
{
  g_autofree char *writer = g_test_build_filename (G_TEST_BUILT, "store-writer", NULL);
  g_autofree char *dir = g_build_filename (at_test_tmpdir (), "crash", NULL);
  const char *env_rounds = g_getenv ("ATELIER_CRASH_ROUNDS");
  guint rounds = env_rounds != NULL ? (guint) atoi (env_rounds) : 200, n_rows = 0, early = 0;
  guint awaited = 0; /* commits the harness waited for: at least that many were reported */
  Ledger l = { g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free),
               g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL), 0, 0 };
  gint64 t0 = g_get_monotonic_time ();

  for (guint r = 0; r < rounds; r++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GString) pending = g_string_new (NULL);
      g_autofree char *seed = g_strdup_printf ("%u", g_test_rand_int ());
      const char *argv[] = { writer, dir, "loop", seed, NULL };
      gboolean wait_ready = r % 10 != 5;
      GPid pid;
      int out, status;

      g_assert_true (g_spawn_async_with_pipes (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
                                               NULL, &out, NULL, &error));
      g_assert_no_error (error);
      if (wait_ready)
        {
          guint k = (guint) g_test_rand_int_range (0, 4);

          if (!read_lines (out, pending, &l, TRUE, G_MAXUINT)
              || (k > 0 && !read_lines (out, pending, &l, FALSE, l.n_committed + k)))
            g_error ("round %u: the writer exited before it was killed", r);
          awaited += k;
        }
      g_usleep ((gulong) g_test_rand_int_range (0, 10001));
      kill (pid, SIGKILL);
      g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
      read_lines (out, pending, &l, FALSE, G_MAXUINT);
      close (out);
      g_spawn_close_pid (pid);
      /* Killed, not exited: an exit would mean the writer failed. */
      if (!WIFSIGNALED (status))
        g_error ("round %u: the writer exited with status %d", r, WEXITSTATUS (status));
      early += !wait_ready;
      n_rows = check_store (dir, &l);
    }
  g_test_message ("%u rounds (%u killed while opening) in %.1f s: %u commits and %u deletes reported, %u rows at "
                  "the end",
                  rounds, early, (g_get_monotonic_time () - t0) / 1e6, l.n_committed, l.n_deleted, n_rows);
  /* Each round waited for its commits, so the store cannot have stayed empty. */
  g_assert_cmpuint (awaited, >, 0);
  g_assert_cmpuint (n_rows, >, 0);
  g_hash_table_unref (l.committed);
  g_hash_table_unref (l.deleting);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/app/store/crash-during-save", test_crash);
  return g_test_run ();
}
