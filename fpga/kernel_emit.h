/* The Vitis build inputs for one plan (`microrec plan --emit-vitis DIR`):
 *  - microrec_plan.h: the kernel geometry as `constexpr mr_kgeom_t MR_KPLAN`
 *    plus X-macros listing the kernel's memory ports, on-chip banks and
 *    layers (fpga/kernel/microrec_kernel.cpp expands them);
 *  - connectivity.cfg: the v++ link config: one compute unit, each port on
 *    its HBM[i] / DDR[j], the kernel clock.
 *
 * Kernel arguments, in order (the host driver relies on it): ids, dense,
 * out, init, n, mode, then bank<k> for each off-chip kernel bank k.
 * Stateless; any thread. */
#ifndef MR_KERNEL_EMIT_H
#define MR_KERNEL_EMIT_H

#include <stdint.h>
#include <stdio.h>

#include "fpga/err.h"
#include "fpga/kernel/microrec_geom.h"
#include "fpga/plan.h"

#define MR_KEMIT_KERNEL "microrec_kernel"
#define MR_KEMIT_CU "microrec_kernel_1"
#define MR_KEMIT_CLOCK_MHZ 200u
#define MR_KEMIT_ARG_BANK0 6 /* index of the first bank argument */

typedef struct mr_kemit_opts {
  uint32_t clock_mhz;  /* 0 = MR_KEMIT_CLOCK_MHZ */
  const char *source;  /* named in the header's comment; may be NULL */
} mr_kemit_opts_t;

/* Name ("HBM[5]") of the memory the ids/dense/out/init buffers share: the
 * off-chip bank with the fewest lookups (ties: the highest channel), or
 * DDR[0] when every table is on chip. */
void mr_kemit_io_bank(const mr_kgeom_t *g, char *name, size_t len);

/* Memory name of kernel bank k ("HBM[3]", "DDR[1]", "URAM"). */
void mr_kemit_bank_name(const mr_kgeom_t *g, uint32_t k, char *name,
                        size_t len);

int mr_kemit_header(FILE *f, const mr_kgeom_t *g, const mr_kemit_opts_t *o,
                    mr_err_t *err);
/* Fails (MR_EINVAL) when a table is on a bank the card does not have, such
 * as a cpu plan's host DRAM. */
int mr_kemit_connectivity(FILE *f, const mr_kgeom_t *g,
                          const mr_kemit_opts_t *o, mr_err_t *err);

/* What `microrec plan --target u280` adds for the kernel: the cycle model
 * of plan p for a model of m's shape (printed to out unless out is NULL),
 * and with dir, the Vitis files written there (a line on out says where).
 * m's values are not read. */
int mr_kemit_plan_extras(FILE *out, const mr_plan_t *p, const mr_model_t *m,
                         const char *dir, mr_err_t *err);

/* Creates dir (and parents) if needed and writes both files into it. */
int mr_kemit_dir(const char *dir, const mr_kgeom_t *g,
                 const mr_kemit_opts_t *o, mr_err_t *err);

#endif
