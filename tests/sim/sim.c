/*
 * sim.c — the deterministic simulator: the engine's router, shard workers,
 * WALs and snapshots in one thread, on a simulated disk and clock, under a
 * seeded random workload and random faults, checked against the reference
 * model (tests/model.h) after every step.
 *
 * The engine runs with an atp_engine_io (atp/engine.h): no threads, no
 * io_uring; this file turns the workers and completes their group writes
 * when it likes, in any order. The disk is the real file system under a
 * directory of our own, seen through atp/faultio.h's simulator hook: what
 * every write overwrote is kept until an fsync of its file, so that a power
 * cut can lose any subset of the unsynced pages, and any call can fail.
 *
 * One seed: three sources send every event type over 8 SKUs x 3 locations
 * to 4 shards on 2 workers (resends, gaps, reservations with expiries, the
 * clock moving), while each step the simulator does one of: send, turn the
 * workers, complete some group writes (the others stay slow; any order),
 * move the clock, sync, snapshot, kill the process (writes in flight torn
 * anywhere), cut the power (unsynced pages lost at random), fail one I/O
 * call (EIO, ENOSPC, a short write, an fsync whose failure loses its
 * file's unsynced pages), or let the disk die at a later call (a crash
 * inside a snapshot, a segment's creation, a recovery). Checked:
 *   - every completion equals the model's result for its event (a model
 *     per shard, which sees that shard's records in order), and comes in
 *     the order the shard was sent them;
 *   - after every step, each shard equals its model after the records its
 *     worker has applied so far;
 *   - at every sync, every position equals its model; with the channel
 *     stream on (odd seeds), the last delta of every position equals its
 *     ATP and versions only increase;
 *   - after every restart, each shard equals its model after a prefix of
 *     the records sent to it that holds every acknowledged one: nothing
 *     acknowledged lost, nothing unacknowledged skipped over, nothing
 *     applied twice. Senders then resume after the durable seq the engine
 *     reports (as the stream's Welcome tells them); resends the shards
 *     already applied come back as duplicates;
 *   - at the end, after a clean close and a reopen, the same.
 * A failure prints the seed and the step; `sim --first S --seeds 1 -v`
 * replays it.
 *
 * The senders and their events are in sim_workload.c; what both files
 * share, in sim.h.
 *
 *   sim [--seeds N] [--first S] [--steps K] [--dir D] [--calm] [-v]
 *
 * --calm: no crash and no fault, the workload and the model alone.
 */
#define _GNU_SOURCE
#include "sim.h"

#include "atp/faultio.h"
#include "atp/log.h"
#include "atp/status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const sku_names[SKUS] = { "S0", "S1", "S2", "S3", "S4", "S5", "S6", "S7" };
const char *const loc_names[LOCS] = { "DC1", "DC2", "ST3" };
const char *const src_names[SOURCES] = { "wms1", "wms2", "oms" };
const char *const ref_names[REFS] = { "R0", "R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10", "R11" };

sim S;

void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "sim: seed %" PRIu64 " step %d: ", S.seed, S.step);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nsim: replay with: sim --first %" PRIu64 " --seeds 1 -v\n", S.seed);
	exit(1);
}

static uint64_t draw(void *ctx)
{
	(void)ctx;
	return atp_prng_next(&S.g);
}

/* ---- the disk ---- */

static ssize_t decide(void *ctx, atp_io_op op, int fd, size_t len)
{
	(void)ctx;
	S.io_calls++;
	if (S.dead || (S.dead_at && S.io_calls >= S.dead_at)) {
		S.dead = true;  /* nothing reaches the disk any more: a crash at this call */
		return -EIO;
	}
	if (!S.p_fault || below(1000000) >= S.p_fault)
		return (ssize_t)len;
	S.faults++;
	switch (op) {
	case ATP_IO_WRITE:
		if (len > 1 && below(2)) {
			say("fault: a short write (%zu of %zu bytes)", len / 2, len);
			return (ssize_t)(len / 2);
		}
		say("fault: a write fails");
		return below(2) ? -EIO : -ENOSPC;
	case ATP_IO_FSYNC: {
		/* The kernel may drop the pages whose writeback failed: any of them. */
		size_t lost = atp_fault_lose(fd, draw, NULL);
		say("fault: an fsync fails, %zu unsynced pages lost", lost);
		return -EIO;
	}
	default:
		say("fault: op %d fails", (int)op);
		return below(2) ? -EIO : -ENOSPC;
	}
}

static uint64_t mono_ns(void *ctx)
{
	(void)ctx;
	return S.now * 1000000;
}

static void io_submit(void *ctx, uint32_t worker, uint32_t slot, int fd, const void *buf, size_t len, uint64_t off)
{
	(void)ctx;
	if (S.n_ops == MAX_OPS)
		fail("more group writes in flight than shards");
	S.ops[S.n_ops++] = (flight_op){ worker, slot, fd, buf, len, off };
}

/* Make op i's write and fdatasync through the faultable calls and tell its worker. */
static void complete_op(int i)
{
	flight_op o = S.ops[i];
	S.ops[i] = S.ops[--S.n_ops];
	ssize_t n = atp_io_pwrite(o.fd, o.buf, o.len, (off_t)o.off);
	int wres = n < 0 ? -errno : (int)n;
	int fres = n == (ssize_t)o.len ? (atp_io_fdatasync(o.fd) < 0 ? -errno : 0) : -ECANCELED;
	atp_engine_io_done(S.e, o.worker, o.slot, wres, fres);
}

/* A worker looks for completions: each of its ops completes now or stays slow; all when it must wait. */
static void io_poll(void *ctx, uint32_t worker, bool wait)
{
	(void)ctx;
	for (int i = S.n_ops; i-- > 0;)
		if (i < S.n_ops && S.ops[i].worker == worker && (wait || below(4) == 0))
			complete_op(i);
}

/* The process dies: each write in flight made in part, in full or not at all (not synced). */
static void tear_flight(void)
{
	for (int i = 0; i < S.n_ops; i++) {
		flight_op *o = &S.ops[i];
		size_t part = below(3) == 0 ? 0 : below(2) ? o->len : below(o->len + 1);
		if (part && !S.dead && atp_io_pwrite(o->fd, o->buf, part, (off_t)o->off) < 0)
			say("the torn write: %s", strerror(errno));
	}
	S.n_ops = 0;
}

/* ---- the model's time and events ---- */

/* A record the log holds, applied to a model (its event, denied or not, at its time). */
mresult rec_apply(model *m, const rec *r)
{
	m->deny = r->deny;
	mresult w = model_apply(m, &S.hist[r->src][r->seq - 1], r->now);
	m->deny = false;
	return w;
}

mresult model_apply(model *m, const gev *g, uint64_t now)
{
	model_time(m, now);
	const atp_event *ev = &g->ev;
	return m_apply(m, ev->type, g->src, ev->seq, g->sku, g->loc, g->to, ev->qty, g->ref, ev->flags & ATP_EVF_PARTIAL,
		       ev->expires_at);
}

/* ---- the checks ---- */

/* The first difference between a shard's core and a model, written to why; false when there is one. */
static bool same_shard(const atp_core *c, const model *m, int shard, char *why, size_t n)
{
	for (int k = 0; k < SKUS; k++) {
		if ((int)atp_engine_shard_of(S.e, STR(sku_names[k])) != shard)
			continue;
		for (int l = 0; l < LOCS; l++) {
			const atp_position *p = atp_core_find(c, STR(sku_names[k]), STR(loc_names[l]));
			const mpos *q = &m->pos[k][l];
			if ((p != NULL) == q->exists && (!p || (p->on_hand == q->on_hand && p->held == q->held &&
							       p->reserved == q->reserved && p->safety_stock == q->safety)))
				continue;
			snprintf(why, n, "shard %d %s/%s: engine %s (%lld,%lld,%lld,%lld), model %s (%lld,%lld,%lld,%lld)", shard,
				 sku_names[k], loc_names[l], p ? "has" : "lacks", p ? (long long)p->on_hand : 0,
				 p ? (long long)p->held : 0, p ? (long long)p->reserved : 0, p ? (long long)p->safety_stock : 0,
				 q->exists ? "has" : "lacks", (long long)q->on_hand, (long long)q->held, (long long)q->reserved,
				 (long long)q->safety);
			return false;
		}
	}
	for (int s = 0; s < SOURCES; s++) {
		uint64_t hwm = atp_core_hwm(c, STR(src_names[s]));
		if (hwm != m->hwm[s]) {
			snprintf(why, n, "shard %d source %s: engine applied up to seq %" PRIu64 ", model %" PRIu64, shard,
				 src_names[s], hwm, m->hwm[s]);
			return false;
		}
	}
	if (atp_core_now_ms(c) != m->now) {
		snprintf(why, n, "shard %d: engine's time %" PRIu64 ", model's %" PRIu64, shard, atp_core_now_ms(c), m->now);
		return false;
	}
	return true;
}

/* Every position of every shard against its model, and the channel stream's last word on each. */
static void check_all(const char *when)
{
	for (int k = 0; k < SHARDS; k++) {
		const atp_core *c = atp_engine_core(S.e, (uint32_t)k);
		char why[300];
		if (!same_shard(c, S.m[k], k, why, sizeof(why)))
			fail("%s: %s", when, why);
		if (!S.deltas)
			continue;
		const atp_table *t = atp_core_table(c);
		for (uint32_t id = 0; id < atp_table_count(t); id++) {
			/* A position that never had any ATP has had no delta either. */
			int64_t atp = atp_position_atp(atp_table_get(t, id)), said = S.seen[k][id] ? S.seen_atp[k][id] : 0;
			if (said != atp)
				fail("%s: shard %d position %u: ATP %lld, the channel stream's last delta says %lld", when, k, id,
				     (long long)atp, (long long)said);
		}
	}
}

/*
 * After every step: each shard equals its model after the records its
 * worker has applied, which are a prefix of those sent: a record is applied
 * once the shard's time has reached it and, for an event, the shard's seq
 * of its source (a resend the shard knows leaves only its time behind).
 */
static void check_applied(void)
{
	for (int k = 0; k < SHARDS; k++) {
		const atp_core *c = atp_engine_core(S.e, (uint32_t)k);
		for (; S.n_applied[k] < S.n_log[k]; S.n_applied[k]++) {
			const rec *r = &S.log[k][S.n_applied[k]];
			if (atp_core_now_ms(c) < r->now || (r->src >= 0 && atp_core_hwm(c, STR(src_names[r->src])) < r->seq))
				break;
			model_time(S.applied[k], r->now);
			if (r->src >= 0)
				rec_apply(S.applied[k], r);
		}
		char why[300];
		if (!same_shard(c, S.applied[k], k, why, sizeof(why)))
			fail("after the %zu of %zu records applied: %s", S.n_applied[k], S.n_log[k], why);
	}
}

/* ---- the engine's callbacks ---- */

static void on_done(void *ctx, const atp_engine_done *d)
{
	(void)ctx;
	int src = -1;
	for (int s = 0; s < SOURCES; s++)
		if (strcmp(d->source, src_names[s]) == 0)
			src = s;
	if (src < 0)
		fail("a completion for an unknown source %s", d->source);
	/* The record it completes: the first unacknowledged one of this (source, seq) in the shard's log. */
	const gev *g = &S.hist[src][d->seq - 1];
	int k = (int)atp_engine_shard_of(S.e, g->ev.sku);
	size_t i = S.acked_len[k];
	while (i < S.n_log[k] && !(S.log[k][i].src == src && S.log[k][i].seq == d->seq))
		i++;
	if (i == S.n_log[k])
		fail("a completion for %s seq %" PRIu64 " that shard %d was not sent after its last acknowledged record",
		     d->source, d->seq, k);
	for (size_t j = S.acked_len[k]; j < i; j++)
		if (S.log[k][j].src >= 0)
			fail("shard %d: %s seq %" PRIu64 " acknowledged before %s seq %" PRIu64 ", sent earlier", k, d->source,
			     d->seq, src_names[S.log[k][j].src], S.log[k][j].seq);
	rec *r = &S.log[k][i];
	const mresult *w = &r->want;
	int64_t qty = g->ev.type == ATP_EV_RESERVE ? w->confirmed : w->moved;
	if (d->status != w->status || (d->status == ATP_OK && (d->qty != qty || (d->flags & M_FLAGS) != (w->exceptions | w->outcome))))
		fail("%s seq %" PRIu64 " (%s): engine %s qty %lld flags %#x, model %s qty %lld flags %#x", d->source, d->seq,
		     atp_event_type_name(g->ev.type), atp_status_name(d->status), (long long)d->qty, d->flags & M_FLAGS,
		     atp_status_name(w->status), (long long)qty, w->exceptions | w->outcome);
	r->acked = true;
	S.acked_len[k] = i + 1;
	S.acked++;
}

static void on_delta(void *ctx, const atp_engine_delta *d, size_t n)
{
	(void)ctx;
	for (size_t i = 0; i < n; i++) {
		if (d[i].shard >= SHARDS || d[i].pos >= MAX_POS)
			fail("a delta of shard %u position %u", d[i].shard, d[i].pos);
		uint16_t k = d[i].shard;
		uint32_t p = d[i].pos;
		if (S.seen[k][p] && d[i].version <= S.seen_version[k][p] && d[i].kind != ATP_DELTA_BASE)
			fail("shard %u position %u: version %" PRIu64 " after %" PRIu64, k, p, d[i].version, S.seen_version[k][p]);
		if (S.seen[k][p] && d[i].kind != ATP_DELTA_BASE && d[i].old_atp != S.seen_atp[k][p])
			fail("shard %u position %u: a delta from %lld, the last said %lld", k, p, (long long)d[i].old_atp,
			     (long long)S.seen_atp[k][p]);
		S.seen[k][p] = true;
		S.seen_atp[k][p] = d[i].new_atp;
		S.seen_version[k][p] = d[i].version;
	}
}

/* ---- the router's records, mirrored ---- */

void log_rec(int k, rec r)
{
	if (S.n_log[k] == S.cap_log[k]) {
		S.cap_log[k] = S.cap_log[k] ? 2 * S.cap_log[k] : 1024;
		S.log[k] = realloc(S.log[k], S.cap_log[k] * sizeof(rec));
		if (!S.log[k])
			fail("out of memory");
	}
	S.log[k][S.n_log[k]++] = r;
	S.shard_now[k] = r.now;
}

/* The ticks atp_engine_advance(), _sync() and _snapshot() send: to each shard not yet at the engine's time. */
static void log_ticks(void)
{
	uint64_t now = atp_engine_now_ms(S.e);
	for (int k = 0; k < SHARDS; k++) {
		if (S.shard_now[k] >= now)
			continue;
		log_rec(k, (rec){ .src = -1, .now = now });
		model_time(S.m[k], now);
	}
}

/* ---- crash and restart ---- */

static void open_engine(void)
{
	atp_engine_config cfg = atp_engine_config_default();
	cfg.shards = SHARDS;
	cfg.workers = WORKERS;
	cfg.first_cpu = cfg.router_cpu = -1;
	cfg.core.max_positions = MAX_POS;
	cfg.core.max_lines = M_MAX_LINES;
	cfg.core.max_sources = 8;
	cfg.core.line_retention = M_RETENTION;
	cfg.wal.segment_bytes = 128u << 10;
	cfg.wal.buffer_bytes = 16u << 10;
	cfg.snapshot_wal_bytes = 24u << 10;
	cfg.ring_bytes = 64u << 10;
	cfg.on_done = on_done;
	cfg.on_delta = S.deltas ? on_delta : NULL;
	cfg.io = &S.io;
	char err[512];
	for (int attempt = 0;; attempt++) {
		memset(S.seen, 0, sizeof(S.seen));  /* a recovery tells the stream everything again */
		if (attempt == 3)
			S.p_fault = 0;  /* an operator's patience: the disk behaves for this start */
		S.e = atp_engine_open(S.dir, &cfg, err, sizeof(err));
		if (S.e)
			break;
		if (attempt == 6)
			fail("cannot open after a crash: %s", err);
		say("open failed (%s): the power goes, then again", err);
		S.n_ops = 0;
		S.dead = false;
		S.dead_at = 0;
		atp_fault_lose(-1, draw, NULL);
	}
	atp_engine_set_time(S.e, S.now);
}

/*
 * The model of shard k after its first n records (half: with the time of
 * record n reached but not its event). Returns a new model.
 */
static model *replay(int k, size_t n, bool half)
{
	model *m = calloc(1, sizeof(*m));
	if (!m)
		fail("out of memory");
	m->sparse = true;
	for (size_t i = 0; i < n + half; i++) {
		const rec *r = &S.log[k][i];
		model_time(m, r->now);
		if (r->src >= 0 && i < n)
			rec_apply(m, r);
	}
	return m;
}

/*
 * A recovered shard must equal its model after a prefix of the records sent
 * to it that holds every acknowledged one; the longest that does (records
 * after it changed nothing) becomes the shard's log and model.
 */
static void match_prefix(int k)
{
	const atp_core *c = atp_engine_core(S.e, (uint32_t)k);
	model *m = replay(k, 0, false);
	size_t found = SIZE_MAX;
	bool found_half = false;
	char why[300] = "";
	for (size_t i = 0;; i++) {
		if (i >= S.acked_len[k] && same_shard(c, m, k, why, sizeof(why)))
			found = i, found_half = false;
		if (S.verbose && i >= S.acked_len[k])
			say("after %zu records: %s; engine at %" PRIu64 " seqs %" PRIu64 "/%" PRIu64 "/%" PRIu64 ", model at %" PRIu64
			    " seqs %" PRIu64 "/%" PRIu64 "/%" PRIu64, i, found == i ? "same" : why, atp_core_now_ms(c),
			    atp_core_hwm(c, STR(src_names[0])), atp_core_hwm(c, STR(src_names[1])),
			    atp_core_hwm(c, STR(src_names[2])), m->now, m->hwm[0], m->hwm[1], m->hwm[2]);
		if (i == S.n_log[k])
			break;
		const rec *r = &S.log[k][i];
		model_time(m, r->now);
		/* A worker logs the move of time before an event that makes lines lapse: that record may be the last. */
		if (r->src >= 0 && i >= S.acked_len[k] && same_shard(c, m, k, why, sizeof(why)))
			found = i, found_half = true;
		if (r->src >= 0)
			rec_apply(m, r);
	}
	free(m);
	if (found == SIZE_MAX)
		fail("shard %d recovered to no prefix of its %zu records that holds the %zu acknowledged: after all, %s", k,
		     S.n_log[k], S.acked_len[k], why);
	say("shard %d recovered %zu%s of %zu records (%zu acknowledged)", k, found, found_half ? " and a half" : "",
	    S.n_log[k], S.acked_len[k]);
	free(S.m[k]);
	S.m[k] = replay(k, found, found_half);
	memcpy(S.applied[k], S.m[k], sizeof(model));
	if (found_half) {  /* the move of time survived its event: a tick now */
		S.log[k][found] = (rec){ .src = -1, .now = S.log[k][found].now };
		found++;
	}
	S.n_log[k] = S.n_applied[k] = found;
	S.acked_len[k] = found;  /* what survived is all there is: a record after it is sent again, or never */
	S.shard_now[k] = 0;      /* the router starts afresh */
}

/*
 * After the shards matched their prefixes: every whole order sent before the
 * crash (of the newest 256) was kept by every shard of it, with all its
 * lines there, or by none; those cut are forgotten (they are sent again).
 */
static void check_orders(const size_t *before)
{
	uint64_t first = S.n_orders > 256 ? S.n_orders - 256 : 0;
	for (uint64_t i = first; i < S.n_orders; i++) {
		sent_order *o = &S.orders[i % 256];
		int kept = 0, gone = 0;
		for (int p = 0; p < o->n_parts; p++) {
			int k = o->shard[p];
			if (o->mark[p] >= before[k] || !o->applied[p])
				continue;  /* (nothing of it to see there: only duplicates) */
			size_t have = 0;  /* its lines kept: applied events right after the mark (a half-kept one became a tick) */
			for (size_t j = o->mark[p] + 1; j < S.n_log[k] && j <= o->mark[p] + (size_t)o->lines[p]; j++)
				have += S.log[k][j].src >= 0 && S.log[k][j].want.status == ATP_OK;
			if (have > 0 && have < (size_t)o->applied[p])
				fail("whole order from oms seq %" PRIu64 ": shard %d kept %zu of its %d lines", o->seq, k, have,
				     o->applied[p]);
			kept += have > 0;
			gone += have == 0;
		}
		if (kept && gone)
			fail("whole order from oms seq %" PRIu64 ": kept by %d of its shards, cut from %d", o->seq, kept, gone);
		if (gone)
			o->n_parts = 0;  /* cut everywhere: no longer in any log */
	}
}

static void restart(bool power)
{
	if (power) {
		tear_flight();
		size_t lost = atp_fault_lose(-1, draw, NULL);
		say("the power goes: %zu unsynced pages lost", lost);
		S.power_cuts++;
	} else {
		tear_flight();
		say("killed");
		S.kills++;
	}
	atp_engine_abandon(S.e);
	S.e = NULL;
	S.n_ops = 0;
	S.dead = false;
	S.dead_at = 0;
	open_engine();
	size_t before[SHARDS];
	for (int k = 0; k < SHARDS; k++) {
		before[k] = S.n_log[k];
		match_prefix(k);
	}
	check_orders(before);
	for (int s = 0; s < SOURCES; s++) {
		uint64_t durable = atp_engine_durable_seq(S.e, src_names[s]);
		if (durable >= S.next[s])
			fail("%s: durable seq %" PRIu64 " was never sent (last %" PRIu64 ")", src_names[s], durable, S.next[s] - 1);
		S.accepted[s] = durable;  /* the Welcome's word: the sender goes on after it */
	}
}

/* ---- one seed ---- */

static void step(void)
{
	uint64_t u = below(1000);
	if (engine_down()) {
		/* The engine stopped (a failed write or fsync, a dead disk): its operator restarts it. */
		say("the engine stopped: %s", atp_engine_error(S.e));
		if (S.dead)
			S.deaths++;
		restart(S.dead || below(2));
		return;
	}
	if (u < 450) {
		sim_send();
	} else if (u < 700) {
		atp_engine_turn(S.e);
		atp_engine_poll(S.e);
	} else if (u < 800) {
		S.now += below(60);
		atp_engine_set_time(S.e, S.now);
		if (below(2)) {
			log_ticks();
			atp_engine_advance(S.e);
		}
	} else if (u < 870) {
		log_ticks();
		if (atp_engine_sync(S.e) == 0) {
			check_all("at a sync");
			S.syncs++;
		}
	} else if (u < 885) {
		log_ticks();
		if (atp_engine_snapshot(S.e) == 0) {
			check_all("after a snapshot");
			S.snapshots++;
		}
	} else if (u < 895 && !S.calm) {
		restart(false);
	} else if (u < 905 && !S.calm) {
		restart(true);
	} else if (u < 908 && !S.dead_at && !S.calm) {
		S.dead_at = S.io_calls + 1 + below(40);
		say("the disk dies at I/O call %" PRIu64, S.dead_at);
	} else {
		atp_engine_turn(S.e);
		atp_engine_poll(S.e);
	}
}

static void free_seed(void)
{
	for (int s = 0; s < SOURCES; s++)
		free(S.hist[s]);
	for (int k = 0; k < SHARDS; k++) {
		free(S.m[k]);
		free(S.applied[k]);
		free(S.log[k]);
	}
}

static void run_seed(uint64_t seed, int steps)
{
	free_seed();
	bool verbose = S.verbose, calm = S.calm;
	char dir[sizeof(S.dir)];
	memcpy(dir, S.dir, sizeof(dir));
	memset(&S, 0, sizeof(S));
	S.verbose = verbose;
	S.calm = calm;
	memcpy(S.dir, dir, sizeof(dir));
	S.seed = seed;
	atp_prng_seed(&S.g, seed);
	S.deltas = seed & 1;
	S.p_fault = S.calm ? 0 : (uint32_t)(below(4) * 1000);  /* 0 to 3 in 1,000 I/O calls fail */
	S.now = 1000;
	S.io = (atp_engine_io){ .ctx = NULL, .submit = io_submit, .poll = io_poll, .mono_ns = mono_ns };
	for (int s = 0; s < SOURCES; s++)
		S.next[s] = 1;
	for (int k = 0; k < SHARDS; k++) {
		S.m[k] = calloc(1, sizeof(model));
		S.applied[k] = calloc(1, sizeof(model));
		if (!S.m[k] || !S.applied[k])
			fail("out of memory");
		S.m[k]->sparse = S.applied[k]->sparse = true;
	}
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", S.dir);
	if (system(cmd) != 0)
		fail("cannot empty %s", S.dir);
	open_engine();
	for (S.step = 0; S.step < steps; S.step++) {
		step();
		if (!engine_down())
			check_applied();
	}
	/* The end: a clean close (the disk behaves), a reopen, everything sent once more, and all of it agrees. */
	S.p_fault = 0;
	S.dead_at = 0;
	/* A fault decided before the disk turned good may still surface (a group's other write was in flight). */
	for (int tries = 0;; tries++) {
		if (engine_down() || S.dead)
			restart(true);
		for (int s = 0; s < SOURCES; s++)
			while (S.accepted[s] + 1 < S.next[s] && !engine_down()) {
				int rc = sim_submit_next(s);
				if (rc != ATP_OK && !engine_down())
					fail("the last resends: %s seq %" PRIu64 ": %s", src_names[s], S.accepted[s] + 1,
					     atp_status_name(rc));
			}
		log_ticks();
		if (atp_engine_sync(S.e) == 0)
			break;
		if (tries == 2)
			fail("the last sync: %s", atp_engine_error(S.e));
	}
	check_all("at the end");
	if (atp_engine_close(S.e) != 0)
		fail("close failed");
	open_engine();
	for (int k = 0; k < SHARDS; k++) {
		size_t n = S.n_log[k];
		match_prefix(k);
		if (S.n_log[k] != n)
			fail("shard %d: a clean close kept %zu of %zu records", k, S.n_log[k], n);
	}
	for (int s = 0; s < SOURCES; s++)
		if (atp_engine_durable_seq(S.e, src_names[s]) != S.next[s] - 1)
			fail("%s: durable seq %" PRIu64 " after a clean close, %" PRIu64 " sent", src_names[s],
			     atp_engine_durable_seq(S.e, src_names[s]), S.next[s] - 1);
	atp_engine_abandon(S.e);
	S.e = NULL;
}

int main(int argc, char **argv)
{
	uint64_t first = 1, seeds = 32;
	int steps = 3000;
	/* Memory-backed where there is one: the disk is simulated, and a real fsync only costs time. */
	const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(S.dir, sizeof(S.dir), "%s/atp-sim-%d", tmp, (int)getpid());
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc)
			seeds = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--first") == 0 && i + 1 < argc)
			first = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc)
			steps = atoi(argv[++i]);
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			snprintf(S.dir, sizeof(S.dir), "%s", argv[++i]);
		else if (strcmp(argv[i], "-v") == 0)
			S.verbose = true;
		else if (strcmp(argv[i], "--calm") == 0)
			S.calm = true;
		else {
			fprintf(stderr, "usage: sim [--seeds N] [--first S] [--steps K] [--dir D] [--calm] [-v]\n");
			return 2;
		}
	}
	atp_log_setup(NULL, S.verbose ? ATP_LOG_INFO : ATP_LOG_ERROR - 1);
	setvbuf(stdout, NULL, _IOLBF, 0);  /* -v: our lines and the engine's in the order they happened */
	atp_fault_simulate(decide, NULL);
	uint64_t totals[11] = { 0 };
	for (uint64_t seed = first; seed < first + seeds; seed++) {
		run_seed(seed, steps);
		uint64_t t[11] = { S.sent,   S.acked,  S.syncs,	      S.snapshots,    S.kills,	    S.power_cuts,
				   S.faults, S.deaths, S.resent_dups, S.orders_whole, S.orders_denied };
		for (int i = 0; i < 11; i++)
			totals[i] += t[i];
		if ((seed - first + 1) % 100 == 0)
			printf("sim: seeds %" PRIu64 "..%" PRIu64 " clean\n", first, seed);  /* a long campaign's progress */
	}
	free_seed();
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", S.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "sim: cannot remove %s\n", S.dir);
	printf("sim: seeds %" PRIu64 "..%" PRIu64 " clean, %d steps each: %" PRIu64 " events sent, %" PRIu64
	       " completions checked, %" PRIu64 " syncs and %" PRIu64 " snapshots checked, %" PRIu64 " kills, %" PRIu64
	       " power cuts, %" PRIu64 " I/O faults, %" PRIu64 " dead disks, %" PRIu64 " resends found applied; whole orders: %"
	       PRIu64 " confirmed, %" PRIu64 " denied\n",
	       first, first + seeds - 1, steps, totals[0], totals[1], totals[2], totals[3], totals[4], totals[5], totals[6],
	       totals[7], totals[8], totals[9], totals[10]);
	if (!totals[9] || !totals[10])
		fprintf(stderr, "sim: whole orders were not both confirmed and denied: too few steps to tell\n");
	return 0;
}
