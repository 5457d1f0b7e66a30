/* The built-in targets (fpga/target.h). Each is a table of banks; the
 * planner reads nothing else about a card. */
#include "fpga/target.h"

#include <stdio.h>
#include <string.h>

#define KIB (1024ull)
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)

/* Alveo U280 (Xilinx DS963 / UG1314).
 * - On-chip: 960 URAM blocks of 288 Kbit (4096 x 72 bit) = 33.75 MiB, and
 *   2016 BRAM36 (36 Kbit) = 8.86 MiB. Tables may use half of the URAM, 480
 *   blocks = 16.875 MiB; the other half and all BRAM are left to the MLP's
 *   weights and FIFOs, as the paper reserved on-chip memory for its MLP. A
 *   table takes whole URAM blocks: ceil(rows / 4096) deep times
 *   ceil(row bits / 72) wide, so a 100 x 4 fp32 table costs 2 blocks.
 * - HBM2: 32 pseudo-channels of 256 MiB, 460 GB/s in all = 14.4 GB/s each.
 * - DDR4-2400: 2 channels of 16 GiB, 19.2 GB/s each.
 * Latencies are left unknown (0): the objective counts rounds, not ns, and
 * the card's own numbers should come from measuring it. */
static const mr_target_bank_t u280_banks[] = {
    {"URAM", MR_BANK_ONCHIP, 1, 480ull * 36864ull, 4096, 72, 0, 0, 0},
    {"HBM", MR_BANK_HBM, 32, 256 * MIB, 0, 0, 0, 0, 14.375},
    {"DDR", MR_BANK_DDR, 2, 16 * GIB, 0, 0, 0, 0, 19.2},
};

/* A CPU server: one DRAM, and the cache as the "on-chip" bank, since a
 * table that stays in cache costs no DRAM miss. Measured on the build
 * machine (2-vCPU AMD EPYC VM, family 26, 1 MiB L2 per core, L3 shared with
 * other tenants) with
 *     bench/gather_bench.sh 1024 64     (4 runs; 64 and 128-byte rows)
 * random row reads, ns per row, dependent / batch of 256 independent:
 *     <= 1 MiB tables       6-44 /  2-6     (every run)
 *     2-4 MiB tables       28-330 / 3-27    (cache in some runs, not others)
 *     64 MiB - 1 GiB      267-964 / 17-74   (DRAM)
 * The entries below hold the medians at 1 MiB (LLC) and over 64 MiB - 1 GiB
 * (DRAM). The planner may treat 1 MiB of tables as cached: the largest size
 * that stayed within 2x of the smallest tables' cost in every run. The L3
 * was not dependable on this VM (other tenants evict it); on a dedicated
 * server, re-run the bench and raise the LLC entry. */
static const mr_target_bank_t cpu_banks[] = {
    {"LLC", MR_BANK_ONCHIP, 1, 1 * MIB, 0, 0, 33, 5, 0},
    {"DRAM", MR_BANK_DRAM, 1, 1024 * GIB, 0, 0, 525, 37, 0},
};

static const mr_target_t targets[] = {
    {"u280", "Xilinx Alveo U280: 32 HBM pseudo-channels, 2 DDR4 channels, URAM",
     sizeof u280_banks / sizeof u280_banks[0], u280_banks},
    {"cpu", "CPU server: one DRAM, tables that fit the cache hit it",
     sizeof cpu_banks / sizeof cpu_banks[0], cpu_banks},
};

const char *const mr_target_names[] = {"u280", "cpu", NULL};

const mr_target_t *mr_target_find(const char *name) {
  if (!name) return NULL;
  for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++)
    if (!strcmp(targets[i].name, name)) return &targets[i];
  return NULL;
}

size_t mr_target_num_banks(const mr_target_t *t) {
  size_t n = 0;
  for (size_t g = 0; t && g < t->num_groups; g++)
    n += t->groups[g].count > 0 ? (size_t)t->groups[g].count : 0;
  return n;
}

const mr_target_bank_t *mr_target_bank(const mr_target_t *t, size_t i,
                                       int *index) {
  for (size_t g = 0; t && g < t->num_groups; g++) {
    size_t c = t->groups[g].count > 0 ? (size_t)t->groups[g].count : 0;
    if (i < c) {
      if (index) *index = (int)i;
      return &t->groups[g];
    }
    i -= c;
  }
  return NULL;
}

void mr_target_bank_name(const mr_target_t *t, size_t i, char *buf,
                         size_t len) {
  int idx = 0;
  const mr_target_bank_t *b = mr_target_bank(t, i, &idx);
  if (!b)
    snprintf(buf, len, "?");
  else if (b->count == 1)
    snprintf(buf, len, "%s", b->name);
  else
    snprintf(buf, len, "%s[%d]", b->name, idx);
}

uint64_t mr_target_footprint(const mr_target_bank_t *b, uint64_t rows,
                             uint64_t row_bytes) {
  uint64_t r;
  if (!b || !b->unit_rows || !b->unit_bits) {
    if (__builtin_mul_overflow(rows, row_bytes, &r)) return UINT64_MAX;
    return r;
  }
  uint64_t bits;
  if (__builtin_mul_overflow(row_bytes, 8ull, &bits)) return UINT64_MAX;
  uint64_t wide = (bits + b->unit_bits - 1) / b->unit_bits;
  uint64_t deep = rows / b->unit_rows + (rows % b->unit_rows != 0);
  uint64_t unit_bytes = (uint64_t)b->unit_rows * b->unit_bits / 8;
  if (__builtin_mul_overflow(wide, deep, &r) ||
      __builtin_mul_overflow(r, unit_bytes, &r))
    return UINT64_MAX;
  return r;
}

const char *mr_bank_kind_name(int kind) {
  switch (kind) {
    case MR_BANK_ONCHIP:
      return "on-chip";
    case MR_BANK_HBM:
      return "HBM";
    case MR_BANK_DDR:
      return "DDR";
    case MR_BANK_DRAM:
      return "DRAM";
    default:
      return "?";
  }
}
