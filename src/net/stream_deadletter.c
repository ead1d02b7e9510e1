/*
 * stream_deadletter.c — the event stream's dead letters (on_invalid =
 * deadletter, see atp/stream_server.h): a malformed event is stored in the
 * dead-letter store, durably, and only then its seq is consumed
 * (atp_engine_skip), so that an Ack covering it can never outrun the store.
 * The same (source, seq) arriving again (a resend after a restart) is
 * found in the store and skipped without a second entry. One fdatasync per
 * dead letter, in the loop's thread: they are rare, and the store's bound
 * caps what a hostile sender can make the loop wait for.
 */
#include "stream_internal.h"

#include "atp/log.h"
#include "atp/wire_event.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void atp_stream_server_set_deadletters(atp_stream_server *s, atp_dlq *q)
{
	s->dlq = q;
}

int srv_policy_of(const atp_stream_server *s, atp_str source)
{
	for (uint32_t i = 0; i < s->cfg.n_policies; i++)
		if (strlen(s->cfg.policies[i].source) == source.len &&
		    memcmp(s->cfg.policies[i].source, source.ptr, source.len) == 0)
			return s->cfg.policies[i].on_invalid;
	return s->cfg.on_invalid;
}

bool srv_dead_letterable(int code)
{
	return code <= ATP_E_TYPE && code >= ATP_E_EVENT_ID; /* atp_event_validate's codes */
}

/* The event as a one-event EventBatch into buf; its length, or 0 when it does not fit. */
static uint32_t encode(const atp_event *ev, const atp_wire_event_time *t, uint8_t *mem, size_t cap, const uint8_t **out)
{
	atp_fb_builder b;
	size_t n = 0;
	atp_fb_builder_init(&b, mem, cap);
	atp_fb_ref one = atp_wire_build_event(&b, ev, *t);
	*out = atp_fb_finish(&b, atp_wire_build_event_batch(&b, &one, 1), NULL, &n);
	return *out && n <= ATP_DLQ_EVENT_MAX ? (uint32_t)n : 0;
}

int srv_deadletter(atp_stream_server *s, const atp_event *ev, const atp_wire_event_time *t, int code)
{
	uint64_t expected;
	if (atp_dlq_find(s->dlq, ev->source, ev->seq)) /* stored before a restart: its seq is consumed again */
		return atp_engine_skip(s->e, ev->source, ev->seq, code, &expected);
	static uint8_t mem[ATP_DLQ_EVENT_MAX * 2] __attribute__((aligned(8)));
	const uint8_t *bytes;
	uint32_t len = encode(ev, t, mem, sizeof(mem), &bytes);
	char id[24];
	atp_str event_id = ev->event_key;
	if (!event_id.len && ev->event_id)
		event_id = atp_str_of(id, (size_t)snprintf(id, sizeof(id), "%" PRIu64, ev->event_id));
	if (event_id.len > ATP_EVENT_KEY_MAX)
		event_id.len = ATP_EVENT_KEY_MAX; /* a key past its limit is kept in the event's bytes whole */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t entry;
	int rc = len ? atp_dlq_add(s->dlq, (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000, ev->source,
				   ev->seq, code, event_id, bytes, len, &entry)
		     : -EINVAL;
	if (rc == 0)
		rc = atp_dlq_sync(s->dlq);
	if (rc < 0) {
		s->stats.deadletter_full++;
		if (s->stats.deadletter_full == 1 || rc != -ENOSPC)
			atp_log(ATP_LOG_ERROR,
				"dead letter refused (%s): source %.*s stops at seq %" PRIu64 " (%s) as under on_invalid = stop",
				rc == -ENOSPC ? "the dead-letter store is full: deadletter_max" : strerror(-rc),
				(int)ev->source.len, ev->source.ptr, ev->seq, atp_status_name(code));
		return code;
	}
	s->stats.deadlettered++;
	atp_log(ATP_LOG_WARN, "dead letter %" PRIu64 ": source %.*s seq %" PRIu64 " (event id %.*s): %s, %s", entry,
		(int)ev->source.len, ev->source.ptr, ev->seq, (int)event_id.len, event_id.ptr ? event_id.ptr : "",
		atp_status_name(code), atp_status_message(code));
	return atp_engine_skip(s->e, ev->source, ev->seq, code, &expected);
}
