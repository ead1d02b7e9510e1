/*
 * grpc_server.c — gRPC over HTTP/2 on the front end's io_uring loop
 * (atp/grpc_server.h): accepting, receiving into the loop's provided
 * buffers, feeding nghttp2, sending what it produces, gRPC framing of
 * requests and responses, calls and their deadlines, limits and timers.
 * What each method does is grpc_methods.c's.
 *
 * Operations carry (op, generation, slot) like the stream server's, so a
 * completion for a closed connection is recognised and ignored. A call is
 * a slot of a fixed pool, tied to one HTTP/2 stream from its HEADERS to
 * its close; its generation changes when it is freed, so an engine
 * completion for a call that went away is ignored.
 */
#define _GNU_SOURCE
#include "grpc_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

enum { OP_H2_ACCEPT = OP_EXT, OP_H2_RECV, OP_H2_SEND, OP_H2_CANCEL };
enum { H_FREE, H_OPEN, H_CLOSING };

#define OUT_CHUNK (256u << 10)      /* bytes gathered from nghttp2 for one send */
#define SWEEP_MS 10
#define PREFACE_MS 10000            /* the client preface and SETTINGS must come within this */
#define SETTINGS_PER_SECOND 100     /* SETTINGS frames a peer may send per second */
#define RESETS_BURST 1000           /* stream resets before the rate applies (rapid reset) */
#define RESETS_PER_SECOND 33
#define LINGER_MS 1000

struct h2conn {
	atp_grpc_server *g;
	int fd;
	uint32_t gen;
	uint8_t state;
	bool recv_armed, sending, dirty;
	nghttp2_session *session;
	uint8_t *out;
	uint32_t out_len, out_cap, out_sent;
	uint64_t opened_ms, last_active_ms, send_start_ms, closing_since_ms;
	uint64_t settings_second;
	uint32_t settings_frames;
	bool preface_seen;
	uint32_t calls;             /* calls open on it */
};

static uint64_t tag(unsigned op, uint32_t gen, uint32_t slot)
{
	return (uint64_t)op << 56 | (uint64_t)(gen & 0xffffffu) << 32 | slot;
}

static uint32_t conn_index(const atp_grpc_server *g, const h2conn *hc)
{
	return (uint32_t)(hc - g->conns);
}

uint32_t g_call_index(const atp_grpc_server *g, const call *c)
{
	return (uint32_t)(c - g->calls);
}

static uint64_t now_ms(const atp_grpc_server *g)
{
	return front_now_ms(g->front);
}

/* ---- connections ---- */

static void arm_recv(atp_grpc_server *g, h2conn *hc)
{
	struct io_uring_sqe *sqe = front_sqe(g->front);
	io_uring_prep_recv_multishot(sqe, hc->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = front_buf_group();
	sqe->user_data = tag(OP_H2_RECV, hc->gen, conn_index(g, hc));
	hc->recv_armed = true;
}

static void arm_accept(atp_grpc_server *g)
{
	struct io_uring_sqe *sqe = front_sqe(g->front);
	io_uring_prep_multishot_accept(sqe, g->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	sqe->user_data = tag(OP_H2_ACCEPT, 0, 0);
	g->accept_armed = true;
}

static void mark_dirty(atp_grpc_server *g, h2conn *hc)
{
	if (hc->state == H_FREE || hc->dirty)
		return;
	hc->dirty = true;
	g->dirty[g->n_dirty++] = hc;
}

static void call_free(atp_grpc_server *g, call *c);

/* Close at once (abort: with a reset). Its calls end with it; its requests in the ring are cancelled first. */
static void close_conn(atp_grpc_server *g, h2conn *hc, bool abort)
{
	if (hc->state == H_FREE)
		return;
	for (uint32_t i = 0; hc->calls && i < g->n_calls_total; i++)
		if (g->calls[i].state != CALL_FREE && g->calls[i].conn == hc)
			call_free(g, &g->calls[i]);
	struct io_uring_sqe *sqe = front_sqe(g->front);
	io_uring_prep_cancel_fd(sqe, hc->fd, IORING_ASYNC_CANCEL_ALL);
	sqe->user_data = tag(OP_H2_CANCEL, 0, 0);
	front_submit(g->front);
	if (abort) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(hc->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(hc->fd);
	nghttp2_session_del(hc->session);
	hc->session = NULL;
	hc->fd = -1;
	hc->state = H_FREE;
	hc->gen++;
	hc->sending = hc->recv_armed = false;
	if (hc->out_cap > OUT_CHUNK * 2) {
		free(hc->out);
		hc->out = NULL;
		hc->out_cap = 0;
	}
	g->free_conns[g->n_free_conns++] = conn_index(g, hc);
	g->stats.open--;
}

/* Nothing more is read; what nghttp2 still has to say (a GOAWAY) goes out, then the close. */
static void closing(atp_grpc_server *g, h2conn *hc)
{
	if (hc->state != H_OPEN)
		return;
	hc->state = H_CLOSING;
	hc->closing_since_ms = now_ms(g);
	shutdown(hc->fd, SHUT_RD);
	mark_dirty(g, hc);
}

/* Hand nghttp2's output to the socket: one send in flight, up to OUT_CHUNK bytes gathered. */
static void flush_conn(atp_grpc_server *g, h2conn *hc)
{
	if (hc->state == H_FREE || hc->sending)
		return;
	hc->out_len = hc->out_sent = 0;
	while (hc->out_len < OUT_CHUNK) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(hc->session, &data);
		if (n < 0) {
			close_conn(g, hc, true);
			return;
		}
		if (n == 0)
			break;
		if (hc->out_len + (uint32_t)n > hc->out_cap) {
			uint32_t cap = hc->out_cap ? hc->out_cap : 64u << 10;
			while (cap < hc->out_len + (uint32_t)n)
				cap *= 2;
			uint8_t *p = realloc(hc->out, cap);
			if (!p) {
				close_conn(g, hc, true);
				return;
			}
			hc->out = p;
			hc->out_cap = cap;
		}
		memcpy(hc->out + hc->out_len, data, (size_t)n);
		hc->out_len += (uint32_t)n;
	}
	if (hc->out_len) {
		struct io_uring_sqe *sqe = front_sqe(g->front);
		io_uring_prep_send(sqe, hc->fd, hc->out, hc->out_len, MSG_NOSIGNAL);
		sqe->user_data = tag(OP_H2_SEND, hc->gen, conn_index(g, hc));
		hc->sending = true;
		hc->send_start_ms = now_ms(g);
		return;
	}
	if (hc->state == H_CLOSING ||
	    (!nghttp2_session_want_read(hc->session) && !nghttp2_session_want_write(hc->session)))
		close_conn(g, hc, false);
}

static void flush_dirty(atp_grpc_server *g)
{
	for (uint32_t i = 0; i < g->n_dirty; i++) {
		h2conn *hc = g->dirty[i];
		hc->dirty = false;
		flush_conn(g, hc);
	}
	g->n_dirty = 0;
}

static void on_accept(atp_grpc_server *g, int fd)
{
	if (g->n_free_conns == 0 || g->draining) {
		close(fd);
		g->stats.refused_connections++;
		return;
	}
	h2conn *hc = &g->conns[g->free_conns[--g->n_free_conns]];
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	hc->g = g;
	hc->fd = fd;
	hc->state = H_OPEN;
	hc->opened_ms = hc->last_active_ms = now_ms(g);
	hc->preface_seen = false;
	hc->settings_frames = 0;
	hc->calls = 0;
	hc->out_len = hc->out_sent = 0;
	g->stats.connections++;
	g->stats.open++;
	if (nghttp2_session_server_new2(&hc->session, g->cbs, hc, g->opt) != 0) {
		close_conn(g, hc, true);
		return;
	}
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, g->cfg.max_streams },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, g->cfg.max_header_list },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20 },
	};
	nghttp2_submit_settings(hc->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
	nghttp2_session_set_local_window_size(hc->session, NGHTTP2_FLAG_NONE, 0, 16 << 20);
	arm_recv(g, hc);
	mark_dirty(g, hc);
}

static void on_recv(atp_grpc_server *g, h2conn *hc, bool live, const struct io_uring_cqe *cqe)
{
	bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;
	uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
	if (live && !(cqe->flags & IORING_CQE_F_MORE))
		hc->recv_armed = false;
	if (live && hc->state == H_OPEN) {
		if (cqe->res > 0 && has_buf) {
			hc->last_active_ms = now_ms(g);
			ssize_t rv = nghttp2_session_mem_recv(hc->session, front_buf(g->front, bid), (size_t)cqe->res);
			if (rv < 0) {
				if (rv != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
					fprintf(stderr, "atpd: grpc connection %u: %s; closing\n", conn_index(g, hc),
						nghttp2_strerror((int)rv));
				closing(g, hc);
			}
			mark_dirty(g, hc);
		} else if (cqe->res == 0 || (cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -ECANCELED)) {
			close_conn(g, hc, false);
		}
	}
	if (has_buf)
		front_give_back(g->front, bid);
	if (live && hc->state == H_OPEN && !hc->recv_armed)
		arm_recv(g, hc);
}

static void on_send(atp_grpc_server *g, h2conn *hc, int res)
{
	if (res < 0) {
		close_conn(g, hc, true);
		return;
	}
	hc->out_sent += (uint32_t)res;
	if (hc->out_sent < hc->out_len) {
		struct io_uring_sqe *sqe = front_sqe(g->front);
		io_uring_prep_send(sqe, hc->fd, hc->out + hc->out_sent, hc->out_len - hc->out_sent, MSG_NOSIGNAL);
		sqe->user_data = tag(OP_H2_SEND, hc->gen, conn_index(g, hc));
		return;
	}
	hc->sending = false;
	mark_dirty(g, hc);
}

static void on_cqe(void *ctx, const struct io_uring_cqe *cqe)
{
	atp_grpc_server *g = ctx;
	unsigned op = (unsigned)(cqe->user_data >> 56);
	uint32_t gen = (uint32_t)(cqe->user_data >> 32) & 0xffffffu, slot = (uint32_t)cqe->user_data;
	h2conn *hc = op == OP_H2_RECV || op == OP_H2_SEND ? &g->conns[slot] : NULL;
	bool live = hc && hc->state != H_FREE && (hc->gen & 0xffffffu) == gen;
	switch (op) {
	case OP_H2_ACCEPT:
		if (!(cqe->flags & IORING_CQE_F_MORE))
			g->accept_armed = false;
		if (cqe->res >= 0)
			on_accept(g, cqe->res);
		break;
	case OP_H2_RECV:
		on_recv(g, hc, live, cqe);
		break;
	case OP_H2_SEND:
		if (live)
			on_send(g, hc, cqe->res);
		break;
	default:
		break;
	}
	flush_dirty(g);
}

/* ---- calls ---- */

static call *call_new(atp_grpc_server *g, h2conn *hc, int32_t stream_id)
{
	if (g->n_free_calls == 0)
		return NULL;
	call *c = &g->calls[g->free_calls[--g->n_free_calls]];
	c->state = CALL_RECV;
	c->method = M_NONE;
	c->ct_ok = c->bad_header = c->too_big = false;
	c->conn = hc;
	c->stream_id = stream_id;
	c->header_bytes = 0;
	c->deadline_ms = 0;
	c->prefix_len = c->body_bytes = c->msg_len = 0;
	c->out_len = c->out_sent = 0;
	c->status = G_OK;
	c->message[0] = 0;
	c->n_lines = c->lines_pending = 0;
	c->scan_n = c->scan_next = 0;
	g->calls_busy++;
	hc->calls++;
	g->stats.calls++;
	return c;
}

static void call_free(atp_grpc_server *g, call *c)
{
	if (c->state == CALL_FREE)
		return;
	if (c->state == CALL_WAIT)
		g->waiting--;
	m_release(g, c);
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
	g->free_calls[g->n_free_calls++] = g_call_index(g, c);
}

void g_enqueue(atp_grpc_server *g, call *c)
{
	c->state = CALL_QUEUED;
	uint32_t cap = g->n_calls_total;
	g->queue[(g->queue_head + g->queue_len++) % cap] = (uint64_t)c->gen << 32 | g_call_index(g, c);
}

static void run_queue(atp_grpc_server *g)
{
	uint32_t cap = g->n_calls_total;
	while (g->queue_len) {
		uint64_t q = g->queue[g->queue_head];
		call *c = &g->calls[(uint32_t)q];
		if (c->state == CALL_QUEUED && c->gen == (uint32_t)(q >> 32) && !m_retry(g, c))
			return;  /* still no room: it keeps its place */
		g->queue_head = (g->queue_head + 1) % cap;
		g->queue_len--;
	}
}

bool g_append_message(call *c, const uint8_t *msg, uint32_t len)
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
	char status[8], message[sizeof(c->message) * 3 + 1];
	int sl = snprintf(status, sizeof(status), "%d", c->status);
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

static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
			 uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	(void)session;
	(void)stream_id;
	h2conn *hc = user_data;
	call *c = source->ptr;
	bool more = false;
	if (c->method == M_SCAN && c->out_sent == c->out_len) {
		c->out_len = c->out_sent = 0;
		more = m_scan_more(hc->g, c, (uint32_t)length);
	} else if (c->method == M_SCAN) {
		more = c->scan_next < c->scan_n;
	}
	size_t n = c->out_len - c->out_sent;
	if (n > length)
		n = length;
	memcpy(buf, c->out + c->out_sent, n);
	c->out_sent += (uint32_t)n;
	if (c->out_sent == c->out_len && !more) {
		*data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (submit_trailers(c, false) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return (ssize_t)n;
}

void g_respond(atp_grpc_server *g, call *c, int status, const char *fmt, ...)
{
	if (c->state == CALL_FREE || c->state == CALL_REPLY)
		return;
	if (c->state == CALL_WAIT)
		g->waiting--;
	c->state = CALL_REPLY;
	c->status = status;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->message, sizeof(c->message), fmt, ap);
	va_end(ap);
	if (status != G_OK)
		g->stats.errors++;
	int rc;
	if (status == G_OK && (c->out_len || c->method == M_SCAN)) {
		nghttp2_nv nv[] = { NV(":status", "200", 3), NV("content-type", "application/grpc", 16) };
		nghttp2_data_provider prd = { .source.ptr = c, .read_callback = read_body };
		rc = nghttp2_submit_response(c->conn->session, c->stream_id, nv, 2, &prd);
	} else {
		rc = submit_trailers(c, true);  /* Trailers-Only */
	}
	if (rc != 0)
		nghttp2_submit_rst_stream(c->conn->session, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_INTERNAL_ERROR);
	mark_dirty(g, c->conn);
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
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (equals(p, n, paths[i].path))
			return paths[i].m;
	return M_NONE;
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
	} else if (equals(name, namelen, "grpc-timeout")) {
		uint64_t ms;
		if (parse_timeout(value, valuelen, &ms))
			c->deadline_ms = now_ms(hc->g) + ms;
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
				g_respond(g, c, G_RESOURCE_EXHAUSTED, "request message of %u bytes: the limit is %u", n,
					  g->cfg.max_message);
				return 0;
			}
			if (n > c->msg_cap) {
				uint32_t cap = n < 4096 ? 4096 : n;
				if (g->msg_bytes + cap > MSG_BYTES_MAX) {
					g_respond(g, c, G_RESOURCE_EXHAUSTED, "too many request bytes held");
					return 0;
				}
				uint8_t *p = aligned_alloc(8, (cap + 7) & ~7u);
				if (!p) {
					g_respond(g, c, G_RESOURCE_EXHAUSTED, "out of memory");
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
	mark_dirty(g, c->conn);
	g->stats.errors++;
}

/* The request is whole: check its framing, then run it. */
static void request_complete(atp_grpc_server *g, call *c)
{
	if (c->state != CALL_RECV)
		return;
	uint32_t want = (uint32_t)c->prefix[1] << 24 | (uint32_t)c->prefix[2] << 16 | (uint32_t)c->prefix[3] << 8 |
			c->prefix[4];
	if (g->draining) {
		g_respond(g, c, G_UNAVAILABLE, "the server is draining");
	} else if (c->method == M_NONE) {
		g_respond(g, c, G_UNIMPLEMENTED, "no such method");
	} else if (c->bad_header) {
		g_respond(g, c, G_INVALID_ARGUMENT, "grpc-timeout: not a valid timeout");
	} else if (c->deadline_ms && now_ms(g) >= c->deadline_ms) {
		g_respond(g, c, G_DEADLINE_EXCEEDED, "the deadline passed before the call ran");
	} else if (c->prefix_len < 5 || c->body_bytes != want) {
		g_respond(g, c, G_INTERNAL, "the request must be exactly one length-prefixed message");
	} else if (c->prefix[0] != 0) {
		g_respond(g, c, G_UNIMPLEMENTED, "compressed messages are not supported");
	} else {
		m_dispatch(g, c);
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
		if (now_ms(g) / 1000 != hc->settings_second) {
			hc->settings_second = now_ms(g) / 1000;
			hc->settings_frames = 0;
		}
		if (++hc->settings_frames > SETTINGS_PER_SECOND) {
			fprintf(stderr, "atpd: grpc connection %u: SETTINGS flood; closing\n", conn_index(g, hc));
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
		call_free(hc->g, c);
	return 0;
}

/* ---- timers ---- */

static void sweep(atp_grpc_server *g)
{
	uint64_t now = now_ms(g);
	for (uint32_t i = 0; i < g->n_calls_total; i++) {
		call *c = &g->calls[i];
		if (c->state == CALL_FREE || !c->deadline_ms || now < c->deadline_ms)
			continue;
		if (c->state == CALL_REPLY) {
			if (c->method == M_SCAN && c->scan_next < c->scan_n) {
				nghttp2_submit_rst_stream(c->conn->session, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
				c->deadline_ms = 0;
				mark_dirty(g, c->conn);
			}
			continue;
		}
		g_respond(g, c, G_DEADLINE_EXCEEDED, "deadline exceeded%s",
			  c->state == CALL_WAIT ? " (what was submitted may still apply: retry with the same id)" : "");
	}
	for (uint32_t i = 0; i < g->cfg.max_connections; i++) {
		h2conn *hc = &g->conns[i];
		if (hc->state == H_FREE)
			continue;
		if (hc->sending && now - hc->send_start_ms > g->cfg.send_timeout_ms) {
			fprintf(stderr, "atpd: grpc connection %u: not reading for %u ms; reset\n", i, g->cfg.send_timeout_ms);
			close_conn(g, hc, true);
		} else if (hc->state == H_CLOSING && now - hc->closing_since_ms > LINGER_MS) {
			close_conn(g, hc, true);
		} else if (hc->state == H_OPEN && !hc->preface_seen && now - hc->opened_ms > PREFACE_MS) {
			close_conn(g, hc, true);
		} else if (hc->state == H_OPEN && hc->calls == 0 && now - hc->last_active_ms > g->cfg.idle_ms) {
			nghttp2_session_terminate_session(hc->session, NGHTTP2_NO_ERROR);
			closing(g, hc);
		}
	}
}

static void after_turn(void *ctx)
{
	atp_grpc_server *g = ctx;
	if (!g->accept_armed && !g->draining && g->listen_fd >= 0)
		arm_accept(g);
	m_after_turn(g);
	run_queue(g);
	if (now_ms(g) - g->last_sweep_ms >= SWEEP_MS) {
		g->last_sweep_ms = now_ms(g);
		sweep(g);
	}
	flush_dirty(g);
}

static void on_done(void *ctx, const atp_engine_done *d)
{
	m_on_done(ctx, d);
}

static bool waiting(void *ctx)
{
	const atp_grpc_server *g = ctx;
	return g->waiting || g->queue_len;
}

/* ---- set-up and tear-down ---- */

atp_grpc_config atp_grpc_config_default(void)
{
	return (atp_grpc_config){
		.listen = "127.0.0.1:7401",
		.max_connections = 1024,
		.max_streams = 128,
		.max_calls = 4096,
		.max_message = 4u << 20,
		.max_header_list = 16u << 10,
		.max_reserve_lines = 256,
		.max_scans = 4,
		.idle_ms = 600000,
		.send_timeout_ms = 30000,
	};
}

static void destroy(atp_grpc_server *g)
{
	for (uint32_t i = 0; g->conns && i < g->cfg.max_connections; i++) {
		close_conn(g, &g->conns[i], false);
		free(g->conns[i].out);
	}
	for (uint32_t i = 0; g->calls && i < g->n_calls_total; i++) {
		free(g->calls[i].msg);
		free(g->calls[i].out);
		free(g->calls[i].lines);
		free(g->calls[i].scan);
	}
	if (g->listen_fd >= 0)
		close(g->listen_fd);
	if (g->cbs)
		nghttp2_session_callbacks_del(g->cbs);
	if (g->opt)
		nghttp2_option_del(g->opt);
	free(g->conns);
	free(g->free_conns);
	free(g->calls);
	free(g->free_calls);
	free(g->queue);
	free(g->pending);
	free(g->scratch);
	free(g->positions);
	free(g->dirty);
	free(g);
}

atp_grpc_server *atp_grpc_server_create(atp_stream_server *front, const atp_grpc_config *cfg, char *err,
					size_t errlen)
{
	if (cfg->max_connections < 1 || cfg->max_streams < 1 || cfg->max_calls < 1 || cfg->max_message < 64 ||
	    cfg->max_message > ATP_V1_MAX_MESSAGE || cfg->max_header_list < 1024 || cfg->max_reserve_lines < 1 ||
	    cfg->max_reserve_lines > ATP_V1_MAX_LIST || cfg->max_scans < 1) {
		atp_errf(err, errlen, "bad grpc configuration");
		return NULL;
	}
	atp_grpc_server *g = calloc(1, sizeof(*g));
	if (!g) {
		atp_errf(err, errlen, "out of memory");
		return NULL;
	}
	g->front = front;
	g->e = front_engine(front);
	g->cfg = *cfg;
	g->listen_fd = -1;
	g->n_calls_total = cfg->max_calls;
	g->conns = calloc(cfg->max_connections, sizeof(h2conn));
	g->free_conns = malloc(cfg->max_connections * sizeof(uint32_t));
	g->dirty = malloc(cfg->max_connections * sizeof(h2conn *));
	g->calls = calloc(g->n_calls_total, sizeof(call));
	g->free_calls = malloc(g->n_calls_total * sizeof(uint32_t));
	g->queue = malloc(g->n_calls_total * sizeof(uint64_t));
	g->pending = calloc(PENDING_MAX, sizeof(pending));
	g->scratch = aligned_alloc(8, SCRATCH_BYTES);
	g->positions = malloc(ATP_V1_MAX_LIST * sizeof(atp_engine_position));
	if (!g->positions || !g->conns || !g->free_conns || !g->dirty || !g->calls || !g->free_calls || !g->queue || !g->pending ||
	    !g->scratch || nghttp2_session_callbacks_new(&g->cbs) != 0 || nghttp2_option_new(&g->opt) != 0) {
		atp_errf(err, errlen, "out of memory");
		destroy(g);
		return NULL;
	}
	for (uint32_t i = 0; i < cfg->max_connections; i++) {
		g->conns[i].fd = -1;
		g->free_conns[g->n_free_conns++] = cfg->max_connections - 1 - i;
	}
	for (uint32_t i = 0; i < g->n_calls_total; i++)
		g->free_calls[g->n_free_calls++] = g->n_calls_total - 1 - i;
	nghttp2_session_callbacks_set_on_begin_headers_callback(g->cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(g->cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(g->cbs, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(g->cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(g->cbs, on_stream_close);
	nghttp2_option_set_max_settings(g->opt, 32);
	nghttp2_option_set_max_outbound_ack(g->opt, 1000);
	nghttp2_option_set_stream_reset_rate_limit(g->opt, RESETS_BURST, RESETS_PER_SECOND);
	nghttp2_option_set_max_continuations(g->opt, 8);
	g->next_seq = atp_engine_durable_seq(g->e, API_SOURCE) + 1;
	if ((g->listen_fd = front_listen(cfg->listen, &g->port, err, errlen)) < 0) {
		destroy(g);
		return NULL;
	}
	g->last_sweep_ms = now_ms(g);
	front_ext ext = { .ctx = g, .on_cqe = on_cqe, .on_done = on_done, .after_turn = after_turn, .waiting = waiting };
	front_attach(front, &ext);
	arm_accept(g);
	return g;
}

uint16_t atp_grpc_server_port(const atp_grpc_server *g)
{
	return g->port;
}

void atp_grpc_server_stats(const atp_grpc_server *g, atp_grpc_stats *out)
{
	*out = g->stats;
}

void atp_grpc_server_shutdown(atp_grpc_server *g)
{
	g->draining = true;
	shutdown(g->listen_fd, SHUT_RDWR);
	close(g->listen_fd);
	g->listen_fd = -1;
	for (uint32_t i = 0; i < g->cfg.max_connections; i++) {
		h2conn *hc = &g->conns[i];
		if (hc->state != H_OPEN)
			continue;
		nghttp2_submit_goaway(hc->session, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(hc->session),
				      NGHTTP2_NO_ERROR, NULL, 0);
		mark_dirty(g, hc);
	}
	flush_dirty(g);
	uint64_t until = now_ms(g) + 2000;
	while (g->calls_busy && now_ms(g) < until)
		if (atp_stream_server_run(g->front, 10) < 0)
			break;
	front_attach(g->front, NULL);
	destroy(g);
}
