/* microrecd configuration: one table of options drives the flags, the INI
 * keys and --help (see config.h). */
#include "server/config.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/log.h"

typedef enum {
  OPT_PATH,   /* string into a char[MR_CONFIG_PATH_MAX] */
  OPT_NAME,   /* string into a char[32] */
  OPT_ADDR,   /* mr_addr_t */
  OPT_ADMIN,  /* "off" or an address: sets admin_enabled too */
  OPT_UINT,   /* unsigned with [min, max]; size_t, unsigned or uint64_t */
  OPT_SIZE,   /* like OPT_UINT, also accepts K/M/G suffixes (binary) */
  OPT_BOOL,   /* flag without value; INI: true/false/yes/no/on/off/1/0 */
  OPT_LEVEL,  /* log level name */
} opt_kind_t;

typedef struct opt {
  const char *name; /* flag name; the INI key is this with '_' for '-' */
  const char *arg;  /* metavariable for --help, NULL for a bool */
  opt_kind_t kind;
  size_t offset;
  size_t width;     /* sizeof the field for OPT_UINT/OPT_SIZE */
  uint64_t min, max;
  int ini;          /* may be set from the INI file */
  const char *help;
} opt_t;

#define F(field) offsetof(mr_config_t, field), sizeof(((mr_config_t *)0)->field)

static const opt_t OPTS[] = {
    {"model", "FILE", OPT_PATH, F(model), 0, 0, 1,
     "model to serve (.safetensors, DLRM names); required"},
    {"listen", "HOST:PORT", OPT_ADDR, F(listen), 0, 0, 1,
     "address to serve the protocol on; port 0 picks a free port, printed "
     "on stdout as `listening HOST:PORT`"},
    {"config", "FILE", OPT_PATH, F(config_path), 0, 0, 0,
     "INI file read before the flags (flags win)"},
    {"engine", "NAME", OPT_NAME, F(engine), 0, 0, 1,
     "engine backend: cpu, fpga-sim, fpga"},
    {"xclbin", "FILE", OPT_PATH, F(xclbin), 0, 0, 1,
     "--engine fpga: the kernel's xclbin (built by fpga/kernel/Makefile for "
     "the model's plan); ignored by the other engines"},
    {"engine-threads", "N", OPT_UINT, F(engine_threads), 1, 64, 1,
     "engine threads, each running whole batches"},
    {"max-batch", "N", OPT_UINT, F(max_batch), 1, 65536, 1,
     "samples at most in one engine batch (larger requests are split)"},
    {"max-delay-us", "US", OPT_UINT, F(max_delay_us), 0, 1000000, 1,
     "longest a batch stays open waiting for more requests while the loop "
     "has more on the way; an idle ring closes it at once"},
    {"ring-capacity", "N", OPT_UINT, F(ring_capacity), 1, 1u << 20, 1,
     "requests queued for the engine at most; beyond it: OVERLOADED"},
    {"max-frame-bytes", "BYTES", OPT_SIZE, F(max_frame_bytes), 16,
     1ull << 30, 1, "largest frame accepted (K/M/G suffixes allowed)"},
    {"max-connections", "N", OPT_UINT, F(max_connections), 1, 1000000, 1,
     "open connections at most; one more gets an OVERLOADED response with "
     "id 0 and is closed"},
    {"idle-timeout-ms", "MS", OPT_UINT, F(idle_timeout_ms), 0, 86400000, 1,
     "close a connection that neither sent nor received for this long "
     "with nothing in flight (also a half-sent frame); 0 = never"},
    {"admin", "HOST:PORT|off", OPT_ADMIN, F(admin), 0, 0, 1,
     "admin HTTP (/metrics, /healthz, /readyz); port 0 picks a free port, "
     "printed as `admin HOST:PORT`"},
    {"log-level", "LEVEL", OPT_LEVEL, F(log_level), 0, 0, 1,
     "debug, info, warn or error"},
    {"no-products", NULL, OPT_BOOL, F(no_products), 0, 0, 1,
     "planner: no Cartesian-product tables (one lookup per logical table)"},
    {"max-request-samples", "N", OPT_UINT, F(max_request_samples), 1,
     1u << 22, 1, "samples at most in one request; more is BAD_REQUEST"},
    {"busy-poll-us", "US", OPT_UINT, F(busy_poll_us), 0, 1000000, 1,
     "after handing requests to the engine the loop polls for their "
     "completion this long instead of sleeping (saves a wake-up, costs CPU "
     "while the engine runs); 0 = always sleep"},
    {"inline-max-samples", "N", OPT_UINT, F(inline_max_samples), 0, 65536, 1,
     "when the engine threads are idle and the ring empty, a loop turn's "
     "requests of at most N samples run on the loop thread itself (no "
     "thread hand-off: lowest latency at low load); 0 = always hand off"},
    {"engine-spin-us", "US", OPT_UINT, F(engine_spin_us), 0, 1000000, 1,
     "an engine thread with nothing to do spins this long before it sleeps "
     "(saves a wake-up per request at moderate load, burns a core); 0 = off"},
};
#define NUM_OPTS (sizeof OPTS / sizeof *OPTS)

void mr_config_defaults(mr_config_t *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->listen.host, sizeof c->listen.host, "127.0.0.1");
  c->listen.port = MR_CONFIG_DEFAULT_PORT;
  snprintf(c->engine, sizeof c->engine, "cpu");
  c->engine_threads = 1;
  c->max_batch = 256;
  c->max_delay_us = 50;
  c->ring_capacity = 4096;
  c->max_frame_bytes = 16u << 20;
  c->max_connections = 1024;
  c->idle_timeout_ms = 30000;
  c->admin_enabled = 0;
  snprintf(c->admin.host, sizeof c->admin.host, "127.0.0.1");
  c->admin.port = 9470;
  c->log_level = MR_LOG_INFO;
  c->no_products = 0;
  c->max_request_samples = 16384;
  c->busy_poll_us = 50;
  c->engine_spin_us = 0;
  c->inline_max_samples = 16;
}

/* ---- one option ---- */

static const opt_t *find(const char *key) {
  char norm[64];
  size_t n = strlen(key);
  if (n >= sizeof norm) return NULL;
  for (size_t i = 0; i <= n; i++) norm[i] = key[i] == '_' ? '-' : key[i];
  for (size_t i = 0; i < NUM_OPTS; i++)
    if (!strcmp(OPTS[i].name, norm)) return &OPTS[i];
  return NULL;
}

static int parse_uint(const opt_t *o, const char *v, uint64_t *out,
                      mr_err_t *err) {
  char *end;
  errno = 0;
  if (!*v || *v == '-' || *v == ' ') goto bad;
  unsigned long long x = strtoull(v, &end, 10);
  if (errno) goto bad;
  if (o->kind == OPT_SIZE && *end) {
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    default: goto bad;
    }
    end++;
    if (*end == 'i' || *end == 'I') end++;
    if (*end == 'b' || *end == 'B') end++;
    if (x > (ULLONG_MAX >> shift)) goto bad;
    x <<= shift;
  }
  if (*end) goto bad;
  if (x < o->min || x > o->max)
    return mr_err_set(err, MR_EINVAL,
                      "--%s %s is out of range; expected %llu to %llu",
                      o->name, v, (unsigned long long)o->min,
                      (unsigned long long)o->max);
  *out = x;
  return 0;
bad:
  return mr_err_set(err, MR_EINVAL,
                    "--%s '%s' is not a number; expected an integer from "
                    "%llu to %llu%s",
                    o->name, v, (unsigned long long)o->min,
                    (unsigned long long)o->max,
                    o->kind == OPT_SIZE ? " (K/M/G suffixes allowed)" : "");
}

static int parse_bool(const char *v, int *out) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  for (int i = 0; i < 4; i++) {
    if (!strcasecmp(v, yes[i])) return *out = 1, 0;
    if (!strcasecmp(v, no[i])) return *out = 0, 0;
  }
  return -1;
}

static int apply(mr_config_t *c, const opt_t *o, const char *v,
                 mr_err_t *err) {
  char *field = (char *)c + o->offset;
  switch (o->kind) {
  case OPT_PATH:
  case OPT_NAME:
    if (!*v)
      return mr_err_set(err, MR_EINVAL, "--%s needs a value", o->name);
    if (strlen(v) >= o->width)
      return mr_err_set(err, MR_EINVAL, "--%s: value longer than %zu bytes",
                        o->name, o->width - 1);
    memcpy(field, v, strlen(v) + 1);
    return 0;
  case OPT_ADDR: {
    mr_addr_t a;
    int rc = mr_addr_parse(&a, v, err);
    if (rc) {
      mr_err_prefix(err, "--%s", o->name);
      return rc;
    }
    memcpy(field, &a, sizeof a);
    return 0;
  }
  case OPT_ADMIN: {
    int on;
    if (parse_bool(v, &on) == 0 && !on) {
      c->admin_enabled = 0;
      return 0;
    }
    mr_addr_t a;
    int rc = mr_addr_parse(&a, v, err);
    if (rc) {
      mr_err_prefix(err, "--%s (HOST:PORT or off)", o->name);
      return rc;
    }
    c->admin = a;
    c->admin_enabled = 1;
    return 0;
  }
  case OPT_UINT:
  case OPT_SIZE: {
    uint64_t x = 0;
    int rc = parse_uint(o, v, &x, err);
    if (rc) return rc;
    if (o->width == sizeof(uint64_t)) *(uint64_t *)(void *)field = x;
    else if (o->width == sizeof(unsigned)) *(unsigned *)(void *)field = (unsigned)x;
    else return mr_err_set(err, MR_EINVAL, "--%s: bad field width", o->name);
    return 0;
  }
  case OPT_BOOL: {
    int b;
    if (parse_bool(v, &b))
      return mr_err_set(err, MR_EINVAL,
                        "%s = '%s': expected true or false", o->name, v);
    *(int *)(void *)field = b;
    return 0;
  }
  case OPT_LEVEL: {
    int l = mr_log_level_parse(v);
    if (l < 0)
      return mr_err_set(err, MR_EINVAL,
                        "--%s '%s': expected debug, info, warn or error",
                        o->name, v);
    *(int *)(void *)field = l;
    return 0;
  }
  }
  return MR_EINVAL;
}

static void append_keys(char *buf, size_t len) {
  size_t o = strlen(buf);
  for (size_t i = 0; i < NUM_OPTS && o < len; i++) {
    if (!OPTS[i].ini) continue;
    int n = snprintf(buf + o, len - o, "%s%s", o ? ", " : "", OPTS[i].name);
    if (n < 0) break;
    o += (size_t)n;
  }
  for (char *p = buf; *p; p++)
    if (*p == '-') *p = '_';
}

int mr_config_set(mr_config_t *c, const char *key, const char *value,
                  mr_err_t *err) {
  const opt_t *o = find(key);
  if (!o) {
    char keys[1024] = "";
    append_keys(keys, sizeof keys);
    return mr_err_set(err, MR_EINVAL, "unknown option '%s'; expected one of: %s",
                      key, keys);
  }
  return apply(c, o, value, err);
}

/* ---- INI ---- */

typedef struct ini_ctx {
  mr_config_t *c;
  mr_err_t *err;
  int failed;
} ini_ctx_t;

static int on_ini_key(void *user, const char *section, const char *name,
                       const char *value) {
  ini_ctx_t *x = user;
  if (x->failed) return 0;
  if (*section && strcmp(section, "microrecd")) {
    mr_err_set(x->err, MR_EINVAL,
               "unknown section [%s]; expected keys at the top or in "
               "[microrecd]", section);
    x->failed = 1;
    return 0;
  }
  const opt_t *o = find(name);
  if (!o || !o->ini) {
    char keys[1024] = "";
    append_keys(keys, sizeof keys);
    mr_err_set(x->err, MR_EINVAL, "unknown key '%s'; expected one of: %s",
               name, keys);
    x->failed = 1;
    return 0;
  }
  if (apply(x->c, o, value, x->err)) {
    x->failed = 1;
    return 0;
  }
  return 1;
}

int mr_config_load_ini(mr_config_t *c, const char *path, mr_err_t *err) {
  FILE *f = fopen(path, "r");
  if (!f)
    return mr_err_set(err, -errno, "config file %s: %s", path,
                      strerror(errno));
  mr_err_t local = {0};
  ini_ctx_t x = {c, err ? err : &local, 0};
  int line = ini_parse_file(f, on_ini_key, &x);
  fclose(f);
  if (line == 0 && !x.failed) return 0;
  if (!x.failed)
    mr_err_set(x.err, MR_EINVAL, "syntax error; expected `key = value`");
  mr_err_prefix(x.err, "config file %s line %d", path, line);
  return MR_EINVAL;
}

/* ---- flags ---- */

int mr_config_parse(mr_config_t *c, int argc, char **argv, mr_err_t *err) {
  mr_config_defaults(c);
  struct option longs[NUM_OPTS + 2];
  for (size_t i = 0; i < NUM_OPTS; i++) {
    longs[i].name = OPTS[i].name;
    longs[i].has_arg = OPTS[i].kind == OPT_BOOL ? no_argument : required_argument;
    longs[i].flag = NULL;
    longs[i].val = 256 + (int)i;
  }
  longs[NUM_OPTS] = (struct option){"help", no_argument, NULL, 'h'};
  longs[NUM_OPTS + 1] = (struct option){0, 0, 0, 0};

  /* Pass 1 collects (option, value) pairs and finds --config; the file is
   * applied first so the flags, applied after, win. */
  int idx[256];
  const char *vals[256];
  int n = 0;
  optind = 0; /* GNU: full re-initialisation, so tests may parse again */
  opterr = 0;
  for (;;) {
    int li = -1;
    int ch = getopt_long(argc, argv, "+:h", longs, &li);
    if (ch == -1) break;
    if (ch == 'h') return MR_CONFIG_HELP;
    if (ch == ':')
      return mr_err_set(err, MR_EINVAL, "%s needs a value (see --help)",
                        argv[optind - 1]);
    if (ch == '?' || ch < 256)
      return mr_err_set(err, MR_EINVAL, "unknown flag '%s' (see --help)",
                        argv[optind - 1]);
    if (n == 256)
      return mr_err_set(err, MR_EINVAL, "too many flags");
    idx[n] = ch - 256;
    vals[n] = OPTS[ch - 256].kind == OPT_BOOL ? "true" : optarg;
    n++;
  }
  if (optind < argc)
    return mr_err_set(err, MR_EINVAL,
                      "unexpected argument '%s'; options are flags "
                      "(see --help)", argv[optind]);
  for (int i = 0; i < n; i++) {
    if (strcmp(OPTS[idx[i]].name, "config")) continue;
    int rc = apply(c, &OPTS[idx[i]], vals[i], err);
    if (rc) return rc;
  }
  if (c->config_path[0]) {
    char keep[MR_CONFIG_PATH_MAX];
    memcpy(keep, c->config_path, sizeof keep);
    int rc = mr_config_load_ini(c, keep, err);
    if (rc) return rc;
    memcpy(c->config_path, keep, sizeof keep);
  }
  for (int i = 0; i < n; i++) {
    int rc = apply(c, &OPTS[idx[i]], vals[i], err);
    if (rc) return rc;
  }
  return 0;
}

static void default_of(const mr_config_t *d, const opt_t *o, char *buf,
                       size_t len) {
  const char *field = (const char *)d + o->offset;
  switch (o->kind) {
  case OPT_PATH:
  case OPT_NAME:
    snprintf(buf, len, "%s", *field ? field : "none");
    break;
  case OPT_ADDR:
    mr_addr_format((const mr_addr_t *)(const void *)field, buf, len);
    break;
  case OPT_ADMIN:
    snprintf(buf, len, "off");
    break;
  case OPT_UINT:
  case OPT_SIZE:
    snprintf(buf, len, "%llu",
             o->width == sizeof(uint64_t)
                 ? (unsigned long long)*(const uint64_t *)(const void *)field
                 : (unsigned long long)*(const unsigned *)(const void *)field);
    break;
  case OPT_BOOL:
    snprintf(buf, len, "%s", *(const int *)(const void *)field ? "on" : "off");
    break;
  case OPT_LEVEL:
    snprintf(buf, len, "%s",
             mr_log_level_name(*(const int *)(const void *)field));
    break;
  }
}

void mr_config_usage(FILE *out) {
  mr_config_t d;
  mr_config_defaults(&d);
  fprintf(out,
          "usage: microrecd --model FILE [--listen HOST:PORT] [--config FILE] "
          "[options]\n\n"
          "Serves DLRM-style recommendation inference over TCP (protobuf "
          "frames, proto/microrec.proto).\n\noptions:\n");
  for (size_t i = 0; i < NUM_OPTS; i++) {
    const opt_t *o = &OPTS[i];
    char flag[64], def[300];
    snprintf(flag, sizeof flag, "--%s%s%s", o->name, o->arg ? " " : "",
             o->arg ? o->arg : "");
    default_of(&d, o, def, sizeof def);
    char text[1024];
    snprintf(text, sizeof text, "%s (default: %s)", o->help, def);
    /* Words wrapped to 78 columns beside the flag column. */
    fprintf(out, "  %-28s", flag);
    int col = 30;
    for (char *w = strtok(text, " "); w; w = strtok(NULL, " ")) {
      int n = (int)strlen(w);
      if (col > 30 && col + 1 + n > 78) {
        fprintf(out, "\n%30s", "");
        col = 30;
      }
      fprintf(out, " %s", w);
      col += 1 + n;
    }
    fputc('\n', out);
  }
  fprintf(out,
          "  %-28s  this text\n\n"
          "An INI file (--config) takes the same options as `key = value`,\n"
          "the key being the flag's name with '_' for '-' (max_batch = 64),\n"
          "at the top level or in a [microrecd] section; the flags win.\n"
          "Unknown flags, keys or sections are errors.\n\n"
          "Signals: SIGTERM/SIGINT answer every accepted request, then exit "
          "0;\nSIGHUP reloads the model beside the old one and swaps it in.\n\n"
          "A model that needs more memory than is available (MemAvailable, "
          "the cgroup's\nmemory.max) is refused at start, saying how much "
          "it needs; MR_MEM_AVAILABLE=BYTES\nreplaces the figure read. "
          "Under systemd (Type=notify, deploy/README.md) it sends\n"
          "READY=1, RELOADING=1, STOPPING=1, WATCHDOG=1 and STATUS=; with "
          "JOURNAL_STREAM its\nlog lines carry syslog priorities.\n",
          "--help");
}
