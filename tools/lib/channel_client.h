/*
 * channel_client.h — a subscriber of a sales channel (atp.v1.Atp/Subscribe)
 * for the tools: one gRPC stream that hands every message, verified and
 * decoded, to a callback and keeps the resume token of the last one, and
 * that resubscribes from that token when the stream or the connection
 * breaks (atpd restarted, say), after a backoff with jitter (0.1 s doubling
 * to 5 s). A final status (an unknown or removed channel, a bad token)
 * ends it. No threads: the caller pumps.
 */
#ifndef ATP_CHANNEL_CLIENT_H
#define ATP_CHANNEL_CLIENT_H

#include "atp/event.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct atp_channel_msg {
	uint8_t kind;               /* enum atp_v1_delta_kind */
	uint32_t shard, index;
	uint64_t seq, version;
	atp_str channel, sku, location;
	int64_t atp, previous_atp, sku_atp;
	const uint8_t *token;       /* the resume token after this message */
	uint32_t token_len;
	const uint8_t *bytes;       /* the whole atp.v1.Delta, as received */
	uint32_t len;
} atp_channel_msg;

typedef void (*atp_channel_msg_fn)(void *ctx, const atp_channel_msg *m);

typedef struct atp_channel_client atp_channel_client;

/* Subscribe to channel at target (HOST:PORT) from token (len 0: the full view). Connects on the first pump. */
atp_channel_client *atp_channel_client_new(const char *target, const char *channel, const uint8_t *token,
					   uint32_t len, atp_channel_msg_fn fn, void *ctx);
void atp_channel_client_free(atp_channel_client *c);

/*
 * Receive for up to timeout_ms, (re)connecting when it is time to.
 * 0: going on (the stream may be down and waiting to reconnect); 1: ended
 * for good (atp_channel_client_status says why).
 */
int atp_channel_client_pump(atp_channel_client *c, int timeout_ms);
/* Start again from token (a consumer that must go back to what it made durable). */
void atp_channel_client_restart(atp_channel_client *c, const uint8_t *token, uint32_t len);
/* The token of the last message handed over (what to resume from), or the one given at the start. */
const uint8_t *atp_channel_client_token(const atp_channel_client *c, uint32_t *len);
/* Whether the stream is up now; the last status and message (-1: broken) of a stream that ended. */
bool atp_channel_client_up(const atp_channel_client *c);
int atp_channel_client_status(const atp_channel_client *c, const char **message);
/* The socket to poll for input (-1 while down: pump it now and then to reconnect). */
int atp_channel_client_fd(const atp_channel_client *c);
/* Streams (re)started so far. */
uint32_t atp_channel_client_connects(const atp_channel_client *c);

#endif
