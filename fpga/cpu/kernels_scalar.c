/* Portable kernels: plain C over the packed layout of kernels.h (group of
 * one panel). The fallback when the CPU has neither AVX2 nor AVX-512, and
 * the reference the SIMD sets are tested against. */
#include <string.h>

#include "fpga/cpu/kernels.h"

/* Four samples share each weight row load. */
static void gemm_scalar(size_t m, size_t k, size_t np, const float *a,
                        size_t lda, const float *w, const float *bias,
                        float *c, size_t ldc, int relu) {
  for (size_t p = 0; p < np; p++) {
    const float *wp = w + p * k * 16;
    for (size_t i0 = 0; i0 < m; i0 += 4) {
      size_t mr = m - i0 < 4 ? m - i0 : 4;
      float acc[4][16];
      for (size_t i = 0; i < mr; i++) memcpy(acc[i], bias + p * 16, sizeof acc[i]);
      for (size_t kk = 0; kk < k; kk++) {
        const float *wk = wp + kk * 16;
        for (size_t i = 0; i < mr; i++) {
          float x = a[(i0 + i) * lda + kk];
          for (int l = 0; l < 16; l++) acc[i][l] += x * wk[l];
        }
      }
      for (size_t i = 0; i < mr; i++) {
        float *ci = c + (i0 + i) * ldc + p * 16;
        for (int l = 0; l < 16; l++)
          ci[l] = relu && acc[i][l] < 0.0f ? 0.0f : acc[i][l];
      }
    }
  }
}

static void dot_scalar(size_t n, size_t d, const float *tt, size_t npad,
                       float *out) {
  for (size_t i = 1; i < n; i++)
    for (size_t j = 0; j < i; j++) {
      float s = 0.0f;
      for (size_t kk = 0; kk < d; kk++) s += tt[kk * npad + i] * tt[kk * npad + j];
      *out++ = s;
    }
}

/* bf16, one panel per group: panel p is [k2][16][2] at w + p * k2 * 32.
 * The products of two bf16 are exact in fp32, so `acc + a * w` (no FMA
 * contraction under -std=c11) rounds once, as vdpbf16ps does. */
void mr__cpu_gemm_bf16_scalar(size_t m, size_t k2, size_t np, const uint32_t *a,
                              size_t lda, const uint16_t *w, const float *bias,
                              float *c, size_t ldc, int relu, uint16_t *cb) {
  for (size_t p = 0; p < np; p++) {
    const uint16_t *wp = w + p * k2 * 32;
    for (size_t i = 0; i < m; i++) {
      float acc[16];
      memcpy(acc, bias + p * 16, sizeof acc);
      const uint32_t *ai = a + i * lda;
      for (size_t kk = 0; kk < k2; kk++) {
        float lo = mr__cpu_bf16_float((uint16_t)ai[kk]);
        float hi = mr__cpu_bf16_float((uint16_t)(ai[kk] >> 16));
        const uint16_t *wk = wp + kk * 32;
        for (int l = 0; l < 16; l++) {
          acc[l] = acc[l] + hi * mr__cpu_bf16_float(wk[2 * l + 1]);
          acc[l] = acc[l] + lo * mr__cpu_bf16_float(wk[2 * l]);
        }
      }
      for (int l = 0; l < 16; l++) {
        float v = relu && acc[l] < 0.0f ? 0.0f : acc[l];
        if (cb)
          cb[i * ldc + p * 16 + l] = mr__cpu_bf16(v);
        else
          c[i * ldc + p * 16 + l] = v;
      }
    }
  }
}

void mr__cpu_to_bf16_scalar(size_t m, size_t k, const float *x, size_t ldx,
                            uint32_t *y, size_t ldy) {
  for (size_t i = 0; i < m; i++) {
    const float *xi = x + i * ldx;
    uint32_t *yi = y + i * ldy;
    size_t kk = 0;
    for (; kk + 2 <= k; kk += 2)
      yi[kk / 2] = mr__cpu_bf16(xi[kk]) | (uint32_t)mr__cpu_bf16(xi[kk + 1]) << 16;
    if (kk < k) yi[kk / 2] = mr__cpu_bf16(xi[kk]);
  }
}

const mr_cpu_kernels_t mr__cpu_kernels_scalar = {
    .name = "scalar",
    .group = 1,
    .gemm = gemm_scalar,
    .dot = dot_scalar,
    .group_bf16 = 1,
    .gemm_bf16 = mr__cpu_gemm_bf16_scalar,
    .to_bf16 = mr__cpu_to_bf16_scalar};
