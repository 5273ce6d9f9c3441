/* at-graph.h: tensors and the graph a model builds to describe its forward pass.
 *
 * A model describes its forward pass once with graph ops (`y = at_matmul (g, x, w)`), names its
 * inputs and outputs, and compiles the graph for the shapes it was built with. Compiling plans
 * one activation arena by tensor lifetime (two tensors share memory only if they are never live
 * at once), creates the pipelines, and records every dispatch, with barriers, into one command
 * buffer. Each run then writes new input values, replays that recording and reads the outputs:
 * nothing is allocated per run.
 *
 * Shapes are written outermost first, as in PyTorch: a [B, M, K] tensor has shape {B, M, K},
 * K contiguous. Strides are in elements. At most AT_MAX_DIMS dimensions.
 *
 * Every graph op also has a plain C reference (at_graph_run_reference) that computes the same
 * graph on the CPU in f32; the op tests compare the two.
 */
#pragma once

#include <glib.h>

#include "at-dtype.h"
#include "gpu/at-buffer.h"
#include "gpu/at-command.h"

G_BEGIN_DECLS

#define AT_MAX_DIMS 4
#define AT_MAX_SRC 7
#define AT_MAX_PARAMS 128

typedef struct _AtGraph AtGraph;
typedef struct _AtTensor AtTensor;
typedef struct _AtOp AtOp;
typedef struct _AtEncoder AtEncoder;

typedef enum
{
  AT_TENSOR_INTERMEDIATE, /* lives in the arena */
  AT_TENSOR_INPUT,        /* its own buffer; written before each run */
  AT_TENSOR_WEIGHT,       /* a caller's buffer (uploaded weights); read-only */
  AT_TENSOR_VIEW,         /* no storage of its own: a window on `view_src` */
} AtTensorKind;

struct _AtTensor
{
  AtGraph *graph;
  AtTensorKind kind;
  AtDtype dtype;
  int ndim;
  gint64 shape[AT_MAX_DIMS];
  gint64 stride[AT_MAX_DIMS];  /* elements; for quantised types only contiguous rows */
  char name[64];

  /* How it is computed (NULL op for inputs, weights and views). */
  const AtOp *op;
  AtTensor *src[AT_MAX_SRC];
  guint8 params[AT_MAX_PARAMS];

  /* Views: the storage owner and the byte offset into it. */
  AtTensor *view_src;
  gsize view_offset;

  /* Storage, filled at creation (weights) or by compile (arena, inputs, outputs). */
  AtBuffer *buffer;
  gsize offset;
  gboolean is_output;

  /* Planning. */
  int index;     /* creation order */
  int last_use;  /* index of the last op that reads it (through views too) */
};

/* An op: how to record it on the GPU and how to compute it in plain C. */
struct _AtOp
{
  const char *name;
  /* Record the dispatch(es) that compute `dst` from dst->src[] and dst->params. */
  gboolean (*encode) (AtEncoder *enc, AtTensor *dst, GError **error);
  /* Reference: `srcs[i]` is src[i] as contiguous f32 (quantised weights dequantised, i32 as
   * exact floats), `out` is dst as contiguous f32. */
  void (*reference) (const AtTensor *dst, const float *const *srcs, float *out);
};

AtGraph *at_graph_new (AtDevice *device);
void at_graph_free (AtGraph *graph);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtGraph, at_graph_free)

AtDevice *at_graph_get_device (AtGraph *graph);

/* Leaves. `shape` has `ndim` entries, outermost first. */
AtTensor *at_graph_input (AtGraph *g, const char *name, AtDtype dtype, int ndim, const gint64 *shape);
AtTensor *at_graph_weight (AtGraph *g, const char *name, AtDtype dtype, int ndim, const gint64 *shape,
                           AtBuffer *buffer, gsize offset);
/* Marks `t` as an output: it gets its own buffer and survives the run. */
void at_graph_output (AtGraph *g, AtTensor *t, const char *name);

/* The first error met while building (a bad shape); ops return NULL after it. */
gboolean at_graph_check (AtGraph *g, GError **error);

gboolean at_graph_compile (AtGraph *g, GError **error);
gboolean at_graph_set_input (AtGraph *g, AtTensor *input, gconstpointer data, gsize size, GError **error);
gboolean at_graph_run (AtGraph *g, GError **error);
gboolean at_graph_get_output (AtGraph *g, AtTensor *output, gpointer data, gsize size, GError **error);
AtCommand *at_graph_get_command (AtGraph *g);
/* Bytes of the activation arena after compile. */
gsize at_graph_get_arena_size (AtGraph *g);
/* Checks the plan: no two tensors whose lifetimes overlap share arena bytes. */
gboolean at_graph_verify_arena (AtGraph *g, GError **error);

/* The reference: computes every tensor of the graph on the CPU from `inputs` (one f32 array
 * per input tensor, by input order) and the weight buffers' contents; returns the f32 values of
 * `t` (g_free). */
float *at_graph_run_reference (AtGraph *g, AtTensor *t, GError **error);

/* Tensor helpers. */
gint64 at_tensor_numel (const AtTensor *t);
gsize at_tensor_nbytes (const AtTensor *t);
gboolean at_tensor_is_contiguous (const AtTensor *t);
gboolean at_tensor_same_shape (const AtTensor *a, const AtTensor *b);
char *at_tensor_describe (const AtTensor *t); /* "x f32 [2, 3, 4]" */
/* The shape left-padded with 1s to 4 dimensions, and the matching strides (0 for padded). */
void at_tensor_shape4 (const AtTensor *t, gint64 shape[4], gint64 stride[4]);

/* Strides (4-d, left-padded) of `t` laid out contiguously in its own shape, with 0 on every
 * dimension of size 1: how a reference indexes a source that broadcasts (the reference
 * executor hands each source over contiguous). */
void at_tensor_broadcast_strides (const AtTensor *t, gint64 stride[4]);

/* For op implementations: a new node. Returns NULL (and records the error on the graph) when
 * a source is NULL, so ops chain without checks. */
AtTensor *at_graph_new_node (AtGraph *g, const AtOp *op, AtDtype dtype, int ndim, const gint64 *shape,
                             AtTensor *const *srcs, guint n_srcs, const void *params, gsize params_size);
/* For ops that write into a weight in place (a KV cache): a node whose storage is `dst`'s own
 * (a weight, not a view), so the ops after it read what it wrote, and the write persists after
 * the run. Its reference result is the whole of dst after the write. */
AtTensor *at_graph_new_inplace_node (AtGraph *g, const AtOp *op, AtTensor *dst, AtTensor *const *srcs,
                                     guint n_srcs, const void *params, gsize params_size);
/* Records a shape error on the graph (formatted) and returns NULL. */
AtTensor *at_graph_fail (AtGraph *g, const char *op, const char *format, ...) G_GNUC_PRINTF (3, 4);
gboolean at_graph_failed (AtGraph *g);

/* Views (no copy). at_view: any shape and strides into `t`'s storage, offset in elements. */
AtTensor *at_view (AtGraph *g, AtTensor *t, int ndim, const gint64 *shape, const gint64 *stride,
                   gint64 offset);
AtTensor *at_reshape (AtGraph *g, AtTensor *t, int ndim, const gint64 *shape);
AtTensor *at_permute (AtGraph *g, AtTensor *t, const int *axes); /* a view */
AtTensor *at_transpose (AtGraph *g, AtTensor *t, int dim0, int dim1); /* a view */

/* Encoder: what op encode functions use. */
AtDevice *at_encoder_get_device (AtEncoder *enc);
const AtDeviceInfo *at_encoder_get_info (AtEncoder *enc);
/* A binding for the whole extent of `t` (or a part: `first_byte`, `n_bytes` relative to t's
 * first element); `elem_offset` receives the element index of t's (or the part's) first element
 * within the bound range, in units of `unit` bytes (4 for f32 words, 2 for halves). */
AtBinding at_encoder_bind (AtEncoder *enc, const AtTensor *t, gboolean write, guint32 *elem_offset,
                           guint unit);
AtBinding at_encoder_bind_range (AtEncoder *enc, const AtTensor *t, gsize first_byte, gsize n_bytes,
                                 gboolean write, guint32 *elem_offset, guint unit);
/* The same range as a read-only uniform texel buffer view of `format` (R32_UINT: words,
 * R32G32B32A32_UINT: 16-byte texels; `n_bytes` 0: to the end of t); the offset is aligned
 * down and the range rounded up to whole texels. FALSE (nothing to bind) when the device has
 * no such views or the range exceeds one view's limit: bind storage instead. */
gboolean at_encoder_bind_texel (AtEncoder *enc, const AtTensor *t, gsize first_byte, gsize n_bytes,
                                VkFormat format, AtBinding *binding, guint32 *elem_offset, guint unit);
gboolean at_encoder_dispatch (AtEncoder *enc, const AtPipelineDesc *desc, const char *label,
                              const void *push, const AtBinding *bindings, guint32 gx, guint32 gy,
                              guint32 gz, GError **error);
/* Splits `n_groups` workgroups into a 2-D grid within the device's limits; shaders compute
 * their linear group as gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x. */
void at_encoder_grid (AtEncoder *enc, guint64 n_groups, guint32 *gx, guint32 *gy);

/* Plain C reference helpers shared by the ops. */
double at_nmse (const float *ref, const float *out, gsize n);

G_END_DECLS
