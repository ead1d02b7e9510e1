#!/usr/bin/env bash
# Named load scenarios with atp-loadgen against a fresh atpd each (router
# and loops on CPU 0, one shard worker on CPU 1, fsync on; the load
# generator unpinned), and one markdown report with the machine:
#   capacity   the 250,000-order-line day as fast as it goes: events + calls per second
#   day-1000x  the whole day 1000 times faster than real time (86.4 s)
#   peak-60s   a day whose promotion burst runs at 50x the day's average
#              order rate for one minute, that minute played in real time
#   peak-x50   the same minute 50 times faster: 50x the day's peak rate
#   soak       days of 1,000,000 order lines without a burst, back to back
#              (--day k: the same SKUs, time running on, new sources and
#              references), each paced so that its busiest hour runs at 80%
#              of the measured capacity (the day's average at about 40%), for
#              SOAK_S seconds (default 600); the daemon's RSS after each day
# Usage: bench/e2e/scenarios.sh [SCENARIO...]   (default: all; the report goes to stdout and var/bench-scenarios/report.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/setup
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build src/atpd tools/atp-loadgen >/dev/null
atpd=build/src/atpd loadgen=build/tools/atp-loadgen
dir=var/bench-scenarios
mkdir -p "$dir"
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(capacity day-1000x peak-60s peak-x50 soak)
soak_s=${SOAK_S:-600}
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null || true' EXIT

start() {
	rm -rf "$dir/data"
	"$atpd" --data "$dir/data" --set listen=127.0.0.1:0 --set grpc_listen=127.0.0.1:0 --set metrics_listen=127.0.0.1:0 --set clock=events \
		--set max_lines=16777216 2>"$dir/atpd.log" &
	pid=$!
	for _ in $(seq 1 400); do grep -q "atpd: serving" "$dir/atpd.log" && break; sleep 0.05; done
	tcp=$(sed -n 's/.*event stream listening.*(port \([0-9]*\)).*/\1/p' "$dir/atpd.log")
	grpc=$(sed -n 's/.*grpc listening.*(port \([0-9]*\)).*/\1/p' "$dir/atpd.log")
}
stop() {
	kill -TERM "$pid"
	wait "$pid" || true
	pid=
}
rss_mb() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status"; }
load() { # load NAME [atp-loadgen options]: its summary into $dir/NAME.out
	local name=$1; shift
	"$loadgen" "$@" --tcp "127.0.0.1:$tcp" --grpc "127.0.0.1:$grpc" >"$dir/$name.out" 2>"$dir/$name.err" ||
		{ cat "$dir/$name.out" "$dir/$name.err" >&2; echo "scenario $name failed" >&2; exit 1; }
}
# The table rows of a loadgen summary, prefixed with the scenario's name.
rows() { grep "^| [a-z]*, " "$dir/$1.out" | sed "s/^| /| $1 | /"; }

report=$dir/report.md
{
	echo "## Load scenarios ($(date -u +%Y-%m-%d))"
	echo
	echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo),"
	echo "kernel $(uname -r), data on $(df -T "$dir" | awk 'NR == 2 { print $2 }'); atpd: router CPU 0, 1 shard worker CPU 1, fsync on."
	echo
	echo "| scenario | stream | count | per s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |"
	echo "|---|---|---|---|---|---|---|---|---|"
} >"$report"
notes=()

for s in "${scenarios[@]}"; do
	case $s in
	capacity)
		start
		load capacity --asap
		stop
		# The two streams share the router's core: the mix's capacity is its count over the sum of the
		# times each stream needed (count / rate), not over the longer of the two.
		read -r n busy < <(grep "^| [a-z]*, " "$dir/capacity.out" | awk -F'|' '
			{ n += $3; if ($2 ~ /events/) t += $3 / $4; else if ($2 ~ /reservations/) { c = $3 / $4 } }
			END { printf "%d %.3f\n", n, t + c }')
		capacity=$(awk -v n="$n" -v s="$busy" 'BEGIN { printf "%.0f", n / s }')
		echo "$capacity" >"$dir/capacity.value"
		notes+=("capacity: the day's $n events and calls as fast as possible, each stream's count over its rate summed: $busy s, $capacity per second (reservations race the receipts they need, so some are NOT_FOUND: a measure of throughput, not of outcomes)")
		;;
	day-1000x)
		start
		load day-1000x --speed 1000
		stop
		;;
	peak-60s | peak-x50)
		start
		load "$s" --peak-factor 50 --peak-minutes 1 --from-min 720 --minutes 1 --speed "$([ "$s" = peak-60s ] && echo 1 || echo 50)"
		stop
		;;
	soak)
		[ -f "$dir/capacity.value" ] || { echo "soak needs the capacity scenario first" >&2; exit 1; }
		capacity=$(cat "$dir/capacity.value")
		# A day of 1M order lines has ~2.35M events and calls over 86,400 s, and its busiest hour (20:00)
		# runs at about twice the day's average: the speed puts that hour at 80% of the capacity.
		speed=$(awk -v c="$capacity" 'BEGIN { printf "%.0f", 0.8 * c / (2.0 * 2350000 / 86400) }')
		start
		t_end=$(($(date +%s) + soak_s))
		k=0 rss=()
		while [ "$(date +%s)" -lt "$t_end" ]; do
			k=$((k + 1))
			load "soak-$k" --order-lines 1000000 --peak-minutes 0 --seed "$k" --day "$k" --speed "$speed"
			rss+=("$(rss_mb)")
		done
		stop
		for i in $(seq 1 "$k"); do rows "soak-$i"; done >"$dir/soak.rows"
		worst() { grep "$1" "$dir/soak.rows" | awk -F'|' '{ print $9 }' | sort -g | tail -1; }
		notes+=("soak: $k days of 1M order lines (no burst) at ${speed}x (the busiest hour at 80% of the capacity), ${soak_s} s; worst per-day p99: events $(worst events,) ms, reservations $(worst reservations,) ms; atpd RSS after each day (MB): ${rss[*]}")
		;;
	*)
		echo "unknown scenario $s" >&2
		exit 1
		;;
	esac
	if [ "$s" = soak ]; then cat "$dir/soak.rows"; else rows "$s"; fi >>"$report"
done
{
	echo
	for n in "${notes[@]}"; do echo "- $n"; done
} >>"$report"
cat "$report"
