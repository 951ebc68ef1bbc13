#!/bin/sh
# contrib/quickstart.sh --keep leaves the demo running as it says: both
# namespaces exist, the printed `plan` command works in them and finds
# everything in sync (exit 0), status shows make-before-break on (the
# quickstart's charons load contrib/strongswan/tunnelsync.conf), and the
# printed teardown removes namespaces, processes and files.
# Usage: quickstart-keep.sh SOURCE_DIR BUILD_DIR
set -eu
src=$1
build=$2
[ "$(id -u)" -eq 0 ] || { echo "quickstart-keep: needs root (network namespaces)" >&2; exit 77; }
out=$(mktemp /tmp/ts-qs-keep-XXXXXX)
teardown=""
cleanup() {
	[ -z "$teardown" ] || [ ! -f "$teardown" ] || sh "$teardown" >/dev/null 2>&1 || true
	rm -f "$out"
}
trap cleanup EXIT
fail() {
	echo "quickstart-keep: $*" >&2
	cat "$out" >&2
	exit 1
}
rc=0
sh "$src/contrib/quickstart.sh" --build-dir "$build" --no-deps --demo-only --keep >"$out" 2>&1 || rc=$?
[ "$rc" -ne 77 ] || { tail -3 "$out"; exit 77; }
[ "$rc" -eq 0 ] || fail "quickstart --keep exited $rc"
grep -q '(exit 2: changes pending)' "$out" || fail "no exit status explained in words"
teardown=$(sed -n 's/^  sh \(.*teardown.sh\)$/\1/p' "$out")
[ -f "$teardown" ] || fail "no teardown script printed"
dir=$(dirname "$teardown")
ns=$(sed -n 's/^  namespaces: \([^ ]*\) (gateway), \([^ ]*\) .*/\1 \2/p' "$out")
[ -n "$ns" ] || fail "no namespaces printed"
for n in $ns; do
	ip netns list | grep -q "^$n\\b" || fail "namespace $n not kept"
done
cmd=$(sed -n 's/^  \(ip netns exec .* plan -c .*\)$/\1/p' "$out")
[ -n "$cmd" ] || fail "no plan command printed"
rc=0
sh -c "$cmd" >"$out.plan" 2>&1 || rc=$?
grep -q 'nothing to do' "$out.plan" || { cat "$out.plan"; rc=99; }
rm -f "$out.plan"
[ "$rc" -eq 0 ] || fail "the printed plan command exited $rc on the kept demo"
status_cmd=$(sed -n 's/^  \(ip netns exec .* status -c .*\)$/\1/p' "$out")
sh -c "$status_cmd" | grep -q '^make-before-break: on' || fail "make-before-break is not on in the demo"
sh "$teardown" >/dev/null
teardown=""
for n in $ns; do
	ip netns list | grep -q "^$n\\b" && fail "namespace $n left after teardown"
done
[ ! -e "$dir" ] || fail "$dir left after teardown"
pgrep -f "$dir" >/dev/null && fail "processes of $dir left after teardown"
echo "quickstart-keep: kept demo works and is removed by its teardown"
