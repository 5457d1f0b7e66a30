/* A load run (see runner.h): connections, the sender thread of open loop,
 * the libuv read loop, and the accounting of every request.
 *
 * Request slots: request id i lives in slots[i & mask] from the moment it
 * is queued until its answer (or the end of the run). The writer fills the
 * slot, then publishes the id with a release store, then writes the bytes;
 * the reader finds the slot by the answer's id (acquire load), takes the
 * due time and frees it. A slot still busy when its turn comes round means
 * more than `mask + 1` requests in flight: that request is dropped. */
#include "client/load/runner.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "client/lib/wire.h"
#include "proto/microrec.pb-c.h"

#define SLOT_BITS 20
#define MAX_BACKLOG (64u << 20)     /* unsent bytes per connection */
#define MAX_FRAME (64u << 20)       /* largest answer accepted */
#define READ_CHUNK (64u << 10)
#define TICK_MS 5                   /* how often the loop checks the end */
#define MAX_SLEEP_NS 10000000ULL    /* sender re-checks `stop` this often */

typedef struct slot {
  _Atomic uint64_t id;  /* 0 = free */
  uint64_t due_ns;
  uint32_t conn;
  uint32_t measured;
} slot_t;

typedef struct run run_t;

typedef struct lconn {
  run_t *run;
  size_t index;
  int fd;
  uv_poll_t poll;
  int poll_events;      /* loop thread */
  _Atomic int dead;
  /* Bytes out: owned by the writer thread. */
  uint8_t *out;
  size_t out_off, out_len, out_cap;
  /* Bytes in: loop thread. */
  uint8_t *in;
  size_t in_len, in_cap;
} lconn_t;

struct run {
  const mr_load_conf_t *c;
  mr_load_result_t *r;
  lconn_t *conns;
  size_t nconn, rr;
  slot_t *slots;
  uint64_t mask;
  uint64_t last_id;     /* writer thread */
  uint64_t t_start, t_measure, t_end, t_deadline;
  _Atomic int64_t outstanding;
  _Atomic int sender_done, stop;
  _Atomic int error_taken;  /* the first connection failure is recorded */
  uv_loop_t loop;
  uv_timer_t timer;
  int finished;
  /* Writer-side counts (sender thread in open loop), read after join. */
  uint64_t w_requests, w_dropped;
};

uint64_t mr_load_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int mr_load_connect(const char *host, uint16_t port, int timeout_ms,
                    mr_err_t *err) {
  char portstr[8];
  snprintf(portstr, sizeof portstr, "%u", port);
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int g = getaddrinfo(host, portstr, &hints, &res);
  if (g)
    return mr_err_set(err, MR_EINVAL, "cannot resolve '%s': %s", host,
                      gai_strerror(g));
  int rc = -ECONNREFUSED;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    a->ai_protocol);
    if (fd < 0) {
      rc = -errno;
      continue;
    }
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        rc = -errno;
        close(fd);
        continue;
      }
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      int n;
      do n = poll(&p, 1, timeout_ms);
      while (n < 0 && errno == EINTR);
      int soerr = 0;
      socklen_t sl = sizeof soerr;
      if (n == 0) {
        rc = MR_ETIMEDOUT;
        close(fd);
        continue;
      }
      if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 ||
          soerr) {
        rc = soerr ? -soerr : -errno;
        close(fd);
        continue;
      }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    freeaddrinfo(res);
    return fd;
  }
  freeaddrinfo(res);
  return mr_err_set(err, rc, "cannot connect to %s:%u: %s", host, port,
                    rc == MR_ETIMEDOUT ? "timed out" : mr_strerror(rc));
}

/* --- writer side ------------------------------------------------------ */

static void conn_fail(lconn_t *cn, const char *what, int code) {
  if (atomic_exchange(&cn->dead, 1)) return;
  mr_load_result_t *r = cn->run->r;
  if (!atomic_exchange(&cn->run->error_taken, 1))
    snprintf(r->conn_error, sizeof r->conn_error, "connection %zu: %s%s%s",
             cn->index, what, code ? ": " : "", code ? mr_strerror(code) : "");
}

/* Writes what is queued; returns 1 if bytes remain (socket full). */
static int conn_flush(lconn_t *cn) {
  while (cn->out_off < cn->out_len && !atomic_load(&cn->dead)) {
    ssize_t n = send(cn->fd, cn->out + cn->out_off, cn->out_len - cn->out_off,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      cn->out_off += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return 1;
    } else {
      conn_fail(cn, "send failed", n < 0 ? -errno : MR_ECLOSED);
      return 0;
    }
  }
  cn->out_off = cn->out_len = 0;
  return 0;
}

static int conn_reserve(lconn_t *cn, size_t more) {
  if (cn->out_off && cn->out_off == cn->out_len) cn->out_off = cn->out_len = 0;
  if (cn->out_len + more <= cn->out_cap) return 0;
  if (cn->out_off) {  /* slide the unsent bytes to the front */
    memmove(cn->out, cn->out + cn->out_off, cn->out_len - cn->out_off);
    cn->out_len -= cn->out_off;
    cn->out_off = 0;
    if (cn->out_len + more <= cn->out_cap) return 0;
  }
  size_t need = cn->out_len + more;
  if (need > MAX_BACKLOG) return MR_EOVERLOAD;
  size_t cap = cn->out_cap ? cn->out_cap : READ_CHUNK;
  while (cap < need) cap *= 2;
  uint8_t *nb = realloc(cn->out, cap);
  if (!nb) return MR_ENOMEM;
  cn->out = nb;
  cn->out_cap = cap;
  return 0;
}

/* Next live connection, round robin; NULL when all are dead. */
static lconn_t *pick_conn(run_t *R) {
  for (size_t k = 0; k < R->nconn; k++) {
    lconn_t *cn = &R->conns[R->rr++ % R->nconn];
    if (!atomic_load(&cn->dead)) return cn;
  }
  return NULL;
}

/* Queues one request due at `due` on cn (writer thread). */
static void queue_request(run_t *R, lconn_t *cn, uint64_t due) {
  int measured = due >= R->t_measure && due < R->t_end;
  R->w_requests += measured;
  uint64_t id = ++R->last_id;
  slot_t *s = &R->slots[id & R->mask];
  const mr_pool_t *p = R->c->pool;
  size_t j = (size_t)((id - 1) % p->count);
  if (!cn || atomic_load_explicit(&s->id, memory_order_acquire) != 0 ||
      conn_reserve(cn, MR_POOL_HEADER_MAX + p->len[j]) != 0) {
    R->w_dropped += measured;
    return;
  }
  size_t h = mr_pool_header(cn->out + cn->out_len, id, p->len[j]);
  memcpy(cn->out + cn->out_len + h, p->data + p->off[j], p->len[j]);
  cn->out_len += h + p->len[j];
  s->due_ns = due;
  s->conn = (uint32_t)cn->index;
  s->measured = (uint32_t)measured;
  atomic_fetch_add(&R->outstanding, 1);
  atomic_store_explicit(&s->id, id, memory_order_release);
}

static void sleep_until(uint64_t t) {
  struct timespec ts = {.tv_sec = (time_t)(t / 1000000000ULL),
                        .tv_nsec = (long)(t % 1000000000ULL)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

/* Sleeps until t; the last `spin` ns are spent polling the clock, which
 * is exact where a wake-up from sleep is late by tens of microseconds. */
static void wait_until(uint64_t t, uint64_t spin) {
  if (spin) {
    uint64_t now = mr_load_now_ns();
    if (t > now + spin) sleep_until(t - spin);
    while (mr_load_now_ns() < t) {
    }
    return;
  }
  sleep_until(t);
}

/* Waits until some pending connection can take bytes, or until t. */
static void wait_writable(run_t *R, uint64_t t) {
  struct pollfd pfd[64];
  nfds_t n = 0;
  for (size_t k = 0; k < R->nconn && n < 64; k++) {
    lconn_t *cn = &R->conns[k];
    if (cn->out_off < cn->out_len && !atomic_load(&cn->dead))
      pfd[n++] = (struct pollfd){.fd = cn->fd, .events = POLLOUT};
  }
  uint64_t now = mr_load_now_ns();
  if (n == 0 || t <= now) return;
  uint64_t d = t - now;
  struct timespec ts = {.tv_sec = (time_t)(d / 1000000000ULL),
                        .tv_nsec = (long)(d % 1000000000ULL)};
  ppoll(pfd, n, &ts, NULL);
}

/* Open loop: hands each request to its socket at its due time. */
static void *sender_main(void *arg) {
  run_t *R = arg;
  mr_load_result_t *res = R->r;
  /* Default timer slack is 50 us: far too coarse for our schedule. */
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  mr_arrivals_t a;
  mr_arrivals_init(&a, R->c->arrivals, R->c->rate, R->t_start, R->c->seed);
  uint64_t due = mr_arrivals_next(&a);
  uint64_t bound = (uint64_t)(R->c->lag_bound_us * 1000.0);
  uint64_t spin = (uint64_t)(R->c->spin_us * 1000.0);
  while (!atomic_load(&R->stop)) {
    uint64_t now = mr_load_now_ns();
    /* A budget per round, so bytes go out even when the schedule runs
     * ahead of us (then we never sleep, but still flush). */
    for (int budget = 256; budget > 0 && due <= now && due < R->t_end;
         budget--) {
      if (due >= R->t_measure) {
        mr_hist_record(&res->lag, now - due);
        if (now - due > bound) res->late_sends++;
      }
      queue_request(R, pick_conn(R), due);
      due = mr_arrivals_next(&a);
      now = mr_load_now_ns();
    }
    if (now >= R->t_deadline && due < R->t_end) {
      /* So far behind that the run's time is up: what is still due is
       * never sent; count it, so it shows as dropped. */
      for (; due < R->t_end; due = mr_arrivals_next(&a)) {
        int measured = due >= R->t_measure;
        R->w_requests += measured;
        R->w_dropped += measured;
      }
    }
    int pending = 0;
    for (size_t k = 0; k < R->nconn; k++) pending |= conn_flush(&R->conns[k]);
    if (due >= R->t_end && (!pending || now >= R->t_deadline)) break;
    uint64_t wake = due < R->t_end ? due : R->t_deadline;
    if (wake > now + MAX_SLEEP_NS) wake = now + MAX_SLEEP_NS;
    if (wake <= now) continue;  /* behind schedule: no sleep */
    if (pending)
      wait_writable(R, wake);
    else
      wait_until(wake, spin);
  }
  atomic_store(&R->sender_done, 1);
  return NULL;
}

/* --- loop side -------------------------------------------------------- */

static void poll_cb(uv_poll_t *h, int status, int events);

static void set_events(lconn_t *cn, int events) {
  if (cn->poll_events == events) return;
  cn->poll_events = events;
  if (events)
    uv_poll_start(&cn->poll, events, poll_cb);
  else
    uv_poll_stop(&cn->poll);
}

/* Closed loop: the loop thread is the writer. */
static void closed_send(run_t *R, lconn_t *cn, uint64_t now) {
  queue_request(R, cn, now);
  if (cn && conn_flush(cn))
    set_events(cn, UV_READABLE | UV_WRITABLE);
}

static void on_answer(run_t *R, lconn_t *cn, const uint8_t *body, size_t len,
                      uint64_t now) {
  mr_load_result_t *res = R->r;
  Microrec__Response *m = microrec__response__unpack(NULL, len, body);
  if (!m) {
    conn_fail(cn, "the server sent a frame that is not a Response", 0);
    return;
  }
  uint64_t id = m->id;
  int status = (int)m->status;
  microrec__response__free_unpacked(m, NULL);
  if (now >= R->t_measure && now < R->t_end) res->answered_in_window++;
  slot_t *s = &R->slots[id & R->mask];
  if (id == 0 || atomic_load_explicit(&s->id, memory_order_acquire) != id) {
    res->unexpected++;
    return;
  }
  uint64_t due = s->due_ns;
  int measured = (int)s->measured;
  atomic_store_explicit(&s->id, 0, memory_order_release);
  atomic_fetch_sub(&R->outstanding, 1);
  if (measured) {
    if (status == 0)
      mr_hist_record(&res->latency, now > due ? now - due : 0);
    if (status >= 0 && status < MR_LOAD_NUM_STATUS)
      res->by_status[status]++;
    else
      res->by_status[MR_LOAD_NUM_STATUS]++;
  }
  if (!R->c->rate && now < R->t_end && !atomic_load(&R->stop))
    closed_send(R, cn, now);
}

/* Reads what has arrived and handles every whole frame. */
static void conn_read(run_t *R, lconn_t *cn) {
  for (int budget = 16; budget > 0 && !atomic_load(&cn->dead); budget--) {
    if (cn->in_cap - cn->in_len < READ_CHUNK) {
      size_t cap = cn->in_cap ? cn->in_cap * 2 : 2 * READ_CHUNK;
      uint8_t *nb = realloc(cn->in, cap);
      if (!nb) {
        conn_fail(cn, "out of memory for input", MR_ENOMEM);
        return;
      }
      cn->in = nb;
      cn->in_cap = cap;
    }
    ssize_t n = recv(cn->fd, cn->in + cn->in_len, cn->in_cap - cn->in_len,
                     MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      conn_fail(cn, "the server closed the connection",
                n < 0 ? -errno : 0);
      return;
    }
    uint64_t now = mr_load_now_ns();
    cn->in_len += (size_t)n;
    size_t off = 0;
    for (;;) {
      const uint8_t *body;
      size_t blen;
      mr_err_t e;
      long f = mr_wire_frame(cn->in + off, cn->in_len - off, MAX_FRAME, &body,
                             &blen, &e);
      if (f == MR_EAGAIN) break;
      if (f < 0) {
        conn_fail(cn, e.msg, 0);
        return;
      }
      on_answer(R, cn, body, blen, now);
      off += (size_t)f;
      if (atomic_load(&cn->dead)) return;
    }
    if (off) {
      memmove(cn->in, cn->in + off, cn->in_len - off);
      cn->in_len -= off;
    }
  }
}

static void poll_cb(uv_poll_t *h, int status, int events) {
  lconn_t *cn = h->data;
  run_t *R = cn->run;
  if (status < 0) {
    conn_fail(cn, "socket error", status);
  } else {
    if (events & UV_READABLE) conn_read(R, cn);
    if ((events & UV_WRITABLE) && !R->c->rate && !conn_flush(cn))
      set_events(cn, UV_READABLE);
  }
  if (atomic_load(&cn->dead)) set_events(cn, 0);
}

static void close_cb(uv_handle_t *h) { (void)h; }

static void finish(run_t *R) {
  if (R->finished) return;
  R->finished = 1;
  atomic_store(&R->stop, 1);
  for (size_t k = 0; k < R->nconn; k++)
    uv_close((uv_handle_t *)&R->conns[k].poll, close_cb);
  uv_close((uv_handle_t *)&R->timer, close_cb);
}

static void timer_cb(uv_timer_t *t) {
  run_t *R = t->data;
  uint64_t now = mr_load_now_ns();
  int alive = 0;
  for (size_t k = 0; k < R->nconn; k++) alive |= !atomic_load(&R->conns[k].dead);
  int sending_done = R->c->rate ? atomic_load(&R->sender_done) : now >= R->t_end;
  if (!alive || (sending_done && (atomic_load(&R->outstanding) == 0 ||
                                  now >= R->t_deadline)))
    finish(R);
}

/* --- the run ------------------------------------------------------------ */

/* Requests still without an answer. A timed-out request waited at least
 * until now: it enters the latency histogram at that wait (a lower bound),
 * so an unanswered tail cannot make the percentiles look better. */
static void account_leftovers(run_t *R) {
  mr_load_result_t *res = R->r;
  uint64_t now = mr_load_now_ns();
  /* Ids start at 1; only slots up to the last id were ever used. */
  uint64_t lim = R->last_id > R->mask ? R->mask + 1 : R->last_id + 1;
  for (uint64_t k = 0; k < lim; k++) {
    slot_t *s = &R->slots[k];
    if (atomic_load(&s->id) == 0 || !s->measured) continue;
    if (atomic_load(&R->conns[s->conn].dead)) {
      res->closed++;
    } else {
      res->timeouts++;
      mr_hist_record(&res->latency, now > s->due_ns ? now - s->due_ns : 0);
    }
  }
}

void mr_load_result_free(mr_load_result_t *r) {
  mr_hist_free(&r->latency);
  mr_hist_free(&r->lag);
}

int mr_load_run(const mr_load_conf_t *c, mr_load_result_t *r, mr_err_t *err) {
  memset(r, 0, sizeof *r);
  int rc = mr_hist_init_latency(&r->latency, err);
  if (!rc) rc = mr_hist_init_latency(&r->lag, err);
  if (rc) return rc;
  if (c->connections < 1 || c->duration_s <= 0 || !c->pool ||
      !c->pool->count || (c->rate <= 0 && c->concurrency < 1))
    return mr_err_set(err, MR_EINVAL,
                      "load run needs connections >= 1, duration > 0, a "
                      "request pool and a rate or a concurrency");
  r->open_loop = c->rate > 0;
  r->duration_s = c->duration_s;

  run_t *R = calloc(1, sizeof *R);
  if (!R) return mr_err_set(err, MR_ENOMEM, "out of memory for the run");
  R->c = c;
  R->r = r;
  R->nconn = c->connections;
  R->mask = (1ULL << SLOT_BITS) - 1;
  R->slots = calloc(R->mask + 1, sizeof *R->slots);
  R->conns = calloc(R->nconn, sizeof *R->conns);
  int loop_ok = 0, timer_ok = 0, thread_ok = 0;
  size_t polls = 0;
  pthread_t sender;
  if (!R->slots || !R->conns) {
    rc = mr_err_set(err, MR_ENOMEM, "out of memory for the run");
    goto out;
  }
  for (size_t k = 0; k < R->nconn; k++) R->conns[k].fd = -1;
  int timeout_ms = (int)(c->timeout_s * 1000.0);
  for (size_t k = 0; k < R->nconn; k++) {
    lconn_t *cn = &R->conns[k];
    cn->run = R;
    cn->index = k;
    cn->fd = mr_load_connect(c->host, c->port, timeout_ms, err);
    if (cn->fd < 0) {
      rc = cn->fd;
      goto out;
    }
  }
  if ((rc = uv_loop_init(&R->loop))) {
    rc = mr_err_set(err, MR_EIO, "uv_loop_init: %s", uv_strerror(rc));
    goto out;
  }
  loop_ok = 1;
  for (; polls < R->nconn; polls++) {
    lconn_t *cn = &R->conns[polls];
    if ((rc = uv_poll_init(&R->loop, &cn->poll, cn->fd))) {
      rc = mr_err_set(err, MR_EIO, "uv_poll_init: %s", uv_strerror(rc));
      goto out;
    }
    cn->poll.data = cn;
    set_events(cn, UV_READABLE);
  }
  uv_timer_init(&R->loop, &R->timer);
  R->timer.data = R;
  timer_ok = 1;

  R->t_start = mr_load_now_ns() + 1000000ULL;
  R->t_measure = R->t_start + (uint64_t)(c->warmup_s * 1e9);
  R->t_end = R->t_measure + (uint64_t)(c->duration_s * 1e9);
  R->t_deadline = R->t_end + (uint64_t)(c->timeout_s * 1e9);
  if (c->rate > 0) {
    if ((rc = pthread_create(&sender, NULL, sender_main, R))) {
      rc = mr_err_set(err, -rc, "cannot start the sender thread: %s",
                      strerror(rc));
      goto out;
    }
    thread_ok = 1;
  } else {
    sleep_until(R->t_start);
    uint64_t now = mr_load_now_ns();
    for (size_t i = 0; i < c->concurrency; i++)
      closed_send(R, pick_conn(R), now);
  }
  uv_timer_start(&R->timer, timer_cb, TICK_MS, TICK_MS);
  uv_run(&R->loop, UV_RUN_DEFAULT);
  rc = 0;

out:
  atomic_store(&R->stop, 1);
  if (thread_ok) pthread_join(sender, NULL);
  if (loop_ok) {
    if (!R->finished) {
      for (size_t k = 0; k < polls; k++)
        uv_close((uv_handle_t *)&R->conns[k].poll, close_cb);
      if (timer_ok) uv_close((uv_handle_t *)&R->timer, close_cb);
    }
    uv_run(&R->loop, UV_RUN_DEFAULT);
    uv_loop_close(&R->loop);
  }
  if (rc == 0) {
    account_leftovers(R);
    r->requests = R->w_requests;
    r->dropped = R->w_dropped;
    r->ok = r->by_status[0];
    uint64_t answered = 0;
    for (int s = 0; s <= MR_LOAD_NUM_STATUS; s++) answered += r->by_status[s];
    r->errors = (answered - r->ok) + r->timeouts + r->closed + r->dropped;
    r->achieved_rate = (double)r->answered_in_window / c->duration_s;
  }
  if (R->conns)
    for (size_t k = 0; k < R->nconn; k++) {
      if (R->conns[k].fd >= 0) close(R->conns[k].fd);
      free(R->conns[k].out);
      free(R->conns[k].in);
    }
  free(R->conns);
  free(R->slots);
  free(R);
  return rc;
}
