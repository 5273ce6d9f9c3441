/* at-command.c: command recording with automatic barriers, replay, and timestamp profiling. */
#include "at-command.h"

#include <stdio.h>

#include "at-error.h"

#define SETS_PER_POOL 256
#define MAX_QUERIES 8192

typedef struct
{
  VkBuffer buffer;
  gsize offset, size;
  gboolean write;
} Access;

typedef struct
{
  VkBuffer buffer;
  gsize offset, range;
  VkFormat format;
  VkBufferView view;
} TexelView;

typedef struct
{
  const char *label;
  guint n;
  double ms;
} ProfileEntry;

struct _AtCommand
{
  AtDevice *device;
  VkCommandPool pool;
  VkCommandBuffer cb;
  VkFence fence;
  GPtrArray *descriptor_pools; /* VkDescriptorPool as pointers */
  guint sets_in_pool;
  GPtrArray *keep;             /* AtBuffer refs the recording uses */
  GArray *accesses;            /* Access since the last barrier */
  GArray *views;               /* TexelView the recording created */
  gboolean ended;
  guint n_dispatches;

  VkQueryPool queries;
  guint n_queries;
  GPtrArray *query_labels;     /* label for each pair of queries */
  GArray *profile;             /* ProfileEntry */
  double last_gpu_ms;
};

gboolean
at_profile_enabled (void)
{
  static gsize once;
  static gboolean on;

  if (g_once_init_enter (&once))
    {
      on = g_strcmp0 (g_getenv ("ATELIER_PROFILE"), "1") == 0;
      g_once_init_leave (&once, 1);
    }
  return on;
}

static void
full_barrier (AtCommand *cmd, VkPipelineStageFlags src_stage, VkAccessFlags src_access,
              VkPipelineStageFlags dst_stage, VkAccessFlags dst_access)
{
  VkMemoryBarrier mb = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
    .srcAccessMask = src_access,
    .dstAccessMask = dst_access,
  };
  at_vk.vkCmdPipelineBarrier (cmd->cb, src_stage, dst_stage, 0, 1, &mb, 0, NULL, 0, NULL);
  g_array_set_size (cmd->accesses, 0);
}

#define WORK_STAGES (VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT)
#define WORK_WRITES (VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT)
#define WORK_ACCESS                                                                                \
  (VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT            \
   | VK_ACCESS_TRANSFER_WRITE_BIT)

AtCommand *
at_command_new (AtDevice *device, GError **error)
{
  VkDevice dev = at_device_get_vk (device);
  g_autoptr (AtCommand) cmd = g_new0 (AtCommand, 1);
  VkCommandPoolCreateInfo pi = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
    .queueFamilyIndex = at_device_get_queue_family (device),
  };
  VkCommandBufferAllocateInfo ai = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
    .commandBufferCount = 1,
  };
  VkFenceCreateInfo fi = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
  VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO };

  cmd->device = device;
  cmd->descriptor_pools = g_ptr_array_new ();
  cmd->keep = g_ptr_array_new_with_free_func ((GDestroyNotify) at_buffer_unref);
  cmd->accesses = g_array_new (FALSE, FALSE, sizeof (Access));
  cmd->views = g_array_new (FALSE, FALSE, sizeof (TexelView));
  cmd->query_labels = g_ptr_array_new ();
  cmd->profile = g_array_new (FALSE, TRUE, sizeof (ProfileEntry));
  if (!at_vk_check (at_vk.vkCreateCommandPool (dev, &pi, NULL, &cmd->pool), "creating a command pool", error))
    return NULL;
  ai.commandPool = cmd->pool;
  if (!at_vk_check (at_vk.vkAllocateCommandBuffers (dev, &ai, &cmd->cb), "allocating a command buffer", error))
    return NULL;
  if (!at_vk_check (at_vk.vkCreateFence (dev, &fi, NULL, &cmd->fence), "creating a fence", error))
    return NULL;
  if (at_profile_enabled () && at_device_get_info (device)->timestamp_period > 0)
    {
      VkQueryPoolCreateInfo qi = {
        .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
        .queryType = VK_QUERY_TYPE_TIMESTAMP,
        .queryCount = MAX_QUERIES,
      };
      if (!at_vk_check (at_vk.vkCreateQueryPool (dev, &qi, NULL, &cmd->queries), "creating timestamp queries", error))
        return NULL;
    }
  if (!at_vk_check (at_vk.vkBeginCommandBuffer (cmd->cb, &bi), "recording commands", error))
    return NULL;
  if (cmd->queries != VK_NULL_HANDLE)
    at_vk.vkCmdResetQueryPool (cmd->cb, cmd->queries, 0, MAX_QUERIES);
  /* Against whatever earlier submissions (or an earlier replay of this one) wrote. */
  full_barrier (cmd, WORK_STAGES, WORK_WRITES, WORK_STAGES, WORK_ACCESS);
  return g_steal_pointer (&cmd);
}

void
at_command_free (AtCommand *cmd)
{
  VkDevice dev;

  if (cmd == NULL)
    return;
  dev = at_device_get_vk (cmd->device);
  for (guint i = 0; i < cmd->views->len; i++)
    at_vk.vkDestroyBufferView (dev, g_array_index (cmd->views, TexelView, i).view, NULL);
  for (guint i = 0; i < cmd->descriptor_pools->len; i++)
    at_vk.vkDestroyDescriptorPool (dev, (VkDescriptorPool) g_ptr_array_index (cmd->descriptor_pools, i), NULL);
  if (cmd->queries != VK_NULL_HANDLE)
    at_vk.vkDestroyQueryPool (dev, cmd->queries, NULL);
  if (cmd->fence != VK_NULL_HANDLE)
    at_vk.vkDestroyFence (dev, cmd->fence, NULL);
  if (cmd->pool != VK_NULL_HANDLE)
    at_vk.vkDestroyCommandPool (dev, cmd->pool, NULL);
  g_ptr_array_unref (cmd->descriptor_pools);
  g_ptr_array_unref (cmd->keep);
  g_array_unref (cmd->accesses);
  g_array_unref (cmd->views);
  g_ptr_array_unref (cmd->query_labels);
  g_array_unref (cmd->profile);
  g_free (cmd);
}

/* Does this access conflict with one since the last barrier? */
static gboolean
hazard (AtCommand *cmd, VkBuffer buffer, gsize offset, gsize size, gboolean write)
{
  for (guint i = 0; i < cmd->accesses->len; i++)
    {
      const Access *a = &g_array_index (cmd->accesses, Access, i);
      if (a->buffer != buffer || (!a->write && !write))
        continue;
      if (offset < a->offset + a->size && a->offset < offset + size)
        return TRUE;
    }
  return FALSE;
}

static void
note_access (AtCommand *cmd, AtBuffer *buffer, gsize offset, gsize size, gboolean write)
{
  Access a = { at_buffer_get_vk (buffer), offset, size, write };
  g_array_append_val (cmd->accesses, a);
}

static VkDescriptorSet
allocate_set (AtCommand *cmd, AtPipeline *p, GError **error)
{
  VkDevice dev = at_device_get_vk (cmd->device);
  VkDescriptorSet set = VK_NULL_HANDLE;
  VkDescriptorSetAllocateInfo ai = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
    .descriptorSetCount = 1,
    .pSetLayouts = &p->set_layout,
  };

  if (cmd->descriptor_pools->len == 0 || cmd->sets_in_pool == SETS_PER_POOL)
    {
      VkDescriptorPoolSize sizes[] = {
        { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SETS_PER_POOL * AT_MAX_BINDINGS },
        { VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, SETS_PER_POOL * AT_MAX_BINDINGS },
      };
      VkDescriptorPoolCreateInfo pi = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = SETS_PER_POOL,
        .poolSizeCount = G_N_ELEMENTS (sizes),
        .pPoolSizes = sizes,
      };
      VkDescriptorPool pool;
      if (!at_vk_check (at_vk.vkCreateDescriptorPool (dev, &pi, NULL, &pool), "creating a descriptor pool", error))
        return VK_NULL_HANDLE;
      g_ptr_array_add (cmd->descriptor_pools, (gpointer) pool);
      cmd->sets_in_pool = 0;
    }
  ai.descriptorPool = (VkDescriptorPool) g_ptr_array_index (cmd->descriptor_pools, cmd->descriptor_pools->len - 1);
  if (!at_vk_check (at_vk.vkAllocateDescriptorSets (dev, &ai, &set), "allocating a descriptor set", error))
    return VK_NULL_HANDLE;
  cmd->sets_in_pool++;
  return set;
}

/* A view of the binding's range, made once per recording. */
static VkBufferView
texel_view (AtCommand *cmd, const AtBinding *b, GError **error)
{
  VkBufferViewCreateInfo vi = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
    .buffer = at_buffer_get_vk (b->buffer),
    .format = b->format,
    .offset = b->offset,
    .range = b->range,
  };
  TexelView t = { vi.buffer, b->offset, b->range, b->format, VK_NULL_HANDLE };

  for (guint i = 0; i < cmd->views->len; i++)
    {
      const TexelView *v = &g_array_index (cmd->views, TexelView, i);
      if (v->buffer == t.buffer && v->offset == t.offset && v->range == t.range && v->format == t.format)
        return v->view;
    }
  if (!at_vk_check (at_vk.vkCreateBufferView (at_device_get_vk (cmd->device), &vi, NULL, &t.view),
                    "creating a texel buffer view", error))
    return VK_NULL_HANDLE;
  g_array_append_val (cmd->views, t);
  return t.view;
}

/* Whether a binding fits what the pipeline declares and the device's limits. */
static gboolean
check_binding (AtCommand *cmd, AtPipeline *p, const char *label, guint i, const AtBinding *b,
               GError **error)
{
  const AtDeviceInfo *info = at_device_get_info (cmd->device);
  gboolean texel = (p->texel_bindings >> i) & 1;
  guint64 max_bytes = info->max_storage_buffer_range, alignment = info->min_storage_buffer_offset_alignment;
  guint texel_size = at_texel_format_size (b->format);

  if (texel != (b->format != VK_FORMAT_UNDEFINED) || (texel && b->write)
      || (texel && !at_buffer_texel_support (cmd->device, b->format, &max_bytes, &alignment)))
    {
      g_set_error (error, AT_ERROR, AT_ERROR_INVALID,
                   "%s: binding %u is a %s but the shader declares a %s", label, i,
                   b->format == VK_FORMAT_UNDEFINED ? "storage buffer"
                   : b->write ? "written texel buffer" : "texel buffer of an unsupported format",
                   texel ? "uniform texel buffer" : "storage buffer");
      return FALSE;
    }
  if (b->range > max_bytes || b->offset % alignment || (texel && b->range % texel_size)
      || b->offset + MAX (b->range, 4) > at_buffer_get_vk_size (b->buffer))
    {
      g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED,
                   "%s: binding %u (%" G_GSIZE_FORMAT " bytes at %" G_GSIZE_FORMAT
                   ") is misaligned or exceeds the device's %s range of %" G_GUINT64_FORMAT
                   " bytes",
                   label, i, b->range, b->offset, texel ? "texel buffer" : "storage", max_bytes);
      return FALSE;
    }
  return TRUE;
}

gboolean
at_command_dispatch (AtCommand *cmd, AtPipeline *p, const char *label, const void *push,
                     const AtBinding *bindings, guint32 gx, guint32 gy, guint32 gz, GError **error)
{
  const AtDeviceInfo *info = at_device_get_info (cmd->device);
  VkDescriptorBufferInfo bi[AT_MAX_BINDINGS];
  VkBufferView views[AT_MAX_BINDINGS];
  VkWriteDescriptorSet writes[AT_MAX_BINDINGS];
  gboolean need_barrier = FALSE;
  VkDescriptorSet set;

  g_return_val_if_fail (!cmd->ended, FALSE);
  if (gx == 0 || gy == 0 || gz == 0)
    return TRUE;
  if (gx > info->max_workgroup_count[0] || gy > info->max_workgroup_count[1]
      || gz > info->max_workgroup_count[2])
    {
      g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED,
                   "%s: a grid of %u x %u x %u workgroups exceeds the device's %u x %u x %u", label,
                   gx, gy, gz, info->max_workgroup_count[0], info->max_workgroup_count[1],
                   info->max_workgroup_count[2]);
      return FALSE;
    }
  for (guint i = 0; i < p->n_bindings; i++)
    {
      const AtBinding *b = &bindings[i];
      if (!check_binding (cmd, p, label, i, b, error))
        return FALSE;
      /* Texel reads are shader reads: the same hazards as storage reads. */
      if (hazard (cmd, at_buffer_get_vk (b->buffer), b->offset, b->range, b->write))
        need_barrier = TRUE;
    }
  if ((set = allocate_set (cmd, p, error)) == VK_NULL_HANDLE)
    return FALSE;
  for (guint i = 0; i < p->n_bindings; i++)
    {
      bi[i] = (VkDescriptorBufferInfo) { at_buffer_get_vk (bindings[i].buffer), bindings[i].offset,
                                         MAX (bindings[i].range, 4) };
      writes[i] = (VkWriteDescriptorSet) {
        .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
        .dstSet = set,
        .dstBinding = i,
        .descriptorCount = 1,
        .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
        .pBufferInfo = &bi[i],
      };
      if (bindings[i].format != VK_FORMAT_UNDEFINED)
        {
          if ((views[i] = texel_view (cmd, &bindings[i], error)) == VK_NULL_HANDLE)
            return FALSE;
          writes[i].descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER;
          writes[i].pBufferInfo = NULL;
          writes[i].pTexelBufferView = &views[i];
        }
      g_ptr_array_add (cmd->keep, at_buffer_ref (bindings[i].buffer));
    }
  at_vk.vkUpdateDescriptorSets (at_device_get_vk (cmd->device), p->n_bindings, writes, 0, NULL);

  if (need_barrier)
    full_barrier (cmd, WORK_STAGES, WORK_WRITES, WORK_STAGES, WORK_ACCESS);
  for (guint i = 0; i < p->n_bindings; i++)
    note_access (cmd, bindings[i].buffer, bindings[i].offset, bindings[i].range, bindings[i].write);

  if (cmd->queries != VK_NULL_HANDLE && cmd->n_queries + 2 <= MAX_QUERIES)
    {
      at_vk.vkCmdWriteTimestamp (cmd->cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, cmd->queries, cmd->n_queries++);
      g_ptr_array_add (cmd->query_labels, (gpointer) label);
    }
  at_vk.vkCmdBindPipeline (cmd->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
  at_vk.vkCmdBindDescriptorSets (cmd->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0, NULL);
  if (p->push_size > 0)
    at_vk.vkCmdPushConstants (cmd->cb, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, p->push_size, push);
  at_vk.vkCmdDispatch (cmd->cb, gx, gy, gz);
  if (cmd->queries != VK_NULL_HANDLE && cmd->n_queries % 2 == 1)
    at_vk.vkCmdWriteTimestamp (cmd->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, cmd->queries, cmd->n_queries++);
  cmd->n_dispatches++;
  return TRUE;
}

void
at_command_copy (AtCommand *cmd, AtBuffer *src, gsize src_offset, AtBuffer *dst, gsize dst_offset,
                 gsize size)
{
  VkBufferCopy region = { src_offset, dst_offset, size };

  g_return_if_fail (!cmd->ended);
  if (hazard (cmd, at_buffer_get_vk (src), src_offset, size, FALSE)
      || hazard (cmd, at_buffer_get_vk (dst), dst_offset, size, TRUE))
    full_barrier (cmd, WORK_STAGES, WORK_WRITES, WORK_STAGES, WORK_ACCESS);
  note_access (cmd, src, src_offset, size, FALSE);
  note_access (cmd, dst, dst_offset, size, TRUE);
  g_ptr_array_add (cmd->keep, at_buffer_ref (src));
  g_ptr_array_add (cmd->keep, at_buffer_ref (dst));
  at_vk.vkCmdCopyBuffer (cmd->cb, at_buffer_get_vk (src), at_buffer_get_vk (dst), 1, &region);
}

void
at_command_fill (AtCommand *cmd, AtBuffer *dst, gsize offset, gsize size, guint32 value)
{
  g_return_if_fail (!cmd->ended);
  if (hazard (cmd, at_buffer_get_vk (dst), offset, size, TRUE))
    full_barrier (cmd, WORK_STAGES, WORK_WRITES, WORK_STAGES, WORK_ACCESS);
  note_access (cmd, dst, offset, size, TRUE);
  g_ptr_array_add (cmd->keep, at_buffer_ref (dst));
  at_vk.vkCmdFillBuffer (cmd->cb, at_buffer_get_vk (dst), offset, size, value);
}

guint
at_command_get_n_dispatches (AtCommand *cmd)
{
  return cmd->n_dispatches;
}

static void
collect_profile (AtCommand *cmd)
{
  g_autofree guint64 *ticks = NULL;
  double period = at_device_get_info (cmd->device)->timestamp_period;

  cmd->last_gpu_ms = 0;
  if (cmd->queries == VK_NULL_HANDLE || cmd->n_queries == 0)
    return;
  ticks = g_new0 (guint64, cmd->n_queries);
  if (at_vk.vkGetQueryPoolResults (at_device_get_vk (cmd->device), cmd->queries, 0, cmd->n_queries,
                                   cmd->n_queries * sizeof (guint64), ticks, sizeof (guint64),
                                   VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT)
      != VK_SUCCESS)
    return;
  for (guint q = 0; q + 1 < cmd->n_queries; q += 2)
    {
      const char *label = g_ptr_array_index (cmd->query_labels, q / 2);
      double ms = (double) (ticks[q + 1] - ticks[q]) * period / 1e6;
      ProfileEntry *e = NULL;

      for (guint i = 0; i < cmd->profile->len && e == NULL; i++)
        if (g_str_equal (g_array_index (cmd->profile, ProfileEntry, i).label, label))
          e = &g_array_index (cmd->profile, ProfileEntry, i);
      if (e == NULL)
        {
          ProfileEntry ne = { label, 0, 0 };
          g_array_append_val (cmd->profile, ne);
          e = &g_array_index (cmd->profile, ProfileEntry, cmd->profile->len - 1);
        }
      e->n++;
      e->ms += ms;
      cmd->last_gpu_ms += ms;
    }
}

gboolean
at_command_submit_and_wait (AtCommand *cmd, GError **error)
{
  VkDevice dev = at_device_get_vk (cmd->device);
  VkSubmitInfo si = {
    .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
    .commandBufferCount = 1,
    .pCommandBuffers = &cmd->cb,
  };
  VkResult r;

  if (!cmd->ended)
    {
      /* Make every write visible to the host once the fence has signalled. */
      full_barrier (cmd, WORK_STAGES, WORK_WRITES, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
      if (!at_vk_check (at_vk.vkEndCommandBuffer (cmd->cb), "recording commands", error))
        return FALSE;
      cmd->ended = TRUE;
    }
  if (!at_vk_check (at_vk.vkResetFences (dev, 1, &cmd->fence), "resetting a fence", error))
    return FALSE;
  at_device_lock_queue (cmd->device);
  r = at_vk.vkQueueSubmit (at_device_get_queue (cmd->device), 1, &si, cmd->fence);
  at_device_unlock_queue (cmd->device);
  if (!at_vk_check (r, "submitting GPU work", error))
    return FALSE;
  r = at_vk.vkWaitForFences (dev, 1, &cmd->fence, VK_TRUE, G_MAXUINT64);
  if (!at_vk_check (r, "waiting for GPU work", error))
    return FALSE;
  collect_profile (cmd);
  return TRUE;
}

double
at_command_get_last_gpu_ms (AtCommand *cmd)
{
  return cmd->last_gpu_ms;
}

static gint
by_time (gconstpointer a, gconstpointer b)
{
  double x = ((const ProfileEntry *) a)->ms, y = ((const ProfileEntry *) b)->ms;
  return (x < y) - (x > y);
}

void
at_command_print_profile (AtCommand *cmd, FILE *out)
{
  double total = 0;

  if (out == NULL)
    out = stderr;
  if (cmd->profile->len == 0)
    return;
  g_array_sort (cmd->profile, by_time);
  for (guint i = 0; i < cmd->profile->len; i++)
    total += g_array_index (cmd->profile, ProfileEntry, i).ms;
  fprintf (out, "GPU time by op (%s):\n", at_device_get_name (cmd->device));
  for (guint i = 0; i < cmd->profile->len; i++)
    {
      const ProfileEntry *e = &g_array_index (cmd->profile, ProfileEntry, i);
      fprintf (out, "  %-24s %6u calls %10.3f ms %5.1f%%\n", e->label, e->n, e->ms,
               total > 0 ? 100 * e->ms / total : 0);
    }
  fprintf (out, "  %-24s %6s       %10.3f ms\n", "total", "", total);
}
