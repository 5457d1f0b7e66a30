/* `microrec`: dispatches to the subcommands registered by cmd_*.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli/command.h"

#define MR_CLI_MAX_COMMANDS 64

static const mr_cli_command_t *commands[MR_CLI_MAX_COMMANDS];
static size_t num_commands;

void mr_cli_register(const mr_cli_command_t *c) {
  if (num_commands < MR_CLI_MAX_COMMANDS) commands[num_commands++] = c;
}

void mr_cli_errorf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("microrec: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static int by_name(const void *a, const void *b) {
  return strcmp((*(const mr_cli_command_t *const *)a)->name,
                (*(const mr_cli_command_t *const *)b)->name);
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: microrec COMMAND [ARGS]   (microrec COMMAND --help for "
          "each)\n\ncommands:\n");
  for (size_t i = 0; i < num_commands; i++)
    fprintf(out, "  %-14s %s\n", commands[i]->name, commands[i]->summary);
  fprintf(out, "\nexit codes: 0 ok, 1 failure, 2 usage error\n");
}

/* Matches "model info" against argv[1..2] and "score" against argv[1]. */
static int matches(const mr_cli_command_t *c, int argc, char **argv,
                   int *words) {
  const char *space = strchr(c->name, ' ');
  if (!space) {
    *words = 1;
    return strcmp(c->name, argv[1]) == 0;
  }
  size_t first = (size_t)(space - c->name);
  *words = 2;
  return argc > 2 && strlen(argv[1]) == first &&
         strncmp(c->name, argv[1], first) == 0 &&
         strcmp(space + 1, argv[2]) == 0;
}

int main(int argc, char **argv) {
  qsort(commands, num_commands, sizeof *commands, by_name);
  if (argc < 2) {
    usage(stderr);
    return MR_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
      !strcmp(argv[1], "help")) {
    usage(stdout);
    return MR_EXIT_OK;
  }
  for (size_t i = 0; i < num_commands; i++) {
    int words;
    if (matches(commands[i], argc, argv, &words))
      return commands[i]->main(argc - words, argv + words);
  }
  /* A group word alone ("microrec model"): list its commands. */
  int group = 0;
  for (size_t i = 0; i < num_commands; i++) {
    size_t n = strlen(argv[1]);
    if (!strncmp(commands[i]->name, argv[1], n) && commands[i]->name[n] == ' ') {
      if (!group) fprintf(stderr, "microrec %s: choose one of:\n", argv[1]);
      fprintf(stderr, "  %-14s %s\n", commands[i]->name, commands[i]->summary);
      group = 1;
    }
  }
  if (!group) mr_cli_errorf("unknown command '%s' (try microrec --help)", argv[1]);
  return MR_EXIT_USAGE;
}
