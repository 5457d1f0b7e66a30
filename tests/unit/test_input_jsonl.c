/* JSON lines input (mr_input_load_jsonl, client/lib/input.h): good rows,
 * and hostile ones failing with "PATH:LINE: " and what was expected; plus
 * stdin ("-") for the text loaders and its refusal for the binary one. */
#include <stdint.h>
#include <stdio.h>

#include <criterion/criterion.h>
#ifndef cr_fatal /* testutil.h uses it; only criterion/new/assert.h has it */
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif

#include "client/lib/input.h"
#include "tests/unit/testutil.h"

static char dir[256], path[320];

static void setup(void) {
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/in.jsonl", dir);
}

static void teardown(void) {
  unlink(path);
  rmdir(dir);
}

static void write_text(const char *text, size_t len) {
  FILE *f = fopen(path, "wb");
  cr_assert(f);
  cr_assert_eq(fwrite(text, 1, len, f), len);
  fclose(f);
}

/* Loads text as in.jsonl with nd dense inputs and nt tables. */
static int load(mr_input_t *in, const char *text, size_t nd, size_t nt,
                mr_err_t *err) {
  write_text(text, strlen(text));
  memset(err, 0, sizeof *err);
  return mr_input_load_jsonl(in, path, nd, nt, err);
}

/* Asserts that text fails with MR_EFORMAT and a message containing want;
 * and that the failed load left the input empty. */
static void expect_error(const char *text, size_t nd, size_t nt,
                         const char *want) {
  mr_input_t in;
  mr_err_t err;
  int rc = load(&in, text, nd, nt, &err);
  cr_assert_eq(rc, MR_EFORMAT, "'%s': rc %d (%s)", text, rc, err.msg);
  cr_assert(strstr(err.msg, want), "'%s': message '%s' lacks '%s'", text,
            err.msg, want);
  cr_assert_eq(in.n, 0);
  cr_assert_null(in.ids);
  cr_assert_null(in.dense);
}

TestSuite(input_jsonl, .init = setup, .fini = teardown);

Test(input_jsonl, loads_dense_and_sparse_in_order) {
  mr_input_t in;
  mr_err_t err;
  cr_assert_eq(load(&in,
                    "{\"dense\": [0.5, 1, -2.25e1], \"sparse\": [3, 0]}\n"
                    "{\"sparse\": [9223372036854775807, 17], \"dense\": "
                    "[1e-3, 0, 3.4e38]}\n",
                    3, 2, &err),
               0, "%s", err.msg);
  cr_assert_eq(in.n, 2);
  cr_assert_eq(in.num_dense, 3);
  cr_assert_eq(in.num_tables, 2);
  cr_assert_null(in.labels);
  cr_assert_eq(in.dense[0], 0.5f);
  cr_assert_eq(in.dense[1], 1.0f);
  cr_assert_eq(in.dense[2], -22.5f);
  cr_assert_eq(in.dense[3], 1e-3f);
  cr_assert_eq(in.dense[5], 3.4e38f);
  cr_assert_eq(in.ids[0], 3);
  cr_assert_eq(in.ids[1], 0);
  cr_assert_eq(in.ids[2], INT64_MAX);
  cr_assert_eq(in.ids[3], 17);
  mr_input_free(&in);
}

Test(input_jsonl, dense_may_be_omitted_or_empty_without_dense_input) {
  mr_input_t in;
  mr_err_t err;
  cr_assert_eq(load(&in,
                    "{\"sparse\": [1, 2]}\n"
                    "{\"dense\": [], \"sparse\": [3, 4]}\n",
                    0, 2, &err),
               0, "%s", err.msg);
  cr_assert_eq(in.n, 2);
  cr_assert_null(in.dense);
  cr_assert_eq(in.ids[2], 3);
  cr_assert_eq(in.ids[3], 4);
  mr_input_free(&in);
}

Test(input_jsonl, accepts_crlf_spaces_trailing_blank_lines_and_no_final_newline) {
  mr_input_t in;
  mr_err_t err;
  cr_assert_eq(load(&in,
                    "  { \"sparse\" : [ 1 ,2 ] }\t\r\n"
                    "{\"sparse\":[5,6]}\n\n\r\n",
                    0, 2, &err),
               0, "%s", err.msg);
  cr_assert_eq(in.n, 2);
  cr_assert_eq(in.ids[3], 6);
  mr_input_free(&in);
  cr_assert_eq(load(&in, "{\"sparse\":[1,2]}\n{\"sparse\":[7,8]}", 0, 2, &err),
               0, "%s", err.msg);
  cr_assert_eq(in.n, 2);
  cr_assert_eq(in.ids[3], 8);
  mr_input_free(&in);
}

Test(input_jsonl, empty_file_gives_no_rows) {
  mr_input_t in;
  mr_err_t err;
  cr_assert_eq(load(&in, "", 3, 2, &err), 0, "%s", err.msg);
  cr_assert_eq(in.n, 0);
  mr_input_free(&in);
}

Test(input_jsonl, rejects_text_that_is_not_json_naming_the_line) {
  expect_error("{\"sparse\": [1, 2]}\nnope\n", 0, 2,
               "in.jsonl:2: cannot read it as JSON (");
  expect_error("nope\n", 0, 2,
               "expected a JSON object {\"dense\": [...], \"sparse\": [...]}");
  expect_error("{\"sparse\": [1, 2]}\n{\"sparse\": [1, 2]}\n{\"sparse\": [1,\n",
               0, 2, "in.jsonl:3: cannot read it as JSON");
  expect_error("{\"sparse\": [1, 2]} {}\n", 0, 2, "in.jsonl:1: cannot read");
  expect_error("{\"sparse\": [1, 2]}\n   \n", 0, 2, "in.jsonl:2: cannot read");
}

Test(input_jsonl, rejects_json_that_is_not_an_object) {
  expect_error("[1, 2]\n", 0, 2, "in.jsonl:1: found an array, expected a "
                                 "JSON object");
  expect_error("5\n", 0, 2, "found an integer, expected a JSON object");
  expect_error("\"row\"\n", 0, 2, "found a string, expected a JSON object");
  expect_error("null\n", 0, 2, "found null, expected a JSON object");
}

Test(input_jsonl, rejects_wrong_counts) {
  expect_error("{\"dense\": [1, 2], \"sparse\": [1, 2]}\n", 3, 2,
               "in.jsonl:1: \"dense\" has 2 values, expected 3 numbers "
               "(the model's dense inputs)");
  expect_error("{\"dense\": [1, 2, 3], \"sparse\": [1, 2, 3]}\n", 3, 2,
               "\"sparse\" has 3 values, expected 2 ids (one per table)");
  expect_error("{\"dense\": [1], \"sparse\": [1, 2]}\n", 0, 2,
               "\"dense\" has 1 values, expected 0 (the model has no dense "
               "input)");
  expect_error("{\"sparse\": [1, 2]}\n", 3, 2,
               "no \"dense\" key, expected 3 dense values");
  expect_error("{\"dense\": [1, 2, 3]}\n", 3, 2,
               "no \"sparse\" key, expected 2 ids (one per table)");
  expect_error("{\"dense\": {}, \"sparse\": [1, 2]}\n", 3, 2,
               "\"dense\" is an object, expected an array of 3 numbers");
  expect_error("{\"sparse\": 7}\n", 0, 2,
               "\"sparse\" is an integer, expected an array of 2 ids");
}

Test(input_jsonl, rejects_dense_values_that_are_not_float32_numbers) {
  expect_error("{\"dense\": [1, \"2\", 3], \"sparse\": [1, 2]}\n", 3, 2,
               "in.jsonl:1: dense[1] is a string, expected a number");
  expect_error("{\"dense\": [1, 2, null], \"sparse\": [1, 2]}\n", 3, 2,
               "dense[2] is null, expected a number");
  expect_error("{\"dense\": [true, 2, 3], \"sparse\": [1, 2]}\n", 3, 2,
               "dense[0] is true, expected a number");
  expect_error("{\"dense\": [[1], 2, 3], \"sparse\": [1, 2]}\n", 3, 2,
               "dense[0] is an array, expected a number");
  expect_error("{\"dense\": [1, 2, -1e39], \"sparse\": [1, 2]}\n", 3, 2,
               "dense[2] is -1e+39, expected a number within float32's range");
  expect_error("{\"dense\": [1, 2, NaN], \"sparse\": [1, 2]}\n", 3, 2,
               "cannot read it as JSON");
}

Test(input_jsonl, rejects_ids_that_are_not_non_negative_integers) {
  expect_error("{\"sparse\": [1, -1]}\n", 0, 2,
               "in.jsonl:1: sparse[1] is -1, expected an integer id >= 0");
  expect_error("{\"sparse\": [1.5, 1]}\n", 0, 2,
               "sparse[0] is 1.5, expected an integer id >= 0");
  expect_error("{\"sparse\": [2.0, 1]}\n", 0, 2,
               "sparse[0] is 2 written as a fraction, expected an integer id");
  expect_error("{\"sparse\": [1e3, 1]}\n", 0, 2,
               "sparse[0] is 1000 written as a fraction");
  expect_error("{\"sparse\": [\"3\", 1]}\n", 0, 2,
               "sparse[0] is a string, expected an integer id >= 0");
  expect_error("{\"sparse\": [1, null]}\n", 0, 2, "sparse[1] is null");
  expect_error("{\"sparse\": [1, 99999999999999999999]}\n", 0, 2,
               "cannot read it as JSON (too big integer");
}

Test(input_jsonl, rejects_unknown_and_duplicate_keys) {
  expect_error("{\"sparse\": [1, 2], \"label\": 1}\n", 0, 2,
               "in.jsonl:1: unexpected key \"label\", expected only "
               "\"dense\" and \"sparse\"");
  expect_error("{\"sparse\": [1, 2], \"sparse\": [1, 2]}\n", 0, 2,
               "duplicate object key");
  /* A control byte in a key does not reach the message. */
  expect_error("{\"sparse\": [1, 2], \"a\\u001bb\": 1}\n", 0, 2,
               "unexpected key \"a?b\"");
}

Test(input_jsonl, rejects_nul_bytes) {
  static const char text[] = "{\"sparse\": [1, 2]}\0\n";
  write_text(text, sizeof text - 1);
  mr_input_t in;
  mr_err_t err = {0};
  cr_assert_eq(mr_input_load_jsonl(&in, path, 0, 2, &err), MR_EFORMAT);
  cr_assert(strstr(err.msg, "in.jsonl:1: cannot read it as JSON"), "%s",
            err.msg);
}

Test(input_jsonl, blank_lines_only_at_the_end) {
  expect_error("{\"sparse\": [1, 2]}\n\n{\"sparse\": [1, 2]}\n", 0, 2,
               "in.jsonl:2: empty line, expected a JSON object");
}

Test(input_jsonl, rejects_overlong_lines_even_when_valid_json) {
  size_t max = MR_INPUT_JSONL_MAX_LINE(0, 2);
  const char *row = "{\"sparse\": [1, 2]";
  char *text = malloc(max + 64);
  /* Exactly max bytes: accepted. */
  size_t n = (size_t)sprintf(text, "%s", row);
  memset(text + n, ' ', max - n - 1);
  strcpy(text + max - 1, "}\n");
  mr_input_t in;
  mr_err_t err = {0};
  cr_assert_eq(load(&in, text, 0, 2, &err), 0, "%s", err.msg);
  cr_assert_eq(in.n, 1);
  mr_input_free(&in);
  /* One byte more, followed by a good row: refused, the limit holds even
   * when the whole line is already in the buffer. */
  memset(text + n, ' ', max - n);
  sprintf(text + max, "}\n%s}\n", row);
  char want[64];
  snprintf(want, sizeof want, "in.jsonl:1: line longer than %zu bytes", max);
  expect_error(text, 0, 2, want);
  free(text);
}

Test(input_jsonl, rejects_a_huge_line_without_reading_it_whole) {
  size_t big = 4u << 20;
  FILE *f = fopen(path, "wb");
  cr_assert(f);
  fputs("{\"sparse\": [1, 2]}\n{\"sparse\": [", f);
  char *chunk = malloc(1 << 20);
  memset(chunk, '1', 1 << 20);
  for (size_t i = 0; i < big; i += 1 << 20) fwrite(chunk, 1, 1 << 20, f);
  free(chunk);
  fclose(f);
  mr_input_t in;
  mr_err_t err = {0};
  cr_assert_eq(mr_input_load_jsonl(&in, path, 0, 2, &err), MR_EFORMAT);
  char want[64];
  snprintf(want, sizeof want, "in.jsonl:2: line longer than %zu bytes",
           MR_INPUT_JSONL_MAX_LINE(0, 2));
  cr_assert(strstr(err.msg, want), "%s", err.msg);
}

Test(input_jsonl, bad_arguments_and_missing_files) {
  mr_input_t in;
  mr_err_t err = {0};
  write_text("", 0);
  cr_assert_eq(mr_input_load_jsonl(&in, path, 3, 0, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "no tables"), "%s", err.msg);
  cr_assert_lt(mr_input_load_jsonl(&in, "/nonexistent/x.jsonl", 3, 2, &err),
               0);
  cr_assert(strstr(err.msg, "/nonexistent/x.jsonl: cannot open"), "%s",
            err.msg);
  cr_assert_eq(in.n, 0);
}

Test(input_jsonl, dash_reads_stdin) {
  write_text("{\"dense\": [1], \"sparse\": [4]}\n{\"dense\": [2], \"sparse\": "
             "[5]}\n", strlen("{\"dense\": [1], \"sparse\": [4]}\n{\"dense\": "
                              "[2], \"sparse\": [5]}\n"));
  cr_assert(freopen(path, "rb", stdin)); /* each test runs in its own process */
  mr_input_t in;
  mr_err_t err = {0};
  cr_assert_eq(mr_input_load_jsonl(&in, "-", 1, 1, &err), 0, "%s", err.msg);
  cr_assert_eq(in.n, 2);
  cr_assert_eq(in.dense[1], 2.0f);
  cr_assert_eq(in.ids[1], 5);
  mr_input_free(&in);
  write_text("{\"sparse\": [4]}\n{\"sparse\": [x]}\n",
             strlen("{\"sparse\": [4]}\n{\"sparse\": [x]}\n"));
  cr_assert(freopen(path, "rb", stdin));
  cr_assert_eq(mr_input_load_jsonl(&in, "-", 0, 1, &err), MR_EFORMAT);
  cr_assert(strstr(err.msg, "<stdin>:2: cannot read it as JSON"), "%s",
            err.msg);
}

Test(input_jsonl, criteo_reads_stdin_too_but_binary_does_not) {
  /* A Criteo row with only the label and three categorical features set. */
  char row[512];
  int n = snprintf(row, sizeof row, "1");
  for (int i = 0; i < 13; i++) n += snprintf(row + n, sizeof row - n, "\t");
  n += snprintf(row + n, sizeof row - n, "\ta\tb\tc");
  for (int i = 3; i < 26; i++) n += snprintf(row + n, sizeof row - n, "\t");
  n += snprintf(row + n, sizeof row - n, "\n");
  write_text(row, (size_t)n);
  cr_assert(freopen(path, "rb", stdin));
  mr_input_t in;
  mr_err_t err = {0};
  cr_assert_eq(mr_input_load_criteo(&in, "-", 0, 3, NULL, &err), 0, "%s",
               err.msg);
  cr_assert_eq(in.n, 1);
  cr_assert_eq(in.ids[2], 0xc);
  mr_input_free(&in);
  cr_assert_eq(mr_input_load_binary(&in, NULL, "-", 0, 3, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "binary arrays cannot be read from stdin ('-')"), "%s",
            err.msg);
  cr_assert_eq(mr_input_load_binary(&in, "-", path, 2, 3, &err), MR_EINVAL);
}
