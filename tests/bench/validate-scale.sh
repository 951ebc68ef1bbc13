#!/bin/sh
# Benchmark: `tunnelsync validate` of one config file of N tunnels
# (tests/bench/scale_gen.py config), and of the same N split into one file
# per 10 tunnels, for each N given; prints CPU seconds (best of 3), peak
# RSS and the growth factor against the previous N (linear: the factor of
# N itself). Figures only, nothing asserted about them.
#
#   validate-scale.sh TUNNELSYNC [N...]   (default 250 500 1000; by hand:
#                                          1000 2000 4000 10000)
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TS=${1:?usage: validate-scale.sh TUNNELSYNC [N...]}
shift
[ $# -gt 0 ] || set -- 250 500 1000
DIR=$(mktemp -d /tmp/tsb-validate.$$.XXXXXX)
trap 'rm -rf "$DIR"' EXIT

# "cpu_seconds maxrss_kib" of the best of 3 runs of CMD (exit 0 required).
best() {
	/usr/bin/python3 -c '
import resource, subprocess, sys
best = None
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.stderr.write(r.stderr.decode(errors="replace"))
        sys.exit(1)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    best = cpu if best is None else min(best, cpu)
print("%.4f %d" % (best, after.ru_maxrss))' "$@"
}

prev_n=
prev_one=
for n in "$@"; do
	/usr/bin/python3 "$ROOT/tests/bench/scale_gen.py" config "$n" "$DIR/one.json"
	/usr/bin/python3 "$ROOT/tests/bench/scale_gen.py" config "$n" "$DIR/split" \
		--files $(((n + 9) / 10))
	one=$(best "$TS" validate "$DIR/one.json")
	split=$(best "$TS" validate "$DIR/split")
	awk -v n="$n" -v o="${one% *}" -v rss="${one#* }" -v s="${split% *}" \
		-v pn="$prev_n" -v po="$prev_one" 'BEGIN {
		g = (pn != "" && po > 0) ? sprintf(", growth %.1fx for %.1fx tunnels", o / po, n / pn) : ""
		printf "validate %5d tunnels: %.3f CPU-s, peak RSS %.1f MiB (one file); %.3f CPU-s in %d files%s\n",
			n, o, rss / 1024, s, int((n + 9) / 10), g }'
	prev_n=$n
	prev_one=${one% *}
	rm -rf "$DIR/split" "$DIR/one.json"
done
