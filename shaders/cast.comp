// cast.comp: d = convert(a) between f32, f16 and bf16 (SRC_*/DST_* defines), a contiguous.
// 16-bit outputs are written a word (two elements) per invocation, so no two invocations share
// a word. Reference: ref_cast in engine/tensor/at-ops-rows.c (round to nearest even).
#version 450
#include "common.glsl"

layout(binding = 0) readonly buffer A { uint a[]; };
layout(binding = 1) writeonly buffer D { uint d[]; };

layout(push_constant) uniform Push {
  uint n, oa, od;  // element count; element offsets in the source and destination units
} p;

float load(uint e) {
#if defined(SRC_F16)
  return half_at(a[e >> 1], e);
#elif defined(SRC_BF16)
  return bf16_at(a[e >> 1], e);
#else
  return uintBitsToFloat(a[e]);
#endif
}

uint to_bf16(float f) {
  uint x = floatBitsToUint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return (x >> 16) | 0x40u;
  return (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
}

void main() {
  uint i = linear_invocation();
#if defined(DST_F32)
  if (i >= p.n)
    return;
  d[p.od + i] = floatBitsToUint(load(p.oa + i));
#else
  // One output word: elements 2i and 2i+1 (od is even: arena tensors start word-aligned).
  uint e = 2u * i;
  if (e >= p.n)
    return;
  float x0 = load(p.oa + e);
  float x1 = e + 1u < p.n ? load(p.oa + e + 1u) : 0.0;
#if defined(DST_F16)
  d[(p.od >> 1) + i] = packHalf2x16(vec2(x0, x1));
#else
  d[(p.od >> 1) + i] = to_bf16(x0) | (to_bf16(x1) << 16);
#endif
#endif
}
