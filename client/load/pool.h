/* The requests a load run sends, encoded once before the run so the send
 * loop only copies bytes: each entry is the Request's `infer` field (tag,
 * length, InferRequest) for `batch` samples; the sender prepends the frame
 * length and the request id (protobuf accepts fields in any order).
 * Sources: synthetic ids (uniform or Zipf per table, from the table sizes
 * the server reported) with random dense values, or a Criteo TSV file
 * replayed in order, wrapping around at its end.
 *
 * Ownership: mr_pool_build allocates, mr_pool_free releases. Read-only
 * afterwards: any thread may read it. */
#ifndef MR_LOAD_POOL_H
#define MR_LOAD_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"

typedef enum mr_ids_kind {
  MR_IDS_UNIFORM = 0,
  MR_IDS_ZIPF = 1,
} mr_ids_kind_t;

typedef struct mr_pool_spec {
  size_t batch;              /* samples per request, >= 1 */
  size_t num_dense;          /* the model's dense inputs */
  size_t num_tables;
  const uint64_t *rows;      /* num_tables row counts */
  mr_ids_kind_t ids;
  double zipf_s;             /* exponent for MR_IDS_ZIPF */
  const char *criteo;        /* replay this TSV file instead (NULL: none) */
  uint64_t seed;
  size_t max_samples;        /* budget of distinct samples; 0 = 65536 */
} mr_pool_spec_t;

typedef struct mr_pool {
  size_t count;              /* requests in the pool */
  size_t batch;
  size_t file_rows;          /* rows read from the Criteo file (0: synthetic) */
  uint8_t *data;             /* all entries back to back */
  size_t *off, *len;         /* entry j is data[off[j] .. off[j] + len[j]) */
  size_t max_len;
} mr_pool_t;

/* Bytes of the longest frame header mr_pool_header writes. */
#define MR_POOL_HEADER_MAX 16

int mr_pool_build(mr_pool_t *p, const mr_pool_spec_t *s, mr_err_t *err);
void mr_pool_free(mr_pool_t *p);

/* Writes the frame header for request `id` whose entry has body_len bytes:
 * the 4-byte frame length, then field 1 (id). Returns its length. */
size_t mr_pool_header(uint8_t *hdr, uint64_t id, size_t body_len);

#endif
