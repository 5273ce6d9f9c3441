/* at-jinja-private.h: the syntax tree, the values and the render state shared by the parser
 * (at-jinja.c), the values (at-jinja-value.c), the filters, tests and methods
 * (at-jinja-builtins.c) and the evaluator (at-jinja-eval.c). */
#pragma once

#include "at-jinja.h"

G_BEGIN_DECLS

typedef enum
{
  /* statements */
  JN_TEXT,     /* name/len: the text */
  JN_OUTPUT,   /* a: the expression */
  JN_IF,       /* a: condition, body, else_body (an elif is an IF alone in else_body) */
  JN_FOR,      /* targets (names), a: iterable, b: filter or NULL, body, else_body */
  JN_SET,      /* targets, or name + attr for ns.attr; a: value */
  JN_SET_BLOCK, /* name; body */
  JN_MACRO,    /* name; targets: parameters, args: defaults (NULL entries), body */
  JN_BREAK,
  JN_CONTINUE,
  /* expressions */
  JN_LITERAL,  /* value */
  JN_NAME,     /* name */
  JN_ATTR,     /* a.name */
  JN_ITEM,     /* a[b] */
  JN_SLICE,    /* a[b:c:d]; any of b, c, d may be NULL */
  JN_CALL,     /* a(args, kwnames=kwargs) */
  JN_FILTER,   /* a | name(args, kw) */
  JN_TEST,     /* a is [not] name(args); op != 0 for `is not` */
  JN_NEG,
  JN_POS,
  JN_NOT,
  JN_AND,
  JN_OR,
  JN_BINARY,   /* op: one of JOP_* */
  JN_COMPARE,  /* a, then (ops[i], args[i]) pairs: chained */
  JN_COND,     /* b if a else c (c NULL: undefined) */
  JN_LIST,
  JN_TUPLE,
  JN_DICT,     /* args: key, value, key, value... */
} JNodeKind;

typedef enum
{
  JOP_ADD = 1, JOP_SUB, JOP_MUL, JOP_DIV, JOP_FLOORDIV, JOP_MOD, JOP_POW, JOP_CONCAT,
  JOP_EQ, JOP_NE, JOP_LT, JOP_LE, JOP_GT, JOP_GE, JOP_IN, JOP_NOTIN,
} JOp;

typedef struct _JValue JValue;
typedef struct _JNode JNode;

struct _JNode
{
  JNodeKind kind;
  int line, col;
  int op;
  char *name;       /* name, attribute, filter, test, text */
  gsize len;        /* bytes of name (text may hold any bytes) */
  char *attr;       /* JN_SET of ns.attr */
  JValue *value;    /* JN_LITERAL */
  JNode *a, *b, *c, *d;
  GPtrArray *args;     /* JNode* */
  GPtrArray *kwnames;  /* char* */
  GPtrArray *kwargs;   /* JNode* */
  GPtrArray *targets;  /* char* */
  GArray *ops;         /* int, JN_COMPARE */
  GPtrArray *body, *else_body; /* JNode* */
};

typedef enum
{
  JV_UNDEFINED,
  JV_NONE,
  JV_BOOL,
  JV_INT,
  JV_FLOAT,
  JV_STRING,
  JV_LIST,      /* also tuples (is_tuple) */
  JV_DICT,
  JV_NAMESPACE, /* a dict whose attributes may be set */
  JV_FUNCTION,  /* a global function: name */
  JV_METHOD,    /* a bound method: self + name */
  JV_MACRO,
  JV_LOOP,      /* a for loop's `loop`: loop.items + loop.index */
} JValueKind;

typedef struct _JDict JDict;

struct _JValue
{
  JValueKind kind;
  gboolean is_tuple;
  union
  {
    gboolean b;
    gint64 i;
    double f;
    struct
    {
      char *s; /* NUL-terminated; may hold NULs */
      gsize len;
    } str;
    GPtrArray *list; /* JValue* */
    JDict *dict;
    struct
    {
      const char *name;
      JValue *self;
    } fn;
    JNode *macro;
    struct
    {
      JValue *items; /* a JV_LIST of the items iterated */
      guint index;
    } loop;
  };
  char *hint; /* JV_UNDEFINED: what was undefined, for the error when it is used */
};

/* Every value of one render (or of one template's literals) lives in an arena, freed at
 * once; values are never shared between renders except the template's literals. */
typedef struct
{
  GPtrArray *values;
  gsize bytes;
  gsize limit;
  gboolean over;
} JArena;

struct _AtJinjaTemplate
{
  GPtrArray *nodes; /* every node, for freeing */
  GPtrArray *root;  /* top-level statements */
  JArena *literals;
  GDateTime *now;
};

JArena *j_arena_new (gsize limit);
void j_arena_free (JArena *arena);
JValue *j_value_new (JArena *arena, JValueKind kind);
JValue *j_string_new (JArena *arena, const char *s, gssize len);

/* ---- render state (at-jinja-eval.c) ---- */

struct _JDict
{
  GPtrArray *keys; /* JValue* strings, in insertion order */
  GPtrArray *vals;
  GHashTable *index; /* key JValue* -> position + 1; NULL while the dict is small */
};

/* Dicts up to this many keys are searched linearly: most are a message's few fields or a
 * loop iteration's scope, and a hash table per iteration costs more than it saves. */
#define SMALL_DICT 8

typedef struct _Scope Scope;
struct _Scope
{
  JValue *vars; /* a JV_DICT */
  Scope *parent;
};

enum
{
  FLOW_NONE,
  FLOW_BREAK,
  FLOW_CONTINUE
};

typedef struct
{
  AtJinjaTemplate *t;
  JArena *arena;
  GString *out;
  Scope *scope;
  Scope *top;
  guint64 iterations;
  int depth;
  int flow;
  int line;
  guint64 work; /* bytes and items scanned, against AT_JINJA_MAX_WORK */
  GError *error;
} R;

typedef struct
{
  JValue **pos;
  guint n_pos;
  const char *const *kw_names;
  JValue **kw;
  guint n_kw;
} Args;

/* ---- shared between the evaluator files ---- */

void j_append_float (GString *out, double f, gboolean json);
gboolean j_append_str (R *r, GString *out, const JValue *v, gboolean repr, int depth);
JValue *j_apply_filter (R *r, const char *name, JValue *v, const Args *a);
JValue *j_arg_get (const Args *a, guint i, const char *name);
JValue *j_call_method (R *r, JValue *self, const char *name, const Args *a);
void j_charge (JArena *a, gsize bytes);
gboolean j_check_arena (R *r);
gboolean j_contains (R *r, JValue *hay, JValue *needle, gboolean *out);
JValue *j_dict_get (JValue *d, const char *key, gsize len);
JValue *j_dict_new (JArena *arena, JValueKind kind);
void j_dict_set (JArena *arena, JValue *d, JValue *key, JValue *val);
void j_dict_set_name (R *r, JValue *d, const char *name, JValue *val);
JValue *j_fail (R *r, int code, const char *format, ...) G_GNUC_PRINTF (3, 4);
const char *j_find_bytes (const char *hay, gsize n, const char *needle, gsize m);
JValue *j_from_json (R *r, JsonNode *node, int depth);
JValue *j_get_attr (R *r, JValue *obj, const char *name);
JValue *j_get_item (R *r, JValue *obj, JValue *key);
JValue *j_get_slice (R *r, JValue *obj, JValue *lo_v, JValue *hi_v, JValue *step_v);
gboolean j_is_number (const JValue *v);
GPtrArray *j_iterate (R *r, JValue *v);
void j_list_add (JArena *arena, JValue *list, JValue *item);
JValue *j_list_from (R *r, GPtrArray *items, gboolean tuple);
JValue *j_list_new (JArena *arena);
JValue *j_mk_bool (R *r, gboolean b);
JValue *j_mk_float (R *r, double f);
JValue *j_mk_gstr (R *r, GString *s);
JValue *j_mk_int (R *r, gint64 i);
JValue *j_mk_str (R *r, const char *s, gssize len);
JValue *j_mk_undef (R *r, const char *format, ...) G_GNUC_PRINTF (2, 3);
double j_num_f (const JValue *v);
gint64 j_num_i (const JValue *v);
gboolean j_run_test (R *r, const char *name, JValue *v, const Args *a, gboolean *out);
JValue *j_scope_vars_new (void);
gboolean j_spend (R *r, gsize n);
JValue *j_strftime_now (R *r, JValue *fmt);
JValue *j_to_string (R *r, JValue *v);
gboolean j_truthy (const JValue *v);
const char *j_type_name (const JValue *v);
JValue *j_undefined_used (R *r, const JValue *v);
gsize j_utf8_len (const JValue *s);
void j_value_free (gpointer data);
gboolean j_values_equal (const JValue *a, const JValue *b, int depth);
gboolean j_values_order (R *r, const JValue *a, const JValue *b, int *out, int depth);
gboolean j_want_int (R *r, JValue *v, const char *what, gint64 *out);

G_END_DECLS
