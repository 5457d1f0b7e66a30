// The kernel's dataflow wired at run time (microrec_rt.h): the stage
// functions of microrec_kernel.hpp, called in the order Vitis' C simulation
// runs a dataflow region, with streams and buffers from a work area.
#include "microrec_rt.h"

#include <new>
#include <vector>

#include "microrec_kernel.hpp"

struct mr_kwork {
  std::vector<mr_kstream<uint64_t>> rows;  // one per bank
  std::vector<mr_kstream<float>> emb;      // one per bank
  mr_kstream<float> e, z;
  std::vector<mr_kstream<float>> act;      // dense in, bottom outs, top outs
  std::vector<float> ebuf, ibuf, x, acc;
};

namespace {

template <class S>
bool drained(const S &s) {
  return s.empty() && !s.underflow();
}

int run(const mr_kgeom_t &g, mr_kwork &w, const float *const *banks,
        const float *init, const uint32_t *ids, const float *dense,
        float *out, uint32_t n) {
  for (auto &s : w.rows) s.reset();
  for (auto &s : w.emb) s.reset();
  for (auto &s : w.act) s.reset();
  w.e.reset();
  w.z.reset();

  mrk::distribute(g, ids, w.rows.data(), n);
  for (uint32_t b = 0; b < g.num_banks; b++)
    mrk::lookup_unit(g, b, banks[b], w.rows[b], w.emb[b], n);
  mrk::gather(g, w.emb.data(), w.e, w.ebuf.data(), n);

  // act[0] = dense input, act[1..num_bot] = bottom outputs, then the top.
  if (g.num_bot) mrk::read_dense(g, dense, w.act[0], n);
  for (uint32_t i = 0; i < g.num_bot; i++) {
    const mr_klayer_t &L = g.bot[i];
    mrk::dense_pe<1>(L, init + L.w_off, init + L.b_off, w.act[i],
                     w.act[i + 1], w.x.data(), w.acc.data(), false, n);
  }
  mrk::interact(g, w.act[g.num_bot], w.e, w.z, w.ibuf.data(), n);
  mr_kstream<float> *in = &w.z;
  for (uint32_t i = 0; i < g.num_top; i++) {
    const mr_klayer_t &L = g.top[i];
    mr_kstream<float> *o = &w.act[g.num_bot + 1 + i];
    mrk::dense_pe<1>(L, init + L.w_off, init + L.b_off, *in, *o, w.x.data(),
                     w.acc.data(), i + 1 == g.num_top, n);
    in = o;
  }
  mrk::write_out(*in, out, n);

  // Every stream must be read exactly as often as written.
  bool ok = drained(w.e) && drained(w.z);
  for (const auto &s : w.rows) ok = ok && drained(s);
  for (const auto &s : w.emb) ok = ok && drained(s);
  for (const auto &s : w.act) ok = ok && drained(s);
  return ok ? 0 : MR_KRT_EFLOW;
}

}  // namespace

extern "C" int mr_kernel_rt_work_new(const mr_kgeom_t *g, uint32_t max_batch,
                                     mr_kwork_t **out) {
  *out = nullptr;
  try {
    mr_kwork *w = new mr_kwork;
    w->rows.resize(g->num_banks);
    w->emb.resize(g->num_banks);
    w->act.resize(g->num_bot + g->num_top + 1);
    w->ebuf.assign(g->emb_width ? g->emb_width : 1, 0.0f);
    w->ibuf.assign(g->bot_width + g->emb_width + 1, 0.0f);
    w->x.assign(g->max_width + 1, 0.0f);
    w->acc.assign(g->max_width + 1, 0.0f);
    // Size the streams for a whole batch now, so runs do not allocate.
    const size_t mb = max_batch ? max_batch : 1;
    for (uint32_t b = 0; b < g->num_banks; b++) {
      size_t floats = 0;
      for (uint32_t r = 0; r < g->bank_count[b]; r++)
        floats += g->lookups[g->bank_first[b] + r].cols;
      w->rows[b].reserve(mb * g->bank_count[b]);
      w->emb[b].reserve(mb * floats);
    }
    w->e.reserve(mb * g->emb_width);
    w->z.reserve(mb * g->top_in);
    w->act[0].reserve(mb * g->num_dense);
    for (uint32_t i = 0; i < g->num_bot; i++)
      w->act[i + 1].reserve(mb * g->bot[i].out);
    for (uint32_t i = 0; i < g->num_top; i++)
      w->act[g->num_bot + 1 + i].reserve(mb * (i + 1 == g->num_top
                                                   ? 2
                                                   : g->top[i].out));
    *out = w;
    return 0;
  } catch (const std::bad_alloc &) {
    return MR_KRT_ENOMEM;
  }
}

extern "C" void mr_kernel_rt_work_free(mr_kwork_t *w) { delete w; }

extern "C" int mr_kernel_rt_run(const mr_kgeom_t *g, mr_kwork_t *w,
                                const float *const *banks, const float *init,
                                const uint32_t *ids, const float *dense,
                                float *out, uint32_t n) {
  try {
    return run(*g, *w, banks, init, ids, dense, out, n);
  } catch (const std::bad_alloc &) {
    return MR_KRT_ENOMEM;
  }
}
