/* Criteo TSV line parsing and DLRM's preprocessing (see criteo.h). */
#include "client/lib/criteo.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* "I3" / "C12" / "label" for field i (0-based), for error messages. */
static void field_name(size_t i, char *buf, size_t len) {
  if (i == 0)
    snprintf(buf, len, "label");
  else if (i <= MR_CRITEO_NUM_DENSE)
    snprintf(buf, len, "I%zu", i);
  else
    snprintf(buf, len, "C%zu", i - MR_CRITEO_NUM_DENSE);
}

/* Quotes at most 16 bytes of a field, non-printable bytes as '?'. */
static void quote(const char *s, size_t n, char *buf, size_t len) {
  size_t m = n < 16 ? n : 16, j = 0;
  for (size_t i = 0; i < m && j + 1 < len; i++)
    buf[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  if (n > m && j + 3 < len) {
    memcpy(buf + j, "...", 3);
    j += 3;
  }
  buf[j] = 0;
}

static int field_error(mr_err_t *err, size_t i, const char *s, size_t n,
                       const char *expected) {
  char name[32], q[32];
  field_name(i, name, sizeof name);
  quote(s, n, q, sizeof q);
  return mr_err_set(err, MR_EFORMAT, "field %zu (%s): '%s' is not %s", i + 1,
                    name, q, expected);
}

/* Decimal integer with an optional sign; 0 on success. */
static int parse_int(const char *s, size_t n, int64_t *out) {
  size_t i = 0;
  int neg = 0;
  if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  if (i == n) return -1;
  uint64_t v = 0;
  for (; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (v > (UINT64_C(9223372036854775807) - d) / 10) return -1;
    v = v * 10 + d;
  }
  *out = neg ? -(int64_t)v : (int64_t)v;
  return 0;
}

static int parse_hex(const char *s, size_t n, uint64_t *out) {
  if (n == 0 || n > 16) return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    unsigned d;
    if (c >= '0' && c <= '9')
      d = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      d = (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      d = (unsigned)(c - 'A' + 10);
    else
      return -1;
    v = (v << 4) | d;
  }
  *out = v;
  return 0;
}

int mr_criteo_parse_line(const char *line, size_t len, mr_criteo_row_t *row,
                         mr_err_t *err) {
  if (len > 0 && line[len - 1] == '\r') len--;
  if (len > MR_CRITEO_MAX_LINE)
    return mr_err_set(err, MR_EFORMAT,
                      "line of %zu bytes, expected at most %d", len,
                      MR_CRITEO_MAX_LINE);
  size_t fields = 1;
  for (size_t i = 0; i < len; i++) fields += line[i] == '\t';
  if (fields != MR_CRITEO_NUM_FIELDS)
    return mr_err_set(err, MR_EFORMAT,
                      "%zu tab-separated fields, expected %d (label, I1-I13, "
                      "C1-C26)",
                      fields, MR_CRITEO_NUM_FIELDS);

  const char *p = line, *end = line + len;
  for (size_t i = 0; i < MR_CRITEO_NUM_FIELDS; i++) {
    const char *tab = memchr(p, '\t', (size_t)(end - p));
    size_t n = (size_t)((tab ? tab : end) - p);
    if (i == 0) {
      if (n == 0)
        row->label = 0;
      else if (n == 1 && (p[0] == '0' || p[0] == '1'))
        row->label = p[0] - '0';
      else
        return field_error(err, i, p, n, "a label (0 or 1)");
    } else if (i <= MR_CRITEO_NUM_DENSE) {
      int64_t x = 0;
      if (n > 0 && parse_int(p, n, &x) != 0)
        return field_error(err, i, p, n, "a decimal integer");
      if (x < 0) x = 0;
      row->dense[i - 1] = (float)log1p((double)x);
    } else {
      uint64_t v = 0;
      if (n > 0 && parse_hex(p, n, &v) != 0)
        return field_error(err, i, p, n, "hex of 1 to 16 digits");
      row->cat[i - 1 - MR_CRITEO_NUM_DENSE] = v;
    }
    p = tab ? tab + 1 : end;
  }
  return 0;
}

void mr_criteo_ids(const mr_criteo_row_t *row, size_t num_tables,
                   const uint64_t *rows, int64_t *ids) {
  for (size_t k = 0; k < num_tables && k < MR_CRITEO_NUM_CAT; k++) {
    uint64_t v = row->cat[k];
    if (rows && rows[k] > 0) v %= rows[k];
    ids[k] = (int64_t)v;
  }
}
