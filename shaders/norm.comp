// norm.comp: per row of x [rows, D]: layer norm y = (x - mean) / sqrt(var + eps) * w + b (biased
// var), or with RMS: y = x / sqrt(mean(x^2) + eps) * w. Reference: ref_norm in
// engine/tensor/at-ops-norm.c. One workgroup per row; one subgroup needs no barrier.
// VEC4: rows contiguous, D and every offset and row stride multiples of 4 (f16 vectors: of 8
// halves); sizes, strides and offsets are then in vec4 units (f16 vectors: in uvec4 of 8 halves).
#version 450
#extension GL_KHR_shader_subgroup_arithmetic : enable
#include "common.glsl"

layout(constant_id = 3) const uint RMS = 0;
layout(constant_id = 4) const uint WTYPE = 0; // 0 none, 1 f32, 2 f16 (two halves a word)
layout(constant_id = 5) const uint BTYPE = 0;
// 0: the workgroup shares one row; R > 0: R rows a workgroup, a subgroup a row (short rows;
// no barriers). A loop, not gl_SubgroupID alone, as the subgroup count may vary.
layout(constant_id = 6) const uint ROWS = 0;

#ifdef VEC4
#define T vec4
#define V uvec4
#else
#define T float
#define V uint
#endif

layout(binding = 0) readonly buffer X { T x[]; };
layout(binding = 1) readonly buffer W { V w[]; };
layout(binding = 2) readonly buffer B { V b[]; };
layout(binding = 3) writeonly buffer D { T d[]; };

layout(push_constant) uniform Push {
  uvec4 ne;      // x as [n0, n1, n2, D]
  uvec4 sx;      // x strides in elements
  uint ox, ow, ob, od; // element offsets (ow, ob in halves for f16)
  uint n_rows;
  float eps;
} p;

shared float red_sh[64];

float wg_sum(float v) {
  v = subgroupAdd(v);
  if (ROWS != 0u || gl_NumSubgroups == 1u)
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

// Element (vec4) i of a vector of type `kind` starting at `o`.
#ifdef VEC4
T vec_at(uint kind, uint o, uint i, bool is_w) {
  if (kind == 2u) {
    uint k = o + i;
    uvec4 q = is_w ? w[k >> 1] : b[k >> 1];
    uvec2 h = (k & 1u) != 0u ? q.zw : q.xy;
    return vec4(unpackHalf2x16(h.x), unpackHalf2x16(h.y));
  }
  return uintBitsToFloat(is_w ? w[o + i] : b[o + i]);
}
float hsum(vec4 v) { return (v.x + v.y) + (v.z + v.w); }
#else
T vec_at(uint kind, uint o, uint i, bool is_w) {
  if (kind == 2u) {
    uint k = o + i;
    return half_at(is_w ? w[k >> 1] : b[k >> 1], k);
  }
  return uintBitsToFloat(is_w ? w[o + i] : b[o + i]);
}
float hsum(float v) { return v; }
#endif

void norm_row(uint row, uint lid, uint wg) {
  uint n = p.ne.w;
  uint i2 = row % p.ne.z, r = row / p.ne.z;
  uint base = p.ox + (r / p.ne.y) * p.sx.x + (r % p.ne.y) * p.sx.y + i2 * p.sx.z;
  uint sw = p.sx.w, dst = p.od + row * n;
#ifdef VEC4
  float count = float(n * 4u);
#else
  float count = float(n);
#endif

  float mean = 0.0;
  if (RMS == 0u) {
    T s = T(0.0);
    for (uint i = lid; i < n; i += wg)
      s += x[base + i * sw];
    mean = wg_sum(hsum(s)) / count;
  }
  T v = T(0.0);
  for (uint i = lid; i < n; i += wg) {
    T t = x[base + i * sw] - mean;
    v += t * t;
  }
  float rstd = 1.0 / sqrt(wg_sum(hsum(v)) / count + p.eps);
  for (uint i = lid; i < n; i += wg) {
    T y = (x[base + i * sw] - mean) * rstd;
    if (WTYPE != 0u)
      y *= vec_at(WTYPE, p.ow, i, true);
    if (BTYPE != 0u)
      y += vec_at(BTYPE, p.ob, i, false);
    d[dst + i] = y;
  }
}

void main() {
  if (ROWS != 0u) {
    for (uint r = gl_SubgroupID; r < ROWS; r += gl_NumSubgroups) {
      uint row = linear_group() * ROWS + r;
      if (row < p.n_rows)
        norm_row(row, gl_SubgroupInvocationID, gl_SubgroupSize);
    }
  } else if (linear_group() < p.n_rows) {
    norm_row(linear_group(), gl_LocalInvocationID.x, gl_WorkGroupSize.x);
  }
}
