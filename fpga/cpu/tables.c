/* Building the plan-shaped embedding tables (see tables.h). */
#include "fpga/cpu/tables.h"

#include <stdlib.h>
#include <string.h>

#include "fpga/cpu/hugemem.h"

/* Bytes of rows prefetched ahead of the gather: enough lines in flight to
 * hide DRAM latency, few enough to stay in L2 until used. Tuned on full-size
 * criteo and alibaba-47 (bench/run's models): 16-20 samples ahead. */
#define PREFETCH_BUDGET (64u << 10)

/* Copies one row of physical table pe from the model; idx holds the row
 * number decomposed into factor ids. */
static void build_row(const mr_plan_table_t *pe, const mr_model_t *m,
                      const uint64_t *idx, float *row) {
  size_t pos = 0;
  for (size_t f = 0; f < pe->num_factors; f++) {
    const mr_table_t *lt = &m->tables[pe->factors[f]];
    size_t lo = pe->col_begin > pos ? pe->col_begin : pos;
    size_t hi = pe->col_end < pos + lt->dim ? pe->col_end : pos + lt->dim;
    if (lo < hi)
      memcpy(row + (lo - pe->col_begin), lt->data + idx[f] * lt->dim + (lo - pos),
             (hi - lo) * sizeof(float));
    pos += lt->dim;
  }
}

static void build_table(const mr_plan_table_t *pe, const mr_model_t *m,
                        float *dst) {
  size_t width = pe->col_end - pe->col_begin;
  const mr_table_t *lt0 = &m->tables[pe->factors[0]];
  if (pe->num_factors == 1 && width == lt0->dim) {
    memcpy(dst, lt0->data, pe->rows * width * sizeof(float));
    return;
  }
  /* An odometer over the factor ids, last factor fastest. */
  uint64_t idx[MR_PLAN_MAX_FACTORS] = {0};
  for (uint64_t r = 0; r < pe->rows; r++) {
    build_row(pe, m, idx, dst + r * width);
    for (size_t f = pe->num_factors; f-- > 0;) {
      if (++idx[f] < m->tables[pe->factors[f]].rows) break;
      idx[f] = 0;
    }
  }
}

/* int8: the (scale, bias) of logical row r of lt: its whole range. */
static void quant_params(const mr_table_t *lt, uint64_t r, float *scale,
                         float *bias) {
  const float *x = lt->data + r * lt->dim;
  float lo = x[0], hi = x[0];
  for (size_t c = 1; c < lt->dim; c++) {
    lo = x[c] < lo ? x[c] : lo;
    hi = x[c] > hi ? x[c] : hi;
  }
  *bias = lo;
  *scale = (hi - lo) / 255.0f;
}

static unsigned char quantize(float x, float scale, float bias) {
  if (!(scale > 0.0f)) return 0;
  float v = (x - bias) / scale + 0.5f;
  return v <= 0.0f ? 0 : v >= 255.0f ? 255 : (unsigned char)v;
}

/* int8: one stored row of physical table pe (layout in tables.h). */
static void build_row_int8(const mr_plan_table_t *pe, const mr_model_t *m,
                           const uint64_t *idx, size_t nseg,
                           unsigned char *row) {
  unsigned char *q = row + 8 * nseg;
  size_t pos = 0, seg = 0;
  for (size_t f = 0; f < pe->num_factors; f++) {
    const mr_table_t *lt = &m->tables[pe->factors[f]];
    size_t lo = pe->col_begin > pos ? pe->col_begin : pos;
    size_t hi = pe->col_end < pos + lt->dim ? pe->col_end : pos + lt->dim;
    if (lo < hi) {
      float sb[2];
      quant_params(lt, idx[f], &sb[0], &sb[1]);
      memcpy(row + 8 * seg++, sb, sizeof sb);
      const float *x = lt->data + idx[f] * lt->dim - pos;
      for (size_t c = lo; c < hi; c++)
        q[c - pe->col_begin] = quantize(x[c], sb[0], sb[1]);
    }
    pos += lt->dim;
  }
}

static void build_table_int8(const mr_plan_table_t *pe, const mr_model_t *m,
                             size_t nseg, size_t row_bytes,
                             unsigned char *dst) {
  uint64_t idx[MR_PLAN_MAX_FACTORS] = {0};
  for (uint64_t r = 0; r < pe->rows; r++) {
    build_row_int8(pe, m, idx, nseg, dst + r * row_bytes);
    for (size_t f = pe->num_factors; f-- > 0;) {
      if (++idx[f] < m->tables[pe->factors[f]].rows) break;
      idx[f] = 0;
    }
  }
}

/* Stored bytes of an int8 row: a power of two up to a line, else lines. */
static size_t int8_row_bytes(size_t nseg, size_t width) {
  size_t raw = 8 * nseg + width, b = 16;
  if (raw > 64) return (raw + 63) / 64 * 64;
  while (b < raw) b *= 2;
  return b;
}

/* Segments of physical table pe: where each factor's held columns go. */
static size_t make_segs(const mr_plan_table_t *pe, const mr_model_t *m,
                        const size_t *dst_base, size_t stride,
                        mr_cpu_seg_t *out) {
  size_t n = 0, pos = 0;
  for (size_t f = 0; f < pe->num_factors; f++) {
    size_t t = pe->factors[f], dim = m->tables[t].dim;
    size_t lo = pe->col_begin > pos ? pe->col_begin : pos;
    size_t hi = pe->col_end < pos + dim ? pe->col_end : pos + dim;
    if (lo < hi)
      out[n++] = (mr_cpu_seg_t){.src = (uint32_t)(lo - pe->col_begin),
                                .dst = (uint32_t)(dst_base[t] + (lo - pos) * stride),
                                .len = (uint32_t)(hi - lo)};
    pos += dim;
  }
  return n;
}

int mr__cpu_tables_build(mr_cpu_tables_t *tb, const mr_model_t *m,
                         const mr_plan_t *p, const size_t *dst_base,
                         size_t stride, int int8, mr_err_t *err) {
  memset(tb, 0, sizeof *tb);
  tb->stride = stride;
  tb->int8 = int8;
  size_t n = p->num_tables;
  tb->t = calloc(n ? n : 1, sizeof *tb->t);
  tb->segs = calloc(n ? n * MR_PLAN_MAX_FACTORS : 1, sizeof *tb->segs);
  if (!tb->t || !tb->segs) {
    mr__cpu_tables_free(tb);
    return mr_err_set(err, MR_ENOMEM, "cpu engine: out of memory for %zu tables", n);
  }
  tb->num = n;

  /* Layout: each table at a 64-byte aligned offset of one block. */
  size_t total = 0, line_bytes = 0;
  size_t *off = calloc(n ? n : 1, sizeof *off);
  if (!off) {
    mr__cpu_tables_free(tb);
    return mr_err_set(err, MR_ENOMEM, "cpu engine: out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    const mr_plan_table_t *pe = &p->tables[i];
    size_t width = pe->col_end - pe->col_begin;
    size_t bytes = 0, padded = 0;
    /* Segments first: an int8 row's size depends on their number. */
    tb->t[i].seg_begin = tb->num_segs;
    tb->t[i].num_segs = make_segs(pe, m, dst_base, stride, tb->segs + tb->num_segs);
    tb->num_segs += tb->t[i].num_segs;
    size_t rb = int8 ? int8_row_bytes(tb->t[i].num_segs, width) : width * sizeof(float);
    tb->t[i].row_bytes = rb;
    if (pe->rows > SIZE_MAX / rb ||
        __builtin_add_overflow((size_t)pe->rows * rb, (size_t)63, &padded) ||
        total > SIZE_MAX - (padded & ~(size_t)63)) {
      free(off);
      mr__cpu_tables_free(tb);
      return mr_err_set(err, MR_ENOMEM,
                        "cpu engine: physical table %zu (%llu rows x %zu) does "
                        "not fit in the address space",
                        i, (unsigned long long)pe->rows, width);
    }
    bytes = (size_t)pe->rows * rb;
    off[i] = total;
    total += padded & ~(size_t)63;
    tb->bytes += bytes;
    /* A row not aligned to a line may touch one line more. */
    line_bytes += (rb + 63) / 64 * 64 + (int8 ? 0 : 64);
  }
  if (total > 0) {
    tb->mem = mr__cpu_huge_alloc(total);
    if (!tb->mem) {
      free(off);
      mr__cpu_tables_free(tb);
      return mr_err_set(err, MR_ENOMEM,
                        "cpu engine: cannot map %zu bytes for the embedding "
                        "tables",
                        total);
    }
    tb->mem_len = total;
  }

  for (size_t i = 0; i < n; i++) {
    const mr_plan_table_t *pe = &p->tables[i];
    mr_cpu_ptable_t *pt = &tb->t[i];
    unsigned char *base = (unsigned char *)tb->mem + off[i];
    if (int8)
      build_table_int8(pe, m, pt->num_segs, pt->row_bytes, base);
    else
      build_table(pe, m, (float *)base);
    pt->base = base;
    pt->width = pe->col_end - pe->col_begin;
    pt->rows = pe->rows;
    uint64_t mult = 1;
    for (size_t f = MR_PLAN_MAX_FACTORS; f-- > 0;) {
      int used = f < pe->num_factors;
      pt->slot[f] = pe->factors[used ? f : 0];
      pt->mult[f] = used ? mult : 0;
      if (used) mult *= m->tables[pe->factors[f]].rows;
    }
  }
  free(off);
  size_t dist = line_bytes ? PREFETCH_BUDGET / line_bytes : 1;
  tb->prefetch_dist = dist < 1 ? 1 : dist > 64 ? 64 : dist;
  return 0;
}

void mr__cpu_tables_free(mr_cpu_tables_t *tb) {
  if (!tb) return;
  mr__cpu_huge_free(tb->mem, tb->mem_len);
  free(tb->t);
  free(tb->segs);
  memset(tb, 0, sizeof *tb);
}
