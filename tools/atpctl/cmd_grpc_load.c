/*
 * cmd_grpc_load.c — atpctl grpc-load: drive a running atpd's gRPC API
 * with GetAtp or Reserve calls from many connections, closed loop (each
 * connection keeps --concurrency calls in flight) or open loop at --rate
 * calls per second, and report throughput and the latency of each call
 * (submitted -> answered; in the open loop, due -> answered, so a call
 * started late counts its wait) from a log-bucketed histogram. It checks
 * itself: the closed loop prints the in-flight count Little's law gives
 * (calls/s x mean latency), which must be the one asked for; the open
 * loop says so when it could not reach the asked rate.
 *
 * SKUs are PREFIX + "SKU-%06u" (0 .. --skus-1), uniformly drawn; Reserve
 * lines go to location --location, each reservation id unique to the run,
 * so every Reserve is a new, durable reservation.
 */
#include "mono.h"
#include "atpctl.h"
#include "grpc_client.h"
#include "histogram.h"
#include "prng.h"

#include "atp/wire_api.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct load load;

typedef struct lcall {
	load *l;
	uint64_t t0_ns;            /* when it was due: its start (closed loop) or its slot in the schedule (open loop) */
	struct lcall *next_free;
} lcall;

struct load {
	bool reserve;
	bool profile;    /* GetAtpProfile, 30 days, every location (else GetAtp) */
	uint8_t policy;  /* of Reserve: ATP_V1_* */
	uint32_t skus, lines;
	const char *prefix, *location;
	uint64_t run, seq;
	atp_prng rng;
	atp_histogram hist;        /* ns */
	uint64_t sum_ns;           /* of every latency: the mean, for Little's law */
	uint64_t ok, errors, codes[17], broken;
	lcall *free_calls;
	uint8_t mem[64u << 10] __attribute__((aligned(8)));
};

static void on_done(void *ctx, int status, const char *message)
{
	(void)message;
	lcall *c = ctx;
	load *l = c->l;
	uint64_t ns = atp_mono_ns() - c->t0_ns;
	atp_hist_add(&l->hist, ns);
	l->sum_ns += ns;
	if (status == 0)
		l->ok++;
	else if (status > 0 && status <= 16)
		l->codes[status]++, l->errors++;
	else
		l->broken++, l->errors++;
	c->next_free = l->free_calls;
	l->free_calls = c;
}

static int start_one(load *l, atp_grpc_client *cl, uint64_t due_ns)
{
	lcall *c = l->free_calls;
	if (!c)
		return -1;
	char sku[96], id[64];
	atp_fb_builder b;
	atp_fb_builder_init(&b, l->mem, sizeof(l->mem));
	atp_fb_ref root;
	if (!l->reserve) {
		snprintf(sku, sizeof(sku), "%sSKU-%06u", l->prefix, (unsigned)atp_prng_below(&l->rng, l->skus));
		root = l->profile ? atp_v1_build_atp_profile_query(&b, atp_str_of(sku, strlen(sku)), NULL, 0, 30)
				  : atp_v1_build_atp_query(&b, atp_str_of(sku, strlen(sku)), NULL, 0);
	} else {
		atp_fb_ref refs[64];
		uint64_t first = atp_prng_below(&l->rng, l->skus);
		for (uint32_t i = 0; i < l->lines; i++) {
			/* distinct SKUs within one reservation: consecutive from a random start */
			uint32_t k = (uint32_t)((first + i) % l->skus);
			snprintf(sku, sizeof(sku), "%sSKU-%06u", l->prefix, (unsigned)k);
			refs[i] = atp_v1_build_reserve_line(&b, atp_str_of(sku, strlen(sku)),
							   atp_str_of(l->location, strlen(l->location)), 1);
		}
		snprintf(id, sizeof(id), "LD-%" PRIx64 "-%" PRIu64, l->run, l->seq++);
		root = atp_v1_build_reserve_request_policy(&b, atp_str_of(id, strlen(id)), refs, l->lines, 0, l->policy);
	}
	size_t len;
	const uint8_t *msg = atp_fb_finish(&b, root, NULL, &len);
	c->t0_ns = due_ns ? due_ns : atp_mono_ns();
	const char *path = l->reserve ? "/atp.v1.Atp/Reserve" : l->profile ? "/atp.v1.Atp/GetAtpProfile" : "/atp.v1.Atp/GetAtp";
	if (atp_grpc_client_start(cl, path, msg, (uint32_t)len,
				  30000, NULL, on_done, c) < 0)
		return -1;
	l->free_calls = c->next_free;
	return 0;
}

int cmd_grpc_load(int argc, char **argv)
{
	const char *target = getenv("ATP_GRPC") ? getenv("ATP_GRPC") : "127.0.0.1:7401", *method = "getatp";
	uint64_t conns = 4, conc = 16, rate = 0, seed = 1;
	double seconds = 5;
	static load l;
	l = (load){ .skus = 1000, .lines = 1, .prefix = "", .location = "DC01", .policy = ATP_V1_PARTIAL };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--grpc") == 0 && v)
			target = argv[++i];
		else if (strcmp(a, "--method") == 0 && v)
			method = argv[++i];
		else if (strcmp(a, "--connections") == 0)
			conns = opt_u64(a, argv[++i], 1, 1024);
		else if (strcmp(a, "--concurrency") == 0)
			conc = opt_u64(a, argv[++i], 1, 1024);
		else if (strcmp(a, "--seconds") == 0)
			seconds = (double)opt_u64(a, argv[++i], 1, 86400);
		else if (strcmp(a, "--rate") == 0)
			rate = opt_u64(a, argv[++i], 0, 100000000);
		else if (strcmp(a, "--skus") == 0)
			l.skus = (uint32_t)opt_u64(a, argv[++i], 1, 100000000);
		else if (strcmp(a, "--lines") == 0)
			l.lines = (uint32_t)opt_u64(a, argv[++i], 1, 64);
		else if (strcmp(a, "--policy") == 0 && v)
			l.policy = opt_policy(argv[++i]);
		else if (strcmp(a, "--seed") == 0)
			seed = opt_u64(a, argv[++i], 0, UINT64_MAX);
		else if (strcmp(a, "--prefix") == 0 && v)
			l.prefix = argv[++i];
		else if (strcmp(a, "--location") == 0 && v)
			l.location = argv[++i];
		else {
			fprintf(stderr, "usage: atpctl grpc-load [--grpc HOST:PORT] [--method getatp|reserve|profile] [--connections N]\n"
					"         [--concurrency K] [--seconds S] [--rate CALLS_PER_S] [--skus N] [--lines L]\n"
					"         [--prefix P] [--location LOC] [--seed N] [--policy per-line|all-or-nothing|partial]\n");
			return 2;
		}
	}
	if (strcmp(method, "getatp") != 0 && strcmp(method, "reserve") != 0 && strcmp(method, "profile") != 0) {
		fprintf(stderr, "atpctl: --method is getatp, reserve or profile\n");
		return 2;
	}
	l.reserve = strcmp(method, "reserve") == 0;
	l.profile = strcmp(method, "profile") == 0;
	l.run = (uint64_t)getpid() << 32 ^ atp_mono_ns();
	atp_prng_seed(&l.rng, seed);
	atp_grpc_client **cl = calloc(conns, sizeof(*cl));
	lcall *calls = calloc(conns * conc, sizeof(lcall));
	struct pollfd *pfd = calloc(conns, sizeof(struct pollfd));
	if (!cl || !calls || !pfd)
		return 1;
	for (uint64_t i = 0; i < conns * conc; i++) {
		calls[i].l = &l;
		calls[i].next_free = l.free_calls;
		l.free_calls = &calls[i];
	}
	char err[256];
	for (uint64_t i = 0; i < conns; i++) {
		if (!(cl[i] = atp_grpc_client_connect(target, err, sizeof(err)))) {
			fprintf(stderr, "atpctl: %s\n", err);
			return 1;
		}
		pfd[i] = (struct pollfd){ .fd = atp_grpc_client_fd(cl[i]), .events = POLLIN };
	}
	uint64_t t0 = atp_mono_ns(), end = t0 + (uint64_t)(seconds * 1e9), next = t0,
		 interval = rate ? 1000000000u / rate : 0, started = 0;
	for (uint64_t now = t0; now < end; now = atp_mono_ns()) {
		for (uint64_t i = 0; i < conns; i++) {
			/*
			 * Fill the connection's slots, read its replies, and refill and
			 * send at once what they freed. Open loop: a call is timed from
			 * its slot in the schedule, so a late start counts as latency.
			 */
			for (int pass = 0; pass < 2; pass++) {
				while (atp_grpc_client_in_flight(cl[i]) < conc && (!rate || now >= next)) {
					if (start_one(&l, cl[i], rate ? next : 0) < 0)
						break;
					started++;
					next += interval;
				}
				if ((pass ? atp_grpc_client_flush(cl[i]) : atp_grpc_client_pump(cl[i], 0)) < 0) {
					fprintf(stderr, "atpctl: connection %" PRIu64 " broke\n", i);
					return 1;
				}
			}
		}
		/*
		 * Closed loop: block only while every connection is full, or a
		 * call answered in the pumps above would leave its slot empty
		 * until some other reply came (or 100 ms passed).
		 */
		int wait_ms = 100;
		for (uint64_t i = 0; i < conns && !rate; i++)
			if (atp_grpc_client_in_flight(cl[i]) < conc)
				wait_ms = 0;
		if (rate) {
			now = atp_mono_ns();
			wait_ms = next > now ? (int)((next - now) / 1000000) : 0;
		}
		poll(pfd, conns, wait_ms);  /* what came in is read by the next round's pumps, each refilling at once */
	}
	double elapsed = (atp_mono_ns() - t0) / 1e9;
	/* let what is in flight finish (not counted in the rate's time, but in the latencies) */
	for (uint64_t i = 0; i < conns; i++)
		while (atp_grpc_client_in_flight(cl[i]) && atp_grpc_client_pump(cl[i], 1000) >= 0)
			;
	uint64_t done = l.ok + l.errors;
	printf("grpc-load: %s, %" PRIu64 " connections x %" PRIu64 " in flight%s, %.1f s: %" PRIu64 " calls, %.0f calls/s",
	       method, conns, conc, rate ? " (open loop)" : "", elapsed, done, done / elapsed);
	if (l.reserve)
		printf(", %.0f lines/s", (double)l.ok * l.lines / elapsed);
	printf(", %" PRIu64 " errors", l.errors);
	for (int s = 1; s <= 16; s++)
		if (l.codes[s])
			printf(" (%s: %" PRIu64 ")", atp_grpc_status_name(s), l.codes[s]);
	double mean_s = done ? (double)l.sum_ns / (double)done / 1e9 : 0;
	printf("\nlatency: p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms, mean %.3f ms\n",
	       atp_hist_quantile(&l.hist, 0.5) / 1e6, atp_hist_quantile(&l.hist, 0.9) / 1e6,
	       atp_hist_quantile(&l.hist, 0.99) / 1e6, atp_hist_quantile(&l.hist, 0.999) / 1e6, l.hist.max / 1e6,
	       mean_s * 1e3);
	/* The instrument's own check: calls/s x mean latency is the number in flight on average (Little's law). */
	if (!rate)
		printf("in flight by Little's law: %.1f of %" PRIu64 " kept\n", done / elapsed * mean_s, conns * conc);
	else if (done / elapsed < 0.95 * (double)rate)
		printf("could not reach the asked rate: %.0f calls/s of %" PRIu64 " (at most %" PRIu64 " in flight)\n",
		       done / elapsed, rate, conns * conc);
	for (uint64_t i = 0; i < conns; i++)
		atp_grpc_client_close(cl[i]);
	free(cl);
	free(calls);
	free(pfd);
	(void)started;
	return l.errors ? 1 : 0;
}
