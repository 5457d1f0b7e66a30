/* fpga/histogram: percentiles against an exact sorted array, precision,
 * merge, saturation, iteration. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "fpga/histogram.h"
#include <criterion/criterion.h>
#ifndef cr_fatal /* testutil.h uses it; only criterion/new/assert.h has it */
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif
#include "tests/unit/testutil.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void) { /* xorshift64*: deterministic, no libc rand */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double p) {
  double want = ceil(p / 100.0 * (double)n * (1.0 - 1e-12));
  size_t rank = want < 1 ? 1 : (size_t)want;
  if (rank > n) rank = n;
  return sorted[rank - 1];
}

/* got is within 3 significant digits of exact, never below it. */
static void expect_close(uint64_t got, uint64_t exact, double p) {
  cr_expect(got >= exact, "p%g: %llu below exact %llu", p,
            (unsigned long long)got, (unsigned long long)exact);
  cr_expect(got - exact <= exact / 1000, "p%g: %llu vs exact %llu", p,
            (unsigned long long)got, (unsigned long long)exact);
}

static void check_against_sorted(uint64_t *vals, size_t n) {
  mr_hist_t h;
  cr_assert_eq(mr_hist_init_latency(&h, NULL), 0);
  for (size_t i = 0; i < n; i++) mr_hist_record(&h, vals[i]);
  qsort(vals, n, sizeof *vals, cmp_u64);
  static const double ps[] = {0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100};
  for (size_t i = 0; i < sizeof ps / sizeof *ps; i++)
    expect_close(mr_hist_percentile(&h, ps[i]),
                 exact_percentile(vals, n, ps[i]), ps[i]);
  cr_expect_eq(mr_hist_count(&h), n);
  cr_expect_eq(mr_hist_max(&h), vals[n - 1]);
  cr_expect_eq(mr_hist_min(&h), vals[0]);
  mr_hist_free(&h);
}

Test(histogram, percentiles_match_sorted_array_lognormal) {
  size_t n = 100000;
  uint64_t *v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++) {
    /* log-uniform over 1 us .. 60 s, in ns */
    double u = (double)(rng() >> 11) / 9007199254740992.0;
    v[i] = (uint64_t)exp(log(1e3) + u * (log(6e10) - log(1e3)));
  }
  check_against_sorted(v, n);
  free(v);
}

Test(histogram, percentiles_match_sorted_array_narrow_microseconds) {
  size_t n = 20001;
  uint64_t *v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++) v[i] = 8000 + rng() % 40000;  /* 8..48 us */
  check_against_sorted(v, n);
  free(v);
}

Test(histogram, small_values_are_exact) {
  mr_hist_t h;
  cr_assert_eq(mr_hist_init_latency(&h, NULL), 0);
  for (uint64_t v = 0; v < 2048; v++) {
    cr_expect_eq(mr_hist_lowest_equivalent(&h, v), v);
    cr_expect_eq(mr_hist_highest_equivalent(&h, v), v);
  }
  mr_hist_record(&h, 7);
  mr_hist_record(&h, 1999);
  cr_expect_eq(mr_hist_percentile(&h, 50), 7);
  cr_expect_eq(mr_hist_percentile(&h, 100), 1999);
  mr_hist_free(&h);
}

Test(histogram, equivalent_range_within_three_digits_over_whole_range) {
  mr_hist_t h;
  cr_assert_eq(mr_hist_init_latency(&h, NULL), 0);
  for (uint64_t v = 1000; v <= MR_HIST_LATENCY_HIGHEST; v = v * 1.37 + 1) {
    uint64_t lo = mr_hist_lowest_equivalent(&h, v);
    uint64_t hi = mr_hist_highest_equivalent(&h, v);
    cr_expect(lo <= v && v <= hi, "%llu not in [%llu, %llu]",
              (unsigned long long)v, (unsigned long long)lo,
              (unsigned long long)hi);
    cr_expect(hi - lo <= v / 1000, "range of %llu is %llu wide",
              (unsigned long long)v, (unsigned long long)(hi - lo + 1));
  }
  /* 2048 sub-buckets per power of two: 1024 new counters per doubling. */
  cr_expect_eq(h.sub_count, 2048);
  mr_hist_free(&h);
}

Test(histogram, saturates_above_highest) {
  mr_hist_t h;
  cr_assert_eq(mr_hist_init_latency(&h, NULL), 0);
  mr_hist_record(&h, MR_HIST_LATENCY_HIGHEST * 10);
  mr_hist_record(&h, 5000);
  cr_expect_eq(mr_hist_count(&h), 2);
  cr_expect_eq(h.saturated, 1);
  cr_expect_eq(mr_hist_max(&h), MR_HIST_LATENCY_HIGHEST);
  expect_close(mr_hist_percentile(&h, 100), MR_HIST_LATENCY_HIGHEST, 100);
  mr_hist_free(&h);
}

Test(histogram, empty_reports_zero) {
  mr_hist_t h;
  cr_assert_eq(mr_hist_init_latency(&h, NULL), 0);
  cr_expect_eq(mr_hist_percentile(&h, 99), 0);
  cr_expect_eq(mr_hist_count(&h), 0);
  cr_expect_eq(mr_hist_min(&h), 0);
  cr_expect_eq(mr_hist_mean(&h), 0.0);
  mr_hist_iter_t it = {0};
  cr_expect_eq(mr_hist_next(&h, &it), 0);
  mr_hist_free(&h);
}

Test(histogram, mean_is_exact) {
  mr_hist_t h;
  cr_assert_eq(mr_hist_init_latency(&h, NULL), 0);
  mr_hist_record(&h, 1000);
  mr_hist_record(&h, 3000);
  mr_hist_record_n(&h, 123457, 2);
  cr_expect_float_eq(mr_hist_mean(&h), (1000 + 3000 + 2 * 123457) / 4.0, 1e-9);
  mr_hist_free(&h);
}

Test(histogram, merge_equals_recording_into_one) {
  mr_hist_t a, b, both;
  cr_assert_eq(mr_hist_init_latency(&a, NULL), 0);
  cr_assert_eq(mr_hist_init_latency(&b, NULL), 0);
  cr_assert_eq(mr_hist_init_latency(&both, NULL), 0);
  for (int i = 0; i < 5000; i++) {
    uint64_t v = 1000 + rng() % 10000000;
    mr_hist_record(i % 3 ? &a : &b, v);
    mr_hist_record(&both, v);
  }
  mr_hist_merge(&a, &b);
  cr_expect_eq(mr_hist_count(&a), mr_hist_count(&both));
  cr_expect_eq(mr_hist_max(&a), mr_hist_max(&both));
  cr_expect_eq(mr_hist_min(&a), mr_hist_min(&both));
  for (double p = 0; p <= 100; p += 12.5)
    cr_expect_eq(mr_hist_percentile(&a, p), mr_hist_percentile(&both, p));
  mr_hist_free(&a);
  mr_hist_free(&b);
  mr_hist_free(&both);
}

Test(histogram, merge_across_layouts_keeps_precision) {
  mr_hist_t us, ns;
  cr_assert_eq(mr_hist_init(&us, 1, 60000000, 3, NULL), 0); /* microseconds */
  cr_assert_eq(mr_hist_init_latency(&ns, NULL), 0);
  for (uint64_t v = 10; v < 50000; v += 7) mr_hist_record(&us, v);
  mr_hist_merge(&ns, &us);
  cr_expect_eq(mr_hist_count(&ns), mr_hist_count(&us));
  uint64_t a = mr_hist_percentile(&us, 90), b = mr_hist_percentile(&ns, 90);
  cr_expect(b + b / 500 >= a && a + a / 500 >= b, "p90 %llu vs %llu",
            (unsigned long long)a, (unsigned long long)b);
  mr_hist_free(&us);
  mr_hist_free(&ns);
}

Test(histogram, iterates_buckets_in_order_and_sums_to_count) {
  mr_hist_t h;
  cr_assert_eq(mr_hist_init_latency(&h, NULL), 0);
  for (int i = 0; i < 3000; i++) mr_hist_record(&h, rng() % 100000000);
  mr_hist_iter_t it = {0};
  uint64_t sum = 0, prev_hi = 0;
  int first = 1;
  while (mr_hist_next(&h, &it)) {
    cr_expect(it.lo <= it.hi);
    cr_expect(first || it.lo > prev_hi, "buckets out of order");
    cr_expect(it.count > 0);
    sum += it.count;
    cr_expect_eq(it.cumulative, sum);
    prev_hi = it.hi;
    first = 0;
  }
  cr_expect_eq(sum, mr_hist_count(&h));
  mr_hist_free(&h);
}

Test(histogram, count_le_counts_values_at_or_below) {
  mr_hist_t h;
  cr_assert_eq(mr_hist_init_latency(&h, NULL), 0);
  mr_hist_record(&h, 500);
  mr_hist_record(&h, 1000);
  mr_hist_record(&h, 2000000);
  cr_expect_eq(mr_hist_count_le(&h, 499), 0);
  cr_expect_eq(mr_hist_count_le(&h, 1000), 2);
  cr_expect_eq(mr_hist_count_le(&h, 1990000), 2);
  cr_expect_eq(mr_hist_count_le(&h, 5000000), 3);
  mr_hist_free(&h);
}

Test(histogram, rejects_bad_range) {
  mr_hist_t h;
  mr_err_t err = {0};
  cr_expect_eq(mr_hist_init(&h, 0, 100, 3, &err), MR_EINVAL);
  cr_expect(strstr(err.msg, "expected") != NULL);
  cr_expect_eq(mr_hist_init(&h, 10, 100, 9, &err), MR_EINVAL);
}

Test(histogram, percentiles_in_one_pass_match_one_at_a_time) {
  mr_hist_t h;
  cr_assert_eq(mr_hist_init_latency(&h, NULL), 0);
  for (int i = 0; i < 10000; i++) mr_hist_record(&h, 500 + rng() % 5000000);
  static const double ps[] = {0, 25, 50, 90, 99, 99.9, 100};
  uint64_t out[7];
  mr_hist_percentiles(&h, ps, 7, out);
  for (int i = 0; i < 7; i++)
    cr_expect_eq(out[i], mr_hist_percentile(&h, ps[i]), "p%g", ps[i]);
  mr_hist_free(&h);
}
