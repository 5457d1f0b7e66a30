/* Fault injection: a pass-through engine backend that fails on schedule
 * (fault.h). */
#include "server/fault.h"

#include <stdatomic.h>
#include <stdlib.h>

typedef struct fault_engine {
  mr_engine_t hdr; /* first: the generic layer dispatches through it */
  mr_engine_t *inner;
  unsigned long every;
} fault_engine_t;

/* Shared by every wrapper, so a reload does not restart the schedule. */
static _Atomic unsigned long runs;

static fault_engine_t *self(const mr_engine_t *e) {
  return (fault_engine_t *)e;
}

static int fault_open(mr_engine_t **out, const mr_model_t *m,
                      const mr_engine_opts_t *o, mr_err_t *err) {
  (void)out, (void)m, (void)o;
  return mr_err_set(err, MR_ENOTSUP,
                    "the fault backend only wraps an open engine");
}

static int fault_scratch_new(mr_engine_t *e, mr_scratch_t **out,
                             mr_err_t *err) {
  return mr_scratch_new(self(e)->inner, out, err);
}

static void fault_scratch_free(mr_engine_t *e, mr_scratch_t *s) {
  mr_scratch_free(self(e)->inner, s);
}

static int fault_run(mr_engine_t *e, mr_scratch_t *s, size_t n,
                     const float *dense, const int64_t *ids, float *logits,
                     mr_err_t *err) {
  fault_engine_t *f = self(e);
  unsigned long k = atomic_fetch_add(&runs, 1) + 1;
  if (k % f->every == 0)
    return mr_err_set(err, MR_EDEVICE,
                      "injected engine fault (run %lu, MR_FAULT_ENGINE_EVERY"
                      "=%lu)",
                      k, f->every);
  /* The generic layer has checked the input and chunked it already. */
  return f->inner->backend->run(f->inner, s, n, dense, ids, logits, err);
}

static const mr_engine_info_t *fault_info(const mr_engine_t *e) {
  return mr_engine_info(self(e)->inner);
}

static void fault_close(mr_engine_t *e) {
  mr_engine_close(self(e)->inner);
  free(e);
}

static const mr_backend_t fault_backend = {
    .abi = MR_BACKEND_ABI,
    .name = "fault",
    .open = fault_open,
    .scratch_new = fault_scratch_new,
    .scratch_free = fault_scratch_free,
    .run = fault_run,
    .info = fault_info,
    .close = fault_close,
};

int mr_fault_wrap_engine(mr_engine_t **e, mr_err_t *err) {
  const char *v = getenv("MR_FAULT_ENGINE_EVERY");
  if (!v || !*v) return 0;
  char *end;
  unsigned long every = strtoul(v, &end, 10);
  if (*end || every == 0)
    return mr_err_set(err, MR_EINVAL,
                      "MR_FAULT_ENGINE_EVERY=%s; expected a positive integer",
                      v);
  fault_engine_t *f = calloc(1, sizeof *f);
  if (!f) return mr_err_set(err, MR_ENOMEM, "no memory for the fault engine");
  f->hdr.backend = &fault_backend;
  f->inner = *e;
  f->every = every;
  *e = &f->hdr;
  return 0;
}
