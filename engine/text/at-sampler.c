/* at-sampler.c: next-token sampling (repetition penalty, temperature, top-k, top-p, min-p) in
 * plain C over a candidate list allocated once per sampler. */
#include "text/at-sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct
{
  float logit;
  float p;
  gint32 id;
} Cand;

struct _AtSampler
{
  AtSamplerParams p;
  guint n_vocab;
  Cand *cand;
  guint8 *seen;    /* n_vocab flags: a token already penalised in this call */
  gint32 *history; /* ring of the last repeat_window accepted tokens */
  guint hist_len, hist_next;
  GRand *rand;
};

void
at_sampler_params_init (AtSamplerParams *p)
{
  p->temperature = 1.0f;
  p->top_k = 0;
  p->top_p = 1.0f;
  p->min_p = 0.0f;
  p->repeat_penalty = 1.0f;
  p->repeat_window = 64;
  p->seed = 0;
}

AtSampler *
at_sampler_new (const AtSamplerParams *p, guint n_vocab)
{
  AtSampler *s;

  g_return_val_if_fail (p != NULL && n_vocab >= 1, NULL);
  s = g_new0 (AtSampler, 1);
  s->p = *p;
  s->n_vocab = n_vocab;
  s->cand = g_new (Cand, n_vocab);
  s->seen = g_new0 (guint8, n_vocab);
  s->history = g_new0 (gint32, MAX (p->repeat_window, 1));
  s->rand = g_rand_new_with_seed (p->seed);
  return s;
}

void
at_sampler_free (AtSampler *s)
{
  if (s == NULL)
    return;
  g_free (s->cand);
  g_free (s->seen);
  g_free (s->history);
  g_rand_free (s->rand);
  g_free (s);
}

void
at_sampler_accept (AtSampler *s, gint32 token)
{
  if (s->p.repeat_window == 0)
    return;
  s->history[s->hist_next] = token;
  s->hist_next = (s->hist_next + 1) % s->p.repeat_window;
  s->hist_len = MIN (s->hist_len + 1, s->p.repeat_window);
}

void
at_sampler_reset (AtSampler *s)
{
  s->hist_len = 0;
  s->hist_next = 0;
  g_rand_set_seed (s->rand, s->p.seed);
}

/* Descending logit, then ascending id: a total order, so results never depend on qsort. */
static int
cand_cmp (const void *a, const void *b)
{
  const Cand *x = a, *y = b;

  if (x->logit != y->logit)
    return x->logit > y->logit ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

/* Keeps the first n candidates' probabilities summing to 1. */
static void
renormalise (Cand *c, guint n)
{
  double sum = 0;

  for (guint i = 0; i < n; i++)
    sum += c[i].p;
  for (guint i = 0; i < n; i++)
    c[i].p = (float) (c[i].p / sum);
}

/* Fills s->cand[0 .. n) with the surviving tokens, most likely first, and their
 * probabilities; returns n (0: nothing finite). */
static guint
filter (AtSampler *s, const float *logits)
{
  Cand *c = s->cand;
  guint n = 0;
  double sum = 0, cum;
  float inv_t;

  for (guint i = 0; i < s->n_vocab; i++)
    {
      c[i].id = (gint32) i;
      c[i].logit = isfinite (logits[i]) ? logits[i] : -INFINITY;
    }
  if (s->p.repeat_penalty != 1.0f && s->p.repeat_penalty > 0)
    {
      for (guint h = 0; h < s->hist_len; h++)
        {
          gint32 t = s->history[h];
          if (t < 0 || (guint) t >= s->n_vocab || s->seen[t])
            continue;
          s->seen[t] = 1;
          if (c[t].logit > 0)
            c[t].logit /= s->p.repeat_penalty;
          else
            c[t].logit *= s->p.repeat_penalty;
        }
      for (guint h = 0; h < s->hist_len; h++)
        if (s->history[h] >= 0 && (guint) s->history[h] < s->n_vocab)
          s->seen[s->history[h]] = 0;
    }

  if (!(s->p.temperature > 0))
    {
      guint best = 0;
      for (guint i = 1; i < s->n_vocab; i++)
        if (c[i].logit > c[best].logit)
          best = i;
      if (!isfinite (c[best].logit))
        return 0;
      c[0] = c[best];
      c[0].p = 1.0f;
      return 1;
    }

  inv_t = 1.0f / s->p.temperature;
  for (guint i = 0; i < s->n_vocab; i++)
    if (isfinite (c[i].logit * inv_t))
      {
        c[n] = c[i];
        c[n].logit *= inv_t;
        n++;
      }
  if (n == 0)
    return 0;
  qsort (c, n, sizeof (Cand), cand_cmp);
  if (s->p.top_k > 0)
    n = MIN (n, s->p.top_k);
  for (guint i = 0; i < n; i++)
    {
      c[i].p = expf (c[i].logit - c[0].logit);
      sum += c[i].p;
    }
  for (guint i = 0; i < n; i++)
    c[i].p = (float) (c[i].p / sum);
  if (s->p.top_p < 1.0f)
    {
      guint keep = n;
      cum = 0;
      for (guint i = 0; i < n; i++)
        {
          cum += c[i].p;
          if (cum >= s->p.top_p)
            {
              keep = i + 1;
              break;
            }
        }
      n = keep;
      renormalise (c, n);
    }
  if (s->p.min_p > 0.0f)
    {
      float floor_p = s->p.min_p * c[0].p;
      guint keep = 1;
      while (keep < n && c[keep].p >= floor_p)
        keep++;
      n = keep;
      renormalise (c, n);
    }
  return n;
}

gint32
at_sampler_sample (AtSampler *s, const float *logits)
{
  guint n = filter (s, logits);
  double u, cum = 0;

  if (n == 0)
    return -1;
  u = g_rand_double (s->rand);
  for (guint i = 0; i < n; i++)
    {
      cum += s->cand[i].p;
      if (u < cum)
        return s->cand[i].id;
    }
  return s->cand[n - 1].id; /* u just below 1 and rounding in the sum */
}

gboolean
at_sampler_get_probs (AtSampler *s, const float *logits, float *probs)
{
  guint n = filter (s, logits);

  memset (probs, 0, s->n_vocab * sizeof (float));
  for (guint i = 0; i < n; i++)
    probs[s->cand[i].id] = s->cand[i].p;
  return n > 0;
}
