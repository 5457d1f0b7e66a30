/* The MLPs of the cpu backend: weights packed at open into the kernel set's
 * panel layout (kernels.h), fp32 or bf16, and the layer driver that runs a
 * whole MLP, or one layer's share of panels, on a chunk of samples. Private
 * to fpga/cpu/; packed once, then read-only and shared by every thread. */
#ifndef MR_CPU_MLP_H
#define MR_CPU_MLP_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/cpu/kernels.h"
#include "fpga/err.h"
#include "fpga/model.h"

typedef struct mr_cpu_layer {
  size_t in, out;
  size_t np;     /* panels of 16 outputs: ceil(out / 16) */
  size_t k2;     /* bf16: pairs of inputs, ceil(in / 2) */
  float *w;      /* fp32: in * np * 16 floats, packed, 64-byte aligned */
  uint16_t *wb;  /* bf16: k2 * np * 32, packed, 64-byte aligned */
  float *bias;   /* np * 16 floats, zero padded */
} mr_cpu_layer_t;

typedef struct mr_cpu_mlp {
  size_t num;
  mr_cpu_layer_t *layers;
  int bf16;                       /* weights in w (0) or wb (1) */
  mr_cpu_gemm_bf16_fn gemm_bf16;  /* the kernel for this CPU, when bf16 */
  size_t group;                   /* panels per packed group */
  size_t max_pad;  /* widest padded output (floats), for scratch sizing */
  size_t max_k2;   /* widest input in bf16 pairs, for scratch sizing */
  uint64_t bytes;  /* packed weights and biases */
} mr_cpu_mlp_t;

/* Packs num layers (PyTorch [out][in] weights) for kernel set k, as bf16
 * when bf16 (weights rounded to nearest even, denormals to zero). */
int mr__cpu_mlp_pack(mr_cpu_mlp_t *mlp, const mr_layer_t *layers, size_t num,
                     const mr_cpu_kernels_t *k, int bf16, mr_err_t *err);
void mr__cpu_mlp_free(mr_cpu_mlp_t *mlp);

/* Layer i on m samples of x (row stride ldx), panels [p0, p1) only (p0 a
 * multiple of mlp->group; p1 one too, or np): y's columns [16 p0, 16 p1)
 * (row stride ldy, a multiple of 16). xb: max_batch * max_k2 pairs for the
 * bf16 input, private to the calling thread. */
void mr__cpu_mlp_layer(const mr_cpu_mlp_t *mlp, const mr_cpu_kernels_t *k,
                       size_t i, size_t m, const float *x, size_t ldx,
                       float *y, size_t ldy, int relu, size_t p0, size_t p1,
                       uint32_t *xb);

/* Runs every layer on m samples of in (row stride ldin). Layers before the
 * last alternate between ping and pong (each max_batch * max_pad floats);
 * the last writes to out (row stride ldout, a multiple of 16), or, when out
 * is NULL, to the one of ping/pong its input is not in, with row stride
 * np * 16. ReLU after every layer but the last; after the last too when
 * relu_last. Returns where the output went. bf16: xb and xb2 (each
 * max_batch * max(max_k2, max_pad / 2) pairs) carry the layers' inputs. */
float *mr__cpu_mlp_run(const mr_cpu_mlp_t *mlp, const mr_cpu_kernels_t *k,
                       size_t m, const float *in, size_t ldin, float *ping,
                       float *pong, float *out, size_t ldout, int relu_last,
                       uint32_t *xb, uint32_t *xb2);

/* mr__cpu_mlp_layer in two steps, for threads sharing a layer: prep
 * converts the input to bf16 pairs in xb (nothing for fp32), panels then
 * computes panels [p0, p1) from x or xb. */
void mr__cpu_mlp_layer_prep(const mr_cpu_mlp_t *mlp, const mr_cpu_kernels_t *k,
                            size_t i, size_t m, const float *x, size_t ldx,
                            uint32_t *xb);
void mr__cpu_mlp_layer_panels(const mr_cpu_mlp_t *mlp, const mr_cpu_kernels_t *k,
                              size_t i, size_t m, const float *x, size_t ldx,
                              float *y, size_t ldy, int relu, size_t p0,
                              size_t p1, const uint32_t *xb);

/* Where layer i of a run reads and writes, as mr__cpu_mlp_run chooses:
 * for callers that run layers one by one (threads sharing a run). */
void mr__cpu_mlp_route(const mr_cpu_mlp_t *mlp, size_t i, const float *in,
                       size_t ldin, float *ping, float *pong, float *out,
                       size_t ldout, const float **x, size_t *ldx, float **y,
                       size_t *ldy);

#endif
