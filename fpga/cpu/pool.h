/* Worker threads that share one run of the cpu backend (opts.intra_threads):
 * the caller and T - 1 workers execute the same task, split by samples or
 * by output panels, meeting at spinning barriers between layers. Idle
 * workers spin briefly (so back-to-back runs start without a wake-up), then
 * sleep on a condition variable.
 *
 * Private to fpga/cpu/. One run at a time: a caller that finds the pool busy
 * is told so and runs alone. mr__cpu_pool_free joins the workers; no run may
 * be in flight. */
#ifndef MR_CPU_POOL_H
#define MR_CPU_POOL_H

#include <stddef.h>

#include "fpga/err.h"

typedef struct mr_cpu_pool mr_cpu_pool_t;

/* The task every thread of a run executes: tid 0 is the caller. */
typedef void (*mr_cpu_task_fn)(void *arg, size_t tid, size_t nthreads);

/* A pool of `threads` threads in all (threads - 1 workers, >= 1). */
int mr__cpu_pool_new(mr_cpu_pool_t **out, size_t threads, mr_err_t *err);
void mr__cpu_pool_free(mr_cpu_pool_t *p);
size_t mr__cpu_pool_threads(const mr_cpu_pool_t *p);

/* Runs fn(arg, t, T) on every thread, t = 0 on the caller's, and returns
 * once all have returned: 0. Returns -1 at once, running nothing, when
 * another caller's run holds the pool. */
int mr__cpu_pool_run(mr_cpu_pool_t *p, mr_cpu_task_fn fn, void *arg);

/* Inside a task: waits until every thread of the run has arrived. */
void mr__cpu_pool_barrier(mr_cpu_pool_t *p);

#endif
