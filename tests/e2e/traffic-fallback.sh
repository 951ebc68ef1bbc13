#!/bin/sh
# The break-before-make fallback against a peer that refuses overlapping
# SAs (issue 11). The edge charon runs with charon.ikesa_limit = 2 (it
# answers no IKE_SA_INIT while it holds two IKE SAs, one per tunnel), so a
# make-before-break reauthentication, which needs a third IKE SA for a
# moment, is never answered: strongSwan 5.9.8's responder with unique = keep
# accepts the overlap from the same host, this limit is the refusal it can
# show. Both charons include the snippet (make-before-break on; the limit
# only bites a responder). A UDP flow crosses the tunnels (kernel-libipsec,
# 192.0.2.1 -> 192.0.2.2, as in the quickstart) during the rotation.
#
#   1. `tunnelsync rotate` of the tunnel carrying the flow: the edge ignores
#      the new IKE_SA_INIT, the rotation is left pending (exit 2), the old
#      SAs keep carrying the traffic;
#   2. a pass before confirm-timeout (10 s) leaves the unanswered attempt
#      to charon (it retries it), no new request, no fallback yet;
#   3. the first pass after confirm-timeout sees the new IKE SA's
#      IKE_SA_INIT still unanswered (responder SPI zero: refused, not slow;
#      e2e-reauth-slow is the slow edge), says so and reauthenticates
#      break-before-make: the tunnel comes up with the new key, both sides
#      agree, the journal is empty, the flow healed (its figures printed).
set -eu
E2E_TS=${1:?usage: traffic-fallback.sh TUNNELSYNC}
E2E_CONFIRM_TIMEOUT=10
E2E_GROUP=
E2E_QUIET=1
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_require_commands once rotate

e2e_charon_settings '	ikesa_limit = 2'
e2e_up
FLOW_PIDS=
fallback_cleanup() {
	rc=$?
	set +e
	for p in $FLOW_PIDS; do kill -TERM "$p" 2>/dev/null; done
	(exit "$rc")
	e2e_cleanup
}
trap fallback_cleanup EXIT
e2e_bootstrap

flow=$E2E_ROOT/tests/kernel/udpflow.py
ip -n "$E2E_NS_GW" addr add 192.0.2.1/32 dev lo
ip -n "$E2E_NS_EDGE" addr add 192.0.2.2/32 dev lo
ip netns exec "$E2E_NS_EDGE" /usr/bin/python3 "$flow" echo 5556 </dev/null >/dev/null 2>&1 &
FLOW_PIDS=$!
ip netns exec "$E2E_NS_GW" /usr/bin/python3 "$flow" send 192.0.2.1 192.0.2.2 5556 "$E2E_DIR/flow.json" \
	</dev/null >"$E2E_DIR/flow.log" 2>&1 &
send_pid=$!
FLOW_PIDS="$FLOW_PIDS $send_pid"
# 50 echoes back (a loaded machine starts python slowly), then the tunnel
# whose outbound CHILD SA carried most of them (kernel-libipsec sends
# through the newest matching one).
i=0
until [ "$(cut -d' ' -f2 "$E2E_DIR/flow.json.live" 2>/dev/null || echo -1)" -ge 50 ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || e2e_fail "no echo of the flow within 10 s"
	sleep 0.1
done
carrier=$(e2e_swanctl a --list-sas | awk '
	/ reqid / { c = $1; sub(":", "", c) }
	$1 == "out" { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^packets/ && $i > best) { best = $i; top = c } }
	END { print top }')
carrier=${carrier#ts-}
case "$carrier" in
e2e-a) id=$E2E_ID_A ;;
e2e-b) id=$E2E_ID_B ;;
*) e2e_fail "the flow crosses no tunnel: $(e2e_swanctl a --list-sas)" ;;
esac
e2e_say "the flow crosses $carrier; rotating it against an edge that refuses a second IKE SA"
t0=$(date +%s)
rc=0
e2e_ts rotate rotate "$carrier" || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "1: rotate should leave the rotation pending (exit 2), got $rc"
grep -q 'hitting IKE_SA limit' "$E2E_DIR/b/charon.log" ||
	e2e_fail "1: the edge did not refuse the make-before-break IKE_SA_INIT"
grep -q 'break-before-make this time' "${E2E_LAST_OUT%.out}.err" &&
	e2e_fail "1: break-before-make before confirm-timeout"
e2e_journal_empty && e2e_fail "1: no rotation journaled"
set -- $(cat "$E2E_DIR/flow.json.live")
[ $(($1 - $2)) -lt 10 ] || e2e_fail "1: the old SAs no longer carry the flow (sent $1, last echo $2)"

if [ $(($(date +%s) - t0)) -lt $((E2E_CONFIRM_TIMEOUT - 1)) ]; then
	rc=0
	e2e_ts once once || rc=$?
	grep -q 'break-before-make this time' "${E2E_LAST_OUT%.out}.err" &&
		e2e_fail "2: break-before-make before confirm-timeout"
fi
while [ $(($(date +%s) - t0)) -le "$E2E_CONFIRM_TIMEOUT" ]; do sleep 0.5; done
rc=0
e2e_ts once once || rc=$?
[ "$rc" -eq 0 ] || e2e_fail "3: the pass after confirm-timeout exited $rc: $(cat "${E2E_LAST_OUT%.out}.err")"
grep -q 'peer that refuses overlapping SAs?): break-before-make this time' "${E2E_LAST_OUT%.out}.err" ||
	e2e_fail "3: no break-before-make fallback: $(cat "${E2E_LAST_OUT%.out}.err")"
e2e_assert_tunnel_ok "$carrier" "$id"
e2e_journal_empty || e2e_fail "3: the journal is not empty after the fallback"
sleep 2
kill -TERM "$send_pid"
wait "$send_pid" || e2e_fail "the UDP flow failed: $(cat "$E2E_DIR/flow.log")"
set -- $(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["sent"], r["lost"], r["outage_ms"], r["tail_lost"])' "$E2E_DIR/flow.json")
echo "TRAFFIC fallback $carrier sent $1 lost $2 outage_ms $3 tail_lost $4"
[ "$4" -eq 0 ] || e2e_fail "the flow was not healed after the fallback ($4 of its last second lost)"
e2e_say "refusing peer: make-before-break refused, break-before-make after confirm-timeout, healed"
