/*
 * grpc_client.h — a small gRPC client over HTTP/2 (libnghttp2) for the
 * tools: one connection, many calls in flight on it, one request message
 * per call and any number of response messages; no threads, the caller
 * pumps. Messages are opaque bytes (atpd's are FlatBuffers).
 */
#ifndef ATP_GRPC_CLIENT_H
#define ATP_GRPC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct atp_grpc_client atp_grpc_client;

/* A response message (valid during the call only). */
typedef void (*atp_grpc_msg_fn)(void *ctx, const uint8_t *msg, uint32_t len);
/* The call ended with this grpc-status (-1 when the stream or connection broke) and grpc-message. */
typedef void (*atp_grpc_done_fn)(void *ctx, int status, const char *message);

/* Connect to HOST:PORT. NULL with err. */
atp_grpc_client *atp_grpc_client_connect(const char *hostport, char *err, size_t errlen);
void atp_grpc_client_close(atp_grpc_client *c);

/* Start a call of path (e.g. "/atp.v1.Atp/GetAtp"); timeout_ms 0: no grpc-timeout. 0, or -1. */
int atp_grpc_client_start(atp_grpc_client *c, const char *path, const uint8_t *msg, uint32_t len, uint32_t timeout_ms,
			  atp_grpc_msg_fn on_msg, atp_grpc_done_fn on_done, void *ctx);
/* Send what is queued (calls started since the last pump) without reading; 0, or -1 once broken. */
int atp_grpc_client_flush(atp_grpc_client *c);
/* Send and receive for up to timeout_ms (0: what is ready now). Calls completed, or -1 once the connection broke. */
int atp_grpc_client_pump(atp_grpc_client *c, int timeout_ms);
uint32_t atp_grpc_client_in_flight(const atp_grpc_client *c);
/* Its socket, for a caller that polls many clients and then pumps the ready ones with timeout 0. */
int atp_grpc_client_fd(const atp_grpc_client *c);

/*
 * One unary call, waited for: its grpc-status (-1: broken). *reply gets the
 * response message (malloc'd, free it; NULL when none), message the grpc-message.
 */
int atp_grpc_client_unary(atp_grpc_client *c, const char *path, const uint8_t *msg, uint32_t len,
			  uint32_t timeout_ms, uint8_t **reply, uint32_t *reply_len, char *message, size_t msglen);

/* "OK", "NOT_FOUND", ...: the name of a gRPC status code. */
const char *atp_grpc_status_name(int status);

#endif
