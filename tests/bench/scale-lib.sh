# Shared by the scale benchmarks (plan-, bootstrap-, idle-, rotate-scale.sh);
# sourced, POSIX sh. Set ROOT and TS before sourcing.
PY=/usr/bin/python3
DIR=
WORK=

# Root, the tools and /dev/net/tun (the charons' userspace ESP): else
# exit 77 with the reason.
scale_require() {
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
	for tool in ip swanctl curl /usr/lib/ipsec/charon $PY; do
		command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool is not installed"; exit 77; }
	done
	[ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun (charon's userspace ESP)"; exit 77; }
	export TS
	trap scale_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
}

scale_cleanup() {
	rc=$?
	set +e
	[ -z "${SCALE_HOOK:-}" ] || $SCALE_HOOK
	scale_close
	# SCALE_KEEP=1: the scratch directory (the agent's logs) kept.
	[ -z "${SCALE_STATE:-}" ] || [ -z "$WORK" ] || [ "${SCALE_KEEP:-0}" = 1 ] ||
		rm -rf "$WORK"
	exit "$rc"
}

# scale_open N TAG: the state of N tunnels (scale-state.sh up), or the one
# SCALE_STATE names (kept; its own N); sources its env (TS kept). WORK: a scratch
# directory removed at the end.
scale_open() {
	if [ -n "${SCALE_STATE:-}" ]; then
		# The env names the binary that built the state: the one under
		# test is the caller's.
		ts_under_test=$TS
		. "$SCALE_STATE/env"
		TS=$ts_under_test
		WORK=$(mktemp -d "/tmp/tsb-$2.$$.XXXXXX")
	else
		DIR=$(mktemp -d "/tmp/tsb-$2.$$.XXXXXX")
		sh "$ROOT/tests/bench/scale-state.sh" up "$1" "$DIR/s"
		. "$DIR/s/env"
		WORK=$DIR
	fi
}

# Tears down what scale_open built (nothing for SCALE_STATE).
scale_close() {
	[ -z "$DIR" ] || { sh "$ROOT/tests/bench/scale-state.sh" down "$DIR/s"; rm -rf "$DIR"; }
	DIR=
}

# scale_requests NS URL: the emulator's request log, API requests only,
# one "METHOD PATH" a line.
scale_requests() {
	ip netns exec "$1" curl -sS "$2/__admin/requests" | $PY -c '
import json, sys
for r in json.load(sys.stdin)["requests"]:
    if not r["path"].startswith("/__admin"):
        print(r["method"], r["path"])'
}

scale_clear_requests() {
	ip netns exec "$1" curl -sS -X DELETE "$2/__admin/requests" >/dev/null
}

# scale_sync NS CONFIG LOG MAX: `tunnelsync once` until in sync (exit 0),
# at most MAX passes; sets PASSES. Fails (log tail shown) on another exit
# status or when MAX passes did not do.
scale_sync() {
	PASSES=0
	while :; do
		PASSES=$((PASSES + 1))
		rc=0
		t=$(date +%s)
		echo "pass $PASSES: start $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$3"
		ip netns exec "$1" "$TS" once -c "$2" --log-level warn >>"$3" 2>&1 || rc=$?
		echo "pass $PASSES: exit $rc after $(($(date +%s) - t)) s" >>"$3"
		[ "$rc" -eq 0 ] && return 0
		if [ "$rc" -ne 2 ] || [ $PASSES -ge "$4" ]; then
			tail -n 20 "$3" >&2
			echo "once exited $rc after $PASSES passes" >&2
			exit 1
		fi
	done
}
