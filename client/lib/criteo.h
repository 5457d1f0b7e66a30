/* Criteo Display Advertising TSV rows (the Kaggle layout): label, 13 integer
 * features I1-I13, 26 categorical features C1-C26 as hex, tab separated,
 * empty fields missing. Preprocessing is DLRM's Criteo convention
 * (../shared/testdata/README.md):
 *   dense: missing -> 0, negative -> 0, then ln(1 + x) as float32;
 *   categorical: missing -> 0, else the hex string as an unsigned integer
 *   (the caller then reduces it mod the table's rows).
 * Pure functions: no I/O, no allocation, safe from any thread. */
#ifndef MR_CRITEO_H
#define MR_CRITEO_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"

#define MR_CRITEO_NUM_DENSE 13
#define MR_CRITEO_NUM_CAT 26
#define MR_CRITEO_NUM_FIELDS (1 + MR_CRITEO_NUM_DENSE + MR_CRITEO_NUM_CAT)
/* Longest line accepted, terminator excluded (a real row is ~270 bytes). */
#define MR_CRITEO_MAX_LINE 4096

typedef struct mr_criteo_row {
  int label;                             /* 0 or 1; 0 when missing */
  float dense[MR_CRITEO_NUM_DENSE];      /* already ln(1 + max(x, 0)) */
  uint64_t cat[MR_CRITEO_NUM_CAT];       /* raw hex values, not reduced */
} mr_criteo_row_t;

/* Parses one line of len bytes (without its '\n'; a trailing '\r' is
 * ignored) into row. Returns 0, or MR_EFORMAT with err naming the field
 * (e.g. "field 17 (C3): 'zz' is not hex") and what was expected. The caller
 * adds the line number with mr_err_prefix. */
int mr_criteo_parse_line(const char *line, size_t len, mr_criteo_row_t *row,
                         mr_err_t *err);

/* Fills ids[0..num_tables) from row: cat[k] % rows[k] (rows[k] > 0), or the
 * raw value when rows is NULL. num_tables must be <= MR_CRITEO_NUM_CAT. */
void mr_criteo_ids(const mr_criteo_row_t *row, size_t num_tables,
                   const uint64_t *rows, int64_t *ids);

#endif
