/* libFuzzer target: the JSON-lines input loader of the client library
 * (mr_input_load_jsonl), on the bytes as a file (a memfd), for 3 dense
 * inputs and 4 tables. A load that succeeds must hold finite dense values
 * and ids >= 0 in arrays of the right size; a failure must say why. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client/lib/input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int fd = memfd_create("fuzz.jsonl", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (size && write(fd, data, size) != (ssize_t)size) {
    close(fd);
    return 0;
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  mr_input_t in;
  mr_err_t err = {0};
  int rc = mr_input_load_jsonl(&in, path, 3, 4, &err);
  if (rc == 0) {
    for (size_t i = 0; i < in.n * in.num_dense; i++)
      if (!isfinite(in.dense[i])) abort();
    for (size_t i = 0; i < in.n * in.num_tables; i++)
      if (in.ids[i] < 0) abort();
    mr_input_free(&in);
  } else if (!err.msg[0]) {
    abort();
  }
  close(fd);
  return 0;
}
