/* atelier-diff.c: a word diff by longest common subsequence over word tokens (atelier-diff.h).
 *
 * The common prefix and suffix are trimmed first (a proposal usually changes a few words of a
 * long text), then an O(n·m) table over the middle finds the LCS; beyond the cap the middle is
 * shown as replaced whole. Tokens are interned to integers so the table compares ints, not
 * strings. */
#include "atelier-diff.h"

#include <string.h>

/* Word pairs the exact diff may cost: 4 Mi cells of 4 bytes, 16 MiB, about 20 ms. */
#define MAX_PAIRS (4u * 1024u * 1024u)

typedef struct
{
  const char *start;
  gsize len;
  guint id; /* equal ids, equal bytes */
} Token;

typedef enum
{
  CLASS_WORD,
  CLASS_SPACE,
  CLASS_OTHER,
} CharClass;

static CharClass
char_class (gunichar c)
{
  if (g_unichar_isalnum (c))
    return CLASS_WORD;
  if (g_unichar_isspace (c))
    return CLASS_SPACE;
  return CLASS_OTHER;
}

/* The length in bytes of the character at `p` and its class. Invalid UTF-8 (the text may
 * come from anywhere) counts as one byte of punctuation, so every byte still lands in a
 * token and joining the runs gives the input back. */
static gsize
next_char (const char *p, const char *end, CharClass *cls)
{
  gunichar c = g_utf8_get_char_validated (p, end - p);

  if (c == (gunichar) -1 || c == (gunichar) -2)
    {
      *cls = CLASS_OTHER;
      return 1;
    }
  *cls = char_class (c);
  return g_utf8_next_char (p) - p;
}

static GArray *
tokenize (const char *text, GHashTable *ids)
{
  GArray *tokens = g_array_new (FALSE, FALSE, sizeof (Token));
  const char *p = text != NULL ? text : "";
  const char *end = p + strlen (p);

  while (p < end)
    {
      CharClass cls, next_cls;
      gsize n = next_char (p, end, &cls);
      Token t = { p, n, 0 };
      g_autofree char *key = NULL;
      gpointer id;

      if (cls != CLASS_OTHER)
        while (p + t.len < end)
          {
            gsize m = next_char (p + t.len, end, &next_cls);

            if (next_cls != cls)
              break;
            t.len += m;
          }
      key = g_strndup (p, t.len);
      id = g_hash_table_lookup (ids, key);
      if (id == NULL)
        {
          id = GUINT_TO_POINTER (g_hash_table_size (ids) + 1);
          g_hash_table_insert (ids, g_steal_pointer (&key), id);
        }
      t.id = GPOINTER_TO_UINT (id);
      g_array_append_val (tokens, t);
      p += t.len;
    }
  return tokens;
}

static void
run_free (gpointer data)
{
  AtelierDiffRun *run = data;

  g_free (run->text);
  g_free (run);
}

/* Collects per-token ops into merged runs: within a change (the tokens between two kept ones)
 * all deleted text comes first, then all inserted text, whatever order the walk found them. */
typedef struct
{
  GPtrArray *runs;
  GString *keep, *del, *ins;
} Builder;

static void
emit (GPtrArray *runs, AtelierDiffOp op, GString *text)
{
  AtelierDiffRun *run;

  if (text->len == 0)
    return;
  run = g_new0 (AtelierDiffRun, 1);
  run->op = op;
  run->text = g_strndup (text->str, text->len);
  g_ptr_array_add (runs, run);
  g_string_truncate (text, 0);
}

static void
flush_change (Builder *b)
{
  emit (b->runs, ATELIER_DIFF_DELETE, b->del);
  emit (b->runs, ATELIER_DIFF_INSERT, b->ins);
}

static void
add_token (Builder *b, AtelierDiffOp op, const Token *t)
{
  switch (op)
    {
    case ATELIER_DIFF_KEEP:
      flush_change (b);
      g_string_append_len (b->keep, t->start, t->len);
      break;
    case ATELIER_DIFF_DELETE:
      emit (b->runs, ATELIER_DIFF_KEEP, b->keep);
      g_string_append_len (b->del, t->start, t->len);
      break;
    case ATELIER_DIFF_INSERT:
    default:
      emit (b->runs, ATELIER_DIFF_KEEP, b->keep);
      g_string_append_len (b->ins, t->start, t->len);
      break;
    }
}

static void
add_range (Builder *b, AtelierDiffOp op, GArray *tokens, guint from, guint to)
{
  for (guint i = from; i < to; i++)
    add_token (b, op, &g_array_index (tokens, Token, i));
}

/* a[a0..a1) against b[b0..b1), neither sharing a first or last token. */
static void
diff_middle (Builder *bld, GArray *a, guint a0, guint a1, GArray *b, guint b0, guint b1)
{
  guint n = a1 - a0, m = b1 - b0, w = m + 1, i = 0, j = 0;
  g_autofree guint32 *lcs = NULL;

  if (n == 0 || m == 0 || (guint64) n * m > MAX_PAIRS)
    {
      add_range (bld, ATELIER_DIFF_DELETE, a, a0, a1);
      add_range (bld, ATELIER_DIFF_INSERT, b, b0, b1);
      return;
    }
  /* lcs[i * w + j]: the LCS length of a's tokens from i and b's from j (suffixes), so the walk
   * below can go forwards. */
  lcs = g_new0 (guint32, (gsize) (n + 1) * w);
  for (guint ii = n; ii-- > 0;)
    for (guint jj = m; jj-- > 0;)
      {
        guint32 *cell = &lcs[(gsize) ii * w + jj];

        if (g_array_index (a, Token, a0 + ii).id == g_array_index (b, Token, b0 + jj).id)
          *cell = cell[w + 1] + 1;
        else
          *cell = MAX (cell[w], cell[1]);
      }
  while (i < n && j < m)
    {
      const Token *ta = &g_array_index (a, Token, a0 + i);
      const Token *tb = &g_array_index (b, Token, b0 + j);

      /* Matching equal heads never shortens the LCS. */
      if (ta->id == tb->id)
        {
          add_token (bld, ATELIER_DIFF_KEEP, ta);
          i++;
          j++;
        }
      else if (lcs[(gsize) (i + 1) * w + j] >= lcs[(gsize) i * w + j + 1])
        {
          add_token (bld, ATELIER_DIFF_DELETE, ta);
          i++;
        }
      else
        {
          add_token (bld, ATELIER_DIFF_INSERT, tb);
          j++;
        }
    }
  add_range (bld, ATELIER_DIFF_DELETE, a, a0 + i, a1);
  add_range (bld, ATELIER_DIFF_INSERT, b, b0 + j, b1);
}

GPtrArray *
atelier_diff_words (const char *original, const char *proposal)
{
  g_autoptr (GHashTable) ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GArray) a = tokenize (original, ids);
  g_autoptr (GArray) b = tokenize (proposal, ids);
  g_autoptr (GString) keep = g_string_new (NULL);
  g_autoptr (GString) del = g_string_new (NULL);
  g_autoptr (GString) ins = g_string_new (NULL);
  Builder bld = { g_ptr_array_new_with_free_func (run_free), keep, del, ins };
  guint pre = 0, suf = 0;

  while (pre < a->len && pre < b->len && g_array_index (a, Token, pre).id == g_array_index (b, Token, pre).id)
    pre++;
  while (suf < a->len - pre && suf < b->len - pre
         && g_array_index (a, Token, a->len - 1 - suf).id == g_array_index (b, Token, b->len - 1 - suf).id)
    suf++;
  add_range (&bld, ATELIER_DIFF_KEEP, a, 0, pre);
  diff_middle (&bld, a, pre, a->len - suf, b, pre, b->len - suf);
  add_range (&bld, ATELIER_DIFF_KEEP, a, a->len - suf, a->len);
  flush_change (&bld);
  emit (bld.runs, ATELIER_DIFF_KEEP, keep);
  return bld.runs;
}
