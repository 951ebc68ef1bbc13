#!/bin/sh
# Every command's --help lists its own options, and exactly those: each
# option a command's help shows is accepted by it, each option of the other
# commands is refused by it (exit 64, naming the option). Every help line
# fits 80 columns. Usage: cli-help.sh TUNNELSYNC_BINARY
set -eu
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "cli-help: $*" >&2
	exit 1
}
too_long() {
	awk -v what="$1" 'length($0) > 80 { printf "%s: line %d has %d columns: %s\n", what, NR, length($0), $0; bad = 1 } END { exit bad }' "$2"
}

"$bin" --help >"$tmp/top" || fail "tunnelsync --help exit $?"
too_long "tunnelsync --help" "$tmp/top" || fail "tunnelsync --help has lines over 80 columns"
commands=$(sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p' "$tmp/top")
[ "$(echo "$commands" | wc -w)" -ge 7 ] || fail "too few commands in --help: $commands"
rc=0
"$bin" frobnicate >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 64 ] || fail "an unknown command exits $rc, not 64"

# Every option any command lists, with its argument's name.
for c in $commands; do
	"$bin" "$c" --help >"$tmp/$c" || fail "$c --help exit $?"
	too_long "tunnelsync $c --help" "$tmp/$c" || fail "$c --help has lines over 80 columns"
	head -1 "$tmp/$c" | grep -q "^Usage: tunnelsync $c\\b" || fail "$c --help does not start with its usage"
	sed -n '/^Options:/,$p' "$tmp/$c" | grep -o -- '--[a-z][a-z-]*\( [A-Z][A-Z]*\)\?' >>"$tmp/all" || true
done
sort -u "$tmp/all" | grep -v -- '^--help' >"$tmp/options"
[ "$(wc -l <"$tmp/options")" -ge 8 ] || fail "too few options found: $(cat "$tmp/options")"

checked=0
for c in $commands; do
	while read -r opt arg; do
		set -- "$opt"
		case $opt in
		--log-level) set -- "$opt" info ;;
		--log-format) set -- "$opt" text ;;
		*) [ -z "$arg" ] || set -- "$opt" x ;;
		esac
		if sed -n '/^Options:/,$p' "$tmp/$c" | grep -q -- "^ *\(-[a-z], \)\?$opt\\b"; then
			# Listed: accepted (--help stops before anything runs).
			"$bin" "$c" "$@" --help >/dev/null 2>"$tmp/err" ||
				fail "$c lists $opt but refuses it: $(cat "$tmp/err")"
		else
			rc=0
			"$bin" "$c" "$@" >/dev/null 2>"$tmp/err" || rc=$?
			[ "$rc" -eq 64 ] || fail "$c does not list $opt but accepts it (exit $rc)"
			grep -q -- "$opt is not an option of $c" "$tmp/err" ||
				fail "$c refuses $opt without saying so: $(cat "$tmp/err")"
		fi
		checked=$((checked + 1))
	done <"$tmp/options"
done
echo "cli-help: $(echo "$commands" | wc -w) commands x $(wc -l <"$tmp/options") options checked ($checked cases)"
