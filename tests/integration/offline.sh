#!/usr/bin/env bash
# atpctl verify and atpctl wal on a data directory the durable engine wrote:
# a sound directory passes and is left unchanged; a damaged WAL record, a
# damaged snapshot and a hole between them are each named with their file
# and fail; a torn tail is a note, as recovery would cut it; wal prints
# every event record, filtered by --from, --sku and --shard.
set -euo pipefail
atpctl=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"

"$atpctl" simday --seed 5 --skus 300 --order-lines 20000 --out "$tmp/day.csv" 2>/dev/null
mkdir "$tmp/clean"
"$atpctl" import "$tmp/day.csv" --data "$tmp/clean/data" --shards 2 --segment-mb 1 --snapshot-mb 64 --sync-every 2000 \
	>"$tmp/import.out" 2>/dev/null
durable=$(sed -n 's/.* \([0-9]*\) events durable.*/\1/p' "$tmp/import.out")
check "import made the directory ($durable events)" test "${durable:-0}" -gt 10000
segs=$(ls "$tmp/clean/data/shard-000"/*.wal | wc -l)
check "shard 0 has several segments ($segs)" test "$segs" -ge 2

sums() { find "$1" -type f -print0 | sort -z | xargs -0 md5sum; }
verify() { # verify DIR: the report in $tmp/v.out, the exit status in $rc
	set +e
	"$atpctl" verify "$1" >"$tmp/v.out" 2>&1
	rc=$?
	set -e
}

# A sound directory.
sums "$tmp/clean" >"$tmp/before"
verify "$tmp/clean/data"
check "a sound directory verifies (exit 0)" test "$rc" -eq 0
check "the report says no problem" grep -q "2 shards, 0 problems" "$tmp/v.out"
check "every CRC holds in both shards" test "$(grep -c 'every CRC holds' "$tmp/v.out")" -eq 2
sums "$tmp/clean" >"$tmp/after"
check "verify changed nothing" cmp -s "$tmp/before" "$tmp/after"

# wal: every event record, once.
"$atpctl" wal "$tmp/clean/data" >"$tmp/wal.csv" 2>/dev/null
check "wal prints every durable event" test "$(grep -c '^[0-9]*,[0-9]*,event,' "$tmp/wal.csv")" -eq "$durable"
"$atpctl" wal "$tmp/clean/data" --shard 1 --from 500 >"$tmp/wal1.csv" 2>/dev/null
check "--shard 1 --from 500 starts at lsn 500 of shard 1" test "$(sed -n 2p "$tmp/wal1.csv" | cut -d, -f1,2)" = "1,500"
check "--shard 1 prints only shard 1" test -z "$(tail -n +2 "$tmp/wal1.csv" | cut -d, -f1 | grep -v '^1$' || true)"
sku=$(sed -n 2p "$tmp/day.csv" | cut -d, -f5)
"$atpctl" wal "$tmp/clean/data" --sku "$sku" >"$tmp/sku.csv" 2>/dev/null
check "--sku $sku prints only its events" test -z "$(tail -n +2 "$tmp/sku.csv" | cut -d, -f9 | grep -v "^$sku\$" || true)"
check "--sku $sku prints as many as the day has" \
	test "$(tail -n +2 "$tmp/sku.csv" | wc -l)" -eq "$(awk -F, -v s="$sku" '$5 == s' "$tmp/day.csv" | sort -u | wc -l)"

verify_fails() { # verify_fails DIR PATTERN: exit 1 and the pattern in the report
	verify "$1"
	[ "$rc" -eq 1 ] && grep -q "$2" "$tmp/v.out"
}
flip() { # flip FILE OFFSET: invert one byte
	python3 -c 'import sys; f=open(sys.argv[1],"r+b"); o=int(sys.argv[2]); f.seek(o); b=f.read(1); f.seek(o); f.write(bytes([b[0]^0xff]))' "$1" "$2"
}

# A damaged record in a segment that is not the last.
cp -a "$tmp/clean" "$tmp/rec"
first=$(ls "$tmp/rec/data/shard-000"/*.wal | head -1)
flip "$first" 90
verify "$tmp/rec/data"
check "damage in records a snapshot covers: a note, exit 0 (recovery does not read them)" \
	sh -c "[ $rc -eq 0 ] && grep -q 'note: damage in records the newest good snapshot .* covers.*$(basename "$first"): bad record at offset 64' '$tmp/v.out'"
rm "$tmp/rec/data/shard-000"/snap-*.snap
check "without the snapshot, the damaged record fails verify, named by file and offset" verify_fails "$tmp/rec/data" "PROBLEM: .*$(basename "$first"): bad record at offset 64"
set +e
"$atpctl" wal "$tmp/rec/data" --shard 0 >/dev/null 2>"$tmp/wal.err"
rc=$?
set -e
check "wal exits 1 on it and says where" test "$rc" -eq 1 -a -n "$(grep "offset 64" "$tmp/wal.err")"

# A damaged snapshot.
cp -a "$tmp/clean" "$tmp/snap"
snap=$(ls "$tmp/snap/data/shard-001"/snap-*.snap | tail -1)
flip "$snap" 200
check "a damaged snapshot fails verify, named by file and offset" verify_fails "$tmp/snap/data" "$(basename "$snap"): damaged at bytes 0-4095 or "

# A hole: the first segment gone and no snapshot covering it.
cp -a "$tmp/clean" "$tmp/hole"
rm "$(ls "$tmp/hole/data/shard-000"/*.wal | head -1)" "$tmp/hole/data/shard-000"/snap-*.snap
check "a missing segment fails verify" verify_fails "$tmp/hole/data" "PROBLEM: lsn 1\.\.[0-9]* are in neither a good snapshot"

# A torn tail: half a record after the last good one of the last segment.
cp -a "$tmp/clean" "$tmp/torn"
last=$(ls "$tmp/torn/data/shard-001"/*.wal | tail -1)
python3 - "$last" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
off = 64
while True:
    f.seek(off)
    n, _, _ = struct.unpack("<IIQ", f.read(16))
    if n == 0:
        break
    off += (16 + n + 7) & ~7
f.seek(off)
f.write(struct.pack("<IIQ", 120, 0xdeadbeef, 1 << 40) + b"x" * 40)
PY
sums "$tmp/torn" >"$tmp/before"
verify "$tmp/torn/data"
check "a torn tail verifies (exit 0)" test "$rc" -eq 0
check "with a note of what recovery cuts" grep -q "note: .*$(basename "$last"): torn tail at offset" "$tmp/v.out"
sums "$tmp/torn" >"$tmp/after"
check "and verify did not cut it" cmp -s "$tmp/before" "$tmp/after"

# Damage in the WAL, no snapshot over it (recovery must read the WAL): inside the last write, recovery takes it
# for a torn tail and cuts what follows; in an earlier write, with a later write's start after it, it is damage
# to acknowledged records and refused. verify says which.
damage() { # damage DIR WHICH: flip a payload bit of a record of shard 1's last segment (last: in its last write)
	cp -a "$tmp/clean" "$1"
	rm "$1/data/shard-001"/snap-*.snap
	python3 - "$(ls "$1/data/shard-001"/*.wal | tail -1)" "$2" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
offs, starts, off = [], [], 64
while True:
    f.seek(off)
    n, _, lsn = struct.unpack("<IIQ", f.read(16))
    if n == 0:
        break
    if lsn >> 63:
        starts.append(len(offs))  # the first record of a write
    offs.append(off)
    off += (16 + n + 7) & ~7
last = starts[-1]
if sys.argv[2] == "last":
    at = offs[(last + len(offs)) // 2]
else:
    assert last > 0, "the segment holds one write only"
    at = offs[last - 1]
f.seek(at + 20)
b = f.read(1)
f.seek(at + 20)
f.write(bytes([b[0] ^ 0x10]))
PY
}
damage "$tmp/mid" last
verify "$tmp/mid/data"
check "damage in the last write: a note, exit 0" test "$rc" -eq 0
check "... that names the valid records after it, lost with the cut" grep -q "torn tail at offset [0-9]* (recovery cuts it); valid records up to lsn [0-9]* follow it" "$tmp/v.out"
echo "event_id,source,seq,type,sku,location,qty,ref,to_location,reason" >"$tmp/empty.csv"
"$atpctl" import "$tmp/empty.csv" --data "$tmp/mid/data" >/dev/null 2>"$tmp/recover.err" || true
check "recovery cuts it with a log line that says the same" grep -q "torn tail at offset .* cut .*valid records up to lsn" "$tmp/recover.err"
damage "$tmp/early" earlier
verify "$tmp/early/data"
check "damage before a later write: refused, exit 1" sh -c "test $rc -eq 1 && grep -q 'the start of a later write' '$tmp/v.out'"

verify "$tmp/nowhere"
check "not a data directory: exit 2" test "$rc" -eq 2
finish
