/* Length-prefix framing of the wire protocol (DESIGN.md, "Wire protocol"):
 *
 *   +----------------------+---------------------------+
 *   | length: u32 big-end. | length bytes: one message |
 *   +----------------------+---------------------------+
 *
 * 1 <= length <= max_frame; a length of 0 or above max_frame is a protocol
 * error (the stream cannot be trusted after it). Pure functions, no I/O, no
 * allocation; any thread. */
#ifndef MR_FRAME_H
#define MR_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"

#define MR_FRAME_HEADER 4

typedef struct mr_frame {
  const uint8_t *payload; /* points into the caller's buffer */
  size_t len;             /* payload bytes */
  size_t need;            /* on MR_EAGAIN: total bytes of the frame (header
                             included) once the header is known, else 0 */
} mr_frame_t;

/* Looks for one frame at the start of buf[0..len). Returns the bytes it
 * takes (header + payload, > 0) and fills out; MR_EAGAIN when buf holds only
 * part of it; MR_EPROTO (err says which length and the limit) for a length of
 * 0 or above max_frame. */
int64_t mr_frame_parse(const uint8_t *buf, size_t len, size_t max_frame,
                       mr_frame_t *out, mr_err_t *err);

/* Writes the 4-byte header for a payload of len bytes. */
static inline void mr_frame_put_header(uint8_t *out, uint32_t len) {
  out[0] = (uint8_t)(len >> 24);
  out[1] = (uint8_t)(len >> 16);
  out[2] = (uint8_t)(len >> 8);
  out[3] = (uint8_t)len;
}

#endif
