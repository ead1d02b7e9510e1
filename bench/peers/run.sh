#!/usr/bin/env bash
# The same reservation workload against atpd, Redis 7 and PostgreSQL 15,
# all from Debian, all on loopback on this machine, in one run:
#   atpd              gRPC Reserve, answered once the WAL is fsynced;
#   redis-always      one Lua script (idempotency key + check-and-DECRBY),
#                     AOF with appendfsync always;
#   redis-everysec    the same with appendfsync everysec (may lose a second);
#   postgres          one function (idempotency row + UPDATE ... WHERE
#                     available >= qty), synchronous_commit on;
#   redis-ping        redis-server answering PING (redis-benchmark, same
#                     connections and depth): no work, no disk, the least
#                     a call over loopback costs this machine's server.
# The workload (tools/peers/main.c): the simulated day's reservations in
# order, client retries included (the same idempotency keys), Zipf SKUs,
# every position starting with STOCK units; for each of CONFIGS (default
# "16x1 16x16 4x64": connections x calls in flight on each, a closed loop;
# Redis pipelines them, PostgreSQL runs only with one per connection).
# Each backend runs RUNS times (default 3) per configuration on a fresh
# server; medians; the ratios are atpd's throughput over each peer's with
# the same calls in flight; the server's CPU per reservation (atpd and
# redis-server: /proc, all threads, over the run). Prints a markdown
# report. Installs the servers with apt-get when missing.
# Usage: bench/peers/run.sh [ORDER_LINES]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/metrics.sh
tools/setup
need=()
for p in redis-server postgresql-15 libhiredis-dev libpq-dev; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ -f build/build.ninja ] || meson setup build >/dev/null
meson setup --reconfigure build >/dev/null  # finds hiredis and libpq: builds tools/atp-peers
ninja -C build src/atpd tools/atpctl tools/atp-peers >/dev/null
atpd=build/src/atpd atpctl=build/tools/atpctl peers=build/tools/atp-peers
runs=${RUNS:-3} lines=${1:-100000} configs=${CONFIGS:-16x1 16x16 4x64} stock=${STOCK:-100}
work=(--order-lines "$lines" --stock "$stock")
dir=var/bench-peers
rm -rf "$dir" && mkdir -p "$dir"
pgdir=$(mktemp -d /tmp/atp-peers-pg-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	as_pg /usr/lib/postgresql/15/bin/pg_ctl -D "$pgdir/data" stop -m immediate >/dev/null 2>&1 || true
	rm -rf "$pgdir"
}
trap cleanup EXIT
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" -ne 0 ] || chown postgres "$pgdir"
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # the process's CPU time (all threads), 1/100 s
# peers_cpu PID ARGS...: atp-peers' line, with the server's CPU per reservation appended
peers_cpu() {
	local pid=$1 c0 out n
	shift
	c0=$(ticks "$pid")
	out=$($peers "$@")
	n=$(grep -oE ': [0-9]+ reservations' <<<"$out" | grep -oE '[0-9]+')
	echo "$out; server cpu $(awk -v t=$(($(ticks "$pid") - c0)) -v n="$n" 'BEGIN { printf "%.2f", t * 1e4 / n }') us/call"
}
groups() { # groups METRICS_PORT: "group commits, events in them, seconds of write + fdatasync"
	metrics "$1" | awk '$1 == "atpd_group_commit_events_count" { n = $2 } $1 == "atpd_group_commit_events_sum" { e = $2 }
		$1 == "atpd_fsync_seconds_sum" { s = $2 } END { print n, e, s }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
$peers "${work[@]}" --stock-csv "$dir/stock.csv"

run_atpd() { # run_atpd THREADS DEPTH
	rm -rf "$dir/data"
	"$atpd" --data "$dir/data" --set listen=127.0.0.1:0 --set grpc_listen=127.0.0.1:0 --set metrics_listen=127.0.0.1:0 --set clock=frozen 2>"$dir/atpd.log" &
	local pid=$!
	pids+=($pid)
	for _ in $(seq 1 200); do grep -q "atpd: serving" "$dir/atpd.log" && break; sleep 0.05; done
	local tcp grpc metrics
	tcp=$(sed -n 's/.*event stream listening.*(port \([0-9]*\)).*/\1/p' "$dir/atpd.log")
	grpc=$(sed -n 's/.*grpc listening.*(port \([0-9]*\)).*/\1/p' "$dir/atpd.log")
	metrics=$(sed -n 's/.*metrics listening.*(port \([0-9]*\)).*/\1/p' "$dir/atpd.log")
	$atpctl send --tcp "127.0.0.1:$tcp" "$dir/stock.csv" >/dev/null 2>&1
	local g0 g1
	g0=$(groups "$metrics")
	peers_cpu $pid "${work[@]}" --backend atpd --target "127.0.0.1:$grpc" --threads "$1" --depth "$2" | tr -d '\n'
	g1=$(groups "$metrics")
	# the group commits of the run: how many calls shared an fdatasync, and how long it took
	awk -v a="$g0" -v b="$g1" 'BEGIN { split(a, x); split(b, y); n = y[1] - x[1]
		printf "; %.1f calls per group commit, write + fdatasync %.0f us\n", (y[2] - x[2]) / n, (y[3] - x[3]) / n * 1e6 }'
	kill -TERM $pid
	wait $pid || true
}

run_redis() { # run_redis always|everysec THREADS DEPTH
	local p
	p=$(port)
	rm -rf "$dir/redis" && mkdir -p "$dir/redis"
	redis-server --port "$p" --bind 127.0.0.1 --dir "$PWD/$dir/redis" --appendonly yes --appendfsync "$1" \
		--save "" --daemonize no --logfile "$PWD/$dir/redis/log" &
	local pid=$!
	pids+=($pid)
	for _ in $(seq 1 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
	peers_cpu $pid "${work[@]}" --backend redis --target "127.0.0.1:$p" --threads "$2" --depth "$3" --check |
		sed "s/^redis/redis-$1/"
	kill -TERM $pid
	wait $pid || true
}

run_ping() { # run_ping THREADS DEPTH: redis-server answering PING, no work and no disk: a call's floor here
	local p pid c0 n=200000 csv
	p=$(port)
	redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no --daemonize no --logfile /dev/null &
	pid=$!
	pids+=($pid)
	for _ in $(seq 1 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
	c0=$(ticks "$pid")
	csv=$(redis-benchmark -p "$p" -t ping_mbulk -c "$1" -P "$2" -n "$n" --csv | tail -1 | tr -d '"')
	awk -F, -v c="$1x$2" -v n="$n" -v t=$(($(ticks "$pid") - c0)) \
		'{ printf "redis-ping %s: %d pings: %d/s, p50 %s ms, p99 %s ms; server cpu %.2f us/call\n", c, n, $2, $5, $7, t * 1e4 / n }' <<<"$csv"
	kill -TERM $pid
	wait $pid || true
}

run_pg() { # run_pg THREADS
	local p
	p=$(port)
	rm -rf "$pgdir/data"
	as_pg /usr/lib/postgresql/15/bin/initdb -D "$pgdir/data" -A trust -U postgres >/dev/null
	as_pg /usr/lib/postgresql/15/bin/pg_ctl -D "$pgdir/data" -l "$pgdir/log" -w start \
		-o "-p $p -c listen_addresses=127.0.0.1 -c unix_socket_directories=$pgdir -c synchronous_commit=on -c fsync=on" >/dev/null
	$peers "${work[@]}" --backend postgres --target "host=127.0.0.1 port=$p user=postgres dbname=postgres" \
		--threads "$1" --check
	as_pg /usr/lib/postgresql/15/bin/pg_ctl -D "$pgdir/data" stop -m fast >/dev/null
}

for i in $(seq 1 "$runs"); do
	for c in $configs; do
		t=${c%x*} k=${c#*x}
		run_atpd "$t" "$k" | tee -a "$dir/atpd.$c.out"
		run_redis always "$t" "$k" | tee -a "$dir/redis-always.$c.out"
		run_redis everysec "$t" "$k" | tee -a "$dir/redis-everysec.$c.out"
		run_ping "$t" "$k" | tee -a "$dir/redis-ping.$c.out"
		[ "$k" -ne 1 ] || run_pg "$t" | tee -a "$dir/postgres.$c.out"
	done
done

rate() { grep -oE "[0-9]+/s" "$dir/$1.out" | tr -d '/s' | median; }
q() { grep -oE "$2 [0-9.]+ ms" "$dir/$1.out" | awk '{ print $2 }' | median; }
us() { grep -q "server cpu" "$dir/$1.out" || return 0; grep -oE "server cpu [0-9.]+" "$dir/$1.out" | awk '{ print $3 }' | median; }
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
echo
echo "## Reservations: atpd and its peers ($(nproc) CPUs: $cpu; medians of $runs runs)"
echo
first=${configs%% *}
echo "Workload: the simulated day's $(grep -m1 -oE ': [0-9]+ reservations' "$dir/atpd.$first.out" | grep -oE '[0-9]+') reservations"
echo "(seed 1, $lines order lines, retries included), $stock units per position; connections x calls in flight on each."
echo
echo "| in flight | backend | durability | reservations/s | p50 ms | p99 ms | server CPU us/call | atpd / it |"
echo "|---|---|---|---|---|---|---|---|"
for c in $configs; do
	atpd_rate=$(rate "atpd.$c")
	for b in atpd redis-always redis-everysec postgres redis-ping; do
		[ -s "$dir/$b.$c.out" ] || continue
		case $b in
		atpd) d="WAL fsync before the answer" ;;
		redis-always) d="AOF, appendfsync always" ;;
		redis-everysec) d="AOF, appendfsync everysec" ;;
		postgres) d="synchronous_commit on" ;;
		redis-ping) d="none: PING, the floor of a call (redis-benchmark)" ;;
		esac
		r=$(rate "$b.$c")
		cpu_us=$(us "$b.$c")
		ratio=$(awk -v a="$atpd_rate" -v b="$r" 'BEGIN { printf "%.2f", a / b }')
		[ "$b" != redis-ping ] || ratio=-
		echo "| $c | $b | $d | $r | $(q "$b.$c" p50) | $(q "$b.$c" p99) | ${cpu_us:--} | $ratio |"
	done
done
echo
echo -n "atpd's group commits (medians): "
for c in $configs; do
	echo -n "$c $(grep -oE '[0-9.]+ calls per group' "$dir/atpd.$c.out" | awk '{ print $1 }' | median) calls per write + fdatasync of"
	echo -n " $(grep -oE 'fdatasync [0-9]+ us' "$dir/atpd.$c.out" | awk '{ print $2 }' | median) us; "
done
echo
if grep -qE "OVERSOLD| [1-9][0-9]* failed" "$dir"/*.out; then
	echo "a backend oversold or failed calls: see $dir/*.out" >&2
	exit 1
fi
