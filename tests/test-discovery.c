/* test-discovery.c: model discovery (app/atelier-discovery.c) over fake trees built in a temp
 * folder with tiny real files: a GGUF written here, a safetensors file from tests/corpus, and
 * files of bad bytes. The Hugging Face hub cache with symlinked blobs (a dangling link, a
 * download in progress, a diffusers snapshot, a dataset), LM Studio, Ollama manifests (valid,
 * not JSON, a missing blob, a digest that tries to leave the blob folder), user folders with a
 * symlink loop and a hidden folder, and the user's own list. Sharded safetensors (a 2-shard
 * VAE, whose two halves are each recognised as nothing: only the whole is a VAE) in a user
 * folder and in hub snapshots, an index naming a missing shard, a malformed index, and split
 * GGUFs (llama.cpp's gguf-split names). Each scan is compared entry by entry with what must be
 * found. Then the async API on a main loop, cancellation, the store's user_models, and
 * `atelier models list|add|remove` end to end. */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#include "at-test-util.h"
#include "atelier-discovery.h"
#include "atelier-store.h"

static char *root, *hub, *lms, *oll, *user_dir, *gguf_path, *lms_gguf;

#define BLOB_HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define BLOB_HEX2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define LOST_HEX "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"



static void
copy_corpus (const char *name, const char *to)
{
  g_autofree char *from = g_test_build_filename (G_TEST_DIST, "corpus", "safetensors", name, NULL);
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  gsize len = 0;

  g_assert_true (g_file_get_contents (from, &text, &len, &error));
  at_test_write_file (to, text, len);
}

/* A safetensors file of one F32 [2] tensor, its header padded to 8 bytes as writers do. */
static void
write_safetensors (const char *path, const char *tensor)
{
  static const float values[2] = { 1.0f, 2.0f };
  g_autoptr (GByteArray) b = g_byte_array_new ();
  g_autoptr (GString) header = g_string_new (NULL);

  g_string_printf (header, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", tensor);
  while (header->len % 8 != 0)
    g_string_append_c (header, ' ');
  at_test_put_u64 (b, header->len);
  g_byte_array_append (b, (const guint8 *) header->str, header->len);
  g_byte_array_append (b, (const guint8 *) values, sizeof values);
  at_test_write_file (path, b->data, b->len);
}

/* A sharded index putting encoder.conv_in.weight in `first` and decoder.conv_out.weight in
 * `second`. */
static char *
index_json (const char *first, const char *second)
{
  return g_strdup_printf ("{\"metadata\": {\"total_size\": 16}, \"weight_map\": {"
                          "\"encoder.conv_in.weight\": \"%s\", \"decoder.conv_out.weight\": \"%s\"}}",
                          first, second);
}

static guint64
file_size (const char *path)
{
  GStatBuf sb;

  g_assert_cmpint (g_stat (path, &sb), ==, 0);
  return (guint64) sb.st_size;
}

static void
link_to (const char *target, const char *link)
{
  g_autofree char *dir = g_path_get_dirname (link);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_assert_cmpint (symlink (target, link), ==, 0);
}

static char *
under (const char *base, const char *rel)
{
  return g_build_filename (base, rel, NULL);
}

#define BAD_BYTES "this is not a model, only some bytes with a model's name\n"

static void
build_trees (void)
{
  g_autofree char *p = NULL;

  root = g_strdup (at_test_tmpdir ());
  hub = under (root, "hub");
  lms = under (root, "lmstudio");
  oll = under (root, "ollama");
  user_dir = under (root, "mine");
  gguf_path = under (root, "tiny.gguf");
  at_test_write_tiny_llama (gguf_path);

  /* Hub: one GGUF reached through two revisions' links, a link to a download in progress, a
   * dangling link, a non-model file, a bad safetensors blob; a diffusers snapshot; a dataset. */
#define HF(rel) (g_free (p), p = under (hub, rel))
  at_test_write_tiny_llama (HF ("models--acme--tiny-llm/blobs/" BLOB_HEX));
  at_test_write_text (HF ("models--acme--tiny-llm/blobs/" BLOB_HEX2 ".incomplete"), "half a download");
  at_test_write_text (HF ("models--acme--tiny-llm/blobs/readme"), "# tiny");
  at_test_write_text (HF ("models--acme--tiny-llm/blobs/badblob"), BAD_BYTES);
  link_to ("../../blobs/" BLOB_HEX, HF ("models--acme--tiny-llm/snapshots/rev1/tiny.Q8_0.gguf"));
  link_to ("../../blobs/" BLOB_HEX, HF ("models--acme--tiny-llm/snapshots/rev2/tiny.Q8_0.gguf"));
  link_to ("../../blobs/" BLOB_HEX2 ".incomplete", HF ("models--acme--tiny-llm/snapshots/rev1/partial.gguf"));
  link_to ("../../blobs/gone", HF ("models--acme--tiny-llm/snapshots/rev1/gone.gguf"));
  link_to ("../../blobs/readme", HF ("models--acme--tiny-llm/snapshots/rev1/README.md"));
  link_to ("../../../blobs/badblob", HF ("models--acme--tiny-llm/snapshots/rev1/extra/bad.safetensors"));
  at_test_write_text (HF ("models--acme--pipe/snapshots/rev3/model_index.json"),
              "{\"_class_name\": \"StableDiffusionPipeline\"}");
  at_test_write_text (HF ("models--acme--pipe/snapshots/rev3/unet/config.json"), "{}");
  at_test_write_tiny_llama (HF ("datasets--acme--data/snapshots/rev4/data.gguf"));

  /* Hub, sharded: rev5 a 2-shard VAE; rev6 the same blobs (listed once); rev7 the same index
   * blob (an index is a small git file, one blob while the sharding stays) with retrained
   * second shard (listed: another model). A repo whose second shard is still downloading. */
  write_safetensors (HF ("models--acme--sharded-vae/blobs/shard1"), "encoder.conv_in.weight");
  write_safetensors (HF ("models--acme--sharded-vae/blobs/shard2"), "decoder.conv_out.weight");
  write_safetensors (HF ("models--acme--sharded-vae/blobs/shard2b"), "decoder.conv_out.weight");
  {
    g_autofree char *index = index_json ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");

    at_test_write_text (HF ("models--acme--sharded-vae/blobs/index"), index);
    at_test_write_text (HF ("models--acme--half-sharded/blobs/index"), index);
  }
  for (guint r = 5; r <= 7; r++)
    {
      g_autofree char *snap = g_strdup_printf ("models--acme--sharded-vae/snapshots/rev%u/", r);
      g_autofree char *index = g_strconcat (snap, "model.safetensors.index.json", NULL);
      g_autofree char *one = g_strconcat (snap, "model-00001-of-00002.safetensors", NULL);
      g_autofree char *two = g_strconcat (snap, "model-00002-of-00002.safetensors", NULL);

      link_to ("../../blobs/index", HF (index));
      link_to ("../../blobs/shard1", HF (one));
      link_to (r == 7 ? "../../blobs/shard2b" : "../../blobs/shard2", HF (two));
    }
  write_safetensors (HF ("models--acme--half-sharded/blobs/shard1"), "encoder.conv_in.weight");
  at_test_write_text (HF ("models--acme--half-sharded/blobs/shard2.incomplete"), "half a download");
  link_to ("../../blobs/index", HF ("models--acme--half-sharded/snapshots/rev8/model.safetensors.index.json"));
  link_to ("../../blobs/shard1", HF ("models--acme--half-sharded/snapshots/rev8/model-00001-of-00002.safetensors"));
  link_to ("../../blobs/shard2.incomplete",
           HF ("models--acme--half-sharded/snapshots/rev8/model-00002-of-00002.safetensors"));

  /* LM Studio: publisher/repo/file.gguf; a text file; a GGUF one level too deep. */
  lms_gguf = under (lms, "pub/repo-GGUF/repo.Q8_0.gguf");
  at_test_write_tiny_llama (lms_gguf);
  at_test_write_text ((g_free (p), p = under (lms, "pub/repo-GGUF/notes.txt")), "notes");
  at_test_write_tiny_llama ((g_free (p), p = under (lms, "pub/repo-GGUF/deeper/deep.gguf")));
  /* A split GGUF in two parts. */
  at_test_write_tiny_llama ((g_free (p), p = under (lms, "pub/big-GGUF/big-00001-of-00002.gguf")));
  at_test_write_tiny_llama ((g_free (p), p = under (lms, "pub/big-GGUF/big-00002-of-00002.gguf")));

  /* Ollama: a valid manifest, another namespace's, one that is not JSON, one naming a blob
   * that is gone, one whose digest would leave the blob folder. */
#define MANIFEST(model_layer)                                                                     \
  "{\"schemaVersion\": 2, \"layers\": [{\"mediaType\": \"application/vnd.ollama.image.license\", "  \
  "\"digest\": \"sha256:" LOST_HEX "\"}, {\"mediaType\": \"application/vnd.ollama.image.model\", "  \
  "\"digest\": \"" model_layer "\"}]}"
  at_test_write_tiny_llama ((g_free (p), p = under (oll, "blobs/sha256-" BLOB_HEX)));
  at_test_write_tiny_llama ((g_free (p), p = under (oll, "blobs/sha256-" BLOB_HEX2)));
  at_test_write_text ((g_free (p), p = under (oll, "manifests/registry.ollama.ai/library/tiny/latest")),
              MANIFEST ("sha256:" BLOB_HEX));
  at_test_write_text ((g_free (p), p = under (oll, "manifests/registry.ollama.ai/someone/thing/q8")),
              MANIFEST ("sha256:" BLOB_HEX2));
  at_test_write_text ((g_free (p), p = under (oll, "manifests/registry.ollama.ai/library/broken/latest")), "{\"layers\": [");
  at_test_write_text ((g_free (p), p = under (oll, "manifests/registry.ollama.ai/library/lost/1b")),
              MANIFEST ("sha256:" LOST_HEX));
  at_test_write_text ((g_free (p), p = under (oll, "manifests/registry.ollama.ai/library/sneaky/latest")),
              MANIFEST ("sha256:../../../../tiny.gguf"));

  /* A user folder: a GGUF, a safetensors one folder down, a hidden folder, a link back to
   * itself, a second link to the same sub-folder, bad bytes, a text file, a diffusers folder. */
  at_test_write_tiny_llama ((g_free (p), p = under (user_dir, "a.gguf")));
  copy_corpus ("small-padded.safetensors", (g_free (p), p = under (user_dir, "sub/b.safetensors")));
  at_test_write_tiny_llama ((g_free (p), p = under (user_dir, ".hidden/c.gguf")));
  link_to ("..", (g_free (p), p = under (user_dir, "sub/loop")));
  link_to ("sub", (g_free (p), p = under (user_dir, "also-sub")));
  at_test_write_text ((g_free (p), p = under (user_dir, "bad.ckpt")), BAD_BYTES);
  at_test_write_text ((g_free (p), p = under (user_dir, "notes.txt")), "notes");
  at_test_write_text ((g_free (p), p = under (user_dir, "pipe/model_index.json")),
              "{\"_class_name\": \"StableDiffusionPipeline\"}");

  /* In one folder: a 2-shard VAE; an index naming a shard that is not there; a malformed
   * index and its shard; a split GGUF of 3 parts (each part here the whole tiny GGUF: its
   * name is what is judged). */
  {
    g_autofree char *vae = index_json ("vae-00001-of-00002.safetensors", "vae-00002-of-00002.safetensors");
    g_autofree char *gone = index_json ("gone-00001-of-00002.safetensors", "gone-00002-of-00002.safetensors");

    write_safetensors ((g_free (p), p = under (user_dir, "big/vae-00001-of-00002.safetensors")),
                       "encoder.conv_in.weight");
    write_safetensors ((g_free (p), p = under (user_dir, "big/vae-00002-of-00002.safetensors")),
                       "decoder.conv_out.weight");
    at_test_write_text ((g_free (p), p = under (user_dir, "big/vae.safetensors.index.json")), vae);
    write_safetensors ((g_free (p), p = under (user_dir, "big/gone-00001-of-00002.safetensors")),
                       "encoder.conv_in.weight");
    at_test_write_text ((g_free (p), p = under (user_dir, "big/gone.safetensors.index.json")), gone);
    write_safetensors ((g_free (p), p = under (user_dir, "big/torn-00001-of-00002.safetensors")),
                       "encoder.conv_in.weight");
    at_test_write_text ((g_free (p), p = under (user_dir, "big/torn.safetensors.index.json")), "{\"weight_map\": {\"encoder");
    for (guint i = 1; i <= 3; i++)
      {
        g_autofree char *rel = g_strdup_printf ("big/tiny-%05u-of-00003.gguf", i);

        at_test_write_tiny_llama ((g_free (p), p = under (user_dir, rel)));
      }
  }
#undef HF
#undef MANIFEST
}

/* One line an entry: "source | name | kind/family | quant | error?", paths relative to the
 * fixture root, so a scan is compared as a whole. */
static char *
summary (GPtrArray *found)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < found->len; i++)
    {
      AtelierFoundModel *m = g_ptr_array_index (found, i);
      const char *rel = g_str_has_prefix (m->path, root) ? m->path + strlen (root) + 1 : m->path;

      g_string_append_printf (s, "%s | %s | %s/%s | %s | %s%s\n", atelier_model_source_name (m->source), m->name,
                              at_model_kind_name (m->kind), m->family != NULL ? m->family : "-",
                              m->quant != NULL ? m->quant : "-", rel, m->error != NULL ? " | error" : "");
    }
  return g_string_free (s, FALSE);
}

static AtelierFoundModel *
find_named (GPtrArray *found, const char *name)
{
  for (guint i = 0; i < found->len; i++)
    if (strcmp (((AtelierFoundModel *) g_ptr_array_index (found, i))->name, name) == 0)
      return g_ptr_array_index (found, i);
  return NULL;
}

/* A sharded model's one entry: the index, the shards' bytes, and what the engine makes of the
 * index opened on its own (a VAE: each shard alone is recognised as nothing). */
static void
assert_sharded (const AtelierFoundModel *m, const char *index, guint64 size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtModelFile) file = at_model_file_open (index, &error);
  g_auto (AtModelInfo) info = { 0 };

  g_assert_no_error (error);
  at_model_file_recognize (file, &info);
  g_assert_nonnull (m);
  g_assert_null (m->error);
  g_assert_cmpstr (m->path, ==, index);
  g_assert_cmpuint (m->size, ==, size);
  g_assert_false (m->is_folder);
  g_assert_cmpint (m->mtime_us, >, 0);
  g_assert_cmpint (m->format, ==, AT_MODEL_FORMAT_SAFETENSORS_SHARDED);
  g_assert_cmpint (m->kind, ==, info.kind);
  g_assert_cmpint (m->kind, ==, AT_MODEL_KIND_VAE);
  g_assert_cmpstr (m->family, ==, info.family);
  g_assert_cmpstr (m->quant, ==, "F32");
}

static guint
count_named (GPtrArray *found, const char *name)
{
  guint n = 0;

  for (guint i = 0; i < found->len; i++)
    n += strcmp (((AtelierFoundModel *) g_ptr_array_index (found, i))->name, name) == 0;
  return n;
}

static const char expected_defaults[] =
  "huggingface | acme/half-sharded/model.safetensors.index.json | unknown/- | - | hub/models--acme--half-sharded/snapshots/rev8/model.safetensors.index.json | error\n"
  "huggingface | acme/pipe | unknown/- | - | hub/models--acme--pipe/snapshots/rev3\n"
  "huggingface | acme/sharded-vae/model.safetensors.index.json | VAE (AutoencoderKL)/autoencoder-kl | F32 | hub/models--acme--sharded-vae/snapshots/rev5/model.safetensors.index.json\n"
  "huggingface | acme/sharded-vae/model.safetensors.index.json | VAE (AutoencoderKL)/autoencoder-kl | F32 | hub/models--acme--sharded-vae/snapshots/rev7/model.safetensors.index.json\n"
  "huggingface | acme/tiny-llm/extra/bad.safetensors | unknown/- | - | hub/models--acme--tiny-llm/blobs/badblob | error\n"
  "huggingface | acme/tiny-llm/tiny.Q8_0.gguf | language model/llama | Q8_0 | hub/models--acme--tiny-llm/blobs/" BLOB_HEX "\n"
  "lmstudio | pub/big-GGUF/big-00001-of-00002.gguf | unknown/- | - | lmstudio/pub/big-GGUF/big-00001-of-00002.gguf | error\n"
  "lmstudio | pub/repo-GGUF/repo.Q8_0.gguf | language model/llama | Q8_0 | lmstudio/pub/repo-GGUF/repo.Q8_0.gguf\n"
  "ollama | broken:latest | unknown/- | - | ollama/manifests/registry.ollama.ai/library/broken/latest | error\n"
  "ollama | lost:1b | unknown/- | - | ollama/blobs/sha256-" LOST_HEX " | error\n"
  "ollama | sneaky:latest | unknown/- | - | ollama/manifests/registry.ollama.ai/library/sneaky/latest | error\n"
  "ollama | tiny:latest | language model/llama | Q8_0 | ollama/blobs/sha256-" BLOB_HEX "\n"
  "ollama | someone/thing:q8 | language model/llama | Q8_0 | ollama/blobs/sha256-" BLOB_HEX2 "\n";

/* The three default sources through their override variables. */
static void
test_default_sources (void)
{
  g_autoptr (GError) error = NULL;
  AtelierDiscoveryOptions options = { 0 };
  g_autoptr (GPtrArray) found = atelier_discovery_scan (&options, NULL, &error);
  g_autofree char *got = NULL;
  AtelierFoundModel *m;

  g_assert_no_error (error);
  got = summary (found);
  g_assert_cmpstr (got, ==, expected_defaults);

  m = find_named (found, "acme/tiny-llm/tiny.Q8_0.gguf");
  g_assert_cmpstr (m->repo, ==, "acme/tiny-llm");
  g_assert_cmpstr (m->architecture, ==, "llama");
  g_assert_cmpint (m->format, ==, AT_MODEL_FORMAT_GGUF);
  g_assert_cmpuint (m->size, ==, 480);
  g_assert_cmpint (m->mtime_us, >, 0);
  g_assert_false (m->is_folder);
  g_assert_null (m->error);

  m = find_named (found, "acme/pipe");
  g_assert_true (m->is_folder);
  g_assert_cmpuint (m->size, >, 0);

  /* A file that cannot be opened says why and where. */
  m = find_named (found, "acme/tiny-llm/extra/bad.safetensors");
  g_assert_nonnull (strstr (m->error, "badblob"));

  m = find_named (found, "broken:latest");
  g_assert_nonnull (strstr (m->error, "not a JSON manifest"));
  g_assert_nonnull (strstr (m->error, "broken/latest"));
  m = find_named (found, "lost:1b");
  g_assert_nonnull (strstr (m->error, "missing"));
  m = find_named (found, "sneaky:latest");
  g_assert_nonnull (strstr (m->error, "64 hex digits"));
  m = find_named (found, "tiny:latest");
  g_assert_cmpstr (m->repo, ==, "tiny:latest");

  /* Sharded in the hub: listed by the snapshot's link (the shards are found by name beside
   * it), sized by the shards' blobs; rev6 (rev5's blobs) is not listed again, rev7 (another
   * second shard behind the same index blob) is. */
  {
    g_autofree char *index = under (hub, "models--acme--sharded-vae/snapshots/rev5/model.safetensors.index.json");
    g_autofree char *one = under (hub, "models--acme--sharded-vae/blobs/shard1");
    g_autofree char *two = under (hub, "models--acme--sharded-vae/blobs/shard2");

    m = find_named (found, "acme/sharded-vae/model.safetensors.index.json");
    assert_sharded (m, index, file_size (one) + file_size (two));
    g_assert_cmpstr (m->repo, ==, "acme/sharded-vae");
  }
  /* A shard still downloading: the one entry names it. */
  m = find_named (found, "acme/half-sharded/model.safetensors.index.json");
  g_assert_nonnull (strstr (m->error, "shard model-00002-of-00002.safetensors is missing"));
  g_assert_nonnull (strstr (m->error, "rev8/model.safetensors.index.json"));

  /* A split GGUF: part 1 says what it is and how to join the parts. */
  m = find_named (found, "pub/big-GGUF/big-00001-of-00002.gguf");
  g_assert_nonnull (strstr (m->error, "the first of 2 parts of a split GGUF"));
  g_assert_nonnull (strstr (m->error, "single-file GGUF only"));
  g_assert_nonnull (strstr (m->error, "llama-gguf-split --merge"));
  g_assert_nonnull (strstr (m->error, "big-00001-of-00002.gguf' 'big.gguf'"));
}

/* User folders and the user's list: the list comes first and keeps a path that the sources
 * also find; a missing listed file is reported, not dropped; the walk skips hidden folders,
 * ends symlink loops, reports bad bytes and lists a diffusers folder once. */
static void
test_user (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *missing = g_build_filename (root, "nowhere", "x.gguf", NULL);
  g_autofree char *hub_index = under (hub, "models--acme--sharded-vae/snapshots/rev5/model.safetensors.index.json");
  g_autofree char *part2 = under (user_dir, "big/tiny-00002-of-00003.gguf");
  g_autofree char *vae_index = under (user_dir, "big/vae.safetensors.index.json");
  g_autofree char *vae1 = under (user_dir, "big/vae-00001-of-00002.safetensors");
  g_autofree char *vae2 = under (user_dir, "big/vae-00002-of-00002.safetensors");
  g_autofree char *first = under (user_dir, "big/tiny-00001-of-00003.gguf");
  const char *const user_paths[] = { lms_gguf, missing, hub_index, part2, NULL };
  const char *const folders[] = { user_dir, NULL };
  /* Depth 1000: were the loop (sub/loop -> .., reached through both sub and also-sub)
   * followed, the walk would branch twice a level and never end. */
  AtelierDiscoveryOptions options = { user_paths, folders, TRUE, 1000 };
  g_autoptr (GPtrArray) found = atelier_discovery_scan (&options, NULL, &error);
  g_autofree char *got = NULL;
  AtelierFoundModel *m;

  g_assert_no_error (error);
  got = summary (found);
  g_assert_cmpstr (got, ==,
                   "user | repo.Q8_0.gguf | language model/llama | Q8_0 | lmstudio/pub/repo-GGUF/repo.Q8_0.gguf\n"
                   "user | x.gguf | unknown/- | - | nowhere/x.gguf | error\n"
                   "user | model.safetensors.index.json | VAE (AutoencoderKL)/autoencoder-kl | F32 | hub/models--acme--sharded-vae/snapshots/rev5/model.safetensors.index.json\n"
                   "user | tiny-00002-of-00003.gguf | unknown/- | - | mine/big/tiny-00002-of-00003.gguf | error\n"
                   "folder | a.gguf | language model/llama | Q8_0 | mine/a.gguf\n"
                   "folder | b.safetensors | unknown/- | F32 | mine/also-sub/b.safetensors\n"
                   "folder | bad.ckpt | unknown/- | - | mine/bad.ckpt | error\n"
                   "folder | gone.safetensors.index.json | unknown/- | - | mine/big/gone.safetensors.index.json | error\n"
                   "folder | tiny-00001-of-00003.gguf | unknown/- | - | mine/big/tiny-00001-of-00003.gguf | error\n"
                   "folder | torn-00001-of-00002.safetensors | unknown/- | F32 | mine/big/torn-00001-of-00002.safetensors\n"
                   "folder | torn.safetensors.index.json | unknown/- | - | mine/big/torn.safetensors.index.json | error\n"
                   "folder | vae.safetensors.index.json | VAE (AutoencoderKL)/autoencoder-kl | F32 | mine/big/vae.safetensors.index.json\n"
                   "folder | pipe | unknown/- | - | mine/pipe\n");
  m = find_named (found, "x.gguf");
  g_assert_nonnull (strstr (m->error, missing));
  m = find_named (found, "bad.ckpt");
  g_assert_nonnull (strstr (m->error, "bad.ckpt"));

  /* Sharded: one entry, the index, the shards' bytes; its shards are not listed. */
  assert_sharded (find_named (found, "vae.safetensors.index.json"), vae_index, file_size (vae1) + file_size (vae2));
  g_assert_null (find_named (found, "vae-00001-of-00002.safetensors"));
  /* A shard the index names but which is missing: named in the error; the other not listed. */
  m = find_named (found, "gone.safetensors.index.json");
  g_assert_nonnull (strstr (m->error, "big/gone.safetensors.index.json: shard gone-00002-of-00002.safetensors is missing"));
  g_assert_null (find_named (found, "gone-00001-of-00002.safetensors"));
  /* A malformed index: a problem, and its shard listed as it is. */
  m = find_named (found, "torn.safetensors.index.json");
  g_assert_nonnull (strstr (m->error, "big/torn.safetensors.index.json: not a sharded safetensors index"));
  g_assert_cmpint (m->kind, ==, AT_MODEL_KIND_UNKNOWN);
  /* A split GGUF: part 1 as a problem saying how to join the parts, parts 2 and 3 not found
   * by the walk (part 2 is there as the user listed it). */
  m = find_named (found, "tiny-00001-of-00003.gguf");
  {
    g_autofree char *quoted = g_shell_quote (first);
    g_autofree char *command = g_strdup_printf ("`llama-gguf-split --merge %s 'tiny.gguf'`", quoted);

    g_assert_nonnull (strstr (m->error, "the first of 3 parts of a split GGUF; Atelier opens single-file GGUF only"));
    g_assert_nonnull (strstr (m->error, command));
    m = find_named (found, "tiny-00002-of-00003.gguf");
    g_assert_cmpint (m->source, ==, ATELIER_MODEL_SOURCE_USER);
    g_assert_nonnull (strstr (m->error, "part 2 of 3 of a split GGUF"));
    g_assert_nonnull (strstr (m->error, command));
  }
  g_assert_null (find_named (found, "tiny-00003-of-00003.gguf"));

  /* With the default sources too, the user's entry is the only one for that file. */
  options.no_default_sources = FALSE;
  g_clear_pointer (&found, g_ptr_array_unref);
  found = atelier_discovery_scan (&options, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (find_named (found, "pub/repo-GGUF/repo.Q8_0.gguf"));
  g_assert_nonnull (find_named (found, "tiny:latest"));
  /* The listed hub index is the hub's rev5 (same index and shards): only rev7 is left. */
  g_assert_cmpuint (count_named (found, "acme/sharded-vae/model.safetensors.index.json"), ==, 1);
  g_assert_nonnull (strstr (find_named (found, "acme/sharded-vae/model.safetensors.index.json")->path, "/rev7/"));

  /* Depth 1: only the folder's own files. */
  options.no_default_sources = TRUE;
  options.user_paths = NULL;
  options.max_depth = 1;
  g_clear_pointer (&found, g_ptr_array_unref);
  found = atelier_discovery_scan (&options, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (find_named (found, "b.safetensors"));
  g_assert_nonnull (find_named (found, "a.gguf"));
}

/* A user folder that is a link to a hub snapshot: the snapshot's links ("../../blobs/...")
 * lead out of the real folder, not out of the link's parent; the shards are still found. */
static void
test_linked_snapshot (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *snap = under (hub, "models--acme--sharded-vae/snapshots/rev5");
  g_autofree char *linked = under (root, "linked-snapshot");
  g_autofree char *index = under (linked, "model.safetensors.index.json");
  g_autofree char *one = under (hub, "models--acme--sharded-vae/blobs/shard1");
  g_autofree char *two = under (hub, "models--acme--sharded-vae/blobs/shard2");
  const char *const folders[] = { linked, NULL };
  AtelierDiscoveryOptions options = { NULL, folders, TRUE, 0 };
  g_autoptr (GPtrArray) found = NULL;

  link_to (snap, linked);
  found = atelier_discovery_scan (&options, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (found->len, ==, 1);
  assert_sharded (g_ptr_array_index (found, 0), index, file_size (one) + file_size (two));
}

typedef struct
{
  GMainLoop *loop;
  GPtrArray *found;
  GError *error;
} AsyncResult;

static void
scan_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AsyncResult *r = user_data;

  r->found = atelier_discovery_scan_finish (result, &r->error);
  g_main_loop_quit (r->loop);
}

/* Off the main thread: the same list as the synchronous scan, delivered on the main loop;
 * a cancelled scan ends with G_IO_ERROR_CANCELLED (sync and async). */
static void
test_async (void)
{
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GError) error = NULL;
  const char *const folders[] = { user_dir, NULL };
  AtelierDiscoveryOptions options = { NULL, folders, FALSE, 0 };
  AsyncResult r = { loop, NULL, NULL };
  g_autoptr (GPtrArray) sync = atelier_discovery_scan (&options, NULL, &error);
  g_autofree char *want = summary (sync);
  g_autofree char *got = NULL;

  atelier_discovery_scan_async (&options, NULL, scan_done_cb, &r);
  g_main_loop_run (loop);
  g_assert_no_error (r.error);
  got = summary (r.found);
  g_assert_cmpstr (got, ==, want);
  g_clear_pointer (&r.found, g_ptr_array_unref);

  g_cancellable_cancel (cancellable);
  atelier_discovery_scan_async (&options, cancellable, scan_done_cb, &r);
  g_main_loop_run (loop);
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (r.found);
  g_clear_error (&r.error);

  g_assert_null (atelier_discovery_scan (&options, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* Every entry of a real home that happens to have none of the tools: an empty list, no error. */
static void
test_absent_roots (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *none = g_build_filename (root, "absent", NULL);
  const char *const folders[] = { none, NULL };
  AtelierDiscoveryOptions options = { NULL, folders, TRUE, 0 };
  g_autoptr (GPtrArray) found = atelier_discovery_scan (&options, NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (found->len, ==, 0);
}

/* The store's user_models: add returns the same id twice, list is oldest first, remove by id
 * and by path, and removing what is not there is NOT_FOUND. */
static void
test_store_user_models (void)
{
  g_autofree char *dir = g_build_filename (root, "store-api", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtelierStore) store = atelier_store_open (dir, &error);
  g_autoptr (GPtrArray) list = NULL;
  gint64 a, b;

  g_assert_no_error (error);
  a = atelier_store_add_user_model (store, "/m/a.gguf", &error);
  g_assert_no_error (error);
  b = atelier_store_add_user_model (store, "/m/b.gguf", &error);
  g_assert_no_error (error);
  g_assert_cmpint (a, >, 0);
  g_assert_cmpint (b, >, a);
  g_assert_cmpint (atelier_store_add_user_model (store, "/m/a.gguf", &error), ==, a);
  g_assert_no_error (error);
  g_assert_cmpint (atelier_store_add_user_model (store, "", &error), ==, 0);
  g_assert_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_INVALID);
  g_clear_error (&error);
  list = atelier_store_list_user_models (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 2);
  g_assert_cmpstr (((AtelierUserModel *) g_ptr_array_index (list, 0))->path, ==, "/m/a.gguf");
  g_assert_cmpint (((AtelierUserModel *) g_ptr_array_index (list, 0))->added_us, >, 0);
  g_assert_true (atelier_store_remove_user_model (store, a, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (atelier_store_remove_user_model (store, a, NULL, &error));
  g_assert_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_true (atelier_store_remove_user_model (store, 0, "/m/b.gguf", &error));
  g_assert_no_error (error);
  g_assert_false (atelier_store_remove_user_model (store, 0, "/m/b.gguf", &error));
  g_assert_error (error, ATELIER_STORE_ERROR, ATELIER_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_clear_pointer (&list, g_ptr_array_unref);
  list = atelier_store_list_user_models (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 0);
}

typedef struct
{
  int status;
  char *out, *err;
} Run;

static void
run_clear (Run *r)
{
  g_clear_pointer (&r->out, g_free);
  g_clear_pointer (&r->err, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Run, run_clear)

/* `atelier ARGS...` with its own data dir and the fixture's roots. */
static void
run_atelier (Run *r, ...)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr (GSubprocess) proc = NULL;
  g_autofree char *data = g_build_filename (root, "cli-data", NULL);
  const char *arg;
  va_list ap;

  run_clear (r);
  g_ptr_array_add (argv, (gpointer) g_getenv ("ATELIER_BIN"));
  va_start (ap, r);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_subprocess_launcher_setenv (launcher, "ATELIER_DATA_DIR", data, TRUE);
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (proc, NULL, NULL, &r->out, &r->err, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (proc));
  r->status = g_subprocess_get_exit_status (proc);
}

static JsonArray *
parse_list (JsonNode **root_out, const char *text)
{
  g_autoptr (GError) error = NULL;

  *root_out = json_from_string (text, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (*root_out));
  return json_node_get_array (*root_out);
}

static JsonObject *
json_named (JsonArray *arr, const char *name)
{
  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      JsonObject *o = json_array_get_object_element (arr, i);

      if (g_strcmp0 (json_object_get_string_member (o, "name"), name) == 0)
        return o;
    }
  return NULL;
}

static void
test_cli (void)
{
  g_auto (Run) r = { 0 };
  g_autoptr (JsonNode) node = NULL;
  g_autofree char *bad = g_build_filename (user_dir, "bad.ckpt", NULL);
  g_autofree char *split = g_build_filename (user_dir, "big", "tiny-00001-of-00003.gguf", NULL);
  g_autofree char *vae1 = g_build_filename (user_dir, "big", "vae-00001-of-00002.safetensors", NULL);
  g_autofree char *vae2 = g_build_filename (user_dir, "big", "vae-00002-of-00002.safetensors", NULL);
  g_autofree char *id = NULL;
  JsonArray *arr;
  JsonObject *o;

  if (g_getenv ("ATELIER_BIN") == NULL)
    {
      g_test_skip ("ATELIER_BIN is not set");
      return;
    }
  /* A file Atelier cannot open is refused, with the reason and the path. */
  run_atelier (&r, "models", "add", bad, NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, bad));
  /* So is a split GGUF's part, though it opens as a GGUF (with a third of the tensors). */
  run_atelier (&r, "models", "add", split, NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "the first of 3 parts of a split GGUF"));
  run_atelier (&r, "models", "add", gguf_path, NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, gguf_path));
  g_assert_nonnull (strstr (r.out, "language model/llama"));
  id = g_strndup (r.out, strcspn (r.out, "\t"));

  run_atelier (&r, "models", "list", "--json", "--folder", user_dir, NULL);
  g_assert_cmpint (r.status, ==, 0);
  arr = parse_list (&node, r.out);
  o = json_named (arr, "tiny.gguf");
  g_assert_nonnull (o);
  g_assert_cmpstr (json_object_get_string_member (o, "source"), ==, "user");
  g_assert_cmpint (json_object_get_int_member (o, "id"), ==, g_ascii_strtoll (id, NULL, 10));
  g_assert_cmpstr (json_object_get_string_member (o, "kind"), ==, "language model");
  g_assert_cmpstr (json_object_get_string_member (o, "quant"), ==, "Q8_0");
  g_assert_true (json_object_get_null_member (o, "error"));
  o = json_named (arr, "bad.ckpt");
  g_assert_nonnull (strstr (json_object_get_string_member (o, "error"), "bad.ckpt"));
  o = json_named (arr, "lost:1b");
  g_assert_nonnull (strstr (json_object_get_string_member (o, "error"), "missing"));
  /* A sharded model once, with its shards' bytes; a split GGUF once, as a problem. */
  o = json_named (arr, "vae.safetensors.index.json");
  g_assert_nonnull (o);
  g_assert_true (json_object_get_null_member (o, "error"));
  g_assert_cmpint (json_object_get_int_member (o, "size"), ==, (gint64) (file_size (vae1) + file_size (vae2)));
  g_assert_null (json_named (arr, "vae-00002-of-00002.safetensors"));
  o = json_named (arr, "tiny-00001-of-00003.gguf");
  g_assert_nonnull (strstr (json_object_get_string_member (o, "error"), "split GGUF"));
  g_assert_null (json_named (arr, "tiny-00002-of-00003.gguf"));
  g_assert_nonnull (json_named (arr, "acme/tiny-llm/tiny.Q8_0.gguf"));

  /* Text: one line a model, problems also on stderr. */
  run_atelier (&r, "models", "list", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "user#"));
  g_assert_nonnull (strstr (r.out, "tiny:latest"));
  g_assert_nonnull (strstr (r.err, "broken:latest"));
  g_assert_null (strstr (r.out, "bad.ckpt"));

  run_atelier (&r, "models", "remove", id, NULL);
  g_assert_cmpint (r.status, ==, 0);
  run_atelier (&r, "models", "remove", id, NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "no model"));
  run_atelier (&r, "models", "add", lms_gguf, NULL);
  g_assert_cmpint (r.status, ==, 0);
  run_atelier (&r, "models", "remove", lms_gguf, NULL);
  g_assert_cmpint (r.status, ==, 0);
  run_atelier (&r, "models", "remove", lms_gguf, NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "not in your list"));
  run_atelier (&r, "models", "list", "--json", NULL);
  g_clear_pointer (&node, json_node_unref);
  arr = parse_list (&node, r.out);
  g_assert_null (json_named (arr, "tiny.gguf"));
  run_atelier (&r, "models", "frobnicate", NULL);
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "models list"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  build_trees ();
  /* Before any thread starts: the scans (and the CLI's children) read these. */
  g_setenv ("ATELIER_HF_HUB_CACHE", hub, TRUE);
  g_setenv ("ATELIER_LMSTUDIO_DIR", lms, TRUE);
  g_setenv ("ATELIER_OLLAMA_DIR", oll, TRUE);
  g_test_add_func ("/app/discovery/default-sources", test_default_sources);
  g_test_add_func ("/app/discovery/user", test_user);
  g_test_add_func ("/app/discovery/linked-snapshot", test_linked_snapshot);
  g_test_add_func ("/app/discovery/async", test_async);
  g_test_add_func ("/app/discovery/absent-roots", test_absent_roots);
  g_test_add_func ("/app/discovery/store-user-models", test_store_user_models);
  g_test_add_func ("/app/discovery/cli", test_cli);
  return g_test_run ();
}
