#!/bin/sh
# Proves the end-to-end environment without the reconciler: keys set
# through the emulator's API reach the edge charon through the key-change
# hook; a gateway connection loaded by hand with swanctl (rendered as
# agent/ike renders it: ts-NAME, FQDN identity, Cloudflare's proposals,
# if_id) establishes IKE and CHILD SAs for both tunnels with those keys;
# a key regenerated on the emulator reaches the edge only, and the
# gateway's reauthentication then fails.
# Usage: harness.sh TUNNELSYNC_BINARY
set -eu
E2E_TS=${1:?usage: harness.sh TUNNELSYNC_BINARY}
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_up

key_a=$(/usr/bin/python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
key_b=$(/usr/bin/python3 -c 'import secrets; print(secrets.token_urlsafe(24))')

e2e_say "bulk PSK set through the API"
e2e_api POST /psk "{\"psks\":[{\"id\":\"$E2E_ID_A\",\"psk\":\"$key_a\"},{\"id\":\"$E2E_ID_B\",\"psk\":\"$key_b\"}]}" >"$E2E_DIR/psk.json"
/usr/bin/python3 - "$E2E_DIR/psk.json" <<'EOF' || e2e_fail "bulk PSK call not applied"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["success"], r["errors"]
assert len(r["result"]["successfully_applied_psks"]) == 2, r["result"]
assert not r["result"]["unapplied_psks"]
EOF
[ "$(grep -c 'key loaded' "$E2E_DIR/edge/hook.log")" -eq 2 ] || e2e_fail "the hook did not run for both tunnels"
for n in e2e-a e2e-b; do
	[ "$(stat -c %a "$E2E_DIR/b/swanctl/secrets.d/$n.conf")" = 600 ] || e2e_fail "secrets file mode"
done
e2e_swanctl b --list-conns >/dev/null
e2e_swanctl b --list-creds 2>/dev/null | grep -q . || true

fp() {
	printf '%s' "$1" | /usr/bin/python3 -c 'import hashlib,sys; print("sha256:" + hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])'
}
[ "$(e2e_emu_fp "$E2E_ID_A")" = "$(fp "$key_a")" ] || e2e_fail "emulator fingerprint of a"
[ "$(e2e_emu_fp "$E2E_ID_B")" = "$(fp "$key_b")" ] || e2e_fail "emulator fingerprint of b"

e2e_say "gateway: connections and keys loaded by hand"
gw_conf() {
	# $1 suffix, $2 id, $3 edge address, $4 if_id, $5 key (hex)
	cat <<EOF
 ts-e2e-$1 {
  version = 2
  local_addrs = $E2E_GW_ADDR
  remote_addrs = $3
  proposals = aes256gcm16-prfsha256-ecp384
  keyingtries = 0
  mobike = no
  local { auth = psk
   id = $(e2e_gw_identity "$2") }
  remote { auth = psk
   id = $3 }
  children { ts-e2e-$1 {
   local_ts = 0.0.0.0/0
   remote_ts = 0.0.0.0/0
   esp_proposals = aes256gcm16-ecp384-noesn
   replay_window = 0
   if_id_in = $4
   if_id_out = $4
   start_action = none
  } }
 }
EOF
}
hex() {
	printf '%s' "$1" | od -An -tx1 | tr -d ' \n'
}
write_gw() {
	mkdir -p "$E2E_DIR/a/swanctl"
	(umask 077 && {
		echo "connections {"
		gw_conf a "$E2E_ID_A" "$E2E_EDGE_A" 101
		gw_conf b "$E2E_ID_B" "$E2E_EDGE_B" 102
		echo "}"
		echo "secrets {"
		echo " ike-a { id-1 = $(e2e_gw_identity "$E2E_ID_A")
  id-2 = $E2E_EDGE_A
  secret = 0x$(hex "$1") }"
		echo " ike-b { id-1 = $(e2e_gw_identity "$E2E_ID_B")
  id-2 = $E2E_EDGE_B
  secret = 0x$(hex "$2") }"
		echo "}"
	} >"$E2E_DIR/a/swanctl/swanctl.conf")
	e2e_swanctl a --load-all >"$E2E_DIR/a/load-all.out" 2>&1 || { cat "$E2E_DIR/a/load-all.out" >&2; e2e_fail "gateway: swanctl --load-all failed"; }
}
write_gw "$key_a" "$key_b"
for n in a b; do
	e2e_swanctl a --initiate --child "ts-e2e-$n" --timeout 15 >/dev/null ||
		e2e_fail "gateway: initiate ts-e2e-$n failed"
done
e2e_wait_ike_up e2e-a 20 || e2e_fail "e2e-a not up"
e2e_wait_ike_up e2e-b 20 || e2e_fail "e2e-b not up"
e2e_say "both tunnels up (IKE ESTABLISHED, CHILD INSTALLED)"

e2e_say "psk_generate behind the gateway's back: the edge gets the new key"
e2e_api POST "/$E2E_ID_A/psk_generate" '{}' >"$E2E_DIR/gen.json"
[ "$(grep -c 'key loaded for e2e-a' "$E2E_DIR/edge/hook.log")" -eq 2 ] || e2e_fail "hook did not run for psk_generate"
[ "$(e2e_emu_fp "$E2E_ID_A")" != "$(fp "$key_a")" ] || e2e_fail "fingerprint did not change"
# A new IKE SA authenticates with the gateway's old key: the edge refuses.
e2e_swanctl a --terminate --ike ts-e2e-a --timeout 10 >/dev/null 2>&1 || true
rc=0
e2e_swanctl a --initiate --child ts-e2e-a --timeout 10 >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || e2e_fail "stale key still authenticates"
grep -q 'AUTHENTICATION_FAILED' "$E2E_DIR/a/charon.log" || e2e_fail "no AUTHENTICATION_FAILED at the gateway"
e2e_ike_up e2e-b || e2e_fail "e2e-b went down"

e2e_say "gateway gets the generated key: up again"
new_key=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"]["psk"])' "$E2E_DIR/gen.json")
write_gw "$new_key" "$key_b"
e2e_swanctl a --initiate --child ts-e2e-a --timeout 15 >/dev/null || e2e_fail "initiate after key change failed"
e2e_wait_ike_up e2e-a 20 || e2e_fail "e2e-a not up with the generated key"
e2e_say "harness OK"
