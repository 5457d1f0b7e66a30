/* The command line of microrec-load: parsing, checks and --help. A usage
 * error is reported on stderr ("microrec-load: ..."), naming the flag and
 * what it takes. Single thread; no allocation (strings point into argv). */
#ifndef MR_LOAD_FLAGS_H
#define MR_LOAD_FLAGS_H

#include <stdio.h>

enum { MR_LOAD_EXIT_OK = 0, MR_LOAD_EXIT_FAIL = 1, MR_LOAD_EXIT_USAGE = 2 };

typedef struct mr_load_opts {
  const char *server;
  long connections;
  double rate;
  int arrivals;
  long concurrency;
  double duration, warmup, timeout;
  long batch;
  int ids;
  double zipf_s;
  const char *criteo;
  unsigned long long seed;
  int json;
  const char *hgrm;
  double lag_bound_us, lag_fraction, spin_us;
  int find_peak;
  double slo_p99_us, start_rate, max_rate, step_duration, step_warmup,
      precision;
  long max_steps;
} mr_load_opts_t;

/* Fills o from argv: 0, 1 when --help was asked, or -1 on a usage error
 * (already reported). */
int mr_load_parse_args(int argc, char **argv, mr_load_opts_t *o);

/* The --help text: every flag with its default, and the exit codes. */
void mr_load_usage(FILE *out);

/* Prints "microrec-load: " + message + newline to stderr. */
void mr_load_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
