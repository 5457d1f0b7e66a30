/* A hand-made plan that exercises everything the kernel's geometry has to
 * get right, independent of the planner: two- and three-way products, a
 * product split by columns across banks (one column run spanning two
 * factors), the last table split in halves, tables spread over the named
 * banks round-robin (an on-chip bank among them). Shared by the kernel
 * tests, with a helper to remove their temporary folders. */
#ifndef MR_KERNEL_TESTPLAN_H
#define MR_KERNEL_TESTPLAN_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpga/model.h"
#include "fpga/plan.h"

static inline void mr_test_add_table(mr_plan_t *p, const mr_model_t *m,
                                     const size_t *factors, size_t nf,
                                     size_t cb, size_t ce) {
  mr_plan_table_t *t = &p->tables[p->num_tables++];
  memset(t, 0, sizeof *t);
  t->num_factors = nf;
  t->rows = 1;
  for (size_t f = 0; f < nf; f++) {
    t->factors[f] = factors[f];
    t->rows *= m->tables[factors[f]].rows;
    t->dim += m->tables[factors[f]].dim;
  }
  t->col_begin = cb;
  t->col_end = ce ? ce : t->dim;
  size_t b = (p->num_tables - 1) % p->num_banks;
  t->bank = (int)b;
  t->rounds = p->banks[b].rounds++;
  p->banks[b].bytes += t->rows * (t->col_end - t->col_begin) * sizeof(float);
}

/* Fills p for m over nbanks banks named names[]. Products join
 * neighbouring tables while their rows multiply to at most max_product. */
static inline void mr_test_spread_plan(mr_plan_t *p, const mr_model_t *m,
                                       const char *const *names,
                                       size_t nbanks, uint64_t max_product) {
  size_t T = m->num_tables;
  memset(p, 0, sizeof *p);
  p->tables = calloc(2 * T + 2, sizeof *p->tables);
  p->banks = calloc(nbanks, sizeof *p->banks);
  p->num_banks = nbanks;
  p->num_logical = T;
  for (size_t b = 0; b < nbanks; b++) {
    snprintf(p->banks[b].name, sizeof p->banks[b].name, "%s", names[b]);
    p->banks[b].capacity = 1ull << 34;
  }
  int split_product = 1;
  for (size_t k = 0; k < T;) {
    uint64_t r0 = m->tables[k].rows;
    size_t f[3] = {k, k + 1, k + 2};
    if (k + 2 < T - 1 &&
        r0 * m->tables[k + 1].rows * m->tables[k + 2].rows <= max_product) {
      mr_test_add_table(p, m, f, 3, 0, 0);
      k += 3;
    } else if (k + 1 < T - 1 && r0 * m->tables[k + 1].rows <= max_product) {
      size_t dim = m->tables[k].dim + m->tables[k + 1].dim;
      if (split_product && m->tables[k].dim >= 2) {
        /* [0, d0 - 1) and [d0 - 1, dim): the second run spans both. */
        size_t cut = m->tables[k].dim - 1;
        mr_test_add_table(p, m, f, 2, 0, cut);
        mr_test_add_table(p, m, f, 2, cut, dim);
        split_product = 0;
      } else {
        mr_test_add_table(p, m, f, 2, 0, 0);
      }
      k += 2;
    } else if (k == T - 1 && m->tables[k].dim >= 2) {
      size_t half = m->tables[k].dim / 2;
      mr_test_add_table(p, m, f, 1, half, m->tables[k].dim);
      mr_test_add_table(p, m, f, 1, 0, half);
      k += 1;
    } else {
      mr_test_add_table(p, m, f, 1, 0, 0);
      k += 1;
    }
  }
  for (size_t i = 0; i < p->num_tables; i++)
    p->plan_bytes += p->tables[i].rows *
                     (p->tables[i].col_end - p->tables[i].col_begin) * 4;
  snprintf(p->target, sizeof p->target, "test");
}

static inline int mr_ktest_rm_(const char *path, const struct stat *st,
                                int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* rm -rf dir (a folder the test made with mr_test_tmpdir). */
static inline void mr_ktest_rmtree(const char *dir) {
  if (dir && !strncmp(dir, "/tmp/microrec-test-", 19))
    nftw(dir, mr_ktest_rm_, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
