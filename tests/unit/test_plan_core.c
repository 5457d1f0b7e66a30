/* The plan basics: the identity plan and the checks every plan passes
 * before an engine builds tables from it. */
#include "fpga/plan.h"
#include "tests/unit/testutil.h"

static float dummy[64];

/* Three tables: 4 x 2, 3 x 3, 5 x 4. */
static void three_tables(mr_model_t *m, mr_table_t *t) {
  t[0] = (mr_table_t){.rows = 4, .dim = 2, .data = dummy};
  t[1] = (mr_table_t){.rows = 3, .dim = 3, .data = dummy};
  t[2] = (mr_table_t){.rows = 5, .dim = 4, .data = dummy};
  *m = (mr_model_t){.interaction = MR_INTERACT_CAT, .num_tables = 3, .tables = t};
}

static mr_plan_table_t tab(size_t nf, size_t f0, size_t f1, size_t f2,
                           uint64_t rows, size_t dim, size_t cb, size_t ce) {
  return (mr_plan_table_t){.num_factors = nf, .factors = {f0, f1, f2},
                           .rows = rows, .dim = dim, .col_begin = cb,
                           .col_end = ce};
}

static int check(mr_plan_table_t *tabs, size_t n, mr_err_t *err) {
  mr_model_t m;
  mr_table_t t[3];
  three_tables(&m, t);
  mr_plan_t p = {.num_logical = 3, .num_tables = n, .tables = tabs};
  return mr_plan_check(&p, &m, err);
}

Test(plan_core, identity_has_one_table_per_logical_table) {
  mr_model_t m;
  mr_table_t t[3];
  three_tables(&m, t);
  mr_plan_t p;
  mr_err_t err = {0};
  cr_assert_eq(mr_plan_identity(&p, &m, &err), 0, "%s", err.msg);
  cr_assert_eq(p.num_logical, 3);
  cr_assert_eq(p.num_tables, 3);
  for (size_t k = 0; k < 3; k++) {
    cr_assert_eq(p.tables[k].num_factors, 1);
    cr_assert_eq(p.tables[k].factors[0], k);
    cr_assert_eq(p.tables[k].rows, t[k].rows);
    cr_assert_eq(p.tables[k].dim, t[k].dim);
    cr_assert_eq(p.tables[k].col_begin, 0);
    cr_assert_eq(p.tables[k].col_end, t[k].dim);
  }
  uint64_t bytes = (4 * 2 + 3 * 3 + 5 * 4) * sizeof(float);
  cr_assert_eq(p.base_bytes, bytes);
  cr_assert_eq(p.plan_bytes, bytes);
  cr_assert_eq(p.num_banks, 1);
  cr_assert_eq(p.banks[0].bytes, bytes);
  cr_assert_eq(p.lookups_per_sample, 3);
  cr_assert_eq(mr_plan_check(&p, &m, &err), 0, "%s", err.msg);
  mr_plan_free(&p);
  cr_assert_null(p.tables);
  mr_plan_free(&p); /* twice is harmless */
}

Test(plan_core, accepts_products_and_column_splits) {
  mr_err_t err = {0};
  mr_plan_table_t a[] = {tab(3, 2, 0, 1, 60, 9, 0, 9)};
  cr_assert_eq(check(a, 1, &err), 0, "%s", err.msg);
  mr_plan_table_t b[] = {tab(2, 0, 1, 0, 12, 5, 0, 3), tab(2, 0, 1, 0, 12, 5, 3, 5),
                         tab(1, 2, 0, 0, 5, 4, 0, 4)};
  cr_assert_eq(check(b, 3, &err), 0, "%s", err.msg);
}

Test(plan_core, rejects_a_table_covered_twice) {
  mr_err_t err = {0};
  mr_plan_table_t a[] = {tab(2, 0, 1, 0, 12, 5, 0, 5), tab(1, 1, 0, 0, 3, 3, 0, 3),
                         tab(1, 2, 0, 0, 5, 4, 0, 4)};
  cr_assert_eq(check(a, 3, &err), MR_EINVAL);
  cr_assert_str_eq(err.msg, "plan: column 0 of table 1 is held by 2 physical "
                            "tables, expected exactly 1");
}

Test(plan_core, rejects_missing_columns) {
  mr_err_t err = {0};
  /* Table 2 split as [0, 1) and [2, 4): column 1 is nowhere. */
  mr_plan_table_t a[] = {tab(2, 0, 1, 0, 12, 5, 0, 5), tab(1, 2, 0, 0, 5, 4, 0, 1),
                         tab(1, 2, 0, 0, 5, 4, 2, 4)};
  cr_assert_eq(check(a, 3, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "column 1 of table 2 is held by 0"), "%s", err.msg);
  /* A logical table left out entirely. */
  mr_plan_table_t b[] = {tab(2, 0, 1, 0, 12, 5, 0, 5)};
  cr_assert_eq(check(b, 1, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "table 2 is held by 0"), "%s", err.msg);
}

Test(plan_core, rejects_inconsistent_tables) {
  mr_err_t err = {0};
  mr_plan_table_t rows[] = {tab(3, 0, 1, 2, 59, 9, 0, 9)};
  cr_assert_eq(check(rows, 1, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "rows 59, the factors' rows multiply to 60"), "%s", err.msg);
  mr_plan_table_t dim[] = {tab(3, 0, 1, 2, 60, 8, 0, 8)};
  cr_assert_eq(check(dim, 1, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "dim 8"), "%s", err.msg);
  mr_plan_table_t range[] = {tab(1, 3, 0, 0, 1, 1, 0, 1)};
  cr_assert_eq(check(range, 1, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "factor 0 is table 3"), "%s", err.msg);
  mr_plan_table_t dup[] = {tab(2, 1, 1, 0, 9, 6, 0, 6)};
  cr_assert_eq(check(dup, 1, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "appears twice"), "%s", err.msg);
  mr_plan_table_t cols[] = {tab(3, 0, 1, 2, 60, 9, 4, 10)};
  cr_assert_eq(check(cols, 1, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "columns [4, 10)"), "%s", err.msg);
  mr_plan_table_t nf[] = {tab(0, 0, 0, 0, 1, 0, 0, 0)};
  cr_assert_eq(check(nf, 1, &err), MR_EINVAL);
}

Test(plan_core, rejects_a_plan_for_another_model) {
  mr_model_t m;
  mr_table_t t[3];
  three_tables(&m, t);
  mr_plan_t p;
  cr_assert_eq(mr_plan_identity(&p, &m, NULL), 0);
  m.num_tables = 2;
  mr_err_t err = {0};
  cr_assert_eq(mr_plan_check(&p, &m, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "3 logical tables, the model has 2"), "%s", err.msg);
  mr_plan_free(&p);
}
