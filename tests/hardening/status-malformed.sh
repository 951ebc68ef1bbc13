#!/bin/sh
# `tunnelsync status` on a malformed STATE_DIR/status.json: exit 1 and a
# message naming the file and where it breaks, in text and JSON mode (it
# used to exit 1 in silence, or pass the garbage on as JSON); a valid one
# still prints with exit 0.
# Usage: status-malformed.sh TUNNELSYNC_BINARY SOURCE_DIR
set -eu
TS=${1:?usage: status-malformed.sh TUNNELSYNC_BINARY SOURCE_DIR}
SRC=${2:?}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
CONFIG=$SRC/models/examples/gateway.json
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

run() {
	rc=0
	"$TS" status -c "$CONFIG" --models "$SRC/models" --state-dir "$D" "$@" >"$D/out" 2>"$D/err" || rc=$?
}

check_bad() {
	what=$1
	want=$2
	for mode in text json; do
		if [ $mode = json ]; then run --json; else run; fi
		[ "$rc" -eq 1 ] || fail "$what ($mode): exit $rc, want 1"
		grep -qF "$D/status.json" "$D/err" || fail "$what ($mode): message does not name the file: $(cat "$D/err")"
		grep -qF "$want" "$D/err" || fail "$what ($mode): message lacks '$want': $(cat "$D/err")"
		[ ! -s "$D/out" ] || fail "$what ($mode): printed something on stdout"
	done
	echo "ok: $what: $(cat "$D/err")"
}

printf '{"condition": "Ready", "tunnels": [{"name": "t1"' >"$D/status.json"
check_bad "truncated JSON" "line 1, column"
printf '{"condition": "Ready",\n "tunnels": [}\n' >"$D/status.json"
check_bad "syntax error on line 2" "line 2, column"
printf '[1, 2]\n' >"$D/status.json"
check_bad "an array" "not a JSON object"
: >"$D/status.json"
check_bad "an empty file" "status.json"

printf '{"condition": "Ready", "reason": "InSync", "time": "2026-12-01T00:00:00Z", "tunnels": [{"name": "t1", "key_generation": 2}]}\n' >"$D/status.json"
run
[ "$rc" -eq 0 ] || fail "valid status: exit $rc: $(cat "$D/err")"
grep -q '^t1 ' "$D/out" || fail "valid status: tunnel t1 not shown"
run --json
[ "$rc" -eq 0 ] || fail "valid status --json: exit $rc"
echo "ok: a valid status.json prints (text and JSON)"
