// dequant.glsl: reading weights of any supported dtype from words of the b binding, four
// consecutive elements of a row at a time. Matches dequant_block in engine/tensor/at-dtype.c
// (GGUF block layouts, little-endian, scales in IEEE half).
//
// The including shader defines the word reads `wbw(i)`, `wbw2(i)`, `wbw4(i)` (uint, uvec2,
// uvec4 at word, pair or quad index i), `wb_words()` (words bound) and the spec constant WTYPE
// (the AtDtype value). Rows start at a byte address `row` (even: all block sizes are even); `k` is a
// multiple of 4, so the four elements never straddle a block or a K-quant sub-block. Quantised
// blocks are only 2-byte aligned: 32-bit fields are read with wu32, which takes any even address.

const uint WT_F32 = 0u, WT_F16 = 1u, WT_BF16 = 2u, WT_Q8_0 = 4u, WT_Q4_0 = 5u, WT_Q4_1 = 6u,
           WT_Q5_0 = 7u, WT_Q5_1 = 8u, WT_Q4_K = 9u, WT_Q5_K = 10u, WT_Q6_K = 11u;

uint wbyte(uint a) {
  return (wbw(a >> 2) >> ((a & 3u) * 8u)) & 0xffu;
}

uint wu16(uint a) {
  return (wbw(a >> 2) >> ((a & 2u) * 8u)) & 0xffffu;
}

// Four bytes at an even address. (a + 2) >> 2 is the same word when a is 4-aligned, so the
// read never goes past the word holding the last byte.
uint wu32(uint a) {
  uint lo = wbw(a >> 2), hi = wbw((a + 2u) >> 2);
  return (a & 2u) == 0u ? lo : (lo >> 16) | (hi << 16);
}

float whalf(uint a) {
  return unpackHalf2x16(wu16(a)).x;
}

// Four unsigned bytes of a word as floats (exact).
vec4 ubytes4(uint w) {
  return vec4(uvec4(w & 0xffu, (w >> 8) & 0xffu, (w >> 16) & 0xffu, w >> 24));
}

vec4 sbytes4(uint w) {
  int x = int(w);
  return vec4(bitfieldExtract(x, 0, 8), bitfieldExtract(x, 8, 8), bitfieldExtract(x, 16, 8),
              bitfieldExtract(x, 24, 8));
}

// Bit i of `bits` (i = 0..3) moved to bit 4 of byte i.
uint fifth_bits(uint bits) {
  return ((bits & 1u) | ((bits & 2u) << 7) | ((bits & 4u) << 14) | ((bits & 8u) << 21)) << 4;
}

// K-quant 6-bit scale and min of sub-block j (0..7); the 12 scale bytes start at `s`.
void scale_min_k4(uint s, uint j, out float sc, out float m) {
  if (j < 4u) {
    sc = float(wbyte(s + j) & 63u);
    m = float(wbyte(s + j + 4u) & 63u);
  } else {
    uint x = wbyte(s + j + 4u);
    sc = float((x & 0xfu) | ((wbyte(s + j - 4u) >> 6) << 4));
    m = float((x >> 4) | ((wbyte(s + j) >> 6) << 4));
  }
}

// Bytes per row of K elements.
uint row_bytes(uint K) {
  switch (WTYPE) {
  case WT_F32: return K * 4u;
  case WT_F16: case WT_BF16: return K * 2u;
  case WT_Q8_0: return K / 32u * 34u;
  case WT_Q4_0: return K / 32u * 18u;
  case WT_Q4_1: return K / 32u * 20u;
  case WT_Q5_0: return K / 32u * 22u;
  case WT_Q5_1: return K / 32u * 24u;
  case WT_Q4_K: return K / 256u * 144u;
  case WT_Q5_K: return K / 256u * 176u;
  default: return K / 256u * 210u;
  }
}

// Elements k..k+3 of the row at byte `row`.
vec4 load_b4(uint row, uint k) {
  if (WTYPE == WT_F32) {
    if (B_VEC)
      return uintBitsToFloat(wbw4((row >> 4) + (k >> 2)));
    uint i = (row >> 2) + k;
    return uintBitsToFloat(uvec4(wbw(i), wbw(i + 1u), wbw(i + 2u), wbw(i + 3u)));
  }
  if (WTYPE == WT_F16 || WTYPE == WT_BF16) {
    uint x, y;
    if (B_VEC) {
      uvec2 v = wbw2((row >> 3) + (k >> 2));
      x = v.x;
      y = v.y;
    } else {
      x = wu32(row + 2u * k);
      y = wu32(row + 2u * k + 4u);
    }
    if (WTYPE == WT_F16)
      return vec4(unpackHalf2x16(x), unpackHalf2x16(y));
    return uintBitsToFloat(uvec4(x << 16, x & 0xffff0000u, y << 16, y & 0xffff0000u));
  }
  if (WTYPE <= WT_Q5_1) {
    uint e = k & 31u;
    uint ts = WTYPE == WT_Q8_0 ? 34u : WTYPE == WT_Q4_0 ? 18u : WTYPE == WT_Q4_1 ? 20u
            : WTYPE == WT_Q5_0 ? 22u : 24u;
    uint bb = row + (k >> 5) * ts;
    float d = whalf(bb);
    if (WTYPE == WT_Q8_0)
      return d * sbytes4(wu32(bb + 2u + e));
    bool has_min = WTYPE == WT_Q4_1 || WTYPE == WT_Q5_1;
    bool five = WTYPE == WT_Q5_0 || WTYPE == WT_Q5_1;
    uint qs = bb + (has_min ? 4u : 2u) + (five ? 4u : 0u);
    uint w = wu32(qs + (e & 15u));
    uint q = (e < 16u ? w : w >> 4) & 0x0f0f0f0fu;
    if (five)
      q |= fifth_bits(wu32(bb + (has_min ? 4u : 2u)) >> e);
    if (has_min)
      return d * ubytes4(q) + whalf(bb + 2u);
    return d * (ubytes4(q) - (five ? 16.0 : 8.0));
  }
  {
    uint e = k & 255u;
    if (WTYPE == WT_Q6_K) {
      uint bb = row + (k >> 8) * 210u;
      uint n = e >> 7, g = (e >> 5) & 3u, l = e & 31u;
      uint lo = (wu32(bb + n * 64u + (g & 1u) * 32u + l) >> (g >= 2u ? 4u : 0u)) & 0x0f0f0f0fu;
      uint hi = (wu32(bb + 128u + n * 32u + l) >> (2u * g)) & 0x03030303u;
      float s = whalf(bb + 208u) * float(bitfieldExtract(int(wbyte(bb + 192u + (e >> 4))), 0, 8));
      return s * (ubytes4(lo | (hi << 4)) - 32.0);
    }
    bool five = WTYPE == WT_Q5_K;
    uint bb = row + (k >> 8) * (five ? 176u : 144u);
    uint j = e >> 5, l = e & 31u;
    float sc, m;
    scale_min_k4(bb + 4u, j, sc, m);
    uint w = wu32(bb + (five ? 48u : 16u) + (j >> 1) * 32u + l);
    uint q = ((j & 1u) != 0u ? w >> 4 : w) & 0x0f0f0f0fu;
    if (five)
      q |= ((wu32(bb + 16u + l) >> j) & 0x01010101u) << 4;
    return (whalf(bb) * sc) * ubytes4(q) - whalf(bb + 2u) * m;
  }
}

// Same, with elements at or past K read as 0 (plain types only; quantised K is whole blocks).
vec4 load_b4_tail(uint row, uint k, uint K) {
  vec4 v = vec4(0.0);
  for (uint i = 0u; i < 4u && k + i < K; i++) {
    if (WTYPE == WT_F32)
      v[i] = uintBitsToFloat(wbw((row >> 2) + k + i));
    else if (WTYPE == WT_F16)
      v[i] = whalf(row + 2u * (k + i));
    else
      v[i] = uintBitsToFloat(wu16(row + 2u * (k + i)) << 16);
  }
  return v;
}

// 32 bytes at an even byte address, as 8 words (9 reads, realigned). Reads clamped to the binding.
void load_bytes32(uint a, out uint R[8]) {
  uint W[9];
  uint last = wb_words() - 1u, w0 = a >> 2;
  bool odd = (a & 2u) != 0u;
  [[unroll]] for (uint j = 0u; j < 9u; j++)
    W[j] = wbw(min(w0 + j, last));
  [[unroll]] for (uint j = 0u; j < 8u; j++)
    R[j] = odd ? (W[j] >> 16) | (W[j + 1u] << 16) : W[j];
}

// Elements 32 * s .. 32 * s + 31 of the row at byte `row`, for any quantised type: a whole
// q8_0 / q4_0 / q4_1 / q5_0 / q5_1 block, or one 32-element sub-block of a K-quant super-block.
// Each block's words are read once and realigned to 4 bytes (R[j] = block bytes 4j .. 4j + 3),
// so a lane reads a few words per 32 elements instead of two or three per 4.
void load_b32(uint row, uint s, out vec4 v[8]) {
  if (WTYPE == WT_Q4_K || WTYPE == WT_Q5_K) {
    bool five = WTYPE == WT_Q5_K;
    uint bb = row + (s >> 3) * (five ? 176u : 144u), j = s & 7u;
    uint Q[8], H[8];
    vec2 dm = unpackHalf2x16(wu32(bb));
    float sc, m;
    scale_min_k4(bb + 4u, j, sc, m);
    load_bytes32(bb + (five ? 48u : 16u) + (j >> 1) * 32u, Q);
    if (five)
      load_bytes32(bb + 16u, H);
    float ds = dm.x * sc, mm = dm.y * m;
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
      uint q = ((j & 1u) != 0u ? Q[i] >> 4 : Q[i]) & 0x0f0f0f0fu;
      if (five)
        q |= ((H[i] >> j) & 0x01010101u) << 4;
      v[i] = ds * ubytes4(q) - mm;
    }
    return;
  }
  if (WTYPE == WT_Q6_K) {
    uint bb = row + (s >> 3) * 210u, j = s & 7u, n = j >> 2, g = j & 3u;
    uint L[8], H[8];
    load_bytes32(bb + n * 64u + (g & 1u) * 32u, L);
    load_bytes32(bb + 128u + n * 32u, H);
    float d = whalf(bb + 208u);
    uint scw = wu16(bb + 192u + 2u * j);
    float s0 = d * float(bitfieldExtract(int(scw), 0, 8)), s1 = d * float(bitfieldExtract(int(scw), 8, 8));
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
      uint lo = (L[i] >> (g >= 2u ? 4u : 0u)) & 0x0f0f0f0fu;
      uint hi = (H[i] >> (2u * g)) & 0x03030303u;
      v[i] = (i < 4u ? s0 : s1) * (ubytes4(lo | (hi << 4)) - 32.0);
    }
    return;
  }
  const uint NW = WTYPE == WT_Q8_0 ? 10u : WTYPE == WT_Q4_0 ? 6u : WTYPE == WT_Q4_1 ? 6u
                : WTYPE == WT_Q5_0 ? 7u : 7u;
  uint bb = row + s * row_bytes(32u);
  uint W[10], R[9];
  uint last = wb_words() - 1u, w0 = bb >> 2;
  bool odd = (bb & 2u) != 0u;
  [[unroll]] for (uint j = 0u; j < NW; j++)
    W[j] = wbw(min(w0 + j, last));
  [[unroll]] for (uint j = 0u; j + 1u < NW; j++)
    R[j] = odd ? (W[j] >> 16) | (W[j + 1u] << 16) : W[j];
  float d = unpackHalf2x16(R[0]).x;
  if (WTYPE == WT_Q8_0) {
    [[unroll]] for (uint i = 0u; i < 8u; i++)
      v[i] = d * sbytes4((R[i] >> 16) | (R[i + 1u] << 16));
    return;
  }
  bool has_min = WTYPE == WT_Q4_1 || WTYPE == WT_Q5_1;
  bool five = WTYPE == WT_Q5_0 || WTYPE == WT_Q5_1;
  float m = has_min ? unpackHalf2x16(R[0]).y : 0.0;
  float off = has_min ? 0.0 : five ? 16.0 : 8.0;
  uint qh = WTYPE == WT_Q5_0 ? (R[0] >> 16) | (R[1] << 16) : WTYPE == WT_Q5_1 ? R[1] : 0u;
  [[unroll]] for (uint i = 0u; i < 4u; i++) {
    uint w;
    if (WTYPE == WT_Q4_0)
      w = (R[i] >> 16) | (R[i + 1u] << 16);
    else if (WTYPE == WT_Q4_1)
      w = R[i + 1u];
    else if (WTYPE == WT_Q5_0)
      w = (R[i + 1u] >> 16) | (R[i + 2u] << 16);
    else
      w = R[i + 2u];
    uint lo = w & 0x0f0f0f0fu, hi = (w >> 4) & 0x0f0f0f0fu;
    if (five) {
      lo |= fifth_bits(qh >> (4u * i));
      hi |= fifth_bits(qh >> (16u + 4u * i));
    }
    v[i] = d * (ubytes4(lo) - off) + m;
    v[i + 4u] = d * (ubytes4(hi) - off) + m;
  }
}
