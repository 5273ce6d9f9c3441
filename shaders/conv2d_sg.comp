// conv2d_sg.comp: y[n, co, oy, ox] = bias[co] + sum over (ci, ky, kx) of
//   x[n, g * Cin_g + ci, oy * sh - ph + ky * dh, ox * sw - pw + kx * dw] * w[co, ci, ky, kx]
// (zero outside x; g = co / Cout_g), as torch conv2d; the implicit GEMM for CPU devices
// (lavapipe). Reference: ref_conv2d in engine/tensor/at-ops-conv.c.
//
// A workgroup is one subgroup (no shared memory, no barriers: a barrier is a coroutine switch
// on lavapipe) and computes TM output pixels by gl_SubgroupSize * TN output channels of one
// group. Lane l owns channels c0 + l, c0 + l + sg, ... and reads their weights. For each tap
// (ky, kx) and 4 input channels, lane l gathers the 4 input values of pixel l % TM (zero padding
// by one bounds check per tap), and subgroupShuffle with a constant lane hands each pixel's
// values to every lane. TM <= subgroup size. KH/KW > 0 fix the kernel size (the tap loops
// unroll). W_F16: halves, two per word.
#version 450
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_shuffle : enable
#include "common.glsl"

layout(constant_id = 3) const uint TM = 8;   // pixels per workgroup
layout(constant_id = 4) const uint TN = 4;   // channels per lane
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

// C mirror: Conv2dPush in engine/tensor/at-ops-conv.c (shared with conv2d.comp).
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

float weight1(uint e) {
#ifdef W_F16
  e += p.ow;
  return half_at(w[e >> 1], e);
#else
  return w[p.ow + e];
#endif
}

float bias_at(uint c) {
  if (BIAS == 1)
    return uintBitsToFloat(bias[p.ob + c]);
  uint e = p.ob + c;
  return half_at(bias[e >> 1], e);
}

void main() {
  uint lane = gl_SubgroupInvocationID, sg = gl_SubgroupSize;
  uint m_first = linear_group() * TM;
  if (m_first >= p.n_pix)
    return;

  uint kh = KH > 0 ? KH : p.kh;
  uint kw = KW > 0 ? KW : p.kw;
  uint khw = kh * kw;
  uint k_len = p.cin_g * khw;
  uint grp = gl_WorkGroupID.z / p.n_cblk;
  uint c_first = (gl_WorkGroupID.z % p.n_cblk) * sg * TN;
  uint hw_out = p.ho * p.wo;

  // The pixel whose inputs this lane gathers.
  uint m = min(m_first + lane % TM, p.n_pix - 1u);
  uint px = m % hw_out;
  int ih0 = int(px / p.wo) * p.sh - p.ph;
  int iw0 = int(px % p.wo) * p.sw - p.pw;
  uint xbase = p.ox + (m / hw_out) * p.sxn + grp * p.cin_g * p.sxc;

  uint wrow[TN];
  float acc[TM][TN];
  [[unroll]] for (uint j = 0u; j < TN; j++) {
    wrow[j] = (grp * p.cout_g + min(c_first + j * sg + lane, p.cout_g - 1u)) * k_len;
    [[unroll]] for (uint r = 0u; r < TM; r++)
      acc[r][j] = 0.0;
  }

  // Taps outermost: the bounds check and the pixel's address are per tap, and the inner loop
  // walks the channels (x stride sxc, w stride kh * kw) four at a time.
  uint cin4 = p.cin_g & ~3u;
  for (uint ky = 0u; ky < kh; ky++) {
    for (uint kx = 0u; kx < kw; kx++) {
      int ih = ih0 + int(ky) * p.dh;
      int iw = iw0 + int(kx) * p.dw;
      bool inside = uint(ih) < p.h && uint(iw) < p.w;
      // Outside x, read a valid address and drop the value.
      uint xa = xbase + (inside ? uint(ih) * p.sxh + uint(iw) * p.sxw : 0u);
      uint wk = ky * kw + kx;
      for (uint ci = 0u; ci < cin4; ci += 4u) {
        uint xc = xa + ci * p.sxc;
        vec4 av = vec4(x[xc], x[xc + p.sxc], x[xc + 2u * p.sxc], x[xc + 3u * p.sxc]);
        av = inside ? av : vec4(0.0);
        vec4 bv[TN];
        [[unroll]] for (uint j = 0u; j < TN; j++) {
          uint we = wrow[j] + ci * khw + wk;
          bv[j] = vec4(weight1(we), weight1(we + khw), weight1(we + 2u * khw),
                       weight1(we + 3u * khw));
        }
        [[unroll]] for (uint r = 0u; r < TM; r++) {
          vec4 ar = subgroupShuffle(av, r);
          [[unroll]] for (uint j = 0u; j < TN; j++)
            acc[r][j] += dot(ar, bv[j]);
        }
      }
      for (uint ci = cin4; ci < p.cin_g; ci++) {
        float av = inside ? x[xa + ci * p.sxc] : 0.0;
        float bv[TN];
        [[unroll]] for (uint j = 0u; j < TN; j++)
          bv[j] = weight1(wrow[j] + ci * khw + wk);
        [[unroll]] for (uint r = 0u; r < TM; r++) {
          float ar = subgroupShuffle(av, r);
          [[unroll]] for (uint j = 0u; j < TN; j++)
            acc[r][j] += ar * bv[j];
        }
      }
    }
  }

  [[unroll]] for (uint j = 0u; j < TN; j++) {
    uint co = c_first + j * sg + lane;
    if (co >= p.cout_g)
      break;
    uint cg = grp * p.cout_g + co;
    float b = BIAS == 0 ? 0.0 : bias_at(cg);
    [[unroll]] for (uint r = 0u; r < TM; r++) {
      uint mr = m_first + r;
      if (mr < p.n_pix)
        y[p.oy + (mr / hw_out) * p.cout * hw_out + cg * hw_out + mr % hw_out] = acc[r][j] + b;
    }
  }
}
