/* at-sampler.h: choosing the next token from a language model's logits.
 *
 * The steps, in this order (each off at its neutral value):
 *   1. repetition penalty: each distinct token among the last `repeat_window` accepted tokens
 *      has its logit divided by `repeat_penalty` when positive, multiplied when negative;
 *   2. temperature: logits / temperature; temperature <= 0 is greedy (the highest logit, the
 *      lowest id on ties), and skips the rest;
 *   3. top-k: only the k highest logits stay (0: all);
 *   4. top-p (nucleus): the fewest most likely tokens whose probabilities sum to >= top_p
 *      stay (1: all);
 *   5. min-p: tokens with probability below min_p * (the most likely's) are dropped (0: none);
 *   6. a draw from the softmax of what stays, with a GRand seeded by `seed`.
 * Non-finite logits (NaN, -inf) never get picked; when nothing finite remains the result is -1.
 * Probabilities in steps 4 and 5 are those of the tokens that survived the earlier steps.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  float temperature;
  guint top_k;
  float top_p;
  float min_p;
  float repeat_penalty;
  guint repeat_window;
  guint32 seed;
} AtSamplerParams;

typedef struct _AtSampler AtSampler;

/* Neutral values: temperature 1, top_k 0, top_p 1, min_p 0, repeat_penalty 1, window 64,
 * seed 0. */
void at_sampler_params_init (AtSamplerParams *p);

/* `n_vocab` >= 1. Buffers for n_vocab candidates are allocated here, none per sample. */
AtSampler *at_sampler_new (const AtSamplerParams *p, guint n_vocab);
void at_sampler_free (AtSampler *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtSampler, at_sampler_free)

/* Records a token of the sequence (prompt tokens too) for the repetition penalty. */
void at_sampler_accept (AtSampler *s, gint32 token);
/* Forgets the accepted tokens and reseeds the generator with the params' seed. */
void at_sampler_reset (AtSampler *s);

/* The next token for `logits` (n_vocab floats, left unchanged); does not accept it. */
gint32 at_sampler_sample (AtSampler *s, const float *logits);

/* The distribution step 6 draws from, over the whole vocabulary (0 for dropped tokens) into
 * `probs` (n_vocab floats); with temperature <= 0, 1 at the greedy token. FALSE when nothing
 * finite remains (probs all 0). */
gboolean at_sampler_get_probs (AtSampler *s, const float *logits, float *probs);

G_END_DECLS
