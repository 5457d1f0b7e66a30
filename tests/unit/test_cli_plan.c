/* `microrec plan` end to end: the real CLI binary, its exit codes and its
 * JSON, on a preset planned at full size and on a shared test model. */
#include <jansson.h>
#include <sys/wait.h>

#include "tests/unit/testutil.h"

/* Runs the CLI with args; returns its exit code, stdout in *out (malloc'd). */
static int run_cli(const char *args, char **out) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "%s/bin/microrec %s 2>/dev/null", MR_BUILD_DIR,
           args);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p, "popen %s", cmd);
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  size_t r;
  while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
    n += r;
    if (n + 1 == cap) buf = realloc(buf, cap *= 2);
  }
  buf[n] = 0;
  int status = pclose(p);
  if (out)
    *out = buf;
  else
    free(buf);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(cli_plan, full_size_alibaba_presets_as_json) {
  char *out;
  int rc = run_cli("plan --preset alibaba-98 --target u280 --json", &out);
  cr_assert_eq(rc, 0);
  json_error_t je;
  json_t *j = json_loads(out, 0, &je);
  cr_assert_not_null(j, "%s: %s", je.text, out);
  cr_assert_eq(json_integer_value(json_object_get(j, "logical_tables")), 98);
  cr_assert(json_is_integer(json_object_get(j, "tables")));
  cr_assert(json_is_integer(json_object_get(j, "lookups_per_sample")));
  cr_assert_leq(json_integer_value(json_object_get(j, "max_dram_rounds")), 2);
  cr_assert(json_is_real(json_object_get(j, "memory_overhead")));
  cr_assert_eq(json_array_size(json_object_get(j, "banks")), 35);
  json_decref(j);
  free(out);
  rc = run_cli(
      "plan --preset alibaba-47 --target u280 --objective tables "
      "--budget 3.2",
      &out);
  cr_assert_eq(rc, 0);
  cr_assert(strstr(out, "47 tables -> 41 after products"), "%s", out);
  free(out);
}

Test(cli_plan, plans_a_model_file_for_the_cpu) {
  MR_REQUIRE_TESTDATA();
  char args[4096], *out;
  snprintf(args, sizeof args,
           "plan %s/microrec-47-small/model.safetensors --target cpu",
           mr_test_testdata());
  cr_assert_eq(run_cli(args, &out), 0);
  cr_assert(strstr(out, "plan for cpu: 47 tables"), "%s", out);
  cr_assert(strstr(out, "LLC"), "%s", out);
  free(out);
}

Test(cli_plan, exit_codes) {
  cr_assert_eq(run_cli("plan --help", NULL), 0);
  cr_assert_eq(run_cli("plan --preset alibaba-47", NULL), 2, "no --target");
  cr_assert_eq(run_cli("plan --preset alibaba-47 --target u999", NULL), 2);
  cr_assert_eq(run_cli("plan --preset nope --target cpu", NULL), 2);
  cr_assert_eq(run_cli("plan --preset criteo --target cpu --budget -1", NULL),
               2);
  cr_assert_eq(run_cli("plan --preset criteo --target cpu --objective x", NULL),
               2);
  cr_assert_eq(run_cli("plan --target cpu", NULL), 2, "no MODEL");
  cr_assert_eq(run_cli("plan m.safetensors --target cpu --max-rows 5", NULL),
               2);
  cr_assert_eq(run_cli("plan /nonexistent.safetensors --target cpu", NULL), 1);
  cr_assert_eq(
      run_cli("plan --preset criteo --max-rows 1000 --target cpu", NULL), 0);
}
