/* fpga/memcheck.c: the engine's memory estimate against what the engine
 * really holds, the memory available read from fake /proc and cgroup files
 * (v2 and v1), the MR_MEM_AVAILABLE override, and the refusal at start of
 * microrecd and `microrec score` when a model does not fit. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fpga/engine.h"
#include "fpga/memcheck.h"
#include "fpga/model.h"
#include "fpga/modelgen.h"
#include "fpga/planner.h"
#include "tests/unit/testutil.h"

/* ---- helpers ---- */

static void put(const char *dir, const char *rel, const char *text) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  /* mkdir -p of the parents */
  for (char *p = path + strlen(dir) + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      mkdir(path, 0755);
      *p = '/';
    }
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static void rm_tree(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static void gen_model(const char *path, const char *preset, uint64_t rows) {
  mr_gen_spec_t spec;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_preset(&spec, preset, rows, &err), 0, "%s", err.msg);
  spec.seed = 3;
  cr_assert_eq(mr_gen_write(&spec, path, NULL, NULL, &err), 0, "%s", err.msg);
}

/* Opens the engine and checks the estimate of its tables against what it
 * reports: never below, and above by at most a cache line per table. */
static void estimate_matches(const mr_model_t *m, const mr_engine_opts_t *o,
                             const char *what) {
  mr_mem_estimate_t est;
  mr_err_t err = {0};
  cr_assert_eq(mr_engine_estimate_bytes(m, o, 2, &est, &err), 0, "%s", err.msg);
  mr_engine_t *e = NULL;
  cr_assert_eq(mr_engine_open(&e, m, o, &err), 0, "%s: %s", what, err.msg);
  const mr_engine_info_t *in = mr_engine_info(e);
  uint64_t tables = est.tables + est.products;
  cr_assert_geq(tables, in->resident_bytes,
                "%s: estimated %llu bytes of tables, the engine holds %llu",
                what, (unsigned long long)tables,
                (unsigned long long)in->resident_bytes);
  cr_assert_leq(tables, in->resident_bytes + 64 * 256,
                "%s: estimated %llu bytes of tables, the engine holds only %llu",
                what, (unsigned long long)tables,
                (unsigned long long)in->resident_bytes);
  uint64_t mlp = 0;
  for (size_t i = 0; i < m->num_bot; i++) mlp += (m->bot[i].in + 1) * m->bot[i].out;
  for (size_t i = 0; i < m->num_top; i++) mlp += (m->top[i].in + 1) * m->top[i].out;
  if (!o->precision)
    cr_assert_geq(est.weights, mlp * 4, "%s: weights estimated below fp32", what);
  cr_assert_gt(est.scratch, 0);
  cr_assert_geq(est.total, tables + est.weights + est.scratch);
  mr_engine_close(e);
}

/* ---- the estimate ---- */

Test(memcheck, estimate_covers_the_cpu_engine_tables) {
  char dir[256], path[512];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/criteo.safetensors", dir);
  gen_model(path, "criteo", 300);
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open(&m, path, &err), 0, "%s", err.msg);

  mr_engine_opts_t o = {0};
  estimate_matches(&m, &o, "criteo fp32, cpu plan");
  o.no_products = 1;
  estimate_matches(&m, &o, "criteo fp32, no products");
  o.no_products = 0;
  o.precision = "int8emb";
  estimate_matches(&m, &o, "criteo int8emb");
  o.precision = NULL;

  /* A plan with a product (tables 0 x 1) and a table split by columns
   * (table 2 as [0, 8) and [8, dim)). */
  mr_plan_t plan;
  cr_assert_eq(mr_plan_identity(&plan, &m, &err), 0, "%s", err.msg);
  mr_plan_table_t *t = plan.tables;
  cr_assert_geq(plan.num_tables, 3);
  mr_plan_table_t prod = t[0], lo = t[2], hi = t[2];
  prod.num_factors = 2;
  prod.factors[1] = 1;
  prod.rows = t[0].rows * t[1].rows;
  prod.dim = t[0].dim + t[1].dim;
  prod.col_end = prod.dim;
  lo.col_end = 8;
  hi.col_begin = 8;
  t[0] = prod;
  t[1] = lo;
  t[2] = hi;
  cr_assert_eq(mr_plan_check(&plan, &m, &err), 0, "hand-made plan: %s", err.msg);
  o.plan = &plan;
  estimate_matches(&m, &o, "criteo fp32, a product and a split");
  mr_mem_estimate_t est;
  cr_assert_eq(mr_engine_estimate_bytes(&m, &o, 1, &est, &err), 0);
  cr_assert_gt(est.products, 0, "a plan with a product estimated no bytes for it");
  o.precision = "int8emb";
  estimate_matches(&m, &o, "criteo int8emb, a product and a split");
  mr_plan_free(&plan);

  mr_model_close(&m);
  unlink(path);
  rmdir(dir);
}

Test(memcheck, estimate_grows_with_threads_and_batch) {
  char dir[256], path[512];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/m.safetensors", dir);
  gen_model(path, "criteo", 100);
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open(&m, path, &err), 0, "%s", err.msg);
  mr_engine_opts_t o = {0};
  mr_mem_estimate_t one, four, big;
  cr_assert_eq(mr_engine_estimate_bytes(&m, &o, 1, &one, &err), 0);
  cr_assert_eq(mr_engine_estimate_bytes(&m, &o, 4, &four, &err), 0);
  o.max_batch = 4096;
  cr_assert_eq(mr_engine_estimate_bytes(&m, &o, 1, &big, &err), 0);
  cr_assert_eq(four.scratch, 4 * one.scratch);
  cr_assert_gt(big.scratch, one.scratch);
  cr_assert_eq(one.tables, four.tables);
  mr_model_close(&m);
  unlink(path);
  rmdir(dir);
}

Test(memcheck, estimate_rejects_unknown_backend_and_precision) {
  char dir[256], path[512];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/m.safetensors", dir);
  gen_model(path, "criteo", 100);
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open(&m, path, &err), 0, "%s", err.msg);
  mr_engine_opts_t o = {.backend = "gpu"};
  mr_mem_estimate_t est;
  cr_assert_eq(mr_engine_estimate_bytes(&m, &o, 1, &est, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "gpu") && strstr(err.msg, "expected"), "%s", err.msg);
  o = (mr_engine_opts_t){.precision = "fp8"};
  cr_assert_eq(mr_engine_estimate_bytes(&m, &o, 1, &est, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "fp8"), "%s", err.msg);
  o = (mr_engine_opts_t){.backend = "fpga-sim"};
  cr_assert_eq(mr_engine_estimate_bytes(&m, &o, 1, &est, &err), 0, "%s", err.msg);
  cr_assert_geq(est.tables + est.products, mr_model_param_bytes(&m) - est.weights);
  mr_model_close(&m);
  unlink(path);
  rmdir(dir);
}

/* ---- what is available ---- */

Test(memcheck, available_reads_meminfo_and_the_tightest_cgroup_v2) {
  char d[256];
  mr_test_tmpdir(d, sizeof d);
  put(d, "meminfo", "MemTotal:       8000000 kB\nMemFree:  10 kB\n"
                    "MemAvailable:    4000000 kB\nBuffers: 1 kB\n");
  put(d, "self_cgroup", "0::/system.slice/microrecd.service\n");
  put(d, "cg/cgroup.controllers", "cpu memory pids\n");
  put(d, "cg/system.slice/memory.max", "3000000000\n");
  put(d, "cg/system.slice/memory.current", "2500000000\n");
  put(d, "cg/system.slice/memory.stat", "anon 1000\nfile 1000000000\nkernel 5\n");
  put(d, "cg/system.slice/microrecd.service/memory.max", "max\n");
  put(d, "cg/system.slice/microrecd.service/memory.current", "100\n");
  char mi[512], sc[512], cg[512];
  snprintf(mi, sizeof mi, "%s/meminfo", d);
  snprintf(sc, sizeof sc, "%s/self_cgroup", d);
  snprintf(cg, sizeof cg, "%s/cg", d);
  mr_mem_sources_t src = {mi, sc, cg};
  mr_mem_avail_t a;
  mr_mem_available(&a, &src);
  cr_assert_eq(a.mem_available, 4000000ull * 1024);
  /* The slice: 3 GB limit, 2.5 GB in use of which 1 GB page cache. */
  cr_assert_eq(a.cgroup_max, 3000000000ull);
  cr_assert_eq(a.cgroup_current, 1500000000ull);
  cr_assert_str_eq(a.cgroup, "/system.slice");
  cr_assert_eq(a.bytes, 1500000000ull);
  cr_assert_eq(a.overridden, 0);

  /* Without a limit anywhere, MemAvailable decides. */
  put(d, "cg/system.slice/memory.max", "max\n");
  mr_mem_available(&a, &src);
  cr_assert_eq(a.cgroup_max, MR_MEM_UNKNOWN);
  cr_assert_str_eq(a.cgroup, "");
  cr_assert_eq(a.bytes, 4000000ull * 1024);

  /* A limit on the cgroup root as a container sees it. */
  put(d, "self_cgroup", "0::/\n");
  put(d, "cg/memory.max", "1000000\n");
  put(d, "cg/memory.current", "250000\n");
  mr_mem_available(&a, &src);
  cr_assert_eq(a.bytes, 750000ull);
  cr_assert_str_eq(a.cgroup, "/");
  rm_tree(d);
}

Test(memcheck, available_reads_cgroup_v1_memory_controller) {
  char d[256];
  mr_test_tmpdir(d, sizeof d);
  put(d, "meminfo", "MemAvailable:    4000000 kB\n");
  /* A hybrid system: the "0::" line names a hierarchy without memory. */
  put(d, "self_cgroup", "5:cpu,cpuacct:/x\n4:memory:/a/b\n0::/\n");
  put(d, "cg/memory/memory.limit_in_bytes", "9223372036854771712\n");
  put(d, "cg/memory/a/memory.limit_in_bytes", "3000000\n");
  put(d, "cg/memory/a/memory.usage_in_bytes", "1000000\n");
  put(d, "cg/memory/a/memory.stat", "cache 5\ntotal_cache 500000\n");
  put(d, "cg/memory/a/b/memory.limit_in_bytes", "9223372036854771712\n");
  put(d, "cg/memory/a/b/memory.usage_in_bytes", "10\n");
  char mi[512], sc[512], cg[512];
  snprintf(mi, sizeof mi, "%s/meminfo", d);
  snprintf(sc, sizeof sc, "%s/self_cgroup", d);
  snprintf(cg, sizeof cg, "%s/cg", d);
  mr_mem_sources_t src = {mi, sc, cg};
  mr_mem_avail_t a;
  mr_mem_available(&a, &src);
  cr_assert_str_eq(a.cgroup, "/a");
  cr_assert_eq(a.bytes, 3000000ull - 500000ull);
  rm_tree(d);
}

Test(memcheck, available_is_unknown_when_nothing_can_be_read) {
  mr_mem_sources_t src = {"/nonexistent/meminfo", "/nonexistent/cgroup",
                          "/nonexistent/cg"};
  mr_mem_avail_t a;
  mr_mem_available(&a, &src);
  cr_assert_eq(a.bytes, MR_MEM_UNKNOWN);
  mr_mem_estimate_t need = {.total = UINT64_MAX - 1};
  mr_err_t err = {0};
  cr_assert_eq(mr_mem_check_fits(&need, &a, "m", &err), 0,
               "an unknown amount must not refuse a model");
}

Test(memcheck, real_machine_reports_some_memory) {
  mr_mem_avail_t a;
  unsetenv("MR_MEM_AVAILABLE");
  mr_mem_available(&a, NULL);
  cr_assert_neq(a.mem_available, MR_MEM_UNKNOWN, "no MemAvailable read");
  cr_assert_gt(a.bytes, 0);
  cr_assert_eq(a.overridden, 0);
}

Test(memcheck, env_override_replaces_what_is_read) {
  setenv("MR_MEM_AVAILABLE", "64M", 1);
  mr_mem_avail_t a;
  mr_mem_available(&a, NULL);
  cr_assert_eq(a.bytes, 64ull << 20);
  cr_assert_eq(a.overridden, 1);
  setenv("MR_MEM_AVAILABLE", "12345", 1);
  mr_mem_available(&a, NULL);
  cr_assert_eq(a.bytes, 12345ull);
  setenv("MR_MEM_AVAILABLE", "lots", 1); /* not a number: ignored */
  mr_mem_available(&a, NULL);
  cr_assert_eq(a.overridden, 0);
}

/* ---- the check ---- */

Test(memcheck, check_says_what_is_needed_and_what_is_available) {
  mr_mem_estimate_t need = {.tables = 3ull << 30, .products = 512ull << 20,
                            .weights = 4ull << 20, .scratch = 1ull << 20};
  need.total = need.tables + need.products + need.weights + need.scratch;
  mr_mem_avail_t a = {.bytes = 2ull << 30, .mem_available = 2ull << 30,
                      .cgroup_max = MR_MEM_UNKNOWN,
                      .cgroup_current = MR_MEM_UNKNOWN};
  mr_err_t err = {0};
  cr_assert_eq(mr_mem_check_fits(&need, &a, "/srv/big.safetensors", &err),
               MR_ENOMEM);
  cr_assert(strstr(err.msg, "/srv/big.safetensors needs 3.5 GiB"), "%s", err.msg);
  cr_assert(strstr(err.msg, "tables 3.0 GiB + products 512.0 MiB"), "%s", err.msg);
  cr_assert(strstr(err.msg, "only 2.0 GiB is available (MemAvailable"), "%s",
            err.msg);
  cr_assert(strstr(err.msg, "expected"), "%s", err.msg);

  /* The cgroup is named when it is the tighter figure. */
  a.cgroup_max = 3ull << 30;
  a.cgroup_current = 2ull << 30;
  a.bytes = 1ull << 30;
  snprintf(a.cgroup, sizeof a.cgroup, "/system.slice/microrecd.service");
  cr_assert_eq(mr_mem_check_fits(&need, &a, "m", &err), MR_ENOMEM);
  cr_assert(strstr(err.msg, "cgroup /system.slice/microrecd.service: limit 3.0 GiB"),
            "%s", err.msg);

  a.bytes = need.total;
  cr_assert_eq(mr_mem_check_fits(&need, &a, "m", &err), 0);
}

Test(memcheck, check_refuses_a_model_larger_than_the_override) {
  char dir[256], path[512];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/m.safetensors", dir);
  gen_model(path, "criteo", 2000);
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open(&m, path, &err), 0, "%s", err.msg);
  mr_engine_opts_t o = {0};
  mr_mem_estimate_t need;
  setenv("MR_MEM_AVAILABLE", "1M", 1);
  cr_assert_eq(mr_mem_check(&m, &o, 2, path, &need, &err), MR_ENOMEM);
  cr_assert(strstr(err.msg, "MR_MEM_AVAILABLE=1048576"), "%s", err.msg);
  cr_assert(strstr(err.msg, path), "%s", err.msg);
  setenv("MR_MEM_AVAILABLE", "4G", 1);
  cr_assert_eq(mr_mem_check(&m, &o, 2, path, &need, &err), 0, "%s", err.msg);
  cr_assert_gt(need.total, 1u << 20);
  mr_model_close(&m);
  unlink(path);
  rmdir(dir);
}

Test(memcheck, formats_sizes_for_people) {
  char b[32];
  cr_assert_str_eq(mr_mem_format(b, sizeof b, 512), "512 B");
  cr_assert_str_eq(mr_mem_format(b, sizeof b, 1536), "1.5 KiB");
  cr_assert_str_eq(mr_mem_format(b, sizeof b, 3ull << 30), "3.0 GiB");
}

/* ---- the programs refuse at start ---- */

/* Runs argv with MR_MEM_AVAILABLE=avail; returns the exit status, the
 * program's stderr in err (NUL-terminated). */
static int run_with_memory(const char *const *argv, const char *avail,
                           char *err, size_t len) {
  char path[] = "/tmp/microrec-memcheck-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    setenv("MR_MEM_AVAILABLE", avail, 1);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(fd, 2);
    close_range(3, ~0u, 0); /* none of the test runner's descriptors */
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  ssize_t n = pread(fd, err, len - 1, 0);
  err[n > 0 ? n : 0] = 0;
  close(fd);
  unlink(path);
  return st;
}

Test(memcheck, server_refuses_a_model_larger_than_memory_at_start,
     .timeout = 120) {
  const char *bin = MR_BUILD_DIR "/bin/microrecd";
  if (access(bin, X_OK)) cr_skip_test("%s not built", bin);
  char dir[256], path[512];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/m.safetensors", dir);
  gen_model(path, "criteo", 2000);
  const char *argv[] = {bin, "--model", path, "--listen", "127.0.0.1:0", NULL};
  static char err[65536];
  int st = run_with_memory(argv, "100K", err, sizeof err);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1,
            "microrecd exited %d (signal %d), expected 1; stderr:\n%s",
            WIFEXITED(st) ? WEXITSTATUS(st) : -1,
            WIFSIGNALED(st) ? WTERMSIG(st) : 0, err);
  cr_assert(strstr(err, "level=error msg=\"cannot start\""), "%s", err);
  cr_assert(strstr(err, "needs") && strstr(err, "only 100.0 KiB is available"),
            "%s", err);
  cr_assert_null(strstr(err, "model loaded"), "%s", err);
  unlink(path);
  rmdir(dir);
}

Test(memcheck, score_refuses_a_model_larger_than_memory, .timeout = 120) {
  const char *bin = MR_BUILD_DIR "/bin/microrec";
  if (access(bin, X_OK)) cr_skip_test("%s not built", bin);
  char dir[256], path[512], in[512];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/m.safetensors", dir);
  snprintf(in, sizeof in, "%s/in.tsv", dir);
  gen_model(path, "criteo", 2000);
  /* One Criteo row: label, 13 dense, 26 categorical. */
  char row[1024] = "0";
  for (int i = 0; i < 13; i++) strcat(row, "\t1");
  for (int i = 0; i < 26; i++) strcat(row, "\t0a1b2c3d");
  strcat(row, "\n");
  put(dir, "in.tsv", row);
  const char *argv[] = {bin, "score", path, "--criteo", in, NULL};
  static char err[65536];
  int st = run_with_memory(argv, "100K", err, sizeof err);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit %d; stderr:\n%s",
            WIFEXITED(st) ? WEXITSTATUS(st) : -1, err);
  cr_assert(strstr(err, "the model needs") && strstr(err, "100.0 KiB"), "%s",
            err);
  st = run_with_memory(argv, "8G", err, sizeof err);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "with memory to spare: exit %d; stderr:\n%s",
            WIFEXITED(st) ? WEXITSTATUS(st) : -1, err);
  unlink(path);
  unlink(in);
  rmdir(dir);
}
