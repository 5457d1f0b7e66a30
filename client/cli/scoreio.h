/* The input and output forms `microrec score` and `microrec infer` share:
 * input from exactly one of --criteo FILE, --jsonl FILE or --sparse FILE
 * [--dense FILE], and output as text (one %.9g per row) or JSON lines
 * ({"score": S} or {"score": S, "logit": L}). Each function prints its own
 * message with mr_cli_errorf and returns an MR_EXIT_* code.
 * Single-threaded: the CLI's main thread only. */
#ifndef MR_CLI_SCOREIO_H
#define MR_CLI_SCOREIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "client/lib/input.h"

typedef enum { MR_CLI_OUT_TEXT = 0, MR_CLI_OUT_JSONL = 1 } mr_cli_out_t;

typedef struct mr_cli_io {
  const char *criteo, *jsonl, *dense, *sparse; /* flag values or NULL */
  mr_cli_out_t output;
  int logits;                                  /* --logits */
} mr_cli_io_t;

/* Writes the help lines of the flags above, for each command's usage. */
void mr_cli_io_help(FILE *f);

/* Takes --output's argument: "text" or "jsonl"; else MR_EXIT_USAGE. */
int mr_cli_io_output(mr_cli_io_t *io, const char *cmd, const char *arg);

/* Checks the input flags alone: exactly one of --criteo, --jsonl, --sparse;
 * --dense only with --sparse; "-" only for --criteo and --jsonl. 0 or
 * MR_EXIT_USAGE. */
int mr_cli_io_check(const mr_cli_io_t *io, const char *cmd);

/* Checks the flags against the model: --dense given exactly when the binary
 * input needs it (num_dense > 0). 0 or MR_EXIT_USAGE. */
int mr_cli_io_check_model(const mr_cli_io_t *io, const char *cmd,
                          size_t num_dense);

/* Loads the input for a model of these dimensions (rows: each table's rows,
 * for Criteo's id reduction; may be NULL). 0 or MR_EXIT_FAIL. */
int mr_cli_io_load(const mr_cli_io_t *io, mr_input_t *in, size_t num_dense,
                   size_t num_tables, const uint64_t *rows);

/* Whether the output needs the scores / the logits. */
int mr_cli_io_wants_scores(const mr_cli_io_t *io);
int mr_cli_io_wants_logits(const mr_cli_io_t *io);

/* Prints n rows to stdout in the chosen form from scores and logits (each
 * may be NULL when not wanted) and flushes. MR_EXIT_OK, or MR_EXIT_FAIL
 * when writing failed. */
int mr_cli_io_print(const mr_cli_io_t *io, size_t n, const float *scores,
                    const float *logits);

#endif
