/* atelier-discovery.h: the model files already on the machine, found without the user naming
 * them: GGUF, safetensors and .ckpt files and diffusers folders in the Hugging Face hub cache,
 * LM Studio's models folder, Ollama's store (manifests naming blobs), folders the user adds, and
 * the user's own list of paths. A sharded safetensors model is listed once, as its
 * `*.safetensors.index.json`, never shard by shard; a split GGUF (`NAME-00001-of-00003.gguf`)
 * once, as a problem saying how to join its parts (the engine reads single-file GGUF only).
 *
 * Every model found is opened with at_model_file_open() (which maps the file and parses its
 * headers only) and recognised, so the list says what each one is. A file that fails to open,
 * an Ollama manifest that is not JSON or names a missing blob, is listed with `error` set: the
 * user sees why it cannot be used instead of not seeing it at all. Nothing is ever downloaded.
 *
 * The roots, each overridable (an empty value turns that source off, which the tests use):
 *   Hugging Face  $ATELIER_HF_HUB_CACHE, else $HF_HUB_CACHE, else $HF_HOME/hub, else
 *                 ~/.cache/huggingface/hub
 *   LM Studio     $ATELIER_LMSTUDIO_DIR, else ~/.lmstudio/models and ~/.cache/lm-studio/models
 *   Ollama        $ATELIER_OLLAMA_DIR, else $OLLAMA_MODELS, else ~/.ollama/models
 *
 * Scanning reads directories and headers only, but a cold disk or a network home can make it
 * slow: the window calls atelier_discovery_scan_async(). */
#pragma once

#include <gio/gio.h>

#include "at-model-file.h"
#include "atelier-store.h"

G_BEGIN_DECLS

typedef enum
{
  ATELIER_MODEL_SOURCE_USER,         /* the user's own list (the store's user_models) */
  ATELIER_MODEL_SOURCE_FOLDER,       /* a folder the user asked to be searched */
  ATELIER_MODEL_SOURCE_HUGGING_FACE, /* the Hugging Face hub cache */
  ATELIER_MODEL_SOURCE_LM_STUDIO,
  ATELIER_MODEL_SOURCE_OLLAMA,
} AtelierModelSource;

/* "user", "folder", "huggingface", "lmstudio", "ollama". */
const char *atelier_model_source_name (AtelierModelSource source);

typedef struct
{
  AtelierModelSource source;
  /* What the list shows: "ORG/NAME/file.gguf" for the hub cache, "publisher/repo/file.gguf"
   * for LM Studio, "model:tag" for Ollama (the `library/` namespace left out), the file or
   * folder name otherwise. */
  char *name;
  /* The hub repo id "ORG/NAME", LM Studio's "publisher/repo", Ollama's "model:tag"; NULL for
   * a folder or the user's list. */
  char *repo;
  /* What to open: symlinks resolved (a hub blob, an Ollama blob). But a sharded safetensors
   * index and a split GGUF's first part are named where their other files sit beside them by
   * name (in the hub, the snapshot's link). For an Ollama problem, the manifest or the blob it
   * should have named. */
  char *path;
  gboolean is_folder; /* a diffusers pipeline folder */
  guint64 size;       /* bytes; a folder's files added up, a sharded index's shards */
  gint64 mtime_us;    /* modification time, microseconds since 1970 */
  /* What at_model_file_recognize() said; kind UNKNOWN, the strings NULL, when it did not open. */
  AtModelFormat format;
  AtModelKind kind;
  char *family;
  char *architecture; /* a GGUF's general.architecture */
  char *quant;        /* the tensor dtype holding most of the bytes: "Q4_K", "F16", ... */
  gboolean supported;
  /* Why it cannot be used, naming the path; NULL when it opened. */
  char *error;
} AtelierFoundModel;

void atelier_found_model_free (AtelierFoundModel *model);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtelierFoundModel, atelier_found_model_free)

typedef struct
{
  /* The user's own list: files or model folders, each reported with source USER even when
   * it is missing (then with `error`). NULL-terminated; NULL for none. */
  const char *const *user_paths;
  /* Folders to walk, NULL-terminated; NULL for none. */
  const char *const *folders;
  /* Leave out the hub cache, LM Studio and Ollama (only the two lists above). */
  gboolean no_default_sources;
  /* How deep to walk a user folder; 0: ATELIER_DISCOVERY_MAX_DEPTH. */
  guint max_depth;
} AtelierDiscoveryOptions;

#define ATELIER_DISCOVERY_MAX_DEPTH 8

/* Scans the sources in the order user list, folders, hub cache, LM Studio, Ollama; a path
 * found twice is listed once, under the first source that found it. Returns the found models
 * (AtelierFoundModel, freed with the array), or NULL with G_IO_ERROR_CANCELLED when
 * `cancellable` fires (checked between files). A missing root is not an error: most machines
 * have only some of these tools. */
GPtrArray *atelier_discovery_scan (const AtelierDiscoveryOptions *options, GCancellable *cancellable,
                                   GError **error);

/* The same on a worker thread; `options` is copied. The callback runs on the caller's
 * thread-default main context. */
void atelier_discovery_scan_async (const AtelierDiscoveryOptions *options, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *atelier_discovery_scan_finish (GAsyncResult *result, GError **error);

/* Puts `path` on the user's own list after checking that Atelier can open it (the error now,
 * not when the user picks it; a split GGUF's part is refused by its name): at_model_file_open()
 * and recognition, then for a single file its
 * `models` row (what the history links items to; a folder has no one file to hash), then the
 * user_models row. `path` must be absolute. Blocking (it reads headers and hashes the file's
 * ends): the window calls it on a worker thread. Returns the row's id and fills `info` when not
 * NULL (clear it with at_model_info_clear); 0 with `error` naming the path otherwise. */
gint64 atelier_discovery_add_user_model (AtelierStore *store, const char *path, AtModelInfo *info, GError **error);

G_END_DECLS
