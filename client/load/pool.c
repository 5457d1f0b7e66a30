/* Building the request pool (see pool.h). */
#include "client/load/pool.h"

#include <stdlib.h>
#include <string.h>

#include "client/lib/input.h"
#include "client/lib/wire.h"
#include "client/load/rng.h"
#include "client/load/zipf.h"
#include "proto/microrec.pb-c.h"

#define MR_POOL_MAX_REQUESTS 4096
#define MR_POOL_MIN_REQUESTS 16

static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

size_t mr_pool_header(uint8_t *hdr, uint64_t id, size_t body_len) {
  uint8_t idf[11];
  idf[0] = 0x08;  /* field 1, varint */
  size_t idn = 1 + put_varint(idf + 1, id);
  mr_wire_put_len(hdr, (uint32_t)(idn + body_len));
  memcpy(hdr + MR_WIRE_HEADER, idf, idn);
  return MR_WIRE_HEADER + idn;
}

void mr_pool_free(mr_pool_t *p) {
  free(p->data);
  free(p->off);
  free(p->len);
  memset(p, 0, sizeof *p);
}

/* Appends one entry: field 2 (infer) wrapping the InferRequest. */
static int add_entry(mr_pool_t *p, size_t j, size_t *cap, size_t batch,
                     float *dense, size_t n_dense, uint64_t *sparse,
                     size_t n_sparse, mr_err_t *err) {
  Microrec__InferRequest ir = MICROREC__INFER_REQUEST__INIT;
  ir.num_samples = (uint32_t)batch;
  ir.n_dense = n_dense;
  ir.dense = dense;
  ir.n_sparse = n_sparse;
  ir.sparse = sparse;
  size_t body = microrec__infer_request__get_packed_size(&ir);
  size_t used = j ? p->off[j - 1] + p->len[j - 1] : 0;
  size_t need = used + 11 + body;
  if (need > *cap) {
    size_t nc = *cap ? *cap : 1 << 16;
    while (nc < need) nc *= 2;
    uint8_t *nd = realloc(p->data, nc);
    if (!nd)
      return mr_err_set(err, MR_ENOMEM,
                        "out of memory for a request pool of %zu bytes", nc);
    p->data = nd;
    *cap = nc;
  }
  uint8_t *q = p->data + used;
  q[0] = 0x12;  /* field 2, length-delimited */
  size_t hn = 1 + put_varint(q + 1, body);
  microrec__infer_request__pack(&ir, q + hn);
  p->off[j] = used;
  p->len[j] = hn + body;
  if (p->len[j] > p->max_len) p->max_len = p->len[j];
  return 0;
}

static int load_criteo(const mr_pool_spec_t *s, mr_input_t *in,
                       mr_err_t *err) {
  if (s->num_dense != 0 && s->num_dense != 13)
    return mr_err_set(err, MR_EINVAL,
                      "--criteo: the file has 13 dense features but the "
                      "model wants %zu (expected 13, or 0 to drop them)",
                      s->num_dense);
  if (s->num_tables > 26)
    return mr_err_set(err, MR_EINVAL,
                      "--criteo: the file has 26 categorical features but "
                      "the model has %zu tables (expected at most 26)",
                      s->num_tables);
  int rc = mr_input_load_criteo(in, s->criteo, s->num_dense, s->num_tables,
                                s->rows, err);
  if (rc) return rc;
  if (in->n == 0)
    return mr_err_set(err, MR_EINVAL, "--criteo: %s has no rows to replay",
                      s->criteo);
  return 0;
}

int mr_pool_build(mr_pool_t *p, const mr_pool_spec_t *s, mr_err_t *err) {
  memset(p, 0, sizeof *p);
  if (s->batch < 1)
    return mr_err_set(err, MR_EINVAL, "batch must be at least 1");
  for (size_t k = 0; k < s->num_tables; k++)
    if (s->rows[k] == 0)
      return mr_err_set(err, MR_EINVAL, "table %zu has 0 rows", k);
  size_t budget = s->max_samples ? s->max_samples : 65536;
  size_t count = budget / s->batch;
  if (count < MR_POOL_MIN_REQUESTS) count = MR_POOL_MIN_REQUESTS;
  if (count > MR_POOL_MAX_REQUESTS) count = MR_POOL_MAX_REQUESTS;

  mr_input_t in = {0};
  int rc = 0;
  if (s->criteo) {
    rc = load_criteo(s, &in, err);
    if (rc) goto out;
    /* One pass over the file (or the budget), in order, wrapping. */
    size_t pass = (in.n + s->batch - 1) / s->batch;
    if (pass < count) count = pass;
    p->file_rows = in.n;
  }
  p->batch = s->batch;
  p->count = count;
  p->off = calloc(count, sizeof *p->off);
  p->len = calloc(count, sizeof *p->len);
  size_t nd = s->batch * s->num_dense, ns = s->batch * s->num_tables;
  float *dense = malloc((nd ? nd : 1) * sizeof *dense);
  uint64_t *sparse = malloc((ns ? ns : 1) * sizeof *sparse);
  mr_zipf_t *zipf = calloc(s->num_tables ? s->num_tables : 1, sizeof *zipf);
  if (!p->off || !p->len || !dense || !sparse || !zipf) {
    rc = mr_err_set(err, MR_ENOMEM, "out of memory for the request pool");
    goto done;
  }
  for (size_t k = 0; k < s->num_tables && s->ids == MR_IDS_ZIPF; k++)
    if ((rc = mr_zipf_init(&zipf[k], s->rows[k], s->zipf_s, err))) goto done;
  mr_rng_t rng;
  mr_rng_seed(&rng, s->seed);
  size_t cap = 0, row = 0;
  for (size_t j = 0; j < count; j++) {
    for (size_t b = 0; b < s->batch; b++) {
      float *d = dense + b * s->num_dense;
      uint64_t *id = sparse + b * s->num_tables;
      if (s->criteo) {
        if (s->num_dense)
          memcpy(d, in.dense + row * s->num_dense, s->num_dense * sizeof *d);
        for (size_t k = 0; k < s->num_tables; k++)
          id[k] = (uint64_t)in.ids[row * s->num_tables + k];
        row = (row + 1) % in.n;
        continue;
      }
      /* Dense values spread like ln(1 + count) of Criteo's features. */
      for (size_t f = 0; f < s->num_dense; f++)
        d[f] = (float)(mr_rng_double(&rng) * 5.0);
      for (size_t k = 0; k < s->num_tables; k++)
        id[k] = s->ids == MR_IDS_ZIPF ? mr_zipf_id(&zipf[k], &rng)
                                      : mr_rng_below(&rng, s->rows[k]);
    }
    rc = add_entry(p, j, &cap, s->batch, dense, nd, sparse, ns, err);
    if (rc) goto done;
  }
done:
  free(dense);
  free(sparse);
  free(zipf);
out:
  mr_input_free(&in);
  if (rc) mr_pool_free(p);
  return rc;
}
