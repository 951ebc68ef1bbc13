#!/bin/sh
# `tunnelsync validate` end to end: exit 0 and a summary for a valid
# config, exit 1 and "file:line: path: message" on stderr for an invalid
# one, exit 64 for a usage error. Usage: validate-cli.sh TUNNELSYNC MODELS_DIR
set -eu
bin=$1
models=$2
tmp=$(mktemp -d /tmp/ts-validate-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# Valid, with --models and with the built-in fallback to the source tree.
"$bin" validate --models "$models" "$models/examples/gateway.json" >"$tmp/out" 2>"$tmp/err" ||
	fail "valid example: exit $? ($(cat "$tmp/err"))"
grep -q "^revision: " "$tmp/out" || fail "no revision line"
grep -q "^tunnels: 2$" "$tmp/out" || fail "no tunnel count"
grep -Eq "^  ams-cf-a +c4a7362d577a6c3019a474fd6f485821 +edge-ams-1 +203.0.113.10 +-> 198.51.100.1 +route-based/if-id=101 +random +ams-uplink$" "$tmp/out" ||
	fail "tunnel line: $(cat "$tmp/out")"
"$bin" validate -c "$models/examples/gateway.xml" >"$tmp/out" || fail "xml example with -c"
grep -q "fra-cf-b .* file " "$tmp/out" || fail "xml tunnel line"

# Invalid: exit 1, one line on stderr naming file, line, path and the rule.
sed 's/"time": 3900/"time": 99/' "$models/examples/gateway.json" >"$tmp/bad.json"
line=$(grep -n '"time": 99' "$tmp/bad.json" | cut -d: -f1)
set +e
"$bin" validate --models "$models" "$tmp/bad.json" >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "invalid config: exit $rc, expected 1"
expected="$tmp/bad.json:$line: /tunnelsync:tunnelsync/tunnels/tunnel[name='ams-cf-b']/ike/child-sa-lifetime-soft/time: must be between 1800 and 28800 seconds"
grep -qF "$expected" "$tmp/err" || fail "stderr: $(cat "$tmp/err"), expected $expected"
[ ! -s "$tmp/out" ] || fail "stdout not empty on error: $(cat "$tmp/out")"
grep -q "libyang" "$tmp/err" && fail "libyang output leaked to stderr"

# A missing config is invalid too (exit 1), not a usage error.
set +e
"$bin" validate "$tmp/none.json" 2>"$tmp/err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "missing config: exit $rc"
grep -q "none.json" "$tmp/err" || fail "missing config not named"

# A models directory that does not exist is named.
set +e
"$bin" validate --models "$tmp/no-models" "$models/examples/gateway.json" 2>"$tmp/err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "missing models dir: exit $rc"
grep -q "no-models: YANG models directory" "$tmp/err" || fail "models dir: $(cat "$tmp/err")"

# Usage errors: 64.
set +e
"$bin" validate >/dev/null 2>&1
rc=$?
set -e
[ "$rc" = 64 ] || fail "no CONFIG: exit $rc, expected 64"
set +e
"$bin" validate a.json b.json >/dev/null 2>&1
rc=$?
set -e
[ "$rc" = 64 ] || fail "two CONFIGs: exit $rc, expected 64"

# Help.
"$bin" validate --help >"$tmp/out" || fail "validate --help"
grep -q "validate CONFIG" "$tmp/out" || fail "help text"
"$bin" --help | grep -q "validate CONFIG" || fail "validate missing from --help"
echo "validate-cli: ok"
