// binary.comp: d[i] = a[i] OP b[i] with broadcasting (stride 0 on broadcast dimensions).
// Reference: ref_binary in engine/tensor/at-ops-elementwise.c.
#version 450
#include "common.glsl"

layout(constant_id = 3) const uint OP = 0; // 0 add, 1 mul, 2 sub, 3 div

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer D { float d[]; };

layout(push_constant) uniform Push {
  uvec4 ne;       // dst shape, outermost first
  uvec4 sa;       // strides of a in elements
  uvec4 sb;       // strides of b
  uint oa, ob, od, n;
} p;

void main() {
  uint i = linear_invocation();
  if (i >= p.n)
    return;
  uvec4 c = unravel4(i, p.ne);
  float x = a[p.oa + c.x * p.sa.x + c.y * p.sa.y + c.z * p.sa.z + c.w * p.sa.w];
  float y = b[p.ob + c.x * p.sb.x + c.y * p.sb.y + c.z * p.sb.z + c.w * p.sb.w];
  float r;
  if (OP == 0)
    r = x + y;
  else if (OP == 1)
    r = x * y;
  else if (OP == 2)
    r = x - y;
  else
    r = x / y;
  d[p.od + i] = r;
}
