/*
 * stream_client.h — the sending side of the TCP event stream (see
 * atp/stream_server.h for the protocol): `atpctl send` and the load
 * generator.
 *
 * Each source's events are encoded once, up front, into frames laid end
 * to end in one buffer, so sending is one send() of many frames from that
 * buffer, and a resend after a reconnect re-encodes nothing. One
 * connection per source, all driven by one poll() loop with non-blocking
 * sockets; at most `window` bytes per connection await their Ack. A frame
 * may wait for another source's events to be durable first
 * (stream_source_add_after): how `atpctl send` keeps a file's order across
 * its sources.
 *
 * Guarantees: after any connection loss (reset, the server killed and
 * restarted, a last frame with an error) the client reconnects with
 * backoff and resumes from the Welcome's durable_seq (the first frame
 * holding a seq above it); stream_send() returns 0 only once every
 * frame's events are acknowledged as durable (or refused by the shard,
 * which it counts and reports). A refusal that stops the source (a gap, a
 * malformed event), a last frame blaming the client (a protocol error, a
 * limit, another connection taking the source over) or no progress for
 * `timeout_s` returns -1.
 */
#ifndef ATP_STREAM_CLIENT_H
#define ATP_STREAM_CLIENT_H

#include "atp/event.h"
#include "atp/limits.h"
#include "histogram.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct stream_frame {
	uint64_t off;      /* of the length prefix in the source's bytes */
	uint32_t len;      /* prefix included */
	uint32_t events;
	uint64_t cover;    /* the highest seq in the frame */
	uint64_t sent_ns;  /* when its last byte went to the socket */
	uint64_t due_ns;   /* paced sending: not before this long after stream_options.t0_ns */
	uint64_t acked_ns; /* when its Ack came (another thread may read it, atomically); 0 before */
	uint32_t after_src;  /* ordered sending: not before source after_src (an index of stream_send's) is */
	uint64_t after_seq;  /* durable through after_seq; after_src UINT32_MAX: no such wait */
} stream_frame;

typedef struct stream_source {
	char name[ATP_SOURCE_MAX + 1];
	uint8_t *bytes;
	size_t len, cap;
	stream_frame *frames;
	uint32_t n_frames, cap_frames;
	uint64_t last_seq;  /* the highest seq of all frames */
} stream_source;

/* Append one EventBatch buffer (without prefix) holding `events` events, the highest seq `cover`. -1: no memory. */
int stream_source_add(stream_source *s, const void *buf, uint32_t len, uint32_t events, uint64_t cover);
/* The same, to be sent no sooner than due_ns after the start (stream_options.paced). */
int stream_source_add_due(stream_source *s, const void *buf, uint32_t len, uint32_t events, uint64_t cover,
			  uint64_t due_ns);
/* The same, to be sent only once source after_src is durable through after_seq (ordered sending). */
int stream_source_add_after(stream_source *s, const void *buf, uint32_t len, uint32_t events, uint64_t cover,
			    uint32_t after_src, uint64_t after_seq);
void stream_source_free(stream_source *s);

typedef struct stream_options {
	const char *host, *port;
	uint32_t window;      /* bytes in flight per connection */
	double timeout_s;     /* without any progress */
	bool progress;        /* "durable SOURCE SEQ" lines on stdout as Acks come */
	bool paced;           /* a frame goes out only once it is due (stream_frame.due_ns after t0_ns) */
	uint32_t reconnect_every;  /* drop the connection after this many frames from it, and resume (0: never) */
	uint64_t t0_ns;       /* paced: the start, CLOCK_MONOTONIC */
} stream_options;

typedef struct stream_result {
	uint64_t events, frames, refused, reconnects;
	double seconds;
	double started, finished;  /* CLOCK_REALTIME, s: to add up several senders */
	atp_histogram latency;  /* frame written -> its Ack, in ns, counted once per event of the frame */
} stream_result;

/* Events acknowledged so far (another thread may read it while stream_send() runs). */
static inline uint64_t stream_result_events(const stream_result *r)
{
	return __atomic_load_n(&r->events, __ATOMIC_RELAXED);
}

int stream_send(stream_source *sources, uint32_t n, const stream_options *o, stream_result *r);

/*
 * A source's durable seq as atpd's Welcome says (a Hello, then the
 * connection closes): where events of a source that makes them up as it
 * goes (atpctl reconcile) continue. 0 or -1 with err.
 */
int stream_durable_seq(const char *host, const char *port, const char *source, uint64_t *seq, char *err,
		       size_t errlen);

#endif
