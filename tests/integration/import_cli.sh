#!/usr/bin/env bash
# atpctl import and simday as a user runs them: every bad row named by
# FILE:LINE and nothing applied; a clean file applied and its positions
# written sorted; the simulated day reproducible from its seed.
set -euo pipefail
atpctl=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"

hdr='event_id,source,seq,type,sku,location,qty,ref,to_location,reason'
cat >"$tmp/bad.csv" <<CSV
$hdr
1,wms,1,RECEIPT,S1,DC1,10,,,
2,wms,2,RECEIPT,S1,DC1,ten,,,
3,wms,3,TELEPORT,S1,DC1,1,,,
4,wms,4,PICK,S1,DC1,-2,,,
5,wms,9,RECEIPT,S1,DC1,1,,,
CSV
set +e
"$atpctl" import "$tmp/bad.csv" --positions "$tmp/bad_positions.csv" >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
check "a file with bad rows exits 1" test "$rc" -eq 1
check "row 3 named" grep -q "bad.csv:3: qty: not a valid number: 'ten'" "$tmp/err"
check "row 4 named" grep -q "bad.csv:4: type: unknown event type 'TELEPORT'" "$tmp/err"
check "row 5 named" grep -q "bad.csv:5: qty out of the range" "$tmp/err"
check "the gap named with the expected seq" grep -q "bad.csv:6: seq 9 of source 'wms' leaves a gap: expected 2" "$tmp/err"
check "nothing applied" grep -q "4 bad rows; nothing applied" "$tmp/err"
check "no positions written" test ! -e "$tmp/bad_positions.csv"

cat >"$tmp/good.csv" <<CSV
$hdr
1,wms,1,RECEIPT,S2,DC2,10,,,
2,wms,2,RECEIPT,S1,DC2,5,,,
3,wms,3,RECEIPT,S1,DC1,8,,,
3,wms,3,RECEIPT,S1,DC1,8,,,
4,oms,1,RESERVE,S1,DC1,3,SO-1,,
5,wms,4,TRANSFER,S2,DC2,4,,"DC,3",
6,wms,5,HOLD,S1,DC2,2,,,QC
7,wms,6,SAFETY,S2,DC2,1,,,
CSV
"$atpctl" import "$tmp/good.csv" --positions "$tmp/positions.csv" >"$tmp/out"
cat >"$tmp/want.csv" <<CSV
sku,location,on_hand,held,reserved,safety_stock,atp
S1,DC1,8,0,3,0,5
S1,DC2,5,2,0,0,3
S2,"DC,3",4,0,0,0,4
S2,DC2,6,0,0,1,5
CSV
check "positions sorted by sku then location, quoted where needed" diff -u "$tmp/want.csv" "$tmp/positions.csv"
check "the duplicate acknowledged, not applied" grep -q "7 applied, 1 duplicates acknowledged, 0 refused" "$tmp/out"

"$atpctl" simday --skus 200 --locations 3 --order-lines 3000 --seed 5 --out "$tmp/day1.csv" 2>/dev/null
"$atpctl" simday --skus 200 --locations 3 --order-lines 3000 --seed 5 --out "$tmp/day2.csv" 2>/dev/null
check "the same seed writes the same day" cmp -s "$tmp/day1.csv" "$tmp/day2.csv"
"$atpctl" import "$tmp/day1.csv" --positions "$tmp/p1.csv" >"$tmp/day_out"
check "the day replays with nothing refused" grep -q " 0 refused" "$tmp/day_out"
check "one position row per SKU and location" test "$(($(wc -l <"$tmp/p1.csv") - 1))" -eq 600
"$atpctl" convert "$tmp/day1.csv" "$tmp/day1.evb" 2>/dev/null
"$atpctl" import "$tmp/day1.evb" --positions "$tmp/p1b.csv" >/dev/null
check "the binary event file replays to the same table" cmp -s "$tmp/p1.csv" "$tmp/p1b.csv"
"$atpctl" import "$tmp/day1.evb" --data "$tmp/data" --shards 3 --workers 2 --positions "$tmp/p1e.csv" >"$tmp/engine_out" 2>&1
check "through the durable engine (3 shards), the same table" cmp -s "$tmp/p1.csv" "$tmp/p1e.csv"
"$atpctl" import "$tmp/day1.csv" --data "$tmp/data" --positions "$tmp/p1f.csv" >"$tmp/again_out" 2>&1
check "importing it again into the same data directory changes nothing" cmp -s "$tmp/p1.csv" "$tmp/p1f.csv"
check "... every row is recognised as already durable" grep -q "rows at or below their source's accepted seq (duplicates, or durable before) were acknowledged" "$tmp/again_out"
# Point the third frame's root offset out of its buffer: verification refuses it, nothing is applied.
python3 -c "
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read()); off = 8
for _ in range(2): off += 4 + struct.unpack_from('<I', b, off)[0]
b[off + 4:off + 8] = b'\\xf0\\xff\\xff\\x7f'; open(sys.argv[2], 'wb').write(b)" "$tmp/day1.evb" "$tmp/bad.evb"
set +e
"$atpctl" import "$tmp/bad.evb" --positions "$tmp/bad_evb_positions.csv" >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
check "a damaged binary frame exits 1, named by its offset" sh -c "test $rc -eq 1 && grep -q 'bad.evb@[0-9]*: bad frame' '$tmp/err'"
check "... and nothing was applied" test ! -e "$tmp/bad_evb_positions.csv"
set +e
"$atpctl" simday --peak-factor 50 --peak-minutes 60 --out "$tmp/x.csv" 2>"$tmp/err"
rc=$?
set -e
check "an impossible burst is refused" test "$rc" -eq 1

finish
