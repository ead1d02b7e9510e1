#!/usr/bin/env bash
# Storage faults at every boundary of a recorded run (see atp/faultio.h).
#
# A small day (one source, 128 KiB WAL segments, a snapshot per 128 KiB of
# WAL, a group commit per 100 events at most) is imported once to count
# its storage calls. Then, for every write N: a crash just before it and a
# crash in the middle of it (half its bytes written); for every write a
# failure with ENOSPC and a short write; for every fsync a failure with
# EIO (the write before it lost, as a kernel drops the pages whose
# writeback failed); for every create, rename and fallocate a failure with
# EIO; the power lost before every fsync and every write (each 4 KiB page
# written since the file's last completed fsync lost or kept at random, as
# a disk cache may keep any of them). After each, with the plan gone:
#   - the faulted run says what happened: a crash exits by SIGKILL, a
#     failure exits 1 with a message naming what failed;
#   - recovery opens the directory (a torn tail is cut, never refused);
#     with one shard its table is exactly the in-memory core's after the
#     first H events, H the highest seq recovered, and H is at least the
#     highest seq the faulted run acknowledged: a prefix of what was
#     applied that holds every acknowledged event;
#   - resuming the import ends with exactly the in-memory core's table of
#     the whole day: nothing skipped, nothing applied twice.
# The sweeps run with one shard, then the crashes and power cuts again with
# 2 shards (one worker): there a crash can fall between the two shards'
# writes of a group, and recovery is checked by the resumed table only.
# Usage: faults.sh ATPCTL [STRIDE]: every STRIDE-th call (1: all).
set -euo pipefail
atpctl=$1
stride=${2:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$atpctl" simday --out "$tmp/day.csv" --skus 400 --order-lines 2500 --seed 17 --one-source >/dev/null 2>&1
tables=(--max-positions 4096 --max-lines 16384)
"$atpctl" import "$tmp/day.csv" "${tables[@]}" --positions "$tmp/reference.csv" >/dev/null
head -n 1 "$tmp/day.csv" >"$tmp/empty.csv"
engine() { # engine SHARDS: the import of the day through the engine
	run=(import "$tmp/day.csv" "${tables[@]}" --shards "$1" --workers 1 --segment-kb 128 --snapshot-kb 128
		--sync-every 100 --progress)
}

# case_run PLAN WANT_RC: one faulted run and its recovery in its own directory; prints a line only when wrong.
case_run() {
	local plan=$1 want=$2 d="$tmp/${1//:/_}" rc acked recovered
	set +e
	ATP_FAULT=$plan "$atpctl" "${run[@]}" --data "$d" >"$d.out" 2>"$d.err"
	rc=$?
	set -e
	# 137: killed by the plan; 1: stopped by the failure; 0: the plan's call never came (this run made fewer).
	if [ "$rc" -ne "$want" ] && [ "$rc" -ne 0 ]; then
		echo "$plan: the faulted run exited $rc, not $want: $(tail -n 2 "$d.err" | tr '\n' ' ')"
		return
	fi
	if [ "$rc" -eq 1 ] && ! grep -qE "failed|cannot|No space|Input/output" "$d.err"; then
		echo "$plan: stopped without saying what failed: $(tail -n 2 "$d.err" | tr '\n' ' ')"
	fi
	acked=$(awk '$1 == "durable" && $3 > m { m = $3 } END { print m + 0 }' "$d.out")
	if ! "$atpctl" import "$tmp/empty.csv" "${tables[@]}" --data "$d" --progress --positions "$d.rec.csv" \
		>"$d.out2" 2>"$d.err2"; then
		echo "$plan: recovery failed: $(tail -n 2 "$d.err2" | tr '\n' ' ')"
		return
	fi
	recovered=$(awk '$1 == "recovered" { print $3 }' "$d.out2")
	if [ "${recovered:-0}" -lt "$acked" ]; then
		echo "$plan: acknowledged through seq $acked, recovered only ${recovered:-0}"
	fi
	if [ "$shards" -eq 1 ]; then
		awk -F, -v h="${recovered:-0}" 'NR == 1 || $3 <= h' "$tmp/day.csv" >"$d.prefix.csv"
		"$atpctl" import "$d.prefix.csv" "${tables[@]}" --positions "$d.want.csv" >/dev/null
		cmp -s "$d.want.csv" "$d.rec.csv" || echo "$plan: the recovered table is not the first $recovered events' table"
	fi
	if ! "$atpctl" "${run[@]}" --data "$d" --positions "$d.csv" >"$d.out3" 2>"$d.err3"; then
		echo "$plan: the resumed import failed: $(tail -n 2 "$d.err3" | tr '\n' ' ')"
	elif ! cmp -s "$tmp/reference.csv" "$d.csv"; then
		echo "$plan: the table after recovery differs from the reference"
	fi
	rm -rf "$d" "$d".*
}

fail=0
sweep() { # sweep NAME WANT_RC N PLAN...: each plan with @ replaced by 1, 1 + STRIDE, ... up to N
	local name=$1 want=$2 n=$3 plans problems
	shift 3
	: >"$tmp/problems"
	for i in $(seq 1 "$stride" "$n"); do
		for p in "$@"; do
			# two cases at a time: each is mostly waiting for fsync (stderr: the shell's "Killed" notes)
			case_run "${p//@/$i}" "$want" >>"$tmp/problems" 2>/dev/null &
			[ "$(jobs -rp | wc -l)" -lt 2 ] || wait -n
		done
	done
	wait
	plans=$((((n + stride - 1) / stride) * $#))
	problems=$(wc -l <"$tmp/problems")
	if [ "$problems" -eq 0 ]; then
		echo "ok - $shards shard(s), $name: $plans faulted runs, each recovered every acknowledged event and the reference table"
	else
		echo "not ok - $shards shard(s), $name: $problems problems in $plans faulted runs:"
		head -n 20 "$tmp/problems"
		fail=1
	fi
}

for shards in 1 2; do
	engine "$shards"
	rm -f "$tmp/counts"
	ATP_FAULT_COUNT="$tmp/counts" "$atpctl" "${run[@]}" --data "$tmp/count" --positions "$tmp/count.csv" \
		>/dev/null 2>"$tmp/count.err"
	rm -rf "$tmp/count"
	cmp -s "$tmp/reference.csv" "$tmp/count.csv" || { echo "not ok - the counting run's table differs"; exit 1; }
	count() { awk -v op="$1" '$1 == op { print $2 }' "$tmp/counts"; }
	echo "# $shards shard(s): a clean run makes $(count write) writes, $(count fsync) fsyncs, $(count open) creates," \
		"$(count rename) renames, $(count fallocate) fallocates"
	sweep "a crash before and in the middle of every write" 137 "$(count write)" crash:write:@:0 crash:write:@:half
	sweep "the power lost before every fsync (random pages of what it would cover lost)" 137 "$(count fsync)" \
		power:fsync:@
	[ "$shards" -eq 1 ] || continue
	sweep "the power lost before every write" 137 "$(count write)" power:write:@
	sweep "ENOSPC and a short write at every write" 1 "$(count write)" fail:write:@:ENOSPC short:write:@:7
	sweep "EIO at every fsync (the write before it lost)" 1 "$(count fsync)" fail:fsync:@:EIO
	sweep "EIO at every create, rename and fallocate" 1 "$(count open)" fail:open:@:EIO fail:rename:@:EIO \
		fail:fallocate:@:EIO
done
exit $fail
