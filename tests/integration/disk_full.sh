#!/usr/bin/env bash
# Storage failure mid-run: with a file size limit (ulimit -f, SIGXFSZ
# ignored) the first snapshot cannot be written. The engine must stop with
# a clear message and a non-zero exit, never acknowledge past the failure,
# and a later run without the limit must recover and end with exactly the
# table of the single-threaded core. Usage: disk_full.sh ATPCTL
set -euo pipefail
atpctl=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

"$atpctl" simday --out "$tmp/day.csv" --skus 5000 --order-lines 40000 --seed 5 >/dev/null 2>&1
tables=(--max-positions 65536 --max-lines 262144) # sized to the day: a sanitizer build touches every page
"$atpctl" import "$tmp/day.csv" "${tables[@]}" --positions "$tmp/reference.csv" >/dev/null
engine=(import "$tmp/day.csv" --data "$tmp/data" "${tables[@]}" --segment-mb 1 --snapshot-mb 1 --progress)

set +e
( trap '' XFSZ; ulimit -f 1024; exec "$atpctl" "${engine[@]}" ) >"$tmp/limited.out" 2>"$tmp/limited.err"
rc=$?
set -e
if [ "$rc" -eq 1 ] && grep -q "snapshot of lsn .* failed: File too large" "$tmp/limited.err"; then
	echo "ok - the failed snapshot stops the engine with a message and exit 1"
else
	echo "not ok - expected exit 1 and a message, got $rc:"; cat "$tmp/limited.err"; fail=1
fi
acked=$(awk '$1 == "durable" && $2 == "wms" && $3 > m { m = $3 } END { print m + 0 }' "$tmp/limited.out")

"$atpctl" "${engine[@]}" --positions "$tmp/engine.csv" >"$tmp/after.out" 2>"$tmp/after.err" || {
	echo "not ok - the run after the failure did not complete:"; cat "$tmp/after.err"; fail=1; }
final=$(awk '$1 == "durable" && $2 == "wms" && $3 > m { m = $3 } END { print m + 0 }' "$tmp/after.out")
if [ "$acked" -le "$final" ] && cmp -s "$tmp/reference.csv" "$tmp/engine.csv"; then
	echo "ok - recovered after the failure (wms acknowledged $acked before it): the table equals the reference"
else
	echo "not ok - after the failure: acknowledged $acked, final $final, tables differ?"; fail=1
fi
exit $fail
