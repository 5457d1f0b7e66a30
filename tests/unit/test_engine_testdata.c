/* The cpu engine against PyTorch's own outputs for the shared reference
 * models (testdata/README.md): every kernel set, several batch sizes,
 * |logit - reference| <= 1e-3. */
#include <math.h>
#include <stdint.h>

#include "fpga/engine.h"
#include "fpga/model.h"
#include "tests/unit/testutil.h"

static void *read_exact(const char *dir, const char *name, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  size_t len = 0;
  void *p = mr_test_read_file(path, &len);
  cr_assert_not_null(p, "cannot read %s", path);
  cr_assert_eq(len, bytes, "%s: %zu bytes, expected %zu", path, len, bytes);
  return p;
}

/* Scores n samples of model/set through every kernel set at several batch
 * sizes and compares with logits.f32. */
static void check_reference(const char *model, const char *set, size_t n,
                            int has_dense) {
  char dir[4096], path[4096];
  snprintf(path, sizeof path, "%s/%s/model.safetensors", mr_test_testdata(), model);
  snprintf(dir, sizeof dir, "%s/%s/%s", mr_test_testdata(), model, set);
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open(&m, path, &err), 0, "%s: %s", path, err.msg);
  size_t nd = m.num_dense, nt = m.num_tables;
  cr_assert_eq(nd > 0, has_dense);
  float *dense = has_dense ? read_exact(dir, "dense.f32", n * nd * sizeof(float)) : NULL;
  int64_t *ids = read_exact(dir, "sparse.i64", n * nt * sizeof(int64_t));
  float *want = read_exact(dir, "logits.f32", n * sizeof(float));
  float *got = malloc(n * sizeof(float));

  static const char *const simds[] = {"scalar", "avx2", "avx512"};
  for (size_t k = 0; k < 3; k++) {
    mr_engine_opts_t o = {.simd = simds[k], .max_batch = 128};
    mr_engine_t *e = NULL;
    int rc = mr_engine_open(&e, &m, &o, &err);
    if (rc == MR_ENOTSUP) continue;
    cr_assert_eq(rc, 0, "%s: %s", simds[k], err.msg);
    mr_scratch_t *s = NULL;
    cr_assert_eq(mr_scratch_new(e, &s, &err), 0, "%s", err.msg);
    const size_t batches[] = {1, 7, 64, n};
    for (size_t b = 0; b < 4; b++) {
      memset(got, 0, n * sizeof(float));
      for (size_t off = 0; off < n; off += batches[b]) {
        size_t c = n - off < batches[b] ? n - off : batches[b];
        rc = mr_engine_run(e, s, c, has_dense ? dense + off * nd : NULL,
                           ids + off * nt, got + off, &err);
        cr_assert_eq(rc, 0, "%s batch %zu: %s", simds[k], batches[b], err.msg);
      }
      for (size_t i = 0; i < n; i++)
        cr_assert(fabsf(got[i] - want[i]) <= 1e-3f,
                  "%s %s, batch %zu, sample %zu: logit %.7g, PyTorch %.7g", model,
                  simds[k], batches[b], i, got[i], want[i]);
    }
    mr_scratch_free(e, s);
    mr_engine_close(e);
  }
  free(got);
  free(want);
  free(ids);
  free(dense);
  mr_model_close(&m);
}

Test(engine_testdata, dlrm_criteo_small_matches_pytorch) {
  MR_REQUIRE_TESTDATA();
  check_reference("dlrm-criteo-small", "criteo-1k", 1000, 1);
}

Test(engine_testdata, microrec_47_small_matches_pytorch) {
  MR_REQUIRE_TESTDATA();
  check_reference("microrec-47-small", "zipf-512", 512, 0);
}
