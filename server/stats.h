/* Server statistics: per-stage latency histograms, request/sample/error
 * counts, gauges, and jemalloc's memory figures.
 *
 * Stages of an infer request, from its timestamps (monotonic ns): received
 * (frame fully read), batched (taken from the ring by an engine thread),
 * engine start, engine end, written (response handed to the kernel):
 *   queue      received -> batched
 *   batch      batched -> engine start (batch formation)
 *   engine     engine start -> engine end
 *   reply      engine end -> written (wake-up, encode)
 *   server     (received -> written) minus engine: the server's own time
 *   end_to_end received -> written
 *   write      time inside the write system call that handed it over (on
 *              loopback this includes delivering to the peer and waking
 *              it, i.e. part of the network floor, not the server)
 * "written" is the moment the response is handed to the kernel: just
 * before the write call of its loop turn.
 *
 * Threads: the loop thread records (one lock per flushed connection); the
 * admin thread and the loop summarize under the same mutex, one histogram at
 * a time so the loop waits at most one histogram's walk. Gauges and the
 * batch counters are atomics any thread may touch. */
#ifndef MR_STATS_H
#define MR_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"
#include "fpga/histogram.h"

enum {
  MR_STAGE_QUEUE,
  MR_STAGE_BATCH,
  MR_STAGE_ENGINE,
  MR_STAGE_REPLY,
  MR_STAGE_SERVER,
  MR_STAGE_END_TO_END,
  MR_STAGE_WRITE,
  MR_STAGE_COUNT
};
extern const char *const mr_stage_names[MR_STAGE_COUNT];

#define MR_STATUS_COUNT 8 /* proto Status values 0..7 */
const char *mr_status_name(int status);

/* Bucket bounds of the Prometheus histograms, in ns. */
#define MR_PROM_BUCKETS 22
extern const uint64_t mr_prom_bounds_ns[MR_PROM_BUCKETS];

/* What the loop remembers of one response until it is written. */
typedef struct mr_stat_event {
  int status;            /* proto Status */
  int infer;             /* an infer request (has timestamps) */
  uint32_t samples;
  uint64_t t_recv, t_batched, t_start, t_end;
} mr_stat_event_t;

typedef struct mr_stage_summary {
  uint64_t count;
  uint64_t p50, p90, p99, p999, max; /* ns */
  double mean, sum;                  /* ns */
  uint64_t le[MR_PROM_BUCKETS];      /* cumulative counts at the bounds */
} mr_stage_summary_t;

typedef struct mr_stats_summary {
  uint64_t requests, samples;
  uint64_t batches, batch_samples, splits; /* filled by the batcher's owner */
  uint64_t inline_batches;                 /* of which run on the loop */
  uint64_t errors[MR_STATUS_COUNT];
  mr_stage_summary_t stage[MR_STAGE_COUNT];
  uint64_t connections, connections_total, rejected;
  uint64_t uptime_s, reloads, reload_failures, model_generation;
  int ready;
  uint64_t mem_allocated, mem_resident; /* 0 without jemalloc */
  int have_jemalloc;
} mr_stats_summary_t;

typedef struct mr_stats {
  pthread_mutex_t mu;
  mr_hist_t hist[MR_STAGE_COUNT];        /* under mu */
  uint64_t requests, samples;            /* under mu */
  uint64_t errors[MR_STATUS_COUNT];      /* under mu */
  uint64_t start_ns;
  _Atomic uint64_t connections, connections_total, rejected;
  _Atomic uint64_t reloads, reload_failures, model_generation;
  _Atomic int ready;
} mr_stats_t;

int mr_stats_init(mr_stats_t *s, mr_err_t *err);
void mr_stats_free(mr_stats_t *s);

/* Records n written responses; t_written is when they were handed to the
 * kernel, write_ns how long the write call took. Loop thread. */
void mr_stats_record(mr_stats_t *s, const mr_stat_event_t *ev, size_t n,
                     uint64_t t_written, uint64_t write_ns);

/* Fills out, except the batch counters (any thread). */
void mr_stats_summarize(mr_stats_t *s, mr_stats_summary_t *out);

/* jemalloc's stats.allocated and stats.resident after an epoch refresh;
 * returns 0 (and zeros) when jemalloc is not the allocator (SAN builds). */
int mr_stats_memory(uint64_t *allocated, uint64_t *resident);

#endif
