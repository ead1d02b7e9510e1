/* Capacity limits and bad input: a distinct code, and the state untouched. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>

static char long_str[200];

static void fill(void)
{
	memset(long_str, 'x', sizeof(long_str) - 1);
}

/* Apply ev to a fresh core; expect code and a core with nothing in it. */
static void expect_refused(atp_event ev, int code)
{
	atp_core *c = small_core(8, 8, 4);
	atp_result r;
	cr_assert_eq(atp_core_apply(c, &ev, &r), code, "got %s, expected %s", atp_status_name(r.status),
		     atp_status_name(code));
	cr_assert_eq(atp_table_count(atp_core_table(c)), 0);
	cr_assert_eq(atp_sources_count(atp_core_sources(c)), 0);
	cr_assert_eq(atp_lines_count(atp_core_lines(c)), 0);
	cr_assert_eq(atp_core_stats_get(c)->refused, 1);
	cr_assert_str_neq(atp_status_message(code), "unknown status");
	atp_core_destroy(c);
}

TestSuite(bad_input, .init = fill);

Test(bad_input, unknown_type)
{
	atp_event ev = ev_of(ATP_EV_RECEIPT, 1, "S", "L", 1);
	ev.type = 0;
	expect_refused(ev, ATP_E_TYPE);
	ev.type = ATP_EV_TYPE_COUNT;
	expect_refused(ev, ATP_E_TYPE);
	ev.type = 200;
	expect_refused(ev, ATP_E_TYPE);
}

Test(bad_input, qty_sign_per_type)
{
	expect_refused(ev_of(ATP_EV_RECEIPT, 1, "S", "L", 0), ATP_E_QTY);
	expect_refused(ev_of(ATP_EV_RECEIPT, 1, "S", "L", -1), ATP_E_QTY);
	expect_refused(ev_of(ATP_EV_PICK, 1, "S", "L", -1), ATP_E_QTY);
	expect_refused(ev_of(ATP_EV_ADJUST, 1, "S", "L", 0), ATP_E_QTY);
	expect_refused(ev_of(ATP_EV_COUNT, 1, "S", "L", -1), ATP_E_QTY);
	expect_refused(ev_of(ATP_EV_HOLD, 1, "S", "L", 0), ATP_E_QTY);
	expect_refused(ev_of(ATP_EV_UNHOLD, 1, "S", "L", -2), ATP_E_QTY);
	expect_refused(ev_of(ATP_EV_SAFETY, 1, "S", "L", -1), ATP_E_QTY);
	expect_refused(ev_ref(ATP_EV_RESERVE, 1, "S", "L", 0, "R"), ATP_E_QTY);
	expect_refused(ev_of(ATP_EV_RECEIPT, 1, "S", "L", ATP_QTY_MAX + 1), ATP_E_QTY);
	expect_refused(ev_of(ATP_EV_ADJUST, 1, "S", "L", -ATP_QTY_MAX - 1), ATP_E_QTY);
}

Test(bad_input, over_long_strings)
{
	atp_event ev = ev_of(ATP_EV_RECEIPT, 1, "S", "L", 1);
	ev.sku = atp_str_of(long_str, ATP_SKU_MAX + 1);
	expect_refused(ev, ATP_E_SKU);
	ev = ev_of(ATP_EV_RECEIPT, 1, "S", "L", 1);
	ev.location = atp_str_of(long_str, ATP_LOC_MAX + 1);
	expect_refused(ev, ATP_E_LOCATION);
	ev = ev_of(ATP_EV_RECEIPT, 1, "S", "L", 1);
	ev.source = atp_str_of(long_str, ATP_SOURCE_MAX + 1);
	expect_refused(ev, ATP_E_SOURCE);
	expect_refused(ev_ref(ATP_EV_RESERVE, 1, "S", "L", 1, long_str), ATP_E_REF);
	ev = ev_of(ATP_EV_ADJUST, 1, "S", "L", 1);
	ev.reason = atp_str_of(long_str, ATP_REASON_MAX + 1);
	expect_refused(ev, ATP_E_REASON);
}

Test(bad_input, strings_at_their_limit_are_accepted)
{
	atp_core *c = small_core(8, 8, 4);
	atp_result r;
	atp_event ev = ev_ref(ATP_EV_RESERVE, 1, "S", "L", 1, "R");
	ev.sku = atp_str_of(long_str, ATP_SKU_MAX);
	ev.location = atp_str_of(long_str, ATP_LOC_MAX);
	ev.source = atp_str_of(long_str, ATP_SOURCE_MAX);
	ev.ref = atp_str_of(long_str, ATP_REF_MAX);
	ev.event_id = 0;
	ev.event_key = atp_str_of(long_str, ATP_EVENT_KEY_MAX);
	cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_OK);
	cr_assert_eq(strlen(atp_table_sku(atp_core_table(c), 0)), ATP_SKU_MAX);
	atp_core_destroy(c);
}

Test(bad_input, missing_fields)
{
	atp_event ev = ev_of(ATP_EV_RECEIPT, 1, "S", "L", 1);
	ev.sku = (atp_str){ 0 };
	expect_refused(ev, ATP_E_SKU);
	ev = ev_of(ATP_EV_RECEIPT, 1, "S", "L", 1);
	ev.location = (atp_str){ 0 };
	expect_refused(ev, ATP_E_LOCATION);
	ev = ev_of(ATP_EV_RECEIPT, 1, "S", "L", 1);
	ev.source = (atp_str){ 0 };
	expect_refused(ev, ATP_E_SOURCE);
	ev = ev_of(ATP_EV_RECEIPT, 1, "S", "L", 1);
	ev.event_id = 0;
	expect_refused(ev, ATP_E_EVENT_ID);
	ev.event_key = atp_str_of(long_str, ATP_EVENT_KEY_MAX + 1);
	expect_refused(ev, ATP_E_EVENT_ID);
	ev.event_key = atp_str_of("E\x01", 2);
	expect_refused(ev, ATP_E_EVENT_ID);
	ev.event_key = atp_str_of("E000118075", 10);
	ev.event_id = 9;
	expect_refused(ev, ATP_E_EVENT_ID); /* both: which is the id? */
	expect_refused(ev_of(ATP_EV_RESERVE, 1, "S", "L", 1), ATP_E_REF);
	expect_refused(ev_of(ATP_EV_RELEASE, 1, "S", "L", 1), ATP_E_REF);
	ev = ev_of(ATP_EV_ADJUST, 1, "S", "L", 1);
	ev.reason = (atp_str){ 0 };
	expect_refused(ev, ATP_E_REASON);
	expect_refused(ev_of(ATP_EV_TRANSFER, 1, "S", "L", 1), ATP_E_TO_LOCATION);
}

Test(bad_input, control_bytes_in_strings)
{
	atp_event ev = ev_of(ATP_EV_RECEIPT, 1, "S", "L", 1);
	ev.sku = atp_str_of("A\nB", 3);
	expect_refused(ev, ATP_E_SKU);
	ev = ev_of(ATP_EV_RECEIPT, 1, "S", "L", 1);
	ev.location = atp_str_of("A\0B", 3);
	expect_refused(ev, ATP_E_LOCATION);
	ev = ev_of(ATP_EV_RECEIPT, 1, "S", "L", 1);
	ev.source = atp_str_of("w\x7f", 2);
	expect_refused(ev, ATP_E_SOURCE);
}

/*
 * A ref's bytes are checked when it names no line yet, whatever else is
 * known: the source and the position here are, and the refusal leaves
 * them as they were.
 */
Test(bad_input, control_bytes_in_a_ref_at_a_known_position)
{
	atp_core *c = small_core(8, 8, 4);
	atp_result r;
	atp_event ev = ev_of(ATP_EV_RECEIPT, 1, "S", "L", 10);
	cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_OK);
	atp_event bad[] = { ev_ref(ATP_EV_RESERVE, 2, "S", "L", 1, "A\x01B"),
			    ev_ref(ATP_EV_PICK, 2, "S", "L", 1, "A\x7f"),
			    ev_ref(ATP_EV_RELEASE, 2, "S", "L", 0, "\tA") };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(atp_core_apply(c, &bad[i], &r), ATP_E_REF, "%s", atp_event_type_name(bad[i].type));
		atp_core_apply_batch(c, &bad[i], 1, &r);
		cr_assert_eq(r.status, ATP_E_REF, "%s in a batch", atp_event_type_name(bad[i].type));
	}
	const atp_position *p = pos_of(c, "S", "L");
	cr_assert(p->on_hand == 10 && p->reserved == 0 && p->version == 1);
	cr_assert_eq(atp_core_hwm(c, S("wms")), 1);
	cr_assert_eq(atp_lines_count(atp_core_lines(c)), 0);
	cr_assert_eq(atp_core_stats_get(c)->refused, 6);
	atp_core_destroy(c);
}

/*
 * Events of type and ATP_QTY_MAX to S/L until one is refused, or one past
 * the count that takes a bucket across ATP_BUCKET_MAX; the last one's code.
 */
static int apply_until_refused(atp_core *c, uint8_t type, uint64_t *seq)
{
	atp_result r;
	int rc;
	do {
		atp_event ev = ev_of(type, ++*seq, "S", "L", ATP_QTY_MAX);
		rc = atp_core_apply(c, &ev, &r);
	} while (rc == ATP_OK && *seq <= ATP_BUCKET_MAX / ATP_QTY_MAX + 1);
	return rc;
}

/* Receipts of ATP_QTY_MAX into S/loc while the next one still fits under ATP_BUCKET_MAX. */
static void receive_to_the_top(atp_core *c, const char *loc, uint64_t *seq)
{
	atp_result r;
	while (pos_of(c, "S", loc) == NULL || pos_of(c, "S", loc)->on_hand + ATP_QTY_MAX <= ATP_BUCKET_MAX) {
		atp_event ev = ev_of(ATP_EV_RECEIPT, ++*seq, "S", loc, ATP_QTY_MAX);
		cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_OK);
	}
}

Test(limits, bucket_overflow_is_refused_whole)
{
	atp_core *c = small_core(8, 8, 4);
	uint64_t seq = 0;
	/* Receipts of ATP_QTY_MAX until the next would pass ATP_BUCKET_MAX. */
	int rc = apply_until_refused(c, ATP_EV_RECEIPT, &seq);
	cr_assert_eq(rc, ATP_E_OVERFLOW);
	cr_assert_leq(pos_of(c, "S", "L")->on_hand, ATP_BUCKET_MAX);
	cr_assert_eq(atp_core_hwm(c, S("wms")), seq - 1);
	atp_core_destroy(c);
}

Test(limits, picks_past_the_negative_bound_are_refused_whole)
{
	atp_core *c = small_core(8, 8, 4);
	uint64_t seq = 0;
	int rc = apply_until_refused(c, ATP_EV_PICK, &seq);
	cr_assert_eq(rc, ATP_E_OVERFLOW);
	cr_assert_geq(pos_of(c, "S", "L")->on_hand, -ATP_BUCKET_MAX);
	cr_assert_lt(pos_of(c, "S", "L")->on_hand - ATP_QTY_MAX, -ATP_BUCKET_MAX, "refused only past the bound");
	cr_assert_eq(atp_core_hwm(c, S("wms")), seq - 1);
	atp_core_destroy(c);
}

/*
 * RESERVE skips the bounds check (it adds at most the ATP): with on_hand
 * at the top of the bucket and nearly all of it held, partial reserves
 * take the last units and reserved never passes what is free.
 */
Test(limits, reserves_at_the_top_of_the_bucket_stay_in_bounds)
{
	atp_core *c = small_core(8, 64, 4);
	atp_result r;
	uint64_t seq = 0;
	receive_to_the_top(c, "L", &seq);
	atp_event top = ev_of(ATP_EV_RECEIPT, ++seq, "S", "L", ATP_QTY_MAX / 4); /* the free units no multiple of a reserve */
	cr_assert_eq(atp_core_apply(c, &top, &r), ATP_OK);
	while (pos_of(c, "S", "L")->on_hand - pos_of(c, "S", "L")->held > 3 * ATP_QTY_MAX + ATP_QTY_MAX / 2) {
		atp_event ev = ev_of(ATP_EV_HOLD, ++seq, "S", "L", ATP_QTY_MAX);
		cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_OK);
	}
	char ref[16];
	uint64_t oms = 0;
	int partial = 0;
	for (int i = 0; i < 6; i++) {
		atp_event ev = ev_of(ATP_EV_RESERVE, ++oms, "S", "L", ATP_QTY_MAX);
		ev.source = S("oms");
		ev.flags = ATP_EVF_PARTIAL;
		snprintf(ref, sizeof(ref), "R%d", i);
		ev.ref = S(ref);
		cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_OK);
		partial += (r.flags & ATP_RF_PARTIAL) != 0;
		const atp_position *p = pos_of(c, "S", "L");
		cr_assert_leq(p->reserved, p->on_hand - p->held - p->safety_stock, "reserve %d", i);
	}
	const atp_position *p = pos_of(c, "S", "L");
	cr_assert_gt(p->on_hand, ATP_BUCKET_MAX - ATP_QTY_MAX);
	cr_assert_eq(p->reserved + p->held, p->on_hand, "the last units were taken");
	cr_assert_eq(partial, 1);
	atp_core_destroy(c);
}

Test(limits, transfer_overflowing_its_target_changes_neither_side)
{
	atp_core *c = small_core(8, 8, 4);
	atp_result r;
	uint64_t seq = 0;
	receive_to_the_top(c, "B", &seq);
	atp_event ev = ev_of(ATP_EV_RECEIPT, ++seq, "S", "A", ATP_QTY_MAX);
	atp_core_apply(c, &ev, &r);
	int64_t a = pos_of(c, "S", "A")->on_hand, b = pos_of(c, "S", "B")->on_hand;
	ev = ev_of(ATP_EV_TRANSFER, ++seq, "S", "A", ATP_QTY_MAX);
	ev.to_location = S("B");
	cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_E_OVERFLOW);
	cr_assert_eq(pos_of(c, "S", "A")->on_hand, a);
	cr_assert_eq(pos_of(c, "S", "B")->on_hand, b);
	atp_core_destroy(c);
}

Test(limits, position_capacity)
{
	atp_core *c = small_core(2, 8, 4);
	atp_result r;
	atp_event a = ev_of(ATP_EV_RECEIPT, 1, "S1", "L", 1), b = ev_of(ATP_EV_RECEIPT, 2, "S2", "L", 1),
		  x = ev_of(ATP_EV_RECEIPT, 3, "S3", "L", 1);
	cr_assert_eq(atp_core_apply(c, &a, &r), ATP_OK);
	cr_assert_eq(atp_core_apply(c, &b, &r), ATP_OK);
	cr_assert_eq(atp_core_apply(c, &x, &r), ATP_E_POSITIONS_FULL);
	cr_assert_eq(atp_core_hwm(c, S("wms")), 2);
	x.sku = S("S1");
	cr_assert_eq(atp_core_apply(c, &x, &r), ATP_OK, "existing positions still take events");
	atp_core_destroy(c);
}

Test(limits, transfer_needing_two_new_positions_is_refused_whole)
{
	atp_core *c = small_core(2, 8, 4);
	atp_result r;
	atp_event a = ev_of(ATP_EV_RECEIPT, 1, "S1", "L", 1);
	atp_core_apply(c, &a, &r);
	atp_event t = ev_of(ATP_EV_TRANSFER, 2, "S2", "A", 1);
	t.to_location = S("B");
	cr_assert_eq(atp_core_apply(c, &t, &r), ATP_E_POSITIONS_FULL);
	cr_assert_eq(atp_table_count(atp_core_table(c)), 1, "no half-created transfer");
	atp_core_destroy(c);
}

Test(limits, reservation_line_capacity)
{
	atp_core *c = small_core(8, 2, 4);
	atp_result r;
	atp_event ev = ev_of(ATP_EV_RECEIPT, 1, "S", "L", 100);
	atp_core_apply(c, &ev, &r);
	atp_event r1 = ev_ref(ATP_EV_RESERVE, 2, "S", "L", 1, "A"), r2 = ev_ref(ATP_EV_RESERVE, 3, "S", "L", 1, "B"),
		  r3 = ev_ref(ATP_EV_RESERVE, 4, "S", "L", 1, "C");
	cr_assert_eq(atp_core_apply(c, &r1, &r), ATP_OK);
	cr_assert_eq(atp_core_apply(c, &r2, &r), ATP_OK);
	cr_assert_eq(atp_core_apply(c, &r3, &r), ATP_E_LINES_FULL);
	cr_assert_eq(pos_of(c, "S", "L")->reserved, 2);
	r3.ref = S("A");
	cr_assert_eq(atp_core_apply(c, &r3, &r), ATP_OK, "a retry needs no new line");
	cr_assert(r.flags & ATP_RF_REPLAYED);
	atp_core_destroy(c);
}

Test(limits, source_capacity)
{
	atp_core *c = small_core(8, 8, 1);
	atp_result r;
	atp_event a = ev_of(ATP_EV_RECEIPT, 1, "S", "L", 1);
	cr_assert_eq(atp_core_apply(c, &a, &r), ATP_OK);
	a.source = S("other");
	cr_assert_eq(atp_core_apply(c, &a, &r), ATP_E_SOURCES_FULL);
	cr_assert_eq(pos_of(c, "S", "L")->on_hand, 1);
	atp_core_destroy(c);
}

Test(limits, create_refuses_bad_capacities)
{
	atp_core_config cfg = atp_core_config_default();
	cfg.max_positions = 0;
	cr_assert_null(atp_core_create(&cfg));
	cfg = atp_core_config_default();
	cfg.max_positions = ATP_TABLE_CAPACITY_MAX + 1;
	cr_assert_null(atp_core_create(&cfg));
	cfg = atp_core_config_default();
	cfg.max_lines = 0;
	cr_assert_null(atp_core_create(&cfg));
}
