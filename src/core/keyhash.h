/*
 * keyhash.h — the seeded hash of a short key: positions and reservation lines.
 *
 * A position's hash is its location's bytes hashed with the SKU's hash as
 * the seed, a line's is its ref's bytes with the position's hash as the
 * seed. These hashes live only in memory (table slots, the router's frames
 * to its workers), never on disk, so the function is ours to choose: keys
 * are 1 to 64 bytes, mostly under 16, and this one reads such a key in two
 * overlapping words and mixes with two 64x64->128-bit multiplies, inline,
 * where XXH3 spends a call and a dispatch on its length. A collision costs
 * a probe, never a wrong answer (keys are compared in full).
 *
 * The SKU's own hash stays XXH3 (atp_sku_hash): it routes events to
 * shards, so it must not change under an existing data directory.
 */
#ifndef ATP_CORE_KEYHASH_H
#define ATP_CORE_KEYHASH_H

#include <stdint.h>
#include <string.h>

/* The 128-bit product of a and b, its halves folded into 64 bits. */
static inline uint64_t atp_fold_mul(uint64_t a, uint64_t b)
{
	unsigned __int128 r = (unsigned __int128)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t atp_read64(const char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static inline uint64_t atp_read32(const char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* The hash of p[0..len) seeded by seed; never reads outside the key. */
static inline uint64_t atp_key_hash(const char *p, uint32_t len, uint64_t seed)
{
	/* Odd constants with well spread bits (from the golden ratio and sqrt(2), sqrt(3)). */
	const uint64_t k0 = 0x9e3779b97f4a7c15ull, k1 = 0x6a09e667f3bcc909ull, k2 = 0xbb67ae8584caa73bull;
	uint64_t a, b;
	seed ^= len * k0;
	if (len <= 16) {
		if (len >= 8) {
			a = atp_read64(p);
			b = atp_read64(p + len - 8);
		} else if (len >= 4) {
			a = atp_read32(p);
			b = atp_read32(p + len - 4);
		} else {
			a = len ? (uint64_t)(unsigned char)p[0] << 16 | (uint64_t)(unsigned char)p[len / 2] << 8 |
					  (unsigned char)p[len - 1]
				: 0;
			b = 0;
		}
	} else {
		uint32_t i = 0;
		for (; len - i > 16; i += 16)
			seed = atp_fold_mul(atp_read64(p + i) ^ k1, atp_read64(p + i + 8) ^ seed);
		a = atp_read64(p + len - 16);
		b = atp_read64(p + len - 8);
	}
	return atp_fold_mul(atp_fold_mul(a ^ k1, b ^ seed) ^ k2, seed ^ k0);
}

#endif
