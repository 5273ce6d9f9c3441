/* test-safetensors.c: safetensors files (written by tools/ref/safetensors_write.py, an
 * independent writer, and by the small writer here), sharded indexes, diffusers folders,
 * the real ml5 style networks in ../shared/data/style, and one hostile file per check. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "at-engine.h"
#include "at-test-util.h"

/* ---- Writers ---- */

static char *
tmp_path (const char *name)
{
  return g_build_filename (at_test_tmpdir (), name, NULL);
}

static void
write_file (const char *path, const void *data, gsize len)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (g_file_set_contents (path, data, (gssize) len, &error));
  g_assert_no_error (error);
}

/* A safetensors image: the u64 length, `json`, then `data_len` bytes of `data` (zeros when
 * NULL). */
static GBytes *
st_bytes (const char *json, const void *data, gsize data_len)
{
  gsize n = strlen (json);
  guint8 *buf = g_malloc0 (8 + n + data_len);

  for (int i = 0; i < 8; i++)
    buf[i] = (guint8) ((guint64) n >> (8 * i));
  memcpy (buf + 8, json, n);
  if (data != NULL)
    memcpy (buf + 8 + n, data, data_len);
  return g_bytes_new_take (buf, 8 + n + data_len);
}

/* Writes F32 tensors `names[i]` of shape [len], element j = 100 * (first + i) + j. */
static void
write_f32_st (const char *path, const char *const *names, guint first, guint len)
{
  g_autoptr (GString) json = g_string_new ("{");
  g_autoptr (GArray) data = g_array_new (FALSE, FALSE, sizeof (float));
  g_autoptr (GBytes) bytes = NULL;

  for (guint i = 0; names[i] != NULL; i++)
    {
      g_string_append_printf (
          json, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%u],\"data_offsets\":[%u,%u]}",
          i > 0 ? "," : "", names[i], len, data->len * 4, (data->len + len) * 4);
      for (guint j = 0; j < len; j++)
        {
          float v = (float) (100 * (first + i) + j);

          g_array_append_val (data, v);
        }
    }
  g_string_append (json, "}");
  bytes = st_bytes (json->str, data->data, data->len * 4);
  write_file (path, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
}

static void
assert_f32_tensor (AtTensorSet *set, const char *name, guint tag, guint len)
{
  const AtTensorEntry *e = at_tensor_set_find (set, name);
  g_autofree float *v = g_new (float, len);
  g_autoptr (GError) error = NULL;

  g_assert_nonnull (e);
  g_assert_cmpint (e->dtype, ==, AT_FILE_DTYPE_F32);
  g_assert_cmpint (e->numel, ==, len);
  g_assert_true (at_tensor_set_read_f32 (set, e, v, &error));
  g_assert_no_error (error);
  for (guint j = 0; j < len; j++)
    g_assert_cmpfloat (v[j], ==, (float) (100 * tag + j));
}

/* ---- safetensors ---- */

static gboolean
same_float (float a, float b)
{
  if (isnan (a) || isnan (b))
    return isnan (a) && isnan (b);
  return a == b && signbit (a) == signbit (b);
}

/* Every dtype against the values the independent Python writer declared. */
static void
test_ref_writer (void)
{
  g_autofree char *path = tmp_path ("ref.safetensors");
  g_autofree char *expect_path = tmp_path ("ref.json");
  const char *args[] = { path, expect_path, NULL };
  g_autoptr (AtSafetensors) st = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GList) names = NULL;
  JsonObject *expect, *tensors;
  AtTensorSet *set;
  GHashTable *meta;
  guint64 header, data_start;

  if (!at_test_run_ref_tool ("safetensors_write.py", args))
    return;
  g_assert_true (json_parser_load_from_file (parser, expect_path, &error));
  g_assert_no_error (error);
  expect = json_node_get_object (json_parser_get_root (parser));
  tensors = json_object_get_object_member (expect, "tensors");

  st = at_safetensors_open (path, &error);
  g_assert_no_error (error);
  header = at_safetensors_get_header_size (st);
  g_assert_cmpuint (header, ==, (guint64) json_object_get_int_member (expect, "header_size"));
  data_start = 8 + header;
  set = at_safetensors_get_tensors (st);
  g_assert_cmpstr (at_tensor_set_get_file_name (set), ==, "ref.safetensors");
  g_assert_cmpuint (at_tensor_set_get_n_tensors (set), ==, json_object_get_size (tensors));
  meta = at_safetensors_get_metadata (st);
  g_assert_cmpuint (g_hash_table_size (meta), ==, 2);
  g_assert_cmpstr (g_hash_table_lookup (meta, "format"), ==, "pt");

  names = json_object_get_members (tensors);
  for (GList *l = names; l != NULL; l = l->next)
    {
      JsonObject *t = json_object_get_object_member (tensors, l->data);
      JsonArray *shape = json_object_get_array_member (t, "shape");
      JsonArray *values = json_object_get_array_member (t, "values");
      const AtTensorEntry *e = at_tensor_set_find (set, l->data);
      g_autofree float *got = NULL;

      g_test_message ("tensor %s", (const char *) l->data);
      g_assert_nonnull (e);
      g_assert_cmpstr (at_file_dtype_name (e->dtype), ==,
                       json_object_get_string_member (t, "dtype"));
      g_assert_cmpint (e->ndim, ==, json_array_get_length (shape));
      for (int d = 0; d < e->ndim; d++)
        g_assert_cmpint (e->shape[d], ==, json_array_get_int_element (shape, (guint) d));
      g_assert_cmpint (e->numel, ==, json_array_get_length (values));
      g_assert_cmpuint (e->offset, >=, data_start);
      g_assert_true (e->data != NULL);
      got = g_new0 (float, MAX (e->numel, 1));
      g_assert_true (at_tensor_set_read_f32 (set, e, got, &error));
      g_assert_no_error (error);
      for (gint64 i = 0; i < e->numel; i++)
        {
          float want
              = (float) g_ascii_strtod (json_array_get_string_element (values, (guint) i), NULL);

          if (!same_float (got[i], want))
            g_error ("%s[%" G_GINT64_FORMAT "]: got %.9g, want %.9g", (const char *) l->data, i,
                     got[i], want);
        }
    }
  /* Views into one mapping: offsets and pointers agree. */
  {
    const AtTensorEntry *a = at_tensor_set_get (set, 0), *b = at_tensor_set_get (set, 1);

    g_assert_true (b->data - a->data == (gssize) (b->offset - a->offset));
    g_assert_cmpuint (a->offset, ==, data_start);
  }
  g_assert_cmpint (at_tensor_set_find (set, "scalar")->ndim, ==, 0);
  g_assert_cmpint (at_tensor_set_find (set, "empty")->numel, ==, 0);
}

static void
test_small (void)
{
  const float data[3] = { 1, 2, 3 };
  /* Padding spaces after the JSON; a zero-size tensor at the end of the buffer. */
  g_autoptr (GBytes) bytes
      = st_bytes ("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                  "\"z\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[12,12]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}     ",
                  data, sizeof data);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtSafetensors) st = at_safetensors_new_from_bytes (bytes, "small.safetensors", &error);
  AtTensorSet *set;
  float v[2];

  g_assert_no_error (error);
  set = at_safetensors_get_tensors (st);
  g_assert_cmpuint (at_tensor_set_get_n_tensors (set), ==, 3);
  /* Data order. */
  g_assert_cmpstr (at_tensor_set_get (set, 0)->name, ==, "a");
  g_assert_cmpstr (at_tensor_set_get (set, 1)->name, ==, "b");
  g_assert_cmpstr (at_tensor_set_get (set, 2)->name, ==, "z");
  g_assert_true (at_tensor_set_read_f32 (set, at_tensor_set_find (set, "a"), v, &error));
  g_assert_cmpfloat (v[1], ==, 2);
  g_assert_cmpuint (at_tensor_set_find (set, "b")->offset, ==,
                    8 + at_safetensors_get_header_size (st) + 8);
  g_assert_cmpuint (g_hash_table_size (at_safetensors_get_metadata (st)), ==, 0);
}

static void
test_empty_header (void)
{
  g_autoptr (GBytes) bytes = st_bytes ("{\"__metadata__\":{\"k\":\"v\"}}", NULL, 0);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtSafetensors) st = at_safetensors_new_from_bytes (bytes, "e.safetensors", &error);

  g_assert_no_error (error);
  g_assert_cmpuint (at_tensor_set_get_n_tensors (at_safetensors_get_tensors (st)), ==, 0);
  g_assert_cmpstr (g_hash_table_lookup (at_safetensors_get_metadata (st), "k"), ==, "v");
}

static void
expect_bad_bytes (GBytes *bytes, int code, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtSafetensors) st = at_safetensors_new_from_bytes (bytes, "bad.safetensors", &error);

  g_assert_null (st);
  g_assert_error (error, AT_ERROR, code);
  if (strstr (error->message, fragment) == NULL
      || !g_str_has_prefix (error->message, "bad.safetensors: "))
    g_error ("message \"%s\" lacks \"%s\"", error->message, fragment);
  g_test_message ("%s", error->message);
}

#define T(name, dtype, shape, offs)                                                                \
  "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offs "}"

static void
test_hostile (void)
{
  static const struct
  {
    const char *json;
    gsize data_len;
    int code;
    const char *fragment;
  } cases[] = {
    { "{\"a\":", 0, AT_ERROR_BAD_FILE, "does not parse" },
    { "{not json", 0, AT_ERROR_BAD_FILE, "unexpected character (0x6f) at byte 2" },
    { "", 0, AT_ERROR_BAD_FILE, "JSON" },
    { "[1, 2]", 0, AT_ERROR_BAD_FILE, "not a JSON object" },
    { "{\"a\":[1]}", 0, AT_ERROR_BAD_FILE, "\"a\" is not a JSON object" },
    { "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, AT_ERROR_BAD_FILE,
      "\"a\" has no \"dtype\"" },
    { "{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, AT_ERROR_BAD_FILE,
      "\"dtype\"" },
    { "{" T ("a", "Q4", "[1]", "[0,4]") "}", 4, AT_ERROR_UNSUPPORTED, "\"a\" has dtype \"Q4\"" },
    { "{" T ("a", "U16", "[1]", "[0,2]") "}", 2, AT_ERROR_UNSUPPORTED, "\"U16\"" },
    { "{" T ("a", "U64", "[1]", "[0,8]") "}", 8, AT_ERROR_UNSUPPORTED, "\"U64\"" },
    { "{" T ("a", "f32", "[1]", "[0,4]") "}", 4, AT_ERROR_UNSUPPORTED, "\"f32\"" },
    { "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, AT_ERROR_BAD_FILE,
      "\"a\" has no \"shape\"" },
    { "{" T ("a", "F32", "[-1]", "[0,4]") "}", 4, AT_ERROR_BAD_FILE, "dimension 0 of -1," },
    { "{" T ("a", "F32", "[2.0]", "[0,8]") "}", 8, AT_ERROR_BAD_FILE, "dimension 0 of float 2," },
    { "{" T ("a", "F32", "[1,1e0]", "[0,4]") "}", 4, AT_ERROR_BAD_FILE, "dimension 1" },
    { "{" T ("a", "F32", "[true]", "[0,4]") "}", 4, AT_ERROR_BAD_FILE, "dimension 0 of true," },
    { "{" T ("a", "F32", "[\"1\"]", "[0,4]") "}", 4, AT_ERROR_BAD_FILE,
      "dimension 0 of a string," },
    { "{" T ("a", "F32", "[2199023255553]", "[0,4]") "}", 4, AT_ERROR_BAD_FILE,
      "dimension 0 of 2199023255553," },
    { "{" T ("a", "F32", "[99999999999999999999999]", "[0,4]") "}", 4, AT_ERROR_BAD_FILE,
      "dimension 0" },
    { "{" T ("a", "F32", "[1099511627776,1099511627776]", "[0,4]") "}", 4, AT_ERROR_BAD_FILE,
      "2^42" },
    { "{" T ("a", "F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]") "}", 4, AT_ERROR_BAD_FILE,
      "9 dimensions" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, AT_ERROR_BAD_FILE, "no \"data_offsets\"" },
    { "{" T ("a", "F32", "[1]", "[0]") "}", 4, AT_ERROR_BAD_FILE, "data_offsets" },
    { "{" T ("a", "F32", "[1]", "[0,4.0]") "}", 4, AT_ERROR_BAD_FILE, "data_offsets" },
    { "{" T ("a", "F32", "[1]", "[-4,0]") "}", 4, AT_ERROR_BAD_FILE, "data_offsets" },
    { "{" T ("a", "F32", "[1]", "[8,4]") "}", 8, AT_ERROR_BAD_FILE,
      "ends (4) before it begins (8)" },
    { "{" T ("a", "F32", "[2]", "[0,4]") "}", 4, AT_ERROR_BAD_FILE, "needs 8 bytes" },
    { "{" T ("a", "F32", "[1]", "[4,8]") "}", 4, AT_ERROR_BAD_FILE, "past the 4-byte data buffer" },
    { "{" T ("a", "F32", "[1]", "[9223372036854775800,9223372036854775804]") "}", 4,
      AT_ERROR_BAD_FILE, "past the" },
    { "{" T ("a", "F32", "[2]", "[0,8]") "," T ("b", "F32", "[2]", "[4,12]") "}", 12,
      AT_ERROR_BAD_FILE, "\"b\" (data offset 4) overlaps tensor \"a\"" },
    { "{" T ("a", "F32", "[1]", "[0,4]") "," T ("b", "F32", "[1]", "[8,12]") "}", 12,
      AT_ERROR_BAD_FILE, "gap of 4 bytes in the data buffer at [4, 8) before tensor \"b\"" },
    { "{" T ("a", "F32", "[1]", "[4,8]") "}", 8, AT_ERROR_BAD_FILE, "gap of 4 bytes" },
    { "{" T ("a", "F32", "[1]", "[0,4]") "}", 8, AT_ERROR_BAD_FILE, "4 trailing bytes" },
    { "{}", 3, AT_ERROR_BAD_FILE, "3 trailing bytes" },
    { "{" T ("a", "F32", "[1]", "[0,4]") "," T ("a", "F32", "[1]", "[0,4]") "}", 4,
      AT_ERROR_BAD_FILE, "\"a\" appears twice" },
    { "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
      AT_ERROR_BAD_FILE, "\"dtype\" appears twice" },
    { "{\"a\\u0062\":{},\"ab\":{}}", 0, AT_ERROR_BAD_FILE, "\"ab\" appears twice" },
    { "{\"__metadata__\":{\"k\":1}}", 0, AT_ERROR_BAD_FILE,
      "\"__metadata__\" value \"k\" is not a string" },
    { "{\"__metadata__\":[\"k\"]}", 0, AT_ERROR_BAD_FILE, "\"__metadata__\" is not a JSON object" },
    { "{" T ("", "F32", "[1]", "[0,4]") "}", 4, AT_ERROR_BAD_FILE, "name" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} \xff", 4, AT_ERROR_BAD_FILE,
      "UTF-8" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GBytes) bytes = st_bytes (cases[i].json, NULL, cases[i].data_len);

      g_autofree char *json = g_strescape (cases[i].json, NULL);

      g_test_message ("case %u: %s", i, json);
      expect_bad_bytes (bytes, cases[i].code, cases[i].fragment);
    }
}

static void
test_hostile_length (void)
{
  guint8 buf[32] = { 0 };
  g_autoptr (GBytes) past = NULL, huge = NULL, short_ = NULL, limit = NULL, empty = NULL;

  buf[0] = 100; /* 100 bytes of header, 24 there */
  memcpy (buf + 8, "{}", 2);
  past = g_bytes_new (buf, sizeof buf);
  expect_bad_bytes (past, AT_ERROR_BAD_FILE,
                    "header length 100 runs past the end of the file (32 bytes)");
  memset (buf, 0, 8);
  buf[7] = 0x80; /* 2^63 */
  huge = g_bytes_new (buf, sizeof buf);
  expect_bad_bytes (huge, AT_ERROR_BAD_FILE, "header length 9223372036854775808 is over");
  memset (buf, 0, 8);
  buf[3] = 0x40; /* 2^30 + 1 */
  buf[0] = 1;
  limit = g_bytes_new (buf, sizeof buf);
  expect_bad_bytes (limit, AT_ERROR_BAD_FILE, "is over the");
  short_ = g_bytes_new (buf, 5);
  expect_bad_bytes (short_, AT_ERROR_BAD_FILE, "5 bytes is too short");
  empty = g_bytes_new (NULL, 0);
  expect_bad_bytes (empty, AT_ERROR_BAD_FILE, "0 bytes is too short");
}

static void
test_deep_nesting (void)
{
  g_autoptr (GString) json = g_string_new ("{\"a\":");
  g_autoptr (GBytes) bytes = NULL, quoted = NULL, hex = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (AtSafetensors) st = NULL;

  for (int i = 0; i < 10000; i++)
    g_string_append_c (json, '[');
  bytes = st_bytes (json->str, NULL, 0);
  expect_bad_bytes (bytes, AT_ERROR_BAD_FILE, "deeper than 64");
  /* json-glib takes 'single-quoted' strings and comments: a '"' inside either must not hide
   * the brackets after it from the depth check. */
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr (GBytes) sneaky = NULL;

      g_string_assign (json, i == 0 ? "{\"a\":['\"'," : "{\"a\":[/* \" */");
      for (int k = 0; k < 10000; k++)
        g_string_append_c (json, '[');
      sneaky = st_bytes (json->str, NULL, 0);
      expect_bad_bytes (sneaky, AT_ERROR_BAD_FILE, i == 0 ? "(0x27) at byte 6" : "(0x2f) at byte 6");
    }
  /* Brackets inside strings (escaped quotes too) are not nesting. */
  g_string_assign (json, "{\"__metadata__\":{\"k\":\"\\\"");
  for (int i = 0; i < 1000; i++)
    g_string_append (json, "[{");
  g_string_append (json, "\"}}");
  quoted = st_bytes (json->str, NULL, 0);
  st = at_safetensors_new_from_bytes (quoted, "q.safetensors", &error);
  g_assert_no_error (error);
  g_assert_nonnull (st);
  hex = st_bytes ("{" T ("a", "F32", "[0x1]", "[0,4]") "}", "\0\0\0\0", 4);
  expect_bad_bytes (hex, AT_ERROR_BAD_FILE, "unexpected character");
}

/* Every prefix of a valid file is refused (the data must fill the buffer exactly). */
static void
test_truncated (void)
{
  const float data[6] = { 1, 2, 3, 4, 5, 6 };
  g_autoptr (GBytes) bytes
      = st_bytes ("{\"__metadata__\":{\"a\":\"b\"}," T ("w", "F32", "[2,2]", "[0,16]") "," T (
                      "b", "F32", "[2]", "[16,24]") "}  ",
                  data, sizeof data);
  gsize size = g_bytes_get_size (bytes);
  g_autoptr (AtSafetensors) whole = at_safetensors_new_from_bytes (bytes, "t.safetensors", NULL);

  g_assert_nonnull (whole);
  for (gsize n = 0; n < size; n++)
    {
      g_autoptr (GBytes) part = g_bytes_new_from_bytes (bytes, 0, n);
      g_autoptr (GError) error = NULL;
      g_autoptr (AtSafetensors) st = at_safetensors_new_from_bytes (part, "t.safetensors", &error);

      g_assert_null (st);
      g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
    }
}

/* ---- Sharded ---- */

/* sharded/m-1.safetensors (a, b), m-2 (c, d), m-3 (a, e); returns the folder. */
static char *
make_shards (void)
{
  char *dir = tmp_path ("sharded");
  g_autofree char *s1 = NULL, *s2 = NULL, *s3 = NULL;
  const char *n1[] = { "a", "b", NULL }, *n2[] = { "c", "d", NULL }, *n3[] = { "a", "e", NULL };

  g_mkdir_with_parents (dir, 0700);
  s1 = g_build_filename (dir, "m-1.safetensors", NULL);
  s2 = g_build_filename (dir, "m-2.safetensors", NULL);
  s3 = g_build_filename (dir, "m-3.safetensors", NULL);
  write_f32_st (s1, n1, 0, 4);
  write_f32_st (s2, n2, 2, 4);
  write_f32_st (s3, n3, 0, 4);
  return dir;
}

static void
test_sharded (void)
{
  g_autofree char *dir = make_shards ();
  g_autofree char *index = g_build_filename (dir, "m.safetensors.index.json", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtTensorSet) set = NULL;
  const char *json
      = "{\"metadata\":{\"total_size\":64},\"weight_map\":{\"a\":\"m-1.safetensors\","
        "\"b\":\"m-1.safetensors\",\"c\":\"m-2.safetensors\",\"d\":\"m-2.safetensors\"}}";

  write_file (index, json, strlen (json));
  set = at_safetensors_open_sharded (index, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (at_tensor_set_get_n_tensors (set), ==, 4);
  g_assert_cmpstr (at_tensor_set_get_file_name (set), ==, "m.safetensors.index.json");
  g_assert_cmpuint (at_tensor_set_find (set, "a")->container, ==, 0);
  g_assert_cmpuint (at_tensor_set_find (set, "d")->container, ==, 1);
  g_assert_cmpuint (at_tensor_set_find (set, "c")->offset, ==,
                    at_tensor_set_find (set, "a")->offset);
  assert_f32_tensor (set, "a", 0, 4);
  assert_f32_tensor (set, "b", 1, 4);
  assert_f32_tensor (set, "c", 2, 4);
  assert_f32_tensor (set, "d", 3, 4);
}

static void
expect_bad_index (const char *json, const char *fragment)
{
  g_autofree char *dir = tmp_path ("sharded");
  g_autofree char *index = g_build_filename (dir, "bad.safetensors.index.json", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtTensorSet) set = NULL;

  write_file (index, json, strlen (json));
  set = at_safetensors_open_sharded (index, &error);
  g_assert_null (set);
  g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
  if (strstr (error->message, fragment) == NULL)
    g_error ("message \"%s\" lacks \"%s\"", error->message, fragment);
  g_test_message ("%s", error->message);
}

static void
test_sharded_hostile (void)
{
  g_autofree char *dir = make_shards ();
  g_autofree char *evil = tmp_path ("evil.safetensors");
  const char *names[] = { "a", NULL };

  /* A file beside the folder that a "../" name would reach. */
  write_f32_st (evil, names, 0, 4);

  expect_bad_index ("{\"weight_map\":{\"a\":\"../evil.safetensors\"}}",
                    "\"a\" in \"../evil.safetensors\", which is not a file name");
  expect_bad_index ("{\"weight_map\":{\"a\":\"/tmp/evil.safetensors\"}}", "not a file name");
  expect_bad_index ("{\"weight_map\":{\"a\":\"sub/m-1.safetensors\"}}", "not a file name");
  expect_bad_index ("{\"weight_map\":{\"a\":\"..\"}}", "not a file name");
  expect_bad_index ("{\"weight_map\":{\"a\":1}}", "is not a file name");
  expect_bad_index ("{\"weight_map\":[]}", "no \"weight_map\" object");
  expect_bad_index ("{\"metadata\":1,\"weight_map\":{}}", "\"metadata\" is not a JSON object");
  expect_bad_index ("[]", "not a JSON object");
  expect_bad_index ("{\"weight_map\":{\"a\":\"m-1.safetensors\",\"a\":\"m-2.safetensors\"}}",
                    "appears twice");
  /* c is in m-2, the index says m-1. */
  expect_bad_index (
      "{\"weight_map\":{\"a\":\"m-1.safetensors\",\"b\":\"m-1.safetensors\",\"c\":\"m-1."
      "safetensors\","
      "\"d\":\"m-2.safetensors\"}}",
      "weight_map puts tensor \"c\" in shard m-1.safetensors, but shard m-2.safetensors holds it");
  /* m-1 holds b, which is not listed. */
  expect_bad_index ("{\"weight_map\":{\"a\":\"m-1.safetensors\"}}",
                    "shard m-1.safetensors holds tensor \"b\", which the weight_map does not list");
  expect_bad_index (
      "{\"weight_map\":{\"a\":\"m-1.safetensors\",\"b\":\"m-1.safetensors\",\"x\":\"m-1."
      "safetensors\"}}",
      "weight_map puts tensor \"x\" in shard m-1.safetensors, which does not hold it");
  /* a is in m-1 and m-3. */
  expect_bad_index ("{\"weight_map\":{\"a\":\"m-1.safetensors\",\"b\":\"m-1.safetensors\",\"e\":"
                    "\"m-3.safetensors\"}}",
                    "tensor \"a\" is in both shard m-1.safetensors and shard m-3.safetensors");
  expect_bad_index ("{\"weight_map\":{\"a\":\"missing.safetensors\"}}", "missing.safetensors");
}

/* ---- Diffusers ---- */

static void
write_in (const char *dir, const char *sub, const char *name, const char *text)
{
  g_autofree char *folder = g_build_filename (dir, sub, NULL);
  g_autofree char *path = g_build_filename (folder, name, NULL);

  g_mkdir_with_parents (folder, 0700);
  write_file (path, text, strlen (text));
}

static char *
make_pipeline (const char *tag)
{
  char *dir = tmp_path (tag);
  g_autofree char *unet = g_build_filename (dir, "unet", NULL);
  g_autofree char *unet_w = NULL, *unet_h = NULL, *te_w = NULL, *v1 = NULL, *v2 = NULL;
  const char *unet_names[] = { "conv_in.weight", "conv_in.bias", NULL };
  const char *te_names[] = { "text_model.embeddings.token_embedding.weight", NULL };
  const char *v1_names[] = { "encoder.conv_in.weight", NULL },
             *v2_names[] = { "decoder.conv_out.weight", NULL };

  write_in (dir, ".", "model_index.json",
            "{\"_class_name\": \"StableDiffusionPipeline\", \"_diffusers_version\": \"0.21.0\","
            " \"requires_safety_checker\": false,"
            " \"unet\": [\"diffusers\", \"UNet2DConditionModel\"],"
            " \"vae\": [\"diffusers\", \"AutoencoderKL\"],"
            " \"text_encoder\": [\"transformers\", \"CLIPTextModel\"],"
            " \"text_encoder_2\": [\"transformers\", \"CLIPTextModelWithProjection\"],"
            " \"tokenizer\": [\"transformers\", \"CLIPTokenizer\"],"
            " \"scheduler\": [\"diffusers\", \"PNDMScheduler\"],"
            " \"safety_checker\": [null, null], \"feature_extractor\": [null, null]}");
  write_in (dir, "unet", "config.json",
            "{\"_class_name\": \"UNet2DConditionModel\", \"in_channels\": 4}");
  unet_w = g_build_filename (unet, "diffusion_pytorch_model.safetensors", NULL);
  unet_h = g_build_filename (unet, "diffusion_pytorch_model.fp16.safetensors", NULL);
  write_f32_st (unet_w, unet_names, 10, 3);
  write_f32_st (unet_h, unet_names, 20, 3);
  write_in (dir, "vae", "config.json", "{\"latent_channels\": 4}");
  write_in (
      dir, "vae", "diffusion_pytorch_model.safetensors.index.json",
      "{\"metadata\": {\"total_size\": 16}, \"weight_map\": {"
      "\"encoder.conv_in.weight\": \"diffusion_pytorch_model-00001-of-00002.safetensors\","
      "\"decoder.conv_out.weight\": \"diffusion_pytorch_model-00002-of-00002.safetensors\"}}");
  v1 = g_build_filename (dir, "vae", "diffusion_pytorch_model-00001-of-00002.safetensors", NULL);
  v2 = g_build_filename (dir, "vae", "diffusion_pytorch_model-00002-of-00002.safetensors", NULL);
  write_f32_st (v1, v1_names, 30, 2);
  write_f32_st (v2, v2_names, 31, 2);
  write_in (dir, "text_encoder", "config.json", "{\"hidden_size\": 768}");
  te_w = g_build_filename (dir, "text_encoder", "model.safetensors", NULL);
  write_f32_st (te_w, te_names, 40, 5);
  write_in (dir, "text_encoder_2", "config.json", "{\"hidden_size\": 1280}");
  write_in (dir, "text_encoder_2", "pytorch_model.bin", "PK not really");
  write_in (dir, "tokenizer", "tokenizer_config.json", "{\"model_max_length\": 77}");
  write_in (dir, "tokenizer", "vocab.json", "{\"a</w>\": 0}");
  write_in (dir, "tokenizer", "merges.txt", "#version: 0.2\n");
  write_in (dir, "scheduler", "scheduler_config.json",
            "{\"_class_name\": \"PNDMScheduler\", \"num_train_timesteps\": 1000}");
  return dir;
}

static void
test_diffusers (void)
{
  g_autofree char *dir = make_pipeline ("pipeline");
  g_autoptr (GError) error = NULL;
  g_autoptr (AtDiffusers) d = at_diffusers_open (dir, &error);
  g_autoptr (AtDiffusers) half = NULL;
  const AtDiffusersComponent *c;

  g_assert_no_error (error);
  g_assert_cmpstr (at_diffusers_get_class_name (d), ==, "StableDiffusionPipeline");
  g_assert_cmpstr (at_diffusers_get_version (d), ==, "0.21.0");
  g_assert_cmpuint (at_diffusers_get_n_components (d), ==, 6);
  g_assert_cmpstr (at_diffusers_get_component (d, 0)->name, ==, "unet");
  g_assert_null (at_diffusers_find_component (d, "safety_checker"));

  c = at_diffusers_find_component (d, "unet");
  g_assert_cmpstr (c->library, ==, "diffusers");
  g_assert_cmpstr (c->class_name, ==, "UNet2DConditionModel");
  g_assert_true (g_path_is_absolute (c->folder));
  g_assert_cmpint (json_object_get_int_member (c->config, "in_channels"), ==, 4);
  g_assert_cmpint (c->weights_format, ==, AT_DIFFUSERS_WEIGHTS_SAFETENSORS);
  g_assert_true (g_str_has_suffix (c->weights_path, "/unet/diffusion_pytorch_model.safetensors"));
  assert_f32_tensor (c->tensors, "conv_in.bias", 11, 3);

  c = at_diffusers_find_component (d, "vae");
  g_assert_cmpint (c->weights_format, ==, AT_DIFFUSERS_WEIGHTS_SAFETENSORS_SHARDED);
  g_assert_cmpuint (at_tensor_set_get_n_tensors (c->tensors), ==, 2);
  g_assert_cmpuint (at_tensor_set_find (c->tensors, "decoder.conv_out.weight")->container, ==, 1);
  assert_f32_tensor (c->tensors, "decoder.conv_out.weight", 31, 2);

  c = at_diffusers_find_component (d, "text_encoder");
  g_assert_cmpstr (c->library, ==, "transformers");
  assert_f32_tensor (c->tensors, "text_model.embeddings.token_embedding.weight", 40, 5);

  c = at_diffusers_find_component (d, "text_encoder_2");
  g_assert_cmpint (c->weights_format, ==, AT_DIFFUSERS_WEIGHTS_PYTORCH);
  g_assert_true (g_str_has_suffix (c->weights_path, "/pytorch_model.bin"));
  g_assert_null (c->tensors);

  c = at_diffusers_find_component (d, "tokenizer");
  g_assert_cmpint (c->weights_format, ==, AT_DIFFUSERS_WEIGHTS_NONE);
  g_assert_null (c->weights_path);
  g_assert_null (c->tensors);
  g_assert_cmpint (json_object_get_int_member (c->config, "model_max_length"), ==, 77);

  c = at_diffusers_find_component (d, "scheduler");
  g_assert_true (g_str_has_suffix (c->config_path, "scheduler_config.json"));
  g_assert_cmpint (json_object_get_int_member (c->config, "num_train_timesteps"), ==, 1000);

  half = at_diffusers_open_variant (dir, "fp16", &error);
  g_assert_no_error (error);
  c = at_diffusers_find_component (half, "unet");
  g_assert_true (g_str_has_suffix (c->weights_path, "diffusion_pytorch_model.fp16.safetensors"));
  assert_f32_tensor (c->tensors, "conv_in.bias", 21, 3);
  /* No fp16 file: the full one. */
  c = at_diffusers_find_component (half, "text_encoder");
  g_assert_true (g_str_has_suffix (c->weights_path, "model.safetensors"));
}

static void
expect_bad_pipeline (const char *dir, int code, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtDiffusers) d = at_diffusers_open (dir, &error);

  g_assert_null (d);
  g_assert_error (error, AT_ERROR, code);
  if (strstr (error->message, fragment) == NULL)
    g_error ("message \"%s\" lacks \"%s\"", error->message, fragment);
  g_test_message ("%s", error->message);
}

static void
test_diffusers_hostile (void)
{
  static const struct
  {
    const char *index;
    const char *fragment;
  } cases[] = {
    { "{\"_class_name\": \"P\", \"unet\": [\"diffusers\", \"UNet2DConditionModel\"], "
      "\"vae\": [\"diffusers\", \"AutoencoderKL\"]}",
      "model_index.json: component \"vae\" (AutoencoderKL) has no folder vae/" },
    { "{\"_class_name\": \"P\", \"..\": [\"diffusers\", \"X\"]}",
      "component \"..\" is not a folder name" },
    { "{\"_class_name\": \"P\", \"a/b\": [\"diffusers\", \"X\"]}", "is not a folder name" },
    { "{\"_class_name\": \"P\", \"unet\": [\"diffusers\"]}",
      "\"unet\" is not a [library, class] pair" },
    { "{\"_class_name\": \"P\", \"unet\": [\"diffusers\", 3]}",
      "\"unet\" is not a [library, class] pair" },
    { "{\"_class_name\": \"P\", \"unet\": [\"diffusers\", null]}", "has a library but no class" },
    { "{\"unet\": [\"diffusers\", \"UNet2DConditionModel\"]}", "no \"_class_name\" string" },
    { "[\"unet\"]", "model_index.json: not a JSON object" },
    { "{\"_class_name\": ", "model_index.json: JSON does not parse" },
    { "{\"_class_name\": \"P\", \"unet\": [\"diffusers\", \"A\"], \"unet\": [\"diffusers\", "
      "\"B\"]}",
      "appears twice" },
  };
  g_autofree char *dir = tmp_path ("bad-pipeline");
  g_autofree char *nothing = tmp_path ("no-pipeline");

  write_in (dir, "unet", "config.json", "{}");
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      write_in (dir, ".", "model_index.json", cases[i].index);
      expect_bad_pipeline (dir, AT_ERROR_BAD_FILE, cases[i].fragment);
    }
  /* Config and weights of a component. */
  write_in (dir, ".", "model_index.json",
            "{\"_class_name\": \"P\", \"unet\": [\"diffusers\", \"U\"]}");
  write_in (dir, "unet", "config.json", "[1, 2]");
  expect_bad_pipeline (dir, AT_ERROR_BAD_FILE, "unet/config.json: the config is not a JSON object");
  write_in (dir, "unet", "config.json", "{\"a\": ");
  expect_bad_pipeline (dir, AT_ERROR_BAD_FILE, "unet/config.json: JSON does not parse");
  write_in (dir, "unet", "config.json", "{}");
  {
    g_autofree char *w
        = g_build_filename (dir, "unet", "diffusion_pytorch_model.safetensors", NULL);

    write_file (w, "\x02\0\0\0\0\0\0\0{}xx", 12);
  }
  expect_bad_pipeline (dir, AT_ERROR_BAD_FILE,
                       "unet/diffusion_pytorch_model.safetensors: 2 trailing bytes");

  g_mkdir_with_parents (nothing, 0700);
  expect_bad_pipeline (nothing, AT_ERROR_BAD_FILE, "no model_index.json");
}

/* ---- ml5 ---- */

static void
check_style (const char *name)
{
  g_autofree char *dir = at_test_shared_path (name);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtMl5) ml5 = NULL;
  AtTensorSet *set;
  const AtTensorEntry *e;
  static const char *spot[] = { "Variable", "Variable_1", "Variable_12", "Variable_47" };

  if (dir == NULL)
    return;
  ml5 = at_ml5_open (dir, &error);
  g_assert_no_error (error);
  set = at_ml5_get_tensors (ml5);
  g_assert_cmpuint (at_tensor_set_get_n_tensors (set), ==, 48);
  /* Natural order: the layer order. */
  for (guint i = 0; i < 48; i++)
    {
      g_autofree char *want = i == 0 ? g_strdup ("Variable") : g_strdup_printf ("Variable_%u", i);
      g_autofree char *path = g_build_filename (dir, want, NULL);
      GStatBuf st;

      e = at_tensor_set_get (set, i);
      g_assert_cmpstr (e->name, ==, want);
      g_assert_cmpuint (e->container, ==, i);
      g_assert_cmpint (e->dtype, ==, AT_FILE_DTYPE_F32);
      g_assert_cmpint (g_stat (path, &st), ==, 0);
      g_assert_cmpuint (e->nbytes, ==, (guint64) st.st_size);
    }
  e = at_tensor_set_find (set, "Variable");
  g_assert_cmpint (e->ndim, ==, 4);
  g_assert_cmpint (e->shape[0], ==, 9);
  g_assert_cmpint (e->shape[1], ==, 9);
  g_assert_cmpint (e->shape[2], ==, 3);
  g_assert_cmpint (e->shape[3], ==, 32);
  g_assert_cmpint (at_tensor_set_find (set, "Variable_1")->shape[0], ==, 32);
  g_assert_cmpint (at_tensor_set_find (set, "Variable_12")->ndim, ==, 4);

  /* Values against the files read with plain stdio. */
  for (guint i = 0; i < G_N_ELEMENTS (spot); i++)
    {
      g_autofree char *path = g_build_filename (dir, spot[i], NULL);
      g_autofree float *got = NULL, *want = NULL;
      FILE *f;

      e = at_tensor_set_find (set, spot[i]);
      got = g_new (float, e->numel);
      want = g_new (float, e->numel);
      g_assert_true (at_tensor_set_read_f32 (set, e, got, &error));
      g_assert_no_error (error);
      f = fopen (path, "rb");
      g_assert_nonnull (f);
      g_assert_cmpuint (fread (want, 4, (size_t)e->numel, f), ==, (gsize) e->numel);
      fclose (f);
      g_assert_cmpmem (got, e->numel * 4, want, e->numel * 4);
      g_assert_true (isfinite (got[0]) && isfinite (got[e->numel - 1]));
    }
}

static void
test_ml5_wave (void)
{
  check_style ("style/wave");
}

static void
test_ml5_udnie (void)
{
  check_style ("style/udnie");
}

static void
expect_bad_ml5 (const char *dir, const char *manifest, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtMl5) ml5 = NULL;

  write_in (dir, ".", "manifest.json", manifest);
  ml5 = at_ml5_open (dir, &error);
  g_assert_null (ml5);
  g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
  if (strstr (error->message, fragment) == NULL)
    g_error ("message \"%s\" lacks \"%s\"", error->message, fragment);
  g_test_message ("%s", error->message);
}

static void
test_ml5_small (void)
{
  g_autofree char *dir = tmp_path ("ml5");
  g_autoptr (GError) error = NULL;
  g_autoptr (AtMl5) ml5 = NULL;
  AtTensorSet *set;
  const float v[4] = { 1, 2, 3, 4 };
  const char *order[]
      = { "Variable", "Variable_1", "Variable_2", "Variable_10", "Variable_010b", "beta" };

  write_in (dir, ".", "Variable", "");
  for (guint i = 1; i < G_N_ELEMENTS (order); i++)
    {
      g_autofree char *path = g_build_filename (dir, order[i], NULL);

      write_file (path, v, sizeof v);
    }
  write_in (dir, ".", "manifest.json",
            "{\"beta\": {\"filename\": \"beta\", \"shape\": [4]},"
            " \"Variable_10\": {\"filename\": \"Variable_10\", \"shape\": [2, 2]},"
            " \"Variable_010b\": {\"filename\": \"Variable_010b\", \"shape\": [1, 1, 1, 4]},"
            " \"Variable_2\": {\"filename\": \"Variable_2\", \"shape\": [4]},"
            " \"Variable\": {\"filename\": \"Variable\", \"shape\": [0, 3]},"
            " \"Variable_1\": {\"filename\": \"Variable_1\", \"shape\": [4]}}");
  ml5 = at_ml5_open (dir, &error);
  g_assert_no_error (error);
  set = at_ml5_get_tensors (ml5);
  for (guint i = 0; i < G_N_ELEMENTS (order); i++)
    g_assert_cmpstr (at_tensor_set_get (set, i)->name, ==, order[i]);
  g_assert_cmpint (at_tensor_set_find (set, "Variable")->numel, ==, 0);
}

static void
test_ml5_hostile (void)
{
  g_autofree char *dir = tmp_path ("ml5-bad");
  g_autofree char *four = g_build_filename (dir, "four", NULL);
  const float v[4] = { 1, 2, 3, 4 };
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) manifest = NULL;
  g_autoptr (AtMl5) ml5 = NULL;
  const char *text = "{\"a\": {\"filename\": \"four\", \"shape\": [4]}}";

  write_in (dir, ".", "evil", "");
  write_file (four, v, sizeof v);
  expect_bad_ml5 (dir, "{\"a\": {\"filename\": \"four\", \"shape\": [2, 3]}}",
                  "four: variable \"a\" needs 24 bytes (6 float32 values) but the file has 16");
  expect_bad_ml5 (dir, "{\"a\": {\"filename\": \"four\", \"shape\": [3]}}", "needs 12 bytes");
  expect_bad_ml5 (dir, "{\"a\": {\"filename\": \"gone\", \"shape\": [4]}}",
                  "variable \"a\": file gone is missing");
  expect_bad_ml5 (dir, "{\"a\": {\"filename\": \"../ml5-bad/four\", \"shape\": [4]}}",
                  "no \"filename\"");
  expect_bad_ml5 (dir,
                  "{\"a\": {\"filename\": \"four\", \"shape\": [4]}, \"b\": {\"filename\": "
                  "\"four\", \"shape\": [4]}}",
                  "variables \"a\" and \"b\" both name file four");
  expect_bad_ml5 (dir, "{\"a\": {\"filename\": \"four\", \"shape\": [-4]}}", "dimension 0");
  expect_bad_ml5 (dir, "{\"a\": {\"filename\": \"four\", \"shape\": [4.0]}}", "dimension 0");
  expect_bad_ml5 (dir, "{\"a\": {\"filename\": \"four\"}}", "no \"shape\"");
  expect_bad_ml5 (dir, "{\"a\": {\"filename\": \"four\", \"shape\": [1,1,1,1,1,1,1,1,4]}}",
                  "no \"shape\"");
  expect_bad_ml5 (dir, "{\"a\": [\"four\"]}", "\"a\" is not a JSON object");
  expect_bad_ml5 (dir, "[]", "manifest.json: not a JSON object");
  expect_bad_ml5 (dir, "{\"a\": ", "does not parse");
  expect_bad_ml5 (dir,
                  "{\"a\": {\"filename\": \"four\", \"shape\": [4]}, \"a\": {\"filename\": \"x\", "
                  "\"shape\": [4]}}",
                  "appears twice");

  /* The fuzzer's entry point: a folder that does not exist fails at the first file. */
  manifest = g_bytes_new_static (text, strlen (text));
  ml5 = at_ml5_new_from_manifest_bytes (manifest, "/nonexistent/atelier", &error);
  g_assert_null (ml5);
  g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
  g_assert_nonnull (strstr (error->message, "file four is missing"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/formats/safetensors/ref-writer", test_ref_writer);
  g_test_add_func ("/formats/safetensors/small", test_small);
  g_test_add_func ("/formats/safetensors/empty-header", test_empty_header);
  g_test_add_func ("/formats/safetensors/hostile", test_hostile);
  g_test_add_func ("/formats/safetensors/hostile-length", test_hostile_length);
  g_test_add_func ("/formats/safetensors/deep-nesting", test_deep_nesting);
  g_test_add_func ("/formats/safetensors/truncated", test_truncated);
  g_test_add_func ("/formats/safetensors/sharded", test_sharded);
  g_test_add_func ("/formats/safetensors/sharded-hostile", test_sharded_hostile);
  g_test_add_func ("/formats/safetensors/diffusers", test_diffusers);
  g_test_add_func ("/formats/safetensors/diffusers-hostile", test_diffusers_hostile);
  g_test_add_func ("/formats/safetensors/ml5-wave", test_ml5_wave);
  g_test_add_func ("/formats/safetensors/ml5-udnie", test_ml5_udnie);
  g_test_add_func ("/formats/safetensors/ml5-small", test_ml5_small);
  g_test_add_func ("/formats/safetensors/ml5-hostile", test_ml5_hostile);
  return g_test_run ();
}
