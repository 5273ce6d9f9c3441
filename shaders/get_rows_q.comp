// get_rows_q.comp: d[i, :] = dequantise(table row ids[i]) for GGUF block-quantised tables
// (WTYPE = the AtDtype), four elements an invocation through dequant.glsl; ids outside
// [0, n_rows) give zeros. Rows outside [row_begin, row_end) belong to another chunk's dispatch.
// Reference: ref_get_rows in engine/tensor/at-ops-rows.c (at_dequantize_row's values).
#version 450
#include "common.glsl"

layout(constant_id = 3) const uint WTYPE = 4;
const bool B_VEC = false;

layout(binding = 0) readonly buffer T { uint wb[]; };
layout(binding = 1) readonly buffer I { int ids[]; };
layout(binding = 2) writeonly buffer D { vec4 d[]; };

uint wbw(uint i) { return wb[i]; }
uvec2 wbw2(uint i) { return uvec2(wb[2u * i], wb[2u * i + 1u]); }
uvec4 wbw4(uint i) { return uvec4(wb[4u * i], wb[4u * i + 1u], wb[4u * i + 2u], wb[4u * i + 3u]); }
uint wb_words() { return uint(wb.length()); }

#include "dequant.glsl"

layout(push_constant) uniform Push {
  uint n_ids, dim;      // output is [n_ids, dim]; dim a multiple of the block size
  uint row_begin, row_end;
  uint ot, oi, od;      // table start in halves (2 bytes), ids in ints, output in vec4s
  uint n_rows;
} p;

void main() {
  uint q = p.dim / 4u;
  uint i = linear_invocation();
  if (i >= p.n_ids * q)
    return;
  uint r = i / q, c = i % q;
  int id = ids[p.oi + r];
  if (id < 0 || id >= int(p.n_rows)) {
    if (p.row_begin == 0u)
      d[p.od + i] = vec4(0.0);
    return;
  }
  if (id < int(p.row_begin) || id >= int(p.row_end))
    return;
  uint row = 2u * p.ot + uint(id - int(p.row_begin)) * row_bytes(p.dim);
  d[p.od + i] = load_b4(row, 4u * c);
}
