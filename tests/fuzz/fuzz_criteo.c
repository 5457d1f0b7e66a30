/* libFuzzer target: the Criteo TSV line parser of the client library
 * (mr_criteo_parse_line, then mr_criteo_ids), one line per '\n'. A parsed
 * row must hold finite dense values >= 0 (ln(1 + max(x, 0))) and ids below
 * their table sizes. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/lib/criteo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint64_t rows[MR_CRITEO_NUM_CAT] = {
      1, 2, 3, 10, 100, 1000, 1u << 20, 7, 11, 13, 17, 19, 23,
      29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 1ull << 40};
  const char *p = (const char *)data, *end = p + size;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (len <= MR_CRITEO_MAX_LINE) {
      /* The parser gets the line alone, not NUL-terminated. */
      char *line = malloc(len ? len : 1);
      if (!line) return 0;
      memcpy(line, p, len);
      mr_criteo_row_t row;
      mr_err_t err = {0};
      if (mr_criteo_parse_line(line, len, &row, &err) == 0) {
        for (size_t j = 0; j < MR_CRITEO_NUM_DENSE; j++)
          if (!(row.dense[j] >= 0.0f) || isinf(row.dense[j])) {
            fprintf(stderr, "dense %zu = %g\n", j, (double)row.dense[j]);
            abort();
          }
        int64_t ids[MR_CRITEO_NUM_CAT];
        mr_criteo_ids(&row, MR_CRITEO_NUM_CAT, rows, ids);
        for (size_t k = 0; k < MR_CRITEO_NUM_CAT; k++)
          if (ids[k] < 0 || (uint64_t)ids[k] >= rows[k]) abort();
      } else if (!err.msg[0]) {
        abort(); /* an error says what was wrong */
      }
      free(line);
    }
    p += len + 1;
  }
  return 0;
}
