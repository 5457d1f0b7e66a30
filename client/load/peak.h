/* The search behind --find-peak, as MLPerf LoadGen's server scenario does
 * it: the highest rate whose short run still meets the latency bound.
 * Exponential growth from the start rate (halving instead when the start
 * already fails) brackets the peak, then bisection narrows the bracket to
 * the wanted precision. Each step is a call to `try`, which runs the load
 * and judges it; the search itself is pure and bounded by max_steps.
 * Ownership: nothing allocated; ctx is the caller's. Single thread. */
#ifndef MR_LOAD_PEAK_H
#define MR_LOAD_PEAK_H

#include "fpga/err.h"

typedef enum mr_peak_verdict {
  MR_PEAK_PASS = 0,     /* met the bound */
  MR_PEAK_FAIL = 1,     /* missed it */
  MR_PEAK_LIMITED = 2,  /* the generator itself fell behind: stop here */
} mr_peak_verdict_t;

/* Runs one step at `rate`; sets *verdict. A negative return aborts the
 * search with that code. */
typedef int (*mr_peak_try_fn)(void *ctx, double rate,
                              mr_peak_verdict_t *verdict, mr_err_t *err);

typedef struct mr_peak_opts {
  double start_rate;   /* > 0 */
  double max_rate;     /* growth stops here */
  double min_rate;     /* halving stops here: below, the peak is 0 */
  double precision;    /* stop when hi - lo <= precision * lo */
  int max_steps;
  int retries;         /* times a step the generator could not keep is run
                          again before the search gives up (a busy moment
                          of the machine passes) */
} mr_peak_opts_t;

typedef struct mr_peak_result {
  double peak;         /* highest passing rate; 0 if none passed */
  double above;        /* lowest failing rate seen; 0 if none failed */
  int steps;
  int limited;         /* stopped because the generator fell behind */
  int capped;          /* every rate up to max_rate passed */
} mr_peak_result_t;

int mr_peak_search(const mr_peak_opts_t *o, mr_peak_try_fn try_fn, void *ctx,
                   mr_peak_result_t *res, mr_err_t *err);

#endif
