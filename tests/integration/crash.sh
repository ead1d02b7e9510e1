#!/usr/bin/env bash
# Crash test of the durable engine: import a simulated day into a data
# directory (4 shards, 2 workers, 1 MiB WAL segments, a snapshot per MiB of
# WAL), kill the importer with SIGKILL at a random moment KILLS times
# (default 20), restarting it each time from the same file, then let it
# finish. It must end with exactly the table of the single-threaded core,
# every source durable through its last seq, and every seq acknowledged
# before any kill at or below the final durable seq: every acknowledged
# event applied exactly once. Usage: crash.sh ATPCTL [KILLS] [ORDER_LINES]
set -euo pipefail
atpctl=$1
kills=${2:-20}
lines=${3:-300000}
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

"$atpctl" simday --out "$tmp/day.csv" --skus 5000 --order-lines "$lines" --seed 11 >/dev/null
tables=(--max-positions 65536 --max-lines 1048576) # sized to the day: a sanitizer build touches every page
"$atpctl" import "$tmp/day.csv" "${tables[@]}" --positions "$tmp/reference.csv" >"$tmp/reference.out"
ref_wms=$(sed -n 's/^source wms: applied through seq //p' "$tmp/reference.out")
ref_oms=$(sed -n 's/^source oms: applied through seq //p' "$tmp/reference.out")

engine=(import "$tmp/day.csv" --data "$tmp/data" --shards 4 --workers 2 --segment-mb 1 --snapshot-mb 1
	"${tables[@]}" --progress)
max_acked() { # max_acked SOURCE FILE: the highest durable seq a run reported
	awk -v s="$1" '$1 == "durable" && $2 == s && $3 > m { m = $3 } END { print m + 0 }' "$2"
}
acked_wms=0 acked_oms=0 killed=0 progress=""
RANDOM=7
for k in $(seq 1 "$kills"); do
	"$atpctl" "${engine[@]}" >"$tmp/run.out" 2>"$tmp/run.err" &
	pid=$!
	# Kill once the run has acknowledged something new, after a random extra 0-25 ms.
	for _ in $(seq 1 500); do
		[ "$(awk '$1 == "durable" && $2 == "wms" { print $3 }' "$tmp/run.out" 2>/dev/null | sort -u | wc -l)" -ge 2 ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	sleep "0.$(printf "%03d" $((RANDOM % 25)))"
	if kill -9 "$pid" 2>/dev/null; then killed=$((killed + 1)); fi
	wait "$pid" 2>/dev/null || true
	w=$(max_acked wms "$tmp/run.out") o=$(max_acked oms "$tmp/run.out")
	progress+=" $w"
	[ "$w" -gt "$acked_wms" ] && acked_wms=$w
	[ "$o" -gt "$acked_oms" ] && acked_oms=$o
	if grep -q "refusing to start\|Assertion\|ERROR\|^atpctl" "$tmp/run.err"; then
		echo "run $k failed to recover:"; cat "$tmp/run.err"; exit 1
	fi
done
"$atpctl" "${engine[@]}" --positions "$tmp/engine.csv" >"$tmp/final.out" 2>"$tmp/final.err" || {
	echo "the final run failed:"; cat "$tmp/final.err"; exit 1; }
final_wms=$(max_acked wms "$tmp/final.out") final_oms=$(max_acked oms "$tmp/final.out")

fail=0
echo "killed $killed of $kills runs; wms seq acknowledged by each:$progress"
echo "acknowledged before a kill: wms $acked_wms, oms $acked_oms"
echo "final durable: wms $final_wms oms $final_oms; reference: wms $ref_wms oms $ref_oms"
[ "$killed" -ge $((kills / 2)) ] || { echo "not ok - too few runs were killed mid-way"; fail=1; }
[ "$acked_wms" -gt 0 ] && [ "$acked_oms" -gt 0 ] || { echo "not ok - no run acknowledged anything before its kill"; fail=1; }
[ "$final_wms" -eq "$ref_wms" ] && [ "$final_oms" -eq "$ref_oms" ] || { echo "not ok - final durable seqs differ from the reference"; fail=1; }
[ "$acked_wms" -le "$final_wms" ] && [ "$acked_oms" -le "$final_oms" ] || { echo "not ok - an acknowledged seq was lost"; fail=1; }
if cmp -s "$tmp/reference.csv" "$tmp/engine.csv"; then
	echo "ok - the table after $killed kills equals the single-threaded core's ($(($(wc -l <"$tmp/engine.csv") - 1)) positions)"
else
	echo "not ok - the table differs from the reference:"; diff "$tmp/reference.csv" "$tmp/engine.csv" | head -20; fail=1
fi
grep -h "torn tail\|recovered" "$tmp"/run.err "$tmp/final.err" | tail -3 || true
exit $fail
