/* at-command.h: recording compute work into a command buffer, then submitting it, as often as
 * wanted.
 *
 * Barriers are inserted by the recorder: each dispatch or copy declares the buffer ranges it
 * reads and writes, and a memory barrier goes in exactly where a range is read or written after
 * an earlier write, or written after an earlier read, since the last barrier. A recording starts
 * with a barrier against all earlier submissions and ends with one that makes every write
 * visible to the host, so replaying it is safe. With ATELIER_PROFILE=1 each dispatch is
 * bracketed by timestamp queries and at_command_print_profile() prints GPU time per label.
 */
#pragma once

#include <glib.h>
#include <stdio.h>

#include "at-buffer.h"
#include "at-pipeline.h"

G_BEGIN_DECLS

typedef struct _AtCommand AtCommand;

/* A storage buffer range, or with `format` set a uniform texel buffer view of it (read-only;
 * the pipeline's texel_bindings bit says which the shader declares). The recording creates the
 * views and destroys them with itself. */
typedef struct
{
  AtBuffer *buffer;
  gsize offset;   /* bytes; a multiple of minStorageBufferOffsetAlignment (texel: of the
                     alignment at_buffer_texel_support gives) */
  gsize range;    /* bytes; at most maxStorageBufferRange (texel: its max_bytes, whole texels) */
  gboolean write;
  VkFormat format; /* VK_FORMAT_UNDEFINED (0): a storage buffer */
} AtBinding;

AtCommand *at_command_new (AtDevice *device, GError **error);
void at_command_free (AtCommand *cmd);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtCommand, at_command_free)

/* `label` names the op for profiles and errors (borrowed: a static or interned string). */
gboolean at_command_dispatch (AtCommand *cmd, AtPipeline *pipeline, const char *label,
                              const void *push, const AtBinding *bindings, guint32 groups_x,
                              guint32 groups_y, guint32 groups_z, GError **error);
void at_command_copy (AtCommand *cmd, AtBuffer *src, gsize src_offset, AtBuffer *dst,
                      gsize dst_offset, gsize size);
void at_command_fill (AtCommand *cmd, AtBuffer *dst, gsize offset, gsize size, guint32 value);

guint at_command_get_n_dispatches (AtCommand *cmd);

/* Ends the recording on first use; may be called again to replay. */
gboolean at_command_submit_and_wait (AtCommand *cmd, GError **error);

/* Whether ATELIER_PROFILE=1 is set. */
gboolean at_profile_enabled (void);
/* GPU time per label over all submissions so far, in milliseconds, to `out` (stderr if NULL). */
void at_command_print_profile (AtCommand *cmd, FILE *out);
/* Total GPU time of the last submission in ms (profiling only; 0 otherwise). */
double at_command_get_last_gpu_ms (AtCommand *cmd);

G_END_DECLS
