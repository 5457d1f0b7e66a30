/* Loading XRT's C API at run time (fpga/xrt/xrt_api.h). */
#include "fpga/xrt/xrt_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define XRT_LIB "libxrt_coreutil.so.2"

int mr_xrt_is_noop(void) {
  const char *m = getenv("XCL_EMULATION_MODE");
  return m && !strcmp(m, "noop");
}

/* Mirrors XRT 2.13's module_loader: the shim is
 * $XILINX_XRT/lib/lib<name>.so.2 with name from XCL_EMULATION_MODE. */
int mr_xrt_env_check(char *shim_path, size_t len, mr_err_t *err) {
  const char *root = getenv("XILINX_XRT");
  const char *mode = getenv("XCL_EMULATION_MODE");
  const char *shim = "xrt_core";
  if (mode) {
    if (!strcmp(mode, "noop"))
      shim = "xrt_noop";
    else if (!strcmp(mode, "hw_emu"))
      shim = "xrt_hwemu";
    else if (!strcmp(mode, "sw_emu"))
      shim = "xrt_swemu";
    else
      return mr_err_set(err, MR_EDEVICE,
                        "no device: XCL_EMULATION_MODE=%s, expected unset (a "
                        "card), hw_emu, sw_emu or noop",
                        mode);
  }
  if (!root || !*root)
    return mr_err_set(err, MR_EDEVICE,
                      "no device: XILINX_XRT is not set (XRT loads its driver "
                      "from $XILINX_XRT/lib/lib%s.so.2; run "
                      "/opt/xilinx/xrt/setup.sh, or see fpga/README.md for "
                      "Debian's libxrt)",
                      shim);
  snprintf(shim_path, len, "%s/lib/lib%s.so.2", root, shim);
  struct stat st;
  if (stat(shim_path, &st) != 0 || !S_ISREG(st.st_mode))
    return mr_err_set(err, MR_EDEVICE,
                      "no device: XRT's driver library %s is missing (is "
                      "XILINX_XRT=%s right%s?)",
                      shim_path, root,
                      mode ? "" : "; Debian's libxrt1 has no PCIe driver");
  return 0;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static mr_xrt_api_t api;
static int load_rc;
static char load_msg[MR_ERR_MSG_MAX];

#define SYM(field, name)                                          \
  do {                                                            \
    *(void **)&api.field = dlsym(h, name);                        \
    if (!api.field) {                                             \
      snprintf(load_msg, sizeof load_msg,                         \
               "XRT library " XRT_LIB " lacks %s (too old?)", name); \
      load_rc = MR_ENOTSUP;                                       \
      return;                                                     \
    }                                                             \
  } while (0)

static void load(void) {
  /* Global, as when linked: XRT's driver library, which XRT itself loads
   * later, resolves its symbols against this one. */
  void *h = dlopen(XRT_LIB, RTLD_NOW | RTLD_GLOBAL);
  if (!h) {
    snprintf(load_msg, sizeof load_msg,
             "cannot load XRT (%s): %s; install Debian's libxrt1 (make deps) "
             "or Xilinx XRT",
             XRT_LIB, dlerror());
    load_rc = MR_ENOTSUP;
    return;
  }
  SYM(DeviceOpen, "xrtDeviceOpen");
  SYM(DeviceClose, "xrtDeviceClose");
  SYM(DeviceLoadXclbin, "xrtDeviceLoadXclbin");
  SYM(PLKernelOpen, "xrtPLKernelOpen");
  SYM(KernelClose, "xrtKernelClose");
  SYM(KernelArgGroupId, "xrtKernelArgGroupId");
  SYM(BOAlloc, "xrtBOAlloc");
  SYM(BOFree, "xrtBOFree");
  SYM(BOMap, "xrtBOMap");
  SYM(BOSync, "xrtBOSync");
  SYM(BOSize, "xrtBOSize");
  SYM(RunOpen, "xrtRunOpen");
  SYM(RunSetArg, "xrtRunSetArg");
  SYM(RunStart, "xrtRunStart");
  SYM(RunWaitFor, "xrtRunWaitFor");
  SYM(RunState, "xrtRunState");
  SYM(RunClose, "xrtRunClose");
  /* The handle stays open: XRT keeps static state until exit. */
}

int mr_xrt_api_load(const mr_xrt_api_t **out, mr_err_t *err) {
  char shim[4096];
  int rc = mr_xrt_env_check(shim, sizeof shim, err);
  if (rc < 0) return rc;
  pthread_once(&once, load);
  if (load_rc < 0) return mr_err_set(err, load_rc, "%s", load_msg);
  *out = &api;
  return 0;
}

const char *mr_xrt_state_name(int state) {
  static const char *const names[] = {
      "?",      "NEW",       "QUEUED",  "RUNNING",    "COMPLETED",
      "ERROR",  "ABORT",     "SUBMITTED", "TIMEOUT",  "NORESPONSE",
      "SKERROR", "SKCRASHED"};
  return state >= 0 && state < (int)(sizeof names / sizeof names[0])
             ? names[state]
             : "?";
}
