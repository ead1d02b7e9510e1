# lib.sh — what the integration scripts share: TAP-like checks and a bounded wait.
failures=0
passed=0
check() { # check DESCRIPTION COMMAND...
	local what=$1; shift
	if "$@"; then echo "ok - $what"; passed=$((passed + 1)); else echo "not ok - $what"; failures=$((failures + 1)); fi
}
wait_for() { # wait_for FILE PATTERN: up to 10 s
	for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
	return 1
}
finish() { # the summary line and the exit status
	echo "$passed passed, $failures failed"
	exit $((failures > 0))
}
