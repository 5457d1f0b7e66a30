/* Admin HTTP: /metrics, /healthz, /readyz over libmicrohttpd (admin.h). */
#include "server/admin.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mr_admin {
  struct MHD_Daemon *d;
  mr_stats_t *stats;
  mr_admin_summarize_fn summarize;
  void *ctx;
};

/* ---- /metrics ---- */

typedef struct text {
  char *p;
  size_t len, cap;
  int oom;
} text_t;

__attribute__((format(printf, 2, 3))) static void put(text_t *t,
                                                      const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = t->cap - t->len;
    int n = t->p ? vsnprintf(t->p + t->len, room, fmt, ap) : -1;
    va_end(ap);
    if (n >= 0 && (size_t)n < room) {
      t->len += (size_t)n;
      return;
    }
    size_t cap = t->cap ? t->cap * 2 : 16384;
    char *q = realloc(t->p, cap);
    if (!q) {
      t->oom = 1;
      return;
    }
    t->p = q;
    t->cap = cap;
  }
}

static void metric(text_t *t, const char *name, const char *type,
                   const char *help, unsigned long long v) {
  put(t, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
      v);
}

char *mr_admin_metrics(const mr_stats_summary_t *s, size_t *len) {
  text_t t = {0};
  metric(&t, "microrec_requests_total", "counter",
         "Requests answered, every kind and status.", s->requests);
  metric(&t, "microrec_samples_total", "counter",
         "Samples scored in successful infer requests.", s->samples);
  metric(&t, "microrec_batches_total", "counter", "Engine batches run.",
         s->batches);
  metric(&t, "microrec_batch_samples_total", "counter",
         "Samples in engine batches (batch size = this / batches).",
         s->batch_samples);
  metric(&t, "microrec_inline_batches_total", "counter",
         "Batches run on the loop thread (low-load fast path).",
         s->inline_batches);
  metric(&t, "microrec_request_splits_total", "counter",
         "Request slices continued in a later batch (requests split).",
         s->splits);
  put(&t, "# HELP microrec_errors_total Responses with a non-OK status.\n"
          "# TYPE microrec_errors_total counter\n");
  for (int i = 1; i < MR_STATUS_COUNT; i++)
    put(&t, "microrec_errors_total{status=\"%s\"} %llu\n", mr_status_name(i),
        (unsigned long long)s->errors[i]);
  metric(&t, "microrec_connections", "gauge", "Open client connections.",
         s->connections);
  metric(&t, "microrec_connections_total", "counter",
         "Client connections accepted.", s->connections_total);
  metric(&t, "microrec_connections_rejected_total", "counter",
         "Connections refused beyond max_connections.", s->rejected);
  metric(&t, "microrec_model_generation", "gauge",
         "Generation of the served model (1 at start, +1 per reload).",
         s->model_generation);
  metric(&t, "microrec_reloads_total", "counter", "Successful model reloads.",
         s->reloads);
  metric(&t, "microrec_reload_failures_total", "counter",
         "Reloads that failed (the old model kept serving).",
         s->reload_failures);
  metric(&t, "microrec_ready", "gauge",
         "1 once the model is loaded and the engine warmed up.",
         (unsigned long long)s->ready);
  metric(&t, "microrec_uptime_seconds", "gauge", "Seconds since start.",
         s->uptime_s);
  if (s->have_jemalloc) {
    metric(&t, "microrec_memory_allocated_bytes", "gauge",
           "jemalloc stats.allocated.", s->mem_allocated);
    metric(&t, "microrec_memory_resident_bytes", "gauge",
           "jemalloc stats.resident.", s->mem_resident);
  }
  put(&t, "# HELP microrec_latency_seconds Per-stage latency of infer "
          "requests (queue, batch, engine, reply, server = own time without "
          "engine, end_to_end).\n# TYPE microrec_latency_seconds histogram\n");
  for (int i = 0; i < MR_STAGE_COUNT; i++) {
    const mr_stage_summary_t *g = &s->stage[i];
    for (int b = 0; b < MR_PROM_BUCKETS; b++)
      put(&t, "microrec_latency_seconds_bucket{stage=\"%s\",le=\"%.9g\"} %llu\n",
          mr_stage_names[i], (double)mr_prom_bounds_ns[b] / 1e9,
          (unsigned long long)g->le[b]);
    put(&t,
        "microrec_latency_seconds_bucket{stage=\"%s\",le=\"+Inf\"} %llu\n"
        "microrec_latency_seconds_sum{stage=\"%s\"} %.9g\n"
        "microrec_latency_seconds_count{stage=\"%s\"} %llu\n",
        mr_stage_names[i], (unsigned long long)g->count, mr_stage_names[i],
        g->sum / 1e9, mr_stage_names[i], (unsigned long long)g->count);
  }
  if (t.oom) {
    free(t.p);
    return NULL;
  }
  *len = t.len;
  return t.p;
}

/* ---- HTTP ---- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             const char *type, char *body, size_t len,
                             int owned) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (!r) {
    if (owned) free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", type);
  enum MHD_Result rc = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return rc;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned status,
                            const char *s) {
  return reply(conn, status, "text/plain; charset=utf-8", (char *)s,
               strlen(s), 0);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **state) {
  mr_admin_t *a = cls;
  if (strcmp(method, "GET") && strcmp(method, "HEAD"))
    return text(conn, 405, "only GET\n");
  if (!strcmp(url, "/healthz")) return text(conn, 200, "ok\n");
  if (!strcmp(url, "/readyz")) {
    if (atomic_load(&a->stats->ready)) return text(conn, 200, "ready\n");
    return text(conn, 503, "not ready: model not loaded and warmed up\n");
  }
  if (!strcmp(url, "/metrics")) {
    mr_stats_summary_t *s = malloc(sizeof *s);
    if (!s) return text(conn, 500, "out of memory\n");
    a->summarize(a->ctx, s);
    size_t len = 0;
    char *body = mr_admin_metrics(s, &len);
    free(s);
    if (!body) return text(conn, 500, "out of memory\n");
    return reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", body,
                 len, 1);
  }
  return text(conn, 404, "not found; try /metrics, /healthz or /readyz\n");
}

int mr_admin_start(mr_admin_t **out, const mr_addr_t *addr, mr_stats_t *stats,
                   mr_admin_summarize_fn summarize, void *ctx,
                   mr_addr_t *bound, mr_err_t *err) {
  *out = NULL;
  struct sockaddr_storage ss;
  int rc = mr_addr_resolve(addr, &ss, err);
  if (rc) return rc;
  mr_admin_t *a = calloc(1, sizeof *a);
  if (!a) return mr_err_set(err, MR_ENOMEM, "admin: out of memory");
  a->stats = stats;
  a->summarize = summarize;
  a->ctx = ctx;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
  a->d = MHD_start_daemon(flags, (uint16_t)addr->port, NULL, NULL, on_request,
                          a, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                          MHD_OPTION_END);
  if (!a->d) {
    free(a);
    char buf[300];
    return mr_err_set(err, MR_EIO,
                      "admin: cannot listen on %s (address in use or not "
                      "local?)", mr_addr_format(addr, buf, sizeof buf));
  }
  *bound = *addr;
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
  if (info) bound->port = info->port;
  *out = a;
  return 0;
}

void mr_admin_stop(mr_admin_t *a) {
  if (!a) return;
  MHD_stop_daemon(a->d);
  free(a);
}
