/* mr_client_infer: a large input scored as a pipeline of requests of
 * `batch` samples with up to `window` of them in flight. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/lib/client_int.h"

typedef struct slot {
  int used;
  uint64_t id;
  size_t start, len;
  int tries;
} slot_t;

static void pause_ms(int ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int send_chunk(mr_client_t *c, slot_t *s, const float *dense,
                      size_t num_dense, const int64_t *ids, size_t num_tables,
                      int want_logits, mr_err_t *err) {
  return mr_client_send_infer(
      c, s->len, dense ? dense + s->start * num_dense : NULL, num_dense,
      ids + s->start * num_tables, num_tables, want_logits, &s->id, err);
}

/* A transport error with requests in flight leaves responses we will never
 * read on the stream: nobody may use it after this. */
static int fail(mr_client_t *c, int rc, mr_err_t *err) {
  if (c->in_flight && rc != MR_ECLOSED)
    mr__client_break(c, rc, err ? err->msg : mr_strerror(rc));
  return rc;
}

int mr_client_infer(mr_client_t *c, size_t n, const float *dense,
                    size_t num_dense, const int64_t *ids, size_t num_tables,
                    const mr_infer_opts_t *opts, float *scores, float *logits,
                    mr_err_t *err) {
  size_t batch = opts && opts->batch ? opts->batch : 256;
  size_t window = opts && opts->window ? opts->window : 8;
  int retries = opts ? opts->overload_retries : 0;
  int want_logits = logits != NULL;
  if (c->in_flight)
    return mr_err_set(err, MR_EINVAL,
                      "infer: %zu request(s) still in flight on this "
                      "connection; receive them first",
                      c->in_flight);
  if (n == 0) return 0;
  slot_t *slots = calloc(window, sizeof *slots);
  if (!slots) return mr_err_set(err, MR_ENOMEM, "out of memory");

  size_t next = 0, active = 0;
  int rc = 0, first_err = 0;
  for (;;) {
    for (size_t i = 0; i < window && !first_err && next < n; i++) {
      if (slots[i].used) continue;
      slot_t *s = &slots[i];
      s->start = next;
      s->len = n - next < batch ? n - next : batch;
      s->tries = 0;
      if ((rc = send_chunk(c, s, dense, num_dense, ids, num_tables,
                           want_logits, err)) != 0)
        goto out;
      s->used = 1;
      next += s->len;
      active++;
    }
    if (active == 0) break;

    mr_response_t r;
    if ((rc = mr_client_recv(c, &r, err)) != 0) goto out;
    slot_t *s = NULL;
    for (size_t i = 0; i < window; i++)
      if (slots[i].used && slots[i].id == r.id) s = &slots[i];
    if (!s) {
      rc = mr_err_set(err, MR_EPROTO,
                      "infer: response for id %llu, which is not in flight",
                      (unsigned long long)r.id);
      mr_response_free(&r);
      goto out;
    }
    if (r.status == MR_STATUS_OK) {
      if (r.kind != MR_RESP_INFER || r.num_scores != s->len ||
          (want_logits && r.num_logits != s->len)) {
        rc = mr_err_set(err, MR_EPROTO,
                        "infer: request of %zu samples answered with %zu "
                        "scores and %zu logits",
                        s->len, r.num_scores, r.num_logits);
        mr_response_free(&r);
        goto out;
      }
      if (scores)
        memcpy(scores + s->start, r.scores, s->len * sizeof *scores);
      if (logits)
        memcpy(logits + s->start, r.logits, s->len * sizeof *logits);
      s->used = 0;
      active--;
    } else if (r.status == MR_STATUS_OVERLOADED && s->tries < retries &&
               !first_err) {
      int shift = s->tries < 6 ? s->tries : 6;
      pause_ms(1 << shift);
      s->tries++;
      if ((rc = send_chunk(c, s, dense, num_dense, ids, num_tables,
                           want_logits, err)) != 0) {
        mr_response_free(&r);
        goto out;
      }
    } else {
      if (!first_err) {
        c->last_status = r.status;
        first_err = mr_err_set(
            err, MR_ESERVER, "infer: samples %zu..%zu: server answered %s: %s",
            s->start, s->start + s->len - 1, mr_client_status_name(r.status),
            r.message);
      }
      s->used = 0;
      active--;
    }
    mr_response_free(&r);
  }
  rc = first_err;
out:
  free(slots);
  return rc ? (rc == first_err ? rc : fail(c, rc, err)) : 0;
}
