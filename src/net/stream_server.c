/*
 * stream_server.c — the TCP event stream's connections on the front end's
 * loop (atp/stream_server.h, front.h): listening, accepting, receiving into
 * the loop's provided buffers, sending, timers, closing; what the bytes
 * mean is stream_frames.c's.
 *
 * Every operation's user_data is (op, generation, slot): a completion for a
 * connection that has since been closed (its slot reused or not) carries a
 * stale generation and is ignored, apart from giving back its buffer. A
 * receive also carries the number of its arming, so a cancel can only ever
 * hit the receive it was meant for.
 * A slot's out buffer is never freed while the server lives, so a send
 * still in flight for a closed connection never reads freed memory.
 */
#define _GNU_SOURCE
#include "stream_internal.h"
#include "atp/log.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* The user_data of one of s's operations: op (< FRONT_EXT_OPS) among the codes the loop gave s. */
static uint64_t tag(const atp_stream_server *s, unsigned op, uint32_t gen, uint32_t slot)
{
	return (uint64_t)(s->op_base + op) << 56 | (uint64_t)(gen & 0xffffffu) << 32 | slot;
}

/* The generation field of c's operations: its own (12 bits), and for receives the arming (12 bits). */
static uint32_t gen_of(const conn *c, bool recv)
{
	return (c->gen & 0xfffu) << 12 | (recv ? c->rgen & 0xfffu : 0);
}

uint32_t srv_slot(const atp_stream_server *s, const conn *c)
{
	return (uint32_t)(c - s->conns);
}

static void arm_accept(atp_stream_server *s)
{
	struct io_uring_sqe *sqe = front_sqe(s->loop);
	io_uring_prep_multishot_accept(sqe, s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	sqe->user_data = tag(s, OP_ACCEPT, 0, 0);
	s->accept_armed = true;
}

static void arm_recv(atp_stream_server *s, conn *c)
{
	struct io_uring_sqe *sqe = front_sqe(s->loop);
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = front_buf_group();
	c->rgen++;
	sqe->user_data = tag(s, OP_RECV, gen_of(c, true), srv_slot(s, c));
	c->recv_armed = true;
	c->last_cqe_ms = front_now_ms(s->loop);
}

void srv_cancel_recv(atp_stream_server *s, conn *c)
{
	struct io_uring_sqe *sqe = front_sqe(s->loop);
	io_uring_prep_cancel64(sqe, tag(s, OP_RECV, gen_of(c, true), srv_slot(s, c)), 0);
	sqe->user_data = tag(s, OP_CANCEL, gen_of(c, true), srv_slot(s, c));
}

/* ---- sending ---- */

static void close_conn(atp_stream_server *s, conn *c);

static void send_bytes(atp_stream_server *s, conn *c, const uint8_t *p, size_t n)
{
	struct io_uring_sqe *sqe = front_sqe(s->loop);
	io_uring_prep_send(sqe, c->fd, p, (unsigned)n, MSG_NOSIGNAL);
	sqe->user_data = tag(s, OP_SEND, gen_of(c, false), srv_slot(s, c));
	if (!c->sending)
		c->send_start_ms = front_now_ms(s->loop);
	c->sending = true;
}

/* Under TLS: the rest of the records being sent, else the next ones the session has; false when none. */
static bool tls_send_next(atp_stream_server *s, conn *c)
{
	if (c->tout_sent == c->tout_len) {
		c->tout_len = (uint32_t)atp_tls_take(c->tls, c->tout, TOUT_BYTES);
		c->tout_sent = 0;
	}
	if (c->tout_sent == c->tout_len)
		return false;
	send_bytes(s, c, c->tout + c->tout_sent, c->tout_len - c->tout_sent);
	return true;
}

/*
 * Send out[out_sent, out_len). Under TLS it is encrypted whole first (and
 * counts as sent); the records go out from the session's buffer, after
 * whatever handshake bytes wait there.
 */
void srv_start_send(atp_stream_server *s, conn *c)
{
	if (!c->tls) {
		send_bytes(s, c, c->out + c->out_sent, c->out_len - c->out_sent);
		return;
	}
	if (c->out_sent < c->out_len && atp_tls_write(c->tls, c->out + c->out_sent, c->out_len - c->out_sent) < 0) {
		close_conn(s, c);  /* before the handshake (a timeout), or out of memory: no frame can go */
		return;
	}
	c->out_sent = c->out_len;
	tls_send_next(s, c);
}

/* ---- connections ---- */

/*
 * Give the slot back: the descriptor closed, abortively (a reset) when bytes
 * are still unsent. Its requests in the ring hold the socket open past
 * close(): they are cancelled first, while the descriptor still names it.
 */
static void release(atp_stream_server *s, conn *c, bool abort)
{
	struct io_uring_sqe *sqe = front_sqe(s->loop);
	io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
	sqe->user_data = tag(s, OP_CANCEL_FD, 0, 0);
	front_submit(s->loop);
	if (abort) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(c->fd);
	atp_tls_free(c->tls);
	c->tls = NULL;
	c->state = C_FREE;
	c->fd = -1;
	s->free_slots[s->n_free++] = srv_slot(s, c);
	live_del(&s->used, srv_slot(s, c));
	s->stats.closed++;
	s->stats.open--;
}

static int unsent(const conn *c)
{
	int queued = 0;
	return ioctl(c->fd, SIOCOUTQ, &queued) == 0 ? queued : 0;
}

/*
 * Close c: nothing more is read or sent. What it was sent still goes out,
 * followed by a FIN; a peer that has not taken it within LINGER_MS gets a
 * reset instead (a FIN would wait behind bytes it does not read).
 */
static void close_conn(atp_stream_server *s, conn *c)
{
	if (c->state == C_FREE || c->state == C_LINGER)
		return;
	if (c->source != ATP_SOURCE_NONE && s->owner[c->source] == srv_slot(s, c) + 1)
		s->owner[c->source] = 0;
	shutdown(c->fd, SHUT_RDWR);  /* completes the recv still armed (its CQE is then stale) */
	if (c->in_cap > FRONT_BUF_SIZE) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
	c->gen++;
	c->in_len = 0;
	if (unsent(c) > 0) {
		c->state = C_LINGER;
		c->linger_until_ms = front_now_ms(s->loop) + LINGER_MS;
		return;
	}
	release(s, c, false);
}

/*
 * Close c after a last frame with this error and reason (sent once any send
 * in flight is done); nothing more of its input is read or applied.
 */
void srv_fail(atp_stream_server *s, conn *c, int error, const char *fmt, ...)
{
	if (c->state == C_CLOSING || c->state == C_FREE)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->close_reason, sizeof(c->close_reason), fmt, ap);
	va_end(ap);
	const atp_str src = srv_source_of(s, c);
	atp_log(ATP_LOG_WARN, "connection %u (%.*s): closing: %s (%s)", srv_slot(s, c), (int)src.len,
		src.ptr ? src.ptr : "", c->close_reason, atp_status_name(error));
	uint64_t durable = srv_durable_of(s, c);
	bool hello = c->state == C_HELLO;
	c->close_error = error;
	c->state = C_CLOSING;
	if (hello)
		c->source = ATP_SOURCE_NONE;
	if (c->recv_armed)
		srv_cancel_recv(s, c);
	c->in_len = 0;
	if (c->sending)
		return;  /* the last frame follows the send in flight */
	srv_build_reply(s, c, durable);
	c->last_queued = true;
	srv_start_send(s, c);
}

static int alloc_stream(atp_stream_server *s, conn *c)
{
	if (!c->out && !(c->out = malloc(OUT_BYTES)))
		return -1;
	if (s->tls && !c->tout && !(c->tout = malloc(TOUT_BYTES)))
		return -1;
	if (s->tls && !(c->tls = atp_tls_new(s->tls)))
		return -1;
	c->tout_len = c->tout_sent = 0;
	return 0;
}

static void on_accept(atp_stream_server *s, int fd)
{
	s->stats.accepted++;
	if ((s->n_free == 0 || s->stopping) && s->tls) {
		close(fd);  /* a Welcome would need a handshake first */
		s->stats.refused_connections++;
		return;
	}
	if (s->n_free == 0 || s->stopping) {
		/* Refused cleanly: a Welcome saying why, then the close; this fresh socket's buffer takes it. */
		uint8_t mem[256] __attribute__((aligned(8)));
		atp_fb_builder b;
		size_t n;
		const char *why = s->stopping ? "the server is stopping" : "too many connections";
		atp_fb_builder_init(&b, mem + 8, sizeof(mem) - 8);
		atp_wire_welcome w = { .error = s->stopping ? ATP_E_SHUTDOWN : ATP_E_LIMIT,
				       .reason = atp_str_of(why, strlen(why)) };
		const uint8_t *p = atp_fb_finish(&b, atp_wire_build_welcome(&b, &w), NULL, &n);
		uint8_t frame[260];
		uint32_t len = (uint32_t)n;
		memcpy(frame, &len, 4);
		memcpy(frame + 4, p, n);
		if (send(fd, frame, 4 + n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			/* nothing more to do for it */
		}
		close(fd);
		s->stats.refused_connections++;
		return;
	}
	conn *c = &s->conns[s->free_slots[--s->n_free]];
	live_add(&s->used, srv_slot(s, c));
	/* Acks go out at once; a fixed send buffer (Acks are small) makes a peer that does not read them
	 * stall our send soon, so ack_timeout_ms finds it, instead of the kernel buffering megabytes. */
	int one = 1, sndbuf = 16 << 10;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	uint32_t gen = c->gen;
	uint8_t *out = c->out, *in = c->in, *tout = c->tout;
	uint32_t in_cap = c->in_cap;
	atp_wire_refusal *refusals = c->refusals;
	*c = (conn){ .fd = fd, .gen = gen, .state = C_HELLO, .source = ATP_SOURCE_NONE, .out = out, .in = in,
		     .in_cap = in_cap, .refusals = refusals, .tout = tout };
	c->last_recv_ms = front_now_ms(s->loop);
	c->frame_start_ms = front_now_ms(s->loop);  /* the Hello is due within frame_timeout_ms */
	s->stats.open++;
	if (alloc_stream(s, c) < 0) {
		close_conn(s, c);
		return;
	}
	arm_recv(s, c);
}

/* ---- TLS ---- */

typedef struct plain_ctx {
	atp_stream_server *s;
	conn *c;
} plain_ctx;

static bool plain_in(void *ctx, const uint8_t *p, size_t n)
{
	plain_ctx *pc = ctx;
	srv_on_data(pc->s, pc->c, p, (uint32_t)n);
	return pc->c->state == C_HELLO || pc->c->state == C_STREAM;
}

/* Ciphertext received on c: its plaintext to the frames, the handshake's replies out. */
static void tls_in(atp_stream_server *s, conn *c, const uint8_t *p, uint32_t n)
{
	plain_ctx pc = { s, c };
	int r = atp_tls_feed(c->tls, p, n, plain_in, &pc);
	if (r < 0) {
		atp_log(ATP_LOG_WARN, "connection %u: %s; closing", srv_slot(s, c), atp_tls_error(c->tls));
		if (!c->sending) {  /* the alert, if it fits the socket's buffer now */
			size_t an = atp_tls_take(c->tls, c->tout, TOUT_BYTES);
			if (an && send(c->fd, c->tout, an, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
				/* the peer learns it from the close */
			}
		}
		close_conn(s, c);
		return;
	}
	if (r == 1 && c->state != C_CLOSING) {
		close_conn(s, c);  /* close_notify: as the end of its stream */
		return;
	}
	if (!c->sending && (c->state == C_HELLO || c->state == C_STREAM) && atp_tls_has_output(c->tls))
		srv_start_send(s, c);
}

int srv_authorize(atp_stream_server *s, const conn *c, atp_str name, char *why, size_t whylen)
{
	if (!s->auth && !(s->tls && atp_tls_ctx_asks_clients(s->tls)))
		return ATP_OK;
	const char *const *names = NULL;
	const char *missing = "a plaintext connection has no client certificate";
	unsigned n = c->tls ? atp_tls_peer_names(c->tls, &names, &missing) : 0;
	char who[64], op[ATP_SOURCE_MAX + 32];
	snprintf(who, sizeof(who), "connection %u", srv_slot(s, c));
	snprintf(op, sizeof(op), "Hello as %.*s", (int)name.len, name.ptr);
	if (!n) {
		atp_auth_refused(true, who, op, missing);
		snprintf(why, whylen, "%s", missing);
		return ATP_E_UNAUTHENTICATED;
	}
	if (s->auth && !atp_auth_may_send(s->auth, atp_auth_find(s->auth, names, n), name.ptr, name.len)) {
		atp_auth_refused(false, names[0], op, "not granted this source");
		snprintf(why, whylen, "%s may not send as source %.*s", names[0], (int)name.len, name.ptr);
		return ATP_E_FORBIDDEN;
	}
	return ATP_OK;
}

void atp_stream_server_set_security(atp_stream_server *s, atp_tls_ctx *tls, const atp_auth *auth)
{
	s->tls = tls;
	s->auth = auth;
	char why[200];
	for (uint32_t i = 0; i < s->cfg.max_connections; i++) {
		conn *c = &s->conns[i];
		if (c->state != C_STREAM)
			continue;
		int rc = srv_authorize(s, c, srv_source_of(s, c), why, sizeof(why));
		if (rc != ATP_OK)
			srv_fail(s, c, rc, "%s", why);
	}
}

/* ---- completions ---- */

static void on_recv(atp_stream_server *s, conn *c, bool live, const struct io_uring_cqe *cqe)
{
	bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;
	uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
	if (live && !(cqe->flags & IORING_CQE_F_MORE))
		c->recv_armed = false;
	if (live)
		c->last_cqe_ms = front_now_ms(s->loop);
	if (live && cqe->res > 0 && has_buf && (c->state == C_HELLO || c->state == C_STREAM) && c->tls)
		tls_in(s, c, front_buf(s->loop, bid), (uint32_t)cqe->res);
	else if (live && cqe->res > 0 && has_buf && (c->state == C_HELLO || c->state == C_STREAM))
		srv_on_data(s, c, front_buf(s->loop, bid), (uint32_t)cqe->res);
	else if (live && cqe->res == 0 && c->state != C_CLOSING)
		close_conn(s, c);  /* the peer closed: what it sent and we took stays taken */
	else if (live && cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -ECANCELED && c->state != C_CLOSING)
		close_conn(s, c);
	if (has_buf)
		front_give_back(s->loop, bid);
}

static void on_send(atp_stream_server *s, conn *c, int res)
{
	if (res < 0) {
		close_conn(s, c);
		return;
	}
	if (c->tls) {  /* records: the plaintext counted as sent already */
		c->tout_sent += (uint32_t)res;
		if (tls_send_next(s, c))
			return;
		res = 0;
	}
	c->out_sent += (uint32_t)res;
	if (c->out_sent < c->out_len) {
		srv_start_send(s, c);
		return;
	}
	c->sending = false;
	if (c->state == C_CLOSING) {
		if (!c->last_queued) {  /* the send that finished was an ordinary one: now the last frame */
			srv_build_reply(s, c, srv_durable_of(s, c));
			c->last_queued = true;
			srv_start_send(s, c);
			return;
		}
		close_conn(s, c);
	}
}

static void on_cqe(void *ctx, const struct io_uring_cqe *cqe)
{
	atp_stream_server *s = ctx;
	unsigned op = (unsigned)(cqe->user_data >> 56) - s->op_base;
	uint32_t gen = (uint32_t)(cqe->user_data >> 32) & 0xffffffu, slot = (uint32_t)cqe->user_data;
	conn *c = op == OP_RECV || op == OP_SEND ? &s->conns[slot] : NULL;
	bool live = c && c->state != C_FREE && gen_of(c, op != OP_SEND) == gen;
	switch (op) {
	case OP_ACCEPT:
		if (!(cqe->flags & IORING_CQE_F_MORE))
			s->accept_armed = false;
		if (cqe->res >= 0)
			on_accept(s, cqe->res);
		else if (cqe->res != -ECANCELED && !s->stopping)
			atp_log(ATP_LOG_ERROR, "accept: %s", strerror(-cqe->res));
		break;
	case OP_RECV:
		on_recv(s, c, live, cqe);
		break;
	case OP_SEND:
		if (live)
			on_send(s, c, cqe->res);
		break;
	default:
		break;
	}
}

/* ---- acknowledgements ---- */

/* Retire what became durable, send the Acks due, read again from connections no longer held back. */
static void service(atp_stream_server *s)
{
	/* Each turn starts one slot further, so no connection is always the first to take freed ring space. */
	const uint32_t *used;
	uint32_t n = live_copy(&s->used, &used), first = n ? s->next_first++ % n : 0;
	s->waiting = false;
	for (uint32_t k = 0; k < n; k++) {
		conn *c = &s->conns[used[(first + k) % n]];
		if (c->state != C_STREAM)
			continue;
		uint64_t durable = c->acked_seq;
		if (c->fifo_len) {
			durable = srv_durable_of(s, c);
			while (c->fifo_len && c->fifo[c->fifo_head].cover <= durable) {
				c->unacked_bytes -= c->fifo[c->fifo_head].bytes;
				c->fifo_head = (c->fifo_head + 1) % FIFO_MAX;
				c->fifo_len--;
				c->want_ack = true;
			}
		}
		if ((c->want_ack || durable > c->acked_seq || c->n_refusals) && !c->sending) {
			srv_build_reply(s, c, durable > c->acked_seq ? durable : c->acked_seq);
			srv_start_send(s, c);
		}
		if (c->parked && !s->stopping) {
			c->parked = false;
			srv_drain(s, c);
			if (c->in_len && !c->parked)
				c->frame_start_ms = front_now_ms(s->loop);  /* the rest of the frame had no chance to come while parked */
		}
		if (c->state == C_STREAM && !c->parked && !c->recv_armed && !s->stopping)
			arm_recv(s, c);
		s->waiting |= c->state == C_STREAM && (c->fifo_len || c->parked);
	}
}

static void sweep(atp_stream_server *s)
{
	const uint32_t *used;
	uint32_t n = live_copy(&s->used, &used);
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = used[k];
		conn *c = &s->conns[i];
		if (c->state == C_FREE)
			continue;
		uint64_t now = front_now_ms(s->loop);
		if (c->state == C_LINGER) {
			bool stuck = unsent(c) > 0;
			if (!stuck || now >= c->linger_until_ms)
				release(s, c, stuck);
		} else if (c->sending && now - c->send_start_ms > s->cfg.ack_timeout_ms) {
			atp_str src = srv_source_of(s, c);
			atp_log(ATP_LOG_WARN, "connection %u (%.*s): not taking its acks for %u ms; reset", i,
				(int)src.len, src.ptr ? src.ptr : "", s->cfg.ack_timeout_ms);
			c->state = C_LINGER;  /* no more waiting: released at once, with a reset */
			c->gen++;
			if (c->source != ATP_SOURCE_NONE && s->owner[c->source] == i + 1)
				s->owner[c->source] = 0;
			release(s, c, true);
		} else if (c->state == C_CLOSING) {
			continue;
		} else if (!c->parked && c->frame_start_ms && now - c->frame_start_ms > s->cfg.frame_timeout_ms) {
			srv_fail(s, c, ATP_E_TIMEOUT, "%s not complete within %u ms",
				  c->state == C_HELLO ? "the Hello" : "a frame", s->cfg.frame_timeout_ms);
		} else if (now - c->last_recv_ms > s->cfg.idle_ms && !c->fifo_len) {
			srv_fail(s, c, ATP_E_TIMEOUT, "idle for %u ms", s->cfg.idle_ms);
		} else if (c->recv_armed && !c->parked && now - c->last_cqe_ms >= WATCHDOG_MS) {
			/* Bytes waiting and no completion: a receive that missed its wake-up. Cancel it; its
			 * last completion (-ECANCELED) lets service() arm a fresh one. */
			int waiting = 0;
			if (ioctl(c->fd, FIONREAD, &waiting) == 0 && waiting > 0) {
				if (!c->watchdog_said)
					atp_log(ATP_LOG_WARN, "connection %u: %d bytes waiting, no receive for %u ms; "
							"receiving again", i, waiting, WATCHDOG_MS);
				c->watchdog_said = true;
				srv_cancel_recv(s, c);
				c->last_cqe_ms = now;
			}
		}
	}
}

/* ---- the stream's turn ---- */

static void after_turn(void *ctx)
{
	atp_stream_server *s = ctx;
	if (s->failed)
		return;
	if (!s->accept_armed && !s->stopping && s->listen_fd >= 0)
		arm_accept(s);
	service(s);
	uint64_t now = front_now_ms(s->loop);
	if (now - s->last_sweep_ms >= SWEEP_MS) {
		s->last_sweep_ms = now;
		sweep(s);
	}
}

static bool waiting(void *ctx)
{
	return ((atp_stream_server *)ctx)->waiting;
}

/* ---- set-up and tear-down ---- */

atp_stream_config atp_stream_config_default(void)
{
	return (atp_stream_config){
		.listen = "127.0.0.1:7400",
		.max_connections = 1024,
		.max_frame = 1u << 20,
		.max_batch = ATP_WIRE_BATCH_MAX,
		.max_unacked = 8u << 20,
		.frame_timeout_ms = 10000,
		.idle_ms = 600000,
		.ack_timeout_ms = 30000,
	};
}

static void destroy(atp_stream_server *s)
{
	for (uint32_t i = 0; s->conns && i < s->cfg.max_connections; i++) {
		conn *c = &s->conns[i];
		if (c->state != C_FREE)
			close(c->fd);
		atp_tls_free(c->tls);
		free(c->tout);
		free(c->in);
		free(c->out);
		free(c->refusals);
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	atp_sources_destroy(s->sources);
	free(s->conns);
	free(s->free_slots);
	live_free(&s->used);
	free(s->owner);
	free(s->events);
	free(s->times);
	free(s->scratch);
	free(s);
}

atp_stream_server *atp_stream_server_create(atp_loop *loop, const atp_stream_config *cfg, char *err, size_t errlen)
{
	if (cfg->max_connections < 1 || cfg->max_frame < 64 || cfg->max_frame > ATP_WIRE_MESSAGE_MAX ||
	    cfg->max_batch < 1 || cfg->max_batch > ATP_WIRE_BATCH_MAX || cfg->max_unacked < cfg->max_frame) {
		atp_errf(err, errlen, "bad stream configuration (max_unacked must be at least max_frame)");
		return NULL;
	}
	atp_stream_server *s = calloc(1, sizeof(*s));
	if (!s) {
		atp_errf(err, errlen, "out of memory");
		return NULL;
	}
	s->loop = loop;
	s->e = front_engine(loop);
	s->cfg = *cfg;
	s->listen_fd = -1;

	/* Room for every connection's descriptor. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (uint64_t)s->cfg.max_connections + 64 > rl.rlim_cur) {
		s->cfg.max_connections = rl.rlim_cur > 128 ? (uint32_t)rl.rlim_cur - 64 : 64;
		atp_log(ATP_LOG_WARN, "open-file limit %llu: at most %u connections", (unsigned long long)rl.rlim_cur,
			s->cfg.max_connections);
	}
	uint32_t max = s->cfg.max_connections;
	s->conns = calloc(max, sizeof(conn));
	s->free_slots = malloc(max * sizeof(uint32_t));
	s->sources = atp_sources_create(1u << 16);
	s->owner = calloc(1u << 16, sizeof(uint32_t));
	s->events = malloc(ATP_WIRE_BATCH_MAX * sizeof(atp_event));
	s->times = malloc(ATP_WIRE_BATCH_MAX * sizeof(atp_wire_event_time));
	s->scratch = aligned_alloc(8, OUT_BYTES);
	if (!s->conns || !s->free_slots || live_init(&s->used, max) < 0 || !s->sources || !s->owner || !s->events || !s->times || !s->scratch) {
		atp_errf(err, errlen, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < max; i++) {
		s->conns[i].fd = -1;
		s->free_slots[s->n_free++] = max - 1 - i;
	}
	if ((s->listen_fd = front_listen(cfg->listen, &s->port, err, errlen)) < 0)
		goto fail;
	front_ext ext = { .ctx = s, .on_cqe = on_cqe, .on_refused = srv_on_refused, .after_turn = after_turn,
			  .waiting = waiting };
	int base = front_attach(loop, &ext);
	if (base < 0) {
		atp_errf(err, errlen, "the loop has no room for another protocol");
		goto fail;
	}
	s->op_base = (unsigned)base;
	s->last_sweep_ms = front_now_ms(loop);
	arm_accept(s);
	front_submit(loop);
	return s;
fail:
	destroy(s);
	return NULL;
}

uint16_t atp_stream_server_port(const atp_stream_server *s)
{
	return s->port;
}

void atp_stream_server_stats(const atp_stream_server *s, atp_stream_stats *out)
{
	*out = s->stats;
}

int atp_stream_server_shutdown(atp_stream_server *s)
{
	s->stopping = true;
	if (s->listen_fd >= 0) {
		shutdown(s->listen_fd, SHUT_RDWR);  /* ends the multishot accept */
		close(s->listen_fd);
		s->listen_fd = -1;
	}
	int rc = s->failed || atp_engine_error(s->e) ? ATP_E_IO : atp_engine_sync(s->e);
	for (uint32_t i = 0; i < s->cfg.max_connections; i++) {
		conn *c = &s->conns[i];
		if (c->state == C_STREAM || c->state == C_HELLO)
			srv_fail(s, c, ATP_E_SHUTDOWN, "the server is stopping");
	}
	/* Let the last frames go out, for at most a second. */
	uint64_t until = front_now_ms(s->loop) + 1000;  /* the loop's clock, read at every turn */
	while (s->stats.open && front_now_ms(s->loop) < until && !s->failed && atp_loop_run(s->loop, 10) == 0)
		;
	front_detach(s->loop, s);
	destroy(s);
	return rc;
}

