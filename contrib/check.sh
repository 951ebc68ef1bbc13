#!/bin/sh
# The test command: installs what is missing, builds tunnelsync three times
# (warnings as errors; then with ASan/UBSan; then the clang fuzz build, these
# two in the background while the first build's suite runs) and runs the
# whole ctest suite in the first two, valgrind variants included in the
# first, and the fuzz suites in the third. Exits non-zero on any
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
	${RUN_NICE:-} cmake -S . -B "$dir" -DTUNNELSYNC_WERROR=ON "$@" >"$dir.configure.log" 2>&1 ||
		{ cat "$dir.configure.log"; exit 1; }
	echo "=== build $dir"
	${RUN_NICE:-} cmake --build "$dir" -j "$jobs"
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

# The sanitizer and fuzz builds compile in the background, at the lowest
# priority, while the first build's suite runs: most of that suite waits on
# charons, guests and clocks, and leaves about half the CPU idle.
bg_pid=""
bg_log=build/background-builds.log
if [ "$quick" = 0 ]; then
	echo "=== build/sanitize and build/fuzz build in the background (nice 19, log $bg_log)"
	(
		set -e
		RUN_NICE="nice -n 19"
		# Its run is almost only the e2e tests, waiting on charons: two of
		# them at a time (tests/e2e/CMakeLists.txt).
		run_build build/sanitize -DCMAKE_BUILD_TYPE=Debug -DTUNNELSYNC_SANITIZE=ON -DTUNNELSYNC_TEST_HOOKS=ON \
			-DTUNNELSYNC_E2E_SLOTS=2
		# The fuzz build: clang, every library with coverage + ASan/UBSan,
		# the libFuzzer targets replaying their corpora and the
		# instrumentation check.
		run_build build/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTUNNELSYNC_FUZZ=ON
	) >"$bg_log" 2>&1 &
	bg_pid=$!
fi
wait_background_builds() {
	bg_rc=0
	wait "$bg_pid" || bg_rc=$?
	if [ "$bg_rc" != 0 ]; then
		tail -60 "$bg_log"
		echo "check.sh: the sanitizer or fuzz build failed (exit $bg_rc, whole log in $bg_log)" >&2
		exit 1
	fi
	echo "=== background builds done"
}

echo "=== test build/check"
plain_rc=0
run_ctest build/check "$@" || plain_rc=1
if [ "$plain_rc" != 0 ]; then
	[ -z "$bg_pid" ] || kill "$bg_pid" 2>/dev/null || true
	exit 1
fi

if [ "$quick" = 0 ]; then
	wait_background_builds
	echo "=== test build/sanitize (ASan/UBSan)"
	# The real-ESP guest suite already ran in the first build; under ASan its
	# single virtual CPU makes it slow for no extra coverage of our code.
	# The package, image and manifest builds (label dist) build their own
	# copy of the agent: nothing of this build's is in them.
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_ctest build/sanitize -LE 'kernel|bench|dist' "$@"
	# Long fuzzing sessions are by hand (README.md, "Reliability").
	echo "=== test build/fuzz (libFuzzer targets)"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_ctest build/fuzz -L fuzz "$@"
fi
echo "=== check.sh: all suites passed"
