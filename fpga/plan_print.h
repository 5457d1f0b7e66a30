/* A plan for people (a table of banks and a summary) and for tools (JSON).
 * Reads the plan only; any thread. */
#ifndef MR_PLAN_PRINT_H
#define MR_PLAN_PRINT_H

#include <jansson.h>
#include <stdio.h>

#include "fpga/plan.h"

/* Counts a plan implies but does not store. */
typedef struct mr_plan_stats {
  size_t tables;         /* after products: a split table counts once */
  size_t products;       /* tables with 2-3 factors */
  size_t split;          /* tables split by columns over several banks */
  size_t onchip_lookups; /* physical tables in on-chip banks */
  uint64_t extra_bytes;  /* plan_bytes - base_bytes */
} mr_plan_stats_t;

void mr_plan_stats(const mr_plan_t *p, mr_plan_stats_t *s);

/* The human table: one line per bank in use (kind, tables, rows, bytes,
 * fill, rounds), then the summary. Returns 0 or -errno of the write. */
int mr_plan_print(FILE *out, const mr_plan_t *p);

/* JSON with the keys tables, logical_tables, physical_tables, products,
 * split_tables, lookups_per_sample, onchip_lookups, max_dram_rounds,
 * base_bytes, plan_bytes, extra_bytes, memory_overhead (a fraction), target,
 * banks (array) and plan (array of physical tables). New reference, or NULL
 * when out of memory; the caller json_decref()s it. */
json_t *mr_plan_to_json(const mr_plan_t *p);

/* mr_plan_to_json, indented, then a newline. 0, MR_ENOMEM or -errno. */
int mr_plan_print_json(FILE *out, const mr_plan_t *p);

#endif
