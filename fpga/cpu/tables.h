/* Plan-shaped embedding tables of the cpu backend and their lookups.
 *
 * At open, mr__cpu_tables_build turns the plan's physical tables into
 * memory (huge pages, table by table from the model): physical table row
 * r = (a * rows(B) + b) * rows(C) + c holds columns [col_begin, col_end) of
 * A[a] ++ B[b] ++ C[c]. It also precomputes, per physical table, the copy
 * segments that scatter a row into the interaction input: element l of a
 * segment goes from row[src + l] to dst[dst + l * stride], where the
 * destination of logical table t's column c is dst_base[t] + c * stride
 * (cat: the top input, stride 1; dot: the [d][npad] vector block, stride
 * npad).
 *
 * int8 tables (opts.precision "int8emb"): a stored row is one (scale,
 * bias) fp32 pair per segment, then the row's `width` values as uint8 q,
 * read back as bias + scale * q. The pair comes from the whole LOGICAL row
 * the segment's values belong to (bias = its minimum, scale = (max - min) /
 * 255), so a product plan stores exactly the values the identity plan
 * does. Stored rows are padded to a power of two up to 64 bytes (a
 * multiple of 64 past it) so that none straddles a cache line.
 *
 * At run time each sample reads ONE row per physical table. Ids must have
 * been validated (mr_engine_check). Private to fpga/cpu/; built once, then
 * read-only and shared by every thread. */
#ifndef MR_CPU_TABLES_H
#define MR_CPU_TABLES_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"
#include "fpga/model.h"
#include "fpga/plan.h"

typedef struct mr_cpu_seg {
  uint32_t src; /* column within the stored row */
  uint32_t dst; /* first destination index */
  uint32_t len;
} mr_cpu_seg_t;

typedef struct mr_cpu_ptable {
  const unsigned char *base;  /* rows x row_bytes, row-major */
  size_t width;       /* col_end - col_begin */
  size_t row_bytes;   /* fp32: width * 4; int8: see above */
  uint64_t rows;
  /* Row of a sample: sum over f of ids[slot[f]] * mult[f]; unused factors
   * have mult 0 (and slot of factor 0), so the sum is branch-free. */
  size_t slot[MR_PLAN_MAX_FACTORS];
  uint64_t mult[MR_PLAN_MAX_FACTORS];
  size_t seg_begin, num_segs;                  /* into mr_cpu_tables_t.segs */
} mr_cpu_ptable_t;

typedef struct mr_cpu_tables {
  size_t num;
  mr_cpu_ptable_t *t;
  size_t num_segs;
  mr_cpu_seg_t *segs;
  size_t stride;         /* destination stride of every segment */
  int int8;              /* rows stored as int8 (see above) */
  size_t prefetch_dist;  /* samples to prefetch ahead of the gather */
  uint64_t bytes;        /* bytes of the physical tables */
  void *mem;             /* huge-page block holding every table */
  size_t mem_len;
} mr_cpu_tables_t;

/* Builds tables for plan p (already checked against m), fp32 or int8.
 * dst_base has one entry per logical table. On failure returns a negative
 * code with err set and leaves tb empty. */
int mr__cpu_tables_build(mr_cpu_tables_t *tb, const mr_model_t *m,
                         const mr_plan_t *p, const size_t *dst_base,
                         size_t stride, int int8, mr_err_t *err);
void mr__cpu_tables_free(mr_cpu_tables_t *tb);

/* Prefetches every cache line of the rows one sample reads (ids: that
 * sample's num_logical ids). */
void mr__cpu_lookup_prefetch(const mr_cpu_tables_t *tb, const int64_t *ids);

/* Copies one sample's rows into dst through the segments. */
void mr__cpu_lookup_gather(const mr_cpu_tables_t *tb, const int64_t *ids,
                           float *dst);

#endif
