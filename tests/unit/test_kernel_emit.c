/* The Vitis emitter (fpga/kernel_emit.h): the connectivity config maps each
 * port to the plan's bank, and the generated header drives the HLS kernel:
 * a small plan's header is compiled with g++ and C-simulated (hardware top
 * against the fpga-sim build, bit for bit), and the alibaba presets' headers
 * are written and compiled. Needs g++ and make (build-essential). */
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fpga/kernel_emit.h"
#include "fpga/kernel_image.h"
#include "fpga/model.h"
#include "fpga/modelgen.h"
#include "fpga/planner.h"
#include "tests/unit/kernel_testplan.h"
#include <criterion/criterion.h>
#ifndef cr_fatal
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif
#include "tests/unit/testutil.h"

/* The source tree: the first parent of the build directory (or the working
 * directory) holding fpga/kernel/Makefile. */
static int source_dir(char *buf, size_t len) {
  const char *starts[2] = {MR_BUILD_DIR, "."};
  for (int i = 0; i < 2; i++) {
    char dir[4096], probe[4200];
    if (!realpath(starts[i], dir)) continue;
    for (;;) {
      snprintf(probe, sizeof probe, "%s/fpga/kernel/Makefile", dir);
      if (access(probe, R_OK) == 0) {
        snprintf(buf, len, "%s", dir);
        return 1;
      }
      char *slash = strrchr(dir, '/');
      if (!slash || slash == dir) break;
      *slash = '\0';
    }
  }
  return 0;
}

/* Runs make in fpga/kernel; returns its exit status, output in out. */
static int kernel_make(const char *target, const char *plan_dir, char *out,
                       size_t len) {
  char src[4096], cmd[16384];
  if (!source_dir(src, sizeof src))
    cr_skip_test("fpga/kernel/Makefile not found from %s", MR_BUILD_DIR);
  snprintf(cmd, sizeof cmd,
           "env -u ASAN_OPTIONS -u UBSAN_OPTIONS -u LD_PRELOAD -u MAKEFLAGS "
           "-u MFLAGS make -s -C '%s/fpga/kernel' %s PLAN_DIR='%s' "
           "SAMPLES=50 2>&1",
           src, target, plan_dir);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p, "cannot run make");
  size_t n = fread(out, 1, len - 1, p);
  out[n] = '\0';
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *dir, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  size_t len = 0;
  char *s = mr_test_read_file(path, &len);
  cr_assert_not_null(s, "%s was not written", path);
  s = realloc(s, len + 1);
  s[len] = '\0';
  return s;
}

static void gen_model(const char *preset, uint64_t max_rows, char *dir,
                      size_t len, mr_model_t *m) {
  mr_test_tmpdir(dir, len);
  char path[4200];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  mr_gen_spec_t spec;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_preset(&spec, preset, max_rows, &err), 0, "%s", err.msg);
  spec.seed = 11;
  cr_assert_eq(mr_gen_write(&spec, path, NULL, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(mr_model_open(m, path, &err), 0, "%s", err.msg);
  remove(path);
}

static const char *const SMALL_BANKS[] = {"HBM[0]", "HBM[5]", "DDR[1]",
                                          "URAM"};

/* Emits the spread plan of a small generated model into dir. */
static void emit_small(const char *preset, char *dir, size_t len,
                       mr_kgeom_t *g) {
  mr_model_t m;
  gen_model(preset, 40, dir, len, &m);
  mr_plan_t p;
  mr_err_t err = {0};
  mr_test_spread_plan(&p, &m, SMALL_BANKS, 4, 2000);
  cr_assert_eq(mr_plan_check(&p, &m, &err), 0, "%s", err.msg);
  cr_assert_eq(mr_kgeom_build(g, &m, &p, &err), 0, "%s", err.msg);
  mr_kemit_opts_t o = {.source = preset};
  cr_assert_eq(mr_kemit_dir(dir, g, &o, &err), 0, "%s", err.msg);
  mr_plan_free(&p);
  mr_model_close(&m);
}

Test(kernel_emit, connectivity_maps_each_port_to_its_bank) {
  char dir[256];
  static mr_kgeom_t g;
  emit_small("criteo", dir, sizeof dir, &g);
  char *cfg = slurp(dir, "connectivity.cfg");
  cr_assert(strstr(cfg, "[connectivity]\n"), "%s", cfg);
  cr_assert(strstr(cfg, "\nnk=microrec_kernel:1:microrec_kernel_1\n"), "%s",
            cfg);
  cr_assert(strstr(cfg, "\nsp=microrec_kernel_1.bank0:HBM[0]\n"), "%s", cfg);
  cr_assert(strstr(cfg, "\nsp=microrec_kernel_1.bank1:HBM[5]\n"), "%s", cfg);
  cr_assert(strstr(cfg, "\nsp=microrec_kernel_1.bank2:DDR[1]\n"), "%s", cfg);
  cr_assert_null(strstr(cfg, ".bank3:"), "on-chip bank got a port:\n%s", cfg);
  char io[32], want[128];
  mr_kemit_io_bank(&g, io, sizeof io);
  snprintf(want, sizeof want, "\nsp=microrec_kernel_1.ids:%s\n", io);
  cr_assert(strstr(cfg, want), "%s", cfg);
  cr_assert(strstr(cfg, "[clock]\nfreqHz=200000000:microrec_kernel_1\n") ||
                strstr(cfg, "\nfreqHz=200000000:microrec_kernel_1\n"),
            "%s", cfg);
  char *h = slurp(dir, "microrec_plan.h");
  char hash[64];
  snprintf(hash, sizeof hash, "#define MR_KPLAN_HASH 0x%016llx",
           (unsigned long long)g.hash);
  cr_assert(strstr(h, hash), "header lacks %s", hash);
  cr_assert(strstr(h, "#define MR_KPLAN_PORTS(X) X(0) X(1) X(2)\n"), "%s", h);
  cr_assert(strstr(h, "#define MR_KPLAN_ONCHIP(X) X(3) X(4)"), "%s", h);
  cr_assert(strstr(h, "#define MR_KPLAN_HAS_BOT 1\n"), "%s", h);
  free(h);
  free(cfg);
  mr_ktest_rmtree(dir);
}

Test(kernel_emit, refuses_a_plan_on_host_memory) {
  char dir[256];
  mr_model_t m;
  gen_model("criteo", 40, dir, sizeof dir, &m);
  mr_plan_t p;
  mr_err_t err = {0};
  cr_assert_eq(mr_plan_identity(&p, &m, &err), 0);
  static mr_kgeom_t g;
  cr_assert_eq(mr_kgeom_build(&g, &m, &p, &err), 0, "%s", err.msg);
  char sub[300];
  snprintf(sub, sizeof sub, "%s/out", dir);
  int rc = mr_kemit_dir(sub, &g, NULL, &err);
  cr_assert_eq(rc, MR_EINVAL);
  cr_assert(strstr(err.msg, "u280"), "%s", err.msg);
  mr_plan_free(&p);
  mr_model_close(&m);
  mr_ktest_rmtree(dir);
}

static void csim(const char *preset) {
  char dir[256], out[16384];
  static mr_kgeom_t g;
  emit_small(preset, dir, sizeof dir, &g);
  int rc = kernel_make("csim", dir, out, sizeof out);
  cr_assert_eq(rc, 0, "make csim failed (%d):\n%s", rc, out);
  cr_assert(strstr(out, "identical"), "%s", out);
  mr_ktest_rmtree(dir);
}

Test(kernel_emit, dot_model_header_compiles_and_csim_agrees,
     .timeout = 300) {
  csim("criteo");
}

Test(kernel_emit, cat_model_header_compiles_and_csim_agrees,
     .timeout = 300) {
  csim("alibaba-47");
}

/* The preset at full size, planned for the U280 by the planner, emitted
 * into BUILD/vitis/PRESET (kept, for a person to read), and compiled. */
static void preset_files(const char *preset) {
  static mr_kshape_t s;
  mr_gen_spec_t spec;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_preset(&spec, preset, 0, &err), 0, "%s", err.msg);
  mr_kshape_from_spec(&s, &spec);
  mr_plan_input_t in;
  cr_assert_eq(mr_plan_input_from_spec(&in, &spec, &err), 0, "%s", err.msg);
  mr_plan_t p;
  cr_assert_eq(mr_plan_build(&p, &in, mr_target_find("u280"), NULL, &err), 0,
               "%s", err.msg);
  mr_plan_input_free(&in);
  cr_assert_eq(mr_plan_check(&p, &s.m, &err), 0, "%s", err.msg);
  static mr_kgeom_t g;
  cr_assert_eq(mr_kgeom_build(&g, &s.m, &p, &err), 0, "%s", err.msg);
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/vitis/%s", MR_BUILD_DIR, preset);
  mr_kemit_opts_t o = {.source = preset};
  cr_assert_eq(mr_kemit_dir(dir, &g, &o, &err), 0, "%s", err.msg);
  char *cfg = slurp(dir, "connectivity.cfg");
  size_t ports = 0;
  for (const char *q = cfg; (q = strstr(q, ".bank")); q++) ports++;
  size_t want = 0;
  for (uint32_t k = 0; k < g.num_banks; k++) want += !g.bank_onchip[k];
  cr_assert_eq(ports, want, "%zu bank ports for %zu off-chip banks", ports,
               want);
  free(cfg);
  char out[16384];
  int rc = kernel_make("check", dir, out, sizeof out);
  cr_assert_eq(rc, 0, "%s header does not compile (%d):\n%s", preset, rc,
               out);
  mr_plan_free(&p);
}

Test(kernel_emit, alibaba_47_files_are_written_and_compile, .timeout = 300) {
  preset_files("alibaba-47");
}

Test(kernel_emit, alibaba_98_files_are_written_and_compile, .timeout = 300) {
  preset_files("alibaba-98");
}
