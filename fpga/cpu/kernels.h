/* Compute kernels of the cpu backend, one set per instruction set (scalar,
 * AVX2, AVX-512), chosen at open by dispatch.c. Private to fpga/cpu/.
 *
 * Packed weights (mlp.c packs them for the set's `group`): a layer of K
 * inputs and P = ceil(out / 16) panels of 16 outputs is stored as groups of
 * `group` panels (the last group may hold fewer, gp). Group g starts at float
 * K * g * group * 16 and holds [K][gp * 16]: weight (output o, input k) with
 * o = (g * group + p) * 16 + lane sits at k * gp * 16 + p * 16 + lane.
 * Outputs past `out` have zero weights and zero bias, so padded activations
 * are exactly 0 after bias + ReLU. Bias is padded to P * 16.
 *
 * Alignment: packed weights, bias and outputs are 64-byte aligned and every
 * output row stride (ldc) is a multiple of 16 floats. Inputs (a, lda) may be
 * unaligned: only single floats are read from them.
 *
 * bf16 (opts.precision): weights packed the same way but in pairs of k:
 * group g (of group_bf16 panels) starts at uint16 K2 * g * group_bf16 * 32,
 * K2 = ceil(K / 2), and holds [K2][gp * 16][2]: weight (o, k) at
 * (k / 2) * gp * 32 + p * 32 + lane * 2 + k % 2 (0 for k >= K). Inputs
 * are rows of bf16 pairs (uint32: k even in the low half), made by to_bf16.
 * Each pair is applied as AVX512_BF16's vdpbf16ps does: acc += a[k+1] *
 * w[k+1], then acc += a[k] * w[k], each product exact in fp32 and each sum
 * rounded (an FMA); denormal bf16 inputs are zero (flushed when packing and
 * converting). So the emulated kernels give the native instruction's
 * results up to its flushing of denormal sums.
 *
 * The kernels are pure functions of their arguments: any thread. */
#include <stdint.h>

#ifndef MR_CPU_KERNELS_H
#define MR_CPU_KERNELS_H

#include <stddef.h>

typedef struct mr_cpu_kernels {
  const char *name;  /* "scalar", "avx2", "avx512" */
  size_t group;      /* panels of 16 outputs per packed group */
  /* c[i][0 .. np*16) = act(sum_k a[i][k] * W[k][.] + bias) for i < m;
   * act = ReLU when relu, identity otherwise. */
  void (*gemm)(size_t m, size_t k, size_t np, const float *a, size_t lda,
               const float *w, const float *bias, float *c, size_t ldc,
               int relu);
  /* DLRM's pairwise dots. tt is [d][npad], column j holding vector j
   * (npad >= round16(n) + 16, columns >= n zero); out receives
   * <T_i, T_j> for i in 1..n-1, j in 0..i-1, in that order. */
  void (*dot)(size_t n, size_t d, const float *tt, size_t npad, float *out);
  size_t group_bf16;  /* panels per packed bf16 group */
  /* As gemm with bf16 weights and inputs: k2 pairs of k per row, a row
   * stride lda in pairs. When cb is not NULL the outputs go there instead
   * of c, rounded to bf16 as to_bf16 rounds (same indexing as c: row
   * stride ldc uint16s), ready to be the next layer's input. */
  void (*gemm_bf16)(size_t m, size_t k2, size_t np, const uint32_t *a,
                    size_t lda, const uint16_t *w, const float *bias,
                    float *c, size_t ldc, int relu, uint16_t *cb);
  /* The same with vdpbf16ps; NULL when the set has none. Call only when the
   * CPU has AVX512_BF16 (mr__cpu_gemm_bf16 in dispatch.h chooses). */
  void (*gemm_bf16_native)(size_t m, size_t k2, size_t np, const uint32_t *a,
                           size_t lda, const uint16_t *w, const float *bias,
                           float *c, size_t ldc, int relu, uint16_t *cb);
  /* y[i] = m rows of ceil(k / 2) bf16 pairs (round to nearest even,
   * denormals to zero, a zero high half past k) of x's rows. */
  void (*to_bf16)(size_t m, size_t k, const float *x, size_t ldx, uint32_t *y,
                  size_t ldy);
} mr_cpu_kernels_t;

typedef void (*mr_cpu_gemm_bf16_fn)(size_t m, size_t k2, size_t np,
                                    const uint32_t *a, size_t lda,
                                    const uint16_t *w, const float *bias,
                                    float *c, size_t ldc, int relu,
                                    uint16_t *cb);

/* fp32 -> bf16 bits: round to nearest even, denormals and zeros to signed
 * zero. Inputs are finite (the engine rejects NaN and Inf). */
static inline uint16_t mr__cpu_bf16(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, sizeof u);
  if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

static inline float mr__cpu_bf16_float(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  __builtin_memcpy(&f, &u, sizeof f);
  return f;
}

/* The portable bf16 kernels (kernels_scalar.c), also used by the AVX2 set. */
void mr__cpu_gemm_bf16_scalar(size_t m, size_t k2, size_t np, const uint32_t *a,
                              size_t lda, const uint16_t *w, const float *bias,
                              float *c, size_t ldc, int relu, uint16_t *cb);
void mr__cpu_to_bf16_scalar(size_t m, size_t k, const float *x, size_t ldx,
                            uint32_t *y, size_t ldy);

extern const mr_cpu_kernels_t mr__cpu_kernels_scalar;
extern const mr_cpu_kernels_t mr__cpu_kernels_avx2;
extern const mr_cpu_kernels_t mr__cpu_kernels_avx512;

#endif
