/* at-torch.c: PyTorch zip checkpoints (see at-torch.h).
 *
 * Layout (torch/serialization.py _save, caffe2/serialize/inline_container.cc): a zip whose
 * members all sit under one top folder, the "prefix" (the file's stem when torch wrote it,
 * anything when a user re-zipped it): prefix/data.pkl, prefix/data/<key> for each storage,
 * prefix/version, prefix/byteorder (since 1.12; "little" or "big"), prefix/.data/... Torch
 * stores every member uncompressed and pads local headers so storages start 64-byte aligned.
 *
 * Zero copy: libzip tells us neither where a member's data begins nor where its local header
 * is, so for stored members we read the central directory ourselves only to learn each local
 * header's offset, then the local header for the data offset, and check both against what
 * libzip reports (same name, same size, data inside the bytes). libzip indexes entries in
 * central-directory order, which is what lets us pair the two. Compressed members (hand-made
 * zips) are read through libzip (zip_fopen_index) when a tensor is read.
 *
 * Traps:
 * - data.pkl's uncompressed size comes from the zip and may lie (a "zip bomb" claiming 4 GB):
 *   it is checked against AT_FILE_MAX_HEADER and, when deflated, against deflate's best
 *   ratio (1032:1), before anything is allocated.
 * - Tensors sharing one storage (tied weights, slices) name the same key twice: one record.
 * - The pickle may share one container many times; the walk counts every node it visits and
 *   stops at a budget proportional to the pickle's size, and at AT_FILE_MAX_NESTING levels.
 */
#include "at-torch.h"

#include <string.h>
#include <zip.h>

#include "at-error.h"
#include "at-pickle.h"

#define DEFLATE_MAX_RATIO 1032

typedef struct
{
  guint index;          /* zip member */
  AtFileDtype dtype;
  guint64 size;         /* uncompressed bytes */
  const guint8 *data;   /* in the bytes when the member is stored, else NULL */
  guint64 file_offset;  /* of `data` in the file */
} Storage;

typedef struct
{
  zip_t *zip;
  GBytes *bytes; /* the zip source reads from these */
  char *file_name;
} ZipReader;

struct _AtTorchFile
{
  GBytes *bytes;
  AtTensorSet *set;
  JsonObject *metadata;
};

typedef struct
{
  const char *file_name;
  const guint8 *data;
  gsize size;
  zip_t *zip;
  char *prefix;
  GHashTable *storages;    /* key -> Storage* */
  gboolean cd_parsed;
  guint64 n_cd;
  guint64 *local_offsets;  /* central-directory order */
  AtTensorSet *set;
  JsonObject *metadata;
  guint64 visits_left;
} Ctx;

static void
zip_reader_free (gpointer p)
{
  ZipReader *r = p;

  zip_discard (r->zip);
  g_bytes_unref (r->bytes);
  g_free (r->file_name);
  g_free (r);
}

static gboolean
zip_reader_read (gpointer user_data, const AtTensorEntry *entry, guint64 offset, void *dst, gsize size,
                 GError **error)
{
  ZipReader *r = user_data;
  zip_file_t *f = zip_fopen_index (r->zip, entry->container, 0);
  guint64 skip;
  guint8 scratch[65536];
  gboolean ok = TRUE;

  if (f == NULL || !at_checked_add (entry->offset, offset, &skip))
    {
      at_file_error (error, r->file_name, "cannot open the storage of tensor \"%s\": %s", entry->name,
                     zip_strerror (r->zip));
      if (f != NULL)
        zip_fclose (f);
      return FALSE;
    }
  /* Compressed data does not seek: read and drop up to the wanted offset. */
  while (ok && skip > 0)
    {
      zip_int64_t n = zip_fread (f, scratch, MIN (skip, sizeof scratch));

      ok = n > 0;
      skip -= ok ? (guint64) n : 0;
    }
  if (ok)
    ok = zip_fread (f, dst, size) == (zip_int64_t) size;
  if (!ok)
    at_file_error (error, r->file_name, "cannot read the storage of tensor \"%s\": %s", entry->name,
                   zip_file_strerror (f));
  zip_fclose (f);
  return ok;
}

static guint32
rd32 (const guint8 *p)
{
  return (guint32) p[0] | ((guint32) p[1] << 8) | ((guint32) p[2] << 16) | ((guint32) p[3] << 24);
}

static guint16
rd16 (const guint8 *p)
{
  return (guint16) (p[0] | (p[1] << 8));
}

/* The central directory's offset and entry count, from the end record (and its zip64 twin). */
static gboolean
find_central_directory (Ctx *c, guint64 *cd_offset, guint64 *n_entries, GError **error)
{
  gsize lowest = c->size > 22 + 65535 ? c->size - 22 - 65535 : 0;
  const guint8 *eocd = NULL;
  gsize pos;

  for (pos = c->size >= 22 ? c->size - 22 + 1 : 0; pos-- > lowest;)
    if (rd32 (c->data + pos) == 0x06054b50)
      {
        eocd = c->data + pos;
        break;
      }
  if (eocd == NULL)
    {
      at_file_error (error, c->file_name, "zip end of central directory not found");
      return FALSE;
    }
  *n_entries = rd16 (eocd + 10);
  *cd_offset = rd32 (eocd + 16);
  if (*n_entries == 0xffff || *cd_offset == 0xffffffff)
    {
      AtByteReader r;
      guint32 sig, disk;
      guint64 z64;

      if (pos < 20 || rd32 (c->data + pos - 20) != 0x07064b50)
        {
          at_file_error (error, c->file_name, "zip64 end of central directory locator missing");
          return FALSE;
        }
      z64 = (guint64) rd32 (c->data + pos - 12) | ((guint64) rd32 (c->data + pos - 8) << 32);
      if (z64 > c->size)
        {
          at_file_error (error, c->file_name, "zip64 end record offset %" G_GUINT64_FORMAT " is outside the file", z64);
          return FALSE;
        }
      at_byte_reader_init (&r, c->data + z64, c->size - z64);
      if (!at_byte_reader_u32 (&r, &sig) || sig != 0x06064b50 || !at_byte_reader_skip (&r, 12)
          || !at_byte_reader_u32 (&r, &disk) || !at_byte_reader_skip (&r, 12)
          || !at_byte_reader_u64 (&r, n_entries) || !at_byte_reader_skip (&r, 8)
          || !at_byte_reader_u64 (&r, cd_offset))
        {
          at_file_error (error, c->file_name, "zip64 end of central directory record is bad");
          return FALSE;
        }
    }
  if (*cd_offset > c->size || *n_entries > (c->size - *cd_offset) / 46)
    {
      at_file_error (error, c->file_name, "zip central directory (%" G_GUINT64_FORMAT " entries at %" G_GUINT64_FORMAT
                     ") does not fit in the file", *n_entries, *cd_offset);
      return FALSE;
    }
  return TRUE;
}

/* Fills c->local_offsets with each central-directory entry's local header offset. */
static gboolean
parse_central_directory (Ctx *c, GError **error)
{
  guint64 cd_offset, n;
  AtByteReader r;

  if (c->cd_parsed)
    return c->local_offsets != NULL;
  c->cd_parsed = TRUE;
  if (!find_central_directory (c, &cd_offset, &n, error))
    return FALSE;
  c->local_offsets = g_try_new0 (guint64, MAX (n, 1));
  if (c->local_offsets == NULL)
    {
      at_file_error (error, c->file_name, "no memory for %" G_GUINT64_FORMAT " zip entries", n);
      return FALSE;
    }
  c->n_cd = n;
  at_byte_reader_init (&r, c->data + cd_offset, c->size - cd_offset);
  for (guint64 i = 0; i < n; i++)
    {
      const guint8 *h, *extra;
      guint16 name_len, extra_len, comment_len;
      guint32 csize, usize, lho;

      if (!at_byte_reader_bytes (&r, 46, &h) || rd32 (h) != 0x02014b50)
        goto bad;
      csize = rd32 (h + 20);
      usize = rd32 (h + 24);
      name_len = rd16 (h + 28);
      extra_len = rd16 (h + 30);
      comment_len = rd16 (h + 32);
      lho = rd32 (h + 42);
      c->local_offsets[i] = lho;
      if (!at_byte_reader_skip (&r, name_len) || !at_byte_reader_bytes (&r, extra_len, &extra)
          || !at_byte_reader_skip (&r, comment_len))
        goto bad;
      if (lho == 0xffffffff)
        {
          /* zip64 extended information (id 1): the 8-byte fields whose 32-bit twins are
           * saturated, in the order usize, csize, offset. */
          AtByteReader x;
          gboolean found = FALSE;

          at_byte_reader_init (&x, extra, extra_len);
          while (!found && x.size - x.pos >= 4)
            {
              guint16 id, len;
              const guint8 *body;
              guint skip;

              at_byte_reader_u16 (&x, &id);
              at_byte_reader_u16 (&x, &len);
              if (!at_byte_reader_bytes (&x, len, &body))
                break;
              if (id != 1)
                continue;
              skip = (usize == 0xffffffff ? 8 : 0) + (csize == 0xffffffff ? 8 : 0);
              if (len < skip + 8)
                break;
              c->local_offsets[i] = (guint64) rd32 (body + skip) | ((guint64) rd32 (body + skip + 4) << 32);
              found = TRUE;
            }
          if (!found)
            goto bad;
        }
    }
  return TRUE;

bad:
  g_clear_pointer (&c->local_offsets, g_free);
  at_file_error (error, c->file_name, "zip central directory is malformed");
  return FALSE;
}

/* The data of stored member `index`, located from its local header and checked against
 * libzip's view of it. */
static gboolean
locate_stored (Ctx *c, guint index, const char *name, guint64 size, Storage *s, GError **error)
{
  const guint8 *h;
  guint64 lho, start, end;
  gsize name_len = strlen (name);

  if (!parse_central_directory (c, error))
    return FALSE;
  if (index >= c->n_cd)
    {
      at_file_error (error, c->file_name, "zip member \"%s\" is not in the central directory", name);
      return FALSE;
    }
  lho = c->local_offsets[index];
  if (lho > c->size || c->size - lho < 30 || rd32 (c->data + lho) != 0x04034b50)
    {
      at_file_error (error, c->file_name, "zip member \"%s\" has no local header at offset %" G_GUINT64_FORMAT,
                     name, lho);
      return FALSE;
    }
  h = c->data + lho;
  start = lho + 30 + rd16 (h + 26) + rd16 (h + 28);
  if (rd16 (h + 26) != name_len || c->size - lho - 30 < name_len || memcmp (h + 30, name, name_len) != 0)
    {
      at_file_error (error, c->file_name, "zip member \"%s\": local header names another member", name);
      return FALSE;
    }
  if (!at_checked_add (start, size, &end) || end > c->size)
    {
      at_file_error (error, c->file_name, "zip member \"%s\" (%" G_GUINT64_FORMAT " bytes at %" G_GUINT64_FORMAT
                     ") runs past the end of the file", name, size, start);
      return FALSE;
    }
  s->data = c->data + start;
  s->file_offset = start;
  return TRUE;
}

static gboolean
stat_member (Ctx *c, zip_int64_t index, const char *name, zip_stat_t *st, GError **error)
{
  if (zip_stat_index (c->zip, (zip_uint64_t) index, 0, st) != 0
      || (st->valid & (ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD)) !=
           (ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD))
    {
      at_file_error (error, c->file_name, "cannot read zip member \"%s\": %s", name, zip_strerror (c->zip));
      return FALSE;
    }
  if ((st->valid & ZIP_STAT_ENCRYPTION_METHOD) && st->encryption_method != ZIP_EM_NONE)
    {
      at_file_error_code (error, AT_ERROR_UNSUPPORTED, c->file_name, "zip member \"%s\" is encrypted", name);
      return FALSE;
    }
  if (st->comp_method != ZIP_CM_STORE && st->comp_method != ZIP_CM_DEFLATE)
    {
      at_file_error_code (error, AT_ERROR_UNSUPPORTED, c->file_name,
                          "zip member \"%s\" uses compression method %u (only stored and deflated are read)",
                          name, (guint) st->comp_method);
      return FALSE;
    }
  if ((st->comp_method == ZIP_CM_STORE && st->size != st->comp_size)
      || (st->comp_method == ZIP_CM_DEFLATE && st->size / DEFLATE_MAX_RATIO > st->comp_size))
    {
      at_file_error (error, c->file_name, "zip member \"%s\" claims %" G_GUINT64_FORMAT " bytes from %" G_GUINT64_FORMAT
                     " compressed bytes", name, (guint64) st->size, (guint64) st->comp_size);
      return FALSE;
    }
  return TRUE;
}

/* A whole member into memory, at most `limit` bytes. */
static guint8 *
read_member (Ctx *c, zip_int64_t index, const char *name, guint64 limit, gsize *out_size, GError **error)
{
  zip_stat_t st;
  zip_file_t *f;
  g_autofree guint8 *buf = NULL;
  zip_int64_t got;

  if (!stat_member (c, index, name, &st, error))
    return NULL;
  if (st.size > limit)
    {
      at_file_error (error, c->file_name, "zip member \"%s\" is %" G_GUINT64_FORMAT " bytes (at most %"
                     G_GUINT64_FORMAT ")", name, (guint64) st.size, limit);
      return NULL;
    }
  buf = g_try_malloc (MAX (st.size, 1));
  if (buf == NULL)
    {
      at_file_error (error, c->file_name, "no memory for the %" G_GUINT64_FORMAT " bytes of \"%s\"",
                     (guint64) st.size, name);
      return NULL;
    }
  f = zip_fopen_index (c->zip, (zip_uint64_t) index, 0);
  if (f == NULL)
    {
      at_file_error (error, c->file_name, "cannot open zip member \"%s\": %s", name, zip_strerror (c->zip));
      return NULL;
    }
  got = st.size > 0 ? zip_fread (f, buf, st.size) : 0;
  if (got != (zip_int64_t) st.size)
    {
      at_file_error (error, c->file_name, "cannot read zip member \"%s\": %s", name,
                     got < 0 ? zip_file_strerror (f) : "it is shorter than its header says");
      zip_fclose (f);
      return NULL;
    }
  zip_fclose (f);
  *out_size = st.size;
  return g_steal_pointer (&buf);
}

/* The pickle's persistent_load: prefix/data/<key>, once per key. */
static gpointer
storage_cb (gpointer user_data, const char *key, AtFileDtype dtype, guint64 numel, GError **error)
{
  Ctx *c = user_data;
  Storage *s = g_hash_table_lookup (c->storages, key);
  g_autofree char *name = NULL, *shown = NULL;
  zip_int64_t index;
  zip_stat_t st;
  guint64 need;

  if (s != NULL)
    {
      if (s->dtype != dtype)
        {
          at_file_error (error, c->file_name, "storage \"%s\" is used as both %s and %s", key,
                         at_file_dtype_name (s->dtype), at_file_dtype_name (dtype));
          return NULL;
        }
      return s;
    }
  shown = g_strescape (key, NULL);
  if (strlen (key) > 256 || strchr (key, '/') != NULL)
    {
      at_file_error (error, c->file_name, "storage key \"%.64s\" is not a member name", shown);
      return NULL;
    }
  name = g_strdup_printf ("%s/data/%s", c->prefix, key);
  index = zip_name_locate (c->zip, name, ZIP_FL_ENC_RAW);
  if (index < 0)
    {
      at_file_error (error, c->file_name, "storage \"%s\" is missing from the archive (no member %s)", shown, name);
      return NULL;
    }
  if (!stat_member (c, index, name, &st, error))
    return NULL;
  if (!at_checked_mul (numel, at_file_dtype_info (dtype)->type_size, &need) || need > st.size)
    {
      at_file_error (error, c->file_name, "storage \"%s\" holds %" G_GUINT64_FORMAT " bytes, less than its %"
                     G_GUINT64_FORMAT " %s elements", shown, (guint64) st.size, numel, at_file_dtype_name (dtype));
      return NULL;
    }
  s = g_new0 (Storage, 1);
  s->index = (guint) index;
  s->dtype = dtype;
  s->size = st.size;
  g_hash_table_insert (c->storages, g_strdup (key), s);
  if (st.comp_method == ZIP_CM_STORE && !locate_stored (c, (guint) index, name, st.size, s, error))
    return NULL;
  return s;
}

static gboolean
add_tensor (Ctx *c, const char *name, gsize name_len, const AtPyObject *t, GError **error)
{
  Storage *s = t->v.tensor->storage;
  guint elem = at_file_dtype_info (t->v.tensor->dtype)->type_size;
  AtTensorEntry *e;
  guint64 start = 0, end = 0;

  e = at_tensor_set_add (c->set, name, name_len, t->v.tensor->dtype, t->v.tensor->ndim, t->v.tensor->shape,
                         t->v.tensor->stride, error);
  if (e == NULL)
    return FALSE;
  if (!at_checked_mul ((guint64) t->v.tensor->storage_offset, elem, &start)
      || !at_checked_add (start, e->nbytes, &end) || end > s->size)
    {
      at_file_error (error, c->file_name, "tensor \"%s\" needs bytes %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT
                     " of its storage, which holds %" G_GUINT64_FORMAT, e->name, start, end, s->size);
      return FALSE;
    }
  e->container = s->index;
  if (s->data != NULL)
    {
      e->offset = s->file_offset + start;
      e->data = s->data + start;
    }
  else
    e->offset = start;
  return TRUE;
}

/* Every tensor under `o`, named by the path in `name`. */
static gboolean
walk (Ctx *c, const AtPyObject *o, GString *name, int depth, GError **error)
{
  gsize len = name->len;

  if (c->visits_left == 0)
    {
      at_file_error (error, c->file_name, "the pickled object shares containers too often to walk");
      return FALSE;
    }
  c->visits_left--;
  if (o->type == AT_PY_TENSOR)
    return add_tensor (c, name->len > 0 ? name->str : "tensor", name->len > 0 ? name->len : 6, o, error);
  if (o->type != AT_PY_DICT && o->type != AT_PY_LIST && o->type != AT_PY_TUPLE)
    return TRUE;
  if (depth >= AT_FILE_MAX_NESTING)
    {
      at_file_error (error, c->file_name, "the pickled object nests deeper than %d levels", AT_FILE_MAX_NESTING);
      return FALSE;
    }
  for (gsize i = 0; i < o->v.seq.len; i += o->type == AT_PY_DICT ? 2 : 1)
    {
      const AtPyObject *key = o->type == AT_PY_DICT ? o->v.seq.items[i] : NULL;
      const AtPyObject *value = o->type == AT_PY_DICT ? o->v.seq.items[i + 1] : o->v.seq.items[i];

      if (len > 0)
        g_string_append_c (name, '.');
      if (key == NULL)
        g_string_append_printf (name, "%" G_GSIZE_FORMAT, i);
      else if (key->type == AT_PY_INT)
        g_string_append_printf (name, "%" G_GINT64_FORMAT, key->v.i);
      else if ((key->type == AT_PY_STR || key->type == AT_PY_BYTES) && key->v.str.len <= AT_FILE_MAX_NAME)
        g_string_append_len (name, key->v.str.data, (gssize) key->v.str.len);
      else
        {
          g_string_truncate (name, len);
          continue; /* keys of other types cannot name a tensor */
        }
      if (name->len > AT_FILE_MAX_NAME)
        {
          at_file_error (error, c->file_name, "a tensor name under \"%.64s\" is longer than %d bytes", name->str,
                         AT_FILE_MAX_NAME);
          return FALSE;
        }
      if (!walk (c, value, name, depth + 1, error))
        return FALSE;
      g_string_truncate (name, len);
    }
  return TRUE;
}

/* Scalars and strings of a dict with str keys. */
static void
collect_metadata (Ctx *c, const AtPyObject *dict)
{
  for (gsize i = 0; i + 1 < dict->v.seq.len; i += 2)
    {
      const AtPyObject *k = dict->v.seq.items[i], *v = dict->v.seq.items[i + 1];

      if (k->type != AT_PY_STR)
        continue;
      switch (v->type)
        {
        case AT_PY_NONE:
          json_object_set_null_member (c->metadata, k->v.str.data);
          break;
        case AT_PY_BOOL:
          json_object_set_boolean_member (c->metadata, k->v.str.data, v->v.b);
          break;
        case AT_PY_INT:
          json_object_set_int_member (c->metadata, k->v.str.data, v->v.i);
          break;
        case AT_PY_FLOAT:
          json_object_set_double_member (c->metadata, k->v.str.data, v->v.f);
          break;
        case AT_PY_STR:
          json_object_set_string_member (c->metadata, k->v.str.data, v->v.str.data);
          break;
        default:
          break;
        }
    }
}

static gboolean
collect (Ctx *c, AtPyObject *root, gsize pickle_size, GError **error)
{
  g_autoptr (GString) name = g_string_new (NULL);
  AtPyObject *sd = at_py_dict_lookup (root, "state_dict");

  /* A tree walk visits each container slot once, and every slot took an opcode byte. */
  c->visits_left = MIN ((guint64) pickle_size * 2 + 4096, G_GUINT64_CONSTANT (1) << 24);
  if (root->type == AT_PY_DICT)
    collect_metadata (c, root);
  if (sd != NULL && sd->type == AT_PY_DICT)
    return walk (c, sd, name, 1, error);
  return walk (c, root, name, 0, error);
}

/* Legacy layouts, and what to do about them. */
static gboolean
refuse_legacy (const guint8 *data, gsize size, const char *file_name, GError **error)
{
  static const guint8 magic[] = { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 };
  static const char advice[] = "re-save it with a current PyTorch (torch.save(torch.load(f), f)) or convert it to "
                               "safetensors";

  if (size >= 262 && memcmp (data + 257, "ustar", 5) == 0)
    {
      at_file_error_code (error, AT_ERROR_UNSUPPORTED, file_name,
                          "this is a legacy tar-format PyTorch checkpoint, which Atelier does not read: %s", advice);
      return TRUE;
    }
  if (size >= sizeof magic && memcmp (data, magic, sizeof magic) == 0)
    {
      at_file_error_code (error, AT_ERROR_UNSUPPORTED, file_name,
                          "this is a legacy (pre-1.6, non-zip) PyTorch checkpoint, which Atelier does not read: %s",
                          advice);
      return TRUE;
    }
  return FALSE;
}

/* prefix/data.pkl: the one member whose name is <folder>/data.pkl. */
static zip_int64_t
find_data_pkl (Ctx *c, GError **error)
{
  zip_int64_t n = zip_get_num_entries (c->zip, 0);

  for (zip_int64_t i = 0; i < n; i++)
    {
      const char *name = zip_get_name (c->zip, (zip_uint64_t) i, ZIP_FL_ENC_RAW);
      const char *slash = name != NULL ? strchr (name, '/') : NULL;

      if (slash != NULL && slash != name && strcmp (slash, "/data.pkl") == 0)
        {
          c->prefix = g_strndup (name, (gsize) (slash - name));
          return i;
        }
    }
  at_file_error (error, c->file_name, "the zip archive has no <folder>/data.pkl: not a PyTorch checkpoint");
  return -1;
}

static gboolean
check_byteorder (Ctx *c, GError **error)
{
  g_autofree char *name = g_strdup_printf ("%s/byteorder", c->prefix);
  zip_int64_t index = zip_name_locate (c->zip, name, ZIP_FL_ENC_RAW);
  g_autofree guint8 *text = NULL;
  gsize len;

  if (index < 0)
    return TRUE; /* before PyTorch 1.12: always little-endian */
  text = read_member (c, index, name, 16, &len, error);
  if (text == NULL)
    return FALSE;
  if (len == 6 && memcmp (text, "little", 6) == 0)
    return TRUE;
  if (len == 3 && memcmp (text, "big", 3) == 0)
    at_file_error_code (error, AT_ERROR_UNSUPPORTED, c->file_name,
                        "the checkpoint was saved big-endian; re-save it on a little-endian machine");
  else
    at_file_error (error, c->file_name, "byteorder member is neither \"little\" nor \"big\"");
  return FALSE;
}

static zip_t *
open_zip (const guint8 *data, gsize size, const char *file_name, GError **error)
{
  zip_error_t zerr;
  zip_source_t *src;
  zip_t *zip;

  zip_error_init (&zerr);
  src = zip_source_buffer_create (data, size, 0, &zerr);
  if (src == NULL)
    {
      at_file_error (error, file_name, "cannot read as a zip archive: %s", zip_error_strerror (&zerr));
      zip_error_fini (&zerr);
      return NULL;
    }
  zip = zip_open_from_source (src, ZIP_RDONLY, &zerr);
  if (zip == NULL)
    {
      at_file_error (error, file_name, "not a valid zip archive: %s", zip_error_strerror (&zerr));
      zip_source_free (src);
    }
  zip_error_fini (&zerr);
  return zip;
}

static gboolean
parse (Ctx *c, GError **error)
{
  g_autofree guint8 *pkl = NULL;
  g_autoptr (AtPickle) pickle = NULL;
  g_autofree char *pkl_name = NULL;
  zip_int64_t index;
  gsize pkl_size = 0;

  index = find_data_pkl (c, error);
  if (index < 0 || !check_byteorder (c, error))
    return FALSE;
  pkl_name = g_strdup_printf ("%s/data.pkl", c->prefix);
  pkl = read_member (c, index, pkl_name, AT_FILE_MAX_HEADER, &pkl_size, error);
  if (pkl == NULL)
    return FALSE;
  pickle = at_pickle_load (pkl, pkl_size, c->file_name, storage_cb, c, error);
  if (pickle == NULL)
    return FALSE;
  return collect (c, at_pickle_get_root (pickle), pkl_size, error);
}

AtTorchFile *
at_torch_new_from_bytes (GBytes *bytes, const char *file_name, GError **error)
{
  g_autoptr (AtTorchFile) file = g_new0 (AtTorchFile, 1);
  Ctx c = { 0 };
  ZipReader *reader;
  gboolean ok;

  c.file_name = file_name;
  c.data = g_bytes_get_data (bytes, &c.size);
  file->bytes = g_bytes_ref (bytes);
  file->metadata = json_object_new ();
  if (c.data == NULL || c.size == 0)
    {
      at_file_error (error, file_name, "the file is empty");
      return NULL;
    }
  if (refuse_legacy (c.data, c.size, file_name, error))
    return NULL;
  if (c.size < 4 || memcmp (c.data, "PK", 2) != 0)
    {
      at_file_error (error, file_name, "not a PyTorch checkpoint (no zip signature)");
      return NULL;
    }
  c.zip = open_zip (c.data, c.size, file_name, error);
  if (c.zip == NULL)
    return NULL;
  c.storages = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  c.set = at_tensor_set_new (file_name);
  c.metadata = file->metadata;
  ok = parse (&c, error);
  g_hash_table_unref (c.storages);
  g_free (c.local_offsets);
  g_free (c.prefix);
  reader = g_new0 (ZipReader, 1);
  reader->zip = c.zip;
  reader->bytes = g_bytes_ref (bytes);
  reader->file_name = g_strdup (file_name);
  at_tensor_set_set_reader (c.set, zip_reader_read, reader, zip_reader_free);
  at_tensor_set_take_owner (c.set, g_bytes_ref (bytes), (GDestroyNotify) g_bytes_unref);
  file->set = c.set;
  if (!ok)
    return NULL;
  return g_steal_pointer (&file);
}

AtTorchFile *
at_torch_open (const char *path, GError **error)
{
  g_autoptr (GMappedFile) mapped = g_mapped_file_new (path, FALSE, error);
  g_autoptr (GBytes) bytes = NULL;
  g_autofree char *base = g_path_get_basename (path);

  if (mapped == NULL)
    return NULL;
  bytes = g_mapped_file_get_bytes (mapped);
  return at_torch_new_from_bytes (bytes, base, error);
}

void
at_torch_free (AtTorchFile *file)
{
  if (file == NULL)
    return;
  at_tensor_set_free (file->set);
  if (file->metadata != NULL)
    json_object_unref (file->metadata);
  g_bytes_unref (file->bytes);
  g_free (file);
}

AtTensorSet *
at_torch_get_tensors (AtTorchFile *file)
{
  return file->set;
}

JsonObject *
at_torch_get_metadata (AtTorchFile *file)
{
  return file->metadata;
}
