/*
 * histogram.h — a log-bucketed latency histogram (8 buckets per power of
 * two: quantiles within 9%), fixed size, no allocation.
 */
#ifndef ATP_HISTOGRAM_H
#define ATP_HISTOGRAM_H

#include <stdint.h>

#define ATP_HIST_BUCKETS (64 * 8)

typedef struct atp_histogram {
	uint64_t count, max;
	uint64_t bucket[ATP_HIST_BUCKETS];
} atp_histogram;

static inline unsigned atp_hist_index(uint64_t v)
{
	if (v < 8)
		return (unsigned)v;
	unsigned log = 63u - (unsigned)__builtin_clzll(v);
	return log * 8 + (unsigned)((v >> (log - 3)) & 7);
}

static inline void atp_hist_add(atp_histogram *h, uint64_t v)
{
	h->bucket[atp_hist_index(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

/* n samples of value v. */
static inline void atp_hist_add_n(atp_histogram *h, uint64_t v, uint64_t n)
{
	h->bucket[atp_hist_index(v)] += n;
	h->count += n;
	if (n && v > h->max)
		h->max = v;
}

/* Add every sample of b to a. */
static inline void atp_hist_merge(atp_histogram *a, const atp_histogram *b)
{
	for (unsigned i = 0; i < ATP_HIST_BUCKETS; i++)
		a->bucket[i] += b->bucket[i];
	a->count += b->count;
	if (b->max > a->max)
		a->max = b->max;
}

/* The upper bound of the bucket holding quantile q (0..1); 0 when empty. */
static inline uint64_t atp_hist_quantile(const atp_histogram *h, double q)
{
	uint64_t want = (uint64_t)(q * (double)h->count), seen = 0;
	for (unsigned i = 0; i < ATP_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen > want || (seen == h->count && seen)) {
			if (i < 8)
				return i;
			unsigned log = i / 8;
			uint64_t low = 1ull << log, top = low + ((uint64_t)(i % 8 + 1) << (log - 3));
			return top > low && top < h->max ? top : h->max;  /* top <= low: it wrapped past 2^64 */
		}
	}
	return 0;
}

#endif
