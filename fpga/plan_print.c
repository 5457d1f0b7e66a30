/* Printing a plan (fpga/plan_print.h). */
#include "fpga/plan_print.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "fpga/err.h"
#include "fpga/target.h"

void mr_plan_stats(const mr_plan_t *p, mr_plan_stats_t *s) {
  memset(s, 0, sizeof *s);
  for (size_t i = 0; i < p->num_tables; i++) {
    const mr_plan_table_t *t = &p->tables[i];
    /* Every table has exactly one part that starts at column 0. */
    if (t->col_begin == 0) {
      s->tables++;
      s->products += t->num_factors > 1;
      s->split += t->col_end < t->dim;
    }
    if (t->bank >= 0 && (size_t)t->bank < p->num_banks &&
        mr_bank_is_onchip(p->banks[t->bank].kind))
      s->onchip_lookups++;
  }
  s->extra_bytes =
      p->plan_bytes > p->base_bytes ? p->plan_bytes - p->base_bytes : 0;
}

static const char *human(uint64_t b, char *buf, size_t len) {
  const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)b;
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  if (u == 0)
    snprintf(buf, len, "%" PRIu64 " B", b);
  else
    snprintf(buf, len, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, unit[u]);
  return buf;
}

/* "7", "3x12", "3x12x40[0:16)" */
static void table_token(const mr_plan_table_t *t, char *buf, size_t len) {
  size_t n = 0;
  for (size_t f = 0; f < t->num_factors && n < len; f++)
    n += (size_t)snprintf(buf + n, len - n, "%s%zu", f ? "x" : "",
                          t->factors[f]);
  if (n < len && (t->col_begin != 0 || t->col_end != t->dim))
    snprintf(buf + n, len - n, "[%zu:%zu)", t->col_begin, t->col_end);
}

#define TABLES_COL 34

int mr_plan_print(FILE *out, const mr_plan_t *p) {
  mr_plan_stats_t st;
  mr_plan_stats(p, &st);
  char b1[32], b2[32];
  fprintf(out, "plan for %s: %zu tables -> %zu after products (%zu products",
          p->target, p->num_logical, st.tables, st.products);
  if (st.split) fprintf(out, ", %zu split by columns", st.split);
  fprintf(out, "), %zu physical\n\n", p->num_tables);
  fprintf(out, "%-8s %-7s %-*s %12s %10s %5s %6s\n", "bank", "kind", TABLES_COL,
          "tables (logical ids; AxB = product)", "rows", "bytes", "fill",
          "rounds");
  size_t empty = 0;
  const mr_target_t *tg = mr_target_find(p->target);
  for (size_t b = 0; b < p->num_banks; b++) {
    const mr_plan_bank_t *bk = &p->banks[b];
    uint64_t rows = 0, used = bk->bytes;
    size_t count = 0;
    /* On-chip memories fill by whole blocks: show what the blocks take. */
    const mr_target_bank_t *g = tg && mr_target_num_banks(tg) == p->num_banks
                                    ? mr_target_bank(tg, b, NULL)
                                    : NULL;
    if (g && mr_bank_is_onchip(g->kind)) used = 0;
    for (size_t i = 0; i < p->num_tables; i++)
      if (p->tables[i].bank == (int)b) {
        const mr_plan_table_t *t = &p->tables[i];
        rows += t->rows;
        count++;
        if (g && mr_bank_is_onchip(g->kind))
          used += mr_target_footprint(
              g, t->rows, (t->col_end - t->col_begin) * sizeof(float));
      }
    if (!count) {
      empty++;
      continue;
    }
    /* Table list, wrapped onto continuation lines. */
    char line[TABLES_COL + 1] = "";
    size_t len = 0;
    int first_line = 1;
    char rounds[16];
    if (mr_bank_is_onchip(bk->kind))
      snprintf(rounds, sizeof rounds, "par");
    else
      snprintf(rounds, sizeof rounds, "%d", bk->rounds);
    for (size_t i = 0; i <= p->num_tables; i++) {
      char tok[64] = "";
      int last = i == p->num_tables;
      if (!last) {
        if (p->tables[i].bank != (int)b) continue;
        table_token(&p->tables[i], tok, sizeof tok);
      }
      size_t tl = strlen(tok);
      if (last || (len && len + 1 + tl > TABLES_COL)) {
        if (first_line) {
          double fill =
              bk->capacity ? 100.0 * (double)used / (double)bk->capacity : 0;
          fprintf(out, "%-8s %-7s %-*s %12" PRIu64 " %10s %4.0f%% %6s\n",
                  bk->name, mr_bank_kind_name(bk->kind), TABLES_COL, line, rows,
                  human(bk->bytes, b1, sizeof b1), fill, rounds);
          first_line = 0;
        } else {
          fprintf(out, "%-8s %-7s %s\n", "", "", line);
        }
        line[0] = 0;
        len = 0;
        if (last) break;
      }
      if (tl > TABLES_COL) tl = TABLES_COL;
      if (len) line[len++] = ' ';
      memcpy(line + len, tok, tl);
      len += tl;
      line[len] = 0;
    }
  }
  if (empty) fprintf(out, "(%zu banks empty)\n", empty);
  fprintf(out,
          "\nDRAM lookups per sample %d, max DRAM rounds %d, on-chip lookups "
          "%zu\n",
          p->lookups_per_sample, p->max_dram_rounds, st.onchip_lookups);
  fprintf(out, "bytes %s -> %s (+%s, memory overhead %.2f%%)\n",
          human(p->base_bytes, b1, sizeof b1),
          human(p->plan_bytes, b2, sizeof b2),
          human(st.extra_bytes, (char[32]){0}, 32), 100.0 * p->memory_overhead);
  if (ferror(out)) return -EIO;
  return 0;
}

/* Adds value v under key k to o; v is stolen. Returns -1 on failure. */
static int put(json_t *o, const char *k, json_t *v) {
  return v ? json_object_set_new(o, k, v) : -1;
}

json_t *mr_plan_to_json(const mr_plan_t *p) {
  mr_plan_stats_t st;
  mr_plan_stats(p, &st);
  json_t *o = json_object();
  json_t *banks = json_array();
  json_t *tabs = json_array();
  int bad = !o || !banks || !tabs;
  bad |= put(o, "target", json_string(p->target));
  bad |= put(o, "tables", json_integer((json_int_t)st.tables));
  bad |= put(o, "logical_tables", json_integer((json_int_t)p->num_logical));
  bad |= put(o, "physical_tables", json_integer((json_int_t)p->num_tables));
  bad |= put(o, "products", json_integer((json_int_t)st.products));
  bad |= put(o, "split_tables", json_integer((json_int_t)st.split));
  bad |= put(o, "lookups_per_sample", json_integer(p->lookups_per_sample));
  bad |= put(o, "onchip_lookups", json_integer((json_int_t)st.onchip_lookups));
  bad |= put(o, "max_dram_rounds", json_integer(p->max_dram_rounds));
  bad |= put(o, "base_bytes", json_integer((json_int_t)p->base_bytes));
  bad |= put(o, "plan_bytes", json_integer((json_int_t)p->plan_bytes));
  bad |= put(o, "extra_bytes", json_integer((json_int_t)st.extra_bytes));
  bad |= put(o, "memory_overhead", json_real(p->memory_overhead));
  for (size_t b = 0; b < p->num_banks && !bad; b++) {
    const mr_plan_bank_t *bk = &p->banks[b];
    json_t *j = json_object(), *ids = json_array();
    bad |= !j || !ids;
    for (size_t i = 0; i < p->num_tables && !bad; i++)
      if (p->tables[i].bank == (int)b)
        bad |= json_array_append_new(ids, json_integer((json_int_t)i));
    bad |= put(j, "name", json_string(bk->name));
    bad |= put(j, "kind", json_string(mr_bank_kind_name(bk->kind)));
    bad |= put(j, "capacity", json_integer((json_int_t)bk->capacity));
    bad |= put(j, "bytes", json_integer((json_int_t)bk->bytes));
    bad |= put(j, "rounds", json_integer(bk->rounds));
    bad |= put(j, "tables", ids);
    bad |= json_array_append_new(banks, j);
  }
  for (size_t i = 0; i < p->num_tables && !bad; i++) {
    const mr_plan_table_t *t = &p->tables[i];
    json_t *j = json_object(), *f = json_array(), *cols = json_array();
    bad |= !j || !f || !cols;
    for (size_t k = 0; k < t->num_factors && !bad; k++)
      bad |= json_array_append_new(f, json_integer((json_int_t)t->factors[k]));
    bad |= json_array_append_new(cols, json_integer((json_int_t)t->col_begin));
    bad |= json_array_append_new(cols, json_integer((json_int_t)t->col_end));
    bad |= put(j, "factors", f);
    bad |= put(j, "rows", json_integer((json_int_t)t->rows));
    bad |= put(j, "dim", json_integer((json_int_t)t->dim));
    bad |= put(j, "columns", cols);
    bad |= put(j, "bank", json_integer(t->bank));
    bad |= put(j, "round", json_integer(t->rounds));
    bad |= json_array_append_new(tabs, j);
  }
  bad |= put(o, "banks", banks);
  banks = NULL;
  bad |= put(o, "plan", tabs);
  tabs = NULL;
  if (bad) {
    json_decref(o);
    return NULL;
  }
  return o;
}

int mr_plan_print_json(FILE *out, const mr_plan_t *p) {
  json_t *j = mr_plan_to_json(p);
  if (!j) return MR_ENOMEM;
  int rc = json_dumpf(j, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(j);
  fputc('\n', out);
  if (rc || ferror(out)) return -EIO;
  return 0;
}
