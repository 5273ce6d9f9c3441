/* test-diff.c: the word diff (app/atelier-diff.c). A property test on random texts from a small
 * vocabulary (so they overlap), edited at random: the kept and deleted runs give back the
 * original, the kept and inserted the proposal, runs are merged and a deletion comes before
 * its insertion; on small inputs the kept words are as many as a plain O(n·m) LCS written here
 * finds. Then the edge cases (empty, identical, non-ASCII, a changed comma) and the cap's
 * fallback on a big input. The seed is printed; ATELIER_DIFF_SEED replays one. */
#include <string.h>

#include "atelier-diff.h"

static const char *const vocabulary[] = {
  "the", "cat", "sat", "on", "mat", "dog", "café", "漢字", "naïve", "42", "🙂", ",", ".", ";", " ", "  ", "\n",
};

/* A separate tokenizer from the one under test: splits where the character class changes, and
 * after every character that is neither a letter/digit nor a space. */
static int
ref_class (gunichar c)
{
  return g_unichar_isalnum (c) ? 0 : g_unichar_isspace (c) ? 1 : 2;
}

static GPtrArray *
ref_tokens (const char *text)
{
  GPtrArray *tokens = g_ptr_array_new_with_free_func (g_free);
  const char *start = text;

  for (const char *p = text; *p != '\0';)
    {
      const char *next = g_utf8_next_char (p);
      int cls = ref_class (g_utf8_get_char (p));

      if (cls == 2 || *next == '\0' || ref_class (g_utf8_get_char (next)) != cls)
        {
          g_ptr_array_add (tokens, g_strndup (start, next - start));
          start = next;
        }
      p = next;
    }
  return tokens;
}

static guint
ref_lcs (GPtrArray *a, GPtrArray *b)
{
  guint w = b->len + 1, result;
  guint *t = g_new0 (guint, (a->len + 1) * w);

  for (guint i = 1; i <= a->len; i++)
    for (guint j = 1; j <= b->len; j++)
      if (strcmp (a->pdata[i - 1], b->pdata[j - 1]) == 0)
        t[i * w + j] = t[(i - 1) * w + j - 1] + 1;
      else
        t[i * w + j] = MAX (t[(i - 1) * w + j], t[i * w + j - 1]);
  result = t[a->len * w + b->len];
  g_free (t);
  return result;
}

/* Checks the runs' invariants against both texts; returns how many tokens were kept. */
static guint
check_runs (GPtrArray *runs, const char *original, const char *proposal)
{
  g_autoptr (GString) old_text = g_string_new (NULL);
  g_autoptr (GString) new_text = g_string_new (NULL);
  guint kept = 0;

  for (guint i = 0; i < runs->len; i++)
    {
      AtelierDiffRun *run = g_ptr_array_index (runs, i);

      g_assert_nonnull (run->text);
      g_assert_cmpuint (strlen (run->text), >, 0);
      g_assert_true (g_utf8_validate (run->text, -1, NULL));
      if (i > 0)
        {
          AtelierDiffRun *prev = g_ptr_array_index (runs, i - 1);

          g_assert_cmpint (prev->op, !=, run->op);
          g_assert_false (prev->op == ATELIER_DIFF_INSERT && run->op == ATELIER_DIFF_DELETE);
        }
      if (run->op != ATELIER_DIFF_INSERT)
        g_string_append (old_text, run->text);
      if (run->op != ATELIER_DIFF_DELETE)
        g_string_append (new_text, run->text);
      if (run->op == ATELIER_DIFF_KEEP)
        {
          g_autoptr (GPtrArray) t = ref_tokens (run->text);

          kept += t->len;
        }
    }
  g_assert_cmpstr (old_text->str, ==, original);
  g_assert_cmpstr (new_text->str, ==, proposal);
  return kept;
}

static char *
random_text (GRand *rand, guint n_words)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < n_words; i++)
    g_string_append (s, vocabulary[g_rand_int_range (rand, 0, G_N_ELEMENTS (vocabulary))]);
  return g_string_free (s, FALSE);
}

/* Random edits of `text` at token boundaries: a token dropped, a word put in, one replaced. */
static char *
random_edit (GRand *rand, const char *text)
{
  g_autoptr (GPtrArray) tokens = ref_tokens (text);
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < tokens->len; i++)
    {
      int roll = g_rand_int_range (rand, 0, 10);

      if (roll == 0)
        continue;
      if (roll == 1)
        g_string_append (s, vocabulary[g_rand_int_range (rand, 0, G_N_ELEMENTS (vocabulary))]);
      if (roll == 2)
        {
          g_string_append (s, vocabulary[g_rand_int_range (rand, 0, G_N_ELEMENTS (vocabulary))]);
          continue;
        }
      g_string_append (s, tokens->pdata[i]);
    }
  if (g_rand_int_range (rand, 0, 4) == 0)
    g_string_append (s, vocabulary[g_rand_int_range (rand, 0, G_N_ELEMENTS (vocabulary))]);
  return g_string_free (s, FALSE);
}

static void
test_random (void)
{
  const char *env = g_getenv ("ATELIER_DIFF_SEED");
  guint32 seed = env != NULL ? (guint32) g_ascii_strtoull (env, NULL, 10) : 20261123;
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);

  g_test_message ("seed %u (replay with ATELIER_DIFF_SEED=%u)", seed, seed);
  for (guint iter = 0; iter < 2000; iter++)
    {
      g_autofree char *original = random_text (rand, g_rand_int_range (rand, 0, 40));
      g_autofree char *proposal = g_rand_int_range (rand, 0, 5) == 0
                                    ? random_text (rand, g_rand_int_range (rand, 0, 40))
                                    : random_edit (rand, original);
      g_autoptr (GPtrArray) runs = atelier_diff_words (original, proposal);
      g_autoptr (GPtrArray) a = ref_tokens (original);
      g_autoptr (GPtrArray) b = ref_tokens (proposal);
      guint kept = check_runs (runs, original, proposal);

      if (kept != ref_lcs (a, b))
        g_error ("seed %u, iteration %u: kept %u tokens, LCS is %u\noriginal: \"%s\"\nproposal: \"%s\"", seed, iter,
                 kept, ref_lcs (a, b), original, proposal);
    }
}

static void
expect (const char *original, const char *proposal, const char *const *want)
{
  g_autoptr (GPtrArray) runs = atelier_diff_words (original, proposal);
  guint n = g_strv_length ((char **) want) / 2;

  /* NULL reads as "". */
  check_runs (runs, original != NULL ? original : "", proposal != NULL ? proposal : "");
  g_assert_cmpuint (runs->len, ==, n);
  for (guint i = 0; i < n; i++)
    {
      AtelierDiffRun *run = g_ptr_array_index (runs, i);
      const char *op = run->op == ATELIER_DIFF_KEEP ? "=" : run->op == ATELIER_DIFF_DELETE ? "-" : "+";

      g_assert_cmpstr (op, ==, want[2 * i]);
      g_assert_cmpstr (run->text, ==, want[2 * i + 1]);
    }
}

static void
test_edges (void)
{
  const char *none[] = { NULL };
  const char *insert[] = { "+", "Hello world", NULL };
  const char *delete[] = { "-", "Hello world", NULL };
  const char *same[] = { "=", "Same text, é 漢字 🙂.", NULL };
  const char *comma[] = { "=", "Hello", "-", ",", "+", ";", "=", " world", NULL };
  const char *accent[] = { "-", "cafe", "+", "café", "=", " 漢字 ", "-", "🙂", "+", "😀", "=", " done", NULL };
  const char *replace[] = { "=", "The ", "-", "cat", "+", "dog", "=", " sat on the mat", NULL };
  const char *space[] = { "=", "one", "-", " ", "+", "  ", "=", "two", NULL };

  expect ("", "", none);
  expect (NULL, NULL, none);
  expect ("", "Hello world", insert);
  expect ("Hello world", "", delete);
  expect ("Same text, é 漢字 🙂.", "Same text, é 漢字 🙂.", same);
  expect ("Hello, world", "Hello; world", comma);
  expect ("cafe 漢字 🙂 done", "café 漢字 😀 done", accent);
  /* Han and kana are letters: "漢字仮名" is one word. */
  expect ("漢字 仮名 x", "漢字 かな x", (const char *[]) { "=", "漢字 ", "-", "仮名", "+", "かな", "=", " x", NULL });
  expect ("漢字仮名 x", "漢字かな x", (const char *[]) { "-", "漢字仮名", "+", "漢字かな", "=", " x", NULL });
  expect ("The cat sat on the mat", "The dog sat on the mat", replace);
  expect ("one two", "one  two", space);
}

/* Beyond the cap the middle is replaced whole; the shared ends are still kept. */
static void
test_cap (void)
{
  g_autoptr (GString) a = g_string_new ("Start here. ");
  g_autoptr (GString) b = g_string_new ("Start here. ");
  g_autoptr (GPtrArray) runs = NULL;
  gint64 t0;

  for (guint i = 0; i < 3000; i++)
    {
      g_string_append_printf (a, "a%u ", i);
      g_string_append_printf (b, "b%u ", i);
    }
  /* One shared word in the middle: an exact diff would keep it. */
  g_string_append (a, "shared ");
  g_string_insert (b, 12, "shared ");
  g_string_append (a, "The end.");
  g_string_append (b, "The end.");
  t0 = g_get_monotonic_time ();
  runs = atelier_diff_words (a->str, b->str);
  g_test_message ("%u x %u tokens: %.1f ms", 6000u, 6000u, (g_get_monotonic_time () - t0) / 1000.0);
  check_runs (runs, a->str, b->str);
  g_assert_cmpuint (runs->len, ==, 4);
  g_assert_cmpint (((AtelierDiffRun *) runs->pdata[0])->op, ==, ATELIER_DIFF_KEEP);
  g_assert_cmpstr (((AtelierDiffRun *) runs->pdata[0])->text, ==, "Start here. ");
  g_assert_cmpint (((AtelierDiffRun *) runs->pdata[1])->op, ==, ATELIER_DIFF_DELETE);
  g_assert_cmpint (((AtelierDiffRun *) runs->pdata[2])->op, ==, ATELIER_DIFF_INSERT);
  g_assert_cmpint (((AtelierDiffRun *) runs->pdata[3])->op, ==, ATELIER_DIFF_KEEP);
  g_assert_cmpstr (((AtelierDiffRun *) runs->pdata[3])->text, ==, " The end.");
}

/* Just under the cap the diff is exact: one word changed in 1000 keeps the rest. */
static void
test_under_cap (void)
{
  g_autoptr (GString) a = g_string_new (NULL);
  g_autoptr (GString) b = g_string_new (NULL);
  g_autoptr (GPtrArray) runs = NULL;
  g_autoptr (GPtrArray) ta = NULL;
  g_autoptr (GPtrArray) tb = NULL;

  for (guint i = 0; i < 1000; i++)
    {
      g_string_append_printf (a, "w%u ", i % 7);
      g_string_append_printf (b, "w%u ", i % 7 == 3 ? 8 : i % 7);
    }
  runs = atelier_diff_words (a->str, b->str);
  ta = ref_tokens (a->str);
  tb = ref_tokens (b->str);
  g_assert_cmpuint (check_runs (runs, a->str, b->str), ==, ref_lcs (ta, tb));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/app/diff/random", test_random);
  g_test_add_func ("/app/diff/edges", test_edges);
  g_test_add_func ("/app/diff/cap", test_cap);
  g_test_add_func ("/app/diff/under-cap", test_under_cap);
  return g_test_run ();
}
