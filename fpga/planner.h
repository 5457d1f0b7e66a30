/* The MicroRec planner (DESIGN.md, "Planner"): which one-hot tables become
 * Cartesian products, and which bank of a target each table lives in.
 *
 * Objective, lexicographic, within a budget of extra bytes for products:
 *   MR_PLAN_MIN_DRAM (default): fewest rounds on the busiest off-chip bank
 *     (the latency of the lookup stage), then fewest DRAM lookups per
 *     sample, then fewest extra bytes, then fewest tables.
 *   MR_PLAN_MIN_TABLES: fewest rounds, then fewest tables (lookups of any
 *     kind, on-chip included: the paper's count), then fewest extra bytes,
 *     then fewest DRAM lookups.
 * Small tables go on-chip where they fit (on-chip lookups are not rounds);
 * tables too large for any free bank are split by columns across banks.
 * The search: the paper's greedy (merge the two smallest tables) and an
 * off-chip greedy as starting points, then a depth-first branch and bound
 * over the affordable products of equal-shaped table classes, bounded by a
 * node count so that it is deterministic and quick.
 *
 * Threads: mr_plan_build has no shared state; call it from any thread. */
#ifndef MR_PLANNER_H
#define MR_PLANNER_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"
#include "fpga/model.h"
#include "fpga/modelgen.h"
#include "fpga/plan.h"
#include "fpga/target.h"

/* What the planner needs to know of one logical table. */
typedef struct mr_plan_tin {
  uint64_t rows;
  size_t dim;
  size_t elem_bytes; /* bytes of one stored element: 4 for fp32 */
  int pooled;        /* multi-hot (pooled) feature: never combined */
} mr_plan_tin_t;

/* The model's tables; owns `tables` when filled by mr_plan_input_from_*. */
typedef struct mr_plan_input {
  size_t num_tables;
  mr_plan_tin_t *tables;
} mr_plan_input_t;

/* From a loaded model: every table one-hot, fp32 (as the engine stores). */
int mr_plan_input_from_model(mr_plan_input_t *in, const mr_model_t *m,
                             mr_err_t *err);
/* From a generator spec (the presets at full size without writing them). */
int mr_plan_input_from_spec(mr_plan_input_t *in, const mr_gen_spec_t *s,
                            mr_err_t *err);
void mr_plan_input_free(mr_plan_input_t *in);

typedef enum mr_plan_objective {
  MR_PLAN_MIN_DRAM = 0,
  MR_PLAN_MIN_TABLES = 1,
} mr_plan_objective_t;

#define MR_PLAN_DEFAULT_BUDGET 0.05
#define MR_PLAN_DEFAULT_NODES 20000

typedef struct mr_plan_opts {
  double budget; /* extra bytes for products, as a fraction of the
                    tables' bytes; < 0 = MR_PLAN_DEFAULT_BUDGET */
  mr_plan_objective_t objective;
  int no_products;  /* place the tables, combine none */
  size_t max_nodes; /* search effort; 0 = MR_PLAN_DEFAULT_NODES */
} mr_plan_opts_t;

/* Defaults: budget 5%, MR_PLAN_MIN_DRAM, products on. */
void mr_plan_opts_default(mr_plan_opts_t *o);

/* Plans the tables of in for target t (opts NULL = defaults) into *out,
 * which the caller frees with mr_plan_free. Deterministic: the same input
 * gives the same plan. Errors: MR_EINVAL for a bad input or budget,
 * MR_ENOTSUP when the tables cannot fit the target, MR_ENOMEM. */
int mr_plan_build(mr_plan_t *out, const mr_plan_input_t *in,
                  const mr_target_t *t, const mr_plan_opts_t *opts,
                  mr_err_t *err);

/* One call for an engine: plans model m for the target called target. */
int mr_plan_for_model(mr_plan_t *out, const mr_model_t *m, const char *target,
                      const mr_plan_opts_t *opts, mr_err_t *err);

#endif
