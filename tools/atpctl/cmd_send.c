/*
 * cmd_send.c — atpctl send --tcp HOST:PORT FILE: stream an event file (CSV,
 * or binary from convert) to a running atpd over the TCP event stream.
 *
 * The file is validated whole and encoded into EventBatch frames of
 * --batch events per source first; then every source streams over its own
 * connection (stream_client.h): reconnecting and resuming from the
 * Welcome after any loss, exiting 0 only once every event is acknowledged
 * as durable. Prints events/s and the ack latency percentiles.
 *
 * The file's order holds across its sources (the default): where the file
 * goes from one source to another, the first frame of the new run waits
 * until the run before it is durable, so atpd applies the events in the
 * file's order and ends with `atpctl import`'s table (a PICK never
 * overtakes the RESERVE of another source it consumes). A file that
 * switches sources often is sent at a round trip per switch. --concurrent
 * sends every source as fast as it goes, in no order across sources: for
 * load, and for files whose sources touch different SKUs.
 */
#include "import.h"

#include "atp/wire_event.h"
#include "stream_client.h"
#include "udp_client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SOURCES 256

typedef struct batcher {
	stream_source *sources;
	uint32_t n_sources;
	atp_event *ev;           /* per source, the batch being collected (strings copied to text) */
	atp_wire_event_time *t;
	uint32_t *n;             /* events collected per source */
	uint64_t *cover;
	char *text;              /* per source: the strings of its collected events */
	size_t *text_len;
	uint32_t batch;
	uint8_t *mem;            /* the builder's */
	atp_fb_ref *refs;
	bool ordered;
	uint32_t last;           /* ordered: the source of the file's previous event (UINT32_MAX: none yet) */
	uint64_t *last_seq;      /* per source, the highest seq so far */
	uint32_t *after_src;     /* per source: what the first frame of its batch waits for (UINT32_MAX: nothing) */
	uint64_t *after_seq;
} batcher;

#define TEXT_PER_EVENT (ATP_SKU_MAX + ATP_LOC_MAX * 2 + ATP_REF_MAX + ATP_REASON_MAX + ATP_SOURCE_MAX + 8)
#define MEM_BYTES (4u << 20)

static uint32_t source_index(batcher *b, atp_str name)
{
	for (uint32_t i = 0; i < b->n_sources; i++)
		if (strlen(b->sources[i].name) == name.len && memcmp(b->sources[i].name, name.ptr, name.len) == 0)
			return i;
	if (b->n_sources == MAX_SOURCES)
		return UINT32_MAX;
	stream_source *s = &b->sources[b->n_sources];
	memcpy(s->name, name.ptr, name.len);
	s->name[name.len] = 0;
	return b->n_sources++;
}

static atp_str keep_str(batcher *b, uint32_t src, atp_str s)
{
	char *text = b->text + (size_t)src * b->batch * TEXT_PER_EVENT;
	char *p = text + b->text_len[src];
	memcpy(p, s.ptr, s.len);
	b->text_len[src] += s.len;
	return atp_str_of(p, s.len);
}

static int flush(batcher *b, uint32_t src)
{
	uint32_t n = b->n[src];
	if (!n)
		return 0;
	atp_fb_builder fb;
	size_t len;
	atp_fb_builder_init(&fb, b->mem, MEM_BYTES);
	atp_event *ev = b->ev + (size_t)src * b->batch;
	atp_wire_event_time *t = b->t + (size_t)src * b->batch;
	for (uint32_t i = 0; i < n; i++) {
		atp_event e = ev[i];
		e.source = (atp_str){ 0 };  /* the connection's Hello names it */
		b->refs[i] = atp_wire_build_event(&fb, &e, t[i]);
	}
	const uint8_t *p = atp_fb_finish(&fb, atp_wire_build_event_batch(&fb, b->refs, n), NULL, &len);
	if (!p || stream_source_add_after(&b->sources[src], p, (uint32_t)len, n, b->cover[src], b->after_src[src],
					  b->after_seq[src]) < 0)
		return -1;
	b->after_src[src] = UINT32_MAX;
	b->n[src] = 0;
	b->cover[src] = 0;
	b->text_len[src] = 0;
	return 0;
}

/* Every event of the file into frames, per source. -1 with a message. */
static int load(const input *in, batcher *b)
{
	event_iter it;
	atp_event ev;
	int rc;
	if (iter_open(&it, in, true) < 0)
		return -1;
	while ((rc = iter_next(&it, &ev)) > 0) {
		uint32_t s = source_index(b, ev.source);
		if (s == UINT32_MAX) {
			fprintf(stderr, "%s: more than %u sources\n", in->path, MAX_SOURCES);
			rc = -1;
			break;
		}
		if (b->ordered && b->last != UINT32_MAX && b->last != s) {
			/* A new run: the one before it goes out as a frame, and this one's first frame waits for it. */
			if (flush(b, b->last) < 0) {
				rc = -1;
				break;
			}
			b->after_src[s] = b->last;
			b->after_seq[s] = b->last_seq[b->last];
		}
		b->last = s;
		if (ev.seq > b->last_seq[s])
			b->last_seq[s] = ev.seq;
		atp_event *e = &b->ev[(size_t)s * b->batch + b->n[s]];
		*e = ev;
		e->sku = keep_str(b, s, ev.sku);
		e->location = keep_str(b, s, ev.location);
		e->ref = keep_str(b, s, ev.ref);
		e->to_location = keep_str(b, s, ev.to_location);
		e->reason = keep_str(b, s, ev.reason);
		b->t[(size_t)s * b->batch + b->n[s]] =
			(atp_wire_event_time){ it.occurred_at, ev.expires_at ? ev.expires_at - it.occurred_at : 0 };
		if (ev.seq > b->cover[s])
			b->cover[s] = ev.seq;
		if (++b->n[s] == b->batch && flush(b, s) < 0) {
			rc = -1;
			break;
		}
	}
	if (rc < 0 && it.err[0])
		fprintf(stderr, "%s: %s\n", iter_where(&it), it.err);
	for (uint32_t s = 0; rc == 0 && s < b->n_sources; s++)
		if (flush(b, s) < 0)
			rc = -1;
	iter_close(&it);
	return rc;
}

int cmd_send(int argc, char **argv)
{
	const char *target = NULL, *path = NULL;
	stream_options o = { .window = 1u << 20, .timeout_s = 60 };
	udp_options uo = { .window = 32, .timeout_ms = 50, .give_up_s = 60, .max_datagram = 1472, .seed = 1 };
	bool udp = false;
	uint32_t batch = 0;
	bool ordered = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if ((strcmp(a, "--tcp") == 0 || strcmp(a, "--udp") == 0) && v)
			udp = strcmp(a, "--udp") == 0, target = argv[++i];
		else if (strcmp(a, "--drop-percent") == 0)
			uo.drop_pct = (uint32_t)opt_u64(a, argv[++i < argc ? i : 0], 0, 90);
		else if (strcmp(a, "--reorder-percent") == 0)
			uo.reorder_pct = (uint32_t)opt_u64(a, argv[++i < argc ? i : 0], 0, 90);
		else if (strcmp(a, "--window") == 0)
			uo.window = (uint32_t)opt_u64(a, argv[++i < argc ? i : 0], 1, 65536);
		else if (strcmp(a, "--max-datagram") == 0)
			uo.max_datagram = (uint32_t)opt_u64(a, argv[++i < argc ? i : 0], 64, 65000);
		else if (strcmp(a, "--batch") == 0)
			batch = (uint32_t)opt_u64(a, argv[++i < argc ? i : 0], 1, 4096);
		else if (strcmp(a, "--window-kb") == 0)
			o.window = (uint32_t)opt_u64(a, argv[++i < argc ? i : 0], 4, 1u << 20) << 10;
		else if (strcmp(a, "--timeout") == 0)
			uo.give_up_s = o.timeout_s = (double)opt_u64(a, argv[++i < argc ? i : 0], 1, 86400);
		else if (strcmp(a, "--progress") == 0)
			o.progress = true;
		else if (strcmp(a, "--concurrent") == 0)
			ordered = false;
		else if (a[0] != '-' && !path)
			path = a;
		else
			target = NULL, path = NULL, i = argc;
	}
	char host[256];
	const char *colon = target ? strrchr(target, ':') : NULL;
	if (!path || !colon || colon == target || (size_t)(colon - target) >= sizeof(host)) {
		fprintf(stderr, "usage: atpctl send --tcp HOST:PORT FILE [--batch N] [--window-kb N] [--timeout S] "
				"[--progress] [--concurrent]\n"
				"       atpctl send --udp HOST:PORT FILE [--batch N] [--window FRAMES] [--max-datagram BYTES]\n"
				"              [--drop-percent P] [--reorder-percent P] [--timeout S] [--concurrent]\n");
		return 2;
	}
	if (!batch)
		batch = udp ? 8 : 256;  /* 8 events of a simulated day fit a 1472-byte datagram */
	snprintf(host, sizeof(host), "%.*s", (int)(colon - target), target);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	o.host = uo.host = host;
	o.port = uo.port = colon + 1;

	input in = { .path = path };
	batcher b = { .batch = batch, .ordered = ordered, .last = UINT32_MAX };
	b.sources = calloc(MAX_SOURCES, sizeof(stream_source));
	b.ev = malloc((size_t)MAX_SOURCES * batch * sizeof(atp_event));
	b.t = malloc((size_t)MAX_SOURCES * batch * sizeof(atp_wire_event_time));
	b.n = calloc(MAX_SOURCES, sizeof(uint32_t));
	b.cover = calloc(MAX_SOURCES, sizeof(uint64_t));
	b.text_len = calloc(MAX_SOURCES, sizeof(size_t));
	b.text = malloc((size_t)MAX_SOURCES * batch * TEXT_PER_EVENT);
	b.mem = aligned_alloc(8, MEM_BYTES);
	b.refs = malloc(batch * sizeof(atp_fb_ref));
	b.last_seq = calloc(MAX_SOURCES, sizeof(uint64_t));
	b.after_src = malloc(MAX_SOURCES * sizeof(uint32_t));
	b.after_seq = calloc(MAX_SOURCES, sizeof(uint64_t));
	for (uint32_t i = 0; b.after_src && i < MAX_SOURCES; i++)
		b.after_src[i] = UINT32_MAX;
	int rc = 1;
	if (!b.sources || !b.ev || !b.t || !b.n || !b.cover || !b.text_len || !b.text || !b.mem || !b.refs ||
	    !b.last_seq || !b.after_src || !b.after_seq) {
		fprintf(stderr, "atpctl send: out of memory\n");
		goto out;
	}
	if (map_file(&in) < 0 || load(&in, &b) < 0)
		goto out;
	uint64_t events = 0, frames = 0;
	for (uint32_t i = 0; i < b.n_sources; i++) {
		frames += b.sources[i].n_frames;
		for (uint32_t f = 0; f < b.sources[i].n_frames; f++)
			events += b.sources[i].frames[f].events;
	}
	fprintf(stderr, "send: %" PRIu64 " events of %u sources in %" PRIu64 " frames to %s%s\n", events, b.n_sources,
		frames, target, b.n_sources > 1 ? (ordered ? ", in the file's order" : ", concurrently") : "");
	stream_result r;
	if ((udp ? udp_send(b.sources, b.n_sources, &uo, &r) : stream_send(b.sources, b.n_sources, &o, &r)) < 0)
		goto out;
	printf("sent: %" PRIu64 " events in %" PRIu64 " frames acknowledged in %.3f s (%.2f M events/s); "
	       "%" PRIu64 " refused, %" PRIu64 " %s\n",
	       r.events, r.frames, r.seconds, r.seconds > 0 ? r.events / r.seconds / 1e6 : 0.0, r.refused, r.reconnects,
	       udp ? "windows sent again" : "reconnects");
	printf("ack latency per frame: p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n",
	       atp_hist_quantile(&r.latency, 0.5) / 1e6, atp_hist_quantile(&r.latency, 0.9) / 1e6,
	       atp_hist_quantile(&r.latency, 0.99) / 1e6, atp_hist_quantile(&r.latency, 0.999) / 1e6,
	       r.latency.max / 1e6);
	printf("stream: from %.6f to %.6f (wall clock, s)\n", r.started, r.finished);
	rc = 0;
out:
	for (uint32_t i = 0; b.sources && i < b.n_sources; i++)
		stream_source_free(&b.sources[i]);
	free(b.sources);
	free(b.ev);
	free(b.t);
	free(b.n);
	free(b.cover);
	free(b.text_len);
	free(b.text);
	free(b.mem);
	free(b.refs);
	free(b.last_seq);
	free(b.after_src);
	free(b.after_seq);
	return rc;
}
