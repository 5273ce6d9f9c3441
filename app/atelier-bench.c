/* atelier-bench.c: `atelier bench ops|models|text [--json] [--filter S] [--quick]`: the engine's
 * speed on the shapes that matter (GEMM, matrix-vector, conv, attention, dispatch overhead), on
 * the chosen device; `models` measures opening and uploading model files
 * (atelier-bench-models.c), `text --model FILE` a language model (atelier-bench-text.c).
 * Each op case builds a one-op graph, compiles it once, replays it until about half a second
 * has passed (at least 3 times), and reports the median run.
 * Figures are printed, never asserted: tests check correctness, this checks speed. */
#include "config.h"

#include "atelier-commands.h"
#include "atelier-bench-anchors.h"
#include "atelier-bench-cases.h"
#include "atelier-bench-history.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

static int
compare_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* Median wall time of one replay, in seconds. */
static gboolean
time_graph (AtGraph *g, double budget_s, double *median, GError **error)
{
  g_autoptr (GArray) times = g_array_new (FALSE, FALSE, sizeof (double));
  double spent = 0;

  /* The first run compiles the shaders inside the driver (lavapipe JITs at first dispatch). */
  if (!at_graph_run (g, error))
    return FALSE;
  while (times->len < 3 || (spent < budget_s && times->len < 200))
    {
      gint64 t0 = g_get_monotonic_time ();
      double dt;
      if (!at_graph_run (g, error))
        return FALSE;
      dt = (g_get_monotonic_time () - t0) / 1e6;
      g_array_append_val (times, dt);
      spent += dt;
    }
  g_array_sort (times, compare_double);
  *median = g_array_index (times, double, times->len / 2);
  return TRUE;
}

static gint64
dim_of (const AtBenchCase *c, const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (c->dims) && c->dims[i].name; i++)
    if (strcmp (c->dims[i].name, name) == 0)
      return c->dims[i].value;
  return -1;
}

/* The anchor a case is compared with, if any: OpenBLAS sgemm for the f32 GEMM at 2048^3, the
 * CPU's streaming read for matrix-vector products. */
static double
anchor_for (const AtBenchCase *c, double sgemm_2048, double stream_read)
{
  if (strcmp (c->op, "matmul") == 0 && g_strcmp0 (c->wtype, "f32") == 0 && dim_of (c, "m") == 2048
      && dim_of (c, "n") == 2048 && dim_of (c, "k") == 2048)
    return sgemm_2048;
  if (strcmp (c->op, "matvec") == 0)
    return stream_read;
  return 0;
}

static void
add_common (JsonBuilder *b, const AtBenchCase *c)
{
  json_builder_set_member_name (b, "op");
  json_builder_add_string_value (b, c->op);
  if (c->dtype)
    {
      json_builder_set_member_name (b, "dtype");
      json_builder_add_string_value (b, c->dtype);
    }
  if (c->wtype)
    {
      json_builder_set_member_name (b, "wtype");
      json_builder_add_string_value (b, c->wtype);
    }
  for (guint i = 0; i < G_N_ELEMENTS (c->dims) && c->dims[i].name; i++)
    {
      json_builder_set_member_name (b, c->dims[i].name);
      json_builder_add_int_value (b, c->dims[i].value);
    }
}

int
atelier_cmd_bench (int argc, char **argv)
{
  gboolean json = FALSE, quick = FALSE, no_anchors = FALSE, models = FALSE, text = FALSE;
  g_autofree char *model_path = NULL, *llama_bench = NULL, *kv_type = NULL;
  double sgemm_2048 = 0, stream_read = 0;
  AtDtype kv_dtype = AT_DTYPE_F16;
  g_autofree char *blas = NULL;
  g_autofree char *filter = NULL;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON records", NULL },
    { "filter", 0, 0, G_OPTION_ARG_STRING, &filter, "Only cases whose name contains S", "S" },
    { "quick", 0, 0, G_OPTION_ARG_NONE, &quick, "Fewer repetitions", NULL },
    { "no-anchors", 0, 0, G_OPTION_ARG_NONE, &no_anchors, "Skip the CPU reference figures", NULL },
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &model_path, "The GGUF language model (bench text)", "FILE" },
    { "llama-bench", 0, 0, G_OPTION_ARG_FILENAME, &llama_bench,
      "llama.cpp's llama-bench, the anchor of bench text (default: $ATELIER_LLAMA_BENCH, or on PATH)",
      "PATH" },
    { "kv-type", 0, 0, G_OPTION_ARG_STRING, &kv_type,
      "The KV cache's type (bench text): f16 (default) or f32", "TYPE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("ops|models|text - measure the engine");
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  AtDevice *dev;
  int status = 0;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "atelier bench: %s\n", error->message);
      return 2;
    }
  /* The history store needs no device. */
  if (argc >= 2 && strcmp (argv[1], "history") == 0)
    return atelier_bench_history (json, quick);
  if (argc < 2 || (strcmp (argv[1], "ops") != 0 && strcmp (argv[1], "models") != 0 && strcmp (argv[1], "text") != 0))
    {
      fprintf (stderr, "atelier bench: say what to measure: 'atelier bench ops', 'atelier bench models', "
                       "'atelier bench text --model FILE' or 'atelier bench history'\n");
      return 2;
    }
  text = strcmp (argv[1], "text") == 0;
  if (kv_type != NULL && !at_llm_parse_kv_dtype (kv_type, &kv_dtype))
    {
      fprintf (stderr, "atelier bench: --kv-type is f16 or f32, not \"%s\"\n", kv_type);
      return 2;
    }
  models = strcmp (argv[1], "models") == 0 || text;
  if ((dev = at_device_get_default (&error)) == NULL)
    {
      fprintf (stderr, "atelier bench: %s\n", error->message);
      return 1;
    }
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "device");
  json_builder_add_string_value (b, at_device_get_name (dev));
  json_builder_end_object (b);
  if (!json)
    printf ("device: %s (%s)\n", at_device_get_name (dev),
            at_device_type_name (at_device_get_info (dev)->type));
  if (!no_anchors)
    {
      guint threads = (guint) g_get_num_processors ();
      stream_read = at_bench_anchor_stream_read (threads);
      if (!models)
        sgemm_2048 = at_bench_anchor_openblas_sgemm (2048, 2048, 2048, &blas);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "anchor");
      json_builder_add_string_value (b, "stream_read");
      json_builder_set_member_name (b, "threads");
      json_builder_add_int_value (b, threads);
      json_builder_set_member_name (b, "gbps");
      json_builder_add_double_value (b, atelier_bench_round2 (stream_read));
      json_builder_end_object (b);
      if (!json)
        printf ("anchor: CPU streaming read, %u threads %10.2f GB/s\n", threads, stream_read);
      if (sgemm_2048 > 0 && !models)
        {
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "anchor");
          json_builder_add_string_value (b, "openblas_sgemm");
          json_builder_set_member_name (b, "library");
          json_builder_add_string_value (b, blas);
          json_builder_set_member_name (b, "m");
          json_builder_add_int_value (b, 2048);
          json_builder_set_member_name (b, "n");
          json_builder_add_int_value (b, 2048);
          json_builder_set_member_name (b, "k");
          json_builder_add_int_value (b, 2048);
          json_builder_set_member_name (b, "gflops");
          json_builder_add_double_value (b, atelier_bench_round2 (sgemm_2048));
          json_builder_end_object (b);
          if (!json)
            printf ("anchor: OpenBLAS sgemm 2048^3 (%s) %10.2f GFLOP/s\n", blas, sgemm_2048);
        }
      else if (!json && !models)
        printf ("anchor: OpenBLAS not installed (apt-get install libopenblas0-pthread)\n");
    }

  if (text)
    status = atelier_bench_text (dev, b, json, quick, stream_read, model_path, kv_dtype, llama_bench,
                                 no_anchors);
  else if (models)
    status = atelier_bench_models (dev, b, json, quick, stream_read);
  for (guint l = 0; !models && at_bench_case_lists[l] != NULL; l++)
  for (const AtBenchCase *c = at_bench_case_lists[l]; c->name != NULL; c++)
    {
      g_autoptr (AtGraph) g = NULL;
      g_autoptr (GError) e = NULL;
      double t = 0, figure, anchor;

      if (filter != NULL && strstr (c->name, filter) == NULL)
        continue;
      g = at_graph_new (dev);
      if (!c->build (g, c, &e) || !at_graph_compile (g, &e)
          || !time_graph (g, quick ? 0.1 : 0.5, &t, &e))
        {
          fprintf (stderr, "atelier bench: %s: %s\n", c->name, e->message);
          status = 1;
          continue;
        }
      if (at_profile_enabled ())
        at_command_print_profile (at_graph_get_command (g), stderr);
      t /= c->repeat > 0 ? c->repeat : 1;
      figure = c->unit == AT_BENCH_GFLOPS ? c->work / t / 1e9
               : c->unit == AT_BENCH_GBPS ? c->work / t / 1e9
                                          : t * 1e6;
      json_builder_begin_object (b);
      add_common (b, c);
      json_builder_set_member_name (b, c->unit == AT_BENCH_GFLOPS ? "gflops"
                                       : c->unit == AT_BENCH_GBPS ? "gbps"
                                                                  : "us");
      json_builder_add_double_value (b, atelier_bench_round2 (figure));
      json_builder_set_member_name (b, "ms");
      json_builder_add_double_value (b, t * 1e3);
      anchor = anchor_for (c, sgemm_2048, stream_read);
      if (anchor > 0)
        {
          json_builder_set_member_name (b, "vs_anchor");
          json_builder_add_double_value (b, ((gint64) (figure / anchor * 1000 + 0.5)) / 1000.0);
        }
      json_builder_end_object (b);
      if (!json)
        {
          printf ("%-40s %10.2f %s   (%.3f ms)", c->name, figure,
                  c->unit == AT_BENCH_GFLOPS ? "GFLOP/s" : c->unit == AT_BENCH_GBPS ? "GB/s" : "us",
                  t * 1e3);
          if (anchor > 0)
            printf ("   %.2fx the %s", figure / anchor,
                    strcmp (c->op, "matvec") == 0 ? "CPU's streaming read" : "OpenBLAS figure");
          printf ("\n");
        }
      fflush (stdout);
    }
  json_builder_end_array (b);
  if (json)
    {
      g_autoptr (JsonNode) root = json_builder_get_root (b);
      g_autofree char *out = json_to_string (root, TRUE);
      printf ("%s\n", out);
    }
  return status;
}
