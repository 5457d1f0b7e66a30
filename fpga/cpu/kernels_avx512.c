/* AVX-512 kernels (compiled with the AVX-512 flags; called only when
 * dispatch.c found the CPU supports them).
 *
 * GEMM: a register-blocked microkernel of MR samples x one group of up to
 * G = 4 panels (64 outputs): MR * G = 24 zmm accumulators, initialised with
 * the bias, fed per k by G aligned weight loads and MR broadcasts, with
 * ReLU in the epilogue. Each group's weights ([K][64], <= 128 KiB for
 * K = 512) stay in L2 while all sample blocks pass over them. One sample
 * (batch 1) takes a GEMV path that splits k in two to keep 8 FMA chains. */
#include <immintrin.h>

#include "fpga/cpu/kernels.h"

#define G 4
#define MR 6

#define UNROLL _Pragma("GCC unroll 8")

static inline __attribute__((always_inline)) void ukr(
    const int mr, const int gp, size_t k, const float *a, size_t lda,
    const float *w, const float *bias, float *c, size_t ldc, int relu) {
  __m512 acc[MR][G];
  UNROLL for (int i = 0; i < mr; i++) UNROLL for (int p = 0; p < gp; p++)
      acc[i][p] = _mm512_load_ps(bias + p * 16);
  const size_t ws = (size_t)gp * 16;
  for (size_t kk = 0; kk < k; kk++) {
    __m512 wv[G];
    UNROLL for (int p = 0; p < gp; p++) wv[p] = _mm512_load_ps(w + kk * ws + p * 16);
    UNROLL for (int i = 0; i < mr; i++) {
      __m512 av = _mm512_set1_ps(a[i * lda + kk]);
      UNROLL for (int p = 0; p < gp; p++)
          acc[i][p] = _mm512_fmadd_ps(av, wv[p], acc[i][p]);
    }
  }
  const __m512 zero = _mm512_setzero_ps();
  UNROLL for (int i = 0; i < mr; i++) UNROLL for (int p = 0; p < gp; p++) {
      __m512 v = relu ? _mm512_max_ps(acc[i][p], zero) : acc[i][p];
      _mm512_store_ps(c + i * ldc + p * 16, v);
    }
}

typedef void (*ukr_fn)(size_t, const float *, size_t, const float *,
                       const float *, float *, size_t, int);

#define UKR_DEF(M, P)                                                      \
  static void ukr_##M##_##P(size_t k, const float *a, size_t lda,          \
                            const float *w, const float *bias, float *c,   \
                            size_t ldc, int relu) {                        \
    ukr(M, P, k, a, lda, w, bias, c, ldc, relu);                           \
  }
#define UKR_ROW(M) UKR_DEF(M, 1) UKR_DEF(M, 2) UKR_DEF(M, 3) UKR_DEF(M, 4)
UKR_ROW(1) UKR_ROW(2) UKR_ROW(3) UKR_ROW(4) UKR_ROW(5) UKR_ROW(6)
#define UKR_REF(M) {ukr_##M##_1, ukr_##M##_2, ukr_##M##_3, ukr_##M##_4}
static const ukr_fn ukrs[MR][G] = {UKR_REF(1), UKR_REF(2), UKR_REF(3),
                                   UKR_REF(4), UKR_REF(5), UKR_REF(6)};

/* One sample, one group: two partial sums per panel (even and odd k). */
static inline __attribute__((always_inline)) void gemv_group(
    const int gp, size_t k, const float *a, const float *w,
    const float *bias, float *c, int relu) {
  __m512 s0[G], s1[G];
  UNROLL for (int p = 0; p < gp; p++) {
    s0[p] = _mm512_load_ps(bias + p * 16);
    s1[p] = _mm512_setzero_ps();
  }
  const size_t ws = (size_t)gp * 16;
  size_t kk = 0;
  for (; kk + 2 <= k; kk += 2) {
    __m512 a0 = _mm512_set1_ps(a[kk]), a1 = _mm512_set1_ps(a[kk + 1]);
    UNROLL for (int p = 0; p < gp; p++) {
      s0[p] = _mm512_fmadd_ps(a0, _mm512_load_ps(w + kk * ws + p * 16), s0[p]);
      s1[p] = _mm512_fmadd_ps(a1, _mm512_load_ps(w + (kk + 1) * ws + p * 16), s1[p]);
    }
  }
  if (kk < k) {
    __m512 a0 = _mm512_set1_ps(a[kk]);
    UNROLL for (int p = 0; p < gp; p++)
        s0[p] = _mm512_fmadd_ps(a0, _mm512_load_ps(w + kk * ws + p * 16), s0[p]);
  }
  const __m512 zero = _mm512_setzero_ps();
  UNROLL for (int p = 0; p < gp; p++) {
    __m512 v = _mm512_add_ps(s0[p], s1[p]);
    _mm512_store_ps(c + p * 16, relu ? _mm512_max_ps(v, zero) : v);
  }
}

static void gemv(size_t k, size_t np, const float *a, const float *w,
                 const float *bias, float *c, int relu) {
  for (size_t p0 = 0; p0 < np; p0 += G) {
    const float *wg = w + k * p0 * 16;
    switch (np - p0 < G ? np - p0 : G) {
      case 1: gemv_group(1, k, a, wg, bias + p0 * 16, c + p0 * 16, relu); break;
      case 2: gemv_group(2, k, a, wg, bias + p0 * 16, c + p0 * 16, relu); break;
      case 3: gemv_group(3, k, a, wg, bias + p0 * 16, c + p0 * 16, relu); break;
      default: gemv_group(4, k, a, wg, bias + p0 * 16, c + p0 * 16, relu); break;
    }
  }
}

static void gemm_avx512(size_t m, size_t k, size_t np, const float *a,
                        size_t lda, const float *w, const float *bias,
                        float *c, size_t ldc, int relu) {
  if (m == 1) {
    gemv(k, np, a, w, bias, c, relu);
    return;
  }
  for (size_t p0 = 0; p0 < np; p0 += G) {
    size_t gp = np - p0 < G ? np - p0 : G;
    const float *wg = w + k * p0 * 16;
    for (size_t i0 = 0; i0 < m; i0 += MR) {
      size_t mr = m - i0 < MR ? m - i0 : MR;
      ukrs[mr - 1][gp - 1](k, a + i0 * lda, lda, wg, bias + p0 * 16,
                           c + i0 * ldc + p0 * 16, ldc, relu);
    }
  }
}

/* Rows i0 .. i0+R-1 of the Gram matrix against one block of 16 columns; a
 * row i keeps lanes j < i (masked store into its own run of out). */
#define R 8

static void dot_avx512(size_t n, size_t d, const float *tt, size_t npad,
                       float *out) {
  for (size_t i0 = 1; i0 < n; i0 += R) {
    size_t imax = i0 + R < n ? i0 + R : n;
    for (size_t jb = 0; jb < imax - 1; jb += 16) {
      __m512 acc[R];
      UNROLL for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
      for (size_t kk = 0; kk < d; kk++) {
        const float *row = tt + kk * npad;
        __m512 t = _mm512_loadu_ps(row + jb);
        UNROLL for (int r = 0; r < R; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(row[i0 + r]), t, acc[r]);
      }
      for (size_t r = 0; r < imax - i0; r++) {
        size_t i = i0 + r;
        if (i <= jb) continue;
        size_t cnt = i - jb < 16 ? i - jb : 16;
        __mmask16 mk = (__mmask16)((1u << cnt) - 1u);
        _mm512_mask_storeu_ps(out + i * (i - 1) / 2 + jb, mk, acc[r]);
      }
    }
  }
}

/* ---- bf16 (kernels.h): native vdpbf16ps, and an AVX-512F emulation ---- */

#define BF16 __attribute__((target("avx512bf16")))

/* 16 floats to bf16 as mr__cpu_bf16 rounds (nearest even, denormals to
 * signed zero). */
static inline __attribute__((always_inline)) __m256i cvt_bf16(__m512 v) {
  const __m512i expm = _mm512_set1_epi32(0x7f800000);
  const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
  const __m512i rnd = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
  __m512i u = _mm512_castps_si512(v);
  __mmask16 den = _mm512_testn_epi32_mask(u, expm);
  __m512i r = _mm512_add_epi32(
      u, _mm512_add_epi32(rnd, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
  r = _mm512_mask_mov_epi32(r, den, _mm512_and_si512(u, sign));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}

/* The epilogue of every bf16 kernel: fp32 to c, or bf16 to cb. */
static inline __attribute__((always_inline)) void put16(__m512 v, int relu,
                                                        float *c, uint16_t *cb,
                                                        size_t off) {
  if (relu) v = _mm512_max_ps(v, _mm512_setzero_ps());
  if (cb)
    _mm256_storeu_si256((__m256i *)(cb + off), cvt_bf16(v));
  else
    _mm512_store_ps(c + off, v);
}

/* MR samples x gp panels, one pair of k per step: gp loads of 16 (k, k+1)
 * weight pairs, MR broadcasts of an input pair, MR * gp vdpbf16ps. */
static inline __attribute__((always_inline)) BF16 void ukr_bf(
    const int mr, const int gp, size_t k2, const uint32_t *a, size_t lda,
    const uint16_t *w, const float *bias, float *c, size_t ldc, int relu,
    uint16_t *cb) {
  __m512 acc[MR][G];
  UNROLL for (int i = 0; i < mr; i++) UNROLL for (int p = 0; p < gp; p++)
      acc[i][p] = _mm512_load_ps(bias + p * 16);
  const size_t ws = (size_t)gp * 32;
  for (size_t kk = 0; kk < k2; kk++) {
    __m512bh wv[G];
    UNROLL for (int p = 0; p < gp; p++)
        wv[p] = (__m512bh)_mm512_load_si512(w + kk * ws + p * 32);
    UNROLL for (int i = 0; i < mr; i++) {
      __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[i * lda + kk]);
      UNROLL for (int p = 0; p < gp; p++)
          acc[i][p] = _mm512_dpbf16_ps(acc[i][p], av, wv[p]);
    }
  }
  UNROLL for (int i = 0; i < mr; i++) UNROLL for (int p = 0; p < gp; p++)
      put16(acc[i][p], relu, c, cb, i * ldc + p * 16);
}

typedef void (*ukr_bf_fn)(size_t, const uint32_t *, size_t, const uint16_t *,
                          const float *, float *, size_t, int, uint16_t *);

#define UKR_BF_DEF(M, P)                                                    \
  BF16 static void ukr_bf_##M##_##P(size_t k2, const uint32_t *a,          \
                                    size_t lda, const uint16_t *w,          \
                                    const float *bias, float *c, size_t ldc, \
                                    int relu, uint16_t *cb) {               \
    ukr_bf(M, P, k2, a, lda, w, bias, c, ldc, relu, cb);                    \
  }
#define UKR_BF_ROW(M) UKR_BF_DEF(M, 1) UKR_BF_DEF(M, 2) UKR_BF_DEF(M, 3) UKR_BF_DEF(M, 4)
UKR_BF_ROW(1) UKR_BF_ROW(2) UKR_BF_ROW(3) UKR_BF_ROW(4) UKR_BF_ROW(5) UKR_BF_ROW(6)
#define UKR_BF_REF(M) {ukr_bf_##M##_1, ukr_bf_##M##_2, ukr_bf_##M##_3, ukr_bf_##M##_4}
static const ukr_bf_fn ukrs_bf[MR][G] = {UKR_BF_REF(1), UKR_BF_REF(2),
                                         UKR_BF_REF(3), UKR_BF_REF(4),
                                         UKR_BF_REF(5), UKR_BF_REF(6)};

/* One sample: even and odd pairs in separate sums (8 chains for 4 panels),
 * which the weight stream from L2/L3 needs more than register reuse. */
static inline __attribute__((always_inline)) BF16 void gemv_bf_group(
    const int gp, size_t k2, const uint32_t *a, const uint16_t *w,
    const float *bias, float *c, int relu, uint16_t *cb) {
  __m512 s0[G], s1[G];
  UNROLL for (int p = 0; p < gp; p++) {
    s0[p] = _mm512_load_ps(bias + p * 16);
    s1[p] = _mm512_setzero_ps();
  }
  const size_t ws = (size_t)gp * 32;
  size_t kk = 0;
  for (; kk + 2 <= k2; kk += 2) {
    __m512bh a0 = (__m512bh)_mm512_set1_epi32((int)a[kk]);
    __m512bh a1 = (__m512bh)_mm512_set1_epi32((int)a[kk + 1]);
    UNROLL for (int p = 0; p < gp; p++) {
      s0[p] = _mm512_dpbf16_ps(s0[p], a0,
                               (__m512bh)_mm512_load_si512(w + kk * ws + p * 32));
      s1[p] = _mm512_dpbf16_ps(s1[p], a1,
                               (__m512bh)_mm512_load_si512(w + (kk + 1) * ws + p * 32));
    }
  }
  if (kk < k2) {
    __m512bh a0 = (__m512bh)_mm512_set1_epi32((int)a[kk]);
    UNROLL for (int p = 0; p < gp; p++)
        s0[p] = _mm512_dpbf16_ps(s0[p], a0,
                                 (__m512bh)_mm512_load_si512(w + kk * ws + p * 32));
  }
  UNROLL for (int p = 0; p < gp; p++)
      put16(_mm512_add_ps(s0[p], s1[p]), relu, c, cb, (size_t)p * 16);
}

BF16 static void gemm_bf16_native(size_t m, size_t k2, size_t np,
                                  const uint32_t *a, size_t lda,
                                  const uint16_t *w, const float *bias,
                                  float *c, size_t ldc, int relu, uint16_t *cb) {
  for (size_t p0 = 0; p0 < np; p0 += G) {
    size_t gp = np - p0 < G ? np - p0 : G;
    const uint16_t *wg = w + k2 * p0 * 32;
    float *cg = cb ? NULL : c + p0 * 16;
    uint16_t *cbg = cb ? cb + p0 * 16 : NULL;
    if (m == 1) {
      switch (gp) {
        case 1: gemv_bf_group(1, k2, a, wg, bias + p0 * 16, cg, relu, cbg); break;
        case 2: gemv_bf_group(2, k2, a, wg, bias + p0 * 16, cg, relu, cbg); break;
        case 3: gemv_bf_group(3, k2, a, wg, bias + p0 * 16, cg, relu, cbg); break;
        default: gemv_bf_group(4, k2, a, wg, bias + p0 * 16, cg, relu, cbg); break;
      }
      continue;
    }
    for (size_t i0 = 0; i0 < m; i0 += MR) {
      size_t mr = m - i0 < MR ? m - i0 : MR;
      ukrs_bf[mr - 1][gp - 1](k2, a + i0 * lda, lda, wg, bias + p0 * 16,
                              cg ? cg + i0 * ldc : NULL, ldc, relu,
                              cbg ? cbg + i0 * ldc : NULL);
    }
  }
}

/* The emulation for AVX-512 CPUs without AVX512_BF16: each weight pair
 * split into its odd and even floats, two FMAs in vdpbf16ps's order. Four
 * samples: 16 sums + 8 weight halves fit the 32 registers. */
#define MRE 4

static inline __attribute__((always_inline)) void ukr_bfe(
    const int mr, const int gp, size_t k2, const uint32_t *a, size_t lda,
    const uint16_t *w, const float *bias, float *c, size_t ldc, int relu,
    uint16_t *cb) {
  __m512 acc[MRE][G];
  UNROLL for (int i = 0; i < mr; i++) UNROLL for (int p = 0; p < gp; p++)
      acc[i][p] = _mm512_load_ps(bias + p * 16);
  const size_t ws = (size_t)gp * 32;
  const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
  for (size_t kk = 0; kk < k2; kk++) {
    __m512 wo[G], we[G];
    UNROLL for (int p = 0; p < gp; p++) {
      __m512i x = _mm512_load_si512(w + kk * ws + p * 32);
      wo[p] = _mm512_castsi512_ps(_mm512_and_si512(x, hi));
      we[p] = _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
    }
    UNROLL for (int i = 0; i < mr; i++) {
      uint32_t pr = a[i * lda + kk];
      __m512 ao = _mm512_castsi512_ps(_mm512_set1_epi32((int)(pr & 0xffff0000u)));
      __m512 ae = _mm512_castsi512_ps(_mm512_set1_epi32((int)(pr << 16)));
      UNROLL for (int p = 0; p < gp; p++) {
        acc[i][p] = _mm512_fmadd_ps(ao, wo[p], acc[i][p]);
        acc[i][p] = _mm512_fmadd_ps(ae, we[p], acc[i][p]);
      }
    }
  }
  UNROLL for (int i = 0; i < mr; i++) UNROLL for (int p = 0; p < gp; p++)
      put16(acc[i][p], relu, c, cb, i * ldc + p * 16);
}

#define UKR_BFE_DEF(M, P)                                                   \
  static void ukr_bfe_##M##_##P(size_t k2, const uint32_t *a, size_t lda,  \
                                const uint16_t *w, const float *bias,       \
                                float *c, size_t ldc, int relu,             \
                                uint16_t *cb) {                             \
    ukr_bfe(M, P, k2, a, lda, w, bias, c, ldc, relu, cb);                   \
  }
#define UKR_BFE_ROW(M) \
  UKR_BFE_DEF(M, 1) UKR_BFE_DEF(M, 2) UKR_BFE_DEF(M, 3) UKR_BFE_DEF(M, 4)
UKR_BFE_ROW(1) UKR_BFE_ROW(2) UKR_BFE_ROW(3) UKR_BFE_ROW(4)
#define UKR_BFE_REF(M) {ukr_bfe_##M##_1, ukr_bfe_##M##_2, ukr_bfe_##M##_3, ukr_bfe_##M##_4}
static const ukr_bf_fn ukrs_bfe[MRE][G] = {UKR_BFE_REF(1), UKR_BFE_REF(2),
                                           UKR_BFE_REF(3), UKR_BFE_REF(4)};

static void gemm_bf16_emul(size_t m, size_t k2, size_t np, const uint32_t *a,
                           size_t lda, const uint16_t *w, const float *bias,
                           float *c, size_t ldc, int relu, uint16_t *cb) {
  for (size_t p0 = 0; p0 < np; p0 += G) {
    size_t gp = np - p0 < G ? np - p0 : G;
    const uint16_t *wg = w + k2 * p0 * 32;
    for (size_t i0 = 0; i0 < m; i0 += MRE) {
      size_t mr = m - i0 < MRE ? m - i0 : MRE;
      size_t off = i0 * ldc + p0 * 16;
      ukrs_bfe[mr - 1][gp - 1](k2, a + i0 * lda, lda, wg, bias + p0 * 16,
                               cb ? NULL : c + off, ldc, relu,
                               cb ? cb + off : NULL);
    }
  }
}

/* 16 floats at a time as mr__cpu_bf16 does (RNE, denormals to zero), then
 * narrowed to 16 consecutive uint16: the pairs' layout in little endian. */
static void to_bf16_avx512(size_t m, size_t k, const float *x, size_t ldx,
                           uint32_t *y, size_t ldy) {
  for (size_t i = 0; i < m; i++) {
    const float *xi = x + i * ldx;
    uint16_t *yi = (uint16_t *)(y + i * ldy);
    size_t kk = 0;
    for (; kk + 16 <= k; kk += 16)
      _mm256_storeu_si256((__m256i *)(yi + kk), cvt_bf16(_mm512_loadu_ps(xi + kk)));
    for (; kk < k; kk++) yi[kk] = mr__cpu_bf16(xi[kk]);
    if (k % 2) yi[k] = 0;
  }
}

const mr_cpu_kernels_t mr__cpu_kernels_avx512 = {
    .name = "avx512",
    .group = G,
    .gemm = gemm_avx512,
    .dot = dot_avx512,
    .group_bf16 = G,
    .gemm_bf16 = gemm_bf16_emul,
    .gemm_bf16_native = gemm_bf16_native,
    .to_bf16 = to_bf16_avx512};
