/* Network addresses as flags write them ("127.0.0.1:7470", "[::1]:0",
 * ":9100") and as sockets need them. Pure; any thread (resolve may block on
 * DNS for a name: start-up only). */
#ifndef MR_ADDR_H
#define MR_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#include "fpga/err.h"

typedef struct mr_addr {
  char host[256]; /* numeric IPv4/IPv6 or a name; "[...]" stripped */
  int port;       /* 0 = ephemeral */
} mr_addr_t;

/* "HOST:PORT", "[v6]:PORT", ":PORT" or "PORT" (host 127.0.0.1). */
int mr_addr_parse(mr_addr_t *a, const char *s, mr_err_t *err);
/* "127.0.0.1:7470" or "[::1]:7470". */
const char *mr_addr_format(const mr_addr_t *a, char *buf, size_t len);
/* Numeric hosts directly, names through getaddrinfo (first result). */
int mr_addr_resolve(const mr_addr_t *a, struct sockaddr_storage *out,
                    mr_err_t *err);
/* The address a bound socket reports (after port 0 was chosen). */
int mr_addr_from_sockaddr(mr_addr_t *a, const struct sockaddr *sa);

#endif
