/* Response encoding (reply.h). */
#include "server/reply.h"

#include <stdlib.h>

#include "fpga/model.h"
#include "proto/microrec.pb-c.h"
#include "server/frame.h"

static int append(mr_buf_t *out, const Microrec__Response *resp) {
  size_t n = protobuf_c_message_get_packed_size(&resp->base);
  if (n > UINT32_MAX) return MR_ENOMEM;
  if (mr_buf_reserve(out, MR_FRAME_HEADER + n)) return MR_ENOMEM;
  uint8_t *p = out->data + out->len;
  mr_frame_put_header(p, (uint32_t)n);
  protobuf_c_message_pack(&resp->base, p + MR_FRAME_HEADER);
  out->len += MR_FRAME_HEADER + n;
  return 0;
}

static void base(Microrec__Response *resp, Microrec__Timings *t, uint64_t id,
                 uint64_t t_recv, uint64_t now) {
  microrec__response__init(resp);
  microrec__timings__init(t);
  resp->id = id;
  if (t_recv) {
    t->server_ns = now > t_recv ? now - t_recv : 0;
    resp->timings = t;
  }
}

int mr_reply_error(mr_buf_t *out, uint64_t id, int status, const char *msg,
                   uint64_t t_recv, uint64_t now) {
  Microrec__Response resp;
  Microrec__Timings t;
  base(&resp, &t, id, t_recv, now);
  resp.status = (Microrec__Status)status;
  resp.message = (char *)msg;
  return append(out, &resp);
}

int mr_reply_infer(mr_buf_t *out, const mr_request_t *r, uint64_t now) {
  if (atomic_load(&r->failed))
    return mr_reply_error(out, r->id, MICROREC__STATUS__INTERNAL, r->error,
                          r->t_recv, now);
  Microrec__Response resp;
  Microrec__Timings t;
  Microrec__InferResponse inf;
  base(&resp, &t, r->id, r->t_recv, now);
  microrec__infer_response__init(&inf);
  t.queue_ns = r->t_start > r->t_recv ? r->t_start - r->t_recv : 0;
  t.engine_ns = r->t_end > r->t_start ? r->t_end - r->t_start : 0;
  inf.n_scores = r->num_samples;
  inf.scores = r->scores;
  if (r->want_logits) {
    inf.n_logits = r->num_samples;
    inf.logits = r->logits;
  }
  resp.status = MICROREC__STATUS__OK;
  resp.body_case = MICROREC__RESPONSE__BODY_INFER;
  resp.infer = &inf;
  return append(out, &resp);
}

int mr_reply_health(mr_buf_t *out, uint64_t id, int ready,
                    const mr_slot_t *slot, uint64_t t_recv, uint64_t now) {
  Microrec__Response resp;
  Microrec__Timings t;
  Microrec__HealthResponse h;
  base(&resp, &t, id, t_recv, now);
  microrec__health_response__init(&h);
  h.alive = 1;
  h.ready = ready && slot;
  h.model_path = slot ? (char *)slot->path : "";
  h.model_generation = slot ? slot->generation : 0;
  resp.body_case = MICROREC__RESPONSE__BODY_HEALTH;
  resp.health = &h;
  return append(out, &resp);
}

int mr_reply_model_info(mr_buf_t *out, uint64_t id, const mr_slot_t *slot,
                        uint64_t t_recv, uint64_t now) {
  if (!slot)
    return mr_reply_error(out, id, MICROREC__STATUS__NOT_READY,
                          "no model is loaded yet; retry when health says "
                          "ready", t_recv, now);
  const mr_engine_info_t *in = slot->info;
  Microrec__Response resp;
  Microrec__Timings t;
  Microrec__ModelInfoResponse mi;
  base(&resp, &t, id, t_recv, now);
  microrec__model_info_response__init(&mi);
  size_t nt = in->num_tables, nl = in->num_bot + in->num_top;
  /* Not the hot path: one allocation for all the sub-messages. */
  size_t bytes = nt * (sizeof(Microrec__TableInfo) + sizeof(void *)) +
                 nl * (sizeof(Microrec__LayerInfo) + sizeof(void *)) + 1;
  char *mem = malloc(bytes);
  if (!mem) return MR_ENOMEM;
  Microrec__TableInfo *tables = (Microrec__TableInfo *)(void *)mem;
  Microrec__LayerInfo *layers = (Microrec__LayerInfo *)(void *)(tables + nt);
  Microrec__TableInfo **tp = (Microrec__TableInfo **)(void *)(layers + nl);
  Microrec__LayerInfo **lp = (Microrec__LayerInfo **)(void *)(tp + nt);
  for (size_t i = 0; i < nt; i++) {
    microrec__table_info__init(&tables[i]);
    tables[i].rows = in->table_rows[i];
    tables[i].dim = (uint32_t)in->table_dims[i];
    tp[i] = &tables[i];
  }
  for (size_t i = 0; i < nl; i++) {
    microrec__layer_info__init(&layers[i]);
    int bot = i < in->num_bot;
    size_t k = bot ? i : i - in->num_bot;
    layers[i].in = (uint32_t)(bot ? in->bot_in[k] : in->top_in[k]);
    layers[i].out = (uint32_t)(bot ? in->bot_out[k] : in->top_out[k]);
    lp[i] = &layers[i];
  }
  mi.interaction = (char *)mr_interaction_name(in->interaction);
  mi.num_dense = (uint32_t)in->num_dense;
  mi.n_tables = nt;
  mi.tables = tp;
  mi.n_bottom = in->num_bot;
  mi.bottom = lp;
  mi.n_top = in->num_top;
  mi.top = lp + in->num_bot;
  mi.total_bytes = in->resident_bytes;
  mi.backend = (char *)(in->backend ? in->backend : "");
  mi.model_path = (char *)slot->path;
  resp.body_case = MICROREC__RESPONSE__BODY_MODEL_INFO;
  resp.model_info = &mi;
  int rc = append(out, &resp);
  free(mem);
  return rc;
}

static double us(uint64_t ns) { return (double)ns / 1000.0; }

int mr_reply_stats(mr_buf_t *out, uint64_t id, const mr_stats_summary_t *s,
                   uint64_t t_recv, uint64_t now) {
  Microrec__Response resp;
  Microrec__Timings t;
  Microrec__StatsResponse st;
  base(&resp, &t, id, t_recv, now);
  microrec__stats_response__init(&st);
  Microrec__ErrorCount ec[MR_STATUS_COUNT], *ecp[MR_STATUS_COUNT];
  Microrec__Percentiles pc[MR_STAGE_COUNT], *pcp[MR_STAGE_COUNT];
  size_t ne = 0;
  for (int i = 1; i < MR_STATUS_COUNT; i++) {
    if (!s->errors[i]) continue;
    microrec__error_count__init(&ec[ne]);
    ec[ne].status = (Microrec__Status)i;
    ec[ne].count = s->errors[i];
    ecp[ne] = &ec[ne];
    ne++;
  }
  for (int i = 0; i < MR_STAGE_COUNT; i++) {
    const mr_stage_summary_t *g = &s->stage[i];
    microrec__percentiles__init(&pc[i]);
    pc[i].stage = (char *)mr_stage_names[i];
    pc[i].count = g->count;
    pc[i].p50_us = us(g->p50);
    pc[i].p90_us = us(g->p90);
    pc[i].p99_us = us(g->p99);
    pc[i].p999_us = us(g->p999);
    pc[i].max_us = us(g->max);
    pc[i].mean_us = g->mean / 1000.0;
    pcp[i] = &pc[i];
  }
  st.requests = s->requests;
  st.samples = s->samples;
  st.batches = s->batches;
  st.n_errors = ne;
  st.errors = ecp;
  st.n_latency = MR_STAGE_COUNT;
  st.latency = pcp;
  st.connections = s->connections;
  st.uptime_s = s->uptime_s;
  st.mem_allocated_bytes = s->mem_allocated;
  st.mem_resident_bytes = s->mem_resident;
  st.reloads = s->reloads;
  resp.body_case = MICROREC__RESPONSE__BODY_STATS;
  resp.stats = &st;
  return append(out, &resp);
}
