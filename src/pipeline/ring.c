/* ring.c — the SPSC ring (see atp/ring.h). */
#define _GNU_SOURCE
#include "atp/ring.h"

#include <assert.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CACHE_LINE 64

struct atp_spsc_ring {
	/* Written by the producer only. */
	alignas(CACHE_LINE) _Atomic uint64_t head;  /* elements ever pushed */
	uint64_t tail_seen;                         /* the producer's last look at tail */
	uint64_t staged;                            /* elements ever staged (>= head): atp_spsc_ring_stage */
	/* Written by the consumer only. */
	alignas(CACHE_LINE) _Atomic uint64_t tail;  /* elements ever popped */
	uint64_t head_seen;                         /* the consumer's last look at head */
	/* Read-only after creation. */
	alignas(CACHE_LINE) uint32_t mask;
	uint32_t elem_size;
	uint8_t *slots;
	size_t mirror_bytes;  /* mirrored: the slots are mapped twice in a row, this many bytes each; else 0 */
};

/*
 * bytes of memory mapped at p and again right after it; NULL if the system
 * will not. A memfd mapped twice; where that fails (a file size limit
 * applies to a memfd too) shared anonymous memory, which mremap with an old
 * size of 0 maps again (valgrind does not support this one).
 */
static uint8_t *map_mirrored(size_t bytes)
{
	uint8_t *p = mmap(NULL, 2 * bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	int fd = memfd_create("atp-ring", MFD_CLOEXEC);
	if (fd >= 0 && ftruncate(fd, (off_t)bytes) == 0 &&
	    mmap(p, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == p &&
	    mmap(p + bytes, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == p + bytes) {
		close(fd);
		return p;
	}
	if (fd >= 0)
		close(fd);
	if (mmap(p, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p &&
	    mremap(p, 0, bytes, MREMAP_FIXED | MREMAP_MAYMOVE, p + bytes) == p + bytes)
		return p;
	munmap(p, 2 * bytes);
	return NULL;
}

/*
 * bytes of memory, every page in place: the ring's first lap would
 * otherwise take a page fault every 4 KiB in the hot path (dear in a VM).
 */
static uint8_t *map_populated(size_t bytes)
{
	uint8_t *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static atp_spsc_ring *create(uint32_t capacity, uint32_t elem_size, bool mirrored)
{
	if (capacity < 2 || (capacity & (capacity - 1)) || capacity > (1u << 30) || elem_size == 0 ||
	    elem_size > 4096)
		return NULL;
	size_t bytes = (size_t)capacity * elem_size;
	if (mirrored && bytes % (size_t)sysconf(_SC_PAGESIZE))
		return NULL;
	atp_spsc_ring *r = aligned_alloc(CACHE_LINE, sizeof(*r));
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->mask = capacity - 1;
	r->elem_size = elem_size;
	r->slots = mirrored ? map_mirrored(bytes) : map_populated(bytes);
	if (!r->slots) {
		free(r);
		return NULL;
	}
	r->mirror_bytes = mirrored ? bytes : 0;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	return r;
}

atp_spsc_ring *atp_spsc_ring_create(uint32_t capacity, uint32_t elem_size)
{
	return create(capacity, elem_size, false);
}

atp_spsc_ring *atp_spsc_ring_create_mirrored(uint32_t capacity, uint32_t elem_size)
{
	return create(capacity, elem_size, true);
}

void atp_spsc_ring_destroy(atp_spsc_ring *r)
{
	if (!r)
		return;
	if (r->mirror_bytes)
		munmap(r->slots, 2 * r->mirror_bytes);
	else
		munmap(r->slots, (size_t)(r->mask + 1) * r->elem_size);
	free(r);
}

/* Where n elements from index at lie: the first run up to the end of the slots, then the rest from slot 0. */
static uint8_t *first_run(const atp_spsc_ring *r, uint64_t at, uint32_t n, uint32_t *run)
{
	uint32_t first = (uint32_t)(at & r->mask), until_wrap = r->mask + 1 - first;
	*run = n < until_wrap || r->mirror_bytes ? n : until_wrap;
	return r->slots + (size_t)first * r->elem_size;
}

static void copy_in(atp_spsc_ring *r, uint64_t at, const uint8_t *src, uint32_t n)
{
	uint32_t a;
	uint8_t *slot = first_run(r, at, n, &a);
	memcpy(slot, src, (size_t)a * r->elem_size);
	memcpy(r->slots, src + (size_t)a * r->elem_size, (size_t)(n - a) * r->elem_size);
}

static void copy_out(const atp_spsc_ring *r, uint64_t at, uint8_t *dst, uint32_t n)
{
	uint32_t a;
	const uint8_t *slot = first_run(r, at, n, &a);
	memcpy(dst, slot, (size_t)a * r->elem_size);
	memcpy(dst + (size_t)a * r->elem_size, r->slots, (size_t)(n - a) * r->elem_size);
}

static uint32_t push(atp_spsc_ring *r, const void *elems, uint32_t n, bool all)
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

uint32_t atp_spsc_ring_push(atp_spsc_ring *r, const void *elems, uint32_t n)
{
	return push(r, elems, n, false);
}

uint32_t atp_spsc_ring_push_all(atp_spsc_ring *r, const void *elems, uint32_t n)
{
	return push(r, elems, n, true);
}

uint32_t atp_spsc_ring_pop(atp_spsc_ring *r, void *out, uint32_t max)
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

uint32_t atp_spsc_ring_peek(atp_spsc_ring *r, const void **elems)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (r->head_seen == tail)  /* the producer's line is read only once what was seen is used up */
		r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t have = r->head_seen - tail;
	uint32_t run;
	*elems = first_run(r, tail, (uint32_t)have, &run);
	return run;
}

void atp_spsc_ring_consume(atp_spsc_ring *r, uint32_t n)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	assert(n <= r->head_seen - tail);
	atomic_store_explicit(&r->tail, tail + n, memory_order_release);
}

uint32_t atp_spsc_ring_stage(atp_spsc_ring *r, const void *elems, uint32_t n)
{
	uint64_t capacity = (uint64_t)r->mask + 1;
	if (r->staged - r->tail_seen + n > capacity)
		r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
	uint64_t room = capacity - (r->staged - r->tail_seen);
	assert(room <= capacity);
	uint32_t k = n < room ? n : (uint32_t)room;
	copy_in(r, r->staged, elems, k);
	r->staged += k;
	return k;
}

void *atp_spsc_ring_stage_slot(atp_spsc_ring *r)
{
	uint64_t capacity = (uint64_t)r->mask + 1;
	if (r->staged - r->tail_seen >= capacity)
		r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
	if (r->staged - r->tail_seen >= capacity)
		return NULL;
	/* The slots a few ahead are fetched to be written: the ring is larger than the caches. */
	__builtin_prefetch(r->slots + (size_t)((r->staged + 8) & r->mask) * r->elem_size, 1);
	return r->slots + (size_t)(r->staged & r->mask) * r->elem_size;
}

uint32_t atp_spsc_ring_stage_room(atp_spsc_ring *r)
{
	r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
	return (uint32_t)((uint64_t)r->mask + 1 - (r->staged - r->tail_seen));
}

void atp_spsc_ring_stage_one(atp_spsc_ring *r)
{
	assert(r->staged - r->tail_seen < (uint64_t)r->mask + 1);  /* a slot was handed out */
	r->staged++;
}

uint64_t atp_spsc_ring_staged(const atp_spsc_ring *r)
{
	return r->staged;
}

void atp_spsc_ring_publish(atp_spsc_ring *r, uint64_t mark)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	assert(mark >= head && mark <= r->staged);  /* marks only move forward, and only over staged elements */
	if (mark != head)
		atomic_store_explicit(&r->head, mark, memory_order_release);
}

uint32_t atp_spsc_ring_capacity(const atp_spsc_ring *r)
{
	return r->mask + 1;
}

uint32_t atp_spsc_ring_count(const atp_spsc_ring *r)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	return (uint32_t)(head - tail);
}
