#!/bin/sh
# Makes the Debian 12 base image of the Containerfile's build stage without
# any registry: mmdebstrap builds a root file system from the Debian archive
# (the mirror this machine's apt uses) with the build dependencies, and
# podman imports it as localhost/tunnelsync-build-base:bookworm into the
# storage podman is configured with (CONTAINERS_STORAGE_CONF).
#
# The root file system tar (about 600 MB, 2-3 minutes to make) is cached in
# $TUNNELSYNC_CACHE (default /var/cache/tunnelsync), named by a hash of the
# suite and the package list, so it is made once per machine and again only
# when the list below changes; the import takes about 20 s.
# Usage: make-base.sh [IMAGE_NAME]
set -eu
image=${1:-localhost/tunnelsync-build-base:bookworm}
cache=${TUNNELSYNC_CACHE:-/var/cache/tunnelsync}
suite=bookworm
packages="cmake,pkg-config,libcurl4-openssl-dev,libssl-dev,libjansson-dev,libmicrohttpd-dev,libnl-3-dev,libnl-route-3-dev,libnl-xfrm-3-dev,libyang2-dev,libyang2-tools,python3,ca-certificates"
mirror=${TUNNELSYNC_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
	[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "'$suite'" { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi
key=$(printf '%s %s buildd' "$suite" "$packages" | sha256sum | cut -c1-16)
tar=$cache/debian-$suite-build-$key.tar

if podman image exists "$image" 2>/dev/null; then
	exit 0
fi
mkdir -p "$cache"
if [ ! -s "$tar" ]; then
	echo "make-base: building $tar from $mirror (once per machine)" >&2
	tmp=$(mktemp "$tar.XXXXXX")
	trap 'rm -f "$tmp"' EXIT
	mmdebstrap --quiet --mode=root --variant=buildd --include="$packages" --format=tar \
		"$suite" "$tmp" "$mirror" >&2
	mv "$tmp" "$tar"
	trap - EXIT
fi
podman import --quiet "$tar" "$image" >/dev/null
echo "make-base: $image from $tar" >&2
