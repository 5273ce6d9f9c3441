/* fuzz-gguf.c: the GGUF reader under libFuzzer. Parses the input, then touches everything the
 * parse produced: every metadata value through every getter and as JSON, nested arrays to the
 * bottom, and the first and last byte and the f32 conversion of every tensor. */
#include "at-engine.h"

int LLVMFuzzerTestOneInput (const guint8 *data, gsize size);

static void
walk_kv (const AtGgufKv *kv)
{
  gint64 i64;
  double d;
  gboolean b;
  const char *s;
  gsize len;
  g_autofree char *dup = at_gguf_kv_dup_string (kv);
  guint64 n = at_gguf_kv_get_array_length (kv);

  at_gguf_kv_get_int (kv, &i64);
  at_gguf_kv_get_float (kv, &d);
  at_gguf_kv_get_bool (kv, &b);
  at_gguf_kv_get_string (kv, &s, &len);
  g_assert_cmpint (at_gguf_kv_get_array_type (kv), <=, AT_GGUF_N_TYPES);
  for (guint64 i = 0; i < n; i++)
    {
      const AtGgufKv *item = at_gguf_kv_array_get_array (kv, i);
      g_autofree char *elem = at_gguf_kv_array_dup_string (kv, i);

      at_gguf_kv_array_get_int (kv, i, &i64);
      at_gguf_kv_array_get_float (kv, i, &d);
      at_gguf_kv_array_get_bool (kv, i, &b);
      if (at_gguf_kv_array_get_string (kv, i, &s, &len) && len > 0)
        g_assert_true (s[0] == elem[0] && s[len - 1] == elem[len - 1]);
      if (item != NULL)
        walk_kv (item);
    }
  /* Out of range must be refused, not read. */
  g_assert_false (at_gguf_kv_array_get_int (kv, n, &i64));
  g_assert_false (at_gguf_kv_array_get_string (kv, n, &s, &len));
}

static void
walk_tensors (AtTensorSet *set)
{
  for (guint i = 0; i < at_tensor_set_get_n_tensors (set); i++)
    {
      const AtTensorEntry *e = at_tensor_set_get (set, i);
      guint8 first, last;

      if (e->nbytes > 0)
        {
          g_assert_true (at_tensor_set_read (set, e, 0, &first, 1, NULL));
          g_assert_true (at_tensor_set_read (set, e, e->nbytes - 1, &last, 1, NULL));
        }
      /* Converting is bounded by the input size (the data lies inside it), but keep the
       * allocation small for the fuzzer's memory limit. */
      if (e->numel > 0 && e->numel <= (1 << 20))
        {
          g_autofree float *f = g_new (float, e->numel);

          g_assert_true (at_tensor_set_read_f32 (set, e, f, NULL));
        }
    }
}

int
LLVMFuzzerTestOneInput (const guint8 *data, gsize size)
{
  g_autoptr (GBytes) bytes = g_bytes_new_static (data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtGguf) g = at_gguf_new_from_bytes (bytes, "fuzz.gguf", &error);

  if (g == NULL)
    {
      g_assert_nonnull (error);
      g_assert_true (g_str_has_prefix (error->message, "fuzz.gguf: "));
      return 0;
    }
  for (guint i = 0; i < at_gguf_get_n_kv (g); i++)
    {
      const AtGgufKv *kv = at_gguf_get_kv (g, i);
      g_autoptr (JsonNode) limited = at_gguf_kv_to_json (kv, 3);
      g_autoptr (JsonNode) full = at_gguf_kv_to_json (kv, 0);
      g_autofree char *text = json_to_string (full, FALSE);

      g_assert_true (at_gguf_find_kv (g, at_gguf_kv_get_key (kv)) == kv);
      g_assert_true (g_utf8_validate (text, -1, NULL));
      walk_kv (kv);
    }
  walk_tensors (at_gguf_get_tensors (g));
  return 0;
}
