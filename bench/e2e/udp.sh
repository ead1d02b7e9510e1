#!/usr/bin/env bash
# The event stream over UDP on loopback, beside TCP, in one run: a
# simulated day (ORDER_LINES, one source) sent by atpctl send (on CPU 0
# with the router; the shard worker on CPU 1) over the kernel UDP path
# (frames of 8 events, one datagram each, a window of WINDOW datagrams)
# and over TCP (frames of 256 events), alternating, RUNS times (default
# 3), medians: events/s acknowledged and datagrams (frames) per second.
# As root with a DPDK build, also the DPDK path: atpd polling one end of a
# veth pair through net_af_packet, the sender in a network namespace on
# the other (af_packet copies every frame through the kernel twice: a
# floor, not what a NIC gives). Prints a markdown report.
# Usage: bench/e2e/udp.sh [ORDER_LINES]
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/setup
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build src/atpd tools/atpctl >/dev/null
atpd=build/src/atpd atpctl=build/tools/atpctl
runs=${RUNS:-3}
lines=${1:-100000}
window=${WINDOW:-256}
dir=var/bench-udp
rm -rf "$dir" && mkdir -p "$dir"
$atpctl simday --out "$dir/day.csv" --order-lines "$lines" --seed 1 --one-source 2>/dev/null
events=$(($(wc -l <"$dir/day.csv") - 1))

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

dpdk=no
if [ "$(id -u)" -eq 0 ] && ! $atpd --check-config /dev/null --set "dpdk_eal=-l 0" 2>&1 | grep -q "without DPDK"; then
	dpdk=yes ns=atp-bench-$$ va=atpbd$$ vb=atpbs$$
	ip netns add "$ns" && ip link add "$va" type veth peer name "$vb" && ip link set "$vb" netns "$ns" &&
		ip link set "$va" up && ip netns exec "$ns" ip link set "$vb" up &&
		ip netns exec "$ns" ip addr add 10.78.0.2/24 dev "$vb" || dpdk=no
	trap 'ip netns del "$ns" 2>/dev/null; ip link del "$va" 2>/dev/null' EXIT
fi

one_run() { # one_run udp|tcp|dpdk
	local mode=$1
	rm -rf "$dir/data"
	if [ "$mode" = dpdk ]; then
		$atpd --data "$dir/data" --set listen=none --set grpc_listen=none --set metrics_listen=none --set clock=frozen \
			--set workers=1 --set shards=1 --set first_cpu=1 --set max_positions=524288 --set max_lines=1048576 \
			--set "dpdk_eal=-l 0 --no-huge --no-pci -m 512 --no-shconf --vdev=net_af_packet0,iface=$va" \
			--set dpdk_ip=10.78.0.1 2>"$dir/$mode.log" &
		local pid=$!
		for _ in $(seq 1 400); do grep -q "atpd: serving" "$dir/$mode.log" && break; sleep 0.05; done
		ip netns exec "$ns" taskset -c 0 $atpctl send --udp 10.78.0.1:7402 "$dir/day.csv" --window "$window" \
			>"$dir/$mode.send" 2>&1
	else
	$atpd --data "$dir/data" --set listen=127.0.0.1:0 --set udp_listen=127.0.0.1:0 --set grpc_listen=none \
		--set metrics_listen=none --set clock=frozen --set workers=1 --set shards=1 --set router_cpu=0 --set first_cpu=1 \
		--set max_positions=524288 --set max_lines=1048576 2>"$dir/$mode.log" &
	local pid=$!
	for _ in $(seq 1 400); do grep -q "atpd: serving" "$dir/$mode.log" && break; sleep 0.05; done
	local port
	if [ "$mode" = udp ]; then
		port=$(sed -n 's/.*udp event stream on .*(port \([0-9]*\)).*/\1/p' "$dir/$mode.log")
		taskset -c 0 $atpctl send --udp "127.0.0.1:$port" "$dir/day.csv" --window "$window" >"$dir/$mode.send" 2>&1
	else
		port=$(sed -n 's/.*event stream listening on .*(port \([0-9]*\)).*/\1/p' "$dir/$mode.log")
		taskset -c 0 $atpctl send --tcp "127.0.0.1:$port" "$dir/day.csv" >"$dir/$mode.send" 2>&1
	fi
	fi
	local secs frames
	secs=$(sed -n 's/.*acknowledged in \([0-9.]*\) s.*/\1/p' "$dir/$mode.send")
	frames=$(sed -n 's/.* events in \([0-9]*\) frames.*/\1/p' "$dir/$mode.send")
	awk -v e="$events" -v s="$secs" 'BEGIN { printf "%.0f\n", e / s }' >>"$dir/events.$mode"
	awk -v f="$frames" -v s="$secs" 'BEGIN { printf "%.0f\n", f / s }' >>"$dir/frames.$mode"
	kill -TERM "$pid"
	wait "$pid" || true
	[ "$mode" = dpdk ] && sed -n 's/.* \([0-9]*\) cycles per datagram.*/\1/p' "$dir/$mode.log" >>"$dir/cycles.dpdk"
	return 0
}

for _ in $(seq 1 "$runs"); do
	one_run udp
	one_run tcp
	[ "$dpdk" = yes ] && one_run dpdk
done
echo
echo "## The event stream over UDP ($(date -u +%F), commit $(git rev-parse --short HEAD), $(nproc) CPUs, $events events, medians of $runs runs)"
echo
echo "| path | events/s acknowledged | frames (datagrams) per second |"
echo "|---|---|---|"
echo "| kernel UDP, 8 events a datagram, window $window | $(median <"$dir/events.udp") | $(median <"$dir/frames.udp") |"
echo "| TCP, 256 events a frame | $(median <"$dir/events.tcp") | $(median <"$dir/frames.tcp") |"
if [ "$dpdk" = yes ]; then
	echo "| DPDK, net_af_packet on a veth pair, 8 events a datagram, window $window | $(median <"$dir/events.dpdk") | $(median <"$dir/frames.dpdk") |"
	echo
	echo "DPDK: $(median <"$dir/cycles.dpdk") TSC cycles per datagram on the polling core (frame checks, verify, decode,"
	echo "submit, the answer built and af_packet's send; a NIC's send is a descriptor write)."
else
	echo "| DPDK | not measured (needs root and a DPDK build) | |"
fi
