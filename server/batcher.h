/* Micro-batching: a bounded ring of validated infer requests between the
 * loop thread and the engine threads, and the threads that form batches from
 * it and run them.
 *
 * Batch formation. An engine thread sleeps until the ring holds a request,
 * then takes requests from its head into one batch until the batch holds
 * max_batch samples or the ring is empty. A request with more samples than
 * the batch has room for is split: the batch takes what fits and leaves the
 * rest at the head for the next batch (possibly on another engine thread);
 * small requests are joined. A batch holds requests of one model slot only
 * (a reload changes the slot).
 *
 * Latency/throughput choice. When the ring runs empty the batch is closed at
 * once, *unless* the loop has said that more requests are already on the way
 * (it stopped a connection's frames at its per-turn budget and will push them
 * next turn); only then does the thread linger, until the oldest request of
 * the batch has waited max_delay_us or the batch fills. So a batch-1 request
 * at low load pays no batching delay at all, while under load batches grow
 * by themselves: requests pile up in the ring while the engine runs the
 * previous batch, and the next batch takes them all (up to max_batch). A
 * fixed linger (as in Triton's max_queue_delay) would add max_delay_us to
 * every lone request and buy throughput only in the narrow band where the
 * engine is idle anyway. The loop publishes the requests of one loop turn
 * together (mr_batcher_flush, one lock and one wake-up), so everything that
 * arrived in one turn can share a batch.
 *
 * Low load. Handing a request to an engine thread and its result back costs
 * two thread wake-ups (futex, eventfd), each 5-50 us on a small VM: more
 * than the server's whole latency budget. So when every engine thread is
 * idle and the ring is empty, a loop turn whose requests are small (at most
 * inline_max_samples, server's choice) runs them on the loop thread itself
 * (mr_batcher_run_here): no hand-off, no wake-up. The loop is busy for that
 * engine run, which is why the size is capped; as soon as load builds, the
 * engine threads are busy or the turn is bigger, and requests go through
 * the ring as above. --inline-max-samples 0 turns it off. Measured on the
 * 2-core dev VM (dlrm-criteo-small, batch-1 requests one at a time, engine
 * ~30 us): the server's own time (received -> handed to the kernel, minus
 * engine) was p50 1.8 us / p99 4.5 us inline, against p50 28 us / p99
 * 221 us through an engine thread (each wake-up 10-100 us there).
 *
 * When requests do go to the engine threads, the loop busy-polls the
 * completion queue for --busy-poll-us (default 50) after the push instead
 * of sleeping in epoll, which saves the eventfd wake-up on the way back;
 * --engine-spin-us (default 0) does the same for an idle engine thread
 * waiting for work, at the price of a spinning core, which a 2-core box
 * shared with its clients cannot afford by default.
 *
 * Full ring: mr_batcher_push refuses (MR_EOVERLOAD) when the ring plus the
 * requests staged this turn reach `capacity` requests; the loop answers
 * OVERLOADED at once; nothing is queued without bound.
 *
 * Completion: the engine thread that finishes a request's last sample calls
 * opts.done (on that engine thread) with the request, whose logits, scores
 * and t_batched/t_start/t_end are then final (or `failed` is set with
 * `error`). server.c's done pushes to the completion queue (cq.h).
 *
 * Threads and ownership: push/flush on the loop thread only; the request
 * belongs to the batcher from push until done. Engine thread i uses the
 * slot's scratch[i]. mr_batcher_stop lets the threads finish what is in the
 * ring, then joins them. */
#ifndef MR_BATCHER_H
#define MR_BATCHER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"
#include "server/request.h"

typedef struct mr_slice {
  mr_request_t *req;
  uint32_t offset, count; /* samples [offset, offset + count) of req */
} mr_slice_t;

typedef struct mr_batch {
  struct mr_slot *slot;
  size_t samples;
  size_t num_slices;
  mr_slice_t *slices; /* room for max_batch */
} mr_batch_t;

/* Runs a batch: fills slices' logits (req->logits[offset..]). 0 or an error
 * (every request of the batch then fails with err's message). Engine
 * thread `thread`. */
typedef int (*mr_batch_run_fn)(void *ctx, unsigned thread, const mr_batch_t *b,
                               mr_err_t *err);
/* A request is done (engine thread). */
typedef void (*mr_batch_done_fn)(void *ctx, mr_request_t *r);

typedef struct mr_batcher_opts {
  unsigned threads;      /* engine threads, >= 1 */
  size_t max_batch;      /* samples per batch, >= 1 */
  uint64_t max_delay_ns; /* linger bound (see above) */
  size_t capacity;       /* requests in the ring, >= 1 */
  uint64_t spin_ns;      /* idle engine thread spins this long first */
  mr_batch_run_fn run;   /* NULL: run on the engine of the batch's slot */
  void *run_ctx;
  mr_batch_done_fn done;
  void *done_ctx;
} mr_batcher_opts_t;

/* An engine thread's state (also the loop's, for mr_batcher_run_here). */
typedef struct mr_batcher_thread {
  struct mr_batcher *b;
  unsigned index;       /* scratch index in the slot */
  pthread_t tid;
  mr_batch_t batch;
  /* gather buffers for batches of several slices; grown, never shrunk */
  float *dense;
  int64_t *ids;
  float *logits;
  size_t dense_cap, ids_cap, logits_cap;
} mr_batcher_thread_t;

typedef struct mr_batcher {
  mr_batcher_opts_t o;
  pthread_mutex_t mu;
  pthread_cond_t cv;      /* ring became non-empty, `more` dropped, stop */
  mr_request_t **ring;
  size_t head, count;     /* under mu */
  _Atomic size_t queued;  /* = count, readable without mu */
  int more;               /* under mu: the loop has more on the way */
  int stop;               /* under mu */
  _Atomic int stopping;   /* = stop, readable without mu */
  mr_request_t *staged, *staged_tail; /* loop thread only */
  size_t num_staged;
  mr_batcher_thread_t *threads;
  unsigned started;
  unsigned idle;                /* under mu: threads waiting for work */
  _Atomic unsigned idle_threads;/* = idle, readable without mu */
  mr_batcher_thread_t here;     /* the loop's, for mr_batcher_run_here */
  _Atomic uint64_t batches, batch_samples, splits, inline_batches;
} mr_batcher_t;

/* Allocates the ring and starts the engine threads. */
int mr_batcher_start(mr_batcher_t *b, const mr_batcher_opts_t *o,
                     mr_err_t *err);
/* Stages r (its infer fields validated, r->slot set) for the next flush.
 * MR_EOVERLOAD when the ring is full. Loop thread. */
int mr_batcher_push(mr_batcher_t *b, mr_request_t *r);
/* Publishes the staged requests (one lock, one wake-up) and whether more
 * are on the way (see "Latency/throughput choice"). Loop thread. */
void mr_batcher_flush(mr_batcher_t *b, int more_coming);
/* The low-load fast path: if every engine thread is idle and the ring is
 * empty, runs the staged requests (at most max_samples, one slot) as
 * one batch right here on the calling (loop) thread with scratch index
 * `threads`, calling done for each; else MR_EAGAIN and nothing changes (the
 * caller flushes as usual). No thread hand-off at all: see "Low load" above.
 * Loop thread. */
int mr_batcher_run_here(mr_batcher_t *b, size_t max_samples,
                        mr_batch_done_fn done, void *ctx);
/* Requests in the ring (approximate outside the loop thread). */
static inline size_t mr_batcher_queued(mr_batcher_t *b) {
  return atomic_load_explicit(&b->queued, memory_order_relaxed);
}
/* Flushes, lets the threads empty the ring, joins them, frees the ring. */
void mr_batcher_stop(mr_batcher_t *b);

#endif
