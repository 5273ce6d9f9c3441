/* test-torch.c: PyTorch checkpoints against real torch.save (tools/ref/torch_files.py writes
 * the files and what torch reports for every tensor), the legacy layouts (refused), hostile
 * pickles that would run a command under pickle.load (refused, and the command never runs),
 * and hand-made broken pickles and archives. */
#include <string.h>
#include <zip.h>

#include "at-engine.h"
#include "at-test-util.h"

static const char *ref_dir;

/* Runs the reference script once; NULL after g_test_skip(). */
static const char *
ref_files (void)
{
  if (ref_dir == NULL && at_test_run_ref_tool ("torch_files.py", (const char *[]) { at_test_tmpdir (), NULL }))
    ref_dir = at_test_tmpdir ();
  return ref_dir;
}

static char *
ref_path (const char *name)
{
  return g_build_filename (ref_dir, name, NULL);
}

static void
assert_error (GError *error, int code, const char *fragment)
{
  g_assert_nonnull (error);
  if (!g_error_matches (error, AT_ERROR, code) || strstr (error->message, fragment) == NULL)
    g_error ("expected error %d with \"%s\", got %d: %s", code, fragment, error->code, error->message);
}

/* Opens `bytes` and asserts it fails with `code` and `fragment`. */
static void
expect_bytes_error (GBytes *bytes, int code, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtTorchFile) file = at_torch_new_from_bytes (bytes, "bad.pt", &error);

  g_assert_null (file);
  assert_error (error, code, fragment);
}

static void
expect_file_error (const char *name, int code, const char *fragment)
{
  g_autofree char *path = ref_path (name);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtTorchFile) file = at_torch_open (path, &error);

  g_assert_null (file);
  assert_error (error, code, fragment);
}

static void
compare_with_reference (const char *name)
{
  g_autofree char *path = ref_path (name), *json_path = g_strconcat (path, ".json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GMappedFile) mapped = g_mapped_file_new (path, FALSE, &error);
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (AtTorchFile) file = NULL;
  JsonObject *ref, *meta;
  JsonArray *tensors;
  AtTensorSet *set;
  gboolean compressed = g_str_has_prefix (name, "compressed");
  g_autoptr (GList) members = NULL;

  g_assert_no_error (error);
  bytes = g_mapped_file_get_bytes (mapped);
  file = at_torch_new_from_bytes (bytes, name, &error);
  g_assert_no_error (error);
  g_assert_true (json_parser_load_from_file (parser, json_path, &error));
  g_assert_no_error (error);
  ref = json_node_get_object (json_parser_get_root (parser));
  tensors = json_object_get_array_member (ref, "tensors");
  set = at_torch_get_tensors (file);
  g_assert_cmpuint (at_tensor_set_get_n_tensors (set), ==, json_array_get_length (tensors));
  for (guint i = 0; i < json_array_get_length (tensors); i++)
    {
      JsonObject *t = json_array_get_object_element (tensors, i);
      const char *tname = json_object_get_string_member (t, "name");
      const AtTensorEntry *e = at_tensor_set_get (set, i);
      JsonArray *shape = json_object_get_array_member (t, "shape");
      JsonArray *stride = json_object_get_array_member (t, "stride");
      JsonArray *values = json_object_get_array_member (t, "values");
      g_autofree float *got = g_new0 (float, MAX (e->numel, 1));

      g_test_message ("%s: %s", name, tname);
      g_assert_cmpstr (e->name, ==, tname);
      g_assert_cmpstr (at_file_dtype_name (e->dtype), ==, json_object_get_string_member (t, "dtype"));
      g_assert_cmpint (e->ndim, ==, json_array_get_length (shape));
      for (int d = 0; d < e->ndim; d++)
        {
          g_assert_cmpint (e->shape[d], ==, json_array_get_int_element (shape, d));
          g_assert_cmpint (e->stride[d], ==, json_array_get_int_element (stride, d));
        }
      g_assert_cmpint (e->numel, ==, json_array_get_length (values));
      if (compressed)
        g_assert_null (e->data);
      else if (e->numel > 0)
        {
          /* Zero copy: element 0 sits at `offset` in the file itself. */
          g_assert_true (e->data == (const guint8 *) g_bytes_get_data (bytes, NULL) + e->offset);
          g_assert_cmpuint (e->offset % at_file_dtype_info (e->dtype)->type_size, ==, 0);
        }
      g_assert_true (at_tensor_set_read_f32 (set, e, got, &error));
      g_assert_no_error (error);
      for (gint64 k = 0; k < e->numel; k++)
        {
          float want = (float) json_array_get_double_element (values, (guint) k);

          if (memcmp (&want, &got[k], sizeof (float)) != 0)
            g_error ("%s %s[%" G_GINT64_FORMAT "]: got %.9g, torch says %.9g", name, tname, k, got[k], want);
        }
    }
  meta = json_object_get_object_member (ref, "metadata");
  members = json_object_get_members (meta);
  g_assert_cmpuint (json_object_get_size (at_torch_get_metadata (file)), ==, json_object_get_size (meta));
  for (GList *l = members; l != NULL; l = l->next)
    {
      JsonNode *want = json_object_get_member (meta, l->data);
      JsonNode *got = json_object_get_member (at_torch_get_metadata (file), l->data);

      g_assert_nonnull (got);
      g_assert_true (json_node_equal (want, got));
    }
}

static void
test_reference (void)
{
  static const char *const files[] = { "state.pt", "state_p4.pt", "ckpt.ckpt", "lightning.ckpt", "nested.pt",
                                       "module.pt", "tensor.pt", "compressed.pt", "zip64.pt" };

  if (ref_files () == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    compare_with_reference (files[i]);
}

static void
test_open (void)
{
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (AtTorchFile) file = NULL;
  const AtTensorEntry *a, *b;

  if (ref_files () == NULL)
    return;
  path = ref_path ("ckpt.ckpt");
  file = at_torch_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (json_object_get_int_member (at_torch_get_metadata (file), "global_step"), ==, 123);
  g_assert_cmpint (json_object_get_int_member (at_torch_get_metadata (file), "epoch"), ==, 4);
  g_assert_nonnull (at_tensor_set_find (at_torch_get_tensors (file), "model.diffusion_model.w"));
  g_clear_pointer (&file, at_torch_free);
  g_free (path);

  /* Two views of one storage: the same member, the offsets one row apart plus one column. */
  path = ref_path ("state.pt");
  file = at_torch_open (path, &error);
  g_assert_no_error (error);
  a = at_tensor_set_find (at_torch_get_tensors (file), "shared_a");
  b = at_tensor_set_find (at_torch_get_tensors (file), "shared_b");
  g_assert_cmpuint (a->container, ==, b->container);
  g_assert_cmpuint (b->offset - a->offset, ==, 5 * 4);
  g_assert_cmpuint (json_object_get_size (at_torch_get_metadata (file)), ==, 0);
  g_clear_pointer (&file, at_torch_free);
  g_free (path);

  path = g_build_filename (at_test_tmpdir (), "missing.pt", NULL);
  g_assert_null (at_torch_open (path, &error));
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

static void
test_legacy (void)
{
  guint8 tar[1024] = { 0 };
  g_autoptr (GBytes) bytes = NULL;

  if (ref_files () != NULL)
    expect_file_error ("legacy.pt", AT_ERROR_UNSUPPORTED, "legacy (pre-1.6, non-zip) PyTorch checkpoint");
  memcpy (tar, "sys_info", 8);
  memcpy (tar + 257, "ustar\0" "00", 8);
  bytes = g_bytes_new (tar, sizeof tar);
  expect_bytes_error (bytes, AT_ERROR_UNSUPPORTED, "legacy tar-format");
}

static void
test_hostile_globals (void)
{
  static const struct
  {
    const char *file, *fragment;
  } cases[] = {
    { "system.pt", "forbidden global \"posix.system\": Atelier only loads tensors and plain containers" },
    { "system_p4.pt", "forbidden global \"posix.system\"" },
    { "eval.pt", "forbidden global \"__builtin__.eval\"" },
    { "eval_p4.pt", "forbidden global \"builtins.eval\"" },
    { "popen.pt", "forbidden global \"subprocess.Popen\"" },
    { "getattr.pt", "forbidden global \"__builtin__.getattr\"" },
    { "inst.pt", "forbidden global \"os.system\" (INST)" },
    { "ordereddict_arg.pt", "collections.OrderedDict called with arguments" },
    { "numpy.pt", "forbidden global \"numpy.core.multiarray._reconstruct\"" },
  };
  g_autofree char *pwned = NULL;

  if (ref_files () == NULL)
    return;
  pwned = ref_path ("pwned");
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    expect_file_error (cases[i].file, AT_ERROR_BAD_FILE, cases[i].fragment);
  g_assert_false (g_file_test (pwned, G_FILE_TEST_EXISTS));
}

/* Pickles straight into the machine. */
static gpointer
any_storage (gpointer user_data, const char *key, AtFileDtype dtype, guint64 numel, GError **error)
{
  return user_data;
}

static AtPickle *
load_pickle (const void *data, gsize size, GError **error)
{
  static int storage;

  return at_pickle_load (data, size, "t.pkl", any_storage, &storage, error);
}

static void
expect_pickle_error (const char *data, gsize size, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtPickle) p = load_pickle (data, size, &error);

  g_assert_null (p);
  assert_error (error, AT_ERROR_BAD_FILE, fragment);
}

#define PICKLE_ERROR(lit, fragment) expect_pickle_error (lit, sizeof (lit) - 1, fragment)

static void
test_pickle_broken (void)
{
  PICKLE_ERROR ("\x80\x02]r\xff\xff\xff\xff.", "memo index 4294967295 is beyond the limit");
  PICKLE_ERROR ("\x80\x02h\x05.", "memo entry 5 is not set");
  PICKLE_ERROR ("\x80\x02]j\x00\x00\x00\x01.", "memo entry 16777216 is not set");
  PICKLE_ERROR ("\x80\x02" "a.", "pickle stack underflow");
  PICKLE_ERROR ("\x80\x02N(.", "pickle stack underflow");
  PICKLE_ERROR ("\x80\x02N(a.", "pickle stack underflow");
  PICKLE_ERROR ("\x80\x02]K\x01" "e.", "pickle MARK missing");
  PICKLE_ERROR ("\x80\x02K\x01K\x02t.", "pickle MARK missing");
  PICKLE_ERROR ("\x80\x02K\x01", "pickle ends without STOP");
  PICKLE_ERROR ("\x80\x06N.", "pickle protocol 6 is newer than 5");
  PICKLE_ERROR ("\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00N.", "pickle frame of 255 bytes runs past the end");
  PICKLE_ERROR ("\x80\x02X\xff\xff\x00\x00" "abc.", "runs past the end");
  PICKLE_ERROR ("\x80\x02\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09.", "wider than 64 bits");
  PICKLE_ERROR ("\x80\x02\x8b\xff\xff\xff\x7f.", "wider than 64 bits");
  PICKLE_ERROR ("\x80\x02\xff.", "unknown pickle opcode 0xff");
  PICKLE_ERROR ("\x80\x02\x8f.", "pickle opcode EMPTY_SET is refused");
  PICKLE_ERROR ("\x80\x02" "ccollections\nOrderedDict\n)\x81.", "pickle opcode NEWOBJ is refused");
  PICKLE_ERROR ("\x80\x02(cos\nsystem\no.", "forbidden global \"os.system\"");
  PICKLE_ERROR ("\x80\x02K\x01)R.", "REDUCE calls a int");
  PICKLE_ERROR ("\x80\x02]N\x62.", "BUILD on a list is refused");
  PICKLE_ERROR ("\x80\x02" "ctorch\nFloatStorage\n)R.", "which is not a function Atelier runs");
  PICKLE_ERROR ("\x80\x02X\x02\x00\x00\x00\xc3\x28.", "not valid UTF-8");
  PICKLE_ERROR ("\x80\x02}K\x01s.", "pickle stack underflow");
  PICKLE_ERROR ("\x80\x02K\x01Q.", "persistent id is not");
  PICKLE_ERROR ("\x80\x02\x8c\x02os\x8c\x06system\x93.", "forbidden global \"os.system\"");
  PICKLE_ERROR ("\x80\x02\x8c\x02os\x93.", "pickle stack underflow");

  /* A memo index at the limit's edge is fine; a well-formed OrderedDict BUILD too. */
  {
    static const char ok[] = "\x80\x02]r\x00\x00\x01\x00" "ccollections\nOrderedDict\n)R}b.";
    g_autoptr (GError) error = NULL;
    g_autoptr (AtPickle) p = load_pickle (ok, sizeof ok - 1, &error);

    g_assert_no_error (error);
    g_assert_cmpint (at_pickle_get_root (p)->type, ==, AT_PY_DICT);
  }
}

/* Protocol-0 text opcodes build the same values as the binary ones. */
static void
test_pickle_values (void)
{
  static const char text[] = "(I42\nI01\nL-7L\nF0.5\nS'ab'\nVcd\nN\x8a\x02\x00\x80\x8a\x00tp0\ng0\n\x85.";
  g_autoptr (GError) error = NULL;
  g_autoptr (AtPickle) p = load_pickle (text, sizeof text - 1, &error);
  AtPyObject *root, *t;

  g_assert_no_error (error);
  root = at_pickle_get_root (p);
  g_assert_cmpint (root->type, ==, AT_PY_TUPLE);
  g_assert_cmpuint (root->v.seq.len, ==, 1);
  t = root->v.seq.items[0];
  g_assert_cmpuint (t->v.seq.len, ==, 9);
  g_assert_cmpint (t->v.seq.items[0]->v.i, ==, 42);
  g_assert_cmpint (t->v.seq.items[1]->type, ==, AT_PY_BOOL);
  g_assert_cmpint (t->v.seq.items[2]->v.i, ==, -7);
  g_assert_cmpfloat (t->v.seq.items[3]->v.f, ==, 0.5);
  g_assert_cmpint (t->v.seq.items[4]->type, ==, AT_PY_BYTES);
  g_assert_cmpstr (t->v.seq.items[4]->v.str.data, ==, "ab");
  g_assert_cmpstr (t->v.seq.items[5]->v.str.data, ==, "cd");
  g_assert_cmpint (t->v.seq.items[6]->type, ==, AT_PY_NONE);
  g_assert_cmpint (t->v.seq.items[7]->v.i, ==, -32768);
  g_assert_cmpint (t->v.seq.items[8]->v.i, ==, 0);
}

static void
test_pickle_truncated (void)
{
  g_autofree char *path = NULL, *data = NULL;
  gsize size;
  g_autoptr (GError) error = NULL;

  if (ref_files () == NULL)
    return;
  path = ref_path ("tensor.data.pkl");
  g_assert_true (g_file_get_contents (path, &data, &size, &error));
  for (gsize n = 0; n < size; n++)
    {
      g_autofree char *exact = g_memdup2 (data, n);
      g_autoptr (AtPickle) p = load_pickle (exact, n, &error);

      g_assert_null (p);
      g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
      g_clear_error (&error);
    }
  {
    g_autoptr (AtPickle) p = load_pickle (data, size, &error);

    g_assert_no_error (error);
    g_assert_cmpint (at_pickle_get_root (p)->type, ==, AT_PY_TENSOR);
  }
}

static void
test_file_truncated (void)
{
  g_autofree char *path = NULL, *data = NULL;
  gsize size;
  g_autoptr (GError) error = NULL;

  if (ref_files () == NULL)
    return;
  path = ref_path ("tensor.pt");
  g_assert_true (g_file_get_contents (path, &data, &size, &error));
  for (gsize n = 0; n < size; n++)
    {
      g_autoptr (GBytes) bytes = g_bytes_new (data, n);
      g_autoptr (AtTorchFile) file = at_torch_new_from_bytes (bytes, "cut.pt", &error);

      g_assert_null (file);
      g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
      g_clear_error (&error);
    }
}

/* A pickle of {"w": tensor of `n` floats over storage key `key` holding `numel` floats}. */
static GByteArray *
tensor_pickle (char key, guint8 numel, guint8 n)
{
  static const char p0[] = "\x80\x02}q\x00X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00"
                          "\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00";
  static const char p1[] = "X\x03\x00\x00\x00" "cpuK", p2[] = "tQK\x00K";
  static const char p3[] = "\x85K\x01\x85\x89" "ccollections\nOrderedDict\n)RtRs.";
  GByteArray *b = g_byte_array_new ();

  g_byte_array_append (b, (const guint8 *) p0, sizeof p0 - 1);
  g_byte_array_append (b, (const guint8 *) &key, 1);
  g_byte_array_append (b, (const guint8 *) p1, sizeof p1 - 1);
  g_byte_array_append (b, &numel, 1);
  g_byte_array_append (b, (const guint8 *) p2, sizeof p2 - 1);
  g_byte_array_append (b, &n, 1);
  g_byte_array_append (b, (const guint8 *) p3, sizeof p3 - 1);
  return b;
}

typedef struct
{
  const char *name;
  const void *data;
  gsize size;
} Member;

/* A zip of `members` in memory, each stored or deflated. */
static GBytes *
make_zip (const Member *members, guint n, gboolean deflate)
{
  g_autofree char *path = g_build_filename (at_test_tmpdir (), "made.zip", NULL);
  int zerr = 0;
  zip_t *z = zip_open (path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
  g_autofree char *contents = NULL;
  gsize size;

  g_assert_nonnull (z);
  for (guint i = 0; i < n; i++)
    {
      zip_source_t *s = zip_source_buffer (z, members[i].data, members[i].size, 0);
      zip_int64_t idx = zip_file_add (z, members[i].name, s, ZIP_FL_ENC_UTF_8);

      g_assert_cmpint (idx, >=, 0);
      zip_set_file_compression (z, (zip_uint64_t) idx, deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
    }
  g_assert_cmpint (zip_close (z), ==, 0);
  g_assert_true (g_file_get_contents (path, &contents, &size, NULL));
  return g_bytes_new_take (g_steal_pointer (&contents), size);
}

static void
test_archive_broken (void)
{
  static const float four[4] = { 1, 2, 3, 4 };
  g_autoptr (GByteArray) ok = tensor_pickle ('0', 4, 4);
  g_autoptr (GByteArray) short_storage = tensor_pickle ('0', 2, 2);
  g_autoptr (GByteArray) span = tensor_pickle ('0', 2, 4);
  g_autoptr (GByteArray) slash = tensor_pickle ('/', 4, 4);
  const Member good[] = { { "m/data.pkl", ok->data, ok->len }, { "m/data/0", four, 16 } };

  /* The hand-made pickle works when nothing is wrong, stored and deflated. */
  for (int deflate = 0; deflate < 2; deflate++)
    {
      g_autoptr (GBytes) bytes = make_zip (good, 2, deflate);
      g_autoptr (GError) error = NULL;
      g_autoptr (AtTorchFile) file = at_torch_new_from_bytes (bytes, "ok.pt", &error);
      float got[4];

      g_assert_no_error (error);
      g_assert_true (at_tensor_set_read_f32 (at_torch_get_tensors (file),
                                             at_tensor_set_find (at_torch_get_tensors (file), "w"), got, &error));
      g_assert_cmpmem (got, sizeof got, four, sizeof four);
    }
  {
    const Member m[] = { { "m/version", "3\n", 2 } };
    g_autoptr (GBytes) bytes = make_zip (m, 1, FALSE);

    expect_bytes_error (bytes, AT_ERROR_BAD_FILE, "no <folder>/data.pkl");
  }
  {
    const Member m[] = { { "m/data.pkl", ok->data, ok->len } };
    g_autoptr (GBytes) bytes = make_zip (m, 1, FALSE);

    expect_bytes_error (bytes, AT_ERROR_BAD_FILE, "storage \"0\" is missing from the archive (no member m/data/0)");
  }
  {
    const Member m[] = { { "m/data.pkl", short_storage->data, short_storage->len }, { "m/data/0", four, 4 } };
    g_autoptr (GBytes) bytes = make_zip (m, 2, FALSE);

    expect_bytes_error (bytes, AT_ERROR_BAD_FILE, "storage \"0\" holds 4 bytes, less than its 2 F32 elements");
  }
  {
    const Member m[] = { { "m/data.pkl", span->data, span->len }, { "m/data/0", four, 8 } };
    g_autoptr (GBytes) bytes = make_zip (m, 2, FALSE);

    expect_bytes_error (bytes, AT_ERROR_BAD_FILE, "tensor \"w\" needs bytes 0 to 16 of its storage, which holds 8");
  }
  {
    const Member m[] = { { "m/data.pkl", slash->data, slash->len }, { "m/data/0", four, 16 } };
    g_autoptr (GBytes) bytes = make_zip (m, 2, FALSE);

    expect_bytes_error (bytes, AT_ERROR_BAD_FILE, "is not a member name");
  }
  {
    const Member m[] = { good[0], good[1], { "m/byteorder", "big", 3 } };
    const Member little[] = { good[0], good[1], { "m/byteorder", "little", 6 },
                              { "m/.data/serialization_id", "1", 1 } };
    const Member odd[] = { good[0], good[1], { "m/byteorder", "middle", 6 } };
    g_autoptr (GBytes) bytes = make_zip (m, 3, FALSE);
    g_autoptr (GBytes) odd_bytes = make_zip (odd, 3, FALSE);
    g_autoptr (GBytes) little_bytes = make_zip (little, 4, FALSE);
    g_autoptr (GError) error = NULL;
    g_autoptr (AtTorchFile) file = at_torch_new_from_bytes (little_bytes, "little.pt", &error);

    g_assert_no_error (error);
    g_assert_cmpuint (at_tensor_set_get_n_tensors (at_torch_get_tensors (file)), ==, 1);
    expect_bytes_error (bytes, AT_ERROR_UNSUPPORTED, "big-endian");
    expect_bytes_error (odd_bytes, AT_ERROR_BAD_FILE, "byteorder member is neither");
  }
  {
    static const char junk[] = "\x13\x37 this is not a checkpoint at all", pk_junk[] = "PK\x03\x04 garbage";
    g_autoptr (GBytes) empty = g_bytes_new (NULL, 0);
    g_autoptr (GBytes) random = g_bytes_new (junk, sizeof junk - 1);
    g_autoptr (GBytes) pk = g_bytes_new (pk_junk, sizeof pk_junk - 1);

    expect_bytes_error (empty, AT_ERROR_BAD_FILE, "the file is empty");
    expect_bytes_error (random, AT_ERROR_BAD_FILE, "no zip signature");
    expect_bytes_error (pk, AT_ERROR_BAD_FILE, "not a valid zip archive");
  }
}

/* The storage's zip headers disagree with each other: a local header that names another
 * member, a central directory entry pointing outside the file. */
static void
test_zip_headers (void)
{
  static const float four[4] = { 1, 2, 3, 4 };
  g_autoptr (GByteArray) ok = tensor_pickle ('0', 4, 4);
  const Member m[] = { { "m/data.pkl", ok->data, ok->len }, { "m/data/0", four, 16 } };
  g_autoptr (GBytes) made = make_zip (m, 2, FALSE);
  gsize size = g_bytes_get_size (made);
  g_autofree guint8 *renamed = g_memdup2 (g_bytes_get_data (made, NULL), size);
  g_autofree guint8 *moved = g_memdup2 (renamed, size);
  guint n_patched = 0;

  for (gsize i = 0; i + 46 + 8 <= size; i++)
    {
      if (memcmp (renamed + i, "PK\x03\x04", 4) == 0 && memcmp (renamed + i + 30, "m/data/0", 8) == 0)
        {
          renamed[i + 37] = 'X';
          n_patched++;
        }
      if (memcmp (moved + i, "PK\x01\x02", 4) == 0 && memcmp (moved + i + 46, "m/data/0", 8) == 0)
        {
          memcpy (moved + i + 42, "\x00\x00\x00\x7f", 4);
          n_patched++;
        }
    }
  g_assert_cmpuint (n_patched, ==, 2);
  {
    g_autoptr (GBytes) a = g_bytes_new (renamed, size);
    g_autoptr (GBytes) b = g_bytes_new (moved, size);

    expect_bytes_error (a, AT_ERROR_BAD_FILE, "zip member \"m/data/0\": local header names another member");
    expect_bytes_error (b, AT_ERROR_BAD_FILE, "zip member \"m/data/0\" has no local header at offset 2130706432");
  }
}

/* A deflated data.pkl whose headers claim 4 GB: refused before anything is allocated. */
static void
test_zip_bomb (void)
{
  g_autoptr (GByteArray) ok = tensor_pickle ('0', 4, 4);
  const Member m[] = { { "m/data.pkl", ok->data, ok->len } };
  g_autoptr (GBytes) made = make_zip (m, 1, TRUE);
  gsize size = g_bytes_get_size (made);
  g_autofree guint8 *data = g_memdup2 (g_bytes_get_data (made, NULL), size);
  g_autoptr (GBytes) bytes = NULL;
  guint n_patched = 0;

  for (gsize i = 0; i + 46 <= size; i++)
    {
      guint32 sig = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | ((guint32) data[i + 3] << 24);

      if (sig == 0x04034b50 || sig == 0x02014b50)
        {
          memset (data + i + (sig == 0x04034b50 ? 22 : 24), 0xfe, 4);
          n_patched++;
        }
    }
  g_assert_cmpuint (n_patched, ==, 2);
  bytes = g_bytes_new (data, size);
  expect_bytes_error (bytes, AT_ERROR_BAD_FILE, "claims 4278124286 bytes from");
}

/* Builds `pickle` into an archive (no storages) and asserts the error. */
static void
expect_pickle_archive_error (GByteArray *pickle, const char *fragment)
{
  const Member m[] = { { "m/data.pkl", pickle->data, pickle->len } };
  g_autoptr (GBytes) bytes = make_zip (m, 1, FALSE);

  expect_bytes_error (bytes, AT_ERROR_BAD_FILE, fragment);
}

static void
test_nesting (void)
{
  g_autoptr (GByteArray) deep = g_byte_array_new ();
  g_autoptr (GByteArray) marks = g_byte_array_new ();
  g_autoptr (GError) error = NULL;

  /* 10000 nested lists: the machine has no recursion; the walk stops at 64 levels. */
  g_byte_array_append (deep, (const guint8 *) "\x80\x02", 2);
  for (int i = 0; i < 10000; i++)
    g_byte_array_append (deep, (const guint8 *) "]", 1);
  for (int i = 0; i < 9999; i++)
    g_byte_array_append (deep, (const guint8 *) "a", 1);
  g_byte_array_append (deep, (const guint8 *) ".", 1);
  {
    g_autoptr (AtPickle) p = load_pickle (deep->data, deep->len, &error);

    g_assert_no_error (error);
  }
  expect_pickle_archive_error (deep, "nests deeper than 64 levels");

  /* 10000 open MARKs and a value. */
  g_byte_array_append (marks, (const guint8 *) "\x80\x02", 2);
  for (int i = 0; i < 10000; i++)
    g_byte_array_append (marks, (const guint8 *) "(", 1);
  g_byte_array_append (marks, (const guint8 *) "N.", 2);
  {
    g_autoptr (AtPickle) p = load_pickle (marks->data, marks->len, &error);

    g_assert_no_error (error);
    g_assert_cmpint (at_pickle_get_root (p)->type, ==, AT_PY_NONE);
  }
}

/* Shared containers: a list holding itself 1000 times, and 30 levels of lists holding the
 * previous level 10 times (10^30 paths). Both load in a few kilobytes and are refused fast. */
static void
test_billion_laughs (void)
{
  g_autoptr (GByteArray) self = g_byte_array_new ();
  g_autoptr (GByteArray) laughs = g_byte_array_new ();
  g_autoptr (GTimer) timer = g_timer_new ();
  g_autoptr (GError) error = NULL;

  g_byte_array_append (self, (const guint8 *) "\x80\x02]q\x00(", 6);
  for (int i = 0; i < 1000; i++)
    g_byte_array_append (self, (const guint8 *) "h\x00", 2);
  g_byte_array_append (self, (const guint8 *) "e.", 2);
  {
    g_autoptr (AtPickle) p = load_pickle (self->data, self->len, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (at_pickle_get_root (p)->v.seq.len, ==, 1000);
  }
  expect_pickle_archive_error (self, "nests deeper than 64 levels");

  g_byte_array_append (laughs, (const guint8 *) "\x80\x02]q\x00", 5);
  for (guint8 level = 1; level <= 30; level++)
    {
      guint8 get[2] = { 'h', (guint8) (level - 1) }, put[2] = { 'q', level };

      g_byte_array_append (laughs, (const guint8 *) "(", 1);
      for (int i = 0; i < 10; i++)
        g_byte_array_append (laughs, get, 2);
      g_byte_array_append (laughs, (const guint8 *) "l", 1);
      g_byte_array_append (laughs, put, 2);
    }
  g_byte_array_append (laughs, (const guint8 *) ".", 1);
  expect_pickle_archive_error (laughs, "shares containers too often to walk");
  g_assert_cmpfloat (g_timer_elapsed (timer, NULL), <, 5.0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/formats/torch/reference", test_reference);
  g_test_add_func ("/formats/torch/open", test_open);
  g_test_add_func ("/formats/torch/legacy", test_legacy);
  g_test_add_func ("/formats/torch/hostile-globals", test_hostile_globals);
  g_test_add_func ("/formats/torch/pickle-broken", test_pickle_broken);
  g_test_add_func ("/formats/torch/pickle-values", test_pickle_values);
  g_test_add_func ("/formats/torch/pickle-truncated", test_pickle_truncated);
  g_test_add_func ("/formats/torch/file-truncated", test_file_truncated);
  g_test_add_func ("/formats/torch/archive-broken", test_archive_broken);
  g_test_add_func ("/formats/torch/zip-headers", test_zip_headers);
  g_test_add_func ("/formats/torch/zip-bomb", test_zip_bomb);
  g_test_add_func ("/formats/torch/nesting", test_nesting);
  g_test_add_func ("/formats/torch/billion-laughs", test_billion_laughs);
  return g_test_run ();
}
