#!/bin/sh
# Benchmark: one `tunnelsync plan` against the state of N tunnels
# (tests/bench/scale-state.sh), side by side with the bare reads of the
# same state in the same run, two ways:
#   - in sync (the state the agent bootstrapped; kernel-xfrm off, the
#     charons doing ESP in userspace): plan must say in sync (exit 0);
#     bare reads `swanctl --list-conns` + `swanctl --list-sas` + one GET
#     of the tunnel list;
#   - full matching state (the same plus 3N kernel policies, kernel-xfrm
#     on; this kernel holds no ESP SAs, so plan proposes a reauth per
#     tunnel, exit 2): bare reads the same plus `ip xfrm policy show`.
# Prints the CPU seconds (user + system, best of 3) of each, their ratio
# (goal <= 1.5) and plan's peak RSS. Figures only: nothing is asserted
# about them; the run fails only when a step fails.
#
#   plan-scale.sh TUNNELSYNC [N...]     (default N: 100; 1000 and 10000 by hand)
# SCALE_NOT_IN_SYNC=1 with SCALE_STATE: a state whose bootstrap did not
# converge (10,000 tunnels here): the "in sync" plan's exit 2 is taken, and
# its figures are those of that partial state.
# Root (namespaces); exit 77 with the reason when something is missing.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TS=${1:?usage: plan-scale.sh TUNNELSYNC [N...]}
shift
[ $# -gt 0 ] || set -- 100
. "$ROOT/tests/bench/scale-lib.sh"
scale_require

# cpu CMD...: prints "cpu_seconds maxrss_kib" of one run of CMD and its
# children (getrusage, microseconds; output dropped); an exit status other
# than $OK (default 0) fails.
cpu() {
	/usr/bin/python3 -c '
import os, resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
if r.returncode != int(os.environ.get("OK", "0")):
    sys.stderr.write(r.stderr.decode(errors="replace"))
    sys.exit(r.returncode)
print("%.4f %d" % (u.ru_utime + u.ru_stime, u.ru_maxrss))' "$@"
}

best() { # best of 3 CPU figures of CMD; prints "cpu rss"
	b=
	for _ in 1 2 3; do
		r=$(cpu "$@")
		c=${r% *}
		if [ -z "$b" ] || awk -v a="$c" -v b="${b% *}" 'BEGIN { exit !(a < b) }'; then
			b=$r
		fi
	done
	echo "$b"
}

[ -z "${SCALE_STATE:-}" ] || set -- "$(. "$SCALE_STATE/env" && echo "$N")"
for n in "$@"; do
	scale_open "$n" plan
	reads="STRONGSWAN_CONF=$STRONGSWAN_CONF swanctl --list-conns --uri unix://$VICI
		STRONGSWAN_CONF=$STRONGSWAN_CONF swanctl --list-sas --uri unix://$VICI
		printf 'header = \"Authorization: Bearer %s\"\n' \"\$(cat $TOKEN)\" |
			ip netns exec $NS curl -sS -K - $EMU_URL/client/v4/accounts/$ACCOUNT/magic/ipsec_tunnels"
	bare=$(best sh -c "$reads")
	[ "${SCALE_NOT_IN_SYNC:-0}" = 1 ] && export OK=2
	plan=$(best ip netns exec "$NS" "$TS" plan -c "$CONFIG" --log-level error)
	OK=0
	bare_k=$(best sh -c "ip netns exec $NS ip xfrm policy show
		$reads")
	export OK=2
	plan_k=$(best ip netns exec "$NS" "$TS" plan -c "$CONFIG_KERNEL" --log-level error)
	OK=0
	sync="in sync"
	[ "${SCALE_NOT_IN_SYNC:-0}" != 1 ] || sync="partly in sync (bootstrap not converged)"
	for v in "$sync:$plan:$bare" "full state, kernel-xfrm on:$plan_k:$bare_k"; do
		IFS=: read -r what p b <<-EOF
		$v
		EOF
		awk -v n="$n" -v w="$what" -v b="${b% *}" -v p="${p% *}" -v rss="${p#* }" 'BEGIN {
			printf "plan %5d tunnels, %s: %.3f CPU-s, peak RSS %.1f MiB; bare reads %.3f CPU-s; ratio %.2fx (goal <= 1.5)\n",
				n, w, p, rss / 1024, b, (b > 0 ? p / b : 0) }'
	done
	scale_close
done
