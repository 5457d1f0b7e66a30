/* Frame encoding and splitting for the client (see wire.h). */
#include "client/lib/wire.h"

#include <stdlib.h>

int mr_wire_pack_request(const Microrec__Request *req, uint8_t **buf,
                         size_t *cap, size_t *len, mr_err_t *err) {
  size_t body = microrec__request__get_packed_size(req);
  if (body > UINT32_MAX)
    return mr_err_set(err, MR_EINVAL,
                      "request of %zu bytes does not fit a frame (at most "
                      "4 GiB)",
                      body);
  size_t need = MR_WIRE_HEADER + body;
  if (need > *cap) {
    uint8_t *nb = realloc(*buf, need);
    if (!nb)
      return mr_err_set(err, MR_ENOMEM, "out of memory for a %zu-byte frame",
                        need);
    *buf = nb;
    *cap = need;
  }
  mr_wire_put_len(*buf, (uint32_t)body);
  microrec__request__pack(req, *buf + MR_WIRE_HEADER);
  *len = need;
  return 0;
}

long mr_wire_frame(const uint8_t *buf, size_t len, size_t max_frame,
                   const uint8_t **body, size_t *body_len, mr_err_t *err) {
  if (len < MR_WIRE_HEADER) return MR_EAGAIN;
  uint32_t n = mr_wire_get_len(buf);
  if (n > max_frame)
    return mr_err_set(err, MR_EPROTO,
                      "frame of %u bytes announced, expected at most %zu", n,
                      max_frame);
  if (len - MR_WIRE_HEADER < n) return MR_EAGAIN;
  *body = buf + MR_WIRE_HEADER;
  *body_len = n;
  return (long)(MR_WIRE_HEADER + n);
}
