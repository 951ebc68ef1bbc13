#!/bin/sh
# Checks contrib/systemd/tunnelsync.service offline: systemd-analyze verify
# must be silent (it only warns about unknown keys and bad values, with
# exit 0), and the hardening score must stay at or below 3.0 (systemd counts the threshold in tenths: 30) ("OK").
# Usage: systemd-unit.sh SOURCE_DIR TUNNELSYNC_BINARY
set -eu
src=$1
bin=$2
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing (package systemd)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# verify checks that ExecStart exists: point it at the built binary.
sed "s|/usr/bin/tunnelsync|$bin|" "$src/contrib/systemd/tunnelsync.service" >"$tmp/tunnelsync.service"
systemd-analyze verify "$tmp/tunnelsync.service" >"$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
if [ -s "$tmp/out" ]; then
	echo "systemd-analyze verify complained:" >&2
	cat "$tmp/out" >&2
	exit 1
fi
systemd-analyze security --offline=yes --threshold=30 "$tmp/tunnelsync.service" >"$tmp/sec" 2>&1 || {
	tail -5 "$tmp/sec"
	exit 1
}
tail -1 "$tmp/sec"
grep -q '^Type=notify' "$src/contrib/systemd/tunnelsync.service"
grep -q '^CapabilityBoundingSet=CAP_NET_ADMIN$' "$src/contrib/systemd/tunnelsync.service"
echo "systemd unit: verified"
