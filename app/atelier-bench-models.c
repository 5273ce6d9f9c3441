/* atelier-bench-models.c: `atelier bench models [--json] [--quick]`: how fast model files
 * open and reach the device. Writes two files of the sizes that matter into a temporary folder:
 * a GGUF with Llama 3's 128,256-token vocabulary (strings, scores, types) and 128 MiB of Q4_K
 * weights, and a safetensors file with 1,024 f16 tensors (128 MiB); then times opening each
 * (parse, validate, index: the median of several) and uploading every tensor from the mapping
 * into one device buffer (GB/s, compared with the CPU's streaming read, the most a copy out of
 * page-cached memory can do). */
#include "config.h"

#include "atelier-bench-cases.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

#include "at-engine.h"

#define VOCAB 128256
#define N_ST_TENSORS 1024
#define ST_SIDE 256       /* f16 [256, 256]: 128 KiB each */
#define N_GGUF_TENSORS 224
#define GGUF_ROWS 256     /* Q4_K [256, 4096]: 576 KiB each */
#define GGUF_COLS 4096

static void
put_u32 (GByteArray *a, guint32 v)
{
  guint32 le = GUINT32_TO_LE (v);

  g_byte_array_append (a, (const guint8 *) &le, 4);
}

static void
put_u64 (GByteArray *a, guint64 v)
{
  guint64 le = GUINT64_TO_LE (v);

  g_byte_array_append (a, (const guint8 *) &le, 8);
}

static void
put_str (GByteArray *a, const char *s)
{
  put_u64 (a, strlen (s));
  g_byte_array_append (a, (const guint8 *) s, (guint) strlen (s));
}

/* Bytes that are not all zero (a file of zeros could be served from a shared zero page). */
static void
fill_pattern (guint8 *p, gsize n)
{
  guint32 x = 0x9e3779b9;

  for (gsize i = 0; i < n; i++)
    {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      p[i] = (guint8) x;
    }
}

static gboolean
write_gguf (const char *path, gsize *weight_bytes, GError **error)
{
  g_autoptr (GByteArray) a = g_byte_array_new ();
  gsize row = at_dtype_row_bytes (AT_DTYPE_Q4_K, GGUF_COLS), tensor = row * GGUF_ROWS;
  gsize data_start, header_end;

  g_byte_array_append (a, (const guint8 *) "GGUF", 4);
  put_u32 (a, 3);
  put_u64 (a, N_GGUF_TENSORS);
  put_u64 (a, 4);
  put_str (a, "general.architecture");
  put_u32 (a, 8);
  put_str (a, "llama");
  put_str (a, "tokenizer.ggml.tokens");
  put_u32 (a, 9);
  put_u32 (a, 8);
  put_u64 (a, VOCAB);
  for (int i = 0; i < VOCAB; i++)
    {
      char tok[32];

      g_snprintf (tok, sizeof tok, "tok%d", i);
      put_str (a, tok);
    }
  put_str (a, "tokenizer.ggml.scores");
  put_u32 (a, 9);
  put_u32 (a, 6);
  put_u64 (a, VOCAB);
  for (int i = 0; i < VOCAB; i++)
    {
      float s = -(float) i;

      g_byte_array_append (a, (const guint8 *) &s, 4);
    }
  put_str (a, "tokenizer.ggml.token_type");
  put_u32 (a, 9);
  put_u32 (a, 5);
  put_u64 (a, VOCAB);
  for (int i = 0; i < VOCAB; i++)
    put_u32 (a, 1);
  for (int t = 0; t < N_GGUF_TENSORS; t++)
    {
      char name[64];

      g_snprintf (name, sizeof name, "blk.%d.ffn_up.weight", t);
      put_str (a, name);
      put_u32 (a, 2);
      put_u64 (a, GGUF_COLS);
      put_u64 (a, GGUF_ROWS);
      put_u32 (a, 12); /* Q4_K */
      put_u64 (a, (guint64) t * tensor);
    }
  header_end = a->len;
  data_start = (header_end + 31) / 32 * 32;
  g_byte_array_set_size (a, (guint) (data_start + tensor * N_GGUF_TENSORS));
  memset (a->data + header_end, 0, data_start - header_end);
  fill_pattern (a->data + data_start, tensor * N_GGUF_TENSORS);
  *weight_bytes = tensor * N_GGUF_TENSORS;
  return g_file_set_contents (path, (const char *) a->data, a->len, error);
}

static gboolean
write_safetensors (const char *path, gsize *weight_bytes, GError **error)
{
  g_autoptr (GString) h = g_string_new ("{");
  g_autoptr (GByteArray) a = g_byte_array_new ();
  gsize tensor = (gsize) ST_SIDE * ST_SIDE * 2;
  guint64 hlen;

  for (int t = 0; t < N_ST_TENSORS; t++)
    g_string_append_printf (h, "%s\"model.layers.%d.weight\":{\"dtype\":\"F16\",\"shape\":[%d,%d],"
                               "\"data_offsets\":[%" G_GSIZE_FORMAT ",%" G_GSIZE_FORMAT "]}",
                            t > 0 ? "," : "", t, ST_SIDE, ST_SIDE, t * tensor, (t + 1) * tensor);
  g_string_append_c (h, '}');
  while (h->len % 8 != 0)
    g_string_append_c (h, ' ');
  hlen = GUINT64_TO_LE ((guint64) h->len);
  g_byte_array_append (a, (const guint8 *) &hlen, 8);
  g_byte_array_append (a, (const guint8 *) h->str, (guint) h->len);
  g_byte_array_set_size (a, (guint) (8 + h->len + tensor * N_ST_TENSORS));
  fill_pattern (a->data + 8 + h->len, tensor * N_ST_TENSORS);
  *weight_bytes = tensor * N_ST_TENSORS;
  return g_file_set_contents (path, (const char *) a->data, a->len, error);
}

static int
compare_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

/* Median seconds of at_model_file_open + close over `reps` runs. */
static gboolean
time_open (const char *path, int reps, double *median, GError **error)
{
  double t[16];

  for (int r = 0; r < reps; r++)
    {
      gint64 t0 = g_get_monotonic_time ();
      g_autoptr (AtModelFile) f = at_model_file_open (path, error);

      if (f == NULL)
        return FALSE;
      t[r] = (g_get_monotonic_time () - t0) / 1e6;
    }
  qsort (t, (gsize) reps, sizeof (double), compare_double);
  *median = t[reps / 2];
  return TRUE;
}

/* Best seconds to upload every tensor of `path` into one device buffer. */
static gboolean
time_upload (AtDevice *dev, const char *path, int reps, gsize *bytes, double *best, GError **error)
{
  g_autoptr (AtModelFile) f = at_model_file_open (path, error);
  g_autoptr (AtBuffer) buf = NULL;
  AtTensorSet *set;
  gsize total = 0;

  if (f == NULL)
    return FALSE;
  set = at_model_file_get_part (f, 0);
  for (guint i = 0; i < at_tensor_set_get_n_tensors (set); i++)
    total += at_tensor_entry_upload_size (at_tensor_set_get (set, i));
  if ((buf = at_buffer_new (dev, total, AT_BUFFER_DEVICE, "bench weights", error)) == NULL)
    return FALSE;
  *best = G_MAXDOUBLE;
  for (int r = 0; r < reps; r++)
    {
      gint64 t0 = g_get_monotonic_time ();
      gsize off = 0;

      for (guint i = 0; i < at_tensor_set_get_n_tensors (set); i++)
        {
          const AtTensorEntry *e = at_tensor_set_get (set, i);

          if (!at_tensor_set_upload (set, e, buf, off, error))
            return FALSE;
          off += at_tensor_entry_upload_size (e);
        }
      *best = MIN (*best, (g_get_monotonic_time () - t0) / 1e6);
    }
  *bytes = total;
  return TRUE;
}

void
atelier_bench_report (JsonBuilder *b, gboolean json, const char *name, const char *unit, double figure,
                      double anchor)
{
  atelier_bench_report_vs (b, json, name, unit, figure, anchor, "the CPU's streaming read");
}

void
atelier_bench_report_vs (JsonBuilder *b, gboolean json, const char *name, const char *unit,
                         double figure, double anchor, const char *anchor_name)
{
  const char *shown = strcmp (unit, "gbps") == 0           ? "GB/s"
                      : strcmp (unit, "tokens_per_s") == 0 ? "tokens/s"
                      : strcmp (unit, "mib") == 0          ? "MiB"
                                                           : unit;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "case");
  json_builder_add_string_value (b, name);
  json_builder_set_member_name (b, unit);
  json_builder_add_double_value (b, atelier_bench_round2 (figure));
  if (anchor > 0)
    {
      json_builder_set_member_name (b, "vs_anchor");
      json_builder_add_double_value (b, ((gint64) (figure / anchor * 1000 + 0.5)) / 1000.0);
    }
  json_builder_end_object (b);
  if (!json)
    {
      printf ("%-48s %10.2f %s", name, figure, shown);
      if (anchor > 0)
        printf ("   %.2fx %s", figure / anchor, anchor_name);
      printf ("\n");
      fflush (stdout);
    }
}

int
atelier_bench_models (AtDevice *dev, JsonBuilder *b, gboolean json, gboolean quick, double stream_read)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("atelier-bench-XXXXXX", &error);
  g_autofree char *gguf = NULL, *st = NULL;
  int reps = quick ? 3 : 9;
  gsize gguf_bytes = 0, st_bytes = 0, up_bytes = 0;
  double t;
  int status = 1;

  if (dir == NULL)
    goto out;
  gguf = g_build_filename (dir, "bench.gguf", NULL);
  st = g_build_filename (dir, "bench.safetensors", NULL);
  if (!write_gguf (gguf, &gguf_bytes, &error) || !write_safetensors (st, &st_bytes, &error))
    goto out;

  if (!time_open (gguf, reps, &t, &error))
    goto out;
  atelier_bench_report (b, json, "open GGUF, 128256-token vocabulary", "ms", t * 1e3, 0);
  if (!time_open (st, reps, &t, &error))
    goto out;
  atelier_bench_report (b, json, "open safetensors, 1024 tensors", "ms", t * 1e3, 0);
  if (!time_upload (dev, st, quick ? 2 : 5, &up_bytes, &t, &error))
    goto out;
  atelier_bench_report (b, json, "upload safetensors f16 128 MiB", "gbps", up_bytes / t / 1e9, stream_read);
  if (!time_upload (dev, gguf, quick ? 2 : 5, &up_bytes, &t, &error))
    goto out;
  atelier_bench_report (b, json, "upload GGUF Q4_K 126 MiB", "gbps", up_bytes / t / 1e9, stream_read);
  status = 0;

out:
  if (error != NULL)
    fprintf (stderr, "atelier bench models: %s\n", error->message);
  if (gguf != NULL)
    g_unlink (gguf);
  if (st != NULL)
    g_unlink (st);
  if (dir != NULL)
    g_rmdir (dir);
  return status;
}
