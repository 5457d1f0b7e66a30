/* microrecd's configuration: built-in defaults, then an INI file (--config),
 * then command-line flags; a flag wins over the file. Every option is one
 * row of a table in config.c, so --help, the INI keys and the flags cannot
 * drift apart. An INI key is the flag's name with '_' for '-' (dashes also
 * accepted), at the top level or in a [microrecd] section; unknown keys,
 * sections and flags are errors.
 *
 * Ownership: mr_config_t is a plain value (fixed-size strings, no heap).
 * Threads: parse once at start-up (getopt_long is not thread-safe). */
#ifndef MR_CONFIG_H
#define MR_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fpga/err.h"
#include "server/addr.h"

#define MR_CONFIG_DEFAULT_PORT 7470
#define MR_CONFIG_PATH_MAX 4096

typedef struct mr_config {
  char model[MR_CONFIG_PATH_MAX];       /* required to serve */
  mr_addr_t listen;                     /* 127.0.0.1:7470 */
  char config_path[MR_CONFIG_PATH_MAX]; /* "" = none */
  char engine[32];                      /* "cpu" */
  char xclbin[MR_CONFIG_PATH_MAX];      /* --engine fpga's bitstream; "" */
  unsigned engine_threads;              /* 1 */
  size_t max_batch;                     /* samples per engine batch: 256 */
  uint64_t max_delay_us;                /* batch linger bound: 50 */
  size_t ring_capacity;                 /* requests queued to the engine: 4096 */
  size_t max_frame_bytes;               /* 16 MiB */
  size_t max_connections;               /* 1024 */
  uint64_t idle_timeout_ms;             /* 30000; 0 = never */
  int admin_enabled;                    /* 0: admin HTTP is off by default */
  mr_addr_t admin;                      /* 127.0.0.1:9470 when enabled */
  int log_level;                        /* MR_LOG_INFO */
  int no_products;                      /* 0: planner may combine tables */
  size_t max_request_samples;           /* samples in one request: 16384 */
  uint64_t busy_poll_us;                /* loop polls completions: 50 */
  uint64_t engine_spin_us;              /* engine waits for work spinning: 0 */
  size_t inline_max_samples;            /* low-load fast path cap: 16 */
} mr_config_t;

/* mr_config_parse's result when --help was asked for (usage not printed). */
#define MR_CONFIG_HELP 1

void mr_config_defaults(mr_config_t *c);

/* Defaults, then --config's file, then the flags in argv (argv[0] is the
 * program). Returns 0, MR_CONFIG_HELP, or MR_EINVAL with err naming the flag
 * or file line and what was expected. */
int mr_config_parse(mr_config_t *c, int argc, char **argv, mr_err_t *err);

/* Applies an INI file over c. MR_EINVAL (bad key or value, with its line)
 * or -errno when it cannot be read. */
int mr_config_load_ini(mr_config_t *c, const char *path, mr_err_t *err);

/* Sets one option by INI key or flag name ("max_batch", "max-batch"). */
int mr_config_set(mr_config_t *c, const char *key, const char *value,
                  mr_err_t *err);

/* Prints usage with every option, its default and its INI key. */
void mr_config_usage(FILE *out);

#endif
