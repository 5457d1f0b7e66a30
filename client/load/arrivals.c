/* Arrival schedules (see arrivals.h). */
#include "client/load/arrivals.h"

#include <math.h>
#include <string.h>

void mr_arrivals_init(mr_arrivals_t *a, mr_arrivals_kind_t kind, double rate,
                      uint64_t start_ns, uint64_t seed) {
  memset(a, 0, sizeof *a);
  a->kind = kind;
  a->rate = rate;
  a->start_ns = start_ns;
  mr_rng_seed(&a->rng, seed ^ 0xa5a5a5a5u);
}

uint64_t mr_arrivals_next(mr_arrivals_t *a) {
  uint64_t i = a->i++;
  if (a->kind == MR_ARRIVALS_CONSTANT)
    return a->start_ns + (uint64_t)llround((double)i * 1e9 / a->rate);
  uint64_t due = a->start_ns + (uint64_t)llround(a->t_ns);
  /* -log(1 - U) is exponential with mean 1; U < 1 keeps it finite. */
  a->t_ns += -log1p(-mr_rng_double(&a->rng)) * 1e9 / a->rate;
  return due;
}

int mr_arrivals_parse(const char *s) {
  if (!strcmp(s, "constant")) return MR_ARRIVALS_CONSTANT;
  if (!strcmp(s, "poisson")) return MR_ARRIVALS_POISSON;
  return -1;
}

const char *mr_arrivals_name(mr_arrivals_kind_t k) {
  return k == MR_ARRIVALS_POISSON ? "poisson" : "constant";
}
