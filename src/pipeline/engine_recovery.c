/* engine_recovery.c — each shard's newest good snapshot and the WAL after it, replayed into its core (see engine_router.h). */
#define _GNU_SOURCE
#include "engine_router.h"
#include "atp/log.h"
#include "atp/snapshot.h"
#include "atp/status.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * Replay gathers runs of events (their bytes stay in the segment's mapping
 * until the WAL says the segment ends) and applies each run through the
 * core's batch pipeline, every event at its own time, as the worker did; a
 * tick or the end of a segment ends a run.
 */
#define REPLAY_RUN 256

typedef struct replay_ctx {
	atp_engine *e;
	shard *s;
	uint64_t records;
	uint64_t last_lsn;
	uint32_t n;
	int failed;
	atp_event ev[REPLAY_RUN];
	uint64_t now[REPLAY_RUN];
	uint64_t lsn[REPLAY_RUN];
	/* With on_delta: what the run's expiries gave, by event (a WAL of before ticks carried them), and the output. */
	struct { uint32_t index; atp_delta d; } *lapsed;
	size_t n_lapsed, lapsed_cap;
	uint32_t n_out;
	atp_engine_delta out[DELTA_CHUNK];
} replay_ctx;

static void replay_emit(replay_ctx *rc, const atp_delta *d, uint64_t lsn, uint32_t index)
{
	rc->out[rc->n_out++] = pipe_engine_delta(d, rc->s->index, rc->e->n_shards, lsn, index);
	if (rc->n_out == DELTA_CHUNK) {
		rc->e->cfg.on_delta(rc->e->cfg.delta_ctx, rc->out, rc->n_out);
		rc->n_out = 0;
	}
}

static void replay_deltas_done(replay_ctx *rc)
{
	if (rc->n_out)
		rc->e->cfg.on_delta(rc->e->cfg.delta_ctx, rc->out, rc->n_out);
	rc->n_out = 0;
}

/* The expiry sink of a replayed run (recovery may allocate: it is not the hot path). */
static void replay_lapsed(void *ctx, size_t index, const atp_delta *d, size_t n)
{
	replay_ctx *rc = ctx;
	if (rc->n_lapsed + n > rc->lapsed_cap) {
		size_t cap = rc->lapsed_cap ? rc->lapsed_cap * 2 : 1024;
		while (cap < rc->n_lapsed + n)
			cap *= 2;
		void *p = realloc(rc->lapsed, cap * sizeof(*rc->lapsed));
		if (!p) {
			rc->failed = -1;
			return;
		}
		rc->lapsed = p;
		rc->lapsed_cap = cap;
	}
	for (size_t i = 0; i < n; i++) {
		rc->lapsed[rc->n_lapsed].index = (uint32_t)index;
		rc->lapsed[rc->n_lapsed++].d = d[i];
	}
}

/*
 * A WAL record whose CRC holds is an event the router validated before it
 * was first applied: replay applies it as the worker did, validated. With
 * on_delta, each record's deltas follow (what lapsed before it, then its
 * own), numbered as the worker numbered them.
 */
static int replay_flush(replay_ctx *rc)
{
	atp_result r[REPLAY_RUN];
	atp_event_hash h[REPLAY_RUN];
	for (uint32_t i = 0; i < rc->n; i++)
		atp_core_hash_event(&rc->ev[i], &h[i]);
	rc->n_lapsed = 0;
	atp_core_apply_batch_hashed_at(rc->s->core, rc->ev, h, rc->now, rc->n, r);
	size_t l = 0;
	for (uint32_t i = 0; i < rc->n; i++) {
		if (r[i].status != ATP_OK)
			rc->failed = -1;  /* the WAL holds only what was applied: a refusal now is damage */
		if (!rc->e->cfg.on_delta)
			continue;
		uint32_t index = 0;
		for (; l < rc->n_lapsed && rc->lapsed[l].index == i; l++)
			replay_emit(rc, &rc->lapsed[l].d, rc->lsn[i], index++);
		for (uint32_t k = 0; k < r[i].n_deltas; k++)
			replay_emit(rc, &r[i].deltas[k], rc->lsn[i], index++);
	}
	rc->n = 0;
	return rc->failed;
}

typedef struct replay_tick {
	replay_ctx *rc;
	uint64_t lsn;
	uint32_t index;
} replay_tick;

static void replay_tick_lapsed(void *ctx, const atp_delta *d, size_t n)
{
	replay_tick *t = ctx;
	for (size_t i = 0; i < n; i++)
		replay_emit(t->rc, &d[i], t->lsn, t->index++);
}

static int replay_record(void *ctx, uint64_t lsn, const uint8_t *p, size_t len)
{
	replay_ctx *rc = ctx;
	atp_record rec;
	if (!p)
		return replay_flush(rc);  /* the segment is unmapped next */
	if (rc->failed || len > ATP_RECORD_MAX)
		return -1;
	if (atp_record_decode(p, len, &rec) < 0 || rec.kind == ATP_REC_SNAPSHOT)
		return -1;
	assert(lsn == rc->last_lsn + 1);  /* the WAL hands over every record after the snapshot, in LSN order (wal.c checks it too) */
	rc->last_lsn = lsn;
	rc->records++;
	if (rec.kind == ATP_REC_EVENT) {
		rc->ev[rc->n] = rec.ev;
		rc->lsn[rc->n] = lsn;
		rc->now[rc->n++] = rec.now;
		return rc->n == REPLAY_RUN ? replay_flush(rc) : 0;
	}
	atp_result r;
	if (replay_flush(rc) < 0)
		return -1;
	replay_tick t = { rc, lsn, 0 };
	bool deltas = rc->e->cfg.on_delta != NULL;
	return atp_engine_apply_record(rc->s->core, &rec, &r, deltas ? replay_tick_lapsed : NULL, &t) == ATP_OK ? 0 : -1;
}

/* Every position a snapshot restored, as BASE deltas at its LSN. */
static void emit_base(replay_ctx *rc, uint64_t lsn)
{
	const atp_table *t = atp_core_table(rc->s->core);
	for (uint32_t id = 0; id < atp_table_count(t); id++) {
		const atp_position *p = atp_table_get(t, id);
		int64_t atp = atp_position_atp(p);
		atp_delta d = { .sku = atp_str_of(atp_table_sku(t, id), p->sku_len),
				.location = atp_str_of(atp_table_location(t, id), p->loc_len),
				.old_atp = atp, .new_atp = atp, .version = p->version, .pos = id };
		rc->out[rc->n_out] = pipe_engine_delta(&d, rc->s->index, rc->e->n_shards, lsn, 0);
		rc->out[rc->n_out++].kind = ATP_DELTA_BASE;
		if (rc->n_out == DELTA_CHUNK)
			replay_deltas_done(rc);
	}
	replay_deltas_done(rc);
}

/* A shard's core with its newest good snapshot loaded; *lsn the snapshot's (0: none). 0 or -1 (err). */
static int load_shard(atp_engine *e, shard *s, uint64_t *lsn, char *err, size_t errlen)
{
	atp_engine_shard_dir(e->dir, s->index, s->dir, sizeof(s->dir));
	if (mkdir(s->dir, 0755) < 0 && errno != EEXIST) {
		atp_errf(err, errlen, "%s: %s", s->dir, strerror(errno));
		return -1;
	}
	uint64_t t0 = pipe_mono_ns();
	s->core = atp_core_create(&e->cfg.core);
	if (!s->core) {
		atp_errf(err, errlen, "shard %u: cannot allocate the core", s->index);
		return -1;
	}
	uint64_t t1 = pipe_mono_ns();
	if (atp_snapshot_load(s->dir, s->core, lsn, err, errlen) < 0)
		return -1;
	e->recovery.recovery_table_seconds += (t1 - t0) / 1e9;
	e->recovery.recovery_snapshot_seconds += (pipe_mono_ns() - t1) / 1e9;
	return 0;
}

/* Replay s's WAL after its snapshot at lsn, cutting every record after upto. 0 or -1 (err). */
static int replay_shard(atp_engine *e, shard *s, uint64_t lsn, uint64_t upto, char *err, size_t errlen)
{
	uint64_t t2 = pipe_mono_ns();
	replay_ctx *rc = calloc(1, sizeof(*rc));
	if (!rc) {
		atp_errf(err, errlen, "out of memory");
		return -1;
	}
	rc->e = e;
	rc->s = s;
	rc->last_lsn = lsn;
	if (e->cfg.on_delta) {
		/* The channel stream takes the state at the snapshot, then regenerates every delta after it. */
		emit_base(rc, lsn);
		atp_core_set_expiry_sink(s->core, replay_lapsed, rc);
	} else {
		atp_core_set_deltas(s->core, false);  /* nobody takes them */
	}
	s->wal = atp_wal_open_upto(s->dir, &e->cfg.wal, lsn, upto, replay_record, rc, err, errlen);
	if (s->wal && replay_flush(rc) < 0) {
		atp_errf(err, errlen, "shard %u: a WAL record that was applied once is refused in replay", s->index);
		atp_wal_close(s->wal);
		s->wal = NULL;
	}
	if (e->cfg.on_delta)
		replay_deltas_done(rc);
	atp_core_set_expiry_sink(s->core, NULL, NULL);
	uint64_t records = rc->records;
	free(rc->lapsed);
	free(rc);
	atp_core_set_deltas(s->core, true);
	if (!s->wal)
		return -1;
	uint64_t t3 = pipe_mono_ns();
	e->recovery.recovered_records += records;
	e->recovery.recovery_wal_seconds += (t3 - t2) / 1e9;
	if (lsn || records)
		atp_log(ATP_LOG_INFO, "shard %u recovered: snapshot of lsn %" PRIu64 ", %" PRIu64
				" WAL records replayed (%.3f s), %u positions",
			s->index, lsn, records, (t3 - t2) / 1e9, atp_table_count(atp_core_table(s->core)));
	return 0;
}

/* ---- whole orders: where each shard's log must be cut ---- */

/* An ORDER mark in a shard's log after its snapshot, and how many of its lines follow it there. */
typedef struct mark {
	uint64_t order, lsn;
	uint16_t n_lines, seen;
	uint64_t parts[ATP_ENGINE_SHARDS_MAX / 64];
} mark;

typedef struct shard_marks {
	mark *m;
	size_t n, cap;
	uint64_t snap_lsn;
	uint64_t snap_order;  /* the snapshot's order mark: every order up to it is whole (a snapshot waits for that) */
	uint64_t cut;         /* the LSN of the first record cut off; UINT64_MAX: none */
	int failed;
} shard_marks;

static int scan_mark(void *ctx, uint64_t lsn, const uint8_t *p, size_t len)
{
	shard_marks *sm = ctx;
	if (!p || !len)
		return 0;
	mark *last = sm->n ? &sm->m[sm->n - 1] : NULL;
	atp_record rec;
	if (p[0] == ATP_REC_ORDER && atp_record_decode(p, len, &rec) == 0) {
		if (sm->n == sm->cap) {
			size_t cap = sm->cap ? sm->cap * 2 : 64;
			mark *m = realloc(sm->m, cap * sizeof(*m));
			if (!m)
				return sm->failed = -1;
			sm->m = m;
			sm->cap = cap;
		}
		mark *x = &sm->m[sm->n++];
		*x = (mark){ .order = rec.order.order, .lsn = lsn, .n_lines = rec.order.n_lines };
		for (uint16_t i = 0; i < rec.order.n_parts; i++)
			x->parts[rec.order.parts[i] / 64] |= 1ull << (rec.order.parts[i] % 64);
	} else if (last && last->seen < last->n_lines && last->lsn + 1 + last->seen == lsn) {
		last->seen++;  /* a part's lines follow its mark, back to back (worker.c) */
	}
	return 0;
}

/* Whether shard p's log, as cut so far, holds its part of order k whole. */
static bool holds(const shard_marks *sm, uint64_t k)
{
	if (k <= sm->snap_order)
		return true;
	size_t lo = 0, hi = sm->n;  /* marks come in order number order */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (sm->m[mid].order < k)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < sm->n && sm->m[lo].order == k && sm->m[lo].lsn < sm->cut && sm->m[lo].seen == sm->m[lo].n_lines;
}

/*
 * Cut each log before the first order that some shard of it does not hold
 * whole; a cut can leave another order incomplete, so until nothing moves.
 */
static void find_cuts(atp_engine *e, shard_marks *sm)
{
	for (bool moved = true; moved;) {
		moved = false;
		for (uint32_t s = 0; s < e->n_shards; s++) {
			for (size_t j = 0; j < sm[s].n && sm[s].m[j].lsn < sm[s].cut; j++) {
				const mark *x = &sm[s].m[j];
				bool whole = true;
				for (uint32_t p = 0; p < e->n_shards && whole; p++)
					if (x->parts[p / 64] & (1ull << (p % 64)))
						whole = holds(&sm[p], x->order);
				if (whole)
					continue;
				atp_log(ATP_LOG_WARN, "shard %u: whole order %" PRIu64 " is not in every shard's log: "
						"its log is cut before it (lsn %" PRIu64 "); nothing from there on was acknowledged",
					s, x->order, x->lsn);
				sm[s].cut = x->lsn;
				moved = true;
				break;
			}
		}
	}
}

int pipe_recover(atp_engine *e, char *err, size_t errlen)
{
	shard_marks *sm = calloc(e->n_shards, sizeof(*sm));
	int rc = sm ? 0 : -1;
	if (!sm)
		atp_errf(err, errlen, "out of memory");
	for (uint32_t i = 0; rc == 0 && i < e->n_shards; i++) {
		shard *s = &e->shards[i];
		s->index = i;
		sm[i].cut = UINT64_MAX;
		rc = load_shard(e, s, &sm[i].snap_lsn, err, errlen);
		if (rc == 0) {
			sm[i].snap_order = atp_core_order_hwm(s->core);
			atp_wal_scan_info info;
			uint64_t t0 = pipe_mono_ns();
			/* A log that cannot be read is refused below by its replay, with the same message. */
			if (atp_wal_scan(s->dir, sm[i].snap_lsn, scan_mark, &sm[i], &info, err, errlen) < 0)
				sm[i].n = 0;
			e->recovery.recovery_wal_seconds += (pipe_mono_ns() - t0) / 1e9;  /* (a pass over the log: part of its cost) */
			if (sm[i].failed) {
				atp_errf(err, errlen, "out of memory");
				rc = -1;
			}
		}
	}
	if (rc == 0)
		find_cuts(e, sm);
	for (uint32_t i = 0; rc == 0 && i < e->n_shards; i++) {
		rc = replay_shard(e, &e->shards[i], sm[i].snap_lsn, sm[i].cut == UINT64_MAX ? UINT64_MAX : sm[i].cut - 1,
				  err, errlen);
		if (rc == 0 && e->cfg.on_recovered)
			e->cfg.on_recovered(e->cfg.recovered_ctx, i, e->n_shards, e->recovery.recovered_records);
	}
	for (uint32_t i = 0; sm && i < e->n_shards; i++)
		free(sm[i].m);
	free(sm);
	return rc;
}

/*
 * An internal source (its name starts with '@': the engine's own API)
 * never resends an event, so after a crash it continues past the highest
 * seq any shard applied, not from the router's durable seq, which lags
 * (an event lost with the crash is simply never acknowledged).
 */
int pipe_resume_internal_sources(atp_engine *e, char *err, size_t errlen)
{
	for (uint32_t i = 0; i < e->n_shards; i++) {
		const atp_sources *ss = atp_core_sources(e->shards[i].core);
		for (uint32_t k = 0; k < atp_sources_count(ss); k++) {
			const atp_source *src = atp_sources_get(ss, k);
			if (src->name[0] != '@' || strcmp(src->name, ATP_ORDER_SOURCE) == 0)
				continue;  /* (the order mark is a shard's own, never a sender) */
			atp_str name = atp_str_of(src->name, src->name_len);
			uint32_t id = atp_sources_find(e->sources, name);
			if (id == ATP_SOURCE_NONE && (id = atp_sources_intern(e->sources, name)) == ATP_SOURCE_NONE) {
				atp_errf(err, errlen, "too many sources");
				return -1;
			}
			atp_source *r = atp_sources_at(e->sources, id);
			if (src->hwm > r->hwm)
				r->hwm = e->rs[id].durable = src->hwm;
		}
	}
	return 0;
}

