#!/bin/sh
# Checks the YANG modules and every example with libyang's yanglint, so the
# model and the examples stay valid for any libyang-based tool, not only for
# tunnelsync's loader. Usage: yanglint.sh YANGLINT MODELS_DIR
set -eu
yanglint=$1
models=$2
if [ -z "$yanglint" ] || [ ! -x "$yanglint" ]; then
	echo "SKIP: yanglint not installed (Debian package libyang2-tools)"
	exit 77
fi
modules=$(ls "$models"/*.yang)
n=0
# shellcheck disable=SC2086
"$yanglint" -p "$models" $modules
for ex in "$models"/examples/*.json "$models"/examples/*.xml; do
	[ -e "$ex" ] || continue
	echo "yanglint: $ex"
	# shellcheck disable=SC2086
	"$yanglint" -p "$models" $modules "$ex"
	n=$((n + 1))
done
[ "$n" -ge 2 ] || { echo "expected at least two examples, found $n" >&2; exit 1; }
# It must also refuse what the model forbids (proves the run is not a no-op).
bad=$(mktemp /tmp/ts-yanglint-XXXXXX.json)
trap 'rm -f "$bad"' EXIT
sed 's/"time": 3900/"time": 99/' "$models/examples/gateway.json" >"$bad"
# shellcheck disable=SC2086
if "$yanglint" -p "$models" $modules "$bad" 2>/dev/null; then
	echo "yanglint accepted a child SA lifetime of 99 s" >&2
	exit 1
fi
echo "yanglint: modules and $n examples valid"
