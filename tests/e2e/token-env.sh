#!/bin/sh
# API token from CLOUDFLARE_API_TOKEN when the config names no token file:
# the passes work with it (both tunnels end in sync); without any token the
# Cloudflare plane is reported unreadable, nothing is rotated and the
# message names CLOUDFLARE_API_TOKEN; the token appears in no output.
# Usage: token-env.sh TUNNELSYNC_BINARY
set -eu
E2E_TS=${1:?usage: token-env.sh TUNNELSYNC_BINARY}
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_require_commands once plan status
e2e_up
sed -i 's|"api-token-file": "[^"]*",||' "$E2E_DIR/config.json"
grep -q api-token-file "$E2E_DIR/config.json" && e2e_fail "could not drop api-token-file"

e2e_say "no token anywhere"
unset CLOUDFLARE_API_TOKEN || true
rc=0
e2e_ts plan plan || rc=$?
[ "$rc" -ne 0 ] || e2e_fail "plan without a token claims to be in sync"
grep -q CLOUDFLARE_API_TOKEN "${E2E_LAST_OUT%.out}.err" || e2e_fail "no message naming CLOUDFLARE_API_TOKEN"
rc=0
e2e_ts once once || rc=$?
[ "$rc" -ne 0 ] || e2e_fail "once without a token claims to be in sync"
[ -z "$(e2e_emu_writes)" ] || e2e_fail "API writes without a token?"
[ -z "$(find "$E2E_DIR/state" -name '*.jnl' -o -name '*.rec' 2>/dev/null)" ] ||
	e2e_fail "a rotation started although Cloudflare could not be read"

e2e_say "token from the environment"
CLOUDFLARE_API_TOKEN=$(cat "$E2E_DIR/emu/token")
export CLOUDFLARE_API_TOKEN
e2e_bootstrap
token=$CLOUDFLARE_API_TOKEN
if grep -rqF "$token" "$E2E_DIR/out" "$E2E_DIR/state" "$E2E_DIR/a/charon.log"; then
	e2e_fail "the API token appears in an output or state file"
fi
e2e_say "token-env OK"
