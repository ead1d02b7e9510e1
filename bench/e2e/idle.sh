#!/usr/bin/env bash
# What a quiet atpd costs: the CPU an idle daemon uses over 10 s, and one
# taking a trickle of 100 events/s (atp-subload's probes: a RECEIPT each,
# over the TCP stream, each waiting for its durable Ack), with and without
# a subscriber of a channel that sees them; and the trickle committed by
# the shard worker (router_commit_gap_ms=0), side by side with the
# router's own commits (this VM's hours differ more than the two). Per
# scenario RUNS times (default 3), medians, in % of one core, and per
# thread (the event loop and router, the shard worker, the io_uring worker
# that runs the WAL's fsyncs) from /proc. Prints a markdown report.
# Usage: bench/e2e/idle.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/setup
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build src/atpd tools/atp-subload >/dev/null
atpd=build/src/atpd subload=build/tools/atp-subload
runs=${RUNS:-3}
dir=var/bench-idle
rm -rf "$dir" && mkdir -p "$dir"

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ticks() { # ticks PID: "name ticks" per thread (utime + stime, 1/100 s)
	for t in /proc/"$1"/task/*; do
		printf '%s %s\n' "$(sed 's/^iou-wrk.*/iou-wrk/' "$t/comm")" "$(awk '{ print $14 + $15 }' "$t/stat")"
	done
}

# run TAG SUBS RATE [SETTINGS...]: one atpd, 10 s measured; appends "total loop worker iouwrk" (% of a core) to $dir/TAG
run() {
	local tag=$1 subs=$2 rate=$3; shift 3
	rm -rf "$dir/data"
	$atpd --data "$dir/data" --set listen=127.0.0.1:0 --set grpc_listen=127.0.0.1:0 --set metrics_listen=127.0.0.1:0 "$@" 2>"$dir/$tag.log" &
	local pid=$! load=""
	for _ in $(seq 1 400); do grep -q "atpd: serving" "$dir/$tag.log" && break; sleep 0.05; done
	local tcp grpc
	tcp=$(sed -n 's/.*event stream listening on .*(port \([0-9]*\)).*/\1/p' "$dir/$tag.log")
	grpc=$(sed -n 's/.*grpc listening on .*(port \([0-9]*\)).*/\1/p' "$dir/$tag.log")
	if [ "$rate" -gt 0 ] || [ "$subs" -gt 0 ]; then
		local probes=()
		[ "$rate" -gt 0 ] && probes=(--tcp "127.0.0.1:$tcp" --probes $((rate * 13)) --probe-every-us $((1000000 / rate)))
		$subload --channel web --grpc "127.0.0.1:$grpc" --subscribers "$subs" "${probes[@]}" --seconds 13 \
			>>"$dir/$tag.load" 2>&1 &
		load=$!
	fi
	sleep 2
	ticks "$pid" >"$dir/a"
	sleep 10
	ticks "$pid" >"$dir/b"
	paste "$dir/a" "$dir/b" | awk '{ d = $4 - $2; t += d; if ($1 == "iou-wrk") i += d; else if (++n == 1) l += d; else w += d }
		END { printf "%.2f %.2f %.2f %.2f\n", t / 10, l / 10, w / 10, i / 10 }' >>"$dir/$tag"
	[ -n "$load" ] && wait "$load"
	kill "$pid" && wait "$pid" || true
}

for _ in $(seq 1 "$runs"); do
	run idle 0 0 --set channel_stream=off
	run idle_sub 1 0 --set channel.web.locations=all
	run trickle 0 100 --set channel_stream=off
	run trickle_worker 0 100 --set channel_stream=off --set router_commit_gap_ms=0
	run trickle_sub 1 100 --set channel.web.locations=all
done

col() { awk -v c="$1" '{ print $c }' "$dir/$2" | median; }
row() { # row TAG LABEL
	printf '| %s | %s | %s | %s | %s | %s |\n' "$2" "$(col 1 "$1")" "$(col 2 "$1")" "$(col 3 "$1")" "$(col 4 "$1")" \
		"$(awk '{ printf "%s ", $1 }' "$dir/$1")"
}
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "## A quiet atpd ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD))"
echo
echo "Machine: $(nproc) vCPU $cpu, kernel $(uname -r). Default settings (router on CPU 0, one worker on CPU 1),"
echo "fsync on; 10 s measured per run from /proc, $runs runs, medians; % of one core."
echo
echo "| scenario | atpd | loop + router | shard worker | io_uring worker | runs (atpd) |"
echo "|---|---|---|---|---|---|"
row idle "idle, no channel (target < 1%)"
row idle_sub "idle, a channel and one subscriber (heartbeats)"
row trickle "100 events/s, each acknowledged once durable (target < 2%)"
row trickle_worker "the same, committed by the shard worker (router_commit_gap_ms=0)"
row trickle_sub "100 events/s and one subscriber receiving their deltas"
grep -h "^probes" "$dir/trickle.load" | tail -1 | sed 's/^/\n100 events\/s, last run: /'
