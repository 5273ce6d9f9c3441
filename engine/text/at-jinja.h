/* at-jinja.h: the subset of Jinja2 that language models' chat templates use
 * (`tokenizer.chat_template` in GGUF files, `chat_template` in tokenizer_config.json).
 *
 * The reference is what Hugging Face transformers does: jinja2's ImmutableSandboxedEnvironment
 * with trim_blocks=True and lstrip_blocks=True, the loopcontrols extension ({% break %},
 * {% continue %}), a `tojson` filter that is plain json.dumps (ensure_ascii=False, no HTML
 * escaping, optional indent / separators / sort_keys), and the globals raise_exception(msg)
 * and strftime_now(format). tools/ref/render_templates.py renders the same way with
 * python3-jinja2; tests/test-jinja.c compares the two byte for byte.
 *
 * Supported: {{ }}, {% if/elif/else %}, {% for %} (tuple targets, `if` filter, else, loop.*),
 * {% set %} (names, tuples, namespace attributes, block set), {% macro %}, {% break %},
 * {% continue %}, comments, whitespace control (- and +); expressions with Python's semantics
 * for the value types none, bool, int (64-bit; overflow is an error), float, string, list,
 * dict (ordered) and undefined (jinja2's default Undefined: prints empty, is falsy, but an
 * attribute or item of it is an error). Anything else Jinja2 has ({% include %}, {% block %},
 * {% call %}, {% filter %}, recursive loops, unknown filters...) is refused with
 * AT_ERROR_UNSUPPORTED naming it, never guessed.
 *
 * Templates are untrusted: the parser and the evaluator bound nesting depth, the output size,
 * the memory one render may allocate, the loop iterations and the bytes scanned, and refuse attributes that start
 * with an underscore. Errors: a syntax error is AT_ERROR_BAD_FILE naming line:column and what
 * was expected; a failure while rendering (an undefined value used, a type error, a limit) is
 * AT_ERROR_BAD_FILE naming the line; raise_exception(msg) is AT_ERROR_INVALID whose message is
 * exactly msg (the template refusing the conversation, e.g. a system role it has no place for).
 */
#pragma once

#include <json-glib/json-glib.h>

#include "at-file-tensors.h"

G_BEGIN_DECLS

#define AT_JINJA_MAX_SOURCE (1u << 20)        /* bytes of template text */
#define AT_JINJA_MAX_DEPTH 200                /* nesting of blocks, expressions and calls */
#define AT_JINJA_MAX_OUTPUT (16u << 20)       /* bytes of rendered text (and any one string) */
#define AT_JINJA_MAX_MEMORY (256u << 20)      /* bytes of values one render may allocate */
#define AT_JINJA_MAX_ITERATIONS 100000        /* loop iterations in one render, all loops */
#define AT_JINJA_MAX_WORK (G_GUINT64_CONSTANT (1) << 32) /* bytes and items scanned in one render */

typedef struct _AtJinjaTemplate AtJinjaTemplate;

/* Parses `source` (UTF-8). NULL and a GError on a syntax error or an unsupported construct. */
AtJinjaTemplate *at_jinja_parse (const char *source, GError **error);
void at_jinja_template_free (AtJinjaTemplate *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtJinjaTemplate, at_jinja_template_free)

/* The time strftime_now() formats (referenced); NULL (the default) means the current local
 * time at each call. Tests fix it to compare with the reference. */
void at_jinja_template_set_now (AtJinjaTemplate *t, GDateTime *now);

/* Renders with `context`'s members as the template's variables (messages, bos_token,
 * add_generation_prompt, tools...). `context` may be NULL. Returns the text (UTF-8 when
 * the template and the context are). */
char *at_jinja_render (AtJinjaTemplate *t, JsonObject *context, GError **error);

/* Parses `template_source` and renders it with messages (an array of {role, content, ...}),
 * add_generation_prompt, bos_token and eos_token (NULL: ""), and tools = none. */
char *at_chat_apply_template (const char *template_source, JsonArray *messages,
                              gboolean add_generation_prompt, const char *bos, const char *eos,
                              GError **error);

G_END_DECLS
