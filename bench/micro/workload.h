/*
 * workload.h — the benchmark's warehouse: SKUs x locations with Zipf(1.0)
 * SKU popularity and the event mix of a day (about 45% RESERVE, 45% PICK
 * naming an earlier reservation, the rest receipts, adjusts, counts, holds,
 * unholds and releases), pre-generated so that generating costs nothing
 * inside the timed loop. Each event's strings point into its own block of
 * key bytes, laid out in event order as a shard worker's decoded frames
 * hold them. Every event is valid and in sequence; each pass
 * over the array is made fresh by workload_set_pass() (new seqs, new
 * reservation ids), so the core never sees duplicates.
 */
#ifndef ATP_BENCH_WORKLOAD_H
#define ATP_BENCH_WORKLOAD_H

#include "atp/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct workload workload;

workload *workload_create(uint32_t skus, uint32_t locations, size_t n_events, uint64_t seed);
void workload_destroy(workload *w);
/* A core sized for the workload with every position received into. */
atp_core *workload_core(const workload *w);
const atp_event *workload_events(const workload *w);
size_t workload_size(const workload *w);
/*
 * Make pass number `pass` of the events: seqs continue from the pass before,
 * reservation ids and times are new. Pass 0 follows workload_core().
 */
void workload_set_pass(workload *w, uint32_t pass);
/* Time (ms) of event i of the current pass: one event per ms. */
uint64_t workload_time(const workload *w, size_t i);

#ifdef __cplusplus
}
#endif

#endif
