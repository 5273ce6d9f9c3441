/* fuzz-torch.c: bytes into at_torch_new_from_bytes (zip + restricted pickle), then every
 * tensor's first and last byte and the f32 conversion of small tensors, and every metadata
 * value. */
#include "at-engine.h"

int LLVMFuzzerTestOneInput (const guint8 *data, gsize size);

int
LLVMFuzzerTestOneInput (const guint8 *data, gsize size)
{
  g_autoptr (GBytes) bytes = g_bytes_new_static (data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtTorchFile) file = at_torch_new_from_bytes (bytes, "fuzz.pt", &error);
  AtTensorSet *set;
  JsonObject *meta;
  g_autoptr (GList) members = NULL;

  if (file == NULL)
    {
      g_assert_nonnull (error);
      return 0;
    }
  set = at_torch_get_tensors (file);
  for (guint i = 0; i < at_tensor_set_get_n_tensors (set); i++)
    {
      const AtTensorEntry *e = at_tensor_set_get (set, i);
      guint8 b;

      if (e->nbytes == 0)
        continue;
      if (!at_tensor_set_read (set, e, 0, &b, 1, NULL) || !at_tensor_set_read (set, e, e->nbytes - 1, &b, 1, NULL))
        continue;
      if (e->numel <= 4096)
        {
          g_autofree float *f = g_new (float, e->numel);

          at_tensor_set_read_f32 (set, e, f, NULL);
        }
    }
  meta = at_torch_get_metadata (file);
  members = json_object_get_members (meta);
  for (GList *l = members; l != NULL; l = l->next)
    {
      JsonNode *n = json_object_get_member (meta, l->data);

      if (JSON_NODE_HOLDS_VALUE (n))
        (void) json_node_get_value_type (n);
    }
  return 0;
}
