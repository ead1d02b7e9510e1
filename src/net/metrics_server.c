/*
 * metrics_server.c — the Prometheus scrape listener on the front end's
 * loop (atp/metrics_server.h): a multishot accept, then per connection one
 * operation in flight at a time, a receive into its request buffer until
 * the head is whole, then the sends of the answer, then the close. A
 * connection is only ever closed from the completion of its operation (a
 * timeout shuts the socket down, which completes it), so no operation
 * outlives its slot.
 */
#define _GNU_SOURCE
#include "front.h"

#include "atp/metrics_server.h"
#include "atp/status.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 8
#define REQ_BYTES 4096
#define REQ_TIMEOUT_MS 5000
#define HEAD_ROOM 256            /* the response head goes right before the body */

enum { OP_M_ACCEPT, OP_M_RECV, OP_M_SEND };  /* from the server's op_base */
enum { M_FREE, M_READ, M_SEND };

typedef struct mconn {
	int fd;
	uint32_t gen;
	uint8_t state;
	bool shut;                   /* shut down by a timeout or the server's stop */
	uint64_t since_ms;           /* accepted */
	char req[REQ_BYTES];
	uint32_t req_len;
	char *out;                   /* HEAD_ROOM + max_bytes, the slot's for good once allocated */
	uint32_t out_off, out_end;   /* what is left to send */
} mconn;

struct atp_metrics_server {
	atp_loop *front;
	unsigned op_base;
	int listen_fd;
	uint16_t port;
	bool accept_armed, stopping;
	size_t max_bytes;
	atp_metrics_render_fn render;
	void *ctx;
	uint64_t scrapes;
	mconn conns[MAX_CONNS];
};

static uint64_t tag(const atp_metrics_server *m, unsigned op, uint32_t gen, uint32_t slot)
{
	return (uint64_t)(m->op_base + op) << 56 | (uint64_t)(gen & 0xffffffu) << 32 | slot;
}

static void arm_accept(atp_metrics_server *m)
{
	struct io_uring_sqe *sqe = front_sqe(m->front);
	io_uring_prep_multishot_accept(sqe, m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	sqe->user_data = tag(m, OP_M_ACCEPT, 0, 0);
	m->accept_armed = true;
}

static void arm_recv(atp_metrics_server *m, mconn *c)
{
	struct io_uring_sqe *sqe = front_sqe(m->front);
	io_uring_prep_recv(sqe, c->fd, c->req + c->req_len, REQ_BYTES - 1 - c->req_len, 0);
	sqe->user_data = tag(m, OP_M_RECV, c->gen, (uint32_t)(c - m->conns));
}

static void arm_send(atp_metrics_server *m, mconn *c)
{
	struct io_uring_sqe *sqe = front_sqe(m->front);
	io_uring_prep_send(sqe, c->fd, c->out + c->out_off, c->out_end - c->out_off, MSG_NOSIGNAL);
	sqe->user_data = tag(m, OP_M_SEND, c->gen, (uint32_t)(c - m->conns));
}

/* From the completion of c's last operation only. */
static void close_conn(mconn *c)
{
	close(c->fd);
	c->fd = -1;
	c->state = M_FREE;
	c->shut = false;
	c->gen++;
}

static void on_accept(atp_metrics_server *m, int fd)
{
	mconn *c = NULL;
	for (unsigned i = 0; i < MAX_CONNS && !c; i++)
		if (m->conns[i].state == M_FREE)
			c = &m->conns[i];
	if (!c || m->stopping) {
		close(fd);  /* a scraper retries at its next interval */
		return;
	}
	c->fd = fd;
	c->state = M_READ;
	c->req_len = 0;
	c->since_ms = front_now_ms(m->front);
	arm_recv(m, c);
}

/* The answer: status line, headers and body in c->out, then its sends. */
static void answer(atp_metrics_server *m, mconn *c, int code, const char *reason, const char *body)
{
	if (!c->out && !(c->out = malloc(HEAD_ROOM + m->max_bytes))) {
		close_conn(c);
		return;
	}
	char *b = c->out + HEAD_ROOM;
	size_t n;
	const char *type = "text/plain; charset=utf-8";
	if (body) {
		n = strlen(body);
		memcpy(b, body, n);
	} else {
		n = m->render(m->ctx, b, m->max_bytes);
		assert(n <= m->max_bytes);
		type = "text/plain; version=0.0.4; charset=utf-8";
		m->scrapes++;
	}
	char head[HEAD_ROOM];
	int h = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", code,
			 reason, type, n);
	assert(h > 0 && h < HEAD_ROOM);
	memcpy(b - h, head, (size_t)h);
	c->out_off = HEAD_ROOM - (uint32_t)h;
	c->out_end = HEAD_ROOM + (uint32_t)n;
	c->state = M_SEND;
	arm_send(m, c);
}

/* The request head is whole (or too big): which answer. */
static void on_request(atp_metrics_server *m, mconn *c, bool whole)
{
	if (!whole) {
		answer(m, c, 431, "Request Header Fields Too Large", "request head over 4 KiB\n");
		return;
	}
	const char *r = c->req;
	bool get = strncmp(r, "GET ", 4) == 0, head = strncmp(r, "HEAD ", 5) == 0;
	if (!get)
		answer(m, c, 405, "Method Not Allowed", head ? "" : "only GET\n");
	else if (strncmp(r + 4, "/metrics", 8) == 0 && (r[12] == ' ' || r[12] == '?'))
		answer(m, c, 200, "OK", NULL);
	else
		answer(m, c, 404, "Not Found", "atpd serves /metrics\n");
}

static void on_recv(atp_metrics_server *m, mconn *c, int res)
{
	if (res <= 0 || c->shut) {
		close_conn(c);
		return;
	}
	c->req_len += (uint32_t)res;
	c->req[c->req_len] = 0;
	if (strstr(c->req, "\r\n\r\n"))
		on_request(m, c, true);
	else if (c->req_len >= REQ_BYTES - 1)
		on_request(m, c, false);
	else
		arm_recv(m, c);
}

static void on_send(atp_metrics_server *m, mconn *c, int res)
{
	if (res <= 0 || c->shut) {
		close_conn(c);
		return;
	}
	c->out_off += (uint32_t)res;
	if (c->out_off < c->out_end) {
		arm_send(m, c);
		return;
	}
	shutdown(c->fd, SHUT_WR);
	close_conn(c);
}

static void on_cqe(void *ctx, const struct io_uring_cqe *cqe)
{
	atp_metrics_server *m = ctx;
	unsigned op = (unsigned)(cqe->user_data >> 56) - m->op_base;
	uint32_t gen = (uint32_t)(cqe->user_data >> 32) & 0xffffffu, slot = (uint32_t)cqe->user_data;
	if (op == OP_M_ACCEPT) {
		if (!(cqe->flags & IORING_CQE_F_MORE))
			m->accept_armed = false;
		if (cqe->res >= 0)
			on_accept(m, cqe->res);
		return;
	}
	assert(slot < MAX_CONNS);
	mconn *c = &m->conns[slot];
	/* One operation in flight per connection: its completion is always the live one. */
	assert(c->state != M_FREE && (c->gen & 0xffffffu) == gen);
	if (op == OP_M_RECV)
		on_recv(m, c, cqe->res);
	else
		on_send(m, c, cqe->res);
}

/* Each turn: the accept re-armed if it ended, a scraper too slow with its request shut down. */
static void after_turn(void *ctx)
{
	atp_metrics_server *m = ctx;
	if (!m->accept_armed && !m->stopping)
		arm_accept(m);
	uint64_t now = front_now_ms(m->front);
	for (unsigned i = 0; i < MAX_CONNS; i++) {
		mconn *c = &m->conns[i];
		if (c->state == M_READ && !c->shut && now - c->since_ms > REQ_TIMEOUT_MS) {
			c->shut = true;
			shutdown(c->fd, SHUT_RDWR);
		}
	}
}

static void destroy(atp_metrics_server *m)
{
	for (unsigned i = 0; i < MAX_CONNS; i++)
		free(m->conns[i].out);
	if (m->listen_fd >= 0)
		close(m->listen_fd);
	free(m);
}

atp_metrics_server *atp_metrics_server_create(atp_loop *front, const char *listen, size_t max_bytes,
					      atp_metrics_render_fn render, void *ctx, char *err, size_t errlen)
{
	atp_metrics_server *m = calloc(1, sizeof(*m));
	if (!m) {
		atp_errf(err, errlen, "out of memory");
		return NULL;
	}
	m->front = front;
	m->max_bytes = max_bytes;
	m->render = render;
	m->ctx = ctx;
	for (unsigned i = 0; i < MAX_CONNS; i++)
		m->conns[i].fd = -1;
	if ((m->listen_fd = front_listen(listen, &m->port, err, errlen)) < 0) {
		destroy(m);
		return NULL;
	}
	front_ext ext = { .ctx = m, .on_cqe = on_cqe, .after_turn = after_turn };
	int base = front_attach(front, &ext);
	if (base < 0) {
		atp_errf(err, errlen, "the event loop has no room for another protocol");
		destroy(m);
		return NULL;
	}
	m->op_base = (unsigned)base;
	arm_accept(m);
	return m;
}

uint16_t atp_metrics_server_port(const atp_metrics_server *m)
{
	return m->port;
}

uint64_t atp_metrics_server_scrapes(const atp_metrics_server *m)
{
	return m->scrapes;
}

void atp_metrics_server_shutdown(atp_metrics_server *m)
{
	m->stopping = true;
	shutdown(m->listen_fd, SHUT_RDWR);  /* ends the multishot accept */
	for (unsigned i = 0; i < MAX_CONNS; i++)
		if (m->conns[i].state != M_FREE && !m->conns[i].shut) {
			m->conns[i].shut = true;
			shutdown(m->conns[i].fd, SHUT_RDWR);
		}
	for (int turns = 0; turns < 100; turns++) {
		bool busy = m->accept_armed;
		for (unsigned i = 0; i < MAX_CONNS; i++)
			busy |= m->conns[i].state != M_FREE;
		if (!busy || atp_loop_run(m->front, 10) < 0)
			break;
	}
	front_detach(m->front, m);
	destroy(m);
}
