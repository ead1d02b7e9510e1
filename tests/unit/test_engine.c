/*
 * The durable engine against the single-threaded core: one simulated day
 * through 1, 2, 4 and 8 shards gives exactly the reference table
 * (buckets and versions); a restart without a final snapshot, a restart
 * after snapshots and trimmed segments, and a resend of what was already
 * durable all end in the same table, with no event applied twice.
 */
#define _GNU_SOURCE
#include "../day_fixture.h"
#include "atp/engine.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include "atp/log.h"
#include <dirent.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char *day;
static size_t day_len;
static char dir[64];

static void setup(void)
{
	day = fixture_day(400, 6000, 7, &day_len);
	cr_assert_not_null(day);
	snprintf(dir, sizeof(dir), "/tmp/atp-engine-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
	free(day);
}

static atp_core *reference(void)
{
	atp_core *c = fixture_reference(day, day_len);
	cr_assert_not_null(c, "the day replays through the core");
	return c;
}

static atp_engine *open_engine(uint32_t shards, uint32_t workers, uint64_t snap_bytes)
{
	atp_engine_config cfg = atp_engine_config_default();
	cfg.shards = shards;
	cfg.workers = workers;
	cfg.first_cpu = -1;
	cfg.core = fixture_config();
	cfg.wal.segment_bytes = 256u << 10;
	cfg.wal.buffer_bytes = 64u << 10;
	cfg.snapshot_wal_bytes = snap_bytes;
	cfg.ring_bytes = 256u << 10;
	char err[600];
	atp_engine *e = atp_engine_open(dir, &cfg, err, sizeof(err));
	cr_assert_not_null(e, "%s", err);
	return e;
}

/* Submit rows from..to (0-based, counting every row) of the day; returns rows submitted as new. */
static uint64_t submit_rows(atp_engine *e, uint64_t from, uint64_t to)
{
	atp_csv_reader *r = malloc(sizeof(*r));
	char err[ATP_CSV_ERR_MAX];
	atp_event ev;
	uint64_t n = 0, fresh = 0;
	cr_assert_eq(atp_csv_open(r, day, day_len, err), 0);
	for (; atp_csv_next(r, &ev, err) > 0 && n < to; n++) {
		if (n < from)
			continue;
		atp_engine_set_time(e, r->occurred_at);
		int st = atp_engine_submit(e, &ev, NULL);
		cr_assert(st == ATP_OK || st == ATP_DUPLICATE, "row %lu: %s", (unsigned long)n, atp_status_name(st));
		fresh += st == ATP_OK;
	}
	free(r);
	cr_assert_eq(atp_engine_sync(e), 0);
	return fresh;
}

static void assert_equal(const atp_core *ref, const atp_engine *e)
{
	const atp_table *t = atp_core_table(ref);
	uint32_t total = 0, open = 0;
	for (uint32_t s = 0; s < atp_engine_shards(e); s++) {
		total += atp_table_count(atp_core_table(atp_engine_core(e, s)));
		open += atp_lines_open_count(atp_core_lines(atp_engine_core(e, s)));
	}
	cr_assert_eq(total, atp_table_count(t), "positions");
	cr_assert_eq(open, atp_lines_open_count(atp_core_lines(ref)), "open reservation lines");
	for (uint32_t i = 0; i < atp_table_count(t); i++) {
		const atp_position *p = atp_table_get(t, i);
		atp_str sku = atp_str_of(atp_table_sku(t, i), p->sku_len);
		atp_str loc = atp_str_of(atp_table_location(t, i), p->loc_len);
		const atp_position *q = atp_core_find(atp_engine_core(e, atp_engine_shard_of(e, sku)), sku, loc);
		cr_assert_not_null(q, "%s/%s in its shard", atp_table_sku(t, i), atp_table_location(t, i));
		cr_assert(p->on_hand == q->on_hand && p->held == q->held && p->reserved == q->reserved &&
				  p->safety_stock == q->safety_stock && p->version == q->version,
			  "%s/%s: reference %ld/%ld/%ld/%ld v%lu, engine %ld/%ld/%ld/%ld v%lu", atp_table_sku(t, i),
			  atp_table_location(t, i), (long)p->on_hand, (long)p->held, (long)p->reserved,
			  (long)p->safety_stock, (unsigned long)p->version, (long)q->on_hand, (long)q->held,
			  (long)q->reserved, (long)q->safety_stock, (unsigned long)q->version);
	}
}

static void assert_durable_as_reference(const atp_core *ref, const atp_engine *e)
{
	cr_assert_eq(atp_engine_durable_seq(e, "wms"), atp_core_hwm(ref, S("wms")));
	cr_assert_eq(atp_engine_durable_seq(e, "oms"), atp_core_hwm(ref, S("oms")));
}

TestSuite(engine, .init = setup, .fini = teardown, .timeout = 120);

static void through_shards(uint32_t shards, uint32_t workers)
{
	atp_core *ref = reference();
	atp_engine *e = open_engine(shards, workers, 0);
	submit_rows(e, 0, UINT64_MAX);
	assert_equal(ref, e);
	assert_durable_as_reference(ref, e);
	atp_engine_stats st;
	atp_engine_stats_get(e, &st);
	cr_assert_gt(st.fsyncs, 0);
	cr_assert_leq(st.fsyncs, st.wal_records, "group commit: never more fsyncs than records");
	cr_assert_eq(atp_engine_close(e), 0);
	/* Reopened (from the final snapshots): the same table, nothing replayed twice. */
	e = open_engine(shards, workers, 0);
	assert_equal(ref, e);
	assert_durable_as_reference(ref, e);
	atp_engine_abandon(e);
	atp_core_destroy(ref);
}

Test(engine, one_shard)
{
	through_shards(1, 1);
}

Test(engine, two_shards_two_workers)
{
	through_shards(2, 2);
}

Test(engine, four_shards_two_workers)
{
	through_shards(4, 2);
}

Test(engine, eight_shards_two_workers)
{
	through_shards(8, 2);
}

Test(engine, restart_without_snapshot_replays_the_wal)
{
	atp_core *ref = reference();
	atp_engine *e = open_engine(4, 2, 0);
	submit_rows(e, 0, 9000);
	atp_engine_abandon(e); /* as a crash after the last acknowledgement: no final snapshot */
	e = open_engine(4, 2, 0);
	atp_engine_stats st;
	atp_engine_stats_get(e, &st);
	cr_assert_gt(st.recovered_records, 0, "recovery replayed the WAL");
	/* Resend everything: what was durable is recognised, the rest applied once. */
	submit_rows(e, 0, UINT64_MAX);
	assert_equal(ref, e);
	assert_durable_as_reference(ref, e);
	atp_engine_abandon(e);
	atp_core_destroy(ref);
}

Test(engine, restart_after_snapshots_and_trimmed_segments)
{
	atp_core *ref = reference();
	/* Snapshots every 64 KiB of WAL, 256 KiB segments: several snapshots and trims. */
	atp_engine *e = open_engine(2, 1, 64u << 10);
	submit_rows(e, 0, 12000);
	cr_assert_eq(atp_engine_snapshot(e), 0); /* on command, on top of those by size */
	atp_engine_stats st;
	atp_engine_stats_get(e, &st);
	cr_assert_geq(st.snapshots, 2, "one snapshot per shard at least");
	atp_engine_abandon(e);
	e = open_engine(2, 1, 64u << 10);
	/* The sender resumes at the durable seq the engine reports (a lower bound: it may resend more). */
	uint64_t wms = atp_engine_durable_seq(e, "wms"), oms = atp_engine_durable_seq(e, "oms");
	cr_assert_gt(wms + oms, 0, "the durable seqs survive the restart");
	submit_rows(e, 0, UINT64_MAX);
	assert_equal(ref, e);
	assert_durable_as_reference(ref, e);
	cr_assert_eq(atp_engine_close(e), 0);
	atp_core_destroy(ref);
}

Test(engine, a_second_engine_is_locked_out)
{
	atp_engine *e = open_engine(1, 1, 0);
	atp_engine_config cfg = atp_engine_config_default();
	cfg.first_cpu = -1;
	char err[600];
	cr_assert_null(atp_engine_open(dir, &cfg, err, sizeof(err)));
	cr_assert(strstr(err, "another atpd"), "%s", err);
	cr_assert_eq(atp_engine_close(e), 0);
}

Test(engine, seq_rules_at_the_router)
{
	atp_engine *e = open_engine(2, 1, 0);
	uint64_t expected;
	atp_event ev = ev_of(ATP_EV_RECEIPT, 1, "A", "DC1", 5);
	cr_assert_eq(atp_engine_submit(e, &ev, &expected), ATP_OK);
	cr_assert_eq(atp_engine_submit(e, &ev, &expected), ATP_DUPLICATE);
	ev.seq = 5;
	cr_assert_eq(atp_engine_submit(e, &ev, &expected), ATP_E_GAP);
	cr_assert_eq(expected, 2);
	ev.seq = 2;
	ev.qty = -1;
	cr_assert_eq(atp_engine_submit(e, &ev, &expected), ATP_E_QTY, "malformed: refused at once");
	ev.qty = 1;
	cr_assert_eq(atp_engine_submit(e, &ev, &expected), ATP_OK, "a malformed event does not consume its seq");
	cr_assert_eq(atp_engine_sync(e), 0);
	cr_assert_eq(atp_engine_durable_seq(e, "wms"), 2);
	cr_assert_eq(atp_core_find(atp_engine_core(e, atp_engine_shard_of(e, S("A"))), S("A"), S("DC1"))->on_hand, 6);
	cr_assert_eq(atp_engine_close(e), 0);
}

Test(engine, durable_seqs_survive_a_restart_whatever_the_source_name)
{
	atp_engine *e = open_engine(2, 1, 0);
	atp_event ev = ev_of(ATP_EV_RECEIPT, 1, "A", "DC1", 5);
	ev.source = S("north dc wms #2");
	for (uint64_t seq = 1; seq <= 3; seq++) {
		ev.seq = ev.event_id = seq;
		cr_assert_eq(atp_engine_submit(e, &ev, NULL), ATP_OK);
	}
	cr_assert_eq(atp_engine_close(e), 0);
	e = open_engine(2, 1, 0);
	cr_assert_eq(atp_engine_durable_seq(e, "north dc wms #2"), 3);
	uint64_t expected;
	ev.seq = 3;
	cr_assert_eq(atp_engine_submit(e, &ev, &expected), ATP_DUPLICATE);
	cr_assert_eq(expected, 4);
	cr_assert_eq(atp_engine_close(e), 0);
}

/* One shard, one worker, told to write efd once completions wait (a front end's eventfd), router commits after gap_ns. */
static atp_engine *open_notifying(int efd, uint64_t gap_ns)
{
	atp_engine_config cfg = atp_engine_config_default();
	cfg.first_cpu = -1;
	cfg.core = fixture_config();
	cfg.ring_bytes = 256u << 10;
	cfg.notify_fd = efd;
	cfg.router_commit_gap_ns = gap_ns;
	char err[600];
	atp_engine *e = atp_engine_open(dir, &cfg, err, sizeof(err));
	cr_assert_not_null(e, "%s", err);
	return e;
}

Test(engine, a_front_end_is_woken_and_told_what_fits)
{
	/* The eventfd of a front end that must not block: written once completions wait. */
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	cr_assert_geq(efd, 0);
	atp_engine *e = open_notifying(efd, 0);  /* the worker commits, whatever the pause */
	uint64_t n;
	cr_assert_eq(read(efd, &n, sizeof(n)), -1, "nothing to say before anything was submitted");
	cr_assert(atp_engine_can_take(e, 64), "an idle engine takes a batch");
	cr_assert_not(atp_engine_can_take(e, 1u << 20), "a million events of the largest record do not fit a 256 KiB ring");
	atp_event ev = ev_of(ATP_EV_RECEIPT, 1, "A", "DC1", 5);
	cr_assert_eq(atp_engine_submit(e, &ev, NULL), ATP_OK);
	atp_engine_poll(e);
	bool woken = false;
	for (int i = 0; i < 2000 && !woken; i++) {
		woken = read(efd, &n, sizeof(n)) == sizeof(n) && n > 0;
		if (!woken)
			usleep(1000);
	}
	cr_assert(woken, "the worker wrote the eventfd after the group commit");
	atp_engine_poll(e);
	cr_assert_eq(atp_engine_durable_seq(e, "wms"), 1, "and the completion is there to collect");
	cr_assert_eq(atp_engine_close(e), 0);
	close(efd);
}

Test(engine, batches_at_their_own_times_equal_one_by_one)
{
	/* The worker's and replay's path: runs of events through the core's pipeline, each at its time. */
	atp_core *ref = reference();
	atp_core_config cfg = fixture_config();
	atp_core *c = atp_core_create(&cfg);
	atp_csv_reader *r = malloc(sizeof(*r));
	char err[ATP_CSV_ERR_MAX];
	enum { RUN = 37 };
	atp_event ev[RUN];
	uint64_t now[RUN];
	atp_result res[RUN];
	static char text[RUN][4 * 80];
	size_t n = 0, runs = 0;
	cr_assert_eq(atp_csv_open(r, day, day_len, err), 0);
	for (int more = 1; more;) {
		more = atp_csv_next(r, &ev[n], err) > 0;
		if (more) {
			/* The reader's strings live until its next row: keep this row's. */
			atp_str *f[] = { &ev[n].source, &ev[n].sku, &ev[n].location, &ev[n].ref, &ev[n].to_location,
					 &ev[n].reason };
			size_t used = 0;
			for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
				memcpy(text[n] + used, f[k]->ptr, f[k]->len);
				f[k]->ptr = text[n] + used;
				used += f[k]->len;
			}
			now[n++] = r->occurred_at;
		}
		if (n == RUN || (!more && n)) {
			/* Every other run as the worker applies it: hashed (and validated) ahead of the core. */
			if (++runs % 2) {
				atp_core_apply_batch_at(c, ev, now, n, res);
			} else {
				atp_event_hash h[RUN];
				for (size_t k = 0; k < n; k++)
					atp_core_hash_event(&ev[k], &h[k]);
				atp_core_apply_batch_hashed_at(c, ev, h, now, n, res);
			}
			for (size_t k = 0; k < n; k++)
				cr_assert(res[k].status == ATP_OK || res[k].status == ATP_DUPLICATE, "%s",
					  atp_status_name(res[k].status));
			n = 0;
		}
	}
	free(r);
	const atp_table *t = atp_core_table(ref);
	cr_assert_eq(atp_table_count(atp_core_table(c)), atp_table_count(t));
	for (uint32_t i = 0; i < atp_table_count(t); i++) {
		const atp_position *p = atp_table_get(t, i);
		const atp_position *q = atp_core_find(c, atp_str_of(atp_table_sku(t, i), p->sku_len),
						      atp_str_of(atp_table_location(t, i), p->loc_len));
		cr_assert(q && p->on_hand == q->on_hand && p->held == q->held && p->reserved == q->reserved &&
			  p->safety_stock == q->safety_stock && p->version == q->version);
	}
	const atp_core_stats *a = atp_core_stats_get(ref), *b = atp_core_stats_get(c);
	cr_assert_eq(memcmp(a, b, sizeof(*a)), 0, "every counter, expiries and purges included");
	cr_assert_gt(a->lines_expired, 0, "the day has reservations that lapse mid-run");
	cr_assert_eq(atp_core_now_ms(ref), atp_core_now_ms(c));
	atp_core_destroy(c);
	atp_core_destroy(ref);
}

Test(engine, a_whole_reservation_is_released_shard_by_shard_and_read_back_by_sku)
{
	atp_engine *e = open_engine(4, 2, 0);
	uint64_t seq = 0;
	const char *skus[] = { "A", "B", "C", "D", "E", "F" };
	for (int i = 0; i < 6; i++) {
		for (int l = 0; l < 2; l++) {
			atp_event ev = ev_of(ATP_EV_RECEIPT, ++seq, skus[i], l ? "DC2" : "DC1", 10);
			cr_assert_eq(atp_engine_submit(e, &ev, NULL), ATP_OK);
			ev = ev_ref(ATP_EV_RESERVE, ++seq, skus[i], l ? "DC2" : "DC1", 3, "ORD");
			ev.flags = ATP_EVF_RELEASABLE;
			cr_assert_eq(atp_engine_submit(e, &ev, NULL), ATP_OK);
		}
	}
	/* Through a snapshot: the lines stay releasable. */
	cr_assert_eq(atp_engine_close(e), 0);
	e = open_engine(4, 2, 0);
	atp_event all = { .event_id = 1, .type = ATP_EV_RELEASE, .source = S("wms"), .ref = S("ORD") };
	all.seq = ++seq;
	cr_assert_eq(atp_engine_submit(e, &all, NULL), ATP_E_SKU, "it belongs to every shard");
	atp_event wrong = ev_of(ATP_EV_RECEIPT, seq, "A", "DC1", 1);
	cr_assert_eq(atp_engine_submit_to(e, &wrong, (atp_engine_shard_of(e, S("A")) + 1) % 4, NULL), ATP_E_INVAL);
	for (uint32_t s = 0; s < 4; s++) {
		for (int round = 0; round < 12; round++) {  /* 12 lines at most, two per event */
			all.seq = seq++;
			cr_assert_eq(atp_engine_submit_to(e, &all, s, NULL), ATP_OK);
		}
	}
	cr_assert_eq(atp_engine_sync(e), 0);
	atp_engine_position out[4];
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(atp_engine_read_sku(e, S(skus[i]), out, 4), 2);
		cr_assert(atp_str_cmp(out[0].location, S("DC1")) == 0 && atp_str_cmp(out[1].location, S("DC2")) == 0);
		cr_assert(out[0].v.reserved == 0 && out[1].v.reserved == 0 && out[0].v.on_hand == 10, "%s", skus[i]);
	}
	cr_assert_eq(atp_engine_read_sku(e, S("NONE"), out, 4), 0);
	uint32_t total = 0;
	for (uint32_t s = 0; s < 4; s++)
		total += atp_engine_positions(e, s);
	cr_assert_eq(total, 12);
	cr_assert_eq(atp_engine_close(e), 0);
}

/* Restores one shard's snapshot: a shard ahead of the router's durable seq of an internal source. */
Test(engine, an_internal_source_continues_past_what_any_shard_applied)
{
	atp_engine *e = open_engine(2, 1, 0);
	atp_event ev = ev_of(ATP_EV_RECEIPT, 1, "A", "DC1", 5);
	ev.source = S("@api");
	for (uint64_t seq = 1; seq <= 5; seq++) {
		ev.seq = ev.event_id = seq;
		cr_assert_eq(atp_engine_submit(e, &ev, NULL), ATP_OK);
	}
	cr_assert_eq(atp_engine_sync(e), 0);
	atp_engine_abandon(e);  /* as a crash: the router's sources file may lag the WAL */
	char path[128];
	snprintf(path, sizeof(path), "%s/sources", dir);
	unlink(path);
	e = open_engine(2, 1, 0);
	cr_assert_eq(atp_engine_durable_seq(e, "@api"), 5);
	uint64_t expected;
	ev.seq = 6;
	cr_assert_eq(atp_engine_submit(e, &ev, &expected), ATP_OK);
	cr_assert_eq(atp_engine_sync(e), 0);
	cr_assert_eq(atp_core_find(atp_engine_core(e, atp_engine_shard_of(e, S("A"))), S("A"), S("DC1"))->on_hand, 30);
	cr_assert_eq(atp_engine_close(e), 0);
}

/*
 * The commit delay (worker_commit.c): after a group of 8 calls is released
 * the next group waits for as many, HOLD_NS at most. Callers that do not
 * come back must not stall it: one event alone still becomes durable, and
 * so does one left pending when the engine closes.
 */
/*
 * A lone event for a worker that sleeps and committed nothing for the gap:
 * the router's poll applies and commits it itself, so the completion is
 * there when the poll returns, and the worker's eventfd stays silent. (A
 * pause lets the worker fall asleep; on a loaded machine a round may find
 * it still awake, so the rounds count the commits, and at least one must be
 * the router's.) With no gap set, never.
 */
static void trickle(uint64_t gap_ns, uint64_t *router_commits, bool *ack_in_poll)
{
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	cr_assert_geq(efd, 0);
	atp_engine *e = open_notifying(efd, gap_ns);
	*ack_in_poll = true;
	for (uint64_t seq = 1; seq <= 20; seq++) {
		usleep(5000);
		atp_engine_stats before, after;
		atp_engine_stats_get(e, &before);
		atp_event ev = ev_of(ATP_EV_RECEIPT, seq, "A", "DC1", 1);
		cr_assert_eq(atp_engine_submit(e, &ev, NULL), ATP_OK);
		atp_engine_poll(e);
		atp_engine_stats_get(e, &after);
		if (after.router_commits > before.router_commits) {
			uint64_t n;
			*ack_in_poll &= atp_engine_durable_seq(e, "wms") == seq && read(efd, &n, sizeof(n)) == -1;
		}
		cr_assert_eq(atp_engine_sync(e), 0);
		cr_assert_eq(atp_engine_durable_seq(e, "wms"), seq);
	}
	atp_engine_stats st;
	atp_engine_stats_get(e, &st);
	*router_commits = st.router_commits;
	cr_assert_eq(atp_core_find(atp_engine_core(e, 0), S("A"), S("DC1"))->on_hand, 20);
	cr_assert_eq(atp_engine_close(e), 0);
	e = open_notifying(efd, gap_ns);
	cr_assert_eq(atp_core_find(atp_engine_core(e, 0), S("A"), S("DC1"))->on_hand, 20, "every event in the WAL");
	cr_assert_eq(atp_engine_close(e), 0);
	close(efd);
}

Test(engine, a_trickle_is_committed_by_the_router)
{
	uint64_t commits;
	bool in_poll;
	trickle(1000000, &commits, &in_poll);
	cr_assert_gt(commits, 0, "the router committed some of 20 lone events itself");
	cr_assert(in_poll, "each completed within the poll, the worker's eventfd silent");
}

Test(engine, without_a_gap_the_router_never_commits)
{
	uint64_t commits;
	bool in_poll;
	trickle(0, &commits, &in_poll);
	cr_assert_eq(commits, 0);
}

Test(engine, a_group_held_for_callers_that_do_not_come_back_still_goes)
{
	atp_engine *e = open_engine(1, 1, 0);
	uint64_t seq = 0;
	for (int i = 0; i < 8; i++) {
		atp_event ev = ev_of(ATP_EV_RECEIPT, ++seq, "A", "DC1", 1);
		cr_assert_eq(atp_engine_submit(e, &ev, NULL), ATP_OK);
	}
	cr_assert_eq(atp_engine_sync(e), 0);
	for (int round = 0; round < 3; round++) {
		atp_event ev = ev_of(ATP_EV_RECEIPT, ++seq, "A", "DC1", 1);
		cr_assert_eq(atp_engine_submit(e, &ev, NULL), ATP_OK);
		cr_assert_eq(atp_engine_sync(e), 0);
		cr_assert_eq(atp_engine_durable_seq(e, "wms"), seq, "a lone event after a group of 8 is durable");
	}
	atp_event ev = ev_of(ATP_EV_RECEIPT, ++seq, "A", "DC1", 1);
	cr_assert_eq(atp_engine_submit(e, &ev, NULL), ATP_OK);
	cr_assert_eq(atp_engine_close(e), 0, "a close drains a held group");
	e = open_engine(1, 1, 0);
	cr_assert_eq(atp_core_find(atp_engine_core(e, 0), S("A"), S("DC1"))->on_hand, (int64_t)seq, "every event kept");
	cr_assert_eq(atp_engine_close(e), 0);
}

static _Atomic unsigned warnings;
static void count_warnings(int level, const char *text)
{
	if (level <= ATP_LOG_WARN)
		warnings++;
	fprintf(stderr, "%s\n", text);
}

/* Whether thread tid of this process may run on CPU 0 only. */
static bool on_cpu0_only(const char *tid)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	cr_assert_eq(sched_getaffinity(atoi(tid), sizeof(set), &set), 0);
	return CPU_COUNT(&set) == 1 && CPU_ISSET(0, &set);
}

Test(engine, a_pinned_worker_pins_its_io_uring_workers)
{
	atp_log_setup(count_warnings, ATP_LOG_INFO);
	atp_engine_config cfg = atp_engine_config_default();
	cfg.first_cpu = 0;
	cfg.core = fixture_config();
	char err[600];
	atp_engine *e = atp_engine_open(dir, &cfg, err, sizeof(err));
	cr_assert_not_null(e, "%s", err);
	submit_rows(e, 0, UINT64_MAX);  /* a day at once: groups go through the worker's io_uring */
	unsigned io_workers = 0;
	DIR *d = opendir("/proc/self/task");
	cr_assert_not_null(d);
	for (struct dirent *t; (t = readdir(d));) {
		char path[300], comm[32] = "";
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", t->d_name);
		FILE *f = t->d_name[0] == '.' ? NULL : fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && strncmp(comm, "iou-wrk-", 8) == 0) {
			io_workers++;
			cr_assert(on_cpu0_only(t->d_name), "io_uring worker %s runs on the worker's CPU only", t->d_name);
		}
		fclose(f);
	}
	closedir(d);
	cr_assert_gt(io_workers, 0, "the day's groups went through io_uring workers");
	cr_assert_eq(atp_engine_close(e), 0);
	cr_assert_eq(warnings, 0, "nothing warned (\"io_uring workers not pinned\")");
	atp_log_setup(NULL, ATP_LOG_INFO);
}
