#!/bin/sh
# Benchmark: drift event → corrective action, with the real daemon, two
# real charons and the API emulator (the e2e harness, tests/e2e/lib.sh).
# Each trial terminates tunnel e2e-b's IKE SA behind the daemon's back
# (`swanctl --terminate --force`: charon deletes it at once and sends
# ike-updown) and reads the daemon's log (ms timestamps) for when the event
# was read, when the pass it asked for started, and when the initiate that
# brought the tunnel back was done. t0 is taken just before swanctl runs,
# so the first and last figures include swanctl's own start.
# With EXTRA, that many more tunnels are declared, seeded on the emulator
# and configured on the edge charon (each its own IKE SA; edge addresses
# 198.51.100.10-199, shared round-robin above 190 extra tunnels: the edge
# tells them apart by the gateway's identity), so that the gateway is large: the event's pass is scoped to e2e-b and
# its group (e2e-a), so the reaction should not grow with EXTRA.
# With SECOND, the same trials are then run with that binary on the same
# gateway (the daemon restarted; nothing bootstraps again): a before/after
# comparison under the same load, without a second set-up.
# With BENCH_MODE=during each trial first sends SIGHUP (a full pass over
# the whole gateway) and terminates the SA 50-450 ms after that pass
# started (varied by trial), so that the event arrives while the full
# pass runs; figures from the termination (t0) then. BENCH_MODE=both runs
# the idle trials, then these.
# BENCH_LIST_DELAY=S answers every Cloudflare list S seconds late (the
# emulator's delay fault), as a real round trip to Cloudflare does.
# Prints median and p95; asserts no time. Root only (exit 77 otherwise).
# Usage: daemon-reaction.sh TUNNELSYNC_BINARY [TRIALS [EXTRA [SECOND]]]
#        (TRIALS: 8, EXTRA: 0; at most 1500)
set -eu
E2E_TS=${1:?usage: daemon-reaction.sh TUNNELSYNC_BINARY [TRIALS [EXTRA [SECOND]]]}
TRIALS=${2:-${BENCH_TRIALS:-8}}
EXTRA=${3:-${BENCH_EXTRA:-0}}
SECOND=${4:-}
MODE=${BENCH_MODE:-idle}
E2E_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$E2E_ROOT/tests/e2e/lib.sh"
e2e_require
e2e_require_commands run
e2e_up

DPID=
bench_cleanup() {
	rc=$?
	set +e
	[ -z "$DPID" ] || kill -TERM "$DPID" 2>/dev/null
	[ -z "$DPID" ] || wait "$DPID" 2>/dev/null
	[ "$rc" -eq 0 ] || tail -50 "$E2E_DIR/daemon.log" >&2
	[ -z "${BENCH_KEEP_LOG:-}" ] || cp "$E2E_DIR/daemon.log" "$BENCH_KEEP_LOG"
	[ -z "${BENCH_KEEP_LOG:-}" ] || [ ! -f "$E2E_DIR/daemon-2.log" ] ||
		cp "$E2E_DIR/daemon-2.log" "$BENCH_KEEP_LOG.2"
	(exit "$rc")
	e2e_cleanup
}
trap bench_cleanup EXIT

/usr/bin/python3 - "$E2E_DIR" "$EXTRA" "$E2E_ACCOUNT" "$E2E_GW_ADDR" <<'PY'
import json, os, sys
d, extra, account, gw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
p = os.path.join(d, "config.json")
c = json.load(open(p))
c["tunnelsync:tunnelsync"]["agent"]["resync-interval"] = 600
# The emulator pushes every bootstrap key to the edge charon (a hook per
# key) inside the one bulk call: give it time with many tunnels.
c["tunnelsync:tunnelsync"]["cloudflare"]["request-timeout"] = 120
tunnels = c["tunnelsync:tunnelsync"]["tunnels"]["tunnel"]
template = [t for t in tunnels if t["name"] == "e2e-b"][0]
seed, conns, tmap = [], [], []
for i in range(extra):
    name, tid, edge = "e2e-x%03d" % i, "%032x" % (0xe000 + i), "198.51.100.%d" % (10 + i % 190)
    ifaddr = "10.214.%d.%d/31" % (i // 128, (i % 128) * 2)
    t = json.loads(json.dumps(template))
    t.pop("redundancy-group", None)
    t.update({"name": name, "id": tid, "cloudflare-endpoint": edge,
              "interface-address": ifaddr, "route-based": {"if-id": 1000 + i}})
    tunnels.append(t)
    seed.append({"id": tid, "name": name, "customer_endpoint": gw,
                 "cloudflare_endpoint": edge, "interface_address": ifaddr})
    gwid = "%s.%s.ipsec.cloudflare.com" % (tid, account)
    tmap.append("%s %s %s %s\n" % (tid, name, edge, gwid))
    conns.append(" cf-%s {\n  version = 2\n  local_addrs = %s\n"
                 "  proposals = aes256gcm16-prfsha256-ecp384, aes256-sha256-prfsha256-ecp384\n"
                 "  local { auth = psk\n   id = %s }\n  remote { auth = psk\n   id = %s }\n"
                 "  children { cf-%s {\n   local_ts = 0.0.0.0/0\n   remote_ts = 0.0.0.0/0\n"
                 "   esp_proposals = aes256gcm16-ecp384-noesn, aes256-sha256-ecp384-noesn\n"
                 "   replay_window = 0\n  } }\n }\n" % (name, edge, edge, gwid, name))
json.dump(c, open(p, "w"), indent=2)
# In chunks: each is one argument of the emulator's admin call.
for k in range(0, len(seed), 200):
    json.dump({"tunnels": seed[k:k + 200]},
              open(os.path.join(d, "extra-seed-%04d.json" % k), "w"))
with open(os.path.join(d, "edge", "tunnels.map"), "a") as f:
    f.writelines(tmap)
sw = os.path.join(d, "b", "swanctl", "swanctl.conf")
text = open(sw).read()
text = text.replace("connections {\n", "connections {\n" + "".join(conns), 1)
open(sw, "w").write(text)
PY
if [ "$EXTRA" -gt 0 ]; then
	i=0
	while [ $i -lt "$EXTRA" ] && [ $i -lt 190 ]; do
		ip -n "$E2E_NS_EDGE" addr add "198.51.100.$((10 + i))/24" dev veth0
		i=$((i + 1))
	done
	e2e_swanctl b --load-all >"$E2E_DIR/edge/load-all-extra.out" 2>&1 ||
		{ cat "$E2E_DIR/edge/load-all-extra.out" >&2; e2e_fail "edge: extra connections"; }
	for f in "$E2E_DIR"/extra-seed-*.json; do
		e2e_admin POST /tunnels "$(cat "$f")" >/dev/null
	done
fi

start_daemon() { # binary log
	ip netns exec "$E2E_NS_GW" "$1" run -c "$E2E_DIR/config.json" --models "$E2E_ROOT/models" \
		--log-level debug >"$2" 2>&1 &
	DPID=$!
}
start_daemon "$E2E_TS" "$E2E_DIR/daemon.log"
e2e_wait_ike_up e2e-a $((60 + EXTRA)) || e2e_fail "e2e-a not up"
e2e_wait_ike_up e2e-b $((60 + EXTRA)) || e2e_fail "e2e-b not up"
i=0
while [ "$(e2e_swanctl a --list-sas --noblock 2>/dev/null | grep -c 'ESTABLISHED')" -lt $((EXTRA + 2)) ]; do
	i=$((i + 1))
	[ $i -lt $((600 + 2 * EXTRA)) ] || e2e_fail "not all $((EXTRA + 2)) tunnels up"
	sleep 0.5
done
sleep 3 # the bootstrap's follow-up passes settle
echo "tunnels declared and up: $((EXTRA + 2))"

# The daemon's log since the trial began ($lines lines before it).
log_since() { tail -n +"$((lines + 1))" "$LOG"; }
log_has() { log_since | grep -q "$1"; }
# The pass that brought e2e-b back has ended.
pass_ended() {
	log_since | sed -n '/tunnel=e2e-b: initiate: done/,$p' | grep -q ' pass: .* actions, '
}
# wait_for STEP TRIES WHAT TEST...: runs TEST every STEP s until it
# succeeds; the trial fails ("WHAT") after TRIES tries.
wait_for() {
	step=$1 tries=$2 what=$3
	shift 3
	i=0
	until "$@"; do
		i=$((i + 1))
		[ $i -lt "$tries" ] || e2e_fail "trial $t: $what"
		sleep "$step"
	done
}

run_trials() { # log mode
LOG=$1
: >"$E2E_DIR/trials"
t=0
while [ $t -lt "$TRIALS" ]; do
	t=$((t + 1))
	lines=$(wc -l <"$LOG")
	if [ "$2" = during ]; then
		kill -HUP "$DPID"
		wait_for 0.01 1000 "no SIGHUP pass within 10 s" log_has 'starts (SIGHUP'
		sleep "0.$(printf %03d $((50 + (t * 97) % 400)))"
	fi
	t0=$(date +%s%3N)
	e2e_swanctl a --terminate --force --ike ts-e2e-b >/dev/null 2>&1 || true
	wait_for 0.1 200 "no initiate within 20 s" log_has 'tunnel=e2e-b: initiate: done'
	echo "$t0 $lines" >>"$E2E_DIR/trials"
	e2e_wait_ike_up e2e-b 30 || e2e_fail "trial $t: e2e-b not back"
	# The next trial starts from an idle loop: the pass that brought the
	# tunnel back has ended (its full stage lasts ~1 s at 1000 tunnels).
	wait_for 0.1 300 "the pass did not end within 30 s" pass_ended
	sleep 0.5
done

/usr/bin/python3 - "$LOG" "$E2E_DIR/trials" "$2" <<'PY'
import datetime, statistics, sys
log = open(sys.argv[1]).read().splitlines()
def ms(line):
    ts = line.split(" ", 1)[0]
    d = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return d.timestamp() * 1000
seen, start, req, done, whole = [], [], [], [], []
during, t0req, inside = sys.argv[3] == "during", [], 0
for row in open(sys.argv[2]):
    t0, first = int(row.split()[0]), int(row.split()[1])
    after = log[first:]
    if during:
        # The SIGHUP pass: did the action start before it ended?
        q = next((l for l in after if "tunnel=e2e-b: initiate: requested" in l), None)
        end = next((l for l in after if " pass: " in l and " actions, " in l), None)
        if q:
            t0req.append(ms(q) - t0)
        if q and end and ms(end) > t0 and ms(q) < ms(end):
            inside += 1
        d = next((l for l in after if "tunnel=e2e-b: initiate: done" in l), None)
        if d:
            done.append(ms(d) - t0)
        if end:
            whole.append(ms(end) - t0)
        continue
    e = next((l for l in after if "events ask for a pass" in l), None)
    p = next((l for l in after if "starts (event" in l), None)
    q = next((l for l in after if "tunnel=e2e-b: initiate: requested" in l), None)
    d = next((l for l in after if "tunnel=e2e-b: initiate: done" in l), None)
    if e:
        seen.append(ms(e) - t0)
    if e and p:
        start.append(ms(p) - ms(e))
    if e and q:
        req.append(ms(q) - ms(e))
    if d:
        done.append(ms(d) - t0)
    w = next((l for l in after if " pass: " in l and " actions, " in l), None)
    if w:
        whole.append(float(w.rsplit("(", 1)[1].split()[0]) * 1000)
def fig(name, v):
    v = sorted(v)
    if not v:
        print(f"{name}: no samples"); return
    p95 = v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
    print(f"{name}: n={len(v)} median {statistics.median(v):.0f} ms, p95 {p95:.0f} ms, max {v[-1]:.0f} ms")
if during:
    fig("during a full pass: IKE SA terminated -> initiate requested (corrective action started)", t0req)
    fig("during a full pass: IKE SA terminated -> initiate done", done)
    fig("during a full pass: IKE SA terminated -> that full pass ended", whole)
    print(f"during a full pass: action started before the full pass ended in {inside} of {len(t0req)} trials")
    sys.exit(0)
fig("IKE SA terminated -> event read by the daemon", seen)
fig("event read -> corrective pass started", start)
fig("event read -> initiate requested from charon (corrective action started)", req)
fig("IKE SA terminated -> initiate done (corrective action complete)", done)
fig("the event's whole pass (its tunnels first, then the whole gateway)", whole)
PY
}

run_modes() { # log
	# BENCH_LIST_DELAY=S: every list request answered S seconds late, as
	# Cloudflare's own round trip makes it (tens to hundreds of ms over
	# the internet; the emulator next door answers 1,000 tunnels in tens
	# of ms, so a full pass may end before a "during" trial's event).
	if [ -n "${BENCH_LIST_DELAY:-}" ]; then
		e2e_admin POST /faults "{\"rules\":[{\"method\":\"GET\",\"path\":\"/ipsec_tunnels\$\",\"action\":\"delay\",\"delay\":$BENCH_LIST_DELAY,\"count\":-1}]}" >/dev/null
		echo "every list answered ${BENCH_LIST_DELAY} s late (BENCH_LIST_DELAY)"
	fi
	if [ "$MODE" != during ]; then
		run_trials "$1" idle
	fi
	if [ "$MODE" != idle ]; then
		echo "events during a full pass (SIGHUP, then the SA terminated 50-450 ms after it started):"
		run_trials "$1" during
	fi
}
echo "binary: $E2E_TS"
run_modes "$E2E_DIR/daemon.log"
if [ -n "$SECOND" ]; then
	kill -TERM "$DPID"
	wait "$DPID" || true
	DPID=
	start_daemon "$SECOND" "$E2E_DIR/daemon-2.log"
	i=0
	until grep -q ' pass: ' "$E2E_DIR/daemon-2.log"; do
		i=$((i + 1))
		[ $i -lt $((600 + 2 * EXTRA)) ] || e2e_fail "$SECOND: no pass"
		sleep 0.5
	done
	sleep 3
	echo "binary: $SECOND"
	run_modes "$E2E_DIR/daemon-2.log"
fi
