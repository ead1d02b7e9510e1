/* The position table, the line store and the source table on their own. */
#include "atp/lines.h"
#include "atp/sources.h"
#include "atp/table.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>

static uint64_t H(atp_str sku, atp_str loc)
{
	return atp_position_hash(atp_sku_hash(sku), loc);
}

Test(table, interns_to_dense_ids_and_finds_them_again)
{
	atp_table *t = atp_table_create(1000);
	char sku[16], loc[16];
	for (uint32_t i = 0; i < 1000; i++) {
		snprintf(sku, sizeof(sku), "SKU%u", i / 4);
		snprintf(loc, sizeof(loc), "L%u", i % 4);
		atp_str k = S(sku), l = S(loc);
		cr_assert_eq(atp_table_intern(t, H(k, l), k, l), i);
	}
	cr_assert_eq(atp_table_count(t), 1000);
	for (uint32_t i = 0; i < 1000; i++) {
		snprintf(sku, sizeof(sku), "SKU%u", i / 4);
		snprintf(loc, sizeof(loc), "L%u", i % 4);
		atp_str k = S(sku), l = S(loc);
		cr_assert_eq(atp_table_find(t, H(k, l), k, l), i);
		cr_assert_eq(atp_table_intern(t, H(k, l), k, l), i, "interning twice gives the same id");
		cr_assert_str_eq(atp_table_sku(t, i), sku);
		cr_assert_str_eq(atp_table_location(t, i), loc);
	}
	atp_str k = S("SKU1"), l = S("L9");
	cr_assert_eq(atp_table_find(t, H(k, l), k, l), ATP_POS_NONE);
	cr_assert_eq(atp_table_intern(t, H(k, l), k, l), ATP_POS_NONE, "full");
	atp_table_destroy(t);
}

Test(table, keys_differ_by_their_split_not_just_their_bytes)
{
	atp_table *t = atp_table_create(4);
	atp_str a = S("AB"), b = S("C"), x = S("A"), y = S("BC");
	uint32_t i = atp_table_intern(t, H(a, b), a, b);
	uint32_t j = atp_table_intern(t, H(x, y), x, y);
	cr_assert_neq(i, j);
	atp_table_destroy(t);
}

Test(table, colliding_hashes_are_told_apart_by_their_keys)
{
	atp_table *t = atp_table_create(64);
	char loc[8];
	/* One hash for all: every lookup walks the whole cluster and compares keys. */
	atp_str k = S("SKU");
	for (int i = 0; i < 64; i++) {
		snprintf(loc, sizeof(loc), "%d", i);
		cr_assert_eq(atp_table_intern(t, 42, k, S(loc)), (uint32_t)i);
	}
	for (int i = 0; i < 64; i++) {
		snprintf(loc, sizeof(loc), "%d", i);
		cr_assert_eq(atp_table_find(t, 42, k, S(loc)), (uint32_t)i);
	}
	atp_table_destroy(t);
}

Test(lines, purge_keeps_every_other_line_findable)
{
	/* Lines added and purged in waves: after each purge the model and the store agree. */
	enum { N = 512 };
	atp_lines *l = atp_lines_create(N);
	char ref[16];
	bool present[4 * N] = { false };
	uint64_t now = 0;
	for (int wave = 0; wave < 4; wave++) {
		for (int i = wave * N; i < wave * N + N / 2 + wave * 50; i++) {
			snprintf(ref, sizeof(ref), "R%d", i);
			uint32_t id = atp_lines_add(l, atp_line_hash(S(ref), (uint64_t)(i % 7)), S(ref), (uint32_t)(i % 7));
			cr_assert_neq(id, ATP_LINE_NONE);
			atp_lines_at(l, id)->remaining = 0;
			atp_lines_close(l, id, ATP_LINE_RELEASED, ++now);
			present[i] = true;
		}
		uint64_t cut = now - 100;
		atp_lines_purge(l, cut);
		for (int i = 0; i < 4 * N; i++) {
			if (!present[i])
				continue;
			snprintf(ref, sizeof(ref), "R%d", i);
			uint32_t id = atp_lines_find(l, atp_line_hash(S(ref), (uint64_t)(i % 7)), S(ref), (uint32_t)(i % 7));
			const atp_line *ln = id == ATP_LINE_NONE ? NULL : atp_lines_get(l, id);
			bool kept = ln != NULL;
			if (kept)
				cr_assert_geq(ln->closed_at, cut);
			else
				present[i] = false;
		}
		cr_assert_eq(atp_lines_count(l), 101, "closed at now-100 .. now");
	}
	atp_lines_destroy(l);
}

Test(lines, same_ref_at_two_positions_is_two_lines)
{
	atp_lines *l = atp_lines_create(4);
	uint64_t h0 = atp_line_hash(S("SO-1"), 100), h1 = atp_line_hash(S("SO-1"), 101);
	uint32_t a = atp_lines_add(l, h0, S("SO-1"), 0), b = atp_lines_add(l, h1, S("SO-1"), 1);
	cr_assert_neq(a, b);
	cr_assert_eq(atp_lines_find(l, h1, S("SO-1"), 1), b);
	cr_assert_eq(atp_lines_find(l, h1, S("SO-1"), 2), ATP_LINE_NONE, "same hash, other position");
	atp_lines_destroy(l);
}

Test(sources, intern_find_and_capacity)
{
	atp_sources *s = atp_sources_create(2);
	cr_assert_eq(atp_sources_intern(s, S("a")), 0);
	cr_assert_eq(atp_sources_intern(s, S("b")), 1);
	cr_assert_eq(atp_sources_intern(s, S("a")), 0);
	cr_assert_eq(atp_sources_intern(s, S("c")), ATP_SOURCE_NONE);
	cr_assert_eq(atp_sources_find(s, S("b")), 1);
	cr_assert_str_eq(atp_sources_get(s, 1)->name, "b");
	atp_sources_destroy(s);
}

Test(status, every_code_has_a_name_and_a_message)
{
	for (int code = ATP_DUPLICATE; code >= ATP_E_LAST; code--) {
		cr_assert_str_neq(atp_status_name(code), "ATP_E_UNKNOWN", "code %d", code);
		cr_assert_not_null(atp_status_message(code));
	}
	cr_assert_str_eq(atp_status_name(-99), "ATP_E_UNKNOWN");
	cr_assert_str_eq(atp_status_name(ATP_E_GAP), "ATP_E_GAP");
}

Test(event, type_names_round_trip_case_insensitively)
{
	for (unsigned t = 1; t < ATP_EV_TYPE_COUNT; t++) {
		const char *n = atp_event_type_name(t);
		cr_assert_eq(atp_event_type_parse(n, strlen(n)), t);
	}
	cr_assert_eq(atp_event_type_parse("pick", 4), ATP_EV_PICK);
	cr_assert_eq(atp_event_type_parse("PICKS", 5), ATP_EV_NONE);
	cr_assert_eq(atp_event_type_parse("PIC", 3), ATP_EV_NONE);
	cr_assert_eq(atp_event_type_parse("", 0), ATP_EV_NONE);
}
