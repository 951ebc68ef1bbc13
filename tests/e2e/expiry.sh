#!/bin/sh
# Expiry: keys with max-age 3600 s (the model's minimum). There is no clock
# override in the agent, so the agent runs under libfaketime two hours
# ahead (the charons and the emulator keep real time): `plan` shows
# rotate/max-age (the redundancy group defers the second tunnel), `once`
# passes rotate both, one per pass, and the tunnels end in sync.
# Usage: expiry.sh TUNNELSYNC_BINARY
set -eu
E2E_TS=${1:?usage: expiry.sh TUNNELSYNC_BINARY}
E2E_MAX_AGE=3600
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_require_commands once plan status
command -v faketime >/dev/null 2>&1 || e2e_skip "faketime is not installed (Debian package faketime)"
e2e_up
e2e_bootstrap
fp_a=$(e2e_emu_fp "$E2E_ID_A")
fp_b=$(e2e_emu_fp "$E2E_ID_B")
rc=0
e2e_ts plan plan || rc=$?
[ "$rc" -eq 0 ] || e2e_fail "fresh keys: plan exited $rc"

e2e_say "two hours later (faketime): keys past max-age"
# ASan (sanitizer builds) must otherwise come first among preloads.
E2E_WRAP="env FAKETIME_DONT_FAKE_MONOTONIC=1 ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0 faketime -f +2h"
rc=0
e2e_ts plan-json plan --json || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "plan exited $rc, expected 2"
e2e_plan_actions "$E2E_LAST_OUT" >"$E2E_DIR/actions.txt"
grep -q '^rotate e2e-[ab] max-age apply$' "$E2E_DIR/actions.txt" ||
	e2e_fail "no rotate/max-age: $(cat "$E2E_DIR/actions.txt")"
[ "$(grep -c '^rotate ' "$E2E_DIR/actions.txt")" -eq 1 ] ||
	e2e_fail "a redundancy group must rotate one tunnel at a time: $(cat "$E2E_DIR/actions.txt")"
grep -q '^defer-rotation e2e-[ab] ' "$E2E_DIR/actions.txt" ||
	e2e_fail "the group peer's rotation is not deferred: $(cat "$E2E_DIR/actions.txt")"

e2e_once_until_synced 8
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
e2e_assert_tunnel_ok e2e-b "$E2E_ID_B"
[ "$(e2e_emu_fp "$E2E_ID_A")" != "$fp_a" ] || e2e_fail "e2e-a was not rotated"
[ "$(e2e_emu_fp "$E2E_ID_B")" != "$fp_b" ] || e2e_fail "e2e-b was not rotated"
e2e_journal_empty || e2e_fail "journal not empty"
e2e_say "expiry OK"
