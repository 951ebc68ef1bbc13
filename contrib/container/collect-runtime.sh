#!/bin/sh
# Completes the runtime root the Containerfile copies into a scratch image:
# the shared libraries the agent links (ldd's closure, dynamic loader
# included, at the paths ldd names), the CA bundle libcurl verifies the
# Cloudflare API with, the examples, minimal passwd/group, the state and
# config directories. Runs in the build stage.
# Usage: collect-runtime.sh ROOTFS EXAMPLES_DIR
set -eu
root=$1
examples=$2
bin=$root/usr/sbin/tunnelsync
[ -x "$bin" ] || { echo "collect-runtime: no $bin" >&2; exit 1; }
# Debian 12 is merged-/usr: /lib and /lib64 are links into /usr.
mkdir -p "$root/usr/lib" "$root/usr/lib64"
ln -sfn usr/lib "$root/lib"
ln -sfn usr/lib64 "$root/lib64"
ldd "$bin" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' | sort -u >/tmp/libs
[ -s /tmp/libs ] || { echo "collect-runtime: ldd found no library" >&2; exit 1; }
while read -r lib; do
	real=$(readlink -f "$lib")
	case $lib in
	/lib/* | /lib64/*) dest=$root/usr$lib ;;
	*) dest=$root$lib ;;
	esac
	mkdir -p "$(dirname "$dest")"
	cp "$real" "$dest"
done </tmp/libs
mkdir -p "$root/etc/ssl/certs" "$root/etc/tunnelsync" "$root/var/lib/tunnelsync" "$root/var" \
	"$root/run" "$root/tmp" "$root/usr/share/doc/tunnelsync/examples"
chmod 0700 "$root/var/lib/tunnelsync"
# Debian's /var/run is /run: the default VICI socket is /var/run/charon.vici.
ln -sfn ../run "$root/var/run"
chmod 1777 "$root/tmp"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
cp "$examples"/*.json "$examples"/*.xml "$root/usr/share/doc/tunnelsync/examples/"
# Whoever the runtime maps, names resolve; no login shell exists.
echo "root:x:0:0:root:/var/lib/tunnelsync:/usr/sbin/nologin" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
# Man pages are for hosts, not images.
rm -rf "$root/usr/share/man"
echo "collect-runtime: $(wc -l </tmp/libs) libraries, $(du -sk "$root" | cut -f1) kB"
