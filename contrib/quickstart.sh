#!/bin/sh
# tunnelsync quickstart, on a fresh Debian 12 as root:
#   1. installs the Debian packages (contrib/install-deps.sh),
#   2. configures and builds tunnelsync in build/quickstart,
#   3. validates models/examples/gateway.json and lists its tunnels,
#   4. runs a demo gateway: two network namespaces, a gateway charon and a
#      charon playing Cloudflare's edge, the Cloudflare API emulator, two
#      tunnels forming a redundant pair. tunnelsync brings them up from no
#      key at all, a key is then regenerated behind its back on the
#      "Cloudflare" side, tunnelsync finds it and heals the tunnel.
# Every tunnelsync exit status is printed with its meaning: 0 in sync,
# 2 changes pending / work left for a later pass, 1 error, 64 usage.
# Without --keep, everything it creates (namespaces, charons, emulator,
# files under /tmp) is removed at the end, whatever happens. It exits 0
# only if the demo worked (77: skipped, the reason printed).
#
# Usage: contrib/quickstart.sh [--no-deps] [--build-dir DIR] [--demo-only] [--keep]
#   --no-deps     do not install packages
#   --build-dir   build (or, with --demo-only, use) this build directory
#   --demo-only   skip the build; run the demo with DIR's binary
#   --keep        leave the demo running (namespaces, both charons, the
#                 emulator, config, state, logs) and print how to look at
#                 it and the one command that removes it; on failure keep
#                 its files (like E2E_KEEP=1 for the tests)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
deps=1
demo_only=0
keep=0
build=$root/build/quickstart
while [ $# -gt 0 ]; do
	case "$1" in
	--no-deps) deps=0 ;;
	--demo-only) demo_only=1 ;;
	--keep) keep=1 ;;
	--build-dir)
		[ $# -ge 2 ] || { echo "quickstart.sh: --build-dir needs a directory" >&2; exit 64; }
		build=$2
		shift
		;;
	-h | --help)
		sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "quickstart.sh: unknown option $1 (try --help)" >&2
		exit 64
		;;
	esac
	shift
done

heading() {
	printf '\n### %s\n' "$*"
}

# What an exit status of tunnelsync COMMAND means (tunnelsync(8)).
meaning() {
	case $1:$2 in
	validate:0) echo "valid" ;;
	*:0) echo "in sync" ;;
	plan:2) echo "changes pending" ;;
	*:2) echo "work left for a later pass" ;;
	*:64) echo "usage error" ;;
	validate:1) echo "invalid" ;;
	*) echo "error" ;;
	esac
}

if [ "$(id -u)" -ne 0 ]; then
	echo "quickstart.sh: run it as root (the demo creates network namespaces)" >&2
	exit 1
fi
start=$(date +%s)

if [ "$deps" = 1 ]; then
	heading "Installing Debian packages"
	sh "$root/contrib/install-deps.sh"
fi

if [ "$demo_only" = 0 ]; then
	heading "Building tunnelsync in $build"
	mkdir -p "$build"
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.configure.log" 2>&1 ||
		{ cat "$build.configure.log" >&2; exit 1; }
	cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target tunnelsync >"$build.build.log" 2>&1 ||
		{ tail -n 40 "$build.build.log" >&2; exit 1; }
	echo "built $build/agent/tunnelsync"
fi
ts=$build/agent/tunnelsync
[ -x "$ts" ] || { echo "quickstart.sh: no tunnelsync binary in $build/agent" >&2; exit 1; }
"$ts" version

heading "Validating the example configuration (models/examples/gateway.json)"
"$ts" validate --models "$root/models" "$root/models/examples/gateway.json"

# The demo needs the reconciler's commands.
for c in once plan status; do
	rc=0
	"$ts" "$c" --help >/dev/null 2>&1 || rc=$?
	if [ "$rc" -eq 64 ]; then
		echo "quickstart.sh: this tunnelsync has no '$c' command yet; no demo" >&2
		exit 77
	fi
done

heading "Demo: setting up a gateway, Cloudflare's edge and the API emulator"
E2E_ROOT=$root
E2E_TS=$ts
E2E_QUIET=1
[ "$keep" = 0 ] || E2E_KEEP=1
# Both charons load the strongSwan settings tunnelsync wants
# (make-before-break reauthentication), as a gateway should.
E2E_CHARON_INCLUDE=$root/contrib/strongswan/tunnelsync.conf
# lib.sh finds its own folder from $0 unless E2E_ROOT says where.
. "$root/tests/e2e/lib.sh"
e2e_require
e2e_up
cat <<EOF
  gateway namespace $E2E_NS_GW: $E2E_GW_ADDR, strongSwan (charon), API emulator on 127.0.0.1:$E2E_EMU_PORT
  edge namespace    $E2E_NS_EDGE: $E2E_EDGE_A and $E2E_EDGE_B (Cloudflare endpoints), a responding charon
  tunnels: e2e-a -> $E2E_EDGE_A and e2e-b -> $E2E_EDGE_B, redundancy group "uplink"
  config:  $E2E_DIR/config.json   state: $E2E_DIR/state
EOF

show() {
	# $1 heading; rest: the tunnelsync command; prints its output.
	h=$1
	shift
	heading "$h"
	echo "\$ tunnelsync $* -c config.json"
	rc=0
	e2e_ts "$1" "$@" || rc=$?
	cat "$E2E_LAST_OUT"
	echo "(exit $rc: $(meaning "$1" "$rc"))"
	return "$rc"
}

# Runs `tunnelsync once` until it exits 0 (in sync), showing each pass;
# at most MAX passes.
once_until_synced() {
	max=$1
	pass=0
	while :; do
		pass=$((pass + 1))
		rc=0
		e2e_ts once once || rc=$?
		echo "pass $pass: exit $rc ($(meaning once "$rc"))"
		sed 's/^/    /' "${E2E_LAST_OUT%.out}.err"
		[ "$rc" -ne 0 ] || return 0
		[ "$rc" -eq 2 ] || e2e_fail "tunnelsync once failed (exit $rc)"
		[ "$pass" -lt "$max" ] || e2e_fail "not in sync after $pass passes"
		sleep 1
	done
}

heading "tunnelsync once, until everything is in sync (one tunnel of the pair per pass)"
once_until_synced 10
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
e2e_assert_tunnel_ok e2e-b "$E2E_ID_B"

show "Status" status || e2e_fail "status failed"
show "Plan: nothing to do" plan || e2e_fail "plan should exit 0 when in sync"

heading "Regenerating e2e-a's key on the Cloudflare side, behind tunnelsync's back"
echo "\$ curl -X POST .../ipsec_tunnels/$E2E_ID_A/psk_generate"
e2e_api POST "/$E2E_ID_A/psk_generate" '{}' >/dev/null
echo "the edge now has a new key; the gateway still has the old one"

rc=0
show "Plan: the regenerated key is found" plan || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "plan should exit 2 (changes pending), got $rc"
grep -q regenerated "$E2E_LAST_OUT" || e2e_fail "plan does not name the regenerated key"

heading "tunnelsync once heals it"
once_until_synced 6
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
e2e_assert_tunnel_ok e2e-b "$E2E_ID_B"
show "Status after healing" status || e2e_fail "status failed"

if [ "$keep" = 0 ]; then
	heading "Demo done in $(($(date +%s) - start)) s; tearing everything down"
	exit 0
fi

# --keep: hand the running demo over instead of removing it.
trap - EXIT INT TERM
cat >"$E2E_DIR/teardown.sh" <<EOF
#!/bin/sh
# Removes the quickstart demo that --keep left running.
kill -TERM $E2E_EMU_PID 2>/dev/null
sh "$root/tests/lib/charon-netns.sh" down "$E2E_PREFIX" "$E2E_DIR" 2>/dev/null
ip netns del "$E2E_NS_GW" 2>/dev/null
ip netns del "$E2E_NS_EDGE" 2>/dev/null
rm -rf "$E2E_DIR"
echo "quickstart demo removed"
EOF
chmod 700 "$E2E_DIR/teardown.sh"
heading "Demo done in $(($(date +%s) - start)) s; kept running (--keep)"
cat <<EOF
  namespaces: $E2E_NS_GW (gateway), $E2E_NS_EDGE (Cloudflare's edge)
  charons:    sockets and logs in $E2E_DIR/a (gateway) and $E2E_DIR/b (edge)
  emulator:   pid $E2E_EMU_PID, $E2E_EMU_URL (from $E2E_NS_GW), log $E2E_DIR/emu/emulator.log
  config:     $E2E_DIR/config.json   state: $E2E_DIR/state (key records, status.json)
  outputs:    $E2E_DIR/out (stdout and stderr of every tunnelsync call)
Try:
  ip netns exec $E2E_NS_GW $ts plan -c $E2E_DIR/config.json --models $root/models
  ip netns exec $E2E_NS_GW $ts status -c $E2E_DIR/config.json --models $root/models
Remove it all:
  sh $E2E_DIR/teardown.sh
EOF
exit 0
