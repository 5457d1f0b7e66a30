/* `microrec score`: scores input rows offline with the engine, no server.
 * Prints one row per input row, in order, as text or JSON lines
 * (scoreio.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli/command.h"
#include "client/cli/scoreio.h"
#include "client/lib/input.h"
#include "fpga/engine.h"
#include "fpga/memcheck.h"
#include "fpga/model.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: microrec score MODEL (--criteo FILE | --jsonl FILE |\n"
          "                      [--dense FILE] --sparse FILE)\n"
          "                      [--output text|jsonl] [--logits] [--batch N]\n"
          "                      [--engine cpu|fpga-sim|fpga] [--no-products]\n"
          "                      [--simd avx512|avx2|scalar] [--xclbin FILE]\n\n"
          "Scores every input row offline with the engine (no server) and prints\n"
          "one result per row, in order: the score (sigmoid of the logit), or the\n"
          "logit with --logits.\n\n");
  mr_cli_io_help(out);
  fprintf(out,
          "  --batch N           samples per engine call (default: all rows in "
          "one call)\n"
          "  --engine NAME       backend (default cpu)\n"
          "  --no-products       plan without Cartesian-product tables\n"
          "  --simd SET          force a kernel set (default: the best the CPU "
          "has)\n"
          "  --xclbin FILE       the fpga backend's bitstream\n"
          "  --help              this text\n\n"
          "exit codes: 0 ok, 1 failure (bad model or input data, engine or "
          "write\nerror), 2 usage error (bad flags, or input flags that do "
          "not fit the model)\n");
}

static int known_backend(const char *name) {
  return mr_backend_find(name) != NULL;
}

static int known_simd(const char *s) {
  return !strcmp(s, "avx512") || !strcmp(s, "avx2") || !strcmp(s, "scalar");
}

enum { OPT_CRITEO = 1000, OPT_JSONL, OPT_DENSE, OPT_SPARSE, OPT_LOGITS,
       OPT_OUTPUT, OPT_BATCH, OPT_ENGINE, OPT_NO_PRODUCTS, OPT_SIMD,
       OPT_XCLBIN };

static int score_cmd(int argc, char **argv) {
  mr_cli_io_t io = {0};
  size_t batch = 0;
  mr_engine_opts_t opts = {0};
  static const struct option longopts[] = {
      {"criteo", required_argument, 0, OPT_CRITEO},
      {"jsonl", required_argument, 0, OPT_JSONL},
      {"dense", required_argument, 0, OPT_DENSE},
      {"sparse", required_argument, 0, OPT_SPARSE},
      {"logits", no_argument, 0, OPT_LOGITS},
      {"output", required_argument, 0, OPT_OUTPUT},
      {"batch", required_argument, 0, OPT_BATCH},
      {"engine", required_argument, 0, OPT_ENGINE},
      {"no-products", no_argument, 0, OPT_NO_PRODUCTS},
      {"simd", required_argument, 0, OPT_SIMD},
      {"xclbin", required_argument, 0, OPT_XCLBIN},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case OPT_CRITEO: io.criteo = optarg; break;
    case OPT_JSONL: io.jsonl = optarg; break;
    case OPT_DENSE: io.dense = optarg; break;
    case OPT_SPARSE: io.sparse = optarg; break;
    case OPT_LOGITS: io.logits = 1; break;
    case OPT_OUTPUT:
      if (mr_cli_io_output(&io, "score", optarg)) return MR_EXIT_USAGE;
      break;
    case OPT_BATCH: {
      char *end;
      unsigned long long v = strtoull(optarg, &end, 10);
      if (!*optarg || *end || optarg[0] == '-' || v < 1 || v > 1000000) {
        mr_cli_errorf("score: --batch takes a number from 1 to 1000000, not '%s'", optarg);
        return MR_EXIT_USAGE;
      }
      batch = (size_t)v;
      break;
    }
    case OPT_ENGINE:
      if (!known_backend(optarg)) {
        mr_cli_errorf("score: --engine '%s' unknown (see --help)", optarg);
        return MR_EXIT_USAGE;
      }
      opts.backend = optarg;
      break;
    case OPT_NO_PRODUCTS: opts.no_products = 1; break;
    case OPT_SIMD:
      if (!known_simd(optarg)) {
        mr_cli_errorf("score: --simd takes avx512, avx2 or scalar, not '%s'", optarg);
        return MR_EXIT_USAGE;
      }
      opts.simd = optarg;
      break;
    case OPT_XCLBIN: opts.xclbin = optarg; break;
    case 'h': usage(stdout); return MR_EXIT_OK;
    default: usage(stderr); return MR_EXIT_USAGE;
    }
  }
  if (optind >= argc) {
    mr_cli_errorf("score: the MODEL file is missing (see --help)");
    return MR_EXIT_USAGE;
  }
  if (optind + 1 != argc) {
    mr_cli_errorf("score: unexpected argument '%s'", argv[optind + 1]);
    return MR_EXIT_USAGE;
  }
  if (mr_cli_io_check(&io, "score")) return MR_EXIT_USAGE;
  const char *path = argv[optind];
  mr_err_t err = {0};
  mr_model_t model;
  mr_engine_t *engine = NULL;
  mr_scratch_t *scratch = NULL;
  mr_input_t in = {0};
  float *logits = NULL, *scores = NULL;
  int status = MR_EXIT_FAIL;

  if (mr_model_open(&model, path, &err)) {
    mr_cli_errorf("%s: %s", path, err.msg);
    return MR_EXIT_FAIL;
  }
  if (mr_cli_io_check_model(&io, "score", model.num_dense)) {
    mr_model_close(&model);
    return MR_EXIT_USAGE;
  }
  uint64_t *rows = calloc(model.num_tables ? model.num_tables : 1, sizeof *rows);
  if (!rows) {
    mr_model_close(&model);
    mr_cli_errorf("out of memory");
    return MR_EXIT_FAIL;
  }
  for (size_t k = 0; k < model.num_tables; k++) rows[k] = model.tables[k].rows;
  int rc = mr_cli_io_load(&io, &in, model.num_dense, model.num_tables, rows);
  free(rows);
  if (rc) {
    mr_model_close(&model);
    return rc;
  }
  if (batch == 0) batch = in.n ? in.n : 1;
  opts.max_batch = batch < 256 ? batch : 256;
  /* A model too large for this machine fails here, with numbers. */
  rc = mr_mem_check(&model, &opts, 1, "the model", NULL, &err);
  if (rc == 0) rc = mr_engine_open(&engine, &model, &opts, &err);
  mr_model_close(&model);
  if (rc) {
    mr_cli_errorf("%s: %s", path, err.msg);
    goto done;
  }
  if (mr_scratch_new(engine, &scratch, &err)) {
    mr_cli_errorf("%s", err.msg);
    goto done;
  }
  logits = malloc((in.n ? in.n : 1) * sizeof *logits);
  scores = malloc((in.n ? in.n : 1) * sizeof *scores);
  if (!logits || !scores) {
    mr_cli_errorf("out of memory for %zu rows", in.n);
    goto done;
  }
  for (size_t i = 0; i < in.n; i += batch) {
    size_t n = in.n - i < batch ? in.n - i : batch;
    if (mr_engine_run(engine, scratch, n, in.dense ? in.dense + i * in.num_dense : NULL,
                      in.ids + i * in.num_tables, logits + i, &err)) {
      mr_cli_errorf("rows %zu..%zu: %s", i, i + n - 1, err.msg);
      goto done;
    }
  }
  for (size_t i = 0; i < in.n; i++) scores[i] = mr_sigmoid(logits[i]);
  status = mr_cli_io_print(&io, in.n, scores, logits);
done:
  free(logits);
  free(scores);
  if (scratch) mr_scratch_free(engine, scratch);
  if (engine) mr_engine_close(engine);
  mr_input_free(&in);
  return status;
}

MR_CLI_COMMAND(score, "score", "score rows offline with the engine (no server)", score_cmd)
