#!/bin/sh
# Benchmark: the daemon (`tunnelsync run`) idle with N tunnels in sync
# (tests/bench/scale-state.sh: bootstrapped by the agent, charon holding
# its connections, keys and SAs, the API emulator the tunnels). After the
# daemon's first pass, for SECONDS: its CPU seconds per minute (goal <=
# 0.01), its resident memory at the end and at peak (goal <= 16 MB), the
# passes it ran and the API requests it made (from the emulator's request
# log; goal 0 between resyncs; resync-interval is the default 300 s, so a
# window under 300 s holds none). Figures only: nothing is asserted about
# them; the run fails only when a step fails.
#
#   idle-scale.sh TUNNELSYNC [N [SECONDS]]   (default 20 tunnels, 20 s;
#                                              by hand: 1000 180)
# RESYNC=S: resync-interval S (>= 10) instead, to price one resync pass
# (config loaded once by the daemon, not per pass).
# TLS=1: the API over TLS, as Cloudflare's is: a TLS proxy
# (tests/bench/tls_proxy.py, a throw-away test CA) in front of the
# emulator, the agent verifying its certificate (ca-file): what the
# handshake, the kept-alive connection and the loaded CA leave resident.
# TLS=system: the same with the system's CA bundle beside the test CA in
# ca-file, as many roots as the default store loads.
# Root (namespaces); exit 77 with the reason when something is missing.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TS=${1:?usage: idle-scale.sh TUNNELSYNC [N [SECONDS]]}
N=${2:-20}
SECONDS_IDLE=${3:-20}
DPID=
PROXY=
stop_daemon() {
	[ -z "$DPID" ] || { kill -TERM "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; }
	[ -z "$PROXY" ] || { kill -TERM "$PROXY" 2>/dev/null; wait "$PROXY" 2>/dev/null; }
}
SCALE_HOOK=stop_daemon
. "$ROOT/tests/bench/scale-lib.sh"
scale_require

# utime + stime of PID in seconds.
cpu_of() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' \
		"/proc/$1/stat"
}

scale_open "$N" idle

# The time of the last pass, from the status file every pass writes (an
# in-sync pass logs only at debug level).
last_pass() {
	$PY -c '
import json, sys
try:
    print(json.load(open(sys.argv[1])).get("time", "none"))
except OSError:
    print("none")' "$STATE/status.json"
}

# RESYNC=S: resync-interval S instead of the default, so that the window
# holds resync passes (each one list request): the CPU of one such pass.
api_url=
ca=$WORK/ca.pem
if [ "${TLS:-0}" != 0 ]; then
	sh "$ROOT/tests/cloudflare/make-test-ca.sh" "$WORK"
	if [ "$TLS" = system ]; then
		cat /etc/ssl/certs/ca-certificates.crt "$WORK/ca.pem" >"$WORK/ca-system.pem"
		ca=$WORK/ca-system.pem
	fi
	emu_port=${EMU_URL##*:}
	ip netns exec "$NS" $PY "$ROOT/tests/bench/tls_proxy.py" "$WORK/server.pem" \
		"$WORK/server.key" "$emu_port" "$WORK/proxy-port" </dev/null >"$WORK/proxy.log" 2>&1 &
	PROXY=$!
	i=0
	while [ ! -s "$WORK/proxy-port" ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || { cat "$WORK/proxy.log" >&2; exit 1; }
		sleep 0.1
	done
	api_url=https://127.0.0.1:$(cat "$WORK/proxy-port")/client/v4
fi
$PY - "$CONFIG" "$WORK/config-idle.json" "${RESYNC:-}" "$api_url" "$ca" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
if sys.argv[3]:
    c["tunnelsync:tunnelsync"]["agent"]["resync-interval"] = int(sys.argv[3])
if sys.argv[4]:
    cf = c["tunnelsync:tunnelsync"]["cloudflare"]
    cf["api-base-url"] = sys.argv[4]
    cf["ca-file"] = sys.argv[5]
    cf.pop("allow-plain-http-loopback", None)
json.dump(c, open(sys.argv[2], "w"), indent=1)
EOF
before=$(last_pass)
ip netns exec "$NS" "$TS" run -c "$WORK/config-idle.json" --log-level "${LOG_LEVEL:-info}" >"$WORK/daemon.log" 2>&1 &
DPID=$!
i=0
while [ "$(last_pass)" = "$before" ]; do
	i=$((i + 1))
	kill -0 "$DPID" 2>/dev/null || { cat "$WORK/daemon.log" >&2; exit 1; }
	[ $i -lt 600 ] || { echo "no pass within 600 s" >&2; exit 1; }
	sleep 1
done
first_cpu=$(cpu_of "$DPID")
sleep 2 # the pass's follow-up (its own VICI events), if any
scale_clear_requests "$NS" "$EMU_URL"
pass0=$(last_pass)
c0=$(cpu_of "$DPID")
sleep "$SECONDS_IDLE"
c1=$(cpu_of "$DPID")
pass1=$(last_pass)
passes=0
[ "$pass1" = "$pass0" ] || passes="1 or more (the last at $pass1)"
requests=$(scale_requests "$NS" "$EMU_URL" | wc -l)
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$DPID/status")
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$DPID/status")
echo "daemon start and first pass: $first_cpu CPU-s"
# What of the RSS is the daemon's own (private: heap, stacks, written data)
# and what is shared library pages (clean file pages other processes share).
awk '/^(Pss|Private_Clean|Private_Dirty|Shared_Clean|Shared_Dirty|Anonymous):/ {
	v[$1] = $2 } END {
	printf "RSS split (smaps_rollup): private %.1f MiB (dirty %.1f, clean %.1f), shared %.1f MiB, anonymous %.1f MiB, PSS %.1f MiB\n",
		(v["Private_Clean:"] + v["Private_Dirty:"]) / 1024, v["Private_Dirty:"] / 1024,
		v["Private_Clean:"] / 1024, (v["Shared_Clean:"] + v["Shared_Dirty:"]) / 1024,
		v["Anonymous:"] / 1024, v["Pss:"] / 1024 }' "/proc/$DPID/smaps_rollup"
# Where the resident pages are, by mapping (the largest first): each
# library's file pages (text and read-only data; shared) and its written
# data (private dirty: relocations, .data, .bss), the heap, the stacks.
awk '/^[0-9a-f]+-[0-9a-f]+ / { name = $6 == "" ? "[anon]" : $6; sub(/.*\//, "", name) }
	/^Rss:/ { rss[name] += $2 } /^Private_Dirty:/ { pd[name] += $2 }
	END { for (m in rss) if (rss[m] > 0) printf "%d %d %s\n", rss[m], pd[m], m }' \
	"/proc/$DPID/smaps" | sort -rn | awk '
	NR <= 14 { line = line sprintf("%s%s %.2f (%.2f private dirty)", NR > 1 ? ", " : "", $3, $1 / 1024, $2 / 1024) }
	NR > 14 { rest += $1; restd += $2; k++ }
	END { printf "RSS by mapping, MiB: %s; %d more mappings %.2f (%.2f private dirty)\n", line, k, rest / 1024, restd / 1024 }'
# SMAPS_OUT=FILE: the daemon's /proc/PID/smaps copied there at the end.
[ -z "${SMAPS_OUT:-}" ] || cp "/proc/$DPID/smaps" "$SMAPS_OUT"
# LOG_OUT=FILE: the daemon's log so far copied there.
[ -z "${LOG_OUT:-}" ] || cp "$WORK/daemon.log" "$LOG_OUT"
awk -v n="$N" -v s="$SECONDS_IDLE" -v c0="$c0" -v c1="$c1" -v rss="$rss" -v hwm="$hwm" \
	-v p="$passes" -v r="$requests" 'BEGIN {
	printf "daemon idle, %d tunnels in sync, %d s: %.4f CPU-s/min (goal <= 0.01), RSS %.1f MiB, peak %.1f MiB (goal <= 16 MB), passes: %s, %d API requests (goal 0 between resyncs)\n",
		n, s, (c1 - c0) * 60 / s, rss / 1024, hwm / 1024, p, r
	if (r > 0)
		printf "resync passes: %d (one list each), %.3f CPU-s per pass\n", r, (c1 - c0) / r }'
