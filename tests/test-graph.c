/* test-graph.c: the graph machinery: arena planning by lifetime (and a graph that would give
 * wrong numbers if two live tensors shared memory), replay with new inputs, views, device
 * selection and its errors, buffers. */
#include "at-test-util.h"

#include <string.h>

/* Many intermediates of different sizes, each read again much later: any aliasing of two live
 * tensors corrupts the final sum. The arena must also be smaller than the sum of all tensors
 * (it reuses memory). */
static void
test_arena_lifetimes (void)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  g_autoptr (GError) error = NULL;
  AtTensor *x, *keep[12], *acc;
  gsize total = 0;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  x = at_test_input (g, "x", AT_DTYPE_F32, 2, (gint64[]){ 37, 91 }, -1, 1);
  for (int i = 0; i < 12; i++)
    {
      /* Short-lived temporaries between the kept ones. */
      AtTensor *tmp = at_affine (g, x, 1.0f + i, (float) i);
      AtTensor *tmp2 = at_mul (g, tmp, tmp);
      keep[i] = at_add (g, tmp2, at_silu (g, tmp));
      total += 4 * at_tensor_nbytes (x);
    }
  acc = keep[11];
  for (int i = 10; i >= 0; i--)
    acc = at_add (g, at_scale (g, acc, 0.5f), keep[i]);
  at_test_assert_nmse (at_test_run (g, acc), 1e-12, "chain");
  g_assert_true (at_graph_verify_arena (g, &error));
  g_assert_no_error (error);
  g_test_message ("arena %" G_GSIZE_FORMAT " bytes for %" G_GSIZE_FORMAT " bytes of tensors",
                  at_graph_get_arena_size (g), total);
  g_assert_cmpuint (at_graph_get_arena_size (g), <, total);
}

/* The checker itself must catch an overlap: plant one and expect the error. */
static void
test_arena_checker_catches (void)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  g_autoptr (GError) error = NULL;
  AtTensor *x, *a, *b, *c;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  x = at_graph_input (g, "x", AT_DTYPE_F32, 1, (gint64[]){ 1000 });
  a = at_scale (g, x, 2);
  b = at_scale (g, x, 3);
  c = at_add (g, a, b);
  at_graph_output (g, c, "c");
  g_assert_true (at_graph_compile (g, &error));
  g_assert_true (at_graph_verify_arena (g, &error));
  b->offset = a->offset; /* a and b are both live when c is computed */
  g_assert_false (at_graph_verify_arena (g, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "overlap"));
}

/* One compiled recording, replayed with different inputs, gives each run's right answer. */
static void
test_replay (void)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  g_autoptr (GError) error = NULL;
  AtTensor *x, *y;
  float in[5], out[5];

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  x = at_graph_input (g, "x", AT_DTYPE_F32, 1, (gint64[]){ 5 });
  y = at_add (g, at_scale (g, x, 2), x);
  at_graph_output (g, y, "y");
  g_assert_true (at_graph_compile (g, &error));
  for (int run = 0; run < 4; run++)
    {
      for (int i = 0; i < 5; i++)
        in[i] = (float) (run * 10 + i);
      g_assert_true (at_graph_set_input (g, x, in, sizeof in, &error));
      g_assert_true (at_graph_run (g, &error));
      g_assert_true (at_graph_get_output (g, y, out, sizeof out, &error));
      for (int i = 0; i < 5; i++)
        g_assert_cmpfloat (out[i], ==, 3 * in[i]);
    }
  g_assert_false (at_graph_set_input (g, x, in, 3, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_SHAPE);
}

static void
test_views (void)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  AtTensor *x, *v, *r;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  x = at_test_input (g, "x", AT_DTYPE_F32, 3, (gint64[]){ 4, 6, 10 }, -1, 1);
  /* A window: rows 1..4 of every batch, columns 2..8, then permuted and reshaped. */
  v = at_view (g, x, 3, (gint64[]){ 4, 4, 7 }, (gint64[]){ 60, 10, 1 }, 12);
  r = at_permute (g, v, (int[]){ 2, 0, 1 });
  r = at_reshape (g, at_cont (g, r), 2, (gint64[]){ 7, 16 });
  at_test_assert_nmse (at_test_run (g, at_scale (g, r, -1)), 0, "views");
}

static void
test_view_errors (void)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  g_autoptr (GError) error = NULL;
  AtTensor *x;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  x = at_graph_input (g, "x", AT_DTYPE_F32, 2, (gint64[]){ 4, 6 });
  g_assert_null (at_view (g, x, 1, (gint64[]){ 30 }, (gint64[]){ 1 }, 0));
  g_assert_false (at_graph_check (g, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_SHAPE);
  g_clear_error (&error);
  g_clear_pointer (&g, at_graph_free);

  g = at_graph_new (dev);
  x = at_graph_input (g, "x", AT_DTYPE_F32, 2, (gint64[]){ 4, 6 });
  g_assert_null (at_reshape (g, at_transpose (g, x, 0, 1), 1, (gint64[]){ 24 }));
  g_assert_false (at_graph_check (g, &error));
  g_assert_nonnull (strstr (error->message, "not contiguous"));
  g_clear_error (&error);
  g_clear_pointer (&g, at_graph_free);

  g = at_graph_new (dev);
  g_assert_null (at_graph_input (g, "x", AT_DTYPE_F32, 2, (gint64[]){ 4, -6 }));
  g_assert_null (at_graph_input (g, "y", AT_DTYPE_F32, 5, (gint64[]){ 1, 1, 1, 1, 1 }));
  g_assert_false (at_graph_check (g, &error));
}

static void
test_device_selection (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) list = NULL;
  AtDevice *def = at_test_device ();
  AtDevice *dev;

  if (def == NULL)
    return;
  list = at_device_list (&error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, >=, 1);

  dev = at_device_new ("0", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (at_device_get_name (dev), ==, g_array_index (list, AtDeviceInfo, 0).name);
  at_device_free (dev);

  /* A name substring, case-insensitive. */
  {
    g_autofree char *sub = g_utf8_strup (g_array_index (list, AtDeviceInfo, 0).name, 4);
    dev = at_device_new (sub, &error);
    g_assert_no_error (error);
    at_device_free (dev);
  }

  g_assert_null (at_device_new ("no-such-gpu-anywhere", &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_NO_DEVICE);
  g_assert_nonnull (strstr (error->message, "names no Vulkan device"));
  g_clear_error (&error);
  g_assert_null (at_device_new ("99", &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_NO_DEVICE);
  g_assert_nonnull (strstr (error->message, "atelier devices"));
}

/* Without a Vulkan loader the engine says so and how to fix it (in a subprocess: the loader is
 * process-wide). */
static void
test_no_loader (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr (GError) error = NULL;
      g_setenv ("ATELIER_VULKAN_LOADER", "/nonexistent/libvulkan.so.1", TRUE);
      g_assert_null (at_device_new (NULL, &error));
      g_assert_error (error, AT_ERROR, AT_ERROR_NO_VULKAN);
      g_print ("%s\n", error->message);
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*apt-get install libvulkan1 mesa-vulkan-drivers*");
}

static void
test_buffers (void)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (GError) error = NULL;
  g_autoptr (AtBuffer) buf = NULL;
  guint32 data[100], back[100];

  if (dev == NULL)
    return;
  buf = at_buffer_new (dev, sizeof data, AT_BUFFER_DEVICE, "test", &error);
  g_assert_no_error (error);
  for (int i = 0; i < 100; i++)
    data[i] = (guint32) i * 2654435761u;
  g_assert_true (at_buffer_upload (buf, 0, data, sizeof data, &error));
  g_assert_true (at_buffer_fill (buf, 40, 8, 0xdeadbeef, &error));
  g_assert_true (at_buffer_download (buf, 0, back, sizeof back, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 100; i++)
    g_assert_cmphex (back[i], ==, i == 10 || i == 11 ? 0xdeadbeef : data[i]);
  g_assert_false (at_buffer_upload (buf, 390, data, 20, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_INVALID);
  g_clear_error (&error);

  /* An impossible allocation is an error naming what it was for, not a crash. */
  g_assert_null (at_buffer_new (dev, (gsize) 1 << 50, AT_BUFFER_DEVICE, "a huge thing", &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "a huge thing"));
}

/* A shader that is not built in is an error that names it, not a crash. */
static void
test_missing_shader (void)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (GError) error = NULL;
  AtPipelineDesc desc = { "no-such-kernel", 3, { 64, 1, 1 }, 1, 0 };

  if (dev == NULL)
    return;
  g_assert_false (at_pipeline_shader_exists ("no-such-kernel"));
  g_assert_true (at_pipeline_shader_exists ("binary"));
  g_assert_null (at_pipeline_get (dev, &desc, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_SHADER);
  g_assert_nonnull (strstr (error->message, "no-such-kernel"));
}

/* The pipeline cache is written to the user cache dir when a device is freed. */
static void
test_pipeline_cache (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_build_filename (g_get_user_cache_dir (), "atelier", NULL);
  g_autoptr (GDir) d = NULL;
  AtDevice *dev;
  AtPipelineDesc desc = { "unary", 5, { 256, 1, 1, 0, 0 }, 2, 52 };
  const char *name;
  gboolean found = FALSE;

  if (at_test_device () == NULL)
    return;
  dev = at_device_new (NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (at_pipeline_get (dev, &desc, &error));
  at_device_free (dev);
  d = g_dir_open (dir, 0, &error);
  g_assert_no_error (error);
  while ((name = g_dir_read_name (d)) != NULL)
    found |= g_str_has_prefix (name, "pipelines-");
  g_assert_true (found);
}

/* ATELIER_PROFILE=1 collects GPU time per op from timestamp queries (in a subprocess: the
 * setting is read once per process). */
static void
test_profile (void)
{
  if (g_test_subprocess ())
    {
      AtDevice *dev = at_test_device ();
      g_autoptr (AtGraph) g = NULL;
      g_autoptr (GError) error = NULL;
      AtTensor *x, *y;

      if (dev == NULL || at_device_get_info (dev)->timestamp_period == 0)
        return;
      g = at_graph_new (dev);
      x = at_graph_input (g, "x", AT_DTYPE_F32, 1, (gint64[]){ 4096 });
      y = at_silu (g, at_scale (g, x, 2));
      at_graph_output (g, y, "y");
      g_assert_true (at_graph_compile (g, &error));
      g_assert_true (at_graph_run (g, &error));
      g_assert_cmpfloat (at_command_get_last_gpu_ms (at_graph_get_command (g)), >, 0);
      at_command_print_profile (at_graph_get_command (g), stdout);
      return;
    }
  g_setenv ("ATELIER_PROFILE", "1", TRUE);
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_unsetenv ("ATELIER_PROFILE");
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*GPU time by op*total*");
  g_test_trap_assert_stdout ("*silu  *1 calls*");
  g_test_trap_assert_stdout ("*scale  *1 calls*");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/graph/arena-lifetimes", test_arena_lifetimes);
  g_test_add_func ("/engine/graph/arena-checker", test_arena_checker_catches);
  g_test_add_func ("/engine/graph/replay", test_replay);
  g_test_add_func ("/engine/graph/views", test_views);
  g_test_add_func ("/engine/graph/view-errors", test_view_errors);
  g_test_add_func ("/engine/gpu/device-selection", test_device_selection);
  g_test_add_func ("/engine/gpu/no-loader", test_no_loader);
  g_test_add_func ("/engine/gpu/buffers", test_buffers);
  g_test_add_func ("/engine/gpu/missing-shader", test_missing_shader);
  g_test_add_func ("/engine/gpu/pipeline-cache", test_pipeline_cache);
  g_test_add_func ("/engine/gpu/profile", test_profile);
  return g_test_run ();
}
