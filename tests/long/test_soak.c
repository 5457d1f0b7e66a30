/* Long fault test: a 60-second soak of mixed traffic against one server:
 * pipelining clients of three request sizes, a client that opens a
 * connection for each request (a tenth leave with a reset, unanswered),
 * and a client that sends bad requests. Every good request must be answered
 * exactly once with the offline engine's scores, every bad one with its
 * status; the server's RSS, measured at the start (after 5 s) and at the
 * end, may not grow more than SOAK_RSS_BOUND_KB; descriptors and
 * connections come back to their idle count. Part of `make test-long`
 * (tests/README.md, "Reliability"). */
#include <criterion/criterion.h>
#ifndef cr_fatal /* testutil.h uses it; only criterion/new/assert.h has it */
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif

#include "tests/unit/reliability.h"

#define report(...) \
  (fprintf(stderr, "[long_soak] " __VA_ARGS__), fputc('\n', stderr))

static mr_test_server_t srv;
static mr_rel_ref_t ref;

static void fini(void) {
  mr_test_server_stop(&srv);
  mr_rel_ref_free(&ref);
}

TestSuite(long_soak, .fini = fini, .timeout = 600);

#define SOAK_SECONDS 60
#define WARMUP_SECONDS 5
/* Allowed RSS growth from the start to the end of the soak: the
 * allocator's caches settle in the first seconds; a leak of even 100 bytes
 * per request would exceed it (the soak makes several 100k requests). */
#define SOAK_RSS_BOUND_KB (MR_REL_SANITIZED ? 48 * 1024 : 8 * 1024)
#define WORKERS 3

/* ---- a client that connects for every request ---- */

typedef struct churner {
  pthread_t tid;
  atomic_int *stop;
  uint64_t connections, answered, left;
  int failed;
  char problem[1024];
} churner_t;

static void *churner_main(void *arg) {
  churner_t *ch = arg;
  mr_err_t err = {0};
  for (uint64_t k = 0; !atomic_load(ch->stop); k++) {
    mr_client_t *c = NULL;
    if (mr_client_connect(&c, "127.0.0.1", srv.port, 20000, &err)) {
      snprintf(ch->problem, sizeof ch->problem, "connect: %s", err.msg);
      ch->failed = 1;
      return NULL;
    }
    ch->connections++;
    size_t off = (size_t)(k * 13 % (ref.n - 4)), n = 1 + k % 4;
    uint64_t id;
    int rc = mr_client_send_infer(c, n, ref.dense + off * ref.num_dense,
                                  ref.num_dense, ref.ids + off * ref.num_tables,
                                  ref.num_tables, 0, &id, &err);
    if (rc == 0 && k % 10 == 9) { /* leave without reading the answer */
      ch->left++;
      mr_client_close(c); /* the socket may still hold unread bytes */
      continue;
    }
    mr_response_t r;
    if (rc == 0) rc = mr_client_recv(c, &r, &err);
    if (rc) {
      snprintf(ch->problem, sizeof ch->problem, "request %llu: %s",
               (unsigned long long)k, err.msg);
      ch->failed = 1;
      mr_client_close(c);
      return NULL;
    }
    int good = r.status == MR_STATUS_OK && r.num_scores == n;
    for (size_t i = 0; good && i < n; i++)
      good = fabsf(r.scores[i] - ref.scores[off + i]) <= MR_REL_SCORE_TOL;
    if (!good) {
      snprintf(ch->problem, sizeof ch->problem, "request %llu: %s %s",
               (unsigned long long)k, mr_client_status_name(r.status),
               r.status ? r.message : "with wrong scores");
      ch->failed = 1;
    }
    ch->answered++;
    mr_response_free(&r);
    mr_client_close(c);
    if (ch->failed) return NULL;
  }
  return NULL;
}

/* ---- a client that sends bad requests ---- */

typedef struct bad_client {
  pthread_t tid;
  atomic_int *stop;
  uint64_t out_of_range, bad_request, framing_closed, good;
  int failed;
  char problem[1024];
} bad_client_t;

static int expect(bad_client_t *b, mr_client_t *c, size_t n,
                  const float *dense, size_t nd, const int64_t *ids, int want,
                  const char *what) {
  mr_err_t err = {0};
  uint64_t id;
  mr_response_t r;
  int rc = mr_client_send_infer(c, n, dense, nd, ids, ref.num_tables, 0, &id,
                                &err);
  if (rc == 0) rc = mr_client_recv(c, &r, &err);
  if (rc) {
    snprintf(b->problem, sizeof b->problem, "%s: %s", what, err.msg);
    return b->failed = 1;
  }
  int ok = r.id == id && r.status == want &&
           (want != MR_STATUS_OK ||
            fabsf(r.scores[0] - ref.scores[0]) <= MR_REL_SCORE_TOL);
  if (!ok) {
    snprintf(b->problem, sizeof b->problem, "%s: answered %s (%s), expected "
             "%s", what, mr_client_status_name(r.status), r.message,
             mr_client_status_name(want));
    b->failed = 1;
  }
  mr_response_free(&r);
  return b->failed;
}

/* A frame of length 0 on a fresh connection: the server must close it. */
static int framing_error_closes(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(srv.port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int closed = 0;
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      send(fd, "\0\0\0\0", 4, MSG_NOSIGNAL) == 4) {
    int64_t deadline = mr_test_now_ms() + 10000;
    char buf[4096];
    while (!closed && mr_test_now_ms() < deadline) {
      struct pollfd p = {.fd = fd, .events = POLLIN};
      if (poll(&p, 1, 100) <= 0) continue;
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      closed = n == 0 || (n < 0 && errno == ECONNRESET);
    }
  }
  if (fd >= 0) close(fd);
  return closed;
}

static void *bad_main(void *arg) {
  bad_client_t *b = arg;
  mr_err_t err = {0};
  mr_client_t *c = NULL;
  if (mr_client_connect(&c, "127.0.0.1", srv.port, 20000, &err)) {
    snprintf(b->problem, sizeof b->problem, "connect: %s", err.msg);
    b->failed = 1;
    return NULL;
  }
  size_t nd = ref.num_dense, nt = ref.num_tables;
  float dense[64];
  int64_t ids[64];
  for (uint64_t k = 0; !atomic_load(b->stop) && !b->failed; k++) {
    memcpy(dense, ref.dense, nd * sizeof *dense);
    memcpy(ids, ref.ids, nt * sizeof *ids);
    ids[k % nt] = (int64_t)mr_test_rows[k % nt] + (int64_t)k; /* too big */
    if (expect(b, c, 1, dense, nd, ids, MR_STATUS_OUT_OF_RANGE, "bad id"))
      break;
    b->out_of_range++;
    ids[k % nt] = -1 - (int64_t)k;
    if (expect(b, c, 1, dense, nd, ids, MR_STATUS_OUT_OF_RANGE, "negative id"))
      break;
    b->out_of_range++;
    memcpy(ids, ref.ids, nt * sizeof *ids);
    dense[k % nd] = k % 2 ? NAN : INFINITY;
    if (expect(b, c, 1, dense, nd, ids, MR_STATUS_BAD_REQUEST, "NaN/Inf"))
      break;
    b->bad_request++;
    if (expect(b, c, 1, ref.dense, nd - 1, ids, MR_STATUS_BAD_REQUEST,
               "dense count"))
      break;
    b->bad_request++;
    if (expect(b, c, 1, ref.dense, nd, ref.ids, MR_STATUS_OK, "good after bad"))
      break;
    b->good++;
    if (k % 50 == 0) {
      if (!framing_error_closes()) {
        snprintf(b->problem, sizeof b->problem,
                 "a frame of length 0 did not close the connection");
        b->failed = 1;
        break;
      }
      b->framing_closed++;
    }
    mr_test_sleep_ms(5);
  }
  mr_client_close(c);
  return NULL;
}

Test(long_soak, sixty_seconds_of_mixed_traffic_rss_stays_flat) {
  mr_rel_small_quarantine();
  mr_test_server_start(&srv, NULL, NULL);
  mr_rel_ref_init(&ref, srv.model, 4096, 42);
  int fds0 = mr_rel_fd_count(srv.pid);
  long rss_idle = mr_rel_rss_kb(srv.pid);

  atomic_int stop = 0;
  mr_rel_worker_t w[WORKERS];
  static const size_t lo[WORKERS] = {1, 16, 500}, hi[WORKERS] = {4, 256, 2000};
  static const size_t win[WORKERS] = {4, 16, 2};
  for (int i = 0; i < WORKERS; i++) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].port = srv.port;
    w[i].ref = &ref;
    w[i].min_samples = lo[i];
    w[i].max_samples = hi[i];
    w[i].window = win[i];
    w[i].stop = &stop;
    w[i].seed = (uint64_t)i + 1;
    mr_rel_worker_start(&w[i]);
  }
  churner_t ch = {.stop = &stop};
  bad_client_t bad = {.stop = &stop};
  cr_assert_eq(pthread_create(&ch.tid, NULL, churner_main, &ch), 0);
  cr_assert_eq(pthread_create(&bad.tid, NULL, bad_main, &bad), 0);

  long rss[SOAK_SECONDS / 5 + 1];
  int nrss = 0;
  for (int sec = 1; sec <= SOAK_SECONDS; sec++) {
    mr_test_sleep_ms(1000);
    cr_assert(mr_test_server_alive(&srv), "server died after %d s", sec);
    if (sec % 5 == 0) rss[nrss++] = mr_rel_rss_kb(srv.pid);
  }
  long rss_start = rss[WARMUP_SECONDS / 5 - 1], rss_end = rss[nrss - 1];
  atomic_store(&stop, 1);
  for (int i = 0; i < WORKERS; i++) mr_rel_worker_join(&w[i], "client");
  pthread_join(ch.tid, NULL);
  pthread_join(bad.tid, NULL);
  cr_assert_eq(ch.failed, 0, "connecting client: %s", ch.problem);
  cr_assert_eq(bad.failed, 0, "bad client: %s", bad.problem);

  uint64_t conns = mr_rel_wait_connections(&srv, 1, 20000);
  int fds1 = mr_rel_wait_fds(srv.pid, fds0, 20000);
  long rss_after = mr_rel_rss_kb(srv.pid);
  mr_rel_totals_t t = mr_rel_sum(w, WORKERS);
  char trend[512];
  int n = 0;
  for (int i = 0; i < nrss; i++)
    n += snprintf(trend + n, sizeof trend - (size_t)n, "%s%ld", i ? " " : "",
                  rss[i]);
  report("%d s soak: pipelining clients sent %llu requests, all answered "
         "once, %llu OK (%llu samples checked against the offline engine), "
         "%llu OVERLOADED; %llu connections opened for one request each "
         "(%llu answers checked, %llu left with the answer unread); bad "
         "requests answered as they should: %llu OUT_OF_RANGE, %llu "
         "BAD_REQUEST, %llu framing errors closed, %llu good ones between; "
         "server RSS kB idle %ld, every 5 s: %s; start %ld -> end %ld "
         "(growth %ld kB, bound %d kB), after the load %ld; descriptors "
         "%d -> %d; connections after: %llu",
         SOAK_SECONDS, (unsigned long long)t.sent, (unsigned long long)t.ok,
         (unsigned long long)t.samples, (unsigned long long)t.overloaded,
         (unsigned long long)ch.connections, (unsigned long long)ch.answered,
         (unsigned long long)ch.left, (unsigned long long)bad.out_of_range,
         (unsigned long long)bad.bad_request,
         (unsigned long long)bad.framing_closed, (unsigned long long)bad.good,
         rss_idle, trend, rss_start, rss_end, rss_end - rss_start,
         SOAK_RSS_BOUND_KB, rss_after, fds0, fds1, (unsigned long long)conns);
  cr_assert_eq(t.ok + t.overloaded, t.sent);
  cr_assert_gt(t.ok, 0);
  cr_assert_gt(ch.answered, 0);
  cr_assert_gt(bad.good, 0);
  cr_assert_leq(rss_end - rss_start, SOAK_RSS_BOUND_KB,
                "server RSS grew %ld kB in %d s of load", rss_end - rss_start,
                SOAK_SECONDS - WARMUP_SECONDS);
  cr_assert_eq(conns, 1, "%llu connections still counted",
               (unsigned long long)conns);
  cr_assert_leq(fds1, fds0, "server holds %d descriptors, %d before", fds1,
                fds0);
  for (int i = 0; i < WORKERS; i++) mr_rel_worker_free(&w[i]);
  mr_test_server_stop_clean(&srv);
}
