/* test-cli.c: `atelier --version`, `atelier devices [--json]` and its errors, `atelier bench`
 * argument handling, `bench text` with its llama.cpp anchor, `atelier models inspect` on real
 * files and a broken one, run as subprocesses of the real binary ($ATELIER_BIN). */
#include "at-test-util.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

typedef struct
{
  int status;
  char *out, *err;
} Run;

static void
run_clear (Run *r)
{
  g_free (r->out);
  g_free (r->err);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Run, run_clear)

static void
run (Run *r, const char *const *env_extra, ...)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_auto (GStrv) env = g_get_environ ();
  const char *arg;
  va_list ap;
  int wait_status = 0;

  g_ptr_array_add (argv, (gpointer) g_getenv ("ATELIER_BIN"));
  va_start (ap, env_extra);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  for (guint i = 0; env_extra != NULL && env_extra[i] != NULL; i += 2)
    env = g_environ_setenv (env, env_extra[i], env_extra[i + 1], TRUE);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, env, G_SPAWN_DEFAULT, NULL, NULL, &r->out,
                               &r->err, &wait_status, &error));
  g_assert_no_error (error);
  r->status = WIFEXITED (wait_status) ? WEXITSTATUS (wait_status) : 128 + WTERMSIG (wait_status);
}

static void
test_version (void)
{
  g_auto (Run) r = { 0 };

  run (&r, NULL, "--version", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (g_str_has_prefix (r.out, "atelier "));
}

static void
test_devices_json (void)
{
  g_auto (Run) r = { 0 };
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonArray *arr;
  JsonObject *dev;
  guint n_default = 0;

  run (&r, NULL, "devices", "--json", NULL);
  if (r.status != 0 && g_strcmp0 (g_getenv ("ATELIER_REQUIRE_VULKAN"), "1") != 0)
    {
      g_test_skip_printf ("no Vulkan device: %s", r.err);
      return;
    }
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (json_parser_load_from_data (parser, r.out, -1, &error));
  g_assert_no_error (error);
  arr = json_node_get_array (json_parser_get_root (parser));
  g_assert_cmpuint (json_array_get_length (arr), >=, 1);
  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      dev = json_array_get_object_element (arr, i);
      g_assert_true (json_object_has_member (dev, "name"));
      g_assert_true (json_object_has_member (dev, "type"));
      g_assert_true (json_object_has_member (dev, "heaps"));
      g_assert_true (json_object_has_member (dev, "fp16_arithmetic"));
      g_assert_true (json_object_has_member (dev, "storage_16bit"));
      g_assert_true (json_object_has_member (dev, "subgroup_size"));
      g_assert_true (json_object_has_member (dev, "subgroup_operations"));
      g_assert_true (json_object_has_member (dev, "integer_dot_product"));
      g_assert_true (json_object_has_member (dev, "cooperative_matrix"));
      n_default += json_object_get_boolean_member (dev, "default");
    }
  g_assert_cmpuint (n_default, ==, 1);
}

static void
test_devices_text (void)
{
  g_auto (Run) r = { 0 };

  run (&r, NULL, "devices", NULL);
  if (r.status != 0 && g_strcmp0 (g_getenv ("ATELIER_REQUIRE_VULKAN"), "1") != 0)
    {
      g_test_skip ("no Vulkan device");
      return;
    }
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "subgroup"));
  g_assert_nonnull (strstr (r.out, "memory heap 0"));
}

/* No Vulkan loader at all: a one-line reason that says how to install lavapipe. */
static void
test_devices_no_vulkan (void)
{
  const char *env[] = { "ATELIER_VULKAN_LOADER", "/nonexistent/libvulkan.so.1", NULL };
  g_auto (Run) r = { 0 };

  run (&r, env, "devices", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "mesa-vulkan-drivers"));
  g_assert_cmpuint (strlen (r.err), <, 300);
}

static void
test_bad_device_name (void)
{
  const char *env[] = { "ATELIER_DEVICE", "no-such-gpu", NULL };
  g_auto (Run) r = { 0 };

  run (&r, env, "bench", "ops", "--no-anchors", "--filter", "nothing-matches", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "ATELIER_DEVICE=no-such-gpu names no Vulkan device"));
}

static void
test_bench_usage (void)
{
  g_auto (Run) r = { 0 };

  run (&r, NULL, "bench", NULL);
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "atelier bench ops"));
}

/* One cheap case end to end, with JSON records that name the device. */
static void
test_bench_json (void)
{
  g_auto (Run) r = { 0 };
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonArray *arr;

  run (&r, NULL, "bench", "ops", "--json", "--quick", "--no-anchors", "--filter", "dispatch", NULL);
  if (r.status != 0 && g_strcmp0 (g_getenv ("ATELIER_REQUIRE_VULKAN"), "1") != 0)
    {
      g_test_skip ("no Vulkan device");
      return;
    }
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (json_parser_load_from_data (parser, r.out, -1, &error));
  arr = json_node_get_array (json_parser_get_root (parser));
  g_assert_cmpuint (json_array_get_length (arr), ==, 2);
  g_assert_true (json_object_has_member (json_array_get_object_element (arr, 0), "device"));
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (arr, 1), "op"), ==,
                   "dispatch");
  g_assert_cmpfloat (json_object_get_double_member (json_array_get_object_element (arr, 1), "us"), >, 0);
}

/* `atelier bench models`: it writes its own files, opens and uploads them, and reports four
 * figures (in JSON after the device and anchor records). */
static void
test_bench_models (void)
{
  g_auto (Run) r = { 0 };
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonArray *records;
  guint n_cases = 0;

  run (&r, NULL, "bench", "models", "--quick", "--json", NULL);
  g_assert_cmpint (r.status, ==, 0);
  json_parser_load_from_data (parser, r.out, -1, &error);
  g_assert_no_error (error);
  records = json_node_get_array (json_parser_get_root (parser));
  for (guint i = 0; i < json_array_get_length (records); i++)
    {
      JsonObject *o = json_array_get_object_element (records, i);

      if (!json_object_has_member (o, "case"))
        continue;
      n_cases++;
      g_assert_true (json_object_has_member (o, "ms") || json_object_has_member (o, "gbps"));
    }
  g_assert_cmpuint (n_cases, ==, 4);
}

/* A stand-in for llama.cpp's llama-bench at `path`: it writes its arguments to `path`.args and
 * prints `body` (with exit status `status`), so the test can check what bench text asks of the
 * anchor and how it reads the answer. The real llama-bench is measured by hand (README). */
static void
write_llama_bench (const char *path, const char *body, int status)
{
  g_autofree char *script = g_strdup_printf ("#!/bin/sh\necho \"$@\" > \"$0.args\"\n%s\nexit %d\n",
                                             body, status);

  at_test_write_text (path, script);
  g_assert_cmpint (g_chmod (path, 0755), ==, 0);
}

/* The first record whose `member` is `value` (or, when `value` ends in '*', starts with it). */
static JsonObject *
find_record (JsonArray *records, const char *member, const char *value)
{
  gsize n = strlen (value);
  gboolean prefix = n > 0 && value[n - 1] == '*';

  for (guint i = 0; i < json_array_get_length (records); i++)
    {
      JsonObject *o = json_array_get_object_element (records, i);
      const char *got = json_object_get_string_member_with_default (o, member, NULL);

      if (got != NULL && (prefix ? strncmp (got, value, n - 1) == 0 : strcmp (got, value) == 0))
        return o;
    }
  return NULL;
}

/* `atelier bench text --quick` on tools/ref/tiny_llm.py's chat model: the anchor is asked for
 * the same file, lengths and cores, its generation at the depth ours runs at (after the prompt)
 * as well as from an empty context, its speeds become the ratios of ours; one without -d is
 * asked again without it; a failing anchor is reported and the bench still measures. */
static void
test_bench_text (void)
{
  g_autofree char *dir = g_build_filename (at_test_tmpdir (), "bench-text", NULL);
  g_autofree char *model = g_build_filename (dir, "llama_chat.gguf", NULL);
  g_autofree char *fake = g_build_filename (dir, "llama-bench", NULL);
  g_autofree char *args_path = g_strconcat (fake, ".args", NULL), *args = NULL;
  g_autofree char *want_args = NULL;
  const char *tool_args[] = { dir, NULL };
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonArray *records;
  JsonObject *anchor, *prompt, *gen;
  double kv16 = 0;

  if (!at_test_run_ref_tool ("tiny_llm.py", tool_args))
    return;
  write_llama_bench (fake,
                     "echo '[{\"build_commit\": \"abc123\", \"n_prompt\": 128, \"n_gen\": 0, "
                     "\"n_depth\": 0, \"avg_ts\": 1000.0}, {\"build_commit\": \"abc123\", "
                     "\"n_prompt\": 0, \"n_gen\": 32, \"n_depth\": 0, \"avg_ts\": 500.0}, "
                     "{\"n_prompt\": 128, \"n_gen\": 0, \"n_depth\": 128, \"avg_ts\": 900.0}, "
                     "{\"n_prompt\": 0, \"n_gen\": 32, \"n_depth\": 128, \"avg_ts\": 400.0}]'", 0);
  {
    g_auto (Run) r = { 0 };

    run (&r, NULL, "bench", "text", "--quick", "--json", "--model", model, "--llama-bench", fake, NULL);
    if (r.status != 0 && g_strcmp0 (g_getenv ("ATELIER_REQUIRE_VULKAN"), "1") != 0)
      {
        g_test_skip ("no Vulkan device");
        return;
      }
    g_assert_cmpint (r.status, ==, 0);
    g_assert_true (json_parser_load_from_data (parser, r.out, -1, &error));
    records = json_node_get_array (json_parser_get_root (parser));
    anchor = find_record (records, "anchor", "llama_cpp_cpu");
    g_assert_nonnull (anchor);
    g_assert_cmpstr (json_object_get_string_member (anchor, "build"), ==, "abc123");
    g_assert_cmpfloat (json_object_get_double_member (anchor, "prompt_tokens_per_s"), ==, 1000.0);
    g_assert_cmpfloat (json_object_get_double_member (anchor, "generate_tokens_per_s"), ==, 400.0);
    g_assert_cmpint (json_object_get_int_member (anchor, "generate_depth"), ==, 128);
    g_assert_cmpfloat (json_object_get_double_member (anchor,
                                                      "generate_empty_context_tokens_per_s"),
                       ==, 500.0);
    prompt = find_record (records, "case", "prompt, 128 tokens");
    gen = find_record (records, "case", "generate, *"); /* 32 tokens, or fewer at an end of text */
    g_assert_nonnull (prompt);
    g_assert_nonnull (gen);
    g_assert_cmpfloat_with_epsilon (json_object_get_double_member (prompt, "vs_anchor"),
                                    json_object_get_double_member (prompt, "tokens_per_s") / 1000.0, 2e-3);
    g_assert_cmpfloat_with_epsilon (json_object_get_double_member (gen, "vs_anchor"),
                                    json_object_get_double_member (gen, "tokens_per_s") / 400.0, 2e-3);
    g_assert_true (g_file_get_contents (args_path, &args, NULL, NULL));
    want_args = g_strdup_printf ("-m %s -p 128 -n 32 -t %u -r 1 -o json -d 0,128\n", model,
                                 g_get_num_processors ());
    g_assert_cmpstr (args, ==, want_args);
    /* Device memory: the weights, the KV cache (f16 by default), the activations. */
    g_assert_nonnull (find_record (records, "case", "device memory, weights"));
    g_assert_nonnull (find_record (records, "case", "device memory, activations"));
    kv16 = json_object_get_double_member (find_record (records, "case", "device memory, KV cache (*"),
                                          "mib");
    /* What a user waits for before the first token: the load, and the first run, which
     * compiles the graphs (figures only, no bound on them). */
    g_assert_cmpfloat (json_object_get_double_member (
                         find_record (records, "case", "load: tokenizer, weights to the device"), "ms"),
                       >, 0);
    g_assert_cmpfloat (json_object_get_double_member (
                         find_record (records, "case", "first run: time to first token, compiling"), "ms"),
                       >, 0);
  }
  {
    g_auto (Run) r = { 0 };
    g_autoptr (JsonParser) p32 = json_parser_new ();

    /* An f32 cache holds twice the bytes. */
    run (&r, NULL, "bench", "text", "--quick", "--json", "--no-anchors", "--model", model,
         "--kv-type", "f32", NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_true (json_parser_load_from_data (p32, r.out, -1, &error));
    records = json_node_get_array (json_parser_get_root (p32));
    g_assert_cmpfloat (kv16, >, 0);
    g_assert_cmpfloat_with_epsilon (json_object_get_double_member (
                                      find_record (records, "case", "device memory, KV cache (*"), "mib"),
                                    2 * kv16, 0.02); /* two decimals each */
  }
  {
    g_auto (Run) r = { 0 };

    run (&r, NULL, "bench", "text", "--model", model, "--kv-type", "q8_0", NULL);
    g_assert_cmpint (r.status, ==, 2);
    g_assert_nonnull (strstr (r.err, "--kv-type is f16 or f32, not \"q8_0\""));
  }
  /* A llama-bench without -d: asked again without it, its generation from an empty context is
   * the anchor, and stderr says the depths differ. */
  write_llama_bench (fake,
                     "case \"$*\" in *' -d '*) "
                     "echo 'error: invalid parameter for argument: -d' >&2; exit 1;; esac\n"
                     "echo '[{\"n_prompt\": 128, \"n_gen\": 0, \"avg_ts\": 1000.0}, "
                     "{\"n_prompt\": 0, \"n_gen\": 32, \"avg_ts\": 500.0}]'", 0);
  {
    g_auto (Run) r = { 0 };
    g_autoptr (JsonParser) p1 = json_parser_new ();

    run (&r, NULL, "bench", "text", "--quick", "--json", "--model", model, "--llama-bench", fake, NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_nonnull (strstr (r.err, "llama-bench measured generation from an empty context only"));
    g_assert_nonnull (strstr (r.err, "invalid parameter for argument: -d"));
    g_assert_true (json_parser_load_from_data (p1, r.out, -1, &error));
    records = json_node_get_array (json_parser_get_root (p1));
    anchor = find_record (records, "anchor", "llama_cpp_cpu");
    g_assert_nonnull (anchor);
    g_assert_cmpfloat (json_object_get_double_member (anchor, "generate_tokens_per_s"), ==, 500.0);
    g_assert_cmpint (json_object_get_int_member (anchor, "generate_depth"), ==, 0);
    g_clear_pointer (&args, g_free);
    g_assert_true (g_file_get_contents (args_path, &args, NULL, NULL));
    g_assert_null (strstr (args, "-d"));
  }
  /* An anchor that fails: said on stderr with its own last words; no ratios. */
  write_llama_bench (fake, "echo 'llama_model_load: error loading model' >&2", 3);
  {
    g_auto (Run) r = { 0 };
    g_autoptr (JsonParser) p2 = json_parser_new ();

    run (&r, NULL, "bench", "text", "--quick", "--json", "--model", model, "--llama-bench", fake, NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_nonnull (strstr (r.err, "the llama.cpp anchor failed: llama_model_load: error loading model"));
    g_assert_true (json_parser_load_from_data (p2, r.out, -1, &error));
    records = json_node_get_array (json_parser_get_root (p2));
    g_assert_null (find_record (records, "anchor", "llama_cpp_cpu"));
    prompt = find_record (records, "case", "prompt, 128 tokens");
    g_assert_nonnull (prompt);
    g_assert_false (json_object_has_member (prompt, "vs_anchor"));
  }
}

/* ../shared/data/`relative`, or NULL after a skip (fatal when ATELIER_REQUIRE_SHARED=1). */
static char *
shared_path (const char *relative)
{
  g_autofree char *path = g_build_filename (g_getenv ("G_TEST_SRCDIR"), "..", "..", "shared", "data", relative, NULL);

  if (g_file_test (path, G_FILE_TEST_EXISTS))
    return g_steal_pointer (&path);
  if (g_strcmp0 (g_getenv ("ATELIER_REQUIRE_SHARED"), "1") == 0)
    g_error ("ATELIER_REQUIRE_SHARED=1 but %s is missing", path);
  g_test_skip_printf ("%s is missing", path);
  return NULL;
}

static void
test_models_inspect_gguf (void)
{
  g_autofree char *path = shared_path ("tokenizers/ggml-vocab-llama-spm.gguf");
  g_auto (Run) r = { 0 };
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonObject *o, *tokens;

  if (path == NULL)
    return;
  run (&r, NULL, "models", "inspect", path, "--json", NULL);
  g_assert_cmpint (r.status, ==, 0);
  json_parser_load_from_data (parser, r.out, -1, &error);
  g_assert_no_error (error);
  o = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (o, "format"), ==, "GGUF");
  g_assert_cmpstr (json_object_get_string_member (o, "kind"), ==, "language model");
  g_assert_cmpstr (json_object_get_string_member (o, "family"), ==, "llama");
  g_assert_true (json_object_get_boolean_member (o, "vocabulary_only"));
  g_assert_cmpint (json_object_get_int_member (o, "tensor_count"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (o, "hyperparameters"), "vocab_size"),
                   ==, 32000);
  /* A 32000-entry array is summarised, not printed whole. */
  tokens = json_object_get_object_member (json_object_get_object_member (o, "metadata"), "tokenizer.ggml.tokens");
  g_assert_nonnull (tokens);
  g_assert_cmpint (json_object_get_int_member (tokens, "length"), ==, 32000);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (o, "metadata"), "tokenizer.ggml.model"),
                   ==, "llama");
  g_assert_cmpuint (strlen (r.out), <, 20000);
}

static void
test_models_inspect_tensors (void)
{
  g_autofree char *path = shared_path ("style/wave");
  g_auto (Run) r = { 0 };

  if (path == NULL)
    return;
  run (&r, NULL, "models", "inspect", path, "--tensors", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "style network, family engstrom"));
  g_assert_nonnull (strstr (r.out, "tensors     48"));
  g_assert_nonnull (strstr (r.out, "\n  Variable_12 "));
  g_assert_true (g_regex_match_simple ("\\n  Variable_12 +F32 +\\[3, 3, 128, 128\\]", r.out, 0, 0));
}

static void
test_models_inspect_errors (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("atelier-cli-XXXXXX", &error);
  g_autofree char *bad = g_build_filename (dir, "broken.safetensors", NULL);
  g_auto (Run) r = { 0 }, usage = { 0 };

  g_assert_no_error (error);
  /* A header length far past the end of the file. */
  g_file_set_contents (bad, "\xff\xff\xff\xff\x00\x00\x00\x00{}", 10, &error);
  g_assert_no_error (error);
  run (&r, NULL, "models", "inspect", bad, NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "broken.safetensors"));
  run (&usage, NULL, "models", NULL);
  g_assert_cmpint (usage.status, ==, 2);
  g_assert_nonnull (strstr (usage.err, "models inspect PATH"));
  g_unlink (bad);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/app/cli/version", test_version);
  g_test_add_func ("/app/cli/devices-json", test_devices_json);
  g_test_add_func ("/app/cli/devices-text", test_devices_text);
  g_test_add_func ("/app/cli/devices-no-vulkan", test_devices_no_vulkan);
  g_test_add_func ("/app/cli/bad-device-name", test_bad_device_name);
  g_test_add_func ("/app/cli/bench-usage", test_bench_usage);
  g_test_add_func ("/app/cli/bench-json", test_bench_json);
  g_test_add_func ("/app/cli/bench-models", test_bench_models);
  g_test_add_func ("/app/cli/bench-text", test_bench_text);
  g_test_add_func ("/app/cli/models-inspect-gguf", test_models_inspect_gguf);
  g_test_add_func ("/app/cli/models-inspect-tensors", test_models_inspect_tensors);
  g_test_add_func ("/app/cli/models-inspect-errors", test_models_inspect_errors);
  return g_test_run ();
}
