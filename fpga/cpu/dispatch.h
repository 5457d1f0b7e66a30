/* Runtime choice of the kernel set (kernels.h). Private to fpga/cpu/; any
 * thread. */
#ifndef MR_CPU_DISPATCH_H
#define MR_CPU_DISPATCH_H

#include "fpga/cpu/kernels.h"
#include "fpga/err.h"

/* simd NULL: the best set this CPU supports. "avx512", "avx2", "scalar":
 * that set, or MR_ENOTSUP when the CPU lacks it; anything else MR_EINVAL. */
int mr__cpu_kernels_pick(const char *simd, const mr_cpu_kernels_t **out,
                         mr_err_t *err);

/* The bf16 GEMM of set k for this CPU: the native vdpbf16ps one when the
 * set has it and the CPU supports AVX512_BF16, else the emulation. */
mr_cpu_gemm_bf16_fn mr__cpu_gemm_bf16(const mr_cpu_kernels_t *k);

#endif
