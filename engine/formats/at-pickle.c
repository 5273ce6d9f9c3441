/* at-pickle.c: the restricted pickle machine (see at-pickle.h).
 *
 * Layout of the machine, after CPython's pickle.py _Unpickler: a value stack, a stack of MARK
 * positions (a MARK starts a new frame: nothing below it may be popped except by the opcode
 * that closes the mark), and a memo of index -> object. The memo is a hash table, so a
 * LONG_BINPUT with a huge index costs one entry, not a huge array.
 *
 * Traps:
 * - GLOBAL / STACK_GLOBAL are checked against the allow-list when they are read, not when
 *   REDUCE calls them: a forbidden name never even becomes an object.
 * - An nn.Module state_dict is an OrderedDict with a `_metadata` attribute, which pickles as
 *   BUILD with a state dict; that is the one BUILD we accept (the state is ignored).
 * - Full training checkpoints (PyTorch Lightning's, as the original Stable Diffusion .ckpt files
 *   are) also pickle their callbacks' state: a ModelCheckpoint class as a dict key, numpy
 *   scalars (REDUCE numpy.core.multiarray.scalar over a numpy.dtype, bytes through
 *   _codecs.encode). Those few names are allowed as INERT data: REDUCE on them yields a
 *   placeholder without calling anything and BUILD on a placeholder is ignored, so the
 *   state_dict beside them loads. Any other name is still refused where it is read.
 * - Bytes are copied once out of the pickle (the caller may free it), so the total copied is
 *   at most the input size; containers only ever hold pointers.
 */
#include "at-pickle.h"

#include <string.h>

#include "at-error.h"

enum
{
  GLOBAL_ORDERED_DICT,
  GLOBAL_REBUILD_TENSOR_V2,
  GLOBAL_REBUILD_PARAMETER,
  GLOBAL_REBUILD_PARAMETER_WITH_STATE,
  GLOBAL_STORAGE,
  GLOBAL_INERT,
};

static const struct
{
  const char *module;
  const char *name;
  int kind;
  AtFileDtype dtype;
} allowed_globals[] = {
  { "collections", "OrderedDict", GLOBAL_ORDERED_DICT, 0 },
  { "torch._utils", "_rebuild_tensor_v2", GLOBAL_REBUILD_TENSOR_V2, 0 },
  { "torch._utils", "_rebuild_parameter", GLOBAL_REBUILD_PARAMETER, 0 },
  { "torch._utils", "_rebuild_parameter_with_state", GLOBAL_REBUILD_PARAMETER_WITH_STATE, 0 },
  { "torch", "FloatStorage", GLOBAL_STORAGE, AT_FILE_DTYPE_F32 },
  { "torch", "HalfStorage", GLOBAL_STORAGE, AT_FILE_DTYPE_F16 },
  { "torch", "BFloat16Storage", GLOBAL_STORAGE, AT_FILE_DTYPE_BF16 },
  { "torch", "DoubleStorage", GLOBAL_STORAGE, AT_FILE_DTYPE_F64 },
  { "torch", "LongStorage", GLOBAL_STORAGE, AT_FILE_DTYPE_I64 },
  { "torch", "IntStorage", GLOBAL_STORAGE, AT_FILE_DTYPE_I32 },
  { "torch", "ShortStorage", GLOBAL_STORAGE, AT_FILE_DTYPE_I16 },
  { "torch", "CharStorage", GLOBAL_STORAGE, AT_FILE_DTYPE_I8 },
  { "torch", "ByteStorage", GLOBAL_STORAGE, AT_FILE_DTYPE_U8 },
  { "torch", "BoolStorage", GLOBAL_STORAGE, AT_FILE_DTYPE_BOOL },
  { "pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint", GLOBAL_INERT, 0 },
  { "numpy.core.multiarray", "scalar", GLOBAL_INERT, 0 },
  { "numpy", "dtype", GLOBAL_INERT, 0 },
  { "_codecs", "encode", GLOBAL_INERT, 0 },
};

struct _AtPickle
{
  GPtrArray *objects; /* every AtPyObject built, freed together */
  AtPyObject *root;
};

typedef struct
{
  AtPickle *pickle;
  const char *file_name;
  AtByteReader r;
  GPtrArray *stack;  /* AtPyObject*, borrowed from pickle->objects */
  GArray *marks;     /* gsize: stack length at each open MARK */
  GHashTable *memo;  /* index -> AtPyObject* */
  gsize op_pos;
  guint8 op;
  AtPickleStorageFunc storage_cb;
  gpointer storage_data;
  GError **error;
} Vm;

static const char *
type_name (const AtPyObject *o)
{
  static const char *const names[] = { "None", "bool", "int", "float", "str", "bytes", "tuple",
                                       "list", "dict", "tensor", "storage", "global", "placeholder" };

  return names[o->type];
}

static const char *
op_name (guint8 op)
{
  switch (op)
    {
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x81: return "NEWOBJ";
    case 0x92: return "NEWOBJ_EX";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    case 'P': return "PERSID";
    default: return "unknown";
    }
}

static gboolean G_GNUC_PRINTF (2, 3)
vm_fail (Vm *vm, const char *format, ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  at_file_error (vm->error, vm->file_name, "%s (pickle opcode 0x%02x at offset %" G_GSIZE_FORMAT ")",
                 message, vm->op, vm->op_pos);
  return FALSE;
}

static void
object_free (gpointer p)
{
  AtPyObject *o = p;

  if (o->type == AT_PY_STR || o->type == AT_PY_BYTES)
    g_free ((char *) o->v.str.data);
  else if (o->type == AT_PY_TUPLE || o->type == AT_PY_LIST || o->type == AT_PY_DICT)
    g_free (o->v.seq.items);
  else if (o->type == AT_PY_TENSOR)
    g_free (o->v.tensor);
  g_free (o);
}

/* Every new object is pushed at once and push refuses past AT_PICKLE_MAX_OBJECTS, so at most
 * one more than the limit is ever allocated. */
static AtPyObject *
object_new (Vm *vm, AtPyType type)
{
  AtPyObject *o = g_new0 (AtPyObject, 1);

  o->type = type;
  g_ptr_array_add (vm->pickle->objects, o);
  return o;
}

static gsize
frame_base (Vm *vm)
{
  return vm->marks->len > 0 ? g_array_index (vm->marks, gsize, vm->marks->len - 1) : 0;
}

static gboolean
push (Vm *vm, AtPyObject *o)
{
  if (vm->pickle->objects->len > AT_PICKLE_MAX_OBJECTS)
    return vm_fail (vm, "pickle builds more than %u objects", AT_PICKLE_MAX_OBJECTS);
  if (vm->stack->len >= AT_PICKLE_MAX_STACK)
    return vm_fail (vm, "pickle stack deeper than %u", AT_PICKLE_MAX_STACK);
  g_ptr_array_add (vm->stack, o);
  return TRUE;
}

static AtPyObject *
pop (Vm *vm)
{
  if (vm->stack->len <= frame_base (vm))
    {
      vm_fail (vm, "pickle stack underflow");
      return NULL;
    }
  return g_ptr_array_steal_index (vm->stack, vm->stack->len - 1);
}

static AtPyObject *
top (Vm *vm)
{
  if (vm->stack->len <= frame_base (vm))
    {
      vm_fail (vm, "pickle stack underflow");
      return NULL;
    }
  return g_ptr_array_index (vm->stack, vm->stack->len - 1);
}

/* Closes the innermost MARK: its items are stack[*base ..]. */
static gboolean
pop_mark (Vm *vm, gsize *base)
{
  if (vm->marks->len == 0)
    return vm_fail (vm, "pickle MARK missing");
  *base = g_array_index (vm->marks, gsize, vm->marks->len - 1);
  g_array_set_size (vm->marks, vm->marks->len - 1);
  return TRUE;
}

static gboolean
seq_append (Vm *vm, AtPyObject *seq, AtPyObject *item)
{
  if (seq->v.seq.len == seq->v.seq.cap)
    {
      gsize cap = MAX (4, seq->v.seq.cap * 2);
      AtPyObject **items = g_try_renew (AtPyObject *, seq->v.seq.items, cap);

      if (items == NULL)
        return vm_fail (vm, "no memory for a container of %" G_GSIZE_FORMAT " items", cap);
      seq->v.seq.items = items;
      seq->v.seq.cap = cap;
    }
  seq->v.seq.items[seq->v.seq.len++] = item;
  return TRUE;
}

/* A tuple or list of the stack items from `base` up, which leave the stack. */
static gboolean
push_from_stack (Vm *vm, AtPyType type, gsize base)
{
  AtPyObject *o = object_new (vm, type);
  gsize n = vm->stack->len - base;

  if (n > 0)
    {
      o->v.seq.items = g_try_new (AtPyObject *, n);
      if (o->v.seq.items == NULL)
        return vm_fail (vm, "no memory for a container of %" G_GSIZE_FORMAT " items", n);
      memcpy (o->v.seq.items, vm->stack->pdata + base, n * sizeof (AtPyObject *));
      o->v.seq.len = o->v.seq.cap = n;
    }
  g_ptr_array_set_size (vm->stack, base);
  return push (vm, o);
}

static gboolean
push_int (Vm *vm, gint64 value)
{
  AtPyObject *o = object_new (vm, AT_PY_INT);

  o->v.i = value;
  return push (vm, o);
}

/* UTF-8 as Python writes it: NUL is a character like any other (GLib's validator refuses it,
 * and numpy scalars pickled at protocol 2 carry their bytes as a latin-1 str full of them). */
static gboolean
utf8_valid_with_nul (const char *s, gsize len)
{
  while (len > 0)
    {
      const char *nul = memchr (s, '\0', len);
      gsize run = nul != NULL ? (gsize) (nul - s) : len;

      if (!g_utf8_validate_len (s, run, NULL))
        return FALSE;
      if (nul == NULL)
        break;
      s += run + 1;
      len -= run + 1;
    }
  return TRUE;
}

static gboolean
push_string (Vm *vm, AtPyType type, const guint8 *data, gsize len)
{
  AtPyObject *o;
  char *copy;

  if (len > AT_FILE_MAX_STRING)
    return vm_fail (vm, "a string of %" G_GSIZE_FORMAT " bytes (at most %" G_GUINT64_FORMAT ")", len,
                    AT_FILE_MAX_STRING);
  if (type == AT_PY_STR && !utf8_valid_with_nul ((const char *) data, len))
    return vm_fail (vm, "a str that is not valid UTF-8");
  copy = g_try_malloc (len + 1);
  if (copy == NULL)
    return vm_fail (vm, "no memory for a string of %" G_GSIZE_FORMAT " bytes", len);
  memcpy (copy, data, len);
  copy[len] = '\0';
  o = object_new (vm, type);
  o->v.str.data = copy;
  o->v.str.len = len;
  return push (vm, o);
}

/* Argument readers: each checks the bytes that remain first. */
static gboolean
read_bytes (Vm *vm, guint64 n, const guint8 **out)
{
  if (n > vm->r.size - vm->r.pos || !at_byte_reader_bytes (&vm->r, (gsize) n, out))
    return vm_fail (vm, "pickle argument of %" G_GUINT64_FORMAT " bytes runs past the end", n);
  return TRUE;
}

static gboolean
read_uint (Vm *vm, guint n_bytes, guint64 *out)
{
  const guint8 *p;

  *out = 0;
  if (!read_bytes (vm, n_bytes, &p))
    return FALSE;
  for (guint i = 0; i < n_bytes; i++)
    *out |= (guint64) p[i] << (8 * i);
  return TRUE;
}

/* A text argument up to '\n' (protocol 0), NUL-terminated into a new string. */
static char *
read_line (Vm *vm, gsize max_len)
{
  const guint8 *start = vm->r.data + vm->r.pos;
  gsize left = vm->r.size - vm->r.pos;
  const guint8 *nl = left > 0 ? memchr (start, '\n', MIN (left, max_len + 1)) : NULL;

  if (nl == NULL)
    {
      vm_fail (vm, "pickle text argument has no end of line within %" G_GSIZE_FORMAT " bytes", max_len);
      return NULL;
    }
  vm->r.pos += (gsize) (nl - start) + 1;
  return g_strndup ((const char *) start, (gsize) (nl - start));
}

static gboolean
parse_int_text (Vm *vm, const char *text, gint64 *out)
{
  g_autofree char *s = g_strdup (text);
  gsize len = strlen (s);

  if (len > 0 && s[len - 1] == 'L')
    s[len - 1] = '\0';
  if (!g_ascii_string_to_signed (s, 10, G_MININT64, G_MAXINT64, out, NULL))
    return vm_fail (vm, "integer \"%.40s\" is malformed or wider than 64 bits", text);
  return TRUE;
}

static gboolean
memo_put (Vm *vm, guint64 index)
{
  AtPyObject *o = top (vm);

  if (o == NULL)
    return FALSE;
  if (index >= AT_PICKLE_MAX_MEMO)
    return vm_fail (vm, "memo index %" G_GUINT64_FORMAT " is beyond the limit of %u", index,
                    AT_PICKLE_MAX_MEMO);
  g_hash_table_insert (vm->memo, GSIZE_TO_POINTER ((gsize) index), o);
  return TRUE;
}

static gboolean
memo_get (Vm *vm, guint64 index)
{
  AtPyObject *o = NULL;

  if (index < AT_PICKLE_MAX_MEMO)
    o = g_hash_table_lookup (vm->memo, GSIZE_TO_POINTER ((gsize) index));
  if (o == NULL)
    return vm_fail (vm, "memo entry %" G_GUINT64_FORMAT " is not set", index);
  return push (vm, o);
}

static gboolean
push_global (Vm *vm, const char *module, const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (allowed_globals); i++)
    if (strcmp (module, allowed_globals[i].module) == 0 && strcmp (name, allowed_globals[i].name) == 0)
      {
        AtPyObject *o = object_new (vm, AT_PY_GLOBAL);

        o->v.global = (int) i;
        return push (vm, o);
      }
  {
    g_autofree char *m = g_strescape (module, NULL), *n = g_strescape (name, NULL);

    return vm_fail (vm, "forbidden global \"%.200s.%.200s\": Atelier only loads tensors and plain containers", m,
                    n);
  }
}

static gboolean
get_int (const AtPyObject *o, gint64 *out)
{
  if (o->type == AT_PY_INT)
    *out = o->v.i;
  else if (o->type == AT_PY_BOOL)
    *out = o->v.b;
  else
    return FALSE;
  return TRUE;
}

/* A size or stride tuple of non-negative ints. */
static gboolean
get_dims (Vm *vm, const AtPyObject *o, const char *what, gint64 *dims, int *ndim)
{
  if (o->type != AT_PY_TUPLE)
    return vm_fail (vm, "tensor %s is a %s, not a tuple", what, type_name (o));
  if (o->v.seq.len > AT_FILE_MAX_DIMS)
    return vm_fail (vm, "tensor %s has %" G_GSIZE_FORMAT " dimensions (at most %d)", what, o->v.seq.len,
                    AT_FILE_MAX_DIMS);
  for (gsize i = 0; i < o->v.seq.len; i++)
    if (!get_int (o->v.seq.items[i], &dims[i]) || dims[i] < 0)
      return vm_fail (vm, "tensor %s entry %" G_GSIZE_FORMAT " is not a non-negative int", what, i);
  *ndim = (int) o->v.seq.len;
  return TRUE;
}

/* torch._utils._rebuild_tensor_v2 (storage, storage_offset, size, stride, requires_grad,
 * backward_hooks[, metadata]). */
static gboolean
rebuild_tensor (Vm *vm, AtPyObject *args)
{
  AtPyObject **a = args->v.seq.items;
  AtPyObject *t;
  AtPyTensor *tensor;
  int n_stride;

  if (args->v.seq.len != 6 && args->v.seq.len != 7)
    return vm_fail (vm, "_rebuild_tensor_v2 takes 6 or 7 arguments, not %" G_GSIZE_FORMAT, args->v.seq.len);
  if (a[0]->type != AT_PY_STORAGE)
    return vm_fail (vm, "_rebuild_tensor_v2 on a %s, not a storage", type_name (a[0]));
  t = object_new (vm, AT_PY_TENSOR);
  tensor = t->v.tensor = g_new0 (AtPyTensor, 1);
  tensor->storage = a[0]->v.storage.storage;
  tensor->dtype = a[0]->v.storage.dtype;
  if (!get_int (a[1], &tensor->storage_offset) || tensor->storage_offset < 0)
    return vm_fail (vm, "tensor storage offset is not a non-negative int");
  if (!get_dims (vm, a[2], "size", tensor->shape, &tensor->ndim)
      || !get_dims (vm, a[3], "stride", tensor->stride, &n_stride))
    return FALSE;
  if (n_stride != tensor->ndim)
    return vm_fail (vm, "tensor has %d sizes but %d strides", tensor->ndim, n_stride);
  if (a[5]->type != AT_PY_DICT || a[5]->v.seq.len != 0)
    return vm_fail (vm, "tensor backward hooks are a %s, not an empty dict", type_name (a[5]));
  return push (vm, t);
}

static gboolean
reduce (Vm *vm)
{
  AtPyObject *args = pop (vm), *callable = args != NULL ? pop (vm) : NULL;
  int kind;

  if (callable == NULL)
    return FALSE;
  if (callable->type != AT_PY_GLOBAL)
    return vm_fail (vm, "REDUCE calls a %s", type_name (callable));
  if (args->type != AT_PY_TUPLE)
    return vm_fail (vm, "REDUCE arguments are a %s, not a tuple", type_name (args));
  kind = allowed_globals[callable->v.global].kind;
  switch (kind)
    {
    case GLOBAL_ORDERED_DICT:
      {
        AtPyObject *d;

        if (args->v.seq.len != 0)
          return vm_fail (vm, "collections.OrderedDict called with arguments");
        d = object_new (vm, AT_PY_DICT);
        d->v.seq.ordered = TRUE;
        return push (vm, d);
      }
    case GLOBAL_REBUILD_TENSOR_V2:
      return rebuild_tensor (vm, args);
    case GLOBAL_REBUILD_PARAMETER:
    case GLOBAL_REBUILD_PARAMETER_WITH_STATE:
      if (args->v.seq.len != (kind == GLOBAL_REBUILD_PARAMETER ? 3u : 4u)
          || args->v.seq.items[0]->type != AT_PY_TENSOR)
        return vm_fail (vm, "torch._utils.%s needs a tensor and %d more arguments",
                        allowed_globals[callable->v.global].name, kind == GLOBAL_REBUILD_PARAMETER ? 2 : 3);
      return push (vm, args->v.seq.items[0]);
    case GLOBAL_INERT:
      /* Nothing is called: the arguments are dropped and a placeholder stands in. */
      return push (vm, object_new (vm, AT_PY_INERT));
    default:
      return vm_fail (vm, "REDUCE calls %s.%s, which is not a function Atelier runs",
                      allowed_globals[callable->v.global].module, allowed_globals[callable->v.global].name);
    }
}

static gboolean
build (Vm *vm)
{
  AtPyObject *state = pop (vm), *o = state != NULL ? top (vm) : NULL;

  if (o == NULL)
    return FALSE;
  if (o->type == AT_PY_INERT)
    return TRUE; /* a numpy dtype's state: ignored with the placeholder */
  if (o->type != AT_PY_DICT || !o->v.seq.ordered)
    return vm_fail (vm, "BUILD on a %s is refused", type_name (o));
  if (state->type != AT_PY_DICT && state->type != AT_PY_NONE)
    return vm_fail (vm, "BUILD of an OrderedDict with a %s state is refused", type_name (state));
  return TRUE;
}

static gboolean
str_is (const AtPyObject *o, const char *s)
{
  return o->type == AT_PY_STR && strcmp (o->v.str.data, s) == 0;
}

/* BINPERSID: ('storage', torch.XxxStorage, key, location, numel). */
static gboolean
persistent_load (Vm *vm)
{
  AtPyObject *pid = pop (vm), **a, *s;
  gint64 numel;
  gpointer storage;

  if (pid == NULL)
    return FALSE;
  if (pid->type != AT_PY_TUPLE || pid->v.seq.len != 5 || !str_is (pid->v.seq.items[0], "storage"))
    return vm_fail (vm, "persistent id is not a ('storage', type, key, location, numel) tuple");
  a = pid->v.seq.items;
  if (a[1]->type != AT_PY_GLOBAL || allowed_globals[a[1]->v.global].kind != GLOBAL_STORAGE)
    return vm_fail (vm, "persistent id names a %s, not a storage type", type_name (a[1]));
  if (a[2]->type != AT_PY_STR || a[3]->type != AT_PY_STR)
    return vm_fail (vm, "persistent id key or location is not a str");
  if (!get_int (a[4], &numel) || numel < 0)
    return vm_fail (vm, "storage \"%.200s\" has no valid element count", a[2]->v.str.data);
  storage = vm->storage_cb (vm->storage_data, a[2]->v.str.data, allowed_globals[a[1]->v.global].dtype,
                            (guint64) numel, vm->error);
  if (storage == NULL)
    return FALSE;
  s = object_new (vm, AT_PY_STORAGE);
  s->v.storage.storage = storage;
  s->v.storage.dtype = allowed_globals[a[1]->v.global].dtype;
  return push (vm, s);
}

static gboolean
op_setitems (Vm *vm, gsize base)
{
  AtPyObject *d;
  gsize n = vm->stack->len - base;

  if (n % 2 != 0)
    return vm_fail (vm, "SETITEMS with an odd number of items");
  if (base <= frame_base (vm))
    return vm_fail (vm, "pickle stack underflow");
  d = g_ptr_array_index (vm->stack, base - 1);
  if (d->type != AT_PY_DICT)
    return vm_fail (vm, "SETITEM on a %s", type_name (d));
  for (gsize i = base; i < vm->stack->len; i++)
    if (!seq_append (vm, d, g_ptr_array_index (vm->stack, i)))
      return FALSE;
  g_ptr_array_set_size (vm->stack, base);
  return TRUE;
}

static gboolean
op_appends (Vm *vm, gsize base)
{
  AtPyObject *l;

  if (base <= frame_base (vm))
    return vm_fail (vm, "pickle stack underflow");
  l = g_ptr_array_index (vm->stack, base - 1);
  if (l->type != AT_PY_LIST)
    return vm_fail (vm, "APPEND to a %s", type_name (l));
  for (gsize i = base; i < vm->stack->len; i++)
    if (!seq_append (vm, l, g_ptr_array_index (vm->stack, i)))
      return FALSE;
  g_ptr_array_set_size (vm->stack, base);
  return TRUE;
}

/* Protocol 0 strings: a quoted repr without escapes, or a raw-unicode-escape line without
 * escapes or non-ASCII bytes; anything fancier is refused rather than half-decoded. */
static gboolean
op_text_string (Vm *vm, gboolean unicode)
{
  g_autofree char *line = read_line (vm, AT_FILE_MAX_STRING);
  gsize len;

  if (line == NULL)
    return FALSE;
  len = strlen (line);
  if (strchr (line, '\\') != NULL)
    return vm_fail (vm, "escaped protocol-0 strings are not supported");
  if (unicode)
    {
      for (gsize i = 0; i < len; i++)
        if ((guint8) line[i] >= 0x80)
          return vm_fail (vm, "non-ASCII protocol-0 strings are not supported");
      return push_string (vm, AT_PY_STR, (const guint8 *) line, len);
    }
  if (len < 2 || (line[0] != '\'' && line[0] != '"') || line[len - 1] != line[0])
    return vm_fail (vm, "protocol-0 string is not quoted");
  return push_string (vm, AT_PY_BYTES, (const guint8 *) line + 1, len - 2);
}

static gboolean
op_global_text (Vm *vm)
{
  g_autofree char *module = read_line (vm, AT_FILE_MAX_NAME);
  g_autofree char *name = module != NULL ? read_line (vm, AT_FILE_MAX_NAME) : NULL;

  if (name == NULL)
    return FALSE;
  return push_global (vm, module, name);
}

static gboolean
op_refused (Vm *vm)
{
  if (vm->op == 'i')
    {
      g_autofree char *module = read_line (vm, AT_FILE_MAX_NAME);
      g_autofree char *name = module != NULL ? read_line (vm, AT_FILE_MAX_NAME) : NULL;

      if (name != NULL)
        {
          g_autofree char *m = g_strescape (module, NULL), *n = g_strescape (name, NULL);

          return vm_fail (vm, "forbidden global \"%.200s.%.200s\" (INST): Atelier only loads tensors and plain "
                          "containers", m, n);
        }
      return FALSE;
    }
  return vm_fail (vm, "pickle opcode %s is refused: Atelier only loads tensors and plain containers",
                  op_name (vm->op));
}

static gboolean
op_int (Vm *vm, guint n_bytes, gboolean is_signed)
{
  guint64 v;

  if (!read_uint (vm, n_bytes, &v))
    return FALSE;
  return push_int (vm, is_signed ? (gint64) (gint32) (guint32) v : (gint64) v);
}

/* LONG1 / LONG4: little-endian two's complement of n bytes. */
static gboolean
op_long (Vm *vm, guint len_bytes)
{
  guint64 n, v;
  const guint8 *p;

  if (!read_uint (vm, len_bytes, &n))
    return FALSE;
  if (n > 8)
    return vm_fail (vm, "integer of %" G_GUINT64_FORMAT " bytes is wider than 64 bits", n);
  if (!read_bytes (vm, n, &p))
    return FALSE;
  v = 0;
  for (guint i = 0; i < n; i++)
    v |= (guint64) p[i] << (8 * i);
  if (n > 0 && n < 8 && (p[n - 1] & 0x80))
    v |= ~G_GUINT64_CONSTANT (0) << (8 * n);
  return push_int (vm, (gint64) v);
}

static gboolean
op_binstring (Vm *vm, guint len_bytes, AtPyType type)
{
  guint64 n;
  const guint8 *p;

  if (!read_uint (vm, len_bytes, &n) || !read_bytes (vm, n, &p))
    return FALSE;
  return push_string (vm, type, p, (gsize) n);
}

static gboolean
op_text_number (Vm *vm)
{
  g_autofree char *line = read_line (vm, 256);
  gint64 v;

  if (line == NULL)
    return FALSE;
  if (vm->op == 'F')
    {
      char *end;
      AtPyObject *o = object_new (vm, AT_PY_FLOAT);

      o->v.f = g_ascii_strtod (line, &end);
      if (end == line || *end != '\0')
        return vm_fail (vm, "float \"%.40s\" is malformed", line);
      return push (vm, o);
    }
  if (vm->op == 'I' && (strcmp (line, "00") == 0 || strcmp (line, "01") == 0))
    {
      AtPyObject *o = object_new (vm, AT_PY_BOOL);

      o->v.b = line[1] == '1';
      return push (vm, o);
    }
  if (!parse_int_text (vm, line, &v))
    return FALSE;
  if (vm->op == 'I' || vm->op == 'L')
    return push_int (vm, v);
  if (v < 0)
    return vm_fail (vm, "memo index %" G_GINT64_FORMAT " is negative", v);
  return vm->op == 'p' ? memo_put (vm, (guint64) v) : memo_get (vm, (guint64) v);
}

static gboolean
op_tuple_n (Vm *vm, gsize n)
{
  if (vm->stack->len < frame_base (vm) + n)
    return vm_fail (vm, "pickle stack underflow");
  return push_from_stack (vm, AT_PY_TUPLE, vm->stack->len - n);
}

/* One opcode; *stop set at STOP. */
static gboolean
step (Vm *vm, gboolean *stop)
{
  guint64 n;
  gsize base;
  AtPyObject *o, *k;

  switch (vm->op)
    {
    case 0x80: /* PROTO */
      if (!read_uint (vm, 1, &n))
        return FALSE;
      if (n > 5)
        return vm_fail (vm, "pickle protocol %" G_GUINT64_FORMAT " is newer than 5", n);
      return TRUE;
    case 0x95: /* FRAME: a length prefix; the frame must lie within the data */
      if (!read_uint (vm, 8, &n))
        return FALSE;
      if (n > vm->r.size - vm->r.pos)
        return vm_fail (vm, "pickle frame of %" G_GUINT64_FORMAT " bytes runs past the end", n);
      return TRUE;
    case '.': /* STOP */
      if ((o = pop (vm)) == NULL)
        return FALSE;
      vm->pickle->root = o;
      *stop = TRUE;
      return TRUE;
    case '(': /* MARK */
      if (vm->marks->len >= AT_PICKLE_MAX_STACK)
        return vm_fail (vm, "more than %u open MARKs", AT_PICKLE_MAX_STACK);
      base = vm->stack->len;
      g_array_append_val (vm->marks, base);
      return TRUE;
    case '0': /* POP: the top item, or an empty MARK frame */
      if (vm->stack->len > frame_base (vm))
        return pop (vm) != NULL;
      return pop_mark (vm, &base);
    case '1': /* POP_MARK */
      if (!pop_mark (vm, &base))
        return FALSE;
      g_ptr_array_set_size (vm->stack, base);
      return TRUE;
    case '2': /* DUP */
      return (o = top (vm)) != NULL && push (vm, o);
    case 'N':
      return push (vm, object_new (vm, AT_PY_NONE));
    case 0x88:
    case 0x89:
      o = object_new (vm, AT_PY_BOOL);
      o->v.b = vm->op == 0x88;
      return push (vm, o);
    case 'I': case 'L': case 'F': case 'p': case 'g':
      return op_text_number (vm);
    case 'J':
      return op_int (vm, 4, TRUE);
    case 'K':
      return op_int (vm, 1, FALSE);
    case 'M':
      return op_int (vm, 2, FALSE);
    case 0x8a:
      return op_long (vm, 1);
    case 0x8b:
      return op_long (vm, 4);
    case 'G': /* BINFLOAT: big-endian double */
      {
        const guint8 *p;
        guint64 bits = 0;

        if (!read_bytes (vm, 8, &p))
          return FALSE;
        for (int i = 0; i < 8; i++)
          bits = (bits << 8) | p[i];
        o = object_new (vm, AT_PY_FLOAT);
        memcpy (&o->v.f, &bits, 8);
        return push (vm, o);
      }
    case 'S':
      return op_text_string (vm, FALSE);
    case 'V':
      return op_text_string (vm, TRUE);
    case 'T':
      return op_binstring (vm, 4, AT_PY_BYTES);
    case 'U':
      return op_binstring (vm, 1, AT_PY_BYTES);
    case 'X':
      return op_binstring (vm, 4, AT_PY_STR);
    case 0x8c:
      return op_binstring (vm, 1, AT_PY_STR);
    case 0x8d:
      return op_binstring (vm, 8, AT_PY_STR);
    case 'B':
      return op_binstring (vm, 4, AT_PY_BYTES);
    case 'C':
      return op_binstring (vm, 1, AT_PY_BYTES);
    case 0x8e:
    case 0x96: /* BINBYTES8, BYTEARRAY8 */
      return op_binstring (vm, 8, AT_PY_BYTES);
    case ')':
      return push (vm, object_new (vm, AT_PY_TUPLE));
    case 't':
      return pop_mark (vm, &base) && push_from_stack (vm, AT_PY_TUPLE, base);
    case 0x85: case 0x86: case 0x87:
      return op_tuple_n (vm, (gsize) (vm->op - 0x84));
    case ']':
      return push (vm, object_new (vm, AT_PY_LIST));
    case 'l':
      return pop_mark (vm, &base) && push_from_stack (vm, AT_PY_LIST, base);
    case 'a':
      if (vm->stack->len < frame_base (vm) + 2)
        return vm_fail (vm, "pickle stack underflow");
      return op_appends (vm, vm->stack->len - 1);
    case 'e':
      return pop_mark (vm, &base) && op_appends (vm, base);
    case '}':
      return push (vm, object_new (vm, AT_PY_DICT));
    case 'd':
      if (!pop_mark (vm, &base) || !push_from_stack (vm, AT_PY_LIST, base))
        return FALSE;
      o = g_ptr_array_index (vm->stack, vm->stack->len - 1);
      if (o->v.seq.len % 2 != 0)
        return vm_fail (vm, "DICT with an odd number of items");
      o->type = AT_PY_DICT;
      return TRUE;
    case 's':
      if (vm->stack->len < frame_base (vm) + 2)
        return vm_fail (vm, "pickle stack underflow");
      return op_setitems (vm, vm->stack->len - 2);
    case 'u':
      return pop_mark (vm, &base) && op_setitems (vm, base);
    case 'q':
      return read_uint (vm, 1, &n) && memo_put (vm, n);
    case 'r':
      return read_uint (vm, 4, &n) && memo_put (vm, n);
    case 0x94: /* MEMOIZE */
      return memo_put (vm, g_hash_table_size (vm->memo));
    case 'h':
      return read_uint (vm, 1, &n) && memo_get (vm, n);
    case 'j':
      return read_uint (vm, 4, &n) && memo_get (vm, n);
    case 'c':
      return op_global_text (vm);
    case 0x93: /* STACK_GLOBAL */
      if ((o = pop (vm)) == NULL || (k = pop (vm)) == NULL)
        return FALSE;
      if (o->type != AT_PY_STR || k->type != AT_PY_STR)
        return vm_fail (vm, "STACK_GLOBAL names are not str");
      return push_global (vm, k->v.str.data, o->v.str.data);
    case 'R':
      return reduce (vm);
    case 'b':
      return build (vm);
    case 'Q':
      return persistent_load (vm);
    case 'i': case 'o': case 0x81: case 0x92: case 0x82: case 0x83: case 0x84:
    case 0x8f: case 0x90: case 0x91: case 0x97: case 0x98: case 'P':
      return op_refused (vm);
    default:
      return vm_fail (vm, "unknown pickle opcode 0x%02x", vm->op);
    }
}

AtPickle *
at_pickle_load (const guint8 *data, gsize size, const char *file_name, AtPickleStorageFunc storage_cb,
                gpointer user_data, GError **error)
{
  g_autoptr (AtPickle) pickle = g_new0 (AtPickle, 1);
  g_autoptr (GPtrArray) stack = g_ptr_array_new ();
  g_autoptr (GArray) marks = g_array_new (FALSE, FALSE, sizeof (gsize));
  g_autoptr (GHashTable) memo = g_hash_table_new (g_direct_hash, g_direct_equal);
  Vm vm = { 0 };
  gboolean stop = FALSE;

  pickle->objects = g_ptr_array_new_with_free_func (object_free);
  vm.pickle = pickle;
  vm.file_name = file_name;
  vm.stack = stack;
  vm.marks = marks;
  vm.memo = memo;
  vm.storage_cb = storage_cb;
  vm.storage_data = user_data;
  vm.error = error;
  at_byte_reader_init (&vm.r, data, data != NULL ? size : 0);
  while (!stop)
    {
      vm.op_pos = vm.r.pos;
      if (!at_byte_reader_u8 (&vm.r, &vm.op))
        {
          at_file_error (error, file_name, "pickle ends without STOP (after %" G_GSIZE_FORMAT " bytes)", vm.r.size);
          return NULL;
        }
      if (!step (&vm, &stop))
        return NULL;
    }
  return g_steal_pointer (&pickle);
}

AtPyObject *
at_pickle_get_root (AtPickle *pickle)
{
  return pickle->root;
}

void
at_pickle_free (AtPickle *pickle)
{
  if (pickle == NULL)
    return;
  if (pickle->objects != NULL)
    g_ptr_array_unref (pickle->objects);
  g_free (pickle);
}

AtPyObject *
at_py_dict_lookup (AtPyObject *dict, const char *key)
{
  AtPyObject *found = NULL;

  if (dict->type != AT_PY_DICT)
    return NULL;
  for (gsize i = 0; i + 1 < dict->v.seq.len; i += 2)
    if (str_is (dict->v.seq.items[i], key))
      found = dict->v.seq.items[i + 1];
  return found;
}
