// attention.comp: o[b, i, h, :] = sum_j softmax_j(cap(scale * q[b, h, i, :] . k[b, h / G, j, :])
// + mask[b, h, i, j]) v[b, h / G, j, :], keys j < kv_len (and j <= i + kv_len - Lq if causal,
// and j > i + kv_len - Lq - window with a sliding window); cap(s) = softcap tanh(s / softcap)
// with a softcap, else s.
// Reference: ref_attention in engine/tensor/at-ops-attention.c (SPLIT: ref_attention_split).
//
// Flash-style: the [Lq, Lk] scores are never stored. A workgroup is one subgroup of SG lanes;
// each lane owns RPL query rows (row r = i * G + g of one kv head, so the GQA heads that share
// a kv head share every K/V load) and the subgroup streams over the keys of its split, one key
// at a time. Each K or V row is loaded once, spread over the lanes (lane l loads vec4 chunks
// l, l + SG, ...), and handed to every lane by subgroupShuffle with a constant lane: no shared
// memory, no barriers, no per-lane loads of the same address (lavapipe turns every storage
// load into a per-lane scalar loop, see shared/notes/lavapipe.md). When a kv head has fewer
// rows than lanes (decode), KEYS_ON_LANES turns this around: the lanes take different keys.
// The workgroup size must equal the device's subgroup size (no subgroup size control is used).
// Online softmax with a lazy maximum: the reference m only moves when a score exceeds it by
// more than RESCALE_AT, so rescaling l and acc is rare; e^(s - m) <= e^8 keeps the sums far
// from overflow, and acc / l does not depend on the reference.
// KV_F16 (define): k and v are halves, two per uint word. KV_TEXEL (define): k and v through
// texel views (CPU devices): f32 in RGBA32UI, or with KV_F16 too halves in RG32UI (four a texel).
#version 450
#extension GL_KHR_shader_subgroup_shuffle : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable
#include "common.glsl"

layout(constant_id = 3) const uint D = 64;             // head dimension, 1..DMAX
layout(constant_id = 4) const uint RPL = 1;            // rows per lane, 1..RMAX
layout(constant_id = 5) const bool KV_PAIRED = false;  // f16: rows start on a word
layout(constant_id = 6) const uint SG = 8;             // subgroup size = workgroup size, >= 4
layout(constant_id = 7) const bool KV_VEC4 = false;    // rows start on 16 bytes, D % 4 == 0
// Decode (fewer rows than lanes): the lanes split the keys instead (lane l takes keys
// l, l + SG, ...), all of them own the same RPL rows, and a subgroup reduction merges their
// (m, l, acc) at the end.
layout(constant_id = 8) const bool KEYS_ON_LANES = false;

#define DMAX 256
#define RMAX 4
#define LMAX 16 // chunk loads per lane: DMAX / 4 / SG for SG >= 4
#define RESCALE_AT 8.0

// Every loop over rows (t < RPL), vec4 chunks of D (c < DC) and load rounds is unrolled
// ([[unroll]], built with glslc -O0 so that NIR unrolls each for the spec constants given),
// so local arrays are indexed by constants and stay in registers: lavapipe keeps a
// dynamically indexed array in per-lane scratch (~20x slower).
const uint DC = (D + 3u) / 4u;        // vec4 chunks of a row
const uint ROUNDS = (DC + SG - 1u) / SG; // chunk loads per lane

layout(binding = 0) readonly buffer Q { float q[]; };
// K and V are also seen as 16-byte (f32) or 8-byte (f16) chunks: one load per lane and chunk
// instead of four, when KV_VEC4 says every row starts on one.
#if defined(KV_TEXEL)
// CPU devices: f32 K and V as RGBA32UI texel views, rows on whole texels (the host sets it only
// with KV_VEC4): on lavapipe a texel fetch is a vectorised gather where a storage load whose
// address differs per lane is a loop over the lanes.
layout(binding = 1) uniform usamplerBuffer kt;
layout(binding = 2) uniform usamplerBuffer vt;
#elif defined(KV_F16)
layout(binding = 1) readonly buffer K { uint k[]; };
layout(binding = 2) readonly buffer V { uint v[]; };
layout(binding = 1) readonly buffer K4 { uvec2 k4[]; };
layout(binding = 2) readonly buffer V4 { uvec2 v4[]; };
#else
layout(binding = 1) readonly buffer K { float k[]; };
layout(binding = 2) readonly buffer V { float v[]; };
layout(binding = 1) readonly buffer K4 { vec4 k4[]; };
layout(binding = 2) readonly buffer V4 { vec4 v4[]; };
#endif
layout(binding = 3) readonly buffer M { float mask[]; };
layout(binding = 4) readonly buffer KL { int kvlen[]; };
layout(binding = 5) writeonly buffer O { float o[]; };

layout(push_constant) uniform Push {
  uint oq, ok, ov, om, ol, oo;  // element offsets (k, v in halves when KV_F16)
  uint sqb, sqh, sqi;           // q strides (d is contiguous)
  uint skb, skh, skj;           // k strides
  uint svb, svh, svj;           // v strides
  uint smb, smh, smi, smj;      // mask strides, 0 on broadcast dimensions
  uint lq, lk, hq, g;           // g = Hq / Hkv
  uint nsplit, split_len;       // keys per split
  float scale;
  uint flags;                   // 1 causal, 2 mask, 4 kv_len, 8 split (write partials),
                                // 16 softcap, 32 window
  float softcap;                // scores become softcap tanh(s / softcap) (flag 16)
  uint window;                  // keys a query sees, itself included (flag 32, causal only)
} p;

// Flags rather than specialisation constants: every pipeline costs seconds of LLVM on lavapipe.
#define CAUSAL ((p.flags & 1u) != 0u)
#define HAS_MASK ((p.flags & 2u) != 0u)
#define HAS_KVLEN ((p.flags & 4u) != 0u)
#define SPLIT ((p.flags & 8u) != 0u) // write partials (acc[D], m, l) per split
#define SOFTCAP ((p.flags & 16u) != 0u)
#define WINDOW ((p.flags & 32u) != 0u)

// Element x of chunk c (per lane, c < DC) of the row starting at element `row`: 0 past D, and
// the address clamped into the row so that no lane reads outside it.
#define AT(c, x) min((c) * 4u + (x), D - 1u)
#if defined(KV_TEXEL) && defined(KV_F16)
#define LOAD4(buf, row, c) halves4(texelFetch(buf##t, int(((row) >> 2) + (c))).xy)
#elif defined(KV_TEXEL)
#define LOAD4(buf, row, c) uintBitsToFloat(texelFetch(buf##t, int(((row) >> 2) + (c))))
#elif defined(KV_F16)
#define H(buf, row, c, x) ((c) * 4u + (x) < D ? half_at(buf[((row) + AT(c, x)) >> 1], (row) + AT(c, x)) : 0.0)
#define W(buf, row, c, x) unpackHalf2x16(buf[((row) >> 1) + min(2u * (c) + (x), D / 2u - 1u)])
#define LOAD4(buf, row, c) \
  (KV_VEC4 ? vec4(unpackHalf2x16(buf##4[((row) >> 2) + (c)].x), unpackHalf2x16(buf##4[((row) >> 2) + (c)].y)) \
   : KV_PAIRED ? vec4(W(buf, row, c, 0u), (c) * 4u + 2u < D ? W(buf, row, c, 1u) : vec2(0.0)) \
             : vec4(H(buf, row, c, 0u), H(buf, row, c, 1u), H(buf, row, c, 2u), H(buf, row, c, 3u)))
#else
#define F(buf, row, c, x) ((c) * 4u + (x) < D ? buf[(row) + AT(c, x)] : 0.0)
#define LOAD4(buf, row, c) \
  (KV_VEC4 ? buf##4[((row) >> 2) + (c)] : vec4(F(buf, row, c, 0u), F(buf, row, c, 1u), F(buf, row, c, 2u), F(buf, row, c, 3u)))
#endif

void main() {
  uint lane = gl_LocalInvocationID.x;
  uint split = gl_WorkGroupID.y;
  uint hkv = p.hq / p.g;
  uint b = gl_WorkGroupID.z / hkv;
  uint kvh = gl_WorkGroupID.z % hkv;
  uint n_rows = p.g * p.lq;
  uint row0 = gl_WorkGroupID.x * (KEYS_ON_LANES ? 1u : SG) * RPL;
  if (row0 >= n_rows)
    return;

  uint nvalid = p.lk;
  if (HAS_KVLEN)
    nvalid = uint(clamp(kvlen[p.ol], 0, int(p.lk)));
  int causal_off = int(nvalid) - int(p.lq);

  // This workgroup's keys: its split, the valid ones, and (causal) up to its last row's limit.
  uint js = split * p.split_len;
  uint je = min(js + p.split_len, nvalid);
  if (CAUSAL) {
    uint last_i = (min(row0 + (KEYS_ON_LANES ? 1u : SG) * RPL, n_rows) - 1u) / p.g;
    je = uint(clamp(int(last_i) + causal_off + 1, 0, int(je)));
    // A sliding window: no row of the workgroup sees a key before its first row's window.
    if (WINDOW)
      js = uint(clamp(int(row0 / p.g) + causal_off + 1 - int(p.window), int(js), int(max(je, js))));
  }

#define ROW(t) (KEYS_ON_LANES ? row0 + (t) : row0 + (t) * SG + lane)
  vec4 qv[RMAX][DMAX / 4];
  vec4 acc[RMAX][DMAX / 4];
  vec4 kl[LMAX];
  float m[RMAX], l[RMAX];
  int lim[RMAX], lo[RMAX]; // keys lo[t] <= j < lim[t] are visible to row t
  uint ih[RMAX], hh[RMAX];

  [[unroll]] for (uint t = 0u; t < RPL; t++) {
    uint r = ROW(t);
    uint rr = min(r, n_rows - 1u);
    ih[t] = rr / p.g;
    hh[t] = kvh * p.g + rr % p.g;
    lim[t] = r >= n_rows ? 0 : CAUSAL ? int(ih[t]) + causal_off + 1 : int(nvalid);
    lo[t] = CAUSAL && WINDOW ? int(ih[t]) + causal_off + 1 - int(p.window) : 0;
    m[t] = -1.0 / 0.0;
    l[t] = 0.0;
    uint qb = p.oq + b * p.sqb + hh[t] * p.sqh + ih[t] * p.sqi;
    [[unroll]] for (uint c = 0u; c < DC; c++) {
      qv[t][c] = p.scale * vec4(q[qb + AT(c, 0u)], c * 4u + 1u < D ? q[qb + AT(c, 1u)] : 0.0,
                                c * 4u + 2u < D ? q[qb + AT(c, 2u)] : 0.0,
                                c * 4u + 3u < D ? q[qb + AT(c, 3u)] : 0.0);
      acc[t][c] = vec4(0.0);
    }
  }

  uint kb = p.ok + b * p.skb + kvh * p.skh;
  uint vb = p.ov + b * p.svb + kvh * p.svh;
  for (uint j = js + (KEYS_ON_LANES ? lane : 0u); j < je; j += KEYS_ON_LANES ? SG : 1u) {
    vec4 s4[RMAX];
    float pr[RMAX];
    uint ke = kb + j * p.skj;
    uint ve = vb + j * p.svj;

    // scores: s4[t] collects q . k in four partial sums
    if (!KEYS_ON_LANES)
      [[unroll]] for (uint r = 0u; r < ROUNDS; r++)
        kl[r] = LOAD4(k, ke, min(r * SG + lane, DC - 1u));
    [[unroll]] for (uint t = 0u; t < RPL; t++)
      s4[t] = vec4(0.0);
    [[unroll]] for (uint c = 0u; c < DC; c++) {
      vec4 x = KEYS_ON_LANES ? LOAD4(k, ke, c) : subgroupShuffle(kl[c / SG], c % SG);
      [[unroll]] for (uint t = 0u; t < RPL; t++)
        s4[t] += qv[t][c] * x;
    }

    [[unroll]] for (uint t = 0u; t < RPL; t++) {
      float s = (s4[t].x + s4[t].y) + (s4[t].z + s4[t].w);
      if (SOFTCAP)
        s = p.softcap * tanh(s / p.softcap);
      if (HAS_MASK)
        s += mask[p.om + b * p.smb + hh[t] * p.smh + ih[t] * p.smi + j * p.smj];
      if (int(j) >= lim[t] || int(j) < lo[t])
        s = -1.0 / 0.0;
      if (s > m[t] + RESCALE_AT) {
        float f = exp(m[t] - s);
        l[t] *= f;
        [[unroll]] for (uint c = 0u; c < DC; c++)
          acc[t][c] *= f;
        m[t] = s;
      }
      pr[t] = s == -1.0 / 0.0 ? 0.0 : exp(s - m[t]);
      l[t] += pr[t];
    }

    if (!KEYS_ON_LANES)
      [[unroll]] for (uint r = 0u; r < ROUNDS; r++)
        kl[r] = LOAD4(v, ve, min(r * SG + lane, DC - 1u));
    [[unroll]] for (uint c = 0u; c < DC; c++) {
      vec4 x = KEYS_ON_LANES ? LOAD4(v, ve, c) : subgroupShuffle(kl[c / SG], c % SG);
      [[unroll]] for (uint t = 0u; t < RPL; t++)
        acc[t][c] += pr[t] * x;
    }
  }

  // KEYS_ON_LANES: merge the lanes' partial softmaxes into lane 0's.
  if (KEYS_ON_LANES) {
    [[unroll]] for (uint t = 0u; t < RPL; t++) {
      float mx = subgroupMax(l[t] > 0.0 ? m[t] : -1.0 / 0.0);
      float f = l[t] > 0.0 ? exp(m[t] - mx) : 0.0;
      l[t] = subgroupAdd(l[t] * f);
      [[unroll]] for (uint c = 0u; c < DC; c++)
        acc[t][c] = subgroupAdd(acc[t][c] * f);
      m[t] = mx;
    }
    if (lane != 0u)
      return;
  }

  [[unroll]] for (uint t = 0u; t < RPL; t++)
    if (ROW(t) < n_rows) {
      uint row_out = (b * p.lq + ih[t]) * p.hq + hh[t];  // [B, Lq, Hq] order
      float inv = SPLIT ? 1.0 : l[t] > 0.0 ? 1.0 / l[t] : 0.0;
      uint base = SPLIT ? p.oo + (row_out * p.nsplit + split) * (D + 2u) : p.oo + row_out * D;
      [[unroll]] for (uint c = 0u; c < DC; c++) {
        o[base + c * 4u] = acc[t][c].x * inv;
        if (c * 4u + 1u < D) o[base + c * 4u + 1u] = acc[t][c].y * inv;
        if (c * 4u + 2u < D) o[base + c * 4u + 2u] = acc[t][c].z * inv;
        if (c * 4u + 3u < D) o[base + c * 4u + 3u] = acc[t][c].w * inv;
      }
      if (SPLIT) {
        o[base + D] = m[t];
        o[base + D + 1u] = l[t];
      }
    }
}
