/*
 * read_threads.c — lock-free reads racing the shard worker: a reader thread
 * samples a few hot positions through atp_engine_read() while the router
 * streams reserves, picks against them, receipts, holds and unholds at
 * them (events that change several buckets at once), keeping every read
 * that differs from the previous one of its position. Afterwards the same
 * events replayed on a plain core give each position's buckets at every
 * version; every sample must equal the buckets of its version exactly, so
 * a torn read (buckets of two versions mixed) fails. Plain C for TSan.
 * Prints "N passed, N failed".
 */
#define _GNU_SOURCE
#include "../../tools/lib/prng.h"
#include "atp/engine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SKUS = 3, EVENTS = 60000, MAX_SAMPLES = 200000, MAX_VERSION = EVENTS + 16 };
static const char *const skus[SKUS] = { "HOT-A", "HOT-B", "HOT-C" };

typedef struct sample {
	int sku;
	atp_position_view v;
} sample;

static atp_engine *engine;
static atomic_bool done, started;
static sample *samples;
static size_t n_samples;

static atp_str str(const char *s)
{
	return atp_str_of(s, strlen(s));
}

/* Reads until the stream is done, keeping every read that differs from the last one of its position. */
static void *reader(void *arg)
{
	(void)arg;
	atp_position_view last[SKUS] = { { 0 } };
	atomic_store(&started, true);
	for (unsigned i = 0; !atomic_load(&done) && n_samples < MAX_SAMPLES; i++) {
		sample *s = &samples[n_samples];
		s->sku = (int)(i % SKUS);
		if (atp_engine_read(engine, str(skus[s->sku]), str("DC1"), &s->v) &&
		    memcmp(&s->v, &last[s->sku], sizeof(s->v)) != 0) {
			last[s->sku] = s->v;
			n_samples++;
		}
	}
	return NULL;
}

/* The i-th event, the same for the engine and the reference. */
static atp_event event_of(uint64_t i, char *ref)
{
	int sku = (int)(i % SKUS);
	uint64_t k = i / SKUS;
	atp_event ev = { .event_id = i + 1, .seq = i + 1, .source = str("wms"), .sku = str(skus[sku]),
			 .location = str("DC1") };
	snprintf(ref, 32, "R%llu", (unsigned long long)(k / 3));
	switch (k % 6) {
	case 0: ev.type = ATP_EV_RECEIPT; ev.qty = 10; break;
	case 1: ev.type = ATP_EV_RESERVE; ev.qty = 6; ev.ref = str(ref); break;
	case 2: ev.type = ATP_EV_HOLD; ev.qty = 2; break;
	case 3: ev.type = ATP_EV_PICK; ev.qty = 5; ev.ref = str(ref); break; /* on_hand and reserved together */
	case 4: ev.type = ATP_EV_UNHOLD; ev.qty = 1; break;
	default: ev.type = ATP_EV_RELEASE; ev.ref = str(ref); break;
	}
	if (k % 6 == 3)
		snprintf(ref, 32, "R%llu", (unsigned long long)((k - 2) / 3));
	if (k % 6 == 5)
		snprintf(ref, 32, "R%llu", (unsigned long long)((k - 4) / 3));
	return ev;
}

int main(void)
{
	int passed = 0, failed = 0;
	char dir[] = "/tmp/atp-read-threads-XXXXXX", err[600], ref[32];
	if (!mkdtemp(dir))
		return 1;
	atp_engine_config cfg = atp_engine_config_default();
	cfg.shards = 2;
	cfg.first_cpu = cfg.router_cpu = -1;
	cfg.core.max_positions = 64;
	cfg.core.max_lines = 1u << 16;
	cfg.core.max_sources = 4;
	cfg.wal.segment_bytes = 4u << 20;
	cfg.wal.buffer_bytes = 256u << 10;
	cfg.ring_bytes = 64u << 10;
	engine = atp_engine_open(dir, &cfg, err, sizeof(err));
	samples = malloc(MAX_SAMPLES * sizeof(*samples));
	if (!engine || !samples) {
		fprintf(stderr, "open: %s\n", err);
		return 1;
	}
	pthread_t t;
	pthread_create(&t, NULL, reader, NULL);
	while (!atomic_load(&started))
		;
	/* In groups of 500, each made durable before the next: the run lasts, the reader keeps up. */
	for (uint64_t i = 0; i < EVENTS; i++) {
		atp_event ev = event_of(i, ref);
		if (atp_engine_submit(engine, &ev, NULL) != ATP_OK)
			failed++;
		if (i % 500 == 499 && atp_engine_sync(engine) != 0)
			failed++;
	}
	if (atp_engine_sync(engine) != 0)
		failed++;
	atomic_store(&done, true);
	pthread_join(t, NULL);

	/* The reference: every position's buckets at every version. */
	atp_core_config cc = cfg.core;
	cc.sparse_seq = false;
	atp_core *c = atp_core_create(&cc);
	atp_position_view(*at)[MAX_VERSION] = calloc(SKUS, sizeof(*at));
	for (uint64_t i = 0; i < EVENTS; i++) {
		atp_event ev = event_of(i, ref);
		atp_result r;
		atp_core_apply(c, &ev, &r);
		int sku = (int)(i % SKUS);
		atp_position_view v;
		atp_core_read(c, ev.sku, ev.location, &v);
		if (v.version < MAX_VERSION)
			at[sku][v.version] = v;
	}
	size_t torn = 0, moved = n_samples;
	for (size_t i = 0; i < n_samples; i++) {
		const atp_position_view *s = &samples[i].v, *r = &at[samples[i].sku][s->version];
		torn += s->version >= MAX_VERSION || s->on_hand != r->on_hand || s->held != r->held ||
			s->reserved != r->reserved || s->safety_stock != r->safety_stock;
	}
	atp_position_view last;
	bool found = atp_engine_read(engine, str("HOT-A"), str("DC1"), &last);
	const atp_position *want = atp_core_find(c, str("HOT-A"), str("DC1"));
	if (moved > 50)
		passed++;
	else
		failed++, fprintf(stderr, "FAIL: only %zu changes seen\n", moved);
	if (torn == 0)
		passed++;
	else
		failed++, fprintf(stderr, "FAIL: %zu of %zu samples match no version of their position\n", torn, n_samples);
	if (found && last.version == want->version && last.on_hand == want->on_hand)
		passed++;
	else
		failed++, fprintf(stderr, "FAIL: the final read differs from the reference\n");
	if (!atp_engine_read(engine, str("NOPE"), str("DC1"), &last))
		passed++;
	else
		failed++, fprintf(stderr, "FAIL: a position that does not exist was read\n");
	atp_engine_close(engine);
	atp_core_destroy(c);
	free(at);
	free(samples);
	snprintf(err, sizeof(err), "rm -rf %s", dir);
	if (system(err) != 0)
		failed++;
	printf("%zu changes read while the worker wrote; %d passed, %d failed\n", n_samples, passed, failed);
	return failed != 0;
}
