/* The `fpga` backend: the MicroRec kernel on an Alveo card through XRT's C
 * API (fpga/xrt/xrt_engine.h). Kernel arguments follow
 * fpga/kernel/microrec_kernel.cpp: ids, dense, out, init, n, mode, then one
 * buffer per off-chip bank. */
#include "fpga/xrt/xrt_engine.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpga/kernel_emit.h"
#include "fpga/kernel_image.h"
#include "fpga/xrt/xclbin_file.h"
#include "fpga/xrt/xrt_api.h"

enum { ARG_IDS, ARG_DENSE, ARG_OUT, ARG_INIT, ARG_N, ARG_MODE };

typedef struct xrt_engine {
  mr_engine_t base; /* first: the generic layer's view */
  mr_kinfo_t ki;
  mr_kgeom_t *geom;
  const mr_xrt_api_t *x;
  xrtDeviceHandle dev;
  xrtKernelHandle krn;
  unsigned char uuid[16];
  xrtBufferHandle bank_bo[MR_K_MAX_BANKS]; /* off-chip banks */
  float *bank_map[MR_K_MAX_BANKS];
  int bank_arg[MR_K_MAX_BANKS];            /* kernel argument, -1 on chip */
  xrtBufferHandle init_bo;
  float *init_map;
  xrtMemoryGroup io_group;
  size_t max_batch;
  unsigned timeout_ms;
  atomic_int failed;      /* a run timed out or failed: refuse more */
  atomic_ullong started, completed;
  atomic_int inject_state; /* tests: the next wait "returns" this state */
  /* Live list (see "process exit" below), under live_mu. */
  struct xrt_engine *prev, *next;
  struct xrt_scratch *scratches;
} xrt_engine_t;

typedef struct xrt_scratch {
  xrtBufferHandle ids_bo, dense_bo, out_bo;
  uint32_t *ids;
  float *dense, *out;
  xrtRunHandle run;
  int in_flight;          /* started, not seen complete (after a timeout) */
  struct xrt_scratch *prev, *next; /* the engine's scratches, live_mu */
} xrt_scratch_t;

/* ---- process exit ----
 * XRT's C API keeps its handles in static maps that are destroyed at exit,
 * in an order that frees buffers after the driver's own tables are gone
 * (observed with the no-op driver: a crash in xclFreeBO). So every engine
 * and scratch is on a live list, and an exit handler, registered after XRT
 * has built its statics, releases whatever XRT handles are still open. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static xrt_engine_t *live;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

_Static_assert(MR_XRT_STATE_RUNNING == ERT_CMD_STATE_RUNNING &&
                   MR_XRT_STATE_ERROR == ERT_CMD_STATE_ERROR,
               "ert_cmd_state values changed");

/* ---- helpers ---- */

static xrtBufferHandle alloc_map(xrt_engine_t *e, size_t bytes,
                                 xrtMemoryGroup grp, void **map,
                                 mr_err_t *err, const char *what) {
  /* Whole pages: XRT backs a buffer with aligned_alloc(4096, size), and C
   * (and AddressSanitizer) want size to be a multiple of the alignment. */
  size_t padded = (bytes + 4095) / 4096 * 4096;
  xrtBufferHandle bo = e->x->BOAlloc(e->dev, padded ? padded : 4096,
                                     XRT_BO_FLAGS_NONE, grp);
  if (!bo) {
    mr_err_set(err, MR_EDEVICE,
               "fpga engine: XRT could not allocate %zu bytes for %s in "
               "memory group %u (errno %d: %s)",
               bytes, what, grp, errno, strerror(errno));
    return NULL;
  }
  *map = e->x->BOMap(bo);
  if (!*map) {
    e->x->BOFree(bo);
    mr_err_set(err, MR_EDEVICE, "fpga engine: XRT could not map %s", what);
    return NULL;
  }
  return bo;
}

static int sync_bo(xrt_engine_t *e, xrtBufferHandle bo, int to_device,
                   size_t bytes, mr_err_t *err, const char *what) {
  if (bytes == 0) return 0;
  int rc = e->x->BOSync(bo,
                        to_device ? XCL_BO_SYNC_BO_TO_DEVICE
                                  : XCL_BO_SYNC_BO_FROM_DEVICE,
                        bytes, 0);
  if (rc != 0)
    return mr_err_set(err, MR_EDEVICE,
                      "fpga engine: XRT could not sync %s %s the device "
                      "(error %d)",
                      what, to_device ? "to" : "from", rc);
  return 0;
}

/* Starts a run and waits up to the timeout. */
static int run_wait(xrt_engine_t *e, xrtRunHandle run, int *in_flight,
                    mr_err_t *err) {
  if (e->x->RunStart(run) != 0) {
    atomic_store(&e->failed, 1);
    return mr_err_set(err, MR_EDEVICE,
                      "fpga engine: XRT could not start the kernel (errno "
                      "%d: %s)",
                      errno, strerror(errno));
  }
  atomic_fetch_add(&e->started, 1);
  *in_flight = 1;
  int injected = atomic_exchange(&e->inject_state, 0);
  enum ert_cmd_state st = injected ? (enum ert_cmd_state)injected
                                   : e->x->RunWaitFor(run, e->timeout_ms);
  if (st == ERT_CMD_STATE_COMPLETED) {
    *in_flight = 0;
    atomic_fetch_add(&e->completed, 1);
    return 0;
  }
  atomic_store(&e->failed, 1);
  if (st == ERT_CMD_STATE_ERROR || st == ERT_CMD_STATE_ABORT) *in_flight = 0;
  if (*in_flight)
    return mr_err_set(err, MR_ETIMEDOUT,
                      "fpga engine: kernel run timed out after %u ms (state "
                      "%s); the engine refuses further runs, reopen it",
                      e->timeout_ms, mr_xrt_state_name(st));
  return mr_err_set(err, MR_EDEVICE,
                    "fpga engine: kernel run failed (state %s)",
                    mr_xrt_state_name(st));
}

/* Frees a scratch's XRT handles (idempotent). */
static void release_scratch(xrt_engine_t *e, xrt_scratch_t *s) {
  if (s->run) {
    /* A run still on the device writes our buffers: give it a last chance
     * to finish before they go. */
    if (s->in_flight) e->x->RunWaitFor(s->run, e->timeout_ms);
    e->x->RunClose(s->run);
  }
  if (s->ids_bo) e->x->BOFree(s->ids_bo);
  if (s->dense_bo) e->x->BOFree(s->dense_bo);
  if (s->out_bo) e->x->BOFree(s->out_bo);
  s->run = s->ids_bo = s->dense_bo = s->out_bo = NULL;
}

static void free_scratch(xrt_engine_t *e, xrt_scratch_t *s) {
  if (!s) return;
  pthread_mutex_lock(&live_mu);
  if (s->prev) s->prev->next = s->next;
  else if (e->scratches == s) e->scratches = s->next;
  if (s->next) s->next->prev = s->prev;
  release_scratch(e, s);
  pthread_mutex_unlock(&live_mu);
  free(s);
}

/* Request buffers and a run with every buffer argument set. */
static int new_scratch(xrt_engine_t *e, size_t batch, xrt_scratch_t **out,
                       mr_err_t *err) {
  const mr_kgeom_t *g = e->geom;
  xrt_scratch_t *s = calloc(1, sizeof *s);
  if (!s) return mr_err_set(err, MR_ENOMEM, "fpga engine: out of memory");
  pthread_mutex_lock(&live_mu);
  s->next = e->scratches;
  if (s->next) s->next->prev = s;
  e->scratches = s;
  pthread_mutex_unlock(&live_mu);
  size_t nd = g->num_dense ? g->num_dense : 1;
  int rc = 0;
  s->ids_bo = alloc_map(e, batch * g->num_logical * 4, e->io_group,
                        (void **)&s->ids, err, "the ids");
  if (s->ids_bo)
    s->dense_bo = alloc_map(e, batch * nd * 4, e->io_group,
                            (void **)&s->dense, err, "the dense input");
  if (s->dense_bo)
    s->out_bo = alloc_map(e, batch * 2 * 4 + 16, e->io_group,
                          (void **)&s->out, err, "the scores");
  if (!s->out_bo) {
    rc = err ? err->code : MR_EDEVICE;
    goto fail;
  }
  /* XRT does not clear new buffers; a device that writes nothing (the
   * no-op one) then reads back zeros rather than old heap contents. */
  memset(s->ids, 0, batch * g->num_logical * 4);
  memset(s->dense, 0, batch * nd * 4);
  memset(s->out, 0, batch * 2 * 4 + 16);
  s->run = e->x->RunOpen(e->krn);
  if (!s->run) {
    rc = mr_err_set(err, MR_EDEVICE, "fpga engine: XRT could not open a run");
    goto fail;
  }
  int bad = 0;
  bad |= e->x->RunSetArg(s->run, ARG_IDS, s->ids_bo);
  bad |= e->x->RunSetArg(s->run, ARG_DENSE, s->dense_bo);
  bad |= e->x->RunSetArg(s->run, ARG_OUT, s->out_bo);
  bad |= e->x->RunSetArg(s->run, ARG_INIT, e->init_bo);
  bad |= e->x->RunSetArg(s->run, ARG_N, (unsigned)0);
  bad |= e->x->RunSetArg(s->run, ARG_MODE, (unsigned)MR_K_MODE_RUN);
  for (uint32_t k = 0; k < g->num_banks; k++)
    if (e->bank_arg[k] >= 0)
      bad |= e->x->RunSetArg(s->run, e->bank_arg[k], e->bank_bo[k]);
  if (bad) {
    rc = mr_err_set(err, MR_EDEVICE,
                    "fpga engine: XRT rejected the kernel's arguments (does "
                    "the xclbin's kernel take %d arguments?)",
                    MR_KEMIT_ARG_BANK0 + (int)g->num_banks);
    goto fail;
  }
  *out = s;
  return 0;
fail:
  free_scratch(e, s);
  return rc;
}

/* ---- open: the xclbin and its checks ---- */

static void *read_all(const char *path, size_t *len, mr_err_t *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    mr_err_set(err, -errno, "fpga engine: cannot read xclbin %s: %s", path,
               strerror(errno));
    return NULL;
  }
  void *buf = NULL;
  long n = -1;
  if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
  if (n > 0 && fseek(f, 0, SEEK_SET) == 0) buf = malloc((size_t)n);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
    mr_err_set(err, n == 0 ? MR_EFORMAT : MR_EIO,
               "fpga engine: cannot read xclbin %s%s", path,
               n == 0 ? " (empty file)" : "");
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

/* Every bank the plan needs must exist in the xclbin's memory topology and
 * be what the kernel's bank argument is connected to. */
static int check_topology(xrt_engine_t *e, const mr_xclbin_info_t *xi,
                          const char *path, mr_err_t *err) {
  const mr_kgeom_t *g = e->geom;
  if (xi->cu < 0 || !xi->has_kernel_xml)
    return mr_err_set(err, MR_EINVAL,
                      "fpga engine: kernel " MR_KEMIT_KERNEL
                      " not found in xclbin %s (%s): build it with make -C "
                      "fpga/kernel xclbin",
                      path,
                      xi->cu < 0 ? "no compute unit " MR_KEMIT_KERNEL ":*"
                                 : "no kernel metadata");
  for (int a = ARG_IDS; a <= ARG_INIT; a++)
    if (mr_xclbin_arg_mem(xi, a) < 0)
      return mr_err_set(err, MR_EINVAL,
                        "fpga engine: xclbin %s: argument %d of %s is "
                        "connected to no memory",
                        path, a, xi->cu_name);
  int arg = MR_KEMIT_ARG_BANK0;
  for (uint32_t k = 0; k < g->num_banks; k++) {
    e->bank_arg[k] = -1;
    if (g->bank_onchip[k]) continue;
    char want[32];
    mr_kemit_bank_name(g, k, want, sizeof want);
    int found = -1, used = 0;
    for (int i = 0; i < xi->num_mems && found < 0; i++) {
      const char *tag = mr_xclbin_mem_tag(xi, i, NULL);
      if (tag && !strcmp(tag, want)) found = i;
    }
    if (found < 0)
      return mr_err_set(err, MR_EINVAL,
                        "fpga engine: xclbin %s has no memory %s, which the "
                        "plan puts kernel bank %u on (the xclbin was built "
                        "for another plan or platform; rebuild it from "
                        "`microrec plan --emit-vitis`)",
                        path, want, k);
    int mem = mr_xclbin_arg_mem(xi, arg);
    mr_xclbin_mem_tag(xi, found, &used);
    if (mem == found && !used)
      return mr_err_set(err, MR_EFORMAT,
                        "fpga engine: xclbin %s connects bank%u to %s but "
                        "marks that memory unused",
                        path, k, want);
    if (mem != found) {
      const char *tag = mr_xclbin_mem_tag(xi, mem, NULL);
      return mr_err_set(err, MR_EINVAL,
                        "fpga engine: xclbin %s connects argument %d (bank%u) "
                        "to %s, the plan puts that bank on %s (rebuild the "
                        "xclbin for this plan)",
                        path, arg, k, tag ? tag : "no memory", want);
    }
    e->bank_arg[k] = arg++;
  }
  if (mr_xclbin_arg_mem(xi, arg) >= 0)
    return mr_err_set(err, MR_EINVAL,
                      "fpga engine: xclbin %s's kernel has more bank "
                      "arguments than the plan's %d off-chip banks",
                      path, arg - MR_KEMIT_ARG_BANK0);
  return 0;
}

static int load_xclbin(xrt_engine_t *e, const char *path, mr_err_t *err) {
  size_t len = 0;
  void *buf = read_all(path, &len, err);
  if (!buf) return err ? err->code : MR_EIO;
  mr_xclbin_info_t *xi = malloc(sizeof *xi);
  int rc = xi ? 0 : mr_err_set(err, MR_ENOMEM, "fpga engine: out of memory");
  if (rc == 0) {
    rc = mr_xclbin_parse(buf, len, MR_KEMIT_KERNEL, xi, err);
    if (rc < 0) mr_err_prefix(err, "fpga engine: %s", path);
  }
  if (rc == 0) rc = check_topology(e, xi, path, err);
  if (rc == 0) {
    memcpy(e->uuid, xi->uuid, 16);
    e->dev = e->x->DeviceOpen(0);
    if (!e->dev)
      rc = mr_err_set(err, MR_EDEVICE,
                      "no device: XRT found no device 0 (errno %d: %s; "
                      "`xbutil examine` lists the cards)",
                      errno, strerror(errno));
  }
  if (rc == 0 && e->x->DeviceLoadXclbin(e->dev, buf) != 0)
    rc = mr_err_set(err, MR_EDEVICE,
                    "fpga engine: XRT could not load xclbin %s onto device 0 "
                    "(errno %d: %s; is it built for this card's platform, "
                    "%s?)",
                    path, errno, strerror(errno), xi->platform);
  if (rc == 0) {
    e->krn = e->x->PLKernelOpen(e->dev, e->uuid, MR_KEMIT_KERNEL);
    if (!e->krn)
      rc = mr_err_set(err, MR_EINVAL,
                      "fpga engine: kernel " MR_KEMIT_KERNEL
                      " not found on the device after loading %s",
                      path);
  }
  free(xi);
  free(buf);
  return rc;
}

/* Buffers per bank, written and synced once; the init buffer likewise. */
static int upload(xrt_engine_t *e, const mr_kimage_t *img, mr_err_t *err) {
  const mr_kgeom_t *g = e->geom;
  int grp = e->x->KernelArgGroupId(e->krn, ARG_IDS);
  int igrp = e->x->KernelArgGroupId(e->krn, ARG_INIT);
  if (grp < 0 || igrp < 0)
    return mr_err_set(err, MR_EDEVICE,
                      "fpga engine: XRT knows no memory group for the "
                      "kernel's request arguments");
  e->io_group = (xrtMemoryGroup)grp;
  size_t ibytes = g->init_words * sizeof(float);
  e->init_bo = alloc_map(e, ibytes, (xrtMemoryGroup)igrp,
                         (void **)&e->init_map, err, "the weights");
  if (!e->init_bo) return err ? err->code : MR_EDEVICE;
  memcpy(e->init_map, img->init, ibytes);
  int rc = sync_bo(e, e->init_bo, 1, ibytes, err, "the weights");
  for (uint32_t k = 0; k < g->num_banks && rc == 0; k++) {
    if (e->bank_arg[k] < 0) continue;
    int bg = e->x->KernelArgGroupId(e->krn, e->bank_arg[k]);
    char name[32];
    mr_kemit_bank_name(g, k, name, sizeof name);
    if (bg < 0)
      return mr_err_set(err, MR_EDEVICE,
                        "fpga engine: XRT knows no memory group for bank%u "
                        "(%s)",
                        k, name);
    size_t bytes = g->bank_words[k] * sizeof(float);
    e->bank_bo[k] = alloc_map(e, bytes, (xrtMemoryGroup)bg,
                              (void **)&e->bank_map[k], err, name);
    if (!e->bank_bo[k]) return err ? err->code : MR_EDEVICE;
    memcpy(e->bank_map[k], img->banks[k], bytes);
    rc = sync_bo(e, e->bank_bo[k], 1, bytes, err, name);
  }
  return rc;
}

/* LOAD (weights on chip), then IDENT (the plan hash the kernel was built
 * with) on a one-sample scratch. */
static int start_kernel(xrt_engine_t *e, mr_err_t *err) {
  xrt_scratch_t *s = NULL;
  int rc = new_scratch(e, 1, &s, err);
  if (rc < 0) return rc;
  rc = sync_bo(e, s->out_bo, 1, 16, err, "the scores");
  static const unsigned modes[2] = {MR_K_MODE_LOAD, MR_K_MODE_IDENT};
  for (int i = 0; i < 2 && rc == 0; i++) {
    if (e->x->RunSetArg(s->run, ARG_MODE, modes[i]) != 0)
      rc = mr_err_set(err, MR_EDEVICE, "fpga engine: cannot set the mode");
    if (rc == 0) rc = run_wait(e, s->run, &s->in_flight, err);
  }
  if (rc == 0) rc = sync_bo(e, s->out_bo, 0, 16, err, "the scores");
  if (rc == 0) {
    uint32_t half[2];
    memcpy(half, s->out, sizeof half);
    uint64_t hash = half[0] | (uint64_t)half[1] << 32;
    /* XRT's no-op device runs nothing, so it reports 0. */
    if (hash != e->geom->hash && !(hash == 0 && mr_xrt_is_noop()))
      rc = mr_err_set(err, MR_EINVAL,
                      "fpga engine: the xclbin's kernel was built for plan "
                      "%016llx, this model and plan give %016llx (rebuild "
                      "the xclbin from `microrec plan --emit-vitis`)",
                      (unsigned long long)hash,
                      (unsigned long long)e->geom->hash);
  }
  free_scratch(e, s);
  return rc;
}

/* ---- the backend ---- */

/* Frees the engine's XRT handles, its scratches' first (idempotent). */
static void release_engine(xrt_engine_t *e) {
  for (xrt_scratch_t *s = e->scratches; s; s = s->next) release_scratch(e, s);
  if (!e->x) return;
  for (uint32_t k = 0; e->geom && k < e->geom->num_banks; k++)
    if (e->bank_bo[k]) e->x->BOFree(e->bank_bo[k]);
  if (e->init_bo) e->x->BOFree(e->init_bo);
  if (e->krn) e->x->KernelClose(e->krn);
  if (e->dev) e->x->DeviceClose(e->dev);
  memset(e->bank_bo, 0, sizeof e->bank_bo);
  e->init_bo = NULL;
  e->krn = NULL;
  e->dev = NULL;
}

static void release_all_at_exit(void) {
  pthread_mutex_lock(&live_mu);
  for (xrt_engine_t *e = live; e; e = e->next) release_engine(e);
  pthread_mutex_unlock(&live_mu);
}

static void register_exit(void) { atexit(release_all_at_exit); }

static void xrt_close(mr_engine_t *e_) {
  xrt_engine_t *e = (xrt_engine_t *)e_;
  if (!e) return;
  pthread_mutex_lock(&live_mu);
  if (e->prev) e->prev->next = e->next;
  else if (live == e) live = e->next;
  if (e->next) e->next->prev = e->prev;
  release_engine(e);
  /* Scratches the caller did not free: their memory goes with us. */
  for (xrt_scratch_t *s = e->scratches, *n; s; s = n) {
    n = s->next;
    free(s);
  }
  e->scratches = NULL;
  pthread_mutex_unlock(&live_mu);
  mr_kinfo_free(&e->ki);
  free(e->geom);
  free(e);
}

static int xrt_open(mr_engine_t **out, const mr_model_t *m,
                    const mr_engine_opts_t *o, mr_err_t *err) {
  if (!o->xclbin || !*o->xclbin)
    return mr_err_set(err, MR_EINVAL,
                      "fpga engine: no xclbin given (--xclbin PATH; build "
                      "one with make -C fpga/kernel xclbin, see "
                      "fpga/README.md)");
  const mr_xrt_api_t *x = NULL;
  int rc = mr_xrt_api_load(&x, err);
  if (rc < 0) return rc;
  xrt_engine_t *e = calloc(1, sizeof *e);
  if (!e) return mr_err_set(err, MR_ENOMEM, "fpga engine: out of memory");
  e->x = x;
  pthread_mutex_lock(&live_mu);
  e->next = live;
  if (live) live->prev = e;
  live = e;
  pthread_mutex_unlock(&live_mu);
  e->max_batch = o->max_batch ? o->max_batch : 256;
  e->timeout_ms = MR_XRT_TIMEOUT_MS;
  mr_plan_t own;
  const mr_plan_t *plan;
  mr_kimage_t img = {0};
  rc = mr_kplan_pick(&own, &plan, m, o, "fpga", err);
  if (rc == 0) {
    rc = mr_kimage_build(&img, m, plan, err);
    if (rc < 0) mr_err_prefix(err, "fpga engine");
  }
  mr_plan_free(&own);
  if (rc == 0) {
    e->geom = img.geom; /* the engine keeps the geometry */
    img.geom = malloc(sizeof *img.geom);
    if (!img.geom)
      rc = mr_err_set(err, MR_ENOMEM, "fpga engine: out of memory");
    else
      memcpy(img.geom, e->geom, sizeof *e->geom);
  }
  if (rc == 0)
    for (uint32_t k = 0; k < e->geom->num_banks && rc == 0; k++)
      if (e->geom->bank_mem[k] == MR_KMEM_HOST)
        rc = mr_err_set(err, MR_EINVAL,
                        "fpga engine: the plan puts kernel bank %u in host "
                        "memory; the card needs a plan for its HBM, DDR and "
                        "URAM (target u280)",
                        k);
  if (rc == 0) rc = load_xclbin(e, o->xclbin, err);
  /* After XRT has built its statics, so our handler runs before theirs. */
  if (e->dev) pthread_once(&exit_once, register_exit);
  if (rc == 0) rc = upload(e, &img, err);
  uint64_t bytes = img.bytes;
  mr_kimage_free(&img); /* the card has its copy now */
  if (rc == 0) rc = start_kernel(e, err);
  if (rc == 0)
    rc = mr_kinfo_fill(&e->ki, m, "fpga", e->max_batch, bytes, err);
  if (rc < 0) {
    xrt_close(&e->base);
    return rc;
  }
  e->ki.info.simd = "xrt";
  *out = &e->base;
  return 0;
}

static const mr_engine_info_t *xrt_info(const mr_engine_t *e) {
  return &((const xrt_engine_t *)e)->ki.info;
}

static int xrt_scratch_new(mr_engine_t *e_, mr_scratch_t **out,
                           mr_err_t *err) {
  xrt_engine_t *e = (xrt_engine_t *)e_;
  xrt_scratch_t *s = NULL;
  int rc = new_scratch(e, e->max_batch, &s, err);
  if (rc == 0) *out = (mr_scratch_t *)s;
  return rc;
}

static void xrt_scratch_free(mr_engine_t *e, mr_scratch_t *s) {
  free_scratch((xrt_engine_t *)e, (xrt_scratch_t *)s);
}

static int xrt_run(mr_engine_t *e_, mr_scratch_t *s_, size_t n,
                   const float *dense, const int64_t *ids, float *logits,
                   mr_err_t *err) {
  xrt_engine_t *e = (xrt_engine_t *)e_;
  xrt_scratch_t *s = (xrt_scratch_t *)s_;
  const mr_kgeom_t *g = e->geom;
  if (atomic_load(&e->failed))
    return mr_err_set(err, MR_EDEVICE,
                      "fpga engine: an earlier kernel run failed or timed "
                      "out; reopen the engine");
  if (n > e->max_batch)
    return mr_err_set(err, MR_EINVAL,
                      "fpga engine: %zu samples, at most %zu per run", n,
                      e->max_batch);
  size_t nt = g->num_logical, nd = g->num_dense;
  for (size_t i = 0; i < n * nt; i++) s->ids[i] = (uint32_t)ids[i];
  int rc = sync_bo(e, s->ids_bo, 1, n * nt * 4, err, "the ids");
  if (rc == 0 && nd) {
    memcpy(s->dense, dense, n * nd * sizeof(float));
    rc = sync_bo(e, s->dense_bo, 1, n * nd * 4, err, "the dense input");
  }
  if (rc == 0 && (e->x->RunSetArg(s->run, ARG_N, (unsigned)n) != 0 ||
                  e->x->RunSetArg(s->run, ARG_MODE,
                                  (unsigned)MR_K_MODE_RUN) != 0))
    rc = mr_err_set(err, MR_EDEVICE, "fpga engine: cannot set the batch size");
  if (rc == 0) rc = run_wait(e, s->run, &s->in_flight, err);
  if (rc == 0) rc = sync_bo(e, s->out_bo, 0, n * 2 * 4, err, "the scores");
  if (rc < 0) return rc;
  for (size_t i = 0; i < n; i++) logits[i] = s->out[2 * i];
  return 0;
}

const mr_backend_t mr_fpga_backend = {
    .abi = MR_BACKEND_ABI,
    .name = "fpga",
    .open = xrt_open,
    .scratch_new = xrt_scratch_new,
    .scratch_free = xrt_scratch_free,
    .run = xrt_run,
    .info = xrt_info,
    .close = xrt_close,
};

/* ---- for tests and tools ---- */

void mr_xrt_set_timeout(mr_engine_t *e, unsigned ms) {
  if (e && e->backend == &mr_fpga_backend)
    ((xrt_engine_t *)e)->timeout_ms = ms ? ms : 1;
}

void mr_xrt_inject_wait(mr_engine_t *e, int state) {
  if (e && e->backend == &mr_fpga_backend)
    atomic_store(&((xrt_engine_t *)e)->inject_state, state);
}

const float *mr_xrt_bank_view(const mr_engine_t *e_, uint32_t k,
                              size_t *bytes) {
  const xrt_engine_t *e = (const xrt_engine_t *)e_;
  if (!e || e->base.backend != &mr_fpga_backend || k >= e->geom->num_banks ||
      !e->bank_map[k])
    return NULL;
  if (bytes) *bytes = e->geom->bank_words[k] * sizeof(float);
  return e->bank_map[k];
}

const float *mr_xrt_init_view(const mr_engine_t *e_, size_t *bytes) {
  const xrt_engine_t *e = (const xrt_engine_t *)e_;
  if (!e || e->base.backend != &mr_fpga_backend) return NULL;
  if (bytes) *bytes = e->geom->init_words * sizeof(float);
  return e->init_map;
}

const mr_kgeom_t *mr_xrt_geom(const mr_engine_t *e) {
  return e && e->backend == &mr_fpga_backend ? ((const xrt_engine_t *)e)->geom
                                             : NULL;
}

void mr_xrt_counts(const mr_engine_t *e_, uint64_t *started,
                   uint64_t *completed) {
  const xrt_engine_t *e = (const xrt_engine_t *)e_;
  *started = atomic_load(&((xrt_engine_t *)e)->started);
  *completed = atomic_load(&((xrt_engine_t *)e)->completed);
}
