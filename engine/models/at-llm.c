/* at-llm.c: decoder-only transformers (llama, qwen2, phi3, gemma, gemma2) from GGUF on the
 * engine's graph.
 *
 * KV cache: per layer one K and one V buffer, [n_ctx, kv_heads, head_dim] f16 (or f32, as the
 * caller asks), bound into the graphs as weights. The graph for n new tokens writes their
 * roped keys and values into the cache at the position (the fused RoPE pass, or
 * at_write_rows; both read the position at run time and round to the cache's dtype), then attends
 * over the cache, causally: the run-time kv_len (the position after the new rows, padding
 * included) hides the rows not yet written, and query i of n sees the rows up to kv_len - n + i,
 * its own position. A graph sees only a prefix of the cache, MIN_CACHE_VIEW rows doubled until it
 * covers the new rows (one decode graph per such length, compiled when first needed), so
 * attention reads at most twice the rows in use. Prompt graphs are padded to a power of two:
 * the padding rows are written past the real ones, where the next tokens overwrite them before
 * anything reads them (and rows past the context are dropped).
 * ATELIER_LLM_CACHE_VIEW=<rows> sets that first length (tests use a small one to cross several).
 * Where their dtypes agree, q, k, v (and qwen2's biases) are uploaded stacked as one matrix and
 * gate, up as another (phi-3's own layout): fewer, fuller matrix-vector products per token
 * (ATELIER_LLM_STACK=0 turns that off, for tests).
 * Longer prompts run in chunks of MAX_BATCH tokens (ATELIER_LLM_BATCH=<n> for tests), which bounds
 * the activations; near the end of the context a chunk is cut to a power of two so that its
 * padding stays inside the context (the causal limit counts from kv_len, which the padding
 * rows must not push past the cache).
 * Gemma 2's even layers attend over a sliding window of the last n_swa positions (the attention
 * kernels take the window). Its every cache row is still kept (the odd layers see them all).
 */
#include "models/at-llm.h"

#include <math.h>
#include <string.h>

#include "at-error.h"
#include "at-ops-attention.h"
#include "at-ops-elementwise.h"
#include "at-ops-matmul.h"
#include "at-ops-norm.h"
#include "at-ops-rows.h"
#include "at-ops-conv.h"

#define MAX_CTX (1u << 20)
#define MAX_LAYERS 1024
#define N_PROMPT_GRAPHS 8
#define MIN_CACHE_VIEW 64
#define MAX_BATCH 256
#define MAX_DECODE_GRAPHS 16

typedef enum
{
  ARCH_LLAMA,
  ARCH_QWEN2,
  ARCH_PHI3,
  ARCH_GEMMA,
  ARCH_GEMMA2,
} Arch;

static const char *const arch_names[] = { "llama", "qwen2", "phi3", "gemma", "gemma2" };

/* One uploaded weight. */
typedef struct
{
  AtBuffer *buffer;
  AtDtype dtype;
  int ndim;
  gint64 shape[AT_MAX_DIMS];
  char name[64];
} Weight;

typedef struct
{
  Weight attn_norm, ffn_norm;
  Weight post_attn_norm, post_ffn_norm; /* gemma2: on each block's output, before the residual */
  Weight q, k, v, qkv, q_b, k_b, v_b, qkv_b, o;
  Weight gate, up, down;
  AtBuffer *k_cache, *v_cache;
} Layer;

/* A compiled graph for `n` new tokens seeing the first `cache_len` cache rows. */
typedef struct
{
  guint n, cache_len;
  AtGraph *graph;
  AtTensor *tokens, *positions, *kv_len, *logits;
  AtTensor *last;            /* prompt graphs: i32 [1], the row whose logits are wanted */
  guint64 last_use;
} Step;

struct _AtLlm
{
  AtDevice *device;
  Arch arch;
  guint n_layer, dim, ffn, n_head, n_kv, head_dim, n_rot, n_vocab, n_ctx;
  AtDtype kv_dtype; /* the KV cache's: f16 or f32 */
  float eps, rope_base, freq_scale;
  float attn_scale;                 /* the scores' scale, usually 1 / sqrt (head_dim) */
  float attn_softcap, final_softcap; /* gemma2; 0: none */
  guint n_swa;                      /* gemma2's sliding window on even layers; 0: none */
  gboolean tied;
  Weight token_embd, output_norm, output, rope_freqs;
  gboolean has_rope_freqs;
  Layer *layers;

  guint pos;
  guint min_cache_view;
  guint max_batch;
  Step *decode[MAX_DECODE_GRAPHS];
  Step *prompts[N_PROMPT_GRAPHS];
  guint64 clock;
};

static void
weight_clear (Weight *w)
{
  g_clear_pointer (&w->buffer, at_buffer_unref);
}

#define N_LAYER_WEIGHTS 16

/* Every weight of a layer, uploaded or not (for freeing and counting them). */
static void
layer_weights (Layer *L, Weight *ws[N_LAYER_WEIGHTS])
{
  Weight *all[N_LAYER_WEIGHTS] = {
    &L->attn_norm, &L->ffn_norm, &L->post_attn_norm, &L->post_ffn_norm,
    &L->q,         &L->k,        &L->v,             &L->qkv,
    &L->q_b,       &L->k_b,      &L->v_b,           &L->qkv_b,
    &L->o,         &L->gate,     &L->up,            &L->down,
  };

  memcpy (ws, all, sizeof all);
}

static void
step_free (Step *s)
{
  if (s == NULL)
    return;
  g_clear_pointer (&s->graph, at_graph_free);
  g_free (s);
}

void
at_llm_free (AtLlm *m)
{
  if (m == NULL)
    return;
  for (int i = 0; i < MAX_DECODE_GRAPHS; i++)
    step_free (m->decode[i]);
  for (int i = 0; i < N_PROMPT_GRAPHS; i++)
    step_free (m->prompts[i]);
  for (guint l = 0; m->layers != NULL && l < m->n_layer; l++)
    {
      Layer *L = &m->layers[l];
      Weight *ws[N_LAYER_WEIGHTS];

      layer_weights (L, ws);
      for (guint i = 0; i < N_LAYER_WEIGHTS; i++)
        weight_clear (ws[i]);
      g_clear_pointer (&L->k_cache, at_buffer_unref);
      g_clear_pointer (&L->v_cache, at_buffer_unref);
    }
  g_free (m->layers);
  weight_clear (&m->token_embd);
  weight_clear (&m->output_norm);
  weight_clear (&m->output);
  weight_clear (&m->rope_freqs);
  g_free (m);
}

/* ---- loading ------------------------------------------------------------------------------ */

static gboolean
get_uint (AtGguf *gguf, const char *arch, const char *suffix, gboolean required, guint def,
          guint max, guint *out, GError **error)
{
  g_autofree char *key = g_strconcat (arch, ".", suffix, NULL);
  gint64 v;

  if (at_gguf_find_kv (gguf, key) == NULL && !required)
    {
      *out = def;
      return TRUE;
    }
  if (!at_gguf_get_int (gguf, key, &v, error))
    return FALSE;
  if (v < 1 || v > (gint64) max)
    {
      at_file_error (error, at_gguf_get_file_name (gguf),
                     "%s is %" G_GINT64_FORMAT ", outside [1, %u]", key, v, max);
      return FALSE;
    }
  *out = (guint) v;
  return TRUE;
}

static gboolean
get_float (AtGguf *gguf, const char *arch, const char *suffix, gboolean required, double def,
           double *out, GError **error)
{
  g_autofree char *key = g_strconcat (arch, ".", suffix, NULL);

  if (at_gguf_find_kv (gguf, key) == NULL && !required)
    {
      *out = def;
      return TRUE;
    }
  if (!at_gguf_get_float (gguf, key, out, error))
    return FALSE;
  if (!isfinite (*out))
    {
      at_file_error (error, at_gguf_get_file_name (gguf), "%s is not a finite number", key);
      return FALSE;
    }
  return TRUE;
}

static gboolean
is_matmul_dtype (AtDtype d)
{
  return d != AT_DTYPE_I32 && d < AT_N_DTYPES;
}

/* Finds `name`, checks its shape (ndim entries; 0 in `shape` accepts any size and receives
 * it) and dtype, and uploads it. A missing optional tensor leaves w->buffer NULL. */
static gboolean
load_weight (AtLlm *m, AtGguf *gguf, const char *name, int ndim, gint64 *shape, gboolean matrix,
             gboolean optional, Weight *w, GError **error)
{
  AtTensorSet *set = at_gguf_get_tensors (gguf);
  const char *file = at_gguf_get_file_name (gguf);
  const AtTensorEntry *e = at_tensor_set_find (set, name);
  AtDtype dtype;
  gboolean ok = (e != NULL && e->ndim == ndim);

  if (e == NULL)
    {
      if (optional)
        return TRUE;
      at_file_error (error, file, "tensor %s is missing", name);
      return FALSE;
    }
  for (int i = 0; ok && i < ndim; i++)
    ok = (shape[i] == 0 || shape[i] == e->shape[i]);
  if (!ok)
    {
      GString *want = g_string_new ("[");
      GString *got = g_string_new ("[");
      for (int i = 0; i < ndim; i++)
        g_string_append_printf (want, i ? ", %" G_GINT64_FORMAT : "%" G_GINT64_FORMAT, shape[i]);
      for (int i = 0; i < e->ndim; i++)
        g_string_append_printf (got, i ? ", %" G_GINT64_FORMAT : "%" G_GINT64_FORMAT, e->shape[i]);
      at_file_error (error, file, "tensor %s has shape %s], expected %s] (0: any)", name, got->str,
                     want->str);
      g_string_free (want, TRUE);
      g_string_free (got, TRUE);
      return FALSE;
    }
  dtype = at_file_dtype_upload_dtype (e->dtype);
  if (matrix ? !is_matmul_dtype (dtype) : (dtype != AT_DTYPE_F32 && dtype != AT_DTYPE_F16))
    {
      at_file_error_code (error, AT_ERROR_UNSUPPORTED, file, "tensor %s has dtype %s, which %s",
                          name, at_file_dtype_name (e->dtype),
                          matrix ? "the engine cannot multiply by"
                                 : "a norm or bias cannot be (f32 or f16 only)");
      return FALSE;
    }
  w->buffer = at_buffer_new (m->device, MAX (at_tensor_entry_upload_size (e), 16), AT_BUFFER_DEVICE,
                             name, error);
  if (w->buffer == NULL || !at_tensor_set_upload (set, e, w->buffer, 0, error))
    return FALSE;
  w->dtype = dtype;
  w->ndim = ndim;
  for (int i = 0; i < ndim; i++)
    shape[i] = w->shape[i] = e->shape[i];
  g_strlcpy (w->name, name, sizeof w->name);
  return TRUE;
}

static gboolean
load_layer_weight (AtLlm *m, AtGguf *gguf, guint l, const char *what, gint64 d0, gint64 d1,
                   gboolean optional, Weight *w, GError **error)
{
  char name[64];
  gint64 shape[2] = { d0, d1 };
  gboolean matrix = (d1 != 0);

  g_snprintf (name, sizeof name, "blk.%u.%s", l, what);
  return load_weight (m, gguf, name, matrix ? 2 : 1, shape, matrix, optional, w, error);
}

/* Layer l's matrices `whats` ([rows[i], dim] each; vectors [rows[i]] with dim 0) as one weight
 * of their rows stacked, when they share a dtype: one matrix-vector product instead of several
 * (a dispatch costs ~26 us on lavapipe, and a short matrix leaves lanes idle). FALSE without
 * an error when they cannot be stacked (mixed dtypes, a shape to be checked by the separate
 * load) or one is missing. */
static gboolean
load_stacked (AtLlm *m, AtGguf *gguf, guint l, const char *const *whats, const gint64 *rows, guint n,
              gint64 dim, Weight *w, GError **error)
{
  AtTensorSet *set = at_gguf_get_tensors (gguf);
  const AtTensorEntry *e[3];
  gsize size = 0, at = 0;
  gint64 total = 0;

  g_assert (n <= G_N_ELEMENTS (e));
  for (guint i = 0; i < n; i++)
    {
      char name[64];
      AtDtype t;

      g_snprintf (name, sizeof name, "blk.%u.%s", l, whats[i]);
      e[i] = at_tensor_set_find (set, name);
      t = e[i] != NULL ? at_file_dtype_upload_dtype (e[i]->dtype) : AT_DTYPE_F32;
      if (e[i] == NULL || e[i]->ndim != (dim > 0 ? 2 : 1) || e[i]->shape[0] != rows[i]
          || (dim > 0 && e[i]->shape[1] != dim) || e[i]->dtype != e[0]->dtype
          || (dim > 0 ? !is_matmul_dtype (t) : (t != AT_DTYPE_F32 && t != AT_DTYPE_F16))
          || at_tensor_entry_upload_size (e[i])
               != at_dtype_row_bytes (t, dim > 0 ? dim : rows[i]) * (gsize) (dim > 0 ? rows[i] : 1))
        return FALSE;
      size += at_tensor_entry_upload_size (e[i]);
      total += rows[i];
    }
  g_snprintf (w->name, sizeof w->name, "blk.%u.%s+%u", l, whats[0], n - 1);
  w->buffer = at_buffer_new (m->device, MAX (size, 16), AT_BUFFER_DEVICE, w->name, error);
  if (w->buffer == NULL)
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      if (!at_tensor_set_upload (set, e[i], w->buffer, at, error))
        return FALSE;
      at += at_tensor_entry_upload_size (e[i]);
    }
  w->dtype = at_file_dtype_upload_dtype (e[0]->dtype);
  w->ndim = dim > 0 ? 2 : 1;
  w->shape[0] = total;
  w->shape[1] = dim;
  return TRUE;
}

static gboolean
load_hparams (AtLlm *m, AtGguf *gguf, GError **error)
{
  const char *file = at_gguf_get_file_name (gguf);
  const char *a = arch_names[m->arch];
  guint key_len, value_len;
  double eps, base, factor;
  g_autofree char *scaling_key = g_strconcat (a, ".rope.scaling.type", NULL);

  if (!get_uint (gguf, a, "block_count", TRUE, 0, MAX_LAYERS, &m->n_layer, error)
      || !get_uint (gguf, a, "embedding_length", TRUE, 0, 1 << 16, &m->dim, error)
      || !get_uint (gguf, a, "feed_forward_length", TRUE, 0, 1 << 18, &m->ffn, error)
      || !get_uint (gguf, a, "attention.head_count", TRUE, 0, 1024, &m->n_head, error)
      || !get_uint (gguf, a, "attention.head_count_kv", FALSE, m->n_head, 1024, &m->n_kv, error)
      || !get_float (gguf, a, "attention.layer_norm_rms_epsilon", TRUE, 0, &eps, error)
      || !get_float (gguf, a, "rope.freq_base", FALSE, 10000.0, &base, error))
    return FALSE;
  if (m->dim % m->n_head != 0)
    {
      at_file_error (error, file,
                     "%s.embedding_length %u is not a multiple of %s.attention.head_count %u", a,
                     m->dim, a, m->n_head);
      return FALSE;
    }
  if (!get_uint (gguf, a, "attention.key_length", FALSE, m->dim / m->n_head, 1024, &key_len, error)
      || !get_uint (gguf, a, "attention.value_length", FALSE, key_len, 1024, &value_len, error))
    return FALSE;
  if (key_len != value_len)
    {
      at_file_error_code (error, AT_ERROR_UNSUPPORTED, file,
                          "%s.attention.key_length %u differs from value_length %u", a, key_len,
                          value_len);
      return FALSE;
    }
  m->head_dim = key_len;
  if (m->head_dim > AT_ATTENTION_MAX_D || m->head_dim % 2 != 0)
    {
      at_file_error_code (error, AT_ERROR_UNSUPPORTED, file,
                          "head size %u (even, at most %d supported)", m->head_dim,
                          AT_ATTENTION_MAX_D);
      return FALSE;
    }
  if (m->n_head % m->n_kv != 0)
    {
      at_file_error (error, file,
                     "%s.attention.head_count %u is not a multiple of head_count_kv %u", a,
                     m->n_head, m->n_kv);
      return FALSE;
    }
  if (!get_uint (gguf, a, "rope.dimension_count", FALSE, m->head_dim, 1024, &m->n_rot, error))
    return FALSE;
  if (m->n_rot > m->head_dim || m->n_rot % 2 != 0)
    {
      at_file_error (error, file,
                     "%s.rope.dimension_count %u must be even and at most the head size %u", a,
                     m->n_rot, m->head_dim);
      return FALSE;
    }
  if (!(eps > 0 && eps < 1) || !(base > 0))
    {
      at_file_error (error, file, "bad rms epsilon %g or rope base %g", eps, base);
      return FALSE;
    }
  m->eps = (float) eps;
  m->rope_base = (float) base;
  m->freq_scale = 1.0f;
  m->attn_scale = 1.0f / sqrtf ((float) m->head_dim);
  if (m->arch == ARCH_GEMMA2)
    {
      /* Soft caps and the window, with the defaults of the released models where a file lacks
       * them. The 27B model (46 layers) scales its queries by dim / heads, not the head size;
       * its files do not say so, so the layer count tells, as llama.cpp has it. */
      double attn_cap, final_cap;
      guint swa;

      if (!get_float (gguf, a, "attn_logit_softcapping", FALSE, 50.0, &attn_cap, error)
          || !get_float (gguf, a, "final_logit_softcapping", FALSE, 30.0, &final_cap, error)
          || !get_uint (gguf, a, "attention.sliding_window", FALSE, 4096, G_MAXINT32, &swa, error))
        return FALSE;
      if (!(attn_cap >= 0 && attn_cap < 1e30) || !(final_cap >= 0 && final_cap < 1e30))
        {
          at_file_error (error, file, "bad soft-capping %g (attention) or %g (final logits)",
                         attn_cap, final_cap);
          return FALSE;
        }
      m->attn_softcap = (float) attn_cap;
      m->final_softcap = (float) final_cap;
      m->n_swa = swa;
      if (m->n_layer == 46)
        m->attn_scale = 1.0f / sqrtf ((float) (m->dim / m->n_head));
    }
  if (at_gguf_find_kv (gguf, scaling_key) != NULL)
    {
      g_autofree char *type = at_gguf_dup_string (gguf, scaling_key, error);
      if (type == NULL)
        return FALSE;
      if (g_str_equal (type, "linear"))
        {
          if (!get_float (gguf, a, "rope.scaling.factor", TRUE, 1, &factor, error))
            return FALSE;
          if (!(factor >= 1e-3 && factor <= 1e3))
            {
              at_file_error (error, file, "%s.rope.scaling.factor %g is out of range", a, factor);
              return FALSE;
            }
          m->freq_scale = (float) (1.0 / factor);
        }
      else if (!g_str_equal (type, "none"))
        {
          at_file_error_code (error, AT_ERROR_UNSUPPORTED, file,
                              "rope scaling \"%s\" is not supported", type);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
load_weights (AtLlm *m, AtGguf *gguf, GError **error)
{
  const char *file = at_gguf_get_file_name (gguf);
  gint64 dim = m->dim, ffn = m->ffn, qd = (gint64) m->n_head * m->head_dim;
  gint64 kvd = (gint64) m->n_kv * m->head_dim;
  gint64 emb_shape[2] = { 0, dim }, norm_shape[1] = { dim }, out_shape[2];
  gint64 freq_shape[1] = { m->n_rot / 2 };
  g_autofree char *vocab_key = g_strconcat (arch_names[m->arch], ".vocab_size", NULL);
  gint64 vocab;
  gboolean stack;

  if (!load_weight (m, gguf, "token_embd.weight", 2, emb_shape, TRUE, FALSE, &m->token_embd, error))
    return FALSE;
  if (emb_shape[0] < 1 || emb_shape[0] > G_MAXINT32)
    {
      at_file_error (error, file, "token_embd.weight has %" G_GINT64_FORMAT " rows", emb_shape[0]);
      return FALSE;
    }
  m->n_vocab = (guint) emb_shape[0];
  if (at_gguf_find_kv (gguf, vocab_key) != NULL)
    {
      if (!at_gguf_get_int (gguf, vocab_key, &vocab, error))
        return FALSE;
      if (vocab != m->n_vocab)
        {
          at_file_error (error, file,
                         "%s is %" G_GINT64_FORMAT " but token_embd.weight has %u rows", vocab_key,
                         vocab, m->n_vocab);
          return FALSE;
        }
    }
  out_shape[0] = m->n_vocab;
  out_shape[1] = dim;
  if (!load_weight (m, gguf, "output_norm.weight", 1, norm_shape, FALSE, FALSE, &m->output_norm,
                    error)
      || !load_weight (m, gguf, "output.weight", 2, out_shape, TRUE, TRUE, &m->output, error)
      || !load_weight (m, gguf, "rope_freqs.weight", 1, freq_shape, FALSE, TRUE, &m->rope_freqs,
                       error))
    return FALSE;
  m->tied = (m->output.buffer == NULL);
  m->has_rope_freqs = (m->rope_freqs.buffer != NULL);
  if (m->has_rope_freqs && m->rope_freqs.dtype != AT_DTYPE_F32)
    {
      at_file_error_code (error, AT_ERROR_UNSUPPORTED, file, "rope_freqs.weight must be F32");
      return FALSE;
    }

  /* ATELIER_LLM_STACK=0: never stack (tests run both layouts). */
  stack = g_strcmp0 (g_getenv ("ATELIER_LLM_STACK"), "0") != 0;
  m->layers = g_new0 (Layer, m->n_layer);
  for (guint l = 0; l < m->n_layer; l++)
    {
      Layer *L = &m->layers[l];
      if (!load_layer_weight (m, gguf, l, "attn_norm.weight", dim, 0, FALSE, &L->attn_norm, error)
          || !load_layer_weight (m, gguf, l, "ffn_norm.weight", dim, 0, FALSE, &L->ffn_norm, error)
          || !load_layer_weight (m, gguf, l, "attn_output.weight", dim, qd, FALSE, &L->o, error)
          || !load_layer_weight (m, gguf, l, "ffn_down.weight", dim, ffn, FALSE, &L->down, error))
        return FALSE;
      if (m->arch == ARCH_GEMMA2
          && (!load_layer_weight (m, gguf, l, "post_attention_norm.weight", dim, 0, FALSE,
                                  &L->post_attn_norm, error)
              || !load_layer_weight (m, gguf, l, "post_ffw_norm.weight", dim, 0, FALSE,
                                     &L->post_ffn_norm, error)))
        return FALSE;
      if (m->arch == ARCH_PHI3)
        {
          if (!load_layer_weight (m, gguf, l, "attn_qkv.weight", qd + 2 * kvd, dim, FALSE, &L->qkv,
                                  error)
              || !load_layer_weight (m, gguf, l, "ffn_up.weight", 2 * ffn, dim, FALSE, &L->up,
                                     error))
            return FALSE;
        }
      else
        {
          /* q, k, v stacked as one [qd + 2 kvd, dim] (phi-3's layout) and gate, up as one
           * [2 ffn, dim] where their dtypes agree; otherwise each on its own. */
          static const char *const qkv[] = { "attn_q.weight", "attn_k.weight", "attn_v.weight" };
          static const char *const gate_up[] = { "ffn_gate.weight", "ffn_up.weight" };
          static const char *const qkv_bias[] = { "attn_q.bias", "attn_k.bias", "attn_v.bias" };
          const gint64 qkv_rows[] = { qd, kvd, kvd }, gu_rows[] = { ffn, ffn };
          GError *local = NULL;

          /* qwen2's biases are stacked alike, or nothing is. */
          if (stack
              && (m->arch != ARCH_QWEN2
                  || load_stacked (m, gguf, l, qkv_bias, qkv_rows, 3, 0, &L->qkv_b, &local))
              && local == NULL)
            load_stacked (m, gguf, l, qkv, qkv_rows, 3, dim, &L->qkv, &local);
          if (local != NULL)
            {
              g_propagate_error (error, local);
              return FALSE;
            }
          if (L->qkv.buffer == NULL)
            {
              g_clear_pointer (&L->qkv_b.buffer, at_buffer_unref);
              if (!load_layer_weight (m, gguf, l, "attn_q.weight", qd, dim, FALSE, &L->q, error)
                  || !load_layer_weight (m, gguf, l, "attn_k.weight", kvd, dim, FALSE, &L->k, error)
                  || !load_layer_weight (m, gguf, l, "attn_v.weight", kvd, dim, FALSE, &L->v, error))
                return FALSE;
            }
          if (!stack || !load_stacked (m, gguf, l, gate_up, gu_rows, 2, dim, &L->up, &local))
            {
              if (local != NULL)
                {
                  g_propagate_error (error, local);
                  return FALSE;
                }
              if (!load_layer_weight (m, gguf, l, "ffn_gate.weight", ffn, dim, FALSE, &L->gate,
                                      error)
                  || !load_layer_weight (m, gguf, l, "ffn_up.weight", ffn, dim, FALSE, &L->up, error))
                return FALSE;
            }
        }
      if (m->arch == ARCH_QWEN2 && L->qkv_b.buffer == NULL
          && (!load_layer_weight (m, gguf, l, "attn_q.bias", qd, 0, FALSE, &L->q_b, error)
              || !load_layer_weight (m, gguf, l, "attn_k.bias", kvd, 0, FALSE, &L->k_b, error)
              || !load_layer_weight (m, gguf, l, "attn_v.bias", kvd, 0, FALSE, &L->v_b, error)))
        return FALSE;
    }
  return TRUE;
}

AtLlm *
at_llm_new (AtDevice *device, AtGguf *gguf, guint n_ctx, AtDtype kv_dtype, GError **error)
{
  g_autoptr (AtLlm) m = NULL;
  const char *file;
  g_autofree char *arch = NULL;
  gsize cache_bytes;
  int a;

  g_return_val_if_fail (device != NULL && gguf != NULL, NULL);
  g_return_val_if_fail (kv_dtype == AT_DTYPE_F16 || kv_dtype == AT_DTYPE_F32, NULL);
  file = at_gguf_get_file_name (gguf);
  if (n_ctx < 1 || n_ctx > MAX_CTX)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "n_ctx %u is outside [1, %u]", n_ctx,
                   MAX_CTX);
      return NULL;
    }
  if ((arch = at_gguf_dup_string (gguf, "general.architecture", error)) == NULL)
    return NULL;
  for (a = 0; a < (int) G_N_ELEMENTS (arch_names); a++)
    if (g_str_equal (arch, arch_names[a]))
      break;
  if (a == G_N_ELEMENTS (arch_names))
    {
      g_autofree char *shown = g_utf8_make_valid (arch, -1);
      at_file_error_code (error, AT_ERROR_UNSUPPORTED, file,
                          "architecture \"%s\" is not supported (llama, qwen2, phi3, gemma, gemma2)",
                          shown);
      return NULL;
    }
  m = g_new0 (AtLlm, 1);
  m->device = device;
  m->arch = (Arch) a;
  m->n_ctx = n_ctx;
  /* Writing halves needs 16-bit storage buffers (every desktop GPU and lavapipe have them). */
  m->kv_dtype = at_device_get_info (device)->storage_16bit ? kv_dtype : AT_DTYPE_F32;
  m->min_cache_view = MIN_CACHE_VIEW;
  m->max_batch = MAX_BATCH;
  if (g_getenv ("ATELIER_LLM_BATCH") != NULL)
    m->max_batch = CLAMP (g_ascii_strtoull (g_getenv ("ATELIER_LLM_BATCH"), NULL, 10), 1, MAX_CTX);
  if (g_getenv ("ATELIER_LLM_CACHE_VIEW") != NULL)
    m->min_cache_view
      = CLAMP (g_ascii_strtoull (g_getenv ("ATELIER_LLM_CACHE_VIEW"), NULL, 10), 1, MAX_CTX);
  if (!load_hparams (m, gguf, error) || !load_weights (m, gguf, error))
    return NULL;

  cache_bytes = at_dtype_row_bytes (m->kv_dtype, (gint64) n_ctx * m->n_kv * m->head_dim);
  for (guint l = 0; l < m->n_layer; l++)
    {
      Layer *L = &m->layers[l];
      L->k_cache = at_buffer_new (device, cache_bytes, AT_BUFFER_DEVICE, "k cache", error);
      if (L->k_cache == NULL)
        return NULL;
      L->v_cache = at_buffer_new (device, cache_bytes, AT_BUFFER_DEVICE, "v cache", error);
      if (L->v_cache == NULL
          || !at_buffer_fill (L->k_cache, 0, cache_bytes, 0, error)
          || !at_buffer_fill (L->v_cache, 0, cache_bytes, 0, error))
        return NULL;
    }
  return g_steal_pointer (&m);
}

/* ---- graphs ------------------------------------------------------------------------------- */

static AtTensor *
weight_tensor (AtGraph *g, const Weight *w)
{
  return at_graph_weight (g, w->name, w->dtype, w->ndim, w->shape, w->buffer, 0);
}

/* x [n, d] -> its rows as [n, heads, head_dim] (a contiguous tensor or a strided view). */
static AtTensor *
heads_view (AtGraph *g, AtTensor *x, guint n, guint heads, guint hd, gint64 row_stride,
            gint64 offset)
{
  const gint64 shape[] = { n, heads, hd }, stride[] = { row_stride, hd, 1 };
  return at_view (g, x, 3, shape, stride, offset);
}

/* x + h w^T, the residual of a block's output h w^T: in one dispatch (at_matmul_add), or, where
 * the layer norms the block's output first (gemma2's `post`), through that norm. */
static AtTensor *
add_block_output (AtLlm *m, AtGraph *g, AtTensor *x, AtTensor *h, const Weight *w, const Weight *post)
{
  if (post->buffer == NULL)
    return at_matmul_add (g, h, weight_tensor (g, w), x);
  return at_add (g, x, at_rms_norm (g, at_matmul (g, h, weight_tensor (g, w)), weight_tensor (g, post),
                                    m->eps));
}

static Step *
build_step (AtLlm *m, guint n, guint cache_len, GError **error)
{
  Step *s = g_new0 (Step, 1);
  AtGraph *g;
  AtTensor *x, *freqs = NULL, *out_w;
  const gint64 n1[] = { n }, one[] = { 1 };
  const gint64 cache_shape[] = { cache_len, m->n_kv, m->head_dim };
  gint64 qd = (gint64) m->n_head * m->head_dim, kvd = (gint64) m->n_kv * m->head_dim;
  AtRopeMode mode = (m->arch == ARCH_LLAMA ? AT_ROPE_NORMAL : AT_ROPE_NEOX);
  gboolean gemma = (m->arch == ARCH_GEMMA || m->arch == ARCH_GEMMA2);
  AtAttentionParams ap = { m->attn_scale, TRUE, 0, m->attn_softcap, 0 };
  /* gemma2's sliding-window layers. */
  AtAttentionParams ap_swa = { m->attn_scale, TRUE, 0, m->attn_softcap, (int) m->n_swa };

  s->n = n;
  s->cache_len = cache_len;
  s->graph = g = at_graph_new (m->device);
  s->tokens = at_graph_input (g, "tokens", AT_DTYPE_I32, 1, n1);
  s->positions = at_graph_input (g, "positions", AT_DTYPE_I32, 1, n1);
  s->kv_len = at_graph_input (g, "kv_len", AT_DTYPE_I32, 1, one);
  if (m->has_rope_freqs)
    freqs = weight_tensor (g, &m->rope_freqs);

  x = at_get_rows (g, weight_tensor (g, &m->token_embd), s->tokens);
  /* Gemma scales its embeddings by sqrt(dim) (its norm weights are stored with the 1 that
   * its RMS norm adds already folded in by the converters, so the norms are llama's). */
  if (gemma)
    x = at_scale (g, x, sqrtf ((float) m->dim));
  for (guint l = 0; l < m->n_layer; l++)
    {
      Layer *L = &m->layers[l];
      AtTensor *an, *fn, *q, *k, *v, *kc, *vc, *att, *ff;
      gboolean swa = (m->n_swa > 0 && l % 2 == 0); /* gemma2: even layers slide */

      /* Each projection after a norm takes it as at_matmul_rms: one dispatch where the
       * matrix-vector kernel can normalise its input itself (token generation on a CPU). */
      an = weight_tensor (g, &L->attn_norm);
      kc = at_graph_weight (g, "k cache", m->kv_dtype, 3, cache_shape, L->k_cache, 0);
      vc = at_graph_weight (g, "v cache", m->kv_dtype, 3, cache_shape, L->v_cache, 0);
      if (L->qkv.buffer != NULL)
        {
          AtTensor *all;

          /* q and k roped over the [n, H + 2 KV, hd] heads, and the new k and v rows written
           * into the caches at their positions: for one token where the product stores its
           * rows (no bias between), else one pass after it. */
          if (n == 1 && m->arch != ARCH_QWEN2)
            all = at_matmul_rope_cache (g, x, an, m->eps, weight_tensor (g, &L->qkv), s->positions,
                                        m->n_rot, m->rope_base, m->freq_scale, mode, freqs,
                                        (int) m->n_head, kc, vc);
          else
            {
              /* [n, qd + 2 kvd] */
              AtTensor *qkv = at_matmul_rms (g, x, an, m->eps, weight_tensor (g, &L->qkv));

              if (m->arch == ARCH_QWEN2)
                qkv = at_add (g, qkv, weight_tensor (g, &L->qkv_b));
              all = at_rope_cache (g, heads_view (g, qkv, n, m->n_head + 2 * m->n_kv, m->head_dim,
                                                  qd + 2 * kvd, 0),
                                   s->positions, m->n_rot, m->rope_base, m->freq_scale, mode, freqs,
                                   (int) m->n_head, kc, vc);
            }
          q = heads_view (g, all, n, m->n_head, m->head_dim, qd + 2 * kvd, 0);
          k = at_transpose (g, kc, 0, 1); /* [cache_len, kv, hd] -> [kv, cache_len, hd] */
          v = at_transpose (g, vc, 0, 1);
        }
      else
        {
          /* Separate q, k, v (their dtypes differ): the norm inside each product where all
           * three can take it, else one norm for the three. */
          AtTensor *wq = weight_tensor (g, &L->q), *wk = weight_tensor (g, &L->k);
          AtTensor *wv = weight_tensor (g, &L->v);

          if (at_matmul_fuses (g, x, wq) && at_matmul_fuses (g, x, wk) && at_matmul_fuses (g, x, wv))
            {
              q = at_matmul_rms (g, x, an, m->eps, wq);
              k = at_matmul_rms (g, x, an, m->eps, wk);
              v = at_matmul_rms (g, x, an, m->eps, wv);
            }
          else
            {
              AtTensor *h = at_rms_norm (g, x, an, m->eps);

              q = at_matmul (g, h, wq);
              k = at_matmul (g, h, wk);
              v = at_matmul (g, h, wv);
            }
          if (m->arch == ARCH_QWEN2)
            {
              q = at_add (g, q, weight_tensor (g, &L->q_b));
              k = at_add (g, k, weight_tensor (g, &L->k_b));
              v = at_add (g, v, weight_tensor (g, &L->v_b));
            }
          q = heads_view (g, q, n, m->n_head, m->head_dim, qd, 0);
          k = heads_view (g, k, n, m->n_kv, m->head_dim, kvd, 0);
          v = heads_view (g, v, n, m->n_kv, m->head_dim, kvd, 0);
          q = at_rope (g, q, s->positions, m->n_rot, m->rope_base, m->freq_scale, mode, freqs);
          k = at_rope (g, k, s->positions, m->n_rot, m->rope_base, m->freq_scale, mode, freqs);
          /* The new rows go into the cache at positions[0]; then [cache_len, kv, hd] ->
           * [kv, cache_len, hd] views. */
          k = at_transpose (g, at_write_rows (g, kc, k, s->positions), 0, 1);
          v = at_transpose (g, at_write_rows (g, vc, v, s->positions), 0, 1);
        }
      /* q [n, H, hd] -> [H, n, hd]. */
      att = at_attention (g, at_transpose (g, q, 0, 1), k, v, NULL, s->kv_len, swa ? &ap_swa : &ap);
      att = at_reshape (g, att, 2, (gint64[]){ n, qd });
      x = add_block_output (m, g, x, att, &L->o, &L->post_attn_norm);

      fn = weight_tensor (g, &L->ffn_norm);
      if (gemma)
        {
          /* GELU (tanh form) of the gate times up, then the down projection and the residual
           * (gemma2 norms the block's output first). */
          if (L->gate.buffer == NULL) /* stacked [2 ffn, dim], gate rows first */
            ff = at_glu (g, at_matmul_rms (g, x, fn, m->eps, weight_tensor (g, &L->up)), AT_GLU_GELU_TANH);
          else
            {
              AtTensor *h = at_rms_norm (g, x, fn, m->eps);

              ff = at_glu_pair (g, at_matmul (g, h, weight_tensor (g, &L->gate)),
                                at_matmul (g, h, weight_tensor (g, &L->up)), AT_GLU_GELU_TANH);
            }
          x = add_block_output (m, g, x, ff, &L->down, &L->post_ffn_norm);
        }
      /* SwiGLU, the down projection and the residual: one dispatch where the rows kernel
       * takes it (gate and up stacked, phi-3's own layout), else glu and the product. */
      else if (L->gate.buffer == NULL)
        x = at_matmul_swiglu (g, at_matmul_rms (g, x, fn, m->eps, weight_tensor (g, &L->up)),
                              weight_tensor (g, &L->down), x);
      else
        {
          AtTensor *wg = weight_tensor (g, &L->gate), *wu = weight_tensor (g, &L->up);

          if (at_matmul_fuses (g, x, wg) && at_matmul_fuses (g, x, wu))
            ff = at_swiglu (g, at_matmul_rms (g, x, fn, m->eps, wg), at_matmul_rms (g, x, fn, m->eps, wu));
          else
            {
              AtTensor *h = at_rms_norm (g, x, fn, m->eps);
              ff = at_swiglu (g, at_matmul (g, h, wg), at_matmul (g, h, wu));
            }
          x = add_block_output (m, g, x, ff, &L->down, &L->post_ffn_norm);
        }
    }
  /* Only the last position's logits. */
  /* Only the last real token's logits (prompt graphs may be padded). */
  if (n > 1)
    {
      s->last = at_graph_input (g, "last", AT_DTYPE_I32, 1, one);
      x = at_get_rows (g, x, s->last);
    }
  out_w = weight_tensor (g, m->tied ? &m->token_embd : &m->output);
  s->logits = at_matmul_rms (g, x, weight_tensor (g, &m->output_norm), m->eps, out_w);
  if (m->final_softcap > 0) /* gemma2: cap * tanh (logits / cap) */
    s->logits = at_scale (g, at_tanh (g, at_scale (g, s->logits, 1.0f / m->final_softcap)),
                          m->final_softcap);
  if (s->logits != NULL)
    at_graph_output (g, s->logits, "logits");
  if (!at_graph_compile (g, error))
    {
      g_prefix_error (error, "%s graph for %u tokens: ", arch_names[m->arch], n);
      step_free (s);
      return NULL;
    }
  return s;
}

/* The rows a graph for n tokens takes: n padded to a power of two. */
static guint
padded_len (guint n)
{
  guint n_pad = 1;

  while (n_pad < n)
    n_pad *= 2;
  return n_pad;
}

/* The graph for `n` tokens at the current position: prompts are padded to a power of two so
 * that a few compiled graphs serve every length. */
static Step *
get_step (AtLlm *m, guint n, GError **error)
{
  Step **slot = NULL;
  guint n_pad = padded_len (n);
  guint cache_len = MIN (m->min_cache_view, m->n_ctx);
  int k = 0;

  /* The view holds the new rows too (those that fit the context). */
  while (cache_len < MIN (m->pos + n_pad, m->n_ctx))
    {
      cache_len = MIN (cache_len * 2, m->n_ctx);
      if (++k == MAX_DECODE_GRAPHS - 1)
        cache_len = m->n_ctx;
    }
  n = n_pad;
  if (n == 1)
    slot = &m->decode[k];
  else
    {
      for (int i = 0; i < N_PROMPT_GRAPHS; i++)
        if (m->prompts[i] != NULL && m->prompts[i]->n == n && m->prompts[i]->cache_len == cache_len)
          slot = &m->prompts[i];
      if (slot == NULL)
        {
          /* An empty slot, or the least recently used. */
          slot = &m->prompts[0];
          for (int i = 0; i < N_PROMPT_GRAPHS; i++)
            {
              if (m->prompts[i] == NULL)
                {
                  slot = &m->prompts[i];
                  break;
                }
              if (m->prompts[i]->last_use < (*slot)->last_use)
                slot = &m->prompts[i];
            }
          g_clear_pointer (slot, step_free);
        }
    }
  if (*slot == NULL && (*slot = build_step (m, n, cache_len, error)) == NULL)
    return NULL;
  (*slot)->last_use = ++m->clock;
  return *slot;
}

/* Runs n <= max_batch checked tokens at m->pos and advances it. */
static gboolean
eval_chunk (AtLlm *m, const gint32 *tokens, guint n, float *logits_last, GError **error)
{
  Step *s;
  g_autofree gint32 *positions = NULL;
  g_autofree gint32 *padded = NULL;
  gint32 one_pos, kv_len, last = (gint32) n - 1;
  guint n_pad;

  if ((s = get_step (m, n, error)) == NULL)
    return FALSE;
  n_pad = s->n;
  /* The queries are the last n_pad of kv_len rows, so each sees the rows up to its own
   * position; the caller keeps pos + n_pad within the context, so the cache view holds them. */
  if (m->pos + n_pad > s->cache_len)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID,
                   "%u tokens padded to %u at %u exceed the %u-row cache view", n, n_pad, m->pos,
                   s->cache_len);
      return FALSE;
    }
  kv_len = (gint32) (m->pos + n_pad);
  if (n == 1)
    {
      one_pos = (gint32) m->pos;
      if (!at_graph_set_input (s->graph, s->positions, &one_pos, sizeof one_pos, error))
        return FALSE;
    }
  else
    {
      /* Padding rows: token 0 at the following positions; no real query sees them (they lie
       * after its own position), and the next tokens overwrite their keys. */
      padded = g_new0 (gint32, n_pad);
      memcpy (padded, tokens, n * sizeof (gint32));
      tokens = padded;
      positions = g_new (gint32, n_pad);
      for (guint i = 0; i < n_pad; i++)
        positions[i] = (gint32) (m->pos + i);
      if (!at_graph_set_input (s->graph, s->positions, positions, n_pad * sizeof (gint32), error)
          || !at_graph_set_input (s->graph, s->last, &last, sizeof last, error))
        return FALSE;
    }
  if (!at_graph_set_input (s->graph, s->kv_len, &kv_len, sizeof kv_len, error))
    return FALSE;
  if (!at_graph_set_input (s->graph, s->tokens, tokens, n_pad * sizeof (gint32), error)
      || !at_graph_run (s->graph, error))
    return FALSE;

  if (logits_last != NULL
      && !at_graph_get_output (s->graph, s->logits, logits_last, (gsize) m->n_vocab * sizeof (float),
                               error))
    return FALSE;
  m->pos += n;
  return TRUE;
}

gboolean
at_llm_eval (AtLlm *m, const gint32 *tokens, guint n, float *logits_last, GError **error)
{
  guint start = m->pos;

  g_return_val_if_fail (m != NULL && (tokens != NULL || n == 0), FALSE);
  if (n == 0)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "no tokens to evaluate");
      return FALSE;
    }
  if (n > m->n_ctx - m->pos)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID,
                   "context of %u tokens exceeded: %u held, %u more given", m->n_ctx, m->pos, n);
      return FALSE;
    }
  for (guint i = 0; i < n; i++)
    if (tokens[i] < 0 || (guint) tokens[i] >= m->n_vocab)
      {
        g_set_error (error, AT_ERROR, AT_ERROR_INVALID,
                     "token %d (at %u) is outside the vocabulary of %u", tokens[i], i, m->n_vocab);
        return FALSE;
      }
  for (guint done = 0; done < n;)
    {
      guint chunk = MIN (n - done, m->max_batch);

      /* A chunk padded past the context is cut to the largest power of two that fits. */
      if (m->pos + padded_len (chunk) > m->n_ctx)
        for (chunk = 1; 2 * chunk <= m->n_ctx - m->pos; chunk *= 2)
          ;
      if (!eval_chunk (m, tokens + done, chunk, done + chunk == n ? logits_last : NULL, error))
        {
          m->pos = start;
          return FALSE;
        }
      done += chunk;
    }
  return TRUE;
}

void
at_llm_reset (AtLlm *m)
{
  m->pos = 0;
}

guint
at_llm_get_n_vocab (AtLlm *m)
{
  return m->n_vocab;
}

guint
at_llm_get_n_ctx (AtLlm *m)
{
  return m->n_ctx;
}

AtDtype
at_llm_get_kv_dtype (AtLlm *m)
{
  return m->kv_dtype;
}

gboolean
at_llm_parse_kv_dtype (const char *name, AtDtype *out)
{
  if (g_strcmp0 (name, "f16") == 0)
    *out = AT_DTYPE_F16;
  else if (g_strcmp0 (name, "f32") == 0)
    *out = AT_DTYPE_F32;
  else
    return FALSE;
  return TRUE;
}

static void
add_buffer (GHashTable *seen, AtBuffer *b, guint64 *sum)
{
  if (b != NULL && g_hash_table_add (seen, b))
    *sum += at_buffer_get_size (b);
}

void
at_llm_get_memory (AtLlm *m, guint64 *weights, guint64 *kv_cache, guint64 *activations)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
  guint64 w = 0, kv = 0, act = 0;

  add_buffer (seen, m->token_embd.buffer, &w);
  add_buffer (seen, m->output_norm.buffer, &w);
  add_buffer (seen, m->output.buffer, &w);
  add_buffer (seen, m->rope_freqs.buffer, &w);
  for (guint l = 0; l < m->n_layer; l++)
    {
      Layer *L = &m->layers[l];
      Weight *ws[N_LAYER_WEIGHTS];

      layer_weights (L, ws);
      for (guint i = 0; i < N_LAYER_WEIGHTS; i++)
        add_buffer (seen, ws[i]->buffer, &w);
      add_buffer (seen, L->k_cache, &kv);
      add_buffer (seen, L->v_cache, &kv);
    }
  for (guint i = 0; i < MAX_DECODE_GRAPHS; i++)
    if (m->decode[i] != NULL)
      act += at_graph_get_arena_size (m->decode[i]->graph);
  for (guint i = 0; i < N_PROMPT_GRAPHS; i++)
    if (m->prompts[i] != NULL)
      act += at_graph_get_arena_size (m->prompts[i]->graph);
  if (weights != NULL)
    *weights = w;
  if (kv_cache != NULL)
    *kv_cache = kv;
  if (activations != NULL)
    *activations = act;
}

guint
at_llm_get_position (AtLlm *m)
{
  return m->pos;
}

void
at_llm_print_profile (AtLlm *m, FILE *out)
{
  for (guint i = 0; i < N_PROMPT_GRAPHS; i++)
    if (m->prompts[i] != NULL)
      {
        fprintf (out, "prompt graph %u:\n", i);
        at_command_print_profile (at_graph_get_command (m->prompts[i]->graph), out);
      }
  for (guint i = 0; i < MAX_DECODE_GRAPHS; i++)
    if (m->decode[i] != NULL)
      {
        fprintf (out, "decode graph %u:\n", i);
        at_command_print_profile (at_graph_get_command (m->decode[i]->graph), out);
      }
}

const char *
at_llm_get_arch (AtLlm *m)
{
  return arch_names[m->arch];
}
