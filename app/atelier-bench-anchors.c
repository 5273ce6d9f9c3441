/* atelier-bench-anchors.c: reference figures measured in the same run as the engine's, on the
 * same machine's CPU: a plain two-thread streaming read (the memory bound a matrix-vector
 * product on a CPU device can approach) and, when libopenblas is installed, OpenBLAS's sgemm
 * (what a CPU BLAS makes of the same GEMM). Loaded at run time: nothing links OpenBLAS. */
#include "atelier-bench-anchors.h"

#include <gmodule.h>
#include <string.h>

typedef void (*SgemmFn) (int order, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                         int lda, const float *b, int ldb, float beta, float *c, int ldc);

typedef struct
{
  const guint32 *data;
  gsize n;
  guint32 sum;
} ReadJob;

/* An integer sum, so the compiler may vectorise it freely: the loop is bound by memory. */
#pragma GCC push_options
#pragma GCC optimize("O3")
static gpointer
read_worker (gpointer p)
{
  ReadJob *job = p;
  guint32 s = 0;

  for (gsize i = 0; i < job->n; i++)
    s += job->data[i];
  job->sum = s;
  return NULL;
}
#pragma GCC pop_options

double
at_bench_anchor_stream_read (guint n_threads)
{
  const gsize n = (gsize) 64 << 20; /* 256 MiB of floats: far beyond the caches */
  g_autofree guint32 *data = g_try_malloc (n * sizeof (guint32));
  double best = 0;

  if (data == NULL || n_threads == 0)
    return 0;
  for (gsize i = 0; i < n; i++)
    data[i] = (guint32) i;
  for (int rep = 0; rep < 5; rep++)
    {
      g_autofree GThread **threads = g_new0 (GThread *, n_threads);
      g_autofree ReadJob *jobs = g_new0 (ReadJob, n_threads);
      gint64 t0 = g_get_monotonic_time ();
      double dt;
      for (guint t = 0; t < n_threads; t++)
        {
          jobs[t].data = data + t * (n / n_threads);
          jobs[t].n = n / n_threads;
          threads[t] = g_thread_new ("read", read_worker, &jobs[t]);
        }
      for (guint t = 0; t < n_threads; t++)
        g_thread_join (threads[t]);
      dt = (g_get_monotonic_time () - t0) / 1e6;
      best = MAX (best, n * sizeof (float) / dt / 1e9);
    }
  return best;
}

double
at_bench_anchor_openblas_sgemm (gint64 m, gint64 n, gint64 k, char **library)
{
  static const char *const names[] = { "libopenblas.so.0", "libopenblas.so", "libblas.so.3" };
  GModule *mod = NULL;
  SgemmFn sgemm = NULL;
  g_autofree float *a = NULL, *b = NULL, *c = NULL;
  double best = 0;

  for (guint i = 0; i < G_N_ELEMENTS (names) && mod == NULL; i++)
    mod = g_module_open (names[i], G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY);
  if (mod == NULL || !g_module_symbol (mod, "cblas_sgemm", (gpointer *) &sgemm) || sgemm == NULL)
    {
      g_clear_pointer (&mod, g_module_close);
      return 0;
    }
  if (library != NULL)
    *library = g_strdup (g_module_name (mod));
  a = g_new (float, m * k);
  b = g_new (float, n * k);
  c = g_new (float, m * n);
  for (gint64 i = 0; i < m * k; i++)
    a[i] = (float) ((i * 7) % 13) * 0.01f;
  for (gint64 i = 0; i < n * k; i++)
    b[i] = (float) ((i * 5) % 11) * 0.01f;
  /* Row-major C = A (m x k) * B^T, B stored n x k: the engine's layout. */
  for (int rep = 0; rep < 4; rep++)
    {
      gint64 t0 = g_get_monotonic_time ();
      double dt;
      sgemm (101 /* row major */, 111 /* no trans */, 112 /* trans */, (int) m, (int) n, (int) k, 1.0f,
             a, (int) k, b, (int) k, 0.0f, c, (int) n);
      dt = (g_get_monotonic_time () - t0) / 1e6;
      if (rep > 0)
        best = MAX (best, 2.0 * m * n * k / dt / 1e9);
    }
  /* Kept open: unloading a BLAS with live threads is not safe. */
  return best;
}
