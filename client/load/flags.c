/* The command line of microrec-load: its flags, their defaults and checks,
 * and --help (see flags.h). */
#include "client/load/flags.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "client/load/arrivals.h"
#include "client/load/pool.h"

#define MAX_CONNECTIONS 64
#define MAX_CONCURRENCY 500000
#define MAX_RATE 1e7
#define MAX_SECONDS 86400.0

void mr_load_usage(FILE *out) {
  fputs(
      "usage: microrec-load (--rate QPS | --concurrency N | --find-peak "
      "--slo-p99-us N) [OPTIONS]\n"
      "\n"
      "Sends inference requests to microrecd and reports the achieved rate,\n"
      "errors by status and latency percentiles. In open loop (--rate) each\n"
      "request is due at a scheduled time and its latency is measured from\n"
      "that time, not from when it was sent, so a stalled server cannot hide\n"
      "its stall (no coordinated omission, as wrk2 and MLPerf LoadGen).\n"
      "\n"
      "target:\n"
      "  --server HOST:PORT     server address (default 127.0.0.1:7470)\n"
      "  --connections N        TCP connections; requests go round robin "
      "(default 4)\n"
      "\n"
      "load (one of --rate, --concurrency, --find-peak):\n"
      "  --rate QPS             open loop: QPS requests per second on a "
      "schedule\n"
      "  --arrivals KIND        constant | poisson gaps between due times "
      "(default constant)\n"
      "  --concurrency N        closed loop: N requests in flight, each "
      "answer sends the\n"
      "                         next; latency from the actual send\n"
      "  --duration SECONDS     measured time (default 10)\n"
      "  --warmup SECONDS       load before it, not measured (default 1)\n"
      "  --timeout SECONDS      connect timeout, and how long answers are "
      "awaited after\n"
      "                         the end; unanswered requests count as "
      "errors and\n"
      "                         enter the latencies at their wait (default 5)\n"
      "  --batch N              samples per request (default 1)\n"
      "\n"
      "requests (table sizes come from the server's model info):\n"
      "  --ids KIND             uniform | zipf synthetic ids (default "
      "uniform)\n"
      "  --zipf-exponent S      skew of --ids zipf, P(rank k) ~ k^-S "
      "(default 1.05)\n"
      "  --criteo FILE          replay this Criteo TSV instead, looping "
      "(default: none)\n"
      "  --seed N               random seed of ids and arrivals (default 1)\n"
      "\n"
      "output:\n"
      "  --json                 print one JSON object instead of text; keys "
      "include\n"
      "                         achieved_rate requests errors p50_us p90_us "
      "p99_us\n"
      "                         p999_us max_us schedule_kept; with --find-peak "
      "also\n"
      "                         peak_rate and steps (default: text)\n"
      "  --hgrm FILE            write the latency distribution in "
      "HdrHistogram's .hgrm\n"
      "                         layout, values in microseconds; with "
      "--find-peak\n"
      "                         that of the peak step (default: none)\n"
      "\n"
      "schedule check (open loop):\n"
      "  --lag-bound-us N       a request handed to its socket more than N "
      "us after its\n"
      "                         due time is late (default 500)\n"
      "  --lag-fraction F       warn that the generator, not the server, was "
      "the limit\n"
      "                         when more than F of the requests were late "
      "(default 0.01)\n"
      "  --spin-us N            wake N us before each due time and spin "
      "to it: exact\n"
      "                         sends where waking from sleep is late, at "
      "the cost of a\n"
      "                         busy CPU (default 0: sleep only)\n"
      "\n"
      "peak search:\n"
      "  --find-peak            find the highest rate whose p99 meets "
      "--slo-p99-us:\n"
      "                         doubling from --start-rate, then bisection; "
      "a step\n"
      "                         passes when p99 <= SLO, no errors, and "
      "achieved >= 95%\n"
      "                         of offered; a failing step during which "
      "the generator\n"
      "                         fell behind its schedule is run once more, "
      "then ends\n"
      "                         the search\n"
      "  --slo-p99-us N         the p99 bound in microseconds (required "
      "with --find-peak)\n"
      "  --start-rate QPS       first rate tried (default: --rate if given, "
      "else 1000)\n"
      "  --max-rate QPS         highest rate tried (default 1000000)\n"
      "  --step-duration SEC    measured time of each step (default 3)\n"
      "  --step-warmup SEC      warmup of each step (default 0.5)\n"
      "  --precision F          stop when the bracket is within F of the "
      "rate (default 0.05)\n"
      "  --max-steps N          at most N steps (default 24)\n"
      "\n"
      "  -h, --help             this help\n"
      "\n"
      "exit codes: 0 the run completed (its errors are in the report); 1 "
      "failure (no\n"
      "connection, a connection lost, no request answered OK, or no rate "
      "met the SLO);\n"
      "2 usage error\n",
      out);
}

void mr_load_errorf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("microrec-load: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}


static int parse_double(const char *flag, const char *s, double lo, double hi,
                        double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (*s == 0 || *end != 0 || errno || !isfinite(v) || v < lo || v > hi) {
    mr_load_errorf("%s: '%s' is not a number in %g..%g", flag, s, lo, hi);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_long(const char *flag, const char *s, long lo, long hi,
                      long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (*s == 0 || *end != 0 || errno || v < lo || v > hi) {
    mr_load_errorf("%s: '%s' is not an integer in %ld..%ld", flag, s, lo, hi);
    return -1;
  }
  *out = v;
  return 0;
}

enum {
  O_SERVER = 256, O_CONNECTIONS, O_RATE, O_ARRIVALS, O_CONCURRENCY,
  O_DURATION, O_WARMUP, O_TIMEOUT, O_BATCH, O_IDS, O_ZIPF, O_CRITEO, O_SEED,
  O_JSON, O_HGRM, O_LAG_BOUND, O_LAG_FRACTION, O_FIND_PEAK, O_SLO,
  O_START_RATE, O_MAX_RATE, O_STEP_DURATION, O_STEP_WARMUP, O_PRECISION,
  O_MAX_STEPS, O_SPIN,
};

static const struct option long_opts[] = {
    {"server", required_argument, 0, O_SERVER},
    {"connections", required_argument, 0, O_CONNECTIONS},
    {"rate", required_argument, 0, O_RATE},
    {"arrivals", required_argument, 0, O_ARRIVALS},
    {"concurrency", required_argument, 0, O_CONCURRENCY},
    {"duration", required_argument, 0, O_DURATION},
    {"warmup", required_argument, 0, O_WARMUP},
    {"timeout", required_argument, 0, O_TIMEOUT},
    {"batch", required_argument, 0, O_BATCH},
    {"ids", required_argument, 0, O_IDS},
    {"zipf-exponent", required_argument, 0, O_ZIPF},
    {"criteo", required_argument, 0, O_CRITEO},
    {"seed", required_argument, 0, O_SEED},
    {"json", no_argument, 0, O_JSON},
    {"hgrm", required_argument, 0, O_HGRM},
    {"lag-bound-us", required_argument, 0, O_LAG_BOUND},
    {"lag-fraction", required_argument, 0, O_LAG_FRACTION},
    {"find-peak", no_argument, 0, O_FIND_PEAK},
    {"slo-p99-us", required_argument, 0, O_SLO},
    {"start-rate", required_argument, 0, O_START_RATE},
    {"max-rate", required_argument, 0, O_MAX_RATE},
    {"step-duration", required_argument, 0, O_STEP_DURATION},
    {"step-warmup", required_argument, 0, O_STEP_WARMUP},
    {"precision", required_argument, 0, O_PRECISION},
    {"max-steps", required_argument, 0, O_MAX_STEPS},
    {"spin-us", required_argument, 0, O_SPIN},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

int mr_load_parse_args(int argc, char **argv, mr_load_opts_t *o) {
  *o = (mr_load_opts_t){.server = "127.0.0.1:7470",
                .connections = 4,
                .arrivals = MR_ARRIVALS_CONSTANT,
                .duration = 10,
                .warmup = 1,
                .timeout = 5,
                .batch = 1,
                .ids = MR_IDS_UNIFORM,
                .zipf_s = 1.05,
                .seed = 1,
                .lag_bound_us = 500,
                .lag_fraction = 0.01,
                .max_rate = 1e6,
                .step_duration = 3,
                .step_warmup = 0.5,
                .precision = 0.05,
                .max_steps = 24};
  int c, rc = 0;
  opterr = 0;
  optind = 1;
  while (rc == 0 && (c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
    const char *flag = optind > 1 ? argv[optind - 1] : "";
    switch (c) {
      case 'h': return 1;
      case O_SERVER: o->server = optarg; break;
      case O_CONNECTIONS:
        rc = parse_long("--connections", optarg, 1, MAX_CONNECTIONS,
                        &o->connections);
        break;
      case O_RATE: rc = parse_double("--rate", optarg, 0.001, MAX_RATE, &o->rate); break;
      case O_ARRIVALS:
        o->arrivals = mr_arrivals_parse(optarg);
        if (o->arrivals < 0) {
          mr_load_errorf("--arrivals: '%s' is not one of constant, poisson", optarg);
          rc = -1;
        }
        break;
      case O_CONCURRENCY:
        rc = parse_long("--concurrency", optarg, 1, MAX_CONCURRENCY,
                        &o->concurrency);
        break;
      case O_DURATION:
        rc = parse_double("--duration", optarg, 0.01, MAX_SECONDS, &o->duration);
        break;
      case O_WARMUP:
        rc = parse_double("--warmup", optarg, 0, MAX_SECONDS, &o->warmup);
        break;
      case O_TIMEOUT:
        rc = parse_double("--timeout", optarg, 0.01, 3600, &o->timeout);
        break;
      case O_BATCH: rc = parse_long("--batch", optarg, 1, 1 << 20, &o->batch); break;
      case O_IDS:
        if (!strcmp(optarg, "uniform"))
          o->ids = MR_IDS_UNIFORM;
        else if (!strcmp(optarg, "zipf"))
          o->ids = MR_IDS_ZIPF;
        else {
          mr_load_errorf("--ids: '%s' is not one of uniform, zipf", optarg);
          rc = -1;
        }
        break;
      case O_ZIPF:
        rc = parse_double("--zipf-exponent", optarg, 0, 100, &o->zipf_s);
        break;
      case O_CRITEO: o->criteo = optarg; break;
      case O_SEED: {
        char *end;
        errno = 0;
        o->seed = strtoull(optarg, &end, 10);
        if (!*optarg || *end || errno || optarg[0] == '-') {
          mr_load_errorf("--seed: '%s' is not a non-negative integer", optarg);
          rc = -1;
        }
        break;
      }
      case O_JSON: o->json = 1; break;
      case O_HGRM: o->hgrm = optarg; break;
      case O_LAG_BOUND:
        rc = parse_double("--lag-bound-us", optarg, 1, 1e9, &o->lag_bound_us);
        break;
      case O_LAG_FRACTION:
        rc = parse_double("--lag-fraction", optarg, 0, 1, &o->lag_fraction);
        break;
      case O_FIND_PEAK: o->find_peak = 1; break;
      case O_SLO: rc = parse_double("--slo-p99-us", optarg, 1, 6e7, &o->slo_p99_us); break;
      case O_START_RATE:
        rc = parse_double("--start-rate", optarg, 0.001, MAX_RATE, &o->start_rate);
        break;
      case O_MAX_RATE:
        rc = parse_double("--max-rate", optarg, 0.001, MAX_RATE, &o->max_rate);
        break;
      case O_STEP_DURATION:
        rc = parse_double("--step-duration", optarg, 0.01, 3600, &o->step_duration);
        break;
      case O_STEP_WARMUP:
        rc = parse_double("--step-warmup", optarg, 0, 3600, &o->step_warmup);
        break;
      case O_PRECISION:
        rc = parse_double("--precision", optarg, 1e-4, 10, &o->precision);
        break;
      case O_SPIN:
        rc = parse_double("--spin-us", optarg, 0, 10000, &o->spin_us);
        break;
      case O_MAX_STEPS: rc = parse_long("--max-steps", optarg, 1, 1000, &o->max_steps); break;
      case ':':
        mr_load_errorf("%s needs a value", flag);
        rc = -1;
        break;
      default:
        mr_load_errorf("unknown option '%s' (see --help)", flag);
        rc = -1;
    }
  }
  if (rc) return -1;
  if (optind < argc) {
    mr_load_errorf("unexpected argument '%s' (see --help)", argv[optind]);
    return -1;
  }
  int modes = (o->rate > 0) + (o->concurrency > 0);
  if (o->find_peak) {
    if (!o->slo_p99_us) {
      mr_load_errorf("--find-peak needs --slo-p99-us N, the p99 bound to meet");
      return -1;
    }
    if (o->concurrency) {
      mr_load_errorf("--find-peak searches a rate: it does not take --concurrency");
      return -1;
    }
    if (!o->start_rate) o->start_rate = o->rate > 0 ? o->rate : 1000;
    if (o->start_rate > o->max_rate) {
      mr_load_errorf("--start-rate %g is above --max-rate %g", o->start_rate,
             o->max_rate);
      return -1;
    }
  } else if (modes != 1) {
    mr_load_errorf(modes ? "choose one of --rate and --concurrency, not both"
                 : "choose --rate QPS (open loop), --concurrency N (closed "
                   "loop) or --find-peak (see --help)");
    return -1;
  }
  if (o->criteo && o->ids == MR_IDS_ZIPF) {
    mr_load_errorf("--criteo replays the file's ids: it does not take --ids zipf");
    return -1;
  }
  return 0;
}
