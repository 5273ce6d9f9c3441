/* at-tokenizer.c: SentencePiece-style and byte-level BPE tokenizers from GGUF metadata.
 *
 * Reference: llama.cpp src/llama-vocab.cpp (llm_tokenizer_spm_session, llm_tokenizer_bpe_session,
 * tokenizer_st_partition, token_to_piece) and src/unicode.cpp (the pre-tokenizer regexes and
 * the GPT-2 byte alphabet); ids are checked against its test-tokenizer-0 outputs.
 *
 * Layout: all token texts live NUL-terminated in one arena (`text + off[id]`, `len[id]`
 * bytes). Lookups go through two open-addressing tables built once at load: token text -> id
 * (FNV-1a), and merge pair (left id, right id) -> rank.
 *
 * Both merge loops work on one word at a time: its characters are symbols in a linked list
 * over one contiguous buffer, so a symbol's text is always `buf + start` for `n` bytes and two
 * neighbours are adjacent in the buffer. Candidate pairs sit in a binary heap; a popped pair is
 * stale when either side was absorbed or has grown, which `left.n + right.n != size` detects
 * (symbols only ever grow). That gives O(n log n) per word.
 *
 * Traps:
 * - Duplicate token texts: the LAST id wins in the text -> id table (as in llama.cpp); for
 *   duplicate merges the FIRST (lowest) rank wins.
 * - A merge line is split at the first space after its first byte ("  x" names " " and "x").
 * - SPM's dummy prefix is added to each raw-text fragment that starts the text or follows a
 *   special token, not only at the start.
 * - Phi-3 (llama.cpp matches "phi3" / "phi-3" in `general.name`): its special tokens, "</s>"
 *   (a user-defined token there) included, swallow the ASCII whitespace that follows them in the
 *   same raw-text fragment, as HF's rstrip does; "<unk>", "<s>" and "<|endoftext|>" do not.
 * - GRegex matches inside each word of the previous split on its own (a lookahead sees the end
 *   of the word, not the next word), as llama.cpp's split does.
 */
#include "text/at-tokenizer.h"

#include <stdio.h>
#include <string.h>

#include "at-error.h"

#define MAX_TOKENS (1u << 24)
#define MAX_REGEX 4
#define EMPTY_SLOT G_MAXUINT32

struct _AtTokenizer
{
  AtTokenizerKind kind;
  char *pre;
  guint n_tokens;
  char *text;   /* arena: every token text, NUL-terminated */
  guint32 *off; /* [n_tokens] */
  guint32 *len; /* [n_tokens] */
  float *scores;   /* [n_tokens] (0 when the file has none) */
  guint8 *types;   /* [n_tokens] AtTokenType */
  guint8 *eog;     /* [n_tokens] */
  guint8 *rstrip;  /* [n_tokens] or NULL: whitespace after this special token is dropped */
  guint32 *lookup; /* [lookup_mask + 1] token ids or EMPTY_SLOT */
  guint32 lookup_mask;
  guint64 *merge_keys; /* [merge_mask + 1] (left << 32 | right) + 1, 0 = empty */
  gint32 *merge_ranks;
  guint32 merge_mask;
  gint32 *special;  /* ids of control / user-defined / unknown tokens, longest text first */
  guint n_special;
  GRegex *regex[MAX_REGEX];
  guint n_regex;
  gint32 byte_token[256]; /* SPM: the id of <0xNN> (or the 1-byte token, or unk), -1 if none */
  gint32 bos, eos, eot, eom, unk, pad;
  gboolean add_bos, add_eos, add_space_prefix, ignore_merges;
};

/* ---- GPT-2's byte alphabet: printable bytes stand for themselves, the other 68 map to
 * U+0100.. in byte order. ---- */

static gunichar
byte_to_cp (guint8 b)
{
  guint n = 0;

  if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)
    return b;
  for (guint c = 0; c < b; c++)
    if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174))
      n++;
  return 256 + n;
}

/* -1 when `cp` is not in the alphabet. */
static int
cp_to_byte (gunichar cp)
{
  if (cp < 256)
    return ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || cp >= 174) ? (int) cp : -1;
  if (cp >= 256 + 68)
    return -1;
  for (guint c = 0, n = 0; c < 256; c++)
    if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174))
      {
        if (256 + n == cp)
          return (int) c;
        n++;
      }
  return -1;
}

/* ---- Hash tables ---- */

static guint32
hash_bytes (const char *s, gsize n)
{
  guint32 h = 2166136261u;

  for (gsize i = 0; i < n; i++)
    h = (h ^ (guint8) s[i]) * 16777619u;
  return h;
}

static guint32
hash_pair (guint64 key)
{
  return (guint32) ((key * G_GUINT64_CONSTANT (0x9E3779B97F4A7C15)) >> 32);
}

static gint32
token_find (AtTokenizer *t, const char *s, gsize n)
{
  guint32 i = hash_bytes (s, n) & t->lookup_mask;

  for (;; i = (i + 1) & t->lookup_mask)
    {
      guint32 id = t->lookup[i];

      if (id == EMPTY_SLOT)
        return -1;
      if (t->len[id] == n && memcmp (t->text + t->off[id], s, n) == 0)
        return (gint32) id;
    }
}

static void
token_insert (AtTokenizer *t, guint32 id)
{
  const char *s = t->text + t->off[id];
  gsize n = t->len[id];
  guint32 i = hash_bytes (s, n) & t->lookup_mask;

  for (;; i = (i + 1) & t->lookup_mask)
    {
      guint32 old = t->lookup[i];

      if (old == EMPTY_SLOT || (t->len[old] == n && memcmp (t->text + t->off[old], s, n) == 0))
        {
          t->lookup[i] = id;
          return;
        }
    }
}

static gint32
merge_rank (AtTokenizer *t, gint32 left, gint32 right)
{
  guint64 key = (((guint64) (guint32) left << 32) | (guint32) right) + 1;
  guint32 i;

  if (t->merge_keys == NULL)
    return -1;
  for (i = hash_pair (key) & t->merge_mask;; i = (i + 1) & t->merge_mask)
    {
      if (t->merge_keys[i] == 0)
        return -1;
      if (t->merge_keys[i] == key)
        return t->merge_ranks[i];
    }
}

static guint32
table_size_for (guint64 n)
{
  guint32 size = 16;

  while (size < n * 2)
    size *= 2;
  return size;
}

/* ---- Loading ---- */

static gboolean
bad_key (GError **error, AtGguf *g, const char *key, const char *what)
{
  at_file_error (error, at_gguf_get_file_name (g), "%s: %s", key, what);
  return FALSE;
}

/* An optional token id: absent leaves `out` alone. */
static gboolean
load_id (AtTokenizer *t, AtGguf *g, const char *key, gint32 *out, GError **error)
{
  const AtGgufKv *kv = at_gguf_find_kv (g, key);
  gint64 v;

  if (kv == NULL)
    return TRUE;
  if (!at_gguf_kv_get_int (kv, &v))
    return bad_key (error, g, key, "not an integer");
  if (v < 0 || v >= t->n_tokens)
    {
      at_file_error (error, at_gguf_get_file_name (g),
                     "%s: token id %" G_GINT64_FORMAT " is out of range (vocabulary of %u)", key,
                     v, t->n_tokens);
      return FALSE;
    }
  *out = (gint32) v;
  return TRUE;
}

static gboolean
load_flag (AtGguf *g, const char *key, gboolean *out, GError **error)
{
  const AtGgufKv *kv = at_gguf_find_kv (g, key);

  if (kv == NULL)
    return TRUE;
  if (!at_gguf_kv_get_bool (kv, out))
    return bad_key (error, g, key, "not a bool");
  return TRUE;
}

static gboolean
load_tokens (AtTokenizer *t, AtGguf *g, GError **error)
{
  const char *key = "tokenizer.ggml.tokens";
  const AtGgufKv *kv = at_gguf_find_kv (g, key);
  guint64 n, total = 0;

  if (kv == NULL)
    return bad_key (error, g, key, "missing (a GGUF without a vocabulary)");
  if (at_gguf_kv_get_type (kv) != AT_GGUF_TYPE_ARRAY
      || at_gguf_kv_get_array_type (kv) != AT_GGUF_TYPE_STRING)
    return bad_key (error, g, key, "not an array of strings");
  n = at_gguf_kv_get_array_length (kv);
  if (n == 0 || n > MAX_TOKENS)
    {
      at_file_error (error, at_gguf_get_file_name (g), "%s: %" G_GUINT64_FORMAT
                     " tokens (1 to %u allowed)", key, n, MAX_TOKENS);
      return FALSE;
    }
  t->n_tokens = (guint) n;
  for (guint64 i = 0; i < n; i++)
    {
      const char *s;
      gsize len;

      if (!at_gguf_kv_array_get_string (kv, i, &s, &len))
        return bad_key (error, g, key, "unreadable element");
      total += len + 1;
    }
  if (total >= G_MAXUINT32)
    return bad_key (error, g, key, "token texts too large");
  t->text = g_try_malloc (total);
  t->off = g_try_new (guint32, n);
  t->len = g_try_new (guint32, n);
  t->lookup_mask = table_size_for (n) - 1;
  t->lookup = g_try_new (guint32, (gsize) t->lookup_mask + 1);
  if (t->text == NULL || t->off == NULL || t->len == NULL || t->lookup == NULL)
    return bad_key (error, g, key, "out of memory for the vocabulary");
  memset (t->lookup, 0xff, sizeof (guint32) * ((gsize) t->lookup_mask + 1));
  total = 0;
  for (guint64 i = 0; i < n; i++)
    {
      const char *s;
      gsize len;

      at_gguf_kv_array_get_string (kv, i, &s, &len);
      memcpy (t->text + total, s, len);
      t->text[total + len] = '\0';
      t->off[i] = (guint32) total;
      t->len[i] = (guint32) len;
      total += len + 1;
      token_insert (t, (guint32) i);
    }
  return TRUE;
}

static gboolean
load_scores_types (AtTokenizer *t, AtGguf *g, GError **error)
{
  const AtGgufKv *scores = at_gguf_find_kv (g, "tokenizer.ggml.scores");
  const AtGgufKv *types = at_gguf_find_kv (g, "tokenizer.ggml.token_type");

  t->scores = g_try_new0 (float, t->n_tokens);
  t->types = g_try_new (guint8, t->n_tokens);
  t->eog = g_try_new0 (guint8, t->n_tokens);
  if (t->scores == NULL || t->types == NULL || t->eog == NULL)
    return bad_key (error, g, "tokenizer.ggml.tokens", "out of memory for the vocabulary");
  memset (t->types, AT_TOKEN_TYPE_NORMAL, t->n_tokens);
  if (scores != NULL)
    {
      if (at_gguf_kv_get_array_length (scores) != t->n_tokens)
        {
          at_file_error (error, at_gguf_get_file_name (g),
                         "tokenizer.ggml.scores: %" G_GUINT64_FORMAT " scores for %u tokens",
                         at_gguf_kv_get_array_length (scores), t->n_tokens);
          return FALSE;
        }
      for (guint i = 0; i < t->n_tokens; i++)
        {
          double v;

          if (!at_gguf_kv_array_get_float (scores, i, &v))
            return bad_key (error, g, "tokenizer.ggml.scores", "not an array of numbers");
          t->scores[i] = (float) v;
        }
    }
  if (types != NULL)
    {
      if (at_gguf_kv_get_array_length (types) != t->n_tokens)
        {
          at_file_error (error, at_gguf_get_file_name (g),
                         "tokenizer.ggml.token_type: %" G_GUINT64_FORMAT " types for %u tokens",
                         at_gguf_kv_get_array_length (types), t->n_tokens);
          return FALSE;
        }
      for (guint i = 0; i < t->n_tokens; i++)
        {
          gint64 v;

          if (!at_gguf_kv_array_get_int (types, i, &v))
            return bad_key (error, g, "tokenizer.ggml.token_type", "not an array of integers");
          if (v < 0 || v > AT_TOKEN_TYPE_BYTE)
            {
              at_file_error (error, at_gguf_get_file_name (g),
                             "tokenizer.ggml.token_type: token %u has unknown type %" G_GINT64_FORMAT,
                             i, v);
              return FALSE;
            }
          t->types[i] = (guint8) v;
        }
    }
  return TRUE;
}

static gboolean
load_merges (AtTokenizer *t, AtGguf *g, GError **error)
{
  const char *key = "tokenizer.ggml.merges";
  const AtGgufKv *kv = at_gguf_find_kv (g, key);
  guint64 n;

  if (kv == NULL)
    return t->kind == AT_TOKENIZER_SPM ? TRUE
                                       : bad_key (error, g, key, "missing (a gpt2 tokenizer needs merges)");
  if (at_gguf_kv_get_type (kv) != AT_GGUF_TYPE_ARRAY
      || at_gguf_kv_get_array_type (kv) != AT_GGUF_TYPE_STRING)
    return bad_key (error, g, key, "not an array of strings");
  n = at_gguf_kv_get_array_length (kv);
  if (n > G_MAXINT32 / 4)
    return bad_key (error, g, key, "too many merges");
  t->merge_mask = table_size_for (n) - 1;
  t->merge_keys = g_try_new0 (guint64, (gsize) t->merge_mask + 1);
  t->merge_ranks = g_try_new (gint32, (gsize) t->merge_mask + 1);
  if (t->merge_keys == NULL || t->merge_ranks == NULL)
    return bad_key (error, g, key, "out of memory for the merges");
  for (guint64 r = 0; r < n; r++)
    {
      const char *s, *sp;
      gsize len;
      gint32 left, right;
      guint64 k;
      guint32 i;

      if (!at_gguf_kv_array_get_string (kv, r, &s, &len))
        return bad_key (error, g, key, "unreadable element");
      sp = len > 1 ? memchr (s + 1, ' ', len - 1) : NULL;
      if (sp == NULL)
        {
          at_file_error (error, at_gguf_get_file_name (g),
                         "%s: merge %" G_GUINT64_FORMAT " has no space between its two parts", key, r);
          return FALSE;
        }
      left = token_find (t, s, (gsize) (sp - s));
      right = token_find (t, sp + 1, len - (gsize) (sp - s) - 1);
      if (left < 0 || right < 0)
        {
          at_file_error (error, at_gguf_get_file_name (g),
                         "%s: merge %" G_GUINT64_FORMAT " names a part that is not a token", key, r);
          return FALSE;
        }
      k = (((guint64) (guint32) left << 32) | (guint32) right) + 1;
      for (i = hash_pair (k) & t->merge_mask; t->merge_keys[i] != 0 && t->merge_keys[i] != k;
           i = (i + 1) & t->merge_mask)
        ;
      if (t->merge_keys[i] == 0)
        {
          t->merge_keys[i] = k;
          t->merge_ranks[i] = (gint32) r;
        }
    }
  return TRUE;
}

/* Pre-tokenizer regexes per `tokenizer.ggml.pre`, as in llama.cpp's llm_tokenizer_bpe. */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3_HEAD                                                                             \
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
#define RE_LLAMA3_TAIL " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

typedef struct
{
  const char *names; /* '|'-separated */
  const char *re[MAX_REGEX];
  gboolean ignore_merges;
  gboolean add_bos;
} PreType;

static const PreType pre_types[] = {
  { "default|", { "[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]" }, FALSE, FALSE },
  { "llama3|llama-v3|llama-bpe|falcon3|dbrx|smaug-bpe|", { RE_LLAMA3_HEAD "\\p{N}{1,3}|" RE_LLAMA3_TAIL },
    TRUE, TRUE },
  { "qwen2|deepseek-r1-qwen|megrez|", { RE_LLAMA3_HEAD "\\p{N}|" RE_LLAMA3_TAIL }, FALSE, FALSE },
  { "gpt-2|phi-2|jina-es|jina-de|jina-v1-en|jina-v2-es|jina-v2-de|jina-v2-code|roberta-bpe|gigachat|",
    { RE_GPT2 }, FALSE, FALSE },
  { "starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b|", { "\\p{N}", RE_GPT2 }, FALSE,
    FALSE },
};

static gboolean
load_pre (AtTokenizer *t, AtGguf *g, GError **error)
{
  const AtGgufKv *kv = at_gguf_find_kv (g, "tokenizer.ggml.pre");
  g_autofree char *needle = NULL;

  t->pre = kv != NULL ? at_gguf_kv_dup_string (kv) : g_strdup ("default");
  if (t->pre == NULL)
    return bad_key (error, g, "tokenizer.ggml.pre", "not a string");
  if (t->kind == AT_TOKENIZER_SPM)
    return TRUE;
  needle = g_strconcat (t->pre, "|", NULL);
  for (guint i = 0; i < G_N_ELEMENTS (pre_types); i++)
    {
      const PreType *p = &pre_types[i];
      const char *hit = strstr (p->names, needle);

      if (strchr (t->pre, '|') != NULL || hit == NULL || (hit != p->names && hit[-1] != '|'))
        continue;
      for (guint j = 0; j < MAX_REGEX && p->re[j] != NULL; j++)
        {
          g_autoptr (GError) local = NULL;

          t->regex[j] = g_regex_new (p->re[j], G_REGEX_OPTIMIZE, 0, &local);
          if (t->regex[j] == NULL)
            {
              g_set_error (error, AT_ERROR, AT_ERROR_FAILED, "pre-tokenizer regex: %s",
                           local->message);
              return FALSE;
            }
          t->n_regex = j + 1;
        }
      t->ignore_merges = p->ignore_merges;
      t->add_bos = p->add_bos;
      return TRUE;
    }
  {
    g_autofree char *shown = g_utf8_make_valid (t->pre, MIN ((gssize) strlen (t->pre), 64));

    at_file_error_code (error, AT_ERROR_UNSUPPORTED, at_gguf_get_file_name (g),
                        "tokenizer.ggml.pre: pre-tokenizer \"%s\" is not supported", shown);
  }
  return FALSE;
}

/* llama.cpp sets strip flags by model name, not from the file: only Phi-3's are done here. */
static void
set_rstrip (AtTokenizer *t, AtGguf *g)
{
  static const char *const keep[] = { "<unk>", "<s>", "<|endoftext|>", "</s>" };
  const AtGgufKv *kv = at_gguf_find_kv (g, "general.name");
  g_autofree char *name = kv != NULL ? at_gguf_kv_dup_string (kv) : NULL;
  g_autofree char *lower = name != NULL ? g_ascii_strdown (name, -1) : NULL;

  if (lower == NULL || (strstr (lower, "phi3") == NULL && strstr (lower, "phi-3") == NULL))
    return;
  t->rstrip = g_new0 (guint8, t->n_tokens);
  for (guint i = 0; i < t->n_special; i++)
    t->rstrip[t->special[i]] = 1;
  for (guint i = 0; i < G_N_ELEMENTS (keep); i++)
    {
      gint32 id = token_find (t, keep[i], strlen (keep[i]));

      if (id >= 0)
        t->rstrip[id] = i == 3;
    }
}

static int
cmp_special (gconstpointer a, gconstpointer b, gpointer user_data)
{
  AtTokenizer *t = user_data;
  gint32 x = *(const gint32 *) a, y = *(const gint32 *) b;

  if (t->len[x] != t->len[y])
    return t->len[x] > t->len[y] ? -1 : 1;
  return x < y ? -1 : x > y;
}

static void
build_caches (AtTokenizer *t)
{
  static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
    "_<EOT>", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "<|eom_id|>",
    "<|return|>", "<|call|>",
  };

  t->special = g_new (gint32, t->n_tokens);
  for (guint i = 0; i < t->n_tokens; i++)
    if ((t->types[i] == AT_TOKEN_TYPE_CONTROL || t->types[i] == AT_TOKEN_TYPE_USER_DEFINED
         || t->types[i] == AT_TOKEN_TYPE_UNKNOWN)
        && t->len[i] > 0)
      t->special[t->n_special++] = (gint32) i;
  g_qsort_with_data (t->special, (gint) t->n_special, sizeof (gint32), cmp_special, t);

  for (guint i = 0; i < G_N_ELEMENTS (eog_texts); i++)
    {
      gint32 id = token_find (t, eog_texts[i], strlen (eog_texts[i]));

      if (id >= 0 && (t->types[id] == AT_TOKEN_TYPE_CONTROL
                      || t->types[id] == AT_TOKEN_TYPE_USER_DEFINED))
        {
          t->eog[id] = 1;
          if (t->eot < 0 && i < 8)
            t->eot = id;
        }
    }
  if (t->eos >= 0)
    t->eog[t->eos] = 1;
  if (t->eot >= 0)
    t->eog[t->eot] = 1;
  if (t->eom >= 0)
    t->eog[t->eom] = 1;

  for (guint b = 0; b < 256; b++)
    {
      char hex[8];
      char one = (char) b;
      gint32 id;

      g_snprintf (hex, sizeof hex, "<0x%02X>", b);
      id = token_find (t, hex, strlen (hex));
      if (id < 0)
        id = token_find (t, &one, 1);
      t->byte_token[b] = id >= 0 ? id : t->unk;
    }
}

AtTokenizer *
at_tokenizer_new_from_gguf (AtGguf *g, GError **error)
{
  g_autoptr (AtTokenizer) t = g_new0 (AtTokenizer, 1);
  const AtGgufKv *model = at_gguf_find_kv (g, "tokenizer.ggml.model");
  const char *s;
  gsize n;

  t->bos = t->eos = t->eot = t->eom = t->unk = t->pad = -1;
  if (model == NULL)
    {
      bad_key (error, g, "tokenizer.ggml.model", "missing (no tokenizer in this GGUF)");
      return NULL;
    }
  if (!at_gguf_kv_get_string (model, &s, &n))
    {
      bad_key (error, g, "tokenizer.ggml.model", "not a string");
      return NULL;
    }
  if (n == 5 && memcmp (s, "llama", 5) == 0)
    t->kind = AT_TOKENIZER_SPM;
  else if (n == 4 && memcmp (s, "gpt2", 4) == 0)
    t->kind = AT_TOKENIZER_BPE;
  else
    {
      g_autofree char *name = g_utf8_make_valid (s, (gssize) MIN (n, 64));

      at_file_error_code (error, AT_ERROR_UNSUPPORTED, at_gguf_get_file_name (g),
                          "tokenizer.ggml.model: tokenizer model \"%s\" is not supported "
                          "(only \"llama\" and \"gpt2\")", name);
      return NULL;
    }
  if (!load_pre (t, g, error) || !load_tokens (t, g, error) || !load_scores_types (t, g, error)
      || !load_merges (t, g, error))
    return NULL;

  /* llama.cpp's defaults when the keys are absent: SPM has <unk>=0, <s>=1, </s>=2 and adds
   * BOS and the space prefix; BPE has 11 for both BOS and EOS (GPT-2's), adds no prefix. */
  if (t->kind == AT_TOKENIZER_SPM)
    {
      t->unk = 0;
      t->bos = t->n_tokens > 1 ? 1 : -1;
      t->eos = t->n_tokens > 2 ? 2 : -1;
      t->add_bos = TRUE;
      t->add_space_prefix = TRUE;
    }
  else
    t->bos = t->eos = t->n_tokens > 11 ? 11 : -1;
  if (!load_id (t, g, "tokenizer.ggml.bos_token_id", &t->bos, error)
      || !load_id (t, g, "tokenizer.ggml.eos_token_id", &t->eos, error)
      || !load_id (t, g, "tokenizer.ggml.unknown_token_id", &t->unk, error)
      || !load_id (t, g, "tokenizer.ggml.padding_token_id", &t->pad, error)
      || !load_id (t, g, "tokenizer.ggml.eot_token_id", &t->eot, error)
      || !load_id (t, g, "tokenizer.ggml.eom_token_id", &t->eom, error)
      || !load_flag (g, "tokenizer.ggml.add_bos_token", &t->add_bos, error)
      || !load_flag (g, "tokenizer.ggml.add_eos_token", &t->add_eos, error)
      || !load_flag (g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, error))
    return NULL;
  if (t->add_bos && t->bos < 0)
    t->add_bos = FALSE;
  if (t->add_eos && t->eos < 0)
    t->add_eos = FALSE;
  build_caches (t);
  set_rstrip (t, g);
  return g_steal_pointer (&t);
}

void
at_tokenizer_free (AtTokenizer *t)
{
  if (t == NULL)
    return;
  for (guint i = 0; i < t->n_regex; i++)
    g_regex_unref (t->regex[i]);
  g_free (t->pre);
  g_free (t->text);
  g_free (t->off);
  g_free (t->len);
  g_free (t->scores);
  g_free (t->types);
  g_free (t->eog);
  g_free (t->rstrip);
  g_free (t->lookup);
  g_free (t->merge_keys);
  g_free (t->merge_ranks);
  g_free (t->special);
  g_free (t);
}

AtTokenizerKind
at_tokenizer_get_kind (AtTokenizer *t)
{
  return t->kind;
}

const char *
at_tokenizer_get_pre (AtTokenizer *t)
{
  return t->pre;
}

guint
at_tokenizer_get_n_tokens (AtTokenizer *t)
{
  return t->n_tokens;
}

gint32
at_tokenizer_get_bos (AtTokenizer *t)
{
  return t->bos;
}

gint32
at_tokenizer_get_eos (AtTokenizer *t)
{
  return t->eos;
}

gint32
at_tokenizer_get_eot (AtTokenizer *t)
{
  return t->eot;
}

gint32
at_tokenizer_get_unk (AtTokenizer *t)
{
  return t->unk;
}

gint32
at_tokenizer_get_pad (AtTokenizer *t)
{
  return t->pad;
}

gboolean
at_tokenizer_get_add_bos (AtTokenizer *t)
{
  return t->add_bos;
}

gboolean
at_tokenizer_get_add_eos (AtTokenizer *t)
{
  return t->add_eos;
}


gboolean
at_tokenizer_is_eog (AtTokenizer *t, gint32 id)
{
  return id >= 0 && (guint) id < t->n_tokens && t->eog[id];
}

const char *
at_tokenizer_get_token_text (AtTokenizer *t, gint32 id, gsize *len)
{
  if (id < 0 || (guint) id >= t->n_tokens)
    return NULL;
  if (len != NULL)
    *len = t->len[id];
  return t->text + t->off[id];
}

AtTokenType
at_tokenizer_get_token_type (AtTokenizer *t, gint32 id)
{
  if (id < 0 || (guint) id >= t->n_tokens)
    return AT_TOKEN_TYPE_UNDEFINED;
  return (AtTokenType) t->types[id];
}

/* ---- The merge loop shared by both models ---- */

typedef struct
{
  guint32 start, n; /* bytes in the word buffer; n == 0 once absorbed */
  gint32 prev, next;
  gint32 id; /* BPE: the token of this text, -1 if none */
} Symbol;

typedef struct
{
  double key; /* smaller first: -score (SPM) or rank (BPE) */
  gint32 left, right;
  guint32 size;
} Pair;

typedef struct
{
  AtTokenizer *t;
  const char *buf;
  GArray *symbols; /* Symbol */
  GArray *heap;    /* Pair */
} Session;

static gboolean
pair_before (const Pair *a, const Pair *b)
{
  return a->key < b->key || (a->key == b->key && a->left < b->left);
}

static void
heap_push (GArray *heap, const Pair *p)
{
  Pair *h;
  guint i;

  g_array_append_val (heap, *p);
  h = (Pair *) heap->data;
  for (i = heap->len - 1; i > 0 && pair_before (&h[i], &h[(i - 1) / 2]); i = (i - 1) / 2)
    {
      Pair tmp = h[i];

      h[i] = h[(i - 1) / 2];
      h[(i - 1) / 2] = tmp;
    }
}

static Pair
heap_pop (GArray *heap)
{
  Pair *h = (Pair *) heap->data;
  Pair top = h[0];
  guint i = 0, n = heap->len - 1;

  h[0] = h[n];
  g_array_set_size (heap, n);
  for (;;)
    {
      guint l = 2 * i + 1, r = l + 1, m = i;
      Pair tmp;

      if (l < n && pair_before (&h[l], &h[m]))
        m = l;
      if (r < n && pair_before (&h[r], &h[m]))
        m = r;
      if (m == i)
        break;
      tmp = h[i];
      h[i] = h[m];
      h[m] = tmp;
      i = m;
    }
  return top;
}

static void
session_try_pair (Session *s, gint32 left, gint32 right)
{
  Symbol *sym = (Symbol *) s->symbols->data;
  Pair p;

  if (left < 0 || right < 0)
    return;
  p.left = left;
  p.right = right;
  p.size = sym[left].n + sym[right].n;
  if (s->t->kind == AT_TOKENIZER_SPM)
    {
      gint32 id = token_find (s->t, s->buf + sym[left].start, p.size);

      if (id < 0)
        return;
      p.key = -(double) s->t->scores[id];
    }
  else
    {
      gint32 rank;

      if (sym[left].id < 0 || sym[right].id < 0)
        return;
      rank = merge_rank (s->t, sym[left].id, sym[right].id);
      if (rank < 0)
        return;
      p.key = rank;
    }
  heap_push (s->heap, &p);
}

/* Splits `buf` into UTF-8 characters and merges until no pair is left. */
static void
session_merge (Session *s, const char *buf, guint32 n)
{
  Symbol *sym;

  s->buf = buf;
  g_array_set_size (s->symbols, 0);
  g_array_set_size (s->heap, 0);
  for (guint32 off = 0; off < n;)
    {
      Symbol c;
      guint32 clen = (guint32) g_utf8_skip[(guint8) buf[off]];

      c.start = off;
      c.n = MIN (clen, n - off);
      c.prev = (gint32) s->symbols->len - 1;
      off += c.n;
      c.next = off == n ? -1 : (gint32) s->symbols->len + 1;
      c.id = token_find (s->t, buf + c.start, c.n);
      g_array_append_val (s->symbols, c);
    }
  for (guint i = 1; i < s->symbols->len; i++)
    session_try_pair (s, (gint32) i - 1, (gint32) i);
  while (s->heap->len > 0)
    {
      Pair p = heap_pop (s->heap);
      Symbol *l, *r;

      sym = (Symbol *) s->symbols->data;
      l = &sym[p.left];
      r = &sym[p.right];
      if (l->n == 0 || r->n == 0 || l->n + r->n != p.size)
        continue;
      l->n += r->n;
      r->n = 0;
      l->next = r->next;
      if (r->next >= 0)
        sym[r->next].prev = p.left;
      l->id = token_find (s->t, buf + l->start, l->n);
      session_try_pair (s, l->prev, p.left);
      session_try_pair (s, p.left, l->next);
    }
}

static void
spm_encode (AtTokenizer *t, Session *s, const char *text, gsize len, gboolean prefix, GArray *out)
{
  g_autoptr (GString) buf = g_string_sized_new (len * 3 + 3);
  Symbol *sym;

  if (prefix)
    g_string_append (buf, "\xe2\x96\x81");
  for (gsize i = 0; i < len; i++)
    if (text[i] == ' ')
      g_string_append (buf, "\xe2\x96\x81");
    else
      g_string_append_c (buf, text[i]);
  session_merge (s, buf->str, (guint32) buf->len);
  sym = (Symbol *) s->symbols->data;
  for (gint32 i = s->symbols->len > 0 ? 0 : -1; i >= 0; i = sym[i].next)
    {
      if (sym[i].id >= 0)
        g_array_append_val (out, sym[i].id);
      else
        for (guint32 k = 0; k < sym[i].n; k++)
          {
            gint32 id = t->byte_token[(guint8) buf->str[sym[i].start + k]];

            if (id >= 0)
              g_array_append_val (out, id);
          }
    }
}

static void
bpe_encode_word (AtTokenizer *t, Session *s, const char *word, gsize len, GArray *out)
{
  g_autoptr (GString) buf = g_string_sized_new (len * 2 + 1);
  Symbol *sym;
  gint32 whole;

  for (gsize i = 0; i < len; i++)
    g_string_append_unichar (buf, byte_to_cp ((guint8) word[i]));
  whole = t->ignore_merges ? token_find (t, buf->str, buf->len) : -1;
  if (whole >= 0)
    {
      g_array_append_val (out, whole);
      return;
    }
  session_merge (s, buf->str, (guint32) buf->len);
  sym = (Symbol *) s->symbols->data;
  for (gint32 i = s->symbols->len > 0 ? 0 : -1; i >= 0; i = sym[i].next)
    {
      if (sym[i].id >= 0)
        g_array_append_val (out, sym[i].id);
      else
        /* As llama.cpp: each byte of the mapped text that is a token by itself. */
        for (guint32 k = 0; k < sym[i].n; k++)
          {
            gint32 id = token_find (t, buf->str + sym[i].start + k, 1);

            if (id >= 0)
              g_array_append_val (out, id);
          }
    }
}

typedef struct
{
  gsize start, len;
} Span;

/* Splits each span by the regex: the matches and the text between them. */
static GArray *
split_spans (GRegex *re, const char *text, GArray *in)
{
  GArray *out = g_array_new (FALSE, FALSE, sizeof (Span));

  for (guint i = 0; i < in->len; i++)
    {
      Span w = g_array_index (in, Span, i);
      g_autoptr (GMatchInfo) info = NULL;
      gsize pos = 0;

      g_regex_match_full (re, text + w.start, (gssize) w.len, 0, 0, &info, NULL);
      while (g_match_info_matches (info))
        {
          gint ms, me;

          g_match_info_fetch_pos (info, 0, &ms, &me);
          if (me > ms)
            {
              if ((gsize) ms > pos)
                g_array_append_val (out, ((Span) { w.start + pos, (gsize) ms - pos }));
              g_array_append_val (out, ((Span) { w.start + (gsize) ms, (gsize) (me - ms) }));
              pos = (gsize) me;
            }
          g_match_info_next (info, NULL);
        }
      if (pos < w.len)
        g_array_append_val (out, ((Span) { w.start + pos, w.len - pos }));
    }
  return out;
}

static void
bpe_encode (AtTokenizer *t, Session *s, const char *text, gsize len, GArray *out)
{
  g_autoptr (GArray) words = g_array_new (FALSE, FALSE, sizeof (Span));

  g_array_append_val (words, ((Span) { 0, len }));
  for (guint r = 0; r < t->n_regex; r++)
    {
      GArray *next = split_spans (t->regex[r], text, words);

      g_array_unref (words);
      words = next;
    }
  for (guint i = 0; i < words->len; i++)
    {
      Span w = g_array_index (words, Span, i);

      bpe_encode_word (t, s, text + w.start, w.len, out);
    }
}

/* A fragment: raw text (`id` -1) or one special token. */
typedef struct
{
  gsize start, len;
  gint32 id;
} Fragment;

/* Splits the raw fragments at every occurrence of every special token, longest token first,
 * as llama.cpp's tokenizer_st_partition does. */
static const char *
find_bytes (const char *hay, gsize n, const char *needle, gsize m)
{
  for (gsize i = 0; i + m <= n; i++)
    {
      const char *c = memchr (hay + i, needle[0], n - m - i + 1);

      if (c == NULL)
        return NULL;
      i = (gsize) (c - hay);
      if (memcmp (c, needle, m) == 0)
        return c;
    }
  return NULL;
}

static GArray *
partition_special (AtTokenizer *t, const char *text, gsize len, gboolean parse_special)
{
  GArray *frags = g_array_new (FALSE, FALSE, sizeof (Fragment));

  if (len > 0)
    g_array_append_val (frags, ((Fragment) { 0, len, -1 }));
  for (guint k = 0; k < t->n_special; k++)
    {
      gint32 id = t->special[k];
      const char *tok = t->text + t->off[id];
      gsize tlen = t->len[id];
      GArray *next;

      if (!parse_special && t->types[id] != AT_TOKEN_TYPE_USER_DEFINED)
        continue;
      next = g_array_new (FALSE, FALSE, sizeof (Fragment));
      for (guint i = 0; i < frags->len; i++)
        {
          Fragment f = g_array_index (frags, Fragment, i);
          gsize pos = f.start, end = f.start + f.len;

          if (f.id >= 0 || f.len < tlen)
            {
              g_array_append_val (next, f);
              continue;
            }
          while (pos < end)
            {
              const char *hit = find_bytes (text + pos, end - pos, tok, tlen);
              gsize at = hit != NULL ? (gsize) (hit - text) : end;

              if (at > pos)
                g_array_append_val (next, ((Fragment) { pos, at - pos, -1 }));
              if (hit == NULL)
                break;
              g_array_append_val (next, ((Fragment) { at, tlen, id }));
              pos = at + tlen;
              if (t->rstrip != NULL && t->rstrip[id])
                while (pos < end && g_ascii_isspace (text[pos]))
                  pos++;
            }
        }
      g_array_unref (frags);
      frags = next;
    }
  return frags;
}

gboolean
at_tokenizer_encode (AtTokenizer *t, const char *text, gssize len, gboolean add_special,
                     gboolean parse_special, GArray *out_ids, GError **error)
{
  gsize n = len < 0 ? strlen (text) : (gsize) len;
  const char *bad;
  g_autoptr (GArray) frags = NULL;
  Session s = { t, NULL, NULL, NULL };
  gboolean prev_special = TRUE;

  g_return_val_if_fail (text != NULL || n == 0, FALSE);
  if (n > G_MAXUINT32 / 4)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "text of %" G_GSIZE_FORMAT " bytes is too long to tokenize", n);
      return FALSE;
    }
  if (n > 0 && !g_utf8_validate_len (text, n, &bad))
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID,
                   "text is not valid UTF-8 (bad byte 0x%02x at offset %" G_GSIZE_FORMAT ")",
                   (guint8) *bad, (gsize) (bad - text));
      return FALSE;
    }
  if (add_special && t->add_bos)
    g_array_append_val (out_ids, t->bos);
  frags = partition_special (t, text, n, parse_special);
  s.symbols = g_array_new (FALSE, FALSE, sizeof (Symbol));
  s.heap = g_array_new (FALSE, FALSE, sizeof (Pair));
  for (guint i = 0; i < frags->len; i++)
    {
      Fragment f = g_array_index (frags, Fragment, i);

      if (f.id >= 0)
        g_array_append_val (out_ids, f.id);
      else if (t->kind == AT_TOKENIZER_SPM)
        spm_encode (t, &s, text + f.start, f.len, t->add_space_prefix && prev_special, out_ids);
      else
        bpe_encode (t, &s, text + f.start, f.len, out_ids);
      prev_special = f.id >= 0;
    }
  g_array_unref (s.symbols);
  g_array_unref (s.heap);
  if (add_special && t->add_eos)
    g_array_append_val (out_ids, t->eos);
  return TRUE;
}

/* ---- Decoding ---- */

static gboolean
is_special_type (guint8 type)
{
  return type == AT_TOKEN_TYPE_CONTROL || type == AT_TOKEN_TYPE_UNKNOWN;
}

gboolean
at_tokenizer_decode_token (AtTokenizer *t, gint32 id, gboolean skip_special, GString *out)
{
  const char *s;
  gsize n;
  guint8 type;

  if (id < 0 || (guint) id >= t->n_tokens)
    return FALSE;
  s = t->text + t->off[id];
  n = t->len[id];
  type = t->types[id];
  if (is_special_type (type))
    {
      if (!skip_special)
        g_string_append_len (out, s, (gssize) n);
      return TRUE;
    }
  if (type == AT_TOKEN_TYPE_USER_DEFINED)
    g_string_append_len (out, s, (gssize) n);
  else if (t->kind == AT_TOKENIZER_SPM)
    {
      guint b;

      if (type == AT_TOKEN_TYPE_BYTE && n == 6 && sscanf (s, "<0x%2X>", &b) == 1)
        g_string_append_c (out, (char) b);
      else
        for (gsize i = 0; i < n; i++)
          {
            if (i + 3 <= n && memcmp (s + i, "\xe2\x96\x81", 3) == 0)
              {
                g_string_append_c (out, ' ');
                i += 2;
              }
            else
              g_string_append_c (out, s[i]);
          }
    }
  else
    {
      /* Characters outside the byte alphabet (a hostile vocabulary) are copied as they are. */
      for (const char *p = s, *e = s + n; p < e;)
        {
          gunichar c = g_utf8_get_char_validated (p, e - p);
          int b = (c == (gunichar) -1 || c == (gunichar) -2) ? -1 : cp_to_byte (c);
          gsize step = (c == (gunichar) -1 || c == (gunichar) -2) ? 1 : (gsize) g_utf8_skip[(guint8) *p];

          if (b >= 0)
            g_string_append_c (out, (char) b);
          else
            g_string_append_len (out, p, (gssize) step);
          p += step;
        }
    }
  return TRUE;
}

struct _AtDetokenizer
{
  AtTokenizer *t;
  gboolean skip_special;
  gboolean at_start;
  GString *pending; /* bytes not yet handed out */
};

AtDetokenizer *
at_detokenizer_new (AtTokenizer *t, gboolean skip_special)
{
  AtDetokenizer *d = g_new0 (AtDetokenizer, 1);

  d->t = t;
  d->skip_special = skip_special;
  d->at_start = TRUE;
  d->pending = g_string_new (NULL);
  return d;
}

void
at_detokenizer_free (AtDetokenizer *d)
{
  if (d == NULL)
    return;
  g_string_free (d->pending, TRUE);
  g_free (d);
}

/* Length of the UTF-8 character at `p` (with `n` bytes left): > 0 when complete and valid,
 * 0 when valid so far but cut short, -1 when invalid (including NUL and surrogates). */
static int
utf8_char_len (const guint8 *p, gsize n)
{
  int need;
  guint8 lo = 0x80, hi = 0xbf;

  if (p[0] >= 0x01 && p[0] < 0x80)
    return 1;
  if (p[0] >= 0xc2 && p[0] <= 0xdf)
    need = 2;
  else if (p[0] >= 0xe0 && p[0] <= 0xef)
    {
      need = 3;
      lo = p[0] == 0xe0 ? 0xa0 : 0x80;
      hi = p[0] == 0xed ? 0x9f : 0xbf;
    }
  else if (p[0] >= 0xf0 && p[0] <= 0xf4)
    {
      need = 4;
      lo = p[0] == 0xf0 ? 0x90 : 0x80;
      hi = p[0] == 0xf4 ? 0x8f : 0xbf;
    }
  else
    return -1;
  for (int i = 1; i < need; i++)
    {
      if ((gsize) i >= n)
        return 0;
      if (p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xbf))
        return -1;
    }
  return need;
}

/* Hands out the valid prefix of the pending bytes; with `all`, a cut-short tail too. */
static char *
detok_take (AtDetokenizer *d, gboolean all)
{
  GString *out = g_string_sized_new (d->pending->len + 4);
  const guint8 *p = (const guint8 *) d->pending->str;
  gsize n = d->pending->len, i = 0;

  while (i < n)
    {
      int c = utf8_char_len (p + i, n - i);

      if (c > 0)
        {
          g_string_append_len (out, (const char *) p + i, c);
          i += (gsize) c;
        }
      else if (c == 0 && !all)
        break;
      else
        {
          g_string_append (out, "\xef\xbf\xbd");
          i += c == 0 ? n - i : 1;
        }
    }
  g_string_erase (d->pending, 0, (gssize) i);
  return g_string_free (out, FALSE);
}

char *
at_detokenizer_feed (AtDetokenizer *d, gint32 id)
{
  AtTokenizer *t = d->t;
  gsize before = d->pending->len;

  if (!at_tokenizer_decode_token (t, id, d->skip_special, d->pending))
    g_string_append (d->pending, "\xef\xbf\xbd");
  else if (d->at_start && !is_special_type (t->types[id]))
    {
      if (t->kind == AT_TOKENIZER_SPM && t->add_space_prefix && d->pending->len > before
          && d->pending->str[before] == ' ')
        g_string_erase (d->pending, (gssize) before, 1);
      d->at_start = FALSE;
    }
  return detok_take (d, FALSE);
}

char *
at_detokenizer_flush (AtDetokenizer *d)
{
  d->at_start = TRUE;
  return detok_take (d, TRUE);
}

char *
at_tokenizer_decode (AtTokenizer *t, const gint32 *ids, gsize n, gboolean skip_special)
{
  g_autoptr (AtDetokenizer) d = at_detokenizer_new (t, skip_special);
  GString *out = g_string_new (NULL);
  g_autofree char *rest = NULL;

  for (gsize i = 0; i < n; i++)
    {
      g_autofree char *piece = at_detokenizer_feed (d, ids[i]);

      g_string_append (out, piece);
    }
  rest = at_detokenizer_flush (d);
  g_string_append (out, rest);
  return g_string_free (out, FALSE);
}
