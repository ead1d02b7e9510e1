/*
 * cmd_status.c — atpctl status: a running atpd on one screen (or as JSON),
 * from its metrics listener: two scrapes an interval apart give the rates,
 * the second the rest. What it reads is what Prometheus reads, so the two
 * never disagree, and it needs no admin call of its own.
 */
#define _GNU_SOURCE
#include "atpctl.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_BYTES (64u << 20)

typedef struct sample {
	char *name;     /* points into the scrape's text */
	char *labels;   /* "" when none */
	double v;
} sample;

typedef struct scrape {
	char *text;
	sample *s;
	size_t n;
} scrape;

/* GET /metrics from host:port into sc->text; 0, or -1 after a message. */
static int fetch(const char *addr, scrape *sc)
{
	char host[256], *port;
	snprintf(host, sizeof(host), "%s", addr);
	if (!(port = strrchr(host, ':'))) {
		fprintf(stderr, "atpctl: --metrics wants HOST:PORT, got '%s'\n", addr);
		return -1;
	}
	*port++ = 0;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	int rc = getaddrinfo(host[0] == '[' ? host + 1 : host, port, &hints, &ai);
	if (rc) {
		fprintf(stderr, "atpctl: %s: %s\n", addr, gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = 5 };
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		fprintf(stderr, "atpctl: cannot reach atpd's metrics at %s: %s\n", addr, strerror(errno));
		freeaddrinfo(ai);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	freeaddrinfo(ai);
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: atpd\r\nConnection: close\r\n\r\n";
	size_t len = 0, cap = 1u << 20;
	char *buf = malloc(cap + 1);
	bool ok = buf && send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof(req) - 1);
	for (ssize_t got = 1; ok && got > 0;) {
		if (len == cap) {
			char *p = cap < MAX_BYTES ? realloc(buf, 2 * cap + 1) : NULL;
			if (!p) {
				ok = false;
				break;
			}
			buf = p;
			cap *= 2;
		}
		got = recv(fd, buf + len, cap - len, 0);
		if (got < 0)
			ok = false;
		else
			len += (size_t)got;
	}
	close(fd);
	if (!ok) {
		fprintf(stderr, "atpctl: reading %s/metrics: %s\n", addr, strerror(errno));
		free(buf);
		return -1;
	}
	buf[len] = 0;
	char *body = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0 || !body) {
		fprintf(stderr, "atpctl: %s/metrics answered: %.60s\n", addr, buf);
		free(buf);
		return -1;
	}
	memmove(buf, body + 4, strlen(body + 4) + 1);
	sc->text = buf;
	return 0;
}

/* The sample lines of sc->text, split in place. */
static int parse(scrape *sc)
{
	size_t cap = 1024;
	sc->s = malloc(cap * sizeof(sample));
	sc->n = 0;
	for (char *line = sc->text, *next; sc->s && line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (line[0] == '#' || !line[0])
			continue;
		char *sp = strrchr(line, ' ');
		if (!sp)
			continue;
		*sp = 0;
		sample x = { .name = line, .labels = "", .v = strtod(sp + 1, NULL) };
		char *brace = strchr(line, '{');
		if (brace) {
			*brace = 0;
			x.labels = brace + 1;
			char *end = strrchr(x.labels, '}');
			if (end)
				*end = 0;
		}
		if (sc->n == cap) {
			sample *p = realloc(sc->s, 2 * cap * sizeof(sample));
			if (!p)
				break;
			sc->s = p;
			cap *= 2;
		}
		sc->s[sc->n++] = x;
	}
	return sc->s ? 0 : -1;
}

/* The sum of name's samples whose labels contain `labels` ("" : all of them); NAN when there are none. */
static double get(const scrape *sc, const char *name, const char *labels)
{
	double sum = 0;
	bool any = false;
	for (size_t i = 0; i < sc->n; i++)
		if (strcmp(sc->s[i].name, name) == 0 && strstr(sc->s[i].labels, labels)) {
			sum += sc->s[i].v;
			any = true;
		}
	return any ? sum : NAN;
}

/* The value of a label in a labels string, copied into out. */
static const char *label(const char *labels, const char *key, char *out, size_t cap)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "%s=\"", key);
	const char *p = strstr(labels, pat);
	size_t n = 0;
	if (p)
		for (p += strlen(pat); *p && *p != '"' && n + 1 < cap; p++)
			out[n++] = *p == '\\' && p[1] ? *++p : *p;
	out[n] = 0;
	return out;
}

/* The q quantile of histogram name (cumulative buckets), between two scrapes (a: NULL for since start). */
static double quantile(const scrape *a, const scrape *b, const char *name, double q)
{
	char bucket[96];
	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	double total = get(b, bucket, "le=\"+Inf\"") - (a ? get(a, bucket, "le=\"+Inf\"") : 0);
	if (!(total > 0))
		return NAN;
	for (size_t i = 0; i < b->n; i++) {
		if (strcmp(b->s[i].name, bucket) != 0)
			continue;
		double c = b->s[i].v - (a ? get(a, bucket, b->s[i].labels) : 0);
		if (c >= q * total) {
			char le[32];
			return strtod(label(b->s[i].labels, "le", le, sizeof(le)), NULL);
		}
	}
	return NAN;
}

static const char *ago(double s, char *out, size_t cap)
{
	if (isnan(s))
		snprintf(out, cap, "none since start");
	else if (s < 120)
		snprintf(out, cap, "%.0f s ago", s);
	else if (s < 7200)
		snprintf(out, cap, "%.0f min ago", s / 60);
	else
		snprintf(out, cap, "%.1f h ago", s / 3600);
	return out;
}

static double pct(double a, double b)
{
	return b > 0 ? 100 * a / b : 0;
}

static void print_text(const char *addr, const scrape *a, const scrape *b, double dt)
{
	double up = (double)time(NULL) - get(b, "atpd_start_time_seconds", "");
	double events = get(b, "atpd_engine_events_total", "");
	double rate = (events - get(a, "atpd_engine_events_total", "")) / dt;
	double calls = get(b, "atpd_grpc_replies_total", ""), errors = calls - get(b, "atpd_grpc_replies_total", "code=\"0\"");
	double call_rate = (calls - get(a, "atpd_grpc_replies_total", "")) / dt;
	double p50 = quantile(a, b, "atpd_fsync_seconds", 0.5), p99 = quantile(a, b, "atpd_fsync_seconds", 0.99);
	bool recent = !isnan(p99);
	if (!recent) {
		p50 = quantile(NULL, b, "atpd_fsync_seconds", 0.5);
		p99 = quantile(NULL, b, "atpd_fsync_seconds", 0.99);
	}
	char when[64];
	printf("atpd at %s: up %.0f h %02.0f min %02.0f s; recovered %.0f WAL records in %.3f s at start\n", addr,
	       floor(up / 3600), floor(fmod(up, 3600) / 60), fmod(up, 60), get(b, "atpd_recovered_records", ""),
	       get(b, "atpd_recovery_seconds", ""));
	printf("events: %.0f/s durable now, %.0f since start; %.0f duplicates skipped, %.0f gaps, %.0f refused on the stream\n",
	       rate, events, get(b, "atpd_events_duplicate_total", ""), get(b, "atpd_events_gap_total", ""),
	       isnan(get(b, "atpd_stream_events_refused_total", "")) ? 0 : get(b, "atpd_stream_events_refused_total", ""));
	printf("floor exceptions: %.0f events drove on_hand negative, %.0f left reservations short\n",
	       get(b, "atpd_negative_on_hand_events_total", ""), get(b, "atpd_short_reservation_events_total", ""));
	printf("promises against inbound supply: %.0f made, %.0f opened; exceptions: %.0f late, %.0f withdrawn\n",
	       get(b, "atpd_promises_total", "event=\"made\""), get(b, "atpd_promises_total", "event=\"opened\""),
	       get(b, "atpd_promises_total", "event=\"late\""), get(b, "atpd_promises_total", "event=\"withdrawn\""));
	printf("durability: %.0f group commits, fsync p50 %.2f ms p99 %.2f ms (%s); WAL %.1f MB written, %.0f segments; "
	       "snapshot %s\n",
	       get(b, "atpd_fsync_seconds_count", ""), p50 * 1e3, p99 * 1e3, recent ? "last interval" : "since start",
	       get(b, "atpd_wal_bytes_total", "") / 1e6, get(b, "atpd_wal_segments", ""),
	       ago(get(b, "atpd_snapshot_age_seconds", ""), when, sizeof(when)));
	double pos = get(b, "atpd_positions", ""), pos_cap = get(b, "atpd_positions_capacity", "");
	double lines = get(b, "atpd_reservation_lines_used", ""), lines_cap = get(b, "atpd_reservation_lines_capacity", "");
	printf("capacity: positions %.0f of %.0f (%.1f%%), reservation lines %.0f of %.0f (%.1f%%), %.0f open\n", pos,
	       pos_cap, pct(pos, pos_cap), lines, lines_cap, pct(lines, lines_cap), get(b, "atpd_reservation_lines_open", ""));
	double dl = get(b, "atpd_deadletter_entries", "");
	if (!isnan(dl)) /* a dead-letter store: what waits for a person */
		printf("dead letters: %.0f held of %.0f (%.0f since start; %.0f refused with the store full)\n", dl,
		       get(b, "atpd_deadletter_capacity", ""), get(b, "atpd_deadletters_total", ""),
		       get(b, "atpd_deadletters_refused_total", ""));
	double sc = get(b, "atpd_stream_connections", ""), gc = get(b, "atpd_grpc_connections", "");
	printf("connections: event stream %.0f, gRPC %.0f (%.0f calls/s now, %.0f calls and %.0f errors since start)\n",
	       isnan(sc) ? 0 : sc, isnan(gc) ? 0 : gc, isnan(call_rate) ? 0 : call_rate, isnan(calls) ? 0 : calls,
	       isnan(errors) ? 0 : errors);
	printf("sources (durable seq, last event):");
	const char *sep = " ";
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->s[i].name, "atpd_source_durable_seq") == 0) {
			char name[160], l[200];
			label(b->s[i].labels, "source", name, sizeof(name));
			snprintf(l, sizeof(l), "source=\"%s\"", name);
			double seen = get(b, "atpd_source_last_event_seconds", l);
			printf("%s%s %.0f (%s)", sep, name, b->s[i].v, ago((double)time(NULL) - seen, when, sizeof(when)));
			sep = ", ";
		}
	printf("\nchannels:");
	bool any = false;
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->s[i].name, "atpd_channel_subscribers") == 0) {
			char name[160], l[200];
			label(b->s[i].labels, "channel", name, sizeof(name));
			snprintf(l, sizeof(l), "channel=\"%s\"", name);
			printf("%s %s: %.0f subscribers, lag %.0f bytes (%.1f s)", any ? ";" : "", name, b->s[i].v,
			       get(b, "atpd_channel_lag_bytes", l), get(b, "atpd_channel_lag_seconds", l));
			any = true;
		}
	printf("%s\n", any ? "" : " none");
}

/* The same, as one JSON object (numbers, and objects keyed by source and channel). */
static void print_json(const scrape *a, const scrape *b, double dt)
{
	static const char *const plain[] = {
		"atpd_start_time_seconds", "atpd_engine_events_total", "atpd_events_duplicate_total", "atpd_events_gap_total",
		"atpd_negative_on_hand_events_total", "atpd_short_reservation_events_total", "atpd_fsync_seconds_count",
		"atpd_wal_bytes_total", "atpd_wal_segments", "atpd_snapshot_age_seconds", "atpd_positions",
		"atpd_positions_capacity", "atpd_reservation_lines_used", "atpd_reservation_lines_capacity",
		"atpd_reservation_lines_open", "atpd_stream_connections", "atpd_grpc_connections", "atpd_recovered_records",
		"atpd_recovery_seconds", "atpd_deadletter_entries", "atpd_deadletter_capacity", "atpd_deadletters_total",
		"atpd_deadletters_refused_total",
	};
	printf("{\"events_per_second\": %.1f", (get(b, "atpd_engine_events_total", "") - get(a, "atpd_engine_events_total", "")) / dt);
	double p99 = quantile(a, b, "atpd_fsync_seconds", 0.99);
	if (isnan(p99))
		p99 = quantile(NULL, b, "atpd_fsync_seconds", 0.99);
	if (!isnan(p99))
		printf(", \"fsync_p99_seconds\": %g", p99);
	for (size_t k = 0; k < sizeof(plain) / sizeof(plain[0]); k++) {
		double v = get(b, plain[k], "");
		if (!isnan(v))
			printf(", \"%s\": %.17g", plain[k] + 5, v);
	}
	printf(", \"sources\": {");
	bool first = true;
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->s[i].name, "atpd_source_durable_seq") == 0) {
			char name[160];
			char l[200];
			label(b->s[i].labels, "source", name, sizeof(name));
			snprintf(l, sizeof(l), "source=\"%s\"", name);
			double seen = get(b, "atpd_source_last_event_seconds", l);
			printf("%s\"%s\": {\"durable_seq\": %.0f", first ? "" : ", ", name, b->s[i].v);
			if (!isnan(seen))
				printf(", \"last_event_seconds\": %.3f", seen);
			printf("}");
			first = false;
		}
	printf("}, \"channels\": {");
	first = true;
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->s[i].name, "atpd_channel_subscribers") == 0) {
			char name[160], l[200];
			label(b->s[i].labels, "channel", name, sizeof(name));
			snprintf(l, sizeof(l), "channel=\"%s\"", name);
			printf("%s\"%s\": {\"subscribers\": %.0f, \"lag_bytes\": %.0f, \"lag_seconds\": %g}", first ? "" : ", ", name,
			       b->s[i].v, get(b, "atpd_channel_lag_bytes", l), get(b, "atpd_channel_lag_seconds", l));
			first = false;
		}
	printf("}}\n");
}

int cmd_status(int argc, char **argv)
{
	const char *addr = getenv("ATP_METRICS") ? getenv("ATP_METRICS") : "127.0.0.1:9464";
	bool json = false;
	uint64_t interval_ms = 1000;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--metrics") == 0 && i + 1 < argc)
			addr = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--interval-ms") == 0 && i + 1 < argc)
			interval_ms = opt_u64("--interval-ms", argv[++i], 10, 60000);
		else {
			fprintf(stderr, "usage: atpctl status [--metrics HOST:PORT] [--json] [--interval-ms N]\n");
			return 2;
		}
	}
	scrape a = { 0 }, b = { 0 };
	double t0 = now_seconds();
	if (fetch(addr, &a) < 0 || parse(&a) < 0)
		return 1;
	struct timespec nap = { (time_t)(interval_ms / 1000), (long)(interval_ms % 1000) * 1000000 };
	nanosleep(&nap, NULL);
	double dt = now_seconds() - t0;
	if (fetch(addr, &b) < 0 || parse(&b) < 0)
		return 1;
	if (isnan(get(&b, "atpd_engine_events_total", ""))) {
		fprintf(stderr, "atpctl: %s does not look like atpd's metrics\n", addr);
		return 1;
	}
	if (json)
		print_json(&a, &b, dt);
	else
		print_text(addr, &a, &b, dt);
	free(a.text);
	free(a.s);
	free(b.text);
	free(b.s);
	return 0;
}
