#!/bin/sh
# Builds the state of a hub gateway with N tunnels, for the scale
# benchmarks (POSIX sh, root):
#   - network namespaces $PREFIX-a (gateway, 203.0.113.10) and $PREFIX-b
#     (nothing listens there: the edge is absent) joined by a veth pair
#     (tests/lib/charon-netns.sh);
#   - the Cloudflare API emulator in the gateway namespace on 127.0.0.1,
#     seeded with the N tunnels (tests/bench/scale_gen.py seed);
#   - the agent's config (scale_gen.py config: route-based tunnels by if_id
#     1000 + i, redundancy groups of two, kernel-xfrm on);
#   - a real charon (kernel-netlink) in the gateway namespace holding N
#     connections and shared keys (swanctl --load-all of scale_gen.py
#     swanctl: the sizes the agent reads, not its exact rendering);
#   - the kernel policies charon would install for N route-based CHILD SAs
#     (out/in/fwd per tunnel, by `ip -batch`; this kernel holds no ESP SAs).
#
#   scale-state.sh up N DIR     build it; writes DIR/env (sourceable: NS,
#                               CONFIG, VICI, EMU_URL, TOKEN, ACCOUNT, TS)
#   scale-state.sh down DIR     stop what up started (by PID), delete the
#                               namespaces
#
# TS (the tunnelsync binary) must be set. DIR must be empty or absent.
# Names carry the PID of `up`; documentation addresses only.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3

die() {
	echo "scale-state.sh: $*" >&2
	exit 1
}

now_ms() {
	$PY -c 'import time; print(int(time.monotonic() * 1000))'
}

cmd_up() {
	n=$1
	dir=$2
	[ -n "${TS:-}" ] && [ -x "$TS" ] || die "TS must name the tunnelsync binary"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	prefix=tsb-$$
	ns=$prefix-a
	echo "$prefix" >"$dir/prefix"
	chmod 700 "$dir"
	sh "$ROOT/tests/lib/charon-netns.sh" up "$prefix" "$dir"
	ip -n "$ns" addr add 203.0.113.10/24 dev veth0
	ip -n "$ns" route add 198.51.100.0/24 dev veth0

	mkdir -p "$dir/emu"
	mkdir -m 700 "$dir/state"
	(umask 077 && $PY -c 'import secrets; print(secrets.token_hex(20))' >"$dir/emu/token")
	$PY "$ROOT/tests/bench/scale_gen.py" seed "$n" "$dir/emu/seed.json"
	ip netns exec "$ns" $PY "$ROOT/contrib/cf-emulator/cf_emulator.py" \
		--token-file "$dir/emu/token" --seed "$dir/emu/seed.json" \
		--port 0 --port-file "$dir/emu/port" --pid-file "$dir/emu/pid" \
		</dev/null >"$dir/emu/emulator.log" 2>&1 &
	echo $! >"$dir/emu/launcher.pid"
	i=0
	while [ ! -s "$dir/emu/port" ]; do
		i=$((i + 1))
		[ $i -lt 200 ] || die "the emulator did not start"
		sleep 0.1
	done
	url=http://127.0.0.1:$(cat "$dir/emu/port")

	TS_HARNESS_KERNEL=netlink sh "$ROOT/tests/lib/charon-netns.sh" start "$prefix" a "$dir" \
		>/dev/null
	$PY "$ROOT/tests/bench/scale_gen.py" config "$n" "$dir/config.json" \
		--vici "$dir/a/charon.vici" --state "$dir/state" --api "$url/client/v4" \
		--token "$dir/emu/token"
	# Short waits: nothing answers the initiates.
	$PY - "$dir/config.json" <<'EOF'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
a = c["tunnelsync:tunnelsync"]["agent"]
a["ike-backend"]["confirm-timeout"] = 5
json.dump(c, open(p, "w"), indent=1)
EOF

	cat >"$dir/env" <<EOF
NS=$ns
PREFIX=$prefix
CONFIG=$dir/config.json
VICI=$dir/a/charon.vici
STRONGSWAN_CONF=$dir/a/strongswan.conf
EMU_URL=$url
TOKEN=$dir/emu/token
ACCOUNT=023e105f4ecef8ad9ca31a8372d0c353
TS=$TS
EOF

	# Connections and keys for charon. Not loaded by the agent: its
	# bootstrap confirms each new key one tunnel after the other (up to
	# confirm-timeout each, and nothing answers here), which takes hours
	# at this size.
	mkdir -p "$dir/a/swanctl"
	(umask 077 && $PY "$ROOT/tests/bench/scale_gen.py" swanctl "$n" "$dir/a/swanctl/swanctl.conf")
	t0=$(now_ms)
	STRONGSWAN_CONF=$dir/a/strongswan.conf SWANCTL_DIR=$dir/a/swanctl \
		swanctl --load-all --noprompt --uri "unix://$dir/a/charon.vici" >"$dir/load-all.out" 2>&1 ||
		{ tail -n 5 "$dir/load-all.out" >&2; die "swanctl --load-all failed"; }
	t1=$(now_ms)
	echo "swanctl --load-all of $n connections and keys: $((t1 - t0)) ms"

	$PY "$ROOT/tests/bench/scale_gen.py" policies "$n" "$dir/policies.batch"
	ip -n "$ns" -batch "$dir/policies.batch"
	echo "kernel policies: $(ip -n "$ns" xfrm policy count | head -n 1)"
}

cmd_down() {
	dir=$1
	[ -f "$dir/prefix" ] || return 0
	prefix=$(cat "$dir/prefix")
	for f in "$dir/emu/pid" "$dir/emu/launcher.pid"; do
		[ -s "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true
	done
	sh "$ROOT/tests/lib/charon-netns.sh" down "$prefix" "$dir" 2>/dev/null || true
}

[ $# -ge 1 ] || die "usage: up N DIR | down DIR"
op=$1
shift
case "$op" in
up) [ $# -eq 2 ] || die "usage: up N DIR"; cmd_up "$@" ;;
down) [ $# -eq 1 ] || die "usage: down DIR"; cmd_down "$@" ;;
*) die "unknown command $op" ;;
esac
