/*
 * atp/grpc_server.h — the gRPC API of order capture, over HTTP/2.
 *
 * Service atp.v1.Atp (fbs/atp.fbs; messages are FlatBuffers, so a stock
 * gRPC client with a pass-through bytes serializer calls it) and
 * grpc.health.v1.Health/Check (protobuf, its two messages coded by hand):
 *   - GetAtp(AtpQuery) -> AtpReply: every named location of the SKU (all
 *     of its locations when none is named, in location order) and
 *     network_atp, their sum. Read lock-free from the shards' tables
 *     (atp_engine_read_sku), never through the rings. NOT_FOUND when the
 *     SKU has no position at all; a named location the SKU never had
 *     answers zeros (version 0).
 *   - GetAtpBatch(AtpBatchQuery) -> AtpBatchReply: one AtpReply per query,
 *     in order; an unknown SKU gets an empty reply, not an error.
 *   - Reserve(ReserveRequest) -> ReserveReply: each line a RESERVE of its
 *     position in its shard (atomic there), all of them events of the
 *     internal source "@grpc"; the reply leaves only once the WAL records
 *     of every line are durable. reservation_id makes it idempotent: a
 *     retry answers the lines' first results with duplicate = true. A line
 *     naming a position that does not exist is NOT_FOUND (nothing of the
 *     request is applied: a lone line's shard refuses it, ATP_EVF_KNOWN;
 *     several lines are checked before any goes); ttl_ms > 0 makes the lines lapse that long
 *     after the engine's now; allow_partial confirms min(qty, atp).
 *   - Release(ReleaseRequest) -> ReleaseReply: every open line of the
 *     reservation made through Reserve (its lines carry
 *     ATP_EVF_RELEASABLE), in every shard, durably; found = some line was
 *     open. Lines reserved by RESERVE events over the TCP stream are
 *     released by their own RELEASE events.
 *   - Scan(ScanRequest) -> stream of PositionAtp: every position with a SKU
 *     after after_sku, in (sku, location) order, at most limit (0: all),
 *     as HTTP/2 flow control lets them go.
 *   - Subscribe(SubscribeRequest) -> stream of Delta: a sales channel's
 *     stream from the hub (atp/hub.h), from resume_token or from a full
 *     view, for as long as the client reads it; NOT_FOUND for an unknown
 *     channel (or one removed while streaming), INVALID_ARGUMENT for a
 *     damaged token, FAILED_PRECONDITION for a token of another data
 *     directory, RESOURCE_EXHAUSTED past the subscriber limit, UNAVAILABLE
 *     when the server drains.
 *   - Admin/Snapshot(SnapshotRequest) -> SnapshotReply: every shard writes
 *     a snapshot now (the SIGUSR1 of a running atpd); the reply leaves once
 *     they are durable, with the shard count and how long it took; the
 *     request's reason goes to the log. INTERNAL when writing failed (the
 *     engine then stops, as on any storage failure). With an
 *     authorization file, only identities granted `admin` may call it.
 * Status codes: INVALID_ARGUMENT for a bad message (the message names the
 * field), NOT_FOUND, RESOURCE_EXHAUSTED past a limit (in-flight calls,
 * message size, scans), UNAVAILABLE while draining, DEADLINE_EXCEEDED
 * once grpc-timeout passed (a Reserve may still have happened: retry it
 * under the same reservation_id), UNIMPLEMENTED for another method.
 *
 * HTTP/2 is libnghttp2's, driven by the front end's io_uring loop
 * (atp/loop.h: its thread is the engine's router); nghttp2 does
 * no I/O. Bounded: connections, concurrent streams per connection, calls
 * in flight, message size, header list size (SETTINGS and a hard cut),
 * CONTINUATION frames, stream resets per second (rapid reset), SETTINGS
 * frames per second, outbound control frames not read by the peer, time
 * to send the preface, idleness, and a peer not reading its replies.
 */
#ifndef ATP_GRPC_SERVER_H
#define ATP_GRPC_SERVER_H

#include "atp/engine.h"
#include "atp/loop.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atp_grpc_config {
	char listen[128];            /* "HOST:PORT"; port 0: any free port */
	uint32_t max_connections;
	uint32_t max_streams;        /* concurrent streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS) */
	uint32_t max_calls;          /* calls in flight, all connections; beyond: RESOURCE_EXHAUSTED */
	uint32_t max_message;        /* bytes of a request message, at most ATP_V1_MESSAGE_MAX */
	uint32_t max_header_list;    /* bytes of a request's header list (as HPACK counts them) */
	uint32_t max_reserve_lines;  /* lines of one ReserveRequest */
	uint32_t max_scans;          /* Scans streaming at once */
	uint32_t idle_ms;            /* a connection without a frame or a call for this long is closed */
	uint32_t send_timeout_ms;    /* a connection not taking our bytes for this long is reset */
	uint64_t fanout_busy_bytes_s; /* under heavy ingest, Subscribe streams together get at most this a second; 0: no limit */
	struct atp_hub *hub;         /* the channel stream (atp/hub.h) Subscribe serves; NULL: none */
	/* Admin/Snapshot asks the owner of the engine for a snapshot (then atp_grpc_server_snapshot_done); NULL: UNIMPLEMENTED. */
	void (*ask_snapshot)(void *ctx);
	void *admin_ctx;
	struct atp_dlq *dlq;         /* Admin/Redrive and Admin/Purge work on it; NULL: FAILED_PRECONDITION */
	const char *data_dir;        /* Admin/History replays it; NULL: FAILED_PRECONDITION */
	atp_core_config core;        /* ... with the shards' capacities */
} atp_grpc_config;

/* 127.0.0.1:7401, 1024 connections, 128 streams, 4096 calls, 4 MiB, 16 KiB, 256 lines, 4 scans, 600 s, 30 s, 8 MiB/s of fan-out under heavy ingest. */
atp_grpc_config atp_grpc_config_default(void);

typedef struct atp_grpc_server atp_grpc_server;

/* Listen, and ride the loop front (atp_loop_run turns it). NULL with err. */
atp_grpc_server *atp_grpc_server_create(atp_loop *front, const atp_grpc_config *cfg, char *err,
					size_t errlen);
uint16_t atp_grpc_server_port(const atp_grpc_server *g);
/*
 * TLS and authorization (atp/tls.h, atp/auth.h; owned by the caller, NULL:
 * none). tls applies to connections accepted from now on (ALPN h2). A
 * call's identity is its bearer token's (`authorization: Bearer TOKEN`,
 * looked up in auth) when it carries one, else its client certificate's.
 * With a client CA or an authorization file, a call without a valid one
 * is UNAUTHENTICATED; with an authorization file, a call its identity is
 * not granted (the method, or Subscribe's channel) is PERMISSION_DENIED.
 * Health/Check is open to all. Called again (SIGHUP) with an
 * authorization file, every Subscribe stream ends UNAVAILABLE ("resume"):
 * its client resubscribes from its token, authorized anew.
 */
struct atp_tls_ctx;
struct atp_auth;
void atp_grpc_server_set_security(atp_grpc_server *g, struct atp_tls_ctx *tls, const struct atp_auth *auth);
/*
 * Drain: no new connections, GOAWAY to every connection, new calls
 * UNAVAILABLE; the calls in flight finish (for at most two seconds of
 * loop turns); then every connection is closed and the server freed.
 */
void atp_grpc_server_shutdown(atp_grpc_server *g);

/*
 * The snapshot asked for by cfg.ask_snapshot was written (rc 0, taking
 * millis since the first waiting call asked) or failed (rc < 0): every
 * Admin/Snapshot call waiting is answered. Loop thread, outside a turn.
 */
void atp_grpc_server_snapshot_done(atp_grpc_server *g, int rc, uint64_t millis);

#define ATP_GRPC_METHODS 14          /* "unknown" (no such method, or refused before its headers), then the methods */
#define ATP_GRPC_STATUSES 17         /* gRPC status codes 0 (OK) .. 16 */
#define ATP_GRPC_LATENCY_BUCKETS 24  /* bucket b: answered within 2^b us of the call's headers (b = 23: or later) */

typedef struct atp_grpc_stats {
	uint64_t connections, refused_connections, calls, errors, reserve_lines;
	uint64_t fanout_held;        /* ms in which Subscribe streams were held back for heavy ingest */
	uint32_t open;
	/* Per method: replies by status, and the time from the call's first header to its reply (a stream's start, for Subscribe). */
	uint64_t replies[ATP_GRPC_METHODS][ATP_GRPC_STATUSES];
	uint64_t latency[ATP_GRPC_METHODS][ATP_GRPC_LATENCY_BUCKETS];
	uint64_t latency_ns_sum[ATP_GRPC_METHODS];
} atp_grpc_stats;

/* The name of method index m (< ATP_GRPC_METHODS): "unknown", "GetAtp", ... "Admin.Snapshot". */
const char *atp_grpc_method_name(unsigned m);

void atp_grpc_server_stats(const atp_grpc_server *g, atp_grpc_stats *out);

#ifdef __cplusplus
}
#endif

#endif
