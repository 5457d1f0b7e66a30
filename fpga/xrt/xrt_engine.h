/* The `fpga` backend (DESIGN.md, "Engine"): the MicroRec kernel on an
 * Alveo card through XRT. Open: check the xclbin's memory topology against
 * the plan, load it, allocate one buffer per memory bank in that bank's
 * memory group, write and sync the bank images once, load the weights on
 * chip (MR_K_MODE_LOAD) and check the plan hash the kernel reports
 * (MR_K_MODE_IDENT). Run: ids in, kernel run with a timeout, scores out.
 *
 * Device: XRT device 0 (set XILINX_XRT; XCL_EMULATION_MODE=noop gives XRT's
 * no-op device, which accepts everything and computes nothing).
 *
 * Threads: runs on different scratches may go on in parallel (each scratch
 * has its own request buffers and XRT run). Free every scratch before
 * closing the engine (close releases what is left). The functions below are
 * for tests and tools; call them when no run is in flight.
 *
 * At process exit, XRT handles still open are released by an exit handler:
 * XRT's own static destructors crash when they free them later. */
#ifndef MR_XRT_ENGINE_H
#define MR_XRT_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/engine.h"
#include "fpga/kernel/microrec_geom.h"

#define MR_XRT_TIMEOUT_MS 10000u

extern const mr_backend_t mr_fpga_backend;

/* How long a run may take before it fails with MR_ETIMEDOUT (after which
 * the engine refuses further runs: the device state is unknown). */
void mr_xrt_set_timeout(mr_engine_t *e, unsigned ms);

/* Fault injection for tests: the next kernel run is treated as if XRT's
 * wait had returned `state` (an ert_cmd_state: RUNNING as after a timeout,
 * ERROR, ...). XRT's no-op device cannot time out by itself: its wait spins
 * until the command completes, whatever the timeout. */
void mr_xrt_inject_wait(mr_engine_t *e, int state);
#define MR_XRT_STATE_RUNNING 3 /* ERT_CMD_STATE_RUNNING */
#define MR_XRT_STATE_ERROR 5   /* ERT_CMD_STATE_ERROR */

/* Kernel bank k's buffer as mapped in host memory (its bytes in *bytes);
 * NULL for on-chip banks (they live in the init buffer). */
const float *mr_xrt_bank_view(const mr_engine_t *e, uint32_t k,
                              size_t *bytes);

/* The init buffer (weights, on-chip tables) as mapped. */
const float *mr_xrt_init_view(const mr_engine_t *e, size_t *bytes);

/* The geometry the engine runs; kernel runs issued and completed so far. */
const mr_kgeom_t *mr_xrt_geom(const mr_engine_t *e);
void mr_xrt_counts(const mr_engine_t *e, uint64_t *started,
                   uint64_t *completed);

#endif
