// matvec_rows.comp: d[z, 0, n0 + n] = sum_k a[z, 0, k] * b[z', n, k] for a vector a (M = 1)
// and q8_0, q4_0, q4_K or q6_K b (WTYPE). Reference: ref_matmul in engine/tensor/at-ops-matmul.c.
// For CPU devices (lavapipe), where every per-lane load is a gather that costs far more than
// the arithmetic it feeds. Lanes own rows of b and walk K together, 256 elements a step (eight
// blocks: 17 (q8_0) or 9 (q4_0) texels of an RGBA32UI view; a q4_K super-block: 9), so any K
// of whole blocks is read in whole texels and a short K still fills every lane (the K % 256
// blocks of q8_0 / q4_0 after the whole steps: TAIL). Rows need not start at 16 bytes: row
// n starts (OBM + n STEP) % 16 bytes into its first texel, so lane i of pass c takes row
// c + P i (P = 16 / gcd(STEP, 16)) and all rows of a pass share one misalignment, a
// compile-time constant: every field of every block sits at fixed bits. a is fetched once per
// subgroup, one texel per lane, and each element reaches all lanes by a constant-lane
// subgroupShuffle (one or two instructions on lavapipe, where a fetch is dozens).
// at_matmul_rms (RMS): a is first RMS-normalised, a * g / sqrt(mean(a^2) + eps) with g the
// norm's weight (binding 4, words from p.og); each workgroup sums a's squares itself, so the
// norm needs no dispatch of its own. at_matmul_swiglu (GLU, p.gk = K): a is [gate | up], 2 K
// long, and the product takes silu(gate) * up.
// at_matmul_rope_cache (ROPE): d is a token's q, k and v heads [RH + 2 RKV heads, RD], q and k
// heads turned by normal RoPE (pairs 2i, 2i + 1) at position pos[p.opos], and the k and v heads
// written into row pos of the caches [ncache, RKV, RD] (binding 7, 8; f32, or f16 with RF16):
// the rope dispatch a token otherwise costs. A row's partner n ^ 1 is the same lane's row in
// pass c ^ 1 (P > 1) or the next lane's in the same pass (P = 1), so every workgroup holds its
// pairs whole and the pass results wait in registers until all passes are done. Reference:
// ref_matmul_rope in engine/tensor/at-ops-matmul.c.
// Lavapipe runs a fetch under a mask it cannot prove full (inside a loop, or a branch on a
// push constant) as a loop over the lanes with a test and a bounds check each, several times
// the cost of the vector gather it makes elsewhere. So the fused variants are spec constants,
// and a K of at most eight steps (KS) is walked by fully unrolled code: measured 1.2-1.6x on
// SmolLM's rows (K 576, 1536), slower at K 4096, where the unrolled code outgrows the
// instruction cache.
// QA8 (q4_0, q8_0, q4_K): a is quantised to 8 bits per block of 32, as llama.cpp's CPU
// backend does (c = round(a 127 / max|a|), the block's scale max|a| / 127), and the products
// are integer, two to a 32-bit multiply: (n0 + n2 2^16) (c2 + c0 2^16) holds n0 c0 + n2 c2
// in its high half. Eight such products summed keep both halves within 16 bits (|n c| <= 15
// 127), so a block of 32 nibbles is 16 multiplies in two sums, where the float path takes 32
// conversions, multiplies and adds. The quantised a is packed per texel, the pairs (2, 0) and (3, 1) of
// its four elements: exactly the pairs of nibbles that `w & 0x000f000f` and
// `(w >> 8) & 0x000f000f` pick out of a word of q4_0 quants. q8_0 (signed bytes q, |q c| <=
// 128 127) fits one pair a multiply: (q0 + q2 2^16) (c2 + c0 2^16) has q0 c0 + q2 c2 (|.| <
// 2^15) in its high half and |q0 c2| < 2^15 below, so each product's high half is taken on
// its own, (x + 2^15) >> 16: 16 multiplies and 16 shifts a block, against 32 conversions,
// shifts, multiplies and adds. q4_K's sub-blocks of 32 are a's blocks: nibbles as q4_0's,
// each sub-block's scale and minimum applied to its integer sums. Reference: ref_matmul's qa8.
#version 450
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_shuffle : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable
#define TEXEL
#include "common.glsl"

layout(constant_id = 5) const uint RR = 1;     // rows per lane per pass
layout(constant_id = 12) const uint STEP = 0;  // row stride % 16, bytes (even)
layout(constant_id = 13) const uint OBM = 0;   // first row's offset % 16, bytes (even)
layout(constant_id = 14) const uint TAIL = 0;  // (K / 32) % 8: blocks after the whole steps
layout(constant_id = 15) const bool G_RGBA = false;  // the norm weight's view is RGBA32UI
layout(constant_id = 16) const uint KS = 0;  // K / 256, unrolled, or 0: a run-time loop
layout(constant_id = 17) const bool RMS = false;  // at_matmul_rms
layout(constant_id = 18) const bool GLU = false;  // at_matmul_swiglu
layout(constant_id = 19) const bool QA8 = false;  // a quantised to 8 bits (above)
layout(constant_id = 20) const bool ROPE = false;  // at_matmul_rope_cache
layout(constant_id = 21) const uint RD = 2;        // ROPE: head dimension (even)
layout(constant_id = 22) const uint RH = 0;        // ROPE: q heads
layout(constant_id = 23) const uint RKV = 0;       // ROPE: kv heads
layout(constant_id = 24) const bool RF16 = false;  // ROPE: f16 caches

#include "matmul-common.glsl"

// The norm's weight (RMS): R32UI, or RGBA32UI (G_RGBA) when it starts on a texel.
layout(binding = 4) uniform usamplerBuffer gt;
// ROPE: the position, the frequency factors (unless p.off is NO_C), the caches as words.
layout(binding = 5) readonly buffer Pos { int pos[]; };
layout(binding = 6) readonly buffer Ff { float ff[]; };
layout(binding = 7) writeonly buffer Kc { uint kcw[]; };
layout(binding = 8) writeonly buffer Vc { uint vcw[]; };

const uint S = gl_WorkGroupSize.x;  // one subgroup: 8 or 16 lanes
const uint P = (STEP & 15u) == 0u ? 1u : (STEP & 7u) == 0u ? 2u : (STEP & 3u) == 0u ? 4u : 8u;
const uint R = P * RR;  // rows per lane
const uint NA = 64u / S;  // a's texels per lane per step (S >= 8)
const bool Q8 = WTYPE == WT_Q8_0, QK = WTYPE == WT_Q4_K, Q6 = WTYPE == WT_Q6_K;
const uint BS = Q8 ? 34u : 18u;  // bytes a block: f16 scale, then 32 bytes or 16 of nibbles
const uint TS = QK ? 9u : BS / 2u;  // texels a step of 8 blocks (q4_K: one super-block)
const uint NW = (14u + 8u * BS + 15u) / 16u;  // texels a step's window spans at most

// Signed byte `o`, its low / high nibble, f16 at even byte `o` of a window T (texels,
// constant o).
#define BYTE(T, o) float((int(T[(o) >> 4][((o) >> 2) & 3u]) << (24u - 8u * ((o) & 3u))) >> 24)
#define NIB(T, o, h) float((T[(o) >> 4][((o) >> 2) & 3u] >> (8u * ((o) & 3u) + 4u * (h))) & 15u)
#define UBYTE(T, o) ((T[(o) >> 4][((o) >> 2) & 3u] >> (8u * ((o) & 3u))) & 255u)
#define HALF(T, o) unpackHalf2x16(T[(o) >> 4][((o) >> 2) & 3u])[((o) >> 1) & 1u]
#define WORDAT(T, o) T[(o) >> 4][((o) >> 2) & 3u]
// The 32-bit word at even byte `o` (constant): whole, or the halves of two.
#define WORD(T, o) \
  (((o) & 3u) == 0u ? WORDAT(T, o) : (WORDAT(T, (o) - 2u) >> 16) | (WORDAT(T, (o) + 2u) << 16))

// a's texel 64 g + q S + lane of the step (silu(gate) * up with GLU), normalised by rs and
// the weight with RMS.
void load_a(uint g, uint q, uint a4, uint alast, float rs, inout vec4 A) {
  uint t = min(a4 + 64u * g + q * S + gl_LocalInvocationID.x, alast);
  A = uintBitsToFloat(texelFetch(at, int(t)));
  if (GLU)
    A = A / (1.0 + exp(-A)) * uintBitsToFloat(texelFetch(at, int(min(t + p.gk / 4u, alast))));
  if (RMS) {
    uint wlast = uint(textureSize(gt)) - 1u;
    if (G_RGBA) {
      A *= rs * uintBitsToFloat(texelFetch(gt, int(min(p.og / 4u + t - a4, wlast))));
    } else {
      uint w = p.og + 4u * (t - a4);
      A *= rs * uintBitsToFloat(uvec4(texelFetch(gt, int(min(w, wlast))).x,
                                      texelFetch(gt, int(min(w + 1u, wlast))).x,
                                      texelFetch(gt, int(min(w + 2u, wlast))).x,
                                      texelFetch(gt, int(min(w + 3u, wlast))).x));
    }
  }
}

// QA8: a's texels A (those of nb blocks) quantised, each lane its own; a block's 8 texels sit
// on 8 aligned lanes, whose maximum and sum of quants (CS, for q4_0 and q4_K) three butterfly
// steps gather. P0, P1: the pairs (2, 0) and (3, 1) of a texel's quants; DA: its block's scale.
void quantize_a(vec4 A[NA], uint nb, out int P0[NA], out int P1[NA], out int CS[NA],
                out float DA[NA]) {
  [[unroll]] for (uint q = 0u; q < NA; q++)
    if (q * S < 8u * nb) {
      vec4 v = A[q];
      float amax = max(max(abs(v.x), abs(v.y)), max(abs(v.z), abs(v.w)));
      amax = max(amax, subgroupShuffleXor(amax, 1u));
      amax = max(amax, subgroupShuffleXor(amax, 2u));
      amax = max(amax, subgroupShuffleXor(amax, 4u));
      ivec4 c = ivec4(roundEven(v * (amax > 0.0 ? 127.0 / amax : 0.0)));
      P0[q] = c.z + (c.x << 16);
      P1[q] = c.w + (c.y << 16);
      if (!Q8) {
        int cs = (c.x + c.y) + (c.z + c.w);
        cs += subgroupShuffleXor(cs, 1u);
        cs += subgroupShuffleXor(cs, 2u);
        CS[q] = cs + subgroupShuffleXor(cs, 4u);
      }
      DA[q] = amax / 127.0;
    }
}

// Blocks 8g .. 8g + nb - 1 of RR rows whose windows start m bytes into texel t0[r] + TS g
// (nb and m constant where this is inlined).
void step(uint g, uint nb, uint m, uint t0[RR], uint a4, uint alast, uint blast, float rs,
          inout float acc[RR]) {
  // Each row's texels of the step, each fetched once (blocks share texels: 18 or 19 texels
  // hold eight q8_0 blocks, where fetching each block's own three took 24).
  uvec4 W[RR][NW];
  [[unroll]] for (uint r = 0u; r < RR; r++)
    [[unroll]] for (uint t = 0u; t < NW; t++)
      if (16u * t < m + BS * nb)
        W[r][t] = texelFetch(bt, int(min(t0[r] + TS * g + t, blast)));
  vec4 A[NA];
  [[unroll]] for (uint q = 0u; q < NA; q++)
    if (q * S < 8u * nb)
      load_a(g, q, a4, alast, rs, A[q]);
  if (QA8) {
    int P0[NA], P1[NA], CS[NA];
    float DA[NA];
    quantize_a(A, nb, P0, P1, CS, DA);
    [[unroll]] for (uint j = 0u; j < nb; j++) {
      int p0[8], p1[8];
      [[unroll]] for (uint i = 0u; i < 8u; i++) {
        uint t = 8u * j + i;  // a's texel within the step: elements 32 j + 4 i ..
        p0[i] = subgroupShuffle(P0[t / S], t % S);
        p1[i] = subgroupShuffle(P1[t / S], t % S);
      }
      uint t0 = 8u * j;
      float da = subgroupShuffle(DA[t0 / S], t0 % S);
      uint mo = m + BS * j;
      if (Q8) {
        [[unroll]] for (uint r = 0u; r < RR; r++) {
          // Word w holds signed bytes 4 w .. 4 w + 3: bytes 0 and 2 (and 1 and 3) sign-extended
          // into the halves of a word, against the pairs (2, 0) and (3, 1) of a's texel w.
          int h = 0;
          [[unroll]] for (uint w = 0u; w < 8u; w++) {
            uint qw = WORD(W[r], mo + 2u + 4u * w);
            int q02 = int(((qw & 0x00ff00ffu) ^ 0x00800080u) - 0x00800080u);
            int q13 = int((((qw >> 8) & 0x00ff00ffu) ^ 0x00800080u) - 0x00800080u);
            h += ((q02 * p0[w] + 32768) >> 16) + ((q13 * p1[w] + 32768) >> 16);
          }
          acc[r] += HALF(W[r], mo) * da * float(h);
        }
        continue;
      }
      int cs = subgroupShuffle(CS[t0 / S], t0 % S);
      [[unroll]] for (uint r = 0u; r < RR; r++) {
        // Word w of the quants: low nibbles are elements 4 w .. 4 w + 3 (texel w), high ones
        // 16 + 4 w .. (texel 4 + w).
        int lo = 0, hi = 0;
        [[unroll]] for (uint w = 0u; w < 4u; w++) {
          uint qw = WORD(W[r], mo + 2u + 4u * w);
          lo += int(qw & 0x000f000fu) * p0[w] + int((qw >> 8) & 0x000f000fu) * p1[w];
          hi += int((qw >> 4) & 0x000f000fu) * p0[4u + w] + int((qw >> 12) & 0x000f000fu) * p1[4u + w];
        }
        int h = ((lo + 32768) >> 16) + ((hi + 32768) >> 16);
        acc[r] += HALF(W[r], mo) * da * float(h - 8 * cs);
      }
    }
    return;
  }
  [[unroll]] for (uint j = 0u; j < nb; j++) {
    float av[32];
    [[unroll]] for (uint e = 0u; e < 32u; e++) {
      uint t = 8u * j + e / 4u;  // a's texel within the step
      av[e] = subgroupShuffle(A[t / S][e & 3u], t % S);
    }
    float asum = 0.0;  // q4_0 stores q + 8: d (sum a q - 8 sum a)
    if (!Q8)
      [[unroll]] for (uint e = 0u; e < 32u; e++)
        asum += av[e];
    uint mo = m + BS * j;  // the block's first byte in the step's window
    [[unroll]] for (uint r = 0u; r < RR; r++) {
      vec4 s = vec4(0.0);
      [[unroll]] for (uint i = 0u; i < 8u; i++) {
        vec4 a4v = vec4(av[4u * i], av[4u * i + 1u], av[4u * i + 2u], av[4u * i + 3u]);
        if (Q8) {
          uint o = mo + 2u + 4u * i;
          s += a4v * vec4(BYTE(W[r], o), BYTE(W[r], o + 1u), BYTE(W[r], o + 2u), BYTE(W[r], o + 3u));
        } else {
          // Elements 0..15 are the low nibbles of bytes 0..15, 16..31 the high ones.
          uint o = mo + 2u + (4u * i & 15u), h = i / 4u;
          s += a4v * vec4(NIB(W[r], o, h), NIB(W[r], o + 1u, h), NIB(W[r], o + 2u, h),
                          NIB(W[r], o + 3u, h));
        }
      }
      float t = s.x + s.y + s.z + s.w;
      acc[r] += HALF(W[r], mo) * (Q8 ? t : t - 8.0 * asum);
    }
  }
}

// q4_K: sub-block j's 6-bit scale and minimum, from the 12 bytes after d and dmin in the
// super-block starting m bytes into T.
vec2 k_scale_min(uvec4 T[10], uint m, uint j) {
  uint sb = m + 4u;  // the scale bytes
  if (j < 4u)
    return vec2(float(UBYTE(T, sb + j) & 63u), float(UBYTE(T, sb + j + 4u) & 63u));
  uint x = UBYTE(T, sb + j + 4u);
  return vec2(float((x & 15u) | ((UBYTE(T, sb + j - 4u) >> 6) << 4)),
              float((x >> 4) | ((UBYTE(T, sb + j) >> 6) << 4)));
}

// q4_K super-block g of RR rows (starting m bytes into texel t0[r] + 9 g): d, dmin (f16),
// 12 bytes of 6-bit scales and mins for the 8 sub-blocks of 32, then 4 x 32 bytes of nibbles
// (low nibbles: sub-block 2p, high: 2p + 1). Value = d sc q - dmin mn.
void step_k(uint g, uint m, uint t0[RR], uint a4, uint alast, uint blast, float rs,
            inout float acc[RR]) {
  vec4 A[NA];
  [[unroll]] for (uint q = 0u; q < NA; q++)
    load_a(g, q, a4, alast, rs, A[q]);
  int P0[NA], P1[NA], CS[NA];
  float DA[NA];
  if (QA8)
    quantize_a(A, 8u, P0, P1, CS, DA);
  [[unroll]] for (uint r = 0u; r < RR; r++) {
    uvec4 T[10];
    [[unroll]] for (uint t = 0u; t < 10u; t++)
      if (16u * t < m + 144u)
        T[t] = texelFetch(bt, int(min(t0[r] + 9u * g + t, blast)));
    vec2 dm = vec2(HALF(T, m), HALF(T, m + 2u));
    if (QA8) {
      // Sub-block j is a's block j: nibble h = j & 1 of the 32 bytes at 16 + 32 (j / 2), and
      // sum a (d sc q - dmin mn) = da (d sc sum c q - dmin mn sum c); two sums of eight
      // products keep their halves within 16 bits, as q4_0's do.
      [[unroll]] for (uint j = 0u; j < 8u; j++) {
        uint h = 4u * (j & 1u);
        vec2 sm = k_scale_min(T, m, j);
        int lo = 0, hi = 0;
        [[unroll]] for (uint i = 0u; i < 8u; i++) {
          uint t = 8u * j + i;  // a's texel within the step: elements 32 j + 4 i ..
          uint qw = WORD(T, m + 16u + 32u * (j / 2u) + 4u * i) >> h;
          int s2 = int(qw & 0x000f000fu) * subgroupShuffle(P0[t / S], t % S)
                 + int((qw >> 8) & 0x000f000fu) * subgroupShuffle(P1[t / S], t % S);
          if (i < 4u) lo += s2; else hi += s2;
        }
        uint t0 = 8u * j;
        float da = subgroupShuffle(DA[t0 / S], t0 % S);
        float cs = float(subgroupShuffle(CS[t0 / S], t0 % S));
        float cq = float(((lo + 32768) >> 16) + ((hi + 32768) >> 16));
        acc[r] += da * (dm.x * sm.x * cq - dm.y * sm.y * cs);
      }
      continue;
    }
    [[unroll]] for (uint j = 0u; j < 8u; j++) {
      vec2 sm = k_scale_min(T, m, j);
      vec4 s = vec4(0.0), as = vec4(0.0);
      [[unroll]] for (uint i = 0u; i < 8u; i++) {
        vec4 av;
        [[unroll]] for (uint e = 0u; e < 4u; e++) {
          uint t = 8u * j + i;  // a's texel within the step: elements 32 j + 4 i + e
          av[e] = subgroupShuffle(A[t / S][e], t % S);
        }
        uint o = m + 16u + 32u * (j / 2u) + 4u * i, h = j & 1u;
        s += av * vec4(NIB(T, o, h), NIB(T, o + 1u, h), NIB(T, o + 2u, h), NIB(T, o + 3u, h));
        as += av;
      }
      acc[r] += dm.x * sm.x * (s.x + s.y + s.z + s.w) - dm.y * sm.y * (as.x + as.y + as.z + as.w);
    }
  }
}

// q6_K super-block g of RR rows starting at byte rb[r] (bt is an R32UI view: super-blocks of
// 210 bytes fall at every even offset, so the 2-byte misalignment is taken at run time, one
// select a word, and every field then sits at a constant word): ql (128 bytes: low 4 bits),
// qh (64: high 2 bits), 16 signed scales, d (f16). Element 128 n + 32 g + l has low bits
// ql[64 n + 32 (g & 1) + l] >> 4 (g >= 2), high bits qh[32 n + l] >> 2 g, scale
// scales[8 n + 2 g + l / 16]; value d scale (q - 32).
void step_q6(uint g, uint rb[RR], uint a4, uint alast, uint blast, float rs, inout float acc[RR]) {
  vec4 A[NA];
  [[unroll]] for (uint q = 0u; q < NA; q++)
    load_a(g, q, a4, alast, rs, A[q]);
  [[unroll]] for (uint r = 0u; r < RR; r++) {
    uint h0 = (rb[r] >> 1) + 105u * g;  // the super-block's first halfword
    uint w0 = h0 >> 1;
    bool odd = (h0 & 1u) != 0u;
    uint R[53];
    uint prev = texelFetch(bt, int(min(w0, blast))).x;
    [[unroll]] for (uint j = 0u; j < 53u; j++) {
      uint next = texelFetch(bt, int(min(w0 + j + 1u, blast))).x;
      R[j] = odd ? (prev >> 16) | (next << 16) : prev;
      prev = next;
    }
    float d = unpackHalf2x16(R[52]).x;
    float sum = 0.0;
    [[unroll]] for (uint j8 = 0u; j8 < 8u; j8++) {
      uint n = j8 >> 2, gq = j8 & 3u;
      vec4 s0 = vec4(0.0), s1 = vec4(0.0), a0 = vec4(0.0), a1 = vec4(0.0);
      [[unroll]] for (uint i = 0u; i < 8u; i++) {
        vec4 av;
        [[unroll]] for (uint e = 0u; e < 4u; e++) {
          uint t = 8u * j8 + i;  // a's texel within the step: elements 32 j8 + 4 i + e
          av[e] = subgroupShuffle(A[t / S][e], t % S);
        }
        uint lo = (R[16u * n + 8u * (gq & 1u) + i] >> (gq >= 2u ? 4u : 0u)) & 0x0f0f0f0fu;
        uint hi = (R[32u + 8u * n + i] >> (2u * gq)) & 0x03030303u;
        uint qw = lo | (hi << 4);
        vec4 qv = vec4(uvec4(qw & 0xffu, (qw >> 8) & 0xffu, (qw >> 16) & 0xffu, qw >> 24));
        if (i < 4u) { s0 += av * qv; a0 += av; } else { s1 += av * qv; a1 += av; }
      }
      uint sb = 2u * j8;  // scales[8 n + 2 gq] and the next: bytes 192 + sb, 193 + sb
      int sw = int(R[48u + sb / 4u]);
      float sc0 = float(bitfieldExtract(sw, int(8u * (sb & 3u)), 8));
      float sc1 = float(bitfieldExtract(sw, int(8u * (sb & 3u) + 8u), 8));
      sum += sc0 * ((s0.x + s0.y) + (s0.z + s0.w) - 32.0 * ((a0.x + a0.y) + (a0.z + a0.w)))
           + sc1 * ((s1.x + s1.y) + (s1.z + s1.w) - 32.0 * ((a1.x + a1.y) + (a1.z + a1.w)));
    }
    acc[r] += d * sum;
  }
}

void whole_step(uint g, uint m, uint t0[RR], uint rb[RR], uint a4, uint alast, uint blast,
                float rs, inout float acc[RR]) {
  if (Q6)
    step_q6(g, rb, a4, alast, blast, rs, acc);
  else if (QK)
    step_k(g, m, t0, a4, alast, blast, rs, acc);
  else
    step(g, 8u, m, t0, a4, alast, blast, rs, acc);
}

// Pass c: rows n_first + c + P (r S + lane), r < RR, stored (acc: their sums, for ROPE to
// store).
void pass(uint c, uint n_first, float rs, out float acc[RR]) {
  uint lane = gl_LocalInvocationID.x;
  uint m = (OBM + c * STEP) & 15u;  // this pass's misalignment
  uint a4 = a_batch() >> 2, alast = uint(textureSize(at)) - 1u;
  uint blast = uint(textureSize(bt)) - 1u, bbase = b_batch();
  uint t0[RR], rb[RR];
  [[unroll]] for (uint r = 0u; r < RR; r++) {
    rb[r] = bbase + (n_first + c + P * (r * S + lane)) * p.sbn;
    t0[r] = rb[r] >> 4;
    acc[r] = 0.0;
  }
  if (KS > 0u) {
    [[unroll]] for (uint g = 0u; g < KS; g++)
      whole_step(g, m, t0, rb, a4, alast, blast, rs, acc);
  } else {
    for (uint g = 0u; g < p.K >> 8; g++)
      whole_step(g, m, t0, rb, a4, alast, blast, rs, acc);
  }
  if (TAIL > 0u && !QK && !Q6)
    step(KS > 0u ? KS : p.K >> 8, TAIL, m, t0, a4, alast, blast, rs, acc);
  if (ROPE)
    return;
  uint dbase = d_batch() + p.n0;
  [[unroll]] for (uint r = 0u; r < RR; r++) {
    uint n = n_first + c + P * (r * S + lane);
    if (n < p.nrows)
      store_d(dbase + n, acc[r]);
  }
}

// ROPE: row n (of this dispatch's rows) with sum v, its partner n ^ 1's sum w.
void rope_store(uint n, float v, float w, int at) {
  uint gn = p.n0 + n, h = gn / RD, e = gn % RD;
  bool odd = (gn & 1u) != 0u;
  float y = v, yw = w;  // the row's and its partner's results
  if (h < RH + RKV && e < p.n_rot) {
    float theta = float(at) * p.freq_scale * pow(p.base, -2.0 * float(e / 2u) / float(p.n_rot));
    if (p.off != NO_C)
      theta /= ff[p.off + e / 2u];
    float cs = cos(theta), sn = sin(theta);
    // (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos)
    float x0 = odd ? w : v, x1 = odd ? v : w;
    float y0 = x0 * cs - x1 * sn, y1 = x0 * sn + x1 * cs;
    y = odd ? y1 : y0;
    yw = odd ? y0 : y1;
  }
  if (n >= p.nrows)
    return;
  d[d_batch() + gn] = y;
  if (h < RH || at < 0 || uint(at) >= p.ncache)
    return;
  bool isv = h >= RH + RKV;
  uint el = (uint(at) * RKV + h - RH - (isv ? RKV : 0u)) * RD + e;  // the cache's element
  if (RF16) {
    // Halves in pairs: the even row writes the word.
    if (!odd) {
      uint wd = packHalf2x16(vec2(y, yw));
      if (isv) vcw[(p.ovc + el) / 2u] = wd; else kcw[(p.okc + el) / 2u] = wd;
    }
  } else if (isv) {
    vcw[p.ovc + el] = floatBitsToUint(y);
  } else {
    kcw[p.okc + el] = floatBitsToUint(y);
  }
}

void main() {
  uint n_first = gl_WorkGroupID.x * S * R;
  if (n_first >= p.nrows)
    return;
  // The RMS norm's 1 / sqrt(mean(a^2) + eps), from a's K / 4 texels.
  float rs = 1.0;
  if (RMS) {
    uint a4 = a_batch() >> 2, kq = p.K / 4u;
    float ss = 0.0;
    if (KS > 0u) {
      // K = 256 KS + 32 TAIL: its texels, S at a time, unrolled.
      [[unroll]] for (uint i = 0u; i < (64u * KS + 8u * TAIL + S - 1u) / S; i++) {
        uint t = i * S + gl_LocalInvocationID.x;
        vec4 v = uintBitsToFloat(texelFetch(at, int(a4 + min(t, kq - 1u))));
        ss += t < kq ? dot(v, v) : 0.0;
      }
    } else {
      for (uint t = gl_LocalInvocationID.x; t < kq; t += S) {
        vec4 v = uintBitsToFloat(texelFetch(at, int(a4 + t)));
        ss += dot(v, v);
      }
    }
    rs = inversesqrt(subgroupAdd(ss) / float(p.K) + p.eps);
  }
  // One inlined copy per pass, each with its constant misalignment.
  float acc[8][RR];
  pass(0u, n_first, rs, acc[0]);
  if (P > 1u) pass(1u, n_first, rs, acc[1]);
  if (P > 2u) { pass(2u, n_first, rs, acc[2]); pass(3u, n_first, rs, acc[3]); }
  if (P > 4u) {
    pass(4u, n_first, rs, acc[4]); pass(5u, n_first, rs, acc[5]);
    pass(6u, n_first, rs, acc[6]); pass(7u, n_first, rs, acc[7]);
  }
  if (ROPE) {
    int at = pos[p.opos];
    [[unroll]] for (uint c = 0u; c < P; c++)
      [[unroll]] for (uint r = 0u; r < RR; r++) {
        float w = P == 1u ? subgroupShuffleXor(acc[0][r], 1u) : acc[c ^ 1u][r];
        rope_store(n_first + c + P * (r * S + gl_LocalInvocationID.x), acc[c][r], w, at);
      }
  }
}
