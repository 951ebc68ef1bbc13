#!/bin/sh
# Guest side of test-xfrmi-qemu: everything that needs XFRM interfaces, in
# one qemu boot (tests/kernel/run-qemu, Debian's stock kernel; the boot is
# most of a guest's cost): the owned-interface adapter test
# (tests/route/test_xfrmi_qemu.c), then ESP traffic through an agent-owned
# XFRM interface with a rotation (tests/kernel/traffic-xfrmi.sh). Both run
# even if the first fails; each part's time is printed.
#
# Usage (in the guest): tests/kernel/xfrmi-qemu.sh BUILD_DIR TEST_XFRMI_QEMU
# Exit 0 when both pass, 77 when one was skipped and none failed (the
# reason is printed), else 1.
set -u

build=${1:?usage: xfrmi-qemu.sh BUILD_DIR TEST_XFRMI_QEMU}
bin=${2:?usage: xfrmi-qemu.sh BUILD_DIR TEST_XFRMI_QEMU}
here=$(cd "$(dirname "$0")" && pwd)

worst=0
part() {
	name=$1
	shift
	t0=$(date +%s)
	rc=0
	"$@" || rc=$?
	echo "== xfrmi-qemu: $name exited $rc after $(($(date +%s) - t0)) s"
	if [ "$rc" -eq 77 ]; then
		[ "$worst" -ne 0 ] || worst=77
	elif [ "$rc" -ne 0 ]; then
		worst=1
	fi
}
part test-xfrmi-qemu env TS_IN_QEMU=1 "$bin"
part traffic-xfrmi sh "$here/traffic-xfrmi.sh" "$build"
exit "$worst"
