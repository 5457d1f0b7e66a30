/* Fault and load tests against the real microrecd (tests/README.md,
 * "Reliability"): overload beyond the ring, 1000 connections, slow readers
 * and writers, clients killed mid-request, SIGTERM under load, an engine
 * that fails, allocations that fail. Each is bounded in time, on loopback,
 * and checks that nothing is lost: every request sent is answered exactly
 * once (or, after SIGTERM, every request the server read), every OK score
 * equals the offline engine's for the same input, and the server exits 0.
 * Each logs the counts it checked (cr_log_info, on stderr).
 *
 * The long ones (a 60 s soak, reloads every second) are in tests/long/. */
#include <criterion/criterion.h>
#ifndef cr_fatal /* testutil.h uses it; only criterion/new/assert.h has it */
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif
#include <sys/stat.h>

#include "tests/unit/reliability.h"

static mr_test_server_t srv;
static mr_rel_ref_t ref;

/* The counts each test checked, on stderr (shown by every run, unlike
 * cr_log_info, which needs --verbose). */
#define report(...) \
  (fprintf(stderr, "[reliability] " __VA_ARGS__), fputc('\n', stderr))

static void fini(void) {
  mr_test_server_stop(&srv);
  mr_rel_ref_free(&ref);
}

TestSuite(reliability, .fini = fini, .timeout = 300);

/* RSS the server may gain over a phase that should leave it flat: its
 * allocator's caches, not a leak (stated in tests/README.md). */
#define RSS_SLACK_KB (MR_REL_SANITIZED ? 48 * 1024 : 16 * 1024)

static void start_model(const char *model, const char *const *flags) {
  mr_rel_small_quarantine();
  mr_test_server_start(&srv, model, flags);
  mr_rel_ref_init(&ref, srv.model, 4096, 42);
}

static void start(const char *const *flags) { start_model(NULL, flags); }

static void worker_init(mr_rel_worker_t *w, size_t lo, size_t hi,
                        size_t window, uint64_t max_requests,
                        atomic_int *stop, uint64_t seed) {
  memset(w, 0, sizeof *w);
  w->port = srv.port;
  w->ref = &ref;
  w->min_samples = lo;
  w->max_samples = hi;
  w->window = window;
  w->max_requests = max_requests;
  w->stop = stop;
  w->seed = seed;
}

/* ---- raw requests from the reference pool ---- */

static void raw_infer(int fd, uint64_t id, size_t off, size_t n) {
  Microrec__InferRequest inf = MICROREC__INFER_REQUEST__INIT;
  inf.num_samples = (uint32_t)n;
  inf.n_dense = n * ref.num_dense;
  inf.dense = ref.dense + off * ref.num_dense;
  inf.n_sparse = n * ref.num_tables;
  inf.sparse = (uint64_t *)(ref.ids + off * ref.num_tables);
  Microrec__Request req = MICROREC__REQUEST__INIT;
  req.id = id;
  req.body_case = MICROREC__REQUEST__BODY_INFER;
  req.infer = &inf;
  mr_test_raw_request(fd, &req);
}

/* Reads one response and checks it answers raw_infer(id, off, n). */
static void raw_expect_scores(int fd, uint64_t id, size_t off, size_t n) {
  Microrec__Response *r = mr_test_raw_response(fd, 30000);
  cr_assert(r, "connection closed before the answer to id %llu",
            (unsigned long long)id);
  cr_assert_eq(r->id, id);
  cr_assert_eq(r->status, MICROREC__STATUS__OK, "id %llu: %s",
               (unsigned long long)id, r->message);
  cr_assert(r->infer && r->infer->n_scores == n);
  for (size_t i = 0; i < n; i++)
    cr_assert(fabsf(r->infer->scores[i] - ref.scores[off + i]) <=
                  MR_REL_SCORE_TOL,
              "id %llu sample %zu: %.9g, offline %.9g",
              (unsigned long long)id, i, (double)r->infer->scores[i],
              (double)ref.scores[off + i]);
  microrec__response__free_unpacked(r, NULL);
}

static void close_rst(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

/* ---- overload ---- */

Test(reliability, overload_beyond_the_ring_answers_overloaded_and_rss_stays_flat) {
  /* A ring of 4 requests and no inline runs: 4 connections with 64
   * requests of up to 256 samples in flight each overflow it all the time. */
  const char *flags[] = {"--ring-capacity", "4", "--inline-max-samples", "0",
                         NULL};
  start(flags);
  enum { W = 4, ROUNDS = 4 };
  atomic_int stop = 0;
  long rss[ROUNDS];
  mr_rel_totals_t all = {0};
  for (int round = 0; round < ROUNDS; round++) {
    mr_rel_worker_t w[W];
    for (int i = 0; i < W; i++) {
      worker_init(&w[i], 16, 256, 64, 400, &stop, (uint64_t)(round * W + i + 1));
      mr_rel_worker_start(&w[i]);
    }
    for (int i = 0; i < W; i++) mr_rel_worker_join(&w[i], "overload worker");
    mr_rel_totals_t t = mr_rel_sum(w, W);
    all.sent += t.sent;
    all.ok += t.ok;
    all.overloaded += t.overloaded;
    all.samples += t.samples;
    for (int i = 0; i < W; i++) {
      cr_assert_eq(w[i].internal + w[i].shutting_down, 0);
      mr_rel_worker_free(&w[i]);
    }
    rss[round] = mr_rel_rss_kb(srv.pid);
  }
  long growth = rss[ROUNDS - 1] - rss[0];
  report("overload: %llu requests, each answered once: %llu OK (%llu "
              "samples checked against the offline engine), %llu "
              "OVERLOADED; server RSS %ld kB after round 1, %ld kB after "
              "round %d (growth %ld kB, bound %d kB)",
              (unsigned long long)all.sent, (unsigned long long)all.ok,
              (unsigned long long)all.samples,
              (unsigned long long)all.overloaded, rss[0], rss[ROUNDS - 1],
              ROUNDS, growth, RSS_SLACK_KB);
  cr_assert_gt(all.overloaded, 0, "a ring of 4 never overflowed");
  cr_assert_gt(all.ok, 0);
  cr_assert_eq(all.ok + all.overloaded, all.sent);
  cr_assert_leq(growth, RSS_SLACK_KB, "server RSS grew by %ld kB under "
                "overload", growth);
  mr_test_server_stop_clean(&srv);
}

/* ---- many connections ---- */

#define MANY 1000

Test(reliability, thousand_connections_open_and_close) {
  rlim_t lim = mr_rel_raise_nofile(4096);
  if (lim < 2 * MANY + 64)
    cr_skip_test("RLIMIT_NOFILE hard limit %llu is below %d",
                 (unsigned long long)lim, 2 * MANY + 64);
  const char *flags[] = {"--max-connections", "1100", NULL};
  start(flags);
  int fds0 = mr_rel_fd_count(srv.pid);
  int *fd = malloc(MANY * sizeof *fd);

  /* All open at once, one request on each, answers read after all sent. */
  for (int i = 0; i < MANY; i++) fd[i] = mr_test_raw_connect(srv.port);
  for (int i = 0; i < MANY; i++)
    raw_infer(fd[i], (uint64_t)i + 1, (size_t)i, 1 + (size_t)i % 3);
  uint64_t conns = mr_rel_wait_connections(&srv, MANY + 1, 20000);
  cr_assert_eq(conns, MANY + 1, "server counts %llu connections, expected "
               "%d + the asking one", (unsigned long long)conns, MANY);
  int peak_fds = mr_rel_fd_count(srv.pid);
  for (int i = 0; i < MANY; i++)
    raw_expect_scores(fd[i], (uint64_t)i + 1, (size_t)i, 1 + (size_t)i % 3);
  for (int i = 0; i < MANY; i++) {
    if (i % 2) close_rst(fd[i]);
    else close(fd[i]);
  }
  conns = mr_rel_wait_connections(&srv, 1, 20000);
  cr_assert_eq(conns, 1, "%llu connections still counted after closing "
               "all", (unsigned long long)conns);
  int fds1 = mr_rel_wait_fds(srv.pid, fds0, 20000);
  cr_assert_leq(fds1, fds0, "server holds %d descriptors, %d before", fds1,
                fds0);

  /* One after another; a third leave without reading their answer. */
  size_t read_back = 0;
  for (int i = 0; i < MANY; i++) {
    int f = mr_test_raw_connect(srv.port);
    raw_infer(f, 1, (size_t)i, 2);
    if (i % 3) {
      raw_expect_scores(f, 1, (size_t)i, 2);
      read_back++;
    }
    if (i % 2) close_rst(f);
    else close(f);
  }
  conns = mr_rel_wait_connections(&srv, 1, 20000);
  cr_assert_eq(conns, 1);
  int fds2 = mr_rel_wait_fds(srv.pid, fds0, 20000);
  cr_assert_leq(fds2, fds0, "server holds %d descriptors, %d before", fds2,
                fds0);
  report("1000 connections: %d open at once (server descriptors %d -> "
              "%d -> %d), %d answers checked; then %d one after another, "
              "%zu answers checked (%d left unread); connections counted "
              "after: %llu; descriptors after: %d",
              MANY, fds0, peak_fds, fds1, MANY, MANY, read_back,
              MANY - (int)read_back, (unsigned long long)conns, fds2);
  free(fd);
  mr_test_server_stop_clean(&srv);
}

/* ---- slow reader ---- */

/* A model whose path is ~2 KB long: a health response carries the path, so
 * each 11-byte request costs the server a ~2 KB answer to buffer. */
static void long_path_model(char *out, size_t len, char *top, size_t toplen) {
  mr_test_tmpdir(top, toplen);
  char seg[201];
  memset(seg, 'd', 200);
  seg[200] = 0;
  int n = snprintf(out, len, "%s", top);
  for (int i = 0; i < 9; i++) {
    n += snprintf(out + n, len - (size_t)n, "/%d%s", i, seg);
    cr_assert_eq(mkdir(out, 0755), 0, "mkdir: %s", strerror(errno));
  }
  snprintf(out + n, len - (size_t)n, "/small.safetensors");
  mr_test_write_small_model(out);
}

static void remove_long_path_model(char *path) {
  unlink(path);
  for (char *slash; (slash = strrchr(path, '/'));) {
    *slash = 0;
    if (rmdir(path) != 0) break;
  }
}

#define SLOW_REQS 100000
/* What the server may buffer for a client that stops reading: it stops
 * reading from it at 8 MiB of unsent answers (MR_CONN_WBUF_HIGH), plus the
 * buffer being written and the allocator's slack. */
#define SLOW_RSS_BOUND_KB (48 * 1024)

Test(reliability, slow_reader_is_not_buffered_without_bound) {
  char model[4096], top[256];
  long_path_model(model, sizeof model, top, sizeof top);
  start_model(model, NULL);

  /* SLOW_REQS health requests, ids 1.., as one byte string. */
  size_t cap = (size_t)SLOW_REQS * 16, len = 0;
  uint8_t *reqs = malloc(cap);
  for (uint64_t id = 1; id <= SLOW_REQS; id++) {
    Microrec__HealthRequest h = MICROREC__HEALTH_REQUEST__INIT;
    Microrec__Request req = MICROREC__REQUEST__INIT;
    req.id = id;
    req.body_case = MICROREC__REQUEST__BODY_HEALTH;
    req.health = &h;
    size_t n = microrec__request__get_packed_size(&req);
    mr_wire_put_len(reqs + len, (uint32_t)n);
    microrec__request__pack(&req, reqs + len + 4);
    len += 4 + n;
  }

  /* Another client keeps being served while the slow one stalls. */
  atomic_int stop = 0;
  mr_rel_worker_t w;
  worker_init(&w, 1, 32, 4, 0, &stop, 7);
  mr_rel_worker_start(&w);
  mr_test_sleep_ms(300);
  long rss0 = mr_rel_rss_kb(srv.pid);

  /* The slow reader: a small receive buffer, sends everything it can
   * without reading a byte. */
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(srv.port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  size_t sent = 0;
  long rss_peak = rss0;
  int64_t last_progress = mr_test_now_ms();
  while (sent < len && mr_test_now_ms() - last_progress < 2000) {
    ssize_t n = send(fd, reqs + sent, len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += (size_t)n;
      last_progress = mr_test_now_ms();
      continue;
    }
    cr_assert(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
              "send: %s", strerror(errno));
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    poll(&p, 1, 100);
    long r = mr_rel_rss_kb(srv.pid);
    if (r > rss_peak) rss_peak = r;
  }
  /* Whole requests the kernel took. */
  uint64_t nsent = 0;
  for (size_t off = 0; off + 4 <= sent;) {
    size_t flen = 4 + mr_wire_get_len(reqs + off);
    if (off + flen > sent) break;
    off += flen;
    nsent++;
  }
  /* Hold: read nothing for 2 s while the other client is served. */
  uint64_t answered_before = w.answered;
  for (int i = 0; i < 20; i++) {
    mr_test_sleep_ms(100);
    long r = mr_rel_rss_kb(srv.pid);
    if (r > rss_peak) rss_peak = r;
  }
  uint64_t answered_during = w.answered - answered_before;

  /* Now read every answer (the last frame may be partial: finish it). */
  if (sent < len) {
    size_t off = 0;
    for (uint64_t k = 0; k < nsent; k++) off += 4 + mr_wire_get_len(reqs + off);
    if (off < sent) { /* complete the partial frame */
      size_t flen = 4 + mr_wire_get_len(reqs + off);
      mr_test_raw_send(fd, reqs + sent, off + flen - sent);
      nsent++;
    }
  }
  uint8_t *seen = calloc(nsent + 1, 1);
  uint64_t got = 0, bytes = 0;
  while (got < nsent) {
    Microrec__Response *r = mr_test_raw_response(fd, 30000);
    cr_assert(r, "closed after %llu of %llu answers", (unsigned long long)got,
              (unsigned long long)nsent);
    cr_assert(r->id >= 1 && r->id <= nsent, "unknown id %llu",
              (unsigned long long)r->id);
    cr_assert_eq(seen[r->id], 0, "id %llu answered twice",
                 (unsigned long long)r->id);
    seen[r->id] = 1;
    cr_assert_eq(r->status, MICROREC__STATUS__OK, "%s", r->message);
    cr_assert(r->health && r->health->ready);
    bytes += 4 + microrec__response__get_packed_size(r);
    microrec__response__free_unpacked(r, NULL);
    got++;
  }
  close(fd);
  atomic_store(&stop, 1);
  mr_rel_worker_join(&w, "fast client");
  long rss1 = mr_rel_rss_kb(srv.pid);
  report("slow reader: %llu requests pipelined (%zu bytes), %llu "
              "answers (%llu bytes) read after a 2 s stall, each once; "
              "server RSS %ld kB before, peak %ld kB (+%ld kB, bound %d kB), "
              "%ld kB after; the other client had %llu answers during the "
              "stall, %llu in all, all correct",
              (unsigned long long)nsent, sent, (unsigned long long)got,
              (unsigned long long)bytes, rss0, rss_peak, rss_peak - rss0,
              SLOW_RSS_BOUND_KB, rss1, (unsigned long long)answered_during,
              (unsigned long long)w.answered);
  cr_assert_gt(bytes, 3ull * SLOW_RSS_BOUND_KB * 1024,
               "the slow reader was owed only %llu bytes: not enough to "
               "test the bound", (unsigned long long)bytes);
  cr_assert_leq(rss_peak - rss0, SLOW_RSS_BOUND_KB,
                "server RSS grew %ld kB buffering for a client that does "
                "not read", rss_peak - rss0);
  cr_assert_gt(answered_during, 0,
               "the other client got no answer while one stalled");
  mr_rel_worker_free(&w);
  free(seen);
  free(reqs);
  mr_test_server_stop_clean(&srv);
  remove_long_path_model(model);
}

/* ---- slow writers ---- */

#define DRIBBLERS 8

Test(reliability, slow_writers_dribbling_one_byte_at_a_time) {
  const char *flags[] = {"--idle-timeout-ms", "3000", NULL};
  start(flags);
  atomic_int stop = 0;
  mr_rel_worker_t w;
  worker_init(&w, 1, 64, 8, 0, &stop, 3);
  mr_rel_worker_start(&w);

  /* Each dribbler: an infer request of 3 + k samples, then a health
   * request, one byte per round, 2 ms between rounds. */
  int fd[DRIBBLERS];
  uint8_t *buf[DRIBBLERS];
  size_t len[DRIBBLERS], cap[DRIBBLERS], maxlen = 0;
  for (int k = 0; k < DRIBBLERS; k++) {
    fd[k] = mr_test_raw_connect(srv.port);
    size_t n = 3 + (size_t)k;
    Microrec__InferRequest inf = MICROREC__INFER_REQUEST__INIT;
    inf.num_samples = (uint32_t)n;
    inf.n_dense = n * ref.num_dense;
    inf.dense = ref.dense + (size_t)k * 10 * ref.num_dense;
    inf.n_sparse = n * ref.num_tables;
    inf.sparse = (uint64_t *)(ref.ids + (size_t)k * 10 * ref.num_tables);
    Microrec__Request req = MICROREC__REQUEST__INIT;
    req.id = 100 + (uint64_t)k;
    req.body_case = MICROREC__REQUEST__BODY_INFER;
    req.infer = &inf;
    buf[k] = NULL;
    cap[k] = 0;
    cr_assert_eq(mr_wire_pack_request(&req, &buf[k], &cap[k], &len[k], NULL),
                 0);
    Microrec__HealthRequest h = MICROREC__HEALTH_REQUEST__INIT;
    Microrec__Request hr = MICROREC__REQUEST__INIT;
    hr.id = 200 + (uint64_t)k;
    hr.body_case = MICROREC__REQUEST__BODY_HEALTH;
    hr.health = &h;
    uint8_t *hb = NULL;
    size_t hcap = 0, hlen = 0;
    cr_assert_eq(mr_wire_pack_request(&hr, &hb, &hcap, &hlen, NULL), 0);
    buf[k] = realloc(buf[k], len[k] + hlen);
    memcpy(buf[k] + len[k], hb, hlen);
    len[k] += hlen;
    free(hb);
    if (len[k] > maxlen) maxlen = len[k];
  }
  uint64_t answered_before = w.answered;
  for (size_t i = 0; i < maxlen; i++) {
    for (int k = 0; k < DRIBBLERS; k++)
      if (i < len[k]) mr_test_raw_send(fd[k], buf[k] + i, 1);
    mr_test_sleep_ms(2);
  }
  uint64_t answered_during = w.answered - answered_before;
  for (int k = 0; k < DRIBBLERS; k++) {
    /* Both answers, in either order. */
    int have_infer = 0, have_health = 0;
    for (int j = 0; j < 2; j++) {
      Microrec__Response *r = mr_test_raw_response(fd[k], 30000);
      cr_assert(r, "dribbler %d was closed", k);
      cr_assert_eq(r->status, MICROREC__STATUS__OK, "%s", r->message);
      if (r->id == 100 + (uint64_t)k) {
        size_t n = 3 + (size_t)k, off = (size_t)k * 10;
        cr_assert(r->infer && r->infer->n_scores == n);
        for (size_t i = 0; i < n; i++)
          cr_assert(fabsf(r->infer->scores[i] - ref.scores[off + i]) <=
                    MR_REL_SCORE_TOL);
        have_infer++;
      } else {
        cr_assert_eq(r->id, 200 + (uint64_t)k);
        have_health++;
      }
      microrec__response__free_unpacked(r, NULL);
    }
    cr_assert(have_infer == 1 && have_health == 1);
    close(fd[k]);
    free(buf[k]);
  }
  atomic_store(&stop, 1);
  mr_rel_worker_join(&w, "other client");
  report("slow writers: %d connections sent %zu..%zu-byte requests one "
              "byte every ~2 ms; all %d infer and %d health answers correct; "
              "the other client had %llu answers meanwhile (%llu samples "
              "checked)",
              DRIBBLERS, len[0], maxlen, DRIBBLERS, DRIBBLERS,
              (unsigned long long)answered_during,
              (unsigned long long)w.samples_checked);
  cr_assert_gt(answered_during, 0);
  mr_rel_worker_free(&w);
  mr_test_server_stop_clean(&srv);
}

/* ---- clients killed mid-request ---- */

/* The child: only system calls on memory prepared before the fork. Sends
 * the frames over and over, reading (and dropping) what comes back. */
static void killed_child(uint16_t port, const uint8_t *buf, size_t len) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) _exit(1);
  static char sink[1 << 16];
  for (;;) {
    for (size_t off = 0; off < len;) {
      ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
      if (n <= 0) _exit(2);
      off += (size_t)n;
    }
    while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
    }
  }
}

#define KILL_ROUNDS 25
#define KILL_PER_ROUND 2

/* Connections the server's debug log shows closed with requests of theirs
 * still at the engine. */
static int closed_in_flight(void) {
  size_t len = 0;
  char *text = mr_test_read_file(srv.log, &len);
  cr_assert(text, "cannot read %s", srv.log);
  int n = 0;
  for (char *p = text; (p = memmem(p, len - (size_t)(p - text),
                                   "in_flight=", 10));
       p += 10)
    if (p[10] >= '1' && p[10] <= '9') n++;
  free(text);
  return n;
}

Test(reliability, clients_killed_mid_request) {
  /* A small ring bounds the work the dead clients leave queued (it still
   * runs after they are gone, and SIGTERM waits for it); beyond it they get
   * OVERLOADED, cheaply. */
  const char *flags[] = {"--log-level", "debug", "--ring-capacity", "64",
                         NULL};
  start(flags);
  int fds0 = mr_rel_fd_count(srv.pid);
  /* Frames: big requests (likely cut mid-frame) between small ones. */
  uint8_t *frames = NULL;
  size_t fcap = 0, flen = 0;
  static const size_t sizes[] = {2000, 1, 3000, 7, 1, 1500};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    size_t n = sizes[i];
    Microrec__InferRequest inf = MICROREC__INFER_REQUEST__INIT;
    inf.num_samples = (uint32_t)n;
    inf.n_dense = n * ref.num_dense;
    inf.dense = ref.dense;
    inf.n_sparse = n * ref.num_tables;
    inf.sparse = (uint64_t *)ref.ids;
    Microrec__Request req = MICROREC__REQUEST__INIT;
    req.id = i + 1;
    req.body_case = MICROREC__REQUEST__BODY_INFER;
    req.infer = &inf;
    uint8_t *one = NULL;
    size_t cap = 0, len = 0;
    cr_assert_eq(mr_wire_pack_request(&req, &one, &cap, &len, NULL), 0);
    if (flen + len > fcap) frames = realloc(frames, fcap = (flen + len) * 2);
    memcpy(frames + flen, one, len);
    flen += len;
    free(one);
  }

  atomic_int stop = 0;
  mr_rel_worker_t w;
  worker_init(&w, 1, 128, 8, 0, &stop, 11);
  mr_rel_worker_start(&w);
  uint64_t rs = 99;
  int killed = 0;
  for (int round = 0; round < KILL_ROUNDS; round++) {
    pid_t kids[KILL_PER_ROUND];
    fflush(NULL);
    for (int k = 0; k < KILL_PER_ROUND; k++) {
      kids[k] = fork();
      cr_assert_geq(kids[k], 0, "fork: %s", strerror(errno));
      if (kids[k] == 0) killed_child(srv.port, frames, flen);
    }
    mr_test_sleep_ms(5 + (int)(mr_rel_rand(&rs) % 80));
    for (int k = 0; k < KILL_PER_ROUND; k++) {
      kill(kids[k], SIGKILL);
      int st;
      waitpid(kids[k], &st, 0);
      if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) killed++;
    }
    cr_assert(mr_test_server_alive(&srv), "server died in round %d", round);
  }
  atomic_store(&stop, 1);
  mr_rel_worker_join(&w, "surviving client");
  uint64_t conns = mr_rel_wait_connections(&srv, 1, 20000);
  int fds1 = mr_rel_wait_fds(srv.pid, fds0, 20000);
  int in_flight = closed_in_flight();
  report("killed clients: %d of %d children SIGKILLed while sending "
              "%zu-byte bursts of requests, %d of their connections closed "
              "with requests at the engine; the other client sent %llu, "
              "each answered once: %llu OK and correct (%llu samples), "
              "%llu OVERLOADED (ring of 64); afterwards %llu "
              "connection(s) counted, server descriptors %d (before %d)",
              killed, KILL_ROUNDS * KILL_PER_ROUND, flen, in_flight,
              (unsigned long long)w.sent, (unsigned long long)w.ok,
              (unsigned long long)w.samples_checked,
              (unsigned long long)w.overloaded,
              (unsigned long long)conns, fds1, fds0);
  cr_assert_gt(in_flight, 0, "no client was killed with requests in "
               "flight");
  cr_assert_eq(conns, 1, "connections of killed clients still counted");
  cr_assert_leq(fds1, fds0, "descriptors of killed clients still open");
  cr_assert_gt(killed, 0);
  mr_rel_worker_free(&w);
  free(frames);
  mr_test_server_stop_clean(&srv);
}

/* ---- SIGTERM under load ---- */

#define TERM_WORKERS 4

Test(reliability, sigterm_under_load_answers_every_accepted_request) {
  /* No inline runs: requests wait in the ring, so SIGTERM finds many of
   * them at the engine. */
  const char *flags[] = {"--inline-max-samples", "0", NULL};
  start(flags);
  atomic_int stop = 0;
  mr_rel_worker_t w[TERM_WORKERS];
  for (int i = 0; i < TERM_WORKERS; i++) {
    worker_init(&w[i], 64, 1024, 32, 0, &stop, (uint64_t)i + 21);
    w[i].until_closed = 1;
    mr_rel_worker_start(&w[i]);
  }
  mr_test_sleep_ms(1500);
  /* The clients keep sending through the signal, until the server closes
   * their connections. */
  int64_t t_term = mr_test_now_ms();
  for (int i = 0; i < TERM_WORKERS; i++) atomic_store(&w[i].mark_ms, t_term);
  cr_assert_eq(kill(srv.pid, SIGTERM), 0);
  for (int i = 0; i < TERM_WORKERS; i++) mr_rel_worker_join(&w[i], "client");
  int st = mr_rel_wait_exit(&srv, 30000);
  cr_assert(st >= 0, "microrecd did not exit within 30 s of SIGTERM");
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "microrecd ended with status 0x%x after SIGTERM", st);

  /* A connection's requests are read in order and every one read is
   * answered: the answered ids are exactly 1..k, each once. */
  mr_rel_totals_t t = mr_rel_sum(w, TERM_WORKERS);
  uint64_t after = 0, unanswered = 0;
  for (int i = 0; i < TERM_WORKERS; i++) {
    uint64_t k = w[i].answered;
    for (uint64_t id = 1; id <= k; id++)
      cr_assert(id <= w[i].seen_cap && w[i].seen[id - 1] == 1,
                "client %d: id %llu not answered although %llu of its "
                "requests were",
                i, (unsigned long long)id, (unsigned long long)k);
    cr_assert_eq(w[i].answered + w[i].unanswered, w[i].sent);
    cr_assert(w[i].closed, "client %d: the server did not close", i);
    after += w[i].answered_after_mark;
    unanswered += w[i].unanswered;
    mr_rel_worker_free(&w[i]);
  }
  report("SIGTERM under load: %llu requests sent on %d connections; "
              "%llu answered (%llu OK with %llu samples checked, %llu "
              "SHUTTING_DOWN), %llu of them after the signal; %llu never "
              "read by the server (unanswered, after every answered one); "
              "exit 0",
              (unsigned long long)t.sent, TERM_WORKERS,
              (unsigned long long)t.answered, (unsigned long long)t.ok,
              (unsigned long long)t.samples,
              (unsigned long long)t.shutting_down, (unsigned long long)after,
              (unsigned long long)unanswered);
  cr_assert_gt(after, 0, "nothing was in flight at SIGTERM");
  cr_assert_eq(t.overloaded + t.internal, 0);
}

/* ---- engine failure ---- */

Test(reliability, engine_failure_is_answered_internal_and_serving_goes_on) {
  setenv("MR_FAULT_ENGINE_EVERY", "7", 1); /* server/fault.h */
  start(NULL);
  enum { W = 3 };
  atomic_int stop = 0;
  mr_rel_worker_t w[W];
  for (int i = 0; i < W; i++) {
    worker_init(&w[i], 1, 64, 16, 300, &stop, (uint64_t)i + 31);
    mr_rel_worker_start(&w[i]);
  }
  for (int i = 0; i < W; i++) mr_rel_worker_join(&w[i], "client");
  mr_rel_totals_t t = mr_rel_sum(w, W);
  for (int i = 0; i < W; i++) mr_rel_worker_free(&w[i]);

  /* The message says what failed; the server counts it. */
  mr_client_t *c = mr_test_connect(&srv);
  mr_err_t err = {0};
  int saw = 0;
  for (int i = 0; i < 50 && !saw; i++) {
    uint64_t id;
    cr_assert_eq(mr_client_send_infer(c, 1, ref.dense, ref.num_dense, ref.ids,
                                      ref.num_tables, 0, &id, &err),
                 0, "%s", err.msg);
    mr_response_t r;
    cr_assert_eq(mr_client_recv(c, &r, &err), 0, "%s", err.msg);
    if (r.status == MR_STATUS_INTERNAL) {
      cr_assert(strstr(r.message, "injected engine fault"), "%s", r.message);
      saw = 1;
    } else {
      cr_assert_eq(r.status, MR_STATUS_OK, "%s", r.message);
      cr_assert(fabsf(r.scores[0] - ref.scores[0]) <= MR_REL_SCORE_TOL);
    }
    mr_response_free(&r);
  }
  cr_assert(saw, "no INTERNAL in 50 requests with every 7th run failing");
  mr_stats_reply_t st;
  cr_assert_eq(mr_client_stats(c, &st, &err), 0, "%s", err.msg);
  uint64_t counted = 0;
  for (size_t i = 0; i < st.num_errors; i++)
    if (st.errors[i].status == MR_STATUS_INTERNAL) counted = st.errors[i].count;
  mr_stats_reply_free(&st);
  mr_health_t h;
  cr_assert_eq(mr_client_health(c, &h, &err), 0, "%s", err.msg);
  cr_assert(h.ready);
  mr_health_free(&h);
  mr_client_close(c);
  report("engine failure: %llu requests, each answered once: %llu OK "
              "(%llu samples checked), %llu INTERNAL; the server counted "
              "%llu INTERNAL and stays ready",
              (unsigned long long)t.sent, (unsigned long long)t.ok,
              (unsigned long long)t.samples, (unsigned long long)t.internal,
              (unsigned long long)counted);
  cr_assert_gt(t.internal, 0);
  cr_assert_gt(t.ok, 0);
  cr_assert_eq(t.ok + t.internal + t.overloaded, t.sent);
  cr_assert_eq(counted, t.internal + 1, "the server's INTERNAL count");
  mr_test_server_stop_clean(&srv);
}

/* ---- allocation failure ---- */

Test(reliability, allocation_failure_fails_the_request_not_the_server) {
  if (MR_REL_SANITIZED)
    cr_skip_test("ASan maps terabytes of shadow memory: an address-space "
                 "limit cannot make the server's allocations fail");
  const char *flags[] = {"--max-frame-bytes", "1G", NULL};
  start(flags);
  atomic_int stop = 0;
  mr_rel_worker_t w;
  worker_init(&w, 1, 64, 8, 0, &stop, 41);
  mr_rel_worker_start(&w);
  mr_test_sleep_ms(300);

  /* Room for 96 MiB more address space: a 1 GiB frame cannot be held. */
  long vm_kb = mr_rel_status_kb(srv.pid, "VmSize");
  cr_assert_gt(vm_kb, 0);
  struct rlimit old, lim;
  cr_assert_eq(prlimit(srv.pid, RLIMIT_AS, NULL, &old), 0);
  lim = old;
  lim.rlim_cur = ((rlim_t)vm_kb + 96 * 1024) * 1024;
  cr_assert_eq(prlimit(srv.pid, RLIMIT_AS, &lim, NULL), 0, "prlimit: %s",
               strerror(errno));

  int fd = mr_test_raw_connect(srv.port);
  uint8_t hdr[4];
  mr_wire_put_len(hdr, 1u << 30);
  mr_test_raw_send(fd, hdr, 4);
  static uint8_t chunk[1 << 20];
  size_t sent = 0;
  int refused = 0;
  while (sent < (1u << 30)) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if (poll(&p, 1, 10000) <= 0) break;
    ssize_t n = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) {
      refused = 1; /* the server closed the connection */
      break;
    }
    sent += (size_t)n;
  }
  if (!refused) refused = mr_test_raw_wait_close(fd, 10000);
  close(fd);
  long rss_during = mr_rel_rss_kb(srv.pid);
  uint64_t answered_at_failure = w.answered;
  mr_test_sleep_ms(500);
  cr_assert(mr_test_server_alive(&srv), "the server died when an "
            "allocation failed");
  uint64_t answered_after = w.answered - answered_at_failure;
  lim.rlim_cur = old.rlim_cur;
  cr_assert_eq(prlimit(srv.pid, RLIMIT_AS, &lim, NULL), 0);
  mr_test_sleep_ms(300);
  atomic_store(&stop, 1);
  mr_rel_worker_join(&w, "other client");
  report("allocation failure: VmSize %ld kB, limit +96 MiB; a 1 GiB "
              "frame was cut off after %zu MiB (connection closed: %s); "
              "server RSS %ld kB; the other client had %llu answers after "
              "it, %llu in all, all correct",
              vm_kb, sent >> 20, refused ? "yes" : "no", rss_during,
              (unsigned long long)answered_after,
              (unsigned long long)w.answered);
  cr_assert(refused, "the server accepted %zu bytes of a 1 GiB frame under "
            "a 96 MiB allowance", sent);
  cr_assert_gt(answered_after, 0);
  mr_rel_worker_free(&w);
  mr_test_server_stop_clean(&srv);
}
