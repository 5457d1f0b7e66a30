/* sd_notify for microrecd (notify.h). */
#include "server/notify.h"

#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "server/log.h"

/* While a reload runs, how often the timer looks whether it has ended. */
#define RELOAD_POLL_MS 20

int mr_notify_send(const char *fmt, ...) {
  static atomic_int warned;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  int rc = sd_notify(0, buf);
  if (rc >= 0) return 0;
  if (!atomic_exchange(&warned, 1))
    mr_log_warn("cannot notify systemd", "error=\"%s\"", strerror(-rc));
  return rc;
}

static void status_serving(const mr_notify_t *n, const char *extra) {
  const mr_server_t *s = n->server;
  char a[300];
  mr_addr_format(&s->bound, a, sizeof a);
  mr_notify_send("READY=1\nSTATUS=serving %s (generation %llu) on %s%s",
                 s->cfg.model, (unsigned long long)s->generation, a, extra);
}

static void on_watchdog(uv_timer_t *h) {
  (void)h;
  mr_notify_send("WATCHDOG=1");
}

static void on_reload_poll(uv_timer_t *h) {
  mr_notify_t *n = h->data;
  mr_server_t *s = n->server;
  if (s->reloading) return;
  uv_timer_stop(h);
  uint64_t ok = atomic_load(&s->stats.reloads);
  uint64_t failed = atomic_load(&s->stats.reload_failures);
  if (ok == n->reloads && failed != n->reload_failures) {
    char q[700];
    char extra[760];
    snprintf(extra, sizeof extra, "; the last reload failed: %s",
             mr_log_quote(q, sizeof q, s->reload_err.msg));
    status_serving(n, extra);
  } else {
    status_serving(n, "");
  }
}

static void on_signal(uv_signal_t *h, int signum) {
  mr_notify_t *n = h->data;
  mr_server_t *s = n->server;
  if (signum == SIGHUP) {
    if (s->draining) return; /* the server ignores it too */
    if (uv_is_active((uv_handle_t *)&n->reload)) return; /* already watching */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    n->reloads = atomic_load(&s->stats.reloads);
    n->reload_failures = atomic_load(&s->stats.reload_failures);
    mr_notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
                   (unsigned long long)ts.tv_sec * 1000000ull +
                       (unsigned long long)ts.tv_nsec / 1000,
                   s->cfg.model);
    uv_timer_start(&n->reload, on_reload_poll, RELOAD_POLL_MS, RELOAD_POLL_MS);
    return;
  }
  /* Once: the server's own handle may have run first and set draining. */
  if (n->stopping) return;
  n->stopping = 1;
  mr_notify_send("STOPPING=1\nSTATUS=stopping: answering the accepted requests "
                 "of %zu connections", s->num_counted);
}

static int start_signal(mr_notify_t *n, uv_signal_t *h, int signum) {
  int rc = uv_signal_init(n->server->loop, h);
  if (rc) return rc;
  h->data = n;
  uv_unref((uv_handle_t *)h);
  return uv_signal_start(h, on_signal, signum);
}

int mr_notify_start(mr_notify_t *n, mr_server_t *s, mr_err_t *err) {
  memset(n, 0, sizeof *n);
  n->server = s;
  uv_loop_t *loop = s->loop;
  uv_timer_init(loop, &n->watchdog);
  uv_timer_init(loop, &n->reload);
  n->watchdog.data = n->reload.data = n;
  uv_unref((uv_handle_t *)&n->watchdog);
  uv_unref((uv_handle_t *)&n->reload);
  n->started = 1;
  /* Before READY=1, so that a signal sent upon it is seen. If they fail,
   * READY=1 still goes: only the notifications of signals are lost. */
  int rc;
  if (!(rc = start_signal(n, &n->sig_hup, SIGHUP)) &&
      !(rc = start_signal(n, &n->sig_term, SIGTERM)))
    rc = start_signal(n, &n->sig_int, SIGINT);
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    n->watchdog_usec = usec;
    uint64_t ms = usec / 2000;
    if (ms == 0) ms = 1;
    uv_timer_start(&n->watchdog, on_watchdog, ms, ms);
    mr_log_info("systemd watchdog on", "watchdog_usec=%llu ping_ms=%llu",
                (unsigned long long)usec, (unsigned long long)ms);
  }
  status_serving(n, "");
  if (n->watchdog_usec) mr_notify_send("WATCHDOG=1");
  if (rc)
    return mr_err_set(err, rc, "systemd notify: signals: %s", uv_strerror(rc));
  return 0;
}

static void close_handle(uv_handle_t *h) {
  if (h->loop && !uv_is_closing(h)) uv_close(h, NULL);
}

void mr_notify_close(mr_notify_t *n) {
  if (!n->started) return;
  n->started = 0;
  close_handle((uv_handle_t *)&n->watchdog);
  close_handle((uv_handle_t *)&n->reload);
  close_handle((uv_handle_t *)&n->sig_hup);
  close_handle((uv_handle_t *)&n->sig_term);
  close_handle((uv_handle_t *)&n->sig_int);
}
