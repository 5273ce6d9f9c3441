// write_rows.comp: d[start + r, :] = s[r, :] for the rows with 0 <= start + r < n_dst (rows of
// s srow elements apart, each contiguous), where
// start = idx[0] is read at run time (the position of new rows in a KV cache). d is the
// written tensor's own storage: the rows not named keep their values.
// Reference: ref_write_rows in engine/tensor/at-ops-rows.c. D_F16 (define): d is halves
// (an f16 KV cache; needs 16-bit storage).
#version 450
#ifdef D_F16
#extension GL_EXT_shader_16bit_storage : require
#define TD float16_t
#else
#define TD float
#endif
#include "common.glsl"

layout(binding = 0) readonly buffer S { float s[]; };
layout(binding = 1) readonly buffer I { int idx[]; };
layout(binding = 2) buffer D { TD d[]; };

layout(push_constant) uniform Push {
  uint n_src, dim;  // s is [n_src, dim]
  uint n_dst;       // rows of d
  uint os, oi, od;  // element offsets
  uint srow;        // s's row stride, elements
} p;

void main() {
  uint i = linear_invocation();
  if (i >= p.n_src * p.dim)
    return;
  uint r = i / p.dim, c = i % p.dim;
  int row = idx[p.oi] + int(r);
  if (row < 0 || row >= int(p.n_dst))
    return;
  d[p.od + uint(row) * p.dim + c] = TD(s[p.os + r * p.srow + c]);
}
