#!/bin/sh
# A resumed rotation against a slow edge (issue 12, rotation at scale): the
# edge charon answers every request 4 s late (strongSwan's
# charon.send_delay, responses only), so a make-before-break
# reauthentication takes about 8 s (IKE_SA_INIT, then IKE_AUTH): longer than
# confirm-timeout (5 s). The gateway's charon retransmits after 2, 4.8 and
# 8.7 s here, so the late answers are taken. e2e-traffic-fallback is the
# other side: an edge that never answers the second IKE_SA_INIT.
#
#   1. `tunnelsync rotate e2e-a`: not up within confirm-timeout, the
#      rotation is left pending at step remote (exit 2);
#   2. the next pass resumes it after confirm-timeout: charon shows the new
#      IKE SA CONNECTING with the edge's SPI (the edge answered its
#      IKE_SA_INIT), so the pass waits for it: no break-before-make, no new
#      request; it comes up and the pass commits the rotation (exit 0);
#   3. charon's log: one IKE SA initiated for e2e-a since the rotation, the
#      old one deleted only after the new one was established; keys agree.
set -eu
E2E_TS=${1:?usage: reauth-slow.sh TUNNELSYNC}
E2E_CONFIRM_TIMEOUT=20
E2E_GROUP=
E2E_QUIET=1
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_require_commands once rotate

# Responses held back 4 s keep IKE_SA_INITs half open that long: beyond
# cookie_threshold_ip (3 from one address, both tunnels' plus the retries
# of passes that re-initiate) the edge demands cookies, and each cookie
# round trip is held back too; beyond block_threshold (5) it drops them.
# Under load that never converged (update-slow: 1 run in 6 hung, "N(COOKIE)"
# answers in the edge's log): a slow edge is the subject here, not a
# DoS-protected one.
e2e_charon_settings '	send_delay = 4000
	send_delay_request = no
	send_delay_response = yes
	retransmit_timeout = 2.0
	cookie_threshold = 1000
	cookie_threshold_ip = 1000
	block_threshold = 1000'
e2e_up
# The bootstrap's SAs are slow too: a longer confirm-timeout for it.
e2e_bootstrap
E2E_CONFIRM_TIMEOUT=5
e2e_write_config

log=$E2E_DIR/a/charon.log
old=$(e2e_swanctl a --list-sas --ike ts-e2e-a --raw | sed -n 's/.*uniqueid=\([0-9]*\) .*state=ESTABLISHED.*/\1/p')
[ -n "$old" ] || e2e_fail "no IKE SA of e2e-a before the rotation"
from=$(($(wc -l <"$log") + 1))
e2e_say "rotating e2e-a (IKE SA $old) against an edge that answers 4 s late"
rc=0
e2e_ts rotate rotate e2e-a || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "1: rotate should leave the rotation pending (exit 2), got $rc: $(cat "${E2E_LAST_OUT%.out}.err")"
e2e_journal_empty && e2e_fail "1: no rotation journaled"
t1=$(date +%s%N)
rc=0
e2e_ts once once || rc=$?
err=${E2E_LAST_OUT%.out}.err
[ "$rc" -eq 0 ] || e2e_fail "2: the resumed pass exited $rc: $(cat "$err")"
grep -q 'break-before-make' "$err" && e2e_fail "2: break-before-make against a slow edge: $(cat "$err")"
e2e_waited_for_slow "$err" "the rotation's reauthentication" "$t1" 2500
grep -q 'rotation committed' "$err" || e2e_fail "2: the resumed pass did not commit: $(cat "$err")"
e2e_journal_empty || e2e_fail "2: the journal is not empty"
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"

# 3: charon's own account of it.
e2e_mbb_in_log "$from" "$old"
new=$E2E_NEW_IKE
rc=0
e2e_ts once once || rc=$?
[ "$rc" -eq 0 ] || e2e_fail "3: a pass after the rotation exited $rc"
grep -E "rotation's reauthentication|rotating the key|break-before-make this time" \
	"${E2E_LAST_OUT%.out}.err" &&
	e2e_fail "3: the pass after the rotation did more"
e2e_say "slow edge: the resumed rotation waited for its make-before-break reauthentication (IKE SA $old -> $new)"
