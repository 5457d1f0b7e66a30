/* The safetensors container: round trips, conversions with exact values,
 * and every malformed header the parser must refuse with a clear message. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fpga/safetensors.h"
#include "tests/unit/testutil.h"

/* A file image: 8-byte little-endian header length, header, data. */
static unsigned char *image(const char *json, const void *data, size_t dlen,
                            size_t *len) {
  size_t h = strlen(json);
  *len = 8 + h + dlen;
  unsigned char *b = malloc(*len);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
  memcpy(b + 8, json, h);
  if (dlen) memcpy(b + 8 + h, data, dlen);
  return b;
}

/* Parses json + dlen zero bytes and expects failure with `want` in the
 * message. */
static void expect_bad(const char *json, size_t dlen, const char *want) {
  unsigned char zeros[256] = {0};
  size_t len = 0;
  unsigned char *b = image(json, zeros, dlen, &len);
  mr_st_file_t f;
  mr_err_t err = {0};
  int rc = mr_st_parse(&f, b, len, &err);
  cr_assert_eq(rc, MR_EFORMAT, "rc %d for %s", rc, json);
  cr_assert(strstr(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
  cr_assert_eq(f.num_tensors, 0);
  free(b);
}

Test(safetensors, parses_tensors_and_metadata) {
  float data[6] = {1, 2, 3, 4, 5, 6};
  size_t len = 0;
  unsigned char *b = image(
      "{\"__metadata__\":{\"interaction\":\"cat\"},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
      "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[16,24]},"
      "\"empty\":{\"dtype\":\"F16\",\"shape\":[0,3],\"data_offsets\":[8,8]}}",
      data, sizeof data, &len);
  mr_st_file_t f;
  mr_err_t err = {0};
  cr_assert_eq(mr_st_parse(&f, b, len, &err), 0, "%s", err.msg);
  cr_assert_eq(f.num_tensors, 3);
  const mr_st_tensor_t *a = mr_st_find(&f, "a");
  cr_assert(a);
  cr_assert_eq(a->dtype, MR_F32);
  cr_assert_eq(a->ndim, 2);
  cr_assert_eq(a->shape[0], 2);
  cr_assert_eq(a->nbytes, 16);
  cr_assert_eq(memcmp(a->data, data, 16), 0);
  const mr_st_tensor_t *bt = mr_st_find(&f, "b");
  cr_assert_eq(bt->dtype, MR_BF16);
  cr_assert_eq((const unsigned char *)bt->data - b, (ptrdiff_t)(len - 8));
  cr_assert_eq(mr_st_find(&f, "empty")->nbytes, 0);
  cr_assert_null(mr_st_find(&f, "c"));
  cr_assert_str_eq(mr_st_meta(&f, "interaction"), "cat");
  cr_assert_null(mr_st_meta(&f, "other"));
  mr_st_free(&f);
  free(b);
}

Test(safetensors, f16_converts_exactly) {
  const uint16_t h[] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400,
                        0x3555, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x0000};
  float f[12];
  mr_dtype_to_f32(MR_F16, h, f, 12);
  cr_assert_eq(f[0], 1.0f);
  cr_assert_eq(f[1], -2.0f);
  cr_assert_eq(f[2], 65504.0f);
  cr_assert_eq(f[3], ldexpf(1.0f, -24)); /* smallest subnormal */
  cr_assert_eq(f[4], ldexpf(1023.0f, -24)); /* largest subnormal */
  cr_assert_eq(f[5], ldexpf(1.0f, -14)); /* smallest normal */
  cr_assert_eq(f[6], 0.333251953125f);
  cr_assert(f[7] == 0.0f && signbit(f[7]));
  cr_assert(isinf(f[8]) && f[8] > 0);
  cr_assert(isinf(f[9]) && f[9] < 0);
  cr_assert(isnan(f[10]));
  cr_assert(f[11] == 0.0f && !signbit(f[11]));
}

Test(safetensors, f32_to_f16_rounds_to_nearest_even) {
  const float in[] = {1.0f,
                      65504.0f,
                      65519.0f,              /* rounds down to max */
                      65520.0f,              /* tie to even: infinity */
                      1e10f,
                      ldexpf(1.0f, -24),     /* smallest subnormal */
                      ldexpf(1.0f, -25),     /* tie between 0 and it: 0 */
                      ldexpf(1.5f, -25),     /* above the tie: rounds up */
                      1.0f + ldexpf(1, -11), /* tie: stays at even 1.0 */
                      1.0f + ldexpf(3, -11), /* tie: up to even */
                      -0.0f,
                      NAN,
                      -INFINITY,
                      ldexpf(1023.5f, -24)}; /* subnormal carries to normal */
  const uint16_t want[] = {0x3c00, 0x7bff, 0x7bff, 0x7c00, 0x7c00,
                           0x0001, 0x0000, 0x0001, 0x3c00, 0x3c02,
                           0x8000, 0,      0xfc00, 0x0400};
  uint16_t got[14];
  mr_f32_to_dtype(MR_F16, in, got, 14);
  for (size_t i = 0; i < 14; i++) {
    if (i == 11) {
      cr_assert((got[i] & 0x7c00) == 0x7c00 && (got[i] & 0x3ff), "nan");
      continue;
    }
    cr_assert_eq(got[i], want[i], "element %zu: 0x%04x, expected 0x%04x", i,
                 got[i], want[i]);
  }
}

Test(safetensors, bf16_converts_both_ways) {
  const uint16_t h[] = {0x3f80, 0xc000, 0x7f80, 0x0001, 0x3eab};
  float f[5];
  mr_dtype_to_f32(MR_BF16, h, f, 5);
  cr_assert_eq(f[0], 1.0f);
  cr_assert_eq(f[1], -2.0f);
  cr_assert(isinf(f[2]));
  cr_assert_eq(f[3], ldexpf(1.0f, -133)); /* bf16 subnormal */
  cr_assert_eq(f[4], 0.333984375f);
  const float in[] = {1.0f + ldexpf(1, -8), 1.0f + ldexpf(3, -8), NAN,
                      0.333984375f};
  uint16_t got[4];
  mr_f32_to_dtype(MR_BF16, in, got, 4);
  cr_assert_eq(got[0], 0x3f80); /* tie to even */
  cr_assert_eq(got[1], 0x3f82);
  cr_assert((got[2] & 0x7f80) == 0x7f80 && (got[2] & 0x7f));
  cr_assert_eq(got[3], 0x3eab);
}

Test(safetensors, dtype_names_parse) {
  mr_dtype_t t;
  cr_assert_eq(mr_dtype_parse("bf16", &t), 0);
  cr_assert_eq(t, MR_BF16);
  cr_assert_eq(mr_dtype_parse("F16", &t), 0);
  cr_assert_eq(t, MR_F16);
  cr_assert_eq(mr_dtype_parse("i64", &t), MR_EINVAL);
  cr_assert_eq(mr_dtype_size(MR_F32), 4);
  cr_assert_str_eq(mr_dtype_name(MR_BF16), "BF16");
}

/* ---- malformed containers ---- */

Test(safetensors, rejects_truncated_file) {
  mr_st_file_t f;
  mr_err_t err = {0};
  unsigned char b[5] = {1, 0, 0, 0, 0};
  cr_assert_eq(mr_st_parse(&f, b, sizeof b, &err), MR_EFORMAT);
  cr_assert(strstr(err.msg, "truncated"), "%s", err.msg);
}

Test(safetensors, rejects_header_length_past_end) {
  size_t len = 0;
  unsigned char *b = image("{}", NULL, 0, &len);
  b[0] = 3; /* 3 bytes of header, but the file has 2 after the length */
  mr_st_file_t f;
  mr_err_t err = {0};
  cr_assert_eq(mr_st_parse(&f, b, len, &err), MR_EFORMAT);
  cr_assert(strstr(err.msg, "header length 3 runs past the end"), "%s", err.msg);
  b[7] = 0x80; /* a length near 2^64 must not wrap */
  cr_assert_eq(mr_st_parse(&f, b, len, &err), MR_EFORMAT);
  cr_assert(strstr(err.msg, "runs past the end"), "%s", err.msg);
  free(b);
}

Test(safetensors, rejects_header_that_is_not_json) {
  expect_bad("{\"a\": {\"dtype\": \"F32\",", 0, "header is not JSON");
  expect_bad("{\"a\": {\"dtype\": \"F32\",", 0, "column");
  expect_bad("[1, 2]", 0, "header is a JSON array (expected an object");
  expect_bad("{\"a\":{},\"a\":{}}", 0, "duplicate");
}

Test(safetensors, rejects_entry_that_is_not_an_object) {
  expect_bad("{\"emb_l.0.weight\": 3}", 0,
             "tensor emb_l.0.weight: entry is a JSON integer");
}

Test(safetensors, rejects_entry_missing_fields) {
  expect_bad("{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
             "tensor t: dtype is missing");
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
             "tensor t: shape is missing");
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
             "tensor t: data_offsets is missing");
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
             4, "tensor t: data_offsets is array (expected [begin, end])");
}

Test(safetensors, rejects_unknown_dtype_naming_it) {
  expect_bad("{\"emb_l.3.weight\":{\"dtype\":\"I64\",\"shape\":[1],"
             "\"data_offsets\":[0,8]}}",
             8,
             "tensor emb_l.3.weight: dtype I64 not supported (expected F32, "
             "F16 or BF16)");
}

Test(safetensors, rejects_bad_shapes) {
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
             "\"data_offsets\":[0,4]}}",
             4, "tensor t: shape has 9 dims (at most 8");
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2,-1],"
             "\"data_offsets\":[0,4]}}",
             4, "tensor t: shape[1] is negative integer");
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2.5],"
             "\"data_offsets\":[0,4]}}",
             4, "tensor t: shape[0] is number (expected a non-negative");
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
             "\"data_offsets\":[0,4]}}",
             4, "tensor t: shape overflows");
  /* The element count fits but the byte count does not. */
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,2],"
             "\"data_offsets\":[0,4]}}",
             4, "tensor t: shape [4611686018427387904, 2] overflows");
}

Test(safetensors, rejects_offsets_outside_data) {
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],"
             "\"data_offsets\":[0,8]}}",
             4, "tensor t: data_offsets [0, 8] outside the data area (4 bytes)");
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],"
             "\"data_offsets\":[8,4]}}",
             8, "tensor t: data_offsets [8, 4] begin after end");
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],"
             "\"data_offsets\":[-4,0]}}",
             8, "tensor t: data_offsets must be two non-negative integers");
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],"
             "\"data_offsets\":[0,18446744073709551615]}}",
             8, "not JSON"); /* jansson refuses integers above 2^63 */
}

Test(safetensors, rejects_size_mismatch) {
  expect_bad("{\"t\":{\"dtype\":\"F16\",\"shape\":[3],"
             "\"data_offsets\":[0,8]}}",
             8, "tensor t: data_offsets span 8 bytes but shape [3] of F16 needs 6");
}

Test(safetensors, rejects_overlapping_tensors_naming_both) {
  expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
             "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]},"
             "\"z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
             20, "tensors x [0, 16) and z [8, 12) overlap");
  /* Contained inside a long one after a short one: still found. */
  expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]},"
             "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
             "\"z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[20,24]}}",
             32, "overlap");
}

Test(safetensors, rejects_metadata_that_is_not_strings) {
  expect_bad("{\"__metadata__\":{\"interaction\":1}}", 0,
             "__metadata__.interaction is a JSON integer (expected a string)");
  expect_bad("{\"__metadata__\":[]}", 0, "__metadata__ is a JSON array");
}

/* ---- writing ---- */

typedef struct src {
  const void *data[3];
  size_t calls;
  uint64_t offsets[8];
  size_t sizes[8];
  int fail_tensor;
  uint64_t progress_done, progress_total;
} src_t;

static int fill(void *ctx, size_t t, uint64_t off, void *buf, size_t n) {
  src_t *s = ctx;
  if ((int)t == s->fail_tensor) return MR_EIO;
  if (s->calls < 8) {
    s->offsets[s->calls] = off;
    s->sizes[s->calls] = n;
  }
  s->calls++;
  if (s->data[t]) memcpy(buf, (const char *)s->data[t] + off, n);
  else
    for (size_t i = 0; i < n; i++) ((unsigned char *)buf)[i] = (unsigned char)(off + i);
  return 0;
}

static void progress(void *ctx, uint64_t done, uint64_t total) {
  src_t *s = ctx;
  cr_assert_geq(done, s->progress_done);
  s->progress_done = done;
  s->progress_total = total;
}

Test(safetensors, writes_what_it_parses) {
  char dir[64], path[128];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/m.safetensors", dir);
  const float a[6] = {0.5f, -1, 2, 3, 65504, -0.25f};
  uint16_t h[3], bf[3];
  mr_f32_to_dtype(MR_F16, a, h, 3);
  mr_f32_to_dtype(MR_BF16, a + 3, bf, 3);
  mr_st_desc_t d[3] = {{"w", MR_F32, 2, {2, 3}},
                       {"h", MR_F16, 1, {3}},
                       {"bf", MR_BF16, 2, {3, 1}}};
  const char *meta[] = {"interaction", "dot", "source", "test"};
  src_t s = {.data = {a, h, bf}, .fail_tensor = -1};
  mr_err_t err = {0};
  cr_assert_eq(mr_st_write(path, d, 3, meta, 2, fill, progress, &s, &err), 0,
               "%s", err.msg);
  cr_assert_eq(s.progress_done, 24 + 6 + 6);
  cr_assert_eq(s.progress_total, 36);

  size_t len = 0;
  unsigned char *b = mr_test_read_file(path, &len);
  cr_assert(b);
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = (hl << 8) | b[i];
  cr_assert_eq(hl % 8, 0, "header padded to 8 bytes");
  cr_assert_eq(len, 8 + hl + 36);
  size_t close = 8 + hl - 1; /* the JSON ends in '}', then spaces */
  while (b[close] == ' ') close--;
  cr_assert_eq(b[close], '}');
  cr_assert_lt(8 + hl - 1 - close, 8);
  mr_st_file_t f;
  cr_assert_eq(mr_st_parse(&f, b, len, &err), 0, "%s", err.msg);
  cr_assert_eq(f.num_tensors, 3);
  cr_assert_str_eq(f.tensors[0].name, "w");
  cr_assert_str_eq(mr_st_meta(&f, "source"), "test");
  float back[3];
  cr_assert_eq(memcmp(mr_st_find(&f, "w")->data, a, 24), 0);
  mr_dtype_to_f32(MR_F16, mr_st_find(&f, "h")->data, back, 3);
  cr_assert(back[0] == 0.5f && back[1] == -1.0f && back[2] == 2.0f);
  mr_dtype_to_f32(MR_BF16, mr_st_find(&f, "bf")->data, back, 3);
  cr_assert(back[0] == 3.0f && back[1] == 65536.0f && back[2] == -0.25f);
  cr_assert_eq(mr_st_find(&f, "bf")->shape[0], 3);
  mr_st_free(&f);
  free(b);
  char tmp[160];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  cr_assert_neq(access(tmp, F_OK), 0, "the .tmp file was renamed");
  unlink(path);
  rmdir(dir);
}

Test(safetensors, writer_streams_in_chunks) {
  char dir[64], path[128];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/big.safetensors", dir);
  /* 5 MiB + 4 bytes: two chunks. */
  mr_st_desc_t d = {"big", MR_F32, 1, {(5u << 20) / 4 + 1}};
  src_t s = {.fail_tensor = -1};
  mr_err_t err = {0};
  cr_assert_eq(mr_st_write(path, &d, 1, NULL, 0, fill, NULL, &s, &err), 0,
               "%s", err.msg);
  cr_assert_eq(s.calls, 2);
  cr_assert_eq(s.offsets[0], 0);
  cr_assert_eq(s.sizes[0], MR_ST_CHUNK);
  cr_assert_eq(s.offsets[1], MR_ST_CHUNK);
  cr_assert_eq(s.sizes[1], (5u << 20) + 4 - MR_ST_CHUNK);
  size_t len = 0;
  unsigned char *b = mr_test_read_file(path, &len);
  mr_st_file_t f;
  cr_assert_eq(mr_st_parse(&f, b, len, &err), 0, "%s", err.msg);
  const unsigned char *p = f.tensors[0].data;
  cr_assert_eq(p[MR_ST_CHUNK + 7], (unsigned char)(MR_ST_CHUNK + 7));
  mr_st_free(&f);
  free(b);
  unlink(path);
  rmdir(dir);
}

Test(safetensors, failed_write_leaves_nothing) {
  char dir[64], path[128], tmp[160];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/m.safetensors", dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  mr_st_desc_t d[2] = {{"a", MR_F32, 1, {4}}, {"b", MR_F32, 1, {4}}};
  src_t s = {.fail_tensor = 1};
  mr_err_t err = {0};
  int rc = mr_st_write(path, d, 2, NULL, 0, fill, NULL, &s, &err);
  cr_assert_eq(rc, MR_EIO);
  cr_assert(strstr(err.msg, "tensor b"), "%s", err.msg);
  cr_assert_neq(access(path, F_OK), 0);
  cr_assert_neq(access(tmp, F_OK), 0);
  /* Two tensors with one name are refused before anything is written. */
  mr_st_desc_t dup[2] = {{"a", MR_F32, 1, {4}}, {"a", MR_F32, 1, {4}}};
  s.fail_tensor = -1;
  cr_assert_eq(mr_st_write(path, dup, 2, NULL, 0, fill, NULL, &s, &err),
               MR_EINVAL);
  cr_assert(strstr(err.msg, "share a name"), "%s", err.msg);
  cr_assert_neq(access(tmp, F_OK), 0);
  /* A directory that does not exist: -errno. */
  snprintf(path, sizeof path, "%s/no/such/dir/m.safetensors", dir);
  cr_assert_eq(mr_st_write(path, d, 2, NULL, 0, fill, NULL, &s, &err), -ENOENT);
  rmdir(dir);
}
