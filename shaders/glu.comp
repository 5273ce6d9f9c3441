// glu.comp: d[i] = act(g[i]) * u[i], act SiLU or GELU (erf or tanh form); g and u strided 4-d views
// (two halves of one tensor for at_glu). Reference: ref_glu in engine/tensor/at-ops-norm.c.
// LAYOUT 0: any strides; 1: rows of ne.w contiguous elements, row strides sg.x and su.x, d
// contiguous; 2: all contiguous. VEC4 (layouts 1, 2): sizes, strides and offsets in vec4 units.
#version 450
#include "common.glsl"

layout(constant_id = 3) const uint GELU = 0; // 0 silu, 1 gelu (erf), 2 gelu (tanh form)
layout(constant_id = 4) const uint LAYOUT = 0;

#ifdef VEC4
#define T vec4
#else
#define T float
#endif

layout(binding = 0) readonly buffer G { T g[]; };
layout(binding = 1) readonly buffer U { T u[]; };
layout(binding = 2) writeonly buffer D { T d[]; };

layout(push_constant) uniform Push {
  uvec4 ne;      // output shape
  uvec4 sg, su;  // strides of g and u in elements
  uint og, ou, od, n;
} p;

T act(T a) {
  if (GELU == 1u)
    return gelu_erf(a);
  if (GELU == 2u)
    return 0.5 * a * (1.0 + tanh(0.7978845608 * (a + 0.044715 * a * a * a)));
  return a / (1.0 + exp(-a));
}

void main() {
  uint i = linear_invocation();
  if (i >= p.n)
    return;
  uint ig, iu;
  if (LAYOUT == 2u) {
    ig = p.og + i;
    iu = p.ou + i;
  } else if (LAYOUT == 1u) {
    uint row = i / p.ne.w, col = i % p.ne.w;
    ig = p.og + row * p.sg.x + col;
    iu = p.ou + row * p.su.x + col;
  } else {
    uvec4 c = unravel4(i, p.ne);
    ig = p.og + c.x * p.sg.x + c.y * p.sg.y + c.z * p.sg.z + c.w * p.sg.w;
    iu = p.ou + c.x * p.su.x + c.y * p.su.y + c.z * p.su.z + c.w * p.su.w;
  }
  d[p.od + i] = act(g[ig]) * u[iu];
}
