/* The kernel's geometry: everything the MicroRec kernel needs to know about
 * a plan and a model's shape, as one plain struct readable from C and C++.
 *
 * Two ways to fill it, one layout:
 *  - for Vitis HLS, `microrec plan --emit-vitis` writes microrec_plan.h, which
 *    defines `constexpr mr_kgeom_t MR_KPLAN = {...}` (every bound a compile-
 *    time constant the synthesis tool can size hardware with);
 *  - for the fpga-sim backend, fpga/kernel_image.c fills one at run time.
 * The kernel's stage functions take a `const mr_kgeom_t &` and read the same
 * fields either way.
 *
 * Memory the kernel sees (all fp32, little-endian, row-major):
 *  - one image per kernel bank: bank k holds its tables one after another in
 *    round order; lookup l's row r is the `cols` floats at
 *    bank[base + r * cols];
 *  - the init image: every layer's weights stored transposed, [in][out]
 *    (so a processing element reads one input's column of outputs
 *    contiguously), then its bias [out]; then the images of on-chip banks,
 *    which the kernel copies into URAM when it loads;
 *  - ids: n * num_logical uint32 (the request's ids, logical order);
 *  - dense: n * num_dense floats;
 *  - out: n * 2 floats, {logit, sigmoid(logit)} per sample.
 *
 * Arithmetic: fp32 throughout (no fixed point), so the kernel matches an fp32
 * CPU engine up to summation order. */
#ifndef MR_KERNEL_GEOM_H
#define MR_KERNEL_GEOM_H

#include <stdint.h>

#define MR_KGEOM_VERSION 1u

#define MR_K_MAX_BANKS 256    /* 32 HBM + 2 DDR + one per on-chip table */
#define MR_K_MAX_LOOKUPS 512  /* physical tables */
#define MR_K_MAX_LOGICAL 256  /* logical tables (ids per sample) */
#define MR_K_MAX_LAYERS 16    /* per MLP */
#define MR_K_MAX_FACTORS 3

/* Kernel modes (the `mode` argument). */
#define MR_K_MODE_RUN 0u      /* score n samples */
#define MR_K_MODE_LOAD 1u     /* copy weights and on-chip tables on chip */
#define MR_K_MODE_IDENT 2u    /* write the geometry hash to out[0..3] */

/* One physical table: where its rows are and where their columns go. */
typedef struct mr_klookup {
  uint32_t bank;        /* kernel bank index */
  uint32_t round;       /* position among its bank's lookups */
  uint32_t cols;        /* floats per row held (col_end - col_begin) */
  uint32_t num_factors; /* 1 = plain table, 2 or 3 = product */
  uint64_t base;        /* first float of the table in its bank image */
  uint64_t rows;
  uint32_t factor[MR_K_MAX_FACTORS]; /* logical tables, in product order */
  uint32_t num_segs;    /* column runs, one per factor the columns touch */
  uint64_t mult[MR_K_MAX_FACTORS];   /* row = sum id[factor[f]] * mult[f] */
  /* Run s: row columns [seg_src, seg_src + seg_len) go to the embedding
   * vector (all logical tables concatenated) at seg_dst. */
  uint32_t seg_src[MR_K_MAX_FACTORS];
  uint32_t seg_len[MR_K_MAX_FACTORS];
  uint32_t seg_dst[MR_K_MAX_FACTORS];
  uint32_t pad_;
} mr_klookup_t;

/* One dense layer y = W x + b, ReLU after it when relu is set. */
typedef struct mr_klayer {
  uint32_t in, out;
  uint32_t relu;
  uint32_t lanes;       /* multiply-adds per cycle the PE is built with */
  uint64_t w_off;       /* W^T [in][out] in the init image, floats */
  uint64_t b_off;       /* b [out] in the init image, floats */
} mr_klayer_t;

typedef struct mr_kgeom {
  uint32_t version;     /* MR_KGEOM_VERSION */
  uint32_t interaction; /* 0 = dot, 1 = cat (mr_interaction_t) */
  uint32_t num_logical;
  uint32_t num_dense;   /* bottom MLP input; 0 without a bottom MLP */
  uint32_t emb_width;   /* sum of the logical tables' widths */
  uint32_t emb_dim;     /* dot: the common width; cat: 0 */
  uint32_t bot_width;   /* bottom MLP output; 0 without */
  uint32_t top_in;      /* interaction output = top MLP input */
  uint32_t max_width;   /* widest activation vector anywhere */
  uint32_t num_banks;   /* kernel banks: each off-chip plan bank holding
                           tables, and each on-chip table on its own */
  uint32_t num_lookups; /* sorted by (bank, round) */
  uint32_t max_rounds;  /* most lookups any bank serves per sample */
  uint32_t num_bot, num_top;
  uint64_t init_words;  /* floats in the init image */
  uint64_t hash;        /* FNV-1a of everything above and below (0 while
                           computing it) */
  uint32_t bank_first[MR_K_MAX_BANKS]; /* first lookup of bank k */
  uint32_t bank_count[MR_K_MAX_BANKS]; /* lookups (rounds) of bank k */
  uint32_t bank_onchip[MR_K_MAX_BANKS]; /* 1: URAM, loaded from init */
  uint32_t bank_mem[MR_K_MAX_BANKS];   /* kind: 0 on-chip, 1 HBM, 2 DDR,
                                          3 host DRAM; index in bank_index */
  uint32_t bank_index[MR_K_MAX_BANKS]; /* HBM[i] / DDR[i] channel */
  uint32_t bank_plan[MR_K_MAX_BANKS];  /* index into the plan's banks */
  uint64_t bank_words[MR_K_MAX_BANKS]; /* floats in bank k's image */
  uint64_t bank_init_off[MR_K_MAX_BANKS]; /* on-chip: offset in init */
  mr_klookup_t lookups[MR_K_MAX_LOOKUPS];
  mr_klayer_t bot[MR_K_MAX_LAYERS];
  mr_klayer_t top[MR_K_MAX_LAYERS];
} mr_kgeom_t;

#define MR_KMEM_ONCHIP 0u
#define MR_KMEM_HBM 1u
#define MR_KMEM_DDR 2u
#define MR_KMEM_HOST 3u

#endif
