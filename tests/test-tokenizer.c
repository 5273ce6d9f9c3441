/* test-tokenizer.c: the GGUF tokenizers against llama.cpp's test-tokenizer-0 ids for five real
 * vocabularies (../shared/data/tokenizers/ggml-vocab-*.gguf with their .inp / .out), the
 * decode round trip and the streaming detokenizer on the same cases, special-token parsing,
 * BOS/EOS, and hand-written hostile vocabularies that must fail naming the key.
 *
 * .inp layout: every case is followed by "\n__ggml_vocab_test__\n"; .out has one line of
 * space-separated ids per case (an empty line for an empty case).
 */
#include <gio/gio.h>
#include <string.h>

#include "at-test-util.h"

#define SEP "\n__ggml_vocab_test__\n"

typedef struct
{
  GPtrArray *inputs; /* char *, one per case */
  GPtrArray *ids;    /* GArray of gint32, one per case */
} Cases;

static void
cases_clear (Cases *c)
{
  g_clear_pointer (&c->inputs, g_ptr_array_unref);
  g_clear_pointer (&c->ids, g_ptr_array_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Cases, cases_clear)

static gboolean
load_cases (const char *name, AtGguf **g_out, AtTokenizer **t_out, Cases *c)
{
  g_autofree char *rel = g_strdup_printf ("tokenizers/ggml-vocab-%s.gguf", name);
  g_autofree char *path = at_test_shared_path (rel);
  g_autofree char *inp_path = NULL, *out_path = NULL, *inp = NULL, *out = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (GError) error = NULL;
  const char *p;
  gint64 t0;

  if (path == NULL)
    return FALSE;
  inp_path = g_strconcat (path, ".inp", NULL);
  out_path = g_strconcat (path, ".out", NULL);
  g_assert_true (g_file_get_contents (inp_path, &inp, NULL, &error));
  g_assert_true (g_file_get_contents (out_path, &out, NULL, &error));

  *g_out = at_gguf_open (path, &error);
  g_assert_no_error (error);
  t0 = g_get_monotonic_time ();
  *t_out = at_tokenizer_new_from_gguf (*g_out, &error);
  g_assert_no_error (error);
  g_test_message ("%s: loaded %u tokens in %.1f ms", name, at_tokenizer_get_n_tokens (*t_out),
                  (g_get_monotonic_time () - t0) / 1000.0);

  c->inputs = g_ptr_array_new_with_free_func (g_free);
  c->ids = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
  for (p = inp; *p != '\0';)
    {
      const char *e = strstr (p, SEP);

      g_assert_nonnull (e);
      g_ptr_array_add (c->inputs, g_strndup (p, (gsize) (e - p)));
      p = e + strlen (SEP);
    }
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; i < c->inputs->len; i++)
    {
      GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
      g_auto (GStrv) words = NULL;

      g_assert_nonnull (lines[i]);
      words = g_strsplit_set (lines[i], " ", -1);
      for (guint k = 0; words[k] != NULL; k++)
        if (words[k][0] != '\0')
          {
            gint32 id = (gint32) g_ascii_strtoll (words[k], NULL, 10);

            g_array_append_val (ids, id);
          }
      g_ptr_array_add (c->ids, ids);
    }
  return TRUE;
}

static char *
ids_to_string (const GArray *ids)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < ids->len; i++)
    g_string_append_printf (s, "%s%d", i ? " " : "", g_array_index (ids, gint32, i));
  return g_string_free (s, FALSE);
}

static void
test_vocab (gconstpointer data)
{
  const char *name = data;
  g_autoptr (AtGguf) g = NULL;
  g_autoptr (AtTokenizer) t = NULL;
  g_auto (Cases) c = { 0 };
  guint matched = 0;
  gint64 t0, total_bytes = 0;

  if (!load_cases (name, &g, &t, &c))
    return;
  t0 = g_get_monotonic_time ();
  for (guint i = 0; i < c.inputs->len; i++)
    {
      const char *text = c.inputs->pdata[i];
      GArray *want = c.ids->pdata[i];
      g_autoptr (GArray) got = g_array_new (FALSE, FALSE, sizeof (gint32));
      g_autoptr (GError) error = NULL;

      g_assert_true (at_tokenizer_encode (t, text, -1, FALSE, FALSE, got, &error));
      g_assert_no_error (error);
      total_bytes += (gint64) strlen (text);
      if (got->len == want->len
          && (got->len == 0 || memcmp (got->data, want->data, sizeof (gint32) * got->len) == 0))
        matched++;
      else
        {
          g_autofree char *g_s = ids_to_string (got);
          g_autofree char *w_s = ids_to_string (want);
          g_autofree char *esc = g_strescape (text, NULL);

          g_test_message ("%s case %u \"%s\":\n  want %s\n  got  %s", name, i, esc, w_s, g_s);
          g_test_fail ();
        }
    }
  g_test_message ("%s: %u/%u cases match (%" G_GINT64_FORMAT " bytes in %.2f ms)", name, matched,
                  c.inputs->len, total_bytes, (g_get_monotonic_time () - t0) / 1000.0);
}

/* decode(encode(x)) == x, and the detokenizer fed id by id gives the same text in valid
 * UTF-8 chunks. */
static void
test_roundtrip (gconstpointer data)
{
  const char *name = data;
  g_autoptr (AtGguf) g = NULL;
  g_autoptr (AtTokenizer) t = NULL;
  g_auto (Cases) c = { 0 };

  if (!load_cases (name, &g, &t, &c))
    return;
  for (guint i = 0; i < c.inputs->len; i++)
    {
      const char *text = c.inputs->pdata[i];
      g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
      g_autoptr (AtDetokenizer) d = at_detokenizer_new (t, TRUE);
      g_autoptr (GString) streamed = g_string_new (NULL);
      g_autofree char *full = NULL, *rest = NULL;

      g_assert_true (at_tokenizer_encode (t, text, -1, TRUE, FALSE, ids, NULL));
      full = at_tokenizer_decode (t, (gint32 *) ids->data, ids->len, TRUE);
      g_assert_cmpstr (full, ==, text);
      for (guint k = 0; k < ids->len; k++)
        {
          g_autofree char *piece = at_detokenizer_feed (d, g_array_index (ids, gint32, k));

          g_assert_true (g_utf8_validate (piece, -1, NULL));
          g_string_append (streamed, piece);
        }
      rest = at_detokenizer_flush (d);
      g_assert_true (g_utf8_validate (rest, -1, NULL));
      g_string_append (streamed, rest);
      g_assert_cmpstr (streamed->str, ==, full);
    }
}

static AtTokenizer *
open_tokenizer (const char *name, AtGguf **g)
{
  g_autofree char *rel = g_strdup_printf ("tokenizers/ggml-vocab-%s.gguf", name);
  g_autofree char *path = at_test_shared_path (rel);
  g_autoptr (GError) error = NULL;
  AtTokenizer *t;

  if (path == NULL)
    return NULL;
  *g = at_gguf_open (path, &error);
  g_assert_no_error (error);
  t = at_tokenizer_new_from_gguf (*g, &error);
  g_assert_no_error (error);
  return t;
}

static void
test_special (void)
{
  g_autoptr (AtGguf) g = NULL;
  g_autoptr (AtTokenizer) t = open_tokenizer ("qwen2", &g);
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (GArray) raw = g_array_new (FALSE, FALSE, sizeof (gint32));
  const char *text = "<|im_start|>user\nhi<|im_end|>";
  gint32 start, end;
  gsize len;
  g_autofree char *back = NULL;

  if (t == NULL)
    return;
  g_assert_true (at_tokenizer_encode (t, text, -1, FALSE, TRUE, ids, NULL));
  start = g_array_index (ids, gint32, 0);
  end = g_array_index (ids, gint32, ids->len - 1);
  g_assert_cmpstr (at_tokenizer_get_token_text (t, start, &len), ==, "<|im_start|>");
  g_assert_cmpuint (len, ==, 12);
  g_assert_cmpstr (at_tokenizer_get_token_text (t, end, NULL), ==, "<|im_end|>");
  g_assert_cmpint (start, ==, 151644);
  g_assert_cmpint (end, ==, 151645);
  g_assert_true (at_tokenizer_is_eog (t, end));
  g_assert_true (at_tokenizer_is_eog (t, at_tokenizer_get_eos (t)));
  g_assert_false (at_tokenizer_is_eog (t, start));
  g_assert_false (at_tokenizer_is_eog (t, -1));
  /* Without parse_special the markers are plain text: many pieces. */
  g_assert_true (at_tokenizer_encode (t, text, -1, FALSE, FALSE, raw, NULL));
  g_assert_cmpuint (raw->len, >, ids->len);
  for (guint i = 0; i < raw->len; i++)
    g_assert_cmpint (at_tokenizer_get_token_type (t, g_array_index (raw, gint32, i)), ==,
                     AT_TOKEN_TYPE_NORMAL);
  back = at_tokenizer_decode (t, (gint32 *) ids->data, ids->len, FALSE);
  g_assert_cmpstr (back, ==, text);
  g_free (g_steal_pointer (&back));
  back = at_tokenizer_decode (t, (gint32 *) ids->data, ids->len, TRUE);
  g_assert_cmpstr (back, ==, "user\nhi");
}

/* Phi-3's special tokens swallow the whitespace after them (llama.cpp's rstrip for Phi-3), and
 * "</s>" is user-defined there: split off even without parse_special. */
static void
test_phi3_rstrip (void)
{
  g_autoptr (AtGguf) g = NULL;
  g_autoptr (AtTokenizer) t = open_tokenizer ("phi-3", &g);
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (GArray) plain = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (GArray) hi = g_array_new (FALSE, FALSE, sizeof (gint32));

  if (t == NULL)
    return;
  g_assert_true (at_tokenizer_encode (t, "<|user|>\nHi<|end|>\n<|assistant|>", -1, FALSE, TRUE,
                                      ids, NULL));
  g_assert_true (at_tokenizer_encode (t, "Hi", -1, FALSE, FALSE, hi, NULL));
  g_assert_cmpuint (ids->len, ==, hi->len + 3);
  g_assert_cmpint (g_array_index (ids, gint32, 0), ==, 32010);
  for (guint i = 0; i < hi->len; i++)
    g_assert_cmpint (g_array_index (ids, gint32, 1 + i), ==, g_array_index (hi, gint32, i));
  g_assert_cmpint (g_array_index (ids, gint32, hi->len + 1), ==, 32007);
  g_assert_cmpint (g_array_index (ids, gint32, hi->len + 2), ==, 32001);
  g_assert_true (at_tokenizer_is_eog (t, 32007));
  g_assert_true (at_tokenizer_is_eog (t, 32000));
  g_assert_cmpint (at_tokenizer_get_eot (t), ==, 32007);

  g_assert_true (at_tokenizer_encode (t, "a</s> b", -1, FALSE, FALSE, plain, NULL));
  g_assert_cmpuint (plain->len, ==, 3);
  g_assert_cmpint (g_array_index (plain, gint32, 1), ==, 2);
}

static void
test_bos (void)
{
  g_autoptr (AtGguf) g = NULL;
  g_autoptr (AtTokenizer) t = open_tokenizer ("llama-spm", &g);
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;

  if (t == NULL)
    return;
  g_assert_cmpint (at_tokenizer_get_kind (t), ==, AT_TOKENIZER_SPM);
  g_assert_true (at_tokenizer_get_add_bos (t));
  g_assert_false (at_tokenizer_get_add_eos (t));
  g_assert_cmpint (at_tokenizer_get_bos (t), ==, 1);
  g_assert_cmpint (at_tokenizer_get_eos (t), ==, 2);
  g_assert_cmpint (at_tokenizer_get_unk (t), ==, 0);
  g_assert_true (at_tokenizer_encode (t, "Hello world", -1, TRUE, FALSE, ids, NULL));
  g_assert_cmpuint (ids->len, ==, 3);
  g_assert_cmpint (g_array_index (ids, gint32, 0), ==, 1);
  g_assert_cmpint (g_array_index (ids, gint32, 1), ==, 15043);
  g_assert_cmpint (g_array_index (ids, gint32, 2), ==, 3186);
  text = at_tokenizer_decode (t, (gint32 *) ids->data, ids->len, FALSE);
  g_assert_cmpstr (text, ==, "<s>Hello world");
  /* Invalid UTF-8 is refused and nothing is appended. */
  g_array_set_size (ids, 0);
  g_assert_false (at_tokenizer_encode (t, "ab\xff", -1, FALSE, FALSE, ids, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_INVALID);
  g_assert_cmpuint (ids->len, ==, 0);
}

/* A byte token on its own is no character: the detokenizer holds it, then the flush turns it
 * into U+FFFD; an id out of range is U+FFFD too. */
static void
test_partial_utf8 (void)
{
  g_autoptr (AtGguf) g = NULL;
  g_autoptr (AtTokenizer) t = open_tokenizer ("llama-spm", &g);
  g_autoptr (AtDetokenizer) d = NULL;
  g_autofree char *a = NULL, *b = NULL, *c = NULL, *e = NULL, *f = NULL;
  /* "€" = E2 82 AC: <0xE2> is id 3 + 0xE2. */
  gint32 bad[] = { 3 + 0xE2, -5 };

  if (t == NULL)
    return;
  d = at_detokenizer_new (t, TRUE);
  a = at_detokenizer_feed (d, 3 + 0xE2);
  b = at_detokenizer_feed (d, 3 + 0x82);
  c = at_detokenizer_feed (d, 3 + 0xAC);
  g_assert_cmpstr (a, ==, "");
  g_assert_cmpstr (b, ==, "");
  g_assert_cmpstr (c, ==, "\xe2\x82\xac");
  e = at_tokenizer_decode (t, bad, G_N_ELEMENTS (bad), TRUE);
  g_assert_cmpstr (e, ==, "\xef\xbf\xbd\xef\xbf\xbd");
  f = at_detokenizer_flush (d);
  g_assert_cmpstr (f, ==, "");
}

/* ---- Hostile vocabularies, written by hand ---- */

typedef struct
{
  GByteArray *b;
  guint64 n_kv;
} Vocab;

static void
kv_str (Vocab *v, const char *key, const char *val)
{
  at_test_put_str (v->b, key);
  at_test_put_u32 (v->b, 8);
  at_test_put_str (v->b, val);
  v->n_kv++;
}

static void
kv_u32 (Vocab *v, const char *key, guint32 val)
{
  at_test_put_str (v->b, key);
  at_test_put_u32 (v->b, 4);
  at_test_put_u32 (v->b, val);
  v->n_kv++;
}

/* NULL-terminated strings. */
static void
kv_strs (Vocab *v, const char *key, const char *const *vals)
{
  guint64 n = g_strv_length ((char **) vals);

  at_test_put_str (v->b, key);
  at_test_put_u32 (v->b, 9);
  at_test_put_u32 (v->b, 8);
  at_test_put_u64 (v->b, n);
  for (guint64 i = 0; i < n; i++)
    at_test_put_str (v->b, vals[i]);
  v->n_kv++;
}

static void
kv_f32s (Vocab *v, const char *key, guint n)
{
  at_test_put_str (v->b, key);
  at_test_put_u32 (v->b, 9);
  at_test_put_u32 (v->b, 6);
  at_test_put_u64 (v->b, n);
  for (guint i = 0; i < n; i++)
    {
      float f = -(float) i;
      guint32 u;

      memcpy (&u, &f, 4);
      at_test_put_u32 (v->b, u);
    }
  v->n_kv++;
}

static void
kv_i32s (Vocab *v, const char *key, const gint32 *vals, guint n)
{
  at_test_put_str (v->b, key);
  at_test_put_u32 (v->b, 9);
  at_test_put_u32 (v->b, 5);
  at_test_put_u64 (v->b, n);
  for (guint i = 0; i < n; i++)
    at_test_put_u32 (v->b, (guint32) vals[i]);
  v->n_kv++;
}

static GBytes *
vocab_finish (Vocab *v)
{
  GByteArray *out = g_byte_array_new ();

  g_byte_array_append (out, (const guint8 *) "GGUF", 4);
  at_test_put_u32 (out, 3);
  at_test_put_u64 (out, 0);
  at_test_put_u64 (out, v->n_kv);
  g_byte_array_append (out, v->b->data, v->b->len);
  g_byte_array_unref (v->b);
  return g_byte_array_free_to_bytes (out);
}

static const char *const tiny_tokens[] = { "<unk>", "<s>", "</s>", "a", "b", "ab", NULL };
static const char *const tiny_bpe_tokens[] = { "a", "b", "ab", "\xc4\xa0", "<|end|>", NULL };

typedef enum
{
  H_NONE,
  H_MISSING_TOKENS,
  H_SCORES_COUNT,
  H_BOS_RANGE,
  H_MERGE_UNKNOWN,
  H_WORDPIECE,
  H_PRE_UNKNOWN,
  H_MERGE_NO_SPACE,
} Hostile;

static GBytes *
make_vocab (Hostile h, gboolean bpe)
{
  Vocab v = { g_byte_array_new (), 0 };

  kv_str (&v, "tokenizer.ggml.model", h == H_WORDPIECE ? "wordpiece" : bpe ? "gpt2" : "llama");
  if (bpe)
    {
      const char *const merges_ok[] = { "a b", NULL };
      const char *const merges_bad[] = { "a b", "a zz", NULL };
      const char *const merges_nosp[] = { "ab", NULL };
      const gint32 types[] = { 1, 1, 1, 1, AT_TOKEN_TYPE_CONTROL };

      kv_str (&v, "tokenizer.ggml.pre", h == H_PRE_UNKNOWN ? "mystery" : "gpt-2");
      if (h != H_MISSING_TOKENS)
        kv_strs (&v, "tokenizer.ggml.tokens", tiny_bpe_tokens);
      kv_i32s (&v, "tokenizer.ggml.token_type", types, G_N_ELEMENTS (types));
      kv_strs (&v, "tokenizer.ggml.merges", h == H_MERGE_UNKNOWN ? merges_bad
                                            : h == H_MERGE_NO_SPACE ? merges_nosp
                                                                    : merges_ok);
      kv_u32 (&v, "tokenizer.ggml.eos_token_id", 4);
    }
  else
    {
      if (h != H_MISSING_TOKENS)
        kv_strs (&v, "tokenizer.ggml.tokens", tiny_tokens);
      kv_f32s (&v, "tokenizer.ggml.scores", h == H_SCORES_COUNT ? 5 : 6);
      kv_u32 (&v, "tokenizer.ggml.bos_token_id", h == H_BOS_RANGE ? 6 : 1);
    }
  return vocab_finish (&v);
}

static void
test_tiny (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) spm_bytes = make_vocab (H_NONE, FALSE);
  g_autoptr (GBytes) bpe_bytes = make_vocab (H_NONE, TRUE);
  g_autoptr (AtGguf) g1 = at_gguf_new_from_bytes (spm_bytes, "spm", &error);
  g_autoptr (AtGguf) g2 = NULL;
  g_autoptr (AtTokenizer) spm = NULL, bpe = NULL;
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autofree char *back = NULL;

  g_assert_no_error (error);
  spm = at_tokenizer_new_from_gguf (g1, &error);
  g_assert_no_error (error);
  /* No ▁ token and no byte tokens: the dummy prefix falls back to <unk>. */
  g_assert_true (at_tokenizer_encode (spm, "ab", -1, FALSE, FALSE, ids, NULL));
  g_assert_cmpuint (ids->len, ==, 4);
  g_assert_cmpint (g_array_index (ids, gint32, 3), ==, 5);

  g2 = at_gguf_new_from_bytes (bpe_bytes, "bpe", &error);
  g_assert_no_error (error);
  bpe = at_tokenizer_new_from_gguf (g2, &error);
  g_assert_no_error (error);
  g_array_set_size (ids, 0);
  g_assert_true (at_tokenizer_encode (bpe, "abab<|end|>", -1, TRUE, TRUE, ids, NULL));
  g_assert_cmpuint (ids->len, ==, 3);
  g_assert_cmpint (g_array_index (ids, gint32, 0), ==, 2);
  g_assert_cmpint (g_array_index (ids, gint32, 2), ==, 4);
  g_assert_true (at_tokenizer_is_eog (bpe, 4));
  back = at_tokenizer_decode (bpe, (gint32 *) ids->data, ids->len, FALSE);
  g_assert_cmpstr (back, ==, "abab<|end|>");
}

typedef struct
{
  Hostile h;
  gboolean bpe;
  int code;
  const char *fragment;
} HostileCase;

static const HostileCase hostile_cases[] = {
  { H_MISSING_TOKENS, FALSE, AT_ERROR_BAD_FILE, "tokenizer.ggml.tokens: missing" },
  { H_MISSING_TOKENS, TRUE, AT_ERROR_BAD_FILE, "tokenizer.ggml.tokens: missing" },
  { H_SCORES_COUNT, FALSE, AT_ERROR_BAD_FILE, "tokenizer.ggml.scores: 5 scores for 6 tokens" },
  { H_BOS_RANGE, FALSE, AT_ERROR_BAD_FILE, "tokenizer.ggml.bos_token_id: token id 6 is out of range" },
  { H_MERGE_UNKNOWN, TRUE, AT_ERROR_BAD_FILE, "tokenizer.ggml.merges: merge 1 names a part that is not a token" },
  { H_MERGE_NO_SPACE, TRUE, AT_ERROR_BAD_FILE, "tokenizer.ggml.merges: merge 0 has no space" },
  { H_WORDPIECE, FALSE, AT_ERROR_UNSUPPORTED, "tokenizer.ggml.model: tokenizer model \"wordpiece\"" },
  { H_PRE_UNKNOWN, TRUE, AT_ERROR_UNSUPPORTED, "tokenizer.ggml.pre: pre-tokenizer \"mystery\"" },
};

static void
test_hostile (void)
{
  const char *corpus = g_getenv ("AT_TOKENIZER_CORPUS_DIR");

  for (guint i = 0; i < G_N_ELEMENTS (hostile_cases); i++)
    {
      const HostileCase *c = &hostile_cases[i];
      g_autoptr (GError) error = NULL;
      g_autoptr (GBytes) bytes = make_vocab (c->h, c->bpe);
      g_autoptr (AtGguf) g = at_gguf_new_from_bytes (bytes, "hostile.gguf", &error);
      g_autoptr (AtTokenizer) t = NULL;

      g_assert_no_error (error);
      t = at_tokenizer_new_from_gguf (g, &error);
      g_assert_null (t);
      g_assert_error (error, AT_ERROR, c->code);
      if (strstr (error->message, c->fragment) == NULL)
        g_error ("case %u: \"%s\" lacks \"%s\"", i, error->message, c->fragment);
      if (corpus != NULL)
        {
          g_autofree char *name = g_strdup_printf ("%s/hostile-%u.gguf", corpus, i);
          gsize n;
          const char *data = g_bytes_get_data (bytes, &n);

          g_file_set_contents (name, data, (gssize) n, NULL);
        }
    }
  if (corpus != NULL)
    for (int bpe = 0; bpe < 2; bpe++)
      {
        g_autoptr (GBytes) bytes = make_vocab (H_NONE, bpe);
        g_autofree char *name = g_strdup_printf ("%s/tiny-%s.gguf", corpus, bpe ? "bpe" : "spm");
        gsize n;
        const char *data = g_bytes_get_data (bytes, &n);

        g_file_set_contents (name, data, (gssize) n, NULL);
      }
}

/* Loading the largest vocabulary (llama-bpe: 128k tokens, 280k merges) is timed, and encoding
 * a long text must stay near linear. */
static void
test_speed (void)
{
  g_autofree char *path = at_test_shared_path ("tokenizers/ggml-vocab-llama-bpe.gguf");
  g_autoptr (AtGguf) g = NULL;
  g_autoptr (AtTokenizer) t = NULL;
  g_autoptr (GString) text = g_string_new (NULL);
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  gint64 t0;
  double load_ms, enc_ms;

  if (path == NULL)
    return;
  g = at_gguf_open (path, NULL);
  g_assert_nonnull (g);
  t0 = g_get_monotonic_time ();
  t = at_tokenizer_new_from_gguf (g, NULL);
  load_ms = (g_get_monotonic_time () - t0) / 1000.0;
  g_assert_nonnull (t);
  for (int i = 0; i < 2000; i++)
    g_string_append (text, "The quick brown fox jumps over the lazy dog 1234567, ünïcödé 🦙 ");
  g_string_append_len (text, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 64);
  t0 = g_get_monotonic_time ();
  g_assert_true (at_tokenizer_encode (t, text->str, (gssize) text->len, FALSE, FALSE, ids, NULL));
  enc_ms = (g_get_monotonic_time () - t0) / 1000.0;
  g_test_message ("llama-bpe: load %.1f ms; encode %" G_GSIZE_FORMAT " bytes -> %u ids in %.1f ms",
                  load_ms, text->len, ids->len, enc_ms);
  g_assert_cmpfloat (load_ms, <, 2000.0);
  g_assert_cmpfloat (enc_ms, <, 5000.0);
}

/* `atelier tokenize` from the build tree: ids as in the .out file, --decode back, a file that
 * is no GGUF (exit 1, saying why), a usage error (exit 2). Skipped without the binary. */
static int
run_cli (const char *const *argv, const char *stdin_text, char **out, char **err)
{
  g_autoptr (GSubprocessLauncher) l = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE
                                                                 | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                                                 | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr (GSubprocess) p = NULL;
  g_autoptr (GError) error = NULL;

  p = g_subprocess_launcher_spawnv (l, argv, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (p, stdin_text, NULL, out, err, &error));
  g_assert_no_error (error);
  return g_subprocess_get_exit_status (p);
}

static void
test_cli (void)
{
  g_autofree char *exe = g_test_build_filename (G_TEST_BUILT, "..", "atelier", NULL);
  g_autofree char *model = at_test_shared_path ("tokenizers/ggml-vocab-llama-bpe.gguf");
  g_autofree char *bogus = NULL;
  g_autofree char *out = NULL, *err = NULL, *back = NULL, *err2 = NULL;
  g_autofree char *out3 = NULL, *err3 = NULL, *out4 = NULL, *err4 = NULL;
  const char *text = " Hello World!\n\tthis is 🦙.cpp";

  if (model == NULL)
    return;
  if (!g_file_test (exe, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("no atelier binary in the build tree");
      return;
    }
  {
    const char *const argv[] = { exe, "tokenize", "--model", model, NULL };
    const char *const dargv[] = { exe, "tokenize", "--model", model, "--decode", NULL };

    g_autoptr (AtGguf) g = at_gguf_open (model, NULL);
    g_autoptr (AtTokenizer) t = at_tokenizer_new_from_gguf (g, NULL);
    g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
    g_autofree char *want = NULL, *want_line = NULL;

    g_assert_cmpint (run_cli (argv, text, &out, &err), ==, 0);
    g_assert_true (at_tokenizer_encode (t, text, -1, FALSE, FALSE, ids, NULL));
    want = ids_to_string (ids);
    want_line = g_strconcat (want, "\n", NULL);
    g_assert_cmpstr (out, ==, want_line);
    g_assert_cmpint (run_cli (dargv, out, &back, &err2), ==, 0);
    g_assert_cmpstr (back, ==, text);
  }
  bogus = g_build_filename (at_test_tmpdir (), "not-a-model.bin", NULL);
  g_assert_true (g_file_set_contents (bogus, "hello", -1, NULL));
  {
    const char *const argv[] = { exe, "tokenize", "--model", bogus, NULL };
    const char *const uargv[] = { exe, "tokenize", NULL };

    g_assert_cmpint (run_cli (argv, "", &out3, &err3), ==, 1);
    g_assert_nonnull (strstr (err3, "atelier tokenize: "));
    g_assert_cmpint (run_cli (uargv, "", &out4, &err4), ==, 2);
    g_assert_nonnull (strstr (err4, "Usage: atelier tokenize"));
  }
}

int
main (int argc, char **argv)
{
  static const char *const vocabs[] = { "llama-spm", "llama-bpe", "gpt-2", "qwen2", "phi-3" };

  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (vocabs); i++)
    {
      g_autofree char *p1 = g_strdup_printf ("/text/tokenizer/ids/%s", vocabs[i]);
      g_autofree char *p2 = g_strdup_printf ("/text/tokenizer/roundtrip/%s", vocabs[i]);

      g_test_add_data_func (p1, vocabs[i], test_vocab);
      g_test_add_data_func (p2, vocabs[i], test_roundtrip);
    }
  g_test_add_func ("/text/tokenizer/special", test_special);
  g_test_add_func ("/text/tokenizer/bos", test_bos);
  g_test_add_func ("/text/tokenizer/phi3-rstrip", test_phi3_rstrip);
  g_test_add_func ("/text/tokenizer/partial-utf8", test_partial_utf8);
  g_test_add_func ("/text/tokenizer/tiny", test_tiny);
  g_test_add_func ("/text/tokenizer/hostile", test_hostile);
  g_test_add_func ("/text/tokenizer/speed", test_speed);
  g_test_add_func ("/text/tokenizer/cli", test_cli);
  return g_test_run ();
}
