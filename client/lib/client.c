/* The client's transport: connect, framed send and receive on a
 * non-blocking socket with poll, every wait bounded by the timeout. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client/lib/client_int.h"
#include "client/lib/wire.h"

static const char *const status_names[] = {
    "OK",          "BAD_REQUEST", "OUT_OF_RANGE",  "OVERLOADED",
    "NOT_READY",   "INTERNAL",    "SHUTTING_DOWN", "UNKNOWN_REQUEST",
};

_Static_assert((int)MR_STATUS_UNKNOWN_REQUEST ==
                       (int)MICROREC__STATUS__UNKNOWN_REQUEST &&
                   (int)MR_STATUS_OVERLOADED ==
                       (int)MICROREC__STATUS__OVERLOADED,
               "mr_status_t must mirror proto enum Status");

const char *mr_client_status_name(int status) {
  static _Thread_local char buf[32];
  if (status >= 0 && (size_t)status < sizeof status_names / sizeof *status_names)
    return status_names[status];
  snprintf(buf, sizeof buf, "STATUS_%d", status);
  return buf;
}

int mr_parse_hostport(const char *s, char *host, size_t hostlen,
                      uint16_t *port, mr_err_t *err) {
  const char *h = s, *p = NULL;
  size_t hl;
  if (s[0] && strspn(s, "0123456789") == strlen(s)) {
    h = "";  /* "PORT" alone, as microrecd's --listen takes it */
    hl = 0;
    p = s;
  } else if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || (close[1] != 0 && close[1] != ':'))
      return mr_err_set(err, MR_EINVAL,
                        "bad address '%s': expected [IPV6]:PORT", s);
    h = s + 1;
    hl = (size_t)(close - h);
    if (close[1] == ':') p = close + 2;
  } else {
    const char *colon = strrchr(s, ':');
    if (colon && strchr(s, ':') != colon)
      return mr_err_set(err, MR_EINVAL,
                        "bad address '%s': write IPv6 as [ADDR]:PORT", s);
    hl = colon ? (size_t)(colon - s) : strlen(s);
    if (colon) p = colon + 1;
  }
  if (hl == 0) {
    h = MR_DEFAULT_HOST;
    hl = strlen(h);
  }
  if (hl >= hostlen)
    return mr_err_set(err, MR_EINVAL, "host name in '%s' is too long", s);
  memcpy(host, h, hl);
  host[hl] = 0;
  *port = MR_DEFAULT_PORT;
  if (p) {
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (*p == 0 || *end != 0 || errno || v < 1 || v > 65535)
      return mr_err_set(err, MR_EINVAL,
                        "bad port in '%s': expected a number 1..65535", s);
    *port = (uint16_t)v;
  }
  return 0;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_of(int timeout_ms) {
  return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* poll() for events until deadline (-1: none): revents, or MR_ETIMEDOUT. */
static int wait_fd(int fd, short events, int64_t deadline) {
  for (;;) {
    int ms = -1;
    if (deadline >= 0) {
      int64_t left = deadline - now_ms();
      if (left <= 0) return MR_ETIMEDOUT;
      ms = left > 1000000 ? 1000000 : (int)left;
    }
    struct pollfd pfd = {.fd = fd, .events = events};
    int r = poll(&pfd, 1, ms);
    if (r > 0) return pfd.revents;
    if (r < 0 && errno != EINTR) return -errno;
  }
}

int mr_client_connect(mr_client_t **out, const char *host, uint16_t port,
                      int timeout_ms, mr_err_t *err) {
  *out = NULL;
  char service[8];
  snprintf(service, sizeof service, "%u", (unsigned)port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  int g = getaddrinfo(host, service, &hints, &res);
  if (g != 0)
    return mr_err_set(err, MR_EINVAL, "cannot resolve host '%s': %s", host,
                      gai_strerror(g));
  int64_t deadline = deadline_of(timeout_ms);
  int fd = -1, rc = 0;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                a->ai_protocol);
    if (fd < 0) {
      rc = -errno;
      continue;
    }
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    rc = -errno;
    if (rc == -EINPROGRESS) {
      int ev = wait_fd(fd, POLLOUT, deadline);
      if (ev == MR_ETIMEDOUT) {
        rc = ev;
      } else {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        rc = ev < 0 ? ev : -soerr;
        if (rc == 0) break;
      }
    }
    close(fd);
    fd = -1;
    if (rc == MR_ETIMEDOUT) break;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    if (rc == MR_ETIMEDOUT)
      return mr_err_set(err, rc, "connect to %s:%u: timed out after %d ms",
                        host, (unsigned)port, timeout_ms);
    if (rc == -ECONNREFUSED)
      return mr_err_set(err, rc,
                        "connect to %s:%u: connection refused (is microrecd "
                        "running and listening there?)",
                        host, (unsigned)port);
    return mr_err_set(err, rc ? rc : MR_EIO, "connect to %s:%u: %s", host,
                      (unsigned)port, mr_strerror(rc ? rc : MR_EIO));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  mr_client_t *c = calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    return mr_err_set(err, MR_ENOMEM, "out of memory");
  }
  c->rcap = 64 * 1024;
  c->rbuf = malloc(c->rcap);
  if (!c->rbuf) {
    close(fd);
    free(c);
    return mr_err_set(err, MR_ENOMEM, "out of memory");
  }
  c->fd = fd;
  c->timeout_ms = timeout_ms;
  c->next_id = 1;
  c->last_status = MR_STATUS_OK;
  snprintf(c->peer, sizeof c->peer, "%s:%u", host, (unsigned)port);
  *out = c;
  return 0;
}

void mr_client_close(mr_client_t *c) {
  if (!c) return;
  if (c->fd >= 0) close(c->fd);
  free(c->wbuf);
  free(c->rbuf);
  free(c);
}

void mr_client_set_timeout(mr_client_t *c, int timeout_ms) {
  c->timeout_ms = timeout_ms;
}

size_t mr_client_in_flight(const mr_client_t *c) { return c->in_flight; }

int mr_client_last_status(const mr_client_t *c) { return c->last_status; }

void mr__client_break(mr_client_t *c, int code, const char *msg) {
  if (c->broken) return;
  c->broken = code;
  snprintf(c->broken_msg, sizeof c->broken_msg,
           "connection to %s unusable after an earlier error: %s", c->peer,
           msg);
}

static int closed_error(mr_client_t *c, mr_err_t *err) {
  return mr_err_set(err, MR_ECLOSED,
                    "%s closed the connection (%zu request(s) unanswered)",
                    c->peer, c->in_flight);
}

/* Reads what is available into rbuf, growing it to hold at least need
 * bytes from rstart. 0, MR_EAGAIN (nothing to read), MR_ECLOSED, -errno. */
static int read_some(mr_client_t *c, size_t need) {
  if (c->rstart == c->rend) c->rstart = c->rend = 0;
  if (need < 64 * 1024) need = 64 * 1024;
  if (c->rcap - c->rstart < need) {
    if (c->rstart > 0) {
      memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
      c->rend -= c->rstart;
      c->rstart = 0;
    }
    if (c->rcap < need) {
      size_t cap = c->rcap ? c->rcap : 64 * 1024;
      while (cap < need) cap *= 2;
      uint8_t *nb = realloc(c->rbuf, cap);
      if (!nb) return MR_ENOMEM;
      c->rbuf = nb;
      c->rcap = cap;
    }
  }
  if (c->rend == c->rcap) {
    /* Full of unread responses: grow rather than stop reading. */
    uint8_t *nb = realloc(c->rbuf, c->rcap * 2);
    if (!nb) return MR_ENOMEM;
    c->rbuf = nb;
    c->rcap *= 2;
  }
  ssize_t n = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend, MSG_DONTWAIT);
  if (n > 0) {
    c->rend += (size_t)n;
    return 0;
  }
  if (n == 0) {
    c->eof = 1;
    return MR_ECLOSED;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
    return MR_EAGAIN;
  if (errno == ECONNRESET) {
    c->eof = 1;
    return MR_ECLOSED;
  }
  return -errno;
}

/* Writes all of buf, reading whatever the server sends meanwhile so that
 * neither side can block the other with full buffers. */
static int send_all(mr_client_t *c, const uint8_t *buf, size_t len,
                    mr_err_t *err) {
  int64_t deadline = deadline_of(c->timeout_ms);
  size_t off = 0;
  while (off < len) {
    ssize_t n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += (size_t)n;
      continue;
    }
    int rc;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      int ev = wait_fd(c->fd, c->eof ? POLLOUT : POLLOUT | POLLIN, deadline);
      if (ev >= 0 && (ev & POLLIN)) {
        int r = read_some(c, 0);
        if (r == 0 || r == MR_EAGAIN || r == MR_ECLOSED) continue;
        rc = mr_err_set(err, r, "read from %s: %s", c->peer, mr_strerror(r));
      } else if (ev >= 0) {
        continue;
      } else if (ev == MR_ETIMEDOUT) {
        rc = mr_err_set(err, ev,
                        "send to %s: timed out after %d ms (server not "
                        "reading)",
                        c->peer, c->timeout_ms);
      } else {
        rc = mr_err_set(err, ev, "send to %s: %s", c->peer, mr_strerror(ev));
      }
    } else if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      c->eof = 1;
      rc = closed_error(c, err);
    } else {
      rc = mr_err_set(err, -errno, "send to %s: %s", c->peer,
                      mr_strerror(-errno));
    }
    if (off > 0) mr__client_break(c, rc, err ? err->msg : mr_strerror(rc));
    return rc;
  }
  return 0;
}

static int send_request(mr_client_t *c, Microrec__Request *req, uint64_t *id,
                        mr_err_t *err) {
  if (c->broken) return mr_err_set(err, c->broken, "%s", c->broken_msg);
  req->id = c->next_id;
  size_t len;
  int rc = mr_wire_pack_request(req, &c->wbuf, &c->wcap, &len, err);
  if (rc) return rc;
  if ((rc = send_all(c, c->wbuf, len, err)) != 0) return rc;
  c->next_id++;
  c->in_flight++;
  if (id) *id = req->id;
  return 0;
}

int mr_client_send_infer(mr_client_t *c, size_t n, const float *dense,
                         size_t num_dense, const int64_t *ids,
                         size_t num_tables, int want_logits, uint64_t *id,
                         mr_err_t *err) {
  if (n > UINT32_MAX)
    return mr_err_set(err, MR_EINVAL,
                      "%zu samples in one request, expected at most %u", n,
                      UINT32_MAX);
  Microrec__InferRequest inf = MICROREC__INFER_REQUEST__INIT;
  inf.num_samples = (uint32_t)n;
  inf.n_dense = n * num_dense;
  inf.dense = (float *)dense;
  inf.n_sparse = n * num_tables;
  /* int64_t and uint64_t share a representation: the ids go on the wire as
   * the fixed64 bit pattern. */
  inf.sparse = (uint64_t *)ids;
  inf.want_logits = want_logits != 0;
  Microrec__Request req = MICROREC__REQUEST__INIT;
  req.body_case = MICROREC__REQUEST__BODY_INFER;
  req.infer = &inf;
  return send_request(c, &req, id, err);
}

int mr__client_send_simple(mr_client_t *c, int body_case, uint64_t *id,
                           mr_err_t *err) {
  Microrec__HealthRequest h = MICROREC__HEALTH_REQUEST__INIT;
  Microrec__ModelInfoRequest m = MICROREC__MODEL_INFO_REQUEST__INIT;
  Microrec__StatsRequest s = MICROREC__STATS_REQUEST__INIT;
  Microrec__Request req = MICROREC__REQUEST__INIT;
  req.body_case = (Microrec__Request__BodyCase)body_case;
  switch (body_case) {
  case MICROREC__REQUEST__BODY_HEALTH:
    req.health = &h;
    break;
  case MICROREC__REQUEST__BODY_MODEL_INFO:
    req.model_info = &m;
    break;
  case MICROREC__REQUEST__BODY_STATS:
    req.stats = &s;
    break;
  default:
    return mr_err_set(err, MR_EINVAL, "unknown request kind %d", body_case);
  }
  return send_request(c, &req, id, err);
}

int mr_client_send_health(mr_client_t *c, uint64_t *id, mr_err_t *err) {
  return mr__client_send_simple(c, MICROREC__REQUEST__BODY_HEALTH, id, err);
}

int mr_client_send_model_info(mr_client_t *c, uint64_t *id, mr_err_t *err) {
  return mr__client_send_simple(c, MICROREC__REQUEST__BODY_MODEL_INFO, id,
                                err);
}

int mr_client_send_stats(mr_client_t *c, uint64_t *id, mr_err_t *err) {
  return mr__client_send_simple(c, MICROREC__REQUEST__BODY_STATS, id, err);
}

static void fill_response(mr_response_t *r, Microrec__Response *pb) {
  memset(r, 0, sizeof *r);
  r->pb_ = pb;
  r->id = pb->id;
  r->status = (int)pb->status;
  r->message = pb->message ? pb->message : "";
  if (pb->timings) {
    r->queue_ns = pb->timings->queue_ns;
    r->engine_ns = pb->timings->engine_ns;
    r->server_ns = pb->timings->server_ns;
  }
  switch (pb->body_case) {
  case MICROREC__RESPONSE__BODY_INFER:
    r->kind = MR_RESP_INFER;
    r->num_scores = pb->infer->n_scores;
    r->scores = pb->infer->scores;
    r->num_logits = pb->infer->n_logits;
    r->logits = pb->infer->n_logits ? pb->infer->logits : NULL;
    break;
  case MICROREC__RESPONSE__BODY_HEALTH:
    r->kind = MR_RESP_HEALTH;
    break;
  case MICROREC__RESPONSE__BODY_MODEL_INFO:
    r->kind = MR_RESP_MODEL_INFO;
    break;
  case MICROREC__RESPONSE__BODY_STATS:
    r->kind = MR_RESP_STATS;
    break;
  default:
    r->kind = MR_RESP_NONE;
  }
}

int mr_client_recv(mr_client_t *c, mr_response_t *r, mr_err_t *err) {
  memset(r, 0, sizeof *r);
  if (c->broken) return mr_err_set(err, c->broken, "%s", c->broken_msg);
  int64_t deadline = deadline_of(c->timeout_ms);
  for (;;) {
    const uint8_t *body;
    size_t body_len;
    long got = mr_wire_frame(c->rbuf + c->rstart, c->rend - c->rstart,
                             MR_CLIENT_MAX_FRAME, &body, &body_len, err);
    if (got > 0) {
      Microrec__Response *pb =
          microrec__response__unpack(NULL, body_len, body);
      c->rstart += (size_t)got;
      if (!pb) {
        int rc = mr_err_set(err, MR_EPROTO,
                            "%s sent a frame of %zu bytes that is not a "
                            "microrec.Response",
                            c->peer, body_len);
        mr__client_break(c, rc, err ? err->msg : "bad frame");
        return rc;
      }
      if (c->in_flight > 0) c->in_flight--;
      fill_response(r, pb);
      return 0;
    }
    if (got != MR_EAGAIN) {
      mr_err_prefix(err, "from %s", c->peer);
      mr__client_break(c, (int)got, err ? err->msg : "frame too large");
      return (int)got;
    }
    if (c->eof) {
      if (c->rend > c->rstart)
        return mr_err_set(err, MR_ECLOSED,
                          "%s closed the connection in the middle of a "
                          "response",
                          c->peer);
      return closed_error(c, err);
    }
    size_t need = 0;
    if (c->rend - c->rstart >= MR_WIRE_HEADER)
      need = MR_WIRE_HEADER + mr_wire_get_len(c->rbuf + c->rstart);
    int rc = read_some(c, need);
    if (rc == 0 || rc == MR_ECLOSED) continue;
    if (rc != MR_EAGAIN)
      return mr_err_set(err, rc, "read from %s: %s", c->peer,
                        mr_strerror(rc));
    int ev = wait_fd(c->fd, POLLIN, deadline);
    if (ev == MR_ETIMEDOUT)
      return mr_err_set(err, ev,
                        "no response from %s within %d ms (%zu request(s) "
                        "in flight)",
                        c->peer, c->timeout_ms, c->in_flight);
    if (ev < 0)
      return mr_err_set(err, ev, "poll on %s: %s", c->peer, mr_strerror(ev));
  }
}

void mr_response_free(mr_response_t *r) {
  if (!r) return;
  if (r->pb_) microrec__response__free_unpacked(r->pb_, NULL);
  memset(r, 0, sizeof *r);
}

int mr__client_recv_id(mr_client_t *c, uint64_t id, mr_response_t *r,
                       mr_err_t *err) {
  int rc = mr_client_recv(c, r, err);
  if (rc) {
    if (rc != MR_ECLOSED)
      mr__client_break(c, rc, err ? err->msg : mr_strerror(rc));
    return rc;
  }
  if (r->id != id) {
    rc = mr_err_set(err, MR_EPROTO,
                    "%s answered request id %llu while %llu was expected",
                    c->peer, (unsigned long long)r->id,
                    (unsigned long long)id);
    mr_response_free(r);
    mr__client_break(c, rc, err ? err->msg : "unexpected id");
  }
  return rc;
}
