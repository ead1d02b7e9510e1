/*
 * strcheck.h — whether a key's bytes are acceptable, inlined where it is hot.
 *
 * A key (SKU, location, ref, source) is 1..max bytes at a pointer, none of
 * them a control byte (below 0x20, or 0x7f). Eight bytes are checked at a
 * time, never reading past the string; keys up to 16 bytes without a loop.
 * atp_str_valid() (atp/event.h) is this, out of line.
 */
#ifndef ATP_CORE_STRCHECK_H
#define ATP_CORE_STRCHECK_H

#include "atp/event.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* True when a byte of x is below 0x20 or equal to 0x7f (a control byte). */
static inline bool atp_has_control_byte(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t below_space = (x - 0x20 * ones) & ~x & highs;
	uint64_t del = x ^ (0x7f * ones);
	uint64_t is_del = (del - ones) & ~del & highs;
	return (below_space | is_del) != 0;
}

static inline __attribute__((always_inline)) bool atp_str_check(atp_str s, uint32_t max)
{
	if (s.len == 0 || s.len > max || s.ptr == NULL)
		return false;
	const unsigned char *p = (const unsigned char *)s.ptr;
	uint64_t w, z;
	if (s.len < 8) {
		/* Gather the bytes into one word without reading past the string. */
		if (s.len >= 4) {
			uint32_t lo, hi;
			memcpy(&lo, p, 4);
			memcpy(&hi, p + s.len - 4, 4);
			w = lo | (uint64_t)hi << 32;
		} else {
			w = 0x4141414141000000ull | p[0] | (uint64_t)p[s.len / 2] << 8 | (uint64_t)p[s.len - 1] << 16;
		}
		return !atp_has_control_byte(w);
	}
	/* The first and the last word (overlapping when shorter than 16), and any between. */
	for (uint32_t i = 8; i + 8 < s.len; i += 8) {
		memcpy(&w, p + i, 8);
		if (atp_has_control_byte(w))
			return false;
	}
	memcpy(&w, p, 8);
	memcpy(&z, p + s.len - 8, 8);
	return !atp_has_control_byte(w) && !atp_has_control_byte(z);
}

#endif
