/*
 * ATP over time: inbound supply, promises against it, the profile, and
 * what a late or cancelled supply does to them; against the reference
 * model (tests/model_inbound.h) event by event, through snapshots and the
 * record encoding.
 */
#include "helpers.h"
#include "../model_inbound.h"

#include "atp/inbound.h"
#include "atp/record.h"
#include "atp/snapshot.h"
#include "atp/status.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atp_core *c;
static uint64_t seq;
static atp_result r;
static uint32_t base; /* day 0 of the tests: 2026-12-01 */

static void setup(void)
{
	c = small_core(64, 4096, 4);
	seq = 0;
	base = atp_day_of_ymd(20261201);
}

static void teardown(void)
{
	atp_core_destroy(c);
}

static int supply(const char *po, const char *loc, int64_t qty, int day)
{
	atp_event ev = ev_ref(ATP_EV_SUPPLY, ++seq, "K", loc, qty, po);
	ev.date = day ? base + (uint32_t)day : 0;
	return atp_core_apply(c, &ev, &r);
}

static int receipt(const char *po, const char *loc, int64_t qty)
{
	atp_event ev = ev_of(ATP_EV_RECEIPT, ++seq, "K", loc, qty);
	if (po)
		ev.ref = S(po);
	return atp_core_apply(c, &ev, &r);
}

static int reserve(const char *ref, int64_t qty, int need_by)
{
	atp_event ev = ev_ref(ATP_EV_RESERVE, ++seq, "K", "DC", qty, ref);
	ev.date = need_by ? base + (uint32_t)need_by : 0;
	ev.flags = ATP_EVF_RELEASABLE;
	return atp_core_apply(c, &ev, &r);
}

static uint32_t pos_id(const atp_core *core, const char *sku, const char *loc)
{
	const atp_position *p = atp_core_find(core, S(sku), S(loc));
	return p ? (uint32_t)(p - atp_table_get(atp_core_table(core), 0)) : ATP_POS_NONE;
}

static int64_t inbound_on(int day)
{
	atp_inbound_curve cv;
	atp_inbound_read(atp_core_inbound(c), pos_id(c, "K", "DC"), &cv);
	return atp_inbound_units(&cv, base + (uint32_t)day);
}

static const atp_line *line(const char *ref)
{
	return atp_core_find_line(c, S(ref), S("K"), S("DC"));
}

TestSuite(inbound, .init = setup, .fini = teardown);

Test(inbound, days_and_dates)
{
	cr_assert_eq(atp_day_of_ymd(19700102), 1);
	cr_assert_eq(atp_ymd_of_day(atp_day_of_ymd(20240229)), 20240229);
	cr_assert_eq(atp_day_of_ymd(20230229), 0, "not a leap year");
	cr_assert_eq(atp_day_of_ymd(20261301), 0);
	cr_assert_eq(atp_day_of_ymd(99991231), ATP_DAY_LAST);
	cr_assert_eq(atp_day_of_ymd(20261207) - atp_day_of_ymd(20261201), 6);
}

Test(inbound, the_profile_adds_supply_by_its_eta)
{
	receipt(NULL, "DC", 5);
	cr_assert_eq(supply("PO1", "DC", 10, 3), ATP_OK);
	cr_assert_eq(supply("PO2", "DC", 20, 6), ATP_OK);
	cr_assert_eq(inbound_on(2), 0);
	cr_assert_eq(inbound_on(3), 10);
	cr_assert_eq(inbound_on(5), 10);
	cr_assert_eq(inbound_on(6), 30);
	cr_assert_eq(inbound_on(40), 30);
	cr_assert_eq(atp_position_atp(pos_of(c, "K", "DC")), 5, "supply is not on hand");
}

Test(inbound, a_dated_reservation_is_confirmed_now_later_or_not)
{
	receipt(NULL, "DC", 5);
	supply("PO1", "DC", 10, 3);
	supply("PO2", "DC", 20, 6);
	cr_assert_eq(reserve("NOW", 5, 4), ATP_OK);
	cr_assert_eq(r.confirmed, 5);
	cr_assert_eq(r.promised_date, 0, "on hand covers it: confirmed now");
	cr_assert_eq(pos_of(c, "K", "DC")->reserved, 5);

	cr_assert_eq(reserve("LATER", 8, 4), ATP_OK);
	cr_assert_eq(r.confirmed, 8);
	cr_assert(r.flags & ATP_RF_PROMISED);
	cr_assert_eq(r.promised_date, base + 3, "PO1's day");
	cr_assert_eq(line("LATER")->state, ATP_LINE_PROMISED);
	cr_assert_eq(pos_of(c, "K", "DC")->reserved, 5, "a promise is not on-hand reserved");
	cr_assert_eq(inbound_on(3), 2);
	cr_assert_eq(inbound_on(6), 22);

	cr_assert_eq(reserve("TOO-SOON", 5, 4), ATP_OK);
	cr_assert_eq(r.confirmed, 0, "only 2 arrive by day 4");
	cr_assert_eq(reserve("AFTER", 5, 7), ATP_OK);
	cr_assert_eq(r.promised_date, base + 6);
	cr_assert_eq(reserve("NEVER", 30, 20), ATP_OK);
	cr_assert_eq(r.confirmed, 0);

	cr_assert_eq(reserve("LATER", 8, 4), ATP_OK);
	cr_assert(r.flags & ATP_RF_REPLAYED);
	cr_assert_eq(r.confirmed, 8);
	cr_assert_eq(r.promised_date, base + 3, "a retry answers the promise");
}

Test(inbound, receiving_the_supply_opens_its_promises)
{
	supply("PO1", "DC", 10, 3);
	reserve("A", 6, 5);
	reserve("B", 3, 5);
	cr_assert_eq(receipt("PO1", "DC", 4), ATP_OK);
	cr_assert_eq(r.moved, 4);
	cr_assert_eq(line("A")->state, ATP_LINE_PROMISED, "4 units cannot open 6");
	cr_assert_eq(pos_of(c, "K", "DC")->reserved, 3, "of the 4, the pool keeps what PO1's 6 still due leave short: 9 - 6");
	cr_assert_eq(atp_position_atp(pos_of(c, "K", "DC")), 1);
	cr_assert_eq(receipt("PO1", "DC", 8), ATP_OK);
	cr_assert_eq(r.moved, 6, "PO1 expected 6 more; 2 came beyond it");
	cr_assert_eq(line("A")->state, ATP_LINE_OPEN);
	cr_assert_eq(line("A")->remaining, 6);
	cr_assert_eq(line("B")->state, ATP_LINE_OPEN);
	cr_assert_eq(pos_of(c, "K", "DC")->reserved, 9);
	cr_assert_eq(atp_position_atp(pos_of(c, "K", "DC")), 3);
	cr_assert_eq(atp_core_stats_get(c)->promises_opened, 2);
	cr_assert_eq(inbound_on(9), 0, "PO1 is received");
}

Test(inbound, a_late_supply_moves_its_promises_and_reports_them)
{
	supply("PO1", "DC", 10, 3);
	supply("PO2", "DC", 10, 8);
	reserve("A", 6, 4);
	cr_assert_eq(r.promised_date, base + 3);
	cr_assert_eq(supply("PO1", "DC", 10, 10), ATP_OK, "PO1 now comes on day 10");
	cr_assert(r.flags & ATP_RF_LATE);
	cr_assert_eq(r.n_late, 1);
	cr_assert_eq(line("A")->state, ATP_LINE_PROMISED);
	cr_assert_eq(atp_inbound_promised_date(atp_core_inbound(c), pos_id(c, "K", "DC"), (uint32_t)(line("A") - atp_lines_get(atp_core_lines(c), 0))), base + 8,
		     "moved to PO2's day");
	cr_assert_eq(atp_core_stats_get(c)->promises_late, 1);
}

Test(inbound, a_cancelled_supply_withdraws_what_nothing_else_covers)
{
	supply("PO1", "DC", 10, 3);
	supply("PO2", "DC", 4, 5);
	reserve("A", 6, 9);
	reserve("B", 4, 9);
	cr_assert_eq(supply("PO1", "DC", 0, 0), ATP_OK, "cancelled");
	cr_assert_eq(r.n_withdrawn, 1);
	cr_assert(r.flags & ATP_RF_WITHDRAWN);
	cr_assert_eq(line("A")->state, ATP_LINE_WITHDRAWN, "the older promise is placed first: PO2 covers neither 6");
	cr_assert_eq(line("B")->state, ATP_LINE_PROMISED);
	cr_assert_eq(inbound_on(9), 0);
	cr_assert_eq(reserve("A", 6, 9), ATP_OK);
	cr_assert(r.flags & ATP_RF_WITHDRAWN, "a retry says so");
	cr_assert_eq(supply("PO1", "DC", 0, 0), ATP_OK);
	cr_assert(r.flags & ATP_RF_NO_LINE, "cancelling twice finds nothing");
}

Test(inbound, releasing_a_promise_gives_its_supply_back)
{
	supply("PO1", "DC", 10, 3);
	reserve("A", 6, 5);
	cr_assert_eq(inbound_on(3), 4);
	atp_event all = { .event_id = 1, .seq = ++seq, .type = ATP_EV_RELEASE, .source = S("wms"), .ref = S("A") };
	cr_assert_eq(atp_core_apply(c, &all, &r), ATP_OK, "a release of the whole reservation finds promised lines");
	cr_assert_eq(line("A")->state, ATP_LINE_RELEASED);
	cr_assert_eq(inbound_on(3), 10);
	reserve("B", 6, 5);
	atp_event rel = ev_ref(ATP_EV_RELEASE, ++seq, "K", "DC", 0, "B");
	cr_assert_eq(atp_core_apply(c, &rel, &r), ATP_OK);
	cr_assert_eq(r.flags & ATP_RF_NO_LINE, 0);
	cr_assert_eq(line("B")->state, ATP_LINE_RELEASED);
	atp_event pick = ev_ref(ATP_EV_PICK, ++seq, "K", "DC", 1, "B");
	cr_assert_eq(atp_core_apply(c, &pick, &r), ATP_OK);
	cr_assert(r.flags & ATP_RF_NO_LINE);
}

Test(inbound, bad_dates_and_full_stores_are_refused_and_change_nothing)
{
	atp_event ev = ev_of(ATP_EV_RECEIPT, 1, "K", "DC", 1);
	ev.date = base;
	cr_assert_eq(atp_event_validate(&ev), ATP_E_DATE, "a receipt has no date");
	ev = ev_ref(ATP_EV_SUPPLY, 1, "K", "DC", 5, "PO");
	cr_assert_eq(atp_event_validate(&ev), ATP_E_DATE, "a supply expecting units needs its ETA");
	ev.date = ATP_DAY_LAST + 1;
	cr_assert_eq(atp_event_validate(&ev), ATP_E_DATE);
	ev = ev_of(ATP_EV_SUPPLY, 1, "K", "DC", 5);
	ev.date = base;
	cr_assert_eq(atp_event_validate(&ev), ATP_E_REF, "a supply is named");
	ev = ev_ref(ATP_EV_RESERVE, 1, "K", "DC", 5, "R");
	ev.date = base;
	ev.flags = ATP_EVF_PARTIAL;
	cr_assert_eq(atp_event_validate(&ev), ATP_E_DATE, "a dated line is whole");

	char po[8];
	for (int i = 0; i < ATP_SUPPLY_PER_POSITION; i++) {
		snprintf(po, sizeof(po), "PO%d", i);
		cr_assert_eq(supply(po, "DC", 1, 3), ATP_OK);
	}
	cr_assert_eq(supply("PO9", "DC", 1, 3), ATP_E_SUPPLY_FULL);
	cr_assert_eq(atp_core_hwm(c, S("wms")), seq - 1, "refused: the seq is not taken");
	seq--;
	cr_assert_eq(supply("PO0", "DC", 5, 4), ATP_OK, "an update needs no room");
	cr_assert_eq(inbound_on(4), 12);
}

Test(inbound, a_dated_event_survives_the_record_encoding)
{
	uint8_t buf[ATP_RECORD_MAX];
	atp_event ev = ev_ref(ATP_EV_SUPPLY, 7, "K", "DC", 5, "PO-1");
	ev.date = base + 3;
	size_t n = atp_record_encode_event(&ev, 1234, buf);
	atp_record rec;
	cr_assert_eq(atp_record_decode(buf, n, &rec), 0);
	cr_assert_eq(rec.ev.date, base + 3);
	cr_assert_eq(rec.ev.qty, 5);
	cr_assert_eq(rec.now, 1234);
	ev.event_id = 0;
	ev.event_key = S("E-7");
	n = atp_record_encode_event(&ev, 1234, buf);
	cr_assert_eq(atp_record_decode(buf, n, &rec), 0);
	cr_assert_eq(rec.ev.date, base + 3);
	cr_assert_eq(rec.ev.event_key.len, 3);
	cr_assert_neq(atp_record_decode(buf, n - 1, &rec), 0);
	ev.date = 0;
	n = atp_record_encode_event(&ev, 1, buf);
	cr_assert_eq(atp_record_decode(buf, n, &rec), 0);
	cr_assert_eq(rec.ev.date, 0, "an event without a date keeps the old layout");
}

/* ---- against the model ---- */

static const char *const skus[MI_POS] = { "A", "A", "B", "B" };
static const char *const locs[MI_POS] = { "L0", "L1", "L0", "L1" };

static void check_equal(const atp_core *core, const mi_model *m, int step)
{
	for (int p = 0; p < MI_POS; p++) {
		const atp_position *pos = atp_core_find(core, S(skus[p]), S(locs[p]));
		int64_t on_hand = pos ? pos->on_hand : 0, reserved = pos ? pos->reserved : 0;
		cr_assert_eq(on_hand, m->pos[p].on_hand, "step %d pos %d on_hand", step, p);
		cr_assert_eq(reserved, m->pos[p].reserved, "step %d pos %d reserved %lld, model %lld", step, p,
			     (long long)reserved, (long long)m->pos[p].reserved);
		atp_inbound_curve cv = { 0 };
		if (pos)
			atp_inbound_read(atp_core_inbound(core), pos_id(core, skus[p], locs[p]), &cv);
		for (int d = 0; d < MI_DAYS; d++)
			cr_assert_eq(atp_inbound_units(&cv, base + (uint32_t)d), mi_inbound(m, p, d),
				     "step %d pos %d inbound on day %d", step, p, d);
	}
	for (int i = 0; i < m->n_lines; i++) {
		const mi_line *l = &m->line[i];
		char ref[16];
		snprintf(ref, sizeof(ref), "R%d", l->ref);
		const atp_line *ln = atp_core_find_line(core, S(ref), S(skus[l->pos]), S(locs[l->pos]));
		cr_assert(ln, "step %d line %s", step, ref);
		cr_assert_eq(ln->state, l->state, "step %d line %s state %d, model %d", step, ref, ln->state, l->state);
		cr_assert_eq(ln->remaining, l->state == ATP_LINE_OPEN ? l->remaining : 0, "step %d line %s", step, ref);
		if (l->state == ATP_LINE_PROMISED) {
			uint32_t id = (uint32_t)(ln - atp_lines_get(atp_core_lines(core), 0));
			cr_assert_eq(atp_inbound_promised_date(atp_core_inbound(core), pos_id(core, skus[l->pos], locs[l->pos]), id),
				     base + (uint32_t)l->date, "step %d line %s date", step, ref);
		}
	}
}

/* The core written to a snapshot and read back into a fresh one. */
static atp_core *through_snapshot(atp_core *core, const char *dir)
{
	char err[256];
	uint64_t lsn = 0;
	cr_assert_eq(atp_snapshot_write(dir, core, 1, err, sizeof(err)), 0, "%s", err);
	atp_core *back = small_core(64, 4096, 4);
	cr_assert_eq(atp_snapshot_load(dir, back, &lsn, err, sizeof(err)), 0, "%s", err);
	atp_core_destroy(core);
	return back;
}

Test(inbound, a_random_month_against_the_model)
{
	static mi_model m;
	memset(&m, 0, sizeof(m));
	char dir[] = "/tmp/atp-inbound-XXXXXX";
	cr_assert(mkdtemp(dir));
	srandom(29);
	int refs = 0, promised = 0, opened = 0, late = 0, withdrawn = 0;
	for (int step = 0; step < 6000; step++) {
		int p = (int)(random() % MI_POS), kind = (int)(random() % 10);
		int64_t q = 1 + random() % 8;
		atp_event ev = ev_of(ATP_EV_RECEIPT, ++seq, skus[p], locs[p], q);
		char ref[16], po[8];
		mi_result want;
		int sup = (int)(random() % MI_SUP), day = 1 + (int)(random() % (MI_DAYS - 1));
		snprintf(po, sizeof(po), "PO%d", sup);
		int r_ref = random() % 3 == 0 && refs ? (int)(random() % refs) : refs++;
		snprintf(ref, sizeof(ref), "R%d", r_ref);
		switch (kind) {
		case 0: /* a receipt of a supply, or not */
		case 1:
			if (kind == 0)
				ev.ref = S(po);
			want = mi_receipt(&m, p, q, kind == 0 ? sup : -1);
			break;
		case 2:
			ev.type = ATP_EV_PICK;
			ev.ref = S(ref);
			want = mi_pick(&m, p, q, r_ref);
			break;
		case 3: /* a supply set, moved or cancelled */
		case 4: {
			int64_t sq = random() % 4 == 0 ? 0 : q * 3;
			ev.type = ATP_EV_SUPPLY;
			ev.ref = S(po);
			ev.qty = sq;
			ev.date = sq ? base + (uint32_t)day : 0;
			want = mi_supply_set(&m, p, sup, sq, day);
			break;
		}
		case 5:
			ev.type = ATP_EV_RELEASE;
			ev.ref = S(ref);
			ev.qty = 0;
			want = mi_release(&m, p, r_ref);
			break;
		default: { /* reservations, most with a need-by day */
			int need_by = random() % 4 == 0 ? 0 : day;
			ev.type = ATP_EV_RESERVE;
			ev.ref = S(ref);
			ev.date = need_by ? base + (uint32_t)need_by : 0;
			want = mi_reserve(&m, p, r_ref, q, need_by);
			break;
		}
		}
		cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_OK, "step %d: %s", step, atp_status_name(r.status));
		if (ev.type == ATP_EV_RESERVE) {
			cr_assert_eq(r.confirmed, want.confirmed, "step %d confirmed %lld, model %lld", step,
				     (long long)r.confirmed, (long long)want.confirmed);
			cr_assert_eq(r.promised_date, want.date ? base + (uint32_t)want.date : 0, "step %d date", step);
			promised += want.date && !want.replayed;
		} else {
			cr_assert_eq(r.moved, want.moved, "step %d moved", step);
			cr_assert_eq(r.n_late, want.late, "step %d late", step);
			cr_assert_eq(r.n_withdrawn, want.withdrawn, "step %d withdrawn", step);
			cr_assert_eq((r.flags & ATP_RF_NO_LINE) != 0, want.no_line, "step %d no line", step);
			late += want.late;
			withdrawn += want.withdrawn;
		}
		check_equal(c, &m, step);
		if (step % 500 == 499) {
			opened += (int)atp_core_stats_get(c)->promises_opened; /* stats start again after a restore */
			c = through_snapshot(c, dir);
			check_equal(c, &m, step);
		}
	}
	opened += (int)atp_core_stats_get(c)->promises_opened;
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
	/* The walk reached every case it exists for. */
	cr_assert_gt(promised, 100, "%d promises", promised);
	cr_assert_gt(late, 5, "%d late", late);
	cr_assert_gt(withdrawn, 5, "%d withdrawn", withdrawn);
	cr_assert_gt(opened, 5, "%d opened", opened);
	cr_log_info("%d promises, %d opened, %d late, %d withdrawn", promised, opened, late, withdrawn);
}
