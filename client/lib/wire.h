/* Client-side framing: a frame is a 4-byte big-endian length, then that many
 * bytes of one protobuf message (docs/protocol.md). Pure functions, no I/O;
 * used by client.c and by tests that speak the protocol on raw sockets. */
#ifndef MR_WIRE_H
#define MR_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"
#include "proto/microrec.pb-c.h"

#define MR_WIRE_HEADER 4

static inline void mr_wire_put_len(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static inline uint32_t mr_wire_get_len(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

/* Encodes req as one frame into *buf (grown with realloc as needed; *cap is
 * its size); *len receives the frame's length, header included. */
int mr_wire_pack_request(const Microrec__Request *req, uint8_t **buf,
                         size_t *cap, size_t *len, mr_err_t *err);

/* Looks for one whole frame at the start of buf[0..len): returns its total
 * length (header included) and sets *body / *body_len, MR_EAGAIN when more
 * bytes are needed, or MR_EPROTO when the announced length is above
 * max_frame. A zero-length body is a valid (empty) frame here. */
long mr_wire_frame(const uint8_t *buf, size_t len, size_t max_frame,
                   const uint8_t **body, size_t *body_len, mr_err_t *err);

#endif
