/* The FlatBuffers layer against hostile buffers, and its round trip. */
#define _GNU_SOURCE
#include "../../tools/lib/prng.h"
#include "atp/wire_event.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static uint8_t mem[1 << 16] __attribute__((aligned(8)));
static uint8_t buf[1 << 16] __attribute__((aligned(8)));
static size_t len;
static atp_event out[16];

/* A batch of two events into buf/len. */
static void build_batch(void)
{
	atp_fb_builder b;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	atp_event e1 = ev_ref(ATP_EV_RESERVE, 7, "SKU-1", "DC1", 3, "SO-1");
	e1.flags = ATP_EVF_PARTIAL;
	atp_event e2 = ev_of(ATP_EV_ADJUST, 8, "SKU-2", "DC2", -4);
	e2.event_id = 0;
	e2.event_key = atp_str_of("E000118075", 10);
	atp_fb_ref refs[2] = { atp_wire_build_event(&b, &e1, (atp_wire_event_time){ 1000, 500 }),
			       atp_wire_build_event(&b, &e2, (atp_wire_event_time){ 0, 0 }) };
	const uint8_t *p = atp_fb_finish(&b, atp_wire_build_event_batch(&b, refs, 2), NULL, &len);
	cr_assert_not_null(p);
	memcpy(buf, p, len);
}

static int decode(void)
{
	return atp_wire_decode_event_batch(buf, len, out, NULL, 16);
}

/* The offset in buf of the first byte of s. */
static size_t find(const char *s)
{
	const uint8_t *p = memmem(buf, len, s, strlen(s));
	cr_assert_not_null(p, "%s not in the buffer", s);
	return (size_t)(p - buf);
}

static void put_u32(size_t at, uint32_t v)
{
	memcpy(buf + at, &v, 4);
}

/* Where the events vector's length sits. */
static size_t vector_at(void)
{
	const uint8_t *root = atp_fb_root(buf);
	return (size_t)(atp_fb_deref(root + atp_fb_field(root, 0)) - buf);
}

TestSuite(wire, .init = build_batch);

Test(wire, a_batch_round_trips_field_for_field)
{
	cr_assert_eq(decode(), 2);
	cr_assert_eq(out[0].type, ATP_EV_RESERVE);
	cr_assert_eq(out[0].event_id, 7);
	cr_assert_eq(out[0].event_key.len, 0);
	cr_assert_eq(out[1].event_id, 0);
	cr_assert(out[1].event_key.len == 10 && memcmp(out[1].event_key.ptr, "E000118075", 10) == 0);
	cr_assert_eq(atp_event_validate(&out[1]), ATP_OK);
	cr_assert_eq(out[0].seq, 7);
	cr_assert_eq(out[0].qty, 3);
	cr_assert_eq(out[0].expires_at, 1500);
	cr_assert_eq(out[0].flags, ATP_EVF_PARTIAL);
	cr_assert(out[0].ref.len == 4 && memcmp(out[0].ref.ptr, "SO-1", 4) == 0);
	cr_assert(out[0].sku.len == 5 && memcmp(out[0].sku.ptr, "SKU-1", 5) == 0);
	cr_assert_eq(out[1].qty, -4);
	cr_assert_eq(out[1].expires_at, 0);
	cr_assert_eq(out[1].ref.len, 0, "absent: the schema's default");
	cr_assert(out[1].reason.len == 6 && memcmp(out[1].reason.ptr, "DAMAGE", 6) == 0);
	cr_assert_eq(atp_event_validate(&out[0]), ATP_OK);
}

Test(wire, every_truncation_is_refused)
{
	size_t full = len;
	for (len = 0; len < full; len++)
		cr_assert_lt(decode(), 0, "a prefix of %zu of %zu bytes was accepted", len, full);
}

Test(wire, root_offset_out_of_range_or_misaligned)
{
	put_u32(0, (uint32_t)len);
	cr_assert_eq(decode(), ATP_FB_E_OFFSET);
	put_u32(0, 0xfffffffcu);
	cr_assert_eq(decode(), ATP_FB_E_OFFSET);
	put_u32(0, 6);
	cr_assert_eq(decode(), ATP_FB_E_ALIGN);
}

Test(wire, string_offset_out_of_range)
{
	/* The offset field pointing at "SKU-1"'s length: find it by scanning for a match. */
	size_t s = find("SKU-1") - 4;
	for (size_t at = 4; at + 4 <= len; at += 4) {
		uint32_t v;
		memcpy(&v, buf + at, 4);
		if (at + v == s) {
			put_u32(at, v + 0x10000000u);
			cr_assert_eq(decode(), ATP_FB_E_OFFSET);
			return;
		}
	}
	cr_assert_fail("no offset to the string found");
}

Test(wire, unterminated_string)
{
	size_t s = find("SKU-1");
	buf[s + 5] = 'x';
	cr_assert_eq(decode(), ATP_FB_E_STRING);
}

Test(wire, string_length_past_the_end)
{
	put_u32(find("SKU-1") - 4, 0x7ffffff0u);
	cr_assert_eq(decode(), ATP_FB_E_STRING);
}

Test(wire, string_longer_than_its_field_allows)
{
	atp_fb_builder b;
	char sku[ATP_SKU_MAX + 1];
	memset(sku, 'S', sizeof(sku));
	atp_event e = ev_of(ATP_EV_RECEIPT, 1, "x", "DC1", 1);
	e.sku = atp_str_of(sku, sizeof(sku));
	atp_fb_builder_init(&b, mem, sizeof(mem));
	atp_fb_ref ref = atp_wire_build_event(&b, &e, (atp_wire_event_time){ 0, 0 });
	const uint8_t *p = atp_fb_finish(&b, atp_wire_build_event_batch(&b, &ref, 1), NULL, &len);
	memcpy(buf, p, len);
	cr_assert_eq(decode(), ATP_FB_E_STRING_LEN);
}

Test(wire, huge_vector_length)
{
	put_u32(vector_at(), 0x7fffffffu);
	cr_assert_eq(decode(), ATP_FB_E_VECTOR_LEN, "more events than the batch limit");
	static atp_event room[ATP_WIRE_BATCH_MAX];
	put_u32(vector_at(), (uint32_t)(len / 4));
	cr_assert_eq(atp_wire_decode_event_batch(buf, len, room, NULL, ATP_WIRE_BATCH_MAX), ATP_FB_E_VECTOR,
		     "that many offsets do not fit the buffer");
}

Test(wire, more_events_than_the_caller_has_room_for)
{
	cr_assert_eq(atp_wire_decode_event_batch(buf, len, out, NULL, 1), ATP_FB_E_VECTOR_LEN);
}

Test(wire, an_element_pointing_at_itself_is_refused)
{
	put_u32(vector_at() + 4, 0); /* the first element's offset: 0 points at the element itself */
	cr_assert_lt(decode(), 0);
}

Test(wire, shared_elements_are_read_but_counted)
{
	/* Both elements point at the second event: legal FlatBuffers, each visit counts. */
	size_t v = vector_at();
	uint32_t second;
	memcpy(&second, buf + v + 8, 4);
	put_u32(v + 4, second + 4);
	cr_assert_eq(decode(), 2);
	cr_assert_eq(out[0].qty, out[1].qty);
}

Test(wire, misaligned_element)
{
	size_t v = vector_at();
	uint32_t first;
	memcpy(&first, buf + v + 4, 4);
	put_u32(v + 4, first + 2);
	cr_assert_lt(decode(), 0);
}

Test(wire, vtable_out_of_range)
{
	const uint8_t *root = atp_fb_root(buf);
	put_u32((size_t)(root - buf), 0x40000000u);
	cr_assert_eq(decode(), ATP_FB_E_VTABLE);
}

Test(wire, field_outside_its_table)
{
	const uint8_t *root = atp_fb_root(buf);
	const uint8_t *vt = root - (int32_t)atp_fb_read_u32(root);
	uint16_t big = 0x7ff0;
	memcpy((uint8_t *)buf + (vt - buf) + 4, &big, 2);
	cr_assert_eq(decode(), ATP_FB_E_FIELD);
}

Test(wire, message_size_limits)
{
	cr_assert_eq(atp_wire_decode_event_batch(buf, 7, out, NULL, 16), ATP_FB_E_TOO_SMALL);
	cr_assert_eq(atp_wire_decode_event_batch(buf, ATP_WIRE_MESSAGE_MAX + 1, out, NULL, 16), ATP_FB_E_TOO_LARGE);
}

Test(wire, depth_and_table_limits_of_the_verifier)
{
	/* A chain of tables, each holding an offset to the next, verified recursively. */
	atp_fb_builder b;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	atp_fb_ref t = 0;
	for (int i = 0; i < 20; i++) {
		atp_fb_start_table(&b);
		atp_fb_add_offset(&b, 0, t);
		t = atp_fb_end_table(&b);
	}
	size_t n;
	const uint8_t *p = atp_fb_finish(&b, t, NULL, &n);
	memcpy(buf, p, n);
	for (uint32_t limit = 5; limit <= 25; limit += 20) {
		atp_fb_verifier v;
		const uint8_t *cur;
		int rc = atp_fb_verify_begin(&v, buf, n, sizeof(buf), limit, 1000, &cur);
		int depth = 0;
		while (!rc && cur) {
			if ((rc = atp_fb_verify_table_enter(&v, cur)))
				break;
			depth++;
			uint16_t off = atp_fb_field(cur, 0);
			if (!off)
				break;
			if ((rc = atp_fb_verify_scalar(&v, cur, 0, 4)) ||
			    (rc = atp_fb_verify_offset_to_table(&v, cur + off, &cur)))
				break;
		}
		if (limit == 5)
			cr_assert_eq(rc, ATP_FB_E_DEPTH);
		else
			cr_assert(rc == 0 && depth == 20, "rc %d depth %d", rc, depth);
	}
}

Test(wire, random_corruption_never_crashes)
{
	static uint8_t good[1 << 16];
	size_t full = len;
	memcpy(good, buf, len);
	atp_prng g;
	atp_prng_seed(&g, 99);
	int accepted = 0;
	for (int i = 0; i < 20000; i++) {
		memcpy(buf, good, full);
		len = full;
		for (int k = 0; k < 1 + (int)atp_prng_below(&g, 4); k++)
			buf[atp_prng_below(&g, full)] = (uint8_t)atp_prng_next(&g);
		int n = decode();
		if (n >= 0) {
			accepted++;
			for (int e = 0; e < n; e++) /* whatever was accepted reads within the buffer */
				cr_assert(out[e].sku.len == 0 ||
					  ((const uint8_t *)out[e].sku.ptr >= buf &&
					   (const uint8_t *)out[e].sku.ptr + out[e].sku.len < buf + len));
		}
	}
	cr_assert_gt(accepted, 0, "some flips hit only values");
}

Test(wire, ack_hello_welcome_round_trip)
{
	atp_fb_builder b;
	size_t n;
	atp_wire_refusal r[2] = { { 5, ATP_E_GAP, 0 }, { 9, ATP_E_QTY, 0 } };
	atp_fb_builder_init(&b, mem, sizeof(mem));
	atp_wire_ack a = { .source = S("wms"), .durable_seq = 4, .next_seq = 10, .refused = r, .n_refused = 2 };
	const uint8_t *p = atp_fb_finish(&b, atp_wire_build_ack(&b, &a), NULL, &n);
	memset(&a, 0, sizeof(a));
	cr_assert_eq(atp_wire_decode_ack(p, n, &a), 0);
	cr_assert_eq(a.durable_seq, 4);
	cr_assert_eq(a.next_seq, 10);
	cr_assert_eq(a.error, 0);
	cr_assert_eq(a.reason.len, 0);
	cr_assert_eq(a.n_refused, 2);
	cr_assert_eq(atp_wire_ack_refusal(&a, 1).seq, 9);
	cr_assert_eq(atp_wire_ack_refusal(&a, 1).code, ATP_E_QTY);

	atp_fb_builder_init(&b, mem, sizeof(mem));
	p = atp_fb_finish(&b, atp_wire_build_hello(&b, S("wms-dc1")), NULL, &n);
	atp_str s;
	cr_assert_eq(atp_wire_decode_hello(p, n, &s), 0);
	cr_assert(s.len == 7 && memcmp(s.ptr, "wms-dc1", 7) == 0);
	atp_fb_builder_init(&b, mem, sizeof(mem));
	p = atp_fb_finish(&b, atp_wire_build_hello(&b, (atp_str){ 0 }), NULL, &n);
	cr_assert_eq(atp_wire_decode_hello(p, n, &s), ATP_FB_E_REQUIRED, "a Hello names its source");

	atp_fb_builder_init(&b, mem, sizeof(mem));
	p = atp_fb_finish(&b, atp_wire_build_welcome(&b, &(atp_wire_welcome){ .durable_seq = 1ull << 40 }), NULL, &n);
	atp_wire_welcome w;
	cr_assert_eq(atp_wire_decode_welcome(p, n, &w), 0);
	cr_assert_eq(w.durable_seq, 1ull << 40);
	cr_assert_eq(w.error, 0);

	/* The last frame of a connection the server closes says why. */
	atp_fb_builder_init(&b, mem, sizeof(mem));
	a = (atp_wire_ack){ .source = S("wms"), .durable_seq = 7, .error = ATP_E_SUPERSEDED, .reason = S("newer") };
	p = atp_fb_finish(&b, atp_wire_build_ack(&b, &a), NULL, &n);
	cr_assert_eq(atp_wire_decode_ack(p, n, &a), 0);
	cr_assert_eq(a.error, ATP_E_SUPERSEDED);
	cr_assert(a.reason.len == 5 && memcmp(a.reason.ptr, "newer", 5) == 0);
	cr_assert_eq(a.n_refused, 0);
	atp_fb_builder_init(&b, mem, sizeof(mem));
	p = atp_fb_finish(&b, atp_wire_build_welcome(&b, &(atp_wire_welcome){ .error = ATP_E_LIMIT, .reason = S("full") }),
			  NULL, &n);
	cr_assert_eq(atp_wire_decode_welcome(p, n, &w), 0);
	cr_assert_eq(w.error, ATP_E_LIMIT);
	cr_assert(w.reason.len == 4 && memcmp(w.reason.ptr, "full", 4) == 0);
}

Test(wire, the_builder_reports_running_out_of_room)
{
	atp_fb_builder b;
	uint8_t small[64] __attribute__((aligned(8)));
	atp_fb_builder_init(&b, small, sizeof(small));
	atp_event e = ev_ref(ATP_EV_RESERVE, 7, "SKU-1", "DC1", 3, "A-RATHER-LONG-RESERVATION-ID-THAT-DOES-NOT-FIT");
	atp_fb_ref ref = atp_wire_build_event(&b, &e, (atp_wire_event_time){ 0, 0 });
	size_t n;
	cr_assert_null(atp_fb_finish(&b, atp_wire_build_event_batch(&b, &ref, 1), NULL, &n));
}

Test(wire, vtables_are_shared_between_tables_of_one_shape)
{
	atp_fb_builder b;
	atp_fb_ref refs[3];
	size_t n;
	atp_event e = ev_of(ATP_EV_RECEIPT, 1, "S", "L", 1);
	atp_fb_builder_init(&b, mem, sizeof(mem));
	for (int i = 0; i < 3; i++)
		refs[i] = atp_wire_build_event(&b, &e, (atp_wire_event_time){ 0, 0 });
	const uint8_t *p = atp_fb_finish(&b, atp_wire_build_event_batch(&b, refs, 3), NULL, &n);
	memcpy(buf, p, n);
	len = n;
	cr_assert_eq(decode(), 3);
	const uint8_t *root = atp_fb_root(buf), *vec = atp_fb_deref(root + atp_fb_field(root, 0));
	const uint8_t *vt[3];
	for (int i = 0; i < 3; i++) {
		const uint8_t *t = atp_fb_deref(vec + 4 + 4 * i);
		vt[i] = t - (int32_t)atp_fb_read_u32(t);
	}
	cr_assert(vt[0] == vt[1] && vt[1] == vt[2], "one vtable for the three events");
}

/* ---- atp.v1 ---- */

#include "atp/wire_api.h"

Test(wire_api, a_refusal_names_the_field_at_fault)
{
	atp_fb_builder b;
	size_t n;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	atp_fb_ref lines[2] = { atp_v1_build_reserve_line(&b, S("SKU-1"), S("DC1"), 3),
				atp_v1_build_reserve_line(&b, S("SKU-2"), S("a location longer than 32 bytes!!"), 1) };
	const uint8_t *p = atp_fb_finish(&b, atp_v1_build_reserve_request(&b, S("SO-9"), lines, 2, 0, false), NULL, &n);
	int rc;
	char where[64];
	cr_assert_null(atp_v1_verify_at(p, n, &atp_v1_reserve_request_rule, &rc, where, sizeof(where)));
	cr_assert_eq(rc, ATP_FB_E_STRING_LEN);
	cr_assert_str_eq(where, "lines[1].location");
	atp_fb_builder_init(&b, mem, sizeof(mem));
	lines[0] = atp_v1_build_reserve_line(&b, S("SKU-1"), S("DC1"), 3);
	p = atp_fb_finish(&b, atp_v1_build_reserve_request(&b, S("SO-9"), lines, 1, 0, false), NULL, &n);
	cr_assert_not_null(atp_v1_verify_at(p, n, &atp_v1_reserve_request_rule, &rc, where, sizeof(where)));
	cr_assert_str_eq(where, "", "nothing at fault");
}

Test(wire_api, a_reserve_request_round_trips)
{
	atp_fb_builder b;
	size_t n;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	atp_fb_ref lines[2] = { atp_v1_build_reserve_line(&b, S("SKU-1"), S("DC1"), 3),
				atp_v1_build_reserve_line(&b, S("SKU-2"), S("any"), 1) };
	const uint8_t *p = atp_fb_finish(&b, atp_v1_build_reserve_request(&b, S("SO-9"), lines, 2, 900000, true), NULL, &n);
	int rc;
	const uint8_t *t = atp_v1_verify(p, n, &atp_v1_reserve_request_rule, &rc);
	cr_assert_not_null(t, "%s", atp_fb_error_message(rc));
	cr_assert_eq(atp_v1_reserve_request_lines_count(t), 2);
	cr_assert_eq(atp_v1_reserve_line_qty(atp_v1_reserve_request_lines(t, 0)), 3);
	atp_str loc = atp_v1_reserve_line_location(atp_v1_reserve_request_lines(t, 1));
	cr_assert(loc.len == 3 && memcmp(loc.ptr, "any", 3) == 0);
	cr_assert_eq(atp_v1_reserve_request_ttl_ms(t), 900000);
	cr_assert(atp_v1_reserve_request_allow_partial(t));
	/* Only the last string's alignment padding (at most 3 bytes) may be cut, and then nothing changes. */
	for (size_t cut = 0; cut < n; cut++) {
		const uint8_t *short_t = atp_v1_verify(p, cut, &atp_v1_reserve_request_rule, &rc);
		cr_assert(!short_t || (cut + 3 >= n && atp_v1_reserve_request_lines_count(short_t) == 2),
			  "prefix %zu of %zu accepted", cut, n);
	}
}

Test(wire_api, lists_and_strings_past_their_limits)
{
	atp_fb_builder b;
	size_t n;
	int rc;
	static atp_str locs[ATP_V1_LIST_MAX + 1];
	for (uint32_t i = 0; i <= ATP_V1_LIST_MAX; i++)
		locs[i] = S("L");
	static uint8_t big[1 << 20] __attribute__((aligned(8)));
	atp_fb_builder_init(&b, big, sizeof(big));
	atp_fb_ref q = atp_v1_build_atp_query(&b, S("SKU"), locs, ATP_V1_LIST_MAX);
	const uint8_t *p = atp_fb_finish(&b, q, NULL, &n);
	cr_assert_not_null(atp_v1_verify(p, n, &atp_v1_atp_query_rule, &rc), "exactly the limit is fine");
	atp_fb_builder_init(&b, big, sizeof(big));
	q = atp_v1_build_atp_query(&b, S("SKU"), locs, ATP_V1_LIST_MAX + 1);
	cr_assert_null(atp_fb_finish(&b, q, NULL, &n), "the builder refuses to build past the limit");

	char channel[ATP_V1_CHANNEL_MAX + 1];
	memset(channel, 'c', sizeof(channel));
	atp_fb_builder_init(&b, mem, sizeof(mem));
	p = atp_fb_finish(&b, atp_v1_build_subscribe_request(&b, atp_str_of(channel, sizeof(channel)), NULL, 0), NULL, &n);
	cr_assert_null(atp_v1_verify(p, n, &atp_v1_subscribe_request_rule, &rc));
	cr_assert_eq(rc, ATP_FB_E_STRING_LEN);

	char sku[ATP_SKU_MAX + 1];
	memset(sku, 's', sizeof(sku));
	atp_fb_builder_init(&b, mem, sizeof(mem));
	atp_fb_ref line = atp_v1_build_reserve_line(&b, atp_str_of(sku, sizeof(sku)), S("DC1"), 1);
	p = atp_fb_finish(&b, atp_v1_build_reserve_request(&b, S("R"), &line, 1, 0, false), NULL, &n);
	cr_assert_null(atp_v1_verify(p, n, &atp_v1_reserve_request_rule, &rc));
	cr_assert_eq(rc, ATP_FB_E_STRING_LEN, "the nested line's sku is checked too");
}

Test(wire_api, the_wrong_message_type_is_caught_or_read_harmlessly)
{
	/* A Delta read as a ReserveRequest: field 1 (a u64 seq) is not an offset to a vector. */
	atp_fb_builder b;
	size_t n;
	int rc;
	atp_v1_delta d = { .channel = S("web"), .seq = 0x7fffffff, .sku = S("S"), .location = S("L") };
	atp_fb_builder_init(&b, mem, sizeof(mem));
	const uint8_t *p = atp_fb_finish(&b, atp_v1_build_delta(&b, &d, NULL), NULL, &n);
	cr_assert_null(atp_v1_verify(p, n, &atp_v1_reserve_request_rule, &rc));
}

Test(wire_api, random_corruption_of_nested_replies_never_crashes)
{
	atp_fb_builder b;
	size_t n;
	atp_v1_position pos = { S("SKU-1"), S("DC1"), 10, 1, 2, 3, 4, 5 };
	atp_fb_builder_init(&b, mem, sizeof(mem));
	atp_fb_ref ps[2] = { atp_v1_build_position_atp(&b, &pos), atp_v1_build_position_atp(&b, &pos) };
	atp_fb_ref replies[2] = { atp_v1_build_atp_reply(&b, ps, 2, 8), atp_v1_build_atp_reply(&b, ps, 1, 4) };
	const uint8_t *p = atp_fb_finish(&b, atp_v1_build_atp_batch_reply(&b, replies, 2), NULL, &n);
	static uint8_t good[4096], work[4096];
	memcpy(good, p, n);
	atp_prng g;
	atp_prng_seed(&g, 5);
	int rc, accepted = 0;
	for (int i = 0; i < 20000; i++) {
		memcpy(work, good, n);
		work[atp_prng_below(&g, n)] = (uint8_t)atp_prng_next(&g);
		const uint8_t *t = atp_v1_verify(work, n, &atp_v1_atp_batch_reply_rule, &rc);
		if (!t)
			continue;
		accepted++;
		for (uint32_t r = 0; r < atp_v1_atp_batch_reply_replies_count(t); r++) {
			const uint8_t *reply = atp_v1_atp_batch_reply_replies(t, r);
			for (uint32_t k = 0; k < atp_v1_atp_reply_positions_count(reply); k++) {
				atp_str s = atp_v1_position_atp_sku(atp_v1_atp_reply_positions(reply, k));
				cr_assert(s.len == 0 || ((const uint8_t *)s.ptr >= work && (const uint8_t *)s.ptr + s.len < work + n));
			}
		}
	}
	cr_assert_gt(accepted, 0);
}

/* The channel stream's one-pass Delta reads exactly as the builder's, absent strings and token included. */
Test(wire_api, a_delta_written_in_one_pass_reads_as_the_builders)
{
	static const uint8_t tok[37] = { 1, 2, 3, 255 };
	atp_v1_delta cases[] = {
		{ .channel = S("web"), .sku = S("SKU-000001"), .location = S("DC01"), .seq = 1ull << 40, .version = 7,
		  .atp = 5, .previous_atp = -3, .sku_atp = 99, .shard = 3, .index = 2, .kind = ATP_V1_DELTA_UPDATE,
		  .token = tok, .token_len = sizeof(tok) },
		{ .channel = S("a"), .kind = ATP_V1_DELTA_RESYNC, .token = tok, .token_len = 24 },
		{ .channel = S("marketplace-eu"), .sku = S("S"), .location = S("L"), .kind = ATP_V1_DELTA_SNAPSHOT },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		static uint8_t one[ATP_V1_DELTA_MAX] __attribute__((aligned(8)));
		uint32_t kind_off, token_off;
		size_t n = atp_v1_encode_delta(&cases[i], one, sizeof(one), &kind_off, &token_off);
		cr_assert_gt(n, 0);
		cr_assert_eq(n % 8, 0);
		int rc;
		const uint8_t *a = atp_v1_verify(one, n, &atp_v1_delta_rule, &rc);
		cr_assert_not_null(a, "case %zu verifies (%d)", i, rc);
		atp_fb_builder b;
		size_t m;
		atp_fb_builder_init(&b, mem, sizeof(mem));
		const uint8_t *p = atp_fb_finish(&b, atp_v1_build_delta(&b, &cases[i], NULL), NULL, &m);
		const uint8_t *c = atp_v1_verify(p, m, &atp_v1_delta_rule, &rc);
		cr_assert_not_null(c);
		cr_assert_eq(atp_str_cmp(atp_v1_delta_channel(a), atp_v1_delta_channel(c)), 0);
		cr_assert_eq(atp_str_cmp(atp_v1_delta_sku(a), atp_v1_delta_sku(c)), 0);
		cr_assert_eq(atp_str_cmp(atp_v1_delta_location(a), atp_v1_delta_location(c)), 0);
		cr_assert_eq(atp_v1_delta_seq(a), atp_v1_delta_seq(c));
		cr_assert_eq(atp_v1_delta_atp(a), atp_v1_delta_atp(c));
		cr_assert_eq(atp_v1_delta_previous_atp(a), atp_v1_delta_previous_atp(c));
		cr_assert_eq(atp_v1_delta_sku_atp(a), atp_v1_delta_sku_atp(c));
		cr_assert_eq(atp_v1_delta_version(a), atp_v1_delta_version(c));
		cr_assert_eq(atp_v1_delta_kind(a), atp_v1_delta_kind(c));
		cr_assert_eq(atp_v1_delta_shard(a), atp_v1_delta_shard(c));
		cr_assert_eq(atp_v1_delta_index(a), atp_v1_delta_index(c));
		uint32_t la, lc;
		const uint8_t *ta = atp_v1_delta_token(a, &la), *tc = atp_v1_delta_token(c, &lc);
		cr_assert_eq(la, lc);
		cr_assert(la == 0 || (memcmp(ta, tc, la) == 0 && ta == one + token_off));
		one[kind_off] = ATP_V1_DELTA_CONFLATED;
		cr_assert_eq(atp_v1_delta_kind(a), ATP_V1_DELTA_CONFLATED, "kind_off is the kind's byte");
		cr_assert_eq(atp_v1_encode_delta(&cases[i], one, n - 8, &kind_off, &token_off), 0, "too little room");
	}
}
