#!/bin/sh
# Guest side of the end-to-end reconcile with REAL kernel ESP SAs: runs
# inside the user-mode Linux guest (tests/kernel/run-uml: a kernel with
# XFRM, ESP, GCM), as root. It is the e2e harness (tests/e2e/lib.sh) with
# E2E_KERNEL=netlink: both charons install their CHILD SAs in the
# namespaces' XFRM state and the agent runs with "kernel-xfrm": true, so
# its kernel checks (SA pair matching, confirm after a key change, reauth
# after SA loss) meet real XFRM state, which the host-kernel e2e tests
# (kernel-libipsec) never do.
#
#   1. bootstrap: `once` until in sync; per tunnel, the gateway's XFRM
#      state holds exactly one ESP SA pair whose SPIs are the ones charon
#      reports; `status --json` says kernel_sa_pair true.
#   2. e2e-a's ESP SAs deleted behind the agent's back (`ip xfrm state
#      delete`): `plan` shows reauth/kernel-sa-missing for e2e-a only;
#      `once` heals it without an API write: a new SA pair (new SPIs,
#      charon's), kernel_sa_pair true, same key, e2e-b's SA pair untouched.
#   3. e2e-b's key regenerated on the emulator behind the agent's back:
#      `plan` shows rotate/regenerated for e2e-b only; `once` heals it with
#      the kernel SA pair confirmed (new SPIs, charon's, kernel_sa_pair).
#   4. e2e-a's CHILD proposal changed in the config: `plan` shows
#      update-conn for e2e-a only; `once` applies it with the new CHILD
#      SA's kernel pair confirmed (new SPIs, charon's, the new proposal),
#      no API write, no key change, e2e-b's SA pair untouched.
#
# Usage (in the guest): tests/kernel/e2e-real-esp.sh BUILD_DIR
#   BUILD_DIR: the build tree holding agent/tunnelsync. Exit 0 pass, 77
#   skipped (a failure under ctest: the guest has everything), else fail.
# Registered with ctest as e2e-real-esp-uml (tests/kernel/CMakeLists.txt),
# which starts it through tests/kernel/run-uml.
set -eu

build=${1:?usage: e2e-real-esp.sh BUILD_DIR}
E2E_TS=$build/agent/tunnelsync
E2E_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
E2E_KERNEL=netlink
# One slow virtual CPU: a reauth with real SAs takes longer than on the host.
E2E_CONFIRM_TIMEOUT=${E2E_CONFIRM_TIMEOUT:-120}
. "$E2E_ROOT/tests/e2e/lib.sh"
e2e_require
e2e_require_commands once plan status
e2e_up

# charon's SPIs of a tunnel's installed CHILD SA: "IN OUT" (8 hex digits
# each, lower case), nothing when none.
charon_spis() {
	e2e_swanctl a --list-sas --ike "ts-$1" 2>/dev/null | awk '
		/INSTALLED/ { inst = 1; next }
		inst && $1 == "in" { gsub(/[^0-9a-f]/, "", $2); i = $2 }
		inst && $1 == "out" { gsub(/[^0-9a-f]/, "", $2); o = $2 }
		END { if (i != "" && o != "") print i, o }'
}

# SPIs (8 hex digits) of the gateway's ESP SAs from SRC to DST, one a line.
kernel_spis() {
	ip -n "$E2E_NS_GW" xfrm state | awk -v s="$1" -v d="$2" '
		$1 == "src" { m = ($2 == s && $4 == d) }
		m && $1 == "proto" && $2 == "esp" && $3 == "spi" {
			x = $4; sub(/^0x/, "", x); print x }'
}

edge_of() {
	case $1 in
	e2e-a) echo "$E2E_EDGE_A" ;;
	e2e-b) echo "$E2E_EDGE_B" ;;
	esac
}

# The tunnel's kernel SA pair is exactly charon's CHILD SA: one inbound SA
# (edge -> gateway) with charon's inbound SPI, one outbound with charon's
# outbound SPI. Prints "IN OUT". Waits up to 20 s (a reauth may leave the
# old pair for a moment).
assert_kernel_pair() {
	name=$1
	edge=$(edge_of "$name")
	i=0
	while :; do
		spis=$(charon_spis "$name")
		kin=$(kernel_spis "$edge" "$E2E_GW_ADDR" | tr '\n' ' ' | sed 's/ $//')
		kout=$(kernel_spis "$E2E_GW_ADDR" "$edge" | tr '\n' ' ' | sed 's/ $//')
		if [ -n "$spis" ] && [ "$spis" = "$kin $kout" ]; then
			e2e_say "$name: kernel ESP SA pair in 0x$kin out 0x$kout = charon's" >&2
			echo "$spis"
			return 0
		fi
		i=$((i + 1))
		if [ $i -ge 40 ]; then
			ip -n "$E2E_NS_GW" xfrm state | grep -E '^src|proto' >&2 || true
			e2e_fail "$name: charon's CHILD SA '$spis' != kernel's ESP SAs in '$kin' out '$kout'"
		fi
		sleep 0.5
	done
}

# status --json: the tunnel's kernel check ran and found the SA pair.
assert_status_kernel() {
	e2e_ts status status --json >/dev/null || e2e_fail "status --json failed"
	got=$(/usr/bin/python3 -c '
import json, sys
for t in json.load(open(sys.argv[2]))["tunnels"]:
    if t.get("name") == sys.argv[1]:
        print(t.get("kernel_checked"), t.get("kernel_sa_pair"))' "$1" "$E2E_LAST_OUT")
	[ "$got" = "True True" ] ||
		e2e_fail "$1: status says kernel_checked/kernel_sa_pair '$got', expected True True"
}

# plan --json: exactly the expected actions line set (sorted) or fail.
assert_plan() {
	want=$1
	rc=0
	e2e_ts plan-json plan --json || rc=$?
	[ "$rc" -eq 2 ] || e2e_fail "plan exited $rc, expected 2 (changes pending)"
	e2e_plan_actions "$E2E_LAST_OUT" >"$E2E_DIR/actions.txt"
	grep -q "^$want\$" "$E2E_DIR/actions.txt" ||
		e2e_fail "plan has no '$want': $(cat "$E2E_DIR/actions.txt")"
	other=$(grep -v "^$want\$" "$E2E_DIR/actions.txt" || true)
	[ -z "$other" ] || e2e_fail "plan does more than '$want': $other"
}

e2e_say "bootstrap with kernel-netlink charons and kernel-xfrm: true"
grep -q '"kernel-xfrm": true' "$E2E_DIR/config.json" || e2e_fail "config has no kernel-xfrm true"
e2e_bootstrap
pair_a=$(assert_kernel_pair e2e-a)
pair_b=$(assert_kernel_pair e2e-b)
assert_status_kernel e2e-a
assert_status_kernel e2e-b
rc=0
e2e_ts plan plan || rc=$?
[ "$rc" -eq 0 ] || e2e_fail "plan after bootstrap exited $rc, expected 0"

e2e_say "e2e-a's ESP SAs deleted behind the agent's back"
set -- $pair_a
ip -n "$E2E_NS_GW" xfrm state delete src "$E2E_EDGE_A" dst "$E2E_GW_ADDR" proto esp spi "0x$1"
ip -n "$E2E_NS_GW" xfrm state delete src "$E2E_GW_ADDR" dst "$E2E_EDGE_A" proto esp spi "0x$2"
[ -z "$(kernel_spis "$E2E_EDGE_A" "$E2E_GW_ADDR")$(kernel_spis "$E2E_GW_ADDR" "$E2E_EDGE_A")" ] ||
	e2e_fail "e2e-a's SAs still in the kernel after the delete"
assert_plan "reauth e2e-a kernel-sa-missing apply"

e2e_say "once heals it (a reauth: no API write, same key)"
fp_a=$(e2e_emu_fp "$E2E_ID_A")
e2e_emu_clear_log
e2e_once_until_synced 6
writes=$(e2e_emu_writes)
[ -z "$writes" ] || e2e_fail "the reauth wrote to the API: $writes"
[ "$(e2e_emu_fp "$E2E_ID_A")" = "$fp_a" ] || e2e_fail "e2e-a's key changed in the reauth"
new_a=$(assert_kernel_pair e2e-a)
[ "$new_a" != "$pair_a" ] || e2e_fail "e2e-a: the SA pair has its old SPIs"
assert_status_kernel e2e-a
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
[ "$(assert_kernel_pair e2e-b)" = "$pair_b" ] || e2e_fail "e2e-b's SA pair changed"
e2e_journal_empty || e2e_fail "journal not empty after the reauth"

e2e_say "e2e-b's key regenerated on the emulator behind the agent's back"
e2e_api POST "/$E2E_ID_B/psk_generate" '{}' >/dev/null
fp_regen=$(e2e_emu_fp "$E2E_ID_B")
assert_plan "rotate e2e-b regenerated apply"

e2e_say "once heals it, the kernel's SA pair confirmed"
e2e_once_until_synced 6
e2e_assert_tunnel_ok e2e-b "$E2E_ID_B"
[ "$(e2e_emu_fp "$E2E_ID_B")" != "$fp_regen" ] || e2e_fail "e2e-b still on the regenerated key"
[ "$(e2e_emu_fp "$E2E_ID_A")" = "$fp_a" ] || e2e_fail "e2e-a's key changed"
new_b=$(assert_kernel_pair e2e-b)
[ "$new_b" != "$pair_b" ] || e2e_fail "e2e-b: the SA pair has its old SPIs after the new key"
assert_status_kernel e2e-b
[ "$(assert_kernel_pair e2e-a)" = "$new_a" ] || e2e_fail "e2e-a's SA pair changed"
e2e_journal_empty || e2e_fail "journal not empty after the rotation"
rc=0
e2e_ts plan plan || rc=$?
[ "$rc" -eq 0 ] || e2e_fail "plan after healing exited $rc, expected 0"

e2e_say "e2e-a's CHILD proposal changed: update-conn, confirmed on the new SA's kernel pair"
/usr/bin/python3 - "$E2E_DIR/config.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for t in doc["tunnelsync:tunnelsync"]["tunnels"]["tunnel"]:
    if t["name"] == "e2e-a":
        t["ike"]["child-sa"] = {"encryption-algorithm": ["aes-128-gcm-16"]}
json.dump(doc, open(sys.argv[1], "w"), indent=1)
PY
assert_plan "update-conn e2e-a conn-differs apply"
fp_b=$(e2e_emu_fp "$E2E_ID_B")
e2e_emu_clear_log
e2e_once_until_synced 6
[ -z "$(e2e_emu_writes)" ] || e2e_fail "the update wrote to the API: $(e2e_emu_writes)"
[ "$(e2e_emu_fp "$E2E_ID_A")/$(e2e_emu_fp "$E2E_ID_B")" = "$fp_a/$fp_b" ] ||
	e2e_fail "a key changed in the update"
upd_a=$(assert_kernel_pair e2e-a)
[ "$upd_a" != "$new_a" ] || e2e_fail "e2e-a: the SA pair has its old SPIs after the update"
e2e_swanctl a --list-sas --ike ts-e2e-a | grep -q "AES_GCM_16-128" ||
	e2e_fail "e2e-a's CHILD SA does not use the new proposal"
assert_status_kernel e2e-a
[ "$(assert_kernel_pair e2e-b)" = "$new_b" ] || e2e_fail "e2e-b's SA pair changed in e2e-a's update"
rc=0
e2e_ts plan plan || rc=$?
[ "$rc" -eq 0 ] || e2e_fail "plan after the update exited $rc, expected 0"
e2e_say "e2e-real-esp OK"
