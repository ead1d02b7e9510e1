/*
 * The engine's deltas (what the channel stream is built from): every change
 * of ATP comes out once it is durable, in per-shard order of (lsn, index),
 * chained per position (each old_atp is the last new_atp), lapses included;
 * and after a crash, recovery gives the snapshot's state (BASE) and then
 * every delta after it again, with the same places and values.
 */
#define _GNU_SOURCE
#include "../day_fixture.h"
#include "atp/engine.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *day;
static size_t day_len;
static char dir[64];

typedef struct taken {
	atp_engine_delta *d;
	size_t n, cap;
} taken;

static void take(void *ctx, const atp_engine_delta *d, size_t n)
{
	taken *t = ctx;
	if (t->n + n > t->cap) {
		t->cap = (t->n + n) * 2;
		t->d = realloc(t->d, t->cap * sizeof(*d));
		cr_assert_not_null(t->d);
	}
	memcpy(t->d + t->n, d, n * sizeof(*d));
	t->n += n;
}

static void setup(void)
{
	day = fixture_day(300, 5000, 11, &day_len);
	cr_assert_not_null(day);
	snprintf(dir, sizeof(dir), "/tmp/atp-deltas-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
	free(day);
}

TestSuite(engine_deltas, .init = setup, .fini = teardown, .timeout = 120);

static atp_engine *open_engine(uint32_t shards, uint64_t snap_bytes, taken *t)
{
	atp_engine_config cfg = atp_engine_config_default();
	cfg.shards = shards;
	cfg.workers = 2;
	cfg.first_cpu = -1;
	cfg.core = fixture_config();
	cfg.wal.segment_bytes = 256u << 10;
	cfg.wal.buffer_bytes = 64u << 10;
	cfg.snapshot_wal_bytes = snap_bytes;
	cfg.ring_bytes = 256u << 10;
	cfg.on_delta = take;
	cfg.delta_ctx = t;
	char err[600];
	atp_engine *e = atp_engine_open(dir, &cfg, err, sizeof(err));
	cr_assert_not_null(e, "%s", err);
	return e;
}

/* Rows from..to of the day, each at its own time; then everything durable. */
static void submit_rows(atp_engine *e, uint64_t from, uint64_t to)
{
	atp_csv_reader *r = malloc(sizeof(*r));
	char err[ATP_CSV_ERR_MAX];
	atp_event ev;
	uint64_t n = 0;
	cr_assert_eq(atp_csv_open(r, day, day_len, err), 0);
	for (; atp_csv_next(r, &ev, err) > 0 && n < to; n++) {
		if (n < from)
			continue;
		atp_engine_set_time(e, r->occurred_at);
		int st = atp_engine_submit(e, &ev, NULL);
		cr_assert(st == ATP_OK || st == ATP_DUPLICATE, "row %lu: %s", (unsigned long)n, atp_status_name(st));
	}
	free(r);
	cr_assert_eq(atp_engine_sync(e), 0);
}

/* A per-shard mirror of ATP by position id, as the deltas tell it. */
typedef struct mirror {
	int64_t atp[ATP_ENGINE_SHARDS_MAX][4096];
	uint64_t version[ATP_ENGINE_SHARDS_MAX][4096];
	uint64_t lsn[ATP_ENGINE_SHARDS_MAX];
	uint32_t index[ATP_ENGINE_SHARDS_MAX];
	size_t changes;
} mirror;

static void mirror_apply(mirror *m, const atp_engine_delta *d)
{
	cr_assert_lt(d->pos, 4096);
	if (d->kind == ATP_DELTA_BASE) {
		m->atp[d->shard][d->pos] = d->new_atp;
		m->version[d->shard][d->pos] = d->version;
		m->lsn[d->shard] = d->lsn;
		m->index[d->shard] = UINT32_MAX;
		return;
	}
	bool later = d->lsn > m->lsn[d->shard] || (d->lsn == m->lsn[d->shard] && d->index == m->index[d->shard] + 1);
	cr_assert(later, "shard %u: delta (%lu, %u) after (%lu, %u)", d->shard, (unsigned long)d->lsn, d->index,
		  (unsigned long)m->lsn[d->shard], m->index[d->shard]);
	cr_assert(d->lsn > m->lsn[d->shard] ? d->index == 0 : true, "a record's deltas are numbered from 0");
	cr_assert_eq(d->old_atp, m->atp[d->shard][d->pos], "%s/%s: chained", d->sku, d->location);
	cr_assert_neq(d->old_atp, d->new_atp, "a delta is a change");
	cr_assert_gt(d->version, m->version[d->shard][d->pos], "versions only increase");
	cr_assert_eq(strlen(d->sku), d->sku_len);
	cr_assert_eq(strlen(d->location), d->loc_len);
	m->atp[d->shard][d->pos] = d->new_atp;
	m->version[d->shard][d->pos] = d->version;
	m->lsn[d->shard] = d->lsn;
	m->index[d->shard] = d->index;
	m->changes++;
}

/* The mirror holds every position's ATP as the engine's tables do. */
static void assert_mirror_is_table(const mirror *m, const atp_engine *e)
{
	for (uint32_t s = 0; s < atp_engine_shards(e); s++)
		for (uint32_t id = 0; id < atp_engine_positions(e, s); id++) {
			atp_engine_position p;
			atp_engine_read_id(e, s, id, &p);
			int64_t a = p.v.on_hand - p.v.held - p.v.reserved - p.v.safety_stock;
			cr_assert_eq(m->atp[s][id], a > 0 ? a : 0, "%s/%s", p.sku.ptr, p.location.ptr);
		}
}

Test(engine_deltas, every_change_comes_out_durable_ordered_and_chained)
{
	taken t = { 0 };
	atp_engine *e = open_engine(4, 0, &t);
	cr_assert_eq(t.n, 0, "a new directory has nothing to recover");
	submit_rows(e, 0, UINT64_MAX);
	mirror *m = calloc(1, sizeof(*m));
	for (size_t i = 0; i < t.n; i++)
		mirror_apply(m, &t.d[i]);
	assert_mirror_is_table(m, e);
	uint64_t counted = 0, lapsed = 0;
	for (uint32_t s = 0; s < 4; s++) {
		counted += atp_core_stats_get(atp_engine_core(e, s))->deltas;
		lapsed += atp_core_stats_get(atp_engine_core(e, s))->lines_expired;
	}
	cr_assert_eq(m->changes, counted, "as many deltas as the cores counted");
	cr_assert_gt(lapsed, 0, "the day lets reservations lapse, whose deltas are among them");
	atp_engine_abandon(e);
	free(m);
	free(t.d);
}

/* The deltas of shard s with a place after (lsn, index), in order. */
static size_t after(const taken *t, uint32_t s, uint64_t lsn, atp_engine_delta *out)
{
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++)
		if (t->d[i].shard == s && t->d[i].kind == ATP_DELTA_CHANGE && t->d[i].lsn > lsn)
			out[n++] = t->d[i];
	return n;
}

/* The keys a delta names are its position's. */
static void assert_keys(const taken *t, const atp_engine *e)
{
	for (size_t i = 0; i < t->n; i++) {
		atp_str sku, loc;
		atp_engine_key(e, t->d[i].shard, t->d[i].pos, &sku, &loc);
		cr_assert(strcmp(sku.ptr, t->d[i].sku) == 0 && strcmp(loc.ptr, t->d[i].location) == 0);
	}
}

/* (The first engine's keys are gone with it: its deltas are compared by position id, which recovery keeps.) */
static void crash_and_regenerate(uint64_t snap_bytes)
{
	taken first = { 0 }, again = { 0 };
	atp_engine *e = open_engine(3, snap_bytes, &first);
	submit_rows(e, 0, 11000);
	atp_engine_abandon(e);  /* a crash: no final snapshot */
	e = open_engine(3, snap_bytes, &again);
	mirror *m = calloc(1, sizeof(*m));
	for (size_t i = 0; i < again.n; i++)
		mirror_apply(m, &again.d[i]);
	assert_mirror_is_table(m, e);
	assert_keys(&again, e);
	atp_engine_delta *x = malloc(first.n * sizeof(*x)), *y = malloc((again.n + 1) * sizeof(*y));
	for (uint32_t s = 0; s < 3; s++) {
		uint64_t base = 0;
		for (size_t i = 0; i < again.n; i++)
			if (again.d[i].shard == s && again.d[i].kind == ATP_DELTA_BASE)
				base = again.d[i].lsn;
		size_t nx = after(&first, s, base, x), ny = after(&again, s, base, y);
		cr_assert_eq(nx, ny, "shard %u: every delta after the snapshot (lsn %lu) again", s, (unsigned long)base);
		for (size_t i = 0; i < nx; i++)
			cr_assert(x[i].lsn == y[i].lsn && x[i].index == y[i].index && x[i].pos == y[i].pos &&
					  x[i].old_atp == y[i].old_atp && x[i].new_atp == y[i].new_atp &&
					  x[i].version == y[i].version,
				  "shard %u delta %zu: the same place and values: (%lu,%u) %s/%s %ld->%ld v%lu against "
				  "(%lu,%u) %s/%s %ld->%ld v%lu", s, i, (unsigned long)x[i].lsn, x[i].index, "", "", (long)x[i].old_atp, (long)x[i].new_atp, (unsigned long)x[i].version,
				  (unsigned long)y[i].lsn, y[i].index, y[i].sku, y[i].location, (long)y[i].old_atp,
				  (long)y[i].new_atp, (unsigned long)y[i].version);
	}
	/* Going on after the crash continues the chain. */
	submit_rows(e, 0, UINT64_MAX);
	mirror *m2 = calloc(1, sizeof(*m2));
	for (size_t i = 0; i < again.n; i++)
		mirror_apply(m2, &again.d[i]);
	assert_mirror_is_table(m2, e);
	atp_engine_abandon(e);
	free(x);
	free(y);
	free(m);
	free(m2);
	free(first.d);
	free(again.d);
}

Test(engine_deltas, a_crash_without_snapshot_regenerates_every_delta_from_the_wal)
{
	crash_and_regenerate(0);
}

Test(engine_deltas, after_snapshots_the_base_is_the_snapshot_and_the_rest_regenerates)
{
	crash_and_regenerate(48u << 10);
}

/* Reservations lapsing on ticks (the wall clock's way) give deltas too, and those regenerate. */
Test(engine_deltas, lapses_on_ticks_are_deltas_of_the_tick)
{
	taken first = { 0 }, again = { 0 };
	atp_engine *e = open_engine(2, 0, &first);
	atp_event rc = ev_of(ATP_EV_RECEIPT, 1, "S1", "L", 10);
	atp_event rs = ev_ref(ATP_EV_RESERVE, 2, "S1", "L", 4, "R");
	rs.expires_at = 500;
	atp_engine_set_time(e, 100);
	cr_assert_eq(atp_engine_submit(e, &rc, NULL), ATP_OK);
	cr_assert_eq(atp_engine_submit(e, &rs, NULL), ATP_OK);
	cr_assert_eq(atp_engine_sync(e), 0);
	size_t before = first.n;
	atp_engine_set_time(e, 600);
	cr_assert_eq(atp_engine_sync(e), 0);  /* a tick to each shard */
	cr_assert_eq(first.n, before + 1, "the lapse is one delta");
	const atp_engine_delta *d = &first.d[before];
	cr_assert(d->old_atp == 6 && d->new_atp == 10 && d->index == 0);
	atp_engine_abandon(e);
	e = open_engine(2, 0, &again);
	cr_assert_eq(again.n, first.n);
	cr_assert(again.d[again.n - 1].lsn == d->lsn && again.d[again.n - 1].new_atp == 10);
	atp_engine_abandon(e);
	free(first.d);
	free(again.d);
}
