#!/usr/bin/env bash
# The atpd daemon's lifecycle: start on a data directory an import filled,
# log each step, keep a second daemon (and an offline import) out with the
# lock, snapshot on SIGUSR1, stop cleanly on SIGTERM and SIGINT (exit 0,
# final snapshot), recover after SIGKILL, and refuse a bad config with its
# line. Usage: daemon.sh ATPD ATPCTL
set -euo pipefail
atpd=$1
atpctl=$2
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"

cat >"$tmp/atpd.conf" <<CONF
# a test configuration
shards = 2
workers = 2
first_cpu = none
router_cpu = none
max_positions = 65536
max_lines = 262144
tick_ms = 100
listen = 127.0.0.1:0
grpc_listen = 127.0.0.1:0
metrics_listen = 127.0.0.1:0
CONF
"$atpctl" simday --skus 300 --order-lines 4000 --out "$tmp/day.csv" 2>/dev/null
"$atpctl" import "$tmp/day.csv" --data "$tmp/data" --shards 2 --max-positions 65536 --max-lines 262144 --positions "$tmp/before.csv" >/dev/null 2>&1

"$atpd" --data "$tmp/data" --config "$tmp/atpd.conf" 2>"$tmp/log1" &
pid=$!
check "atpd starts, recovers and serves" wait_for "$tmp/log1" "atpd: serving"
check "... logging the recovery" grep -q "open: 2 shards on 2 workers" "$tmp/log1"
set +e
"$atpd" --data "$tmp/data" --config "$tmp/atpd.conf" 2>"$tmp/log2"
rc2=$?
"$atpctl" import "$tmp/day.csv" --data "$tmp/data" >/dev/null 2>"$tmp/log3"
rc3=$?
set -e
check "a second daemon on the same directory is refused" sh -c "test $rc2 -eq 1 && grep -q 'another atpd holds' '$tmp/log2'"
check "so is an offline import" sh -c "test $rc3 -eq 1 && grep -q 'another atpd holds' '$tmp/log3'"
kill -USR1 "$pid"
check "SIGUSR1 writes a snapshot" wait_for "$tmp/log1" "snapshot written"
kill -TERM "$pid"
set +e
wait "$pid"
rc=$?
set -e
check "SIGTERM: exit 0" test "$rc" -eq 0
check "... after draining and a final snapshot" grep -q "draining, syncing, writing the final snapshot" "$tmp/log1"
check "... and says so" grep -q "stopped cleanly" "$tmp/log1"

"$atpd" --data "$tmp/data" --config "$tmp/atpd.conf" 2>"$tmp/log4" &
pid=$!
wait_for "$tmp/log4" "atpd: serving" || true
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
"$atpd" --data "$tmp/data" --config "$tmp/atpd.conf" 2>"$tmp/log5" &
pid=$!
check "after SIGKILL it starts again" wait_for "$tmp/log5" "atpd: serving"
kill -INT "$pid"
set +e
wait "$pid"
rc=$?
set -e
check "SIGINT: exit 0" test "$rc" -eq 0
"$atpctl" import "$tmp/day.csv" --data "$tmp/data" --max-positions 65536 --max-lines 262144 --positions "$tmp/after.csv" >/dev/null 2>&1
check "the table survived every stop unchanged" cmp -s "$tmp/before.csv" "$tmp/after.csv"

printf 'shards = 2\nworkers = lots\n' >"$tmp/bad.conf"
set +e
"$atpd" --data "$tmp/data2" --config "$tmp/bad.conf" 2>"$tmp/log6"
rc=$?
set -e
check "a bad config is refused with its line" sh -c "test $rc -eq 2 && grep -q \"bad.conf:2: workers: 'lots' is not a number in \\[1, 64\\]\" '$tmp/log6'"
printf 'clock = sundial\nno_such = 1\n' >"$tmp/bad.conf"
"$atpd" --check-config "$tmp/bad.conf" 2>"$tmp/log7" && rc=0 || rc=$?
check "a bad choice names the key and the choices' reference" sh -c "test $rc -eq 2 && grep -q \"bad.conf:1: clock: 'sundial' is not one of the choices\" '$tmp/log7'"
"$atpd" --check-config /dev/null --set no_such=1 2>"$tmp/log7" && rc=0 || rc=$?
check "an unknown key is named" sh -c "test $rc -eq 2 && grep -q \"unknown setting 'no_such'\" '$tmp/log7'"
"$atpd" --check-config /dev/null --set first_cpu=none --set snapshot_mb=0 --set channel_retention_s=0 2>/dev/null && rc=0 || rc=$?
check "none and the zeros that mean something are taken" test "$rc" -eq 0
"$atpd" --check-config /dev/null --set segment_mb=0 2>/dev/null && rc=0 || rc=$?
check "a zero where none is allowed is refused" test "$rc" -eq 2
"$atpd" --check-config /dev/null --set listen=0.0.0.0:7400 2>"$tmp/log8" && rc=0 || rc=$?
check "plaintext on an address other than loopback refuses the start" \
	sh -c "test $rc -eq 2 && grep -q 'listen = 0.0.0.0:7400 is not a loopback address' '$tmp/log8'"
"$atpd" --check-config /dev/null --set 'grpc_listen=[::]:7401' 2>"$tmp/log8" && rc=0 || rc=$?
check "... gRPC's too" sh -c "test $rc -eq 2 && grep -q 'grpc_listen = \[::\]:7401 is not a loopback' '$tmp/log8'"
"$atpd" --check-config /dev/null --set listen=0.0.0.0:7400 --set allow_plaintext=true 2>/dev/null && rc=0 || rc=$?
check "... unless allow_plaintext = true" test "$rc" -eq 0
"$atpd" --check-config /dev/null --set 'listen=[::1]:7400' --set grpc_listen=127.0.0.2:7401 2>/dev/null && rc=0 || rc=$?
check "loopback needs no allowance" test "$rc" -eq 0
mkdir -m 0777 "$tmp/open"
"$atpd" --data "$tmp/open" --set listen=none --set grpc_listen=none --set metrics_listen=none 2>"$tmp/log9" && rc=0 || rc=$?
check "a world-writable data directory refuses the start" \
	sh -c "test $rc -eq 1 && grep -q 'data directory .* is world-writable' '$tmp/log9'"

finish
