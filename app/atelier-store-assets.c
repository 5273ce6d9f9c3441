/* atelier-store-assets.c: the history store's writes: saving an item with its asset files,
 * tags, favourites, deleting, the models table, and startup reconciliation.
 *
 * The order that makes a crash harmless (DESIGN.md, "App: the history store"):
 *   1. each asset is written to `.tmp-<pid>-<random>` in its folder, fsynced, renamed to its
 *      SHA-256, and the folder fsynced;
 *   2. only then BEGIN IMMEDIATE ... COMMIT inserts the rows (synchronous=FULL).
 * A crash before 2 commits leaves at most an orphan file or a temporary one, which
 * reconciliation removes; a crash after it leaves a row whose files are already durable.
 *
 * Traps:
 * - Another process's reconciliation may remove a file this process wrote in step 1 (it has no
 *   row yet). Reconciliation removes files only inside its own write transaction, so a save
 *   re-checks its files inside its transaction and writes any that went missing.
 * - Likewise a delete removes unreferenced files inside a write transaction, never after its
 *   lock is gone, or a concurrent save of the same content could lose its file.
 * - A temporary file may belong to a live writer in another process: it is removed only when
 *   the pid in its name is gone or it is an hour old. */
#include "config.h"

#include "atelier-store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PREVIEW_CHARS 200
#define MAX_TAG_BYTES 200
#define STALE_TEMP_US ((gint64) G_USEC_PER_SEC * 3600)

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

static char *
asset_path (AtelierStore *self, const char *sha)
{
  char sub[3] = { sha[0], sha[1], 0 };

  return g_build_filename (self->assets_dir, sub, sha, NULL);
}

static gboolean
fsync_dir (const char *path, GError **error)
{
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int e;

  if (fd >= 0 && fsync (fd) == 0)
    {
      close (fd);
      return TRUE;
    }
  e = errno;
  if (fd >= 0)
    close (fd);
  g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_IO, "cannot sync folder %s: %s", path,
               g_strerror (e));
  return FALSE;
}

static void
set_errno_error (GError **error, int e, const char *what, const char *path)
{
  gboolean full = e == ENOSPC || e == EFBIG || e == EDQUOT;

  g_set_error (error, ATELIER_STORE_ERROR, full ? ATELIER_STORE_ERROR_FULL : ATELIER_STORE_ERROR_IO, "%s %s: %s",
               what, path, g_strerror (e));
}

static gboolean
write_all (int fd, const guint8 *data, gsize len, const char *path, GError **error)
{
  while (len > 0)
    {
      ssize_t n = write (fd, data, MIN (len, (gsize) 1 << 30));

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          set_errno_error (error, n < 0 ? errno : ENOSPC, "no room to write", path);
          return FALSE;
        }
      data += n;
      len -= (gsize) n;
    }
  return TRUE;
}

/* Step 1 of a save: the file under its content's name, durable. `created` tells whether this
 * call made it (and so may remove it again if the row never commits). */
static gboolean
write_asset (AtelierStore *self, const char *sha, GBytes *data, gboolean *created, GError **error)
{
  char sub[3] = { sha[0], sha[1], 0 };
  g_autofree char *dir = g_build_filename (self->assets_dir, sub, NULL);
  g_autofree char *path = g_build_filename (dir, sha, NULL);
  g_autofree char *tmp = NULL;
  gsize len;
  const guint8 *bytes = g_bytes_get_data (data, &len);
  int fd;

  *created = FALSE;
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      if (g_mkdir (dir, 0700) != 0 && errno != EEXIST)
        {
          set_errno_error (error, errno, "cannot create", dir);
          return FALSE;
        }
      if (!fsync_dir (self->assets_dir, error))
        return FALSE;
    }
  if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
    /* The same content is already stored; its rename may not be durable yet if its writer died
     * between rename and folder sync. */
    return fsync_dir (dir, error);

  tmp = g_strdup_printf ("%s/" ATELIER_STORE_TMP_PREFIX "%d-%08x%08x", dir, (int) getpid (), g_random_int (),
                         g_random_int ());
  fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      set_errno_error (error, errno, "cannot create", tmp);
      return FALSE;
    }
  if (!write_all (fd, bytes, len, tmp, error))
    goto fail;
  if (fsync (fd) != 0)
    {
      set_errno_error (error, errno, "cannot sync", tmp);
      goto fail;
    }
  if (close (fd) != 0)
    {
      fd = -1;
      set_errno_error (error, errno, "cannot write", tmp);
      goto fail;
    }
  fd = -1;
  if (rename (tmp, path) != 0)
    {
      set_errno_error (error, errno, "cannot rename", tmp);
      goto fail;
    }
  *created = TRUE;
  return fsync_dir (dir, error);

fail:
  if (fd >= 0)
    close (fd);
  g_unlink (tmp);
  return FALSE;
}

/* Removes the files of `shas` that no row names any more. Takes the write transaction itself
 * (see the traps); on failure the files stay for reconciliation. Call with write_lock held. */
static void
remove_unreferenced (AtelierStore *self, GPtrArray *shas)
{
  g_autoptr (sqlite3_stmt) st = NULL;

  if (shas->len == 0 || !_atelier_store_exec (self->writer, "BEGIN IMMEDIATE", NULL))
    return;
  if (sqlite3_prepare_v2 (self->writer, "SELECT count (*) FROM item_assets WHERE sha256 = ?", -1, &st, NULL)
      == SQLITE_OK)
    for (guint i = 0; i < shas->len; i++)
      {
        const char *sha = g_ptr_array_index (shas, i);

        sqlite3_reset (st);
        sqlite3_bind_text (st, 1, sha, -1, SQLITE_STATIC);
        if (sqlite3_step (st) == SQLITE_ROW && sqlite3_column_int64 (st, 0) == 0)
          {
            g_autofree char *path = asset_path (self, sha);

            g_unlink (path);
          }
      }
  g_clear_pointer (&st, sqlite3_finalize);
  sqlite3_exec (self->writer, "COMMIT", NULL, NULL, NULL);
}

static gboolean
check_text (const char *s, const char *what, GError **error)
{
  if (s != NULL && !g_utf8_validate (s, -1, NULL))
    {
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID, "the %s is not valid UTF-8", what);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_tag (const char *tag, GError **error)
{
  if (!check_text (tag, "tag", error))
    return FALSE;
  if (tag == NULL || tag[0] == '\0' || strlen (tag) > MAX_TAG_BYTES || g_ascii_isspace (tag[0])
      || g_ascii_isspace (tag[strlen (tag) - 1]))
    {
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID,
                   "a tag is 1 to %d bytes without spaces at its ends: \"%s\"", MAX_TAG_BYTES, tag ? tag : "");
      return FALSE;
    }
  for (const char *p = tag; *p != '\0'; p = g_utf8_next_char (p))
    if (g_unichar_iscntrl (g_utf8_get_char (p)))
      {
        g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID, "a tag holds no control characters");
        return FALSE;
      }
  return TRUE;
}

static gboolean
check_item (const AtelierItemNew *item, GError **error)
{
  if ((guint) item->kind >= ATELIER_N_ITEM_KINDS)
    {
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID, "no item kind %d", (int) item->kind);
      return FALSE;
    }
  if (!check_text (item->prompt, "prompt", error) || !check_text (item->negative, "negative prompt", error)
      || !check_text (item->text, "text", error) || !check_text (item->preview, "preview", error))
    return FALSE;
  if (item->params_json != NULL)
    {
      g_autoptr (JsonParser) parser = json_parser_new ();
      g_autoptr (GError) e = NULL;

      if (!json_parser_load_from_data (parser, item->params_json, -1, &e)
          || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        {
          g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID,
                       "the parameters are not a JSON object%s%s", e != NULL ? ": " : "", e != NULL ? e->message : "");
          return FALSE;
        }
    }
  for (guint i = 0; item->tags != NULL && item->tags[i] != NULL; i++)
    if (!check_tag (item->tags[i], error))
      return FALSE;
  for (guint i = 0; i < item->n_assets; i++)
    {
      if (item->assets[i].role == NULL || item->assets[i].media_type == NULL || item->assets[i].data == NULL)
        {
          g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID,
                       "asset %u needs a role, a media type and data", i);
          return FALSE;
        }
      for (guint j = 0; j < i; j++)
        if (strcmp (item->assets[i].role, item->assets[j].role) == 0)
          {
            g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID, "two assets with the role %s",
                         item->assets[i].role);
            return FALSE;
          }
    }
  return TRUE;
}

/* Prepared once per transaction: the benchmark inserts 100,000 rows through these. */
typedef struct
{
  sqlite3_stmt *item, *tag, *asset, *exists;
} InsertStmts;

static void
insert_stmts_clear (InsertStmts *s)
{
  sqlite3_finalize (s->item);
  sqlite3_finalize (s->tag);
  sqlite3_finalize (s->asset);
  sqlite3_finalize (s->exists);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (InsertStmts, insert_stmts_clear)

static gboolean
insert_stmts_prepare (sqlite3 *db, InsertStmts *s, GError **error)
{
  int rc = sqlite3_prepare_v2 (db,
                               "INSERT INTO items (kind, prompt, negative, params, seed, model_id, parent_id, created,"
                               " text, preview) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               -1, &s->item, NULL);

  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2 (db, "INSERT OR IGNORE INTO item_tags (item_id, tag) VALUES (?, ?)", -1, &s->tag, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2 (db,
                             "INSERT INTO item_assets (item_id, role, media_type, sha256, size) VALUES (?, ?, ?, ?, ?)",
                             -1, &s->asset, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2 (db, "SELECT 1 FROM items WHERE id = ?", -1, &s->exists, NULL);
  if (rc != SQLITE_OK)
    {
      _atelier_store_set_db_error (error, db, rc, sqlite3_db_filename (db, "main"));
      return FALSE;
    }
  return TRUE;
}

static gboolean
item_exists (sqlite3 *db, sqlite3_stmt *exists, gint64 id, gboolean *found, GError **error)
{
  int rc;

  sqlite3_reset (exists);
  sqlite3_bind_int64 (exists, 1, id);
  rc = sqlite3_step (exists);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    {
      _atelier_store_set_db_error (error, db, rc, sqlite3_db_filename (db, "main"));
      return FALSE;
    }
  *found = rc == SQLITE_ROW;
  return TRUE;
}

static gboolean
step_done (sqlite3 *db, sqlite3_stmt *st, GError **error)
{
  int rc = sqlite3_step (st);

  sqlite3_reset (st);
  if (rc != SQLITE_DONE)
    {
      _atelier_store_set_db_error (error, db, rc, sqlite3_db_filename (db, "main"));
      return FALSE;
    }
  return TRUE;
}

static void
bind_text_or_null (sqlite3_stmt *st, int i, const char *s)
{
  if (s != NULL)
    sqlite3_bind_text (st, i, s, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null (st, i);
}

/* The rows of one item, inside the caller's transaction. `shas` holds the assets' hashes. */
static gint64
insert_item (sqlite3 *db, InsertStmts *s, const AtelierItemNew *item, char **shas, gint64 created, GError **error)
{
  g_autofree char *preview = NULL;
  gint64 id;
  gboolean found;

  if (item->parent_id != 0)
    {
      if (!item_exists (db, s->exists, item->parent_id, &found, error))
        return 0;
      if (!found)
        {
          g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND,
                       "the parent, history item %" G_GINT64_FORMAT ", does not exist", item->parent_id);
          return 0;
        }
    }
  if (item->preview != NULL)
    preview = g_strdup (item->preview);
  else if (item->text != NULL)
    preview = g_utf8_substring (item->text, 0, MIN (g_utf8_strlen (item->text, -1), PREVIEW_CHARS));
  sqlite3_bind_text (s->item, 1, atelier_item_kind_name (item->kind), -1, SQLITE_STATIC);
  sqlite3_bind_text (s->item, 2, item->prompt != NULL ? item->prompt : "", -1, SQLITE_STATIC);
  sqlite3_bind_text (s->item, 3, item->negative != NULL ? item->negative : "", -1, SQLITE_STATIC);
  sqlite3_bind_text (s->item, 4, item->params_json != NULL ? item->params_json : "{}", -1, SQLITE_STATIC);
  if (item->has_seed)
    sqlite3_bind_int64 (s->item, 5, item->seed);
  else
    sqlite3_bind_null (s->item, 5);
  if (item->model_id > 0)
    sqlite3_bind_int64 (s->item, 6, item->model_id);
  else
    sqlite3_bind_null (s->item, 6);
  if (item->parent_id > 0)
    sqlite3_bind_int64 (s->item, 7, item->parent_id);
  else
    sqlite3_bind_null (s->item, 7);
  sqlite3_bind_int64 (s->item, 8, created);
  bind_text_or_null (s->item, 9, item->text);
  bind_text_or_null (s->item, 10, preview);
  if (!step_done (db, s->item, error))
    return 0;
  id = sqlite3_last_insert_rowid (db);
  for (guint i = 0; item->tags != NULL && item->tags[i] != NULL; i++)
    {
      sqlite3_bind_int64 (s->tag, 1, id);
      sqlite3_bind_text (s->tag, 2, item->tags[i], -1, SQLITE_STATIC);
      if (!step_done (db, s->tag, error))
        return 0;
    }
  for (guint i = 0; i < item->n_assets; i++)
    {
      sqlite3_bind_int64 (s->asset, 1, id);
      sqlite3_bind_text (s->asset, 2, item->assets[i].role, -1, SQLITE_STATIC);
      sqlite3_bind_text (s->asset, 3, item->assets[i].media_type, -1, SQLITE_STATIC);
      sqlite3_bind_text (s->asset, 4, shas[i], -1, SQLITE_STATIC);
      sqlite3_bind_int64 (s->asset, 5, (gint64) g_bytes_get_size (item->assets[i].data));
      if (!step_done (db, s->asset, error))
        return 0;
    }
  return id;
}

static gint64
save_locked (AtelierStore *self, const AtelierItemNew *item, char **shas, GPtrArray *created, GError **error)
{
  g_auto (InsertStmts) s = { 0 };
  gint64 id;

  for (guint i = 0; i < item->n_assets; i++)
    {
      gboolean made;

      if (!write_asset (self, shas[i], item->assets[i].data, &made, error))
        return 0;
      if (made)
        g_ptr_array_add (created, g_strdup (shas[i]));
    }
  if (!_atelier_store_exec (self->writer, "BEGIN IMMEDIATE", error))
    return 0;
  /* Under the lock: another process's reconciliation may have taken a file written above. */
  for (guint i = 0; i < item->n_assets; i++)
    {
      g_autofree char *path = asset_path (self, shas[i]);
      gboolean made;

      if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
        {
          if (!write_asset (self, shas[i], item->assets[i].data, &made, error))
            goto fail;
          if (made)
            g_ptr_array_add (created, g_strdup (shas[i]));
        }
    }
  if (item->model_id > 0)
    {
      sqlite3_stmt *st = NULL;
      gboolean found;

      sqlite3_prepare_v2 (self->writer, "SELECT 1 FROM models WHERE id = ?", -1, &st, NULL);
      sqlite3_bind_int64 (st, 1, item->model_id);
      found = sqlite3_step (st) == SQLITE_ROW;
      sqlite3_finalize (st);
      if (!found)
        {
          g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND, "no model row %" G_GINT64_FORMAT,
                       item->model_id);
          goto fail;
        }
    }
  if (!insert_stmts_prepare (self->writer, &s, error)
      || (id = insert_item (self->writer, &s, item, shas, g_get_real_time (), error)) == 0)
    goto fail;
  insert_stmts_clear (&s);
  memset (&s, 0, sizeof s);
  if (!_atelier_store_exec (self->writer, "COMMIT", error))
    goto fail;
  return id;

fail:
  insert_stmts_clear (&s);
  memset (&s, 0, sizeof s);
  sqlite3_exec (self->writer, "ROLLBACK", NULL, NULL, NULL);
  return 0;
}

gint64
atelier_store_save (AtelierStore *self, const AtelierItemNew *item, GError **error)
{
  g_autoptr (GPtrArray) created = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) shas = NULL;
  gint64 id;

  if (!check_item (item, error))
    return 0;
  shas = g_new0 (char *, item->n_assets + 1);
  for (guint i = 0; i < item->n_assets; i++)
    shas[i] = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, item->assets[i].data);
  g_mutex_lock (&self->write_lock);
  id = save_locked (self, item, shas, created, error);
  if (id == 0)
    remove_unreferenced (self, created);
  g_mutex_unlock (&self->write_lock);
  return id;
}

gboolean
_atelier_store_insert_batch (AtelierStore *self, guint n, AtelierStoreFillFunc fill, gpointer user_data, GArray *ids,
                             GError **error)
{
  g_auto (InsertStmts) s = { 0 };
  gboolean ok = FALSE;

  g_mutex_lock (&self->write_lock);
  if (!_atelier_store_exec (self->writer, "BEGIN IMMEDIATE", error))
    goto out;
  if (!insert_stmts_prepare (self->writer, &s, error))
    goto rollback;
  for (guint i = 0; i < n; i++)
    {
      AtelierItemNew item = { 0 };
      gint64 id;

      fill (i, &item, user_data);
      if (item.n_assets > 0 || !check_item (&item, error))
        {
          g_set_error_literal (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID,
                               "a batch item is invalid or has assets");
          goto rollback;
        }
      if ((id = insert_item (self->writer, &s, &item, NULL, g_get_real_time (), error)) == 0)
        goto rollback;
      if (ids != NULL)
        g_array_append_val (ids, id);
    }
  insert_stmts_clear (&s);
  memset (&s, 0, sizeof s);
  ok = _atelier_store_exec (self->writer, "COMMIT", error);
  if (ok)
    goto out;

rollback:
  insert_stmts_clear (&s);
  memset (&s, 0, sizeof s);
  sqlite3_exec (self->writer, "ROLLBACK", NULL, NULL, NULL);
out:
  g_mutex_unlock (&self->write_lock);
  return ok;
}

/* Runs `sql` (one id bound, then optionally one more value) in a write transaction and fails
 * with NOT_FOUND when it changed no row. */
static gboolean
update_item (AtelierStore *self, const char *sql, gint64 id, const char *text, gint64 value, GError **error)
{
  sqlite3_stmt *st = NULL;
  int rc;

  g_mutex_lock (&self->write_lock);
  rc = sqlite3_prepare_v2 (self->writer, sql, -1, &st, NULL);
  if (rc == SQLITE_OK)
    {
      sqlite3_bind_int64 (st, 1, id);
      if (text != NULL)
        sqlite3_bind_text (st, 2, text, -1, SQLITE_STATIC);
      else
        sqlite3_bind_int64 (st, 2, value);
      rc = sqlite3_step (st);
    }
  sqlite3_finalize (st);
  if (rc != SQLITE_DONE)
    _atelier_store_set_db_error (error, self->writer, rc, self->db_path);
  else if (sqlite3_changes (self->writer) == 0)
    {
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND, "no history item %" G_GINT64_FORMAT,
                   id);
      rc = SQLITE_NOTFOUND;
    }
  g_mutex_unlock (&self->write_lock);
  return rc == SQLITE_DONE;
}

gboolean
atelier_store_add_tag (AtelierStore *self, gint64 id, const char *tag, GError **error)
{
  g_autoptr (GError) e = NULL;

  if (!check_tag (tag, error))
    return FALSE;
  /* INSERT ... SELECT: nothing is inserted (no change) when the item does not exist; a tag the
   * item already has is no change either, so look again to tell the two apart. */
  if (update_item (self, "INSERT OR IGNORE INTO item_tags (item_id, tag) SELECT id, ?2 FROM items WHERE id = ?1", id,
                   tag, 0, &e))
    return TRUE;
  if (g_error_matches (e, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND))
    {
      g_autoptr (AtelierItem) item = atelier_store_get (self, id, error);

      return item != NULL;
    }
  g_propagate_error (error, g_steal_pointer (&e));
  return FALSE;
}

gboolean
atelier_store_set_favourite (AtelierStore *self, gint64 id, gboolean favourite, GError **error)
{
  g_autoptr (GError) e = NULL;

  if (update_item (self, "UPDATE items SET favourite = ?2 WHERE id = ?1 AND favourite != ?2", id, NULL,
                   favourite ? 1 : 0, &e))
    return TRUE;
  if (g_error_matches (e, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND))
    {
      g_autoptr (AtelierItem) item = atelier_store_get (self, id, error);

      return item != NULL;
    }
  g_propagate_error (error, g_steal_pointer (&e));
  return FALSE;
}

gboolean
atelier_store_delete (AtelierStore *self, gint64 id, GError **error)
{
  g_autoptr (GPtrArray) shas = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (sqlite3_stmt) st = NULL;
  gboolean ok = FALSE;
  int rc;

  g_mutex_lock (&self->write_lock);
  if (!_atelier_store_exec (self->writer, "BEGIN IMMEDIATE", error))
    goto out;
  rc = sqlite3_prepare_v2 (self->writer, "SELECT sha256 FROM item_assets WHERE item_id = ?", -1, &st, NULL);
  if (rc == SQLITE_OK)
    {
      sqlite3_bind_int64 (st, 1, id);
      while ((rc = sqlite3_step (st)) == SQLITE_ROW)
        g_ptr_array_add (shas, g_strdup ((const char *) sqlite3_column_text (st, 0)));
      g_clear_pointer (&st, sqlite3_finalize);
    }
  if (rc == SQLITE_DONE && (rc = sqlite3_prepare_v2 (self->writer, "DELETE FROM items WHERE id = ?", -1, &st, NULL))
                               == SQLITE_OK)
    {
      sqlite3_bind_int64 (st, 1, id);
      rc = sqlite3_step (st);
      g_clear_pointer (&st, sqlite3_finalize);
    }
  if (rc != SQLITE_DONE)
    _atelier_store_set_db_error (error, self->writer, rc, self->db_path);
  else if (sqlite3_changes (self->writer) == 0)
    g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND, "no history item %" G_GINT64_FORMAT, id);
  else
    ok = _atelier_store_exec (self->writer, "COMMIT", error);
  if (!ok)
    {
      sqlite3_exec (self->writer, "ROLLBACK", NULL, NULL, NULL);
      goto out;
    }
  remove_unreferenced (self, shas);
out:
  g_mutex_unlock (&self->write_lock);
  return ok;
}

char *
atelier_store_hash_model_file (const char *path, gint64 *size, GError **error)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree guint8 *buf = g_malloc (1 << 20);
  struct stat sb;
  guint64 le, spans[2][2];
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd < 0 || fstat (fd, &sb) != 0)
    {
      int e = errno;

      if (fd >= 0)
        close (fd);
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_IO, "cannot read %s: %s", path, g_strerror (e));
      return NULL;
    }
  le = GUINT64_TO_LE ((guint64) sb.st_size);
  g_checksum_update (sum, (const guchar *) &le, sizeof le);
  /* The first MiB and the last MiB, not overlapping. */
  spans[0][0] = 0;
  spans[0][1] = MIN ((guint64) sb.st_size, 1u << 20);
  spans[1][0] = MAX ((guint64) sb.st_size, 2u << 20) - (1u << 20);
  spans[1][1] = (guint64) sb.st_size > spans[1][0] ? (guint64) sb.st_size - spans[1][0] : 0;
  for (guint s = 0; s < 2; s++)
    {
      guint64 done = 0;

      while (done < spans[s][1])
        {
          ssize_t n = pread (fd, buf, spans[s][1] - done, (off_t) (spans[s][0] + done));

          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            {
              int e = n < 0 ? errno : EIO;

              close (fd);
              g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_IO, "cannot read %s: %s", path,
                           g_strerror (e));
              return NULL;
            }
          g_checksum_update (sum, buf, n);
          done += (guint64) n;
        }
    }
  close (fd);
  if (size != NULL)
    *size = sb.st_size;
  return g_strconcat ("sha256-edges:", g_checksum_get_string (sum), NULL);
}

gint64
atelier_store_ensure_model (AtelierStore *self, const char *path, const char *kind, const char *family, gint64 size,
                            const char *hash, GError **error)
{
  g_autoptr (sqlite3_stmt) st = NULL;
  gint64 id = 0;
  int rc;

  if (!check_text (path, "model path", error) || !check_text (kind, "model kind", error)
      || !check_text (family, "model family", error))
    return 0;
  g_mutex_lock (&self->write_lock);
  if (!_atelier_store_exec (self->writer, "BEGIN IMMEDIATE", error))
    goto out;
  rc = sqlite3_prepare_v2 (self->writer, "SELECT id FROM models WHERE path = ? AND hash = ?", -1, &st, NULL);
  if (rc == SQLITE_OK)
    {
      sqlite3_bind_text (st, 1, path, -1, SQLITE_STATIC);
      sqlite3_bind_text (st, 2, hash != NULL ? hash : "", -1, SQLITE_STATIC);
      rc = sqlite3_step (st);
      if (rc == SQLITE_ROW)
        id = sqlite3_column_int64 (st, 0);
      g_clear_pointer (&st, sqlite3_finalize);
    }
  if (rc == SQLITE_DONE
      && (rc = sqlite3_prepare_v2 (self->writer,
                                   "INSERT INTO models (path, kind, family, size, hash) VALUES (?, ?, ?, ?, ?)", -1,
                                   &st, NULL))
             == SQLITE_OK)
    {
      sqlite3_bind_text (st, 1, path, -1, SQLITE_STATIC);
      bind_text_or_null (st, 2, kind);
      bind_text_or_null (st, 3, family);
      sqlite3_bind_int64 (st, 4, size);
      sqlite3_bind_text (st, 5, hash != NULL ? hash : "", -1, SQLITE_STATIC);
      if ((rc = sqlite3_step (st)) == SQLITE_DONE)
        id = sqlite3_last_insert_rowid (self->writer);
    }
  if ((rc == SQLITE_DONE || rc == SQLITE_ROW) && _atelier_store_exec (self->writer, "COMMIT", error))
    goto out;
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    _atelier_store_set_db_error (error, self->writer, rc, self->db_path);
  sqlite3_exec (self->writer, "ROLLBACK", NULL, NULL, NULL);
  id = 0;
out:
  g_mutex_unlock (&self->write_lock);
  return id;
}

static gboolean
writer_alive (const char *name)
{
  gint64 pid = 0;
  const char *p = name + strlen (ATELIER_STORE_TMP_PREFIX);
  char *end = NULL;

  pid = g_ascii_strtoll (p, &end, 10);
  if (end == p || *end != '-' || pid <= 0 || pid > G_MAXINT)
    return FALSE;
  /* This process holds the write lock: none of its own temporary files is in flight. */
  if (pid == getpid ())
    return FALSE;
  return kill ((pid_t) pid, 0) == 0 || errno == EPERM;
}

static gboolean
content_matches (const char *path, const char *sha)
{
  g_autoptr (GMappedFile) map = g_mapped_file_new (path, FALSE, NULL);
  g_autoptr (GBytes) bytes = NULL;
  g_autofree char *got = NULL;

  if (map == NULL)
    return FALSE;
  bytes = g_mapped_file_get_bytes (map);
  got = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, bytes);
  return g_strcmp0 (got, sha) == 0;
}

/* Walks assets/<2 hex>/: removes orphans and dead writers' temporary files, fills `present`. */
static void
walk_assets (AtelierStore *self, GHashTable *referenced, GHashTable *present, gboolean verify,
             AtelierStoreReport *report)
{
  g_autoptr (GDir) top = g_dir_open (self->assets_dir, 0, NULL);
  const char *sub;

  while (top != NULL && (sub = g_dir_read_name (top)) != NULL)
    {
      g_autofree char *dir_path = g_build_filename (self->assets_dir, sub, NULL);
      g_autoptr (GDir) dir = NULL;
      const char *name;

      if (strlen (sub) != 2 || (dir = g_dir_open (dir_path, 0, NULL)) == NULL)
        continue;
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *path = g_build_filename (dir_path, name, NULL);
          GStatBuf sb;

          if (g_lstat (path, &sb) != 0 || !S_ISREG (sb.st_mode))
            continue;
          if (g_str_has_prefix (name, ATELIER_STORE_TMP_PREFIX))
            {
              if (!writer_alive (name) || g_get_real_time () - (gint64) sb.st_mtime * G_USEC_PER_SEC > STALE_TEMP_US)
                {
                  if (g_unlink (path) == 0)
                    report->n_temps_removed++;
                }
              continue;
            }
          if (!g_hash_table_contains (referenced, name) || strncmp (name, sub, 2) != 0)
            {
              if (g_unlink (path) == 0)
                report->n_orphans_removed++;
              continue;
            }
          if (verify && !content_matches (path, name))
            {
              g_ptr_array_add (report->problems,
                               g_strdup_printf ("%s: its content does not match its name (damaged)", path));
              continue;
            }
          g_hash_table_add (present, g_strdup (name));
        }
    }
}

static gboolean
reconcile_locked (AtelierStore *self, gboolean verify, AtelierStoreReport *report, GError **error)
{
  g_autoptr (GHashTable) referenced = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) present = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) missing = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autoptr (GArray) was_missing = g_array_new (FALSE, FALSE, sizeof (gint64));
  sqlite3 *db = self->writer;
  int rc;

  if (sqlite3_prepare_v2 (db, "SELECT item_id, role, sha256 FROM item_assets ORDER BY item_id", -1, &st, NULL)
      != SQLITE_OK)
    goto db_fail;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    g_hash_table_add (referenced, g_strdup ((const char *) sqlite3_column_text (st, 2)));
  if (rc != SQLITE_DONE)
    goto db_fail;
  walk_assets (self, referenced, present, verify, report);

  sqlite3_reset (st);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      const char *sha = (const char *) sqlite3_column_text (st, 2);
      gint64 id = sqlite3_column_int64 (st, 0);

      if (!g_hash_table_contains (present, sha))
        {
          g_autofree char *path = asset_path (self, sha);

          g_ptr_array_add (report->problems,
                           g_strdup_printf ("item %" G_GINT64_FORMAT ": its %s asset %s is missing", id,
                                            sqlite3_column_text (st, 1), path));
          if (!g_hash_table_contains (missing, &id))
            {
              g_hash_table_add (missing, g_memdup2 (&id, sizeof id));
              g_array_append_val (report->missing_items, id);
            }
        }
    }
  if (rc != SQLITE_DONE)
    goto db_fail;
  g_clear_pointer (&st, sqlite3_finalize);

  /* Mark what is gone; unmark what came back. Rows that do not change are not written. */
  if (sqlite3_prepare_v2 (db, "SELECT id FROM items WHERE missing = 1", -1, &st, NULL) != SQLITE_OK)
    goto db_fail;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      gint64 id = sqlite3_column_int64 (st, 0);

      g_array_append_val (was_missing, id);
    }
  if (rc != SQLITE_DONE)
    goto db_fail;
  g_clear_pointer (&st, sqlite3_finalize);
  if (sqlite3_prepare_v2 (db, "UPDATE items SET missing = ?2 WHERE id = ?1 AND missing != ?2", -1, &st, NULL)
      != SQLITE_OK)
    goto db_fail;
  for (guint i = 0; i < report->missing_items->len; i++)
    {
      sqlite3_reset (st);
      sqlite3_bind_int64 (st, 1, g_array_index (report->missing_items, gint64, i));
      sqlite3_bind_int (st, 2, 1);
      if (sqlite3_step (st) != SQLITE_DONE)
        goto db_fail;
    }
  for (guint i = 0; i < was_missing->len; i++)
    if (!g_hash_table_contains (missing, &g_array_index (was_missing, gint64, i)))
      {
        sqlite3_reset (st);
        sqlite3_bind_int64 (st, 1, g_array_index (was_missing, gint64, i));
        sqlite3_bind_int (st, 2, 0);
        if (sqlite3_step (st) != SQLITE_DONE)
          goto db_fail;
        report->n_found_again++;
      }
  return TRUE;

db_fail:
  _atelier_store_set_db_error (error, db, sqlite3_errcode (db), self->db_path);
  return FALSE;
}

gboolean
atelier_store_reconcile (AtelierStore *self, gboolean verify, AtelierStoreReport *report, GError **error)
{
  gboolean ok = FALSE;

  memset (report, 0, sizeof *report);
  report->problems = g_ptr_array_new_with_free_func (g_free);
  report->missing_items = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_mutex_lock (&self->write_lock);
  /* Files are removed only under the write transaction (see the traps). */
  if (_atelier_store_exec (self->writer, "BEGIN IMMEDIATE", error))
    {
      ok = reconcile_locked (self, verify, report, error) && _atelier_store_exec (self->writer, "COMMIT", error);
      if (!ok)
        sqlite3_exec (self->writer, "ROLLBACK", NULL, NULL, NULL);
    }
  g_mutex_unlock (&self->write_lock);
  return ok;
}
