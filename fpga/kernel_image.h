/* What the MicroRec kernel is given: its geometry (fpga/kernel/
 * microrec_geom.h) derived from a model's shape and a plan, and the memory
 * images built from the model's values: one per memory bank, and the init
 * image (weights, on-chip tables). The fpga-sim backend runs the kernel on
 * these images; the fpga backend copies them into the card's buffers; the
 * Vitis emitter writes the geometry as a header.
 *
 * Ownership: an image owns its geometry and buffers (mr_kimage_free).
 * Immutable once built; any thread may read it. */
#ifndef MR_KERNEL_IMAGE_H
#define MR_KERNEL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/engine.h"
#include "fpga/err.h"
#include "fpga/kernel/microrec_geom.h"
#include "fpga/model.h"
#include "fpga/modelgen.h"
#include "fpga/plan.h"

/* Multiply-add lanes shared by the MLP's processing elements: at about 5
 * DSP48 slices per fp32 lane, 1024 lanes use 5120 of the U280's 9024 DSPs. */
#define MR_KGEOM_LANE_BUDGET 1024u

/* Fills g (zeroed first) from the shapes of m (its values are not read, so
 * a model with NULL data works) and plan p, which must be valid for m.
 * Kernel banks: one per off-chip plan bank holding tables (in plan order),
 * and one per on-chip table (its own URAM and lookup unit). Errors name the
 * limit exceeded (banks, tables, layers, ids wider than 32 bits). */
int mr_kgeom_build(mr_kgeom_t *g, const mr_model_t *m, const mr_plan_t *p,
                   mr_err_t *err);

/* FNV-1a over the geometry with its hash field zeroed; mr_kgeom_build
 * stores it in g->hash. The kernel reports it in MR_K_MODE_IDENT so a host
 * can tell an xclbin built for another plan. */
uint64_t mr_kgeom_hash(const mr_kgeom_t *g);

/* Kind and channel of a plan bank from its name: "HBM[3]" -> MR_KMEM_HBM, 3;
 * "DDR[1]" -> MR_KMEM_DDR, 1; "URAM"/"BRAM"/"PLRAM"... -> MR_KMEM_ONCHIP;
 * anything else (e.g. "DRAM") -> MR_KMEM_HOST. */
void mr_kgeom_bank_kind(const char *name, uint32_t *kind, uint32_t *index);

/* A model with shapes only (no values), from a generator spec: what the
 * geometry needs for a preset at its real size, without writing it. */
typedef struct mr_kshape {
  mr_model_t m;
  mr_table_t tables[MR_GEN_MAX_TABLES];
  mr_layer_t bot[MR_GEN_MAX_LAYERS], top[MR_GEN_MAX_LAYERS];
} mr_kshape_t;

void mr_kshape_from_spec(mr_kshape_t *s, const mr_gen_spec_t *spec);
/* The shapes of a loaded model (which may then be closed). MR_ENOTSUP when
 * it has more tables or layers than a spec holds. */
int mr_kshape_from_model(mr_kshape_t *s, const mr_model_t *m, mr_err_t *err);

typedef struct mr_kimage {
  mr_kgeom_t *geom;  /* owned */
  float **banks;     /* geom->num_banks images; on-chip ones point into init */
  float *init;       /* geom->init_words floats */
  uint64_t bytes;    /* all images together */
} mr_kimage_t;

/* Builds geometry and images from model m (with data) and plan p. */
int mr_kimage_build(mr_kimage_t *img, const mr_model_t *m, const mr_plan_t *p,
                    mr_err_t *err);
void mr_kimage_free(mr_kimage_t *img);

/* The plan a kernel backend runs: o->plan when given (checked against m),
 * else the planner's for the U280 target (placement only when
 * o->no_products). *plan points to o->plan or to
 * *own, which the caller frees with mr_plan_free either way. */
int mr_kplan_pick(mr_plan_t *own, const mr_plan_t **plan, const mr_model_t *m,
                  const mr_engine_opts_t *o, const char *backend,
                  mr_err_t *err);

/* The engine info of a kernel backend and the arrays it points to, copied
 * from the model (which may be closed afterwards). */
typedef struct mr_kinfo {
  mr_engine_info_t info;
  uint64_t *rows;
  size_t *dims, *bot_in, *bot_out, *top_in, *top_out;
} mr_kinfo_t;

int mr_kinfo_fill(mr_kinfo_t *ki, const mr_model_t *m, const char *backend,
                  size_t max_batch, uint64_t resident_bytes, mr_err_t *err);
void mr_kinfo_free(mr_kinfo_t *ki);

#endif
