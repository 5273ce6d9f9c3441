/* test-sampler.c: the token sampler on fixed logits: greedy (ties, NaN, nothing finite), the
 * distributions after temperature, top-k, top-p, min-p and the repetition penalty against
 * values worked out by hand, draw frequencies against those distributions, and seeding. */
#include "at-test-util.h"

#include <math.h>

#include "text/at-sampler.h"

#define V 8

/* Probabilities 1/2, 1/4, 1/8, ... for ids 0, 1, 2, ... (the last two share the tail). */
static void
halving_logits (float *l)
{
  for (int i = 0; i < V; i++)
    l[i] = -(float) i * logf (2.0f);
}

static void
assert_probs (const float *got, const double *want, const char *what)
{
  for (int i = 0; i < V; i++)
    if (fabs (got[i] - want[i]) > 1e-6)
      g_error ("%s: p[%d] = %g, expected %g", what, i, got[i], want[i]);
}

static AtSampler *
sampler (float temperature, guint top_k, float top_p, float min_p)
{
  AtSamplerParams p;

  at_sampler_params_init (&p);
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  return at_sampler_new (&p, V);
}

static void
test_greedy (void)
{
  g_autoptr (AtSampler) s = sampler (0, 0, 1, 0);
  float l[V] = { 1, 3, NAN, 3, -INFINITY, 0, 2, -1 };
  float probs[V];

  g_assert_cmpint (at_sampler_sample (s, l), ==, 1); /* ties: the lowest id */
  g_assert_true (at_sampler_get_probs (s, l, probs));
  g_assert_cmpfloat (probs[1], ==, 1.0f);
  for (int i = 0; i < V; i++)
    l[i] = i == 5 ? NAN : -INFINITY;
  g_assert_cmpint (at_sampler_sample (s, l), ==, -1);
  g_assert_false (at_sampler_get_probs (s, l, probs));
}

static void
test_temperature (void)
{
  g_autoptr (AtSampler) s = sampler (0.5f, 0, 1, 0);
  float l[V], probs[V];
  double want[V], sum = 0;

  halving_logits (l);
  /* T = 0.5 squares the ratios: p_i proportional to 4^-i. */
  for (int i = 0; i < V; i++)
    sum += want[i] = pow (0.25, i);
  for (int i = 0; i < V; i++)
    want[i] /= sum;
  g_assert_true (at_sampler_get_probs (s, l, probs));
  assert_probs (probs, want, "temperature 0.5");
}

static void
test_top_k_p_min_p (void)
{
  float l[V], probs[V];
  double want[V] = { 0 };

  halving_logits (l);
  {
    g_autoptr (AtSampler) s = sampler (1, 3, 1, 0);
    /* 1/2, 1/4, 1/8 renormalised: 4/7, 2/7, 1/7. */
    want[0] = 4.0 / 7, want[1] = 2.0 / 7, want[2] = 1.0 / 7;
    g_assert_true (at_sampler_get_probs (s, l, probs));
    assert_probs (probs, want, "top-k 3");
  }
  {
    /* Cumulative ~0.502, 0.753, 0.878: top-p 0.7 keeps two. */
    g_autoptr (AtSampler) s = sampler (1, 0, 0.7f, 0);
    want[0] = 2.0 / 3, want[1] = 1.0 / 3, want[2] = 0;
    g_assert_true (at_sampler_get_probs (s, l, probs));
    assert_probs (probs, want, "top-p 0.7");
  }
  {
    g_autoptr (AtSampler) s = sampler (1, 0, 0.8f, 0);
    want[0] = 4.0 / 7, want[1] = 2.0 / 7, want[2] = 1.0 / 7;
    g_assert_true (at_sampler_get_probs (s, l, probs));
    assert_probs (probs, want, "top-p 0.8");
  }
  {
    /* min-p 0.3: p >= 0.3 * p_max keeps 1/2 and 1/4 (1/8 < 0.15). */
    g_autoptr (AtSampler) s = sampler (1, 0, 1, 0.3f);
    want[0] = 2.0 / 3, want[1] = 1.0 / 3, want[2] = 0;
    g_assert_true (at_sampler_get_probs (s, l, probs));
    assert_probs (probs, want, "min-p 0.3");
  }
  {
    /* Everything at once: top-k 1 leaves only the best. */
    g_autoptr (AtSampler) s = sampler (2, 1, 0.5f, 0.5f);
    want[0] = 1, want[1] = 0;
    g_assert_true (at_sampler_get_probs (s, l, probs));
    assert_probs (probs, want, "top-k 1");
    g_assert_cmpint (at_sampler_sample (s, l), ==, 0);
  }
}

static void
test_repetition (void)
{
  AtSamplerParams p;
  g_autoptr (AtSampler) s = NULL;
  float l[V] = { 2, -2, 1, 0, 0, 0, 0, 0 }, probs[V];
  double want[V], sum = 0;
  /* After penalty 2 over {0, 1} (0 twice, counted once): 1, -4, 1, 0 ... */
  const double penalised[V] = { 1, -4, 1, 0, 0, 0, 0, 0 };

  at_sampler_params_init (&p);
  p.repeat_penalty = 2;
  p.repeat_window = 3;
  s = at_sampler_new (&p, V);
  at_sampler_accept (s, 0);
  at_sampler_accept (s, 1);
  at_sampler_accept (s, 0);
  for (int i = 0; i < V; i++)
    sum += want[i] = exp (penalised[i]);
  for (int i = 0; i < V; i++)
    want[i] /= sum;
  g_assert_true (at_sampler_get_probs (s, l, probs));
  assert_probs (probs, want, "penalty");

  /* The window holds the last 3: 1, 0, 5 after accepting 5 — then 0, 5, 6: 1 leaves it. */
  at_sampler_accept (s, 5);
  at_sampler_accept (s, 6);
  sum = 0;
  {
    const double pen2[V] = { 1, -2, 1, 0, 0, 0, 0, 0 };
    for (int i = 0; i < V; i++)
      sum += want[i] = exp (pen2[i]);
  }
  for (int i = 0; i < V; i++)
    want[i] /= sum;
  g_assert_true (at_sampler_get_probs (s, l, probs));
  assert_probs (probs, want, "penalty window");
  at_sampler_reset (s);
  g_assert_true (at_sampler_get_probs (s, l, probs));
  g_assert_cmpfloat (probs[0], >, probs[2]); /* no penalty left */
}

/* Draw frequencies within 5 standard deviations of the distribution. */
static void
test_frequencies (void)
{
  g_autoptr (AtSampler) s = sampler (1, 5, 0.99f, 0);
  float l[V], probs[V];
  int counts[V] = { 0 };
  const int n = 40000;

  halving_logits (l);
  g_assert_true (at_sampler_get_probs (s, l, probs));
  for (int i = 0; i < n; i++)
    {
      gint32 t = at_sampler_sample (s, l);
      g_assert_true (t >= 0 && t < V);
      counts[t]++;
    }
  for (int i = 0; i < V; i++)
    {
      double expect = n * probs[i], sd = sqrt (n * probs[i] * (1 - probs[i]));
      if (probs[i] == 0)
        g_assert_cmpint (counts[i], ==, 0);
      else if (fabs (counts[i] - expect) > 5 * sd)
        g_error ("token %d drawn %d times, expected %.0f +- %.0f", i, counts[i], expect, sd);
    }
}

static void
test_seed (void)
{
  AtSamplerParams p;
  g_autoptr (AtSampler) a = NULL, b = NULL, c = NULL;
  float l[V];
  gint32 first[64];
  gboolean differs = FALSE;

  halving_logits (l);
  at_sampler_params_init (&p);
  p.seed = 42;
  a = at_sampler_new (&p, V);
  b = at_sampler_new (&p, V);
  p.seed = 43;
  c = at_sampler_new (&p, V);
  for (int i = 0; i < 64; i++)
    {
      first[i] = at_sampler_sample (a, l);
      g_assert_cmpint (first[i], ==, at_sampler_sample (b, l));
      differs |= first[i] != at_sampler_sample (c, l);
    }
  g_assert_true (differs);
  at_sampler_reset (a);
  for (int i = 0; i < 64; i++)
    g_assert_cmpint (at_sampler_sample (a, l), ==, first[i]);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/text/sampler/greedy", test_greedy);
  g_test_add_func ("/text/sampler/temperature", test_temperature);
  g_test_add_func ("/text/sampler/top-k-p-min-p", test_top_k_p_min_p);
  g_test_add_func ("/text/sampler/repetition", test_repetition);
  g_test_add_func ("/text/sampler/frequencies", test_frequencies);
  g_test_add_func ("/text/sampler/seed", test_seed);
  return g_test_run ();
}
