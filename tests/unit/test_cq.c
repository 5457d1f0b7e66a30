/* server/cq: completions from other threads reach the loop, in order, and
 * many pushes are drained by one callback. */
#include <pthread.h>
#include <uv.h>

#include "server/cq.h"
#include <criterion/criterion.h>
#ifndef cr_fatal /* testutil.h uses it; only criterion/new/assert.h has it */
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif
#include "tests/unit/testutil.h"

static int drains;
static mr_request_t *seen[64];
static int num_seen;

static void drain(mr_cq_t *q, mr_request_t *list) {
  (void)q;
  drains++;
  for (mr_request_t *r = list; r; r = r->next) seen[num_seen++] = r;
}

Test(cq, pushes_before_the_loop_runs_are_drained_once_in_order) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  mr_cq_t q;
  cr_assert_eq(mr_cq_init(&q, &loop, drain, NULL), 0);
  mr_request_t r[3] = {0};
  drains = num_seen = 0;
  for (int i = 0; i < 3; i++) mr_cq_push(&q, &r[i]);
  uv_run(&loop, UV_RUN_NOWAIT);
  cr_expect_eq(drains, 1);
  cr_assert_eq(num_seen, 3);
  for (int i = 0; i < 3; i++) cr_expect_eq(seen[i], &r[i]);
  cr_expect_eq(mr_cq_poll(&q), 0, "nothing left");
  mr_cq_close(&q, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_expect_eq(uv_loop_close(&loop), 0);
}

static void *pusher(void *arg) {
  mr_cq_t *q = arg;
  static mr_request_t r[10];
  for (int i = 0; i < 10; i++) mr_cq_push(q, &r[i]);
  return NULL;
}

static void stop_when_all(mr_cq_t *q, mr_request_t *list) {
  drain(q, list);
  if (num_seen == 10) mr_cq_close(q, NULL); /* lets uv_run return */
}

Test(cq, pushes_from_another_thread_wake_the_loop) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  mr_cq_t q;
  cr_assert_eq(mr_cq_init(&q, &loop, stop_when_all, NULL), 0);
  drains = num_seen = 0;
  pthread_t t;
  pthread_create(&t, NULL, pusher, &q);
  uv_run(&loop, UV_RUN_DEFAULT); /* returns once all 10 came and q closed */
  pthread_join(t, NULL);
  cr_expect_eq(num_seen, 10);
  cr_expect(drains >= 1 && drains <= 10);
  for (int i = 1; i < num_seen; i++)
    cr_expect(seen[i] > seen[i - 1], "in push order");
  cr_expect_eq(uv_loop_close(&loop), 0);
}
