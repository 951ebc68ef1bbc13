#!/bin/sh
# Guest side of the IKE plane's real-ESP test: runs inside the user-mode
# Linux guest (a kernel with XFRM, ESP, GCM), as root. It runs the charon
# suite with kernel-netlink in "kernel-esp" mode: two namespaces joined by
# veth, a charon in each (tests/lib/charon-netns.sh), the gateway's charon
# driven by agent/ike; the CHILD SA must come up, and both SPIs that the
# observation reports must be in `ip xfrm state` of the gateway's namespace.
#
# Usage (in the guest): tests/kernel/ike-child-sa.sh BUILD_DIR
#   BUILD_DIR: the build tree holding tests/ike/test-ike-charon-xfrm (the
#   same executable as test-ike-charon). Exit 0 pass, 77 skipped, else fail.
# Registered with ctest as ike-child-sa-uml (tests/kernel/CMakeLists.txt),
# which starts it through tests/kernel/run-uml.
set -eu

build=${1:?usage: ike-child-sa.sh BUILD_DIR}
exe="$build/tests/ike/test-ike-charon-xfrm"
[ -x "$exe" ] || { echo "ike-child-sa.sh: $exe not built" >&2; exit 1; }
# The guest's kernel must have ESP; say so plainly instead of failing late.
if ! ip xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 \
	aead 'rfc4106(gcm(aes))' 0x0102030405060708090a0b0c0d0e0f1011121314 128 2>/dev/null; then
	echo "ike-child-sa.sh: this kernel cannot install ESP SAs" >&2
	exit 77
fi
ip xfrm state delete src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100
# Keep the charons' logs and show them when the suite fails.
TS_HARNESS_DIR=$(mktemp -d /tmp/ike-child-sa.XXXXXX)
TS_HARNESS_KEEP=1
export TS_HARNESS_DIR TS_HARNESS_KEEP
rc=0
"$exe" kernel-esp || rc=$?
if [ "$rc" -ne 0 ]; then
	for log in "$TS_HARNESS_DIR"/*/*/charon.log; do
		[ -f "$log" ] || continue
		echo "=== $log" >&2
		grep -E '\[(IKE|KNL|CHD)\]' "$log" | tail -40 >&2
	done
fi
rm -rf "$TS_HARNESS_DIR"
exit "$rc"
