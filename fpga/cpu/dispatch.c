/* Chooses the kernel set: the best the CPU (and OS) supports, or the one
 * opts->simd forces. */
#include "fpga/cpu/dispatch.h"

#include <cpuid.h>
#include <string.h>

/* CPUID.1:ECX bit 29; clang 14's __builtin_cpu_supports has no "f16c"
 * (the fuzzers are built with clang). */
static int has_f16c(void) {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1);
}

static int has_avx512(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("fma") && has_f16c();
}

static int has_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         has_f16c();
}

int mr__cpu_kernels_pick(const char *simd, const mr_cpu_kernels_t **out,
                         mr_err_t *err) {
  if (!simd) {
    *out = has_avx512() ? &mr__cpu_kernels_avx512
           : has_avx2() ? &mr__cpu_kernels_avx2
                        : &mr__cpu_kernels_scalar;
    return 0;
  }
  if (strcmp(simd, "scalar") == 0) {
    *out = &mr__cpu_kernels_scalar;
    return 0;
  }
  if (strcmp(simd, "avx2") == 0) {
    if (!has_avx2())
      return mr_err_set(err, MR_ENOTSUP,
                        "simd 'avx2' requested but this CPU lacks AVX2/FMA/F16C "
                        "(use 'scalar' or leave it unset)");
    *out = &mr__cpu_kernels_avx2;
    return 0;
  }
  if (strcmp(simd, "avx512") == 0) {
    if (!has_avx512())
      return mr_err_set(err, MR_ENOTSUP,
                        "simd 'avx512' requested but this CPU lacks "
                        "AVX-512 F/BW/VL/DQ (use 'avx2', 'scalar' or leave it "
                        "unset)");
    *out = &mr__cpu_kernels_avx512;
    return 0;
  }
  return mr_err_set(err, MR_EINVAL,
                    "simd '%s' unknown, expected 'avx512', 'avx2' or 'scalar'",
                    simd);
}

mr_cpu_gemm_bf16_fn mr__cpu_gemm_bf16(const mr_cpu_kernels_t *k) {
  __builtin_cpu_init();
  if (k->gemm_bf16_native && __builtin_cpu_supports("avx512bf16"))
    return k->gemm_bf16_native;
  return k->gemm_bf16;
}
