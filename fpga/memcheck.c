/* An engine's memory estimate and the memory available (memcheck.h). */
#include "fpga/memcheck.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fpga/kernel_image.h"
#include "fpga/planner.h"

#define HUGE_PAGE ((uint64_t)2 << 20)
/* cgroup v1 writes "no limit" as a number near 2^63 (page-rounded). */
#define V1_NO_LIMIT ((uint64_t)1 << 62)

static uint64_t round_up(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }
static uint64_t pad16(uint64_t n) { return round_up(n, 16); }

/* ---- the estimate ---- */

/* As fpga/cpu/tables.c stores an int8 row: a (scale, bias) pair per
 * segment, then one byte per value; a power of two up to a cache line, else
 * whole lines. */
static uint64_t int8_row_bytes(size_t nseg, size_t width) {
  uint64_t raw = 8 * (uint64_t)nseg + width, b = 16;
  if (raw > 64) return round_up(raw, 64);
  while (b < raw) b *= 2;
  return b;
}

/* Factors of physical table pe whose columns fall in [col_begin, col_end). */
static size_t segments(const mr_plan_table_t *pe, const mr_model_t *m) {
  size_t n = 0, pos = 0;
  for (size_t f = 0; f < pe->num_factors; f++) {
    size_t dim = m->tables[pe->factors[f]].dim;
    if (pos < pe->col_end && pe->col_begin < pos + dim) n++;
    pos += dim;
  }
  return n ? n : 1;
}

/* MLP layers packed in panels of 16 outputs (fpga/cpu/mlp.c). */
static uint64_t mlp_bytes(const mr_layer_t *l, size_t n, int bf16,
                          size_t *max_pad) {
  uint64_t b = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t out = pad16(l[i].out);
    uint64_t w = bf16 ? (l[i].in + 1) / 2 * out * 2 * 2 : l[i].in * out * 4;
    b += round_up(w, 64) + round_up(out * 4, 64);
    if (out > *max_pad) *max_pad = (size_t)out;
  }
  return b;
}

static int cpu_estimate(const mr_model_t *m, const mr_engine_opts_t *o,
                        unsigned scratches, mr_mem_estimate_t *e,
                        mr_err_t *err) {
  const char *p = o->precision ? o->precision : "fp32";
  int bf16, int8;
  if (!strcmp(p, "fp32")) bf16 = 0, int8 = 0;
  else if (!strcmp(p, "bf16")) bf16 = 1, int8 = 0;
  else if (!strcmp(p, "int8emb")) bf16 = 0, int8 = 1;
  else if (!strcmp(p, "bf16-int8emb")) bf16 = 1, int8 = 1;
  else
    return mr_err_set(err, MR_EINVAL,
                      "precision '%s' unknown, expected 'fp32', 'bf16', "
                      "'int8emb' or 'bf16-int8emb'", p);
  mr_plan_t own = {0};
  const mr_plan_t *plan = o->plan;
  if (!plan) {
    mr_plan_opts_t po;
    mr_plan_opts_default(&po);
    po.no_products = o->no_products;
    int rc = mr_plan_for_model(&own, m, "cpu", &po, err);
    if (rc < 0) return rc;
    plan = &own;
  }
  uint64_t logical = 0, physical = 0;
  for (size_t t = 0; t < m->num_tables; t++) {
    size_t dim = m->tables[t].dim;
    logical += round_up((uint64_t)m->tables[t].rows *
                            (int8 ? int8_row_bytes(1, dim) : dim * 4), 64);
  }
  for (size_t i = 0; i < plan->num_tables; i++) {
    const mr_plan_table_t *pe = &plan->tables[i];
    size_t width = pe->col_end - pe->col_begin;
    uint64_t rb = int8 ? int8_row_bytes(segments(pe, m), width) : width * 4;
    physical += round_up(pe->rows * rb, 64);
  }
  mr_plan_free(&own);
  e->tables = logical < physical ? logical : physical;
  e->products = physical - e->tables;

  size_t max_pad = 0;
  e->weights = mlp_bytes(m->bot, m->num_bot, bf16, &max_pad) +
               mlp_bytes(m->top, m->num_top, bf16, &max_pad);
  /* A scratch (fpga/cpu/cpu_engine.c): the top input, two layer buffers, a
   * dot's vector block, and bf16's paired input. */
  size_t top_in = mr_model_top_in(m), nvec = m->num_tables + 1;
  uint64_t batch = o->max_batch ? o->max_batch : 256;
  uint64_t floats = batch * (pad16(top_in) + 2 * (uint64_t)max_pad) +
                    (uint64_t)m->tables[0].dim * pad16(nvec) +
                    (bf16 ? batch * ((pad16(top_in) + 1) / 2) : 0) + 16;
  uint64_t threads = scratches + (o->intra_threads > 1 ? o->intra_threads - 1 : 0);
  e->scratch = threads * round_up(floats * 4, 64);
  return 0;
}

/* fpga-sim and fpga: the bank images (tables as the U280 plan places them)
 * and the init image (weights) in host memory. */
static int kernel_estimate(const mr_model_t *m, const mr_engine_opts_t *o,
                           unsigned scratches, mr_mem_estimate_t *e,
                           mr_err_t *err) {
  mr_plan_t own;
  const mr_plan_t *plan = NULL;
  int rc = mr_kplan_pick(&own, &plan, m, o, o->backend, err);
  if (rc < 0) return rc;
  uint64_t logical = 0, physical = 0;
  for (size_t t = 0; t < m->num_tables; t++)
    logical += (uint64_t)m->tables[t].rows * m->tables[t].dim * 4;
  for (size_t i = 0; i < plan->num_tables; i++)
    physical += plan->tables[i].rows *
                (plan->tables[i].col_end - plan->tables[i].col_begin) * 4;
  mr_plan_free(&own);
  e->tables = logical < physical ? logical : physical;
  e->products = physical - e->tables;
  e->weights = mr_model_param_bytes(m) - logical;
  uint64_t batch = o->max_batch ? o->max_batch : 256;
  e->scratch = scratches * batch *
               (m->num_tables * 8 + m->num_dense * 4 + 16);
  if (!strcmp(o->backend, "fpga")) /* XRT's host buffers while uploading */
    e->scratch += physical + e->weights;
  return 0;
}

int mr_engine_estimate_bytes(const mr_model_t *m, const mr_engine_opts_t *o,
                             unsigned scratches, mr_mem_estimate_t *out,
                             mr_err_t *err) {
  memset(out, 0, sizeof *out);
  if (!m || m->num_tables == 0 || !m->tables)
    return mr_err_set(err, MR_EINVAL,
                      "memory estimate: no model tables, expected a model "
                      "from mr_model_open");
  mr_engine_opts_t opts = {0};
  if (o) opts = *o;
  if (!opts.backend) opts.backend = "cpu";
  if (!scratches) scratches = 1;
  int rc;
  if (!strcmp(opts.backend, "cpu"))
    rc = cpu_estimate(m, &opts, scratches, out, err);
  else if (!strcmp(opts.backend, "fpga-sim") || !strcmp(opts.backend, "fpga"))
    rc = kernel_estimate(m, &opts, scratches, out, err);
  else
    rc = mr_err_set(err, MR_EINVAL,
                    "memory estimate: backend '%s' unknown, expected cpu, "
                    "fpga-sim or fpga", opts.backend);
  if (rc < 0) return rc;
  out->total = round_up(out->tables + out->products, HUGE_PAGE) +
               out->weights + out->scratch;
  return 0;
}

/* ---- what is available ---- */

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* The value after `key` in a "key value" file such as /proc/meminfo or
 * memory.stat, times unit; MR_MEM_UNKNOWN if absent. */
static uint64_t read_keyed(const char *path, const char *key, uint64_t unit) {
  FILE *f = fopen(path, "r");
  if (!f) return MR_MEM_UNKNOWN;
  char line[256];
  size_t klen = strlen(key);
  uint64_t v = MR_MEM_UNKNOWN;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, klen) || (line[klen] != ' ' && line[klen] != '\t'))
      continue;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(line + klen, &end, 10);
    if (!errno && end != line + klen) v = (uint64_t)x * unit;
    break;
  }
  fclose(f);
  return v;
}

/* A file holding one number, or "max" (no limit: MR_MEM_UNKNOWN). */
static uint64_t read_number(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return MR_MEM_UNKNOWN;
  char buf[64] = "";
  char *ok = fgets(buf, sizeof buf, f);
  fclose(f);
  if (!ok || !strncmp(buf, "max", 3)) return MR_MEM_UNKNOWN;
  char *end;
  errno = 0;
  unsigned long long x = strtoull(buf, &end, 10);
  return errno || end == buf ? MR_MEM_UNKNOWN : (uint64_t)x;
}

/* This process's memory cgroup from /proc/self/cgroup: the v2 line
 * ("0::/a/b") when the root is a v2 hierarchy (it has cgroup.controllers),
 * else the v1 memory controller's line ("4:memory:/a/b"; a hybrid system's
 * "0::" line then names a hierarchy without the memory controller). */
static int own_cgroup(const char *self, int v1, char *path, size_t len) {
  FILE *f = fopen(self, "r");
  if (!f) return -1;
  char line[1024];
  int found = -1;
  while (found < 0 && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) continue;
    *c1 = *c2 = 0;
    const char *ctrls = c1 + 1;
    int match = !v1 && !strcmp(line, "0") && !*ctrls;
    for (const char *s = ctrls; v1 && *s;) {
      size_t n = strcspn(s, ",");
      if (n == 6 && !strncmp(s, "memory", 6)) match = 1;
      s += n + (s[n] == ',');
    }
    if (match) {
      snprintf(path, len, "%s", c2 + 1);
      found = 0;
    }
  }
  fclose(f);
  return found;
}

/* Looks at the cgroup `rel` (under dir) and every parent up to dir itself,
 * keeping the one with the least room in out. */
static void cgroup_room(mr_mem_avail_t *out, const char *dir, const char *rel,
                        int v1) {
  char path[512];
  snprintf(path, sizeof path, "%s", rel);
  uint64_t best = MR_MEM_UNKNOWN;
  for (;;) {
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] == '/') path[--n] = 0;
    char f[1280];
    snprintf(f, sizeof f, "%s%s/%s", dir, path,
             v1 ? "memory.limit_in_bytes" : "memory.max");
    uint64_t max = read_number(f);
    if (v1 && max >= V1_NO_LIMIT) max = MR_MEM_UNKNOWN;
    if (max != MR_MEM_UNKNOWN) {
      snprintf(f, sizeof f, "%s%s/%s", dir, path,
               v1 ? "memory.usage_in_bytes" : "memory.current");
      uint64_t cur = read_number(f);
      if (cur == MR_MEM_UNKNOWN) cur = 0;
      /* Page cache is counted in use but is given back under pressure. */
      snprintf(f, sizeof f, "%s%s/memory.stat", dir, path);
      uint64_t cache = read_keyed(f, v1 ? "total_cache" : "file", 1);
      if (cache != MR_MEM_UNKNOWN) cur -= min_u64(cache, cur);
      uint64_t room = max > cur ? max - cur : 0;
      if (room < best) {
        best = room;
        out->cgroup_max = max;
        out->cgroup_current = cur;
        snprintf(out->cgroup, sizeof out->cgroup, "%s", n ? path : "/");
      }
    }
    if (n == 0) break;
    char *slash = strrchr(path, '/');
    if (!slash) break;
    *slash = 0;
  }
}

/* MR_MEM_AVAILABLE: bytes with an optional K/M/G suffix; MR_MEM_UNKNOWN
 * when unset or not a number. */
static uint64_t env_override(void) {
  const char *v = getenv("MR_MEM_AVAILABLE");
  if (!v || !*v) return MR_MEM_UNKNOWN;
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (errno || end == v) return MR_MEM_UNKNOWN;
  unsigned shift = 0;
  switch (*end) {
  case 'k': case 'K': shift = 10; break;
  case 'm': case 'M': shift = 20; break;
  case 'g': case 'G': shift = 30; break;
  case 0: break;
  default: return MR_MEM_UNKNOWN;
  }
  if (x > (UINT64_MAX >> shift)) return MR_MEM_UNKNOWN;
  return (uint64_t)x << shift;
}

void mr_mem_available(mr_mem_avail_t *out, const mr_mem_sources_t *src) {
  memset(out, 0, sizeof *out);
  out->bytes = out->mem_available = MR_MEM_UNKNOWN;
  out->cgroup_max = out->cgroup_current = MR_MEM_UNKNOWN;
  if (!src) {
    uint64_t forced = env_override();
    if (forced != MR_MEM_UNKNOWN) {
      out->bytes = forced;
      out->overridden = 1;
      return;
    }
  }
  mr_mem_sources_t s = {"/proc/meminfo", "/proc/self/cgroup", "/sys/fs/cgroup"};
  if (src) s = *src;
  out->mem_available = read_keyed(s.meminfo, "MemAvailable:", 1024);
  char rel[512], dir[600];
  snprintf(dir, sizeof dir, "%s/cgroup.controllers", s.cgroup_root);
  int v1 = access(dir, F_OK) != 0;
  if (own_cgroup(s.self_cgroup, v1, rel, sizeof rel) == 0) {
    snprintf(dir, sizeof dir, "%s%s", s.cgroup_root, v1 ? "/memory" : "");
    cgroup_room(out, dir, rel, v1);
  }
  uint64_t room = out->cgroup_max == MR_MEM_UNKNOWN
                      ? MR_MEM_UNKNOWN
                      : (out->cgroup_max > out->cgroup_current
                             ? out->cgroup_max - out->cgroup_current
                             : 0);
  out->bytes = min_u64(out->mem_available, room);
}

/* ---- the check ---- */

const char *mr_mem_format(char *buf, size_t len, uint64_t b) {
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (b < 1024) {
    snprintf(buf, len, "%llu B", (unsigned long long)b);
    return buf;
  }
  double v = (double)b / 1024;
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, u++;
  snprintf(buf, len, "%.1f %s", v, units[u]);
  return buf;
}

int mr_mem_check_fits(const mr_mem_estimate_t *need,
                      const mr_mem_avail_t *avail, const char *what,
                      mr_err_t *err) {
  if (avail->bytes == MR_MEM_UNKNOWN || need->total <= avail->bytes) return 0;
  char t[5][32], a[3][32], where[700];
  if (avail->overridden)
    snprintf(where, sizeof where, "MR_MEM_AVAILABLE=%llu",
             (unsigned long long)avail->bytes);
  else if (avail->cgroup[0] &&
           (avail->cgroup_max > avail->cgroup_current
                ? avail->cgroup_max - avail->cgroup_current
                : 0) == avail->bytes)
    snprintf(where, sizeof where,
             "cgroup %s: limit %s, %s in use besides page cache", avail->cgroup,
             mr_mem_format(a[0], sizeof a[0], avail->cgroup_max),
             mr_mem_format(a[1], sizeof a[1], avail->cgroup_current));
  else
    snprintf(where, sizeof where, "MemAvailable in /proc/meminfo");
  return mr_err_set(
      err, MR_ENOMEM,
      "%s needs %s of memory (tables %s + products %s + MLP weights %s + "
      "scratch %s) but only %s is available (%s); expected a model that "
      "fits: free memory, raise the service's MemoryMax=, plan without "
      "products (--no-products), or serve a smaller model",
      what ? what : "the model", mr_mem_format(t[0], sizeof t[0], need->total),
      mr_mem_format(t[1], sizeof t[1], need->tables),
      mr_mem_format(t[2], sizeof t[2], need->products),
      mr_mem_format(t[3], sizeof t[3], need->weights),
      mr_mem_format(t[4], sizeof t[4], need->scratch),
      mr_mem_format(a[2], sizeof a[2], avail->bytes), where);
}

int mr_mem_check(const mr_model_t *m, const mr_engine_opts_t *o,
                 unsigned scratches, const char *what,
                 mr_mem_estimate_t *need, mr_err_t *err) {
  mr_mem_estimate_t e;
  int rc = mr_engine_estimate_bytes(m, o, scratches, &e, err);
  if (rc < 0) return rc;
  if (need) *need = e;
  mr_mem_avail_t a;
  mr_mem_available(&a, NULL);
  return mr_mem_check_fits(&e, &a, what, err);
}
