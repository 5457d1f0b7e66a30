/* The feature interaction of the cpu backend: from the bottom MLP's output
 * (already in the top input) and one sample's embedding rows to the top
 * MLP's input (DESIGN.md, "Model file"). Private to fpga/cpu/; the layout is
 * fixed at open and read-only after; any thread with its own buffers. */
#ifndef MR_CPU_INTERACT_H
#define MR_CPU_INTERACT_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/cpu/kernels.h"
#include "fpga/cpu/tables.h"
#include "fpga/model.h"

typedef struct mr_cpu_interact {
  mr_interaction_t kind;
  size_t xw;       /* width of x at the start of the top input (0: no bottom) */
  size_t top_in;   /* width of the top input */
  /* dot only: vectors [x,] e_0 .. e_{T-1}, each of width d, held as columns
   * of a [d][npad] block (x in column 0 when present). */
  size_t nvec, d, npad;
} mr_cpu_interact_t;

/* Fills the layout for model m; dst_base (num_tables entries) and *stride
 * receive where the lookups must scatter each table (tables.h). */
void mr__cpu_interact_layout(mr_cpu_interact_t *ix, const mr_model_t *m,
                             size_t *dst_base, size_t *stride);

/* Completes the top input z (m rows of stride ldz) for m samples: gathers
 * each sample's rows (prefetching tb->prefetch_dist samples ahead; the
 * caller prefetched the first ones) and, for dot, computes the pairwise
 * dots through vec, a [d][npad] buffer whose columns >= nvec are zero.
 * ids: m rows of nt validated ids. gather_only (benchmarking the lookup
 * stage): the dots are skipped. */
void mr__cpu_interact_run(const mr_cpu_interact_t *ix, const mr_cpu_tables_t *tb,
                          const mr_cpu_kernels_t *k, size_t m,
                          const int64_t *ids, size_t nt, float *z, size_t ldz,
                          float *vec, int gather_only);

#endif
