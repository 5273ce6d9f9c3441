// rope.comp: rotary position embedding of x [B, L, H, D] (D contiguous, other dims strided):
// pair i < n_rot/2 at position pos turns by theta = pos * freq_scale * base^(-2i/n_rot) / ff[i];
// pairs are (2i, 2i+1) (normal) or (i, i + n_rot/2) (NEOX); dims >= n_rot are copied.
// Reference: ref_rope in engine/tensor/at-ops-norm.c. One invocation per (batch, position) and
// pair or copied dim, looping over the heads.
// at_rope_cache (p.ncache > 0): x is [L, Hq + 2 Hkv, D], the q, k and v heads of one token; q
// and k heads turn, v heads are copied, and each k and v head is also written into row
// pos[l] of the k and v caches [ncache, Hkv, D] (rows outside the cache are not written).
// CACHE_F16 (define): the caches are halves (needs 16-bit storage).
#version 450
#ifdef CACHE_F16
#extension GL_EXT_shader_16bit_storage : require
#endif
#include "common.glsl"

layout(constant_id = 3) const uint NEOX = 0;
layout(constant_id = 4) const uint HAS_FF = 0;

#ifdef VEC4
#define T vec4
#define TC f16vec4
#else
#define T float
#define TC float16_t
#endif
#ifndef CACHE_F16
#undef TC
#define TC T
#endif

layout(binding = 0) readonly buffer X { T x[]; };
layout(binding = 1) readonly buffer P { int pos[]; };
layout(binding = 2) readonly buffer F { float ff[]; };
layout(binding = 3) writeonly buffer D { T d[]; };
layout(binding = 4) writeonly buffer KC { TC kc[]; };
layout(binding = 5) writeonly buffer VC { TC vc[]; };

layout(push_constant) uniform Push {
  uvec4 ne;      // x as [B, L, H, D]
  uvec4 sx;      // x strides in elements (sx.w is 1)
  uint ox, op, of, od;
  uint n_rot;
  uint per_row;  // n_rot / 2 pairs + (D - n_rot) copies (VEC4: items of 4 elements)
  uint n;        // B * L * per_row
  float base, freq_scale;
  uint nq, nkv;      // at_rope_cache: q heads, kv heads
  uint okc, ovc;     // the caches' first elements (VEC4: vec4 units)
  uint ncache;       // cache rows; 0: no caches
} p;

// d's element k of head h (of the token at dst, position index l), and the caches' copy.
void put(uint dst, uint l, uint h, uint k, T v) {
  d[dst + h * p.ne.w + k] = v;
  if (p.ncache != 0u && h >= p.nq) {
    int row = pos[p.op + l];
    uint hk = h - p.nq;
    if (row >= 0 && row < int(p.ncache)) {
      if (hk < p.nkv)
        kc[p.okc + (uint(row) * p.nkv + hk) * p.ne.w + k] = TC(v);
      else
        vc[p.ovc + (uint(row) * p.nkv + hk - p.nkv) * p.ne.w + k] = TC(v);
    }
  }
}

// Whether head h turns (v heads of at_rope_cache do not).
bool turns(uint h) {
  return p.ncache == 0u || h < p.nq + p.nkv;
}

float theta_of(uint l, uint i) {
  float theta = float(pos[p.op + l]) * p.freq_scale * pow(p.base, -2.0 * float(i) / float(p.n_rot));
  if (HAS_FF != 0u)
    theta /= ff[p.of + i];
  return theta;
}

void main() {
  uint t = linear_invocation();
  if (t >= p.n)
    return;
  uint bl = t / p.per_row, j = t % p.per_row;
  uint l = bl % p.ne.y, bi = bl / p.ne.y;
  uint src = p.ox + bi * p.sx.x + l * p.sx.y;
  uint dst = p.od + bl * p.ne.z * p.ne.w;
#ifdef VEC4
  // Items of 4 elements: NORMAL, 2 pairs (4j .. 4j+3); NEOX, 4 pairs (4j .. 4j+3 with
  // n_rot/2 + 4j ..); then copies. Offsets and strides are in vec4 units.
  uint rot_items = NEOX != 0u ? p.n_rot / 8u : p.n_rot / 4u;
  if (j >= rot_items) {
    uint k = p.n_rot / 4u + (j - rot_items);
    for (uint h = 0u; h < p.ne.z; h++)
      put(dst, l, h, k, x[src + h * p.sx.z + k]);
    return;
  }
  if (NEOX != 0u) {
    uint i0 = 4u * j, hb = p.n_rot / 8u;
    vec4 th = vec4(theta_of(l, i0), theta_of(l, i0 + 1u), theta_of(l, i0 + 2u), theta_of(l, i0 + 3u));
    vec4 c = cos(th), s = sin(th);
    for (uint h = 0u; h < p.ne.z; h++) {
      vec4 a = x[src + h * p.sx.z + j], b = x[src + h * p.sx.z + hb + j];
      bool t = turns(h);
      put(dst, l, h, j, t ? a * c - b * s : a);
      put(dst, l, h, hb + j, t ? a * s + b * c : b);
    }
  } else {
    vec2 th = vec2(theta_of(l, 2u * j), theta_of(l, 2u * j + 1u));
    vec4 c = cos(th).xxyy, s = sin(th).xxyy;
    for (uint h = 0u; h < p.ne.z; h++) {
      vec4 a = x[src + h * p.sx.z + j];
      // (a0, a1) -> (a0 c - a1 s, a0 s + a1 c), twice.
      put(dst, l, h, j, turns(h) ? a * c + vec4(-a.y, a.x, -a.w, a.z) * s : a);
    }
  }
#else
  uint half_rot = p.n_rot / 2u;
  if (j >= half_rot) {
    uint k = p.n_rot + (j - half_rot);
    for (uint h = 0u; h < p.ne.z; h++)
      put(dst, l, h, k, x[src + h * p.sx.z + k]);
    return;
  }
  uint ia = NEOX != 0u ? j : 2u * j;
  uint ib = NEOX != 0u ? j + half_rot : 2u * j + 1u;
  float theta = theta_of(l, j);
  float c = cos(theta), s = sin(theta);
  // theta depends on (position, pair) only: one invocation turns that pair in every head.
  for (uint h = 0u; h < p.ne.z; h++) {
    float a = x[src + h * p.sx.z + ia], b = x[src + h * p.sx.z + ib];
    bool t = turns(h);
    put(dst, l, h, ia, t ? a * c - b * s : a);
    put(dst, l, h, ib, t ? a * s + b * c : b);
  }
#endif
}
