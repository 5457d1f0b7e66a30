/* `microrec bench`: engine-only timing in one process, no server. Threads
 * each score batches of random (uniform or Zipf) ids for a fixed time; the
 * per-batch latencies give median and p99, the totals samples per second. */
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/cli/command.h"
#include "fpga/engine.h"
#include "fpga/model.h"
#include "fpga/planner.h"

typedef struct bench_cfg {
  size_t batch;
  double seconds, warmup;
  double zipf;  /* 0 = uniform ids */
  uint64_t seed;
} bench_cfg_t;

typedef struct bench_thread {
  pthread_t tid;
  mr_engine_t *engine;
  const bench_cfg_t *cfg;
  int index;
  /* results */
  double *lat_us;
  size_t num_lat, cap_lat;
  uint64_t samples;
  double elapsed_s;
  int rc;
  mr_err_t err;
} bench_thread_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Zipf-like id in [0, rows): inverse CDF of a continuous power law, so that
 * small ids are hot; exponent s != 1. Cheap and good enough for skew. */
static int64_t draw_id(uint64_t *rng, uint64_t rows, double s) {
  double u = (double)(splitmix64(rng) >> 11) * 0x1.0p-53;
  if (s <= 0) return (int64_t)(u * (double)rows) % (int64_t)rows;
  double e = 1.0 - s;
  double hi = pow((double)rows + 1.0, e);
  double x = pow(1.0 + u * (hi - 1.0), 1.0 / e) - 1.0;
  uint64_t id = (uint64_t)x;
  return (int64_t)(id < rows ? id : rows - 1);
}

/* Inputs for a pool of batches, drawn once so timing sees only the engine. */
#define BENCH_POOL 64

static void *bench_main(void *arg) {
  bench_thread_t *t = arg;
  const bench_cfg_t *cfg = t->cfg;
  const mr_engine_info_t *info = mr_engine_info(t->engine);
  size_t nd = info->num_dense, nt = info->num_tables, b = cfg->batch;
  mr_scratch_t *scratch = NULL;
  float *dense = malloc(sizeof(float) * (nd ? nd : 1) * b * BENCH_POOL);
  int64_t *ids = malloc(sizeof(int64_t) * nt * b * BENCH_POOL);
  float *logits = malloc(sizeof(float) * b);
  if (!dense || !ids || !logits) {
    t->rc = mr_err_set(&t->err, MR_ENOMEM, "out of memory for inputs");
    goto done;
  }
  uint64_t rng = cfg->seed * 7919 + (uint64_t)t->index;
  for (size_t i = 0; i < b * BENCH_POOL; i++) {
    for (size_t k = 0; k < nd; k++)
      dense[i * nd + k] = (float)((splitmix64(&rng) >> 40) % 1000) / 100.0f;
    for (size_t k = 0; k < nt; k++)
      ids[i * nt + k] = draw_id(&rng, info->table_rows[k], cfg->zipf);
  }
  t->rc = mr_scratch_new(t->engine, &scratch, &t->err);
  if (t->rc) goto done;
  double start = now_s(), measure_from = start + cfg->warmup;
  double end = measure_from + cfg->seconds;
  size_t round = 0;
  for (;;) {
    size_t p = round++ % BENCH_POOL;
    double t0 = now_s();
    t->rc = mr_engine_run(t->engine, scratch, b, dense + p * b * nd,
                          ids + p * b * nt, logits, &t->err);
    double t1 = now_s();
    if (t->rc) goto done;
    if (t0 < measure_from) continue;
    if (t->num_lat == t->cap_lat) {
      size_t cap = t->cap_lat ? t->cap_lat * 2 : 1 << 16;
      double *grown = realloc(t->lat_us, cap * sizeof *grown);
      if (!grown) {
        t->rc = mr_err_set(&t->err, MR_ENOMEM, "out of memory for latencies");
        goto done;
      }
      t->lat_us = grown;
      t->cap_lat = cap;
    }
    t->lat_us[t->num_lat++] = (t1 - t0) * 1e6;
    t->samples += b;
    if (t1 >= end) break;
  }
  t->elapsed_s = now_s() - measure_from;
done:
  if (scratch) mr_scratch_free(t->engine, scratch);
  free(dense);
  free(ids);
  free(logits);
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double percentile(const double *sorted, size_t n, double q) {
  if (!n) return 0;
  size_t i = (size_t)ceil(q * (double)n);
  return sorted[i ? i - 1 : 0];
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: microrec bench MODEL [--batch B] [--threads T] [--seconds S]\n"
          "                      [--warmup S] [--zipf EXP] [--simd avx512|avx2|scalar]\n"
          "                      [--no-products | --most-products] [--precision fp32|bf16|int8emb|bf16-int8emb]\n"
          "                      [--intra-threads N] [--stage all|lookup|mlp] [--json]\n"
          "Engine-only timing in one process: T threads each score batches of B\n"
          "random samples (uniform ids, or Zipf with exponent EXP) for S seconds.\n"
          "Reports per-batch latency median and p99 and samples per second.\n"
          "  --precision P      number formats of the cpu engine (as microrec score)\n"
          "  --intra-threads N  threads sharing each run (the cpu engine's pool)\n"
          "  --most-products    plan for the fewest tables (products wherever the\n"
          "                     5%% budget allows), to see what products cost or\n"
          "                     save on this CPU; --no-products for none\n"
          "  --stage S          time the embedding lookups or the MLPs alone\n"
          "defaults: --batch 1 --threads 1 --seconds 5 --warmup 1 --zipf 0\n");
}

static int bench_cmd(int argc, char **argv) {
  bench_cfg_t cfg = {.batch = 1, .seconds = 5, .warmup = 1, .seed = 1};
  size_t threads = 1;
  int json = 0, most_products = 0;
  mr_engine_opts_t opts = {0};
  static const struct option longopts[] = {
      {"batch", required_argument, 0, 'b'},   {"threads", required_argument, 0, 't'},
      {"seconds", required_argument, 0, 's'}, {"warmup", required_argument, 0, 'w'},
      {"zipf", required_argument, 0, 'z'},    {"simd", required_argument, 0, 'S'},
      {"no-products", no_argument, 0, 'P'},   {"json", no_argument, 0, 'j'},
      {"most-products", no_argument, 0, 'M'},
      {"engine", required_argument, 0, 'e'},  {"help", no_argument, 0, 'h'},
      {"precision", required_argument, 0, 'p'},
      {"intra-threads", required_argument, 0, 'i'},
      {"stage", required_argument, 0, 'g'},
      {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    char *end = NULL;
    switch (c) {
    case 'b': cfg.batch = strtoull(optarg, &end, 10); break;
    case 't': threads = strtoull(optarg, &end, 10); break;
    case 's': cfg.seconds = strtod(optarg, &end); break;
    case 'w': cfg.warmup = strtod(optarg, &end); break;
    case 'z': cfg.zipf = strtod(optarg, &end); break;
    case 'S': opts.simd = optarg; break;
    case 'e': opts.backend = optarg; break;
    case 'P': opts.no_products = 1; break;
    case 'M': most_products = 1; break;
    case 'p': opts.precision = optarg; break;
    case 'i': opts.intra_threads = strtoull(optarg, &end, 10); break;
    case 'g':
      if (!strcmp(optarg, "all")) opts.stage = MR_STAGE_ALL;
      else if (!strcmp(optarg, "lookup")) opts.stage = MR_STAGE_LOOKUP;
      else if (!strcmp(optarg, "mlp")) opts.stage = MR_STAGE_MLP;
      else {
        mr_cli_errorf("bench: --stage takes all, lookup or mlp, not '%s'", optarg);
        return MR_EXIT_USAGE;
      }
      break;
    case 'j': json = 1; break;
    case 'h': usage(stdout); return MR_EXIT_OK;
    default: usage(stderr); return MR_EXIT_USAGE;
    }
    if (end && *end) {
      mr_cli_errorf("bench: bad number '%s'", optarg);
      return MR_EXIT_USAGE;
    }
  }
  if (optind + 1 != argc || cfg.batch < 1 || threads < 1 || threads > 256 ||
      !(cfg.seconds > 0) || cfg.warmup < 0 || cfg.zipf < 0 || cfg.zipf == 1.0) {
    usage(stderr);
    return MR_EXIT_USAGE;
  }
  const char *path = argv[optind];
  mr_err_t err = {0};
  mr_model_t model;
  mr_engine_t *engine = NULL;
  if (mr_model_open(&model, path, &err)) {
    mr_cli_errorf("%s: %s", path, err.msg);
    return MR_EXIT_FAIL;
  }
  if (cfg.batch > (opts.max_batch ? opts.max_batch : 256)) opts.max_batch = cfg.batch;
  mr_plan_t forced = {0};
  if (most_products) {
    mr_plan_opts_t po;
    mr_plan_opts_default(&po);
    po.objective = MR_PLAN_MIN_TABLES;
    if (mr_plan_for_model(&forced, &model, "cpu", &po, &err)) {
      mr_model_close(&model);
      mr_cli_errorf("%s: %s", path, err.msg);
      return MR_EXIT_FAIL;
    }
    opts.plan = &forced;
    fprintf(stderr, "bench: %zu tables -> %zu physical tables, %d DRAM lookups per sample\n",
            forced.num_logical, forced.num_tables, forced.lookups_per_sample);
  }
  int rc = mr_engine_open(&engine, &model, &opts, &err);
  mr_plan_free(&forced);
  mr_model_close(&model);
  if (rc) {
    mr_cli_errorf("%s: %s", path, err.msg);
    return MR_EXIT_FAIL;
  }
  bench_thread_t *ts = calloc(threads, sizeof *ts);
  if (!ts) {
    mr_engine_close(engine);
    mr_cli_errorf("out of memory");
    return MR_EXIT_FAIL;
  }
  for (size_t i = 0; i < threads; i++) {
    ts[i] = (bench_thread_t){.engine = engine, .cfg = &cfg, .index = (int)i};
    pthread_create(&ts[i].tid, NULL, bench_main, &ts[i]);
  }
  size_t total = 0;
  uint64_t samples = 0;
  double elapsed = 0;
  int failed = 0;
  for (size_t i = 0; i < threads; i++) {
    pthread_join(ts[i].tid, NULL);
    if (ts[i].rc) {
      mr_cli_errorf("bench: %s", ts[i].err.msg);
      failed = 1;
    }
    total += ts[i].num_lat;
    samples += ts[i].samples;
    if (ts[i].elapsed_s > elapsed) elapsed = ts[i].elapsed_s;
  }
  double *all = malloc((total ? total : 1) * sizeof *all);
  size_t k = 0;
  for (size_t i = 0; i < threads && all; i++) {
    memcpy(all + k, ts[i].lat_us, ts[i].num_lat * sizeof *all);
    k += ts[i].num_lat;
  }
  if (all && !failed) {
    qsort(all, total, sizeof *all, cmp_double);
    double p50 = percentile(all, total, 0.50), p99 = percentile(all, total, 0.99);
    double sps = elapsed > 0 ? (double)samples / elapsed : 0;
    const mr_engine_info_t *info = mr_engine_info(engine);
    /* Work per sample, for rates against the machine's limits. */
    double flops = 0;
    for (size_t l = 0; l < info->num_bot; l++) flops += 2.0 * info->bot_in[l] * info->bot_out[l];
    for (size_t l = 0; l < info->num_top; l++) flops += 2.0 * info->top_in[l] * info->top_out[l];
    static const char *const stages[] = {"all", "lookup", "mlp"};
    if (json)
      printf("{\"model\": \"%s\", \"backend\": \"%s\", \"simd\": \"%s\", "
             "\"precision\": \"%s\", \"stage\": \"%s\", \"intra_threads\": %zu, "
             "\"batch\": %zu, \"threads\": %zu, \"batches\": %zu, "
             "\"p50_us\": %.3f, \"p99_us\": %.3f, \"max_us\": %.3f, "
             "\"samples_per_s\": %.1f, \"lookups_per_sample\": %zu, "
             "\"mlp_flops_per_sample\": %.0f}\n",
             path, info->backend, info->simd,
             info->precision ? info->precision : "fp32", stages[opts.stage],
             info->intra_threads ? info->intra_threads : 1, cfg.batch, threads,
             total, p50, p99, total ? all[total - 1] : 0.0, sps,
             info->lookups ? info->lookups : info->num_tables, flops);
    else
      printf("%s: backend %s (%s), batch %zu, %zu thread%s, %zu batches\n"
             "  per batch: p50 %.2f us, p99 %.2f us, max %.2f us\n"
             "  throughput: %.0f samples/s\n",
             path, info->backend, info->simd, cfg.batch, threads,
             threads > 1 ? "s" : "", total, p50, p99,
             total ? all[total - 1] : 0.0, sps);
  }
  for (size_t i = 0; i < threads; i++) free(ts[i].lat_us);
  free(ts);
  free(all);
  mr_engine_close(engine);
  return failed || !all ? MR_EXIT_FAIL : MR_EXIT_OK;
}

MR_CLI_COMMAND(bench, "bench", "time the engine alone on random inputs", bench_cmd)
