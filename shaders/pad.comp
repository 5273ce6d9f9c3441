// pad.comp: y[o] = x[src (o - before)] per dimension, with src outside x giving `value`
// (constant), the mirror without the edge (reflect) or the nearest edge (replicate), as
// torch.nn.functional.pad. Reference: ref_pad in engine/tensor/at-ops-conv.c.
#version 450
#include "common.glsl"

layout(constant_id = 3) const uint MODE = 0; // 0 constant, 1 reflect, 2 replicate

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
  uvec4 ne;     // output shape, 4-d
  uvec4 nx;     // input shape, 4-d
  ivec4 before; // pad before each dimension (negative crops)
  uvec4 sx;     // x strides
  uint ox, oy, n;
  float value;
} p;

void main() {
  uint i = linear_invocation();
  if (i >= p.n)
    return;
  ivec4 s = ivec4(unravel4(i, p.ne)) - p.before;
  ivec4 n = ivec4(p.nx);
  if (MODE == 0) {
    if (any(lessThan(s, ivec4(0))) || any(greaterThanEqual(s, n))) {
      y[p.oy + i] = p.value;
      return;
    }
  } else if (MODE == 1) {
    s = abs(s);
    s = mix(s, 2 * (n - 1) - s, greaterThanEqual(s, n));
  } else {
    s = clamp(s, ivec4(0), n - 1);
  }
  uvec4 u = uvec4(s);
  y[p.oy + i] = x[p.ox + u.x * p.sx.x + u.y * p.sx.y + u.z * p.sx.z + u.w * p.sx.w];
}
