/* The effect of each event type, as DESIGN.md §1 and issue 2 specify it. */
#include "helpers.h"

#include <criterion/criterion.h>

static atp_core *c;
static uint64_t seq;
static atp_result r;

static void setup(void)
{
	c = small_core(64, 64, 4);
	seq = 0;
}

static void teardown(void)
{
	atp_core_destroy(c);
}

/* Apply as the next event of source "wms"; the status is returned, the result kept in r. */
static int apply(uint8_t type, const char *loc, int64_t qty, const char *ref)
{
	atp_event ev = ref ? ev_ref(type, ++seq, "SKU1", loc, qty, ref) : ev_of(type, ++seq, "SKU1", loc, qty);
	return atp_core_apply(c, &ev, &r);
}

static const atp_position *p(const char *loc)
{
	return pos_of(c, "SKU1", loc);
}

TestSuite(events, .init = setup, .fini = teardown);

Test(events, receipt_adds_to_on_hand)
{
	cr_assert_eq(apply(ATP_EV_RECEIPT, "DC1", 10, NULL), ATP_OK);
	cr_assert_eq(apply(ATP_EV_RECEIPT, "DC1", 5, NULL), ATP_OK);
	cr_assert_eq(p("DC1")->on_hand, 15);
	cr_assert_eq(atp_position_atp(p("DC1")), 15);
	cr_assert_eq(p("DC1")->version, 2);
}

Test(events, pick_without_reservation_takes_on_hand)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	cr_assert_eq(apply(ATP_EV_PICK, "DC1", 4, NULL), ATP_OK);
	cr_assert_eq(p("DC1")->on_hand, 6);
	cr_assert_eq(r.flags, 0);
}

Test(events, pick_beyond_on_hand_goes_negative_and_is_reported)
{
	apply(ATP_EV_RECEIPT, "DC1", 3, NULL);
	cr_assert_eq(apply(ATP_EV_PICK, "DC1", 5, NULL), ATP_OK);
	cr_assert_eq(p("DC1")->on_hand, -2, "never clamped silently");
	cr_assert(r.flags & ATP_RF_NEGATIVE);
	cr_assert_eq(atp_position_atp(p("DC1")), 0);
	cr_assert_eq(atp_core_stats_get(c)->negative_events, 1);
}

Test(events, pick_with_ref_consumes_the_reservation)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	apply(ATP_EV_RESERVE, "DC1", 4, "SO-1");
	cr_assert_eq(p("DC1")->reserved, 4);
	cr_assert_eq(apply(ATP_EV_PICK, "DC1", 3, "SO-1"), ATP_OK);
	cr_assert_eq(r.moved, 3);
	cr_assert_eq(p("DC1")->reserved, 1);
	cr_assert_eq(p("DC1")->on_hand, 7);
	cr_assert_eq(atp_position_atp(p("DC1")), 6, "picking reserved stock leaves ATP unchanged");
	cr_assert_eq(atp_core_find_line(c, S("SO-1"), S("SKU1"), S("DC1"))->remaining, 1);
}

Test(events, pick_more_than_reserved_consumes_only_the_line)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	apply(ATP_EV_RESERVE, "DC1", 2, "SO-1");
	cr_assert_eq(apply(ATP_EV_PICK, "DC1", 5, "SO-1"), ATP_OK);
	cr_assert_eq(r.moved, 2);
	cr_assert_eq(p("DC1")->reserved, 0);
	cr_assert_eq(p("DC1")->on_hand, 5);
	cr_assert_eq(atp_core_find_line(c, S("SO-1"), S("SKU1"), S("DC1"))->state, ATP_LINE_CONSUMED);
}

Test(events, pick_naming_an_unknown_reservation_is_a_plain_pick)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	apply(ATP_EV_RESERVE, "DC1", 2, "SO-1");
	cr_assert_eq(apply(ATP_EV_PICK, "DC1", 3, "SO-9"), ATP_OK);
	cr_assert(r.flags & ATP_RF_NO_LINE);
	cr_assert_eq(p("DC1")->reserved, 2);
	cr_assert_eq(p("DC1")->on_hand, 7);
}

Test(events, pick_at_another_location_does_not_consume_the_line)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	apply(ATP_EV_RECEIPT, "DC2", 10, NULL);
	apply(ATP_EV_RESERVE, "DC1", 2, "SO-1");
	apply(ATP_EV_PICK, "DC2", 2, "SO-1");
	cr_assert(r.flags & ATP_RF_NO_LINE);
	cr_assert_eq(p("DC1")->reserved, 2);
}

Test(events, adjust_is_signed)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	cr_assert_eq(apply(ATP_EV_ADJUST, "DC1", -3, NULL), ATP_OK);
	cr_assert_eq(apply(ATP_EV_ADJUST, "DC1", 1, NULL), ATP_OK);
	cr_assert_eq(p("DC1")->on_hand, 8);
}

Test(events, count_sets_on_hand_and_records_the_variance)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	cr_assert_eq(apply(ATP_EV_COUNT, "DC1", 7, NULL), ATP_OK);
	cr_assert_eq(r.variance, -3);
	cr_assert_eq(p("DC1")->on_hand, 7);
	apply(ATP_EV_COUNT, "DC1", 9, NULL);
	cr_assert_eq(r.variance, 2);
	cr_assert_eq(atp_core_stats_get(c)->count_variance_abs, 5);
}

Test(events, count_below_reservations_reports_them_short)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	apply(ATP_EV_RESERVE, "DC1", 8, "SO-1");
	apply(ATP_EV_COUNT, "DC1", 5, NULL);
	cr_assert(r.flags & ATP_RF_SHORT);
	cr_assert_eq(atp_position_atp(p("DC1")), 0);
	cr_assert_eq(p("DC1")->reserved, 8, "a count never cancels a reservation");
}

Test(events, hold_takes_at_most_the_free_stock)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	cr_assert_eq(apply(ATP_EV_HOLD, "DC1", 4, NULL), ATP_OK);
	cr_assert_eq(r.moved, 4);
	cr_assert_eq(apply(ATP_EV_HOLD, "DC1", 20, NULL), ATP_OK);
	cr_assert_eq(r.moved, 6);
	cr_assert(r.flags & ATP_RF_CLAMPED);
	cr_assert_eq(p("DC1")->held, 10);
	cr_assert_eq(atp_position_atp(p("DC1")), 0);
}

Test(events, hold_on_negative_stock_moves_nothing)
{
	apply(ATP_EV_PICK, "DC1", 3, NULL);
	apply(ATP_EV_HOLD, "DC1", 2, NULL);
	cr_assert_eq(r.moved, 0);
	cr_assert_eq(p("DC1")->held, 0);
}

Test(events, unhold_releases_at_most_what_is_held)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	apply(ATP_EV_HOLD, "DC1", 4, NULL);
	cr_assert_eq(apply(ATP_EV_UNHOLD, "DC1", 3, NULL), ATP_OK);
	cr_assert_eq(p("DC1")->held, 1);
	cr_assert_eq(apply(ATP_EV_UNHOLD, "DC1", 5, NULL), ATP_OK);
	cr_assert_eq(r.moved, 1);
	cr_assert(r.flags & ATP_RF_CLAMPED);
	cr_assert_eq(p("DC1")->held, 0);
}

Test(events, transfer_moves_on_hand_atomically)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	atp_event ev = ev_of(ATP_EV_TRANSFER, ++seq, "SKU1", "DC1", 4);
	ev.to_location = S("ST2");
	cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_OK);
	cr_assert_eq(p("DC1")->on_hand, 6);
	cr_assert_eq(p("ST2")->on_hand, 4, "the target position is created");
	cr_assert_eq(r.n_deltas, 2);
	cr_assert_eq(r.deltas[0].new_atp, 6);
	cr_assert_eq(r.deltas[1].new_atp, 4);
}

Test(events, transfer_to_the_same_location_is_refused)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	atp_event ev = ev_of(ATP_EV_TRANSFER, ++seq, "SKU1", "DC1", 4);
	ev.to_location = S("DC1");
	cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_E_TO_LOCATION);
	ev.to_location = (atp_str){ 0 };
	cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_E_TO_LOCATION);
	cr_assert_eq(p("DC1")->on_hand, 10);
}

Test(events, safety_stock_is_kept_back_from_atp)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	cr_assert_eq(apply(ATP_EV_SAFETY, "DC1", 3, NULL), ATP_OK);
	cr_assert_eq(atp_position_atp(p("DC1")), 7);
	apply(ATP_EV_SAFETY, "DC1", 0, NULL);
	cr_assert_eq(atp_position_atp(p("DC1")), 10);
}

Test(events, atp_is_never_negative)
{
	apply(ATP_EV_SAFETY, "DC1", 5, NULL);
	apply(ATP_EV_RECEIPT, "DC1", 2, NULL);
	cr_assert_eq(atp_position_atp(p("DC1")), 0);
}

Test(events, reserve_is_all_or_nothing_by_default)
{
	apply(ATP_EV_RECEIPT, "DC1", 5, NULL);
	cr_assert_eq(apply(ATP_EV_RESERVE, "DC1", 6, "SO-1"), ATP_OK);
	cr_assert_eq(r.confirmed, 0);
	cr_assert_eq(p("DC1")->reserved, 0);
	cr_assert_eq(atp_core_find_line(c, S("SO-1"), S("SKU1"), S("DC1"))->state, ATP_LINE_UNFILLED);
	cr_assert_eq(apply(ATP_EV_RESERVE, "DC1", 5, "SO-2"), ATP_OK);
	cr_assert_eq(r.confirmed, 5);
	cr_assert_eq(atp_position_atp(p("DC1")), 0);
}

Test(events, reserve_with_partial_allowed_confirms_what_atp_covers)
{
	apply(ATP_EV_RECEIPT, "DC1", 5, NULL);
	atp_event ev = ev_ref(ATP_EV_RESERVE, ++seq, "SKU1", "DC1", 8, "SO-1");
	ev.flags = ATP_EVF_PARTIAL;
	cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_OK);
	cr_assert_eq(r.confirmed, 5);
	cr_assert(r.flags & ATP_RF_PARTIAL);
	cr_assert_eq(p("DC1")->reserved, 5);
}

Test(events, reserve_of_a_known_position_never_creates_one)
{
	atp_event ev = ev_ref(ATP_EV_RESERVE, ++seq, "SKU1", "DC1", 1, "SO-1");
	ev.flags = ATP_EVF_RELEASABLE | ATP_EVF_KNOWN;  /* as the gRPC Reserve sends it */
	cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_E_NO_POSITION);
	cr_assert_null(p("DC1"), "no position created");
	cr_assert_null(atp_core_find_line(c, S("SO-1"), S("SKU1"), S("DC1")), "no line");
	cr_assert_eq(atp_core_stats_get(c)->refused, 1);
	seq--;  /* the refusal took no seq: the next event takes it */
	cr_assert_eq(apply(ATP_EV_RECEIPT, "DC1", 5, NULL), ATP_OK);
	ev.seq = ++seq;
	atp_event batch[1] = { ev };
	atp_result res[1];
	atp_core_apply_batch(c, batch, 1, res);  /* the batch path decides it alike */
	cr_assert_eq(res[0].status, ATP_OK);
	cr_assert_eq(res[0].confirmed, 1);
	cr_assert_eq(p("DC1")->reserved, 1);
	ev = ev_ref(ATP_EV_RESERVE, ++seq, "SKU1", "DC2", 1, "SO-2");
	ev.flags = ATP_EVF_KNOWN;
	batch[0] = ev;
	atp_core_apply_batch(c, batch, 1, res);
	cr_assert_eq(res[0].status, ATP_E_NO_POSITION, "the batch path refuses alike");
	cr_assert_null(p("DC2"));
}

Test(events, reserve_never_takes_held_or_safety_stock)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	apply(ATP_EV_HOLD, "DC1", 3, NULL);
	apply(ATP_EV_SAFETY, "DC1", 2, NULL);
	apply(ATP_EV_RESERVE, "DC1", 6, "SO-1");
	cr_assert_eq(r.confirmed, 0);
	apply(ATP_EV_RESERVE, "DC1", 5, "SO-2");
	cr_assert_eq(r.confirmed, 5);
}

Test(events, reservation_retried_under_a_new_seq_answers_the_first_result)
{
	apply(ATP_EV_RECEIPT, "DC1", 5, NULL);
	apply(ATP_EV_RESERVE, "DC1", 3, "SO-1");
	cr_assert_eq(apply(ATP_EV_RESERVE, "DC1", 3, "SO-1"), ATP_OK);
	cr_assert_eq(r.confirmed, 3);
	cr_assert(r.flags & ATP_RF_REPLAYED);
	cr_assert_eq(p("DC1")->reserved, 3, "reserved once");
	cr_assert_eq(atp_core_hwm(c, S("wms")), seq, "the retry's seq is consumed");
	cr_assert_eq(apply(ATP_EV_RESERVE, "DC1", 4, "SO-1"), ATP_OK);
	cr_assert_eq(r.confirmed, 3);
	cr_assert(r.flags & ATP_RF_MISMATCH);
	cr_assert_eq(atp_core_stats_get(c)->reserve_replayed, 2);
}

Test(events, unfilled_reservation_retried_stays_unfilled)
{
	apply(ATP_EV_RESERVE, "DC1", 3, "SO-1");
	cr_assert_eq(r.confirmed, 0);
	apply(ATP_EV_RECEIPT, "DC1", 5, NULL);
	apply(ATP_EV_RESERVE, "DC1", 3, "SO-1");
	cr_assert_eq(r.confirmed, 0, "the id is the idempotency key: the first answer stands");
	cr_assert_eq(p("DC1")->reserved, 0);
}

Test(events, release_returns_the_remaining_quantity)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	apply(ATP_EV_RESERVE, "DC1", 6, "SO-1");
	apply(ATP_EV_PICK, "DC1", 2, "SO-1");
	cr_assert_eq(apply(ATP_EV_RELEASE, "DC1", 0, "SO-1"), ATP_OK);
	cr_assert_eq(r.moved, 4);
	cr_assert_eq(p("DC1")->reserved, 0);
	cr_assert_eq(atp_position_atp(p("DC1")), 8);
}

Test(events, release_twice_releases_once)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	apply(ATP_EV_RESERVE, "DC1", 6, "SO-1");
	apply(ATP_EV_RELEASE, "DC1", 0, "SO-1");
	cr_assert_eq(apply(ATP_EV_RELEASE, "DC1", 0, "SO-1"), ATP_OK);
	cr_assert_eq(r.moved, 0);
	cr_assert(r.flags & ATP_RF_NO_LINE);
	cr_assert_eq(p("DC1")->reserved, 0);
	cr_assert_eq(atp_core_stats_get(c)->units_released, 6);
}

Test(events, release_of_an_unknown_line_changes_nothing)
{
	cr_assert_eq(apply(ATP_EV_RELEASE, "DC9", 0, "SO-1"), ATP_OK);
	cr_assert(r.flags & ATP_RF_NO_LINE);
	cr_assert_null(p("DC9"), "a release does not create a position");
	cr_assert_eq(atp_core_hwm(c, S("wms")), 1);
}

Test(events, deltas_off_carry_none_but_are_counted)
{
	atp_core_set_deltas(c, false);
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	cr_assert_eq(r.n_deltas, 0);
	cr_assert_eq(atp_core_stats_get(c)->deltas, 1);
	cr_assert_eq(p("DC1")->on_hand, 10, "the event is applied all the same");
	atp_core_set_deltas(c, true);
	apply(ATP_EV_RECEIPT, "DC1", 5, NULL);
	cr_assert_eq(r.n_deltas, 1);
	cr_assert_eq(r.deltas[0].new_atp, 15);
	cr_assert_eq(atp_core_stats_get(c)->deltas, 2);
}

Test(events, delta_carries_atp_version_and_cause)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	cr_assert_eq(r.n_deltas, 1);
	cr_assert_eq(r.deltas[0].old_atp, 0);
	cr_assert_eq(r.deltas[0].new_atp, 10);
	cr_assert_eq(r.deltas[0].version, 1);
	cr_assert_eq(r.deltas[0].seq, seq);
	cr_assert_str_eq(atp_sources_get(atp_core_sources(c), r.deltas[0].source)->name, "wms");
	cr_assert_eq(r.deltas[0].sku.len, 4);
	cr_assert_eq(memcmp(r.deltas[0].location.ptr, "DC1", 3), 0);
}

Test(events, no_delta_when_atp_does_not_change)
{
	apply(ATP_EV_RECEIPT, "DC1", 10, NULL);
	apply(ATP_EV_RESERVE, "DC1", 4, "SO-1");
	apply(ATP_EV_PICK, "DC1", 4, "SO-1");
	cr_assert_eq(r.n_deltas, 0, "a pick of reserved stock moves on_hand and reserved together");
	cr_assert_eq(p("DC1")->version, 3, "but the position did change");
	apply(ATP_EV_PICK, "DC1", 10, NULL);
	apply(ATP_EV_ADJUST, "DC1", -1, NULL);
	cr_assert_eq(r.n_deltas, 0, "ATP was 0 and stays 0");
}

/* A RESERVE whose line a RELEASE of the whole reservation can find (as the gRPC Reserve makes them). */
static int reserve_releasable(const char *loc, int64_t qty, const char *ref)
{
	atp_event ev = ev_ref(ATP_EV_RESERVE, ++seq, "SKU1", loc, qty, ref);
	ev.flags = ATP_EVF_RELEASABLE;
	return atp_core_apply(c, &ev, &r);
}

Test(events, release_of_a_whole_reservation_leaves_lines_not_marked_releasable)
{
	cr_assert_eq(apply(ATP_EV_RECEIPT, "DC1", 10, NULL), ATP_OK);
	cr_assert_eq(apply(ATP_EV_RESERVE, "DC1", 4, "WMS-1"), ATP_OK);
	atp_event all = { .event_id = 1, .seq = ++seq, .type = ATP_EV_RELEASE, .source = S("wms"), .ref = S("WMS-1") };
	cr_assert_eq(atp_core_apply(c, &all, &r), ATP_OK);
	cr_assert(r.flags & ATP_RF_NO_LINE, "a line reserved by a plain event is released by its own RELEASE");
	cr_assert_eq(p("DC1")->reserved, 4);
	cr_assert_eq(apply(ATP_EV_RELEASE, "DC1", 0, "WMS-1"), ATP_OK);
	cr_assert_eq(p("DC1")->reserved, 0);
}

/* A RELEASE without sku and location: every open line of the reservation, at most two per event. */
Test(events, release_of_a_whole_reservation_takes_every_open_line_two_at_a_time)
{
	const char *locs[] = { "DC1", "DC2", "DC3" };
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(apply(ATP_EV_RECEIPT, locs[i], 10, NULL), ATP_OK);
		cr_assert_eq(reserve_releasable(locs[i], 4, "ORD-9"), ATP_OK);
	}
	cr_assert_eq(reserve_releasable("DC1", 1, "ORD-OTHER"), ATP_OK);
	cr_assert_eq(apply(ATP_EV_PICK, "DC3", 4, "ORD-9"), ATP_OK, "DC3's line is consumed: not open any more");
	atp_event all = ev_ref(ATP_EV_RELEASE, ++seq, "", "", 0, "ORD-9");
	all.sku = all.location = (atp_str){ 0 };
	cr_assert_eq(atp_event_validate(&all), ATP_OK);
	cr_assert_eq(atp_core_apply(c, &all, &r), ATP_OK);
	cr_assert_eq(r.moved, 8);
	cr_assert_eq(r.n_deltas, 2, "one delta per position whose ATP changed");
	cr_assert_eq(r.flags & (ATP_RF_MORE | ATP_RF_NO_LINE), 0);
	cr_assert_eq(p("DC1")->reserved, 1, "the other reservation stays");
	cr_assert_eq(p("DC2")->reserved, 0);
	all.seq = all.event_id = ++seq;
	cr_assert_eq(atp_core_apply(c, &all, &r), ATP_OK);
	cr_assert_eq(r.moved, 0);
	cr_assert(r.flags & ATP_RF_NO_LINE, "released twice: nothing left");
	cr_assert_eq(atp_core_stats_get(c)->units_released, 8);
}

Test(events, release_of_a_whole_reservation_says_when_lines_remain)
{
	const char *locs[] = { "L1", "L2", "L3", "L4", "L5" };
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(apply(ATP_EV_RECEIPT, locs[i], 3, NULL), ATP_OK);
		cr_assert_eq(reserve_releasable(locs[i], 2, "BIG"), ATP_OK);
	}
	atp_event all = { .event_id = 1, .type = ATP_EV_RELEASE, .source = S("wms"), .ref = S("BIG") };
	int64_t released = 0;
	int rounds = 0;
	do {
		all.seq = ++seq;
		cr_assert_eq(atp_core_apply(c, &all, &r), ATP_OK);
		released += r.moved;
		rounds++;
	} while (r.flags & ATP_RF_MORE);
	cr_assert_eq(rounds, 3);
	cr_assert_eq(released, 10);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(p(locs[i])->reserved, 0);
	cr_assert_eq(atp_lines_open_count(atp_core_lines(c)), 0);
}
