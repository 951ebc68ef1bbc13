#!/bin/sh
# The tunnelsync executable leaves GnuTLS uninitialized
# (agent/gnutls_unused.c): GnuTLS's constructor hook and libmicrohttpd's
# gnutls_global_init() must bind to the executable's definitions (the
# metrics listener, libmicrohttpd, still answering through the executable:
# tests/e2e/daemon.sh; the API client over TLS: tests/bench/idle-scale.sh
# TLS=system, ctest bench-idle-scale). Fails when the exports are lost
# (agent/exports.list) or a library stops going through them.
#   gnutls-uninit.sh TUNNELSYNC
set -eu
TS=${1:?usage: gnutls-uninit.sh TUNNELSYNC}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
LD_DEBUG=bindings "$TS" --version >/dev/null 2>"$out"
fail=0
for pair in "libgnutls.so:_gnutls_global_init_skip" "libmicrohttpd.so:gnutls_global_init"; do
	lib=${pair%%:*}
	sym=${pair#*:}
	if ! grep "binding file [^ ]*$lib" "$out" | grep -q "to [^ ]*tunnelsync \[0\]: normal symbol \`$sym'"; then
		echo "FAIL: $lib's $sym does not bind to the executable:" >&2
		grep "symbol \`$sym'" "$out" >&2 || echo "  (no binding of $sym at all)" >&2
		fail=1
	fi
done
[ $fail -eq 0 ] || exit 1
echo "ok: GnuTLS's constructor hook and libmicrohttpd's gnutls_global_init bind to the executable"
