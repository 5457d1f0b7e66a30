/* libmicrorec against scripted fake servers (threads on loopback speaking
 * the protocol), so every client-side path is exercised without microrecd:
 * refused, timed out, closed, server status, garbage, out-of-order
 * pipelining, OVERLOADED retries. The real server is in test_server_*.c. */
#include <criterion/criterion.h>
#ifndef cr_fatal /* testutil.h uses it; only criterion/new/assert.h has it */
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif
#include <pthread.h>

#include "tests/unit/server_proc.h"

typedef enum fake_mode {
  FAKE_CLOSE,      /* accept, close at once */
  FAKE_SILENT,     /* accept, read, never answer */
  FAKE_STATUS,     /* answer every request with `status` and a message */
  FAKE_GARBAGE,    /* answer with a frame that is not a Response */
  FAKE_HUGE,       /* announce a frame beyond the client's limit */
  FAKE_HALF,       /* half a response, then close */
  FAKE_REVERSE,    /* answer batches of pipelined requests in reverse order */
  FAKE_FLAKY,      /* OVERLOADED to a connection's first 5 requests */
} fake_mode_t;

typedef struct fake {
  int lfd;
  uint16_t port;
  fake_mode_t mode;
  int status;
  pthread_t tid;
  int stop;
} fake_t;

static fake_t fk;

/* Reads one frame body (malloc'd) within timeout_ms; NULL on close or
 * timeout (*timed_out tells which). */
static uint8_t *fake_read(int fd, size_t *len, int timeout_ms,
                          int *timed_out) {
  uint8_t hdr[4];
  int r = mr_test_raw_read(fd, hdr, 4, timeout_ms);
  *timed_out = r == -1;
  if (r != 1) return NULL;
  *len = mr_wire_get_len(hdr);
  uint8_t *body = malloc(*len ? *len : 1);
  if (mr_test_raw_read(fd, body, *len, 5000) != 1) {
    free(body);
    return NULL;
  }
  return body;
}

static void fake_send(int fd, Microrec__Response *resp) {
  size_t n = microrec__response__get_packed_size(resp);
  uint8_t *buf = malloc(4 + n);
  mr_wire_put_len(buf, (uint32_t)n);
  microrec__response__pack(resp, buf + 4);
  send(fd, buf, 4 + n, MSG_NOSIGNAL);
  free(buf);
}

/* OK infer response whose score i is the request's first dense value of
 * sample i (so the client's placement can be checked), logit twice it. */
static void fake_answer_infer(int fd, Microrec__Request *req, int status) {
  Microrec__Response resp = MICROREC__RESPONSE__INIT;
  Microrec__InferResponse inf = MICROREC__INFER_RESPONSE__INIT;
  resp.id = req->id;
  resp.status = (Microrec__Status)status;
  size_t n = req->infer ? req->infer->num_samples : 0;
  size_t nd = n ? req->infer->n_dense / n : 0;
  float *s = calloc(n + 1, sizeof *s), *l = calloc(n + 1, sizeof *l);
  if (status == MICROREC__STATUS__OK && req->infer) {
    for (size_t i = 0; i < n; i++) {
      s[i] = nd ? req->infer->dense[i * nd] : 0;
      l[i] = 2 * s[i];
    }
    inf.n_scores = n;
    inf.scores = s;
    if (req->infer->want_logits) {
      inf.n_logits = n;
      inf.logits = l;
    }
    resp.body_case = MICROREC__RESPONSE__BODY_INFER;
    resp.infer = &inf;
  } else {
    resp.message = (char *)"queue full: retry later";
  }
  fake_send(fd, &resp);
  free(s);
  free(l);
}

static void fake_conn(int fd) {
  int timed_out, count = 0;
  size_t len;
  uint8_t *body;
  if (fk.mode == FAKE_CLOSE) return;
  if (fk.mode == FAKE_REVERSE) {
    Microrec__Request *held[64];
    for (;;) {
      int k = 0;
      /* Collect what is pipelined until a short quiet gap. */
      while (k < 64 &&
             (body = fake_read(fd, &len, k ? 10 : 5000, &timed_out))) {
        held[k] = microrec__request__unpack(NULL, len, body);
        free(body);
        if (held[k]) k++;
      }
      for (int i = k - 1; i >= 0; i--) {
        fake_answer_infer(fd, held[i], MICROREC__STATUS__OK);
        microrec__request__free_unpacked(held[i], NULL);
      }
      if (k == 0 || !timed_out) return;
    }
  }
  while ((body = fake_read(fd, &len, 5000, &timed_out))) {
    Microrec__Request *req = microrec__request__unpack(NULL, len, body);
    free(body);
    if (!req) return; /* the client under test sent junk: hang up */
    switch (fk.mode) {
    case FAKE_SILENT:
      break;
    case FAKE_STATUS: {
      Microrec__Response resp = MICROREC__RESPONSE__INIT;
      resp.id = req->id;
      resp.status = (Microrec__Status)fk.status;
      resp.message = (char *)"id 99 outside table 3 (rows 0..9)";
      fake_send(fd, &resp);
      break;
    }
    case FAKE_GARBAGE:
      send(fd, "\0\0\0\4\xff\xff\xff\xff", 8, MSG_NOSIGNAL);
      break;
    case FAKE_HUGE:
      send(fd, "\xff\xff\xff\xff", 4, MSG_NOSIGNAL);
      break;
    case FAKE_HALF:
      send(fd, "\0\0\0\x10\x08\x01", 6, MSG_NOSIGNAL);
      microrec__request__free_unpacked(req, NULL);
      return;
    case FAKE_FLAKY:
      fake_answer_infer(fd, req,
                        count++ >= 5 ? MICROREC__STATUS__OK
                                     : MICROREC__STATUS__OVERLOADED);
      break;
    default:
      break;
    }
    microrec__request__free_unpacked(req, NULL);
  }
}

static void *fake_main(void *arg) {
  (void)arg;
  for (;;) {
    int fd = accept(fk.lfd, NULL, NULL);
    if (fd < 0 || fk.stop) {
      if (fd >= 0) close(fd);
      return NULL;
    }
    fake_conn(fd);
    close(fd);
  }
}

static void fake_start(fake_mode_t mode, int status) {
  memset(&fk, 0, sizeof fk);
  fk.mode = mode;
  fk.status = status;
  fk.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(bind(fk.lfd, (struct sockaddr *)&a, sizeof a), 0);
  cr_assert_eq(listen(fk.lfd, 16), 0);
  socklen_t sl = sizeof a;
  getsockname(fk.lfd, (struct sockaddr *)&a, &sl);
  fk.port = ntohs(a.sin_port);
  cr_assert_eq(pthread_create(&fk.tid, NULL, fake_main, NULL), 0);
}

static mr_client_t *fake_connect(int timeout_ms) {
  mr_client_t *c = NULL;
  mr_err_t err = {0};
  cr_assert_eq(mr_client_connect(&c, "127.0.0.1", fk.port, timeout_ms, &err),
               0, "%s", err.msg);
  return c;
}

TestSuite(client, .timeout = 30);

Test(client, parses_host_and_port) {
  char host[64];
  uint16_t port;
  mr_err_t err = {0};
  cr_assert_eq(mr_parse_hostport("10.1.2.3:81", host, sizeof host, &port,
                                 &err),
               0);
  cr_assert_str_eq(host, "10.1.2.3");
  cr_assert_eq(port, 81);
  cr_assert_eq(mr_parse_hostport("[::1]:7000", host, sizeof host, &port,
                                 &err),
               0);
  cr_assert_str_eq(host, "::1");
  cr_assert_eq(port, 7000);
  cr_assert_eq(mr_parse_hostport("example.org", host, sizeof host, &port,
                                 &err),
               0);
  cr_assert_eq(port, MR_DEFAULT_PORT);
  cr_assert_eq(mr_parse_hostport(":9", host, sizeof host, &port, &err), 0);
  cr_assert_str_eq(host, "127.0.0.1");
  cr_assert_eq(mr_parse_hostport("8080", host, sizeof host, &port, &err), 0);
  cr_assert_str_eq(host, "127.0.0.1");
  cr_assert_eq(port, 8080);
  const char *bad[] = {"h:0", "h:70000", "h:x", "h:", "::1:5", "[::1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    cr_assert_eq(mr_parse_hostport(bad[i], host, sizeof host, &port, &err),
                 MR_EINVAL, "'%s' accepted", bad[i]);
}

Test(client, names_statuses) {
  cr_assert_str_eq(mr_client_status_name(MR_STATUS_OVERLOADED), "OVERLOADED");
  cr_assert_str_eq(mr_client_status_name(MR_STATUS_OUT_OF_RANGE), "OUT_OF_RANGE");
  cr_assert_str_eq(mr_client_status_name(99), "STATUS_99");
}

Test(client, connection_refused_is_clear) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t sl = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &sl);
  close(fd); /* bound once, now nobody listens there */
  mr_client_t *c = NULL;
  mr_err_t err = {0};
  int rc = mr_client_connect(&c, "127.0.0.1", ntohs(a.sin_port), 2000, &err);
  cr_assert_eq(rc, -ECONNREFUSED, "%s", mr_err_name(rc));
  cr_assert(strstr(err.msg, "connection refused"), "%s", err.msg);
  cr_assert_null(c);
  cr_assert_eq(mr_client_connect(&c, "no-such-host.invalid", 1, 2000, &err),
               MR_EINVAL);
}

Test(client, silent_server_times_out_and_client_stays_usable) {
  fake_start(FAKE_SILENT, 0);
  mr_client_t *c = fake_connect(200);
  mr_err_t err = {0};
  uint64_t id;
  cr_assert_eq(mr_client_send_health(c, &id, &err), 0, "%s", err.msg);
  mr_response_t r;
  cr_assert_eq(mr_client_recv(c, &r, &err), MR_ETIMEDOUT);
  cr_assert(strstr(err.msg, "no response"), "%s", err.msg);
  cr_assert_eq(mr_client_in_flight(c), 1);
  cr_assert_eq(mr_client_recv(c, &r, &err), MR_ETIMEDOUT); /* again */
  mr_client_close(c);

  /* A blocking call that times out leaves the connection unusable. */
  c = fake_connect(200);
  mr_health_t h;
  cr_assert_eq(mr_client_health(c, &h, &err), MR_ETIMEDOUT);
  cr_assert_eq(mr_client_send_health(c, &id, &err), MR_ETIMEDOUT);
  cr_assert(strstr(err.msg, "unusable"), "%s", err.msg);
  mr_client_close(c);
}

Test(client, server_closing_is_reported) {
  fake_start(FAKE_CLOSE, 0);
  mr_client_t *c = fake_connect(2000);
  mr_err_t err = {0};
  mr_stats_reply_t st;
  int rc = mr_client_stats(c, &st, &err);
  /* The request may be written before the close is seen, or fail on the
   * reset: either way the error says the server closed. */
  cr_assert_eq(rc, MR_ECLOSED, "%s: %s", mr_err_name(rc), err.msg);
  cr_assert(strstr(err.msg, "closed the connection"), "%s", err.msg);
  mr_stats_reply_free(&st);
  mr_client_close(c);
}

Test(client, half_a_response_then_close) {
  fake_start(FAKE_HALF, 0);
  mr_client_t *c = fake_connect(2000);
  mr_err_t err = {0};
  uint64_t id;
  cr_assert_eq(mr_client_send_health(c, &id, &err), 0);
  mr_response_t r;
  cr_assert_eq(mr_client_recv(c, &r, &err), MR_ECLOSED);
  cr_assert(strstr(err.msg, "middle of a response"), "%s", err.msg);
  mr_client_close(c);
}

Test(client, server_status_becomes_eserver_with_name_and_message) {
  fake_start(FAKE_STATUS, MICROREC__STATUS__OUT_OF_RANGE);
  mr_client_t *c = fake_connect(2000);
  mr_err_t err = {0};
  float dense[2] = {1, 2};
  int64_t ids[2] = {99, 1};
  float scores[2];
  int rc = mr_client_infer(c, 2, dense, 1, ids, 1, NULL, scores, NULL, &err);
  cr_assert_eq(rc, MR_ESERVER, "%s", mr_err_name(rc));
  cr_assert(strstr(err.msg, "OUT_OF_RANGE: id 99 outside table 3"), "%s",
            err.msg);
  cr_assert_eq(mr_client_last_status(c), MR_STATUS_OUT_OF_RANGE);
  /* The connection is still in step: a raw request gets its response. */
  uint64_t id;
  mr_response_t r;
  cr_assert_eq(mr_client_send_health(c, &id, &err), 0);
  cr_assert_eq(mr_client_recv(c, &r, &err), 0, "%s", err.msg);
  cr_assert_eq(r.id, id);
  cr_assert_eq(r.status, MR_STATUS_OUT_OF_RANGE);
  cr_assert_eq(r.kind, MR_RESP_NONE);
  mr_response_free(&r);
  mr_health_t h;
  cr_assert_eq(mr_client_health(c, &h, &err), MR_ESERVER);
  cr_assert(strstr(err.msg, "health: server answered OUT_OF_RANGE"), "%s",
            err.msg);
  mr_client_close(c);
}

Test(client, garbage_response_is_a_protocol_error) {
  fake_start(FAKE_GARBAGE, 0);
  mr_client_t *c = fake_connect(2000);
  mr_err_t err = {0};
  mr_model_info_t mi;
  cr_assert_eq(mr_client_model_info(c, &mi, &err), MR_EPROTO);
  cr_assert(strstr(err.msg, "not a microrec.Response"), "%s", err.msg);
  mr_client_close(c);
}

Test(client, oversized_response_frame_is_refused) {
  fake_start(FAKE_HUGE, 0);
  mr_client_t *c = fake_connect(2000);
  mr_err_t err = {0};
  uint64_t id;
  cr_assert_eq(mr_client_send_stats(c, &id, &err), 0);
  mr_response_t r;
  cr_assert_eq(mr_client_recv(c, &r, &err), MR_EPROTO);
  cr_assert(strstr(err.msg, "4294967295 bytes"), "%s", err.msg);
  mr_client_close(c);
}

Test(client, infer_places_out_of_order_responses_by_id) {
  fake_start(FAKE_REVERSE, 0);
  mr_client_t *c = fake_connect(5000);
  enum { N = 300 };
  float *dense = malloc(N * 2 * sizeof *dense);
  int64_t *ids = calloc(N * 3, sizeof *ids);
  float *scores = malloc(N * sizeof *scores), *logits = malloc(N * 4);
  for (size_t i = 0; i < N; i++) {
    dense[2 * i] = (float)i;
    dense[2 * i + 1] = -1;
  }
  mr_err_t err = {0};
  size_t batches[] = {1, 7, 64, 300};
  for (size_t b = 0; b < 4; b++) {
    mr_infer_opts_t o = {.batch = batches[b], .window = 8};
    memset(scores, 0xff, N * sizeof *scores);
    cr_assert_eq(mr_client_infer(c, N, dense, 2, ids, 3, &o, scores, logits,
                                 &err),
                 0, "batch %zu: %s", batches[b], err.msg);
    for (size_t i = 0; i < N; i++) {
      cr_assert_eq(scores[i], (float)i, "batch %zu sample %zu", batches[b],
                   i);
      cr_assert_eq(logits[i], 2.0f * (float)i);
    }
    cr_assert_eq(mr_client_in_flight(c), 0);
  }
  free(dense);
  free(ids);
  free(scores);
  free(logits);
  mr_client_close(c);
}

Test(client, infer_retries_overloaded_when_asked) {
  fake_start(FAKE_FLAKY, 0);
  mr_client_t *c = fake_connect(5000);
  float dense[40];
  int64_t ids[40] = {0};
  float scores[40];
  for (int i = 0; i < 40; i++) dense[i] = (float)i;
  mr_err_t err = {0};
  mr_infer_opts_t o = {.batch = 3, .window = 4, .overload_retries = 3};
  cr_assert_eq(mr_client_infer(c, 40, dense, 1, ids, 1, &o, scores, NULL,
                               &err),
               0, "%s", err.msg);
  for (int i = 0; i < 40; i++) cr_assert_eq(scores[i], (float)i);
  mr_client_close(c);
  c = fake_connect(5000);
  o.overload_retries = 0;
  cr_assert_eq(mr_client_infer(c, 40, dense, 1, ids, 1, &o, scores, NULL,
                               &err),
               MR_ESERVER);
  cr_assert(strstr(err.msg, "OVERLOADED"), "%s", err.msg);
  cr_assert_eq(mr_client_in_flight(c), 0, "in-flight requests not drained");
  mr_client_close(c);
}

Test(client, blocking_calls_refuse_while_requests_are_in_flight) {
  fake_start(FAKE_SILENT, 0);
  mr_client_t *c = fake_connect(2000);
  mr_err_t err = {0};
  uint64_t id;
  cr_assert_eq(mr_client_send_health(c, &id, &err), 0);
  float d = 0;
  int64_t i0 = 0;
  cr_assert_eq(mr_client_infer(c, 1, &d, 1, &i0, 1, NULL, &d, NULL, &err),
               MR_EINVAL);
  mr_stats_reply_t st;
  cr_assert_eq(mr_client_stats(c, &st, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "in flight"), "%s", err.msg);
  mr_client_close(c);
}

/* Against the real server: the pieces a script relies on. */
Test(client, talks_to_the_real_server) {
  mr_test_server_t s;
  mr_test_server_start(&s, NULL, NULL);
  mr_client_t *c = mr_test_connect(&s);
  mr_err_t err = {0};
  mr_health_t h;
  int rc = mr_client_health(c, &h, &err);
  if (rc) mr_test_server_stop(&s);
  cr_assert_eq(rc, 0, "%s", err.msg);
  cr_assert(h.alive && h.ready);
  mr_health_free(&h);
  mr_model_info_t mi;
  cr_assert_eq(mr_client_model_info(c, &mi, &err), 0, "%s", err.msg);
  cr_assert_eq(mi.num_dense, MR_TEST_NUM_DENSE);
  cr_assert_eq(mi.num_tables, MR_TEST_NUM_TABLES);
  for (size_t k = 0; k < MR_TEST_NUM_TABLES; k++)
    cr_assert_eq(mi.rows[k], mr_test_rows[k]);
  mr_model_info_free(&mi);
  mr_client_close(c);
  mr_test_server_stop_clean(&s);
}
