#!/bin/sh
# The test command: installs what is missing, builds tunnelsync three times
# (warnings as errors; then with ASan/UBSan; then the clang fuzz build) and
# runs the whole ctest suite in the first two, valgrind variants included in
# the first, and the fuzz suites in the third. Exits non-zero on any
# failure. Usage: contrib/check.sh [--no-deps] [--quick] [ctest args...]
#   --quick   only the first build (no sanitizer or fuzz pass)
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

deps=1
quick=0
while [ $# -gt 0 ]; do
	case "$1" in
	--no-deps) deps=0 ;;
	--quick) quick=1 ;;
	*) break ;;
	esac
	shift
done

if [ "$deps" = 1 ]; then
	sh contrib/install-deps.sh
fi

jobs=$(nproc 2>/dev/null || echo 2)
# Network-namespace tests are root-only; the suites need root anyway.
if [ "$(id -u)" -ne 0 ]; then
	echo "check.sh: the integration suites create network namespaces and need root" >&2
	exit 1
fi

run_build() {
	dir=$1
	shift
	echo "=== configure $dir ($*)"
	cmake -S . -B "$dir" -DTUNNELSYNC_WERROR=ON "$@" >"$dir.configure.log" 2>&1 ||
		{ cat "$dir.configure.log"; exit 1; }
	echo "=== build $dir"
	cmake --build "$dir" -j "$jobs"
}

mkdir -p build
run_build build/check -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTUNNELSYNC_TEST_HOOKS=ON
# Suites skip themselves (exit 77) when a tool or privilege is missing.
# This script installed everything they need, so a skip here means a broken
# suite: it fails the check like any failure.
run_ctest() {
	dir=$1
	shift
	log="$dir/ctest.log"
	rc=0
	(cd "$dir" && ctest --output-on-failure -j "$jobs" "$@") 2>&1 | tee "$log" || rc=1
	grep -q 'tests passed' "$log" || rc=1
	if grep -q '\*\*\*Skipped\|Not Run' "$log"; then
		echo "check.sh: suites were skipped or not run; everything they need is installed:" >&2
		grep '\*\*\*Skipped\|Not Run' "$log" >&2
		rc=1
	fi
	grep -q '100% tests passed' "$log" || rc=1
	return $rc
}

echo "=== test build/check"
run_ctest build/check "$@"

if [ "$quick" = 0 ]; then
	run_build build/sanitize -DCMAKE_BUILD_TYPE=Debug -DTUNNELSYNC_SANITIZE=ON -DTUNNELSYNC_TEST_HOOKS=ON
	echo "=== test build/sanitize (ASan/UBSan)"
	# The real-ESP guest suite already ran in the first build; under ASan its
	# single virtual CPU makes it slow for no extra coverage of our code.
	# The package, image and manifest builds (label dist) build their own
	# copy of the agent: nothing of this build's is in them.
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_ctest build/sanitize -LE 'kernel|bench|dist' "$@"
fi
if [ "$quick" = 0 ]; then
	# The fuzz build: clang, every library with coverage + ASan/UBSan, the
	# libFuzzer targets replaying their corpora and the instrumentation
	# check. Long fuzzing sessions are by hand (README.md, "Reliability").
	run_build build/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTUNNELSYNC_FUZZ=ON
	echo "=== test build/fuzz (libFuzzer targets)"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_ctest build/fuzz -L fuzz "$@"
fi
echo "=== check.sh: all suites passed"
