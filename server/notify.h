/* microrecd under systemd (deploy/microrecd.service, Type=notify), through
 * libsystemd's sd_notify:
 *   READY=1      once the model is loaded and warmed and the port listens;
 *   RELOADING=1  at SIGHUP, then READY=1 when the new model serves (or the
 *                reload failed and the old one keeps serving);
 *   STOPPING=1   at SIGTERM/SIGINT, while accepted requests are answered;
 *   WATCHDOG=1   from a timer of the loop at half of WatchdogSec, so a stuck
 *                loop stops the pings and systemd restarts the service;
 *   STATUS=...   a line for `systemctl status` at each of these.
 * Outside systemd (NOTIFY_SOCKET unset) every call does nothing, so the
 * server runs the same anywhere.
 *
 * It watches the server instead of being called by it: its own signal
 * handles see the signals (libuv runs every handle of a signal), and a short
 * timer, on only while a reload runs, sees the reload end. Its handles are
 * unreferenced: they never keep the loop alive.
 *
 * Ownership: the caller owns mr_notify_t and the server it watches, which
 * must outlive it; after mr_notify_close, run the loop once more to finish
 * the closes. Threads: the loop thread only (mr_notify_send: any). */
#ifndef MR_NOTIFY_H
#define MR_NOTIFY_H

#include <stdint.h>
#include <uv.h>

#include "fpga/err.h"
#include "server/server.h"

typedef struct mr_notify {
  mr_server_t *server;
  uv_timer_t watchdog;  /* WATCHDOG=1 every watchdog_usec / 2 */
  uv_timer_t reload;    /* polls the end of a reload */
  uv_signal_t sig_hup, sig_term, sig_int;
  uint64_t watchdog_usec; /* WatchdogSec= as systemd passed it; 0 = off */
  uint64_t reloads, reload_failures; /* the server's counts at SIGHUP */
  int stopping;
  int started;
} mr_notify_t;

/* Sends one notification (printf format, lines "KEY=value"); 0 when sent or
 * when not under systemd, else a negative errno (also logged as a warning
 * once). */
int mr_notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The server has started (mr_server_start returned 0): sends READY=1 with
 * its status, starts the watchdog timer when systemd asked for one
 * (WATCHDOG_USEC for this process) and the signal handles. MR_EINVAL etc.
 * with err set when a handle cannot start. */
int mr_notify_start(mr_notify_t *n, mr_server_t *s, mr_err_t *err);

/* Closes the handles (safe when not started, and twice). */
void mr_notify_close(mr_notify_t *n);

#endif
