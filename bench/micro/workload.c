/* workload.c — the benchmark's warehouse day (see workload.h). */
#include "workload.h"

#include "../../tools/lib/prng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF_LEN 16 /* "P0000-000000000": pass, then the event index of the RESERVE */

/*
 * An event's key bytes, one block per event in event order: as the shard
 * worker's events point into the frames of its ring, never into a table
 * shared by every event of a SKU (which a Zipf day would read at random).
 */
typedef struct keys {
	char sku[16];
	char loc[8];
	char ref[REF_LEN];
	char source[8];
	uint32_t reserve;  /* PICK, RELEASE: the index of the RESERVE whose line they name */
	uint32_t pad;
} keys;

struct workload {
	uint32_t skus, locations;
	size_t n;
	atp_event *ev;
	keys *k;            /* by event */
	char (*sku)[16];    /* the names, copied into each event's keys */
	char (*loc)[16];
	uint32_t pass;
};

/* Event i's ref: the RESERVE's own index, or the index of the RESERVE it names. */
static void write_ref(workload *w, size_t i, size_t reserve)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "P%04u-%09zu", w->pass % 10000, reserve);
	memcpy(w->k[i].ref, buf, REF_LEN - 1);
}

/* Event i (a PICK or RELEASE) names the line RESERVE r made: its keys, qty and ref, in i's own key bytes. */
static void follow_reservation(workload *w, size_t i, size_t r, uint8_t type)
{
	atp_event *e = &w->ev[i];
	keys *kb = &w->k[i];
	*kb = w->k[r];
	*e = w->ev[r];
	e->sku.ptr = kb->sku;
	e->location.ptr = kb->loc;
	e->ref.ptr = kb->ref;
	e->event_id = i + 1;
	e->type = type;
	e->expires_at = 0;
}

workload *workload_create(uint32_t skus, uint32_t locations, size_t n, uint64_t seed)
{
	workload *w = calloc(1, sizeof(*w));
	atp_prng g;
	atp_zipf z;
	atp_prng_seed(&g, seed);
	w->skus = skus;
	w->locations = locations;
	w->n = n;
	w->ev = calloc(n, sizeof(atp_event));
	w->sku = calloc(skus, sizeof(*w->sku));
	w->loc = calloc(locations, sizeof(*w->loc));
	w->k = calloc(n, sizeof(*w->k));
	if (!w->ev || !w->sku || !w->loc || !w->k || atp_zipf_init(&z, skus, 1.0) < 0)
		abort();
	for (uint32_t i = 0; i < skus; i++)
		snprintf(w->sku[i], sizeof(w->sku[i]), "SKU%07u", i % 10000000);
	for (uint32_t i = 0; i < locations; i++)
		snprintf(w->loc[i], sizeof(w->loc[i]), "LOC%02u", i % 100);

	/* Reservations waiting for their pick: a window of recent RESERVE indexes. */
	enum { WINDOW = 4096 };
	size_t open[WINDOW];
	size_t n_open = 0;
	uint64_t seq[2] = { 0, 0 };
	for (size_t i = 0; i < n; i++) {
		atp_event *e = &w->ev[i];
		uint32_t s = atp_zipf_sample(&z, &g), l = (uint32_t)atp_prng_below(&g, locations);
		uint64_t u = atp_prng_below(&g, 100);
		keys *kb = &w->k[i];
		e->event_id = i + 1;
		memcpy(kb->sku, w->sku[s], sizeof(kb->sku));
		memcpy(kb->loc, w->loc[l], sizeof(kb->loc));
		e->sku = atp_str_of(kb->sku, strlen(kb->sku));
		e->location = atp_str_of(kb->loc, strlen(kb->loc));
		e->qty = atp_prng_range(&g, 1, 3);
		if (u < 45 || (u < 90 && n_open == 0)) {
			e->type = ATP_EV_RESERVE;
			e->expires_at = i + 600000; /* the event is at time i of pass 0 */
			kb->reserve = (uint32_t)i;
			write_ref(w, i, i);
			e->ref = atp_str_of(kb->ref, REF_LEN - 1);
			if (n_open < WINDOW)
				open[n_open++] = i;
			else
				open[atp_prng_below(&g, WINDOW)] = i;
		} else if (u < 90) {
			/* Pick a reservation from the window, a few thousand events later. */
			size_t k = atp_prng_below(&g, n_open), r = open[k];
			open[k] = open[--n_open];
			follow_reservation(w, i, r, ATP_EV_PICK);
		} else if (u < 95) {
			e->type = ATP_EV_RECEIPT;
			e->qty = atp_prng_range(&g, 20, 200);
		} else if (u < 96) {
			e->type = ATP_EV_ADJUST;
			e->qty = -e->qty;
			e->reason = atp_str_of("DAMAGE", 6);
		} else if (u < 97) {
			e->type = ATP_EV_COUNT;
			e->qty = atp_prng_range(&g, 50, 150);
		} else if (u < 98) {
			e->type = ATP_EV_HOLD;
		} else if (u < 99) {
			e->type = ATP_EV_UNHOLD;
		} else if (n_open > 0) {
			size_t k = atp_prng_below(&g, n_open), r = open[k];
			open[k] = open[--n_open];
			follow_reservation(w, i, r, ATP_EV_RELEASE);
		} else {
			e->type = ATP_EV_RECEIPT;
		}
		int src = e->type == ATP_EV_RESERVE || e->type == ATP_EV_RELEASE;
		memcpy(kb->source, src ? "oms" : "wms", 4);
		e->source = atp_str_of(kb->source, 3);
		e->seq = ++seq[src];
	}
	atp_zipf_free(&z);
	return w;
}

void workload_destroy(workload *w)
{
	free(w->ev);
	free(w->sku);
	free(w->loc);
	free(w->k);
	free(w);
}

atp_core *workload_core(const workload *w)
{
	atp_core_config cfg = atp_core_config_default();
	cfg.max_positions = w->skus * w->locations;
	cfg.max_lines = 1u << 18; /* the steady state holds about 60,000 lines */
	cfg.max_sources = 4;
	cfg.line_retention = 100000;
	atp_core *c = atp_core_create(&cfg);
	atp_result r;
	uint64_t seq = 0;
	for (uint32_t s = 0; s < w->skus; s++) {
		for (uint32_t l = 0; l < w->locations; l++) {
			atp_event ev = { .event_id = ++seq, .seq = seq, .type = ATP_EV_RECEIPT, .qty = 500,
					 .source = atp_str_of("init", 4),
					 .sku = atp_str_of(w->sku[s], strlen(w->sku[s])),
					 .location = atp_str_of(w->loc[l], strlen(w->loc[l])) };
			if (atp_core_apply(c, &ev, &r) != ATP_OK)
				abort();
		}
	}
	return c;
}

const atp_event *workload_events(const workload *w)
{
	return w->ev;
}

size_t workload_size(const workload *w)
{
	return w->n;
}

uint64_t workload_time(const workload *w, size_t i)
{
	return (uint64_t)w->pass * w->n + i;
}

void workload_set_pass(workload *w, uint32_t pass)
{
	int64_t per_source[2] = { 0, 0 }, step = (int64_t)pass - (int64_t)w->pass;
	for (size_t i = 0; i < w->n; i++)
		per_source[w->ev[i].source.ptr[0] == 'o']++;
	w->pass = pass;
	for (size_t i = 0; i < w->n; i++) {
		atp_event *e = &w->ev[i];
		e->seq += (uint64_t)(step * per_source[e->source.ptr[0] == 'o']);
		if (e->ref.len)
			write_ref(w, i, w->k[i].reserve);
		if (e->type == ATP_EV_RESERVE)
			e->expires_at += (uint64_t)(step * (int64_t)w->n);
	}
}
