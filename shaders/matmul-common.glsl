// matmul-common.glsl: what the matmul kernels share: the push constants (C mirror MatmulPush
// in engine/tensor/at-ops-matmul.c), the buffers, activation loads and batch offsets.
// d[z, m, n0 + n] = sum_k a[z, m, k] * b[z', n, k]; z' is z's batch in b (broadcast or GQA).

layout(constant_id = 3) const uint WTYPE = 0;  // AtDtype of b
layout(constant_id = 4) const uint ATYPE = 0;  // 0 f32, 1 f16 activations
// Set when every row of a (of b) starts at a multiple of 4 elements (of 16 bytes): then rows
// are read with vector loads. Spec constants, not run-time tests: lavapipe executes both sides
// of a branch whose condition it cannot prove uniform.
layout(constant_id = 7) const bool A_VEC = false;
layout(constant_id = 8) const bool B_VEC = false;

#ifdef TEXEL
// a and b as uniform texel buffers (matvec on CPU devices): on lavapipe texelFetch is a
// branch-free vector gather where a storage load with a per-lane address is a per-lane loop.
// a and b are R32UI views (words), or RGBA32UI (16-byte texels) where every row starts at a
// texel: f32 a (A_VEC), b with B_RGBA (chosen with the view in at-ops-matmul.c).
layout(binding = 0) uniform usamplerBuffer at;
layout(binding = 1) uniform usamplerBuffer bt;
const bool A_QUAD = ATYPE == 0u && A_VEC;
uint awd(uint i) { return A_QUAD ? texelFetch(at, int(i >> 2))[i & 3u] : texelFetch(at, int(i)).x; }
uvec4 awd4(uint i) {
  if (A_QUAD)
    return texelFetch(at, int(i));
  return uvec4(awd(4u * i), awd(4u * i + 1u), awd(4u * i + 2u), awd(4u * i + 3u));
}
layout(constant_id = 11) const bool B_RGBA = false;  // b's view is RGBA32UI (else R32UI)
uint wbw(uint i) { return B_RGBA ? texelFetch(bt, int(i >> 2))[i & 3u] : texelFetch(bt, int(i)).x; }
uvec2 wbw2(uint i) {
  if (B_RGBA) {
    uvec4 t = texelFetch(bt, int(i >> 1));
    return (i & 1u) == 0u ? t.xy : t.zw;
  }
  return uvec2(wbw(2u * i), wbw(2u * i + 1u));
}
uvec4 wbw4(uint i) {
  if (B_RGBA)
    return texelFetch(bt, int(i));
  return uvec4(wbw(4u * i), wbw(4u * i + 1u), wbw(4u * i + 2u), wbw(4u * i + 3u));
}
uint wb_words() { return uint(textureSize(bt)) * (B_RGBA ? 4u : 1u); }
#else
// a and b are also read through vector aliases of the same bindings where aligned: on lavapipe
// a load whose address differs per lane is a per-lane loop, so one uvec4 load costs what one
// uint load does.
layout(binding = 0) readonly buffer A { uint aw[]; };
layout(binding = 0) readonly buffer A4 { uvec4 aw4[]; };
layout(binding = 1) readonly buffer B { uint wb[]; };
layout(binding = 1) readonly buffer B2 { uvec2 wb2[]; };
layout(binding = 1) readonly buffer B4 { uvec4 wb4[]; };
uint awd(uint i) { return aw[i]; }
uvec4 awd4(uint i) { return aw4[i]; }
uint wbw(uint i) { return wb[i]; }
uvec2 wbw2(uint i) { return wb2[i]; }
uvec4 wbw4(uint i) { return wb4[i]; }
uint wb_words() { return uint(wb.length()); }
#endif
layout(binding = 2) writeonly buffer D { float d[]; };
// c, an addend of d's shape (at_matmul_add: a transformer block's residual), read unless
// p.oc is NO_C.
layout(binding = 3) readonly buffer C { float cadd[]; };
const uint NO_C = 0xffffffffu;

layout(push_constant) uniform Push {
  uint M, N, K;     // N: columns of d (all of b's rows, across chunks)
  uint n0, nrows;   // this dispatch's rows of b: columns n0 .. n0 + nrows - 1 of d
  uint oa, sam;     // a: first element and row stride, in elements of its dtype
  uint sa0, sa1;    // a: batch strides (0 where a broadcasts)
  uint ob;          // b: byte offset of the chunk's first row in the binding
  uint sbn;         // b: row stride in bytes
  uint sb0, sb1;    // b: batch strides in bytes (0 where b broadcasts)
  uint od;          // d: first element
  uint D1;          // d's inner batch size (to split gl_WorkGroupID.z)
  uint r0, r1;      // a batch index i uses b batch i / r
  uint oc;          // c: first element, or NO_C
  float eps;        // at_matmul_rms: the RMS norm's epsilon
  uint og;          // at_matmul_rms: the norm weight's first element, or NO_C (matvec_rows)
  uint gk;          // at_matmul_swiglu: K, a being [gate (K) | up (K)]; else 0 (matvec_rows)
  // at_matmul_rope_cache (matvec_rows): the position's element, the frequency factors' first
  // (or NO_C), the caches' first elements, their rows, n_rot, base and freq_scale.
  uint opos, off, okc, ovc, ncache, n_rot;
  float base, freq_scale;
} p;

#include "dequant.glsl"

uint a_batch() {
  uint z = gl_WorkGroupID.z;
  return p.oa + (z / p.D1) * p.sa0 + (z % p.D1) * p.sa1;
}

uint b_batch() {
  uint z = gl_WorkGroupID.z;
  return p.ob + (z / p.D1 / p.r0) * p.sb0 + ((z % p.D1) / p.r1) * p.sb1;
}

uint d_batch() {
  return p.od + gl_WorkGroupID.z * p.M * p.N;
}

// d[i] = v (+ c at the same place).
void store_d(uint i, float v) {
  d[i] = p.oc == NO_C ? v : v + cadd[p.oc + (i - p.od)];
}

uint aw32(uint a) {  // four bytes at an even byte address
  uint lo = awd(a >> 2), hi = awd((a + 2u) >> 2);
  return (a & 2u) == 0u ? lo : (lo >> 16) | (hi << 16);
}

// a elements i..i+3 (element index into the binding).
vec4 load_a4(uint i) {
  if (ATYPE == 0u) {
    if (A_VEC)
      return uintBitsToFloat(awd4(i >> 2));
    return uintBitsToFloat(uvec4(awd(i), awd(i + 1u), awd(i + 2u), awd(i + 3u)));
  }
  if (A_VEC)
    return vec4(unpackHalf2x16(awd(i >> 1)), unpackHalf2x16(awd((i >> 1) + 1u)));
  return vec4(unpackHalf2x16(aw32(2u * i)), unpackHalf2x16(aw32(2u * i + 4u)));
}

// Same, elements past the first `n` read as 0.
vec4 load_a4_tail(uint i, uint n) {
  vec4 v = vec4(0.0);
  for (uint j = 0u; j < 4u && j < n; j++)
    v[j] = ATYPE == 0u ? uintBitsToFloat(awd(i + j)) : unpackHalf2x16(awd((i + j) >> 1))[(i + j) & 1u];
  return v;
}
