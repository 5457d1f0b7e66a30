/* The kernel's cycle model (fpga/cycle_model.h): each stage's formula on
 * geometries whose numbers can be worked out by hand, and the totals. */
#include <math.h>

#include "fpga/cycle_model.h"
#include "fpga/kernel_image.h"
#include "fpga/modelgen.h"
#include "fpga/planner.h"
#include "tests/unit/kernel_testplan.h"
#include <criterion/criterion.h>
#ifndef cr_fatal
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif
#include "tests/unit/testutil.h"

static mr_kshape_t shape;
static mr_kgeom_t geom;
static mr_cycle_report_t rep;

/* The preset's shape, spread over banks by the test plan. */
static void build(const char *preset, uint64_t max_rows,
                  const char *const *banks, size_t nbanks) {
  mr_gen_spec_t spec;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_preset(&spec, preset, max_rows, &err), 0);
  mr_kshape_from_spec(&shape, &spec);
  mr_plan_t p;
  mr_test_spread_plan(&p, &shape.m, banks, nbanks, 0);
  cr_assert_eq(mr_plan_check(&p, &shape.m, &err), 0, "%s", err.msg);
  cr_assert_eq(mr_kgeom_build(&geom, &shape.m, &p, &err), 0, "%s", err.msg);
  mr_plan_free(&p);
}

static double bank_words(uint32_t b) {
  double w = 0;
  for (uint32_t k = 0; k < geom.bank_count[b]; k++)
    w += geom.lookups[geom.bank_first[b] + k].cols;
  return w;
}

static const mr_cycle_stage_t *stage(const char *prefix) {
  for (size_t s = 0; s < rep.num_stages; s++)
    if (!strncmp(rep.stages[s].name, prefix, strlen(prefix)))
      return &rep.stages[s];
  cr_assert_fail("no stage %s", prefix);
  return NULL;
}

Test(cycle_model, lookup_stage_is_set_by_the_busiest_bank) {
  static const char *const banks[] = {"HBM[0]", "HBM[1]", "DDR[0]", "URAM"};
  build("criteo", 1000, banks, 4);
  mr_cycle_params_t p;
  mr_cycle_params_default(&p);
  mr_err_t err = {0};
  cr_assert_eq(mr_cycle_model(&geom, &p, &rep, &err), 0, "%s", err.msg);
  /* 250 ns at 200 MHz = 50 cycles; 32 reads in flight give 32/50 words
   * per cycle on HBM; DDR 60 cycles, 32/60; URAM one per cycle. */
  double want = 0, lat = 0;
  for (uint32_t b = 0; b < geom.num_banks; b++) {
    double w = bank_words(b), ii, l;
    if (geom.bank_onchip[b]) {
      ii = w;
      l = 3 + w;
    } else if (geom.bank_mem[b] == MR_KMEM_DDR) {
      ii = w / (32.0 / 60.0);
      l = 60 + ii;
    } else {
      ii = w / (32.0 / 50.0);
      l = 50 + ii;
    }
    want = fmax(want, ii);
    lat = fmax(lat, l);
  }
  cr_assert_float_eq(rep.lookup_ii, want, 1e-9);
  cr_assert_float_eq(rep.lookup_latency, lat, 1e-9);
  cr_assert_float_eq(stage("lookup")->ii, want, 1e-9);
  uint32_t rounds = 0;
  for (uint32_t b = 0; b < geom.num_banks; b++)
    if (!geom.bank_onchip[b] && geom.bank_count[b] > rounds)
      rounds = geom.bank_count[b];
  cr_assert_eq(rep.max_rounds, rounds);
}

Test(cycle_model, layers_cost_load_macs_and_emit) {
  static const char *const banks[] = {"HBM[0]"};
  build("criteo", 1000, banks, 1);
  mr_err_t err = {0};
  cr_assert_eq(mr_cycle_model(&geom, NULL, &rep, &err), 0, "%s", err.msg);
  for (uint32_t i = 0; i < geom.num_top; i++) {
    const mr_klayer_t *l = &geom.top[i];
    char name[32];
    snprintf(name, sizeof name, "top layer %u", i);
    double want = l->in + ceil((double)l->out / l->lanes) +
                  ceil((double)l->in * l->out / l->lanes) +
                  (i + 1 == geom.num_top ? 2 : l->out);
    cr_assert_float_eq(stage(name)->ii, want, 1e-9, "%s", name);
  }
  /* criteo: dot over 26 tables and the bottom output, 27 * 26 / 2 pairs. */
  cr_assert_float_eq(stage("interaction")->ii, 16 + 26 * 16 + 351, 1e-9);
  cr_assert_float_eq(stage("gather")->ii, 2.0 * 26 * 16, 1e-9);
  /* Doubling a layer's lanes halves its multiply-add cycles. */
  double before = stage("top layer 0")->ii;
  geom.top[0].lanes *= 2;
  cr_assert_eq(mr_cycle_model(&geom, NULL, &rep, &err), 0);
  double macs = (double)geom.top[0].in * geom.top[0].out;
  cr_assert_float_eq(before - stage("top layer 0")->ii,
                     macs / (geom.top[0].lanes / 2) - macs / geom.top[0].lanes +
                         ceil((double)geom.top[0].out / (geom.top[0].lanes / 2)) -
                         ceil((double)geom.top[0].out / geom.top[0].lanes),
                     1e-9);
}

Test(cycle_model, throughput_is_the_clock_over_the_slowest_stage) {
  static const char *const banks[] = {"HBM[0]", "HBM[1]"};
  build("alibaba-47", 5000, banks, 2);
  mr_cycle_params_t p;
  mr_cycle_params_default(&p);
  p.clock_mhz = 250;
  mr_err_t err = {0};
  cr_assert_eq(mr_cycle_model(&geom, &p, &rep, &err), 0, "%s", err.msg);
  double max = 0, sum = 0;
  for (size_t s = 0; s < rep.num_stages; s++) {
    max = fmax(max, rep.stages[s].ii);
    sum += rep.stages[s].latency;
  }
  cr_assert_float_eq(rep.ii, max, 1e-9);
  cr_assert_float_eq(rep.stages[rep.slowest].ii, max, 1e-9);
  cr_assert_float_eq(rep.samples_per_s, 250e6 / max, 1e-3);
  cr_assert_float_eq(rep.latency_cycles, sum, 1e-9);
  cr_assert_float_eq(rep.latency_us, sum / 250.0, 1e-9);
  /* cat interaction: a copy of the 352 embedding values. */
  cr_assert_float_eq(stage("interaction (cat)")->ii, 352, 1e-9);
}

Test(cycle_model, prints_stages_and_assumptions) {
  static const char *const banks[] = {"HBM[3]", "URAM"};
  build("criteo", 500, banks, 2);
  mr_err_t err = {0};
  cr_assert_eq(mr_cycle_model(&geom, NULL, &rep, &err), 0);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  cr_assert_eq(mr_cycle_print(f, &rep), 0);
  fclose(f);
  cr_assert(strstr(buf, "sets the throughput"), "%s", buf);
  cr_assert(strstr(buf, "HBM read 250 ns"), "%s", buf);
  cr_assert(strstr(buf, "200 MHz"), "%s", buf);
  cr_assert(strstr(buf, "not a measurement"), "%s", buf);
  free(buf);
}

Test(cycle_model, rejects_an_empty_geometry) {
  mr_err_t err = {0};
  memset(&geom, 0, sizeof geom);
  cr_assert_eq(mr_cycle_model(&geom, NULL, &rep, &err), MR_EINVAL);
  cr_assert_eq(mr_cycle_model(NULL, NULL, &rep, &err), MR_EINVAL);
}

/* The planner's plans for the paper's models, with and without products:
 * products never add rounds on the busiest bank. */
static void preset_rounds(const char *preset) {
  mr_gen_spec_t spec;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_preset(&spec, preset, 0, &err), 0);
  mr_kshape_from_spec(&shape, &spec);
  mr_plan_input_t in;
  cr_assert_eq(mr_plan_input_from_spec(&in, &spec, &err), 0, "%s", err.msg);
  uint32_t rounds[2];
  for (int np = 0; np < 2; np++) {
    mr_plan_opts_t o;
    mr_plan_opts_default(&o);
    o.no_products = np;
    mr_plan_t p;
    cr_assert_eq(mr_plan_build(&p, &in, mr_target_find("u280"), &o, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(mr_kgeom_build(&geom, &shape.m, &p, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(mr_cycle_model(&geom, NULL, &rep, &err), 0);
    rounds[np] = rep.max_rounds;
    cr_assert_gt(rep.samples_per_s, 0);
    mr_plan_free(&p);
  }
  mr_plan_input_free(&in);
  cr_assert_leq(rounds[0], rounds[1], "%s: %u rounds with products, %u "
                "without", preset, rounds[0], rounds[1]);
}

Test(cycle_model, alibaba_47_products_never_add_rounds) {
  preset_rounds("alibaba-47");
}

Test(cycle_model, alibaba_98_products_never_add_rounds) {
  preset_rounds("alibaba-98");
}
