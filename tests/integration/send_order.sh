#!/usr/bin/env bash
# atpctl send keeps a file's order across its sources: a simulated day of
# two sources (the OMS reserves, the WMS picks what they reserved, on the
# same SKUs) sent to atpd over TCP must end with exactly the table of
# `atpctl import` of the same file (the clock frozen on both sides), also
# when atpd is killed with SIGKILL mid-stream and restarted on the same
# port while the sender keeps retrying. --concurrent sends the sources at
# once, in no order across them (for load); its table is only reported.
# The file's event ids are text (E000000001...), as many WMSs write them.
# Usage: send_order.sh ATPD ATPCTL
set -euo pipefail
atpd=$1
atpctl=$2
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"

"$atpctl" simday --out "$tmp/numeric.csv" --skus 500 --order-lines 6000 --seed 5 2>/dev/null
# Event ids as many WMSs write them: text, not numbers (E000000001, ...).
awk -F, -v OFS=, 'NR > 1 { $1 = sprintf("E%09d", $1) } 1' "$tmp/numeric.csv" >"$tmp/day.csv"
sources=$(tail -n +2 "$tmp/day.csv" | cut -d, -f2 | sort -u | wc -l)
tables=(--max-positions 65536 --max-lines 262144)
"$atpctl" import "$tmp/day.csv" --frozen-clock "${tables[@]}" --positions "$tmp/reference.csv" >/dev/null
sort "$tmp/reference.csv" >"$tmp/reference.sorted"
"$atpctl" import "$tmp/numeric.csv" --frozen-clock "${tables[@]}" --positions "$tmp/numeric-ref.csv" >/dev/null
check "text ids import as numeric ones do" cmp -s "$tmp/reference.csv" "$tmp/numeric-ref.csv"

start_daemon() { # start_daemon DATA PORT: sets $daemon, $tcp and ATP_GRPC
	"$atpd" --data "$1" --set clock=frozen --set shards=2 --set first_cpu=none --set router_cpu=none \
		--set max_positions=65536 --set max_lines=262144 --set "listen=127.0.0.1:$2" \
		--set grpc_listen=127.0.0.1:0 --set metrics_listen=none 2>>"$tmp/atpd.log" &
	daemon=$!
	wait_for "$tmp/atpd.log" "atpd: serving" || { cat "$tmp/atpd.log"; exit 1; }
	tcp=$(sed -n 's/.*event stream listening on .*(port \([0-9]*\)).*/\1/p' "$tmp/atpd.log" | tail -1)
	export ATP_GRPC=127.0.0.1:$(sed -n 's/.*grpc listening on .*(port \([0-9]*\)).*/\1/p' "$tmp/atpd.log" | tail -1)
	: >"$tmp/atpd.log"
}
same_as_import() {
	"$atpctl" export 2>/dev/null | sort | cmp -s - "$tmp/reference.sorted"
}

check "the day has more than one source ($sources)" test "$sources" -gt 1
start_daemon "$tmp/a" 0
"$atpctl" send --tcp "127.0.0.1:$tcp" "$tmp/day.csv" >"$tmp/a.out" 2>"$tmp/a.err"
check "sent in the file's order" grep -q "sources in [0-9]* frames to .*, in the file's order" "$tmp/a.err"
check "... and the table is import's" same_as_import
kill -TERM "$daemon"
wait "$daemon"
check "the WAL keeps the text ids" grep -q ',E000000001,' <("$atpctl" wal "$tmp/a" 2>/dev/null)

start_daemon "$tmp/b" 0
port=$tcp
"$atpctl" send --tcp "127.0.0.1:$port" "$tmp/day.csv" --timeout 60 >"$tmp/b.out" 2>"$tmp/b.err" &
sender=$!
for k in 1 2; do
	sleep 0.4
	kill -KILL "$daemon"
	wait "$daemon" || true
	start_daemon "$tmp/b" "$port"
done
wait "$sender"
check "killed twice mid-stream: the sender resumed" grep -q "reconnecting" "$tmp/b.err"
check "... and the table is still import's" same_as_import
kill -TERM "$daemon"
wait "$daemon"

start_daemon "$tmp/c" 0
"$atpctl" send --tcp "127.0.0.1:$tcp" "$tmp/day.csv" --concurrent >/dev/null 2>"$tmp/c.err"
check "--concurrent sends the sources at once" grep -q ", concurrently" "$tmp/c.err"
echo "# --concurrent: $("$atpctl" export 2>/dev/null | sort | diff - "$tmp/reference.sorted" | grep -c '^<' || true)" \
	"positions differ from import's"
kill -TERM "$daemon"
wait "$daemon"
finish
