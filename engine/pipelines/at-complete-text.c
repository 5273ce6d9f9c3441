/* at-complete-text.c: prompt rendering and the generation loop (see the header). */
#include "at-complete-text.h"

#include <string.h>

#include "at-error.h"
#include "text/at-jinja.h"

#define PROMPT_CHUNK 256 /* prompt tokens per evaluation: bounds the prompt graph's arena */

static char *
token_text (AtTokenizer *t, gint32 id)
{
  gsize len = 0;
  const char *s = id >= 0 ? at_tokenizer_get_token_text (t, id, &len) : NULL;

  return s != NULL ? g_strndup (s, len) : NULL;
}

/* The conversation without its leading system message, whose text opens the first user
 * message instead; NULL when it has no system message followed by a user one. */
static JsonArray *
fold_system (JsonArray *messages)
{
  JsonArray *out;
  JsonObject *sys = json_array_get_length (messages) > 0 ? json_array_get_object_element (messages, 0) : NULL;
  gboolean folded = FALSE;

  if (sys == NULL || g_strcmp0 (json_object_get_string_member_with_default (sys, "role", ""), "system") != 0)
    return NULL;
  out = json_array_new ();
  for (guint i = 1; i < json_array_get_length (messages); i++)
    {
      JsonObject *m = json_array_get_object_element (messages, i);

      if (!folded && m != NULL
          && g_strcmp0 (json_object_get_string_member_with_default (m, "role", ""), "user") == 0)
        {
          JsonObject *u = json_object_new ();
          g_autofree char *text = g_strconcat (json_object_get_string_member_with_default (sys, "content", ""), "\n\n",
                                               json_object_get_string_member_with_default (m, "content", ""), NULL);

          json_object_set_string_member (u, "role", "user");
          json_object_set_string_member (u, "content", text);
          json_array_add_object_element (out, u);
          folded = TRUE;
        }
      else
        json_array_add_element (out, json_node_copy (json_array_get_element (messages, i)));
    }
  if (!folded)
    g_clear_pointer (&out, json_array_unref);
  return out;
}

char *
at_text_render_prompt (const char *completion, JsonArray *messages, const char *chat_template,
                       AtTokenizer *tokenizer, gboolean *from_template, GError **error)
{
  *from_template = FALSE;
  if (messages == NULL)
    return g_strdup (completion != NULL ? completion : "");
  if (chat_template != NULL && chat_template[0] != '\0')
    {
      g_autofree char *bos = token_text (tokenizer, at_tokenizer_get_bos (tokenizer));
      g_autofree char *eos = token_text (tokenizer, at_tokenizer_get_eos (tokenizer));
      GError *local = NULL;
      char *text = at_chat_apply_template (chat_template, messages, TRUE, bos, eos, &local);

      /* A template that refuses the conversation (raise_exception) may refuse its system role
       * (Gemma's do): the system text then opens the first user message, as those models'
       * makers advise. Any other refusal stands. */
      if (text == NULL && g_error_matches (local, AT_ERROR, AT_ERROR_INVALID))
        {
          g_autoptr (JsonArray) folded = fold_system (messages);

          if (folded != NULL)
            {
              /* Its error, if it fails too, is about the conversation now given. */
              g_clear_error (&local);
              text = at_chat_apply_template (chat_template, folded, TRUE, bos, eos, &local);
            }
        }
      if (text == NULL)
        {
          g_propagate_prefixed_error (error, local, "the model's chat template: ");
          return NULL;
        }
      g_clear_error (&local);
      *from_template = TRUE;
      return text;
    }
  {
    /* No template: the contents as plain text, the model continues after the last. */
    GString *s = g_string_new (NULL);

    for (guint i = 0; i < json_array_get_length (messages); i++)
      {
        JsonObject *m = json_array_get_object_element (messages, i);
        const char *content = m != NULL ? json_object_get_string_member_with_default (m, "content", "") : "";

        g_string_append (s, content);
        g_string_append (s, "\n\n");
      }
    return g_string_free (s, FALSE);
  }
}

gboolean
at_text_prompt_tokens (AtTokenizer *t, const char *text, gboolean from_template, GArray *ids, GError **error)
{
  g_autofree char *bos = token_text (t, at_tokenizer_get_bos (t));
  gboolean has_bos = bos != NULL && from_template && g_str_has_prefix (text, bos);

  if (at_tokenizer_get_add_bos (t) && !has_bos && at_tokenizer_get_bos (t) >= 0)
    {
      gint32 id = at_tokenizer_get_bos (t);

      g_array_append_val (ids, id);
    }
  return at_tokenizer_encode (t, text, -1, FALSE, from_template, ids, error);
}

/* Bytes at the end of `s` that begin some stop string (so cannot be shown yet). */
static gsize
held_back (const GString *s, gsize from, const char *const *stop)
{
  gsize hold = 0;

  for (guint i = 0; stop != NULL && stop[i] != NULL; i++)
    {
      gsize n = strlen (stop[i]);

      for (gsize k = MIN (n - 1, s->len - from); k > hold; k--)
        if (memcmp (s->str + s->len - k, stop[i], k) == 0)
          {
            hold = k;
            break;
          }
    }
  return hold;
}

/* The earliest stop string in s[from..]: its offset, or -1. */
static gssize
find_stop (const GString *s, gsize from, const char *const *stop)
{
  gssize best = -1;

  for (guint i = 0; stop != NULL && stop[i] != NULL; i++)
    {
      const char *hit;

      if (stop[i][0] == '\0')
        continue;
      hit = g_strstr_len (s->str + from, (gssize) (s->len - from), stop[i]);
      if (hit != NULL && (best < 0 || hit - s->str < best))
        best = hit - s->str;
    }
  return best;
}

gboolean
at_complete_text (AtLlm *m, AtTokenizer *t, const gint32 *prompt, guint n_prompt, const AtCompleteParams *p,
                  GCancellable *cancellable, AtCompleteFunc callback, gpointer user_data, char **text_out,
                  AtCompleteStats *stats, GError **error)
{
  guint n_vocab = at_llm_get_n_vocab (m);
  g_autofree float *logits = g_try_new (float, n_vocab);
  g_autoptr (AtSampler) sampler = NULL;
  g_autoptr (AtDetokenizer) detok = at_detokenizer_new (t, TRUE);
  g_autoptr (GString) text = g_string_new (NULL);  /* generated, including held-back bytes */
  g_autoptr (GString) shown_text = g_string_new (NULL); /* what the callback has seen */
  gsize shown = 0, stop_max = 0;
  gint64 t0 = g_get_monotonic_time (), t_gen;
  AtCompleteStats local = { 0 };
  gboolean stop = FALSE;

  if (stats == NULL)
    stats = &local;
  memset (stats, 0, sizeof *stats);
  if (logits == NULL)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_OUT_OF_HOST_MEMORY, "no memory for %u logits", n_vocab);
      return FALSE;
    }
  if (n_prompt == 0)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "the prompt is empty");
      return FALSE;
    }
  if ((guint64) n_prompt + 1 > at_llm_get_n_ctx (m))
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID,
                   "the prompt is %u tokens, more than the %u-token context leaves room for; trim it", n_prompt,
                   at_llm_get_n_ctx (m));
      return FALSE;
    }
  for (guint i = 0; p->stop != NULL && p->stop[i] != NULL; i++)
    stop_max = MAX (stop_max, strlen (p->stop[i]));
  sampler = at_sampler_new (&p->sampler, n_vocab);

  at_llm_reset (m);
  for (guint i = 0; i < n_prompt; i += PROMPT_CHUNK)
    {
      guint n = MIN (PROMPT_CHUNK, n_prompt - i);

      if (g_cancellable_is_cancelled (cancellable))
        {
          stats->cancelled = TRUE;
          return TRUE;
        }
      if (!at_llm_eval (m, prompt + i, n, i + n == n_prompt ? logits : NULL, error))
        return FALSE;
    }
  for (guint i = 0; i < n_prompt; i++)
    at_sampler_accept (sampler, prompt[i]);
  stats->prompt_tokens = n_prompt;
  t_gen = g_get_monotonic_time ();
  stats->prompt_seconds = (t_gen - t0) / 1e6;

  while (!stop)
    {
      gint32 id;
      g_autofree char *piece = NULL;
      gssize hit;
      gsize upto;

      if (g_cancellable_is_cancelled (cancellable))
        {
          stats->cancelled = TRUE;
          break;
        }
      if (stats->generated_tokens >= p->max_tokens)
        {
          stats->stopped_max = TRUE;
          break;
        }
      id = at_sampler_sample (sampler, logits);
      if (id < 0 || at_tokenizer_is_eog (t, id))
        {
          stats->stopped_eog = TRUE;
          break;
        }
      at_sampler_accept (sampler, id);
      stats->generated_tokens++;
      piece = at_detokenizer_feed (detok, id);
      g_string_append (text, piece);
      hit = find_stop (text, shown > stop_max ? shown - stop_max : 0, p->stop);
      if (hit >= 0)
        {
          g_string_truncate (text, (gsize) hit);
          stats->stopped_string = TRUE;
          stop = TRUE;
        }
      upto = stop ? text->len : text->len - held_back (text, shown, p->stop);
      if (upto > shown)
        {
          const char *piece_start;

          if (stats->first_token_seconds == 0)
            stats->first_token_seconds = (g_get_monotonic_time () - t0) / 1e6;
          g_string_append_len (shown_text, text->str + shown, (gssize) (upto - shown));
          piece_start = shown_text->str + shown_text->len - (upto - shown);
          shown = upto;
          if (callback != NULL && !callback (piece_start, shown_text->str, user_data))
            break;
        }
      if (stop)
        break;
      /* The context is full: stop rather than overflow. */
      if (at_llm_get_position (m) + 1 > at_llm_get_n_ctx (m))
        {
          stats->stopped_max = TRUE;
          break;
        }
      if (!at_llm_eval (m, &id, 1, logits, error))
        return FALSE;
    }
  if (!stats->stopped_string)
    {
      g_autofree char *rest = at_detokenizer_flush (detok);

      g_string_append (text, rest);
      if (text->len > shown && callback != NULL)
        {
          gsize before = shown_text->len;

          g_string_append (shown_text, text->str + shown);
          callback (shown_text->str + before, shown_text->str, user_data);
        }
    }
  stats->generate_seconds = (g_get_monotonic_time () - t_gen) / 1e6;
  if (text_out != NULL)
    *text_out = g_strdup (text->str);
  return TRUE;
}
