/* server/batcher: batch formation (split, join, slots), full ring,
 * linger and its deadline, failures, several threads. The engine is
 * replaced by a run function that records each batch and writes a known
 * logit per sample. No timed assertions: waits only bound liveness. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/batcher.h"
#include "server/clock.h"
#include <criterion/criterion.h>
#ifndef cr_fatal /* testutil.h uses it; only criterion/new/assert.h has it */
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif
#include "tests/unit/testutil.h"

#define MAX_LOG 256

typedef struct fake {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  size_t batches;
  size_t batch_samples[MAX_LOG];
  size_t batch_slices[MAX_LOG];
  unsigned batch_thread[MAX_LOG];
  size_t done;
  mr_request_t *done_list[MAX_LOG];
  int fail;
} fake_t;

static fake_t F;

static float logit_of(uint64_t id, uint32_t k) { return (float)(id * 1000 + k); }

static int fake_run(void *ctx, unsigned thread, const mr_batch_t *b,
                    mr_err_t *err) {
  fake_t *f = ctx;
  pthread_mutex_lock(&f->mu);
  if (f->batches < MAX_LOG) {
    f->batch_samples[f->batches] = b->samples;
    f->batch_slices[f->batches] = b->num_slices;
    f->batch_thread[f->batches] = thread;
  }
  f->batches++;
  int fail = f->fail;
  pthread_mutex_unlock(&f->mu);
  if (fail) return mr_err_set(err, MR_EDEVICE, "fake engine failure");
  size_t total = 0;
  for (size_t i = 0; i < b->num_slices; i++) {
    const mr_slice_t *s = &b->slices[i];
    for (uint32_t k = s->offset; k < s->offset + s->count; k++)
      s->req->logits[k] = logit_of(s->req->id, k);
    total += s->count;
  }
  cr_assert_eq(total, b->samples);
  return 0;
}

static void fake_done(void *ctx, mr_request_t *r) {
  fake_t *f = ctx;
  pthread_mutex_lock(&f->mu);
  if (f->done < MAX_LOG) f->done_list[f->done] = r;
  f->done++;
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&f->mu);
}

/* Waits (generously) until n requests are done. */
static void wait_done(size_t n) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += 30;
  pthread_mutex_lock(&F.mu);
  while (F.done < n) {
    if (pthread_cond_timedwait(&F.cv, &F.mu, &ts)) break;
  }
  size_t done = F.done;
  pthread_mutex_unlock(&F.mu);
  cr_assert_eq(done, n, "%zu of %zu requests done", done, n);
}

static mr_request_pool_t pool;
static mr_batcher_t B;

static void setup(void) {
  memset(&F, 0, sizeof F);
  pthread_mutex_init(&F.mu, NULL);
  pthread_cond_init(&F.cv, NULL);
  mr_request_pool_init(&pool);
}

static void teardown(void) { mr_request_pool_free(&pool); }

static void start(unsigned threads, size_t max_batch, uint64_t delay_ns,
                  size_t capacity) {
  mr_batcher_opts_t o = {.threads = threads,
                         .max_batch = max_batch,
                         .max_delay_ns = delay_ns,
                         .capacity = capacity,
                         .run = fake_run,
                         .run_ctx = &F,
                         .done = fake_done,
                         .done_ctx = &F};
  mr_err_t err = {0};
  cr_assert_eq(mr_batcher_start(&B, &o, &err), 0, "%s", err.msg);
}

static mr_request_t *req(uint64_t id, uint32_t n, void *slot) {
  mr_request_t *r = mr_request_get(&pool);
  cr_assert_not_null(r);
  r->id = id;
  r->kind = MR_REQ_INFER;
  r->num_samples = n;
  r->slot = slot;
  r->logits = calloc(n, sizeof *r->logits);
  r->scores = calloc(n, sizeof *r->scores);
  r->out_cap = n;
  r->t_recv = mr_clock_ns();
  return r;
}

static void check_result(mr_request_t *r) {
  cr_expect_eq(atomic_load(&r->failed), 0);
  for (uint32_t k = 0; k < r->num_samples; k++) {
    cr_expect_eq(r->logits[k], logit_of(r->id, k), "req %llu sample %u",
                 (unsigned long long)r->id, k);
    cr_expect_float_eq(r->scores[k], mr_sigmoid(logit_of(r->id, k)), 1e-6);
  }
  cr_expect(r->t_batched >= r->t_recv);
  cr_expect(r->t_start >= r->t_batched);
  cr_expect(r->t_end >= r->t_start);
  cr_expect_eq(r->taken, r->num_samples);
}

static void put(mr_request_t *r) {
  r->slot = NULL;
  mr_request_put(&pool, r);
}

#define SLOT_A ((void *)0x1000)
#define SLOT_B ((void *)0x2000)

Test(batcher, runs_one_request_as_one_batch, .init = setup, .fini = teardown) {
  start(1, 16, 0, 8);
  mr_request_t *r = req(1, 3, SLOT_A);
  cr_assert_eq(mr_batcher_push(&B, r), 0);
  mr_batcher_flush(&B, 0);
  wait_done(1);
  mr_batcher_stop(&B);
  cr_expect_eq(F.batches, 1);
  cr_expect_eq(F.batch_samples[0], 3);
  cr_expect_eq(F.done_list[0], r);
  check_result(r);
  cr_expect_eq(atomic_load(&B.batches), 1);
  put(r);
}

Test(batcher, splits_a_request_larger_than_the_batch, .init = setup,
     .fini = teardown) {
  start(1, 4, 0, 8);
  mr_request_t *r = req(7, 10, SLOT_A);
  cr_assert_eq(mr_batcher_push(&B, r), 0);
  mr_batcher_flush(&B, 0);
  wait_done(1);
  mr_batcher_stop(&B);
  cr_expect_eq(F.batches, 3);
  cr_expect_eq(F.batch_samples[0], 4);
  cr_expect_eq(F.batch_samples[1], 4);
  cr_expect_eq(F.batch_samples[2], 2);
  cr_expect_eq(F.done, 1, "done once, after its last slice");
  check_result(r);
  cr_expect_eq(atomic_load(&B.splits), 2);
  put(r);
}

Test(batcher, joins_small_requests_flushed_together, .init = setup,
     .fini = teardown) {
  start(1, 16, 0, 8);
  mr_request_t *r[5];
  for (int i = 0; i < 5; i++) {
    r[i] = req(10 + i, 3, SLOT_A);
    cr_assert_eq(mr_batcher_push(&B, r[i]), 0);
  }
  mr_batcher_flush(&B, 0);
  wait_done(5);
  mr_batcher_stop(&B);
  cr_expect_eq(F.batches, 1);
  cr_expect_eq(F.batch_samples[0], 15);
  cr_expect_eq(F.batch_slices[0], 5);
  for (int i = 0; i < 5; i++) {
    cr_expect_eq(F.done_list[i], r[i], "done in order");
    check_result(r[i]);
    put(r[i]);
  }
}

Test(batcher, splits_and_joins_to_fill_batches, .init = setup,
     .fini = teardown) {
  start(1, 8, 0, 8);
  mr_request_t *a = req(1, 3, SLOT_A), *b = req(2, 10, SLOT_A),
               *c = req(3, 3, SLOT_A);
  cr_assert_eq(mr_batcher_push(&B, a), 0);
  cr_assert_eq(mr_batcher_push(&B, b), 0);
  cr_assert_eq(mr_batcher_push(&B, c), 0);
  mr_batcher_flush(&B, 0);
  wait_done(3);
  mr_batcher_stop(&B);
  /* [a:3 + b:5] [b:5 + c:3] */
  cr_expect_eq(F.batches, 2);
  cr_expect_eq(F.batch_samples[0], 8);
  cr_expect_eq(F.batch_slices[0], 2);
  cr_expect_eq(F.batch_samples[1], 8);
  cr_expect_eq(F.batch_slices[1], 2);
  check_result(a);
  check_result(b);
  check_result(c);
  put(a);
  put(b);
  put(c);
}

Test(batcher, never_mixes_model_slots, .init = setup, .fini = teardown) {
  start(1, 16, 0, 8);
  mr_request_t *a = req(1, 2, SLOT_A), *b = req(2, 2, SLOT_B),
               *c = req(3, 2, SLOT_B);
  mr_batcher_push(&B, a);
  mr_batcher_push(&B, b);
  mr_batcher_push(&B, c);
  mr_batcher_flush(&B, 0);
  wait_done(3);
  mr_batcher_stop(&B);
  cr_expect_eq(F.batches, 2);
  cr_expect_eq(F.batch_samples[0], 2);
  cr_expect_eq(F.batch_samples[1], 4);
  put(a);
  put(b);
  put(c);
}

Test(batcher, full_ring_refuses_at_once, .init = setup, .fini = teardown) {
  start(1, 16, 0, 2);
  mr_request_t *a = req(1, 1, SLOT_A), *b = req(2, 1, SLOT_A),
               *c = req(3, 1, SLOT_A);
  cr_expect_eq(mr_batcher_push(&B, a), 0);
  cr_expect_eq(mr_batcher_push(&B, b), 0);
  cr_expect_eq(mr_batcher_push(&B, c), MR_EOVERLOAD, "staged count too");
  mr_batcher_flush(&B, 0);
  wait_done(2);
  /* The ring drained: room again. */
  cr_expect_eq(mr_batcher_push(&B, c), 0);
  mr_batcher_flush(&B, 0);
  wait_done(3);
  mr_batcher_stop(&B);
  check_result(c);
  put(a);
  put(b);
  put(c);
}

Test(batcher, lingers_while_more_is_coming_and_joins, .init = setup,
     .fini = teardown) {
  /* A long linger: the batch can only close when the loop says no more is
   * coming, by which time both requests are in it. */
  start(1, 16, 60ull * 1000000000ull, 8);
  mr_request_t *a = req(1, 2, SLOT_A), *b = req(2, 3, SLOT_A);
  mr_batcher_push(&B, a);
  mr_batcher_flush(&B, 1);
  mr_batcher_push(&B, b);
  mr_batcher_flush(&B, 0);
  wait_done(2);
  mr_batcher_stop(&B);
  cr_expect_eq(F.batches, 1);
  cr_expect_eq(F.batch_samples[0], 5);
  check_result(a);
  check_result(b);
  put(a);
  put(b);
}

Test(batcher, linger_ends_at_max_delay, .init = setup, .fini = teardown) {
  /* More is announced but never comes: the deadline closes the batch. */
  start(1, 16, 1000000 /* 1 ms */, 8);
  mr_request_t *a = req(1, 2, SLOT_A);
  mr_batcher_push(&B, a);
  mr_batcher_flush(&B, 1);
  wait_done(1);
  cr_expect_eq(F.batches, 1);
  check_result(a);
  mr_batcher_stop(&B);
  put(a);
}

Test(batcher, closes_at_once_when_nothing_more_is_coming, .init = setup,
     .fini = teardown) {
  /* A 60 s max_delay would hang the test if an idle ring did not close the
   * batch at once. */
  start(1, 16, 60ull * 1000000000ull, 8);
  mr_request_t *a = req(1, 1, SLOT_A);
  mr_batcher_push(&B, a);
  mr_batcher_flush(&B, 0);
  wait_done(1);
  mr_batcher_stop(&B);
  put(a);
}

Test(batcher, engine_failure_fails_every_request_of_the_batch,
     .init = setup, .fini = teardown) {
  start(1, 16, 0, 8);
  F.fail = 1;
  mr_request_t *a = req(1, 2, SLOT_A), *b = req(2, 2, SLOT_A);
  mr_batcher_push(&B, a);
  mr_batcher_push(&B, b);
  mr_batcher_flush(&B, 0);
  wait_done(2);
  mr_batcher_stop(&B);
  cr_expect_eq(atomic_load(&a->failed), 1);
  cr_expect_eq(atomic_load(&b->failed), 1);
  cr_expect(strstr(a->error, "fake engine failure") != NULL, "%s", a->error);
  put(a);
  put(b);
}

Test(batcher, several_threads_finish_every_request_once, .init = setup,
     .fini = teardown) {
  start(2, 5, 0, 64);
  enum { N = 60 };
  mr_request_t *r[N];
  for (int i = 0; i < N; i++) {
    r[i] = req(100 + i, 1 + (uint32_t)(i * 7) % 13, SLOT_A);
    cr_assert_eq(mr_batcher_push(&B, r[i]), 0);
    if (i % 9 == 0) mr_batcher_flush(&B, 0);
  }
  mr_batcher_flush(&B, 0);
  wait_done(N);
  mr_batcher_stop(&B);
  cr_expect_eq(F.done, N);
  size_t samples = 0;
  for (int i = 0; i < N; i++) {
    check_result(r[i]);
    samples += r[i]->num_samples;
  }
  cr_expect_eq(atomic_load(&B.batch_samples), samples);
  for (int i = 0; i < N; i++) put(r[i]);
}

Test(batcher, stop_finishes_what_is_queued, .init = setup, .fini = teardown) {
  start(1, 4, 0, 16);
  mr_request_t *r[6];
  for (int i = 0; i < 6; i++) {
    r[i] = req(1 + i, 3, SLOT_A);
    mr_batcher_push(&B, r[i]);
  }
  mr_batcher_stop(&B); /* flushes, then lets the thread empty the ring */
  cr_expect_eq(F.done, 6);
  for (int i = 0; i < 6; i++) {
    check_result(r[i]);
    put(r[i]);
  }
}

/* Waits (generously) until every engine thread sleeps for want of work. */
static void wait_idle(void) {
  for (int i = 0; i < 30000; i++) {
    if (atomic_load(&B.idle_threads) == B.started) return;
    usleep(1000);
  }
  cr_assert_fail("engine threads never went idle");
}

Test(batcher, runs_small_turn_on_the_calling_thread_when_idle, .init = setup,
     .fini = teardown) {
  start(2, 16, 0, 8);
  wait_idle();
  mr_request_t *a = req(1, 2, SLOT_A), *b = req(2, 3, SLOT_A);
  mr_batcher_push(&B, a);
  mr_batcher_push(&B, b);
  cr_assert_eq(mr_batcher_run_here(&B, 8, fake_done, &F), 0);
  /* Done before returning, on this thread: no waiting. */
  cr_expect_eq(F.done, 2);
  cr_expect_eq(F.batches, 1);
  cr_expect_eq(F.batch_thread[0], 2, "scratch index = threads (the loop's)");
  cr_expect_eq(B.num_staged, 0);
  cr_expect_eq(atomic_load(&B.inline_batches), 1);
  check_result(a);
  check_result(b);
  mr_batcher_stop(&B);
  put(a);
  put(b);
}

Test(batcher, run_here_declines_a_big_turn_and_leaves_it_staged,
     .init = setup, .fini = teardown) {
  start(1, 16, 0, 8);
  wait_idle();
  mr_request_t *a = req(1, 5, SLOT_A), *b = req(2, 5, SLOT_A);
  mr_batcher_push(&B, a);
  mr_batcher_push(&B, b);
  cr_expect_eq(mr_batcher_run_here(&B, 8, fake_done, &F), MR_EAGAIN);
  cr_expect_eq(B.num_staged, 2);
  cr_expect_eq(F.done, 0);
  mr_batcher_flush(&B, 0);
  wait_done(2);
  cr_expect_eq(F.batch_thread[0], 0, "went to the engine thread");
  mr_batcher_stop(&B);
  check_result(a);
  check_result(b);
  put(a);
  put(b);
}

Test(batcher, run_here_declines_mixed_slots, .init = setup, .fini = teardown) {
  start(1, 16, 0, 8);
  wait_idle();
  mr_request_t *a = req(1, 1, SLOT_A), *b = req(2, 1, SLOT_B);
  mr_batcher_push(&B, a);
  mr_batcher_push(&B, b);
  cr_expect_eq(mr_batcher_run_here(&B, 8, fake_done, &F), MR_EAGAIN);
  mr_batcher_flush(&B, 0);
  wait_done(2);
  mr_batcher_stop(&B);
  put(a);
  put(b);
}
