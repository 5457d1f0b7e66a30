/* Will the model fit in memory? mr_engine_estimate_bytes works out what an
 * engine will hold for a model from the model's shapes and the plan, BEFORE
 * anything large is allocated; mr_mem_available reads what this process may
 * still take (MemAvailable in /proc/meminfo, and the room left under the
 * memory.max of its cgroup and of every parent cgroup, cgroup v2). mr_mem_check
 * compares the two, so that a model too large fails at start with a message
 * giving both numbers, instead of the machine swapping or the OOM killer
 * ending the process half-way through the load.
 *
 * The environment variable MR_MEM_AVAILABLE (bytes, K/M/G suffixes allowed)
 * replaces what mr_mem_available would read; tests use it to fake a small
 * machine, and an operator may use it to leave room for other programs.
 *
 * Ownership: plain values, nothing allocated is kept. Threads: no shared
 * state; any thread (the server checks on its reload worker too). */
#ifndef MR_MEMCHECK_H
#define MR_MEMCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/engine.h"
#include "fpga/err.h"
#include "fpga/model.h"

#define MR_MEM_UNKNOWN UINT64_MAX

/* An engine's memory for one model, in bytes. */
typedef struct mr_mem_estimate {
  uint64_t tables;   /* the logical embedding tables as the engine stores
                        them (fp32, or int8 rows with their scales) */
  uint64_t products; /* extra bytes of the plan's Cartesian products */
  uint64_t weights;  /* MLP weights and biases as packed */
  uint64_t scratch;  /* working memory of every thread together */
  uint64_t total;    /* the sum, rounded up to whole huge pages */
} mr_mem_estimate_t;

/* Estimates what mr_engine_open(m, o) plus `scratches` scratches (one per
 * thread that will run the engine) will allocate. Costs one planner run (as
 * the engine's own open does) and no large allocation. MR_EINVAL for an
 * unknown backend or precision, with err saying what was expected. For the
 * fpga backends the figure is host memory: the bank images the kernel is
 * fed (fpga-sim keeps them; fpga holds them and XRT's copy while it
 * uploads). */
int mr_engine_estimate_bytes(const mr_model_t *m, const mr_engine_opts_t *o,
                             unsigned scratches, mr_mem_estimate_t *out,
                             mr_err_t *err);

/* What the process may still take, in bytes. */
typedef struct mr_mem_avail {
  uint64_t bytes;          /* the least of the figures below */
  uint64_t mem_available;  /* /proc/meminfo MemAvailable (MR_MEM_UNKNOWN) */
  uint64_t cgroup_max;     /* tightest cgroup: its memory.max ... */
  uint64_t cgroup_current; /* ... and memory.current (MR_MEM_UNKNOWN: none) */
  char cgroup[512];        /* its path under the cgroup root; "" = no limit */
  int overridden;          /* bytes came from MR_MEM_AVAILABLE */
} mr_mem_avail_t;

/* Where mr_mem_available reads; tests point these at files of their own. */
typedef struct mr_mem_sources {
  const char *meminfo;     /* "/proc/meminfo" */
  const char *self_cgroup; /* "/proc/self/cgroup" */
  const char *cgroup_root; /* "/sys/fs/cgroup" */
} mr_mem_sources_t;

/* Reads what is available from src (NULL: the real files, and the
 * MR_MEM_AVAILABLE override first). Never fails: a figure it cannot read is
 * MR_MEM_UNKNOWN, and bytes is MR_MEM_UNKNOWN when none could be read. */
void mr_mem_available(mr_mem_avail_t *out, const mr_mem_sources_t *src);

/* MR_ENOMEM when need->total > avail->bytes, with err naming what (e.g. the
 * model's path), how much it needs and of what, how much is available and
 * where that figure came from, and what to do; 0 otherwise. */
int mr_mem_check_fits(const mr_mem_estimate_t *need,
                      const mr_mem_avail_t *avail, const char *what,
                      mr_err_t *err);

/* mr_engine_estimate_bytes, mr_mem_available(NULL) and mr_mem_check_fits in
 * one call: what the server and `microrec score` call before opening an
 * engine. On success *need (when not NULL) receives the estimate. */
int mr_mem_check(const mr_model_t *m, const mr_engine_opts_t *o,
                 unsigned scratches, const char *what,
                 mr_mem_estimate_t *need, mr_err_t *err);

/* "1.5 GiB", "300.0 MiB", "512 B" into buf. */
const char *mr_mem_format(char *buf, size_t len, uint64_t bytes);

#endif
