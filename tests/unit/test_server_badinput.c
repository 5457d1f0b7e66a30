/* Bad input against the real microrecd: each case gets a clear status or a
 * clean close, the server survives (and exits 0 on SIGTERM at the end), and
 * a good request from another client is still answered correctly. */
#include <criterion/criterion.h>
#ifndef cr_fatal /* testutil.h uses it; only criterion/new/assert.h has it */
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif
#include <math.h>

#include "tests/unit/server_proc.h"

static mr_test_server_t srv;

static void stop_server(void) { mr_test_server_stop(&srv); }

#define GOOD_N 5
static float baseline[GOOD_N];

static void good_input(float *dense, int64_t *ids) {
  for (size_t i = 0; i < GOOD_N; i++) {
    for (size_t j = 0; j < MR_TEST_NUM_DENSE; j++)
      dense[i * MR_TEST_NUM_DENSE + j] = 0.25f * (float)(i + j);
    for (size_t k = 0; k < MR_TEST_NUM_TABLES; k++)
      ids[i * MR_TEST_NUM_TABLES + k] =
          (int64_t)((i * 7 + k * 3) % mr_test_rows[k]);
  }
}

/* Scores the good input on a new connection. A connection the server has
 * not yet counted as closed may hold the last slot (--max-connections), so
 * a refused or closed attempt is retried for a while. */
static void good_scores(float *out) {
  float dense[GOOD_N * MR_TEST_NUM_DENSE];
  int64_t ids[GOOD_N * MR_TEST_NUM_TABLES];
  good_input(dense, ids);
  mr_err_t err = {0};
  for (int attempt = 0;; attempt++) {
    mr_client_t *c = NULL;
    int rc = mr_client_connect(&c, "127.0.0.1", srv.port, 10000, &err);
    if (rc == 0)
      rc = mr_client_infer(c, GOOD_N, dense, MR_TEST_NUM_DENSE, ids,
                           MR_TEST_NUM_TABLES, NULL, out, NULL, &err);
    mr_client_close(c);
    if (rc == 0) return;
    if (rc != MR_ECLOSED || attempt == 50) {
      if (!mr_test_server_alive(&srv)) mr_test_server_dump_log(&srv);
      cr_fatal("good request failed: %s", err.msg);
    }
    mr_test_sleep_ms(100);
  }
}

static void start(const char *const *extra) {
  mr_test_server_start(&srv, NULL, extra);
  good_scores(baseline);
}

static void assert_good(void) {
  float s[GOOD_N];
  good_scores(s);
  for (size_t i = 0; i < GOOD_N; i++)
    cr_assert_float_eq(s[i], baseline[i], 1e-6, "sample %zu: %g vs %g", i,
                       s[i], baseline[i]);
}

/* The server must answer with a non-OK status and/or close: never hang,
 * never answer OK. Returns the status seen (-1 if it only closed). */
static int expect_refused(int fd, int must_close) {
  Microrec__Response *r = mr_test_raw_response(fd, 10000);
  int status = -1;
  if (r) {
    status = (int)r->status;
    cr_assert_neq(r->status, MICROREC__STATUS__OK,
                  "bad input answered OK");
    cr_assert(r->message && r->message[0], "status %s without a message",
              mr_client_status_name(status));
    cr_log_info("refused: id %llu %s: %s", (unsigned long long)r->id,
                mr_client_status_name(status), r->message);
    microrec__response__free_unpacked(r, NULL);
    if (must_close)
      cr_assert(mr_test_raw_wait_close(fd, 10000),
                "connection left open after a framing error");
  }
  return status;
}

TestSuite(server_badinput, .fini = stop_server, .timeout = 30);

Test(server_badinput, frame_of_length_zero_closes_the_connection) {
  start(NULL);
  int fd = mr_test_raw_connect(srv.port);
  mr_test_raw_frame(fd, 0, NULL, 0);
  expect_refused(fd, 1);
  close(fd);
  assert_good();
  mr_test_server_stop_clean(&srv);
}

Test(server_badinput, frame_beyond_max_frame_closes_the_connection) {
  const char *flags[] = {"--max-frame-bytes", "65536", NULL};
  start(flags);
  int fd = mr_test_raw_connect(srv.port);
  uint8_t body[1024] = {0};
  mr_test_raw_frame(fd, 65537, body, sizeof body);
  expect_refused(fd, 1);
  close(fd);
  fd = mr_test_raw_connect(srv.port);
  mr_test_raw_frame(fd, 0xffffffffu, NULL, 0);
  expect_refused(fd, 1);
  close(fd);
  assert_good();
  mr_test_server_stop_clean(&srv);
}

Test(server_badinput, bytes_that_are_not_a_request) {
  start(NULL);
  int fd = mr_test_raw_connect(srv.port);
  uint8_t junk[16];
  memset(junk, 0xff, sizeof junk);
  mr_test_raw_frame(fd, sizeof junk, junk, sizeof junk);
  int st = expect_refused(fd, 0);
  cr_assert(st == -1 || st == MR_STATUS_BAD_REQUEST,
            "undecodable frame answered %s", mr_client_status_name(st));
  close(fd);
  assert_good();
  mr_test_server_stop_clean(&srv);
}

Test(server_badinput, request_without_a_body_is_unknown) {
  start(NULL);
  int fd = mr_test_raw_connect(srv.port);
  Microrec__Request req = MICROREC__REQUEST__INIT;
  req.id = 42;
  mr_test_raw_request(fd, &req);
  Microrec__Response *r = mr_test_raw_response(fd, 10000);
  cr_assert(r, "server closed instead of answering UNKNOWN_REQUEST");
  cr_assert_eq(r->id, 42);
  cr_assert_eq(r->status, MICROREC__STATUS__UNKNOWN_REQUEST, "got %s: %s",
               mr_client_status_name((int)r->status), r->message);
  microrec__response__free_unpacked(r, NULL);
  close(fd);
  assert_good();
  mr_test_server_stop_clean(&srv);
}

/* Sends one infer request on c and returns its response (status checked by
 * the caller); the connection must stay usable for a good request. */
static void expect_status(mr_client_t *c, size_t n, const float *dense,
                          size_t num_dense, const int64_t *ids,
                          size_t num_tables, int want, mr_response_t *r) {
  uint64_t id;
  mr_err_t err = {0};
  cr_assert_eq(mr_client_send_infer(c, n, dense, num_dense, ids, num_tables,
                                    0, &id, &err),
               0, "%s", err.msg);
  cr_assert_eq(mr_client_recv(c, r, &err), 0, "%s", err.msg);
  cr_assert_eq(r->id, id);
  cr_assert_eq(r->status, want, "expected %s, got %s: %s",
               mr_client_status_name(want), mr_client_status_name(r->status), r->message);
  cr_assert(r->message[0], "%s without a message", mr_client_status_name(want));
  cr_log_info("%s: %s", mr_client_status_name(r->status), r->message);
}

/* The same connection still scores the good input correctly. */
static void assert_connection_usable(mr_client_t *c) {
  float dense[GOOD_N * MR_TEST_NUM_DENSE], s[GOOD_N];
  int64_t ids[GOOD_N * MR_TEST_NUM_TABLES];
  good_input(dense, ids);
  mr_err_t err = {0};
  cr_assert_eq(mr_client_infer(c, GOOD_N, dense, MR_TEST_NUM_DENSE, ids,
                               MR_TEST_NUM_TABLES, NULL, s, NULL, &err),
               0, "connection unusable after a rejected request: %s",
               err.msg);
  for (size_t i = 0; i < GOOD_N; i++)
    cr_assert_float_eq(s[i], baseline[i], 1e-6);
}

Test(server_badinput, wrong_number_of_dense_values) {
  start(NULL);
  mr_client_t *c = mr_test_connect(&srv);
  float dense[2 * MR_TEST_NUM_DENSE] = {0};
  int64_t ids[2 * MR_TEST_NUM_TABLES] = {0};
  mr_response_t r;
  expect_status(c, 2, dense, MR_TEST_NUM_DENSE - 1, ids, MR_TEST_NUM_TABLES,
                MR_STATUS_BAD_REQUEST, &r);
  mr_response_free(&r);
  expect_status(c, 2, NULL, 0, ids, MR_TEST_NUM_TABLES, MR_STATUS_BAD_REQUEST,
                &r);
  mr_response_free(&r);
  assert_connection_usable(c);
  mr_client_close(c);
  assert_good();
  mr_test_server_stop_clean(&srv);
}

Test(server_badinput, wrong_number_of_ids) {
  start(NULL);
  mr_client_t *c = mr_test_connect(&srv);
  float dense[2 * MR_TEST_NUM_DENSE] = {0};
  int64_t ids[2 * (MR_TEST_NUM_TABLES + 1)] = {0};
  mr_response_t r;
  expect_status(c, 2, dense, MR_TEST_NUM_DENSE, ids, MR_TEST_NUM_TABLES + 1,
                MR_STATUS_BAD_REQUEST, &r);
  mr_response_free(&r);
  expect_status(c, 2, dense, MR_TEST_NUM_DENSE, ids, MR_TEST_NUM_TABLES - 1,
                MR_STATUS_BAD_REQUEST, &r);
  mr_response_free(&r);
  assert_connection_usable(c);
  mr_client_close(c);
  assert_good();
  mr_test_server_stop_clean(&srv);
}

Test(server_badinput, id_outside_its_table_is_out_of_range) {
  start(NULL);
  mr_client_t *c = mr_test_connect(&srv);
  float dense[2 * MR_TEST_NUM_DENSE] = {0};
  int64_t ids[2 * MR_TEST_NUM_TABLES] = {0};
  ids[MR_TEST_NUM_TABLES + 1] = 20; /* sample 1, table 1 has 20 rows */
  mr_response_t r;
  expect_status(c, 2, dense, MR_TEST_NUM_DENSE, ids, MR_TEST_NUM_TABLES,
                MR_STATUS_OUT_OF_RANGE, &r);
  cr_assert(strstr(r.message, "table 1"), "message does not name the "
            "table: %s", r.message);
  cr_assert(strstr(r.message, "20"), "message does not give the range: %s",
            r.message);
  mr_response_free(&r);
  ids[MR_TEST_NUM_TABLES + 1] = 0;
  ids[2] = -1; /* negative id in table 2 */
  expect_status(c, 2, dense, MR_TEST_NUM_DENSE, ids, MR_TEST_NUM_TABLES,
                MR_STATUS_OUT_OF_RANGE, &r);
  cr_assert(strstr(r.message, "table 2"), "%s", r.message);
  mr_response_free(&r);
  ids[2] = INT64_MAX;
  expect_status(c, 2, dense, MR_TEST_NUM_DENSE, ids, MR_TEST_NUM_TABLES,
                MR_STATUS_OUT_OF_RANGE, &r);
  mr_response_free(&r);
  assert_connection_usable(c);
  mr_client_close(c);
  assert_good();
  mr_test_server_stop_clean(&srv);
}

Test(server_badinput, nan_and_infinite_dense_values_are_rejected) {
  start(NULL);
  mr_client_t *c = mr_test_connect(&srv);
  const float bad[] = {NAN, INFINITY, -INFINITY};
  for (size_t b = 0; b < 3; b++) {
    float dense[2 * MR_TEST_NUM_DENSE] = {0};
    int64_t ids[2 * MR_TEST_NUM_TABLES] = {0};
    dense[MR_TEST_NUM_DENSE + 2] = bad[b];
    mr_response_t r;
    expect_status(c, 2, dense, MR_TEST_NUM_DENSE, ids, MR_TEST_NUM_TABLES,
                  MR_STATUS_BAD_REQUEST, &r);
    mr_response_free(&r);
  }
  assert_connection_usable(c);
  mr_client_close(c);
  assert_good();
  mr_test_server_stop_clean(&srv);
}

Test(server_badinput, too_many_samples_in_one_request) {
  const char *flags[] = {"--max-request-samples", "100", NULL};
  start(flags);
  mr_client_t *c = mr_test_connect(&srv);
  float *dense = calloc(101 * MR_TEST_NUM_DENSE, sizeof *dense);
  int64_t *ids = calloc(101 * MR_TEST_NUM_TABLES, sizeof *ids);
  mr_response_t r;
  expect_status(c, 101, dense, MR_TEST_NUM_DENSE, ids, MR_TEST_NUM_TABLES,
                MR_STATUS_BAD_REQUEST, &r);
  mr_response_free(&r);
  uint64_t id;
  mr_err_t err = {0};
  cr_assert_eq(mr_client_send_infer(c, 100, dense, MR_TEST_NUM_DENSE, ids,
                                    MR_TEST_NUM_TABLES, 0, &id, &err),
               0);
  cr_assert_eq(mr_client_recv(c, &r, &err), 0, "%s", err.msg);
  cr_assert_eq(r.status, MR_STATUS_OK, "100 samples: %s", r.message);
  cr_assert_eq(r.num_scores, 100);
  mr_response_free(&r);
  free(dense);
  free(ids);
  mr_client_close(c);
  assert_good();
  mr_test_server_stop_clean(&srv);
}

Test(server_badinput, half_a_frame_then_stall_is_closed_after_idle_timeout) {
  const char *flags[] = {"--idle-timeout-ms", "300", NULL};
  start(flags);
  int fd = mr_test_raw_connect(srv.port);
  uint8_t part[10] = {0};
  mr_test_raw_frame(fd, 100, part, sizeof part);
  cr_assert(mr_test_raw_wait_close(fd, 10000),
            "stalled half frame not closed (idle timeout 300 ms) in 10 s");
  close(fd);
  /* A header alone, too. */
  fd = mr_test_raw_connect(srv.port);
  mr_test_raw_send(fd, "\0\0", 2);
  cr_assert(mr_test_raw_wait_close(fd, 10000));
  close(fd);
  assert_good();
  mr_test_server_stop_clean(&srv);
}

/* Pipelines count requests of n samples on a raw socket, then closes it
 * (with a reset when rst). */
static void send_and_vanish(size_t count, size_t n, int rst) {
  int fd = mr_test_raw_connect(srv.port);
  float *dense = calloc(n * MR_TEST_NUM_DENSE, sizeof *dense);
  uint64_t *ids = calloc(n * MR_TEST_NUM_TABLES, sizeof *ids);
  Microrec__InferRequest inf = MICROREC__INFER_REQUEST__INIT;
  inf.num_samples = (uint32_t)n;
  inf.n_dense = n * MR_TEST_NUM_DENSE;
  inf.dense = dense;
  inf.n_sparse = n * MR_TEST_NUM_TABLES;
  inf.sparse = ids;
  Microrec__Request req = MICROREC__REQUEST__INIT;
  req.body_case = MICROREC__REQUEST__BODY_INFER;
  req.infer = &inf;
  for (size_t i = 0; i < count; i++) {
    req.id = i + 1;
    mr_test_raw_request(fd, &req);
  }
  if (rst) {
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  close(fd);
  free(dense);
  free(ids);
}

Test(server_badinput, disconnect_with_requests_in_flight) {
  start(NULL);
  for (int round = 0; round < 4; round++) {
    send_and_vanish(50, 500, round % 2);
    assert_good();
  }
  cr_assert(mr_test_server_alive(&srv));
  mr_test_server_stop_clean(&srv);
}

static void raw_health_ok(int fd, uint64_t id) {
  Microrec__HealthRequest h = MICROREC__HEALTH_REQUEST__INIT;
  Microrec__Request req = MICROREC__REQUEST__INIT;
  req.id = id;
  req.body_case = MICROREC__REQUEST__BODY_HEALTH;
  req.health = &h;
  mr_test_raw_request(fd, &req);
  Microrec__Response *r = mr_test_raw_response(fd, 10000);
  cr_assert(r, "a connection within the limit was closed");
  cr_assert_eq(r->id, id);
  cr_assert_eq(r->status, MICROREC__STATUS__OK);
  microrec__response__free_unpacked(r, NULL);
}

Test(server_badinput, more_connections_than_the_limit) {
  const char *flags[] = {"--max-connections", "2", NULL};
  start(flags);
  int a = mr_test_raw_connect(srv.port), b = mr_test_raw_connect(srv.port);
  raw_health_ok(a, 1);
  raw_health_ok(b, 1);
  int extra = mr_test_raw_connect(srv.port);
  expect_refused(extra, 1); /* a status, or a clean close */
  close(extra);
  raw_health_ok(a, 2); /* the admitted ones are unaffected */
  raw_health_ok(b, 2);
  close(a);
  assert_good(); /* a freed slot is usable again */
  raw_health_ok(b, 3);
  close(b);
  mr_test_server_stop_clean(&srv);
}

#define RING_CONNS 2
#define RING_REQS 60
#define RING_SAMPLES 8000

Test(server_badinput, full_ring_answers_every_request_exactly_once) {
  const char *flags[] = {"--ring-capacity", "2", "--max-batch", "256", NULL};
  start(flags);
  size_t n = RING_SAMPLES;
  float *dense = malloc(n * MR_TEST_NUM_DENSE * sizeof *dense);
  int64_t *ids = malloc(n * MR_TEST_NUM_TABLES * sizeof *ids);
  float *expect = malloc(n * sizeof *expect);
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < MR_TEST_NUM_DENSE; j++)
      dense[i * MR_TEST_NUM_DENSE + j] = (float)((i + j) % 5) * 0.5f;
    for (size_t k = 0; k < MR_TEST_NUM_TABLES; k++)
      ids[i * MR_TEST_NUM_TABLES + k] = (int64_t)((i + k) % mr_test_rows[k]);
  }
  mr_err_t err = {0};
  mr_client_t *c[RING_CONNS];
  mr_infer_opts_t one = {.batch = n, .window = 1, .overload_retries = 100};
  c[0] = mr_test_connect(&srv);
  cr_assert_eq(mr_client_infer(c[0], n, dense, MR_TEST_NUM_DENSE, ids,
                               MR_TEST_NUM_TABLES, &one, expect, NULL, &err),
               0, "%s", err.msg);
  for (int k = 1; k < RING_CONNS; k++) c[k] = mr_test_connect(&srv);

  /* Pipeline everything first (the client reads while it writes), then
   * collect. */
  uint64_t first_id[RING_CONNS];
  for (int r = 0; r < RING_REQS; r++)
    for (int k = 0; k < RING_CONNS; k++) {
      uint64_t id;
      cr_assert_eq(mr_client_send_infer(c[k], n, dense, MR_TEST_NUM_DENSE,
                                        ids, MR_TEST_NUM_TABLES, 0, &id,
                                        &err),
                   0, "%s", err.msg);
      if (r == 0) first_id[k] = id;
    }
  size_t ok = 0, overloaded = 0;
  for (int k = 0; k < RING_CONNS; k++) {
    unsigned char seen[RING_REQS] = {0};
    for (int r = 0; r < RING_REQS; r++) {
      mr_response_t resp;
      cr_assert_eq(mr_client_recv(c[k], &resp, &err), 0,
                   "conn %d, response %d of %d: %s", k, r, RING_REQS,
                   err.msg);
      uint64_t slot = resp.id - first_id[k];
      cr_assert_lt(slot, RING_REQS, "unknown id %llu",
                   (unsigned long long)resp.id);
      cr_assert_eq(seen[slot], 0, "id %llu answered twice",
                   (unsigned long long)resp.id);
      seen[slot] = 1;
      if (resp.status == MR_STATUS_OK) {
        ok++;
        cr_assert_eq(resp.num_scores, n);
        for (size_t i = 0; i < n; i += 97)
          cr_assert_float_eq(resp.scores[i], expect[i], 1e-6);
      } else {
        cr_assert_eq(resp.status, MR_STATUS_OVERLOADED, "%s: %s",
                     mr_client_status_name(resp.status), resp.message);
        overloaded++;
      }
      mr_response_free(&resp);
    }
    cr_assert_eq(mr_client_in_flight(c[k]), 0);
  }
  cr_log_info("full ring: %zu OK, %zu OVERLOADED", ok, overloaded);
  cr_assert_gt(overloaded, 0, "ring of 2 never overflowed with %d requests "
               "of %zu samples pipelined",
               RING_CONNS * RING_REQS, n);
  cr_assert_gt(ok, 0);
  for (int k = 0; k < RING_CONNS; k++) mr_client_close(c[k]);
  free(dense);
  free(ids);
  free(expect);
  assert_good();
  mr_test_server_stop_clean(&srv);
}
