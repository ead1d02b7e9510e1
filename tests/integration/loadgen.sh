#!/usr/bin/env bash
# atp-loadgen: the day it writes is the simulated day, byte for byte and
# repeatable from its seed; driving a running atpd (as fast as possible,
# and a paced slice of the day: the promotion burst played 100 times
# faster than real time after the morning was sent) ends with every event
# acknowledged and every call answered, without an error.
# usage: loadgen.sh ATP_LOADGEN ATPCTL ATPD
set -euo pipefail
loadgen=$1 atpctl=$2 atpd=$3
tmp=$(mktemp -d /tmp/atp-loadgen-XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$tmp"' EXIT
day=(--seed 9 --order-lines 4000 --skus 500 --locations 3)

"$loadgen" "${day[@]}" --csv "$tmp/a.csv" 2>/dev/null
"$loadgen" "${day[@]}" --csv "$tmp/b.csv" 2>/dev/null
"$atpctl" simday "${day[@]}" --out "$tmp/c.csv" 2>/dev/null
cmp "$tmp/a.csv" "$tmp/b.csv" || { echo "FAIL the same seed gave two days"; exit 1; }
cmp "$tmp/a.csv" "$tmp/c.csv" || { echo "FAIL the day differs from atpctl simday's"; exit 1; }
"$loadgen" --seed 10 --order-lines 4000 --skus 500 --locations 3 --csv "$tmp/d.csv" 2>/dev/null
! cmp -s "$tmp/a.csv" "$tmp/d.csv" || { echo "FAIL another seed gave the same day"; exit 1; }
echo "ok   the day is the simulated day, repeatable from its seed"

start() {
	"$atpd" --data "$tmp/data" --set listen=127.0.0.1:0 --set grpc_listen=127.0.0.1:0 --set metrics_listen=127.0.0.1:0 --set clock=events 2>"$tmp/atpd.log" &
	pid=$!
	for _ in $(seq 1 200); do grep -q "atpd: serving" "$tmp/atpd.log" && break; sleep 0.05; done
	tcp=$(sed -n 's/.*event stream listening.*(port \([0-9]*\)).*/\1/p' "$tmp/atpd.log")
	grpc=$(sed -n 's/.*grpc listening.*(port \([0-9]*\)).*/\1/p' "$tmp/atpd.log")
}

start
timeout 120 "$loadgen" "${day[@]}" --tcp "127.0.0.1:$tcp" --grpc "127.0.0.1:$grpc" --asap --reconnect-every 3 >"$tmp/asap.out" 2>"$tmp/asap.err" ||
	{ cat "$tmp/asap.out" "$tmp/asap.err"; echo "FAIL driving the day as fast as possible"; exit 1; }
grep -q "errors: 0 (0 broken)" "$tmp/asap.out" || { cat "$tmp/asap.out"; echo "FAIL errors"; exit 1; }
echo "ok   the day driven as fast as possible: $(grep -o '[0-9]* events over TCP, [0-9]* calls over gRPC' "$tmp/asap.out")"
timeout 120 "$loadgen" "${day[@]}" --day 1 --tcp "127.0.0.1:$tcp" --grpc "127.0.0.1:$grpc" --asap >"$tmp/day1.out" 2>"$tmp/day1.err" ||
	{ cat "$tmp/day1.out" "$tmp/day1.err"; echo "FAIL the next day on the same daemon"; exit 1; }
grep -q "errors: 0 (0 broken); TCP: 0 refused" "$tmp/day1.out" || { cat "$tmp/day1.out"; echo "FAIL errors on day 1"; exit 1; }
echo "ok   the same day as the next one (--day 1) on the same daemon: fresh sources and references, no refusal"
kill -TERM $pid
wait $pid
rm -rf "$tmp/data"

start
timeout 120 "$loadgen" "${day[@]}" --prefix p- --tcp "127.0.0.1:$tcp" --grpc "127.0.0.1:$grpc" --from-min 720 --minutes 2 \
	--speed 100 >"$tmp/paced.out" 2>"$tmp/paced.err" ||
	{ cat "$tmp/paced.out" "$tmp/paced.err"; echo "FAIL driving the burst paced"; exit 1; }
grep -q "errors: 0 (0 broken)" "$tmp/paced.out" && grep -q "not found;" "$tmp/paced.out" ||
	{ cat "$tmp/paced.out"; echo "FAIL errors"; exit 1; }
grep -q "^warm-up" "$tmp/paced.err" && grep -q "^slice" "$tmp/paced.err" ||
	{ cat "$tmp/paced.err"; echo "FAIL no progress lines"; exit 1; }
grep -q "| events, sent -> durable ack (TCP) |" "$tmp/paced.out" || { echo "FAIL no summary"; exit 1; }
echo "ok   the burst paced at 100x after the morning: $(grep -o '[0-9]* events over TCP, [0-9]* calls over gRPC in [0-9.]* s' "$tmp/paced.out")"
kill -TERM $pid
wait $pid
pid=
echo "loadgen: 0 failures"
