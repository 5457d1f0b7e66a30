/* Packing MLP weights into panels and running the layers (see mlp.h). */
#include "fpga/cpu/mlp.h"

#include <stdlib.h>
#include <string.h>

#include "fpga/cpu/dispatch.h"

static void *alloc64(size_t bytes) {
  bytes = (bytes + 63) & ~(size_t)63;
  void *p = aligned_alloc(64, bytes ? bytes : 64);
  if (p) memset(p, 0, bytes ? bytes : 64);
  return p;
}

static float weight_at(const mr_layer_t *l, size_t o, size_t k) {
  return o < l->out && k < l->in ? l->weight[o * l->in + k] : 0.0f;
}

/* Layout of kernels.h: groups of `group` panels, each [in][gp * 16]. */
static void pack_layer(const mr_layer_t *l, size_t np, size_t group, float *w) {
  size_t in = l->in;
  for (size_t p0 = 0; p0 < np; p0 += group) {
    size_t gp = np - p0 < group ? np - p0 : group;
    float *g = w + in * p0 * 16;
    for (size_t k = 0; k < in; k++)
      for (size_t p = 0; p < gp; p++)
        for (size_t lane = 0; lane < 16; lane++)
          g[k * gp * 16 + p * 16 + lane] = weight_at(l, (p0 + p) * 16 + lane, k);
  }
}

/* The bf16 layout of kernels.h: groups of [k2][gp * 16][2]. */
static void pack_layer_bf16(const mr_layer_t *l, size_t np, size_t k2,
                            size_t group, uint16_t *w) {
  for (size_t p0 = 0; p0 < np; p0 += group) {
    size_t gp = np - p0 < group ? np - p0 : group;
    uint16_t *g = w + k2 * p0 * 32;
    for (size_t kk = 0; kk < k2; kk++)
      for (size_t p = 0; p < gp; p++)
        for (size_t lane = 0; lane < 16; lane++)
          for (size_t h = 0; h < 2; h++)
            g[kk * gp * 32 + p * 32 + lane * 2 + h] =
                mr__cpu_bf16(weight_at(l, (p0 + p) * 16 + lane, 2 * kk + h));
  }
}

int mr__cpu_mlp_pack(mr_cpu_mlp_t *mlp, const mr_layer_t *layers, size_t num,
                     const mr_cpu_kernels_t *k, int bf16, mr_err_t *err) {
  memset(mlp, 0, sizeof *mlp);
  mlp->bf16 = bf16;
  mlp->group = bf16 ? k->group_bf16 : k->group;
  if (bf16) mlp->gemm_bf16 = mr__cpu_gemm_bf16(k);
  if (num == 0) return 0;
  mlp->layers = calloc(num, sizeof *mlp->layers);
  if (!mlp->layers) return mr_err_set(err, MR_ENOMEM, "cpu engine: out of memory");
  mlp->num = num;
  for (size_t i = 0; i < num; i++) {
    const mr_layer_t *l = &layers[i];
    mr_cpu_layer_t *c = &mlp->layers[i];
    c->in = l->in;
    c->out = l->out;
    c->np = (l->out + 15) / 16;
    c->k2 = (l->in + 1) / 2;
    size_t wbytes = bf16 ? c->k2 * c->np * 32 * sizeof(uint16_t)
                         : l->in * c->np * 16 * sizeof(float);
    void *w = alloc64(wbytes);
    c->bias = alloc64(c->np * 16 * sizeof(float));
    if (!w || !c->bias) {
      free(w);
      mr__cpu_mlp_free(mlp);
      return mr_err_set(err, MR_ENOMEM,
                        "cpu engine: out of memory packing a %zu x %zu layer",
                        l->out, l->in);
    }
    if (bf16) {
      c->wb = w;
      pack_layer_bf16(l, c->np, c->k2, k->group_bf16, c->wb);
    } else {
      c->w = w;
      pack_layer(l, c->np, k->group, c->w);
    }
    memcpy(c->bias, l->bias, l->out * sizeof(float));
    if (c->np * 16 > mlp->max_pad) mlp->max_pad = c->np * 16;
    if (c->k2 > mlp->max_k2) mlp->max_k2 = c->k2;
    mlp->bytes += wbytes + c->np * 16 * sizeof(float);
  }
  return 0;
}

void mr__cpu_mlp_free(mr_cpu_mlp_t *mlp) {
  if (!mlp) return;
  for (size_t i = 0; i < mlp->num; i++) {
    free(mlp->layers[i].w);
    free(mlp->layers[i].wb);
    free(mlp->layers[i].bias);
  }
  free(mlp->layers);
  memset(mlp, 0, sizeof *mlp);
}

void mr__cpu_mlp_layer_prep(const mr_cpu_mlp_t *mlp, const mr_cpu_kernels_t *k,
                            size_t i, size_t m, const float *x, size_t ldx,
                            uint32_t *xb) {
  const mr_cpu_layer_t *l = &mlp->layers[i];
  if (mlp->bf16) k->to_bf16(m, l->in, x, ldx, xb, l->k2);
}

void mr__cpu_mlp_layer_panels(const mr_cpu_mlp_t *mlp, const mr_cpu_kernels_t *k,
                              size_t i, size_t m, const float *x, size_t ldx,
                              float *y, size_t ldy, int relu, size_t p0,
                              size_t p1, const uint32_t *xb) {
  const mr_cpu_layer_t *l = &mlp->layers[i];
  if (p1 <= p0) return;
  if (mlp->bf16)
    mlp->gemm_bf16(m, l->k2, p1 - p0, xb, l->k2, l->wb + l->k2 * p0 * 32,
                   l->bias + p0 * 16, y + p0 * 16, ldy, relu, NULL);
  else
    k->gemm(m, l->in, p1 - p0, x, ldx, l->w + l->in * p0 * 16, l->bias + p0 * 16,
            y + p0 * 16, ldy, relu);
}

void mr__cpu_mlp_layer(const mr_cpu_mlp_t *mlp, const mr_cpu_kernels_t *k,
                       size_t i, size_t m, const float *x, size_t ldx,
                       float *y, size_t ldy, int relu, size_t p0, size_t p1,
                       uint32_t *xb) {
  if (p1 <= p0) return;
  mr__cpu_mlp_layer_prep(mlp, k, i, m, x, ldx, xb);
  mr__cpu_mlp_layer_panels(mlp, k, i, m, x, ldx, y, ldy, relu, p0, p1, xb);
}

void mr__cpu_mlp_route(const mr_cpu_mlp_t *mlp, size_t i, const float *in,
                       size_t ldin, float *ping, float *pong, float *out,
                       size_t ldout, const float **x, size_t *ldx, float **y,
                       size_t *ldy) {
  /* Layer j reads in (j = 0) or the buffer layer j-1 wrote: layer j writes
   * ping when j is even, pong when odd, unless it is the last and out is
   * given. */
  *x = i == 0 ? in : (i - 1) % 2 == 0 ? ping : pong;
  *ldx = i == 0 ? ldin : mlp->layers[i - 1].np * 16;
  if (i + 1 == mlp->num && out) {
    *y = out;
    *ldy = ldout;
  } else {
    *y = i % 2 == 0 ? ping : pong;
    *ldy = mlp->layers[i].np * 16;
  }
}

/* bf16 on one thread: each hidden layer writes its output as bf16 pairs
 * straight into the next layer's input buffer (xb and xb2 in turn), which
 * rounds exactly as converting the fp32 output would. */
static float *run_bf16(const mr_cpu_mlp_t *mlp, const mr_cpu_kernels_t *k,
                       size_t m, const float *in, size_t ldin, float *ping,
                       float *pong, float *out, size_t ldout, int relu_last,
                       uint32_t *xb, uint32_t *xb2) {
  uint32_t *a = xb, *b = xb2;
  size_t lda = mlp->layers[0].k2;
  k->to_bf16(m, mlp->layers[0].in, in, ldin, a, lda);
  float *y = NULL;
  for (size_t i = 0; i < mlp->num; i++) {
    const mr_cpu_layer_t *l = &mlp->layers[i];
    const float *x;
    size_t ldx, ldy;
    mr__cpu_mlp_route(mlp, i, in, ldin, ping, pong, out, ldout, &x, &ldx, &y, &ldy);
    int last = i + 1 == mlp->num;
    if (last) {
      mlp->gemm_bf16(m, l->k2, l->np, a, lda, l->wb, l->bias, y, ldy, relu_last, NULL);
      break;
    }
    /* Rows of np * 16 uint16: np * 8 pairs, >= the next layer's k2. */
    mlp->gemm_bf16(m, l->k2, l->np, a, lda, l->wb, l->bias, NULL, l->np * 16, 1,
                   (uint16_t *)b);
    lda = l->np * 8;
    uint32_t *t = a;
    a = b;
    b = t;
  }
  return y;
}

float *mr__cpu_mlp_run(const mr_cpu_mlp_t *mlp, const mr_cpu_kernels_t *k,
                       size_t m, const float *in, size_t ldin, float *ping,
                       float *pong, float *out, size_t ldout, int relu_last,
                       uint32_t *xb, uint32_t *xb2) {
  if (mlp->bf16 && mlp->num)
    return run_bf16(mlp, k, m, in, ldin, ping, pong, out, ldout, relu_last, xb, xb2);
  float *y = NULL;
  for (size_t i = 0; i < mlp->num; i++) {
    const float *x;
    size_t ldx, ldy;
    mr__cpu_mlp_route(mlp, i, in, ldin, ping, pong, out, ldout, &x, &ldx, &y, &ldy);
    int last = i + 1 == mlp->num;
    mr__cpu_mlp_layer(mlp, k, i, m, x, ldx, y, ldy, !last || relu_last, 0,
                      mlp->layers[i].np, xb);
  }
  return y;
}
