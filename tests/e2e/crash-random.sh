#!/bin/sh
# Crash at every rotation step, source random (see crash.sh).
# Usage: crash-random.sh TUNNELSYNC_BINARY
set -eu
E2E_SOURCE_A=random
E2E_SOURCE_B=random
. "$(dirname "$0")/crash.sh"
