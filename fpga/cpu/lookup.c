/* Run-time lookups into the plan-shaped tables (see tables.h): one row per
 * physical table per sample, prefetched ahead, scattered by segments. */
#include <string.h>

#include "fpga/cpu/tables.h"

static inline const unsigned char *row_of(const mr_cpu_ptable_t *pt,
                                          const int64_t *ids) {
  uint64_t r = (uint64_t)ids[pt->slot[0]] * pt->mult[0] +
               (uint64_t)ids[pt->slot[1]] * pt->mult[1] +
               (uint64_t)ids[pt->slot[2]] * pt->mult[2];
  return pt->base + r * pt->row_bytes;
}

void mr__cpu_lookup_prefetch(const mr_cpu_tables_t *tb, const int64_t *ids) {
  for (size_t i = 0; i < tb->num; i++) {
    const mr_cpu_ptable_t *pt = &tb->t[i];
    uintptr_t a = (uintptr_t)row_of(pt, ids);
    uintptr_t end = a + pt->row_bytes;
    for (a &= ~(uintptr_t)63; a < end; a += 64)
      __builtin_prefetch((const void *)a, 0, 3);
  }
}

/* Short contiguous copies without a libc call: 8 and 4 floats at a time in
 * fixed-size memcpys the compiler turns into vector moves. */
static inline void copy_floats(float *d, const float *s, size_t n) {
  for (; n >= 8; n -= 8, d += 8, s += 8) memcpy(d, s, 8 * sizeof(float));
  for (; n >= 4; n -= 4, d += 4, s += 4) memcpy(d, s, 4 * sizeof(float));
  for (; n > 0; n--) *d++ = *s++;
}

/* The dot layout's column scatter, four elements per step. */
static inline void strided_floats(float *d, size_t stride, const float *s,
                                  size_t n) {
  for (; n >= 4; n -= 4, d += 4 * stride, s += 4) {
    d[0] = s[0];
    d[stride] = s[1];
    d[2 * stride] = s[2];
    d[3 * stride] = s[3];
  }
  for (; n > 0; n--, d += stride) *d = *s++;
}

/* int8 rows (tables.h): bias + scale * q per segment. */
static void gather_int8(const mr_cpu_tables_t *tb, const int64_t *ids,
                        float *dst) {
  const size_t stride = tb->stride;
  for (size_t i = 0; i < tb->num; i++) {
    const mr_cpu_ptable_t *pt = &tb->t[i];
    const unsigned char *row = row_of(pt, ids);
    const unsigned char *q = row + 8 * pt->num_segs;
    const mr_cpu_seg_t *sg = tb->segs + pt->seg_begin;
    for (size_t j = 0; j < pt->num_segs; j++) {
      float sb[2];
      memcpy(sb, row + 8 * j, sizeof sb);
      const unsigned char *src = q + sg[j].src;
      float *d = dst + sg[j].dst;
      for (size_t l = 0; l < sg[j].len; l++) d[l * stride] = sb[1] + sb[0] * (float)src[l];
    }
  }
}

void mr__cpu_lookup_gather(const mr_cpu_tables_t *tb, const int64_t *ids,
                           float *dst) {
  if (tb->int8) {
    gather_int8(tb, ids, dst);
    return;
  }
  const size_t stride = tb->stride;
  for (size_t i = 0; i < tb->num; i++) {
    const mr_cpu_ptable_t *pt = &tb->t[i];
    const float *row = (const float *)row_of(pt, ids);
    const mr_cpu_seg_t *sg = tb->segs + pt->seg_begin;
    for (size_t j = 0; j < pt->num_segs; j++) {
      const float *src = row + sg[j].src;
      float *d = dst + sg[j].dst;
      if (stride == 1) {
        copy_floats(d, src, sg[j].len);
      } else {
        strided_floats(d, stride, src, sg[j].len);
      }
    }
  }
}
