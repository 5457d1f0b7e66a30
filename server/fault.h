/* Fault injection for the reliability tests, off unless the environment
 * asks for it (read once, at start-up and on each reload):
 *
 *   MR_FAULT_ENGINE_EVERY=N   every Nth engine run fails with MR_EDEVICE
 *                             ("injected engine fault"), counted over all
 *                             runs of all engine threads after warm-up; the
 *                             requests of that batch are answered INTERNAL.
 *
 * It works by wrapping the served engine in a pass-through backend whose
 * run fails on schedule, so the server's real error path is what runs.
 *
 * Ownership: the wrapper owns the inner engine (mr_engine_close closes
 * both). Threads: as the engine's (run from any engine thread). */
#ifndef MR_FAULT_H
#define MR_FAULT_H

#include "fpga/engine.h"
#include "fpga/err.h"

/* If MR_FAULT_ENGINE_EVERY asks for faults, replaces *e with a wrapper of
 * it; else leaves *e alone. Returns 0, or MR_ENOMEM / MR_EINVAL (a value
 * that is not a positive integer) with err saying why; *e is unchanged on
 * error. */
int mr_fault_wrap_engine(mr_engine_t **e, mr_err_t *err);

#endif
