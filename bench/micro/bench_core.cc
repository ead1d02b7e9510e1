// bench_core.cc — apply throughput of the ATP core on one thread.
//
// 100,000 SKUs x 4 locations (400,000 positions), Zipf(1.0) SKU popularity,
// the event mix of a warehouse day; reservations lapse after 600,000 events
// and closed lines are forgotten 100,000 events after they close, so the
// expiry heap and the purge run inside the timed loop as they would live.
#include <benchmark/benchmark.h>

#include "workload.h"

#include <vector>

namespace {

constexpr uint32_t kSkus = 100000;
constexpr uint32_t kLocations = 4;
constexpr size_t kEvents = 1 << 21;
constexpr size_t kBatch = 256;

workload *shared_workload()
{
	static workload *w = workload_create(kSkus, kLocations, kEvents, 42);
	return w;
}

void report(benchmark::State &state, atp_core *core)
{
	const atp_table *t = atp_core_table(core);
	state.SetItemsProcessed(state.iterations() * kBatch);
	state.counters["ns_per_event"] = benchmark::Counter(
		static_cast<double>(state.iterations() * kBatch),
		benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
	state.counters["table_bytes_per_position"] =
		static_cast<double>(atp_table_memory(t)) / atp_table_count(t);
	state.counters["positions"] = atp_table_count(t);
}

template <bool kBatched>
void BM_core_apply(benchmark::State &state)
{
	workload *w = shared_workload();
	uint32_t pass = 0;
	workload_set_pass(w, pass);
	atp_core *core = workload_core(w);
	const atp_event *ev = workload_events(w);
	std::vector<atp_result> res(kBatch);
	std::vector<atp_delta> deltas(kBatch);
	size_t at = 0, nd = 0;
	for (auto _ : state) {
		if (at + kBatch > workload_size(w)) {
			state.PauseTiming();
			workload_set_pass(w, ++pass);
			at = 0;
			state.ResumeTiming();
		}
		while (atp_core_expire(core, workload_time(w, at), deltas.data(), kBatch, &nd) == kBatch) {
		}
		if (kBatched) {
			atp_core_apply_batch(core, ev + at, kBatch, res.data());
		} else {
			for (size_t i = 0; i < kBatch; i++)
				atp_core_apply(core, ev + at + i, &res[i]);
		}
		size_t bad = 0;
		while (bad < kBatch && res[bad].status == ATP_OK)
			bad++;
		if (bad < kBatch) {
			state.SkipWithError(atp_status_name(res[bad].status));
			break;
		}
		at += kBatch;
	}
	report(state, core);
	atp_core_destroy(core);
}

BENCHMARK_TEMPLATE(BM_core_apply, true)->Name("core_apply_batch256")->MinTime(2.0);
BENCHMARK_TEMPLATE(BM_core_apply, false)->Name("core_apply_one_by_one")->MinTime(2.0);

} // namespace

BENCHMARK_MAIN();
