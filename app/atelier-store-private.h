/* atelier-store-private.h: what the store's files share, and the hooks the tests use. */
#pragma once

#include <sqlite3.h>

#include "atelier-store.h"

G_BEGIN_DECLS

struct _AtelierStore
{
  gatomicrefcount ref_count;
  char *dir, *db_path, *assets_dir;
  /* Writes go through one connection, one at a time: SQLite allows one writer anyway, and the
   * asset files written before a row's transaction must not race a delete or a reconciliation
   * in this process. Other processes are kept apart by BEGIN IMMEDIATE (see save). */
  GMutex write_lock;
  sqlite3 *writer;
  /* Idle read connections; a thread takes one for a query and gives it back. */
  GMutex pool_lock;
  GPtrArray *readers;
};

sqlite3 *_atelier_store_reader_take (AtelierStore *self, GError **error);
void _atelier_store_reader_give (AtelierStore *self, sqlite3 *db);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK on `db`. */
gboolean _atelier_store_exec (sqlite3 *db, const char *sql, GError **error);

#define ATELIER_STORE_DB_NAME "history.sqlite3"
/* A writer's temporary asset file: `.tmp-<pid>-<random>` in the asset's folder. */
#define ATELIER_STORE_TMP_PREFIX ".tmp-"

/* Opens the store in `dir` running only the first `n_migrations` migrations (the schema as an
 * older Atelier left it): the migration tests build every earlier version this way. */
AtelierStore *_atelier_store_open_version (const char *dir, int n_migrations, GError **error);

/* GError from SQLite's last failure on `db` (`rc` the result code), prefixed with `what`. */
void _atelier_store_set_db_error (GError **error, sqlite3 *db, int rc, const char *what);

/* The FTS5 expression for a user's search text: each word quoted, `word*` kept as a prefix,
 * "phrases" kept; NULL with ATELIER_STORE_ERROR_QUERY when no word is left. */
char *_atelier_store_fts_query (const char *text, GError **error);

/* Inserts `n` synthetic items in one transaction (no asset files): the benchmark's setup.
 * `fill` is called for each with its index and sets prompt / tags / parent. */
typedef void (*AtelierStoreFillFunc) (guint index, AtelierItemNew *item, gpointer user_data);
gboolean _atelier_store_insert_batch (AtelierStore *self, guint n, AtelierStoreFillFunc fill, gpointer user_data,
                                      GArray *ids, GError **error);

G_END_DECLS
