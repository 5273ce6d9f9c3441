// matmul_gpu.comp: d[z, m, n0 + n] = sum_k a[z, m, k] * b[z', n, k], the shared-memory tiled
// GEMM for GPUs. Reference: ref_matmul in engine/tensor/at-ops-matmul.c.
// 256 invocations compute a 64 x 64 tile of d, 4 x 4 each. Per step of 16 along K, each
// invocation loads four elements of a and four of b (dequantised) into shared memory.
#version 450
#include "common.glsl"

#include "matmul-common.glsl"

const uint BM = 64u, BN = 64u, BK4 = 4u;  // BK = 16 elements, as 4 vec4

shared vec4 as_[BM][BK4];
shared vec4 bs_[BN][BK4];

vec4 a_chunk(uint row, uint k) {
  if (k + 4u <= p.K)
    return load_a4(row + k);
  return k < p.K ? load_a4_tail(row + k, p.K - k) : vec4(0.0);
}

vec4 b_chunk(uint row, uint k) {
  if (k + 4u <= p.K)
    return load_b4(row, k);
  return k < p.K ? load_b4_tail(row, k, p.K) : vec4(0.0);
}

void main() {
  uint n_first = gl_WorkGroupID.x * BN, m_first = gl_WorkGroupID.y * BM;
  if (n_first >= p.nrows || m_first >= p.M)
    return;
  uint t = gl_LocalInvocationID.x, tx = t % 16u, ty = t / 16u;
  uint lrow = t / BK4, lk = t % BK4;
  uint arow = a_batch() + min(m_first + lrow, p.M - 1u) * p.sam;
  uint brow = b_batch() + min(n_first + lrow, p.nrows - 1u) * p.sbn;
  float acc[4][4];

  [[unroll]] for (uint i = 0u; i < 4u; i++)
    [[unroll]] for (uint j = 0u; j < 4u; j++)
      acc[i][j] = 0.0;
  for (uint k0 = 0u; k0 < p.K; k0 += 4u * BK4) {
    as_[lrow][lk] = a_chunk(arow, k0 + 4u * lk);
    bs_[lrow][lk] = b_chunk(brow, k0 + 4u * lk);
    barrier();
    [[unroll]] for (uint kk = 0u; kk < BK4; kk++) {
      vec4 av[4], bv[4];
      [[unroll]] for (uint i = 0u; i < 4u; i++) {
        av[i] = as_[ty * 4u + i][kk];
        bv[i] = bs_[tx * 4u + i][kk];
      }
      [[unroll]] for (uint i = 0u; i < 4u; i++)
        [[unroll]] for (uint j = 0u; j < 4u; j++)
          acc[i][j] += dot(av[i], bv[j]);
    }
    barrier();
  }
  uint dbase = d_batch() + p.n0;
  [[unroll]] for (uint i = 0u; i < 4u; i++)
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
      uint m = m_first + ty * 4u + i, n = n_first + tx * 4u + j;
      if (m < p.M && n < p.nrows)
        store_d(dbase + m * p.N + n, acc[i][j]);
    }
}
