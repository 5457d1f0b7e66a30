/* The network floor of a microrecd round trip on this machine: a plain
 * blocking TCP exchange over loopback with nothing in between. A child
 * process serves: it reads exactly REQ bytes, writes RESP bytes back, and
 * repeats. The parent is the client: one write of REQ bytes, blocking reads
 * until RESP bytes are back, timed with CLOCK_MONOTONIC. Both sockets have
 * TCP_NODELAY, as microrecd and microrec-load do. bench/server_latency.sh
 * passes the byte counts of a real batch-1 request frame and its response
 * frame, so the only difference from microrecd is the server's own work.
 *
 *   echo_floor --request-bytes N --response-bytes M [--seconds S]
 *              [--warmup S] [--server-delay-us D] [--server-cpu N]
 *              [--client-cpu N] [--json]
 *
 * Output: round trips and latency percentiles in microseconds (exact: every
 * round trip is kept and sorted), and the cost of one null system call
 * (syscall_ns), which explains much of the floor on a VM, and the fraction
 * of replies written on the CPU the client read them on (same_cpu). Single-threaded on each side.
 * --server-delay-us D makes the server busy-wait D us before each reply, a
 * stand-in for engine time: the floor of "network + engine" with nothing of
 * microrecd's own (the client sleeps meanwhile, as it does on microrecd). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_stats.h"

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Cost of the cheapest system call, in ns (min of a few rounds): on a VM
 * with page-table isolation each call's entry and exit is not free, and
 * every round trip makes several. */
static double syscall_ns(void) {
  double best = 1e18;
  for (int round = 0; round < 5; round++) {
    uint64_t t0 = now_ns();
    for (int i = 0; i < 20000; i++) syscall(SYS_getppid);
    double ns = (double)(now_ns() - t0) / 20000.0;
    if (ns < best) best = ns;
  }
  return best;
}

static void die(const char *what) {
  fprintf(stderr, "echo_floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* 0 on success, -1 on EOF or error. */
static int read_full(int fd, uint8_t *p, size_t n) {
  while (n) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int write_full(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t r = write(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static void nodelay(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one)) die("TCP_NODELAY");
}

/* Busy-waits ns nanoseconds: stands in for the engine's compute. */
static void spin(uint64_t ns) {
  if (!ns) return;
  uint64_t until = now_ns() + ns;
  while (now_ns() < until) {
  }
}

/* Pins the calling process to one CPU (cpu < 0: leaves it be). */
static void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set)) die("sched_setaffinity");
}

/* The reply's first byte says on which CPU the server wrote it, so the
 * client can tell a same-CPU exchange (a wake-up on the running CPU) from a
 * cross-CPU one (an IPI to the other, maybe halted, vCPU): on a VM the two
 * differ several-fold, and the scheduler picks either. */
static void serve(int lfd, size_t req, size_t resp, uint64_t delay_ns) {
  int fd = accept(lfd, NULL, NULL);
  if (fd < 0) die("accept");
  close(lfd);
  nodelay(fd);
  uint8_t *in = malloc(req), *out = calloc(1, resp);
  if (!in || !out) die("malloc");
  while (read_full(fd, in, req) == 0) {
    spin(delay_ns);
    out[0] = (uint8_t)sched_getcpu();
    if (write_full(fd, out, resp)) break;
  }
  close(fd);
  exit(0);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: echo_floor --request-bytes N --response-bytes M "
          "[--seconds S] [--warmup S]\n"
          "                  [--server-delay-us D] [--server-cpu N] "
          "[--client-cpu N] [--json]\n"
          "Blocking TCP round trips over loopback (N bytes out, M back): the "
          "network floor\nof a request/response exchange. --server-delay-us "
          "makes the server busy-wait D us\nbefore each reply (a stand-in "
          "for engine time).\n--server-cpu / --client-cpu pin a side to a "
          "CPU. Defaults: --seconds 5 --warmup 1 --server-delay-us 0, no "
          "pinning.\n");
}

int main(int argc, char **argv) {
  size_t req = 0, resp = 0;
  double seconds = 5, warmup = 1, delay_us = 0;
  int server_cpu = -1, client_cpu = -1;
  int json = 0;
  static const struct option opts[] = {
      {"request-bytes", required_argument, 0, 'q'},
      {"response-bytes", required_argument, 0, 'r'},
      {"seconds", required_argument, 0, 's'},
      {"warmup", required_argument, 0, 'w'},
      {"server-delay-us", required_argument, 0, 'd'},
      {"server-cpu", required_argument, 0, 'S'},
      {"client-cpu", required_argument, 0, 'C'},
      {"json", no_argument, 0, 'j'},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'q': req = strtoull(optarg, NULL, 10); break;
    case 'r': resp = strtoull(optarg, NULL, 10); break;
    case 's': seconds = atof(optarg); break;
    case 'w': warmup = atof(optarg); break;
    case 'd': delay_us = atof(optarg); break;
    case 'S': server_cpu = atoi(optarg); break;
    case 'C': client_cpu = atoi(optarg); break;
    case 'j': json = 1; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!req || !resp || seconds <= 0 || warmup < 0 || delay_us < 0) {
    fprintf(stderr, "echo_floor: --request-bytes and --response-bytes must be "
                    ">= 1, --seconds > 0, --warmup and --server-delay-us "
                    ">= 0\n");
    usage(stderr);
    return 2;
  }

  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (lfd < 0) die("socket");
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 1) ||
      getsockname(lfd, (struct sockaddr *)&a, &alen))
    die("listen on 127.0.0.1");
  double sys_ns = syscall_ns();
  fflush(stdout);
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    pin(server_cpu);
    serve(lfd, req, resp, (uint64_t)(delay_us * 1000.0));
  }
  close(lfd);
  pin(client_cpu);

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) die("connect");
  nodelay(fd);
  uint8_t *out = malloc(req), *in = malloc(resp);
  if (!out || !in) die("malloc");
  for (size_t i = 0; i < req; i++) out[i] = (uint8_t)(i * 31 + 7);

  size_t cap = 1 << 16, n = 0, same_cpu = 0;
  uint64_t *lat = malloc(cap * sizeof *lat);
  if (!lat) die("malloc");
  uint64_t start = now_ns();
  uint64_t measure_from = start + (uint64_t)(warmup * 1e9);
  uint64_t end = measure_from + (uint64_t)(seconds * 1e9);
  uint64_t t = start;
  while (t < end) {
    uint64_t t0 = now_ns();
    if (write_full(fd, out, req) || read_full(fd, in, resp)) die("round trip");
    t = now_ns();
    if (t0 < measure_from) continue;
    same_cpu += in[0] == (uint8_t)sched_getcpu();
    if (n == cap) {
      cap *= 2;
      uint64_t *g = realloc(lat, cap * sizeof *lat);
      if (!g) die("realloc");
      lat = g;
    }
    lat[n++] = t - t0;
  }
  close(fd);
  int status = 0;
  waitpid(child, &status, 0);
  if (n == 0) {
    fprintf(stderr, "echo_floor: no round trip measured\n");
    return 1;
  }
  qsort(lat, n, sizeof *lat, mr_bench_cmp_u64);
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)lat[i];
  double mean = sum / (double)n / 1000.0;
  if (json) {
    printf("{\"request_bytes\": %zu, \"response_bytes\": %zu, "
           "\"server_delay_us\": %g, \"seconds\": %g, \"round_trips\": %zu, \"rate\": %.1f, "
           "\"min_us\": %.2f, \"p50_us\": %.2f, \"p90_us\": %.2f, "
           "\"p99_us\": %.2f, \"p999_us\": %.2f, \"max_us\": %.2f, "
           "\"mean_us\": %.2f, \"syscall_ns\": %.0f, \"same_cpu\": %.3f}\n",
           req, resp, delay_us, seconds, n, (double)n / seconds, lat[0] / 1000.0,
           mr_bench_pct_us(lat, n, 50), mr_bench_pct_us(lat, n, 90), mr_bench_pct_us(lat, n, 99),
           mr_bench_pct_us(lat, n, 99.9), lat[n - 1] / 1000.0, mean, sys_ns,
           (double)same_cpu / (double)n);
  } else {
    printf("echo floor: %zu-byte request, %zu-byte reply, server delay %g us, "
           "%zu round trips in %g s\n  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  "
           "mean %.1f us\n  one system call (getppid) costs %.0f ns here; "
           "%.0f%% of the replies were written on the client's CPU\n",
           req, resp, delay_us, n, seconds, mr_bench_pct_us(lat, n, 50), mr_bench_pct_us(lat, n, 90),
           mr_bench_pct_us(lat, n, 99), mr_bench_pct_us(lat, n, 99.9), lat[n - 1] / 1000.0,
           mean, sys_ns, 100.0 * (double)same_cpu / (double)n);
  }
  free(lat);
  free(out);
  free(in);
  return 0;
}
