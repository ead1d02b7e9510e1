/*
 * stream_internal.h — what the two halves of the TCP stream server share:
 * stream_server.c (the io_uring loop: accept, receive, send, timers,
 * closing) and stream_frames.c (what the bytes mean: framing, the Hello,
 * EventBatches into the engine, refusals, the Acks and Welcomes built).
 * Both run in the one thread of the loop.
 */
#ifndef ATP_STREAM_INTERNAL_H
#define ATP_STREAM_INTERNAL_H

#include "front.h"
#include "live.h"
#include "atp/sources.h"
#include "atp/status.h"
#include "atp/tls.h"
#include "atp/auth.h"
#include "atp/stream_server.h"
#include "atp/wire_event.h"

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#define OUT_BYTES 4096u            /* a connection's send buffer: one Ack */
#define TOUT_BYTES (16u << 10)     /* under TLS, the records being sent */
#define ACK_REFUSALS 64u           /* refusals per Ack; the rest wait for the next */
#define MAX_REFUSALS 1024u         /* queued refusals per connection */
#define FIFO_MAX 1024u             /* unacknowledged batches per connection */
#define PARK_SLACK (256u << 10)    /* read on this far while held back, before the receive is cancelled */
#define IN_SLACK (8u << 20)        /* what may still arrive after a connection stopped being read */
#define SWEEP_MS 100
#define LINGER_MS 2000             /* a closed connection's last bytes get this long to leave */
#define WATCHDOG_MS 500            /* a receive silent this long with bytes waiting is renewed */

enum { OP_ACCEPT, OP_RECV, OP_SEND, OP_CANCEL, OP_CANCEL_FD };  /* + the base the loop gave the server */
enum { C_FREE, C_HELLO, C_STREAM, C_CLOSING, C_LINGER };
enum { FRAME_DONE, FRAME_PARK, FRAME_CLOSED };

typedef struct unacked {
	uint64_t cover;  /* the batch is acknowledged once durable_seq reaches this */
	uint32_t bytes;
} unacked;

typedef struct conn {
	int fd;
	uint32_t gen;                /* of the connection in this slot */
	uint32_t rgen;               /* of its receive: armed how many times */
	uint8_t state;
	bool recv_armed, parked, sending, want_ack;
	bool last_queued;            /* C_CLOSING: the last frame is built (and sent once out is free) */
	uint32_t source;             /* id in the server's source table, ATP_SOURCE_NONE before Hello */
	uint8_t *in;                 /* bytes received and not yet consumed: at most one partial frame, */
	uint32_t in_len, in_cap;     /* more only while the connection is parked */
	uint64_t frame_start_ms;     /* first byte of the frame being received, 0: none */
	uint64_t last_recv_ms;       /* the last data */
	uint64_t last_cqe_ms;        /* the last completion of its receive */
	bool watchdog_said;
	uint64_t linger_until_ms;    /* C_LINGER: reset if the peer has not taken our last bytes by then */
	uint64_t send_start_ms;
	uint8_t *out;                /* OUT_BYTES, allocated once per slot */
	uint32_t out_len, out_sent;
	uint64_t acked_seq;          /* durable_seq of the last Ack (or the Welcome) */
	uint64_t next_seq;
	atp_wire_refusal *refusals;  /* MAX_REFUSALS, allocated on the first refusal */
	uint32_t n_refusals;
	uint64_t refusals_lost;
	unacked fifo[FIFO_MAX];
	uint32_t fifo_head, fifo_len;
	uint64_t unacked_bytes;
	bool deadletter;             /* its source's malformed events go to the dead-letter store */
	atp_tls *tls;                /* NULL: plaintext */
	uint8_t *tout;               /* TOUT_BYTES (TLS), allocated once per slot: records being sent */
	uint32_t tout_len, tout_sent;
	int close_error;             /* a last frame is due with this error, then the close */
	char close_reason[160];
} conn;

struct atp_stream_server {
	atp_loop *loop;
	unsigned op_base;            /* the first of the loop's operation codes it owns */
	atp_engine *e;
	atp_stream_config cfg;
	int listen_fd;
	uint16_t port;
	bool accept_armed, stopping;
	conn *conns;
	uint32_t *free_slots, n_free;
	live_set used;               /* the slots not C_FREE */
	atp_sources *sources;        /* source name -> id */
	uint32_t *owner;             /* source id -> slot + 1 of the connection streaming it, 0: none */
	atp_event *events;           /* one decoded batch */
	atp_wire_event_time *times;
	uint8_t *scratch;            /* the FlatBuffers builder's memory */
	uint64_t last_sweep_ms;
	uint32_t next_first;         /* service()'s round-robin start */
	bool waiting;                /* after service(): some connection awaits durability or room */
	int failed;
	atp_dlq *dlq;                /* NULL: every source stops at a malformed event */
	atp_tls_ctx *tls;            /* NULL: plaintext */
	const atp_auth *auth;        /* NULL: no authorization file */
	atp_stream_stats stats;
};

/* The loop's side (stream_server.c). */
uint32_t srv_slot(const atp_stream_server *s, const conn *c);
void srv_start_send(atp_stream_server *s, conn *c);
void srv_cancel_recv(atp_stream_server *s, conn *c);
/* Close c after a last frame with this error and reason; nothing more of its input is read or applied. */
void srv_fail(atp_stream_server *s, conn *c, int error, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Whether c's client may send as source name: ATP_OK, or
 * ATP_E_UNAUTHENTICATED / ATP_E_FORBIDDEN with why (logged and counted).
 */
int srv_authorize(atp_stream_server *s, const conn *c, atp_str name, char *why, size_t whylen);

/* Dead letters (stream_deadletter.c). The policy of a source (ATP_STREAM_STOP or ATP_STREAM_DEADLETTER). */
int srv_policy_of(const atp_stream_server *s, atp_str source);
/* Whether a refusal's code is one a dead letter takes (a malformed event's). */
bool srv_dead_letterable(int code);
/*
 * Store ev (refused with code) as a dead letter and consume its seq: ATP_OK
 * (or ATP_DUPLICATE/ATP_E_GAP/ATP_E_IO from the engine), or code itself when
 * the store could not take it (full or failed: the source stops after all).
 */
int srv_deadletter(atp_stream_server *s, const atp_event *ev, const atp_wire_event_time *t, int code);

/* The protocol's side (stream_frames.c). */
atp_str srv_source_of(const atp_stream_server *s, const conn *c);
/* The durable seq of c's source (0 before its Hello). */
uint64_t srv_durable_of(const atp_stream_server *s, const conn *c);
/* Build the Ack (or, before the Hello, the Welcome) due on c into its out buffer. */
void srv_build_reply(atp_stream_server *s, conn *c, uint64_t durable);
/* Bytes received on c: handled as whole frames, a partial one kept. */
void srv_on_data(atp_stream_server *s, conn *c, const uint8_t *p, uint32_t n);
/* Consume what c->in holds (after new bytes, or once c is no longer held back). */
void srv_drain(atp_stream_server *s, conn *c);
/* The engine refused an event of a stream's source: the refusal goes to the connection of its source. */
void srv_on_refused(void *ctx, const atp_engine_done *d);

#endif
