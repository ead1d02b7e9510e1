/* ring.c — the SPSC ring (see atp/ring.h). */
#include "atp/ring.h"

#include <assert.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_LINE 64

struct atp_ring {
	/* Written by the producer only. */
	alignas(CACHE_LINE) _Atomic uint64_t head;  /* elements ever pushed */
	uint64_t tail_seen;                         /* the producer's last look at tail */
	/* Written by the consumer only. */
	alignas(CACHE_LINE) _Atomic uint64_t tail;  /* elements ever popped */
	uint64_t head_seen;                         /* the consumer's last look at head */
	/* Read-only after creation. */
	alignas(CACHE_LINE) uint32_t mask;
	uint32_t elem_size;
	uint8_t *slots;
};

atp_ring *atp_ring_create(uint32_t capacity, uint32_t elem_size)
{
	if (capacity < 2 || (capacity & (capacity - 1)) || capacity > (1u << 30) || elem_size == 0 ||
	    elem_size > 4096)
		return NULL;
	atp_ring *r = aligned_alloc(CACHE_LINE, sizeof(*r));
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->mask = capacity - 1;
	r->elem_size = elem_size;
	r->slots = malloc((size_t)capacity * elem_size);
	if (!r->slots) {
		free(r);
		return NULL;
	}
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	return r;
}

void atp_ring_destroy(atp_ring *r)
{
	if (!r)
		return;
	free(r->slots);
	free(r);
}

/* Where n elements from index at lie: the first run up to the end of the slots, then the rest from slot 0. */
static uint8_t *first_run(const atp_ring *r, uint64_t at, uint32_t n, uint32_t *run)
{
	uint32_t first = (uint32_t)(at & r->mask), until_wrap = r->mask + 1 - first;
	*run = n < until_wrap ? n : until_wrap;
	return r->slots + (size_t)first * r->elem_size;
}

static void copy_in(atp_ring *r, uint64_t at, const uint8_t *src, uint32_t n)
{
	uint32_t a;
	uint8_t *slot = first_run(r, at, n, &a);
	memcpy(slot, src, (size_t)a * r->elem_size);
	memcpy(r->slots, src + (size_t)a * r->elem_size, (size_t)(n - a) * r->elem_size);
}

static void copy_out(const atp_ring *r, uint64_t at, uint8_t *dst, uint32_t n)
{
	uint32_t a;
	const uint8_t *slot = first_run(r, at, n, &a);
	memcpy(dst, slot, (size_t)a * r->elem_size);
	memcpy(dst + (size_t)a * r->elem_size, r->slots, (size_t)(n - a) * r->elem_size);
}

static uint32_t push(atp_ring *r, const void *elems, uint32_t n, bool all)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t capacity = (uint64_t)r->mask + 1;
	if (head - r->tail_seen + n > capacity)
		r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
	uint64_t room = capacity - (head - r->tail_seen);
	assert(room <= capacity);
	uint32_t k = n < room ? n : (uint32_t)room;
	if (k == 0 || (all && k < n))
		return 0;
	copy_in(r, head, elems, k);
	atomic_store_explicit(&r->head, head + k, memory_order_release);
	return k;
}

uint32_t atp_ring_push(atp_ring *r, const void *elems, uint32_t n)
{
	return push(r, elems, n, false);
}

uint32_t atp_ring_push_all(atp_ring *r, const void *elems, uint32_t n)
{
	return push(r, elems, n, true);
}

uint32_t atp_ring_pop(atp_ring *r, void *out, uint32_t max)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (r->head_seen - tail < max)
		r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t have = r->head_seen - tail;
	assert(have <= (uint64_t)r->mask + 1);
	uint32_t k = max < have ? max : (uint32_t)have;
	if (k == 0)
		return 0;
	copy_out(r, tail, out, k);
	atomic_store_explicit(&r->tail, tail + k, memory_order_release);
	return k;
}

uint32_t atp_ring_capacity(const atp_ring *r)
{
	return r->mask + 1;
}

uint32_t atp_ring_count(const atp_ring *r)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	return (uint32_t)(head - tail);
}
