/* Private to client/lib: the connection state shared by client.c (transport),
 * client_infer.c and client_info.c (the blocking calls). */
#ifndef MR_CLIENT_INT_H
#define MR_CLIENT_INT_H

#include "client/lib/microrec.h"

struct mr_client {
  int fd;
  int timeout_ms;
  uint64_t next_id;
  size_t in_flight;
  int last_status;
  int eof;                 /* the server closed its side */
  int broken;              /* 0, or the error that made the stream unusable */
  char broken_msg[MR_ERR_MSG_MAX];
  char peer[300];          /* "host:port", for messages */
  uint8_t *wbuf;
  size_t wcap;
  uint8_t *rbuf;
  size_t rcap, rstart, rend;
};

/* Marks the stream unusable: every later call fails with code and msg. */
void mr__client_break(mr_client_t *c, int code, const char *msg);

/* Sends a request with no body fields (health, model info, stats). */
int mr__client_send_simple(mr_client_t *c, int body_case, uint64_t *id,
                           mr_err_t *err);

/* Receives until the response with id arrives: any other id is a protocol
 * error (blocking calls own the connection). */
int mr__client_recv_id(mr_client_t *c, uint64_t id, mr_response_t *r,
                       mr_err_t *err);

#endif
