/* The server's clock: CLOCK_MONOTONIC in nanoseconds (vDSO, ~20 ns), the
 * same clock libuv's uv_hrtime reads. Any thread. */
#ifndef MR_CLOCK_H
#define MR_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mr_clock_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

#endif
