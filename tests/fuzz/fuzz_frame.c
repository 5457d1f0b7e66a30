/* libFuzzer target: microrecd's input path without sockets. The bytes are
 * a client's stream: frames are split off (mr_frame_parse), each decoded
 * (mr_request_decode) and, for an inference request, validated against a
 * small model's engine (mr_request_validate) and run; the answer is
 * encoded as the server would (mr_reply_*). Requests come from one pool, as
 * in the server, so arenas and output arrays are reused across inputs.
 *
 * Invariants checked beyond "no crash, no sanitizer report": a frame taken
 * is exactly header + payload within the limit; a request that validation
 * accepted runs on the engine without error (validation is what keeps the
 * engine in bounds). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fpga/engine.h"
#include "fpga/model.h"
#include "fpga/modelgen.h"
#include "server/frame.h"
#include "server/reply.h"
#include "server/request.h"
#include "server/slot.h"

#define FUZZ_MAX_FRAME (256u << 10)
#define FUZZ_MAX_SAMPLES 512

static mr_engine_t *engine;
static mr_scratch_t *scratch;
static mr_slot_t slot;
static mr_request_pool_t pool;
static mr_buf_t out;

static void die(const char *what, const mr_err_t *err) {
  fprintf(stderr, "fuzz_frame: %s: %s\n", what, err ? err->msg : "");
  abort();
}

/* The tests' small model: 4 dense inputs, tables of 10, 20, 30 rows. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  mr_gen_spec_t spec;
  memset(&spec, 0, sizeof spec);
  spec.interaction = MR_INTERACT_DOT;
  spec.num_tables = 3;
  for (size_t k = 0; k < 3; k++) {
    spec.rows[k] = 10 * (k + 1);
    spec.dims[k] = 4;
  }
  spec.num_bot_widths = 3;
  spec.bot_widths[0] = 4;
  spec.bot_widths[1] = 16;
  spec.bot_widths[2] = 4;
  spec.num_top_widths = 2;
  spec.top_widths[0] = 16;
  spec.top_widths[1] = 1;
  spec.seed = 7;
  char path[] = "/tmp/fuzz-frame-model-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) die("mkstemp", NULL);
  close(fd);
  mr_err_t err = {0};
  mr_model_t m;
  if (mr_gen_write(&spec, path, NULL, NULL, &err)) die("model gen", &err);
  if (mr_model_open(&m, path, &err)) die("model open", &err);
  mr_engine_opts_t eo = {.max_batch = 64};
  if (mr_engine_open(&engine, &m, &eo, &err)) die("engine open", &err);
  mr_model_close(&m);
  unlink(path);
  if (mr_scratch_new(engine, &scratch, &err)) die("scratch", &err);
  slot.engine = engine;
  slot.info = mr_engine_info(engine);
  slot.threads = 1;
  slot.generation = 1;
  snprintf(slot.path, sizeof slot.path, "fuzz.safetensors");
  mr_request_pool_init(&pool);
  return 0;
}

static void answer(mr_request_t *r) {
  mr_err_t err = {0};
  int rc = 0;
  switch (r->kind) {
  case MR_REQ_INFER:
    rc = mr_request_validate(r, engine, FUZZ_MAX_SAMPLES, &err);
    if (rc) {
      rc = mr_reply_error(&out, r->id, mr_request_status_of(rc), err.msg, 1, 2);
      break;
    }
    if (mr_engine_run(engine, scratch, r->num_samples, r->dense, r->ids,
                      r->logits, &err))
      die("a validated request failed on the engine", &err);
    for (uint32_t i = 0; i < r->num_samples; i++)
      r->scores[i] = mr_sigmoid(r->logits[i]);
    atomic_store(&r->remaining, 0);
    rc = mr_reply_infer(&out, r, 3);
    break;
  case MR_REQ_HEALTH:
    rc = mr_reply_health(&out, r->id, 1, &slot, 1, 2);
    break;
  case MR_REQ_MODEL_INFO:
    rc = mr_reply_model_info(&out, r->id, &slot, 1, 2);
    break;
  default:
    rc = mr_reply_error(&out, r->id, 7, "unknown", 1, 2);
    break;
  }
  if (rc) die("encoding a response", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t pos = 0;
  while (pos < size) {
    mr_frame_t f;
    mr_err_t err = {0};
    int64_t n = mr_frame_parse(data + pos, size - pos, FUZZ_MAX_FRAME, &f,
                               &err);
    if (n == MR_EAGAIN) break;
    if (n < 0) { /* framing error: the server answers and closes */
      if (mr_reply_error(&out, 0, 1, err.msg, 1, 2)) die("encoding", NULL);
      break;
    }
    if ((size_t)n != MR_FRAME_HEADER + f.len || f.len == 0 ||
        f.len > FUZZ_MAX_FRAME || f.payload != data + pos + MR_FRAME_HEADER ||
        (size_t)n > size - pos)
      die("mr_frame_parse returned an inconsistent frame", NULL);
    pos += (size_t)n;
    mr_request_t *r = mr_request_get(&pool);
    if (!r) die("no memory for a request", NULL);
    if (mr_request_decode(r, f.payload, f.len, &err) == 0) answer(r);
    else if (mr_reply_error(&out, r->id, 1, err.msg, 1, 2))
      die("encoding", NULL);
    mr_request_put(&pool, r);
    out.len = 0;
  }
  out.len = 0;
  mr_buf_trim(&out, 1u << 20);
  return 0;
}
