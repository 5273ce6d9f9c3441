// unary.comp: d[i] = f(scale * a[i] + bias) for f in identity (scale), GELU (tanh form),
// quick-GELU, SiLU, tanh, ReLU; a may be strided (this is also the copy behind at_cont).
// Reference: ref_unary in engine/tensor/at-ops-elementwise.c.
#version 450
#include "common.glsl"

layout(constant_id = 3) const uint OP = 0; // 0 scale, 1 gelu, 2 quick_gelu, 3 silu, 4 tanh, 5 relu, 6 gelu_erf

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer D { float d[]; };

layout(push_constant) uniform Push {
  uvec4 ne;
  uvec4 sa;
  uint oa, od, n;
  float scale, bias;
} p;

// erf by Abramowitz and Stegun 7.1.26 (|error| < 1.5e-7).
float erf_approx(float x) {
  float t = 1.0 / (1.0 + 0.3275911 * abs(x));
  float y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
                   + 0.254829592) * t * exp(-x * x);
  return sign(x) * y;
}

void main() {
  uint i = linear_invocation();
  if (i >= p.n)
    return;
  uvec4 c = unravel4(i, p.ne);
  float x = a[p.oa + c.x * p.sa.x + c.y * p.sa.y + c.z * p.sa.z + c.w * p.sa.w] * p.scale + p.bias;
  float r = x;
  if (OP == 1)
    r = 0.5 * x * (1.0 + tanh(0.7978845608 * (x + 0.044715 * x * x * x)));
  else if (OP == 2)
    r = x / (1.0 + exp(-1.702 * x));
  else if (OP == 3)
    r = x / (1.0 + exp(-x));
  else if (OP == 4)
    r = tanh(x);
  else if (OP == 5)
    r = max(x, 0.0);
  else if (OP == 6)
    r = 0.5 * x * (1.0 + erf_approx(x * 0.7071067812));
  d[p.od + i] = r;
}
