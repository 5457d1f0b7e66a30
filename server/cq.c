/* Completion queue: mutex-protected list + uv_async on empty -> non-empty. */
#include "server/cq.h"

static void on_async(uv_async_t *h) { mr_cq_poll(h->data); }

int mr_cq_init(mr_cq_t *q, uv_loop_t *loop, mr_cq_drain_fn drain, void *data) {
  q->head = q->tail = NULL;
  q->drain = drain;
  q->data = data;
  pthread_mutex_init(&q->mu, NULL);
  int rc = uv_async_init(loop, &q->async, on_async);
  q->async.data = q;
  return rc;
}

void mr_cq_push(mr_cq_t *q, mr_request_t *r) {
  r->next = NULL;
  pthread_mutex_lock(&q->mu);
  int was_empty = q->head == NULL;
  if (q->tail) q->tail->next = r;
  else q->head = r;
  q->tail = r;
  pthread_mutex_unlock(&q->mu);
  /* Only the first push after a drain wakes the loop; the drain takes all.
   * Sending after the unlock is safe: a drain that already took r just
   * leads to one empty callback. */
  if (was_empty) uv_async_send(&q->async);
}

int mr_cq_poll(mr_cq_t *q) {
  pthread_mutex_lock(&q->mu);
  mr_request_t *list = q->head;
  q->head = q->tail = NULL;
  pthread_mutex_unlock(&q->mu);
  if (list) q->drain(q, list);
  return list != NULL;
}

void mr_cq_close(mr_cq_t *q, uv_close_cb close_cb) {
  uv_close((uv_handle_t *)&q->async, close_cb);
}
