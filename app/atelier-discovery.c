/* atelier-discovery.c: finding the model files already on the machine (see the header for the
 * sources and their roots).
 *
 * Layouts read, and their traps:
 * - Hugging Face hub cache: `models--ORG--NAME/snapshots/<rev>/<file>`, each file a symlink
 *   into `../../blobs/<hash>`. A download in progress is `blobs/<hash>.incomplete`; a removed
 *   blob leaves a dangling link. Both are skipped: neither is a model the user has. The hub
 *   forbids "--" inside an owner or a name, so the first "--" after "models--" is the "/".
 *   A snapshot holding `model_index.json` is one diffusers pipeline, not a dozen components.
 * - LM Studio: `<publisher>/<repo>/<file>.gguf`, nothing deeper.
 * - Ollama: `manifests/<registry>/<namespace>/<model>/<tag>`, JSON, whose layer of media type
 *   application/vnd.ollama.image.model names `sha256:<hex>`, stored as `blobs/sha256-<hex>`.
 *   The digest comes from a file: it is checked to be 64 hex digits before it becomes part of
 *   a path, so a hostile manifest cannot name "../../something".
 * - User folders: symlinks are followed (people link their model folders), so every folder
 *   entered is remembered by device and inode and never entered twice: a link loop ends there.
 *   Hidden folders (".git", ".cache", ".Trash") are not entered.
 * - Sharded safetensors, in every folder walked (user folders, hub snapshots) and on the user's
 *   list: `X.safetensors.index.json` beside `X-00001-of-00003.safetensors`...; its "weight_map"
 *   (tensor -> shard file name) names the shards. Listed once, as the index, its size the
 *   shards' added up; the shards it names are not listed. Each shard alone opens as a valid
 *   safetensors file holding a third of a model, which is why it must not be listed. The shards
 *   sort before their index ("-" < "."), so a folder's indexes are read before any of its files
 *   is listed. In the hub the index is listed by its snapshot link, not its blob: the engine
 *   finds the shards by name beside the index, and a blob's neighbours are other hashes. An
 *   index is a small git file, so two revisions with retrained weights share its blob: it is
 *   remembered by its real path and its shards' (first_sight_key), not its own alone. An index
 *   that cannot be read (not JSON, no weight_map, a shard name that leaves the folder, over
 *   MAX_INDEX_BYTES) is a problem entry and its shards are listed as they are; a shard it names
 *   that is missing (or still downloading) is named in its entry's error.
 * - Split GGUF (llama.cpp's gguf-split: `NAME-00001-of-00003.gguf`, 5 digits each): part 1 is
 *   a valid GGUF holding the metadata and some of the tensors, and the engine reads single-file
 *   GGUF only, so it would open as a model missing most of its weights. Part 1 is listed as a
 *   problem entry that says how to join the parts; parts 2..N are not listed. In the hub it is
 *   the snapshot link, where `llama-gguf-split --merge` finds the other parts by name.
 */
#include "atelier-discovery.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "at-error.h"
#include "at-safetensors.h"

#define OLLAMA_MODEL_MEDIA_TYPE "application/vnd.ollama.image.model"
#define OLLAMA_DEFAULT_REGISTRY "registry.ollama.ai"
#define MAX_MANIFEST_BYTES (1 << 20) /* real ones are under 2 KiB */
#define HF_SNAPSHOT_DEPTH 3          /* snapshots/<rev>/<component>/<file> at most */
/* A sharded index is one line a tensor: KiBs, a few MiB for the largest mixtures of experts. */
#define MAX_INDEX_BYTES (16 << 20)
#define SHARD_INDEX_SUFFIX ".safetensors.index.json"
/* llama.cpp's split names, "%s-%05d-of-%05d.gguf": the digits are where the zeros are. */
#define SPLIT_GGUF_TAIL "-00000-of-00000.gguf"

typedef struct
{
  GStrv user_paths, folders;
  GStrv hf_roots, lmstudio_roots, ollama_roots;
  guint max_depth;
} Scan;

typedef struct
{
  GPtrArray *found;     /* AtelierFoundModel */
  GHashTable *seen;     /* paths already listed */
  GHashTable *visited;  /* "dev:ino" of folders entered by the current walk */
  GCancellable *cancellable;
} Ctx;

static const char *const source_names[] = { "user", "folder", "huggingface", "lmstudio", "ollama" };

const char *
atelier_model_source_name (AtelierModelSource source)
{
  return (guint) source < G_N_ELEMENTS (source_names) ? source_names[source] : "unknown";
}

void
atelier_found_model_free (AtelierFoundModel *model)
{
  if (model == NULL)
    return;
  g_free (model->name);
  g_free (model->repo);
  g_free (model->path);
  g_free (model->family);
  g_free (model->architecture);
  g_free (model->quant);
  g_free (model->error);
  g_free (model);
}

static void
scan_free (Scan *scan)
{
  g_strfreev (scan->user_paths);
  g_strfreev (scan->folders);
  g_strfreev (scan->hf_roots);
  g_strfreev (scan->lmstudio_roots);
  g_strfreev (scan->ollama_roots);
  g_free (scan);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Scan, scan_free)

/* The override when set (empty: the source is off), else the first default that is set. */
static GStrv
roots_from (const char *override_var, const char *const *defaults)
{
  const char *v = g_getenv (override_var);
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();

  if (v != NULL)
    {
      if (v[0] != '\0')
        g_strv_builder_add (b, v);
      return g_strv_builder_end (b);
    }
  for (guint i = 0; defaults[i] != NULL; i++)
    g_strv_builder_add (b, defaults[i]);
  return g_strv_builder_end (b);
}

static Scan *
scan_new (const AtelierDiscoveryOptions *options)
{
  Scan *scan = g_new0 (Scan, 1);
  const char *home = g_get_home_dir ();
  const char *hf_cache = g_getenv ("HF_HUB_CACHE"), *hf_home = g_getenv ("HF_HOME");
  const char *ollama = g_getenv ("OLLAMA_MODELS");
  g_autofree char *hf = NULL, *lms = NULL, *lms_old = NULL, *oll = NULL;

  scan->user_paths = g_strdupv ((char **) options->user_paths);
  scan->folders = g_strdupv ((char **) options->folders);
  scan->max_depth = options->max_depth != 0 ? options->max_depth : ATELIER_DISCOVERY_MAX_DEPTH;
  if (options->no_default_sources)
    {
      scan->hf_roots = g_new0 (char *, 1);
      scan->lmstudio_roots = g_new0 (char *, 1);
      scan->ollama_roots = g_new0 (char *, 1);
      return scan;
    }
  if (hf_cache != NULL && hf_cache[0] != '\0')
    hf = g_strdup (hf_cache);
  else if (hf_home != NULL && hf_home[0] != '\0')
    hf = g_build_filename (hf_home, "hub", NULL);
  else
    hf = g_build_filename (home, ".cache", "huggingface", "hub", NULL);
  lms = g_build_filename (home, ".lmstudio", "models", NULL);
  lms_old = g_build_filename (home, ".cache", "lm-studio", "models", NULL);
  oll = ollama != NULL && ollama[0] != '\0' ? g_strdup (ollama) : g_build_filename (home, ".ollama", "models", NULL);
  scan->hf_roots = roots_from ("ATELIER_HF_HUB_CACHE", (const char *const[]) { hf, NULL });
  scan->lmstudio_roots = roots_from ("ATELIER_LMSTUDIO_DIR", (const char *const[]) { lms, lms_old, NULL });
  scan->ollama_roots = roots_from ("ATELIER_OLLAMA_DIR", (const char *const[]) { oll, NULL });
  return scan;
}

static gboolean
has_suffix_ci (const char *name, const char *suffix)
{
  gsize n = strlen (name), s = strlen (suffix);

  return n >= s && g_ascii_strcasecmp (name + n - s, suffix) == 0;
}

static gboolean
is_model_file_name (const char *name)
{
  return has_suffix_ci (name, ".gguf") || has_suffix_ci (name, ".safetensors") || has_suffix_ci (name, ".ckpt");
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The folder's entries, sorted so that a scan lists the same models in the same order. NULL
 * when it cannot be read (absent, not a folder, no permission). */
static GPtrArray *
list_dir (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  GPtrArray *names;
  const char *name;

  if (dir == NULL)
    return NULL;
  names = g_ptr_array_new_with_free_func (g_free);
  while ((name = g_dir_read_name (dir)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  return names;
}

/* Bytes of the regular files under `path`, links followed, `depth` levels down at most. */
static guint64
folder_size (const char *path, guint depth)
{
  g_autoptr (GPtrArray) names = list_dir (path);
  guint64 total = 0;

  for (guint i = 0; names != NULL && i < names->len; i++)
    {
      g_autofree char *child = g_build_filename (path, g_ptr_array_index (names, i), NULL);
      GStatBuf sb;

      if (g_stat (child, &sb) != 0)
        continue;
      if (S_ISREG (sb.st_mode))
        total += (guint64) sb.st_size;
      else if (S_ISDIR (sb.st_mode) && depth > 0)
        total += folder_size (child, depth - 1);
    }
  return total;
}

/* The tensor dtype holding most of the bytes, over every part. */
static char *
dominant_dtype (AtModelFile *file)
{
  guint64 by[AT_N_FILE_DTYPES] = { 0 }, best = 0;
  int best_dtype = -1;

  for (guint p = 0; p < at_model_file_get_n_parts (file); p++)
    {
      guint64 part[AT_N_FILE_DTYPES];

      at_tensor_set_bytes_by_dtype (at_model_file_get_part (file, p), part);
      for (guint d = 0; d < AT_N_FILE_DTYPES; d++)
        by[d] += part[d];
    }
  for (guint d = 0; d < AT_N_FILE_DTYPES; d++)
    if (by[d] > best)
      {
        best = by[d];
        best_dtype = (int) d;
      }
  return best_dtype >= 0 ? g_strdup (at_file_dtype_name ((AtFileDtype) best_dtype)) : NULL;
}

/* An engine message about `path` without the base name the engine puts in front ("x.gguf: bad
 * magic"): the caller puts the full path there (a hub blob's base name is a hash, and a base
 * name alone does not say where). */
static const char *
without_base_name (const char *path, const char *message)
{
  g_autofree char *base = g_path_get_basename (path);

  if (g_str_has_prefix (message, base) && g_str_has_prefix (message + strlen (base), ": "))
    return message + strlen (base) + 2;
  return message;
}

/* Opens and recognises `m->path`, filling what it is, or `m->error` with why not. */
static void
describe (AtelierFoundModel *m)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtModelFile) file = at_model_file_open (m->path, &error);
  g_auto (AtModelInfo) info = { 0 };
  AtGguf *gguf;

  if (file == NULL)
    {
      m->error = g_strdup_printf ("%s: %s", m->path, without_base_name (m->path, error->message));
      return;
    }
  at_model_file_recognize (file, &info);
  m->format = at_model_file_get_format (file);
  m->kind = info.kind;
  m->family = g_strdup (info.family);
  m->supported = info.supported;
  m->quant = dominant_dtype (file);
  gguf = at_model_file_get_gguf (file);
  if (gguf != NULL)
    {
      const AtGgufKv *kv = at_gguf_find_kv (gguf, "general.architecture");

      if (kv != NULL && at_gguf_kv_get_type (kv) == AT_GGUF_TYPE_STRING)
        m->architecture = at_gguf_kv_dup_string (kv);
    }
}

static char *
real_path_or_same (const char *path)
{
  char real[PATH_MAX];

  return g_strdup (realpath (path, real) != NULL ? real : path);
}

/* TRUE the first time `key` (taken) is met. */
static gboolean
first_sight_key (Ctx *ctx, char *key)
{
  if (g_hash_table_contains (ctx->seen, key))
    {
      g_free (key);
      return FALSE;
    }
  g_hash_table_add (ctx->seen, key);
  return TRUE;
}

/* TRUE the first time a file is met: by its real path, so the user's link to a hub snapshot
 * and the hub blob it points at are one model. */
static gboolean
first_sight (Ctx *ctx, const char *path)
{
  return first_sight_key (ctx, real_path_or_same (path));
}

/* A new entry for `path`, its size and time from stat (links followed), or `error` saying why
 * stat failed. */
static AtelierFoundModel *
found_new (AtelierModelSource source, const char *name, const char *repo, const char *path, GStatBuf *sb)
{
  AtelierFoundModel *m = g_new0 (AtelierFoundModel, 1);

  m->source = source;
  m->name = g_strdup (name);
  m->repo = g_strdup (repo);
  m->path = g_strdup (path);
  if (g_stat (path, sb) != 0)
    {
      int e = errno;

      m->error = g_strdup_printf ("%s: %s", path, g_strerror (e));
      return m;
    }
  m->is_folder = S_ISDIR (sb->st_mode);
  m->size = m->is_folder ? folder_size (path, 4) : (guint64) sb->st_size;
  m->mtime_us = (gint64) sb->st_mtim.tv_sec * G_USEC_PER_SEC + sb->st_mtim.tv_nsec / 1000;
  return m;
}

/* Lists `path` (a file or a diffusers folder) once, opened and recognised. */
static void
add_found (Ctx *ctx, AtelierModelSource source, const char *name, const char *repo, const char *path)
{
  AtelierFoundModel *m;
  GStatBuf sb;

  if (!first_sight (ctx, path))
    return;
  m = found_new (source, name, repo, path, &sb);
  if (m->error == NULL)
    describe (m);
  g_ptr_array_add (ctx->found, m);
}

/* A problem that is not a model file (a manifest, a missing blob): listed with its error. */
static void
add_problem (Ctx *ctx, AtelierModelSource source, const char *name, const char *repo, const char *path,
             char *message)
{
  AtelierFoundModel *m;

  if (!first_sight (ctx, path))
    {
      g_free (message);
      return;
    }
  m = g_new0 (AtelierFoundModel, 1);
  m->source = source;
  m->name = g_strdup (name);
  m->repo = g_strdup (repo);
  m->path = g_strdup (path);
  m->error = message;
  g_ptr_array_add (ctx->found, m);
}

static gboolean
is_diffusers_folder (const char *path)
{
  g_autofree char *index = g_build_filename (path, "model_index.json", NULL);

  return g_file_test (index, G_FILE_TEST_IS_REGULAR);
}

/* ---- sharded safetensors and split GGUF ---- */

/* json-glib's _with_default getters warn on a member of another type: a manifest is a file. */
static const char *
string_member (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);

  return n != NULL && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
           ? json_node_get_string (n)
           : NULL;
}

/* TRUE when `path`, links followed, is a regular file and not a hub download in progress (a
 * link to a ".incomplete" blob); `real` gets its real path, `sb` its stat. By realpath, not
 * resolve_blob: a user folder may be a link to a hub snapshot, where "../../blobs" is not the
 * folder's parent's parent. */
static gboolean
is_present_file (const char *path, char real[PATH_MAX], GStatBuf *sb)
{
  return realpath (path, real) != NULL && !has_suffix_ci (real, ".incomplete") && g_stat (real, sb) == 0
         && S_ISREG (sb->st_mode);
}

static gboolean
is_shard_index_name (const char *name)
{
  return has_suffix_ci (name, SHARD_INDEX_SUFFIX);
}

/* What a sharded index's weight_map names, or why it cannot be read. */
typedef struct
{
  GPtrArray *shards; /* bare file names beside the index, each once, first mention first */
  char *error;       /* naming the index's path; `shards` is NULL then */
} ShardIndex;

static void
shard_index_free (ShardIndex *ix)
{
  g_clear_pointer (&ix->shards, g_ptr_array_unref);
  g_free (ix->error);
  g_free (ix);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShardIndex, shard_index_free)

/* Reads the shard names only: the engine's open checks the rest (every tensor in the shard the
 * map says) when the entry is described. The JSON goes through the engine's hardened parser. */
static ShardIndex *
shard_index_read (const char *path)
{
  g_autoptr (ShardIndex) ix = g_new0 (ShardIndex, 1);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = at_json_load_file (path, MAX_INDEX_BYTES, &error);
  g_autoptr (GPtrArray) shards = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) once = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GList) members = NULL;
  JsonNode *map = NULL;
  JsonObject *weight_map;

  if (root == NULL)
    {
      ix->error = g_strdup_printf ("%s: not a sharded safetensors index: %s", path,
                                   without_base_name (path, error->message));
      return g_steal_pointer (&ix);
    }
  if (JSON_NODE_HOLDS_OBJECT (root))
    map = json_object_get_member (json_node_get_object (root), "weight_map");
  if (map == NULL || !JSON_NODE_HOLDS_OBJECT (map))
    {
      ix->error = g_strdup_printf ("%s: not a sharded safetensors index: no \"weight_map\" object", path);
      return g_steal_pointer (&ix);
    }
  weight_map = json_node_get_object (map);
  members = json_object_get_members (weight_map);
  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *shard = string_member (weight_map, l->data);

      if (shard == NULL || !at_file_name_is_plain (shard))
        {
          ix->error = g_strdup_printf ("%s: the weight_map holds a value that is not a file name beside "
                                       "the index",
                                       path);
          return g_steal_pointer (&ix);
        }
      if (g_hash_table_add (once, (gpointer) shard))
        g_ptr_array_add (shards, g_strdup (shard));
    }
  if (shards->len == 0)
    {
      ix->error = g_strdup_printf ("%s: the weight_map names no shard", path);
      return g_steal_pointer (&ix);
    }
  ix->shards = g_steal_pointer (&shards);
  return g_steal_pointer (&ix);
}

/* Lists the sharded model of index `path` once: its size the shards' (links followed), its
 * error the first shard missing, else what the engine says opening it. */
static void
add_index (Ctx *ctx, AtelierModelSource source, const char *name, const char *repo, const char *path,
           const ShardIndex *ix)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *real_index = NULL;
  GString *key;
  const char *missing = NULL;
  guint64 size = 0;
  gint64 mtime_us = 0;
  AtelierFoundModel *m;
  GStatBuf sb;

  if (ix->error != NULL)
    {
      add_problem (ctx, source, name, repo, path, g_strdup (ix->error));
      return;
    }
  real_index = real_path_or_same (path);
  key = g_string_new (real_index);
  for (guint i = 0; i < ix->shards->len; i++)
    {
      g_autofree char *shard = g_build_filename (dir, g_ptr_array_index (ix->shards, i), NULL);
      char real[PATH_MAX];

      if (!is_present_file (shard, real, &sb))
        {
          g_string_append_printf (key, "\n%s", shard);
          missing = missing != NULL ? missing : g_ptr_array_index (ix->shards, i);
          continue;
        }
      g_string_append_printf (key, "\n%s", real);
      size += (guint64) sb.st_size;
      mtime_us = MAX (mtime_us, (gint64) sb.st_mtim.tv_sec * G_USEC_PER_SEC + sb.st_mtim.tv_nsec / 1000);
    }
  if (!first_sight_key (ctx, g_string_free (key, FALSE)))
    return;
  m = found_new (source, name, repo, path, &sb);
  if (m->error == NULL)
    {
      m->size = size;
      m->mtime_us = MAX (m->mtime_us, mtime_us);
      if (missing != NULL)
        m->error = g_strdup_printf ("%s: shard %s is missing or not fully downloaded (the index's "
                                    "weight_map names it)",
                                    path, missing);
      else
        describe (m);
    }
  g_ptr_array_add (ctx->found, m);
}

/* TRUE for a name of llama.cpp's gguf-split, with the part (from 1) and the number of parts. A
 * "-00001-of-00001" file is whole: not a split. */
static gboolean
split_gguf_part (const char *name, guint *part, guint *n_parts)
{
  gsize n = strlen (name), t = strlen (SPLIT_GGUF_TAIL);
  const char *tail;

  if (n <= t || !has_suffix_ci (name, ".gguf"))
    return FALSE;
  tail = name + n - t;
  for (gsize i = 0; i < t - 5; i++)
    if (SPLIT_GGUF_TAIL[i] == '0' ? !g_ascii_isdigit (tail[i]) : tail[i] != SPLIT_GGUF_TAIL[i])
      return FALSE;
  *part = (guint) g_ascii_strtoull (tail + 1, NULL, 10);
  *n_parts = (guint) g_ascii_strtoull (tail + 10, NULL, 10);
  return *n_parts >= 2 && *part >= 1 && *part <= *n_parts;
}

/* Why a split GGUF part (`path`, whose base name split_gguf_part() took) cannot be opened, and
 * the command that joins the parts: the first part's path (the tool finds the others by name
 * beside it), and the joined file written as NAME.gguf in the current folder (not into a model
 * cache). */
static char *
split_gguf_message (const char *path, guint part, guint n_parts)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *first = NULL, *out = NULL, *first_q = NULL, *out_q = NULL;
  g_autofree char *which = part == 1 ? g_strdup_printf ("the first of %u parts", n_parts)
                                     : g_strdup_printf ("part %u of %u", part, n_parts);
  gsize stem = strlen (base) - strlen (SPLIT_GGUF_TAIL);

  memcpy (base + stem + 1, "00001", 5);
  first = g_build_filename (dir, base, NULL);
  out = g_strdup_printf ("%.*s.gguf", (int) stem, base);
  first_q = g_shell_quote (first);
  out_q = g_shell_quote (out);
  return g_strdup_printf ("%s: %s of a split GGUF; Atelier opens single-file GGUF only. Join the parts with "
                          "llama.cpp's `llama-gguf-split --merge %s %s` and open %s",
                          path, which, first_q, out_q, out);
}

/* One folder's sharded indexes, read before any of its files is listed (the shards sort
 * before their index). */
typedef struct
{
  GHashTable *indexes; /* index file name -> ShardIndex */
  GHashTable *claimed; /* the file names that a readable index names (borrowed from it) */
} FolderShards;

static void
folder_shards_read (FolderShards *fs, const char *dir, GPtrArray *names)
{
  fs->indexes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) shard_index_free);
  fs->claimed = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; names != NULL && i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      g_autofree char *path = NULL;
      char real[PATH_MAX];
      GStatBuf sb;
      ShardIndex *ix;

      if (!is_shard_index_name (name))
        continue;
      path = g_build_filename (dir, name, NULL);
      if (!is_present_file (path, real, &sb))
        continue; /* dangling or a download in progress: its shards are listed as they are */
      ix = shard_index_read (path);
      g_hash_table_insert (fs->indexes, g_strdup (name), ix);
      for (guint s = 0; ix->shards != NULL && s < ix->shards->len; s++)
        g_hash_table_add (fs->claimed, g_ptr_array_index (ix->shards, s));
    }
}

static void
folder_shards_clear (FolderShards *fs)
{
  g_clear_pointer (&fs->claimed, g_hash_table_unref);
  g_clear_pointer (&fs->indexes, g_hash_table_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (FolderShards, folder_shards_clear)

/* A file `name` met by a folder walk at `path`: a sharded index as its model, a shard that an
 * index names not at all, a split GGUF's first part as a problem and its other parts not at
 * all, another model file as itself, opened at `open` (a hub blob; `path` elsewhere). */
static void
add_walked_file (Ctx *ctx, const FolderShards *fs, AtelierModelSource source, const char *display,
                 const char *repo, const char *name, const char *path, const char *open)
{
  ShardIndex *ix = g_hash_table_lookup (fs->indexes, name);
  guint part, n_parts;

  if (ix != NULL)
    add_index (ctx, source, display, repo, path, ix);
  else if (g_hash_table_contains (fs->claimed, name))
    return;
  else if (split_gguf_part (name, &part, &n_parts))
    {
      if (part == 1)
        add_problem (ctx, source, display, repo, path, split_gguf_message (path, part, n_parts));
    }
  else if (is_model_file_name (name))
    add_found (ctx, source, display, repo, open);
}

/* ---- the user's list and user folders ---- */

static gboolean
enter_once (Ctx *ctx, const char *path)
{
  GStatBuf sb;
  char *key;

  if (g_stat (path, &sb) != 0 || !S_ISDIR (sb.st_mode))
    return FALSE;
  key = g_strdup_printf ("%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT, (guint64) sb.st_dev, (guint64) sb.st_ino);
  if (g_hash_table_contains (ctx->visited, key))
    {
      g_free (key);
      return FALSE;
    }
  g_hash_table_add (ctx->visited, key);
  return TRUE;
}

static gboolean
walk_folder (Ctx *ctx, const char *path, guint depth, GError **error)
{
  g_autoptr (GPtrArray) names = NULL;
  g_auto (FolderShards) fs = { 0 };

  if (!enter_once (ctx, path))
    return TRUE;
  names = list_dir (path);
  folder_shards_read (&fs, path, names);
  for (guint i = 0; names != NULL && i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_cancellable_set_error_if_cancelled (ctx->cancellable, error))
        return FALSE;
      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        {
          if (name[0] == '.')
            continue;
          if (is_diffusers_folder (child))
            add_found (ctx, ATELIER_MODEL_SOURCE_FOLDER, name, NULL, child);
          else if (depth > 1 && !walk_folder (ctx, child, depth - 1, error))
            return FALSE;
        }
      else if (g_file_test (child, G_FILE_TEST_IS_REGULAR))
        add_walked_file (ctx, &fs, ATELIER_MODEL_SOURCE_FOLDER, name, NULL, name, child, child);
    }
  return TRUE;
}

/* A path on the user's list: a sharded index and a split GGUF part as in a folder walk (but
 * any part of a split is listed, as the user named it), anything else opened as it is. */
static void
add_user_path (Ctx *ctx, const char *path)
{
  g_autofree char *name = g_path_get_basename (path);
  guint part, n_parts;

  if (is_shard_index_name (name) && g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      g_autoptr (ShardIndex) ix = shard_index_read (path);

      add_index (ctx, ATELIER_MODEL_SOURCE_USER, name, NULL, path, ix);
    }
  else if (split_gguf_part (name, &part, &n_parts))
    add_problem (ctx, ATELIER_MODEL_SOURCE_USER, name, NULL, path, split_gguf_message (path, part, n_parts));
  else
    add_found (ctx, ATELIER_MODEL_SOURCE_USER, name, NULL, path);
}

static gboolean
scan_user (Ctx *ctx, const Scan *scan, GError **error)
{
  for (guint i = 0; scan->user_paths != NULL && scan->user_paths[i] != NULL; i++)
    {
      if (g_cancellable_set_error_if_cancelled (ctx->cancellable, error))
        return FALSE;
      add_user_path (ctx, scan->user_paths[i]);
    }
  for (guint i = 0; scan->folders != NULL && scan->folders[i] != NULL; i++)
    {
      g_autofree char *name = g_path_get_basename (scan->folders[i]);

      g_hash_table_remove_all (ctx->visited);
      /* A user may point at a pipeline itself rather than at the folder that holds it. */
      if (is_diffusers_folder (scan->folders[i]))
        add_found (ctx, ATELIER_MODEL_SOURCE_FOLDER, name, NULL, scan->folders[i]);
      else if (!walk_folder (ctx, scan->folders[i], scan->max_depth, error))
        return FALSE;
    }
  return TRUE;
}

/* ---- Hugging Face hub cache ---- */

/* `link` resolved to the blob it names; NULL when dangling or a download in progress. */
static char *
resolve_blob (const char *link)
{
  g_autofree char *target = NULL;
  char *resolved;

  if (!g_file_test (link, G_FILE_TEST_IS_SYMLINK))
    return g_file_test (link, G_FILE_TEST_IS_REGULAR) ? g_strdup (link) : NULL;
  if ((target = g_file_read_link (link, NULL)) == NULL)
    return NULL;
  if (g_path_is_absolute (target))
    resolved = g_canonicalize_filename (target, NULL);
  else
    {
      g_autofree char *dir = g_path_get_dirname (link);

      resolved = g_canonicalize_filename (target, dir);
    }
  if (has_suffix_ci (resolved, ".incomplete") || !g_file_test (resolved, G_FILE_TEST_IS_REGULAR))
    g_clear_pointer (&resolved, g_free);
  return resolved;
}

static gboolean
walk_snapshot (Ctx *ctx, const char *repo, const char *dir, const char *rel, guint depth, GError **error)
{
  g_autoptr (GPtrArray) names = list_dir (dir);
  g_auto (FolderShards) fs = { 0 };

  folder_shards_read (&fs, dir, names);
  for (guint i = 0; names != NULL && i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      g_autofree char *child = g_build_filename (dir, name, NULL);
      g_autofree char *child_rel = rel != NULL ? g_strconcat (rel, "/", name, NULL) : g_strdup (name);

      if (g_cancellable_set_error_if_cancelled (ctx->cancellable, error))
        return FALSE;
      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        {
          if (depth > 1 && !walk_snapshot (ctx, repo, child, child_rel, depth - 1, error))
            return FALSE;
        }
      else if (is_model_file_name (name) || is_shard_index_name (name))
        {
          g_autofree char *blob = resolve_blob (child);
          g_autofree char *display = g_strconcat (repo, "/", child_rel, NULL);

          if (blob != NULL)
            add_walked_file (ctx, &fs, ATELIER_MODEL_SOURCE_HUGGING_FACE, display, repo, name, child, blob);
        }
    }
  return TRUE;
}

/* "models--ORG--NAME" as "ORG/NAME"; NULL for datasets--, spaces-- and anything else. */
static char *
hf_repo_id (const char *folder)
{
  const char *rest, *sep;

  if (!g_str_has_prefix (folder, "models--"))
    return NULL;
  rest = folder + strlen ("models--");
  sep = strstr (rest, "--");
  if (sep == NULL)
    return g_strdup (rest); /* a repo without an owner ("gpt2") */
  return g_strdup_printf ("%.*s/%s", (int) (sep - rest), rest, sep + 2);
}

static gboolean
scan_hf_root (Ctx *ctx, const char *root, GError **error)
{
  g_autoptr (GPtrArray) repos = list_dir (root);

  for (guint i = 0; repos != NULL && i < repos->len; i++)
    {
      g_autofree char *repo = hf_repo_id (g_ptr_array_index (repos, i));
      g_autofree char *snapshots = NULL;
      g_autoptr (GPtrArray) revs = NULL;

      if (repo == NULL)
        continue;
      snapshots = g_build_filename (root, g_ptr_array_index (repos, i), "snapshots", NULL);
      revs = list_dir (snapshots);
      for (guint r = 0; revs != NULL && r < revs->len; r++)
        {
          g_autofree char *snap = g_build_filename (snapshots, g_ptr_array_index (revs, r), NULL);

          if (g_cancellable_set_error_if_cancelled (ctx->cancellable, error))
            return FALSE;
          if (is_diffusers_folder (snap))
            add_found (ctx, ATELIER_MODEL_SOURCE_HUGGING_FACE, repo, repo, snap);
          else if (!walk_snapshot (ctx, repo, snap, NULL, HF_SNAPSHOT_DEPTH, error))
            return FALSE;
        }
    }
  return TRUE;
}

/* ---- LM Studio ---- */

static gboolean
scan_lmstudio_root (Ctx *ctx, const char *root, GError **error)
{
  g_autoptr (GPtrArray) publishers = list_dir (root);

  for (guint p = 0; publishers != NULL && p < publishers->len; p++)
    {
      const char *publisher = g_ptr_array_index (publishers, p);
      g_autofree char *pdir = g_build_filename (root, publisher, NULL);
      g_autoptr (GPtrArray) repos = publisher[0] != '.' ? list_dir (pdir) : NULL;

      for (guint r = 0; repos != NULL && r < repos->len; r++)
        {
          g_autofree char *rdir = g_build_filename (pdir, g_ptr_array_index (repos, r), NULL);
          g_autofree char *repo = g_strconcat (publisher, "/", g_ptr_array_index (repos, r), NULL);
          g_autoptr (GPtrArray) files = list_dir (rdir);

          for (guint f = 0; files != NULL && f < files->len; f++)
            {
              const char *file = g_ptr_array_index (files, f);
              g_autofree char *path = g_build_filename (rdir, file, NULL);
              g_autofree char *display = g_strconcat (repo, "/", file, NULL);
              guint part, n_parts;

              if (g_cancellable_set_error_if_cancelled (ctx->cancellable, error))
                return FALSE;
              if (!has_suffix_ci (file, ".gguf") || !g_file_test (path, G_FILE_TEST_IS_REGULAR))
                continue;
              if (!split_gguf_part (file, &part, &n_parts))
                add_found (ctx, ATELIER_MODEL_SOURCE_LM_STUDIO, display, repo, path);
              else if (part == 1)
                add_problem (ctx, ATELIER_MODEL_SOURCE_LM_STUDIO, display, repo, path,
                             split_gguf_message (path, part, n_parts));
            }
        }
    }
  return TRUE;
}

/* ---- Ollama ---- */

static gboolean
is_sha256_hex (const char *s)
{
  if (strlen (s) != 64)
    return FALSE;
  for (; *s != '\0'; s++)
    if (!g_ascii_isxdigit (*s))
      return FALSE;
  return TRUE;
}

/* The model layer's digest hex, or NULL with `why`. */
static char *
ollama_model_digest (const char *manifest, char **why)
{
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = NULL;
  JsonNode *member;
  JsonArray *layers;
  gsize len = 0;
  GStatBuf sb;

  /* Checked before reading: a manifest is a file anyone could have put there. */
  if (g_stat (manifest, &sb) == 0 && sb.st_size > MAX_MANIFEST_BYTES)
    {
      *why = g_strdup_printf ("%s: a manifest of %" G_GINT64_FORMAT " bytes is too large", manifest,
                              (gint64) sb.st_size);
      return NULL;
    }
  if (!g_file_get_contents (manifest, &text, &len, &error))
    {
      *why = g_strdup (error->message);
      return NULL;
    }
  root = json_from_string (text, &error);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      *why = g_strdup_printf ("%s: not a JSON manifest: %s", manifest,
                              error != NULL ? error->message : "not an object");
      return NULL;
    }
  member = json_object_get_member (json_node_get_object (root), "layers");
  layers = member != NULL && JSON_NODE_HOLDS_ARRAY (member) ? json_node_get_array (member) : NULL;
  for (guint i = 0; layers != NULL && i < json_array_get_length (layers); i++)
    {
      JsonNode *n = json_array_get_element (layers, i);
      JsonObject *layer = JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
      const char *type, *digest;

      if (layer == NULL)
        continue;
      type = string_member (layer, "mediaType");
      digest = string_member (layer, "digest");
      if (g_strcmp0 (type, OLLAMA_MODEL_MEDIA_TYPE) != 0)
        continue;
      if (digest == NULL || !g_str_has_prefix (digest, "sha256:") || !is_sha256_hex (digest + 7))
        {
          *why = g_strdup_printf ("%s: the model layer's digest is not sha256:<64 hex digits>", manifest);
          return NULL;
        }
      return g_strdup (digest + 7);
    }
  *why = g_strdup_printf ("%s: no layer of media type %s", manifest, OLLAMA_MODEL_MEDIA_TYPE);
  return NULL;
}

/* "llama3:8b" for the default registry's library namespace, "ns/model:tag" for another
 * namespace, "host/ns/model:tag" for another registry. */
static char *
ollama_name (const char *registry, const char *ns, const char *model, const char *tag)
{
  if (strcmp (registry, OLLAMA_DEFAULT_REGISTRY) != 0)
    return g_strdup_printf ("%s/%s/%s:%s", registry, ns, model, tag);
  if (strcmp (ns, "library") != 0)
    return g_strdup_printf ("%s/%s:%s", ns, model, tag);
  return g_strdup_printf ("%s:%s", model, tag);
}

static void
ollama_manifest (Ctx *ctx, const char *root, const char *manifest, const char *name)
{
  char *why = NULL;
  g_autofree char *hex = ollama_model_digest (manifest, &why);
  g_autofree char *blob_name = NULL, *blob = NULL;

  if (hex == NULL)
    {
      add_problem (ctx, ATELIER_MODEL_SOURCE_OLLAMA, name, name, manifest, why);
      return;
    }
  blob_name = g_strconcat ("sha256-", hex, NULL);
  blob = g_build_filename (root, "blobs", blob_name, NULL);
  if (!g_file_test (blob, G_FILE_TEST_IS_REGULAR))
    add_problem (ctx, ATELIER_MODEL_SOURCE_OLLAMA, name, name, blob,
                 g_strdup_printf ("%s: the blob named by %s is missing", blob, manifest));
  else
    add_found (ctx, ATELIER_MODEL_SOURCE_OLLAMA, name, name, blob);
}

static gboolean
scan_ollama_root (Ctx *ctx, const char *root, GError **error)
{
  g_autofree char *manifests = g_build_filename (root, "manifests", NULL);
  g_autoptr (GPtrArray) registries = list_dir (manifests);

  for (guint a = 0; registries != NULL && a < registries->len; a++)
    {
      const char *registry = g_ptr_array_index (registries, a);
      g_autofree char *rdir = g_build_filename (manifests, registry, NULL);
      g_autoptr (GPtrArray) spaces = list_dir (rdir);

      for (guint b = 0; spaces != NULL && b < spaces->len; b++)
        {
          const char *ns = g_ptr_array_index (spaces, b);
          g_autofree char *ndir = g_build_filename (rdir, ns, NULL);
          g_autoptr (GPtrArray) models = list_dir (ndir);

          for (guint c = 0; models != NULL && c < models->len; c++)
            {
              const char *model = g_ptr_array_index (models, c);
              g_autofree char *mdir = g_build_filename (ndir, model, NULL);
              g_autoptr (GPtrArray) tags = list_dir (mdir);

              for (guint d = 0; tags != NULL && d < tags->len; d++)
                {
                  const char *tag = g_ptr_array_index (tags, d);
                  g_autofree char *manifest = g_build_filename (mdir, tag, NULL);
                  g_autofree char *name = ollama_name (registry, ns, model, tag);

                  if (g_cancellable_set_error_if_cancelled (ctx->cancellable, error))
                    return FALSE;
                  if (g_file_test (manifest, G_FILE_TEST_IS_REGULAR))
                    ollama_manifest (ctx, root, manifest, name);
                }
            }
        }
    }
  return TRUE;
}

/* ---- the scan ---- */

static GPtrArray *
scan_run (const Scan *scan, GCancellable *cancellable, GError **error)
{
  g_autoptr (GPtrArray) found = g_ptr_array_new_with_free_func ((GDestroyNotify) atelier_found_model_free);
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) visited = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  Ctx ctx = { found, seen, visited, cancellable };

  if (!scan_user (&ctx, scan, error))
    return NULL;
  for (guint i = 0; scan->hf_roots[i] != NULL; i++)
    if (!scan_hf_root (&ctx, scan->hf_roots[i], error))
      return NULL;
  for (guint i = 0; scan->lmstudio_roots[i] != NULL; i++)
    if (!scan_lmstudio_root (&ctx, scan->lmstudio_roots[i], error))
      return NULL;
  for (guint i = 0; scan->ollama_roots[i] != NULL; i++)
    if (!scan_ollama_root (&ctx, scan->ollama_roots[i], error))
      return NULL;
  return g_steal_pointer (&found);
}

GPtrArray *
atelier_discovery_scan (const AtelierDiscoveryOptions *options, GCancellable *cancellable, GError **error)
{
  AtelierDiscoveryOptions none = { 0 };
  g_autoptr (Scan) scan = scan_new (options != NULL ? options : &none);

  return scan_run (scan, cancellable, error);
}

static void
scan_worker (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  GError *error = NULL;
  GPtrArray *found = scan_run (task_data, cancellable, &error);

  if (found == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, found, (GDestroyNotify) g_ptr_array_unref);
}

void
atelier_discovery_scan_async (const AtelierDiscoveryOptions *options, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  AtelierDiscoveryOptions none = { 0 };
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, atelier_discovery_scan_async);
  /* The roots are read here, not on the worker: the environment is not safe to read while
   * another thread may set it. */
  g_task_set_task_data (task, scan_new (options != NULL ? options : &none), (GDestroyNotify) scan_free);
  g_task_run_in_thread (task, scan_worker);
}

GPtrArray *
atelier_discovery_scan_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == atelier_discovery_scan_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

gint64
atelier_discovery_add_user_model (AtelierStore *store, const char *path, AtModelInfo *info, GError **error)
{
  g_autoptr (AtModelFile) file = NULL;
  g_auto (AtModelInfo) local = { 0 };
  g_autofree char *hash = NULL, *base = g_path_get_basename (path);
  gint64 size = 0, id;
  guint part, n_parts;

  /* A split GGUF's first part opens as a GGUF that lacks most of the tensors. */
  if (split_gguf_part (base, &part, &n_parts))
    {
      g_autofree char *message = split_gguf_message (path, part, n_parts);

      g_set_error_literal (error, AT_ERROR, AT_ERROR_UNSUPPORTED, message);
      return 0;
    }
  file = at_model_file_open (path, error);
  if (file == NULL)
    {
      g_prefix_error (error, "%s: ", path);
      return 0;
    }
  at_model_file_recognize (file, &local);
  if (g_file_test (path, G_FILE_TEST_IS_REGULAR)
      && ((hash = atelier_store_hash_model_file (path, &size, error)) == NULL
          || atelier_store_ensure_model (store, path, at_model_kind_name (local.kind), local.family, size, hash,
                                         error)
               == 0))
    return 0;
  id = atelier_store_add_user_model (store, path, error);
  if (id != 0 && info != NULL)
    {
      *info = local;
      memset (&local, 0, sizeof local);
    }
  return id;
}
