/*
 * subload.c — atp-subload: many subscribers of one sales channel, counted,
 * and the latency of the channel stream probed.
 *
 *   atp-subload --channel NAME [--grpc HOST:PORT] [--subscribers N]
 *               [--tcp HOST:PORT --probes K --probe-every-us U]
 *               [--idle-ms M] [--seconds S]
 *
 * Opens N subscriptions (one connection each, all in one poll() loop),
 * waits until every one has its full view (LIVE), prints "ready", then
 * counts the updates each receives. With --probes it also sends, as the
 * event source "probe" over the TCP stream, K RECEIPTs of one unit to SKUs
 * PROBE-000000... (location P; the channel must see it), one every U us,
 * and times each, at the first subscriber: from its Ack to its delta's
 * arrival (0 when the delta came first: atpd publishes a group's deltas
 * before its Acks), and from its sending to its delta (send -> durable ->
 * delivered), beside the Acks' latency (send -> Ack). Ends once updates
 * stopped for M ms (2000) after some came, or after S seconds, and prints
 * one line per figure. With --subscribers 0 it only sends the probes and
 * times their Acks (a paced trickle of events, for a daemon's CPU at a
 * low rate):
 *   subscribers N, updates U (per subscriber u), over T s: D deltas/s delivered
 *   probes K: ack->delta p50 p99; send->delta p50 p99; send->ack p50 p99 (us)
 */
#define _GNU_SOURCE
#include "channel_client.h"
#include "tls_client.h"
#include "histogram.h"
#include "stream_client.h"

#include "atp/wire_api.h"
#include "atp/wire_event.h"

#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct sub {
	atp_channel_client *c;
	bool live;
	uint64_t updates;
} sub;

typedef struct load {
	sub *subs;
	uint32_t n;
	uint64_t first_ns, last_ns, updates;
	uint64_t probe_t0_ns, probe_every_ns;
	uint32_t probes;
	atp_histogram probe, after_ack;
	uint64_t probes_seen;
	uint64_t *arrived;  /* per probe: when its delta came (0: not yet) */
} load;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct ctx_of {
	load *l;
	uint32_t i;
} ctx_of;

static void on_msg(void *ctx, const atp_channel_msg *m)
{
	ctx_of *x = ctx;
	load *l = x->l;
	sub *s = &l->subs[x->i];
	if (m->kind == ATP_V1_DELTA_LIVE)
		s->live = true;
	if (m->kind != ATP_V1_DELTA_UPDATE && m->kind != ATP_V1_DELTA_CONFLATED)
		return;
	uint64_t now = mono_ns();
	if (!l->first_ns)
		l->first_ns = now;
	l->last_ns = now;
	s->updates++;
	l->updates++;
	if (x->i == 0 && l->probes && m->sku.len == 12 && memcmp(m->sku.ptr, "PROBE-", 6) == 0 && m->previous_atp == 0) {
		uint32_t k = (uint32_t)strtoul(m->sku.ptr + 6, NULL, 10);
		uint64_t due = l->probe_t0_ns + k * l->probe_every_ns;
		atp_hist_add(&l->probe, now > due ? now - due : 0);
		if (k < l->probes)
			l->arrived[k] = now;
		l->probes_seen++;
	}
}

typedef struct prober {
	stream_source src;
	stream_options o;
	stream_result r;
	int rc;
} prober;

static void *probe_main(void *arg)
{
	prober *p = arg;
	p->rc = stream_send(&p->src, 1, &p->o, &p->r);
	return NULL;
}

/* K frames of one RECEIPT each, due every `every` ns. */
static int make_probes(prober *p, uint32_t k, uint64_t every)
{
	snprintf(p->src.name, sizeof(p->src.name), "probe");
	static uint8_t mem[4096] __attribute__((aligned(8)));
	for (uint32_t i = 0; i < k; i++) {
		char sku[16];
		snprintf(sku, sizeof(sku), "PROBE-%06u", i);
		atp_event ev = { .event_id = i + 1, .seq = i + 1, .type = ATP_EV_RECEIPT, .qty = 1,
				 .source = atp_str_of("probe", 5), .sku = atp_str_of(sku, strlen(sku)),
				 .location = atp_str_of("P", 1) };
		atp_fb_builder b;
		atp_fb_builder_init(&b, mem, sizeof(mem));
		atp_fb_ref e = atp_wire_build_event(&b, &ev, (atp_wire_event_time){ 0, 0 });
		size_t len;
		const uint8_t *f = atp_fb_finish(&b, atp_wire_build_event_batch(&b, &e, 1), NULL, &len);
		if (!f || stream_source_add_due(&p->src, f, (uint32_t)len, 1, i + 1, i * every) < 0)
			return -1;
	}
	return 0;
}

static void pump_all(load *l, struct pollfd *pfd, int timeout_ms)
{
	for (uint32_t i = 0; i < l->n; i++) {
		pfd[i].fd = atp_channel_client_fd(l->subs[i].c);
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
	}
	poll(pfd, l->n, timeout_ms);
	for (uint32_t i = 0; i < l->n; i++)
		if (pfd[i].fd < 0 || pfd[i].revents)
			atp_channel_client_pump(l->subs[i].c, 0);
}

int main(int argc, char **argv)
{
	tls_client_args(&argc, argv);
	const char *channel = NULL, *target = "127.0.0.1:7401", *tcp = NULL;
	uint32_t n = 1, probes = 0;
	uint64_t every_us = 1000, idle_ms = 2000, seconds = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *o = argv[i], *v = argv[i + 1];
		if (strcmp(o, "--channel") == 0)
			channel = v;
		else if (strcmp(o, "--grpc") == 0)
			target = v;
		else if (strcmp(o, "--subscribers") == 0)
			n = (uint32_t)strtoul(v, NULL, 10);
		else if (strcmp(o, "--tcp") == 0)
			tcp = v;
		else if (strcmp(o, "--probes") == 0)
			probes = (uint32_t)strtoul(v, NULL, 10);
		else if (strcmp(o, "--probe-every-us") == 0)
			every_us = strtoull(v, NULL, 10);
		else if (strcmp(o, "--idle-ms") == 0)
			idle_ms = strtoull(v, NULL, 10);
		else if (strcmp(o, "--seconds") == 0)
			seconds = strtoull(v, NULL, 10);
		else
			channel = NULL, i = argc;
	}
	if (!channel || n > 10000 || (n == 0 && !probes) || (probes && !tcp)) {
		fprintf(stderr, "usage: atp-subload --channel NAME [--grpc HOST:PORT] [--subscribers N]\n"
				"                   [--tcp HOST:PORT --probes K --probe-every-us U] [--idle-ms M] [--seconds S]\n");
		return 2;
	}
	static load l;
	l.n = n;
	l.subs = calloc(n, sizeof(sub));
	ctx_of *ctx = calloc(n, sizeof(ctx_of));
	struct pollfd *pfd = calloc(n, sizeof(*pfd));
	for (uint32_t i = 0; i < n; i++) {
		ctx[i] = (ctx_of){ &l, i };
		l.subs[i].c = atp_channel_client_new(target, channel, NULL, 0, on_msg, &ctx[i]);
	}
	uint64_t t_ready = mono_ns() + 120ull * 1000000000u;
	for (uint32_t live = 0; live < n && mono_ns() < t_ready;) {
		pump_all(&l, pfd, 10);
		live = 0;
		for (uint32_t i = 0; i < n; i++)
			live += l.subs[i].live;
	}
	l.updates = l.first_ns = l.last_ns = 0;
	for (uint32_t i = 0; i < n; i++)
		l.subs[i].updates = 0;
	printf("ready: %u subscribers live\n", n);
	fflush(stdout);
	static prober p;
	pthread_t th;
	if (probes) {
		char host[128];
		snprintf(host, sizeof(host), "%s", tcp);
		char *colon = strrchr(host, ':');
		if (!colon || make_probes(&p, probes, every_us * 1000) < 0)
			return 2;
		*colon = 0;
		l.probes = probes;
		l.arrived = calloc(probes, sizeof(uint64_t));
		l.probe_every_ns = every_us * 1000;
		p.o = (stream_options){ .host = host, .port = colon + 1, .window = 1 << 20, .timeout_s = 60, .paced = true };
		l.probe_t0_ns = p.o.t0_ns = mono_ns() + 100000000u;
		pthread_create(&th, NULL, probe_main, &p);
	}
	uint64_t start = mono_ns(), end = seconds ? start + seconds * 1000000000u : UINT64_MAX;
	for (; n;) {
		pump_all(&l, pfd, 10);
		uint64_t now = mono_ns();
		bool probing = probes && l.probes_seen < probes;
		if (now >= end || (!probing && l.last_ns && now - l.last_ns > idle_ms * 1000000u))
			break;
	}
	double secs = l.last_ns > l.first_ns ? (double)(l.last_ns - l.first_ns) / 1e9 : 0;
	if (!n) {
		pthread_join(th, NULL);
		printf("probes %u: send->ack p50 %.0f us p99 %.0f us\n", probes,
		       (double)atp_hist_quantile(&p.r.latency, 0.5) / 1e3, (double)atp_hist_quantile(&p.r.latency, 0.99) / 1e3);
		return 0;
	}
	printf("subscribers %u, updates %" PRIu64 " (per subscriber %" PRIu64 "), over %.3f s: %.0f deltas/s delivered\n",
	       n, l.updates, l.updates / n, secs, secs > 0 ? (double)l.updates / secs : 0);
	if (probes) {
		pthread_join(th, NULL);
		for (uint32_t k = 0; k < probes; k++) {
			uint64_t acked = __atomic_load_n(&p.src.frames[k].acked_ns, __ATOMIC_ACQUIRE);
			if (acked && l.arrived[k])
				atp_hist_add(&l.after_ack, l.arrived[k] > acked ? l.arrived[k] - acked : 0);
		}
		printf("probes %" PRIu64 " of %u: ack->delta p50 %.0f us p99 %.0f us; send->delta p50 %.0f us p99 %.0f us; "
		       "send->ack p50 %.0f us p99 %.0f us\n",
		       l.probes_seen, probes, (double)atp_hist_quantile(&l.after_ack, 0.5) / 1e3,
		       (double)atp_hist_quantile(&l.after_ack, 0.99) / 1e3, (double)atp_hist_quantile(&l.probe, 0.5) / 1e3,
		       (double)atp_hist_quantile(&l.probe, 0.99) / 1e3, (double)atp_hist_quantile(&p.r.latency, 0.5) / 1e3,
		       (double)atp_hist_quantile(&p.r.latency, 0.99) / 1e3);
	}
	for (uint32_t i = 0; i < n; i++)
		atp_channel_client_free(l.subs[i].c);
	return 0;
}
