/* The model being served: a loaded model's engine, one scratch per engine
 * thread, and the generation it was loaded as. SIGHUP makes a new slot
 * beside the old one; requests keep a reference to the slot they were
 * validated for, so a reload never changes the model under a request, and
 * the old slot is closed when its last request has been answered.
 *
 * Ownership and threads: mr_slot_open runs on any thread (a worker, for a
 * reload) and returns a slot with refs = 0; refs are counted on the loop
 * thread only (server.c); mr_slot_close runs once refs is 0 and no engine
 * thread uses it (which refs = 0 implies: a batch holds requests, requests
 * hold refs). Engine thread i uses only scratch[i]. */
#ifndef MR_SLOT_H
#define MR_SLOT_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/engine.h"
#include "fpga/err.h"

typedef struct mr_slot_opts {
  const char *path;
  const char *backend;  /* "cpu" */
  const char *xclbin;   /* backend "fpga": the kernel's xclbin; NULL */
  size_t max_batch;
  int no_products;
  unsigned threads;     /* scratches to make */
} mr_slot_opts_t;

typedef struct mr_slot {
  mr_engine_t *engine;
  const mr_engine_info_t *info;
  mr_scratch_t **scratch;  /* [threads] */
  unsigned threads;
  uint64_t generation;     /* set by the server when it swaps the slot in */
  uint64_t load_ns;        /* load + open + warm-up time */
  long refs;               /* loop thread only */
  char path[4096];
} mr_slot_t;

/* Loads the model, checks that the engine will fit in the memory available
 * (fpga/memcheck.h: MR_ENOMEM with what it needs and what is available,
 * before anything large is allocated), opens the engine (the model is closed after: the engine
 * keeps what it needs), makes the scratches and warms the engine up with one
 * run of max_batch samples. err says which step failed and why. */
int mr_slot_open(mr_slot_t **out, const mr_slot_opts_t *o, mr_err_t *err);
void mr_slot_close(mr_slot_t *s);

#endif
