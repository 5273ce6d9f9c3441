// concat.comp: y = torch.cat ((a, b), dim):
// y[.., i, ..] = i < na ? a[.., i, ..] : b[.., i - na, ..] along 4-d dimension `dim`; a and b may
// be strided. Reference: ref_concat in engine/tensor/at-ops-conv.c.
#version 450
#include "common.glsl"

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
  uvec4 ne;     // output shape, 4-d
  uvec4 sa, sb; // strides of a and b
  uint dim, na, oa, ob, oy, n;
} p;

void main() {
  uint i = linear_invocation();
  if (i >= p.n)
    return;
  uvec4 c = unravel4(i, p.ne);
  if (c[p.dim] < p.na) {
    y[p.oy + i] = a[p.oa + c.x * p.sa.x + c.y * p.sa.y + c.z * p.sa.z + c.w * p.sa.w];
  } else {
    c[p.dim] -= p.na;
    y[p.oy + i] = b[p.ob + c.x * p.sb.x + c.y * p.sb.y + c.z * p.sb.z + c.w * p.sb.w];
  }
}
