/*
 * atp/ring.h — a bounded single-producer / single-consumer ring.
 *
 * One thread pushes, one thread pops; elements of a fixed size are copied
 * in and out in batches, each batch published with one release store and
 * observed with one acquire load. Producer and consumer state sit on their
 * own cache lines, and each side caches the other's index so that it reads
 * the shared line only when it seems full (or empty). Memory is allocated
 * once by atp_spsc_ring_create(); a full ring pushes fewer elements than asked
 * (backpressure for the caller), never blocks and never drops.
 */
#ifndef ATP_RING_H
#define ATP_RING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atp_spsc_ring atp_spsc_ring;

/* capacity: a power of two, at least 2; elem_size: 1 to 4096 bytes. NULL otherwise or out of memory. */
atp_spsc_ring *atp_spsc_ring_create(uint32_t capacity, uint32_t elem_size);
/*
 * The same with the slots mapped twice in a row (capacity * elem_size a
 * multiple of the page size), so that whatever the ring holds is always
 * contiguous: the consumer can work on it in place (atp_spsc_ring_peek).
 */
atp_spsc_ring *atp_spsc_ring_create_mirrored(uint32_t capacity, uint32_t elem_size);
void atp_spsc_ring_destroy(atp_spsc_ring *r);

/* Producer: copy up to n elements in; returns how many fit (0 when full). */
uint32_t atp_spsc_ring_push(atp_spsc_ring *r, const void *elems, uint32_t n);
/* Producer: copy all n elements in, or none when they do not all fit; returns n or 0. */
uint32_t atp_spsc_ring_push_all(atp_spsc_ring *r, const void *elems, uint32_t n);
/* Consumer: copy up to max elements out, oldest first; returns how many (0 when empty). */
uint32_t atp_spsc_ring_pop(atp_spsc_ring *r, void *out, uint32_t max);

/*
 * Consumer, in place: *elems gets the oldest element and the count of those
 * that follow it contiguously (when mirrored: all the ring held when the
 * consumer last looked, which it does again once those are used up); they
 * stay valid and unchanged until atp_spsc_ring_consume() gives the first n back.
 */
uint32_t atp_spsc_ring_peek(atp_spsc_ring *r, const void **elems);
void atp_spsc_ring_consume(atp_spsc_ring *r, uint32_t n);

/*
 * Producer, in two steps, for a producer that may hand elements over only
 * later (the shard worker's deltas wait for the fsync that covers them):
 * atp_spsc_ring_stage() copies elements in after those staged before, without
 * the consumer seeing them (up to n: what fits, 0 when full);
 * atp_spsc_ring_staged() is a mark of everything staged so far, and
 * atp_spsc_ring_publish() hands the consumer every element before a mark. A
 * ring is either staged or pushed into, never both.
 */
uint32_t atp_spsc_ring_stage(atp_spsc_ring *r, const void *elems, uint32_t n);
/*
 * The same for one element written in place: the slot the next staged
 * element goes to (NULL when full), then atp_spsc_ring_stage_one() stages it.
 */
void *atp_spsc_ring_stage_slot(atp_spsc_ring *r);
void atp_spsc_ring_stage_one(atp_spsc_ring *r);
uint64_t atp_spsc_ring_staged(const atp_spsc_ring *r);
/* How many more elements can be staged now (at least; the consumer may free more meanwhile). */
uint32_t atp_spsc_ring_stage_room(atp_spsc_ring *r);
void atp_spsc_ring_publish(atp_spsc_ring *r, uint64_t mark);
uint32_t atp_spsc_ring_capacity(const atp_spsc_ring *r);
/* Elements in the ring as either side last saw them: exact only when both sides are idle. */
uint32_t atp_spsc_ring_count(const atp_spsc_ring *r);

#ifdef __cplusplus
}
#endif

#endif
