#!/usr/bin/env bash
# What TLS costs, on loopback, side by side in one run: the same atpd
# (router on CPU 0, one shard worker on CPU 1) in plaintext and with
# tls_cert (TLS 1.3, a P-256 certificate made here; no client
# certificates), alternating, RUNS times (default 3), medians:
#   - the event stream: a simulated day (ORDER_LINES, one source) sent by
#     atpctl send (on CPU 0), events/s acknowledged;
#   - gRPC GetAtp, closed loop: h2load (CPU 1, 4 connections x 32
#     streams), h2c against https with ALPN h2, calls/s.
# Prints a markdown report. Usage: bench/e2e/tls.sh [ORDER_LINES]
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/setup
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build src/atpd tools/atpctl >/dev/null
atpd=build/src/atpd atpctl=build/tools/atpctl
runs=${RUNS:-3}
lines=${1:-100000}
dir=var/bench-tls
rm -rf "$dir" && mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" \
	-days 30 -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
$atpctl simday --out "$dir/day.csv" --order-lines "$lines" --seed 1 --one-source 2>/dev/null
events=$(($(wc -l <"$dir/day.csv") - 1))
/usr/bin/python3 - "$dir/getatp.bin" <<'PY'
import struct, sys
import flatbuffers
b = flatbuffers.Builder(64)
s = b.CreateString("SKU-000042")
b.StartObject(2); b.PrependUOffsetTRelativeSlot(0, s, 0); b.Finish(b.EndObject())  # atp.v1.AtpQuery{sku}
m = bytes(b.Output())
open(sys.argv[1], "wb").write(b"\0" + struct.pack(">I", len(m)) + m)
PY

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

one_run() { # one_run plain|tls
	local mode=$1 tls=() client=() scheme=http
	if [ "$mode" = tls ]; then
		tls=(--set "tls_cert=$dir/cert.pem" --set "tls_key=$dir/key.pem")
		client=(--tls-ca "$dir/cert.pem")
		scheme=https
	fi
	rm -rf "$dir/data"
	$atpd --data "$dir/data" --set listen=127.0.0.1:0 --set grpc_listen=127.0.0.1:0 --set metrics_listen=none \
		--set clock=frozen --set workers=1 --set shards=1 --set router_cpu=0 --set first_cpu=1 \
		--set max_positions=524288 --set max_lines=1048576 "${tls[@]}" 2>"$dir/$mode.log" &
	local pid=$!
	for _ in $(seq 1 400); do grep -q "atpd: serving" "$dir/$mode.log" && break; sleep 0.05; done
	local tcp grpc
	tcp=$(sed -n 's/.*event stream listening on .*(port \([0-9]*\)).*/\1/p' "$dir/$mode.log")
	grpc=$(sed -n 's/.*grpc listening on .*(port \([0-9]*\)).*/\1/p' "$dir/$mode.log")
	taskset -c 0 $atpctl send --tcp "localhost:$tcp" "$dir/day.csv" "${client[@]}" >"$dir/$mode.send" 2>&1
	grep -oE "[0-9.]+ M events/s" "$dir/$mode.send" | cut -d' ' -f1 >>"$dir/ingest.$mode"
	taskset -c 1 h2load -n 200000 -c 4 -m 32 -t 1 -d "$dir/getatp.bin" -H "content-type: application/grpc" \
		-H "te: trailers" "$scheme://localhost:$grpc/atp.v1.Atp/GetAtp" >"$dir/$mode.h2load" 2>&1
	grep -q "200000 succeeded" "$dir/$mode.h2load" || { cat "$dir/$mode.h2load" >&2; exit 1; }
	sed -n 's/.*finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$dir/$mode.h2load" >>"$dir/getatp.$mode"
	kill -TERM "$pid"
	wait "$pid" || true
}

for _ in $(seq 1 "$runs"); do
	one_run plain
	one_run tls
done
ip=$(median <"$dir/ingest.plain") it=$(median <"$dir/ingest.tls")
gp=$(median <"$dir/getatp.plain") gt=$(median <"$dir/getatp.tls")
echo
echo "## TLS ($(date -u +%F), commit $(git rev-parse --short HEAD), $(nproc) CPUs, medians of $runs runs)"
echo
echo "| workload | plaintext | TLS 1.3 | TLS / plaintext |"
echo "|---|---|---|---|"
echo "| event stream, $events events, M events/s | $ip | $it | $(awk -v a="$it" -v b="$ip" 'BEGIN { printf "%.2f", a / b }') |"
echo "| GetAtp, h2load 4 x 32, calls/s | $gp | $gt | $(awk -v a="$gt" -v b="$gp" 'BEGIN { printf "%.2f", a / b }') |"
