// group_norm.comp: per (n, group) of contiguous x [N, C, S]: mean and biased var over the
// group's C/G channels x S positions, y = (x - mean) / sqrt(var + eps) * w[c] + b[c].
// Reference: ref_group_norm in engine/tensor/at-ops-norm.c. One workgroup per group.
// VEC4: S and the offsets of x and d multiples of 4; s, ox and od are then in vec4 units.
#version 450
#extension GL_KHR_shader_subgroup_arithmetic : enable
#include "common.glsl"

layout(constant_id = 3) const uint WTYPE = 0; // 0 none, 1 f32, 2 f16 (two halves a word)
layout(constant_id = 4) const uint BTYPE = 0;

#ifdef VEC4
#define T vec4
float hsum(vec4 v) { return (v.x + v.y) + (v.z + v.w); }
#else
#define T float
float hsum(float v) { return v; }
#endif

layout(binding = 0) readonly buffer X { T x[]; };
layout(binding = 1) readonly buffer W { uint w[]; };
layout(binding = 2) readonly buffer B { uint b[]; };
layout(binding = 3) writeonly buffer D { T d[]; };

layout(push_constant) uniform Push {
  uint ox, ow, ob, od; // element offsets (ow, ob in halves for f16)
  uint n_rows;         // N * groups
  uint groups;
  uint cpg;            // channels per group
  uint s;              // spatial size
  float eps;
} p;

shared float red_sh[64];

float wg_sum(float v) {
  v = subgroupAdd(v);
  if (gl_NumSubgroups == 1u)
    return v;
  if (subgroupElect())
    red_sh[gl_SubgroupID] = v;
  barrier();
  float s = 0.0;
  for (uint i = 0u; i < gl_NumSubgroups; i++)
    s += red_sh[i];
  barrier();
  return s;
}

float weight_at(uint c) {
  if (WTYPE == 2u) {
    uint k = p.ow + c;
    return half_at(w[k >> 1], k);
  }
  return WTYPE == 1u ? uintBitsToFloat(w[p.ow + c]) : 1.0;
}

float bias_at(uint c) {
  if (BTYPE == 2u) {
    uint k = p.ob + c;
    return half_at(b[k >> 1], k);
  }
  return BTYPE == 1u ? uintBitsToFloat(b[p.ob + c]) : 0.0;
}

void main() {
  uint row = linear_group();
  if (row >= p.n_rows)
    return;
  uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
  uint len = p.cpg * p.s, first = row * len; // groups are consecutive chunks of x
  uint c0 = (row % p.groups) * p.cpg;

#ifdef VEC4
  float count = float(len * 4u);
#else
  float count = float(len);
#endif
  T s = T(0.0);
  for (uint i = lid; i < len; i += wg)
    s += x[p.ox + first + i];
  float mean = wg_sum(hsum(s)) / count;
  T v = T(0.0);
  for (uint i = lid; i < len; i += wg) {
    T t = x[p.ox + first + i] - mean;
    v += t * t;
  }
  float rstd = 1.0 / sqrt(wg_sum(hsum(v)) / count + p.eps);
  for (uint c = 0u; c < p.cpg; c++) {
    float wc = weight_at(c0 + c), bc = bias_at(c0 + c);
    uint at = first + c * p.s;
    for (uint i = lid; i < p.s; i += wg)
      d[p.od + at + i] = (x[p.ox + at + i] - mean) * rstd * wc + bc;
  }
}
