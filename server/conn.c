/* A client connection: reading frames, dispatching requests, writing
 * responses, closing (see conn.h for the state machine). */
#include "server/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "proto/microrec.pb-c.h"
#include "server/clock.h"
#include "server/frame.h"
#include "server/log.h"
#include "server/reply.h"
#include "server/server.h"

static void set_state(mr_conn_t *c, mr_conn_state_t to) {
  /* The transitions conn.h draws; anything else is a bug. */
  static const unsigned allowed[] = {
      [MR_CONN_READING] = 1u << MR_CONN_DRAINING | 1u << MR_CONN_LINGERING |
                          1u << MR_CONN_CLOSING,
      [MR_CONN_DRAINING] = 1u << MR_CONN_LINGERING | 1u << MR_CONN_CLOSING,
      [MR_CONN_LINGERING] = 1u << MR_CONN_CLOSING,
      [MR_CONN_CLOSING] = 1u << MR_CONN_CLOSED,
      [MR_CONN_CLOSED] = 0,
  };
  if (!(allowed[c->state] & (1u << to))) {
    mr_log_error("bad connection state transition", "conn=%llu from=%d to=%d",
                 (unsigned long long)c->serial, c->state, to);
    abort();
  }
  c->state = to;
}

/* ---- reading on and off ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void update_reading(mr_conn_t *c) {
  int want = (c->state <= MR_CONN_DRAINING && !c->eof &&
              !mr_list_linked(&c->pending) && !c->backpressure &&
              !c->linger_after_flush) ||
             c->state == MR_CONN_LINGERING;
  if (want == c->reading) return;
  if (want) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
      c->reading = 1;
  } else {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

/* ---- closing ---- */

static void free_conn(mr_conn_t *c) {
  mr_server_t *s = c->srv;
  mr_buf_free(&c->rbuf);
  mr_buf_free(&c->wbuf[0]);
  mr_buf_free(&c->wbuf[1]);
  free(c->events);
  free(c);
  mr__server_conn_gone(s);
}

static void on_close(uv_handle_t *h) {
  mr_conn_t *c = h->data;
  set_state(c, MR_CONN_CLOSED);
  if (c->inflight == 0) free_conn(c);
  /* else the last completion frees it (mr_conn_complete) */
}

void mr_conn_close(mr_conn_t *c, const char *why) {
  if (c->state >= MR_CONN_CLOSING) return;
  mr_server_t *s = c->srv;
  mr_log_debug("connection closed", "conn=%llu peer=%s reason=\"%s\" "
               "in_flight=%zu", (unsigned long long)c->serial, c->peer, why,
               c->inflight);
  mr__server_unmark(s, c);
  mr_list_remove(&c->all);
  if (c->counted) {
    s->num_counted--;
    atomic_store(&s->stats.connections, s->num_counted);
  }
  set_state(c, MR_CONN_CLOSING);
  c->reading = 0;
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

/* ---- output ---- */

static mr_buf_t *fill(mr_conn_t *c) { return &c->wbuf[c->wfill]; }

static void note_event(mr_conn_t *c, const mr_stat_event_t *ev) {
  if (c->num_events == c->events_cap) {
    size_t cap = c->events_cap ? c->events_cap * 2 : 16;
    mr_stat_event_t *e = realloc(c->events, cap * sizeof *e);
    if (!e) return; /* stats lose one event; the response still goes out */
    c->events = e;
    c->events_cap = cap;
  }
  c->events[c->num_events++] = *ev;
}

/* After a response was appended (rc from reply.c). */
static void appended(mr_conn_t *c, int rc, int status, const mr_request_t *r) {
  if (rc) { /* cannot even buffer an answer: give up on this client */
    mr_log_error("out of memory for a response; closing", "conn=%llu",
                 (unsigned long long)c->serial);
    mr_conn_close(c, "out of memory");
    return;
  }
  mr_stat_event_t ev = {.status = status};
  if (r && r->kind == MR_REQ_INFER && status == 0) {
    ev.infer = 1;
    ev.samples = r->num_samples;
    ev.t_recv = r->t_recv;
    ev.t_batched = r->t_batched;
    ev.t_start = r->t_start;
    ev.t_end = r->t_end;
  }
  note_event(c, &ev);
  mr__server_mark_dirty(c->srv, c);
  if (fill(c)->len > MR_CONN_WBUF_HIGH && !c->backpressure) {
    c->backpressure = 1;
    update_reading(c);
  }
}

static void reply_error(mr_conn_t *c, uint64_t id, int status,
                        const char *msg, uint64_t t_recv) {
  int rc = mr_reply_error(fill(c), id, status, msg, t_recv, mr_clock_ns());
  appended(c, rc, status, NULL);
}

/* Starts the lingering close once all output is written, or closes a
 * finished connection. */
static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)req, (void)status;
}

static void maybe_finish(mr_conn_t *c) {
  if (c->state >= MR_CONN_LINGERING) return;
  if (c->writing || fill(c)->len) return;
  if (c->linger_after_flush && c->inflight == 0) {
    set_state(c, MR_CONN_LINGERING);
    c->linger_since = mr_clock_ns();
    mr__server_unmark(c->srv, c);
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown)) {
      mr_conn_close(c, "shutdown failed");
      return;
    }
    c->rbuf.len = c->rpos = 0;
    update_reading(c);
    return;
  }
  if (c->inflight || mr_list_linked(&c->pending)) return;
  if (c->eof) {
    mr_conn_close(c, "peer closed");
  } else if (c->state == MR_CONN_DRAINING) {
    /* Not a plain close: unread bytes would make it a reset that can
     * destroy answers the client has not read yet. */
    c->linger_after_flush = 1;
    maybe_finish(c);
  }
}

static void on_write(uv_write_t *req, int status) {
  mr_conn_t *c = req->data;
  c->writing = 0;
  c->wbuf[!c->wfill].len = 0;
  if (c->state >= MR_CONN_CLOSING) return;
  if (status < 0) {
    mr_conn_close(c, uv_strerror(status));
    return;
  }
  c->last_active = mr_clock_ns();
  mr_buf_trim(&c->wbuf[!c->wfill], MR_CONN_WBUF_HIGH);
  if (fill(c)->len) {
    mr__server_mark_dirty(c->srv, c);
    return;
  }
  if (c->backpressure) {
    c->backpressure = 0;
    update_reading(c);
  }
  maybe_finish(c);
}

void mr_conn_flush(mr_conn_t *c) {
  if (c->state >= MR_CONN_LINGERING) return;
  mr_buf_t *b = fill(c);
  if (!c->writing && b->len) {
    uv_buf_t ub = uv_buf_init((char *)b->data, (unsigned)b->len);
    uint64_t handed = mr_clock_ns(); /* "written": handed to the kernel */
    int n = uv_try_write((uv_stream_t *)&c->tcp, &ub, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
    if (n < 0) {
      mr_conn_close(c, uv_strerror(n));
      return;
    }
    if ((size_t)n < b->len) {
      ub = uv_buf_init((char *)b->data + n, (unsigned)(b->len - (size_t)n));
      c->wreq.data = c;
      int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &ub, 1, on_write);
      if (rc) {
        mr_conn_close(c, uv_strerror(rc));
        return;
      }
      c->writing = 1;
      c->wfill = !c->wfill; /* b lives until on_write */
    } else {
      b->len = 0;
    }
    uint64_t now = mr_clock_ns();
    c->last_active = now;
    mr_stats_record(&c->srv->stats, c->events, c->num_events, handed,
                    now - handed);
    c->num_events = 0;
    if (!c->writing && c->backpressure) {
      c->backpressure = 0;
      update_reading(c);
    }
  }
  maybe_finish(c);
}

/* ---- requests ---- */

static void dispatch(mr_conn_t *c, mr_request_t *r) {
  mr_server_t *s = c->srv;
  mr_err_t err = {0};
  uint64_t now;
  int rc;
  switch (r->kind) {
  case MR_REQ_INFER: {
    if (s->draining) {
      reply_error(c, r->id, MICROREC__STATUS__SHUTTING_DOWN,
                  "the server is shutting down; the request was not run; "
                  "retry on another server",
                  r->t_recv);
      break;
    }
    mr_slot_t *slot = mr__server_slot_ref(s);
    if (!slot) {
      reply_error(c, r->id, MICROREC__STATUS__NOT_READY,
                  "no model is loaded yet; retry when health says ready",
                  r->t_recv);
      break;
    }
    r->slot = slot;
    rc = mr_request_validate(r, slot->engine, s->cfg.max_request_samples,
                             &err);
    if (rc) {
      reply_error(c, r->id, mr_request_status_of(rc), err.msg, r->t_recv);
      break;
    }
    r->conn = c;
    if (mr_batcher_push(&s->batcher, r) == MR_EOVERLOAD) {
      char msg[200];
      snprintf(msg, sizeof msg,
               "the engine queue is full (%zu requests, ring_capacity); "
               "retry later",
               s->cfg.ring_capacity);
      r->conn = NULL;
      reply_error(c, r->id, MICROREC__STATUS__OVERLOADED, msg, r->t_recv);
      break;
    }
    c->inflight++;
    mr__server_pushed(s);
    return; /* the batcher owns r now */
  }
  case MR_REQ_HEALTH:
    now = mr_clock_ns();
    rc = mr_reply_health(fill(c), r->id, atomic_load(&s->stats.ready),
                         s->current, r->t_recv, now);
    appended(c, rc, 0, r);
    break;
  case MR_REQ_MODEL_INFO:
    rc = mr_reply_model_info(fill(c), r->id, s->current, r->t_recv,
                             mr_clock_ns());
    appended(c, rc, s->current ? 0 : MICROREC__STATUS__NOT_READY, r);
    break;
  case MR_REQ_STATS: {
    mr_stats_summary_t *sum = malloc(sizeof *sum);
    if (!sum) {
      reply_error(c, r->id, MICROREC__STATUS__INTERNAL, "out of memory",
                  r->t_recv);
      break;
    }
    mr__server_summarize(s, sum);
    rc = mr_reply_stats(fill(c), r->id, sum, r->t_recv, mr_clock_ns());
    free(sum);
    appended(c, rc, 0, r);
    break;
  }
  default:
    reply_error(c, r->id, MICROREC__STATUS__UNKNOWN_REQUEST,
                "the request has no body this server understands; expected "
                "one of infer, health, model_info, stats",
                r->t_recv);
    break;
  }
  mr__server_recycle(s, r);
}

static void handle_frame(mr_conn_t *c, const uint8_t *msg, size_t len) {
  mr_server_t *s = c->srv;
  mr_request_t *r = mr_request_get(&s->pool);
  if (!r) {
    reply_error(c, 0, MICROREC__STATUS__INTERNAL,
                "server out of memory for a request", c->t_read);
    return;
  }
  r->t_recv = c->t_read;
  mr_err_t err = {0};
  if (mr_request_decode(r, msg, len, &err)) {
    reply_error(c, r->id, MICROREC__STATUS__BAD_REQUEST, err.msg, r->t_recv);
    mr__server_recycle(s, r);
    return;
  }
  dispatch(c, r);
}

/* Parses and handles up to the budget of whole frames in the read buffer. */
static void process(mr_conn_t *c) {
  mr_server_t *s = c->srv;
  int budget = MR_CONN_BUDGET;
  while (c->state <= MR_CONN_DRAINING && !c->linger_after_flush) {
    mr_frame_t f;
    mr_err_t err = {0};
    int64_t n = mr_frame_parse(c->rbuf.data + c->rpos, c->rbuf.len - c->rpos,
                               s->cfg.max_frame_bytes, &f, &err);
    if (n == MR_EAGAIN) {
      c->need = f.need;
      break;
    }
    if (n < 0) { /* the stream cannot be trusted past a bad length */
      mr_log_info("protocol error; closing", "conn=%llu peer=%s error=\"%s\"",
                  (unsigned long long)c->serial, c->peer, err.msg);
      reply_error(c, 0, MICROREC__STATUS__BAD_REQUEST, err.msg, c->t_read);
      c->linger_after_flush = 1;
      c->rbuf.len = c->rpos = 0;
      break;
    }
    if (budget == 0) { /* a whole frame is left: finish it next turn */
      mr__server_mark_pending(s, c);
      update_reading(c);
      return;
    }
    budget--;
    c->rpos += (size_t)n;
    c->need = 0;
    handle_frame(c, f.payload, f.len);
  }
  if (c->state >= MR_CONN_CLOSING) return;
  if (mr_list_linked(&c->pending)) mr_list_remove(&c->pending);
  if (c->rpos == c->rbuf.len) {
    c->rpos = c->rbuf.len = 0;
    mr_buf_trim(&c->rbuf, MR_CONN_RBUF_KEEP);
  }
  update_reading(c);
  maybe_finish(c);
}

void mr_conn_process(mr_conn_t *c) { process(c); }

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  mr_conn_t *c = h->data;
  (void)suggested;
  if (c->rpos) { /* keep the partial frame at the start */
    memmove(c->rbuf.data, c->rbuf.data + c->rpos, c->rbuf.len - c->rpos);
    c->rbuf.len -= c->rpos;
    c->rpos = 0;
  }
  /* Room for the rest of a big frame, but grown at most 1 MiB per read so
   * a header that promises 16 MiB costs memory only as bytes arrive. */
  size_t want = MR_CONN_READ_CHUNK;
  if (c->need > c->rbuf.len && c->need - c->rbuf.len > want) {
    want = c->need - c->rbuf.len;
    if (want > MR_CONN_RBUF_KEEP) want = MR_CONN_RBUF_KEEP;
  }
  if (mr_buf_reserve(&c->rbuf, want)) {
    buf->base = NULL;
    buf->len = 0; /* libuv reports UV_ENOBUFS */
    return;
  }
  buf->base = (char *)c->rbuf.data + c->rbuf.len;
  buf->len = c->rbuf.cap - c->rbuf.len;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  mr_conn_t *c = st->data;
  (void)buf;
  if (nread == 0) return;
  if (nread < 0) {
    if (c->state == MR_CONN_LINGERING || nread != UV_EOF) {
      mr_conn_close(c, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
      return;
    }
    /* Half-close: answer what was sent, then close. */
    c->eof = 1;
    update_reading(c);
    if (c->rbuf.len - c->rpos > 0 && c->inflight == 0 && !c->writing)
      mr_log_debug("peer closed mid-frame", "conn=%llu bytes=%zu",
                   (unsigned long long)c->serial, c->rbuf.len - c->rpos);
    maybe_finish(c);
    return;
  }
  uint64_t now = mr_clock_ns();
  c->last_active = now;
  if (c->state == MR_CONN_LINGERING) { /* discard until the peer closes */
    c->rbuf.len = c->rpos = 0;
    return;
  }
  c->rbuf.len += (size_t)nread;
  c->t_read = now;
  process(c);
}

/* ---- lifecycle ---- */

static mr_conn_t *conn_new(mr_server_t *s) {
  mr_conn_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->srv = s;
  c->state = MR_CONN_READING;
  c->serial = ++s->next_serial;
  mr_list_init(&c->all);
  mr_list_init(&c->dirty);
  mr_list_init(&c->pending);
  if (uv_tcp_init(s->loop, &c->tcp)) {
    free(c);
    return NULL;
  }
  c->tcp.data = c;
  s->live_conns++;
  return c;
}

int mr_conn_accept(mr_server_t *s, uv_stream_t *listener) {
  mr_conn_t *c = conn_new(s);
  if (!c) return UV_ENOMEM;
  int rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
  if (rc) {
    mr_conn_close(c, "accept failed");
    return rc;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  mr_addr_t peer = {0};
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0 &&
      mr_addr_from_sockaddr(&peer, (struct sockaddr *)&ss) == 0)
    mr_addr_format(&peer, c->peer, sizeof c->peer);
  mr_list_push(&s->conns, &c->all);
  c->last_active = mr_clock_ns();
  atomic_fetch_add(&s->stats.connections_total, 1);
  if (s->num_counted >= s->cfg.max_connections) {
    char msg[200];
    snprintf(msg, sizeof msg,
             "too many connections (max_connections = %zu); retry later",
             s->cfg.max_connections);
    atomic_fetch_add(&s->stats.rejected, 1);
    mr_log_warn("connection refused: too many", "peer=%s limit=%zu", c->peer,
                s->cfg.max_connections);
    reply_error(c, 0, MICROREC__STATUS__OVERLOADED, msg, 0);
    c->linger_after_flush = 1;
    return 0;
  }
  c->counted = 1;
  s->num_counted++;
  atomic_store(&s->stats.connections, s->num_counted);
  mr_log_debug("connection accepted", "conn=%llu peer=%s",
               (unsigned long long)c->serial, c->peer);
  update_reading(c);
  return 0;
}

void mr_conn_complete(mr_conn_t *c, mr_request_t *r) {
  mr_server_t *s = c->srv;
  c->inflight--;
  r->conn = NULL;
  if (c->state <= MR_CONN_DRAINING) {
    int rc = mr_reply_infer(fill(c), r, mr_clock_ns());
    appended(c, rc, atomic_load(&r->failed) ? MICROREC__STATUS__INTERNAL : 0,
             r);
  }
  mr__server_recycle(s, r);
  if (c->state == MR_CONN_CLOSED && c->inflight == 0) free_conn(c);
}

void mr_conn_drain(mr_conn_t *c) {
  if (c->state == MR_CONN_READING) {
    set_state(c, MR_CONN_DRAINING);
    update_reading(c);
  }
  maybe_finish(c);
}

void mr_conn_sweep(mr_conn_t *c, uint64_t now) {
  if (c->state == MR_CONN_LINGERING) {
    if (now - c->linger_since > (uint64_t)MR_CONN_LINGER_MS * 1000000ULL)
      mr_conn_close(c, "linger timeout");
    return;
  }
  uint64_t idle_ns = c->srv->cfg.idle_timeout_ms * 1000000ULL;
  if (!idle_ns || c->state > MR_CONN_DRAINING || c->inflight) return;
  if (now - c->last_active < idle_ns) return;
  /* After a stall of the loop the sweep can run before the reads: bytes
   * waiting in a socket we read from mean the loop is behind, not that
   * the client is idle (test_regress.c). */
  uv_os_fd_t fd;
  int unread = 0;
  if (c->reading && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 &&
      ioctl(fd, FIONREAD, &unread) == 0 && unread > 0)
    return;
  size_t partial = c->rbuf.len - c->rpos;
  mr_log_info("closing idle connection", "conn=%llu peer=%s idle_ms=%llu "
              "partial_frame_bytes=%zu", (unsigned long long)c->serial,
              c->peer, (unsigned long long)((now - c->last_active) / 1000000),
              partial);
  mr_conn_close(c, "idle timeout");
}
