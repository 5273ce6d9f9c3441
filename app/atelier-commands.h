/* atelier-commands.h: one function per `atelier` subcommand; each takes the argv that follows
 * the command name (argv[0] is the command) and returns the exit status. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

int atelier_cmd_devices (int argc, char **argv);
int atelier_cmd_bench (int argc, char **argv);
int atelier_cmd_models (int argc, char **argv);
int atelier_cmd_write (int argc, char **argv);
/* -- tokenizer commands -- */
int atelier_cmd_tokenize (int argc, char **argv);
/* -- llm commands -- */
/* -- history commands -- */
int atelier_cmd_history (int argc, char **argv);

G_END_DECLS
