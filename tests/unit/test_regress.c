/* Regression tests: one per bug found by the fuzzers, the fault tests or
 * valgrind runs (tests/README.md, "Reliability"), named after the bug. */
#include <criterion/criterion.h>
#ifndef cr_fatal /* testutil.h uses it; only criterion/new/assert.h has it */
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif

#include "tests/unit/server_proc.h"

static mr_test_server_t srv;

static void stop_server(void) {
  if (srv.pid > 0) kill(srv.pid, SIGCONT);
  mr_test_server_stop(&srv);
}

TestSuite(regress, .fini = stop_server, .timeout = 60);

static void raw_health(int fd, uint64_t id) {
  Microrec__HealthRequest h = MICROREC__HEALTH_REQUEST__INIT;
  Microrec__Request req = MICROREC__REQUEST__INIT;
  req.id = id;
  req.body_case = MICROREC__REQUEST__BODY_HEALTH;
  req.health = &h;
  mr_test_raw_request(fd, &req);
}

/* Found by `make valgrind`: the server's loop stalled (valgrind is slow)
 * longer than the idle timeout; on waking, the idle sweep ran before the
 * reads and closed a connection whose requests were waiting unread in its
 * socket, so the client saw a close with its requests unanswered. A
 * connection with bytes to read is not idle. Here the stall is a SIGSTOP. */
Test(regress, idle_sweep_after_a_stall_spares_a_connection_with_unread_bytes) {
  const char *flags[] = {"--idle-timeout-ms", "300", NULL};
  mr_test_server_start(&srv, NULL, flags);
  /* Which runs first after the stall depends on where the loop stopped,
   * so a few rounds. */
  for (uint64_t round = 0; round < 6; round++) {
    int fd = mr_test_raw_connect(srv.port);
    raw_health(fd, 1);
    Microrec__Response *r = mr_test_raw_response(fd, 10000);
    cr_assert(r && r->id == 1);
    microrec__response__free_unpacked(r, NULL);

    cr_assert_eq(kill(srv.pid, SIGSTOP), 0);
    raw_health(fd, 2); /* waits in the server's socket */
    mr_test_sleep_ms(700 + 50 * (int)round);
    cr_assert_eq(kill(srv.pid, SIGCONT), 0);
    r = mr_test_raw_response(fd, 10000);
    cr_assert(r, "round %llu: the server closed a connection whose request "
              "it had not read yet", (unsigned long long)round);
    cr_assert_eq(r->id, 2);
    cr_assert_eq(r->status, MICROREC__STATUS__OK);
    microrec__response__free_unpacked(r, NULL);
    /* Truly idle now: closed after the timeout. */
    cr_assert(mr_test_raw_wait_close(fd, 10000));
    close(fd);
  }
  mr_test_server_stop_clean(&srv);
}
