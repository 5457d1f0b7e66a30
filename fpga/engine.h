/* The inference engine: one interface, several backends (DESIGN.md,
 * "Engine"). Lifecycle: mr_engine_open (copies and packs what it needs from
 * the model, which may be closed afterwards) -> any number of
 * mr_engine_run calls, from any threads, each thread with its own scratch ->
 * mr_engine_close once no run is in flight.
 *
 * A backend is a table of functions (mr_backend_t); adding one is adding a
 * table to the registry in engine.c, not new ifs. */
#ifndef MR_ENGINE_H
#define MR_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"
#include "fpga/model.h"
#include "fpga/plan.h"

#define MR_BACKEND_ABI 1

typedef struct mr_engine_opts {
  const char *backend;  /* "cpu" (default when NULL), "fpga-sim", "fpga" */
  size_t max_batch;     /* samples per internal chunk; 0 = 256 */
  int no_products;      /* planner: no Cartesian-product tables */
  const char *simd;     /* force "avx512", "avx2" or "scalar"; NULL = best */
  const char *xclbin;   /* fpga backend: path of the xclbin */
  const mr_plan_t *plan; /* use this plan (copied); NULL = the planner's for
                            the backend's target (identity if no_products) */
  /* cpu backend: number formats (NULL = "fp32"). "bf16": MLP weights and
   * activations rounded to bfloat16, sums in fp32 (AVX512_BF16 when the CPU
   * has it). "int8emb": embedding rows quantized to uint8 with an fp32 scale
   * and bias per row. "bf16-int8emb": both. Accuracy: fpga/cpu/README.md. */
  const char *precision;
  /* cpu backend: threads that share one run (0 or 1 = the calling thread
   * alone). The engine keeps intra_threads - 1 workers; a run that finds them
   * busy with another caller's run goes alone. Logits do not depend on it. */
  size_t intra_threads;
  /* Benchmarking only: MR_STAGE_LOOKUP runs the embedding gathers alone,
   * MR_STAGE_MLP the MLPs alone (logits are then meaningless); 0 = all. */
  int stage;
} mr_engine_opts_t;

enum { MR_STAGE_ALL = 0, MR_STAGE_LOOKUP = 1, MR_STAGE_MLP = 2 };

/* What callers need to know to validate requests and describe the model. */
typedef struct mr_engine_info {
  const char *backend;
  const char *simd;          /* kernel set in use */
  mr_interaction_t interaction;
  size_t num_dense;
  size_t num_tables;
  const uint64_t *table_rows;  /* num_tables entries */
  const size_t *table_dims;
  size_t num_bot, num_top;
  const size_t *bot_in, *bot_out, *top_in, *top_out;
  uint64_t param_bytes;      /* fp32 parameters of the model */
  uint64_t resident_bytes;   /* what the engine holds (tables incl. products) */
  size_t max_batch;
  const char *precision;     /* cpu: as opts.precision ("fp32" by default);
                                NULL for other backends */
  size_t intra_threads;      /* cpu: threads per run (>= 1); 0 elsewhere */
  size_t lookups;            /* cpu: rows read per sample (the plan's
                                physical tables); 0 elsewhere */
} mr_engine_info_t;

typedef struct mr_engine mr_engine_t;
typedef struct mr_scratch mr_scratch_t;

typedef struct mr_backend {
  int abi;  /* MR_BACKEND_ABI */
  const char *name;
  int (*open)(mr_engine_t **out, const mr_model_t *m,
              const mr_engine_opts_t *o, mr_err_t *err);
  int (*scratch_new)(mr_engine_t *e, mr_scratch_t **out, mr_err_t *err);
  void (*scratch_free)(mr_engine_t *e, mr_scratch_t *s);
  /* n samples of validated input -> n logits. */
  int (*run)(mr_engine_t *e, mr_scratch_t *s, size_t n, const float *dense,
             const int64_t *ids, float *logits, mr_err_t *err);
  const mr_engine_info_t *(*info)(const mr_engine_t *e);
  void (*close)(mr_engine_t *e);
} mr_backend_t;

/* Every engine starts with this header so the generic layer can dispatch. */
struct mr_engine {
  const mr_backend_t *backend;
};

/* Finds a backend by name; NULL if unknown. */
const mr_backend_t *mr_backend_find(const char *name);
/* Names of the backends built in, NULL-terminated. */
extern const char *const mr_backend_names[];

int mr_engine_open(mr_engine_t **out, const mr_model_t *m,
                   const mr_engine_opts_t *o, mr_err_t *err);
void mr_engine_close(mr_engine_t *e);
const mr_engine_info_t *mr_engine_info(const mr_engine_t *e);

/* Per-thread working memory sized at creation; runs allocate nothing. */
int mr_scratch_new(mr_engine_t *e, mr_scratch_t **out, mr_err_t *err);
void mr_scratch_free(mr_engine_t *e, mr_scratch_t *s);

/* Checks n samples' ids against their tables' rows (and dense values for
 * NaN/Inf). Returns 0 or MR_ERANGE / MR_EINVAL naming sample, table, id and
 * the valid range. */
int mr_engine_check(const mr_engine_t *e, size_t n, const float *dense,
                    const int64_t *ids, mr_err_t *err);

/* Scores n samples: dense is n * num_dense floats (may be NULL when
 * num_dense = 0), ids n * num_tables, logits receives n floats. Any n; the
 * engine works in chunks of max_batch. Checks input as mr_engine_check. */
int mr_engine_run(mr_engine_t *e, mr_scratch_t *s, size_t n,
                  const float *dense, const int64_t *ids, float *logits,
                  mr_err_t *err);

static inline float mr_sigmoid(float x) {
  return 1.0f / (1.0f + __builtin_expf(-x));
}

#endif
