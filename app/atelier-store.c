/* atelier-store.c: the history store's database: opening (path, pragmas, corrupt and newer
 * files refused), the ordered migrations, the connection pool, and the queries (get, list,
 * search, lineage, children, tree) with their `_async` variants. Saving, deleting and the asset
 * files are in atelier-store-assets.c. DESIGN.md, "App: the history store".
 *
 * Traps:
 * - Nothing may write to a file before its version and health are known: journal_mode=WAL
 *   rewrites header bytes 18-19, and closing the last connection of a WAL database checkpoints
 *   into it. The probe connection therefore only reads, with checkpoint-on-close off.
 * - A -wal file left beside a database belongs to it: moving a corrupt database aside moves its
 *   -wal and -shm with it, or SQLite would replay the old log into the new file.
 * - FTS5 has its own query syntax; a user's text goes through _atelier_store_fts_query(), never
 *   straight into MATCH. */
#include "config.h"

#include "atelier-store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

G_DEFINE_QUARK (atelier-store-error-quark, atelier_store_error)

static const char *const kind_names[ATELIER_N_ITEM_KINDS] = { "image", "text", "melody", "style" };

/* The schema, one step a version. A step runs in its own transaction with the user_version
 * bump, so a crash mid-migration leaves the previous version intact. Append; never edit a
 * released step. */
static const char *const migrations[] = {
  /* 1: models, items (a variant tree through parent_id), tags, assets. Deleting an item hands
   * its variants to its own parent, so no branch becomes unreachable. AUTOINCREMENT: an id is
   * never reused, so a deleted item's id cannot come back as a different item. */
  "CREATE TABLE models ("
  "  id INTEGER PRIMARY KEY,"
  "  path TEXT NOT NULL,"
  "  kind TEXT,"
  "  family TEXT,"
  "  size INTEGER,"
  "  hash TEXT NOT NULL,"
  "  UNIQUE (path, hash));"
  "CREATE TABLE items ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  kind TEXT NOT NULL CHECK (kind IN ('image', 'text', 'melody', 'style')),"
  "  prompt TEXT NOT NULL DEFAULT '',"
  "  negative TEXT NOT NULL DEFAULT '',"
  "  params TEXT NOT NULL DEFAULT '{}' CHECK (json_valid (params)),"
  "  seed INTEGER,"
  "  model_id INTEGER REFERENCES models (id),"
  "  parent_id INTEGER REFERENCES items (id) ON DELETE SET NULL,"
  "  created INTEGER NOT NULL,"
  "  favourite INTEGER NOT NULL DEFAULT 0,"
  "  text TEXT,"
  "  preview TEXT);"
  "CREATE INDEX items_parent ON items (parent_id);"
  "CREATE INDEX items_created ON items (created);"
  "CREATE INDEX items_model ON items (model_id);"
  "CREATE TABLE item_tags ("
  "  item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,"
  "  tag TEXT NOT NULL,"
  "  PRIMARY KEY (item_id, tag)) WITHOUT ROWID;"
  "CREATE INDEX item_tags_tag ON item_tags (tag);"
  "CREATE TABLE item_assets ("
  "  item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,"
  "  role TEXT NOT NULL,"
  "  media_type TEXT NOT NULL,"
  "  sha256 TEXT NOT NULL,"
  "  size INTEGER NOT NULL,"
  "  PRIMARY KEY (item_id, role)) WITHOUT ROWID;"
  "CREATE INDEX item_assets_sha ON item_assets (sha256);"
  "CREATE TRIGGER items_reparent BEFORE DELETE ON items BEGIN"
  "  UPDATE items SET parent_id = OLD.parent_id WHERE parent_id = OLD.id;"
  "END;",

  /* 2: full-text search over prompt, negative prompt, tags and text, filled from the rows an
   * older version left and kept in step by triggers. */
  "CREATE VIRTUAL TABLE items_fts USING fts5 (prompt, negative, tags, text,"
  "  tokenize = 'unicode61 remove_diacritics 2');"
  "INSERT INTO items_fts (rowid, prompt, negative, tags, text)"
  "  SELECT id, prompt, negative,"
  "    coalesce ((SELECT group_concat (tag, ' ') FROM item_tags WHERE item_id = items.id), ''),"
  "    coalesce (text, '') FROM items;"
  "CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN"
  "  INSERT INTO items_fts (rowid, prompt, negative, tags, text)"
  "    VALUES (NEW.id, NEW.prompt, NEW.negative, '', coalesce (NEW.text, ''));"
  "END;"
  "CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN"
  "  DELETE FROM items_fts WHERE rowid = OLD.id;"
  "END;"
  "CREATE TRIGGER items_fts_update AFTER UPDATE OF prompt, negative, text ON items BEGIN"
  "  UPDATE items_fts SET prompt = NEW.prompt, negative = NEW.negative, text = coalesce (NEW.text, '')"
  "    WHERE rowid = NEW.id;"
  "END;"
  "CREATE TRIGGER item_tags_fts_insert AFTER INSERT ON item_tags BEGIN"
  "  UPDATE items_fts SET tags = (SELECT group_concat (tag, ' ') FROM item_tags WHERE item_id = NEW.item_id)"
  "    WHERE rowid = NEW.item_id;"
  "END;"
  "CREATE TRIGGER item_tags_fts_delete AFTER DELETE ON item_tags BEGIN"
  "  UPDATE items_fts SET tags = coalesce ((SELECT group_concat (tag, ' ') FROM item_tags"
  "    WHERE item_id = OLD.item_id), '') WHERE rowid = OLD.item_id;"
  "END;",

  /* 3: reconciliation marks an item whose asset file is gone instead of dropping it. */
  "ALTER TABLE items ADD COLUMN missing INTEGER NOT NULL DEFAULT 0;"
  "CREATE INDEX items_missing ON items (missing) WHERE missing = 1;",

  /* 4: the user's own list of models (the model manager's "add" and "remove"), apart from
   * `models`, which records what made each item and must keep its rows while items name them. */
  "CREATE TABLE user_models ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  path TEXT NOT NULL UNIQUE,"
  "  added INTEGER NOT NULL);",
};

const char *
atelier_item_kind_name (AtelierItemKind kind)
{
  return (guint) kind < ATELIER_N_ITEM_KINDS ? kind_names[kind] : "unknown";
}

gboolean
atelier_item_kind_from_name (const char *name, AtelierItemKind *kind)
{
  for (guint i = 0; i < ATELIER_N_ITEM_KINDS; i++)
    if (g_strcmp0 (name, kind_names[i]) == 0)
      {
        *kind = (AtelierItemKind) i;
        return TRUE;
      }
  return FALSE;
}

int
atelier_store_schema_version (void)
{
  return (int) G_N_ELEMENTS (migrations);
}

static void
asset_free (gpointer p)
{
  AtelierAsset *a = p;

  g_free (a->role);
  g_free (a->media_type);
  g_free (a->sha256);
  g_free (a->path);
  g_free (a);
}

void
atelier_item_free (AtelierItem *item)
{
  if (item == NULL)
    return;
  g_free (item->prompt);
  g_free (item->negative);
  g_free (item->params_json);
  g_free (item->model_path);
  g_free (item->model_hash);
  g_free (item->preview);
  g_strfreev (item->tags);
  g_clear_pointer (&item->assets, g_ptr_array_unref);
  g_free (item);
}

const AtelierAsset *
atelier_item_get_asset (const AtelierItem *item, const char *role)
{
  for (guint i = 0; item->assets != NULL && i < item->assets->len; i++)
    {
      const AtelierAsset *a = g_ptr_array_index (item->assets, i);

      if (g_strcmp0 (a->role, role) == 0)
        return a;
    }
  return NULL;
}

void
atelier_store_report_clear (AtelierStoreReport *report)
{
  g_clear_pointer (&report->problems, g_ptr_array_unref);
  g_clear_pointer (&report->missing_items, g_array_unref);
}

void
_atelier_store_set_db_error (GError **error, sqlite3 *db, int rc, const char *what)
{
  int code;

  switch (rc & 0xff)
    {
    case SQLITE_FULL:
      code = ATELIER_STORE_ERROR_FULL;
      break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      code = ATELIER_STORE_ERROR_CORRUPT;
      break;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      code = ATELIER_STORE_ERROR_IO;
      break;
    default:
      code = ATELIER_STORE_ERROR_DB;
    }
  /* A write past RLIMIT_FSIZE or onto a full disk reaches us as SQLITE_IOERR_WRITE; the
   * errno underneath says it was room. */
  if (db != NULL && (rc & 0xff) == SQLITE_IOERR)
    {
      int e = sqlite3_system_errno (db);

      if (e == ENOSPC || e == EFBIG || e == EDQUOT)
        code = ATELIER_STORE_ERROR_FULL;
    }
  g_set_error (error, ATELIER_STORE_ERROR, code, "%s: %s", what,
               db != NULL && sqlite3_errcode (db) == rc ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
}

gboolean
_atelier_store_exec (sqlite3 *db, const char *sql, GError **error)
{
  int rc = sqlite3_exec (db, sql, NULL, NULL, NULL);

  if (rc != SQLITE_OK)
    {
      _atelier_store_set_db_error (error, db, rc, sqlite3_db_filename (db, "main"));
      return FALSE;
    }
  return TRUE;
}

char *
atelier_store_default_dir (void)
{
  const char *env = g_getenv ("ATELIER_DATA_DIR");

  if (env != NULL && env[0] != '\0')
    return g_strdup (env);
  return g_build_filename (g_get_user_data_dir (), "atelier", NULL);
}

/* Per-connection settings. synchronous=FULL: a commit that returned survives power loss (the
 * crash harness's "reported committed" promise). */
static gboolean
configure (sqlite3 *db, const char *path, GError **error)
{
  int rc;

  sqlite3_busy_timeout (db, 10000);
  rc = sqlite3_exec (db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    {
      _atelier_store_set_db_error (error, db, rc, path);
      return FALSE;
    }
  return TRUE;
}

static sqlite3 *
open_connection (const char *path, int flags, GError **error)
{
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2 (path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);

  if (rc != SQLITE_OK)
    {
      _atelier_store_set_db_error (error, db, rc, path);
      sqlite3_close (db);
      return NULL;
    }
  sqlite3_extended_result_codes (db, 1);
  return db;
}

static gboolean
read_int (sqlite3 *db, const char *sql, int *value, int *rc_out)
{
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2 (db, sql, -1, &st, NULL);

  if (rc == SQLITE_OK && (rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      *value = sqlite3_column_int (st, 0);
      rc = SQLITE_OK;
    }
  sqlite3_finalize (st);
  *rc_out = rc;
  return rc == SQLITE_OK;
}

static void
set_corrupt (GError **error, const char *path, const char *why)
{
  g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_CORRUPT,
               "%s is damaged (%s); move it aside to start a new history (atelier history check --move-aside)", path,
               why);
}

/* Reads the version and checks the file's health without writing a byte: a newer or damaged
 * file must stay exactly as it is. Returns the version, or -1 with `error` set. */
static int
probe (const char *path, int known, GError **error)
{
  sqlite3 *db = open_connection (path, SQLITE_OPEN_READWRITE, error);
  sqlite3_stmt *st = NULL;
  int version = -1, rc;
  g_autofree char *problem = NULL;

  if (db == NULL)
    return -1;
  sqlite3_db_config (db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
  sqlite3_busy_timeout (db, 10000);
  if (!read_int (db, "PRAGMA user_version", &version, &rc))
    {
      if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT)
        set_corrupt (error, path, sqlite3_errstr (rc));
      else
        _atelier_store_set_db_error (error, db, rc, path);
      sqlite3_close (db);
      return -1;
    }
  if (version > known)
    {
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NEWER,
                   "%s was written by a newer Atelier (schema %d; this one knows %d): update Atelier; the file "
                   "was left as it is",
                   path, version, known);
      sqlite3_close (db);
      return -1;
    }
  /* quick_check reads every page: it catches a truncated file, whose header still looks fine. */
  rc = sqlite3_prepare_v2 (db, "PRAGMA quick_check (1)", -1, &st, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      const char *r = (const char *) sqlite3_column_text (st, 0);

      if (g_strcmp0 (r, "ok") != 0)
        problem = g_strdup (r != NULL ? r : "quick_check failed");
    }
  else if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED || (rc & 0xff) == SQLITE_NOMEM)
    {
      /* Another process holding the file for longer than the busy timeout is not damage. */
      _atelier_store_set_db_error (error, db, rc, path);
      sqlite3_finalize (st);
      sqlite3_close (db);
      return -1;
    }
  else
    problem = g_strdup (sqlite3_errmsg (db));
  sqlite3_finalize (st);
  sqlite3_close (db);
  if (problem != NULL)
    {
      set_corrupt (error, path, problem);
      return -1;
    }
  return version;
}

static gboolean
migrate (sqlite3 *db, const char *path, int from, int to, GError **error)
{
  for (int v = from; v < to; v++)
    {
      g_autofree char *bump = g_strdup_printf ("PRAGMA user_version = %d", v + 1);
      int current = 0, rc;

      if (!_atelier_store_exec (db, "BEGIN IMMEDIATE", error))
        return FALSE;
      /* Another process may have migrated while we waited for the lock. */
      if (!read_int (db, "PRAGMA user_version", &current, &rc))
        {
          _atelier_store_set_db_error (error, db, rc, path);
          sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
          return FALSE;
        }
      if (current > v)
        {
          sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
          v = current - 1;
          continue;
        }
      rc = sqlite3_exec (db, migrations[v], NULL, NULL, NULL);
      if (rc == SQLITE_OK)
        rc = sqlite3_exec (db, bump, NULL, NULL, NULL);
      if (rc == SQLITE_OK)
        rc = sqlite3_exec (db, "COMMIT", NULL, NULL, NULL);
      if (rc != SQLITE_OK)
        {
          g_autofree char *what = g_strdup_printf ("%s: migration to schema %d", path, v + 1);

          _atelier_store_set_db_error (error, db, rc, what);
          sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
fsync_dir (const char *path)
{
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int rc;

  if (fd < 0)
    return FALSE;
  rc = fsync (fd);
  close (fd);
  return rc == 0;
}

AtelierStore *
_atelier_store_open_version (const char *dir, int n_migrations, GError **error)
{
  g_autoptr (AtelierStore) self = g_new0 (AtelierStore, 1);
  int version = 0;
  gboolean exists;

  g_atomic_ref_count_init (&self->ref_count);
  g_mutex_init (&self->write_lock);
  g_mutex_init (&self->pool_lock);
  self->readers = g_ptr_array_new ();
  self->dir = dir != NULL ? g_strdup (dir) : atelier_store_default_dir ();
  self->db_path = g_build_filename (self->dir, ATELIER_STORE_DB_NAME, NULL);
  self->assets_dir = g_build_filename (self->dir, "assets", NULL);
  if (g_mkdir_with_parents (self->dir, 0700) != 0)
    {
      int e = errno;

      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_IO, "cannot create %s: %s", self->dir,
                   g_strerror (e));
      return NULL;
    }
  exists = g_file_test (self->db_path, G_FILE_TEST_EXISTS);
  if (exists && (version = probe (self->db_path, atelier_store_schema_version (), error)) < 0)
    return NULL;
  self->writer = open_connection (self->db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, error);
  if (self->writer == NULL || !configure (self->writer, self->db_path, error)
      || !_atelier_store_exec (self->writer, "PRAGMA journal_mode = WAL", error))
    return NULL;
  if (!exists)
    fsync_dir (self->dir);
  if (!migrate (self->writer, self->db_path, version, n_migrations, error))
    return NULL;
  if (g_mkdir_with_parents (self->assets_dir, 0700) != 0)
    {
      int e = errno;

      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_IO, "cannot create %s: %s", self->assets_dir,
                   g_strerror (e));
      return NULL;
    }
  return g_steal_pointer (&self);
}

AtelierStore *
atelier_store_open (const char *dir, GError **error)
{
  return _atelier_store_open_version (dir, atelier_store_schema_version (), error);
}

AtelierStore *
atelier_store_ref (AtelierStore *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
atelier_store_unref (AtelierStore *self)
{
  if (self == NULL || !g_atomic_ref_count_dec (&self->ref_count))
    return;
  for (guint i = 0; i < self->readers->len; i++)
    sqlite3_close (g_ptr_array_index (self->readers, i));
  g_ptr_array_unref (self->readers);
  if (self->writer != NULL)
    sqlite3_close (self->writer);
  g_mutex_clear (&self->write_lock);
  g_mutex_clear (&self->pool_lock);
  g_free (self->dir);
  g_free (self->db_path);
  g_free (self->assets_dir);
  g_free (self);
}

const char *
atelier_store_get_dir (AtelierStore *self)
{
  return self->dir;
}

const char *
atelier_store_get_db_path (AtelierStore *self)
{
  return self->db_path;
}

sqlite3 *
_atelier_store_reader_take (AtelierStore *self, GError **error)
{
  sqlite3 *db = NULL;

  g_mutex_lock (&self->pool_lock);
  if (self->readers->len > 0)
    db = g_ptr_array_steal_index_fast (self->readers, self->readers->len - 1);
  g_mutex_unlock (&self->pool_lock);
  if (db != NULL)
    return db;
  db = open_connection (self->db_path, SQLITE_OPEN_READWRITE, error);
  if (db == NULL)
    return NULL;
  if (!configure (db, self->db_path, error) || !_atelier_store_exec (db, "PRAGMA query_only = ON", error))
    {
      sqlite3_close (db);
      return NULL;
    }
  return db;
}

void
_atelier_store_reader_give (AtelierStore *self, sqlite3 *db)
{
  g_mutex_lock (&self->pool_lock);
  g_ptr_array_add (self->readers, db);
  g_mutex_unlock (&self->pool_lock);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

/* A borrowed reader that goes back to the pool at the end of the scope. */
typedef struct
{
  AtelierStore *store;
  sqlite3 *db;
} Reader;

static void
reader_clear (Reader *r)
{
  if (r->db != NULL)
    _atelier_store_reader_give (r->store, r->db);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Reader, reader_clear)

static gboolean
prepare (sqlite3 *db, const char *sql, sqlite3_stmt **st, GError **error)
{
  int rc = sqlite3_prepare_v2 (db, sql, -1, st, NULL);

  if (rc != SQLITE_OK)
    {
      _atelier_store_set_db_error (error, db, rc, sqlite3_db_filename (db, "main"));
      return FALSE;
    }
  return TRUE;
}

static char *
dup_column (sqlite3_stmt *st, int col)
{
  return g_strdup ((const char *) sqlite3_column_text (st, col));
}

#define ITEM_COLUMNS                                                                                                   \
  "i.id, i.kind, i.prompt, i.negative, i.params, i.seed, i.model_id, m.path, m.hash, i.parent_id, i.created, "        \
  "i.favourite, i.missing, i.preview"

static AtelierItem *
item_from_row (sqlite3_stmt *st)
{
  AtelierItem *item = g_new0 (AtelierItem, 1);
  AtelierItemKind kind = ATELIER_ITEM_IMAGE;

  item->id = sqlite3_column_int64 (st, 0);
  atelier_item_kind_from_name ((const char *) sqlite3_column_text (st, 1), &kind);
  item->kind = kind;
  item->prompt = dup_column (st, 2);
  item->negative = dup_column (st, 3);
  item->params_json = dup_column (st, 4);
  item->has_seed = sqlite3_column_type (st, 5) != SQLITE_NULL;
  item->seed = sqlite3_column_int64 (st, 5);
  item->model_id = sqlite3_column_int64 (st, 6);
  item->model_path = dup_column (st, 7);
  item->model_hash = dup_column (st, 8);
  item->parent_id = sqlite3_column_int64 (st, 9);
  item->created_us = sqlite3_column_int64 (st, 10);
  item->favourite = sqlite3_column_int (st, 11) != 0;
  item->missing = sqlite3_column_int (st, 12) != 0;
  item->preview = dup_column (st, 13);
  return item;
}

/* Tags and assets of a loaded item. */
static gboolean
load_details (AtelierStore *self, sqlite3 *db, AtelierItem *item, GError **error)
{
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autoptr (GPtrArray) tags = g_ptr_array_new ();
  int rc;

  if (!prepare (db, "SELECT tag FROM item_tags WHERE item_id = ? ORDER BY tag", &st, error))
    return FALSE;
  sqlite3_bind_int64 (st, 1, item->id);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    g_ptr_array_add (tags, dup_column (st, 0));
  if (rc != SQLITE_DONE)
    goto fail;
  g_ptr_array_add (tags, NULL);
  item->tags = (GStrv) g_ptr_array_free (g_steal_pointer (&tags), FALSE);
  g_clear_pointer (&st, sqlite3_finalize);

  if (!prepare (db, "SELECT role, media_type, sha256, size FROM item_assets WHERE item_id = ? ORDER BY role", &st,
                error))
    return FALSE;
  sqlite3_bind_int64 (st, 1, item->id);
  item->assets = g_ptr_array_new_with_free_func (asset_free);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      AtelierAsset *a = g_new0 (AtelierAsset, 1);
      const char *sha = (const char *) sqlite3_column_text (st, 2);
      char sub[3] = { 0 };

      a->role = dup_column (st, 0);
      a->media_type = dup_column (st, 1);
      a->sha256 = g_strdup (sha != NULL ? sha : "");
      a->size = sqlite3_column_int64 (st, 3);
      memcpy (sub, a->sha256, MIN (strlen (a->sha256), 2));
      a->path = g_build_filename (self->assets_dir, sub, a->sha256, NULL);
      g_ptr_array_add (item->assets, a);
    }
  if (rc != SQLITE_DONE)
    goto fail;
  return TRUE;

fail:
  _atelier_store_set_db_error (error, db, rc, sqlite3_db_filename (db, "main"));
  return FALSE;
}

/* Steps `st` (which selects ITEM_COLUMNS) into items with their details. */
static GPtrArray *
collect_items (AtelierStore *self, sqlite3 *db, sqlite3_stmt *st, GError **error)
{
  g_autoptr (GPtrArray) items = g_ptr_array_new_with_free_func ((GDestroyNotify) atelier_item_free);
  int rc;

  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    g_ptr_array_add (items, item_from_row (st));
  if (rc != SQLITE_DONE)
    {
      _atelier_store_set_db_error (error, db, rc, sqlite3_db_filename (db, "main"));
      return NULL;
    }
  for (guint i = 0; i < items->len; i++)
    if (!load_details (self, db, g_ptr_array_index (items, i), error))
      return NULL;
  return g_steal_pointer (&items);
}

static AtelierItem *
get_on (AtelierStore *self, sqlite3 *db, gint64 id, GError **error)
{
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autoptr (GPtrArray) items = NULL;

  if (!prepare (db, "SELECT " ITEM_COLUMNS " FROM items i LEFT JOIN models m ON m.id = i.model_id WHERE i.id = ?",
                &st, error))
    return NULL;
  sqlite3_bind_int64 (st, 1, id);
  if ((items = collect_items (self, db, st, error)) == NULL)
    return NULL;
  if (items->len == 0)
    {
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND, "no history item %" G_GINT64_FORMAT,
                   id);
      return NULL;
    }
  return g_ptr_array_steal_index (items, 0);
}

AtelierItem *
atelier_store_get (AtelierStore *self, gint64 id, GError **error)
{
  g_auto (Reader) r = { self, _atelier_store_reader_take (self, error) };

  if (r.db == NULL)
    return NULL;
  return get_on (self, r.db, id, error);
}

gint64
atelier_store_count (AtelierStore *self, GError **error)
{
  g_auto (Reader) r = { self, _atelier_store_reader_take (self, error) };
  int n = 0, rc;

  if (r.db == NULL)
    return -1;
  if (!read_int (r.db, "SELECT count (*) FROM items", &n, &rc))
    {
      _atelier_store_set_db_error (error, r.db, rc, self->db_path);
      return -1;
    }
  return n;
}

static void
append_term (GString *out, const char *start, gsize len, gboolean prefix)
{
  gboolean has_word = FALSE;

  for (const char *p = start; p < start + len; p = g_utf8_next_char (p))
    has_word = has_word || g_unichar_isalnum (g_utf8_get_char (p));
  /* A term with no letter or digit would be an empty phrase to the tokenizer. */
  if (!has_word)
    return;
  if (out->len > 0)
    g_string_append_c (out, ' ');
  g_string_append_c (out, '"');
  for (const char *p = start; p < start + len; p++)
    {
      if (*p == '"')
        g_string_append_c (out, '"');
      g_string_append_c (out, *p);
    }
  g_string_append_c (out, '"');
  if (prefix)
    g_string_append_c (out, '*');
}

char *
_atelier_store_fts_query (const char *text, GError **error)
{
  g_autoptr (GString) out = g_string_new (NULL);
  const char *p = text;

  if (!g_utf8_validate (text, -1, NULL))
    {
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_QUERY, "the search text is not valid UTF-8");
      return NULL;
    }
  while (*p != '\0')
    {
      const char *start;
      gboolean prefix = FALSE;

      if (g_ascii_isspace (*p))
        {
          p++;
          continue;
        }
      if (*p == '"')
        {
          /* A phrase runs to the closing quote, or to the end when there is none. */
          start = ++p;
          while (*p != '\0' && *p != '"')
            p++;
          append_term (out, start, (gsize) (p - start), FALSE);
          if (*p == '"')
            p++;
          continue;
        }
      start = p;
      while (*p != '\0' && !g_ascii_isspace (*p) && *p != '"')
        p++;
      {
        const char *end = p;

        while (end > start && end[-1] == '*')
          {
            end--;
            prefix = TRUE;
          }
        append_term (out, start, (gsize) (end - start), prefix);
      }
    }
  if (out->len == 0)
    {
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_QUERY, "\"%s\" has no words to search for", text);
      return NULL;
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static GPtrArray *
find_on (AtelierStore *self, sqlite3 *db, const AtelierQuery *q, GError **error)
{
  g_autoptr (GString) sql = g_string_new ("SELECT " ITEM_COLUMNS " FROM ");
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autofree char *match = NULL;
  int n = 1;

  if (q->text != NULL && (match = _atelier_store_fts_query (q->text, error)) == NULL)
    return NULL;
  if (q->kind >= ATELIER_N_ITEM_KINDS)
    {
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID, "no item kind %d", q->kind);
      return NULL;
    }
  /* Fixed fragments only; every value is bound below in the same order. A search walks the
   * FTS index newest first (rowid DESC) and stops at the limit. */
  g_string_append (sql, match != NULL ? "items_fts f JOIN items i ON i.id = f.rowid "
                                        "LEFT JOIN models m ON m.id = i.model_id WHERE items_fts MATCH ?"
                                      : "items i LEFT JOIN models m ON m.id = i.model_id WHERE 1");
  if (q->kind >= 0)
    g_string_append (sql, " AND i.kind = ?");
  if (q->model_id > 0)
    g_string_append (sql, " AND i.model_id = ?");
  if (q->favourite_only)
    g_string_append (sql, " AND i.favourite = 1");
  if (q->created_from_us != 0)
    g_string_append (sql, " AND i.created >= ?");
  if (q->created_to_us != 0)
    g_string_append (sql, " AND i.created < ?");
  g_string_append (sql, match != NULL ? " ORDER BY f.rowid DESC" : " ORDER BY i.created DESC, i.id DESC");
  g_string_append (sql, " LIMIT ? OFFSET ?");
  if (!prepare (db, sql->str, &st, error))
    return NULL;
  if (match != NULL)
    sqlite3_bind_text (st, n++, match, -1, SQLITE_STATIC);
  if (q->kind >= 0)
    sqlite3_bind_text (st, n++, kind_names[q->kind], -1, SQLITE_STATIC);
  if (q->model_id > 0)
    sqlite3_bind_int64 (st, n++, q->model_id);
  if (q->created_from_us != 0)
    sqlite3_bind_int64 (st, n++, q->created_from_us);
  if (q->created_to_us != 0)
    sqlite3_bind_int64 (st, n++, q->created_to_us);
  sqlite3_bind_int64 (st, n++, q->limit > 0 ? q->limit : 50);
  sqlite3_bind_int64 (st, n++, q->offset);
  return collect_items (self, db, st, error);
}

GPtrArray *
atelier_store_find (AtelierStore *self, const AtelierQuery *query, GError **error)
{
  g_auto (Reader) r = { self, _atelier_store_reader_take (self, error) };

  if (r.db == NULL)
    return NULL;
  return find_on (self, r.db, query, error);
}

/* Ids from a recursive query with one bound id, then the items in that order. */
static GPtrArray *
items_by_query (AtelierStore *self, sqlite3 *db, const char *sql, gint64 id, gboolean with_depth, GError **error)
{
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autoptr (GPtrArray) items = g_ptr_array_new_with_free_func ((GDestroyNotify) atelier_item_free);
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr (GArray) depths = g_array_new (FALSE, FALSE, sizeof (guint));
  int rc;

  if (!prepare (db, sql, &st, error))
    return NULL;
  sqlite3_bind_int64 (st, 1, id);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      gint64 v = sqlite3_column_int64 (st, 0);
      guint d = with_depth ? (guint) sqlite3_column_int (st, 1) : 0;

      g_array_append_val (ids, v);
      g_array_append_val (depths, d);
    }
  if (rc != SQLITE_DONE)
    {
      _atelier_store_set_db_error (error, db, rc, self->db_path);
      return NULL;
    }
  for (guint i = 0; i < ids->len; i++)
    {
      AtelierItem *item = get_on (self, db, g_array_index (ids, gint64, i), error);

      if (item == NULL)
        return NULL;
      item->depth = g_array_index (depths, guint, i);
      g_ptr_array_add (items, item);
    }
  return g_steal_pointer (&items);
}

/* Depth guard: a parent cycle cannot be made through this API (a parent must exist before its
 * child), but a hand-edited file could hold one; the walk stops instead of looping. */
#define LINEAGE_SQL                                                                                                    \
  "WITH RECURSIVE up (id, parent_id, n) AS ("                                                                          \
  "  SELECT id, parent_id, 0 FROM items WHERE id = ?"                                                                  \
  "  UNION ALL SELECT i.id, i.parent_id, up.n + 1 FROM items i JOIN up ON i.id = up.parent_id WHERE up.n < 100000)"   \
  " SELECT id FROM up ORDER BY n"

GPtrArray *
atelier_store_lineage (AtelierStore *self, gint64 id, GError **error)
{
  g_auto (Reader) r = { self, _atelier_store_reader_take (self, error) };
  GPtrArray *items;

  if (r.db == NULL)
    return NULL;
  items = items_by_query (self, r.db, LINEAGE_SQL, id, FALSE, error);
  if (items != NULL && items->len == 0)
    {
      g_ptr_array_unref (items);
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND, "no history item %" G_GINT64_FORMAT,
                   id);
      return NULL;
    }
  return items;
}

GPtrArray *
atelier_store_children (AtelierStore *self, gint64 id, GError **error)
{
  g_auto (Reader) r = { self, _atelier_store_reader_take (self, error) };

  if (r.db == NULL)
    return NULL;
  return items_by_query (self, r.db, "SELECT id FROM items WHERE parent_id = ? ORDER BY id", id, FALSE, error);
}

static GPtrArray *
tree_on (AtelierStore *self, sqlite3 *db, gint64 id, GError **error)
{
  g_autoptr (sqlite3_stmt) st = NULL;
  gint64 root = 0;
  int rc;

  if (!prepare (db, LINEAGE_SQL " DESC LIMIT 1", &st, error))
    return NULL;
  sqlite3_bind_int64 (st, 1, id);
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    root = sqlite3_column_int64 (st, 0);
  else if (rc == SQLITE_DONE)
    {
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND, "no history item %" G_GINT64_FORMAT,
                   id);
      return NULL;
    }
  else
    {
      _atelier_store_set_db_error (error, db, rc, self->db_path);
      return NULL;
    }
  /* Depth first: ORDER BY depth DESC on the queue makes SQLite's recursive step a stack. */
  return items_by_query (self, db,
                         "WITH RECURSIVE down (id, depth) AS ("
                         "  SELECT ?, 0"
                         "  UNION ALL SELECT i.id, down.depth + 1 FROM items i JOIN down ON i.parent_id = down.id"
                         "  WHERE down.depth < 100000 ORDER BY 2 DESC)"
                         " SELECT id, depth FROM down",
                         root, TRUE, error);
}

GPtrArray *
atelier_store_tree (AtelierStore *self, gint64 id, GError **error)
{
  g_auto (Reader) r = { self, _atelier_store_reader_take (self, error) };

  if (r.db == NULL)
    return NULL;
  return tree_on (self, r.db, id, error);
}

gboolean
atelier_store_check_integrity (AtelierStore *self, GPtrArray *problems, GError **error)
{
  g_auto (Reader) r = { self, _atelier_store_reader_take (self, error) };
  gboolean ok = TRUE;
  int rc;

  if (r.db == NULL)
    return FALSE;
  {
    g_autoptr (sqlite3_stmt) st = NULL;

    if (!prepare (r.db, "PRAGMA integrity_check", &st, error))
      return FALSE;
    while ((rc = sqlite3_step (st)) == SQLITE_ROW)
      {
        const char *line = (const char *) sqlite3_column_text (st, 0);

        if (g_strcmp0 (line, "ok") != 0)
          {
            ok = FALSE;
            g_ptr_array_add (problems, g_strdup_printf ("%s: %s", self->db_path, line));
          }
      }
    if (rc != SQLITE_DONE)
      {
        _atelier_store_set_db_error (error, r.db, rc, self->db_path);
        return FALSE;
      }
  }
  {
    g_autoptr (sqlite3_stmt) st = NULL;

    if (!prepare (r.db, "PRAGMA foreign_key_check", &st, error))
      return FALSE;
    while ((rc = sqlite3_step (st)) == SQLITE_ROW)
      {
        ok = FALSE;
        g_ptr_array_add (problems, g_strdup_printf ("%s: row %lld of %s names a missing %s row", self->db_path,
                                                    (long long) sqlite3_column_int64 (st, 1),
                                                    sqlite3_column_text (st, 0), sqlite3_column_text (st, 2)));
      }
    if (rc != SQLITE_DONE)
      {
        _atelier_store_set_db_error (error, r.db, rc, self->db_path);
        return FALSE;
      }
  }
  return ok;
}

/* Moves `from` to `to`, failing with EEXIST instead of replacing. */
static int
rename_noreplace (const char *from, const char *to)
{
  if (link (from, to) != 0)
    return -1;
  return unlink (from);
}

gboolean
atelier_store_move_aside (const char *db_path, char **moved_to, GError **error)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *stamp = g_date_time_format (now, "%Y%m%d-%H%M%S");
  static const char *const sidecars[] = { "-wal", "-shm" };

  for (guint attempt = 0; attempt < 1000; attempt++)
    {
      g_autofree char *target = attempt == 0 ? g_strdup_printf ("%s.corrupt-%s", db_path, stamp)
                                             : g_strdup_printf ("%s.corrupt-%s-%u", db_path, stamp, attempt);
      int e;

      if (rename_noreplace (db_path, target) == 0)
        {
          for (guint i = 0; i < G_N_ELEMENTS (sidecars); i++)
            {
              g_autofree char *from = g_strconcat (db_path, sidecars[i], NULL);
              g_autofree char *to = g_strconcat (target, sidecars[i], NULL);

              if (rename_noreplace (from, to) != 0 && errno != ENOENT)
                {
                  e = errno;
                  g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_IO, "cannot move %s to %s: %s", from,
                               to, g_strerror (e));
                  return FALSE;
                }
            }
          if (moved_to != NULL)
            *moved_to = g_steal_pointer (&target);
          return TRUE;
        }
      e = errno;
      if (e != EEXIST)
        {
          g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_IO, "cannot move %s aside: %s", db_path,
                       g_strerror (e));
          return FALSE;
        }
    }
  g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_IO, "cannot move %s aside: too many earlier copies",
               db_path);
  return FALSE;
}

/* Async: each call copies what it needs into the task and runs the synchronous query on a
 * worker thread, which takes its own connection from the pool. */

typedef struct
{
  AtelierQuery query;
  char *text;
  gint64 id;
} TaskData;

static void
task_data_free (gpointer p)
{
  TaskData *d = p;

  g_free (d->text);
  g_free (d);
}

static GTask *
new_task (AtelierStore *self, gpointer tag, GCancellable *cancellable, GAsyncReadyCallback callback,
          gpointer user_data, TaskData **data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);

  *data = g_new0 (TaskData, 1);
  g_task_set_source_tag (task, tag);
  g_task_set_task_data (task, *data, task_data_free);
  /* The task holds the store until its worker is done. */
  g_object_set_data_full (G_OBJECT (task), "atelier-store", atelier_store_ref (self),
                          (GDestroyNotify) atelier_store_unref);
  return task;
}

static AtelierStore *
task_store (GTask *task)
{
  return g_object_get_data (G_OBJECT (task), "atelier-store");
}

static void
find_worker (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  TaskData *d = task_data;
  GError *error = NULL;
  GPtrArray *items = atelier_store_find (task_store (task), &d->query, &error);

  if (items == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, items, (GDestroyNotify) g_ptr_array_unref);
}

void
atelier_store_find_async (AtelierStore *self, const AtelierQuery *query, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data)
{
  TaskData *d;
  g_autoptr (GTask) task = new_task (self, atelier_store_find_async, cancellable, callback, user_data, &d);

  d->query = *query;
  d->text = g_strdup (query->text);
  d->query.text = d->text;
  g_task_run_in_thread (task, find_worker);
}

GPtrArray *
atelier_store_find_finish (AtelierStore *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == atelier_store_find_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
get_worker (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  TaskData *d = task_data;
  GError *error = NULL;
  AtelierItem *item = atelier_store_get (task_store (task), d->id, &error);

  if (item == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, item, (GDestroyNotify) atelier_item_free);
}

void
atelier_store_get_async (AtelierStore *self, gint64 id, GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data)
{
  TaskData *d;
  g_autoptr (GTask) task = new_task (self, atelier_store_get_async, cancellable, callback, user_data, &d);

  d->id = id;
  g_task_run_in_thread (task, get_worker);
}

AtelierItem *
atelier_store_get_finish (AtelierStore *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == atelier_store_get_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
tree_worker (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  TaskData *d = task_data;
  GError *error = NULL;
  GPtrArray *items = atelier_store_tree (task_store (task), d->id, &error);

  if (items == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, items, (GDestroyNotify) g_ptr_array_unref);
}

void
atelier_store_tree_async (AtelierStore *self, gint64 id, GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data)
{
  TaskData *d;
  g_autoptr (GTask) task = new_task (self, atelier_store_tree_async, cancellable, callback, user_data, &d);

  d->id = id;
  g_task_run_in_thread (task, tree_worker);
}

GPtrArray *
atelier_store_tree_finish (AtelierStore *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == atelier_store_tree_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

typedef struct
{
  AtelierStore *store;
  AtelierStoreReport report;
} Opened;

static void
opened_free (gpointer p)
{
  Opened *o = p;

  g_clear_pointer (&o->store, atelier_store_unref);
  atelier_store_report_clear (&o->report);
  g_free (o);
}

static void
open_worker (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  TaskData *d = task_data;
  GError *error = NULL;
  Opened *o = g_new0 (Opened, 1);

  o->store = atelier_store_open (d->text, &error);
  if (o->store == NULL || !atelier_store_reconcile (o->store, FALSE, &o->report, &error))
    {
      opened_free (o);
      g_task_return_error (task, error);
      return;
    }
  g_task_return_pointer (task, o, opened_free);
}

void
atelier_store_open_async (const char *dir, GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  TaskData *d = g_new0 (TaskData, 1);

  d->text = g_strdup (dir);
  g_task_set_source_tag (task, atelier_store_open_async);
  g_task_set_task_data (task, d, task_data_free);
  g_task_run_in_thread (task, open_worker);
}

AtelierStore *
atelier_store_open_finish (GAsyncResult *result, AtelierStoreReport *report, GError **error)
{
  Opened *o;
  AtelierStore *store;

  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == atelier_store_open_async, NULL);
  if ((o = g_task_propagate_pointer (G_TASK (result), error)) == NULL)
    return NULL;
  store = g_steal_pointer (&o->store);
  if (report != NULL)
    {
      *report = o->report;
      memset (&o->report, 0, sizeof o->report);
    }
  opened_free (o);
  return store;
}
