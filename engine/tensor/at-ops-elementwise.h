/* at-ops-elementwise.h: elementwise graph ops on f32 tensors.
 *
 * Binary ops broadcast like NumPy: shapes are aligned on the right and a dimension of 1
 * stretches. Unary ops read any strided tensor and write a contiguous one, so at_cont is the
 * identity unary op.
 */
#pragma once

#include "at-graph.h"

G_BEGIN_DECLS

AtTensor *at_add (AtGraph *g, AtTensor *a, AtTensor *b);
AtTensor *at_sub (AtGraph *g, AtTensor *a, AtTensor *b);
AtTensor *at_mul (AtGraph *g, AtTensor *a, AtTensor *b);
AtTensor *at_div (AtGraph *g, AtTensor *a, AtTensor *b);

AtTensor *at_scale (AtGraph *g, AtTensor *a, float scale);
/* y = scale * x + bias */
AtTensor *at_affine (AtGraph *g, AtTensor *a, float scale, float bias);
AtTensor *at_gelu (AtGraph *g, AtTensor *a);       /* tanh approximation */
AtTensor *at_gelu_erf (AtGraph *g, AtTensor *a);   /* exact (erf) form */
AtTensor *at_quick_gelu (AtGraph *g, AtTensor *a); /* x * sigmoid(1.702 x), CLIP's */
AtTensor *at_silu (AtGraph *g, AtTensor *a);
AtTensor *at_tanh (AtGraph *g, AtTensor *a);
AtTensor *at_relu (AtGraph *g, AtTensor *a);
/* A contiguous copy of a (strided) f32 tensor. */
AtTensor *at_cont (AtGraph *g, AtTensor *a);

G_END_DECLS
