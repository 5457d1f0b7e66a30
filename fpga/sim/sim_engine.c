/* The `fpga-sim` backend (DESIGN.md, "Engine"): the HLS kernel's own C++
 * source (fpga/kernel/, compiled for the host) run in-process on the bank
 * and init images the card would be given. Slow, but the hardware's
 * dataflow and arithmetic exactly. The engine is read-only after open;
 * each scratch holds one thread's kernel streams, so runs on different
 * scratches may go on in parallel. */
#include <stdlib.h>
#include <string.h>

#include "fpga/engine.h"
#include "fpga/kernel/microrec_rt.h"
#include "fpga/kernel_image.h"

typedef struct sim_engine {
  mr_engine_t base; /* first: the generic layer's view */
  mr_kinfo_t ki;
  mr_kimage_t img;
  size_t max_batch;
} sim_engine_t;

typedef struct sim_scratch {
  mr_kwork_t *work;
  uint32_t *ids; /* max_batch x num_tables */
  float *out;    /* max_batch x {logit, score} */
} sim_scratch_t;

static void sim_close(mr_engine_t *e_) {
  sim_engine_t *e = (sim_engine_t *)e_;
  if (!e) return;
  mr_kimage_free(&e->img);
  mr_kinfo_free(&e->ki);
  free(e);
}

static int sim_open(mr_engine_t **out, const mr_model_t *m,
                    const mr_engine_opts_t *o, mr_err_t *err) {
  sim_engine_t *e = calloc(1, sizeof *e);
  if (!e) return mr_err_set(err, MR_ENOMEM, "fpga-sim engine: out of memory");
  mr_plan_t own;
  const mr_plan_t *plan;
  e->max_batch = o->max_batch ? o->max_batch : 256;
  int rc = mr_kplan_pick(&own, &plan, m, o, "fpga-sim", err);
  if (rc == 0) {
    rc = mr_kimage_build(&e->img, m, plan, err);
    if (rc < 0) mr_err_prefix(err, "fpga-sim engine");
  }
  mr_plan_free(&own);
  if (rc == 0 && e->max_batch > UINT32_MAX / 4)
    rc = mr_err_set(err, MR_EINVAL, "fpga-sim engine: max_batch %zu too large",
                    e->max_batch);
  if (rc == 0)
    rc = mr_kinfo_fill(&e->ki, m, "fpga-sim", e->max_batch, e->img.bytes,
                       err);
  if (rc < 0) {
    sim_close(&e->base);
    return rc;
  }
  *out = &e->base;
  return 0;
}

static const mr_engine_info_t *sim_info(const mr_engine_t *e) {
  return &((const sim_engine_t *)e)->ki.info;
}

static void sim_scratch_free(mr_engine_t *e, mr_scratch_t *s_) {
  (void)e;
  sim_scratch_t *s = (sim_scratch_t *)s_;
  if (!s) return;
  mr_kernel_rt_work_free(s->work);
  free(s->ids);
  free(s->out);
  free(s);
}

static int sim_scratch_new(mr_engine_t *e_, mr_scratch_t **out,
                           mr_err_t *err) {
  sim_engine_t *e = (sim_engine_t *)e_;
  const mr_kgeom_t *g = e->img.geom;
  sim_scratch_t *s = calloc(1, sizeof *s);
  if (s) {
    s->ids = malloc(e->max_batch * g->num_logical * sizeof *s->ids);
    s->out = malloc(e->max_batch * 2 * sizeof *s->out);
  }
  if (!s || !s->ids || !s->out ||
      mr_kernel_rt_work_new(g, (uint32_t)e->max_batch, &s->work) < 0) {
    sim_scratch_free(e_, (mr_scratch_t *)s);
    return mr_err_set(err, MR_ENOMEM,
                      "fpga-sim engine: out of memory for a scratch of %zu "
                      "samples",
                      e->max_batch);
  }
  *out = (mr_scratch_t *)s;
  return 0;
}

static int sim_run(mr_engine_t *e_, mr_scratch_t *s_, size_t n,
                   const float *dense, const int64_t *ids, float *logits,
                   mr_err_t *err) {
  sim_engine_t *e = (sim_engine_t *)e_;
  sim_scratch_t *s = (sim_scratch_t *)s_;
  const mr_kgeom_t *g = e->img.geom;
  size_t nt = g->num_logical;
  if (n > e->max_batch)
    return mr_err_set(err, MR_EINVAL,
                      "fpga-sim engine: %zu samples, at most %zu per run", n,
                      e->max_batch);
  /* The kernel takes 32-bit ids; the generic layer checked their range. */
  for (size_t i = 0; i < n * nt; i++) s->ids[i] = (uint32_t)ids[i];
  int rc = mr_kernel_rt_run(g, s->work, (const float *const *)e->img.banks,
                            e->img.init, s->ids, dense, s->out, (uint32_t)n);
  if (rc == MR_KRT_ENOMEM)
    return mr_err_set(err, MR_ENOMEM, "fpga-sim engine: out of memory");
  if (rc < 0)
    return mr_err_set(err, MR_EDEVICE,
                      "fpga-sim engine: a kernel stream was read more or "
                      "less often than written (a dataflow bug)");
  for (size_t i = 0; i < n; i++) logits[i] = s->out[2 * i];
  return 0;
}

const mr_backend_t mr_fpga_sim_backend = {
    .abi = MR_BACKEND_ABI,
    .name = "fpga-sim",
    .open = sim_open,
    .scratch_new = sim_scratch_new,
    .scratch_free = sim_scratch_free,
    .run = sim_run,
    .info = sim_info,
    .close = sim_close,
};
