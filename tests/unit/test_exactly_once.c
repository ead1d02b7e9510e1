/* Exactly-once application per source: contiguous seqs, duplicates, gaps. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>

static atp_event from(const char *source, uint64_t seq, int64_t qty)
{
	atp_event ev = ev_of(ATP_EV_RECEIPT, seq, "SKU1", "DC1", qty);
	ev.source = S(source);
	return ev;
}

Test(exactly_once, sequences_start_at_one)
{
	atp_core *c = small_core(8, 8, 4);
	atp_result r;
	atp_event ev = from("wms", 2, 1);
	cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_E_GAP);
	cr_assert_eq(r.expected_seq, 1);
	cr_assert_null(pos_of(c, "SKU1", "DC1"));
	ev.seq = 0;
	cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_E_SEQ);
	atp_core_destroy(c);
}

Test(exactly_once, duplicate_seq_is_acknowledged_not_applied)
{
	atp_core *c = small_core(8, 8, 4);
	atp_result r;
	atp_event ev = from("wms", 1, 5);
	cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_OK);
	cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_DUPLICATE);
	cr_assert_eq(r.expected_seq, 2);
	cr_assert_eq(r.n_deltas, 0);
	cr_assert_eq(pos_of(c, "SKU1", "DC1")->on_hand, 5);
	cr_assert_eq(atp_core_stats_get(c)->duplicates, 1);
	atp_core_destroy(c);
}

Test(exactly_once, any_seq_below_the_high_water_mark_is_a_duplicate)
{
	atp_core *c = small_core(8, 8, 4);
	atp_result r;
	for (uint64_t s = 1; s <= 5; s++) {
		atp_event ev = from("wms", s, 1);
		cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_OK);
	}
	atp_event old = from("wms", 3, 100);
	cr_assert_eq(atp_core_apply(c, &old, &r), ATP_DUPLICATE, "even with other content");
	cr_assert_eq(pos_of(c, "SKU1", "DC1")->on_hand, 5);
	atp_core_destroy(c);
}

Test(exactly_once, gap_is_refused_with_the_expected_seq)
{
	atp_core *c = small_core(8, 8, 4);
	atp_result r;
	atp_event ev = from("wms", 1, 5);
	atp_core_apply(c, &ev, &r);
	ev.seq = 4;
	cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_E_GAP);
	cr_assert_eq(r.expected_seq, 2);
	cr_assert_eq(atp_core_hwm(c, S("wms")), 1, "the refusal does not move the mark");
	cr_assert_eq(pos_of(c, "SKU1", "DC1")->on_hand, 5);
	ev.seq = 2;
	cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_OK, "the sender rewinds and goes on");
	atp_core_destroy(c);
}

Test(exactly_once, sources_are_independent)
{
	atp_core *c = small_core(8, 8, 4);
	atp_result r;
	atp_event a = from("wms-a", 1, 1), b = from("wms-b", 1, 2);
	cr_assert_eq(atp_core_apply(c, &a, &r), ATP_OK);
	cr_assert_eq(atp_core_apply(c, &b, &r), ATP_OK);
	cr_assert_eq(pos_of(c, "SKU1", "DC1")->on_hand, 3);
	cr_assert_eq(atp_core_hwm(c, S("wms-a")), 1);
	cr_assert_eq(atp_core_hwm(c, S("wms-b")), 1);
	cr_assert_eq(atp_core_hwm(c, S("nobody")), 0);
	atp_core_destroy(c);
}

Test(exactly_once, a_refused_event_does_not_consume_its_seq)
{
	atp_core *c = small_core(8, 8, 4);
	atp_result r;
	atp_event bad = from("wms", 1, -5);
	cr_assert_eq(atp_core_apply(c, &bad, &r), ATP_E_QTY);
	cr_assert_eq(atp_core_hwm(c, S("wms")), 0);
	cr_assert_eq(atp_sources_count(atp_core_sources(c)), 0, "not even the source is remembered");
	atp_event good = from("wms", 1, 5);
	cr_assert_eq(atp_core_apply(c, &good, &r), ATP_OK);
	atp_core_destroy(c);
}

/* A shard's core (sparse_seq) sees some of each source's seqs: they need only increase. */
Test(exactly_once, sparse_sequences_need_only_increase)
{
	atp_core_config cfg = atp_core_config_default();
	cfg.max_positions = 8;
	cfg.max_lines = 8;
	cfg.max_sources = 4;
	cfg.sparse_seq = true;
	atp_core *c = atp_core_create(&cfg);
	atp_result r;
	atp_event ev[] = { ev_of(ATP_EV_RECEIPT, 3, "S", "L", 10), ev_ref(ATP_EV_RESERVE, 7, "S", "L", 4, "A"),
			   ev_ref(ATP_EV_PICK, 20, "S", "L", 3, "A") };
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(atp_core_apply(c, &ev[i], &r), ATP_OK, "%s", atp_event_type_name(ev[i].type));
		cr_assert_eq(r.expected_seq, ev[i].seq + 1);
	}
	cr_assert_eq(r.moved, 3);
	atp_event old = ev_ref(ATP_EV_PICK, 19, "S", "L", 1, "A"), same = ev_ref(ATP_EV_RESERVE, 20, "S", "L", 1, "B");
	cr_assert_eq(atp_core_apply(c, &old, &r), ATP_DUPLICATE);
	cr_assert_eq(r.expected_seq, 21);
	cr_assert_eq(atp_core_apply(c, &same, &r), ATP_DUPLICATE);
	const atp_position *p = pos_of(c, "S", "L");
	cr_assert(p->on_hand == 7 && p->reserved == 1);
	cr_assert_eq(atp_core_hwm(c, S("wms")), 20);
	atp_core_destroy(c);
}

Test(exactly_once, batch_apply_equals_one_by_one)
{
	atp_core *one = small_core(64, 64, 4), *batch = small_core(64, 64, 4);
	atp_event ev[40];
	atp_result r1, rb[40];
	char sku[40][8];
	for (int i = 0; i < 40; i++) {
		snprintf(sku[i], sizeof(sku[i]), "S%d", i % 7);
		ev[i] = ev_of(i % 3 ? ATP_EV_RECEIPT : ATP_EV_PICK, (uint64_t)(i < 20 ? i + 1 : i - 5), sku[i], "DC1", i + 1);
	}
	atp_core_apply_batch(batch, ev, 40, rb);
	for (int i = 0; i < 40; i++) {
		cr_assert_eq(atp_core_apply(one, &ev[i], &r1), rb[i].status, "event %d", i);
		cr_assert_eq(r1.n_deltas, rb[i].n_deltas);
	}
	for (int i = 0; i < 7; i++) {
		char s[8];
		snprintf(s, sizeof(s), "S%d", i);
		cr_assert_eq(pos_of(one, s, "DC1")->on_hand, pos_of(batch, s, "DC1")->on_hand);
	}
	atp_core_destroy(one);
	atp_core_destroy(batch);
}
