// matvec.comp: d[z, m, n0 + n] = sum_k a[z, m, k] * b[z', n, k] for a few rows m (M small).
// Reference: ref_matmul in engine/tensor/at-ops-matmul.c.
// Bandwidth-bound: a workgroup owns ROWS rows of b and MV rows of a; its invocations walk K
// (four elements, or a whole 32-block, at a time), subgroupAdd folds each subgroup's partial
// sums, and with MULTI_SG shared memory folds the subgroups' (GPUs, where a workgroup of the
// reported subgroup size may still run as several subgroups). On lavapipe a workgroup is one
// subgroup and no barrier is met.
#version 450
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable
#include "common.glsl"

layout(constant_id = 5) const uint ROWS = 4;  // rows of b per workgroup
layout(constant_id = 6) const uint MV = 4;    // rows of a per workgroup
layout(constant_id = 9) const bool MULTI_SG = false;

const uint MAX_SG = 64u;  // subgroups per workgroup with MULTI_SG (workgroup <= 64 x 16)
shared float partial[MAX_SG];

#include "matmul-common.glsl"

void main() {
  uint n_first = gl_WorkGroupID.x * ROWS, m_first = gl_WorkGroupID.y * MV;
  if (n_first >= p.nrows || m_first >= p.M)
    return;
  uint lane = gl_LocalInvocationID.x, sg = gl_WorkGroupSize.x;
  uint abase = a_batch(), bbase = b_batch(), K4 = p.K >> 2;
  uint arow[MV], brow[ROWS];
  float acc[ROWS][MV];

  [[unroll]] for (uint m = 0u; m < MV; m++)
    arow[m] = abase + min(m_first + m, p.M - 1u) * p.sam;
  [[unroll]] for (uint r = 0u; r < ROWS; r++) {
    brow[r] = bbase + min(n_first + r, p.nrows - 1u) * p.sbn;
    [[unroll]] for (uint m = 0u; m < MV; m++)
      acc[r][m] = 0.0;
  }
  if (WTYPE >= WT_Q8_0) {
    // 32 elements (a block or sub-block) per lane: fewer, wider reads (see load_b32).
    uint nb = p.K >> 5;
    for (uint c0 = 0u; c0 < nb; c0 += sg) {
      uint c = min(c0 + lane, nb - 1u);
      float live = c0 + lane < nb ? 1.0 : 0.0;
      vec4 av[MV][8];
      [[unroll]] for (uint m = 0u; m < MV; m++)
        [[unroll]] for (uint i = 0u; i < 8u; i++)
          av[m][i] = live * load_a4(arow[m] + 32u * c + 4u * i);
      [[unroll]] for (uint r = 0u; r < ROWS; r++) {
        vec4 bv[8];
        load_b32(brow[r], c, bv);
        [[unroll]] for (uint m = 0u; m < MV; m++) {
          vec4 s = vec4(0.0);
          [[unroll]] for (uint i = 0u; i < 8u; i++)
            s += av[m][i] * bv[i];
          acc[r][m] += s.x + s.y + s.z + s.w;
        }
      }
    }
  } else {
    // A uniform loop (lavapipe masks every instruction of a loop whose trip count differs per
    // lane); lanes past the end re-read the last group and add nothing.
    for (uint c0 = 0u; c0 < K4; c0 += sg) {
      uint c = min(c0 + lane, K4 - 1u);
      float live = c0 + lane < K4 ? 1.0 : 0.0;
      vec4 av[MV];
      [[unroll]] for (uint m = 0u; m < MV; m++)
        av[m] = live * load_a4(arow[m] + 4u * c);
      [[unroll]] for (uint r = 0u; r < ROWS; r++) {
        vec4 bv = load_b4(brow[r], 4u * c);
        [[unroll]] for (uint m = 0u; m < MV; m++)
          acc[r][m] += dot(av[m], bv);
      }
    }
  }
  if ((p.K & 3u) != 0u && lane == 0u) {
    uint k = 4u * K4;
    [[unroll]] for (uint r = 0u; r < ROWS; r++) {
      vec4 bv = load_b4_tail(brow[r], k, p.K);
      [[unroll]] for (uint m = 0u; m < MV; m++)
        acc[r][m] += dot(load_a4_tail(arow[m] + k, p.K - k), bv);
    }
  }
  uint dbase = d_batch();
  [[unroll]] for (uint r = 0u; r < ROWS; r++)
    [[unroll]] for (uint m = 0u; m < MV; m++) {
      float s = subgroupAdd(acc[r][m]);
      if (MULTI_SG) {
        if (subgroupElect())
          partial[gl_SubgroupID] = s;
        barrier();
        s = 0.0;
        for (uint i = 0u; i < gl_NumSubgroups; i++)
          s += partial[i];
        barrier();
      }
      if (lane == 0u && n_first + r < p.nrows && m_first + m < p.M)
        d[dbase + (m_first + m) * p.N + p.n0 + n_first + r] = s;
    }
}
