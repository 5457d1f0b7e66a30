/* Subcommands of the `microrec` CLI. Each cmd_*.c registers its commands with
 * MR_CLI_COMMAND, so adding a command touches only its own file.
 *
 * Exit codes scripts can rely on: 0 success, 1 runtime failure (model, server
 * or I/O error), 2 usage error (bad flags or arguments). */
#ifndef MR_CLI_COMMAND_H
#define MR_CLI_COMMAND_H

enum { MR_EXIT_OK = 0, MR_EXIT_FAIL = 1, MR_EXIT_USAGE = 2 };

typedef struct mr_cli_command {
  const char *name;     /* "score", or "model info" for a two-word command */
  const char *summary;  /* one line for `microrec --help` */
  int (*main)(int argc, char **argv);  /* argv[0] is the command name */
} mr_cli_command_t;

void mr_cli_register(const mr_cli_command_t *c);

#define MR_CLI_COMMAND(ident, name_, summary_, fn)                     \
  static const mr_cli_command_t mr_cli_cmd_##ident = {name_, summary_, \
                                                      fn};             \
  __attribute__((constructor)) static void mr_cli_reg_##ident(void) {  \
    mr_cli_register(&mr_cli_cmd_##ident);                              \
  }

/* Prints "microrec: " + message to stderr. */
void mr_cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
