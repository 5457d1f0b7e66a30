/* Anonymous memory for embedding tables: 2 MiB aligned and advised to use
 * transparent huge pages, so random row reads miss the TLB less. Private to
 * fpga/cpu/. The caller owns the block; free with the same length. */
#ifndef MR_CPU_HUGEMEM_H
#define MR_CPU_HUGEMEM_H

#include <stddef.h>

#define MR_CPU_HUGE_PAGE ((size_t)2 << 20)

/* A zeroed block of at least len bytes (len > 0), or NULL with errno set.
 * Falls back to plain pages silently when huge pages are unavailable. */
void *mr__cpu_huge_alloc(size_t len);
void mr__cpu_huge_free(void *p, size_t len);

#endif
