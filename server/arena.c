/* Bump allocator with overflow chunks (see arena.h). */
#include "server/arena.h"

#include <stdlib.h>

struct mr_arena_chunk {
  mr_arena_chunk_t *next;
  size_t size;
  _Alignas(MR_ARENA_ALIGN) uint8_t data[];
};

static void *pb_alloc(void *data, size_t n) { return mr_arena_alloc(data, n); }
static void pb_free(void *data, void *p) { (void)data, (void)p; }

void mr_arena_init(mr_arena_t *a) {
  a->base = NULL;
  a->cap = a->used = 0;
  a->extra = NULL;
  a->extra_bytes = 0;
  a->pb.alloc = pb_alloc;
  a->pb.free = pb_free;
  a->pb.allocator_data = a;
}

static size_t round_up(size_t n) {
  return (n + MR_ARENA_ALIGN - 1) & ~(size_t)(MR_ARENA_ALIGN - 1);
}

void *mr_arena_alloc(mr_arena_t *a, size_t n) {
  n = round_up(n ? n : 1);
  if (a->cap - a->used >= n) {
    void *p = a->base + a->used;
    a->used += n;
    return p;
  }
  mr_arena_chunk_t *c = malloc(sizeof *c + n);
  if (!c) return NULL;
  c->next = a->extra;
  c->size = n;
  a->extra = c;
  a->extra_bytes += n;
  return c->data;
}

static void free_chunks(mr_arena_t *a) {
  while (a->extra) {
    mr_arena_chunk_t *next = a->extra->next;
    free(a->extra);
    a->extra = next;
  }
  a->extra_bytes = 0;
}

void mr_arena_reset(mr_arena_t *a) {
  size_t need = a->used + a->extra_bytes;
  free_chunks(a);
  a->used = 0;
  if (need > a->cap) {
    /* Next time the whole request fits in the main block, unless it is
     * too large to keep for every pooled request. */
    free(a->base);
    a->base = NULL;
    a->cap = 0;
    if (need <= MR_ARENA_KEEP) {
      size_t cap = 1024;
      while (cap < need) cap *= 2;
      a->base = aligned_alloc(MR_ARENA_ALIGN, cap);
      if (a->base) a->cap = cap;
    }
  }
}

void mr_arena_free(mr_arena_t *a) {
  free_chunks(a);
  a->used = 0;
  free(a->base);
  a->base = NULL;
  a->cap = 0;
}
