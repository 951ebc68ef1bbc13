#!/bin/sh
# Benchmark: how fast /healthz and /readyz answer while the daemon is at
# its worst, with the real daemon, two real charons and the API emulator
# (tests/e2e/lib.sh). Three phases, PROBES probes of each endpoint each
# (one new connection per probe, timed in-process from connect to the
# whole answer, so no curl start-up is counted):
#   idle      - nothing else happens;
#   hung-api  - every tunnel list hangs 15 s at the emulator and SIGHUP
#               keeps a pass running on it the whole phase;
#   hostile   - the same, and HELD connections held open meanwhile (half
#               silent, half a request begun and never ended, which is
#               more than the connection cap of 256; default 600).
# Prints median, p95 and max per phase and endpoint; asserts no time.
# Root only (exit 77 otherwise).
# Usage: daemon-probes.sh TUNNELSYNC_BINARY [PROBES [HELD]]  (PROBES: 200, HELD: 600)
set -eu
E2E_TS=${1:?usage: daemon-probes.sh TUNNELSYNC_BINARY [PROBES]}
PROBES=${2:-200}
HELD=${3:-600}
E2E_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$E2E_ROOT/tests/e2e/lib.sh"
e2e_require
e2e_require_commands run
e2e_up

DPID=
PORT=$((20000 + $$ % 20000))
bench_cleanup() {
	rc=$?
	set +e
	[ -z "$DPID" ] || kill -TERM "$DPID" 2>/dev/null
	[ -z "$DPID" ] || wait "$DPID" 2>/dev/null
	[ "$rc" -eq 0 ] || tail -30 "$E2E_DIR/daemon.log" >&2
	(exit "$rc")
	e2e_cleanup
}
trap bench_cleanup EXIT

e2e_daemon_config "$PORT"

ip netns exec "$E2E_NS_GW" "$E2E_TS" run -c "$E2E_DIR/config.json" --models "$E2E_ROOT/models" \
	--log-level debug >"$E2E_DIR/daemon.log" 2>&1 &
DPID=$!
e2e_wait_ike_up e2e-a 60 || e2e_fail "e2e-a not up"
e2e_wait_ike_up e2e-b 60 || e2e_fail "e2e-b not up"
sleep 2

probe() { # phase hostile
	ip netns exec "$E2E_NS_GW" /usr/bin/python3 - "$PORT" "$PROBES" "$1" "$2" "$HELD" <<'PY'
import socket, statistics, sys, time
port, n, phase, hostile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
held = []
if hostile:
    for i in range(int(sys.argv[5])):
        s = socket.create_connection(("127.0.0.1", port))
        if i % 2:
            s.send(b"GET /he")
        held.append(s)
def one(path):
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET " + path + b" HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        try:
            b = s.recv(4096)
        except OSError:
            break
        if not b:
            break
        data += b
    s.close()
    ms = (time.monotonic() - t0) * 1000
    return ms, data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "none"
for path in (b"/healthz", b"/readyz"):
    v, codes = [], {}
    for i in range(n):
        ms, code = one(path)
        v.append(ms)
        codes[code] = codes.get(code, 0) + 1
        time.sleep(0.01)
    v.sort()
    p95 = v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
    print("%-8s %-8s n=%d median %.2f ms, p95 %.2f ms, max %.2f ms; answers %s" % (
        phase, path.decode(), n, statistics.median(v), p95, v[-1],
        ", ".join("%s x%d" % kv for kv in sorted(codes.items()))))
for s in held:
    s.close()
PY
}

probe idle 0
e2e_admin POST /faults '{"rules":[{"method":"GET","path":"/ipsec_tunnels$","action":"delay","delay":15,"count":-1}]}' >/dev/null
kill -HUP "$DPID"
sleep 0.5
( for i in 1 2 3 4 5 6 7 8 9 10; do kill -HUP "$DPID" 2>/dev/null; sleep 5; done ) &
HUPS=$!
probe hung-api 0
probe hostile 1
kill "$HUPS" 2>/dev/null || true
e2e_admin DELETE /faults >/dev/null
grep -c 'starts (SIGHUP)' "$E2E_DIR/daemon.log" | sed 's/^/passes started by SIGHUP during the run: /'
