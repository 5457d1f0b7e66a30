/* A bump allocator for decoding one request with protobuf-c: everything
 * protobuf_c_message_unpack allocates (the message, its packed arrays) comes
 * from one block, and mr_arena_reset takes it all back at once. The block
 * grows to the largest request seen (up to MR_ARENA_KEEP bytes kept), so
 * after warm-up decoding does not call malloc.
 *
 * Ownership: the arena owns its blocks; memory it hands out is valid until
 * the next reset. Threads: one owner at a time (the request's). */
#ifndef MR_ARENA_H
#define MR_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define MR_ARENA_ALIGN 16
#define MR_ARENA_KEEP (1u << 20)

typedef struct mr_arena_chunk mr_arena_chunk_t;

typedef struct mr_arena {
  uint8_t *base;
  size_t cap, used;
  mr_arena_chunk_t *extra; /* overflow blocks since the last reset */
  size_t extra_bytes;
  ProtobufCAllocator pb;   /* protobuf-c view of this arena */
} mr_arena_t;

void mr_arena_init(mr_arena_t *a);
/* 16-byte aligned memory, or NULL if malloc fails. */
void *mr_arena_alloc(mr_arena_t *a, size_t n);
/* Forgets every allocation; grows the main block to what was needed. */
void mr_arena_reset(mr_arena_t *a);
void mr_arena_free(mr_arena_t *a);

#endif
