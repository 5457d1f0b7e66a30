/* microrecd's core: the libuv loop and everything that lives on it: the
 * listener, the connections, the request pool, the batcher and its
 * completion queue, the served model slot, reloads, signals and statistics.
 *
 * Loop turn: timers (sweep) -> pending -> idle (frames left over by the
 * budget) -> poll (reads, completions) -> check: publish this turn's
 * requests to the batcher, then write each connection's output once.
 *
 * Threads: everything here is the loop thread's, except the batcher's
 * engine threads (batcher.h), the reload worker (libuv's pool) and the
 * admin thread (admin.h, which reads stats only). */
#ifndef MR_SERVER_H
#define MR_SERVER_H

#include <uv.h>

#include "server/admin.h"
#include "server/batcher.h"
#include "server/config.h"
#include "server/conn.h"
#include "server/cq.h"
#include "server/list.h"
#include "server/request.h"
#include "server/slot.h"
#include "server/stats.h"

typedef struct mr_server {
  uv_loop_t *loop;
  mr_config_t cfg;
  uv_tcp_t listener;
  int listening;
  mr_addr_t bound;        /* actual listen address */
  uv_check_t check;
  uv_idle_t idle;         /* on while frames are pending or we busy-poll */
  int idle_on;
  size_t engine_inflight; /* requests pushed and not yet completed */
  uint64_t poll_until;    /* busy-poll the completion queue until then */
  uv_timer_t sweep;
  uv_signal_t sig_term, sig_int, sig_hup;
  mr_cq_t cq;
  mr_batcher_t batcher;
  int batcher_on;
  mr_request_pool_t pool;
  mr_stats_t stats;
  mr_admin_t *admin;

  mr_slot_t *current;     /* model being served; NULL until loaded */
  uint64_t generation;
  int reloading;
  int reload_again;       /* SIGHUP during a reload: reload once more after */
  uv_work_t reload_work;
  mr_slot_t *reload_slot;
  mr_err_t reload_err;
  uint64_t closing_slots; /* slots being closed on the worker pool */

  mr_link_t conns;        /* open connections (mr_conn_t.all) */
  mr_link_t dirty;        /* output to write this turn (mr_conn_t.dirty) */
  mr_link_t pending;      /* frames left by the budget (mr_conn_t.pending) */
  size_t num_counted;     /* connections counted against the limit */
  size_t live_conns;      /* mr_conn_t allocated, incl. closed ones whose
                             requests are still at the engine */
  uint64_t next_serial;

  int draining;
  int finished;
  int handles_open;
} mr_server_t;

/* Loads the model (and warms it up), starts the engine threads and the
 * admin port, and listens; prints `listening HOST:PORT` (and `admin
 * HOST:PORT`) on stdout. On failure err says what, and the server is torn
 * down (no mr_server_close needed). */
int mr_server_start(mr_server_t *s, uv_loop_t *loop, const mr_config_t *cfg,
                    mr_err_t *err);
/* Runs the loop until the server has stopped (after SIGTERM/SIGINT). */
int mr_server_run(mr_server_t *s);
/* Frees what is left after mr_server_run returned. */
void mr_server_free(mr_server_t *s);

/* Stop accepting, answer every accepted request, then stop (as SIGTERM). */
void mr_server_drain(mr_server_t *s);
/* Load the model again beside the current one and swap it in (as SIGHUP). */
void mr_server_reload(mr_server_t *s);

/* ---- for conn.c (loop thread) ---- */
void mr__server_mark_dirty(mr_server_t *s, mr_conn_t *c);
void mr__server_mark_pending(mr_server_t *s, mr_conn_t *c);
void mr__server_unmark(mr_server_t *s, mr_conn_t *c);
/* A request went to the batcher (its completion will come back). */
void mr__server_pushed(mr_server_t *s);
/* Takes a reference on the current slot (NULL if none). */
mr_slot_t *mr__server_slot_ref(mr_server_t *s);
void mr__server_slot_unref(mr_server_t *s, mr_slot_t *slot);
/* Releases r's slot and returns r to the pool. */
void mr__server_recycle(mr_server_t *s, mr_request_t *r);
/* A connection's memory was freed; the server may finish stopping. */
void mr__server_conn_gone(mr_server_t *s);
/* Stats with the batcher's counters filled in (any thread). */
void mr__server_summarize(void *server, mr_stats_summary_t *out);

#endif
