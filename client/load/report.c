/* Load reports (see report.h). */
#include "client/load/report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "client/lib/microrec.h"

static double us(uint64_t ns) { return (double)ns / 1000.0; }

static double pct_us(const mr_hist_t *h, double p) {
  return us(mr_hist_percentile(h, p));
}

int mr_report_schedule_kept(const mr_load_desc_t *d,
                            const mr_load_result_t *r) {
  if (!r->open_loop) return 1;
  return (double)r->late_sends <= d->lag_fraction * (double)r->requests;
}

/* "OVERLOADED" for a server status, or the client-side kinds. */
static void error_kinds(const mr_load_result_t *r,
                        void (*fn)(void *ctx, const char *name, uint64_t n),
                        void *ctx) {
  for (int s = 1; s < MR_LOAD_NUM_STATUS; s++)
    if (r->by_status[s]) fn(ctx, mr_client_status_name(s), r->by_status[s]);
  if (r->by_status[MR_LOAD_NUM_STATUS])
    fn(ctx, "unknown_status", r->by_status[MR_LOAD_NUM_STATUS]);
  if (r->timeouts) fn(ctx, "timeout", r->timeouts);
  if (r->closed) fn(ctx, "connection_closed", r->closed);
  if (r->dropped) fn(ctx, "client_backlog", r->dropped);
}

static void json_error_kind(void *ctx, const char *name, uint64_t n) {
  json_object_set_new(ctx, name, json_integer((json_int_t)n));
}

json_t *mr_report_json(const mr_load_desc_t *d, const mr_load_result_t *r) {
  const mr_load_conf_t *c = d->conf;
  const mr_hist_t *h = &r->latency;
  json_t *o = json_object();
  json_t *errs = json_object();
  error_kinds(r, json_error_kind, errs);
  json_object_set_new(o, "mode", json_string(r->open_loop ? "open" : "closed"));
  json_object_set_new(o, "server", json_string(d->server));
  if (r->open_loop) {
    json_object_set_new(o, "offered_rate", json_real(c->rate));
    json_object_set_new(o, "arrivals",
                        json_string(mr_arrivals_name(c->arrivals)));
  } else {
    json_object_set_new(o, "concurrency",
                        json_integer((json_int_t)c->concurrency));
  }
  json_object_set_new(o, "connections", json_integer((json_int_t)c->connections));
  json_object_set_new(o, "batch", json_integer((json_int_t)d->batch));
  json_object_set_new(o, "source", json_string(d->source));
  if (d->criteo) json_object_set_new(o, "criteo", json_string(d->criteo));
  if (!d->criteo && !strcmp(d->source, "zipf"))
    json_object_set_new(o, "zipf_exponent", json_real(d->zipf_s));
  json_object_set_new(o, "duration_s", json_real(c->duration_s));
  json_object_set_new(o, "warmup_s", json_real(c->warmup_s));
  json_object_set_new(o, "requests", json_integer((json_int_t)r->requests));
  json_object_set_new(o, "ok", json_integer((json_int_t)r->ok));
  json_object_set_new(o, "errors", json_integer((json_int_t)r->errors));
  json_object_set_new(o, "errors_by_kind", errs);
  json_object_set_new(o, "achieved_rate", json_real(r->achieved_rate));
  json_object_set_new(o, "achieved_samples_per_s",
                      json_real(r->achieved_rate * (double)d->batch));
  json_object_set_new(o, "latency_count", json_integer((json_int_t)h->total));
  json_object_set_new(o, "min_us", json_real(us(mr_hist_min(h))));
  json_object_set_new(o, "mean_us", json_real(mr_hist_mean(h) / 1000.0));
  json_object_set_new(o, "p50_us", json_real(pct_us(h, 50)));
  json_object_set_new(o, "p90_us", json_real(pct_us(h, 90)));
  json_object_set_new(o, "p99_us", json_real(pct_us(h, 99)));
  json_object_set_new(o, "p999_us", json_real(pct_us(h, 99.9)));
  json_object_set_new(o, "max_us", json_real(us(mr_hist_max(h))));
  if (r->open_loop) {
    json_object_set_new(o, "send_lag_p50_us", json_real(pct_us(&r->lag, 50)));
    json_object_set_new(o, "send_lag_p99_us", json_real(pct_us(&r->lag, 99)));
    json_object_set_new(o, "send_lag_max_us",
                        json_real(us(mr_hist_max(&r->lag))));
    json_object_set_new(o, "late_sends", json_integer((json_int_t)r->late_sends));
    json_object_set_new(o, "lag_bound_us", json_real(c->lag_bound_us));
  }
  json_object_set_new(o, "schedule_kept",
                      json_boolean(mr_report_schedule_kept(d, r)));
  json_object_set_new(o, "unexpected_answers",
                      json_integer((json_int_t)r->unexpected));
  if (r->conn_error[0])
    json_object_set_new(o, "connection_error", json_string(r->conn_error));
  return o;
}

static void text_error_kind(void *ctx, const char *name, uint64_t n) {
  fprintf(ctx, "  %-20s %" PRIu64 "\n", name, n);
}

void mr_report_text(FILE *out, const mr_load_desc_t *d,
                    const mr_load_result_t *r) {
  const mr_load_conf_t *c = d->conf;
  const mr_hist_t *h = &r->latency;
  if (r->open_loop)
    fprintf(out, "open loop at %.1f req/s (%s arrivals)", c->rate,
            mr_arrivals_name(c->arrivals));
  else
    fprintf(out, "closed loop, %zu in flight", c->concurrency);
  fprintf(out, ", %zu connection%s to %s, batch %zu, %s ids%s%s\n",
          c->connections, c->connections == 1 ? "" : "s", d->server, d->batch,
          d->source, d->criteo ? " from " : "", d->criteo ? d->criteo : "");
  fprintf(out, "  %.1f s measured after %.1f s warmup\n", c->duration_s,
          c->warmup_s);
  fprintf(out, "  requests  %" PRIu64 ", ok %" PRIu64 ", errors %" PRIu64 "\n",
          r->requests, r->ok, r->errors);
  fprintf(out, "  achieved  %.1f req/s (%.1f samples/s)\n", r->achieved_rate,
          r->achieved_rate * (double)d->batch);
  fprintf(out, "  latency (us, %s, %" PRIu64 " requests)\n",
          r->open_loop ? "from the time each request was due"
                       : "from the time each request was sent",
          h->total);
  fprintf(out, "  %10s %10s %10s %10s %10s %10s\n", "p50", "p90", "p99",
          "p99.9", "max", "mean");
  fprintf(out, "  %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f\n", pct_us(h, 50),
          pct_us(h, 90), pct_us(h, 99), pct_us(h, 99.9), us(mr_hist_max(h)),
          mr_hist_mean(h) / 1000.0);
  if (r->errors) {
    fprintf(out, "  errors by kind:\n");
    error_kinds(r, text_error_kind, out);
  }
  if (r->timeouts)
    fprintf(out,
            "  the %" PRIu64 " timed-out requests are in the latencies at "
            "the time they waited (a lower bound)\n",
            r->timeouts);
  if (r->open_loop)
    fprintf(out,
            "  send lag (us, due -> handed to the socket): p50 %.1f, p99 "
            "%.1f, max %.1f; %" PRIu64 " of %" PRIu64 " later than %.0f\n",
            pct_us(&r->lag, 50), pct_us(&r->lag, 99), us(mr_hist_max(&r->lag)),
            r->late_sends, r->requests, c->lag_bound_us);
  if (r->unexpected)
    fprintf(out, "  %" PRIu64 " answers carried an id not in flight\n",
            r->unexpected);
  if (r->conn_error[0]) fprintf(out, "  %s\n", r->conn_error);
  if (!mr_report_schedule_kept(d, r))
    fprintf(out,
            "WARNING: microrec-load could not keep its own schedule: %" PRIu64
            " of %" PRIu64 " requests (more than %.1f%%) were handed to the "
            "socket more than %.0f us after they were due, because its "
            "sender did not get the CPU in time (a busy or oversubscribed "
            "machine), not because of the server. The latencies above "
            "include that lag and overstate the server's.\n",
            r->late_sends, r->requests, d->lag_fraction * 100.0,
            c->lag_bound_us);
  if (r->dropped)
    fprintf(out,
            "WARNING: %" PRIu64 " requests were never sent: more than "
            "64 MiB were waiting on a connection (the server stopped "
            "reading), or the generator was still behind its schedule "
            "when the run's time was up.\n",
            r->dropped);
}

int mr_report_hgrm(FILE *out, const mr_hist_t *h) {
  fprintf(out, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount",
          "1/(1-Percentile)");
  uint64_t total = h->total;
  double var = 0, mean = mr_hist_mean(h);
  if (total) {
    /* HdrHistogram's percentile iterator: levels 0, 10, .., 50, 55, ..
     * (5 ticks per half of the distance left to 100%), each reported at the
     * first value whose cumulative share reaches it. */
    double level = 0;
    uint64_t last = 0;
    int done = 0;
    mr_hist_iter_t it = {0};
    while (!done && mr_hist_next(h, &it)) {
      uint64_t v = it.hi < h->max ? it.hi : h->max;
      double mid = (double)it.lo + (double)(it.hi - it.lo) / 2.0;
      var += (mid - mean) * (mid - mean) * (double)it.count;
      last = v;
      while (100.0 * (double)it.cumulative / (double)total >= level) {
        fprintf(out, "%12.3f %2.12f %10" PRIu64 " %14.2f\n", us(v),
                level / 100.0, it.cumulative, 1.0 / (1.0 - level / 100.0));
        long halvings = (long)(log(100.0 / (100.0 - level)) / log(2.0));
        level += 100.0 / (5.0 * pow(2.0, (double)(halvings + 1)));
        if (it.cumulative >= total) {
          done = 1;
          break;
        }
      }
    }
    fprintf(out, "%12.3f %2.12f %10" PRIu64 "\n", us(last), 1.0, total);
  }
  double sd = total ? sqrt(var / (double)total) : 0.0;
  fprintf(out, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", mean / 1000.0,
          sd / 1000.0);
  fprintf(out, "#[Max     = %12.3f, Total count    = %12" PRIu64 "]\n",
          us(mr_hist_max(h)), total);
  fprintf(out, "#[Buckets = %12d, SubBuckets     = %12" PRId64 "]\n",
          h->bucket_count, h->sub_count);
  return ferror(out) ? -EIO : 0;
}
