#!/usr/bin/env bash
# atpctl replay and atpctl history: a data directory's past, offline.
# A simulated day (plus a reservation that lapses) goes into a one-shard
# data directory in two imports (so it holds a snapshot in the middle and
# one at the end); then:
#  - replay at several cut times equals `atpctl import` of the file's prefix
#    up to that time (the rows before the first whose occurred_at passes
#    it: the engine's time is the running maximum), and a cut by LSN
#    equals the cut by the time of that record;
#  - a cut the directory no longer retains is refused with a message;
#  - history of a SKU lists every event of that SKU (the file's rows less
#    the duplicates), the lapse, and ends with the position as exported;
#  - atpd with wal_retention_hours keeps the WAL that replay needs across
#    snapshots, atpd without it trims it; and a running atpd's
#    Admin/History gives the same CSV as history of its directory.
# Usage: replay.sh ATPD ATPCTL
set -euo pipefail
atpd=$1
atpctl=$2
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"

"$atpctl" simday --out "$tmp/sim.csv" --skus 300 --order-lines 4000 --seed 7 2>/dev/null
# A reservation of 1 unit with a 1 s TTL after the day, then a receipt 5 s later: the line lapses.
awk -F, -v OFS=, '
	NR > 1 { if ($11 > end) end = $11; if ($3 > seq[$2]) seq[$2] = $3 }
	{ print }
	END {
		print "E-LAPSE-1", "oms", seq["oms"] + 1, "RESERVE", "SKU-000007", "DC01", 1, "SO-LAPSE", "", "", end + 1, 1000, "", ""
		print "900002", "wms", seq["wms"] + 1, "RECEIPT", "SKU-000007", "DC01", 3, "PO-LATE", "", "", end + 5000, "", "", ""
	}' "$tmp/sim.csv" >"$tmp/day.csv"
rows=$(($(wc -l <"$tmp/day.csv") - 1))
half=$((rows / 2))
head -n $((half + 1)) "$tmp/day.csv" >"$tmp/half.csv"
data=$tmp/data
"$atpctl" import "$tmp/half.csv" --data "$data" --shards 1 --segment-mb 1 --snapshot-mb 0 >/dev/null 2>&1
"$atpctl" import "$tmp/day.csv" --data "$data" --shards 1 --segment-mb 1 --snapshot-mb 0 >/dev/null 2>&1
check "two snapshots (the middle and the end)" test "$(ls "$data"/shard-000/snap-*.snap | wc -l)" -eq 2

# The prefix of the file up to time T (the running maximum of occurred_at stays <= T).
prefix() { awk -F, -v t="$1" 'NR == 1 { print; next } { if ($11 > m) m = $11; if (m > t) exit; print }' "$tmp/day.csv"; }
same_at() { # same_at TIME: replay at TIME equals import of the prefix
	prefix "$1" >"$tmp/prefix.csv"
	"$atpctl" import "$tmp/prefix.csv" --positions "$tmp/want.csv" >/dev/null
	"$atpctl" replay "$data" --until "$1" --positions "$tmp/got.csv" 2>"$tmp/replay.err" &&
		cmp -s "$tmp/want.csv" "$tmp/got.csv"
}
at_row() { awk -F, -v n="$1" 'NR > 1 && NR <= n + 1 { if ($11 > m) m = $11 } END { print m + 0 }' "$tmp/day.csv"; }
check "replay at the 20% row's time equals import of the file's prefix" same_at "$(at_row $((rows / 5)))"
check "... from an empty state (before the middle snapshot)" grep -q "from the snapshot of lsn 0 " "$tmp/replay.err"
for pct in 40 55 80; do
	check "replay at the $pct% row's time equals import of the file's prefix" same_at "$(at_row $((rows * pct / 100)))"
done
end=$(awk -F, 'NR > 1 { if ($11 > m) m = $11 } END { print m }' "$tmp/sim.csv")
reserved() { awk -F, '$1 == "SKU-000007" && $2 == "DC01" { print $5 }' "$tmp/got.csv"; }
check "replay just after the short reservation equals import's prefix" same_at $((end + 1))
check "... started from the middle snapshot" grep -q "from the snapshot of lsn [1-9]" "$tmp/replay.err"
held_line=$(reserved)
check "replay after its lapse equals import of the whole file" same_at $((end + 5000))
check "... and the line has lapsed (reserved $held_line -> $(reserved))" test "$(reserved)" -eq $((held_line - 1))

# Three shards: each is cut at the same time.
"$atpctl" import "$tmp/day.csv" --data "$tmp/three" --shards 3 --snapshot-mb 0 >/dev/null 2>&1
data=$tmp/three
check "three shards: replay at the 60% row's time equals import of the prefix" same_at "$(at_row $((rows * 6 / 10)))"
check "... a cut by one LSN per shard" "$atpctl" replay "$data" --until lsn:10,20,30 --positions /dev/null 2>/dev/null
check "... the wrong count of LSNs is a usage error" \
	bash -c "'$atpctl' replay '$data' --until lsn:10,20 >/dev/null 2>&1; test \$? -eq 2"
data=$tmp/data

# A cut by LSN equals the cut by that record's time.
"$atpctl" wal "$data" 2>/dev/null >"$tmp/wal.csv"
lsn=$(awk -F, 'NR == 3001 { print $2 }' "$tmp/wal.csv")
now=$(awk -F, 'NR == 3001 { print $4 }' "$tmp/wal.csv")
last_at_now=$(awk -F, -v t="$now" 'NR > 1 && $4 <= t { l = $2 } END { print l }' "$tmp/wal.csv")
"$atpctl" replay "$data" --until "lsn:$last_at_now" --positions "$tmp/by-lsn.csv" 2>/dev/null
"$atpctl" replay "$data" --until "$now" --positions "$tmp/by-time.csv" 2>/dev/null
check "replay --until lsn:$last_at_now equals --until $now" cmp -s "$tmp/by-lsn.csv" "$tmp/by-time.csv"
check "... an ISO time is the same moment" \
	cmp -s "$tmp/by-time.csv" <("$atpctl" replay "$data" --until "$(date -u -d "@$((now / 1000))" +%Y-%m-%dT%H:%M:%S).$(printf %03d $((now % 1000)))Z" 2>/dev/null)
check "an LSN beyond the WAL is refused" \
	bash -c "! '$atpctl' replay '$data' --until lsn:99999999 >/dev/null 2>'$tmp/e' && grep -q 'beyond the WAL' '$tmp/e'"
check "a bad --until is a usage error" bash -c "'$atpctl' replay '$data' --until yesterday >/dev/null 2>&1; test \$? -eq 2"

# History of one SKU: every event of it (the duplicates never reached the WAL), the lapse, the final position.
sku=SKU-000007
"$atpctl" history "$data" "$sku" >"$tmp/history.csv" 2>"$tmp/history.err"
"$atpctl" import "$tmp/day.csv" --positions "$tmp/final.csv" >/dev/null
events_in_wal=$(awk -F, -v s="$sku" '$3 == "event" && $9 == s' "$tmp/wal.csv" | wc -l)
rows_of_sku=$(awk -F, -v s="$sku" '$3 == "event" && $9 == s { n += ($8 == "TRANSFER") ? 2 : 1 } END { print n + 0 }' "$tmp/wal.csv")
check "history: a row per event of $sku in the WAL ($events_in_wal events, $rows_of_sku rows)" \
	test "$(awk -F, '$3 == "event"' "$tmp/history.csv" | wc -l)" -eq "$rows_of_sku"
check "... the lapse of SO-LAPSE" grep -q ',lapse,,,,,DC01,' "$tmp/history.csv"
check "... the reservation with its text id and status" grep -q ',event,oms,[0-9]*,E-LAPSE-1,RESERVE,DC01,1,SO-LAPSE,,,OK,' "$tmp/history.csv"
final_dc01=$(awk -F, -v s="$sku" '$1 == s && $2 == "DC01" { print $3 "," $4 "," $5 "," $6 "," $7 }' "$tmp/final.csv")
last_dc01=$(awk -F, '$8 == "DC01" { r = $14 "," $15 "," $16 "," $17 "," $18 } END { print r }' "$tmp/history.csv")
check "... its last DC01 row is the position as import leaves it ($final_dc01)" test "$last_dc01" = "$final_dc01"
since=$(awk -F, 'NR == 3001 { print $4 }' "$tmp/wal.csv")
"$atpctl" history "$data" "$sku" DC01 --since "$since" >"$tmp/since.csv" 2>/dev/null
check "history --since starts with the position as of then, one location only" \
	bash -c "sed -n 2p '$tmp/since.csv' | grep -q ',since,' && ! awk -F, 'NR > 1 && \$8 != \"DC01\"' '$tmp/since.csv' | grep -q ."

# atpd with and without wal_retention_hours: a larger day of one source
# (three 1 MiB WAL segments), three snapshots on command, then what replay
# can still reach.
"$atpctl" simday --out "$tmp/big.csv" --skus 300 --order-lines 20000 --seed 9 --one-source 2>/dev/null
big=$(($(wc -l <"$tmp/big.csv") - 1))
run_daemon() { # run_daemon DATA RETENTION_HOURS: a day sent, three snapshots, stopped
	"$atpd" --data "$1" --set clock=frozen --set shards=1 --set first_cpu=none --set router_cpu=none \
		--set segment_mb=1 --set snapshot_mb=0 --set "wal_retention_hours=$2" --set listen=127.0.0.1:0 \
		--set grpc_listen=127.0.0.1:0 --set metrics_listen=none 2>"$tmp/atpd.log" &
	local daemon=$!
	wait_for "$tmp/atpd.log" "atpd: serving" || { cat "$tmp/atpd.log"; exit 1; }
	local tcp grpc
	tcp=$(sed -n 's/.*event stream listening on .*(port \([0-9]*\)).*/\1/p' "$tmp/atpd.log")
	grpc=$(sed -n 's/.*grpc listening on .*(port \([0-9]*\)).*/\1/p' "$tmp/atpd.log")
	for part in 1 2 3; do
		head -n $((big * part / 3 + 1)) "$tmp/big.csv" >"$tmp/part.csv"
		"$atpctl" send --tcp "127.0.0.1:$tcp" "$tmp/part.csv" >/dev/null 2>&1
		"$atpctl" snapshot --grpc "127.0.0.1:$grpc" >/dev/null
	done
	# Admin/History: the running atpd computes the same CSV from its files.
	"$atpctl" history --grpc "127.0.0.1:$grpc" SKU-000003 >"$tmp/remote-history.csv" 2>/dev/null
	"$atpctl" history "$1" SKU-000003 >"$tmp/local-history.csv" 2>/dev/null
	"$atpctl" history --grpc "127.0.0.1:$grpc" SKU-000003 DC01 --since 1 >"$tmp/remote-dc01.csv" 2>/dev/null
	"$atpctl" history "$1" SKU-000003 DC01 --since 1 >"$tmp/local-dc01.csv" 2>/dev/null
	kill -TERM "$daemon"
	wait "$daemon"
}
run_daemon "$tmp/kept" 24
check "history from the running atpd (Admin/History) equals history of its directory ($(wc -l <"$tmp/local-history.csv") lines)" \
	bash -c "test \$(wc -l <'$tmp/local-history.csv') -gt 10 && cmp -s '$tmp/remote-history.csv' '$tmp/local-history.csv' &&
		cmp -s '$tmp/remote-dc01.csv' '$tmp/local-dc01.csv'"
run_daemon "$tmp/trimmed" 0
check "with wal_retention_hours = 24 the WAL from lsn 1 stays" \
	"$atpctl" replay "$tmp/kept" --until lsn:1000 --positions /dev/null 2>/dev/null
check "... without, the oldest moments are gone" \
	bash -c "! '$atpctl' replay '$tmp/trimmed' --until lsn:1000 >/dev/null 2>'$tmp/e' && grep -q 'older than what' '$tmp/e'"
finish
