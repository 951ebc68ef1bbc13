#!/bin/sh
# Recaptures the XFRM netlink fixtures of this folder from a real kernel
# (Debian's user-mode Linux, through tests/kernel/run-uml).
# usage: tests/data/xfrm/capture.sh [BUILD_DIR]    (default: ./build)
# Needs root (network namespaces inside the guest are fine without, but
# run-uml is used by the root-only test suites) and a built xfrm-capture.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
tool="$build/tests/kernel/xfrm-capture"
[ -x "$tool" ] || { echo "capture.sh: build $tool first (cmake --build $build)" >&2; exit 1; }
exec "$root/tests/kernel/run-uml" --timeout 180 --rw "$here" -- \
	sh "$here/guest-capture.sh" "$tool" "$here"
