# Helpers of the traffic suites (sourced after tests/e2e/lib.sh by
# tests/kernel/traffic.sh and traffic-xfrmi.sh; POSIX sh): UDP sequence
# flows (tests/kernel/udpflow.py) from the gateway namespace, their results
# and the assertions on them. The caller sets FLOW (udpflow.py), PORT (the
# echo's), SCENARIO (the name results are filed under) and defines
# flow_src NAME / flow_dst NAME (a flow's source and destination address).
# Results: $E2E_DIR/results, "SCENARIO NAME sent lost outage_ms tail_lost"
# lines; FLOWS holds the running flows' PIDs (for the caller's EXIT trap).

FLOWS=

# flow_start NAME...: one flow per tunnel, results in flows/SCENARIO-NAME.
flow_start() {
	mkdir -p "$E2E_DIR/flows"
	FLOWS=
	for n in "$@"; do
		ip netns exec "$E2E_NS_GW" /usr/bin/python3 "$FLOW" send "$(flow_src "$n")" \
			"$(flow_dst "$n")" "$PORT" "$E2E_DIR/flows/$SCENARIO-$n" </dev/null \
			>>"$E2E_DIR/flows/log" 2>&1 &
		FLOWS="$FLOWS $!"
	done
	# Every flow under way (its progress file written) before acting.
	for n in "$@"; do
		i=0
		while [ ! -f "$E2E_DIR/flows/$SCENARIO-$n.live" ]; do
			i=$((i + 1))
			[ $i -lt 100 ] || e2e_fail "flow $n did not start"
			sleep 0.1
		done
	done
	sleep 1
}

# flow_wait_healed NAME MAX_S: waits until the flow's last echo is recent
# (fewer than 10 packets in flight unanswered); fails after MAX_S.
flow_wait_healed() {
	n=$1
	end=$(($(date +%s) + $2))
	while :; do
		set -- $(cat "$E2E_DIR/flows/$SCENARIO-$n.live" 2>/dev/null || echo "0 -1")
		# Then 2 s more: the old SAs of the peer go away just after.
		if [ $(($1 - $2)) -lt 10 ]; then
			sleep 2
			return 0
		fi
		[ "$(date +%s)" -lt "$end" ] || e2e_fail "$SCENARIO: $n carries no traffic after ${end}s"
		sleep 0.2
	done
}

# flow_stop: stops the flows (after a last second of traffic) and records
# "SCENARIO NAME sent lost outage_ms tail_lost" lines in results.
flow_stop() {
	sleep 1
	for p in $FLOWS; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $FLOWS; do
		wait "$p" 2>/dev/null || true
	done
	FLOWS=
	for f in "$E2E_DIR/flows/$SCENARIO"-*; do
		case "$f" in *.live | *.tmp) continue ;; esac
		n=${f##*/"$SCENARIO"-}
		line=$(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["sent"], r["lost"], r["outage_ms"], r["tail_lost"])' "$f")
		echo "$SCENARIO $n $line" >>"$E2E_DIR/results"
		set -- $line
		echo "TRAFFIC $SCENARIO $n sent $1 lost $2 outage_ms $3 tail_lost $4"
		# When something was lost: when (the longest runs) and send errors.
		[ "$2" -eq 0 ] || /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("   lost runs [s after start, packets]: %s; send errors %s" % (r.get("runs"), r.get("send_errors")))' "$f"
	done
}

# result SCENARIO NAME FIELD: sent | lost | outage | tail
result() {
	awk -v s="$1" -v n="$2" -v f="$3" '$1 == s && $2 == n {
		if (f == "sent") print $3; else if (f == "lost") print $4;
		else if (f == "outage") print $5; else print $6 }' "$E2E_DIR/results"
}

# wait_for TRIES MESSAGE CONDITION: evaluates the shell CONDITION every
# 0.2 s until it holds; fails with MESSAGE after TRIES tries.
wait_for() {
	wf_i=0
	until eval "$3"; do
		wf_i=$((wf_i + 1))
		[ $wf_i -lt "$1" ] || e2e_fail "$2"
		sleep 0.2
	done
}

assert_lost_at_most() {
	got=$(result "$SCENARIO" "$1" lost)
	[ "$got" -le "$2" ] || e2e_fail "$SCENARIO: $1 lost $got packets, at most $2 allowed"
}

assert_healed() {
	tail=$(result "$SCENARIO" "$1" tail)
	out=$(result "$SCENARIO" "$1" outage)
	[ "$tail" -eq 0 ] || e2e_fail "$SCENARIO: $1 still losing packets at the end ($tail in the last second)"
	[ "$out" -le $(($2 * 1000)) ] || e2e_fail "$SCENARIO: $1 outage ${out} ms, at most $2 s allowed"
}

# wait_synced S: `plan` says in sync (exit 0) within S seconds, else fails.
wait_synced() {
	end=$(($(date +%s) + $1))
	while :; do
		rc=0
		E2E_QUIET=1 e2e_ts plan plan >/dev/null 2>&1 || rc=$?
		[ "$rc" -eq 0 ] && return 0
		[ "$(date +%s)" -lt "$end" ] || { cat "$E2E_LAST_OUT" >&2; e2e_fail "$SCENARIO: not in sync after $1 s"; }
		sleep 0.5
	done
}

# flow_teardown RC PID...: for the callers' EXIT traps (errexit off): stops
# the flows and the given processes (TERM, then KILL); when RC is not 0,
# prints both namespaces' XFRM state, policies, links and routes and the
# flows' log.
flow_teardown() {
	ft_rc=$1
	shift
	for p in $FLOWS "$@"; do
		kill -TERM "$p" 2>/dev/null
	done
	sleep 0.3
	for p in $FLOWS "$@"; do
		kill -KILL "$p" 2>/dev/null
	done
	[ "$ft_rc" -ne 0 ] || return 0
	for ns in "$E2E_NS_GW" "$E2E_NS_EDGE"; do
		echo "== $ns: xfrm state, policies, links, routes" >&2
		ip -n "$ns" -s xfrm state >&2
		ip -n "$ns" xfrm policy >&2
		ip -n "$ns" -s -d link >&2
		ip -n "$ns" route >&2
	done
	cat "$E2E_DIR/flows/log" >&2
}
