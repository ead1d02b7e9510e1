/*
 * grpc_subscribe.c — atp.v1.Atp/Subscribe: a sales channel's stream of
 * deltas (atp/hub.h) as a server-streaming call.
 *
 * The call's data provider pulls whole messages from the hub into the
 * call's buffer as HTTP/2 flow control asks for bytes; when the hub has
 * nothing, the stream is deferred, and each turn of the loop resumes the
 * deferred streams whose subscriber the hub has something for (new
 * messages, a resync to go on with, a heartbeat due). A client that stops
 * reading closes its window: it is no longer asked, and the hub conflates,
 * then resyncs it.
 *
 * The fan-out yields to ingest: while ingest is heavy (front_busy: 10,000
 * frames a second or more, far above a warehouse's peak), the subscribers
 * together are sent at most cfg.fanout_busy_bytes_s, a ms's worth at a
 * time, taking turns; the rest waits in the hub, which conflates a
 * subscriber that falls behind. Otherwise at most 1 MiB a ms: enough to
 * catch up at once, never a turn that holds the loop (and the acks) for
 * long, as every subscriber's whole HTTP/2 window in one turn would.
 * Runs in the loop's thread, as the hub does.
 */
#define _GNU_SOURCE
#include "grpc_internal.h"

#include "atp/hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_BYTES (64u << 10)
#define IDLE_BYTES_MS (1u << 20) /* the allowance a ms while ingest is not heavy */
#define ALLOWANCE_MIN 4096u      /* less left this ms: nothing more until the next */
#define ALLOWANCE_MS_MAX 4u      /* a turn that took longer gets at most this many ms's worth */

/* What the subscribers may still be sent this ms. */
static size_t allowance(atp_grpc_server *g)
{
	uint64_t now = grpc_now_ms(g);
	bool busy = g->cfg.fanout_busy_bytes_s && front_busy(g->front);
	if (now != g->fanout_ms || busy != g->fanout_busy) {
		uint64_t ms = now - g->fanout_ms < ALLOWANCE_MS_MAX ? now - g->fanout_ms : ALLOWANCE_MS_MAX;
		g->fanout_left = (ms ? ms : 1) * (busy ? g->cfg.fanout_busy_bytes_s / 1000 : IDLE_BYTES_MS);
		g->fanout_ms = now;
		g->fanout_busy = busy;
	}
	return g->fanout_left < ALLOWANCE_MIN ? 0 : g->fanout_left;
}

/* The allowance ran out this ms (counted once, under heavy ingest): the loop comes back within the next. */
static void held(atp_grpc_server *g)
{
	if (g->fanout_busy && g->fanout_held_ms != g->fanout_ms) {
		g->fanout_held_ms = g->fanout_ms;
		g->stats.fanout_held++;
	}
	front_wake_within(g->front, 1);
}

static void watch(atp_grpc_server *g, call *c)
{
	g->subscribers[g->n_subscribers++] = grpc_call_index(g, c);
}

static void unwatch(atp_grpc_server *g, call *c)
{
	uint32_t me = grpc_call_index(g, c);
	for (uint32_t i = 0; i < g->n_subscribers; i++)
		if (g->subscribers[i] == me) {
			g->subscribers[i] = g->subscribers[--g->n_subscribers];
			return;
		}
}

void grpc_method_subscribe(atp_grpc_server *g, call *c)
{
	int rc;
	char where[96], why[200];
	const uint8_t *r = atp_v1_verify_at(c->msg, c->msg_len, &atp_v1_subscribe_request_rule, &rc, where, sizeof(where));
	if (!r) {
		grpc_call_respond(g, c, G_INVALID_ARGUMENT, "not a valid atp.v1.SubscribeRequest: %s%s%s", where,
			  where[0] ? ": " : "", atp_fb_error_message(rc));
		return;
	}
	if (!g->cfg.hub) {
		grpc_call_respond(g, c, G_NOT_FOUND, "this server streams no channels");
		return;
	}
	atp_str channel = atp_v1_subscribe_request_channel(r);
	if (g->auth && !atp_auth_may_subscribe(g->auth, c->ident, channel.ptr, channel.len)) {
		atp_auth_refused(false, atp_auth_name(g->auth, c->ident), "Subscribe", "not granted this channel");
		grpc_call_respond(g, c, G_PERMISSION_DENIED, "%s may not subscribe to channel %.*s",
				  atp_auth_name(g->auth, c->ident), (int)channel.len, channel.ptr);
		return;
	}
	uint32_t len;
	const uint8_t *token = atp_v1_subscribe_request_resume_token(r, &len);
	if (!c->out || c->out_cap < OUT_BYTES) {
		uint8_t *p = realloc(c->out, OUT_BYTES);
		if (!p) {
			grpc_call_respond(g, c, G_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
		c->out = p;
		c->out_cap = OUT_BYTES;
	}
	rc = atp_hub_subscribe(g->cfg.hub, channel, token, len, &c->sub, why, sizeof(why));
	switch (rc) {
	case 0:
		break;
	case ATP_HUB_E_CHANNEL:
		grpc_call_respond(g, c, G_NOT_FOUND, "%s", why);
		return;
	case ATP_HUB_E_TOKEN:
		grpc_call_respond(g, c, G_INVALID_ARGUMENT, "%s", why);
		return;
	case ATP_HUB_E_OTHER_DIR:
		grpc_call_respond(g, c, G_FAILED_PRECONDITION, "%s", why);
		return;
	default:
		grpc_call_respond(g, c, G_RESOURCE_EXHAUSTED, "%s", why);
		return;
	}
	c->deferred = c->ending = false;
	c->deadline_ms = 0;  /* a stream lasts as long as the client wants it */
	watch(g, c);
	grpc_call_respond(g, c, G_OK, "%s", "");  /* the data provider pulls the messages (grpc_method_subscribe_more) */
}

bool grpc_method_subscribe_more(atp_grpc_server *g, call *c, uint32_t want)
{
	(void)want;
	const char *why;
	if (c->ending)
		return false;
	if (atp_hub_ended(c->sub, &why)) {
		c->status = G_NOT_FOUND;
		snprintf(c->message, sizeof(c->message), "%s", why);
		return false;
	}
	size_t cap = allowance(g);
	if (cap == 0) {
		held(g);
		c->out_len = c->out_sent = 0;
		return true;  /* deferred */
	}
	c->out_len = (uint32_t)atp_hub_read(g->cfg.hub, c->sub, c->out, cap < c->out_cap ? cap : c->out_cap, grpc_now_ms(g));
	c->out_sent = 0;
	g->fanout_left -= c->out_len;
	return true;
}

static void resume_stream(atp_grpc_server *g, call *c)
{
	c->deferred = false;
	nghttp2_session_resume_data(c->conn->session, c->stream_id);
	grpc_conn_mark_dirty(g, c->conn);
}

void grpc_method_subscribe_wake(atp_grpc_server *g)
{
	uint64_t now = grpc_now_ms(g);
	/* As many as the allowance can feed (none: none looked at), starting one further each time. */
	size_t cap = allowance(g);
	if (cap == 0) {
		if (g->n_subscribers)
			held(g);
		return;
	}
	size_t resume = (cap + OUT_BYTES - 1) / OUT_BYTES;
	uint32_t first = g->n_subscribers ? g->sub_first++ % g->n_subscribers : 0;
	for (uint32_t k = 0; k < g->n_subscribers && resume; k++) {
		call *c = &g->calls[g->subscribers[(first + k) % g->n_subscribers]];
		if (!c->deferred || !(c->ending || atp_hub_ready(g->cfg.hub, c->sub, now)))
			continue;
		if (--resume == 0)
			front_wake_within(g->front, 1);  /* the others' turn comes in the next ms */
		resume_stream(g, c);
	}
}

void grpc_method_subscribe_end_all(atp_grpc_server *g, int status, const char *message)
{
	for (uint32_t i = 0; i < g->n_subscribers; i++) {
		call *c = &g->calls[g->subscribers[i]];
		c->ending = true;
		c->status = status;
		snprintf(c->message, sizeof(c->message), "%s", message);
		if (c->deferred)
			resume_stream(g, c);
	}
}

void grpc_method_subscribe_release(atp_grpc_server *g, call *c)
{
	if (!c->sub)
		return;
	unwatch(g, c);
	atp_hub_unsubscribe(g->cfg.hub, c->sub);
	c->sub = NULL;
}
