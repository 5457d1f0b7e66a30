/* Targets of the planner: a card or a machine described as data, a small
 * table of memory banks (kind, how many, capacity, allocation unit, costs).
 * A new card is a new entry in target.c, not new code.
 *
 * Targets are static, immutable and may be read from any thread. */
#ifndef MR_TARGET_H
#define MR_TARGET_H

#include <stddef.h>
#include <stdint.h>

/* Kinds of bank. Lookups in on-chip banks do not count as DRAM rounds: every
 * on-chip table has its own memory blocks (FPGA) or hits in cache (CPU). */
typedef enum mr_bank_kind {
  MR_BANK_DRAM = 0,   /* a CPU's main memory (0: what a zeroed bank means) */
  MR_BANK_ONCHIP = 1, /* URAM/BRAM, or a CPU's last-level cache */
  MR_BANK_HBM = 2,
  MR_BANK_DDR = 3,
} mr_bank_kind_t;

/* `count` identical banks of one kind. */
typedef struct mr_target_bank {
  const char *name; /* "HBM": banks named HBM[0]..; alone: "URAM" */
  mr_bank_kind_t kind;
  int count;
  uint64_t capacity; /* bytes of one bank the planner may fill */
  /* Allocation unit of on-chip memories: a table takes whole blocks of
   * unit_rows x unit_bits (U280 URAM: 4096 x 72). 0 = byte granular. */
  uint32_t unit_rows, unit_bits;
  double latency_ns;   /* one random row read, dependent (0 = unknown) */
  double gather_ns;    /* per row, a batch of independent reads (0 = ?) */
  double gbytes_per_s; /* peak bandwidth of one bank (0 = unknown) */
} mr_target_bank_t;

typedef struct mr_target {
  const char *name; /* "u280", "cpu" */
  const char *description;
  size_t num_groups;
  const mr_target_bank_t *groups;
} mr_target_t;

/* NULL-terminated names of the built-in targets. */
extern const char *const mr_target_names[];

/* The target called name, or NULL. */
const mr_target_t *mr_target_find(const char *name);

/* Banks of t once groups are expanded (u280: 1 + 32 + 2). */
size_t mr_target_num_banks(const mr_target_t *t);

/* The group of expanded bank i, and i's index within it (may be NULL);
 * NULL when i is out of range. */
const mr_target_bank_t *mr_target_bank(const mr_target_t *t, size_t i,
                                       int *index);

/* "HBM[3]", or the group's name when it has one bank. */
void mr_target_bank_name(const mr_target_t *t, size_t i, char *buf, size_t len);

/* Bytes a table of rows x row_bytes occupies in a bank of group b (whole
 * blocks for on-chip memories). UINT64_MAX on overflow. */
uint64_t mr_target_footprint(const mr_target_bank_t *b, uint64_t rows,
                             uint64_t row_bytes);

static inline int mr_bank_is_onchip(int kind) { return kind == MR_BANK_ONCHIP; }

/* "on-chip", "HBM", "DDR", "DRAM". */
const char *mr_bank_kind_name(int kind);

#endif
