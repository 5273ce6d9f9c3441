/* at-ops-matmul.h: matrix multiplication against weights in the nn.Linear layout.
 *
 * at_matmul (g, a, b) = a @ b^T:
 *   a: [..., M, K] activations, f32 or f16, K contiguous (rows and batches may be strided, as in
 *      a transposed view);
 *   b: [..., N, K] weights, K contiguous, in f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_K,
 *      q5_K or q6_K (K a multiple of the block size);
 *   result: [..., M, N] f32 (at least 2-D: a 1-D a [K] is one row, giving [1, N]).
 * Up to two leading batch dimensions broadcast: each of a's and b's may be 1, and b's may
 * divide a's (grouped-query attention: a batch index i reads b batch i / (Ba / Bb)).
 *
 * Kernels (shaders/matvec.comp, matmul_cpu.comp, matmul_gpu.comp):
 * - M <= 4: matrix-vector; a workgroup takes 4 rows of b, its invocations walk K, subgroupAdd
 *   (and shared memory across subgroups on GPUs) folds the sums; quantised weights are read a
 *   block (or K-quant sub-block) of 32 at a time.
 * - CPU devices (lavapipe): a GEMM with one subgroup per workgroup, no shared memory or
 *   barriers, 32 rows of a x (8 x subgroup size) rows of b, rows of a handed round the
 *   subgroup with subgroupShuffle.
 * - GPUs: a GEMM tiled 64 x 64 in shared memory, b dequantised into the tile.
 * ATELIER_MATMUL_PATH=matvec|matvec-multi|gemm-cpu|gemm-gpu forces one (the tests run all).
 * A b larger than the device's storage-buffer range (128 MiB on lavapipe) is bound and
 * dispatched in chunks of rows; ATELIER_MAX_BINDING_BYTES lowers that limit (tests).
 * Weights must be bound as storage buffers; a batched b must fit one binding.
 * A vector a times q4_0, q8_0 or q4_K on a CPU device (the rows kernel, token generation) is
 * computed with a quantised to 8 bits per block of 32 and integer products, as llama.cpp's
 * CPU backend does: the node records it and its C reference quantises alike
 * (ATELIER_MATMUL_QA8=0: f32).
 *
 * at_matmul_add (g, a, b, c) = a @ b^T + c, with c f32, contiguous and of the product's shape:
 * the add happens where each kernel stores d (a transformer block's residual, one dispatch
 * fewer).
 *
 * at_matmul_rms (g, a, weight, eps, b) = rms_norm (a, weight, eps) @ b^T: where the
 * matrix-vector rows kernel takes the product (a vector times q8_0 / q4_0 / q4_K on a CPU
 * device), the norm is computed inside it, one dispatch; elsewhere it is the two ops.
 *
 * at_matmul_swiglu (g, a, b, c) = at_glu (a, AT_GLU_SWIGLU) @ b^T (+ c, which may be NULL), a
 * being [gate | up]: the same, silu (gate) * up taken inside the rows kernel where it runs.
 */
#pragma once

#include "at-graph.h"
#include "at-ops-norm.h"

G_BEGIN_DECLS

AtTensor *at_matmul (AtGraph *g, AtTensor *a, AtTensor *b);
AtTensor *at_matmul_add (AtGraph *g, AtTensor *a, AtTensor *b, AtTensor *c);
AtTensor *at_matmul_rms (AtGraph *g, AtTensor *a, AtTensor *weight, float eps, AtTensor *b);
AtTensor *at_matmul_swiglu (AtGraph *g, AtTensor *a, AtTensor *b, AtTensor *c);
/* A language model's q, k and v projection of one token with its RoPE and KV cache writes:
 * at_rope_cache (reshape (at_matmul_rms (g, a, weight, eps, b), [1, heads, D]), ...), with
 * heads = n_q_heads + 2 kv heads and D the caches' head dimension; the result is [1, heads,
 * D]. Where the matrix-vector rows kernel takes the product and the RoPE is normal, the turn
 * and the cache writes happen where the kernel stores the product: one dispatch instead of
 * two (a token's rope dispatches were ~7% of its time on lavapipe). */
AtTensor *at_matmul_rope_cache (AtGraph *g, AtTensor *a, AtTensor *weight, float eps, AtTensor *b,
                                AtTensor *positions, int n_rot, float base, float freq_scale,
                                AtRopeMode mode, AtTensor *freq_factors, int n_q_heads,
                                AtTensor *k_cache, AtTensor *v_cache);
/* Whether at_matmul_rms and at_matmul_swiglu of `a` (the vector they take) and `b` are one
 * dispatch (else they build the plain ops: a caller with several products of one norm may
 * prefer to share it). */
gboolean at_matmul_fuses (AtGraph *g, AtTensor *a, AtTensor *b);

G_END_DECLS
