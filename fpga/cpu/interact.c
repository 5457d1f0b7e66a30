/* The dot and cat interactions, fused with the gather (see interact.h). */
#include "fpga/cpu/interact.h"

void mr__cpu_interact_layout(mr_cpu_interact_t *ix, const mr_model_t *m,
                             size_t *dst_base, size_t *stride) {
  size_t nt = m->num_tables;
  ix->kind = m->interaction;
  ix->xw = m->num_bot ? m->bot[m->num_bot - 1].out : 0;
  if (m->interaction == MR_INTERACT_DOT) {
    size_t has_x = ix->xw ? 1 : 0;
    ix->nvec = nt + has_x;
    ix->d = nt ? m->tables[0].dim : ix->xw;
    /* Room for kernels that read 16 columns past the last vector. */
    ix->npad = (ix->nvec + 15) / 16 * 16 + 16;
    ix->top_in = ix->xw + ix->nvec * (ix->nvec - 1) / 2;
    for (size_t t = 0; t < nt; t++) dst_base[t] = t + has_x;
    *stride = ix->npad;
  } else {
    size_t pos = ix->xw;
    for (size_t t = 0; t < nt; t++) {
      dst_base[t] = pos;
      pos += m->tables[t].dim;
    }
    ix->nvec = ix->d = ix->npad = 0;
    ix->top_in = pos;
    *stride = 1;
  }
}

void mr__cpu_interact_run(const mr_cpu_interact_t *ix, const mr_cpu_tables_t *tb,
                          const mr_cpu_kernels_t *k, size_t m,
                          const int64_t *ids, size_t nt, float *z, size_t ldz,
                          float *vec, int gather_only) {
  const size_t dist = tb->prefetch_dist;
  for (size_t s = 0; s < m; s++) {
    if (s + dist < m) mr__cpu_lookup_prefetch(tb, ids + (s + dist) * nt);
    float *zs = z + s * ldz;
    if (ix->kind == MR_INTERACT_CAT) {
      mr__cpu_lookup_gather(tb, ids + s * nt, zs);
      continue;
    }
    if (ix->xw)
      for (size_t c = 0; c < ix->d; c++) vec[c * ix->npad] = zs[c];
    mr__cpu_lookup_gather(tb, ids + s * nt, vec);
    if (gather_only) {
      zs[ix->xw] = vec[0]; /* keep the gather observable */
      continue;
    }
    k->dot(ix->nvec, ix->d, vec, ix->npad, zs + ix->xw);
  }
}
