/* The fpga-sim backend (fpga/sim/): the HLS kernel's source run on the host.
 * Against PyTorch's outputs (testdata, fp32 bound 1e-3), against the cpu
 * backend on generated models, and against itself across plans: the kernel
 * computes the same embedding vector whatever the plan, and its MLP in a
 * fixed order, so every plan must give bit-identical logits. */
#include <math.h>
#include <stdint.h>

#include "fpga/engine.h"
#include "fpga/kernel_image.h"
#include "fpga/model.h"
#include "fpga/modelgen.h"
#include "tests/unit/kernel_testplan.h"
#include <libgen.h>
#include <criterion/criterion.h>
#ifndef cr_fatal
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif
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

/* Opens an engine, scores n samples in batches of `batch`, closes it. */
static void score(const mr_model_t *m, const mr_engine_opts_t *o, size_t n,
                  size_t batch, const float *dense, const int64_t *ids,
                  float *logits) {
  mr_engine_t *e = NULL;
  mr_scratch_t *s = NULL;
  mr_err_t err = {0};
  cr_assert_eq(mr_engine_open(&e, m, o, &err), 0, "%s open: %s", o->backend,
               err.msg);
  cr_assert_eq(mr_scratch_new(e, &s, &err), 0, "%s", err.msg);
  size_t nd = m->num_dense, nt = m->num_tables;
  for (size_t off = 0; off < n; off += batch) {
    size_t c = n - off < batch ? n - off : batch;
    int rc = mr_engine_run(e, s, c, dense ? dense + off * nd : NULL,
                           ids + off * nt, logits + off, &err);
    cr_assert_eq(rc, 0, "%s run: %s", o->backend, err.msg);
  }
  mr_scratch_free(e, s);
  mr_engine_close(e);
}

static void check_reference(const char *model, const char *set, size_t n) {
  char dir[4096], path[4096];
  snprintf(path, sizeof path, "%s/%s/model.safetensors", mr_test_testdata(),
           model);
  snprintf(dir, sizeof dir, "%s/%s/%s", mr_test_testdata(), model, set);
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open(&m, path, &err), 0, "%s: %s", path, err.msg);
  size_t nd = m.num_dense, nt = m.num_tables;
  float *dense = nd ? read_exact(dir, "dense.f32", n * nd * 4) : NULL;
  int64_t *ids = read_exact(dir, "sparse.i64", n * nt * 8);
  float *want = read_exact(dir, "logits.f32", n * 4);
  float *got = calloc(n, sizeof *got);
  float *spread = calloc(n, sizeof *spread);

  /* The default plan, and a plan with products, splits and 4 banks. */
  mr_engine_opts_t o = {.backend = "fpga-sim", .max_batch = 64};
  score(&m, &o, n, 100, dense, ids, got);
  static const char *const banks[] = {"HBM[0]", "HBM[1]", "DDR[0]", "URAM"};
  mr_plan_t p;
  mr_test_spread_plan(&p, &m, banks, 4, 4096);
  cr_assert_eq(mr_plan_check(&p, &m, &err), 0, "%s", err.msg);
  o.plan = &p;
  score(&m, &o, n, 37, dense, ids, spread);
  for (size_t i = 0; i < n; i++) {
    cr_assert(fabsf(got[i] - want[i]) <= 1e-3f,
              "%s sample %zu: fpga-sim logit %.7g, PyTorch %.7g", model, i,
              got[i], want[i]);
    cr_assert(got[i] == spread[i],
              "%s sample %zu: %.9g with the default plan, %.9g with the "
              "spread plan (expected identical)",
              model, i, got[i], spread[i]);
  }
  mr_plan_free(&p);
  free(spread);
  free(got);
  free(want);
  free(ids);
  free(dense);
  mr_model_close(&m);
}

Test(fpga_sim, dlrm_criteo_small_matches_pytorch) {
  MR_REQUIRE_TESTDATA();
  check_reference("dlrm-criteo-small", "criteo-1k", 1000);
}

Test(fpga_sim, microrec_47_small_matches_pytorch) {
  MR_REQUIRE_TESTDATA();
  check_reference("microrec-47-small", "zipf-512", 512);
}

/* A generated model of the preset's shape, rows capped, opened. */
static void gen_model(const char *preset, uint64_t max_rows, char *path,
                      size_t len, mr_model_t *m) {
  char dir[256];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, len, "%s/model.safetensors", dir);
  mr_gen_spec_t spec;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_preset(&spec, preset, max_rows, &err), 0, "%s",
               err.msg);
  spec.seed = 7;
  cr_assert_eq(mr_gen_write(&spec, path, NULL, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(mr_model_open(m, path, &err), 0, "%s", err.msg);
}

static void random_input(const mr_model_t *m, size_t n, uint64_t seed,
                         float **dense, int64_t **ids) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  *dense = m->num_dense ? malloc(n * m->num_dense * sizeof **dense) : NULL;
  *ids = malloc(n * m->num_tables * sizeof **ids);
  for (size_t i = 0; i < n * m->num_dense; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    (*dense)[i] = (float)((x >> 40) % 1000) / 250.0f;
  }
  for (size_t s = 0; s < n; s++)
    for (size_t t = 0; t < m->num_tables; t++) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      (*ids)[s * m->num_tables + t] = (int64_t)((x >> 33) % m->tables[t].rows);
    }
}

/* Removes the generated model's folder. */
static void drop_model(const char *path) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s", path);
  mr_ktest_rmtree(dirname(dir));
}

static void check_against_cpu(const char *preset, uint64_t max_rows) {
  char path[512];
  mr_model_t m;
  gen_model(preset, max_rows, path, sizeof path, &m);
  size_t n = 200;
  float *dense;
  int64_t *ids;
  random_input(&m, n, 3, &dense, &ids);
  float *cpu = calloc(n, sizeof *cpu), *sim = calloc(n, sizeof *sim);
  mr_engine_opts_t oc = {.backend = "cpu"}, os = {.backend = "fpga-sim"};
  score(&m, &oc, n, n, dense, ids, cpu);
  score(&m, &os, n, 50, dense, ids, sim);
  for (size_t i = 0; i < n; i++) {
    float tol = 1e-4f * (1.0f + fabsf(cpu[i]));
    cr_assert(fabsf(cpu[i] - sim[i]) <= tol,
              "%s sample %zu: cpu %.7g, fpga-sim %.7g", preset, i, cpu[i],
              sim[i]);
  }
  free(cpu);
  free(sim);
  free(dense);
  free(ids);
  mr_model_close(&m);
  drop_model(path);
}

Test(fpga_sim, criteo_shape_matches_cpu_backend) {
  check_against_cpu("criteo", 500);
}

Test(fpga_sim, alibaba_47_shape_matches_cpu_backend) {
  check_against_cpu("alibaba-47", 300);
}

Test(fpga_sim, reports_its_info) {
  char path[512];
  mr_model_t m;
  gen_model("criteo", 100, path, sizeof path, &m);
  mr_engine_opts_t o = {.backend = "fpga-sim", .max_batch = 32};
  mr_engine_t *e = NULL;
  mr_err_t err = {0};
  cr_assert_eq(mr_engine_open(&e, &m, &o, &err), 0, "%s", err.msg);
  const mr_engine_info_t *in = mr_engine_info(e);
  cr_assert_str_eq(in->backend, "fpga-sim");
  cr_assert_eq(in->num_tables, 26);
  cr_assert_eq(in->num_dense, 13);
  cr_assert_eq(in->max_batch, 32);
  cr_assert_eq(in->table_rows[0], m.tables[0].rows);
  cr_assert(in->resident_bytes >= in->param_bytes,
            "resident %llu < params %llu",
            (unsigned long long)in->resident_bytes,
            (unsigned long long)in->param_bytes);
  mr_engine_close(e);
  mr_model_close(&m);
  drop_model(path);
}

Test(fpga_sim, rejects_a_plan_for_another_model) {
  char path[512];
  mr_model_t m;
  gen_model("criteo", 100, path, sizeof path, &m);
  mr_plan_t p;
  mr_err_t err = {0};
  cr_assert_eq(mr_plan_identity(&p, &m, &err), 0);
  p.tables[3].rows += 1; /* no longer the product of its factors' rows */
  mr_engine_opts_t o = {.backend = "fpga-sim", .plan = &p};
  mr_engine_t *e = NULL;
  int rc = mr_engine_open(&e, &m, &o, &err);
  cr_assert_eq(rc, MR_EINVAL, "rc %d: %s", rc, err.msg);
  cr_assert_null(e);
  cr_assert(strstr(err.msg, "fpga-sim") && strstr(err.msg, "plan"), "%s",
            err.msg);
  mr_plan_free(&p);
  mr_model_close(&m);
  drop_model(path);
}

/* The images hold what the model holds: a product row is its factors' rows
 * side by side, a split table its columns. */
Test(fpga_sim, bank_images_hold_the_model_rows) {
  char path[512];
  mr_model_t m;
  gen_model("criteo", 50, path, sizeof path, &m);
  static const char *const banks[] = {"HBM[2]", "DDR[1]", "URAM"};
  mr_plan_t p;
  mr_err_t err = {0};
  mr_test_spread_plan(&p, &m, banks, 3, 10000);
  cr_assert_eq(mr_plan_check(&p, &m, &err), 0, "%s", err.msg);
  mr_kimage_t img;
  cr_assert_eq(mr_kimage_build(&img, &m, &p, &err), 0, "%s", err.msg);
  const mr_kgeom_t *g = img.geom;
  cr_assert_gt(g->num_banks, 3);
  cr_assert_eq(g->bank_mem[0], MR_KMEM_HBM);
  cr_assert_eq(g->bank_index[0], 2);
  cr_assert_eq(g->bank_mem[1], MR_KMEM_DDR);
  /* Each on-chip table is a kernel bank of its own. */
  for (uint32_t k = 2; k < g->num_banks; k++) {
    cr_assert_eq(g->bank_onchip[k], 1);
    cr_assert_eq(g->bank_count[k], 1);
  }
  int products = 0;
  for (uint32_t l = 0; l < g->num_lookups; l++) {
    const mr_klookup_t *L = &g->lookups[l];
    products += L->num_factors > 1;
    uint64_t r = L->rows - 1; /* the last row: every factor at its last */
    const float *row = img.banks[L->bank] + L->base + r * L->cols;
    uint32_t c = 0;
    for (uint32_t s = 0; s < L->num_segs; s++)
      for (uint32_t j = 0; j < L->seg_len[s]; j++, c++) {
        /* Which logical table and column does E position seg_dst+j hold? */
        uint32_t pos = L->seg_dst[s] + j, off = 0, t = 0;
        while (pos >= off + m.tables[t].dim) off += m.tables[t++].dim;
        float want = m.tables[t].data[(m.tables[t].rows - 1) *
                                          m.tables[t].dim +
                                      (pos - off)];
        cr_assert(row[c] == want, "lookup %u column %u", l, c);
      }
    cr_assert_eq(c, L->cols);
  }
  cr_assert(products > 0, "the test plan should contain products");
  mr_kimage_free(&img);
  mr_plan_free(&p);
  mr_model_close(&m);
  drop_model(path);
}
