/* `microrec score` end to end: the real CLI binary on the shared test data
 * must reproduce PyTorch's logits within 1e-3, whatever the batch size, from
 * both the binary arrays and the Criteo TSV. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/testutil.h"

#define MAX_ROWS 1000

/* Runs the CLI with args, parses one float per line into out. */
static size_t run_cli(const char *args, float *out, size_t cap, int *status) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "%s/bin/microrec %s", MR_BUILD_DIR, args);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p, "popen %s", cmd);
  size_t n = 0;
  char line[256];
  while (fgets(line, sizeof line, p)) {
    if (n < cap) out[n] = strtof(line, NULL);
    n++;
  }
  *status = pclose(p);
  return n;
}

static void load_f32(const char *path, float *out, size_t n) {
  size_t len = 0;
  float *buf = mr_test_read_file(path, &len);
  cr_assert_not_null(buf, "read %s", path);
  cr_assert_eq(len, n * sizeof(float), "%s: %zu bytes", path, len);
  memcpy(out, buf, len);
  free(buf);
}

static void check_logits(const char *model_dir, const char *rows_dir, size_t rows,
                         const char *input_args, const char *batch) {
  static float got[MAX_ROWS + 1], ref[MAX_ROWS];
  char path[4096], args[8192];
  snprintf(path, sizeof path, "%s/%s/%s/logits.f32", mr_test_testdata(), model_dir, rows_dir);
  load_f32(path, ref, rows);
  snprintf(args, sizeof args, "score %s/%s/model.safetensors %s --logits %s",
           mr_test_testdata(), model_dir, input_args, batch);
  int status;
  size_t n = run_cli(args, got, MAX_ROWS + 1, &status);
  cr_assert_eq(status, 0, "microrec %s exited %d", args, status);
  cr_assert_eq(n, rows, "microrec %s printed %zu rows, expected %zu", args, n, rows);
  for (size_t i = 0; i < rows; i++)
    cr_assert_leq(fabsf(got[i] - ref[i]), 1e-3f, "row %zu: logit %.7g, PyTorch %.7g (%s)", i,
                  got[i], ref[i], batch);
}

static void dlrm_binary(const char *batch) {
  MR_REQUIRE_TESTDATA();
  char in[8192];
  const char *d = mr_test_testdata();
  snprintf(in, sizeof in,
           "--dense %s/dlrm-criteo-small/criteo-1k/dense.f32 "
           "--sparse %s/dlrm-criteo-small/criteo-1k/sparse.i64", d, d);
  check_logits("dlrm-criteo-small", "criteo-1k", 1000, in, batch);
}

Test(cli_score, dlrm_binary_batch_1, .timeout = 60) { dlrm_binary("--batch 1"); }
Test(cli_score, dlrm_binary_batch_7, .timeout = 60) { dlrm_binary("--batch 7"); }
Test(cli_score, dlrm_binary_batch_64, .timeout = 60) { dlrm_binary("--batch 64"); }
Test(cli_score, dlrm_binary_all_rows, .timeout = 60) { dlrm_binary(""); }

Test(cli_score, dlrm_from_criteo_tsv_matches_pytorch, .timeout = 60) {
  MR_REQUIRE_TESTDATA();
  char in[4096];
  snprintf(in, sizeof in, "--criteo %s/criteo-kaggle-1k.tsv", mr_test_testdata());
  check_logits("dlrm-criteo-small", "criteo-1k", 1000, in, "--batch 7");
}

static void microrec47(const char *batch) {
  MR_REQUIRE_TESTDATA();
  char in[4096];
  snprintf(in, sizeof in, "--sparse %s/microrec-47-small/zipf-512/sparse.i64",
           mr_test_testdata());
  check_logits("microrec-47-small", "zipf-512", 512, in, batch);
}

Test(cli_score, microrec47_batch_1, .timeout = 60) { microrec47("--batch 1"); }
Test(cli_score, microrec47_batch_7, .timeout = 60) { microrec47("--batch 7"); }
Test(cli_score, microrec47_batch_64, .timeout = 60) { microrec47("--batch 64"); }
Test(cli_score, microrec47_all_rows, .timeout = 60) { microrec47(""); }

Test(cli_score, scores_are_sigmoid_of_logits, .timeout = 60) {
  MR_REQUIRE_TESTDATA();
  static float got[MAX_ROWS + 1], ref[MAX_ROWS];
  char path[4096], args[8192];
  const char *d = mr_test_testdata();
  snprintf(path, sizeof path, "%s/dlrm-criteo-small/criteo-1k/scores.f32", d);
  load_f32(path, ref, 1000);
  snprintf(args, sizeof args,
           "score %s/dlrm-criteo-small/model.safetensors --dense "
           "%s/dlrm-criteo-small/criteo-1k/dense.f32 --sparse "
           "%s/dlrm-criteo-small/criteo-1k/sparse.i64", d, d, d);
  int status;
  size_t n = run_cli(args, got, MAX_ROWS + 1, &status);
  cr_assert_eq(status, 0);
  cr_assert_eq(n, 1000);
  for (size_t i = 0; i < n; i++)
    cr_assert_leq(fabsf(got[i] - ref[i]), 1e-4f, "row %zu: score %.7g, PyTorch %.7g", i,
                  got[i], ref[i]);
}

Test(cli_score, sparse_size_not_a_multiple_is_an_error, .timeout = 30) {
  MR_REQUIRE_TESTDATA();
  char dir[64], bad[128], args[8192];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(bad, sizeof bad, "%s/bad.i64", dir);
  FILE *f = fopen(bad, "wb");
  cr_assert_not_null(f);
  char junk[47 * 8 + 3] = {0};
  fwrite(junk, 1, sizeof junk, f);
  fclose(f);
  snprintf(args, sizeof args, "score %s/microrec-47-small/model.safetensors --sparse %s 2>/dev/null",
           mr_test_testdata(), bad);
  float out[4];
  int status;
  size_t n = run_cli(args, out, 4, &status);
  cr_assert_eq(n, 0, "nothing printed on error");
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "exit 1 on bad input, got %d", status);
  unlink(bad);
  rmdir(dir);
}

Test(cli_score, usage_error_exits_2, .timeout = 30) {
  float out[4];
  int status;
  run_cli("score 2>/dev/null", out, 4, &status);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2, "exit 2, got %d", status);
}
