/* The cpu backend's reduced-precision modes, intra-run threads and stage
 * option against plain-C references written here: bf16 MLPs (every kernel
 * set, native vdpbf16ps and its emulation), int8 row-wise embeddings
 * (identity and product plans), threads sharing a run (same bits as one
 * thread), and the accuracy of each mode against PyTorch's outputs for the
 * shared reference models (the bounds fpga/cpu/README.md states). */
#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "fpga/cpu/kernels.h"
#include "fpga/engine.h"
#include "fpga/plan.h"
#include "tests/unit/testutil.h"

/* ---- random models in memory ---- */

#define PM_MAX 32

typedef struct pmodel {
  mr_model_t m;
  mr_table_t tables[PM_MAX];
  mr_layer_t bot[8], top[8];
  float *bufs[4 * PM_MAX];
  size_t num_bufs;
} pmodel_t;

static uint64_t rng = 1;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static float rndf(void) { return (float)((double)(rnd() >> 11) / 4503599627370496.0 - 1.0); }

static float *pm_alloc(pmodel_t *pm, size_t n, float scale) {
  float *p = malloc((n ? n : 1) * sizeof *p);
  cr_assert_not_null(p);
  for (size_t i = 0; i < n; i++) p[i] = rndf() * scale;
  pm->bufs[pm->num_bufs++] = p;
  return p;
}

static void pm_layers(pmodel_t *pm, mr_layer_t *l, size_t in, const size_t *w,
                      size_t n) {
  for (size_t i = 0; i < n; i++) {
    l[i].in = i ? w[i - 1] : in;
    l[i].out = w[i];
    l[i].weight = pm_alloc(pm, l[i].in * l[i].out, 1.7f / sqrtf((float)l[i].in));
    l[i].bias = pm_alloc(pm, l[i].out, 0.3f);
  }
}

/* dot: nt tables of width d, bottom dense -> bw..., top tw...; cat: widths
 * dims[], no bottom. */
static void pm_build(pmodel_t *pm, mr_interaction_t kind, size_t nt,
                     const size_t *dims, const uint64_t *rows, size_t nd,
                     const size_t *bw, size_t nbw, const size_t *tw, size_t ntw,
                     uint64_t seed) {
  memset(pm, 0, sizeof *pm);
  rng = seed * 0x9E3779B97F4A7C15ull + 7;
  mr_model_t *m = &pm->m;
  m->interaction = kind;
  m->num_tables = nt;
  m->tables = pm->tables;
  for (size_t t = 0; t < nt; t++) {
    pm->tables[t].rows = rows[t];
    pm->tables[t].dim = dims[t];
    pm->tables[t].data = pm_alloc(pm, rows[t] * dims[t], 1.0f);
  }
  size_t xw = 0;
  if (nbw) {
    m->num_dense = nd;
    m->num_bot = nbw;
    m->bot = pm->bot;
    pm_layers(pm, pm->bot, nd, bw, nbw);
    xw = bw[nbw - 1];
  }
  size_t top_in = xw;
  if (kind == MR_INTERACT_DOT) {
    size_t n = nt + (xw ? 1 : 0);
    top_in += n * (n - 1) / 2;
  } else {
    for (size_t t = 0; t < nt; t++) top_in += dims[t];
  }
  m->num_top = ntw;
  m->top = pm->top;
  pm_layers(pm, pm->top, top_in, tw, ntw);
}

static void pm_free(pmodel_t *pm) {
  for (size_t i = 0; i < pm->num_bufs; i++) free(pm->bufs[i]);
}

/* A Criteo-like dot model (widths past one AVX-512 group, odd inputs) and
 * a MicroRec-like cat model. */
static void dot_model(pmodel_t *pm, uint64_t seed) {
  static const size_t dims[8] = {16, 16, 16, 16, 16, 16, 16, 16};
  static const uint64_t rows[8] = {3, 50, 400, 7, 1000, 2, 33, 64};
  static const size_t bw[] = {100, 33, 16}, tw[] = {80, 17, 1};
  pm_build(pm, MR_INTERACT_DOT, 8, dims, rows, 13, bw, 3, tw, 3, seed);
}

static void cat_model(pmodel_t *pm, uint64_t seed) {
  static const size_t dims[6] = {4, 8, 16, 32, 3, 1};
  static const uint64_t rows[6] = {100, 200, 3, 1, 50, 60};
  static const size_t tw[] = {150, 64, 1};
  pm_build(pm, MR_INTERACT_CAT, 6, dims, rows, 0, NULL, 0, tw, 3, seed);
}

/* ---- references in double ---- */

static double bf(double x) { return mr__cpu_bf16_float(mr__cpu_bf16((float)x)); }

/* The int8 value of table t, row r, column c, as tables.h defines it. */
static float deq(const mr_table_t *tb, uint64_t r, size_t c) {
  const float *x = tb->data + r * tb->dim;
  float lo = x[0], hi = x[0];
  for (size_t i = 1; i < tb->dim; i++) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  float scale = (hi - lo) / 255.0f;
  if (!(scale > 0.0f)) return lo;
  float v = (x[c] - lo) / scale + 0.5f;
  unsigned q = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (unsigned)v;
  return lo + scale * (float)q;
}

static void ref_layer(const mr_layer_t *l, const double *x, double *y, int relu,
                      int bf16) {
  for (size_t o = 0; o < l->out; o++) {
    double s = l->bias[o];
    for (size_t k = 0; k < l->in; k++) {
      double w = l->weight[o * l->in + k], a = x[k];
      s += bf16 ? bf(w) * bf(a) : w * a;
    }
    y[o] = relu && s < 0 ? 0 : s;
  }
}

static float ref_logit(const mr_model_t *m, const float *dense,
                       const int64_t *ids, int bf16, int int8) {
  double a[1024], b[1024], z[2048], v[PM_MAX + 1][64];
  size_t xw = 0, n = 0;
  if (m->num_bot) {
    for (size_t k = 0; k < m->num_dense; k++) a[k] = dense[k];
    for (size_t i = 0; i < m->num_bot; i++) {
      ref_layer(&m->bot[i], a, b, 1, bf16);
      memcpy(a, b, m->bot[i].out * sizeof *a);
    }
    xw = m->bot[m->num_bot - 1].out;
  }
  for (size_t k = 0; k < xw; k++) z[n++] = a[k];
  size_t nv = 0;
  if (xw) {
    for (size_t c = 0; c < xw; c++) v[0][c] = a[c];
    nv = 1;
  }
  for (size_t t = 0; t < m->num_tables; t++, nv++) {
    const mr_table_t *tb = &m->tables[t];
    for (size_t c = 0; c < tb->dim; c++) {
      double e = int8 ? deq(tb, (uint64_t)ids[t], c) : tb->data[ids[t] * tb->dim + c];
      if (m->interaction == MR_INTERACT_CAT) z[n++] = e;
      v[nv][c] = e;
    }
  }
  if (m->interaction == MR_INTERACT_DOT)
    for (size_t p = 1; p < nv; p++)
      for (size_t q = 0; q < p; q++) {
        double s = 0;
        for (size_t c = 0; c < m->tables[0].dim; c++) s += v[p][c] * v[q][c];
        z[n++] = s;
      }
  for (size_t i = 0; i < m->num_top; i++) {
    ref_layer(&m->top[i], i ? a : z, b, i + 1 < m->num_top, bf16);
    memcpy(a, b, m->top[i].out * sizeof *a);
  }
  return (float)a[0];
}

/* ---- inputs and runs ---- */

typedef struct pin {
  size_t n;
  float *dense;
  int64_t *ids;
} pin_t;

static void pin_make(pin_t *in, const mr_model_t *m, size_t n) {
  in->n = n;
  in->dense = malloc((n * m->num_dense + 1) * sizeof(float));
  in->ids = malloc((n * m->num_tables + 1) * sizeof(int64_t));
  cr_assert(in->dense && in->ids);
  for (size_t i = 0; i < n * m->num_dense; i++) in->dense[i] = 2.0f * rndf();
  for (size_t s = 0; s < n; s++)
    for (size_t t = 0; t < m->num_tables; t++)
      in->ids[s * m->num_tables + t] =
          s == 0 ? 0 : s == 1 ? (int64_t)m->tables[t].rows - 1
                              : (int64_t)(rnd() % m->tables[t].rows);
}

static void pin_free(pin_t *in) {
  free(in->dense);
  free(in->ids);
}

static mr_engine_t *open_opts(const mr_model_t *m, mr_engine_opts_t o) {
  mr_engine_t *e = NULL;
  mr_err_t err = {0};
  int rc = mr_engine_open(&e, m, &o, &err);
  if (rc == MR_ENOTSUP && o.simd) return NULL;
  cr_assert_eq(rc, 0, "open (%s, %s): %s", o.simd ? o.simd : "best",
               o.precision ? o.precision : "fp32", err.msg);
  return e;
}

/* Scores in[0, n) in calls of `batch` samples. */
static void run_batches(mr_engine_t *e, const mr_model_t *m, const pin_t *in,
                        size_t batch, float *out) {
  mr_scratch_t *s = NULL;
  mr_err_t err = {0};
  cr_assert_eq(mr_scratch_new(e, &s, &err), 0, "%s", err.msg);
  for (size_t off = 0; off < in->n; off += batch) {
    size_t n = in->n - off < batch ? in->n - off : batch;
    int rc = mr_engine_run(e, s, n, in->dense + off * m->num_dense,
                           in->ids + off * m->num_tables, out + off, &err);
    cr_assert_eq(rc, 0, "run: %s", err.msg);
  }
  mr_scratch_free(e, s);
}

static const char *const simds[] = {"scalar", "avx2", "avx512"};

/* Every kernel set and batch size against the reference of the mode. */
static void check_mode(const mr_model_t *m, const char *precision, int bf16,
                       int int8, double tol) {
  pin_t in;
  pin_make(&in, m, 200);
  float ref[200], out[200];
  for (size_t s = 0; s < in.n; s++)
    ref[s] = ref_logit(m, in.dense + s * m->num_dense, in.ids + s * m->num_tables,
                       bf16, int8);
  static const size_t batches[] = {1, 7, 64, 200};
  for (size_t k = 0; k < 3; k++) {
    mr_engine_t *e = open_opts(m, (mr_engine_opts_t){.simd = simds[k],
                                                     .precision = precision,
                                                     .max_batch = 100});
    if (!e) continue;
    cr_assert_str_eq(mr_engine_info(e)->precision, precision);
    for (size_t b = 0; b < 4; b++) {
      run_batches(e, m, &in, batches[b], out);
      for (size_t s = 0; s < in.n; s++)
        cr_assert(fabs(out[s] - ref[s]) <= tol * fmax(1.0, fabs(ref[s])),
                  "%s %s batch %zu sample %zu: logit %.7g, reference %.7g",
                  precision, simds[k], batches[b], s, out[s], ref[s]);
    }
    mr_engine_close(e);
  }
  pin_free(&in);
}

/* ---- bf16 ---- */

/* Against a reference that rounds weights and layer inputs to bf16 and
 * sums exactly: what is left is fp32 summation (and bf16 rounding flips
 * that it causes downstream). */
Test(engine_precision, bf16_matches_a_bf16_reference) {
  pmodel_t pm;
  dot_model(&pm, 1);
  check_mode(&pm.m, "bf16", 1, 0, 2e-3);
  pm_free(&pm);
  cat_model(&pm, 2);
  check_mode(&pm.m, "bf16", 1, 0, 2e-3);
  pm_free(&pm);
}

/* The kernels directly: native vdpbf16ps (when the CPU has it), the AVX-512
 * emulation and the portable kernel give the same sums, with odd k, m
 * across the microkernel heights and a partial group. */
Test(engine_precision, bf16_kernels_agree_with_the_portable_one) {
  const size_t K = 37, K2 = (K + 1) / 2, NP = 7, M = 13, LD = 7 * 16;
  rng = 99;
  float *x = malloc(M * K * sizeof *x), *bias = aligned_alloc(64, NP * 16 * sizeof *bias);
  uint32_t *xb = calloc(M * K2, sizeof *xb), *xs = calloc(M * K2, sizeof *xs);
  float wf[7 * 16][37];
  for (size_t i = 0; i < M * K; i++) x[i] = rndf() * 3;
  x[5] = 1e-40f; /* a denormal input becomes 0 */
  for (size_t o = 0; o < NP * 16; o++) {
    bias[o] = rndf();
    for (size_t k = 0; k < K; k++) wf[o][k] = rndf();
  }
  mr__cpu_to_bf16_scalar(M, K, x, K, xs, K2);
  cr_assert_eq(xs[2] & 0xffff0000u, 0, "denormal not flushed");
  float *ref = aligned_alloc(64, M * LD * sizeof(float));
  float *got = aligned_alloc(64, M * LD * sizeof(float));
  __builtin_cpu_init();
  for (size_t set = 0; set < 3; set++) {
    const mr_cpu_kernels_t *k = set == 0   ? &mr__cpu_kernels_scalar
                                : set == 1 ? &mr__cpu_kernels_avx2
                                           : &mr__cpu_kernels_avx512;
    if (set == 1 && !__builtin_cpu_supports("avx2")) continue;
    if (set == 2 && !__builtin_cpu_supports("avx512bw")) continue;
    size_t g = k->group_bf16;
    uint16_t *w = aligned_alloc(64, K2 * NP * 32 * sizeof *w);
    for (size_t p0 = 0; p0 < NP; p0 += g) {
      size_t gp = NP - p0 < g ? NP - p0 : g;
      for (size_t kk = 0; kk < K2; kk++)
        for (size_t p = 0; p < gp; p++)
          for (size_t l = 0; l < 16; l++)
            for (size_t h = 0; h < 2; h++) {
              size_t kx = 2 * kk + h;
              w[K2 * p0 * 32 + kk * gp * 32 + p * 32 + l * 2 + h] =
                  kx < K ? mr__cpu_bf16(wf[(p0 + p) * 16 + l][kx]) : 0;
            }
    }
    k->to_bf16(M, K, x, K, xb, K2);
    cr_assert_eq(memcmp(xb, xs, M * K2 * sizeof *xb), 0, "%s to_bf16 differs", k->name);
    /* The reference: the same sums in double. */
    for (size_t i = 0; i < M; i++)
      for (size_t o = 0; o < NP * 16; o++) {
        double s = bias[o];
        for (size_t kk = 0; kk < K; kk++)
          s += (double)mr__cpu_bf16_float((uint16_t)(xs[i * K2 + kk / 2] >> (16 * (kk % 2)))) *
               mr__cpu_bf16_float(mr__cpu_bf16(wf[o][kk]));
        ref[i * LD + o] = (float)(s < 0 ? 0 : s);
      }
    mr_cpu_gemm_bf16_fn fns[2] = {k->gemm_bf16, k->gemm_bf16_native};
    for (size_t f = 0; f < 2; f++) {
      if (!fns[f] || (f == 1 && !__builtin_cpu_supports("avx512bf16"))) continue;
      for (size_t m = 1; m <= M; m += 3) {
        memset(got, 0, M * LD * sizeof(float));
        fns[f](m, K2, NP, xb, K2, w, bias, got, LD, 1, NULL);
        /* bf16 output: exactly the fp32 output rounded as to_bf16 does. */
        uint32_t *cb = calloc(M * LD / 2, sizeof *cb), *cv = calloc(M * LD / 2, sizeof *cv);
        fns[f](m, K2, NP, xb, K2, w, bias, NULL, LD, 1, (uint16_t *)cb);
        mr__cpu_to_bf16_scalar(m, LD, got, LD, cv, LD / 2);
        cr_assert_eq(memcmp(cb, cv, m * LD / 2 * sizeof *cb), 0,
                     "%s %s m %zu: bf16 output differs from the rounded fp32",
                     k->name, f ? "native" : "emulated", m);
        free(cb);
        free(cv);
        for (size_t i = 0; i < m; i++)
          for (size_t o = 0; o < NP * 16; o++)
            cr_assert(fabsf(got[i * LD + o] - ref[i * LD + o]) <=
                          1e-5f * fmaxf(1.0f, fabsf(ref[i * LD + o])),
                      "%s %s m %zu: [%zu][%zu] = %.8g, reference %.8g", k->name,
                      f ? "native" : "emulated", m, i, o, got[i * LD + o],
                      ref[i * LD + o]);
      }
    }
    free(w);
  }
  free(x);
  free(bias);
  free(xb);
  free(xs);
  free(ref);
  free(got);
}

/* ---- int8 embeddings ---- */

Test(engine_precision, int8emb_matches_a_dequantized_reference) {
  pmodel_t pm;
  dot_model(&pm, 3);
  check_mode(&pm.m, "int8emb", 0, 1, 1e-4);
  pm_free(&pm);
  cat_model(&pm, 4);
  check_mode(&pm.m, "int8emb", 0, 1, 1e-4);
  check_mode(&pm.m, "bf16-int8emb", 1, 1, 2e-3);
  pm_free(&pm);
}

Test(engine_precision, int8emb_tables_are_smaller_and_constant_rows_exact) {
  pmodel_t pm;
  cat_model(&pm, 5);
  /* Table 4: every value of row 7 equal, so scale 0: stored exactly. */
  for (size_t c = 0; c < 3; c++) ((float *)pm.tables[4].data)[7 * 3 + c] = 0.625f;
  mr_engine_t *a = open_opts(&pm.m, (mr_engine_opts_t){0});
  mr_engine_t *b = open_opts(&pm.m, (mr_engine_opts_t){.precision = "int8emb"});
  cr_assert_lt(mr_engine_info(b)->resident_bytes, mr_engine_info(a)->resident_bytes);
  cr_assert_eq(deq(&pm.tables[4], 7, 2), 0.625f);
  mr_engine_close(a);
  mr_engine_close(b);
  pm_free(&pm);
}

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

/* Quantized per logical row, a product plan stores the identity plan's
 * values: the logits are the same bits. */
Test(engine_precision, int8emb_product_plans_are_bit_identical) {
  static const size_t dims[5] = {4, 3, 17, 1, 8};
  static const uint64_t rows[5] = {6, 3, 5, 2, 9};
  static const size_t tw[] = {16, 1};
  pmodel_t pm;
  pm_build(&pm, MR_INTERACT_CAT, 5, dims, rows, 0, NULL, 0, tw, 2, 6);
  mr_plan_table_t tabs[] = {ptab(&pm.m, 2, 4, 1, 0, 0, 0),
                            ptab(&pm.m, 3, 3, 0, 2, 0, 9),
                            ptab(&pm.m, 3, 3, 0, 2, 9, 0)};
  mr_plan_t p = {.num_logical = 5, .num_tables = 3, .tables = tabs};
  mr_err_t err = {0};
  cr_assert_eq(mr_plan_check(&p, &pm.m, &err), 0, "%s", err.msg);
  pin_t in;
  pin_make(&in, &pm.m, 100);
  float la[100], lb[100];
  mr_engine_t *a = open_opts(&pm.m, (mr_engine_opts_t){.precision = "int8emb"});
  mr_engine_t *b = open_opts(&pm.m, (mr_engine_opts_t){.precision = "int8emb", .plan = &p});
  run_batches(a, &pm.m, &in, 100, la);
  run_batches(b, &pm.m, &in, 100, lb);
  cr_assert_eq(memcmp(la, lb, sizeof la), 0, "product plan differs under int8emb");
  mr_engine_close(a);
  mr_engine_close(b);
  pin_free(&in);
  pm_free(&pm);
}

/* ---- threads sharing a run ---- */

/* Every precision, batch sizes on both sides of the split threshold: the
 * same bits as one thread. */
Test(engine_precision, intra_threads_give_the_same_bits) {
  static const char *const precs[] = {"fp32", "bf16", "int8emb", "bf16-int8emb"};
  static const size_t batches[] = {1, 2, 3, 15, 16, 17, 64, 300};
  pmodel_t pm;
  dot_model(&pm, 7);
  pin_t in;
  pin_make(&in, &pm.m, 300);
  for (size_t p = 0; p < 4; p++) {
    mr_engine_t *one = open_opts(&pm.m, (mr_engine_opts_t){.precision = precs[p]});
    for (size_t t = 2; t <= 3; t++) {
      mr_engine_t *many = open_opts(
          &pm.m, (mr_engine_opts_t){.precision = precs[p], .intra_threads = t});
      cr_assert_eq(mr_engine_info(many)->intra_threads, t);
      for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
        float x[300], y[300];
        run_batches(one, &pm.m, &in, batches[b], x);
        run_batches(many, &pm.m, &in, batches[b], y);
        cr_assert_eq(memcmp(x, y, sizeof x), 0, "%s, %zu threads, batch %zu differs",
                     precs[p], t, batches[b]);
      }
      mr_engine_close(many);
    }
    mr_engine_close(one);
  }
  pin_free(&in);
  pm_free(&pm);
}

typedef struct caller {
  mr_engine_t *e;
  const mr_model_t *m;
  const pin_t *in;
  float out[300];
} caller_t;

static void *caller_main(void *arg) {
  caller_t *c = arg;
  for (int rep = 0; rep < 20; rep++) run_batches(c->e, c->m, c->in, rep % 2 ? 30 : 1, c->out); /* last: 30 */
  return NULL;
}

/* Two callers on one pooled engine: one gets the pool, the other runs
 * alone; both get the single-thread logits. */
Test(engine_precision, concurrent_callers_share_the_pool_safely) {
  pmodel_t pm;
  dot_model(&pm, 8);
  pin_t in;
  pin_make(&in, &pm.m, 300);
  mr_engine_t *one = open_opts(&pm.m, (mr_engine_opts_t){0});
  mr_engine_t *many = open_opts(&pm.m, (mr_engine_opts_t){.intra_threads = 2});
  float solo[300];
  run_batches(one, &pm.m, &in, 30, solo);
  caller_t c[2] = {{many, &pm.m, &in, {0}}, {many, &pm.m, &in, {0}}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) cr_assert_eq(pthread_create(&th[i], NULL, caller_main, &c[i]), 0);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < 2; i++)
    cr_assert_eq(memcmp(c[i].out, solo, sizeof solo), 0, "caller %d differs", i);
  mr_engine_close(one);
  mr_engine_close(many);
  pin_free(&in);
  pm_free(&pm);
}

/* ---- options ---- */

Test(engine_precision, rejects_unknown_precision_and_stage) {
  pmodel_t pm;
  cat_model(&pm, 9);
  mr_engine_t *e = NULL;
  mr_err_t err = {0};
  mr_engine_opts_t o = {.precision = "fp8"};
  cr_assert_eq(mr_engine_open(&e, &pm.m, &o, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "'fp8'") && strstr(err.msg, "bf16-int8emb"), "%s", err.msg);
  o = (mr_engine_opts_t){.stage = 7};
  cr_assert_eq(mr_engine_open(&e, &pm.m, &o, &err), MR_EINVAL);
  cr_assert_null(e);
  e = open_opts(&pm.m, (mr_engine_opts_t){0});
  cr_assert_str_eq(mr_engine_info(e)->precision, "fp32");
  cr_assert_eq(mr_engine_info(e)->intra_threads, 1);
  mr_engine_close(e);
  pm_free(&pm);
}

/* The benchmark's stages run (alone and pooled) and write every logit. */
Test(engine_precision, stages_run_without_touching_outside_the_batch) {
  pmodel_t pm;
  dot_model(&pm, 10);
  pin_t in;
  pin_make(&in, &pm.m, 64);
  for (int st = MR_STAGE_LOOKUP; st <= MR_STAGE_MLP; st++)
    for (size_t t = 1; t <= 2; t++) {
      mr_engine_t *e = open_opts(&pm.m, (mr_engine_opts_t){.stage = st, .intra_threads = t});
      float out[65];
      for (size_t b = 1; b <= 64; b *= 4) {
        for (size_t i = 0; i < 65; i++) out[i] = NAN;
        run_batches(e, &pm.m, &(pin_t){b, in.dense, in.ids}, b, out);
        for (size_t i = 0; i < b; i++) cr_assert(isfinite(out[i]), "stage %d: logit %zu", st, i);
        cr_assert(isnan(out[b]));
      }
      mr_engine_close(e);
    }
  pin_free(&in);
  pm_free(&pm);
}

/* ---- accuracy against PyTorch (the bounds fpga/cpu/README.md states) ---- */

static void *read_exact(const char *dir, const char *name, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  size_t len = 0;
  void *p = mr_test_read_file(path, &len);
  cr_assert_not_null(p, "cannot read %s", path);
  cr_assert_eq(len, bytes, "%s: %zu bytes, expected %zu", path, len, bytes);
  return p;
}

static void check_against_pytorch(const char *model, const char *set, size_t n,
                                  const char *precision, double bound) {
  char dir[4096], path[4096];
  snprintf(path, sizeof path, "%s/%s/model.safetensors", mr_test_testdata(), model);
  snprintf(dir, sizeof dir, "%s/%s/%s", mr_test_testdata(), model, set);
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open(&m, path, &err), 0, "%s: %s", path, err.msg);
  size_t nd = m.num_dense, nt = m.num_tables;
  float *dense = nd ? read_exact(dir, "dense.f32", n * nd * sizeof(float)) : NULL;
  int64_t *ids = read_exact(dir, "sparse.i64", n * nt * sizeof(int64_t));
  float *want = read_exact(dir, "logits.f32", n * sizeof(float));
  float *got = malloc(n * sizeof(float));
  for (size_t k = 0; k < 3; k++) {
    mr_engine_opts_t o = {.simd = simds[k], .precision = precision, .max_batch = 64};
    mr_engine_t *e = NULL;
    int rc = mr_engine_open(&e, &m, &o, &err);
    if (rc == MR_ENOTSUP) continue;
    cr_assert_eq(rc, 0, "%s", err.msg);
    mr_scratch_t *s = NULL;
    cr_assert_eq(mr_scratch_new(e, &s, &err), 0);
    cr_assert_eq(mr_engine_run(e, s, n, dense, ids, got, &err), 0, "%s", err.msg);
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(got[i] - want[i]));
    cr_assert(worst <= bound, "%s %s %s: max |logit error| %.4f > %.3f", model,
              precision, simds[k], worst, bound);
    mr_scratch_free(e, s);
    mr_engine_close(e);
  }
  free(got);
  free(want);
  free(ids);
  free(dense);
  mr_model_close(&m);
}

/* Logits spread with std 2; measured max errors (AVX-512, this tree):
 * bf16 0.081 / 0.048, int8emb 0.040 / 0.028, both 0.089 / 0.048. */
Test(engine_precision, reduced_precision_error_is_bounded_against_pytorch) {
  MR_REQUIRE_TESTDATA();
  check_against_pytorch("dlrm-criteo-small", "criteo-1k", 1000, "bf16", 0.15);
  check_against_pytorch("dlrm-criteo-small", "criteo-1k", 1000, "int8emb", 0.08);
  check_against_pytorch("dlrm-criteo-small", "criteo-1k", 1000, "bf16-int8emb", 0.15);
  check_against_pytorch("microrec-47-small", "zipf-512", 512, "bf16", 0.1);
  check_against_pytorch("microrec-47-small", "zipf-512", 512, "int8emb", 0.06);
  check_against_pytorch("microrec-47-small", "zipf-512", 512, "bf16-int8emb", 0.1);
}
