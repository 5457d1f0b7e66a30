/* Requests: free list, decoding into an arena, validation (request.h). */
#include "server/request.h"

#include <stdlib.h>
#include <string.h>

#include "proto/microrec.pb-c.h"

void mr_request_pool_init(mr_request_pool_t *p) {
  p->free = NULL;
  p->allocated = p->idle = 0;
}

void mr_request_pool_free(mr_request_pool_t *p) {
  while (p->free) {
    mr_request_t *r = p->free;
    p->free = r->next;
    mr_arena_free(&r->arena);
    free(r->logits);
    free(r->scores);
    free(r);
  }
  p->idle = 0;
}

static void clear(mr_request_t *r) {
  r->next = NULL;
  r->conn = NULL;
  r->slot = NULL;
  r->id = 0;
  r->kind = MR_REQ_UNKNOWN;
  r->num_samples = 0;
  r->num_dense = r->num_tables = 0;
  r->got_dense = r->got_sparse = 0;
  r->want_logits = 0;
  r->dense = NULL;
  r->ids = NULL;
  r->taken = 0;
  atomic_store_explicit(&r->remaining, 0, memory_order_relaxed);
  atomic_store_explicit(&r->failed, 0, memory_order_relaxed);
  r->error[0] = 0;
  r->t_recv = r->t_batched = r->t_start = r->t_end = 0;
}

mr_request_t *mr_request_get(mr_request_pool_t *p) {
  mr_request_t *r = p->free;
  if (r) {
    p->free = r->next;
    p->idle--;
  } else {
    r = calloc(1, sizeof *r);
    if (!r) return NULL;
    mr_arena_init(&r->arena);
    p->allocated++;
  }
  clear(r);
  return r;
}

void mr_request_put(mr_request_pool_t *p, mr_request_t *r) {
  mr_arena_reset(&r->arena);
  if (r->out_cap > (1u << 16)) { /* a huge request: do not pin its arrays */
    free(r->logits);
    free(r->scores);
    r->logits = r->scores = NULL;
    r->out_cap = 0;
  }
  clear(r);
  r->next = p->free;
  p->free = r;
  p->idle++;
}

/* The id is field 1 (varint, tag byte 0x08); clients put it first. */
static uint64_t leading_id(const uint8_t *p, size_t len) {
  if (len < 2 || p[0] != 0x08) return 0;
  uint64_t v = 0;
  for (size_t i = 1; i < len && i <= 10; i++) {
    v |= (uint64_t)(p[i] & 0x7f) << (7 * (i - 1));
    if (!(p[i] & 0x80)) return v;
  }
  return 0;
}

int mr_request_decode(mr_request_t *r, const uint8_t *msg, size_t len,
                      mr_err_t *err) {
  Microrec__Request *m = microrec__request__unpack(&r->arena.pb, len, msg);
  if (!m) {
    r->id = leading_id(msg, len);
    return mr_err_set(err, MR_EPROTO,
                      "the %zu-byte frame is not a valid microrec.Request "
                      "protobuf message",
                      len);
  }
  r->id = m->id;
  switch (m->body_case) {
  case MICROREC__REQUEST__BODY_INFER: {
    Microrec__InferRequest *in = m->infer;
    r->kind = MR_REQ_INFER;
    r->num_samples = in->num_samples;
    r->want_logits = in->want_logits;
    r->dense = in->dense;
    /* fixed64 ids arrive as uint64; the engine takes int64 (same bits,
     * and a huge one reads as negative: out of range either way). */
    r->ids = (const int64_t *)in->sparse;
    r->got_dense = in->n_dense;
    r->got_sparse = in->n_sparse;
    break;
  }
  case MICROREC__REQUEST__BODY_HEALTH:
    r->kind = MR_REQ_HEALTH;
    break;
  case MICROREC__REQUEST__BODY_MODEL_INFO:
    r->kind = MR_REQ_MODEL_INFO;
    break;
  case MICROREC__REQUEST__BODY_STATS:
    r->kind = MR_REQ_STATS;
    break;
  default:
    r->kind = MR_REQ_UNKNOWN;
    break;
  }
  return 0;
}

int mr_request_validate(mr_request_t *r, const mr_engine_t *e,
                        size_t max_samples, mr_err_t *err) {
  const mr_engine_info_t *info = mr_engine_info(e);
  size_t n = r->num_samples;
  size_t got_dense = r->got_dense, got_sparse = r->got_sparse;
  if (n == 0)
    return mr_err_set(err, MR_EINVAL,
                      "num_samples is 0; expected 1 to %zu samples",
                      max_samples);
  if (n > max_samples)
    return mr_err_set(err, MR_EINVAL,
                      "num_samples is %zu; expected at most %zu samples per "
                      "request (max_request_samples)",
                      n, max_samples);
  if (got_dense != n * info->num_dense)
    return mr_err_set(err, MR_EINVAL,
                      "dense has %zu values; expected num_samples * num_dense "
                      "= %zu * %zu = %zu",
                      got_dense, n, info->num_dense, n * info->num_dense);
  if (got_sparse != n * info->num_tables)
    return mr_err_set(err, MR_EINVAL,
                      "sparse has %zu ids; expected num_samples * num_tables "
                      "= %zu * %zu = %zu",
                      got_sparse, n, info->num_tables, n * info->num_tables);
  r->num_dense = info->num_dense;
  r->num_tables = info->num_tables;
  if (r->num_dense == 0) r->dense = NULL;
  int rc = mr_engine_check(e, n, r->dense, r->ids, err);
  if (rc) return rc;
  if (r->out_cap < n) {
    size_t cap = r->out_cap ? r->out_cap : 16;
    while (cap < n) cap *= 2;
    float *l = realloc(r->logits, cap * sizeof *l);
    if (l) r->logits = l;
    float *s = realloc(r->scores, cap * sizeof *s);
    if (s) r->scores = s;
    if (!l || !s)
      return mr_err_set(err, MR_ENOMEM, "no memory for %zu scores", n);
    r->out_cap = cap;
  }
  return 0;
}

int mr_request_status_of(int code) {
  switch (code) {
  case 0:
    return MICROREC__STATUS__OK;
  case MR_ERANGE:
    return MICROREC__STATUS__OUT_OF_RANGE;
  case MR_EOVERLOAD:
    return MICROREC__STATUS__OVERLOADED;
  case MR_EINVAL:
  case MR_EPROTO:
    return MICROREC__STATUS__BAD_REQUEST;
  default:
    return MICROREC__STATUS__INTERNAL;
  }
}
