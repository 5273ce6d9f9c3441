/* at-ops-private.h: what the op files share with each other, not part of the engine's API:
 * the checks and the C reference of RoPE, which at_matmul_rope_cache (at-ops-matmul.c) fuses
 * into a product. */
#pragma once

#include "at-ops-norm.h"

G_BEGIN_DECLS

/* Checks at_rope's arguments other than x (described by `dx`: L tokens of D elements a head):
 * mode, n_rot, positions and freq_factors. FALSE: the graph failed, naming what is wrong. */
gboolean at_rope_check (AtGraph *g, const char *op, const char *dx, gint64 l, gint64 d,
                        AtTensor *positions, int n_rot, AtRopeMode mode, AtTensor *freq_factors);

/* Checks at_rope_cache's caches for x [L, heads, D] (described by `dx`) with n_q_heads q heads;
 * fills the caches' kv heads. */
gboolean at_rope_check_caches (AtGraph *g, const char *op, const char *dx, gint64 heads, gint64 d,
                               int n_q_heads, AtTensor *k_cache, AtTensor *v_cache, gint64 *nkv);

/* The reference for one token's heads x [heads, D] at position pos: y's heads below n_turn
 * turned, the others and the dimensions from n_rot on copied (x and y must not overlap). */
void at_rope_ref_token (const float *x, float *y, gint64 heads, gint64 n_turn, gint64 d, int n_rot,
                        AtRopeMode mode, float pos, float base, float freq_scale, const float *ff);

G_END_DECLS
