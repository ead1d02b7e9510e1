#!/usr/bin/env bash
# The event stream over UDP on loopback, beside TCP, in one run: a
# simulated day (ORDER_LINES, one source) sent by atpctl send (on CPU 0
# with the router; the shard worker on CPU 1) over the kernel UDP path
# (frames of 8 events, one datagram each, a window of WINDOW datagrams)
# and over TCP (frames of 256 events), alternating, RUNS times (default
# 3), medians: events/s acknowledged and datagrams (frames) per second.
# The DPDK path is not built yet (issue 26). Prints a markdown report.
# Usage: bench/e2e/udp.sh [ORDER_LINES]
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/setup
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build src/atpd tools/atpctl >/dev/null
atpd=build/src/atpd atpctl=build/tools/atpctl
runs=${RUNS:-3}
lines=${1:-100000}
window=${WINDOW:-256}
dir=var/bench-udp
rm -rf "$dir" && mkdir -p "$dir"
$atpctl simday --out "$dir/day.csv" --order-lines "$lines" --seed 1 --one-source 2>/dev/null
events=$(($(wc -l <"$dir/day.csv") - 1))

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

one_run() { # one_run udp|tcp
	local mode=$1
	rm -rf "$dir/data"
	$atpd --data "$dir/data" --set listen=127.0.0.1:0 --set udp_listen=127.0.0.1:0 --set grpc_listen=none \
		--set metrics_listen=none --set clock=frozen --set workers=1 --set shards=1 --set router_cpu=0 --set first_cpu=1 \
		--set max_positions=524288 --set max_lines=1048576 2>"$dir/$mode.log" &
	local pid=$!
	for _ in $(seq 1 400); do grep -q "atpd: serving" "$dir/$mode.log" && break; sleep 0.05; done
	local port
	if [ "$mode" = udp ]; then
		port=$(sed -n 's/.*udp event stream on .*(port \([0-9]*\)).*/\1/p' "$dir/$mode.log")
		taskset -c 0 $atpctl send --udp "127.0.0.1:$port" "$dir/day.csv" --window "$window" >"$dir/$mode.send" 2>&1
	else
		port=$(sed -n 's/.*event stream listening on .*(port \([0-9]*\)).*/\1/p' "$dir/$mode.log")
		taskset -c 0 $atpctl send --tcp "127.0.0.1:$port" "$dir/day.csv" >"$dir/$mode.send" 2>&1
	fi
	local secs frames
	secs=$(sed -n 's/.*acknowledged in \([0-9.]*\) s.*/\1/p' "$dir/$mode.send")
	frames=$(sed -n 's/.* events in \([0-9]*\) frames.*/\1/p' "$dir/$mode.send")
	awk -v e="$events" -v s="$secs" 'BEGIN { printf "%.0f\n", e / s }' >>"$dir/events.$mode"
	awk -v f="$frames" -v s="$secs" 'BEGIN { printf "%.0f\n", f / s }' >>"$dir/frames.$mode"
	kill -TERM "$pid"
	wait "$pid" || true
}

for _ in $(seq 1 "$runs"); do
	one_run udp
	one_run tcp
done
echo
echo "## The event stream over UDP ($(date -u +%F), commit $(git rev-parse --short HEAD), $(nproc) CPUs, $events events, medians of $runs runs)"
echo
echo "| path | events/s acknowledged | frames (datagrams) per second |"
echo "|---|---|---|"
echo "| kernel UDP, 8 events a datagram, window $window | $(median <"$dir/events.udp") | $(median <"$dir/frames.udp") |"
echo "| TCP, 256 events a frame | $(median <"$dir/events.tcp") | $(median <"$dir/frames.tcp") |"
echo "| DPDK (net_af_packet) | not built yet | |"
