# End-to-end harness for tunnelsync (sourced by the tests/e2e/*.sh tests
# and by contrib/quickstart.sh; POSIX sh).
#
# The environment: two network namespaces joined by a veth pair.
#   gateway  $E2E_NS_GW    203.0.113.10  the gateway's charon (kernel-libipsec:
#                          userspace ESP, so CHILD SAs really come up on a
#                          kernel without ESP), the Cloudflare API emulator on
#                          the namespace's own 127.0.0.1, and tunnelsync
#                          itself (run through `ip netns exec`).
#   edge     $E2E_NS_EDGE  198.51.100.1 and 198.51.100.2: Cloudflare's edge,
#                          one charon responding for both endpoints, one
#                          swanctl connection per tunnel (IKEv2, PSK, local
#                          id = its endpoint address, remote id = the
#                          gateway's FQDN identity, Cloudflare's proposals).
# The emulator runs with --on-key-change tests/e2e/edge-hook.py: when a
# tunnel's key changes through the API, the edge charon gets it, as with the
# real Cloudflare. Charons come from tests/lib/charon-netns.sh (namespaces
# $E2E_PREFIX-a = gateway, $E2E_PREFIX-b = edge).
#
# Two tunnels, a redundant pair: e2e-a (to 198.51.100.1) and e2e-b (to
# 198.51.100.2), redundancy group "uplink". Knobs read by e2e_write_config:
# E2E_SOURCE_A / E2E_SOURCE_B (random|generate, default random),
# E2E_MAX_AGE (seconds, default 0), E2E_GROUP= (empty: no redundancy
# group). E2E_WRAP: a command put before tunnelsync (e.g. faketime).
# E2E_QUIET=1: e2e_ts does not echo tunnelsync's output.
# E2E_KERNEL=netlink: both charons with kernel-netlink (real ESP SAs in the
# namespaces' XFRM state: needs a kernel with ESP, e.g. the UML guest of
# tests/kernel/run-uml) and "kernel-xfrm": true in the config, so the
# agent checks the kernel's SA pairs; the edge's CHILD SAs then get if_ids
# (201, 202) so that their 0.0.0.0/0 policies capture no traffic. Default
# libipsec (userspace ESP, "kernel-xfrm": false). E2E_CONFIRM_TIMEOUT:
# the agent's confirm-timeout in seconds (default: the model's).
# E2E_EXTRA_TUNNELS=N (0 to 6, default 0): N more tunnels e2e-c, e2e-d, ...
# (no redundancy group, if-id 103..., edge 198.51.100.3..., interface
# address 10.213.0.4/31...), on the edge, the emulator and in the config;
# e2e_extra_tunnels lists them as "NAME ID EDGE_ADDRESS N" lines.
# E2E_ROUTE=mark: route-based tunnels keyed by mark (gateway 0x101/0x102,
# edge 0x201/0x202, mark_in_sa on the edge) instead of if_id, for VTIs
# (tests/kernel/traffic.sh). E2E_CHARON_INCLUDE=FILE: a strongswan.conf
# snippet both charons include (e.g. contrib/strongswan/tunnelsync.conf).
#
# Every name carries the PID; e2e_cleanup (an EXIT trap) stops only the
# processes this run started, by PID, and deletes the namespaces, on every
# exit path. E2E_KEEP=1 keeps the directory. Exit status 77 = skipped.

E2E_SRC=$(cd "$(dirname "$0")" && pwd)
case "$E2E_SRC" in
*/tests/e2e) ;;
*) E2E_SRC=${E2E_ROOT:?E2E_ROOT must be set when lib.sh is sourced from elsewhere}/tests/e2e ;;
esac
E2E_ROOT=$(cd "$E2E_SRC/../.." && pwd)
E2E_PREFIX=tse-$$
E2E_NS_GW=$E2E_PREFIX-a
E2E_NS_EDGE=$E2E_PREFIX-b
E2E_ACCOUNT=023e105f4ecef8ad9ca31a8372d0c353
E2E_ID_A=c4a7362d577a6c3019a474fd6f485821
E2E_ID_B=5f0d8e3b7a9c41e2b6d4a1c3e5f70819
E2E_GW_ADDR=203.0.113.10
E2E_EDGE_A=198.51.100.1
E2E_EDGE_B=198.51.100.2
E2E_DIR=
E2E_EMU_PID=
E2E_TS=${E2E_TS:-}
E2E_CALLS=0

# "NAME ID EDGE_ADDRESS N" of the E2E_EXTRA_TUNNELS tunnels (N: 3, 4, ...).
e2e_extra_tunnels() {
	e2e_n=${E2E_EXTRA_TUNNELS:-0}
	[ "$e2e_n" -le 6 ] || e2e_fail "E2E_EXTRA_TUNNELS: at most 6"
	e2e_i=0
	for e2e_l in c d e f g h; do
		[ $e2e_i -lt "$e2e_n" ] || break
		e2e_i=$((e2e_i + 1))
		e2e_k=$((e2e_i + 2))
		echo "e2e-$e2e_l $(printf '%032x' $((0x9e2e0000 + e2e_k))) 198.51.100.$e2e_k $e2e_k"
	done
}

e2e_say() {
	printf '%s\n' "== $*"
}

e2e_fail() {
	printf '%s\n' "FAIL: $*" >&2
	exit 1
}

e2e_skip() {
	printf '%s\n' "SKIP: $*"
	exit 77
}

# Root, ip, charon, swanctl, curl: else skip with the reason.
e2e_require() {
	[ "$(id -u)" -eq 0 ] || e2e_skip "needs root (network namespaces)"
	for tool in ip swanctl curl /usr/lib/ipsec/charon /usr/bin/python3; do
		command -v "$tool" >/dev/null 2>&1 || e2e_skip "$tool is not installed"
	done
	[ -n "$E2E_TS" ] || e2e_fail "E2E_TS (the tunnelsync binary) is not set"
	[ -x "$E2E_TS" ] || e2e_fail "$E2E_TS is not an executable"
	case "${E2E_KERNEL:-libipsec}" in
	libipsec) ;;
	netlink)
		# Real ESP SAs: the kernel must be able to hold one.
		e2e_ns=tse-$$-probe
		ip netns add "$e2e_ns" || e2e_fail "cannot create a network namespace"
		e2e_esp=0
		ip -n "$e2e_ns" xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 \
			aead 'rfc4106(gcm(aes))' 0x0102030405060708090a0b0c0d0e0f1011121314 128 \
			2>/dev/null || e2e_esp=$?
		ip netns del "$e2e_ns"
		[ "$e2e_esp" -eq 0 ] || e2e_skip "E2E_KERNEL=netlink: this kernel cannot install ESP SAs"
		;;
	*) e2e_fail "E2E_KERNEL must be libipsec or netlink" ;;
	esac
}

# Skips when the binary lacks one of the commands (exit 64: unknown command).
e2e_require_commands() {
	for c in "$@"; do
		rc=0
		"$E2E_TS" "$c" --help >/dev/null 2>&1 || rc=$?
		[ "$rc" -ne 64 ] || e2e_skip "this tunnelsync has no '$c' command yet"
	done
}

# Skips when the binary was built without TUNNELSYNC_TEST_HOOKS (only
# such a build knows the crash-injection variable).
e2e_require_crash_hooks() {
	grep -a -q TUNNELSYNC_CRASH_AT "$E2E_TS" ||
		e2e_skip "tunnelsync was built without -DTUNNELSYNC_TEST_HOOKS=ON (no crash injection)"
}

e2e_dump_logs() {
	[ -n "$E2E_DIR" ] && [ -d "$E2E_DIR" ] || return 0
	for f in "$E2E_DIR"/emu/emulator.log "$E2E_DIR"/edge/hook.log; do
		[ -f "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }
	done
	for side in a b; do
		f=$E2E_DIR/$side/charon.log
		[ -f "$f" ] && { echo "--- $f"; grep -E '\[(IKE|CFG|CHD|ENC)\]' "$f" | tail -n 40; }
	done
	return 0
}

e2e_cleanup() {
	rc=$?
	# Everything below must run even when a step fails (errexit is on in
	# the tests): namespaces and processes must never be left behind.
	set +e
	trap - EXIT INT TERM
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		echo "== failed (exit $rc); logs of $E2E_DIR:" >&2
		e2e_dump_logs >&2
	fi
	if [ -n "$E2E_EMU_PID" ]; then
		kill -TERM "$E2E_EMU_PID" 2>/dev/null || true
		i=0
		while kill -0 "$E2E_EMU_PID" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$E2E_EMU_PID" 2>/dev/null || true
	fi
	if [ -n "$E2E_DIR" ]; then
		sh "$E2E_ROOT/tests/lib/charon-netns.sh" down "$E2E_PREFIX" "$E2E_DIR" 2>/dev/null || true
		if [ "${E2E_KEEP:-0}" = 1 ]; then
			echo "== kept $E2E_DIR" >&2
		else
			rm -rf "$E2E_DIR"
		fi
	fi
	ip netns del "$E2E_NS_GW" 2>/dev/null || true
	ip netns del "$E2E_NS_EDGE" 2>/dev/null || true
	[ -z "${E2E_CHARON_SNIPPET:-}" ] || rm -f "$E2E_CHARON_SNIPPET"
	exit "$rc"
}

e2e_gw_identity() {
	echo "$1.$E2E_ACCOUNT.ipsec.cloudflare.com"
}

# Namespaces, veth, addresses, routes.
e2e_net_up() {
	ip netns add "$E2E_NS_GW"
	ip netns add "$E2E_NS_EDGE"
	ip link add "tse$$g" type veth peer name "tse$$e"
	ip link set "tse$$g" netns "$E2E_NS_GW" name veth0
	ip link set "tse$$e" netns "$E2E_NS_EDGE" name veth0
	ip -n "$E2E_NS_GW" addr add "$E2E_GW_ADDR/24" dev veth0
	ip -n "$E2E_NS_EDGE" addr add "$E2E_EDGE_A/24" dev veth0
	ip -n "$E2E_NS_EDGE" addr add "$E2E_EDGE_B/24" dev veth0
	e2e_extra_tunnels | while read -r _ _ addr _; do
		ip -n "$E2E_NS_EDGE" addr add "$addr/24" dev veth0
	done
	for ns in "$E2E_NS_GW" "$E2E_NS_EDGE"; do
		ip -n "$ns" link set lo up
		ip -n "$ns" link set veth0 up
	done
	# One link, two subnets: each side reaches the other's subnet on-link.
	ip -n "$E2E_NS_GW" route add 198.51.100.0/24 dev veth0
	ip -n "$E2E_NS_EDGE" route add 203.0.113.0/24 dev veth0
	# kernel-libipsec routes everything into its TUN device once a CHILD
	# SA is up (table 220: a default route, a throw route for the first
	# peer only, whatever charon.install_routes says): IKE and ESP to the
	# other edge addresses then loop through the first tunnel. The peers'
	# subnets stay on the link. (kernel-netlink installs no such route.)
	if [ "${E2E_KERNEL:-libipsec}" = libipsec ]; then
		ip -n "$E2E_NS_GW" rule add to 198.51.100.0/24 lookup main priority 100
		ip -n "$E2E_NS_EDGE" rule add to 203.0.113.0/24 lookup main priority 100
	fi
}

e2e_swanctl() {
	side=$1
	shift
	STRONGSWAN_CONF=$E2E_DIR/$side/strongswan.conf SWANCTL_DIR=$E2E_DIR/$side/swanctl \
		swanctl "$@" --uri "unix://$E2E_DIR/$side/charon.vici"
}

# The edge: one responder connection per tunnel; secrets from secrets.d/
# (written by edge-hook.py).
e2e_edge_config() {
	mkdir -p "$E2E_DIR/b/swanctl/secrets.d" "$E2E_DIR/edge"
	chmod 700 "$E2E_DIR/b/swanctl/secrets.d"
	: >"$E2E_DIR/edge/tunnels.map"
	if_id=200
	{
		echo "connections {"
		for t in "a:$E2E_ID_A:$E2E_EDGE_A" "b:$E2E_ID_B:$E2E_EDGE_B" \
			$(e2e_extra_tunnels | awk '{ sub(/^e2e-/, "", $1); print $1 ":" $2 ":" $3 }'); do
			e2e_ifs=$IFS
			IFS=:
			set -- $t
			IFS=$e2e_ifs
			if_id=$((if_id + 1))
			if_ids=
			[ "${E2E_KERNEL:-libipsec}" != netlink ] ||
				if_ids="if_id_in = $if_id
   if_id_out = $if_id"
			# E2E_ROUTE=mark: the edge's SAs keyed by mark 0x2NN (a VTI
			# with that key carries them), on both SAs.
			[ "${E2E_ROUTE:-if-id}" != mark ] ||
				if_ids="mark_in = $(printf '0x%x' $((0x200 + if_id - 200)))
   mark_out = $(printf '0x%x' $((0x200 + if_id - 200)))
   mark_in_sa = yes"
			echo "$2 e2e-$1 $3 $(e2e_gw_identity "$2")" >>"$E2E_DIR/edge/tunnels.map"
			cat <<EOF
 cf-e2e-$1 {
  version = 2
  local_addrs = $3
  proposals = aes256gcm16-aes128gcm16-prfsha512-prfsha384-prfsha256-ecp384-modp2048-modp1536, aes256-sha256-prfsha256-ecp384-modp2048
  local { auth = psk
   id = $3 }
  remote { auth = psk
   id = $(e2e_gw_identity "$2") }
  children { cf-e2e-$1 {
   local_ts = 0.0.0.0/0
   remote_ts = 0.0.0.0/0
   esp_proposals = aes256gcm16-aes128gcm16-ecp384-noesn, aes256-sha256-ecp384-noesn
   replay_window = 0
   $if_ids
  } }
 }
EOF
		done
		echo "}"
		echo "secrets {"
		echo " include secrets.d/*.conf"
		echo "}"
	} >"$E2E_DIR/b/swanctl/swanctl.conf"
	e2e_swanctl b --load-all >"$E2E_DIR/edge/load-all.out" 2>&1 ||
		{ cat "$E2E_DIR/edge/load-all.out" >&2; e2e_fail "edge: swanctl --load-all failed"; }
}

e2e_emu_start() {
	mkdir -p "$E2E_DIR/emu"
	# 0600 files made by a umask, never a token in argv.
	(umask 077 && /usr/bin/python3 -c 'import secrets; print(secrets.token_hex(20))' >"$E2E_DIR/emu/token")
	cat >"$E2E_DIR/emu/seed.json" <<EOF
{"tunnels": [
 {"id": "$E2E_ID_A", "name": "e2e-a", "customer_endpoint": "$E2E_GW_ADDR",
  "cloudflare_endpoint": "$E2E_EDGE_A", "interface_address": "10.213.0.0/31"},
 {"id": "$E2E_ID_B", "name": "e2e-b", "customer_endpoint": "$E2E_GW_ADDR",
  "cloudflare_endpoint": "$E2E_EDGE_B", "interface_address": "10.213.0.2/31"}$(
	e2e_extra_tunnels | while read -r name id addr n; do
		printf ',\n {"id": "%s", "name": "%s", "customer_endpoint": "%s",\n  "cloudflare_endpoint": "%s", "interface_address": "10.213.0.%d/31"}' \
			"$id" "$name" "$E2E_GW_ADDR" "$addr" $((2 * n - 2))
	done)
]}
EOF
	# E2E_TLS=1: HTTPS with a throw-away test CA (the agent trusts it
	# through the config's ca-file).
	set --
	scheme=http
	E2E_CURL_CA=
	if [ "${E2E_TLS:-0}" = 1 ]; then
		sh "$E2E_ROOT/tests/cloudflare/make-test-ca.sh" "$E2E_DIR/emu" ||
			e2e_fail "could not make the test CA"
		set -- --cert "$E2E_DIR/emu/server.pem" --key "$E2E_DIR/emu/server.key"
		scheme=https
		E2E_CURL_CA="--cacert $E2E_DIR/emu/ca.pem"
	fi
	ip netns exec "$E2E_NS_GW" /usr/bin/python3 "$E2E_ROOT/contrib/cf-emulator/cf_emulator.py" \
		"$@" --account-id "$E2E_ACCOUNT" --token-file "$E2E_DIR/emu/token" \
		--seed "$E2E_DIR/emu/seed.json" --state "$E2E_DIR/emu/state.json" \
		--port 0 --port-file "$E2E_DIR/emu/port" --pid-file "$E2E_DIR/emu/pid" \
		--on-key-change "/usr/bin/python3 $E2E_SRC/edge-hook.py $E2E_DIR" \
		</dev/null >"$E2E_DIR/emu/emulator.log" 2>&1 &
	E2E_EMU_PID=$!
	i=0
	while [ ! -s "$E2E_DIR/emu/port" ]; do
		i=$((i + 1))
		kill -0 "$E2E_EMU_PID" 2>/dev/null || { cat "$E2E_DIR/emu/emulator.log" >&2; e2e_fail "emulator died"; }
		[ $i -lt 100 ] || e2e_fail "emulator did not start listening"
		sleep 0.1
	done
	E2E_EMU_PORT=$(cat "$E2E_DIR/emu/port")
	E2E_EMU_URL=$scheme://127.0.0.1:$E2E_EMU_PORT
}

# The agent's config (YANG JSON). The kernel-xfrm leaf (false: the gateway's
# charon uses kernel-libipsec, the kernel holds no XFRM state; true with
# E2E_KERNEL=netlink) is written when the model has it.
e2e_write_config() {
	xfrm=
	if grep -q 'kernel-xfrm' "$E2E_ROOT/models/tunnelsync.yang"; then
		kx=false
		[ "${E2E_KERNEL:-libipsec}" != netlink ] || kx=true
		xfrm=",
        \"kernel-xfrm\": $kx"
	fi
	[ -z "${E2E_CONFIRM_TIMEOUT:-}" ] || xfrm="$xfrm,
        \"confirm-timeout\": $E2E_CONFIRM_TIMEOUT"
	route_a='"if-id": 101'
	route_b='"if-id": 102'
	if [ "${E2E_ROUTE:-if-id}" = mark ]; then
		route_a='"mark": 257'
		route_b='"mark": 258'
	fi
	# The gateway charon's own strongswan.conf (make-before-break check)
	# and the settle window (E2E_SETTLE_TIME, default 0: no wait).
	traffic=
	grep -q 'strongswan-conf' "$E2E_ROOT/models/tunnelsync.yang" &&
		traffic=",
      \"traffic\": { \"strongswan-conf\": \"$E2E_DIR/a/strongswan.conf\",
                     \"settle-time\": ${E2E_SETTLE_TIME:-0} }"
	max_age=${E2E_MAX_AGE:-0}
	group='          "redundancy-group": "uplink",'
	[ "${E2E_GROUP-uplink}" != "" ] || group=
	ca_file=
	[ "${E2E_TLS:-0}" != 1 ] || ca_file="
      \"ca-file\": \"$E2E_DIR/emu/ca.pem\","
	cat >"$E2E_DIR/config.json" <<EOF
{
  "tunnelsync:tunnelsync": {
    "agent": {
      "node-name": "e2e-gw",
      "state-directory": "$E2E_DIR/state",
      "ike-backend": {
        "vici-socket": "$E2E_DIR/a/charon.vici"$xfrm
      }$traffic
    },
    "cloudflare": {
      "account-id": "$E2E_ACCOUNT",
      "api-base-url": "$E2E_EMU_URL/client/v4",
      "allow-plain-http-loopback": true,$ca_file
      "api-token-file": "$E2E_DIR/emu/token",
      "connect-timeout": 5,
      "request-timeout": 15
    },
    "tunnels": {
      "tunnel": [
        {
          "name": "e2e-a",
          "id": "$E2E_ID_A",
          "gateway": "e2e-gw",
$group
          "customer-endpoint": "$E2E_GW_ADDR",
          "cloudflare-endpoint": "$E2E_EDGE_A",
          "interface-address": "10.213.0.0/31",
          "ike": { "dpd-delay": 10 },
          "route-based": { $route_a },
          "psk": { "source": "${E2E_SOURCE_A:-random}", "max-age": $max_age,
                   "authentication-failure-threshold": 2 }
        },
        {
          "name": "e2e-b",
          "id": "$E2E_ID_B",
          "gateway": "e2e-gw",
$group
          "customer-endpoint": "$E2E_GW_ADDR",
          "cloudflare-endpoint": "$E2E_EDGE_B",
          "interface-address": "10.213.0.2/31",
          "ike": { "dpd-delay": 10 },
          "route-based": { $route_b },
          "psk": { "source": "${E2E_SOURCE_B:-random}", "max-age": $max_age,
                   "authentication-failure-threshold": 2 }
        }$(
	e2e_extra_tunnels | while read -r name id addr n; do
		route="\"if-id\": $((100 + n))"
		[ "${E2E_ROUTE:-if-id}" != mark ] || route="\"mark\": $((256 + n))"
		printf ',\n        {\n          "name": "%s",\n          "id": "%s",\n          "gateway": "e2e-gw",\n' "$name" "$id"
		printf '          "customer-endpoint": "%s",\n          "cloudflare-endpoint": "%s",\n' "$E2E_GW_ADDR" "$addr"
		printf '          "interface-address": "10.213.0.%d/31",\n          "ike": { "dpd-delay": 10 },\n' $((2 * n - 2))
		printf '          "route-based": { %s },\n' "$route"
		printf '          "psk": { "source": "random", "max-age": %s,\n                   "authentication-failure-threshold": 2 }\n        }' "$max_age"
	done)
      ]
    }
  }
}
EOF
}

# e2e_charon_settings LINES: before e2e_up, both charons include
# contrib/strongswan/tunnelsync.conf and LINES in their charon section (a
# file that e2e_cleanup removes).
e2e_charon_settings() {
	E2E_CHARON_SNIPPET=$(mktemp /tmp/ts-charon.$$.XXXXXX)
	printf 'include %s/contrib/strongswan/tunnelsync.conf\ncharon {\n%s\n}\n' "$E2E_ROOT" "$1" \
		>"$E2E_CHARON_SNIPPET"
	E2E_CHARON_INCLUDE=$E2E_CHARON_SNIPPET
}

# The whole environment. Sets the EXIT trap first.
e2e_up() {
	E2E_DIR=$(mktemp -d "/tmp/tse2e.$$.XXXXXX")
	trap e2e_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	chmod 700 "$E2E_DIR"
	mkdir -p "$E2E_DIR/out"
	e2e_net_up
	for side in a b; do
		TS_HARNESS_KERNEL=${E2E_KERNEL:-libipsec} TS_HARNESS_CHARON_INCLUDE=${E2E_CHARON_INCLUDE:-} \
			sh "$E2E_ROOT/tests/lib/charon-netns.sh" start "$E2E_PREFIX" $side "$E2E_DIR" >/dev/null
	done
	e2e_edge_config
	e2e_emu_start
	e2e_write_config
}

# --- talking to the pieces ---------------------------------------------------

# e2e_api METHOD PATH [JSON]: the emulator's API as a client would call it
# (token from its file through curl's config on stdin, never argv).
e2e_api() {
	method=$1
	path=$2
	body=${3:-}
	{
		printf 'header = "Authorization: Bearer %s"\n' "$(cat "$E2E_DIR/emu/token")"
		[ -z "$body" ] || printf 'header = "Content-Type: application/json"\n'
	} | ip netns exec "$E2E_NS_GW" curl -sS ${E2E_CURL_CA:-} -K - -X "$method" ${body:+--data "$body"} \
		"$E2E_EMU_URL/client/v4/accounts/$E2E_ACCOUNT/magic/ipsec_tunnels$path"
}

# e2e_admin METHOD PATH [JSON]: the emulator's /__admin interface.
e2e_admin() {
	ip netns exec "$E2E_NS_GW" curl -sS ${E2E_CURL_CA:-} -X "$1" \
		${3:+-H 'Content-Type: application/json' --data "$3"} "$E2E_EMU_URL/__admin$2"
}

# Fingerprint the emulator holds for a tunnel id ("" when no key).
e2e_emu_fp() {
	e2e_admin GET /tunnels | /usr/bin/python3 -c '
import json, sys
for t in json.load(sys.stdin)["tunnels"]:
    if t["id"] == sys.argv[1]:
        print(t.get("fingerprint") or "")' "$1"
}

e2e_emu_last_generated() {
	e2e_admin GET /tunnels | /usr/bin/python3 -c '
import json, sys
for t in json.load(sys.stdin)["tunnels"]:
    if t["id"] == sys.argv[1]:
        print(t.get("last_generated_on") or "")' "$1"
}

# Writes (non-GET, non-admin) API requests in the emulator's log, as
# "METHOD PATH?QUERY" lines.
e2e_emu_writes() {
	e2e_admin GET /requests | /usr/bin/python3 -c '
import json, sys
for r in json.load(sys.stdin)["requests"]:
    if r["method"] != "GET" and not r["path"].startswith("/__admin"):
        print("%s %s%s" % (r["method"], r["path"], "?" + r["query"] if r.get("query") else ""))'
}

e2e_emu_clear_log() {
	e2e_admin DELETE /requests >/dev/null
}

# e2e_ts NAME ARGS...: runs tunnelsync in the gateway namespace; stdout
# and stderr are kept in out/NAME.{out,err} (checked for keys later) and
# shown. Returns tunnelsync's exit status.
e2e_ts() {
	name=$1
	shift
	E2E_CALLS=$((E2E_CALLS + 1))
	out=$E2E_DIR/out/$(printf '%03d' "$E2E_CALLS")-$name
	cmd=$1
	shift
	rc=0
	ip netns exec "$E2E_NS_GW" ${E2E_WRAP:-} "$E2E_TS" "$cmd" -c "$E2E_DIR/config.json" \
		--models "$E2E_ROOT/models" "$@" >"$out.out" 2>"$out.err" || rc=$?
	if [ "${E2E_QUIET:-0}" != 1 ]; then
		echo "-- tunnelsync $cmd $* -> exit $rc" >&2
		sed 's/^/   | /' "$out.out" "$out.err" >&2
	fi
	E2E_LAST_OUT=$out.out
	return "$rc"
}

# Runs `once` until it exits 0 (in sync), at most N times; fails on exit 1
# or when N passes did not converge.
e2e_once_until_synced() {
	n=$1
	shift
	i=0
	while [ $i -lt "$n" ]; do
		i=$((i + 1))
		rc=0
		e2e_ts once once "$@" || rc=$?
		case $rc in
		0) return 0 ;;
		2) sleep 1 ;;
		*) e2e_fail "once exited $rc (pass $i)" ;;
		esac
	done
	e2e_fail "once did not converge in $n passes"
}

# IKE SA of the tunnel's connection (ts-NAME) established with an installed
# CHILD SA, in the gateway's charon.
e2e_ike_up() {
	e2e_swanctl a --list-sas --ike "ts-$1" 2>/dev/null >"$E2E_DIR/sas.txt" || return 1
	grep -q 'ESTABLISHED' "$E2E_DIR/sas.txt" && grep -q 'INSTALLED' "$E2E_DIR/sas.txt"
}

# Waits up to N seconds for e2e_ike_up.
e2e_wait_ike_up() {
	name=$1
	n=$(($2 * 5))
	i=0
	while ! e2e_ike_up "$name"; do
		i=$((i + 1))
		[ $i -lt "$n" ] || return 1
		sleep 0.2
	done
	return 0
}

# The status' fingerprint of a tunnel (status --json), "" when none.
e2e_status_fp() {
	e2e_ts status status --json >/dev/null || e2e_fail "status --json failed"
	/usr/bin/python3 - "$1" "$E2E_LAST_OUT" <<'EOF'
import json, sys
name, path = sys.argv[1], sys.argv[2]
doc = json.load(open(path))
tunnels = doc.get("tunnels", doc) if isinstance(doc, dict) else doc
for t in tunnels:
    if t.get("name") == name:
        print(t.get("fingerprint") or t.get("key_fingerprint") or "")
        break
EOF
}

# "IKE_STATE CHILD_UP" of a tunnel in status --json (what the last pass left).
e2e_status_ike() {
	e2e_ts status status --json >/dev/null || e2e_fail "status --json failed"
	/usr/bin/python3 -c '
import json, sys
for t in json.load(open(sys.argv[2]))["tunnels"]:
    if t.get("name") == sys.argv[1]:
        print(t.get("ike_state"), t.get("child_up"))' "$1" "$E2E_LAST_OUT"
}

# Tunnel in sync end to end: IKE up, status fingerprint == emulator's.
e2e_assert_tunnel_ok() {
	name=$1
	id=$2
	e2e_wait_ike_up "$name" 30 || e2e_fail "$name: IKE/CHILD SA not up"
	emu=$(e2e_emu_fp "$id")
	st=$(e2e_status_fp "$name")
	[ -n "$emu" ] || e2e_fail "$name: the emulator holds no key"
	[ "$emu" = "$st" ] || e2e_fail "$name: status fingerprint '$st' != emulator '$emu'"
	printf '%s\n' "$st" | grep -Eq '^sha256:[0-9a-f]{16}$' || e2e_fail "$name: fingerprint format '$st'"
	ike=$(e2e_status_ike "$name")
	[ "$ike" = "established True" ] || e2e_fail "$name: status says IKE/CHILD '$ike', charon says up"
	e2e_say "$name: IKE up, fingerprint $emu on both sides"
}

e2e_journal_empty() {
	[ -z "$(ls -A "$E2E_DIR/state/journal" 2>/dev/null)" ]
}

# From nothing to both tunnels in sync (loops `once`, bounded).
e2e_bootstrap() {
	e2e_once_until_synced 10
	e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
	e2e_assert_tunnel_ok e2e-b "$E2E_ID_B"
	e2e_journal_empty || e2e_fail "journal not empty after sync"
}

# Sets the edge's key of a tunnel only (as if the edge changed it), key on
# stdin of the hook as the emulator does.
e2e_edge_set_key() {
	/usr/bin/python3 -c 'import secrets; print(secrets.token_hex(16), end="")' |
		/usr/bin/python3 "$E2E_SRC/edge-hook.py" "$E2E_DIR" "$1"
}

# Every key the emulator holds now, one a line, appended to keys.txt (kept
# outside of what the secret scan reads).
e2e_collect_keys() {
	[ -f "$E2E_DIR/emu/state.json" ] || return 0
	/usr/bin/python3 -c '
import json, sys
for t in json.load(open(sys.argv[1]))["tunnels"]:
    if t.get("psk"):
        print(t["psk"])' "$E2E_DIR/emu/state.json" >>"$E2E_DIR/keys.txt"
}

# A checksum of everything in the state directory (names, modes, content).
e2e_state_digest() {
	if [ -d "$E2E_DIR/state" ]; then
		(cd "$E2E_DIR/state" && find . -path ./lock -prune -o -print | sort |
			while read -r f; do
				stat -c '%n %a %s' "$f"
				[ -f "$f" ] && sha256sum "$f"
			done) | sha256sum | cut -d' ' -f1
	else
		echo none
	fi
}

# The plan's actions as "kind tunnel cause apply" lines (plan --json file).
e2e_plan_actions() {
	/usr/bin/python3 -c '
import json, sys
for a in json.load(open(sys.argv[1]))["actions"]:
    print(a["kind"], a["tunnel"] or "-", a["cause"], "apply" if a["apply"] else "noapply")' "$1"
}

# The daemon suites' config: metrics (and probes) on 127.0.0.1:PORT, a
# resync interval long enough that only events and the suite cause passes.
e2e_daemon_config() {
	/usr/bin/python3 - "$E2E_DIR/config.json" "$1" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["tunnelsync:tunnelsync"]["agent"]["metrics-listen"] = "127.0.0.1:" + sys.argv[2]
c["tunnelsync:tunnelsync"]["agent"]["resync-interval"] = 600
json.dump(c, open(p, "w"), indent=2)
PY
}

# e2e_waited_for_slow ERR WHAT T1 MS: the pass whose stderr is ERR (started
# at T1, date +%s%N) waited for WHAT ("the rotation's reauthentication",
# "update-conn's request for new SAs") under way against a slow edge, or,
# when it began more than MS ms late (a loaded machine), found it up.
e2e_waited_for_slow() {
	if grep -q "$2 is still under way (the peer answered its IKE_SA_INIT)" "$1"; then
		e2e_say "2: the pass saw $2 under way and waited for it"
	elif grep -q "$2 came up since" "$1"; then
		[ $((($(date +%s%N) - $3) / 1000000)) -gt "$4" ] ||
			e2e_fail "2: $2 was up before the pass looked (the edge's delay too short?)"
		e2e_say "2: the pass began late; $2 had come up and was confirmed"
	else
		e2e_fail "2: the pass did not wait for $2: $(cat "$1")"
	fi
}

# e2e_mbb_in_log FROM OLD: charon a's log from line FROM shows one IKE SA
# initiated for e2e-a, established, and the old one (id OLD) deleted only
# after it (waiting up to 20 s for the delete: a slow edge delays it).
# Sets E2E_NEW_IKE to the new IKE SA's id.
e2e_mbb_in_log() {
	_log=$E2E_DIR/a/charon.log
	_cut=$E2E_DIR/mbb.log
	_gone=
	for _ in $(seq 1 40); do
		tail -n +"$1" "$_log" >"$_cut"
		_gone=$(grep -n "IKE_SA ts-e2e-a\[$2\] state change: ESTABLISHED => \(DELETING\|DESTROYING\)" "$_cut" | head -n 1 | cut -d: -f1)
		[ -z "$_gone" ] || break
		sleep 0.5
	done
	_n=$(grep -c 'initiating IKE_SA ts-e2e-a\[' "$_cut" || true)
	[ "$_n" -eq 1 ] || e2e_fail "3: $_n IKE SAs initiated for e2e-a (one expected)"
	E2E_NEW_IKE=$(sed -n 's/.*IKE_SA ts-e2e-a\[\([0-9]*\)\] state change: CONNECTING => ESTABLISHED.*/\1/p' "$_cut" | head -n 1)
	[ -n "$E2E_NEW_IKE" ] || e2e_fail "3: no new IKE SA established for e2e-a"
	_up=$(grep -n "IKE_SA ts-e2e-a\[$E2E_NEW_IKE\] state change: CONNECTING => ESTABLISHED" "$_cut" | head -n 1 | cut -d: -f1)
	[ -n "$_gone" ] || e2e_fail "3: the old IKE SA $2 was not deleted within 20 s"
	[ "$_up" -lt "$_gone" ] || e2e_fail "3: the old IKE SA $2 went before the new one ($E2E_NEW_IKE) was up"
}
