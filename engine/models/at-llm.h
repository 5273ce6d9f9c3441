/* at-llm.h: decoder-only transformer language models from GGUF files, run on the engine.
 *
 * Architectures (`general.architecture`): `llama` (Llama 2/3, TinyLlama, SmolLM, Mistral
 * files written as llama), `qwen2` (biases on Q, K and V) and `phi3` (fused attn_qkv, and
 * ffn_up holding gate then up). Each layer: RMSNorm, Q/K/V projections, RoPE (adjacent pairs
 * for llama, whose converter permuted the Q/K rows for it; rotate-half for qwen2 and phi3),
 * grouped-query causal attention over a KV cache, output projection, residual; RMSNorm,
 * SwiGLU MLP, residual. Then RMSNorm and the output projection (token_embd when the file has no
 * output.weight).
 *
 * at_llm_new checks the architecture, the hyperparameters and every tensor's presence, dtype
 * and shape, then uploads the weights once and allocates the KV cache on the device
 * ([n_ctx, kv_heads, head_dim] per layer for K and for V, in f16 or f32).
 *
 * at_llm_eval appends tokens at the current position: a single token runs one decode graph,
 * compiled on first use and replayed with the token id, position and key count as inputs;
 * several tokens run in chunks of at most 256 through a prompt graph compiled for the chunk
 * length rounded up to a power of two (padding that no real token sees; the last few such
 * graphs are kept).
 * The new keys and values come out of the graph and are written into the cache after the run.
 */
#pragma once

#include "at-gguf.h"
#include "at-graph.h"

G_BEGIN_DECLS

typedef struct _AtLlm AtLlm;

/* `gguf` is only read during the call (the weights are copied to the device). `n_ctx`: the
 * most tokens one sequence may hold (1 .. the file's context length is not enforced; at most
 * 1 << 20). Errors: AT_ERROR_UNSUPPORTED for an architecture or rope scaling Atelier lacks,
 * AT_ERROR_BAD_FILE for missing or mis-shaped tensors and hyperparameters (naming them),
 * device errors from the uploads. `kv_dtype`: the KV cache's, AT_DTYPE_F16 (half the memory
 * and the attention's reads; keys and values rounded to f16 as llama.cpp does by default) or
 * AT_DTYPE_F32; f16 falls back to f32 on a device without 16-bit storage buffers
 * (at_llm_get_kv_dtype says which). */
AtLlm *at_llm_new (AtDevice *device, AtGguf *gguf, guint n_ctx, AtDtype kv_dtype, GError **error);
void at_llm_free (AtLlm *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtLlm, at_llm_free)

/* Appends `n` tokens (n >= 1) at the current position and writes the logits of the last one
 * (at_llm_get_n_vocab floats) to `logits_last` (may be NULL). A token id outside the
 * vocabulary, or the context overflowing n_ctx, is an AT_ERROR_INVALID; after any error the
 * position is unchanged. */
gboolean at_llm_eval (AtLlm *m, const gint32 *tokens, guint n, float *logits_last, GError **error);
/* Forgets the sequence: the next eval starts at position 0. */
void at_llm_reset (AtLlm *m);

guint at_llm_get_n_vocab (AtLlm *m);
guint at_llm_get_n_ctx (AtLlm *m);
AtDtype at_llm_get_kv_dtype (AtLlm *m);
/* "f16" or "f32" (a --kv-type option) to its dtype; FALSE for anything else. */
gboolean at_llm_parse_kv_dtype (const char *name, AtDtype *out);
/* Device memory held, in bytes: the weights, the KV cache, and the activation arenas of the
 * graphs compiled so far (each kept graph has its own). Any may be NULL. */
void at_llm_get_memory (AtLlm *m, guint64 *weights, guint64 *kv_cache, guint64 *activations);
/* Tokens held in the cache. */
guint at_llm_get_position (AtLlm *m);
/* "llama", "qwen2", "phi3". */
const char *at_llm_get_arch (AtLlm *m);
/* With ATELIER_PROFILE=1: GPU time per op label, summed over every run so far of each compiled
 * graph (prompt graphs, then decode graphs, each with the key rows it attends over), to `out`. */
void at_llm_print_profile (AtLlm *m, FILE *out);

G_END_DECLS
