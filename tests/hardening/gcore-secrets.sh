#!/bin/sh
# Secrets out of a core of the daemon. The daemon (`tunnelsync run`) takes
# the API token from CLOUDFLARE_API_TOKEN, brings the redundant pair up,
# then heals a key regenerated behind its back (a rotation: the old key is
# replaced). A `gcore` of the running daemon after that must hold neither
# the token nor any key it has rotated away, nor the key Cloudflare
# generated that it replaced; /proc/PID/environ must not show the token.
# The API is spoken over HTTPS (the emulator with a test CA), as with
# Cloudflare: the token and the generated keys also pass through OpenSSL's
# record buffers. Secret buffers are excluded from core dumps
# (MADV_DONTDUMP, which gdb honours), libcurl's and OpenSSL's memory is
# wiped when freed (allocator hooks), the environment's copy of the token
# is wiped at start.
# Usage: gcore-secrets.sh TUNNELSYNC_BINARY
set -eu
E2E_TS=${1:?usage: gcore-secrets.sh TUNNELSYNC_BINARY}
E2E_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export E2E_ROOT
. "$E2E_ROOT/tests/e2e/lib.sh"
e2e_require
e2e_require_commands run status
command -v gcore >/dev/null || e2e_skip "gcore (gdb) not installed"
E2E_TLS=1
e2e_up
grep -q '"api-base-url": "https://' "$E2E_DIR/config.json" || e2e_fail "the API is not over HTTPS"

DPID=
gcore_cleanup() {
	rc=$?
	set +e
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		kill -TERM "$DPID" 2>/dev/null
		sleep 1
		kill -KILL "$DPID" 2>/dev/null
	fi
	[ "$rc" -eq 0 ] || { echo "== daemon log:" >&2; tail -50 "$E2E_DIR/daemon.log" >&2; }
	rm -f "$E2E_DIR"/core*
	(exit "$rc")
	e2e_cleanup
}
trap gcore_cleanup EXIT

# The token from the environment only: the path whose copies are hardest
# to get rid of (the environment block, getenv's string).
sed -i 's|"api-token-file": "[^"]*",||' "$E2E_DIR/config.json"
grep -q api-token-file "$E2E_DIR/config.json" && e2e_fail "could not drop api-token-file"
TOKEN=$(cat "$E2E_DIR/emu/token")
[ ${#TOKEN} -ge 16 ] || e2e_fail "emulator token too short to grep for"

status_gen() {
	/usr/bin/python3 -c '
import json, sys
try:
    for t in json.load(open(sys.argv[1]))["tunnels"]:
        if t["name"] == sys.argv[2]: print(t.get("key_generation") or 0)
except Exception: print(0)' "$E2E_DIR/state/status.json" "$1"
}

wait_gen() {
	i=0
	while [ "$(status_gen "$1")" -lt "$2" ] || [ "$(e2e_status_fp "$1")" != "$(e2e_emu_fp "$3")" ]; do
		i=$((i + 1))
		[ $i -lt 120 ] || e2e_fail "$1 did not reach key generation $2 in sync"
		sleep 0.5
	done
}

e2e_say "start the daemon with CLOUDFLARE_API_TOKEN"
CLOUDFLARE_API_TOKEN=$TOKEN ip netns exec "$E2E_NS_GW" "$E2E_TS" run -c "$E2E_DIR/config.json" \
	--models "$E2E_ROOT/models" >"$E2E_DIR/daemon.log" 2>&1 &
DPID=$!
wait_gen e2e-a 1 "$E2E_ID_A"
wait_gen e2e-b 1 "$E2E_ID_B"
e2e_collect_keys
cp "$E2E_DIR/keys.txt" "$E2E_DIR/old-keys.txt"

e2e_say "a key regenerated behind the daemon's back: it rotates e2e-a"
e2e_api POST "/$E2E_ID_A/psk_generate" '{}' >/dev/null
e2e_collect_keys
grep -v -x -F -f "$E2E_DIR/old-keys.txt" "$E2E_DIR/keys.txt" >>"$E2E_DIR/old-keys.txt" || true
kill -HUP "$DPID"
wait_gen e2e-a 2 "$E2E_ID_A"
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
# Let the pass finish (status is written at its end) and go idle.
sleep 2
: >"$E2E_DIR/keys.txt"
e2e_collect_keys
# Every key that is no longer current: generation 1 of e2e-a, and the one
# the emulator generated that the rotation replaced.
grep -v -x -F -f "$E2E_DIR/keys.txt" "$E2E_DIR/old-keys.txt" | sort -u >"$E2E_DIR/rotated-away.txt" || true
n_old=$(wc -l <"$E2E_DIR/rotated-away.txt")
[ "$n_old" -ge 2 ] || e2e_fail "expected at least 2 rotated-away keys, have $n_old"

e2e_say "the environment of the daemon"
if tr '\0' '\n' <"/proc/$DPID/environ" | grep -q CLOUDFLARE_API_TOKEN; then
	e2e_fail "CLOUDFLARE_API_TOKEN still in /proc/$DPID/environ"
fi
grep -a -q -F "$TOKEN" "/proc/$DPID/environ" && e2e_fail "the token is in /proc/$DPID/environ"

e2e_say "gcore of the daemon"
gcore -o "$E2E_DIR/core" "$DPID" >"$E2E_DIR/gcore.log" 2>&1 || { cat "$E2E_DIR/gcore.log" >&2; e2e_fail "gcore failed"; }
core=$(ls "$E2E_DIR"/core.* | head -1)
size=$(stat -c %s "$core")
echo "core: $size bytes" >&2
[ "$size" -gt 1000000 ] || e2e_fail "core implausibly small ($size bytes)"
fail=0
n=$(grep -a -c -F "$TOKEN" "$core" || true)
echo "token: $n matching lines in the core" >&2
[ "$n" -eq 0 ] || fail=1
while read -r k; do
	n=$(grep -a -c -F "$k" "$core" || true)
	echo "rotated-away key $(printf %s "$k" | sha256sum | cut -c1-12): $n matching lines" >&2
	[ "$n" -eq 0 ] || fail=1
done <"$E2E_DIR/rotated-away.txt"
# The current keys live only in secret buffers, which are not dumped.
while read -r k; do
	n=$(grep -a -c -F "$k" "$core" || true)
	echo "current key $(printf %s "$k" | sha256sum | cut -c1-12): $n matching lines" >&2
	[ "$n" -eq 0 ] || fail=1
done <"$E2E_DIR/keys.txt"
[ "$fail" -eq 0 ] || e2e_fail "secrets found in the core of the daemon"
grep -q "OpenSSL was used before" "$E2E_DIR/daemon.log" &&
	e2e_fail "OpenSSL's allocations are not on the wiping allocator"
# The daemon still works after being dumped.
kill -0 "$DPID" || e2e_fail "the daemon died"
e2e_say "ok: no token, no rotated-away key, no current key in a core of the daemon"
