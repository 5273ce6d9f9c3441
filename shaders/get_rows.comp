// get_rows.comp: d[i, :] = table[ids[i], :] as f32, for table rows stored as f32, f16 or bf16
// (TABLE_F16 / TABLE_BF16 defines); ids outside [0, n_rows) give zeros. Rows outside [row_begin, row_end) are left to the dispatch
// that binds that chunk of the table (tables larger than one storage range are split).
// Reference: ref_get_rows in engine/tensor/at-ops-rows.c.
#version 450
#include "common.glsl"

layout(binding = 0) readonly buffer T { uint table[]; };
layout(binding = 1) readonly buffer I { int ids[]; };
layout(binding = 2) writeonly buffer D { float d[]; };

layout(push_constant) uniform Push {
  uint n_ids, dim;      // output is [n_ids, dim]
  uint row_begin, row_end;
  uint ot, oi, od;      // element offsets (table in its own units: floats or halves)
  uint n_rows;          // rows in the whole table, for the range check
} p;

void main() {
  uint i = linear_invocation();
  if (i >= p.n_ids * p.dim)
    return;
  uint r = i / p.dim, c = i % p.dim;
  int id = ids[p.oi + r];
  if (id < 0 || id >= int(p.n_rows)) {
    if (p.row_begin == 0u)  // the first chunk's dispatch writes the zeros of invalid ids
      d[p.od + i] = 0.0;
    return;
  }
  if (id < int(p.row_begin) || id >= int(p.row_end))
    return;
  uint e = p.ot + uint(id - int(p.row_begin)) * p.dim + c;
#if defined(TABLE_F16)
  float v = half_at(table[e >> 1], e);
#elif defined(TABLE_BF16)
  float v = bf16_at(table[e >> 1], e);
#else
  float v = uintBitsToFloat(table[e]);
#endif
  d[p.od + i] = v;
}
