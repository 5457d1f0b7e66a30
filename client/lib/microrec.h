/* libmicrorec: the C client of microrecd (protocol in docs/protocol.md).
 *
 * A mr_client_t is one TCP connection. Requests may be pipelined: the
 * mr_client_send_* calls return the request's id without waiting for its
 * answer, mr_client_recv returns the next response to arrive (any request;
 * match it by id). mr_client_infer and the health / model info / stats calls
 * are blocking conveniences built on those two; they need a connection with
 * no request of the caller's in flight.
 *
 * Every call that waits for the server is bounded by the client's timeout
 * (mr_client_set_timeout; set first by mr_client_connect): it fails with
 * MR_ETIMEDOUT rather than block forever. Errors: -ECONNREFUSED (nothing
 * listens there), MR_ETIMEDOUT, MR_ECLOSED (the server closed the
 * connection), MR_EPROTO (the server sent something that is not the
 * protocol), MR_ESERVER (the server answered with a non-OK status: err->msg
 * holds its status name and message, mr_client_last_status its code).
 *
 * Threads: a client is used by one thread at a time; different clients are
 * independent. Ownership: the caller owns the mr_client_t through
 * mr_client_close, each mr_response_t through mr_response_free, and the
 * info / stats structs through their _free functions. */
#ifndef MR_CLIENT_H
#define MR_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"

#define MR_DEFAULT_HOST "127.0.0.1"
#define MR_DEFAULT_PORT 7470
/* The largest response frame the client accepts. */
#define MR_CLIENT_MAX_FRAME (256u << 20)

/* The protocol's status codes (enum Status of proto/microrec.proto). */
typedef enum mr_status {
  MR_STATUS_OK = 0,
  MR_STATUS_BAD_REQUEST = 1,
  MR_STATUS_OUT_OF_RANGE = 2,
  MR_STATUS_OVERLOADED = 3,
  MR_STATUS_NOT_READY = 4,
  MR_STATUS_INTERNAL = 5,
  MR_STATUS_SHUTTING_DOWN = 6,
  MR_STATUS_UNKNOWN_REQUEST = 7,
} mr_status_t;

/* "OVERLOADED", or "STATUS_<n>" for a code this client does not know. */
const char *mr_client_status_name(int status);

/* Splits "HOST:PORT", "[v6addr]:PORT", ":PORT" or "PORT" (host 127.0.0.1)
 * or "HOST" (port 7470) into host (NUL-terminated, at most hostlen bytes)
 * and port. */
int mr_parse_hostport(const char *s, char *host, size_t hostlen,
                      uint16_t *port, mr_err_t *err);

typedef struct mr_client mr_client_t;

/* Connects to host:port (a name or an address, v4 or v6) within timeout_ms
 * (< 0 waits forever) and sets the client's timeout to timeout_ms. */
int mr_client_connect(mr_client_t **out, const char *host, uint16_t port,
                      int timeout_ms, mr_err_t *err);
/* Closes the connection and frees the client; NULL is fine. */
void mr_client_close(mr_client_t *c);

/* Bound, in milliseconds, of every later wait (< 0: none). */
void mr_client_set_timeout(mr_client_t *c, int timeout_ms);
/* Requests sent whose response has not been received yet. */
size_t mr_client_in_flight(const mr_client_t *c);
/* Status of the last non-OK response a blocking call met (MR_STATUS_OK if
 * none). */
int mr_client_last_status(const mr_client_t *c);

/* Sends an inference request for n samples: n * num_dense floats of dense
 * (sample-major; NULL when the product is 0) and n * num_tables ids. The
 * arrays are copied into the frame before return. *id receives the request
 * id. Waits only for socket buffer space (bounded by the timeout). A send
 * that fails part way leaves the connection unusable (later calls fail with
 * the same error). */
int mr_client_send_infer(mr_client_t *c, size_t n, const float *dense,
                         size_t num_dense, const int64_t *ids,
                         size_t num_tables, int want_logits, uint64_t *id,
                         mr_err_t *err);
int mr_client_send_health(mr_client_t *c, uint64_t *id, mr_err_t *err);
int mr_client_send_model_info(mr_client_t *c, uint64_t *id, mr_err_t *err);
int mr_client_send_stats(mr_client_t *c, uint64_t *id, mr_err_t *err);

typedef enum mr_resp_kind {
  MR_RESP_NONE = 0,  /* no body (typical of a non-OK status) */
  MR_RESP_INFER,
  MR_RESP_HEALTH,
  MR_RESP_MODEL_INFO,
  MR_RESP_STATS,
} mr_resp_kind_t;

typedef struct mr_response {
  uint64_t id;
  int status;            /* mr_status_t */
  const char *message;   /* "" when none */
  uint64_t queue_ns, engine_ns, server_ns; /* the server's timings */
  mr_resp_kind_t kind;
  size_t num_scores;     /* MR_RESP_INFER: scores (sigmoid outputs) */
  const float *scores;
  size_t num_logits;     /* logits, when the request wanted them */
  const float *logits;
  void *pb_;             /* private: the decoded message the fields point in */
} mr_response_t;

/* Receives the next response (waiting at most the timeout). A non-OK status
 * is not an error of this call: check r->status. On a timeout the client
 * stays usable (a partial frame is kept for the next call). The strings and
 * arrays of r live until mr_response_free(r). */
int mr_client_recv(mr_client_t *c, mr_response_t *r, mr_err_t *err);
void mr_response_free(mr_response_t *r);

typedef struct mr_infer_opts {
  size_t batch;          /* samples per request; 0 = 256 */
  size_t window;         /* requests in flight at once; 0 = 8 */
  int overload_retries;  /* times a chunk answered OVERLOADED is resent
                            (with a growing pause, 1 to 64 ms); 0 = none */
} mr_infer_opts_t;

/* Scores n samples, blocking: splits them into requests of opts->batch
 * samples, keeps up to opts->window of them in flight, and writes scores[i]
 * (and logits[i] when logits is not NULL; either may be NULL) in input
 * order. opts may be NULL. On a non-OK status the remaining requests are
 * not sent, those in flight are drained, and MR_ESERVER names the samples,
 * the status and the server's message. */
int mr_client_infer(mr_client_t *c, size_t n, const float *dense,
                    size_t num_dense, const int64_t *ids, size_t num_tables,
                    const mr_infer_opts_t *opts, float *scores, float *logits,
                    mr_err_t *err);

typedef struct mr_health {
  int alive;
  int ready;              /* model loaded and engine warmed up */
  char *model_path;
  uint64_t model_generation;
} mr_health_t;

typedef struct mr_layer_dims {
  uint32_t in, out;
} mr_layer_dims_t;

typedef struct mr_model_info {
  char *interaction;      /* "dot" or "cat" */
  size_t num_dense;
  size_t num_tables;
  uint64_t *rows;         /* num_tables entries */
  uint32_t *dims;
  size_t num_bottom, num_top;
  mr_layer_dims_t *bottom, *top;
  uint64_t total_bytes;
  char *backend;
  char *model_path;
} mr_model_info_t;

typedef struct mr_latency {
  char *stage;            /* queue, engine, server, end_to_end */
  uint64_t count;
  double p50_us, p90_us, p99_us, p999_us, max_us, mean_us;
} mr_latency_t;

typedef struct mr_error_count {
  int status;
  uint64_t count;
} mr_error_count_t;

typedef struct mr_stats_reply {
  uint64_t requests, samples, batches, connections, uptime_s;
  uint64_t mem_allocated_bytes, mem_resident_bytes, reloads;
  size_t num_errors;
  mr_error_count_t *errors;
  size_t num_latency;
  mr_latency_t *latency;
} mr_stats_reply_t;

/* Blocking request / response; a non-OK status is MR_ESERVER. The out
 * struct is zeroed first and freed with its _free (also after a failure). */
int mr_client_health(mr_client_t *c, mr_health_t *h, mr_err_t *err);
int mr_client_model_info(mr_client_t *c, mr_model_info_t *mi, mr_err_t *err);
int mr_client_stats(mr_client_t *c, mr_stats_reply_t *st, mr_err_t *err);
void mr_health_free(mr_health_t *h);
void mr_model_info_free(mr_model_info_t *mi);
void mr_stats_reply_free(mr_stats_reply_t *st);

#endif
