/* Reservation expiry and retention: time only through atp_core_expire(now). */
#include "helpers.h"

#include <criterion/criterion.h>

static atp_core *c;
static uint64_t seq;
static atp_result r;
static atp_delta d[16];
static size_t nd;

static void setup(void)
{
	c = small_core(16, 16, 4); /* retention 1000 */
	seq = 0;
	atp_event ev = ev_of(ATP_EV_RECEIPT, ++seq, "S", "L", 10);
	atp_core_apply(c, &ev, &r);
}

static void teardown(void)
{
	atp_core_destroy(c);
}

static void reserve(const char *ref, int64_t qty, uint64_t expires_at)
{
	atp_event ev = ev_ref(ATP_EV_RESERVE, ++seq, "S", "L", qty, ref);
	ev.expires_at = expires_at;
	cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_OK);
}

TestSuite(expiry, .init = setup, .fini = teardown);

Test(expiry, a_line_lapses_at_its_expiry_not_before)
{
	reserve("A", 4, 500);
	cr_assert_eq(atp_core_expire(c, 499, d, 16, &nd), 0);
	cr_assert_eq(pos_of(c, "S", "L")->reserved, 4);
	cr_assert_eq(atp_core_expire(c, 500, d, 16, &nd), 1);
	cr_assert_eq(pos_of(c, "S", "L")->reserved, 0);
	cr_assert_eq(nd, 1);
	cr_assert_eq(d[0].old_atp, 6);
	cr_assert_eq(d[0].new_atp, 10);
	cr_assert_eq(d[0].seq, 0, "an expiry has no event behind it");
	cr_assert_eq(atp_core_find_line(c, S("A"), S("S"), S("L"))->state, ATP_LINE_EXPIRED);
	cr_assert_eq(atp_core_stats_get(c)->units_expired, 4);
}

Test(expiry, lines_lapse_in_expiry_order_in_bounded_steps)
{
	reserve("C", 1, 300);
	reserve("A", 1, 100);
	reserve("B", 1, 200);
	reserve("N", 1, 0);
	cr_assert_eq(atp_core_expire(c, 1000, d, 2, &nd), 2, "at most max_lines per call");
	cr_assert_eq(atp_core_find_line(c, S("A"), S("S"), S("L"))->state, ATP_LINE_EXPIRED);
	cr_assert_eq(atp_core_find_line(c, S("B"), S("S"), S("L"))->state, ATP_LINE_EXPIRED);
	cr_assert_eq(atp_core_find_line(c, S("C"), S("S"), S("L"))->state, ATP_LINE_OPEN);
	cr_assert_eq(atp_core_expire(c, 1000, d, 2, &nd), 1);
	cr_assert_eq(atp_core_find_line(c, S("N"), S("S"), S("L"))->state, ATP_LINE_OPEN, "no expiry: never lapses");
	cr_assert_eq(pos_of(c, "S", "L")->reserved, 1);
}

Test(expiry, a_consumed_or_released_line_does_not_lapse)
{
	reserve("A", 2, 100);
	reserve("B", 2, 100);
	atp_event pick = ev_ref(ATP_EV_PICK, ++seq, "S", "L", 2, "A");
	atp_event rel = ev_ref(ATP_EV_RELEASE, ++seq, "S", "L", 0, "B");
	atp_core_apply(c, &pick, &r);
	atp_core_apply(c, &rel, &r);
	cr_assert_eq(atp_core_expire(c, 200, d, 16, &nd), 0);
	cr_assert_eq(atp_core_stats_get(c)->lines_expired, 0);
}

Test(expiry, partly_picked_line_lapses_with_its_remainder)
{
	reserve("A", 5, 100);
	atp_event pick = ev_ref(ATP_EV_PICK, ++seq, "S", "L", 2, "A");
	atp_core_apply(c, &pick, &r);
	atp_core_expire(c, 100, d, 16, &nd);
	cr_assert_eq(pos_of(c, "S", "L")->reserved, 0);
	cr_assert_eq(atp_core_stats_get(c)->units_expired, 3);
}

Test(expiry, time_never_goes_back)
{
	atp_core_expire(c, 700, d, 16, &nd);
	atp_core_expire(c, 100, d, 16, &nd);
	cr_assert_eq(atp_core_now_ms(c), 700);
	reserve("A", 1, 650); /* already due */
	cr_assert_eq(atp_core_expire(c, 0, d, 16, &nd), 1);
}

Test(expiry, a_pick_after_the_lapse_takes_unreserved_stock)
{
	reserve("A", 4, 100);
	atp_core_expire(c, 100, d, 16, &nd);
	atp_event pick = ev_ref(ATP_EV_PICK, ++seq, "S", "L", 4, "A");
	atp_core_apply(c, &pick, &r);
	cr_assert(r.flags & ATP_RF_NO_LINE);
	cr_assert_eq(pos_of(c, "S", "L")->on_hand, 6);
	cr_assert_eq(pos_of(c, "S", "L")->reserved, 0);
}

Test(expiry, closed_lines_are_remembered_for_the_retention_then_forgotten)
{
	reserve("A", 4, 0);
	atp_event rel = ev_ref(ATP_EV_RELEASE, ++seq, "S", "L", 0, "A");
	atp_core_expire(c, 50, d, 16, &nd);
	atp_core_apply(c, &rel, &r); /* closed at 50 */
	atp_core_expire(c, 1050, d, 16, &nd);
	cr_assert_not_null(atp_core_find_line(c, S("A"), S("S"), S("L")), "closed_at 50 is not before 1050 - 1000");
	reserve("A", 4, 0);
	cr_assert(r.flags & ATP_RF_REPLAYED);
	atp_core_expire(c, 1051, d, 16, &nd);
	cr_assert_null(atp_core_find_line(c, S("A"), S("S"), S("L")));
	cr_assert_eq(atp_core_stats_get(c)->lines_purged, 1);
	reserve("A", 4, 0);
	cr_assert_eq(r.flags & ATP_RF_REPLAYED, 0, "past the retention the id is new again");
	cr_assert_eq(r.confirmed, 4);
}

Test(expiry, open_lines_are_never_purged)
{
	reserve("A", 4, 0);
	atp_core_expire(c, 1000000, d, 16, &nd);
	cr_assert_eq(atp_core_find_line(c, S("A"), S("S"), S("L"))->state, ATP_LINE_OPEN);
}

typedef struct sunk {
	size_t index[8];
	atp_delta d[8];
	size_t n;
} sunk;

static void sink(void *ctx, size_t index, const atp_delta *dd, size_t n)
{
	sunk *s = ctx;
	for (size_t i = 0; i < n && s->n < 8; i++) {
		s->index[s->n] = index;
		s->d[s->n++] = dd[i];
	}
}

/* A batch at times hands the deltas of what lapses before event i to the sink, tagged i. */
Test(expiry, a_batch_gives_its_expiries_deltas_to_the_sink_by_event)
{
	reserve("A", 4, 100);
	reserve("B", 3, 200);
	sunk s = { .n = 0 };
	atp_core_set_expiry_sink(c, sink, &s);
	atp_event ev[3] = { ev_of(ATP_EV_RECEIPT, seq + 1, "S", "L", 1), ev_of(ATP_EV_RECEIPT, seq + 2, "S", "L", 1),
			    ev_of(ATP_EV_RECEIPT, seq + 3, "S", "L", 1) };
	seq += 3;
	uint64_t now[3] = { 50, 150, 250 };
	atp_result res[3];
	atp_core_apply_batch_at(c, ev, now, 3, res);
	cr_assert_eq(s.n, 2);
	cr_assert_eq(s.index[0], 1, "A lapses before the second event");
	cr_assert_eq(s.d[0].old_atp, 4);  /* 10 + 1 - 4 - 3 */
	cr_assert_eq(s.d[0].new_atp, 8);
	cr_assert_eq(s.index[1], 2, "B before the third");
	cr_assert_eq(s.d[1].old_atp, 9);
	cr_assert_eq(s.d[1].new_atp, 12);
	cr_assert_eq(res[2].deltas[0].old_atp, 12, "the event's own delta follows its expiries");
	atp_core_set_deltas(c, false);
	reserve("C", 1, 300);
	atp_core_apply_batch_at(c, ev, (uint64_t[]){ 400, 400, 400 }, 1, res);
	cr_assert_eq(s.n, 2, "deltas off: none to the sink either");
}
