/* fuzz-ml5.c: ml5 manifests from bytes. The variable files are looked for in a folder that
 * does not exist, so a manifest that parses must fail cleanly at its first file; an empty one
 * opens with no tensors. */
#include "at-engine.h"

int LLVMFuzzerTestOneInput (const guint8 *data, gsize size);

int
LLVMFuzzerTestOneInput (const guint8 *data, gsize size)
{
  g_autoptr (GBytes) bytes = g_bytes_new_static (data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtMl5) ml5
      = at_ml5_new_from_manifest_bytes (bytes, "/nonexistent/atelier-fuzz-ml5", &error);

  if (ml5 != NULL)
    {
      AtTensorSet *set = at_ml5_get_tensors (ml5);

      /* Only a manifest without variables can open without files. */
      if (at_tensor_set_get_n_tensors (set) != 0)
        __builtin_trap ();
      return 0;
    }
  if (error == NULL || error->message == NULL)
    __builtin_trap ();
  return 0;
}
