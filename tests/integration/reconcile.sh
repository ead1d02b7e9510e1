#!/usr/bin/env bash
# atpctl reconcile against a running atpd: a simulated day in, its
# positions exported, and a WMS stock file made from them with known
# differences (some on_hand changed up and down, some positions left out,
# one new position, the columns in another order, quoted fields). The
# report must count exactly those; --apply must send exactly the counts
# that make atpd match (durably, as source "recon"); a second run must
# find nothing and apply nothing; a third, after more changes, must go on
# from the source's seq. A bad file (a bad number, a position twice, a
# missing column) is refused by FILE:LINE with nothing applied.
# Usage: reconcile.sh ATPD ATPCTL
set -euo pipefail
atpd=$1
atpctl=$2
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"

"$atpctl" simday --out "$tmp/day.csv" --skus 300 --order-lines 3000 --seed 3 2>/dev/null
"$atpd" --data "$tmp/data" --set clock=frozen --set shards=2 --set first_cpu=none --set router_cpu=none \
	--set max_positions=65536 --set max_lines=262144 --set listen=127.0.0.1:0 --set grpc_listen=127.0.0.1:0 \
	--set metrics_listen=none 2>"$tmp/atpd.log" &
wait_for "$tmp/atpd.log" "atpd: serving" || { cat "$tmp/atpd.log"; exit 1; }
tcp=127.0.0.1:$(sed -n 's/.*event stream listening on .*(port \([0-9]*\)).*/\1/p' "$tmp/atpd.log")
export ATP_GRPC=127.0.0.1:$(sed -n 's/.*grpc listening on .*(port \([0-9]*\)).*/\1/p' "$tmp/atpd.log")
"$atpctl" send --tcp "$tcp" "$tmp/day.csv" >/dev/null 2>&1
"$atpctl" export >"$tmp/pos.csv" 2>/dev/null
positions=$(($(wc -l <"$tmp/pos.csv") - 1))

# The WMS file (a UTF-8 byte-order mark, CRLF in the header): on_hand,"sku",location,bin; rows 2..6 +5 units, rows 7..9 -1 (where there is one),
# rows 10..13 left out, one position atpd does not have; a negative on_hand (the day's floor
# exceptions) counted as 0.
awk -F, 'NR == 1 { print "\357\273\277on_hand,sku,location,bin\r"; next }
	NR >= 10 && NR <= 13 { next }
	{ q = $3 < 0 ? 0 : $3; if (NR >= 2 && NR <= 6) q += 5; else if (NR >= 7 && NR <= 9 && q > 0) q -= 1;
	  printf "%d,\"%s\",%s,A-%d\n", q, $1, $2, NR }
	END { print "7,NEW-SKU,DC01,Z-1" }' "$tmp/pos.csv" >"$tmp/wms.csv"
# What the report must say, worked out here from the two files.
read -r both differing over_n over under_n under missing_units maxvar < <(awk -F, '
	NR == FNR { if (FNR > 1) atpd[$1 "," $2] = $3; next }
	FNR > 1 { gsub(/"/, "", $2); k = $2 "," $3; if (!(k in atpd)) next; seen[k] = 1; both++
		  d = atpd[k] - $1; if (d > 0) { on++; o += d } else if (d < 0) { un++; u -= d }
		  if (d != 0) diff++; a = d < 0 ? -d : d; if (a > m) m = a }
	END { for (k in atpd) if (!(k in seen)) mu += atpd[k]; print both, diff, on + 0, o + 0, un + 0, u + 0, mu + 0, m }' \
	"$tmp/pos.csv" "$tmp/wms.csv")

"$atpctl" reconcile "$tmp/wms.csv" --top 3 --progress >"$tmp/r1.out" 2>"$tmp/r1.err"
check "the report counts the positions in both" grep -qx "positions checked: $both (in both the file and atpd)" "$tmp/r1.out"
check "... those that match" grep -qx "matching: $((both - differing))" "$tmp/r1.out"
check "... those that differ ($differing), over and under" \
	grep -qx "differing: $differing: atpd over the file on $over_n by $over units, under on $under_n by $under units" "$tmp/r1.out"
check "... the one only in the file" grep -qx "only in the file: 1 (7 units on hand)" "$tmp/r1.out"
check "... the four only in atpd" grep -qx "only in atpd: 4 ($missing_units units on hand)" "$tmp/r1.out"
check "... and the largest variance first" \
	bash -c "sed -n '/^sku,location,atpd,file,variance/{n;p;q}' '$tmp/r1.out' | grep -qE ',[-+]$maxvar\$'"
check "a progress line on request" grep -q "reconcile: $((positions - 3)) rows, 100%" "$tmp/r1.err"

"$atpctl" reconcile "$tmp/wms.csv" --apply --tcp "$tcp" --source recon >"$tmp/r2.out" 2>"$tmp/r2.err"
check "--apply sends one COUNT per differing position and one for the new one, durably" \
	grep -qx "applied: $((differing + 1)) COUNT events as source recon (seq 1..$((differing + 1))), durable; 0 refused" \
	"$tmp/r2.out"
"$atpctl" reconcile "$tmp/wms.csv" --apply --tcp "$tcp" --source recon >"$tmp/r3.out" 2>&1
check "then everything in the file matches" grep -qx "matching: $((positions - 3))" "$tmp/r3.out"
check "... and a second --apply applies nothing" grep -qx "applied: nothing to apply" "$tmp/r3.out"
check "the new position is in atpd" grep -q "^NEW-SKU,DC01,7," <("$atpctl" export 2>/dev/null)

# More differences: the source's seqs go on; --zero-missing counts the left-out positions to 0.
sed -i '2s/^[0-9]*,/1000,/' "$tmp/wms.csv"
"$atpctl" reconcile "$tmp/wms.csv" --apply --zero-missing --tcp "$tcp" --source recon >"$tmp/r4.out" 2>&1
nz=$(awk -F, 'NR >= 10 && NR <= 13 && $3 != 0' "$tmp/pos.csv" | wc -l)
check "a later run goes on from the source's seq (--zero-missing too)" \
	grep -qx "applied: $((1 + nz)) COUNT events as source recon (seq $((differing + 2))..$((differing + 1 + 1 + nz))), durable; 0 refused" \
	"$tmp/r4.out"
"$atpctl" reconcile "$tmp/wms.csv" --zero-missing >"$tmp/r5.out" 2>&1
check "... after which only the left-out positions differ from the file, at 0" \
	grep -qx "only in atpd: 4 (0 units on hand): counted to 0 with --apply" "$tmp/r5.out"

# Bad files: named by line, nothing applied.
"$atpctl" export >"$tmp/before.csv" 2>/dev/null
printf 'sku,location,on_hand\nA,DC01,5\nB,DC01,-3\nC,DC01,x\nA,DC01,6\nD,DC01\nE,DC01,1000000000001\nF\tG,DC01,1\n' >"$tmp/bad.csv"
set +e
"$atpctl" reconcile "$tmp/bad.csv" --apply --tcp "$tcp" --source recon >"$tmp/bad.out" 2>"$tmp/bad.err"
rc=$?
"$atpctl" reconcile <(printf 'sku,qty\nA,1\n') >/dev/null 2>"$tmp/hdr.err"
rc2=$?
set -e
check "a bad file fails" test "$rc" = 1
check "... naming each bad row by line" bash -c "grep -q 'bad.csv:3: on_hand: not a whole number in 0..10^12' '$tmp/bad.err' &&
	grep -q 'bad.csv:4: on_hand' '$tmp/bad.err' && grep -q 'bad.csv:5: A at DC01 again (first on line 2)' '$tmp/bad.err' &&
	grep -q 'bad.csv:6: 2 fields, the header has 3' '$tmp/bad.err' && grep -q 'bad.csv:7: on_hand' '$tmp/bad.err' &&
	grep -q 'bad.csv:8: sku: empty, longer than 64 bytes, or with a control byte' '$tmp/bad.err'"
check "... and nothing is applied" cmp -s "$tmp/before.csv" <("$atpctl" export 2>/dev/null)
check "a header without the columns is refused" bash -c "test $rc2 = 1 && grep -q ':1: the header must name the columns sku, location and on_hand' '$tmp/hdr.err'"
check "an internal source name is refused" bash -c "! '$atpctl' reconcile '$tmp/wms.csv' --apply --source @grpc 2>/dev/null"

kill -TERM %1
wait
finish
