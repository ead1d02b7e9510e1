/* udp_client.c — sending event frames over UDP with retransmission (see udp_client.h). */
#define _GNU_SOURCE
#include "udp_client.h"

#include "atp/fb.h"
#include "atp/status.h"
#include "atp/wire_event.h"
#include "mono.h"
#include "prng.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct usender {
	stream_source *src;
	int fd;
	bool welcomed, done;
	uint64_t hello_ns;         /* when the last Hello went */
	uint64_t durable;
	uint32_t acked;            /* frames before it are durable */
	uint32_t next;             /* the next frame to send */
	uint8_t held[65536];       /* a datagram held back (reordering), held_len 0: none */
	uint32_t held_len;
} usender;

/* One datagram out, or lost, or held back until the next has gone. */
static void put(usender *x, const udp_options *o, atp_prng *rng, const uint8_t *p, uint32_t n)
{
	if (o->drop_pct && atp_prng_below(rng, 100) < o->drop_pct)
		return;
	if (o->reorder_pct && !x->held_len && n <= sizeof(x->held) && atp_prng_below(rng, 100) < o->reorder_pct) {
		memcpy(x->held, p, n);
		x->held_len = n;
		return;
	}
	if (send(x->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* lost, as on the wire: the timeout sends it again */
	}
	if (x->held_len) {
		if (send(x->fd, x->held, x->held_len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			/* the same */
		}
		x->held_len = 0;
	}
}

static void hello(usender *x, const udp_options *o, atp_prng *rng, uint64_t now)
{
	uint8_t mem[256] __attribute__((aligned(8))), d[260];
	atp_fb_builder b;
	size_t n;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	const uint8_t *p = atp_fb_finish(&b, atp_wire_build_hello(&b, atp_str_of(x->src->name, strlen(x->src->name))), NULL, &n);
	uint32_t len = (uint32_t)n;
	memcpy(d, &len, 4);
	memcpy(d + 4, p, n);
	put(x, o, rng, d, 4 + len);
	x->hello_ns = now;
}

/* Move acked past what durable covers; the events acknowledged counted. */
static void advance(usender *x, uint64_t durable, stream_result *r, uint64_t now)
{
	if (durable > x->durable)
		x->durable = durable;
	stream_source *s = x->src;
	while (x->acked < s->n_frames && s->frames[x->acked].cover <= x->durable) {
		stream_frame *f = &s->frames[x->acked++];
		__atomic_add_fetch(&r->events, f->events, __ATOMIC_RELAXED);
		r->frames++;
		if (f->sent_ns && now > f->sent_ns)
			atp_hist_add_n(&r->latency, now - f->sent_ns, f->events);
	}
	if (x->next < x->acked)
		x->next = x->acked;
	x->done = x->acked == s->n_frames;
}

/* A datagram from the server; -1: give up (a refusal other than a gap). */
static int take(usender *x, const uint8_t *d, ssize_t n, stream_result *r, uint64_t now)
{
	static uint8_t frame[65536] __attribute__((aligned(8)));
	uint32_t len;
	if (n < 4 || (memcpy(&len, d, 4), len != (uint64_t)n - 4))
		return 0;  /* not a frame: ignored */
	memcpy(frame, d + 4, len);
	atp_wire_welcome w;
	atp_wire_ack a;
	if (!x->welcomed && atp_wire_decode_welcome(frame, len, &w) == 0) {
		if (w.error) {
			fprintf(stderr, "send --udp: %s: refused: %.*s (%s)\n", x->src->name, (int)w.reason.len,
				w.reason.ptr ? w.reason.ptr : "", atp_status_name(w.error));
			return -1;
		}
		x->welcomed = true;
		advance(x, w.durable_seq, r, now);
		x->next = x->acked;
		return 0;
	}
	if (atp_wire_decode_ack(frame, len, &a) != 0)
		return 0;
	x->welcomed = true;  /* an Ack also says the server knows us */
	advance(x, a.durable_seq, r, now);
	bool gap = false;
	for (uint32_t i = 0; i < a.n_refused; i++) {
		atp_wire_refusal f = atp_wire_ack_refusal(&a, i);
		if (f.code == ATP_E_GAP) {
			gap = true;
			continue;
		}
		fprintf(stderr, "send --udp: %s: seq %llu refused: %s\n", x->src->name, (unsigned long long)f.seq,
			atp_status_message(f.code));
		r->refused++;
		return -1;
	}
	if (gap) {  /* a datagram lost or overtaken: from next_seq again */
		stream_source *s = x->src;
		uint32_t f = x->acked;
		while (f < s->n_frames && s->frames[f].cover < a.next_seq)
			f++;
		if (f < x->next) {
			x->next = f;
			r->reconnects++;
		}
	}
	return 0;
}

/* Send what the window and the order allow. */
static void pump(usender *x, usender *xs, const udp_options *o, atp_prng *rng, uint64_t now)
{
	stream_source *s = x->src;
	while (x->next < s->n_frames && x->next - x->acked < o->window) {
		stream_frame *f = &s->frames[x->next];
		if (f->after_src != UINT32_MAX && xs[f->after_src].durable < f->after_seq)
			break;
		f->sent_ns = now;
		put(x, o, rng, s->bytes + f->off, f->len);
		x->next++;
	}
}

int udp_send(stream_source *sources, uint32_t n, const udp_options *o, stream_result *r)
{
	memset(r, 0, sizeof(*r));
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t f = 0; f < sources[i].n_frames; f++)
			if (sources[i].frames[f].len > o->max_datagram) {
				fprintf(stderr, "send --udp: %s: a frame of %u bytes does not fit a datagram of %u (a smaller --batch)\n",
					sources[i].name, sources[i].frames[f].len, o->max_datagram);
				return -1;
			}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM }, *ai;
	int gai = getaddrinfo(o->host, o->port, &hints, &ai);
	if (gai) {
		fprintf(stderr, "send --udp: %s:%s: %s\n", o->host, o->port, gai_strerror(gai));
		return -1;
	}
	usender *xs = calloc(n, sizeof(usender));
	struct pollfd *pf = calloc(n, sizeof(struct pollfd));
	int rc = 0;
	if (!xs || !pf) {
		rc = -1;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++)
		xs[i].fd = -1;
	for (uint32_t i = 0; i < n; i++) {
		xs[i] = (usender){ .src = &sources[i], .fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0) };
		if (xs[i].fd < 0 || connect(xs[i].fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			fprintf(stderr, "send --udp: %s:%s: %s\n", o->host, o->port, strerror(errno));
			rc = -1;
			goto out;
		}
		int big = 4 << 20;
		setsockopt(xs[i].fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
		xs[i].done = sources[i].n_frames == 0;
	}
	atp_prng rng;
	atp_prng_seed(&rng, o->seed);
	uint64_t t0 = atp_mono_ns(), last_progress = t0, timeout_ns = (uint64_t)o->timeout_ms * 1000000u;
	uint64_t last_events = 0;
	r->started = atp_real_seconds();
	for (;;) {
		uint64_t now = atp_mono_ns();
		uint32_t live = 0;
		for (uint32_t i = 0; i < n; i++) {
			usender *x = &xs[i];
			pf[i] = (struct pollfd){ .fd = x->done ? -1 : x->fd, .events = POLLIN };
			if (x->done)
				continue;
			live++;
			if (!x->welcomed) {
				if (now - x->hello_ns >= timeout_ns)
					hello(x, o, &rng, now);
				continue;
			}
			if (x->acked < x->next && now - x->src->frames[x->acked].sent_ns >= timeout_ns) {
				x->next = x->acked;  /* lost, or its Ack was: the window again */
				r->reconnects++;
			}
			pump(x, xs, o, &rng, now);
		}
		if (!live)
			break;
		if (r->events != last_events) {
			last_events = r->events;
			last_progress = now;
		} else if ((double)(now - last_progress) / 1e9 > o->give_up_s) {
			fprintf(stderr, "send --udp: no progress for %.0f s; giving up\n", o->give_up_s);
			rc = -1;
			break;
		}
		if (poll(pf, n, 2) < 0 && errno != EINTR) {
			rc = -1;
			break;
		}
		now = atp_mono_ns();
		for (uint32_t i = 0; i < n && !rc; i++) {
			if (pf[i].fd < 0 || !(pf[i].revents & POLLIN))
				continue;
			uint8_t d[65536];
			ssize_t k;
			while (!rc && (k = recv(xs[i].fd, d, sizeof(d), MSG_DONTWAIT)) >= 0)
				rc = take(&xs[i], d, k, r, now);
		}
		if (rc)
			break;
	}
	r->seconds = (double)(atp_mono_ns() - t0) / 1e9;
	r->finished = atp_real_seconds();
out:
	for (uint32_t i = 0; xs && i < n; i++)
		if (xs[i].fd >= 0)
			close(xs[i].fd);
	free(xs);
	free(pf);
	freeaddrinfo(ai);
	return rc;
}
