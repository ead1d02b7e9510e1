/*
 * prng.h — a small deterministic PRNG (xoshiro256**, seeded by splitmix64)
 * and a Zipf sampler, so that every simulated day and random test can be
 * reproduced from its seed.
 */
#ifndef ATP_PRNG_H
#define ATP_PRNG_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct atp_prng {
	uint64_t s[4];
} atp_prng;

static inline uint64_t atp_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline void atp_prng_seed(atp_prng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = atp_splitmix64(&seed);
}

static inline uint64_t atp_prng_next(atp_prng *r)
{
	uint64_t *s = r->s;
	uint64_t x = s[1] * 5, result = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return result;
}

/* Uniform in [0, n), n > 0 (Lemire's multiply-shift; the tiny bias is irrelevant here). */
static inline uint64_t atp_prng_below(atp_prng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)atp_prng_next(r) * n) >> 64);
}

/* Uniform in [lo, hi]. */
static inline int64_t atp_prng_range(atp_prng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)atp_prng_below(r, (uint64_t)(hi - lo) + 1);
}

/* Uniform in [0, 1). */
static inline double atp_prng_unit(atp_prng *r)
{
	return (double)(atp_prng_next(r) >> 11) * 0x1.0p-53;
}

/* Zipf(s) over ranks 0..n-1 by inverse CDF: rank 0 is the most popular. */
typedef struct atp_zipf {
	double *cdf;
	uint32_t n;
} atp_zipf;

static inline int atp_zipf_init(atp_zipf *z, uint32_t n, double s)
{
	z->n = n;
	z->cdf = malloc((size_t)n * sizeof(double));
	if (!z->cdf)
		return -1;
	double sum = 0;
	for (uint32_t i = 0; i < n; i++)
		z->cdf[i] = (sum += 1.0 / pow(i + 1.0, s));
	for (uint32_t i = 0; i < n; i++)
		z->cdf[i] /= sum;
	return 0;
}

/* The probability of rank i. */
static inline double atp_zipf_p(const atp_zipf *z, uint32_t i)
{
	return i == 0 ? z->cdf[0] : z->cdf[i] - z->cdf[i - 1];
}

static inline uint32_t atp_zipf_sample(const atp_zipf *z, atp_prng *r)
{
	double u = atp_prng_unit(r);
	uint32_t lo = 0, hi = z->n - 1;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (z->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static inline void atp_zipf_free(atp_zipf *z)
{
	free(z->cdf);
	z->cdf = NULL;
}

#endif
