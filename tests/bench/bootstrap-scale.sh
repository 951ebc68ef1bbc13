#!/bin/sh
# Benchmark: bootstrap time of N tunnels from nothing (no key anywhere, no
# connection in charon) to in sync, through the agent: `tunnelsync once`
# passes until `plan` says in sync, against the API emulator and a real
# edge charon taking each key (tests/bench/scale-state.sh does it and
# prints the time, the passes and the API requests). Figures only.
#
#   bootstrap-scale.sh TUNNELSYNC [N...]     (default N: 10; 100 by hand)
# Root (namespaces); exit 77 with the reason when something is missing.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TS=${1:?usage: bootstrap-scale.sh TUNNELSYNC [N...]}
shift
[ $# -gt 0 ] || set -- 10
. "$ROOT/tests/bench/scale-lib.sh"
scale_require
for n in "$@"; do
	scale_open "$n" boot
	scale_close
done
