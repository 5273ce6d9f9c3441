/* at-jinja.c: the lexer and the parser of the chat-template Jinja subset (see at-jinja.h).
 *
 * The lexer follows jinja2/lexer.py with trim_blocks and lstrip_blocks on:
 *  - "\r\n" and "\r" become "\n" everywhere, and one trailing newline of the source is
 *    dropped (keep_trailing_newline=False);
 *  - `{%-`, `{{-`, `{#-` strip all whitespace before the tag (Python's str.rstrip);
 *  - otherwise, before `{%` and `{#` (not `{{`) only spaces or tabs back to the start of the
 *    line are stripped, where "start of the line" is a newline inside the text or, for text
 *    with none, the previous tag having ended with a newline (jinja2's `line_starting`);
 *    `{%+` keeps them;
 *  - `-%}`, `-}}`, `-#}` strip all whitespace after; `%}` and `#}` eat one newline
 *    (trim_blocks), `+%}` does not, `}}` never does;
 *  - inside a tag, `}}` / `%}` do not end it while a bracket is open (`{{ {'a': 1}}}`).
 * The parser follows jinja2/parser.py's precedence: conditional < or < and < not < comparison
 * (chained, in, not in) < + - < ~ < * / // % < ** < unary - + < postfix (.x [x] (x)) and then
 * filters and tests, which bind tighter than any operator (`a + b | trim` trims b).
 */
#include "at-jinja-private.h"

#include <string.h>

#include "at-error.h"

typedef enum
{
  TK_EOF,
  TK_DATA,
  TK_VAR_BEGIN,
  TK_VAR_END,
  TK_BLOCK_BEGIN,
  TK_BLOCK_END,
  TK_NAME,
  TK_STRING,
  TK_INT,
  TK_FLOAT,
  TK_OP,
} TokKind;

typedef struct
{
  TokKind kind;
  int line, col;
  const char *start; /* into the normalised source (TK_NAME, TK_OP, TK_DATA) */
  gsize len;
  char *str;         /* TK_STRING: the decoded value (owned), len its bytes */
  gint64 i;
  double f;
} Tok;

typedef struct
{
  char *src;     /* normalised */
  gsize n;
  GArray *toks;  /* Tok */
  guint pos;
  int depth;
  AtJinjaTemplate *t;
  GError **error;
  const char *where_at; /* cache of where() */
  int where_line, where_col;
} Parser;

static void
tok_clear (gpointer p)
{
  g_free (((Tok *) p)->str);
}

/* Python's str.isspace for one code point. */
static gboolean
py_isspace (gunichar c)
{
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0
         || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029
         || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Bytes of the whitespace run that ends at `end` (going back to at least `start`). */
static gsize
space_before (const char *start, const char *end)
{
  const char *p = end;

  while (p > start)
    {
      const char *q = g_utf8_find_prev_char (start, p);
      gunichar c;

      if (q == NULL)
        break;
      c = g_utf8_get_char_validated (q, p - q);
      if (c == (gunichar) -1 || c == (gunichar) -2 || !py_isspace (c))
        break;
      p = q;
    }
  return end - p;
}

static gsize
space_after (const char *p, const char *end)
{
  const char *q = p;

  while (q < end)
    {
      gunichar c = g_utf8_get_char_validated (q, end - q);

      if (c == (gunichar) -1 || c == (gunichar) -2 || !py_isspace (c))
        break;
      q = g_utf8_next_char (q);
    }
  return q - p;
}

/* Line and column (1-based, in characters) of `at`; tokens come in order, so it walks on
 * from the last answer instead of from the start. */
static void
where (Parser *p, const char *at, int *line, int *col)
{
  const char *s;

  if (p->where_at == NULL || at < p->where_at)
    {
      p->where_at = p->src;
      p->where_line = 1;
      p->where_col = 1;
    }
  for (s = p->where_at; s < at; s++)
    {
      if (*s == '\n')
        {
          p->where_line++;
          p->where_col = 1;
        }
      else if (((guchar) *s & 0xc0) != 0x80)
        p->where_col++;
    }
  p->where_at = at;
  *line = p->where_line;
  *col = p->where_col;
}

static gboolean G_GNUC_PRINTF (4, 5)
fail_at (Parser *p, int code, const char *at, const char *format, ...)
{
  g_autofree char *msg = NULL;
  va_list ap;
  int line, col;

  where (p, at, &line, &col);
  va_start (ap, format);
  msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (p->error, AT_ERROR, code, "chat template:%d:%d: %s", line, col, msg);
  return FALSE;
}

static void
push_tok (Parser *p, TokKind kind, const char *start, gsize len)
{
  Tok t = { 0 };

  t.kind = kind;
  t.start = start;
  t.len = len;
  where (p, start, &t.line, &t.col);
  g_array_append_val (p->toks, t);
}

/* Python's unicode-escape decoding of a string literal's body, as jinja2 does it. */
static char *
decode_string (Parser *p, const char *s, gsize n, gsize *out_len)
{
  GString *out = g_string_sized_new (n);

  for (gsize i = 0; i < n; i++)
    {
      char c = s[i];
      guint32 v;
      int digits;

      if (c != '\\' || i + 1 >= n)
        {
          g_string_append_c (out, c);
          continue;
        }
      c = s[++i];
      switch (c)
        {
        case '\n': break;
        case '\\': g_string_append_c (out, '\\'); break;
        case '\'': g_string_append_c (out, '\''); break;
        case '"': g_string_append_c (out, '"'); break;
        case 'a': g_string_append_c (out, '\a'); break;
        case 'b': g_string_append_c (out, '\b'); break;
        case 'f': g_string_append_c (out, '\f'); break;
        case 'n': g_string_append_c (out, '\n'); break;
        case 'r': g_string_append_c (out, '\r'); break;
        case 't': g_string_append_c (out, '\t'); break;
        case 'v': g_string_append_c (out, '\v'); break;
        case 'x':
        case 'u':
        case 'U':
          digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
          v = 0;
          for (int k = 0; k < digits; k++)
            {
              if (i + 1 >= n || !g_ascii_isxdigit (s[i + 1]))
                {
                  fail_at (p, AT_ERROR_BAD_FILE, s + i, "truncated \\%c escape in a string", c);
                  g_string_free (out, TRUE);
                  return NULL;
                }
              v = v * 16 + g_ascii_xdigit_value (s[++i]);
            }
          if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
            {
              fail_at (p, AT_ERROR_UNSUPPORTED, s + i, "escape for U+%X: not a scalar value", v);
              g_string_free (out, TRUE);
              return NULL;
            }
          g_string_append_unichar (out, v);
          break;
        case 'N':
          fail_at (p, AT_ERROR_UNSUPPORTED, s + i, "\\N{...} escapes are not supported");
          g_string_free (out, TRUE);
          return NULL;
        default:
          if (c >= '0' && c <= '7')
            {
              v = c - '0';
              for (int k = 0; k < 2 && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '7'; k++)
                v = v * 8 + (s[++i] - '0');
              g_string_append_unichar (out, v);
            }
          else
            {
              /* Unknown escapes keep their backslash, as in Python. */
              g_string_append_c (out, '\\');
              g_string_append_c (out, c);
            }
        }
    }
  *out_len = out->len;
  return g_string_free (out, FALSE);
}

static gboolean
lex_number (Parser *p, const char **pp, const char *end)
{
  const char *s = *pp, *q = s;
  gboolean is_float = FALSE;
  g_autoptr (GString) digits = g_string_new (NULL);
  Tok *t;

  while (q < end && (g_ascii_isdigit (*q) || (*q == '_' && q + 1 < end && g_ascii_isdigit (q[1]))))
    {
      if (*q != '_')
        g_string_append_c (digits, *q);
      q++;
    }
  if (q + 1 < end && *q == '.' && g_ascii_isdigit (q[1]))
    {
      is_float = TRUE;
      g_string_append_c (digits, *q++);
      while (q < end && (g_ascii_isdigit (*q) || (*q == '_' && q + 1 < end && g_ascii_isdigit (q[1]))))
        {
          if (*q != '_')
            g_string_append_c (digits, *q);
          q++;
        }
    }
  if (q < end && (*q == 'e' || *q == 'E'))
    {
      const char *r = q + 1;

      if (r < end && (*r == '+' || *r == '-'))
        r++;
      if (r < end && g_ascii_isdigit (*r))
        {
          is_float = TRUE;
          g_string_append_c (digits, 'e');
          g_string_append_len (digits, q + 1, r - q - 1);
          q = r;
          while (q < end && g_ascii_isdigit (*q))
            g_string_append_c (digits, *q++);
        }
    }
  /* As in Python (and jinja2's integer pattern), "007" is not a decimal integer. */
  if (!is_float && digits->len > 1 && digits->str[0] == '0' && strspn (digits->str, "0") != digits->len)
    return fail_at (p, AT_ERROR_BAD_FILE, s, "leading zeros in an integer literal");
  push_tok (p, is_float ? TK_FLOAT : TK_INT, s, q - s);
  t = &g_array_index (p->toks, Tok, p->toks->len - 1);
  if (is_float)
    t->f = g_ascii_strtod (digits->str, NULL);
  else
    {
      char *e;
      guint64 v = g_ascii_strtoull (digits->str, &e, 10);

      if (digits->len > 18 && (v > G_MAXINT64 || digits->len > 19))
        return fail_at (p, AT_ERROR_UNSUPPORTED, s, "integer literal beyond 64 bits");
      t->i = (gint64) v;
    }
  *pp = q;
  return TRUE;
}

static const char *const two_char_ops[] = { "//", "**", "==", "!=", "<=", ">=" };

/* Tokens of one {{ }} or {% %} tag starting at *pp (after the opener); stops after the end
 * marker, returning in *trail what the end marker consumed (for line_starting). */
static gboolean
lex_tag (Parser *p, const char **pp, gboolean is_block, const char *open)
{
  const char *s = *pp, *end = p->src + p->n;
  const char *closer = is_block ? "%}" : "}}";
  int balance = 0;

  while (TRUE)
    {
      s += space_after (s, end);
      if (s >= end)
        return fail_at (p, AT_ERROR_BAD_FILE, open, "unterminated '%s' tag: expected '%s'",
                        is_block ? "{%" : "{{", closer);
      if (balance == 0)
        {
          if (*s == '-' && end - s >= 3 && strncmp (s + 1, closer, 2) == 0)
            {
              push_tok (p, is_block ? TK_BLOCK_END : TK_VAR_END, s, 3);
              s += 3;
              s += space_after (s, end);
              break;
            }
          if (is_block && *s == '+' && end - s >= 3 && strncmp (s + 1, closer, 2) == 0)
            {
              push_tok (p, TK_BLOCK_END, s, 3);
              s += 3;
              break;
            }
          if (end - s >= 2 && strncmp (s, closer, 2) == 0)
            {
              push_tok (p, is_block ? TK_BLOCK_END : TK_VAR_END, s, 2);
              s += 2;
              if (is_block && s < end && *s == '\n')
                s++;
              break;
            }
        }
      if (g_ascii_isalpha (*s) || *s == '_')
        {
          const char *q = s;

          while (q < end && (g_ascii_isalnum (*q) || *q == '_'))
            q++;
          push_tok (p, TK_NAME, s, q - s);
          s = q;
        }
      else if (g_ascii_isdigit (*s))
        {
          if (!lex_number (p, &s, end))
            return FALSE;
        }
      else if (*s == '\'' || *s == '"')
        {
          const char *q = s + 1;
          Tok *t;
          gsize len;
          char *str;

          while (q < end && *q != *s)
            q += (*q == '\\' && q + 1 < end) ? 2 : 1;
          if (q >= end)
            return fail_at (p, AT_ERROR_BAD_FILE, s, "unterminated string literal");
          str = decode_string (p, s + 1, q - s - 1, &len);
          if (str == NULL)
            return FALSE;
          push_tok (p, TK_STRING, s, q + 1 - s);
          t = &g_array_index (p->toks, Tok, p->toks->len - 1);
          t->str = str;
          t->len = len;
          s = q + 1;
        }
      else
        {
          gsize len = 0;

          for (guint k = 0; k < G_N_ELEMENTS (two_char_ops) && len == 0; k++)
            if (end - s >= 2 && strncmp (s, two_char_ops[k], 2) == 0)
              len = 2;
          if (len == 0 && strchr ("+-/*%~[](){}<>=.:|,;", *s) != NULL && *s != '\0')
            len = 1;
          if (len == 0)
            return fail_at (p, AT_ERROR_BAD_FILE, s, "unexpected character '%.*s' in a tag",
                            (int) (g_utf8_skip[(guchar) *s] <= end - s ? g_utf8_skip[(guchar) *s] : 1), s);
          if (*s == '(' || *s == '[' || *s == '{')
            balance++;
          else if ((*s == ')' || *s == ']' || *s == '}') && len == 1)
            {
              if (balance == 0)
                return fail_at (p, AT_ERROR_BAD_FILE, s, "unexpected '%c'", *s);
              balance--;
            }
          push_tok (p, TK_OP, s, len);
          s += len;
        }
    }
  *pp = s;
  return TRUE;
}

/* Finds the next `{{`, `{%` or `{#` at or after `s`. */
static const char *
next_open (const char *s, const char *end)
{
  for (; s + 1 < end; s++)
    if (s[0] == '{' && (s[1] == '{' || s[1] == '%' || s[1] == '#'))
      return s;
  return NULL;
}

static gboolean
lex (Parser *p)
{
  const char *s = p->src, *end = p->src + p->n;
  gboolean line_starting = TRUE;

  while (s < end)
    {
      const char *open = next_open (s, end);
      const char *text_end;
      char kind, sign;

      if (open == NULL)
        {
          push_tok (p, TK_DATA, s, end - s);
          break;
        }
      kind = open[1];
      sign = (open + 2 < end && (open[2] == '-' || open[2] == '+')) ? open[2] : 0;
      text_end = open;
      if (sign == '-')
        text_end -= space_before (s, open);
      else if (sign != '+' && kind != '{')
        {
          const char *nl = open;
          gsize ws;

          while (nl > s && nl[-1] != '\n')
            nl--;
          ws = space_before (nl, open);
          if ((nl > s || line_starting) && ws == (gsize) (open - nl) && ws > 0)
            text_end = nl;
        }
      if (text_end > s)
        push_tok (p, TK_DATA, s, text_end - s);
      s = open + 2 + (sign != 0 ? 1 : 0);
      if (kind == '#')
        {
          const char *close = s;

          while (close + 1 < end && !(close[0] == '#' && close[1] == '}'))
            close++;
          if (close + 1 >= end)
            return fail_at (p, AT_ERROR_BAD_FILE, open, "unterminated comment: expected '#}'");
          if (close > s && close[-1] == '-')
            s = close + 2 + space_after (close + 2, end);
          else if (close > s && close[-1] == '+')
            s = close + 2;
          else
            s = close + 2 + (close + 2 < end && close[2] == '\n' ? 1 : 0);
        }
      else
        {
          const char *q = s + space_after (s, end);

          if (kind == '%' && end - q >= 3 && strncmp (q, "raw", 3) == 0
              && (q + 3 >= end || !(g_ascii_isalnum (q[3]) || q[3] == '_')))
            return fail_at (p, AT_ERROR_UNSUPPORTED, open, "{%% raw %%} is not supported");
          push_tok (p, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, open, s - open);
          if (!lex_tag (p, &s, kind == '%', open))
            return FALSE;
        }
      line_starting = s > p->src && s[-1] == '\n';
    }
  push_tok (p, TK_EOF, end, 0);
  return TRUE;
}

/* ---- parser ---- */

static Tok *
cur (Parser *p)
{
  return &g_array_index (p->toks, Tok, p->pos);
}

static Tok *
peek (Parser *p, guint ahead)
{
  guint i = MIN (p->pos + ahead, p->toks->len - 1);

  return &g_array_index (p->toks, Tok, i);
}

static gboolean
tok_is (Tok *t, TokKind kind, const char *text)
{
  return t->kind == kind && (text == NULL || (t->len == strlen (text) && memcmp (t->start, text, t->len) == 0));
}

static gboolean
is_op (Parser *p, const char *op)
{
  return tok_is (cur (p), TK_OP, op);
}

static gboolean
is_name (Parser *p, const char *name)
{
  return tok_is (cur (p), TK_NAME, name);
}

static char *
describe (Tok *t)
{
  switch (t->kind)
    {
    case TK_EOF: return g_strdup ("end of template");
    case TK_DATA: return g_strdup ("template text");
    case TK_VAR_BEGIN: return g_strdup ("'{{'");
    case TK_BLOCK_BEGIN: return g_strdup ("'{%'");
    case TK_VAR_END: return g_strdup ("end of print statement '}}'");
    case TK_BLOCK_END: return g_strdup ("end of statement block '%}'");
    default: return g_strdup_printf ("'%.*s'", (int) MIN (t->len, 40), t->start);
    }
}

static gboolean
fail_tok (Parser *p, int code, const char *expected)
{
  Tok *t = cur (p);
  g_autofree char *found = describe (t);

  g_set_error (p->error, AT_ERROR, code, "chat template:%d:%d: expected %s, found %s", t->line,
               t->col, expected, found);
  return FALSE;
}

static gboolean
expect_op (Parser *p, const char *op)
{
  g_autofree char *want = g_strdup_printf ("'%s'", op);

  if (!is_op (p, op))
    return fail_tok (p, AT_ERROR_BAD_FILE, want);
  p->pos++;
  return TRUE;
}

static JNode *
node_new (Parser *p, JNodeKind kind, Tok *at)
{
  JNode *n = g_new0 (JNode, 1);

  n->kind = kind;
  n->line = at->line;
  n->col = at->col;
  g_ptr_array_add (p->t->nodes, n);
  return n;
}

static char *
tok_text (Tok *t)
{
  return g_strndup (t->start, t->len);
}

static gboolean
enter (Parser *p)
{
  if (++p->depth > AT_JINJA_MAX_DEPTH)
    {
      Tok *t = cur (p);

      g_set_error (p->error, AT_ERROR, AT_ERROR_BAD_FILE,
                   "chat template:%d:%d: nesting deeper than %d", t->line, t->col,
                   AT_JINJA_MAX_DEPTH);
      return FALSE;
    }
  return TRUE;
}

static JNode *parse_expression (Parser *p, gboolean with_cond);
static JNode *parse_unary (Parser *p, gboolean with_filter);
static JNode *parse_primary (Parser *p);

static gboolean
parse_call_args (Parser *p, JNode *n)
{
  if (!expect_op (p, "("))
    return FALSE;
  n->args = g_ptr_array_new ();
  n->kwnames = g_ptr_array_new_with_free_func (g_free);
  n->kwargs = g_ptr_array_new ();
  while (!is_op (p, ")"))
    {
      JNode *arg;

      if (n->args->len + n->kwargs->len > 0 && !expect_op (p, ","))
        return FALSE;
      if (is_op (p, ")"))
        break;
      if (is_op (p, "*") || is_op (p, "**"))
        return fail_tok (p, AT_ERROR_UNSUPPORTED, "an argument (*args and **kwargs are not supported)");
      if (cur (p)->kind == TK_NAME && tok_is (peek (p, 1), TK_OP, "="))
        {
          g_ptr_array_add (n->kwnames, tok_text (cur (p)));
          p->pos += 2;
          if ((arg = parse_expression (p, TRUE)) == NULL)
            return FALSE;
          g_ptr_array_add (n->kwargs, arg);
          continue;
        }
      if (n->kwargs->len > 0)
        return fail_tok (p, AT_ERROR_BAD_FILE, "a keyword argument (positional after keyword)");
      if ((arg = parse_expression (p, TRUE)) == NULL)
        return FALSE;
      g_ptr_array_add (n->args, arg);
    }
  p->pos++;
  return TRUE;
}

static JNode *
parse_subscript (Parser *p, JNode *target, Tok *at)
{
  JNode *parts[3] = { NULL, NULL, NULL };
  int n_colons = 0;
  JNode *n;

  p->pos++; /* [ */
  while (TRUE)
    {
      if (is_op (p, ":"))
        {
          if (++n_colons > 2)
            {
              fail_tok (p, AT_ERROR_BAD_FILE, "']'");
              return NULL;
            }
          p->pos++;
          continue;
        }
      if (is_op (p, "]"))
        break;
      if (parts[n_colons] != NULL)
        {
          fail_tok (p, AT_ERROR_BAD_FILE, "']' or ':'");
          return NULL;
        }
      if ((parts[n_colons] = parse_expression (p, TRUE)) == NULL)
        return NULL;
      if (n_colons == 0 && is_op (p, ","))
        {
          fail_tok (p, AT_ERROR_UNSUPPORTED, "']' (tuple subscripts are not supported)");
          return NULL;
        }
    }
  p->pos++;
  if (n_colons == 0)
    {
      if (parts[0] == NULL)
        {
          g_set_error (p->error, AT_ERROR, AT_ERROR_BAD_FILE,
                       "chat template:%d:%d: expected a subscript, found ']'", at->line, at->col);
          return NULL;
        }
      n = node_new (p, JN_ITEM, at);
      n->a = target;
      n->b = parts[0];
      return n;
    }
  n = node_new (p, JN_SLICE, at);
  n->a = target;
  n->b = parts[0];
  n->c = parts[1];
  n->d = parts[2];
  return n;
}

static JNode *
parse_postfix (Parser *p, JNode *node)
{
  while (node != NULL)
    {
      Tok *at = cur (p);

      if (is_op (p, "."))
        {
          JNode *n;

          p->pos++;
          if (cur (p)->kind == TK_NAME)
            {
              n = node_new (p, JN_ATTR, at);
              n->a = node;
              n->name = tok_text (cur (p));
              p->pos++;
            }
          else if (cur (p)->kind == TK_INT)
            {
              n = node_new (p, JN_ITEM, at);
              n->a = node;
              n->b = node_new (p, JN_LITERAL, cur (p));
              n->b->value = j_value_new (p->t->literals, JV_INT);
              n->b->value->i = cur (p)->i;
              p->pos++;
            }
          else
            {
              fail_tok (p, AT_ERROR_BAD_FILE, "an attribute name after '.'");
              return NULL;
            }
          node = n;
        }
      else if (is_op (p, "["))
        node = parse_subscript (p, node, at);
      else if (is_op (p, "("))
        {
          JNode *n = node_new (p, JN_CALL, at);

          n->a = node;
          if (!parse_call_args (p, n))
            return NULL;
          node = n;
        }
      else
        break;
    }
  return node;
}

static JNode *
parse_filter_or_test (Parser *p, JNode *node)
{
  while (node != NULL)
    {
      Tok *at = cur (p);

      if (is_op (p, "|"))
        {
          JNode *n = node_new (p, JN_FILTER, at);

          p->pos++;
          if (cur (p)->kind != TK_NAME)
            {
              fail_tok (p, AT_ERROR_BAD_FILE, "a filter name after '|'");
              return NULL;
            }
          n->a = node;
          n->name = tok_text (cur (p));
          p->pos++;
          if (is_op (p, "."))
            {
              fail_tok (p, AT_ERROR_UNSUPPORTED, "a filter name (dotted filter names are not supported)");
              return NULL;
            }
          if (is_op (p, "(") && !parse_call_args (p, n))
            return NULL;
          node = n;
        }
      else if (is_name (p, "is"))
        {
          JNode *n = node_new (p, JN_TEST, at);
          Tok *t;

          p->pos++;
          if (is_name (p, "not"))
            {
              n->op = 1;
              p->pos++;
            }
          if (cur (p)->kind != TK_NAME)
            {
              fail_tok (p, AT_ERROR_BAD_FILE, "a test name after 'is'");
              return NULL;
            }
          n->a = node;
          n->name = tok_text (cur (p));
          p->pos++;
          t = cur (p);
          if (is_op (p, "("))
            {
              if (!parse_call_args (p, n))
                return NULL;
            }
          else if ((t->kind == TK_NAME || t->kind == TK_STRING || t->kind == TK_INT || t->kind == TK_FLOAT
                    || is_op (p, "[") || is_op (p, "{"))
                   && !tok_is (t, TK_NAME, "else") && !tok_is (t, TK_NAME, "or")
                   && !tok_is (t, TK_NAME, "and"))
            {
              JNode *arg;

              if (tok_is (t, TK_NAME, "is"))
                {
                  fail_tok (p, AT_ERROR_BAD_FILE, "a test argument");
                  return NULL;
                }
              arg = parse_postfix (p, parse_primary (p));
              if (arg == NULL)
                return NULL;
              n->args = g_ptr_array_new ();
              g_ptr_array_add (n->args, arg);
            }
          node = n;
        }
      else if (is_op (p, "("))
        {
          JNode *n = node_new (p, JN_CALL, at);

          n->a = node;
          if (!parse_call_args (p, n))
            return NULL;
          node = n;
        }
      else
        break;
    }
  return node;
}

static JNode *
parse_sequence (Parser *p, JNodeKind kind, const char *close, Tok *at)
{
  JNode *n = node_new (p, kind, at);

  n->args = g_ptr_array_new ();
  while (!is_op (p, close))
    {
      JNode *item;

      if (n->args->len > 0 && !expect_op (p, ","))
        return NULL;
      if (is_op (p, close))
        break;
      if ((item = parse_expression (p, TRUE)) == NULL)
        return NULL;
      g_ptr_array_add (n->args, item);
      if (kind == JN_DICT)
        {
          if (!expect_op (p, ":") || (item = parse_expression (p, TRUE)) == NULL)
            return NULL;
          g_ptr_array_add (n->args, item);
        }
    }
  p->pos++;
  return n;
}

static JNode *
literal (Parser *p, Tok *at, JValueKind kind)
{
  JNode *n = node_new (p, JN_LITERAL, at);

  n->value = j_value_new (p->t->literals, kind);
  return n;
}

static JNode *
parse_primary (Parser *p)
{
  Tok *t = cur (p);
  JNode *n;

  if (!enter (p))
    return NULL;
  if (t->kind == TK_NAME)
    {
      static const char *const trues[] = { "true", "True" }, *const falses[] = { "false", "False" };

      p->pos++;
      if (tok_is (t, TK_NAME, trues[0]) || tok_is (t, TK_NAME, trues[1]))
        (n = literal (p, t, JV_BOOL))->value->b = TRUE;
      else if (tok_is (t, TK_NAME, falses[0]) || tok_is (t, TK_NAME, falses[1]))
        n = literal (p, t, JV_BOOL);
      else if (tok_is (t, TK_NAME, "none") || tok_is (t, TK_NAME, "None"))
        n = literal (p, t, JV_NONE);
      else
        {
          n = node_new (p, JN_NAME, t);
          n->name = tok_text (t);
        }
    }
  else if (t->kind == TK_STRING)
    {
      GString *s = g_string_new (NULL);

      /* Adjacent string literals concatenate. */
      while (cur (p)->kind == TK_STRING)
        {
          g_string_append_len (s, cur (p)->str, cur (p)->len);
          p->pos++;
        }
      n = node_new (p, JN_LITERAL, t);
      n->value = j_string_new (p->t->literals, s->str, s->len);
      g_string_free (s, TRUE);
    }
  else if (t->kind == TK_INT)
    {
      (n = literal (p, t, JV_INT))->value->i = t->i;
      p->pos++;
    }
  else if (t->kind == TK_FLOAT)
    {
      (n = literal (p, t, JV_FLOAT))->value->f = t->f;
      p->pos++;
    }
  else if (is_op (p, "("))
    {
      p->pos++;
      if (is_op (p, ")"))
        {
          p->pos++;
          n = node_new (p, JN_TUPLE, t);
          n->args = g_ptr_array_new ();
        }
      else
        {
          n = parse_expression (p, TRUE);
          if (n != NULL && is_op (p, ","))
            {
              JNode *tuple = node_new (p, JN_TUPLE, t);

              tuple->args = g_ptr_array_new ();
              g_ptr_array_add (tuple->args, n);
              while (n != NULL && is_op (p, ","))
                {
                  p->pos++;
                  if (is_op (p, ")"))
                    break;
                  if ((n = parse_expression (p, TRUE)) != NULL)
                    g_ptr_array_add (tuple->args, n);
                }
              n = n != NULL ? tuple : NULL;
            }
          if (n != NULL && !expect_op (p, ")"))
            n = NULL;
        }
    }
  else if (is_op (p, "["))
    {
      p->pos++;
      n = parse_sequence (p, JN_LIST, "]", t);
    }
  else if (is_op (p, "{"))
    {
      p->pos++;
      n = parse_sequence (p, JN_DICT, "}", t);
    }
  else
    {
      fail_tok (p, AT_ERROR_BAD_FILE, "an expression");
      n = NULL;
    }
  p->depth--;
  return n;
}

static JNode *
parse_unary (Parser *p, gboolean with_filter)
{
  Tok *t = cur (p);
  JNode *n;

  if (!enter (p))
    return NULL;
  if (is_op (p, "-") || is_op (p, "+"))
    {
      JNode *operand;

      p->pos++;
      operand = parse_unary (p, FALSE);
      n = NULL;
      if (operand != NULL)
        {
          n = node_new (p, tok_is (t, TK_OP, "-") ? JN_NEG : JN_POS, t);
          n->a = operand;
        }
    }
  else
    n = parse_primary (p);
  n = parse_postfix (p, n);
  if (with_filter)
    n = parse_filter_or_test (p, n);
  p->depth--;
  return n;
}

static JNode *
binary (Parser *p, Tok *at, int op, JNode *a, JNode *b)
{
  JNode *n;

  if (a == NULL || b == NULL)
    return NULL;
  n = node_new (p, JN_BINARY, at);
  n->op = op;
  n->a = a;
  n->b = b;
  return n;
}

static JNode *
parse_pow (Parser *p)
{
  JNode *n = parse_unary (p, TRUE);

  while (n != NULL && is_op (p, "**"))
    {
      Tok *at = cur (p);

      p->pos++;
      n = binary (p, at, JOP_POW, n, parse_unary (p, TRUE));
    }
  return n;
}

static JNode *
parse_math2 (Parser *p)
{
  static const struct { const char *op; int code; } ops[] = {
    { "*", JOP_MUL }, { "/", JOP_DIV }, { "//", JOP_FLOORDIV }, { "%", JOP_MOD } };
  JNode *n = parse_pow (p);

  while (n != NULL)
    {
      Tok *at = cur (p);
      int code = 0;

      for (guint k = 0; k < G_N_ELEMENTS (ops); k++)
        if (is_op (p, ops[k].op))
          code = ops[k].code;
      if (code == 0)
        break;
      p->pos++;
      n = binary (p, at, code, n, parse_pow (p));
    }
  return n;
}

static JNode *
parse_concat (Parser *p)
{
  JNode *n = parse_math2 (p);

  while (n != NULL && is_op (p, "~"))
    {
      Tok *at = cur (p);

      p->pos++;
      n = binary (p, at, JOP_CONCAT, n, parse_math2 (p));
    }
  return n;
}

static JNode *
parse_math1 (Parser *p)
{
  JNode *n = parse_concat (p);

  while (n != NULL && (is_op (p, "+") || is_op (p, "-")))
    {
      Tok *at = cur (p);
      int code = is_op (p, "+") ? JOP_ADD : JOP_SUB;

      p->pos++;
      n = binary (p, at, code, n, parse_concat (p));
    }
  return n;
}

static JNode *
parse_compare (Parser *p)
{
  static const struct { const char *op; int code; } ops[] = {
    { "==", JOP_EQ }, { "!=", JOP_NE }, { "<", JOP_LT }, { "<=", JOP_LE }, { ">", JOP_GT },
    { ">=", JOP_GE } };
  Tok *at = cur (p);
  JNode *first = parse_math1 (p), *cmp = NULL;

  while (first != NULL)
    {
      int code = 0;
      JNode *rhs;

      for (guint k = 0; k < G_N_ELEMENTS (ops); k++)
        if (is_op (p, ops[k].op))
          code = ops[k].code;
      if (code != 0)
        p->pos++;
      else if (is_name (p, "in"))
        {
          code = JOP_IN;
          p->pos++;
        }
      else if (is_name (p, "not") && tok_is (peek (p, 1), TK_NAME, "in"))
        {
          code = JOP_NOTIN;
          p->pos += 2;
        }
      else
        break;
      if ((rhs = parse_math1 (p)) == NULL)
        return NULL;
      if (cmp == NULL)
        {
          cmp = node_new (p, JN_COMPARE, at);
          cmp->a = first;
          cmp->args = g_ptr_array_new ();
          cmp->ops = g_array_new (FALSE, FALSE, sizeof (int));
        }
      g_array_append_val (cmp->ops, code);
      g_ptr_array_add (cmp->args, rhs);
    }
  return cmp != NULL ? cmp : first;
}

static JNode *
parse_not (Parser *p)
{
  Tok *at = cur (p);
  JNode *n, *operand;

  if (!is_name (p, "not"))
    return parse_compare (p);
  if (!enter (p))
    return NULL;
  p->pos++;
  operand = parse_not (p);
  p->depth--;
  if (operand == NULL)
    return NULL;
  n = node_new (p, JN_NOT, at);
  n->a = operand;
  return n;
}

static JNode *
parse_logic (Parser *p, gboolean is_or)
{
  JNode *n = is_or ? parse_logic (p, FALSE) : parse_not (p);

  while (n != NULL && is_name (p, is_or ? "or" : "and"))
    {
      Tok *at = cur (p);
      JNode *rhs, *bin;

      p->pos++;
      rhs = is_or ? parse_logic (p, FALSE) : parse_not (p);
      if (rhs == NULL)
        return NULL;
      bin = node_new (p, is_or ? JN_OR : JN_AND, at);
      bin->a = n;
      bin->b = rhs;
      n = bin;
    }
  return n;
}

static JNode *
parse_expression (Parser *p, gboolean with_cond)
{
  JNode *n;

  if (!enter (p))
    return NULL;
  n = parse_logic (p, TRUE);
  while (with_cond && n != NULL && is_name (p, "if"))
    {
      Tok *at = cur (p);
      JNode *cond = node_new (p, JN_COND, at);

      p->pos++;
      cond->b = n;
      if ((cond->a = parse_logic (p, TRUE)) == NULL)
        {
          n = NULL;
          break;
        }
      if (is_name (p, "else"))
        {
          p->pos++;
          if ((cond->c = parse_expression (p, TRUE)) == NULL)
            {
              n = NULL;
              break;
            }
        }
      n = cond;
    }
  p->depth--;
  return n;
}

/* An expression, or an implicit tuple `a, b` (in {{ }}, set and for). */
static JNode *
parse_tuple (Parser *p)
{
  Tok *at = cur (p);
  JNode *n = parse_expression (p, TRUE), *tuple;

  if (n == NULL || !is_op (p, ","))
    return n;
  tuple = node_new (p, JN_TUPLE, at);
  tuple->args = g_ptr_array_new ();
  g_ptr_array_add (tuple->args, n);
  while (is_op (p, ","))
    {
      p->pos++;
      if (cur (p)->kind == TK_VAR_END || cur (p)->kind == TK_BLOCK_END)
        break;
      if ((n = parse_expression (p, TRUE)) == NULL)
        return NULL;
      g_ptr_array_add (tuple->args, n);
    }
  return tuple;
}

/* ---- statements ---- */

static gboolean parse_body (Parser *p, GPtrArray *body, const char *const *ends, const char *opener,
                            Tok *open_tok);

static gboolean
expect_block_end (Parser *p)
{
  if (cur (p)->kind != TK_BLOCK_END)
    return fail_tok (p, AT_ERROR_BAD_FILE, "end of statement block '%}'");
  p->pos++;
  return TRUE;
}

static gboolean
parse_targets (Parser *p, GPtrArray *targets, const char *what)
{
  gboolean paren = is_op (p, "(");

  if (paren)
    p->pos++;
  do
    {
      if (targets->len > 0)
        p->pos++;
      if (cur (p)->kind != TK_NAME)
        return fail_tok (p, AT_ERROR_BAD_FILE, what);
      g_ptr_array_add (targets, tok_text (cur (p)));
      p->pos++;
    }
  while (is_op (p, ","));
  return paren ? expect_op (p, ")") : TRUE;
}

static JNode *
parse_for (Parser *p, Tok *at)
{
  static const char *const mid[] = { "else", "endfor", NULL };
  static const char *const end[] = { "endfor", NULL };
  JNode *n = node_new (p, JN_FOR, at);

  n->targets = g_ptr_array_new_with_free_func (g_free);
  n->body = g_ptr_array_new ();
  if (!parse_targets (p, n->targets, "a loop variable name"))
    return NULL;
  if (!is_name (p, "in"))
    return fail_tok (p, AT_ERROR_BAD_FILE, "'in'"), NULL;
  p->pos++;
  /* The iterable excludes the conditional: `for x in xs if c` is a filter. */
  {
    Tok *it = cur (p);
    JNode *first = parse_logic (p, TRUE);

    if (first != NULL && is_op (p, ","))
      {
        JNode *tuple = node_new (p, JN_TUPLE, it);

        tuple->args = g_ptr_array_new ();
        g_ptr_array_add (tuple->args, first);
        while (first != NULL && is_op (p, ","))
          {
            p->pos++;
            if ((first = parse_logic (p, TRUE)) != NULL)
              g_ptr_array_add (tuple->args, first);
          }
        first = first != NULL ? tuple : NULL;
      }
    if ((n->a = first) == NULL)
      return NULL;
  }
  if (is_name (p, "if"))
    {
      p->pos++;
      if ((n->b = parse_expression (p, TRUE)) == NULL)
        return NULL;
    }
  if (is_name (p, "recursive"))
    return fail_tok (p, AT_ERROR_UNSUPPORTED, "end of the for tag (recursive loops are not supported)"), NULL;
  if (!expect_block_end (p) || !parse_body (p, n->body, mid, "for", at))
    return NULL;
  if (is_name (p, "else"))
    {
      p->pos++;
      n->else_body = g_ptr_array_new ();
      if (!expect_block_end (p) || !parse_body (p, n->else_body, end, "for", at))
        return NULL;
    }
  p->pos++; /* endfor */
  return expect_block_end (p) ? n : NULL;
}

static JNode *
parse_if (Parser *p, Tok *at)
{
  static const char *const mid[] = { "elif", "else", "endif", NULL };
  static const char *const end[] = { "endif", NULL };
  JNode *n = node_new (p, JN_IF, at), *last = n;

  while (TRUE)
    {
      last->body = g_ptr_array_new ();
      if ((last->a = parse_tuple (p)) == NULL || !expect_block_end (p)
          || !parse_body (p, last->body, mid, "if", at))
        return NULL;
      if (is_name (p, "elif"))
        {
          JNode *elif = node_new (p, JN_IF, cur (p));

          p->pos++;
          last->else_body = g_ptr_array_new ();
          g_ptr_array_add (last->else_body, elif);
          last = elif;
          continue;
        }
      if (is_name (p, "else"))
        {
          p->pos++;
          last->else_body = g_ptr_array_new ();
          if (!expect_block_end (p) || !parse_body (p, last->else_body, end, "if", at))
            return NULL;
        }
      break;
    }
  p->pos++; /* endif */
  return expect_block_end (p) ? n : NULL;
}

static JNode *
parse_set (Parser *p, Tok *at)
{
  static const char *const end[] = { "endset", NULL };
  JNode *n = node_new (p, JN_SET, at);

  n->targets = g_ptr_array_new_with_free_func (g_free);
  if (cur (p)->kind == TK_NAME && tok_is (peek (p, 1), TK_OP, ".") && peek (p, 2)->kind == TK_NAME)
    {
      n->name = tok_text (cur (p));
      n->attr = tok_text (peek (p, 2));
      p->pos += 3;
    }
  else if (!parse_targets (p, n->targets, "a variable name"))
    return NULL;
  if (cur (p)->kind == TK_BLOCK_END && n->attr == NULL && n->targets->len == 1)
    {
      n->kind = JN_SET_BLOCK;
      n->name = g_strdup (n->targets->pdata[0]);
      n->body = g_ptr_array_new ();
      p->pos++;
      if (!parse_body (p, n->body, end, "set", at))
        return NULL;
      p->pos++;
      return expect_block_end (p) ? n : NULL;
    }
  if (is_op (p, "|"))
    return fail_tok (p, AT_ERROR_UNSUPPORTED, "'=' (filtered block set is not supported)"), NULL;
  if (!expect_op (p, "=") || (n->a = parse_tuple (p)) == NULL)
    return NULL;
  return expect_block_end (p) ? n : NULL;
}

static JNode *
parse_macro (Parser *p, Tok *at)
{
  static const char *const end[] = { "endmacro", NULL };
  JNode *n = node_new (p, JN_MACRO, at);

  if (cur (p)->kind != TK_NAME)
    return fail_tok (p, AT_ERROR_BAD_FILE, "a macro name"), NULL;
  n->name = tok_text (cur (p));
  p->pos++;
  n->targets = g_ptr_array_new_with_free_func (g_free);
  n->args = g_ptr_array_new ();
  if (!expect_op (p, "("))
    return NULL;
  while (!is_op (p, ")"))
    {
      JNode *def = NULL;

      if (n->targets->len > 0 && !expect_op (p, ","))
        return NULL;
      if (cur (p)->kind != TK_NAME)
        return fail_tok (p, AT_ERROR_BAD_FILE, "a parameter name"), NULL;
      g_ptr_array_add (n->targets, tok_text (cur (p)));
      p->pos++;
      if (is_op (p, "="))
        {
          p->pos++;
          if ((def = parse_expression (p, TRUE)) == NULL)
            return NULL;
        }
      else if (n->args->len > 0 && g_ptr_array_index (n->args, n->args->len - 1) != NULL)
        return fail_tok (p, AT_ERROR_BAD_FILE, "a default value (non-default parameter follows a default one)"), NULL;
      g_ptr_array_add (n->args, def);
    }
  p->pos++;
  n->body = g_ptr_array_new ();
  if (!expect_block_end (p) || !parse_body (p, n->body, end, "macro", at))
    return NULL;
  p->pos++;
  if (cur (p)->kind == TK_NAME)
    p->pos++;
  return expect_block_end (p) ? n : NULL;
}

static JNode *
parse_statement (Parser *p)
{
  static const char *const unsupported[] = {
    "block", "extends", "include", "import", "from", "call", "filter", "with", "autoescape",
    "generation", "do", "trans", "pluralize", "endraw", NULL };
  Tok *open = cur (p), *name;
  JNode *n;

  p->pos++;
  name = cur (p);
  if (name->kind != TK_NAME)
    return fail_tok (p, AT_ERROR_BAD_FILE, "a statement name after '{%'"), NULL;
  p->pos++;
  if (tok_is (name, TK_NAME, "for"))
    return parse_for (p, open);
  if (tok_is (name, TK_NAME, "if"))
    return parse_if (p, open);
  if (tok_is (name, TK_NAME, "set"))
    return parse_set (p, open);
  if (tok_is (name, TK_NAME, "macro"))
    return parse_macro (p, open);
  if (tok_is (name, TK_NAME, "break") || tok_is (name, TK_NAME, "continue"))
    {
      n = node_new (p, tok_is (name, TK_NAME, "break") ? JN_BREAK : JN_CONTINUE, open);
      return expect_block_end (p) ? n : NULL;
    }
  for (guint k = 0; unsupported[k] != NULL; k++)
    if (tok_is (name, TK_NAME, unsupported[k]))
      {
        g_set_error (p->error, AT_ERROR, AT_ERROR_UNSUPPORTED,
                     "chat template:%d:%d: the '%s' statement is not supported", name->line,
                     name->col, unsupported[k]);
        return NULL;
      }
  {
    g_autofree char *text = tok_text (name);

    g_set_error (p->error, AT_ERROR, AT_ERROR_BAD_FILE,
                 "chat template:%d:%d: unknown or misplaced tag '%s'", name->line, name->col, text);
  }
  return NULL;
}

static gboolean
is_end_name (Parser *p, const char *const *ends)
{
  Tok *t = peek (p, 1);

  for (guint k = 0; ends != NULL && ends[k] != NULL; k++)
    if (tok_is (t, TK_NAME, ends[k]))
      return TRUE;
  return FALSE;
}

/* Statements until one of `ends` (NULL: the end of the template); leaves the position on the
 * end tag's name. */
static gboolean
parse_body (Parser *p, GPtrArray *body, const char *const *ends, const char *opener, Tok *open_tok)
{
  gboolean ok = TRUE;

  if (!enter (p))
    return FALSE;
  while (ok)
    {
      Tok *t = cur (p);
      JNode *n = NULL;

      if (t->kind == TK_EOF)
        {
          if (ends != NULL)
            {
              g_set_error (p->error, AT_ERROR, AT_ERROR_BAD_FILE,
                           "chat template:%d:%d: expected '%s' to close the '%s' at line %d, "
                           "found end of template", t->line, t->col, ends[g_strv_length ((char **) ends) - 1],
                           opener, open_tok->line);
              ok = FALSE;
            }
          break;
        }
      if (t->kind == TK_DATA)
        {
          n = node_new (p, JN_TEXT, t);
          n->name = g_strndup (t->start, t->len);
          n->len = t->len;
          p->pos++;
        }
      else if (t->kind == TK_VAR_BEGIN)
        {
          n = node_new (p, JN_OUTPUT, t);
          p->pos++;
          if ((n->a = parse_tuple (p)) == NULL)
            ok = FALSE;
          else if (cur (p)->kind != TK_VAR_END)
            ok = fail_tok (p, AT_ERROR_BAD_FILE, "end of print statement '}}'");
          else
            p->pos++;
        }
      else if (t->kind == TK_BLOCK_BEGIN)
        {
          if (is_end_name (p, ends))
            {
              p->pos++;
              break;
            }
          ok = (n = parse_statement (p)) != NULL;
        }
      else
        ok = fail_tok (p, AT_ERROR_BAD_FILE, "template text or a tag");
      if (ok && n != NULL)
        g_ptr_array_add (body, n);
    }
  p->depth--;
  return ok;
}

static void
node_free (gpointer data)
{
  JNode *n = data;

  g_free (n->name);
  g_free (n->attr);
  g_clear_pointer (&n->args, g_ptr_array_unref);
  g_clear_pointer (&n->kwnames, g_ptr_array_unref);
  g_clear_pointer (&n->kwargs, g_ptr_array_unref);
  g_clear_pointer (&n->targets, g_ptr_array_unref);
  g_clear_pointer (&n->ops, g_array_unref);
  g_clear_pointer (&n->body, g_ptr_array_unref);
  g_clear_pointer (&n->else_body, g_ptr_array_unref);
  g_free (n);
}

void
at_jinja_template_free (AtJinjaTemplate *t)
{
  if (t == NULL)
    return;
  g_ptr_array_unref (t->nodes);
  g_clear_pointer (&t->root, g_ptr_array_unref);
  j_arena_free (t->literals);
  g_clear_pointer (&t->now, g_date_time_unref);
  g_free (t);
}

void
at_jinja_template_set_now (AtJinjaTemplate *t, GDateTime *now)
{
  g_clear_pointer (&t->now, g_date_time_unref);
  if (now != NULL)
    t->now = g_date_time_ref (now);
}

/* "\r\n" and "\r" to "\n", and one trailing newline dropped. */
static char *
normalise (const char *source, gsize *n)
{
  gsize len = strlen (source), o = 0;
  char *out = g_malloc (len + 1);

  for (gsize i = 0; i < len; i++)
    {
      if (source[i] == '\r')
        {
          out[o++] = '\n';
          if (i + 1 < len && source[i + 1] == '\n')
            i++;
        }
      else
        out[o++] = source[i];
    }
  if (o > 0 && out[o - 1] == '\n')
    o--;
  out[o] = '\0';
  *n = o;
  return out;
}

AtJinjaTemplate *
at_jinja_parse (const char *source, GError **error)
{
  g_autoptr (AtJinjaTemplate) t = NULL;
  g_autoptr (GArray) toks = NULL;
  g_autofree char *src = NULL;
  Parser p = { 0 };

  g_return_val_if_fail (source != NULL, NULL);
  if (strlen (source) > AT_JINJA_MAX_SOURCE)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_BAD_FILE, "chat template: longer than %u bytes",
                   AT_JINJA_MAX_SOURCE);
      return NULL;
    }
  if (!g_utf8_validate (source, -1, NULL))
    {
      g_set_error (error, AT_ERROR, AT_ERROR_BAD_FILE, "chat template: not valid UTF-8");
      return NULL;
    }
  t = g_new0 (AtJinjaTemplate, 1);
  t->nodes = g_ptr_array_new_with_free_func (node_free);
  t->root = g_ptr_array_new ();
  t->literals = j_arena_new (G_MAXSIZE);
  src = normalise (source, &p.n);
  toks = g_array_new (FALSE, TRUE, sizeof (Tok));
  g_array_set_clear_func (toks, tok_clear);
  p.src = src;
  p.toks = toks;
  p.t = t;
  p.error = error;
  if (!lex (&p) || !parse_body (&p, t->root, NULL, NULL, NULL))
    return NULL;
  return g_steal_pointer (&t);
}

char *
at_chat_apply_template (const char *template_source, JsonArray *messages,
                        gboolean add_generation_prompt, const char *bos, const char *eos,
                        GError **error)
{
  g_autoptr (AtJinjaTemplate) t = at_jinja_parse (template_source, error);
  g_autoptr (JsonObject) ctx = NULL;

  if (t == NULL)
    return NULL;
  ctx = json_object_new ();
  json_object_set_array_member (ctx, "messages", json_array_ref (messages));
  json_object_set_boolean_member (ctx, "add_generation_prompt", add_generation_prompt);
  json_object_set_string_member (ctx, "bos_token", bos != NULL ? bos : "");
  json_object_set_string_member (ctx, "eos_token", eos != NULL ? eos : "");
  json_object_set_null_member (ctx, "tools");
  return at_jinja_render (t, ctx, error);
}
