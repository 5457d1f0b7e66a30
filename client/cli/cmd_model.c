/* `microrec model info` (describe a model file) and `microrec model gen`
 * (write a random model in the shape of a preset workload). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/cli/command.h"
#include "client/cli/remote.h"
#include "fpga/model.h"
#include "fpga/modelgen.h"
#include "fpga/safetensors.h"

/* "1.41 GB": decimal units, as model sizes are usually quoted. */
static const char *human(uint64_t n, char *buf, size_t len) {
  static const char *const unit[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  double v = (double)n;
  int u = 0;
  while (v >= 1000.0 && u < 5) {
    v /= 1000.0;
    u++;
  }
  if (u == 0) snprintf(buf, len, "%" PRIu64 " B", n);
  else snprintf(buf, len, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, unit[u]);
  return buf;
}

/* Reports a bad option the way every command does; returns MR_EXIT_USAGE. */
static int bad_option(const char *cmd, char **argv) {
  mr_cli_errorf("model %s: unknown option or missing value in '%s' (try "
                "microrec model %s --help)",
                cmd, argv[optind - 1], cmd);
  return MR_EXIT_USAGE;
}

/* ---- model info ---- */

static void info_usage(FILE *out) {
  fprintf(out,
          "usage: microrec model info MODEL [--json]\n"
          "       microrec model info --server HOST:PORT [--timeout-ms T] [--json]\n\n"
          "Describes a .safetensors DLRM model: interaction, dense inputs,\n"
          "every table (rows, width, bytes), the MLP layers and the total\n"
          "parameter bytes. With --server, describes the model a running\n"
          "microrecd serves instead.\n\n"
          "  --json      one JSON object on stdout instead of text\n"
          "  -h, --help  this help\n");
}

static json_t *layers_json(const mr_layer_t *l, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(a, json_pack("{s:I,s:I}", "in", (json_int_t)l[i].in,
                                       "out", (json_int_t)l[i].out));
  return a;
}

static int info_json(const char *path, const mr_model_t *m) {
  json_t *tables = json_array();
  for (size_t k = 0; k < m->num_tables; k++) {
    const mr_table_t *t = &m->tables[k];
    json_array_append_new(
        tables, json_pack("{s:I,s:I,s:I,s:I}", "index", (json_int_t)k, "rows",
                          (json_int_t)t->rows, "width", (json_int_t)t->dim,
                          "bytes",
                          (json_int_t)(t->rows * t->dim * sizeof(float))));
  }
  json_t *o = json_pack(
      "{s:s,s:s,s:I,s:I,s:o,s:o,s:I,s:o,s:I}", "path", path, "interaction",
      mr_interaction_name(m->interaction), "num_dense",
      (json_int_t)m->num_dense, "num_tables", (json_int_t)m->num_tables,
      "tables", tables, "bottom", layers_json(m->bot, m->num_bot), "top_in",
      (json_int_t)mr_model_top_in(m), "top", layers_json(m->top, m->num_top),
      "param_bytes", (json_int_t)mr_model_param_bytes(m));
  char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
  json_decref(o);
  if (!s) {
    mr_cli_errorf("model info: out of memory");
    return MR_EXIT_FAIL;
  }
  puts(s);
  free(s);
  return MR_EXIT_OK;
}

static void print_mlp(const char *what, const char *prefix,
                      const mr_layer_t *l, size_t n) {
  if (!n) {
    printf("%s: none\n", what);
    return;
  }
  printf("%s: %zu", what, l[0].in);
  for (size_t i = 0; i < n; i++) printf(" -> %zu", l[i].out);
  printf("\n");
  for (size_t i = 0; i < n; i++)
    printf("  %s%-3zu %6zu -> %zu\n", prefix, 2 * i, l[i].in, l[i].out);
}

static void info_text(const char *path, const mr_model_t *m) {
  char h[32];
  uint64_t table_bytes = 0;
  for (size_t k = 0; k < m->num_tables; k++)
    table_bytes += (uint64_t)m->tables[k].rows * m->tables[k].dim * 4;
  printf("model: %s\n", path);
  printf("interaction: %s\n", mr_interaction_name(m->interaction));
  printf("dense inputs: %zu\n", m->num_dense);
  printf("tables: %zu (%s as fp32)\n", m->num_tables,
         human(table_bytes, h, sizeof h));
  printf("  %5s %12s %6s %14s\n", "index", "rows", "width", "bytes");
  for (size_t k = 0; k < m->num_tables; k++) {
    const mr_table_t *t = &m->tables[k];
    printf("  %5zu %12zu %6zu %14" PRIu64 "\n", k, t->rows, t->dim,
           (uint64_t)t->rows * t->dim * 4);
  }
  print_mlp("bottom MLP", "bot_l.", m->bot, m->num_bot);
  printf("top input width: %zu\n", mr_model_top_in(m));
  print_mlp("top MLP", "top_l.", m->top, m->num_top);
  uint64_t p = mr_model_param_bytes(m);
  printf("parameters: %" PRIu64 " bytes (%s as fp32)\n", p, human(p, h, sizeof h));
}

static int model_info_main(int argc, char **argv) {
  /* With --server the model is the one a running microrecd serves. */
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--server") || !strncmp(argv[i], "--server=", 9))
      return mr_cli_remote_info_main(argc, argv);
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int json = 0, c;
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'j') json = 1;
    else if (c == 'h') {
      info_usage(stdout);
      return MR_EXIT_OK;
    } else return bad_option("info", argv);
  }
  if (argc - optind != 1) {
    mr_cli_errorf("model info: expected one MODEL argument, got %d",
                  argc - optind);
    info_usage(stderr);
    return MR_EXIT_USAGE;
  }
  const char *path = argv[optind];
  mr_model_t m;
  mr_err_t err = {0};
  if (mr_model_open(&m, path, &err)) {
    mr_cli_errorf("model info: %s", err.msg);
    return MR_EXIT_FAIL;
  }
  int rc = MR_EXIT_OK;
  if (json) rc = info_json(path, &m);
  else info_text(path, &m);
  mr_model_close(&m);
  return rc;
}

/* ---- model gen ---- */

static void gen_usage(FILE *out) {
  fprintf(out,
          "usage: microrec model gen --preset NAME [--max-rows N] [--seed S]\n"
          "                          [--dtype f32|f16|bf16] -o FILE\n\n"
          "Writes a model with random weights in the shape of a workload:\n"
          "  criteo      26 tables (Criteo Kaggle cardinalities) of width 16,\n"
          "              bottom 13-512-256-64-16, dot, top 367-512-256-1\n"
          "  alibaba-47  MicroRec's 47-table model: widths 4..32 (352),\n"
          "              cat, no dense input, top 352-1024-512-256-1 (1.4 GB)\n"
          "  alibaba-98  MicroRec's 98-table model: widths 4..32 (876),\n"
          "              cat, top 876-1024-512-256-1 (about 15 GB)\n\n"
          "  -p, --preset NAME  workload shape (required)\n"
          "  -r, --max-rows N   cap every table at N rows (default: no cap)\n"
          "  -s, --seed S       random seed (default 1); same seed, same bytes\n"
          "  -t, --dtype T      stored type: f32 (default), f16 or bf16\n"
          "  -o, --output FILE  where to write (written to FILE.tmp, then\n"
          "                     renamed)\n"
          "  -h, --help         this help\n");
}

typedef struct progress {
  double start, last;
  int last_pct, tty;
} progress_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Large models only: a line every 5% or every 3 s, whichever comes first;
 * on a terminal the line is rewritten in place. */
#define GEN_PROGRESS_MIN_BYTES (256u << 20)

static void on_progress(void *ctx, uint64_t done, uint64_t total) {
  progress_t *p = ctx;
  if (total < GEN_PROGRESS_MIN_BYTES) return;
  int pct = (int)(done * 100 / total);
  double t = now_s();
  if (done < total && pct / 5 == p->last_pct / 5 && t - p->last < 3.0) return;
  char a[32], b[32];
  fprintf(stderr, "%smodel gen: %3d%% (%s of %s, %.0f s)%s",
          p->tty ? "\r" : "", pct, human(done, a, sizeof a),
          human(total, b, sizeof b), t - p->start,
          p->tty && done < total ? "" : "\n");
  fflush(stderr);
  p->last_pct = pct;
  p->last = t;
}

static int parse_u64(const char *s, uint64_t *out) {
  char *end;
  if (!s || !*s || *s == '-') return -1;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || *end) return -1;
  *out = v;
  return 0;
}

static int model_gen_main(int argc, char **argv) {
  static const struct option opts[] = {
      {"preset", required_argument, NULL, 'p'},
      {"max-rows", required_argument, NULL, 'r'},
      {"seed", required_argument, NULL, 's'},
      {"dtype", required_argument, NULL, 't'},
      {"output", required_argument, NULL, 'o'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *preset = NULL, *out = NULL;
  uint64_t max_rows = 0, seed = 1;
  mr_dtype_t dtype = MR_F32;
  int c;
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, "p:r:s:t:o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'p': preset = optarg; break;
    case 'o': out = optarg; break;
    case 'r':
      if (parse_u64(optarg, &max_rows) || !max_rows) {
        mr_cli_errorf("model gen: --max-rows '%s' (expected an integer >= 1)",
                      optarg);
        return MR_EXIT_USAGE;
      }
      break;
    case 's':
      if (parse_u64(optarg, &seed)) {
        mr_cli_errorf("model gen: --seed '%s' (expected an integer >= 0)",
                      optarg);
        return MR_EXIT_USAGE;
      }
      break;
    case 't':
      if (mr_dtype_parse(optarg, &dtype)) {
        mr_cli_errorf("model gen: --dtype '%s' (expected f32, f16 or bf16)",
                      optarg);
        return MR_EXIT_USAGE;
      }
      break;
    case 'h': gen_usage(stdout); return MR_EXIT_OK;
    default: return bad_option("gen", argv);
    }
  }
  if (optind != argc) {
    mr_cli_errorf("model gen: unexpected argument '%s'", argv[optind]);
    return MR_EXIT_USAGE;
  }
  if (!preset || !out) {
    mr_cli_errorf("model gen: %s is required (try microrec model gen --help)",
                  !preset ? "--preset" : "-o FILE");
    return MR_EXIT_USAGE;
  }
  mr_gen_spec_t spec;
  mr_err_t err = {0};
  if (mr_gen_preset(&spec, preset, max_rows, &err)) {
    mr_cli_errorf("model gen: %s", err.msg);
    return MR_EXIT_USAGE;
  }
  spec.seed = seed;
  spec.dtype = dtype;
  progress_t p = {.start = now_s(), .tty = isatty(STDERR_FILENO)};
  p.last = p.start;
  if (mr_gen_write(&spec, out, on_progress, &p, &err)) {
    mr_cli_errorf("model gen: %s", err.msg);
    return MR_EXIT_FAIL;
  }
  struct stat sb;
  char a[32], b[32];
  uint64_t file = stat(out, &sb) == 0 ? (uint64_t)sb.st_size : 0;
  printf("wrote %s: %s, %zu tables, %s of parameters, %s file (%s), seed "
         "%" PRIu64 ", %.1f s\n",
         out, preset, spec.num_tables,
         human(mr_gen_param_bytes(&spec), a, sizeof a), human(file, b, sizeof b),
         mr_dtype_name(dtype), seed, now_s() - p.start);
  return MR_EXIT_OK;
}

MR_CLI_COMMAND(model_info, "model info", "describe a model file", model_info_main)
MR_CLI_COMMAND(model_gen, "model gen",
               "write a random model shaped like criteo/alibaba-47/alibaba-98",
               model_gen_main)
