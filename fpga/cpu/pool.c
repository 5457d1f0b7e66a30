/* The intra-run worker pool (see pool.h). */
#include "fpga/cpu/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* How long an idle worker spins before it sleeps. */
#define SPIN_NS 200000

struct mr_cpu_pool {
  size_t threads;
  pthread_t *tids;
  size_t started;
  pthread_mutex_t busy; /* held by the caller of the run in flight */
  pthread_mutex_t lock; /* with wake: sleeping workers */
  pthread_cond_t wake;
  atomic_uint_fast64_t gen; /* bumped for each run */
  atomic_int stop;
  mr_cpu_task_fn fn;
  void *arg;
  atomic_size_t done;
  atomic_size_t bar_count;
  atomic_uint_fast64_t bar_gen;
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

/* Waiting on another thread of the run: spin (it is normally a few
 * microseconds away), but past YIELD_NS give the core away on every try,
 * so that a descheduled partner on an oversubscribed machine gets to run
 * instead of waiting out our whole time slice. */
#define YIELD_NS 50000

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

typedef struct worker_arg {
  mr_cpu_pool_t *p;
  size_t tid;
} worker_arg_t;

static void *worker(void *a_) {
  worker_arg_t *a = a_;
  mr_cpu_pool_t *p = a->p;
  size_t tid = a->tid;
  free(a);
  uint64_t seen = 0; /* runs are numbered from 1 */
  for (;;) {
    /* Spin, then sleep, until a new run (or stop) is posted. */
    uint64_t t0 = now_ns();
    unsigned spins = 0;
    while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen &&
           !atomic_load(&p->stop)) {
      cpu_relax();
      if (++spins % 256 == 0 && now_ns() - t0 > SPIN_NS) {
        pthread_mutex_lock(&p->lock);
        while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
          pthread_cond_wait(&p->wake, &p->lock);
        pthread_mutex_unlock(&p->lock);
      }
    }
    if (atomic_load(&p->stop)) return NULL;
    seen = atomic_load(&p->gen);
    p->fn(p->arg, tid, p->threads);
    atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
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
  p->fn = fn;
  p->arg = arg;
  atomic_store(&p->done, 0);
  atomic_store(&p->bar_count, 0);
  pthread_mutex_lock(&p->lock);
  atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  fn(arg, 0, p->threads);
  backoff_t b = {0};
  while (atomic_load_explicit(&p->done, memory_order_acquire) + 1 < p->threads)
    backoff(&b);
  pthread_mutex_unlock(&p->busy);
  return 0;
}

void mr__cpu_pool_barrier(mr_cpu_pool_t *p) {
  uint64_t g = atomic_load_explicit(&p->bar_gen, memory_order_acquire);
  if (atomic_fetch_add_explicit(&p->bar_count, 1, memory_order_acq_rel) + 1 ==
      p->threads) {
    atomic_store_explicit(&p->bar_count, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->bar_gen, 1, memory_order_release);
    return;
  }
  backoff_t b = {0};
  while (atomic_load_explicit(&p->bar_gen, memory_order_acquire) == g) backoff(&b);
}
