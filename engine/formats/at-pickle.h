/* at-pickle.h: a restricted Python pickle reader for PyTorch checkpoints.
 *
 * It runs the pickle virtual machine (the opcodes of protocols 0 to 5 that a pickle of dicts,
 * lists, tuples, numbers, strings and tensors uses) but can only ever build plain values:
 * None, bools, 64-bit ints, floats, str, bytes, tuples, lists, dicts (plain and
 * collections.OrderedDict) and tensors rebuilt by torch._utils._rebuild_tensor_v2 /
 * _rebuild_parameter over a storage named by a persistent id. Any other global is refused at
 * the opcode that names it, before anything could call it; INST / OBJ / NEWOBJ and the
 * extension-registry opcodes are refused outright. Nothing is ever imported or executed.
 *
 * Reference for the opcodes: CPython's Lib/pickletools.py (descriptions only).
 *
 * Every object lives in the AtPickle that at_pickle_load returns and is freed with it; objects
 * are shared, never copied, so a pickle that references one memo entry many times costs one
 * pointer per reference. The number of objects, stack slots and memo entries is bounded by the
 * input size (each opcode byte creates at most one), and by the limits below.
 */
#pragma once

#include "at-file-tensors.h"

G_BEGIN_DECLS

#define AT_PICKLE_MAX_STACK (1u << 20) /* stack slots and MARKs */
#define AT_PICKLE_MAX_MEMO (1u << 22)  /* memo entries */
#define AT_PICKLE_MAX_OBJECTS (1u << 23) /* objects built (a 2,000-tensor state dict: ~50,000) */

typedef enum
{
  AT_PY_NONE,
  AT_PY_BOOL,
  AT_PY_INT,
  AT_PY_FLOAT,
  AT_PY_STR,     /* UTF-8 as the pickle holds it (validated) */
  AT_PY_BYTES,   /* bytes, bytearray, and Python 2 str */
  AT_PY_TUPLE,
  AT_PY_LIST,
  AT_PY_DICT,    /* plain dict or OrderedDict; keys in insertion order, duplicates kept */
  AT_PY_TENSOR,
  AT_PY_STORAGE, /* a persistent-id storage, before a tensor wraps it */
  AT_PY_GLOBAL,  /* an allowed class or function, before REDUCE calls it */
  AT_PY_INERT,   /* what REDUCE "returns" for an inert data global: a placeholder, nothing ran */
} AtPyType;

typedef struct _AtPyObject AtPyObject;

/* What torch._utils._rebuild_tensor_v2 was given. */
typedef struct
{
  gpointer storage;      /* what the storage callback returned */
  AtFileDtype dtype;
  gint64 storage_offset; /* elements */
  int ndim;
  gint64 shape[AT_FILE_MAX_DIMS];
  gint64 stride[AT_FILE_MAX_DIMS];
} AtPyTensor;

/* Kept small (40 bytes): a pickle may hold millions of objects. */
struct _AtPyObject
{
  AtPyType type;
  union
  {
    gboolean b;
    gint64 i;
    double f;
    struct
    {
      const char *data; /* NUL-terminated after `len` bytes (may hold NULs for bytes) */
      gsize len;
    } str;
    struct
    {
      AtPyObject **items; /* tuples and lists; for dicts key, value, key, value... */
      gsize len;          /* items (dicts: 2 * entries) */
      gsize cap;
      gboolean ordered;   /* dict built by collections.OrderedDict (may take BUILD) */
    } seq;
    AtPyTensor *tensor;
    struct
    {
      gpointer storage;
      AtFileDtype dtype;
    } storage;
    int global; /* internal: which allowed global */
  } v;
};

/* Resolves a persistent id ('storage', torch.XxxStorage, key, location, numel) to the caller's
 * storage record (non-NULL), or returns NULL and sets `error`. Called once per reference: the
 * same key may come back for tensors that share a storage. */
typedef gpointer (*AtPickleStorageFunc) (gpointer user_data, const char *key, AtFileDtype dtype,
                                         guint64 numel, GError **error);

typedef struct _AtPickle AtPickle;

/* Runs the pickle in `data` (not kept) up to its STOP. `file_name` prefixes messages. Errors
 * are AT_ERROR_BAD_FILE naming the opcode and its offset: a forbidden global reads
 * `forbidden global "posix.system": Atelier only loads tensors and plain containers`. */
AtPickle *at_pickle_load (const guint8 *data, gsize size, const char *file_name,
                          AtPickleStorageFunc storage_cb, gpointer user_data, GError **error);
/* The value the pickle returned; belongs to `pickle`. */
AtPyObject *at_pickle_get_root (AtPickle *pickle);
void at_pickle_free (AtPickle *pickle);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtPickle, at_pickle_free)

/* For dicts: the value of the last entry whose key is the str `key`, or NULL. */
AtPyObject *at_py_dict_lookup (AtPyObject *dict, const char *key);

G_END_DECLS
