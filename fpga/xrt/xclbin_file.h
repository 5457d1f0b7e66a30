/* The xclbin container (the `axlf` layout of XRT's xrt/xclbin.h): a reader
 * for what the fpga backend checks before it loads one (memory topology,
 * compute units, which memory each kernel argument is connected to), and a
 * writer for xclbins without a bitstream, matching a plan's kernel: the
 * tests load them into XRT's no-op device (Debian's xclbinutil is not
 * usable, hence our own writer).
 *
 * A parsed xclbin points into the caller's buffer, which must outlive it.
 * Stateless otherwise; any thread. */
#ifndef MR_XRT_XCLBIN_FILE_H
#define MR_XRT_XCLBIN_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"
#include "fpga/kernel/microrec_geom.h"

#define MR_XCLBIN_MAX_ARGS 64

/* One kernel argument as connected in the xclbin. */
typedef struct mr_xclbin_conn {
  int arg;           /* argument index */
  int mem;           /* index into the memory topology */
} mr_xclbin_conn_t;

typedef struct mr_xclbin_info {
  unsigned char uuid[16];
  char platform[65];
  int num_mems;
  const void *mems;        /* struct mem_data[num_mems] (xrt/xclbin.h) */
  int cu;                  /* IP_LAYOUT index of the kernel's CU, -1 none */
  char cu_name[65];        /* "microrec_kernel:microrec_kernel_1" */
  int has_kernel_xml;      /* metadata declares the kernel */
  int num_conns;
  mr_xclbin_conn_t conns[MR_XCLBIN_MAX_ARGS]; /* of that CU */
} mr_xclbin_info_t;

/* Parses buf (len bytes) and finds kernel `kernel`'s compute unit. Errors
 * (MR_EFORMAT) say what is malformed; a missing kernel is not an error here
 * (info->cu = -1). */
int mr_xclbin_parse(const void *buf, size_t len, const char *kernel,
                    mr_xclbin_info_t *info, mr_err_t *err);

/* Tag of memory i ("HBM[3]") and whether it is in use; NULL if out of
 * range. */
const char *mr_xclbin_mem_tag(const mr_xclbin_info_t *info, int i,
                              int *used);

/* Memory index the CU's argument arg is connected to, or -1. */
int mr_xclbin_arg_mem(const mr_xclbin_info_t *info, int arg);

/* ---- writing ---- */

/* Variations the tests need to produce wrong xclbins on purpose. */
typedef struct mr_xclbin_opts {
  const char *kernel;      /* NULL = "microrec_kernel" */
  int move_bank;           /* >= 0: connect bank<move_bank> to move_to */
  const char *move_to;     /* e.g. "HBM[30]" */
  const char *drop_mem;    /* leave this memory out of the topology */
} mr_xclbin_opts_t;

/* Writes to path an xclbin (no bitstream) for the kernel built from g: the
 * U280's memories (HBM[0..31], DDR[0..1]), one compute unit
 * "microrec_kernel_1", its arguments (fpga/kernel/microrec_kernel.cpp's
 * order) in the embedded metadata, and each connected to the memory the
 * plan chose. o may be NULL. */
int mr_xclbin_write_for_kernel(const char *path, const mr_kgeom_t *g,
                               const mr_xclbin_opts_t *o, mr_err_t *err);

#endif
