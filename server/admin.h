/* The admin HTTP port (libmicrohttpd, on its own thread): off by default,
 * loopback by default when on.
 *   GET /metrics  Prometheus text format: counters, gauges (connections,
 *                 model generation, jemalloc bytes) and the per-stage
 *                 latency histograms in seconds (_bucket{le}, _sum, _count)
 *   GET /healthz  200 "ok" while the process serves HTTP at all
 *   GET /readyz   200 once the model is loaded and the engine warmed up,
 *                 503 before (and while stopping)
 *
 * Threads: the admin thread reads stats through summarize (thread-safe) and
 * stats->ready (atomic); nothing else of the server. Ownership: mr_admin_t
 * is made by start and freed by stop (which joins the thread). */
#ifndef MR_ADMIN_H
#define MR_ADMIN_H

#include <stddef.h>

#include "fpga/err.h"
#include "server/addr.h"
#include "server/stats.h"

typedef struct mr_admin mr_admin_t;
typedef void (*mr_admin_summarize_fn)(void *ctx, mr_stats_summary_t *out);

/* Starts serving on addr; *bound receives the actual address (port 0). */
int mr_admin_start(mr_admin_t **out, const mr_addr_t *addr, mr_stats_t *stats,
                   mr_admin_summarize_fn summarize, void *ctx,
                   mr_addr_t *bound, mr_err_t *err);
void mr_admin_stop(mr_admin_t *a);

/* Renders the /metrics page into a malloc'd string (caller frees). */
char *mr_admin_metrics(const mr_stats_summary_t *s, size_t *len);

#endif
