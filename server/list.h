/* An intrusive circular doubly-linked list (like libuv's QUEUE): O(1)
 * insert and remove, so a connection can leave the server's lists the
 * moment it closes. Not thread-safe. */
#ifndef MR_LIST_H
#define MR_LIST_H

#include <stddef.h>

typedef struct mr_link {
  struct mr_link *prev, *next;
} mr_link_t;

static inline void mr_list_init(mr_link_t *h) { h->prev = h->next = h; }
static inline int mr_list_empty(const mr_link_t *h) { return h->next == h; }
/* A link not in any list points to itself (after mr_list_init/remove). */
static inline int mr_list_linked(const mr_link_t *l) { return l->next != l; }

static inline void mr_list_push(mr_link_t *h, mr_link_t *l) {
  l->prev = h->prev;
  l->next = h;
  h->prev->next = l;
  h->prev = l;
}

static inline void mr_list_remove(mr_link_t *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->prev = l->next = l;
}

/* Moves every element of from to (empty) to. */
static inline void mr_list_move(mr_link_t *from, mr_link_t *to) {
  mr_list_init(to);
  if (mr_list_empty(from)) return;
  to->next = from->next;
  to->prev = from->prev;
  to->next->prev = to;
  to->prev->next = to;
  mr_list_init(from);
}

#define mr_list_entry(ptr, type, member) \
  ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
