/*
 * ring_pair.c — our SPSC ring against Concurrency Kit's ck_ring, each with
 * a producer and a consumer thread on their own CPUs, 4096 slots, moving
 * the numbers 1..n in order (the consumer checks every one).
 */
#define _GNU_SOURCE
#include "ring_pair.h"

#include "atp/ring.h"

#include <ck_ring.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#define SLOTS 4096

typedef struct pair {
	uint64_t n;
	uint32_t batch;
	bool in_place;  /* the consumer reads the mirrored ring where the elements lie (atp_spsc_ring_peek) */
	atp_spsc_ring *ring;
	ck_ring_t ck;
	ck_ring_buffer_t *ck_buf;
	bool ok;
} pair;

static void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu % CPU_SETSIZE, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *atp_consumer(void *arg)
{
	pair *p = arg;
	uint64_t buf[256], want = 1;
	pin(1);
	while (want <= p->n) {
		const uint64_t *in = buf;
		uint32_t k;
		if (p->in_place) {
			const void *q;
			k = atp_spsc_ring_peek(p->ring, &q);
			k = k < p->batch ? k : p->batch;
			in = q;
		} else {
			k = atp_spsc_ring_pop(p->ring, buf, p->batch);
		}
		for (uint32_t i = 0; i < k; i++)
			p->ok &= in[i] == want++;
		if (p->in_place && k)
			atp_spsc_ring_consume(p->ring, k);
	}
	return NULL;
}

double ring_pair_atp(uint64_t n, uint32_t batch, bool in_place)
{
	pair p = { .n = n, .batch = batch > 256 ? 256 : batch, .in_place = in_place,
		   .ring = in_place ? atp_spsc_ring_create_mirrored(SLOTS, 8) : atp_spsc_ring_create(SLOTS, 8), .ok = true };
	if (!p.ring)
		return -1;
	pthread_t t;
	uint64_t buf[256];
	pin(0);
	pthread_create(&t, NULL, atp_consumer, &p);
	double t0 = now();
	for (uint64_t next = 1; next <= n;) {
		uint32_t k = 0;
		while (k < p.batch && next + k <= n) {
			buf[k] = next + k;
			k++;
		}
		uint32_t done = 0;
		while (done < k)
			done += atp_spsc_ring_push(p.ring, buf + done, k - done);
		next += k;
	}
	pthread_join(t, NULL);
	double s = now() - t0;
	atp_spsc_ring_destroy(p.ring);
	return p.ok ? s : -1;
}

static void *ck_consumer(void *arg)
{
	pair *p = arg;
	uint64_t want = 1;
	void *v;
	pin(1);
	while (want <= p->n) {
		if (ck_ring_dequeue_spsc(&p->ck, p->ck_buf, &v))
			p->ok &= (uint64_t)(uintptr_t)v == want++;
	}
	return NULL;
}

double ring_pair_ck(uint64_t n)
{
	pair p = { .n = n, .ck_buf = calloc(SLOTS, sizeof(ck_ring_buffer_t)), .ok = true };
	pthread_t t;
	ck_ring_init(&p.ck, SLOTS);
	pin(0);
	pthread_create(&t, NULL, ck_consumer, &p);
	double t0 = now();
	for (uint64_t i = 1; i <= n; i++)
		while (!ck_ring_enqueue_spsc(&p.ck, p.ck_buf, (void *)(uintptr_t)i))
			;
	pthread_join(t, NULL);
	double s = now() - t0;
	free(p.ck_buf);
	return p.ok ? s : -1;
}
