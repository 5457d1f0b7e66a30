/* A MicroRec plan (DESIGN.md, "Planner"): how the model's logical embedding
 * tables become physical tables, and where each physical table lives.
 *
 * A physical table is one logical table or the Cartesian product of two or
 * three of them (its factors, in order): product row
 *     r = (a * rows(B) + b) * rows(C) + c
 * holds A[a] ++ B[b] ++ C[c], so one read replaces up to three. A physical
 * table may also hold only the columns [col_begin, col_end) of that row, when
 * a table too large for one bank is split by columns across banks; then the
 * same factors appear in several physical tables with disjoint column ranges
 * that together cover [0, dim).
 *
 * Ownership: a plan owns its arrays; mr_plan_free releases them. Plans are
 * immutable once built and may be shared between threads. */
#ifndef MR_PLAN_H
#define MR_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"
#include "fpga/model.h"

#define MR_PLAN_MAX_FACTORS 3

typedef struct mr_plan_table {
  size_t num_factors;                   /* 1 = plain, 2 or 3 = product */
  size_t factors[MR_PLAN_MAX_FACTORS];  /* logical table indices */
  uint64_t rows;                        /* product of the factors' rows */
  size_t dim;                           /* sum of the factors' dims */
  size_t col_begin, col_end;            /* columns held: [0, dim) unless split */
  int bank;                             /* index into the target's banks */
  int rounds;                           /* lookup round within its bank (0-based) */
} mr_plan_table_t;

/* The target's memory banks as the plan used them. */
typedef struct mr_plan_bank {
  char name[32];        /* "HBM[3]", "DDR[0]", "URAM", "DRAM" */
  int kind;             /* target-defined: on-chip, HBM, DDR, DRAM */
  uint64_t capacity;    /* bytes */
  uint64_t bytes;       /* bytes placed */
  int rounds;           /* lookups per sample served by this bank */
} mr_plan_bank_t;

typedef struct mr_plan {
  size_t num_logical;          /* tables of the model */
  size_t num_tables;           /* physical tables */
  mr_plan_table_t *tables;
  size_t num_banks;
  mr_plan_bank_t *banks;
  /* Summary (filled by the planner; the identity plan fills what it can). */
  uint64_t base_bytes;         /* logical tables' bytes */
  uint64_t plan_bytes;         /* physical tables' bytes */
  double memory_overhead;      /* plan_bytes / base_bytes - 1 */
  int lookups_per_sample;      /* DRAM (off-chip) reads per sample */
  int max_dram_rounds;         /* rounds on the slowest off-chip bank */
  char target[32];
} mr_plan_t;

/* One physical table per logical table, no products, one bank. */
int mr_plan_identity(mr_plan_t *p, const mr_model_t *m, mr_err_t *err);

/* Checks a plan against a model: factors in range, each logical table's
 * columns covered exactly once, rows and dims consistent. */
int mr_plan_check(const mr_plan_t *p, const mr_model_t *m, mr_err_t *err);

void mr_plan_free(mr_plan_t *p);

#endif
