/* at-jinja-builtins.c: what the chat-template Jinja subset can call: the str and dict
 * methods, attribute / item / slice access with jinja2's rules, the tests (`is defined`...),
 * the filters, tojson as transformers defines it, and strftime_now. Python's behaviour is
 * the reference for each (str.split, str.strip, json.dumps...). */
#include "at-jinja-private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "at-error.h"

/* ---- arguments ---- */


/* Positional `i` or keyword `name`; NULL when not given. */
JValue *
j_arg_get (const Args *a, guint i, const char *name)
{
  if (i < a->n_pos)
    return a->pos[i];
  for (guint k = 0; name != NULL && k < a->n_kw; k++)
    if (strcmp (a->kw_names[k], name) == 0)
      return a->kw[k];
  return NULL;
}

/* At most `max_pos` positional arguments, keywords only from `names` (NULL-terminated, the
 * parameters in order: a keyword may not repeat a positional one). */
static gboolean
args_check (R *r, const Args *a, const char *what, const char *const *names)
{
  guint n_names = names != NULL ? g_strv_length ((char **) names) : 0;

  if (a->n_pos > n_names)
    return j_fail (r, AT_ERROR_BAD_FILE, "%s takes at most %u arguments (%u given)", what, n_names,
                 a->n_pos) != NULL;
  for (guint k = 0; k < a->n_kw; k++)
    {
      gboolean known = FALSE;

      for (guint j = 0; j < n_names; j++)
        if (strcmp (names[j], a->kw_names[k]) == 0)
          {
            if (j < a->n_pos)
              return j_fail (r, AT_ERROR_BAD_FILE, "%s got multiple values for '%s'", what, names[j]) != NULL;
            known = TRUE;
          }
      if (!known)
        return j_fail (r, AT_ERROR_UNSUPPORTED, "%s: keyword argument '%s' is not supported", what,
                     a->kw_names[k]) != NULL;
    }
  return TRUE;
}

static gboolean
want_string (R *r, JValue *v, const char *what)
{
  if (v != NULL && v->kind != JV_STRING)
    return j_fail (r, AT_ERROR_BAD_FILE, "%s expects a string, not '%s'", what, j_type_name (v)) != NULL;
  return TRUE;
}

gboolean
j_want_int (R *r, JValue *v, const char *what, gint64 *out)
{
  if (v->kind != JV_INT && v->kind != JV_BOOL)
    return j_fail (r, AT_ERROR_BAD_FILE, "%s expects an integer, not '%s'", what, j_type_name (v)) != NULL;
  *out = j_num_i (v);
  return TRUE;
}

/* ---- strings ---- */

/* The code points of `chars` (NULL: Python's whitespace). */
static gboolean
in_set (gunichar c, const JValue *chars)
{
  if (chars == NULL || chars->kind == JV_NONE)
    {
      return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0
             || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029
             || c == 0x202f || c == 0x205f || c == 0x3000;
    }
  for (const char *p = chars->str.s; p < chars->str.s + chars->str.len; p = g_utf8_next_char (p))
    if (g_utf8_get_char (p) == c)
      return TRUE;
  return FALSE;
}

static JValue *
str_strip (R *r, JValue *s, JValue *chars, gboolean left, gboolean right)
{
  const char *b = s->str.s, *e = s->str.s + s->str.len;

  if (chars != NULL && chars->kind != JV_NONE && !want_string (r, chars, "strip"))
    return NULL;
  while (left && b < e && in_set (g_utf8_get_char (b), chars))
    b = g_utf8_next_char (b);
  while (right && e > b)
    {
      const char *q = g_utf8_prev_char (e);

      if (!in_set (g_utf8_get_char (q), chars))
        break;
      e = q;
    }
  return j_mk_str (r, b, e - b);
}

static JValue *
str_split (R *r, JValue *s, JValue *sep, JValue *maxsplit_v)
{
  JValue *out = j_list_new (r->arena);
  const char *p = s->str.s, *end = s->str.s + s->str.len;
  gint64 maxsplit = -1;

  if (maxsplit_v != NULL && !j_want_int (r, maxsplit_v, "split", &maxsplit))
    return NULL;
  if (sep == NULL || sep->kind == JV_NONE)
    {
      while (TRUE)
        {
          const char *w;

          while (p < end && in_set (g_utf8_get_char (p), NULL))
            p = g_utf8_next_char (p);
          if (p >= end)
            break;
          if (maxsplit == 0)
            {
              const char *e = end;

              while (e > p && in_set (g_utf8_get_char (g_utf8_prev_char (e)), NULL))
                e = g_utf8_prev_char (e);
              j_list_add (r->arena, out, j_mk_str (r, p, e - p));
              break;
            }
          w = p;
          while (p < end && !in_set (g_utf8_get_char (p), NULL))
            p = g_utf8_next_char (p);
          j_list_add (r->arena, out, j_mk_str (r, w, p - w));
          if (maxsplit > 0)
            maxsplit--;
        }
      return out;
    }
  if (!want_string (r, sep, "split"))
    return NULL;
  if (sep->str.len == 0)
    return j_fail (r, AT_ERROR_BAD_FILE, "split: empty separator");
  while (TRUE)
    {
      const char *hit = maxsplit == 0 ? NULL : j_find_bytes (p, end - p, sep->str.s, sep->str.len);

      if (hit == NULL)
        {
          j_list_add (r->arena, out, j_mk_str (r, p, end - p));
          break;
        }
      j_list_add (r->arena, out, j_mk_str (r, p, hit - p));
      p = hit + sep->str.len;
      if (maxsplit > 0)
        maxsplit--;
      if (!j_check_arena (r))
        return NULL;
    }
  return out;
}

static gboolean
affix_match (JValue *s, JValue *affix, gboolean start)
{
  if (affix->str.len > s->str.len)
    return FALSE;
  return memcmp (start ? s->str.s : s->str.s + s->str.len - affix->str.len, affix->str.s,
                 affix->str.len) == 0;
}

static JValue *
str_affix (R *r, JValue *s, JValue *affix, gboolean start)
{
  const char *what = start ? "startswith" : "endswith";

  if (affix == NULL)
    return j_fail (r, AT_ERROR_BAD_FILE, "%s needs an argument", what);
  if (affix->kind == JV_LIST && affix->is_tuple)
    {
      for (guint i = 0; i < affix->list->len; i++)
        {
          if (!want_string (r, affix->list->pdata[i], what))
            return NULL;
          if (affix_match (s, affix->list->pdata[i], start))
            return j_mk_bool (r, TRUE);
        }
      return j_mk_bool (r, FALSE);
    }
  if (!want_string (r, affix, what))
    return NULL;
  return j_mk_bool (r, affix_match (s, affix, start));
}

static JValue *
str_replace (R *r, JValue *s, JValue *old, JValue *new, JValue *count_v)
{
  GString *out = g_string_new (NULL);
  const char *p = s->str.s, *end = s->str.s + s->str.len;
  gint64 count = -1;

  if (old == NULL || new == NULL)
    {
      g_string_free (out, TRUE);
      return j_fail (r, AT_ERROR_BAD_FILE, "replace needs two arguments");
    }
  if (!want_string (r, old, "replace") || !want_string (r, new, "replace")
      || (count_v != NULL && count_v->kind != JV_NONE && !j_want_int (r, count_v, "replace", &count)))
    {
      g_string_free (out, TRUE);
      return NULL;
    }
  if (old->str.len == 0)
    {
      /* Python inserts `new` before every character and at the end. */
      while (count != 0)
        {
          g_string_append_len (out, new->str.s, new->str.len);
          if (count > 0)
            count--;
          if (p >= end || out->len > AT_JINJA_MAX_OUTPUT)
            break;
          g_string_append_len (out, p, g_utf8_next_char (p) - p);
          p = g_utf8_next_char (p);
        }
      g_string_append_len (out, p, end - p);
      return j_mk_gstr (r, out);
    }
  while (p <= end && out->len <= AT_JINJA_MAX_OUTPUT)
    {
      const char *hit = count == 0 ? NULL : j_find_bytes (p, end - p, old->str.s, old->str.len);

      if (hit == NULL)
        {
          g_string_append_len (out, p, end - p);
          break;
        }
      g_string_append_len (out, p, hit - p);
      g_string_append_len (out, new->str.s, new->str.len);
      p = hit + old->str.len;
      if (count > 0)
        count--;
    }
  return j_mk_gstr (r, out);
}

static JValue *
str_case (R *r, JValue *s, int mode)
{
  char *t;
  JValue *v;

  if (mode == 0)
    t = g_utf8_strup (s->str.s, s->str.len);
  else if (mode == 1)
    t = g_utf8_strdown (s->str.s, s->str.len);
  else
    {
      /* capitalize: the first character title case, the rest lower case. */
      GString *out = g_string_new (NULL);
      g_autofree char *rest = NULL;

      if (s->str.len > 0)
        {
          const char *next = g_utf8_next_char (s->str.s);

          g_string_append_unichar (out, g_unichar_totitle (g_utf8_get_char (s->str.s)));
          rest = g_utf8_strdown (next, s->str.s + s->str.len - next);
          g_string_append (out, rest);
        }
      return j_mk_gstr (r, out);
    }
  v = j_mk_str (r, t, -1);
  g_free (t);
  return v;
}

/* jinja2's title filter: each word (split at whitespace, '-', and opening brackets) gets an
 * upper-case first character and the rest lower case. */
static JValue *
str_title (R *r, JValue *s)
{
  GString *out = g_string_new (NULL);
  gboolean start = TRUE;

  for (const char *p = s->str.s; p < s->str.s + s->str.len; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      gboolean sep = in_set (c, NULL) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';

      if (sep)
        g_string_append_unichar (out, c);
      else
        g_string_append_unichar (out, start ? g_unichar_toupper (c) : g_unichar_tolower (c));
      start = sep;
    }
  return j_mk_gstr (r, out);
}

/* Python's str.join over the str() of each item. */
static JValue *
join_items (R *r, GPtrArray *items, JValue *sep, JValue *attr);

/* ---- JSON (transformers' tojson: json.dumps, ensure_ascii=False) ---- */

typedef struct
{
  const char *indent; /* NULL: one line */
  const char *item_sep;
  const char *key_sep;
  gboolean sort_keys;
} JsonStyle;

static void
append_json_string (GString *out, const char *s, gsize len)
{
  g_string_append_c (out, '"');
  for (gsize i = 0; i < len; i++)
    {
      guchar c = s[i];

      switch (c)
        {
        case '"': g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        case '\b': g_string_append (out, "\\b"); break;
        case '\f': g_string_append (out, "\\f"); break;
        default:
          if (c < 0x20)
            g_string_append_printf (out, "\\u%04x", c);
          else
            g_string_append_c (out, c);
        }
    }
  g_string_append_c (out, '"');
}

static void
json_newline (GString *out, const JsonStyle *st, int level)
{
  g_string_append_c (out, '\n');
  for (int i = 0; i < level; i++)
    g_string_append (out, st->indent);
}

static int
key_cmp (gconstpointer a, gconstpointer b)
{
  const JValue *x = *(JValue *const *) a, *y = *(JValue *const *) b;
  int c = memcmp (x->str.s, y->str.s, MIN (x->str.len, y->str.len));

  return c != 0 ? c : x->str.len < y->str.len ? -1 : x->str.len > y->str.len;
}

static gboolean
append_json (R *r, GString *out, JValue *v, const JsonStyle *st, int level)
{
  guint n;

  if (level > AT_JINJA_MAX_DEPTH || out->len > AT_JINJA_MAX_OUTPUT)
    return j_fail (r, AT_ERROR_BAD_FILE, "tojson: a value too deep or too long") != NULL;
  switch (v->kind)
    {
    case JV_NONE: g_string_append (out, "null"); return TRUE;
    case JV_BOOL: g_string_append (out, v->b ? "true" : "false"); return TRUE;
    case JV_INT: g_string_append_printf (out, "%" G_GINT64_FORMAT, v->i); return TRUE;
    case JV_FLOAT: j_append_float (out, v->f, TRUE); return TRUE;
    case JV_STRING: append_json_string (out, v->str.s, v->str.len); return TRUE;
    case JV_LIST:
      n = v->list->len;
      g_string_append_c (out, '[');
      for (guint i = 0; i < n; i++)
        {
          if (i > 0)
            g_string_append (out, st->item_sep);
          if (st->indent != NULL)
            json_newline (out, st, level + 1);
          if (!append_json (r, out, v->list->pdata[i], st, level + 1))
            return FALSE;
        }
      if (st->indent != NULL && n > 0)
        json_newline (out, st, level);
      g_string_append_c (out, ']');
      return TRUE;
    case JV_DICT:
      {
        g_autoptr (GPtrArray) keys = g_ptr_array_copy (v->dict->keys, NULL, NULL);

        if (st->sort_keys)
          g_ptr_array_sort (keys, key_cmp);
        g_string_append_c (out, '{');
        for (guint i = 0; i < keys->len; i++)
          {
            JValue *k = keys->pdata[i];

            if (i > 0)
              g_string_append (out, st->item_sep);
            if (st->indent != NULL)
              json_newline (out, st, level + 1);
            append_json_string (out, k->str.s, k->str.len);
            g_string_append (out, st->key_sep);
            if (!append_json (r, out, j_dict_get (v, k->str.s, k->str.len), st, level + 1))
              return FALSE;
          }
        if (st->indent != NULL && keys->len > 0)
          json_newline (out, st, level);
        g_string_append_c (out, '}');
        return TRUE;
      }
    default:
      return j_fail (r, AT_ERROR_BAD_FILE, "Object of type %s is not JSON serializable", j_type_name (v)) != NULL;
    }
}

static JValue *
filter_tojson (R *r, JValue *v, const Args *a)
{
  static const char *const names[] = { "ensure_ascii", "indent", "separators", "sort_keys", NULL };
  JValue *ensure = j_arg_get (a, 0, "ensure_ascii"), *indent = j_arg_get (a, 1, "indent");
  JValue *seps = j_arg_get (a, 2, "separators"), *sort = j_arg_get (a, 3, "sort_keys");
  g_autofree char *indent_str = NULL;
  JsonStyle st = { NULL, ", ", ": ", FALSE };
  GString *out;

  if (!args_check (r, a, "tojson", names))
    return NULL;
  if (ensure != NULL && j_truthy (ensure))
    return j_fail (r, AT_ERROR_UNSUPPORTED, "tojson(ensure_ascii=true) is not supported");
  if (indent != NULL && indent->kind != JV_NONE)
    {
      if (indent->kind == JV_STRING)
        indent_str = g_strdup (indent->str.s);
      else if (indent->kind == JV_INT)
        indent_str = g_strnfill (CLAMP (indent->i, 0, 64), ' ');
      else
        return j_fail (r, AT_ERROR_BAD_FILE, "tojson: indent must be an integer or a string");
      st.indent = indent_str;
      st.item_sep = ",";
    }
  if (seps != NULL && seps->kind != JV_NONE)
    {
      if (seps->kind != JV_LIST || seps->list->len != 2
          || ((JValue *) seps->list->pdata[0])->kind != JV_STRING
          || ((JValue *) seps->list->pdata[1])->kind != JV_STRING)
        return j_fail (r, AT_ERROR_BAD_FILE, "tojson: separators must be two strings");
      st.item_sep = ((JValue *) seps->list->pdata[0])->str.s;
      st.key_sep = ((JValue *) seps->list->pdata[1])->str.s;
    }
  st.sort_keys = sort != NULL && j_truthy (sort);
  out = g_string_new (NULL);
  if (!append_json (r, out, v, &st, 0))
    {
      g_string_free (out, TRUE);
      return NULL;
    }
  return j_mk_gstr (r, out);
}

/* ---- strftime_now ---- */

JValue *
j_strftime_now (R *r, JValue *fmt)
{
  static const char *const months[] = { "January", "February", "March", "April", "May", "June", "July",
                                        "August", "September", "October", "November", "December" };
  static const char *const days[] = { "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                      "Saturday", "Sunday" };
  g_autoptr (GDateTime) now = r->t->now != NULL ? g_date_time_ref (r->t->now) : g_date_time_new_now_local ();
  GString *out;

  if (fmt == NULL || !want_string (r, fmt, "strftime_now"))
    return fmt == NULL ? j_fail (r, AT_ERROR_BAD_FILE, "strftime_now needs a format") : NULL;
  out = g_string_new (NULL);
  for (gsize i = 0; i < fmt->str.len; i++)
    {
      char c = fmt->str.s[i];
      gboolean pad = TRUE;
      int num = -1, width = 2;

      if (c != '%' || i + 1 >= fmt->str.len)
        {
          g_string_append_c (out, c);
          continue;
        }
      c = fmt->str.s[++i];
      if (c == '-' && i + 1 < fmt->str.len)
        {
          pad = FALSE;
          c = fmt->str.s[++i];
        }
      switch (c)
        {
        case 'Y': num = g_date_time_get_year (now); width = 4; break;
        case 'y': num = g_date_time_get_year (now) % 100; break;
        case 'm': num = g_date_time_get_month (now); break;
        case 'd': num = g_date_time_get_day_of_month (now); break;
        case 'e': g_string_append_printf (out, "%2d", g_date_time_get_day_of_month (now)); break;
        case 'H': num = g_date_time_get_hour (now); break;
        case 'I': num = (g_date_time_get_hour (now) + 11) % 12 + 1; break;
        case 'M': num = g_date_time_get_minute (now); break;
        case 'S': num = g_date_time_get_second (now); break;
        case 'j': num = g_date_time_get_day_of_year (now); width = 3; break;
        case 'p': g_string_append (out, g_date_time_get_hour (now) < 12 ? "AM" : "PM"); break;
        case 'b': g_string_append_len (out, months[g_date_time_get_month (now) - 1], 3); break;
        case 'B': g_string_append (out, months[g_date_time_get_month (now) - 1]); break;
        case 'a': g_string_append_len (out, days[g_date_time_get_day_of_week (now) - 1], 3); break;
        case 'A': g_string_append (out, days[g_date_time_get_day_of_week (now) - 1]); break;
        case '%': g_string_append_c (out, '%'); break;
        default:
          g_string_free (out, TRUE);
          return j_fail (r, AT_ERROR_UNSUPPORTED, "strftime_now: the format '%%%c' is not supported", c);
        }
      if (num >= 0)
        g_string_append_printf (out, "%0*d", pad ? width : 1, num);
    }
  return j_mk_gstr (r, out);
}

/* ---- attributes, items, slices ---- */

static const char *const str_methods[] = { "strip", "lstrip", "rstrip", "split", "startswith", "endswith",
                                           "upper", "lower", "replace", "capitalize", "title", "find",
                                           "count", "join", NULL };
static const char *const dict_methods[] = { "items", "keys", "values", "get", NULL };
/* Methods that would change a value: the immutable sandbox refuses them. */
static const char *const mutating[] = { "append", "extend", "insert", "pop", "remove", "sort", "reverse",
                                        "clear", "update", "setdefault", "popitem", "add", "discard", NULL };

static JValue *
method (R *r, JValue *self, const char *name)
{
  JValue *m = j_value_new (r->arena, JV_METHOD);

  m->fn.self = self;
  m->fn.name = name;
  return m;
}

static gboolean
in_list (const char *const *list, const char *name)
{
  for (guint i = 0; list[i] != NULL; i++)
    if (strcmp (list[i], name) == 0)
      return TRUE;
  return FALSE;
}

/* A method of `obj` named `name`, or NULL (no error) when there is none. */
static JValue *
find_method (R *r, JValue *obj, const char *name)
{
  const char *const *list = obj->kind == JV_STRING ? str_methods : obj->kind == JV_DICT ? dict_methods : NULL;

  if (list != NULL)
    for (guint i = 0; list[i] != NULL; i++)
      if (strcmp (list[i], name) == 0)
        return method (r, obj, list[i]);
  return NULL;
}

/* loop.index and friends, computed when asked. */
static JValue *
loop_attr (R *r, JValue *loop, const char *name)
{
  gint64 n = loop->loop.items->list->len, i = loop->loop.index;

  if (strcmp (name, "index") == 0)
    return j_mk_int (r, i + 1);
  if (strcmp (name, "index0") == 0)
    return j_mk_int (r, i);
  if (strcmp (name, "revindex") == 0)
    return j_mk_int (r, n - i);
  if (strcmp (name, "revindex0") == 0)
    return j_mk_int (r, n - i - 1);
  if (strcmp (name, "first") == 0)
    return j_mk_bool (r, i == 0);
  if (strcmp (name, "last") == 0)
    return j_mk_bool (r, i + 1 == n);
  if (strcmp (name, "length") == 0)
    return j_mk_int (r, n);
  if (strcmp (name, "depth") == 0 || strcmp (name, "depth0") == 0)
    return j_mk_int (r, name[5] == '0' ? 0 : 1);
  if (strcmp (name, "previtem") == 0 && i > 0)
    return loop->loop.items->list->pdata[i - 1];
  if (strcmp (name, "nextitem") == 0 && i + 1 < n)
    return loop->loop.items->list->pdata[i + 1];
  if (strcmp (name, "cycle") == 0 || strcmp (name, "changed") == 0)
    return j_fail (r, AT_ERROR_UNSUPPORTED, "loop.%s is not supported", name);
  return j_mk_undef (r, "'LoopContext object' has no attribute '%s'", name);
}

/* `obj.name`: a method first, then the key (jinja2's Environment.getattr). */
JValue *
j_get_attr (R *r, JValue *obj, const char *name)
{
  JValue *m, *v;

  if (obj->kind == JV_UNDEFINED)
    return j_undefined_used (r, obj);
  if (name[0] == '_' && !((obj->kind == JV_DICT || obj->kind == JV_NAMESPACE)
                          && j_dict_get (obj, name, strlen (name)) != NULL))
    return j_fail (r, AT_ERROR_BAD_FILE, "access to attribute '%s' of '%s' object is unsafe", name,
                 j_type_name (obj));
  if ((obj->kind == JV_LIST || obj->kind == JV_DICT) && in_list (mutating, name))
    return j_fail (r, AT_ERROR_BAD_FILE, "access to attribute '%s' of '%s' object is unsafe", name,
                 j_type_name (obj));
  if (obj->kind == JV_LOOP)
    return loop_attr (r, obj, name);
  if ((m = find_method (r, obj, name)) != NULL)
    return m;
  if ((obj->kind == JV_DICT || obj->kind == JV_NAMESPACE) && (v = j_dict_get (obj, name, strlen (name))) != NULL)
    return v;
  return j_mk_undef (r, "'%s object' has no attribute '%s'", j_type_name (obj), name);
}

/* A Python index into `n` items, or -1 when out of range. */
static gint64
py_index (gint64 i, gsize n)
{
  if (i < 0)
    i += (gint64) n;
  return i >= 0 && i < (gint64) n ? i : -1;
}

/* Byte offsets of each code point of `s`, plus the end. */
static GArray *
char_offsets (const JValue *s)
{
  GArray *offs = g_array_new (FALSE, FALSE, sizeof (gsize));

  for (const char *p = s->str.s; p < s->str.s + s->str.len; p = g_utf8_next_char (p))
    {
      gsize o = p - s->str.s;

      g_array_append_val (offs, o);
    }
  g_array_append_val (offs, s->str.len);
  return offs;
}

/* `obj[key]`: the key or index first, then a method (jinja2's Environment.getitem). */
JValue *
j_get_item (R *r, JValue *obj, JValue *key)
{
  if (obj->kind == JV_UNDEFINED)
    return j_undefined_used (r, obj);
  if (obj->kind == JV_LOOP && key->kind == JV_STRING && strlen (key->str.s) == key->str.len)
    return j_get_attr (r, obj, key->str.s);
  if ((obj->kind == JV_DICT || obj->kind == JV_NAMESPACE) && key->kind == JV_STRING)
    {
      JValue *v = j_dict_get (obj, key->str.s, key->str.len);

      if (v != NULL)
        return v;
    }
  else if (obj->kind == JV_LIST && (key->kind == JV_INT || key->kind == JV_BOOL))
    {
      gint64 i = py_index (j_num_i (key), obj->list->len);

      if (i >= 0)
        return obj->list->pdata[i];
    }
  else if (obj->kind == JV_STRING && (key->kind == JV_INT || key->kind == JV_BOOL))
    {
      g_autoptr (GArray) offs = j_spend (r, obj->str.len * 8) ? char_offsets (obj) : NULL;
      gint64 i = offs != NULL ? py_index (j_num_i (key), offs->len - 1) : -1;

      if (offs == NULL)
        return NULL;
      if (i >= 0)
        {
          gsize b = g_array_index (offs, gsize, i), e = g_array_index (offs, gsize, i + 1);

          return j_mk_str (r, obj->str.s + b, e - b);
        }
    }
  if (key->kind == JV_STRING && key->str.len > 0 && key->str.s[0] != '_'
      && strlen (key->str.s) == key->str.len)
    {
      JValue *m = find_method (r, obj, key->str.s);

      if (m != NULL)
        return m;
    }
  if (key->kind == JV_STRING)
    return j_mk_undef (r, "'%s object' has no attribute '%s'", j_type_name (obj), key->str.s);
  return j_mk_undef (r, "'%s object' has no item of that key", j_type_name (obj));
}

static gboolean
slice_bound (R *r, JValue *v, gint64 *out, gboolean *given)
{
  *given = v != NULL && v->kind != JV_NONE;
  if (!*given)
    return TRUE;
  return j_want_int (r, v, "a slice", out);
}

JValue *
j_get_slice (R *r, JValue *obj, JValue *lo_v, JValue *hi_v, JValue *step_v)
{
  gint64 lo = 0, hi = 0, step = 1, n;
  gboolean has_lo, has_hi, has_step;
  g_autoptr (GArray) offs = NULL;
  JValue *out;
  GString *s = NULL;

  if (!slice_bound (r, lo_v, &lo, &has_lo) || !slice_bound (r, hi_v, &hi, &has_hi)
      || !slice_bound (r, step_v, &step, &has_step))
    return NULL;
  if (step == 0)
    return j_fail (r, AT_ERROR_BAD_FILE, "slice step cannot be zero");
  if (obj->kind == JV_UNDEFINED)
    return j_undefined_used (r, obj);
  if (!j_spend (r, obj->kind == JV_STRING ? obj->str.len * 8 : obj->kind == JV_LIST ? obj->list->len : 0))
    return NULL;
  if (obj->kind == JV_STRING)
    {
      offs = char_offsets (obj);
      n = offs->len - 1;
    }
  else if (obj->kind == JV_LIST)
    n = obj->list->len;
  else
    return j_fail (r, AT_ERROR_BAD_FILE, "'%s' object is not subscriptable", j_type_name (obj));
  /* CPython's PySlice_AdjustIndices. */
  if (!has_lo)
    lo = step < 0 ? n - 1 : 0;
  else
    {
      if (lo < 0)
        lo += n;
      if (lo < 0)
        lo = step < 0 ? -1 : 0;
      else if (lo >= n)
        lo = step < 0 ? n - 1 : n;
    }
  if (!has_hi)
    hi = step < 0 ? -1 : n;
  else
    {
      if (hi < 0)
        hi += n;
      if (hi < 0)
        hi = step < 0 ? -1 : 0;
      else if (hi >= n)
        hi = step < 0 ? n - 1 : n;
    }
  if (obj->kind == JV_STRING)
    s = g_string_new (NULL);
  out = obj->kind == JV_LIST ? j_list_new (r->arena) : NULL;
  if (out != NULL)
    out->is_tuple = obj->is_tuple;
  for (gint64 i = lo; step > 0 ? i < hi : i > hi; i += step)
    {
      if (s != NULL)
        {
          gsize b = g_array_index (offs, gsize, i), e = g_array_index (offs, gsize, i + 1);

          g_string_append_len (s, obj->str.s + b, e - b);
        }
      else
        j_list_add (r->arena, out, obj->list->pdata[i]);
    }
  return s != NULL ? j_mk_gstr (r, s) : out;
}

/* Dotted attribute paths of selectattr/map ("a.b", "tool_calls.0"). */
static JValue *
get_path (R *r, JValue *obj, JValue *path)
{
  g_auto (GStrv) parts = NULL;

  if (!want_string (r, path, "attribute"))
    return NULL;
  parts = g_strsplit (path->str.s, ".", -1);
  for (guint i = 0; parts[i] != NULL && obj != NULL; i++)
    {
      char *end;
      gint64 idx = g_ascii_strtoll (parts[i], &end, 10);
      JValue *key = *end == '\0' && end != parts[i] ? j_mk_int (r, idx) : j_mk_str (r, parts[i], -1);

      if (obj->kind == JV_UNDEFINED)
        return obj;
      obj = j_get_item (r, obj, key);
    }
  return obj;
}

static JValue *
join_items (R *r, GPtrArray *items, JValue *sep, JValue *attr)
{
  GString *out = g_string_new (NULL);

  for (guint i = 0; i < items->len; i++)
    {
      JValue *v = items->pdata[i];

      if (i > 0 && sep != NULL)
        g_string_append_len (out, sep->str.s, sep->str.len);
      if (attr != NULL && (v = get_path (r, v, attr)) == NULL)
        break;
      if (!j_append_str (r, out, v, FALSE, 0))
        break;
    }
  if (r->error != NULL)
    {
      g_string_free (out, TRUE);
      return NULL;
    }
  return j_mk_gstr (r, out);
}

/* ---- methods ---- */

static JValue *
dict_items (R *r, JValue *d, int which)
{
  JValue *out = j_list_new (r->arena);

  for (guint i = 0; i < d->dict->keys->len; i++)
    {
      JValue *item;

      if (which == 0)
        {
          item = j_list_new (r->arena);
          item->is_tuple = TRUE;
          j_list_add (r->arena, item, d->dict->keys->pdata[i]);
          j_list_add (r->arena, item, d->dict->vals->pdata[i]);
        }
      else
        item = (which == 1 ? d->dict->keys : d->dict->vals)->pdata[i];
      j_list_add (r->arena, out, item);
    }
  return out;
}

JValue *
j_call_method (R *r, JValue *self, const char *name, const Args *a)
{
  static const char *const p_chars[] = { "chars", NULL }, *const p_split[] = { "sep", "maxsplit", NULL };
  static const char *const p_one[] = { "x", NULL }, *const p_get[] = { "key", "default", NULL };
  static const char *const p_replace[] = { "old", "new", "count", NULL }, *const p_none[] = { NULL };

  if (self->kind == JV_DICT)
    {
      if (strcmp (name, "get") == 0)
        {
          JValue *key = j_arg_get (a, 0, NULL), *def = j_arg_get (a, 1, NULL), *v;

          if (a->n_kw > 0 || !args_check (r, a, "get", p_get) || key == NULL)
            return j_fail (r, AT_ERROR_BAD_FILE, "dict.get takes a key and an optional default");
          v = key->kind == JV_STRING ? j_dict_get (self, key->str.s, key->str.len) : NULL;
          return v != NULL ? v : def != NULL ? def : j_value_new (r->arena, JV_NONE);
        }
      if (!args_check (r, a, name, p_none))
        return NULL;
      return dict_items (r, self, strcmp (name, "items") == 0 ? 0 : strcmp (name, "keys") == 0 ? 1 : 2);
    }
  if (!j_spend (r, self->str.len))
    return NULL;
  /* str methods: Python rejects keyword arguments for most of them. */
  if (strcmp (name, "strip") == 0 || strcmp (name, "lstrip") == 0 || strcmp (name, "rstrip") == 0)
    return args_check (r, a, name, p_chars)
               ? str_strip (r, self, j_arg_get (a, 0, NULL), name[0] != 'r', name[0] != 'l')
               : NULL;
  if (strcmp (name, "split") == 0)
    return args_check (r, a, name, p_split)
               ? str_split (r, self, j_arg_get (a, 0, "sep"), j_arg_get (a, 1, "maxsplit"))
               : NULL;
  if (strcmp (name, "startswith") == 0 || strcmp (name, "endswith") == 0)
    return args_check (r, a, name, p_one) ? str_affix (r, self, j_arg_get (a, 0, NULL), name[0] == 's') : NULL;
  if (strcmp (name, "replace") == 0)
    return args_check (r, a, name, p_replace)
               ? str_replace (r, self, j_arg_get (a, 0, NULL), j_arg_get (a, 1, NULL), j_arg_get (a, 2, NULL))
               : NULL;
  if (!args_check (r, a, name, strcmp (name, "find") == 0 || strcmp (name, "count") == 0
                                     || strcmp (name, "join") == 0 ? p_one : p_none))
    return NULL;
  if (strcmp (name, "upper") == 0 || strcmp (name, "lower") == 0 || strcmp (name, "capitalize") == 0)
    return str_case (r, self, name[0] == 'u' ? 0 : name[0] == 'l' ? 1 : 2);
  if (strcmp (name, "title") == 0)
    return str_title (r, self);
  if (strcmp (name, "find") == 0 || strcmp (name, "count") == 0)
    {
      JValue *sub = j_arg_get (a, 0, NULL);
      const char *hit;

      if (sub == NULL || !want_string (r, sub, name))
        return sub == NULL ? j_fail (r, AT_ERROR_BAD_FILE, "%s needs an argument", name) : NULL;
      if (name[0] == 'f')
        {
          hit = sub->str.len == 0 ? self->str.s : j_find_bytes (self->str.s, self->str.len, sub->str.s, sub->str.len);
          return j_mk_int (r, hit == NULL ? -1 : g_utf8_pointer_to_offset (self->str.s, hit));
        }
      if (sub->str.len == 0)
        return j_mk_int (r, (gint64) j_utf8_len (self) + 1);
      {
        gint64 count = 0;
        const char *p = self->str.s, *end = self->str.s + self->str.len;

        while ((hit = j_find_bytes (p, end - p, sub->str.s, sub->str.len)) != NULL)
          {
            count++;
            p = hit + sub->str.len;
          }
        return j_mk_int (r, count);
      }
    }
  /* join */
  {
    JValue *it = j_arg_get (a, 0, NULL);
    g_autoptr (GPtrArray) items = NULL;

    if (it == NULL)
      return j_fail (r, AT_ERROR_BAD_FILE, "join needs an argument");
    if ((items = j_iterate (r, it)) == NULL)
      return NULL;
    for (guint i = 0; i < items->len; i++)
      if (!want_string (r, items->pdata[i], "str.join"))
        return NULL;
    return join_items (r, items, self, NULL);
  }
}

/* ---- tests ---- */

gboolean
j_run_test (R *r, const char *name, JValue *v, const Args *a, gboolean *out)
{
  static const char *const no_args[] = { "defined", "undefined", "none", "string", "number", "integer",
                                         "float", "boolean", "true", "false", "mapping", "iterable",
                                         "sequence", "callable", "odd", "even", "lower", "upper", NULL };
  JValue *arg = j_arg_get (a, 0, NULL);
  int ord;

  if (a->n_pos + a->n_kw > 0 && in_list (no_args, name))
    return j_fail (r, AT_ERROR_BAD_FILE, "the test '%s' takes no argument", name) != NULL;
  if (strcmp (name, "defined") == 0)
    *out = v->kind != JV_UNDEFINED;
  else if (strcmp (name, "undefined") == 0)
    *out = v->kind == JV_UNDEFINED;
  else if (strcmp (name, "none") == 0)
    *out = v->kind == JV_NONE;
  else if (strcmp (name, "string") == 0)
    *out = v->kind == JV_STRING;
  else if (strcmp (name, "number") == 0)
    *out = j_is_number (v);
  else if (strcmp (name, "integer") == 0)
    *out = v->kind == JV_INT;
  else if (strcmp (name, "float") == 0)
    *out = v->kind == JV_FLOAT;
  else if (strcmp (name, "boolean") == 0)
    *out = v->kind == JV_BOOL;
  else if (strcmp (name, "true") == 0 || strcmp (name, "false") == 0)
    *out = v->kind == JV_BOOL && v->b == (name[0] == 't');
  else if (strcmp (name, "mapping") == 0)
    *out = v->kind == JV_DICT;
  else if (strcmp (name, "iterable") == 0 || strcmp (name, "sequence") == 0)
    *out = v->kind == JV_STRING || v->kind == JV_LIST || v->kind == JV_DICT || v->kind == JV_UNDEFINED;
  else if (strcmp (name, "callable") == 0)
    *out = v->kind == JV_FUNCTION || v->kind == JV_METHOD || v->kind == JV_MACRO;
  else if (strcmp (name, "odd") == 0 || strcmp (name, "even") == 0)
    {
      gint64 i;

      if (!j_want_int (r, v, name, &i))
        return FALSE;
      *out = (i % 2 != 0) == (name[0] == 'o');
    }
  else if (strcmp (name, "divisibleby") == 0)
    {
      gint64 i, d;

      if (arg == NULL || !j_want_int (r, v, name, &i) || !j_want_int (r, arg, name, &d))
        return arg == NULL ? j_fail (r, AT_ERROR_BAD_FILE, "divisibleby needs an argument") != NULL : FALSE;
      if (d == 0)
        return j_fail (r, AT_ERROR_BAD_FILE, "integer division or modulo by zero") != NULL;
      *out = d == -1 || i % d == 0;
    }
  else if (strcmp (name, "lower") == 0 || strcmp (name, "upper") == 0)
    {
      JValue *s = j_to_string (r, v), *c;

      if (s == NULL || (c = str_case (r, s, name[0] == 'u' ? 0 : 1)) == NULL)
        return FALSE;
      *out = j_values_equal (s, c, 0) && s->str.len > 0;
    }
  else if (strcmp (name, "in") == 0)
    {
      if (arg == NULL)
        return j_fail (r, AT_ERROR_BAD_FILE, "the 'in' test needs an argument") != NULL;
      return j_contains (r, arg, v, out);
    }
  else if (strcmp (name, "sameas") == 0)
    *out = arg != NULL && (arg == v || (arg->kind == v->kind && (v->kind == JV_NONE || (v->kind == JV_BOOL && v->b == arg->b))));
  else
    {
      static const struct { const char *names[3]; int op; } cmps[] = {
        { { "eq", "equalto", "==" }, JOP_EQ }, { { "ne", "!=", NULL }, JOP_NE },
        { { "lt", "lessthan", "<" }, JOP_LT }, { { "le", "<=", NULL }, JOP_LE },
        { { "gt", "greaterthan", ">" }, JOP_GT }, { { "ge", ">=", NULL }, JOP_GE } };

      for (guint k = 0; k < G_N_ELEMENTS (cmps); k++)
        for (guint j = 0; j < 3; j++)
          if (cmps[k].names[j] != NULL && strcmp (cmps[k].names[j], name) == 0)
            {
              if (arg == NULL)
                return j_fail (r, AT_ERROR_BAD_FILE, "the '%s' test needs an argument", name) != NULL;
              if (cmps[k].op == JOP_EQ || cmps[k].op == JOP_NE)
                {
                  *out = j_values_equal (v, arg, 0) == (cmps[k].op == JOP_EQ);
                  return TRUE;
                }
              if (!j_values_order (r, v, arg, &ord, 0))
                return FALSE;
              *out = cmps[k].op == JOP_LT ? ord < 0 : cmps[k].op == JOP_LE ? ord <= 0
                     : cmps[k].op == JOP_GT ? ord > 0 : ord >= 0;
              return TRUE;
            }
      return j_fail (r, AT_ERROR_UNSUPPORTED, "the test '%s' is not supported", name) != NULL;
    }
  return TRUE;
}

/* ---- filters ---- */

static Args
args_shift (const Args *a, guint n)
{
  Args rest = *a;

  rest.pos = a->n_pos > n ? a->pos + n : NULL;
  rest.n_pos = a->n_pos > n ? a->n_pos - n : 0;
  return rest;
}

/* select, reject, selectattr, rejectattr. */
static JValue *
filter_select (R *r, JValue *v, const Args *a, gboolean by_attr, gboolean keep)
{
  g_autoptr (GPtrArray) items = j_iterate (r, v);
  JValue *attr = by_attr ? j_arg_get (a, 0, NULL) : NULL, *test, *out;
  Args rest = args_shift (a, by_attr ? 2 : 1);

  if (items == NULL)
    return NULL;
  if (a->n_kw > 0 || (by_attr && attr == NULL))
    return j_fail (r, AT_ERROR_BAD_FILE, "%s: bad arguments", by_attr ? "selectattr" : "select");
  test = j_arg_get (a, by_attr ? 1 : 0, NULL);
  if (test != NULL && !want_string (r, test, "the test name"))
    return NULL;
  out = j_list_new (r->arena);
  for (guint i = 0; i < items->len; i++)
    {
      JValue *item = items->pdata[i], *probe = item;
      gboolean pass;

      if (attr != NULL && (probe = get_path (r, item, attr)) == NULL)
        return NULL;
      if (test == NULL)
        pass = j_truthy (probe);
      else if (!j_run_test (r, test->str.s, probe, &rest, &pass))
        return NULL;
      if (pass == keep)
        j_list_add (r->arena, out, item);
    }
  return out;
}

static JValue *
filter_map (R *r, JValue *v, const Args *a)
{
  g_autoptr (GPtrArray) items = j_iterate (r, v);
  JValue *attr = j_arg_get (a, G_MAXUINT, "attribute"), *def = j_arg_get (a, G_MAXUINT, "default");
  JValue *fname = j_arg_get (a, 0, NULL), *out;
  Args rest = args_shift (a, 1);

  if (items == NULL)
    return NULL;
  if (attr == NULL && (fname == NULL || !want_string (r, fname, "map")))
    return fname == NULL ? j_fail (r, AT_ERROR_BAD_FILE, "map needs a filter name or attribute=") : NULL;
  rest.n_kw = 0;
  out = j_list_new (r->arena);
  for (guint i = 0; i < items->len; i++)
    {
      JValue *item = items->pdata[i];

      item = attr != NULL ? get_path (r, item, attr) : j_apply_filter (r, fname->str.s, item, &rest);
      if (item == NULL)
        return NULL;
      if (item->kind == JV_UNDEFINED && def != NULL)
        item = def;
      j_list_add (r->arena, out, item);
    }
  return out;
}

/* jinja2's indent: every line but the first (and blank ones unless `blank`) gets the prefix. */
static JValue *
filter_indent (R *r, JValue *v, const Args *a)
{
  static const char *const names[] = { "width", "first", "blank", NULL };
  JValue *width = j_arg_get (a, 0, "width"), *first = j_arg_get (a, 1, "first"), *blank = j_arg_get (a, 2, "blank");
  JValue *s = j_to_string (r, v);
  g_autofree char *prefix = NULL;
  GString *out;
  const char *p, *end;
  gboolean first_line = TRUE;

  if (s == NULL || !args_check (r, a, "indent", names))
    return NULL;
  if (width != NULL && width->kind == JV_STRING)
    prefix = g_strdup (width->str.s);
  else
    {
      gint64 w = 4;

      if (width != NULL && !j_want_int (r, width, "indent", &w))
        return NULL;
      prefix = g_strnfill (CLAMP (w, 0, 256), ' ');
    }
  out = g_string_new (NULL);
  if (first != NULL && j_truthy (first))
    g_string_append (out, prefix);
  /* str.splitlines() on s + "\n": the line breaks are dropped and joined again with "\n". */
  p = s->str.s;
  end = s->str.s + s->str.len;
  while (p < end)
    {
      const char *e = p;
      gsize brk;

      while (e < end && *e != '\n' && *e != '\r' && *e != '\v' && *e != '\f' && !(*e >= 0x1c && *e <= 0x1e))
        e++;
      brk = e < end ? ((*e == '\r' && e + 1 < end && e[1] == '\n') ? 2 : 1) : 0;
      if (!first_line)
        {
          g_string_append_c (out, '\n');
          if (e > p || (blank != NULL && j_truthy (blank)))
            g_string_append (out, prefix);
        }
      g_string_append_len (out, p, e - p);
      first_line = FALSE;
      p = e + brk;
      if (out->len > AT_JINJA_MAX_OUTPUT)
        break;
    }
  return j_mk_gstr (r, out);
}

static JValue *
filter_length (R *r, JValue *v)
{
  switch (v->kind)
    {
    case JV_UNDEFINED: return j_mk_int (r, 0);
    case JV_STRING: return j_mk_int (r, j_utf8_len (v));
    case JV_LIST: return j_mk_int (r, v->list->len);
    case JV_DICT: return j_mk_int (r, v->dict->keys->len);
    default: return j_fail (r, AT_ERROR_BAD_FILE, "object of type '%s' has no len()", j_type_name (v));
    }
}

static JValue *
filter_first_last (R *r, JValue *v, gboolean first)
{
  g_autoptr (GPtrArray) items = j_iterate (r, v);

  if (items == NULL)
    return NULL;
  if (items->len == 0)
    return j_mk_undef (r, "No %s item, sequence was empty.", first ? "first" : "last");
  return items->pdata[first ? 0 : items->len - 1];
}

static JValue *
filter_number (R *r, JValue *v, const Args *a, gboolean to_int)
{
  JValue *def = j_arg_get (a, 0, "default");
  char *end;

  if (v->kind == JV_INT || v->kind == JV_BOOL)
    return to_int ? j_mk_int (r, j_num_i (v)) : j_mk_float (r, (double) j_num_i (v));
  if (v->kind == JV_FLOAT)
    {
      if (!to_int)
        return v;
      if (isfinite (v->f) && fabs (v->f) < 9.2e18)
        return j_mk_int (r, (gint64) v->f);
    }
  else if (v->kind == JV_STRING && v->str.len > 0)
    {
      g_autofree char *t = g_strstrip (g_strndup (v->str.s, v->str.len));

      if (to_int)
        {
          gint64 i = g_ascii_strtoll (t, &end, 10);

          if (*t != '\0' && *end == '\0')
            return j_mk_int (r, i);
        }
      else
        {
          double f = g_ascii_strtod (t, &end);

          if (*t != '\0' && *end == '\0')
            return j_mk_float (r, f);
        }
    }
  if (def != NULL)
    return def;
  return to_int ? j_mk_int (r, 0) : j_mk_float (r, 0.0);
}

static JValue *
escape_html (R *r, JValue *v)
{
  JValue *s = j_to_string (r, v);
  GString *out;

  if (s == NULL)
    return NULL;
  out = g_string_new (NULL);
  for (gsize i = 0; i < s->str.len; i++)
    switch (s->str.s[i])
      {
      case '&': g_string_append (out, "&amp;"); break;
      case '<': g_string_append (out, "&lt;"); break;
      case '>': g_string_append (out, "&gt;"); break;
      case '"': g_string_append (out, "&#34;"); break;
      case '\'': g_string_append (out, "&#39;"); break;
      default: g_string_append_c (out, s->str.s[i]);
      }
  return j_mk_gstr (r, out);
}

JValue *
j_apply_filter (R *r, const char *name, JValue *v, const Args *a)
{
  static const char *const p_chars[] = { "chars", NULL }, *const p_none[] = { NULL };
  static const char *const p_default[] = { "default_value", "boolean", NULL };
  static const char *const p_join[] = { "d", "attribute", NULL };
  static const char *const p_replace[] = { "old", "new", "count", NULL };
  static const char *const p_num[] = { "default", NULL };
  JValue *s, *out;
  g_autoptr (GPtrArray) items = NULL;

  if (!j_spend (r, v->kind == JV_STRING ? v->str.len : v->kind == JV_LIST ? v->list->len : 0))
    return NULL;
  if (strcmp (name, "trim") == 0)
    return args_check (r, a, name, p_chars) && (s = j_to_string (r, v)) != NULL
               ? str_strip (r, s, j_arg_get (a, 0, "chars"), TRUE, TRUE)
               : NULL;
  if (strcmp (name, "default") == 0 || strcmp (name, "d") == 0)
    {
      JValue *def = j_arg_get (a, 0, "default_value"), *boolean = j_arg_get (a, 1, "boolean");

      if (!args_check (r, a, name, p_default))
        return NULL;
      if (v->kind == JV_UNDEFINED || (boolean != NULL && j_truthy (boolean) && !j_truthy (v)))
        return def != NULL ? def : j_mk_str (r, "", 0);
      return v;
    }
  if (strcmp (name, "tojson") == 0)
    return filter_tojson (r, v, a);
  if (strcmp (name, "join") == 0)
    {
      JValue *sep = j_arg_get (a, 0, "d");

      if (!args_check (r, a, name, p_join) || (items = j_iterate (r, v)) == NULL
          || (sep != NULL && (sep = j_to_string (r, sep)) == NULL))
        return NULL;
      return join_items (r, items, sep, j_arg_get (a, 1, "attribute"));
    }
  if (strcmp (name, "replace") == 0)
    return args_check (r, a, name, p_replace) && (s = j_to_string (r, v)) != NULL
               ? str_replace (r, s, j_arg_get (a, 0, "old"), j_arg_get (a, 1, "new"), j_arg_get (a, 2, "count"))
               : NULL;
  if (strcmp (name, "selectattr") == 0 || strcmp (name, "rejectattr") == 0)
    return filter_select (r, v, a, TRUE, name[0] == 's');
  if (strcmp (name, "select") == 0 || strcmp (name, "reject") == 0)
    return filter_select (r, v, a, FALSE, name[0] == 's');
  if (strcmp (name, "map") == 0)
    return filter_map (r, v, a);
  if (strcmp (name, "indent") == 0)
    return filter_indent (r, v, a);
  if (strcmp (name, "int") == 0 || strcmp (name, "float") == 0)
    return args_check (r, a, name, p_num) ? filter_number (r, v, a, name[0] == 'i') : NULL;
  if (!args_check (r, a, name, p_none))
    return NULL;
  if (strcmp (name, "length") == 0 || strcmp (name, "count") == 0)
    return filter_length (r, v);
  if (strcmp (name, "string") == 0)
    return j_to_string (r, v);
  if (strcmp (name, "safe") == 0)
    return v;
  if (strcmp (name, "escape") == 0 || strcmp (name, "e") == 0)
    return escape_html (r, v);
  if (strcmp (name, "upper") == 0 || strcmp (name, "lower") == 0 || strcmp (name, "capitalize") == 0)
    return (s = j_to_string (r, v)) != NULL ? str_case (r, s, name[0] == 'u' ? 0 : name[0] == 'l' ? 1 : 2) : NULL;
  if (strcmp (name, "title") == 0)
    return (s = j_to_string (r, v)) != NULL ? str_title (r, s) : NULL;
  if (strcmp (name, "first") == 0 || strcmp (name, "last") == 0)
    return filter_first_last (r, v, name[0] == 'f');
  if (strcmp (name, "items") == 0)
    {
      if (v->kind == JV_UNDEFINED)
        return j_list_new (r->arena);
      if (v->kind != JV_DICT)
        return j_fail (r, AT_ERROR_BAD_FILE, "Can only get item pairs from a mapping.");
      return dict_items (r, v, 0);
    }
  if (strcmp (name, "list") == 0)
    return (items = j_iterate (r, v)) != NULL ? j_list_from (r, items, FALSE) : NULL;
  if (strcmp (name, "reverse") == 0)
    {
      if (v->kind == JV_STRING)
        return j_get_slice (r, v, NULL, NULL, j_mk_int (r, -1));
      if ((items = j_iterate (r, v)) == NULL)
        return NULL;
      out = j_list_new (r->arena);
      for (guint i = items->len; i > 0; i--)
        j_list_add (r->arena, out, items->pdata[i - 1]);
      return out;
    }
  if (strcmp (name, "abs") == 0)
    {
      if (v->kind == JV_FLOAT)
        return j_mk_float (r, fabs (v->f));
      if (v->kind == JV_INT || v->kind == JV_BOOL)
        return j_num_i (v) == G_MININT64 ? j_fail (r, AT_ERROR_UNSUPPORTED, "integer overflow")
                                       : j_mk_int (r, ABS (j_num_i (v)));
      return j_fail (r, AT_ERROR_BAD_FILE, "bad operand type for abs(): '%s'", j_type_name (v));
    }
  return j_fail (r, AT_ERROR_UNSUPPORTED, "the filter '%s' is not supported", name);
}
