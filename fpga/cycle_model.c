/* The kernel's cycle model (fpga/cycle_model.h). Each formula mirrors a
 * stage of fpga/kernel/microrec_kernel.hpp; change them together. */
#include "fpga/cycle_model.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "fpga/kernel_emit.h"

void mr_cycle_params_default(mr_cycle_params_t *p) {
  /* The clock the emitter asks v++ for (connectivity.cfg). */
  p->clock_mhz = MR_KEMIT_CLOCK_MHZ;
  /* Shuhai (Wang et al., FCCM 2020) measured U280 HBM at 107-138 ns from
   * request to data at the memory controller (page hit to page miss) and
   * DDR4 somewhat higher on misses; an HLS m_axi adapter and the HBM
   * switch add to that. Assumed, round numbers: */
  p->hbm_latency_ns = 250.0;
  p->ddr_latency_ns = 300.0;
  p->uram_latency_cycles = 3.0;
  /* num_read_outstanding on every bank port (microrec_kernel.cpp). */
  p->outstanding = 32.0;
  /* A lookup unit forwards one float per cycle into its stream. */
  p->port_bytes = 4.0;
  /* Xilinx: 14.375 GB/s per HBM pseudo-channel, 19.2 GB/s per DDR4. */
  p->hbm_gbps = 14.375;
  p->ddr_gbps = 19.2;
  /* Pipelined fp32 fmul + fadd on DSPs at 200 MHz, rounded up. */
  p->mac_latency_cycles = 10.0;
}

static void add(mr_cycle_report_t *r, const char *name, double ii,
                double latency) {
  if (r->num_stages >= MR_CYCLE_MAX_STAGES) return;
  mr_cycle_stage_t *s = &r->stages[r->num_stages++];
  snprintf(s->name, sizeof s->name, "%s", name);
  s->ii = ii;
  s->latency = latency;
}

/* dense_pe: load `in`, init the accumulators (lanes per cycle), in*out/lanes
 * multiply-add cycles, emit `out` (2 for the last layer). */
static void pe(mr_cycle_report_t *r, const char *part, uint32_t i,
               const mr_klayer_t *l, int last, const mr_cycle_params_t *p) {
  double lanes = l->lanes ? l->lanes : 1;
  double ii = l->in + ceil(l->out / lanes) +
              ceil((double)l->in * l->out / lanes) + (last ? 2 : l->out);
  char name[48];
  snprintf(name, sizeof name, "%s layer %u (%ux%u, %u lanes)", part, i,
           l->in, l->out, l->lanes);
  add(r, name, ii, ii + p->mac_latency_cycles);
}

int mr_cycle_model(const mr_kgeom_t *g, const mr_cycle_params_t *p_,
                   mr_cycle_report_t *r, mr_err_t *err) {
  memset(r, 0, sizeof *r);
  if (p_)
    r->params = *p_;
  else
    mr_cycle_params_default(&r->params);
  const mr_cycle_params_t *p = &r->params;
  if (!g || g->num_banks == 0 || g->num_top == 0)
    return mr_err_set(err, MR_EINVAL,
                      "cycle model: a geometry with banks and a top MLP is "
                      "needed");
  const double cyc_ns = 1000.0 / p->clock_mhz;

  /* distribute: the sample's ids one per cycle, then one cycle per round
   * (all banks together); ids come from HBM. */
  add(r, "ids -> rows", (double)g->num_logical + g->max_rounds,
      p->hbm_latency_ns / cyc_ns + g->num_logical + g->max_rounds);

  /* lookup units: one word per cycle when enough reads are in flight to
   * cover the latency (Little's law), else outstanding / latency. */
  for (uint32_t b = 0; b < g->num_banks; b++) {
    double words = 0;
    for (uint32_t k = 0; k < g->bank_count[b]; k++)
      words += g->lookups[g->bank_first[b] + k].cols;
    double lat = g->bank_onchip[b] ? p->uram_latency_cycles
                 : (g->bank_mem[b] == MR_KMEM_DDR ? p->ddr_latency_ns
                                                  : p->hbm_latency_ns) /
                       cyc_ns;
    double rate = g->bank_onchip[b] ? 1.0 : fmin(1.0, p->outstanding / lat);
    /* ... and never beyond the memory's bandwidth. */
    double gbps = g->bank_mem[b] == MR_KMEM_DDR ? p->ddr_gbps : p->hbm_gbps;
    if (!g->bank_onchip[b])
      rate = fmin(rate, gbps / (p->port_bytes * p->clock_mhz * 1e-3));
    double ii = words / rate, latency = lat + ii;
    if (ii > r->lookup_ii || (ii == r->lookup_ii && latency > r->lookup_latency)) {
      r->lookup_ii = ii;
      r->lookup_bank = b;
    }
    if (latency > r->lookup_latency) r->lookup_latency = latency;
    if (!g->bank_onchip[b] && g->bank_count[b] > r->max_rounds)
      r->max_rounds = g->bank_count[b];
  }
  char name[48];
  snprintf(name, sizeof name, "lookup (%u banks)", g->num_banks);
  add(r, name, r->lookup_ii, r->lookup_latency);

  /* gather: every bank's words in, then the embedding vector out. */
  add(r, "gather", 2.0 * g->emb_width, 2.0 * g->emb_width);

  if (g->num_bot) {
    add(r, "dense in", g->num_dense, p->hbm_latency_ns / cyc_ns + g->num_dense);
    for (uint32_t i = 0; i < g->num_bot; i++) pe(r, "bottom", i, &g->bot[i], 0, p);
  }

  /* interaction: copy (cat), or also one pair per cycle with the dot
   * product unrolled (its adds in a chain). */
  double ix = (double)g->bot_width + g->emb_width;
  double ix_lat = ix;
  if (g->interaction == 0 && g->emb_dim) {
    double nv = g->emb_width / g->emb_dim + (g->bot_width ? 1 : 0);
    double pairs = nv * (nv - 1) / 2;
    ix += pairs;
    ix_lat = ix + g->emb_dim * p->mac_latency_cycles;
  }
  add(r, g->interaction == 0 ? "interaction (dot)" : "interaction (cat)", ix,
      ix_lat);

  for (uint32_t i = 0; i < g->num_top; i++)
    pe(r, "top", i, &g->top[i], i + 1 == g->num_top, p);
  add(r, "scores out", 2, 2 + p->hbm_latency_ns / cyc_ns);

  for (size_t s = 0; s < r->num_stages; s++) {
    r->latency_cycles += r->stages[s].latency;
    if (r->stages[s].ii > r->ii) {
      r->ii = r->stages[s].ii;
      r->slowest = s;
    }
  }
  r->samples_per_s = p->clock_mhz * 1e6 / r->ii;
  r->latency_us = r->latency_cycles * cyc_ns / 1000.0;
  return 0;
}

int mr_cycle_print(FILE *out, const mr_cycle_report_t *r) {
  const mr_cycle_params_t *p = &r->params;
  const double cyc_ns = 1000.0 / p->clock_mhz;
  fprintf(out,
          "\nKernel cycle model (U280 at %.0f MHz; a prediction, not a "
          "measurement):\n"
          "  %-40s %13s %12s\n",
          p->clock_mhz, "stage", "cycles/sample", "latency");
  for (size_t s = 0; s < r->num_stages; s++)
    fprintf(out, "  %-40s %13.0f %8.0f cyc%s\n", r->stages[s].name,
            r->stages[s].ii, r->stages[s].latency,
            s == r->slowest ? "  <- sets the throughput" : "");
  fprintf(out,
          "  lookup stage: %.0f cycles/sample (%.2f us), %u DRAM rounds on "
          "the busiest\n    off-chip bank\n"
          "  throughput: %.0f samples/s (one sample every %.0f cycles)\n"
          "  latency of one sample: %.0f cycles = %.2f us (stages one after "
          "another;\n"
          "    PCIe transfers and the host are not included)\n"
          "  assumptions: HBM read %.0f ns, DDR read %.0f ns, URAM %.0f "
          "cycles; %.0f reads\n"
          "    in flight per port; %.0f bytes/cycle into each lookup unit; "
          "HBM %.3g GB/s\n"
          "    and DDR %.3g GB/s per channel; fp32 multiply-add pipeline %.0f "
          "cycles\n",
          r->lookup_ii, r->lookup_ii * cyc_ns / 1000.0, r->max_rounds,
          r->samples_per_s, r->ii, r->latency_cycles, r->latency_us,
          p->hbm_latency_ns, p->ddr_latency_ns, p->uram_latency_cycles,
          p->outstanding, p->port_bytes, p->hbm_gbps, p->ddr_gbps,
          p->mac_latency_cycles);
  return ferror(out) ? -EIO : 0;
}
