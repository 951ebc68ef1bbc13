#!/bin/sh
# A key regenerated on the emulator behind the agent's back (psk_generate:
# the edge gets it through the hook, the gateway's key is stale): `plan`
# shows rotate/regenerated for that tunnel, `once` heals it: IKE up,
# fingerprints equal, the other tunnel untouched.
# Usage: regenerated.sh TUNNELSYNC_BINARY
set -eu
E2E_TS=${1:?usage: regenerated.sh TUNNELSYNC_BINARY}
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_require_commands once plan status
e2e_up
e2e_bootstrap
fp_b=$(e2e_emu_fp "$E2E_ID_B")

e2e_say "psk_generate on the emulator behind the agent's back"
e2e_api POST "/$E2E_ID_A/psk_generate" '{}' >/dev/null
fp_regen=$(e2e_emu_fp "$E2E_ID_A")

rc=0
e2e_ts plan-json plan --json || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "plan exited $rc, expected 2"
e2e_plan_actions "$E2E_LAST_OUT" >"$E2E_DIR/actions.txt"
grep -q '^rotate e2e-a regenerated apply$' "$E2E_DIR/actions.txt" ||
	e2e_fail "plan has no rotate/regenerated for e2e-a: $(cat "$E2E_DIR/actions.txt")"
if grep -q '^rotate e2e-b' "$E2E_DIR/actions.txt"; then
	e2e_fail "plan rotates e2e-b too"
fi

e2e_say "once heals it"
e2e_once_until_synced 6
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
e2e_assert_tunnel_ok e2e-b "$E2E_ID_B"
[ "$(e2e_emu_fp "$E2E_ID_A")" != "$fp_regen" ] || e2e_fail "e2e-a still on the regenerated key"
[ "$(e2e_emu_fp "$E2E_ID_B")" = "$fp_b" ] || e2e_fail "e2e-b's key changed"
e2e_journal_empty || e2e_fail "journal not empty"
rc=0
e2e_ts plan plan || rc=$?
[ "$rc" -eq 0 ] || e2e_fail "plan after healing exited $rc"
e2e_say "regenerated OK"
