/* The SPSC ring on one thread: FIFO order, wrap-around, backpressure (two threads: tests/threads). */
#include "atp/ring.h"

#include <criterion/criterion.h>

Test(ring, refuses_bad_shapes)
{
	cr_assert_null(atp_spsc_ring_create(0, 8));
	cr_assert_null(atp_spsc_ring_create(1, 8));
	cr_assert_null(atp_spsc_ring_create(12, 8), "not a power of two");
	cr_assert_null(atp_spsc_ring_create(16, 0));
	cr_assert_null(atp_spsc_ring_create(16, 4097));
}

Test(ring, first_in_first_out_across_the_wrap)
{
	atp_spsc_ring *r = atp_spsc_ring_create(8, sizeof(uint64_t));
	uint64_t in[5], out[8], next_in = 0, next_out = 0;
	for (int round = 0; round < 100; round++) {
		for (int i = 0; i < 5; i++)
			in[i] = next_in + (uint64_t)i;
		uint32_t pushed = atp_spsc_ring_push(r, in, 5);
		next_in += pushed;
		uint32_t popped = atp_spsc_ring_pop(r, out, 3);
		for (uint32_t i = 0; i < popped; i++)
			cr_assert_eq(out[i], next_out++, "round %d", round);
	}
	uint32_t n;
	while ((n = atp_spsc_ring_pop(r, out, 8)) > 0)
		for (uint32_t i = 0; i < n; i++)
			cr_assert_eq(out[i], next_out++);
	cr_assert_eq(next_out, next_in);
	atp_spsc_ring_destroy(r);
}

Test(ring, a_full_ring_takes_what_fits_and_an_empty_one_gives_nothing)
{
	atp_spsc_ring *r = atp_spsc_ring_create(4, 2);
	uint16_t in[6] = { 1, 2, 3, 4, 5, 6 }, out[6];
	cr_assert_eq(atp_spsc_ring_pop(r, out, 6), 0);
	cr_assert_eq(atp_spsc_ring_push(r, in, 6), 4, "backpressure: the rest stays with the producer");
	cr_assert_eq(atp_spsc_ring_push(r, in + 4, 2), 0);
	cr_assert_eq(atp_spsc_ring_count(r), 4);
	cr_assert_eq(atp_spsc_ring_pop(r, out, 1), 1);
	cr_assert_eq(out[0], 1);
	cr_assert_eq(atp_spsc_ring_push(r, in + 4, 2), 1);
	cr_assert_eq(atp_spsc_ring_pop(r, out, 6), 4);
	cr_assert(out[0] == 2 && out[1] == 3 && out[2] == 4 && out[3] == 5);
	atp_spsc_ring_destroy(r);
}

/* Elements bigger than a word keep their bytes together. */
Test(ring, wide_elements)
{
	typedef struct { uint64_t a, b, c; } wide;
	atp_spsc_ring *r = atp_spsc_ring_create(4, sizeof(wide));
	wide in[3] = { { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 } }, out[3];
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(atp_spsc_ring_push(r, in, 3), 3);
		cr_assert_eq(atp_spsc_ring_pop(r, out, 3), 3);
		cr_assert(out[2].a == 7 && out[2].c == 9 && out[0].b == 2);
	}
	atp_spsc_ring_destroy(r);
}

/* A mirrored ring hands out what it holds in one piece, across the wrap too, and in place. */
Test(ring, mirrored_peek_is_contiguous_across_the_wrap)
{
	uint32_t cap = 4096;
	cr_assert_null(atp_spsc_ring_create_mirrored(16, 1), "not a whole number of pages");
	atp_spsc_ring *r = atp_spsc_ring_create_mirrored(cap, 1);
	cr_assert_not_null(r);
	uint8_t in[3000];
	const void *p;
	uint64_t next_in = 0, next_out = 0;
	int spanned = 0;
	for (int round = 0; round < 20; round++) {
		for (size_t i = 0; i < sizeof(in); i++)
			in[i] = (uint8_t)(next_in + i);
		next_in += atp_spsc_ring_push(r, in, sizeof(in));
		/* Read in place until what the ring held is used up (a look at the producer's side each time). */
		for (uint32_t n; (n = atp_spsc_ring_peek(r, &p)) > 0 && next_out < next_in - 500;) {
			spanned += next_out % cap + n > cap;
			for (uint32_t i = 0; i < n; i++)
				cr_assert_eq(((const uint8_t *)p)[i], (uint8_t)(next_out + i), "round %d byte %u", round, i);
			uint32_t take = n > 2000 ? 2000 : n;
			atp_spsc_ring_consume(r, take);
			next_out += take;
		}
	}
	cr_assert_gt(next_in, 4 * (uint64_t)cap, "the ring wrapped several times");
	cr_assert_gt(spanned, 0, "and a peek spanned the end of the slots in one piece");
	atp_spsc_ring_destroy(r);
}

Test(ring, plain_peek_stops_at_the_wrap)
{
	atp_spsc_ring *r = atp_spsc_ring_create(8, 1);
	uint8_t in[6] = { 1, 2, 3, 4, 5, 6 }, out[6];
	const void *p;
	cr_assert_eq(atp_spsc_ring_push(r, in, 6), 6);
	cr_assert_eq(atp_spsc_ring_pop(r, out, 6), 6);
	cr_assert_eq(atp_spsc_ring_push(r, in, 5), 5);
	cr_assert_eq(atp_spsc_ring_peek(r, &p), 2, "two before the end of the slots");
	cr_assert(((const uint8_t *)p)[0] == 1 && ((const uint8_t *)p)[1] == 2);
	atp_spsc_ring_consume(r, 2);
	cr_assert_eq(atp_spsc_ring_peek(r, &p), 3);
	cr_assert_eq(((const uint8_t *)p)[2], 5);
	atp_spsc_ring_destroy(r);
}

/* Staged elements stay with the producer until a mark publishes them, and they count against the room. */
Test(ring, staged_elements_appear_only_when_published)
{
	atp_spsc_ring *r = atp_spsc_ring_create(4, sizeof(uint32_t));
	uint32_t in[6] = { 1, 2, 3, 4, 5, 6 }, out[6];
	cr_assert_eq(atp_spsc_ring_stage(r, in, 2), 2);
	uint64_t first = atp_spsc_ring_staged(r);
	cr_assert_eq(atp_spsc_ring_stage(r, in + 2, 3), 2, "the room is shared by staged and published elements");
	cr_assert_eq(atp_spsc_ring_pop(r, out, 6), 0, "nothing published yet");
	atp_spsc_ring_publish(r, first);
	cr_assert_eq(atp_spsc_ring_pop(r, out, 6), 2);
	cr_assert(out[0] == 1 && out[1] == 2);
	cr_assert_eq(atp_spsc_ring_stage(r, in + 4, 2), 2, "popping made room");
	atp_spsc_ring_publish(r, atp_spsc_ring_staged(r));
	cr_assert_eq(atp_spsc_ring_pop(r, out, 6), 4);
	cr_assert(out[0] == 3 && out[1] == 4 && out[2] == 5 && out[3] == 6);
	atp_spsc_ring_destroy(r);
}

Test(ring, staging_in_place_fills_slots_until_full)
{
	atp_spsc_ring *r = atp_spsc_ring_create(4, sizeof(uint64_t));
	for (uint64_t i = 0; i < 4; i++) {
		uint64_t *slot = atp_spsc_ring_stage_slot(r);
		cr_assert_not_null(slot);
		*slot = 10 + i;
		atp_spsc_ring_stage_one(r);
	}
	cr_assert_null(atp_spsc_ring_stage_slot(r), "full");
	atp_spsc_ring_publish(r, atp_spsc_ring_staged(r));
	uint64_t out[4];
	cr_assert_eq(atp_spsc_ring_pop(r, out, 4), 4);
	cr_assert(out[0] == 10 && out[3] == 13);
	cr_assert_not_null(atp_spsc_ring_stage_slot(r), "room again");
	atp_spsc_ring_destroy(r);
}
