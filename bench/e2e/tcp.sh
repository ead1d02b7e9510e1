#!/usr/bin/env bash
# The TCP event stream end to end on loopback: atpd (router on CPU 0, one
# shard worker on CPU 1, fsync on) and 4 senders (atpctl send, each its own
# simulated day as one source, batches of 256), all on this machine; the
# senders share CPU 0 with the router (taskset), leaving CPU 1 to the shard
# worker, as on a box whose WMS adapters run elsewhere. Events per second
# are the 4 senders' events over the wall time from the first sender's
# first byte to the last one's last Ack (the CSV loading before excluded);
# ack latency is per frame (written to the socket -> its Ack), the 4
# senders' worst p50 and p99.
# RUNS times (default 5), medians. Then one run under `strace -c -f` for the
# daemon's syscalls per 1,000 events. Prints a markdown report.
# Usage: bench/e2e/tcp.sh [ORDER_LINES_PER_SENDER]
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/setup
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build src/atpd tools/atpctl >/dev/null
atpd=build/src/atpd atpctl=build/tools/atpctl
runs=${RUNS:-5}
lines=${1:-250000}
dir=var/bench-tcp
rm -rf "$dir" && mkdir -p "$dir"
for k in 1 2 3 4; do
	$atpctl simday --out "$dir/s$k.csv" --order-lines "$lines" --seed "$k" --prefix "s$k-" --one-source 2>/dev/null &
done
wait
events=$(($(cat "$dir"/s?.csv | wc -l) - 4))

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

one_run() { # one_run TAG [WRAPPER...]: start atpd (under WRAPPER), stream the 4 days, stop it
	local tag=$1; shift
	rm -rf "$dir/data"
	"$@" "$atpd" --data "$dir/data" --set listen=127.0.0.1:0 --set grpc_listen=none --set metrics_listen=none --set clock=frozen --set max_positions=524288 \
		--set max_lines=4194304 2>"$dir/$tag.log" &
	local pid=$!
	for _ in $(seq 1 400); do grep -q "atpd: serving" "$dir/$tag.log" && break; sleep 0.05; done
	local port
	port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$dir/$tag.log")
	local senders=()
	for k in 1 2 3 4; do
		taskset -c 0 $atpctl send --tcp "127.0.0.1:$port" "$dir/s$k.csv" --batch 256 --window-kb "${WINDOW_KB:-1024}" >"$dir/$tag.s$k" \
			2>"$dir/$tag.s$k.err" &
		senders+=($!)
	done
	wait "${senders[@]}"
	if grep -h "^sent:" "$dir/$tag".s? | grep -qv " 0 refused"; then
		echo "refusals in run $tag: see $dir/$tag.s*.err" >&2
		exit 1
	fi
	pkill -TERM -f "atpd --data $dir/data" || true
	wait "$pid" || true
	cat "$dir/$tag".s? | awk -v n="$events" '$1 == "stream:" { if (!a || $3 < a) a = $3; if ($5 > b) b = $5 }
		END { printf "%.3f\n", n / (b - a) / 1e6 }' >>"$dir/rate.$tag"
	grep -h "ack latency" "$dir/$tag".s? | grep -oE "p50 [0-9.]+" | awk '{ print $2 }' | sort -g | tail -1 >>"$dir/p50.$tag"
	grep -h "ack latency" "$dir/$tag".s? | grep -oE "p99 [0-9.]+" | awk '{ print $2 }' | sort -g | tail -1 >>"$dir/p99.$tag"
}

for i in $(seq 1 "$runs"); do one_run run; done
if command -v strace >/dev/null; then
	one_run strace strace -c -f -o "$dir/strace.txt"
	calls=$(awk '$NF == "total" { print $(NF-2) }' "$dir/strace.txt")
fi

cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
echo "## TCP event stream, loopback ($(date -u +%Y-%m-%d))"
echo
echo "Machine: $(nproc) vCPU $cpu, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)."
echo "Workload: 4 senders x one simulated day ($lines order lines each), $events events in all, batches of 256,"
echo "fsync on, one shard worker; $runs runs, medians."
echo
echo "| metric | median | runs |"
echo "|---|---|---|"
echo "| events/s acknowledged (M) | $(median <"$dir/rate.run") | $(tr '\n' ' ' <"$dir/rate.run")|"
echo "| ack latency p50 (ms, worst sender) | $(median <"$dir/p50.run") | $(tr '\n' ' ' <"$dir/p50.run")|"
echo "| ack latency p99 (ms, worst sender) | $(median <"$dir/p99.run") | $(tr '\n' ' ' <"$dir/p99.run")|"
if [ -n "${calls:-}" ]; then
	echo "| daemon syscalls per 1,000 events (strace -c -f, one run) | $(awk -v c="$calls" -v n="$events" 'BEGIN { printf "%.1f", c * 1000 / n }') | $calls calls |"
	echo
	echo "Top syscalls of that run:"
	echo
	echo '```'
	head -12 "$dir/strace.txt"
	echo '```'
fi
