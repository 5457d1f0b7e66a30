/* Models with random weights in the shape of a known workload (presets) or of
 * any architecture (specs), written as DLRM safetensors. Deterministic for a
 * given seed. Used by `microrec model gen`, the default model, tests and
 * benchmarks. No global state; specs and layouts are plain values the caller
 * owns, and a layout may be read by several threads at once. */
#ifndef MR_MODELGEN_H
#define MR_MODELGEN_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"
#include "fpga/model.h"
#include "fpga/safetensors.h"

#define MR_GEN_MAX_TABLES 256
#define MR_GEN_MAX_LAYERS 16

typedef struct mr_gen_spec {
  mr_interaction_t interaction;
  size_t num_tables;
  uint64_t rows[MR_GEN_MAX_TABLES];
  size_t dims[MR_GEN_MAX_TABLES];
  /* Bottom MLP widths including its input: {13, 512, 256, 64, 16}; empty
   * (num_bot_widths = 0) for a model without dense input. */
  size_t num_bot_widths;
  size_t bot_widths[MR_GEN_MAX_LAYERS + 1];
  /* Top MLP widths after its input (which the interaction fixes), ending in
   * 1: {512, 256, 1}. */
  size_t num_top_widths;
  size_t top_widths[MR_GEN_MAX_LAYERS];
  uint64_t seed;
  mr_dtype_t dtype; /* stored dtype; MR_F32 (0) unless testing conversions */
} mr_gen_spec_t;

/* Fills spec (zeroing it first: seed 0, F32) from a preset name ("criteo",
 * "alibaba-47", "alibaba-98"), rows capped at max_rows (0 = no cap).
 * MR_EINVAL with the list of presets for an unknown name. */
int mr_gen_preset(mr_gen_spec_t *spec, const char *preset, uint64_t max_rows,
                  mr_err_t *err);

/* Names of the presets, NULL-terminated. */
extern const char *const mr_gen_preset_names[];

/* Writes the model to path (via path.tmp, see mr_st_write), streaming it
 * in chunks so any size fits in a few MiB of memory. The weights are scaled
 * so that logits spread (a wrong lookup shows in the scores): embeddings
 * uniform in [-1, 1), layers He-uniform, biases small; then the last layer
 * is calibrated on a forward pass of MR_GEN_CALIB_SAMPLES random samples
 * (ids uniform, dense inputs uniform in [0, 4) like Criteo's log(1 + x)) so
 * the logits have mean 0 and standard deviation 2. Every value is a pure
 * function of (seed, tensor name, element index) and, for the last layer,
 * the calibration: the bytes do not depend on chunking, and a capped table
 * is the first rows of the uncapped one. progress (may be NULL) gets bytes
 * done and total, from the calling thread. Fails with MR_EINVAL when the
 * spec would not make a valid model (mr_model_validate's rules). */
#define MR_GEN_CALIB_SAMPLES 128
#define MR_GEN_LOGIT_STD 2.0f
int mr_gen_write(const mr_gen_spec_t *spec, const char *path,
                 void (*progress)(void *ctx, uint64_t done, uint64_t total),
                 void *ctx, mr_err_t *err);

/* Width of the top MLP's input for spec (mr_model_top_in's rule). */
size_t mr_gen_top_in(const mr_gen_spec_t *spec);

/* Bytes of all parameters as fp32, without writing anything. */
uint64_t mr_gen_param_bytes(const mr_gen_spec_t *spec);

/* The tensors mr_gen_write writes, in file order, and how to make their
 * bytes: for tests and tools that want the weights without a file. */
#define MR_GEN_MAX_TENSORS (MR_GEN_MAX_TABLES + 4 * MR_GEN_MAX_LAYERS)
typedef struct mr_gen_layout {
  size_t num_tensors;
  mr_st_desc_t descs[MR_GEN_MAX_TENSORS]; /* names point into names[] */
  char names[MR_GEN_MAX_TENSORS][24];
  uint64_t key[MR_GEN_MAX_TENSORS];  /* generator stream of each tensor */
  float scale[MR_GEN_MAX_TENSORS];   /* values: shift + uniform[-1, 1) * scale */
  float shift[MR_GEN_MAX_TENSORS];
} mr_gen_layout_t;

/* Checks spec and describes its tensors into *lay (caller's storage). */
int mr_gen_layout(const mr_gen_spec_t *spec, mr_gen_layout_t *lay,
                  mr_err_t *err);

/* Writes bytes [offset, offset + nbytes) of tensor `tensor` of lay, in its
 * dtype, into buf; any offset and length within the tensor. Returns 0 or
 * MR_EINVAL for a range outside the tensor. */
int mr_gen_fill(const mr_gen_layout_t *lay, size_t tensor, uint64_t offset,
                void *buf, size_t nbytes);

#endif
