#!/bin/sh
# Benchmark: one `tunnelsync plan` against the state of N tunnels
# (tests/bench/scale-state.sh: charon holding N connections and keys, the
# kernel 3N policies, the API emulator N tunnels), side by side with the
# bare reads of the same state in the same run: `ip xfrm policy show` +
# `swanctl --list-conns` + one GET of the tunnel list. Prints the CPU
# seconds (user + system, best of 3) of each, their ratio (goal <= 1.5)
# and plan's peak RSS. Figures only: nothing is asserted about them; the
# run fails only when a step fails.
#
#   plan-scale.sh TUNNELSYNC [N...]     (default N: 100; 1000 and 10000 by hand)
# Root (namespaces); exit 77 with the reason when something is missing.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TS=${1:?usage: plan-scale.sh TUNNELSYNC [N...]}
shift
[ $# -gt 0 ] || set -- 100
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
for tool in ip swanctl curl /usr/lib/ipsec/charon /usr/bin/python3; do
	command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool is not installed"; exit 77; }
done
export TS

DIR=
cleanup() {
	rc=$?
	set +e
	[ -z "$DIR" ] || { sh "$ROOT/tests/bench/scale-state.sh" down "$DIR"; rm -rf "$DIR"; }
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# cpu CMD...: prints "cpu_seconds maxrss_kib" of one run of CMD and its
# children (getrusage, microseconds; output dropped; exit 0 or 2 is fine).
cpu() {
	/usr/bin/python3 -c '
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
if r.returncode not in (0, 2):
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

echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
for n in "$@"; do
	DIR=$(mktemp -d "/tmp/tsb-plan.$$.XXXXXX")
	sh "$ROOT/tests/bench/scale-state.sh" up "$n" "$DIR/s"
	. "$DIR/s/env"
	export NS STRONGSWAN_CONF VICI TOKEN EMU_URL ACCOUNT
	bare=$(best sh -c "
		ip netns exec $NS ip xfrm policy show
		STRONGSWAN_CONF=$STRONGSWAN_CONF swanctl --list-conns --uri unix://$VICI
		printf 'header = \"Authorization: Bearer %s\"\n' \"\$(cat $TOKEN)\" |
			ip netns exec $NS curl -sS -K - $EMU_URL/client/v4/accounts/$ACCOUNT/magic/ipsec_tunnels")
	plan=$(best ip netns exec "$NS" "$TS" plan -c "$CONFIG" --log-level error)
	awk -v n="$n" -v b="${bare% *}" -v p="${plan% *}" -v rss="${plan#* }" 'BEGIN {
		printf "plan %5d tunnels: %.3f CPU-s, peak RSS %.1f MiB; bare reads %.3f CPU-s; ratio %.2fx (goal <= 1.5)\n",
			n, p, rss / 1024, b, (b > 0 ? p / b : 0) }'
	sh "$ROOT/tests/bench/scale-state.sh" down "$DIR/s"
	rm -rf "$DIR"
	DIR=
done
