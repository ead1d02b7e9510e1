/*
 * grpc_internal.h — what the three parts of the gRPC server share:
 * grpc_server.c (connections on the io_uring loop, nghttp2 sessions fed
 * and drained, limits and timers of connections, set-up and drain),
 * grpc_calls.c (the call pool, nghttp2's callbacks, gRPC framing,
 * deadlines) and grpc_methods.c (what each method does with the engine,
 * and the replies it builds). One thread: the loop's.
 */
#ifndef ATP_GRPC_INTERNAL_H
#define ATP_GRPC_INTERNAL_H

#include "front.h"
#include "live.h"
#include "atp/deadletter.h"
#include "atp/auth.h"
#include "atp/grpc_server.h"
#include "atp/tls.h"
#include "atp/wire_api.h"

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdint.h>

/* gRPC status codes */
enum {
	G_OK = 0,
	G_UNKNOWN = 2,
	G_INVALID_ARGUMENT = 3,
	G_DEADLINE_EXCEEDED = 4,
	G_NOT_FOUND = 5,
	G_PERMISSION_DENIED = 7,
	G_FAILED_PRECONDITION = 9,
	G_RESOURCE_EXHAUSTED = 8,
	G_UNIMPLEMENTED = 12,
	G_INTERNAL = 13,
	G_UNAVAILABLE = 14,
	G_UNAUTHENTICATED = 16,
};

enum method { M_NONE, M_GET_ATP, M_GET_ATP_BATCH, M_RESERVE, M_RELEASE, M_SCAN, M_HEALTH, M_SUBSCRIBE, M_SNAPSHOT,
	      M_REDRIVE, M_PURGE, M_DEAD_LETTERS, M_HISTORY, M_GET_ATP_PROFILE };

enum call_state {
	CALL_FREE,
	CALL_RECV,     /* its request is arriving */
	CALL_QUEUED,   /* waiting for room in the engine's rings */
	CALL_WAIT,     /* its events are in the engine, waiting for durability */
	CALL_REPLY,    /* the response is submitted (or being streamed) */
};

#define API_SOURCE "@grpc"

enum { H_FREE, H_OPEN, H_CLOSING };

/* One HTTP/2 connection: its socket on the loop and its nghttp2 session. */
typedef struct h2conn {
	struct atp_grpc_server *g;
	int fd;
	uint32_t gen;
	uint8_t state;              /* H_* */
	bool recv_armed, sending, dirty;
	nghttp2_session *session;
	uint8_t *out;               /* what nghttp2 produced, being sent */
	uint32_t out_len, out_cap, out_sent;
	uint64_t opened_ms, last_active_ms, send_start_ms, closing_since_ms;
	uint64_t settings_second;
	uint32_t settings_frames;
	bool preface_seen;
	uint32_t calls;             /* calls open on it */
	atp_tls *tls;               /* NULL: plaintext */
	uint8_t *tout;              /* TOUT_BYTES (TLS), allocated once per slot: records being sent */
	uint32_t tout_len, tout_sent;
	/* The last bearer token seen on it, and whose it is under token_auth (a cache: one hash per token). */
	const atp_auth *token_auth;
	int token_id;
	uint32_t token_len;
	uint8_t token[128];
} h2conn;

#define TOUT_BYTES (64u << 10)

/* What a Reserve line or a Release shard came back with. */
typedef struct line_done {
	int64_t qty;
	int32_t status;
	uint32_t flags;
	uint32_t date;   /* RESERVE: promised against supply for this day (0: now, or not) */
} line_done;

typedef struct scan_ref {
	atp_str sku, location;   /* point into the engine's tables */
	uint32_t shard;
	uint32_t id;
} scan_ref;

typedef struct call {
	uint32_t gen;              /* +1 each time the slot is freed */
	uint8_t state;             /* enum call_state */
	uint8_t method;            /* enum method */
	bool ct_ok;                /* content-type application/grpc */
	bool bad_header;
	bool too_big;
	h2conn *conn;
	int32_t stream_id;
	uint32_t header_bytes;
	uint64_t deadline_ms;      /* 0: none */
	uint64_t start_ns;         /* its first header, monotonic */
	uint8_t prefix[5];         /* the request's gRPC message prefix */
	uint32_t prefix_len;
	uint32_t body_bytes;       /* after the prefix, all of them */
	uint8_t *msg;              /* the request message, 8-aligned; msg_len <= msg_cap */
	uint32_t msg_len, msg_cap;
	uint8_t *out;              /* the response's DATA payload: prefixed messages */
	uint32_t out_len, out_cap, out_sent;
	int status;                /* the trailers' grpc-status */
	char message[160];         /* and grpc-message */
	/* Reserve and Release */
	line_done *lines;          /* per line (Reserve) or per shard (Release) */
	uint32_t n_lines, lines_pending;
	uint32_t lines_cap;
	/* Scan */
	scan_ref *scan;
	uint32_t scan_n, scan_next;
	/* Subscribe */
	struct atp_hub_sub *sub;
	int ident;                 /* its identity (atp/auth.h) once authorized; ATP_AUTH_NONE: none */
	int8_t token;              /* 0: no bearer token; 1: one of ident; -1: an unknown one */
	bool deferred;             /* its data provider said "nothing now": resumed when the hub has more */
	bool ending;               /* its stream ends with status and message after what is out */
} call;

/* A seq of the API source in flight: the call and what it stands for. */
typedef struct pending {
	uint64_t seq;              /* 0: free */
	uint32_t call;
	uint32_t gen;
	uint32_t index;            /* the line (Reserve) or the shard (Release) */
} pending;

typedef struct grpc_history_job grpc_history_job;

/* A dead letter's redrive in flight (grpc_deadletters.c): seq of "@dlq" -> entry id; seq 0: free. */
#define REDRIVING_MAX 1024u
typedef struct grpc_redrive {
	uint64_t seq, id;
} grpc_redrive;

struct atp_grpc_server {
	atp_loop *front;
	unsigned op_base;           /* the first of the loop's operation codes it owns (front.h) */
	atp_engine *e;
	atp_grpc_config cfg;
	int listen_fd;
	uint16_t port;
	bool accept_armed, draining;
	h2conn *conns;
	uint32_t *free_conns, n_free_conns;
	live_set live_conns;        /* the connections not H_FREE */
	call *calls;               /* max_calls of them: beyond, a call is answered RESOURCE_EXHAUSTED at once */
	uint32_t n_calls_total;
	uint32_t *free_calls, n_free_calls, calls_busy;
	live_set live_calls;        /* the calls not CALL_FREE */
	uint64_t *queue;           /* calls waiting for room in the rings: gen << 32 | index */
	uint32_t queue_head, queue_len;
	pending *pending;          /* PENDING_MAX, by seq % PENDING_MAX */
	uint64_t next_seq;         /* of the API source */
	uint32_t scans;
	uint32_t waiting;          /* calls in CALL_WAIT */
	uint64_t msg_bytes;        /* request buffers held by calls, at most MSG_BYTES_MAX */
	uint32_t *subscribers;     /* calls of Subscribe streaming (indices), n_subscribers of them */
	uint32_t n_subscribers;
	uint32_t sub_first;        /* where the next wake starts among them (turns, for fairness) */
	uint64_t fanout_ms;        /* the ms fanout_left is of (the allowance under heavy ingest: grpc_subscribe.c) */
	uint64_t fanout_left;
	bool fanout_busy;          /* and whether it is heavy ingest's */
	uint64_t fanout_held_ms;   /* the last ms counted in stats.fanout_held */
	h2conn **dirty;            /* connections with something to send this turn */
	uint32_t n_dirty;
	uint8_t *scratch;          /* the FlatBuffers builder's memory: one reply */
	grpc_redrive redriving[REDRIVING_MAX]; /* dead letters redriven, not yet completed: by seq of "@dlq" */
	grpc_history_job *history;   /* the Admin/History running, NULL: none */
	atp_engine_position *positions;  /* ATP_V1_LIST_MAX: one query's positions */
	bool release_again;        /* some Release has a shard with open lines left */
	atp_tls_ctx *tls;          /* NULL: plaintext */
	const atp_auth *auth;      /* NULL: no authorization file */
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	uint64_t last_sweep_ms;
	atp_grpc_stats stats;
};

#define PENDING_MAX (1u << 16)
#define MSG_BYTES_MAX (256ull << 20)
#define SCRATCH_BYTES (ATP_V1_MESSAGE_MAX + 4096)

/* The connections' side (grpc_server.c). */
uint32_t grpc_conn_index(const atp_grpc_server *g, const h2conn *hc);
/* hc has something to send: it goes out at the end of this turn. */
void grpc_conn_mark_dirty(atp_grpc_server *g, h2conn *hc);
/* Append a and then b to the connection's output (grown as needed); false when out of memory. */
bool grpc_conn_out_append(h2conn *hc, const uint8_t *a, size_t an, const uint8_t *b, size_t bn);
static inline uint64_t grpc_now_ms(const atp_grpc_server *g)
{
	return front_now_ms(g->front);
}

/* The calls' side (grpc_calls.c): the call pool, gRPC framing, nghttp2's callbacks, deadlines. */
void grpc_call_set_callbacks(nghttp2_session_callbacks *cbs);
uint32_t grpc_call_index(const atp_grpc_server *g, const call *c);
/* End a call (its stream closed, or its connection). */
void grpc_call_free(atp_grpc_server *g, call *c);
/* Calls waiting for room in the rings, tried again. */
void grpc_call_run_queue(atp_grpc_server *g);
/* Calls past their deadline answered DEADLINE_EXCEEDED (a stream in progress is reset). */
void grpc_call_sweep(atp_grpc_server *g);
/* Answer c: its out holds the messages (none for an error), status and message say how it ended (an OK has no message). */
void grpc_call_respond(atp_grpc_server *g, call *c, int status, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Append a message (the gRPC prefix is added) to c's response; false when out of memory. */
bool grpc_call_append(call *c, const uint8_t *msg, uint32_t len);
/* Put c in the queue of calls waiting for room in the engine's rings. */
void grpc_call_enqueue(atp_grpc_server *g, call *c);

/* The methods' side (grpc_methods.c). */
/* The request of c is whole and valid gRPC framing: run its method. */
void grpc_method_dispatch(atp_grpc_server *g, call *c);
/* A queued call: try again now that the rings may have room; false if it must wait on. */
bool grpc_method_retry(atp_grpc_server *g, call *c);
/* A completion of the API source. */
void grpc_method_on_done(atp_grpc_server *g, const atp_engine_done *d);
/* The request verified by rule (else INVALID_ARGUMENT naming the field, and NULL); a reply built into b, sent. */
const uint8_t *grpc_method_verify(atp_grpc_server *g, call *c, const atp_fb_table_rule *rule, const char *what);
void grpc_method_reply(atp_grpc_server *g, call *c, atp_fb_builder *b, atp_fb_ref root);
/* Admin/Redrive and Admin/Purge (grpc_deadletters.c), and the completions of redriven events (source "@dlq"). */
void grpc_method_redrive(atp_grpc_server *g, call *c);
void grpc_method_purge(atp_grpc_server *g, call *c);
void grpc_method_dead_letters(atp_grpc_server *g, call *c);
/* Admin/History (grpc_history.c): the replay runs in a thread; poll answers the call once it is done (wait: join it). */
void grpc_method_history(atp_grpc_server *g, call *c);
/* GetAtpProfile (grpc_profile.c). */
void grpc_method_profile(atp_grpc_server *g, call *c);
void grpc_history_poll(atp_grpc_server *g, bool wait);
void grpc_deadletters_on_done(atp_grpc_server *g, const atp_engine_done *d);
/* Once per turn: Release rounds that must go again. */
void grpc_method_after_turn(atp_grpc_server *g);
/* A Scan's next messages into c->out (up to about want bytes); false when the scan is over. */
bool grpc_method_scan_more(atp_grpc_server *g, call *c, uint32_t want);
/* Release what a call's method holds (scan arrays, line tables, a subscription) when the call ends. */
void grpc_method_release(atp_grpc_server *g, call *c);

/* Subscribe (grpc_subscribe.c). */
void grpc_method_subscribe(atp_grpc_server *g, call *c);
/* A Subscribe's next messages into c->out (about want bytes); false when the stream is over (c->status says how). */
bool grpc_method_subscribe_more(atp_grpc_server *g, call *c, uint32_t want);
/* Once per turn: streams waiting for messages that the hub now has are resumed. */
void grpc_method_subscribe_wake(atp_grpc_server *g);
/* Every Subscribe ends with status and message (draining). */
void grpc_method_subscribe_end_all(atp_grpc_server *g, int status, const char *message);
void grpc_method_subscribe_release(atp_grpc_server *g, call *c);

#endif
