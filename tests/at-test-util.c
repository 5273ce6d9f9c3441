/* at-test-util.c: helpers shared by the engine tests. */
#include "at-test-util.h"

#include <math.h>

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

typedef struct
{
  AtTensor *tensor;
  GBytes *data;
} Pending;

static GArray *pending;

AtDevice *
at_test_device (void)
{
  g_autoptr (GError) error = NULL;
  AtDevice *dev = at_device_get_default (&error);

  if (dev != NULL)
    return dev;
  if (g_strcmp0 (g_getenv ("ATELIER_REQUIRE_VULKAN"), "1") == 0)
    g_error ("ATELIER_REQUIRE_VULKAN=1 but no Vulkan device: %s", error->message);
  g_test_skip_printf ("no Vulkan device: %s", error->message);
  return NULL;
}

static gboolean
require_shared (void)
{
  return g_strcmp0 (g_getenv ("ATELIER_REQUIRE_SHARED"), "1") == 0;
}

char *
at_test_shared_path (const char *relative)
{
  const char *srcdir = g_getenv ("G_TEST_SRCDIR"); /* tests/ */
  g_autofree char *path = NULL;

  if (srcdir == NULL)
    srcdir = ".";
  path = g_build_filename (srcdir, "..", "..", "shared", "data", relative, NULL);
  if (g_file_test (path, G_FILE_TEST_EXISTS))
    return g_steal_pointer (&path);
  if (require_shared ())
    g_error ("ATELIER_REQUIRE_SHARED=1 but %s is missing", path);
  g_test_skip_printf ("%s is missing (../shared/data beside the source tree)", path);
  return NULL;
}

gboolean
at_test_run_ref_tool (const char *script, const char *const *args)
{
  const char *srcdir = g_getenv ("G_TEST_SRCDIR");
  g_autofree char *path = g_build_filename (srcdir != NULL ? srcdir : ".", "..", "tools", "ref", script, NULL);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL, *err = NULL;
  int status;

  if (!g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE))
    {
      if (require_shared ())
        g_error ("ATELIER_REQUIRE_SHARED=1 but /usr/bin/python3 is missing");
      g_test_skip ("no /usr/bin/python3");
      return FALSE;
    }
  g_ptr_array_add (argv, (gpointer) "/usr/bin/python3");
  g_ptr_array_add (argv, path);
  for (guint i = 0; args != NULL && args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  if (!g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error))
    g_error ("%s: %s", path, error->message);
  if (WIFEXITED (status) && WEXITSTATUS (status) == 77)
    {
      if (require_shared ())
        g_error ("ATELIER_REQUIRE_SHARED=1 but %s cannot run: %s", script, err);
      g_test_skip_printf ("%s cannot run here: %s", script, err);
      return FALSE;
    }
  if (!g_spawn_check_wait_status (status, &error))
    g_error ("%s failed (%s):\n%s%s", script, error->message, out, err);
  return TRUE;
}

static char *tmpdir;

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
remove_tmpdir (void)
{
  if (tmpdir != NULL)
    remove_tree (tmpdir);
}

const char *
at_test_tmpdir (void)
{
  if (tmpdir == NULL)
    {
      g_autoptr (GError) error = NULL;

      tmpdir = g_dir_make_tmp ("atelier-test-XXXXXX", &error);
      g_assert_no_error (error);
      atexit (remove_tmpdir);
    }
  return tmpdir;
}

void
at_test_fill (float *x, gsize n, float lo, float hi)
{
  for (gsize i = 0; i < n; i++)
    x[i] = (float) g_test_rand_double_range (lo, hi);
}

gboolean
at_test_is_f16_of (float got, float want)
{
  /* An f16 ulp at |want| is at most |want| / 1024 (2^-24 among the subnormals). */
  return at_f16_to_f32 (at_f32_to_f16 (got)) == got
         && fabsf (got - want) <= fabsf (want) / 1024.0f + 6.0e-8f;
}

static GBytes *
encode_values (AtDtype dtype, const float *values, gint64 n)
{
  gsize bytes = at_dtype_row_bytes (dtype, n);
  guint8 *raw = g_malloc (MAX (bytes, 1));

  at_quantize_row (dtype, values, raw, n);
  return g_bytes_new_take (raw, bytes);
}

AtTensor *
at_test_input_values (AtGraph *g, const char *name, AtDtype dtype, int ndim, const gint64 *shape,
                      const float *values)
{
  AtTensor *t = at_graph_input (g, name, dtype, ndim, shape);
  Pending p;

  g_assert_nonnull (t);
  if (pending == NULL)
    pending = g_array_new (FALSE, FALSE, sizeof (Pending));
  p.tensor = t;
  p.data = encode_values (dtype, values, at_tensor_numel (t));
  g_array_append_val (pending, p);
  return t;
}

AtTensor *
at_test_input (AtGraph *g, const char *name, AtDtype dtype, int ndim, const gint64 *shape, float lo,
               float hi)
{
  gint64 n = 1;
  g_autofree float *v = NULL;

  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  v = g_new (float, n);
  at_test_fill (v, (gsize) n, lo, hi);
  return at_test_input_values (g, name, dtype, ndim, shape, v);
}

AtTensor *
at_test_weight (AtGraph *g, const char *name, AtDtype dtype, int ndim, const gint64 *shape, float lo,
                float hi)
{
  g_autoptr (GError) error = NULL;
  gint64 n = 1;
  g_autofree float *v = NULL;
  g_autoptr (GBytes) raw = NULL;
  g_autoptr (AtBuffer) buf = NULL;

  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  v = g_new (float, n);
  at_test_fill (v, (gsize) n, lo, hi);
  raw = encode_values (dtype, v, n);
  buf = at_buffer_new (at_graph_get_device (g), g_bytes_get_size (raw), AT_BUFFER_DEVICE, name, &error);
  g_assert_no_error (error);
  g_assert_true (at_buffer_upload (buf, 0, g_bytes_get_data (raw, NULL), g_bytes_get_size (raw), &error));
  g_assert_no_error (error);
  return at_graph_weight (g, name, dtype, ndim, shape, buf, 0);
}

void
at_test_expect_error (AtGraph *g, AtTensor *y, const char *fragment)
{
  g_autoptr (GError) error = NULL;

  g_assert_null (y);
  g_assert_false (at_graph_check (g, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_SHAPE);
  if (strstr (error->message, fragment) == NULL)
    g_error ("expected \"%s\" in: %s", fragment, error->message);
  g_test_message ("%s", error->message);
}

double
at_test_run (AtGraph *g, AtTensor *out)
{
  g_autoptr (GError) error = NULL;
  g_autofree float *gpu = NULL, *ref = NULL;
  gint64 n;

  if (!at_graph_check (g, &error))
    g_error ("building the graph: %s", error->message);
  at_graph_output (g, out, NULL);
  if (!at_graph_compile (g, &error))
    g_error ("compiling: %s", error->message);
  g_assert_true (at_graph_verify_arena (g, &error));
  for (guint i = 0; pending != NULL && i < pending->len; i++)
    {
      Pending *p = &g_array_index (pending, Pending, i);
      if (p->tensor->graph != g)
        continue;
      if (!at_graph_set_input (g, p->tensor, g_bytes_get_data (p->data, NULL),
                               g_bytes_get_size (p->data), &error))
        g_error ("setting %s: %s", p->tensor->name, error->message);
    }
  for (guint i = pending ? pending->len : 0; i-- > 0;)
    if (g_array_index (pending, Pending, i).tensor->graph == g)
      {
        g_bytes_unref (g_array_index (pending, Pending, i).data);
        g_array_remove_index (pending, i);
      }
  if (!at_graph_run (g, &error))
    g_error ("running: %s", error->message);
  n = at_tensor_numel (out);
  gpu = g_new (float, n);
  if (out->dtype == AT_DTYPE_F32)
    g_assert_true (at_graph_get_output (g, out, gpu, n * sizeof (float), &error));
  else
    {
      g_autofree guint8 *raw = g_malloc (at_tensor_nbytes (out));
      g_assert_true (at_graph_get_output (g, out, raw, at_tensor_nbytes (out), &error));
      at_dequantize_row (out->dtype, raw, gpu, n);
    }
  g_assert_no_error (error);
  ref = at_graph_run_reference (g, out, &error);
  g_assert_no_error (error);
  return at_nmse (ref, gpu, (gsize) n);
}

void
at_test_put_u32 (GByteArray *b, guint32 v)
{
  guint32 le = GUINT32_TO_LE (v);

  g_byte_array_append (b, (const guint8 *) &le, 4);
}

void
at_test_put_u64 (GByteArray *b, guint64 v)
{
  guint64 le = GUINT64_TO_LE (v);

  g_byte_array_append (b, (const guint8 *) &le, 8);
}

void
at_test_put_str (GByteArray *b, const char *s)
{
  at_test_put_u64 (b, strlen (s));
  g_byte_array_append (b, (const guint8 *) s, (guint) strlen (s));
}

GBytes *
at_test_tiny_llama_gguf (void)
{
  GByteArray *b = g_byte_array_new ();

  g_byte_array_append (b, (const guint8 *) "GGUF", 4);
  at_test_put_u32 (b, 3);
  at_test_put_u64 (b, 2); /* tensors */
  at_test_put_u64 (b, 1); /* key/values */
  at_test_put_str (b, "general.architecture");
  at_test_put_u32 (b, 8); /* string */
  at_test_put_str (b, "llama");
  at_test_put_str (b, "token_embd.weight");
  at_test_put_u32 (b, 2);
  at_test_put_u64 (b, 32);
  at_test_put_u64 (b, 4);
  at_test_put_u32 (b, 8); /* Q8_0 */
  at_test_put_u64 (b, 0);
  at_test_put_str (b, "output_norm.weight");
  at_test_put_u32 (b, 1);
  at_test_put_u64 (b, 32);
  at_test_put_u32 (b, 0); /* F32 */
  at_test_put_u64 (b, 160);
  while (b->len % 32 != 0)
    g_byte_array_append (b, (const guint8 *) "", 1);
  for (guint i = 0; i < 160 + 128; i++)
    g_byte_array_append (b, (const guint8 *) "", 1);
  return g_byte_array_free_to_bytes (b);
}

void
at_test_write_file (const char *path, const void *data, gsize len)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_assert_true (g_file_set_contents (path, data, (gssize) len, &error));
  g_assert_no_error (error);
}

void
at_test_write_text (const char *path, const char *text)
{
  at_test_write_file (path, text, strlen (text));
}

void
at_test_write_tiny_llama (const char *path)
{
  g_autoptr (GBytes) bytes = at_test_tiny_llama_gguf ();

  at_test_write_file (path, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
}
