/* Log-linear latency histogram in the manner of HdrHistogram: values are
 * integers (we record nanoseconds); each power of two is cut into 2048
 * sub-buckets (1024 new ones above the first), so any value is kept to
 * within 1/1024 of itself, i.e. 3 significant digits, from 1 up to the
 * highest trackable value (60 s = 6e10 ns for mr_hist_init_latency).
 *
 * Ownership: the caller owns the mr_hist_t; init allocates its counts
 * (about 27 k uint64 for the latency range, ~216 KiB) and mr_hist_free
 * releases them. Threads: none of its own; a histogram is a plain value, so
 * concurrent use needs the caller's lock (server/stats.c holds one). */
#ifndef MR_HISTOGRAM_H
#define MR_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"

#define MR_HIST_LATENCY_LOWEST 1ULL                  /* 1 ns */
#define MR_HIST_LATENCY_HIGHEST 60000000000ULL       /* 60 s in ns */
#define MR_HIST_LATENCY_DIGITS 3

typedef struct mr_hist {
  uint64_t lowest, highest;  /* trackable range as given to init */
  int digits;
  int unit_magnitude;        /* floor(log2(lowest)) */
  int sub_half_magnitude;    /* log2(sub-buckets) - 1: 10 for 3 digits */
  int64_t sub_count;         /* sub-buckets per power of two: 2048 */
  int64_t sub_half;          /* 1024 */
  uint64_t sub_mask;
  int bucket_count;
  size_t counts_len;
  uint64_t *counts;

  uint64_t total;            /* values recorded */
  uint64_t saturated;        /* of which clamped to highest */
  uint64_t min, max;         /* exact extremes (min = UINT64_MAX if empty) */
  double sum;                /* exact sum, for the mean */
} mr_hist_t;

/* Prepares h for values in [lowest, highest] at `digits` significant digits
 * (1..5). MR_EINVAL for a bad range, MR_ENOMEM. */
int mr_hist_init(mr_hist_t *h, uint64_t lowest, uint64_t highest, int digits,
                 mr_err_t *err);
/* The latency layout: 1 ns .. 60 s, 3 digits. */
int mr_hist_init_latency(mr_hist_t *h, mr_err_t *err);
void mr_hist_free(mr_hist_t *h);
/* Forgets every value; keeps the layout. */
void mr_hist_reset(mr_hist_t *h);

/* Records v (n times). A value above highest is counted at highest (and in
 * `saturated`); it never fails. */
void mr_hist_record_n(mr_hist_t *h, uint64_t v, uint64_t n);
static inline void mr_hist_record(mr_hist_t *h, uint64_t v) {
  mr_hist_record_n(h, v, 1);
}

/* Adds src's values into dst. Same layout: counts are added exactly;
 * otherwise each src bucket is re-recorded at its midpoint. */
void mr_hist_merge(mr_hist_t *dst, const mr_hist_t *src);

/* The value at percentile p (0..100): the smallest recorded value v such
 * that at least ceil(p/100 * count) values are <= v, to within the
 * precision (the highest value equivalent to it, clamped to [min, max]).
 * 0 when empty. */
uint64_t mr_hist_percentile(const mr_hist_t *h, double p);
/* Several percentiles in one pass: p[0..n) ascending; out[i] as
 * mr_hist_percentile(h, p[i]). */
void mr_hist_percentiles(const mr_hist_t *h, const double *p, size_t n,
                         uint64_t *out);
static inline uint64_t mr_hist_count(const mr_hist_t *h) { return h->total; }
static inline uint64_t mr_hist_max(const mr_hist_t *h) { return h->max; }
static inline uint64_t mr_hist_min(const mr_hist_t *h) {
  return h->total ? h->min : 0;
}
static inline double mr_hist_mean(const mr_hist_t *h) {
  return h->total ? h->sum / (double)h->total : 0.0;
}
/* How many recorded values are <= v (to within the precision: a value
 * equivalent to v counts as <= v). */
uint64_t mr_hist_count_le(const mr_hist_t *h, uint64_t v);

/* Values that map to the same counter as v: [lowest, highest]. */
uint64_t mr_hist_lowest_equivalent(const mr_hist_t *h, uint64_t v);
uint64_t mr_hist_highest_equivalent(const mr_hist_t *h, uint64_t v);

/* Iterates the non-empty buckets in increasing value order:
 *   mr_hist_iter_t it = {0};
 *   while (mr_hist_next(h, &it)) use(it.lo, it.hi, it.count, it.cumulative);
 * lo..hi are the values the bucket holds (inclusive). */
typedef struct mr_hist_iter {
  size_t index;  /* next counter to look at */
  uint64_t lo, hi, count, cumulative;
} mr_hist_iter_t;
int mr_hist_next(const mr_hist_t *h, mr_hist_iter_t *it);

#endif
