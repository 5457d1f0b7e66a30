/* Percentiles of latency samples, shared by the small bench programs. */
#ifndef MR_BENCH_STATS_H
#define MR_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

static inline int mr_bench_cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile p (0..100] of the sorted ns samples v[0..n), in us. */
static inline double mr_bench_pct_us(const uint64_t *v, size_t n, double p) {
  size_t k = (size_t)((p / 100.0) * (double)n + 0.999999);
  if (k < 1) k = 1;
  if (k > n) k = n;
  return (double)v[k - 1] / 1000.0;
}

#endif
