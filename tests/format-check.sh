#!/bin/sh
# Fails when a tracked C source differs from what clang-format makes of it.
# Usage: format-check.sh CLANG_FORMAT (run from the source root).
set -eu
cf=${1:-clang-format}
files=$(find agent tests -name '*.[ch]' -not -path '*/build*' | sort)
# shellcheck disable=SC2086
$cf --dry-run --Werror --style=file $files
echo "format-check: $(echo "$files" | wc -l) files formatted"
