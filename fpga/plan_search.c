/* The planner's search (plan_internal.h). The paper's greedy (merge the
 * two smallest tables) and an off-chip greedy give starting plans; then a
 * depth-first branch and bound over "merge types" (a multiset of 2-3
 * classes of equal-shaped tables, so identical tables are not enumerated
 * twice), cheapest extra bytes per saved lookup first, choosing how many of
 * each type to make. Bound: extra bytes only grow; the tables the remaining
 * types can save are at most a fractional knapsack of the budget left; at
 * most L groups (the L smallest tables' worth) fit on-chip. Last, a
 * best-improvement local search over the counts (remove up to two products,
 * add up to two) from the DFS's best and from no products. The DFS and the
 * local search each stop after max_nodes evaluations: deterministic, and
 * exhaustive on small inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fpga/plan_internal.h"

typedef struct tclass {
  size_t first; /* into members[] */
  size_t count;
} tclass_t;

typedef struct mtype {
  uint32_t m;                        /* tables in the product, 2 or 3 */
  uint32_t cls[MR_PLAN_MAX_FACTORS]; /* classes, ascending */
  uint64_t x;                        /* extra bytes */
  uint32_t s;                        /* lookups saved: m - 1 */
} mtype_t;

#define MR_PLAN_MAX_TYPES 1024      /* types the search branches on */
#define MR_PLAN_MAX_ENUM (1u << 20) /* types enumerated at most */

typedef struct search {
  plan_ctx_t *c;
  size_t ncls;
  tclass_t *cls;
  uint32_t *members; /* logical tables by class */
  size_t nty, ty_cap;
  mtype_t *ty;
  uint32_t *cnt;    /* products of each type */
  size_t *avail;    /* tables of each class not yet in a product */
  size_t *taken;    /* scratch for materialise */
  plan_group_t *gs; /* scratch partition */
  uint64_t left;    /* budget left */
  size_t nodes, max_nodes;
  plan_score_t best;
  plan_group_t *best_gs;
  size_t best_n;
  uint32_t *dfs_best; /* counts of the best plan the DFS found */
  plan_score_t dfs_score;
} search_t;

static int type_cmp(const void *pa, const void *pb) {
  const mtype_t *a = pa, *b = pb;
  /* x / s ascending, compared exactly: a.x * b.s vs b.x * a.s */
  unsigned __int128 l = (unsigned __int128)a->x * b->s;
  unsigned __int128 r = (unsigned __int128)b->x * a->s;
  if (l != r) return l < r ? -1 : 1;
  if (a->m != b->m) return a->m > b->m ? -1 : 1;
  for (uint32_t i = 0; i < MR_PLAN_MAX_FACTORS; i++)
    if (a->cls[i] != b->cls[i]) return a->cls[i] < b->cls[i] ? -1 : 1;
  return 0;
}

static int keep_if_better(search_t *S, const plan_group_t *gs, size_t n,
                          const plan_score_t *sc) {
  if (mr__plan_score_cmp(S->c, sc, &S->best) >= 0) return 0;
  S->best = *sc;
  memcpy(S->best_gs, gs, n * sizeof *gs);
  S->best_n = n;
  return 1;
}

/* The partition the current counts describe: products take the lowest
 * numbered free tables of their classes; the rest stay single. */
static size_t materialise(search_t *S) {
  size_t n = 0;
  for (size_t k = 0; k < S->ncls; k++) S->taken[k] = 0;
  for (size_t i = 0; i < S->nty; i++)
    for (uint32_t r = 0; r < S->cnt[i]; r++) {
      uint32_t f[MR_PLAN_MAX_FACTORS];
      for (uint32_t j = 0; j < S->ty[i].m; j++) {
        const tclass_t *k = &S->cls[S->ty[i].cls[j]];
        f[j] = S->members[k->first + S->taken[S->ty[i].cls[j]]++];
      }
      mr__plan_group_make(S->c, f, S->ty[i].m,
                          &S->gs[n++]); /* checked at enumeration */
    }
  for (size_t k = 0; k < S->ncls; k++)
    for (size_t j = S->taken[k]; j < S->cls[k].count; j++) {
      uint32_t f = S->members[S->cls[k].first + j];
      mr__plan_group_make(S->c, &f, 1, &S->gs[n++]);
    }
  return n;
}

/* How many more lookups the types from t on could save with the budget
 * left: a fractional knapsack that ignores types sharing tables. */
static double savings_bound(const search_t *S, size_t t) {
  double left = (double)S->left, saved = 0;
  size_t tables = 0;
  for (size_t k = 0; k < S->ncls; k++) tables += S->avail[k];
  for (size_t i = t; i < S->nty && left >= 0; i++) {
    const mtype_t *y = &S->ty[i];
    size_t cap = SIZE_MAX;
    for (uint32_t j = 0; j < y->m; j++) {
      size_t mult = 0;
      for (uint32_t q = 0; q < y->m; q++) mult += y->cls[q] == y->cls[j];
      size_t a = S->avail[y->cls[j]] / mult;
      if (a < cap) cap = a;
    }
    if (cap == 0) continue;
    double take = (double)cap;
    if (y->x > 0 && take * (double)y->x > left) take = left / (double)y->x;
    saved += take * y->s;
    left -= take * (double)y->x;
  }
  double most = (double)tables * 2.0 / 3.0;
  return saved < most ? saved : most;
}

static int could_beat(const search_t *S, size_t t, const plan_score_t *cur) {
  double sv = savings_bound(S, t);
  if (sv < 1.0) return 0; /* no further product fits: nothing new below */
  plan_score_t lb = {1, 0, 0, 0, cur->X};
  lb.T = cur->T - (int)floor(sv + 1e-9);
  if (lb.T < 1) lb.T = 1;
  lb.D = lb.T - S->c->L;
  if (lb.D < 0) lb.D = 0;
  lb.R = lb.D > 0 ? (int)((lb.D + S->c->noff - 1) / S->c->noff) : 0;
  return mr__plan_score_cmp(S->c, &lb, &S->best) < 0;
}

static void dfs(search_t *S, size_t t, const plan_score_t *cur) {
  if (t >= S->nty || S->nodes >= S->max_nodes) return;
  const mtype_t *y = &S->ty[t];
  size_t kmax = SIZE_MAX;
  for (uint32_t j = 0; j < y->m; j++) {
    size_t mult = 0;
    for (uint32_t q = 0; q < y->m; q++) mult += y->cls[q] == y->cls[j];
    size_t a = S->avail[y->cls[j]] / mult;
    if (a < kmax) kmax = a;
  }
  if (y->x > 0 && kmax > S->left / y->x) kmax = (size_t)(S->left / y->x);
  for (size_t k = kmax + 1; k-- > 0;) {
    if (S->nodes >= S->max_nodes) return;
    plan_score_t sc = *cur;
    if (k > 0) {
      S->cnt[t] = (uint32_t)k;
      for (uint32_t j = 0; j < y->m; j++) S->avail[y->cls[j]] -= k;
      S->left -= k * y->x;
      size_t n = materialise(S);
      mr__plan_evaluate(S->c, S->gs, n, &sc);
      S->nodes++;
      keep_if_better(S, S->gs, n, &sc);
      if (mr__plan_score_cmp(S->c, &sc, &S->dfs_score) < 0) {
        S->dfs_score = sc;
        memcpy(S->dfs_best, S->cnt, S->nty * sizeof *S->cnt);
      }
    }
    /* k = 0 leaves the state as the caller bounded it: no new bound. */
    if (k == 0 || could_beat(S, t + 1, &sc)) dfs(S, t + 1, &sc);
    if (k > 0) {
      S->cnt[t] = 0;
      for (uint32_t j = 0; j < y->m; j++) S->avail[y->cls[j]] += k;
      S->left += k * y->x;
    }
  }
}

/* ---- local search over the counts of each product type ---------------- */

#define MR_PLAN_LS_TYPES 24

/* Sets avail and left from cnt; -1 if the counts are infeasible. */
static int counts_apply(search_t *S) {
  for (size_t k = 0; k < S->ncls; k++) S->avail[k] = S->cls[k].count;
  uint64_t cost = 0;
  for (size_t i = 0; i < S->nty; i++) {
    const mtype_t *y = &S->ty[i];
    for (uint32_t j = 0; j < y->m; j++) {
      if (S->avail[y->cls[j]] < S->cnt[i]) return -1;
      S->avail[y->cls[j]] -= S->cnt[i];
    }
    cost += (uint64_t)S->cnt[i] * y->x;
  }
  if (cost > S->c->budget) return -1;
  S->left = S->c->budget - cost;
  return 0;
}

/* A move: remove products of types rm[0..nr), add products of ad[0..na). */
typedef struct move {
  int nr, na;
  size_t rm[2], ad[2];
} move_t;

/* Applies mv (sign +1) or undoes it (-1) on cnt, avail and left. Returns -1
 * (and changes nothing) when applying it is infeasible. */
static int move_do(search_t *S, const move_t *mv, int sign) {
  int64_t dcls[2 * 2 * MR_PLAN_MAX_FACTORS];
  uint32_t kcls[2 * 2 * MR_PLAN_MAX_FACTORS];
  int nk = 0;
  int64_t dcost = 0;
  for (int pass = 0; pass < 2; pass++) {
    int cnt = pass ? mv->na : mv->nr;
    const size_t *ts = pass ? mv->ad : mv->rm;
    int64_t d = pass ? -1 : 1; /* tables given back (+) or taken (-) */
    for (int i = 0; i < cnt; i++) {
      const mtype_t *y = &S->ty[ts[i]];
      dcost -= d * (int64_t)y->x;
      for (uint32_t j = 0; j < y->m; j++) {
        int f = -1;
        for (int q = 0; q < nk; q++)
          if (kcls[q] == y->cls[j]) f = q;
        if (f < 0) {
          f = nk++;
          kcls[f] = y->cls[j];
          dcls[f] = 0;
        }
        dcls[f] += d;
      }
    }
  }
  if (sign > 0) {
    for (int i = 0; i < mv->nr; i++) {
      uint32_t need = 1 + (mv->nr == 2 && i == 1 && mv->rm[0] == mv->rm[1]);
      if (S->cnt[mv->rm[i]] < need) return -1;
    }
    for (int q = 0; q < nk; q++)
      if ((int64_t)S->avail[kcls[q]] + dcls[q] < 0) return -1;
    if (dcost > 0 && (uint64_t)dcost > S->left) return -1;
  }
  for (int i = 0; i < mv->nr; i++) S->cnt[mv->rm[i]] -= (uint32_t)sign;
  for (int i = 0; i < mv->na; i++) S->cnt[mv->ad[i]] += (uint32_t)sign;
  for (int q = 0; q < nk; q++)
    S->avail[kcls[q]] = (size_t)((int64_t)S->avail[kcls[q]] + sign * dcls[q]);
  S->left = (uint64_t)((int64_t)S->left - sign * dcost);
  return 0;
}

/* Whether a move's change of tables dT and bytes dX is worth placing. */
static int move_promising(const search_t *S, int dT, int64_t dX) {
  if (S->c->obj == MR_PLAN_MIN_TABLES) return dT < 0 || (dT == 0 && dX < 0);
  return dT < 0 || dX < 0;
}

static void move_scan(search_t *S, move_t *mv, const plan_score_t *cur,
                      plan_score_t *bs, move_t *bm, int *found) {
  int dT = 0;
  int64_t dX = 0;
  for (int i = 0; i < mv->nr; i++) {
    dT += (int)S->ty[mv->rm[i]].s;
    dX -= (int64_t)S->ty[mv->rm[i]].x;
  }
  for (int i = 0; i < mv->na; i++) {
    dT -= (int)S->ty[mv->ad[i]].s;
    dX += (int64_t)S->ty[mv->ad[i]].x;
  }
  if (!move_promising(S, dT, dX)) return;
  if (S->nodes >= S->max_nodes || move_do(S, mv, +1)) return;
  plan_score_t sc;
  size_t n = materialise(S);
  mr__plan_evaluate(S->c, S->gs, n, &sc);
  S->nodes++;
  if (mr__plan_score_cmp(S->c, &sc, bs) < 0 &&
      mr__plan_score_cmp(S->c, &sc, cur) < 0) {
    *bs = sc;
    *bm = *mv;
    *found = 1;
  }
  move_do(S, mv, -1);
}

/* Best-improvement hill climbing from the counts in S->cnt: remove up to
 * two products and add up to two (not both two), over the cheapest
 * MR_PLAN_LS_TYPES types. */
static void local_search(search_t *S) {
  if (counts_apply(S)) return;
  size_t M = S->nty < MR_PLAN_LS_TYPES ? S->nty : MR_PLAN_LS_TYPES;
  plan_score_t cur;
  size_t n = materialise(S);
  mr__plan_evaluate(S->c, S->gs, n, &cur);
  keep_if_better(S, S->gs, n, &cur);
  for (;;) {
    plan_score_t bs = cur;
    move_t bm;
    int found = 0;
    memset(&bm, 0, sizeof bm);
    /* Removals: none, one, two; additions likewise. */
    for (int nr = 0; nr <= 2; nr++)
      for (size_t r0 = 0; r0 < (nr ? M : 1); r0++)
        for (size_t r1 = (nr == 2 ? r0 : 0); r1 < (nr == 2 ? M : 1); r1++) {
          if (nr >= 1 && S->cnt[r0] == 0) continue;
          for (int na = 0; na <= 2 - (nr == 2); na++) {
            if (nr + na == 0) continue;
            for (size_t a0 = 0; a0 < (na ? M : 1); a0++)
              for (size_t a1 = (na == 2 ? a0 : 0); a1 < (na == 2 ? M : 1);
                   a1++) {
                move_t mv = {nr, na, {r0, r1}, {a0, a1}};
                int clash = 0; /* adding a type just removed is no move */
                for (int i = 0; i < nr; i++)
                  for (int j = 0; j < na; j++) clash |= mv.rm[i] == mv.ad[j];
                if (!clash) move_scan(S, &mv, &cur, &bs, &bm, &found);
              }
          }
        }
    if (!found || move_do(S, &bm, +1)) return;
    cur = bs;
    n = materialise(S);
    keep_if_better(S, S->gs, n, &cur);
    if (S->nodes >= S->max_nodes) return;
  }
}

static int tin_cmp_ctx_sort(const void *pa, const void *pb, void *arg) {
  const plan_ctx_t *c = arg;
  uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
  const mr_plan_tin_t *x = &c->t[a], *y = &c->t[b];
  if (x->pooled != y->pooled) return x->pooled < y->pooled ? -1 : 1;
  if (x->elem_bytes != y->elem_bytes)
    return x->elem_bytes < y->elem_bytes ? -1 : 1;
  if (c->tbytes[a] != c->tbytes[b]) return c->tbytes[a] < c->tbytes[b] ? -1 : 1;
  if (x->rows != y->rows) return x->rows < y->rows ? -1 : 1;
  if (x->dim != y->dim) return x->dim < y->dim ? -1 : 1;
  return a < b ? -1 : a > b;
}

static int same_shape(const plan_ctx_t *c, uint32_t a, uint32_t b) {
  const mr_plan_tin_t *x = &c->t[a], *y = &c->t[b];
  return x->pooled == y->pooled && x->elem_bytes == y->elem_bytes &&
         x->rows == y->rows && x->dim == y->dim;
}

/* Appends the type for classes k[0..m) if its product is affordable. */
static int type_try(search_t *S, const uint32_t *k, uint32_t m) {
  for (uint32_t j = 0; j < m; j++) {
    size_t mult = 0;
    for (uint32_t q = 0; q < m; q++) mult += k[q] == k[j];
    if (S->cls[k[j]].count < mult) return 0;
  }
  /* Representatives: distinct tables for a repeated class. */
  uint32_t f[MR_PLAN_MAX_FACTORS];
  for (uint32_t j = 0; j < m; j++) {
    uint32_t rep = 0;
    for (uint32_t q = 0; q < j; q++) rep += k[q] == k[j];
    f[j] = S->members[S->cls[k[j]].first + rep];
  }
  plan_group_t g;
  if (mr__plan_group_make(S->c, f, m, &g) || g.extra > S->c->budget) return 0;
  if (S->nty == S->ty_cap) {
    if (S->ty_cap >= MR_PLAN_MAX_ENUM) return 0;
    size_t cap = S->ty_cap ? S->ty_cap * 2 : 256;
    mtype_t *ty = realloc(S->ty, cap * sizeof *ty);
    if (!ty) return -1;
    S->ty = ty;
    S->ty_cap = cap;
  }
  mtype_t y = {m, {k[0], k[1], m > 2 ? k[2] : 0}, g.extra, m - 1};
  S->ty[S->nty++] = y;
  return 0;
}

static int combinable_cls(const search_t *S, uint32_t a, uint32_t b) {
  const mr_plan_tin_t *x = &S->c->t[S->members[S->cls[a].first]];
  const mr_plan_tin_t *y = &S->c->t[S->members[S->cls[b].first]];
  return !x->pooled && !y->pooled && x->elem_bytes == y->elem_bytes;
}

/* Every affordable product type, then the MR_PLAN_MAX_TYPES cheapest per
 * saved lookup. A triple costs at least its pair's extra bytes (each factor
 * multiplies the rows), so triples are tried only on affordable pairs. */
static int search_types(search_t *S) {
  for (uint32_t a = 0; a < S->ncls; a++)
    for (uint32_t b = a; b < S->ncls; b++) {
      if (!combinable_cls(S, a, b)) continue;
      uint32_t k2[2] = {a, b};
      size_t before = S->nty;
      if (type_try(S, k2, 2)) return -1;
      if (S->nty == before) continue;
      for (uint32_t d = b; d < S->ncls; d++) {
        if (!combinable_cls(S, a, d)) continue;
        uint32_t k3[3] = {a, b, d};
        if (type_try(S, k3, 3)) return -1;
      }
    }
  if (S->nty) qsort(S->ty, S->nty, sizeof *S->ty, type_cmp);
  if (S->nty > MR_PLAN_MAX_TYPES) S->nty = MR_PLAN_MAX_TYPES;
  return 0;
}

/* The paper's heuristic: keep merging the two smallest one-hot groups while
 * the budget allows, scoring each step. */
static void greedy_smallest(search_t *S, int offchip_only) {
  plan_ctx_t *c = S->c;
  size_t n = c->n;
  plan_group_t *gs = S->gs;
  for (size_t i = 0; i < n; i++) {
    uint32_t f = (uint32_t)i;
    mr__plan_group_make(c, &f, 1, &gs[i]);
  }
  uint64_t X = 0;
  plan_score_t sc;
  mr__plan_evaluate(c, gs, n, &sc);
  keep_if_better(S, gs, n, &sc);
  for (;;) {
    /* The two smallest mr__plan_combinable groups (off-chip ones only, if
     * asked). */
    int a = -1, b = -1;
    plan_group_t merged;
    for (size_t i = 0; i < n; i++) {
      if (offchip_only && c->g_bank[i] >= 0) continue;
      if (gs[i].nf >= MR_PLAN_MAX_FACTORS) continue;
      if (a < 0 || gs[i].bytes < gs[a].bytes) a = (int)i;
    }
    if (a < 0) return;
    for (size_t i = 0; i < n; i++) {
      if ((int)i == a || (offchip_only && c->g_bank[i] >= 0)) continue;
      if (!mr__plan_combinable(c, &gs[a], &gs[i])) continue;
      if (b < 0 || gs[i].bytes < gs[b].bytes) b = (int)i;
    }
    if (b < 0 || mr__plan_group_merge(c, &gs[a], &gs[b], &merged)) return;
    uint64_t nx = X - gs[a].extra - gs[b].extra + merged.extra;
    if (nx > c->budget) return;
    X = nx;
    int lo = a < b ? a : b, hi = a < b ? b : a;
    gs[lo] = merged;
    memmove(&gs[hi], &gs[hi + 1], (n - hi - 1) * sizeof *gs);
    n--;
    mr__plan_evaluate(c, gs, n, &sc);
    keep_if_better(S, gs, n, &sc);
  }
}

int mr__plan_search(plan_ctx_t *c, const mr_plan_opts_t *o,
                    plan_group_t *best_gs, size_t *best_n, plan_score_t *best,
                    mr_err_t *err) {
  search_t S;
  memset(&S, 0, sizeof S);
  S.c = c;
  S.max_nodes = o->max_nodes ? o->max_nodes : MR_PLAN_DEFAULT_NODES;
  S.best_gs = best_gs;
  S.best.ok = 0;
  S.best.R = S.best.D = S.best.T = INT32_MAX;
  S.best.X = UINT64_MAX;
  size_t n = c->n;
  S.gs = calloc(n ? n : 1, sizeof *S.gs);
  S.members = calloc(n ? n : 1, sizeof *S.members);
  S.cls = calloc(n ? n : 1, sizeof *S.cls);
  S.avail = calloc(n ? n : 1, sizeof *S.avail);
  S.taken = calloc(n ? n : 1, sizeof *S.taken);
  S.cnt = calloc(MR_PLAN_MAX_TYPES, sizeof *S.cnt);
  S.dfs_best = calloc(MR_PLAN_MAX_TYPES, sizeof *S.dfs_best);
  S.dfs_score = S.best;
  int rc = 0;
  if (!S.gs || !S.members || !S.cls || !S.avail || !S.taken || !S.cnt ||
      !S.dfs_best) {
    rc = mr_err_set(err, MR_ENOMEM, "planner: out of memory for %zu tables", n);
    goto out;
  }
  /* No products at all first: the reference every product must beat. */
  for (size_t i = 0; i < n; i++) {
    uint32_t f = (uint32_t)i;
    mr__plan_group_make(c, &f, 1, &S.gs[i]);
  }
  plan_score_t sc;
  mr__plan_evaluate(c, S.gs, n, &sc);
  keep_if_better(&S, S.gs, n, &sc);
  if (!o->no_products && c->budget > 0 && n > 1) {
    greedy_smallest(&S, 0);
    greedy_smallest(&S, 1);
    /* Classes of equal-shaped tables. */
    for (size_t i = 0; i < n; i++) S.members[i] = (uint32_t)i;
    qsort_r(S.members, n, sizeof *S.members, tin_cmp_ctx_sort, c);
    for (size_t i = 0; i < n; i++) {
      if (i == 0 || !same_shape(c, S.members[i - 1], S.members[i])) {
        S.cls[S.ncls].first = i;
        S.cls[S.ncls].count = 0;
        S.ncls++;
      }
      S.cls[S.ncls - 1].count++;
    }
    for (size_t k = 0; k < S.ncls; k++) S.avail[k] = S.cls[k].count;
    if (search_types(&S)) {
      rc = mr_err_set(err, MR_ENOMEM, "planner: out of memory for products");
      goto out;
    }
    S.left = c->budget;
    plan_score_t root;
    for (size_t i = 0; i < n; i++) {
      uint32_t f = (uint32_t)i;
      mr__plan_group_make(c, &f, 1, &S.gs[i]);
    }
    mr__plan_evaluate(c, S.gs, n, &root);
    S.dfs_score = root;
    if (could_beat(&S, 0, &root)) dfs(&S, 0, &root);
    /* Hill-climb from the DFS's best and from no products at all. */
    S.nodes = 0;
    memcpy(S.cnt, S.dfs_best, S.nty * sizeof *S.cnt);
    local_search(&S);
    memset(S.cnt, 0, S.nty * sizeof *S.cnt);
    local_search(&S);
  }
  *best = S.best;
  *best_n = S.best_n;
out:
  free(S.gs);
  free(S.members);
  free(S.cls);
  free(S.avail);
  free(S.taken);
  free(S.ty);
  free(S.cnt);
  free(S.dfs_best);
  return rc;
}
