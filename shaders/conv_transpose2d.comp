// conv_transpose2d.comp: y[n, co, oy, ox] = bias[co] + sum over (ci, ky, kx) with
//   oy = iy * sh - ph + ky * dh, ox = ix * sw - pw + kx * dw (iy, ix inside x) of
//   x[n, g * Cin_g + ci, iy, ix] * w[g * Cin_g + ci, co - g * Cout_g, ky, kx], as torch
// conv_transpose2d. Reference: ref_conv_transpose2d in engine/tensor/at-ops-conv.c.
// A gather: one invocation per output element sums the inputs that map to it (no atomics).
// W_F16: weights are halves, two per word.
#version 450
#include "common.glsl"

layout(constant_id = 3) const uint BIAS = 0; // 0 none, 1 f32, 2 f16

layout(binding = 0) readonly buffer X { float x[]; };
#ifdef W_F16
layout(binding = 1) readonly buffer Wt { uint w[]; };
#else
layout(binding = 1) readonly buffer Wt { float w[]; };
#endif
layout(binding = 2) readonly buffer Bs { uint bias[]; };
layout(binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
  uvec4 ne;            // [N, Cout, Ho, Wo]
  uint h, w, cin_g, cout_g, kh, kw;
  int sh, sw, ph, pw, dh, dw;
  uvec4 sx;            // x strides
  uint ox, ow, ob, oy, n;
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
  uint i = linear_invocation();
  if (i >= p.n)
    return;
  uvec4 c = unravel4(i, p.ne); // n, co, oy, ox
  uint grp = c.y / p.cout_g;
  uint cog = c.y % p.cout_g;
  uint khw = p.kh * p.kw;
  float acc = 0.0;
  for (uint ky = 0; ky < p.kh; ky++) {
    int ty = int(c.z) + p.ph - int(ky) * p.dh;
    if (ty < 0 || ty % p.sh != 0 || uint(ty / p.sh) >= p.h)
      continue;
    uint iy = uint(ty / p.sh);
    for (uint kx = 0; kx < p.kw; kx++) {
      int tx = int(c.w) + p.pw - int(kx) * p.dw;
      if (tx < 0 || tx % p.sw != 0 || uint(tx / p.sw) >= p.w)
        continue;
      uint ix = uint(tx / p.sw);
      uint xe = p.ox + c.x * p.sx.x + grp * p.cin_g * p.sx.y + iy * p.sx.z + ix * p.sx.w;
      uint we = (grp * p.cin_g * p.cout_g + cog) * khw + ky * p.kw + kx;
      for (uint ci = 0; ci < p.cin_g; ci++)
        acc += x[xe + ci * p.sx.y] * weight_at(we + ci * p.cout_g * khw);
    }
  }
  if (BIAS != 0)
    acc += bias_at(c.y);
  y[p.oy + i] = acc;
}
