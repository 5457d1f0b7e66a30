/* Loading model input from Criteo TSV, JSON lines or binary array files
 * (see input.h). */
#include "client/lib/input.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client/lib/criteo.h"

void mr_input_free(mr_input_t *in) {
  if (!in) return;
  free(in->dense);
  free(in->ids);
  free(in->labels);
  memset(in, 0, sizeof *in);
}

/* Grows the arrays to hold cap samples (labels only when with_labels). */
static int grow(mr_input_t *in, size_t cap, int with_labels, mr_err_t *err) {
  size_t per = in->num_dense > in->num_tables ? in->num_dense : in->num_tables;
  if (per && cap > SIZE_MAX / sizeof(int64_t) / per) goto oom;
  if (in->num_dense) {
    float *d = realloc(in->dense, cap * in->num_dense * sizeof *d);
    if (!d) goto oom;
    in->dense = d;
  }
  int64_t *ids = realloc(in->ids, cap * (in->num_tables ? in->num_tables : 1) *
                                      sizeof *ids);
  if (!ids) goto oom;
  in->ids = ids;
  if (with_labels) {
    float *l = realloc(in->labels, cap * sizeof *l);
    if (!l) goto oom;
    in->labels = l;
  }
  return 0;
oom:
  return mr_err_set(err, MR_ENOMEM, "out of memory for %zu samples", cap);
}

/* Reads lines of at most max bytes (a final '\r' not counted) from a file
 * or stdin, never holding more than one buffer of max + 64 KiB, so a
 * hostile file cannot make us allocate more. */
typedef struct line_reader {
  FILE *f;
  const char *name; /* for messages: the path, or "<stdin>" for "-" */
  size_t max, cap;
  size_t start, end;
  int eof;
  char buf[];
} line_reader_t;

static int reader_open(line_reader_t **out, const char *path, size_t max,
                       mr_err_t *err) {
  *out = NULL;
  size_t cap = max + 64 * 1024;
  line_reader_t *r = calloc(1, sizeof *r + cap);
  if (!r) return mr_err_set(err, MR_ENOMEM, "out of memory");
  r->max = max;
  r->cap = cap;
  if (strcmp(path, "-") == 0) {
    r->f = stdin;
    r->name = "<stdin>";
  } else {
    r->f = fopen(path, "rb");
    r->name = path;
  }
  if (!r->f) {
    int e = -errno;
    free(r);
    return mr_err_set(err, e, "%s: cannot open: %s", path, mr_strerror(e));
  }
  *out = r;
  return 0;
}

static void reader_close(line_reader_t *r) {
  if (!r) return;
  if (r->f != stdin) fclose(r->f);
  free(r);
}

static int too_long(const line_reader_t *r, const char *line, size_t len) {
  if (len && line[len - 1] == '\r') len--;
  return len > r->max;
}

/* 1 and (*line, *len) for the next line, 0 at end of file, MR_EFORMAT for
 * an overlong line, -errno for a read error. */
static int next_line(line_reader_t *r, const char **line, size_t *len) {
  for (;;) {
    char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
    if (nl) {
      *line = r->buf + r->start;
      *len = (size_t)(nl - *line);
      r->start += *len + 1;
      return too_long(r, *line, *len) ? MR_EFORMAT : 1;
    }
    /* cap > max + 1, so this fires before the buffer is full. */
    if (r->end - r->start > r->max + 1) return MR_EFORMAT;
    if (r->eof) {
      if (r->start == r->end) return 0;
      *line = r->buf + r->start;
      *len = r->end - r->start;
      r->start = r->end;
      return too_long(r, *line, *len) ? MR_EFORMAT : 1;
    }
    memmove(r->buf, r->buf + r->start, r->end - r->start);
    r->end -= r->start;
    r->start = 0;
    size_t got = fread(r->buf + r->end, 1, r->cap - r->end, r->f);
    if (got == 0) {
      if (ferror(r->f)) return -EIO;
      r->eof = 1;
    }
    r->end += got;
  }
}

/* The next non-blank line, as both text loaders want it: 1 with the line,
 * 0 at the end, or a negative code with err "NAME:LINE: ...". Blank lines
 * are fine only when nothing but blank lines follows them. */
static int next_row(line_reader_t *r, size_t *lineno, size_t *blank,
                    const char *what, const char **line, size_t *len,
                    mr_err_t *err) {
  for (;;) {
    int got = next_line(r, line, len);
    if (got == 0) return 0;
    ++*lineno;
    if (got == MR_EFORMAT)
      return mr_err_set(err, MR_EFORMAT,
                        "%s:%zu: line longer than %zu bytes, expected %s", r->name,
                        *lineno, r->max, what);
    if (got < 0)
      return mr_err_set(err, got, "%s:%zu: read error: %s", r->name, *lineno,
                        mr_strerror(got));
    if (*len == 0 || (*len == 1 && (*line)[0] == '\r')) {
      if (!*blank) *blank = *lineno;
      continue;
    }
    if (*blank)
      return mr_err_set(err, MR_EFORMAT, "%s:%zu: empty line, expected %s",
                        r->name, *blank, what);
    return 1;
  }
}

int mr_input_load_criteo(mr_input_t *in, const char *path, size_t num_dense,
                         size_t num_tables, const uint64_t *rows,
                         mr_err_t *err) {
  memset(in, 0, sizeof *in);
  if (num_dense != 0 && num_dense != MR_CRITEO_NUM_DENSE)
    return mr_err_set(err, MR_EINVAL,
                      "%s: Criteo rows have %d dense features, the model "
                      "expects %zu (13 or 0)",
                      path, MR_CRITEO_NUM_DENSE, num_dense);
  if (num_tables > MR_CRITEO_NUM_CAT)
    return mr_err_set(err, MR_EINVAL,
                      "%s: Criteo rows have %d categorical features, the model "
                      "expects %zu tables (at most 26)",
                      path, MR_CRITEO_NUM_CAT, num_tables);
  if (rows)
    for (size_t k = 0; k < num_tables; k++)
      if (rows[k] == 0)
        return mr_err_set(err, MR_EINVAL, "table %zu has 0 rows", k);

  line_reader_t *r;
  int rc = reader_open(&r, path, MR_CRITEO_MAX_LINE, err);
  if (rc) return rc;
  in->num_dense = num_dense;
  in->num_tables = num_tables;

  size_t cap = 0, lineno = 0, blank = 0;
  const char *line;
  size_t len;
  mr_criteo_row_t row;
  while ((rc = next_row(r, &lineno, &blank, "a Criteo row", &line, &len,
                        err)) == 1) {
    if ((rc = mr_criteo_parse_line(line, len, &row, err)) != 0) {
      mr_err_prefix(err, "%s:%zu", r->name, lineno);
      goto fail;
    }
    if (in->n == cap) {
      cap = cap ? cap * 2 : 1024;
      if ((rc = grow(in, cap, 1, err)) != 0) goto fail;
    }
    if (num_dense)
      memcpy(in->dense + in->n * num_dense, row.dense, sizeof row.dense);
    mr_criteo_ids(&row, num_tables, rows, in->ids + in->n * num_tables);
    in->labels[in->n] = (float)row.label;
    in->n++;
  }
  if (rc < 0) goto fail;
  reader_close(r);
  return 0;
fail:
  reader_close(r);
  mr_input_free(in);
  return rc;
}

/* ---- JSON lines ------------------------------------------------------ */

#define JSONL_ROW "a JSON object {\"dense\": [...], \"sparse\": [...]}"

/* "a string", "an array", ... for messages about a value of the wrong type. */
static const char *json_kind(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a fractional number";
  case JSON_TRUE: return "true";
  case JSON_FALSE: return "false";
  default: return "null";
  }
}

/* Copies at most 40 bytes of s to out, with anything unprintable as '?',
 * so a hostile key or token cannot put control bytes in a message. */
static void printable(char *out, size_t size, const char *s) {
  size_t i = 0;
  for (; s[i] && i < 40 && i + 1 < size; i++)
    out[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
  out[i] = 0;
}

/* Checks that v (the value of key) is an array of want values; unit says
 * what they are, for the message. */
static int check_array(const json_t *v, const char *key, size_t want,
                       const char *unit, mr_err_t *err) {
  if (!json_is_array(v))
    return mr_err_set(err, MR_EFORMAT, "\"%s\" is %s, expected an array of "
                      "%zu %s", key, json_kind(v), want, unit);
  if (json_array_size(v) != want)
    return mr_err_set(err, MR_EFORMAT, "\"%s\" has %zu values, expected %zu "
                      "%s", key, json_array_size(v), want, unit);
  return 0;
}

/* Parses one line into dense[0..nd) and ids[0..nt); err without the
 * "PATH:LINE: " prefix, which the caller adds. */
static int parse_jsonl_row(const char *line, size_t len, size_t nd,
                           size_t nt, float *dense, int64_t *ids,
                           mr_err_t *err) {
  json_error_t jerr;
  json_t *o = json_loadb(line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                         &jerr);
  if (!o) {
    char text[48];
    printable(text, sizeof text, jerr.text);
    return mr_err_set(err, MR_EFORMAT, "cannot read it as JSON (%s, column "
                      "%d), expected %s", text, jerr.column, JSONL_ROW);
  }
  int rc = 0;
  if (!json_is_object(o)) {
    rc = mr_err_set(err, MR_EFORMAT, "found %s, expected %s", json_kind(o),
                    JSONL_ROW);
    goto done;
  }
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    if (strcmp(key, "dense") != 0 && strcmp(key, "sparse") != 0) {
      char k[48];
      printable(k, sizeof k, key);
      rc = mr_err_set(err, MR_EFORMAT, "unexpected key \"%s\", expected only "
                      "\"dense\" and \"sparse\"", k);
      goto done;
    }
  }
  json_t *d = json_object_get(o, "dense");
  if (!d && nd) {
    rc = mr_err_set(err, MR_EFORMAT, "no \"dense\" key, expected %zu "
                    "dense values (the model's dense inputs)", nd);
    goto done;
  }
  if (d && (rc = check_array(d, "dense", nd, nd ? "numbers (the model's dense "
                             "inputs)" : "(the model has no dense input)",
                             err)) != 0)
    goto done;
  for (size_t j = 0; j < nd; j++) {
    json_t *x = json_array_get(d, j);
    if (!json_is_number(x)) {
      rc = mr_err_set(err, MR_EFORMAT, "dense[%zu] is %s, expected a number",
                      j, json_kind(x));
      goto done;
    }
    double val = json_number_value(x);
    if (!(fabs(val) <= FLT_MAX)) {
      rc = mr_err_set(err, MR_EFORMAT, "dense[%zu] is %.9g, expected a number "
                      "within float32's range (|x| <= %.9g)", j, val,
                      (double)FLT_MAX);
      goto done;
    }
    dense[j] = (float)val;
  }
  json_t *s = json_object_get(o, "sparse");
  if (!s) {
    rc = mr_err_set(err, MR_EFORMAT, "no \"sparse\" key, expected %zu ids "
                    "(one per table)", nt);
    goto done;
  }
  if ((rc = check_array(s, "sparse", nt, "ids (one per table)", err)) != 0)
    goto done;
  for (size_t k = 0; k < nt; k++) {
    json_t *x = json_array_get(s, k);
    if (json_is_real(x)) {
      double r = json_real_value(x);
      rc = mr_err_set(err, MR_EFORMAT, "sparse[%zu] is %.17g%s, expected an "
                      "integer id >= 0 (digits only)", k, r,
                      r == floor(r) ? " written as a fraction" : "");
      goto done;
    }
    if (!json_is_integer(x)) {
      rc = mr_err_set(err, MR_EFORMAT, "sparse[%zu] is %s, expected an "
                      "integer id >= 0", k, json_kind(x));
      goto done;
    }
    json_int_t id = json_integer_value(x);
    if (id < 0) {
      rc = mr_err_set(err, MR_EFORMAT, "sparse[%zu] is %lld, expected an "
                      "integer id >= 0", k, (long long)id);
      goto done;
    }
    ids[k] = (int64_t)id;
  }
done:
  json_decref(o);
  return rc;
}

int mr_input_load_jsonl(mr_input_t *in, const char *path, size_t num_dense,
                        size_t num_tables, mr_err_t *err) {
  memset(in, 0, sizeof *in);
  if (num_tables == 0)
    return mr_err_set(err, MR_EINVAL, "%s: the model has no tables, expected "
                      "at least one", path);
  if (num_dense > (1u << 20) || num_tables > (1u << 20))
    return mr_err_set(err, MR_EINVAL, "%s: %zu dense inputs and %zu tables: "
                      "expected at most 2^20 of each", path, num_dense,
                      num_tables);
  line_reader_t *r;
  int rc = reader_open(&r, path,
                       MR_INPUT_JSONL_MAX_LINE(num_dense, num_tables), err);
  if (rc) return rc;
  in->num_dense = num_dense;
  in->num_tables = num_tables;

  size_t cap = 0, lineno = 0, blank = 0;
  const char *line;
  size_t len;
  while ((rc = next_row(r, &lineno, &blank, JSONL_ROW, &line, &len, err)) ==
         1) {
    if (in->n == cap) {
      cap = cap ? cap * 2 : 1024;
      if ((rc = grow(in, cap, 0, err)) != 0) goto fail;
    }
    rc = parse_jsonl_row(line, len, num_dense, num_tables,
                         num_dense ? in->dense + in->n * num_dense : NULL,
                         in->ids + in->n * num_tables, err);
    if (rc) {
      mr_err_prefix(err, "%s:%zu", r->name, lineno);
      goto fail;
    }
    in->n++;
  }
  if (rc < 0) goto fail;
  reader_close(r);
  return 0;
fail:
  reader_close(r);
  mr_input_free(in);
  return rc;
}

/* ---- binary arrays --------------------------------------------------- */

/* Reads a whole binary file whose size must be a multiple of row_bytes. */
static int read_array(const char *path, size_t row_bytes, const char *what,
                      void **out, size_t *rows, mr_err_t *err) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = -errno;
    return mr_err_set(err, e, "%s: cannot open: %s", path, mr_strerror(e));
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return mr_err_set(err, MR_EIO, "%s: not a regular file", path);
  }
  size_t size = (size_t)st.st_size;
  if (row_bytes == 0 || size % row_bytes != 0) {
    fclose(f);
    return mr_err_set(err, MR_EFORMAT,
                      "%s: %zu bytes is not a whole number of %s rows of %zu "
                      "bytes",
                      path, size, what, row_bytes);
  }
  void *buf = malloc(size ? size : 1);
  if (!buf) {
    fclose(f);
    return mr_err_set(err, MR_ENOMEM, "%s: out of memory for %zu bytes", path,
                      size);
  }
  if (size && fread(buf, 1, size, f) != size) {
    fclose(f);
    free(buf);
    return mr_err_set(err, MR_EIO, "%s: short read", path);
  }
  fclose(f);
  *out = buf;
  *rows = size / row_bytes;
  return 0;
}

int mr_input_load_binary(mr_input_t *in, const char *dense_path,
                         const char *sparse_path, size_t num_dense,
                         size_t num_tables, mr_err_t *err) {
  memset(in, 0, sizeof *in);
  if (num_dense && !dense_path)
    return mr_err_set(err, MR_EINVAL,
                      "the model has %zu dense inputs: a dense file is needed",
                      num_dense);
  if (num_tables == 0 || !sparse_path)
    return mr_err_set(err, MR_EINVAL, "a sparse file and tables are needed");
  if (!strcmp(sparse_path, "-") || (num_dense && !strcmp(dense_path, "-")))
    return mr_err_set(err, MR_EINVAL,
                      "binary arrays cannot be read from stdin ('-'): their "
                      "row count comes from the file size; expected a file");
  in->num_dense = num_dense;
  in->num_tables = num_tables;
  size_t n_sparse = 0, n_dense = 0;
  void *ids = NULL, *dense = NULL;
  int rc = read_array(sparse_path, num_tables * sizeof(int64_t),
                      "int64 id", &ids, &n_sparse, err);
  if (rc) goto fail;
  in->ids = ids;
  if (num_dense) {
    rc = read_array(dense_path, num_dense * sizeof(float), "float32 dense",
                    &dense, &n_dense, err);
    if (rc) goto fail;
    in->dense = dense;
    if (n_dense != n_sparse) {
      rc = mr_err_set(err, MR_EFORMAT,
                      "%s has %zu rows but %s has %zu: expected the same",
                      dense_path, n_dense, sparse_path, n_sparse);
      goto fail;
    }
  }
  in->n = n_sparse;
  return 0;
fail:
  mr_input_free(in);
  return rc;
}
