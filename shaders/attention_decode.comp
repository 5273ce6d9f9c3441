// attention_decode.comp: attention.comp's formula for one query position (token generation)
// on CPU devices: o[b, 0, h, :] = sum_j softmax_j(cap(scale * q[b, h, 0, :] . k[b, h / G, j, :]))
// v[b, h / G, j, :] over the keys j < kv_len (the last `window` of them with a sliding window;
// cap(s) = softcap tanh(s / softcap) with a softcap, else s). Reference: ref_attention in
// engine/tensor/at-ops-attention.c.
//
// One workgroup (one subgroup of SG lanes) per kv head takes all G query heads that share it
// and walks the keys SG at a time. Scores: lane l owns key j0 + l and reads its K row as whole
// texels (one gather per 4 elements); q is spread over the lanes (lane l holds chunks l,
// l + SG, ...) and each chunk reaches every lane by a constant-lane subgroupShuffle, so no
// reduction is needed per key and q never sits in SG copies. Softmax: one subgroupMax per
// block and one vectorised exp for SG keys. Values: the lanes turn to dimensions (lane l owns
// chunks l, l + SG, ...), each V row is one contiguous texel per lane, and key kk's weight
// comes from lane kk by shuffle. Every loop over rows, chunks and keys of a block is unrolled
// (built with glslc -O0, so NIR unrolls the loops for the spec constants given), so locals are
// indexed by constants and stay in registers (lavapipe puts a dynamically indexed local in
// per-lane scratch).
// The lazy maximum of attention.comp: m only moves when a block's maximum exceeds it by more
// than RESCALE_AT.
// KV_F16 (define): k and v are halves (an f16 KV cache). V, and K without K8, are RG32UI
// views (four halves a texel, the chunks above unchanged); with K8, K is an RGBA32UI view and
// one fetch brings two chunks: the score loop is bound by its fetches, so it makes half as many.
#version 450
#extension GL_KHR_shader_subgroup_shuffle : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable
#include "common.glsl"

layout(constant_id = 3) const uint D = 64;  // head dimension, a multiple of 4, <= 32 SG and 256
layout(constant_id = 4) const uint G = 1;   // query heads per kv head, 1..GMAX
layout(constant_id = 6) const uint SG = 16; // subgroup size = workgroup size, 4..16
layout(constant_id = 7) const bool K8 = false;  // KV_F16: K rows in RGBA32UI, 8 halves a texel

#define GMAX 8
#define RESCALE_AT 8.0

const uint DC = D / 4u;                   // texels of a row
const uint ROUNDS = (DC + SG - 1u) / SG;  // a row's texels per lane (<= 8)

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) uniform usamplerBuffer kt;
layout(binding = 2) uniform usamplerBuffer vt;
layout(binding = 3) readonly buffer M { float mask[]; };  // not read: no mask on this path
layout(binding = 4) readonly buffer KL { int kvlen[]; };
layout(binding = 5) writeonly buffer O { float o[]; };

// The push constants of attention.comp (k and v offsets and strides in elements, multiples of 4;
// of 8 for K with K8).
layout(push_constant) uniform Push {
  uint oq, ok, ov, om, ol, oo;
  uint sqb, sqh, sqi;
  uint skb, skh, skj;
  uint svb, svh, svj;
  uint smb, smh, smi, smj;
  uint lq, lk, hq, g;
  uint nsplit, split_len;
  float scale;
  uint flags;  // 4: kv_len, 16: softcap, 32: window (the others do not reach this path)
  float softcap;
  uint window;
} p;

#ifdef KV_F16
#define LOAD4(buf, texel) halves4(texelFetch(buf, int(texel)).xy)
#else
#define LOAD4(buf, texel) uintBitsToFloat(texelFetch(buf, int(texel)))
#endif
const uint KSH = K8 ? 3u : 2u;  // elements a K texel, as a shift

void main() {
  uint lane = gl_LocalInvocationID.x;
  uint hkv = p.hq / G;
  uint b = gl_WorkGroupID.z / hkv;
  uint kvh = gl_WorkGroupID.z % hkv;
  uint nvalid = p.lk;
  if ((p.flags & 4u) != 0u)
    nvalid = uint(clamp(kvlen[p.ol], 0, int(p.lk)));

  // q chunk c of row t lives in lane c % SG as qv[t][c / SG], scaled.
  vec4 qv[GMAX][8];
  vec4 acc[GMAX][8];
  float m[GMAX], l[GMAX];
  [[unroll]] for (uint t = 0u; t < G; t++) {
    [[unroll]] for (uint r = 0u; r < ROUNDS; r++) {
      uint c = min(r * SG + lane, DC - 1u);
      uint e = p.oq + b * p.sqb + (kvh * G + t) * p.sqh + 4u * c;
      qv[t][r] = p.scale * vec4(q[e], q[e + 1u], q[e + 2u], q[e + 3u]);
      acc[t][r] = vec4(0.0);
    }
    m[t] = -1.0 / 0.0;
    l[t] = 0.0;
  }

  uint kb = (p.ok + b * p.skb + kvh * p.skh) >> KSH, ks = p.skj >> KSH;
  uint vb = (p.ov + b * p.svb + kvh * p.svh) >> 2, vs = p.svj >> 2;
  uint last = max(nvalid, 1u) - 1u;
  // A sliding window: the query (at nvalid - 1) sees only the last `window` keys.
  uint jlo = (p.flags & 32u) != 0u && nvalid > p.window ? nvalid - p.window : 0u;
  for (uint j0 = jlo; j0 < nvalid; j0 += SG) {
    uint krow = kb + min(j0 + lane, last) * ks;
    vec4 s4[GMAX];
    float s[GMAX], pr[GMAX];
    [[unroll]] for (uint t = 0u; t < G; t++)
      s4[t] = vec4(0.0);
    // Scores of this lane's key: chunk c of q from lane c % SG.
    [[unroll]] for (uint cc = 0u; cc < (K8 ? DC / 2u : DC); cc++) {
      vec4 kx[2];
      if (K8) {
        uvec4 kw = texelFetch(kt, int(krow + cc));
        kx[0] = halves4(kw.xy);
        kx[1] = halves4(kw.zw);
      } else {
        kx[0] = LOAD4(kt, krow + cc);
      }
      [[unroll]] for (uint h = 0u; h < (K8 ? 2u : 1u); h++) {
        uint c = K8 ? 2u * cc + h : cc;
        [[unroll]] for (uint t = 0u; t < G; t++)
          s4[t] += subgroupShuffle(qv[t][c / SG], c % SG) * kx[h];
      }
    }
    // Softmax over the block, keys past kv_len weighing nothing.
    [[unroll]] for (uint t = 0u; t < G; t++) {
      s[t] = (s4[t].x + s4[t].y) + (s4[t].z + s4[t].w);
      if ((p.flags & 16u) != 0u)
        s[t] = p.softcap * tanh(s[t] / p.softcap);
      s[t] = j0 + lane < nvalid ? s[t] : -1.0 / 0.0;
      float mx = subgroupMax(s[t]);
      if (mx > m[t] + RESCALE_AT) {
        float f = exp(m[t] - mx);
        l[t] *= f;
        [[unroll]] for (uint r = 0u; r < ROUNDS; r++)
          acc[t][r] *= f;
        m[t] = mx;
      }
      pr[t] = exp(s[t] - m[t]);
      l[t] += pr[t];
    }
    // Values: lanes own dimensions; key kk's weight from lane kk.
    [[unroll]] for (uint kk = 0u; kk < SG; kk++) {
      uint vrow = vb + min(j0 + kk, last) * vs;
      vec4 vx[8];
      [[unroll]] for (uint r = 0u; r < ROUNDS; r++)
        vx[r] = LOAD4(vt, vrow + min(r * SG + lane, DC - 1u));
      [[unroll]] for (uint t = 0u; t < G; t++) {
        float w = subgroupShuffle(pr[t], kk);
        [[unroll]] for (uint r = 0u; r < ROUNDS; r++)
          acc[t][r] += w * vx[r];
      }
    }
  }

  // Each lane stores its chunks of every row.
  [[unroll]] for (uint t = 0u; t < G; t++) {
    float lt = subgroupAdd(l[t]);
    float inv = lt > 0.0 ? 1.0 / lt : 0.0;
    uint base = p.oo + (b * p.hq + kvh * G + t) * D;  // [B, 1, Hq, D]
    [[unroll]] for (uint r = 0u; r < ROUNDS; r++)
      if (r * SG + lane < DC) {
        uint e = base + 4u * (r * SG + lane);
        vec4 y = acc[t][r] * inv;
        o[e] = y.x; o[e + 1u] = y.y; o[e + 2u] = y.z; o[e + 3u] = y.w;
      }
  }
}
