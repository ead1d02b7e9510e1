/*
 * grpc_driver.c — the order-capture side of atp-loadgen: Reserve and
 * Release calls over many gRPC connections (grpc_client.h), each placed at
 * its due time (or at once), at most in_flight per connection; a call that
 * finds its connection full waits, and when paced its latency still counts
 * from its due time, so a slow server shows as latency, not as fewer calls.
 */
#include "mono.h"
#include "loadgen.h"

#include "grpc_client.h"

#include "atp/wire_api.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Paced calls due within this much of now start together: one poll per quantum, not a spin. */
#define QUANTUM_NS 1000000u

typedef struct slot slot;

typedef struct driver {
	grpc_outcome *out;
	slot *free;             /* slots of calls not in flight */
} driver;

struct slot {
	driver *d;
	uint64_t t0_ns;
	uint8_t kind;
	slot *next_free;
};

static void on_msg(void *ctx, const uint8_t *msg, uint32_t len)
{
	slot *s = ctx;
	grpc_outcome *o = s->d->out;
	int rc;
	const uint8_t *r;
	if (s->kind == CALL_RESERVE && (r = atp_v1_verify(msg, len, &atp_v1_reserve_reply_rule, &rc))) {
		o->duplicates += atp_v1_reserve_reply_duplicate(r);
		for (uint32_t i = 0; i < atp_v1_reserve_reply_lines_count(r); i++)
			o->confirmed_units += (uint64_t)atp_v1_line_result_confirmed(atp_v1_reserve_reply_lines(r, i));
	}
}

static void on_done(void *ctx, int status, const char *message)
{
	(void)message;
	slot *s = ctx;
	grpc_outcome *o = s->d->out;
	uint64_t ns = atp_mono_ns() - s->t0_ns;
	atp_hist_add(s->kind == CALL_RESERVE ? &o->reserve_latency : &o->release_latency, ns);
	if (status == 5)
		o->not_found++;  /* a reservation of a position not there yet: an answer, not a failure */
	else if (status != 0)
		o->errors++;
	if (status >= 0 && status <= 16)
		o->codes[status]++;
	else
		o->broken++;
	__atomic_fetch_add(&o->done, 1, __ATOMIC_RELAXED);
	s->next_free = s->d->free;
	s->d->free = s;
}

static int start(atp_grpc_client *c, const api_call *a, slot *s, uint8_t *mem, size_t cap)
{
	atp_fb_builder b;
	atp_fb_builder_init(&b, mem, cap);
	atp_fb_ref root;
	atp_str ref = atp_str_of(a->ref, strlen(a->ref));
	if (a->kind == CALL_RESERVE) {
		atp_fb_ref line = atp_v1_build_reserve_line_by(&b, atp_str_of(a->sku, strlen(a->sku)),
							       atp_str_of(a->loc, strlen(a->loc)), a->qty, a->need_by);
		root = atp_v1_build_reserve_request(&b, ref, &line, 1, a->ttl_ms, a->partial);
	} else {
		root = atp_v1_build_release_request(&b, ref);
	}
	size_t len;
	const uint8_t *msg = atp_fb_finish(&b, root, NULL, &len);
	s->kind = a->kind;
	if (a->kind == CALL_RESERVE)
		s->d->out->reserves++;
	else
		s->d->out->releases++;
	return atp_grpc_client_start(c, a->kind == CALL_RESERVE ? "/atp.v1.Atp/Reserve" : "/atp.v1.Atp/Release", msg,
				     (uint32_t)len, 60000, on_msg, on_done, s);
}

int grpc_drive(const grpc_plan *p, grpc_outcome *out)
{
	uint32_t nc = p->connections;
	atp_grpc_client **cl = calloc(nc, sizeof(*cl));
	slot *slots = calloc((size_t)nc * p->in_flight, sizeof(slot));
	struct pollfd *pfd = calloc(nc, sizeof(*pfd));
	static uint8_t mem[4096] __attribute__((aligned(8)));
	int rc = cl && slots && pfd ? 0 : -1;
	char err[256];
	driver d = { .out = out };
	for (size_t i = 0; !rc && i < (size_t)nc * p->in_flight; i++) {
		slots[i] = (slot){ .d = &d, .next_free = d.free };
		d.free = &slots[i];
	}
	for (uint32_t i = 0; !rc && i < nc; i++) {
		if (!(cl[i] = atp_grpc_client_connect(p->target, err, sizeof(err)))) {
			fprintf(stderr, "atp-loadgen: grpc %s\n", err);
			rc = -1;
		} else {
			pfd[i] = (struct pollfd){ .fd = atp_grpc_client_fd(cl[i]), .events = POLLIN };
		}
	}
	uint64_t next = 0, t_start = atp_mono_ns();
	uint32_t rr = 0;
	while (!rc) {
		uint64_t now = atp_mono_ns(), flying = 0;
		bool full = false;  /* every connection has in_flight calls out */
		/* Start what is due (within the quantum), round robin over the connections with room. */
		while (next < p->n && (!p->paced || p->t0_ns + p->calls[next].due_ns <= now + QUANTUM_NS) && d.free) {
			uint32_t k = 0;
			while (k < nc && atp_grpc_client_in_flight(cl[(rr + k) % nc]) >= p->in_flight)
				k++;
			if (k == nc) {
				full = true;
				break;
			}
			atp_grpc_client *c = cl[(rr + k) % nc];
			rr = (rr + k + 1) % nc;
			slot *s = d.free;
			d.free = s->next_free;
			/* From its due time when late (a slow server shows), from its start when early in the quantum. */
			uint64_t due = p->t0_ns + p->calls[next].due_ns;
			s->t0_ns = p->paced && due < now ? due : now;
			if (start(c, &p->calls[next], s, mem, sizeof(mem)) < 0) {
				rc = -1;
				break;
			}
			next++;
		}
		for (uint32_t i = 0; i < nc; i++) {
			if (atp_grpc_client_pump(cl[i], 0) < 0) {
				fprintf(stderr, "atp-loadgen: grpc connection %u broke\n", i);
				rc = -1;
			}
			flying += atp_grpc_client_in_flight(cl[i]);
		}
		if (rc || (next == p->n && flying == 0))
			break;
		int wait_ms = 50;
		if (next < p->n && p->paced) {
			/* Sleep until the next call is due, at least a quantum: a paced generator must not spin on
			 * the cores the server runs on. */
			now = atp_mono_ns();
			uint64_t due = p->t0_ns + p->calls[next].due_ns;
			wait_ms = due > now + QUANTUM_NS ? (int)((due - now) / 1000000) : 1;
			if (wait_ms > 50)
				wait_ms = 50;
			if (full || !d.free)
				wait_ms = 50;  /* answers wake the poll */
		} else if (next < p->n && d.free && !full) {
			wait_ms = 0;
		}
		if (poll(pfd, nc, wait_ms) > 0)
			for (uint32_t i = 0; i < nc; i++)
				if (pfd[i].revents && atp_grpc_client_pump(cl[i], 0) < 0)
					rc = -1;
	}
	out->seconds = (atp_mono_ns() - t_start) / 1e9;
	for (uint32_t i = 0; cl && i < nc; i++)
		atp_grpc_client_close(cl[i]);
	free(cl);
	free(slots);
	free(pfd);
	return rc;
}
