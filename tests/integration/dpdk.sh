#!/usr/bin/env bash
# The DPDK ingest path (atp/dpdk_port.h) without a NIC: a veth pair, one
# end in a network namespace made here (the sender's, 10.77.N.2/24), the
# other polled by atpd through DPDK's net_af_packet (EAL --no-huge
# --no-pci), atpd answering ARP and UDP for 10.77.N.1. A simulated day
# sent with `atpctl send --udp` from the namespace, 5% of the datagrams
# lost and 5% reordered: the table equals `atpctl import` of the file. Then
# bad frames from the namespace (garbage, an '@' source, a fragmented
# datagram, a ping): counted by reason, nothing else disturbed. Exits 77
# (skipped, with the reason) where it cannot run: not root, atpd built
# without DPDK, or EAL unable to start here.
# Usage: dpdk.sh ATPD ATPCTL [ORDER_LINES]
set -uo pipefail
atpd=$1 atpctl=$2 lines=${3:-500}
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (a network namespace, a veth pair, an AF_PACKET socket)"
"$atpd" --check-config /dev/null --set "dpdk_eal=-l 0" 2>&1 | grep -q "built without DPDK" && skip "atpd was built without DPDK"
command -v ip >/dev/null || skip "no ip(8)"
. "$(dirname "$0")/lib.sh"
n=$((RANDOM % 200 + 20))
ns=atp-dpdk-$$ a=atpd$$ b=atps$$
tmp=$(mktemp -d)
cleanup() {
	pkill -9 -f "atpd --data $tmp/data" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	ip link del "$a" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns" || skip "cannot make a network namespace"
ip link add "$a" type veth peer name "$b" || skip "cannot make a veth pair"
ip link set "$b" netns "$ns"
ip link set "$a" up
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" ip link set "$b" up
ip netns exec "$ns" ip addr add "10.77.$n.2/24" dev "$b"
ip netns exec "$ns" ip link set "$b" mtu 1500

"$atpctl" simday --out "$tmp/day.csv" --order-lines "$lines" --seed 5 2>/dev/null
"$atpctl" import "$tmp/day.csv" --frozen-clock --positions "$tmp/reference.csv" >/dev/null 2>&1
"$atpd" --data "$tmp/data" --set listen=none --set grpc_listen=127.0.0.1:0 --set metrics_listen=127.0.0.1:0 \
	--set "dpdk_eal=-l 0 --no-huge --no-pci -m 256 --no-shconf --vdev=net_af_packet0,iface=$a,qpairs=2" \
	--set "dpdk_ip=10.77.$n.1" --set dpdk_udp_port=7402 --set dpdk_queues=2 --set clock=frozen --set router_cpu=none 2>"$tmp/atpd.log" &
for _ in $(seq 1 400); do grep -q "atpd: serving\|cannot start" "$tmp/atpd.log" && break; sleep 0.05; done
if grep -q "DPDK cannot initialise\|DPDK: no port" "$tmp/atpd.log"; then
	skip "$(grep -o 'DPDK.*' "$tmp/atpd.log" | head -1)"
fi
check "atpd serves with DPDK on $a (net_af_packet, 2 receive queues)" grep -q "2 receive queues" "$tmp/atpd.log"
grpc=$(sed -n 's/.*grpc listening on .*(port \([0-9]*\)).*/\1/p' "$tmp/atpd.log")
metrics=$(sed -n 's/.*metrics listening on .*(port \([0-9]*\)).*/\1/p' "$tmp/atpd.log")
metric() { # metric NAME: its value in atpd's exposition
	/usr/bin/python3 -c "import urllib.request, sys
for l in urllib.request.urlopen('http://127.0.0.1:$metrics/metrics', timeout=10).read().decode().splitlines():
    n, _, v = l.rpartition(' ')
    if n == sys.argv[1]: print(int(float(v)))" "$1"
}

check "the day from the namespace over DPDK, 5% lost and 5% reordered: every event acknowledged" \
	timeout 120 ip netns exec "$ns" "$atpctl" send --udp "10.77.$n.1:7402" "$tmp/day.csv" --drop-percent 5 \
	--reorder-percent 5 --timeout 30
"$atpctl" export --grpc "127.0.0.1:$grpc" >"$tmp/got.csv" 2>/dev/null
check "the table equals atpctl import of the same file" cmp -s "$tmp/got.csv" "$tmp/reference.csv"
check "ARP answered for 10.77.$n.1" test "$(metric atpd_dpdk_arp_answered_total)" -ge 1

# Bad frames: garbage, a Hello as '@grpc', a datagram of 3000 bytes (IP fragments), a ping.
ip netns exec "$ns" /usr/bin/python3 - "10.77.$n.1" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"\x10\x00\x00\x00garbage-garbage!", (sys.argv[1], 7402))
import flatbuffers
b = flatbuffers.Builder(64)
st = b.CreateString("@grpc")
b.StartObject(1); b.PrependUOffsetTRelativeSlot(0, st, 0); b.Finish(b.EndObject())
m = bytes(b.Output())
s.sendto(struct.pack("<I", len(m)) + m, (sys.argv[1], 7402))
s.sendto(b"x" * 3000, (sys.argv[1], 7402))
PY
ip netns exec "$ns" ping -c 2 -W 1 "10.77.$n.1" >/dev/null 2>&1
sleep 0.5
check "garbage counted as a bad frame" test "$(metric 'atpd_udp_dropped_total{reason="frame"}')" -ge 1
check "an '@' source counted as refused" test "$(metric 'atpd_udp_dropped_total{reason="source"}')" -ge 1
check "a fragmented datagram (over the MTU) counted as malformed" test "$(metric 'atpd_dpdk_dropped_total{reason="malformed"}')" -ge 1
check "a ping counted as not ours" test "$(metric 'atpd_dpdk_dropped_total{reason="not_ours"}')" -ge 1
"$atpctl" export --grpc "127.0.0.1:$grpc" >"$tmp/got2.csv" 2>/dev/null
check "... and nothing of them applied" cmp -s "$tmp/got2.csv" "$tmp/reference.csv"
pkill -TERM -f "atpd --data $tmp/data"
for _ in $(seq 1 100); do pgrep -f "atpd --data $tmp/data" >/dev/null || break; sleep 0.1; done
check "atpd stops cleanly" grep -q "stopped cleanly" "$tmp/atpd.log"
grep -o "dpdk: .* cycles per datagram.*" "$tmp/atpd.log"
finish
