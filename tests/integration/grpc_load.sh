#!/usr/bin/env bash
# The load tool is a measuring instrument: atpctl grpc-load against a real
# atpd must keep the calls in flight it was asked for (closed loop: calls/s
# x mean latency, Little's law, within 10% of connections x concurrency),
# run an open loop at the asked rate, and say so when it cannot reach it.
# Usage: grpc_load.sh ATPD ATPCTL [FLOOR] (FLOOR: the share of the asked
# in-flight count Little's law must show, 0.9; a sanitizer build's tool
# spends longer between a reply and the next call, so it passes less)
set -euo pipefail
atpd=$1 atpctl=$2 floor=${3:-0.9}
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"

awk 'BEGIN { print "event_id,source,seq,type,sku,location,qty,ref,to_location,reason"
	for (i = 0; i < 1000; i++) printf "%d,wms,%d,RECEIPT,SKU-%06d,DC01,1000000000000,,,\n", i + 1, i + 1, i }' >"$tmp/stock.csv"
"$atpd" --data "$tmp/data" --set listen=127.0.0.1:0 --set grpc_listen=127.0.0.1:0 --set metrics_listen=127.0.0.1:0 --set clock=frozen \
	--set max_positions=65536 --set max_lines=1048576 2>"$tmp/atpd.log" &
daemon=$!
wait_for "$tmp/atpd.log" "atpd: serving" || { echo "atpd did not start:"; cat "$tmp/atpd.log"; exit 1; }
tcp=$(sed -n 's/.*event stream listening.*(port \([0-9]*\)).*/\1/p' "$tmp/atpd.log")
grpc=$(sed -n 's/.*grpc listening.*(port \([0-9]*\)).*/\1/p' "$tmp/atpd.log")
check "1,000 positions in stock" sh -c "'$atpctl' send --tcp 127.0.0.1:$tcp '$tmp/stock.csv' >/dev/null 2>&1"

load() { # load OUT [options]
	local out=$1; shift
	"$atpctl" grpc-load --grpc "127.0.0.1:$grpc" --skus 1000 --seconds 2 "$@" >"$out" 2>&1
}
kept() { # kept OUT K: Little's law says K in flight, from FLOOR x K to 1.1 x K
	awk -v k="$2" -v f="$floor" '/^in flight by Little/ { x = $6 } END { exit !(x >= f * k && x <= 1.1 * k) }' "$1"
}
for shape in "1 16" "4 32"; do
	set -- $shape
	load "$tmp/get.$1" --connections "$1" --concurrency "$2"
	check "GetAtp closed loop, $1 x $2: no error" grep -q ", 0 errors" "$tmp/get.$1"
	check "... keeps $(( $1 * $2 )) in flight ($(grep -o 'Little.s law: [0-9.]*' "$tmp/get.$1"))" kept "$tmp/get.$1" $(( $1 * $2 ))
done
load "$tmp/res" --method reserve --connections 2 --concurrency 16
check "Reserve closed loop, 2 x 16: no error" grep -q ", 0 errors" "$tmp/res"
check "... keeps 32 in flight ($(grep -o 'Little.s law: [0-9.]*' "$tmp/res"))" kept "$tmp/res" 32
load "$tmp/open" --rate 500 --connections 2 --concurrency 32
check "open loop at 500 calls/s: about 1,000 calls in 2 s ($(grep -o '[0-9]* calls,' "$tmp/open"))" \
	awk '/^grpc-load/ { for (i = 1; i <= NF; i++) if ($i == "calls,") n = $(i - 1) } END { exit !(n >= 950 && n <= 1050) }' "$tmp/open"
check "... and it says nothing of a rate it missed" sh -c "! grep -q 'could not reach' '$tmp/open'"
load "$tmp/over" --rate 10000000 --connections 1 --concurrency 1 || true
check "an open loop past what one call in flight can do says it could not reach the rate" \
	grep -q "could not reach the asked rate" "$tmp/over"
kill -TERM "$daemon" && wait "$daemon"
finish
