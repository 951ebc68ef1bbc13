#!/bin/sh
# Builds the Debian package (debian/, debhelper) from a copy of the source
# tree, offline, checks it with lintian (no error, warning or info tag that
# debian/tunnelsync.lintian-overrides does not explain), unpacks it into a
# scratch root and checks what it installs: the agent in /usr/sbin running
# from there with the packaged models, the unit, the man pages, the examples
# (validated by the packaged agent), the strongSwan snippet as a conffile,
# and maintainer scripts that neither enable nor start the service.
#
# The build runs in a copy (git's file list) in a temp directory, so it
# leaves nothing in the source tree (debian/tunnelsync/, obj-*/, ../*.deb)
# that could break another build.
# Usage: debian-package.sh SOURCE_DIR
set -eu
src=$(cd "$1" && pwd)
fail() {
	echo "debian-package: $*" >&2
	exit 1
}
for c in dpkg-buildpackage dh lintian git; do
	command -v "$c" >/dev/null || fail "$c missing (contrib/install-deps.sh installs it)"
done
tmp=$(mktemp -d /tmp/ts-deb-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/tunnelsync"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$src" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf -) |
		tar -C "$tmp/tunnelsync" -xf -
else
	# Not a git checkout (an unpacked tarball): everything but build trees.
	tar -C "$src" --exclude='./build' --exclude='./build-*' --exclude='./obj-*' -cf - . |
		tar -C "$tmp/tunnelsync" -xf -
fi
[ -f "$tmp/tunnelsync/debian/control" ] || fail "no debian/control in the copied tree"

start=$(date +%s)
# At nice 19: the guest tests beside it time packets (tests/kernel/CMakeLists.txt).
(cd "$tmp/tunnelsync" && DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" nice -n 19 \
	dpkg-buildpackage -us -uc -b >"$tmp/build.log" 2>&1) || {
	tail -40 "$tmp/build.log"
	fail "dpkg-buildpackage failed"
}
echo "debian-package: built in $(($(date +%s) - start)) s"
deb=$(ls "$tmp"/tunnelsync_*_*.deb)
[ -f "$deb" ] || fail "no .deb built"

# lintian: every tag of every level fails, except those overridden (with
# a reason) in debian/tunnelsync.lintian-overrides.
lintian --info --pedantic --fail-on error,warning,info,pedantic "$tmp"/tunnelsync_*.changes \
	>"$tmp/lintian" 2>&1 || {
	cat "$tmp/lintian"
	fail "lintian found problems"
}
grep -E '^[EWIP]: ' "$tmp/lintian" && fail "lintian tags left"

root=$tmp/root
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$tmp/control"
for f in usr/sbin/tunnelsync usr/share/tunnelsync/models/tunnelsync.yang \
	lib/systemd/system/tunnelsync.service etc/strongswan.d/tunnelsync.conf \
	usr/share/man/man8/tunnelsync.8.gz usr/share/man/man5/tunnelsync.yang.5.gz \
	usr/share/doc/tunnelsync/examples/gateway.json usr/share/doc/tunnelsync/examples/gateway.xml \
	usr/share/doc/tunnelsync/copyright; do
	[ -e "$root/$f" ] || fail "the package lacks /$f"
done
[ -d "$root/etc/tunnelsync" ] || fail "the package lacks /etc/tunnelsync/"
[ ! -e "$root/usr/bin/tunnelsync" ] || fail "/usr/bin/tunnelsync: the agent belongs in /usr/sbin"
cmp "$root/lib/systemd/system/tunnelsync.service" "$src/contrib/systemd/tunnelsync.service" ||
	fail "the packaged unit differs from contrib/systemd/tunnelsync.service"
cmp "$root/etc/strongswan.d/tunnelsync.conf" "$src/contrib/strongswan/tunnelsync.conf" ||
	fail "the packaged strongSwan snippet differs from contrib/strongswan/tunnelsync.conf"
grep -q '^ExecStart=/usr/sbin/tunnelsync ' "$root/lib/systemd/system/tunnelsync.service" ||
	fail "the unit does not run /usr/sbin/tunnelsync"
grep -qx /etc/strongswan.d/tunnelsync.conf "$tmp/control/conffiles" ||
	fail "/etc/strongswan.d/tunnelsync.conf is not a conffile"
grep -q 'make_before_break = yes' "$root/etc/strongswan.d/tunnelsync.conf" || fail "snippet lacks make_before_break"
if cat "$tmp/control/postinst" 2>/dev/null | grep -E 'deb-systemd-invoke (start|restart)|systemctl (start|restart)'; then
	fail "postinst starts the service before it is configured"
fi
grep -q "deb-systemd-helper enable" "$tmp/control/postinst" && ! grep -q "was-enabled" "$tmp/control/postinst" &&
	fail "postinst enables the service unconditionally"

# The packaged agent runs from the scratch root with the packaged models
# (the libraries it needs are the host's: the same Debian release).
"$root/usr/sbin/tunnelsync" version | grep -q '^tunnelsync [0-9]' || fail "tunnelsync version failed"
"$root/usr/sbin/tunnelsync" validate --models "$root/usr/share/tunnelsync/models" \
	"$root/usr/share/doc/tunnelsync/examples/gateway.json" >"$tmp/validate" ||
	fail "the packaged example does not validate: $(cat "$tmp/validate")"
grep -q ': valid$' "$tmp/validate" || fail "validate printed no verdict"
# Its compiled-in models directory is the packaged one: no --models needed
# once installed (here: checked through its --help).
"$root/usr/sbin/tunnelsync" validate --help | grep -q '/usr/share/tunnelsync/models' ||
	fail "the agent does not look for its models in /usr/share/tunnelsync/models"
for page in usr/share/man/man8/tunnelsync.8.gz usr/share/man/man5/tunnelsync.yang.5.gz; do
	out=$(MANWIDTH=80 man --warnings -l "$root/$page" 2>&1 >/dev/null) || fail "man $page failed"
	[ -z "$out" ] || fail "man $page warns: $out"
done
echo "debian-package: $(basename "$deb") $(du -k "$deb" | cut -f1) kB, lintian clean, installs and runs"
