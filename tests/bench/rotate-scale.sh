#!/bin/sh
# Benchmark: API requests and passes to rotate K due keys, over real HTTP
# against the API emulator and a real edge charon (tests/bench/
# scale-state.sh: N tunnels bootstrapped by the agent, in sync). For each
# K the records of K tunnels are aged by 25 hours (their files rewritten
# as the store writes them, checksum included) under a config giving
# every key a max-age of 86,400 s (a shorter one would make the state's
# other keys due too once it is an hour old: with max-age-jitter a key
# falls due from 90 % of its max-age); then `tunnelsync once` passes run until
# in sync. Due tunnels are taken one per redundancy group (t0, t2, ...)
# while K <= N/2, so that the group rules let them go in one pass; K = N
# takes both members of every group (two passes, by design; settle-time 0
# so that the second pass need not wait 150 s). Prints the
# passes and the API requests (from the emulator's request log: lists,
# bulk PSK calls, others) against the goal ceil(K/100) + 1. Each K runs
# twice: the bulk answers carrying last_generated_on as the emulator
# gives it (the agent takes the baseline of "regenerated elsewhere" from
# them: no list after the writes), then without it (a shape the schema
# allows: one list more per pass with rotations). Figures only.
#
#   rotate-scale.sh TUNNELSYNC [N [K...]]   (default N 20, K 1 10;
#                                            by hand: 1000 1 10 100 1000)
#   ROTATE_ANSWERS="time no-time" (default): which answers to run.
# Root (namespaces); exit 77 with the reason when something is missing.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TS=${1:?usage: rotate-scale.sh TUNNELSYNC [N [K...]]}
N=${2:-20}
shift
[ $# -eq 0 ] || shift
[ $# -gt 0 ] || set -- 1 10
. "$ROOT/tests/bench/scale-lib.sh"
scale_require
scale_open "$N" rot
$PY - "$CONFIG" "$WORK/config-rot.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
for t in c["tunnelsync:tunnelsync"]["tunnels"]["tunnel"]:
    t["psk"]["max-age"] = 86400
# The second member of a group waits settle-time (150 s) after its
# sibling's rotation: a wait, not requests; 0 lets K = N go in two passes.
c["tunnelsync:tunnelsync"]["agent"].setdefault("traffic", {})["settle-time"] = 0
json.dump(c, open(sys.argv[2], "w"), indent=1)
EOF

set_answers() {
	if [ "$1" = no-time ]; then
		rules='{"rules":[{"method":"POST","path":"/psk$","count":-1,"action":"variant","no_psk_metadata":true}]}'
		ip netns exec "$NS" curl -sS -X POST --data "$rules" "$EMU_URL/__admin/faults" >/dev/null
	else
		ip netns exec "$NS" curl -sS -X DELETE "$EMU_URL/__admin/faults" >/dev/null
	fi
}

# rotate_k K ANSWERS: K due keys rotated, bulk answers with or without time.
rotate_k() {
	k=$1
	answers=$2
	set_answers "$answers"
	# Age K records: applied_at 25 hours back (past max-age), checksum line recomputed.
	$PY - "$STATE/records" "$N" "$k" <<'EOF'
import hashlib, os, sys
d, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
picks = list(range(0, n, 2)) + list(range(1, n, 2)) if k > n // 2 else list(range(0, n, 2))
for i in picks[:k]:
    path = os.path.join(d, "t%05d.rec" % i)
    lines = open(path).read().split("\n")[:-2]  # without the checksum line
    out = []
    for line in lines:
        if line.startswith("applied_at="):
            line = "applied_at=%d" % (int(line[11:]) - 90000 * 1000000)
        out.append(line)
    body = "\n".join(out) + "\n"
    body += "sha256=%s\n" % hashlib.sha256(body.encode()).hexdigest()
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, body.encode())
    os.close(fd)
    os.rename(tmp, path)
EOF
	scale_clear_requests "$NS" "$EMU_URL"
	scale_sync "$NS" "$WORK/config-rot.json" "$WORK/rotate-$k.out" 10
	scale_requests "$NS" "$EMU_URL" | $PY -c '
import math, sys
k, passes = int(sys.argv[1]), int(sys.argv[2])
reqs = [line.split() for line in sys.stdin]
lists = sum(1 for m, p in reqs if m == "GET")
bulk = sum(1 for m, p in reqs if m == "POST" and p.endswith("/psk"))
print("rotate K=%d due keys, bulk answers %s: %d passes, %d API requests (%d lists, %d bulk PSK calls, %d other); goal %d"
      % (k, sys.argv[3], passes, len(reqs), lists, bulk, len(reqs) - lists - bulk,
         math.ceil(k / 100) + 1))' \
		"$k" "$PASSES" "$answers"
	# The last pass said in sync; the rotated keys are no longer due.
	rc=0
	ip netns exec "$NS" "$TS" plan -c "$WORK/config-rot.json" --log-level warn >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || { echo "plan after rotating K=$k ($answers) exited $rc" >&2; exit 1; }
}

for k in "$@"; do
	[ "$k" -le "$N" ] || { echo "K=$k > N=$N: skipped"; continue; }
	for answers in ${ROTATE_ANSWERS:-time no-time}; do
		rotate_k "$k" "$answers"
	done
done
set_answers time
