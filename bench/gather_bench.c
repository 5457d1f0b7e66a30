/* Random-row gather cost against table size: the measurement behind the cpu
 * target's cost model (fpga/target.c). For each table size it times N random
 * row reads two ways: dependent (each row read names the next row: pure
 * latency) and independent (a batch of ids known up front, as the engine
 * gathers: what out-of-order cores and prefetchers overlap).
 *
 *   bench/gather_bench.sh [max_mib] [row_bytes]
 *
 * Prints one line per size: bytes, ns per dependent read, ns per independent
 * read. Tables are allocated with MADV_HUGEPAGE, as the engine does. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A random cyclic permutation (Sattolo), so the dependent walk visits every
 * row before repeating. */
static void make_cycle(uint32_t *next, uint64_t rows) {
  for (uint64_t i = 0; i < rows; i++) next[i] = (uint32_t)i;
  for (uint64_t i = rows - 1; i > 0; i--) {
    uint64_t j = rng_next() % i;
    uint32_t t = next[i];
    next[i] = next[j];
    next[j] = t;
  }
}

int main(int argc, char **argv) {
  uint64_t max_mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 4096;
  size_t row_bytes = argc > 2 ? strtoull(argv[2], NULL, 10) : 64;
  if (row_bytes < 8 || row_bytes % 8) {
    fprintf(stderr, "row_bytes must be a multiple of 8 (got %zu)\n", row_bytes);
    return 2;
  }
  const size_t reads = 1u << 22;
  const size_t batch = 256;
  uint32_t *ids = malloc(reads * sizeof *ids);
  float *out = malloc(batch * row_bytes);
  if (!ids || !out) return 1;

  printf("# row_bytes=%zu reads=%zu batch=%zu\n", row_bytes, reads, batch);
  printf("%14s %12s %12s\n", "table_bytes", "dep_ns", "indep_ns");
  for (uint64_t bytes = 16 * 1024; bytes <= max_mib << 20; bytes *= 2) {
    uint64_t rows = bytes / row_bytes;
    if (rows > UINT32_MAX) break;
    char *t = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (t == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    madvise(t, bytes, MADV_HUGEPAGE);
    uint32_t *next = malloc(rows * sizeof *next);
    if (!next) return 1;
    make_cycle(next, rows);
    for (uint64_t r = 0; r < rows; r++) {
      memset(t + r * row_bytes, 0, row_bytes);
      memcpy(t + r * row_bytes, &next[r], sizeof next[r]);
    }
    free(next);
    for (size_t i = 0; i < reads; i++) ids[i] = (uint32_t)(rng_next() % rows);

    /* Dependent: the row read holds the next row id. */
    uint32_t cur = 0;
    for (size_t i = 0; i < reads / 8; i++) /* warm */
      memcpy(&cur, t + (uint64_t)cur * row_bytes, sizeof cur);
    double t0 = now_ns();
    for (size_t i = 0; i < reads; i++) {
      memcpy(out, t + (uint64_t)cur * row_bytes, row_bytes);
      memcpy(&cur, out, sizeof cur);
    }
    double dep = (now_ns() - t0) / (double)reads;

    /* Independent: copy rows for a batch of known ids, as a gather does. */
    for (size_t i = 0; i < reads / 8; i += batch) /* warm */
      for (size_t j = 0; j < batch; j++)
        memcpy((char *)out + j * row_bytes,
               t + (uint64_t)ids[i + j] * row_bytes, row_bytes);
    t0 = now_ns();
    for (size_t i = 0; i < reads; i += batch)
      for (size_t j = 0; j < batch; j++)
        memcpy((char *)out + j * row_bytes,
               t + (uint64_t)ids[i + j] * row_bytes, row_bytes);
    double indep = (now_ns() - t0) / (double)reads;
    __asm__ volatile("" : : "r"(out), "r"(cur) : "memory");

    printf("%14llu %12.2f %12.2f\n", (unsigned long long)bytes, dep, indep);
    fflush(stdout);
    munmap(t, bytes);
  }
  free(ids);
  free(out);
  return 0;
}
