#!/bin/sh
# Renders every kustomization under contrib/kubernetes with `kubectl
# kustomize` (offline) and validates every document against the Kubernetes
# schemas (npm kubernetes-models, installed by contrib/install-deps.sh),
# rejecting unknown fields, then checks what each promises
# (tests/packaging/k8s-validate.js: base, the one-gateway overlay, the
# fleet overlay). Usage: kubernetes-manifests.sh SOURCE_DIR
set -eu
src=$(cd "$1" && pwd)
modules=${TUNNELSYNC_NODE_MODULES:-/var/cache/tunnelsync/node/node_modules}
fail() {
	echo "kubernetes-manifests: $*" >&2
	exit 1
}
command -v kubectl >/dev/null || fail "kubectl missing (contrib/install-deps.sh installs kubernetes-client)"
command -v node >/dev/null || fail "node missing (contrib/install-deps.sh installs nodejs)"
[ -f "$modules/kubernetes-models/package.json" ] || fail "no kubernetes-models in $modules (contrib/install-deps.sh)"
tmp=$(mktemp -d /tmp/ts-k8s-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0
for k in $(cd "$src/contrib/kubernetes" && find . -name kustomization.yaml | sort); do
	dir=$(dirname "$k")
	dir=${dir#./}
	case $dir in
	base) checks=base ;;
	overlays/fleet) checks=fleet ;;
	overlays/*) checks=gateway ;;
	*) fail "$dir: a kustomization the test does not know what to expect of" ;;
	esac
	kubectl kustomize "$src/contrib/kubernetes/$dir" >"$tmp/out.yaml" 2>"$tmp/err" || {
		cat "$tmp/err"
		fail "$dir: kubectl kustomize failed"
	}
	# Deprecation warnings are errors too: the next kustomize drops the field.
	[ ! -s "$tmp/err" ] || { cat "$tmp/err"; fail "$dir: kustomize warns"; }
	node "$src/tests/packaging/k8s-validate.js" "$modules" "$checks" \
		"$src/contrib/strongswan/tunnelsync.conf" <"$tmp/out.yaml" 2>"$tmp/err" >"$tmp/msg" || {
		cat "$tmp/err"
		fail "$dir: invalid"
	}
	echo "kubernetes-manifests: $dir ($checks): $(cat "$tmp/msg")"
	n=$((n + 1))
done
[ "$n" -ge 3 ] || fail "only $n kustomizations found"
# The validator itself must catch a misspelled field and a wrong type.
kubectl kustomize "$src/contrib/kubernetes/overlays/fleet" | sed 's/readinessProbe:/readinesProbe:/' |
	node "$src/tests/packaging/k8s-validate.js" "$modules" 2>/dev/null >&2 &&
	fail "the validator let an unknown field (readinesProbe) pass"
kubectl kustomize "$src/contrib/kubernetes/overlays/fleet" | sed 's/hostNetwork: true/hostNetwork: "yes"/' |
	node "$src/tests/packaging/k8s-validate.js" "$modules" 2>/dev/null >&2 &&
	fail "the validator let a wrong type (hostNetwork: \"yes\") pass"
echo "kubernetes-manifests: $n kustomizations valid"
