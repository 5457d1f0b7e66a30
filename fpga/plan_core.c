/* The basics of a plan (fpga/plan.h): the identity plan, the consistency
 * check every consumer of a plan relies on, and freeing. The planner itself
 * (mr_plan_build) lives in plan.c. */
#include "fpga/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mr_plan_identity(mr_plan_t *p, const mr_model_t *m, mr_err_t *err) {
  if (!p || !m)
    return mr_err_set(err, MR_EINVAL, "plan identity: NULL %s",
                      p ? "model" : "plan");
  memset(p, 0, sizeof *p);
  size_t t = m->num_tables;
  if (t > 0 && !m->tables)
    return mr_err_set(err, MR_EINVAL,
                      "plan identity: model has %zu tables but no table array",
                      t);
  p->tables = t ? calloc(t, sizeof *p->tables) : NULL;
  p->banks = calloc(1, sizeof *p->banks);
  if ((t && !p->tables) || !p->banks) {
    mr_plan_free(p);
    return mr_err_set(err, MR_ENOMEM, "plan identity: out of memory for %zu tables", t);
  }
  p->num_logical = t;
  p->num_tables = t;
  p->num_banks = 1;
  uint64_t bytes = 0;
  for (size_t k = 0; k < t; k++) {
    mr_plan_table_t *pt = &p->tables[k];
    pt->num_factors = 1;
    pt->factors[0] = k;
    pt->rows = m->tables[k].rows;
    pt->dim = m->tables[k].dim;
    pt->col_begin = 0;
    pt->col_end = pt->dim;
    pt->bank = 0;
    pt->rounds = (int)k; /* one bank serves the tables one after another */
    bytes += (uint64_t)pt->rows * pt->dim * sizeof(float);
  }
  mr_plan_bank_t *b = &p->banks[0];
  snprintf(b->name, sizeof b->name, "DRAM");
  b->capacity = bytes;
  b->bytes = bytes;
  b->rounds = (int)t;
  p->base_bytes = bytes;
  p->plan_bytes = bytes;
  p->memory_overhead = 0.0;
  p->lookups_per_sample = (int)t;
  p->max_dram_rounds = (int)t;
  snprintf(p->target, sizeof p->target, "identity");
  return 0;
}

/* Marks the logical columns that physical table pt holds in cover (one
 * counter per logical column, tables laid out at off[]). */
static void plan_cover(const mr_plan_table_t *pt, const mr_model_t *m,
                       const size_t *off, unsigned *cover) {
  size_t pos = 0; /* start of factor f within the concatenated row */
  for (size_t f = 0; f < pt->num_factors; f++) {
    size_t dim = m->tables[pt->factors[f]].dim;
    size_t lo = pt->col_begin > pos ? pt->col_begin : pos;
    size_t hi = pt->col_end < pos + dim ? pt->col_end : pos + dim;
    for (size_t c = lo; c < hi; c++) cover[off[pt->factors[f]] + c - pos]++;
    pos += dim;
  }
}

int mr_plan_check(const mr_plan_t *p, const mr_model_t *m, mr_err_t *err) {
  if (!p || !m)
    return mr_err_set(err, MR_EINVAL, "plan check: NULL %s",
                      p ? "model" : "plan");
  size_t nl = m->num_tables;
  if (p->num_logical != nl)
    return mr_err_set(err, MR_EINVAL,
                      "plan: made for %zu logical tables, the model has %zu",
                      p->num_logical, nl);
  if (p->num_tables > 0 && !p->tables)
    return mr_err_set(err, MR_EINVAL, "plan: %zu tables but no table array",
                      p->num_tables);
  for (size_t i = 0; i < p->num_tables; i++) {
    const mr_plan_table_t *pt = &p->tables[i];
    if (pt->num_factors < 1 || pt->num_factors > MR_PLAN_MAX_FACTORS)
      return mr_err_set(err, MR_EINVAL,
                        "plan table %zu: %zu factors, expected 1 to %d", i,
                        pt->num_factors, MR_PLAN_MAX_FACTORS);
    uint64_t rows = 1;
    size_t dim = 0;
    for (size_t f = 0; f < pt->num_factors; f++) {
      size_t k = pt->factors[f];
      if (k >= nl)
        return mr_err_set(err, MR_EINVAL,
                          "plan table %zu: factor %zu is table %zu, the model "
                          "has tables [0, %zu)",
                          i, f, k, nl);
      for (size_t g = 0; g < f; g++)
        if (pt->factors[g] == k)
          return mr_err_set(err, MR_EINVAL,
                            "plan table %zu: table %zu appears twice among its "
                            "factors",
                            i, k);
      if (__builtin_mul_overflow(rows, (uint64_t)m->tables[k].rows, &rows))
        return mr_err_set(err, MR_EINVAL,
                          "plan table %zu: product of the factors' rows "
                          "overflows 64 bits",
                          i);
      dim += m->tables[k].dim;
    }
    if (pt->rows != rows)
      return mr_err_set(err, MR_EINVAL,
                        "plan table %zu: rows %llu, the factors' rows multiply "
                        "to %llu",
                        i, (unsigned long long)pt->rows,
                        (unsigned long long)rows);
    if (pt->dim != dim)
      return mr_err_set(err, MR_EINVAL,
                        "plan table %zu: dim %zu, the factors' dims add to %zu",
                        i, pt->dim, dim);
    if (pt->col_begin >= pt->col_end || pt->col_end > dim)
      return mr_err_set(err, MR_EINVAL,
                        "plan table %zu: columns [%zu, %zu), expected a "
                        "non-empty range within [0, %zu)",
                        i, pt->col_begin, pt->col_end, dim);
    if (p->num_banks > 0 && (pt->bank < 0 || (size_t)pt->bank >= p->num_banks))
      return mr_err_set(err, MR_EINVAL,
                        "plan table %zu: bank %d, the plan has banks [0, %zu)",
                        i, pt->bank, p->num_banks);
  }

  /* Exactly-once coverage of every logical column. */
  size_t *off = calloc(nl + 1, sizeof *off);
  if (!off) return mr_err_set(err, MR_ENOMEM, "plan check: out of memory");
  for (size_t k = 0; k < nl; k++) off[k + 1] = off[k] + m->tables[k].dim;
  unsigned *cover = calloc(off[nl] + 1, sizeof *cover);
  if (!cover) {
    free(off);
    return mr_err_set(err, MR_ENOMEM, "plan check: out of memory");
  }
  for (size_t i = 0; i < p->num_tables; i++)
    plan_cover(&p->tables[i], m, off, cover);
  int rc = 0;
  for (size_t k = 0; k < nl && rc == 0; k++)
    for (size_t c = 0; c < m->tables[k].dim; c++) {
      unsigned n = cover[off[k] + c];
      if (n != 1) {
        rc = mr_err_set(err, MR_EINVAL,
                        "plan: column %zu of table %zu is held by %u physical "
                        "tables, expected exactly 1",
                        c, k, n);
        break;
      }
    }
  free(cover);
  free(off);
  return rc;
}

void mr_plan_free(mr_plan_t *p) {
  if (!p) return;
  free(p->tables);
  free(p->banks);
  memset(p, 0, sizeof *p);
}
