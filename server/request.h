/* One protocol request from the moment its frame is decoded until its
 * response is encoded. Requests come from a free list (mr_request_pool_t);
 * each keeps its decode arena and its output arrays between uses, so after
 * warm-up a request costs no malloc.
 *
 * Ownership and threads: the loop thread gets, decodes, validates and
 * finally puts a request. In between, for an infer request, the batcher owns
 * the fields under "batching": engine threads write logits/scores for the
 * samples they took, and the one that finishes the last sample hands the
 * request back to the loop (batcher.h). */
#ifndef MR_REQUEST_H
#define MR_REQUEST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fpga/engine.h"
#include "fpga/err.h"
#include "server/arena.h"

struct mr_conn;
struct mr_slot;

typedef enum mr_req_kind {
  MR_REQ_UNKNOWN = 0, /* no body, or one this server does not know */
  MR_REQ_INFER,
  MR_REQ_HEALTH,
  MR_REQ_MODEL_INFO,
  MR_REQ_STATS,
} mr_req_kind_t;

typedef struct mr_request mr_request_t;
struct mr_request {
  mr_request_t *next;    /* free list, staging list, completion queue */
  struct mr_conn *conn;  /* NULL once its connection is gone (orphaned) */
  struct mr_slot *slot;  /* engine it was validated for (one ref held) */
  uint64_t id;
  mr_req_kind_t kind;

  /* infer, valid after mr_request_validate */
  uint32_t num_samples;
  size_t num_dense, num_tables;  /* of the model (after validate) */
  size_t got_dense, got_sparse;  /* counts the client sent */
  int want_logits;
  const float *dense;    /* num_samples * num_dense, in the arena */
  const int64_t *ids;    /* num_samples * num_tables, in the arena */
  float *logits, *scores;/* num_samples each; capacity kept */
  size_t out_cap;

  /* batching: taken under the ring's lock; remaining counts down as engine
   * threads finish slices; the first failure wins `failed` and writes
   * error. */
  uint32_t taken;
  _Atomic uint32_t remaining;
  _Atomic int failed;
  char error[MR_ERR_MSG_MAX + 16];

  /* monotonic ns: frame fully read, taken into a batch, engine start and
   * end (of its first and last slice) */
  uint64_t t_recv, t_batched, t_start, t_end;

  mr_arena_t arena;
};

typedef struct mr_request_pool {
  mr_request_t *free;
  size_t allocated; /* requests ever made */
  size_t idle;      /* on the free list */
} mr_request_pool_t;

void mr_request_pool_init(mr_request_pool_t *p);
/* Frees the idle requests; every request must have been put back. */
void mr_request_pool_free(mr_request_pool_t *p);
/* A clean request, or NULL if memory is exhausted. Loop thread. */
mr_request_t *mr_request_get(mr_request_pool_t *p);
/* Back to the free list (arena reset; capacity kept). The caller has
 * released r->slot. Loop thread. */
void mr_request_put(mr_request_pool_t *p, mr_request_t *r);

/* Decodes one Request message into r (arrays point into r's arena). On
 * malformed bytes returns MR_EPROTO and sets r->id from the leading id
 * field when it can be read (else 0), so the error can still be matched. */
int mr_request_decode(mr_request_t *r, const uint8_t *msg, size_t len,
                      mr_err_t *err);

/* Checks an infer request against the engine: 1 <= num_samples <=
 * max_samples, dense count = num_samples * num_dense, sparse count =
 * num_samples * num_tables, ids within their tables and dense values finite
 * (mr_engine_check); sizes the outputs. MR_EINVAL / MR_ERANGE / MR_ENOMEM
 * with a message that says what was expected. */
int mr_request_validate(mr_request_t *r, const mr_engine_t *e,
                        size_t max_samples, mr_err_t *err);

/* The wire Status (proto/microrec.proto) for an error code. */
int mr_request_status_of(int code);

#endif
