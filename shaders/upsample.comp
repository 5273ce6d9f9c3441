// upsample.comp: y[n, c, oy, ox] from x[n, c, :, :] by torch 'nearest'
// (src = min (floor (dst * scale), in - 1), scale = in / out) or 'bilinear' (align_corners:
// src = dst * (in - 1) / (out - 1); else src = max ((dst + 0.5) * in / out - 0.5, 0)).
// Reference: ref_upsample in engine/tensor/at-ops-conv.c.
#version 450
#include "common.glsl"

layout(constant_id = 3) const uint MODE = 0;  // 0 nearest, 1 bilinear
layout(constant_id = 4) const uint ALIGN = 0; // bilinear align_corners

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
  uvec4 ne;      // [N, C, out_h, out_w]
  uvec4 sx;      // x strides
  uint h, w, ox, oy, n;
  float scale_h, scale_w;
} p;

float src_index(float scale, uint dst) {
  if (ALIGN != 0)
    return scale * float(dst);
  return max(scale * (float(dst) + 0.5) - 0.5, 0.0);
}

// Grid: x covers output columns, y output rows, z the N * C planes; rows and planes past the
// grid's limits loop (no index divisions: they are per-lane scalar loops on lavapipe).
void main() {
  uint ox = gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
  if (ox >= p.ne.w)
    return;
  uint planes = p.ne.x * p.ne.y;
  uint x0, x1;
  float lx = 0.0;
  if (MODE == 0) {
    x0 = x1 = min(uint(floor(float(ox) * p.scale_w)), p.w - 1);
  } else {
    float fx = src_index(p.scale_w, ox);
    x0 = uint(fx);
    x1 = x0 < p.w - 1 ? x0 + 1 : x0;
    lx = fx - float(x0);
  }
  for (uint oyy = gl_WorkGroupID.y; oyy < p.ne.z; oyy += gl_NumWorkGroups.y) {
    uint y0, y1;
    float ly = 0.0;
    if (MODE == 0) {
      y0 = y1 = min(uint(floor(float(oyy) * p.scale_h)), p.h - 1);
    } else {
      float fy = src_index(p.scale_h, oyy);
      y0 = uint(fy);
      y1 = y0 < p.h - 1 ? y0 + 1 : y0;
      ly = fy - float(y0);
    }
    for (uint pl = gl_WorkGroupID.z; pl < planes; pl += gl_NumWorkGroups.z) {
      uint base = p.ox + (pl / p.ne.y) * p.sx.x + (pl % p.ne.y) * p.sx.y;
      uint r0 = base + y0 * p.sx.z, r1 = base + y1 * p.sx.z;
      float r;
      if (MODE == 0) {
        r = x[r0 + x0 * p.sx.w];
      } else {
        float hy = 1.0 - ly, hx = 1.0 - lx;
        r = hy * (hx * x[r0 + x0 * p.sx.w] + lx * x[r0 + x1 * p.sx.w])
            + ly * (hx * x[r1 + x0 * p.sx.w] + lx * x[r1 + x1 * p.sx.w]);
      }
      y[p.oy + (pl * p.ne.z + oyy) * p.ne.w + ox] = r;
    }
  }
}
