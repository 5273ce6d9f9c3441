/* at-torch.h: PyTorch checkpoints (.pt / .pth / .ckpt / .bin written by torch.save).
 *
 * Reads the zip layout torch.save has written since PyTorch 1.6: `<prefix>/data.pkl` (the
 * pickled object, read by the restricted unpickler of at-pickle.h, which never runs code) and
 * one `<prefix>/data/<key>` member per storage, a raw little-endian array. Tensors are views
 * of those storages and keep their strides and storage offsets. Members stored uncompressed
 * (as torch writes them) are mapped without a copy; compressed members are read through
 * libzip on demand.
 *
 * The legacy layouts (a tar archive, and the bare pickle stream of torch.save with
 * _use_new_zipfile_serialization=False) are recognised and refused with AT_ERROR_UNSUPPORTED.
 *
 * Which tensors: if the pickled root is a dict with a "state_dict" dict (Lightning / Stable
 * Diffusion checkpoints), the tensors under it, named as they are there; otherwise every tensor
 * reachable through dicts, lists and tuples, named by their keys / indices joined with ".".
 * Scalars and strings at the root (and beside "state_dict") become the metadata.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "at-file-tensors.h"

G_BEGIN_DECLS

typedef struct _AtTorchFile AtTorchFile;

/* Maps `path`. A file that cannot be opened gives GLib's G_FILE_ERROR; a bad or hostile file
 * AT_ERROR_BAD_FILE; a legacy or big-endian one AT_ERROR_UNSUPPORTED. */
AtTorchFile *at_torch_open (const char *path, GError **error);
/* Same over `bytes` (a reference is taken); `file_name` is what messages call the file. */
AtTorchFile *at_torch_new_from_bytes (GBytes *bytes, const char *file_name, GError **error);
void at_torch_free (AtTorchFile *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtTorchFile, at_torch_free)

/* Owned by `file` (the set keeps the bytes and the zip reader alive while `file` lives).
 * Entries: `container` is the storage's zip member index; `offset` the absolute byte offset of
 * element 0 in the file when the member is stored (then `data` points into the bytes), or the
 * offset inside the member's uncompressed data when it is compressed (`data` NULL). */
AtTensorSet *at_torch_get_tensors (AtTorchFile *file);
/* Owned by `file`; never NULL (empty when there is nothing). */
JsonObject *at_torch_get_metadata (AtTorchFile *file);

G_END_DECLS
