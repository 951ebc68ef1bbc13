#!/bin/sh
# update-conn against a slow edge (the update-conn side of
# e2e-reauth-slow): the edge charon answers every request 6 s late
# (charon.send_delay, responses only), so the new IKE SA that a changed
# peer config needs (dpd-delay 10 -> 30 on e2e-a) takes about 12 s
# (IKE_SA_INIT, then IKE_AUTH): longer than the update's wait
# (confirm-timeout, 5 s).
#
#   1. `once` after the change: update-conn asks for the new SAs beside the
#      old ones, they are not up within 5 s: pending (exit 2), old SAs kept;
#   2. `once` again, started more than confirm-timeout after that (the old
#      rule broke the tunnel here, break-before-make): charon shows the new
#      IKE SA CONNECTING with the edge's SPI (the edge answered its
#      IKE_SA_INIT), so the pass waits for it — no break-before-make, no
#      new request — and once it is up finishes the update (exit 0);
#   3. charon's log: one IKE SA initiated for e2e-a since the change, the
#      old one deleted only after the new one was up; the SAs run the new
#      DPD delay; e2e-b untouched; the next pass is in sync.
set -eu
E2E_TS=${1:?usage: update-slow.sh TUNNELSYNC}
E2E_CONFIRM_TIMEOUT=30
E2E_GROUP=
E2E_QUIET=1
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_require_commands once

# Responses held back 6 s keep IKE_SA_INITs half open that long: beyond
# cookie_threshold_ip (3 from one address, both tunnels' plus the retries
# of passes that re-initiate) the edge demands cookies, and each cookie
# round trip is held back too; beyond block_threshold (5) it drops them.
# Under load that never converged (update-slow: 1 run in 6 hung, "N(COOKIE)"
# answers in the edge's log): a slow edge is the subject here, not a
# DoS-protected one.
e2e_charon_settings '	send_delay = 6000
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
/usr/bin/python3 - "$E2E_DIR/config.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for t in doc["tunnelsync:tunnelsync"]["tunnels"]["tunnel"]:
    if t["name"] == "e2e-a":
        t["ike"]["dpd-delay"] = 30
json.dump(doc, open(sys.argv[1], "w"), indent=1)
PY

ike_id() {
	e2e_swanctl a --list-sas --ike "ts-$1" --raw |
		sed -n 's/.*uniqueid=\([0-9]*\) .*state=ESTABLISHED.*/\1/p' | head -n 1
}
log=$E2E_DIR/a/charon.log
old=$(ike_id e2e-a)
other=$(ike_id e2e-b)
[ -n "$old" ] && [ -n "$other" ] || e2e_fail "no IKE SAs before the change"
from=$(($(wc -l <"$log") + 1))
e2e_say "dpd-delay of e2e-a changed (IKE SA $old) against an edge that answers 6 s late"
rc=0
e2e_ts once once || rc=$?
err=${E2E_LAST_OUT%.out}.err
[ "$rc" -eq 2 ] || e2e_fail "1: the update should be left pending (exit 2), got $rc: $(cat "$err")"
grep -q 'update-conn: loaded, new SAs not up' "$err" ||
	e2e_fail "1: no pending update-conn: $(cat "$err")"
[ "$(ike_id e2e-a)" = "$old" ] || e2e_fail "1: the old IKE SA $old is gone"
sleep 6 # past confirm-timeout since the first attempt: the old rule broke here
t1=$(date +%s%N)
rc=0
e2e_ts once once || rc=$?
err=${E2E_LAST_OUT%.out}.err
[ "$rc" -eq 0 ] || e2e_fail "2: the second pass exited $rc: $(cat "$err")"
grep -q 'break-before-make' "$err" && e2e_fail "2: break-before-make against a slow edge: $(cat "$err")"
e2e_waited_for_slow "$err" "update-conn's request for new SAs" "$t1" 1000
grep -q 'update-conn: done' "$err" || e2e_fail "2: the update was not finished: $(cat "$err")"

# 3: charon's own account of it.
e2e_mbb_in_log "$from" "$old"
new=$E2E_NEW_IKE
[ "$(ike_id e2e-b)" = "$other" ] || e2e_fail "3: e2e-b's IKE SA changed"
e2e_swanctl a --list-conns --raw | grep -q 'dpd_delay=30' || e2e_fail "3: charon does not hold the new DPD delay"
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
rc=0
e2e_ts once once || rc=$?
[ "$rc" -eq 0 ] || e2e_fail "3: a pass after the update exited $rc"
grep -E "update-conn|break-before-make" "${E2E_LAST_OUT%.out}.err" &&
	e2e_fail "3: the pass after the update did more"
e2e_say "slow edge: update-conn waited for its new IKE SA, make-before-break (IKE SA $old -> $new)"
