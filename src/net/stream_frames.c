/*
 * stream_frames.c — what a connection's bytes mean (see stream_internal.h):
 * length-prefixed frames, the Hello that names the source (a newer
 * connection takes it over), EventBatches verified whole and checked for
 * their source before any event of them reaches the engine, held back
 * while the engine's rings or the connection's unacknowledged bytes are
 * full, and the Acks and Welcomes that answer them.
 */
#include "stream_internal.h"
#include "atp/log.h"
#include "atp/wire_frame.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Frame a finished FlatBuffer into c->out. */
static void frame_out(conn *c, const uint8_t *p, size_t n)
{
	uint32_t len = (uint32_t)n;
	memcpy(c->out, &len, 4);  /* little-endian hosts only (as the whole wire layer) */
	memcpy(c->out + 4, p, n);
	c->out_len = 4 + len;
	c->out_sent = 0;
}

atp_str srv_source_of(const atp_stream_server *s, const conn *c)
{
	if (c->source == ATP_SOURCE_NONE)
		return (atp_str){ 0 };
	const atp_source *src = atp_sources_get(s->sources, c->source);
	return atp_str_of(src->name, src->name_len);
}

uint64_t srv_durable_of(const atp_stream_server *s, const conn *c)
{
	if (c->source == ATP_SOURCE_NONE)
		return 0;
	return atp_engine_durable_seq(s->e, atp_sources_get(s->sources, c->source)->name);
}

/* Build the Ack (or, before the Hello, the Welcome) due on c into its out buffer. */
void srv_build_reply(atp_stream_server *s, conn *c, uint64_t durable)
{
	atp_fb_builder b;
	size_t n;
	const uint8_t *p;
	atp_fb_builder_init(&b, s->scratch, OUT_BYTES - 4);
	if (c->state == C_HELLO || (c->state == C_CLOSING && c->source == ATP_SOURCE_NONE)) {
		atp_wire_welcome w = { .durable_seq = durable, .error = c->close_error,
				       .reason = atp_str_of(c->close_reason, strlen(c->close_reason)) };
		p = atp_fb_finish(&b, atp_wire_build_welcome(&b, &w), NULL, &n);
	} else {
		uint32_t k = c->n_refusals < ACK_REFUSALS ? c->n_refusals : ACK_REFUSALS;
		atp_wire_ack a = { .source = srv_source_of(s, c), .durable_seq = durable, .next_seq = c->next_seq,
				   .refused = c->refusals, .n_refused = k, .error = c->close_error,
				   .reason = atp_str_of(c->close_reason, strlen(c->close_reason)) };
		p = atp_fb_finish(&b, atp_wire_build_ack(&b, &a), NULL, &n);
		c->n_refusals -= k;
		if (c->n_refusals)
			memmove(c->refusals, c->refusals + k, c->n_refusals * sizeof(*c->refusals));
		s->stats.acks++;
	}
	frame_out(c, p, n);
	c->acked_seq = durable;
	c->want_ack = false;
}

static void add_refusal(atp_stream_server *s, conn *c, uint64_t seq, int code)
{
	_Static_assert(-ATP_E_LAST < (int)(sizeof(s->stats.refused) / sizeof(s->stats.refused[0])), "a counter per code");
	s->stats.refused[code < 0 && code >= ATP_E_LAST ? -code : 0]++;
	if (!c->refusals && !(c->refusals = malloc(MAX_REFUSALS * sizeof(*c->refusals)))) {
		c->refusals_lost++;
		return;
	}
	if (c->n_refusals == MAX_REFUSALS) {
		if (c->refusals_lost++ == 0)
			atp_log(ATP_LOG_WARN, "connection %u: more than %u refusals waiting; further ones only logged",
				srv_slot(s, c), MAX_REFUSALS);
		atp_log(ATP_LOG_WARN, "refused seq %" PRIu64 ": %s", seq, atp_status_name(code));
		return;
	}
	c->refusals[c->n_refusals++] = (atp_wire_refusal){ .seq = seq, .code = code };
	c->want_ack = true;
}

static int on_hello(atp_stream_server *s, conn *c, const uint8_t *p, uint32_t len)
{
	atp_str name;
	int rc = atp_wire_decode_hello(p, len, &name);
	if (rc) {
		srv_fail(s, c, ATP_E_PROTOCOL, "Hello expected: %s", atp_fb_error_message(rc));
		return FRAME_CLOSED;
	}
	if (!atp_str_valid(name, ATP_SOURCE_MAX)) {
		srv_fail(s, c, ATP_E_SOURCE, "%s", atp_status_message(ATP_E_SOURCE));
		return FRAME_CLOSED;
	}
	if (name.ptr[0] == '@') {  /* the engine's own (the gRPC API's): not a sender's to claim */
		srv_fail(s, c, ATP_E_SOURCE, "source names starting with @ are reserved");
		return FRAME_CLOSED;
	}
	char why[200];
	int auth = srv_authorize(s, c, name, why, sizeof(why));
	if (auth != ATP_OK) {  /* before anything: a refused Hello claims nothing, supersedes no one */
		srv_fail(s, c, auth, "%s", why);
		return FRAME_CLOSED;
	}
	uint32_t id = atp_sources_find(s->sources, name);
	if (id == ATP_SOURCE_NONE && (id = atp_sources_intern(s->sources, name)) == ATP_SOURCE_NONE) {
		srv_fail(s, c, ATP_E_LIMIT, "too many sources");
		return FRAME_CLOSED;
	}
	if (s->owner[id]) {
		conn *old = &s->conns[s->owner[id] - 1];
		srv_fail(s, old, ATP_E_SUPERSEDED, "a newer connection (%u) claimed source %.*s", srv_slot(s, c),
			  (int)name.len, name.ptr);
	}
	s->owner[id] = srv_slot(s, c) + 1;
	c->source = id;
	c->deadletter = s->dlq && srv_policy_of(s, name) == ATP_STREAM_DEADLETTER;
	uint64_t durable = srv_durable_of(s, c);
	c->next_seq = durable + 1;
	srv_build_reply(s, c, durable);  /* the Welcome */
	c->state = C_STREAM;
	c->frame_start_ms = 0;
	srv_start_send(s, c);
	return FRAME_DONE;
}

static int on_batch(atp_stream_server *s, conn *c, const uint8_t *p, uint32_t len)
{
	int n = atp_wire_decode_event_batch(p, len, s->events, s->times, s->cfg.max_batch);
	if (n < 0) {
		bool limit = n == ATP_FB_E_VECTOR_LEN || n == ATP_FB_E_TOO_LARGE;
		srv_fail(s, c, limit ? ATP_E_LIMIT : ATP_E_PROTOCOL, "EventBatch: %s%s", atp_fb_error_message(n),
			  limit ? " (a limit of this server)" : "");
		return FRAME_CLOSED;
	}
	atp_str mine = srv_source_of(s, c);
	for (int i = 0; i < n; i++) {
		atp_str *src = &s->events[i].source;
		if (src->len == 0)
			*src = mine;
		else if (src->len != mine.len || memcmp(src->ptr, mine.ptr, mine.len) != 0) {
			srv_fail(s, c, ATP_E_SOURCE, "event %d of the batch names source %.*s, this connection %.*s", i,
				  (int)(src->len > 64 ? 64 : src->len), src->ptr, (int)mine.len, mine.ptr);
			return FRAME_CLOSED;
		}
	}
	if (c->fifo_len == FIFO_MAX || (c->unacked_bytes && c->unacked_bytes + len > s->cfg.max_unacked) ||
	    !atp_engine_can_take(s->e, (uint32_t)n))
		return FRAME_PARK;
	uint64_t cover = 0;
	for (int i = 0; i < n; i++) {
		const atp_event *ev = &s->events[i];
		uint64_t expected = c->next_seq;
		if (s->cfg.event_clock)
			atp_engine_set_time(s->e, s->times[i].occurred_at);
		int rc = atp_engine_submit(s->e, ev, &expected);
		if (rc == ATP_OK || rc == ATP_DUPLICATE) {
			cover = ev->seq > cover ? ev->seq : cover;
			c->next_seq = expected;
			continue;
		}
		uint64_t next;
		if (c->deadletter && srv_dead_letterable(rc) && ev->seq <= (next = atp_engine_expected_seq(s->e, ev->source))) {
			/* A resend of a seq already consumed is a duplicate, as if it were well formed. */
			rc = ev->seq < next ? ATP_DUPLICATE : srv_deadletter(s, ev, &s->times[i], rc);
			if (rc == ATP_OK || rc == ATP_DUPLICATE) {
				cover = ev->seq > cover ? ev->seq : cover;
				c->next_seq = atp_engine_expected_seq(s->e, ev->source);
				continue;
			}
		}
		if (rc == ATP_E_IO) {
			s->failed = ATP_E_IO;
			return FRAME_CLOSED;
		}
		add_refusal(s, c, ev->seq, rc);
		c->next_seq = expected;
		break;  /* the rest of the batch would only be gaps */
	}
	s->stats.frames++;
	s->stats.events += (uint64_t)n;
	c->fifo[(c->fifo_head + c->fifo_len++) % FIFO_MAX] = (unacked){ cover, len };
	c->unacked_bytes += len;
	return FRAME_DONE;
}

/* Handle whole frames at the front of p[0..n); returns the bytes consumed (all of them once c closed). */
static uint32_t consume(atp_stream_server *s, conn *c, const uint8_t *p, uint32_t n)
{
	uint32_t off = 0;
	while (c->state == C_HELLO || c->state == C_STREAM) {
		uint32_t flen;
		int64_t k = atp_frame_split(p + off, n - off, s->cfg.max_frame, &flen);
		if (k < 0) {
			srv_fail(s, c, (int)k, "a frame of %" PRIu32 " bytes (limit %" PRIu32 ")", flen, s->cfg.max_frame);
			break;
		}
		if (k == 0)
			break;
		const uint8_t *f = p + off + ATP_FRAME_HEADER;
		int r = c->state == C_HELLO ? on_hello(s, c, f, flen) : on_batch(s, c, f, flen);
		if (r == FRAME_CLOSED)
			return n;
		if (r == FRAME_PARK) {
			c->parked = true;  /* reading stops once PARK_SLACK more bytes came (see srv_on_data) */
			return off;
		}
		off += (uint32_t)k;
		c->frame_start_ms = 0;
	}
	if (c->state != C_HELLO && c->state != C_STREAM)
		return n;
	if (off < n && !c->frame_start_ms)
		c->frame_start_ms = front_now_ms(s->loop);
	return off;
}

static bool keep(atp_stream_server *s, conn *c, const uint8_t *p, uint32_t n)
{
	uint64_t want = (uint64_t)c->in_len + n;
	if (want > (uint64_t)s->cfg.max_frame + 4 + IN_SLACK) {
		srv_fail(s, c, ATP_E_LIMIT, "more than %u bytes waiting while the connection is not read", IN_SLACK);
		return false;
	}
	if (want > c->in_cap) {
		uint32_t cap = c->in_cap ? c->in_cap : 4096;
		while (cap < want)
			cap *= 2;
		uint8_t *in = realloc(c->in, cap);
		if (!in) {
			srv_fail(s, c, ATP_E_NOMEM, "out of memory for a partial frame");
			return false;
		}
		c->in = in;
		c->in_cap = cap;
	}
	memcpy(c->in + c->in_len, p, n);
	c->in_len += n;
	return true;
}

/* Consume what c->in holds (after new bytes, or once c is no longer parked). */
void srv_drain(atp_stream_server *s, conn *c)
{
	uint32_t used = consume(s, c, c->in, c->in_len);
	if (c->state == C_CLOSING || c->state == C_FREE) {
		c->in_len = 0;
		return;
	}
	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
}

void srv_on_data(atp_stream_server *s, conn *c, const uint8_t *p, uint32_t n)
{
	c->last_recv_ms = front_now_ms(s->loop);
	s->stats.bytes_in += n;
	if (c->in_len || c->parked) {
		if (keep(s, c, p, n) && !c->parked)
			srv_drain(s, c);
	} else {
		uint32_t used = consume(s, c, p, n);
		if (used < n && (c->state == C_HELLO || c->state == C_STREAM))
			keep(s, c, p + used, n - used);
	}
	/* Held back: a short wait costs nothing, a long one stops reading the socket (TCP then pushes back). */
	if (c->parked && c->recv_armed && c->in_len > PARK_SLACK)
		srv_cancel_recv(s, c);
}

void srv_on_refused(void *ctx, const atp_engine_done *d)
{
	atp_stream_server *s = ctx;
	uint32_t id = atp_sources_find(s->sources, atp_str_of(d->source, strlen(d->source)));
	if (id == ATP_SOURCE_NONE || !s->owner[id])
		return;
	conn *c = &s->conns[s->owner[id] - 1];
	if (c->state == C_STREAM)
		add_refusal(s, c, d->seq, d->status);
}
