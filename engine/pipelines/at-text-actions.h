/* at-text-actions.h: the writer's actions as prompt recipes.
 *
 * Each action turns the document, the cursor or selection and an optional instruction into
 * exactly what the model receives, and says so (`at_text_prompt_describe`):
 *
 * - continue: a plain completion. The text before the cursor (or the selection's end) is the
 *   prompt and the model writes on; no chat template, because every model, instruct-tuned or
 *   not, continues text best from the text itself.
 * - rewrite: a chat turn. The system message asks for the passage rewritten and nothing else;
 *   the user message carries the instruction ("shorter", "more formal", ...) and the selection
 *   (or the paragraph around the cursor when nothing is selected).
 * - summarize: a chat turn asking for a short summary of the selection, or of the document.
 * - brainstorm: a chat turn asking for a short list of ideas for what could come next, given
 *   the text before the cursor.
 * - ask: a conversation about the document. The system message carries the selection (or the
 *   document around the cursor); then the earlier turns of the conversation, if any; then the
 *   question (the instruction).
 *
 * The context is trimmed to the model's window, keeping the text nearest the cursor: the end
 * of the text before it (continue, brainstorm), or a window centred on the selection
 * (summarize). A rewrite never trims the passage itself: one too long for the window is refused
 * with a message, since rewriting half a passage is not what was asked. A question keeps the
 * newest whole turns of its conversation that fit half the window, and gives the rest to the
 * document. Cuts fall on paragraph, line or word boundaries where one is near, and never inside
 * a UTF-8 character.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef enum
{
  AT_TEXT_CONTINUE,
  AT_TEXT_REWRITE,
  AT_TEXT_SUMMARIZE,
  AT_TEXT_BRAINSTORM,
  AT_TEXT_ASK,
} AtTextAction;

const char *at_text_action_name (AtTextAction action);
/* FALSE when `name` is none of continue/rewrite/summarize/brainstorm/ask. */
gboolean at_text_action_from_name (const char *name, AtTextAction *action);

/* Tokens `text` (`len` bytes) would take; the model's tokenizer, or an estimate. */
typedef gsize (*AtTokenCountFunc) (const char *text, gsize len, gpointer user_data);

typedef struct
{
  AtTextAction action;
  /* A chat conversation ([{role, content}, ...]) for the model's template, or NULL for a plain
   * completion, whose text is `completion`. */
  JsonArray *messages;
  char *completion;
  /* Bytes of the document the prompt carries: [context_start, context_end). */
  gsize context_start, context_end;
  gboolean trimmed;
  /* ask: the earlier turns (a question and its answer) sent, and those left out for room. */
  guint turns_sent, turns_dropped;
} AtTextPrompt;

void at_text_prompt_clear (AtTextPrompt *prompt);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (AtTextPrompt, at_text_prompt_clear)

/* Builds the prompt for `action` over `document` (UTF-8) with the selection [sel_start,
 * sel_end) in bytes (equal: the cursor). `instruction` (rewrite) and `system` (an extra system
 * message) may be NULL. `budget` is the tokens the document text may take (the model's window
 * less the answer's tokens and the recipe's own words); `count` measures text. */
gboolean at_text_prompt_build (AtTextPrompt *prompt, AtTextAction action, const char *document, gsize sel_start,
                               gsize sel_end, const char *instruction, const char *system, gsize budget,
                               AtTokenCountFunc count, gpointer count_data, GError **error);

/* The same for AT_TEXT_ASK with the conversation so far: `turns` is [{role, content}, ...],
 * alternately "user" and "assistant", oldest first (NULL: none); `question` must not be empty.
 * Each message is counted as its content plus AT_TEXT_MESSAGE_TOKENS for the template's
 * framing. */
#define AT_TEXT_MESSAGE_TOKENS 8
gboolean at_text_prompt_build_ask (AtTextPrompt *prompt, const char *document, gsize sel_start, gsize sel_end,
                                   const char *question, JsonArray *turns, const char *system, gsize budget,
                                   AtTokenCountFunc count, gpointer count_data, GError **error);

/* A few lines saying what the action sends ("Sends the 1,204 characters before the cursor as a
 * plain completion prompt (trimmed to the model's window).") */
char *at_text_prompt_describe (const AtTextPrompt *prompt);

G_END_DECLS
