/* test-rows.c: get_rows (incl. the chunked path for tables beyond one storage range),
 * write_rows and dtype conversion, GPU against the C reference. */
#include "at-test-util.h"

#include <string.h>

static void
check_get_rows (AtDtype dtype, gint64 rows, gint64 dim, gint64 n, gboolean with_invalid)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  g_autofree float *ids = NULL;
  g_autofree char *what = NULL;
  AtTensor *table, *idt;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  ids = g_new (float, n);
  for (gint64 i = 0; i < n; i++)
    ids[i] = (float) g_test_rand_int_range (0, (gint32) rows);
  if (with_invalid)
    {
      ids[0] = -1;
      ids[n - 1] = (float) rows;
    }
  table = at_test_weight (g, "table", dtype, 2, (gint64[]){ rows, dim }, -1, 1);
  idt = at_test_input_values (g, "ids", AT_DTYPE_I32, 1, (gint64[]){ n }, ids);
  what = g_strdup_printf ("get_rows %s [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] x %" G_GINT64_FORMAT,
                          at_dtype_name (dtype), rows, dim, n);
  at_test_assert_nmse (at_test_run (g, at_get_rows (g, table, idt)), 0, what);
}

static void
test_get_rows (void)
{
  check_get_rows (AT_DTYPE_F32, 100, 33, 17, FALSE);
  check_get_rows (AT_DTYPE_F16, 50, 65, 300, FALSE);
  check_get_rows (AT_DTYPE_BF16, 7, 1, 9, FALSE);
  check_get_rows (AT_DTYPE_F32, 1, 1, 1, FALSE);
  check_get_rows (AT_DTYPE_F16, 31, 8, 40, TRUE);
  /* The GGUF block types, as an LLM's embedding table is stored. */
  for (AtDtype t = AT_DTYPE_Q8_0; t < AT_N_DTYPES; t++)
    {
      gint64 block = at_dtype_info (t)->block_size;
      check_get_rows (t, 37, block * (block == 32 ? 3 : 2), 19, t == AT_DTYPE_Q4_K);
    }
}

/* Lower the binding limit so a small table is read in several chunks, as a large embedding
 * table is on lavapipe (128 MiB storage range). */
static void
test_get_rows_chunked (void)
{
  g_setenv ("ATELIER_MAX_BINDING_BYTES", "1000", TRUE);
  check_get_rows (AT_DTYPE_F32, 200, 17, 64, TRUE);  /* 68-byte rows: 11 chunks */
  check_get_rows (AT_DTYPE_F16, 301, 33, 100, FALSE);
  check_get_rows (AT_DTYPE_Q6_K, 40, 512, 30, TRUE);  /* 420-byte rows: 2 a chunk */
  check_get_rows (AT_DTYPE_Q8_0, 50, 64, 30, FALSE);
  g_unsetenv ("ATELIER_MAX_BINDING_BYTES");
}

static void
check_cast (AtDtype from, AtDtype to, gint64 n)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  g_autofree char *what = g_strdup_printf ("cast %s -> %s, %" G_GINT64_FORMAT, at_dtype_name (from),
                                           at_dtype_name (to), n);
  AtTensor *a;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  a = at_test_input (g, "a", from, 2, (gint64[]){ 3, n }, -60000, 60000);
  /* Exact: both sides round to nearest even, and the reference rounds the same way. */
  at_test_assert_nmse (at_test_run (g, at_cast (g, a, to)), 0, what);
}

static void
test_cast (void)
{
  check_cast (AT_DTYPE_F32, AT_DTYPE_F16, 1001);
  check_cast (AT_DTYPE_F32, AT_DTYPE_BF16, 1);
  check_cast (AT_DTYPE_F16, AT_DTYPE_F32, 257);
  check_cast (AT_DTYPE_BF16, AT_DTYPE_F32, 3);
  check_cast (AT_DTYPE_F32, AT_DTYPE_F16, 2);
}

static void
test_bad (void)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  g_autoptr (GError) error = NULL;
  AtTensor *t, *ids;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  t = at_graph_input (g, "t", AT_DTYPE_F32, 2, (gint64[]){ 4, 4 });
  ids = at_graph_input (g, "ids", AT_DTYPE_F32, 1, (gint64[]){ 4 });
  g_assert_null (at_get_rows (g, t, ids));
  g_assert_false (at_graph_check (g, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_SHAPE);
  g_assert_nonnull (strstr (error->message, "i32 ids"));
}

/* Rows written into a weight's buffer at a run-time start, as new keys go into a KV cache:
 * what the next op reads, and what the buffer holds afterwards (rows that fall outside are
 * dropped). An f16 dst holds the rows rounded to f16. */
static void
check_write_rows (gint64 start, gboolean strided, gboolean f16)
{
  enum { N_DST = 10, N_SRC = 3, HEADS = 3, HD = 4, ROW = HEADS * HD };
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  g_autoptr (AtBuffer) buf = NULL;
  g_autoptr (GError) error = NULL;
  float init[N_DST * ROW], rows[N_SRC * ROW], wide[N_SRC * (ROW + HD)], after[N_DST * ROW];
  float first = (float) start;
  guint16 init16[N_DST * ROW], after16[N_DST * ROW];
  g_autofree char *what = g_strdup_printf ("write_rows%s at %" G_GINT64_FORMAT, f16 ? " f16" : "",
                                           start);
  AtTensor *cache, *src, *st, *out;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  at_test_fill (init, G_N_ELEMENTS (init), -1, 1);
  at_test_fill (rows, G_N_ELEMENTS (rows), 2, 3);
  buf = at_buffer_new (dev, sizeof init, AT_BUFFER_DEVICE, "cache", &error);
  g_assert_no_error (error);
  if (f16)
    {
      for (gsize i = 0; i < G_N_ELEMENTS (init); i++)
        {
          init16[i] = at_f32_to_f16 (init[i]);
          init[i] = at_f16_to_f32 (init16[i]);
        }
      g_assert_true (at_buffer_upload (buf, 0, init16, sizeof init16, &error));
    }
  else
    g_assert_true (at_buffer_upload (buf, 0, init, sizeof init, &error));
  cache = at_graph_weight (g, "cache", f16 ? AT_DTYPE_F16 : AT_DTYPE_F32, 3,
                           (gint64[]){ N_DST, HEADS, HD }, buf, 0);
  if (strided)
    {
      /* The rows as heads 1.. of wider rows (as K within a stacked q/k/v product). */
      AtTensor *w;
      at_test_fill (wide, G_N_ELEMENTS (wide), -5, -4);
      for (gint64 r = 0; r < N_SRC; r++)
        memcpy (wide + r * (ROW + HD) + HD, rows + r * ROW, ROW * sizeof (float));
      w = at_test_input_values (g, "wide", AT_DTYPE_F32, 3, (gint64[]){ N_SRC, HEADS + 1, HD }, wide);
      src = at_view (g, w, 3, (gint64[]){ N_SRC, HEADS, HD }, (gint64[]){ ROW + HD, HD, 1 }, HD);
    }
  else
    src = at_test_input_values (g, "rows", AT_DTYPE_F32, 3, (gint64[]){ N_SRC, HEADS, HD }, rows);
  st = at_test_input_values (g, "start", AT_DTYPE_I32, 1, (gint64[]){ 1 }, &first);
  out = at_write_rows (g, cache, src, st);
  out = at_scale (g, f16 ? at_cast (g, out, AT_DTYPE_F32) : out, 1.0f);
  /* f16: the reference rounds to nearest, a device may round toward zero. */
  at_test_assert_nmse (at_test_run (g, out), f16 ? 1e-6 : 0, what);
  if (f16)
    {
      g_assert_true (at_buffer_download (buf, 0, after16, sizeof after16, &error));
      for (gsize i = 0; i < G_N_ELEMENTS (after); i++)
        after[i] = at_f16_to_f32 (after16[i]);
    }
  else
    g_assert_true (at_buffer_download (buf, 0, after, sizeof after, &error));
  for (gint64 r = 0; r < N_DST; r++)
    for (gint64 c = 0; c < ROW; c++)
      {
        gint64 from = r - start;
        gboolean written = from >= 0 && from < N_SRC;
        float want = written ? rows[from * ROW + c] : init[r * ROW + c];

        if (f16 && written)
          g_assert_true (at_test_is_f16_of (after[r * ROW + c], want));
        else
          g_assert_cmpfloat (after[r * ROW + c], ==, want);
      }
}

static void
test_write_rows (void)
{
  check_write_rows (5, FALSE, FALSE);
  check_write_rows (0, FALSE, FALSE);
  check_write_rows (8, FALSE, FALSE);   /* the last row falls off the end */
  check_write_rows (-1, FALSE, FALSE);  /* the first falls before the start */
  check_write_rows (12, FALSE, FALSE);  /* nothing lands */
  check_write_rows (4, TRUE, FALSE);    /* rows spaced wider than they are */
  check_write_rows (9, TRUE, FALSE);
  check_write_rows (3, FALSE, TRUE);    /* an f16 dst (an f16 KV cache) */
  check_write_rows (8, TRUE, TRUE);
}

static void
test_write_rows_bad (void)
{
  AtDevice *dev = at_test_device ();
  g_autoptr (AtGraph) g = NULL;
  AtTensor *t, *rows, *st;

  if (dev == NULL)
    return;
  g = at_graph_new (dev);
  t = at_graph_input (g, "t", AT_DTYPE_F32, 2, (gint64[]){ 4, 4 });
  rows = at_graph_input (g, "rows", AT_DTYPE_F32, 2, (gint64[]){ 2, 4 });
  st = at_graph_input (g, "start", AT_DTYPE_I32, 1, (gint64[]){ 1 });
  at_test_expect_error (g, at_write_rows (g, t, rows, st), "not a weight");
  g_clear_pointer (&g, at_graph_free);
  g = at_graph_new (dev);
  t = at_test_weight (g, "w", AT_DTYPE_F32, 2, (gint64[]){ 4, 4 }, -1, 1);
  rows = at_graph_input (g, "rows", AT_DTYPE_F32, 2, (gint64[]){ 2, 5 });
  st = at_graph_input (g, "start", AT_DTYPE_I32, 1, (gint64[]){ 1 });
  at_test_expect_error (g, at_write_rows (g, t, rows, st), "row shape");
  g_clear_pointer (&g, at_graph_free);
  g = at_graph_new (dev);
  t = at_test_weight (g, "w", AT_DTYPE_F32, 2, (gint64[]){ 4, 4 }, -1, 1);
  rows = at_graph_input (g, "rows", AT_DTYPE_F32, 2, (gint64[]){ 4, 2 });
  st = at_graph_input (g, "start", AT_DTYPE_I32, 1, (gint64[]){ 1 });
  at_test_expect_error (g, at_write_rows (g, t, at_transpose (g, rows, 0, 1), st), "each row");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/rows/get-rows", test_get_rows);
  g_test_add_func ("/engine/rows/get-rows-chunked", test_get_rows_chunked);
  g_test_add_func ("/engine/rows/cast", test_cast);
  g_test_add_func ("/engine/rows/bad-input", test_bad);
  g_test_add_func ("/engine/rows/write-rows", test_write_rows);
  g_test_add_func ("/engine/rows/write-rows-bad", test_write_rows_bad);
  return g_test_run ();
}
