#!/usr/bin/env bash
# tune.sh — prepares a bare-metal box for atpd and says which settings fit it.
#
# Usage: deploy/tune.sh [--apply] [--cpus N] [--nic IFACE] [--hugepages N]
#
# Without --apply (the default) it only prints the plan: what it would write
# where, and the kernel command line to set by hand. With --apply (as root)
# it writes the runtime part: IRQ affinity, CPU governor, huge pages, NIC
# queues. The core plan, for N CPUs (--cpus overrides what the box has):
#   - housekeeping cores (the kernel, IRQs, sshd, the io_uring workers'
#     neighbours): CPU 0, and CPU 1 too from 8 CPUs on;
#   - the router (atpd's event loop: TCP stream, gRPC, metrics): the next one;
#   - the workers (one per core, shards spread over them): the rest, 64 at most.
# With 2 CPUs nothing can be isolated: router 0, worker 1 (atpd's defaults).
set -euo pipefail

apply=false cpus=$(nproc --all) nic="" hugepages=0
while [ $# -gt 0 ]; do
	case $1 in
	--apply) apply=true ;;
	--dry-run) apply=false ;;
	--cpus) cpus=$2; shift ;;
	--nic) nic=$2; shift ;;
	--hugepages) hugepages=$2; shift ;;
	*) echo "usage: $0 [--apply] [--cpus N] [--nic IFACE] [--hugepages N]" >&2; exit 2 ;;
	esac
	shift
done
[ "$cpus" -ge 2 ] 2>/dev/null || { echo "tune: --cpus wants a number of at least 2" >&2; exit 2; }
if $apply && [ "$(id -u)" -ne 0 ]; then
	echo "tune: --apply needs root" >&2
	exit 1
fi

# put FILE VALUE: write (with --apply) or say what would be written.
put() {
	if $apply; then
		if echo "$2" >"$1" 2>/dev/null; then echo "wrote $2 > $1"; else echo "could not write $1 (left as it is)"; fi
	else
		echo "would write $2 > $1"
	fi
}
run() { # run COMMAND...: run it (with --apply) or say it would
	if $apply; then echo "running: $*"; "$@" || echo "failed: $*"; else echo "would run: $*"; fi
}

if [ "$cpus" -le 2 ]; then
	house="0" router=0 first=1 workers=1
elif [ "$cpus" -lt 8 ]; then
	house="0" router=1 first=2 workers=$((cpus - 2))
else
	house="0-1" router=2 first=3 workers=$((cpus - 3))
fi
[ "$workers" -gt 64 ] && workers=64
last=$((first + workers - 1))
isolated="$router-$last"
[ "$cpus" -le 2 ] && isolated=""

echo "== atpd on $cpus CPUs"
span=$first-$last
[ "$first" = "$last" ] && span=$first
echo "housekeeping CPUs: $house; router: CPU $router; workers: CPU $span"
echo
echo "== settings for /etc/atpd/atpd.conf"
echo "router_cpu = $router"
echo "first_cpu = $first"
echo "workers = $workers"
echo "shards = $((workers * 2))            # for a new data directory: two per worker balances hot SKUs"
echo

echo "== kernel command line (set by hand in /etc/default/grub, then update-grub and reboot)"
if [ -n "$isolated" ]; then
	echo "isolcpus=managed_irq,domain,$isolated nohz_full=$isolated rcu_nocbs=$isolated irqaffinity=$house"
else
	echo "(none: with 2 CPUs there is no core to isolate)"
fi
[ "$hugepages" -gt 0 ] && echo "hugepagesz=2M hugepages=$hugepages   # reserved at boot, before memory fragments"
echo

echo "== interrupts: away from atpd's cores"
if [ -n "$isolated" ]; then
	put /proc/irq/default_smp_affinity_list "$house"
	for irq in /proc/irq/[0-9]*; do
		[ -e "$irq/smp_affinity_list" ] && put "$irq/smp_affinity_list" "$house"
	done | awk 'NR <= 4 || /could not/ { print } END { if (NR > 4) print "... and " NR - 4 " more IRQs likewise" }'
else
	echo "(nothing to move with 2 CPUs)"
fi
echo

echo "== CPU frequency governor: performance (no ramp-up latency on a burst)"
govs=$(ls /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor 2>/dev/null || true)
if [ -n "$govs" ]; then
	for g in $govs; do put "$g" performance; done | awk 'NR <= 2 { print } END { if (NR > 2) print "... and " NR - 2 " more CPUs likewise" }'
else
	echo "(no cpufreq here: a VM, or the firmware decides)"
fi
echo

echo "== huge pages"
if [ "$hugepages" -gt 0 ]; then
	put /proc/sys/vm/nr_hugepages "$hugepages"
else
	echo "(none asked: --hugepages N reserves N 2 MiB pages, for the DPDK ingest's mbufs)"
fi
echo

echo "== NIC"
if [ -n "$nic" ]; then
	queues=$(( ${#house} > 1 ? 2 : 1 ))
	run ethtool -L "$nic" combined "$queues"
	echo "(its interrupts follow the housekeeping CPUs above; RSS spreads senders over $queues queue(s))"
else
	echo "(no --nic given: --nic IFACE sets its queues to the housekeeping cores' count)"
fi
$apply || printf "\ndry run: nothing was changed (--apply changes the runtime part, as root)\n"
