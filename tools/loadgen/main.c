/*
 * atp-loadgen — a distribution day as load, deterministic from a seed.
 *
 * The day is the simulated one of tools/lib/simday.h: a catalogue of SKUs
 * at a few locations with Zipf popularity, order lines on a time-of-day
 * curve with a promotion burst (factor and duration), reservations followed
 * by picks after a delay, cancellations, receipts, adjustments, counts,
 * holds, transfers, client retries and at-least-once resends.
 *
 *   atp-loadgen [DAY] --csv FILE        write the day as the event CSV
 *   atp-loadgen [DAY] --tcp H:P --grpc H:P [--speed X | --asap]
 *               [--from-min M] [--minutes N]
 *       drive a running atpd: the WMS events over the TCP event stream
 *       (one connection per source, seqs renumbered contiguously), order
 *       capture's reservations and cancellations as gRPC Reserve and
 *       Release calls over --connections connections. --speed X plays the
 *       day X times faster than real time (--asap: as fast as it goes);
 *       --from-min/--minutes pick a slice of the day: what comes before it
 *       is sent first, as fast as possible, and not measured;
 *       --reconnect-every N drops each WMS connection after N frames and
 *       resumes it from the Welcome (what was not acknowledged yet goes
 *       again: duplicates, as an at-least-once sender makes); --day N plays
 *       the day as the Nth (times N days later, sources and references
 *       named dN-..., the SKUs the same): days back to back on one daemon
 *       let time run on, so lines lapse and are forgotten. A progress
 *       line every second, then a summary: throughput and p50, p90, p99,
 *       p99.9 and max of each event (sent -> durable ack) and each call
 *       (due -> answered). Exit 0 when everything was acknowledged and
 *       answered without an error.
 */
#define _GNU_SOURCE
#include "mono.h"
#include "tls_client.h"
#include "loadgen.h"

#include "csv_events.h"
#include "simday.h"
#include "stream_client.h"

#include "atp/inbound.h"
#include "atp/wire_event.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOURCES 8
#define BATCH 256
#define FRAME_SPAN_NS 1000000u  /* paced: events due within 1 ms of a frame's first share the frame */

typedef struct options {
	atp_simday_params day;
	const char *csv, *tcp, *grpc;
	double speed;               /* 0: as fast as possible */
	uint32_t from_min, minutes;
	uint32_t connections, in_flight;
	uint32_t reconnect_every;   /* TCP frames per connection before it is dropped and resumed (0: never) */
	uint32_t day_index;         /* the Nth day: times N days later, sources and references named dN- */
	char tag[16];               /* "dN-" for day N > 0, else "" */
} options;

/* One phase (the warm-up before the slice, or the slice): its TCP frames and its calls. */
typedef struct phase {
	stream_source src[MAX_SOURCES];
	uint32_t n_src;
	api_call *calls;
	uint64_t n_calls, cap_calls;
	uint64_t events;
} phase;

/* Per source of the day: the batch being built and the seq renumbering. */
typedef struct source_state {
	char name[ATP_SOURCE_MAX + 1];
	uint64_t next_seq;          /* the last seq given out */
	uint64_t orig_hwm;
	uint64_t *map;              /* original seq -> new seq (0: the row went over gRPC) */
	uint64_t map_cap;
	atp_event ev[BATCH];
	atp_wire_event_time t[BATCH];
	char text[BATCH][ATP_SKU_MAX + ATP_LOC_MAX * 2 + ATP_REF_MAX + ATP_REASON_MAX + 24];
	uint32_t n;
	uint64_t first_due, last_due, cover;
	phase *ph;
} source_state;

static void usage(void)
{
	fputs("usage: atp-loadgen [--seed N] [--skus N] [--locations N] [--order-lines N] [--peak-factor N]\n"
	      "         [--peak-minutes N] [--peak-start-min N] [--prefix P]\n"
	      "         (--csv FILE | --tcp HOST:PORT --grpc HOST:PORT [--speed X | --asap] [--from-min M]\n"
	      "          [--minutes N] [--connections N] [--in-flight N] [--reconnect-every FRAMES] [--day N])\n",
	      stderr);
	fputs(tls_client_usage, stderr);
	exit(2);
}

static uint64_t num(const char *name, const char *v, uint64_t max)
{
	char *end;
	errno = 0;
	unsigned long long x = v ? strtoull(v, &end, 10) : 0;
	if (!v || errno || *end || end == v || x > max) {
		fprintf(stderr, "atp-loadgen: %s wants a number up to %" PRIu64 "\n", name, max);
		exit(2);
	}
	return x;
}

static options parse(int argc, char **argv)
{
	options o = { .day = atp_simday_default(), .speed = 1000, .minutes = 1440, .connections = 8, .in_flight = 64 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;
		if (strcmp(a, "--seed") == 0)
			o.day.seed = num(a, v, UINT64_MAX);
		else if (strcmp(a, "--skus") == 0)
			o.day.skus = (uint32_t)num(a, v, 1000000);
		else if (strcmp(a, "--locations") == 0)
			o.day.locations = (uint32_t)num(a, v, 99);
		else if (strcmp(a, "--order-lines") == 0)
			o.day.order_lines = (uint32_t)num(a, v, 100000000);
		else if (strcmp(a, "--peak-factor") == 0)
			o.day.peak_factor = (uint32_t)num(a, v, 1440);
		else if (strcmp(a, "--peak-minutes") == 0)
			o.day.peak_minutes = (uint32_t)num(a, v, 1440);
		else if (strcmp(a, "--peak-start-min") == 0)
			o.day.peak_start_min = (uint32_t)num(a, v, 1439);
		else if (strcmp(a, "--prefix") == 0 && v && strlen(v) < sizeof(o.day.prefix))
			snprintf(o.day.prefix, sizeof(o.day.prefix), "%s", v);
		else if (strcmp(a, "--csv") == 0 && v)
			o.csv = v;
		else if (strcmp(a, "--tcp") == 0 && v)
			o.tcp = v;
		else if (strcmp(a, "--grpc") == 0 && v)
			o.grpc = v;
		else if (strcmp(a, "--speed") == 0)
			o.speed = (double)num(a, v, 100000000);
		else if (strcmp(a, "--from-min") == 0)
			o.from_min = (uint32_t)num(a, v, 1439);
		else if (strcmp(a, "--minutes") == 0)
			o.minutes = (uint32_t)num(a, v, 1440);
		else if (strcmp(a, "--connections") == 0)
			o.connections = (uint32_t)num(a, v, 1024);
		else if (strcmp(a, "--in-flight") == 0)
			o.in_flight = (uint32_t)num(a, v, 4096);
		else if (strcmp(a, "--day") == 0)
			o.day_index = (uint32_t)num(a, v, 100000);
		else if (strcmp(a, "--reconnect-every") == 0)
			o.reconnect_every = (uint32_t)num(a, v, UINT32_MAX);
		else if (strcmp(a, "--asap") == 0)
			o.speed = 0, takes = false;
		else
			usage();
		i += takes;
	}
	if (!o.csv && (!o.tcp || !o.grpc))
		usage();
	if (o.connections == 0 || o.in_flight == 0)
		usage();
	if (o.day_index)
		snprintf(o.tag, sizeof(o.tag), "d%u-", o.day_index);
	return o;
}

/* ---- the day, split ---- */

static bool is_order_capture(const atp_event *ev)
{
	return (ev->type == ATP_EV_RESERVE || ev->type == ATP_EV_RELEASE) && ev->source.len >= 3 &&
	       memcmp(ev->source.ptr + ev->source.len - 3, "oms", 3) == 0;
}

static int flush(source_state *s)
{
	static uint8_t mem[4u << 20] __attribute__((aligned(8)));
	if (!s->n)
		return 0;
	atp_fb_builder fb;
	atp_fb_ref refs[BATCH];
	atp_fb_builder_init(&fb, mem, sizeof(mem));
	for (uint32_t i = 0; i < s->n; i++)
		refs[i] = atp_wire_build_event(&fb, &s->ev[i], s->t[i]);
	size_t len;
	const uint8_t *p = atp_fb_finish(&fb, atp_wire_build_event_batch(&fb, refs, s->n), NULL, &len);
	phase *ph = s->ph;
	uint32_t k = 0;
	while (k < ph->n_src && strcmp(ph->src[k].name, s->name) != 0)
		k++;
	if (k == ph->n_src)
		snprintf(ph->src[ph->n_src++].name, ATP_SOURCE_MAX + 1, "%s", s->name);
	if (!p || stream_source_add_due(&ph->src[k], p, (uint32_t)len, s->n, s->cover, s->last_due) < 0)
		return -1;
	ph->events += s->n;
	s->n = 0;
	return 0;
}

static atp_str keep(char **w, atp_str v)
{
	memcpy(*w, v.ptr, v.len);
	atp_str r = atp_str_of(*w, v.len);
	*w += v.len;
	return r;
}

/* The reference, tagged with the day (tag + ref) into w. */
static atp_str tagged(char **w, const char *tag, atp_str ref)
{
	if (!ref.len)
		return ref;
	size_t t = strlen(tag);
	memcpy(*w, tag, t);
	*w += t;
	atp_str r = keep(w, ref);
	return atp_str_of(r.ptr - t, r.len + t);
}

/* A WMS event into its source's batch (its seq renumbered), due at due_ns of phase ph. */
static int add_event(source_state *s, const atp_event *ev, uint64_t occurred_at, uint64_t due_ns, phase *ph,
		     const char *tag)
{
	uint64_t seq;
	if (ev->seq > s->orig_hwm) {
		if (ev->seq >= s->map_cap) {
			uint64_t cap = s->map_cap ? s->map_cap * 2 : 1u << 16;
			while (cap <= ev->seq)
				cap *= 2;
			uint64_t *m = realloc(s->map, cap * sizeof(uint64_t));
			if (!m)
				return -1;
			memset(m + s->map_cap, 0, (cap - s->map_cap) * sizeof(uint64_t));
			s->map = m;
			s->map_cap = cap;
		}
		s->map[ev->seq] = seq = ++s->next_seq;
		s->orig_hwm = ev->seq;
	} else if (!(seq = s->map[ev->seq])) {
		return 0;  /* the resend of a row that went over gRPC */
	}
	if (s->n && (s->ph != ph || s->n == BATCH || (due_ns && due_ns - s->first_due > FRAME_SPAN_NS)) && flush(s) < 0)
		return -1;
	if (!s->n)
		s->first_due = due_ns;
	s->ph = ph;
	atp_event *e = &s->ev[s->n];
	char *w = s->text[s->n];
	*e = *ev;
	e->seq = e->event_id = seq;
	e->source = (atp_str){ 0 };
	e->sku = keep(&w, ev->sku);
	e->location = keep(&w, ev->location);
	e->ref = tagged(&w, tag, ev->ref);
	e->to_location = keep(&w, ev->to_location);
	e->reason = keep(&w, ev->reason);
	s->t[s->n++] = (atp_wire_event_time){ occurred_at, ev->expires_at ? ev->expires_at - occurred_at : 0 };
	s->last_due = due_ns;
	if (seq > s->cover)
		s->cover = seq;
	return 0;
}

static int add_call(phase *ph, const atp_event *ev, uint64_t occurred_at, uint64_t due_ns, const char *tag)
{
	if (ph->n_calls == ph->cap_calls) {
		uint64_t cap = ph->cap_calls ? ph->cap_calls * 2 : 4096;
		api_call *c = realloc(ph->calls, cap * sizeof(api_call));
		if (!c)
			return -1;
		ph->calls = c;
		ph->cap_calls = cap;
	}
	api_call *c = &ph->calls[ph->n_calls++];
	*c = (api_call){ .due_ns = due_ns, .kind = ev->type == ATP_EV_RESERVE ? CALL_RESERVE : CALL_RELEASE,
			 .partial = ev->flags & ATP_EVF_PARTIAL, .qty = ev->qty,
			 .ttl_ms = ev->expires_at ? ev->expires_at - occurred_at : 0,
			 .need_by = ev->date ? atp_ymd_of_day(ev->date) : 0 };
	snprintf(c->ref, sizeof(c->ref), "%s%.*s", tag, (int)ev->ref.len, ev->ref.ptr);
	snprintf(c->sku, sizeof(c->sku), "%.*s", (int)ev->sku.len, ev->sku.ptr);
	snprintf(c->loc, sizeof(c->loc), "%.*s", (int)ev->location.len, ev->location.ptr);
	return 0;
}

/* Split the day's CSV into the warm-up phase (before the slice) and the slice. */
static int split(const options *o, const char *csv, size_t len, phase *warm, phase *slice)
{
	atp_csv_reader *r = malloc(sizeof(*r));
	source_state *st = calloc(MAX_SOURCES, sizeof(source_state));
	char err[ATP_CSV_ERR_MAX];
	uint32_t n_st = 0;
	int rc = r && st ? atp_csv_open(r, csv, len, err) : -1;
	uint64_t day0 = 0, from = (uint64_t)o->from_min * 60000, to = from + (uint64_t)o->minutes * 60000, latest = 0;
	bool have_day0 = false;
	atp_event ev;
	int k;
	while (rc == 0 && (k = atp_csv_next(r, &ev, err)) != 0) {
		if (k < 0) {
			fprintf(stderr, "atp-loadgen: the day's line %" PRIu64 ": %s\n", r->line, err);
			rc = -1;
			break;
		}
		if (!have_day0) {
			day0 = r->occurred_at - r->occurred_at % 86400000;  /* midnight of the day */
			have_day0 = true;
		}
		/* A row goes out when it comes in the day: a resend keeps its first occurred_at but is sent later. */
		if (r->occurred_at > latest)
			latest = r->occurred_at;
		uint64_t at = latest - day0;
		if (at >= to)
			break;
		phase *ph = at < from ? warm : slice;
		uint64_t due = ph == slice && o->speed > 0 ? (uint64_t)((double)(at - from) * 1e6 / o->speed) : 0;
		uint64_t when = r->occurred_at + (uint64_t)o->day_index * 86400000;
		if (ev.expires_at)
			ev.expires_at += (uint64_t)o->day_index * 86400000;
		if (is_order_capture(&ev)) {
			rc = add_call(ph, &ev, when, due, o->tag);
			continue;
		}
		char name[ATP_SOURCE_MAX + 1];
		snprintf(name, sizeof(name), "%s%.*s", o->tag, (int)ev.source.len, ev.source.ptr);
		uint32_t s = 0;
		while (s < n_st && strcmp(st[s].name, name) != 0)
			s++;
		if (s == n_st) {
			if (n_st == MAX_SOURCES) {
				rc = -1;
				break;
			}
			snprintf(st[n_st++].name, ATP_SOURCE_MAX + 1, "%s", name);
		}
		rc = add_event(&st[s], &ev, when, due, ph, o->tag);
	}
	for (uint32_t s = 0; s < n_st; s++) {
		if (rc == 0)
			rc = flush(&st[s]);
		free(st[s].map);
	}
	free(st);
	free(r);
	return rc;
}

/* ---- driving ---- */

typedef struct run {
	const options *o;
	phase *ph;
	bool paced;
	uint64_t t0_ns;
	stream_result tcp;
	int tcp_rc;
	grpc_outcome api;
	int api_rc;
	bool tcp_done, api_done;
} run;

static void *tcp_thread(void *arg)
{
	run *x = arg;
	char host[128];
	snprintf(host, sizeof(host), "%s", x->o->tcp);
	char *colon = strrchr(host, ':');
	if (!colon) {
		x->tcp_rc = -1;
	} else {
		*colon = 0;
		stream_options so = { .host = host, .port = colon + 1, .window = 1u << 20, .timeout_s = 60,
				      .paced = x->paced, .t0_ns = x->t0_ns, .reconnect_every = x->o->reconnect_every };
		x->tcp_rc = stream_send(x->ph->src, x->ph->n_src, &so, &x->tcp);
	}
	__atomic_store_n(&x->tcp_done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void *api_thread(void *arg)
{
	run *x = arg;
	grpc_plan p = { .target = x->o->grpc, .connections = x->o->connections, .in_flight = x->o->in_flight,
			.paced = x->paced, .t0_ns = x->t0_ns, .calls = x->ph->calls, .n = x->ph->n_calls };
	x->api_rc = grpc_drive(&p, &x->api);
	__atomic_store_n(&x->api_done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* Drive one phase to its end; progress lines when `say`. 0, or -1. */
static int drive(const options *o, phase *ph, bool paced, const char *name, run *x)
{
	*x = (run){ .o = o, .ph = ph, .paced = paced, .t0_ns = atp_mono_ns() + 20000000 };
	pthread_t t1, t2;
	if (pthread_create(&t1, NULL, tcp_thread, x) || pthread_create(&t2, NULL, api_thread, x))
		return -1;
	uint64_t last_ev = 0, last_calls = 0, start = atp_mono_ns();
	for (unsigned sec = 1; !__atomic_load_n(&x->tcp_done, __ATOMIC_ACQUIRE) ||
			       !__atomic_load_n(&x->api_done, __ATOMIC_ACQUIRE); sec++) {
		for (int i = 0; i < 100 && !(__atomic_load_n(&x->tcp_done, __ATOMIC_ACQUIRE) &&
					     __atomic_load_n(&x->api_done, __ATOMIC_ACQUIRE)); i++)
			usleep(10000);
		uint64_t ev = stream_result_events(&x->tcp), calls = __atomic_load_n(&x->api.done, __ATOMIC_RELAXED);
		double t = (atp_mono_ns() - start) / 1e9;
		fprintf(stderr, "%s %6.1f s: events %" PRIu64 "/%" PRIu64 " acked (%" PRIu64 "/s), calls %" PRIu64 "/%" PRIu64
				" answered (%" PRIu64 "/s)\n",
			name, t, ev, ph->events, ev - last_ev, calls, ph->n_calls, calls - last_calls);
		last_ev = ev;
		last_calls = calls;
	}
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	return x->tcp_rc || x->api_rc ? -1 : 0;
}

static void row(const char *what, uint64_t n, double seconds, const atp_histogram *h)
{
	printf("| %s | %" PRIu64 " | %.0f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", what, n, seconds > 0 ? n / seconds : 0,
	       atp_hist_quantile(h, 0.5) / 1e6, atp_hist_quantile(h, 0.9) / 1e6, atp_hist_quantile(h, 0.99) / 1e6,
	       atp_hist_quantile(h, 0.999) / 1e6, h->max / 1e6);
}

int main(int argc, char **argv)
{
	tls_client_args(&argc, argv);
	options o = parse(argc, argv);
	if (o.csv) {
		FILE *f = strcmp(o.csv, "-") == 0 ? stdout : fopen(o.csv, "w");
		atp_simday_summary sum;
		int rc = f ? atp_simday_write(&o.day, f, &sum) : -errno;
		if (f && f != stdout && fclose(f) != 0 && rc == 0)
			rc = -errno;
		if (rc < 0) {
			fprintf(stderr, "atp-loadgen: %s: %s\n", o.csv, strerror(-rc));
			return 1;
		}
		fprintf(stderr, "atp-loadgen: %" PRIu64 " events written to %s\n", sum.rows, o.csv);
		return 0;
	}
	char *csv = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&csv, &len);
	atp_simday_summary sum;
	if (!mem || atp_simday_write(&o.day, mem, &sum) < 0 || fclose(mem) != 0) {
		fprintf(stderr, "atp-loadgen: cannot generate the day\n");
		return 1;
	}
	static phase warm, slice;
	if (split(&o, csv, len, &warm, &slice) < 0) {
		fprintf(stderr, "atp-loadgen: cannot split the day\n");
		return 1;
	}
	free(csv);
	static run w, s;
	if ((warm.events || warm.n_calls) && drive(&o, &warm, false, "warm-up", &w) < 0) {
		fprintf(stderr, "atp-loadgen: the warm-up failed\n");
		return 1;
	}
	int rc = drive(&o, &slice, o.speed > 0, "slice", &s);
	double secs = s.tcp.seconds > s.api.seconds ? s.tcp.seconds : s.api.seconds;
	printf("\n%s day (seed %" PRIu64 ", %u order lines, %u SKUs x %u locations, burst %ux for %u min at %02u:%02u),"
	       " minutes %u..%u at %s%.0fx: %" PRIu64 " events over TCP, %" PRIu64 " calls over gRPC in %.2f s\n\n",
	       o.day.prefix[0] ? o.day.prefix : "the", o.day.seed, o.day.order_lines, o.day.skus, o.day.locations,
	       o.day.peak_factor, o.day.peak_minutes, o.day.peak_start_min / 60, o.day.peak_start_min % 60, o.from_min,
	       o.from_min + o.minutes, o.speed > 0 ? "" : "as fast as possible, not ", o.speed, slice.events,
	       slice.n_calls, secs);
	printf("| stream | count | per s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n|---|---|---|---|---|---|---|---|\n");
	row("events, sent -> durable ack (TCP)", s.tcp.events, s.tcp.seconds, &s.tcp.latency);
	row("reservations, due -> answer (gRPC)", s.api.reserves, s.api.seconds, &s.api.reserve_latency);
	row("cancellations, due -> answer (gRPC)", s.api.releases, s.api.seconds, &s.api.release_latency);
	printf("\nreservations: %" PRIu64 " duplicates answered, %" PRIu64 " units confirmed, %" PRIu64
	       " not found; errors: %" PRIu64 " (%" PRIu64 " broken); TCP: %" PRIu64 " refused, %" PRIu64 " reconnects\n",
	       s.api.duplicates, s.api.confirmed_units, s.api.not_found, s.api.errors, s.api.broken, s.tcp.refused,
	       s.tcp.reconnects);
	for (uint32_t i = 0; i < warm.n_src; i++)
		stream_source_free(&warm.src[i]);
	for (uint32_t i = 0; i < slice.n_src; i++)
		stream_source_free(&slice.src[i]);
	free(warm.calls);
	free(slice.calls);
	return rc < 0 || s.api.errors || s.tcp.refused || s.tcp.events != slice.events ? 1 : 0;
}
