// conv2d_sg.comp: y[n, co, oy, ox] = bias[co] + sum over (ci, ky, kx) of
//   x[n, g * Cin_g + ci, oy * sh - ph + ky * dh, ox * sw - pw + kx * dw] * w[co, ci, ky, kx]
// (zero outside x; g = co / Cout_g), as torch conv2d; the implicit GEMM for CPU devices
// (lavapipe), built like matmul_cpu.comp. Reference: ref_conv2d in engine/tensor/at-ops-conv.c.
//
// GEMM view: M = output pixels, N = output channels, K = (ky, kx, ci): taps outside, so the
// padding test and the pixel's address are per tap, channels inside.
// A workgroup is one subgroup (SG = the workgroup size = the subgroup size; no shared memory, no
// barriers) computing TM pixels by SG * TN channels of one group; lane l owns channels
// c0 + l, c0 + l + SG, ... Lane l gathers the inputs of pixels l, l + SG, ... and
// subgroupShuffle with a constant lane hands them to every lane (a register tile of TM x TN per
// lane; the encoder picks it, see CONV_SG_TM). The Cin_g % 4 tail channels
// follow the 4-channel loop, outside it (a branch inside would cost every step: lavapipe runs
// both sides of a branch it cannot prove uniform). Works for subgroups of 8 and 16 (and wider).
#version 450
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_shuffle : enable
#include "common.glsl"

layout(constant_id = 3) const uint TM = 64;  // pixels per workgroup
layout(constant_id = 4) const uint TN = 4;   // channels per lane
layout(constant_id = 5) const uint KH = 0;   // > 0: the kernel size, fixed (1x1 only)
layout(constant_id = 6) const uint KW = 0;
layout(constant_id = 7) const uint BIAS = 0; // 0 none, 1 f32, 2 f16
// A 1x1 kernel whose weight rows all start at a multiple of 4 elements (Cin_g % 4 == 0 and the
// tensor's first element too): the channels of a row are contiguous, read with vector loads.
layout(constant_id = 8) const bool W_VEC = false;
const uint SG = gl_WorkGroupSize.x;
const uint NA = (TM + SG - 1u) / SG;  // pixels each lane gathers

layout(binding = 0) readonly buffer X { float x[]; };
#ifdef W_F16
layout(binding = 1) readonly buffer Wt { uint w[]; };
layout(binding = 1) readonly buffer Wt2 { uvec2 w2[]; };
#else
layout(binding = 1) readonly buffer Wt { float w[]; };
layout(binding = 1) readonly buffer Wt4 { vec4 w4[]; };
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

float weight1(uint e) {  // e: element index into the binding
#ifdef W_F16
  return half_at(w[e >> 1], e);
#else
  return w[e];
#endif
}

vec4 weight4(uint e) {
#ifdef W_F16
  if (W_VEC) {
    uvec2 u = w2[e >> 2];
    return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
  }
#else
  if (W_VEC)
    return w4[e >> 2];
#endif
  return vec4(weight1(e), weight1(e + 1u), weight1(e + 2u), weight1(e + 3u));
}

float bias_at(uint c) {
  if (BIAS == 1)
    return uintBitsToFloat(bias[p.ob + c]);
  uint e = p.ob + c;
  return half_at(bias[e >> 1], e);
}

void main() {
  uint lane = gl_SubgroupInvocationID;
  uint m_first = linear_group() * TM;
  if (m_first >= p.n_pix)
    return;
  uint kh = KH > 0u ? KH : p.kh;
  uint kw = KW > 0u ? KW : p.kw;
  uint khw = kh * kw;
  uint grp = gl_WorkGroupID.z / p.n_cblk;
  uint c_first = (gl_WorkGroupID.z % p.n_cblk) * SG * TN;
  uint hw_out = p.ho * p.wo;

  // Pixels this lane gathers: channel 0 of its group, and the top-left tap.
  uint xb[NA];
  int ih0[NA], iw0[NA];
  [[unroll]] for (uint i = 0u; i < NA; i++) {
    uint m = min(m_first + i * SG + lane, p.n_pix - 1u);
    uint px = m % hw_out;
    ih0[i] = int(px / p.wo) * p.sh - p.ph;
    iw0[i] = int(px % p.wo) * p.sw - p.pw;
    xb[i] = p.ox + (m / hw_out) * p.sxn + grp * p.cin_g * p.sxc;
  }

  uint wrow[TN];
  float acc[TM][TN];
  [[unroll]] for (uint j = 0u; j < TN; j++) {
    wrow[j] = p.ow + (grp * p.cout_g + min(c_first + j * SG + lane, p.cout_g - 1u)) * p.cin_g * khw;
    [[unroll]] for (uint r = 0u; r < TM; r++)
      acc[r][j] = 0.0;
  }

  // Taps outside (a loop, not unrolled: unrolled, LLVM spends seconds on a 3x3 and runs no
  // faster), channels inside four at a time (x stride sxc, w stride kh * kw).
  uint cin4 = p.cin_g & ~3u;
  [[dont_unroll]] for (uint t = 0u; t < khw; t++) {
    uint ky = t / kw, kx = t % kw;
    uint xt[NA];
    bool ok[NA];
    [[unroll]] for (uint i = 0u; i < NA; i++) {
      int ih = ih0[i] + int(ky) * p.dh;
      int iw = iw0[i] + int(kx) * p.dw;
      ok[i] = uint(ih) < p.h && uint(iw) < p.w;
      // Outside x, read a valid address and drop the value.
      xt[i] = xb[i] + (ok[i] ? uint(ih) * p.sxh + uint(iw) * p.sxw : 0u);
    }
    for (uint c0 = 0u; c0 < cin4; c0 += 4u) {
      vec4 av[NA];
      vec4 bv[TN];
      [[unroll]] for (uint i = 0u; i < NA; i++) {
        uint xc = xt[i] + c0 * p.sxc;
        vec4 v = vec4(x[xc], x[xc + p.sxc], x[xc + 2u * p.sxc], x[xc + 3u * p.sxc]);
        av[i] = ok[i] ? v : vec4(0.0);
      }
      [[unroll]] for (uint j = 0u; j < TN; j++) {
        uint we = wrow[j] + c0 * khw + t;
        if (W_VEC)
          bv[j] = weight4(we);
        else
          bv[j] = vec4(weight1(we), weight1(we + khw), weight1(we + 2u * khw),
                       weight1(we + 3u * khw));
      }
      [[unroll]] for (uint r = 0u; r < TM; r++) {
        vec4 ar = subgroupShuffle(av[r / SG], r % SG);
        [[unroll]] for (uint j = 0u; j < TN; j++)
          acc[r][j] += dot(ar, bv[j]);
      }
    }
    for (uint c = cin4; c < p.cin_g; c++) {
      float av[NA];
      float bv[TN];
      [[unroll]] for (uint i = 0u; i < NA; i++) {
        float v = x[xt[i] + c * p.sxc];
        av[i] = ok[i] ? v : 0.0;
      }
      [[unroll]] for (uint j = 0u; j < TN; j++)
        bv[j] = weight1(wrow[j] + c * khw + t);
      [[unroll]] for (uint r = 0u; r < TM; r++) {
        float ar = subgroupShuffle(av[r / SG], r % SG);
        [[unroll]] for (uint j = 0u; j < TN; j++)
          acc[r][j] += ar * bv[j];
      }
    }
  }

  [[unroll]] for (uint j = 0u; j < TN; j++) {
    uint co = c_first + j * SG + lane;
    uint cg = grp * p.cout_g + co;
    float b = BIAS == 0 ? 0.0 : bias_at(min(cg, p.cout - 1u));
    [[unroll]] for (uint r = 0u; r < TM; r++) {
      uint mr = m_first + r;
      if (mr < p.n_pix && co < p.cout_g)
        y[p.oy + (mr / hw_out) * p.cout * hw_out + cg * hw_out + mr % hw_out] = acc[r][j] + b;
    }
  }
}
