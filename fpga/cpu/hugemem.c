/* 2 MiB-aligned anonymous mappings advised MADV_HUGEPAGE (see hugemem.h). */
#include "fpga/cpu/hugemem.h"

#include <stdint.h>
#include <sys/mman.h>

static size_t huge_round(size_t len) {
  return (len + MR_CPU_HUGE_PAGE - 1) & ~(MR_CPU_HUGE_PAGE - 1);
}

void *mr__cpu_huge_alloc(size_t len) {
  if (len == 0 || len > SIZE_MAX - 2 * MR_CPU_HUGE_PAGE) return NULL;
  size_t l = huge_round(len);
  /* Over-map by one huge page, then trim to an aligned l bytes. */
  uint8_t *raw = mmap(NULL, l + MR_CPU_HUGE_PAGE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  uintptr_t a = ((uintptr_t)raw + MR_CPU_HUGE_PAGE - 1) & ~(uintptr_t)(MR_CPU_HUGE_PAGE - 1);
  uint8_t *p = (uint8_t *)a;
  size_t head = (size_t)(p - raw), tail = MR_CPU_HUGE_PAGE - head;
  if (head) munmap(raw, head);
  if (tail) munmap(p + l, tail);
  /* Before the first touch, so the faults take huge pages; failure (no THP
   * in this kernel) leaves plain pages, which still work. */
  (void)madvise(p, l, MADV_HUGEPAGE);
  return p;
}

void mr__cpu_huge_free(void *p, size_t len) {
  if (p) munmap(p, huge_round(len));
}
