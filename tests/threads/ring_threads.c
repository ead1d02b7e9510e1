/*
 * ring_threads.c — the SPSC ring between two real threads: a producer
 * pushes 0, 1, 2, ... in random batches, spinning while the ring is full;
 * the consumer pops in random batches (or, on a mirrored ring, reads them
 * in place and gives them back) and checks that every element arrives
 * once, in order. Plain C (no Criterion) so that the
 * ThreadSanitizer build runs it too. Prints "N passed, N failed".
 */
#include "../../tools/lib/prng.h"
#include "atp/ring.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>

enum { N = 200000 };

typedef struct run {
	atp_spsc_ring *ring;
	uint32_t max_push;
} run;

static void *produce(void *arg)
{
	const run *p = arg;
	atp_prng g;
	atp_prng_seed(&g, p->max_push);
	uint64_t next = 0, batch[64];
	while (next < N) {
		uint32_t n = (uint32_t)atp_prng_range(&g, 1, p->max_push);
		if (next + n > N)
			n = (uint32_t)(N - next);
		for (uint32_t i = 0; i < n; i++)
			batch[i] = next + i;
		for (uint32_t done = 0, k; done < n; done += k)
			if ((k = atp_spsc_ring_push(p->ring, batch + done, n - done)) == 0)
				sched_yield(); /* full: let the consumer run, even on one core */
		next += n;
	}
	return NULL;
}

/* 0 when every element arrived once and in order. */
static int check(uint32_t capacity, uint32_t max_push, uint32_t max_pop, bool in_place)
{
	atp_spsc_ring *r = in_place ? atp_spsc_ring_create_mirrored(capacity, sizeof(uint64_t))
				    : atp_spsc_ring_create(capacity, sizeof(uint64_t));
	run p = { r, max_push };
	pthread_t producer;
	atp_prng g;
	uint64_t expect = 0, out[64];
	int bad = 0;
	atp_prng_seed(&g, max_pop);
	pthread_create(&producer, NULL, produce, &p);
	while (expect < N && !bad) {
		uint32_t want = (uint32_t)atp_prng_range(&g, 1, max_pop), n;
		const uint64_t *in = out;
		if (in_place) {
			const void *q;
			n = atp_spsc_ring_peek(p.ring, &q);
			n = n < want ? n : want;
			in = q;
		} else {
			n = atp_spsc_ring_pop(p.ring, out, want);
		}
		if (n == 0)
			sched_yield();
		for (uint32_t i = 0; i < n && !bad; i++)
			bad = in[i] != expect++;
		if (in_place && n)
			atp_spsc_ring_consume(p.ring, n);
	}
	pthread_join(producer, NULL); /* on a mismatch the producer still ends: the consumer drains below */
	while (atp_spsc_ring_pop(p.ring, out, 64) > 0)
		bad |= expect >= N;
	atp_spsc_ring_destroy(p.ring);
	printf("%s - capacity %u, pushes of 1..%u, %s of 1..%u\n", bad ? "not ok" : "ok", capacity, max_push,
	       in_place ? "reads in place" : "pops", max_pop);
	return bad;
}

int main(void)
{
	static const uint32_t cases[][4] = { { 2, 1, 1, 0 },	  { 8, 64, 3, 0 },     { 256, 64, 64, 0 },
					     { 1024, 7, 64, 0 },  { 512, 64, 64, 1 }, { 512, 5, 600, 1 } };
	int failed = 0, n = (int)(sizeof(cases) / sizeof(*cases));
	for (int i = 0; i < n; i++)
		failed += check(cases[i][0], cases[i][1], cases[i][2], cases[i][3]);
	printf("%d passed, %d failed\n", n - failed, failed);
	return failed != 0;
}
