/* Helpers for tests that run the real microrecd: start it as a child on an
 * ephemeral loopback port (--listen 127.0.0.1:0, port read from its
 * "listening 127.0.0.1:PORT" line), stop it and collect its exit status,
 * generate a small model, and speak the protocol on raw sockets.
 *
 * The child gets PR_SET_PDEATHSIG, so it dies with the test process even
 * when Criterion kills a test that timed out; tests also stop it in .fini. */
#ifndef MR_TEST_SERVER_PROC_H
#define MR_TEST_SERVER_PROC_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include <criterion/criterion.h>
#ifndef cr_fatal /* testutil.h uses it; only criterion/new/assert.h has it */
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif

#include "client/lib/microrec.h"
#include "client/lib/wire.h"
#include "fpga/modelgen.h"
#include "tests/unit/testutil.h"

#define MR_TEST_SERVER_BIN MR_BUILD_DIR "/bin/microrecd"

typedef struct mr_test_server {
  pid_t pid;
  uint16_t port;
  char dir[256];       /* temporary directory: model, server log */
  char log[320];       /* the server's stderr */
  char model[4096];
} mr_test_server_t;

static inline int64_t mr_test_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void mr_test_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Prints the tail of the server's log to stderr (for failed tests). */
static inline void mr_test_server_dump_log(const mr_test_server_t *s) {
  size_t len = 0;
  char *text = s->log[0] ? mr_test_read_file(s->log, &len) : NULL;
  if (!text) return;
  size_t from = len > 3000 ? len - 3000 : 0;
  fprintf(stderr, "---- microrecd log (%s) ----\n%.*s\n----\n", s->log,
          (int)(len - from), text + from);
  free(text);
}

/* The small model of these tests: 4 dense inputs, tables of 10, 20 and 30
 * rows of width 4, dot interaction, hidden layers of 64. */
#define MR_TEST_NUM_DENSE 4
#define MR_TEST_NUM_TABLES 3
static const uint64_t mr_test_rows[MR_TEST_NUM_TABLES] = {10, 20, 30};

static inline void mr_test_write_small_model(const char *path) {
  mr_gen_spec_t spec;
  memset(&spec, 0, sizeof spec);
  spec.interaction = MR_INTERACT_DOT;
  spec.num_tables = MR_TEST_NUM_TABLES;
  for (size_t k = 0; k < MR_TEST_NUM_TABLES; k++) {
    spec.rows[k] = mr_test_rows[k];
    spec.dims[k] = 4;
  }
  spec.num_bot_widths = 3;
  spec.bot_widths[0] = MR_TEST_NUM_DENSE;
  spec.bot_widths[1] = 64;
  spec.bot_widths[2] = 4;
  spec.num_top_widths = 2;
  spec.top_widths[0] = 64;
  spec.top_widths[1] = 1;
  spec.seed = 7;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_write(&spec, path, NULL, NULL, &err), 0,
               "writing the test model: %s", err.msg);
}

/* Starts microrecd on model with extra flags (NULL-terminated, may be
 * NULL). Fails the test, with the server's log, if it does not print its
 * listening line within 30 s. */
static inline void mr_test_server_start(mr_test_server_t *s, const char *model,
                                        const char *const *extra) {
  if (access(MR_TEST_SERVER_BIN, X_OK) != 0)
    cr_skip_test("%s not built yet", MR_TEST_SERVER_BIN);
  memset(s, 0, sizeof *s);
  mr_test_tmpdir(s->dir, sizeof s->dir);
  snprintf(s->log, sizeof s->log, "%s/microrecd.log", s->dir);
  if (model) {
    snprintf(s->model, sizeof s->model, "%s", model);
  } else {
    snprintf(s->model, sizeof s->model, "%s/small.safetensors", s->dir);
    mr_test_write_small_model(s->model);
  }
  const char *argv[64];
  int argc = 0;
  argv[argc++] = MR_TEST_SERVER_BIN;
  argv[argc++] = "--model";
  argv[argc++] = s->model;
  argv[argc++] = "--listen";
  argv[argc++] = "127.0.0.1:0";
  for (int i = 0; extra && extra[i] && argc < 62; i++) argv[argc++] = extra[i];
  argv[argc] = NULL;

  int out[2];
  cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0, "fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int logfd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out[1], 1);
    if (logfd >= 0) dup2(logfd, 2);
    close_range(3, ~0u, 0); /* none of the test runner's descriptors */
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(out[1]);
  s->pid = pid;
  char line[512];
  size_t used = 0;
  int64_t deadline = mr_test_now_ms() + 30000;
  for (;;) {
    char *nl = memchr(line, '\n', used);
    if (nl) {
      *nl = 0;
      unsigned port = 0;
      if (sscanf(line, "listening 127.0.0.1:%u", &port) == 1 && port > 0 &&
          port < 65536) {
        s->port = (uint16_t)port;
        break;
      }
      size_t rest = used - (size_t)(nl + 1 - line);
      memmove(line, nl + 1, rest);
      used = rest;
      continue;
    }
    int64_t left = deadline - mr_test_now_ms();
    struct pollfd pfd = {.fd = out[0], .events = POLLIN};
    int r = left > 0 ? poll(&pfd, 1, (int)left) : 0;
    ssize_t n = r > 0 ? read(out[0], line + used, sizeof line - 1 - used) : 0;
    if (n <= 0 || used + (size_t)n >= sizeof line - 1) {
      close(out[0]);
      mr_test_server_dump_log(s);
      cr_fatal("microrecd did not print 'listening 127.0.0.1:PORT' (%s)",
               r == 0 ? "timed out after 30 s" : "it exited or closed stdout");
    }
    used += (size_t)n;
  }
  /* Keep the pipe open but unread: the server prints nothing more. */
}

/* Waits up to timeout_ms for the server to exit (SIGKILL after that) and
 * returns the wait status, -2 if it had to be killed. Sends no signal itself.
 * A clean exit removes the temporary files; otherwise they stay to look at. */
static inline int mr_test_server_wait_exit(mr_test_server_t *s, int timeout_ms) {
  int status = 0;
  int64_t deadline = mr_test_now_ms() + timeout_ms;
  for (;;) {
    pid_t r = waitpid(s->pid, &status, WNOHANG);
    if (r == s->pid) break;
    if (r < 0 || mr_test_now_ms() > deadline) {
      kill(s->pid, SIGKILL);
      waitpid(s->pid, &status, 0);
      status = -2;
      break;
    }
    mr_test_sleep_ms(10);
  }
  s->pid = 0;
  if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    char gen[sizeof s->dir + 32];
    snprintf(gen, sizeof gen, "%s/small.safetensors", s->dir);
    unlink(gen);
    unlink(s->log);
    rmdir(s->dir);
  }
  return status;
}

/* Sends SIGTERM, waits up to 15 s (then SIGKILL) and returns the wait
 * status; -1 if the server was not running. */
static inline int mr_test_server_stop(mr_test_server_t *s) {
  if (s->pid <= 0) return -1;
  kill(s->pid, SIGTERM);
  return mr_test_server_wait_exit(s, 15000);
}

/* Stops the server and asserts it exited 0 after SIGTERM (no crash, no
 * sanitizer report, clean drain). */
static inline void mr_test_server_stop_clean(mr_test_server_t *s) {
  int st = mr_test_server_stop(s);
  if (!(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0))
    mr_test_server_dump_log(s);
  cr_assert(st >= 0, "microrecd did not exit within 15 s of SIGTERM");
  cr_assert(WIFEXITED(st), "microrecd died of signal %d",
            WIFSIGNALED(st) ? WTERMSIG(st) : -1);
  cr_assert_eq(WEXITSTATUS(st), 0, "microrecd exited %d after SIGTERM",
               WEXITSTATUS(st));
}

/* True while the server process is running. */
static inline int mr_test_server_alive(const mr_test_server_t *s) {
  int status;
  return s->pid > 0 && waitpid(s->pid, &status, WNOHANG) == 0;
}

static inline mr_client_t *mr_test_connect(const mr_test_server_t *s) {
  mr_client_t *c = NULL;
  mr_err_t err = {0};
  cr_assert_eq(mr_client_connect(&c, "127.0.0.1", s->port, 10000, &err), 0,
               "connect: %s", err.msg);
  return c;
}

/* ---- raw sockets ---- */

static inline int mr_test_raw_connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_geq(fd, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0,
               "raw connect: %s", strerror(errno));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static inline void mr_test_raw_send(int fd, const void *buf, size_t len) {
  const uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    cr_assert_gt(n, 0, "raw send: %s", strerror(errno));
    p += n;
    len -= (size_t)n;
  }
}

/* Sends a frame with this header length and these body bytes. */
static inline void mr_test_raw_frame(int fd, uint32_t len, const void *body,
                                     size_t body_len) {
  uint8_t hdr[4];
  mr_wire_put_len(hdr, len);
  mr_test_raw_send(fd, hdr, 4);
  if (body_len) mr_test_raw_send(fd, body, body_len);
}

/* Sends one Request as a frame. */
static inline void mr_test_raw_request(int fd, const Microrec__Request *req) {
  uint8_t *buf = NULL;
  size_t cap = 0, len = 0;
  cr_assert_eq(mr_wire_pack_request(req, &buf, &cap, &len, NULL), 0);
  mr_test_raw_send(fd, buf, len);
  free(buf);
}

/* Reads exactly len bytes within timeout_ms: 1, 0 if the peer closed
 * (EOF or reset) first, -1 on timeout. */
static inline int mr_test_raw_read(int fd, void *buf, size_t len,
                                   int timeout_ms) {
  uint8_t *p = buf;
  int64_t deadline = mr_test_now_ms() + timeout_ms;
  while (len > 0) {
    int64_t left = deadline - mr_test_now_ms();
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) return -1;
    ssize_t n = recv(fd, p, len, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return 0;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return 0;
    }
    p += n;
    len -= (size_t)n;
  }
  return 1;
}

/* Reads one Response within timeout_ms: the decoded message, or NULL when
 * the server closed the connection. A timeout fails the test. */
static inline Microrec__Response *mr_test_raw_response(int fd,
                                                       int timeout_ms) {
  uint8_t hdr[4];
  int r = mr_test_raw_read(fd, hdr, 4, timeout_ms);
  cr_assert_neq(r, -1, "no response and no close within %d ms", timeout_ms);
  if (r == 0) return NULL;
  uint32_t len = mr_wire_get_len(hdr);
  cr_assert_leq(len, 64u << 20, "response frame of %u bytes", len);
  uint8_t *body = malloc(len ? len : 1);
  r = mr_test_raw_read(fd, body, len, timeout_ms);
  cr_assert_eq(r, 1, "server sent half a response frame");
  Microrec__Response *resp = microrec__response__unpack(NULL, len, body);
  free(body);
  cr_assert(resp, "server sent a frame that is not a Response");
  return resp;
}

/* Waits up to timeout_ms for the server to close fd (reading and dropping
 * any responses meanwhile): 1 if it closed, 0 on timeout. */
static inline int mr_test_raw_wait_close(int fd, int timeout_ms) {
  int64_t deadline = mr_test_now_ms() + timeout_ms;
  for (;;) {
    int64_t left = deadline - mr_test_now_ms();
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) return 0;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return 1;
  }
}

#endif
