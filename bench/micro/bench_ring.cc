// bench_ring.cc — our SPSC ring (batches of 1 and 32, copied out or read in place) against ck_ring, two pinned threads.
#include <benchmark/benchmark.h>

#include "ring_pair.h"

namespace {

constexpr uint64_t kElements = 4'000'000;

void report(benchmark::State &state, double seconds)
{
	if (seconds < 0) {
		state.SkipWithError("an element was lost or reordered");
		return;
	}
	state.SetIterationTime(seconds);
	state.SetItemsProcessed(state.items_processed() + kElements);
}

void ring_atp(benchmark::State &state)
{
	for (auto _ : state)
		report(state, ring_pair_atp(kElements, static_cast<uint32_t>(state.range(0)), false));
}
BENCHMARK(ring_atp)->Arg(1)->Arg(32)->UseManualTime()->Unit(benchmark::kMillisecond);

void ring_atp_in_place(benchmark::State &state)
{
	for (auto _ : state)
		report(state, ring_pair_atp(kElements, static_cast<uint32_t>(state.range(0)), true));
}
BENCHMARK(ring_atp_in_place)->Arg(32)->UseManualTime()->Unit(benchmark::kMillisecond);

void ring_ck(benchmark::State &state)
{
	for (auto _ : state)
		report(state, ring_pair_ck(kElements));
}
BENCHMARK(ring_ck)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
