/* The completion queue: finished requests go from the engine threads back
 * to the loop thread. A push wakes the loop (uv_async_send) only on the
 * empty -> non-empty transition; the loop's callback takes the whole list
 * at once, so under load one wake-up carries many completions.
 *
 * Threads: mr_cq_push from any thread; init, close and the drain callback on
 * the loop thread. Ownership: a pushed request belongs to the loop again. */
#ifndef MR_CQ_H
#define MR_CQ_H

#include <pthread.h>
#include <uv.h>

#include "server/request.h"

typedef struct mr_cq mr_cq_t;
/* Called on the loop with the requests in push order (linked by ->next). */
typedef void (*mr_cq_drain_fn)(mr_cq_t *q, mr_request_t *list);

struct mr_cq {
  uv_async_t async;
  pthread_mutex_t mu;
  mr_request_t *head, *tail; /* under mu */
  mr_cq_drain_fn drain;
  void *data;                /* the owner's */
};

int mr_cq_init(mr_cq_t *q, uv_loop_t *loop, mr_cq_drain_fn drain, void *data);
void mr_cq_push(mr_cq_t *q, mr_request_t *r);
/* Takes what is queued now and hands it to drain (loop thread); returns
 * whether there was anything. Used by the async callback, and by the loop
 * to poll without waiting for the wake-up. */
int mr_cq_poll(mr_cq_t *q);
/* Closes the async handle; close_cb (may be NULL) runs when it is closed. */
void mr_cq_close(mr_cq_t *q, uv_close_cb close_cb);

#endif
