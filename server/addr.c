/* Address parsing, formatting and resolution (addr.h). */
#include "server/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mr_addr_parse(mr_addr_t *a, const char *s, mr_err_t *err) {
  const char *host = "127.0.0.1";
  size_t host_len = strlen(host);
  const char *port_s = s;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':')
      return mr_err_set(err, MR_EINVAL,
                        "address '%s': expected [IPV6]:PORT", s);
    host = s + 1;
    host_len = (size_t)(close - host);
    port_s = close + 2;
  } else {
    const char *colon = strrchr(s, ':');
    if (colon) {
      if (strchr(s, ':') != colon)
        return mr_err_set(err, MR_EINVAL,
                          "address '%s': write an IPv6 host in brackets, "
                          "[::1]:PORT", s);
      if (colon != s) {
        host = s;
        host_len = (size_t)(colon - s);
      }
      port_s = colon + 1;
    }
  }
  char *end;
  errno = 0;
  unsigned long port = strtoul(port_s, &end, 10);
  if (!*port_s || *end || errno || port > 65535 || port_s[0] == '-')
    return mr_err_set(err, MR_EINVAL,
                      "address '%s': expected HOST:PORT with a port in "
                      "0..65535", s);
  if (host_len == 0 || host_len >= sizeof a->host)
    return mr_err_set(err, MR_EINVAL, "address '%s': bad host", s);
  memcpy(a->host, host, host_len);
  a->host[host_len] = 0;
  a->port = (int)port;
  return 0;
}

const char *mr_addr_format(const mr_addr_t *a, char *buf, size_t len) {
  if (strchr(a->host, ':'))
    snprintf(buf, len, "[%s]:%d", a->host, a->port);
  else
    snprintf(buf, len, "%s:%d", a->host, a->port);
  return buf;
}

int mr_addr_resolve(const mr_addr_t *a, struct sockaddr_storage *out,
                    mr_err_t *err) {
  memset(out, 0, sizeof *out);
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  if (inet_pton(AF_INET, a->host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)a->port);
    return 0;
  }
  if (inet_pton(AF_INET6, a->host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)a->port);
    return 0;
  }
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(a->host, NULL, &hints, &res);
  if (rc || !res)
    return mr_err_set(err, MR_EINVAL, "cannot resolve host '%s': %s", a->host,
                      rc ? gai_strerror(rc) : "no address");
  memcpy(out, res->ai_addr, res->ai_addrlen);
  if (out->ss_family == AF_INET) v4->sin_port = htons((uint16_t)a->port);
  else v6->sin6_port = htons((uint16_t)a->port);
  freeaddrinfo(res);
  return 0;
}

int mr_addr_from_sockaddr(mr_addr_t *a, const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)(const void *)sa;
    inet_ntop(AF_INET, &v4->sin_addr, a->host, sizeof a->host);
    a->port = ntohs(v4->sin_port);
    return 0;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)(const void *)sa;
    inet_ntop(AF_INET6, &v6->sin6_addr, a->host, sizeof a->host);
    a->port = ntohs(v6->sin6_port);
    return 0;
  }
  return MR_EINVAL;
}
