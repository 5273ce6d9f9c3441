/* atelier-bench-cases.c: the shapes `atelier bench ops` measures and how each graph is built. */
#include "atelier-bench-cases.h"

#include <string.h>

static float *
random_values (gint64 n)
{
  float *v = g_new (float, n);
  guint32 s = 12345;

  for (gint64 i = 0; i < n; i++)
    {
      s = s * 1664525u + 1013904223u;
      v[i] = ((s >> 8) / 16777216.0f - 0.5f) * 0.2f;
    }
  return v;
}

static gint64
numel (int ndim, const gint64 *shape)
{
  gint64 n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  return n;
}

AtTensor *
at_bench_input (AtGraph *g, const char *name, AtDtype dtype, int ndim, const gint64 *shape,
                GError **error)
{
  /* Inputs keep whatever values the fresh buffer holds; speed does not depend on them, and the
   * arena is not read before it is written. Random values would need a compiled graph. */
  return at_graph_input (g, name, dtype, ndim, shape);
}

AtTensor *
at_bench_weight (AtGraph *g, const char *name, AtDtype dtype, int ndim, const gint64 *shape,
                 GError **error)
{
  gint64 n = numel (ndim, shape);
  gsize bytes = at_dtype_row_bytes (dtype, n);
  g_autofree float *v = random_values (n);
  g_autofree guint8 *raw = g_malloc (MAX (bytes, 1));
  g_autoptr (AtBuffer) buf = NULL;

  at_quantize_row (dtype, v, raw, n);
  buf = at_buffer_new (at_graph_get_device (g), bytes, AT_BUFFER_DEVICE, name, error);
  if (buf == NULL || !at_buffer_upload (buf, 0, raw, bytes, error))
    return NULL;
  return at_graph_weight (g, name, dtype, ndim, shape, buf, 0);
}

/* Dispatch overhead: a chain of tiny adds, timed per add. */
static gboolean
build_dispatch (AtGraph *g, const AtBenchCase *c, GError **error)
{
  const gint64 shape[] = { 64 };
  AtTensor *x = at_bench_input (g, "x", AT_DTYPE_F32, 1, shape, error);

  for (int i = 0; i < c->repeat; i++)
    x = at_scale (g, x, 1.0f);
  at_graph_output (g, x, "y");
  return at_graph_check (g, error);
}

static gboolean
build_add (AtGraph *g, const AtBenchCase *c, GError **error)
{
  const gint64 shape[] = { c->dims[0].value };
  AtTensor *a = at_bench_input (g, "a", AT_DTYPE_F32, 1, shape, error);
  AtTensor *b = at_bench_input (g, "b", AT_DTYPE_F32, 1, shape, error);

  at_graph_output (g, at_add (g, a, b), "y");
  return at_graph_check (g, error);
}

const AtBenchCase at_bench_cases_core[] = {
  { "dispatch overhead", "dispatch", NULL, NULL, { { "dispatches", 200 } }, AT_BENCH_US, 0, 200,
    build_dispatch },
  { "add f32 16M (bytes moved)", "add", "f32", NULL, { { "n", 1 << 24 } }, AT_BENCH_GBPS,
    3.0 * 4 * (1 << 24), 1, build_add },
  { NULL },
};

const AtBenchCase *const at_bench_case_lists[] = {
  at_bench_cases_core,
  /* -- matmul bench -- */
  at_bench_cases_matmul,
  at_bench_cases_matvec_ram,
  /* -- norm bench -- */
  at_bench_cases_norm,
  /* -- conv bench -- */
  at_bench_cases_conv,
  /* -- attention bench -- */
  at_bench_cases_attention,
  /* -- rows bench -- */
  NULL,
};
