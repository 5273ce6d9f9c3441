/* test-jinja.c: the chat-template interpreter (engine/text/at-jinja.h) against python3-jinja2.
 *
 * /text/jinja/reference renders every real template (../shared/data/chat-templates, the
 * tokenizer.chat_template of the vocab GGUFs that carry one, and the well-known ChatML, Zephyr
 * and Mistral-instruct templates written here) with a set of conversations, in C and with
 * tools/ref/render_templates.py (jinja2 in transformers' environment), and compares every
 * rendering byte for byte; a template that raises must give AT_ERROR_INVALID with jinja2's
 * message. The language cases compare with strings that jinja2 3.1.2 rendered (in transformers'
 * environment). The hostile cases assert an error code and a fragment of the message.
 */
#include <string.h>

#include "at-test-util.h"

static const char chatml[] =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

static const char zephyr[] =
  "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + message['content'] + eos_token }}\n"
  "{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' + message['content'] + eos_token }}\n"
  "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n{% endif %}\n"
  "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

static const char mistral_instruct[] =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
  "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
  "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
  "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

/* Conversations: the system + user + assistant + user, user only, no system, tools,
 * a tool call, each with and without the generation prompt. */
static const char conversations_json[] =
  "{"
  "\"sys_user_asst_user\": {\"messages\": ["
  "  {\"role\": \"system\", \"content\": \"You are a helpful assistant.\\nAnswer briefly.\"},"
  "  {\"role\": \"user\", \"content\": \"Hello! What's 2+2?\"},"
  "  {\"role\": \"assistant\", \"content\": \" It is 4. \"},"
  "  {\"role\": \"user\", \"content\": \"Merci — and in \\\"Japanese\\\"? 日本語\"}]},"
  "\"user_only\": {\"messages\": [{\"role\": \"user\", \"content\": \"Write a haiku about rain.\"}]},"
  "\"user_asst_user\": {\"messages\": ["
  "  {\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello.\"},"
  "  {\"role\": \"user\", \"content\": \"  Bye  \"}]},"
  "\"user_user\": {\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b\"}]},"
  "\"tools\": {\"messages\": [{\"role\": \"user\", \"content\": \"Weather in Paris?\"}],"
  "  \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Current weather\","
  "    \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}, \"days\": {\"type\": \"integer\", \"default\": 1.5}},"
  "    \"required\": [\"city\"]}}}]},"
  "\"tool_call\": {\"messages\": [{\"role\": \"user\", \"content\": \"Weather in Paris?\"},"
  "  {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"call12345\", \"type\": \"function\","
  "    \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}}]},"
  "  {\"role\": \"tool\", \"content\": \"22 C\", \"tool_call_id\": \"call12345\"}]}"
  "}";

typedef struct
{
  const char *name, *source, *context, *expected;
} Case;

static const Case cases[] = {
  { "ws-trim-lstrip",
    "a\n  {% if true %}\n  x\n  {% endif %}\n b  {{ 1 }}  \n  {#c#}\n  z\n",
    "{}",
    "a\n  x\n b  1  \n  z" },
  { "ws-minus",
    "a  {{- 'b' -}}  c\n{%- if true -%}\n d {% endif -%}  \n e",
    "{}",
    "abcd e" },
  { "ws-plus",
    "a\n  {%+ if true %}x{% endif %}\n",
    "{}",
    "a\n  x" },
  { "ws-comment",
    "{# one #}\n{#- two -#}  x  {#+ three +#}\ny",
    "{}",
    "x  \ny" },
  { "for-loop",
    "{% for x in xs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.length }}{{ '^' if loop.first }}{{ '$' if loop.last }};{% endfor %}",
    "{\"xs\": [\"a\", \"b\", \"c\"]}",
    "1/0/3/2/3^;2/1/2/1/3;3/2/1/0/3$;" },
  { "for-else-filter",
    "{% for x in xs if x > 1 %}{{ x }}:{{ loop.length }} {% else %}none{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}",
    "{\"xs\": [1, 2, 3]}",
    "2:2 3:2 |empty" },
  { "for-dict-unpack",
    "{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
    "{\"d\": {\"b\": 1, \"a\": [1, \"x\"]}}",
    "b=1,a=[1, 'x'],ba" },
  { "for-scope",
    "{% set role = 'a' %}{% for m in [1, 2] %}[{{ role }}]{% set role = m %}({{ role }}){% endfor %}{{ role }}",
    "{}",
    "[a](1)[a](2)a" },
  { "break-continue",
    "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    "{}",
    "0134" },
  { "namespace",
    "{% set ns = namespace(a=1, found=false) %}{% for i in range(3) %}{% set ns.a = ns.a + i %}{% if i == 1 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.a }} {{ ns.found }}",
    "{}",
    "4 True" },
  { "set-if-scope",
    "{% if true %}{% set x = 3 %}{% endif %}{{ x }}{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set blk %}B{{ x }}{% endset %}[{{ blk }}]",
    "{}",
    "312[B3]" },
  { "literals",
    "{{ none }}|{{ true }}|{{ [1, 'a', none, true, 1.5] }}|{{ {'a': 1, 'b': [2]} }}|{{ (1, 2) }}|{{ (1,) }}|{{ 'it\\'s' }}|{{ [\"it's\"] }}",
    "{}",
    "None|True|[1, 'a', None, True, 1.5]|{'a': 1, 'b': [2]}|(1, 2)|(1,)|it's|[\"it's\"]" },
  { "escapes",
    "{{ 'a\\tb\\nc\\\\d\\x41\\u00e9\\q' }}|{{ \"q\\\"q\" }}|{{ 'con' 'cat' }}",
    "{}",
    "a\tb\nc\\dAé\\q|q\"q|concat" },
  { "numbers",
    "{{ 1/2 }} {{ 7//2 }} {{ 7//-2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2**10 }} {{ 1e20 }} {{ 0.1+0.2 }} {{ 1e-5 }} {{ 1.0 }} {{ 3 * 1.5 }} {{ 10/4 }} {{ 1_000 }} {{ -3 }} {{ 2.5e3 }} {{ 7.0 // 2 }} {{ -7.5 % 2 }}",
    "{}",
    "0.5 3 -4 2 -2 1024 1e+20 0.30000000000000004 1e-05 1.0 4.5 2.5 1000 -3 2500.0 3.0 0.5" },
  { "strings",
    "{{ 'ab' ~ 1 ~ none ~ 1.0 }}|{{ 'ab'[::-1] }}|{{ 'héllo'[1:3] }}|{{ 'abc'[-1] }}|{{ '-' * 3 }}|{{ 'x' in 'xyz' }}|{{ 'q' not in 'xyz' }}",
    "{}",
    "ab1None1.0|ba|él|c|---|True|True" },
  { "lists",
    "{{ [1, 2, 3][1:] }}|{{ [1, 2, 3][:-1] }}|{{ [1, 2, 3][::-1] }}|{{ [1, 2, 3][::2] }}|{{ [1] + [2] }}|{{ 2 in [1, 2] }}|{{ xs[5] }}|{{ xs[-1] }}",
    "{\"xs\": [1, 2]}",
    "[2, 3]|[1, 2]|[3, 2, 1]|[1, 3]|[1, 2]|True||2" },
  { "methods",
    "{{ ' x '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '  a'.lstrip() }}|{{ 'a\\n\\n'.rstrip() }}|{{ 'a b  c'.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ 'AbC'.upper() }}{{ 'AbC'.lower() }}|{{ 'aXa'.replace('a', 'b') }}|{{ 'hello world'.title() }}|{{ 'abcb'.find('b') }}|{{ 'abcb'.count('b') }}|{{ '-'.join(['a', 'b']) }}",
    "{}",
    "x|a|a|a|['a', 'b', 'c']|['a', 'b', '', 'c']|['a', 'b,c']|True|True|ABCabc|bXb|Hello World|1|2|a-b" },
  { "dict-methods",
    "{{ d.get('a') }}|{{ d.get('z') }}|{{ d.get('z', 'def') }}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.items()|list }}|{{ d['a'] }}{{ d.a }}|{{ d.items is callable }}",
    "{\"d\": {\"a\": 1, \"items\": \"key\"}}",
    "1|None|def|['a', 'items']|[1, 'key']|[('a', 1), ('items', 'key')]|11|True" },
  { "filters-1",
    "{{ '  x  '|trim }}|{{ [1, 2]|length }}{{ 'héllo'|length }}{{ d|length }}|{{ 'ab'|upper }}{{ 'AB'|lower }}|{{ 3|string }}{{ none|string }}|{{ x|default('d') }}{{ ''|default('d', true) }}{{ 0|d(5) }}|{{ [1, 2]|first }}{{ 'abc'|last }}|{{ ['a', 'b']|join(', ') }}{{ [1, 2]|join }}|{{ 'a-b'|replace('-', '+') }}|{{ 'hello World'|capitalize }}|{{ 'hello big-world'|title }}",
    "{\"d\": {\"a\": 1}}",
    "x|251|ABab|3None|dd0|1c|a, b12|a+b|Hello world|Hello Big-World" },
  { "filters-2",
    "{{ d|items|list }}|{{ 'ab'|list }}|{{ xs|selectattr('r', 'equalto', 'u')|list }}|{{ xs|rejectattr('r', 'equalto', 'u')|map(attribute='r')|list }}|{{ xs|map(attribute='r')|join(',') }}|{{ [0, 1, 2]|select|list }}|{{ [1, 2, 3]|reject('odd')|list }}|{{ [1, 2]|reverse|list }}|{{ '3'|int + 1 }}|{{ '2.5'|float }}|{{ -3|abs }}|{{ ['a', 'b']|map('upper')|join }}",
    "{\"d\": {\"a\": 1}, \"xs\": [{\"r\": \"u\"}, {\"r\": \"a\"}]}",
    "[('a', 1)]|['a', 'b']|[{'r': 'u'}]|['a']|u,a|[1, 2]|[2]|[2, 1]|4|2.5|3|AB" },
  { "indent",
    "{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(width=3, blank=true) }}",
    "{}",
    "a\n  b\n\n  c|  a\n  b|a\n   \n   b" },
  { "tojson",
    "{{ [1, 'é', none, true, 1.5, {'k': 'v\"'}]|tojson }}|{{ {'b': 1, 'a': [1, {}], 'c': []}|tojson(indent=2) }}|{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}|{{ 'a\\n\\u0001'|tojson }}|{{ {'a': 1}|tojson(separators=(',', ':')) }}",
    "{}",
    "[1, \"é\", null, true, 1.5, {\"k\": \"v\\\"\"}]|{\n  \"b\": 1,\n  \"a\": [\n    1,\n    {}\n  ],\n  \"c\": []\n}|{\"a\": 2, \"b\": 1}|\"a\\n\\u0001\"|{\"a\":1}" },
  { "tests",
    "{{ x is defined }}{{ u is defined }}{{ u is undefined }}{{ none is none }}{{ 's' is string }}{{ 1 is string }}{{ d is mapping }}{{ xs is mapping }}{{ xs is iterable }}{{ 's' is iterable }}{{ 1 is number }}{{ 1 is integer }}{{ 1.0 is float }}{{ 3 is odd }}{{ 4 is even }}{{ 6 is divisibleby 3 }}{{ 'a' is equalto 'a' }}{{ 2 is gt 1 }}{{ x is not none }}{{ 'a' is in 'abc' }}{{ true is boolean }}",
    "{\"x\": 1, \"d\": {}, \"xs\": [1]}",
    "TrueFalseTrueTrueTrueFalseTrueFalseTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrue" },
  { "logic",
    "{{ 1 and 'b' }}|{{ 0 or 'c' }}|{{ not 1 }}|{{ 1 < 2 < 3 }}|{{ 1 < 2 > 3 }}|{{ 'a' if false else 'b' }}|{{ 'a' if false }}|{{ u or 'dflt' }}|{{ not u }}|{{ u == none }}|{{ u != 1 }}|{{ 1 == 1.0 }}|{{ [1] == [1] }}|{{ (1,) == [1] }}|{{ 'a' < 'b' }}|{{ -2 + -(3) }}",
    "{}",
    "b|c|False|True|False|b||dflt|True|False|True|True|True|False|True|-5" },
  { "precedence",
    "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 'a' ~ (1 + 2) }} {{ 'x' + ' y '|trim }} {{ not 1 == 2 }} {{ 10 - 2 - 3 }} {{ 1 + 2|string|length }}",
    "{}",
    "7 9 64 4 a3 xy True 5 2" },
  { "macro",
    "{% macro m(a, b='B') %}<{{ a }}|{{ b }}>{% endmacro %}{{ m(1) }}{{ m(1, 2) }}{{ m(b=3, a=4) }}",
    "{}",
    "<1|B><1|2><4|3>" },
  { "undefined-uses",
    "[{{ u }}][{{ u|length }}][{{ u|trim }}][{% for x in u %}x{% endfor %}][{{ m.missing }}][{{ 'a' in u }}][{{ u|default('z') }}][{{ m['x'] is defined }}]",
    "{\"m\": {}}",
    "[][0][][][][False][z][False]" },
  { "strftime",
    "{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S %A %B %j %p %I %y %a %-d') }}",
    "{}",
    "26 Jul 2024|2024-07-26 10:30:15 Friday July 208 AM 10 24 Fri 26" },
  { "unicode",
    "{{ 'ÄÖü'|lower }}|{{ 'straße'|upper }}|{{ 'ünïcode'|capitalize }}|{{ ['é', '\\n'] }}|{{ '日本語'[1] }}",
    "{}",
    "äöü|STRASSE|Ünïcode|['é', '\\n']|本" },
  { "crlf",
    "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc\r\n",
    "{}",
    "a\nb\nc" },
  { "dict-literal-braces",
    "{{ {'a': {'b': 1}}['a'] }}{{ {'x': 1}|length}}",
    "{}",
    "{'b': 1}1" },
  { "loop-nested",
    "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }};{% endfor %}",
    "{}",
    "11x 21y 1;12x 22y 2;" },
  { "range",
    "{{ range(3)|list }}{{ range(1, 7, 2)|list }}{{ range(5, 0, -2)|list }}{{ range(0)|list }}",
    "{}",
    "[0, 1, 2][1, 3, 5][5, 3, 1][]" },
};

static GDateTime *
fixed_now (void)
{
  return g_date_time_new_local (2024, 7, 26, 10, 30, 15);
}

static JsonObject *
parse_object (const char *json)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  json_parser_load_from_data (parser, json, -1, &error);
  g_assert_no_error (error);
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

/* Renders `source` with `context` (JSON text); NULL and `error` set on failure. */
static char *
render (const char *source, const char *context, GError **error)
{
  g_autoptr (AtJinjaTemplate) t = at_jinja_parse (source, error);
  g_autoptr (JsonObject) ctx = NULL;
  g_autoptr (GDateTime) now = fixed_now ();

  if (t == NULL)
    return NULL;
  ctx = parse_object (context);
  at_jinja_template_set_now (t, now);
  return at_jinja_render (t, ctx, error);
}

/* Prints where `got` first differs from `want`, with context around it. */
static void
report_mismatch (const char *what, const char *want, const char *got)
{
  gsize i = 0, line = 1;

  while (want[i] != '\0' && want[i] == got[i])
    if (want[i++] == '\n')
      line++;
  {
    gsize from = i > 40 ? i - 40 : 0;
    g_autofree char *w = g_strescape (want + from, "\xc2\xc3\xe2\xe3\xe6\xe7\xe8\xe9");
    g_autofree char *g = g_strescape (got + from, "\xc2\xc3\xe2\xe3\xe6\xe7\xe8\xe9");

    g_printerr ("%s: mismatch at byte %zu (line %zu)\n  want: %.120s\n  got:  %.120s\n", what, i, line, w, g);
  }
}

static void
test_language (void)
{
  guint failed = 0;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *got = render (cases[i].source, cases[i].context, &error);

      if (got == NULL)
        {
          g_printerr ("%s: %s\n", cases[i].name, error->message);
          failed++;
        }
      else if (strcmp (got, cases[i].expected) != 0)
        {
          report_mismatch (cases[i].name, cases[i].expected, got);
          failed++;
        }
    }
  g_assert_cmpuint (failed, ==, 0);
}

/* The templates to compare: name -> source. */
static JsonObject *
collect_templates (void)
{
  static const char *const shared[] = {
    "HuggingFaceTB-SmolLM3-3B.jinja", "Qwen-Qwen2.5-7B-Instruct.jinja", "google-gemma-2-2b-it.jinja",
    "meta-llama-Llama-3.1-8B-Instruct.jinja", "meta-llama-Llama-3.2-3B-Instruct.jinja",
    "microsoft-Phi-3.5-mini-instruct.jinja", "mistralai-Mistral-Nemo-Instruct-2407.jinja" };
  static const char *const ggufs[] = { "ggml-vocab-phi-3.gguf", "ggml-vocab-qwen2.gguf" };
  JsonObject *templates = json_object_new ();

  json_object_set_string_member (templates, "chatml", chatml);
  json_object_set_string_member (templates, "zephyr", zephyr);
  json_object_set_string_member (templates, "mistral-instruct", mistral_instruct);
  for (guint i = 0; i < G_N_ELEMENTS (shared); i++)
    {
      g_autofree char *rel = g_build_filename ("chat-templates", shared[i], NULL);
      g_autofree char *path = at_test_shared_path (rel);
      g_autofree char *text = NULL;
      g_autoptr (GError) error = NULL;

      if (path == NULL)
        continue;
      g_file_get_contents (path, &text, NULL, &error);
      g_assert_no_error (error);
      json_object_set_string_member (templates, shared[i], text);
    }
  for (guint i = 0; i < G_N_ELEMENTS (ggufs); i++)
    {
      g_autofree char *rel = g_build_filename ("tokenizers", ggufs[i], NULL);
      g_autofree char *path = at_test_shared_path (rel);
      g_autoptr (AtGguf) g = NULL;
      g_autoptr (GError) error = NULL;
      g_autofree char *text = NULL;

      if (path == NULL)
        continue;
      g = at_gguf_open (path, &error);
      g_assert_no_error (error);
      text = at_gguf_dup_string (g, "tokenizer.chat_template", &error);
      g_assert_no_error (error);
      json_object_set_string_member (templates, ggufs[i], text);
    }
  return templates;
}

/* The conversations, each as a full context: add_generation_prompt true and false
 * ("_nogen"), bos/eos tokens, tools null unless the conversation has some. */
static JsonObject *
collect_conversations (void)
{
  g_autoptr (JsonObject) base = parse_object (conversations_json);
  JsonObject *all = json_object_new ();
  JsonObjectIter it;
  const char *name;
  JsonNode *node;

  json_object_iter_init_ordered (&it, base);
  while (json_object_iter_next_ordered (&it, &name, &node))
    for (int gen = 1; gen >= 0; gen--)
      {
        JsonObject *src = json_node_get_object (node);
        JsonObject *ctx = json_object_new ();
        g_autofree char *key = g_strdup_printf ("%s%s", name, gen ? "" : "_nogen");

        json_object_set_member (ctx, "messages", json_node_copy (json_object_get_member (src, "messages")));
        if (json_object_has_member (src, "tools"))
          json_object_set_member (ctx, "tools", json_node_copy (json_object_get_member (src, "tools")));
        else
          json_object_set_null_member (ctx, "tools");
        json_object_set_boolean_member (ctx, "add_generation_prompt", gen);
        json_object_set_string_member (ctx, "bos_token", "<s>");
        json_object_set_string_member (ctx, "eos_token", "</s>");
        json_object_set_object_member (all, key, ctx);
      }
  return all;
}

static void
write_json (JsonObject *o, const char *path)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_node_init_object (json_node_alloc (), o);
  g_autoptr (GError) error = NULL;

  json_generator_set_root (gen, root);
  json_generator_to_file (gen, path, &error);
  g_assert_no_error (error);
}

/* Compares one rendering with the reference's; TRUE when they agree. */
static gboolean
compare_one (const char *tname, const char *source, const char *cname, JsonObject *context, JsonNode *want)
{
  g_autofree char *what = g_strdup_printf ("%s / %s", tname, cname);
  g_autoptr (AtJinjaTemplate) t = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GDateTime) now = fixed_now ();
  g_autofree char *got = NULL;

  t = at_jinja_parse (source, &error);
  if (t != NULL)
    {
      at_jinja_template_set_now (t, now);
      got = at_jinja_render (t, context, &error);
    }
  if (JSON_NODE_HOLDS_VALUE (want))
    {
      if (got == NULL)
        {
          g_printerr ("%s: jinja2 renders, we fail: %s\n", what, error->message);
          return FALSE;
        }
      if (strcmp (got, json_node_get_string (want)) != 0)
        {
          report_mismatch (what, json_node_get_string (want), got);
          return FALSE;
        }
      return TRUE;
    }
  {
    JsonObject *e = json_node_get_object (want);
    const char *msg = json_object_get_string_member (e, "error");

    if (got != NULL)
      {
        g_printerr ("%s: jinja2 fails (%s), we render\n", what, msg);
        return FALSE;
      }
    if (json_object_get_boolean_member_with_default (e, "raised", FALSE)
        && (!g_error_matches (error, AT_ERROR, AT_ERROR_INVALID) || strcmp (error->message, msg) != 0))
      {
        g_printerr ("%s: raise_exception(\"%s\") but we say: %s\n", what, msg, error->message);
        return FALSE;
      }
    g_test_message ("%s: both fail: %s / %s", what, msg, error->message);
    return TRUE;
  }
}

static void
test_reference (void)
{
  g_autoptr (JsonObject) templates = collect_templates ();
  g_autoptr (JsonObject) conversations = collect_conversations ();
  g_autofree char *tpath = g_build_filename (at_test_tmpdir (), "templates.json", NULL);
  g_autofree char *cpath = g_build_filename (at_test_tmpdir (), "conversations.json", NULL);
  g_autofree char *opath = g_build_filename (at_test_tmpdir (), "rendered.json", NULL);
  const char *args[] = { tpath, cpath, opath, NULL };
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonObject *ref;
  JsonObjectIter ti;
  const char *tname;
  JsonNode *tnode;
  guint n = 0, bad = 0, raised = 0;

  write_json (templates, tpath);
  write_json (conversations, cpath);
  if (!at_test_run_ref_tool ("render_templates.py", args))
    return;
  json_parser_load_from_file (parser, opath, &error);
  g_assert_no_error (error);
  ref = json_node_get_object (json_parser_get_root (parser));
  json_object_iter_init_ordered (&ti, templates);
  while (json_object_iter_next_ordered (&ti, &tname, &tnode))
    {
      JsonObject *results = json_object_get_object_member (ref, tname);
      JsonObjectIter ci;
      const char *cname;
      JsonNode *cnode;

      g_assert_nonnull (results);
      g_assert_false (json_object_has_member (results, "error")); /* jinja2 parses them all */
      json_object_iter_init_ordered (&ci, conversations);
      while (json_object_iter_next_ordered (&ci, &cname, &cnode))
        {
          JsonNode *want = json_object_get_member (results, cname);

          g_assert_nonnull (want);
          n++;
          if (JSON_NODE_HOLDS_OBJECT (want))
            raised++;
          if (!compare_one (tname, json_node_get_string (tnode), cname, json_node_get_object (cnode), want))
            bad++;
        }
    }
  g_test_message ("%u renderings compared (%u errors in jinja2 too), %u differ", n, raised, bad);
  g_printerr ("%u renderings compared (%u errors in jinja2 too), %u differ\n", n, raised, bad);
  g_assert_cmpuint (bad, ==, 0);
  /* The conversation must render with the real templates that allow a system role. */
  g_assert_cmpuint (n, >=, 12 * 12);
}

static void
test_raise (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *out = render ("{{ raise_exception('System role not supported') }}", "{}", &error);

  g_assert_null (out);
  g_assert_error (error, AT_ERROR, AT_ERROR_INVALID);
  g_assert_cmpstr (error->message, ==, "System role not supported");
}

static void
test_apply (void)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;

  json_parser_load_from_data (parser, "[{\"role\": \"user\", \"content\": \"Hi\"}]", -1, &error);
  g_assert_no_error (error);
  out = at_chat_apply_template (chatml, json_node_get_array (json_parser_get_root (parser)), TRUE, NULL, NULL,
                                &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

typedef struct
{
  const char *name, *source;
  int code;
  const char *fragment;
} Hostile;

static void
test_hostile (void)
{
  g_autoptr (GString) deep_if = g_string_new (NULL);
  g_autoptr (GString) deep_paren = g_string_new ("{{ ");
  g_autoptr (GString) deep_list = g_string_new ("{{ ");
  const Hostile fixed[] = {
    { "unterminated-var", "a {{ x ", AT_ERROR_BAD_FILE, "1:3: unterminated '{{' tag" },
    { "unterminated-block", "{% if x", AT_ERROR_BAD_FILE, "unterminated '{%' tag" },
    { "unterminated-comment", "x\n  {# note", AT_ERROR_BAD_FILE, "2:3: unterminated comment" },
    { "unterminated-string", "{{ 'abc }}", AT_ERROR_BAD_FILE, "1:4: unterminated string" },
    { "missing-endif", "{% if x %}\nyes", AT_ERROR_BAD_FILE, "expected 'endif' to close the 'if' at line 1" },
    { "missing-endfor", "{% for x in y %}{% if a %}{% endif %}", AT_ERROR_BAD_FILE, "'endfor'" },
    { "stray-endif", "{% endif %}", AT_ERROR_BAD_FILE, "unknown or misplaced tag 'endif'" },
    { "bad-expr", "line one\n{{ 1 + }}", AT_ERROR_BAD_FILE, "2:8: expected an expression, found end of print" },
    { "bad-char", "{{ a $ b }}", AT_ERROR_BAD_FILE, "1:6: unexpected character '$'" },
    { "unbalanced", "{{ a) }}", AT_ERROR_BAD_FILE, "unexpected ')'" },
    { "leading-zeros", "{{ 'x' * 007 }}", AT_ERROR_BAD_FILE, "1:10: leading zeros in an integer literal" },
    { "include", "{% include 'x.j2' %}", AT_ERROR_UNSUPPORTED, "'include' statement is not supported" },
    { "raw", "{% raw %}x{% endraw %}", AT_ERROR_UNSUPPORTED, "raw" },
    { "recursive", "{% for x in y recursive %}{% endfor %}", AT_ERROR_UNSUPPORTED, "recursive loops" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (fixed); i++)
    {
      g_autoptr (GError) error = NULL;
      AtJinjaTemplate *t = at_jinja_parse (fixed[i].source, &error);

      g_assert_null (t);
      if (!g_error_matches (error, AT_ERROR, fixed[i].code) || strstr (error->message, fixed[i].fragment) == NULL)
        g_error ("%s: got '%s' (code %d), want code %d and '%s'", fixed[i].name, error->message, error->code,
                 fixed[i].code, fixed[i].fragment);
    }
  for (int i = 0; i < 10000; i++)
    g_string_append (deep_if, "{% if true %}");
  for (int i = 0; i < 10000; i++)
    {
      g_string_append_c (deep_paren, '(');
      g_string_append_c (deep_list, '[');
    }
  for (int i = 0; i < 10000; i++)
    {
      g_string_append_c (deep_paren, ')');
      g_string_append_c (deep_list, ']');
    }
  g_string_append (deep_paren, " }}");
  g_string_append (deep_list, " }}");
  {
    const char *deep[] = { deep_if->str, deep_paren->str, deep_list->str };

    for (guint i = 0; i < G_N_ELEMENTS (deep); i++)
      {
        g_autoptr (GError) error = NULL;

        g_assert_null (at_jinja_parse (deep[i], &error));
        g_assert_error (error, AT_ERROR, AT_ERROR_BAD_FILE);
        g_assert_nonnull (strstr (error->message, "nesting deeper than"));
      }
  }
}

static void
test_hostile_render (void)
{
  const Hostile cases_r[] = {
    { "dunder", "{{ x.__class__ }}", AT_ERROR_BAD_FILE, "access to attribute '__class__' of 'str' object is unsafe" },
    { "dunder-item", "{{ m.__init__ }}", AT_ERROR_BAD_FILE, "unsafe" },
    { "mutate", "{% set l = [1] %}{{ l.append(2) }}", AT_ERROR_BAD_FILE, "'append' of 'list' object is unsafe" },
    { "output-limit", "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", AT_ERROR_BAD_FILE, "output longer than" },
    { "string-doubling", "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
      AT_ERROR_BAD_FILE, "a string longer than" },
    { "repeat", "{{ 'x' * 10000000000 }}", AT_ERROR_BAD_FILE, "longer than" },
    { "iterations", "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", AT_ERROR_BAD_FILE,
      "more than 100000 loop iterations" },
    { "range", "{{ range(1000000000)|length }}", AT_ERROR_BAD_FILE, "range of more than" },
    { "scan-work", "{% set s = 'x' * 10000000 %}{% for i in range(100000) %}{{ 'y' in s }}{% endfor %}",
      AT_ERROR_BAD_FILE, "rendering takes more than" },
    { "macro-recursion", "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", AT_ERROR_BAD_FILE, "nesting deeper than" },
    { "self-namespace", "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", AT_ERROR_BAD_FILE, "too deep" },
    { "undefined-attr", "line\n{{ nothing.role }}", AT_ERROR_BAD_FILE, "chat template:2: 'nothing' is undefined" },
    { "type-error", "{{ 'a' + 1 }}", AT_ERROR_BAD_FILE, "unsupported operand type(s) for +: 'str' and 'int'" },
    { "overflow", "{{ 9223372036854775807 + 1 }}", AT_ERROR_UNSUPPORTED, "integer overflow" },
    { "unknown-filter", "{{ x|frobnicate }}", AT_ERROR_UNSUPPORTED, "the filter 'frobnicate' is not supported" },
    { "unknown-test", "{{ x is frob }}", AT_ERROR_UNSUPPORTED, "the test 'frob' is not supported" },
    { "test-argument", "{{ x is none [1] }}", AT_ERROR_BAD_FILE, "the test 'none' takes no argument" },
    { "zero-div", "{{ 1 // 0 }}", AT_ERROR_BAD_FILE, "division or modulo by zero" },
    { "not-iterable", "{% for x in 3 %}{% endfor %}", AT_ERROR_BAD_FILE, "'int' object is not iterable" },
    { "ns-set", "{% set d = {} %}{% set d.a = 1 %}", AT_ERROR_BAD_FILE, "non-namespace" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases_r); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *out = render (cases_r[i].source, "{\"x\": \"s\", \"m\": {}}", &error);

      g_assert_null (out);
      if (!g_error_matches (error, AT_ERROR, cases_r[i].code) || strstr (error->message, cases_r[i].fragment) == NULL)
        g_error ("%s: got '%s' (code %d), want code %d and '%s'", cases_r[i].name, error->message, error->code,
                 cases_r[i].code, cases_r[i].fragment);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/text/jinja/language", test_language);
  g_test_add_func ("/text/jinja/reference", test_reference);
  g_test_add_func ("/text/jinja/raise", test_raise);
  g_test_add_func ("/text/jinja/apply", test_apply);
  g_test_add_func ("/text/jinja/hostile-parse", test_hostile);
  g_test_add_func ("/text/jinja/hostile-render", test_hostile_render);
  return g_test_run ();
}
