/* fuzz-safetensors.c: safetensors files from bytes; every tensor's first and last byte and
 * every metadata entry are read back, and small tensors converted to f32. */
#include <string.h>

#include "at-engine.h"

int LLVMFuzzerTestOneInput (const guint8 *data, gsize size);

int
LLVMFuzzerTestOneInput (const guint8 *data, gsize size)
{
  g_autoptr (GBytes) bytes = g_bytes_new_static (data, size);
  g_autoptr (AtSafetensors) st = at_safetensors_new_from_bytes (bytes, "fuzz.safetensors", NULL);
  AtTensorSet *set;
  GHashTableIter iter;
  gpointer key, value;
  gsize total = 0;

  if (st == NULL)
    return 0;
  set = at_safetensors_get_tensors (st);
  for (guint i = 0; i < at_tensor_set_get_n_tensors (set); i++)
    {
      const AtTensorEntry *e = at_tensor_set_get (set, i);
      guint8 b[2];

      if (e->nbytes == 0)
        continue;
      if (!at_tensor_set_read (set, e, 0, &b[0], 1, NULL)
          || !at_tensor_set_read (set, e, e->nbytes - 1, &b[1], 1, NULL))
        __builtin_trap ();
      total += b[0] + b[1];
      /* The dtype conversions too, on tensors small enough to stay fast. */
      if (e->numel <= 4096)
        {
          float f[4096];

          if (!at_tensor_set_read_f32 (set, e, f, NULL))
            __builtin_trap ();
          total += f[0] != f[0];
        }
    }
  g_hash_table_iter_init (&iter, at_safetensors_get_metadata (st));
  while (g_hash_table_iter_next (&iter, &key, &value))
    total += strlen (key) + strlen (value);
  (void) at_safetensors_get_header_size (st);
  return total == (gsize) -1;
}
