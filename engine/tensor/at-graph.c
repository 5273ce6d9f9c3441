/* at-graph.c: graph building, arena planning by lifetime, recording, replay, and the CPU
 * reference executor. */
#include "at-graph.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "at-error.h"

#define ARENA_ALIGN 256

typedef struct
{
  AtTensor *tensor;
  AtBuffer *staging;  /* host-visible copy when the tensor's buffer is not mapped */
  GBytes *host;       /* the last values set, for the reference */
} Io;

struct _AtGraph
{
  AtDevice *device;
  GPtrArray *tensors; /* AtTensor, owned, creation order */
  GArray *inputs;     /* Io */
  GArray *outputs;    /* Io */
  GError *error;
  gboolean compiled;
  AtBuffer *arena;
  gsize arena_size;
  AtCommand *command;
};

struct _AtEncoder
{
  AtGraph *graph;
  AtCommand *command;
};

AtGraph *
at_graph_new (AtDevice *device)
{
  AtGraph *g = g_new0 (AtGraph, 1);

  g->device = device;
  g->tensors = g_ptr_array_new_with_free_func (g_free);
  g->inputs = g_array_new (FALSE, TRUE, sizeof (Io));
  g->outputs = g_array_new (FALSE, TRUE, sizeof (Io));
  return g;
}

static void
clear_io (GArray *ios)
{
  for (guint i = 0; i < ios->len; i++)
    {
      Io *io = &g_array_index (ios, Io, i);
      g_clear_pointer (&io->staging, at_buffer_unref);
      g_clear_pointer (&io->host, g_bytes_unref);
    }
  g_array_unref (ios);
}

void
at_graph_free (AtGraph *g)
{
  if (g == NULL)
    return;
  g_clear_pointer (&g->command, at_command_free);
  for (guint i = 0; i < g->tensors->len; i++)
    {
      AtTensor *t = g_ptr_array_index (g->tensors, i);
      g_clear_pointer (&t->buffer, at_buffer_unref);
    }
  g_clear_pointer (&g->arena, at_buffer_unref);
  clear_io (g->inputs);
  clear_io (g->outputs);
  g_ptr_array_unref (g->tensors);
  g_clear_error (&g->error);
  g_free (g);
}

AtDevice *
at_graph_get_device (AtGraph *g)
{
  return g->device;
}

gint64
at_tensor_numel (const AtTensor *t)
{
  gint64 n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= t->shape[i];
  return n;
}

static gsize
elem_bytes_of (AtDtype dtype, gint64 n_elems)
{
  const AtDtypeInfo *info = at_dtype_info (dtype);
  return (gsize) (n_elems / info->block_size) * info->type_size;
}

gsize
at_tensor_nbytes (const AtTensor *t)
{
  return elem_bytes_of (t->dtype, at_tensor_numel (t));
}

gboolean
at_tensor_is_contiguous (const AtTensor *t)
{
  gint64 expect = 1;
  for (int i = t->ndim - 1; i >= 0; i--)
    {
      if (t->shape[i] != 1 && t->stride[i] != expect)
        return FALSE;
      expect *= t->shape[i];
    }
  return TRUE;
}

gboolean
at_tensor_same_shape (const AtTensor *a, const AtTensor *b)
{
  if (a->ndim != b->ndim)
    return FALSE;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i])
      return FALSE;
  return TRUE;
}

char *
at_tensor_describe (const AtTensor *t)
{
  GString *s = g_string_new (NULL);

  g_string_append_printf (s, "%s %s [", t->name, at_dtype_name (t->dtype));
  for (int i = 0; i < t->ndim; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "", t->shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

void
at_tensor_shape4 (const AtTensor *t, gint64 shape[4], gint64 stride[4])
{
  int pad = 4 - t->ndim;
  for (int i = 0; i < 4; i++)
    {
      shape[i] = i < pad ? 1 : t->shape[i - pad];
      stride[i] = i < pad ? 0 : t->stride[i - pad];
    }
}

void
at_tensor_broadcast_strides (const AtTensor *t, gint64 stride[4])
{
  gint64 shape[4], unused[4], acc = 1;

  at_tensor_shape4 (t, shape, unused);
  for (int i = 3; i >= 0; i--)
    {
      stride[i] = shape[i] == 1 ? 0 : acc;
      acc *= shape[i];
    }
}

static void
set_contiguous_strides (AtTensor *t)
{
  gint64 s = 1;
  for (int i = t->ndim - 1; i >= 0; i--)
    {
      t->stride[i] = s;
      s *= t->shape[i];
    }
}

AtTensor *
at_graph_fail (AtGraph *g, const char *op, const char *format, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;

  if (g->error != NULL)
    return NULL;
  va_start (ap, format);
  msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (&g->error, AT_ERROR, AT_ERROR_SHAPE, "%s: %s", op, msg);
  return NULL;
}

gboolean
at_graph_failed (AtGraph *g)
{
  return g->error != NULL;
}

gboolean
at_graph_check (AtGraph *g, GError **error)
{
  if (g->error == NULL)
    return TRUE;
  g_propagate_error (error, g_error_copy (g->error));
  return FALSE;
}

static AtTensor *
new_tensor (AtGraph *g, AtTensorKind kind, AtDtype dtype, int ndim, const gint64 *shape,
            const char *what)
{
  AtTensor *t;
  gint64 numel = 1;

  if (g->compiled)
    return at_graph_fail (g, what, "the graph is already compiled");
  if (ndim < 1 || ndim > AT_MAX_DIMS)
    return at_graph_fail (g, what, "%d dimensions (1 to %d supported)", ndim, AT_MAX_DIMS);
  if (dtype >= AT_N_DTYPES)
    return at_graph_fail (g, what, "invalid dtype");
  for (int i = 0; i < ndim; i++)
    {
      /* Each dimension < 2^31 and the product at most 2^40, checked before multiplying. */
      if (shape[i] <= 0 || shape[i] > G_MAXINT32 || numel > (((gint64) 1 << 40) / shape[i]))
        return at_graph_fail (g, what, "dimension %d is %" G_GINT64_FORMAT " (must be 1 to 2^31)", i,
                              shape[i]);
      numel *= shape[i];
    }
  if (shape[ndim - 1] % at_dtype_info (dtype)->block_size != 0)
    return at_graph_fail (g, what, "the last dimension %" G_GINT64_FORMAT " is not a multiple of "
                          "the %s block size %u", shape[ndim - 1], at_dtype_name (dtype),
                          at_dtype_info (dtype)->block_size);
  t = g_new0 (AtTensor, 1);
  t->graph = g;
  t->kind = kind;
  t->dtype = dtype;
  t->ndim = ndim;
  memcpy (t->shape, shape, sizeof (gint64) * ndim);
  set_contiguous_strides (t);
  t->index = (int) g->tensors->len;
  t->last_use = t->index;
  g_snprintf (t->name, sizeof t->name, "%s.%d", what, t->index);
  g_ptr_array_add (g->tensors, t);
  return t;
}

AtTensor *
at_graph_input (AtGraph *g, const char *name, AtDtype dtype, int ndim, const gint64 *shape)
{
  AtTensor *t = new_tensor (g, AT_TENSOR_INPUT, dtype, ndim, shape, name);
  Io io = { t, NULL, NULL };

  if (t == NULL)
    return NULL;
  if (at_dtype_info (dtype)->quantized)
    return at_graph_fail (g, name, "inputs cannot be quantised");
  g_strlcpy (t->name, name, sizeof t->name);
  g_array_append_val (g->inputs, io);
  return t;
}

AtTensor *
at_graph_weight (AtGraph *g, const char *name, AtDtype dtype, int ndim, const gint64 *shape,
                 AtBuffer *buffer, gsize offset)
{
  AtTensor *t = new_tensor (g, AT_TENSOR_WEIGHT, dtype, ndim, shape, name);

  if (t == NULL)
    return NULL;
  g_strlcpy (t->name, name, sizeof t->name);
  if (offset > at_buffer_get_size (buffer) || at_tensor_nbytes (t) > at_buffer_get_size (buffer) - offset)
    return at_graph_fail (g, name, "%" G_GSIZE_FORMAT " bytes at %" G_GSIZE_FORMAT
                          " do not fit its buffer of %" G_GSIZE_FORMAT,
                          at_tensor_nbytes (t), offset, at_buffer_get_size (buffer));
  t->buffer = at_buffer_ref (buffer);
  t->offset = offset;
  return t;
}

void
at_graph_output (AtGraph *g, AtTensor *t, const char *name)
{
  Io io = { t, NULL, NULL };

  if (t == NULL)
    return;
  if (t->kind != AT_TENSOR_INTERMEDIATE || t->is_output)
    {
      at_graph_fail (g, "output", "%s is not a computed tensor of its own (copy views with at_cont)",
                     t->name);
      return;
    }
  if (name != NULL)
    g_strlcpy (t->name, name, sizeof t->name);
  t->is_output = TRUE;
  g_array_append_val (g->outputs, io);
}

AtTensor *
at_graph_new_node (AtGraph *g, const AtOp *op, AtDtype dtype, int ndim, const gint64 *shape,
                   AtTensor *const *srcs, guint n_srcs, const void *params, gsize params_size)
{
  AtTensor *t;

  g_return_val_if_fail (n_srcs <= AT_MAX_SRC && params_size <= AT_MAX_PARAMS, NULL);
  for (guint i = 0; i < n_srcs; i++)
    if (srcs[i] == NULL)
      return g->error ? NULL : at_graph_fail (g, op->name, "source %u is missing", i);
  if (at_dtype_info (dtype)->quantized)
    return at_graph_fail (g, op->name, "cannot produce a quantised tensor");
  if ((t = new_tensor (g, AT_TENSOR_INTERMEDIATE, dtype, ndim, shape, op->name)) == NULL)
    return NULL;
  t->op = op;
  for (guint i = 0; i < n_srcs; i++)
    t->src[i] = srcs[i];
  if (params_size > 0)
    memcpy (t->params, params, params_size);
  return t;
}

AtTensor *
at_graph_new_inplace_node (AtGraph *g, const AtOp *op, AtTensor *dst, AtTensor *const *srcs, guint n_srcs,
                           const void *params, gsize params_size)
{
  AtTensor *t;

  if (dst == NULL)
    return g->error ? NULL : at_graph_fail (g, op->name, "the written tensor is missing");
  if (dst->kind != AT_TENSOR_WEIGHT || dst->op != NULL)
    return at_graph_fail (g, op->name, "%s is not a weight: only a weight's buffer can be written in place",
                          dst->name);
  if ((t = at_graph_new_node (g, op, dst->dtype, dst->ndim, dst->shape, srcs, n_srcs, params, params_size)) == NULL)
    return NULL;
  /* A weight-kind node: the arena planner leaves it alone and binds go to dst's buffer. */
  t->kind = AT_TENSOR_WEIGHT;
  t->buffer = at_buffer_ref (dst->buffer);
  t->offset = dst->offset;
  return t;
}

static AtTensor *
storage_root (const AtTensor *t)
{
  while (t->view_src != NULL)
    t = t->view_src;
  return (AtTensor *) t;
}

/* Element offset of a view from its storage root. */
static gint64
view_elem_offset (const AtTensor *t)
{
  gint64 off = 0;
  for (; t->view_src != NULL; t = t->view_src)
    off += (gint64) t->view_offset;
  return off;
}

AtTensor *
at_view (AtGraph *g, AtTensor *src, int ndim, const gint64 *shape, const gint64 *stride, gint64 offset)
{
  AtTensor *t;
  gint64 extent = offset, src_extent = 0;
  const AtDtypeInfo *info;

  if (src == NULL)
    return NULL;
  if ((t = new_tensor (g, AT_TENSOR_VIEW, src->dtype, ndim, shape, "view")) == NULL)
    return NULL;
  info = at_dtype_info (src->dtype);
  memcpy (t->stride, stride, sizeof (gint64) * ndim);
  for (int i = 0; i < ndim; i++)
    {
      if (stride[i] < 0)
        return at_graph_fail (g, "view", "negative strides are not supported");
      extent += (shape[i] - 1) * stride[i];
    }
  for (int i = 0; i < src->ndim; i++)
    src_extent += (src->shape[i] - 1) * src->stride[i];
  if (offset < 0 || extent > src_extent)
    return at_graph_fail (g, "view", "the view reaches element %" G_GINT64_FORMAT
                          " of a tensor whose last is %" G_GINT64_FORMAT, extent, src_extent);
  if (info->quantized && (offset % info->block_size != 0 || !at_tensor_is_contiguous (t)))
    return at_graph_fail (g, "view", "views of %s tensors must be contiguous whole blocks",
                          at_dtype_name (src->dtype));
  t->view_src = src;
  t->view_offset = (gsize) offset;
  g_snprintf (t->name, sizeof t->name, "%s.view%d", src->name, t->index);
  return t;
}

AtTensor *
at_reshape (AtGraph *g, AtTensor *t, int ndim, const gint64 *shape)
{
  gint64 n = 1, stride[AT_MAX_DIMS];

  if (t == NULL)
    return NULL;
  for (int i = 0; i < ndim && i < AT_MAX_DIMS; i++)
    n *= shape[i];
  if (n != at_tensor_numel (t))
    return at_graph_fail (g, "reshape", "%" G_GINT64_FORMAT " elements cannot become %" G_GINT64_FORMAT,
                          at_tensor_numel (t), n);
  if (!at_tensor_is_contiguous (t))
    return at_graph_fail (g, "reshape", "%s is not contiguous (use at_cont first)", t->name);
  if (ndim < 1 || ndim > AT_MAX_DIMS)
    return at_graph_fail (g, "reshape", "%d dimensions", ndim);
  n = 1;
  for (int i = ndim - 1; i >= 0; i--)
    {
      stride[i] = n;
      n *= shape[i];
    }
  return at_view (g, t, ndim, shape, stride, 0);
}

AtTensor *
at_permute (AtGraph *g, AtTensor *t, const int *axes)
{
  gint64 shape[AT_MAX_DIMS], stride[AT_MAX_DIMS];
  guint seen = 0;

  if (t == NULL)
    return NULL;
  for (int i = 0; i < t->ndim; i++)
    {
      if (axes[i] < 0 || axes[i] >= t->ndim || (seen & (1u << axes[i])))
        return at_graph_fail (g, "permute", "axes are not a permutation of 0..%d", t->ndim - 1);
      seen |= 1u << axes[i];
      shape[i] = t->shape[axes[i]];
      stride[i] = t->stride[axes[i]];
    }
  if (at_dtype_info (t->dtype)->quantized)
    return at_graph_fail (g, "permute", "cannot permute a quantised tensor");
  return at_view (g, t, t->ndim, shape, stride, 0);
}

AtTensor *
at_transpose (AtGraph *g, AtTensor *t, int dim0, int dim1)
{
  int axes[AT_MAX_DIMS];

  if (t == NULL)
    return NULL;
  if (dim0 < 0)
    dim0 += t->ndim;
  if (dim1 < 0)
    dim1 += t->ndim;
  for (int i = 0; i < t->ndim; i++)
    axes[i] = i;
  if (dim0 < 0 || dim0 >= t->ndim || dim1 < 0 || dim1 >= t->ndim)
    return at_graph_fail (g, "transpose", "dimensions %d, %d of a %d-d tensor", dim0, dim1, t->ndim);
  axes[dim0] = dim1;
  axes[dim1] = dim0;
  return at_permute (g, t, axes);
}

/* ---- planning ---------------------------------------------------------------------------- */

typedef struct
{
  gsize offset, size;
  int last_use;
} Block;

static gsize
align_up (gsize v, gsize a)
{
  return (v + a - 1) / a * a;
}

static gboolean
plan_arena (AtGraph *g, GError **error)
{
  g_autoptr (GArray) live = g_array_new (FALSE, FALSE, sizeof (Block));
  gsize align = MAX (ARENA_ALIGN, at_device_get_info (g->device)->min_storage_buffer_offset_alignment);

  g->arena_size = 0;
  for (guint i = 0; i < g->tensors->len; i++)
    {
      AtTensor *t = g_ptr_array_index (g->tensors, i);
      gsize size, best = G_MAXSIZE;
      Block b;

      if (t->kind != AT_TENSOR_INTERMEDIATE || t->is_output)
        continue;
      /* Free blocks whose tensors were last read before this op: this op's own sources stay. */
      for (guint j = live->len; j-- > 0;)
        if (g_array_index (live, Block, j).last_use < t->index)
          g_array_remove_index_fast (live, j);
      size = align_up (MAX (at_tensor_nbytes (t), 4), align);
      /* First fit: the lowest gap between live blocks that holds `size`. */
      {
        gsize candidate = 0;
        gboolean moved = TRUE;
        while (moved)
          {
            moved = FALSE;
            for (guint j = 0; j < live->len; j++)
              {
                const Block *o = &g_array_index (live, Block, j);
                if (candidate < o->offset + o->size && o->offset < candidate + size)
                  {
                    candidate = o->offset + o->size;
                    moved = TRUE;
                  }
              }
          }
        best = candidate;
      }
      t->offset = best;
      b.offset = best;
      b.size = size;
      b.last_use = t->last_use;
      g_array_append_val (live, b);
      g->arena_size = MAX (g->arena_size, best + size);
    }
  if (g->arena_size > 0)
    {
      g->arena = at_buffer_new (g->device, g->arena_size, AT_BUFFER_DEVICE, "activations", error);
      if (g->arena == NULL)
        return FALSE;
      for (guint i = 0; i < g->tensors->len; i++)
        {
          AtTensor *t = g_ptr_array_index (g->tensors, i);
          if (t->kind == AT_TENSOR_INTERMEDIATE && !t->is_output)
            t->buffer = at_buffer_ref (g->arena);
        }
    }
  return TRUE;
}

gboolean
at_graph_verify_arena (AtGraph *g, GError **error)
{
  for (guint i = 0; i < g->tensors->len; i++)
    for (guint j = i + 1; j < g->tensors->len; j++)
      {
        AtTensor *a = g_ptr_array_index (g->tensors, i), *b = g_ptr_array_index (g->tensors, j);
        gsize ae, be;
        if (a->buffer == NULL || a->buffer != b->buffer || a->kind == AT_TENSOR_WEIGHT)
          continue;
        /* Live ranges [index, last_use] overlap? */
        if (a->last_use < b->index || b->last_use < a->index)
          continue;
        ae = a->offset + at_tensor_nbytes (a);
        be = b->offset + at_tensor_nbytes (b);
        if (a->offset < be && b->offset < ae)
          {
            g_set_error (error, AT_ERROR, AT_ERROR_FAILED,
                         "arena overlap: %s [%" G_GSIZE_FORMAT ", %" G_GSIZE_FORMAT ") live %d..%d and "
                         "%s [%" G_GSIZE_FORMAT ", %" G_GSIZE_FORMAT ") live %d..%d",
                         a->name, a->offset, ae, a->index, a->last_use, b->name, b->offset, be,
                         b->index, b->last_use);
            return FALSE;
          }
      }
  return TRUE;
}

static gboolean
allocate_io (AtGraph *g, GArray *ios, GError **error)
{
  for (guint i = 0; i < ios->len; i++)
    {
      Io *io = &g_array_index (ios, Io, i);
      AtTensor *t = io->tensor;
      t->buffer = at_buffer_new (g->device, at_tensor_nbytes (t), AT_BUFFER_DEVICE, t->name, error);
      if (t->buffer == NULL)
        return FALSE;
      t->offset = 0;
      if (at_buffer_get_mapped (t->buffer) == NULL)
        {
          io->staging = at_buffer_new (g->device, at_tensor_nbytes (t), AT_BUFFER_HOST, t->name, error);
          if (io->staging == NULL)
            return FALSE;
        }
    }
  return TRUE;
}

gboolean
at_graph_compile (AtGraph *g, GError **error)
{
  AtEncoder enc;

  if (!at_graph_check (g, error))
    return FALSE;
  g_return_val_if_fail (!g->compiled, FALSE);
  /* Lifetimes: a tensor (and the storage behind a view) lives until its last reader. */
  for (guint i = 0; i < g->tensors->len; i++)
    {
      AtTensor *t = g_ptr_array_index (g->tensors, i);
      for (guint s = 0; s < AT_MAX_SRC && t->op != NULL; s++)
        if (t->src[s] != NULL)
          {
            AtTensor *root = storage_root (t->src[s]);
            t->src[s]->last_use = MAX (t->src[s]->last_use, t->index);
            root->last_use = MAX (root->last_use, t->index);
          }
    }
  for (guint i = 0; i < g->tensors->len; i++)
    {
      AtTensor *t = g_ptr_array_index (g->tensors, i);
      if (t->is_output || t->kind == AT_TENSOR_INPUT)
        t->last_use = G_MAXINT;
    }
  if (!allocate_io (g, g->inputs, error) || !allocate_io (g, g->outputs, error) || !plan_arena (g, error))
    return FALSE;

  if ((g->command = at_command_new (g->device, error)) == NULL)
    return FALSE;
  for (guint i = 0; i < g->inputs->len; i++)
    {
      Io *io = &g_array_index (g->inputs, Io, i);
      if (io->staging != NULL)
        at_command_copy (g->command, io->staging, 0, io->tensor->buffer, 0, at_tensor_nbytes (io->tensor));
    }
  enc.graph = g;
  enc.command = g->command;
  for (guint i = 0; i < g->tensors->len; i++)
    {
      AtTensor *t = g_ptr_array_index (g->tensors, i);
      if (t->op != NULL && !t->op->encode (&enc, t, error))
        {
          g_prefix_error (error, "%s: ", t->name);
          return FALSE;
        }
    }
  for (guint i = 0; i < g->outputs->len; i++)
    {
      Io *io = &g_array_index (g->outputs, Io, i);
      if (io->staging != NULL)
        at_command_copy (g->command, io->tensor->buffer, 0, io->staging, 0, at_tensor_nbytes (io->tensor));
    }
  g->compiled = TRUE;
  return TRUE;
}

static Io *
find_io (GArray *ios, AtTensor *t)
{
  for (guint i = 0; i < ios->len; i++)
    if (g_array_index (ios, Io, i).tensor == t)
      return &g_array_index (ios, Io, i);
  return NULL;
}

gboolean
at_graph_set_input (AtGraph *g, AtTensor *input, gconstpointer data, gsize size, GError **error)
{
  Io *io = find_io (g->inputs, input);

  if (io == NULL || !g->compiled)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "%s is not an input of a compiled graph",
                   input ? input->name : "(null)");
      return FALSE;
    }
  if (size != at_tensor_nbytes (input))
    {
      g_autofree char *d = at_tensor_describe (input);
      g_set_error (error, AT_ERROR, AT_ERROR_SHAPE, "input %s takes %" G_GSIZE_FORMAT
                   " bytes, not %" G_GSIZE_FORMAT, d, at_tensor_nbytes (input), size);
      return FALSE;
    }
  g_clear_pointer (&io->host, g_bytes_unref);
  io->host = g_bytes_new (data, size);
  return at_buffer_upload (io->staging ? io->staging : input->buffer, 0, data, size, error);
}

gboolean
at_graph_run (AtGraph *g, GError **error)
{
  if (!g->compiled)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "the graph is not compiled");
      return FALSE;
    }
  return at_command_submit_and_wait (g->command, error);
}

gboolean
at_graph_get_output (AtGraph *g, AtTensor *output, gpointer data, gsize size, GError **error)
{
  Io *io = find_io (g->outputs, output);

  if (io == NULL || !g->compiled || size != at_tensor_nbytes (output))
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "%s is not an output of this size",
                   output ? output->name : "(null)");
      return FALSE;
    }
  return at_buffer_download (io->staging ? io->staging : output->buffer, 0, data, size, error);
}

AtCommand *
at_graph_get_command (AtGraph *g)
{
  return g->command;
}

gsize
at_graph_get_arena_size (AtGraph *g)
{
  return g->arena_size;
}

/* ---- encoding ---------------------------------------------------------------------------- */

AtDevice *
at_encoder_get_device (AtEncoder *enc)
{
  return enc->graph->device;
}

const AtDeviceInfo *
at_encoder_get_info (AtEncoder *enc)
{
  return at_device_get_info (enc->graph->device);
}

/* Bytes from the storage root's start to `t`'s first element, and the extent of `t`. */
static void
byte_span (const AtTensor *t, gsize *first, gsize *extent)
{
  const AtDtypeInfo *info = at_dtype_info (t->dtype);
  gint64 last = 0;

  for (int i = 0; i < t->ndim; i++)
    last += (t->shape[i] - 1) * t->stride[i];
  *first = elem_bytes_of (t->dtype, view_elem_offset (t));
  if (info->quantized)
    *extent = at_tensor_nbytes (t);
  else
    *extent = (gsize) (last + 1) * info->type_size;
}

AtBinding
at_encoder_bind_range (AtEncoder *enc, const AtTensor *t, gsize first_byte, gsize n_bytes,
                       gboolean write, guint32 *elem_offset, guint unit)
{
  const AtDeviceInfo *info = at_encoder_get_info (enc);
  AtTensor *root = storage_root (t);
  gsize first, extent, start, aligned;
  AtBinding b;

  byte_span (t, &first, &extent);
  start = root->offset + first + first_byte;
  aligned = start / info->min_storage_buffer_offset_alignment * info->min_storage_buffer_offset_alignment;
  b.buffer = root->buffer;
  b.offset = aligned;
  /* Whole 16-byte words: shaders read vec4 / uvec4, and a robust driver (NVIDIA) returns zeros
   * for a vector that straddles the end of the bound range. Every VkBuffer is a multiple of
   * 16 bytes, so this stays inside it. */
  b.range = MIN (align_up (start - aligned + n_bytes, 16), at_buffer_get_vk_size (root->buffer) - aligned);
  b.write = write;
  b.format = VK_FORMAT_UNDEFINED;
  if (elem_offset != NULL)
    *elem_offset = (guint32) ((start - aligned) / unit);
  return b;
}

gboolean
at_encoder_bind_texel (AtEncoder *enc, const AtTensor *t, gsize first_byte, gsize n_bytes,
                       VkFormat format, AtBinding *binding, guint32 *elem_offset, guint unit)
{
  AtTensor *root = storage_root (t);
  guint64 max_bytes, alignment;
  guint texel = at_texel_format_size (format);
  gsize first, extent, start, aligned;

  if (!at_buffer_texel_support (enc->graph->device, format, &max_bytes, &alignment))
    return FALSE;
  byte_span (t, &first, &extent);
  if (n_bytes == 0)
    n_bytes = extent - first_byte;
  start = root->offset + first + first_byte;
  aligned = start / alignment * alignment;
  binding->buffer = root->buffer;
  binding->offset = aligned;
  binding->range = align_up (start - aligned + n_bytes, texel);
  binding->write = FALSE;
  binding->format = format;
  if (elem_offset != NULL)
    *elem_offset = (guint32) ((start - aligned) / unit);
  return binding->range <= max_bytes
         && binding->offset + binding->range <= at_buffer_get_vk_size (root->buffer);
}

AtBinding
at_encoder_bind (AtEncoder *enc, const AtTensor *t, gboolean write, guint32 *elem_offset, guint unit)
{
  gsize first, extent;

  byte_span (t, &first, &extent);
  return at_encoder_bind_range (enc, t, 0, extent, write, elem_offset, unit);
}

gboolean
at_encoder_dispatch (AtEncoder *enc, const AtPipelineDesc *desc, const char *label, const void *push,
                     const AtBinding *bindings, guint32 gx, guint32 gy, guint32 gz, GError **error)
{
  AtPipeline *p = at_pipeline_get (enc->graph->device, desc, error);

  if (p == NULL)
    return FALSE;
  return at_command_dispatch (enc->command, p, label, push, bindings, gx, gy, gz, error);
}

void
at_encoder_grid (AtEncoder *enc, guint64 n_groups, guint32 *gx, guint32 *gy)
{
  guint32 max_x = MIN (at_encoder_get_info (enc)->max_workgroup_count[0], 65535u);

  if (n_groups <= max_x)
    {
      *gx = (guint32) MAX (n_groups, 1);
      *gy = 1;
    }
  else
    {
      *gx = max_x;
      *gy = (guint32) ((n_groups + max_x - 1) / max_x);
    }
}

/* ---- reference executor ------------------------------------------------------------------ */

/* `t` as contiguous f32, gathered from the f32 values of its storage root. */
static float *
gather (const AtTensor *t, const float *root_values)
{
  gint64 shape[4], stride[4], off = view_elem_offset (t);
  float *out = g_new (float, at_tensor_numel (t));
  gint64 n = 0;

  at_tensor_shape4 (t, shape, stride);
  for (gint64 a = 0; a < shape[0]; a++)
    for (gint64 b = 0; b < shape[1]; b++)
      for (gint64 c = 0; c < shape[2]; c++)
        for (gint64 d = 0; d < shape[3]; d++)
          out[n++] = root_values[off + a * stride[0] + b * stride[1] + c * stride[2] + d * stride[3]];
  return out;
}

/* One node's reference result from the values computed so far. */
static float *
reference_node (const AtTensor *t, GPtrArray *values)
{
  float *srcs[AT_MAX_SRC] = { NULL };
  float *v = g_new0 (float, at_tensor_numel (t));

  for (guint s = 0; s < AT_MAX_SRC; s++)
    if (t->src[s] != NULL)
      srcs[s] = gather (t->src[s], g_ptr_array_index (values, storage_root (t->src[s])->index));
  t->op->reference (t, (const float *const *) srcs, v);
  for (guint s = 0; s < AT_MAX_SRC; s++)
    g_free (srcs[s]);
  /* Results are stored in their dtype: round like the GPU does. */
  if (t->dtype == AT_DTYPE_F16 || t->dtype == AT_DTYPE_BF16)
    for (gint64 k = 0; k < at_tensor_numel (t); k++)
      v[k] = t->dtype == AT_DTYPE_F16 ? at_f16_to_f32 (at_f32_to_f16 (v[k])) : at_bf16_to_f32 (at_f32_to_bf16 (v[k]));
  return v;
}

float *
at_graph_run_reference (AtGraph *g, AtTensor *target, GError **error)
{
  g_autoptr (GPtrArray) values = g_ptr_array_new_full (g->tensors->len, g_free);
  float *result = NULL;

  for (guint i = 0; i < g->tensors->len; i++)
    {
      AtTensor *t = g_ptr_array_index (g->tensors, i);
      float *v = NULL;

      switch (t->kind)
        {
        case AT_TENSOR_INPUT:
          {
            Io *io = find_io (g->inputs, t);
            if (io == NULL || io->host == NULL)
              {
                g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "input %s was never set", t->name);
                return NULL;
              }
            v = g_new (float, at_tensor_numel (t));
            at_dequantize_row (t->dtype, g_bytes_get_data (io->host, NULL), v, at_tensor_numel (t));
          }
          break;
        case AT_TENSOR_WEIGHT:
          if (t->op != NULL)
            {
              v = reference_node (t, values);
              break;
            }
          {
            g_autofree guint8 *raw = g_malloc (at_tensor_nbytes (t));
            if (!at_buffer_download (t->buffer, t->offset, raw, at_tensor_nbytes (t), error))
              return NULL;
            v = g_new (float, at_tensor_numel (t));
            at_dequantize_row (t->dtype, raw, v, at_tensor_numel (t));
          }
          break;
        case AT_TENSOR_VIEW:
          break; /* read through its root by gather() */
        case AT_TENSOR_INTERMEDIATE:
          v = reference_node (t, values);
          break;
        }
      g_ptr_array_add (values, v);
      if (t == target)
        break;
    }
  if (target->kind == AT_TENSOR_VIEW)
    result = gather (target, g_ptr_array_index (values, storage_root (target)->index));
  else
    result = g_memdup2 (g_ptr_array_index (values, target->index), at_tensor_numel (target) * sizeof (float));
  return result;
}

double
at_nmse (const float *ref, const float *out, gsize n)
{
  double num = 0, den = 0;

  for (gsize i = 0; i < n; i++)
    {
      double d = (double) out[i] - ref[i];
      if (isnan (out[i]) != isnan (ref[i]))
        return INFINITY;
      num += d * d;
      den += (double) ref[i] * ref[i];
    }
  return den > 0 ? num / den : num;
}
