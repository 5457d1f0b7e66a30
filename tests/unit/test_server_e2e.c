/* End to end: the real microrecd on the reference model, scored through
 * libmicrorec and the `microrec infer` CLI, against PyTorch's outputs in
 * ../shared/testdata (|logit diff| <= 1e-3). */
#include <criterion/criterion.h>
#ifndef cr_fatal /* testutil.h uses it; only criterion/new/assert.h has it */
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif
#include <math.h>
#include <pthread.h>

#include "client/lib/input.h"
#include "tests/unit/server_proc.h"

static mr_test_server_t srv;
static mr_input_t in;
static float *ref_logits, *ref_scores;

static void path_of(char *buf, size_t len, const char *rel) {
  snprintf(buf, len, "%s/%s", mr_test_testdata(), rel);
}

/* Starts the server on dlrm-criteo-small and loads its reference data. */
static void setup(void) {
  MR_REQUIRE_TESTDATA();
  char model[4096], dense[4096], sparse[4096], logits[4096], scores[4096];
  path_of(model, sizeof model, "dlrm-criteo-small/model.safetensors");
  path_of(dense, sizeof dense, "dlrm-criteo-small/criteo-1k/dense.f32");
  path_of(sparse, sizeof sparse, "dlrm-criteo-small/criteo-1k/sparse.i64");
  path_of(logits, sizeof logits, "dlrm-criteo-small/criteo-1k/logits.f32");
  path_of(scores, sizeof scores, "dlrm-criteo-small/criteo-1k/scores.f32");
  mr_err_t err = {0};
  cr_assert_eq(mr_input_load_binary(&in, dense, sparse, 13, 26, &err), 0,
               "%s", err.msg);
  size_t len;
  ref_logits = mr_test_read_file(logits, &len);
  cr_assert(ref_logits && len == in.n * sizeof(float));
  ref_scores = mr_test_read_file(scores, &len);
  cr_assert(ref_scores && len == in.n * sizeof(float));
  mr_test_server_start(&srv, model, NULL);
}

static void teardown(void) {
  mr_test_server_stop(&srv);
  mr_input_free(&in);
  free(ref_logits);
  free(ref_scores);
}

TestSuite(server_e2e, .timeout = 30);

static void check_logits(const float *logits, const float *scores) {
  for (size_t i = 0; i < in.n; i++) {
    cr_assert(fabsf(logits[i] - ref_logits[i]) <= 1e-3f,
              "sample %zu: logit %.7g, PyTorch %.7g", i, logits[i],
              ref_logits[i]);
    if (scores)
      cr_assert(fabsf(scores[i] - ref_scores[i]) <= 1e-3f,
                "sample %zu: score %.7g, PyTorch %.7g", i, scores[i],
                ref_scores[i]);
  }
}

static void infer_all(mr_client_t *c, size_t batch, size_t window,
                      float *scores, float *logits) {
  mr_infer_opts_t o = {.batch = batch, .window = window};
  mr_err_t err = {0};
  cr_assert_eq(mr_client_infer(c, in.n, in.dense, 13, in.ids, 26, &o, scores,
                               logits, &err),
               0, "batch %zu: %s", batch, err.msg);
}

static void reproduce_with_batch(size_t batch) {
  mr_client_t *c = mr_test_connect(&srv);
  float *scores = malloc(in.n * sizeof *scores);
  float *logits = malloc(in.n * sizeof *logits);
  infer_all(c, batch, 16, scores, logits);
  check_logits(logits, scores);
  mr_client_close(c);
  free(scores);
  free(logits);
  mr_test_server_stop_clean(&srv);
}

Test(server_e2e, reproduces_pytorch_with_batch_1, .init = setup,
     .fini = teardown) {
  reproduce_with_batch(1);
}

Test(server_e2e, reproduces_pytorch_with_batch_7, .init = setup,
     .fini = teardown) {
  reproduce_with_batch(7);
}

Test(server_e2e, reproduces_pytorch_with_batch_1000, .init = setup,
     .fini = teardown) {
  reproduce_with_batch(1000);
}

typedef struct worker {
  pthread_t tid;
  size_t batch;
  float *logits;
  int rc;
  mr_err_t err;
} worker_t;

static void *worker_main(void *arg) {
  worker_t *w = arg;
  mr_client_t *c = NULL;
  w->rc = mr_client_connect(&c, "127.0.0.1", srv.port, 20000, &w->err);
  mr_infer_opts_t o = {.batch = w->batch, .window = 4};
  for (int rep = 0; rep < 3 && w->rc == 0; rep++)
    w->rc = mr_client_infer(c, in.n, in.dense, 13, in.ids, 26, &o, NULL,
                            w->logits, &w->err);
  mr_client_close(c);
  return NULL;
}

Test(server_e2e, reproduces_pytorch_over_several_connections_at_once,
     .init = setup, .fini = teardown) {
  static const size_t batches[] = {1, 7, 1000, 7, 1, 64};
  enum { N = sizeof batches / sizeof *batches };
  worker_t w[N];
  for (size_t i = 0; i < N; i++) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].batch = batches[i];
    w[i].logits = malloc(in.n * sizeof(float));
    cr_assert_eq(pthread_create(&w[i].tid, NULL, worker_main, &w[i]), 0);
  }
  for (size_t i = 0; i < N; i++) pthread_join(w[i].tid, NULL);
  for (size_t i = 0; i < N; i++) {
    cr_assert_eq(w[i].rc, 0, "connection %zu (batch %zu): %s", i,
                 w[i].batch, w[i].err.msg);
    check_logits(w[i].logits, NULL);
    free(w[i].logits);
  }
  mr_test_server_stop_clean(&srv);
}

Test(server_e2e, pipelined_responses_match_their_ids, .init = setup,
     .fini = teardown) {
  /* Raw send / recv: 100 single-sample requests in flight at once. */
  mr_client_t *c = mr_test_connect(&srv);
  mr_err_t err = {0};
  uint64_t first = 0;
  for (size_t i = 0; i < 100; i++) {
    uint64_t id;
    cr_assert_eq(mr_client_send_infer(c, 1, in.dense + i * 13, 13,
                                      in.ids + i * 26, 26, 1, &id, &err),
                 0, "%s", err.msg);
    if (i == 0) first = id;
  }
  cr_assert_eq(mr_client_in_flight(c), 100);
  for (size_t k = 0; k < 100; k++) {
    mr_response_t r;
    cr_assert_eq(mr_client_recv(c, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.status, MR_STATUS_OK, "%s", r.message);
    size_t i = (size_t)(r.id - first);
    cr_assert_lt(i, 100);
    cr_assert_eq(r.num_scores, 1);
    cr_assert_eq(r.num_logits, 1);
    cr_assert(fabsf(r.logits[0] - ref_logits[i]) <= 1e-3f);
    cr_assert(r.server_ns > 0, "no server timing");
    cr_assert(r.server_ns >= r.engine_ns);
    mr_response_free(&r);
  }
  mr_client_close(c);
  mr_test_server_stop_clean(&srv);
}

Test(server_e2e, health_model_info_and_stats, .init = setup,
     .fini = teardown) {
  mr_client_t *c = mr_test_connect(&srv);
  mr_err_t err = {0};
  mr_health_t h;
  cr_assert_eq(mr_client_health(c, &h, &err), 0, "%s", err.msg);
  cr_assert(h.alive && h.ready);
  cr_assert(strstr(h.model_path, "model.safetensors"), "%s", h.model_path);
  mr_health_free(&h);

  mr_model_info_t mi;
  cr_assert_eq(mr_client_model_info(c, &mi, &err), 0, "%s", err.msg);
  cr_assert_str_eq(mi.interaction, "dot");
  cr_assert_eq(mi.num_dense, 13);
  cr_assert_eq(mi.num_tables, 26);
  for (size_t k = 0; k < 26; k++) {
    cr_assert(mi.rows[k] >= 3 && mi.rows[k] <= 4000, "table %zu rows %llu",
              k, (unsigned long long)mi.rows[k]);
    cr_assert_eq(mi.dims[k], 16);
  }
  cr_assert_eq(mi.num_bottom, 4);
  cr_assert_eq(mi.bottom[0].in, 13);
  cr_assert_eq(mi.num_top, 3);
  cr_assert_eq(mi.top[0].in, 367);
  cr_assert_eq(mi.top[2].out, 1);
  cr_assert(mi.total_bytes > 0);
  mr_model_info_free(&mi);

  infer_all(c, 100, 4, NULL, NULL);
  mr_stats_reply_t st;
  cr_assert_eq(mr_client_stats(c, &st, &err), 0, "%s", err.msg);
  cr_assert_geq(st.samples, in.n);
  cr_assert_geq(st.requests, 10);
  cr_assert_geq(st.connections, 1);
  int have_e2e = 0;
  for (size_t i = 0; i < st.num_latency; i++) {
    const mr_latency_t *l = &st.latency[i];
    cr_assert(l->p50_us <= l->p90_us && l->p90_us <= l->p99_us &&
                  l->p99_us <= l->p999_us && l->p999_us <= l->max_us,
              "stage %s: percentiles out of order", l->stage);
    if (l->count >= 10) have_e2e = 1;
  }
  cr_assert(have_e2e, "no latency stage counted the 10 requests");
  mr_stats_reply_free(&st);
  mr_client_close(c);
  mr_test_server_stop_clean(&srv);
}

/* Runs `microrec ARGS` and returns its stdout (malloc'd); *status gets the
 * exit status. */
static char *run_cli(const char *args, int *status) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "%s/bin/microrec %s 2>&1", MR_BUILD_DIR, args);
  FILE *p = popen(cmd, "r");
  cr_assert(p);
  size_t cap = 1 << 16, len = 0;
  char *out = malloc(cap);
  size_t n;
  while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
    len += n;
    if (cap - len < 4096) out = realloc(out, cap *= 2);
  }
  out[len] = 0;
  int st = pclose(p);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

/* Parses one number per line and compares with ref (what the CLI prints
 * is %.9g, so the float round-trips exactly). */
static void check_cli_output(const char *out, const float *ref, float tol) {
  const char *p = out;
  for (size_t i = 0; i < in.n; i++) {
    char *end;
    double v = strtod(p, &end);
    cr_assert(end != p, "line %zu of the output is not a number: %.60s", i + 1,
              p);
    cr_assert(fabs(v - ref[i]) <= tol, "row %zu: %.9g vs %.9g", i, v,
              (double)ref[i]);
    p = end;
    cr_assert(*p == '\n');
    p++;
  }
  cr_assert(*p == 0, "extra output: %.60s", p);
}

Test(server_e2e, cli_infer_matches_pytorch, .init = setup, .fini = teardown) {
  char args[16384], tsv[4096], dense[4096], sparse[4096];
  path_of(tsv, sizeof tsv, "criteo-kaggle-1k.tsv");
  path_of(dense, sizeof dense, "dlrm-criteo-small/criteo-1k/dense.f32");
  path_of(sparse, sizeof sparse, "dlrm-criteo-small/criteo-1k/sparse.i64");
  int st;
  snprintf(args, sizeof args, "infer --server 127.0.0.1:%u --criteo %s "
           "--logits --batch 7", srv.port, tsv);
  char *out = run_cli(args, &st);
  cr_assert_eq(st, 0, "microrec infer failed: %s", out);
  check_cli_output(out, ref_logits, 1e-3f);
  free(out);
  snprintf(args, sizeof args, "infer --server 127.0.0.1:%u --dense %s "
           "--sparse %s --batch 1000", srv.port, dense, sparse);
  out = run_cli(args, &st);
  cr_assert_eq(st, 0, "microrec infer failed: %s", out);
  check_cli_output(out, ref_scores, 1e-3f);
  free(out);

  snprintf(args, sizeof args, "health --server 127.0.0.1:%u", srv.port);
  out = run_cli(args, &st);
  cr_assert_eq(st, 0, "%s", out);
  cr_assert(strstr(out, "ready       yes"), "%s", out);
  free(out);
  snprintf(args, sizeof args, "stats --server 127.0.0.1:%u", srv.port);
  out = run_cli(args, &st);
  cr_assert_eq(st, 0, "%s", out);
  cr_assert(strstr(out, "p99.9"), "%s", out);
  free(out);
  snprintf(args, sizeof args, "stats --json --server 127.0.0.1:%u", srv.port);
  out = run_cli(args, &st);
  cr_assert_eq(st, 0, "%s", out);
  cr_assert(strstr(out, "\"latency\""), "%s", out);
  free(out);
  snprintf(args, sizeof args, "remote-info --server 127.0.0.1:%u", srv.port);
  out = run_cli(args, &st);
  cr_assert_eq(st, 0, "%s", out);
  cr_assert(strstr(out, "interaction  dot"), "%s", out);
  free(out);
  /* Usage errors are 2, an unreachable server is 1. */
  out = run_cli("infer --server 127.0.0.1:1 --sparse x", &st);
  cr_assert_eq(st, 1, "%s", out);
  free(out);
  out = run_cli("infer --bogus", &st);
  cr_assert_eq(st, 2, "%s", out);
  free(out);
  out = run_cli("infer --criteo a --sparse b", &st);
  cr_assert_eq(st, 2, "%s", out);
  free(out);
  mr_test_server_stop_clean(&srv);
}
