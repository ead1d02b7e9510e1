/* ring_pair.h — one producer thread and one consumer thread moving n pointers through a ring. */
#ifndef ATP_BENCH_RING_PAIR_H
#define ATP_BENCH_RING_PAIR_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Seconds to move n 8-byte elements through atp_spsc_ring in batches of `batch`
 * (in_place: the consumer reads a mirrored ring where they lie, as the shard
 * worker does); < 0 when an element was lost or reordered.
 */
double ring_pair_atp(uint64_t n, uint32_t batch, bool in_place);
/* The same through Concurrency Kit's ck_ring (SPSC, one element per call). */
double ring_pair_ck(uint64_t n);

#ifdef __cplusplus
}
#endif

#endif
