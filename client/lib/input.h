/* Model input for a batch of samples, loaded from a file: a Criteo TSV file,
 * JSON lines, or the binary arrays of ../shared/testdata (dense.f32
 * [n x num_dense], sparse.i64 [n x num_tables], little-endian, row-major, no
 * header). Used by `microrec score`, `microrec infer` and the load
 * generator. The text forms are read line by line, never slurped; their
 * path may be "-" for stdin (named "<stdin>" in messages).
 *
 * Ownership: the mr_input_t is the caller's; the loaders allocate its arrays
 * and mr_input_free releases them. Not shared between threads while
 * loading; read-only afterwards, so any number of threads may read it. */
#ifndef MR_INPUT_H
#define MR_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"

typedef struct mr_input {
  size_t n;            /* samples */
  size_t num_dense;    /* dense values per sample (may be 0) */
  size_t num_tables;   /* ids per sample */
  float *dense;        /* n * num_dense, sample-major; NULL when num_dense = 0 */
  int64_t *ids;        /* n * num_tables, sample-major, table k at k */
  float *labels;       /* n labels from a Criteo file; NULL otherwise */
} mr_input_t;

/* Loads a Criteo TSV file (see criteo.h). num_dense must be 13 (or 0 to drop
 * the dense features, for models without dense input); num_tables must be
 * <= 26 (the first num_tables categorical features are used). rows[k] is
 * table k's row count: ids are taken mod rows[k]; rows NULL keeps the raw
 * hex values. A blank last line is fine; any other bad line fails the whole
 * load with MR_EFORMAT and err starting "PATH:LINE: ". An empty file gives
 * n = 0. On failure *in is left empty (safe to mr_input_free). */
int mr_input_load_criteo(mr_input_t *in, const char *path, size_t num_dense,
                         size_t num_tables, const uint64_t *rows,
                         mr_err_t *err);

/* Longest JSON line accepted for nd dense inputs and nt tables, terminator
 * excluded: 4 KiB plus 64 bytes per value (a number needs at most ~25). */
#define MR_INPUT_JSONL_MAX_LINE(nd, nt) ((size_t)4096 + 64 * ((nd) + (nt)))

/* Loads JSON lines, one sample per line:
 *   {"dense": [0.5, 1, 2.25], "sparse": [3, 0, 17]}
 * "dense" holds num_dense numbers, each within float32's range; it may be
 * omitted or [] when num_dense = 0. "sparse" holds num_tables integer ids
 * >= 0 (not checked against the tables here: the engine or server does).
 * Other keys, duplicate keys, trailing text and lines longer than
 * MR_INPUT_JSONL_MAX_LINE are errors. Blank lines are fine at the end only,
 * as for Criteo. Any bad line fails the whole load with MR_EFORMAT and err
 * "PATH:LINE: " + what was found and what was expected. An empty file gives
 * n = 0; num_tables must be >= 1. On failure *in is left empty. */
int mr_input_load_jsonl(mr_input_t *in, const char *path, size_t num_dense,
                        size_t num_tables, mr_err_t *err);

/* Loads the binary arrays. dense_path may be NULL only when num_dense = 0.
 * The row count comes from the file sizes: a size that is not a multiple of
 * the row size, or two files that disagree on the count, is MR_EFORMAT.
 * Ids are not checked against any table here (the engine or server does).
 * Paths must be files: "-" (stdin) is MR_EINVAL, since a pipe has no size. */
int mr_input_load_binary(mr_input_t *in, const char *dense_path,
                         const char *sparse_path, size_t num_dense,
                         size_t num_tables, mr_err_t *err);

/* Frees the arrays and zeroes *in; NULL or an empty input is fine. */
void mr_input_free(mr_input_t *in);

#endif
