/* at-jinja-eval.c: values and the evaluator of the chat-template Jinja subset (at-jinja.h).
 *
 * Values follow Python's semantics as jinja2 exposes them: str() of a value is what {{ }}
 * prints (None prints "None", True "True", a list its repr with single quotes, a float the
 * shortest repr that round-trips), `+` on a string and an int is an error, `//` and `%` floor,
 * `/` is always a float, strings index and slice by code point, an index out of range or a
 * missing key is undefined. jinja2's attribute rules: `a.b` looks for a method first, then the
 * key (so `message.items` is the method); `a['b']` the key first, then a method.
 *
 * Scopes: a for loop's body gets a fresh scope each iteration whose parent is the scope the
 * loop is in, so a {% set %} in the body is gone after the iteration (and a read before it sees
 * the outer value, as in jinja2); {% if %} opens no scope. namespace() objects are the one
 * mutable value ({% set ns.a = 1 %}).
 *
 * Memory: every value of one render lives in an arena charged against AT_JINJA_MAX_MEMORY and
 * freed at the end in one pass, so a namespace that holds itself leaks nothing (only a loop
 * iteration's scope table, which no template can reach, is freed when the iteration ends);
 * printing and comparing walk at most AT_JINJA_MAX_DEPTH levels. Time: loop iterations, and
 * the bytes that searches, slices and copies scan (AT_JINJA_MAX_WORK), are counted.
 */
#include "at-jinja-private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "at-error.h"

/* ---- functions and calls ---- */

static const char *const global_functions[] = { "range", "namespace", "dict", "raise_exception",
                                                "strftime_now", NULL };

static gboolean exec_body (R *r, GPtrArray *body);
static JValue *eval (R *r, JNode *n);

static JValue *
call_range (R *r, const Args *a)
{
  gint64 bounds[3] = { 0, 0, 1 }, n;
  JValue *out;

  if (a->n_kw > 0 || a->n_pos < 1 || a->n_pos > 3)
    return j_fail (r, AT_ERROR_BAD_FILE, "range takes 1 to 3 integer arguments");
  for (guint i = 0; i < a->n_pos; i++)
    if (!j_want_int (r, a->pos[i], "range", &bounds[a->n_pos == 1 ? 1 : i]))
      return NULL;
  if (bounds[2] == 0)
    return j_fail (r, AT_ERROR_BAD_FILE, "range() arg 3 must not be zero");
  /* The count in double: the int64 difference may overflow. */
  {
    double span = ((double) bounds[1] - (double) bounds[0]) / (double) bounds[2];

    n = span <= 0 ? 0 : (gint64) ceil (span);
    if (span > AT_JINJA_MAX_ITERATIONS)
      return j_fail (r, AT_ERROR_BAD_FILE, "range of more than %d items", AT_JINJA_MAX_ITERATIONS);
  }
  out = j_list_new (r->arena);
  for (gint64 i = 0; i < n; i++)
    j_list_add (r->arena, out, j_mk_int (r, bounds[0] + i * bounds[2]));
  return out;
}

static JValue *
call_macro (R *r, JNode *m, const Args *a)
{
  Scope scope = { j_dict_new (r->arena, JV_DICT), r->top };
  Scope *saved_scope = r->scope;
  GString *saved_out = r->out;
  guint n_params = m->targets->len;
  gboolean ok;

  if (a->n_pos > n_params)
    return j_fail (r, AT_ERROR_BAD_FILE, "macro '%s' takes not more than %u argument(s)", m->name, n_params);
  for (guint k = 0; k < a->n_kw; k++)
    {
      gboolean known = FALSE;

      for (guint j = a->n_pos; j < n_params; j++)
        known |= strcmp (m->targets->pdata[j], a->kw_names[k]) == 0;
      if (!known)
        return j_fail (r, AT_ERROR_BAD_FILE, "macro '%s' has no parameter '%s'", m->name, a->kw_names[k]);
    }
  r->scope = &scope;
  for (guint j = 0; j < n_params && r->error == NULL; j++)
    {
      JValue *v = j_arg_get (a, j, m->targets->pdata[j]);
      JNode *def = m->args->pdata[j];

      if (v == NULL)
        v = def != NULL ? NULL : j_mk_undef (r, "parameter '%s' was not provided", (char *) m->targets->pdata[j]);
      if (v == NULL)
        v = eval (r, def);
      if (v != NULL)
        j_dict_set_name (r, scope.vars, m->targets->pdata[j], v);
    }
  r->out = g_string_new (NULL);
  ok = r->error == NULL && exec_body (r, m->body);
  r->flow = FLOW_NONE;
  r->scope = saved_scope;
  {
    GString *body = r->out;

    r->out = saved_out;
    if (!ok)
      {
        g_string_free (body, TRUE);
        return NULL;
      }
    return j_mk_gstr (r, body);
  }
}

static JValue *
call_value (R *r, JValue *callee, const Args *a)
{
  if (callee->kind == JV_METHOD)
    return j_call_method (r, callee->fn.self, callee->fn.name, a);
  if (callee->kind == JV_MACRO)
    return call_macro (r, callee->macro, a);
  if (callee->kind == JV_UNDEFINED)
    return j_undefined_used (r, callee);
  if (callee->kind != JV_FUNCTION)
    return j_fail (r, AT_ERROR_BAD_FILE, "'%s' object is not callable", j_type_name (callee));
  if (strcmp (callee->fn.name, "range") == 0)
    return call_range (r, a);
  if (strcmp (callee->fn.name, "raise_exception") == 0)
    {
      JValue *msg = j_arg_get (a, 0, "message");

      if (msg == NULL || (msg = j_to_string (r, msg)) == NULL)
        return j_fail (r, AT_ERROR_INVALID, "%s", "raise_exception called without a message");
      return j_fail (r, AT_ERROR_INVALID, "%s", msg->str.s);
    }
  if (strcmp (callee->fn.name, "strftime_now") == 0)
    return j_strftime_now (r, j_arg_get (a, 0, "format"));
  /* namespace(...) and dict(...): a mapping from an optional dict and keyword arguments. */
  {
    JValue *d = j_dict_new (r->arena, callee->fn.name[0] == 'n' ? JV_NAMESPACE : JV_DICT);

    if (a->n_pos > 1 || (a->n_pos == 1 && a->pos[0]->kind != JV_DICT))
      return j_fail (r, AT_ERROR_UNSUPPORTED, "%s() takes only a dict and keyword arguments", callee->fn.name);
    if (a->n_pos == 1)
      for (guint i = 0; i < a->pos[0]->dict->keys->len; i++)
        j_dict_set (r->arena, d, a->pos[0]->dict->keys->pdata[i], a->pos[0]->dict->vals->pdata[i]);
    for (guint k = 0; k < a->n_kw; k++)
      j_dict_set_name (r, d, a->kw_names[k], a->kw[k]);
    return d;
  }
}

/* ---- operators ---- */

static JValue *
repeat (R *r, JValue *seq, gint64 times)
{
  gsize unit = seq->kind == JV_STRING ? seq->str.len : seq->list->len * sizeof (gpointer);
  JValue *out;

  times = MAX (times, 0);
  if (unit > 0 && (guint64) times > AT_JINJA_MAX_OUTPUT / unit)
    return j_fail (r, AT_ERROR_BAD_FILE, "a repeated value longer than %u bytes", AT_JINJA_MAX_OUTPUT);
  if (seq->kind == JV_STRING)
    {
      GString *s = g_string_sized_new (unit * times);

      for (gint64 i = 0; i < times; i++)
        g_string_append_len (s, seq->str.s, seq->str.len);
      return j_mk_gstr (r, s);
    }
  out = j_list_new (r->arena);
  out->is_tuple = seq->is_tuple;
  for (gint64 i = 0; i < times; i++)
    for (guint j = 0; j < seq->list->len; j++)
      j_list_add (r->arena, out, seq->list->pdata[j]);
  return out;
}

static const char *
op_symbol (int op)
{
  static const char *const symbols[] = { "", "+", "-", "*", "/", "//", "%", "**", "~" };

  return op > 0 && op < (int) G_N_ELEMENTS (symbols) ? symbols[op] : "?";
}

static JValue *
int_op (R *r, int op, gint64 x, gint64 y)
{
  gint64 z = 0;
  gboolean overflow = FALSE;

  switch (op)
    {
    case JOP_ADD: overflow = __builtin_add_overflow (x, y, &z); break;
    case JOP_SUB: overflow = __builtin_sub_overflow (x, y, &z); break;
    case JOP_MUL: overflow = __builtin_mul_overflow (x, y, &z); break;
    case JOP_DIV:
      if (y == 0)
        return j_fail (r, AT_ERROR_BAD_FILE, "division by zero");
      return j_mk_float (r, (double) x / (double) y);
    case JOP_FLOORDIV:
    case JOP_MOD:
      if (y == 0)
        return j_fail (r, AT_ERROR_BAD_FILE, "integer division or modulo by zero");
      if (x == G_MININT64 && y == -1)
        {
          if (op == JOP_MOD)
            return j_mk_int (r, 0);
          overflow = TRUE;
          break;
        }
      {
        gint64 q = x / y, m = x % y;

        if (m != 0 && ((m < 0) != (y < 0)))
          {
            q--;
            m += y;
          }
        z = op == JOP_FLOORDIV ? q : m;
      }
      break;
    case JOP_POW:
      if (y < 0)
        return j_mk_float (r, pow ((double) x, (double) y));
      z = 1;
      for (gint64 i = 0; i < y && !overflow; i++)
        {
          overflow = __builtin_mul_overflow (z, x, &z);
          if (z == 0 || z == 1)
            break;
          if (z == -1)
            {
              z = (y % 2 == 0) ? 1 : -1;
              break;
            }
        }
      break;
    default:
      break;
    }
  if (overflow)
    return j_fail (r, AT_ERROR_UNSUPPORTED, "integer overflow beyond 64 bits in '%s'", op_symbol (op));
  return j_mk_int (r, z);
}

static JValue *
float_op (R *r, int op, double x, double y)
{
  switch (op)
    {
    case JOP_ADD: return j_mk_float (r, x + y);
    case JOP_SUB: return j_mk_float (r, x - y);
    case JOP_MUL: return j_mk_float (r, x * y);
    case JOP_POW: return j_mk_float (r, pow (x, y));
    default:
      break;
    }
  if (y == 0)
    return j_fail (r, AT_ERROR_BAD_FILE, "float division by zero");
  if (op == JOP_DIV)
    return j_mk_float (r, x / y);
  {
    double m = fmod (x, y), q;

    if (m != 0 && ((m < 0) != (y < 0)))
      m += y;
    q = (x - m) / y;
    q = round (q);
    return j_mk_float (r, op == JOP_FLOORDIV ? q : m);
  }
}

static JValue *
binary_op (R *r, int op, JValue *x, JValue *y)
{
  if (!j_spend (r, (x->kind == JV_STRING ? x->str.len : 0) + (y->kind == JV_STRING ? y->str.len : 0)))
    return NULL;
  if (op == JOP_CONCAT)
    {
      JValue *xs = j_to_string (r, x), *ys;
      GString *s;

      if (xs == NULL || (ys = j_to_string (r, y)) == NULL)
        return NULL;
      s = g_string_sized_new (xs->str.len + ys->str.len);
      g_string_append_len (s, xs->str.s, xs->str.len);
      g_string_append_len (s, ys->str.s, ys->str.len);
      return j_mk_gstr (r, s);
    }
  if (x->kind == JV_UNDEFINED)
    return j_undefined_used (r, x);
  if (y->kind == JV_UNDEFINED)
    return j_undefined_used (r, y);
  if (j_is_number (x) && j_is_number (y))
    {
      if (x->kind != JV_FLOAT && y->kind != JV_FLOAT)
        return int_op (r, op, j_num_i (x), j_num_i (y));
      return float_op (r, op, j_num_f (x), j_num_f (y));
    }
  if (op == JOP_ADD && x->kind == JV_STRING && y->kind == JV_STRING)
    {
      GString *s = g_string_sized_new (x->str.len + y->str.len);

      g_string_append_len (s, x->str.s, x->str.len);
      g_string_append_len (s, y->str.s, y->str.len);
      return j_mk_gstr (r, s);
    }
  if (op == JOP_ADD && x->kind == JV_LIST && y->kind == JV_LIST && x->is_tuple == y->is_tuple)
    {
      JValue *out = j_list_from (r, x->list, x->is_tuple);

      g_ptr_array_extend (out->list, y->list, NULL, NULL);
      j_charge (r->arena, y->list->len * sizeof (gpointer));
      return out;
    }
  if (op == JOP_MUL && (x->kind == JV_STRING || x->kind == JV_LIST) && (y->kind == JV_INT || y->kind == JV_BOOL))
    return repeat (r, x, j_num_i (y));
  if (op == JOP_MUL && (y->kind == JV_STRING || y->kind == JV_LIST) && (x->kind == JV_INT || x->kind == JV_BOOL))
    return repeat (r, y, j_num_i (x));
  if (op == JOP_MOD && x->kind == JV_STRING)
    return j_fail (r, AT_ERROR_UNSUPPORTED, "%%-formatting of strings is not supported");
  return j_fail (r, AT_ERROR_BAD_FILE, "unsupported operand type(s) for %s: '%s' and '%s'", op_symbol (op),
               j_type_name (x), j_type_name (y));
}

static gboolean
compare_op (R *r, int op, JValue *x, JValue *y, gboolean *out)
{
  int ord;

  if (!j_spend (r, x->kind == JV_LIST ? x->list->len : x->kind == JV_STRING ? x->str.len : 0))
    return FALSE;
  switch (op)
    {
    case JOP_EQ: *out = j_values_equal (x, y, 0); return TRUE;
    case JOP_NE: *out = !j_values_equal (x, y, 0); return TRUE;
    case JOP_IN:
    case JOP_NOTIN:
      if (!j_contains (r, y, x, out))
        return FALSE;
      if (op == JOP_NOTIN)
        *out = !*out;
      return TRUE;
    default:
      break;
    }
  if (x->kind == JV_UNDEFINED)
    return j_undefined_used (r, x) != NULL;
  if (y->kind == JV_UNDEFINED)
    return j_undefined_used (r, y) != NULL;
  if (!j_values_order (r, x, y, &ord, 0))
    return FALSE;
  *out = op == JOP_LT ? ord < 0 : op == JOP_LE ? ord <= 0 : op == JOP_GT ? ord > 0 : ord >= 0;
  return TRUE;
}

/* ---- expressions ---- */

static JValue *
lookup (R *r, const char *name)
{
  for (Scope *s = r->scope; s != NULL; s = s->parent)
    {
      JValue *v = j_dict_get (s->vars, name, strlen (name));

      if (v != NULL)
        return v;
    }
  for (guint i = 0; global_functions[i] != NULL; i++)
    if (strcmp (global_functions[i], name) == 0)
      {
        JValue *f = j_value_new (r->arena, JV_FUNCTION);

        f->fn.name = global_functions[i];
        return f;
      }
  return j_mk_undef (r, "'%s' is undefined", name);
}

/* Evaluates call arguments into `a` (arrays owned by the caller through `store`). */
static gboolean
eval_args (R *r, JNode *n, Args *a, GPtrArray *store)
{
  guint n_pos = n->args != NULL ? n->args->len : 0, n_kw = n->kwargs != NULL ? n->kwargs->len : 0;

  for (guint i = 0; i < n_pos + n_kw; i++)
    {
      JValue *v = eval (r, i < n_pos ? n->args->pdata[i] : n->kwargs->pdata[i - n_pos]);

      if (v == NULL)
        return FALSE;
      g_ptr_array_add (store, v);
    }
  /* No pointer arithmetic on an empty array's NULL data (undefined behaviour). */
  a->pos = n_pos > 0 ? (JValue **) store->pdata : NULL;
  a->n_pos = n_pos;
  a->kw = n_kw > 0 ? (JValue **) store->pdata + n_pos : NULL;
  a->n_kw = n_kw;
  a->kw_names = n_kw > 0 ? (const char *const *) n->kwnames->pdata : NULL;
  return TRUE;
}

static JValue *
eval_call (R *r, JNode *n)
{
  g_autoptr (GPtrArray) store = g_ptr_array_new ();
  JValue *callee = eval (r, n->a);
  Args a = { 0 };

  if (callee == NULL || !eval_args (r, n, &a, store))
    return NULL;
  return call_value (r, callee, &a);
}

static JValue *
eval_filter (R *r, JNode *n)
{
  g_autoptr (GPtrArray) store = g_ptr_array_new ();
  JValue *v = eval (r, n->a);
  Args a = { 0 };

  if (v == NULL || !eval_args (r, n, &a, store))
    return NULL;
  return j_apply_filter (r, n->name, v, &a);
}

static JValue *
eval_test (R *r, JNode *n)
{
  g_autoptr (GPtrArray) store = g_ptr_array_new ();
  JValue *v = eval (r, n->a);
  Args a = { 0 };
  gboolean out;

  if (v == NULL || !eval_args (r, n, &a, store) || !j_run_test (r, n->name, v, &a, &out))
    return NULL;
  return j_mk_bool (r, n->op ? !out : out);
}

static JValue *
eval_compare (R *r, JNode *n)
{
  JValue *x = eval (r, n->a);

  for (guint i = 0; x != NULL && i < n->args->len; i++)
    {
      JValue *y = eval (r, n->args->pdata[i]);
      gboolean out = FALSE;

      if (y == NULL || !compare_op (r, g_array_index (n->ops, int, i), x, y, &out))
        return NULL;
      if (!out)
        return j_mk_bool (r, FALSE);
      x = y;
    }
  return x != NULL ? j_mk_bool (r, TRUE) : NULL;
}

static JValue *
eval_sequence (R *r, JNode *n)
{
  JValue *out = n->kind == JN_DICT ? j_dict_new (r->arena, JV_DICT) : j_list_new (r->arena);

  out->is_tuple = n->kind == JN_TUPLE;
  for (guint i = 0; i < n->args->len; i++)
    {
      JValue *v = eval (r, n->args->pdata[i]);

      if (v == NULL)
        return NULL;
      if (n->kind != JN_DICT)
        {
          j_list_add (r->arena, out, v);
          continue;
        }
      {
        JValue *val = eval (r, n->args->pdata[++i]);

        if (val == NULL)
          return NULL;
        if (v->kind != JV_STRING)
          return j_fail (r, AT_ERROR_UNSUPPORTED, "dict keys other than strings are not supported");
        j_dict_set (r->arena, out, v, val);
      }
    }
  return out;
}

static JValue *
eval_inner (R *r, JNode *n)
{
  JValue *x, *y;

  switch (n->kind)
    {
    case JN_LITERAL: return n->value;
    case JN_NAME: return lookup (r, n->name);
    case JN_ATTR: return (x = eval (r, n->a)) != NULL ? j_get_attr (r, x, n->name) : NULL;
    case JN_ITEM:
      if ((x = eval (r, n->a)) == NULL || (y = eval (r, n->b)) == NULL)
        return NULL;
      return j_get_item (r, x, y);
    case JN_SLICE:
      {
        JValue *lo = NULL, *hi = NULL, *step = NULL;

        if ((x = eval (r, n->a)) == NULL || (n->b != NULL && (lo = eval (r, n->b)) == NULL)
            || (n->c != NULL && (hi = eval (r, n->c)) == NULL)
            || (n->d != NULL && (step = eval (r, n->d)) == NULL))
          return NULL;
        return j_get_slice (r, x, lo, hi, step);
      }
    case JN_CALL: return eval_call (r, n);
    case JN_FILTER: return eval_filter (r, n);
    case JN_TEST: return eval_test (r, n);
    case JN_NEG:
    case JN_POS:
      if ((x = eval (r, n->a)) == NULL)
        return NULL;
      if (x->kind == JV_FLOAT)
        return j_mk_float (r, n->kind == JN_NEG ? -x->f : x->f);
      if (x->kind == JV_INT || x->kind == JV_BOOL)
        return n->kind == JN_POS ? j_mk_int (r, j_num_i (x)) : int_op (r, JOP_SUB, 0, j_num_i (x));
      if (x->kind == JV_UNDEFINED)
        return j_undefined_used (r, x);
      return j_fail (r, AT_ERROR_BAD_FILE, "bad operand type for unary %c: '%s'", n->kind == JN_NEG ? '-' : '+',
                   j_type_name (x));
    case JN_NOT: return (x = eval (r, n->a)) != NULL ? j_mk_bool (r, !j_truthy (x)) : NULL;
    case JN_AND:
      if ((x = eval (r, n->a)) == NULL || !j_truthy (x))
        return x;
      return eval (r, n->b);
    case JN_OR:
      if ((x = eval (r, n->a)) == NULL || j_truthy (x))
        return x;
      return eval (r, n->b);
    case JN_BINARY:
      if ((x = eval (r, n->a)) == NULL || (y = eval (r, n->b)) == NULL)
        return NULL;
      return binary_op (r, n->op, x, y);
    case JN_COMPARE: return eval_compare (r, n);
    case JN_COND:
      if ((x = eval (r, n->a)) == NULL)
        return NULL;
      if (j_truthy (x))
        return eval (r, n->b);
      return n->c != NULL ? eval (r, n->c) : j_mk_undef (r, "the inline if expression evaluated to false and no else section was defined.");
    case JN_LIST:
    case JN_TUPLE:
    case JN_DICT:
      return eval_sequence (r, n);
    default:
      return j_fail (r, AT_ERROR_FAILED, "statement node in an expression");
    }
}

static JValue *
eval (R *r, JNode *n)
{
  JValue *v;

  if (r->error != NULL)
    return NULL;
  if (++r->depth > AT_JINJA_MAX_DEPTH)
    {
      r->depth--;
      return j_fail (r, AT_ERROR_BAD_FILE, "nesting deeper than %d while rendering", AT_JINJA_MAX_DEPTH);
    }
  r->line = n->line;
  v = eval_inner (r, n);
  r->depth--;
  if (v != NULL && !j_check_arena (r))
    return NULL;
  return v;
}

/* ---- statements ---- */

static gboolean
emit (R *r, const char *s, gsize len)
{
  if (r->out->len + len > AT_JINJA_MAX_OUTPUT)
    return j_fail (r, AT_ERROR_BAD_FILE, "output longer than %u bytes", AT_JINJA_MAX_OUTPUT) != NULL;
  g_string_append_len (r->out, s, len);
  return TRUE;
}

/* Binds `targets` (names; `keys`, when given, the same names as values made once for a
 * loop) to `v`, unpacking a list or tuple for several names. */
static gboolean
assign_keys (R *r, JValue *vars, GPtrArray *targets, JValue **keys, JValue *v)
{
  if (targets->len == 1)
    {
      if (keys != NULL)
        j_dict_set (r->arena, vars, keys[0], v);
      else
        j_dict_set_name (r, vars, targets->pdata[0], v);
      return TRUE;
    }
  if (v->kind != JV_LIST)
    return j_fail (r, AT_ERROR_BAD_FILE, "cannot unpack a '%s' into %u names", j_type_name (v), targets->len) != NULL;
  if (v->list->len != targets->len)
    return j_fail (r, AT_ERROR_BAD_FILE, "%s values to unpack (expected %u, got %u)",
                 v->list->len > targets->len ? "too many" : "not enough", targets->len, v->list->len) != NULL;
  for (guint i = 0; i < targets->len; i++)
    if (keys != NULL)
      j_dict_set (r->arena, vars, keys[i], v->list->pdata[i]);
    else
      j_dict_set_name (r, vars, targets->pdata[i], v->list->pdata[i]);
  return TRUE;
}

static gboolean
assign (R *r, JValue *vars, GPtrArray *targets, JValue *v)
{
  return assign_keys (r, vars, targets, NULL, v);
}

static JValue *
loop_object (R *r, JValue *items, guint i)
{
  JValue *loop = j_value_new (r->arena, JV_LOOP);

  loop->loop.items = items;
  loop->loop.index = i;
  return loop;
}

static gboolean
count_iteration (R *r)
{
  if (++r->iterations > AT_JINJA_MAX_ITERATIONS)
    return j_fail (r, AT_ERROR_BAD_FILE, "more than %d loop iterations", AT_JINJA_MAX_ITERATIONS) != NULL;
  return j_check_arena (r);
}

static gboolean
exec_for (R *r, JNode *n)
{
  JValue *seq = eval (r, n->a);
  g_autoptr (GPtrArray) all = NULL;
  g_autoptr (GPtrArray) items = g_ptr_array_new ();
  Scope *outer = r->scope;
  JValue *item_list;
  g_autofree JValue **keys = NULL;

  if (seq == NULL || (all = j_iterate (r, seq)) == NULL)
    return FALSE;
  for (guint i = 0; i < all->len; i++)
    {
      Scope probe = { NULL, outer };
      JValue *keep;

      if (n->b == NULL)
        {
          g_ptr_array_add (items, all->pdata[i]);
          continue;
        }
      if (!count_iteration (r))
        return FALSE;
      probe.vars = j_scope_vars_new ();
      r->scope = &probe;
      keep = assign (r, probe.vars, n->targets, all->pdata[i]) ? eval (r, n->b) : NULL;
      r->scope = outer;
      j_value_free (probe.vars);
      if (keep == NULL)
        return FALSE;
      if (j_truthy (keep))
        g_ptr_array_add (items, all->pdata[i]);
    }
  if (items->len == 0)
    return n->else_body == NULL || exec_body (r, n->else_body);
  item_list = j_list_from (r, items, FALSE);
  keys = g_new (JValue *, n->targets->len + 1);
  for (guint i = 0; i < n->targets->len; i++)
    keys[i] = j_mk_str (r, n->targets->pdata[i], -1);
  keys[n->targets->len] = j_mk_str (r, "loop", 4);
  for (guint i = 0; i < items->len; i++)
    {
      Scope scope = { NULL, outer };
      gboolean ok;

      if (!count_iteration (r))
        return FALSE;
      scope.vars = j_scope_vars_new ();
      ok = assign_keys (r, scope.vars, n->targets, keys, items->pdata[i]);
      j_dict_set (r->arena, scope.vars, keys[n->targets->len], loop_object (r, item_list, i));
      r->scope = &scope;
      ok = ok && exec_body (r, n->body);
      r->scope = outer;
      j_value_free (scope.vars);
      if (!ok)
        return FALSE;
      if (r->flow == FLOW_BREAK)
        {
          r->flow = FLOW_NONE;
          break;
        }
      r->flow = FLOW_NONE;
    }
  return TRUE;
}

static gboolean
exec_set (R *r, JNode *n)
{
  JValue *v, *ns;

  if (n->kind == JN_SET_BLOCK)
    {
      GString *saved = r->out;
      gboolean ok;

      r->out = g_string_new (NULL);
      ok = exec_body (r, n->body);
      v = j_mk_gstr (r, r->out);
      r->out = saved;
      if (!ok || v == NULL)
        return FALSE;
      j_dict_set_name (r, r->scope->vars, n->name, v);
      return TRUE;
    }
  if ((v = eval (r, n->a)) == NULL)
    return FALSE;
  if (n->attr == NULL)
    return assign (r, r->scope->vars, n->targets, v);
  ns = lookup (r, n->name);
  if (ns->kind != JV_NAMESPACE)
    return j_fail (r, AT_ERROR_BAD_FILE, "cannot assign attribute on non-namespace object") != NULL;
  j_dict_set_name (r, ns, n->attr, v);
  return TRUE;
}

static gboolean
exec_node (R *r, JNode *n)
{
  JValue *v;

  r->line = n->line;
  switch (n->kind)
    {
    case JN_TEXT: return emit (r, n->name, n->len);
    case JN_OUTPUT:
      {
        GString *s;
        gboolean ok;

        if ((v = eval (r, n->a)) == NULL)
          return FALSE;
        if (v->kind == JV_STRING)
          return emit (r, v->str.s, v->str.len);
        s = g_string_new (NULL);
        ok = j_append_str (r, s, v, FALSE, 0) && emit (r, s->str, s->len);
        g_string_free (s, TRUE);
        return ok;
      }
    case JN_IF:
      if ((v = eval (r, n->a)) == NULL)
        return FALSE;
      if (j_truthy (v))
        return exec_body (r, n->body);
      return n->else_body == NULL || exec_body (r, n->else_body);
    case JN_FOR: return exec_for (r, n);
    case JN_SET:
    case JN_SET_BLOCK:
      return exec_set (r, n);
    case JN_MACRO:
      v = j_value_new (r->arena, JV_MACRO);
      v->macro = n;
      j_dict_set_name (r, r->scope->vars, n->name, v);
      return TRUE;
    case JN_BREAK:
    case JN_CONTINUE:
      r->flow = n->kind == JN_BREAK ? FLOW_BREAK : FLOW_CONTINUE;
      return TRUE;
    default:
      return j_fail (r, AT_ERROR_FAILED, "expression node as a statement") != NULL;
    }
}

static gboolean
exec_body (R *r, GPtrArray *body)
{
  gboolean ok = TRUE;

  if (++r->depth > AT_JINJA_MAX_DEPTH)
    {
      r->depth--;
      return j_fail (r, AT_ERROR_BAD_FILE, "nesting deeper than %d while rendering", AT_JINJA_MAX_DEPTH) != NULL;
    }
  for (guint i = 0; ok && i < body->len && r->flow == FLOW_NONE; i++)
    ok = exec_node (r, body->pdata[i]) && j_check_arena (r);
  r->depth--;
  return ok;
}

char *
at_jinja_render (AtJinjaTemplate *t, JsonObject *context, GError **error)
{
  R r = { 0 };
  Scope root = { NULL, NULL }, top = { NULL, &root };
  gboolean ok = FALSE;
  char *result = NULL;

  g_return_val_if_fail (t != NULL, NULL);
  r.t = t;
  r.arena = j_arena_new (AT_JINJA_MAX_MEMORY);
  if (context != NULL)
    {
      g_autoptr (JsonNode) node = json_node_init_object (json_node_alloc (), context);

      root.vars = j_from_json (&r, node, 0);
    }
  else
    root.vars = j_dict_new (r.arena, JV_DICT);
  top.vars = j_dict_new (r.arena, JV_DICT);
  r.scope = &top;
  r.top = &top;
  r.out = g_string_new (NULL);
  if (root.vars != NULL)
    ok = exec_body (&r, t->root) && j_check_arena (&r);
  if (ok)
    result = g_string_free (r.out, FALSE);
  else
    {
      g_string_free (r.out, TRUE);
      g_propagate_error (error, g_steal_pointer (&r.error));
    }
  g_clear_error (&r.error);
  j_arena_free (r.arena);
  return result;
}
