/* A DLRM-style model loaded from one .safetensors file (DESIGN.md, "Model
 * file"). Loading maps the file read-only and validates every tensor the
 * model needs; F32 tensors are used in place when aligned, F16/BF16 (and
 * misaligned F32) are converted into owned buffers. The model is immutable
 * after mr_model_open and may be read from any thread. */
#ifndef MR_MODEL_H
#define MR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"

typedef enum mr_interaction {
  MR_INTERACT_DOT = 0, /* DLRM: x ++ pairwise dots of [x, e_0..e_{T-1}] */
  MR_INTERACT_CAT = 1, /* MicroRec: x ++ e_0 ++ .. ++ e_{T-1} */
} mr_interaction_t;

/* Embedding table: rows x dim floats, row-major. */
typedef struct mr_table {
  size_t rows;
  size_t dim;
  const float *data;
} mr_table_t;

/* Dense layer y = W x + b, W stored [out][in] as PyTorch's nn.Linear. */
typedef struct mr_layer {
  size_t in;
  size_t out;
  const float *weight;
  const float *bias;
} mr_layer_t;

typedef struct mr_model {
  mr_interaction_t interaction;
  size_t num_dense;  /* bottom MLP input width; 0 without a bottom MLP */
  size_t num_tables;
  mr_table_t *tables;
  size_t num_bot;    /* bottom layers, ReLU after each */
  mr_layer_t *bot;
  size_t num_top;    /* top layers, ReLU after each but the last; out(last) = 1 */
  mr_layer_t *top;

  /* Private to model.c. */
  void *map_;
  size_t map_len_;
  void **owned_;
  size_t num_owned_;
} mr_model_t;

/* Opens and validates path. On failure returns a negative code (MR_EFORMAT
 * for the file's content, MR_ENOMEM, or -errno for I/O), leaves *m closed
 * (zeroed), and err names the tensor and what was expected.
 *
 * Names (DESIGN.md): emb_l.{k}.weight for k = 0..T-1 without gaps;
 * bot_l.{2i}.weight/.bias and top_l.{2i}.weight/.bias for i = 0.. without
 * gaps (odd indices are the ReLUs and hold no tensors). Other names are
 * ignored. __metadata__.interaction is "dot" or "cat"; when it is absent the
 * model is "dot", DLRM's, because a plain save_file(model.state_dict()) has
 * no metadata. The file is mapped read-only (MAP_PRIVATE), never read whole;
 * it must not be truncated while the model is open. */
int mr_model_open(mr_model_t *m, const char *path, mr_err_t *err);

/* Same, from a buffer holding a whole file; buf must outlive the model.
 * Used by the fuzzer and by tests. */
int mr_model_open_buffer(mr_model_t *m, const void *buf, size_t len,
                         mr_err_t *err);

/* Frees what the model owns and unmaps the file; m is zeroed. Safe on a
 * zeroed model and twice. */
void mr_model_close(mr_model_t *m);

/* Checks the structure of a model built by hand; mr_model_open calls it too.
 * At least one table, every table rows >= 1 and dim >= 1, every layer
 * in/out >= 1, data pointers non-NULL, num_dense == bot[0].in (0 without a
 * bottom MLP); bottom and top layers chain, the top ends in width 1,
 * top[0].in == mr_model_top_in(m). dot: every table as wide as the bottom
 * MLP's output (or, without one, all tables one width). */
int mr_model_validate(const mr_model_t *m, mr_err_t *err);

/* Width of the top MLP input the interaction produces. dot: d_x + n(n-1)/2,
 * n = T + (bottom MLP ? 1 : 0), d_x = bottom output width (0 without);
 * cat: d_x + sum of table widths. */
size_t mr_model_top_in(const mr_model_t *m);

/* Bytes of all parameters as fp32. */
uint64_t mr_model_param_bytes(const mr_model_t *m);

const char *mr_interaction_name(mr_interaction_t i);

#endif
