/* at-ops-conv.h: convolution and spatial graph ops on f32 NCHW activations, as the SD UNet,
 * the VAE and the style networks use them.
 *
 * Each op matches its torch.nn.functional counterpart (conv2d, conv_transpose2d, interpolate,
 * pad, torch.cat). Weights are f32 or f16 (read as packed halves); biases are optional, f32 or
 * f16. Every [h, w] pair is in that order.
 */
#pragma once

#include "at-graph.h"

G_BEGIN_DECLS

typedef struct
{
  int stride[2];   /* [h, w], >= 1 */
  int padding[2];  /* [h, w], >= 0, zero padding on both sides */
  int dilation[2]; /* [h, w], >= 1 */
  int groups;      /* >= 1, divides Cin and Cout */
} AtConv2dParams;

/* stride 1, padding 0, dilation 1, groups 1 */
#define AT_CONV2D_PARAMS_DEFAULT { { 1, 1 }, { 0, 0 }, { 1, 1 }, 1 }

/* x [N, Cin, H, W] (any strides), w [Cout, Cin/groups, kh, kw], bias [Cout] or NULL
 * -> [N, Cout, Ho, Wo], Ho = (H + 2 ph - dh (kh - 1) - 1) / sh + 1. */
AtTensor *at_conv2d (AtGraph *g, AtTensor *x, AtTensor *w, AtTensor *bias, const AtConv2dParams *p);

typedef struct
{
  int stride[2];         /* [h, w], >= 1 */
  int padding[2];        /* [h, w], >= 0 */
  int output_padding[2]; /* [h, w], < stride or < dilation (as torch) */
  int dilation[2];       /* [h, w], >= 1 */
  int groups;
} AtConvTranspose2dParams;

/* x [N, Cin, H, W], w [Cin, Cout/groups, kh, kw], bias [Cout] or NULL -> [N, Cout, Ho, Wo],
 * Ho = (H - 1) sh - 2 ph + dh (kh - 1) + oph + 1. */
AtTensor *at_conv_transpose2d (AtGraph *g, AtTensor *x, AtTensor *w, AtTensor *bias,
                               const AtConvTranspose2dParams *p);

typedef enum
{
  AT_UPSAMPLE_NEAREST,  /* torch 'nearest': src = min (floor (dst * in / out), in - 1) */
  AT_UPSAMPLE_BILINEAR, /* torch 'bilinear' */
} AtUpsampleMode;

/* x [N, C, H, W] (any strides) -> [N, C, out_h, out_w]. align_corners only matters for
 * bilinear. Sizes give the scale (in / out), as torch does when called with `size=`. */
AtTensor *at_upsample (AtGraph *g, AtTensor *x, gint64 out_h, gint64 out_w, AtUpsampleMode mode,
                       gboolean align_corners);

typedef enum
{
  AT_PAD_ZERO,      /* torch 'constant' with `value` (negative pads crop) */
  AT_PAD_REFLECT,   /* torch 'reflect': 0 <= pad < size */
  AT_PAD_REPLICATE, /* torch 'replicate': pad >= 0, size >= 1 */
} AtPadMode;

/* As torch.nn.functional.pad: `pads` holds `n_pads` (even, <= 2 * ndim) values, pairs
 * (before, after) starting from the LAST dimension: { left, right, top, bottom, ... }. */
AtTensor *at_pad (AtGraph *g, AtTensor *x, int n_pads, const gint64 *pads, AtPadMode mode,
                  float value);

/* torch.cat ((a, b), dim): f32, every other dimension equal; a and b may be strided views.
 * A negative `dim` counts from the end. */
AtTensor *at_concat (AtGraph *g, AtTensor *a, AtTensor *b, int dim);

G_END_DECLS
