/* stream_client.c — see stream_client.h. */
#define _GNU_SOURCE
#include "mono.h"
#include "stream_client.h"
#include "tls_client.h"

#include "atp/status.h"
#include "atp/wire_event.h"
#include "atp/wire_frame.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define IN_BYTES (256u << 10)

enum { S_DOWN, S_CONNECTING, S_HELLO, S_STREAM, S_DONE };

typedef struct sender {
	stream_source *src;
	int fd;
	int state;
	uint64_t retry_ns;       /* S_DOWN: when to connect again */
	uint32_t backoff_ms;
	uint32_t acked;          /* frames before this one are acknowledged */
	uint32_t next;           /* the frame whose bytes go out next */
	uint32_t due;            /* paced: frames before this one are due */
	uint32_t free_of;        /* ordered: frames before this one wait for no other source */
	uint32_t resumed_at;     /* the frame the connection resumed from */
	uint64_t next_off;       /* bytes of frame `next` already written... as an offset into src->bytes */
	uint64_t durable;
	uint8_t hello[128];
	uint32_t hello_len, hello_sent;
	uint8_t *in;
	uint32_t in_len;
	uint8_t *frame;          /* shared: one frame copied to aligned memory */
} sender;

int stream_source_add(stream_source *s, const void *buf, uint32_t len, uint32_t events, uint64_t cover)
{
	return stream_source_add_due(s, buf, len, events, cover, 0);
}

int stream_source_add_due(stream_source *s, const void *buf, uint32_t len, uint32_t events, uint64_t cover,
			  uint64_t due_ns)
{
	int rc = stream_source_add_after(s, buf, len, events, cover, UINT32_MAX, 0);
	if (rc == 0)
		s->frames[s->n_frames - 1].due_ns = due_ns;
	return rc;
}

int stream_source_add_after(stream_source *s, const void *buf, uint32_t len, uint32_t events, uint64_t cover,
			    uint32_t after_src, uint64_t after_seq)
{
	if (s->len + 4 + len > s->cap) {
		size_t cap = s->cap ? s->cap : 1u << 20;
		while (cap < s->len + 4 + len)
			cap *= 2;
		uint8_t *b = realloc(s->bytes, cap);
		if (!b)
			return -1;
		s->bytes = b;
		s->cap = cap;
	}
	if (s->n_frames == s->cap_frames) {
		uint32_t cap = s->cap_frames ? s->cap_frames * 2 : 1024;
		stream_frame *f = realloc(s->frames, cap * sizeof(*f));
		if (!f)
			return -1;
		s->frames = f;
		s->cap_frames = cap;
	}
	memcpy(s->bytes + s->len, &len, 4);
	memcpy(s->bytes + s->len + 4, buf, len);
	s->frames[s->n_frames++] = (stream_frame){ .off = s->len, .len = 4 + len, .events = events, .cover = cover,
						    .after_src = after_src, .after_seq = after_seq };
	s->len += 4 + len;
	if (cover > s->last_seq)
		s->last_seq = cover;
	return 0;
}

void stream_source_free(stream_source *s)
{
	free(s->bytes);
	free(s->frames);
	memset(s, 0, sizeof(*s));
}

/* ---- one connection ---- */

static void drop(sender *x, uint64_t now, const char *why)
{
	if (x->fd >= 0 && why && tls_error(x->fd))
		fprintf(stderr, "send: %s: %s\n", x->src->name, tls_error(x->fd));
	if (x->fd >= 0)
		tls_close(x->fd);
	x->fd = -1;
	x->state = S_DOWN;
	x->retry_ns = now + (uint64_t)x->backoff_ms * 1000000u;
	x->backoff_ms = x->backoff_ms ? (x->backoff_ms * 2 > 1000 ? 1000 : x->backoff_ms * 2) : 20;
	if (why)  /* NULL: a reconnect the caller asked for */
		fprintf(stderr, "send: %s: connection lost (%s); reconnecting\n", x->src->name, why);
}

/* The Hello of source as a frame (length prefix included) into out (128 bytes); returns its length. */
static uint32_t hello_frame(const char *source, uint8_t *out)
{
	uint8_t mem[256] __attribute__((aligned(8)));
	atp_fb_builder b;
	size_t n;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	const uint8_t *p = atp_fb_finish(&b, atp_wire_build_hello(&b, atp_str_of(source, strlen(source))), NULL, &n);
	uint32_t len = (uint32_t)n;
	memcpy(out, &len, 4);
	memcpy(out + 4, p, n);
	return 4 + len;
}

static int start_connect(sender *x, const struct addrinfo *ai, const char *host)
{
	char err[256];
	x->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (x->fd < 0)
		return -1;
	if (tls_attach(x->fd, host, false, err, sizeof(err)) < 0) {
		fprintf(stderr, "send: %s\n", err);
		errno = EPROTO;
		return -1;
	}
	int one = 1;
	setsockopt(x->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(x->fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)
		return -1;
	x->state = S_CONNECTING;
	x->hello_len = hello_frame(x->src->name, x->hello);
	x->hello_sent = 0;
	x->in_len = 0;
	return 0;
}

/* Resume after the Welcome: the first frame holding a seq above what is durable. */
static void resume(sender *x, uint64_t durable)
{
	x->durable = durable;
	uint32_t f = 0;
	while (f < x->src->n_frames && x->src->frames[f].cover <= durable)
		f++;
	x->acked = x->next = x->resumed_at = f;
	x->next_off = f < x->src->n_frames ? x->src->frames[f].off : x->src->len;
	x->state = x->acked == x->src->n_frames ? S_DONE : S_STREAM;
}

/* Bytes written and not yet acknowledged. */
static uint64_t in_flight(const sender *x)
{
	const stream_source *s = x->src;
	return x->next_off - (x->acked < s->n_frames ? s->frames[x->acked].off : s->len);
}

/*
 * Where the bytes that may go out now end: before the first frame that
 * waits for another source's durability (xs: every sender), or (paced) is
 * not yet due.
 */
static uint64_t sendable_end(sender *x, const sender *xs, const stream_options *o, uint64_t now)
{
	const stream_source *s = x->src;
	while (x->free_of < s->n_frames && (s->frames[x->free_of].after_src == UINT32_MAX ||
					    xs[s->frames[x->free_of].after_src].durable >= s->frames[x->free_of].after_seq))
		x->free_of++;
	uint64_t end = x->free_of < s->n_frames ? s->frames[x->free_of].off : s->len;
	if (!o->paced)
		return end;
	while (x->due < s->n_frames && o->t0_ns + s->frames[x->due].due_ns <= now)
		x->due++;
	uint64_t due = x->due < s->n_frames ? s->frames[x->due].off : s->len;
	return due < end ? due : end;
}

/* Write what the window allows; -1 when the connection failed. */
static int pump(sender *x, const sender *xs, const stream_options *o, uint64_t now)
{
	if (x->state == S_HELLO && x->hello_sent < x->hello_len) {
		ssize_t k = tls_send(x->fd, x->hello + x->hello_sent, x->hello_len - x->hello_sent);
		if (k < 0)
			return errno == EAGAIN ? 0 : -1;
		x->hello_sent += (uint32_t)k;
		return 0;
	}
	if (x->state != S_STREAM)
		return 0;
	stream_source *s = x->src;
	uint64_t flying, end = sendable_end(x, xs, o, now);
	while (x->next_off < end && (flying = in_flight(x)) < o->window) {
		uint64_t want = end - x->next_off;
		if (want > o->window - flying)
			want = o->window - flying;
		ssize_t k = tls_send(x->fd, s->bytes + x->next_off, want);
		if (k < 0)
			return errno == EAGAIN ? 0 : -1;
		x->next_off += (uint64_t)k;
		while (x->next < s->n_frames && s->frames[x->next].off + s->frames[x->next].len <= x->next_off)
			s->frames[x->next++].sent_ns = now;
		if ((uint64_t)k < want)
			break;
	}
	return 0;
}

/* One frame from the server; -1: the connection must go (after a message), -2: give up. */
static int on_frame(sender *x, const uint8_t *p, uint32_t len, const stream_options *o, stream_result *r,
		    uint64_t now)
{
	if (x->state == S_HELLO) {
		atp_wire_welcome w;
		if (atp_wire_decode_welcome(p, len, &w) != 0) {
			fprintf(stderr, "send: %s: a bad Welcome\n", x->src->name);
			return -1;
		}
		if (w.error) {
			fprintf(stderr, "send: %s: refused: %.*s (%s)\n", x->src->name, (int)w.reason.len,
				w.reason.ptr ? w.reason.ptr : "", atp_status_name(w.error));
			return w.error == ATP_E_PROTOCOL || w.error == ATP_E_SOURCE ? -2 : -1;  /* too many connections passes */
		}
		x->backoff_ms = 0;
		resume(x, w.durable_seq);
		if (o->progress)
			printf("durable %s %" PRIu64 "\n", x->src->name, x->durable);
		return 0;
	}
	atp_wire_ack a;
	if (atp_wire_decode_ack(p, len, &a) != 0) {
		fprintf(stderr, "send: %s: a bad Ack\n", x->src->name);
		return -1;
	}
	for (uint32_t i = 0; i < a.n_refused; i++) {
		atp_wire_refusal f = atp_wire_ack_refusal(&a, i);
		fprintf(stderr, "send: %s: seq %" PRIu64 " refused: %s (%s)\n", x->src->name, f.seq,
			atp_status_message(f.code), atp_status_name(f.code));
		if (a.next_seq <= f.seq) {  /* not consumed: this source cannot go on */
			fprintf(stderr, "send: %s: the server expects seq %" PRIu64 "; giving up\n", x->src->name, a.next_seq);
			return -2;
		}
		r->refused++;
	}
	stream_source *s = x->src;
	if (a.durable_seq > x->durable)
		x->durable = a.durable_seq;
	while (x->acked < x->next && s->frames[x->acked].cover <= x->durable) {
		atp_hist_add_n(&r->latency, now - s->frames[x->acked].sent_ns, s->frames[x->acked].events);
		__atomic_store_n(&s->frames[x->acked].acked_ns, now, __ATOMIC_RELEASE);
		__atomic_fetch_add(&r->events, s->frames[x->acked].events, __ATOMIC_RELAXED);
		r->frames++;
		x->acked++;
	}
	if (o->progress && a.durable_seq)
		printf("durable %s %" PRIu64 "\n", s->name, a.durable_seq);
	if (a.error) {
		fprintf(stderr, "send: %s: the server closed the connection: %.*s (%s)\n", s->name, (int)a.reason.len,
			a.reason.ptr ? a.reason.ptr : "", atp_status_name(a.error));
		/* Timeouts and a stopping server pass; what this client sent, or another sender taking over, does not. */
		return a.error == ATP_E_TIMEOUT || a.error == ATP_E_SHUTDOWN || a.error == ATP_E_IO ? -1 : -2;
	}
	if (x->acked == s->n_frames)
		x->state = S_DONE;
	return 0;
}

/* Read and handle what the server sent; -1: drop the connection, -2: give up. */
static int take(sender *x, const stream_options *o, stream_result *r, uint64_t now)
{
	ssize_t k = tls_recv(x->fd, x->in + x->in_len, IN_BYTES - x->in_len, 0);
	if (k == 0)
		return -1;
	if (k < 0)
		return errno == EAGAIN ? 0 : -1;
	x->in_len += (uint32_t)k;
	uint32_t off = 0;
	for (;;) {
		uint32_t flen;
		int64_t whole = atp_frame_split(x->in + off, x->in_len - off, IN_BYTES - ATP_FRAME_HEADER, &flen);
		if (whole < 0)
			return -1;
		if (whole == 0)
			break;
		memcpy(x->frame, x->in + off + ATP_FRAME_HEADER, flen);  /* FlatBuffers want their buffer aligned */
		int rc = on_frame(x, x->frame, flen, o, r, now);
		if (rc < 0)
			return rc;
		off += (uint32_t)whole;
	}
	memmove(x->in, x->in + off, x->in_len - off);
	x->in_len -= off;
	return 0;
}

int stream_send(stream_source *sources, uint32_t n, const stream_options *o, stream_result *r)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
	int gai = getaddrinfo(o->host, o->port, &hints, &ai);
	if (gai) {
		fprintf(stderr, "send: %s:%s: %s\n", o->host, o->port, gai_strerror(gai));
		return -1;
	}
	memset(r, 0, sizeof(*r));
	sender *xs = calloc(n, sizeof(sender));
	struct pollfd *pf = calloc(n, sizeof(struct pollfd));
	uint8_t *frame = aligned_alloc(8, IN_BYTES);
	int rc = xs && pf && frame ? 0 : -1;
	for (uint32_t i = 0; !rc && i < n; i++) {
		xs[i] = (sender){ .src = &sources[i], .fd = -1, .state = S_DOWN, .frame = frame };
		if (!(xs[i].in = malloc(IN_BYTES)))
			rc = -1;
		if (sources[i].n_frames == 0)
			xs[i].state = S_DONE;
	}
	uint64_t t0 = atp_mono_ns(), last_progress = t0, last_acked = 0;
	r->started = atp_real_seconds();
	while (!rc) {
		uint64_t now = atp_mono_ns();
		uint32_t live = 0, acked = 0;
		bool idle_by_plan = true;  /* every live connection has all it may send yet acknowledged */
		for (uint32_t i = 0; i < n; i++) {
			sender *x = &xs[i];
			acked += x->acked;
			pf[i] = (struct pollfd){ .fd = -1 };
			if (x->state == S_DONE)
				continue;
			live++;
			if (x->state == S_DOWN && now >= x->retry_ns && start_connect(x, ai, o->host) < 0)
				drop(x, now, strerror(errno));
			uint64_t end = sendable_end(x, xs, o, now);
			idle_by_plan &= x->state == S_STREAM && in_flight(x) == 0 && x->next_off >= end;
			if (x->state == S_DOWN)
				continue;
			bool want_out = x->state == S_CONNECTING || (x->state == S_HELLO && x->hello_sent < x->hello_len) ||
					(x->state == S_STREAM && x->next_off < end && in_flight(x) < o->window);
			pf[i] = (struct pollfd){ .fd = x->fd, .events = (short)(POLLIN | (want_out ? POLLOUT : 0)) };
		}
		if (!live)
			break;
		if (acked != last_acked || idle_by_plan) {
			last_acked = acked;
			last_progress = now;
		} else if ((double)(now - last_progress) / 1e9 > o->timeout_s) {
			fprintf(stderr, "send: no progress for %.0f s; giving up\n", o->timeout_s);
			rc = -1;
			break;
		}
		bool pending = false;  /* TLS records decrypted already: poll would not say */
		for (uint32_t i = 0; i < n; i++)
			pending |= pf[i].fd >= 0 && tls_pending(pf[i].fd);
		if (poll(pf, n, pending ? 0 : o->paced ? 1 : 20) < 0 && errno != EINTR) {
			rc = -1;
			break;
		}
		for (uint32_t i = 0; pending && i < n; i++)
			if (pf[i].fd >= 0 && tls_pending(pf[i].fd))
				pf[i].revents |= POLLIN;
		now = atp_mono_ns();
		for (uint32_t i = 0; i < n && !rc; i++) {
			sender *x = &xs[i];
			if (pf[i].fd < 0 || !pf[i].revents || x->fd < 0)
				continue;
			if (x->state == S_CONNECTING) {
				int err = 0;
				socklen_t sl = sizeof(err);
				getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
				if (err) {
					drop(x, now, strerror(err));
					continue;
				}
				x->state = S_HELLO;
			}
			int k = pf[i].revents & (POLLIN | POLLERR | POLLHUP) ? take(x, o, r, now) : 0;
			if (k == 0 && x->state != S_DONE)
				k = pump(x, xs, o, now);
			if (k == -2)
				rc = -1;
			else if (k < 0) {
				r->reconnects++;
				drop(x, now, "reset, closed by the server, or a bad frame");
			} else if (o->reconnect_every && x->state == S_STREAM && x->next < x->src->n_frames &&
				   x->next - x->resumed_at >= o->reconnect_every) {
				/* a client that drops its connection now and then: what is unacknowledged goes again */
				r->reconnects++;
				drop(x, now, NULL);
				x->retry_ns = now;
			} else if (x->state == S_DONE && x->fd >= 0) {
				tls_close(x->fd);
				x->fd = -1;
			}
		}
		if (o->progress)
			fflush(stdout);
	}
	r->seconds = (double)(atp_mono_ns() - t0) / 1e9;
	r->finished = atp_real_seconds();
	for (uint32_t i = 0; xs && i < n; i++) {
		if (xs[i].fd >= 0)
			tls_close(xs[i].fd);
		free(xs[i].in);
	}
	free(xs);
	free(pf);
	free(frame);
	freeaddrinfo(ai);
	return rc;
}

/* Read exactly n bytes (the socket has a receive timeout); -1 on an error, a timeout or the end. */
static int read_full(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = tls_recv(fd, p, n, 0);
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int stream_durable_seq(const char *host, const char *port, const char *source, uint64_t *seq, char *err,
		       size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
	int gai = getaddrinfo(host, port, &hints, &ai);
	if (gai) {
		snprintf(err, errlen, "%s:%s: %s", host, port, gai_strerror(gai));
		return -1;
	}
	int rc = -1, fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = 10 };
	uint8_t hello[128], *frame = aligned_alloc(8, IN_BYTES);
	uint32_t len = 0;
	if (fd < 0 || !frame || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		snprintf(err, errlen, "%s:%s: %s", host, port, strerror(errno));
		goto close_fd;
	}
	if (tls_attach(fd, host, false, err, errlen) < 0)
		goto close_fd;
	uint32_t n = hello_frame(source, hello);
	errno = 0;
	if (tls_send(fd, hello, n) != (ssize_t)n || read_full(fd, (uint8_t *)&len, 4) < 0 ||
	    len > IN_BYTES || read_full(fd, frame, len) < 0) {
		snprintf(err, errlen, "%s:%s: no Welcome (%s)", host, port, errno ? strerror(errno) : "closed");
		goto close_fd;
	}
	atp_wire_welcome w;
	if (atp_wire_decode_welcome(frame, len, &w) != 0) {
		snprintf(err, errlen, "%s:%s: a bad Welcome", host, port);
		goto close_fd;
	}
	if (w.error) {
		snprintf(err, errlen, "%s: refused: %.*s (%s)", source, (int)w.reason.len, w.reason.ptr ? w.reason.ptr : "",
			 atp_status_name(w.error));
		goto close_fd;
	}
	*seq = w.durable_seq;
	rc = 0;
close_fd:
	if (fd >= 0)
		tls_close(fd);
	free(frame);
	freeaddrinfo(ai);
	return rc;
}
