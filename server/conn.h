/* One client connection, as an explicit state machine:
 *
 *   READING --(server stops)--> DRAINING
 *   READING/DRAINING --(EOF with all answered, reset, idle timeout, fatal
 *                       error)--> CLOSING
 *   READING/DRAINING --(protocol error, rejected, or draining with all
 *                       answered; once the output is written:
 *                       shutdown(SHUT_WR))--> LINGERING
 *   LINGERING --(peer EOF, or 1 s)--> CLOSING --(close cb)--> CLOSED
 *
 * Draining (SIGTERM/SIGINT): requests already accepted are run and
 * answered; infer requests read after the signal are answered
 * SHUTTING_DOWN; then the write side is shut (the client reads EOF after
 * its last answer). Lingering (reading and discarding until the peer's EOF)
 * instead of closing at once matters: closing a socket with unread bytes
 * sends a reset, which can destroy answers the client has not read yet.
 *
 * Reading: the read buffer is reused (grown to the largest frame, trimmed
 * after a burst); each read callback handles at most MR_CONN_BUDGET frames,
 * then the connection stops reading and the loop finishes its frames on the
 * next turns (server's pending list), so one client cannot starve the rest.
 * A client that half-closes (EOF) still gets every answer, then the close.
 *
 * Writing: responses are appended to a fill buffer; once per loop turn
 * (server's check phase) the buffer is handed to the kernel with
 * uv_try_write and, if the kernel takes only part, one uv_write of the rest
 * while a second buffer fills: write buffers live until their write
 * callback. A client that stops reading stops being read (backpressure).
 *
 * Timeouts: idle_timeout_ms without bytes in either direction and with no
 * request at the engine closes the connection, including one that sent half
 * a frame and stalled.
 *
 * Too many connections: one beyond max_connections is accepted, sent one
 * Response {id 0, OVERLOADED, "too many connections ..."} and closed
 * (lingering, so the response is not lost to a reset).
 *
 * Disconnect with requests in flight: the connection's memory stays until
 * its last request comes back from the engine (inflight count); those
 * requests are then recycled without a write. The batch they were in is
 * answered normally for everyone else.
 *
 * Threads: loop thread only. */
#ifndef MR_CONN_H
#define MR_CONN_H

#include <stdint.h>
#include <uv.h>

#include "server/buf.h"
#include "server/list.h"
#include "server/request.h"
#include "server/stats.h"

#define MR_CONN_BUDGET 64               /* frames per read callback */
#define MR_CONN_READ_CHUNK (64u << 10)  /* free space offered to a read */
#define MR_CONN_RBUF_KEEP (1u << 20)    /* trim read buffers above this */
#define MR_CONN_WBUF_HIGH (8u << 20)    /* stop reading above this unsent */
#define MR_CONN_LINGER_MS 1000

struct mr_server;

typedef enum mr_conn_state {
  MR_CONN_READING,
  MR_CONN_DRAINING,
  MR_CONN_LINGERING,
  MR_CONN_CLOSING,
  MR_CONN_CLOSED,
} mr_conn_state_t;

typedef struct mr_conn {
  uv_tcp_t tcp;
  struct mr_server *srv;
  mr_conn_state_t state;
  uint64_t serial;        /* for logs */
  char peer[64];
  mr_link_t all;          /* server's open connections */
  mr_link_t dirty;        /* server's flush list (has output this turn) */
  mr_link_t pending;      /* server's list of frames left over by budget */

  mr_buf_t rbuf;
  size_t rpos;            /* start of unparsed bytes in rbuf */
  size_t need;            /* total size of a partial frame, if known */
  uint64_t t_read;        /* when the bytes being parsed arrived */

  mr_buf_t wbuf[2];
  int wfill;              /* index of the buffer being filled */
  int writing;            /* a uv_write of the other buffer is in flight */
  uv_write_t wreq;
  uv_shutdown_t sreq;
  mr_stat_event_t *events;/* responses in wbuf[wfill], for stats */
  size_t num_events, events_cap;

  size_t inflight;        /* requests at the engine */
  int reading;            /* uv_read_start active */
  int eof;                /* peer half-closed */
  int backpressure;       /* too much unsent output: not reading */
  int linger_after_flush; /* close (lingering) once output is written */
  int counted;            /* counts against max_connections */
  uint64_t last_active;   /* ns; last byte read or written */
  uint64_t linger_since;
} mr_conn_t;

/* Accepts a pending connection from the listener. Beyond max_connections
 * it is answered OVERLOADED and closed. Returns 0 or a libuv error. */
int mr_conn_accept(struct mr_server *s, uv_stream_t *listener);

/* A request of c is back from the engine: answers it (or recycles it if c
 * is closing). */
void mr_conn_complete(mr_conn_t *c, mr_request_t *r);

/* Writes what this turn produced (server's check phase). */
void mr_conn_flush(mr_conn_t *c);

/* Handles frames left over by the budget (server's idle phase). */
void mr_conn_process(mr_conn_t *c);

/* The server is stopping: read no more, answer what was accepted, close. */
void mr_conn_drain(mr_conn_t *c);

/* Closes c now (requests in flight are orphaned). */
void mr_conn_close(mr_conn_t *c, const char *why);

/* Idle and linger timeouts, checked by the server's sweep timer. */
void mr_conn_sweep(mr_conn_t *c, uint64_t now);

#endif
