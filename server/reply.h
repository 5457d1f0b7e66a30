/* Encoding responses: each function appends one frame (4-byte length +
 * a packed microrec.Response) to a connection's write buffer. Every
 * response carries its request's id.
 *
 * Threads: loop thread (touches the buffer of one connection). Returns 0 or
 * MR_ENOMEM (the buffer could not grow). */
#ifndef MR_REPLY_H
#define MR_REPLY_H

#include <stdint.h>

#include "server/buf.h"
#include "server/request.h"
#include "server/slot.h"
#include "server/stats.h"

/* A response with no body: status (proto Status) and a message that says
 * what was wrong and what was expected. server_ns = now - t_recv when
 * t_recv is not 0. */
int mr_reply_error(mr_buf_t *out, uint64_t id, int status, const char *msg,
                   uint64_t t_recv, uint64_t now);

/* The result of a finished infer request: scores (and logits when asked),
 * timings; or INTERNAL with the engine's message when it failed. */
int mr_reply_infer(mr_buf_t *out, const mr_request_t *r, uint64_t now);

int mr_reply_health(mr_buf_t *out, uint64_t id, int ready,
                    const mr_slot_t *slot, uint64_t t_recv, uint64_t now);
int mr_reply_model_info(mr_buf_t *out, uint64_t id, const mr_slot_t *slot,
                        uint64_t t_recv, uint64_t now);
int mr_reply_stats(mr_buf_t *out, uint64_t id, const mr_stats_summary_t *s,
                   uint64_t t_recv, uint64_t now);

#endif
