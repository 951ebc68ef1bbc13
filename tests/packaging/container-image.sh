#!/bin/sh
# Builds the container image (contrib/container/Containerfile) with buildah
# from the local Debian 12 base (contrib/container/make-base.sh: made once
# per machine from the Debian archive and cached, see there), in storage of
# its own under a temp directory, then checks it:
# - the image config: entrypoint `tunnelsync run`, user 0:0 (see the
#   Containerfile for why not another), the state volume, the metrics port;
# - its file system: the agent, the models, the libraries, the CA bundle,
#   and no shell, no package manager, no coreutils;
# - `tunnelsync version` and `validate` of the packaged example run inside;
# - the daemon in it, on the host network with only CAP_NET_ADMIN and a
#   read-only root, serves /healthz (200) and /readyz (503: no charon, no
#   API here) and stops on SIGTERM.
# Usage: container-image.sh SOURCE_DIR
set -eu
src=$(cd "$1" && pwd)
fail() {
	echo "container-image: $*" >&2
	exit 1
}
for c in podman buildah mmdebstrap runc curl; do
	command -v "$c" >/dev/null || fail "$c missing (contrib/install-deps.sh installs it)"
done
tmp=$(mktemp -d /tmp/ts-ctr-XXXXXX)
cid=""
cleanup() {
	[ -z "$cid" ] || podman rm -f "$cid" >/dev/null 2>&1 || true
	# Storage of our own (never `podman system reset`: it also removes
	# the host's network configurations): remove what is in it, unmount
	# whatever is still mounted under it, then the directory.
	podman rm -a -f >/dev/null 2>&1 || true
	buildah rm --all >/dev/null 2>&1 || true
	podman rmi -a -f >/dev/null 2>&1 || true
	for m in $(awk -v t="$tmp" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
# Settings of these machines (../shared notes): runc (crun fails on hybrid
# cgroups), ulimits root can set, no CNI network, storage in $tmp.
cat >"$tmp/containers.conf" <<EOC
[containers]
netns="none"
default_ulimits=["nofile=4096:4096","nproc=4096:4096"]
[engine]
cgroup_manager="cgroupfs"
events_logger="file"
runtime="runc"
EOC
cat >"$tmp/storage.conf" <<EOC
[storage]
driver="overlay"
graphroot="$tmp/graph"
runroot="$tmp/run"
EOC
CONTAINERS_CONF=$tmp/containers.conf
CONTAINERS_STORAGE_CONF=$tmp/storage.conf
export CONTAINERS_CONF CONTAINERS_STORAGE_CONF
image=localhost/tunnelsync:test-$$

start=$(date +%s)
sh "$src/contrib/container/make-base.sh" || fail "no base image"
based=$(date +%s)
(cd "$src" && nice -n 19 buildah bud --isolation chroot --pull=never --layers=false \
	-f contrib/container/Containerfile -t "$image" . >"$tmp/bud.log" 2>&1) || {
	tail -30 "$tmp/bud.log"
	fail "buildah bud failed"
}
built=$(date +%s)
echo "container-image: base $((based - start)) s, build $((built - based)) s, $(podman image inspect --format '{{.Size}}' "$image") bytes"

# Image config.
cfg=$(podman image inspect --format '{{json .Config}}' "$image")
echo "$cfg" | grep -q '"Entrypoint":\["/usr/sbin/tunnelsync","run"\]' || fail "entrypoint is not tunnelsync run: $cfg"
echo "$cfg" | grep -q '"User":"0:0"' || fail "user is not 0:0: $cfg"
echo "$cfg" | grep -q '"/var/lib/tunnelsync":{}' || fail "no state volume: $cfg"
echo "$cfg" | grep -q '"9470/tcp"' || fail "metrics port not exposed: $cfg"

# File system: what is there, and what is not.
ctr=$(podman create "$image")
podman export "$ctr" | tar -t >"$tmp/files"
podman rm "$ctr" >/dev/null
for f in usr/sbin/tunnelsync usr/share/tunnelsync/models/tunnelsync.yang \
	etc/ssl/certs/ca-certificates.crt usr/share/doc/tunnelsync/examples/gateway.json; do
	grep -qx "$f" "$tmp/files" || fail "the image lacks /$f"
done
grep -q 'libyang.so' "$tmp/files" || fail "the image lacks libyang"
for f in bin/sh usr/bin/sh bin/bash usr/bin/bash usr/bin/dpkg usr/bin/apt usr/bin/ls bin/ls usr/bin/env; do
	grep -qx "$f" "$tmp/files" && fail "the image holds /$f: the runtime stage must hold only the agent"
done
n=$(wc -l <"$tmp/files")
[ "$n" -lt 200 ] || fail "the image holds $n files: more than the agent needs"

run() {
	podman run --rm --network none --read-only --cap-drop all --entrypoint /usr/sbin/tunnelsync "$image" "$@"
}
run version | grep -q '^tunnelsync [0-9]' || fail "tunnelsync version failed in the image"
run validate /usr/share/doc/tunnelsync/examples/gateway.json >"$tmp/validate" ||
	fail "validate of the example failed in the image: $(cat "$tmp/validate")"
grep -q ': valid$' "$tmp/validate" || fail "validate printed no verdict"

# The daemon as the pod runs it: the entrypoint, only CAP_NET_ADMIN, a
# read-only root, the config and the token from read-only mounts, the state
# on a volume. Nothing answers at the VICI socket or the API: it must stay
# alive (/healthz 200) and not ready (/readyz 503).
port=$((20000 + $$ % 20000))
mkdir -p "$tmp/config" "$tmp/secret" "$tmp/state"
chmod 0700 "$tmp/state"
sed -e "s|\"metrics-listen\": \"[^\"]*\"|\"metrics-listen\": \"127.0.0.1:$port\"|" \
	-e 's|"vici-socket": "[^"]*"|"vici-socket": "/run/charon/charon.vici"|' \
	"$src/models/examples/gateway.json" >"$tmp/config/gateway.json"
grep -q "127.0.0.1:$port" "$tmp/config/gateway.json" || fail "could not set metrics-listen"
# The example names no api-token-file: the token comes from the credential
# directory, as in the Kubernetes manifests.
printf 'tstoken-not-a-real-one\n' >"$tmp/secret/cloudflare-api-token"
chmod 0600 "$tmp/secret/cloudflare-api-token"
cid=$(podman run -d --network host --read-only --cap-drop all --cap-add NET_ADMIN \
	--security-opt no-new-privileges --tmpfs /run/charon \
	-e CREDENTIALS_DIRECTORY=/run/secrets/cloudflare \
	-v "$tmp/config:/etc/tunnelsync:ro" -v "$tmp/secret:/run/secrets/cloudflare:ro" \
	-v "$tmp/state:/var/lib/tunnelsync" "$image" -c /etc/tunnelsync)
i=0
code=000
while [ $i -lt 100 ]; do
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/healthz" || true)
	[ "$code" = 200 ] && break
	i=$((i + 1))
	sleep 0.1
done
[ "$code" = 200 ] || { podman logs "$cid" | tail -20; fail "/healthz answered $code"; }
code=$(curl -s -o "$tmp/ready" -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/readyz" || true)
[ "$code" = 503 ] || fail "/readyz answered $code without charon and API"
podman stop -t 20 "$cid" >/dev/null
rc=$(podman inspect --format '{{.State.ExitCode}}' "$cid")
[ "$rc" = 0 ] || { podman logs "$cid" | tail -20; fail "the daemon exited $rc on SIGTERM"; }
podman logs "$cid" >"$tmp/logs" 2>&1
grep -q tstoken-not-a-real-one "$tmp/logs" && fail "the token appears in the log"
cid_done=$cid
cid=""
podman rm "$cid_done" >/dev/null
echo "container-image: $image: $n files, no shell, version/validate/daemon OK"
