/* Helpers shared by the Criterion tests. */
#ifndef MR_TESTUTIL_H
#define MR_TESTUTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ../shared/testdata, or where MR_TESTDATA points. */
static inline const char *mr_test_testdata(void) {
  const char *env = getenv("MR_TESTDATA");
  return env && *env ? env : MR_TESTDATA_DIR;
}

/* Skips the test, saying why, when the shared test data is absent. */
#define MR_REQUIRE_TESTDATA()                                              \
  do {                                                                     \
    char probe_[4096];                                                     \
    snprintf(probe_, sizeof probe_, "%s/README.md", mr_test_testdata());   \
    if (access(probe_, R_OK) != 0)                                         \
      cr_skip_test("shared test data not found at %s (set MR_TESTDATA)",   \
                   mr_test_testdata());                                    \
  } while (0)

/* A fresh temporary directory for this test; path written to buf. */
static inline void mr_test_tmpdir(char *buf, size_t len) {
  snprintf(buf, len, "/tmp/microrec-test-XXXXXX");
  if (!mkdtemp(buf)) cr_assert_fail("mkdtemp failed");
}

/* Reads a whole file into a malloc'd buffer; *len receives its size. */
static inline void *mr_test_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (len) *len = (size_t)n;
  return buf;
}

#endif
