/* The machine's limits, measured in the same run as the engine benchmarks
 * (bench/run): what the engine's lookup stage and MLP are compared with.
 *
 *   gather: independent random row reads from a table much larger than the
 *           last-level cache, ids known up front and prefetched D rows
 *           ahead, each row copied out (as the engine's gather does); on
 *           transparent huge pages and on 4 KiB pages; the best D is kept.
 *   fma:    the FLOP/s of independent FMA chains in registers: AVX-512 and
 *           AVX2 fp32, and the bf16 (vdpbf16ps) and int8 (vpdpbusd) dot
 *           instructions when the CPU has them.
 *
 * Each test runs on T threads at once (one per core); a JSON line per test
 * gives the per-thread rate of the best ~20 ms window (what a core does
 * when nothing else runs on it: this machine is shared), the total (that
 * times T) and the mean over the whole test.
 *
 *   limits [--threads T] [--gather-mib MIB] [--row-bytes B] [--seconds S]
 *
 * Built by bench/run with plain -O2: the SIMD code is selected per function
 * with target attributes and run only when the CPU supports it. */
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* ---- threads: run fn on T threads at once, sum their counts ---- */

typedef struct job {
  pthread_t tid;
  int index;
  double seconds;
  void *arg;
  double count; /* lookups or FLOPs done */
  double elapsed;
  double best;  /* the best rate over one short window */
} job_t;

/* Windows of about 20 ms: the best one is what the core can do when the
 * other engineers' processes leave it alone. */
static void window(job_t *j, double n, double dt) {
  if (dt > 0 && n / dt > j->best) j->best = n / dt;
}

static pthread_barrier_t start_line;

static void run_jobs(void *(*fn)(void *), int threads, double seconds,
                     void *arg, double *total, double *per_thread,
                     double *best_per_thread) {
  job_t jobs[64];
  pthread_barrier_init(&start_line, NULL, (unsigned)threads);
  for (int i = 0; i < threads; i++) {
    jobs[i] = (job_t){.index = i, .seconds = seconds, .arg = arg};
    pthread_create(&jobs[i].tid, NULL, fn, &jobs[i]);
  }
  double sum = 0, best = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(jobs[i].tid, NULL);
    sum += jobs[i].count / jobs[i].elapsed;
    best += jobs[i].best;
  }
  pthread_barrier_destroy(&start_line);
  *total = sum;
  *per_thread = sum / threads;
  *best_per_thread = best / threads;
}

/* ---- gather ---- */

#define IDS (1u << 22)
#define OUT_ROWS 256

typedef struct gather_cfg {
  const char *table;
  uint64_t rows;
  size_t row_bytes;
  size_t dist;
} gather_cfg_t;

static void *gather_job(void *p) {
  job_t *j = p;
  const gather_cfg_t *g = j->arg;
  uint64_t rng = 1234567 + (uint64_t)j->index * 977;
  uint32_t *ids = malloc((IDS + 64) * sizeof *ids);
  char *out = aligned_alloc(64, OUT_ROWS * g->row_bytes);
  for (size_t i = 0; i < IDS + 64; i++) ids[i] = (uint32_t)(splitmix(&rng) % g->rows);
  const size_t rb = g->row_bytes, d = g->dist;
  pthread_barrier_wait(&start_line);
  double t0 = now_s(), t1 = t0;
  double n = 0;
  volatile char sink = 0;
  const size_t win = IDS / 16;
  while (t1 - t0 < j->seconds) {
    for (size_t w0 = 0; w0 < IDS; w0 += win) {
      double tw = now_s();
      for (size_t i = w0; i < w0 + win; i++) {
        if (d) {
          const char *pf = g->table + (uint64_t)ids[i + d] * rb;
          for (size_t o = 0; o < rb; o += 64) __builtin_prefetch(pf + o, 0, 3);
        }
        memcpy(out + (i % OUT_ROWS) * rb, g->table + (uint64_t)ids[i] * rb, rb);
      }
      t1 = now_s();
      window(j, (double)win, t1 - tw);
    }
    sink += out[(size_t)n % (OUT_ROWS * rb)];
    n += IDS;
  }
  j->count = n;
  j->elapsed = t1 - t0;
  free(ids);
  free(out);
  return NULL;
}

static void gather(int threads, uint64_t mib, size_t row_bytes, double seconds,
                   int huge) {
  size_t bytes = (size_t)mib << 20;
  char *t = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (t == MAP_FAILED) {
    perror("limits: mmap of the gather table");
    exit(1);
  }
  madvise(t, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  for (size_t i = 0; i < bytes; i += 4096) t[i] = (char)i; /* fault it all in */
  gather_cfg_t g = {.table = t, .rows = bytes / row_bytes, .row_bytes = row_bytes};
  static const size_t dists[] = {0, 8, 16, 32, 64};
  double best = 0, best_pt = 0, best_w = 0;
  size_t best_d = 0;
  for (size_t k = 0; k < sizeof dists / sizeof *dists; k++) {
    g.dist = dists[k];
    double tot, pt, bw;
    run_jobs(gather_job, threads, seconds, &g, &tot, &pt, &bw);
    fprintf(stderr,
            "gather %s pages, prefetch %zu: %.1f M lookups/s per thread (best "
            "window %.1f)\n",
            huge ? "huge" : "4k", dists[k], pt / 1e6, bw / 1e6);
    if (bw > best_w) best = tot, best_pt = pt, best_w = bw, best_d = dists[k];
  }
  /* Huge pages actually granted (THP may give fewer than asked). */
  size_t pages = 0;
  if (huge) {
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
      if (!strncmp(line, "AnonHugePages:", 14)) pages = strtoull(line + 14, NULL, 10) / 2048;
    if (f) fclose(f);
  }
  printf("{\"test\": \"gather\", \"pages\": \"%s\", \"table_mib\": %llu, "
         "\"row_bytes\": %zu, \"threads\": %d, \"prefetch\": %zu, "
         "\"huge_pages_granted_mib\": %zu, "
         "\"lookups_per_s\": %.0f, \"lookups_per_s_per_thread\": %.0f, "
         "\"lookups_per_s_per_thread_mean\": %.0f}\n",
         huge ? "huge" : "4k", (unsigned long long)mib, row_bytes, threads, best_d,
         pages * 2, best_w * threads, best_w, best_pt);
  (void)best;
  fflush(stdout);
  munmap(t, bytes);
}

/* ---- FMA throughput ---- */

#define CHAINS 16
#define ITERS 4096

/* Each kernel runs ITERS rounds of CHAINS independent instructions and
 * returns the FLOPs (or int8 ops) done. */
__attribute__((target("avx512f"))) static double fma512(void) {
  __m512 acc[CHAINS];
  for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
  for (int i = 0; i < ITERS; i++)
    _Pragma("GCC unroll 16")
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  __m512 s = acc[0];
  for (int c = 1; c < CHAINS; c++) s = _mm512_add_ps(s, acc[c]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return (double)ITERS * CHAINS * 16 * 2;
}

__attribute__((target("avx2,fma"))) static double fma256(void) {
  __m256 acc[CHAINS];
  for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps((float)c);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
  for (int i = 0; i < ITERS; i++)
    _Pragma("GCC unroll 16")
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  float f[8];
  __m256 s = acc[0];
  for (int c = 1; c < CHAINS; c++) s = _mm256_add_ps(s, acc[c]);
  _mm256_storeu_ps(f, s);
  volatile float sink = f[0];
  (void)sink;
  return (double)ITERS * CHAINS * 8 * 2;
}

__attribute__((target("avx512f,avx512bf16"))) static double dpbf16(void) {
  __m512 acc[CHAINS];
  for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80); /* 1.0 */
  const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3380); /* ~6e-8 */
  for (int i = 0; i < ITERS; i++)
    _Pragma("GCC unroll 16")
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_dpbf16_ps(acc[c], a, b);
  __m512 s = acc[0];
  for (int c = 1; c < CHAINS; c++) s = _mm512_add_ps(s, acc[c]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return (double)ITERS * CHAINS * 32 * 2;
}

__attribute__((target("avx512f,avx512vnni"))) static double dpbusd(void) {
  __m512i acc[CHAINS];
  for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_epi32(c);
  const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(1);
  for (int i = 0; i < ITERS; i++)
    _Pragma("GCC unroll 16")
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
  __m512i s = acc[0];
  for (int c = 1; c < CHAINS; c++) s = _mm512_add_epi32(s, acc[c]);
  volatile int sink = _mm512_reduce_add_epi32(s);
  (void)sink;
  return (double)ITERS * CHAINS * 64 * 2;
}

typedef double (*flop_fn)(void);

static void *flops_job(void *p) {
  job_t *j = p;
  flop_fn fn = (flop_fn)j->arg;
  fn(); /* warm: clocks up, code in cache */
  pthread_barrier_wait(&start_line);
  double t0 = now_s(), t1 = t0, n = 0;
  while (t1 - t0 < j->seconds) {
    double w = 0, tw = t1;
    for (int r = 0; r < 64; r++) w += fn();
    t1 = now_s();
    window(j, w, t1 - tw);
    n += w;
  }
  j->count = n;
  j->elapsed = t1 - t0;
  return NULL;
}

static void flops(const char *name, flop_fn fn, int threads, double seconds) {
  double tot, pt, bw;
  /* Function pointers travel through the void * argument. */
  union {
    flop_fn f;
    void *p;
  } u = {.f = fn};
  run_jobs(flops_job, threads, seconds, u.p, &tot, &pt, &bw);
  printf("{\"test\": \"%s\", \"threads\": %d, \"gflops\": %.1f, "
         "\"gflops_per_thread\": %.1f, \"gflops_per_thread_mean\": %.1f}\n",
         name, threads, bw * threads / 1e9, bw / 1e9, pt / 1e9);
  fflush(stdout);
}

int main(int argc, char **argv) {
  int threads = 1;
  uint64_t mib = 4096;
  size_t row_bytes = 64;
  double seconds = 1.0;
  int do_gather = 1, do_fma = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(a, "--threads")) threads = atoi(v), i++;
    else if (!strcmp(a, "--gather-mib")) mib = strtoull(v, NULL, 10), i++;
    else if (!strcmp(a, "--row-bytes")) row_bytes = strtoull(v, NULL, 10), i++;
    else if (!strcmp(a, "--seconds")) seconds = atof(v), i++;
    else if (!strcmp(a, "--no-gather")) do_gather = 0;
    else if (!strcmp(a, "--no-fma")) do_fma = 0;
    else {
      fprintf(stderr,
              "usage: limits [--threads T] [--gather-mib MIB] [--row-bytes B] "
              "[--seconds S] [--no-gather] [--no-fma]\n");
      return 2;
    }
  }
  if (threads < 1 || threads > 64 || mib < 1 || row_bytes < 8 || row_bytes % 8 ||
      !(seconds > 0)) {
    fprintf(stderr, "limits: bad arguments\n");
    return 2;
  }
  __builtin_cpu_init();
  if (do_fma) {
    if (__builtin_cpu_supports("avx512f")) flops("fma_avx512", fma512, threads, seconds);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      flops("fma_avx2", fma256, threads, seconds);
    if (__builtin_cpu_supports("avx512bf16")) flops("dpbf16_avx512", dpbf16, threads, seconds);
    if (__builtin_cpu_supports("avx512vnni")) flops("dpbusd_avx512", dpbusd, threads, seconds);
  }
  if (do_gather) {
    gather(threads, mib, row_bytes, seconds, 1);
    gather(threads, mib, row_bytes, seconds, 0);
  }
  return 0;
}
