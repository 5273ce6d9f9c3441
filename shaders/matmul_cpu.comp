// matmul_cpu.comp: d[z, m, n0 + n] = sum_k a[z, m, k] * b[z', n, k], the GEMM for CPU devices
// (lavapipe). Reference: ref_matmul in engine/tensor/at-ops-matmul.c.
// A workgroup is one subgroup (SG = the workgroup size = the device's subgroup size): no shared
// memory, no barriers (a barrier is a coroutine switch on lavapipe). It computes TM rows of d
// by SG * TN columns; lane l owns columns l, l + SG, ... and reads those rows of b along K.
// Lane l loads rows l, l + SG, ... of a, and subgroupShuffle with a constant lane hands each row
// to every lane (subgroupBroadcast compiles to a loop on lavapipe, shuffle to one or two
// instructions). Works for subgroups of 8 and 16 (and wider). Built twice: storage buffers,
// and TEXEL (matmul_cpu_texel, the default on CPU devices: a and b as uniform texel buffers,
// whose fetches lavapipe gathers where a storage load with a per-lane address is a loop over
// the lanes; 3.4x on AVX2, see at-ops-matmul.c).
#version 450
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_shuffle : enable
#include "common.glsl"

layout(constant_id = 5) const uint TM = 8;  // rows of a per workgroup
layout(constant_id = 6) const uint TN = 4;  // columns per lane
const uint SG = gl_WorkGroupSize.x;
const uint NA = (TM + SG - 1u) / SG;  // rows of a each lane loads

#include "matmul-common.glsl"

// acc[r][j] += a row r . b column j, for rows r of a handed round from lanes r % SG.
#define STEP(AV, BV)                                                                               \
  [[unroll]] for (uint r = 0u; r < TM; r++) {                                                      \
    vec4 ar = subgroupShuffle(AV[r / SG], r % SG);                                                 \
    [[unroll]] for (uint j = 0u; j < TN; j++)                                                      \
      acc[r][j] += dot(ar, BV[j]);                                                                 \
  }

void main() {
  uint lane = gl_SubgroupInvocationID;
  uint n_first = gl_WorkGroupID.x * SG * TN, m_first = gl_WorkGroupID.y * TM;
  if (n_first >= p.nrows || m_first >= p.M)
    return;
  uint abase = a_batch(), bbase = b_batch(), K4 = p.K >> 2;
  uint arow[NA];
  [[unroll]] for (uint i = 0u; i < NA; i++)
    arow[i] = abase + min(m_first + i * SG + lane, p.M - 1u) * p.sam;
  uint brow[TN];
  float acc[TM][TN];

  [[unroll]] for (uint j = 0u; j < TN; j++) {
    brow[j] = bbase + min(n_first + j * SG + lane, p.nrows - 1u) * p.sbn;
    [[unroll]] for (uint r = 0u; r < TM; r++)
      acc[r][j] = 0.0;
  }
  // Main steps, then the K % 4 tail (zeros past K) outside the loop: lavapipe runs both sides
  // of a branch it cannot prove uniform, so a tail test inside would cost every step.
  for (uint c = 0u; c < K4; c++) {
    uint k = 4u * c;
    vec4 bv[TN];
    vec4 av[NA];
    [[unroll]] for (uint i = 0u; i < NA; i++)
      av[i] = load_a4(arow[i] + k);
    [[unroll]] for (uint j = 0u; j < TN; j++)
      bv[j] = load_b4(brow[j], k);
    STEP(av, bv)
  }
  if ((p.K & 3u) != 0u) {
    uint k = 4u * K4;
    vec4 bv[TN];
    vec4 av[NA];
    [[unroll]] for (uint i = 0u; i < NA; i++)
      av[i] = load_a4_tail(arow[i] + k, p.K - k);
    [[unroll]] for (uint j = 0u; j < TN; j++)
      bv[j] = load_b4_tail(brow[j], k, p.K);
    STEP(av, bv)
  }
  uint dbase = d_batch() + p.n0;
  [[unroll]] for (uint r = 0u; r < TM; r++)
    [[unroll]] for (uint j = 0u; j < TN; j++) {
      uint n = n_first + j * SG + lane;
      if (m_first + r < p.M && n < p.nrows)
        store_d(dbase + (m_first + r) * p.N + n, acc[r][j]);
    }
}
