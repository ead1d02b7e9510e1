/* channel_client.c — a resubscribing channel subscriber (see channel_client.h). */
#define _GNU_SOURCE
#include "channel_client.h"
#include "grpc_client.h"

#include "atp/channel.h"
#include "atp/wire_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct atp_channel_client {
	char target[160];
	char channel[ATP_CHANNEL_NAME_MAX + 1];
	atp_channel_msg_fn fn;
	void *ctx;
	uint8_t token[ATP_V1_TOKEN_MAX];
	uint32_t token_len;
	atp_grpc_client *g;
	bool up, ended;
	uint64_t retry_at_ms, backoff_ms;
	int status;
	char message[256];
	uint32_t connects;
	uint64_t seed;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

atp_channel_client *atp_channel_client_new(const char *target, const char *channel, const uint8_t *token,
					   uint32_t len, atp_channel_msg_fn fn, void *ctx)
{
	atp_channel_client *c = calloc(1, sizeof(*c));
	if (!c || len > sizeof(c->token)) {
		free(c);
		return NULL;
	}
	snprintf(c->target, sizeof(c->target), "%s", target);
	snprintf(c->channel, sizeof(c->channel), "%s", channel);
	c->fn = fn;
	c->ctx = ctx;
	if (len)
		memcpy(c->token, token, len);
	c->token_len = len;
	c->backoff_ms = 100;
	c->seed = now_ms() ^ (uint64_t)(uintptr_t)c;
	return c;
}

static void drop(atp_channel_client *c)
{
	atp_grpc_client_close(c->g);
	c->g = NULL;
	c->up = false;
}

void atp_channel_client_free(atp_channel_client *c)
{
	if (!c)
		return;
	drop(c);
	free(c);
}

static void on_msg(void *ctx, const uint8_t *msg, uint32_t len)
{
	atp_channel_client *c = ctx;
	int rc;
	const uint8_t *t = atp_v1_verify(msg, len, &atp_v1_delta_rule, &rc);
	if (!t) {
		fprintf(stderr, "channel %s: a message that does not verify (%s): skipped\n", c->channel,
			atp_fb_error_message(rc));
		return;
	}
	atp_channel_msg m = { .kind = atp_v1_delta_kind(t), .shard = atp_v1_delta_shard(t),
			      .index = atp_v1_delta_index(t), .seq = atp_v1_delta_seq(t),
			      .version = atp_v1_delta_version(t), .channel = atp_v1_delta_channel(t),
			      .sku = atp_v1_delta_sku(t), .location = atp_v1_delta_location(t),
			      .atp = atp_v1_delta_atp(t), .previous_atp = atp_v1_delta_previous_atp(t),
			      .sku_atp = atp_v1_delta_sku_atp(t), .bytes = msg, .len = len };
	m.token = atp_v1_delta_token(t, &m.token_len);
	c->backoff_ms = 100;  /* it works again */
	c->fn(c->ctx, &m);
	if (m.token_len && m.token_len <= sizeof(c->token)) {
		memcpy(c->token, m.token, m.token_len);
		c->token_len = m.token_len;
	}
}

/* Statuses after which resubscribing cannot help. */
static bool final(int status)
{
	return status == 3 /* INVALID_ARGUMENT */ || status == 5 /* NOT_FOUND */ ||
	       status == 9 /* FAILED_PRECONDITION */ || status == 12 /* UNIMPLEMENTED */;
}

static void on_done(void *ctx, int status, const char *message)
{
	atp_channel_client *c = ctx;
	c->status = status;
	snprintf(c->message, sizeof(c->message), "%s", message);
	c->up = false;
	if (final(status))
		c->ended = true;
}

/* The next try in backoff ms, +-50% (so that many consumers do not come back at once). */
static void later(atp_channel_client *c)
{
	c->seed = c->seed * 6364136223846793005ull + 1442695040888963407ull;
	uint64_t jitter = (c->seed >> 33) % (c->backoff_ms + 1);
	c->retry_at_ms = now_ms() + c->backoff_ms / 2 + jitter;
	if ((c->backoff_ms *= 2) > 5000)
		c->backoff_ms = 5000;
}

static void start(atp_channel_client *c)
{
	char err[256];
	drop(c);
	if (!(c->g = atp_grpc_client_connect(c->target, err, sizeof(err)))) {
		c->status = -1;
		snprintf(c->message, sizeof(c->message), "%s", err);
		later(c);
		return;
	}
	static uint8_t mem[8192] __attribute__((aligned(8)));
	atp_fb_builder b;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	size_t len;
	const uint8_t *req = atp_fb_finish(
		&b, atp_v1_build_subscribe_request(&b, atp_str_of(c->channel, strlen(c->channel)), c->token, c->token_len),
		NULL, &len);
	if (!req || atp_grpc_client_start(c->g, "/atp.v1.Atp/Subscribe", req, (uint32_t)len, 0, on_msg, on_done, c) < 0) {
		drop(c);
		later(c);
		return;
	}
	c->up = true;
	c->connects++;
}

int atp_channel_client_pump(atp_channel_client *c, int timeout_ms)
{
	if (c->ended)
		return 1;
	if (!c->g) {
		uint64_t now = now_ms();
		if (now < c->retry_at_ms) {
			uint64_t wait = c->retry_at_ms - now;
			struct timespec ts = { 0, (long)((wait < (uint64_t)timeout_ms ? wait : (uint64_t)timeout_ms) * 1000000) };
			nanosleep(&ts, NULL);
			return 0;
		}
		start(c);
		if (!c->g)
			return 0;
	}
	if (atp_grpc_client_pump(c->g, timeout_ms) < 0 || !c->up) {
		if (c->ended)
			return 1;
		drop(c);
		later(c);
	}
	return c->ended;
}

void atp_channel_client_restart(atp_channel_client *c, const uint8_t *token, uint32_t len)
{
	if (len <= sizeof(c->token)) {
		if (len)
			memcpy(c->token, token, len);
		c->token_len = len;
	}
	drop(c);
	c->retry_at_ms = 0;
}

const uint8_t *atp_channel_client_token(const atp_channel_client *c, uint32_t *len)
{
	*len = c->token_len;
	return c->token;
}

bool atp_channel_client_up(const atp_channel_client *c)
{
	return c->up;
}

int atp_channel_client_status(const atp_channel_client *c, const char **message)
{
	if (message)
		*message = c->message;
	return c->status;
}

int atp_channel_client_fd(const atp_channel_client *c)
{
	return c->g ? atp_grpc_client_fd(c->g) : -1;
}

uint32_t atp_channel_client_connects(const atp_channel_client *c)
{
	return c->connects;
}
