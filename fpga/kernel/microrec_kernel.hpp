// The MicroRec kernel's stages (Vitis HLS C++). Each stage is one dataflow
// process; they talk through FIFO streams:
//
//   ids --> distribute --rows[b]--> lookup_unit(b), one per memory bank
//                                        |emb[b]
//                                     gather --e--> interact --z--> top PEs
//   dense --> read_dense --> bottom PEs ------x-----^               |
//                                                       write_out <-+
//
// A stage reads its geometry from a `const mr_kgeom_t &` (microrec_geom.h):
// the constexpr MR_KPLAN of the generated header when Vitis builds the
// hardware (bounds are constants, so loops and arrays get sized), or a
// struct filled at run time for the fpga-sim backend. Same code, same order
// of operations, so the simulation computes bit for bit what the csim build
// of the hardware top computes.
//
// Arithmetic: fp32 multiply-add in input order per output, bias first,
// ReLU after hidden layers, sigmoid fused into the last PE.
//
// `#pragma HLS` lines are read by Vitis and ignored by g++
// (-Wno-unknown-pragmas). Threads: a stage touches only its arguments.
#ifndef MICROREC_KERNEL_HPP
#define MICROREC_KERNEL_HPP

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "microrec_geom.h"

#if __has_include(<hls_stream.h>)
#include <hls_stream.h>
template <class T>
using mr_kstream = hls::stream<T>;
#define MR_K_HAVE_HLS 1
#else
#include <vector>
// Host stand-in for hls::stream: an unbounded FIFO (Vitis' C simulation
// runs dataflow stages one after another, so a stage may write a whole batch
// before the next reads). A ring that grows and never shrinks: once sized by
// the largest batch, running allocates nothing. Reading an empty stream is a
// dataflow bug; it returns T() and is recorded for the caller to report.
template <class T>
class mr_kstream {
 public:
  void write(const T &v) {
    if (count_ == buf_.size()) grow();
    size_t at = head_ + count_;
    if (at >= buf_.size()) at -= buf_.size();
    buf_[at] = v;
    count_++;
  }
  T read() {
    if (count_ == 0) {
      underflow_ = true;
      return T();
    }
    T v = buf_[head_];
    if (++head_ == buf_.size()) head_ = 0;
    count_--;
    return v;
  }
  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }
  bool underflow() const { return underflow_; }
  void reset() {
    head_ = count_ = 0;
    underflow_ = false;
  }
  void reserve(size_t n) {
    while (buf_.size() < n) grow();
  }

 private:
  void grow() {
    std::vector<T> next(buf_.empty() ? 64 : 2 * buf_.size());
    for (size_t i = 0; i < count_; i++) {
      size_t at = head_ + i;
      if (at >= buf_.size()) at -= buf_.size();
      next[i] = buf_[at];
    }
    buf_.swap(next);
    head_ = 0;
  }
  std::vector<T> buf_;
  size_t head_ = 0, count_ = 0;
  bool underflow_ = false;
};
#endif

namespace mrk {

inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// Reads each sample's ids once and hands every bank the rows it must read,
// in its rounds: round r of all banks leaves in the same cycle, so banks run
// in parallel and a sample costs max over banks of their rounds.
template <class RowS>
void distribute(const mr_kgeom_t &g, const uint32_t *ids, RowS *rows,
                uint32_t n) {
  uint32_t id[MR_K_MAX_LOGICAL];
#pragma HLS ARRAY_PARTITION variable = id complete
  for (uint32_t s = 0; s < n; s++) {
    for (uint32_t t = 0; t < g.num_logical; t++) {
#pragma HLS PIPELINE II = 1
      id[t] = ids[(uint64_t)s * g.num_logical + t];
    }
    for (uint32_t r = 0; r < g.max_rounds; r++) {
#pragma HLS PIPELINE II = 1
      for (uint32_t b = 0; b < g.num_banks; b++) {
#pragma HLS UNROLL
        if (r < g.bank_count[b]) {
          const mr_klookup_t &L = g.lookups[g.bank_first[b] + r];
          uint64_t row = 0;
          for (uint32_t f = 0; f < L.num_factors; f++)
            row += (uint64_t)id[L.factor[f]] * L.mult[f];
          rows[b].write(row);
        }
      }
    }
  }
}

// One memory bank: per sample, one row read per round on this bank's own
// AXI port, forwarded in order. The (sample, round, column) nest is one
// pipelined loop over words, so the port keeps reads outstanding across
// rounds and samples instead of waiting out the memory latency per row.
template <class RowS, class EmbS>
void lookup_unit(const mr_kgeom_t &g, uint32_t b, const float *bank,
                 RowS &rows, EmbS &emb, uint32_t n) {
  const uint32_t first = g.bank_first[b], count = g.bank_count[b];
  uint64_t words = 0;  // per sample
  for (uint32_t r = 0; r < count; r++) words += g.lookups[first + r].cols;
  const uint64_t total = words * n;
  uint32_t r = 0, c = 0;
  uint64_t at = 0;
  for (uint64_t i = 0; i < total; i++) {
#pragma HLS PIPELINE II = 1
    const mr_klookup_t &L = g.lookups[first + r];
    if (c == 0) at = L.base + rows.read() * (uint64_t)L.cols;
    emb.write(bank[at + c]);
    if (++c == L.cols) {
      c = 0;
      if (++r == count) r = 0;
    }
  }
}

// Places every bank's columns where they belong in the concatenation of the
// logical tables (e, emb_width floats of scratch) and streams it out.
template <class EmbS, class VecS>
void gather(const mr_kgeom_t &g, EmbS *emb, VecS &e_out, float *e,
            uint32_t n) {
  for (uint32_t s = 0; s < n; s++) {
    for (uint32_t b = 0; b < g.num_banks; b++) {
      for (uint32_t r = 0; r < g.bank_count[b]; r++) {
        const mr_klookup_t &L = g.lookups[g.bank_first[b] + r];
        for (uint32_t k = 0; k < L.num_segs; k++)
          for (uint32_t c = 0; c < L.seg_len[k]; c++) {
#pragma HLS PIPELINE II = 1
            e[L.seg_dst[k] + c] = emb[b].read();
          }
      }
    }
    for (uint32_t i = 0; i < g.emb_width; i++) {
#pragma HLS PIPELINE II = 1
      e_out.write(e[i]);
    }
  }
}

template <class S>
void read_dense(const mr_kgeom_t &g, const float *dense, S &out, uint32_t n) {
  const uint64_t total = (uint64_t)n * g.num_dense;
  for (uint64_t i = 0; i < total; i++) {
#pragma HLS PIPELINE II = 1
    out.write(dense[i]);
  }
}

// A processing element: one dense layer, weights on chip (wt is W^T,
// [in][out]). For each input, LANES outputs take a multiply-add per cycle;
// output o sums bias, then w[o][0] x[0], w[o][1] x[1], ... in that order.
// The last layer (final) emits {logit, sigmoid(logit)}.
template <int LANES, class InS, class OutS>
void dense_pe(const mr_klayer_t &L, const float *wt, const float *bias,
              InS &in, OutS &out, float *x, float *acc, bool final,
              uint32_t n) {
  for (uint32_t s = 0; s < n; s++) {
    for (uint32_t i = 0; i < L.in; i++) {
#pragma HLS PIPELINE II = 1
      x[i] = in.read();
    }
    for (uint32_t o = 0; o < L.out; o++) {
#pragma HLS UNROLL factor = LANES
      acc[o] = bias[o];
    }
    for (uint32_t i = 0; i < L.in; i++) {
      const float xi = x[i];
      const float *w = wt + (uint64_t)i * L.out;
      for (uint32_t o = 0; o < L.out; o++) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor = LANES
        acc[o] += w[o] * xi;
      }
    }
    if (final) {
      out.write(acc[0]);
      out.write(sigmoid(acc[0]));
    } else {
      for (uint32_t o = 0; o < L.out; o++) {
#pragma HLS PIPELINE II = 1
        const float v = acc[o];
        out.write(L.relu && v < 0.0f ? 0.0f : v);
      }
    }
  }
}

// The feature interaction. cat: z = x ++ e. dot (DLRM): with
// T = [x, e_0, .., e_{k-1}] (x only with a bottom MLP), z = x ++
// [<T_i, T_j> for i = 1.. for j < i]. buf holds T (bot_width + emb_width).
template <class XS, class ES, class ZS>
void interact(const mr_kgeom_t &g, XS &x_in, ES &e_in, ZS &z_out, float *buf,
              uint32_t n) {
  for (uint32_t s = 0; s < n; s++) {
    if (g.interaction == 1) {
      for (uint32_t i = 0; i < g.bot_width; i++) {
#pragma HLS PIPELINE II = 1
        z_out.write(x_in.read());
      }
      for (uint32_t i = 0; i < g.emb_width; i++) {
#pragma HLS PIPELINE II = 1
        z_out.write(e_in.read());
      }
      continue;
    }
    const uint32_t d = g.emb_dim;
    const uint32_t nv = g.emb_width / d + (g.bot_width ? 1u : 0u);
    for (uint32_t i = 0; i < g.bot_width; i++) {
#pragma HLS PIPELINE II = 1
      buf[i] = x_in.read();
      z_out.write(buf[i]);
    }
    for (uint32_t i = 0; i < g.emb_width; i++) {
#pragma HLS PIPELINE II = 1
      buf[g.bot_width + i] = e_in.read();
    }
    for (uint32_t i = 1; i < nv; i++)
      for (uint32_t j = 0; j < i; j++) {
#pragma HLS PIPELINE II = 1
        float dot = 0.0f;
        for (uint32_t k = 0; k < d; k++) {
#pragma HLS UNROLL
          dot += buf[i * d + k] * buf[j * d + k];
        }
        z_out.write(dot);
      }
  }
}

template <class S>
void write_out(S &in, float *out, uint32_t n) {
  for (uint64_t i = 0; i < 2ull * n; i++) {
#pragma HLS PIPELINE II = 1
    out[i] = in.read();
  }
}

}  // namespace mrk

#endif
