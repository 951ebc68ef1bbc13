#!/bin/sh
# A mismatched key: the edge's key changes without the API knowing (the
# emulator's last_generated_on stays), the edge drops the IKE SA, the
# gateway's attempts fail with AUTHENTICATION_FAILED → after the threshold
# (2 in the test config) the agent rotates (rotate-on-authentication-failure)
# and the tunnel is healed: IKE up, fingerprints equal.
# Usage: mismatch.sh TUNNELSYNC_BINARY
set -eu
E2E_TS=${1:?usage: mismatch.sh TUNNELSYNC_BINARY}
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_require_commands once plan status
e2e_up
e2e_bootstrap
fp_a=$(e2e_emu_fp "$E2E_ID_A")
fp_b=$(e2e_emu_fp "$E2E_ID_B")

e2e_say "edge gets another key for e2e-a and drops the IKE SA"
e2e_edge_set_key "$E2E_ID_A"
e2e_swanctl b --terminate --ike cf-e2e-a --timeout 10 >/dev/null 2>&1 || true

e2e_say "passes until the plan rotates for authentication failures"
i=0
while :; do
	rc=0
	e2e_ts plan-json plan --json || rc=$?
	[ "$rc" -eq 2 ] || e2e_fail "plan exited $rc, expected 2 (tunnel down)"
	if e2e_plan_actions "$E2E_LAST_OUT" | grep -q '^rotate e2e-a auth-failures apply$'; then
		break
	fi
	if e2e_plan_actions "$E2E_LAST_OUT" | grep -q '^rotate '; then
		e2e_fail "rotation for another cause: $(e2e_plan_actions "$E2E_LAST_OUT")"
	fi
	i=$((i + 1))
	[ $i -le 6 ] || e2e_fail "no rotate/auth-failures after $i failing passes"
	rc=0
	e2e_ts once once || rc=$?
	[ "$rc" -eq 2 ] || e2e_fail "once with a mismatched key exited $rc, expected 2"
done
e2e_say "rotate/auth-failures planned after $i passes; once heals"
e2e_once_until_synced 4
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
e2e_assert_tunnel_ok e2e-b "$E2E_ID_B"
[ "$(e2e_emu_fp "$E2E_ID_A")" != "$fp_a" ] || e2e_fail "e2e-a was not rotated"
[ "$(e2e_emu_fp "$E2E_ID_B")" = "$fp_b" ] || e2e_fail "e2e-b's key changed"
grep -q 'AUTHENTICATION_FAILED' "$E2E_DIR/a/charon.log" || e2e_fail "the gateway saw no AUTHENTICATION_FAILED"
e2e_journal_empty || e2e_fail "journal not empty"
e2e_say "mismatch OK"
