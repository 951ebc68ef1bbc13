#!/bin/sh
# The test command: installs what is missing, builds tunnelsync twice
# (warnings as errors; then with ASan/UBSan) and runs the whole ctest suite
# in both, valgrind variants included in the first. Exits non-zero on any
# failure. Usage: contrib/check.sh [--no-deps] [--quick] [ctest args...]
#   --quick   only the first build (no sanitizer pass)
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
echo "=== test build/check"
(cd build/check && ctest --output-on-failure -j "$jobs" "$@")

if [ "$quick" = 0 ]; then
	run_build build/sanitize -DCMAKE_BUILD_TYPE=Debug -DTUNNELSYNC_SANITIZE=ON -DTUNNELSYNC_TEST_HOOKS=ON
	echo "=== test build/sanitize (ASan/UBSan)"
	# The real-ESP guest suite already ran in the first build; under ASan its
	# single virtual CPU makes it slow for no extra coverage of our code.
	(cd build/sanitize &&
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
			ctest --output-on-failure -j "$jobs" -LE 'kernel|bench' "$@")
fi
echo "=== check.sh: all suites passed"
