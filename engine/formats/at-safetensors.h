/* at-safetensors.h: safetensors files (Hugging Face's flat tensor container).
 *
 * Layout: a little-endian u64 N, then N bytes of UTF-8 JSON (an object, possibly padded with
 * trailing spaces), then the data buffer. Each JSON member but "__metadata__" is a tensor:
 * {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, offsets relative to the data
 * buffer; "__metadata__" is an object of string -> string. The tensors must tile the data
 * buffer exactly: no gap, no overlap, no trailing byte.
 *
 * Tensors are views into the file's mapping: `entry->data` points at the bytes,
 * `entry->offset` is the absolute file offset, `entry->container` is 0.
 *
 * Also here: the hardened JSON loader that the folder formats (sharded indexes, diffusers
 * folders, ml5 manifests) share with the safetensors header.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "at-file-tensors.h"

G_BEGIN_DECLS

typedef struct _AtSafetensors AtSafetensors;

AtSafetensors *at_safetensors_open (const char *path, GError **error);
/* `file_name` is what messages call the file. Takes a reference on `bytes`. */
AtSafetensors *at_safetensors_new_from_bytes (GBytes *bytes, const char *file_name, GError **error);
void at_safetensors_free (AtSafetensors *st);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtSafetensors, at_safetensors_free)

/* Owned by `st` (the set keeps the mapping alive); in data-buffer order. */
AtTensorSet *at_safetensors_get_tensors (AtSafetensors *st);
/* Hands the set to the caller (it holds its own reference on the mapping); afterwards
 * at_safetensors_get_tensors returns NULL. */
AtTensorSet *at_safetensors_steal_tensors (AtSafetensors *st);
/* "__metadata__" as string -> string, owned by `st`; empty (never NULL) when absent. */
GHashTable *at_safetensors_get_metadata (AtSafetensors *st);
/* N, the length of the JSON header; the data buffer starts at byte 8 + N. */
guint64 at_safetensors_get_header_size (AtSafetensors *st);

/* Parses `len` bytes of untrusted JSON: refuses invalid UTF-8 (and NUL bytes), nesting deeper
 * than AT_FILE_MAX_NESTING (json-glib recurses without a limit), json-glib's extensions
 * (comments, single-quoted strings, hex numbers) and a member name repeated within one object
 * (json-glib silently keeps the last). Returns the root node. */
JsonNode *at_json_parse_untrusted (const char *text, gsize len, const char *file_name,
                                   GError **error);
/* Maps `path` and parses it as above; refuses files over `max_size` bytes. */
JsonNode *at_json_load_file (const char *path, guint64 max_size, GError **error);

/* TRUE for a bare file name (no '/', '\\', "." or ".."; 1 to 255 bytes): what a manifest or
 * index may name beside itself. */
gboolean at_file_name_is_plain (const char *name);

/* Reads a JSON integer in [0, max]: FALSE for floats, booleans, strings, negative values. */
gboolean at_json_get_uint (JsonNode *node, gint64 max, gint64 *out);
/* A short description of a JSON value for messages: "-1", "float 2.5", "a string", "an array". */
char *at_json_describe (JsonNode *node);

G_END_DECLS
