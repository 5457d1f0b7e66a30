/* The `cpu` backend (DESIGN.md, "Engine"): plan-shaped tables in huge pages,
 * prefetched gathers, packed SIMD MLPs. This file is its lifecycle: open
 * (copy and pack everything from the model), info, per-thread scratch, run,
 * close. The engine is read-only after open, so runs on different scratches
 * may go on in parallel. */
#include <stdlib.h>
#include <string.h>

#include "fpga/cpu/dispatch.h"
#include "fpga/cpu/interact.h"
#include "fpga/cpu/mlp.h"
#include "fpga/cpu/pool.h"
#include "fpga/cpu/tables.h"
#include "fpga/engine.h"

/* Below this many samples per thread a shared run splits each layer's
 * panels; at or above it, the samples (slices never reach the one-sample
 * GEMV path, so the logits do not depend on the split). */
#define ROWS_PER_THREAD_MIN 8
#include "fpga/planner.h"

typedef struct cpu_engine {
  mr_engine_t base; /* first: the generic layer's view */
  mr_engine_info_t info;
  const mr_cpu_kernels_t *k;
  mr_cpu_tables_t tables;
  mr_cpu_interact_t ix;
  mr_cpu_mlp_t bot, top;
  size_t num_dense, num_tables;
  size_t ldz;      /* row stride of the top input */
  size_t buf_pad;  /* row stride capacity of the ping/pong buffers */
  size_t max_batch;
  int stage;             /* opts.stage */
  mr_cpu_pool_t *pool;   /* intra_threads > 1 */
  mr_scratch_t **wscr;   /* the workers' scratches (pool threads - 1) */
  /* Arrays the info points to. */
  uint64_t *rows;
  size_t *dims, *bot_in, *bot_out, *top_in, *top_out;
} cpu_engine_t;

/* Every buffer of one thread's runs, sized for max_batch samples. */
struct mr_scratch {
  float *z;     /* top input: max_batch x ldz */
  float *ping;  /* layer outputs: max_batch x buf_pad each */
  float *pong;
  float *vec;   /* dot: one sample's [d][npad] vectors */
  uint32_t *xb; /* bf16: a layer's input as pairs, max_batch x max_k2 */
  void *mem;
};

static int scratch_alloc(const struct cpu_engine *e, mr_scratch_t **out,
                         mr_err_t *err);
static void scratch_release(mr_scratch_t *s);

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

static void cpu_close(mr_engine_t *e_) {
  cpu_engine_t *e = (cpu_engine_t *)e_;
  if (!e) return;
  if (e->pool) {
    size_t nw = mr__cpu_pool_threads(e->pool) - 1;
    mr__cpu_pool_free(e->pool);
    for (size_t i = 0; i < nw && e->wscr; i++) scratch_release(e->wscr[i]);
  }
  free(e->wscr);
  mr__cpu_tables_free(&e->tables);
  mr__cpu_mlp_free(&e->bot);
  mr__cpu_mlp_free(&e->top);
  free(e->rows);
  free(e->dims);
  free(e->bot_in);
  free(e->bot_out);
  free(e->top_in);
  free(e->top_out);
  free(e);
}

static int fill_info(cpu_engine_t *e, const mr_model_t *m, mr_err_t *err) {
  size_t nt = m->num_tables, nb = m->num_bot, ntop = m->num_top;
  e->rows = calloc(nt + 1, sizeof *e->rows);
  e->dims = calloc(nt + 1, sizeof *e->dims);
  e->bot_in = calloc(nb + 1, sizeof *e->bot_in);
  e->bot_out = calloc(nb + 1, sizeof *e->bot_out);
  e->top_in = calloc(ntop + 1, sizeof *e->top_in);
  e->top_out = calloc(ntop + 1, sizeof *e->top_out);
  if (!e->rows || !e->dims || !e->bot_in || !e->bot_out || !e->top_in ||
      !e->top_out)
    return mr_err_set(err, MR_ENOMEM, "cpu engine: out of memory");
  uint64_t params = 0;
  for (size_t t = 0; t < nt; t++) {
    e->rows[t] = m->tables[t].rows;
    e->dims[t] = m->tables[t].dim;
    params += (uint64_t)m->tables[t].rows * m->tables[t].dim;
  }
  for (size_t i = 0; i < nb; i++) {
    e->bot_in[i] = m->bot[i].in;
    e->bot_out[i] = m->bot[i].out;
    params += (uint64_t)(m->bot[i].in + 1) * m->bot[i].out;
  }
  for (size_t i = 0; i < ntop; i++) {
    e->top_in[i] = m->top[i].in;
    e->top_out[i] = m->top[i].out;
    params += (uint64_t)(m->top[i].in + 1) * m->top[i].out;
  }
  e->info = (mr_engine_info_t){
      .backend = "cpu",
      .simd = e->k->name,
      .interaction = m->interaction,
      .num_dense = m->num_dense,
      .num_tables = nt,
      .table_rows = e->rows,
      .table_dims = e->dims,
      .num_bot = nb,
      .num_top = ntop,
      .bot_in = e->bot_in,
      .bot_out = e->bot_out,
      .top_in = e->top_in,
      .top_out = e->top_out,
      .param_bytes = params * sizeof(float),
      .resident_bytes = e->tables.bytes,
      .max_batch = e->max_batch,
      .precision = e->info.precision,
      .intra_threads = e->pool ? mr__cpu_pool_threads(e->pool) : 1,
  };
  return 0;
}

/* opts.precision -> (bf16 MLPs, int8 tables, canonical name). */
static int parse_precision(const char *p, int *bf16, int *int8,
                           const char **name, mr_err_t *err) {
  static const char *const names[] = {"fp32", "bf16", "int8emb", "bf16-int8emb"};
  if (!p) p = "fp32";
  for (int i = 0; i < 4; i++)
    if (strcmp(p, names[i]) == 0) {
      *bf16 = i & 1;
      *int8 = i >> 1;
      *name = names[i];
      return 0;
    }
  return mr_err_set(err, MR_EINVAL,
                    "precision '%s' unknown, expected 'fp32', 'bf16', "
                    "'int8emb' or 'bf16-int8emb'",
                    p);
}

static int start_pool(cpu_engine_t *e, size_t threads, mr_err_t *err) {
  if (threads > 64)
    return mr_err_set(err, MR_EINVAL,
                      "cpu engine: intra_threads %zu is too many (at most 64)",
                      threads);
  e->wscr = calloc(threads - 1, sizeof *e->wscr);
  if (!e->wscr) return mr_err_set(err, MR_ENOMEM, "cpu engine: out of memory");
  for (size_t i = 0; i + 1 < threads; i++) {
    int rc = scratch_alloc(e, &e->wscr[i], err);
    if (rc < 0) return rc;
  }
  return mr__cpu_pool_new(&e->pool, threads, err);
}

static int cpu_open(mr_engine_t **out, const mr_model_t *m,
                    const mr_engine_opts_t *o, mr_err_t *err) {
  cpu_engine_t *e = calloc(1, sizeof *e);
  if (!e) return mr_err_set(err, MR_ENOMEM, "cpu engine: out of memory");
  size_t *dst_base = NULL;
  mr_plan_t own = {0};
  int bf16 = 0, int8 = 0;
  int rc = mr__cpu_kernels_pick(o->simd, &e->k, err);
  if (rc < 0) goto fail;
  rc = parse_precision(o->precision, &bf16, &int8, &e->info.precision, err);
  if (rc < 0) goto fail;
  if (o->stage < MR_STAGE_ALL || o->stage > MR_STAGE_MLP) {
    rc = mr_err_set(err, MR_EINVAL, "cpu engine: stage %d unknown", o->stage);
    goto fail;
  }
  e->stage = o->stage;
  e->max_batch = o->max_batch ? o->max_batch : 256;
  e->num_dense = m->num_dense;
  e->num_tables = m->num_tables;

  const mr_plan_t *plan = o->plan;
  if (plan) {
    rc = mr_plan_check(plan, m, err);
    if (rc < 0) {
      mr_err_prefix(err, "cpu engine: the given plan does not fit the model");
      goto fail;
    }
  } else {
    /* The planner's plan for a CPU: products only where they save misses. */
    mr_plan_opts_t po;
    mr_plan_opts_default(&po);
    po.no_products = o->no_products;
    rc = mr_plan_for_model(&own, m, "cpu", &po, err);
    if (rc < 0) goto fail;
    plan = &own;
  }

  dst_base = calloc(m->num_tables + 1, sizeof *dst_base);
  if (!dst_base) {
    rc = mr_err_set(err, MR_ENOMEM, "cpu engine: out of memory");
    goto fail;
  }
  size_t stride = 1;
  mr__cpu_interact_layout(&e->ix, m, dst_base, &stride);
  e->ldz = round16(e->ix.top_in);
  if (e->ix.top_in != m->top[0].in) {
    rc = mr_err_set(err, MR_EINVAL,
                    "cpu engine: the %s interaction gives %zu top inputs, "
                    "top_l.0 takes %zu",
                    m->interaction == MR_INTERACT_DOT ? "dot" : "cat",
                    e->ix.top_in, m->top[0].in);
    goto fail;
  }
  if (e->ldz > UINT32_MAX / 2 || e->ix.d * e->ix.npad > UINT32_MAX / 2) {
    rc = mr_err_set(err, MR_ENOTSUP,
                    "cpu engine: interaction of %zu values is too wide",
                    e->ix.top_in);
    goto fail;
  }
  rc = mr__cpu_tables_build(&e->tables, m, plan, dst_base, stride, int8, err);
  if (rc < 0) goto fail;
  rc = mr__cpu_mlp_pack(&e->bot, m->bot, m->num_bot, e->k, bf16, err);
  if (rc < 0) goto fail;
  rc = mr__cpu_mlp_pack(&e->top, m->top, m->num_top, e->k, bf16, err);
  if (rc < 0) goto fail;
  e->buf_pad = e->bot.max_pad > e->top.max_pad ? e->bot.max_pad : e->top.max_pad;
  /* Scratch floats per sample; the whole scratch must be addressable. */
  if (e->max_batch > (SIZE_MAX / sizeof(float) - 1024) / (e->ldz + 2 * e->buf_pad + 1)) {
    rc = mr_err_set(err, MR_EINVAL,
                    "cpu engine: max_batch %zu is too large for a scratch",
                    e->max_batch);
    goto fail;
  }
  if (o->intra_threads > 1) {
    rc = start_pool(e, o->intra_threads, err);
    if (rc < 0) goto fail;
  }
  rc = fill_info(e, m, err);
  if (rc < 0) goto fail;
  mr_plan_free(&own);
  free(dst_base);
  *out = &e->base;
  return 0;
fail:
  mr_plan_free(&own);
  free(dst_base);
  cpu_close(&e->base);
  return rc;
}

static const mr_engine_info_t *cpu_info(const mr_engine_t *e) {
  return &((const cpu_engine_t *)e)->info;
}

static int scratch_alloc(const cpu_engine_t *e, mr_scratch_t **out,
                         mr_err_t *err) {
  size_t zf = e->max_batch * e->ldz, bf = e->max_batch * e->buf_pad;
  size_t vf = e->ix.d * e->ix.npad;
  size_t k2 = e->bot.max_k2 > e->top.max_k2 ? e->bot.max_k2 : e->top.max_k2;
  size_t xf = e->bot.bf16 ? (e->max_batch * k2 + 15) / 16 * 16 : 0;
  size_t floats = zf + 2 * bf + vf + xf + 16;
  mr_scratch_t *s = calloc(1, sizeof *s);
  void *mem = aligned_alloc(64, floats * sizeof(float));
  if (!s || !mem) {
    free(s);
    free(mem);
    return mr_err_set(err, MR_ENOMEM,
                      "cpu engine: out of memory for a scratch of %zu bytes",
                      floats * sizeof(float));
  }
  /* Zeroed once: padding columns and unused vector columns stay 0. */
  memset(mem, 0, floats * sizeof(float));
  s->mem = mem;
  s->z = mem;
  s->ping = s->z + zf;
  s->pong = s->ping + bf;
  s->vec = s->pong + bf;
  s->xb = (uint32_t *)(s->vec + (vf + 15) / 16 * 16);
  *out = s;
  return 0;
}

static void scratch_release(mr_scratch_t *s) {
  if (!s) return;
  free(s->mem);
  free(s);
}

static int cpu_scratch_new(mr_engine_t *e_, mr_scratch_t **out, mr_err_t *err) {
  return scratch_alloc((cpu_engine_t *)e_, out, err);
}

static void cpu_scratch_free(mr_engine_t *e, mr_scratch_t *s) {
  (void)e;
  scratch_release(s);
}

static void copy_logits(const cpu_engine_t *e, const float *y, size_t m,
                        float *logits) {
  size_t ldy = e->top.layers[e->top.num - 1].np * 16;
  for (size_t i = 0; i < m; i++) logits[i] = y[i * ldy];
}

/* One chunk of at most max_batch samples on one thread. */
static void run_chunk(const cpu_engine_t *e, mr_scratch_t *s, size_t m,
                      const float *dense, const int64_t *ids, float *logits) {
  const size_t nt = e->num_tables;
  const int lookups = e->stage != MR_STAGE_MLP, mlps = e->stage != MR_STAGE_LOOKUP;
  /* The first rows travel from memory while the bottom MLP computes. */
  size_t first = m < e->tables.prefetch_dist ? m : e->tables.prefetch_dist;
  if (lookups)
    for (size_t i = 0; i < first; i++) mr__cpu_lookup_prefetch(&e->tables, ids + i * nt);
  if (e->bot.num && mlps)
    mr__cpu_mlp_run(&e->bot, e->k, m, dense, e->num_dense, s->ping, s->pong,
                    s->z, e->ldz, 1, s->xb);
  if (lookups)
    mr__cpu_interact_run(&e->ix, &e->tables, e->k, m, ids, nt, s->z, e->ldz,
                         s->vec, !mlps);
  if (!mlps) {
    for (size_t i = 0; i < m; i++) logits[i] = s->z[i * e->ldz + e->ix.xw];
    return;
  }
  const float *y = mr__cpu_mlp_run(&e->top, e->k, m, s->z, e->ldz, s->ping,
                                   s->pong, NULL, 0, 0, s->xb);
  copy_logits(e, y, m, logits);
}

/* ---- a chunk shared by the pool's threads ---- */

typedef struct shared_run {
  const cpu_engine_t *e;
  mr_scratch_t *s; /* the caller's: the panel split's common buffers */
  size_t m;
  const float *dense;
  const int64_t *ids;
  float *logits;
} shared_run_t;

/* Thread t's panels of a layer: whole groups, so the packed layout holds. */
static void my_panels(const mr_cpu_mlp_t *mlp, size_t i, size_t t, size_t T,
                      size_t *p0, size_t *p1) {
  size_t np = mlp->layers[i].np, g = mlp->group, ng = (np + g - 1) / g;
  *p0 = ng * t / T * g;
  *p1 = ng * (t + 1) / T * g;
  if (*p1 > np) *p1 = np;
  if (*p0 > np) *p0 = np;
}

static void split_mlp(const cpu_engine_t *e, const mr_cpu_mlp_t *mlp,
                      mr_scratch_t *s, uint32_t *xb, size_t m,
                      const float *in, size_t ldin, float *out, size_t ldout,
                      int relu_last, size_t t, size_t T, int last_barrier) {
  for (size_t i = 0; i < mlp->num; i++) {
    const float *x;
    float *y;
    size_t ldx, ldy, p0, p1;
    mr__cpu_mlp_route(mlp, i, in, ldin, s->ping, s->pong, out, ldout, &x, &ldx,
                      &y, &ldy);
    my_panels(mlp, i, t, T, &p0, &p1);
    int last = i + 1 == mlp->num;
    mr__cpu_mlp_layer(mlp, e->k, i, m, x, ldx, y, ldy, !last || relu_last, p0,
                      p1, xb);
    if (!last || last_barrier) mr__cpu_pool_barrier(e->pool);
  }
}

static void shared_task(void *arg, size_t t, size_t T) {
  const shared_run_t *r = arg;
  const cpu_engine_t *e = r->e;
  mr_scratch_t *own = t == 0 ? r->s : e->wscr[t - 1];
  const size_t nt = e->num_tables, m = r->m;
  if (m >= ROWS_PER_THREAD_MIN * T) {
    size_t b = m * t / T, n = m * (t + 1) / T - b;
    run_chunk(e, own, n, r->dense ? r->dense + b * e->num_dense : NULL,
              r->ids + b * nt, r->logits + b);
    return;
  }
  /* Few samples: every layer's panels split, the gather and dots on the
   * caller's thread, all in the caller's scratch. */
  mr_scratch_t *s = r->s;
  const int lookups = e->stage != MR_STAGE_MLP, mlps = e->stage != MR_STAGE_LOOKUP;
  if (t == 0 && lookups) {
    size_t first = m < e->tables.prefetch_dist ? m : e->tables.prefetch_dist;
    for (size_t i = 0; i < first; i++) mr__cpu_lookup_prefetch(&e->tables, r->ids + i * nt);
  }
  if (e->bot.num && mlps)
    split_mlp(e, &e->bot, s, own->xb, m, r->dense, e->num_dense, s->z, e->ldz,
              1, t, T, 1);
  if (t == 0 && lookups)
    mr__cpu_interact_run(&e->ix, &e->tables, e->k, m, r->ids, nt, s->z,
                         e->ldz, s->vec, !mlps);
  /* The bottom's last layer and the interaction both fill z. */
  mr__cpu_pool_barrier(e->pool);
  if (mlps)
    split_mlp(e, &e->top, s, own->xb, m, s->z, e->ldz, NULL, 0, 0, t, T, 0);
}

static int cpu_run(mr_engine_t *e_, mr_scratch_t *s, size_t n,
                   const float *dense, const int64_t *ids, float *logits,
                   mr_err_t *err) {
  (void)err;
  const cpu_engine_t *e = (const cpu_engine_t *)e_;
  for (size_t off = 0; off < n; off += e->max_batch) {
    size_t m = n - off < e->max_batch ? n - off : e->max_batch;
    const float *d = dense ? dense + off * e->num_dense : NULL;
    const int64_t *id = ids + off * e->num_tables;
    shared_run_t r = {e, s, m, d, id, logits + off};
    if (e->pool && mr__cpu_pool_run(e->pool, shared_task, &r) == 0) {
      size_t T = mr__cpu_pool_threads(e->pool);
      if (m < ROWS_PER_THREAD_MIN * T) {
        if (e->stage == MR_STAGE_LOOKUP)
          for (size_t i = 0; i < m; i++) logits[off + i] = s->z[i * e->ldz + e->ix.xw];
        else
          copy_logits(e, e->top.num % 2 ? s->ping : s->pong, m, logits + off);
      }
      continue;
    }
    run_chunk(e, s, m, d, id, logits + off);
  }
  return 0;
}

const mr_backend_t mr_cpu_backend = {
    .abi = MR_BACKEND_ABI,
    .name = "cpu",
    .open = cpu_open,
    .scratch_new = cpu_scratch_new,
    .scratch_free = cpu_scratch_free,
    .run = cpu_run,
    .info = cpu_info,
    .close = cpu_close,
};
