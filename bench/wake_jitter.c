/* How late a sleeping thread wakes up on this machine right now: sleeps
 * --sleep-us N times (clock_nanosleep, relative) and records how far past
 * the requested time each wake-up came. An open-loop load generator and an
 * event loop both sleep between requests, so at a low rate this lateness
 * is in every latency they see; when its p99 is near an SLO, no server can
 * meet that SLO here. bench/server_latency.sh reports it beside (c).
 *
 *   wake_jitter [--sleep-us US] [--count N] [--json]
 *
 * Defaults: --sleep-us 1000 --count 2000. Percentiles are exact. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench/bench_stats.h"

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
  double sleep_us = 1000;
  long count = 2000;
  int json = 0;
  static const struct option opts[] = {
      {"sleep-us", required_argument, 0, 's'},
      {"count", required_argument, 0, 'n'},
      {"json", no_argument, 0, 'j'},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 's': sleep_us = atof(optarg); break;
    case 'n': count = atol(optarg); break;
    case 'j': json = 1; break;
    case 'h':
      printf("usage: wake_jitter [--sleep-us US] [--count N] [--json]\n");
      return 0;
    default:
      fprintf(stderr, "usage: wake_jitter [--sleep-us US] [--count N] [--json]\n");
      return 2;
    }
  }
  if (sleep_us <= 0 || count < 1) {
    fprintf(stderr, "wake_jitter: --sleep-us and --count must be > 0\n");
    return 2;
  }
  uint64_t *late = malloc((size_t)count * sizeof *late);
  if (!late) {
    fprintf(stderr, "wake_jitter: out of memory\n");
    return 1;
  }
  uint64_t want = (uint64_t)(sleep_us * 1000.0);
  struct timespec d = {.tv_sec = (time_t)(want / 1000000000ULL),
                       .tv_nsec = (long)(want % 1000000000ULL)};
  for (long i = 0; i < count; i++) {
    uint64_t t0 = now_ns();
    clock_nanosleep(CLOCK_MONOTONIC, 0, &d, NULL);
    uint64_t slept = now_ns() - t0;
    late[i] = slept > want ? slept - want : 0;
  }
  size_t n = (size_t)count;
  qsort(late, n, sizeof *late, mr_bench_cmp_u64);
  if (json)
    printf("{\"sleep_us\": %g, \"count\": %zu, \"p50_us\": %.1f, \"p90_us\": "
           "%.1f, \"p99_us\": %.1f, \"max_us\": %.1f}\n",
           sleep_us, n, mr_bench_pct_us(late, n, 50), mr_bench_pct_us(late, n, 90),
           mr_bench_pct_us(late, n, 99), late[n - 1] / 1000.0);
  else
    printf("woke late after %g us sleeps (%zu): p50 %.1f  p90 %.1f  p99 %.1f  "
           "max %.1f us\n",
           sleep_us, n, mr_bench_pct_us(late, n, 50), mr_bench_pct_us(late, n, 90),
           mr_bench_pct_us(late, n, 99), late[n - 1] / 1000.0);
  free(late);
  return 0;
}
