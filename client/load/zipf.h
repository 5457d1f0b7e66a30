/* Zipf-distributed ids: rank k in 1..n drawn with probability proportional
 * to k^-s (s >= 0; s = 0 is uniform), by rejection-inversion (Hoermann and
 * Derflinger, 1996): O(1) per draw and no table, so it works for tables of
 * any size. The rank is then scattered over the table by a fixed bijection,
 * so the hot rows are spread through memory as real traffic's are, not
 * packed at the front.
 * Ownership: a mr_zipf_t is a plain value, read-only after init; any thread
 * may draw with its own mr_rng_t. */
#ifndef MR_LOAD_ZIPF_H
#define MR_LOAD_ZIPF_H

#include <stdint.h>

#include "client/load/rng.h"
#include "fpga/err.h"

typedef struct mr_zipf {
  uint64_t n;
  double s;
  double h_x1, h_n, thresh;  /* precomputed bounds of the inversion */
  uint64_t scatter;          /* multiplier coprime with n (1 = none) */
} mr_zipf_t;

/* n >= 1 rows, exponent s in [0, 100]. MR_EINVAL otherwise. */
int mr_zipf_init(mr_zipf_t *z, uint64_t n, double s, mr_err_t *err);

/* A rank in 1..n (1 is the most frequent). */
uint64_t mr_zipf_rank(const mr_zipf_t *z, mr_rng_t *r);

/* An id in 0..n-1: the rank scattered over the table. */
uint64_t mr_zipf_id(const mr_zipf_t *z, mr_rng_t *r);

#endif
