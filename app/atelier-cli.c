/* atelier-cli.c: dispatch of `atelier <command>`. Every command prints a one-line reason to
 * stderr and exits non-zero on failure. */
#include "config.h"

#include "atelier-cli.h"

#include <stdio.h>
#include <string.h>

#include "atelier-commands.h"

typedef struct
{
  const char *name;
  int (*run) (int argc, char **argv);
  const char *summary;
} Command;

static const Command commands[] = {
  { "devices", atelier_cmd_devices, "list Vulkan devices and their features" },
  { "bench", atelier_cmd_bench, "measure the engine (bench ops)" },
  { "models", atelier_cmd_models, "find, list and inspect models (models list|add|remove|inspect)" },
  { "write", atelier_cmd_write, "write with a language model (continue, rewrite, summarize, brainstorm)" },
  /* -- tokenizer commands -- */
  { "tokenize", atelier_cmd_tokenize, "token ids of a text (tokenize --model FILE [--input FILE] [--decode])" },
  /* -- llm commands -- */
  /* -- history commands -- */
  { "history", atelier_cmd_history, "what Atelier made (history list|search|show|tree|export|tag|fav|rm|check)" },
};

static void
usage (FILE *out)
{
  fprintf (out, "Usage: atelier [FILE...]          open the window\n"
                "       atelier COMMAND [OPTIONS]\n\nCommands:\n");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf (out, "\n  --version  print the version\n  --help     this text\n");
}

gboolean
atelier_cli_handles (int argc, char **argv)
{
  if (argc < 2)
    return FALSE;
  if (strcmp (argv[1], "--version") == 0 || strcmp (argv[1], "help") == 0)
    return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      return TRUE;
  return FALSE;
}

int
atelier_cli_run (int argc, char **argv)
{
  if (strcmp (argv[1], "--version") == 0)
    {
      printf ("atelier %s\n", ATELIER_VERSION);
      return 0;
    }
  if (strcmp (argv[1], "help") == 0)
    {
      usage (stdout);
      return 0;
    }
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      return commands[i].run (argc - 1, argv + 1);
  usage (stderr);
  return 2;
}
