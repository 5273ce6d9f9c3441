/* at-text-actions.c: the writer's prompt recipes and context trimming (see the header). */
#include "at-text-actions.h"

#include <string.h>

#include "at-error.h"

static const char *const action_names[] = { "continue", "rewrite", "summarize", "brainstorm", "ask" };

static const char rewrite_system[] =
  "You are a careful editor. Rewrite the passage the user gives you, keeping its meaning and its "
  "language. Reply with the rewritten passage only, without comments or quotation marks.";
static const char summarize_system[] = "You summarize texts faithfully and briefly.";
static const char brainstorm_system[] = "You help a writer develop their text.";
static const char ask_system[] = "You are a writing assistant. Answer the writer's questions about their text "
                                 "briefly and concretely.";

const char *
at_text_action_name (AtTextAction action)
{
  return (guint) action < G_N_ELEMENTS (action_names) ? action_names[action] : "unknown";
}

gboolean
at_text_action_from_name (const char *name, AtTextAction *action)
{
  for (guint i = 0; i < G_N_ELEMENTS (action_names); i++)
    if (g_strcmp0 (name, action_names[i]) == 0)
      {
        *action = (AtTextAction) i;
        return TRUE;
      }
  return FALSE;
}

void
at_text_prompt_clear (AtTextPrompt *prompt)
{
  g_clear_pointer (&prompt->messages, json_array_unref);
  g_clear_pointer (&prompt->completion, g_free);
  memset (prompt, 0, sizeof *prompt);
}

/* The start of the UTF-8 character holding byte `i` (moving back over continuation bytes). */
static gsize
char_start (const char *s, gsize i)
{
  while (i > 0 && ((guchar) s[i] & 0xc0) == 0x80)
    i--;
  return i;
}

/* Moves a cut at `at` (inside [lo, hi]) forward to just after the nearest paragraph break,
 * line break or space within `slack` bytes, in that order of preference. */
static gsize
snap_forward (const char *s, gsize at, gsize hi, gsize slack)
{
  static const char *const breaks[] = { "\n\n", "\n", " " };
  gsize limit = MIN (hi, at + slack);

  for (guint b = 0; b < G_N_ELEMENTS (breaks); b++)
    {
      gsize n = strlen (breaks[b]);

      for (gsize i = at; i + n <= limit; i++)
        if (memcmp (s + i, breaks[b], n) == 0)
          return i + n;
    }
  return at;
}

/* Moves a cut at `at` back to just before the nearest break within `slack` bytes. */
static gsize
snap_back (const char *s, gsize lo, gsize at, gsize slack)
{
  static const char *const breaks[] = { "\n\n", "\n", " " };
  gsize limit = at > lo + slack ? at - slack : lo;

  for (guint b = 0; b < G_N_ELEMENTS (breaks); b++)
    {
      gsize n = strlen (breaks[b]);

      for (gsize i = at; i >= limit + n && i > lo; i--)
        if (memcmp (s + i - n, breaks[b], n) == 0)
          return i - n;
    }
  return at;
}

/* The first character boundary at or after byte `i` (at most `hi`). */
static gsize
char_start_up (const char *s, gsize i, gsize hi)
{
  while (i < hi && ((guchar) s[i] & 0xc0) == 0x80)
    i++;
  return i;
}

/* The smallest character boundary `start` in [lo, hi] such that s[start, hi) fits `budget`
 * tokens (counts shrink as the start moves right), moved to a break nearby. */
static gsize
keep_end (const char *s, gsize lo, gsize hi, gsize budget, AtTokenCountFunc count, gpointer data)
{
  gsize lo_s = lo, hi_s = hi, best = hi;

  if (count (s + lo, hi - lo, data) <= budget)
    return lo;
  while (lo_s < hi_s)
    {
      gsize mid = lo_s + (hi_s - lo_s) / 2;
      gsize m = char_start_up (s, mid, hi);

      if (m >= best)
        hi_s = mid; /* no boundary in [mid, best): look left */
      else if (count (s + m, hi - m, data) <= budget)
        {
          best = m;
          hi_s = mid;
        }
      else
        lo_s = m + 1;
    }
  return snap_forward (s, best, hi, (hi - best) / 5);
}

/* The widest window [*start, *end) in [lo, hi] centred on `centre` that fits `budget`. */
static void
keep_centre (const char *s, gsize lo, gsize hi, gsize centre, gsize budget, AtTokenCountFunc count, gpointer data,
             gsize *start, gsize *end)
{
  gsize w_ok = 0, w_bad = MAX (centre - lo, hi - centre) + 1;

  if (count (s + lo, hi - lo, data) <= budget)
    {
      *start = lo;
      *end = hi;
      return;
    }
  while (w_bad - w_ok > 1)
    {
      gsize w = w_ok + (w_bad - w_ok) / 2;
      gsize a = char_start (s, centre > lo + w ? centre - w : lo);
      gsize b = char_start (s, MIN (hi, centre + w));

      if (count (s + a, b - a, data) <= budget)
        w_ok = w;
      else
        w_bad = w;
    }
  *start = char_start (s, centre > lo + w_ok ? centre - w_ok : lo);
  *end = char_start (s, MIN (hi, centre + w_ok));
  *start = snap_forward (s, *start, *end, (*end - *start) / 5);
  *end = snap_back (s, *start, *end, (*end - *start) / 5);
}

static void
add_message (JsonArray *messages, const char *role, const char *content)
{
  JsonObject *m = json_object_new ();

  json_object_set_string_member (m, "role", role);
  json_object_set_string_member (m, "content", content);
  json_array_add_object_element (messages, m);
}

static JsonArray *
chat (const char *system, const char *recipe_system, const char *user)
{
  JsonArray *messages = json_array_new ();
  g_autofree char *sys = system != NULL && system[0] != '\0' ? g_strconcat (system, "\n\n", recipe_system, NULL)
                                                             : g_strdup (recipe_system);

  add_message (messages, "system", sys);
  add_message (messages, "user", user);
  return messages;
}

static gboolean
check_document (const char *document, gsize len, gsize sel_start, gsize sel_end, GError **error)
{
  if (sel_start > sel_end || sel_end > len || char_start (document, sel_start) != sel_start
      || (sel_end < len && char_start (document, sel_end) != sel_end))
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID,
                   "the selection %" G_GSIZE_FORMAT ":%" G_GSIZE_FORMAT " is not inside the %" G_GSIZE_FORMAT
                   "-byte document on character boundaries",
                   sel_start, sel_end, len);
      return FALSE;
    }
  if (!g_utf8_validate (document, (gssize) len, NULL))
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "the document is not valid UTF-8 text");
      return FALSE;
    }
  return TRUE;
}

/* A turn's content, or NULL (and an error) when element `i` is not a message of `role`. */
static const char *
turn_content (JsonArray *turns, guint i, GError **error)
{
  JsonNode *node = json_array_get_element (turns, i);
  JsonObject *o = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  const char *want = i % 2 == 0 ? "user" : "assistant";
  JsonNode *role = o != NULL ? json_object_get_member (o, "role") : NULL;
  JsonNode *content = o != NULL ? json_object_get_member (o, "content") : NULL;

  if (role == NULL || content == NULL || json_node_get_value_type (role) != G_TYPE_STRING
      || json_node_get_value_type (content) != G_TYPE_STRING || g_strcmp0 (json_node_get_string (role), want) != 0
      || !g_utf8_validate (json_node_get_string (content), -1, NULL))
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID,
                   "message %u of the conversation is not a {\"role\": \"%s\", \"content\": text} message", i + 1,
                   want);
      return NULL;
    }
  return json_node_get_string (content);
}

gboolean
at_text_prompt_build_ask (AtTextPrompt *prompt, const char *document, gsize sel_start, gsize sel_end,
                          const char *question, JsonArray *turns, const char *system, gsize budget,
                          AtTokenCountFunc count, gpointer count_data, GError **error)
{
  gsize len = strlen (document), a, b, spent = 0;
  guint n = turns != NULL ? json_array_get_length (turns) : 0, first = n;
  g_autofree char *text = NULL, *sys = NULL;

  memset (prompt, 0, sizeof *prompt);
  prompt->action = AT_TEXT_ASK;
  if (!check_document (document, len, sel_start, sel_end, error))
    return FALSE;
  if (question == NULL || question[0] == '\0' || !g_utf8_validate (question, -1, NULL))
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "a question needs its text (UTF-8)");
      return FALSE;
    }
  if (n % 2 != 0)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID,
                   "the conversation has %u messages; it must be whole turns (a question, then its answer)", n);
      return FALSE;
    }
  for (guint i = 0; i < n; i++)
    if (turn_content (turns, i, error) == NULL)
      return FALSE;

  /* The newest whole turns that fit half the window; the document gets the rest. */
  while (first >= 2)
    {
      gsize turn = 2 * AT_TEXT_MESSAGE_TOKENS;

      for (guint i = first - 2; i < first; i++)
        {
          const char *c = turn_content (turns, i, NULL);

          turn += count (c, strlen (c), count_data);
        }
      if (spent + turn > budget / 2)
        break;
      spent += turn;
      first -= 2;
    }
  prompt->turns_sent = (n - first) / 2;
  prompt->turns_dropped = first / 2;

  if (sel_end > sel_start)
    keep_centre (document, sel_start, sel_end, sel_start + (sel_end - sel_start) / 2, budget - spent, count,
                 count_data, &a, &b);
  else
    keep_centre (document, 0, len, sel_start, budget - spent, count, count_data, &a, &b);
  prompt->context_start = a;
  prompt->context_end = b;
  prompt->trimmed = sel_end > sel_start ? a > sel_start || b < sel_end : a > 0 || b < len;
  text = g_strndup (document + a, b - a);

  sys = g_strdup_printf ("%s%s%s\n\n%s\n\n%s", system != NULL && system[0] != '\0' ? system : "",
                         system != NULL && system[0] != '\0' ? "\n\n" : "", ask_system,
                         sel_end > sel_start ? "The passage of their text the writer has selected:"
                                             : "The writer's text:",
                         text);
  prompt->messages = json_array_new ();
  add_message (prompt->messages, "system", sys);
  for (guint i = first; i < n; i++)
    add_message (prompt->messages, i % 2 == 0 ? "user" : "assistant", turn_content (turns, i, NULL));
  add_message (prompt->messages, "user", question);
  return TRUE;
}

gboolean
at_text_prompt_build (AtTextPrompt *prompt, AtTextAction action, const char *document, gsize sel_start,
                      gsize sel_end, const char *instruction, const char *system, gsize budget,
                      AtTokenCountFunc count, gpointer count_data, GError **error)
{
  gsize len = strlen (document), a, b;
  g_autofree char *text = NULL;

  if (action == AT_TEXT_ASK)
    return at_text_prompt_build_ask (prompt, document, sel_start, sel_end, instruction, NULL, system, budget, count,
                                     count_data, error);
  memset (prompt, 0, sizeof *prompt);
  prompt->action = action;
  if (!check_document (document, len, sel_start, sel_end, error))
    return FALSE;

  switch (action)
    {
    case AT_TEXT_CONTINUE:
    case AT_TEXT_BRAINSTORM:
      b = sel_end;
      a = keep_end (document, 0, b, budget, count, count_data);
      break;
    case AT_TEXT_SUMMARIZE:
      if (sel_end > sel_start)
        keep_centre (document, sel_start, sel_end, sel_start + (sel_end - sel_start) / 2, budget, count, count_data,
                     &a, &b);
      else
        keep_centre (document, 0, len, sel_start, budget, count, count_data, &a, &b);
      break;
    case AT_TEXT_REWRITE:
      a = sel_start;
      b = sel_end;
      if (a == b)
        {
          /* No selection: the paragraph around the cursor. */
          const char *p = g_strrstr_len (document, (gssize) a, "\n\n");
          const char *q = strstr (document + a, "\n\n");

          a = p != NULL ? (gsize) (p - document) + 2 : 0;
          b = q != NULL ? (gsize) (q - document) : len;
        }
      if (count (document + a, b - a, count_data) > budget)
        {
          g_set_error (error, AT_ERROR, AT_ERROR_INVALID,
                       "the passage to rewrite is longer than the model's window allows; select less");
          return FALSE;
        }
      break;
    default:
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "unknown action %d", (int) action);
      return FALSE;
    }

  prompt->context_start = a;
  prompt->context_end = b;
  prompt->trimmed = action != AT_TEXT_REWRITE
                    && (action == AT_TEXT_SUMMARIZE ? (sel_end > sel_start ? a > sel_start || b < sel_end : a > 0 || b < len)
                                                    : a > 0);
  text = g_strndup (document + a, b - a);
  switch (action)
    {
    case AT_TEXT_CONTINUE:
      prompt->completion = g_steal_pointer (&text);
      break;
    case AT_TEXT_REWRITE:
      {
        g_autofree char *user = instruction != NULL && instruction[0] != '\0'
                                  ? g_strdup_printf ("Rewrite the following passage. Instruction: %s\n\n%s",
                                                     instruction, text)
                                  : g_strdup_printf ("Rewrite the following passage so that it reads better.\n\n%s",
                                                     text);

        prompt->messages = chat (system, rewrite_system, user);
      }
      break;
    case AT_TEXT_SUMMARIZE:
      {
        g_autofree char *user = g_strdup_printf ("Summarize the following text in a few sentences.\n\n%s", text);

        prompt->messages = chat (system, summarize_system, user);
      }
      break;
    case AT_TEXT_BRAINSTORM:
      {
        g_autofree char *user = g_strdup_printf ("Here is the text so far:\n\n%s\n\nSuggest five short, distinct "
                                                 "ideas for what could come next, as a numbered list.",
                                                 text);

        prompt->messages = chat (system, brainstorm_system, user);
      }
      break;
    case AT_TEXT_ASK:
      g_assert_not_reached (); /* at_text_prompt_build_ask */
    }
  return TRUE;
}

char *
at_text_prompt_describe (const AtTextPrompt *p)
{
  glong chars = 0;
  const char *what;

  switch (p->action)
    {
    case AT_TEXT_CONTINUE:
      what = "the text before the cursor, as a plain completion prompt (no chat template); the model writes on";
      break;
    case AT_TEXT_REWRITE:
      what = "the selection (or the paragraph at the cursor) with a request to rewrite it, through the model's "
             "chat template";
      break;
    case AT_TEXT_SUMMARIZE:
      what = "the selection (or the document) with a request for a short summary, through the model's chat "
             "template";
      break;
    case AT_TEXT_ASK:
      what = "the question with the selection (or the text around the cursor) and the conversation's earlier "
             "turns, through the model's chat template";
      break;
    default:
      what = "the text before the cursor with a request for five ideas for what comes next, through the model's "
             "chat template";
      break;
    }
  if (p->completion != NULL)
    chars = g_utf8_strlen (p->completion, -1);
  else
    chars = (glong) (p->context_end - p->context_start);
  if (p->action == AT_TEXT_ASK)
    return g_strdup_printf ("%s: sends %s (%ld bytes of the document%s; %u earlier turns%s).",
                            at_text_action_name (p->action), what, chars,
                            p->trimmed ? ", trimmed to the model's window keeping the text nearest the cursor" : "",
                            p->turns_sent,
                            p->turns_dropped > 0 ? ", the oldest left out for room" : "");
  return g_strdup_printf ("%s: sends %s (%ld %s of the document%s).", at_text_action_name (p->action), what, chars,
                          p->completion != NULL ? "characters" : "bytes",
                          p->trimmed ? ", trimmed to the model's window keeping the text nearest the cursor" : "");
}
