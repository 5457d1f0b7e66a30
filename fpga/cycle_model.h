/* A cycle model of the MicroRec kernel (fpga/kernel/) on an Alveo U280:
 * from a plan's kernel geometry, the cycles per sample of each dataflow
 * stage (the lookup stage, each MLP layer, ...), the throughput at the
 * kernel clock (set by the slowest stage) and the latency of one sample.
 *
 * It models the code as written: every stage moves one fp32 value per cycle
 * through its streams (II = 1 loops); a lookup unit keeps up to
 * `outstanding` reads in flight on its port; a processing element loads its
 * input, runs in*out/lanes multiply-add cycles, then emits its outputs, one
 * sample at a time. Memory latencies are assumptions (see
 * mr_cycle_params_default), not measurements: nothing here has run on a
 * card. Pure functions; any thread. */
#ifndef MR_CYCLE_MODEL_H
#define MR_CYCLE_MODEL_H

#include <stddef.h>
#include <stdio.h>

#include "fpga/err.h"
#include "fpga/kernel/microrec_geom.h"

typedef struct mr_cycle_params {
  double clock_mhz;          /* kernel clock */
  double hbm_latency_ns;     /* one random read through an HLS m_axi port */
  double ddr_latency_ns;
  double uram_latency_cycles;
  double outstanding;        /* reads in flight per port */
  double port_bytes;         /* bytes a lookup unit takes per cycle */
  double hbm_gbps;           /* peak bandwidth of one HBM pseudo-channel */
  double ddr_gbps;
  double mac_latency_cycles; /* fp32 multiply-add pipeline depth */
} mr_cycle_params_t;

/* The assumptions, written out in cycle_model.c beside their sources. */
void mr_cycle_params_default(mr_cycle_params_t *p);

#define MR_CYCLE_MAX_STAGES (2 * MR_K_MAX_LAYERS + 8)

typedef struct mr_cycle_stage {
  char name[48];
  double ii;       /* cycles per sample at steady state */
  double latency;  /* cycles for one sample to pass, pipeline included */
} mr_cycle_stage_t;

typedef struct mr_cycle_report {
  mr_cycle_params_t params;
  size_t num_stages;
  mr_cycle_stage_t stages[MR_CYCLE_MAX_STAGES];
  size_t slowest;            /* stage that sets the throughput */
  double ii;                 /* cycles per sample: max over stages */
  double samples_per_s;      /* clock / ii */
  double latency_cycles;     /* one sample, stages one after another */
  double latency_us;
  /* The lookup stage alone. */
  double lookup_ii, lookup_latency;
  uint32_t lookup_bank;      /* the bank that sets it */
  uint32_t max_rounds;       /* most lookups on one off-chip bank */
} mr_cycle_report_t;

/* Fills r for geometry g (p NULL = defaults). MR_EINVAL for a geometry
 * without banks or layers. */
int mr_cycle_model(const mr_kgeom_t *g, const mr_cycle_params_t *p,
                   mr_cycle_report_t *r, mr_err_t *err);

/* The report for a person: one line per stage, the totals, and the
 * assumptions. Returns 0 or -errno of the write. */
int mr_cycle_print(FILE *out, const mr_cycle_report_t *r);

#endif
