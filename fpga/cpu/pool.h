/* Worker threads that share one run of the cpu backend (opts.intra_threads).
 * The caller and up to T - 1 workers execute the same task; the task splits
 * its work into chunks that any thread may claim (mr__cpu_claim_*), so a run
 * completes on the caller alone when the workers are late (descheduled on a
 * busy machine) and nobody ever waits for a thread that has not started.
 * Idle workers spin briefly (back-to-back runs start without a wake-up),
 * then sleep on a condition variable.
 *
 * Private to fpga/cpu/. One run at a time: a caller that finds the pool busy
 * is told so and runs alone. mr__cpu_pool_free joins the workers; no run may
 * be in flight. */
#ifndef MR_CPU_POOL_H
#define MR_CPU_POOL_H

#include <stdatomic.h>
#include <stddef.h>

#include "fpga/err.h"

typedef struct mr_cpu_pool mr_cpu_pool_t;

/* The task: tid 0 is the caller; T = the pool's thread count. */
typedef void (*mr_cpu_task_fn)(void *arg, size_t tid, size_t nthreads);

/* A pool of `threads` threads in all (threads - 1 workers, >= 1). */
int mr__cpu_pool_new(mr_cpu_pool_t **out, size_t threads, mr_err_t *err);
void mr__cpu_pool_free(mr_cpu_pool_t *p);
size_t mr__cpu_pool_threads(const mr_cpu_pool_t *p);

/* Runs fn(arg, 0, T) on the caller's thread and fn(arg, t, T) on every
 * worker t that wakes before the caller's fn returns; returns 0 once no
 * worker is inside the run any more. Returns -1 at once, running nothing,
 * when another caller's run holds the pool. */
int mr__cpu_pool_run(mr_cpu_pool_t *p, mr_cpu_task_fn fn, void *arg);

/* One phase of a task: n chunks, each done by exactly one thread; a phase
 * may start only when the one before it is complete. State (claim flags and
 * the done count) lives in the caller's memory, zeroed before the run. */
typedef struct mr_cpu_phase {
  atomic_uchar *claim; /* n flags */
  atomic_size_t *done;
  size_t n;
} mr_cpu_phase_t;

/* Thread t of T does chunks with fn(ctx, chunk): its own share [n t / T,
 * n (t + 1) / T) first (so a thread keeps the same weights run after run),
 * then any other unclaimed ones; then it waits until all n are done. */
void mr__cpu_phase_run(const mr_cpu_phase_t *ph, size_t t, size_t T,
                       void (*fn)(void *ctx, size_t chunk), void *ctx);

#endif
