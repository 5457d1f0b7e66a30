/* The planner's input and options (fpga/planner.h): what it needs to know of
 * a model's tables, from a loaded model or from a generator spec. */
#include <stdlib.h>
#include <string.h>

#include "fpga/planner.h"

int mr_plan_input_from_model(mr_plan_input_t *in, const mr_model_t *m,
                             mr_err_t *err) {
  if (!in || !m)
    return mr_err_set(err, MR_EINVAL, "plan input: NULL %s",
                      in ? "model" : "input");
  memset(in, 0, sizeof *in);
  if (m->num_tables == 0) return 0;
  in->tables = calloc(m->num_tables, sizeof *in->tables);
  if (!in->tables)
    return mr_err_set(err, MR_ENOMEM,
                      "plan input: out of memory for %zu tables",
                      m->num_tables);
  in->num_tables = m->num_tables;
  for (size_t k = 0; k < m->num_tables; k++) {
    in->tables[k].rows = m->tables[k].rows;
    in->tables[k].dim = m->tables[k].dim;
    in->tables[k].elem_bytes = sizeof(float);
  }
  return 0;
}

int mr_plan_input_from_spec(mr_plan_input_t *in, const mr_gen_spec_t *s,
                            mr_err_t *err) {
  if (!in || !s)
    return mr_err_set(err, MR_EINVAL, "plan input: NULL %s",
                      in ? "spec" : "input");
  memset(in, 0, sizeof *in);
  if (s->num_tables > MR_GEN_MAX_TABLES)
    return mr_err_set(err, MR_EINVAL,
                      "plan input: spec has %zu tables, at most %d",
                      s->num_tables, MR_GEN_MAX_TABLES);
  if (s->num_tables == 0) return 0;
  in->tables = calloc(s->num_tables, sizeof *in->tables);
  if (!in->tables)
    return mr_err_set(err, MR_ENOMEM,
                      "plan input: out of memory for %zu tables",
                      s->num_tables);
  in->num_tables = s->num_tables;
  for (size_t k = 0; k < s->num_tables; k++) {
    in->tables[k].rows = s->rows[k];
    in->tables[k].dim = s->dims[k];
    in->tables[k].elem_bytes = sizeof(float);
  }
  return 0;
}

void mr_plan_input_free(mr_plan_input_t *in) {
  if (!in) return;
  free(in->tables);
  memset(in, 0, sizeof *in);
}

void mr_plan_opts_default(mr_plan_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->budget = MR_PLAN_DEFAULT_BUDGET;
  o->objective = MR_PLAN_MIN_DRAM;
}
