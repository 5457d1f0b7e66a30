/* The CLI's network commands, all talking to a running microrecd through
 * libmicrorec: `infer` (score input remotely, same output as `score`),
 * `health`, `stats` (percentile table) and `remote-info` (the served
 * model). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli/command.h"
#include "client/cli/remote.h"
#include "client/cli/scoreio.h"
#include "client/lib/input.h"
#include "client/lib/microrec.h"

#define DEFAULT_TIMEOUT_MS 10000

typedef struct remote_opts {
  const char *server;
  int timeout_ms;
  int json;
} remote_opts_t;

static int parse_size(const char *flag, const char *s, long min, long max,
                      long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (*s == 0 || *end != 0 || errno || v < min || v > max) {
    mr_cli_errorf("%s: '%s' is not a number in %ld..%ld", flag, s, min, max);
    return MR_EXIT_USAGE;
  }
  *out = v;
  return 0;
}

/* Parses --server and connects; MR_EXIT_* on failure. */
static int connect_to(const remote_opts_t *o, mr_client_t **c) {
  char host[256];
  uint16_t port;
  mr_err_t err = {0};
  if (mr_parse_hostport(o->server, host, sizeof host, &port, &err) != 0) {
    mr_cli_errorf("--server: %s", err.msg);
    return MR_EXIT_USAGE;
  }
  if (mr_client_connect(c, host, port, o->timeout_ms, &err) != 0) {
    mr_cli_errorf("%s", err.msg);
    return MR_EXIT_FAIL;
  }
  return 0;
}

enum { OPT_SERVER = 1000, OPT_TIMEOUT, OPT_JSON, OPT_HELP, OPT_CRITEO,
       OPT_DENSE, OPT_SPARSE, OPT_LOGITS, OPT_BATCH, OPT_WINDOW, OPT_JSONL,
       OPT_OUTPUT };

/* Handles the options every remote command shares; 1 if taken, or an exit
 * code + 2 (so 0 stays "not mine"). */
static int common_opt(int ch, remote_opts_t *o) {
  long v;
  switch (ch) {
  case OPT_SERVER:
    o->server = optarg;
    return 1;
  case OPT_TIMEOUT:
    if (parse_size("--timeout-ms", optarg, 1, 86400000, &v))
      return MR_EXIT_USAGE + 2;
    o->timeout_ms = (int)v;
    return 1;
  case OPT_JSON:
    o->json = 1;
    return 1;
  default:
    return 0;
  }
}

#define COMMON_LONGOPTS                                        \
  {"server", required_argument, NULL, OPT_SERVER},             \
      {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},    \
      {"help", no_argument, NULL, OPT_HELP}

#define COMMON_HELP                                                         \
  "  --server HOST:PORT  microrecd to ask (default 127.0.0.1:7470)\n"      \
  "  --timeout-ms T      bound on each wait for the server (default "     \
  "10000)\n"                                                                \
  "  --help              this text\n"

/* ---- infer ---------------------------------------------------------- */

static void infer_usage(FILE *f) {
  fprintf(f,
          "usage: microrec infer [--server HOST:PORT] (--criteo FILE | "
          "--jsonl FILE |\n"
          "                      [--dense FILE] --sparse FILE) "
          "[--output text|jsonl]\n"
          "                      [--logits] [--batch N] [--window N] "
          "[--timeout-ms T]\n\n"
          "Scores the input on a running microrecd and prints one result "
          "per input row,\nin order: the score (sigmoid), or the logit with "
          "--logits; the same output as\n`microrec score`. Criteo ids are "
          "taken mod the table rows the server's model\ninfo gives; other "
          "ids are sent as given.\n\n");
  mr_cli_io_help(f);
  fprintf(f,
          "  --batch N           samples per request (default 256)\n"
          "  --window N          requests in flight (default 8)\n" COMMON_HELP
          "\nexit codes: 0 ok, 1 failure (server unreachable or error, bad "
          "input data,\nwrite error), 2 usage error (bad flags, or input "
          "flags that do not fit the\nmodel)\n");
}

static int cmd_infer(int argc, char **argv) {
  remote_opts_t o = {.server = "127.0.0.1:7470",
                     .timeout_ms = DEFAULT_TIMEOUT_MS};
  mr_cli_io_t io = {0};
  long batch = 256, window = 8;
  static const struct option longopts[] = {
      COMMON_LONGOPTS,
      {"criteo", required_argument, NULL, OPT_CRITEO},
      {"jsonl", required_argument, NULL, OPT_JSONL},
      {"dense", required_argument, NULL, OPT_DENSE},
      {"sparse", required_argument, NULL, OPT_SPARSE},
      {"logits", no_argument, NULL, OPT_LOGITS},
      {"output", required_argument, NULL, OPT_OUTPUT},
      {"batch", required_argument, NULL, OPT_BATCH},
      {"window", required_argument, NULL, OPT_WINDOW},
      {NULL, 0, NULL, 0}};
  optind = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    int c = common_opt(ch, &o);
    if (c > 1) return c - 2;
    if (c) continue;
    switch (ch) {
    case 'h':
    case OPT_HELP:
      infer_usage(stdout);
      return MR_EXIT_OK;
    case OPT_CRITEO:
      io.criteo = optarg;
      break;
    case OPT_JSONL:
      io.jsonl = optarg;
      break;
    case OPT_DENSE:
      io.dense = optarg;
      break;
    case OPT_SPARSE:
      io.sparse = optarg;
      break;
    case OPT_LOGITS:
      io.logits = 1;
      break;
    case OPT_OUTPUT:
      if (mr_cli_io_output(&io, "infer", optarg)) return MR_EXIT_USAGE;
      break;
    case OPT_BATCH:
      if (parse_size("--batch", optarg, 1, 1 << 20, &batch))
        return MR_EXIT_USAGE;
      break;
    case OPT_WINDOW:
      if (parse_size("--window", optarg, 1, 4096, &window))
        return MR_EXIT_USAGE;
      break;
    default:
      infer_usage(stderr);
      return MR_EXIT_USAGE;
    }
  }
  if (optind < argc) {
    mr_cli_errorf("infer: unexpected argument '%s'", argv[optind]);
    return MR_EXIT_USAGE;
  }
  if (mr_cli_io_check(&io, "infer")) return MR_EXIT_USAGE;

  mr_client_t *c = NULL;
  int rc = connect_to(&o, &c);
  if (rc) return rc;
  mr_err_t err = {0};
  mr_model_info_t mi = {0};
  mr_input_t in = {0};
  float *scores = NULL, *logits = NULL;
  rc = MR_EXIT_FAIL;
  if (mr_client_model_info(c, &mi, &err) != 0) {
    mr_cli_errorf("%s", err.msg);
    goto done;
  }
  if ((rc = mr_cli_io_check_model(&io, "infer", mi.num_dense)) != 0)
    goto done;
  if ((rc = mr_cli_io_load(&io, &in, mi.num_dense, mi.num_tables,
                           mi.rows)) != 0)
    goto done;
  rc = MR_EXIT_FAIL;
  size_t cells = in.n ? in.n : 1;
  if (mr_cli_io_wants_scores(&io) && !(scores = malloc(cells * sizeof *scores)))
    goto oom;
  if (mr_cli_io_wants_logits(&io) && !(logits = malloc(cells * sizeof *logits)))
    goto oom;
  mr_infer_opts_t iopts = {.batch = (size_t)batch,
                           .window = (size_t)window,
                           .overload_retries = 20};
  if (mr_client_infer(c, in.n, in.dense, in.num_dense, in.ids, in.num_tables,
                      &iopts, scores, logits, &err) != 0) {
    mr_cli_errorf("%s", err.msg);
    goto done;
  }
  rc = mr_cli_io_print(&io, in.n, scores, logits);
  goto done;
oom:
  mr_cli_errorf("out of memory for %zu results", in.n);
done:
  free(scores);
  free(logits);
  mr_input_free(&in);
  mr_model_info_free(&mi);
  mr_client_close(c);
  return rc;
}

/* ---- health, stats, remote-info: shared option handling ------------- */

/* Parses the common options (and --json when allow_json); returns -1 to go
 * on, or an exit code. */
static int parse_simple(int argc, char **argv, remote_opts_t *o,
                        int allow_json, void (*usage)(FILE *)) {
  static const struct option with_json[] = {
      COMMON_LONGOPTS, {"json", no_argument, NULL, OPT_JSON},
      {NULL, 0, NULL, 0}};
  static const struct option without_json[] = {COMMON_LONGOPTS,
                                               {NULL, 0, NULL, 0}};
  o->server = "127.0.0.1:7470";
  o->timeout_ms = DEFAULT_TIMEOUT_MS;
  o->json = 0;
  optind = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, "",
                           allow_json ? with_json : without_json, NULL)) !=
         -1) {
    int c = common_opt(ch, o);
    if (c > 1) return c - 2;
    if (c) continue;
    if (ch == OPT_HELP) {
      usage(stdout);
      return MR_EXIT_OK;
    }
    usage(stderr);
    return MR_EXIT_USAGE;
  }
  if (optind < argc) {
    mr_cli_errorf("%s: unexpected argument '%s'", argv[0], argv[optind]);
    return MR_EXIT_USAGE;
  }
  return -1;
}

static int print_json(json_t *j) {
  if (!j) {
    mr_cli_errorf("could not build the JSON output (a value was not "
                  "representable)");
    return MR_EXIT_FAIL;
  }
  int rc = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(j);
  fputc('\n', stdout);
  if (rc != 0 || fflush(stdout) != 0) {
    mr_cli_errorf("writing JSON failed");
    return MR_EXIT_FAIL;
  }
  return MR_EXIT_OK;
}

/* ---- health --------------------------------------------------------- */

static void health_usage(FILE *f) {
  fprintf(f,
          "usage: microrec health [--server HOST:PORT] [--timeout-ms T] "
          "[--json]\n\n"
          "Asks microrecd whether it is alive and ready (model loaded, "
          "engine warm).\n\n" COMMON_HELP
          "  --json              machine-readable output\n"
          "\nexit codes: 0 ready, 1 not ready or unreachable, 2 usage "
          "error\n");
}

static int cmd_health(int argc, char **argv) {
  remote_opts_t o;
  int rc = parse_simple(argc, argv, &o, 1, health_usage);
  if (rc >= 0) return rc;
  mr_client_t *c = NULL;
  if ((rc = connect_to(&o, &c)) != 0) return rc;
  mr_health_t h;
  mr_err_t err = {0};
  if (mr_client_health(c, &h, &err) != 0) {
    mr_cli_errorf("%s", err.msg);
    mr_client_close(c);
    return MR_EXIT_FAIL;
  }
  mr_client_close(c);
  rc = h.ready ? MR_EXIT_OK : MR_EXIT_FAIL;
  if (o.json) {
    int jr = print_json(json_pack("{s:b, s:b, s:s, s:I}", "alive", h.alive,
                                  "ready", h.ready, "model_path",
                                  h.model_path, "model_generation",
                                  (json_int_t)h.model_generation));
    if (jr) rc = jr;
  } else {
    printf("alive       %s\nready       %s\nmodel       %s\ngeneration  "
           "%llu\n",
           h.alive ? "yes" : "no", h.ready ? "yes" : "no", h.model_path,
           (unsigned long long)h.model_generation);
  }
  mr_health_free(&h);
  return rc;
}

/* ---- stats ---------------------------------------------------------- */

static void stats_usage(FILE *f) {
  fprintf(f,
          "usage: microrec stats [--server HOST:PORT] [--timeout-ms T] "
          "[--json]\n\n"
          "Prints microrecd's latency percentiles per stage (microseconds; "
          "the stages\nare the server's: queue, batch, engine, reply, server, "
          "end_to_end) and its\ncounters (requests, samples, batches, errors "
          "by status, memory).\n\n" COMMON_HELP
          "  --json              machine-readable output\n"
          "\nexit codes: 0 ok, 1 server unreachable or error, 2 usage "
          "error\n");
}

static json_t *stats_json(const mr_stats_reply_t *s) {
  json_t *lat = json_array(), *errs = json_object();
  for (size_t i = 0; i < s->num_latency; i++) {
    const mr_latency_t *l = &s->latency[i];
    json_array_append_new(
        lat, json_pack("{s:s, s:I, s:f, s:f, s:f, s:f, s:f, s:f}", "stage",
                       l->stage, "count", (json_int_t)l->count, "p50_us",
                       l->p50_us, "p90_us", l->p90_us, "p99_us", l->p99_us,
                       "p999_us", l->p999_us, "max_us", l->max_us, "mean_us",
                       l->mean_us));
  }
  for (size_t i = 0; i < s->num_errors; i++)
    json_object_set_new(errs, mr_client_status_name(s->errors[i].status),
                        json_integer((json_int_t)s->errors[i].count));
  return json_pack(
      "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "requests",
      (json_int_t)s->requests, "samples", (json_int_t)s->samples, "batches",
      (json_int_t)s->batches, "connections", (json_int_t)s->connections,
      "uptime_s", (json_int_t)s->uptime_s, "mem_allocated_bytes",
      (json_int_t)s->mem_allocated_bytes, "mem_resident_bytes",
      (json_int_t)s->mem_resident_bytes, "reloads", (json_int_t)s->reloads,
      "errors", errs, "latency", lat);
}

static void stats_text(const mr_stats_reply_t *s) {
  printf("%-12s %10s %10s %10s %10s %10s %10s\n", "stage", "count", "p50",
         "p90", "p99", "p99.9", "max");
  for (size_t i = 0; i < s->num_latency; i++) {
    const mr_latency_t *l = &s->latency[i];
    printf("%-12s %10llu %10.1f %10.1f %10.1f %10.1f %10.1f\n", l->stage,
           (unsigned long long)l->count, l->p50_us, l->p90_us, l->p99_us,
           l->p999_us, l->max_us);
  }
  printf("(latencies in microseconds)\n\n");
  printf("requests     %llu\nsamples      %llu\nbatches      %llu\n"
         "connections  %llu\nuptime_s     %llu\nreloads      %llu\n"
         "mem_alloc    %llu bytes\nmem_resident %llu bytes\n",
         (unsigned long long)s->requests, (unsigned long long)s->samples,
         (unsigned long long)s->batches, (unsigned long long)s->connections,
         (unsigned long long)s->uptime_s, (unsigned long long)s->reloads,
         (unsigned long long)s->mem_allocated_bytes,
         (unsigned long long)s->mem_resident_bytes);
  if (s->num_errors == 0) printf("errors       none\n");
  for (size_t i = 0; i < s->num_errors; i++)
    printf("errors       %-16s %llu\n", mr_client_status_name(s->errors[i].status),
           (unsigned long long)s->errors[i].count);
}

static int cmd_stats(int argc, char **argv) {
  remote_opts_t o;
  int rc = parse_simple(argc, argv, &o, 1, stats_usage);
  if (rc >= 0) return rc;
  mr_client_t *c = NULL;
  if ((rc = connect_to(&o, &c)) != 0) return rc;
  mr_stats_reply_t s;
  mr_err_t err = {0};
  rc = mr_client_stats(c, &s, &err);
  mr_client_close(c);
  if (rc != 0) {
    mr_cli_errorf("%s", err.msg);
    mr_stats_reply_free(&s);
    return MR_EXIT_FAIL;
  }
  if (o.json) {
    rc = print_json(stats_json(&s));
  } else {
    stats_text(&s);
    rc = MR_EXIT_OK;
  }
  mr_stats_reply_free(&s);
  return rc;
}

/* ---- remote-info ---------------------------------------------------- */

static void info_usage(FILE *f) {
  fprintf(f,
          "usage: microrec remote-info [--server HOST:PORT] [--timeout-ms T] "
          "[--json]\n\n"
          "Describes the model microrecd serves: interaction, inputs, "
          "tables, MLP\nlayers, bytes, backend.\n\n" COMMON_HELP
          "  --json              machine-readable output\n"
          "\nexit codes: 0 ok, 1 server unreachable or error, 2 usage "
          "error\n");
}

static json_t *layers_json(const mr_layer_dims_t *l, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(a, json_pack("{s:i, s:i}", "in", (int)l[i].in,
                                       "out", (int)l[i].out));
  return a;
}

int mr_cli_remote_info_main(int argc, char **argv) {
  remote_opts_t o;
  int rc = parse_simple(argc, argv, &o, 1, info_usage);
  if (rc >= 0) return rc;
  mr_client_t *c = NULL;
  if ((rc = connect_to(&o, &c)) != 0) return rc;
  mr_model_info_t mi;
  mr_err_t err = {0};
  rc = mr_client_model_info(c, &mi, &err);
  mr_client_close(c);
  if (rc != 0) {
    mr_cli_errorf("%s", err.msg);
    return MR_EXIT_FAIL;
  }
  if (o.json) {
    json_t *tables = json_array();
    for (size_t k = 0; k < mi.num_tables; k++)
      json_array_append_new(tables,
                            json_pack("{s:I, s:i}", "rows",
                                      (json_int_t)mi.rows[k], "dim",
                                      (int)mi.dims[k]));
    rc = print_json(json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:I}", "model_path",
        mi.model_path, "backend", mi.backend, "interaction", mi.interaction,
        "num_dense", (json_int_t)mi.num_dense, "num_tables",
        (json_int_t)mi.num_tables, "tables", tables, "bottom",
        layers_json(mi.bottom, mi.num_bottom), "top",
        layers_json(mi.top, mi.num_top), "total_bytes",
        (json_int_t)mi.total_bytes));
  } else {
    printf("model        %s\nbackend      %s\ninteraction  %s\n"
           "dense        %zu\ntables       %zu\nbytes        %llu\n",
           mi.model_path, mi.backend, mi.interaction, mi.num_dense,
           mi.num_tables, (unsigned long long)mi.total_bytes);
    printf("bottom MLP   ");
    for (size_t i = 0; i < mi.num_bottom; i++)
      printf("%s%u", i ? "-" : "", mi.bottom[i].in);
    if (mi.num_bottom) printf("-%u", mi.bottom[mi.num_bottom - 1].out);
    printf("%s\ntop MLP      ", mi.num_bottom ? "" : "(none)");
    for (size_t i = 0; i < mi.num_top; i++)
      printf("%s%u", i ? "-" : "", mi.top[i].in);
    if (mi.num_top) printf("-%u", mi.top[mi.num_top - 1].out);
    printf("\n%-6s %12s %5s\n", "table", "rows", "dim");
    for (size_t k = 0; k < mi.num_tables; k++)
      printf("%-6zu %12llu %5u\n", k, (unsigned long long)mi.rows[k],
             mi.dims[k]);
    rc = MR_EXIT_OK;
  }
  mr_model_info_free(&mi);
  return rc;
}

MR_CLI_COMMAND(infer, "infer", "score input on a running microrecd",
               cmd_infer)
MR_CLI_COMMAND(health, "health", "ask microrecd whether it is ready",
               cmd_health)
MR_CLI_COMMAND(stats, "stats", "microrecd's latency percentiles and counters",
               cmd_stats)
MR_CLI_COMMAND(remote_info, "remote-info",
               "describe the model a running microrecd serves",
               mr_cli_remote_info_main)
