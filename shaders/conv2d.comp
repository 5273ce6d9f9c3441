// conv2d.comp: y[n, co, oy, ox] = bias[co] + sum over (ci, ky, kx) of
//   x[n, g * Cin_g + ci, oy * sh - ph + ky * dh, ox * sw - pw + kx * dw] * w[co, ci, ky, kx]
// (zero outside x; g = co / Cout_g), as torch conv2d. Reference: ref_conv2d in
// engine/tensor/at-ops-conv.c.
//
// Implicit GEMM for GPUs: rows are output pixels (n, oy, ox), columns output channels, the
// reduction runs over the taps (ky, kx) and the input channels of one group, and x is gathered
// on the fly (no im2col buffer). An invocation keeps TP pixels x TN channels in registers;
// consecutive invocations take consecutive pixels (coalesced x loads) and every invocation of a
// workgroup shares the channel block, so a weight load is one address for the whole workgroup.
// No shared memory, no barriers. KH/KW > 0 fix the kernel size at pipeline creation (1x1, 3x3
// unrolled); 0 reads it from the push constants. The CPU (lavapipe) kernel is conv2d_sg.comp.
// W_F16: weights are halves, two per word.
#version 450
#include "common.glsl"

layout(constant_id = 3) const uint TP = 4;   // pixels per invocation
layout(constant_id = 4) const uint TN = 8;   // output channels per invocation
layout(constant_id = 5) const uint KH = 0;
layout(constant_id = 6) const uint KW = 0;
layout(constant_id = 7) const uint BIAS = 0; // 0 none, 1 f32, 2 f16

layout(binding = 0) readonly buffer X { float x[]; };
#ifdef W_F16
layout(binding = 1) readonly buffer Wt { uint w[]; };
#else
layout(binding = 1) readonly buffer Wt { float w[]; };
#endif
layout(binding = 2) readonly buffer Bs { uint bias[]; };
layout(binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
  uint n_pix;          // N * Ho * Wo
  uint ho, wo, h, w;
  uint cin_g, cout_g, cout;
  uint n_cblk;         // channel blocks per group
  uint kh, kw;
  int sh, sw, ph, pw, dh, dw;
  uint sxn, sxc, sxh, sxw;
  uint ox, ow, ob, oy;
} p;

float weight_at(uint i) {
#ifdef W_F16
  uint e = p.ow + i;
  return half_at(w[e >> 1], e);
#else
  return w[p.ow + i];
#endif
}

float bias_at(uint c) {
  if (BIAS == 1)
    return uintBitsToFloat(bias[p.ob + c]);
  uint e = p.ob + c;
  return half_at(bias[e >> 1], e);
}

void main() {
  const uint WG = gl_WorkGroupSize.x;
  uint m0 = linear_group() * WG * TP + gl_LocalInvocationID.x;
  if (m0 >= p.n_pix)
    return;

  uint kh = KH > 0 ? KH : p.kh;
  uint kw = KW > 0 ? KW : p.kw;
  uint grp = gl_WorkGroupID.z / p.n_cblk;
  uint co0 = (gl_WorkGroupID.z % p.n_cblk) * TN;
  uint k_len = p.cin_g * kh * kw;
  uint hw_out = p.ho * p.wo;

  int ih0[TP], iw0[TP];
  uint xbase[TP], ybase[TP];
  [[unroll]] for (uint t = 0; t < TP; t++) {
    uint m = min(m0 + t * WG, p.n_pix - 1);
    uint px = m % hw_out, n = m / hw_out;
    ih0[t] = int(px / p.wo) * p.sh - p.ph;
    iw0[t] = int(px % p.wo) * p.sw - p.pw;
    xbase[t] = p.ox + n * p.sxn + grp * p.cin_g * p.sxc;
    ybase[t] = p.oy + n * p.cout * hw_out + px;
  }
  uint wrow[TN];
  [[unroll]] for (uint c = 0; c < TN; c++)
    wrow[c] = (grp * p.cout_g + min(co0 + c, p.cout_g - 1)) * k_len;

  float acc[TP * TN];
  [[unroll]] for (uint i = 0; i < TP * TN; i++)
    acc[i] = 0.0;

  // Taps outermost: the bounds checks and pixel addresses are per tap; the inner loop walks
  // the input channels (x stride sxc, w stride kh * kw).
  uint khw = kh * kw;
  for (uint ky = 0; ky < kh; ky++) {
    for (uint kx = 0; kx < kw; kx++) {
      uint xa[TP];
      bool inside[TP];
      [[unroll]] for (uint t = 0; t < TP; t++) {
        int ih = ih0[t] + int(ky) * p.dh;
        int iw = iw0[t] + int(kx) * p.dw;
        inside[t] = uint(ih) < p.h && uint(iw) < p.w;
        // Outside x, read a valid address and drop the value.
        xa[t] = xbase[t] + (inside[t] ? uint(ih) * p.sxh + uint(iw) * p.sxw : 0u);
      }
      uint wk = ky * kw + kx;
      for (uint ci = 0; ci < p.cin_g; ci++) {
        float xv[TP];
        [[unroll]] for (uint t = 0; t < TP; t++)
          xv[t] = inside[t] ? x[xa[t] + ci * p.sxc] : 0.0;
        [[unroll]] for (uint c = 0; c < TN; c++) {
          float wv = weight_at(wrow[c] + ci * khw + wk);
          [[unroll]] for (uint t = 0; t < TP; t++)
            acc[t * TN + c] += xv[t] * wv;
        }
      }
    }
  }

  [[unroll]] for (uint c = 0; c < TN; c++) {
    uint co = co0 + c;
    if (co >= p.cout_g)
      break;
    uint cg = grp * p.cout_g + co;
    float b = BIAS == 0 ? 0.0 : bias_at(cg);
    [[unroll]] for (uint t = 0; t < TP; t++)
      if (m0 + t * WG < p.n_pix)
        y[ybase[t] + cg * hw_out] = acc[t * TN + c] + b;
  }
}
