/* test-text-actions.c: the writer's prompt recipes and trimming to the window, with token
 * counters whose answers are known (one token per 4 bytes; one per word). */
#include <string.h>

#include "at-test-util.h"

static gsize
count_bytes4 (const char *text, gsize len, gpointer data)
{
  return (len + 3) / 4;
}

static gsize
count_words (const char *text, gsize len, gpointer data)
{
  gsize n = 0;
  gboolean in_word = FALSE;

  for (gsize i = 0; i < len; i++)
    {
      gboolean space = text[i] == ' ' || text[i] == '\n';

      if (!space && !in_word)
        n++;
      in_word = !space;
    }
  return n;
}

static const char doc[] = "The first paragraph has some words.\n\n"
                          "The second paragraph is here, with more words in it than the first.\n\n"
                          "The third one ends the text.";

static void
test_continue (void)
{
  g_auto (AtTextPrompt) all = { 0 }, cut = { 0 };
  g_autoptr (GError) error = NULL;
  gsize cursor = strlen (doc);
  g_autofree char *what = NULL;

  g_assert_true (at_text_prompt_build (&all, AT_TEXT_CONTINUE, doc, cursor, cursor, NULL, NULL, 1000, count_words, NULL,
                                       &error));
  g_assert_no_error (error);
  g_assert_null (all.messages);
  g_assert_cmpstr (all.completion, ==, doc);
  g_assert_false (all.trimmed);

  /* 8 words fit: the end of the text, cut at a break, never past the cursor. */
  g_assert_true (at_text_prompt_build (&cut, AT_TEXT_CONTINUE, doc, cursor, cursor, NULL, NULL, 8, count_words, NULL,
                                       &error));
  g_assert_true (cut.trimmed);
  g_assert_true (g_str_has_suffix (doc, cut.completion));
  g_assert_cmpuint (count_words (cut.completion, strlen (cut.completion), NULL), <=, 8);
  g_assert_cmpuint (count_words (cut.completion, strlen (cut.completion), NULL), >=, 5);
  g_assert_true (cut.context_start == 0 || doc[cut.context_start - 1] == ' ' || doc[cut.context_start - 1] == '\n');
  what = at_text_prompt_describe (&cut);
  g_assert_nonnull (strstr (what, "plain completion"));
  g_assert_nonnull (strstr (what, "trimmed"));
}

static void
test_continue_utf8 (void)
{
  /* Two- and three-byte characters with no spaces: cuts must land between characters. */
  const char text[] = "ééééé€€€€€ééééé€€€€€ééééé€€€€€";

  for (gsize budget = 1; budget < 12; budget++)
    {
      g_auto (AtTextPrompt) p = { 0 };

      g_assert_true (at_text_prompt_build (&p, AT_TEXT_CONTINUE, text, strlen (text), strlen (text), NULL, NULL, budget,
                                           count_bytes4, NULL, NULL));
      g_assert_true (g_utf8_validate (p.completion, -1, NULL));
      g_assert_cmpuint (count_bytes4 (p.completion, strlen (p.completion), NULL), <=, budget);
      g_assert_true (g_str_has_suffix (text, p.completion));
      /* The largest suffix that fits: one more character would not. */
      if (p.context_start > 0)
        {
          const char *prev = g_utf8_find_prev_char (text, text + p.context_start);

          g_assert_cmpuint (count_bytes4 (prev, strlen (prev), NULL), >, budget);
        }
    }
}

static void
test_rewrite (void)
{
  g_auto (AtTextPrompt) sel = { 0 }, para = { 0 };
  g_autoptr (GError) error = NULL;
  const char *second = strstr (doc, "The second");
  gsize start = (gsize) (second - doc), end = start + strlen ("The second paragraph is here");
  JsonObject *user;

  g_assert_true (at_text_prompt_build (&sel, AT_TEXT_REWRITE, doc, start, end, "more formal", "Be brief.", 1000,
                                       count_words, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (sel.completion);
  g_assert_cmpuint (json_array_get_length (sel.messages), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (sel.messages, 0), "role"), ==, "system");
  g_assert_true (g_str_has_prefix (
    json_object_get_string_member (json_array_get_object_element (sel.messages, 0), "content"), "Be brief.\n\n"));
  user = json_array_get_object_element (sel.messages, 1);
  g_assert_cmpstr (json_object_get_string_member (user, "content"), ==,
                   "Rewrite the following passage. Instruction: more formal\n\nThe second paragraph is here");

  /* No selection: the paragraph the cursor is in. */
  g_assert_true (at_text_prompt_build (&para, AT_TEXT_REWRITE, doc, start + 5, start + 5, NULL, NULL, 1000, count_words,
                                       NULL, &error));
  g_assert_cmpuint (para.context_start, ==, start);
  g_assert_cmpuint (para.context_end, ==, (gsize) (strstr (second, "\n\n") - doc));

  /* A passage longer than the window is refused, not cut. */
  {
    g_auto (AtTextPrompt) too_long = { 0 };

    g_assert_false (at_text_prompt_build (&too_long, AT_TEXT_REWRITE, doc, 0, strlen (doc), NULL, NULL, 5, count_words,
                                          NULL, &error));
    g_assert_error (error, AT_ERROR, AT_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "longer than the model's window"));
  }
}

static void
test_summarize_and_brainstorm (void)
{
  g_auto (AtTextPrompt) s = { 0 }, b = { 0 };
  g_autoptr (GError) error = NULL;
  gsize cursor = (gsize) (strstr (doc, "more words") - doc);
  const char *content;

  /* The whole document does not fit: the window is centred on the cursor. */
  g_assert_true (at_text_prompt_build (&s, AT_TEXT_SUMMARIZE, doc, cursor, cursor, NULL, NULL, 9, count_words, NULL,
                                       &error));
  g_assert_no_error (error);
  g_assert_true (s.trimmed);
  g_assert_cmpuint (s.context_start, <=, cursor);
  g_assert_cmpuint (s.context_end, >=, cursor);
  content = json_object_get_string_member (json_array_get_object_element (s.messages, 1), "content");
  g_assert_true (g_str_has_prefix (content, "Summarize the following text in a few sentences.\n\n"));
  g_assert_nonnull (strstr (content, "more words"));

  g_assert_true (at_text_prompt_build (&b, AT_TEXT_BRAINSTORM, doc, cursor, cursor, NULL, NULL, 1000, count_words, NULL,
                                       &error));
  content = json_object_get_string_member (json_array_get_object_element (b.messages, 1), "content");
  {
    g_autofree char *before = g_strndup (doc, cursor);
    g_autofree char *want = g_strdup_printf ("Here is the text so far:\n\n%s\n\nSuggest five short, distinct ideas "
                                             "for what could come next, as a numbered list.",
                                             before);

    g_assert_cmpstr (content, ==, want);
  }
}

static JsonArray *
turns_from (const char *json)
{
  g_autoptr (JsonNode) node = json_from_string (json, NULL);

  g_assert_nonnull (node);
  return json_array_ref (json_node_get_array (node));
}

static const char *
part (JsonArray *messages, guint i, const char *member)
{
  return json_object_get_string_member (json_array_get_object_element (messages, i), member);
}

/* Three earlier turns of 3 + 4 words each: with the framing (AT_TEXT_MESSAGE_TOKENS a message),
 * 23 tokens a turn. The document is 25 words. */
static const char three_turns[] = "[{\"role\": \"user\", \"content\": \"first question here\"},"
                                  " {\"role\": \"assistant\", \"content\": \"the first answer given\"},"
                                  " {\"role\": \"user\", \"content\": \"second question here\"},"
                                  " {\"role\": \"assistant\", \"content\": \"the second answer given\"},"
                                  " {\"role\": \"user\", \"content\": \"third question here\"},"
                                  " {\"role\": \"assistant\", \"content\": \"the third answer given\"}]";

static void
test_ask (void)
{
  g_autoptr (JsonArray) turns = turns_from (three_turns);
  g_autoptr (GError) error = NULL;
  gsize len = strlen (doc), cursor = (gsize) (strstr (doc, "more words") - doc);
  const char *second = strstr (doc, "The second");
  gsize sel_start = (gsize) (second - doc), sel_end = (gsize) (strstr (second, "\n\n") - doc);
  AtTextAction action;

  g_assert_cmpuint (count_words (doc, len, NULL), ==, 25);
  {
    /* Room for everything: every turn, oldest first, between the document and the question. */
    g_auto (AtTextPrompt) p = { 0 };
    g_autofree char *what = NULL;

    g_assert_true (at_text_prompt_build_ask (&p, doc, len, len, "Who is in it?", turns, "Be kind.", 1000,
                                             count_words, NULL, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (json_array_get_length (p.messages), ==, 8);
    g_assert_cmpstr (part (p.messages, 0, "role"), ==, "system");
    g_assert_true (g_str_has_prefix (part (p.messages, 0, "content"), "Be kind.\n\n"));
    g_assert_true (g_str_has_suffix (part (p.messages, 0, "content"), doc));
    g_assert_nonnull (strstr (part (p.messages, 0, "content"), "The writer's text:"));
    for (guint i = 0; i < 6; i++)
      {
        g_assert_cmpstr (part (p.messages, i + 1, "role"), ==, part (turns, i, "role"));
        g_assert_cmpstr (part (p.messages, i + 1, "content"), ==, part (turns, i, "content"));
      }
    g_assert_cmpstr (part (p.messages, 7, "role"), ==, "user");
    g_assert_cmpstr (part (p.messages, 7, "content"), ==, "Who is in it?");
    g_assert_cmpuint (p.turns_sent, ==, 3);
    g_assert_cmpuint (p.turns_dropped, ==, 0);
    g_assert_false (p.trimmed);
    what = at_text_prompt_describe (&p);
    g_assert_nonnull (strstr (what, "3 earlier turns"));
    g_assert_null (strstr (what, "left out"));
  }
  {
    /* 60 tokens: the turns may take 30, so only the newest turn goes; the document still fits. */
    g_auto (AtTextPrompt) p = { 0 };
    g_autofree char *what = NULL;

    g_assert_true (at_text_prompt_build_ask (&p, doc, len, len, "Who?", turns, NULL, 60, count_words, NULL, &error));
    g_assert_cmpuint (p.turns_sent, ==, 1);
    g_assert_cmpuint (p.turns_dropped, ==, 2);
    g_assert_cmpuint (json_array_get_length (p.messages), ==, 4);
    g_assert_cmpstr (part (p.messages, 1, "content"), ==, "third question here");
    g_assert_cmpstr (part (p.messages, 2, "content"), ==, "the third answer given");
    g_assert_false (p.trimmed);
    g_assert_true (g_str_has_prefix (part (p.messages, 0, "content"), "You are a writing assistant."));
    what = at_text_prompt_describe (&p);
    g_assert_nonnull (strstr (what, "the oldest left out"));
  }
  {
    /* 16 tokens: no turn fits in 8; the document is cut to a window around the cursor. */
    g_auto (AtTextPrompt) p = { 0 };

    g_assert_true (at_text_prompt_build_ask (&p, doc, cursor, cursor, "Who?", turns, NULL, 16, count_words, NULL,
                                             &error));
    g_assert_cmpuint (p.turns_sent, ==, 0);
    g_assert_cmpuint (p.turns_dropped, ==, 3);
    g_assert_cmpuint (json_array_get_length (p.messages), ==, 2);
    g_assert_true (p.trimmed);
    g_assert_cmpuint (p.context_start, <=, cursor);
    g_assert_cmpuint (p.context_end, >=, cursor);
    g_assert_cmpuint (count_words (doc + p.context_start, p.context_end - p.context_start, NULL), <=, 16);
  }
  {
    /* A selection: the passage alone, said to be a selection. */
    g_auto (AtTextPrompt) p = { 0 };
    g_autofree char *passage = g_strndup (second, sel_end - sel_start);

    g_assert_true (at_text_prompt_build (&p, AT_TEXT_ASK, doc, sel_start, sel_end, "Is this clear?", NULL, 1000,
                                         count_words, NULL, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (json_array_get_length (p.messages), ==, 2);
    g_assert_nonnull (strstr (part (p.messages, 0, "content"), "selected"));
    g_assert_true (g_str_has_suffix (part (p.messages, 0, "content"), passage));
    g_assert_null (strstr (part (p.messages, 0, "content"), "first paragraph"));
    g_assert_cmpstr (part (p.messages, 1, "content"), ==, "Is this clear?");
  }
  {
    /* Bad conversations and questions. */
    g_auto (AtTextPrompt) p = { 0 };
    g_autoptr (JsonArray) odd = turns_from ("[{\"role\": \"user\", \"content\": \"q\"}]");
    g_autoptr (JsonArray) swapped = turns_from ("[{\"role\": \"assistant\", \"content\": \"a\"},"
                                                " {\"role\": \"user\", \"content\": \"q\"}]");
    g_autoptr (JsonArray) not_text = turns_from ("[{\"role\": \"user\", \"content\": 3},"
                                                 " {\"role\": \"assistant\", \"content\": \"a\"}]");

    g_assert_false (at_text_prompt_build_ask (&p, doc, len, len, "Who?", odd, NULL, 100, count_words, NULL, &error));
    g_assert_nonnull (strstr (error->message, "whole turns"));
    g_clear_error (&error);
    g_assert_false (at_text_prompt_build_ask (&p, doc, len, len, "Who?", swapped, NULL, 100, count_words, NULL,
                                              &error));
    g_assert_nonnull (strstr (error->message, "message 1 of the conversation"));
    g_clear_error (&error);
    g_assert_false (at_text_prompt_build_ask (&p, doc, len, len, "Who?", not_text, NULL, 100, count_words, NULL,
                                              &error));
    g_assert_nonnull (strstr (error->message, "message 1 of the conversation"));
    g_clear_error (&error);
    g_assert_false (at_text_prompt_build (&p, AT_TEXT_ASK, doc, len, len, "", NULL, 100, count_words, NULL, &error));
    g_assert_nonnull (strstr (error->message, "question"));
    g_clear_error (&error);
  }
  g_assert_true (at_text_action_from_name ("ask", &action));
  g_assert_cmpint (action, ==, AT_TEXT_ASK);
}

static void
test_bad_input (void)
{
  g_auto (AtTextPrompt) p = { 0 };
  g_autoptr (GError) error = NULL;
  AtTextAction action;
  const char bad_utf8[] = "abc\xff";

  g_assert_false (at_text_prompt_build (&p, AT_TEXT_CONTINUE, doc, 10, 5, NULL, NULL, 100, count_words, NULL, &error));
  g_assert_error (error, AT_ERROR, AT_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (at_text_prompt_build (&p, AT_TEXT_CONTINUE, doc, 0, 9999, NULL, NULL, 100, count_words, NULL, &error));
  g_clear_error (&error);
  g_assert_false (at_text_prompt_build (&p, AT_TEXT_CONTINUE, bad_utf8, 0, 0, NULL, NULL, 100, count_words, NULL, &error));
  g_assert_nonnull (strstr (error->message, "UTF-8"));
  g_assert_true (at_text_action_from_name ("summarize", &action));
  g_assert_cmpint (action, ==, AT_TEXT_SUMMARIZE);
  g_assert_false (at_text_action_from_name ("translate", &action));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/text/actions/continue", test_continue);
  g_test_add_func ("/text/actions/continue-utf8", test_continue_utf8);
  g_test_add_func ("/text/actions/rewrite", test_rewrite);
  g_test_add_func ("/text/actions/summarize-brainstorm", test_summarize_and_brainstorm);
  g_test_add_func ("/text/actions/ask", test_ask);
  g_test_add_func ("/text/actions/bad-input", test_bad_input);
  return g_test_run ();
}
