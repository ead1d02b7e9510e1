#!/usr/bin/env bash
# deploy/ checked without a running systemd (CI has none as PID 1): the unit
# passes `systemd-analyze verify` and its exposure score (`systemd-analyze
# security --offline`) is printed and under 2.5; sysusers and tmpfiles
# create the user and directories in a scratch root; the example config is
# valid and names every setting atpd has; a bad config is refused with its
# line; tune.sh's dry run changes nothing and gives the settings for 2, 4
# and 16 CPUs; the Grafana dashboard parses and only asks for metrics atpd
# exposes. What needs systemd as PID 1 (the unit really started) is not
# run here: the notify protocol itself is tested by notify.py.
# Usage: deploy.sh ATPD
set -euo pipefail
atpd=$(realpath "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
deploy=$root/deploy
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"

# The unit, pointing at the atpd just built (verify wants its binaries to exist).
sed "s|/usr/local/bin/atpd|$atpd|g" "$deploy/atpd.service" >"$tmp/atpd.service"
check "systemd-analyze verify: no error, no warning" \
	sh -c "systemd-analyze verify '$tmp/atpd.service' >'$tmp/verify' 2>&1 && ! [ -s '$tmp/verify' ]" || cat "$tmp/verify"
systemd-analyze security --offline=true "$tmp/atpd.service" >"$tmp/security" 2>&1 || true
score=$(sed -n 's/.*Overall exposure level for atpd.service: \([0-9.]*\).*/\1/p' "$tmp/security")
echo "# systemd-analyze security: exposure $score"
check "exposure score under 2.5 (${score:-none})" awk -v s="${score:-99}" 'BEGIN { exit !(s < 2.5) }'
for key in Type=notify WatchdogSec= NoNewPrivileges=yes ProtectSystem=strict ReadWritePaths=/var/lib/atpd \
	"CapabilityBoundingSet=$" MemoryDenyWriteExecute=yes SystemCallFilter=@system-service Restart=on-failure; do
	check "the unit has $key" grep -q "^$key" "$deploy/atpd.service"
done

# sysusers and tmpfiles into a scratch root.
mkdir -p "$tmp/root/etc"
touch "$tmp/root/etc/passwd" "$tmp/root/etc/group" "$tmp/root/etc/shadow" "$tmp/root/etc/gshadow"
check "sysusers creates the user atpd" sh -c "systemd-sysusers --root='$tmp/root' '$deploy/atpd.sysusers' >/dev/null 2>&1 &&
	grep -q '^atpd:x:.*:/var/lib/atpd:/usr/sbin/nologin' '$tmp/root/etc/passwd'"
check "tmpfiles creates /var/lib/atpd (0750, atpd's) and /etc/atpd" sh -c "systemd-tmpfiles --root='$tmp/root' --create \
	'$deploy/atpd.tmpfiles' && [ \$(stat -c %a '$tmp/root/var/lib/atpd') = 750 ] && [ -d '$tmp/root/etc/atpd' ]"

# The example config: valid, and every setting of atpd is in it.
check "atpd --check-config deploy/atpd.conf" "$atpd" --check-config "$deploy/atpd.conf"
check "deploy/authz.example loads" "$atpd" --check-config "$deploy/atpd.conf" --set "authz_file=$deploy/authz.example"
"$atpd" --help-settings >"$tmp/settings.md"
keys=$(sed -n 's/^| `\([a-z_]*\)` .*/\1/p' "$tmp/settings.md")
check "atpd --help-settings lists $(echo "$keys" | wc -l) settings" test "$(echo "$keys" | wc -l)" -ge 39
missing=$(for k in $keys; do grep -q "^$k = " "$deploy/atpd.conf" || echo "$k"; done)
check "the example config names all $(echo "$keys" | wc -l) settings (missing: ${missing:-none})" test -z "$missing"
# Its values are the defaults, but for the two deploy/ chooses on purpose.
drift=$(sed -n 's/^| `\([a-z_]*\)` | \([^|]*\) |.*/\1 \2/p' "$tmp/settings.md" | while read -r k d; do
	v=$(sed -n "s/^$k = \([^ #]*\).*/\1/p" "$deploy/atpd.conf")
	case $k in shards | log_format) ;; *) [ "$v" = "$d" ] || echo "$k=$v (default $d)" ;; esac
done)
check "the example config's values are the defaults (differing: ${drift:-none})" test -z "$drift"
sed -n '/^<!-- settings: the output of atpd --help-settings -->$/,/^<!-- end of settings -->$/p' "$root/README.md" |
	sed '1d;$d' >"$tmp/readme-settings.md"
check "the README's settings table is atpd --help-settings'" cmp -s "$tmp/settings.md" "$tmp/readme-settings.md"
printf 'shards = 4\nmax_lines = -3\n' >"$tmp/bad.conf"
check "a bad value: exit 2, file and line named" sh -c "! '$atpd' --check-config '$tmp/bad.conf' 2>'$tmp/err'; \
	[ \$? -eq 0 ] && grep -q 'bad.conf:2:' '$tmp/err'"
"$atpd" --check-config "$tmp/bad.conf" 2>/dev/null && rc=0 || rc=$?
check "... with exit status 2 ($rc)" test "$rc" -eq 2
printf 'no_such_key = 1\n' >"$tmp/bad.conf"
check "an unknown key: refused, named" sh -c "! '$atpd' --check-config '$tmp/bad.conf' 2>'$tmp/err' && grep -q no_such_key '$tmp/err'"

# tune.sh: a dry run by default, the settings per CPU count.
plan() { "$deploy/tune.sh" --cpus "$1" >"$tmp/plan" 2>&1 && grep -q "^dry run: nothing was changed" "$tmp/plan" &&
	grep -q "^router_cpu = $2$" "$tmp/plan" && grep -q "^first_cpu = $3$" "$tmp/plan" && grep -q "^workers = $4$" "$tmp/plan"; }
check "tune.sh, 2 CPUs: router 0, workers from 1, 1 worker, a dry run" plan 2 0 1 1
check "tune.sh, 4 CPUs: router 1, workers from 2, 2 workers" plan 4 1 2 2
check "tune.sh, 16 CPUs: router 2, workers from 3, 13 workers, isolcpus" \
	sh -c "$(declare -f plan); tmp='$tmp' deploy='$deploy'; plan 16 2 3 13 && grep -q 'isolcpus=managed_irq,domain,2-15' '$tmp/plan'"
check "tune.sh refuses a bad argument" sh -c "! '$deploy/tune.sh' --cpus x >/dev/null 2>&1"

# The dashboard: JSON, and every metric it asks for is one atpd exposes.
check "the Grafana dashboard parses, and asks only for metrics atpd exposes" python3 - "$deploy/grafana-atpd.json" \
	"$root/src/daemon/metrics.c" <<'PY'
import json, re, sys
dash = json.load(open(sys.argv[1]))
exposed = set(re.findall(r'"(atpd_[a-z_]+)"', open(sys.argv[2]).read()))
asked = {m for p in dash["panels"] for t in p["targets"] for m in re.findall(r"atpd_[a-z_]+", t["expr"])}
missing = {m for m in asked if m not in exposed and re.sub(r"_(bucket|sum|count)$", "", m) not in exposed}
print("# dashboard: %d panels, %d metrics, missing: %s" % (len(dash["panels"]), len(asked), sorted(missing) or "none"))
sys.exit(1 if missing or len(dash["panels"]) < 8 else 0)
PY
finish
