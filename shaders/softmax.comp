// softmax.comp: per row of x [n0, n1, Lq, Lk]: y = softmax(x * scale + mask) over the columns
// the row sees (all, or j <= i + Lk - Lq when causal); hidden columns give 0, a row that sees
// nothing gives 0s. Reference: ref_softmax in engine/tensor/at-ops-norm.c. One workgroup per
// row; one pass keeps a running max and sum per lane, a second writes.
// VEC4: Lk, the row strides and the offsets multiples of 4, columns contiguous (in x and the
// mask); Lk, strides and offsets are then in vec4 units (f16 mask: 4 halves, half a uvec4).
#version 450
#extension GL_KHR_shader_subgroup_arithmetic : enable
#extension GL_KHR_shader_subgroup_basic : enable
#include "common.glsl"

layout(constant_id = 3) const uint MTYPE = 0; // mask: 0 none, 1 f32, 2 f16 (two halves a word)
// 0: the workgroup shares one row; R > 0: R rows a workgroup, a subgroup a row (short rows;
// no barriers). A loop, not gl_SubgroupID alone, as the subgroup count may vary.
layout(constant_id = 4) const uint ROWS = 0;

#ifdef VEC4
#define T vec4
#define V uvec4
#define W 4u
#else
#define T float
#define V uint
#define W 1u
#endif

layout(binding = 0) readonly buffer X { T x[]; };
layout(binding = 1) readonly buffer M { V m[]; };
layout(binding = 2) writeonly buffer D { T d[]; };

layout(push_constant) uniform Push {
  uvec4 ne;      // x as [n0, n1, Lq, Lk]
  uvec4 sx;      // x strides in elements
  uvec4 sm;      // mask strides, 0 on broadcast dimensions
  uint ox, om, od; // element offsets (om in halves for f16)
  uint n_rows;
  float scale;
  uint causal;
} p;

#define NEG_INF uintBitsToFloat(0xff800000u)

shared float max_sh[64];
shared float sum_sh[64];

#ifdef VEC4
T mask_at(uint k) {
  if (MTYPE == 2u) {
    uvec4 q = m[k >> 1];
    uvec2 h = (k & 1u) != 0u ? q.zw : q.xy;
    return vec4(unpackHalf2x16(h.x), unpackHalf2x16(h.y));
  }
  return uintBitsToFloat(m[k]);
}
float hmax(vec4 v) { return max(max(v.x, v.y), max(v.z, v.w)); }
float hsum(vec4 v) { return (v.x + v.y) + (v.z + v.w); }
#else
T mask_at(uint k) {
  if (MTYPE == 2u)
    return half_at(m[k >> 1], k);
  return uintBitsToFloat(m[k]);
}
float hmax(float v) { return v; }
float hsum(float v) { return v; }
#endif

// The logits of column group j (W columns), -inf from column `n` on.
T logits(uint xb, uint mb, uint j, uint n) {
  T v = x[xb + j * p.sx.w] * p.scale;
  if (MTYPE != 0u)
    v += mask_at(mb + j * p.sm.w);
#ifdef VEC4
  if (j * 4u + 4u > n)
    for (uint c = 0u; c < 4u; c++)
      if (j * 4u + c >= n)
        v[c] = NEG_INF;
#endif
  return v;
}

void softmax_row(uint row, uint lid, uint wg) {
  uint lk = p.ne.w;
  uint iq = row % p.ne.z, r = row / p.ne.z;
  uint i0 = r / p.ne.y, i1 = r % p.ne.y;
  uint xb = p.ox + i0 * p.sx.x + i1 * p.sx.y + iq * p.sx.z;
  uint mb = p.om + i0 * p.sm.x + i1 * p.sm.y + iq * p.sm.z;
  uint dst = p.od + row * lk;
  // Columns [0, see) are visible; signed, as Lq > Lk leaves early rows nothing.
  int see = p.causal != 0u ? int(iq) + int(lk * W) - int(p.ne.z) + 1 : int(lk * W);
  uint n = uint(clamp(see, 0, int(lk * W)));
  uint groups = (n + W - 1u) / W;

  float mx = NEG_INF, sum = 0.0;
  for (uint j = lid; j < groups; j += wg) {
    T v = logits(xb, mb, j, n);
    float vm = hmax(v);
    if (vm > mx) {
      sum = mx == NEG_INF ? 0.0 : sum * exp(mx - vm);
      mx = vm;
    }
    if (mx != NEG_INF)
      sum += hsum(exp(v - mx));
  }
  float row_max = subgroupMax(mx);
  float part = mx == NEG_INF ? 0.0 : sum * exp(mx - row_max);
  float row_sum = subgroupAdd(part);
  if (ROWS == 0u && gl_NumSubgroups > 1u) {
    if (subgroupElect()) {
      max_sh[gl_SubgroupID] = row_max;
      sum_sh[gl_SubgroupID] = row_sum;
    }
    barrier();
    row_max = NEG_INF;
    for (uint i = 0u; i < gl_NumSubgroups; i++)
      row_max = max(row_max, max_sh[i]);
    row_sum = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++)
      if (max_sh[i] != NEG_INF)
        row_sum += sum_sh[i] * exp(max_sh[i] - row_max);
  }

  // exp(-inf - max) is 0 for hidden columns; a row with no visible column writes 0s.
  float inv = row_max == NEG_INF ? 0.0 : 1.0 / row_sum;
  for (uint j = lid; j < lk; j += wg) {
    T y = T(0.0);
    if (j < groups && inv != 0.0)
      y = exp(logits(xb, mb, j, n) - row_max) * inv;
    d[dst + j] = y;
  }
}

void main() {
  if (ROWS != 0u) {
    for (uint r = gl_SubgroupID; r < ROWS; r += gl_NumSubgroups) {
      uint row = linear_group() * ROWS + r;
      if (row < p.n_rows)
        softmax_row(row, gl_SubgroupInvocationID, gl_SubgroupSize);
    }
  } else if (linear_group() < p.n_rows) {
    softmax_row(linear_group(), gl_LocalInvocationID.x, gl_WorkGroupSize.x);
  }
}
