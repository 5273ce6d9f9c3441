/* at-buffer.h: device memory.
 *
 * A buffer is one VkBuffer with its own VkDeviceMemory. Weights and activations live in
 * device-local memory; where that memory is also host-visible (lavapipe, integrated GPUs,
 * resizable BAR) the buffer stays mapped and uploads are a memcpy, otherwise they go through a
 * staging buffer.
 */
#pragma once

#include <glib.h>

#include "at-device.h"

G_BEGIN_DECLS

typedef struct _AtBuffer AtBuffer;

typedef enum
{
  AT_BUFFER_DEVICE = 0,      /* device-local; host-mapped too when the device allows */
  AT_BUFFER_HOST = 1 << 0,   /* host-visible required (staging, graph inputs and outputs) */
} AtBufferFlags;

AtBuffer *at_buffer_new (AtDevice *device, gsize size, AtBufferFlags flags, const char *what,
                         GError **error);
AtBuffer *at_buffer_ref (AtBuffer *buffer);
void at_buffer_unref (AtBuffer *buffer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtBuffer, at_buffer_unref)

gsize at_buffer_get_size (AtBuffer *buffer);
/* Bytes of the VkBuffer itself: the size rounded up to 16 (shaders may read whole vec4s). */
gsize at_buffer_get_vk_size (AtBuffer *buffer);
VkBuffer at_buffer_get_vk (AtBuffer *buffer);
AtDevice *at_buffer_get_device (AtBuffer *buffer);
/* NULL when the memory is not host-visible. */
gpointer at_buffer_get_mapped (AtBuffer *buffer);

/* Synchronous copies between host memory and the buffer; the caller makes sure no GPU work
 * on that range is in flight. */
gboolean at_buffer_upload (AtBuffer *buffer, gsize offset, gconstpointer data, gsize size,
                           GError **error);
gboolean at_buffer_download (AtBuffer *buffer, gsize offset, gpointer data, gsize size,
                             GError **error);
gboolean at_buffer_fill (AtBuffer *buffer, gsize offset, gsize size, guint32 value,
                         GError **error);

/* Whether buffers of `device` can be read as uniform texel buffers of `format` (R32_UINT,
 * R32G32B32A32_UINT, ...; every buffer gets that usage when the device supports either). On
 * success `max_bytes` is the most one view may span (maxTexelBufferElements texels, or fewer with
 * ATELIER_MAX_TEXEL_ELEMENTS, for tests) and `alignment` what its offset must be a multiple of
 * (minTexelBufferOffsetAlignment, at least one texel). */
gboolean at_buffer_texel_support (AtDevice *device, VkFormat format, guint64 *max_bytes,
                                  guint64 *alignment);
/* Bytes per texel of the formats above; 0 for others. */
guint at_texel_format_size (VkFormat format);

/* Flush / invalidate host writes and reads for memory that is not HOST_COHERENT. */
void at_buffer_flush (AtBuffer *buffer, gsize offset, gsize size);
void at_buffer_invalidate (AtBuffer *buffer, gsize offset, gsize size);

G_END_DECLS
