// binary.comp: d[i] = a[i] OP b[i] with broadcasting (stride 0 on broadcast dimensions).
// Reference: ref_binary in engine/tensor/at-ops-elementwise.c.
#version 450
#include "common.glsl"

layout(constant_id = 3) const uint OP = 0; // 0 add, 1 mul, 2 sub, 3 div
// 1 when a, b and d are all contiguous with the same shape: no index arithmetic, and (with
// VEC4) four elements per invocation through vec4 loads.
layout(constant_id = 4) const uint CONTIG = 0;

#ifdef VEC4
#define T vec4
#else
#define T float
#endif
layout(binding = 0) readonly buffer A { T a[]; };
layout(binding = 1) readonly buffer B { T b[]; };
layout(binding = 2) writeonly buffer D { T d[]; };

T apply(T x, T y) {
  if (OP == 0)
    return x + y;
  else if (OP == 1)
    return x * y;
  else if (OP == 2)
    return x - y;
  return x / y;
}

layout(push_constant) uniform Push {
  uvec4 ne;       // dst shape, outermost first
  uvec4 sa;       // strides of a in elements
  uvec4 sb;       // strides of b
  uint oa, ob, od, n;
} p;

void main() {
  uint i = linear_invocation();
  if (i >= p.n)  // n counts T elements (vec4s with VEC4); offsets are in T units too
    return;
  if (CONTIG == 1) {
    d[p.od + i] = apply(a[p.oa + i], b[p.ob + i]);
    return;
  }
  uvec4 c = unravel4(i, p.ne);
  T x = a[p.oa + c.x * p.sa.x + c.y * p.sa.y + c.z * p.sa.z + c.w * p.sa.w];
  T y = b[p.ob + c.x * p.sb.x + c.y * p.sb.y + c.z * p.sb.z + c.w * p.sb.w];
  d[p.od + i] = apply(x, y);
}
