/* fuzz-jinja.c: the chat-template interpreter under libFuzzer. The input is template source:
 * it is parsed and, when it parses, rendered with a small fixed conversation (system, user,
 * assistant, user; a tool list; the generation prompt on) and a fixed strftime_now time.
 * Every failure must be an AT_ERROR with a message; every rendering valid UTF-8. */
#include "at-engine.h"

int LLVMFuzzerTestOneInput (const guint8 *data, gsize size);

static const char context_json[] =
  "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
  " {\"role\": \"user\", \"content\": \"Hi \\u00e9\"}, {\"role\": \"assistant\", \"content\": \" Hello \"},"
  " {\"role\": \"user\", \"content\": \"Bye\", \"tool_calls\": [{\"id\": \"a\", \"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1.5}}}]}],"
  " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"x\": [1, true, null]}}}],"
  " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

static JsonObject *
context (void)
{
  static JsonObject *ctx;

  if (ctx == NULL)
    {
      g_autoptr (JsonParser) parser = json_parser_new ();

      g_assert_true (json_parser_load_from_data (parser, context_json, -1, NULL));
      ctx = json_object_ref (json_node_get_object (json_parser_get_root (parser)));
    }
  return ctx;
}

int
LLVMFuzzerTestOneInput (const guint8 *data, gsize size)
{
  g_autofree char *source = g_strndup ((const char *) data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtJinjaTemplate) t = at_jinja_parse (source, &error);
  g_autoptr (GDateTime) now = NULL;
  g_autofree char *out = NULL;

  if (t == NULL)
    {
      g_assert_true (error != NULL && error->domain == AT_ERROR && error->message[0] != '\0');
      return 0;
    }
  now = g_date_time_new_utc (2024, 7, 26, 10, 30, 15);
  at_jinja_template_set_now (t, now);
  out = at_jinja_render (t, context (), &error);
  if (out == NULL)
    g_assert_true (error != NULL && error->domain == AT_ERROR && error->message[0] != '\0');
  else
    g_assert_true (g_utf8_validate (out, -1, NULL));
  return 0;
}
