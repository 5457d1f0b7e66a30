/* Server statistics (stats.h). */
#include "server/stats.h"

#include <string.h>

#include "server/clock.h"

const char *const mr_stage_names[MR_STAGE_COUNT] = {
    "queue", "batch", "engine", "reply", "server", "end_to_end", "write"};

const uint64_t mr_prom_bounds_ns[MR_PROM_BUCKETS] = {
    1000,      2500,      5000,      10000,      25000,      50000,
    100000,    250000,    500000,    1000000,    2500000,    5000000,
    10000000,  25000000,  50000000,  100000000,  250000000,  500000000,
    1000000000, 2500000000, 10000000000, 60000000000};

const char *mr_status_name(int status) {
  static const char *const names[MR_STATUS_COUNT] = {
      "OK",       "BAD_REQUEST", "OUT_OF_RANGE",  "OVERLOADED",
      "NOT_READY", "INTERNAL",   "SHUTTING_DOWN", "UNKNOWN_REQUEST"};
  return status >= 0 && status < MR_STATUS_COUNT ? names[status] : "UNKNOWN";
}

int mr_stats_init(mr_stats_t *s, mr_err_t *err) {
  memset(s, 0, sizeof *s);
  for (int i = 0; i < MR_STAGE_COUNT; i++) {
    int rc = mr_hist_init_latency(&s->hist[i], err);
    if (rc) {
      while (i-- > 0) mr_hist_free(&s->hist[i]);
      return rc;
    }
  }
  pthread_mutex_init(&s->mu, NULL);
  s->start_ns = mr_clock_ns();
  return 0;
}

void mr_stats_free(mr_stats_t *s) {
  for (int i = 0; i < MR_STAGE_COUNT; i++) mr_hist_free(&s->hist[i]);
  pthread_mutex_destroy(&s->mu);
}

static uint64_t span(uint64_t from, uint64_t to) {
  return to > from ? to - from : 0;
}

void mr_stats_record(mr_stats_t *s, const mr_stat_event_t *ev, size_t n,
                     uint64_t t_written, uint64_t write_ns) {
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < n; i++) {
    const mr_stat_event_t *e = &ev[i];
    s->requests++;
    if (e->status != 0) {
      s->errors[e->status < MR_STATUS_COUNT ? e->status : 5]++;
      continue;
    }
    if (!e->infer) continue;
    s->samples += e->samples;
    uint64_t engine = span(e->t_start, e->t_end);
    uint64_t total = span(e->t_recv, t_written);
    mr_hist_record(&s->hist[MR_STAGE_QUEUE], span(e->t_recv, e->t_batched));
    mr_hist_record(&s->hist[MR_STAGE_BATCH], span(e->t_batched, e->t_start));
    mr_hist_record(&s->hist[MR_STAGE_ENGINE], engine);
    mr_hist_record(&s->hist[MR_STAGE_REPLY], span(e->t_end, t_written));
    mr_hist_record(&s->hist[MR_STAGE_SERVER], span(engine, total));
    mr_hist_record(&s->hist[MR_STAGE_END_TO_END], total);
    mr_hist_record(&s->hist[MR_STAGE_WRITE], write_ns);
  }
  pthread_mutex_unlock(&s->mu);
}

static void summarize_stage(const mr_hist_t *h, mr_stage_summary_t *o) {
  o->count = mr_hist_count(h);
  static const double ps[] = {50, 90, 99, 99.9};
  uint64_t v[4];
  mr_hist_percentiles(h, ps, 4, v);
  o->p50 = v[0];
  o->p90 = v[1];
  o->p99 = v[2];
  o->p999 = v[3];
  o->max = mr_hist_max(h);
  o->mean = mr_hist_mean(h);
  o->sum = h->sum;
  /* One pass over the non-empty buckets for all the bounds. */
  mr_hist_iter_t it = {0};
  size_t b = 0;
  uint64_t below = 0;
  while (mr_hist_next(h, &it)) {
    while (b < MR_PROM_BUCKETS && it.lo > mr_prom_bounds_ns[b]) o->le[b++] = below;
    below = it.cumulative;
  }
  while (b < MR_PROM_BUCKETS) o->le[b++] = below;
}

/* jemalloc is linked into microrecd but not into the tests or SAN builds:
 * a weak reference is NULL when it is absent. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
                   size_t newlen) __attribute__((weak));

int mr_stats_memory(uint64_t *allocated, uint64_t *resident) {
  *allocated = *resident = 0;
#ifndef MR_SANITIZE
  if (!mallctl) return 0;
  uint64_t epoch = 1;
  size_t len = sizeof epoch;
  mallctl("epoch", &epoch, &len, &epoch, len);
  size_t a = 0, r = 0;
  len = sizeof a;
  if (mallctl("stats.allocated", &a, &len, NULL, 0)) return 0;
  len = sizeof r;
  if (mallctl("stats.resident", &r, &len, NULL, 0)) return 0;
  *allocated = a;
  *resident = r;
  return 1;
#else
  return 0;
#endif
}

void mr_stats_summarize(mr_stats_t *s, mr_stats_summary_t *out) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&s->mu);
  out->requests = s->requests;
  out->samples = s->samples;
  memcpy(out->errors, s->errors, sizeof out->errors);
  pthread_mutex_unlock(&s->mu);
  for (int i = 0; i < MR_STAGE_COUNT; i++) {
    pthread_mutex_lock(&s->mu);
    summarize_stage(&s->hist[i], &out->stage[i]);
    pthread_mutex_unlock(&s->mu);
  }
  out->connections = atomic_load(&s->connections);
  out->connections_total = atomic_load(&s->connections_total);
  out->rejected = atomic_load(&s->rejected);
  out->reloads = atomic_load(&s->reloads);
  out->reload_failures = atomic_load(&s->reload_failures);
  out->model_generation = atomic_load(&s->model_generation);
  out->ready = atomic_load(&s->ready);
  out->uptime_s = (mr_clock_ns() - s->start_ns) / 1000000000ULL;
  out->have_jemalloc = mr_stats_memory(&out->mem_allocated, &out->mem_resident);
}
