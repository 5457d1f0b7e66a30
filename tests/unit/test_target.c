/* Targets as data: the built-in cards, bank expansion and on-chip
 * footprints. */
#include "fpga/target.h"
#include "tests/unit/testutil.h"

Test(target, u280_has_uram_32_hbm_and_2_ddr_banks) {
  const mr_target_t *t = mr_target_find("u280");
  cr_assert_not_null(t);
  cr_assert_eq(mr_target_num_banks(t), 35);
  size_t hbm = 0, ddr = 0, on = 0;
  for (size_t i = 0; i < 35; i++) {
    int idx = -1;
    const mr_target_bank_t *b = mr_target_bank(t, i, &idx);
    cr_assert_not_null(b);
    hbm += b->kind == MR_BANK_HBM;
    ddr += b->kind == MR_BANK_DDR;
    on += b->kind == MR_BANK_ONCHIP;
    if (b->kind == MR_BANK_HBM) cr_assert_eq(b->capacity, 256ull << 20);
    if (b->kind == MR_BANK_DDR) cr_assert_eq(b->capacity, 16ull << 30);
  }
  cr_assert_eq(hbm, 32);
  cr_assert_eq(ddr, 2);
  cr_assert_eq(on, 1);
  cr_assert_null(mr_target_bank(t, 35, NULL));
  char name[32];
  mr_target_bank_name(t, 3, name, sizeof name);
  cr_assert_str_eq(name, "HBM[2]");
  mr_target_bank_name(t, 0, name, sizeof name);
  cr_assert_str_eq(name, "URAM");
  mr_target_bank_name(t, 34, name, sizeof name);
  cr_assert_str_eq(name, "DDR[1]");
}

Test(target, cpu_has_a_cache_and_one_dram) {
  const mr_target_t *t = mr_target_find("cpu");
  cr_assert_not_null(t);
  cr_assert_eq(mr_target_num_banks(t), 2);
  cr_assert_eq(mr_target_bank(t, 0, NULL)->kind, MR_BANK_ONCHIP);
  cr_assert_eq(mr_target_bank(t, 1, NULL)->kind, MR_BANK_DRAM);
  /* The measured costs are in the entry: a cached read is cheaper. */
  cr_assert(mr_target_bank(t, 0, NULL)->gather_ns <
            mr_target_bank(t, 1, NULL)->gather_ns);
}

Test(target, unknown_names_are_null) {
  cr_assert_null(mr_target_find("u250"));
  cr_assert_null(mr_target_find(NULL));
  for (size_t i = 0; mr_target_names[i]; i++)
    cr_assert_not_null(mr_target_find(mr_target_names[i]));
}

Test(target, uram_tables_take_whole_blocks) {
  const mr_target_bank_t *u = mr_target_bank(mr_target_find("u280"), 0, NULL);
  /* 100 x 4 fp32: 128 bits wide = 2 URAMs, 1 deep. */
  cr_assert_eq(mr_target_footprint(u, 100, 16), 2 * 36864ull);
  /* 4096 rows x 72 bits exactly one block; one more row, two. */
  cr_assert_eq(mr_target_footprint(u, 4096, 9), 36864ull);
  cr_assert_eq(mr_target_footprint(u, 4097, 9), 2 * 36864ull);
  /* 10000 x 8 fp32: 256 bits = 4 wide, 3 deep. */
  cr_assert_eq(mr_target_footprint(u, 10000, 32), 12 * 36864ull);
  /* Byte-granular banks: rows x bytes; overflow saturates. */
  const mr_target_bank_t *d = mr_target_bank(mr_target_find("cpu"), 1, NULL);
  cr_assert_eq(mr_target_footprint(d, 1000, 64), 64000ull);
  cr_assert_eq(mr_target_footprint(d, UINT64_MAX / 2, 64), UINT64_MAX);
}

Test(target, kind_names) {
  cr_assert_str_eq(mr_bank_kind_name(MR_BANK_HBM), "HBM");
  cr_assert_str_eq(mr_bank_kind_name(MR_BANK_ONCHIP), "on-chip");
  cr_assert_str_eq(mr_bank_kind_name(99), "?");
}
