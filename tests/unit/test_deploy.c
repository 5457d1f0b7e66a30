/* deploy/: the systemd unit verifies as installed, `make install` puts every
 * file where deploy/README.md says, the default config names every option
 * with its built-in default, and microrecd speaks to systemd: sd_notify
 * messages on a socket the test owns (READY=1 after loading, WATCHDOG=1,
 * RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM) and syslog
 * priorities on its log lines when stderr is the journal. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fpga/modelgen.h"
#include "server/config.h"
#include "tests/unit/testutil.h"

#ifndef cr_fatal /* only criterion/new/assert.h has it */
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif

#define SERVER_BIN MR_BUILD_DIR "/bin/microrecd"
#define UNIT MR_SOURCE_DIR "/deploy/microrecd.service"
#define CONF MR_SOURCE_DIR "/deploy/microrecd.conf"

/* ---- helpers ---- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static void rm_tree(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static char *slurp(const char *path) {
  size_t len = 0;
  char *t = mr_test_read_file(path, &len);
  if (!t) return NULL;
  char *z = realloc(t, len + 1);
  z[len] = 0;
  return z;
}

static void write_small_model(const char *path) {
  mr_gen_spec_t spec;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_preset(&spec, "criteo", 200, &err), 0, "%s", err.msg);
  spec.seed = 5;
  cr_assert_eq(mr_gen_write(&spec, path, NULL, NULL, &err), 0, "%s", err.msg);
}

/* A microrecd child: its stdout on a pipe, its stderr in a file. */
typedef struct child {
  pid_t pid;
  int out;
  char dir[256];
  char model[300];
  char log[300];
  char sock[300];
  int notify;      /* our end of NOTIFY_SOCKET, or -1 */
  char seen[8192]; /* every notification received, for failure messages */
} child_t;

static void child_init(child_t *c, int with_notify) {
  memset(c, 0, sizeof *c);
  c->notify = -1;
  mr_test_tmpdir(c->dir, sizeof c->dir);
  snprintf(c->model, sizeof c->model, "%s/model.safetensors", c->dir);
  snprintf(c->log, sizeof c->log, "%s/stderr", c->dir);
  write_small_model(c->model);
  if (!with_notify) return;
  snprintf(c->sock, sizeof c->sock, "%s/notify", c->dir);
  c->notify = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  cr_assert_geq(c->notify, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  cr_assert_lt(strlen(c->sock), sizeof a.sun_path);
  memcpy(a.sun_path, c->sock, strlen(c->sock) + 1);
  cr_assert_eq(bind(c->notify, (struct sockaddr *)&a, sizeof a), 0, "bind %s: %s",
               c->sock, strerror(errno));
}

/* Starts microrecd with extra environment (NULL-terminated "K=V"), after
 * clearing what systemd may have set for the test runner itself. The
 * stderr file exists before the exec, so a test may name it in
 * JOURNAL_STREAM. */
static void child_start(child_t *c, const char *const *env,
                        const char *const *extra) {
  if (access(SERVER_BIN, X_OK)) cr_skip_test("%s not built", SERVER_BIN);
  const char *argv[32] = {SERVER_BIN, "--model", c->model, "--listen",
                          "127.0.0.1:0"};
  int argc = 5;
  for (int i = 0; extra && extra[i]; i++) argv[argc++] = extra[i];
  int logfd = open(c->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  cr_assert_geq(logfd, 0);
  int p[2];
  cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
  pid_t parent = getpid();
  fflush(NULL);
  c->pid = fork();
  cr_assert_geq(c->pid, 0);
  if (c->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    unsetenv("JOURNAL_STREAM");
    if (c->sock[0]) setenv("NOTIFY_SOCKET", c->sock, 1);
    for (int i = 0; env && env[i]; i++) putenv((char *)env[i]);
    dup2(p[1], 1);
    dup2(logfd, 2);
    close_range(3, ~0u, 0); /* none of the test runner's descriptors */
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(p[1]);
  close(logfd);
  c->out = p[0];
}

/* Waits for the `listening HOST:PORT` line: 1, or 0 if the server exited. */
static int child_listening(child_t *c) {
  char buf[512];
  size_t used = 0;
  int64_t deadline = now_ms() + 60000;
  while (now_ms() < deadline) {
    struct pollfd pfd = {.fd = c->out, .events = POLLIN};
    if (poll(&pfd, 1, 1000) <= 0) continue;
    ssize_t n = read(c->out, buf + used, sizeof buf - 1 - used);
    if (n <= 0) return 0;
    used += (size_t)n;
    buf[used] = 0;
    if (strstr(buf, "listening ")) return 1;
  }
  cr_fatal("microrecd did not listen within 60 s");
  return 0;
}

/* The next notification holding `want`, within 30 s; the others on the way
 * are kept in c->seen. Fails the test with everything seen otherwise. */
static void child_expect(child_t *c, const char *want, char *msg, size_t len) {
  int64_t deadline = now_ms() + 30000;
  for (;;) {
    int64_t left = deadline - now_ms();
    struct pollfd pfd = {.fd = c->notify, .events = POLLIN};
    if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
      cr_fatal("no notification with '%s' within 30 s; received:\n%s", want,
               c->seen);
    char buf[2048];
    ssize_t n = recv(c->notify, buf, sizeof buf - 1, 0);
    if (n < 0) continue;
    buf[n] = 0;
    size_t o = strlen(c->seen);
    snprintf(c->seen + o, sizeof c->seen - o, "[%s]\n", buf);
    if (strstr(buf, want)) {
      if (msg) snprintf(msg, len, "%s", buf);
      return;
    }
  }
}

/* The exit status within 30 s (then SIGKILL: -1), with SIGTERM first when
 * term. */
static int child_wait(child_t *c, int term) {
  if (term) kill(c->pid, SIGTERM);
  int st = 0;
  int64_t deadline = now_ms() + 30000;
  while (waitpid(c->pid, &st, WNOHANG) == 0) {
    if (now_ms() > deadline) {
      kill(c->pid, SIGKILL);
      waitpid(c->pid, &st, 0);
      return -1;
    }
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
  return st;
}

static int child_stop(child_t *c) { return child_wait(c, 1); }

static void child_free(child_t *c) {
  if (c->out > 0) close(c->out);
  if (c->notify >= 0) close(c->notify);
  rm_tree(c->dir);
}

static void assert_clean_exit(child_t *c, int st) {
  if (!(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
    char *log = slurp(c->log);
    cr_fatal("microrecd: status %d, expected exit 0; log:\n%s", st,
             log ? log : "");
  }
}

/* ---- sd_notify ---- */

Test(deploy, notify_ready_after_loading_and_stopping_on_sigterm,
     .timeout = 120) {
  child_t c;
  child_init(&c, 1);
  child_start(&c, NULL, NULL);
  char msg[2048];
  child_expect(&c, "STATUS=loading model", msg, sizeof msg);
  cr_assert(strstr(msg, c.model), "%s", msg);
  child_expect(&c, "READY=1", msg, sizeof msg);
  cr_assert(strstr(msg, "STATUS=serving ") && strstr(msg, "(generation 1)"),
            "%s", msg);
  /* READY=1 comes after the model is loaded and warmed and the port open. */
  char *log = slurp(c.log);
  cr_assert(log && strstr(log, "msg=\"model loaded\"") &&
                strstr(log, "msg=\"listening\""),
            "READY=1 before loading; log:\n%s", log ? log : "");
  free(log);
  cr_assert(child_listening(&c));
  kill(c.pid, SIGTERM);
  child_expect(&c, "STOPPING=1", msg, sizeof msg);
  cr_assert(strstr(msg, "STATUS=stopping"), "%s", msg);
  child_expect(&c, "STATUS=stopped", NULL, 0);
  assert_clean_exit(&c, child_wait(&c, 0));
  cr_assert_null(strstr(c.seen, "WATCHDOG=1"),
                 "pings without WATCHDOG_USEC:\n%s", c.seen);
  child_free(&c);
}

Test(deploy, notify_watchdog_pings_at_half_of_watchdog_usec, .timeout = 120) {
  child_t c;
  child_init(&c, 1);
  const char *env[] = {"WATCHDOG_USEC=200000", NULL};
  child_start(&c, env, NULL);
  child_expect(&c, "READY=1", NULL, 0);
  for (int i = 0; i < 3; i++) child_expect(&c, "WATCHDOG=1", NULL, 0);
  assert_clean_exit(&c, child_stop(&c));
  char *log = slurp(c.log);
  cr_assert(log && strstr(log, "msg=\"systemd watchdog on\" watchdog_usec=200000 "
                               "ping_ms=100"),
            "log:\n%s", log ? log : "");
  free(log);
  child_free(&c);
}

Test(deploy, notify_no_watchdog_for_another_process, .timeout = 120) {
  child_t c;
  child_init(&c, 1);
  /* WATCHDOG_PID names the process the watchdog is for; not this one. */
  const char *env[] = {"WATCHDOG_USEC=200000", "WATCHDOG_PID=1", NULL};
  child_start(&c, env, NULL);
  child_expect(&c, "READY=1", NULL, 0);
  assert_clean_exit(&c, child_stop(&c));
  char *log = slurp(c.log);
  cr_assert(log && !strstr(log, "systemd watchdog on"), "log:\n%s", log);
  free(log);
  child_free(&c);
}

Test(deploy, notify_reloading_then_ready_around_sighup, .timeout = 120) {
  child_t c;
  child_init(&c, 1);
  child_start(&c, NULL, NULL);
  child_expect(&c, "READY=1", NULL, 0);
  char msg[2048];
  kill(c.pid, SIGHUP);
  child_expect(&c, "RELOADING=1", msg, sizeof msg);
  cr_assert(strstr(msg, "MONOTONIC_USEC=") && strstr(msg, "STATUS=reloading"),
            "%s", msg);
  child_expect(&c, "READY=1", msg, sizeof msg);
  cr_assert(strstr(msg, "(generation 2)"), "%s", msg);

  /* A file that no longer loads: READY=1 again, saying the old one serves. */
  FILE *f = fopen(c.model, "w");
  cr_assert_not_null(f);
  fputs("not a model", f);
  fclose(f);
  kill(c.pid, SIGHUP);
  child_expect(&c, "RELOADING=1", NULL, 0);
  child_expect(&c, "READY=1", msg, sizeof msg);
  cr_assert(strstr(msg, "(generation 2)") && strstr(msg, "reload failed"),
            "%s", msg);
  assert_clean_exit(&c, child_stop(&c));
  child_free(&c);
}

/* ---- the journal ---- */

static void journal_stream_of(const char *path, char *buf, size_t len) {
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  snprintf(buf, len, "JOURNAL_STREAM=%llu:%llu", (unsigned long long)st.st_dev,
           (unsigned long long)st.st_ino);
}

Test(deploy, journal_stream_lines_carry_syslog_priorities, .timeout = 120) {
  child_t c;
  child_init(&c, 0);
  char js[128];
  int fd = open(c.log, O_WRONLY | O_CREAT, 0644); /* same inode after O_TRUNC */
  close(fd);
  journal_stream_of(c.log, js, sizeof js);
  /* A notify socket nobody listens on: one warning. */
  const char *env[] = {js, "NOTIFY_SOCKET=/nonexistent/notify", NULL};
  child_start(&c, env, NULL);
  cr_assert(child_listening(&c));
  assert_clean_exit(&c, child_stop(&c));
  char *log = slurp(c.log);
  cr_assert_not_null(log);
  int info = 0, warn = 0;
  for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
    static const char *const want[] = {"<7>level=debug ", "<6>level=info ",
                                       "<4>level=warn ", "<3>level=error "};
    int ok = 0;
    for (int i = 0; i < 4; i++) ok |= !strncmp(line, want[i], strlen(want[i]));
    cr_assert(ok, "a line without its priority: %s", line);
    info += !strncmp(line, "<6>", 3);
    warn += !strncmp(line, "<4>", 3);
  }
  cr_assert_geq(info, 3);
  cr_assert_geq(warn, 1);
  free(log);
  child_free(&c);
}

Test(deploy, journal_stream_error_at_start_is_priority_3, .timeout = 120) {
  child_t c;
  child_init(&c, 0);
  int fd = open(c.log, O_WRONLY | O_CREAT, 0644);
  close(fd);
  char js[128];
  journal_stream_of(c.log, js, sizeof js);
  unlink(c.model); /* nothing to load */
  const char *env[] = {js, NULL};
  child_start(&c, env, NULL);
  int st = 0;
  waitpid(c.pid, &st, 0);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d", st);
  char *log = slurp(c.log);
  cr_assert(log && strstr(log, "<3>level=error msg=\"cannot start\""), "%s", log);
  free(log);
  child_free(&c);
}

Test(deploy, journal_stream_of_another_file_adds_no_prefix, .timeout = 120) {
  child_t c;
  child_init(&c, 0);
  const char *env[] = {"JOURNAL_STREAM=1:1", NULL};
  child_start(&c, env, NULL);
  cr_assert(child_listening(&c));
  assert_clean_exit(&c, child_stop(&c));
  char *log = slurp(c.log);
  cr_assert_not_null(log);
  for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
    cr_assert(!strncmp(line, "level=", 6), "prefixed line: %s", line);
  free(log);
  child_free(&c);
}

/* ---- --xclbin ---- */

/* The fpga engine names a missing --xclbin before it looks for a card, so
 * the flag's arrival shows on any machine: without it that error, with it
 * another (no device here) or none (a card). */
Test(deploy, xclbin_flag_reaches_the_fpga_engine, .timeout = 120) {
  child_t c;
  child_init(&c, 0);
  const char *without[] = {"--engine", "fpga", NULL};
  child_start(&c, NULL, without);
  int st = child_wait(&c, 0);
  char *log = slurp(c.log);
  cr_assert(log && strstr(log, "no xclbin given"), "status %d, log:\n%s", st, log);
  free(log);
  close(c.out);
  const char *with[] = {"--engine", "fpga", "--xclbin", "/nonexistent.xclbin", NULL};
  child_start(&c, NULL, with);
  st = child_wait(&c, 0);
  log = slurp(c.log);
  cr_assert(log && !strstr(log, "no xclbin given"), "status %d, log:\n%s", st, log);
  free(log);
  child_free(&c);
}

/* ---- make install and the unit ---- */

/* Runs cmd with /bin/sh, its stdout and stderr into out; returns the wait
 * status. Unlike popen, the child keeps none of the test runner's
 * descriptors (Criterion's own pipes). */
static int run_sh(const char *cmd, char *out, size_t len, size_t *got) {
  int p[2];
  cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    dup2(p[1], 1);
    dup2(p[1], 2);
    close_range(3, ~0u, 0);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  size_t n = 0;
  for (;;) {
    ssize_t r = read(p[0], out + n, len - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
    if (n == len - 1) break;
  }
  out[n] = 0;
  close(p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (got) *got = n;
  return st;
}

/* Runs `make install` of this build with the given variables; returns the
 * exit status and its output in out. The programs are taken as built (-o):
 * the test installs what it tests, and never rebuilds. */
static int make_install(const char *vars, char *out, size_t len) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C %s BUILD=%s "
           "-o %s/bin/microrecd -o %s/bin/microrec -o %s/bin/microrec-load "
           "install %s",
           MR_SOURCE_DIR, MR_BUILD_DIR, MR_BUILD_DIR, MR_BUILD_DIR,
           MR_BUILD_DIR, vars);
  return run_sh(cmd, out, len, NULL);
}

static void assert_file(const char *root, const char *rel, mode_t mode) {
  char path[1024];
  snprintf(path, sizeof path, "%s%s", root, rel);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0, "%s was not installed", path);
  cr_assert_eq(st.st_mode & 0777, mode, "%s has mode %o, expected %o", path,
               st.st_mode & 0777, mode);
}

static void require_programs(void) {
  static const char *const progs[] = {"microrecd", "microrec", "microrec-load"};
  for (int i = 0; i < 3; i++) {
    char p[512];
    snprintf(p, sizeof p, "%s/bin/%s", MR_BUILD_DIR, progs[i]);
    if (access(p, X_OK)) cr_skip_test("%s not built", p);
  }
}

Test(deploy, install_puts_every_file_where_documented, .timeout = 120) {
  require_programs();
  char d[256], vars[512], out[8192], path[1024];
  mr_test_tmpdir(d, sizeof d);
  snprintf(vars, sizeof vars, "DESTDIR=%s", d);
  int st = make_install(vars, out, sizeof out);
  cr_assert_eq(st, 0, "make install %s failed:\n%s", vars, out);
  assert_file(d, "/usr/local/bin/microrecd", 0755);
  assert_file(d, "/usr/local/bin/microrec", 0755);
  assert_file(d, "/usr/local/bin/microrec-load", 0755);
  assert_file(d, "/usr/local/lib/systemd/system/microrecd.service", 0644);
  assert_file(d, "/etc/microrec/microrecd.conf", 0644);

  snprintf(path, sizeof path, "%s/usr/local/lib/systemd/system/microrecd.service", d);
  char *unit = slurp(path);
  cr_assert(strstr(unit, "\nExecStart=/usr/local/bin/microrecd --config "
                         "/etc/microrec/microrecd.conf\n"),
            "%s", unit);
  free(unit);
  snprintf(path, sizeof path, "%s/etc/microrec/microrecd.conf", d);
  char *conf = slurp(path), *orig = slurp(CONF);
  cr_assert_str_eq(conf, orig, "the installed config differs from deploy/'s");
  free(conf);

  /* An administrator's config is kept; the new default goes beside it. */
  FILE *f = fopen(path, "w");
  fputs("model = /srv/mine.safetensors\n", f);
  fclose(f);
  st = make_install(vars, out, sizeof out);
  cr_assert_eq(st, 0, "second make install failed:\n%s", out);
  conf = slurp(path);
  cr_assert_str_eq(conf, "model = /srv/mine.safetensors\n");
  free(conf);
  snprintf(path, sizeof path, "%s/etc/microrec/microrecd.conf.default", d);
  conf = slurp(path);
  cr_assert_not_null(conf, "no microrecd.conf.default beside the kept config");
  cr_assert_str_eq(conf, orig);
  free(conf);
  free(orig);
  rm_tree(d);
}

Test(deploy, install_honours_prefix, .timeout = 120) {
  require_programs();
  char d[256], vars[512], out[8192], path[1024];
  mr_test_tmpdir(d, sizeof d);
  snprintf(vars, sizeof vars, "DESTDIR=%s PREFIX=/usr", d);
  cr_assert_eq(make_install(vars, out, sizeof out), 0, "%s", out);
  assert_file(d, "/usr/bin/microrecd", 0755);
  assert_file(d, "/etc/microrec/microrecd.conf", 0644);
  snprintf(path, sizeof path, "%s/usr/lib/systemd/system/microrecd.service", d);
  char *unit = slurp(path);
  cr_assert_not_null(unit, "no unit in $(PREFIX)/lib/systemd/system");
  cr_assert(strstr(unit, "\nExecStart=/usr/bin/microrecd --config "
                         "/etc/microrec/microrecd.conf\n"),
            "%s", unit);
  free(unit);
  rm_tree(d);
}

Test(deploy, unit_passes_systemd_analyze_verify, .timeout = 120) {
  require_programs();
  char out[8192];
  if (run_sh("command -v systemd-analyze", out, sizeof out, NULL))
    cr_skip_test("systemd-analyze not installed (Debian package systemd)");
  /* Installed into a temporary prefix so that ExecStart= exists. */
  char d[256], vars[1024], cmd[1024];
  mr_test_tmpdir(d, sizeof d);
  snprintf(vars, sizeof vars, "PREFIX=%s/usr SYSCONFDIR=%s/etc", d, d);
  cr_assert_eq(make_install(vars, out, sizeof out), 0, "%s", out);
  snprintf(cmd, sizeof cmd,
           "systemd-analyze verify --man=no %s/usr/lib/systemd/system/"
           "microrecd.service",
           d);
  size_t n = 0;
  int st = run_sh(cmd, out, sizeof out, &n);
  cr_assert_eq(st, 0, "systemd-analyze verify failed:\n%s", out);
  cr_assert_eq(n, 0, "systemd-analyze verify warned:\n%s", out);
  rm_tree(d);
}

/* ---- the default configuration ---- */

/* Every option of --help (but --config and --help) is in deploy's config,
 * commented or not, under its INI name. */
Test(deploy, config_file_names_every_option) {
  char *usage = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&usage, &len);
  mr_config_usage(m);
  fclose(m);
  char *conf = slurp(CONF);
  cr_assert_not_null(conf);
  int seen = 0;
  for (char *line = strtok(usage, "\n"); line; line = strtok(NULL, "\n")) {
    char name[64];
    if (sscanf(line, "  --%63[a-z0-9-]", name) != 1) continue;
    if (!strcmp(name, "config") || !strcmp(name, "help")) continue;
    for (char *p = name; *p; p++)
      if (*p == '-') *p = '_';
    char a[80], b[80];
    snprintf(a, sizeof a, "\n;%s =", name);
    snprintf(b, sizeof b, "\n%s =", name);
    cr_assert(strstr(conf, a) || strstr(conf, b),
              "deploy/microrecd.conf does not mention '%s'", name);
    seen++;
  }
  cr_assert_geq(seen, 15);
  free(conf);
  free(usage);
}

/* Clears what follows the NUL of each string, so memcmp compares values. */
#define ZERO_TAIL(field) \
  memset((field) + strlen(field), 0, sizeof(field) - strlen(field))
static void normalize(mr_config_t *c) {
  ZERO_TAIL(c->model);
  ZERO_TAIL(c->config_path);
  ZERO_TAIL(c->engine);
  ZERO_TAIL(c->xclbin);
  ZERO_TAIL(c->listen.host);
  ZERO_TAIL(c->admin.host);
}

static void expect_defaults_with_model(const mr_config_t *got_) {
  mr_config_t want, got = *got_;
  mr_config_defaults(&want);
  snprintf(want.model, sizeof want.model, "/var/lib/microrec/model.safetensors");
  cr_assert_str_eq(got.model, want.model);
  normalize(&want);
  normalize(&got);
  cr_assert_eq(memcmp(&got, &want, sizeof want), 0,
               "a value in deploy/microrecd.conf is not the built-in default");
}

Test(deploy, config_file_as_shipped_loads) {
  mr_config_t c;
  mr_config_defaults(&c);
  mr_err_t err = {0};
  cr_assert_eq(mr_config_load_ini(&c, CONF, &err), 0, "%s", err.msg);
  expect_defaults_with_model(&c);
}

/* Each commented `;key = value` holds the built-in default: uncommenting
 * all of them changes nothing. */
Test(deploy, config_file_comments_hold_the_defaults) {
  char *conf = slurp(CONF);
  cr_assert_not_null(conf);
  char d[256], path[512];
  mr_test_tmpdir(d, sizeof d);
  snprintf(path, sizeof path, "%s/all.conf", d);
  FILE *f = fopen(path, "w");
  int n = 0;
  for (char *line = strtok(conf, "\n"); line; line = strtok(NULL, "\n")) {
    char key[64], val[256];
    if (line[0] == ';' && sscanf(line + 1, "%63[a-z_] = %255s", key, val) == 2) {
      fprintf(f, "%s\n", line + 1);
      n++;
    } else if (line[0] != ';') {
      fprintf(f, "%s\n", line);
    }
  }
  fclose(f);
  cr_assert_geq(n, 15, "only %d commented defaults", n);
  mr_config_t c;
  mr_config_defaults(&c);
  mr_err_t err = {0};
  cr_assert_eq(mr_config_load_ini(&c, path, &err), 0, "%s", err.msg);
  expect_defaults_with_model(&c);
  free(conf);
  rm_tree(d);
}
