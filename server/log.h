/* Logging to stderr as one logfmt line per event:
 *   level=info msg="listening" addr=127.0.0.1:7470
 * When stderr is the systemd journal (JOURNAL_STREAM names the device and
 * inode stderr has, as systemd sets it for StandardError=journal), each line
 * starts with its syslog priority, "<6>level=info ...", which journald
 * strips and records as the entry's PRIORITY (debug 7, info 6, warn 4,
 * error 3), so `journalctl -p warning` works. Decided at the first line.
 * Threads: any; a line is written with one stdio call, so lines from
 * different threads do not interleave. The level is process-wide. */
#ifndef MR_LOG_H
#define MR_LOG_H

enum { MR_LOG_DEBUG = 0, MR_LOG_INFO = 1, MR_LOG_WARN = 2, MR_LOG_ERROR = 3 };

/* "debug", "info", "warn", "error" -> level; -1 if unknown. */
int mr_log_level_parse(const char *name);
const char *mr_log_level_name(int level);
void mr_log_set_level(int level);
int mr_log_enabled(int level);

/* msg is quoted (its quotes and backslashes escaped); kv, when not NULL, is
 * a printf format for the rest: "addr=%s port=%d". Values that may hold
 * spaces should be passed through mr_log_quote. */
void mr_log(int level, const char *msg, const char *kv, ...)
    __attribute__((format(printf, 3, 4)));

/* 1 when fd is the stream JOURNAL_STREAM names (systemd's "DEV:INODE"). */
int mr_log_is_journal(int fd);

/* Writes s as a logfmt quoted value ("..." with \" and \\) into buf. */
const char *mr_log_quote(char *buf, unsigned long len, const char *s);

#define mr_log_debug(...) \
  do { if (mr_log_enabled(MR_LOG_DEBUG)) mr_log(MR_LOG_DEBUG, __VA_ARGS__); } while (0)
#define mr_log_info(...) mr_log(MR_LOG_INFO, __VA_ARGS__)
#define mr_log_warn(...) mr_log(MR_LOG_WARN, __VA_ARGS__)
#define mr_log_error(...) mr_log(MR_LOG_ERROR, __VA_ARGS__)

#endif
