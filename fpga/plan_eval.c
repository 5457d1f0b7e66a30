/* Placing a candidate plan on a target and scoring it (plan_internal.h).
 *   1. on-chip: groups in order of footprint, smallest first, first fit over
 *      the on-chip banks (smallest first maximises how many fit);
 *   2. off-chip: for R = ceil(groups / banks), R + 1, ...: groups largest
 *      first, each into a bank with a free round: the least used, then the
 *      one left with the least room (best fit); a group no bank can hold is
 *      split by columns over the fewest banks that can (k parts of
 *      ceil(dim / k) columns). The first R that packs is the plan's rounds.
 * Score: R (rounds on the busiest off-chip bank), D (off-chip lookups, split
 * parts counted), X (extra bytes of products), T (groups), compared
 * lexicographically in the order the objective names. */
#include <stdlib.h>
#include <string.h>

#include "fpga/plan_internal.h"

int mr__plan_key_cmp(const void *pa, const void *pb) {
  const plan_key_t *x = pa, *y = pb;
  if (x->a != y->a) return x->a < y->a ? -1 : 1;
  if (x->b != y->b) return x->b < y->b ? -1 : 1;
  if (x->c != y->c) return x->c < y->c ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Negative, 0, positive as a is better, equal, worse than b. */
int mr__plan_score_cmp(const plan_ctx_t *c, const plan_score_t *a,
                       const plan_score_t *b) {
  if (a->ok != b->ok) return a->ok ? -1 : 1;
#define CMP_INT(x, y) \
  if ((x) != (y)) return (x) < (y) ? -1 : 1
  CMP_INT(a->R, b->R);
  if (c->obj == MR_PLAN_MIN_TABLES) {
    CMP_INT(a->T, b->T);
    CMP_INT(a->X, b->X);
    CMP_INT(a->D, b->D);
  } else {
    CMP_INT(a->D, b->D);
    CMP_INT(a->X, b->X);
    CMP_INT(a->T, b->T);
  }
#undef CMP_INT
  return 0;
}

/* Fills g from factors f (any order). -1 if a size overflows or the rows
 * exceed what an int64 id can address. */
int mr__plan_group_make(const plan_ctx_t *c, const uint32_t *f, uint32_t nf,
                        plan_group_t *g) {
  memset(g, 0, sizeof *g);
  g->nf = nf;
  for (uint32_t i = 0; i < nf; i++) g->f[i] = f[i];
  for (uint32_t i = 1; i < nf; i++) /* tiny insertion sort */
    for (uint32_t j = i; j > 0 && g->f[j - 1] > g->f[j]; j--) {
      uint32_t s = g->f[j];
      g->f[j] = g->f[j - 1];
      g->f[j - 1] = s;
    }
  g->rows = 1;
  uint64_t own = 0;
  for (uint32_t i = 0; i < nf; i++) {
    const mr_plan_tin_t *t = &c->t[g->f[i]];
    if (__builtin_mul_overflow(g->rows, t->rows, &g->rows)) return -1;
    g->row_bytes += (uint64_t)t->dim * t->elem_bytes;
    g->dim += t->dim;
    own += c->tbytes[g->f[i]];
  }
  if (g->rows > (uint64_t)INT64_MAX) return -1;
  if (__builtin_mul_overflow(g->rows, g->row_bytes, &g->bytes)) return -1;
  g->extra = g->bytes - own;
  return 0;
}

int mr__plan_combinable(const plan_ctx_t *c, const plan_group_t *a,
                        const plan_group_t *b) {
  if (a->nf + b->nf > MR_PLAN_MAX_FACTORS) return 0;
  size_t e = c->t[a->f[0]].elem_bytes;
  for (uint32_t i = 0; i < a->nf; i++)
    if (c->t[a->f[i]].pooled || c->t[a->f[i]].elem_bytes != e) return 0;
  for (uint32_t i = 0; i < b->nf; i++)
    if (c->t[b->f[i]].pooled || c->t[b->f[i]].elem_bytes != e) return 0;
  return 1;
}

int mr__plan_group_merge(const plan_ctx_t *c, const plan_group_t *a,
                         const plan_group_t *b, plan_group_t *out) {
  uint32_t f[MR_PLAN_MAX_FACTORS * 2];
  uint32_t nf = 0;
  for (uint32_t i = 0; i < a->nf; i++) f[nf++] = a->f[i];
  for (uint32_t i = 0; i < b->nf; i++) f[nf++] = b->f[i];
  return mr__plan_group_make(c, f, nf, out);
}

static int add_part(plan_ctx_t *c, uint32_t g, int bank, size_t c0, size_t c1) {
  if (c->np >= c->parts_cap) return -1;
  plan_part_t *p = &c->parts[c->np++];
  p->group = g;
  p->bank = bank;
  p->round = c->used[bank]++;
  p->c0 = c0;
  p->c1 = c1;
  return 0;
}

/* Which of two banks that can take a table gets it: the one with fewer
 * lookups so far (spreads the load), then the one left with the least room
 * (best fit keeps large banks for large tables), then the lower index. */
static int bank_before(const plan_ctx_t *c, size_t a, size_t b) {
  if (c->used[a] != c->used[b]) return c->used[a] < c->used[b];
  if (c->room[a] != c->room[b]) return c->room[a] < c->room[b];
  return a < b;
}

/* Off-chip packing of the groups listed in keys[0..n) with at most R
 * lookups per bank. 0 on success (parts recorded), -1 if it does not fit. */
static int pack(plan_ctx_t *c, const plan_group_t *gs, size_t n, int R) {
  c->np = 0;
  for (size_t b = 0; b < c->nb; b++) {
    c->used[b] = 0;
    c->room[b] = c->banks[b].onchip ? 0 : c->banks[b].g->capacity;
  }
  for (size_t i = 0; i < n; i++) {
    uint32_t gi = c->keys[i].idx;
    const plan_group_t *g = &gs[gi];
    int best = -1;
    for (size_t b = 0; b < c->nb; b++) {
      if (c->banks[b].onchip || c->used[b] >= R || c->room[b] < g->bytes)
        continue;
      if (best < 0 || bank_before(c, b, (size_t)best)) best = (int)b;
    }
    if (best >= 0) {
      c->room[best] -= g->bytes;
      if (add_part(c, gi, best, 0, g->dim)) return -1;
      continue;
    }
    /* Split by columns over the fewest banks that can take a part. */
    size_t elem = g->dim ? g->row_bytes / g->dim : 0;
    int placed = 0;
    for (size_t k = 2; k <= g->dim && k <= c->noff && !placed; k++) {
      size_t w = (g->dim + k - 1) / k;
      uint64_t pb;
      if (__builtin_mul_overflow(g->rows, (uint64_t)w * elem, &pb)) continue;
      size_t fit = 0;
      for (size_t b = 0; b < c->nb; b++)
        if (!c->banks[b].onchip && c->used[b] < R && c->room[b] >= pb) fit++;
      if (fit < k) continue;
      size_t col = 0;
      int start_np = (int)c->np;
      for (size_t p = 0; p < k; p++) {
        size_t cols = g->dim / k + (p < g->dim % k);
        uint64_t bytes = g->rows * (uint64_t)cols * elem;
        int bb = -1;
        for (size_t b = 0; b < c->nb; b++) {
          if (c->banks[b].onchip || c->used[b] >= R || c->room[b] < bytes)
            continue;
          int mine = 0; /* one part of a table per bank */
          for (size_t q = (size_t)start_np; q < c->np; q++)
            if (c->parts[q].bank == (int)b) mine = 1;
          if (mine) continue;
          if (bb < 0 || bank_before(c, b, (size_t)bb)) bb = (int)b;
        }
        if (bb < 0) return -1; /* cannot happen: fit >= k banks */
        c->room[bb] -= bytes;
        if (add_part(c, gi, bb, col, col + cols)) return -1;
        col += cols;
      }
      placed = 1;
    }
    if (!placed) return -1;
  }
  return 0;
}

/* Places groups gs[0..n) and scores them; the placement stays in c. */
void mr__plan_evaluate(plan_ctx_t *c, const plan_group_t *gs, size_t n,
                       plan_score_t *s) {
  memset(s, 0, sizeof *s);
  s->T = (int)n;
  for (size_t i = 0; i < n; i++) {
    s->X += gs[i].extra;
    c->g_bank[i] = -1;
  }
  /* On-chip, smallest footprint first. */
  size_t first_on = c->nb;
  for (size_t b = 0; b < c->nb; b++) {
    c->room[b] = c->banks[b].onchip ? c->banks[b].g->capacity : 0;
    if (c->banks[b].onchip && first_on == c->nb) first_on = b;
  }
  if (first_on < c->nb) {
    for (size_t i = 0; i < n; i++) {
      c->keys[i].a = mr_target_footprint(c->banks[first_on].g, gs[i].rows,
                                         gs[i].row_bytes);
      c->keys[i].b = gs[i].bytes;
      c->keys[i].c = gs[i].f[0];
      c->keys[i].idx = (uint32_t)i;
    }
    qsort(c->keys, n, sizeof *c->keys, mr__plan_key_cmp);
    for (size_t i = 0; i < n; i++) {
      uint32_t gi = c->keys[i].idx;
      for (size_t b = first_on; b < c->nb; b++) {
        if (!c->banks[b].onchip) continue;
        uint64_t fp =
            mr_target_footprint(c->banks[b].g, gs[gi].rows, gs[gi].row_bytes);
        if (fp <= c->room[b]) {
          c->room[b] -= fp;
          c->g_bank[gi] = (int)b;
          break;
        }
      }
    }
  }
  /* Off-chip, largest first. */
  size_t m = 0, most_parts = 0;
  uint64_t off_bytes = 0;
  for (size_t i = 0; i < n; i++) {
    if (c->g_bank[i] >= 0) continue;
    off_bytes += gs[i].bytes;
    most_parts += gs[i].dim < c->noff ? gs[i].dim : c->noff;
    c->keys[m].a = UINT64_MAX - gs[i].bytes;
    c->keys[m].b = 0;
    c->keys[m].c = gs[i].f[0];
    c->keys[m].idx = (uint32_t)i;
    m++;
  }
  qsort(c->keys, m, sizeof *c->keys, mr__plan_key_cmp);
  c->np = 0;
  if (m == 0) {
    s->ok = 1;
    return;
  }
  if (c->noff == 0 || off_bytes > c->off_cap) return;
  /* With as many rounds as parts could exist, rounds no longer bind: a
   * failure there is capacity, and more rounds would not help. */
  int R = (int)((m + c->noff - 1) / c->noff);
  int R_max = (int)(most_parts > (size_t)R ? most_parts : (size_t)R);
  for (; R <= R_max; R++)
    if (pack(c, gs, m, R) == 0) {
      s->ok = 1;
      s->D = (int)c->np;
      for (size_t b = 0; b < c->nb; b++)
        if (!c->banks[b].onchip && c->used[b] > s->R) s->R = c->used[b];
      return;
    }
}
