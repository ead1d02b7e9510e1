#!/usr/bin/env bash
# The channel stream end to end on loopback: a 250k-line day (one source,
# atpctl send, batches of 256, on CPU 0 with the router) into atpd with one
# channel that sees everything ("all", share 1), while atp-subload holds
# 0, 1, 10 or 100 gRPC subscribers of it. Per count, RUNS times (default
# 3), medians: the ingest rate (events/s acknowledged) and the deltas
# delivered per second (all subscribers' updates over the time from the
# first to the last). Beside it the same day with no channel at all.
# Then the latency: one subscriber while probe events (a RECEIPT each,
# 1,000 a second: the sizing's peak rate) go in over TCP, send -> delta
# delivered and send -> Ack, p50/p99. Then NATS JetStream: atp-bridge
# publishing the channel during the day (deltas published and acknowledged
# per second) beside bench_nats_pub, a bare libnats async publisher of
# messages of the same size. Everything on this machine's two cores: the
# subscribers' and the broker's CPU is taken from atpd's.
# Prints a markdown report. Usage: bench/e2e/channels.sh [ORDER_LINES]
# (SETTINGS="name=value ...": more atpd settings, e.g. channel_busy_mb_s=0)
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/setup
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build src/atpd tools/atpctl tools/atp-subload tools/atp-bridge tools/bench_nats_pub >/dev/null
atpd=build/src/atpd atpctl=build/tools/atpctl subload=build/tools/atp-subload
runs=${RUNS:-3}
lines=${1:-250000}
dir=var/bench-channels
rm -rf "$dir" && mkdir -p "$dir"
$atpctl simday --out "$dir/day.csv" --order-lines "$lines" --seed 1 --one-source 2>/dev/null
events=$(($(wc -l <"$dir/day.csv") - 1))

extra=()
for s in ${SETTINGS:-}; do extra+=(--set "$s"); done

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

start_atpd() { # start_atpd TAG [SETTINGS...]: on a fresh data directory; sets $tcp and $grpc
	local tag=$1; shift
	rm -rf "$dir/data"
	$atpd --data "$dir/data" --set listen=127.0.0.1:0 --set grpc_listen=127.0.0.1:0 --set metrics_listen=127.0.0.1:0 --set clock=frozen \
		--set max_positions=524288 --set max_lines=4194304 "${extra[@]}" "$@" 2>"$dir/$tag.log" &
	for _ in $(seq 1 400); do grep -q "atpd: serving" "$dir/$tag.log" && break; sleep 0.05; done
	tcp=$(sed -n 's/.*event stream listening on .*(port \([0-9]*\)).*/\1/p' "$dir/$tag.log")
	grpc=$(sed -n 's/.*grpc listening on .*(port \([0-9]*\)).*/\1/p' "$dir/$tag.log")
}

stop_atpd() {
	pkill -TERM -f "atpd --data $dir/data" || true
	while pgrep -f "atpd --data $dir/data" >/dev/null; do sleep 0.1; done
}

one_run() { # one_run SUBSCRIBERS (none: no channel at all)
	local n=$1 tag="s$1"
	if [ "$n" = none ]; then start_atpd "$tag"; else start_atpd "$tag" --set channel.all.share=1; fi
	local sp=""
	if [ "$n" != none ] && [ "$n" -gt 0 ]; then
		$subload --channel all --grpc "127.0.0.1:$grpc" --subscribers "$n" >"$dir/$tag.sub" &
		sp=$!
		for _ in $(seq 1 600); do grep -q ready "$dir/$tag.sub" 2>/dev/null && break; sleep 0.1; done
	fi
	taskset -c 0 $atpctl send --tcp "127.0.0.1:$tcp" "$dir/day.csv" >"$dir/$tag.send" 2>&1
	grep -oE "[0-9.]+ M events/s" "$dir/$tag.send" | cut -d' ' -f1 >>"$dir/rate.$n"
	if [ -n "$sp" ]; then
		wait "$sp"
		sed -n 's/.*: \([0-9]*\) deltas\/s delivered/\1/p' "$dir/$tag.sub" >>"$dir/delivered.$n"
		sed -n 's/.*(per subscriber \([0-9]*\)).*/\1/p' "$dir/$tag.sub" >>"$dir/per_sub.$n"
	fi
	stop_atpd
}

for i in $(seq 1 "$runs"); do
	for n in none 0 1 10 100; do one_run "$n"; done
done

# Latency at the peak rate: probes at 1,000 events/s, one subscriber.
start_atpd lat --set channel.all.share=1
$subload --channel all --grpc "127.0.0.1:$grpc" --subscribers 1 --tcp "127.0.0.1:$tcp" --probes 5000 \
	--probe-every-us 1000 >"$dir/lat.out"
stop_atpd

# NATS JetStream: the bridge during the day, beside a bare publisher.
nats_port=$((20000 + RANDOM % 20000))
rm -rf "$dir/js"
nats-server -js -a 127.0.0.1 -p "$nats_port" -sd "$dir/js" >"$dir/nats.log" 2>&1 &
natspid=$!
sleep 0.5
start_atpd bridge --set channel.all.share=1
build/tools/atp-bridge --channel all --grpc "127.0.0.1:$grpc" --nats "nats://127.0.0.1:$nats_port" \
	--status "$dir/bridge.json" 2>"$dir/bridge.log" &
bridgepid=$!
sleep 1
t0=$(date +%s.%N)
taskset -c 0 $atpctl send --tcp "127.0.0.1:$tcp" "$dir/day.csv" >"$dir/bridge.send" 2>&1
last=0 t_last=$t0
for _ in $(seq 1 1200); do
	acked=$(sed -n 's/.*"acked": \([0-9]*\).*/\1/p' "$dir/bridge.json" 2>/dev/null || echo 0)
	if [ "${acked:-0}" -gt "$last" ]; then last=$acked t_last=$(date +%s.%N); fi
	[ "$(echo "$(date +%s.%N) - $t_last > 3" | bc)" = 1 ] && break
	sleep 0.1
done
bridge_rate=$(echo "$last / ($t_last - $t0)" | bc)
kill "$bridgepid"; wait "$bridgepid" || true
stop_atpd
size=$(awk 'BEGIN { print 184 }')
build/tools/bench_nats_pub "nats://127.0.0.1:$nats_port" "atp.all.bench" "$last" "$size" >"$dir/bare.out" 2>&1 || true
bare_rate=$(sed -n 's/.*: \([0-9]*\) messages\/s.*/\1/p' "$dir/bare.out")
kill "$natspid"; wait "$natspid" 2>/dev/null || true

none=$(median <"$dir/rate.none") zero=$(median <"$dir/rate.0")
echo
echo "## The channel stream ($(date -u +%F), commit $(git rev-parse --short HEAD), $(nproc) CPUs, $events events, medians of $runs runs${SETTINGS:+, $SETTINGS})"
echo
echo "| subscribers of \"all\" | ingest (M events/s) | vs no subscriber | deltas delivered/s (all subscribers) | updates per subscriber |"
echo "|---|---|---|---|---|"
echo "| no channel at all | $none | | | |"
for n in 0 1 10 100; do
	r=$(median <"$dir/rate.$n")
	d=$([ -f "$dir/delivered.$n" ] && median <"$dir/delivered.$n" || echo "")
	p=$([ -f "$dir/per_sub.$n" ] && median <"$dir/per_sub.$n" || echo "")
	echo "| $n | $r | $(awk -v a="$r" -v b="$zero" 'BEGIN { printf "%.0f%%", (a / b - 1) * 100 }') | $d | $p |"
done
echo
echo "Latency, one subscriber, probes at 1,000 events/s: $(grep probes "$dir/lat.out")"
echo
echo "NATS JetStream: atp-bridge $last deltas published and acknowledged at $bridge_rate/s during the day;"
echo "bare libnats async publisher, $size-byte messages: ${bare_rate:-?}/s (bridge / bare = $(awk -v a="$bridge_rate" -v b="${bare_rate:-0}" 'BEGIN { if (b) printf "%.2f", a / b; else print "?" }'))"
