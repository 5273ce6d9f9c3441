/* atelier-bench-anchors.h: CPU reference figures measured in the same run as the benchmark. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* GB/s of a plain read of 256 MiB by `n_threads` threads (best of 5). */
double at_bench_anchor_stream_read (guint n_threads);
/* GFLOP/s of OpenBLAS's cblas_sgemm at m x n x k (best of 3 after a warm-up), or 0 when no
 * OpenBLAS is installed; `library` receives the library's name. */
double at_bench_anchor_openblas_sgemm (gint64 m, gint64 n, gint64 k, char **library);

G_END_DECLS
