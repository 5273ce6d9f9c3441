/* at-ops-norm.h: normalisations, softmax, rotary position embedding and gated activations.
 *
 * Activations are f32 in and out. Weights and biases are optional (NULL), contiguous, f32 or
 * f16. Outputs are contiguous tensors of the input's shape (at_glu: half the last dimension).
 * Row reductions (norms, softmax): rows shorter than 1024 take one subgroup each, 8 rows to a
 * workgroup; longer rows one workgroup each, of one subgroup on CPU devices (no barriers) and
 * 256 invocations on GPUs. ATELIER_NORM_WG=<n> (a multiple of the subgroup size, at most 256)
 * forces one workgroup of n invocations per row, so the tests can run the GPUs' multi-subgroup
 * path on any device.
 */
#pragma once

#include "at-graph.h"

G_BEGIN_DECLS

/* Over the last dimension D of x [..., D]: y = (x - mean) / sqrt(var + eps) * w + b, var the
 * biased variance (torch.nn.LayerNorm). weight, bias: D elements or NULL. */
AtTensor *at_layer_norm (AtGraph *g, AtTensor *x, AtTensor *weight, AtTensor *bias, float eps);

/* Over the last dimension D of x [..., D]: y = x / sqrt(mean(x^2) + eps) * w (Llama's RMSNorm).
 * weight: D elements or NULL. */
AtTensor *at_rms_norm (AtGraph *g, AtTensor *x, AtTensor *weight, float eps);

/* torch.nn.GroupNorm: x contiguous [N, C, L] or [N, C, H, W]; the C channels split into
 * n_groups groups of C / n_groups consecutive channels, each normalised over its channels and
 * all spatial positions (biased variance), then y = y * w[c] + b[c]. weight, bias: C elements
 * or NULL. */
AtTensor *at_group_norm (AtGraph *g, AtTensor *x, int n_groups, AtTensor *weight, AtTensor *bias,
                         float eps);

/* torch.nn.InstanceNorm2d (affine when weight/bias are given): group norm with n_groups = C. */
AtTensor *at_instance_norm (AtGraph *g, AtTensor *x, AtTensor *weight, AtTensor *bias, float eps);

/* Over the last dimension of x [..., Lq, Lk] (x may be a strided view):
 *   y = softmax(x * scale + mask)
 * mask (NULL, f32 or f16) broadcasts against x like at_add (each of its dimensions 1 or x's,
 * e.g. [Lq, Lk], [1, 1, Lq, Lk] or a padding mask [B, 1, 1, Lk]); -INFINITY entries hide a
 * column. causal: row i of Lq sees columns j <= i + (Lk - Lq) only (the last query is the
 * newest token, as when decoding with a KV cache). A row that sees no column gives 0s. */
AtTensor *at_softmax (AtGraph *g, AtTensor *x, AtTensor *mask, float scale, gboolean causal);

typedef enum
{
  AT_ROPE_NORMAL, /* rotates adjacent pairs (x[2i], x[2i+1]): GPT-J, llama GGUF layout */
  AT_ROPE_NEOX,   /* rotates (x[i], x[i + n_rot/2]): GPT-NeoX, HF transformers' rotate_half */
} AtRopeMode;

/* Rotary position embedding. x [B, L, H, D] or [L, H, D]; x may be a strided view (a slice of
 * a fused QKV projection) whose last dimension D is contiguous. positions: i32 [L].
 * For each pair i < n_rot/2 (n_rot even, n_rot <= D):
 *   theta = pos * freq_scale * base^(-2i / n_rot) / freq_factors[i]
 *   (a, b) -> (a cos theta - b sin theta, a sin theta + b cos theta)
 * where (a, b) = (x[2i], x[2i+1]) in AT_ROPE_NORMAL and (x[i], x[i + n_rot/2]) in AT_ROPE_NEOX.
 * freq_factors: NULL (all 1) or f32 [n_rot/2] (Llama 3's long-context scaling). Dimensions
 * from n_rot on are copied. The result is contiguous, of x's shape. */
AtTensor *at_rope (AtGraph *g, AtTensor *x, AtTensor *positions, int n_rot, float base,
                   float freq_scale, AtRopeMode mode, AtTensor *freq_factors);

/* at_rope for a language model's fused projection, writing its KV cache on the way: x is
 * [L, n_q_heads + 2 Hkv, D] (the q, k and v heads of each token, a strided view is fine); the q
 * and k heads turn, the v heads are copied, and token l's k and v heads are written into row
 * positions[l] of k_cache and v_cache (contiguous [rows, Hkv, D], both f32 or both f16,
 * rounded to f16 there; positions outside them are not written). The result is contiguous, of x's shape. One dispatch where rope and
 * two at_write_rows took three. */
AtTensor *at_rope_cache (AtGraph *g, AtTensor *x, AtTensor *positions, int n_rot, float base,
                         float freq_scale, AtRopeMode mode, AtTensor *freq_factors, int n_q_heads,
                         AtTensor *k_cache, AtTensor *v_cache);

/* y = silu(gate) * up, gate and up of the same shape (either may be a strided view). */
AtTensor *at_swiglu (AtGraph *g, AtTensor *gate, AtTensor *up);

typedef enum
{
  /* diffusers GEGLU: hidden, gate = x.chunk(2, -1); y = hidden * gelu(gate) (erf form). */
  AT_GLU_GEGLU,
  /* phi-3's fused gate_up: gate, up = x.chunk(2, -1); y = silu(gate) * up. */
  AT_GLU_SWIGLU,
  /* Gemma's feed-forward: gate, up = x.chunk(2, -1); y = gelu(gate) * up (tanh form). */
  AT_GLU_GELU_TANH,
} AtGluKind;

/* Gated activation over the two halves of the last dimension of x [..., D] (D even):
 * y [..., D/2], with the halves and their order as AtGluKind says. */
AtTensor *at_glu (AtGraph *g, AtTensor *x, AtGluKind kind);
/* The same activation of a gate and an up held apart (same shape, either may be a strided
 * view): at_swiglu is at_glu_pair (g, gate, up, AT_GLU_SWIGLU). */
AtTensor *at_glu_pair (AtGraph *g, AtTensor *gate, AtTensor *up, AtGluKind kind);

G_END_DECLS
