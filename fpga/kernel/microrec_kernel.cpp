// The MicroRec kernel's hardware top for Vitis HLS: the stages of
// microrec_kernel.hpp wired into one dataflow region, sized by the plan's
// generated header (microrec_plan.h, from `microrec plan --emit-vitis`).
//
// Arguments (the host driver fpga/xrt/ relies on this order):
//   0 ids    m_axi  n * num_logical uint32
//   1 dense  m_axi  n * num_dense floats (a dummy buffer without dense input)
//   2 out    m_axi  n * {logit, sigmoid(logit)}; IDENT: the plan hash
//   3 init   m_axi  weights and on-chip tables (microrec_geom.h)
//   4 n      scalar samples
//   5 mode   scalar MR_K_MODE_RUN / _LOAD / _IDENT
//   6..      bank<k> m_axi, one per off-chip bank, each its own bundle (so
//            its own AXI port, mapped to HBM[i] / DDR[j] by connectivity.cfg)
//
// MR_K_MODE_LOAD copies the weights and on-chip tables into on-chip memory
// once (they stay between calls); MR_K_MODE_RUN then scores batches.
#include <string.h>

#include "microrec_plan.h"

#include "microrec_kernel.hpp"

#define MR_K_PRAGMA(x) _Pragma(#x)

namespace {

using fstream = mr_kstream<float>;
using rstream = mr_kstream<uint64_t>;
constexpr const mr_kgeom_t &G = MR_KPLAN;

// ---- on-chip memories: weights and URAM tables, written by load() ----

#define MR_K_WEIGHTS(part, i)                               \
  float part##_w##i[G.part[i].in * G.part[i].out];          \
  float part##_b##i[G.part[i].out];
#define MR_K_BOT_WEIGHTS(i, lanes) MR_K_WEIGHTS(bot, i)
#define MR_K_TOP_WEIGHTS(i, lanes) MR_K_WEIGHTS(top, i)
#define MR_K_URAM(k) float uram##k[G.bank_words[k]];
MR_KPLAN_BOT(MR_K_BOT_WEIGHTS)
MR_KPLAN_TOP(MR_K_TOP_WEIGHTS)
MR_KPLAN_ONCHIP(MR_K_URAM)

void load(const float *init) {
#define MR_K_LOAD_LAYER(part, i)                                   \
  for (uint64_t j = 0; j < (uint64_t)G.part[i].in * G.part[i].out; j++) { \
    MR_K_PRAGMA(HLS PIPELINE II = 1)                               \
    part##_w##i[j] = init[G.part[i].w_off + j];                    \
  }                                                                \
  for (uint32_t j = 0; j < G.part[i].out; j++) {                   \
    MR_K_PRAGMA(HLS PIPELINE II = 1)                               \
    part##_b##i[j] = init[G.part[i].b_off + j];                    \
  }
#define MR_K_LOAD_BOT(i, lanes) MR_K_LOAD_LAYER(bot, i)
#define MR_K_LOAD_TOP(i, lanes) MR_K_LOAD_LAYER(top, i)
#define MR_K_LOAD_URAM(k)                                   \
  for (uint64_t j = 0; j < G.bank_words[k]; j++) {          \
    MR_K_PRAGMA(HLS PIPELINE II = 1)                        \
    uram##k[j] = init[G.bank_init_off[k] + j];              \
  }
  MR_KPLAN_BOT(MR_K_LOAD_BOT)
  MR_KPLAN_TOP(MR_K_LOAD_TOP)
  MR_KPLAN_ONCHIP(MR_K_LOAD_URAM)
  (void)init;
}

float bits(uint32_t v) {
  float f;
  memcpy(&f, &v, sizeof f);
  return f;
}

void ident(float *out) {
  out[0] = bits((uint32_t)MR_KPLAN_HASH);
  out[1] = bits((uint32_t)(MR_KPLAN_HASH >> 32));
}

// ---- dataflow processes: one function each, with its own local memory ----

#define MR_K_LOOKUP_PORT(k)                                               \
  void lookup##k(const float *bank, rstream &rows, fstream &emb,          \
                 uint32_t n) {                                            \
    mrk::lookup_unit(G, k, bank, rows, emb, n);                           \
  }
#define MR_K_LOOKUP_ONCHIP(k)                                             \
  void lookup##k(rstream &rows, fstream &emb, uint32_t n) {               \
    mrk::lookup_unit(G, k, uram##k, rows, emb, n);                        \
  }
MR_KPLAN_PORTS(MR_K_LOOKUP_PORT)
MR_KPLAN_ONCHIP(MR_K_LOOKUP_ONCHIP)

void gather_e(fstream *emb, fstream &e, uint32_t n) {
  float buf[G.emb_width];
  mrk::gather(G, emb, e, buf, n);
}

void interact_z(fstream &x, fstream &e, fstream &z, uint32_t n) {
  float buf[G.bot_width + G.emb_width];
#pragma HLS ARRAY_PARTITION variable = buf cyclic factor = 16
  mrk::interact(G, x, e, z, buf, n);
}

#define MR_K_PE(part, i, lanes, final)                                     \
  void part##_pe##i(fstream &in, fstream &out, uint32_t n) {               \
    float x[G.part[i].in];                                                 \
    float acc[G.part[i].out];                                              \
    MR_K_PRAGMA(HLS ARRAY_PARTITION variable = acc cyclic factor = lanes)  \
    mrk::dense_pe<lanes>(G.part[i], part##_w##i, part##_b##i, in, out, x,  \
                         acc, final, n);                                   \
  }
#define MR_K_BOT_PE(i, lanes) MR_K_PE(bot, i, lanes, false)
#define MR_K_TOP_PE(i, lanes) MR_K_PE(top, i, lanes, i + 1 == G.num_top)
MR_KPLAN_BOT(MR_K_BOT_PE)
MR_KPLAN_TOP(MR_K_TOP_PE)

#define MR_K_PARAM(k) , const float *bank##k
#define MR_K_ARG(k) , bank##k

void run(const uint32_t *ids, const float *dense, float *out,
         uint32_t n MR_KPLAN_PORTS(MR_K_PARAM)) {
#pragma HLS DATAFLOW
  rstream rows[G.num_banks];
  fstream emb[G.num_banks];
  fstream e;
  fstream bot_s[G.num_bot + 1];  // [0] dense input, [i + 1] layer i out
  fstream top_s[G.num_top + 1];  // [0] interaction out, [i + 1] layer i out
#pragma HLS STREAM variable = rows depth = 64
#pragma HLS STREAM variable = emb depth = 512
#pragma HLS STREAM variable = e depth = 1024
#pragma HLS STREAM variable = bot_s depth = 1024
#pragma HLS STREAM variable = top_s depth = 1024

  mrk::distribute(G, ids, rows, n);
#define MR_K_CALL_PORT(k) lookup##k(bank##k, rows[k], emb[k], n);
#define MR_K_CALL_ONCHIP(k) lookup##k(rows[k], emb[k], n);
  MR_KPLAN_PORTS(MR_K_CALL_PORT)
  MR_KPLAN_ONCHIP(MR_K_CALL_ONCHIP)
  gather_e(emb, e, n);
#if MR_KPLAN_HAS_BOT
  mrk::read_dense(G, dense, bot_s[0], n);
#define MR_K_CALL_BOT(i, lanes) bot_pe##i(bot_s[i], bot_s[i + 1], n);
  MR_KPLAN_BOT(MR_K_CALL_BOT)
#else
  (void)dense;
#endif
  interact_z(bot_s[G.num_bot], e, top_s[0], n);
#define MR_K_CALL_TOP(i, lanes) top_pe##i(top_s[i], top_s[i + 1], n);
  MR_KPLAN_TOP(MR_K_CALL_TOP)
  mrk::write_out(top_s[G.num_top], out, n);
}

}  // namespace

#define MR_K_IFACE(k)                                                 \
  MR_K_PRAGMA(HLS INTERFACE m_axi port = bank##k bundle = gmem##k     \
                  offset = slave num_read_outstanding = 32            \
                  max_read_burst_length = 16)

extern "C" void microrec_kernel(const uint32_t *ids, const float *dense,
                                float *out, const float *init, uint32_t n,
                                uint32_t mode MR_KPLAN_PORTS(MR_K_PARAM)) {
#pragma HLS INTERFACE m_axi port = ids bundle = gmem_io offset = slave
#pragma HLS INTERFACE m_axi port = dense bundle = gmem_io offset = slave
#pragma HLS INTERFACE m_axi port = out bundle = gmem_io offset = slave
#pragma HLS INTERFACE m_axi port = init bundle = gmem_io offset = slave
  MR_KPLAN_PORTS(MR_K_IFACE)
#pragma HLS INTERFACE s_axilite port = n
#pragma HLS INTERFACE s_axilite port = mode
#pragma HLS INTERFACE s_axilite port = return
#define MR_K_PARTITION(part, i, lanes)                                      \
  MR_K_PRAGMA(HLS ARRAY_PARTITION variable = part##_w##i cyclic factor =   \
                  lanes)                                                    \
  MR_K_PRAGMA(HLS ARRAY_PARTITION variable = part##_b##i cyclic factor =   \
                  lanes)
#define MR_K_PARTITION_BOT(i, lanes) MR_K_PARTITION(bot, i, lanes)
#define MR_K_PARTITION_TOP(i, lanes) MR_K_PARTITION(top, i, lanes)
  MR_KPLAN_BOT(MR_K_PARTITION_BOT)
  MR_KPLAN_TOP(MR_K_PARTITION_TOP)
#define MR_K_BIND_URAM(k) \
  MR_K_PRAGMA(HLS BIND_STORAGE variable = uram##k type = ram_2p impl = uram)
  MR_KPLAN_ONCHIP(MR_K_BIND_URAM)

  if (mode == MR_K_MODE_LOAD)
    load(init);
  else if (mode == MR_K_MODE_IDENT)
    ident(out);
  else
    run(ids, dense, out, n MR_KPLAN_PORTS(MR_K_ARG));
}
