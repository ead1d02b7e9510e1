#!/usr/bin/env bash
# The gRPC API end to end on loopback, on this machine: atpd (router and
# gRPC on CPU 0, one shard worker on CPU 1, fsync on) holding SKUS
# positions (SKU-000000.. at DC01, stock enough for every reserve), and
# the load generators pinned to CPU 1:
#   - GetAtp, closed loop, with h2load (nghttp2's, 4 connections x 32
#     streams, one request body) and with atpctl grpc-load (4 x 32, random
#     SKUs): calls/s as each tool counts them and as atpd counts its
#     replies (atpd_grpc_replies_total, before and after), and the calls
#     each kept in flight by Little's law (its calls/s x its mean latency);
#   - GetAtp open loop at 50,000 calls/s (half the 100,000 target) with
#     atpctl grpc-load: p50 and p99 of call latency;
#   - Reserve, closed loop with atpctl grpc-load (4 x 64, every reservation
#     new and durable: one line, then 4 lines): lines/s, p50/p99.
# RUNS times (default 5), medians. Prints a markdown report.
# Usage: bench/e2e/grpc.sh [SKUS]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/metrics.sh
tools/setup
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build src/atpd tools/atpctl >/dev/null
atpd=build/src/atpd atpctl=build/tools/atpctl
runs=${RUNS:-5}
skus=${1:-100000}
dir=var/bench-grpc
rm -rf "$dir" && mkdir -p "$dir"
awk -v n="$skus" 'BEGIN { print "event_id,source,seq,type,sku,location,qty,ref,to_location,reason"
	for (i = 0; i < n; i++) printf "%d,wms,%d,RECEIPT,SKU-%06d,DC01,1000000000000,,,\n", i + 1, i + 1, i }' >"$dir/stock.csv"
/usr/bin/python3 - "$dir/getatp.bin" <<'EOF'
import struct, sys
import flatbuffers
b = flatbuffers.Builder(64)
s = b.CreateString("SKU-000042")
b.StartObject(2); b.PrependUOffsetTRelativeSlot(0, s, 0); b.Finish(b.EndObject())  # atp.v1.AtpQuery{sku}
m = bytes(b.Output())
open(sys.argv[1], "wb").write(b"\0" + struct.pack(">I", len(m)) + m)
EOF

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

start_atpd() { # a fresh daemon holding the stock (each run starts from the same state)
	rm -rf "$dir/data"
	"$atpd" --data "$dir/data" --set listen=127.0.0.1:0 --set grpc_listen=127.0.0.1:0 --set metrics_listen=127.0.0.1:0 --set clock=frozen \
		--set max_positions=$((skus * 2)) --set max_lines=8388608 2>"$dir/atpd.log" &
	pid=$!
	for _ in $(seq 1 400); do grep -q "atpd: serving" "$dir/atpd.log" && break; sleep 0.05; done
	tcp=$(sed -n 's/.*event stream listening.*(port \([0-9]*\)).*/\1/p' "$dir/atpd.log")
	grpc=$(sed -n 's/.*grpc listening.*(port \([0-9]*\)).*/\1/p' "$dir/atpd.log")
	met=$(sed -n 's/.*metrics listening.*(port \([0-9]*\)).*/\1/p' "$dir/atpd.log")
	$atpctl send --tcp "127.0.0.1:$tcp" "$dir/stock.csv" >/dev/null 2>&1
}
stop_atpd() {
	kill -TERM "$pid"
	wait "$pid" || true
}
trap 'kill $pid 2>/dev/null || true' EXIT
load() { # load OUT [grpc-load options]: fails the benchmark on any error
	local out=$1; shift
	taskset -c 1 $atpctl grpc-load --grpc "127.0.0.1:$grpc" --skus "$skus" --seconds 5 "$@" >"$out" ||
		{ cat "$out" >&2; exit 1; }
}
field() { grep -oE "$1 [0-9.]+" | awk '{ print $2 }'; }
replies() { # atpd's own count of the gRPC replies it sent, from its metrics
	metrics "$met" | awk '/^atpd_grpc_replies_total/ { s += $2 } END { print s + 0 }'
}
per_s() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f\n", n / s }'; }

for i in $(seq 1 "$runs"); do
	start_atpd
	r0=$(replies)
	taskset -c 1 h2load -n 500000 -c 4 -m 32 -t 1 -d "$dir/getatp.bin" -H "content-type: application/grpc" \
		-H "te: trailers" "http://127.0.0.1:$grpc/atp.v1.Atp/GetAtp" >"$dir/h2load.$i" 2>&1
	r1=$(replies)
	grep -q "500000 succeeded" "$dir/h2load.$i" || { cat "$dir/h2load.$i" >&2; exit 1; }
	sed -n 's/.*finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$dir/h2load.$i" >>"$dir/h2load.rate"
	# "finished in 834.43ms," or "in 2.53s,": in seconds
	per_s $((r1 - r0)) "$(awk '/^finished in/ { t = $3; sub(/,$/, "", t); f = t ~ /ms$/ ? 1e-3 : 1; sub(/m?s$/, "", t); print t * f }' \
		"$dir/h2load.$i")" >>"$dir/h2load.server"
	# h2load's mean "time for request" (us or ms) x its calls/s: the requests it kept in flight
	awk -v rate="$(tail -1 "$dir/h2load.rate")" '/^time for request:/ { m = $6; f = m ~ /ms$/ ? 1e-3 : 1e-6; sub(/[mu]s$/, "", m)
		printf "%.1f\n", rate * m * f }' "$dir/h2load.$i" >>"$dir/h2load.inflight"
	r0=$(replies)
	load "$dir/get.$i" --connections 4 --concurrency 32
	r1=$(replies)
	grep -oE "[0-9]+ calls/s" "$dir/get.$i" | awk '{ print $1 }' >>"$dir/get.rate"
	per_s $((r1 - r0)) "$(grep -oE "[0-9.]+ s:" "$dir/get.$i" | awk '{ print $1 }')" >>"$dir/get.server"
	grep -oE "Little's law: [0-9.]+" "$dir/get.$i" | awk '{ print $3 }' >>"$dir/get.inflight"
	load "$dir/half.$i" --connections 4 --concurrency 32 --rate 50000
	field p50 <"$dir/half.$i" >>"$dir/half.p50"
	field p99 <"$dir/half.$i" >>"$dir/half.p99"
	for l in 1 4; do
		load "$dir/res$l.$i" --method reserve --connections 4 --concurrency 64 --lines $l
		grep -oE "[0-9]+ lines/s" "$dir/res$l.$i" | awk '{ print $1 }' >>"$dir/res$l.rate"
		field p50 <"$dir/res$l.$i" >>"$dir/res$l.p50"
		field p99 <"$dir/res$l.$i" >>"$dir/res$l.p99"
	done
	stop_atpd
done
trap - EXIT

cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
echo "## gRPC API, loopback ($(nproc) CPUs: $cpu; $skus positions; medians of $runs runs)"
echo
echo "| measure | median | runs |"
echo "|---|---|---|"
echo "| GetAtp, h2load 4x32, calls/s | $(median <"$dir/h2load.rate") | $(tr '\n' ' ' <"$dir/h2load.rate") |"
echo "| GetAtp, h2load 4x32, calls/s by atpd's count | $(median <"$dir/h2load.server") | $(tr '\n' ' ' <"$dir/h2load.server") |"
echo "| GetAtp, h2load 4x32, in flight by Little's law (of 128) | $(median <"$dir/h2load.inflight") | $(tr '\n' ' ' <"$dir/h2load.inflight") |"
echo "| GetAtp, grpc-load 4x32, calls/s | $(median <"$dir/get.rate") | $(tr '\n' ' ' <"$dir/get.rate") |"
echo "| GetAtp, grpc-load 4x32, calls/s by atpd's count | $(median <"$dir/get.server") | $(tr '\n' ' ' <"$dir/get.server") |"
echo "| GetAtp, grpc-load 4x32, in flight by Little's law (of 128) | $(median <"$dir/get.inflight") | $(tr '\n' ' ' <"$dir/get.inflight") |"
echo "| GetAtp at 50,000/s: p50 ms | $(median <"$dir/half.p50") | $(tr '\n' ' ' <"$dir/half.p50") |"
echo "| GetAtp at 50,000/s: p99 ms | $(median <"$dir/half.p99") | $(tr '\n' ' ' <"$dir/half.p99") |"
for l in 1 4; do
	echo "| Reserve, $l line(s) per call, 4x64: lines/s | $(median <"$dir/res$l.rate") | $(tr '\n' ' ' <"$dir/res$l.rate") |"
	echo "| Reserve, $l line(s): p50 ms | $(median <"$dir/res$l.p50") | $(tr '\n' ' ' <"$dir/res$l.p50") |"
	echo "| Reserve, $l line(s): p99 ms | $(median <"$dir/res$l.p99") | $(tr '\n' ' ' <"$dir/res$l.p99") |"
done
