/* The smallest microrecd client, for bench/server_latency.sh. It asks the
 * server for its model's shape, packs inference requests of B samples the
 * way microrec-load does (fixed64 ids, packed floats, no logits wanted) and
 * exchanges them on a blocking socket with TCP_NODELAY: one write of the
 * frame, blocking reads of the answer, as bench/echo_floor does. So beside
 * the echo floor it gives the round trip of microrecd with no client-side
 * cost but the floor's, and beside microrec-load it shows what the load
 * generator itself adds.
 *
 *   min_client HOST:PORT [--batch B] [--seconds S] [--warmup W]
 *
 * Without --seconds it sends one request (id 100000: the varint size of the
 * ids in a run of ~10^5 requests) and prints the frame sizes on the wire,
 * 4-byte header included, which the script gives to echo_floor:
 *   {"batch": B, "request_bytes": N, "response_bytes": M}
 * With --seconds it also times blocking round trips for W + S seconds,
 * with new uniform random ids in every request (as microrec-load), and adds
 * round_trips and p50_us ... max_us (exact percentiles over the S seconds).
 *
 * Built by bench/server_latency.sh against libmicrorec (not in the suite). */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_stats.h"

#include "client/lib/microrec.h"
#include "client/lib/wire.h"
#include "proto/microrec.pb-c.h"

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int fail(const char *what, const char *why) {
  fprintf(stderr, "min_client: %s: %s\n", what, why);
  return 1;
}

static int io_full(int fd, uint8_t *p, size_t n, int out) {
  while (n) {
    ssize_t r = out ? write(fd, p, n) : read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static uint64_t xorshift(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* One request/response exchange of the frame; *resp_len gets the answer's
 * frame length. Fails on a non-OK answer. */
static int exchange(int fd, const uint8_t *frame, size_t len, uint8_t **rb,
                    size_t *rcap, size_t *resp_len, int check) {
  uint8_t hdr[MR_WIRE_HEADER];
  if (io_full(fd, (uint8_t *)frame, len, 1) || io_full(fd, hdr, sizeof hdr, 0))
    return fail("round trip", "the server closed the connection");
  uint32_t body = mr_wire_get_len(hdr);
  if (body > *rcap) {
    uint8_t *g = realloc(*rb, body);
    if (!g) return fail("response", strerror(ENOMEM));
    *rb = g;
    *rcap = body;
  }
  if (io_full(fd, *rb, body, 0)) return fail("response", "short read");
  *resp_len = MR_WIRE_HEADER + (size_t)body;
  if (!check) return 0;
  Microrec__Response *m = microrec__response__unpack(NULL, body, *rb);
  int bad = !m || m->status != MICROREC__STATUS__OK;
  if (bad) fail("response", m ? m->message : "not a Response message");
  if (m) microrec__response__free_unpacked(m, NULL);
  return bad;
}

static void usage(FILE *f) {
  fprintf(f, "usage: min_client HOST:PORT [--batch B] [--seconds S] "
             "[--warmup W]\n");
}

int main(int argc, char **argv) {
  size_t batch = 1;
  double seconds = 0, warmup = 1;
  static const struct option opts[] = {
      {"batch", required_argument, 0, 'b'},
      {"seconds", required_argument, 0, 's'},
      {"warmup", required_argument, 0, 'w'},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'b': batch = strtoull(optarg, NULL, 10); break;
    case 's': seconds = atof(optarg); break;
    case 'w': warmup = atof(optarg); break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1 || batch < 1 || seconds < 0 || warmup < 0) {
    usage(stderr);
    return 2;
  }
  const char *target = argv[optind];
  char host[256];
  uint16_t port;
  mr_err_t err = {0};
  if (mr_parse_hostport(target, host, sizeof host, &port, &err))
    return fail(target, err.msg);

  mr_client_t *cl = NULL;
  mr_model_info_t mi;
  memset(&mi, 0, sizeof mi);
  if (mr_client_connect(&cl, host, port, 5000, &err) ||
      mr_client_model_info(cl, &mi, &err))
    return fail("model info", err.msg);
  mr_client_close(cl);

  size_t nd = batch * mi.num_dense, ns = batch * mi.num_tables;
  float *dense = calloc(nd ? nd : 1, sizeof *dense);
  uint64_t *sparse = calloc(ns ? ns : 1, sizeof *sparse);
  if (!dense || !sparse) return fail("malloc", strerror(ENOMEM));
  uint64_t seed = 88172645463325252ULL;
  for (size_t i = 0; i < nd; i++)
    dense[i] = (float)(xorshift(&seed) % 1000) / 100.0f;
  for (size_t i = 0; i < ns; i++) sparse[i] = mi.rows[i % mi.num_tables] / 2;

  Microrec__InferRequest ir = MICROREC__INFER_REQUEST__INIT;
  ir.num_samples = (uint32_t)batch;
  ir.n_dense = nd;
  ir.dense = dense;
  ir.n_sparse = ns;
  ir.sparse = sparse;
  Microrec__Request rq = MICROREC__REQUEST__INIT;
  rq.id = 100000;
  rq.body_case = MICROREC__REQUEST__BODY_INFER;
  rq.infer = &ir;
  uint8_t *frame = NULL, *rb = NULL;
  size_t cap = 0, len = 0, rcap = 0, resp_len = 0;
  if (mr_wire_pack_request(&rq, &frame, &cap, &len, &err))
    return fail("pack", err.msg);

  char portstr[8];
  snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
  int gai = getaddrinfo(host, portstr, &hints, &ai);
  if (gai) return fail(target, gai_strerror(gai));
  int fd = socket(ai->ai_family, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen))
    return fail(target, strerror(errno));
  freeaddrinfo(ai);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (exchange(fd, frame, len, &rb, &rcap, &resp_len, 1)) return 1;
  size_t req_len = len;

  size_t n = 0, lcap = 1 << 16;
  uint64_t *lat = NULL;
  if (seconds > 0) {
    lat = malloc(lcap * sizeof *lat);
    if (!lat) return fail("malloc", strerror(ENOMEM));
    uint64_t start = now_ns();
    uint64_t from = start + (uint64_t)(warmup * 1e9);
    uint64_t end = from + (uint64_t)(seconds * 1e9);
    for (uint64_t t = start; t < end;) {
      /* New ids each time (the engine's gather is not kept warm by
       * repeats); packing happens outside the timed span. */
      for (size_t i = 0; i < ns; i++)
        sparse[i] = xorshift(&seed) % mi.rows[i % mi.num_tables];
      rq.id++;
      if (mr_wire_pack_request(&rq, &frame, &cap, &len, &err))
        return fail("pack", err.msg);
      uint64_t t0 = now_ns();
      if (exchange(fd, frame, len, &rb, &rcap, &resp_len, 0)) return 1;
      t = now_ns();
      if (t0 < from) continue;
      if (n == lcap) {
        uint64_t *g = realloc(lat, 2 * lcap * sizeof *lat);
        if (!g) return fail("malloc", strerror(ENOMEM));
        lat = g;
        lcap *= 2;
      }
      lat[n++] = t - t0;
    }
  }
  close(fd);
  printf("{\"batch\": %zu, \"request_bytes\": %zu, \"response_bytes\": %zu",
         batch, req_len, resp_len);
  if (n) {
    qsort(lat, n, sizeof *lat, mr_bench_cmp_u64);
    printf(", \"seconds\": %g, \"round_trips\": %zu, \"p50_us\": %.2f, "
           "\"p90_us\": %.2f, \"p99_us\": %.2f, \"p999_us\": %.2f, "
           "\"max_us\": %.2f",
           seconds, n, mr_bench_pct_us(lat, n, 50), mr_bench_pct_us(lat, n, 90),
           mr_bench_pct_us(lat, n, 99), mr_bench_pct_us(lat, n, 99.9), lat[n - 1] / 1000.0);
  }
  printf("}\n");
  free(lat);
  free(rb);
  free(frame);
  free(dense);
  free(sparse);
  mr_model_info_free(&mi);
  return 0;
}
