/* at-buffer.c: VkBuffer + VkDeviceMemory, mapped when host-visible, staged otherwise. */
#include "at-buffer.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "at-command.h"
#include "at-error.h"

struct _AtBuffer
{
  gint ref_count;
  AtDevice *device;
  VkBuffer buffer;
  VkDeviceMemory memory;
  gsize size, vk_size;
  gpointer mapped;
  gboolean coherent;
};

AtBuffer *
at_buffer_new (AtDevice *device, gsize size, AtBufferFlags flags, const char *what, GError **error)
{
  VkDevice dev = at_device_get_vk (device);
  const AtDeviceInfo *info = at_device_get_info (device);
  VkBufferCreateInfo bi = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = MAX (size, 16),
    .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT
             | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
    .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  VkMemoryRequirements req;
  VkMemoryAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO };
  g_autofree char *doing = NULL;
  AtBuffer *self;
  gint type;

  /* Round to 16 bytes so shaders may read whole vec4 words at the end. */
  bi.size = (bi.size + 15) & ~(VkDeviceSize) 15;
  if (at_buffer_texel_support (device, VK_FORMAT_R32_UINT, NULL, NULL)
      || at_buffer_texel_support (device, VK_FORMAT_R32G32B32A32_UINT, NULL, NULL))
    bi.usage |= VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT;
  doing = g_strdup_printf ("allocating %.1f MiB for %s", bi.size / 1048576.0, what ? what : "a buffer");
  if (bi.size > info->max_buffer_size)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_OUT_OF_DEVICE_MEMORY,
                   "%s: larger than the device's largest buffer (%.0f MiB)", doing,
                   info->max_buffer_size / 1048576.0);
      return NULL;
    }

  self = g_new0 (AtBuffer, 1);
  self->ref_count = 1;
  self->device = device;
  self->size = size;
  self->vk_size = bi.size;
  if (!at_vk_check (at_vk.vkCreateBuffer (dev, &bi, NULL, &self->buffer), doing, error))
    goto fail;
  at_vk.vkGetBufferMemoryRequirements (dev, self->buffer, &req);
  if (flags & AT_BUFFER_HOST)
    type = at_device_find_memory_type (device, req.memoryTypeBits,
                                       VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT,
                                       VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
                                           | VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
  else
    {
      /* Device-local and mapped where that memory is the whole device-local heap (unified
       * memory, resizable BAR); otherwise device-local only, uploaded through staging. */
      if (at_device_maps_device_memory (device))
        type = at_device_find_memory_type (device, req.memoryTypeBits,
                                           VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                                           VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT
                                               | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
      else
        {
          type = -1;
          for (guint i = 0; i < 32 && type < 0; i++)
            if ((req.memoryTypeBits & (1u << i))
                && at_device_memory_type_is (device, i, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT)
                && !at_device_memory_type_is (device, i, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT))
              type = (gint) i;
          if (type < 0) /* unified memory only (lavapipe, integrated GPUs) */
            type = at_device_find_memory_type (device, req.memoryTypeBits,
                                               VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
        }
      if (type < 0)
        type = at_device_find_memory_type (device, req.memoryTypeBits, 0, 0);
    }
  if (type < 0)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED, "%s: no suitable memory type", doing);
      goto fail;
    }
  ai.allocationSize = req.size;
  ai.memoryTypeIndex = (guint32) type;
  if (!at_vk_check (at_vk.vkAllocateMemory (dev, &ai, NULL, &self->memory), doing, error))
    goto fail;
  if (!at_vk_check (at_vk.vkBindBufferMemory (dev, self->buffer, self->memory, 0), doing, error))
    goto fail;
  if (at_device_memory_type_is (device, (guint) type, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT))
    {
      if (!at_vk_check (at_vk.vkMapMemory (dev, self->memory, 0, VK_WHOLE_SIZE, 0, &self->mapped),
                        doing, error))
        goto fail;
      self->coherent = at_device_memory_type_is (device, (guint) type,
                                                 VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    }
  return self;

fail:
  at_buffer_unref (self);
  return NULL;
}

AtBuffer *
at_buffer_ref (AtBuffer *self)
{
  g_atomic_int_inc (&self->ref_count);
  return self;
}

void
at_buffer_unref (AtBuffer *self)
{
  VkDevice dev;

  if (self == NULL || !g_atomic_int_dec_and_test (&self->ref_count))
    return;
  dev = at_device_get_vk (self->device);
  if (self->mapped != NULL)
    at_vk.vkUnmapMemory (dev, self->memory);
  if (self->buffer != VK_NULL_HANDLE)
    at_vk.vkDestroyBuffer (dev, self->buffer, NULL);
  if (self->memory != VK_NULL_HANDLE)
    at_vk.vkFreeMemory (dev, self->memory, NULL);
  g_free (self);
}

gsize
at_buffer_get_size (AtBuffer *self)
{
  return self->size;
}

gsize
at_buffer_get_vk_size (AtBuffer *self)
{
  return self->vk_size;
}

guint
at_texel_format_size (VkFormat format)
{
  switch (format)
    {
    case VK_FORMAT_R32_UINT:
    case VK_FORMAT_R32_SFLOAT:
      return 4;
    case VK_FORMAT_R32G32_UINT:
    case VK_FORMAT_R32G32_SFLOAT:
      return 8;
    case VK_FORMAT_R32G32B32A32_UINT:
    case VK_FORMAT_R32G32B32A32_SFLOAT:
      return 16;
    default:
      return 0;
    }
}

typedef struct
{
  VkPhysicalDevice physical;
  VkFormat format;
  gboolean supported;
  guint64 max_elements, alignment;
} TexelSupport;

gboolean
at_buffer_texel_support (AtDevice *device, VkFormat format, guint64 *max_bytes, guint64 *alignment)
{
  /* Per physical device and format, asked once (a process sees few of either). */
  static GMutex lock;
  static GArray *known;
  VkPhysicalDevice pd = at_device_get_physical (device);
  guint texel = at_texel_format_size (format);
  const char *env = g_getenv ("ATELIER_MAX_TEXEL_ELEMENTS");
  TexelSupport t = { pd, format, FALSE, 0, 0 };
  gboolean found = FALSE;

  if (texel == 0)
    return FALSE;
  g_mutex_lock (&lock);
  if (known == NULL)
    known = g_array_new (FALSE, FALSE, sizeof (TexelSupport));
  for (guint i = 0; i < known->len && !found; i++)
    if (g_array_index (known, TexelSupport, i).physical == pd
        && g_array_index (known, TexelSupport, i).format == format)
      {
        t = g_array_index (known, TexelSupport, i);
        found = TRUE;
      }
  if (!found)
    {
      VkFormatProperties fp;
      VkPhysicalDeviceProperties props;

      at_vk.vkGetPhysicalDeviceFormatProperties (pd, format, &fp);
      at_vk.vkGetPhysicalDeviceProperties (pd, &props);
      t.supported = (fp.bufferFeatures & VK_FORMAT_FEATURE_UNIFORM_TEXEL_BUFFER_BIT) != 0
                    && props.limits.maxTexelBufferElements > 0;
      t.max_elements = props.limits.maxTexelBufferElements;
      t.alignment = MAX (props.limits.minTexelBufferOffsetAlignment, texel);
      /* Whole texels per aligned step (alignments are powers of two, so are texel sizes). */
      if (t.alignment % texel != 0)
        t.supported = FALSE;
      g_array_append_val (known, t);
    }
  g_mutex_unlock (&lock);
  if (!t.supported)
    return FALSE;
  if (env != NULL && *env != '\0')
    t.max_elements = MIN (t.max_elements, MAX (g_ascii_strtoull (env, NULL, 10), 1));
  if (max_bytes != NULL)
    *max_bytes = t.max_elements * texel;
  if (alignment != NULL)
    *alignment = t.alignment;
  return TRUE;
}

VkBuffer
at_buffer_get_vk (AtBuffer *self)
{
  return self->buffer;
}

AtDevice *
at_buffer_get_device (AtBuffer *self)
{
  return self->device;
}

gpointer
at_buffer_get_mapped (AtBuffer *self)
{
  return self->mapped;
}

static VkMappedMemoryRange
whole_range (AtBuffer *self)
{
  /* Non-coherent ranges must be multiples of nonCoherentAtomSize: the whole mapping is. */
  VkMappedMemoryRange r = {
    .sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
    .memory = self->memory,
    .offset = 0,
    .size = VK_WHOLE_SIZE,
  };
  return r;
}

void
at_buffer_flush (AtBuffer *self, gsize offset, gsize size)
{
  VkMappedMemoryRange r;

  if (self->mapped == NULL || self->coherent)
    return;
  r = whole_range (self);
  at_vk.vkFlushMappedMemoryRanges (at_device_get_vk (self->device), 1, &r);
}

void
at_buffer_invalidate (AtBuffer *self, gsize offset, gsize size)
{
  VkMappedMemoryRange r;

  if (self->mapped == NULL || self->coherent)
    return;
  r = whole_range (self);
  at_vk.vkInvalidateMappedMemoryRanges (at_device_get_vk (self->device), 1, &r);
}

static gboolean
check_range (AtBuffer *self, gsize offset, gsize size, GError **error)
{
  if (offset > self->size || size > self->size - offset)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID,
                   "Copy of %" G_GSIZE_FORMAT " bytes at %" G_GSIZE_FORMAT
                   " is outside a buffer of %" G_GSIZE_FORMAT,
                   size, offset, self->size);
      return FALSE;
    }
  return TRUE;
}

/* Copy through a host-visible staging buffer in chunks of at most 64 MiB. */
static gboolean
staged_copy (AtBuffer *self, gsize offset, gpointer host, gsize size, gboolean upload,
             GError **error)
{
  const gsize chunk = 64u << 20;
  g_autoptr (AtBuffer) staging = at_buffer_new (self->device, MIN (size, chunk), AT_BUFFER_HOST,
                                                "a staging copy", error);

  if (staging == NULL)
    return FALSE;
  for (gsize done = 0; done < size; done += chunk)
    {
      gsize n = MIN (chunk, size - done);
      g_autoptr (AtCommand) cmd = at_command_new (self->device, error);

      if (cmd == NULL)
        return FALSE;
      if (upload)
        {
          memcpy (staging->mapped, (guint8 *) host + done, n);
          at_buffer_flush (staging, 0, n);
          at_command_copy (cmd, staging, 0, self, offset + done, n);
        }
      else
        at_command_copy (cmd, self, offset + done, staging, 0, n);
      if (!at_command_submit_and_wait (cmd, error))
        return FALSE;
      if (!upload)
        {
          at_buffer_invalidate (staging, 0, n);
          memcpy ((guint8 *) host + done, staging->mapped, n);
        }
    }
  return TRUE;
}

/* Large uploads (a model's weights) fault in their pages with one call a side before the
 * copy. On the development VM each page fault is a costly trap (the kernel's fault path was a
 * third of the load's profile), and this took 10% off `bench text`'s load figure. A hint
 * only: its errors are ignored (a device mapping that cannot be populated, an old kernel). */
#define PREFAULT_BYTES (1u << 20)

static void
prefault (gconstpointer p, gsize size, gboolean write)
{
#if defined(MADV_POPULATE_READ) && defined(MADV_POPULATE_WRITE)
  guintptr page = (guintptr) sysconf (_SC_PAGESIZE);
  guintptr start = (guintptr) p & ~(page - 1), end = ((guintptr) p + size + page - 1) & ~(page - 1);

  (void) madvise ((void *) start, end - start, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
#else
  (void) p;
  (void) size;
  (void) write;
#endif
}

gboolean
at_buffer_upload (AtBuffer *self, gsize offset, gconstpointer data, gsize size, GError **error)
{
  if (!check_range (self, offset, size, error))
    return FALSE;
  if (size == 0)
    return TRUE;
  if (self->mapped != NULL)
    {
      if (size >= PREFAULT_BYTES)
        {
          prefault (data, size, FALSE);
          prefault ((guint8 *) self->mapped + offset, size, TRUE);
        }
      memcpy ((guint8 *) self->mapped + offset, data, size);
      at_buffer_flush (self, offset, size);
      return TRUE;
    }
  return staged_copy (self, offset, (gpointer) data, size, TRUE, error);
}

gboolean
at_buffer_download (AtBuffer *self, gsize offset, gpointer data, gsize size, GError **error)
{
  if (!check_range (self, offset, size, error))
    return FALSE;
  if (size == 0)
    return TRUE;
  if (self->mapped != NULL)
    {
      at_buffer_invalidate (self, offset, size);
      memcpy (data, (guint8 *) self->mapped + offset, size);
      return TRUE;
    }
  return staged_copy (self, offset, data, size, FALSE, error);
}

gboolean
at_buffer_fill (AtBuffer *self, gsize offset, gsize size, guint32 value, GError **error)
{
  g_autoptr (AtCommand) cmd = NULL;

  if (!check_range (self, offset, size, error))
    return FALSE;
  if ((offset | size) & 3)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID, "Fill range must be 4-byte aligned");
      return FALSE;
    }
  if (size == 0)
    return TRUE;
  if ((cmd = at_command_new (self->device, error)) == NULL)
    return FALSE;
  at_command_fill (cmd, self, offset, size, value);
  return at_command_submit_and_wait (cmd, error);
}
