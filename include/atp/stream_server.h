/*
 * atp/stream_server.h — the TCP event stream of WMS adapters, over io_uring.
 *
 * Protocol (fbs/event.fbs): every frame is a u32 little-endian length, then
 * one FlatBuffer (atp/wire_frame.h splits them). The client sends Hello{source}; the server answers
 * Welcome{durable_seq} (resume at durable_seq + 1). Source names starting
 * with '@' are the engine's own (atp/engine.h) and refused. The client then sends
 * EventBatch frames of that source's events (an event's source may be left
 * empty: the Hello's is meant); the server answers with Acks{durable_seq,
 * next_seq, refused} once what they cover is durable, one Ack covering as
 * many batches as completed meanwhile.
 *   - Duplicates (seq at or below what the source already sent) are
 *     acknowledged and skipped. The first event of a batch the engine
 *     refuses at the door (a gap, or a malformed event: its seq is not
 *     consumed) ends that batch: it is reported as (seq, code), next_seq
 *     says where the sender must resume, nothing after it is applied.
 *     Refusals of the shard (capacity, bucket bounds) consume their seq and
 *     are reported too. Each refusal is reported once, possibly an Ack
 *     after the durable_seq that covers it.
 *   - A newer connection naming the same source takes it over; the older
 *     gets a last Ack with error ATP_E_SUPERSEDED and is closed.
 *   - A frame that fails verification, breaks the protocol or a limit gets
 *     a last frame (Welcome before the Hello, Ack after it) with the error
 *     and a reason, and the connection is closed; nothing of that frame is
 *     applied; every other connection goes on.
 *
 * It rides the front end's loop (atp/loop.h), whose thread is the engine's
 * router: it must be the thread that calls every other engine function.
 * Multishot accept, multishot recv into the loop's provided buffers, one
 * send in flight per connection (acks coalesce meanwhile). Nothing is
 * allocated per message:
 * a connection's buffers are allocated when it says Hello and grow, at
 * most to the frame limit, only for frames split across reads.
 *
 * Backpressure: a connection whose batch the engine cannot take without
 * waiting (atp_engine_can_take), or whose unacknowledged bytes reached the
 * limit, stops being read (its recv is cancelled) until that clears.
 * Bounded memory: connections, frame size and per-connection queues are
 * all capped; a frame must complete within frame_timeout_ms of its first
 * byte, a connection that sends nothing for idle_ms is closed, and so is
 * one that does not take its acks for ack_timeout_ms.
 */
#ifndef ATP_STREAM_SERVER_H
#define ATP_STREAM_SERVER_H

#include "atp/deadletter.h"
#include "atp/engine.h"
#include "atp/limits.h"
#include "atp/loop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atp_stream_config {
	char listen[128];           /* "HOST:PORT" (IPv4, [IPv6] or a name); port 0: any free port */
	uint32_t max_connections;   /* beyond it a new connection gets Welcome{ATP_E_LIMIT} and is closed */
	uint32_t max_frame;         /* bytes of one frame, at most ATP_WIRE_MESSAGE_MAX */
	uint32_t max_batch;         /* events of one EventBatch, at most ATP_WIRE_BATCH_MAX */
	uint32_t max_unacked;       /* bytes of batches not yet acknowledged, per connection */
	uint32_t frame_timeout_ms;  /* a frame must arrive whole within this of its first byte */
	uint32_t idle_ms;           /* a connection silent for this long is closed */
	uint32_t ack_timeout_ms;    /* a connection not taking an ack for this long is closed */
	bool event_clock;           /* the engine's time follows the occurred_at of the events received */
	/*
	 * What a malformed event (atp_event_validate refuses it) does to its
	 * source: ATP_STREAM_STOP refuses it and its seq is not consumed (the
	 * feed waits for its sender); ATP_STREAM_DEADLETTER stores it in the
	 * dead-letter store (atp_stream_server_set_deadletters) durably, then
	 * consumes its seq (it is reported as refused, and the feed goes on);
	 * with the store full or failed, it stops after all, with a log line.
	 * on_invalid is every source's unless policies name it.
	 */
	int on_invalid;
	uint32_t n_policies;
	struct atp_stream_policy {
		char source[ATP_SOURCE_MAX + 1];
		int on_invalid;
	} policies[32];
} atp_stream_config;

enum { ATP_STREAM_STOP = 0, ATP_STREAM_DEADLETTER = 1 };

/* 127.0.0.1:7400, 1024 connections, 1 MiB frames, 8192 events, 8 MiB unacked, 10 s, 600 s, 30 s. */
atp_stream_config atp_stream_config_default(void);

typedef struct atp_stream_server atp_stream_server;

/* Listen, and ride the loop (atp_loop_run turns it). NULL with err. */
atp_stream_server *atp_stream_server_create(atp_loop *loop, const atp_stream_config *cfg, char *err, size_t errlen);
/* Dead letters go to q (owned by the caller, open while the server is), for the sources whose policy says so. */
void atp_stream_server_set_deadletters(atp_stream_server *s, atp_dlq *q);
/*
 * TLS and authorization (atp/tls.h, atp/auth.h; both owned by the caller,
 * NULL: none). tls applies to connections accepted from now on. With a
 * client CA or an authorization file, a Hello needs a client certificate
 * that verified (else Welcome{ATP_E_UNAUTHENTICATED}); with an
 * authorization file, its identity must be allowed the source (else
 * Welcome{ATP_E_FORBIDDEN}); nothing is applied and no other connection
 * is touched. Called again (SIGHUP), connections streaming as a source
 * their identity is no longer allowed are closed with ATP_E_FORBIDDEN.
 */
struct atp_tls_ctx;
struct atp_auth;
void atp_stream_server_set_security(atp_stream_server *s, struct atp_tls_ctx *tls, const struct atp_auth *auth);
/* The port it listens on (useful with port 0). */
uint16_t atp_stream_server_port(const atp_stream_server *s);
/*
 * Stop: no more reads or accepts, wait until everything accepted is
 * durable, send every connection its last Ack (error ATP_E_SHUTDOWN, with
 * its final durable_seq), turning the loop until they are out (a second at
 * most), close them all, leave the loop and free the server. The engine
 * and the loop stay. 0, or ATP_E_IO.
 */
int atp_stream_server_shutdown(atp_stream_server *s);

typedef struct atp_stream_stats {
	uint64_t accepted, refused_connections, closed;
	uint64_t frames, events, bytes_in, acks;
	uint32_t open;              /* connections now */
	uint64_t refused[29];       /* events refused, by -status (ATP_E_GAP = 1 ..; 0: any other) */
	uint64_t deadlettered;      /* events stored as dead letters, their seq consumed */
	uint64_t deadletter_full;   /* malformed events refused (the source stopped) because the store was full or failed */
} atp_stream_stats;

void atp_stream_server_stats(const atp_stream_server *s, atp_stream_stats *out);

#ifdef __cplusplus
}
#endif

#endif
