/* Entry points of cmd_remote.c that other commands may delegate to. */
#ifndef MR_CLI_REMOTE_H
#define MR_CLI_REMOTE_H

/* `microrec remote-info [--server HOST:PORT] [--timeout-ms T] [--json]`:
 * argv[0] is the command name. `model info --server HOST:PORT` can forward
 * its argv here unchanged. Returns an MR_EXIT_* code. */
int mr_cli_remote_info_main(int argc, char **argv);

#endif
