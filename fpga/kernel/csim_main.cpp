// C simulation testbench: runs the hardware top (microrec_kernel, compiled
// against a generated microrec_plan.h) and the runtime-geometry build that
// the fpga-sim backend uses, on the same random images and ids, and checks
// that they agree bit for bit, that LOAD/IDENT behave, and that no stream is
// left unbalanced. Usage: csim [samples]. Exit 0 when they agree.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "microrec_plan.h"
#include "microrec_rt.h"

#define MR_K_PARAM(k) , const float *bank##k
#define MR_K_ARG(k) , banks[k]

extern "C" void microrec_kernel(const uint32_t *ids, const float *dense,
                                float *out, const float *init, uint32_t n,
                                uint32_t mode MR_KPLAN_PORTS(MR_K_PARAM));

namespace {

uint64_t state = 0x853c49e6748fea9bull;

uint64_t next() {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

float uniform(float scale) {
  return scale * ((float)(next() >> 40) / (float)(1u << 24) * 2.0f - 1.0f);
}

}  // namespace

int main(int argc, char **argv) {
  const mr_kgeom_t &g = MR_KPLAN;
  uint32_t n = argc > 1 ? (uint32_t)atoi(argv[1]) : 100;

  // Images: tables in [-1, 1], weights small enough that logits spread.
  std::vector<std::vector<float>> bank(g.num_banks);
  std::vector<const float *> banks(g.num_banks);
  std::vector<float> init(g.init_words + 1);
  for (auto &v : init) v = uniform(0.2f);
  for (uint32_t k = 0; k < g.num_banks; k++) {
    if (g.bank_onchip[k]) {
      banks[k] = init.data() + g.bank_init_off[k];
      continue;
    }
    bank[k].resize(g.bank_words[k]);
    for (auto &v : bank[k]) v = uniform(1.0f);
    banks[k] = bank[k].data();
  }

  // Logical rows, recovered from the lookups' multipliers.
  std::vector<uint64_t> rows(g.num_logical, 0);
  for (uint32_t l = 0; l < g.num_lookups; l++) {
    const mr_klookup_t &L = g.lookups[l];
    for (uint32_t f = 0; f < L.num_factors; f++)
      rows[L.factor[f]] = (f ? L.mult[f - 1] : L.rows) / L.mult[f];
  }
  std::vector<uint32_t> ids((size_t)n * g.num_logical);
  for (uint32_t s = 0; s < n; s++)
    for (uint32_t t = 0; t < g.num_logical; t++)
      ids[(size_t)s * g.num_logical + t] = (uint32_t)(next() % rows[t]);
  std::vector<float> dense((size_t)n * g.num_dense + 1);
  for (auto &v : dense) v = uniform(2.0f);

  std::vector<float> hw(2 * (size_t)n + 2, -1.0f), rt(2 * (size_t)n, -2.0f);
  microrec_kernel(ids.data(), dense.data(), hw.data(), init.data(), 0,
                  MR_K_MODE_LOAD MR_KPLAN_PORTS(MR_K_ARG));
  microrec_kernel(ids.data(), dense.data(), hw.data(), init.data(), 0,
                  MR_K_MODE_IDENT MR_KPLAN_PORTS(MR_K_ARG));
  uint32_t half[2];
  memcpy(half, hw.data(), sizeof half);
  if ((half[0] | (uint64_t)half[1] << 32) != MR_KPLAN_HASH) {
    fprintf(stderr, "csim: IDENT returned a wrong plan hash\n");
    return 1;
  }
  microrec_kernel(ids.data(), dense.data(), hw.data(), init.data(), n,
                  MR_K_MODE_RUN MR_KPLAN_PORTS(MR_K_ARG));

  mr_kwork_t *w = nullptr;
  if (mr_kernel_rt_work_new(&g, n, &w) != 0) {
    fprintf(stderr, "csim: out of memory\n");
    return 1;
  }
  int rc = mr_kernel_rt_run(&g, w, banks.data(), init.data(), ids.data(),
                            dense.data(), rt.data(), n);
  mr_kernel_rt_work_free(w);
  if (rc != 0) {
    fprintf(stderr, "csim: runtime-geometry run failed (%d)\n", rc);
    return 1;
  }
  size_t diff = 0;
  float lo = 0, hi = 0;
  for (uint32_t i = 0; i < 2 * n; i++) {
    if (memcmp(&hw[i], &rt[i], sizeof(float)) != 0) diff++;
    if (i % 2 == 0) {
      lo = i ? (hw[i] < lo ? hw[i] : lo) : hw[i];
      hi = i ? (hw[i] > hi ? hw[i] : hi) : hw[i];
    }
  }
  printf("csim: %u samples, %u banks (%u lookups), %u+%u layers, logits in "
         "[%.4g, %.4g]: %s\n",
         n, g.num_banks, g.num_lookups, g.num_bot, g.num_top, (double)lo,
         (double)hi,
         diff ? "hardware top and runtime build DIFFER"
              : "hardware top and runtime build identical");
  return diff ? 1 : 0;
}
