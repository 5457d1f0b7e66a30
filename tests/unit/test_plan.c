/* The planner (fpga/plan.c): the invariants of every plan it returns on
 * random inputs and on the presets, optimality against an exhaustive search
 * on small inputs, column splits, errors, determinism, and the paper's
 * numbers for alibaba-47 and alibaba-98 on the U280. */
#include <math.h>

#include "fpga/modelgen.h"
#include "fpga/planner.h"
#include "tests/unit/testutil.h"

static uint64_t rng = 1;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* ---- checking a plan ---- */

static uint64_t tin_bytes(const mr_plan_tin_t *t) {
  return t->rows * t->dim * t->elem_bytes;
}

/* Every invariant a consumer of the plan relies on. */
static void check_plan(const mr_plan_t *p, const mr_plan_input_t *in,
                       const mr_target_t *tg, double budget) {
  size_t n = in->num_tables;
  cr_assert_eq(p->num_logical, n);
  cr_assert_eq(p->num_banks, mr_target_num_banks(tg));
  cr_assert_str_eq(p->target, tg->name);
  /* Columns: every logical column held exactly once. */
  size_t *off = calloc(n + 1, sizeof *off);
  for (size_t k = 0; k < n; k++) off[k + 1] = off[k] + in->tables[k].dim;
  unsigned *cover = calloc(off[n] + 1, sizeof *cover);
  uint64_t *bank_bytes = calloc(p->num_banks, sizeof *bank_bytes);
  uint64_t *bank_fp = calloc(p->num_banks, sizeof *bank_fp);
  int *bank_n = calloc(p->num_banks, sizeof *bank_n);
  unsigned char *round_seen = calloc(p->num_banks * (p->num_tables + 1), 1);
  uint64_t plan_bytes = 0, base = 0;
  int dram = 0;
  for (size_t k = 0; k < n; k++) base += tin_bytes(&in->tables[k]);
  for (size_t i = 0; i < p->num_tables; i++) {
    const mr_plan_table_t *t = &p->tables[i];
    cr_assert(t->num_factors >= 1 && t->num_factors <= 3, "table %zu", i);
    uint64_t rows = 1;
    size_t dim = 0, elem = in->tables[t->factors[0]].elem_bytes;
    for (size_t f = 0; f < t->num_factors; f++) {
      size_t k = t->factors[f];
      cr_assert_lt(k, n);
      for (size_t g = 0; g < f; g++) cr_assert_neq(t->factors[g], k);
      const mr_plan_tin_t *x = &in->tables[k];
      if (t->num_factors > 1) {
        cr_assert(!x->pooled, "pooled table %zu in a product", k);
        cr_assert_eq(x->elem_bytes, elem);
      }
      rows *= x->rows;
      dim += x->dim;
    }
    cr_assert_eq(t->rows, rows);
    cr_assert_eq(t->dim, dim);
    cr_assert(t->col_begin < t->col_end && t->col_end <= dim);
    size_t pos = 0;
    for (size_t f = 0; f < t->num_factors; f++) {
      size_t k = t->factors[f], d = in->tables[k].dim;
      for (size_t c = pos; c < pos + d; c++)
        if (c >= t->col_begin && c < t->col_end) cover[off[k] + c - pos]++;
      pos += d;
    }
    cr_assert(t->bank >= 0 && (size_t)t->bank < p->num_banks);
    const mr_target_bank_t *b = mr_target_bank(tg, (size_t)t->bank, NULL);
    uint64_t bytes = rows * (t->col_end - t->col_begin) * elem;
    bank_bytes[t->bank] += bytes;
    bank_fp[t->bank] +=
        mr_target_footprint(b, rows, (t->col_end - t->col_begin) * elem);
    bank_n[t->bank]++;
    plan_bytes += bytes;
    if (mr_bank_is_onchip(b->kind)) {
      cr_assert_eq(t->rounds, 0, "on-chip tables are read in parallel");
    } else {
      dram++;
      cr_assert(t->rounds >= 0 && (size_t)t->rounds < p->num_tables);
      unsigned char *seen =
          &round_seen[t->bank * (p->num_tables + 1) + t->rounds];
      cr_assert_eq(*seen, 0, "bank %d serves two tables in round %d", t->bank,
                   t->rounds);
      *seen = 1;
    }
    /* Parts of one split table live in different banks. */
    for (size_t j = 0; j < i; j++) {
      const mr_plan_table_t *u = &p->tables[j];
      if (u->num_factors == t->num_factors &&
          !memcmp(u->factors, t->factors, t->num_factors * sizeof *t->factors))
        cr_assert_neq(u->bank, t->bank, "two parts of a table in bank %d",
                      t->bank);
    }
  }
  for (size_t k = 0; k < n; k++)
    for (size_t c = 0; c < in->tables[k].dim; c++)
      cr_assert_eq(cover[off[k] + c], 1,
                   "column %zu of table %zu held %u times", c, k,
                   cover[off[k] + c]);
  int max_rounds = 0;
  for (size_t b = 0; b < p->num_banks; b++) {
    const mr_target_bank_t *g = mr_target_bank(tg, b, NULL);
    cr_assert_eq(p->banks[b].bytes, bank_bytes[b], "bank %zu bytes", b);
    cr_assert_eq(p->banks[b].kind, (int)g->kind);
    cr_assert_eq(p->banks[b].capacity, g->capacity);
    cr_assert_leq(bank_fp[b], g->capacity, "bank %zu over capacity", b);
    cr_assert_eq(p->banks[b].rounds, bank_n[b]);
    if (!mr_bank_is_onchip(g->kind)) {
      for (int r = 0; r < bank_n[b]; r++)
        cr_assert(round_seen[b * (p->num_tables + 1) + r], "bank %zu rounds",
                  b);
      if (bank_n[b] > max_rounds) max_rounds = bank_n[b];
    }
  }
  cr_assert_eq(p->max_dram_rounds, max_rounds);
  cr_assert_eq(p->lookups_per_sample, dram);
  cr_assert_eq(p->base_bytes, base);
  cr_assert_eq(p->plan_bytes, plan_bytes);
  cr_assert_leq(plan_bytes - base, (uint64_t)floor((double)base * budget),
                "products cost %llu bytes, the budget is %.4f of %llu",
                (unsigned long long)(plan_bytes - base), budget,
                (unsigned long long)base);
  if (base)
    cr_assert_float_eq(p->memory_overhead, (double)plan_bytes / base - 1,
                       1e-12);
  free(off);
  free(cover);
  free(bank_bytes);
  free(bank_fp);
  free(bank_n);
  free(round_seen);
}

static size_t count_products(const mr_plan_t *p) {
  size_t n = 0;
  for (size_t i = 0; i < p->num_tables; i++)
    n += p->tables[i].num_factors > 1 && p->tables[i].col_begin == 0;
  return n;
}

static size_t count_tables(const mr_plan_t *p) {
  size_t n = 0;
  for (size_t i = 0; i < p->num_tables; i++) n += p->tables[i].col_begin == 0;
  return n;
}

static mr_plan_t build(const mr_plan_input_t *in, const mr_target_t *t,
                       mr_plan_objective_t obj, double budget, size_t nodes) {
  mr_plan_opts_t o;
  mr_plan_opts_default(&o);
  o.objective = obj;
  o.budget = budget;
  o.max_nodes = nodes;
  mr_plan_t p;
  mr_err_t err = {0};
  int rc = mr_plan_build(&p, in, t, &o, &err);
  cr_assert_eq(rc, 0, "plan build: %s", err.msg);
  check_plan(&p, in, t, budget);
  return p;
}

static void preset_input(mr_plan_input_t *in, const char *name) {
  mr_gen_spec_t spec;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_preset(&spec, name, 0, &err), 0, "%s", err.msg);
  cr_assert_eq(mr_plan_input_from_spec(in, &spec, &err), 0, "%s", err.msg);
}

/* A small card for tests: 32 KiB on-chip in 1 KiB x 8-bit blocks, four
 * 64 KiB banks. */
static const mr_target_bank_t tiny_banks[] = {
    {"SRAM", MR_BANK_ONCHIP, 1, 32 << 10, 1024, 8, 0, 0, 0},
    {"HBM", MR_BANK_HBM, 4, 64 << 10, 0, 0, 0, 0, 0},
};
static const mr_target_t tiny = {"tiny", "test card", 2, tiny_banks};

/* ---- invariants ---- */

static void random_input(mr_plan_input_t *in, size_t n) {
  in->num_tables = n;
  in->tables = calloc(n ? n : 1, sizeof *in->tables);
  static const size_t dims[] = {1, 2, 3, 4, 8, 16, 32};
  for (size_t k = 0; k < n; k++) {
    uint64_t scale = 1;
    for (uint64_t e = rnd() % 7; e > 0; e--) scale *= 10;
    in->tables[k].rows = 1 + rnd() % scale;
    in->tables[k].dim = dims[rnd() % 7];
    in->tables[k].elem_bytes = rnd() % 8 ? 4 : 2;
    in->tables[k].pooled = rnd() % 8 == 0;
  }
}

Test(plan, invariants_hold_on_random_inputs) {
  static const double budgets[] = {0, 0.05, 0.5};
  const mr_target_t *targets[] = {mr_target_find("u280"), mr_target_find("cpu"),
                                  &tiny};
  for (uint64_t seed = 1; seed <= 12; seed++) {
    rng = seed * 7919;
    mr_plan_input_t in;
    random_input(&in, 1 + rnd() % 40);
    for (size_t t = 0; t < 3; t++)
      for (int obj = 0; obj < 2; obj++)
        for (size_t b = 0; b < 3; b++) {
          mr_plan_opts_t o;
          mr_plan_opts_default(&o);
          o.objective = (mr_plan_objective_t)obj;
          o.budget = budgets[b];
          o.max_nodes = 500;
          mr_plan_t p;
          mr_err_t err = {0};
          int rc = mr_plan_build(&p, &in, targets[t], &o, &err);
          if (targets[t] == &tiny && rc == MR_ENOTSUP) continue; /* too big */
          cr_assert_eq(rc, 0, "seed %llu target %s: %s",
                       (unsigned long long)seed, targets[t]->name, err.msg);
          check_plan(&p, &in, targets[t], budgets[b]);
          if (budgets[b] == 0) cr_assert_eq(count_products(&p), 0);
          mr_plan_free(&p);
        }
    mr_plan_input_free(&in);
  }
}

Test(plan, presets_plan_within_invariants_on_both_targets) {
  const char *presets[] = {"criteo", "alibaba-47", "alibaba-98"};
  for (size_t i = 0; i < 3; i++) {
    mr_plan_input_t in;
    preset_input(&in, presets[i]);
    for (size_t t = 0; mr_target_names[t]; t++) {
      mr_plan_t p = build(&in, mr_target_find(mr_target_names[t]),
                          MR_PLAN_MIN_DRAM, 0.05, 2000);
      mr_plan_free(&p);
    }
    mr_plan_input_free(&in);
  }
}

Test(plan, same_input_same_plan) {
  mr_plan_input_t in;
  preset_input(&in, "alibaba-98");
  for (int obj = 0; obj < 2; obj++) {
    mr_plan_t a = build(&in, mr_target_find("u280"), obj, 0.05, 3000);
    mr_plan_t b = build(&in, mr_target_find("u280"), obj, 0.05, 3000);
    cr_assert_eq(a.num_tables, b.num_tables);
    cr_assert_eq(memcmp(a.tables, b.tables, a.num_tables * sizeof *a.tables),
                 0);
    cr_assert_eq(a.num_banks, b.num_banks);
    cr_assert_eq(memcmp(a.banks, b.banks, a.num_banks * sizeof *a.banks), 0);
    cr_assert_eq(a.plan_bytes, b.plan_bytes);
    mr_plan_free(&a);
    mr_plan_free(&b);
  }
  mr_plan_input_free(&in);
}

Test(plan, no_products_option_combines_nothing) {
  mr_plan_input_t in;
  preset_input(&in, "alibaba-47");
  mr_plan_opts_t o;
  mr_plan_opts_default(&o);
  o.no_products = 1;
  o.objective = MR_PLAN_MIN_TABLES;
  mr_plan_t p;
  mr_err_t err = {0};
  cr_assert_eq(mr_plan_build(&p, &in, mr_target_find("u280"), &o, &err), 0);
  check_plan(&p, &in, mr_target_find("u280"), 0);
  cr_assert_eq(count_products(&p), 0);
  cr_assert_eq(p.num_tables, 47);
  mr_plan_free(&p);
  mr_plan_input_free(&in);
}

Test(plan, pooled_tables_are_never_combined) {
  /* Tiny tables a product would love, all pooled but two. */
  mr_plan_input_t in = {8, calloc(8, sizeof(mr_plan_tin_t))};
  for (size_t k = 0; k < 8; k++)
    in.tables[k] = (mr_plan_tin_t){10 + k, 4, 4, k >= 2};
  mr_plan_t p = build(&in, &tiny, MR_PLAN_MIN_TABLES, 10.0, 0);
  cr_assert_eq(count_products(&p), 1, "only tables 0 and 1 may combine");
  for (size_t i = 0; i < p.num_tables; i++)
    if (p.tables[i].num_factors > 1) {
      cr_assert_eq(p.tables[i].factors[0], 0);
      cr_assert_eq(p.tables[i].factors[1], 1);
    }
  mr_plan_free(&p);
  mr_plan_input_free(&in);
}

/* ---- splits ---- */

Test(plan, splits_a_table_too_large_for_any_bank_by_columns) {
  /* 3000 x 16 fp32 = 187.5 KiB; tiny's banks hold 64 KiB each. */
  mr_plan_input_t in = {2, calloc(2, sizeof(mr_plan_tin_t))};
  in.tables[0] = (mr_plan_tin_t){3000, 16, 4, 0};
  in.tables[1] = (mr_plan_tin_t){5, 2, 4, 0};
  mr_plan_t p = build(&in, &tiny, MR_PLAN_MIN_DRAM, 0.05, 0);
  size_t parts = 0;
  for (size_t i = 0; i < p.num_tables; i++)
    if (p.tables[i].factors[0] == 0 && p.tables[i].num_factors == 1) parts++;
  cr_assert_eq(parts, 4, "187.5 KiB needs four 64 KiB banks, got %zu parts",
               parts);
  cr_assert_eq(p.max_dram_rounds, 1);
  mr_plan_free(&p);

  /* On the U280 a 20 GB table is larger than a DDR channel: split too. */
  in.tables[0] = (mr_plan_tin_t){40000000, 128, 4, 0};
  p = build(&in, mr_target_find("u280"), MR_PLAN_MIN_DRAM, 0.05, 0);
  parts = 0;
  for (size_t i = 0; i < p.num_tables; i++)
    if (p.tables[i].factors[0] == 0 && p.tables[i].num_factors == 1) parts++;
  cr_assert_geq(parts, 2);
  mr_plan_free(&p);
  mr_plan_input_free(&in);
}

/* ---- optimality against brute force ---- */

typedef struct bf {
  const mr_plan_input_t *in;
  uint64_t budget, onchip;
  int nbanks;
  mr_plan_objective_t obj;
  int best[4]; /* R, D, X, T in the objective's order of the key */
  uint64_t bestX;
  int found;
  int owner[8];
  size_t ng;
  uint64_t gbytes[8], gextra[8];
} bf_t;

static int u64cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void bf_score(bf_t *s) {
  uint64_t X = 0, sorted[8];
  for (size_t g = 0; g < s->ng; g++) {
    X += s->gextra[g];
    sorted[g] = s->gbytes[g];
  }
  if (X > s->budget) return;
  qsort(sorted, s->ng, sizeof *sorted, u64cmp);
  uint64_t used = 0;
  int on = 0;
  for (size_t g = 0; g < s->ng && used + sorted[g] <= s->onchip; g++) {
    used += sorted[g];
    on++;
  }
  int T = (int)s->ng, D = T - on, R = (D + s->nbanks - 1) / s->nbanks;
  int key[3] = {R, s->obj == MR_PLAN_MIN_DRAM ? D : T,
                s->obj == MR_PLAN_MIN_DRAM ? T : D};
  /* Compare (R, D|T, X, T|D). */
  int better = !s->found;
  if (!better) {
    if (key[0] != s->best[0])
      better = key[0] < s->best[0];
    else if (key[1] != s->best[1])
      better = key[1] < s->best[1];
    else if (X != s->bestX)
      better = X < s->bestX;
    else
      better = key[2] < s->best[2];
  }
  if (better) {
    s->found = 1;
    memcpy(s->best, key, sizeof key);
    s->bestX = X;
  }
}

/* Every partition of the tables into one-hot groups of at most three. */
static void bf_rec(bf_t *s, size_t first) {
  size_t n = s->in->num_tables;
  while (first < n && s->owner[first] >= 0) first++;
  if (first == n) {
    bf_score(s);
    return;
  }
  const mr_plan_tin_t *t = s->in->tables;
  size_t g = s->ng++;
  s->owner[first] = (int)g;
  uint64_t own0 = tin_bytes(&t[first]);
  /* alone */
  s->gbytes[g] = own0;
  s->gextra[g] = 0;
  bf_rec(s, first + 1);
  for (size_t a = first + 1; a < n; a++) {
    if (s->owner[a] >= 0) continue;
    s->owner[a] = (int)g;
    uint64_t rows = t[first].rows * t[a].rows;
    uint64_t w = (t[first].dim + t[a].dim) * 4;
    s->gbytes[g] = rows * w;
    s->gextra[g] = rows * w - own0 - tin_bytes(&t[a]);
    bf_rec(s, first + 1);
    for (size_t b = a + 1; b < n; b++) {
      if (s->owner[b] >= 0) continue;
      s->owner[b] = (int)g;
      uint64_t r3 = rows * t[b].rows, w3 = w + t[b].dim * 4;
      s->gbytes[g] = r3 * w3;
      s->gextra[g] = r3 * w3 - own0 - tin_bytes(&t[a]) - tin_bytes(&t[b]);
      bf_rec(s, first + 1);
      s->owner[b] = -1;
    }
    s->owner[a] = -1;
  }
  s->owner[first] = -1;
  s->ng--;
}

Test(plan, matches_exhaustive_search_on_small_inputs) {
  for (uint64_t seed = 1; seed <= 40; seed++) {
    rng = seed * 104729;
    size_t n = 2 + rnd() % 6;
    mr_plan_input_t in = {n, calloc(n, sizeof(mr_plan_tin_t))};
    uint64_t base = 0;
    for (size_t k = 0; k < n; k++) {
      in.tables[k] = (mr_plan_tin_t){1 + rnd() % 40, 1 + rnd() % 6, 4, 0};
      base += tin_bytes(&in.tables[k]);
    }
    /* A byte-granular on-chip bank holding part of the tables, and two
     * off-chip banks with room for anything. */
    mr_target_bank_t banks[] = {
        {"ON", MR_BANK_ONCHIP, 1, rnd() % (base + 1), 0, 0, 0, 0, 0},
        {"OFF", MR_BANK_HBM, 2, 1ull << 40, 0, 0, 0, 0, 0}};
    mr_target_t tg = {"bf", "brute force", 2, banks};
    double budget = (double)(rnd() % 200) / 100.0;
    for (int obj = 0; obj < 2; obj++) {
      mr_plan_t p = build(&in, &tg, obj, budget, 1000000);
      bf_t s = {.in = &in,
                .budget = (uint64_t)floor((double)base * budget),
                .onchip = banks[0].capacity,
                .nbanks = 2,
                .obj = obj};
      for (size_t k = 0; k < 8; k++) s.owner[k] = -1;
      bf_rec(&s, 0);
      cr_assert(s.found);
      int T = (int)count_tables(&p), D = p.lookups_per_sample;
      uint64_t X = p.plan_bytes - p.base_bytes;
      int got[3] = {p.max_dram_rounds, obj == MR_PLAN_MIN_DRAM ? D : T,
                    obj == MR_PLAN_MIN_DRAM ? T : D};
      cr_assert(got[0] == s.best[0] && got[1] == s.best[1] && X == s.bestX &&
                    got[2] == s.best[2],
                "seed %llu obj %d: planner (%d, %d, %llu, %d), optimum (%d, "
                "%d, %llu, %d)",
                (unsigned long long)seed, obj, got[0], got[1],
                (unsigned long long)X, got[2], s.best[0], s.best[1],
                (unsigned long long)s.bestX, s.best[2]);
      mr_plan_free(&p);
    }
    mr_plan_input_free(&in);
  }
}

/* ---- errors ---- */

Test(plan, rejects_bad_input_and_tables_that_do_not_fit) {
  mr_plan_input_t in = {1, calloc(1, sizeof(mr_plan_tin_t))};
  in.tables[0] = (mr_plan_tin_t){0, 4, 4, 0};
  mr_plan_t p;
  mr_err_t err = {0};
  cr_assert_eq(mr_plan_build(&p, &in, &tiny, NULL, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "table 0"), "%s", err.msg);
  cr_assert_eq(mr_plan_build(&p, NULL, &tiny, NULL, &err), MR_EINVAL);
  cr_assert_eq(mr_plan_build(&p, &in, NULL, NULL, &err), MR_EINVAL);
  in.tables[0] = (mr_plan_tin_t){10, 4, 4, 0};
  mr_plan_opts_t o;
  mr_plan_opts_default(&o);
  o.budget = NAN;
  cr_assert_eq(mr_plan_build(&p, &in, &tiny, &o, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "budget"), "%s", err.msg);
  /* 1M x 64 fp32 = 256 MiB: more than tiny's 288 KiB. */
  in.tables[0] = (mr_plan_tin_t){1000000, 64, 4, 0};
  cr_assert_eq(mr_plan_build(&p, &in, &tiny, NULL, &err), MR_ENOTSUP);
  cr_assert(strstr(err.msg, "do not fit"), "%s", err.msg);
  mr_plan_input_free(&in);
  /* No tables: an empty plan. */
  mr_plan_input_t none = {0, NULL};
  cr_assert_eq(mr_plan_build(&p, &none, &tiny, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(p.num_tables, 0);
  cr_assert_eq(p.lookups_per_sample, 0);
  mr_plan_free(&p);
}

/* ---- the paper's numbers (MicroRec, MLSys 2021) ---- */

Test(plan, alibaba_47_meets_the_paper_on_u280) {
  mr_plan_input_t in;
  preset_input(&in, "alibaba-47");
  const mr_target_t *u = mr_target_find("u280");
  /* Default objective: every DRAM bank at one round, fewer DRAM lookups
   * than the paper's 42 tables, within its 3.2%. */
  mr_plan_t p = build(&in, u, MR_PLAN_MIN_DRAM, 0.05, 0);
  cr_assert_eq(p.max_dram_rounds, 1);
  cr_assert_leq(p.lookups_per_sample, 42);
  cr_assert_leq(p.memory_overhead, 0.032);
  mr_plan_free(&p);
  /* The paper's count: at most 42 tables within 3.2% more memory. */
  p = build(&in, u, MR_PLAN_MIN_TABLES, 0.032, 0);
  cr_assert_leq(count_tables(&p), 42, "%zu tables", count_tables(&p));
  cr_assert_eq(p.max_dram_rounds, 1);
  cr_assert_leq(p.memory_overhead, 0.032);
  mr_plan_free(&p);
  mr_plan_input_free(&in);
}

Test(plan, alibaba_98_meets_the_paper_on_u280) {
  mr_plan_input_t in;
  preset_input(&in, "alibaba-98");
  const mr_target_t *u = mr_target_find("u280");
  mr_plan_t p = build(&in, u, MR_PLAN_MIN_DRAM, 0.05, 0);
  cr_assert_leq(p.max_dram_rounds, 2);
  cr_assert_leq(p.lookups_per_sample, 84);
  cr_assert_leq(p.memory_overhead, 0.019);
  mr_plan_free(&p);
  p = build(&in, u, MR_PLAN_MIN_TABLES, 0.019, 5000);
  cr_assert_leq(count_tables(&p), 84, "%zu tables", count_tables(&p));
  cr_assert_leq(p.max_dram_rounds, 2);
  cr_assert_leq(p.memory_overhead, 0.019);
  mr_plan_free(&p);
  mr_plan_input_free(&in);
}

Test(plan, input_from_a_model_is_fp32_one_hot) {
  mr_table_t tabs[2] = {{7, 3, NULL}, {9, 5, NULL}};
  mr_model_t m = {.num_tables = 2, .tables = tabs};
  mr_plan_input_t in;
  mr_err_t err = {0};
  cr_assert_eq(mr_plan_input_from_model(&in, &m, &err), 0);
  cr_assert_eq(in.num_tables, 2);
  cr_assert_eq(in.tables[1].rows, 9);
  cr_assert_eq(in.tables[1].dim, 5);
  cr_assert_eq(in.tables[1].elem_bytes, 4);
  cr_assert_eq(in.tables[1].pooled, 0);
  mr_plan_input_free(&in);
  cr_assert_eq(mr_plan_for_model(&(mr_plan_t){0}, &m, "u281", NULL, &err),
               MR_EINVAL);
  cr_assert(strstr(err.msg, "u281"), "%s", err.msg);
}
