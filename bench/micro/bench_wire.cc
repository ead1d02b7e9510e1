// bench_wire.cc — the EventBatch codec: verify + decode, and build, of a
// batch of 256 realistic events (the benchmark workload's mix and keys).
#include <benchmark/benchmark.h>

#include "atp/wire_event.h"
#include "workload.h"

#include <vector>

namespace {

constexpr uint32_t kBatch = 256;

struct Batch {
	std::vector<uint8_t> mem = std::vector<uint8_t>(1 << 20);
	const uint8_t *buf = nullptr;
	size_t len = 0;
};

const atp_event *sample_events()
{
	static workload *w = workload_create(1000, 4, kBatch, 7);
	return workload_events(w);
}

void build(atp_fb_builder *b, Batch *out)
{
	const atp_event *ev = sample_events();
	atp_fb_ref refs[kBatch];
	for (uint32_t i = 0; i < kBatch; i++)
		refs[i] = atp_wire_build_event(b, &ev[i], atp_wire_event_time{ 1700000000000ull + i, ev[i].expires_at ? 600000u : 0u });
	out->buf = atp_fb_finish(b, atp_wire_build_event_batch(b, refs, kBatch), nullptr, &out->len);
}

void BM_wire_verify_decode_batch256(benchmark::State &state)
{
	Batch batch;
	atp_fb_builder b;
	atp_fb_builder_init(&b, batch.mem.data(), batch.mem.size());
	build(&b, &batch);
	std::vector<atp_event> out(kBatch);
	for (auto _ : state) {
		int n = atp_wire_decode_event_batch(batch.buf, batch.len, out.data(), nullptr, kBatch);
		if (n != static_cast<int>(kBatch)) {
			state.SkipWithError("decode failed");
			break;
		}
		benchmark::DoNotOptimize(out.data());
	}
	state.SetItemsProcessed(state.iterations() * kBatch);
	state.counters["bytes_per_event"] = static_cast<double>(batch.len) / kBatch;
}

void BM_wire_build_batch256(benchmark::State &state)
{
	Batch batch;
	for (auto _ : state) {
		atp_fb_builder b;
		atp_fb_builder_init(&b, batch.mem.data(), batch.mem.size());
		build(&b, &batch);
		if (!batch.buf) {
			state.SkipWithError("build failed");
			break;
		}
		benchmark::DoNotOptimize(batch.buf);
	}
	state.SetItemsProcessed(state.iterations() * kBatch);
}

BENCHMARK(BM_wire_verify_decode_batch256)->Name("wire_verify_decode_batch256")->MinTime(1.0);
BENCHMARK(BM_wire_build_batch256)->Name("wire_build_batch256")->MinTime(1.0);

} // namespace
