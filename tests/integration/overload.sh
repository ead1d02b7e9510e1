#!/usr/bin/env bash
# Overload: far more than atpd can take, over TCP and gRPC together.
#
# The gRPC capacity is measured first (GetAtp and Reserve, closed loop,
# 128 in flight). Then, for SECONDS (two halves): GetAtp and Reserve each
# offered at 10x that rate (open loop, up to 4,096 calls in flight each,
# against grpc_max_calls = 1,024: the excess is refused) while a simulated
# day streams in over TCP (one connection per source).
# Checked, with no timing threshold:
#   - every gRPC call is answered: OK, RESOURCE_EXHAUSTED or UNAVAILABLE,
#     no connection broken, the load tools end;
#   - the senders are pushed back, not dropped: the day completes and its
#     positions equal `atpctl import` of the file (no acknowledged event
#     lost, none applied twice);
#   - memory grows only with state: atpd's RSS over the second half grows
#     by at most 1 KiB per Reserve answered in it, plus SLACK_MB (32);
#   - after the load stops, calls are answered again (p50 before and after
#     printed, and the RSS samples).
# Usage: overload.sh ATPD ATPCTL [SECONDS [SLACK_MB]]
set -euo pipefail
atpd=$1
atpctl=$2
seconds=${3:-10}
slack_mb=${4:-32}
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"

"$atpctl" simday --out "$tmp/day.csv" --skus 2000 --order-lines 40000 --seed 31 2>/dev/null
"$atpctl" import "$tmp/day.csv" --frozen-clock --positions "$tmp/reference.csv" >/dev/null
tail -n +2 "$tmp/reference.csv" | sort >"$tmp/reference.sorted"
{
	echo "event_id,source,seq,type,sku,location,qty,ref,to_location,reason,occurred_at,ttl_ms,partial"
	for i in $(seq 0 999); do printf '%d,stock,%d,RECEIPT,LSKU-%06d,DC01,1000000000,PO-L%d,,,0,,\n' $((i + 1)) $((i + 1)) "$i" "$i"; done
} >"$tmp/stock.csv"

"$atpd" --data "$tmp/data" --set clock=frozen --set shards=2 --set first_cpu=none --set router_cpu=none \
	--set max_positions=131072 --set max_lines=4194304 --set listen=127.0.0.1:0 --set grpc_listen=127.0.0.1:0 \
	--set metrics_listen=none --set grpc_max_calls=1024 2>>"$tmp/atpd.log" &
daemon=$!
wait_for "$tmp/atpd.log" "atpd: serving" || { cat "$tmp/atpd.log"; exit 1; }
tcp=127.0.0.1:$(sed -n 's/.*event stream listening on .*(port \([0-9]*\)).*/\1/p' "$tmp/atpd.log")
export ATP_GRPC=127.0.0.1:$(sed -n 's/.*grpc listening on .*(port \([0-9]*\)).*/\1/p' "$tmp/atpd.log")
"$atpctl" send --tcp "$tcp" "$tmp/stock.csv" >/dev/null 2>&1

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$daemon/status"; }
calls_per_s() { sed -n 's/.* calls, \([0-9]*\) calls\/s.*/\1/p' "$1"; }
p50() { sed -n 's/^latency: p50 \([0-9.]*\) ms.*/\1/p' "$1"; }
load=(--connections 4 --concurrency 32 --seconds 2 --prefix L --skus 1000 --location DC01)
"$atpctl" grpc-load --method getatp "${load[@]}" >"$tmp/get0.out"
"$atpctl" grpc-load --method reserve "${load[@]}" >"$tmp/res0.out"
get=$(calls_per_s "$tmp/get0.out") res=$(calls_per_s "$tmp/res0.out")
echo "# capacity, 128 in flight: GetAtp $get calls/s (p50 $(p50 "$tmp/get0.out") ms), Reserve $res calls/s"

half=$(((seconds + 1) / 2))
flood=(--connections 16 --concurrency 256 --seconds "$half" --prefix L --skus 1000 --location DC01)
"$atpctl" send --tcp "$tcp" "$tmp/day.csv" --timeout 300 >"$tmp/send.out" 2>"$tmp/send.err" &
sender=$!
rss0=$(rss)
for h in 1 2; do
	[ "$h" -eq 2 ] && rss1=$(rss)
	"$atpctl" grpc-load --method getatp --rate $((get * 10)) "${flood[@]}" >"$tmp/get$h.out" 2>&1 &
	g=$!
	"$atpctl" grpc-load --method reserve --rate $((res * 10)) "${flood[@]}" >"$tmp/res$h.out" 2>&1 &
	r=$!
	for _ in $(seq 1 $((half * 2))); do echo "$(rss)" >>"$tmp/rss"; sleep 0.5; done
	wait "$g" "$r" || true
done
rss2=$(rss)
sent=0
wait "$sender" || sent=$?

answered() { # every call of the run in $1 answered OK, RESOURCE_EXHAUSTED or UNAVAILABLE, nothing broken
	grep -q "^latency:" "$1" && ! grep -q "broke" "$1" &&
		! grep -oE '\(([A-Z_]+): [0-9]+\)' "$1" | grep -vqE 'RESOURCE_EXHAUSTED|UNAVAILABLE'
}
for f in get1 res1 get2 res2; do
	echo "# $f: $(head -n 1 "$tmp/$f.out")"
	check "$f: every call answered OK, RESOURCE_EXHAUSTED or UNAVAILABLE, no connection broken" answered "$tmp/$f.out"
done
check "the TCP senders were pushed back, not dropped: the day completed ($(tail -n 1 "$tmp/send.err"))" [ "$sent" -eq 0 ]
"$atpctl" export 2>/dev/null | tail -n +2 | grep -v '^LSKU-' | sort >"$tmp/got.sorted"
check "the day's positions equal import of the file: no acknowledged event lost, none twice" \
	cmp -s "$tmp/reference.sorted" "$tmp/got.sorted"
ok2=$(sed -n 's/.*s: \([0-9]*\) calls, .*/\1/p' "$tmp/res2.out")
echo "# RSS (KiB): $rss0 at the start, $rss1 at half time, $rss2 at the end; samples $(sort -n "$tmp/rss" | sed -n '1p;$p' | tr '\n' ' ')"
check "memory grows only with state: RSS +$((rss2 - rss1)) KiB over the second half, $ok2 Reserve calls answered" \
	[ $((rss2 - rss1)) -le $((ok2 + slack_mb * 1024)) ]

sleep 2
"$atpctl" grpc-load --method getatp "${load[@]}" >"$tmp/get3.out"
check "after the load, calls are answered again" answered "$tmp/get3.out"
echo "# GetAtp p50 before the overload $(p50 "$tmp/get0.out") ms, 2 s after it $(p50 "$tmp/get3.out") ms ($(calls_per_s "$tmp/get3.out") calls/s)"
if [ "$seconds" -ge 30 ]; then  # a full-size run: once more when things have settled
	sleep 8
	"$atpctl" grpc-load --method getatp "${load[@]}" >"$tmp/get4.out"
	echo "# GetAtp p50 12 s after the overload $(p50 "$tmp/get4.out") ms ($(calls_per_s "$tmp/get4.out") calls/s)"
fi
kill -TERM "$daemon"
wait "$daemon" || true
finish
