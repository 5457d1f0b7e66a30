/* Long fault test: SIGHUP every second for 30 s while clients keep the
 * server busy, the model file replaced in turns by two models of the same
 * shape (A and B, different weights). No request may fail, and every
 * answer must be entirely A's or entirely B's scores for its inputs
 * (checked against the offline engine): a reload swaps the model between
 * requests, never inside one. Old models must all be freed. Part of
 * `make test-long` (tests/README.md, "Reliability"). */
#include <criterion/criterion.h>
#ifndef cr_fatal /* testutil.h uses it; only criterion/new/assert.h has it */
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif

#include "tests/unit/reliability.h"

#define report(...) \
  (fprintf(stderr, "[long_reload] " __VA_ARGS__), fputc('\n', stderr))

static mr_test_server_t srv;
static mr_rel_ref_t ref_a, ref_b;

static void fini(void) {
  mr_test_server_stop(&srv);
  mr_rel_ref_free(&ref_a);
  mr_rel_ref_free(&ref_b);
}

TestSuite(long_reload, .fini = fini, .timeout = 600);

#define RELOADS 30
#define WORKERS 3
#define SEED_A 7
#define SEED_B 8

/* Lines of the server's log that contain what. */
static int log_count(const char *what) {
  size_t len = 0;
  char *text = mr_test_read_file(srv.log, &len);
  cr_assert(text, "cannot read %s", srv.log);
  int n = 0;
  for (char *p = text; (p = memmem(p, len - (size_t)(p - text), what,
                                   strlen(what)));
       p++)
    n++;
  free(text);
  return n;
}

static void health(uint64_t *generation) {
  mr_client_t *c = mr_test_connect(&srv);
  mr_health_t h;
  mr_err_t err = {0};
  cr_assert_eq(mr_client_health(c, &h, &err), 0, "%s", err.msg);
  cr_assert(h.ready);
  *generation = h.model_generation;
  mr_health_free(&h);
  mr_client_close(c);
}

Test(long_reload, sighup_every_second_under_load_fails_no_request) {
  char dir[256], model[320];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(model, sizeof model, "%s/model.safetensors", dir);
  mr_rel_write_model(model, SEED_A);
  mr_rel_small_quarantine();
  mr_test_server_start(&srv, model, NULL);
  /* Both references on the same inputs (same pool seed, same tables). */
  mr_rel_ref_init(&ref_a, model, 4096, 42);
  char other[352];
  snprintf(other, sizeof other, "%s/b.safetensors", dir);
  mr_rel_write_model(other, SEED_B);
  mr_rel_ref_init(&ref_b, other, 4096, 42);
  unlink(other);

  atomic_int stop = 0;
  mr_rel_worker_t w[WORKERS];
  static const size_t lo[WORKERS] = {1, 16, 300}, hi[WORKERS] = {4, 256, 1500};
  static const size_t win[WORKERS] = {4, 16, 4};
  for (int i = 0; i < WORKERS; i++) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].port = srv.port;
    w[i].ref = &ref_a;
    w[i].ref2 = &ref_b;
    w[i].min_samples = lo[i];
    w[i].max_samples = hi[i];
    w[i].window = win[i];
    w[i].stop = &stop;
    w[i].seed = (uint64_t)i + 1;
    mr_rel_worker_start(&w[i]);
  }

  long rss_first = 0;
  for (int k = 1; k <= RELOADS; k++) {
    mr_test_sleep_ms(1000);
    /* Odd reloads serve B, even ones A again (mr_gen_write renames). */
    mr_rel_write_model(model, k % 2 ? SEED_B : SEED_A);
    cr_assert_eq(kill(srv.pid, SIGHUP), 0);
    cr_assert(mr_test_server_alive(&srv), "server died at reload %d", k);
    if (k == 5) rss_first = mr_rel_rss_kb(srv.pid);
  }
  /* Let the last reload land, then stop the load. */
  uint64_t gen = 0;
  int64_t deadline = mr_test_now_ms() + 30000;
  int reloaded;
  while ((reloaded = log_count("model reloaded")) < RELOADS &&
         mr_test_now_ms() < deadline)
    mr_test_sleep_ms(100);
  long rss_last = mr_rel_rss_kb(srv.pid);
  atomic_store(&stop, 1);
  for (int i = 0; i < WORKERS; i++) mr_rel_worker_join(&w[i], "client");
  health(&gen);

  /* Every old model freed once its last request was answered. */
  int freed;
  deadline = mr_test_now_ms() + 20000;
  while ((freed = log_count("previous model freed")) < reloaded &&
         mr_test_now_ms() < deadline)
    mr_test_sleep_ms(100);
  int failed_reloads = log_count("reload failed");

  /* The last model written (A, RELOADS being even) is the one served. */
  mr_client_t *c = mr_test_connect(&srv);
  float score;
  mr_err_t err = {0};
  cr_assert_eq(mr_client_infer(c, 1, ref_a.dense, ref_a.num_dense, ref_a.ids,
                               ref_a.num_tables, NULL, &score, NULL, &err),
               0, "%s", err.msg);
  mr_client_close(c);

  mr_rel_totals_t t = mr_rel_sum(w, WORKERS);
  uint64_t by_b = 0;
  for (int i = 0; i < WORKERS; i++) by_b += w[i].by_ref2;
  report("%d SIGHUPs, one a second, under load: %d reloads applied, %d "
         "failed, %d old models freed, generation %llu; %llu requests, "
         "%llu answered OK (%llu by model A, %llu by model B; %llu samples "
         "checked against the offline engine), %llu OVERLOADED, %llu "
         "INTERNAL; server RSS %ld kB after 5 reloads, %ld kB after %d",
         RELOADS, reloaded, failed_reloads, freed, (unsigned long long)gen,
         (unsigned long long)t.sent, (unsigned long long)t.ok,
         (unsigned long long)(t.ok - by_b), (unsigned long long)by_b,
         (unsigned long long)t.samples, (unsigned long long)t.overloaded,
         (unsigned long long)t.internal, rss_first, rss_last, RELOADS);
  cr_assert_eq(t.ok, t.sent, "requests failed during reloads");
  cr_assert_eq(failed_reloads, 0);
  cr_assert_geq(reloaded, RELOADS / 2, "only %d of %d reloads applied",
                reloaded, RELOADS);
  cr_assert_eq(gen, 1 + (uint64_t)reloaded);
  cr_assert_eq(freed, reloaded, "%d old models not freed", reloaded - freed);
  cr_assert_gt(by_b, 0, "model B never answered");
  cr_assert_gt(t.ok - by_b, 0, "model A never answered");
  cr_assert(fabsf(score - ref_a.scores[0]) <= MR_REL_SCORE_TOL,
            "after the last reload the server scores %.9g, model A %.9g",
            (double)score, (double)ref_a.scores[0]);
  cr_assert_leq(rss_last - rss_first, MR_REL_SANITIZED ? 64 * 1024 : 16 * 1024,
                "server RSS grew %ld kB over %d reloads",
                rss_last - rss_first, RELOADS - 5);
  for (int i = 0; i < WORKERS; i++) mr_rel_worker_free(&w[i]);
  mr_test_server_stop_clean(&srv);
  unlink(model);
  rmdir(dir);
}
