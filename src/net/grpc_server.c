/*
 * grpc_server.c — gRPC over HTTP/2 on the front end's io_uring loop
 * (atp/grpc_server.h): connections — accepting, receiving into the loop's
 * provided buffers, feeding nghttp2, sending what it produces, closing,
 * their limits and timers — and the server's set-up and drain. Calls and
 * gRPC framing are grpc_calls.c's; what each method does, grpc_methods.c's.
 *
 * Operations carry (op, generation, slot) like the stream server's, so a
 * completion for a closed connection is recognised and ignored. A call is
 * a slot of a fixed pool, tied to one HTTP/2 stream from its HEADERS to
 * its close; its generation changes when it is freed, so an engine
 * completion for a call that went away is ignored.
 */
#define _GNU_SOURCE
#include "grpc_internal.h"
#include "atp/log.h"

#include "atp/hub.h"

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

enum { OP_H2_ACCEPT, OP_H2_RECV, OP_H2_SEND, OP_H2_CANCEL };  /* from the server's op_base */

#define OUT_CHUNK (256u << 10)      /* bytes gathered from nghttp2 for one send */
#define SWEEP_MS 10
#define PREFACE_MS 10000            /* the client preface and SETTINGS must come within this */
#define RESETS_BURST 1000           /* stream resets before the rate applies (rapid reset) */
#define RESETS_PER_SECOND 33
#define LINGER_MS 1000

static uint64_t tag(const atp_grpc_server *g, unsigned op, uint32_t gen, uint32_t slot)
{
	return (uint64_t)(g->op_base + op) << 56 | (uint64_t)(gen & 0xffffffu) << 32 | slot;
}

uint32_t grpc_conn_index(const atp_grpc_server *g, const h2conn *hc)
{
	return (uint32_t)(hc - g->conns);
}

/* ---- connections ---- */

static void arm_recv(atp_grpc_server *g, h2conn *hc)
{
	struct io_uring_sqe *sqe = front_sqe(g->front);
	io_uring_prep_recv_multishot(sqe, hc->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = front_buf_group();
	sqe->user_data = tag(g, OP_H2_RECV, hc->gen, grpc_conn_index(g, hc));
	hc->recv_armed = true;
}

static void arm_accept(atp_grpc_server *g)
{
	struct io_uring_sqe *sqe = front_sqe(g->front);
	io_uring_prep_multishot_accept(sqe, g->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	sqe->user_data = tag(g, OP_H2_ACCEPT, 0, 0);
	g->accept_armed = true;
}

void grpc_conn_mark_dirty(atp_grpc_server *g, h2conn *hc)
{
	if (hc->state == H_FREE || hc->dirty)
		return;
	hc->dirty = true;
	g->dirty[g->n_dirty++] = hc;
}

/* Close at once (abort: with a reset). Its calls end with it; its requests in the ring are cancelled first. */
static void close_conn(atp_grpc_server *g, h2conn *hc, bool abort)
{
	if (hc->state == H_FREE)
		return;
	const uint32_t *live;
	uint32_t n = hc->calls ? live_copy(&g->live_calls, &live) : 0;
	for (uint32_t k = 0; k < n; k++)
		if (g->calls[live[k]].state != CALL_FREE && g->calls[live[k]].conn == hc)
			grpc_call_free(g, &g->calls[live[k]]);
	struct io_uring_sqe *sqe = front_sqe(g->front);
	io_uring_prep_cancel_fd(sqe, hc->fd, IORING_ASYNC_CANCEL_ALL);
	sqe->user_data = tag(g, OP_H2_CANCEL, 0, 0);
	front_submit(g->front);
	if (abort) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(hc->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(hc->fd);
	atp_tls_free(hc->tls);
	hc->tls = NULL;
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
	g->free_conns[g->n_free_conns++] = grpc_conn_index(g, hc);
	live_del(&g->live_conns, grpc_conn_index(g, hc));
	g->stats.open--;
}

/* Nothing more is read; what nghttp2 still has to say (a GOAWAY) goes out, then the close. */
static void closing(atp_grpc_server *g, h2conn *hc)
{
	if (hc->state != H_OPEN)
		return;
	hc->state = H_CLOSING;
	hc->closing_since_ms = grpc_now_ms(g);
	shutdown(hc->fd, SHUT_RD);
	grpc_conn_mark_dirty(g, hc);
}

bool grpc_conn_out_append(h2conn *hc, const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	uint64_t need = (uint64_t)hc->out_len + an + bn;
	if (need > hc->out_cap) {
		uint64_t cap = hc->out_cap ? hc->out_cap : 64u << 10;
		while (cap < need)
			cap *= 2;
		if (cap > UINT32_MAX)
			return false;
		uint8_t *p = realloc(hc->out, cap);
		if (!p)
			return false;
		hc->out = p;
		hc->out_cap = (uint32_t)cap;
	}
	memcpy(hc->out + hc->out_len, a, an);
	if (bn)
		memcpy(hc->out + hc->out_len + an, b, bn);
	hc->out_len = (uint32_t)need;
	return true;
}

static void send_bytes(atp_grpc_server *g, h2conn *hc, const uint8_t *p, size_t n)
{
	struct io_uring_sqe *sqe = front_sqe(g->front);
	io_uring_prep_send(sqe, hc->fd, p, (unsigned)n, MSG_NOSIGNAL);
	sqe->user_data = tag(g, OP_H2_SEND, hc->gen, grpc_conn_index(g, hc));
	if (!hc->sending)
		hc->send_start_ms = grpc_now_ms(g);
	hc->sending = true;
}

/* Under TLS: the rest of the records being sent, else the next ones the session has; false when none. */
static bool tls_send_next(atp_grpc_server *g, h2conn *hc)
{
	if (hc->tout_sent == hc->tout_len) {
		hc->tout_len = (uint32_t)atp_tls_take(hc->tls, hc->tout, TOUT_BYTES);
		hc->tout_sent = 0;
	}
	if (hc->tout_sent == hc->tout_len)
		return false;
	send_bytes(g, hc, hc->tout + hc->tout_sent, hc->tout_len - hc->tout_sent);
	return true;
}

/*
 * Hand nghttp2's output to the socket: one send in flight, up to OUT_CHUNK
 * bytes gathered; under TLS encrypted first, and before the handshake is
 * done only the handshake's records.
 */
static void flush_conn(atp_grpc_server *g, h2conn *hc)
{
	if (hc->state == H_FREE || hc->sending)
		return;
	if (hc->tls && !atp_tls_ready(hc->tls)) {
		tls_send_next(g, hc);
		return;
	}
	hc->out_len = hc->out_sent = 0;
	while (hc->out_len < OUT_CHUNK) {
		const uint8_t *data;
		/* DATA frames come through grpc_conn_out_append() from within (NGHTTP2_DATA_FLAG_NO_COPY). */
		ssize_t n = nghttp2_session_mem_send(hc->session, &data);
		if (n < 0 || (n > 0 && !grpc_conn_out_append(hc, data, (size_t)n, NULL, 0))) {
			close_conn(g, hc, true);
			return;
		}
		if (n == 0)
			break;
	}
	if (hc->tls) {
		if (hc->out_len && atp_tls_write(hc->tls, hc->out, hc->out_len) < 0) {
			close_conn(g, hc, true);
			return;
		}
		hc->out_len = 0;
		if (tls_send_next(g, hc))
			return;
	} else if (hc->out_len) {
		send_bytes(g, hc, hc->out, hc->out_len);
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
	hc->tout_len = hc->tout_sent = 0;
	hc->token_auth = NULL;
	if (g->tls && ((!hc->tout && !(hc->tout = malloc(TOUT_BYTES))) || !(hc->tls = atp_tls_new(g->tls)))) {
		close(fd);
		g->free_conns[g->n_free_conns++] = grpc_conn_index(g, hc);
		g->stats.refused_connections++;
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	hc->g = g;
	hc->fd = fd;
	hc->state = H_OPEN;
	live_add(&g->live_conns, grpc_conn_index(g, hc));
	hc->opened_ms = hc->last_active_ms = grpc_now_ms(g);
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
	grpc_conn_mark_dirty(g, hc);
}

/* Plaintext for nghttp2 (directly, or from TLS records); false when the connection is closing. */
static bool h2_in(void *ctx, const uint8_t *p, size_t n)
{
	h2conn *hc = ctx;
	ssize_t rv = nghttp2_session_mem_recv(hc->session, p, n);
	if (rv < 0) {
		if (rv != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
			atp_log(ATP_LOG_WARN, "grpc connection %u: %s; closing", grpc_conn_index(hc->g, hc),
				nghttp2_strerror((int)rv));
		closing(hc->g, hc);
		return false;
	}
	return true;
}

/* Ciphertext received: the session's plaintext to nghttp2; a failed session is closed (its alert sent if it can be). */
static void tls_in(atp_grpc_server *g, h2conn *hc, const uint8_t *p, size_t n)
{
	int r = atp_tls_feed(hc->tls, p, n, h2_in, hc);
	if (r == 0)
		return;
	if (r < 0) {
		atp_log(ATP_LOG_WARN, "grpc connection %u: %s; closing", grpc_conn_index(g, hc), atp_tls_error(hc->tls));
		if (!hc->sending) {
			size_t an = atp_tls_take(hc->tls, hc->tout, TOUT_BYTES);
			if (an && send(hc->fd, hc->tout, an, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
				/* the peer learns it from the close */
			}
		}
	}
	close_conn(g, hc, false);
}

static void on_recv(atp_grpc_server *g, h2conn *hc, bool live, const struct io_uring_cqe *cqe)
{
	bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;
	uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
	if (live && !(cqe->flags & IORING_CQE_F_MORE))
		hc->recv_armed = false;
	if (live && hc->state == H_OPEN) {
		if (cqe->res > 0 && has_buf) {
			hc->last_active_ms = grpc_now_ms(g);
			if (hc->tls)
				tls_in(g, hc, front_buf(g->front, bid), (size_t)cqe->res);
			else
				h2_in(hc, front_buf(g->front, bid), (size_t)cqe->res);
			grpc_conn_mark_dirty(g, hc);
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
	if (hc->tls) {
		hc->tout_sent += (uint32_t)res;
		if (tls_send_next(g, hc))
			return;
	} else if ((hc->out_sent += (uint32_t)res) < hc->out_len) {
		send_bytes(g, hc, hc->out + hc->out_sent, hc->out_len - hc->out_sent);
		return;
	}
	hc->sending = false;
	grpc_conn_mark_dirty(g, hc);
}

static void on_cqe(void *ctx, const struct io_uring_cqe *cqe)
{
	atp_grpc_server *g = ctx;
	unsigned op = (unsigned)(cqe->user_data >> 56) - g->op_base;
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

/* ---- timers ---- */

/* Connections not reading, lingering, silent before their preface, or idle. */
static void sweep(atp_grpc_server *g)
{
	uint64_t now = grpc_now_ms(g);
	const uint32_t *live;
	uint32_t n = live_copy(&g->live_conns, &live);
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = live[k];
		h2conn *hc = &g->conns[i];
		if (hc->state == H_FREE)
			continue;
		if (hc->sending && now - hc->send_start_ms > g->cfg.send_timeout_ms) {
			atp_log(ATP_LOG_WARN, "grpc connection %u: not reading for %u ms; reset", i, g->cfg.send_timeout_ms);
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
	grpc_method_after_turn(g);
	grpc_call_run_queue(g);
	if (g->cfg.hub)
		grpc_method_subscribe_wake(g);
	if (grpc_now_ms(g) - g->last_sweep_ms >= SWEEP_MS) {
		g->last_sweep_ms = grpc_now_ms(g);
		grpc_call_sweep(g);
		sweep(g);
		if (g->cfg.hub)
			atp_hub_tick(g->cfg.hub, grpc_now_ms(g));
	}
	flush_dirty(g);
}

static void on_done(void *ctx, const atp_engine_done *d)
{
	if (strcmp(d->source, API_SOURCE) == 0)
		grpc_method_on_done(ctx, d);
	else if (strcmp(d->source, ATP_DLQ_SOURCE) == 0)
		grpc_deadletters_on_done(ctx, d);
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
		.fanout_busy_bytes_s = 8ull << 20,
	};
}

static void destroy(atp_grpc_server *g)
{
	for (uint32_t i = 0; g->conns && i < g->cfg.max_connections; i++) {
		close_conn(g, &g->conns[i], false);
		free(g->conns[i].out);
		free(g->conns[i].tout);
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
	live_free(&g->live_conns);
	live_free(&g->live_calls);
	free(g->queue);
	free(g->pending);
	free(g->scratch);
	free(g->positions);
	free(g->dirty);
	free(g->subscribers);
	free(g);
}

atp_grpc_server *atp_grpc_server_create(atp_loop *front, const atp_grpc_config *cfg, char *err,
					size_t errlen)
{
	if (cfg->max_connections < 1 || cfg->max_streams < 1 || cfg->max_calls < 1 || cfg->max_message < 64 ||
	    cfg->max_message > ATP_V1_MESSAGE_MAX || cfg->max_header_list < 1024 || cfg->max_reserve_lines < 1 ||
	    cfg->max_reserve_lines > ATP_V1_LIST_MAX || cfg->max_scans < 1) {
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
	g->subscribers = malloc(cfg->max_calls * sizeof(uint32_t));
	g->calls = calloc(g->n_calls_total, sizeof(call));
	g->free_calls = malloc(g->n_calls_total * sizeof(uint32_t));
	g->queue = malloc(g->n_calls_total * sizeof(uint64_t));
	g->pending = calloc(PENDING_MAX, sizeof(pending));
	g->scratch = aligned_alloc(8, SCRATCH_BYTES);
	g->positions = malloc(ATP_V1_LIST_MAX * sizeof(atp_engine_position));
	if (!g->positions || !g->subscribers || !g->conns || !g->free_conns || !g->dirty || !g->calls || !g->free_calls ||
	    live_init(&g->live_conns, cfg->max_connections) < 0 || live_init(&g->live_calls, g->n_calls_total) < 0 || !g->queue || !g->pending ||
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
	grpc_call_set_callbacks(g->cbs);
	nghttp2_option_set_max_settings(g->opt, 32);
	nghttp2_option_set_max_outbound_ack(g->opt, 1000);
	nghttp2_option_set_stream_reset_rate_limit(g->opt, RESETS_BURST, RESETS_PER_SECOND);
	nghttp2_option_set_max_continuations(g->opt, 8);
	g->next_seq = atp_engine_durable_seq(g->e, API_SOURCE) + 1;
	if ((g->listen_fd = front_listen(cfg->listen, &g->port, err, errlen)) < 0) {
		destroy(g);
		return NULL;
	}
	g->last_sweep_ms = grpc_now_ms(g);
	front_ext ext = { .ctx = g, .on_cqe = on_cqe, .on_done = on_done, .after_turn = after_turn, .waiting = waiting };
	int base = front_attach(front, &ext);
	if (base < 0) {
		atp_errf(err, errlen, "the event loop has no room for another protocol");
		destroy(g);
		return NULL;
	}
	g->op_base = (unsigned)base;
	arm_accept(g);
	return g;
}

void atp_grpc_server_set_security(atp_grpc_server *g, atp_tls_ctx *tls, const atp_auth *auth)
{
	bool again = g->auth != NULL || auth != NULL;
	g->tls = tls;
	g->auth = auth;
	if (again && g->n_subscribers)
		grpc_method_subscribe_end_all(g, G_UNAVAILABLE, "the authorization was reloaded: resume from your token");
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
	grpc_history_poll(g, true); /* a History running: its thread is joined and its call answered */
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
		grpc_conn_mark_dirty(g, hc);
	}
	if (g->cfg.hub)
		grpc_method_subscribe_end_all(g, G_UNAVAILABLE, "the server is draining: resubscribe with your last token");
	flush_dirty(g);
	uint64_t until = grpc_now_ms(g) + 2000;
	while (g->calls_busy && grpc_now_ms(g) < until)
		if (atp_loop_run(g->front, 10) < 0)
			break;
	front_detach(g->front, g);
	destroy(g);
}
