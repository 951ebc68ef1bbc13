#!/bin/sh
# Checks tests/kernel/run-uml itself: exit status, stdout and stderr of the
# guest command come back; the guest runs a real UML kernel with the ESP
# modules loaded; --env reaches the command; --timeout stops a hung guest
# with status 124; user-space register state survives page faults, thread
# switches, fork and signals in the guest (FPU_CHECK, uml_fpu_check.c, run
# once with the runner's GLIBC_TUNABLES and once with glibc's own choice of
# string functions).
#
# Usage: run-uml-selftest.sh RUNNER FPU_CHECK
set -u
runner=$1
fpu_check=${2:?usage: run-uml-selftest.sh RUNNER FPU_CHECK}
fail() { echo "run-uml-selftest: $*" >&2; exit 1; }

out=$("$runner" --timeout 60 --env TS_SELFTEST=hello -- sh -c \
	'echo "out:$TS_SELFTEST"; echo err >&2; uname -r; grep -c . /proc/modules >/dev/null;
	 [ -d /sys/module/esp4 ] && [ -d /sys/module/xfrm_user ] && echo modules-ok; exit 7' \
	2>/tmp/run-uml-selftest.$$)
rc=$?
err=$(cat /tmp/run-uml-selftest.$$)
rm -f /tmp/run-uml-selftest.$$
[ "$rc" = 7 ] || fail "expected status 7, got $rc (stderr: $err)"
echo "$out" | grep -qx "out:hello" || fail "stdout/--env lost: $out"
echo "$out" | grep -qx "modules-ok" || fail "ESP modules not loaded: $out"
echo "$out" | grep -q "^6\." || fail "no guest kernel version in: $out"
[ "$(uname -r)" != "$(echo "$out" | sed -n 3p)" ] || fail "command ran on the host kernel"
echo "$err" | grep -qx "err" || fail "stderr lost: $err"

out=$("$runner" --timeout 120 -- sh -c '"$1" && echo "--- without GLIBC_TUNABLES" &&
	env -u GLIBC_TUNABLES "$1"' sh "$fpu_check" 2>&1)
rc=$?
echo "$out"
[ "$rc" = 0 ] || fail "register state is not preserved in the guest (status $rc)"
[ "$(echo "$out" | grep -c '^ok: 0 failure')" = 2 ] || fail "uml-fpu-check did not run twice"

"$runner" --timeout 5 -- sleep 100 >/dev/null 2>&1
rc=$?
[ "$rc" = 124 ] || fail "expected 124 on timeout, got $rc"
echo "run-uml-selftest: ok"
