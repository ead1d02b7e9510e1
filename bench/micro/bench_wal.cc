// bench_wal.cc — the WAL append path as a shard worker runs it, without
// the disk: encode each event of the benchmark workload as a WAL record
// (atp_record_encode_event), append it (length, CRC-32C, LSN, copy into the
// group buffer), and hand full groups out with flush_begin/flush_end as if
// the write and fdatasync had succeeded (no I/O: the segment is written by
// nobody, so this times exactly the CPU cost per record).
#include <benchmark/benchmark.h>

#include "atp/record.h"
#include "atp/wal.h"
#include "workload.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace {

void BM_wal_append(benchmark::State &state)
{
	char dir[] = "/tmp/atp-bench-wal-XXXXXX";
	if (!mkdtemp(dir)) {
		state.SkipWithError("mkdtemp");
		return;
	}
	atp_wal_config cfg = atp_wal_config_default();
	cfg.segment_bytes = 1ull << 30;  // one segment: appending never waits for a new one
	char err[512];
	atp_wal *w = atp_wal_open(dir, &cfg, 0, nullptr, nullptr, err, sizeof(err));
	if (!w) {
		state.SkipWithError(err);
		return;
	}
	workload *wl = workload_create(100000, 4, 1u << 16, 11);
	const atp_event *ev = workload_events(wl);
	uint8_t rec[ATP_RECORD_MAX];
	uint64_t n = 0, bytes = 0;
	for (auto _ : state) {
		const atp_event *e = &ev[n++ & 0xffff];
		size_t len = atp_record_encode_event(e, 1700000000000ull + n, rec);
		int rc = atp_wal_append(w, rec, len);
		if (rc == ATP_WAL_FLUSH_FIRST) {
			atp_wal_write wr;
			if (atp_wal_flush_begin(w, &wr))
				atp_wal_flush_end(w, (int)wr.len, 0);  // as if written and synced
			rc = atp_wal_append(w, rec, len);
		}
		if (rc != 0) {
			state.SkipWithError("append failed");
			break;
		}
		bytes += len;
		if (atp_wal_last_lsn(w) >= (1u << 22)) {  // keep within the one segment: start over
			state.PauseTiming();
			atp_wal_close(w);
			std::system((std::string("rm -rf ") + dir + "/*").c_str());
			w = atp_wal_open(dir, &cfg, 0, nullptr, nullptr, err, sizeof(err));
			state.ResumeTiming();
		}
	}
	state.SetItemsProcessed(static_cast<int64_t>(n));
	state.counters["bytes_per_record"] = n ? static_cast<double>(bytes) / static_cast<double>(n) : 0;
	atp_wal_close(w);
	std::system((std::string("rm -rf ") + dir).c_str());
}

}  // namespace

BENCHMARK(BM_wal_append)->Name("wal_append_record")->MinTime(1.0);
