/* The kernel with its geometry given at run time: the fpga-sim backend's
 * way in (C linkage), and the reference the csim testbench compares the
 * hardware top against. Same stage functions as the HLS top
 * (microrec_kernel.hpp), wired by a loop over banks and layers instead of
 * the generated macros.
 *
 * Ownership: a work area belongs to one thread at a time; the geometry and
 * the images it reads are the caller's and are never written. */
#ifndef MICROREC_RT_H
#define MICROREC_RT_H

#include <stdint.h>

#include "microrec_geom.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MR_KRT_ENOMEM (-1)   /* allocation failed */
#define MR_KRT_EFLOW (-2)    /* a stream under- or overflowed: a bug */

typedef struct mr_kwork mr_kwork_t;

/* Streams and buffers for g, sized for batches up to max_batch. Returns 0
 * or MR_KRT_ENOMEM (and *out = NULL). */
int mr_kernel_rt_work_new(const mr_kgeom_t *g, uint32_t max_batch,
                          mr_kwork_t **out);
void mr_kernel_rt_work_free(mr_kwork_t *w);

/* Runs the dataflow on n samples. banks[k] is kernel bank k's image (for an
 * on-chip bank: init + g->bank_init_off[k], as the hardware copies it);
 * init the init image; ids n * num_logical, dense n * num_dense (NULL when
 * 0); out receives n * {logit, score}. Ids must be in range (the engine
 * checks them). Returns 0, MR_KRT_ENOMEM or MR_KRT_EFLOW. */
int mr_kernel_rt_run(const mr_kgeom_t *g, mr_kwork_t *w,
                     const float *const *banks, const float *init,
                     const uint32_t *ids, const float *dense, float *out,
                     uint32_t n);

#ifdef __cplusplus
}
#endif

#endif
