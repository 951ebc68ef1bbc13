#!/bin/sh
# Test harness: two network namespaces joined by a veth pair, one charon
# (strongSwan 5.9.8) in each, every instance with its own strongswan.conf,
# VICI socket, log file and a private tmpfs on /run (charon's pid file path
# is fixed). Used by the IKE suites and by any suite that needs a real charon.
#
#   charon-netns.sh up PREFIX DIR       create PREFIX-a (192.0.2.1/24) and
#                                       PREFIX-b (192.0.2.2/24) joined by veth
#   charon-netns.sh start PREFIX SIDE DIR
#                                       start a charon in PREFIX-SIDE (SIDE a|b)
#                                       with config under DIR/SIDE; waits for
#                                       its VICI socket DIR/SIDE/charon.vici;
#                                       prints the charon PID
#   charon-netns.sh stop PID            TERM (then KILL) that one charon
#   charon-netns.sh down PREFIX DIR     stop every charon whose pid file is in
#                                       DIR/*/charon.pid, delete both namespaces
#
# PREFIX must be unique per run (e.g. "tsike-$$"). Documentation addresses
# only. TS_HARNESS_KERNEL=libipsec (at start) makes charon do ESP in
# userspace (kernel-libipsec), for kernels that cannot install ESP SAs.
# TS_HARNESS_CHARON_INCLUDE=FILE (at start) includes FILE in the config.
# swanctl for a side: STRONGSWAN_CONF=DIR/SIDE/strongswan.conf
# swanctl --uri unix://DIR/SIDE/charon.vici ...
set -eu

addr_a=192.0.2.1
addr_b=192.0.2.2

die() {
	echo "charon-netns.sh: $*" >&2
	exit 1
}

cmd_up() {
	prefix=$1
	dir=$2
	mkdir -p "$dir/a" "$dir/b"
	ip netns add "$prefix-a"
	ip netns add "$prefix-b"
	# Interface names are per namespace, so short fixed names are safe
	# once each end is moved.
	ip link add "v${prefix##*-}a" type veth peer name "v${prefix##*-}b"
	ip link set "v${prefix##*-}a" netns "$prefix-a" name veth0
	ip link set "v${prefix##*-}b" netns "$prefix-b" name veth0
	ip -n "$prefix-a" addr add "$addr_a/24" dev veth0
	ip -n "$prefix-b" addr add "$addr_b/24" dev veth0
	for s in a b; do
		ip -n "$prefix-$s" link set lo up
		ip -n "$prefix-$s" link set veth0 up
	done
}

write_conf() {
	d=$1
	# TS_HARNESS_KERNEL=libipsec: ESP in userspace over TUN, for kernels
	# without ESP (CHILD SAs then work, but make no XFRM objects).
	case "${TS_HARNESS_KERNEL:-netlink}" in
	netlink) kernel=kernel-netlink ;;
	libipsec) kernel="kernel-libipsec kernel-netlink" ;;
	*) die "TS_HARNESS_KERNEL must be netlink or libipsec" ;;
	esac
	cat >"$d/strongswan.conf" <<CONF
charon {
	# Explicit plugin list: quick start, nothing reads the host's config.
	load = random nonce openssl sha1 sha2 aes hmac gcm pem pkcs1 x509 pubkey kdf $kernel socket-default vici
	install_routes = no
	retransmit_tries = 2
	retransmit_timeout = 1.0
	retransmit_base = 1.4
	plugins {
		vici {
			socket = unix://$d/charon.vici
		}
	}
	filelog {
		log {
			path = $d/charon.log
			time_format = %H:%M:%S
			default = 1
			ike = 2
			cfg = 2
			flush_line = yes
		}
	}
	syslog {
		daemon {
			default = -1
		}
	}
}
swanctl {
	load = random nonce openssl pem pkcs1 x509 pubkey
}
CONF
	# TS_HARNESS_CHARON_INCLUDE: a strongswan.conf snippet (e.g.
	# contrib/strongswan/tunnelsync.conf) merged in, as an operator would.
	[ -z "${TS_HARNESS_CHARON_INCLUDE:-}" ] ||
		echo "include $TS_HARNESS_CHARON_INCLUDE" >>"$d/strongswan.conf"
}

cmd_start() {
	prefix=$1
	side=$2
	dir=$3
	d=$(cd "$dir" && pwd)/$side
	mkdir -p "$d"
	[ -f "$d/strongswan.conf" ] || write_conf "$d"
	rm -f "$d/charon.vici"
	# ip netns exec gives the child its own mount namespace: the tmpfs on
	# /run stays private to this charon.
	STRONGSWAN_CONF="$d/strongswan.conf" setsid ip netns exec "$prefix-$side" \
		sh -c 'mount -t tmpfs none /run && exec /usr/lib/ipsec/charon' \
		</dev/null >>"$d/charon.out" 2>&1 &
	pid=$!
	echo "$pid" >"$d/charon.pid"
	i=0
	while [ ! -S "$d/charon.vici" ]; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
			cat "$d/charon.out" >&2 || true
			die "charon in $prefix-$side did not come up"
		fi
		sleep 0.1
	done
	echo "$pid"
}

cmd_stop() {
	pid=$1
	kill -TERM "$pid" 2>/dev/null || return 0
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 50 ]; then
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.1
	done
}

cmd_down() {
	prefix=$1
	dir=$2
	for f in "$dir"/*/charon.pid; do
		[ -f "$f" ] || continue
		cmd_stop "$(cat "$f")"
		rm -f "$f"
	done
	ip netns del "$prefix-a" 2>/dev/null || true
	ip netns del "$prefix-b" 2>/dev/null || true
}

[ $# -ge 1 ] || die "usage: up|start|stop|down ..."
op=$1
shift
case "$op" in
up) [ $# -eq 2 ] || die "usage: up PREFIX DIR"; cmd_up "$@" ;;
start) [ $# -eq 3 ] || die "usage: start PREFIX a|b DIR"; cmd_start "$@" ;;
stop) [ $# -eq 1 ] || die "usage: stop PID"; cmd_stop "$@" ;;
down) [ $# -eq 2 ] || die "usage: down PREFIX DIR"; cmd_down "$@" ;;
*) die "unknown command $op" ;;
esac
