/* One load run against microrecd: open loop (requests due on a schedule,
 * latency measured from the time each was *due*, so a stalled server
 * cannot hide its stall: no coordinated omission) or closed loop (N
 * requests in flight, each answer sends the next).
 *
 * Threads: mr_load_run runs a libuv loop in the calling thread that reads
 * and decodes every response; in open loop a second thread, the sender,
 * sleeps to each due time with nanosecond timers (libuv's are millisecond)
 * and writes the requests itself, so reading never delays a send nor a
 * send a read. Each connection's bytes out belong to one writer thread, a
 * request's slot passes from writer to reader through an atomic id.
 *
 * Time is bounded: sends stop at warmup + duration, answers are waited for
 * at most `timeout` more; what has no answer then is an error (timeout).
 * Ownership: the caller owns conf (and its pool) and the result; the
 * result's histograms are freed by mr_load_result_free. */
#ifndef MR_LOAD_RUNNER_H
#define MR_LOAD_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#include "client/load/arrivals.h"
#include "client/load/pool.h"
#include "fpga/err.h"
#include "fpga/histogram.h"

/* Server statuses counted by code; a code above the last known goes in
 * the extra last counter. */
#define MR_LOAD_NUM_STATUS 8

typedef struct mr_load_conf {
  const char *host;
  uint16_t port;
  size_t connections;           /* >= 1 */
  double rate;                  /* > 0: open loop at this many requests/s */
  size_t concurrency;           /* rate == 0: closed loop, this many in flight */
  mr_arrivals_kind_t arrivals;
  double duration_s;            /* measured window, > 0 */
  double warmup_s;              /* before it, sent but not measured */
  double timeout_s;             /* connect timeout, and wait for answers */
  double lag_bound_us;          /* a send later than this past its due time
                                   is late (the generator's own fault) */
  double spin_us;               /* open loop: wake this early and spin to
                                   the due time (0: sleep only) */
  uint64_t seed;
  const mr_pool_t *pool;
} mr_load_conf_t;

typedef struct mr_load_result {
  double duration_s;
  uint64_t requests;            /* measured requests: due in the window */
  uint64_t ok;                  /* answered OK */
  uint64_t by_status[MR_LOAD_NUM_STATUS + 1]; /* answered, by status code */
  uint64_t timeouts;            /* no answer before the deadline */
  uint64_t closed;              /* the connection closed before the answer */
  uint64_t dropped;             /* never sent: client backlog full */
  uint64_t errors;              /* all measured requests not answered OK */
  uint64_t answered_in_window;  /* answers (to any request) in the window */
  double achieved_rate;         /* answered_in_window / duration */
  uint64_t unexpected;          /* answers whose id was not in flight */
  uint64_t late_sends;          /* measured sends later than lag_bound_us */
  int open_loop;
  mr_hist_t latency;            /* ns: OK answers of measured requests,
                                   and timeouts at their wait (a lower
                                   bound) */
  mr_hist_t lag;                /* ns: due -> handed to the socket (open) */
  char conn_error[256];         /* first connection failure, "" if none */
} mr_load_result_t;

/* Runs the load described by c. Returns 0 when the run happened (even with
 * errors: they are in r), or a negative code when it could not run (no
 * connection, no memory); err says which. r must be freed either way. */
int mr_load_run(const mr_load_conf_t *c, mr_load_result_t *r, mr_err_t *err);
void mr_load_result_free(mr_load_result_t *r);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t mr_load_now_ns(void);

/* Opens a TCP connection to host:port within timeout_ms: returns a
 * non-blocking fd with TCP_NODELAY (the caller closes it), or a negative
 * code with err naming the address. */
int mr_load_connect(const char *host, uint16_t port, int timeout_ms,
                    mr_err_t *err);

#endif
