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

e2e_say "passes until healed (auth failures → rotation)"
e2e_once_until_synced 12
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
e2e_assert_tunnel_ok e2e-b "$E2E_ID_B"
[ "$(e2e_emu_fp "$E2E_ID_A")" != "$fp_a" ] || e2e_fail "e2e-a was not rotated"
[ "$(e2e_emu_fp "$E2E_ID_B")" = "$fp_b" ] || e2e_fail "e2e-b's key changed"
grep -q 'auth-failures' "$E2E_DIR"/out/*-once.out "$E2E_DIR"/out/*-once.err ||
	e2e_fail "no pass reported auth-failures as the cause"
grep -q 'AUTHENTICATION_FAILED' "$E2E_DIR/a/charon.log" || e2e_fail "the gateway saw no AUTHENTICATION_FAILED"
e2e_journal_empty || e2e_fail "journal not empty"
e2e_say "mismatch OK"
