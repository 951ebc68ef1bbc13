#!/bin/sh
# Builds the state of a hub gateway with N tunnels in sync, for the scale
# benchmarks (POSIX sh, root):
#   - network namespaces $PREFIX-a (gateway, 203.0.113.10) and $PREFIX-b
#     (Cloudflare's edge, 198.51.100.1-250) joined by a veth pair
#     (tests/lib/charon-netns.sh);
#   - the Cloudflare API emulator in the gateway namespace on 127.0.0.1,
#     seeded with the N tunnels (tests/bench/scale_gen.py seed), handing
#     the keys it takes to the edge charon, every key of an API call in one
#     hook run over one VICI connection (edge_key_hook.py --batch);
#   - an edge charon with N responder connections (scale_gen.py edge);
#   - the agent's config (scale_gen.py config: route-based tunnels by if_id
#     1000 + i, redundancy groups of two, kernel-xfrm off: this kernel
#     holds no ESP SAs, so both charons do ESP in userspace, libipsec);
#   - a gateway charon holding what the agent itself loaded: the state is
#     bootstrapped by `tunnelsync once` passes from nothing (no key, no
#     connection) until `plan` says in sync; the time, passes and API
#     requests of that bootstrap are printed (the bootstrap benchmark);
#   - then the kernel policies charon would install for N route-based
#     CHILD SAs (out/in/fwd per tunnel, by `ip -batch`) and a second
#     config, CONFIG_KERNEL, with kernel-xfrm on: the full matching state
#     (its plan proposes a reauth per tunnel, the kernel having no ESP SA).
#
#   scale-state.sh up N DIR     build it; writes DIR/env (sourceable: N,
#                               NS, CONFIG, CONFIG_KERNEL, STATE, VICI,
#                               EMU_URL, TOKEN, ACCOUNT, TS)
#   scale-state.sh down DIR     stop what up started (by PID), delete the
#                               namespaces
#
# TS (the tunnelsync binary) must be set. DIR must be empty or absent.
# SCALE_CONFIRM_TIMEOUT (default 30): the agent's confirm-timeout;
# SCALE_MAX_IN_FLIGHT (default: the leaf's default, 1000): its
# rotation/max-in-flight; SCALE_MAX_PASSES (default 12 + N / 1000): the
# bootstrap's passes before it gives up; SCALE_CHARON_THREADS (default 16)
# both charons' threads; SCALE_DPD_DELAY, SCALE_CHILD_LIFETIME (default:
# the leaves' defaults, 30 s and 3,600 s): every tunnel's ike/dpd-delay and
# ike/child-sa-lifetime-soft/time (at 10,000 idle tunnels the defaults mean
# 330 DPD exchanges and 3 CHILD SA rekeys a second). Each pass's time and
# exit status go to DIR/bootstrap.out.
# The benchmarks using it take SCALE_STATE=DIR: a state built before by
# `up` (kept, not torn down), so that one 1,000-tunnel bootstrap serves
# them all by hand.
# Names carry the PID of `up`; documentation addresses only.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/bench/scale-lib.sh"

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
	k=1
	while [ $k -le 250 ]; do
		echo "address add 198.51.100.$k/24 dev veth0"
		k=$((k + 1))
	done >"$dir/edge-addrs.batch"
	ip -n "$prefix-b" -batch "$dir/edge-addrs.batch"
	ip -n "$prefix-b" route add 203.0.113.0/24 dev veth0

	# Both charons quiet (their logs at 1,000 tunnels would cost more
	# than the agent), the edge taking any number of half-open SAs from
	# the one gateway address; the gateway's charon set up as the README
	# says (contrib/strongswan/tunnelsync.conf: make-before-break).
	# At thousands of IKE SAs a pass the two charons on two shared cores
	# answer in seconds, not in the harness's 1 s: a retransmission after
	# 1 s (then 1.4, 2 s) doubles the work of an exchange that was only
	# slow and gives up on it after 4 s. SCALE_RETRANSMIT_TIMEOUT (default
	# 10 s; 3 tries, base 1.5) waits for slow answers instead.
	cat >"$dir/charon-bench.conf" <<CONF
include $ROOT/contrib/strongswan/tunnelsync.conf
charon {
	block_threshold = 0
	cookie_threshold = 100000
	init_limit_half_open = 0
	retransmit_timeout = ${SCALE_RETRANSMIT_TIMEOUT:-10}
	retransmit_tries = 3
	retransmit_base = 1.5
	threads = ${SCALE_CHARON_THREADS:-16}
	filelog {
		log {
			default = 0
			ike = 0
			cfg = 0
		}
	}
}
CONF
	export TS_HARNESS_KERNEL=libipsec TS_HARNESS_CHARON_INCLUDE="$dir/charon-bench.conf"
	sh "$ROOT/tests/lib/charon-netns.sh" start "$prefix" a "$dir" >/dev/null
	sh "$ROOT/tests/lib/charon-netns.sh" start "$prefix" b "$dir" >/dev/null
	# libipsec routes every CHILD SA's 0.0.0.0/0 into its TUN device
	# (table 220, whatever install_routes says): the IKE packets to the
	# other edge addresses would go there too. No traffic is sent here.
	for s in a b; do
		ip -n "$prefix-$s" rule del table 220 2>/dev/null || true
	done
	mkdir -p "$dir/b/swanctl"
	$PY "$ROOT/tests/bench/scale_gen.py" edge "$n" "$dir/b/swanctl/swanctl.conf"
	t0=$(now_ms)
	STRONGSWAN_CONF=$dir/b/strongswan.conf SWANCTL_DIR=$dir/b/swanctl \
		swanctl --load-conns --uri "unix://$dir/b/charon.vici" >"$dir/edge-load.out" 2>&1 ||
		{ tail -n 5 "$dir/edge-load.out" >&2; die "edge: swanctl --load-conns failed"; }
	echo "edge: $n responder connections loaded in $(($(now_ms) - t0)) ms (one swanctl --load-conns)"

	mkdir -p "$dir/emu"
	mkdir -m 700 "$dir/state"
	(umask 077 && $PY -c 'import secrets; print(secrets.token_hex(20))' >"$dir/emu/token")
	$PY "$ROOT/tests/bench/scale_gen.py" seed "$n" "$dir/emu/seed.json"
	account=023e105f4ecef8ad9ca31a8372d0c353
	ip netns exec "$ns" $PY "$ROOT/contrib/cf-emulator/cf_emulator.py" \
		--token-file "$dir/emu/token" --seed "$dir/emu/seed.json" \
		--port 0 --port-file "$dir/emu/port" --pid-file "$dir/emu/pid" \
		--on-key-change-batch "$PY -S $ROOT/tests/bench/edge_key_hook.py --batch $dir/b/charon.vici $account" \
		</dev/null >"$dir/emu/emulator.log" 2>&1 &
	echo $! >"$dir/emu/launcher.pid"
	i=0
	while [ ! -s "$dir/emu/port" ]; do
		i=$((i + 1))
		[ $i -lt 200 ] || die "the emulator did not start"
		sleep 0.1
	done
	url=http://127.0.0.1:$(cat "$dir/emu/port")

	for variant in "config.json --no-kernel-xfrm" "config-kernel.json"; do
		set -- $variant
		$PY "$ROOT/tests/bench/scale_gen.py" config "$n" "$dir/$1" \
			--vici "$dir/a/charon.vici" --state "$dir/state" --api "$url/client/v4" \
			--token "$dir/emu/token" --strongswan-conf "$dir/a/strongswan.conf" ${2:-} \
			--dpd-delay "${SCALE_DPD_DELAY:-0}" --child-lifetime "${SCALE_CHILD_LIFETIME:-0}"
		$PY - "$dir/$1" "${SCALE_CONFIRM_TIMEOUT:-30}" "${SCALE_MAX_IN_FLIGHT:-0}" <<'EOF'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["tunnelsync:tunnelsync"]["agent"]["ike-backend"]["confirm-timeout"] = int(sys.argv[2])
if int(sys.argv[3]):
    c["tunnelsync:tunnelsync"]["agent"]["rotation"] = {"max-in-flight": int(sys.argv[3])}
json.dump(c, open(p, "w"), indent=1)
EOF
	done

	cat >"$dir/env" <<EOF
N=$n
NS=$ns
PREFIX=$prefix
CONFIG=$dir/config.json
CONFIG_KERNEL=$dir/config-kernel.json
STATE=$dir/state
VICI=$dir/a/charon.vici
STRONGSWAN_CONF=$dir/a/strongswan.conf
EMU_URL=$url
TOKEN=$dir/emu/token
ACCOUNT=$account
TS=$TS
EOF

	# Bootstrap through the agent: `once` until `plan` says in sync.
	t0=$(now_ms)
	# max-in-flight (1,000) rotations a pass: N/1000 passes and a few more.
	scale_sync "$ns" "$dir/config.json" "$dir/bootstrap.out" "${SCALE_MAX_PASSES:-$((12 + n / 1000))}"
	t1=$(now_ms)
	requests=$(scale_requests "$ns" "$url" | wc -l)
	rc=0
	ip netns exec "$ns" "$TS" plan -c "$dir/config.json" --log-level warn \
		>"$dir/plan-after.out" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] ||
		{ tail -n 20 "$dir/plan-after.out" >&2; die "plan after the bootstrap exited $rc"; }
	echo "bootstrap of $n tunnels from nothing to in sync: $((t1 - t0)) ms, $PASSES passes," \
		"$requests API requests"

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
