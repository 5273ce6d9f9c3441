/* atelier-bench-conv.c: conv2d at the SD UNet's 64x64 / 320-channel stage (3x3 and 1x1, f32
 * and f16 weights), and the spatial ops around it. */
#include "atelier-bench-cases.h"

static gboolean
build_conv2d (AtGraph *g, const AtBenchCase *c, GError **error)
{
  gint64 n = c->dims[0].value, ch = c->dims[1].value, h = c->dims[2].value, w = c->dims[3].value;
  gint64 k = c->dims[4].value;
  const gint64 xs[] = { n, ch, h, w }, ws[] = { ch, ch, k, k }, bs[] = { ch };
  AtConv2dParams p = { { 1, 1 }, { k / 2, k / 2 }, { 1, 1 }, 1 };
  AtDtype wt = at_dtype_from_name (c->wtype);
  AtTensor *x = at_bench_input (g, "x", AT_DTYPE_F32, 4, xs, error);
  AtTensor *wgt = at_bench_weight (g, "w", wt, 4, ws, error);
  AtTensor *b = at_bench_weight (g, "b", AT_DTYPE_F32, 1, bs, error);

  if (x == NULL || wgt == NULL || b == NULL)
    return FALSE;
  at_graph_output (g, at_conv2d (g, x, wgt, b, &p), "y");
  return at_graph_check (g, error);
}

static gboolean
build_upsample (AtGraph *g, const AtBenchCase *c, GError **error)
{
  gint64 n = c->dims[0].value, ch = c->dims[1].value, h = c->dims[2].value, w = c->dims[3].value;
  const gint64 xs[] = { n, ch, h, w };
  AtTensor *x = at_bench_input (g, "x", AT_DTYPE_F32, 4, xs, error);

  at_graph_output (g, at_upsample (g, x, 2 * h, 2 * w, AT_UPSAMPLE_NEAREST, FALSE), "y");
  return at_graph_check (g, error);
}

#define CONV_FLOPS(n, c, h, w, k) (2.0 * (n) * (c) * (h) * (w) * (c) * (k) * (k))

const AtBenchCase at_bench_cases_conv[] = {
  { "conv2d 3x3 f32 320ch 64x64", "conv2d", "f32", "f32",
    { { "n", 1 }, { "c", 320 }, { "h", 64 }, { "w", 64 }, { "k", 3 } }, AT_BENCH_GFLOPS,
    CONV_FLOPS (1, 320, 64, 64, 3), 1, build_conv2d },
  { "conv2d 3x3 f16 320ch 64x64", "conv2d", "f32", "f16",
    { { "n", 1 }, { "c", 320 }, { "h", 64 }, { "w", 64 }, { "k", 3 } }, AT_BENCH_GFLOPS,
    CONV_FLOPS (1, 320, 64, 64, 3), 1, build_conv2d },
  { "conv2d 1x1 f32 320ch 64x64", "conv2d", "f32", "f32",
    { { "n", 1 }, { "c", 320 }, { "h", 64 }, { "w", 64 }, { "k", 1 } }, AT_BENCH_GFLOPS,
    CONV_FLOPS (1, 320, 64, 64, 1), 1, build_conv2d },
  { "conv2d 1x1 f16 320ch 64x64", "conv2d", "f32", "f16",
    { { "n", 1 }, { "c", 320 }, { "h", 64 }, { "w", 64 }, { "k", 1 } }, AT_BENCH_GFLOPS,
    CONV_FLOPS (1, 320, 64, 64, 1), 1, build_conv2d },
  { "upsample nearest 2x 320ch 64x64 (bytes moved)", "upsample", "f32", NULL,
    { { "n", 1 }, { "c", 320 }, { "h", 64 }, { "w", 64 } }, AT_BENCH_GBPS,
    5.0 * 4 * 320 * 64 * 64, 1, build_upsample },
  { NULL },
};
