#!/bin/sh
# `once --dry-run` prints the plan `plan` prints (after a sync, a key
# regenerated on Cloudflare: the same lines, summary included) and changes
# nothing anywhere: the emulator sees only
# validate_only writes (and at least one when rotations are due), no key
# changes, the state directory is unchanged (no record, no journal), the
# gateway charon has the same connections and SAs.
# Usage: dry-run.sh TUNNELSYNC_BINARY
set -eu
E2E_TS=${1:?usage: dry-run.sh TUNNELSYNC_BINARY}
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_require_commands once plan status
e2e_up

only_validate() {
	w=$(e2e_emu_writes)
	[ -n "$w" ] || e2e_fail "dry-run made no validate_only call although rotations are due"
	if printf '%s\n' "$w" | grep -v 'validate_only=true' | grep -q .; then
		e2e_fail "dry-run made real API writes: $w"
	fi
}

e2e_say "dry-run at bootstrap"
rc=0
e2e_ts dry-run once --dry-run || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || e2e_fail "once --dry-run exited $rc"
only_validate
[ -z "$(e2e_emu_fp "$E2E_ID_A")$(e2e_emu_fp "$E2E_ID_B")" ] || e2e_fail "dry-run set a key"
[ ! -e "$E2E_DIR/edge/hook.log" ] || e2e_fail "the edge got a key from a dry-run"
[ -z "$(find "$E2E_DIR/state" -type f ! -name lock 2>/dev/null)" ] ||
	e2e_fail "dry-run wrote state files: $(find "$E2E_DIR/state" -type f)"
[ -z "$(e2e_swanctl a --list-conns 2>/dev/null)" ] || e2e_fail "dry-run loaded a connection"

e2e_say "dry-run with a regenerated key after sync"
e2e_bootstrap
e2e_api POST "/$E2E_ID_A/psk_generate" '{}' >/dev/null
e2e_emu_clear_log
before_state=$(e2e_state_digest)
before_fp=$(e2e_emu_fp "$E2E_ID_A")/$(e2e_emu_fp "$E2E_ID_B")
before_lg=$(e2e_emu_last_generated "$E2E_ID_A")
e2e_swanctl a --list-conns >"$E2E_DIR/conns.before" 2>/dev/null
e2e_swanctl a --list-sas 2>/dev/null | grep -E 'ESTABLISHED|INSTALLED|#' | sed 's/, [0-9]*s ago//; s/[0-9]*s ago//g' >"$E2E_DIR/sas.before"
rc=0
e2e_ts plan plan || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "plan exited $rc, expected 2 (a rotation is due)"
cp "$E2E_LAST_OUT" "$E2E_DIR/plan.out"
grep -q "^Plan: .*1 to rotate" "$E2E_DIR/plan.out" || e2e_fail "plan: no summary line with the rotation"
rc=0
e2e_ts dry-run once --dry-run || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || e2e_fail "once --dry-run exited $rc"
# The same plan as `plan` printed, then its pass line.
grep -v '^pass: ' "$E2E_LAST_OUT" >"$E2E_DIR/dry-run.plan"
cmp -s "$E2E_DIR/plan.out" "$E2E_DIR/dry-run.plan" || {
	diff "$E2E_DIR/plan.out" "$E2E_DIR/dry-run.plan" >&2 || true
	e2e_fail "once --dry-run does not print the plan that plan prints"
}
only_validate
[ "$(e2e_emu_fp "$E2E_ID_A")/$(e2e_emu_fp "$E2E_ID_B")" = "$before_fp" ] || e2e_fail "dry-run changed a key"
[ "$(e2e_emu_last_generated "$E2E_ID_A")" = "$before_lg" ] || e2e_fail "dry-run moved last_generated_on"
[ "$(e2e_state_digest)" = "$before_state" ] || e2e_fail "dry-run changed the state directory"
e2e_swanctl a --list-conns >"$E2E_DIR/conns.after" 2>/dev/null
cmp -s "$E2E_DIR/conns.before" "$E2E_DIR/conns.after" || e2e_fail "dry-run changed the gateway's connections"
e2e_swanctl a --list-sas 2>/dev/null | grep -E 'ESTABLISHED|INSTALLED|#' | sed 's/, [0-9]*s ago//; s/[0-9]*s ago//g' >"$E2E_DIR/sas.after"
cmp -s "$E2E_DIR/sas.before" "$E2E_DIR/sas.after" || {
	diff "$E2E_DIR/sas.before" "$E2E_DIR/sas.after" >&2 || true
	e2e_fail "dry-run changed the gateway's SAs"
}
e2e_say "dry-run OK"
