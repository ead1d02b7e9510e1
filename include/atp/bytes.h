/*
 * atp/bytes.h — comparing and copying short byte strings without a library call.
 *
 * Keys (SKUs, locations, refs, sources) are a few to 64 bytes; memcmp's
 * and memcpy's call and dispatch cost more than the work. These read whole words,
 * never past either string's end.
 */
#ifndef ATP_BYTES_H
#define ATP_BYTES_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/*
 * Whether a[0..n) equals b[0..n). Up to 16 bytes (nearly every key) without
 * a loop: the first and the last word of each, overlapping when shorter.
 */
static inline __attribute__((always_inline)) bool atp_bytes_equal(const void *a, const void *b, uint32_t n)
{
	const unsigned char *x = a, *y = b;
	if (n >= 8) {
		uint64_t u, v, w, z;
		for (uint32_t i = 8; i + 8 < n; i += 8) {
			memcpy(&u, x + i, 8);
			memcpy(&v, y + i, 8);
			if (u != v)
				return false;
		}
		memcpy(&u, x, 8);
		memcpy(&v, y, 8);
		memcpy(&w, x + n - 8, 8);
		memcpy(&z, y + n - 8, 8);
		return ((u ^ v) | (w ^ z)) == 0;
	}
	if (n >= 4) {
		uint32_t p, q, r, s;
		memcpy(&p, x, 4);
		memcpy(&q, y, 4);
		memcpy(&r, x + n - 4, 4);
		memcpy(&s, y + n - 4, 4);
		return ((p ^ q) | (r ^ s)) == 0;
	}
	return n == 0 || (x[0] == y[0] && x[n / 2] == y[n / 2] && x[n - 1] == y[n - 1]);
}

/* Copy n bytes from b to a (not overlapping), as memcpy, for short keys. */
static inline __attribute__((always_inline)) void atp_bytes_copy(void *a, const void *b, uint32_t n)
{
	unsigned char *x = a;
	const unsigned char *y = b;
	if (n >= 8) {
		for (uint32_t i = 8; i + 8 < n; i += 8)
			memcpy(x + i, y + i, 8);
		memcpy(x, y, 8);
		memcpy(x + n - 8, y + n - 8, 8);
	} else if (n >= 4) {
		memcpy(x, y, 4);
		memcpy(x + n - 4, y + n - 4, 4);
	} else if (n) {
		x[0] = y[0];
		x[n / 2] = y[n / 2];
		x[n - 1] = y[n - 1];
	}
}

#endif
