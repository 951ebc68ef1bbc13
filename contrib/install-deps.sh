#!/bin/sh
# Installs every Debian 12 package that building tunnelsync and running all
# of its test suites need. Idempotent and non-interactive: packages already
# present are not touched, so a second run makes no change and needs no network.
set -eu

PACKAGES="
build-essential cmake pkg-config git ca-certificates
libcurl4-openssl-dev libssl-dev libnl-3-dev libnl-xfrm-3-dev libnl-route-3-dev
libyang2-dev libyang2-tools libjansson-dev libcmocka-dev libmicrohttpd-dev
prometheus
valgrind clang-format clang libclang-rt-dev gdb
python3 python3-jsonschema openssl curl faketime
iproute2 iputils-ping kmod procps util-linux systemd
strongswan-charon strongswan-swanctl libcharon-extra-plugins
libstrongswan-standard-plugins
user-mode-linux qemu-system-x86 linux-image-amd64
man-db debhelper lintian fakeroot
podman buildah runc uidmap mmdebstrap skopeo debian-archive-keyring

"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done

# The Kubernetes manifests' test renders with kubectl and validates with
# npm's kubernetes-models: Debian's kubernetes-client and npm only where no
# kubectl / npm is there already (another source's would conflict).
command -v kubectl >/dev/null 2>&1 || missing="$missing kubernetes-client"
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"

# npm modules for tests/packaging/k8s-validate.js, pinned, outside the tree.
node_modules() {
	dir=/var/cache/tunnelsync/node
	[ -f "$dir/node_modules/kubernetes-models/package.json" ] && [ -f "$dir/node_modules/yaml/package.json" ] &&
		return 0
	echo "install-deps: npm modules for the manifest test in $dir"
	mkdir -p "$dir"
	npm install --prefix "$dir" --no-audit --no-fund --no-save kubernetes-models@4.5.1 yaml@2.9.1 >/dev/null
}

if [ -z "$missing" ]; then
	node_modules
	echo "install-deps: all packages present"
	exit 0
fi

echo "install-deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# Where systemd runs, strongSwan's packages start the system charon; the
# tests never touch it: each starts its own charons in its own network
# namespaces, with their own sockets and a private /run.
$SUDO apt-get install -y -q --no-install-recommends $missing
# prometheus is there for promtool alone (the tests run `promtool check
# metrics` on /metrics; Debian ships promtool in no smaller package): where
# systemd runs, its server is not left running.
case " $missing " in
*" prometheus "*)
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		$SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
	fi
	;;
esac
node_modules
