/* at-ops-rows.c: get_rows (embedding lookup, chunked for tables beyond one storage range),
 * write_rows (rows into a weight at a run-time position: a KV cache) and dtype conversion.
 * Shaders: shaders/get_rows.comp, shaders/write_rows.comp, shaders/cast.comp. */
#include "at-ops-rows.h"

#include <string.h>

#include "at-error.h"

#define WG 256

typedef struct
{
  guint32 n_ids, dim, row_begin, row_end;
  guint32 ot, oi, od, n_rows;
} GetRowsPush;
G_STATIC_ASSERT (sizeof (GetRowsPush) == 32);

typedef struct
{
  guint32 n_src, dim, n_dst;
  guint32 os, oi, od;
  guint32 srow;
} WriteRowsPush;
G_STATIC_ASSERT (sizeof (WriteRowsPush) == 28);

typedef struct
{
  guint32 n, oa, od;
} CastPush;
G_STATIC_ASSERT (sizeof (CastPush) == 12);

/* The largest byte range one binding may cover: the device's limit, lowered by
 * ATELIER_MAX_BINDING_BYTES so tests can exercise the chunked path on small tables. */
static gsize
max_binding (AtEncoder *enc)
{
  gsize limit = at_encoder_get_info (enc)->max_storage_buffer_range;
  const char *env = g_getenv ("ATELIER_MAX_BINDING_BYTES");

  if (env != NULL && g_ascii_strtoull (env, NULL, 10) >= 256)
    limit = MIN (limit, (gsize) g_ascii_strtoull (env, NULL, 10));
  return limit;
}

static void
ref_get_rows (const AtTensor *dst, const float *const *src, float *out)
{
  gint64 n = dst->shape[0], dim = dst->shape[1], rows = dst->src[0]->shape[0];

  for (gint64 i = 0; i < n; i++)
    {
      gint64 id = (gint64) src[1][i];
      for (gint64 c = 0; c < dim; c++)
        out[i * dim + c] = id >= 0 && id < rows ? src[0][id * dim + c] : 0.0f;
    }
}

static gboolean
encode_get_rows (AtEncoder *enc, AtTensor *dst, GError **error)
{
  AtTensor *table = dst->src[0], *ids = dst->src[1];
  gboolean quantized = at_dtype_info (table->dtype)->quantized;
  const char *shader = quantized                       ? "get_rows_q"
                       : table->dtype == AT_DTYPE_F16  ? "get_rows_f16"
                       : table->dtype == AT_DTYPE_BF16 ? "get_rows_bf16"
                                                       : "get_rows_f32";
  AtPipelineDesc desc = { shader, 4, { WG, 1, 1, table->dtype }, 3, sizeof (GetRowsPush) };
  /* Offsets in elements for plain tables; in halves (2 bytes) for block-quantised ones, whose
   * blocks are only 2-byte aligned. Quantised rows are written 4 elements an invocation. */
  guint unit = quantized ? 2 : at_dtype_info (table->dtype)->type_size;
  gsize row_bytes = at_dtype_row_bytes (table->dtype, table->shape[1]);
  guint64 n_inv = (guint64) dst->shape[0] * dst->shape[1] / (quantized ? 4 : 1);
  /* Whole rows per chunk, leaving room for the alignment slack of the binding. */
  gsize rows_per_chunk = (max_binding (enc) - 256) / row_bytes;
  GetRowsPush push = { 0 };
  AtBinding b[3];
  guint32 gx, gy;

  if (rows_per_chunk == 0)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED,
                   "get_rows: one row of %s is larger than the device's storage range", table->name);
      return FALSE;
    }
  push.n_ids = (guint32) dst->shape[0];
  push.dim = (guint32) dst->shape[1];
  push.n_rows = (guint32) table->shape[0];
  b[1] = at_encoder_bind (enc, ids, FALSE, &push.oi, 4);
  b[2] = at_encoder_bind (enc, dst, TRUE, &push.od, 4);
  if (quantized)
    {
      if (push.od % 4 != 0)
        {
          g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED,
                       "get_rows: the output of a quantised table must start 16-byte aligned");
          return FALSE;
        }
      push.od /= 4; /* in vec4s */
    }
  at_encoder_grid (enc, (n_inv + WG - 1) / WG, &gx, &gy);
  for (gint64 r0 = 0; r0 < table->shape[0]; r0 += (gint64) rows_per_chunk)
    {
      gint64 r1 = MIN (table->shape[0], r0 + (gint64) rows_per_chunk);
      push.row_begin = (guint32) r0;
      push.row_end = (guint32) r1;
      b[0] = at_encoder_bind_range (enc, table, (gsize) r0 * row_bytes, (gsize) (r1 - r0) * row_bytes,
                                    FALSE, &push.ot, unit);
      if (!at_encoder_dispatch (enc, &desc, "get_rows", &push, b, gx, gy, 1, error))
        return FALSE;
    }
  return TRUE;
}

static const AtOp get_rows_op = { "get_rows", encode_get_rows, ref_get_rows };

AtTensor *
at_get_rows (AtGraph *g, AtTensor *table, AtTensor *ids)
{
  AtTensor *srcs[2] = { table, ids };
  gint64 shape[2];

  if (table == NULL || ids == NULL)
    return at_graph_new_node (g, &get_rows_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, srcs, 2, NULL, 0);
  if (table->ndim != 2 || ids->ndim != 1 || ids->dtype != AT_DTYPE_I32)
    {
      g_autofree char *dt = at_tensor_describe (table), *di = at_tensor_describe (ids);
      return at_graph_fail (g, "get_rows", "needs a 2-d table and 1-d i32 ids, not %s and %s", dt, di);
    }
  if (table->dtype == AT_DTYPE_I32)
    return at_graph_fail (g, "get_rows", "i32 tables are not supported (f32, f16, bf16 and the "
                          "GGUF block types are)");
  if (!at_tensor_is_contiguous (table) || !at_tensor_is_contiguous (ids))
    return at_graph_fail (g, "get_rows", "table and ids must be contiguous");
  shape[0] = ids->shape[0];
  shape[1] = table->shape[1];
  return at_graph_new_node (g, &get_rows_op, AT_DTYPE_F32, 2, shape, srcs, 2, NULL, 0);
}

/* ---- write_rows ---- */

static void
ref_write_rows (const AtTensor *dst, const float *const *src, float *out)
{
  gint64 n_dst = dst->shape[0], dim = at_tensor_numel (dst) / n_dst;
  gint64 n_src = dst->src[1]->shape[0], start = (gint64) src[2][0];

  memcpy (out, src[0], (gsize) at_tensor_numel (dst) * sizeof (float));
  for (gint64 r = 0; r < n_src; r++)
    if (start + r >= 0 && start + r < n_dst)
      memcpy (out + (start + r) * dim, src[1] + r * dim, (gsize) dim * sizeof (float));
}

static gboolean
encode_write_rows (AtEncoder *enc, AtTensor *dst, GError **error)
{
  const AtTensor *rows = dst->src[1], *start = dst->src[2];
  AtPipelineDesc desc = { "write_rows", 3, { WG, 1, 1 }, 3, sizeof (WriteRowsPush) };
  WriteRowsPush push = { 0 };
  AtBinding b[3];
  guint32 gx, gy;
  gboolean f16 = dst->dtype == AT_DTYPE_F16;

  if (f16 && !at_encoder_get_info (enc)->storage_16bit)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED,
                   "write_rows: an f16 dst needs a device with 16-bit storage buffers");
      return FALSE;
    }
  if (f16)
    desc.shader = "write_rows_f16";
  push.n_dst = (guint32) dst->shape[0];
  push.n_src = (guint32) rows->shape[0];
  push.dim = (guint32) (at_tensor_numel (rows) / rows->shape[0]);
  push.srow = (guint32) rows->stride[0];
  b[0] = at_encoder_bind (enc, rows, FALSE, &push.os, 4);
  b[1] = at_encoder_bind (enc, start, FALSE, &push.oi, 4);
  b[2] = at_encoder_bind (enc, dst, TRUE, &push.od, f16 ? 2 : 4);
  at_encoder_grid (enc, ((guint64) push.n_src * push.dim + WG - 1) / WG, &gx, &gy);
  return at_encoder_dispatch (enc, &desc, "write_rows", &push, b, gx, gy, 1, error);
}

static const AtOp write_rows_op = { "write_rows", encode_write_rows, ref_write_rows };

/* Each row (all but the first dimension) contiguous; the rows any distance apart (a view of
 * some heads of a wider row, as the K and V columns of a stacked q/k/v product). */
static gboolean
rows_contiguous (const AtTensor *t)
{
  gint64 expect = 1;

  for (int i = t->ndim - 1; i >= 1; i--)
    {
      if (t->shape[i] > 1 && t->stride[i] != expect)
        return FALSE;
      expect *= t->shape[i];
    }
  return t->shape[0] == 1 || t->stride[0] >= expect;
}

AtTensor *
at_write_rows (AtGraph *g, AtTensor *dst, AtTensor *rows, AtTensor *start)
{
  AtTensor *srcs[3] = { dst, rows, start };
  g_autofree char *dd = NULL, *dr = NULL, *ds = NULL;

  if (dst == NULL || rows == NULL || start == NULL)
    return at_graph_new_inplace_node (g, &write_rows_op, dst, srcs, 3, NULL, 0);
  dd = at_tensor_describe (dst);
  dr = at_tensor_describe (rows);
  ds = at_tensor_describe (start);
  if ((dst->dtype != AT_DTYPE_F32 && dst->dtype != AT_DTYPE_F16) || rows->dtype != AT_DTYPE_F32
      || start->dtype != AT_DTYPE_I32)
    return at_graph_fail (g, "write_rows", "needs an f32 or f16 dst, f32 rows and an i32 start, "
                          "not %s, %s, %s", dd, dr, ds);
  if (!at_tensor_is_contiguous (dst) || !rows_contiguous (rows))
    return at_graph_fail (g, "write_rows", "dst must be contiguous, and each row of rows: %s, %s",
                          dd, dr);
  if (rows->ndim != dst->ndim
      || at_tensor_numel (rows) / rows->shape[0] != at_tensor_numel (dst) / dst->shape[0]
      || memcmp (rows->shape + 1, dst->shape + 1, sizeof (gint64) * (dst->ndim - 1)) != 0)
    return at_graph_fail (g, "write_rows", "rows %s do not have the row shape of %s", dr, dd);
  return at_graph_new_inplace_node (g, &write_rows_op, dst, srcs, 3, NULL, 0);
}

/* ---- cast ---- */

static void
ref_cast (const AtTensor *dst, const float *const *src, float *out)
{
  /* The graph reference rounds results to dst's dtype after this copy. */
  for (gint64 i = 0; i < at_tensor_numel (dst); i++)
    out[i] = src[0][i];
}

static gboolean
encode_cast (AtEncoder *enc, AtTensor *dst, GError **error)
{
  AtTensor *a = dst->src[0];
  g_autofree char *shader = g_strdup_printf ("cast_%s_%s", at_dtype_name (a->dtype),
                                             at_dtype_name (dst->dtype));
  AtPipelineDesc desc = { shader, 3, { WG, 1, 1 }, 2, sizeof (CastPush) };
  CastPush push = { 0 };
  AtBinding b[2];
  guint32 gx, gy;
  guint64 n_inv;

  push.n = (guint32) at_tensor_numel (dst);
  b[0] = at_encoder_bind (enc, a, FALSE, &push.oa, at_dtype_info (a->dtype)->type_size);
  b[1] = at_encoder_bind (enc, dst, TRUE, &push.od, at_dtype_info (dst->dtype)->type_size);
  n_inv = dst->dtype == AT_DTYPE_F32 ? push.n : (push.n + 1) / 2;
  at_encoder_grid (enc, (n_inv + WG - 1) / WG, &gx, &gy);
  return at_encoder_dispatch (enc, &desc, "cast", &push, b, gx, gy, 1, error);
}

static const AtOp cast_op = { "cast", encode_cast, ref_cast };

static gboolean
castable (AtDtype t)
{
  return t == AT_DTYPE_F32 || t == AT_DTYPE_F16 || t == AT_DTYPE_BF16;
}

AtTensor *
at_cast (AtGraph *g, AtTensor *a, AtDtype dtype)
{
  if (a == NULL)
    return at_graph_new_node (g, &cast_op, dtype, 1, (gint64[]){ 1 }, &a, 1, NULL, 0);
  if (!castable (a->dtype) || !castable (dtype) || (a->dtype != AT_DTYPE_F32 && dtype != AT_DTYPE_F32))
    return at_graph_fail (g, "cast", "%s to %s is not supported (f32 <-> f16/bf16)",
                          at_dtype_name (a->dtype), at_dtype_name (dtype));
  if (a->dtype == dtype)
    return a;
  if (!at_tensor_is_contiguous (a))
    return at_graph_fail (g, "cast", "%s is not contiguous", a->name);
  return at_graph_new_node (g, &cast_op, dtype, a->ndim, a->shape, &a, 1, NULL, 0);
}
