/* Private to the planner (fpga/plan*.c): a candidate plan as groups of
 * logical tables, its score, and the placement that evaluates it.
 *
 * plan_eval.c places a partition on the target and scores it; plan_search.c
 * looks for the best partition; plan.c turns the winner into a mr_plan_t.
 * All of it runs in the caller's thread on the caller's plan_ctx_t. */
#ifndef MR_PLAN_INTERNAL_H
#define MR_PLAN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/planner.h"

/* A group: one logical table, or the product of 2-3 of them. */

typedef struct plan_group {
  uint32_t nf;
  uint32_t f[MR_PLAN_MAX_FACTORS]; /* logical tables, ascending */
  uint64_t rows;
  uint64_t row_bytes;
  size_t dim;
  uint64_t bytes;
  uint64_t extra; /* bytes - the factors' own bytes */
} plan_group_t;

typedef struct plan_score {
  int ok;
  int R, D, T;
  uint64_t X;
} plan_score_t;

typedef struct plan_part {
  uint32_t group;
  int bank;
  int round;
  size_t c0, c1;
} plan_part_t;

typedef struct plan_bank {
  const mr_target_bank_t *g;
  int onchip;
} plan_bank_t;

typedef struct plan_key {
  uint64_t a, b;
  uint32_t c, idx;
} plan_key_t;

typedef struct plan_ctx {
  const mr_plan_tin_t *t;
  size_t n;
  uint64_t *tbytes; /* bytes of each logical table */
  const mr_target_t *target;
  plan_bank_t *banks;
  size_t nb, noff;
  uint64_t off_cap; /* bytes of all off-chip banks */
  uint64_t budget;
  mr_plan_objective_t obj;
  int L; /* at most this many groups fit on-chip */
  /* mr__plan_evaluate() scratch and its last placement */
  plan_key_t *keys;
  uint64_t *room;
  int *used;
  int *g_bank; /* per group: its on-chip bank, or -1 */
  plan_part_t *parts;
  size_t np, parts_cap;
} plan_ctx_t;

/* qsort order of plan_key_t: a, then b, then c, then idx. */
int mr__plan_key_cmp(const void *pa, const void *pb);

/* Negative, 0, positive as a is better, equal, worse than b under the
 * context's objective. */
int mr__plan_score_cmp(const plan_ctx_t *c, const plan_score_t *a,
                       const plan_score_t *b);

/* Fills g from factors f (any order; sorted into g). -1 if a size
 * overflows or the rows exceed what an int64 id can address. */
int mr__plan_group_make(const plan_ctx_t *c, const uint32_t *f, uint32_t nf,
                        plan_group_t *g);

/* Whether a and b may form one product: one-hot, same element size, at
 * most MR_PLAN_MAX_FACTORS factors together. */
int mr__plan_combinable(const plan_ctx_t *c, const plan_group_t *a,
                        const plan_group_t *b);

/* The product of groups a and b into out; -1 as mr__plan_group_make. */
int mr__plan_group_merge(const plan_ctx_t *c, const plan_group_t *a,
                         const plan_group_t *b, plan_group_t *out);

/* Places groups gs[0..n) and scores them into *s (s->ok = 0 if they do not
 * fit); the placement (g_bank, parts) stays in c until the next call. */
void mr__plan_evaluate(plan_ctx_t *c, const plan_group_t *gs, size_t n,
                       plan_score_t *s);

/* The best partition found for c under opts: *best_n groups written to
 * best_gs (room for c->n), its score in *best. 0 or MR_ENOMEM. */
int mr__plan_search(plan_ctx_t *c, const mr_plan_opts_t *o,
                    plan_group_t *best_gs, size_t *best_n, plan_score_t *best,
                    mr_err_t *err);

#endif
