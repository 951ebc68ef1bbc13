#!/bin/sh
# tunnelsync quickstart, on a fresh Debian 12 as root:
#   1. installs the Debian packages (contrib/install-deps.sh),
#   2. configures and builds tunnelsync in build/quickstart,
#   3. validates models/examples/gateway.json and lists its tunnels,
#   4. runs a demo gateway: two network namespaces, a gateway charon and a
#      charon playing Cloudflare's edge, the Cloudflare API emulator, two
#      tunnels forming a redundant pair. tunnelsync brings them up from no
#      key at all; a UDP flow (100 packets a second, each echoed back) then
#      crosses the tunnels from a LAN address of the gateway (192.0.2.1) to
#      one behind the edge (192.0.2.2) while tunnelsync rotates the key of
#      the tunnel carrying it, and the packets sent, lost and the outage are
#      printed; a key is then regenerated behind tunnelsync's back on the
#      "Cloudflare" side, tunnelsync finds it and heals the tunnel, the flow
#      again measuring what that cost. The charons do ESP in user space
#      (kernel-libipsec), so this works on a kernel without ESP.
# Every tunnelsync exit status is printed with its meaning: 0 in sync,
# 2 changes pending / work left for a later pass, 1 error, 64 usage.
# Without --keep, everything it creates (namespaces, charons, emulator,
# files under /tmp) is removed at the end, whatever happens. It exits 0
# only if the demo worked: tunnels in sync, the flow crossed them and was
# healed after each rotation (77: skipped, the reason printed).
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
		sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'
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

# --- traffic -----------------------------------------------------------------
# A LAN address on each side; kernel-libipsec routes everything but the
# peers' subnets into its TUN device (table 220), so 192.0.2.1 -> 192.0.2.2
# can only cross an ESP tunnel.
ip -n "$E2E_NS_GW" addr add 192.0.2.1/32 dev lo
ip -n "$E2E_NS_EDGE" addr add 192.0.2.2/32 dev lo
flow=$root/tests/kernel/udpflow.py
FLOW_ECHO_PID=
FLOW_PID=
ip netns exec "$E2E_NS_EDGE" /usr/bin/python3 "$flow" echo 5555 </dev/null >"$E2E_DIR/echo.log" 2>&1 &
FLOW_ECHO_PID=$!
# The flow's processes go with the rest of the demo, on every exit path.
flow_cleanup() {
	rc=$?
	set +e
	for p in $FLOW_PID $FLOW_ECHO_PID; do kill -TERM "$p" 2>/dev/null || true; done
	# e2e_cleanup exits with the status it finds in $?.
	(exit "$rc")
	e2e_cleanup
}
trap flow_cleanup EXIT

# ESP packets each tunnel's CHILD SAs sent, "NAME PACKETS" lines (the
# gateway charon's counters).
esp_out() {
	e2e_swanctl a --list-sas | awk '
		/ reqid / { name = $1; sub(":", "", name) }
		$1 == "out" { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^packets/) n[name] += $i }
		END { for (t in n) print t, n[t] }'
}

flow_start() {
	FLOW_OUT=$E2E_DIR/flow-$1.json
	ip netns exec "$E2E_NS_GW" /usr/bin/python3 "$flow" send 192.0.2.1 192.0.2.2 5555 "$FLOW_OUT" \
		</dev/null >"$FLOW_OUT.log" 2>&1 &
	FLOW_PID=$!
	i=0
	until [ -s "$FLOW_OUT.live" ]; do
		i=$((i + 1))
		[ $i -lt 50 ] || e2e_fail "the UDP flow did not start"
		sleep 0.1
	done
}

# Stops the flow; prints what it saw; fails when nothing crossed or the
# path was not healed when it stopped. Sets FLOW_LOST.
flow_stop() {
	kill -TERM "$FLOW_PID"
	wait "$FLOW_PID" || e2e_fail "the UDP flow failed: $(cat "$FLOW_OUT.log")"
	FLOW_PID=
	set -- $(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["sent"], r["received"], r["lost"], r["outage_ms"], r["tail_lost"])' "$FLOW_OUT")
	echo "  UDP flow 192.0.2.1 -> 192.0.2.2 and back: $1 sent, $2 echoed, $3 lost, longest outage $4 ms"
	[ "$2" -gt 0 ] || e2e_fail "no packet crossed the tunnel"
	[ "$5" -eq 0 ] || e2e_fail "$5 of the flow's last second were lost: the path was not healed"
	FLOW_LOST=$3
}

heading "Traffic: a UDP flow through the tunnels"
before=$(esp_out)
flow_start sync
sleep 2
flow_stop
carrier=$(printf '%s\n%s\n' "$before" "$(esp_out)" | awk '
	{ if ($1 in n) d[$1] = $2 - n[$1]; else n[$1] = $2 }
	END { for (t in d) if (d[t] > best) { best = d[t]; c = t } print c }')
carrier=${carrier#ts-}
[ -n "$carrier" ] || e2e_fail "no tunnel's ESP counters moved: the flow did not use ESP"
echo "  it crossed $carrier (ESP packets out, gateway charon: $(esp_out | tr '\n' ' '))"

heading "Rotating $carrier's key while the flow runs (make-before-break)"
flow_start rotate
sleep 1
echo "\$ tunnelsync rotate -c config.json $carrier"
rc=0
e2e_ts rotate rotate "$carrier" || rc=$?
sed 's/^/    /' "${E2E_LAST_OUT%.out}.err"
echo "(exit $rc: $(meaning rotate "$rc"))"
[ "$rc" -eq 0 ] || e2e_fail "tunnelsync rotate $carrier failed"
sleep 2
flow_stop
ROTATE_LOST=$FLOW_LOST
# The old SAs are gone: what the tunnel's counters show now crossed the
# new ones.
n=$(esp_out | awk -v t="ts-$carrier" '$1 == t { print $2 }')
[ "${n:-0}" -gt 0 ] || e2e_fail "no packet crossed $carrier's new SAs"
echo "  $n packets crossed $carrier's new SAs"
echo "  the rotation cost $ROTATE_LOST packets"

show "Status" status || e2e_fail "status failed"
show "Plan: nothing to do" plan || e2e_fail "plan should exit 0 when in sync"

flow_start heal
carrier_id=$E2E_ID_A
[ "$carrier" = e2e-a ] || carrier_id=$E2E_ID_B
heading "Regenerating $carrier's key on the Cloudflare side, behind tunnelsync's back"
echo "\$ curl -X POST .../ipsec_tunnels/$carrier_id/psk_generate"
e2e_api POST "/$carrier_id/psk_generate" '{}' >/dev/null
echo "the edge now has a new key; the gateway still has the old one"

rc=0
show "Plan: the regenerated key is found" plan || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "plan should exit 2 (changes pending), got $rc"
grep -q regenerated "$E2E_LAST_OUT" || e2e_fail "plan does not name the regenerated key"

heading "tunnelsync once heals it"
once_until_synced 6
sleep 2
heading "Traffic while the key was regenerated and healed"
flow_stop
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
e2e_assert_tunnel_ok e2e-b "$E2E_ID_B"
show "Status after healing" status || e2e_fail "status failed"

heading "Traffic summary"
echo "  rotating $carrier (tunnelsync rotate): $ROTATE_LOST packets lost"
echo "  key regenerated behind tunnelsync's back, healed: $FLOW_LOST packets lost"
kill -TERM "$FLOW_ECHO_PID" 2>/dev/null || true
FLOW_ECHO_PID=

if [ "$keep" = 0 ]; then
	heading "Demo done in $(($(date +%s) - start)) s; tearing everything down"
	exit 0
fi

# --keep: hand the running demo over instead of removing it (the flow is
# stopped).
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
