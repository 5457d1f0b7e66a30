/* Printing plans (fpga/plan_print.c): the JSON keys tools rely on, the
 * human table, and the counts a plan implies. */
#include <jansson.h>

#include "fpga/modelgen.h"
#include "fpga/plan_print.h"
#include "fpga/planner.h"
#include "tests/unit/testutil.h"

static mr_plan_t alibaba47_paper_plan(void) {
  mr_gen_spec_t spec;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_preset(&spec, "alibaba-47", 0, &err), 0);
  mr_plan_input_t in;
  cr_assert_eq(mr_plan_input_from_spec(&in, &spec, &err), 0);
  mr_plan_opts_t o;
  mr_plan_opts_default(&o);
  o.objective = MR_PLAN_MIN_TABLES;
  o.budget = 0.032;
  mr_plan_t p;
  cr_assert_eq(mr_plan_build(&p, &in, mr_target_find("u280"), &o, &err), 0,
               "%s", err.msg);
  mr_plan_input_free(&in);
  return p;
}

Test(plan_print, json_has_the_keys_tools_rely_on) {
  mr_plan_t p = alibaba47_paper_plan();
  mr_plan_stats_t st;
  mr_plan_stats(&p, &st);
  cr_assert_gt(st.products, 0);
  cr_assert_eq(st.tables, 47 - st.products); /* all pairs at this budget */
  json_t *j = mr_plan_to_json(&p);
  cr_assert_not_null(j);
  cr_assert_eq(json_integer_value(json_object_get(j, "tables")),
               (json_int_t)st.tables);
  cr_assert_eq(json_integer_value(json_object_get(j, "logical_tables")), 47);
  cr_assert_eq(json_integer_value(json_object_get(j, "lookups_per_sample")),
               p.lookups_per_sample);
  cr_assert_eq(json_integer_value(json_object_get(j, "max_dram_rounds")), 1);
  double ov = json_real_value(json_object_get(j, "memory_overhead"));
  cr_assert(ov > 0 && ov <= 0.032, "memory_overhead %g", ov);
  json_t *banks = json_object_get(j, "banks");
  cr_assert(json_is_array(banks));
  cr_assert_eq(json_array_size(banks), 35);
  json_t *b0 = json_array_get(banks, 0);
  cr_assert_str_eq(json_string_value(json_object_get(b0, "name")), "URAM");
  cr_assert_str_eq(json_string_value(json_object_get(b0, "kind")), "on-chip");
  size_t listed = 0;
  for (size_t b = 0; b < json_array_size(banks); b++)
    listed +=
        json_array_size(json_object_get(json_array_get(banks, b), "tables"));
  cr_assert_eq(listed, p.num_tables);
  cr_assert_eq(json_array_size(json_object_get(j, "plan")), p.num_tables);
  json_decref(j);
  mr_plan_free(&p);
}

static char *print_to_string(const mr_plan_t *p, int json) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  cr_assert_not_null(f);
  int rc = json ? mr_plan_print_json(f, p) : mr_plan_print(f, p);
  fclose(f);
  cr_assert_eq(rc, 0);
  return buf;
}

Test(plan_print, human_table_names_banks_products_and_summary) {
  mr_plan_t p = alibaba47_paper_plan();
  char *s = print_to_string(&p, 0);
  cr_assert(strstr(s, "plan for u280: 47 tables -> 41 after products"), "%s",
            s);
  cr_assert(strstr(s, "URAM"), "%s", s);
  cr_assert(strstr(s, "DDR[0]"), "%s", s);
  cr_assert(strstr(s, "x"), "products are shown as AxB: %s", s);
  cr_assert(strstr(s, "max DRAM rounds 1"), "%s", s);
  cr_assert(strstr(s, "memory overhead"), "%s", s);
  free(s);
  s = print_to_string(&p, 1);
  json_error_t je;
  json_t *j = json_loads(s, 0, &je);
  cr_assert_not_null(j, "printed JSON does not parse: %s", je.text);
  json_decref(j);
  free(s);
  mr_plan_free(&p);
}

Test(plan_print, identity_plan_prints_one_dram_bank) {
  mr_table_t tabs[3] = {{5, 2, NULL}, {6, 2, NULL}, {7, 2, NULL}};
  mr_model_t m = {.num_tables = 3, .tables = tabs};
  mr_plan_t p;
  mr_err_t err = {0};
  cr_assert_eq(mr_plan_identity(&p, &m, &err), 0);
  mr_plan_stats_t st;
  mr_plan_stats(&p, &st);
  cr_assert_eq(st.tables, 3);
  cr_assert_eq(st.products, 0);
  cr_assert_eq(st.onchip_lookups, 0, "the identity's bank is DRAM");
  char *s = print_to_string(&p, 0);
  cr_assert(strstr(s, "DRAM"), "%s", s);
  free(s);
  mr_plan_free(&p);
}
