/* The `fpga` backend (fpga/xrt/) against the real libxrt (Debian's), on
 * XRT's no-op device: XCL_EMULATION_MODE=noop with XILINX_XRT pointing at a
 * folder whose lib/ links Debian's libxrt_noop.so.2. The no-op device
 * allocates buffers in host memory, accepts any xclbin whose metadata XRT
 * can parse, and completes every kernel run without computing anything.
 * So these tests check the driver: device open, xclbin load, topology
 * checks (and wrong xclbins), one buffer per bank holding the model's rows,
 * kernel runs issued and completed, timeouts, errors. The scores it returns
 * are zeros; the kernel's arithmetic is tested by test_fpga_sim.c.
 *
 * The xclbins are written by fpga/xrt/xclbin_write.c for each plan. Tests
 * skip, saying so, when libxrt is not installed (make deps installs it). */
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fpga/engine.h"
#include "fpga/kernel_image.h"
#include "fpga/model.h"
#include "fpga/modelgen.h"
#include "fpga/planner.h"
#include "fpga/xrt/xclbin_file.h"
#include "fpga/xrt/xrt_engine.h"
#include "tests/unit/kernel_testplan.h"
#include <criterion/criterion.h>
#ifndef cr_fatal
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif
#include "tests/unit/testutil.h"

/* The folder holding Debian's libxrt libraries, found from the loaded
 * libxrt_coreutil itself; skips the test when XRT is not installed. */
static void xrt_libdir(char *buf, size_t len) {
  void *h = dlopen("libxrt_coreutil.so.2", RTLD_NOW | RTLD_GLOBAL);
  if (!h) cr_skip_test("libxrt is not installed (make deps): %s", dlerror());
  void *sym = dlsym(h, "xrtDeviceOpen");
  Dl_info info;
  cr_assert(sym && dladdr(sym, &info) && info.dli_fname);
  char path[4096];
  snprintf(path, sizeof path, "%s", info.dli_fname);
  snprintf(buf, len, "%s", dirname(path));
}

/* XILINX_XRT = a fresh folder with lib/libxrt_noop.so.2 -> Debian's. */
static void use_noop_device(char *root, size_t len) {
  char libdir[4096], lib[512], link[600], src[4300];
  xrt_libdir(libdir, sizeof libdir);
  snprintf(src, sizeof src, "%s/libxrt_noop.so.2", libdir);
  if (access(src, R_OK) != 0)
    cr_skip_test("XRT's no-op driver %s is missing", src);
  mr_test_tmpdir(root, len);
  snprintf(lib, sizeof lib, "%s/lib", root);
  cr_assert_eq(mkdir(lib, 0755), 0);
  snprintf(link, sizeof link, "%s/libxrt_noop.so.2", lib);
  cr_assert_eq(symlink(src, link), 0);
  setenv("XILINX_XRT", root, 1);
  setenv("XCL_EMULATION_MODE", "noop", 1);
  unsetenv("XRT_INI_PATH");
}

typedef struct fixture {
  char root[256];     /* XILINX_XRT */
  char model[4300];
  char xclbin[4300];
  mr_model_t m;
  mr_plan_t p;
  mr_kgeom_t *g;
} fixture_t;

static const char *const SPREAD_BANKS[] = {"HBM[3]", "DDR[1]", "URAM",
                                           "HBM[12]"};

/* A criteo-shaped model (rows capped at 20000, so the U280 planner puts
 * the largest tables in HBM and the rest in URAM), its plan, and an xclbin
 * for it. spread: a hand-made plan with products over HBM, DDR and URAM
 * instead of the planner's. */
static void setup_plan(fixture_t *f, const mr_xclbin_opts_t *xo, int spread) {
  memset(f, 0, sizeof *f);
  use_noop_device(f->root, sizeof f->root);
  snprintf(f->model, sizeof f->model, "%s/model.safetensors", f->root);
  snprintf(f->xclbin, sizeof f->xclbin, "%s/microrec.xclbin", f->root);
  mr_gen_spec_t spec;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_preset(&spec, "criteo", 20000, &err), 0, "%s",
               err.msg);
  spec.seed = 5;
  cr_assert_eq(mr_gen_write(&spec, f->model, NULL, NULL, &err), 0, "%s",
               err.msg);
  cr_assert_eq(mr_model_open(&f->m, f->model, &err), 0, "%s", err.msg);
  if (spread)
    mr_test_spread_plan(&f->p, &f->m, SPREAD_BANKS, 4, 1000);
  else
    cr_assert_eq(mr_plan_for_model(&f->p, &f->m, "u280", NULL, &err), 0,
                 "%s", err.msg);
  cr_assert_eq(mr_plan_check(&f->p, &f->m, &err), 0, "%s", err.msg);
  f->g = malloc(sizeof *f->g);
  cr_assert_eq(mr_kgeom_build(f->g, &f->m, &f->p, &err), 0, "%s", err.msg);
  cr_assert_eq(mr_xclbin_write_for_kernel(f->xclbin, f->g, xo, &err), 0,
               "%s", err.msg);
}

static void setup(fixture_t *f, const mr_xclbin_opts_t *xo) {
  setup_plan(f, xo, 0);
}

static void teardown(fixture_t *f) {
  free(f->g);
  mr_plan_free(&f->p);
  mr_model_close(&f->m);
  mr_ktest_rmtree(f->root);
}

static int open_fpga(fixture_t *f, mr_engine_t **e, mr_err_t *err) {
  mr_engine_opts_t o = {.backend = "fpga", .xclbin = f->xclbin,
                        .plan = &f->p, .max_batch = 16};
  *e = NULL;
  return mr_engine_open(e, &f->m, &o, err);
}

Test(xrt, xclbin_round_trips_through_the_reader) {
  fixture_t f;
  setup(&f, NULL);
  size_t len = 0;
  void *buf = mr_test_read_file(f.xclbin, &len);
  cr_assert_not_null(buf);
  mr_xclbin_info_t xi;
  mr_err_t err = {0};
  cr_assert_eq(mr_xclbin_parse(buf, len, "microrec_kernel", &xi, &err), 0,
               "%s", err.msg);
  cr_assert_geq(xi.cu, 0);
  cr_assert(xi.has_kernel_xml);
  cr_assert_str_eq(xi.cu_name, "microrec_kernel:microrec_kernel_1");
  cr_assert_eq(xi.num_mems, 34);
  int arg = 6, ports = 0;
  for (uint32_t k = 0; k < f.g->num_banks; k++) {
    if (f.g->bank_onchip[k]) continue;
    int used = 0;
    const char *tag = mr_xclbin_mem_tag(&xi, mr_xclbin_arg_mem(&xi, arg++),
                                        &used);
    char want[16];
    snprintf(want, sizeof want, "%s[%u]",
             f.g->bank_mem[k] == MR_KMEM_HBM ? "HBM" : "DDR",
             f.g->bank_index[k]);
    cr_assert_str_eq(tag, want, "bank%u", k);
    cr_assert(used);
    ports++;
  }
  cr_assert_gt(ports, 1, "the plan should spread tables over banks");
  free(buf);
  teardown(&f);
}

/* Every row of every table in the mapped bank buffers, as the model has it. */
static void check_banks(const mr_engine_t *e, const mr_model_t *m) {
  const mr_kgeom_t *g = mr_xrt_geom(e);
  size_t ibytes = 0;
  const float *init = mr_xrt_init_view(e, &ibytes);
  cr_assert_not_null(init);
  cr_assert_eq(ibytes, g->init_words * 4);
  size_t checked = 0, bad = 0;
  for (uint32_t l = 0; l < g->num_lookups; l++) {
    const mr_klookup_t *L = &g->lookups[l];
    size_t bytes = 0;
    const float *bank = g->bank_onchip[L->bank]
                            ? init + g->bank_init_off[L->bank]
                            : mr_xrt_bank_view(e, L->bank, &bytes);
    cr_assert_not_null(bank, "bank%u has no buffer", L->bank);
    if (!g->bank_onchip[L->bank])
      cr_assert_eq(bytes, g->bank_words[L->bank] * 4);
    for (uint64_t r = 0; r < L->rows; r++) {
      const float *row = bank + L->base + r * L->cols;
      uint32_t c = 0;
      for (uint32_t s = 0; s < L->num_segs; s++)
        for (uint32_t j = 0; j < L->seg_len[s]; j++, c++) {
          uint32_t pos = L->seg_dst[s] + j, off = 0, t = 0;
          while (pos >= off + m->tables[t].dim) off += m->tables[t++].dim;
          uint32_t f = 0;
          while (L->factor[f] != t) f++;
          uint64_t id = (r / L->mult[f]) % m->tables[t].rows;
          float want = m->tables[t].data[id * m->tables[t].dim + pos - off];
          if (row[c] != want && !bad++)
            cr_log_error("lookup %u row %llu column %u: %g, expected %g", l,
                         (unsigned long long)r, c, (double)row[c],
                         (double)want);
          checked++;
        }
    }
  }
  cr_assert_gt(checked, 0);
  cr_assert_eq(bad, 0, "%zu of %zu values differ from the model", bad,
               checked);
  /* Weights: transposed, then the bias. */
  const mr_klayer_t *L0 = &g->top[0];
  const mr_layer_t *t0 = &m->top[0];
  for (uint32_t o = 0; o < L0->out; o += 7)
    for (uint32_t i = 0; i < L0->in; i += 5)
      cr_assert(init[L0->w_off + (uint64_t)i * L0->out + o] ==
                t0->weight[(uint64_t)o * L0->in + i]);
  cr_assert(init[L0->b_off + 3] == t0->bias[3]);
}

static void load_and_run(int spread) {
  fixture_t f;
  setup_plan(&f, NULL, spread);
  mr_engine_t *e = NULL;
  mr_err_t err = {0};
  int rc = open_fpga(&f, &e, &err);
  cr_assert_eq(rc, 0, "%s", err.msg);
  const mr_engine_info_t *in = mr_engine_info(e);
  cr_assert_str_eq(in->backend, "fpga");
  cr_assert_eq(in->num_tables, 26);
  check_banks(e, &f.m);
  uint64_t started, completed;
  mr_xrt_counts(e, &started, &completed);
  cr_assert_eq(started, 2, "open runs LOAD and IDENT");
  cr_assert_eq(completed, 2);

  mr_scratch_t *s = NULL;
  cr_assert_eq(mr_scratch_new(e, &s, &err), 0, "%s", err.msg);
  size_t n = 40, nt = f.m.num_tables, nd = f.m.num_dense;
  int64_t *ids = calloc(n * nt, sizeof *ids);
  float *dense = calloc(n * nd, sizeof *dense);
  float *logits = malloc(n * sizeof *logits);
  for (size_t i = 0; i < n * nt; i++) ids[i] = (int64_t)(i % f.m.tables[i % nt].rows);
  for (size_t i = 0; i < n; i++) logits[i] = NAN;
  cr_assert_eq(mr_engine_run(e, s, n, dense, ids, logits, &err), 0, "%s",
               err.msg);
  mr_xrt_counts(e, &started, &completed);
  cr_assert_eq(started, 2 + 3, "40 samples in runs of 16: 3 kernel runs");
  cr_assert_eq(completed, started);
  /* The no-op device computes nothing: the score buffer stays zero. */
  for (size_t i = 0; i < n; i++) cr_assert(logits[i] == 0.0f);

  /* Out-of-range ids never reach the device. */
  ids[5] = (int64_t)f.m.tables[5].rows;
  cr_assert_eq(mr_engine_run(e, s, 1, dense, ids, logits, &err), MR_ERANGE);
  mr_xrt_counts(e, &started, &completed);
  cr_assert_eq(started, 5);
  free(ids);
  free(dense);
  free(logits);
  mr_scratch_free(e, s);
  mr_engine_close(e);
  teardown(&f);
}

Test(xrt, noop_device_runs_the_planners_u280_plan) { load_and_run(0); }

Test(xrt, noop_device_runs_a_plan_over_hbm_ddr_and_uram) {
  load_and_run(1);
}

Test(xrt, two_scratches_run_side_by_side) {
  fixture_t f;
  setup(&f, NULL);
  mr_engine_t *e = NULL;
  mr_err_t err = {0};
  cr_assert_eq(open_fpga(&f, &e, &err), 0, "%s", err.msg);
  mr_scratch_t *a = NULL, *b = NULL;
  cr_assert_eq(mr_scratch_new(e, &a, &err), 0, "%s", err.msg);
  cr_assert_eq(mr_scratch_new(e, &b, &err), 0, "%s", err.msg);
  int64_t ids[26] = {0};
  float dense[13] = {0}, logit = 1;
  cr_assert_eq(mr_engine_run(e, a, 1, dense, ids, &logit, &err), 0);
  cr_assert_eq(mr_engine_run(e, b, 1, dense, ids, &logit, &err), 0);
  cr_assert_eq(mr_engine_run(e, a, 1, dense, ids, &logit, &err), 0);
  uint64_t started, completed;
  mr_xrt_counts(e, &started, &completed);
  cr_assert_eq(completed, 5);
  mr_scratch_free(e, a);
  mr_scratch_free(e, b);
  mr_engine_close(e);
  teardown(&f);
}

static void expect_open_error(fixture_t *f, int code, const char *s1,
                              const char *s2) {
  mr_engine_t *e = NULL;
  mr_err_t err = {0};
  int rc = open_fpga(f, &e, &err);
  cr_assert_eq(rc, code, "rc %d (%s), expected %d: %s", rc, mr_err_name(rc),
               code, err.msg);
  cr_assert_null(e);
  cr_assert(strstr(err.msg, s1), "'%s' not in: %s", s1, err.msg);
  if (s2) cr_assert(strstr(err.msg, s2), "'%s' not in: %s", s2, err.msg);
}

Test(xrt, rejects_an_xclbin_with_a_bank_elsewhere) {
  fixture_t f;
  setup(&f, NULL);
  /* The first off-chip bank, wired to HBM[30] instead. */
  uint32_t k = 0;
  while (f.g->bank_onchip[k]) k++;
  char want[32];
  snprintf(want, sizeof want, "%s[%u]",
           f.g->bank_mem[k] == MR_KMEM_HBM ? "HBM" : "DDR",
           f.g->bank_index[k]);
  cr_assert(strcmp(want, "HBM[30]") != 0, "pick another memory for the test");
  mr_xclbin_opts_t xo = {.move_bank = (int)k, .move_to = "HBM[30]"};
  mr_err_t err = {0};
  cr_assert_eq(mr_xclbin_write_for_kernel(f.xclbin, f.g, &xo, &err), 0);
  expect_open_error(&f, MR_EINVAL, "to HBM[30], the plan puts that bank on",
                    want);
  teardown(&f);
}

Test(xrt, rejects_an_xclbin_without_a_memory_the_plan_needs) {
  fixture_t f;
  setup(&f, NULL);
  /* Rewrite it without the memory of the plan's first off-chip bank. */
  uint32_t k = 0;
  while (f.g->bank_onchip[k]) k++;
  char tag[32];
  snprintf(tag, sizeof tag, "%s[%u]",
           f.g->bank_mem[k] == MR_KMEM_HBM ? "HBM" : "DDR", f.g->bank_index[k]);
  mr_xclbin_opts_t xo = {.move_bank = -1, .drop_mem = tag};
  mr_err_t err = {0};
  cr_assert_eq(mr_xclbin_write_for_kernel(f.xclbin, f.g, &xo, &err), 0);
  expect_open_error(&f, MR_EINVAL, "has no memory", tag);
  teardown(&f);
}

Test(xrt, rejects_an_xclbin_without_the_kernel) {
  mr_xclbin_opts_t xo = {.move_bank = -1, .kernel = "vadd"};
  fixture_t f;
  setup(&f, &xo);
  expect_open_error(&f, MR_EINVAL, "kernel microrec_kernel not found", NULL);
  teardown(&f);
}

Test(xrt, rejects_a_file_that_is_not_an_xclbin) {
  fixture_t f;
  setup(&f, NULL);
  FILE *fp = fopen(f.xclbin, "wb");
  cr_assert_not_null(fp);
  for (int i = 0; i < 1000; i++) fputc(i & 0x7f, fp);
  fclose(fp);
  expect_open_error(&f, MR_EFORMAT, "not an xclbin", NULL);
  remove(f.xclbin);
  expect_open_error(&f, -ENOENT, "cannot read xclbin", NULL);
  teardown(&f);
}

Test(xrt, no_device_without_xilinx_xrt) {
  fixture_t f;
  setup(&f, NULL);
  unsetenv("XILINX_XRT");
  expect_open_error(&f, MR_EDEVICE, "no device", "XILINX_XRT is not set");
  teardown(&f);
}

Test(xrt, no_device_without_a_driver) {
  fixture_t f;
  setup(&f, NULL);
  /* A real card's driver is what XRT loads without an emulation mode;
   * this folder does not have it. */
  unsetenv("XCL_EMULATION_MODE");
  expect_open_error(&f, MR_EDEVICE, "no device", "libxrt_core.so.2");
  teardown(&f);
}

Test(xrt, asks_for_an_xclbin) {
  fixture_t f;
  setup(&f, NULL);
  mr_engine_opts_t o = {.backend = "fpga", .plan = &f.p};
  mr_engine_t *e = NULL;
  mr_err_t err = {0};
  cr_assert_eq(mr_engine_open(&e, &f.m, &o, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "no xclbin"), "%s", err.msg);
  teardown(&f);
}

/* A run still unfinished when the wait gives up: MR_ETIMEDOUT, and the
 * engine refuses further runs. The no-op device cannot time out (its wait
 * spins until the command completes), so the test injects the state XRT's
 * wait returns after a timeout; the run itself is real and completes. */
Test(xrt, a_run_that_does_not_finish_times_out) {
  fixture_t f;
  setup(&f, NULL);
  mr_engine_t *e = NULL;
  mr_err_t err = {0};
  cr_assert_eq(open_fpga(&f, &e, &err), 0, "%s", err.msg);
  mr_xrt_set_timeout(e, 100);
  mr_scratch_t *s = NULL;
  cr_assert_eq(mr_scratch_new(e, &s, &err), 0, "%s", err.msg);
  int64_t ids[26] = {0};
  float dense[13] = {0}, logit = 1;
  mr_xrt_inject_wait(e, MR_XRT_STATE_RUNNING);
  int rc = mr_engine_run(e, s, 1, dense, ids, &logit, &err);
  cr_assert_eq(rc, MR_ETIMEDOUT, "rc %d: %s", rc, err.msg);
  cr_assert(strstr(err.msg, "timed out after 100 ms (state RUNNING)"), "%s",
            err.msg);
  rc = mr_engine_run(e, s, 1, dense, ids, &logit, &err);
  cr_assert_eq(rc, MR_EDEVICE, "rc %d: %s", rc, err.msg);
  cr_assert(strstr(err.msg, "reopen"), "%s", err.msg);
  mr_scratch_free(e, s); /* waits for the run left on the device */
  mr_engine_close(e);
  teardown(&f);
}

Test(xrt, a_failed_run_is_a_device_error) {
  fixture_t f;
  setup(&f, NULL);
  mr_engine_t *e = NULL;
  mr_err_t err = {0};
  cr_assert_eq(open_fpga(&f, &e, &err), 0, "%s", err.msg);
  mr_scratch_t *s = NULL;
  cr_assert_eq(mr_scratch_new(e, &s, &err), 0, "%s", err.msg);
  int64_t ids[26] = {0};
  float dense[13] = {0}, logit = 1;
  mr_xrt_inject_wait(e, MR_XRT_STATE_ERROR);
  int rc = mr_engine_run(e, s, 1, dense, ids, &logit, &err);
  cr_assert_eq(rc, MR_EDEVICE, "rc %d: %s", rc, err.msg);
  cr_assert(strstr(err.msg, "failed (state ERROR)"), "%s", err.msg);
  mr_scratch_free(e, s);
  mr_engine_close(e);
  teardown(&f);
}

/* A kernel slower than usual (the no-op device completing each run after
 * Runtime.noop_completion_delay_us of xrt.ini) is waited for. */
Test(xrt, waits_for_a_slow_kernel, .timeout = 60) {
  fixture_t f;
  setup(&f, NULL);
  char ini[4300];
  snprintf(ini, sizeof ini, "%s/xrt.ini", f.root);
  FILE *fp = fopen(ini, "w");
  cr_assert_not_null(fp);
  fprintf(fp, "[Runtime]\nnoop_completion_delay_us=100000\n");
  fclose(fp);
  setenv("XRT_INI_PATH", ini, 1);
  mr_engine_t *e = NULL;
  mr_err_t err = {0};
  cr_assert_eq(open_fpga(&f, &e, &err), 0, "%s", err.msg);
  mr_scratch_t *s = NULL;
  cr_assert_eq(mr_scratch_new(e, &s, &err), 0, "%s", err.msg);
  int64_t ids[26] = {0};
  float dense[13] = {0}, logit = 1;
  cr_assert_eq(mr_engine_run(e, s, 1, dense, ids, &logit, &err), 0, "%s",
               err.msg);
  uint64_t started, completed;
  mr_xrt_counts(e, &started, &completed);
  cr_assert_eq(completed, 3);
  mr_scratch_free(e, s);
  mr_engine_close(e);
  teardown(&f);
}

/* An engine left open at exit: XRT's own exit-time cleanup would crash
 * (freeing buffers after its driver's tables); ours releases them first. */
Test(xrt, exits_cleanly_with_an_engine_open) {
#ifdef MR_SANITIZE
  cr_skip_test("leaks an engine on purpose, which LeakSanitizer reports");
#endif
  fixture_t f;
  setup(&f, NULL);
  mr_engine_t *e = NULL;
  mr_err_t err = {0};
  cr_assert_eq(open_fpga(&f, &e, &err), 0, "%s", err.msg);
  mr_scratch_t *s = NULL;
  cr_assert_eq(mr_scratch_new(e, &s, &err), 0, "%s", err.msg);
  mr_ktest_rmtree(f.root);
  /* Returning ends the test process with e and s open. */
}
