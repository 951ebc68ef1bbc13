#!/bin/sh
# Checks contrib/systemd/tunnelsync.service offline: systemd-analyze verify
# must be silent (it only warns about unknown keys and bad values, with
# exit 0), the hardening exposure must stay at or below 2.0 (systemd counts
# the threshold in tenths: 20), and the unit must keep its promises: the
# package's binary path, charon from either of Debian 12's units, the API
# token through the credential name the agent looks up.
# Usage: systemd-unit.sh SOURCE_DIR TUNNELSYNC_BINARY GENERATED_MAN_DIR
set -eu
src=$1
bin=$2
unit=$src/contrib/systemd/tunnelsync.service
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing (package systemd)" >&2; exit 1; }
fail() {
	echo "systemd-unit: $*" >&2
	exit 1
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# verify checks that ExecStart exists (point it at the built binary) and
# that every man: page of Documentation= opens (point MANPATH at ours).
sed "s|/usr/sbin/tunnelsync|$bin|" "$unit" >"$tmp/tunnelsync.service"
mkdir -p "$tmp/man/man8" "$tmp/man/man5"
cp "$src/man/tunnelsync.8" "$tmp/man/man8/"
cp "$3/tunnelsync.yang.5" "$tmp/man/man5/"
MANPATH=$tmp/man
export MANPATH
systemd-analyze verify "$tmp/tunnelsync.service" >"$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
if [ -s "$tmp/out" ]; then
	echo "systemd-analyze verify complained:" >&2
	cat "$tmp/out" >&2
	exit 1
fi
systemd-analyze security --offline=yes --threshold=20 "$tmp/tunnelsync.service" >"$tmp/sec" 2>&1 || {
	tail -5 "$tmp/sec"
	fail "exposure above 2.0"
}
tail -1 "$tmp/sec"

grep -q '^Type=notify' "$unit" || fail "not Type=notify"
grep -q '^ExecStart=/usr/sbin/tunnelsync run ' "$unit" || fail "ExecStart is not the package's /usr/sbin/tunnelsync"
grep -q '^CapabilityBoundingSet=CAP_NET_ADMIN$' "$unit" || fail "capabilities beyond CAP_NET_ADMIN"
for u in strongswan.service strongswan-starter.service; do
	grep -q "^Wants=.*\\b$u\\b" "$unit" || fail "no Wants= on $u"
	grep -q "^After=.*\\b$u\\b" "$unit" || fail "no After= on $u"
done
# The credential the unit loads is the one the agent reads.
name=$(sed -n 's/^#define TS_CF_CREDENTIAL_TOKEN "\(.*\)"$/\1/p' "$src/agent/cloudflare/cloudflare.h")
[ -n "$name" ] || fail "TS_CF_CREDENTIAL_TOKEN not found in agent/cloudflare/cloudflare.h"
grep -q "^LoadCredential=$name:/etc/tunnelsync/$name\$" "$unit" || fail "no LoadCredential=$name:/etc/tunnelsync/$name"
grep -q '^Environment=.*CLOUDFLARE_API_TOKEN' "$unit" && fail "the token must not be passed in the environment"
echo "systemd unit: verified"
