/* The intra-run worker pool (see pool.h). */
#include "fpga/cpu/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* How long an idle worker spins before it sleeps. */
#define SPIN_NS 200000
/* Waiting on another thread: spin (it is normally microseconds away), but
 * past YIELD_NS give the core away on every try, so a descheduled partner
 * on an oversubscribed machine gets to run. */
#define YIELD_NS 20000

/* ticket: run number << 32 | CLOSED | threads inside the run. */
#define CLOSED ((uint64_t)1 << 31)
#define ACTIVE ((uint64_t)CLOSED - 1)

struct mr_cpu_pool {
  size_t threads;
  pthread_t *tids;
  size_t started;
  pthread_mutex_t busy; /* held by the caller of the run in flight */
  pthread_mutex_t lock; /* with wake: sleeping workers */
  pthread_cond_t wake;
  uint32_t runs;               /* the caller's count (under busy) */
  atomic_uint_fast32_t posted; /* the run workers should join */
  atomic_uint_fast64_t ticket;
  atomic_int stop;
  mr_cpu_task_fn fn;
  void *arg;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct backoff {
  unsigned spins;
  uint64_t t0;
  int yielding;
} backoff_t;

static void backoff(backoff_t *b) {
  if (b->yielding) {
    sched_yield();
    return;
  }
  cpu_relax();
  if (++b->spins % 64 == 0) {
    uint64_t t = now_ns();
    if (!b->t0) b->t0 = t;
    else if (t - b->t0 > YIELD_NS) b->yielding = 1;
  }
}

/* Enters run `run` unless the caller has closed it (or moved on). */
static int enter(mr_cpu_pool_t *p, uint32_t run) {
  uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
  for (;;) {
    if ((uint32_t)(t >> 32) != run || (t & CLOSED)) return 0;
    if (atomic_compare_exchange_weak_explicit(&p->ticket, &t, t + 1,
                                              memory_order_acq_rel,
                                              memory_order_acquire))
      return 1;
  }
}

typedef struct worker_arg {
  mr_cpu_pool_t *p;
  size_t tid;
} worker_arg_t;

static void *worker(void *a_) {
  worker_arg_t *a = a_;
  mr_cpu_pool_t *p = a->p;
  size_t tid = a->tid;
  free(a);
  uint32_t seen = 0; /* runs are numbered from 1 */
  for (;;) {
    uint64_t t0 = now_ns();
    unsigned spins = 0;
    while (atomic_load_explicit(&p->posted, memory_order_acquire) == seen &&
           !atomic_load(&p->stop)) {
      cpu_relax();
      if (++spins % 256 == 0 && now_ns() - t0 > SPIN_NS) {
        pthread_mutex_lock(&p->lock);
        while (atomic_load(&p->posted) == seen && !atomic_load(&p->stop))
          pthread_cond_wait(&p->wake, &p->lock);
        pthread_mutex_unlock(&p->lock);
      }
    }
    if (atomic_load(&p->stop)) return NULL;
    seen = (uint32_t)atomic_load(&p->posted);
    if (!enter(p, seen)) continue; /* too late: the caller did it all */
    p->fn(p->arg, tid, p->threads);
    atomic_fetch_sub_explicit(&p->ticket, 1, memory_order_release);
  }
}

void mr__cpu_pool_free(mr_cpu_pool_t *p) {
  if (!p) return;
  pthread_mutex_lock(&p->lock);
  atomic_store(&p->stop, 1);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  for (size_t i = 0; i < p->started; i++) pthread_join(p->tids[i], NULL);
  pthread_mutex_destroy(&p->busy);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->wake);
  free(p->tids);
  free(p);
}

int mr__cpu_pool_new(mr_cpu_pool_t **out, size_t threads, mr_err_t *err) {
  *out = NULL;
  mr_cpu_pool_t *p = calloc(1, sizeof *p);
  if (!p || threads < 1 || !(p->tids = calloc(threads, sizeof *p->tids))) {
    free(p);
    return mr_err_set(err, MR_ENOMEM, "cpu engine: out of memory for a pool");
  }
  p->threads = threads;
  pthread_mutex_init(&p->busy, NULL);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->wake, NULL);
  for (size_t i = 1; i < threads; i++) {
    worker_arg_t *a = malloc(sizeof *a);
    if (a) *a = (worker_arg_t){.p = p, .tid = i};
    int rc = a ? pthread_create(&p->tids[p->started], NULL, worker, a) : -1;
    if (rc != 0) {
      free(a);
      mr__cpu_pool_free(p);
      return mr_err_set(err, MR_ENOMEM,
                        "cpu engine: cannot start intra-run worker %zu of %zu",
                        i, threads - 1);
    }
    p->started++;
  }
  *out = p;
  return 0;
}

size_t mr__cpu_pool_threads(const mr_cpu_pool_t *p) { return p->threads; }

int mr__cpu_pool_run(mr_cpu_pool_t *p, mr_cpu_task_fn fn, void *arg) {
  if (pthread_mutex_trylock(&p->busy) != 0) return -1;
  uint32_t run = ++p->runs;
  if (run == 0) run = ++p->runs; /* 0 is the workers' "none seen" */
  p->fn = fn;
  p->arg = arg;
  atomic_store_explicit(&p->ticket, (uint64_t)run << 32, memory_order_release);
  pthread_mutex_lock(&p->lock);
  atomic_store_explicit(&p->posted, run, memory_order_release);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  fn(arg, 0, p->threads);
  /* No worker may enter from now on; wait for those inside to leave. */
  atomic_fetch_or_explicit(&p->ticket, CLOSED, memory_order_acq_rel);
  backoff_t b = {0};
  while (atomic_load_explicit(&p->ticket, memory_order_acquire) & ACTIVE) backoff(&b);
  pthread_mutex_unlock(&p->busy);
  return 0;
}

static void do_chunk(const mr_cpu_phase_t *ph, size_t c,
                     void (*fn)(void *, size_t), void *ctx) {
  if (atomic_exchange_explicit(&ph->claim[c], 1, memory_order_acquire)) return;
  fn(ctx, c);
  atomic_fetch_add_explicit(ph->done, 1, memory_order_release);
}

void mr__cpu_phase_run(const mr_cpu_phase_t *ph, size_t t, size_t T,
                       void (*fn)(void *ctx, size_t chunk), void *ctx) {
  size_t n = ph->n, b = n * t / T, e = n * (t + 1) / T;
  for (size_t c = b; c < e; c++) do_chunk(ph, c, fn, ctx);
  for (size_t k = 0; k < n - (e - b); k++) do_chunk(ph, (e + k) % n, fn, ctx);
  backoff_t bo = {0};
  while (atomic_load_explicit(ph->done, memory_order_acquire) < n) backoff(&bo);
}
