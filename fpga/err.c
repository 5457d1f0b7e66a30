/* Error codes to text. */
#include "fpga/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *mr_strerror(int code) {
  switch (code) {
#define MR_ERR_DESC(name, value, desc) \
  case value:                          \
    return desc;
    MR_ERRNO_MAP(MR_ERR_DESC)
#undef MR_ERR_DESC
  case 0:
    return "success";
  default:
    return code < 0 ? strerror(-code) : "unknown error";
  }
}

const char *mr_err_name(int code) {
  switch (code) {
#define MR_ERR_NAME(name, value, desc) \
  case value:                          \
    return "MR_" #name;
    MR_ERRNO_MAP(MR_ERR_NAME)
#undef MR_ERR_NAME
  case 0:
    return "OK";
  default: {
    const char *n = code < 0 ? strerrorname_np(-code) : NULL;
    return n ? n : "EUNKNOWN";
  }
  }
}

int mr_err_set(mr_err_t *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
  }
  return code;
}

void mr_err_prefix(mr_err_t *err, const char *fmt, ...) {
  if (!err) return;
  char joined[2 * MR_ERR_MSG_MAX + 2];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(joined, MR_ERR_MSG_MAX, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n >= MR_ERR_MSG_MAX) n = MR_ERR_MSG_MAX - 1;
  /* err->msg is always terminated within MR_ERR_MSG_MAX, so this fits. */
  snprintf(joined + n, sizeof joined - (size_t)n, ": %s", err->msg);
  memcpy(err->msg, joined, MR_ERR_MSG_MAX - 1);
  err->msg[MR_ERR_MSG_MAX - 1] = '\0';
}
