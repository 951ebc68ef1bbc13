#!/bin/sh
# The daemon under an operator's worst day: hostile HTTP clients (early
# close without reading, a trickling one, 200 silent connections) while
# passes and SIGHUP go on; a FIFO in place of status.json, of the token
# file and of api-state.json; a 429 with a long Retry-After (no call
# before it, in the daemon or in `once`; status and metrics say until
# when); an IKE SA terminated while a full pass's Cloudflare list is
# held back (acted on before the list returns); SIGTERM in the middle of
# a pass stuck on the API; a reload into an unusable state directory.
# Usage: daemon-limits.sh TUNNELSYNC_BINARY
set -eu
E2E_TS=${1:?usage: daemon-limits.sh TUNNELSYNC_BINARY}
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_require_commands run status once
e2e_up

DPID=
PORT=$((20000 + $$ % 20000))
limits_cleanup() {
	rc=$?
	set +e
	[ -z "$DPID" ] || kill -KILL "$DPID" 2>/dev/null
	[ "$rc" -eq 0 ] || {
		echo "== daemon log:" >&2
		cat "$E2E_DIR/daemon.earlier.log" "$E2E_DIR/daemon.log" >&2
	}
	(exit "$rc")
	e2e_cleanup
}
trap limits_cleanup EXIT

e2e_daemon_config "$PORT"

http() {
	ip netns exec "$E2E_NS_GW" curl -s -m 2 -o "$E2E_DIR/http.body" -w '%{http_code}' \
		"http://127.0.0.1:$PORT$1" || echo 000
}
passes() {
	grep -c 'pass: [0-9]* actions' "$E2E_DIR/daemon.log" || true
}
wait_passes() {
	want=$1
	i=0
	while [ "$(passes)" -lt "$want" ]; do
		i=$((i + 1))
		[ $i -lt 60 ] || e2e_fail "fewer than $want passes"
		sleep 0.5
	done
}
lists() {
	e2e_admin GET /requests | /usr/bin/python3 -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin)["requests"]
          if r["method"] == "GET" and r["path"].endswith("/ipsec_tunnels")))'
}
# Each start has a log of its own (passes are counted per start).
start_daemon() {
	[ ! -f "$E2E_DIR/daemon.log" ] || cat "$E2E_DIR/daemon.log" >>"$E2E_DIR/daemon.earlier.log"
	: >"$E2E_DIR/daemon.log"
	ip netns exec "$E2E_NS_GW" "$E2E_TS" run -c "$E2E_DIR/config.json" \
		--models "$E2E_ROOT/models" --log-level debug >>"$E2E_DIR/daemon.log" 2>&1 &
	DPID=$!
}

# once_with_fifo LOG PATTERN...: `once` must not hang on a FIFO, and its
# log must name each file matched by a PATTERN.
once_with_fifo() {
	log=$1
	shift
	rc=0
	timeout 20 ip netns exec "$E2E_NS_GW" "$E2E_TS" once -c "$E2E_DIR/config.json" \
		--models "$E2E_ROOT/models" >"$log" 2>&1 || rc=$?
	[ "$rc" -ne 124 ] || e2e_fail "once hung on a FIFO"
	for pat; do
		grep -q "$pat" "$log" || { cat "$log" >&2; e2e_fail "no clear error: $pat"; }
	done
}

e2e_say "FIFOs in place of status.json and the token file: refused at once, named"
mkdir -m 0700 "$E2E_DIR/state"
mkfifo -m 0600 "$E2E_DIR/state/status.json"
cp "$E2E_DIR/emu/token" "$E2E_DIR/token.real"
mv "$E2E_DIR/emu/token" "$E2E_DIR/emu/token.file"
mkfifo -m 0600 "$E2E_DIR/emu/token"
once_with_fifo "$E2E_DIR/once-fifo.log" "token file .*emu/token: not a regular file" \
	"status.json not read: not a regular file"
rm "$E2E_DIR/emu/token" "$E2E_DIR/state/status.json"
mv "$E2E_DIR/emu/token.file" "$E2E_DIR/emu/token"

e2e_say "start the daemon; hostile HTTP clients while passes and SIGHUP go on"
start_daemon
wait_passes 2
[ "$(http /healthz)" = 200 ] || e2e_fail "/healthz not 200"
before=$(passes)
ip netns exec "$E2E_NS_GW" /usr/bin/python3 - "$PORT" "$DPID" <<'PY' || e2e_fail "hostile clients"
import os, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
addr = ("127.0.0.1", port)
# early close without reading, many times (SIGPIPE would kill the daemon)
for _ in range(50):
    s = socket.create_connection(addr, timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
# 200 silent connections and one trickling client, while SIGHUPs ask for passes
silent = []
for _ in range(200):
    try:
        silent.append(socket.create_connection(addr, timeout=2))
    except OSError:
        pass
# a probe among them is answered at once (the cap is above 200)
p = socket.create_connection(addr, timeout=2)
p.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
head = p.recv(64)
assert head[:9] in (b"HTTP/1.0 ", b"HTTP/1.1 ") and head[9:12] == b"200", head
p.close()
t = socket.create_connection(addr, timeout=5)
for i, b in enumerate(b"GET /healthz HTTP/1.1\r\n"):
    try:
        t.send(bytes([b]))
    except OSError:
        break
    if i % 8 == 0:
        os.kill(pid, signal.SIGHUP)
    time.sleep(0.25)
os.kill(pid, 0)
for s in silent:
    s.close()
t.close()
PY
kill -0 "$DPID" || e2e_fail "the daemon died under hostile clients"
wait_passes $((before + 2))
i=0
until [ "$(http /healthz)" = 200 ]; do
	i=$((i + 1))
	[ $i -lt 20 ] || e2e_fail "/healthz not back after the hostile clients"
	sleep 0.5
done

e2e_say "a 429 with Retry-After 120: no call before it, said in /readyz and /metrics"
e2e_emu_clear_log
e2e_admin POST /faults '{"rules":[{"method":"GET","path":"/ipsec_tunnels$","action":"status","status":429,"retry_after":120,"count":-1}]}' >/dev/null
before=$(passes)
kill -HUP "$DPID"
wait_passes $((before + 1))
for _ in 1 2 3 4 5; do
	kill -HUP "$DPID"
	sleep 1
done
wait_passes $((before + 6))
[ "$(lists)" = 1 ] || e2e_fail "$(lists) list calls during the Retry-After (want 1)"
[ "$(http /readyz)" = 503 ] || e2e_fail "/readyz not 503 while rate-limited"
grep -q "rate-limited by Cloudflare until 20" "$E2E_DIR/http.body" ||
	e2e_fail "/readyz does not say until when: $(cat "$E2E_DIR/http.body")"
http /metrics >/dev/null
until=$(sed -n 's/^tunnelsync_api_rate_limited_until_timestamp_seconds \([0-9]*\)$/\1/p' "$E2E_DIR/http.body")
now=$(date +%s)
[ -n "$until" ] && [ "$until" -gt $((now + 100)) ] || e2e_fail "metrics: rate-limited until '$until' (now $now)"
grep -q 'tunnelsync_api_requests_total{operation="list",code="429"} 1' "$E2E_DIR/http.body" ||
	e2e_fail "metrics: the 429 is not counted"
/usr/bin/python3 - "$E2E_DIR/state/status.json" <<'PY' || e2e_fail "status.json conditions while rate-limited"
import json, sys
c = {x["type"]: x for x in json.load(open(sys.argv[1]))["conditions"]}
assert c["Stalled"]["status"] == "True" and c["Stalled"]["reason"] == "RateLimited", c
assert "held until" in c["Stalled"]["message"], c
PY

e2e_say "SIGTERM, then once: the hold outlives the process"
kill -TERM "$DPID"
rc=0
wait "$DPID" || rc=$?
DPID=
[ "$rc" -eq 0 ] || e2e_fail "the daemon exited $rc on SIGTERM"
# `once` in a loop, as a cron job or a shell loop would run it.
for n in 1 2 3; do
	e2e_ts once-held-$n once || true
	[ "$(lists)" = 1 ] || e2e_fail "once (run $n) called the API during the Retry-After"
	grep -q "no API request before 20" "$E2E_DIR/out/"*-once-held-$n.err ||
		e2e_fail "once (run $n) does not say it is held"
done
# The hold ends only when it ends: here the test clears it by hand.
rm "$E2E_DIR/state/api-state.json"
e2e_admin DELETE /faults >/dev/null

e2e_say "an IKE SA terminated while a full pass's list is held back 4 s: back before the list returns"
start_daemon
wait_passes 1
sleep 1 # the first pass's own events read: the next full pass starts quiet
e2e_admin POST /faults '{"rules":[{"method":"GET","path":"/ipsec_tunnels$","action":"delay","delay":4,"count":1}]}' >/dev/null
from=$(($(wc -l <"$E2E_DIR/daemon.log") + 1))
kill -HUP "$DPID"
i=0
until tail -n "+$from" "$E2E_DIR/daemon.log" | grep -q 'GET / (attempt 1)'; do
	i=$((i + 1))
	[ $i -lt 100 ] || e2e_fail "the SIGHUP's pass did not list"
	sleep 0.05
done
sleep 0.5
t0=$(date +%s%N)
e2e_swanctl a --terminate --force --ike ts-e2e-b >/dev/null 2>&1 || true
i=0
until e2e_ike_up e2e-b; do
	i=$((i + 1))
	[ $i -lt 25 ] || e2e_fail "e2e-b not back within 2.5 s of its termination (the list still held)"
	sleep 0.1
done
ms=$((($(date +%s%N) - t0) / 1000000))
tail -n "+$from" "$E2E_DIR/daemon.log" >"$E2E_DIR/during-list.log"
grep -q "observation: during Cloudflare's list: events: scoped stage" "$E2E_DIR/during-list.log" ||
	e2e_fail "no nested scope during the list: $(cat "$E2E_DIR/during-list.log")"
# The full observation's timing line comes once the list is in: after.
nested=$(grep -n "during Cloudflare's list: events: scoped stage" "$E2E_DIR/during-list.log" | head -n 1 | cut -d: -f1)
listed=$(grep -n 'observed: cloudflare' "$E2E_DIR/during-list.log" | head -n 1 | cut -d: -f1)
[ -z "$listed" ] || [ "$nested" -lt "$listed" ] ||
	e2e_fail "the nested scope came after the list: $(cat "$E2E_DIR/during-list.log")"
echo "   e2e-b back ${ms} ms after its termination, the pass's list still held back" >&2
wait_passes $(($(passes) + 1))
kill -TERM "$DPID"
wait "$DPID" || e2e_fail "the daemon exited non-zero"
DPID=
e2e_admin DELETE /faults >/dev/null

e2e_say "SIGTERM while a pass waits on a silent API: out within a few seconds"
start_daemon
wait_passes 1
before=$(passes)
e2e_admin POST /faults '{"rules":[{"method":"GET","path":"/ipsec_tunnels$","action":"delay","delay":15,"count":-1}]}' >/dev/null
kill -HUP "$DPID"
sleep 2
t0=$(date +%s)
kill -TERM "$DPID"
rc=0
wait "$DPID" || rc=$?
DPID=
t1=$(date +%s)
[ "$rc" -eq 0 ] || e2e_fail "exit $rc on SIGTERM mid-pass"
[ $((t1 - t0)) -le 6 ] || e2e_fail "took $((t1 - t0)) s to stop mid-pass"
echo "   stopped in $((t1 - t0)) s" >&2
e2e_admin DELETE /faults >/dev/null
e2e_journal_empty || e2e_fail "a journal entry was left inconsistent"

e2e_say "a reload into an unusable state directory keeps the last good agent"
start_daemon
wait_passes 1
cp "$E2E_DIR/config.json" "$E2E_DIR/config.good"
: >"$E2E_DIR/not-a-dir"
sed "s|\"state-directory\": \"$E2E_DIR/state\"|\"state-directory\": \"$E2E_DIR/not-a-dir\"|" \
	"$E2E_DIR/config.good" >"$E2E_DIR/config.tmp"
mv "$E2E_DIR/config.tmp" "$E2E_DIR/config.json"
i=0
until grep -q 'the agent cannot open.*keeping revision' "$E2E_DIR/daemon.log"; do
	i=$((i + 1))
	[ $i -lt 20 ] || e2e_fail "no 'keeping revision' after the unusable state directory"
	sleep 0.5
done
kill -0 "$DPID" || e2e_fail "the daemon died on an unusable state directory"
before=$(passes)
kill -HUP "$DPID"
wait_passes $((before + 1))
http /metrics >/dev/null
grep -q '^tunnelsync_config_last_reload_successful 0$' "$E2E_DIR/http.body" ||
	e2e_fail "config_last_reload_successful not 0"
[ "$(http /readyz)" = 200 ] || e2e_fail "not ready on the last good revision"
kill -TERM "$DPID"
wait "$DPID" || e2e_fail "exit status on SIGTERM"
DPID=
mv "$E2E_DIR/config.good" "$E2E_DIR/config.json"

e2e_say "a FIFO in place of api-state.json: refused at once, named, then replaced by a file"
rm -f "$E2E_DIR/state/api-state.json"
mkfifo -m 0600 "$E2E_DIR/state/api-state.json"
once_with_fifo "$E2E_DIR/once-fifo-api.log" "api-state.json not read: not a regular file"
[ -f "$E2E_DIR/state/api-state.json" ] && [ ! -p "$E2E_DIR/state/api-state.json" ] ||
	e2e_fail "api-state.json not rewritten as a regular file after the pass"
e2e_say "daemon-limits OK"
