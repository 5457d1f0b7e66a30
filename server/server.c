/* microrecd's loop: listener, per-turn phases, completions, model slots,
 * reloads, signals and the orderly stop (see server.h). */
#include "server/server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/clock.h"
#include "server/fault.h"
#include "server/log.h"

/* ---- lists the connections sit on ---- */

void mr__server_mark_dirty(mr_server_t *s, mr_conn_t *c) {
  if (!mr_list_linked(&c->dirty)) mr_list_push(&s->dirty, &c->dirty);
}

static void on_idle(uv_idle_t *h);

/* An active idle handle makes the loop poll without blocking: wanted while
 * frames are left over by the budget, and while we busy-poll for
 * completions (see --busy-poll-us). */
static void update_idle(mr_server_t *s, uint64_t now) {
  int want = !mr_list_empty(&s->pending) ||
             (s->engine_inflight > 0 && now < s->poll_until);
  if (want == s->idle_on || s->finished) return;
  if (want) uv_idle_start(&s->idle, on_idle);
  else uv_idle_stop(&s->idle);
  s->idle_on = want;
}

void mr__server_mark_pending(mr_server_t *s, mr_conn_t *c) {
  if (!mr_list_linked(&c->pending)) mr_list_push(&s->pending, &c->pending);
  update_idle(s, 0);
}

void mr__server_pushed(mr_server_t *s) { s->engine_inflight++; }

void mr__server_unmark(mr_server_t *s, mr_conn_t *c) {
  (void)s;
  if (mr_list_linked(&c->dirty)) mr_list_remove(&c->dirty);
  if (mr_list_linked(&c->pending)) mr_list_remove(&c->pending);
}

/* ---- model slots ---- */

typedef struct slot_closer {
  uv_work_t work;
  mr_server_t *s;
  mr_slot_t *slot;
  uint64_t generation;
} slot_closer_t;

static void close_slot_work(uv_work_t *w) {
  slot_closer_t *k = w->data;
  mr_slot_close(k->slot);
}

static void close_slot_done(uv_work_t *w, int status) {
  slot_closer_t *k = w->data;
  (void)status;
  k->s->closing_slots--;
  mr_log_info("previous model freed", "generation=%llu",
              (unsigned long long)k->generation);
  free(k);
}

mr_slot_t *mr__server_slot_ref(mr_server_t *s) {
  if (!s->current) return NULL;
  s->current->refs++;
  return s->current;
}

void mr__server_slot_unref(mr_server_t *s, mr_slot_t *slot) {
  if (--slot->refs > 0) return;
  /* Freeing a big model (munmap, huge pages) must not stall the loop. */
  slot_closer_t *k = s->finished ? NULL : malloc(sizeof *k);
  if (k) {
    k->s = s;
    k->slot = slot;
    k->generation = slot->generation;
    k->work.data = k;
    if (uv_queue_work(s->loop, &k->work, close_slot_work, close_slot_done) == 0) {
      s->closing_slots++;
      return;
    }
    free(k);
  }
  mr_slot_close(slot);
}

void mr__server_recycle(mr_server_t *s, mr_request_t *r) {
  if (r->slot) mr__server_slot_unref(s, r->slot);
  r->slot = NULL;
  mr_request_put(&s->pool, r);
}

void mr__server_summarize(void *server, mr_stats_summary_t *out) {
  mr_server_t *s = server;
  mr_stats_summarize(&s->stats, out);
  out->batches = atomic_load(&s->batcher.batches);
  out->batch_samples = atomic_load(&s->batcher.batch_samples);
  out->splits = atomic_load(&s->batcher.splits);
  out->inline_batches = atomic_load(&s->batcher.inline_batches);
}

/* ---- per-turn phases ---- */

static void on_idle(uv_idle_t *h) {
  mr_server_t *s = h->data;
  if (s->engine_inflight) mr_cq_poll(&s->cq);
  mr_link_t list;
  mr_list_move(&s->pending, &list);
  while (!mr_list_empty(&list)) {
    mr_link_t *l = list.next;
    mr_list_remove(l);
    mr_conn_process(mr_list_entry(l, mr_conn_t, pending));
  }
  update_idle(s, mr_clock_ns());
}

static void complete_one(mr_server_t *s, mr_request_t *r);

/* Loop thread, from mr_batcher_run_here. */
static void on_done_here(void *ctx, mr_request_t *r) { complete_one(ctx, r); }

static void on_check(uv_check_t *h) {
  mr_server_t *s = h->data;
  /* At low load a small turn runs right here; else everything decoded this
   * turn goes to the engine threads in one push. */
  if (s->batcher.num_staged && s->cfg.inline_max_samples)
    mr_batcher_run_here(&s->batcher, s->cfg.inline_max_samples, on_done_here,
                        s);
  if (s->batcher.num_staged && s->cfg.busy_poll_us) {
    uint64_t now = mr_clock_ns();
    s->poll_until = now + s->cfg.busy_poll_us * 1000;
    update_idle(s, now);
  }
  mr_batcher_flush(&s->batcher, !mr_list_empty(&s->pending));
  mr_link_t list;
  mr_list_move(&s->dirty, &list);
  while (!mr_list_empty(&list)) {
    mr_link_t *l = list.next;
    mr_list_remove(l);
    mr_conn_flush(mr_list_entry(l, mr_conn_t, dirty));
  }
}

/* Engine thread: a request is done. */
static void on_done(void *ctx, mr_request_t *r) {
  mr_server_t *s = ctx;
  mr_cq_push(&s->cq, r);
}

static void complete_one(mr_server_t *s, mr_request_t *r) {
  r->next = NULL;
  s->engine_inflight--;
  if (r->conn) mr_conn_complete(r->conn, r);
  else mr__server_recycle(s, r);
}

/* Loop: requests back from the engine threads. */
static void on_complete(mr_cq_t *q, mr_request_t *list) {
  mr_server_t *s = q->data;
  while (list) {
    mr_request_t *r = list;
    list = r->next;
    complete_one(s, r);
  }
}

static void on_sweep(uv_timer_t *h) {
  mr_server_t *s = h->data;
  uint64_t now = mr_clock_ns();
  for (mr_link_t *l = s->conns.next, *next; l != &s->conns; l = next) {
    next = l->next;
    mr_conn_sweep(mr_list_entry(l, mr_conn_t, all), now);
  }
}

static void on_connection(uv_stream_t *listener, int status) {
  mr_server_t *s = listener->data;
  if (status < 0) {
    mr_log_warn("accept failed", "error=\"%s\"", uv_strerror(status));
    return;
  }
  int rc = mr_conn_accept(s, listener);
  if (rc) mr_log_warn("accept failed", "error=\"%s\"", uv_strerror(rc));
}

/* ---- stopping ---- */

static void close_handle(uv_handle_t *h) {
  if (h->loop && !uv_is_closing(h)) uv_close(h, NULL);
}

/* Every connection is gone and every request answered: stop the engine
 * threads and close the loop's handles so mr_server_run returns. */
static void finish(mr_server_t *s) {
  if (s->finished) return;
  s->finished = 1;
  int was_serving = s->current != NULL;
  if (s->batcher_on) {
    mr_batcher_stop(&s->batcher);
    s->batcher_on = 0;
  }
  mr_cq_poll(&s->cq); /* nothing should be left; recycle if it is */
  close_handle((uv_handle_t *)&s->check);
  close_handle((uv_handle_t *)&s->idle);
  close_handle((uv_handle_t *)&s->sweep);
  close_handle((uv_handle_t *)&s->sig_term);
  close_handle((uv_handle_t *)&s->sig_int);
  close_handle((uv_handle_t *)&s->sig_hup);
  close_handle((uv_handle_t *)&s->cq.async);
  if (s->listening) close_handle((uv_handle_t *)&s->listener);
  s->listening = 0;
  if (s->current) {
    mr_slot_t *cur = s->current;
    s->current = NULL;
    mr__server_slot_unref(s, cur);
  }
  if (was_serving)
    mr_log_info("stopped", "requests_made=%zu", s->pool.allocated);
}

static void maybe_finish(mr_server_t *s) {
  if (s->draining && mr_list_empty(&s->conns) && s->live_conns == 0)
    finish(s);
}

void mr__server_conn_gone(mr_server_t *s) {
  s->live_conns--;
  maybe_finish(s);
}

void mr_server_drain(mr_server_t *s) {
  if (s->draining) return;
  s->draining = 1;
  atomic_store(&s->stats.ready, 0); /* /readyz: stop sending us traffic */
  if (s->listening) {
    uv_close((uv_handle_t *)&s->listener, NULL);
    s->listening = 0;
  }
  for (mr_link_t *l = s->conns.next, *next; l != &s->conns; l = next) {
    next = l->next;
    mr_conn_drain(mr_list_entry(l, mr_conn_t, all));
  }
  maybe_finish(s);
}

static void on_signal(uv_signal_t *h, int signum) {
  mr_server_t *s = h->data;
  if (signum == SIGHUP) {
    mr_log_info("SIGHUP: reloading the model", "path=%s", s->cfg.model);
    mr_server_reload(s);
    return;
  }
  if (s->draining) {
    mr_log_warn("second stop signal: closing every connection now",
                "signal=%s", strsignal(signum));
    for (mr_link_t *l = s->conns.next, *next; l != &s->conns; l = next) {
      next = l->next;
      mr_conn_close(mr_list_entry(l, mr_conn_t, all), "forced stop");
    }
    return;
  }
  mr_log_info("stopping: no new connections; answering accepted requests",
              "signal=\"%s\" connections=%zu", strsignal(signum),
              s->num_counted);
  mr_server_drain(s);
}

/* ---- reload ---- */

static void slot_opts(const mr_server_t *s, mr_slot_opts_t *o) {
  o->path = s->cfg.model;
  o->backend = s->cfg.engine;
  o->xclbin = s->cfg.xclbin[0] ? s->cfg.xclbin : NULL;
  o->max_batch = s->cfg.max_batch;
  o->no_products = s->cfg.no_products;
  o->threads = s->cfg.engine_threads + 1; /* the last is the loop's */
}

static void reload_work(uv_work_t *w) {
  mr_server_t *s = w->data;
  mr_slot_opts_t o;
  slot_opts(s, &o);
  memset(&s->reload_err, 0, sizeof s->reload_err);
  s->reload_slot = NULL;
  if (mr_slot_open(&s->reload_slot, &o, &s->reload_err) == 0 &&
      mr_fault_wrap_engine(&s->reload_slot->engine, &s->reload_err)) {
    mr_slot_close(s->reload_slot); /* test hook misconfigured */
    s->reload_slot = NULL;
  }
}

static void log_slot(const char *msg, const mr_slot_t *slot) {
  const mr_engine_info_t *in = slot->info;
  mr_log_info(msg,
              "path=%s generation=%llu backend=%s simd=%s tables=%zu "
              "dense=%zu resident_bytes=%llu load_ms=%.1f",
              slot->path, (unsigned long long)slot->generation,
              in->backend ? in->backend : "?", in->simd ? in->simd : "?",
              in->num_tables, in->num_dense,
              (unsigned long long)in->resident_bytes,
              (double)slot->load_ns / 1e6);
}

static void reload_apply(mr_server_t *s, mr_slot_t *fresh, int status) {
  if (!fresh) {
    atomic_fetch_add(&s->stats.reload_failures, 1);
    char q[700];
    mr_log_error("reload failed; the previous model keeps serving",
                 "generation=%llu error=%s", (unsigned long long)s->generation,
                 mr_log_quote(q, sizeof q,
                              status ? uv_strerror(status) : s->reload_err.msg));
    return;
  }
  if (s->draining) { /* too late to serve it */
    mr_slot_close(fresh);
    return;
  }
  fresh->generation = ++s->generation;
  fresh->refs = 1; /* the server's own reference, as current */
  mr_slot_t *old = s->current;
  s->current = fresh;
  atomic_store(&s->stats.model_generation, s->generation);
  atomic_fetch_add(&s->stats.reloads, 1);
  atomic_store(&s->stats.ready, 1);
  log_slot("model reloaded", fresh);
  if (old) mr__server_slot_unref(s, old); /* freed after its last request */
}

static void reload_done(uv_work_t *w, int status) {
  mr_server_t *s = w->data;
  mr_slot_t *fresh = s->reload_slot;
  s->reload_slot = NULL;
  reload_apply(s, fresh, status);
  s->reloading = 0;
  if (s->reload_again) { /* the file may have changed again meanwhile */
    s->reload_again = 0;
    mr_server_reload(s);
  }
}

void mr_server_reload(mr_server_t *s) {
  if (s->draining) return;
  if (s->reloading) {
    mr_log_info("reload in progress; another one will follow it", NULL);
    s->reload_again = 1;
    return;
  }
  s->reloading = 1;
  s->reload_work.data = s;
  int rc = uv_queue_work(s->loop, &s->reload_work, reload_work, reload_done);
  if (rc) {
    s->reloading = 0;
    mr_log_error("reload could not start", "error=\"%s\"", uv_strerror(rc));
  }
}

/* ---- start ---- */

static int listen_on(mr_server_t *s, mr_err_t *err) {
  struct sockaddr_storage ss;
  int rc = mr_addr_resolve(&s->cfg.listen, &ss, err);
  if (rc) return rc;
  char addr[300];
  mr_addr_format(&s->cfg.listen, addr, sizeof addr);
  rc = uv_tcp_init(s->loop, &s->listener);
  if (rc) return mr_err_set(err, rc, "listen: %s", uv_strerror(rc));
  s->listener.data = s;
  s->listening = 1;
  rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
  if (!rc) rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
  if (rc)
    return mr_err_set(err, rc, "cannot listen on %s: %s", addr,
                      uv_strerror(rc));
  int len = sizeof ss;
  s->bound = s->cfg.listen;
  if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) == 0)
    mr_addr_from_sockaddr(&s->bound, (struct sockaddr *)&ss);
  return 0;
}

static int start_signal(mr_server_t *s, uv_signal_t *h, int signum) {
  int rc = uv_signal_init(s->loop, h);
  if (rc) return rc;
  h->data = s;
  return uv_signal_start(h, on_signal, signum);
}

int mr_server_start(mr_server_t *s, uv_loop_t *loop, const mr_config_t *cfg,
                    mr_err_t *err) {
  memset(s, 0, sizeof *s);
  s->loop = loop;
  s->cfg = *cfg;
  mr_list_init(&s->conns);
  mr_list_init(&s->dirty);
  mr_list_init(&s->pending);
  mr_request_pool_init(&s->pool);
  int rc = mr_stats_init(&s->stats, err);
  if (rc) return rc;

  rc = mr_cq_init(&s->cq, loop, on_complete, s);
  if (rc) {
    mr_err_set(err, rc, "completion queue: %s", uv_strerror(rc));
    goto fail;
  }
  mr_batcher_opts_t bo = {
      .threads = cfg->engine_threads,
      .max_batch = cfg->max_batch,
      .max_delay_ns = cfg->max_delay_us * 1000,
      .capacity = cfg->ring_capacity,
      .spin_ns = cfg->engine_spin_us * 1000,
      .done = on_done,
      .done_ctx = s,
  };
  rc = mr_batcher_start(&s->batcher, &bo, err);
  if (rc) goto fail;
  s->batcher_on = 1;

  if (cfg->admin_enabled) {
    mr_addr_t bound;
    rc = mr_admin_start(&s->admin, &cfg->admin, &s->stats,
                        mr__server_summarize, s, &bound, err);
    if (rc) goto fail;
    char a[300];
    printf("admin %s\n", mr_addr_format(&bound, a, sizeof a));
    fflush(stdout);
    mr_log_info("admin HTTP serving /metrics /healthz /readyz", "addr=%s", a);
  }

  mr_slot_opts_t so;
  slot_opts(s, &so);
  rc = mr_slot_open(&s->current, &so, err);
  if (rc) goto fail;
  s->current->refs = 1;
  /* Test hook, off unless MR_FAULT_ENGINE_EVERY is set (fault.h). */
  rc = mr_fault_wrap_engine(&s->current->engine, err);
  if (rc) goto fail;
  if (getenv("MR_FAULT_ENGINE_EVERY"))
    mr_log_warn("fault injection on: engine runs will fail",
                "MR_FAULT_ENGINE_EVERY=%s", getenv("MR_FAULT_ENGINE_EVERY"));
  s->current->generation = s->generation = 1;
  atomic_store(&s->stats.model_generation, 1);
  atomic_store(&s->stats.ready, 1);
  log_slot("model loaded", s->current);

  uv_check_init(loop, &s->check);
  s->check.data = s;
  uv_check_start(&s->check, on_check);
  uv_idle_init(loop, &s->idle);
  s->idle.data = s;
  uv_timer_init(loop, &s->sweep);
  s->sweep.data = s;
  uint64_t tick = cfg->idle_timeout_ms / 4;
  if (!tick || tick > 250) tick = 250;
  if (tick < 10) tick = 10;
  uv_timer_start(&s->sweep, on_sweep, tick, tick);
  if ((rc = start_signal(s, &s->sig_term, SIGTERM)) ||
      (rc = start_signal(s, &s->sig_int, SIGINT)) ||
      (rc = start_signal(s, &s->sig_hup, SIGHUP))) {
    mr_err_set(err, rc, "signals: %s", uv_strerror(rc));
    goto fail;
  }
  rc = listen_on(s, err);
  if (rc) goto fail;
  char a[300];
  mr_addr_format(&s->bound, a, sizeof a);
  printf("listening %s\n", a);
  fflush(stdout);
  mr_log_info("listening", "addr=%s engine_threads=%u max_batch=%zu "
              "max_delay_us=%llu ring_capacity=%zu max_connections=%zu "
              "inline_max_samples=%zu busy_poll_us=%llu",
              a, cfg->engine_threads, cfg->max_batch,
              (unsigned long long)cfg->max_delay_us, cfg->ring_capacity,
              cfg->max_connections, cfg->inline_max_samples,
              (unsigned long long)cfg->busy_poll_us);
  return 0;

fail:
  s->draining = 1;
  finish(s);
  uv_run(loop, UV_RUN_DEFAULT); /* let the close callbacks run */
  mr_server_free(s);
  return rc;
}

int mr_server_run(mr_server_t *s) { return uv_run(s->loop, UV_RUN_DEFAULT); }

void mr_server_free(mr_server_t *s) {
  mr_admin_stop(s->admin);
  s->admin = NULL;
  if (s->batcher_on) {
    mr_batcher_stop(&s->batcher);
    s->batcher_on = 0;
  }
  if (s->current) {
    mr_slot_close(s->current);
    s->current = NULL;
  }
  mr_request_pool_free(&s->pool);
  mr_stats_free(&s->stats);
}
