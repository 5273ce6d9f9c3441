/* fuzz-tokenizer.c: the GGUF tokenizer loader under libFuzzer. Parses the input as a GGUF,
 * builds the tokenizer from its metadata, then encodes a fixed text (with and without special
 * parsing, BOS/EOS on) and decodes the ids it got, every id of a small vocabulary, and ids out
 * of range, in one go and streamed. */
#include <string.h>

#include "at-engine.h"

int LLVMFuzzerTestOneInput (const guint8 *data, gsize size);

static const char text[] = "Hello world! ab  abab\n\t<|end|><s> 3333 \xc3\x84pfel \xf0\x9f\xa6\x99 '\xe2\x96\x81'";

static void
check_decode (AtTokenizer *t, const gint32 *ids, gsize n)
{
  g_autoptr (AtDetokenizer) d = at_detokenizer_new (t, FALSE);
  g_autofree char *full = at_tokenizer_decode (t, ids, n, FALSE);
  g_autofree char *rest = NULL;
  g_autoptr (GString) streamed = g_string_new (NULL);

  g_assert_true (g_utf8_validate (full, -1, NULL));
  for (gsize i = 0; i < n; i++)
    {
      g_autofree char *piece = at_detokenizer_feed (d, ids[i]);

      g_assert_true (g_utf8_validate (piece, -1, NULL));
      g_string_append (streamed, piece);
    }
  rest = at_detokenizer_flush (d);
  g_string_append (streamed, rest);
  g_assert_cmpstr (streamed->str, ==, full);
}

int
LLVMFuzzerTestOneInput (const guint8 *data, gsize size)
{
  g_autoptr (GBytes) bytes = g_bytes_new_static (data, size);
  g_autoptr (AtGguf) g = at_gguf_new_from_bytes (bytes, "fuzz.gguf", NULL);
  g_autoptr (AtTokenizer) t = NULL;
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  guint n;

  if (g == NULL)
    return 0;
  t = at_tokenizer_new_from_gguf (g, NULL);
  if (t == NULL)
    return 0;
  n = at_tokenizer_get_n_tokens (t);
  g_assert_true (at_tokenizer_encode (t, text, -1, TRUE, FALSE, ids, NULL));
  g_assert_true (at_tokenizer_encode (t, text, -1, FALSE, TRUE, ids, NULL));
  for (guint i = 0; i < ids->len; i++)
    g_assert_cmpuint ((guint) g_array_index (ids, gint32, i), <, n);
  check_decode (t, (const gint32 *) ids->data, ids->len);
  g_array_set_size (ids, 0);
  for (gint32 i = -2; i < (gint32) MIN (n + 2, 300u); i++)
    {
      g_array_append_val (ids, i);
      at_tokenizer_is_eog (t, i);
      at_tokenizer_get_token_text (t, i, NULL);
    }
  check_decode (t, (const gint32 *) ids->data, ids->len);
  return 0;
}
