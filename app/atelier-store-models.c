/* atelier-store-models.c: the user's own list of models (the user_models table, schema 4).
 * Kept apart from `models`, whose rows say which file made an item: removing a model from the
 * user's list must not touch what the history remembers. */
#include "atelier-store-private.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

void
atelier_user_model_free (AtelierUserModel *model)
{
  if (model == NULL)
    return;
  g_free (model->path);
  g_free (model);
}

static gboolean
check_path (const char *path, GError **error)
{
  if (path == NULL || path[0] == '\0' || !g_utf8_validate (path, -1, NULL))
    {
      g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID,
                   "a model path must be non-empty valid UTF-8");
      return FALSE;
    }
  return TRUE;
}

/* One statement in its own write transaction: parameter 1 is `text` (or `id` when NULL),
 * parameter 2, when the statement has one, `number`. Returns the rows changed (-1 on error)
 * and the last row id in `rowid`. */
static gint64
write_one (AtelierStore *self, const char *sql, gint64 id, const char *text, gint64 number, gint64 *rowid,
           GError **error)
{
  g_autoptr (sqlite3_stmt) st = NULL;
  gint64 changes = -1;
  int rc;

  g_mutex_lock (&self->write_lock);
  if (!_atelier_store_exec (self->writer, "BEGIN IMMEDIATE", error))
    goto out;
  rc = sqlite3_prepare_v2 (self->writer, sql, -1, &st, NULL);
  if (rc == SQLITE_OK)
    {
      if (text != NULL)
        sqlite3_bind_text (st, 1, text, -1, SQLITE_STATIC);
      else
        sqlite3_bind_int64 (st, 1, id);
      if (sqlite3_bind_parameter_count (st) >= 2)
        sqlite3_bind_int64 (st, 2, number);
      rc = sqlite3_step (st);
    }
  if (rc == SQLITE_DONE)
    {
      changes = sqlite3_changes (self->writer);
      if (rowid != NULL)
        *rowid = sqlite3_last_insert_rowid (self->writer);
      if (_atelier_store_exec (self->writer, "COMMIT", error))
        goto out;
      changes = -1;
    }
  else
    _atelier_store_set_db_error (error, self->writer, rc, self->db_path);
  sqlite3_exec (self->writer, "ROLLBACK", NULL, NULL, NULL);
out:
  g_mutex_unlock (&self->write_lock);
  return changes;
}

static gint64
find_user_model (AtelierStore *self, const char *path, GError **error)
{
  g_autoptr (sqlite3_stmt) st = NULL;
  sqlite3 *db = _atelier_store_reader_take (self, error);
  gint64 id = 0;
  int rc;

  if (db == NULL)
    return -1;
  rc = sqlite3_prepare_v2 (db, "SELECT id FROM user_models WHERE path = ?", -1, &st, NULL);
  if (rc == SQLITE_OK)
    {
      sqlite3_bind_text (st, 1, path, -1, SQLITE_STATIC);
      rc = sqlite3_step (st);
      if (rc == SQLITE_ROW)
        id = sqlite3_column_int64 (st, 0);
    }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    {
      _atelier_store_set_db_error (error, db, rc, self->db_path);
      id = -1;
    }
  g_clear_pointer (&st, sqlite3_finalize);
  _atelier_store_reader_give (self, db);
  return id;
}

gint64
atelier_store_add_user_model (AtelierStore *self, const char *path, GError **error)
{
  gint64 rowid = 0, changes;

  if (!check_path (path, error))
    return 0;
  /* OR IGNORE: a second add (or another process adding the same path) is not an error. */
  changes = write_one (self, "INSERT OR IGNORE INTO user_models (path, added) VALUES (?, ?)", 0, path,
                       g_get_real_time (), &rowid, error);
  if (changes < 0)
    return 0;
  if (changes == 1)
    return rowid;
  rowid = find_user_model (self, path, error);
  if (rowid == 0)
    g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_DB, "%s: %s was added, then vanished",
                 self->db_path, path);
  return MAX (rowid, 0);
}

gboolean
atelier_store_remove_user_model (AtelierStore *self, gint64 id, const char *path, GError **error)
{
  gint64 changes;

  if (path != NULL && !check_path (path, error))
    return FALSE;
  changes = path != NULL
              ? write_one (self, "DELETE FROM user_models WHERE path = ?", 0, path, 0, NULL, error)
              : write_one (self, "DELETE FROM user_models WHERE id = ?", id, NULL, 0, NULL, error);
  if (changes < 0)
    return FALSE;
  if (changes == 0)
    {
      if (path != NULL)
        g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND, "%s is not in your list of models",
                     path);
      else
        g_set_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND,
                     "no model %" G_GINT64_FORMAT " in your list of models", id);
      return FALSE;
    }
  return TRUE;
}

GPtrArray *
atelier_store_list_user_models (AtelierStore *self, GError **error)
{
  g_autoptr (GPtrArray) list = g_ptr_array_new_with_free_func ((GDestroyNotify) atelier_user_model_free);
  g_autoptr (sqlite3_stmt) st = NULL;
  sqlite3 *db = _atelier_store_reader_take (self, error);
  int rc;

  if (db == NULL)
    return NULL;
  rc = sqlite3_prepare_v2 (db, "SELECT id, path, added FROM user_models ORDER BY id", -1, &st, NULL);
  while (rc == SQLITE_OK && (rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      AtelierUserModel *m = g_new0 (AtelierUserModel, 1);

      m->id = sqlite3_column_int64 (st, 0);
      m->path = g_strdup ((const char *) sqlite3_column_text (st, 1));
      m->added_us = sqlite3_column_int64 (st, 2);
      g_ptr_array_add (list, m);
      rc = SQLITE_OK;
    }
  if (rc != SQLITE_DONE)
    _atelier_store_set_db_error (error, db, rc, self->db_path);
  g_clear_pointer (&st, sqlite3_finalize);
  _atelier_store_reader_give (self, db);
  return rc == SQLITE_DONE ? g_steal_pointer (&list) : NULL;
}
