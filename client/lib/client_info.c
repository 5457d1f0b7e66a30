/* Blocking health, model info and stats calls: one request, its response,
 * copied into plain structs so callers need no protobuf headers. */
#include <stdlib.h>
#include <string.h>

#include "client/lib/client_int.h"
#include "proto/microrec.pb-c.h"

/* Sends a body-less request of body_case and receives its response, which
 * must be OK and carry want_kind. */
static int call(mr_client_t *c, int body_case, mr_resp_kind_t want_kind,
                const char *what, mr_response_t *r, mr_err_t *err) {
  uint64_t id;
  if (c->in_flight)
    return mr_err_set(err, MR_EINVAL,
                      "%s: %zu request(s) still in flight on this "
                      "connection; receive them first",
                      what, c->in_flight);
  int rc = mr__client_send_simple(c, body_case, &id, err);
  if (rc) return rc;
  if ((rc = mr__client_recv_id(c, id, r, err)) != 0) return rc;
  if (r->status != MR_STATUS_OK) {
    c->last_status = r->status;
    rc = mr_err_set(err, MR_ESERVER, "%s: server answered %s: %s", what,
                    mr_client_status_name(r->status), r->message);
  } else if (r->kind != want_kind) {
    rc = mr_err_set(err, MR_EPROTO,
                    "%s: server answered OK without the expected body", what);
  }
  if (rc) mr_response_free(r);
  return rc;
}

static char *dup_str(const char *s) { return strdup(s ? s : ""); }

int mr_client_health(mr_client_t *c, mr_health_t *h, mr_err_t *err) {
  memset(h, 0, sizeof *h);
  mr_response_t r;
  int rc = call(c, MICROREC__REQUEST__BODY_HEALTH, MR_RESP_HEALTH, "health",
                &r, err);
  if (rc) return rc;
  const Microrec__HealthResponse *pb =
      ((const Microrec__Response *)r.pb_)->health;
  h->alive = pb->alive;
  h->ready = pb->ready;
  h->model_generation = pb->model_generation;
  h->model_path = dup_str(pb->model_path);
  mr_response_free(&r);
  if (!h->model_path) return mr_err_set(err, MR_ENOMEM, "out of memory");
  return 0;
}

void mr_health_free(mr_health_t *h) {
  if (!h) return;
  free(h->model_path);
  memset(h, 0, sizeof *h);
}

static mr_layer_dims_t *copy_layers(Microrec__LayerInfo **l, size_t n) {
  mr_layer_dims_t *out = calloc(n ? n : 1, sizeof *out);
  if (!out) return NULL;
  for (size_t i = 0; i < n; i++) {
    out[i].in = l[i]->in;
    out[i].out = l[i]->out;
  }
  return out;
}

int mr_client_model_info(mr_client_t *c, mr_model_info_t *mi, mr_err_t *err) {
  memset(mi, 0, sizeof *mi);
  mr_response_t r;
  int rc = call(c, MICROREC__REQUEST__BODY_MODEL_INFO, MR_RESP_MODEL_INFO,
                "model info", &r, err);
  if (rc) return rc;
  const Microrec__ModelInfoResponse *pb =
      ((const Microrec__Response *)r.pb_)->model_info;
  size_t t = pb->n_tables;
  mi->num_dense = pb->num_dense;
  mi->num_tables = t;
  mi->total_bytes = pb->total_bytes;
  mi->interaction = dup_str(pb->interaction);
  mi->backend = dup_str(pb->backend);
  mi->model_path = dup_str(pb->model_path);
  mi->rows = calloc(t ? t : 1, sizeof *mi->rows);
  mi->dims = calloc(t ? t : 1, sizeof *mi->dims);
  mi->num_bottom = pb->n_bottom;
  mi->num_top = pb->n_top;
  mi->bottom = copy_layers(pb->bottom, pb->n_bottom);
  mi->top = copy_layers(pb->top, pb->n_top);
  if (!mi->interaction || !mi->backend || !mi->model_path || !mi->rows ||
      !mi->dims || !mi->bottom || !mi->top) {
    mr_response_free(&r);
    mr_model_info_free(mi);
    return mr_err_set(err, MR_ENOMEM, "out of memory");
  }
  for (size_t k = 0; k < t; k++) {
    mi->rows[k] = pb->tables[k]->rows;
    mi->dims[k] = pb->tables[k]->dim;
  }
  mr_response_free(&r);
  return 0;
}

void mr_model_info_free(mr_model_info_t *mi) {
  if (!mi) return;
  free(mi->interaction);
  free(mi->backend);
  free(mi->model_path);
  free(mi->rows);
  free(mi->dims);
  free(mi->bottom);
  free(mi->top);
  memset(mi, 0, sizeof *mi);
}

int mr_client_stats(mr_client_t *c, mr_stats_reply_t *st, mr_err_t *err) {
  memset(st, 0, sizeof *st);
  mr_response_t r;
  int rc = call(c, MICROREC__REQUEST__BODY_STATS, MR_RESP_STATS, "stats", &r,
                err);
  if (rc) return rc;
  const Microrec__StatsResponse *pb =
      ((const Microrec__Response *)r.pb_)->stats;
  st->requests = pb->requests;
  st->samples = pb->samples;
  st->batches = pb->batches;
  st->connections = pb->connections;
  st->uptime_s = pb->uptime_s;
  st->mem_allocated_bytes = pb->mem_allocated_bytes;
  st->mem_resident_bytes = pb->mem_resident_bytes;
  st->reloads = pb->reloads;
  st->errors = calloc(pb->n_errors ? pb->n_errors : 1, sizeof *st->errors);
  st->latency =
      calloc(pb->n_latency ? pb->n_latency : 1, sizeof *st->latency);
  if (!st->errors || !st->latency) goto oom;
  st->num_errors = pb->n_errors;
  for (size_t i = 0; i < pb->n_errors; i++) {
    st->errors[i].status = (int)pb->errors[i]->status;
    st->errors[i].count = pb->errors[i]->count;
  }
  for (size_t i = 0; i < pb->n_latency; i++) {
    const Microrec__Percentiles *p = pb->latency[i];
    mr_latency_t *l = &st->latency[i];
    st->num_latency = i + 1;
    if (!(l->stage = dup_str(p->stage))) goto oom;
    l->count = p->count;
    l->p50_us = p->p50_us;
    l->p90_us = p->p90_us;
    l->p99_us = p->p99_us;
    l->p999_us = p->p999_us;
    l->max_us = p->max_us;
    l->mean_us = p->mean_us;
  }
  mr_response_free(&r);
  return 0;
oom:
  mr_response_free(&r);
  mr_stats_reply_free(st);
  return mr_err_set(err, MR_ENOMEM, "out of memory");
}

void mr_stats_reply_free(mr_stats_reply_t *st) {
  if (!st) return;
  for (size_t i = 0; i < st->num_latency; i++) free(st->latency[i].stage);
  free(st->latency);
  free(st->errors);
  memset(st, 0, sizeof *st);
}
