/* XRT's C API (Debian's libxrt-dev headers), loaded at run time from
 * libxrt_coreutil.so.2. Only the `fpga` backend needs XRT, so nothing links
 * it: microrec, microrecd and the tests start on machines without it, and
 * `--engine fpga` there says what is missing.
 *
 * XRT aborts the whole process (std::terminate) when XILINX_XRT is unset or
 * its driver library is missing, so mr_xrt_api_load first checks what XRT
 * will look for and turns it into an error instead.
 *
 * Thread-safe; the library stays loaded for the life of the process. */
#ifndef MR_XRT_API_H
#define MR_XRT_API_H

#include <xrt/xrt_bo.h>
#include <xrt/xrt_device.h>
#include <xrt/xrt_kernel.h>

#include "fpga/err.h"

typedef struct mr_xrt_api {
  __typeof__(&xrtDeviceOpen) DeviceOpen;
  __typeof__(&xrtDeviceClose) DeviceClose;
  __typeof__(&xrtDeviceLoadXclbin) DeviceLoadXclbin;
  __typeof__(&xrtPLKernelOpen) PLKernelOpen;
  __typeof__(&xrtKernelClose) KernelClose;
  __typeof__(&xrtKernelArgGroupId) KernelArgGroupId;
  __typeof__(&xrtBOAlloc) BOAlloc;
  __typeof__(&xrtBOFree) BOFree;
  __typeof__(&xrtBOMap) BOMap;
  __typeof__(&xrtBOSync) BOSync;
  __typeof__(&xrtBOSize) BOSize;
  __typeof__(&xrtRunOpen) RunOpen;
  __typeof__(&xrtRunSetArg) RunSetArg;
  __typeof__(&xrtRunStart) RunStart;
  __typeof__(&xrtRunWaitFor) RunWaitFor;
  __typeof__(&xrtRunState) RunState;
  __typeof__(&xrtRunClose) RunClose;
} mr_xrt_api_t;

/* The shim XRT will load: "noop" etc. from XCL_EMULATION_MODE, "" for a
 * real card; and the library path it expects under $XILINX_XRT. Returns 0
 * or MR_EDEVICE with a message saying what to set or install. */
int mr_xrt_env_check(char *shim_path, size_t len, mr_err_t *err);

/* Checks the environment, loads XRT once, resolves the functions above. */
int mr_xrt_api_load(const mr_xrt_api_t **api, mr_err_t *err);

/* "XCL_EMULATION_MODE=noop" is set: a device that runs nothing. */
int mr_xrt_is_noop(void);

const char *mr_xrt_state_name(int state);

#endif
