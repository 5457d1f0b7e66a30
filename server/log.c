/* logfmt lines on stderr (see log.h). */
#include "server/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static _Atomic int log_level = MR_LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

int mr_log_level_parse(const char *name) {
  for (int i = 0; i < 4; i++)
    if (!strcmp(name, names[i])) return i;
  if (!strcmp(name, "warning")) return MR_LOG_WARN;
  return -1;
}

const char *mr_log_level_name(int level) {
  return level >= 0 && level < 4 ? names[level] : "info";
}

/* syslog priorities of debug, info, warn, error: the journal's PRIORITY=. */
static const char priority[] = {'7', '6', '4', '3'};
static int to_journal;
static pthread_once_t journal_once = PTHREAD_ONCE_INIT;

int mr_log_is_journal(int fd) {
  const char *v = getenv("JOURNAL_STREAM");
  unsigned long long dev, ino;
  struct stat st;
  if (!v || sscanf(v, "%llu:%llu", &dev, &ino) != 2 || fstat(fd, &st) != 0)
    return 0;
  return (unsigned long long)st.st_dev == dev &&
         (unsigned long long)st.st_ino == ino;
}

static void detect_journal(void) { to_journal = mr_log_is_journal(2); }

void mr_log_set_level(int level) { atomic_store(&log_level, level); }
int mr_log_enabled(int level) { return level >= atomic_load(&log_level); }

const char *mr_log_quote(char *buf, unsigned long len, const char *s) {
  size_t o = 0;
  if (len < 3) return "\"\"";
  buf[o++] = '"';
  for (; *s && o + 3 < len; s++) {
    char ch = *s;
    if (ch == '"' || ch == '\\') buf[o++] = '\\';
    buf[o++] = ch == '\n' ? ' ' : ch;
  }
  buf[o++] = '"';
  buf[o] = 0;
  return buf;
}

void mr_log(int level, const char *msg, const char *kv, ...) {
  if (!mr_log_enabled(level)) return;
  pthread_once(&journal_once, detect_journal);
  char line[2048], q[1024], prefix[4] = "";
  if (to_journal) {
    prefix[0] = '<';
    prefix[1] = priority[level >= 0 && level < 4 ? level : 1];
    prefix[2] = '>';
  }
  int n = snprintf(line, sizeof line, "%slevel=%s msg=%s", prefix,
                   mr_log_level_name(level), mr_log_quote(q, sizeof q, msg));
  if (kv && n > 0 && (size_t)n < sizeof line - 2) {
    line[n++] = ' ';
    va_list ap;
    va_start(ap, kv);
    int m = vsnprintf(line + n, sizeof line - (size_t)n, kv, ap);
    va_end(ap);
    if (m > 0) n += m;
  }
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  line[n] = 0;
  fputs(line, stderr);
}
