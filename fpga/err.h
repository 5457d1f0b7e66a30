/* Error codes and messages shared by every microrec module.
 * Functions return 0 on success or a negative code: one of MR_E* below, or
 * -errno for a system error passed through. A mr_err_t, when the caller gives
 * one, receives a sentence a person can act on (what was wrong, what was
 * expected). */
#ifndef MR_ERR_H
#define MR_ERR_H

#include <stddef.h>

/* X(name, value, description). Values stay clear of -errno (< 1000). */
#define MR_ERRNO_MAP(X)                                                  \
  X(EAGAIN, -1001, "not yet: more input needed")                        \
  X(EINVAL, -1002, "invalid argument")                                  \
  X(ENOMEM, -1003, "out of memory")                                     \
  X(EFORMAT, -1004, "malformed model file")                             \
  X(ERANGE, -1005, "id out of range")                                   \
  X(EOVERLOAD, -1006, "queue full")                                     \
  X(ETIMEDOUT, -1007, "timed out")                                      \
  X(ENOTSUP, -1008, "not supported")                                    \
  X(EPROTO, -1009, "protocol error")                                    \
  X(ECLOSED, -1010, "connection closed")                                \
  X(EIO, -1011, "input/output error")                                   \
  X(ESERVER, -1012, "server returned an error")                         \
  X(EDEVICE, -1013, "device error")

enum {
#define MR_ERR_ENUM(name, value, desc) MR_##name = value,
  MR_ERRNO_MAP(MR_ERR_ENUM)
#undef MR_ERR_ENUM
};

#define MR_ERR_MSG_MAX 512

typedef struct mr_err {
  int code;
  char msg[MR_ERR_MSG_MAX];
} mr_err_t;

/* Description of a code (ours or -errno); never NULL. */
const char *mr_strerror(int code);
/* Short symbolic name of a code, "MR_EFORMAT" or "ENOENT"; never NULL. */
const char *mr_err_name(int code);

/* Records code and a printf-formatted message in err (if not NULL) and
 * returns code, so callers write `return mr_err_set(err, MR_EINVAL, ...)`. */
int mr_err_set(mr_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes err->msg with "prefix: " (used to add context on the way up). */
void mr_err_prefix(mr_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
