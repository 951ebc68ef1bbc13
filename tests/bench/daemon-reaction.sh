#!/bin/sh
# Benchmark: drift event → corrective action, with the real daemon, two
# real charons and the API emulator (the e2e harness, tests/e2e/lib.sh).
# Each trial terminates tunnel e2e-b's IKE SA behind the daemon's back
# (`swanctl --terminate --force`: charon deletes it at once and sends
# ike-updown) and reads the daemon's log (ms timestamps) for when the event
# was read, when the pass it asked for started, and when the initiate that
# brought the tunnel back was done. t0 is taken just before swanctl runs,
# so the first and last figures include swanctl's own start.
# Prints median and p95; asserts no time. Root only (exit 77 otherwise).
# Usage: daemon-reaction.sh TUNNELSYNC_BINARY [TRIALS]  (TRIALS: 8)
set -eu
E2E_TS=${1:?usage: daemon-reaction.sh TUNNELSYNC_BINARY [TRIALS]}
TRIALS=${2:-${BENCH_TRIALS:-8}}
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
	(exit "$rc")
	e2e_cleanup
}
trap bench_cleanup EXIT

/usr/bin/python3 - "$E2E_DIR/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["tunnelsync:tunnelsync"]["agent"]["resync-interval"] = 600
json.dump(c, open(p, "w"), indent=2)
PY

ip netns exec "$E2E_NS_GW" "$E2E_TS" run -c "$E2E_DIR/config.json" --models "$E2E_ROOT/models" \
	--log-level debug >"$E2E_DIR/daemon.log" 2>&1 &
DPID=$!
e2e_wait_ike_up e2e-a 60 || e2e_fail "e2e-a not up"
e2e_wait_ike_up e2e-b 60 || e2e_fail "e2e-b not up"
sleep 2 # the bootstrap's follow-up passes settle

: >"$E2E_DIR/trials"
t=0
while [ $t -lt "$TRIALS" ]; do
	t=$((t + 1))
	lines=$(wc -l <"$E2E_DIR/daemon.log")
	t0=$(date +%s%3N)
	e2e_swanctl a --terminate --force --ike ts-e2e-b >/dev/null 2>&1 || true
	i=0
	until tail -n +"$((lines + 1))" "$E2E_DIR/daemon.log" | grep -q 'tunnel=e2e-b: initiate: done'; do
		i=$((i + 1))
		[ $i -lt 200 ] || e2e_fail "trial $t: no initiate within 20 s"
		sleep 0.1
	done
	echo "$t0 $lines" >>"$E2E_DIR/trials"
	e2e_wait_ike_up e2e-b 30 || e2e_fail "trial $t: e2e-b not back"
	sleep 0.5
done

/usr/bin/python3 - "$E2E_DIR/daemon.log" "$E2E_DIR/trials" <<'PY'
import datetime, statistics, sys
log = open(sys.argv[1]).read().splitlines()
def ms(line):
    ts = line.split(" ", 1)[0]
    d = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return d.timestamp() * 1000
seen, start, done = [], [], []
for row in open(sys.argv[2]):
    t0, first = int(row.split()[0]), int(row.split()[1])
    after = log[first:]
    e = next((l for l in after if "events ask for a pass" in l), None)
    p = next((l for l in after if "starts (event)" in l), None)
    d = next((l for l in after if "tunnel=e2e-b: initiate: done" in l), None)
    if e:
        seen.append(ms(e) - t0)
    if e and p:
        start.append(ms(p) - ms(e))
    if d:
        done.append(ms(d) - t0)
def fig(name, v):
    v = sorted(v)
    if not v:
        print(f"{name}: no samples"); return
    p95 = v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
    print(f"{name}: n={len(v)} median {statistics.median(v):.0f} ms, p95 {p95:.0f} ms, max {v[-1]:.0f} ms")
fig("IKE SA terminated -> event read by the daemon", seen)
fig("event read -> corrective pass started", start)
fig("IKE SA terminated -> initiate done (corrective action complete)", done)
PY
