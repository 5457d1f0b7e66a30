/* Length-prefix framing (see frame.h). */
#include "server/frame.h"

int64_t mr_frame_parse(const uint8_t *buf, size_t len, size_t max_frame,
                       mr_frame_t *out, mr_err_t *err) {
  out->payload = NULL;
  out->len = 0;
  out->need = 0;
  if (len < MR_FRAME_HEADER) return MR_EAGAIN;
  uint32_t n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
               (uint32_t)buf[2] << 8 | (uint32_t)buf[3];
  if (n == 0)
    return mr_err_set(err, MR_EPROTO,
                      "frame length is 0; expected 1 to %zu bytes of message",
                      max_frame);
  if (n > max_frame)
    return mr_err_set(err, MR_EPROTO,
                      "frame length %u exceeds the limit of %zu bytes "
                      "(max_frame_bytes)",
                      n, max_frame);
  size_t total = MR_FRAME_HEADER + (size_t)n;
  if (len < total) {
    out->need = total;
    return MR_EAGAIN;
  }
  out->payload = buf + MR_FRAME_HEADER;
  out->len = n;
  return (int64_t)total;
}
