/* atelier-tokenize.c: `atelier tokenize --model FILE [--input FILE|-] [--decode]`: the token
 * ids of the whole input on one line, space-separated (no BOS/EOS added, the text of control
 * tokens kept as text), as in llama.cpp's test-tokenizer-0 .out files; with --decode, reads
 * whitespace-separated ids and prints their text (special tokens rendered). The tokenizer
 * comes from the model's GGUF metadata. */
#include "atelier-commands.h"

#include <stdio.h>
#include <string.h>

#include "at-engine.h"

static char *
read_input (const char *path, gsize *len, GError **error)
{
  GString *s;
  char buf[65536];
  size_t n;
  char *contents = NULL;

  if (path != NULL && strcmp (path, "-") != 0)
    return g_file_get_contents (path, &contents, len, error) ? contents : NULL;
  s = g_string_new (NULL);
  while ((n = fread (buf, 1, sizeof buf, stdin)) > 0)
    g_string_append_len (s, buf, (gssize) n);
  if (ferror (stdin))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_IO, "cannot read standard input");
      g_string_free (s, TRUE);
      return NULL;
    }
  *len = s->len;
  return g_string_free (s, FALSE);
}

static int
decode_ids (AtTokenizer *t, const char *text)
{
  g_auto (GStrv) words = g_strsplit_set (text, " \t\r\n", -1);
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autofree char *out = NULL;

  for (guint i = 0; words[i] != NULL; i++)
    {
      gint64 v;

      if (words[i][0] == '\0')
        continue;
      if (!g_ascii_string_to_signed (words[i], 10, 0, (gint64) at_tokenizer_get_n_tokens (t) - 1,
                                     &v, NULL))
        {
          fprintf (stderr, "atelier tokenize: \"%s\" is not a token id (0 to %u)\n", words[i],
                   at_tokenizer_get_n_tokens (t) - 1);
          return 1;
        }
      g_array_append_val (ids, (gint32) { (gint32) v });
    }
  out = at_tokenizer_decode (t, (const gint32 *) ids->data, ids->len, FALSE);
  fputs (out, stdout);
  return 0;
}

int
atelier_cmd_tokenize (int argc, char **argv)
{
  g_autofree char *model = NULL, *input = NULL;
  gboolean decode = FALSE;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, "GGUF model or vocabulary", "FILE" },
    { "input", 'i', 0, G_OPTION_ARG_FILENAME, &input, "Text to read (- or absent: stdin)", "FILE" },
    { "decode", 'd', 0, G_OPTION_ARG_NONE, &decode, "Read ids, print text", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- token ids of a text");
  g_autoptr (GError) error = NULL;
  g_autoptr (AtModelFile) file = NULL;
  g_autoptr (AtTokenizer) t = NULL;
  g_autoptr (GArray) ids = NULL;
  g_autofree char *text = NULL;
  gsize len = 0;
  AtGguf *g;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "atelier tokenize: %s\n", error->message);
      return 2;
    }
  if (model == NULL || argc != 1)
    {
      fprintf (stderr, "Usage: atelier tokenize --model FILE [--input FILE|-] [--decode]\n");
      return 2;
    }
  file = at_model_file_open (model, &error);
  if (file == NULL)
    {
      fprintf (stderr, "atelier tokenize: %s\n", error->message);
      return 1;
    }
  g = at_model_file_get_gguf (file);
  if (g == NULL)
    {
      fprintf (stderr, "atelier tokenize: %s is not a GGUF file; tokenizers are read from GGUF "
                       "metadata (tokenizer.ggml.*)\n", model);
      return 1;
    }
  t = at_tokenizer_new_from_gguf (g, &error);
  if (t == NULL)
    {
      fprintf (stderr, "atelier tokenize: %s\n", error->message);
      return 1;
    }
  text = read_input (input, &len, &error);
  if (text == NULL)
    {
      fprintf (stderr, "atelier tokenize: %s\n", error->message);
      return 1;
    }
  if (decode)
    return decode_ids (t, text);
  ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  if (!at_tokenizer_encode (t, text, (gssize) len, FALSE, FALSE, ids, &error))
    {
      fprintf (stderr, "atelier tokenize: %s\n", error->message);
      return 1;
    }
  for (guint i = 0; i < ids->len; i++)
    printf ("%s%d", i > 0 ? " " : "", g_array_index (ids, gint32, i));
  printf ("\n");
  return 0;
}
