#!/bin/sh
# Guest side of the traffic suite: what a rotation, a flush, a charon
# restart, a key regenerated behind the agent's back and a crash mid-rotation
# cost the traffic, measured with REAL kernel ESP inside the user-mode Linux
# guest (tests/kernel/run-uml). One guest, scenarios in sequence.
#
# The e2e harness (tests/e2e/lib.sh) with E2E_KERNEL=netlink, E2E_ROUTE=mark
# (the guest kernel has no XFRM interfaces: VTIs keyed by the tunnels'
# marks) and both charons including contrib/strongswan/tunnelsync.conf
# (make-before-break). Per tunnel a VTI on each side (gateway 10.213.0.0/31
# and 10.213.0.2/31, created and owned by the agent: tunnel/interface; edge
# .1 and .3) and a UDP sequence flow at 100 pps from
# the gateway's VTI address to an echo on the edge (tests/kernel/udpflow.py):
# a packet counts only when its echo came back, so both directions count.
#
#   baseline   no change: nothing lost (else nothing below could be judged)
#   rotate     `tunnelsync rotate e2e-a`, tunnels without a redundancy
#              group: at most LONE_MAX packets lost on e2e-a, none on e2e-b
#   then `tunnelsync run` (the daemon) for the rest:
#   flush      `ip xfrm state flush` on the gateway: both flows healed
#              (traffic again, nothing lost in the last second), each
#              outage at most HEAL_MAX s
#   iface      vti-a's address flushed, vti-b set down: plan lists both (and
#              changes nothing), the next pass (SIGHUP)
#              puts both back, the flows heal
#              then the idle daemon holds no subscription to charon's log
#   restart    the gateway's charon restarted: healed, outage <= HEAL_MAX
#   regen      e2e-b's key regenerated on the API + SIGHUP: rotated by the
#              daemon, at most LONE_MAX lost
#   sigkill    e2e-a's key regenerated, SIGHUP, the daemon SIGKILLed while
#              the rotation is journaled; charon must not flood its log
#              ("vici connection N unknown"); a new daemon resumes the
#              rotation: at most LONE_MAX lost, keys agree
#   stale      e2e-b's rotation journaled, the daemon SIGKILLed, restarted
#              after more than confirm-timeout (as if an attempt had failed):
#              it resumes break-before-make (the fallback for peers that
#              refuse overlapping SAs), healed, keys agree
#   bbm        the gateway's charon restarted without the snippet: the
#              daemon warns (log, status); a rotation's loss is printed
#              (break-before-make: a figure, not a guarantee), healed
#   pair       both tunnels in a redundancy group with agent-owned routes to
#              192.0.2.100/32 (metric 100 via e2e-a, 200 via e2e-b), charon
#              still break-before-make: rotating e2e-a drains its route
#              (+10000) to e2e-b, restores it after: 0 lost for the pair flow
#   settle     e2e-b's key regenerated right after: plan shows the
#              group-settling deferral with the time left; rotated once
#              the window is over
#   prune      e2e-b's routes taken out of the config, then its interface:
#              its owned route, then its VTI are deleted, e2e-a's stay
# Every scenario prints a line "TRAFFIC scenario tunnel sent lost outage_ms"
# and the table is printed at the end.
#
# Usage (in the guest): tests/kernel/traffic.sh BUILD_DIR
# Registered with ctest as traffic-uml (tests/kernel/CMakeLists.txt).
set -eu

build=${1:?usage: traffic.sh BUILD_DIR}
E2E_TS=$build/agent/tunnelsync
E2E_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
E2E_KERNEL=netlink
E2E_ROUTE=mark
E2E_GROUP=
E2E_CHARON_INCLUDE=$E2E_ROOT/contrib/strongswan/tunnelsync.conf
E2E_CONFIRM_TIMEOUT=${E2E_CONFIRM_TIMEOUT:-60}
# What the design guarantees, with make-before-break, at 100 pps.
LONE_MAX=${TRAFFIC_LONE_MAX:-10}
HEAL_MAX=${TRAFFIC_HEAL_MAX:-20}
FLOW=$E2E_ROOT/tests/kernel/udpflow.py
PORT=7000
. "$E2E_ROOT/tests/e2e/lib.sh"
. "$E2E_ROOT/tests/kernel/flowlib.sh"
e2e_require
e2e_require_commands once run rotate status
e2e_up

DPID=
ECHO_PID=
traffic_cleanup() {
	rc=$?
	set +e
	flow_teardown "$rc" $ECHO_PID $DPID
	if [ "$rc" -ne 0 ] && [ -f "$E2E_DIR/daemon.log" ]; then
		echo "== daemon log (tail):" >&2
		tail -n 60 "$E2E_DIR/daemon.log" >&2
	fi
	(exit "$rc")
	e2e_cleanup
}
trap traffic_cleanup EXIT

# --- VTIs and flows -----------------------------------------------------------

# vti NS NAME LOCAL REMOTE KEY ADDR/31
vti() {
	ip -n "$1" link add "$2" type vti local "$3" remote "$4" key "$5"
	ip netns exec "$1" sysctl -qw "net.ipv4.conf.$2.disable_policy=1"
	ip -n "$1" addr add "$6" dev "$2"
	ip -n "$1" link set "$2" up
}
# The gateway's VTIs are the agent's (tunnel/interface): it creates them.
/usr/bin/python3 - "$E2E_DIR/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
for t, dev, addr in zip(c["tunnelsync:tunnelsync"]["tunnels"]["tunnel"], ("vti-a", "vti-b"),
                        ("10.213.0.0", "10.213.0.2")):
    t["interface"] = {"name": dev, "address": addr}
json.dump(c, open(p, "w"), indent=2)
PY
vti "$E2E_NS_EDGE" vti-a "$E2E_EDGE_A" "$E2E_GW_ADDR" 513 10.213.0.1/31
vti "$E2E_NS_EDGE" vti-b "$E2E_EDGE_B" "$E2E_GW_ADDR" 514 10.213.0.3/31
ip netns exec "$E2E_NS_EDGE" /usr/bin/python3 "$FLOW" echo "$PORT" </dev/null \
	>"$E2E_DIR/echo.log" 2>&1 &
ECHO_PID=$!

flow_src() {
	case $1 in e2e-a) echo 10.213.0.0 ;; e2e-b) echo 10.213.0.2 ;; pair) echo 192.0.2.10 ;; esac
}
flow_dst() {
	case $1 in e2e-a) echo 10.213.0.1 ;; e2e-b) echo 10.213.0.3 ;; pair) echo 192.0.2.100 ;; esac
}

# ESP packet counters of the gateway's SAs moved: traffic really crossed ESP.
esp_packets() {
	ip -n "$E2E_NS_GW" -s xfrm state | awk '
		/^src/ { esp = 0 } $1 == "proto" && $2 == "esp" { esp = 1 }
		esp && $1 ~ /^[0-9]+\(bytes\),$/ { split($2, p, "("); n += p[1] }
		END { print n + 0 }'
}

# --- scenarios ------------------------------------------------------------------

e2e_say "bootstrap: mark tunnels, VTIs, make-before-break charons"
grep -q 'make_before_break = yes' "$E2E_DIR/a/strongswan.conf" "$E2E_CHARON_INCLUDE" ||
	e2e_fail "charon does not include the make-before-break snippet"
e2e_bootstrap
for t in a b; do
	ip -n "$E2E_NS_GW" -d link show dev "vti-$t" | grep -q "alias tunnelsync:e2e-$t" ||
		e2e_fail "the agent did not create its VTI vti-$t: $(ip -n "$E2E_NS_GW" -d link)"
done
ip -n "$E2E_NS_GW" -d link show dev vti-a | grep -q 'vti remote 198.51.100.1 local 203.0.113.10 ikey 0.0.1.1 okey 0.0.1.1' ||
	e2e_fail "vti-a not as declared: $(ip -n "$E2E_NS_GW" -d link show dev vti-a)"
ip -n "$E2E_NS_GW" addr show dev vti-b | grep -q 'inet 10.213.0.2/31' ||
	e2e_fail "vti-b has not its address: $(ip -n "$E2E_NS_GW" addr show dev vti-b)"
mbb_state() {
	e2e_ts status status --json >/dev/null || e2e_fail "status --json failed"
	/usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1])).get("make_before_break") or {}
print(m.get("state"))' "$E2E_LAST_OUT"
}
[ "$(mbb_state)" = on ] || e2e_fail "status does not say make-before-break on: $(cat "$E2E_LAST_OUT")"

SCENARIO=baseline
e2e_say "$SCENARIO: both flows, nothing changes"
before=$(esp_packets)
flow_start e2e-a e2e-b
sleep 1
flow_stop
after=$(esp_packets)
[ "$after" -gt $((before + 200)) ] ||
	e2e_fail "ESP packet counters moved from $before to $after only: the flows did not cross ESP"
assert_lost_at_most e2e-a 0
assert_lost_at_most e2e-b 0

SCENARIO=rotate
e2e_say "$SCENARIO: tunnelsync rotate e2e-a (lone tunnel, make-before-break)"
fp_a=$(e2e_emu_fp "$E2E_ID_A")
flow_start e2e-a e2e-b
e2e_ts rotate rotate e2e-a || e2e_fail "rotate failed"
flow_stop
[ "$(e2e_emu_fp "$E2E_ID_A")" != "$fp_a" ] || e2e_fail "rotate: e2e-a's key did not change"
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
assert_lost_at_most e2e-a "$LONE_MAX"
assert_lost_at_most e2e-b 0

e2e_say "the daemon from here on"
/usr/bin/python3 - "$E2E_DIR/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["tunnelsync:tunnelsync"]["agent"]["resync-interval"] = 600
json.dump(c, open(p, "w"), indent=2)
PY
start_daemon() {
	ip netns exec "$E2E_NS_GW" "$E2E_TS" run -c "$E2E_DIR/config.json" --models "$E2E_ROOT/models" \
		</dev/null >>"$E2E_DIR/daemon.log" 2>&1 &
	DPID=$!
	sleep 1
	kill -0 "$DPID" 2>/dev/null || e2e_fail "the daemon exited at once"
}
start_daemon
wait_synced 30

SCENARIO=flush
e2e_say "$SCENARIO: ip xfrm state flush on the gateway, the daemon heals it"
flow_start e2e-a e2e-b
ip -n "$E2E_NS_GW" xfrm state flush
sleep 1
flow_wait_healed e2e-a $((HEAL_MAX + 5))
flow_wait_healed e2e-b $((HEAL_MAX + 5))
flow_stop
assert_healed e2e-a "$HEAL_MAX"
assert_healed e2e-b "$HEAL_MAX"
wait_synced 30

SCENARIO=iface
e2e_say "$SCENARIO: vti-a's address removed and vti-b set down behind the daemon's back: plan lists it, the next pass puts them back"
# First without flows: plan lists exactly that drift and changes nothing
# (links, addresses, routes, disable_policy byte for byte the same after
# it); put back by hand, then the same drift under the flows for the pass.
ip -n "$E2E_NS_GW" addr flush dev vti-a
ip -n "$E2E_NS_GW" link set vti-b down
gw_state() {
	ip -n "$E2E_NS_GW" -d link
	ip -n "$E2E_NS_GW" -4 -d addr
	ip -n "$E2E_NS_GW" -d route show table all
	ip netns exec "$E2E_NS_GW" sh -c 'grep -H . /proc/sys/net/ipv4/conf/vti-*/disable_policy'
}
gw_state >"$E2E_DIR/iface.before"
rc=0
E2E_QUIET=1 e2e_ts plan-iface plan --json || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "iface: plan exited $rc with the VTIs drifted, expected 2"
gw_state | cmp -s - "$E2E_DIR/iface.before" || e2e_fail "iface: plan changed the gateway's links or routes"
/usr/bin/python3 - "$E2E_LAST_OUT" <<'PY' || e2e_fail "iface: plan does not list the drift: $(cat "$E2E_LAST_OUT")"
import json, sys
doc = json.load(open(sys.argv[1]))
got = sorted((a["kind"], a.get("interface"), c["field"], c["old"], c["new"])
             for a in doc["actions"] if a["phase"] == "traffic" for c in a["changes"])
want = [("fix-interface", "vti-a", "address", "", "10.213.0.0/31"),
        ("fix-interface", "vti-b", "link", "down", "up")]
sys.exit(0 if got == want else "traffic actions %s, expected %s" % (got, want))
PY
ip -n "$E2E_NS_GW" addr add 10.213.0.0/31 dev vti-a
ip -n "$E2E_NS_GW" link set vti-b up
flow_start e2e-a e2e-b
lines=$(wc -l <"$E2E_DIR/daemon.log")
ip -n "$E2E_NS_GW" addr flush dev vti-a
ip -n "$E2E_NS_GW" link set vti-b down
kill -HUP "$DPID"
flow_wait_healed e2e-a "$HEAL_MAX"
flow_wait_healed e2e-b "$HEAL_MAX"
flow_stop
assert_healed e2e-a "$HEAL_MAX"
assert_healed e2e-b "$HEAL_MAX"
tail -n +"$((lines + 1))" "$E2E_DIR/daemon.log" | grep -q 'e2e-a: interface vti-a: address put back' ||
	e2e_fail "iface: the daemon did not say it put vti-a's address back"
tail -n +"$((lines + 1))" "$E2E_DIR/daemon.log" | grep -q 'e2e-b: interface vti-b: brought up' ||
	e2e_fail "iface: the daemon did not say it brought vti-b up"

# The daemon idle with every tunnel up holds no subscription to charon's
# log stream (costly, and abrupt client exits can make 5.9 log about it).
log_clients=$(awk '$3 == "vici" && $4 == "client" && /registered for: log/ { c[$5] = 1 }
	$3 == "vici" && $4 == "client" && / disconnected/ { delete c[$5] }
	END { n = 0; for (k in c) n++; print n }' "$E2E_DIR/a/charon.log")
[ "$log_clients" -eq 0 ] || e2e_fail "the idle daemon holds $log_clients subscription(s) to charon's log"
grep -q 'registered for: log' "$E2E_DIR/a/charon.log" ||
	e2e_fail "no log subscription ever: the check above proves nothing"

SCENARIO=restart
e2e_say "$SCENARIO: the gateway's charon restarted, the daemon heals it"
flow_start e2e-a e2e-b
sh "$E2E_ROOT/tests/lib/charon-netns.sh" stop "$(cat "$E2E_DIR/a/charon.pid")"
TS_HARNESS_KERNEL=netlink TS_HARNESS_CHARON_INCLUDE=$E2E_CHARON_INCLUDE \
	sh "$E2E_ROOT/tests/lib/charon-netns.sh" start "$E2E_PREFIX" a "$E2E_DIR" >/dev/null
sleep 1
flow_wait_healed e2e-a $((HEAL_MAX + 5))
flow_wait_healed e2e-b $((HEAL_MAX + 5))
flow_stop
assert_healed e2e-a "$HEAL_MAX"
assert_healed e2e-b "$HEAL_MAX"
wait_synced 30

SCENARIO=regen
e2e_say "$SCENARIO: e2e-b's key regenerated on the API behind the agent's back, SIGHUP"
flow_start e2e-a e2e-b
e2e_api POST "/$E2E_ID_B/psk_generate" '{}' >/dev/null
fp_regen=$(e2e_emu_fp "$E2E_ID_B")
kill -HUP "$DPID"
wait_synced $((E2E_CONFIRM_TIMEOUT + 10))
flow_stop
[ "$(e2e_emu_fp "$E2E_ID_B")" != "$fp_regen" ] || e2e_fail "regen: e2e-b still on the regenerated key"
e2e_assert_tunnel_ok e2e-b "$E2E_ID_B"
assert_lost_at_most e2e-b "$LONE_MAX"
assert_lost_at_most e2e-a 0

SCENARIO=sigkill
e2e_say "$SCENARIO: the daemon SIGKILLed in the middle of a rotation, a new one resumes it"
flow_start e2e-a e2e-b
e2e_api POST "/$E2E_ID_A/psk_generate" '{}' >/dev/null
kill -HUP "$DPID"
# Killed as soon as the rotation is journaled: mid-rotation by definition.
i=0
until [ -n "$(ls -A "$E2E_DIR/state/journal" 2>/dev/null)" ]; do
	i=$((i + 1))
	[ $i -lt 600 ] || e2e_fail "sigkill: the daemon did not start the rotation"
	sleep 0.02
done
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null || true
DPID=
step=$(cat "$E2E_DIR"/state/journal/* 2>/dev/null | sed -n 's/^step=//p' | head -n 1)
[ -n "$step" ] || e2e_fail "sigkill: no journal entry left: the kill came after the rotation"
e2e_say "killed with the rotation at step $step"
unknown0=$(grep -c 'vici connection .* unknown' "$E2E_DIR/a/charon.log" || true)
sleep 2
unknown1=$(grep -c 'vici connection .* unknown' "$E2E_DIR/a/charon.log" || true)
e2e_say "charon logged 'vici connection N unknown' $((unknown1 - unknown0)) times in the 2 s after the kill"
[ $((unknown1 - unknown0)) -lt 50 ] || e2e_fail "sigkill: charon floods its log after the agent died"
start_daemon
wait_synced $((E2E_CONFIRM_TIMEOUT + 10))
flow_stop
e2e_journal_empty || e2e_fail "sigkill: journal not empty after the resume"
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
assert_lost_at_most e2e-a "$LONE_MAX"
assert_lost_at_most e2e-b 0

SCENARIO=stale
e2e_say "$SCENARIO: a rotation journaled longer ago than confirm-timeout is resumed break-before-make (the fallback for peers that refuse overlapping SAs)"
/usr/bin/python3 - "$E2E_DIR/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["tunnelsync:tunnelsync"]["agent"]["ike-backend"]["confirm-timeout"] = 5
json.dump(c, open(p, "w"), indent=2)
PY
wait_synced 10
flow_start e2e-a e2e-b
lines=$(wc -l <"$E2E_DIR/daemon.log")
e2e_api POST "/$E2E_ID_B/psk_generate" '{}' >/dev/null
kill -HUP "$DPID"
i=0
until [ -n "$(ls -A "$E2E_DIR/state/journal" 2>/dev/null)" ]; do
	i=$((i + 1))
	[ $i -lt 600 ] || e2e_fail "stale: the daemon did not start the rotation"
	sleep 0.02
done
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null || true
DPID=
sleep 6 # longer than confirm-timeout: as if an earlier attempt had not come up
start_daemon
wait_synced 30
flow_stop
tail -n +"$((lines + 1))" "$E2E_DIR/daemon.log" | grep -q 'e2e-b: .*break-before-make this time' ||
	e2e_fail "stale: no break-before-make fallback in the daemon's log"
e2e_assert_tunnel_ok e2e-b "$E2E_ID_B"
e2e_journal_empty || e2e_fail "stale: journal not empty"
assert_healed e2e-b "$HEAL_MAX"
assert_lost_at_most e2e-a 0

SCENARIO=bbm
e2e_say "$SCENARIO: charon restarted without make-before-break: the daemon warns; a rotation's cost (a figure, not asserted)"
sed -i '/^include /d' "$E2E_DIR/a/strongswan.conf"
sh "$E2E_ROOT/tests/lib/charon-netns.sh" stop "$(cat "$E2E_DIR/a/charon.pid")"
sh "$E2E_ROOT/tests/lib/charon-netns.sh" start "$E2E_PREFIX" a "$E2E_DIR" >/dev/null
wait_synced 30
i=0
until grep -q 'MAKE-BEFORE-BREAK NOT IN FORCE (off)' "$E2E_DIR/daemon.log"; do
	i=$((i + 1))
	[ $i -lt 50 ] || e2e_fail "bbm: the daemon did not warn about make-before-break being off"
	sleep 0.2
done
i=0
until [ "$(mbb_state)" = off ]; do # written at the end of the pass that warned
	i=$((i + 1))
	[ $i -lt 40 ] || e2e_fail "bbm: status does not say make-before-break off"
	sleep 0.25
done
flow_start e2e-a e2e-b
e2e_api POST "/$E2E_ID_B/psk_generate" '{}' >/dev/null
kill -HUP "$DPID"
wait_synced $((E2E_CONFIRM_TIMEOUT + 10))
sleep 1
flow_wait_healed e2e-b "$HEAL_MAX"
flow_stop
assert_healed e2e-b "$HEAL_MAX"
assert_lost_at_most e2e-a 0

SCENARIO=pair
e2e_say "$SCENARIO: a redundant pair with agent-owned routes (a metric 100, b 200), charon still break-before-make: rotating e2e-a drains its routes to e2e-b"
# The gateway's LAN address and the far side's, reached over either tunnel;
# the edge answers over e2e-b (as an edge would over a healthy tunnel).
ip -n "$E2E_NS_GW" addr add 192.0.2.10/32 dev lo
ip -n "$E2E_NS_EDGE" addr add 192.0.2.100/32 dev lo
ip -n "$E2E_NS_EDGE" route add 192.0.2.10/32 dev vti-b metric 100
ip -n "$E2E_NS_EDGE" route add 192.0.2.10/32 dev vti-a metric 200
/usr/bin/python3 - "$E2E_DIR/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
ts = c["tunnelsync:tunnelsync"]
for t, dev, metric in zip(ts["tunnels"]["tunnel"], ("vti-a", "vti-b"), (100, 200)):
    t["redundancy-group"] = "pair"
    t["routes"] = {"interface": dev, "route": [{"prefix": "192.0.2.100/32", "metric": metric}]}
json.dump(c, open(p, "w"), indent=2)
PY
kill -HUP "$DPID"
wait_for 100 "pair: the daemon did not install its routes" \
	'[ "$(ip -n "$E2E_NS_GW" route show 192.0.2.100/32 proto 182 | wc -l)" -eq 2 ]'
ip -n "$E2E_NS_GW" route show 192.0.2.100/32 | grep -q 'dev vti-a proto 182 scope link metric 100' ||
	e2e_fail "pair: no route via vti-a at metric 100: $(ip -n "$E2E_NS_GW" route)"
wait_synced 30
flow_start pair e2e-a
lines=$(wc -l <"$E2E_DIR/daemon.log")
e2e_api POST "/$E2E_ID_A/psk_generate" '{}' >/dev/null
# SIGHUP now and then saves the daemon's retry delay.
i=0
until tail -n +"$((lines + 1))" "$E2E_DIR/daemon.log" | grep -q 'e2e-a: rotation committed'; do
	i=$((i + 1))
	[ $i -lt 300 ] || e2e_fail "pair: e2e-a was not rotated"
	[ $((i % 20)) -ne 1 ] || kill -HUP "$DPID"
	sleep 0.25
done
wait_synced 30
flow_stop
tail -n +"$((lines + 1))" "$E2E_DIR/daemon.log" | grep -q 'e2e-a: routes through vti-a drained' ||
	e2e_fail "pair: the daemon did not drain e2e-a's routes"
tail -n +"$((lines + 1))" "$E2E_DIR/daemon.log" | grep -q 'e2e-a: routes through vti-a restored' ||
	e2e_fail "pair: the daemon did not restore e2e-a's routes"
ip -n "$E2E_NS_GW" route show 192.0.2.100/32 | grep -q 'dev vti-a proto 182 scope link metric 100' ||
	e2e_fail "pair: e2e-a's route not back at metric 100: $(ip -n "$E2E_NS_GW" route)"
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
assert_lost_at_most pair 0
assert_healed e2e-a "$HEAL_MAX"

SCENARIO=settle
e2e_say "$SCENARIO: e2e-b's key regenerated right after e2e-a rotated: it waits for the settle window (20 s here)"
/usr/bin/python3 - "$E2E_DIR/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["tunnelsync:tunnelsync"]["agent"]["traffic"]["settle-time"] = 20
json.dump(c, open(p, "w"), indent=2)
PY
kill -HUP "$DPID"
e2e_api POST "/$E2E_ID_B/psk_generate" '{}' >/dev/null
rc=0
e2e_ts plan-json plan --json || rc=$?
# A plan of deferrals only exits 0 (nothing to apply now).
[ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || e2e_fail "settle: plan exited $rc"
/usr/bin/python3 - "$E2E_LAST_OUT" <<'PY' || e2e_fail "settle: plan shows no settle deferral with the time left"
import json, re, sys
acts = json.load(open(sys.argv[1]))["actions"]
ok = [a for a in acts if a["kind"] == "defer-rotation" and a["tunnel"] == "e2e-b"
      and a["cause"] == "group-settling" and re.search(r"\d+ s left", a["reason"])]
for a in ok:
    print("   %s %s: %s" % (a["kind"], a["tunnel"], a["reason"]))
if not ok:
    print(json.dumps(acts, indent=1), file=sys.stderr)
sys.exit(0 if ok else 1)
PY
# Once the window is over the plan rotates e2e-b (the daemon would retry
# by itself; SIGHUP saves the wait).
i=0
while :; do
	E2E_QUIET=1 e2e_ts plan-json plan --json >/dev/null 2>&1 || true
	grep -q '"group-settling"' "$E2E_LAST_OUT" || break
	i=$((i + 1))
	[ $i -lt 60 ] || e2e_fail "settle: still deferred after 30 s"
	sleep 0.5
done
kill -HUP "$DPID"
wait_synced 45
e2e_assert_tunnel_ok e2e-b "$E2E_ID_B"

SCENARIO=prune
e2e_say "$SCENARIO: e2e-b's routes taken out of the config, then its interface: the daemon deletes its owned route, then its VTI; e2e-a's and the edge's stay"
unset_b() {
	/usr/bin/python3 - "$E2E_DIR/config.json" "$1" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
del c["tunnelsync:tunnelsync"]["tunnels"]["tunnel"][1][sys.argv[2]]
json.dump(c, open(p, "w"), indent=2)
PY
	kill -HUP "$DPID"
}
lines=$(wc -l <"$E2E_DIR/daemon.log")
unset_b routes
wait_for 100 "prune: e2e-b's route no longer declared is still there" \
	'! ip -n "$E2E_NS_GW" route show 192.0.2.100/32 proto 182 | grep -q "dev vti-b"'
ip -n "$E2E_NS_GW" route show 192.0.2.100/32 | grep -q 'dev vti-a proto 182 scope link metric 100' ||
	e2e_fail "prune: e2e-a's declared route went too: $(ip -n "$E2E_NS_GW" route)"
wait_for 25 "prune: the daemon did not log the route's removal" \
	'tail -n +"$((lines + 1))" "$E2E_DIR/daemon.log" | grep -q "route 192.0.2.100/32 via vti-b: delete"'
unset_b interface
wait_for 100 "prune: the VTI e2e-b no longer declares is still there" \
	'! ip -n "$E2E_NS_GW" link show dev vti-b >/dev/null 2>&1'
ip -n "$E2E_NS_GW" -d link show dev vti-a | grep -q 'alias tunnelsync:e2e-a' ||
	e2e_fail "prune: e2e-a's VTI went too"
ip -n "$E2E_NS_EDGE" link show dev vti-b >/dev/null || e2e_fail "prune: the edge's vti-b went"

kill -TERM "$DPID"
wait "$DPID" || e2e_fail "the daemon did not stop cleanly"
DPID=
echo "== traffic at 100 pps (packets lost; outage = longest run of lost packets)"
printf '%-9s %-6s %6s %5s %10s\n' scenario tunnel sent lost outage_ms
awk '{ printf "%-9s %-6s %6d %5d %10d\n", $1, $2, $3, $4, $5 }' "$E2E_DIR/results"
e2e_say "traffic OK"
