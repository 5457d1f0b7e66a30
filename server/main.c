/* microrecd: the inference server. Parses the configuration, starts the
 * server (server.h), tells systemd when it is ready (notify.h) and runs its
 * loop until SIGTERM/SIGINT. Exit codes: 0 after an orderly stop, 1 when it
 * cannot start, 2 for a usage error. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "server/config.h"
#include "server/log.h"
#include "server/notify.h"
#include "server/server.h"

#ifndef MR_SANITIZE
/* jemalloc is microrecd's allocator (linked, see the Makefile); its
 * background thread purges dirty pages off the request path. */
const char *malloc_conf = "background_thread:true";
#endif

int main(int argc, char **argv) {
  mr_config_t cfg;
  mr_err_t err = {0};
  int rc = mr_config_parse(&cfg, argc, argv, &err);
  if (rc == MR_CONFIG_HELP) {
    mr_config_usage(stdout);
    return 0;
  }
  if (rc) {
    fprintf(stderr, "microrecd: %s\n", err.msg);
    mr_notify_send("STATUS=bad configuration: %s", err.msg);
    return 2;
  }
  if (!cfg.model[0]) {
    fprintf(stderr, "microrecd: --model FILE is required (see --help)\n");
    mr_notify_send("STATUS=bad configuration: no model (--model or model =)");
    return 2;
  }
  mr_log_set_level(cfg.log_level);
  /* A peer that vanished must surface as EPIPE on write, not kill us. */
  signal(SIGPIPE, SIG_IGN);

  uv_loop_t *loop = uv_default_loop();
  static mr_server_t server;
  mr_notify_send("STATUS=loading model %s", cfg.model);
  rc = mr_server_start(&server, loop, &cfg, &err);
  if (rc) {
    char q[700];
    mr_log_error("cannot start", "error=%s", mr_log_quote(q, sizeof q, err.msg));
    mr_notify_send("STATUS=cannot start: %s", err.msg);
    uv_loop_close(loop);
    return 1;
  }
  static mr_notify_t notify;
  rc = mr_notify_start(&notify, &server, &err);
  if (rc) { /* only handles that would not start: serve without systemd */
    char q[700];
    mr_log_warn("systemd notification off", "error=%s",
                mr_log_quote(q, sizeof q, err.msg));
  }
  mr_server_run(&server);
  mr_notify_close(&notify);
  uv_run(loop, UV_RUN_DEFAULT); /* the notifier's close callbacks */
  mr_server_free(&server);
  uv_loop_close(loop);
  mr_notify_send("STATUS=stopped");
  mr_log_info("exit", "code=0");
  return 0;
}
