/* A growable byte buffer whose capacity is kept between uses (read and
 * write buffers of a connection), so a warmed-up connection does not
 * allocate. The owner frees it with mr_buf_free. Not thread-safe. */
#ifndef MR_BUF_H
#define MR_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fpga/err.h"

typedef struct mr_buf {
  uint8_t *data;
  size_t len, cap;
} mr_buf_t;

/* Makes room for `more` bytes after len; MR_ENOMEM if it cannot. */
static inline int mr_buf_reserve(mr_buf_t *b, size_t more) {
  if (b->cap - b->len >= more) return 0;
  size_t want = b->cap ? b->cap : 4096;
  while (want - b->len < more) want *= 2;
  uint8_t *p = realloc(b->data, want);
  if (!p) return MR_ENOMEM;
  b->data = p;
  b->cap = want;
  return 0;
}

/* Gives memory back when a burst left a buffer above keep bytes. */
static inline void mr_buf_trim(mr_buf_t *b, size_t keep) {
  if (b->len == 0 && b->cap > keep) {
    free(b->data);
    b->data = NULL;
    b->cap = 0;
  }
}

static inline void mr_buf_free(mr_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

#endif
