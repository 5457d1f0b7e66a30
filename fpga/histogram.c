/* Log-linear histogram (HdrHistogram's layout; see histogram.h).
 *
 * Layout: counter index i covers bucket b = (i >> half_mag) - 1 (bucket 0
 * also takes the indices below half), sub-bucket s; its values are
 * [s << (b + unit), (s + 1) << (b + unit)). Bucket 0 holds 0 .. sub_count-1
 * units at unit resolution; every further bucket doubles the range and the
 * width of its sub-buckets, so the width is always <= value / half. */
#include "fpga/histogram.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int bucket_index(const mr_hist_t *h, uint64_t v) {
  int pow2ceil = 64 - __builtin_clzll(v | h->sub_mask);
  return pow2ceil - h->unit_magnitude - (h->sub_half_magnitude + 1);
}

static int64_t sub_index(const mr_hist_t *h, uint64_t v, int b) {
  return (int64_t)(v >> (b + h->unit_magnitude));
}

static size_t counts_index(const mr_hist_t *h, int b, int64_t s) {
  return ((size_t)(b + 1) << h->sub_half_magnitude) + (size_t)(s - h->sub_half);
}

static size_t index_of(const mr_hist_t *h, uint64_t v) {
  int b = bucket_index(h, v);
  return counts_index(h, b, sub_index(h, v, b));
}

/* Lowest value of counter i. */
static uint64_t value_at(const mr_hist_t *h, size_t i) {
  int b = (int)(i >> h->sub_half_magnitude) - 1;
  int64_t s = (int64_t)(i & (size_t)(h->sub_half - 1)) + h->sub_half;
  if (b < 0) {
    s -= h->sub_half;
    b = 0;
  }
  return (uint64_t)s << (b + h->unit_magnitude);
}

/* Width of the range of values equivalent to v. */
static uint64_t equivalent_size(const mr_hist_t *h, uint64_t v) {
  int b = bucket_index(h, v);
  int64_t s = sub_index(h, v, b);
  int adjusted = s >= h->sub_count ? b + 1 : b;
  return 1ULL << (h->unit_magnitude + adjusted);
}

uint64_t mr_hist_lowest_equivalent(const mr_hist_t *h, uint64_t v) {
  int b = bucket_index(h, v);
  return (uint64_t)sub_index(h, v, b) << (b + h->unit_magnitude);
}

uint64_t mr_hist_highest_equivalent(const mr_hist_t *h, uint64_t v) {
  return mr_hist_lowest_equivalent(h, v) + equivalent_size(h, v) - 1;
}

int mr_hist_init(mr_hist_t *h, uint64_t lowest, uint64_t highest, int digits,
                 mr_err_t *err) {
  memset(h, 0, sizeof *h);
  if (lowest < 1 || digits < 1 || digits > 5 || highest < 2 * lowest ||
      highest > (UINT64_MAX >> 2))
    return mr_err_set(err, MR_EINVAL,
                      "histogram: range [%llu, %llu] at %d digits is invalid; "
                      "expected 1 <= lowest, 2*lowest <= highest < 2^62, "
                      "1 <= digits <= 5",
                      (unsigned long long)lowest, (unsigned long long)highest,
                      digits);
  uint64_t single = 2;
  for (int i = 0; i < digits; i++) single *= 10;
  int sub_mag = 0;
  while ((1ULL << sub_mag) < single) sub_mag++;
  h->lowest = lowest;
  h->highest = highest;
  h->digits = digits;
  h->unit_magnitude = 63 - __builtin_clzll(lowest);
  h->sub_half_magnitude = sub_mag > 1 ? sub_mag - 1 : 0;
  h->sub_count = 1LL << (h->sub_half_magnitude + 1);
  h->sub_half = h->sub_count / 2;
  h->sub_mask = (uint64_t)(h->sub_count - 1) << h->unit_magnitude;
  uint64_t smallest_untrackable = (uint64_t)h->sub_count << h->unit_magnitude;
  int buckets = 1;
  while (smallest_untrackable <= highest) {
    if (smallest_untrackable > (UINT64_MAX >> 1)) {
      buckets++;
      break;
    }
    smallest_untrackable <<= 1;
    buckets++;
  }
  h->bucket_count = buckets;
  h->counts_len = (size_t)(buckets + 1) * (size_t)h->sub_half;
  h->counts = calloc(h->counts_len, sizeof *h->counts);
  if (!h->counts)
    return mr_err_set(err, MR_ENOMEM, "histogram: cannot allocate %zu counters",
                      h->counts_len);
  h->min = UINT64_MAX;
  return 0;
}

int mr_hist_init_latency(mr_hist_t *h, mr_err_t *err) {
  return mr_hist_init(h, MR_HIST_LATENCY_LOWEST, MR_HIST_LATENCY_HIGHEST,
                      MR_HIST_LATENCY_DIGITS, err);
}

void mr_hist_free(mr_hist_t *h) {
  free(h->counts);
  h->counts = NULL;
  h->counts_len = 0;
}

void mr_hist_reset(mr_hist_t *h) {
  memset(h->counts, 0, h->counts_len * sizeof *h->counts);
  h->total = h->saturated = 0;
  h->min = UINT64_MAX;
  h->max = 0;
  h->sum = 0;
}

void mr_hist_record_n(mr_hist_t *h, uint64_t v, uint64_t n) {
  if (n == 0) return;
  if (v > h->highest) {
    v = h->highest;
    h->saturated += n;
  }
  h->counts[index_of(h, v)] += n;
  h->total += n;
  h->sum += (double)v * (double)n;
  if (v < h->min) h->min = v;
  if (v > h->max) h->max = v;
}

void mr_hist_merge(mr_hist_t *dst, const mr_hist_t *src) {
  if (src->total == 0) return;
  int same = dst->counts_len == src->counts_len &&
             dst->unit_magnitude == src->unit_magnitude &&
             dst->sub_half_magnitude == src->sub_half_magnitude &&
             dst->highest >= src->highest;
  if (same) {
    for (size_t i = 0; i < src->counts_len; i++) dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->saturated += src->saturated;
    dst->sum += src->sum;
    if (src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
    return;
  }
  mr_hist_iter_t it = {0};
  while (mr_hist_next(src, &it))
    mr_hist_record_n(dst, it.lo + (it.hi - it.lo) / 2, it.count);
}

/* Rank as an exact sorted array defines it: ceil(p/100 * n), at least 1.
 * The relative epsilon keeps 99.9% of 1000 at rank 999 despite rounding. */
static uint64_t rank_of(const mr_hist_t *h, double p) {
  if (p < 0) p = 0;
  if (p > 100) p = 100;
  double want = ceil(p / 100.0 * (double)h->total * (1.0 - 1e-12));
  uint64_t rank = want < 1 ? 1 : (uint64_t)want;
  return rank > h->total ? h->total : rank;
}

static uint64_t clamp_value(const mr_hist_t *h, size_t i) {
  uint64_t v = mr_hist_highest_equivalent(h, value_at(h, i));
  if (v > h->max) v = h->max;
  if (v < h->min) v = h->min;
  return v;
}

void mr_hist_percentiles(const mr_hist_t *h, const double *p, size_t n,
                         uint64_t *out) {
  size_t k = 0;
  if (h->total == 0) {
    for (; k < n; k++) out[k] = 0;
    return;
  }
  uint64_t cum = 0;
  size_t last = index_of(h, h->max);
  for (size_t i = 0; i <= last && k < n; i++) {
    cum += h->counts[i];
    while (k < n && cum >= rank_of(h, p[k])) out[k++] = clamp_value(h, i);
  }
  for (; k < n; k++) out[k] = h->max;
}

uint64_t mr_hist_percentile(const mr_hist_t *h, double p) {
  uint64_t v;
  mr_hist_percentiles(h, &p, 1, &v);
  return v;
}

uint64_t mr_hist_count_le(const mr_hist_t *h, uint64_t v) {
  if (h->total == 0) return 0;
  if (v >= h->max) return h->total;
  size_t last = index_of(h, v);
  uint64_t cum = 0;
  for (size_t i = 0; i <= last; i++) cum += h->counts[i];
  return cum;
}

int mr_hist_next(const mr_hist_t *h, mr_hist_iter_t *it) {
  while (it->index < h->counts_len) {
    size_t i = it->index++;
    if (h->counts[i] == 0) continue;
    it->lo = value_at(h, i);
    it->hi = mr_hist_highest_equivalent(h, it->lo);
    it->count = h->counts[i];
    it->cumulative += h->counts[i];
    return 1;
  }
  return 0;
}
