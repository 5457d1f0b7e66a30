/* Loading DLRM models: the names, the conversions, and every bad model the
 * loader must refuse with a message naming the tensor. Files are built with
 * the safetensors writer from one line per tensor: "name DTYPE d0 [d1]". */
#include <errno.h>
#include <stdint.h>

#include "fpga/model.h"
#include "fpga/safetensors.h"
#include "tests/unit/testutil.h"

/* Values small integers and halves: exact in F16 and BF16. */
static float value(size_t t, uint64_t i) {
  return (float)((t * 7 + i) % 13) * 0.5f - 3.0f;
}

typedef struct spec {
  mr_st_desc_t d[64];
  char names[64][48];
  size_t n;
} spec_t;

static void parse_lines(spec_t *s, const char *const *lines, size_t n) {
  s->n = n;
  for (size_t i = 0; i < n; i++) {
    char dt[8];
    unsigned long long a = 0, b = 0;
    int k = sscanf(lines[i], "%47s %7s %llu %llu", s->names[i], dt, &a, &b);
    cr_assert_geq(k, 3, "bad test line %s", lines[i]);
    s->d[i].name = s->names[i];
    cr_assert_eq(mr_dtype_parse(dt, &s->d[i].dtype), 0);
    s->d[i].ndim = (size_t)(k - 2);
    s->d[i].shape[0] = a;
    s->d[i].shape[1] = b;
  }
}

static int fill(void *ctx, size_t t, uint64_t off, void *buf, size_t n) {
  const spec_t *s = ctx;
  size_t esz = mr_dtype_size(s->d[t].dtype), count = n / esz;
  float *f = malloc(count * sizeof *f + 1);
  for (size_t i = 0; i < count; i++) f[i] = value(t, off / esz + i);
  mr_f32_to_dtype(s->d[t].dtype, f, buf, count);
  free(f);
  return 0;
}

/* Writes the tensors (with __metadata__.interaction unless inter is NULL)
 * and opens the file. */
static int open_lines(mr_model_t *m, const char *inter,
                      const char *const *lines, size_t n, mr_err_t *err) {
  spec_t s;
  parse_lines(&s, lines, n);
  char dir[64], path[128];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/m.safetensors", dir);
  const char *meta[] = {"interaction", inter};
  mr_err_t werr = {0};
  cr_assert_eq(mr_st_write(path, s.d, n, meta, inter ? 1 : 0, fill, NULL, &s,
                           &werr),
               0, "%s", werr.msg);
  int rc = mr_model_open(m, path, err);
  unlink(path);
  rmdir(dir);
  return rc;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void expect_bad(const char *inter, const char *const *lines, size_t n,
                       const char *want) {
  mr_model_t m;
  mr_err_t err = {0};
  int rc = open_lines(&m, inter, lines, n, &err);
  cr_assert_eq(rc, MR_EFORMAT, "rc %d (%s)", rc, err.msg);
  cr_assert(strstr(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
  cr_assert_null(m.tables, "model left closed");
}

/* dot: 2 tables of width 2, bottom 3-4-2, top (2 + 3 pairs = 5)-3-1. */
static const char *const dot_model[] = {
    "emb_l.0.weight F32 5 2", "emb_l.1.weight F32 7 2",
    "bot_l.0.weight F32 4 3", "bot_l.0.bias F32 4",
    "bot_l.2.weight F32 2 4", "bot_l.2.bias F32 2",
    "top_l.0.weight F32 3 5", "top_l.0.bias F32 3",
    "top_l.2.weight F32 1 3", "top_l.2.bias F32 1"};

/* cat: tables of width 2 and 3, no bottom, top 5-1. */
static const char *const cat_model[] = {
    "emb_l.0.weight F32 5 2", "emb_l.1.weight F32 7 3",
    "top_l.0.weight F32 1 5", "top_l.0.bias F32 1"};

Test(model, loads_dot_model) {
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(open_lines(&m, "dot", dot_model, N(dot_model), &err), 0, "%s",
               err.msg);
  cr_assert_eq(m.interaction, MR_INTERACT_DOT);
  cr_assert_eq(m.num_tables, 2);
  cr_assert_eq(m.tables[1].rows, 7);
  cr_assert_eq(m.tables[1].dim, 2);
  cr_assert_eq(m.num_dense, 3);
  cr_assert_eq(m.num_bot, 2);
  cr_assert_eq(m.bot[1].in, 4);
  cr_assert_eq(m.bot[1].out, 2);
  cr_assert_eq(m.num_top, 2);
  cr_assert_eq(mr_model_top_in(&m), 5);
  cr_assert_eq(m.top[0].in, 5);
  /* tensor 3 is bot_l.0.bias; tensor 8 top_l.2.weight */
  cr_assert_eq(m.bot[0].bias[2], value(3, 2));
  cr_assert_eq(m.top[1].weight[1], value(8, 1));
  cr_assert_eq(m.tables[1].data[13], value(1, 13));
  uint64_t params = 5 * 2 + 7 * 2 + 4 * 3 + 4 + 2 * 4 + 2 + 3 * 5 + 3 + 3 + 1;
  cr_assert_eq(mr_model_param_bytes(&m), params * 4);
  cr_assert_eq(m.num_owned_, 0, "aligned F32 is used in place");
  cr_assert_str_eq(mr_interaction_name(m.interaction), "dot");
  mr_model_close(&m);
  cr_assert_null(m.tables);
  mr_model_close(&m); /* twice is fine */
}

Test(model, loads_cat_model_without_bottom) {
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(open_lines(&m, "cat", cat_model, N(cat_model), &err), 0, "%s",
               err.msg);
  cr_assert_eq(m.interaction, MR_INTERACT_CAT);
  cr_assert_eq(m.num_dense, 0);
  cr_assert_eq(m.num_bot, 0);
  cr_assert_eq(mr_model_top_in(&m), 5);
  mr_model_close(&m);
}

Test(model, interaction_defaults_to_dot) {
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(open_lines(&m, NULL, dot_model, N(dot_model), &err), 0, "%s",
               err.msg);
  cr_assert_eq(m.interaction, MR_INTERACT_DOT);
  mr_model_close(&m);
  /* ...so a cat-shaped file without metadata fails as dot. */
  cr_assert_eq(open_lines(&m, NULL, cat_model, N(cat_model), &err), MR_EFORMAT);
  cr_assert(strstr(err.msg, "dot interaction"), "%s", err.msg);
}

Test(model, converts_f16_and_bf16) {
  const char *const lines[] = {"emb_l.0.weight F16 5 2", "emb_l.1.weight BF16 7 3",
                               "top_l.0.weight F16 1 5", "top_l.0.bias BF16 1"};
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(open_lines(&m, "cat", lines, N(lines), &err), 0, "%s", err.msg);
  cr_assert_eq(m.num_owned_, 4);
  for (size_t i = 0; i < 10; i++) cr_assert_eq(m.tables[0].data[i], value(0, i));
  for (size_t i = 0; i < 21; i++) cr_assert_eq(m.tables[1].data[i], value(1, i));
  cr_assert_eq(m.top[0].bias[0], value(3, 0));
  mr_model_close(&m);
}

Test(model, misaligned_f32_is_copied) {
  const char *const lines[] = {"x F16 1", "emb_l.0.weight F32 5 2",
                               "emb_l.1.weight F32 7 3",
                               "top_l.0.weight F32 1 5", "top_l.0.bias F32 1"};
  spec_t s;
  parse_lines(&s, lines, N(lines));
  char dir[64], path[128];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/m.safetensors", dir);
  const char *meta[] = {"interaction", "cat"};
  mr_err_t err = {0};
  cr_assert_eq(mr_st_write(path, s.d, s.n, meta, 1, fill, NULL, &s, &err), 0);
  size_t len = 0;
  unsigned char *b = mr_test_read_file(path, &len);
  mr_model_t m;
  cr_assert_eq(mr_model_open_buffer(&m, b, len, &err), 0, "%s", err.msg);
  /* The 2-byte tensor x shifts every F32 tensor off 4-byte alignment. */
  cr_assert_eq(m.num_owned_, 4);
  cr_assert_eq(m.tables[1].data[20], value(2, 20));
  cr_assert_eq((uintptr_t)m.tables[0].data % 4, 0);
  mr_model_close(&m);
  free(b);
  unlink(path);
  rmdir(dir);
}

Test(model, ignores_other_tensors) {
  const char *const lines[] = {"emb_l.0.weight F32 5 2", "emb_l.1.weight F32 7 3",
                               "top_l.0.weight F32 1 5", "top_l.0.bias F32 1",
                               "optimizer.step F32 1", "emb_l.0.bias F32 2",
                               "emb_l.01.weight F32 1 1"};
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(open_lines(&m, "cat", lines, N(lines), &err), 0, "%s", err.msg);
  cr_assert_eq(m.num_tables, 2);
  mr_model_close(&m);
}

/* ---- bad files ---- */

static void write_bytes(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert(f);
  cr_assert_eq(fwrite(b, 1, n, f), n);
  fclose(f);
}

Test(model, rejects_truncated_file) {
  char dir[64], path[128];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/short.safetensors", dir);
  write_bytes(path, "\x10\0\0", 3);
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open(&m, path, &err), MR_EFORMAT);
  cr_assert(strstr(err.msg, "short.safetensors: truncated"), "%s", err.msg);
  write_bytes(path, "", 0);
  cr_assert_eq(mr_model_open(&m, path, &err), MR_EFORMAT);
  cr_assert(strstr(err.msg, "truncated: 0 bytes"), "%s", err.msg);
  unlink(path);
  rmdir(dir);
}

Test(model, rejects_missing_file_and_directory) {
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open(&m, "/nonexistent/m.safetensors", &err), -ENOENT);
  cr_assert(strstr(err.msg, "/nonexistent/m.safetensors"), "%s", err.msg);
  cr_assert_eq(mr_model_open(&m, "/tmp", &err), -EISDIR);
}

Test(model, rejects_header_length_past_end) {
  unsigned char b[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open_buffer(&m, b, sizeof b, &err), MR_EFORMAT);
  cr_assert(strstr(err.msg, "header length 65535 runs past the end"), "%s",
            err.msg);
}

Test(model, rejects_header_that_is_not_json) {
  const char img[] = "\x06\0\0\0\0\0\0\0{nope}";
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open_buffer(&m, img, sizeof img - 1, &err), MR_EFORMAT);
  cr_assert(strstr(err.msg, "header is not JSON"), "%s", err.msg);
}

Test(model, rejects_unknown_dtype) {
  const char json[] = "{\"emb_l.3.weight\":{\"dtype\":\"I64\",\"shape\":[1],"
                      "\"data_offsets\":[0,8]}}";
  unsigned char b[256] = {0};
  b[0] = (unsigned char)(sizeof json - 1);
  memcpy(b + 8, json, sizeof json - 1);
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open_buffer(&m, b, 8 + sizeof json - 1 + 8, &err),
               MR_EFORMAT);
  cr_assert(strstr(err.msg, "tensor emb_l.3.weight: dtype I64 not supported "
                            "(expected F32, F16 or BF16)"),
            "%s", err.msg);
}

static void expect_bad_json(const char *json, size_t data, const char *want) {
  size_t h = strlen(json), len = 8 + h + data;
  unsigned char *b = calloc(1, len);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
  memcpy(b + 8, json, h);
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open_buffer(&m, b, len, &err), MR_EFORMAT);
  cr_assert(strstr(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
  free(b);
}

Test(model, rejects_overlapping_or_out_of_file_offsets) {
  expect_bad_json("{\"emb_l.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],"
                  "\"data_offsets\":[0,16]},"
                  "\"top_l.0.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],"
                  "\"data_offsets\":[8,16]}}",
                  16, "tensors emb_l.0.weight [0, 16) and top_l.0.weight [8, 16) overlap");
  expect_bad_json("{\"emb_l.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],"
                  "\"data_offsets\":[0,16]}}",
                  12, "tensor emb_l.0.weight: data_offsets [0, 16] outside the "
                      "data area (12 bytes)");
}

Test(model, rejects_missing_layer) {
  const char *const gap[] = {"emb_l.0.weight F32 5 2", "emb_l.1.weight F32 7 3",
                             "top_l.0.weight F32 4 5", "top_l.0.bias F32 4",
                             "top_l.4.weight F32 1 4", "top_l.4.bias F32 1"};
  expect_bad("cat", gap, N(gap), "missing layer top_l.2.weight (found top_l.4.");
  const char *const nobias[] = {"emb_l.0.weight F32 5 2",
                                "emb_l.1.weight F32 7 3",
                                "top_l.0.weight F32 1 5"};
  expect_bad("cat", nobias, N(nobias), "missing layer top_l.0.bias");
  const char *const notop[] = {"emb_l.0.weight F32 5 2"};
  expect_bad("cat", notop, N(notop), "missing layer top_l.0.weight");
  const char *const odd[] = {"emb_l.0.weight F32 5 2", "top_l.0.weight F32 1 2",
                             "top_l.0.bias F32 1", "top_l.1.weight F32 1 1"};
  expect_bad("cat", odd, N(odd), "tensor top_l.1.weight: odd layer index");
}

Test(model, rejects_missing_table) {
  const char *const gap[] = {"emb_l.0.weight F32 5 2", "emb_l.2.weight F32 7 3",
                             "top_l.0.weight F32 1 5", "top_l.0.bias F32 1"};
  expect_bad("cat", gap, N(gap), "missing tensor emb_l.1.weight (found emb_l.2.weight");
  const char *const none[] = {"top_l.0.weight F32 1 5", "top_l.0.bias F32 1"};
  expect_bad("cat", none, N(none), "missing tensor emb_l.0.weight");
  const char *const far[] = {"emb_l.0.weight F32 5 2",
                             "emb_l.99999999999999999999.weight F32 1 1",
                             "top_l.0.weight F32 1 2", "top_l.0.bias F32 1"};
  expect_bad("cat", far, N(far), "missing tensor emb_l.1.weight (found emb_l.9999");
}

Test(model, rejects_shapes_that_do_not_chain) {
  const char *const bot[] = {
      "emb_l.0.weight F32 5 2", "bot_l.0.weight F32 4 3", "bot_l.0.bias F32 4",
      "bot_l.2.weight F32 2 5", "bot_l.2.bias F32 2",     "top_l.0.weight F32 1 3",
      "top_l.0.bias F32 1"};
  expect_bad("dot", bot, N(bot),
             "bot_l.2.weight has input width 5 but bot_l.0.weight outputs 4");
  const char *const top_in[] = {"emb_l.0.weight F32 5 2", "emb_l.1.weight F32 7 3",
                                "top_l.0.weight F32 1 6", "top_l.0.bias F32 1"};
  expect_bad("cat", top_in, N(top_in),
             "top_l.0.weight has input width 6 but the cat interaction of 2 "
             "tables (no bottom MLP) produces 5");
  const char *const last[] = {"emb_l.0.weight F32 5 2", "emb_l.1.weight F32 7 3",
                              "top_l.0.weight F32 2 5", "top_l.0.bias F32 2"};
  expect_bad("cat", last, N(last), "top_l.0.weight outputs 2 (expected 1");
  const char *const bias[] = {"emb_l.0.weight F32 5 2", "emb_l.1.weight F32 7 3",
                              "top_l.0.weight F32 1 5", "top_l.0.bias F32 2"};
  expect_bad("cat", bias, N(bias),
             "tensor top_l.0.bias: shape [2] (expected [1], the out width of "
             "top_l.0.weight)");
  const char *const dims[] = {"emb_l.0.weight F32 10", "top_l.0.weight F32 1 5",
                              "top_l.0.bias F32 1"};
  expect_bad("cat", dims, N(dims),
             "tensor emb_l.0.weight: 1 dims (expected 2: [rows, dim])");
  const char *const empty[] = {"emb_l.0.weight F32 0 5", "top_l.0.weight F32 1 5",
                               "top_l.0.bias F32 1"};
  expect_bad("cat", empty, N(empty), "emb_l.0.weight is [0, 5] (expected at least one row");
}

Test(model, rejects_dot_with_width_unlike_bottom_output) {
  const char *const lines[] = {
      "emb_l.0.weight F32 5 2", "emb_l.1.weight F32 7 3",
      "bot_l.0.weight F32 2 3", "bot_l.0.bias F32 2",
      "top_l.0.weight F32 1 5", "top_l.0.bias F32 1"};
  expect_bad("dot", lines, N(lines),
             "dot interaction: emb_l.1.weight has width 3 but the bottom MLP "
             "outputs 2");
  const char *const nobot[] = {"emb_l.0.weight F32 5 2", "emb_l.1.weight F32 7 3",
                               "top_l.0.weight F32 1 1", "top_l.0.bias F32 1"};
  expect_bad("dot", nobot, N(nobot),
             "emb_l.1.weight has width 3 but emb_l.0.weight has 2");
}

Test(model, rejects_unknown_interaction) {
  expect_bad("mlp", cat_model, N(cat_model),
             "__metadata__.interaction is \"mlp\" (expected \"dot\" or \"cat\")");
}

/* ---- models built by hand ---- */

Test(model, validates_hand_built_models) {
  static const float z[64];
  mr_table_t t[3] = {{10, 4, z}, {20, 4, z}, {30, 4, z}};
  mr_layer_t top[1] = {{3, 1, z, z}}; /* dot, no bottom: 3 pairs */
  mr_model_t m = {.interaction = MR_INTERACT_DOT, .num_tables = 3, .tables = t,
                  .num_top = 1, .top = top};
  mr_err_t err = {0};
  cr_assert_eq(mr_model_top_in(&m), 3);
  cr_assert_eq(mr_model_validate(&m, &err), 0, "%s", err.msg);
  mr_layer_t bot[1] = {{7, 4, z, z}};
  m.num_bot = 1;
  m.bot = bot;
  m.num_dense = 7;
  cr_assert_eq(mr_model_top_in(&m), 4 + 6);
  cr_assert_eq(mr_model_validate(&m, &err), MR_EFORMAT);
  top[0].in = 10;
  cr_assert_eq(mr_model_validate(&m, &err), 0, "%s", err.msg);
  m.num_dense = 6;
  cr_assert_eq(mr_model_validate(&m, &err), MR_EINVAL);
  m.num_dense = 7;
  m.interaction = MR_INTERACT_CAT;
  cr_assert_eq(mr_model_top_in(&m), 4 + 12);
  t[1].data = NULL;
  top[0].in = 16;
  cr_assert_eq(mr_model_validate(&m, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "emb_l.1.weight has no data"), "%s", err.msg);
}

/* ---- the reference models ---- */

Test(model, loads_criteo_reference) {
  MR_REQUIRE_TESTDATA();
  char path[4096];
  snprintf(path, sizeof path, "%s/dlrm-criteo-small/model.safetensors",
           mr_test_testdata());
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open(&m, path, &err), 0, "%s", err.msg);
  cr_assert_eq(m.interaction, MR_INTERACT_DOT);
  cr_assert_eq(m.num_tables, 26);
  cr_assert_eq(m.tables[0].rows, 1460);
  cr_assert_eq(m.tables[8].rows, 3);
  cr_assert_eq(m.tables[2].rows, 4000);
  for (size_t k = 0; k < 26; k++) cr_assert_eq(m.tables[k].dim, 16);
  const size_t bot[] = {13, 512, 256, 64, 16}, top[] = {367, 512, 256, 1};
  cr_assert_eq(m.num_bot, 4);
  for (size_t i = 0; i < 4; i++) {
    cr_assert_eq(m.bot[i].in, bot[i]);
    cr_assert_eq(m.bot[i].out, bot[i + 1]);
  }
  cr_assert_eq(m.num_top, 3);
  for (size_t i = 0; i < 3; i++) {
    cr_assert_eq(m.top[i].in, top[i]);
    cr_assert_eq(m.top[i].out, top[i + 1]);
  }
  cr_assert_eq(m.num_dense, 13);
  cr_assert_eq(mr_model_top_in(&m), 367);
  /* The file's data area is every F32 parameter, used in place. */
  cr_assert_eq(mr_model_param_bytes(&m), 5523396);
  cr_assert_eq(m.num_owned_, 0);
  mr_model_close(&m);
}

Test(model, loads_microrec_47_reference) {
  MR_REQUIRE_TESTDATA();
  char path[4096];
  snprintf(path, sizeof path, "%s/microrec-47-small/model.safetensors",
           mr_test_testdata());
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open(&m, path, &err), 0, "%s", err.msg);
  cr_assert_eq(m.interaction, MR_INTERACT_CAT);
  cr_assert_eq(m.num_tables, 47);
  cr_assert_eq(m.num_bot, 0);
  cr_assert_eq(m.num_dense, 0);
  size_t width = 0;
  for (size_t k = 0; k < 47; k++) {
    width += m.tables[k].dim;
    cr_assert_leq(m.tables[k].rows, 2000);
  }
  cr_assert_eq(width, 352);
  cr_assert_eq(m.tables[46].dim, 32);
  const size_t top[] = {352, 1024, 512, 256, 1};
  cr_assert_eq(m.num_top, 4);
  for (size_t i = 0; i < 4; i++) {
    cr_assert_eq(m.top[i].in, top[i]);
    cr_assert_eq(m.top[i].out, top[i + 1]);
  }
  cr_assert_eq(mr_model_top_in(&m), 352);
  mr_model_close(&m);
}
