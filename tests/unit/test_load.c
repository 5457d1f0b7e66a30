/* microrec-load against the real microrecd: the open-loop scheduler keeps
 * its rate, latency is taken from the schedule (a stalled server shows in
 * the percentiles), the .hgrm output has HdrHistogram's layout, the peak
 * search, and the command line's exit codes. */
#include <jansson.h>
#include <math.h>

#include "tests/unit/server_proc.h"

#define LOAD_BIN MR_BUILD_DIR "/bin/microrec-load"

typedef struct load_proc {
  pid_t pid;
  char dir[256];
  char out[320], err[320];
} load_proc_t;

/* Starts microrec-load with args (NULL-terminated); stdout and stderr go
 * to files in a fresh directory. */
static void load_start(load_proc_t *p, const char *const *args) {
  if (access(LOAD_BIN, X_OK) != 0)
    cr_skip_test("%s not built yet", LOAD_BIN);
  memset(p, 0, sizeof *p);
  mr_test_tmpdir(p->dir, sizeof p->dir);
  snprintf(p->out, sizeof p->out, "%s/stdout", p->dir);
  snprintf(p->err, sizeof p->err, "%s/stderr", p->dir);
  const char *argv[64];
  int argc = 0;
  argv[argc++] = LOAD_BIN;
  for (int i = 0; args[i] && argc < 63; i++) argv[argc++] = args[i];
  argv[argc] = NULL;
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0, "fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int o = open(p->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(p->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0) _exit(126);
    dup2(o, 1);
    dup2(e, 2);
    close_range(3, ~0u, 0);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  p->pid = pid;
}

/* A whole file as a NUL-terminated string (NULL if unreadable). */
static char *read_text(const char *path) {
  size_t len = 0;
  char *buf = mr_test_read_file(path, &len);
  if (!buf) return NULL;
  char *s = realloc(buf, len + 1);
  if (!s) {
    free(buf);
    return NULL;
  }
  s[len] = 0;
  return s;
}

static void load_dump(const load_proc_t *p) {
  char *e = read_text(p->err);
  char *o = read_text(p->out);
  fprintf(stderr, "---- microrec-load stdout ----\n%s\n---- stderr ----\n%s\n",
          o ? o : "", e ? e : "");
  free(e);
  free(o);
}

/* Waits (at most 120 s) and returns the exit code; -1 if it was killed. */
static int load_wait(load_proc_t *p) {
  int64_t deadline = mr_test_now_ms() + 120000;
  int st = 0;
  for (;;) {
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) break;
    if (r < 0 || mr_test_now_ms() > deadline) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &st, 0);
      return -1;
    }
    mr_test_sleep_ms(10);
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int load_run(load_proc_t *p, const char *const *args) {
  load_start(p, args);
  return load_wait(p);
}

/* The JSON object microrec-load printed on stdout. */
static json_t *load_json(const load_proc_t *p) {
  json_error_t je;
  json_t *j = json_load_file(p->out, 0, &je);
  if (!j) load_dump(p);
  cr_assert(j, "microrec-load's stdout is not JSON: %s", je.text);
  return j;
}

static double num(const json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  cr_assert(json_is_number(v), "JSON key '%s' missing or not a number", key);
  return json_number_value(v);
}

static void check_percentiles(const json_t *j) {
  double p50 = num(j, "p50_us"), p90 = num(j, "p90_us"), p99 = num(j, "p99_us"),
         p999 = num(j, "p999_us"), max = num(j, "max_us");
  cr_expect_gt(p50, 0, "p50 %.1f us", p50);
  cr_expect(p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max,
            "percentiles not monotone: %.1f %.1f %.1f %.1f %.1f", p50, p90, p99,
            p999, max);
}

static void port_arg(const mr_test_server_t *s, char *buf, size_t len) {
  snprintf(buf, len, "127.0.0.1:%u", s->port);
}

Test(load, open_loop_achieves_the_target_rate, .timeout = 120) {
  mr_test_server_t s;
  mr_test_server_start(&s, NULL, NULL);
  char server[64];
  port_arg(&s, server, sizeof server);
  load_proc_t p;
  const char *args[] = {"--server", server, "--rate", "2000", "--duration",
                        "5", "--json", NULL};
  int code = load_run(&p, args);
  if (code != 0) load_dump(&p);
  cr_assert_eq(code, 0, "microrec-load exited %d", code);
  json_t *j = load_json(&p);
  double rate = num(j, "achieved_rate");
  cr_expect(fabs(rate - 2000) <= 0.02 * 2000,
            "achieved %.1f req/s, offered 2000", rate);
  /* Constant arrivals: exactly rate x duration requests were due. */
  cr_expect(fabs(num(j, "requests") - 10000) <= 1, "requests %.0f",
            num(j, "requests"));
  cr_expect_eq(num(j, "errors"), 0);
  check_percentiles(j);
  json_decref(j);
  mr_test_server_stop_clean(&s);
}

Test(load, stalled_server_shows_in_max_and_p99, .timeout = 120) {
  mr_test_server_t s;
  mr_test_server_start(&s, NULL, NULL);
  char server[64];
  port_arg(&s, server, sizeof server);
  load_proc_t p;
  const char *args[] = {"--server", server, "--rate", "2000", "--duration",
                        "3", "--warmup", "0", "--json", NULL};
  load_start(&p, args);
  /* Stall once the load is well under way: the server has answered a few
   * hundred requests (the stats request itself is one more). */
  mr_client_t *c = mr_test_connect(&s);
  int64_t deadline = mr_test_now_ms() + 30000;
  for (;;) {
    mr_stats_reply_t st;
    mr_err_t err = {0};
    cr_assert_eq(mr_client_stats(c, &st, &err), 0, "stats: %s", err.msg);
    uint64_t n = st.requests;
    mr_stats_reply_free(&st);
    if (n >= 500) break;
    cr_assert_lt(mr_test_now_ms(), deadline, "the load never reached 500");
    mr_test_sleep_ms(20);
  }
  mr_client_close(c);
  kill(s.pid, SIGSTOP);
  mr_test_sleep_ms(110);
  kill(s.pid, SIGCONT);
  int code = load_wait(&p);
  if (code != 0) load_dump(&p);
  cr_assert_eq(code, 0, "microrec-load exited %d", code);
  json_t *j = load_json(&p);
  /* Requests due during the 110 ms stall waited for it: one waited about
   * all of it, and ~220 of 6000 (3.7%) waited a share of it, so the top 1%
   * waited most of it. A generator that timed from its own (late) sends,
   * or stopped sending while blocked, would hide this. */
  double max = num(j, "max_us"), p99 = num(j, "p99_us");
  cr_expect_geq(max, 100000, "max %.0f us does not include the 110 ms stall",
                max);
  cr_expect_geq(p99, 50000, "p99 %.0f us does not include the stall", p99);
  cr_expect_eq(num(j, "errors"), 0);
  check_percentiles(j);
  json_decref(j);
  mr_test_server_stop_clean(&s);
}

/* Reads the .hgrm file as HdrHistogram's plotter does: header, rows of
 * value / percentile / total count / 1/(1-percentile), the 100% row, and
 * the #[...] footer. */
Test(load, hgrm_file_has_the_plotter_layout, .timeout = 120) {
  mr_test_server_t s;
  mr_test_server_start(&s, NULL, NULL);
  char server[64], hgrm[512];
  port_arg(&s, server, sizeof server);
  char dir[256];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(hgrm, sizeof hgrm, "%s/lat.hgrm", dir);
  load_proc_t p;
  const char *args[] = {"--server", server, "--rate", "500", "--duration",
                        "1", "--warmup", "0.2", "--hgrm", hgrm, NULL};
  int code = load_run(&p, args);
  if (code != 0) load_dump(&p);
  cr_assert_eq(code, 0);

  FILE *f = fopen(hgrm, "r");
  cr_assert(f, "no .hgrm file written at %s", hgrm);
  char line[512];
  cr_assert(fgets(line, sizeof line, f));
  cr_expect_str_eq(line,
                   "       Value     Percentile TotalCount 1/(1-Percentile)\n");
  cr_assert(fgets(line, sizeof line, f));
  cr_expect_str_eq(line, "\n");
  double prev_v = -1, prev_p = -1, last_v = 0;
  unsigned long prev_n = 0, last_n = 0;
  int rows = 0, saw_last = 0;
  while (fgets(line, sizeof line, f) && line[0] != '#') {
    double v, pc, inv;
    unsigned long n;
    int k = sscanf(line, "%lf %lf %lu %lf", &v, &pc, &n, &inv);
    cr_assert(k == 4 || (k == 3 && pc == 1.0), "bad row: %s", line);
    cr_expect(!saw_last, "a row after the 100%% row: %s", line);
    cr_expect_geq(v, prev_v, "values not monotone at: %s", line);
    cr_expect_gt(pc, prev_p, "percentiles not increasing at: %s", line);
    cr_expect_geq(n, prev_n, "counts not monotone at: %s", line);
    if (k == 4)
      cr_expect(fabs(inv - 1.0 / (1.0 - pc)) < 0.01, "bad 1/(1-p): %s", line);
    saw_last = k == 3;
    prev_v = last_v = v;
    prev_p = pc;
    prev_n = last_n = n;
    rows++;
  }
  cr_expect(saw_last, "no final 100%% row");
  cr_expect_gt(rows, 10, "only %d rows", rows);
  double mean, sd, max;
  unsigned long total;
  int buckets, sub;
  cr_assert_eq(sscanf(line, "#[Mean    = %lf, StdDeviation   = %lf]", &mean,
                      &sd), 2, "bad footer line: %s", line);
  cr_assert(fgets(line, sizeof line, f));
  cr_assert_eq(sscanf(line, "#[Max     = %lf, Total count    = %lu]", &max,
                      &total), 2, "bad footer line: %s", line);
  cr_assert(fgets(line, sizeof line, f));
  cr_assert_eq(sscanf(line, "#[Buckets = %d, SubBuckets     = %d]", &buckets,
                      &sub), 2, "bad footer line: %s", line);
  cr_expect_eq(total, last_n, "footer count %lu, last row %lu", total, last_n);
  cr_expect(fabs(max - last_v) < 0.002, "max %.3f, last row %.3f", max, last_v);
  cr_expect(fabs(total - 500.0) <= 1, "%lu values, 500 requests due", total);
  cr_expect(mean > 0 && mean <= max && sd >= 0);
  cr_expect_eq(sub, 2048, "3 significant digits is 2048 sub-buckets");
  cr_expect_gt(buckets, 0);
  cr_expect(!fgets(line, sizeof line, f), "text after the footer: %s", line);
  fclose(f);
  mr_test_server_stop_clean(&s);
}

Test(load, closed_loop_reports_percentiles, .timeout = 120) {
  mr_test_server_t s;
  mr_test_server_start(&s, NULL, NULL);
  char server[64];
  port_arg(&s, server, sizeof server);
  load_proc_t p;
  const char *args[] = {"--server", server, "--concurrency", "4", "--batch",
                        "8", "--ids", "zipf", "--duration", "1", "--warmup",
                        "0.2", "--json", NULL};
  int code = load_run(&p, args);
  if (code != 0) load_dump(&p);
  cr_assert_eq(code, 0);
  json_t *j = load_json(&p);
  cr_expect_str_eq(json_string_value(json_object_get(j, "mode")), "closed");
  cr_expect_gt(num(j, "requests"), 0);
  cr_expect_eq(num(j, "errors"), 0);
  cr_expect_eq(num(j, "requests"), num(j, "ok"));
  cr_expect(fabs(num(j, "achieved_samples_per_s") -
                 8 * num(j, "achieved_rate")) < 1e-6);
  check_percentiles(j);
  json_decref(j);
  mr_test_server_stop_clean(&s);
}

Test(load, find_peak_stops_at_the_max_rate_when_all_pass, .timeout = 120) {
  mr_test_server_t s;
  mr_test_server_start(&s, NULL, NULL);
  char server[64];
  port_arg(&s, server, sizeof server);
  load_proc_t p;
  /* A 2 s p99 bound every step meets: 200, 400, then 800 = --max-rate. */
  const char *args[] = {"--server", server, "--find-peak", "--slo-p99-us",
                        "2000000", "--start-rate", "200", "--max-rate", "800",
                        "--step-duration", "0.3", "--step-warmup", "0.1",
                        "--lag-bound-us", "1000000", "--json", NULL};
  int code = load_run(&p, args);
  if (code != 0) load_dump(&p);
  cr_assert_eq(code, 0);
  json_t *j = load_json(&p);
  cr_expect_eq(num(j, "peak_rate"), 800);
  cr_expect(json_is_true(json_object_get(j, "capped_at_max_rate")));
  json_t *steps = json_object_get(j, "steps");
  cr_assert(json_is_array(steps));
  cr_expect_eq(json_array_size(steps), 3);
  for (size_t i = 0; i < json_array_size(steps); i++) {
    json_t *st = json_array_get(steps, i);
    cr_expect_eq(num(st, "offered_rate"), 200.0 * (1 << i));
    cr_expect_str_eq(json_string_value(json_object_get(st, "verdict")), "pass");
  }
  check_percentiles(j);
  json_decref(j);
  mr_test_server_stop_clean(&s);
}

Test(load, find_peak_fails_when_no_rate_meets_the_slo, .timeout = 120) {
  mr_test_server_t s;
  mr_test_server_start(&s, NULL, NULL);
  char server[64];
  port_arg(&s, server, sizeof server);
  load_proc_t p;
  /* No answer comes back within 1 us over TCP. (A generous lag bound: the
   * search's arithmetic is under test here, not this machine's timers.) */
  const char *args[] = {"--server", server, "--find-peak", "--slo-p99-us",
                        "1", "--start-rate", "400", "--step-duration", "0.2",
                        "--step-warmup", "0", "--max-steps", "3",
                        "--lag-bound-us", "1000000", "--json", NULL};
  int code = load_run(&p, args);
  cr_expect_eq(code, 1, "exit %d, expected 1 (no rate met the SLO)", code);
  json_t *j = load_json(&p);
  cr_expect_eq(num(j, "peak_rate"), 0);
  json_t *steps = json_object_get(j, "steps");
  cr_expect_eq(json_array_size(steps), 3);
  /* Halving from the start rate while failing. */
  cr_expect_eq(num(json_array_get(steps, 2), "offered_rate"), 100);
  json_decref(j);
  mr_test_server_stop_clean(&s);
}

Test(load, criteo_replay_scores_without_errors, .timeout = 120) {
  MR_REQUIRE_TESTDATA();
  char dir[256], model[512], tsv[4096], server[64];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(model, sizeof model, "%s/criteo.safetensors", dir);
  mr_gen_spec_t spec;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_preset(&spec, "criteo", 100, &err), 0, "%s", err.msg);
  cr_assert_eq(mr_gen_write(&spec, model, NULL, NULL, &err), 0, "%s", err.msg);
  snprintf(tsv, sizeof tsv, "%s/criteo-kaggle-1k.tsv", mr_test_testdata());
  mr_test_server_t s;
  mr_test_server_start(&s, model, NULL);
  port_arg(&s, server, sizeof server);
  load_proc_t p;
  const char *args[] = {"--server", server, "--criteo", tsv, "--batch", "64",
                        "--rate", "100", "--duration", "1", "--warmup", "0",
                        "--json", NULL};
  int code = load_run(&p, args);
  if (code != 0) load_dump(&p);
  cr_assert_eq(code, 0);
  json_t *j = load_json(&p);
  cr_expect_str_eq(json_string_value(json_object_get(j, "source")), "criteo");
  cr_expect_eq(num(j, "errors"), 0);
  cr_expect_eq(num(j, "batch"), 64);
  check_percentiles(j);
  json_decref(j);
  mr_test_server_stop_clean(&s);
}

Test(load, help_documents_every_flag_with_its_default) {
  load_proc_t p;
  const char *args[] = {"--help", NULL};
  cr_assert_eq(load_run(&p, args), 0);
  char *text = read_text(p.out);
  cr_assert(text);
  static const char *const flags[] = {
      "--server",        "--connections",   "--rate",        "--arrivals",
      "--concurrency",   "--duration",      "--warmup",      "--timeout",
      "--batch",         "--ids",           "--zipf-exponent", "--criteo",
      "--seed",          "--json",          "--hgrm",        "--lag-bound-us",
      "--lag-fraction",  "--find-peak",     "--slo-p99-us",  "--start-rate",
      "--max-rate",      "--step-duration", "--step-warmup", "--precision",
      "--spin-us",
      "--max-steps",     "--help"};
  for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
    cr_expect(strstr(text, flags[i]), "--help does not mention %s", flags[i]);
  cr_expect(strstr(text, "exit codes"));
  free(text);
}

Test(load, usage_errors_exit_2) {
  const char *const *const cases[] = {
      (const char *const[]){NULL},                              /* no mode */
      (const char *const[]){"--rate", "10", "--bogus", NULL},   /* unknown */
      (const char *const[]){"--rate", "ten", NULL},             /* not a number */
      (const char *const[]){"--rate", "10", "--concurrency", "2", NULL},
      (const char *const[]){"--find-peak", NULL},               /* no SLO */
      (const char *const[]){"--rate", "10", "--arrivals", "bursty", NULL},
      (const char *const[]){"--rate", "10", "--duration", NULL}, /* no value */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    load_proc_t p;
    int code = load_run(&p, cases[i]);
    cr_expect_eq(code, 2, "case %zu: exit %d, expected 2", i, code);
    char *err = read_text(p.err);
    cr_expect(err && strstr(err, "microrec-load: "),
              "case %zu: no message on stderr", i);
    free(err);
  }
}

Test(load, unreachable_server_exits_1) {
  /* A port nothing listens on: bind, note it, close. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
  close(fd);
  char server[64];
  snprintf(server, sizeof server, "127.0.0.1:%u", ntohs(a.sin_port));
  load_proc_t p;
  const char *args[] = {"--server", server, "--rate", "10", "--duration", "1",
                        NULL};
  cr_expect_eq(load_run(&p, args), 1);
  char *err = read_text(p.err);
  cr_expect(err && strstr(err, server), "the error should name %s", server);
  free(err);
}
