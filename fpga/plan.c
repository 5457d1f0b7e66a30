/* The MicroRec planner's entry points (fpga/planner.h): checks the input,
 * expands the target's banks, runs the search (plan_search.c) and writes
 * the winner as a mr_plan_t. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpga/plan_internal.h"

static int emit_plan(plan_ctx_t *c, const plan_group_t *gs, size_t n,
                     const plan_score_t *sc, mr_plan_t *p, mr_err_t *err) {
  plan_score_t again;
  mr__plan_evaluate(c, gs, n, &again); /* re-place the winner: parts, banks */
  size_t on = 0;
  for (size_t i = 0; i < n; i++) on += c->g_bank[i] >= 0;
  size_t nt = on + c->np;
  memset(p, 0, sizeof *p);
  p->tables = calloc(nt ? nt : 1, sizeof *p->tables);
  p->banks = calloc(c->nb ? c->nb : 1, sizeof *p->banks);
  if (!p->tables || !p->banks) {
    mr_plan_free(p);
    return mr_err_set(err, MR_ENOMEM, "planner: out of memory for the plan");
  }
  p->num_logical = c->n;
  p->num_banks = c->nb;
  for (size_t b = 0; b < c->nb; b++) {
    mr_plan_bank_t *pb = &p->banks[b];
    mr_target_bank_name(c->target, b, pb->name, sizeof pb->name);
    pb->kind = c->banks[b].g->kind;
    pb->capacity = c->banks[b].g->capacity;
  }
  /* Tables in the order of their first factor; a split table's parts in
   * column order. */
  plan_key_t *ord = c->keys;
  for (size_t i = 0; i < n; i++) {
    ord[i].a = gs[i].f[0];
    ord[i].b = 0;
    ord[i].c = 0;
    ord[i].idx = (uint32_t)i;
  }
  qsort(ord, n, sizeof *ord, mr__plan_key_cmp);
  size_t k = 0;
  for (size_t oi = 0; oi < n; oi++) {
    uint32_t gi = ord[oi].idx;
    const plan_group_t *g = &gs[gi];
    for (size_t q = 0; q < c->np + 1; q++) {
      int bank, round;
      size_t c0, c1;
      if (c->g_bank[gi] >= 0) {
        if (q > 0) break;
        bank = c->g_bank[gi];
        round = 0; /* on-chip tables are read in parallel */
        c0 = 0;
        c1 = g->dim;
      } else {
        if (q >= c->np) break;
        if (c->parts[q].group != gi) continue;
        bank = c->parts[q].bank;
        round = c->parts[q].round;
        c0 = c->parts[q].c0;
        c1 = c->parts[q].c1;
      }
      mr_plan_table_t *t = &p->tables[k++];
      t->num_factors = g->nf;
      for (uint32_t f = 0; f < g->nf; f++) t->factors[f] = g->f[f];
      t->rows = g->rows;
      t->dim = g->dim;
      t->col_begin = c0;
      t->col_end = c1;
      t->bank = bank;
      t->rounds = round;
      uint64_t bytes = g->dim ? g->bytes / g->dim * (c1 - c0) : 0;
      p->banks[bank].bytes += bytes;
      p->banks[bank].rounds++;
      p->plan_bytes += bytes;
    }
  }
  p->num_tables = k;
  for (size_t i = 0; i < c->n; i++) p->base_bytes += c->tbytes[i];
  p->memory_overhead =
      p->base_bytes ? (double)p->plan_bytes / (double)p->base_bytes - 1.0 : 0;
  p->lookups_per_sample = sc->D;
  p->max_dram_rounds = sc->R;
  snprintf(p->target, sizeof p->target, "%s", c->target->name);
  return 0;
}

int mr_plan_build(mr_plan_t *out, const mr_plan_input_t *in,
                  const mr_target_t *t, const mr_plan_opts_t *opts,
                  mr_err_t *err) {
  if (!out || !in || !t)
    return mr_err_set(err, MR_EINVAL, "plan build: NULL %s",
                      !out  ? "plan"
                      : !in ? "input"
                            : "target");
  memset(out, 0, sizeof *out);
  mr_plan_opts_t o;
  if (opts)
    o = *opts;
  else
    mr_plan_opts_default(&o);
  if (o.budget < 0) o.budget = MR_PLAN_DEFAULT_BUDGET;
  if (!isfinite(o.budget) || o.budget > 100.0)
    return mr_err_set(err, MR_EINVAL,
                      "plan build: budget %g, expected a fraction in [0, 100]",
                      o.budget);
  if (o.objective != MR_PLAN_MIN_DRAM && o.objective != MR_PLAN_MIN_TABLES)
    return mr_err_set(err, MR_EINVAL, "plan build: unknown objective %d",
                      (int)o.objective);
  if (in->num_tables > 0 && !in->tables)
    return mr_err_set(err, MR_EINVAL, "plan build: %zu tables but no array",
                      in->num_tables);
  if (in->num_tables > UINT32_MAX / 2)
    return mr_err_set(err, MR_EINVAL, "plan build: %zu tables is too many",
                      in->num_tables);

  plan_ctx_t c;
  memset(&c, 0, sizeof c);
  c.t = in->tables;
  c.n = in->num_tables;
  c.target = t;
  c.obj = o.objective;
  c.nb = mr_target_num_banks(t);
  if (c.nb == 0)
    return mr_err_set(err, MR_EINVAL, "plan build: target %s has no banks",
                      t->name);
  size_t n = c.n, dims = 0;
  int rc = 0;
  plan_group_t *best_gs = NULL;
  plan_key_t *fps = NULL;
  c.tbytes = calloc(n ? n : 1, sizeof *c.tbytes);
  c.banks = calloc(c.nb, sizeof *c.banks);
  c.keys = calloc(n ? n : 1, sizeof *c.keys);
  c.room = calloc(c.nb, sizeof *c.room);
  c.used = calloc(c.nb, sizeof *c.used);
  c.g_bank = calloc(n ? n : 1, sizeof *c.g_bank);
  best_gs = calloc(n ? n : 1, sizeof *best_gs);
  fps = calloc(n ? n : 1, sizeof *fps);
  if (!c.tbytes || !c.banks || !c.keys || !c.room || !c.used || !c.g_bank ||
      !best_gs || !fps) {
    rc = mr_err_set(err, MR_ENOMEM, "plan build: out of memory");
    goto out;
  }
  uint64_t base = 0, off_cap = 0, max_bank = 0;
  for (size_t b = 0; b < c.nb; b++) {
    c.banks[b].g = mr_target_bank(t, b, NULL);
    c.banks[b].onchip = mr_bank_is_onchip(c.banks[b].g->kind);
    if (!c.banks[b].onchip) {
      c.noff++;
      off_cap += c.banks[b].g->capacity;
      c.off_cap = off_cap;
      if (c.banks[b].g->capacity > max_bank) max_bank = c.banks[b].g->capacity;
    }
  }
  for (size_t k = 0; k < n; k++) {
    const mr_plan_tin_t *x = &c.t[k];
    if (x->rows == 0 || x->dim == 0 || x->elem_bytes == 0 ||
        x->rows > (uint64_t)INT64_MAX ||
        __builtin_mul_overflow(x->rows, (uint64_t)x->dim * x->elem_bytes,
                               &c.tbytes[k])) {
      rc = mr_err_set(err, MR_EINVAL,
                      "plan build: table %zu is %llu x %zu of %zu-byte "
                      "elements; expected rows, dim and element size > 0 "
                      "and its bytes within 64 bits",
                      k, (unsigned long long)x->rows, x->dim, x->elem_bytes);
      goto out;
    }
    base += c.tbytes[k];
    dims += x->dim;
  }
  c.budget = (uint64_t)floor((double)base * o.budget);
  c.parts_cap = dims + 1;
  c.parts = calloc(c.parts_cap, sizeof *c.parts);
  if (!c.parts) {
    rc = mr_err_set(err, MR_ENOMEM, "plan build: out of memory");
    goto out;
  }
  /* L: how many tables the on-chip banks could hold at most. */
  {
    uint64_t on_cap = 0;
    for (size_t b = 0; b < c.nb; b++)
      if (c.banks[b].onchip) on_cap += c.banks[b].g->capacity;
    for (size_t k = 0; k < n; k++) {
      uint64_t fp = UINT64_MAX;
      for (size_t b = 0; b < c.nb; b++)
        if (c.banks[b].onchip) {
          uint64_t f =
              mr_target_footprint(c.banks[b].g, c.t[k].rows,
                                  (uint64_t)c.t[k].dim * c.t[k].elem_bytes);
          if (f < fp) fp = f;
        }
      fps[k].a = fp;
      fps[k].idx = (uint32_t)k;
    }
    qsort(fps, n, sizeof *fps, mr__plan_key_cmp);
    uint64_t sum = 0;
    for (size_t k = 0; k < n && fps[k].a <= on_cap - sum; k++) {
      sum += fps[k].a;
      c.L++;
    }
  }

  plan_score_t best = {0, 0, 0, 0, 0};
  size_t best_n = 0;
  rc = mr__plan_search(&c, &o, best_gs, &best_n, &best, err);
  if (rc) goto out;
  if (!best.ok) {
    rc = mr_err_set(err, MR_ENOTSUP,
                    "plan build: the %zu tables (%llu bytes) do not fit "
                    "target %s (%llu bytes off-chip in %zu banks, the "
                    "largest %llu)",
                    n, (unsigned long long)base, t->name,
                    (unsigned long long)off_cap, c.noff,
                    (unsigned long long)max_bank);
    goto out;
  }
  rc = emit_plan(&c, best_gs, best_n, &best, out, err);
out:
  free(c.tbytes);
  free(c.banks);
  free(c.keys);
  free(c.room);
  free(c.used);
  free(c.g_bank);
  free(c.parts);
  free(best_gs);
  free(fps);
  return rc;
}

int mr_plan_for_model(mr_plan_t *out, const mr_model_t *m, const char *target,
                      const mr_plan_opts_t *opts, mr_err_t *err) {
  const mr_target_t *t = mr_target_find(target);
  if (!t)
    return mr_err_set(err, MR_EINVAL,
                      "plan: unknown target '%s' (expected u280 or cpu)",
                      target ? target : "");
  mr_plan_input_t in;
  int rc = mr_plan_input_from_model(&in, m, err);
  if (rc) return rc;
  rc = mr_plan_build(out, &in, t, opts, err);
  mr_plan_input_free(&in);
  return rc;
}
