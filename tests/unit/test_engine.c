/* The engine interface and the cpu backend against a plain-C reference
 * written here: random models built in memory, every kernel set the CPU
 * supports, batches that hit the padding and chunking paths, product plans,
 * input errors and concurrent runs. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "fpga/engine.h"
#include "fpga/plan.h"
#include "tests/unit/testutil.h"

/* ---- random models in memory ---- */

#define TM_MAX 32

typedef struct tmodel {
  mr_model_t m;
  mr_table_t tables[TM_MAX];
  mr_layer_t bot[TM_MAX], top[TM_MAX];
  float *bufs[3 * TM_MAX];
  size_t num_bufs;
} tmodel_t;

typedef struct tspec {
  mr_interaction_t kind;
  size_t nt;
  size_t dims[TM_MAX];  /* dims[0] for all tables when dims[1] == 0 */
  uint64_t rows[TM_MAX];
  size_t nbw;           /* bottom widths incl. input, 0 = no bottom */
  size_t bw[TM_MAX];
  size_t ntw;           /* top widths after the input, ending in 1 */
  size_t tw[TM_MAX];
} tspec_t;

static uint64_t rng_state;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
/* Uniform in [-1, 1). */
static float rndf(void) { return (float)((double)(rnd() >> 11) / 4503599627370496.0 - 1.0); }

static float *tm_alloc(tmodel_t *tm, size_t n, float scale) {
  float *p = malloc((n ? n : 1) * sizeof *p);
  cr_assert_not_null(p);
  for (size_t i = 0; i < n; i++) p[i] = rndf() * scale;
  tm->bufs[tm->num_bufs++] = p;
  return p;
}

static void tm_layers(tmodel_t *tm, mr_layer_t *l, size_t in, const size_t *w,
                      size_t n) {
  for (size_t i = 0; i < n; i++) {
    l[i].in = i ? w[i - 1] : in;
    l[i].out = w[i];
    /* Scaled so activations stay O(1) and logits spread. */
    float s = 1.7f / sqrtf((float)l[i].in);
    l[i].weight = tm_alloc(tm, l[i].in * l[i].out, s);
    l[i].bias = tm_alloc(tm, l[i].out, 0.3f);
  }
}

static void tm_build(tmodel_t *tm, const tspec_t *sp, uint64_t seed) {
  memset(tm, 0, sizeof *tm);
  rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
  mr_model_t *m = &tm->m;
  m->interaction = sp->kind;
  m->num_tables = sp->nt;
  m->tables = tm->tables;
  for (size_t t = 0; t < sp->nt; t++) {
    size_t d = sp->dims[1] ? sp->dims[t] : sp->dims[0];
    tm->tables[t].rows = sp->rows[t];
    tm->tables[t].dim = d;
    tm->tables[t].data = tm_alloc(tm, sp->rows[t] * d, 1.0f);
  }
  size_t xw = 0;
  if (sp->nbw) {
    m->num_dense = sp->bw[0];
    m->num_bot = sp->nbw - 1;
    m->bot = tm->bot;
    tm_layers(tm, tm->bot, sp->bw[0], sp->bw + 1, sp->nbw - 1);
    xw = sp->bw[sp->nbw - 1];
  }
  size_t top_in = xw;
  if (sp->kind == MR_INTERACT_DOT) {
    size_t n = sp->nt + (xw ? 1 : 0);
    top_in += n * (n - 1) / 2;
  } else {
    for (size_t t = 0; t < sp->nt; t++) top_in += tm->tables[t].dim;
  }
  m->num_top = sp->ntw;
  m->top = tm->top;
  tm_layers(tm, tm->top, top_in, sp->tw, sp->ntw);
}

static void tm_free(tmodel_t *tm) {
  for (size_t i = 0; i < tm->num_bufs; i++) free(tm->bufs[i]);
}

/* ---- the reference: the DLRM forward pass in plain loops, in double ---- */

static void ref_layer(const mr_layer_t *l, const double *x, double *y, int relu) {
  for (size_t o = 0; o < l->out; o++) {
    double s = l->bias[o];
    for (size_t k = 0; k < l->in; k++) s += (double)l->weight[o * l->in + k] * x[k];
    y[o] = relu && s < 0 ? 0 : s;
  }
}

static float ref_logit(const mr_model_t *m, const float *dense,
                       const int64_t *ids) {
  double a[4096], b[4096], z[8192];
  size_t xw = 0;
  if (m->num_bot) {
    for (size_t k = 0; k < m->num_dense; k++) a[k] = dense[k];
    for (size_t i = 0; i < m->num_bot; i++) {
      ref_layer(&m->bot[i], a, b, 1);
      memcpy(a, b, m->bot[i].out * sizeof *a);
    }
    xw = m->bot[m->num_bot - 1].out;
  }
  size_t n = 0;
  for (size_t k = 0; k < xw; k++) z[n++] = a[k];
  if (m->interaction == MR_INTERACT_CAT) {
    for (size_t t = 0; t < m->num_tables; t++) {
      const mr_table_t *tb = &m->tables[t];
      for (size_t c = 0; c < tb->dim; c++) z[n++] = tb->data[ids[t] * tb->dim + c];
    }
  } else {
    size_t d = m->tables[0].dim, nv = m->num_tables + (xw ? 1 : 0);
    static _Thread_local double v[TM_MAX + 1][64];
    size_t j = 0;
    if (xw)
      for (size_t c = 0; c < d; c++) v[j][c] = a[c];
    if (xw) j++;
    for (size_t t = 0; t < m->num_tables; t++, j++)
      for (size_t c = 0; c < d; c++) v[j][c] = m->tables[t].data[ids[t] * d + c];
    for (size_t p = 1; p < nv; p++)
      for (size_t q = 0; q < p; q++) {
        double s = 0;
        for (size_t c = 0; c < d; c++) s += v[p][c] * v[q][c];
        z[n++] = s;
      }
  }
  for (size_t i = 0; i < m->num_top; i++) {
    ref_layer(&m->top[i], i ? a : z, b, i + 1 < m->num_top);
    memcpy(a, b, m->top[i].out * sizeof *a);
  }
  return (float)a[0];
}

/* ---- inputs ---- */

typedef struct tinput {
  size_t n;
  float *dense;
  int64_t *ids;
} tinput_t;

/* Random ids, with the first and last row of every table in the first two
 * samples; dense values in [-2, 2). */
static void tin_make(tinput_t *in, const mr_model_t *m, size_t n) {
  in->n = n;
  in->dense = malloc((n * m->num_dense + 1) * sizeof(float));
  in->ids = malloc((n * m->num_tables + 1) * sizeof(int64_t));
  cr_assert(in->dense && in->ids);
  for (size_t i = 0; i < n * m->num_dense; i++) in->dense[i] = 2.0f * rndf();
  for (size_t s = 0; s < n; s++)
    for (size_t t = 0; t < m->num_tables; t++) {
      uint64_t rows = m->tables[t].rows;
      int64_t id = (int64_t)(rnd() % rows);
      if (s == 0) id = 0;
      if (s == 1) id = (int64_t)rows - 1;
      in->ids[s * m->num_tables + t] = id;
    }
}

static void tin_free(tinput_t *in) {
  free(in->dense);
  free(in->ids);
}

static const char *const simds[] = {"scalar", "avx2", "avx512"};

/* Opens the engine, or returns NULL when the CPU lacks the kernel set. */
static mr_engine_t *open_or_skip(const mr_model_t *m, const char *simd,
                                 size_t max_batch, const mr_plan_t *plan) {
  mr_engine_opts_t o = {.simd = simd, .max_batch = max_batch, .plan = plan};
  mr_engine_t *e = NULL;
  mr_err_t err = {0};
  int rc = mr_engine_open(&e, m, &o, &err);
  if (rc == MR_ENOTSUP && simd) return NULL;
  cr_assert_eq(rc, 0, "engine open (%s): %s", simd ? simd : "best", err.msg);
  return e;
}

static void score(mr_engine_t *e, const tinput_t *in, size_t n, float *out) {
  mr_scratch_t *s = NULL;
  mr_err_t err = {0};
  cr_assert_eq(mr_scratch_new(e, &s, &err), 0, "%s", err.msg);
  int rc = mr_engine_run(e, s, n, in->dense, in->ids, out, &err);
  cr_assert_eq(rc, 0, "run: %s", err.msg);
  mr_scratch_free(e, s);
}

static void check_model_spec(const tspec_t *sp, uint64_t seed) {
  tmodel_t tm;
  tm_build(&tm, sp, seed);
  tinput_t in;
  tin_make(&in, &tm.m, 300);
  float ref[300];
  for (size_t s = 0; s < in.n; s++)
    ref[s] = ref_logit(&tm.m, in.dense + s * tm.m.num_dense,
                       in.ids + s * tm.m.num_tables);
  static const size_t batches[] = {1, 7, 64, 300};
  for (size_t k = 0; k < sizeof simds / sizeof *simds; k++) {
    mr_engine_t *e = open_or_skip(&tm.m, simds[k], 128, NULL);
    if (!e) continue;
    cr_assert_str_eq(mr_engine_info(e)->simd, simds[k]);
    for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
      float out[300];
      for (size_t off = 0; off < in.n; off += batches[b]) {
        size_t n = in.n - off < batches[b] ? in.n - off : batches[b];
        tinput_t part = {n, in.dense + off * tm.m.num_dense,
                         in.ids + off * tm.m.num_tables};
        score(e, &part, n, out + off);
      }
      for (size_t s = 0; s < in.n; s++) {
        double tol = 1e-4 * fmax(1.0, fabs(ref[s]));
        cr_assert(fabs(out[s] - ref[s]) <= tol,
                  "seed %llu, %s, batch %zu, sample %zu: logit %.7g, reference "
                  "%.7g",
                  (unsigned long long)seed, simds[k], batches[b], s, out[s],
                  ref[s]);
      }
    }
    mr_engine_close(e);
  }
  tin_free(&in);
  tm_free(&tm);
}

/* ---- agreement with the reference ---- */

Test(engine, dot_with_bottom_matches_reference) {
  tspec_t a = {.kind = MR_INTERACT_DOT, .nt = 3, .dims = {16},
               .rows = {5, 17, 100}, .nbw = 3, .bw = {13, 33, 16},
               .ntw = 2, .tw = {33, 1}};
  check_model_spec(&a, 1);
  tspec_t b = {.kind = MR_INTERACT_DOT, .nt = 7, .dims = {3},
               .rows = {1, 2, 3, 4, 5, 6, 7}, .nbw = 2, .bw = {1, 3},
               .ntw = 2, .tw = {17, 1}};
  check_model_spec(&b, 2);
  tspec_t c = {.kind = MR_INTERACT_DOT, .nt = 26, .dims = {16},
               .rows = {3, 40, 4000, 17, 33, 1, 99, 1000, 5, 7, 9, 11, 13,
                        15, 17, 19, 21, 23, 25, 27, 29, 31, 33, 35, 37, 39},
               .nbw = 4, .bw = {13, 64, 33, 16}, .ntw = 3, .tw = {48, 17, 1}};
  check_model_spec(&c, 3);
  tspec_t d = {.kind = MR_INTERACT_DOT, .nt = 2, .dims = {8}, .rows = {9, 9},
               .nbw = 5, .bw = {2, 16, 16, 16, 8}, .ntw = 4,
               .tw = {16, 16, 16, 1}};
  check_model_spec(&d, 4);
}

Test(engine, dot_without_bottom_matches_reference) {
  tspec_t a = {.kind = MR_INTERACT_DOT, .nt = 5, .dims = {17},
               .rows = {10, 20, 30, 40, 50}, .ntw = 2, .tw = {33, 1}};
  check_model_spec(&a, 5);
  tspec_t b = {.kind = MR_INTERACT_DOT, .nt = 18, .dims = {33},
               .rows = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                        17, 18, 19},
               .ntw = 1, .tw = {1}};
  check_model_spec(&b, 6);
}

Test(engine, cat_with_bottom_matches_reference) {
  tspec_t a = {.kind = MR_INTERACT_CAT, .nt = 4, .dims = {1, 3, 17, 33},
               .rows = {7, 8, 9, 10}, .nbw = 3, .bw = {5, 7, 3},
               .ntw = 3, .tw = {64, 17, 1}};
  check_model_spec(&a, 7);
}

Test(engine, cat_without_bottom_matches_reference) {
  tspec_t a = {.kind = MR_INTERACT_CAT, .nt = 6, .dims = {4, 8, 16, 32, 3, 1},
               .rows = {100, 200, 3, 1, 50, 60}, .ntw = 2, .tw = {100, 1}};
  check_model_spec(&a, 8);
  tspec_t b = {.kind = MR_INTERACT_CAT, .nt = 2, .dims = {5, 6},
               .rows = {3, 4}, .ntw = 1, .tw = {1}};
  check_model_spec(&b, 9);
}

/* ---- product plans ---- */

static mr_plan_table_t ptab(const mr_model_t *m, size_t nf, size_t f0,
                            size_t f1, size_t f2, size_t cb, size_t ce) {
  mr_plan_table_t t = {.num_factors = nf, .factors = {f0, f1, f2}, .rows = 1};
  for (size_t f = 0; f < nf; f++) {
    t.rows *= m->tables[t.factors[f]].rows;
    t.dim += m->tables[t.factors[f]].dim;
  }
  t.col_begin = cb;
  t.col_end = ce ? ce : t.dim;
  return t;
}

/* Scores every combination of first/last rows plus random ids under the
 * identity plan and under plan p; the logits must be the same bits. */
static void check_plan_identical(const mr_model_t *m, mr_plan_table_t *tabs,
                                 size_t n) {
  mr_plan_t p = {.num_logical = m->num_tables, .num_tables = n, .tables = tabs};
  mr_err_t err = {0};
  cr_assert_eq(mr_plan_check(&p, m, &err), 0, "%s", err.msg);
  tinput_t in;
  tin_make(&in, m, 200);
  /* Sample s >= 2 with s < 2 + 2^T: each table at its first or last row. */
  for (size_t s = 2; s < in.n && s - 2 < ((size_t)1 << m->num_tables); s++)
    for (size_t t = 0; t < m->num_tables; t++)
      in.ids[s * m->num_tables + t] =
          ((s - 2) >> t) & 1 ? (int64_t)m->tables[t].rows - 1 : 0;
  for (size_t k = 0; k < sizeof simds / sizeof *simds; k++) {
    mr_engine_t *a = open_or_skip(m, simds[k], 64, NULL);
    if (!a) continue;
    mr_engine_t *b = open_or_skip(m, simds[k], 64, &p);
    float la[200], lb[200];
    score(a, &in, in.n, la);
    score(b, &in, in.n, lb);
    cr_assert_eq(memcmp(la, lb, sizeof la), 0, "%s: product plan differs",
                 simds[k]);
    uint64_t ra = mr_engine_info(a)->resident_bytes;
    uint64_t rb = mr_engine_info(b)->resident_bytes;
    uint64_t want = 0;
    for (size_t i = 0; i < n; i++)
      want += tabs[i].rows * (tabs[i].col_end - tabs[i].col_begin) * sizeof(float);
    cr_assert_eq(rb, want);
    cr_assert(rb >= ra);
    mr_engine_close(a);
    mr_engine_close(b);
  }
  tin_free(&in);
}

Test(engine, product_plans_are_bit_identical_dot) {
  tspec_t sp = {.kind = MR_INTERACT_DOT, .nt = 6, .dims = {16},
                .rows = {3, 5, 2, 7, 11, 4}, .nbw = 3, .bw = {4, 20, 16},
                .ntw = 2, .tw = {20, 1}};
  tmodel_t tm;
  tm_build(&tm, &sp, 11);
  const mr_model_t *m = &tm.m;
  /* (1 x 3), (0 x 2 x 5), 4 split into three column ranges. */
  mr_plan_table_t tabs[] = {
      ptab(m, 2, 1, 3, 0, 0, 0), ptab(m, 3, 0, 2, 5, 0, 0),
      ptab(m, 1, 4, 0, 0, 0, 5), ptab(m, 1, 4, 0, 0, 5, 11),
      ptab(m, 1, 4, 0, 0, 11, 16)};
  check_plan_identical(m, tabs, 5);
  tm_free(&tm);
}

Test(engine, product_plans_are_bit_identical_cat) {
  tspec_t sp = {.kind = MR_INTERACT_CAT, .nt = 5, .dims = {4, 3, 17, 1, 8},
                .rows = {6, 3, 5, 2, 9}, .ntw = 2, .tw = {16, 1}};
  tmodel_t tm;
  tm_build(&tm, &sp, 12);
  const mr_model_t *m = &tm.m;
  /* A 3-factor product split by columns across two physical tables, the
   * split falling inside factor 2; then a 2-factor product; table order
   * shuffled against the logical order. */
  mr_plan_table_t tabs[] = {
      ptab(m, 2, 4, 1, 0, 0, 0),
      ptab(m, 3, 3, 0, 2, 0, 9),
      ptab(m, 3, 3, 0, 2, 9, 0)};
  check_plan_identical(m, tabs, 3);
  tm_free(&tm);
}

Test(engine, product_plans_are_bit_identical_cat_with_bottom) {
  tspec_t sp = {.kind = MR_INTERACT_CAT, .nt = 3, .dims = {2, 3, 5},
                .rows = {4, 3, 2}, .nbw = 2, .bw = {3, 5}, .ntw = 2,
                .tw = {7, 1}};
  tmodel_t tm;
  tm_build(&tm, &sp, 13);
  const mr_model_t *m = &tm.m;
  mr_plan_table_t tabs[] = {ptab(m, 3, 2, 0, 1, 0, 0)};
  check_plan_identical(m, tabs, 1);
  tm_free(&tm);
}

Test(engine, rejects_a_plan_that_does_not_cover_the_model) {
  tspec_t sp = {.kind = MR_INTERACT_CAT, .nt = 3, .dims = {2, 3, 5},
                .rows = {4, 3, 2}, .ntw = 1, .tw = {1}};
  tmodel_t tm;
  tm_build(&tm, &sp, 14);
  const mr_model_t *m = &tm.m;
  mr_plan_table_t tabs[] = {ptab(m, 2, 0, 1, 0, 0, 0), ptab(m, 2, 1, 2, 0, 0, 0)};
  mr_plan_t p = {.num_logical = 3, .num_tables = 2, .tables = tabs};
  mr_engine_opts_t o = {.plan = &p};
  mr_engine_t *e = NULL;
  mr_err_t err = {0};
  cr_assert_eq(mr_engine_open(&e, m, &o, &err), MR_EINVAL);
  cr_assert_null(e);
  cr_assert(strstr(err.msg, "column 0 of table 1 is held by 2"), "%s", err.msg);
  tm_free(&tm);
}

/* ---- input errors ---- */

static void small_model(tmodel_t *tm) {
  tspec_t sp = {.kind = MR_INTERACT_DOT, .nt = 8, .dims = {4},
                .rows = {10, 20, 30, 40, 50, 60, 70, 4000}, .nbw = 2,
                .bw = {3, 4}, .ntw = 2, .tw = {5, 1}};
  tm_build(tm, &sp, 21);
}

Test(engine, rejects_out_of_range_ids_and_writes_nothing) {
  tmodel_t tm;
  small_model(&tm);
  mr_engine_t *e = open_or_skip(&tm.m, NULL, 0, NULL);
  mr_scratch_t *s = NULL;
  mr_err_t err = {0};
  cr_assert_eq(mr_scratch_new(e, &s, &err), 0);
  tinput_t in;
  tin_make(&in, &tm.m, 5);
  float out[5] = {7, 7, 7, 7, 7};

  in.ids[3 * 8 + 7] = 5000;
  cr_assert_eq(mr_engine_run(e, s, 5, in.dense, in.ids, out, &err), MR_ERANGE);
  cr_assert_str_eq(err.msg, "sample 3, table 7: id 5000 out of range [0, 4000)");
  for (int i = 0; i < 5; i++) cr_assert_eq(out[i], 7.0f);

  in.ids[3 * 8 + 7] = 3999;
  in.ids[4 * 8 + 0] = -1;
  cr_assert_eq(mr_engine_check(e, 5, in.dense, in.ids, &err), MR_ERANGE);
  cr_assert_str_eq(err.msg, "sample 4, table 0: id -1 out of range [0, 10)");
  in.ids[4 * 8 + 0] = 10;
  cr_assert_eq(mr_engine_run(e, s, 5, in.dense, in.ids, out, &err), MR_ERANGE);
  cr_assert_str_eq(err.msg, "sample 4, table 0: id 10 out of range [0, 10)");
  for (int i = 0; i < 5; i++) cr_assert_eq(out[i], 7.0f);

  in.ids[4 * 8 + 0] = 9;
  cr_assert_eq(mr_engine_run(e, s, 5, in.dense, in.ids, out, &err), 0, "%s", err.msg);
  mr_scratch_free(e, s);
  mr_engine_close(e);
  tin_free(&in);
  tm_free(&tm);
}

Test(engine, rejects_nan_and_inf_dense_values) {
  tmodel_t tm;
  small_model(&tm);
  mr_engine_t *e = open_or_skip(&tm.m, NULL, 0, NULL);
  mr_scratch_t *s = NULL;
  mr_err_t err = {0};
  cr_assert_eq(mr_scratch_new(e, &s, &err), 0);
  tinput_t in;
  tin_make(&in, &tm.m, 4);
  float out[4] = {7, 7, 7, 7};
  in.dense[2 * 3 + 1] = NAN;
  cr_assert_eq(mr_engine_run(e, s, 4, in.dense, in.ids, out, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "sample 2, dense feature 1: nan is not a finite"),
            "%s", err.msg);
  in.dense[2 * 3 + 1] = 0.5f;
  in.dense[3 * 3 + 2] = -INFINITY;
  cr_assert_eq(mr_engine_check(e, 4, in.dense, in.ids, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "sample 3, dense feature 2: -inf is not a finite"),
            "%s", err.msg);
  for (int i = 0; i < 4; i++) cr_assert_eq(out[i], 7.0f);
  cr_assert_eq(mr_engine_run(e, s, 4, NULL, in.ids, out, &err), MR_EINVAL);
  mr_scratch_free(e, s);
  mr_engine_close(e);
  tin_free(&in);
  tm_free(&tm);
}

Test(engine, empty_run_is_a_no_op) {
  tmodel_t tm;
  small_model(&tm);
  mr_engine_t *e = open_or_skip(&tm.m, NULL, 0, NULL);
  mr_scratch_t *s = NULL;
  cr_assert_eq(mr_scratch_new(e, &s, NULL), 0);
  cr_assert_eq(mr_engine_run(e, s, 0, NULL, NULL, NULL, NULL), 0);
  mr_scratch_free(e, s);
  mr_engine_close(e);
  tm_free(&tm);
}

/* ---- options, models and info ---- */

Test(engine, rejects_unknown_backend_and_simd) {
  tmodel_t tm;
  small_model(&tm);
  mr_engine_t *e = NULL;
  mr_err_t err = {0};
  mr_engine_opts_t o = {.backend = "gpu"};
  cr_assert_eq(mr_engine_open(&e, &tm.m, &o, &err), MR_ENOTSUP);
  cr_assert(strstr(err.msg, "'gpu'") && strstr(err.msg, "cpu"), "%s", err.msg);
  o = (mr_engine_opts_t){.simd = "sse9"};
  cr_assert_eq(mr_engine_open(&e, &tm.m, &o, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "'sse9'"), "%s", err.msg);
  cr_assert_null(e);
  cr_assert_not_null(mr_backend_find("cpu"));
  cr_assert_null(mr_backend_find("nope"));
  cr_assert_str_eq(mr_backend_names[0], "cpu");
  tm_free(&tm);
}

Test(engine, rejects_inconsistent_models) {
  tmodel_t tm;
  small_model(&tm);
  mr_engine_t *e = NULL;
  mr_err_t err = {0};
  tm.tables[3].dim = 5; /* dot needs equal widths */
  cr_assert_eq(mr_engine_open(&e, &tm.m, NULL, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "emb_l.3"), "%s", err.msg);
  tm.tables[3].dim = 4;
  tm.top[0].in = 41; /* the interaction gives 4 + 9 * 8 / 2 = 40 */
  cr_assert_eq(mr_engine_open(&e, &tm.m, NULL, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "top_l.0"), "%s", err.msg);
  tm.top[0].in = 40;
  tm.top[1].out = 2;
  cr_assert_eq(mr_engine_open(&e, &tm.m, NULL, &err), MR_EINVAL);
  tm.top[1].out = 1;
  cr_assert_eq(mr_engine_open(&e, &tm.m, NULL, &err), 0, "%s", err.msg);
  mr_engine_close(e);
  tm_free(&tm);
}

Test(engine, info_describes_the_model) {
  tmodel_t tm;
  small_model(&tm);
  mr_engine_t *e = open_or_skip(&tm.m, NULL, 0, NULL);
  const mr_engine_info_t *in = mr_engine_info(e);
  cr_assert_str_eq(in->backend, "cpu");
  cr_assert(strcmp(in->simd, "avx512") == 0 || strcmp(in->simd, "avx2") == 0 ||
            strcmp(in->simd, "scalar") == 0);
  cr_assert_eq(in->interaction, MR_INTERACT_DOT);
  cr_assert_eq(in->num_dense, 3);
  cr_assert_eq(in->num_tables, 8);
  cr_assert_eq(in->table_rows[7], 4000);
  cr_assert_eq(in->table_dims[2], 4);
  cr_assert_eq(in->num_bot, 1);
  cr_assert_eq(in->bot_in[0], 3);
  cr_assert_eq(in->bot_out[0], 4);
  cr_assert_eq(in->num_top, 2);
  cr_assert_eq(in->top_in[0], 40);
  cr_assert_eq(in->top_out[1], 1);
  cr_assert_eq(in->max_batch, 256);
  uint64_t rows = 10 + 20 + 30 + 40 + 50 + 60 + 70 + 4000;
  cr_assert_eq(in->resident_bytes, rows * 4 * sizeof(float));
  uint64_t params = rows * 4 + (3 + 1) * 4 + (40 + 1) * 5 + (5 + 1) * 1;
  cr_assert_eq(in->param_bytes, params * sizeof(float));
  mr_engine_close(e);
  tm_free(&tm);
}

Test(engine, model_may_be_freed_after_open) {
  tmodel_t tm;
  small_model(&tm);
  tinput_t in;
  tin_make(&in, &tm.m, 9);
  float ref[9], out[9];
  for (size_t s = 0; s < 9; s++) ref[s] = ref_logit(&tm.m, in.dense + s * 3, in.ids + s * 8);
  mr_engine_t *e = open_or_skip(&tm.m, NULL, 0, NULL);
  tm_free(&tm); /* ASan reports any read of the model after this */
  score(e, &in, 9, out);
  for (size_t s = 0; s < 9; s++) cr_assert(fabsf(out[s] - ref[s]) <= 1e-4f * fmaxf(1, fabsf(ref[s])));
  mr_engine_close(e);
  tin_free(&in);
}

/* ---- threads ---- */

typedef struct job {
  mr_engine_t *e;
  const tinput_t *in;
  float out[1000];
  int rc;
} job_t;

static void *job_run(void *arg) {
  job_t *j = arg;
  mr_scratch_t *s = NULL;
  j->rc = mr_scratch_new(j->e, &s, NULL);
  for (int rep = 0; rep < 5 && j->rc == 0; rep++)
    for (size_t off = 0; off < j->in->n && j->rc == 0; off += 50)
      j->rc = mr_engine_run(j->e, s, 50,
                            j->in->dense + off * mr_engine_info(j->e)->num_dense,
                            j->in->ids + off * mr_engine_info(j->e)->num_tables,
                            j->out + off, NULL);
  mr_scratch_free(j->e, s);
  return NULL;
}

Test(engine, concurrent_runs_agree_with_one_thread) {
  tspec_t sp = {.kind = MR_INTERACT_DOT, .nt = 10, .dims = {16},
                .rows = {100, 200, 300, 400, 500, 600, 700, 800, 900, 1000},
                .nbw = 3, .bw = {13, 64, 16}, .ntw = 3, .tw = {64, 32, 1}};
  tmodel_t tm;
  tm_build(&tm, &sp, 31);
  tinput_t in;
  tin_make(&in, &tm.m, 1000);
  mr_engine_t *e = open_or_skip(&tm.m, NULL, 64, NULL);
  float solo[1000];
  score(e, &in, 1000, solo);
  job_t *jobs = calloc(2, sizeof *jobs);
  pthread_t th[2];
  for (int i = 0; i < 2; i++) {
    jobs[i] = (job_t){.e = e, .in = &in};
    cr_assert_eq(pthread_create(&th[i], NULL, job_run, &jobs[i]), 0);
  }
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(jobs[i].rc, 0);
    cr_assert_eq(memcmp(jobs[i].out, solo, sizeof solo), 0, "thread %d differs", i);
  }
  free(jobs);
  mr_engine_close(e);
  tin_free(&in);
  tm_free(&tm);
}
