/*
 * grpc_calls.c — the calls of the gRPC server (atp/grpc_server.h): a fixed
 * pool of call slots, each tied to one HTTP/2 stream from its HEADERS to its
 * close (its generation changes when it is freed, so an engine completion
 * for a call that went away is ignored); nghttp2's callbacks that read a
 * request (headers, the length-prefixed message into an aligned buffer, the
 * limits); gRPC framing of the response (DATA of prefixed messages, then
 * trailers; Trailers-Only for an error); deadlines. Runs in the loop's thread.
 */
#define _GNU_SOURCE
#include "grpc_internal.h"
#include "atp/log.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SETTINGS_PER_SECOND 100     /* SETTINGS frames a peer may send per second */

uint32_t grpc_call_index(const atp_grpc_server *g, const call *c)
{
	return (uint32_t)(c - g->calls);
}

static call *call_new(atp_grpc_server *g, h2conn *hc, int32_t stream_id)
{
	if (g->n_free_calls == 0)
		return NULL;
	call *c = &g->calls[g->free_calls[--g->n_free_calls]];
	live_add(&g->live_calls, grpc_call_index(g, c));
	c->state = CALL_RECV;
	c->method = M_NONE;
	c->ct_ok = c->bad_header = c->too_big = false;
	c->conn = hc;
	c->stream_id = stream_id;
	c->header_bytes = 0;
	c->deadline_ms = 0;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	c->start_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	c->prefix_len = c->body_bytes = c->msg_len = 0;
	c->out_len = c->out_sent = 0;
	c->status = G_OK;
	c->message[0] = 0;
	c->n_lines = c->lines_pending = 0;
	c->scan_n = c->scan_next = 0;
	c->sub = NULL;
	c->ident = ATP_AUTH_NONE;
	c->token = 0;
	c->deferred = c->ending = false;
	g->calls_busy++;
	hc->calls++;
	g->stats.calls++;
	return c;
}

void grpc_call_free(atp_grpc_server *g, call *c)
{
	if (c->state == CALL_FREE)
		return;
	if (c->state == CALL_WAIT)
		g->waiting--;
	grpc_method_release(g, c);
	if (c->msg_cap > (64u << 10)) {
		g->msg_bytes -= c->msg_cap;
		free(c->msg);
		c->msg = NULL;
		c->msg_cap = 0;
	}
	if (c->out_cap > (64u << 10)) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	c->state = CALL_FREE;
	c->gen++;
	c->conn->calls--;
	c->conn = NULL;
	g->calls_busy--;
	g->free_calls[g->n_free_calls++] = grpc_call_index(g, c);
	live_del(&g->live_calls, grpc_call_index(g, c));
}

void grpc_call_enqueue(atp_grpc_server *g, call *c)
{
	c->state = CALL_QUEUED;
	uint32_t cap = g->n_calls_total;
	g->queue[(g->queue_head + g->queue_len++) % cap] = (uint64_t)c->gen << 32 | grpc_call_index(g, c);
}

void grpc_call_run_queue(atp_grpc_server *g)
{
	uint32_t cap = g->n_calls_total;
	while (g->queue_len) {
		uint64_t q = g->queue[g->queue_head];
		call *c = &g->calls[(uint32_t)q];
		if (c->state == CALL_QUEUED && c->gen == (uint32_t)(q >> 32) && !grpc_method_retry(g, c))
			return;  /* still no room: it keeps its place */
		g->queue_head = (g->queue_head + 1) % cap;
		g->queue_len--;
	}
}

bool grpc_call_append(call *c, const uint8_t *msg, uint32_t len)
{
	if (c->out_len + 5 + len > c->out_cap) {
		uint32_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + 5 + len)
			cap *= 2;
		uint8_t *p = realloc(c->out, cap);
		if (!p)
			return false;
		c->out = p;
		c->out_cap = cap;
	}
	uint8_t *w = c->out + c->out_len;
	w[0] = 0;
	w[1] = (uint8_t)(len >> 24);
	w[2] = (uint8_t)(len >> 16);
	w[3] = (uint8_t)(len >> 8);
	w[4] = (uint8_t)len;
	memcpy(w + 5, msg, len);
	c->out_len += 5 + len;
	return true;
}

/* grpc-message is percent-encoded: bytes outside printable ASCII, and '%'. */
static size_t percent_encode(char *dst, size_t cap, const char *src)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	for (; *src && n + 4 < cap; src++) {
		unsigned char ch = (unsigned char)*src;
		if (ch < 0x20 || ch > 0x7e || ch == '%') {
			dst[n++] = '%';
			dst[n++] = hex[ch >> 4];
			dst[n++] = hex[ch & 15];
		} else {
			dst[n++] = (char)ch;
		}
	}
	dst[n] = 0;
	return n;
}

#define NV(name, value, vlen) \
	{ (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, (vlen), NGHTTP2_NV_FLAG_NO_COPY_NAME }

static int submit_trailers(call *c, bool with_status_line)
{
	char status[2], message[sizeof(c->message) * 3 + 1];
	assert(c->status >= 0 && c->status <= 16);
	int sl = c->status < 10 ? 1 : 2;
	status[0] = (char)(c->status < 10 ? '0' + c->status : '1');
	status[1] = (char)('0' + c->status % 10);
	size_t ml = percent_encode(message, sizeof(message), c->message);
	nghttp2_nv nv[] = {
		NV(":status", "200", 3),
		NV("content-type", "application/grpc", 16),
		NV("grpc-status", status, (size_t)sl),
		NV("grpc-message", message, ml),
	};
	size_t skip = with_status_line ? 0 : 2, n = (ml ? 4 : 3) - skip;
	if (with_status_line)
		return nghttp2_submit_response(c->conn->session, c->stream_id, nv, n, NULL);
	return nghttp2_submit_trailer(c->conn->session, c->stream_id, nv + skip, n);
}

/*
 * A response's DATA: read_body() says how many bytes of the call's out go
 * in the next frame, and send_data() appends the frame's header and those
 * bytes to the connection's output, where nghttp2 would otherwise have
 * copied them first into a frame of its own.
 */
static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
			 uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	(void)session;
	(void)stream_id;
	(void)buf;
	h2conn *hc = user_data;
	call *c = source->ptr;
	bool more = false;
	if (c->method == M_SUBSCRIBE) {
		more = c->out_sent < c->out_len || grpc_method_subscribe_more(hc->g, c, (uint32_t)length);
		if (more && c->out_len == 0) {
			c->deferred = true;  /* grpc_method_subscribe_wake() resumes it */
			return NGHTTP2_ERR_DEFERRED;
		}
	} else if (c->method == M_SCAN && c->out_sent == c->out_len) {
		c->out_len = c->out_sent = 0;
		more = grpc_method_scan_more(hc->g, c, (uint32_t)length);
	} else if (c->method == M_SCAN) {
		more = c->scan_next < c->scan_n;
	}
	size_t n = c->out_len - c->out_sent;
	if (n > length)
		n = length;
	c->out_sent += (uint32_t)n;  /* send_data() takes these n bytes, before this is called again */
	*data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (c->out_sent == c->out_len && !more) {
		*data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (submit_trailers(c, false) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return (ssize_t)n;
}

static int send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
		     nghttp2_data_source *source, void *user_data)
{
	(void)session;
	const call *c = source->ptr;
	assert(frame->data.padlen == 0 && length <= c->out_sent);  /* no padding: nghttp2 asks for it only through a callback we do not set */
	if (!grpc_conn_out_append(user_data, framehd, 9, c->out + c->out_sent - length, length))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return 0;
}

/* The reply's status and latency, by method. */
static void count_reply(atp_grpc_server *g, const call *c, int status)
{
	_Static_assert(M_GET_ATP_PROFILE + 1 == ATP_GRPC_METHODS, "one row per method");
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec - c->start_ns;
	uint64_t us = ns / 1000;
	unsigned b = 0;
	while (b < ATP_GRPC_LATENCY_BUCKETS - 1 && us >= (1ull << b))
		b++;
	assert(c->method < ATP_GRPC_METHODS);
	g->stats.replies[c->method][status >= 0 && status < ATP_GRPC_STATUSES ? status : G_UNKNOWN]++;
	g->stats.latency[c->method][b]++;
	g->stats.latency_ns_sum[c->method] += ns;
}

const char *atp_grpc_method_name(unsigned m)
{
	static const char *const names[ATP_GRPC_METHODS] = {
		[M_NONE] = "unknown",   [M_GET_ATP] = "GetAtp", [M_GET_ATP_BATCH] = "GetAtpBatch",
		[M_RESERVE] = "Reserve", [M_RELEASE] = "Release", [M_SCAN] = "Scan",
		[M_HEALTH] = "Health.Check", [M_SUBSCRIBE] = "Subscribe", [M_SNAPSHOT] = "Admin.Snapshot",
		[M_REDRIVE] = "Admin.Redrive", [M_PURGE] = "Admin.Purge",
		[M_DEAD_LETTERS] = "Admin.DeadLetters", [M_HISTORY] = "Admin.History",
		[M_GET_ATP_PROFILE] = "GetAtpProfile",
	};
	return m < ATP_GRPC_METHODS ? names[m] : "?";
}

void grpc_call_respond(atp_grpc_server *g, call *c, int status, const char *fmt, ...)
{
	if (c->state == CALL_FREE || c->state == CALL_REPLY)
		return;
	if (c->state == CALL_WAIT)
		g->waiting--;
	c->state = CALL_REPLY;
	c->status = status;
	if (status == G_OK) {
		c->message[0] = 0;  /* an OK carries no message: no formatting on the common path */
	} else {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->message, sizeof(c->message), fmt, ap);
		va_end(ap);
		g->stats.errors++;
	}
	count_reply(g, c, status);
	int rc;
	if (status == G_OK && (c->out_len || c->method == M_SCAN || c->method == M_SUBSCRIBE)) {
		nghttp2_nv nv[] = { NV(":status", "200", 3), NV("content-type", "application/grpc", 16) };
		nghttp2_data_provider prd = { .source.ptr = c, .read_callback = read_body };
		rc = nghttp2_submit_response(c->conn->session, c->stream_id, nv, 2, &prd);
	} else {
		rc = submit_trailers(c, true);  /* Trailers-Only */
	}
	if (rc != 0)
		nghttp2_submit_rst_stream(c->conn->session, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_INTERNAL_ERROR);
	grpc_conn_mark_dirty(g, c->conn);
}

/* ---- nghttp2 callbacks ---- */

static call *call_of(nghttp2_session *session, int32_t stream_id)
{
	return nghttp2_session_get_stream_user_data(session, stream_id);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	h2conn *hc = user_data;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	call *c = call_new(hc->g, hc, frame->hd.stream_id);
	if (!c) {
		/* Admission control: answered at once, without a call (its headers and data are ignored). */
		static const char limit[] = "RESOURCE_EXHAUSTED: too many calls in flight";
		nghttp2_nv nv[] = { NV(":status", "200", 3), NV("content-type", "application/grpc", 16),
				    NV("grpc-status", "8", 1), NV("grpc-message", limit + 20, sizeof(limit) - 21) };
		if (nghttp2_submit_response(session, frame->hd.stream_id, nv, 4, NULL) != 0)
			nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
		hc->g->stats.errors++;
		hc->g->stats.replies[M_NONE][G_RESOURCE_EXHAUSTED]++;
		return 0;
	}
	nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, c);
	return 0;
}

static bool equals(const uint8_t *p, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

/* grpc-timeout: at most 8 digits and a unit (H M S m u n); the deadline in ms from now, rounded up. */
static bool parse_timeout(const uint8_t *v, size_t n, uint64_t *ms)
{
	if (n < 2 || n > 9)
		return false;
	uint64_t x = 0;
	for (size_t i = 0; i + 1 < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	switch (v[n - 1]) {
	case 'H': *ms = x * 3600000; return true;
	case 'M': *ms = x * 60000; return true;
	case 'S': *ms = x * 1000; return true;
	case 'm': *ms = x; return true;
	case 'u': *ms = (x + 999) / 1000; return true;
	case 'n': *ms = (x + 999999) / 1000000; return true;
	default: return false;
	}
}

static uint8_t method_of(const uint8_t *p, size_t n)
{
	static const struct {
		const char *path;
		uint8_t m;
	} paths[] = {
		{ "/atp.v1.Atp/GetAtp", M_GET_ATP },   { "/atp.v1.Atp/GetAtpBatch", M_GET_ATP_BATCH },
		{ "/atp.v1.Atp/Reserve", M_RESERVE },  { "/atp.v1.Atp/Release", M_RELEASE },
		{ "/atp.v1.Atp/Scan", M_SCAN },        { "/grpc.health.v1.Health/Check", M_HEALTH },
		{ "/atp.v1.Atp/Subscribe", M_SUBSCRIBE }, { "/atp.v1.Admin/Snapshot", M_SNAPSHOT },
		{ "/atp.v1.Admin/Redrive", M_REDRIVE }, { "/atp.v1.Admin/Purge", M_PURGE },
		{ "/atp.v1.Admin/DeadLetters", M_DEAD_LETTERS }, { "/atp.v1.Admin/History", M_HISTORY },
		{ "/atp.v1.Atp/GetAtpProfile", M_GET_ATP_PROFILE },
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (equals(p, n, paths[i].path))
			return paths[i].m;
	return M_NONE;
}

/* "Bearer TOKEN": whose it is (one SHA-256 per token and connection: the connection keeps the last). */
static void token_of(h2conn *hc, call *c, const uint8_t *v, size_t n)
{
	const atp_auth *auth = hc->g->auth;
	if (n < 7 || strncasecmp((const char *)v, "Bearer ", 7) != 0) {
		c->token = -1;
		return;
	}
	v += 7;
	n -= 7;
	if (hc->token_auth != auth || n != hc->token_len || n > sizeof(hc->token) || memcmp(hc->token, v, n) != 0) {
		hc->token_id = atp_auth_token(auth, v, n);
		hc->token_auth = n <= sizeof(hc->token) ? auth : NULL;
		hc->token_len = (uint32_t)n;
		if (hc->token_auth)
			memcpy(hc->token, v, n);
	}
	c->ident = hc->token_id;
	c->token = c->ident == ATP_AUTH_NONE ? -1 : 1;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
		     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
	(void)flags;
	h2conn *hc = user_data;
	call *c = call_of(session, frame->hd.stream_id);
	if (!c || frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	c->header_bytes += (uint32_t)(namelen + valuelen + 32);
	if (c->header_bytes > hc->g->cfg.max_header_list)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  /* the stream is reset */
	if (equals(name, namelen, ":path")) {
		c->method = method_of(value, valuelen);
	} else if (equals(name, namelen, "content-type")) {
		c->ct_ok = valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
			   (valuelen == 16 || value[16] == '+' || value[16] == ';');
	} else if (equals(name, namelen, "authorization") && hc->g->auth) {
		token_of(hc, c, value, valuelen);
	} else if (equals(name, namelen, "grpc-timeout")) {
		uint64_t ms;
		if (parse_timeout(value, valuelen, &ms))
			c->deadline_ms = grpc_now_ms(hc->g) + ms;
		else
			c->bad_header = true;
	}
	return 0;
}

/* Request bytes after the HEADERS: the 5-byte prefix, then the message into an aligned buffer. */
static int on_data(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
		   void *user_data)
{
	(void)flags;
	h2conn *hc = user_data;
	atp_grpc_server *g = hc->g;
	call *c = call_of(session, stream_id);
	if (!c || c->state != CALL_RECV)
		return 0;
	while (len && c->prefix_len < 5) {
		c->prefix[c->prefix_len++] = *data++;
		len--;
		if (c->prefix_len == 5) {
			uint32_t n = (uint32_t)c->prefix[1] << 24 | (uint32_t)c->prefix[2] << 16 |
				     (uint32_t)c->prefix[3] << 8 | c->prefix[4];
			if (n > g->cfg.max_message) {
				grpc_call_respond(g, c, G_RESOURCE_EXHAUSTED, "request message of %u bytes: the limit is %u", n,
					  g->cfg.max_message);
				return 0;
			}
			if (n > c->msg_cap) {
				uint32_t cap = n < 4096 ? 4096 : n;
				if (g->msg_bytes + cap > MSG_BYTES_MAX) {
					grpc_call_respond(g, c, G_RESOURCE_EXHAUSTED, "too many request bytes held");
					return 0;
				}
				uint8_t *p = aligned_alloc(8, (cap + 7) & ~7u);
				if (!p) {
					grpc_call_respond(g, c, G_RESOURCE_EXHAUSTED, "out of memory");
					return 0;
				}
				free(c->msg);
				g->msg_bytes += cap - c->msg_cap;
				c->msg = p;
				c->msg_cap = cap;
			}
		}
	}
	if (!len)
		return 0;
	uint32_t want = (uint32_t)c->prefix[1] << 24 | (uint32_t)c->prefix[2] << 16 | (uint32_t)c->prefix[3] << 8 |
			c->prefix[4];
	uint32_t room = want - c->msg_len, take = len < room ? (uint32_t)len : room;
	memcpy(c->msg + c->msg_len, data, take);
	c->msg_len += take;
	c->body_bytes += (uint32_t)len;
	return 0;
}

/* Not application/grpc: HTTP 415, as gRPC over HTTP/2 says. */
static void refuse_content_type(atp_grpc_server *g, call *c)
{
	if (c->state != CALL_RECV)
		return;
	nghttp2_nv nv[] = { NV(":status", "415", 3) };
	c->state = CALL_REPLY;
	nghttp2_submit_response(c->conn->session, c->stream_id, nv, 1, NULL);
	grpc_conn_mark_dirty(g, c->conn);
	g->stats.errors++;
}

static uint32_t call_bit(unsigned m)
{
	static const uint32_t bits[] = {
		[M_GET_ATP] = ATP_AUTH_GET_ATP,   [M_GET_ATP_BATCH] = ATP_AUTH_GET_ATP_BATCH,
		[M_RESERVE] = ATP_AUTH_RESERVE,   [M_RELEASE] = ATP_AUTH_RELEASE,
		[M_SCAN] = ATP_AUTH_SCAN,         [M_SUBSCRIBE] = ATP_AUTH_SUBSCRIBE,
		[M_SNAPSHOT] = ATP_AUTH_SNAPSHOT, [M_REDRIVE] = ATP_AUTH_REDRIVE,
		[M_PURGE] = ATP_AUTH_PURGE,       [M_DEAD_LETTERS] = ATP_AUTH_DEAD_LETTERS,
		[M_HISTORY] = ATP_AUTH_HISTORY,   [M_GET_ATP_PROFILE] = ATP_AUTH_GET_ATP_PROFILE,
	};
	return m < sizeof(bits) / sizeof(bits[0]) ? bits[m] : 0;
}

/*
 * Whether c may run: its identity (token, else certificate) set, or
 * answered UNAUTHENTICATED / PERMISSION_DENIED (logged and counted).
 */
static bool authorize(atp_grpc_server *g, call *c)
{
	if (c->method == M_HEALTH || (!g->auth && !(g->tls && atp_tls_ctx_asks_clients(g->tls))))
		return true;
	const char *op = atp_grpc_method_name(c->method);
	char who[48];
	snprintf(who, sizeof(who), "grpc connection %u", grpc_conn_index(g, c->conn));
	if (c->token < 0) {
		atp_auth_refused(true, who, op, "unknown bearer token");
		grpc_call_respond(g, c, G_UNAUTHENTICATED, "unknown bearer token");
		return false;
	}
	const char *const *names = NULL;
	const char *missing = "no client certificate and no bearer token (plaintext connection)";
	if (c->token == 0) {
		unsigned n = c->conn->tls ? atp_tls_peer_names(c->conn->tls, &names, &missing) : 0;
		if (!n) {
			atp_auth_refused(true, who, op, missing);
			grpc_call_respond(g, c, G_UNAUTHENTICATED, "%s%s", missing, g->auth ? " (or a bearer token)" : "");
			return false;
		}
		if (!g->auth)
			return true;  /* a verified certificate is enough without an authorization file */
		c->ident = atp_auth_find(g->auth, names, n);
	}
	const char *name = c->ident == ATP_AUTH_NONE ? names[0] : atp_auth_name(g->auth, c->ident);
	if (!atp_auth_may_call(g->auth, c->ident, call_bit(c->method))) {
		atp_auth_refused(false, name, op, "not granted");
		grpc_call_respond(g, c, G_PERMISSION_DENIED, "%s may not call %s", name, op);
		return false;
	}
	return true;
}

/* The request is whole: check its framing, then run it. */
static void request_complete(atp_grpc_server *g, call *c)
{
	if (c->state != CALL_RECV)
		return;
	uint32_t want = (uint32_t)c->prefix[1] << 24 | (uint32_t)c->prefix[2] << 16 | (uint32_t)c->prefix[3] << 8 |
			c->prefix[4];
	if (g->draining) {
		grpc_call_respond(g, c, G_UNAVAILABLE, "the server is draining");
	} else if (c->method == M_NONE) {
		grpc_call_respond(g, c, G_UNIMPLEMENTED, "no such method");
	} else if (c->bad_header) {
		grpc_call_respond(g, c, G_INVALID_ARGUMENT, "grpc-timeout: not a valid timeout");
	} else if (c->deadline_ms && grpc_now_ms(g) >= c->deadline_ms) {
		grpc_call_respond(g, c, G_DEADLINE_EXCEEDED, "the deadline passed before the call ran");
	} else if (c->prefix_len < 5 || c->body_bytes != want) {
		grpc_call_respond(g, c, G_INTERNAL, "the request must be exactly one length-prefixed message");
	} else if (c->prefix[0] != 0) {
		grpc_call_respond(g, c, G_UNIMPLEMENTED, "compressed messages are not supported");
	} else if (authorize(g, c)) {
		grpc_method_dispatch(g, c);
	}
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	h2conn *hc = user_data;
	atp_grpc_server *g = hc->g;
	hc->preface_seen = true;
	switch (frame->hd.type) {
	case NGHTTP2_HEADERS:
	case NGHTTP2_DATA: {
		call *c = call_of(session, frame->hd.stream_id);
		if (c && frame->hd.type == NGHTTP2_HEADERS && !c->ct_ok)
			refuse_content_type(g, c);  /* at once: its data is not gRPC and is not read */
		else if (c && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
			request_complete(g, c);
		break;
	}
	case NGHTTP2_SETTINGS:
		if (frame->hd.flags & NGHTTP2_FLAG_ACK)
			break;
		if (grpc_now_ms(g) / 1000 != hc->settings_second) {
			hc->settings_second = grpc_now_ms(g) / 1000;
			hc->settings_frames = 0;
		}
		if (++hc->settings_frames > SETTINGS_PER_SECOND) {
			atp_log(ATP_LOG_WARN, "grpc connection %u: SETTINGS flood; closing", grpc_conn_index(g, hc));
			nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM);
		}
		break;
	default:
		break;
	}
	return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
	(void)error_code;
	h2conn *hc = user_data;
	call *c = call_of(session, stream_id);
	if (c)
		grpc_call_free(hc->g, c);
	return 0;
}

/* ---- deadlines ---- */

void grpc_call_sweep(atp_grpc_server *g)
{
	uint64_t now = grpc_now_ms(g);
	const uint32_t *live;
	uint32_t n = live_copy(&g->live_calls, &live);
	for (uint32_t k = 0; k < n; k++) {
		call *c = &g->calls[live[k]];
		if (c->state == CALL_FREE || !c->deadline_ms || now < c->deadline_ms)
			continue;
		if (c->state == CALL_REPLY) {
			if (c->method == M_SCAN && c->scan_next < c->scan_n) {
				nghttp2_submit_rst_stream(c->conn->session, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
				c->deadline_ms = 0;
				grpc_conn_mark_dirty(g, c->conn);
			}
			continue;
		}
		grpc_call_respond(g, c, G_DEADLINE_EXCEEDED, "deadline exceeded%s",
			  c->state == CALL_WAIT ? " (what was submitted may still apply: retry with the same id)" : "");
	}
}

void grpc_call_set_callbacks(nghttp2_session_callbacks *cbs)
{
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	nghttp2_session_callbacks_set_send_data_callback(cbs, send_data);
}
