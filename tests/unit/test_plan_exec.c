/* Planner plans executed by the cpu backend: with products (and column
 * splits) the logits must be the same bits as without, on random models,
 * on the presets and on the shared test models. The inputs hit the corners
 * of every product: each factor at its first and last row, in all
 * combinations. */
#include <math.h>

#include "fpga/engine.h"
#include "fpga/modelgen.h"
#include "fpga/planner.h"
#include "tests/unit/testutil.h"

static uint64_t rng = 1;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static float rndf(void) {
  return (float)((double)(rnd() >> 11) / 4503599627370496.0 - 1.0);
}

/* ---- inputs ---- */

/* n samples: the first 8 put each table at its first or last row, chosen by
 * bit (position of the table among its product's factors) of the sample
 * number, so every product sees all 2^3 corner combinations; the rest are
 * random. extra_ids (may be NULL) replaces the random ones. */
static int64_t *corner_ids(const mr_model_t *m, const mr_plan_t *p, size_t n,
                           const int64_t *extra_ids) {
  size_t nt = m->num_tables;
  int64_t *ids = malloc((n * nt + 1) * sizeof *ids);
  size_t *pos = calloc(nt + 1, sizeof *pos);
  cr_assert(ids && pos);
  for (size_t i = 0; i < p->num_tables; i++)
    for (size_t f = 0; f < p->tables[i].num_factors; f++)
      pos[p->tables[i].factors[f]] = f;
  for (size_t s = 0; s < n; s++)
    for (size_t t = 0; t < nt; t++) {
      int64_t last = (int64_t)m->tables[t].rows - 1;
      int64_t id = s < 8       ? (((s >> pos[t]) & 1) ? last : 0)
                   : extra_ids ? extra_ids[(s - 8) * nt + t]
                               : (int64_t)(rnd() % m->tables[t].rows);
      ids[s * nt + t] = id;
    }
  free(pos);
  return ids;
}

static void score(const mr_model_t *m, const mr_plan_t *plan, size_t n,
                  const float *dense, const int64_t *ids, float *out) {
  mr_engine_opts_t o = {.backend = "cpu", .max_batch = 64, .plan = plan};
  mr_engine_t *e = NULL;
  mr_scratch_t *s = NULL;
  mr_err_t err = {0};
  cr_assert_eq(mr_engine_open(&e, m, &o, &err), 0, "engine: %s", err.msg);
  cr_assert_eq(mr_scratch_new(e, &s, &err), 0, "%s", err.msg);
  cr_assert_eq(mr_engine_run(e, s, n, dense, ids, out, &err), 0, "run: %s",
               err.msg);
  mr_scratch_free(e, s);
  mr_engine_close(e);
}

static size_t products(const mr_plan_t *p) {
  size_t k = 0;
  for (size_t i = 0; i < p->num_tables; i++)
    k += p->tables[i].num_factors > 1 && p->tables[i].col_begin == 0;
  return k;
}

static size_t splits(const mr_plan_t *p) {
  size_t k = 0;
  for (size_t i = 0; i < p->num_tables; i++) k += p->tables[i].col_begin > 0;
  return k;
}

/* Scores n samples under the identity plan and under p: same bits. */
static void check_same(const mr_model_t *m, const mr_plan_t *p, size_t n,
                       const float *dense_in, const int64_t *extra_ids) {
  mr_err_t err = {0};
  cr_assert_eq(mr_plan_check(p, m, &err), 0, "planner's plan: %s", err.msg);
  mr_plan_t id;
  cr_assert_eq(mr_plan_identity(&id, m, &err), 0, "%s", err.msg);
  int64_t *ids = corner_ids(m, p, n, extra_ids);
  float *dense = malloc((n * m->num_dense + 1) * sizeof *dense);
  for (size_t i = 0; i < n * m->num_dense; i++)
    dense[i] = dense_in && i >= 8 * m->num_dense
                   ? dense_in[i - 8 * m->num_dense]
                   : 2.0f * rndf();
  float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
  score(m, &id, n, dense, ids, a);
  score(m, p, n, dense, ids, b);
  for (size_t s = 0; s < n; s++)
    cr_assert_eq(memcmp(&a[s], &b[s], sizeof *a), 0,
                 "sample %zu: %.9g without products, %.9g with (%zu products)",
                 s, a[s], b[s], products(p));
  free(a);
  free(b);
  free(dense);
  free(ids);
  mr_plan_free(&id);
}

static mr_plan_t plan_for(const mr_model_t *m, const mr_target_t *t,
                          mr_plan_objective_t obj, double budget) {
  mr_plan_input_t in;
  mr_err_t err = {0};
  cr_assert_eq(mr_plan_input_from_model(&in, m, &err), 0, "%s", err.msg);
  mr_plan_opts_t o;
  mr_plan_opts_default(&o);
  o.objective = obj;
  o.budget = budget;
  o.max_nodes = 3000;
  mr_plan_t p;
  cr_assert_eq(mr_plan_build(&p, &in, t, &o, &err), 0, "%s", err.msg);
  mr_plan_input_free(&in);
  return p;
}

/* ---- random models in memory ---- */

#define XM_MAX 24

typedef struct xmodel {
  mr_model_t m;
  mr_table_t tables[XM_MAX];
  mr_layer_t bot[2], top[2];
  float *bufs[2 * XM_MAX + 8];
  size_t nbufs;
} xmodel_t;

static float *xm_alloc(xmodel_t *x, size_t n, float scale) {
  float *p = malloc((n ? n : 1) * sizeof *p);
  for (size_t i = 0; i < n; i++) p[i] = rndf() * scale;
  x->bufs[x->nbufs++] = p;
  return p;
}

static void xm_layer(xmodel_t *x, mr_layer_t *l, size_t in, size_t out) {
  l->in = in;
  l->out = out;
  l->weight = xm_alloc(x, in * out, 1.7f / sqrtf((float)in));
  l->bias = xm_alloc(x, out, 0.3f);
}

/* cat: random widths, no bottom MLP; dot: width 4 and a 3-4 bottom MLP. */
static void xm_build(xmodel_t *x, size_t nt, mr_interaction_t kind) {
  memset(x, 0, sizeof *x);
  mr_model_t *m = &x->m;
  m->interaction = kind;
  m->num_tables = nt;
  m->tables = x->tables;
  size_t cat = 0;
  for (size_t t = 0; t < nt; t++) {
    x->tables[t].rows = 1 + rnd() % 30;
    x->tables[t].dim = kind == MR_INTERACT_DOT ? 4 : 1 + rnd() % 7;
    x->tables[t].data = xm_alloc(x, x->tables[t].rows * x->tables[t].dim, 1.0f);
    cat += x->tables[t].dim;
  }
  size_t top_in = cat;
  if (kind == MR_INTERACT_DOT) {
    m->num_dense = 3;
    m->num_bot = 1;
    m->bot = x->bot;
    xm_layer(x, &x->bot[0], 3, 4);
    size_t n = nt + 1;
    top_in = 4 + n * (n - 1) / 2;
  }
  m->num_top = 2;
  m->top = x->top;
  xm_layer(x, &x->top[0], top_in, 8);
  xm_layer(x, &x->top[1], 8, 1);
}

static void xm_free(xmodel_t *x) {
  for (size_t i = 0; i < x->nbufs; i++) free(x->bufs[i]);
}

/* Banks small enough that the random models' bigger tables split. */
static const mr_target_bank_t small_banks[] = {
    {"ON", MR_BANK_ONCHIP, 1, 256, 0, 0, 0, 0, 0},
    {"HBM", MR_BANK_HBM, 6, 1024, 0, 0, 0, 0, 0},
    {"DDR", MR_BANK_DDR, 1, 64 << 10, 0, 0, 0, 0, 0},
};
static const mr_target_t small = {"small", "test card", 3, small_banks};

Test(plan_exec, random_models_score_the_same_with_products) {
  size_t total_products = 0, total_splits = 0;
  for (uint64_t seed = 1; seed <= 8; seed++) {
    rng = seed * 2654435761u;
    xmodel_t x;
    xm_build(&x, 2 + rnd() % 10, seed % 2 ? MR_INTERACT_CAT : MR_INTERACT_DOT);
    const mr_target_t *targets[] = {mr_target_find("u280"), &small};
    for (size_t t = 0; t < 2; t++) {
      mr_plan_t p = plan_for(&x.m, targets[t], MR_PLAN_MIN_TABLES, 20.0);
      total_products += products(&p);
      total_splits += splits(&p);
      check_same(&x.m, &p, 200, NULL, NULL);
      mr_plan_free(&p);
    }
    xm_free(&x);
  }
  /* The test means something only if the plans had both. */
  cr_assert_gt(total_products, 0);
  cr_assert_gt(total_splits, 0);
}

/* ---- presets, small ---- */

Test(plan_exec, presets_score_the_same_with_products) {
  char dir[256], path[512];
  mr_test_tmpdir(dir, sizeof dir);
  for (size_t i = 0; mr_gen_preset_names[i]; i++) {
    mr_gen_spec_t spec;
    mr_err_t err = {0};
    cr_assert_eq(mr_gen_preset(&spec, mr_gen_preset_names[i], 40, &err), 0);
    spec.seed = 7;
    snprintf(path, sizeof path, "%s/%s.safetensors", dir,
             mr_gen_preset_names[i]);
    cr_assert_eq(mr_gen_write(&spec, path, NULL, NULL, &err), 0, "%s", err.msg);
    mr_model_t m;
    cr_assert_eq(mr_model_open(&m, path, &err), 0, "%s", err.msg);
    mr_plan_t p = plan_for(&m, mr_target_find("u280"), MR_PLAN_MIN_TABLES, 2.0);
    cr_assert_gt(products(&p), 0, "%s: no products", mr_gen_preset_names[i]);
    check_same(&m, &p, 64, NULL, NULL);
    mr_plan_free(&p);
    p = plan_for(&m, mr_target_find("cpu"), MR_PLAN_MIN_DRAM, 0.05);
    check_same(&m, &p, 64, NULL, NULL);
    mr_plan_free(&p);
    mr_model_close(&m);
    unlink(path);
  }
  rmdir(dir);
}

/* ---- the shared test models, with their own inputs ---- */

static void testdata_model(const char *model, const char *set, size_t n) {
  MR_REQUIRE_TESTDATA();
  char path[4096];
  snprintf(path, sizeof path, "%s/%s/model.safetensors", mr_test_testdata(),
           model);
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open(&m, path, &err), 0, "%s", err.msg);
  size_t len = 0;
  snprintf(path, sizeof path, "%s/%s/%s/sparse.i64", mr_test_testdata(), model,
           set);
  int64_t *ids = mr_test_read_file(path, &len);
  cr_assert_not_null(ids, "%s", path);
  cr_assert_eq(len, n * m.num_tables * sizeof *ids);
  float *dense = NULL;
  if (m.num_dense) {
    snprintf(path, sizeof path, "%s/%s/%s/dense.f32", mr_test_testdata(), model,
             set);
    dense = mr_test_read_file(path, &len);
    cr_assert_not_null(dense, "%s", path);
    cr_assert_eq(len, n * m.num_dense * sizeof *dense);
  }
  const double budgets[] = {0.05, 1.0};
  for (size_t b = 0; b < 2; b++) {
    mr_plan_t p =
        plan_for(&m, mr_target_find("u280"), MR_PLAN_MIN_TABLES, budgets[b]);
    if (budgets[b] >= 1.0) cr_assert_gt(products(&p), 0);
    check_same(&m, &p, 8 + n, dense, ids);
    mr_plan_free(&p);
  }
  free(ids);
  free(dense);
  mr_model_close(&m);
}

Test(plan_exec, dlrm_criteo_small_scores_the_same_with_products) {
  testdata_model("dlrm-criteo-small", "criteo-1k", 1000);
}

Test(plan_exec, microrec_47_small_scores_the_same_with_products) {
  testdata_model("microrec-47-small", "zipf-512", 512);
}
