/* Loading, warming and closing a served model (slot.h). */
#include "server/slot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpga/memcheck.h"
#include "fpga/model.h"
#include "server/clock.h"

void mr_slot_close(mr_slot_t *s) {
  if (!s) return;
  if (s->scratch) {
    for (unsigned i = 0; i < s->threads; i++)
      if (s->scratch[i]) mr_scratch_free(s->engine, s->scratch[i]);
    free(s->scratch);
  }
  if (s->engine) mr_engine_close(s->engine);
  free(s);
}

/* One run over max_batch all-zero samples (id 0 exists in every table):
 * faults the engine's pages and code in before the first request. */
static int warm_up(mr_slot_t *s, size_t n, mr_err_t *err) {
  const mr_engine_info_t *in = s->info;
  float *dense = calloc(n * (in->num_dense ? in->num_dense : 1), sizeof *dense);
  int64_t *ids = calloc(n * (in->num_tables ? in->num_tables : 1), sizeof *ids);
  float *logits = calloc(n, sizeof *logits);
  int rc = MR_ENOMEM;
  if (dense && ids && logits)
    rc = mr_engine_run(s->engine, s->scratch[0], n,
                       in->num_dense ? dense : NULL, ids, logits, err);
  else
    mr_err_set(err, MR_ENOMEM, "no memory for the warm-up batch");
  free(dense);
  free(ids);
  free(logits);
  return rc;
}

int mr_slot_open(mr_slot_t **out, const mr_slot_opts_t *o, mr_err_t *err) {
  *out = NULL;
  uint64_t t0 = mr_clock_ns();
  mr_slot_t *s = calloc(1, sizeof *s);
  if (!s) return mr_err_set(err, MR_ENOMEM, "no memory for a model slot");
  snprintf(s->path, sizeof s->path, "%s", o->path);
  s->threads = o->threads ? o->threads : 1;

  mr_model_t model;
  int rc = mr_model_open(&model, o->path, err);
  if (rc) {
    mr_err_prefix(err, "loading model %s", o->path);
    free(s);
    return rc;
  }
  mr_engine_opts_t eo = {0};
  eo.backend = o->backend;
  eo.max_batch = o->max_batch;
  eo.no_products = o->no_products;
  eo.xclbin = o->xclbin;
  /* A model too large fails here with numbers, not in the OOM killer. */
  rc = mr_mem_check(&model, &eo, s->threads, o->path, NULL, err);
  if (rc) {
    mr_model_close(&model);
    free(s);
    return rc;
  }
  rc = mr_engine_open(&s->engine, &model, &eo, err);
  mr_model_close(&model);
  if (rc) {
    mr_err_prefix(err, "opening the %s engine for %s",
                  o->backend ? o->backend : "cpu", o->path);
    s->engine = NULL;
    mr_slot_close(s);
    return rc;
  }
  s->info = mr_engine_info(s->engine);
  s->scratch = calloc(s->threads, sizeof *s->scratch);
  if (!s->scratch) {
    mr_slot_close(s);
    return mr_err_set(err, MR_ENOMEM, "no memory for engine scratch");
  }
  for (unsigned i = 0; i < s->threads; i++) {
    rc = mr_scratch_new(s->engine, &s->scratch[i], err);
    if (rc) {
      mr_err_prefix(err, "engine scratch %u", i);
      mr_slot_close(s);
      return rc;
    }
  }
  rc = warm_up(s, o->max_batch ? o->max_batch : 1, err);
  if (rc) {
    mr_err_prefix(err, "warm-up run of %s", o->path);
    mr_slot_close(s);
    return rc;
  }
  s->load_ns = mr_clock_ns() - t0;
  *out = s;
  return 0;
}
