/* What a load run reports: a text summary for a person, a JSON object for
 * scripts, and the latency distribution in HdrHistogram's percentile
 * (.hgrm) text layout, values in microseconds, as HdrHistogram's own
 * outputPercentileDistribution writes it (so its plotter reads it).
 * Pure formatting: no I/O beyond the FILE given. */
#ifndef MR_LOAD_REPORT_H
#define MR_LOAD_REPORT_H

#include <jansson.h>
#include <stdio.h>

#include "client/load/runner.h"

/* How the run was set up, for the reports. */
typedef struct mr_load_desc {
  const mr_load_conf_t *conf;
  const char *server;          /* "HOST:PORT" */
  const char *source;          /* "uniform", "zipf" or "criteo" */
  double zipf_s;
  const char *criteo;          /* the replayed file, or NULL */
  size_t batch;
  double lag_fraction;         /* allowed share of late sends */
} mr_load_desc_t;

/* 1 when the generator kept its schedule: at most lag_fraction of the
 * measured requests were sent later than the lag bound (closed loop: 1). */
int mr_report_schedule_kept(const mr_load_desc_t *d,
                            const mr_load_result_t *r);

/* The summary object: achieved_rate, requests, errors, p50_us, p90_us,
 * p99_us, p999_us, max_us and the rest. The caller json_decref's it. */
json_t *mr_report_json(const mr_load_desc_t *d, const mr_load_result_t *r);

/* The summary as text, with a warning when the schedule was not kept. */
void mr_report_text(FILE *out, const mr_load_desc_t *d,
                    const mr_load_result_t *r);

/* The .hgrm percentile distribution of h (values in ns, written in us):
 * header, one row per reporting percentile (5 ticks per half distance),
 * the 100% row, and the Mean/Max/Buckets footer. Returns 0 or -errno. */
int mr_report_hgrm(FILE *out, const mr_hist_t *h);

#endif
