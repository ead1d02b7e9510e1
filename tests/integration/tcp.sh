#!/usr/bin/env bash
# The TCP event stream with real processes on loopback. Four senders, each
# a simulated day of its own (distinct source and SKUs), stream at once:
#   1. all four to the end;
#   2. one sender killed with SIGKILL mid-stream and started again;
#   3. the daemon killed with SIGKILL KILLS times (default 3) while the
#      senders keep retrying, restarted on the same port each time.
# Each round must end with every source durable through its last seq and
# exactly the table of the single-threaded core over the four days (with
# the clock frozen on both sides, so the interleaving of the senders cannot
# matter): nothing lost, nothing applied twice.
# Usage: tcp.sh ATPD ATPCTL [KILLS]
set -euo pipefail
atpd=$1
atpctl=$2
kills=${3:-3}
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"

for k in 1 2 3 4; do
	"$atpctl" simday --out "$tmp/s$k.csv" --skus 2000 --order-lines 40000 --seed "$k" --prefix "s$k-" \
		--one-source 2>/dev/null
done
{ head -1 "$tmp/s1.csv"; for k in 1 2 3 4; do tail -n +2 "$tmp/s$k.csv"; done; } >"$tmp/all.csv"
head -1 "$tmp/s1.csv" >"$tmp/empty.csv"
tables=(--max-positions 65536 --max-lines 1048576) # sized to the day: a sanitizer build touches every page
"$atpctl" import "$tmp/all.csv" --frozen-clock "${tables[@]}" --positions "$tmp/reference.csv" >"$tmp/reference.out"
settings=(--set clock=frozen --set shards=4 --set workers=1 --set first_cpu=none --set router_cpu=none
	--set max_positions=65536 --set max_lines=1048576 --set segment_mb=4 --set snapshot_mb=8)

start_daemon() { # start_daemon DATA PORT LOG: sets $daemon and $port
	"$atpd" --data "$1" "${settings[@]}" --set "listen=127.0.0.1:$2" --set grpc_listen=none --set metrics_listen=none 2>>"$3" &
	daemon=$!
	wait_for "$3" "atpd: serving" || { echo "atpd did not start:"; cat "$3"; exit 1; }
	port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$3" | tail -1)
}
stop_daemon() {
	kill -TERM "$daemon"
	wait "$daemon"
}
table_of() { # table_of DATA OUT
	"$atpctl" import "$tmp/empty.csv" --data "$1" --shards 4 "${tables[@]}" --positions "$2" >/dev/null 2>&1
}
last_seq() { # the last seq of sender k's file
	tail -n +2 "$tmp/s$1.csv" | cut -d, -f3 | sort -n | tail -1
}
durable_ok() { # durable_ok LOG...: every sender reported its last seq durable
	for k in 1 2 3 4; do
		grep -q "^durable s$k-wms $(last_seq "$k")$" "$tmp/round.s$k" || return 1
	done
}
send() { # send K [ARGS]: sender k in the background, its pid in senders[k]
	local k=$1; shift
	"$atpctl" send --tcp "127.0.0.1:$port" "$tmp/s$k.csv" --progress --timeout 60 "$@" \
		>>"$tmp/round.s$k" 2>>"$tmp/round.s$k.err" &
	senders[$k]=$!
}
wait_senders() {
	local ok=0
	for k in 1 2 3 4; do wait "${senders[$k]}" || ok=1; done
	return $ok
}

# 1. Four concurrent senders.
rm -f "$tmp"/round.*
start_daemon "$tmp/d1" 0 "$tmp/d1.log"
for k in 1 2 3 4; do send "$k"; done
check "four concurrent senders: each exits 0 once everything is acknowledged" wait_senders
stop_daemon
check "... every source durable through its last seq" durable_ok
table_of "$tmp/d1" "$tmp/t1.csv"
check "... the table equals the single-threaded core's" cmp -s "$tmp/reference.csv" "$tmp/t1.csv"
grep -h "^sent:" "$tmp"/round.s*

# 2. A sender killed mid-stream and restarted.
rm -f "$tmp"/round.*
start_daemon "$tmp/d2" 0 "$tmp/d2.log"
for k in 1 2 3 4; do send "$k" --batch 64 --window-kb 64; done
for _ in $(seq 1 200); do
	[ "$(grep -c '^durable s2-wms' "$tmp/round.s2" 2>/dev/null || true)" -ge 3 ] && break
	sleep 0.02
done
kill -9 "${senders[2]}"
wait "${senders[2]}" 2>/dev/null || true
acked_before=$(awk '$1 == "durable" { m = $3 } END { print m + 0 }' "$tmp/round.s2")
lines_before=$(wc -l <"$tmp/round.s2")
send 2
check "a sender killed mid-stream and restarted finishes, as do the others" wait_senders
welcome=$(tail -n +"$((lines_before + 1))" "$tmp/round.s2" | awk '$1 == "durable" { print $3; exit }')
check "... the restarted sender resumed from the Welcome at $welcome (acknowledged before the kill: $acked_before)" \
	test "$welcome" -ge "$acked_before"
stop_daemon
check "... every source durable through its last seq" durable_ok
table_of "$tmp/d2" "$tmp/t2.csv"
check "... the table equals the single-threaded core's" cmp -s "$tmp/reference.csv" "$tmp/t2.csv"

# 3. The daemon killed with SIGKILL and restarted while the senders retry.
rm -f "$tmp"/round.*
start_daemon "$tmp/d3" 0 "$tmp/d3.log"
fixed=$port
for k in 1 2 3 4; do send "$k" --batch 32 --window-kb 32; done
killed=0
for i in $(seq 1 "$kills"); do
	sleep "0.$((RANDOM % 3 + 1))"
	kill -0 "${senders[1]}" 2>/dev/null || kill -0 "${senders[3]}" 2>/dev/null || break
	kill -9 "$daemon"
	wait "$daemon" 2>/dev/null || true
	killed=$((killed + 1))
	sleep 0.1
	start_daemon "$tmp/d3" "$fixed" "$tmp/d3.log"
done
check "the daemon killed $killed times: every sender still exits 0" wait_senders
check "... after reconnecting" grep -q "reconnecting" "$tmp"/round.s1.err "$tmp"/round.s2.err "$tmp"/round.s3.err \
	"$tmp"/round.s4.err
stop_daemon
check "... every source durable through its last seq" durable_ok
table_of "$tmp/d3" "$tmp/t3.csv"
check "... the table equals the single-threaded core's: nothing lost, nothing applied twice" \
	cmp -s "$tmp/reference.csv" "$tmp/t3.csv"
check "... at least two kills landed mid-stream" test "$killed" -ge 2
finish
