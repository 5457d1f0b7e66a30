/* The safetensors container: a hostile-input parser over a caller's buffer
 * and a streaming writer. The file may be anything: every length and offset
 * is checked before use and every product is checked for overflow. */
#include "fpga/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors tensors are little-endian; this code assumes the host is too"
#endif

/* The reference implementation refuses headers above 100 MB; so do we, so a
 * hostile length cannot make jansson build a huge tree. */
#define MR_ST_MAX_HEADER 100000000u

size_t mr_dtype_size(mr_dtype_t t) {
  switch (t) {
  case MR_F32: return 4;
  case MR_F16:
  case MR_BF16: return 2;
  }
  return 0;
}

const char *mr_dtype_name(mr_dtype_t t) {
  switch (t) {
  case MR_F32: return "F32";
  case MR_F16: return "F16";
  case MR_BF16: return "BF16";
  }
  return "?";
}

int mr_dtype_parse(const char *s, mr_dtype_t *out) {
  static const mr_dtype_t all[] = {MR_F32, MR_F16, MR_BF16};
  for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
    if (!strcasecmp(s, mr_dtype_name(all[i]))) {
      *out = all[i];
      return 0;
    }
  return MR_EINVAL;
}

/* ---- conversions ---- */

static float bits_f32(uint32_t b) {
  float f;
  memcpy(&f, &b, 4);
  return f;
}

static uint32_t f32_bits(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  return b;
}

static float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));
  if (exp != 0) return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
  if (man == 0) return bits_f32(sign);
  /* Subnormal: man * 2^-24; normalise into an f32 exponent. */
  exp = 113;
  while (!(man & 0x400u)) {
    man <<= 1;
    exp--;
  }
  return bits_f32(sign | (exp << 23) | ((man & 0x3ffu) << 13));
}

static uint16_t f32_to_f16(float f) {
  uint32_t x = f32_bits(f);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return sign | 0x7e00u | (uint16_t)((ax >> 13) & 0x1ffu);
  if (ax >= 0x477ff000u) return sign | 0x7c00u; /* >= 65520 rounds to inf */
  if (ax < 0x38800000u) {                       /* below 2^-14: subnormal */
    if (ax <= 0x33000000u) return sign;         /* <= 2^-25 rounds to 0 */
    uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e; /* 14..24: m * 2^(e-150) in units of 2^-24 */
    uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) r++;
    return sign | (uint16_t)r;
  }
  uint32_t r = (ax - 0x38000000u) >> 13, rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++; /* carry is fine */
  return sign | (uint16_t)r;
}

static uint16_t f32_to_bf16(float f) {
  uint32_t x = f32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
  return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

void mr_dtype_to_f32(mr_dtype_t t, const void *src, float *dst, size_t n) {
  const unsigned char *s = src;
  switch (t) {
  case MR_F32:
    memcpy(dst, src, n * 4);
    return;
  case MR_F16:
    for (size_t i = 0; i < n; i++) {
      uint16_t h;
      memcpy(&h, s + 2 * i, 2);
      dst[i] = f16_to_f32(h);
    }
    return;
  case MR_BF16:
    for (size_t i = 0; i < n; i++) {
      uint16_t h;
      memcpy(&h, s + 2 * i, 2);
      dst[i] = bits_f32((uint32_t)h << 16);
    }
    return;
  }
}

void mr_f32_to_dtype(mr_dtype_t t, const float *src, void *dst, size_t n) {
  unsigned char *d = dst;
  switch (t) {
  case MR_F32:
    memcpy(dst, src, n * 4);
    return;
  case MR_F16:
    for (size_t i = 0; i < n; i++) {
      uint16_t h = f32_to_f16(src[i]);
      memcpy(d + 2 * i, &h, 2);
    }
    return;
  case MR_BF16:
    for (size_t i = 0; i < n; i++) {
      uint16_t h = f32_to_bf16(src[i]);
      memcpy(d + 2 * i, &h, 2);
    }
    return;
  }
}

/* ---- parsing ---- */

static const char *json_kind(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "object";
  case JSON_ARRAY: return "array";
  case JSON_STRING: return "string";
  case JSON_INTEGER: return "integer";
  case JSON_REAL: return "number";
  case JSON_TRUE:
  case JSON_FALSE: return "boolean";
  case JSON_NULL: return "null";
  }
  return "value";
}

/* "[3, 4]" for messages. */
static void fmt_shape(char *buf, size_t len, const uint64_t *shape, size_t nd) {
  size_t o = 0;
  o += (size_t)snprintf(buf + o, len - o, "[");
  for (size_t i = 0; i < nd && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, "%s%" PRIu64, i ? ", " : "", shape[i]);
  if (o < len) snprintf(buf + o, len - o, "]");
}

static int parse_dtype(const char *name, json_t *entry, mr_dtype_t *out,
                       mr_err_t *err) {
  json_t *d = json_object_get(entry, "dtype");
  if (!d || !json_is_string(d))
    return mr_err_set(err, MR_EFORMAT,
                      "tensor %s: dtype is %s (expected \"F32\", \"F16\" or "
                      "\"BF16\")",
                      name, d ? json_kind(d) : "missing");
  const char *s = json_string_value(d);
  if (!strcmp(s, "F32")) *out = MR_F32;
  else if (!strcmp(s, "F16")) *out = MR_F16;
  else if (!strcmp(s, "BF16")) *out = MR_BF16;
  else
    return mr_err_set(err, MR_EFORMAT,
                      "tensor %s: dtype %s not supported (expected F32, F16 "
                      "or BF16)",
                      name, s);
  return 0;
}

static int parse_shape(const char *name, json_t *entry, mr_st_tensor_t *t,
                       uint64_t *count, mr_err_t *err) {
  json_t *s = json_object_get(entry, "shape");
  if (!s || !json_is_array(s))
    return mr_err_set(err, MR_EFORMAT,
                      "tensor %s: shape is %s (expected an array of sizes)",
                      name, s ? json_kind(s) : "missing");
  size_t nd = json_array_size(s);
  if (nd > MR_ST_MAX_DIMS)
    return mr_err_set(err, MR_EFORMAT,
                      "tensor %s: shape has %zu dims (at most %d supported)",
                      name, nd, MR_ST_MAX_DIMS);
  uint64_t n = 1;
  for (size_t i = 0; i < nd; i++) {
    json_t *v = json_array_get(s, i);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
      return mr_err_set(err, MR_EFORMAT,
                        "tensor %s: shape[%zu] is %s%s (expected a "
                        "non-negative integer)",
                        name, i, json_is_integer(v) ? "negative " : "",
                        json_kind(v));
    t->shape[i] = (uint64_t)json_integer_value(v);
    if (__builtin_mul_overflow(n, t->shape[i], &n))
      return mr_err_set(err, MR_EFORMAT,
                        "tensor %s: shape overflows (element count above "
                        "2^64)",
                        name);
  }
  t->ndim = nd;
  *count = n;
  return 0;
}

static int parse_offsets(const char *name, json_t *entry, uint64_t data_len,
                         uint64_t *begin, uint64_t *end, mr_err_t *err) {
  json_t *o = json_object_get(entry, "data_offsets");
  if (!o || !json_is_array(o) || json_array_size(o) != 2)
    return mr_err_set(err, MR_EFORMAT,
                      "tensor %s: data_offsets is %s (expected [begin, end])",
                      name, o ? json_kind(o) : "missing");
  json_t *b = json_array_get(o, 0), *e = json_array_get(o, 1);
  if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
      json_integer_value(e) < 0)
    return mr_err_set(err, MR_EFORMAT,
                      "tensor %s: data_offsets must be two non-negative "
                      "integers",
                      name);
  *begin = (uint64_t)json_integer_value(b);
  *end = (uint64_t)json_integer_value(e);
  if (*begin > *end)
    return mr_err_set(err, MR_EFORMAT,
                      "tensor %s: data_offsets [%" PRIu64 ", %" PRIu64
                      "] begin after end",
                      name, *begin, *end);
  if (*end > data_len)
    return mr_err_set(err, MR_EFORMAT,
                      "tensor %s: data_offsets [%" PRIu64 ", %" PRIu64
                      "] outside the data area (%" PRIu64 " bytes)",
                      name, *begin, *end, data_len);
  return 0;
}

static int parse_tensor(const char *name, json_t *entry,
                        const unsigned char *data, uint64_t data_len,
                        mr_st_tensor_t *t, mr_err_t *err) {
  if (!json_is_object(entry))
    return mr_err_set(err, MR_EFORMAT,
                      "tensor %s: entry is a JSON %s (expected an object with "
                      "dtype, shape and data_offsets)",
                      name, json_kind(entry));
  uint64_t count = 0, begin = 0, end = 0, need = 0;
  int rc;
  if ((rc = parse_dtype(name, entry, &t->dtype, err)) ||
      (rc = parse_shape(name, entry, t, &count, err)) ||
      (rc = parse_offsets(name, entry, data_len, &begin, &end, err)))
    return rc;
  char shp[128];
  fmt_shape(shp, sizeof shp, t->shape, t->ndim);
  if (__builtin_mul_overflow(count, (uint64_t)mr_dtype_size(t->dtype), &need))
    return mr_err_set(err, MR_EFORMAT, "tensor %s: shape %s overflows", name,
                      shp);
  if (end - begin != need)
    return mr_err_set(err, MR_EFORMAT,
                      "tensor %s: data_offsets span %" PRIu64
                      " bytes but shape %s of %s needs %" PRIu64,
                      name, end - begin, shp, mr_dtype_name(t->dtype), need);
  t->data = data + begin;
  t->nbytes = need;
  return 0;
}

static int parse_meta(mr_st_file_t *f, json_t *meta, mr_err_t *err) {
  if (!json_is_object(meta))
    return mr_err_set(err, MR_EFORMAT,
                      "__metadata__ is a JSON %s (expected an object of "
                      "strings)",
                      json_kind(meta));
  size_t n = json_object_size(meta);
  f->meta_keys = calloc(n ? n : 1, sizeof *f->meta_keys);
  f->meta_values = calloc(n ? n : 1, sizeof *f->meta_values);
  if (!f->meta_keys || !f->meta_values)
    return mr_err_set(err, MR_ENOMEM, "out of memory for __metadata__");
  const char *k;
  json_t *v;
  json_object_foreach(meta, k, v) {
    if (!json_is_string(v))
      return mr_err_set(err, MR_EFORMAT,
                        "__metadata__.%s is a JSON %s (expected a string)", k,
                        json_kind(v));
    /* Counted before the check, so mr_st_free frees a half-made pair. */
    f->meta_keys[f->num_meta] = strdup(k);
    f->meta_values[f->num_meta] = strdup(json_string_value(v));
    f->num_meta++;
    if (!f->meta_keys[f->num_meta - 1] || !f->meta_values[f->num_meta - 1])
      return mr_err_set(err, MR_ENOMEM, "out of memory for __metadata__");
  }
  return 0;
}

typedef struct span {
  uint64_t begin, end;
  size_t idx;
} span_t;

static int by_begin(const void *a, const void *b) {
  const span_t *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

/* Sorted by begin, a tensor overlaps an earlier one iff it starts before the
 * furthest end seen so far; empty tensors overlap nothing. */
static int check_overlap(const mr_st_file_t *f, const unsigned char *data,
                         mr_err_t *err) {
  if (f->num_tensors < 2) return 0;
  span_t *s = malloc(f->num_tensors * sizeof *s);
  if (!s) return mr_err_set(err, MR_ENOMEM, "out of memory checking offsets");
  for (size_t i = 0; i < f->num_tensors; i++) {
    uint64_t b = (uint64_t)((const unsigned char *)f->tensors[i].data - data);
    s[i] = (span_t){b, b + f->tensors[i].nbytes, i};
  }
  qsort(s, f->num_tensors, sizeof *s, by_begin);
  int rc = 0;
  size_t far = SIZE_MAX; /* index into s of the span reaching furthest */
  for (size_t i = 0; i < f->num_tensors && !rc; i++) {
    if (s[i].begin == s[i].end) continue;
    if (far != SIZE_MAX && s[i].begin < s[far].end) {
      rc = mr_err_set(err, MR_EFORMAT,
                      "tensors %s [%" PRIu64 ", %" PRIu64 ") and %s [%" PRIu64
                      ", %" PRIu64 ") overlap (expected disjoint data_offsets)",
                      f->tensors[s[far].idx].name, s[far].begin, s[far].end,
                      f->tensors[s[i].idx].name, s[i].begin, s[i].end);
    }
    if (far == SIZE_MAX || s[i].end > s[far].end) far = i;
  }
  free(s);
  return rc;
}

static uint64_t le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static int parse_root(mr_st_file_t *f, json_t *root, const unsigned char *data,
                      uint64_t data_len, mr_err_t *err) {
  size_t n = json_object_size(root);
  f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
  if (!f->tensors) return mr_err_set(err, MR_ENOMEM, "out of memory for header");
  const char *key;
  json_t *v;
  int rc;
  json_object_foreach(root, key, v) {
    if (!strcmp(key, "__metadata__")) {
      if ((rc = parse_meta(f, v, err))) return rc;
      continue;
    }
    mr_st_tensor_t *t = &f->tensors[f->num_tensors];
    if ((rc = parse_tensor(key, v, data, data_len, t, err))) return rc;
    if (!(t->name = strdup(key)))
      return mr_err_set(err, MR_ENOMEM, "out of memory for header");
    f->num_tensors++;
  }
  return check_overlap(f, data, err);
}

int mr_st_parse(mr_st_file_t *f, const void *buf, size_t len, mr_err_t *err) {
  memset(f, 0, sizeof *f);
  const unsigned char *p = buf;
  if (len < 8)
    return mr_err_set(err, MR_EFORMAT,
                      "truncated: %zu bytes (expected at least the 8-byte "
                      "header length)",
                      len);
  uint64_t hlen = le64(p);
  if (hlen > len - 8)
    return mr_err_set(err, MR_EFORMAT,
                      "header length %" PRIu64
                      " runs past the end of the file (%zu bytes follow the "
                      "length)",
                      hlen, len - 8);
  if (hlen > MR_ST_MAX_HEADER)
    return mr_err_set(err, MR_EFORMAT,
                      "header length %" PRIu64 " too large (at most %u)", hlen,
                      MR_ST_MAX_HEADER);
  json_error_t je;
  json_t *root = json_loadb((const char *)p + 8, (size_t)hlen,
                            JSON_REJECT_DUPLICATES, &je);
  if (!root)
    return mr_err_set(err, MR_EFORMAT,
                      "header is not JSON: %s (line %d, column %d, byte %d)",
                      je.text, je.line, je.column, je.position);
  int rc;
  if (!json_is_object(root)) {
    rc = mr_err_set(err, MR_EFORMAT,
                    "header is a JSON %s (expected an object of tensors)",
                    json_kind(root));
  } else {
    rc = parse_root(f, root, p + 8 + hlen, (uint64_t)(len - 8 - hlen), err);
  }
  json_decref(root);
  if (rc) mr_st_free(f);
  return rc;
}

void mr_st_free(mr_st_file_t *f) {
  if (!f) return;
  for (size_t i = 0; i < f->num_tensors; i++) free(f->tensors[i].name);
  for (size_t i = 0; i < f->num_meta; i++) {
    free(f->meta_keys[i]);
    free(f->meta_values[i]);
  }
  free(f->tensors);
  free(f->meta_keys);
  free(f->meta_values);
  memset(f, 0, sizeof *f);
}

const mr_st_tensor_t *mr_st_find(const mr_st_file_t *f, const char *name) {
  for (size_t i = 0; i < f->num_tensors; i++)
    if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
  return NULL;
}

const char *mr_st_meta(const mr_st_file_t *f, const char *key) {
  for (size_t i = 0; i < f->num_meta; i++)
    if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
  return NULL;
}

/* ---- writing ---- */

static int write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Builds the header; *total receives the data area's size. */
static int build_header(const mr_st_desc_t *d, size_t n,
                        const char *const *meta_kv, size_t num_meta,
                        char **out, uint64_t *total, mr_err_t *err) {
  json_t *root = json_object(), *meta = NULL;
  int rc = 0;
  uint64_t off = 0;
  if (!root) return mr_err_set(err, MR_ENOMEM, "out of memory for header");
  if (num_meta) {
    meta = json_object();
    if (!meta || json_object_set_new(root, "__metadata__", meta)) {
      rc = mr_err_set(err, MR_ENOMEM, "out of memory for header");
      goto done;
    }
    for (size_t i = 0; i < num_meta; i++)
      if (json_object_set_new(meta, meta_kv[2 * i],
                              json_string(meta_kv[2 * i + 1]))) {
        rc = mr_err_set(err, MR_EINVAL,
                        "__metadata__ entry %zu is NULL or not UTF-8", i);
        goto done;
      }
  }
  for (size_t i = 0; i < n; i++) {
    uint64_t bytes = mr_dtype_size(d[i].dtype);
    if (!d[i].name || !bytes || d[i].ndim > MR_ST_MAX_DIMS ||
        !strcmp(d[i].name, "__metadata__")) {
      rc = mr_err_set(err, MR_EINVAL,
                      "tensor %zu (%s): needs a name, a dtype and at most %d "
                      "dims",
                      i, d[i].name ? d[i].name : "unnamed", MR_ST_MAX_DIMS);
      goto done;
    }
    json_t *shape = json_array(), *t = json_object();
    if (!shape || !t) {
      json_decref(shape);
      json_decref(t);
      rc = mr_err_set(err, MR_ENOMEM, "out of memory for header");
      goto done;
    }
    if (json_object_set_new(root, d[i].name, t)) { /* t is freed */
      json_decref(shape);
      rc = mr_err_set(err, MR_EINVAL, "tensor %zu: name is not UTF-8", i);
      goto done;
    }
    for (size_t k = 0; k < d[i].ndim; k++) {
      if (d[i].shape[k] > INT64_MAX ||
          __builtin_mul_overflow(bytes, d[i].shape[k], &bytes)) {
        json_decref(shape);
        rc = mr_err_set(err, MR_EINVAL, "tensor %s: shape overflows",
                        d[i].name);
        goto done;
      }
      json_array_append_new(shape, json_integer((json_int_t)d[i].shape[k]));
    }
    if (__builtin_add_overflow(off, bytes, &off) || off > INT64_MAX) {
      json_decref(shape);
      rc = mr_err_set(err, MR_EINVAL, "tensor %s: file too large", d[i].name);
      goto done;
    }
    json_t *offs = json_pack("[II]", (json_int_t)(off - bytes), (json_int_t)off);
    json_object_set_new(t, "dtype", json_string(mr_dtype_name(d[i].dtype)));
    json_object_set_new(t, "shape", shape);
    json_object_set_new(t, "data_offsets", offs);
  }
  if (json_object_size(root) != n + (num_meta ? 1 : 0)) {
    rc = mr_err_set(err, MR_EINVAL, "two tensors share a name");
    goto done;
  }
  *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (!*out) rc = mr_err_set(err, MR_ENOMEM, "out of memory for header");
  *total = off;
done:
  json_decref(root);
  return rc;
}

static int write_data(int fd, const mr_st_desc_t *d, size_t n,
                      mr_st_fill_fn fill, mr_st_progress_fn progress, void *ctx,
                      uint64_t total, mr_err_t *err) {
  char *buf = malloc(MR_ST_CHUNK);
  if (!buf) return mr_err_set(err, MR_ENOMEM, "out of memory for write buffer");
  uint64_t done = 0;
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    uint64_t bytes = mr_dtype_size(d[i].dtype);
    for (size_t k = 0; k < d[i].ndim; k++) bytes *= d[i].shape[k];
    for (uint64_t off = 0; off < bytes && !rc; off += MR_ST_CHUNK) {
      size_t c = bytes - off < MR_ST_CHUNK ? (size_t)(bytes - off) : MR_ST_CHUNK;
      if ((rc = fill(ctx, i, off, buf, c))) {
        rc = mr_err_set(err, rc, "tensor %s: filling bytes at %" PRIu64 ": %s",
                        d[i].name, off, mr_strerror(rc));
      } else if ((rc = write_all(fd, buf, c))) {
        rc = mr_err_set(err, rc, "write: %s", mr_strerror(rc));
      } else {
        done += c;
        if (progress) progress(ctx, done, total);
      }
    }
  }
  free(buf);
  return rc;
}

int mr_st_write(const char *path, const mr_st_desc_t *descs, size_t n,
                const char *const *meta_kv, size_t num_meta,
                mr_st_fill_fn fill, mr_st_progress_fn progress, void *ctx,
                mr_err_t *err) {
  char *header = NULL, *tmp = NULL;
  uint64_t total = 0;
  int fd = -1, rc;
  if ((rc = build_header(descs, n, meta_kv, num_meta, &header, &total, err)))
    return rc;
  if (total && !fill) {
    free(header);
    return mr_err_set(err, MR_EINVAL, "mr_st_write: no fill function");
  }
  size_t hlen = strlen(header), padded = (hlen + 7) & ~(size_t)7;
  size_t plen = strlen(path) + 5;
  char *grown = realloc(header, padded + 1);
  if (!grown || !(tmp = malloc(plen))) {
    if (grown) header = grown;
    rc = mr_err_set(err, MR_ENOMEM, "out of memory");
    goto done;
  }
  header = grown;
  memset(header + hlen, ' ', padded - hlen); /* as the reference pads */
  snprintf(tmp, plen, "%s.tmp", path);
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = mr_err_set(err, -errno, "%s: cannot create: %s", tmp, strerror(errno));
    goto done;
  }
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
  if ((rc = write_all(fd, len8, 8)) || (rc = write_all(fd, header, padded))) {
    rc = mr_err_set(err, rc, "%s: write: %s", tmp, mr_strerror(rc));
    goto fail;
  }
  if ((rc = write_data(fd, descs, n, fill, progress, ctx, total, err))) {
    mr_err_prefix(err, "%s", tmp);
    goto fail;
  }
  if (fsync(fd) != 0) {
    rc = mr_err_set(err, -errno, "%s: fsync: %s", tmp, strerror(errno));
    goto fail;
  }
  int fdc = fd;
  fd = -1;
  if (close(fdc) != 0) {
    rc = mr_err_set(err, -errno, "%s: close: %s", tmp, strerror(errno));
    goto fail;
  }
  if (rename(tmp, path) != 0) {
    rc = mr_err_set(err, -errno, "rename %s to %s: %s", tmp, path,
                    strerror(errno));
    goto fail;
  }
  goto done;
fail:
  if (fd >= 0) close(fd);
  fd = -1;
  unlink(tmp);
done:
  if (fd >= 0) close(fd);
  free(tmp);
  free(header);
  return rc;
}
