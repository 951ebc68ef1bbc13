#!/bin/sh
# Bootstrap: no key anywhere → `once` passes (a redundancy group rotates one
# tunnel per pass) until in sync → both tunnels' IKE and CHILD SAs up,
# `status` fingerprints equal the emulator's, journal empty; then `plan`
# exits 0 and a pass with nothing to do makes no API write.
# Usage: bootstrap.sh TUNNELSYNC_BINARY
set -eu
E2E_TS=${1:?usage: bootstrap.sh TUNNELSYNC_BINARY}
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_require_commands once plan status
e2e_up

e2e_say "plan before anything: changes pending"
rc=0
e2e_ts plan plan || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "plan before bootstrap exited $rc, expected 2"

e2e_say "once until in sync"
e2e_bootstrap
gen_a=$(e2e_status_fp e2e-a)

e2e_say "plan in sync: exit 0"
rc=0
e2e_ts plan plan || rc=$?
[ "$rc" -eq 0 ] || e2e_fail "plan after sync exited $rc, expected 0"

e2e_say "a pass with nothing to do makes no API write"
e2e_emu_clear_log
rc=0
e2e_ts once once || rc=$?
[ "$rc" -eq 0 ] || e2e_fail "idle once exited $rc, expected 0"
writes=$(e2e_emu_writes)
[ -z "$writes" ] || e2e_fail "idle pass wrote to the API: $writes"
[ "$(e2e_status_fp e2e-a)" = "$gen_a" ] || e2e_fail "idle pass changed e2e-a's key"
e2e_ike_up e2e-a && e2e_ike_up e2e-b || e2e_fail "idle pass took a tunnel down"
e2e_say "bootstrap OK"
