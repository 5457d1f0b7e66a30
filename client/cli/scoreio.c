/* Input flags, loading and output forms of `score` and `infer` (see
 * scoreio.h). */
#include "client/cli/scoreio.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "client/cli/command.h"

void mr_cli_io_help(FILE *f) {
  fputs(
      "  --criteo FILE       Criteo TSV rows (dense ln(1+x), ids taken mod each\n"
      "                      table's rows); '-' reads stdin\n"
      "  --jsonl FILE        JSON lines, one {\"dense\": [...], \"sparse\": [...]}\n"
      "                      per row (\"dense\" omitted or [] for models without\n"
      "                      dense input; ids used as given); '-' reads stdin\n"
      "  --sparse FILE       int64 [rows x tables], little-endian (a file, not '-')\n"
      "  --dense FILE        float32 [rows x dense inputs], little-endian: with\n"
      "                      --sparse, for (and only for) models with dense input\n"
      "  --output FORMAT     text (default): one %.9g number per row, the score,\n"
      "                      or the logit with --logits;\n"
      "                      jsonl: one object per row, {\"score\": S}, or with\n"
      "                      --logits {\"score\": S, \"logit\": L} (%.9g; a value\n"
      "                      that is not finite prints as null)\n"
      "  --logits            text: print logits instead of scores; jsonl: add them\n",
      f);
}

int mr_cli_io_output(mr_cli_io_t *io, const char *cmd, const char *arg) {
  if (strcmp(arg, "text") == 0) {
    io->output = MR_CLI_OUT_TEXT;
  } else if (strcmp(arg, "jsonl") == 0) {
    io->output = MR_CLI_OUT_JSONL;
  } else {
    mr_cli_errorf("%s: --output takes 'text' or 'jsonl', not '%s'", cmd, arg);
    return MR_EXIT_USAGE;
  }
  return 0;
}

static int is_stdin(const char *path) { return path && !strcmp(path, "-"); }

int mr_cli_io_check(const mr_cli_io_t *io, const char *cmd) {
  int forms = !!io->criteo + !!io->jsonl + !!io->sparse;
  if (forms != 1) {
    mr_cli_errorf("%s: give exactly one input: --criteo FILE, --jsonl FILE or "
                  "--sparse FILE (with --dense FILE)%s",
                  cmd, forms ? "; got more than one" : "");
    return MR_EXIT_USAGE;
  }
  if (io->dense && !io->sparse) {
    mr_cli_errorf("%s: --dense goes with --sparse, not with --%s", cmd,
                  io->criteo ? "criteo" : "jsonl");
    return MR_EXIT_USAGE;
  }
  if (is_stdin(io->sparse) || is_stdin(io->dense)) {
    mr_cli_errorf("%s: --sparse and --dense need files, not '-' (stdin): the "
                  "row count comes from the file size; use --jsonl - or "
                  "--criteo - to read stdin",
                  cmd);
    return MR_EXIT_USAGE;
  }
  return 0;
}

int mr_cli_io_check_model(const mr_cli_io_t *io, const char *cmd,
                          size_t num_dense) {
  if (!io->sparse) return 0;
  if (num_dense && !io->dense) {
    mr_cli_errorf("%s: the model has %zu dense inputs: give --dense FILE "
                  "with --sparse",
                  cmd, num_dense);
    return MR_EXIT_USAGE;
  }
  if (!num_dense && io->dense) {
    mr_cli_errorf("%s: the model has no dense input: drop --dense", cmd);
    return MR_EXIT_USAGE;
  }
  return 0;
}

int mr_cli_io_load(const mr_cli_io_t *io, mr_input_t *in, size_t num_dense,
                   size_t num_tables, const uint64_t *rows) {
  mr_err_t err = {0};
  int rc;
  if (io->criteo)
    rc = mr_input_load_criteo(in, io->criteo, num_dense, num_tables, rows,
                              &err);
  else if (io->jsonl)
    rc = mr_input_load_jsonl(in, io->jsonl, num_dense, num_tables, &err);
  else
    rc = mr_input_load_binary(in, io->dense, io->sparse, num_dense,
                              num_tables, &err);
  if (rc) {
    mr_cli_errorf("%s", err.msg);
    return MR_EXIT_FAIL;
  }
  return 0;
}

int mr_cli_io_wants_scores(const mr_cli_io_t *io) {
  return io->output == MR_CLI_OUT_JSONL || !io->logits;
}

int mr_cli_io_wants_logits(const mr_cli_io_t *io) { return io->logits; }

/* %.9g round-trips a float; JSON has no inf or nan, so those are null. */
static void put_json_number(float v) {
  if (isfinite(v))
    printf("%.9g", (double)v);
  else
    fputs("null", stdout);
}

int mr_cli_io_print(const mr_cli_io_t *io, size_t n, const float *scores,
                    const float *logits) {
  errno = 0;
  for (size_t i = 0; i < n; i++) {
    if (io->output == MR_CLI_OUT_TEXT) {
      printf("%.9g\n", (double)(io->logits ? logits[i] : scores[i]));
    } else {
      fputs("{\"score\": ", stdout);
      put_json_number(scores[i]);
      if (io->logits) {
        fputs(", \"logit\": ", stdout);
        put_json_number(logits[i]);
      }
      fputs("}\n", stdout);
    }
    if ((i & 4095) == 4095 && ferror(stdout)) break; /* stop early */
  }
  if (fflush(stdout) != 0 || ferror(stdout)) {
    mr_cli_errorf("writing the results: %s",
                  errno ? strerror(errno) : "output error");
    return MR_EXIT_FAIL;
  }
  return MR_EXIT_OK;
}
