/* libFuzzer target: the model loader on arbitrary bytes
 * (mr_model_open_buffer: the safetensors header, the DLRM names and the
 * shape checks). A model it accepts must also open on the cpu engine and
 * score a sample: the loader's validation is what the engine relies on. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpga/engine.h"
#include "fpga/model.h"

/* Engines for models this large are skipped (time, not correctness). */
#define FUZZ_MAX_PARAM_BYTES (64u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A file is mmapped, so its bytes start page-aligned: do the same. */
  uint8_t *buf = aligned_alloc(4096, (size + 4095) & ~(size_t)4095);
  if (!buf) return 0;
  if (size) memcpy(buf, data, size);
  mr_model_t m;
  mr_err_t err = {0};
  int rc = mr_model_open_buffer(&m, buf, size, &err);
  if (rc == 0) {
    if (mr_model_validate(&m, &err)) {
      fprintf(stderr, "fuzz_model: opened but invalid: %s\n", err.msg);
      abort();
    }
    (void)mr_model_top_in(&m);
    mr_engine_t *e = NULL;
    mr_engine_opts_t eo = {.max_batch = 4};
    if (mr_model_param_bytes(&m) <= FUZZ_MAX_PARAM_BYTES &&
        mr_engine_open(&e, &m, &eo, &err) == 0) {
      mr_scratch_t *s = NULL;
      if (mr_scratch_new(e, &s, &err) == 0) {
        const mr_engine_info_t *in = mr_engine_info(e);
        float dense[64] = {0};
        int64_t ids[512] = {0};
        float logit;
        if (in->num_dense <= 64 && in->num_tables <= 512 &&
            mr_engine_run(e, s, 1, in->num_dense ? dense : NULL, ids, &logit,
                          &err)) {
          fprintf(stderr, "fuzz_model: run failed: %s\n", err.msg);
          abort();
        }
        mr_scratch_free(e, s);
      }
      mr_engine_close(e);
    }
    mr_model_close(&m);
  } else if (!err.msg[0]) {
    fprintf(stderr, "fuzz_model: error %d without a message\n", rc);
    abort();
  }
  free(buf);
  return 0;
}
