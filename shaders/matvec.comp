// matvec.comp: d[z, m, n0 + n] = sum_k a[z, m, k] * b[z', n, k] for a few rows m (M small).
// Reference: ref_matmul in engine/tensor/at-ops-matmul.c.
// Bandwidth-bound: a workgroup owns ROWS rows of b and MV rows of a; its invocations walk K
// (four elements, or a whole 32-block, at a time), subgroupAdd folds each subgroup's partial
// sums, and with MULTI_SG shared memory folds the subgroups' (GPUs, where a workgroup of the
// reported subgroup size may still run as several subgroups). On lavapipe a workgroup is one
// subgroup and no barrier is met; there the TEXEL variant reads a and b as texel buffers, and
// with GROUP a lane reads eight q8_0 / q4_0 blocks at once (whole texels, fields at fixed bits).
#version 450
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable
#include "common.glsl"

layout(constant_id = 5) const uint ROWS = 4;  // rows of b per workgroup
layout(constant_id = 6) const uint MV = 4;    // rows of a per workgroup
layout(constant_id = 9) const bool MULTI_SG = false;
// b is in an RGBA32UI view, rows start at 16 bytes, and q8_0, q4_0 or q4_K with K % 256 == 0
// (read 256 elements a texel group) or f16, bf16 with K % 8 == 0 (8 a texel). TEXEL only.
layout(constant_id = 10) const bool GROUP = false;

#include "matmul-common.glsl"

// Byte i of a q4_K super-block's 12 scale bytes, which fill words 1..3 of its first texel.
uint kscale(uvec4 head, uint i) {
  return (head[1u + (i >> 2)] >> (8u * (i & 3u))) & 0xffu;
}

const uint MAX_SG = 64u;  // subgroups per workgroup with MULTI_SG (workgroup <= 64 x 16)
shared float partial[MAX_SG];

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
#ifdef TEXEL
  if (GROUP && WTYPE >= WT_Q8_0) {
    // (q4_K: see below.)
    // b is an RGBA32UI view. Eight blocks (256 elements) of a row are 17 (q8_0) or 9 (q4_0)
    // whole texels: few fetches, the dominant cost on lavapipe. They are read as four pairs of
    // blocks; pair p is words 17p .. 17p + 16 (9p .. 9p + 8), i.e. words p .. of a window of
    // NT texels whose first is the previous pair's last. In a pair, block h is NH words from
    // word (PW / 2) h, its scale in half h of the first, its quants from byte 2 + 2h: fixed bit
    // positions, no per-lane realignment.
    const bool Q8 = WTYPE == WT_Q8_0;
    const uint PW = Q8 ? 17u : 9u, NH = Q8 ? 9u : 5u, NT = Q8 ? 5u : 3u;
    uint ng = p.K >> 8, bt4[ROWS];
    [[unroll]] for (uint r = 0u; r < ROWS; r++)
      bt4[r] = brow[r] >> 4;
    for (uint c0 = 0u; c0 < ng; c0 += sg) {
      uint c = min(c0 + lane, ng - 1u);
      float live = c0 + lane < ng ? 1.0 : 0.0;
      uvec4 carry[ROWS];
      [[unroll]] for (uint r = 0u; r < ROWS; r++)
        carry[r] = texelFetch(bt, int(bt4[r] + PW * c));
      [[unroll]] for (uint pp = 0u; pp < 4u; pp++) {
        vec4 av[MV][16];
        float asum[MV][2];
        [[unroll]] for (uint m = 0u; m < MV; m++)
          [[unroll]] for (uint h = 0u; h < 2u; h++) {
            vec4 t = vec4(0.0);
            [[unroll]] for (uint i = 0u; i < 8u; i++) {
              av[m][8u * h + i] = live * load_a4(arow[m] + 256u * c + 64u * pp + 32u * h + 4u * i);
              t += av[m][8u * h + i];
            }
            asum[m][h] = t.x + t.y + t.z + t.w;
          }
        [[unroll]] for (uint r = 0u; r < ROWS; r++) if (WTYPE == WT_Q4_K) {
          // A q4_K super-block is 9 texels: d, dmin and the 12 scale bytes in the first
          // (`carry`), then 2 per pair of sub-blocks (low nibbles, then high).
          uvec4 q0 = texelFetch(bt, int(bt4[r] + PW * c + 1u + 2u * pp));
          uvec4 q1 = texelFetch(bt, int(bt4[r] + PW * c + 2u + 2u * pp));
          uint W[8] = uint[8](q0.x, q0.y, q0.z, q0.w, q1.x, q1.y, q1.z, q1.w);
          vec2 dm = unpackHalf2x16(carry[r].x);
          [[unroll]] for (uint h = 0u; h < 2u; h++) {
            uint j = 2u * pp + h;
            float sc, mn;
            if (j < 4u) {
              sc = float(kscale(carry[r], j) & 63u);
              mn = float(kscale(carry[r], j + 4u) & 63u);
            } else {
              uint x = kscale(carry[r], j + 4u);
              sc = float((x & 0xfu) | ((kscale(carry[r], j - 4u) >> 6) << 4));
              mn = float((x >> 4) | ((kscale(carry[r], j) >> 6) << 4));
            }
            [[unroll]] for (uint m = 0u; m < MV; m++) {
              vec4 s = vec4(0.0);
              [[unroll]] for (uint i = 0u; i < 8u; i++) {
                vec4 q;
                [[unroll]] for (uint e = 0u; e < 4u; e++)
                  q[e] = float((W[i] >> (8u * e + 4u * h)) & 15u);
                s += av[m][8u * h + i] * q;
              }
              acc[r][m] += dm.x * sc * (s.x + s.y + s.z + s.w) - dm.y * mn * asum[m][h];
            }
          }
        } else {
          uvec4 T[NT];
          T[0] = carry[r];
          [[unroll]] for (uint j = 1u; j < NT; j++)
            T[j] = texelFetch(bt, int(bt4[r] + PW * c + (PW * pp) / 4u + j));
          carry[r] = T[NT - 1u];
          [[unroll]] for (uint h = 0u; h < 2u; h++) {
            uint W[NH];
            [[unroll]] for (uint j = 0u; j < NH; j++) {
              uint lw = (PW / 2u) * h + j + pp;
              W[j] = T[lw >> 2][lw & 3u];
            }
            float dd = unpackHalf2x16(W[0])[h];
            uint o = 2u + 2u * h;
            [[unroll]] for (uint m = 0u; m < MV; m++) {
              vec4 s = vec4(0.0);
              [[unroll]] for (uint i = 0u; i < 8u; i++) {
                vec4 q;
                [[unroll]] for (uint e = 0u; e < 4u; e++) {
                  uint k = 4u * i + e;
                  if (Q8) {
                    uint B = o + k;
                    q[e] = float((int(W[B >> 2]) << (24u - 8u * (B & 3u))) >> 24);
                  } else {
                    uint B = o + (k & 15u);
                    q[e] = float((W[B >> 2] >> (8u * (B & 3u) + (k >= 16u ? 4u : 0u))) & 15u);
                  }
                }
                s += av[m][8u * h + i] * q;
              }
              float t = s.x + s.y + s.z + s.w;
              acc[r][m] += dd * (Q8 ? t : t - 8.0 * asum[m][h]);
            }
          }
        }
      }
    }
  } else
#endif
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
#ifdef TEXEL
  } else if (GROUP) {
    // f16 / bf16 b in RGBA32UI texels, K % 8 == 0: eight elements per fetch.
    uint K8 = p.K >> 3;
    for (uint c0 = 0u; c0 < K8; c0 += sg) {
      uint c = min(c0 + lane, K8 - 1u);
      float live = c0 + lane < K8 ? 1.0 : 0.0;
      vec4 av[MV][2];
      [[unroll]] for (uint m = 0u; m < MV; m++) {
        av[m][0] = live * load_a4(arow[m] + 8u * c);
        av[m][1] = live * load_a4(arow[m] + 8u * c + 4u);
      }
      [[unroll]] for (uint r = 0u; r < ROWS; r++) {
        uvec4 t = texelFetch(bt, int((brow[r] >> 4) + c));
        vec4 b0, b1;
        if (WTYPE == WT_F16) {
          b0 = vec4(unpackHalf2x16(t.x), unpackHalf2x16(t.y));
          b1 = vec4(unpackHalf2x16(t.z), unpackHalf2x16(t.w));
        } else {
          b0 = uintBitsToFloat(uvec4(t.x << 16, t.x & 0xffff0000u, t.y << 16, t.y & 0xffff0000u));
          b1 = uintBitsToFloat(uvec4(t.z << 16, t.z & 0xffff0000u, t.w << 16, t.w & 0xffff0000u));
        }
        [[unroll]] for (uint m = 0u; m < MV; m++)
          acc[r][m] += dot(av[m][0], b0) + dot(av[m][1], b1);
      }
    }
#endif
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
        store_d(dbase + (m_first + m) * p.N + p.n0 + n_first + r, s);
    }
}
