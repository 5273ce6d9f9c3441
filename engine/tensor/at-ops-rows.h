/* at-ops-rows.h: row gathers (embedding lookup) and dtype conversion. */
#pragma once

#include "at-graph.h"

G_BEGIN_DECLS

/* table [V, D] (f32, f16, bf16 or a GGUF block type: an LLM's embedding table as stored), ids
 * i32 [n] -> [n, D] f32: row ids[i] of the table; an id
 * outside [0, V) gives a row of zeros (never a read outside the table). Tables larger than the
 * device's storage range are read in chunks, one dispatch each. */
AtTensor *at_get_rows (AtGraph *g, AtTensor *table, AtTensor *ids);

/* dst (a weight: a caller's f32 or f16 buffer, e.g. a KV cache [n_ctx, heads, head_dim]) with
 * rows[r] written at row start[0] + r (rounded to f16 for an f16 dst), for the rows that land
 * in [0, dst rows); rows [n, ...] f32 with dst's row shape (each row contiguous, rows any stride
 * apart), start i32 (read at run time). Returns dst after the write, for the
 * ops that read it; the write stays in dst's buffer after the run. */
AtTensor *at_write_rows (AtGraph *g, AtTensor *dst, AtTensor *rows, AtTensor *start);

/* A contiguous copy of `a` (f32, f16 or bf16, contiguous) in `dtype` (f32, f16 or bf16);
 * to 16-bit types, round to nearest even. */
AtTensor *at_cast (AtGraph *g, AtTensor *a, AtDtype dtype);

G_END_DECLS
