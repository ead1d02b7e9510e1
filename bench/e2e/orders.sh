#!/usr/bin/env bash
# Whole-order Reserve (policy ALL_OR_NOTHING) beside the per-line Reserve,
# on loopback, on this machine: a fresh atpd with SHARDS shards (default 4)
# on 2 workers (fsync on) holding SKUS positions (SKU-000000.. at DC01, stock
# enough for every reserve), and atpctl grpc-load, closed loop, 4 connections
# x 16 calls, every reservation new and durable, lines on consecutive SKUs
# (so spread over the shards and both workers): 1, 4 and 16 lines per call,
# each policy in turn (the order of the two alternates per run). RUNS times
# (default 3): medians of calls/s, lines/s and p99. In the same runs,
# GetAtpProfile over a 30-day horizon beside GetAtp (4 connections x 16
# calls, uniform SKUs), each SKU with three purchase orders due in 2, 9 and
# 20 days. Prints a markdown report.
# Usage: bench/e2e/orders.sh [SKUS]
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/setup
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build src/atpd tools/atpctl >/dev/null
atpd=build/src/atpd atpctl=build/tools/atpctl
runs=${RUNS:-3} shards=${SHARDS:-4} seconds=${SECONDS_PER:-5}
skus=${1:-100000}
dir=var/bench-orders
rm -rf "$dir" && mkdir -p "$dir"
d2=$(date -u -d "+2 days" +%F) d9=$(date -u -d "+9 days" +%F) d20=$(date -u -d "+20 days" +%F)
awk -v n="$skus" -v d2="$d2" -v d9="$d9" -v d20="$d20" 'BEGIN { print "event_id,source,seq,type,sku,location,qty,ref,to_location,reason,date"
	for (i = 0; i < n; i++) printf "%d,wms,%d,RECEIPT,SKU-%06d,DC01,1000000000000,,,,\n", i + 1, i + 1, i
	s = n; split(d2 " " d9 " " d20, eta, " ")
	for (i = 0; i < n; i++) for (k = 1; k <= 3; k++) { s++; printf "%d,wms,%d,SUPPLY,SKU-%06d,DC01,%d,PO-%d,,,%s\n", s, s, i, 100 * k, k, eta[k] } }' >"$dir/stock.csv"

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

start_atpd() {
	rm -rf "$dir/data"
	"$atpd" --data "$dir/data" --set listen=127.0.0.1:0 --set grpc_listen=127.0.0.1:0 --set metrics_listen=127.0.0.1:0 \
		--set clock=frozen --set shards="$shards" --set workers=2 --set first_cpu=0 \
		--set max_positions=$((skus * 2)) --set max_lines=8388608 2>"$dir/atpd.log" &
	pid=$!
	for _ in $(seq 1 400); do grep -q "atpd: serving" "$dir/atpd.log" && break; sleep 0.05; done
	tcp=$(sed -n 's/.*event stream listening.*(port \([0-9]*\)).*/\1/p' "$dir/atpd.log")
	grpc=$(sed -n 's/.*grpc listening.*(port \([0-9]*\)).*/\1/p' "$dir/atpd.log")
	$atpctl send --tcp "127.0.0.1:$tcp" "$dir/stock.csv" >/dev/null 2>&1
}
stop_atpd() {
	kill -TERM "$pid"
	wait "$pid" || true
}
trap 'kill $pid 2>/dev/null || true' EXIT
field() { grep -oE "$1 [0-9.]+" | awk '{ print $2 }'; }

for i in $(seq 1 "$runs"); do
	start_atpd
	policies="per-line all-or-nothing"
	[ $((i % 2)) -eq 0 ] && policies="all-or-nothing per-line"
	for l in 1 4 16; do
		for p in $policies; do
			out="$dir/$p.$l.$i"
			$atpctl grpc-load --grpc "127.0.0.1:$grpc" --skus "$skus" --seconds "$seconds" --method reserve \
				--connections 4 --concurrency 16 --lines "$l" --policy "$p" --seed "$i" >"$out" ||
				{ cat "$out" >&2; exit 1; }
			grep -oE "[0-9]+ calls/s" "$out" | awk '{ print $1 }' >>"$dir/$p.$l.calls"
			grep -oE "[0-9]+ lines/s" "$out" | awk '{ print $1 }' >>"$dir/$p.$l.lines"
			field p99 <"$out" >>"$dir/$p.$l.p99"
		done
	done
	for m in getatp profile; do
		out="$dir/$m.$i"
		$atpctl grpc-load --grpc "127.0.0.1:$grpc" --skus "$skus" --seconds "$seconds" --method "$m" \
			--connections 4 --concurrency 16 --seed "$i" >"$out" || { cat "$out" >&2; exit 1; }
		grep -oE "[0-9]+ calls/s" "$out" | awk '{ print $1 }' >>"$dir/$m.calls"
		field p99 <"$out" >>"$dir/$m.p99"
	done
	stop_atpd
done
trap - EXIT

cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
echo "## Whole-order Reserve, loopback ($(nproc) CPUs: $cpu; $shards shards on 2 workers; $skus positions; 4x16 calls; medians of $runs runs)"
echo
echo "| lines per call | policy | calls/s | lines/s | p99 ms | runs (calls/s) |"
echo "|---|---|---|---|---|---|"
for l in 1 4 16; do
	for p in per-line all-or-nothing; do
		echo "| $l | $p | $(median <"$dir/$p.$l.calls") | $(median <"$dir/$p.$l.lines") | $(median <"$dir/$p.$l.p99") | $(tr '\n' ' ' <"$dir/$p.$l.calls") |"
	done
done
echo
echo "## GetAtpProfile, 30 days (3 purchase orders per SKU), beside GetAtp; 4x16 calls; medians of $runs runs"
echo
echo "| method | calls/s | p99 ms | runs (calls/s) |"
echo "|---|---|---|---|"
for m in getatp profile; do
	echo "| $m | $(median <"$dir/$m.calls") | $(median <"$dir/$m.p99") | $(tr '\n' ' ' <"$dir/$m.calls") |"
done
