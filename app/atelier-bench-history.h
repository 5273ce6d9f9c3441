/* atelier-bench-history.h: `atelier bench history` (atelier-bench-history.c). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Fills a temporary store with 100,000 items (10,000 with `quick`) and prints the median
 * times of search, list and tree, and the database bytes per item; JSON records when `json`.
 * Returns the exit status. */
int atelier_bench_history (gboolean json, gboolean quick);

G_END_DECLS
