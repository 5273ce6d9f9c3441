/* at-complete-text.h: the writer's generation job — from a prompt to streamed text.
 *
 * at_text_render_prompt turns a prompt (a plain completion text, or a conversation) into the
 * exact text the model receives: the conversation goes through the model's own chat template
 * (tokenizer.chat_template, rendered by at-jinja); a file without one gets the messages' contents
 * joined by blank lines, as a plain completion prompt. A template that refuses a system role
 * (raise_exception, as Gemma's do) gets the system text at the head of the first user message. at_text_prompt_tokens tokenizes it: BOS
 * when the vocabulary asks for it and the text does not already start with it; special-token
 * text parsed only in template output (a user's document that says "<|im_end|>" stays text).
 *
 * at_complete_text evaluates the prompt, then samples token after token: each new piece of
 * text (always whole UTF-8 characters) goes to the callback with the text so far. It stops at
 * an end-of-generation token, a stop string (which is cut from the text and never shown, even
 * in part: text that could begin one is held back until it cannot), max_tokens, the callback
 * returning FALSE, or the cancellable (checked before each token, so a cancel lands within one
 * token). Nothing is allocated on the device per token.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "models/at-llm.h"
#include "text/at-sampler.h"
#include "text/at-tokenizer.h"

G_BEGIN_DECLS

/* `completion` (a plain prompt) or `messages` (a conversation); `chat_template` may be NULL. */
char *at_text_render_prompt (const char *completion, JsonArray *messages, const char *chat_template,
                             AtTokenizer *tokenizer, gboolean *from_template, GError **error);
/* Appends the prompt's ids to `ids` (gint32). */
gboolean at_text_prompt_tokens (AtTokenizer *tokenizer, const char *text, gboolean from_template, GArray *ids,
                                GError **error);

typedef struct
{
  guint max_tokens;
  AtSamplerParams sampler;
  const char *const *stop; /* NULL-terminated, or NULL */
} AtCompleteParams;

typedef struct
{
  guint prompt_tokens;
  guint generated_tokens;
  double prompt_seconds;      /* evaluating the prompt */
  double first_token_seconds; /* from the start to the first token's text */
  double generate_seconds;    /* sampling and evaluating the generated tokens */
  gboolean stopped_eog, stopped_string, stopped_max, cancelled;
} AtCompleteStats;

/* A new piece of text and all the text so far; FALSE stops the generation. */
typedef gboolean (*AtCompleteFunc) (const char *piece, const char *text, gpointer user_data);

/* Generates after `prompt` (n_prompt ids; the model's sequence is reset first). `text_out`
 * (may be NULL) gets the whole generated text. A cancel is not an error: stats->cancelled. */
gboolean at_complete_text (AtLlm *model, AtTokenizer *tokenizer, const gint32 *prompt, guint n_prompt,
                           const AtCompleteParams *params, GCancellable *cancellable, AtCompleteFunc callback,
                           gpointer user_data, char **text_out, AtCompleteStats *stats, GError **error);

G_END_DECLS
