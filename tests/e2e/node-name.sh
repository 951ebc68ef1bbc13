#!/bin/sh
# A fleet agent acts only on its own gateway's tunnels: both tunnels of the
# e2e config name the gateway e2e-gw. As another node (TUNNELSYNC_NODE_NAME,
# as a DaemonSet sets it from spec.nodeName) the agent plans nothing, makes
# no API write, loads nothing into charon and writes no key record; the
# status names that node. --node-name e2e-gw (which wins over the variable)
# then brings both tunnels up.
# Usage: node-name.sh TUNNELSYNC_BINARY
set -eu
E2E_TS=${1:?usage: node-name.sh TUNNELSYNC_BINARY}
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_require_commands once plan status
e2e_up

e2e_say "as another gateway's agent"
TUNNELSYNC_NODE_NAME=edge-elsewhere
export TUNNELSYNC_NODE_NAME
rc=0
e2e_ts plan-other plan || rc=$?
[ "$rc" -eq 0 ] || e2e_fail "plan as another node exited $rc: another gateway's tunnels are not ours"
grep -q 'nothing to do' "$E2E_LAST_OUT" || e2e_fail "plan as another node plans something"
rc=0
e2e_ts once-other once || rc=$?
[ "$rc" -eq 0 ] || e2e_fail "once as another node exited $rc"
[ -z "$(e2e_emu_writes)" ] || e2e_fail "API writes for another gateway's tunnels: $(e2e_emu_writes)"
[ -z "$(find "$E2E_DIR/state" -name '*.rec' -o -name '*.jnl' 2>/dev/null)" ] ||
	e2e_fail "key records written for another gateway's tunnels"
e2e_ts status-other status --json >/dev/null || e2e_fail "status failed"
grep -q '"node": *"edge-elsewhere"' "$E2E_LAST_OUT" || e2e_fail "status does not name the node edge-elsewhere"

e2e_say "--node-name e2e-gw wins over TUNNELSYNC_NODE_NAME"
e2e_once_until_synced 10 --node-name e2e-gw
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
e2e_assert_tunnel_ok e2e-b "$E2E_ID_B"
e2e_ts status-own status --json >/dev/null || e2e_fail "status failed"
grep -q '"node": *"e2e-gw"' "$E2E_LAST_OUT" || e2e_fail "status does not name the node e2e-gw"
e2e_say "node-name OK"
