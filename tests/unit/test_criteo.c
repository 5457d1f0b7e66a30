/* Criteo TSV parsing and the input loaders (client/lib/criteo.h, input.h). */
#include <math.h>
#include <stdint.h>

#include "client/lib/criteo.h"
#include "client/lib/input.h"
#include "fpga/safetensors.h"
#include <criterion/criterion.h>
#ifndef cr_fatal /* testutil.h uses it; only criterion/new/assert.h has it */
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif
#include "tests/unit/testutil.h"

static const char *ROW =
    "1\t1\t\t-3\t0\t1382\t4\t15\t2\t181\t1\t2\t\t2\t68fd1e64\t80e26c9b\t"
    "fb936136\t7b4723c4\t25c83c98\t7e0ccccf\tde7995b8\t1f89b562\ta73ee510\t"
    "a8cd5504\tb2cb9c98\t37c9c164\t2824a5f6\t1adce6ef\t8ba8b39a\t891b62e7\t"
    "e5ba7672\tf54016b9\t21ddcdc9\tb1252a9d\t07b5194c\t\t3a171ecb\tc5c50484\t"
    "e8b83407\t9727dd16";

static void write_text(const char *path, const char *text, size_t len) {
  FILE *f = fopen(path, "wb");
  cr_assert(f);
  cr_assert_eq(fwrite(text, 1, len, f), len);
  fclose(f);
}

Test(criteo, parses_a_row_with_dlrm_preprocessing) {
  mr_criteo_row_t r;
  mr_err_t err = {0};
  cr_assert_eq(mr_criteo_parse_line(ROW, strlen(ROW), &r, &err), 0, "%s",
               err.msg);
  cr_assert_eq(r.label, 1);
  cr_assert_float_eq(r.dense[0], (float)log1p(1.0), 0);
  cr_assert_float_eq(r.dense[1], 0.0f, 0);  /* missing */
  cr_assert_float_eq(r.dense[2], 0.0f, 0);  /* negative */
  cr_assert_float_eq(r.dense[4], (float)log1p(1382.0), 0);
  cr_assert_float_eq(r.dense[11], 0.0f, 0); /* missing I12 */
  cr_assert_eq(r.cat[0], 0x68fd1e64u);
  cr_assert_eq(r.cat[21], 0u); /* missing C22 */
  cr_assert_eq(r.cat[25], 0x9727dd16u);
}

Test(criteo, reduces_ids_mod_rows) {
  mr_criteo_row_t r;
  cr_assert_eq(mr_criteo_parse_line(ROW, strlen(ROW), &r, NULL), 0);
  uint64_t rows[MR_CRITEO_NUM_CAT];
  for (size_t k = 0; k < MR_CRITEO_NUM_CAT; k++) rows[k] = 1000 + k;
  int64_t ids[MR_CRITEO_NUM_CAT];
  mr_criteo_ids(&r, MR_CRITEO_NUM_CAT, rows, ids);
  cr_assert_eq(ids[0], (int64_t)(0x68fd1e64u % 1000));
  cr_assert_eq(ids[25], (int64_t)(0x9727dd16u % 1025));
  mr_criteo_ids(&r, 2, NULL, ids);
  cr_assert_eq(ids[1], (int64_t)0x80e26c9bu);
}

Test(criteo, accepts_crlf_line_end) {
  char buf[1024];
  int n = snprintf(buf, sizeof buf, "%s\r", ROW);
  mr_criteo_row_t r;
  cr_assert_eq(mr_criteo_parse_line(buf, (size_t)n, &r, NULL), 0);
  cr_assert_eq(r.cat[25], 0x9727dd16u);
}

Test(criteo, rejects_wrong_field_count) {
  mr_criteo_row_t r;
  mr_err_t err = {0};
  const char *few = "0\t1\t2";
  cr_assert_eq(mr_criteo_parse_line(few, strlen(few), &r, &err), MR_EFORMAT);
  cr_assert(strstr(err.msg, "3 tab-separated fields, expected 40"), "%s",
            err.msg);
  char many[1024];
  int n = snprintf(many, sizeof many, "%s\t0", ROW);
  cr_assert_eq(mr_criteo_parse_line(many, (size_t)n, &r, &err), MR_EFORMAT);
  cr_assert(strstr(err.msg, "41"), "%s", err.msg);
}

Test(criteo, rejects_bad_hex_naming_the_field) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", ROW);
  char *c3 = strstr(buf, "fb936136");
  memcpy(c3, "fb93zz36", 8);
  mr_criteo_row_t r;
  mr_err_t err = {0};
  cr_assert_eq(mr_criteo_parse_line(buf, strlen(buf), &r, &err), MR_EFORMAT);
  cr_assert(strstr(err.msg, "field 17 (C3)"), "%s", err.msg);
  cr_assert(strstr(err.msg, "'fb93zz36' is not hex"), "%s", err.msg);
}

Test(criteo, rejects_overlong_hex_and_bad_integers) {
  char buf[1024];
  mr_criteo_row_t r;
  mr_err_t err = {0};
  snprintf(buf, sizeof buf, "%s", ROW);
  char *c1 = strstr(buf, "68fd1e64");
  /* 17 hex digits do not fit 64 bits: splice them in. */
  char line[1200];
  snprintf(line, sizeof line, "%.*s123456789%s", (int)(c1 - buf), buf, c1);
  cr_assert_eq(mr_criteo_parse_line(line, strlen(line), &r, &err), MR_EFORMAT);
  cr_assert(strstr(err.msg, "(C1)"), "%s", err.msg);

  const char *bads[] = {"1.5", "x", "-", "99999999999999999999", "1 "};
  for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
    snprintf(line, sizeof line, "0\t%s%s", bads[i], ROW + 3); /* replace I1 */
    cr_assert_eq(mr_criteo_parse_line(line, strlen(line), &r, &err),
                 MR_EFORMAT, "'%s' accepted", bads[i]);
    cr_assert(strstr(err.msg, "field 2 (I1)"), "%s", err.msg);
  }
  snprintf(line, sizeof line, "2%s", ROW + 1);
  cr_assert_eq(mr_criteo_parse_line(line, strlen(line), &r, &err), MR_EFORMAT);
  cr_assert(strstr(err.msg, "label"), "%s", err.msg);
}

Test(criteo, rejects_nul_bytes) {
  char buf[1024];
  size_t n = (size_t)snprintf(buf, sizeof buf, "%s", ROW);
  buf[20] = '\0';
  mr_criteo_row_t r;
  cr_assert_eq(mr_criteo_parse_line(buf, n, &r, NULL), MR_EFORMAT);
}

Test(criteo, load_reports_line_number_of_a_bad_line) {
  char dir[256], path[300];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/in.tsv", dir);
  char text[4096];
  int n = snprintf(text, sizeof text, "%s\n%s\n0\tbad\n%s\n", ROW, ROW, ROW);
  write_text(path, text, (size_t)n);
  mr_input_t in;
  mr_err_t err = {0};
  cr_assert_eq(mr_input_load_criteo(&in, path, 13, 26, NULL, &err),
               MR_EFORMAT);
  cr_assert(strstr(err.msg, "in.tsv:3: "), "%s", err.msg);
  cr_assert_eq(in.n, 0);
  cr_assert_null(in.ids);
  mr_input_free(&in);
}

Test(criteo, load_rejects_overlong_line_without_reading_it_whole) {
  char dir[256], path[300];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/long.tsv", dir);
  size_t big = 1 << 20;
  char *text = malloc(big + 600);
  int n = snprintf(text, 600, "%s\n", ROW);
  memset(text + n, 'a', big);
  write_text(path, text, (size_t)n + big);
  free(text);
  mr_input_t in;
  mr_err_t err = {0};
  cr_assert_eq(mr_input_load_criteo(&in, path, 13, 26, NULL, &err),
               MR_EFORMAT);
  cr_assert(strstr(err.msg, "long.tsv:2: line longer than 4096"), "%s",
            err.msg);
}

Test(criteo, load_accepts_trailing_blank_lines_only) {
  char dir[256], path[300];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/in.tsv", dir);
  char text[4096];
  int n = snprintf(text, sizeof text, "%s\n%s\n\n\n", ROW, ROW);
  write_text(path, text, (size_t)n);
  mr_input_t in;
  mr_err_t err = {0};
  uint64_t rows[26];
  for (int k = 0; k < 26; k++) rows[k] = 7;
  cr_assert_eq(mr_input_load_criteo(&in, path, 13, 26, rows, &err), 0, "%s",
               err.msg);
  cr_assert_eq(in.n, 2);
  cr_assert_eq(in.labels[1], 1.0f);
  cr_assert_eq(in.ids[26 + 25], (int64_t)(0x9727dd16u % 7));
  mr_input_free(&in);

  n = snprintf(text, sizeof text, "%s\n\n%s", ROW, ROW); /* no final \n */
  write_text(path, text, (size_t)n);
  cr_assert_eq(mr_input_load_criteo(&in, path, 13, 26, rows, &err),
               MR_EFORMAT);
  cr_assert(strstr(err.msg, "in.tsv:2: empty line"), "%s", err.msg);
}

Test(criteo, load_without_dense_and_empty_file) {
  char dir[256], path[300];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/in.tsv", dir);
  write_text(path, ROW, strlen(ROW));
  mr_input_t in;
  mr_err_t err = {0};
  cr_assert_eq(mr_input_load_criteo(&in, path, 0, 3, NULL, &err), 0, "%s",
               err.msg);
  cr_assert_eq(in.n, 1);
  cr_assert_null(in.dense);
  cr_assert_eq(in.ids[2], (int64_t)0xfb936136u);
  mr_input_free(&in);
  cr_assert_eq(mr_input_load_criteo(&in, path, 12, 26, NULL, &err), MR_EINVAL);
  cr_assert_eq(mr_input_load_criteo(&in, path, 13, 27, NULL, &err), MR_EINVAL);
  write_text(path, "", 0);
  cr_assert_eq(mr_input_load_criteo(&in, path, 13, 26, NULL, &err), 0);
  cr_assert_eq(in.n, 0);
  mr_input_free(&in);
  cr_assert_lt(mr_input_load_criteo(&in, "/nonexistent/x.tsv", 13, 26, NULL,
                                    &err),
               0);
  cr_assert(strstr(err.msg, "/nonexistent/x.tsv"), "%s", err.msg);
}

Test(criteo, binary_rejects_sizes_that_do_not_divide) {
  char dir[256], dpath[300], spath[300];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(dpath, sizeof dpath, "%s/dense.f32", dir);
  snprintf(spath, sizeof spath, "%s/sparse.i64", dir);
  float dense[6] = {1, 2, 3, 4, 5, 6};
  int64_t ids[4] = {1, 2, 3, 4};
  write_text(dpath, (const char *)dense, sizeof dense);
  write_text(spath, (const char *)ids, sizeof ids);
  mr_input_t in;
  mr_err_t err = {0};
  cr_assert_eq(mr_input_load_binary(&in, dpath, spath, 3, 2, &err), 0, "%s",
               err.msg);
  cr_assert_eq(in.n, 2);
  cr_assert_eq(in.dense[5], 6.0f);
  cr_assert_eq(in.ids[3], 4);
  mr_input_free(&in);
  cr_assert_eq(mr_input_load_binary(&in, dpath, spath, 4, 2, &err),
               MR_EFORMAT);
  cr_assert(strstr(err.msg, "dense.f32: 24 bytes"), "%s", err.msg);
  cr_assert_eq(mr_input_load_binary(&in, dpath, spath, 3, 3, &err),
               MR_EFORMAT);
  cr_assert_eq(mr_input_load_binary(&in, dpath, spath, 2, 2, &err),
               MR_EFORMAT); /* 3 dense rows, 2 sparse rows */
  cr_assert(strstr(err.msg, "expected the same"), "%s", err.msg);
  cr_assert_eq(mr_input_load_binary(&in, NULL, spath, 3, 2, &err), MR_EINVAL);
  cr_assert_eq(mr_input_load_binary(&in, NULL, spath, 0, 4, &err), 0);
  cr_assert_eq(in.n, 1);
  mr_input_free(&in);
}

/* The rows of each table, read from the safetensors header. */
static void table_rows(const char *model, uint64_t *rows, size_t n) {
  size_t len;
  void *buf = mr_test_read_file(model, &len);
  cr_assert(buf);
  mr_st_file_t f;
  mr_err_t err = {0};
  cr_assert_eq(mr_st_parse(&f, buf, len, &err), 0, "%s", err.msg);
  for (size_t k = 0; k < n; k++) {
    char name[64];
    snprintf(name, sizeof name, "emb_l.%zu.weight", k);
    const mr_st_tensor_t *t = mr_st_find(&f, name);
    cr_assert(t, "%s missing", name);
    rows[k] = t->shape[0];
  }
  mr_st_free(&f);
  free(buf);
}

Test(criteo, reproduces_the_testdata_preprocessing) {
  MR_REQUIRE_TESTDATA();
  const char *td = mr_test_testdata();
  char tsv[4096], model[4096], dense[4096], sparse[4096];
  snprintf(tsv, sizeof tsv, "%s/criteo-kaggle-1k.tsv", td);
  snprintf(model, sizeof model, "%s/dlrm-criteo-small/model.safetensors", td);
  snprintf(dense, sizeof dense, "%s/dlrm-criteo-small/criteo-1k/dense.f32", td);
  snprintf(sparse, sizeof sparse, "%s/dlrm-criteo-small/criteo-1k/sparse.i64",
           td);
  uint64_t rows[26];
  table_rows(model, rows, 26);
  mr_input_t a, b;
  mr_err_t err = {0};
  cr_assert_eq(mr_input_load_criteo(&a, tsv, 13, 26, rows, &err), 0, "%s",
               err.msg);
  cr_assert_eq(mr_input_load_binary(&b, dense, sparse, 13, 26, &err), 0, "%s",
               err.msg);
  cr_assert_eq(a.n, 1000);
  cr_assert_eq(b.n, 1000);
  for (size_t i = 0; i < 1000 * 13; i++)
    cr_assert_eq(a.dense[i], b.dense[i], "dense %zu: %g vs %g", i,
                 a.dense[i], b.dense[i]);
  for (size_t i = 0; i < 1000 * 26; i++)
    cr_assert_eq(a.ids[i], b.ids[i], "id %zu", i);
  mr_input_free(&a);
  mr_input_free(&b);
}
