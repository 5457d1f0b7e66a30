/* `microrec-load`: drives microrecd with inference requests at a target
 * rate (open loop) or concurrency (closed loop), or searches the highest
 * rate that meets a p99 bound, and reports what it measured. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/lib/microrec.h"
#include "client/load/flags.h"
#include "client/load/peak.h"
#include "client/load/pool.h"
#include "client/load/report.h"
#include "client/load/runner.h"

/* What the run needs from the server: the model's shape. */
static int fetch_model(const char *host, uint16_t port, int timeout_ms,
                       mr_model_info_t *mi, mr_err_t *err) {
  mr_client_t *cl = NULL;
  int rc = mr_client_connect(&cl, host, port, timeout_ms, err);
  if (!rc) {
    rc = mr_client_model_info(cl, mi, err);
    mr_client_close(cl);
  }
  if (rc) mr_err_prefix(err, "asking %s:%u for its model", host, port);
  return rc;
}

static int write_hgrm(const char *path, const mr_hist_t *h) {
  FILE *f = fopen(path, "w");
  if (!f) {
    mr_load_errorf("--hgrm: cannot write %s: %s", path, strerror(errno));
    return -1;
  }
  int rc = mr_report_hgrm(f, h);
  if (fclose(f) != 0 || rc) {
    mr_load_errorf("--hgrm: writing %s failed", path);
    return -1;
  }
  return 0;
}

static void print_json(json_t *o) {
  char *s = json_dumps(o, JSON_REAL_PRECISION(10));
  if (s) printf("%s\n", s);
  free(s);
  fflush(stdout);
}

/* --find-peak: each step is a short run at one rate. */
typedef struct peak_ctx {
  const mr_load_opts_t *o;
  mr_load_conf_t conf;
  mr_load_desc_t desc;
  json_t *steps;
  mr_load_result_t best;  /* the highest passing step's result */
  json_t *best_json;
  double best_rate;
} peak_ctx_t;

static int peak_try(void *vctx, double rate, mr_peak_verdict_t *verdict,
                    mr_err_t *err) {
  peak_ctx_t *p = vctx;
  p->conf.rate = rate;
  mr_load_result_t r;
  int rc = mr_load_run(&p->conf, &r, err);
  if (rc) {
    mr_load_result_free(&r);
    return rc;
  }
  double p99 = (double)mr_hist_percentile(&r.latency, 99) / 1000.0;
  int kept = mr_report_schedule_kept(&p->desc, &r);
  int pass = r.ok > 0 && r.errors == 0 && p99 <= p->o->slo_p99_us &&
             r.achieved_rate >= 0.95 * rate;
  /* A late send only adds latency: a step that passes despite it passed;
   * one that fails with it cannot be blamed on the server. */
  *verdict = pass ? MR_PEAK_PASS : !kept ? MR_PEAK_LIMITED : MR_PEAK_FAIL;
  const char *vname = pass ? "pass" : !kept ? "client-limited" : "fail";
  json_t *j = mr_report_json(&p->desc, &r);
  json_object_set_new(j, "verdict", json_string(vname));
  json_array_append(p->steps, j);
  if (!p->o->json)
    printf("step %2zu: offered %10.1f req/s  achieved %10.1f  p99 %9.1f us"
           "  errors %llu  %s\n",
           json_array_size(p->steps), rate, r.achieved_rate, p99,
           (unsigned long long)r.errors, vname);
  fflush(stdout);
  if (pass && rate > p->best_rate) {
    mr_load_result_free(&p->best);
    json_decref(p->best_json);
    p->best = r;
    p->best_json = j;
    p->best_rate = rate;
  } else {
    mr_load_result_free(&r);
    json_decref(j);
  }
  return 0;
}

static int find_peak(const mr_load_opts_t *o, mr_load_conf_t *conf,
                     mr_load_desc_t *desc) {
  peak_ctx_t p = {.o = o, .conf = *conf, .desc = *desc, .steps = json_array()};
  p.desc.conf = &p.conf;
  p.conf.duration_s = o->step_duration;
  p.conf.warmup_s = o->step_warmup;
  mr_peak_opts_t po = {.start_rate = o->start_rate,
                       .max_rate = o->max_rate,
                       .min_rate = o->start_rate / 1024,
                       .precision = o->precision,
                       .max_steps = (int)o->max_steps,
                       .retries = 1};
  mr_peak_result_t pr;
  mr_err_t err = {0};
  int rc = mr_peak_search(&po, peak_try, &p, &pr, &err);
  int exit_code = MR_LOAD_EXIT_OK;
  if (rc) {
    mr_load_errorf("%s", err.msg);
    exit_code = MR_LOAD_EXIT_FAIL;
  } else {
    if (o->json) {
      json_t *out = p.best_json ? json_deep_copy(p.best_json) : json_object();
      json_object_set_new(out, "mode", json_string("find-peak"));
      json_object_set_new(out, "slo_p99_us", json_real(o->slo_p99_us));
      json_object_set_new(out, "peak_rate", json_real(pr.peak));
      json_object_set_new(out, "first_failing_rate", json_real(pr.above));
      json_object_set_new(out, "client_limited", json_boolean(pr.limited));
      json_object_set_new(out, "capped_at_max_rate", json_boolean(pr.capped));
      json_object_set_new(out, "steps", json_incref(p.steps));
      print_json(out);
      json_decref(out);
    } else {
      if (pr.peak > 0) {
        printf("peak: %.1f req/s (%.1f samples/s) with p99 %.1f us <= SLO "
               "%.1f us",
               pr.peak, pr.peak * (double)desc->batch,
               (double)mr_hist_percentile(&p.best.latency, 99) / 1000.0,
               o->slo_p99_us);
        if (pr.above > 0) printf("; %.1f req/s missed it", pr.above);
        printf(" (%d steps of %.1f s)\n", pr.steps, o->step_duration);
        p.conf.rate = p.best_rate;  /* describe the step reported */
        mr_report_text(stdout, &p.desc, &p.best);
      } else {
        printf("peak: no rate down to %.3f req/s met p99 <= %.1f us\n",
               po.min_rate, o->slo_p99_us);
      }
      if (pr.capped)
        printf("note: every rate up to --max-rate %.1f passed; the peak is "
               "higher\n",
               o->max_rate);
    }
    if (pr.limited)
      fprintf(stderr,
              "microrec-load: WARNING: the search stopped because "
              "microrec-load could not keep its own schedule; the peak "
              "reported is a lower bound set by this machine, not the "
              "server\n");
    if (o->hgrm && p.best_json && write_hgrm(o->hgrm, &p.best.latency))
      exit_code = MR_LOAD_EXIT_FAIL;
    if (pr.peak <= 0) exit_code = MR_LOAD_EXIT_FAIL;
  }
  mr_load_result_free(&p.best);
  json_decref(p.best_json);
  json_decref(p.steps);
  return exit_code;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  mr_load_opts_t o;
  int pr = mr_load_parse_args(argc, argv, &o);
  if (pr == 1) {
    mr_load_usage(stdout);
    return MR_LOAD_EXIT_OK;
  }
  if (pr < 0) return MR_LOAD_EXIT_USAGE;

  mr_err_t err = {0};
  char host[256];
  uint16_t port;
  if (mr_parse_hostport(o.server, host, sizeof host, &port, &err)) {
    mr_load_errorf("--server: %s", err.msg);
    return MR_LOAD_EXIT_USAGE;
  }
  int timeout_ms = (int)(o.timeout * 1000);
  mr_model_info_t mi = {0};
  if (fetch_model(host, port, timeout_ms, &mi, &err)) {
    mr_load_errorf("%s", err.msg);
    mr_model_info_free(&mi);
    return MR_LOAD_EXIT_FAIL;
  }
  mr_pool_spec_t ps = {.batch = (size_t)o.batch,
                       .num_dense = mi.num_dense,
                       .num_tables = mi.num_tables,
                       .rows = mi.rows,
                       .ids = (mr_ids_kind_t)o.ids,
                       .zipf_s = o.zipf_s,
                       .criteo = o.criteo,
                       .seed = o.seed};
  mr_pool_t pool;
  if (mr_pool_build(&pool, &ps, &err)) {
    mr_load_errorf("%s", err.msg);
    mr_model_info_free(&mi);
    return MR_LOAD_EXIT_FAIL;
  }
  mr_model_info_free(&mi);

  char server[300];
  snprintf(server, sizeof server, "%s:%u", host, port);
  mr_load_conf_t conf = {.host = host,
                         .port = port,
                         .connections = (size_t)o.connections,
                         .rate = o.rate,
                         .concurrency = (size_t)o.concurrency,
                         .arrivals = (mr_arrivals_kind_t)o.arrivals,
                         .duration_s = o.duration,
                         .warmup_s = o.warmup,
                         .timeout_s = o.timeout,
                         .lag_bound_us = o.lag_bound_us,
                         .spin_us = o.spin_us,
                         .seed = o.seed,
                         .pool = &pool};
  mr_load_desc_t desc = {.conf = &conf,
                         .server = server,
                         .source = o.criteo ? "criteo"
                                   : o.ids == MR_IDS_ZIPF ? "zipf"
                                                          : "uniform",
                         .zipf_s = o.zipf_s,
                         .criteo = o.criteo,
                         .batch = (size_t)o.batch,
                         .lag_fraction = o.lag_fraction};
  int code;
  if (o.find_peak) {
    code = find_peak(&o, &conf, &desc);
  } else {
    mr_load_result_t r;
    if (mr_load_run(&conf, &r, &err)) {
      mr_load_errorf("%s", err.msg);
      code = MR_LOAD_EXIT_FAIL;
    } else {
      if (o.json) {
        json_t *j = mr_report_json(&desc, &r);
        print_json(j);
        json_decref(j);
      } else {
        mr_report_text(stdout, &desc, &r);
      }
      if (o.json && !mr_report_schedule_kept(&desc, &r))
        fprintf(stderr,
                "microrec-load: WARNING: could not keep the schedule "
                "(%llu of %llu requests sent more than %.0f us late): the "
                "load generator, not the server, added that lag\n",
                (unsigned long long)r.late_sends,
                (unsigned long long)r.requests, o.lag_bound_us);
      code = MR_LOAD_EXIT_OK;
      if (r.conn_error[0]) {
        mr_load_errorf("%s", r.conn_error);
        code = MR_LOAD_EXIT_FAIL;
      } else if (r.ok == 0) {
        mr_load_errorf("no request was answered OK");
        code = MR_LOAD_EXIT_FAIL;
      }
      if (o.hgrm && write_hgrm(o.hgrm, &r.latency)) code = MR_LOAD_EXIT_FAIL;
    }
    mr_load_result_free(&r);
  }
  mr_pool_free(&pool);
  return code;
}
