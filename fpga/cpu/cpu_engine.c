/* The `cpu` backend (DESIGN.md, "Engine"): plan-shaped tables in huge pages,
 * prefetched gathers, packed SIMD MLPs. This file is its lifecycle: open
 * (copy and pack everything from the model), info, per-thread scratch, run,
 * close. The engine is read-only after open, so runs on different scratches
 * may go on in parallel. */
#include <stdatomic.h>
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
  size_t nwscr;
  size_t nclaim, nphase; /* a shared run's chunk flags and phases */
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
  uint32_t *xb; /* bf16: a layer's input as pairs, max_batch x k2max */
  uint32_t *xb2; /* bf16: the other of the pair (one-thread runs) */
  void *mem;
  /* A shared run's phases (pool.h), when the engine has a pool. */
  atomic_uchar *claim;
  atomic_size_t *done;
};

static int scratch_alloc(const struct cpu_engine *e, mr_scratch_t **out,
                         mr_err_t *err);
static void scratch_release(mr_scratch_t *s);

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

static void cpu_close(mr_engine_t *e_) {
  cpu_engine_t *e = (cpu_engine_t *)e_;
  if (!e) return;
  mr__cpu_pool_free(e->pool); /* joins the workers first */
  for (size_t i = 0; i < e->nwscr; i++) scratch_release(e->wscr[i]);
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
      .lookups = e->tables.num,
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
  /* Chunks: one per panel group of every layer, plus the interaction; or
   * the sample slices of a large run. */
  size_t groups = 1;
  for (size_t i = 0; i < e->bot.num; i++)
    groups += (e->bot.layers[i].np + e->bot.group - 1) / e->bot.group;
  for (size_t i = 0; i < e->top.num; i++)
    groups += (e->top.layers[i].np + e->top.group - 1) / e->top.group;
  size_t slices = e->max_batch / ROWS_PER_THREAD_MIN + 1;
  e->nclaim = groups > slices ? groups : slices;
  e->nphase = e->bot.num + e->top.num + 1;
  e->wscr = calloc(threads - 1, sizeof *e->wscr);
  if (!e->wscr) return mr_err_set(err, MR_ENOMEM, "cpu engine: out of memory");
  for (size_t i = 0; i + 1 < threads; i++) {
    int rc = scratch_alloc(e, &e->wscr[i], err);
    if (rc < 0) return rc;
    e->nwscr++;
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
  /* Pairs per row: the widest input, or a layer's output written as bf16. */
  size_t k2 = e->bot.max_k2 > e->top.max_k2 ? e->bot.max_k2 : e->top.max_k2;
  if (e->buf_pad / 2 > k2) k2 = e->buf_pad / 2;
  size_t xf = e->bot.bf16 ? (e->max_batch * k2 + 15) / 16 * 16 : 0;
  size_t floats = zf + 2 * bf + vf + 2 * xf + 16;
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
  s->xb2 = s->xb + xf;
  if (e->nphase) {
    s->claim = calloc(e->nclaim, sizeof *s->claim);
    s->done = calloc(e->nphase, sizeof *s->done);
    if (!s->claim || !s->done) {
      scratch_release(s);
      return mr_err_set(err, MR_ENOMEM, "cpu engine: out of memory for a scratch");
    }
  }
  *out = s;
  return 0;
}

static void scratch_release(mr_scratch_t *s) {
  if (!s) return;
  free(s->claim);
  free(s->done);
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
                    s->z, e->ldz, 1, s->xb, s->xb2);
  if (lookups)
    mr__cpu_interact_run(&e->ix, &e->tables, e->k, m, ids, nt, s->z, e->ldz,
                         s->vec, !mlps);
  if (!mlps) {
    for (size_t i = 0; i < m; i++) logits[i] = s->z[i * e->ldz + e->ix.xw];
    return;
  }
  const float *y = mr__cpu_mlp_run(&e->top, e->k, m, s->z, e->ldz, s->ping,
                                   s->pong, NULL, 0, 0, s->xb, s->xb2);
  copy_logits(e, y, m, logits);
}

/* ---- a chunk shared by the pool's threads ---- */

typedef struct shared_run {
  const cpu_engine_t *e;
  mr_scratch_t *s; /* the caller's: common buffers and the phases' state */
  size_t m;
  const float *dense;
  const int64_t *ids;
  float *logits;
  size_t slices; /* > 0: split by samples into this many slices */
} shared_run_t;

/* What one thread carries through the phases. */
typedef struct thread_ctx {
  const shared_run_t *r;
  mr_scratch_t *own; /* this thread's scratch (its bf16 input buffer) */
  const mr_cpu_mlp_t *mlp;
  size_t layer;
  const float *x;
  float *y;
  size_t ldx, ldy;
  int relu;
  int prepped; /* the layer's input converted into own->xb */
} thread_ctx_t;

static void slice_chunk(void *c_, size_t c) {
  thread_ctx_t *tc = c_;
  const shared_run_t *r = tc->r;
  const cpu_engine_t *e = r->e;
  size_t b = r->m * c / r->slices, n = r->m * (c + 1) / r->slices - b;
  run_chunk(e, tc->own, n, r->dense ? r->dense + b * e->num_dense : NULL,
            r->ids + b * e->num_tables, r->logits + b);
}

static void panel_chunk(void *c_, size_t c) {
  thread_ctx_t *tc = c_;
  const cpu_engine_t *e = tc->r->e;
  const mr_cpu_mlp_t *mlp = tc->mlp;
  if (!tc->prepped) {
    mr__cpu_mlp_layer_prep(mlp, e->k, tc->layer, tc->r->m, tc->x, tc->ldx, tc->own->xb);
    tc->prepped = 1;
  }
  size_t np = mlp->layers[tc->layer].np, p0 = c * mlp->group;
  size_t p1 = p0 + mlp->group < np ? p0 + mlp->group : np;
  mr__cpu_mlp_layer_panels(mlp, e->k, tc->layer, tc->r->m, tc->x, tc->ldx, tc->y,
                           tc->ldy, tc->relu, p0, p1, tc->own->xb);
}

static void interact_chunk(void *c_, size_t c) {
  (void)c;
  thread_ctx_t *tc = c_;
  const shared_run_t *r = tc->r;
  const cpu_engine_t *e = r->e;
  mr__cpu_interact_run(&e->ix, &e->tables, e->k, r->m, r->ids, e->num_tables,
                       r->s->z, e->ldz, r->s->vec, e->stage == MR_STAGE_LOOKUP);
}

/* Every layer of mlp as one phase each, its panel groups the chunks. */
static void shared_mlp(thread_ctx_t *tc, const mr_cpu_mlp_t *mlp,
                       const float *in, size_t ldin, float *out, size_t ldout,
                       int relu_last, size_t *phase, size_t *claim, size_t t,
                       size_t T) {
  mr_scratch_t *s = tc->r->s;
  for (size_t i = 0; i < mlp->num; i++) {
    tc->mlp = mlp;
    tc->layer = i;
    tc->prepped = 0;
    mr__cpu_mlp_route(mlp, i, in, ldin, s->ping, s->pong, out, ldout, &tc->x,
                      &tc->ldx, &tc->y, &tc->ldy);
    tc->relu = i + 1 < mlp->num || relu_last;
    size_t n = (mlp->layers[i].np + mlp->group - 1) / mlp->group;
    mr_cpu_phase_t ph = {s->claim + *claim, s->done + *phase, n};
    mr__cpu_phase_run(&ph, t, T, panel_chunk, tc);
    *claim += n;
    *phase += 1;
  }
}

static void shared_task(void *arg, size_t t, size_t T) {
  const shared_run_t *r = arg;
  const cpu_engine_t *e = r->e;
  thread_ctx_t tc = {.r = r, .own = t == 0 ? r->s : e->wscr[t - 1]};
  mr_scratch_t *s = r->s;
  if (r->slices) {
    mr_cpu_phase_t ph = {s->claim, s->done, r->slices};
    mr__cpu_phase_run(&ph, t, T, slice_chunk, &tc);
    return;
  }
  /* Few samples: every layer's panel groups shared; the gather and dots
   * one chunk (the caller's own, unless it is late). */
  const int lookups = e->stage != MR_STAGE_MLP, mlps = e->stage != MR_STAGE_LOOKUP;
  size_t phase = 0, claim = 0;
  if (t == 0 && lookups) {
    size_t first = r->m < e->tables.prefetch_dist ? r->m : e->tables.prefetch_dist;
    for (size_t i = 0; i < first; i++)
      mr__cpu_lookup_prefetch(&e->tables, r->ids + i * e->num_tables);
  }
  if (e->bot.num && mlps)
    shared_mlp(&tc, &e->bot, r->dense, e->num_dense, s->z, e->ldz, 1, &phase,
               &claim, t, T);
  if (lookups) {
    mr_cpu_phase_t ph = {s->claim + claim, s->done + phase, 1};
    mr__cpu_phase_run(&ph, t, T, interact_chunk, &tc);
    claim += 1;
    phase += 1;
  }
  if (mlps)
    shared_mlp(&tc, &e->top, s->z, e->ldz, NULL, 0, 0, &phase, &claim, t, T);
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
    if (e->pool && s->claim) {
      size_t T = mr__cpu_pool_threads(e->pool);
      /* Slices of at least ROWS_PER_THREAD_MIN samples never take the
       * one-sample path, so the split does not change the logits. */
      size_t slices = m >= ROWS_PER_THREAD_MIN * T ? m / ROWS_PER_THREAD_MIN : 0;
      shared_run_t r = {e, s, m, d, id, logits + off, slices};
      for (size_t i = 0; i < e->nclaim; i++) atomic_store_explicit(&s->claim[i], 0, memory_order_relaxed);
      for (size_t i = 0; i < e->nphase; i++) atomic_store_explicit(&s->done[i], 0, memory_order_relaxed);
      if (mr__cpu_pool_run(e->pool, shared_task, &r) == 0) {
        if (!slices) {
          if (e->stage == MR_STAGE_LOOKUP)
            for (size_t i = 0; i < m; i++) logits[off + i] = s->z[i * e->ldz + e->ix.xw];
          else
            copy_logits(e, e->top.num % 2 ? s->ping : s->pong, m, logits + off);
        }
        continue;
      }
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
