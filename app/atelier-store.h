/* atelier-store.h: the history store. Every image, text and melody Atelier makes, with the
 * exact parameters that made it, in one SQLite database (`history.sqlite3` in
 * $ATELIER_DATA_DIR, else $XDG_DATA_HOME/atelier/) and a content-addressed asset folder beside
 * it (`assets/<2 hex>/<sha256>`). See DESIGN.md, "App: the history store".
 *
 * Threads: an AtelierStore may be shared by threads. Writes (save, tag, favourite, delete,
 * reconcile) are serialized on one connection; reads take a connection from a pool, so a reader
 * never waits for a writer (WAL). The window calls the `_async` variants, which run the query on
 * a worker thread and call back on the caller's main context. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ATELIER_STORE_ERROR (atelier_store_error_quark ())

typedef enum
{
  ATELIER_STORE_ERROR_CORRUPT,   /* not a database, or it fails quick_check: move it aside */
  ATELIER_STORE_ERROR_NEWER,     /* written by a newer Atelier: refused, never written */
  ATELIER_STORE_ERROR_IO,        /* a file or folder could not be read or written */
  ATELIER_STORE_ERROR_FULL,      /* no room (ENOSPC, EFBIG, SQLITE_FULL): nothing was saved */
  ATELIER_STORE_ERROR_NOT_FOUND, /* no item with that id */
  ATELIER_STORE_ERROR_INVALID,   /* bad input: a parameters text that is not a JSON object, ... */
  ATELIER_STORE_ERROR_QUERY,     /* a search query with nothing to search for */
  ATELIER_STORE_ERROR_DB,        /* any other SQLite failure (busy past the timeout, ...) */
} AtelierStoreError;

GQuark atelier_store_error_quark (void);

typedef enum
{
  ATELIER_ITEM_IMAGE,
  ATELIER_ITEM_TEXT,
  ATELIER_ITEM_MELODY,
  ATELIER_ITEM_STYLE, /* a style-transfer result */
  ATELIER_N_ITEM_KINDS,
} AtelierItemKind;

/* "image", "text", "melody", "style". */
const char *atelier_item_kind_name (AtelierItemKind kind);
gboolean atelier_item_kind_from_name (const char *name, AtelierItemKind *kind);

/* An asset to save: `data` is copied to assets/<2 hex>/<sha256>. `role` is "main",
 * "thumbnail" or "preview"; `media_type` e.g. "image/png", "text/plain", "audio/midi". */
typedef struct
{
  const char *role;
  const char *media_type;
  GBytes *data;
} AtelierAssetNew;

/* An item to save. Strings may be NULL; `params_json` must be a JSON object when set. */
typedef struct
{
  AtelierItemKind kind;
  const char *prompt;
  const char *negative;
  const char *params_json;
  gboolean has_seed;
  gint64 seed;
  gint64 model_id;   /* 0: none; else a row from atelier_store_ensure_model() */
  gint64 parent_id;  /* 0: a root; else the item this is a variant of (must exist) */
  const char *text;  /* a text item's content (searched; its first 200 characters are the preview) */
  const char *preview; /* a melody's or style result's short description; texts derive theirs */
  const char *const *tags;
  const AtelierAssetNew *assets;
  guint n_assets;
} AtelierItemNew;

typedef struct
{
  char *role, *media_type, *sha256;
  gint64 size;
  char *path; /* absolute */
} AtelierAsset;

typedef struct
{
  gint64 id;
  AtelierItemKind kind;
  char *prompt, *negative, *params_json;
  gboolean has_seed;
  gint64 seed;
  gint64 model_id;
  char *model_path, *model_hash; /* NULL when no model */
  gint64 parent_id;              /* 0 for a root */
  gint64 created_us;             /* microseconds since 1970 (UTC) */
  gboolean favourite;
  gboolean missing;              /* reconciliation found an asset file gone */
  char *preview;
  GStrv tags;
  GPtrArray *assets;             /* AtelierAsset */
  guint depth;                   /* in atelier_store_tree(): 0 for the root */
} AtelierItem;

void atelier_item_free (AtelierItem *item);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtelierItem, atelier_item_free)
/* The item's asset with `role`, or NULL. */
const AtelierAsset *atelier_item_get_asset (const AtelierItem *item, const char *role);

/* What list and search return. `text` NULL lists every item, newest first (created time);
 * otherwise it is a user's search: words (all must match), `word*` prefixes and "quoted
 * phrases" over prompts, negative prompts, tags and text content, newest first (ids grow with
 * save time). Any string is safe: quotes and FTS operators are taken as text. */
typedef struct
{
  const char *text;
  int kind;                 /* an AtelierItemKind, or -1: any */
  gint64 model_id;          /* 0: any */
  gboolean favourite_only;
  gint64 created_from_us;   /* 0: open; inclusive */
  gint64 created_to_us;     /* 0: open; exclusive */
  guint limit;              /* 0: 50 */
  guint offset;
} AtelierQuery;

#define ATELIER_QUERY_INIT { NULL, -1, 0, FALSE, 0, 0, 0, 0 }

typedef struct
{
  guint n_orphans_removed;  /* asset files no row named */
  guint n_temps_removed;    /* temporary files left by a writer that died */
  guint n_found_again;      /* items marked missing whose files are back */
  GPtrArray *problems;      /* char *: one line per missing or damaged asset, naming item and file */
  GArray *missing_items;    /* gint64: items marked missing */
} AtelierStoreReport;

void atelier_store_report_clear (AtelierStoreReport *report);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (AtelierStoreReport, atelier_store_report_clear)

typedef struct _AtelierStore AtelierStore;

/* $ATELIER_DATA_DIR, else $XDG_DATA_HOME/atelier. */
char *atelier_store_default_dir (void);

/* Opens (creating it if absent) the store in `dir` (NULL: the default), runs the migrations,
 * and refuses a file from a newer schema (ATELIER_STORE_ERROR_NEWER) or a corrupt one
 * (ATELIER_STORE_ERROR_CORRUPT, naming the path), leaving either file as it was. Does not
 * reconcile: call atelier_store_reconcile() once at startup. */
AtelierStore *atelier_store_open (const char *dir, GError **error);
/* Pending `_async` calls hold a reference. */
AtelierStore *atelier_store_ref (AtelierStore *self);
void atelier_store_unref (AtelierStore *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtelierStore, atelier_store_unref)

const char *atelier_store_get_dir (AtelierStore *self);
const char *atelier_store_get_db_path (AtelierStore *self);
/* The schema version this build writes (PRAGMA user_version). */
int atelier_store_schema_version (void);

/* Renames `db_path` (and its -wal / -shm) to `<db_path>.corrupt-<UTC time>[-N]`, never over an
 * existing file, so a new store can start; the new name in `moved_to`. */
gboolean atelier_store_move_aside (const char *db_path, char **moved_to, GError **error);

/* A model file's identity without reading gigabytes: SHA-256 over its size (8 bytes, little
 * endian), its first MiB and its last MiB, as "sha256-edges:<hex>". */
char *atelier_store_hash_model_file (const char *path, gint64 *size, GError **error);
/* The row for (path, hash), inserted if absent; its id. */
gint64 atelier_store_ensure_model (AtelierStore *self, const char *path, const char *kind, const char *family,
                                   gint64 size, const char *hash, GError **error);

/* The user's own list of models (schema 4's user_models): paths the user added by hand, which
 * the model manager lists beside the ones discovered (atelier-discovery.h). A path is stored
 * as given (make it absolute first); adding it twice returns the first row's id. */
typedef struct
{
  gint64 id;
  char *path;
  gint64 added_us; /* microseconds since 1970 (UTC) */
} AtelierUserModel;

void atelier_user_model_free (AtelierUserModel *model);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtelierUserModel, atelier_user_model_free)

gint64 atelier_store_add_user_model (AtelierStore *self, const char *path, GError **error);
/* Removes the row with `id` (when `path` is NULL) or with `path`; ATELIER_STORE_ERROR_NOT_FOUND
 * when there is none. The model's file is never touched. */
gboolean atelier_store_remove_user_model (AtelierStore *self, gint64 id, const char *path, GError **error);
/* AtelierUserModel, oldest first. */
GPtrArray *atelier_store_list_user_models (AtelierStore *self, GError **error);

/* Writes the assets (temporary name, fsync, rename, folder fsync), then commits the row. On
 * any error nothing is committed and no new file is left. Returns the new id, or 0. */
gint64 atelier_store_save (AtelierStore *self, const AtelierItemNew *item, GError **error);

AtelierItem *atelier_store_get (AtelierStore *self, gint64 id, GError **error);
/* AtelierItem, newest first. */
GPtrArray *atelier_store_find (AtelierStore *self, const AtelierQuery *query, GError **error);
/* The item, its parent, ..., the root. */
GPtrArray *atelier_store_lineage (AtelierStore *self, gint64 id, GError **error);
/* The direct variants of `id`, oldest first. */
GPtrArray *atelier_store_children (AtelierStore *self, gint64 id, GError **error);
/* The whole variant tree that holds `id`, from its root, depth first (item->depth set). */
GPtrArray *atelier_store_tree (AtelierStore *self, gint64 id, GError **error);
gint64 atelier_store_count (AtelierStore *self, GError **error);

gboolean atelier_store_add_tag (AtelierStore *self, gint64 id, const char *tag, GError **error);
gboolean atelier_store_set_favourite (AtelierStore *self, gint64 id, gboolean favourite, GError **error);
/* Deletes the item; its variants become variants of its parent (a trigger). Its asset files
 * go when no other item names the same content. */
gboolean atelier_store_delete (AtelierStore *self, gint64 id, GError **error);

/* Removes orphan asset files and dead writers' temporary files, marks items whose asset files
 * are gone (and unmarks those whose files are back), and reports each. `verify` also re-hashes
 * every asset file (slow) and treats a mismatch as missing. */
gboolean atelier_store_reconcile (AtelierStore *self, gboolean verify, AtelierStoreReport *report, GError **error);
/* PRAGMA integrity_check and foreign_key_check; FALSE with the problems in `problems`
 * (char *) when the database is damaged. */
gboolean atelier_store_check_integrity (AtelierStore *self, GPtrArray *problems, GError **error);

/* Opening (quick_check reads every page: about 0.2 s at 100,000 items) and the startup
 * reconciliation off the calling thread, for the window. `report` may be NULL. */
void atelier_store_open_async (const char *dir, GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data);
AtelierStore *atelier_store_open_finish (GAsyncResult *result, AtelierStoreReport *report, GError **error);

/* The same queries off the calling thread; the callback runs on the thread-default main
 * context of the caller. The results are what the synchronous calls return. */
void atelier_store_find_async (AtelierStore *self, const AtelierQuery *query, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *atelier_store_find_finish (AtelierStore *self, GAsyncResult *result, GError **error);
void atelier_store_get_async (AtelierStore *self, gint64 id, GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data);
AtelierItem *atelier_store_get_finish (AtelierStore *self, GAsyncResult *result, GError **error);
void atelier_store_tree_async (AtelierStore *self, gint64 id, GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data);
GPtrArray *atelier_store_tree_finish (AtelierStore *self, GAsyncResult *result, GError **error);

G_END_DECLS
