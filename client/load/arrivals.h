/* When each request of an open-loop run is due: a constant rate (request i
 * at start + i / rate, computed from i so rounding never drifts) or a
 * Poisson process (exponential gaps of mean 1 / rate, as independent users
 * produce). Times are CLOCK_MONOTONIC nanoseconds.
 * Ownership: a plain value used by one thread (the sender). */
#ifndef MR_LOAD_ARRIVALS_H
#define MR_LOAD_ARRIVALS_H

#include <stdint.h>

#include "client/load/rng.h"

typedef enum mr_arrivals_kind {
  MR_ARRIVALS_CONSTANT = 0,
  MR_ARRIVALS_POISSON = 1,
} mr_arrivals_kind_t;

typedef struct mr_arrivals {
  mr_arrivals_kind_t kind;
  double rate;        /* requests per second, > 0 */
  uint64_t start_ns;
  uint64_t i;         /* requests handed out so far */
  double t_ns;        /* Poisson: offset of the next arrival from start */
  mr_rng_t rng;
} mr_arrivals_t;

void mr_arrivals_init(mr_arrivals_t *a, mr_arrivals_kind_t kind, double rate,
                      uint64_t start_ns, uint64_t seed);

/* Due time of the next request; advances the schedule. */
uint64_t mr_arrivals_next(mr_arrivals_t *a);

/* Parses "constant" or "poisson"; -1 for anything else. */
int mr_arrivals_parse(const char *s);
const char *mr_arrivals_name(mr_arrivals_kind_t k);

#endif
