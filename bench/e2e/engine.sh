#!/usr/bin/env bash
# End to end through the durable engine: a simulated day (250,000 order
# lines, ~590,000 events) read from the binary event file, routed, applied
# by the shard worker and made durable by its WAL with fsync on; RUNS times
# (default 5), medians. Then recovery: the WAL alone replayed (snapshots
# removed), and a snapshot alone loaded. Prints a markdown report with the
# machine description. Usage: bench/e2e/engine.sh [IMPORT OPTIONS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/setup
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build tools/atpctl >/dev/null
atpctl=build/tools/atpctl
runs=${RUNS:-5}
dir=var/bench
rm -rf "$dir" && mkdir -p "$dir"
$atpctl simday --out "$dir/day.csv" 2>/dev/null
$atpctl convert "$dir/day.csv" "$dir/day.evb" 2>/dev/null
echo "event_id,source,seq,type,sku,location,qty,ref,to_location,reason" >"$dir/empty.csv"

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { # field PATTERN FILE: the number before PATTERN on the engine's lines
	grep -oE "[0-9.]+ $1" "$2" | head -1 | awk '{ print $1 }'
}

for i in $(seq 1 "$runs"); do
	rm -rf "$dir/data"
	$atpctl import "$dir/day.evb" --data "$dir/data" "$@" >"$dir/run$i.out" 2>/dev/null
	field "M events/s" "$dir/run$i.out" >>"$dir/rate"
	field "events per fsync" "$dir/run$i.out" >>"$dir/per_fsync"
	grep -oE "fsync p50 [0-9.]+" "$dir/run$i.out" | awk '{ print $3 }' >>"$dir/p50"
	grep -oE "p99 [0-9.]+ ms" "$dir/run$i.out" | awk '{ print $2 }' >>"$dir/p99"
	grep -oE "peak RSS [0-9]+" "$dir/run$i.out" | awk '{ print $3 }' >>"$dir/rss"
done
events=$(grep -oE "[0-9]+ events durable" "$dir/run1.out" | awk '{ print $1 }')

# Recovery: the last run's directory, first without its snapshots (the whole WAL replayed) ...
rm -f "$dir"/data/shard-*/snap-*
# "recovery N records in T s (tables A s, snapshot B s, WAL C s)": rates of the replay alone and of the whole open.
recovery() { grep -oE "recovery [0-9]+ records in [0-9.]+ s \(tables [0-9.]+ s, snapshot [0-9.]+ s, WAL [0-9.]+ s\)" | tr -d '(),'; }
for i in $(seq 1 "$runs"); do
	cp -r "$dir/data" "$dir/wal-only"
	$atpctl import "$dir/empty.csv" --data "$dir/wal-only" 2>&1 | recovery |
		awk -v r="$dir/replay" -v o="$dir/replay_open" -v t="$dir/tables" \
			'{ print $2 / $14 / 1e6 >>r; print $2 / $5 / 1e6 >>o; print $8 * 1000 >>t }'
	rm -rf "$dir/wal-only"
done
# ... then from the snapshot that the last of those wrote (nothing left to replay).
cp -r "$dir/data" "$dir/snap"
$atpctl import "$dir/empty.csv" --data "$dir/snap" >/dev/null 2>&1
for i in $(seq 1 "$runs"); do
	$atpctl import "$dir/empty.csv" --data "$dir/snap" 2>&1 | recovery |
		awk -v n="$events" -v l="$dir/load" -v o="$dir/load_open" '{ print n / $11 / 1e6 >>l; print n / $5 / 1e6 >>o }'
done

cat <<REPORT
## atpd engine, end to end ($(date -u +%Y-%m-%d))

Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ { print $2 }') GiB,
kernel $(uname -r), data on $(df -T "$dir" | awk 'NR == 2 { print $2 }'). Workload: one simulated day, $events events
(binary event file), import options: ${*:-defaults (1 shard, router on CPU 0, worker on CPU 1)}. Medians of $runs runs.

| measure | median | target |
|---|---|---|
| events/s durable (fsync on) | $(median <"$dir/rate") M | 3 M |
| events per fsync | $(median <"$dir/per_fsync") | |
| fsync p50 / p99 (histogram upper bounds) | $(median <"$dir/p50") / $(median <"$dir/p99") ms | |
| peak RSS | $(median <"$dir/rss") MB | |
| recovery: WAL replay (scan, checks, apply) | $(median <"$dir/replay") M events/s | 5 M |
| recovery: snapshot load (events covered / load time) | $(median <"$dir/load") M events/s | 5 M |
| the whole open from the WAL alone (tables, replay, the rest) | $(median <"$dir/replay_open") M events/s | |
| the whole open from the snapshot | $(median <"$dir/load_open") M events/s | |
| allocating the tables (1 shard, default capacity: hash slots faulted in) | $(median <"$dir/tables") ms | |
REPORT
