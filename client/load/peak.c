/* Peak search (see peak.h). */
#include "client/load/peak.h"

#include <string.h>

int mr_peak_search(const mr_peak_opts_t *o, mr_peak_try_fn try_fn, void *ctx,
                   mr_peak_result_t *res, mr_err_t *err) {
  memset(res, 0, sizeof *res);
  if (!(o->start_rate > 0) || !(o->max_rate >= o->start_rate) ||
      !(o->min_rate > 0) || !(o->precision > 0) || o->max_steps < 1)
    return mr_err_set(err, MR_EINVAL,
                      "peak search needs 0 < min rate, 0 < start rate <= max "
                      "rate, precision > 0 and at least one step");
  double lo = 0, hi = 0, r = o->start_rate;
  int retries = o->retries;
  while (res->steps < o->max_steps) {
    /* Bracketing: grow while passing, shrink while failing; then bisect. */
    if (lo > 0 && hi > 0) {
      if (hi - lo <= o->precision * lo) break;
      r = (lo + hi) / 2;
    }
    mr_peak_verdict_t v;
    int rc = try_fn(ctx, r, &v, err);
    res->steps++;
    if (rc < 0) return rc;
    if (v == MR_PEAK_LIMITED) {
      if (retries-- > 0) continue;  /* same rate again */
      res->limited = 1;
      break;
    }
    if (v == MR_PEAK_PASS) {
      lo = r;
      if (hi == 0) {
        if (r >= o->max_rate) {
          res->capped = 1;
          break;
        }
        r = r * 2 < o->max_rate ? r * 2 : o->max_rate;
      }
    } else {
      hi = r;
      if (lo == 0) {
        if (r / 2 < o->min_rate) break;
        r /= 2;
      }
    }
  }
  res->peak = lo;
  res->above = hi;
  return 0;
}
