// unary.comp: d[i] = f(scale * a[i] + bias) for f in identity (scale), GELU (tanh form),
// quick-GELU, SiLU, tanh, ReLU; a may be strided (this is also the copy behind at_cont).
// Reference: ref_unary in engine/tensor/at-ops-elementwise.c.
#version 450
#include "common.glsl"

layout(constant_id = 3) const uint OP = 0; // 0 scale, 1 gelu, 2 quick_gelu, 3 silu, 4 tanh, 5 relu, 6 gelu_erf

// 1 when a is contiguous: no index arithmetic, and (with VEC4) four elements an invocation.
layout(constant_id = 4) const uint CONTIG = 0;

#ifdef VEC4
#define T vec4
#else
#define T float
#endif
layout(binding = 0) readonly buffer A { T a[]; };
layout(binding = 1) writeonly buffer D { T d[]; };

layout(push_constant) uniform Push {
  uvec4 ne;
  uvec4 sa;
  uint oa, od, n;
  float scale, bias;
} p;

T apply(T x) {
  x = x * p.scale + p.bias;
  if (OP == 1)
    return 0.5 * x * (1.0 + tanh(0.7978845608 * (x + 0.044715 * x * x * x)));
  if (OP == 2)
    return x / (1.0 + exp(-1.702 * x));
  if (OP == 3)
    return x / (1.0 + exp(-x));
  if (OP == 4)
    return tanh(x);
  if (OP == 5)
    return max(x, T(0.0));
  if (OP == 6)
    return gelu_erf(x);
  return x;
}

void main() {
  uint i = linear_invocation();
  if (i >= p.n)  // n and the offsets count T elements (vec4s with VEC4)
    return;
  if (CONTIG == 1) {
    d[p.od + i] = apply(a[p.oa + i]);
    return;
  }
  uvec4 c = unravel4(i, p.ne);
  d[p.od + i] = apply(a[p.oa + c.x * p.sa.x + c.y * p.sa.y + c.z * p.sa.z + c.w * p.sa.w]);
}
