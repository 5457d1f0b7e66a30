/* The input and output forms of `microrec score` and `microrec infer`
 * (client/cli/scoreio.h), through the real CLI binary: --jsonl against the
 * binary arrays and Criteo TSV, stdin ("-"), --output jsonl parsed with
 * jansson, and the exit codes scripts rely on (0 ok, 1 failure, 2 usage). */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/server_proc.h"

#define CLI MR_BUILD_DIR "/bin/microrec"
#define NROWS 100

static char dir[256];
static char model[320], dense[320], sparse[320], jsonl[320], tsv[320],
    errfile[320];

static void setup(void) {
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(model, sizeof model, "%s/model.safetensors", dir);
  snprintf(dense, sizeof dense, "%s/dense.f32", dir);
  snprintf(sparse, sizeof sparse, "%s/sparse.i64", dir);
  snprintf(jsonl, sizeof jsonl, "%s/rows.jsonl", dir);
  snprintf(tsv, sizeof tsv, "%s/rows.tsv", dir);
  snprintf(errfile, sizeof errfile, "%s/stderr.txt", dir);
}

static void teardown(void) {
  const char *files[] = {model, dense, sparse, jsonl, tsv, errfile};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink(files[i]);
  rmdir(dir);
}

TestSuite(cli_formats, .init = setup, .fini = teardown, .timeout = 120);

static const char *stderr_text(void);

/* Runs `microrec ARGS` (a shell fragment: redirections allowed) with
 * stderr to errfile; returns the exit code (-1 if killed) and stdout. */
static int run(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...) {
  char args[8192], cmd[9000];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "%s %s 2>%s", CLI, args, errfile);
  fflush(NULL);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p, "popen %s", cmd);
  size_t cap = 1 << 16, len = 0, n;
  char *buf = malloc(cap);
  while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
    len += n;
    if (cap - len < 4096) buf = realloc(buf, cap *= 2);
  }
  buf[len] = 0;
  int st = pclose(p);
  /* Under SAN=1 the CLI is sanitized too: any report fails the test, even
   * on a path that was meant to fail. */
  const char *e = stderr_text();
  cr_assert(!strstr(e, "Sanitizer") && !strstr(e, "runtime error"),
            "`microrec %s`: %s", args, e);
  if (out)
    *out = buf;
  else
    free(buf);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* What the last command wrote to stderr (static buffer). */
static const char *stderr_text(void) {
  static char text[8192];
  FILE *f = fopen(errfile, "rb");
  size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
  if (f) fclose(f);
  text[n] = 0;
  return text;
}


static size_t count_lines(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* Deterministic input rows for a model with nd dense inputs and tables of
 * rows[0..nt) rows: dense in [0, 4) as Criteo's log(1 + x), ids in range. */
static void make_rows(size_t n, size_t nd, size_t nt, const uint64_t *rows,
                      float *d, int64_t *ids) {
  uint64_t s = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < nd; j++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      d[i * nd + j] = (float)(s >> 40) / (float)(1 << 24) * 4.0f;
    }
    for (size_t k = 0; k < nt; k++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      ids[i * nt + k] = (int64_t)((s >> 33) % rows[k]);
    }
  }
}

static void write_file(const char *path, const void *buf, size_t len) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "open %s", path);
  cr_assert_eq(fwrite(buf, 1, len, f), len);
  cr_assert_eq(fclose(f), 0);
}

static void write_str(const char *path, const char *text) {
  write_file(path, text, strlen(text));
}

/* Writes the rows as the binary arrays (dense only when nd > 0) and as JSON
 * lines; %.17g keeps every float exact. omit_dense: leave "dense" out on
 * even rows and write [] on odd ones (for nd = 0). */
static void write_inputs(size_t n, size_t nd, size_t nt, const float *d,
                         const int64_t *ids, int omit_dense) {
  if (nd) write_file(dense, d, n * nd * sizeof *d);
  write_file(sparse, ids, n * nt * sizeof *ids);
  FILE *f = fopen(jsonl, "wb");
  cr_assert_not_null(f);
  for (size_t i = 0; i < n; i++) {
    fputc('{', f);
    if (!omit_dense || i % 2) {
      fputs("\"dense\": [", f);
      for (size_t j = 0; j < nd; j++)
        fprintf(f, "%s%.17g", j ? ", " : "", (double)d[i * nd + j]);
      fputs("], ", f);
    }
    fputs("\"sparse\": [", f);
    for (size_t k = 0; k < nt; k++)
      fprintf(f, "%s%lld", k ? ", " : "", (long long)ids[i * nt + k]);
    fputs("]}\n", f);
  }
  cr_assert_eq(fclose(f), 0);
}

/* The small model with dense input of server_proc.h, and rows for it. */
static void small_model_with_rows(void) {
  mr_test_write_small_model(model);
  static float d[NROWS * MR_TEST_NUM_DENSE];
  static int64_t ids[NROWS * MR_TEST_NUM_TABLES];
  make_rows(NROWS, MR_TEST_NUM_DENSE, MR_TEST_NUM_TABLES, mr_test_rows, d,
            ids);
  write_inputs(NROWS, MR_TEST_NUM_DENSE, MR_TEST_NUM_TABLES, d, ids, 0);
}

static const char *const MODES[] = {
    "", "--logits", "--output text --logits --batch 7", "--output jsonl",
    "--output jsonl --logits", "--output jsonl --logits --batch 3"};
#define NMODES (sizeof MODES / sizeof MODES[0])

Test(cli_formats, score_binary_and_jsonl_give_identical_output) {
  small_model_with_rows();
  for (size_t m = 0; m < NMODES; m++) {
    char *bin, *js, *in;
    int st = run(&bin, "score %s --dense %s --sparse %s %s", model, dense,
                 sparse, MODES[m]);
    cr_assert_eq(st, 0, "binary, '%s': exit %d: %s", MODES[m], st,
                 stderr_text());
    cr_assert_eq(count_lines(bin), NROWS, "'%s': %s", MODES[m], bin);
    st = run(&js, "score %s --jsonl %s %s", model, jsonl, MODES[m]);
    cr_assert_eq(st, 0, "jsonl, '%s': exit %d: %s", MODES[m], st,
                 stderr_text());
    cr_assert_str_eq(js, bin, "'%s': --jsonl differs from --sparse", MODES[m]);
    st = run(&in, "score %s --jsonl - %s <%s", model, MODES[m], jsonl);
    cr_assert_eq(st, 0, "stdin, '%s': exit %d: %s", MODES[m], st,
                 stderr_text());
    cr_assert_str_eq(in, bin, "'%s': --jsonl - differs", MODES[m]);
    free(bin);
    free(js);
    free(in);
  }
}

/* Parses one output line as a JSON object with exactly the given keys. */
static json_t *parse_row(const char *line, size_t len, size_t row,
                         int with_logit) {
  json_error_t jerr;
  json_t *o = json_loadb(line, len, 0, &jerr);
  cr_assert_not_null(o, "row %zu: '%.*s' is not JSON: %s", row, (int)len,
                     line, jerr.text);
  cr_assert(json_is_object(o), "row %zu: not an object", row);
  cr_assert_eq(json_object_size(o), with_logit ? 2u : 1u,
               "row %zu: keys of '%.*s'", row, (int)len, line);
  cr_assert(json_is_number(json_object_get(o, "score")), "row %zu", row);
  if (with_logit)
    cr_assert(json_is_number(json_object_get(o, "logit")), "row %zu", row);
  return o;
}

Test(cli_formats, jsonl_output_is_one_object_per_row_matching_text) {
  small_model_with_rows();
  char *scores, *logits, *both, *only;
  cr_assert_eq(run(&scores, "score %s --jsonl %s", model, jsonl), 0, "%s",
               stderr_text());
  cr_assert_eq(run(&logits, "score %s --jsonl %s --logits", model, jsonl), 0);
  cr_assert_eq(run(&both, "score %s --jsonl %s --output jsonl --logits",
                   model, jsonl), 0);
  cr_assert_eq(run(&only, "score %s --jsonl %s --output jsonl", model, jsonl),
               0);
  const char *ps = scores, *pl = logits, *pb = both, *po = only;
  for (size_t i = 0; i < NROWS; i++) {
    char *end;
    double s = strtod(ps, &end);
    cr_assert(end != ps && *end == '\n', "text row %zu", i);
    ps = end + 1;
    double l = strtod(pl, &end);
    cr_assert(end != pl && *end == '\n', "text row %zu", i);
    pl = end + 1;
    const char *nl = strchr(pb, '\n');
    cr_assert_not_null(nl, "jsonl output ends at row %zu", i);
    json_t *o = parse_row(pb, (size_t)(nl - pb), i, 1);
    cr_assert_eq(json_number_value(json_object_get(o, "score")), s,
                 "row %zu: score differs from the text output", i);
    cr_assert_eq(json_number_value(json_object_get(o, "logit")), l,
                 "row %zu: logit differs from the text output", i);
    cr_assert(fabs(s - 1.0 / (1.0 + exp(-l))) < 1e-6, "row %zu: %g vs %g", i,
              s, l);
    json_decref(o);
    pb = nl + 1;
    nl = strchr(po, '\n');
    cr_assert_not_null(nl);
    o = parse_row(po, (size_t)(nl - po), i, 0);
    cr_assert_eq(json_number_value(json_object_get(o, "score")), s);
    json_decref(o);
    po = nl + 1;
  }
  cr_assert_eq(*pb, 0, "extra output: %.60s", pb);
  free(scores);
  free(logits);
  free(both);
  free(only);
}

/* A model without dense input (MicroRec's concatenation), tables of 10, 20
 * and 30 rows. */
static void no_dense_model(void) {
  mr_gen_spec_t spec;
  memset(&spec, 0, sizeof spec);
  spec.interaction = MR_INTERACT_CAT;
  spec.num_tables = MR_TEST_NUM_TABLES;
  for (size_t k = 0; k < MR_TEST_NUM_TABLES; k++) {
    spec.rows[k] = mr_test_rows[k];
    spec.dims[k] = 4;
  }
  spec.num_top_widths = 2;
  spec.top_widths[0] = 16;
  spec.top_widths[1] = 1;
  spec.seed = 11;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_write(&spec, model, NULL, NULL, &err), 0, "%s",
               err.msg);
}

Test(cli_formats, model_without_dense_input_from_every_form) {
  no_dense_model();
  static int64_t ids[NROWS * MR_TEST_NUM_TABLES];
  make_rows(NROWS, 0, MR_TEST_NUM_TABLES, mr_test_rows, NULL, ids);
  write_inputs(NROWS, 0, MR_TEST_NUM_TABLES, NULL, ids, 1);
  /* Criteo rows whose first three categorical features are the ids in hex
   * (so reducing them mod the rows changes nothing); no dense features. */
  FILE *f = fopen(tsv, "wb");
  cr_assert_not_null(f);
  for (size_t i = 0; i < NROWS; i++) {
    fputs("0", f);
    for (int j = 0; j < 13; j++) fputc('\t', f);
    for (int k = 0; k < 26; k++) {
      fputc('\t', f);
      if (k < MR_TEST_NUM_TABLES)
        fprintf(f, "%llx", (unsigned long long)ids[i * MR_TEST_NUM_TABLES + k]);
    }
    fputc('\n', f);
  }
  cr_assert_eq(fclose(f), 0);

  char *bin, *out;
  cr_assert_eq(run(&bin, "score %s --sparse %s --output jsonl --logits", model,
                   sparse), 0, "%s", stderr_text());
  cr_assert_eq(count_lines(bin), NROWS);
  cr_assert_eq(run(&out, "score %s --jsonl %s --output jsonl --logits", model,
                   jsonl), 0, "%s", stderr_text());
  cr_assert_str_eq(out, bin);
  free(out);
  cr_assert_eq(run(&out, "score %s --criteo %s --output jsonl --logits",
                   model, tsv), 0, "%s", stderr_text());
  cr_assert_str_eq(out, bin);
  free(out);
  cr_assert_eq(run(&out, "score %s --criteo - --output jsonl --logits <%s",
                   model, tsv), 0, "%s", stderr_text());
  cr_assert_str_eq(out, bin);
  free(out);
  /* A dense file for a model without dense input is a usage error. */
  write_file(dense, "\0\0\0\0", 4);
  cr_assert_eq(run(&out, "score %s --dense %s --sparse %s", model, dense,
                   sparse), 2);
  cr_assert(strstr(stderr_text(), "no dense input: drop --dense"), "%s",
            stderr_text());
  cr_assert_eq(*out, 0);
  free(out);
  free(bin);
}

/* Runs args, expects exit code want, nothing on stdout, and (when not NULL)
 * msg in stderr. */
static void expect_exit(int want, const char *msg, const char *args) {
  char *out;
  int st = run(&out, "%s", args);
  cr_assert_eq(st, want, "`microrec %s` exited %d, expected %d: %s", args, st,
               want, stderr_text());
  cr_assert_eq(*out, 0, "`microrec %s` printed '%.80s'", args, out);
  if (msg)
    cr_assert(strstr(stderr_text(), msg), "`microrec %s`: stderr '%s' lacks "
              "'%s'", args, stderr_text(), msg);
  free(out);
}

Test(cli_formats, score_exit_codes) {
  small_model_with_rows();
  char a[4096];
  char *out;
  cr_assert_eq(run(&out, "score --help"), 0);
  cr_assert(strstr(out, "--jsonl FILE") && strstr(out, "--output FORMAT") &&
                strstr(out, "exit codes"), "%s", out);
  free(out);
  /* Usage errors: 2, before the model is even opened. */
  expect_exit(2, "MODEL file is missing", "score --jsonl x");
  expect_exit(2, "exactly one input", "score m");
  snprintf(a, sizeof a, "score %s --jsonl %s --sparse %s", model, jsonl,
           sparse);
  expect_exit(2, "got more than one", a);
  expect_exit(2, "exactly one input", "score m --criteo a --jsonl b");
  expect_exit(2, "--dense goes with --sparse, not with --jsonl",
              "score m --jsonl a --dense b");
  expect_exit(2, "--dense goes with --sparse, not with --criteo",
              "score m --criteo a --dense b");
  expect_exit(2, "need files, not '-'", "score m --sparse -");
  expect_exit(2, "need files, not '-'", "score m --sparse a --dense -");
  expect_exit(2, "--output takes 'text' or 'jsonl', not 'xml'",
              "score m --jsonl a --output xml");
  expect_exit(2, "--batch takes", "score m --jsonl a --batch 0");
  expect_exit(2, "--batch takes", "score m --jsonl a --batch -5");
  expect_exit(2, "--engine 'gpu' unknown", "score m --jsonl a --engine gpu");
  expect_exit(2, "--simd takes", "score m --jsonl a --simd sse");
  expect_exit(2, NULL, "score m --jsonl a --bogus");
  expect_exit(2, "unexpected argument 'extra'", "score m extra --jsonl a");
  /* Flags that do not fit the model: 2. */
  snprintf(a, sizeof a, "score %s --sparse %s", model, sparse);
  expect_exit(2, "4 dense inputs: give --dense FILE", a);
  /* Failures: 1. */
  snprintf(a, sizeof a, "score %s/none.safetensors --jsonl %s", dir, jsonl);
  expect_exit(1, "none.safetensors", a);
  snprintf(a, sizeof a, "score %s --jsonl %s/none.jsonl", model, dir);
  expect_exit(1, "none.jsonl: cannot open", a);
  snprintf(a, sizeof a, "score %s --sparse %s --dense %s", model, sparse,
           sparse);
  expect_exit(1, "expected the same", a); /* row counts disagree */
  write_str(jsonl, "{\"dense\": [1, 2, 3, 4], \"sparse\": [1, 2, 3]}\n"
                   "{\"dense\": [1, 2, 3], \"sparse\": [1, 2, 3]}\n");
  snprintf(a, sizeof a, "score %s --jsonl %s", model, jsonl);
  expect_exit(1, "rows.jsonl:2: \"dense\" has 3 values, expected 4", a);
  snprintf(a, sizeof a, "score %s --jsonl - <%s", model, jsonl);
  expect_exit(1, "<stdin>:2: \"dense\" has 3 values", a);
  /* No rows: nothing to print, and that is a success. */
  write_str(jsonl, "");
  snprintf(a, sizeof a, "score %s --jsonl %s --output jsonl", model, jsonl);
  expect_exit(0, NULL, a);
  /* An id past its table: the engine refuses it. */
  write_str(jsonl, "{\"dense\": [1, 2, 3, 4], \"sparse\": [1, 2, 30]}\n");
  snprintf(a, sizeof a, "score %s --jsonl %s", model, jsonl);
  expect_exit(1, NULL, a);
}

Test(cli_formats, write_error_exits_1) {
  if (access("/dev/full", W_OK) != 0) cr_skip_test("no /dev/full");
  small_model_with_rows();
  char *out;
  int st = run(&out, "score %s --jsonl %s --output jsonl >/dev/full", model,
               jsonl);
  cr_assert_eq(st, 1, "exit %d: %s", st, stderr_text());
  cr_assert(strstr(stderr_text(), "writing the results"), "%s",
            stderr_text());
  free(out);
}

Test(cli_formats, infer_usage_errors_exit_2_before_connecting) {
  char *out;
  cr_assert_eq(run(&out, "infer --help"), 0);
  cr_assert(strstr(out, "--jsonl FILE") && strstr(out, "--output FORMAT") &&
                strstr(out, "exit codes"), "%s", out);
  free(out);
  /* Port 1 has no server: were these flags accepted, the exit would be 1. */
  expect_exit(2, "exactly one input", "infer --server 127.0.0.1:1");
  expect_exit(2, "got more than one",
              "infer --server 127.0.0.1:1 --jsonl a --criteo b");
  expect_exit(2, "--dense goes with --sparse",
              "infer --server 127.0.0.1:1 --jsonl a --dense b");
  expect_exit(2, "need files, not '-'",
              "infer --server 127.0.0.1:1 --sparse -");
  expect_exit(2, "--output takes",
              "infer --server 127.0.0.1:1 --jsonl a --output csv");
  expect_exit(2, "--window", "infer --server 127.0.0.1:1 --jsonl a --window 0");
  expect_exit(2, "--server", "infer --server 127.0.0.1:99999 --jsonl a");
  expect_exit(1, NULL, "infer --server 127.0.0.1:1 --jsonl a");
}

/* Numbers of two outputs agree within tol (the server batches as it likes,
 * so allow for a different summation order). */
static void expect_close(const char *a, const char *b, double tol) {
  size_t la = strlen(a), lb = strlen(b);
  cr_assert_eq(count_lines(a), count_lines(b), "%zu vs %zu bytes", la, lb);
  const char *pa = a, *pb = b;
  for (size_t line = 1; *pa; line++) {
    const char *ea = strchr(pa, '\n'), *eb = strchr(pb, '\n');
    /* Same text around the numbers: compare them one by one. */
    while (pa < ea) {
      if ((*pa >= '0' && *pa <= '9') || *pa == '-') {
        char *na, *nb;
        double va = strtod(pa, &na), vb = strtod(pb, &nb);
        cr_assert(nb != pb, "line %zu: '%.*s' vs '%.*s'", line,
                  (int)(ea - pa), pa, (int)(eb - pb), pb);
        cr_assert(fabs(va - vb) <= tol, "line %zu: %.9g vs %.9g", line, va,
                  vb);
        pa = na;
        pb = nb;
      } else {
        cr_assert_eq(*pa, *pb, "line %zu: '%.*s' vs '%.*s'", line,
                     (int)(ea - pa), pa, (int)(eb - pb), pb);
        pa++;
        pb++;
      }
    }
    cr_assert_eq(pb, eb, "line %zu: longer in the second output", line);
    pa++;
    pb++;
  }
}

static mr_test_server_t srv;

/* Runs before the suite's teardown, also when the test failed. */
static void stop_server(void) { mr_test_server_stop(&srv); }

Test(cli_formats, infer_takes_the_same_forms_as_score, .fini = stop_server) {
  small_model_with_rows();
  mr_test_server_start(&srv, model, NULL);
  for (size_t m = 0; m < NMODES; m++) {
    char *want, *got;
    cr_assert_eq(run(&want, "score %s --jsonl %s %s", model, jsonl, MODES[m]),
                 0, "%s", stderr_text());
    cr_assert_eq(run(&got, "infer --server 127.0.0.1:%u --jsonl %s %s",
                     srv.port, jsonl, MODES[m]),
                 0, "'%s': %s", MODES[m], stderr_text());
    expect_close(got, want, 1e-5);
    free(got);
    cr_assert_eq(run(&got, "infer --server 127.0.0.1:%u --jsonl - %s <%s",
                     srv.port, MODES[m], jsonl),
                 0, "'%s': %s", MODES[m], stderr_text());
    expect_close(got, want, 1e-5);
    free(got);
    cr_assert_eq(run(&got, "infer --server 127.0.0.1:%u --dense %s --sparse "
                     "%s %s --batch 13", srv.port, dense, sparse, MODES[m]),
                 0, "'%s': %s", MODES[m], stderr_text());
    expect_close(got, want, 1e-5);
    free(got);
    free(want);
  }
  char a[4096];
  snprintf(a, sizeof a, "infer --server 127.0.0.1:%u --sparse %s", srv.port,
           sparse);
  expect_exit(2, "4 dense inputs: give --dense FILE", a);
  write_str(jsonl, "{\"dense\": [1, 2, 3, 4], \"sparse\": [1, 2, -3]}\n");
  snprintf(a, sizeof a, "infer --server 127.0.0.1:%u --jsonl %s", srv.port,
           jsonl);
  expect_exit(1, "rows.jsonl:1: sparse[2] is -3, expected an integer id", a);
  write_str(jsonl, "{\"dense\": [1, 2, 3, 4], \"sparse\": [1, 2, 30]}\n");
  expect_exit(1, NULL, a); /* the server refuses an id past its table */
  write_str(jsonl, "");
  expect_exit(0, NULL, a); /* no rows: nothing to print */
  mr_test_server_stop_clean(&srv);
}

Test(cli_formats, dlrm_jsonl_reproduces_pytorch_logits) {
  MR_REQUIRE_TESTDATA();
  const char *td = mr_test_testdata();
  char path[4096];
  size_t dlen = 0, slen = 0, llen = 0;
  snprintf(path, sizeof path, "%s/dlrm-criteo-small/criteo-1k/dense.f32", td);
  float *d = mr_test_read_file(path, &dlen);
  snprintf(path, sizeof path, "%s/dlrm-criteo-small/criteo-1k/sparse.i64", td);
  int64_t *ids = mr_test_read_file(path, &slen);
  snprintf(path, sizeof path, "%s/dlrm-criteo-small/criteo-1k/logits.f32", td);
  float *ref = mr_test_read_file(path, &llen);
  cr_assert(d && ids && ref, "reading the criteo-1k arrays");
  size_t n = llen / sizeof(float);
  cr_assert_eq(n, 1000);
  cr_assert_eq(dlen, n * 13 * sizeof(float));
  cr_assert_eq(slen, n * 26 * sizeof(int64_t));
  write_inputs(n, 13, 26, d, ids, 0);

  char *out;
  int st = run(&out, "score %s/dlrm-criteo-small/model.safetensors --jsonl %s "
               "--output jsonl --logits", td, jsonl);
  cr_assert_eq(st, 0, "exit %d: %s", st, stderr_text());
  const char *p = out;
  for (size_t i = 0; i < n; i++) {
    const char *nl = strchr(p, '\n');
    cr_assert_not_null(nl, "output ends at row %zu", i);
    json_t *o = parse_row(p, (size_t)(nl - p), i, 1);
    double l = json_number_value(json_object_get(o, "logit"));
    double s = json_number_value(json_object_get(o, "score"));
    cr_assert(fabs(l - ref[i]) <= 1e-3, "row %zu: logit %.7g, PyTorch %.7g",
              i, l, (double)ref[i]);
    cr_assert(fabs(s - 1.0 / (1.0 + exp(-l))) < 1e-6, "row %zu", i);
    json_decref(o);
    p = nl + 1;
  }
  cr_assert_eq(*p, 0, "extra output: %.60s", p);
  free(out);
  free(d);
  free(ids);
  free(ref);
}
