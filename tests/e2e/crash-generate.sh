#!/bin/sh
# Crash at every rotation step, source generate (psk_generate; see
# crash.sh). A crash at rotate:remote-sent loses the key Cloudflare minted
# before the journal got it (the window store.h names); the next pass must
# see last_generated_on move and rotate again, so both sides still end
# with one key.
# Usage: crash-generate.sh TUNNELSYNC_BINARY
set -eu
E2E_SOURCE_A=generate
E2E_SOURCE_B=generate
. "$(dirname "$0")/crash.sh"
