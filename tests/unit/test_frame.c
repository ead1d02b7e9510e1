/* test_frame.c — atp/wire_frame.h: the stream's framing, byte by byte, at its limits, and split anywhere. */
#include "atp/status.h"
#include "atp/wire_frame.h"

#include <criterion/criterion.h>
#include <string.h>

static size_t put_frame(uint8_t *out, uint32_t len, uint8_t fill)
{
	memcpy(out, &len, 4);
	memset(out + 4, fill, len);
	return 4 + (size_t)len;
}

Test(frame, fewer_than_four_bytes_need_more)
{
	uint8_t b[4] = { 16, 0, 0, 0 };
	uint32_t len = 99;
	for (size_t n = 0; n < 4; n++) {
		cr_expect_eq(atp_frame_split(b, n, 1024, &len), 0, "%zu bytes", n);
		cr_expect_eq(len, 0);
	}
}

Test(frame, a_partial_payload_needs_more_but_its_length_is_known)
{
	uint8_t b[64];
	put_frame(b, 40, 0xab);
	uint32_t len = 0;
	for (size_t n = 4; n < 44; n++) {
		cr_expect_eq(atp_frame_split(b, n, 1024, &len), 0, "%zu bytes", n);
		cr_expect_eq(len, 40);
	}
	cr_expect_eq(atp_frame_split(b, 44, 1024, &len), 44);
	cr_expect_eq(atp_frame_split(b, 64, 1024, &len), 44, "what follows is not this frame's");
}

Test(frame, lengths_at_and_beyond_the_limits)
{
	uint8_t b[4 + 256];
	uint32_t len;
	put_frame(b, ATP_FRAME_MIN - 1, 0);
	cr_expect_eq(atp_frame_split(b, sizeof(b), 256, &len), ATP_E_PROTOCOL, "under the smallest FlatBuffer");
	put_frame(b, 0, 0);
	cr_expect_eq(atp_frame_split(b, 4, 256, &len), ATP_E_PROTOCOL, "an empty frame");
	put_frame(b, ATP_FRAME_MIN, 0);
	cr_expect_eq(atp_frame_split(b, sizeof(b), 256, &len), 4 + ATP_FRAME_MIN);
	put_frame(b, 256, 0);
	cr_expect_eq(atp_frame_split(b, sizeof(b), 256, &len), 260, "exactly the limit");
	cr_expect_eq(atp_frame_split(b, 4, 255, &len), ATP_E_LIMIT, "one over it, refused before its payload came");
	cr_expect_eq(len, 256);
	uint32_t huge = UINT32_MAX;
	memcpy(b, &huge, 4);
	cr_expect_eq(atp_frame_split(b, 4, UINT32_MAX - 1, &len), ATP_E_LIMIT);
	cr_expect_eq(atp_frame_split(b, 4, UINT32_MAX, &len), 0, "no overflow: it simply needs more");
}

/* A stream of frames of every size in [8, 300), fed in chunks of every size from 1 to 40: the same frames, in order. */
Test(frame, any_split_of_a_stream_gives_the_same_frames)
{
	static uint8_t stream[300 * 304], buf[sizeof(stream)];
	size_t total = 0;
	uint32_t count = 0;
	for (uint32_t len = 8; len < 300; len++, count++)
		total += put_frame(stream + total, len, (uint8_t)len);
	for (size_t chunk = 1; chunk <= 40; chunk++) {
		size_t have = 0, fed = 0;
		uint32_t seen = 0, want = 8;
		while (fed < total || have) {
			size_t k = total - fed < chunk ? total - fed : chunk;
			memcpy(buf + have, stream + fed, k);  /* as a receive appends to what is kept */
			have += k;
			fed += k;
			size_t off = 0;
			for (;;) {
				uint32_t len;
				int64_t whole = atp_frame_split(buf + off, have - off, 1024, &len);
				cr_assert_geq(whole, 0);
				if (!whole)
					break;
				cr_assert_eq(len, want, "chunk %zu: frame %u", chunk, seen);
				for (uint32_t i = 0; i < len; i++)
					cr_assert_eq(buf[off + 4 + i], (uint8_t)want);
				off += (size_t)whole;
				seen++;
				want++;
			}
			memmove(buf, buf + off, have - off);
			have -= off;
			if (k == 0)
				break;
		}
		cr_expect_eq(seen, count, "chunk %zu", chunk);
		cr_expect_eq(have, 0);
	}
}
