/* `microrec plan`: the MicroRec plan of a model (or of a preset's shape,
 * without writing the model) for a target: products and bank placement. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli/command.h"
#include "fpga/kernel_emit.h"
#include "fpga/kernel_image.h"
#include "fpga/model.h"
#include "fpga/modelgen.h"
#include "fpga/plan_print.h"
#include "fpga/planner.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: microrec plan MODEL --target u280|cpu [options]\n"
          "       microrec plan --preset NAME [--max-rows N] --target "
          "u280|cpu [options]\n\n"
          "Plans the embedding tables for a target: which small one-hot "
          "tables\n"
          "become Cartesian products (one lookup instead of two or three) "
          "and\n"
          "which memory bank each table lives in. Prints a table per bank "
          "and\n"
          "a summary, or JSON.\n\n"
          "  --target T        u280 or cpu (required)\n"
          "  --budget PCT      extra memory products may cost, percent of "
          "the\n"
          "                    tables' bytes (default 5)\n"
          "  --objective O     dram (default): fewest rounds, then DRAM "
          "lookups,\n"
          "                    then bytes; tables: fewest rounds, then "
          "tables\n"
          "                    (the paper's count), then bytes\n"
          "  --no-products     place the tables without combining any\n"
          "  --preset NAME     plan a preset's shape (criteo, alibaba-47,\n"
          "                    alibaba-98) instead of a MODEL file\n"
          "  --max-rows N      with --preset: cap every table at N rows\n"
          "  --nodes N         search effort (default %d)\n"
          "  --json            JSON on stdout instead of the table\n"
          "  --emit-vitis DIR  u280: write the kernel's microrec_plan.h and "
          "v++\n"
          "                    connectivity.cfg into DIR (fpga/README.md)\n"
          "  -h, --help        this help\n\n"
          "exit codes: 0 ok, 1 the model cannot be read or planned, 2 usage\n",
          MR_PLAN_DEFAULT_NODES);
}

static int parse_u64(const char *s, unsigned long long *out) {
  char *end;
  errno = 0;
  if (!s || !*s || *s == '-') return -1;
  *out = strtoull(s, &end, 10);
  return errno || *end ? -1 : 0;
}

static int plan_main(int argc, char **argv) {
  static const struct option opts[] = {
      {"target", required_argument, NULL, 't'},
      {"budget", required_argument, NULL, 'b'},
      {"objective", required_argument, NULL, 'o'},
      {"no-products", no_argument, NULL, 'n'},
      {"preset", required_argument, NULL, 'p'},
      {"max-rows", required_argument, NULL, 'r'},
      {"nodes", required_argument, NULL, 'N'},
      {"json", no_argument, NULL, 'j'},
      {"emit-vitis", required_argument, NULL, 'E'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *target = NULL, *preset = NULL, *emit_dir = NULL;
  static mr_kshape_t shape; /* the model's shapes, for the kernel */
  unsigned long long max_rows = 0, nodes = 0;
  int json = 0, have_max_rows = 0;
  mr_plan_opts_t po;
  mr_plan_opts_default(&po);
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 't':
        target = optarg;
        break;
      case 'b': {
        char *end;
        errno = 0;
        double pct = strtod(optarg, &end);
        if (errno || *end || !isfinite(pct) || pct < 0 || pct > 10000) {
          mr_cli_errorf(
              "plan: --budget '%s', expected a percentage from 0 "
              "to 10000",
              optarg);
          return MR_EXIT_USAGE;
        }
        po.budget = pct / 100.0;
        break;
      }
      case 'o':
        if (!strcmp(optarg, "dram"))
          po.objective = MR_PLAN_MIN_DRAM;
        else if (!strcmp(optarg, "tables"))
          po.objective = MR_PLAN_MIN_TABLES;
        else {
          mr_cli_errorf("plan: --objective '%s', expected dram or tables",
                        optarg);
          return MR_EXIT_USAGE;
        }
        break;
      case 'n':
        po.no_products = 1;
        break;
      case 'p':
        preset = optarg;
        break;
      case 'r':
        if (parse_u64(optarg, &max_rows) || max_rows == 0) {
          mr_cli_errorf("plan: --max-rows '%s', expected a positive integer",
                        optarg);
          return MR_EXIT_USAGE;
        }
        have_max_rows = 1;
        break;
      case 'N':
        if (parse_u64(optarg, &nodes) || nodes == 0) {
          mr_cli_errorf("plan: --nodes '%s', expected a positive integer",
                        optarg);
          return MR_EXIT_USAGE;
        }
        po.max_nodes = (size_t)nodes;
        break;
      case 'j':
        json = 1;
        break;
      case 'E':
        emit_dir = optarg;
        break;
      case 'h':
        usage(stdout);
        return MR_EXIT_OK;
      default:
        mr_cli_errorf(
            "plan: unknown option or missing value in '%s' (try "
            "microrec plan --help)",
            argv[optind - 1]);
        return MR_EXIT_USAGE;
    }
  }
  int npos = argc - optind;
  if (preset ? npos != 0 : npos != 1) {
    mr_cli_errorf(
        "plan: expected %s, got %d argument%s (try microrec plan "
        "--help)",
        preset ? "no MODEL with --preset" : "one MODEL file", npos,
        npos == 1 ? "" : "s");
    return MR_EXIT_USAGE;
  }
  if (have_max_rows && !preset) {
    mr_cli_errorf("plan: --max-rows goes with --preset");
    return MR_EXIT_USAGE;
  }
  if (!target) {
    mr_cli_errorf("plan: --target is required (one of u280, cpu)");
    return MR_EXIT_USAGE;
  }
  const mr_target_t *t = mr_target_find(target);
  if (!t) {
    mr_cli_errorf("plan: unknown target '%s' (expected u280 or cpu)", target);
    return MR_EXIT_USAGE;
  }
  if (emit_dir && strcmp(t->name, "u280")) {
    mr_cli_errorf("plan: --emit-vitis goes with --target u280");
    return MR_EXIT_USAGE;
  }

  mr_err_t err = {0};
  mr_plan_input_t in;
  memset(&in, 0, sizeof in);
  int rc;
  if (preset) {
    mr_gen_spec_t spec;
    rc = mr_gen_preset(&spec, preset, max_rows, &err);
    if (rc) {
      mr_cli_errorf("plan: %s", err.msg);
      return MR_EXIT_USAGE;
    }
    mr_kshape_from_spec(&shape, &spec);
    rc = mr_plan_input_from_spec(&in, &spec, &err);
  } else {
    mr_model_t m;
    rc = mr_model_open(&m, argv[optind], &err);
    if (rc) {
      mr_cli_errorf("plan: %s: %s", argv[optind], err.msg);
      return MR_EXIT_FAIL;
    }
    rc = mr_plan_input_from_model(&in, &m, &err);
    if (rc == 0 && !strcmp(t->name, "u280"))
      rc = mr_kshape_from_model(&shape, &m, &err);
    mr_model_close(&m);
  }
  if (rc) {
    mr_cli_errorf("plan: %s", err.msg);
    return MR_EXIT_FAIL;
  }
  mr_plan_t p;
  rc = mr_plan_build(&p, &in, t, &po, &err);
  mr_plan_input_free(&in);
  if (rc) {
    mr_cli_errorf("plan: %s", err.msg);
    return MR_EXIT_FAIL;
  }
  rc = json ? mr_plan_print_json(stdout, &p) : mr_plan_print(stdout, &p);
  /* u280: the kernel's cycle model (text only) and the Vitis files. */
  if (rc == 0 && !strcmp(t->name, "u280") && (!json || emit_dir) &&
      mr_kemit_plan_extras(json ? NULL : stdout, &p, &shape.m, emit_dir,
                           &err)) {
    mr_cli_errorf("plan: %s", err.msg);
    mr_plan_free(&p);
    return MR_EXIT_FAIL;
  }
  mr_plan_free(&p);
  if (rc) {
    mr_cli_errorf("plan: writing the plan: %s", mr_strerror(rc));
    return MR_EXIT_FAIL;
  }
  return MR_EXIT_OK;
}

MR_CLI_COMMAND(plan, "plan", "plan products and memory banks for a target",
               plan_main)
