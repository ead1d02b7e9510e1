/* The position table, the line store and the source table on their own. */
#include "atp/lines.h"
#include "atp/sources.h"
#include "atp/table.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * Keys of up to 16 bytes (sku and location together) are compared in their
 * slot, longer ones in the key arena. Under one hash, keys on both sides of
 * that boundary, splitting the same bytes differently or differing only in
 * their last byte, are all told apart, found again by the writer and by a
 * reader, and keep their strings.
 */
Test(table, keys_in_the_slot_and_in_the_arena_are_told_apart_under_one_hash)
{
	enum { N = 6 * 6 * 2 };
	atp_table *t = atp_table_create(N);
	char sku[N][24], loc[N][24];
	int n = 0;
	for (int sl = 6; sl <= 11; sl++) {      /* with locations of 5 to 10 bytes: 11 to 21 bytes in all */
		for (int ll = 5; ll <= 10; ll++) {
			for (int last = 0; last < 2; last++) {
				memset(sku[n], 'S', (size_t)sl);
				sku[n][sl] = '\0';
				memset(loc[n], 'L', (size_t)ll);
				loc[n][ll] = '\0';
				loc[n][ll - 1] = last ? 'Z' : 'L';
				cr_assert_eq(atp_table_intern(t, 7, S(sku[n]), S(loc[n])), (uint32_t)n);
				n++;
			}
		}
	}
	for (int i = 0; i < n; i++) {
		cr_assert_eq(atp_table_find(t, 7, S(sku[i]), S(loc[i])), (uint32_t)i, "%s/%s", sku[i], loc[i]);
		cr_assert_str_eq(atp_table_sku(t, (uint32_t)i), sku[i]);
		cr_assert_str_eq(atp_table_location(t, (uint32_t)i), loc[i]);
		atp_position_view v;
		cr_assert(atp_table_read(t, 7, S(sku[i]), S(loc[i]), &v));
		cr_assert(atp_table_read(t, 7, S(sku[i]), S(loc[i]), NULL), "existence only: %s/%s", sku[i], loc[i]);
	}
	cr_assert_not(atp_table_read(t, 7, S("SSSSSSL"), S("LLLLLLLL"), NULL), "existence only, never interned");
	/* The same 15 bytes split two ways, in the slot: "SSSSSS" + "LLLLLLLLL" was interned, "SSSSSSL" + "LLLLLLLL" not. */
	cr_assert_eq(atp_table_find(t, 7, S("SSSSSSL"), S("LLLLLLLL")), ATP_POS_NONE);
	/* ... and 20 bytes in the arena. */
	cr_assert_eq(atp_table_find(t, 7, S("SSSSSSSSSSL"), S("LLLLLLLLL")), ATP_POS_NONE);
	cr_assert_eq(atp_table_find(t, 7, S("SSSSSS"), S("LLLLLLLLLY")), ATP_POS_NONE, "differs in its last byte");
	cr_assert_eq(atp_table_find(t, 7, S("SSSSSSSSSSS"), S("LLLLLLLLLY")), ATP_POS_NONE, "differs in its last byte");
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
			if (id == ATP_LINE_NONE)
				present[i] = false;
		}
		for (uint32_t i = 0; i < atp_lines_closed_count(l); i++)
			cr_assert_geq(atp_lines_closed_at(l, i), cut);
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

Test(table, every_location_of_a_sku_is_chained_and_readable_by_id)
{
	atp_table *t = atp_table_create(64);
	const char *rows[][2] = { { "A", "DC1" }, { "B", "DC1" }, { "A", "DC2" }, { "A", "DC3" }, { "C", "X" } };
	for (int i = 0; i < 5; i++) {
		atp_str sku = S(rows[i][0]), loc = S(rows[i][1]);
		cr_assert_eq(atp_table_intern(t, atp_position_hash(atp_sku_hash(sku), loc), sku, loc), (uint32_t)i);
	}
	cr_assert_eq(atp_table_read_published(t), 5);
	atp_table_store(t, 2, 7, 1, 2, 0);
	uint32_t seen[8], n = 0;
	for (uint32_t id = atp_table_read_sku_first(t, S("A")); id != ATP_POS_NONE; id = atp_table_read_sku_next(t, id))
		seen[n++] = id;
	cr_assert_eq(n, 3);
	cr_assert(seen[0] == 3 && seen[1] == 2 && seen[2] == 0, "newest first");
	cr_assert_eq(atp_table_read_sku_first(t, S("Z")), ATP_POS_NONE);
	cr_assert_eq(atp_table_read_sku_first(t, S("")), ATP_POS_NONE);
	atp_position_view v;
	atp_table_read_id(t, 2, &v);
	cr_assert(v.on_hand == 7 && v.held == 1 && v.reserved == 2 && v.version == 1);
	atp_table_destroy(t);
}

Test(lines, open_lines_are_found_by_their_ref_until_closed)
{
	atp_lines *l = atp_lines_create(16);
	uint32_t ids[4];
	const char *refs[] = { "R1", "R2", "R1", "R1" };
	for (uint32_t i = 0; i < 4; i++) {
		ids[i] = atp_lines_add(l, atp_line_hash(S(refs[i]), i), S(refs[i]), i);
		atp_lines_at(l, ids[i])->remaining = 1;
		atp_lines_at(l, ids[i])->releasable = 1;
		atp_lines_open(l, ids[i], 0);
	}
	uint32_t n = 0;
	for (uint32_t id = atp_lines_first_open(l, S("R1")); id != ATP_LINE_NONE; id = atp_lines_next_open(l, id))
		n++;
	cr_assert_eq(n, 3);
	atp_lines_at(l, ids[2])->remaining = 0;
	atp_lines_close(l, ids[2], ATP_LINE_RELEASED, 1);
	n = 0;
	for (uint32_t id = atp_lines_first_open(l, S("R1")); id != ATP_LINE_NONE; id = atp_lines_next_open(l, id)) {
		cr_assert_neq(id, ids[2]);
		n++;
	}
	cr_assert_eq(n, 2);
	cr_assert_eq(atp_lines_first_open(l, S("R2")), ids[1]);
	cr_assert_eq(atp_lines_first_open(l, S("R3")), ATP_LINE_NONE);
	atp_lines_destroy(l);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* The position and line hashes (ours, not XXH3): distinct and evenly spread over slots. */
Test(hash, position_and_line_hashes_are_distinct_and_spread)
{
	enum { SKUS = 50000, LOCS = 4, N = SKUS * LOCS, BITS = 16 };
	uint64_t *h = malloc(2 * N * sizeof(uint64_t));
	uint32_t *bucket = calloc(1u << BITS, sizeof(uint32_t));
	char sku[16], loc[8], ref[24];
	for (uint32_t i = 0; i < N; i++) {
		snprintf(sku, sizeof(sku), "SKU%07u", i / LOCS);
		snprintf(loc, sizeof(loc), "LOC%02u", i % LOCS);
		snprintf(ref, sizeof(ref), "P0000-%09u", i);
		h[i] = H(S(sku), S(loc));
		h[N + i] = atp_line_hash(S(ref), h[i / 7]); /* refs at few positions, seeds repeating */
	}
	for (uint32_t i = 0; i < 2 * N; i++)
		bucket[h[i] & ((1u << BITS) - 1)]++;
	uint32_t max = 0;
	for (uint32_t b = 0; b < 1u << BITS; b++)
		max = bucket[b] > max ? bucket[b] : max;
	/* 400,000 keys in 65,536 buckets: about 6 each; a poor hash piles them up. */
	cr_assert_lt(max, 30, "a slot bucket holds %u keys", max);
	qsort(h, 2 * N, sizeof(uint64_t), cmp_u64);
	for (uint32_t i = 1; i < 2 * N; i++)
		cr_assert_neq(h[i], h[i - 1], "two keys share the hash %llx", (unsigned long long)h[i]);
	free(h);
	free(bucket);
}

/* Keys of every length are hashed from their own bytes only (ASan sees a read past them). */
Test(hash, keys_of_every_length_read_only_their_bytes)
{
	uint64_t seen[ATP_REF_MAX + 1];
	for (uint32_t len = 1; len <= ATP_REF_MAX; len++) {
		char *k = malloc(len);
		memset(k, 'a', len);
		seen[len] = atp_line_hash(atp_str_of(k, len), 42);
		k[len - 1] = 'b';
		cr_assert_neq(atp_line_hash(atp_str_of(k, len), 42), seen[len], "the last byte of %u counts", len);
		k[0] = 'b';
		cr_assert_neq(atp_line_hash(atp_str_of(k, len), 43), atp_line_hash(atp_str_of(k, len), 42),
			      "the seed counts at %u", len);
		free(k);
		for (uint32_t shorter = 1; shorter < len; shorter++)
			cr_assert_neq(seen[shorter], seen[len], "lengths %u and %u", shorter, len);
	}
}

/* A miss tells where the line would go; adding there is the same as adding with a probe, collisions included. */
Test(lines, find_where_then_add_where_is_add)
{
	atp_lines *l = atp_lines_create(64);
	char ref[16];
	for (uint32_t i = 0; i < 40; i++) {
		snprintf(ref, sizeof(ref), "SO-%u", i);
		uint64_t h = i % 3 ? atp_line_hash(S(ref), 7) : 12345; /* every third one on the same slot */
		uint32_t where;
		cr_assert_eq(atp_lines_find_where(l, h, S(ref), i % 5, &where), ATP_LINE_NONE);
		uint32_t id = atp_lines_add_where(l, where, h, S(ref), i % 5);
		cr_assert_neq(id, ATP_LINE_NONE);
		cr_assert_eq(atp_lines_find_where(l, h, S(ref), i % 5, &where), id);
	}
	for (uint32_t i = 0; i < 40; i++) {
		snprintf(ref, sizeof(ref), "SO-%u", i);
		uint64_t h = i % 3 ? atp_line_hash(S(ref), 7) : 12345;
		cr_assert_neq(atp_lines_find(l, h, S(ref), i % 5), ATP_LINE_NONE, "line %u", i);
	}
	atp_lines_destroy(l);
}

/* A closed line's expiry entry stays in the queue; its id reused, the entry must not lapse the new line. */
Test(lines, a_reused_line_id_keeps_only_its_own_expiry)
{
	atp_lines *l = atp_lines_create(2);
	uint32_t a = atp_lines_add(l, atp_line_hash(S("A"), 0), S("A"), 0);
	atp_lines_at(l, a)->remaining = 1;
	atp_lines_open(l, a, 100);
	atp_lines_at(l, a)->remaining = 0;
	atp_lines_close(l, a, ATP_LINE_CONSUMED, 10);
	cr_assert_eq(atp_lines_purge(l, 11), 1);
	uint32_t b = atp_lines_add(l, atp_line_hash(S("B"), 0), S("B"), 0);
	cr_assert_eq(b, a, "the one id, reused");
	atp_lines_at(l, b)->remaining = 1;
	atp_lines_open(l, b, 200);
	cr_assert_eq(atp_lines_due(l, 150), ATP_LINE_NONE, "A's entry is not B's");
	cr_assert_eq(atp_lines_due(l, 200), b);
	atp_lines_at(l, b)->remaining = 0;
	atp_lines_close(l, b, ATP_LINE_EXPIRED, 200);
	cr_assert_eq(atp_lines_due(l, 1000), ATP_LINE_NONE);
	atp_lines_destroy(l);
}

/*
 * A line is one cache line holding refs of up to ATP_LINE_REF_INLINE bytes;
 * a longer ref is kept whole beside it. Refs of every length, long ones
 * alike in their first bytes, are found again, given back whole and
 * chained by their own ref only.
 */
Test(lines, refs_of_every_length_are_kept_whole)
{
	enum { N = 2 * ATP_REF_MAX };
	atp_lines *l = atp_lines_create(N);
	char ref[N][ATP_REF_MAX + 1];
	uint32_t ids[N];
	for (int i = 0; i < N; i++) {
		int len = i % ATP_REF_MAX + 1;
		memset(ref[i], 'R', (size_t)len);
		ref[i][len] = '\0';
		ref[i][len - 1] = i < ATP_REF_MAX ? 'A' : 'B';  /* two refs of each length, differing in their last byte */
		ids[i] = atp_lines_add(l, atp_line_hash(S(ref[i]), 1), S(ref[i]), 1);
		cr_assert_neq(ids[i], ATP_LINE_NONE);
		atp_lines_at(l, ids[i])->remaining = 1;
		atp_lines_at(l, ids[i])->releasable = 1;
		atp_lines_open(l, ids[i], 0);
	}
	for (int i = 0; i < N; i++) {
		cr_assert_eq(atp_lines_find(l, atp_line_hash(S(ref[i]), 1), S(ref[i]), 1), ids[i], "%s", ref[i]);
		cr_assert_eq(atp_lines_get(l, ids[i])->ref_len, strlen(ref[i]));
		cr_assert_eq(memcmp(atp_lines_ref(l, ids[i]), ref[i], strlen(ref[i])), 0, "%s", ref[i]);
		uint32_t first = atp_lines_first_open(l, S(ref[i]));
		cr_assert_eq(first, ids[i], "%s", ref[i]);
		cr_assert_eq(atp_lines_next_open(l, first), ATP_LINE_NONE, "%s: no other line of its ref", ref[i]);
	}
	/* Alike in the bytes a line holds, different after them. */
	char other[ATP_REF_MAX + 1];
	memset(other, 'R', ATP_REF_MAX);
	other[ATP_REF_MAX] = '\0';
	cr_assert_eq(atp_lines_find(l, atp_line_hash(S(other), 1), S(other), 1), ATP_LINE_NONE);
	atp_lines_destroy(l);
}

/* Expiries out of order wait in the heap: each line tells its own, and they lapse in time order. */
Test(lines, expiries_out_of_order_are_told_and_kept_in_order)
{
	atp_lines *l = atp_lines_create(8);
	const uint64_t at[] = { 300, 100, 0, 200, 400 };
	uint32_t ids[5];
	char ref[8];
	for (int i = 0; i < 5; i++) {
		snprintf(ref, sizeof(ref), "R%d", i);
		ids[i] = atp_lines_add(l, atp_line_hash(S(ref), 0), S(ref), 0);
		atp_lines_at(l, ids[i])->remaining = 1;
		atp_lines_open(l, ids[i], at[i]);
	}
	for (int i = 0; i < 5; i++)
		cr_assert_eq(atp_lines_expires_at(l, ids[i]), at[i], "line %d", i);
	/* The one due at 200 is closed early: it leaves the heap. */
	atp_lines_at(l, ids[3])->remaining = 0;
	atp_lines_close(l, ids[3], ATP_LINE_CONSUMED, 50);
	cr_assert_eq(atp_lines_expires_at(l, ids[3]), 0, "closed: no expiry");
	cr_assert_eq(atp_lines_closed_at(l, 0), 50);
	const int order[] = { 1, 0, 4 };
	for (int k = 0; k < 3; k++) {
		uint32_t id = atp_lines_due(l, 1000);
		cr_assert_eq(id, ids[order[k]], "step %d", k);
		atp_lines_at(l, id)->remaining = 0;
		atp_lines_close(l, id, ATP_LINE_EXPIRED, at[order[k]]);
	}
	cr_assert_eq(atp_lines_due(l, 1000), ATP_LINE_NONE, "the line without an expiry never lapses");
	cr_assert_eq(atp_lines_expires_at(l, ids[2]), 0);
	atp_lines_destroy(l);
}

/*
 * The expiry queue and the closed FIFO are rings rounded up to a power of
 * two. With 5 lines (rings of 8) turned over many times, some closed early
 * and the rest lapsing, every line lapses exactly at its own expiry, the
 * closed FIFO stays in closing order and the purge frees exactly the lines
 * closed before its cut.
 */
Test(lines, rings_wrap_round_a_capacity_that_is_not_a_power_of_two)
{
	enum { CAP = 5, TTL = 3, KEEP = 2, ROUNDS = 300 };
	atp_lines *l = atp_lines_create(CAP);
	uint64_t expiry[CAP] = { 0 };  /* model: an open line's expiry by id, 0 = not open */
	uint32_t added = 0, expired = 0, consumed = 0;
	char ref[16];
	for (uint64_t now = 1; now <= ROUNDS; now++) {
		while (atp_lines_count(l) < CAP) {
			snprintf(ref, sizeof(ref), "R%u", added);
			uint32_t id = atp_lines_add(l, atp_line_hash(S(ref), 0), S(ref), 0);
			cr_assert_neq(id, ATP_LINE_NONE);
			atp_lines_at(l, id)->remaining = 1;
			atp_lines_open(l, id, now + TTL);
			expiry[id] = now + TTL;
			added++;
		}
		if (now % 3 == 0) { /* close the open line of the lowest id early */
			for (uint32_t id = 0; id < CAP; id++) {
				if (expiry[id]) {
					atp_lines_at(l, id)->remaining = 0;
					atp_lines_close(l, id, ATP_LINE_CONSUMED, now);
					expiry[id] = 0;
					consumed++;
					break;
				}
			}
		}
		for (uint32_t id, k = 0; (id = atp_lines_due(l, now)) != ATP_LINE_NONE; k++) {
			cr_assert_lt(k, CAP, "at most every line lapses at once");
			cr_assert_eq(expiry[id], now, "line %u lapses at its own expiry, not before or after", id);
			atp_lines_at(l, id)->remaining = 0;
			atp_lines_close(l, id, ATP_LINE_EXPIRED, now);
			expiry[id] = 0;
			expired++;
		}
		uint32_t open = 0;
		for (uint32_t id = 0; id < CAP; id++) {
			open += expiry[id] != 0;
			if (expiry[id])
				cr_assert_eq(atp_lines_expires_at(l, id), expiry[id]);
		}
		cr_assert_eq(atp_lines_open_count(l), open);
		uint32_t before_purge = atp_lines_closed_count(l), older = 0;
		for (uint32_t i = 0; i < before_purge; i++) {
			if (i > 0)
				cr_assert_leq(atp_lines_closed_at(l, i - 1), atp_lines_closed_at(l, i), "closing order");
			older += now >= KEEP && atp_lines_closed_at(l, i) < now - KEEP;
		}
		cr_assert_eq(atp_lines_purge(l, now >= KEEP ? now - KEEP : 0), older);
		cr_assert_eq(atp_lines_count(l), open + atp_lines_closed_count(l));
	}
	cr_assert_gt(added, 8 * 8, "both rings went round many times");
	cr_assert(expired > 0 && consumed > 0);
	atp_lines_destroy(l);
}
