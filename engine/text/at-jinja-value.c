/* at-jinja-value.c: the values of the chat-template Jinja subset (see at-jinja-eval.c for
 * their semantics): the arena they live in, errors, str() and repr() as Python prints them,
 * conversion from JSON, equality and ordering, `in`, and iteration. */
#include "at-jinja-private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "at-error.h"

/* ---- arena and values ---- */

void
j_value_free (gpointer data)
{
  JValue *v = data;

  if (v->kind == JV_STRING)
    g_free (v->str.s);
  else if (v->kind == JV_LIST)
    g_ptr_array_unref (v->list);
  else if (v->kind == JV_DICT || v->kind == JV_NAMESPACE)
    {
      g_ptr_array_unref (v->dict->keys);
      g_ptr_array_unref (v->dict->vals);
      g_clear_pointer (&v->dict->index, g_hash_table_unref);
      g_free (v->dict);
    }
  g_free (v->hint);
  g_free (v);
}

JArena *
j_arena_new (gsize limit)
{
  JArena *a = g_new0 (JArena, 1);

  a->values = g_ptr_array_new_with_free_func (j_value_free);
  a->limit = limit;
  return a;
}

void
j_arena_free (JArena *arena)
{
  if (arena == NULL)
    return;
  g_ptr_array_unref (arena->values);
  g_free (arena);
}

void
j_charge (JArena *a, gsize bytes)
{
  a->bytes += bytes;
  if (a->bytes > a->limit)
    a->over = TRUE;
}

JValue *
j_value_new (JArena *arena, JValueKind kind)
{
  JValue *v = g_new0 (JValue, 1);

  v->kind = kind;
  g_ptr_array_add (arena->values, v);
  j_charge (arena, sizeof (JValue) + 16);
  return v;
}

JValue *
j_string_new (JArena *arena, const char *s, gssize len)
{
  JValue *v = j_value_new (arena, JV_STRING);

  if (len < 0)
    len = strlen (s);
  v->str.s = g_strndup (s != NULL ? s : "", len);
  /* g_strndup stops at a NUL; strings from JSON may hold one. */
  if (s != NULL)
    memcpy (v->str.s, s, len);
  v->str.len = len;
  j_charge (arena, len);
  return v;
}

static guint
key_hash (gconstpointer p)
{
  const JValue *k = p;
  guint h = 5381;

  for (gsize i = 0; i < k->str.len; i++)
    h = h * 33 + (guchar) k->str.s[i];
  return h;
}

static gboolean
key_equal (gconstpointer a, gconstpointer b)
{
  const JValue *x = a, *y = b;

  return x->str.len == y->str.len && memcmp (x->str.s, y->str.s, x->str.len) == 0;
}

/* A dict outside any arena, for a loop iteration's scope: templates cannot reach a scope
 * itself (only the values in it), so it is freed as soon as the iteration ends. */
JValue *
j_scope_vars_new (void)
{
  JValue *v = g_new0 (JValue, 1);

  v->kind = JV_DICT;
  v->dict = g_new0 (JDict, 1);
  v->dict->keys = g_ptr_array_new ();
  v->dict->vals = g_ptr_array_new ();
  return v;
}

JValue *
j_dict_new (JArena *arena, JValueKind kind)
{
  JValue *v = j_value_new (arena, kind);

  v->dict = g_new0 (JDict, 1);
  v->dict->keys = g_ptr_array_new ();
  v->dict->vals = g_ptr_array_new ();
  return v;
}

JValue *
j_list_new (JArena *arena)
{
  JValue *v = j_value_new (arena, JV_LIST);

  v->list = g_ptr_array_new ();
  return v;
}

void
j_list_add (JArena *arena, JValue *list, JValue *item)
{
  g_ptr_array_add (list->list, item);
  j_charge (arena, sizeof (gpointer));
}

JValue *
j_dict_get (JValue *d, const char *key, gsize len)
{
  JValue k = { 0 };
  gpointer pos;

  k.kind = JV_STRING;
  k.str.s = (char *) key;
  k.str.len = len;
  if (d->dict->index == NULL)
    {
      for (guint i = 0; i < d->dict->keys->len; i++)
        if (key_equal (d->dict->keys->pdata[i], &k))
          return d->dict->vals->pdata[i];
      return NULL;
    }
  pos = g_hash_table_lookup (d->dict->index, &k);
  return pos != NULL ? d->dict->vals->pdata[GPOINTER_TO_UINT (pos) - 1] : NULL;
}

void
j_dict_set (JArena *arena, JValue *d, JValue *key, JValue *val)
{
  JDict *dict = d->dict;
  guint pos = 0;

  if (dict->index != NULL)
    pos = GPOINTER_TO_UINT (g_hash_table_lookup (dict->index, key));
  else
    for (guint i = 0; i < dict->keys->len && pos == 0; i++)
      if (key_equal (dict->keys->pdata[i], key))
        pos = i + 1;
  if (pos != 0)
    {
      dict->vals->pdata[pos - 1] = val;
      return;
    }
  g_ptr_array_add (dict->keys, key);
  g_ptr_array_add (dict->vals, val);
  if (dict->index == NULL && dict->keys->len > SMALL_DICT)
    {
      dict->index = g_hash_table_new (key_hash, key_equal);
      for (guint i = 0; i < dict->keys->len; i++)
        g_hash_table_insert (dict->index, dict->keys->pdata[i], GUINT_TO_POINTER (i + 1));
    }
  else if (dict->index != NULL)
    g_hash_table_insert (dict->index, key, GUINT_TO_POINTER (dict->keys->len));
  j_charge (arena, 64);
}

void
j_dict_set_name (R *r, JValue *d, const char *name, JValue *val)
{
  j_dict_set (r->arena, d, j_string_new (r->arena, name, -1), val);
}

/* ---- errors ---- */

JValue * G_GNUC_PRINTF (3, 4)
j_fail (R *r, int code, const char *format, ...)
{
  g_autofree char *msg = NULL;
  va_list ap;

  if (r->error != NULL)
    return NULL;
  va_start (ap, format);
  msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  if (code == AT_ERROR_INVALID)
    g_set_error_literal (&r->error, AT_ERROR, code, msg);
  else
    g_set_error (&r->error, AT_ERROR, code, "chat template:%d: %s", r->line, msg);
  return NULL;
}

/* Charges `n` steps of scanning; a template that searches a long string in every iteration
 * of a long loop allocates nothing, so memory alone would not bound its time. */
gboolean
j_spend (R *r, gsize n)
{
  r->work += n + 1;
  if (r->work > AT_JINJA_MAX_WORK)
    return j_fail (r, AT_ERROR_BAD_FILE, "rendering takes more than %llu steps",
                 (unsigned long long) AT_JINJA_MAX_WORK) != NULL;
  return TRUE;
}

gboolean
j_check_arena (R *r)
{
  if (r->arena->over)
    {
      j_fail (r, AT_ERROR_BAD_FILE, "rendering needs more than %u bytes of memory", AT_JINJA_MAX_MEMORY);
      return FALSE;
    }
  return r->error == NULL;
}

JValue *
j_mk_bool (R *r, gboolean b)
{
  JValue *v = j_value_new (r->arena, JV_BOOL);

  v->b = b ? TRUE : FALSE;
  return v;
}

JValue *
j_mk_int (R *r, gint64 i)
{
  JValue *v = j_value_new (r->arena, JV_INT);

  v->i = i;
  return v;
}

JValue *
j_mk_float (R *r, double f)
{
  JValue *v = j_value_new (r->arena, JV_FLOAT);

  v->f = f;
  return v;
}

JValue *
j_mk_str (R *r, const char *s, gssize len)
{
  return j_string_new (r->arena, s, len);
}

JValue *
j_mk_gstr (R *r, GString *s)
{
  JValue *v;

  if (s->len > AT_JINJA_MAX_OUTPUT)
    {
      g_string_free (s, TRUE);
      return j_fail (r, AT_ERROR_BAD_FILE, "a string longer than %u bytes", AT_JINJA_MAX_OUTPUT);
    }
  v = j_value_new (r->arena, JV_STRING);
  v->str.len = s->len;
  v->str.s = g_string_free (s, FALSE);
  j_charge (r->arena, v->str.len);
  return v;
}

JValue * G_GNUC_PRINTF (2, 3)
j_mk_undef (R *r, const char *format, ...)
{
  JValue *v = j_value_new (r->arena, JV_UNDEFINED);
  va_list ap;

  va_start (ap, format);
  v->hint = g_strdup_vprintf (format, ap);
  va_end (ap);
  return v;
}

const char *
j_type_name (const JValue *v)
{
  switch (v->kind)
    {
    case JV_UNDEFINED: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STRING: return "str";
    case JV_LIST: return v->is_tuple ? "tuple" : "list";
    case JV_DICT: return "dict";
    case JV_NAMESPACE: return "Namespace";
    case JV_MACRO: return "Macro";
    case JV_LOOP: return "LoopContext";
    default: return "builtin_function_or_method";
    }
}

JValue *
j_undefined_used (R *r, const JValue *v)
{
  return j_fail (r, AT_ERROR_BAD_FILE, "%s", v->hint != NULL ? v->hint : "undefined value used");
}

/* ---- conversions ---- */

gboolean
j_truthy (const JValue *v)
{
  switch (v->kind)
    {
    case JV_UNDEFINED:
    case JV_NONE: return FALSE;
    case JV_BOOL: return v->b;
    case JV_INT: return v->i != 0;
    case JV_FLOAT: return v->f != 0.0;
    case JV_STRING: return v->str.len > 0;
    case JV_LIST: return v->list->len > 0;
    case JV_DICT: return v->dict->keys->len > 0;
    default: return TRUE;
    }
}

/* Python's repr of a float: the shortest digits that read back the same, positional for
 * exponents in [-4, 16), scientific otherwise. */
void
j_append_float (GString *out, double f, gboolean json)
{
  char buf[64], digits[32];
  int exp10, nd = 0;
  const char *e;

  if (isnan (f))
    {
      g_string_append (out, json ? "NaN" : "nan");
      return;
    }
  if (isinf (f))
    {
      g_string_append (out, f < 0 ? (json ? "-Infinity" : "-inf") : (json ? "Infinity" : "inf"));
      return;
    }
  for (int prec = 1; prec <= 17; prec++)
    {
      char format[16];

      snprintf (format, sizeof format, "%%.%de", prec - 1);
      g_ascii_formatd (buf, sizeof buf, format, f);
      if (g_ascii_strtod (buf, NULL) == f)
        break;
    }
  /* buf: [-]d[.ddd]e(+|-)xx (g_ascii_formatd: a '.' whatever the locale). */
  if (f < 0 || (f == 0 && signbit (f)))
    g_string_append_c (out, '-');
  e = strchr (buf, 'e');
  for (const char *c = buf; c < e; c++)
    if (g_ascii_isdigit (*c))
      digits[nd++] = *c;
  while (nd > 1 && digits[nd - 1] == '0')
    nd--;
  exp10 = atoi (e + 1);
  if (exp10 >= -4 && exp10 < 16)
    {
      if (exp10 >= 0)
        {
          for (int i = 0; i <= exp10; i++)
            g_string_append_c (out, i < nd ? digits[i] : '0');
          g_string_append_c (out, '.');
          if (nd > exp10 + 1)
            g_string_append_len (out, digits + exp10 + 1, nd - exp10 - 1);
          else
            g_string_append_c (out, '0');
        }
      else
        {
          g_string_append (out, "0.");
          for (int i = 0; i < -exp10 - 1; i++)
            g_string_append_c (out, '0');
          g_string_append_len (out, digits, nd);
        }
      return;
    }
  g_string_append_c (out, digits[0]);
  if (nd > 1)
    {
      g_string_append_c (out, '.');
      g_string_append_len (out, digits + 1, nd - 1);
    }
  g_string_append_printf (out, "e%c%02d", exp10 < 0 ? '-' : '+', ABS (exp10));
}

static gboolean
py_printable (gunichar c)
{
  if (c == ' ')
    return TRUE;
  switch (g_unichar_type (c))
    {
    case G_UNICODE_CONTROL:
    case G_UNICODE_FORMAT:
    case G_UNICODE_UNASSIGNED:
    case G_UNICODE_PRIVATE_USE:
    case G_UNICODE_SURROGATE:
    case G_UNICODE_LINE_SEPARATOR:
    case G_UNICODE_PARAGRAPH_SEPARATOR:
    case G_UNICODE_SPACE_SEPARATOR:
      return FALSE;
    default:
      return TRUE;
    }
}

static void
append_repr_string (GString *out, const char *s, gsize len)
{
  gboolean has_single = memchr (s, '\'', len) != NULL, has_double = memchr (s, '"', len) != NULL;
  char quote = has_single && !has_double ? '"' : '\'';
  const char *p = s, *end = s + len;

  g_string_append_c (out, quote);
  while (p < end)
    {
      gunichar c = g_utf8_get_char_validated (p, end - p);
      const char *next;

      if (c == (gunichar) -1 || c == (gunichar) -2)
        {
          g_string_append_printf (out, "\\x%02x", (guchar) *p++);
          continue;
        }
      next = g_utf8_next_char (p);
      if (c == (gunichar) quote || c == '\\')
        {
          g_string_append_c (out, '\\');
          g_string_append_c (out, (char) c);
        }
      else if (c == '\n')
        g_string_append (out, "\\n");
      else if (c == '\r')
        g_string_append (out, "\\r");
      else if (c == '\t')
        g_string_append (out, "\\t");
      else if (!py_printable (c))
        g_string_append_printf (out, c < 0x100 ? "\\x%02x" : c < 0x10000 ? "\\u%04x" : "\\U%08x", c);
      else
        g_string_append_len (out, p, next - p);
      p = next;
    }
  g_string_append_c (out, quote);
}

static gboolean
append_dict_repr (R *r, GString *out, const JValue *v, int depth)
{
  JDict *d = v->dict;

  if (v->kind == JV_NAMESPACE)
    g_string_append (out, "<Namespace ");
  g_string_append_c (out, '{');
  for (guint i = 0; i < d->keys->len; i++)
    {
      if (i > 0)
        g_string_append (out, ", ");
      if (!j_append_str (r, out, d->keys->pdata[i], TRUE, depth + 1))
        return FALSE;
      g_string_append (out, ": ");
      if (!j_append_str (r, out, d->vals->pdata[i], TRUE, depth + 1))
        return FALSE;
    }
  g_string_append_c (out, '}');
  if (v->kind == JV_NAMESPACE)
    g_string_append_c (out, '>');
  return TRUE;
}

/* Python's str() (repr FALSE) or repr() of `v`. */
gboolean
j_append_str (R *r, GString *out, const JValue *v, gboolean repr, int depth)
{
  if (depth > AT_JINJA_MAX_DEPTH || out->len > AT_JINJA_MAX_OUTPUT)
    {
      j_fail (r, AT_ERROR_BAD_FILE, "a value too deep or too long to print");
      return FALSE;
    }
  switch (v->kind)
    {
    case JV_UNDEFINED: g_string_append (out, repr ? "Undefined" : ""); break;
    case JV_NONE: g_string_append (out, "None"); break;
    case JV_BOOL: g_string_append (out, v->b ? "True" : "False"); break;
    case JV_INT: g_string_append_printf (out, "%" G_GINT64_FORMAT, v->i); break;
    case JV_FLOAT: j_append_float (out, v->f, FALSE); break;
    case JV_STRING:
      if (repr)
        append_repr_string (out, v->str.s, v->str.len);
      else
        g_string_append_len (out, v->str.s, v->str.len);
      break;
    case JV_LIST:
      g_string_append_c (out, v->is_tuple ? '(' : '[');
      for (guint i = 0; i < v->list->len; i++)
        {
          if (i > 0)
            g_string_append (out, ", ");
          if (!j_append_str (r, out, v->list->pdata[i], TRUE, depth + 1))
            return FALSE;
        }
      if (v->is_tuple && v->list->len == 1)
        g_string_append_c (out, ',');
      g_string_append_c (out, v->is_tuple ? ')' : ']');
      break;
    case JV_DICT:
    case JV_NAMESPACE:
      return append_dict_repr (r, out, v, depth);
    default:
      j_fail (r, AT_ERROR_UNSUPPORTED, "printing a %s is not supported", j_type_name (v));
      return FALSE;
    }
  return TRUE;
}

JValue *
j_to_string (R *r, JValue *v)
{
  GString *s;

  if (v->kind == JV_STRING)
    return v;
  s = g_string_new (NULL);
  if (!j_append_str (r, s, v, FALSE, 0))
    {
      g_string_free (s, TRUE);
      return NULL;
    }
  return j_mk_gstr (r, s);
}

JValue *
j_from_json (R *r, JsonNode *node, int depth)
{
  JValue *v;

  if (depth > AT_JINJA_MAX_DEPTH)
    return j_fail (r, AT_ERROR_INVALID, "chat template context nested deeper than %d", AT_JINJA_MAX_DEPTH);
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_NULL: return j_value_new (r->arena, JV_NONE);
    case JSON_NODE_ARRAY:
      {
        JsonArray *a = json_node_get_array (node);

        v = j_list_new (r->arena);
        for (guint i = 0; i < json_array_get_length (a); i++)
          {
            JValue *item = j_from_json (r, json_array_get_element (a, i), depth + 1);

            if (item == NULL)
              return NULL;
            j_list_add (r->arena, v, item);
          }
        return v;
      }
    case JSON_NODE_OBJECT:
      {
        JsonObject *o = json_node_get_object (node);
        JsonObjectIter it;
        const char *name;
        JsonNode *member;

        v = j_dict_new (r->arena, JV_DICT);
        json_object_iter_init_ordered (&it, o);
        while (json_object_iter_next_ordered (&it, &name, &member))
          {
            JValue *item = j_from_json (r, member, depth + 1);

            if (item == NULL)
              return NULL;
            j_dict_set_name (r, v, name, item);
          }
        return v;
      }
    default:
      break;
    }
  switch (json_node_get_value_type (node))
    {
    case G_TYPE_BOOLEAN: return j_mk_bool (r, json_node_get_boolean (node));
    case G_TYPE_INT64: return j_mk_int (r, json_node_get_int (node));
    case G_TYPE_DOUBLE: return j_mk_float (r, json_node_get_double (node));
    case G_TYPE_STRING: return j_mk_str (r, json_node_get_string (node), -1);
    default: return j_fail (r, AT_ERROR_INVALID, "chat template context holds a value of an unknown type");
    }
}

/* The first occurrence of needle in hay (glibc's memmem needs _GNU_SOURCE). */
const char *
j_find_bytes (const char *hay, gsize n, const char *needle, gsize m)
{
  if (m == 0)
    return hay;
  while (n >= m)
    {
      const char *p = memchr (hay, needle[0], n - m + 1);

      if (p == NULL)
        return NULL;
      if (memcmp (p, needle, m) == 0)
        return p;
      n -= p + 1 - hay;
      hay = p + 1;
    }
  return NULL;
}

/* ---- comparison ---- */

gboolean
j_is_number (const JValue *v)
{
  return v->kind == JV_INT || v->kind == JV_FLOAT || v->kind == JV_BOOL;
}

double
j_num_f (const JValue *v)
{
  return v->kind == JV_FLOAT ? v->f : v->kind == JV_INT ? (double) v->i : (double) v->b;
}

gint64
j_num_i (const JValue *v)
{
  return v->kind == JV_INT ? v->i : (gint64) v->b;
}

gboolean
j_values_equal (const JValue *a, const JValue *b, int depth)
{
  if (depth > AT_JINJA_MAX_DEPTH)
    return FALSE;
  if (j_is_number (a) && j_is_number (b))
    {
      if (a->kind != JV_FLOAT && b->kind != JV_FLOAT)
        return j_num_i (a) == j_num_i (b);
      return j_num_f (a) == j_num_f (b);
    }
  if (a->kind != b->kind)
    return FALSE;
  switch (a->kind)
    {
    case JV_UNDEFINED:
    case JV_NONE: return TRUE;
    case JV_STRING: return a->str.len == b->str.len && memcmp (a->str.s, b->str.s, a->str.len) == 0;
    case JV_LIST:
      if (a->is_tuple != b->is_tuple || a->list->len != b->list->len)
        return FALSE;
      for (guint i = 0; i < a->list->len; i++)
        if (!j_values_equal (a->list->pdata[i], b->list->pdata[i], depth + 1))
          return FALSE;
      return TRUE;
    case JV_DICT:
      if (a->dict->keys->len != b->dict->keys->len)
        return FALSE;
      for (guint i = 0; i < a->dict->keys->len; i++)
        {
          JValue *k = a->dict->keys->pdata[i];
          JValue *other = j_dict_get ((JValue *) b, k->str.s, k->str.len);

          if (other == NULL || !j_values_equal (a->dict->vals->pdata[i], other, depth + 1))
            return FALSE;
        }
      return TRUE;
    default:
      return a == b;
    }
}

/* Ordering (<0, 0, >0); FALSE after an error for types Python cannot order. */
gboolean
j_values_order (R *r, const JValue *a, const JValue *b, int *out, int depth)
{
  if (depth > AT_JINJA_MAX_DEPTH)
    return j_fail (r, AT_ERROR_BAD_FILE, "values too deep to compare") != NULL;
  if (j_is_number (a) && j_is_number (b))
    {
      if (a->kind != JV_FLOAT && b->kind != JV_FLOAT)
        *out = j_num_i (a) < j_num_i (b) ? -1 : j_num_i (a) > j_num_i (b);
      else
        *out = j_num_f (a) < j_num_f (b) ? -1 : j_num_f (a) > j_num_f (b);
      return TRUE;
    }
  if (a->kind == JV_STRING && b->kind == JV_STRING)
    {
      int c = memcmp (a->str.s, b->str.s, MIN (a->str.len, b->str.len));

      *out = c != 0 ? c : a->str.len < b->str.len ? -1 : a->str.len > b->str.len;
      return TRUE;
    }
  if (a->kind == JV_LIST && b->kind == JV_LIST && a->is_tuple == b->is_tuple)
    {
      for (guint i = 0; i < MIN (a->list->len, b->list->len); i++)
        {
          if (j_values_equal (a->list->pdata[i], b->list->pdata[i], depth + 1))
            continue;
          return j_values_order (r, a->list->pdata[i], b->list->pdata[i], out, depth + 1);
        }
      *out = a->list->len < b->list->len ? -1 : a->list->len > b->list->len;
      return TRUE;
    }
  j_fail (r, AT_ERROR_BAD_FILE, "'<' not supported between instances of '%s' and '%s'",
        j_type_name (a), j_type_name (b));
  return FALSE;
}

gsize
j_utf8_len (const JValue *s)
{
  return g_utf8_strlen (s->str.s, s->str.len);
}

/* `needle in hay`: TRUE/FALSE in *out, FALSE return after an error. */
gboolean
j_contains (R *r, JValue *hay, JValue *needle, gboolean *out)
{
  if (!j_spend (r, hay->kind == JV_STRING ? hay->str.len : hay->kind == JV_LIST ? hay->list->len : 0))
    return FALSE;
  switch (hay->kind)
    {
    case JV_UNDEFINED:
      *out = FALSE;
      return TRUE;
    case JV_STRING:
      if (needle->kind != JV_STRING)
        return j_fail (r, AT_ERROR_BAD_FILE, "'in <string>' requires string as left operand, not %s",
                     j_type_name (needle)) != NULL;
      *out = needle->str.len == 0
             || (needle->str.len <= hay->str.len
                 && j_find_bytes (hay->str.s, hay->str.len, needle->str.s, needle->str.len) != NULL);
      return TRUE;
    case JV_LIST:
      *out = FALSE;
      for (guint i = 0; i < hay->list->len && !*out; i++)
        *out = j_values_equal (hay->list->pdata[i], needle, 0);
      return TRUE;
    case JV_DICT:
    case JV_NAMESPACE:
      *out = needle->kind == JV_STRING && j_dict_get (hay, needle->str.s, needle->str.len) != NULL;
      return TRUE;
    default:
      return j_fail (r, AT_ERROR_BAD_FILE, "argument of type '%s' is not iterable", j_type_name (hay)) != NULL;
    }
}

/* The items a for loop or a filter walks: a list's items, a dict's keys, a string's
 * characters, nothing for undefined. NULL after an error. */
GPtrArray *
j_iterate (R *r, JValue *v)
{
  GPtrArray *items;

  if (!j_spend (r, v->kind == JV_STRING ? v->str.len : v->kind == JV_LIST ? v->list->len : 0))
    return NULL;
  items = g_ptr_array_new ();
  switch (v->kind)
    {
    case JV_UNDEFINED:
      break;
    case JV_LIST:
      g_ptr_array_extend (items, v->list, NULL, NULL);
      break;
    case JV_DICT:
      g_ptr_array_extend (items, v->dict->keys, NULL, NULL);
      break;
    case JV_STRING:
      for (const char *p = v->str.s; p < v->str.s + v->str.len; p = g_utf8_next_char (p))
        g_ptr_array_add (items, j_mk_str (r, p, g_utf8_next_char (p) - p));
      break;
    default:
      g_ptr_array_unref (items);
      j_fail (r, AT_ERROR_BAD_FILE, "'%s' object is not iterable", j_type_name (v));
      return NULL;
    }
  j_charge (r->arena, items->len * sizeof (gpointer));
  return items;
}

JValue *
j_list_from (R *r, GPtrArray *items, gboolean tuple)
{
  JValue *l = j_list_new (r->arena);

  l->is_tuple = tuple;
  g_ptr_array_extend (l->list, items, NULL, NULL);
  j_charge (r->arena, items->len * sizeof (gpointer));
  return l;
}
