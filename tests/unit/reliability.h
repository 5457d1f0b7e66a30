/* Helpers for the fault and load tests (tests/unit/test_reliability.c,
 * tests/long/): an offline reference (the same model scored in-process by
 * the cpu engine), load workers that pipeline inference requests on their
 * own connection and check every answer against the reference, and probes
 * of the server process (RSS, open descriptors) read from /proc.
 *
 * A worker never calls Criterion's asserts (it runs on its own thread): it
 * counts what it saw, keeps the first problem as a sentence, and the test
 * asserts on the counts after joining it (mr_rel_worker_join).
 *
 * Ownership: the test owns the reference and the workers; a worker owns its
 * client. Threads: one worker per thread; the reference is read-only once
 * built. */
#ifndef MR_TEST_RELIABILITY_H
#define MR_TEST_RELIABILITY_H

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include "fpga/engine.h"
#include "fpga/model.h"
#include "tests/unit/server_proc.h"

/* Tolerance of a score against the offline engine: the same code on the
 * same inputs; batch composition must not change a sample's result. */
#define MR_REL_SCORE_TOL 1e-5f

/* The tests' small model (server_proc.h) with weights from another seed:
 * same shape, other scores. Written atomically (via path.tmp). */
static inline void mr_rel_write_model(const char *path, uint64_t seed) {
  mr_gen_spec_t spec;
  memset(&spec, 0, sizeof spec);
  spec.interaction = MR_INTERACT_DOT;
  spec.num_tables = MR_TEST_NUM_TABLES;
  for (size_t k = 0; k < MR_TEST_NUM_TABLES; k++) {
    spec.rows[k] = mr_test_rows[k];
    spec.dims[k] = 4;
  }
  spec.num_bot_widths = 3;
  spec.bot_widths[0] = MR_TEST_NUM_DENSE;
  spec.bot_widths[1] = 64;
  spec.bot_widths[2] = 4;
  spec.num_top_widths = 2;
  spec.top_widths[0] = 64;
  spec.top_widths[1] = 1;
  spec.seed = seed;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_write(&spec, path, NULL, NULL, &err), 0,
               "writing a model: %s", err.msg);
}

/* ---- the offline reference ---- */

typedef struct mr_rel_ref {
  size_t n; /* samples in the pool */
  size_t num_dense, num_tables;
  float *dense;   /* n * num_dense */
  int64_t *ids;   /* n * num_tables */
  float *scores;  /* n: what the server must answer for sample i */
} mr_rel_ref_t;

static inline uint64_t mr_rel_rand(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* A pool of n random valid samples for the model at path, scored by the
 * cpu engine in this process. */
static inline void mr_rel_ref_init(mr_rel_ref_t *r, const char *path, size_t n,
                                   uint64_t seed) {
  memset(r, 0, sizeof *r);
  mr_model_t m;
  mr_err_t err = {0};
  cr_assert_eq(mr_model_open(&m, path, &err), 0, "reference model: %s",
               err.msg);
  mr_engine_t *e = NULL;
  cr_assert_eq(mr_engine_open(&e, &m, NULL, &err), 0, "reference engine: %s",
               err.msg);
  mr_model_close(&m);
  const mr_engine_info_t *in = mr_engine_info(e);
  r->n = n;
  r->num_dense = in->num_dense;
  r->num_tables = in->num_tables;
  r->dense = malloc((n * r->num_dense + 1) * sizeof *r->dense);
  r->ids = malloc((n * r->num_tables + 1) * sizeof *r->ids);
  r->scores = malloc(n * sizeof *r->scores);
  float *logits = malloc(n * sizeof *logits);
  cr_assert(r->dense && r->ids && r->scores && logits);
  uint64_t s = seed;
  for (size_t i = 0; i < n * r->num_dense; i++)
    r->dense[i] = (float)((int)(mr_rel_rand(&s) % 2001) - 1000) / 500.0f;
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < r->num_tables; k++)
      r->ids[i * r->num_tables + k] =
          (int64_t)(mr_rel_rand(&s) % in->table_rows[k]);
  mr_scratch_t *sc = NULL;
  cr_assert_eq(mr_scratch_new(e, &sc, &err), 0, "%s", err.msg);
  cr_assert_eq(mr_engine_run(e, sc, n, r->num_dense ? r->dense : NULL, r->ids,
                             logits, &err),
               0, "reference run: %s", err.msg);
  for (size_t i = 0; i < n; i++) r->scores[i] = mr_sigmoid(logits[i]);
  free(logits);
  mr_scratch_free(e, sc);
  mr_engine_close(e);
}

static inline void mr_rel_ref_free(mr_rel_ref_t *r) {
  free(r->dense);
  free(r->ids);
  free(r->scores);
  memset(r, 0, sizeof *r);
}

/* ---- load workers ---- */

#define MR_REL_MAX_WINDOW 256

typedef struct mr_rel_pending {
  uint64_t id;
  size_t off, n; /* samples [off, off + n) of the reference pool */
} mr_rel_pending_t;

typedef struct mr_rel_worker {
  /* set by the test */
  uint16_t port;
  const mr_rel_ref_t *ref;
  const mr_rel_ref_t *ref2;        /* a second model being reloaded in
                                      turns (same inputs): a response must
                                      match ref or ref2 in every sample */
  size_t min_samples, max_samples; /* per request (<= ref->n) */
  size_t window;                   /* requests in flight (<= MAX_WINDOW) */
  uint64_t max_requests;           /* stop sending after this many; 0 = no */
  atomic_int *stop;                /* stop sending when it becomes 1 */
  int until_closed;                /* the server may close the connection
                                      (SIGTERM test): not a failure */
  uint64_t seed;
  _Atomic int64_t mark_ms;         /* answers after this time are counted
                                      in answered_after_mark (0 = none) */

  /* results */
  pthread_t tid;
  uint64_t sent, ok, overloaded, internal, shutting_down, other;
  _Atomic uint64_t answered; /* read by the test while the worker runs */
  uint64_t samples_checked;
  uint64_t by_ref2;        /* OK answers that matched ref2 */
  uint64_t unanswered;     /* in flight when the connection ended */
  int closed;              /* the server closed the connection */
  int failed;              /* something that must not happen; see problem */
  char problem[512];
  int64_t last_answer_ms;  /* when the last response arrived */
  uint64_t answered_after_mark;
  uint8_t *seen;           /* seen[id - 1]: answers for that id */
  size_t seen_cap;
} mr_rel_worker_t;

static inline void mr_rel_fail(mr_rel_worker_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void mr_rel_fail(mr_rel_worker_t *w, const char *fmt, ...) {
  if (w->failed++) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->problem, sizeof w->problem, fmt, ap);
  va_end(ap);
}

static inline void mr_rel_mark_seen(mr_rel_worker_t *w, uint64_t id) {
  if (id == 0) return;
  if (id > w->seen_cap) {
    size_t cap = w->seen_cap ? w->seen_cap : 4096;
    while (cap < id) cap *= 2;
    uint8_t *p = realloc(w->seen, cap);
    if (!p) abort();
    memset(p + w->seen_cap, 0, cap - w->seen_cap);
    w->seen = p;
    w->seen_cap = cap;
  }
  if (w->seen[id - 1] < 255) w->seen[id - 1]++;
}

/* Whether every score of r is ref's for the samples p sent. */
static inline int mr_rel_matches(const mr_rel_ref_t *ref,
                                 const mr_rel_pending_t *p,
                                 const mr_response_t *r) {
  for (size_t i = 0; i < p->n; i++)
    if (!(fabsf(r->scores[i] - ref->scores[p->off + i]) <= MR_REL_SCORE_TOL))
      return 0;
  return 1;
}

/* Checks one response against the request it answers. */
static inline void mr_rel_check(mr_rel_worker_t *w, const mr_rel_pending_t *p,
                                const mr_response_t *r) {
  w->answered++;
  w->last_answer_ms = mr_test_now_ms();
  int64_t mark = atomic_load(&w->mark_ms);
  if (mark && w->last_answer_ms >= mark) w->answered_after_mark++;
  switch (r->status) {
  case MR_STATUS_OK:
    w->ok++;
    if (r->num_scores != p->n) {
      mr_rel_fail(w, "id %llu: %zu scores for %zu samples",
                  (unsigned long long)r->id, r->num_scores, p->n);
      return;
    }
    if (mr_rel_matches(w->ref, p, r)) {
      w->samples_checked += p->n;
      break;
    }
    if (w->ref2 && mr_rel_matches(w->ref2, p, r)) {
      w->samples_checked += p->n;
      w->by_ref2++;
      break;
    }
    for (size_t i = 0; i < p->n; i++) {
      float want = w->ref->scores[p->off + i];
      if (!(fabsf(r->scores[i] - want) <= MR_REL_SCORE_TOL)) {
        mr_rel_fail(w, "id %llu sample %zu (pool %zu): score %.9g, offline "
                    "engine %.9g%s", (unsigned long long)r->id, i, p->off + i,
                    (double)r->scores[i], (double)want,
                    w->ref2 ? " (and no match with the other model)" : "");
        return;
      }
    }
    break;
  case MR_STATUS_OVERLOADED:
    w->overloaded++;
    break;
  case MR_STATUS_INTERNAL:
    w->internal++;
    break;
  case MR_STATUS_SHUTTING_DOWN:
    w->shutting_down++;
    break;
  default:
    w->other++;
    mr_rel_fail(w, "id %llu: unexpected %s: %s", (unsigned long long)r->id,
                mr_client_status_name(r->status), r->message);
    break;
  }
}

static inline void *mr_rel_worker_main(void *arg) {
  mr_rel_worker_t *w = arg;
  mr_err_t err = {0};
  mr_client_t *c = NULL;
  if (mr_client_connect(&c, "127.0.0.1", w->port, 20000, &err)) {
    mr_rel_fail(w, "connect: %s", err.msg);
    return NULL;
  }
  mr_rel_pending_t pend[MR_REL_MAX_WINDOW];
  size_t npend = 0;
  size_t window = w->window ? w->window : 8;
  if (window > MR_REL_MAX_WINDOW) window = MR_REL_MAX_WINDOW;
  size_t lo = w->min_samples ? w->min_samples : 1;
  size_t hi = w->max_samples >= lo ? w->max_samples : lo;
  uint64_t rs = w->seed * 7919 + 1;
  const mr_rel_ref_t *ref = w->ref;
  int sending = 1;
  for (;;) {
    if (sending && (atomic_load(w->stop) ||
                    (w->max_requests && w->sent >= w->max_requests)))
      sending = 0;
    while (sending && npend < window) {
      size_t n = lo + (size_t)(mr_rel_rand(&rs) % (hi - lo + 1));
      size_t off = (size_t)(mr_rel_rand(&rs) % (ref->n - n + 1));
      uint64_t id;
      int rc = mr_client_send_infer(
          c, n, ref->num_dense ? ref->dense + off * ref->num_dense : NULL,
          ref->num_dense, ref->ids + off * ref->num_tables, ref->num_tables,
          0, &id, &err);
      if (rc) {
        if (rc == MR_ECLOSED && w->until_closed) {
          w->closed = 1; /* read what was answered before the close */
          sending = 0;
          break;
        }
        mr_rel_fail(w, "send (%llu sent): %s", (unsigned long long)w->sent,
                    err.msg);
        goto out;
      }
      pend[npend++] = (mr_rel_pending_t){id, off, n};
      w->sent++;
      if (w->max_requests && w->sent >= w->max_requests) sending = 0;
    }
    if (npend == 0) break;
    mr_response_t r;
    int rc = mr_client_recv(c, &r, &err);
    if (rc) {
      w->closed = rc == MR_ECLOSED;
      if (!(w->closed && w->until_closed))
        mr_rel_fail(w, "receive (%zu in flight): %s", npend, err.msg);
      goto out;
    }
    mr_rel_mark_seen(w, r.id);
    size_t k = 0;
    while (k < npend && pend[k].id != r.id) k++;
    if (k == npend) {
      mr_rel_fail(w, "response for id %llu, which is not in flight (answered "
                  "twice, or never sent)", (unsigned long long)r.id);
    } else {
      mr_rel_check(w, &pend[k], &r);
      pend[k] = pend[--npend];
    }
    mr_response_free(&r);
  }
out:
  w->unanswered = npend;
  mr_client_close(c);
  return NULL;
}

static inline void mr_rel_worker_start(mr_rel_worker_t *w) {
  cr_assert_eq(pthread_create(&w->tid, NULL, mr_rel_worker_main, w), 0);
}

/* Joins the worker; asserts nothing went wrong and, unless the server was
 * expected to close, that every request sent was answered exactly once. */
static inline void mr_rel_worker_join(mr_rel_worker_t *w, const char *name) {
  pthread_join(w->tid, NULL);
  cr_assert_eq(w->failed, 0, "%s: %s (%d problems)", name, w->problem,
               w->failed);
  if (!w->until_closed) {
    cr_assert_eq(w->answered, w->sent, "%s: %llu sent, %llu answered", name,
                 (unsigned long long)w->sent,
                 (unsigned long long)w->answered);
    cr_assert_eq(w->unanswered, 0);
  }
  for (size_t i = 0; i < w->seen_cap; i++)
    cr_assert_leq(w->seen[i], 1, "%s: id %zu answered %u times", name, i + 1,
                  w->seen[i]);
}

static inline void mr_rel_worker_free(mr_rel_worker_t *w) {
  free(w->seen);
  w->seen = NULL;
  w->seen_cap = 0;
}

/* Sums of a set of workers, for the log. */
typedef struct mr_rel_totals {
  uint64_t sent, answered, ok, overloaded, internal, shutting_down, samples;
} mr_rel_totals_t;

static inline mr_rel_totals_t mr_rel_sum(const mr_rel_worker_t *w, size_t n) {
  mr_rel_totals_t t = {0};
  for (size_t i = 0; i < n; i++) {
    t.sent += w[i].sent;
    t.answered += w[i].answered;
    t.ok += w[i].ok;
    t.overloaded += w[i].overloaded;
    t.internal += w[i].internal;
    t.shutting_down += w[i].shutting_down;
    t.samples += w[i].samples_checked;
  }
  return t;
}

/* ---- probes of the server process ---- */

/* A "Key:   123 kB" line of /proc/PID/status, in kB; -1 if absent. */
static inline long mr_rel_status_kb(pid_t pid, const char *key) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long v = -1;
  size_t kl = strlen(key);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
      v = strtol(line + kl + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

static inline long mr_rel_rss_kb(pid_t pid) {
  long v = mr_rel_status_kb(pid, "VmRSS");
  cr_assert_gt(v, 0, "cannot read VmRSS of pid %d", (int)pid);
  return v;
}

/* Open descriptors of the process. */
static inline int mr_rel_fd_count(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  cr_assert(d, "cannot list %s", path);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

/* Raises this process's open-file limit (inherited by the server it
 * starts) to at least want, within the hard limit; returns the new soft
 * limit. */
static inline rlim_t mr_rel_raise_nofile(rlim_t want) {
  struct rlimit rl;
  cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur < want) {
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want
                      ? want
                      : rl.rlim_max;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0, "setrlimit: %s",
                 strerror(errno));
  }
  return rl.rlim_cur;
}

/* The server's count of open connections, asked on a new connection (which
 * is itself counted). */
static inline uint64_t mr_rel_server_connections(const mr_test_server_t *s) {
  mr_client_t *c = mr_test_connect(s);
  mr_stats_reply_t st;
  mr_err_t err = {0};
  cr_assert_eq(mr_client_stats(c, &st, &err), 0, "stats: %s", err.msg);
  uint64_t n = st.connections;
  mr_stats_reply_free(&st);
  mr_client_close(c);
  return n;
}

/* Waits up to timeout_ms for the server to count `want` connections
 * (including the asking one); returns the last count seen. */
static inline uint64_t mr_rel_wait_connections(const mr_test_server_t *s,
                                               uint64_t want, int timeout_ms) {
  int64_t deadline = mr_test_now_ms() + timeout_ms;
  uint64_t n;
  while ((n = mr_rel_server_connections(s)) != want &&
         mr_test_now_ms() < deadline)
    mr_test_sleep_ms(50);
  return n;
}

/* Waits up to timeout_ms for the server's descriptors to come back to at
 * most want; returns the last count. */
static inline int mr_rel_wait_fds(pid_t pid, int want, int timeout_ms) {
  int64_t deadline = mr_test_now_ms() + timeout_ms;
  int n;
  while ((n = mr_rel_fd_count(pid)) > want && mr_test_now_ms() < deadline)
    mr_test_sleep_ms(50);
  return n;
}

/* The allocator keeps what it freed for reuse (jemalloc's dirty pages,
 * ASan's quarantine); growth bounds in the tests are stated above that.
 * Under ASan the quarantine alone may hold up to quarantine_size_mb, which
 * the tests lower for the server (mr_rel_small_quarantine). */
#ifdef MR_SANITIZE
#define MR_REL_SANITIZED 1
#else
#define MR_REL_SANITIZED 0
#endif

/* Before starting a server: under ASan, keep its quarantine small so that
 * RSS measures what the server holds, not what ASan keeps. */
static inline void mr_rel_small_quarantine(void) {
  if (!MR_REL_SANITIZED) return;
  const char *old = getenv("ASAN_OPTIONS");
  char buf[1024];
  snprintf(buf, sizeof buf, "%s%squarantine_size_mb=8", old ? old : "",
           old && *old ? ":" : "");
  setenv("ASAN_OPTIONS", buf, 1);
}

/* Waits up to timeout_ms for the server to exit by itself (after a signal
 * the test sent), like mr_test_server_stop but without sending SIGTERM: a
 * second one would force the stop. Returns the wait status, -2 if it had to
 * be killed. */
static inline int mr_rel_wait_exit(mr_test_server_t *s, int timeout_ms) {
  int status = mr_test_server_wait_exit(s, timeout_ms);
  if (!(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0))
    mr_test_server_dump_log(s);
  return status;
}

#endif
