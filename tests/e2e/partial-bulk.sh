#!/bin/sh
# Partial bulk failure: two tunnels without a redundancy group rotate in one
# bulk PSK call; the emulator puts e2e-a in unapplied_psks. e2e-a stays
# pending (no key at Cloudflare, nothing committed, `once` exits 2), e2e-b
# proceeds; the next passes heal e2e-a.
# Usage: partial-bulk.sh TUNNELSYNC_BINARY
set -eu
E2E_TS=${1:?usage: partial-bulk.sh TUNNELSYNC_BINARY}
E2E_GROUP=
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_require_commands once plan status
e2e_up

e2e_admin POST /faults "{\"rules\":[{\"method\":\"POST\",\"path\":\"/psk\$\",\"count\":-1,\"action\":\"unapplied\",\"ids\":[\"$E2E_ID_A\"],\"reason\":\"e2e: refused\"}]}" >/dev/null
rc=0
e2e_ts once once || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "once with an unapplied tunnel exited $rc, expected 2"
n=$(e2e_emu_writes | grep -c 'POST .*/psk$' || true)
[ "$n" -eq 1 ] || e2e_fail "expected one bulk PSK call, saw $n: $(e2e_emu_writes)"
[ -z "$(e2e_emu_fp "$E2E_ID_A")" ] || e2e_fail "e2e-a got a key although unapplied"
[ ! -f "$E2E_DIR/state/records/e2e-a.rec" ] || e2e_fail "e2e-a committed although unapplied"
# Cloudflare provably did not take the key: its journal entry is dropped.
[ ! -f "$E2E_DIR/state/journal/e2e-a.jnl" ] || e2e_fail "e2e-a's unapplied rotation left a journal entry"
e2e_wait_ike_up e2e-b 30 || {
	# b may need a second pass to confirm; pending is allowed, loss is not.
	e2e_ts once once || true
	e2e_wait_ike_up e2e-b 30 || e2e_fail "e2e-b did not proceed"
}
e2e_ike_up e2e-a && e2e_fail "e2e-a is up without a key"
rc=0
e2e_ts plan-json plan --json || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "plan after partial failure exited $rc, expected 2"
e2e_plan_actions "$E2E_LAST_OUT" | grep -q '^rotate e2e-a ' || e2e_fail "e2e-a not pending in plan"

e2e_say "fault cleared: next passes heal e2e-a"
e2e_admin DELETE /faults >/dev/null
e2e_once_until_synced 6
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
e2e_assert_tunnel_ok e2e-b "$E2E_ID_B"
e2e_journal_empty || e2e_fail "journal not empty"
e2e_say "partial-bulk OK"
