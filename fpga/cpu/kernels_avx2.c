/* AVX2 + FMA kernels (compiled with the AVX2 flags; called only when
 * dispatch.c found the CPU supports them).
 *
 * GEMM: the classic 6 x 16 microkernel: 6 samples x one panel (two ymm) =
 * 12 accumulators + 2 weight registers + 1 broadcast of the 16 ymm
 * registers, bias in the initial value, ReLU in the epilogue. One sample
 * (batch 1) takes a GEMV path with k split four ways. */
#include <immintrin.h>
#include <string.h>

#include "fpga/cpu/kernels.h"

#define MR 6

#define UNROLL _Pragma("GCC unroll 8")

static inline __attribute__((always_inline)) void ukr(
    const int mr, size_t k, const float *a, size_t lda, const float *w,
    const float *bias, float *c, size_t ldc, int relu) {
  __m256 acc[MR][2];
  UNROLL for (int i = 0; i < mr; i++) {
    acc[i][0] = _mm256_load_ps(bias);
    acc[i][1] = _mm256_load_ps(bias + 8);
  }
  for (size_t kk = 0; kk < k; kk++) {
    __m256 w0 = _mm256_load_ps(w + kk * 16), w1 = _mm256_load_ps(w + kk * 16 + 8);
    UNROLL for (int i = 0; i < mr; i++) {
      __m256 av = _mm256_broadcast_ss(a + i * lda + kk);
      acc[i][0] = _mm256_fmadd_ps(av, w0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(av, w1, acc[i][1]);
    }
  }
  const __m256 zero = _mm256_setzero_ps();
  UNROLL for (int i = 0; i < mr; i++) {
    __m256 v0 = acc[i][0], v1 = acc[i][1];
    if (relu) {
      v0 = _mm256_max_ps(v0, zero);
      v1 = _mm256_max_ps(v1, zero);
    }
    _mm256_store_ps(c + i * ldc, v0);
    _mm256_store_ps(c + i * ldc + 8, v1);
  }
}

typedef void (*ukr_fn)(size_t, const float *, size_t, const float *,
                       const float *, float *, size_t, int);

#define UKR_DEF(M)                                                         \
  static void ukr_##M(size_t k, const float *a, size_t lda, const float *w, \
                      const float *bias, float *c, size_t ldc, int relu) { \
    ukr(M, k, a, lda, w, bias, c, ldc, relu);                              \
  }
UKR_DEF(1) UKR_DEF(2) UKR_DEF(3) UKR_DEF(4) UKR_DEF(5) UKR_DEF(6)
static const ukr_fn ukrs[MR] = {ukr_1, ukr_2, ukr_3, ukr_4, ukr_5, ukr_6};

/* One sample, one panel: k split four ways so 8 FMA chains overlap. */
static void gemv_panel(size_t k, const float *a, const float *w,
                       const float *bias, float *c, int relu) {
  __m256 lo[4], hi[4];
  lo[0] = _mm256_load_ps(bias);
  hi[0] = _mm256_load_ps(bias + 8);
  for (int j = 1; j < 4; j++) lo[j] = hi[j] = _mm256_setzero_ps();
  size_t kk = 0;
  for (; kk + 4 <= k; kk += 4) {
    UNROLL for (int j = 0; j < 4; j++) {
      __m256 av = _mm256_broadcast_ss(a + kk + j);
      lo[j] = _mm256_fmadd_ps(av, _mm256_load_ps(w + (kk + j) * 16), lo[j]);
      hi[j] = _mm256_fmadd_ps(av, _mm256_load_ps(w + (kk + j) * 16 + 8), hi[j]);
    }
  }
  for (; kk < k; kk++) {
    __m256 av = _mm256_broadcast_ss(a + kk);
    lo[0] = _mm256_fmadd_ps(av, _mm256_load_ps(w + kk * 16), lo[0]);
    hi[0] = _mm256_fmadd_ps(av, _mm256_load_ps(w + kk * 16 + 8), hi[0]);
  }
  __m256 s0 = _mm256_add_ps(_mm256_add_ps(lo[0], lo[1]), _mm256_add_ps(lo[2], lo[3]));
  __m256 s1 = _mm256_add_ps(_mm256_add_ps(hi[0], hi[1]), _mm256_add_ps(hi[2], hi[3]));
  if (relu) {
    s0 = _mm256_max_ps(s0, _mm256_setzero_ps());
    s1 = _mm256_max_ps(s1, _mm256_setzero_ps());
  }
  _mm256_store_ps(c, s0);
  _mm256_store_ps(c + 8, s1);
}

static void gemm_avx2(size_t m, size_t k, size_t np, const float *a,
                      size_t lda, const float *w, const float *bias, float *c,
                      size_t ldc, int relu) {
  for (size_t p = 0; p < np; p++) {
    const float *wp = w + p * k * 16;
    if (m == 1) {
      gemv_panel(k, a, wp, bias + p * 16, c + p * 16, relu);
      continue;
    }
    for (size_t i0 = 0; i0 < m; i0 += MR) {
      size_t mr = m - i0 < MR ? m - i0 : MR;
      ukrs[mr - 1](k, a + i0 * lda, lda, wp, bias + p * 16,
                   c + i0 * ldc + p * 16, ldc, relu);
    }
  }
}

/* Eight rows of the Gram matrix against one block of 8 columns. */
#define R 8

static void dot_avx2(size_t n, size_t d, const float *tt, size_t npad,
                     float *out) {
  for (size_t i0 = 1; i0 < n; i0 += R) {
    size_t imax = i0 + R < n ? i0 + R : n;
    for (size_t jb = 0; jb < imax - 1; jb += 8) {
      __m256 acc[R];
      UNROLL for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
      for (size_t kk = 0; kk < d; kk++) {
        const float *row = tt + kk * npad;
        __m256 t = _mm256_loadu_ps(row + jb);
        UNROLL for (int r = 0; r < R; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(row + i0 + r), t, acc[r]);
      }
      float tmp[R][8];
      UNROLL for (int r = 0; r < R; r++) _mm256_storeu_ps(tmp[r], acc[r]);
      for (size_t r = 0; r < imax - i0; r++) {
        size_t i = i0 + r;
        if (i <= jb) continue;
        size_t cnt = i - jb < 8 ? i - jb : 8;
        memcpy(out + i * (i - 1) / 2 + jb, tmp[r], cnt * sizeof(float));
      }
    }
  }
}

/* bf16 has no AVX2 kernel: the portable one (a CPU without AVX-512 gains
 * nothing from bf16; it stays correct). */
const mr_cpu_kernels_t mr__cpu_kernels_avx2 = {
    .name = "avx2",
    .group = 1,
    .gemm = gemm_avx2,
    .dot = dot_avx2,
    .group_bf16 = 1,
    .gemm_bf16 = mr__cpu_gemm_bf16_scalar,
    .to_bf16 = mr__cpu_to_bf16_scalar};
