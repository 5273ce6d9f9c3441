// attention_combine.comp: o[r, d] = sum_s acc_s[d] e^(m_s - M) / sum_s l_s e^(m_s - M), M = max m_s
// over the splits s with l_s > 0 (0 when none): merges attention.comp's split-K partials.
// Reference: ref_attention in engine/tensor/at-ops-attention.c (the whole attention).
#version 450
#include "common.glsl"

layout(binding = 0) readonly buffer P { float part[]; }; // [rows, nsplit, D + 2]: acc[D], m, l
layout(binding = 1) writeonly buffer O { float o[]; };   // [rows, D]

layout(push_constant) uniform Push {
  uint op, oo, d, nsplit, n;
} p;

void main() {
  uint i = linear_invocation();
  if (i >= p.n)
    return;
  uint row = i / p.d, col = i % p.d, w = p.d + 2u;
  uint base = p.op + row * p.nsplit * w;
  float mx = -1.0 / 0.0;
  for (uint s = 0; s < p.nsplit; s++)
    if (part[base + s * w + p.d + 1u] > 0.0)
      mx = max(mx, part[base + s * w + p.d]);
  float l = 0.0, a = 0.0;
  for (uint s = 0; s < p.nsplit; s++) {
    float ls = part[base + s * w + p.d + 1u];
    if (ls > 0.0) {
      float f = exp(part[base + s * w + p.d] - mx);
      l += ls * f;
      a += part[base + s * w + col] * f;
    }
  }
  o[p.oo + i] = l > 0.0 ? a / l : 0.0;
}
