/* atelier-bench-cases.h: the cases `atelier bench ops` measures. Each builds a one-op graph
 * (inputs and weights of random values) and says how much work one run does. */
#pragma once

#include <json-glib/json-glib.h>

#include "at-engine.h"

G_BEGIN_DECLS

typedef enum
{
  AT_BENCH_GFLOPS, /* work = floating-point operations per run */
  AT_BENCH_GBPS,   /* work = bytes of weights (or memory) read per run */
  AT_BENCH_US,     /* time per repeat in microseconds */
} AtBenchUnit;

typedef struct _AtBenchCase AtBenchCase;

struct _AtBenchCase
{
  const char *name;
  const char *op, *dtype, *wtype;
  struct
  {
    const char *name;
    gint64 value;
  } dims[6];
  AtBenchUnit unit;
  double work;
  int repeat; /* ops per graph (dispatch overhead) */
  gboolean (*build) (AtGraph *g, const AtBenchCase *c, GError **error);
};

/* Each list is terminated by a case with NULL name; at_bench_case_lists by NULL. */
extern const AtBenchCase at_bench_cases_core[];
/* -- matmul bench -- */
extern const AtBenchCase at_bench_cases_matmul[];
extern const AtBenchCase at_bench_cases_matvec_ram[];
/* -- norm bench -- */
extern const AtBenchCase at_bench_cases_norm[];
/* -- conv bench -- */
extern const AtBenchCase at_bench_cases_conv[];
/* -- attention bench -- */
extern const AtBenchCase at_bench_cases_attention[];
/* -- rows bench -- */
extern const AtBenchCase *const at_bench_case_lists[];

/* `atelier bench models`: opening and uploading model files (atelier-bench-models.c); records
 * go into `b` (an open JSON array). */
int atelier_bench_models (AtDevice *dev, JsonBuilder *b, gboolean json, gboolean quick, double stream_read);
/* One record of `bench models` / `bench text`: into `b`, and printed unless `json`. `unit` is
 * the JSON key ("ms", "gbps", "tokens_per_s"); `anchor` > 0 adds the ratio to the CPU's
 * streaming read (atelier_bench_report_vs: to the anchor `anchor_name`). */
void atelier_bench_report (JsonBuilder *b, gboolean json, const char *name, const char *unit, double figure,
                           double anchor);
void atelier_bench_report_vs (JsonBuilder *b, gboolean json, const char *name, const char *unit,
                              double figure, double anchor, const char *anchor_name);
/* `x` rounded to two decimals, as the JSON records give their figures. */
static inline double
atelier_bench_round2 (double x)
{
  return ((gint64) (x * 100 + 0.5)) / 100.0;
}
/* `atelier bench text --model FILE`: a language model's load, prompt and generation speed and
 * its device memory (atelier-bench-text.c), with a KV cache of `kv_dtype` (f16 or f32),
 * against llama.cpp's CPU backend measured by `llama_bench` (a llama-bench binary; NULL:
 * $ATELIER_LLAMA_BENCH or llama-bench on PATH) unless `no_anchors`. */
int atelier_bench_text (AtDevice *dev, JsonBuilder *b, gboolean json, gboolean quick, double stream_read,
                        const char *model_path, AtDtype kv_dtype, const char *llama_bench,
                        gboolean no_anchors);

/* Helpers for case builders: a random input or weight of this shape and dtype. */
AtTensor *at_bench_input (AtGraph *g, const char *name, AtDtype dtype, int ndim, const gint64 *shape,
                          GError **error);
AtTensor *at_bench_weight (AtGraph *g, const char *name, AtDtype dtype, int ndim, const gint64 *shape,
                           GError **error);

G_END_DECLS
