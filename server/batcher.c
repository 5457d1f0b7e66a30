/* The batch ring and the engine threads (see batcher.h). */
#include "server/batcher.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fpga/engine.h"
#include "server/clock.h"
#include "server/slot.h"


/* ---- running a batch on the engine ---- */

static int grow(void **p, size_t *cap, size_t want, size_t elem) {
  if (*cap >= want) return 0;
  void *q = realloc(*p, want * elem);
  if (!q) return MR_ENOMEM;
  *p = q;
  *cap = want;
  return 0;
}

static int run_engine(mr_batcher_thread_t *t, const mr_batch_t *bt,
                      mr_err_t *err) {
  mr_slot_t *slot = bt->slot;
  size_t nd = slot->info->num_dense, nt = slot->info->num_tables;
  mr_scratch_t *scratch = slot->scratch[t->index];
  if (bt->num_slices == 1) { /* the common case: no copy */
    const mr_slice_t *s = &bt->slices[0];
    const mr_request_t *r = s->req;
    return mr_engine_run(slot->engine, scratch, s->count,
                         nd ? r->dense + (size_t)s->offset * nd : NULL,
                         r->ids + (size_t)s->offset * nt,
                         r->logits + s->offset, err);
  }
  size_t n = bt->samples;
  if (grow((void **)&t->ids, &t->ids_cap, n * nt, sizeof *t->ids) ||
      grow((void **)&t->logits, &t->logits_cap, n, sizeof *t->logits) ||
      (nd && grow((void **)&t->dense, &t->dense_cap, n * nd, sizeof *t->dense)))
    return mr_err_set(err, MR_ENOMEM, "no memory to gather a batch of %zu", n);
  size_t at = 0;
  for (size_t i = 0; i < bt->num_slices; i++) {
    const mr_slice_t *s = &bt->slices[i];
    if (nd)
      memcpy(t->dense + at * nd, s->req->dense + (size_t)s->offset * nd,
             (size_t)s->count * nd * sizeof *t->dense);
    memcpy(t->ids + at * nt, s->req->ids + (size_t)s->offset * nt,
           (size_t)s->count * nt * sizeof *t->ids);
    at += s->count;
  }
  int rc = mr_engine_run(slot->engine, scratch, n, nd ? t->dense : NULL,
                         t->ids, t->logits, err);
  if (rc) return rc;
  at = 0;
  for (size_t i = 0; i < bt->num_slices; i++) {
    const mr_slice_t *s = &bt->slices[i];
    memcpy(s->req->logits + s->offset, t->logits + at,
           s->count * sizeof *t->logits);
    at += s->count;
  }
  return 0;
}

/* ---- batch formation (under mu) ---- */

/* Takes from the ring head into t->batch; returns 1 if the batch must close
 * now (full, or the head belongs to another slot). */
static int take(mr_batcher_t *b, mr_batch_t *bt, uint64_t now) {
  size_t max = b->o.max_batch;
  while (b->count > 0 && bt->samples < max) {
    mr_request_t *r = b->ring[b->head];
    if (bt->num_slices == 0) bt->slot = r->slot;
    else if (r->slot != bt->slot) return 1;
    uint32_t left = r->num_samples - r->taken;
    uint32_t n = left < max - bt->samples ? left : (uint32_t)(max - bt->samples);
    if (r->taken == 0) r->t_batched = now;
    else atomic_fetch_add_explicit(&b->splits, 1, memory_order_relaxed);
    bt->slices[bt->num_slices++] = (mr_slice_t){r, r->taken, n};
    r->taken += n;
    bt->samples += n;
    if (r->taken == r->num_samples) {
      b->head = (b->head + 1) % b->o.capacity;
      b->count--;
      atomic_store_explicit(&b->queued, b->count, memory_order_relaxed);
    }
  }
  return bt->samples >= max;
}

static void deadline_ts(struct timespec *ts, uint64_t mono_ns) {
  ts->tv_sec = (time_t)(mono_ns / 1000000000ULL);
  ts->tv_nsec = (long)(mono_ns % 1000000000ULL);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* With the lock released, watches the ring for spin_ns: a request that
 * arrives meanwhile is taken without the sleep/wake-up round trip. */
static void spin_for_work(mr_batcher_t *b) {
  pthread_mutex_unlock(&b->mu);
  uint64_t until = mr_clock_ns() + b->o.spin_ns;
  unsigned i = 0;
  while (atomic_load_explicit(&b->queued, memory_order_relaxed) == 0 &&
         !atomic_load_explicit(&b->stopping, memory_order_relaxed)) {
    cpu_relax();
    if (++i % 64 == 0 && mr_clock_ns() >= until) break;
  }
  pthread_mutex_lock(&b->mu);
}

/* Forms the next batch; 0 when stopping with an empty ring. */
static int next_batch(mr_batcher_t *b, mr_batch_t *bt) {
  bt->samples = 0;
  bt->num_slices = 0;
  bt->slot = NULL;
  b->idle++;
  atomic_store_explicit(&b->idle_threads, b->idle, memory_order_release);
  if (b->count == 0 && !b->stop && b->o.spin_ns) spin_for_work(b);
  while (b->count == 0 && !b->stop) pthread_cond_wait(&b->cv, &b->mu);
  b->idle--;
  atomic_store_explicit(&b->idle_threads, b->idle, memory_order_release);
  if (b->count == 0) return 0;
  int closed = take(b, bt, mr_clock_ns());
  if (!closed && b->o.max_delay_ns) {
    uint64_t deadline = bt->slices[0].req->t_recv + b->o.max_delay_ns;
    while (!closed && b->more && !b->stop) {
      if (b->count == 0) {
        struct timespec ts;
        deadline_ts(&ts, deadline);
        if (mr_clock_ns() >= deadline) break;
        int rc = pthread_cond_timedwait(&b->cv, &b->mu, &ts);
        if (rc == ETIMEDOUT && b->count == 0) break;
        continue;
      }
      closed = take(b, bt, mr_clock_ns());
    }
  }
  /* Wake a sibling if work is left for it. */
  if (b->count > 0 && b->o.threads > 1) pthread_cond_signal(&b->cv);
  return 1;
}

/* ---- engine thread ---- */

static void finish(const mr_batch_t *bt, int rc, const mr_err_t *err,
                   uint64_t t_end, mr_batch_done_fn done, void *done_ctx) {
  for (size_t i = 0; i < bt->num_slices; i++) {
    const mr_slice_t *s = &bt->slices[i];
    mr_request_t *r = s->req;
    if (rc) {
      int expected = 0;
      if (atomic_compare_exchange_strong(&r->failed, &expected, 1))
        snprintf(r->error, sizeof r->error, "engine: %s",
                 err->msg[0] ? err->msg : mr_strerror(rc));
    } else {
      for (uint32_t k = s->offset; k < s->offset + s->count; k++)
        r->scores[k] = mr_sigmoid(r->logits[k]);
    }
    uint32_t prev = atomic_fetch_sub_explicit(&r->remaining, s->count,
                                              memory_order_acq_rel);
    if (prev == s->count) {
      r->t_end = t_end;
      done(done_ctx, r);
    }
  }
}

static void *engine_main(void *arg) {
  mr_batcher_thread_t *t = arg;
  mr_batcher_t *b = t->b;
  char name[16];
  snprintf(name, sizeof name, "mr-engine-%u", t->index);
  pthread_setname_np(pthread_self(), name);
  pthread_mutex_lock(&b->mu);
  for (;;) {
    if (!next_batch(b, &t->batch)) break;
    pthread_mutex_unlock(&b->mu);

    mr_batch_t *bt = &t->batch;
    uint64_t t_start = mr_clock_ns();
    for (size_t i = 0; i < bt->num_slices; i++)
      if (bt->slices[i].offset == 0) bt->slices[i].req->t_start = t_start;
    mr_err_t err = {0};
    int rc = b->o.run ? b->o.run(b->o.run_ctx, t->index, bt, &err)
                      : run_engine(t, bt, &err);
    finish(bt, rc, &err, mr_clock_ns(), b->o.done, b->o.done_ctx);
    atomic_fetch_add_explicit(&b->batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->batch_samples, bt->samples,
                              memory_order_relaxed);

    pthread_mutex_lock(&b->mu);
  }
  pthread_mutex_unlock(&b->mu);
  return NULL;
}

/* ---- loop side ---- */

int mr_batcher_start(mr_batcher_t *b, const mr_batcher_opts_t *o,
                     mr_err_t *err) {
  memset(b, 0, sizeof *b);
  if (!o->threads || !o->max_batch || !o->capacity || !o->done)
    return mr_err_set(err, MR_EINVAL,
                      "batcher: expected threads, max_batch and capacity >= 1 "
                      "and a done callback");
  b->o = *o;
  b->ring = calloc(o->capacity, sizeof *b->ring);
  b->threads = calloc(o->threads, sizeof *b->threads);
  if (!b->ring || !b->threads) {
    free(b->ring);
    free(b->threads);
    return mr_err_set(err, MR_ENOMEM, "batcher: no memory for a ring of %zu",
                      o->capacity);
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&b->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&b->mu, NULL);
  b->here.b = b;
  b->here.index = o->threads;
  b->here.batch.slices = calloc(o->max_batch, sizeof *b->here.batch.slices);
  if (!b->here.batch.slices) {
    free(b->ring);
    free(b->threads);
    b->ring = NULL;
    return mr_err_set(err, MR_ENOMEM, "batcher: no memory");
  }
  for (unsigned i = 0; i < o->threads; i++) {
    mr_batcher_thread_t *t = &b->threads[i];
    t->b = b;
    t->index = i;
    t->batch.slices = calloc(o->max_batch, sizeof *t->batch.slices);
    int rc = t->batch.slices ? pthread_create(&t->tid, NULL, engine_main, t)
                             : ENOMEM;
    if (rc) {
      free(t->batch.slices);
      mr_batcher_stop(b);
      return mr_err_set(err, -rc, "batcher: cannot start engine thread %u: %s",
                        i, strerror(rc));
    }
    b->started++;
  }
  return 0;
}

int mr_batcher_push(mr_batcher_t *b, mr_request_t *r) {
  if (mr_batcher_queued(b) + b->num_staged >= b->o.capacity)
    return MR_EOVERLOAD;
  r->taken = 0;
  atomic_store_explicit(&r->remaining, r->num_samples, memory_order_relaxed);
  r->next = NULL;
  if (b->staged_tail) b->staged_tail->next = r;
  else b->staged = r;
  b->staged_tail = r;
  b->num_staged++;
  return 0;
}

void mr_batcher_flush(mr_batcher_t *b, int more_coming) {
  if (b->num_staged == 0 && more_coming == b->more) return;
  pthread_mutex_lock(&b->mu);
  size_t cap = b->o.capacity;
  for (mr_request_t *r = b->staged; r;) {
    mr_request_t *next = r->next;
    r->next = NULL;
    b->ring[(b->head + b->count) % cap] = r;
    b->count++;
    r = next;
  }
  atomic_store_explicit(&b->queued, b->count, memory_order_relaxed);
  b->more = more_coming;
  pthread_cond_signal(&b->cv);
  pthread_mutex_unlock(&b->mu);
  b->staged = b->staged_tail = NULL;
  b->num_staged = 0;
}

int mr_batcher_run_here(mr_batcher_t *b, size_t max_samples,
                        mr_batch_done_fn done, void *ctx) {
  if (max_samples > b->o.max_batch) max_samples = b->o.max_batch;
  if (!b->num_staged || b->num_staged > max_samples) return MR_EAGAIN;
  if (mr_batcher_queued(b) != 0 ||
      atomic_load_explicit(&b->idle_threads, memory_order_acquire) !=
          b->started)
    return MR_EAGAIN; /* the engine threads are at work: join the ring */
  mr_batcher_thread_t *t = &b->here;
  mr_batch_t *bt = &t->batch;
  bt->samples = 0;
  bt->num_slices = 0;
  bt->slot = b->staged->slot;
  for (mr_request_t *r = b->staged; r; r = r->next) {
    if (r->slot != bt->slot) return MR_EAGAIN;
    bt->samples += r->num_samples;
  }
  if (bt->samples > max_samples) return MR_EAGAIN;
  uint64_t now = mr_clock_ns();
  for (mr_request_t *r = b->staged; r; r = r->next) {
    bt->slices[bt->num_slices++] = (mr_slice_t){r, 0, r->num_samples};
    r->taken = r->num_samples;
    r->t_batched = r->t_start = now;
  }
  b->staged = b->staged_tail = NULL;
  b->num_staged = 0;
  mr_err_t err = {0};
  int rc = b->o.run ? b->o.run(b->o.run_ctx, t->index, bt, &err)
                    : run_engine(t, bt, &err);
  finish(bt, rc, &err, mr_clock_ns(), done, ctx);
  atomic_fetch_add_explicit(&b->batches, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&b->batch_samples, bt->samples,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&b->inline_batches, 1, memory_order_relaxed);
  return 0;
}

void mr_batcher_stop(mr_batcher_t *b) {
  if (!b->ring) return;
  mr_batcher_flush(b, 0);
  pthread_mutex_lock(&b->mu);
  b->stop = 1;
  atomic_store(&b->stopping, 1);
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
  for (unsigned i = 0; i < b->started; i++) {
    mr_batcher_thread_t *t = &b->threads[i];
    pthread_join(t->tid, NULL);
    free(t->batch.slices);
    free(t->dense);
    free(t->ids);
    free(t->logits);
  }
  free(b->here.batch.slices);
  free(b->here.dense);
  free(b->here.ids);
  free(b->here.logits);
  memset(&b->here, 0, sizeof b->here);
  pthread_cond_destroy(&b->cv);
  pthread_mutex_destroy(&b->mu);
  free(b->threads);
  free(b->ring);
  b->threads = NULL;
  b->ring = NULL;
  b->started = 0;
}
