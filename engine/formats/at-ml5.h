/* at-ml5.h: ml5.js / TensorFlow.js style-transfer folders (ml5's styleTransfer models, the
 * "fast style transfer" networks of Johnson et al. as exported by deeplearnjs).
 *
 * Layout: manifest.json maps each variable name to {"filename": "...", "shape": [...]}; each
 * file beside it is raw little-endian float32, exactly prod(shape) * 4 bytes. Shapes are kept
 * as TensorFlow stores them (conv kernels HWIO: [kh, kw, in, out]).
 *
 * Tensors come in natural name order (Variable, Variable_1, Variable_2, ..., Variable_10):
 * the exporter numbered the variables in layer order, while the manifest lists them sorted
 * as text. Each variable file is mapped (`entry->container` = the tensor's index,
 * `entry->offset` = 0).
 */
#pragma once

#include <glib.h>

#include "at-file-tensors.h"

G_BEGIN_DECLS

typedef struct _AtMl5 AtMl5;

AtMl5 *at_ml5_open (const char *dir, GError **error);
/* `manifest` is manifest.json's contents; the variable files are read from `dir`. */
AtMl5 *at_ml5_new_from_manifest_bytes (GBytes *manifest, const char *dir, GError **error);
void at_ml5_free (AtMl5 *ml5);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtMl5, at_ml5_free)

/* Owned by `ml5` (the set keeps the mappings alive). */
AtTensorSet *at_ml5_get_tensors (AtMl5 *ml5);

G_END_DECLS
