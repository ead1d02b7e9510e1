/*
 * udp_server.c — the event stream over UDP on the front end's loop (see
 * atp/udp_server.h): one socket, a multishot recvmsg into the loop's
 * provided buffers, a table of peers (address and port -> source, what
 * was submitted and acknowledged), Acks and Welcomes sent with sendto()
 * (a UDP send does not block; one that cannot go is one the sender
 * recovers from by its timeout).
 */
#define _GNU_SOURCE
#include "front.h"

#include "atp/fb.h"
#include "atp/log.h"
#include "atp/sources.h"
#include "atp/status.h"
#include "atp/udp_server.h"
#include "atp/wire_event.h"
#include "atp/wire_frame.h"

#include <errno.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>

enum { OP_UDP_RECV, OP_UDP_CANCEL };
#define UDP_BATCH_MAX 1024u    /* events of one datagram's batch (a 1472-byte one holds far fewer) */
#define REFUSALS_MAX 32u
#define OUT_BYTES 2048u

typedef struct peer {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	atp_udp_send_fn send;       /* NULL: the kernel socket's sendto() */
	void *send_ctx;
	bool used;
	bool want_ack;              /* a refusal or a wholly duplicate batch: answered this turn */
	bool waiting;               /* submitted and not yet acknowledged durable */
	uint32_t source;            /* ATP_SOURCE_NONE: no Hello (a sessionless sender's source is its batch's) */
	uint32_t last_source;       /* of its last batch */
	uint64_t cover;             /* the highest seq it submitted */
	uint64_t acked;             /* durable_seq of its last Ack */
	uint64_t next_seq;
	uint64_t last_ms;
	atp_wire_refusal refusals[REFUSALS_MAX];
	uint32_t n_refusals;
} peer;

struct atp_udp_server {
	atp_loop *loop;
	unsigned op_base;
	atp_engine *e;
	atp_udp_config cfg;
	int fd;
	uint16_t port;
	bool armed;
	struct msghdr msg;          /* the multishot recvmsg's template: room for the name only */
	peer *peers;                /* open addressing by address hash, max_peers * 2 slots */
	uint32_t slots;
	uint32_t *waiting;          /* peers awaiting durability or an answer */
	uint32_t n_waiting;
	atp_sources *sources;
	char patterns[16][64];
	uint32_t n_patterns;
	atp_event *events;
	atp_wire_event_time *times;
	uint8_t *frame;             /* an aligned copy of a datagram's FlatBuffer */
	uint8_t out[OUT_BYTES] __attribute__((aligned(8)));
	uint64_t last_sweep_ms;
	atp_udp_stats stats;
};

atp_udp_config atp_udp_config_default(void)
{
	return (atp_udp_config){ .listen = "none", .max_datagram = 1472, .max_peers = 4096, .peer_idle_ms = 600000,
				 .sources = "*" };
}

const char *atp_udp_drop_name(int reason)
{
	static const char *const names[] = { "frame", "size", "no_hello", "source", "peers", "busy" };
	return reason >= 0 && reason < ATP_UDP_BAD_REASONS ? names[reason] : "other";
}

static void drop(atp_udp_server *u, int reason)
{
	u->stats.dropped[reason]++;
}

/* ---- peers ---- */

static uint64_t addr_hash(const struct sockaddr_storage *a, socklen_t len)
{
	return XXH3_64bits(a, len);
}

/* The peer of address a, made when new (NULL when the table is full). */
static peer *peer_of(atp_udp_server *u, const struct sockaddr_storage *a, socklen_t len, bool make)
{
	uint32_t mask = u->slots - 1, i = (uint32_t)addr_hash(a, len) & mask;
	for (uint32_t probe = 0; probe < u->slots; probe++, i = (i + 1) & mask) {
		peer *p = &u->peers[i];
		if (!p->used) {
			if (!make || u->stats.peers == u->cfg.max_peers)
				return NULL;
			*p = (peer){ .used = true, .addr_len = len, .source = ATP_SOURCE_NONE, .last_source = ATP_SOURCE_NONE };
			memcpy(&p->addr, a, len);
			u->stats.peers++;
			return p;
		}
		if (p->addr_len == len && memcmp(&p->addr, a, len) == 0)
			return p;
	}
	return NULL;
}

/* Forget peers silent for peer_idle_ms with nothing owed (linear probing: the table is rebuilt). */
static void sweep(atp_udp_server *u, uint64_t now)
{
	uint32_t forgotten = 0;
	for (uint32_t i = 0; i < u->slots; i++) {
		peer *p = &u->peers[i];
		if (p->used && !p->waiting && !p->want_ack && now - p->last_ms > u->cfg.peer_idle_ms) {
			p->used = false;
			forgotten++;
		}
	}
	if (!forgotten)
		return;
	u->stats.peers -= forgotten;
	/* Re-place the survivors so that no probe chain has a hole. */
	peer *old = u->peers;
	peer *fresh = calloc(u->slots, sizeof(peer));
	if (!fresh) {
		return;  /* kept as they are: a chain with a hole only costs a lookup a miss */
	}
	u->peers = fresh;
	u->stats.peers = 0;
	for (uint32_t i = 0; i < u->slots; i++)
		if (old[i].used) {
			peer *p = peer_of(u, &old[i].addr, old[i].addr_len, true);
			*p = old[i];
		}
	free(old);
	u->n_waiting = 0;  /* only peers with nothing owed went; the rest are found again below */
	for (uint32_t i = 0; i < u->slots; i++)
		if (u->peers[i].used && (u->peers[i].waiting || u->peers[i].want_ack))
			u->waiting[u->n_waiting++] = i;
}

static void watch(atp_udp_server *u, peer *p)
{
	if (p->waiting || p->want_ack)
		return;
	u->waiting[u->n_waiting++] = (uint32_t)(p - u->peers);
}

/* ---- answers ---- */

static void send_frame(atp_udp_server *u, const peer *p, const uint8_t *fb, size_t n)
{
	uint8_t dgram[OUT_BYTES + 8];
	uint32_t len = (uint32_t)n;
	memcpy(dgram, &len, 4);
	memcpy(dgram + 4, fb, n);
	if (p->send) {
		p->send(p->send_ctx, &p->addr, p->addr_len, dgram, 4 + n);
		return;
	}
	if (sendto(u->fd, dgram, 4 + n, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)&p->addr, p->addr_len) < 0) {
		/* the sender's timeout recovers it */
	}
}

static void welcome(atp_udp_server *u, const peer *p, uint64_t durable, int error, const char *why)
{
	atp_fb_builder b;
	size_t n;
	atp_fb_builder_init(&b, u->out, sizeof(u->out));
	atp_wire_welcome w = { .durable_seq = durable, .error = error, .reason = atp_str_of(why, strlen(why)) };
	const uint8_t *fb = atp_fb_finish(&b, atp_wire_build_welcome(&b, &w), NULL, &n);
	send_frame(u, p, fb, n);
	u->stats.welcomes++;
}

static void ack(atp_udp_server *u, peer *p, uint32_t source, uint64_t durable)
{
	const atp_source *src = atp_sources_get(u->sources, source);
	atp_fb_builder b;
	size_t n;
	atp_fb_builder_init(&b, u->out, sizeof(u->out));
	atp_wire_ack a = { .source = atp_str_of(src->name, src->name_len), .durable_seq = durable,
			   .next_seq = p->next_seq, .refused = p->refusals, .n_refused = p->n_refusals };
	const uint8_t *fb = atp_fb_finish(&b, atp_wire_build_ack(&b, &a), NULL, &n);
	send_frame(u, p, fb, n);
	p->n_refusals = 0;
	p->acked = durable;
	u->stats.acks++;
}

/* ---- what a datagram says ---- */

static bool allowed(const atp_udp_server *u, atp_str name)
{
	char s[ATP_SOURCE_MAX + 1];
	if (!atp_str_valid(name, ATP_SOURCE_MAX) || name.ptr[0] == '@')
		return false;
	memcpy(s, name.ptr, name.len);
	s[name.len] = 0;
	for (uint32_t i = 0; i < u->n_patterns; i++)
		if (fnmatch(u->patterns[i], s, 0) == 0)
			return true;
	return false;
}

/* The id of an allowed source, interned; ATP_SOURCE_NONE when not allowed or the table is full. */
static uint32_t source_id(atp_udp_server *u, atp_str name)
{
	if (!allowed(u, name))
		return ATP_SOURCE_NONE;
	uint32_t id = atp_sources_find(u->sources, name);
	return id != ATP_SOURCE_NONE ? id : atp_sources_intern(u->sources, name);
}

static void on_hello(atp_udp_server *u, peer *p, atp_str name)
{
	uint32_t id = source_id(u, name);
	if (id == ATP_SOURCE_NONE) {
		drop(u, ATP_UDP_BAD_SOURCE);
		welcome(u, p, 0, ATP_E_FORBIDDEN, "this source may not send over UDP (udp_sources)");
		return;
	}
	u->stats.hellos++;
	p->source = id;
	p->next_seq = atp_engine_durable_seq(u->e, atp_sources_get(u->sources, id)->name) + 1;
	welcome(u, p, p->next_seq - 1, 0, "");
}

static void on_batch(atp_udp_server *u, peer *p, int n)
{
	/* Whose: the Hello's, or what every event names. */
	atp_str name = { 0 };
	if (p->source != ATP_SOURCE_NONE) {
		const atp_source *src = atp_sources_get(u->sources, p->source);
		name = atp_str_of(src->name, src->name_len);
	}
	for (int i = 0; i < n; i++) {
		atp_str *s = &u->events[i].source;
		if (s->len == 0 && !name.len) {
			drop(u, ATP_UDP_BAD_NO_HELLO);
			return;
		}
		if (s->len == 0)
			*s = name;
		else if (!name.len)
			name = *s;
		else if (s->len != name.len || memcmp(s->ptr, name.ptr, name.len) != 0) {
			drop(u, ATP_UDP_BAD_SOURCE);
			return;
		}
	}
	uint32_t id = p->source != ATP_SOURCE_NONE ? p->source : source_id(u, name);
	if (id == ATP_SOURCE_NONE) {
		drop(u, ATP_UDP_BAD_SOURCE);
		return;
	}
	if (!atp_engine_can_take(u->e, (uint32_t)n)) {
		drop(u, ATP_UDP_BAD_BUSY);
		return;
	}
	if (p->last_source != id) {  /* a sessionless sender changing source: its seqs start over */
		p->last_source = id;
		p->cover = p->acked = 0;
	}
	u->stats.batches++;
	u->stats.events += (uint64_t)n;
	bool any = false;
	for (int i = 0; i < n; i++) {
		uint64_t expected = 0;
		int rc = atp_engine_submit(u->e, &u->events[i], &expected);
		p->next_seq = rc == ATP_OK || rc == ATP_DUPLICATE || rc == ATP_E_GAP
				      ? expected
				      : atp_engine_expected_seq(u->e, u->events[i].source);  /* malformed: its seq not consumed */
		if (rc == ATP_OK) {
			any = true;
			if (u->events[i].seq > p->cover)
				p->cover = u->events[i].seq;
			continue;
		}
		if (rc == ATP_DUPLICATE)
			continue;
		if (p->n_refusals < REFUSALS_MAX)
			p->refusals[p->n_refusals++] = (atp_wire_refusal){ .seq = u->events[i].seq, .code = rc };
		break;  /* the rest would be gaps */
	}
	watch(u, p);
	if (any)
		p->waiting = true;
	else
		p->want_ack = true;  /* nothing new to wait for: answer now */
	if (p->n_refusals)
		p->want_ack = true;
}

static void on_datagram(atp_udp_server *u, const struct sockaddr_storage *from, socklen_t from_len,
			const uint8_t *d, uint32_t n, atp_udp_send_fn send, void *send_ctx)
{
	u->stats.datagrams++;
	if (n > u->cfg.max_datagram) {
		drop(u, ATP_UDP_BAD_SIZE);
		return;
	}
	uint32_t flen;
	if (atp_frame_split(d, n, u->cfg.max_datagram, &flen) != (int64_t)n) {
		drop(u, ATP_UDP_BAD_FRAME);  /* truncated, or more than one frame */
		return;
	}
	memcpy(u->frame, d + ATP_FRAME_HEADER, flen);  /* FlatBuffers want their buffer aligned */
	peer *p = peer_of(u, from, from_len, false);
	/* An EventBatch (its verification is strict: a Hello never passes it), else a Hello naming a valid source. */
	int k = atp_wire_decode_event_batch(u->frame, flen, u->events, u->times, UDP_BATCH_MAX);
	atp_str hello = { 0 };
	if (k < 0 && atp_wire_decode_hello(u->frame, flen, &hello) == 0 && atp_str_valid(hello, ATP_SOURCE_MAX)) {
		if (!p && !(p = peer_of(u, from, from_len, true))) {
			drop(u, ATP_UDP_BAD_PEERS);
			return;
		}
		p->last_ms = front_now_ms(u->loop);
		p->send = send;
		p->send_ctx = send_ctx;
		on_hello(u, p, hello);
		return;
	}
	if (k <= 0) {
		drop(u, ATP_UDP_BAD_FRAME);
		return;
	}
	if (!p && !(p = peer_of(u, from, from_len, true))) {
		drop(u, ATP_UDP_BAD_PEERS);
		return;
	}
	p->last_ms = front_now_ms(u->loop);
	p->send = send;
	p->send_ctx = send_ctx;
	on_batch(u, p, k);
}

void atp_udp_server_input(atp_udp_server *u, const void *addr, uint32_t addr_len, const uint8_t *d, uint32_t n,
			  atp_udp_send_fn send, void *ctx)
{
	struct sockaddr_storage from = { 0 };
	if (addr_len > sizeof(from))
		addr_len = sizeof(from);
	memcpy(&from, addr, addr_len);
	on_datagram(u, &from, addr_len, d, n, send, ctx);
}

/* ---- the loop's side ---- */

static void arm(atp_udp_server *u)
{
	struct io_uring_sqe *sqe = front_sqe(u->loop);
	io_uring_prep_recvmsg_multishot(sqe, u->fd, &u->msg, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = front_buf_group();
	sqe->user_data = (uint64_t)(u->op_base + OP_UDP_RECV) << 56;
	u->armed = true;
}

static void on_cqe(void *ctx, const struct io_uring_cqe *cqe)
{
	atp_udp_server *u = ctx;
	if ((unsigned)(cqe->user_data >> 56) != u->op_base + OP_UDP_RECV)
		return;  /* the cancel's */
	bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;
	uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
	if (!(cqe->flags & IORING_CQE_F_MORE))
		u->armed = false;
	if (cqe->res > 0 && has_buf) {
		void *buf = (void *)front_buf(u->loop, bid);
		struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(buf, cqe->res, &u->msg);
		if (o && !(o->flags & MSG_TRUNC) && o->namelen <= sizeof(struct sockaddr_storage)) {
			struct sockaddr_storage from = { 0 };
			memcpy(&from, io_uring_recvmsg_name(o), o->namelen);
			on_datagram(u, &from, (socklen_t)o->namelen, io_uring_recvmsg_payload(o, &u->msg),
				    io_uring_recvmsg_payload_length(o, cqe->res, &u->msg), NULL, NULL);
		} else {
			u->stats.datagrams++;
			drop(u, o ? ATP_UDP_BAD_SIZE : ATP_UDP_BAD_FRAME);
		}
	} else if (cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -ECANCELED) {
		atp_log(ATP_LOG_WARN, "udp: receive: %s", strerror(-cqe->res));
	}
	if (has_buf)
		front_give_back(u->loop, bid);
}

/* Acks: to peers whose batches became durable, and at once to those with a refusal or only duplicates. */
static void after_turn(void *ctx)
{
	atp_udp_server *u = ctx;
	if (!u->armed && u->fd >= 0)
		arm(u);
	uint32_t w = 0;
	for (uint32_t i = 0; i < u->n_waiting; i++) {
		peer *p = &u->peers[u->waiting[i]];
		uint32_t id = p->last_source != ATP_SOURCE_NONE ? p->last_source : p->source;
		uint64_t durable = id == ATP_SOURCE_NONE ? 0 : atp_engine_durable_seq(u->e, atp_sources_get(u->sources, id)->name);
		if (p->waiting && durable >= p->cover)
			p->waiting = false;
		if (id != ATP_SOURCE_NONE && (p->want_ack || durable > p->acked))
			ack(u, p, id, durable);
		p->want_ack = false;
		if (p->waiting)
			u->waiting[w++] = u->waiting[i];
	}
	u->n_waiting = w;
	uint64_t now = front_now_ms(u->loop);
	if (now - u->last_sweep_ms > 1000) {
		u->last_sweep_ms = now;
		sweep(u, now);
	}
}

static bool waiting(void *ctx)
{
	return ((atp_udp_server *)ctx)->n_waiting > 0;
}

/* ---- set-up ---- */

void atp_udp_server_destroy(atp_udp_server *u)
{
	if (!u)
		return;
	if (u->fd >= 0 && u->op_base) {
		struct io_uring_sqe *sqe = front_sqe(u->loop);
		io_uring_prep_cancel_fd(sqe, u->fd, IORING_ASYNC_CANCEL_ALL);
		sqe->user_data = (uint64_t)(u->op_base + OP_UDP_CANCEL) << 56;
		front_submit(u->loop);
	}
	if (u->op_base)
		front_detach(u->loop, u);
	if (u->fd >= 0)
		close(u->fd);
	atp_sources_destroy(u->sources);
	free(u->peers);
	free(u->waiting);
	free(u->events);
	free(u->times);
	free(u->frame);
	free(u);
}

atp_udp_server *atp_udp_server_create(atp_loop *loop, const atp_udp_config *cfg, char *err, size_t errlen)
{
	if (cfg->max_datagram < 64 || cfg->max_datagram > FRONT_BUF_SIZE - 256 || cfg->max_peers < 1) {
		atp_errf(err, errlen, "bad udp configuration (udp_max_datagram 64 .. %u)", FRONT_BUF_SIZE - 256);
		return NULL;
	}
	atp_udp_server *u = calloc(1, sizeof(*u));
	if (!u) {
		atp_errf(err, errlen, "out of memory");
		return NULL;
	}
	u->loop = loop;
	u->e = front_engine(loop);
	u->cfg = *cfg;
	u->fd = -1;
	char list[sizeof(cfg->sources)], *save = NULL;
	snprintf(list, sizeof(list), "%s", cfg->sources);
	for (char *t = strtok_r(list, ",", &save); t && u->n_patterns < 16; t = strtok_r(NULL, ",", &save))
		snprintf(u->patterns[u->n_patterns++], sizeof(u->patterns[0]), "%s", t);
	for (u->slots = 16; u->slots < 2 * cfg->max_peers; u->slots *= 2)
		;
	u->peers = calloc(u->slots, sizeof(peer));
	u->waiting = malloc(u->slots * sizeof(uint32_t));
	u->sources = atp_sources_create(1u << 16);
	u->events = malloc(UDP_BATCH_MAX * sizeof(atp_event));
	u->times = malloc(UDP_BATCH_MAX * sizeof(atp_wire_event_time));
	u->frame = aligned_alloc(8, (FRONT_BUF_SIZE + 7) & ~7u);
	if (!u->peers || !u->waiting || !u->sources || !u->events || !u->times || !u->frame) {
		atp_errf(err, errlen, "out of memory");
		goto fail;
	}
	bool sock = strcmp(cfg->listen, "none") != 0;
	if (sock && (u->fd = front_bind(cfg->listen, SOCK_DGRAM, &u->port, err, errlen)) < 0)
		goto fail;
	u->msg.msg_namelen = sizeof(struct sockaddr_storage);
	front_ext ext = { .ctx = u, .on_cqe = on_cqe, .after_turn = after_turn, .waiting = waiting };
	int base = front_attach(loop, &ext);
	if (base < 0) {
		atp_errf(err, errlen, "the loop has no room for another protocol");
		goto fail;
	}
	u->op_base = (unsigned)base;
	u->last_sweep_ms = front_now_ms(loop);
	if (sock)
		arm(u);
	front_submit(loop);
	return u;
fail:
	atp_udp_server_destroy(u);
	return NULL;
}

uint16_t atp_udp_server_port(const atp_udp_server *u)
{
	return u->port;
}

void atp_udp_server_stats(const atp_udp_server *u, atp_udp_stats *out)
{
	*out = u->stats;
}
