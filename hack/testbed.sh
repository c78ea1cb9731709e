#!/usr/bin/env bash
# testbed.sh installs everything the tests need, idempotently, into a cache folder
# keyed by version, so a second run costs a few stat calls:
#
#   - Debian packages the tests call (iproute2 for `ip netns`, iptables and nftables for
#     portmap, openssl, procps), installed only when a command is missing;
#   - the reference CNI plugins at CNI_PLUGINS_VERSION, static, as upstream ships them;
#   - kube-apiserver, etcd and helm, built from the Go module proxy through the
#     wrapper modules in hack/kube-apiserver, hack/etcd and hack/helm;
#   - staticcheck for `make lint` (only with the argument `lint`).
#
# The cache folder is $POLYNET_CACHE, else $XDG_CACHE_HOME/polynet, else
# ~/.cache/polynet. Every artefact is built into a temporary name and renamed into
# place, so an interrupted run never leaves a half-written binary that a later run
# would trust.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=versions.env
. "$root/hack/versions.env"
cache=${POLYNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/polynet}
mkdir -p "$cache"

log() { printf 'testbed: %s\n' "$*" >&2; }

# apt_need installs the Debian packages whose commands are missing. Arguments are
# command:package pairs.
apt_need() {
	local missing=() pair
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		log "missing commands need Debian packages ${missing[*]}; run as root to install them"
		return 1
	fi
	log "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# install_cni_plugins builds the reference plugins statically (CGO_ENABLED=0) into
# cni-plugins-<version>/, all in one `go install` so they compile in parallel.
install_cni_plugins() {
	local dir=$cache/cni-plugins-$CNI_PLUGINS_VERSION
	local plugins=(main/bridge main/macvlan main/ipvlan main/ptp main/vlan main/loopback
		ipam/host-local ipam/static meta/tuning meta/portmap meta/bandwidth)
	[ -f "$dir/.complete" ] && return 0
	log "building reference CNI plugins $CNI_PLUGINS_VERSION into $dir"
	local tmp=$dir.tmp.$$ pkgs=() p
	rm -rf "$tmp" && mkdir -p "$tmp"
	for p in "${plugins[@]}"; do
		pkgs+=("github.com/containernetworking/plugins/plugins/$p@$CNI_PLUGINS_VERSION")
	done
	(cd "$tmp" && CGO_ENABLED=0 GOBIN=$tmp GOFLAGS=-trimpath go install -ldflags=-s "${pkgs[@]}")
	touch "$tmp/.complete"
	rm -rf "$dir" && mv "$tmp" "$dir"
}

# build_wrapped builds one command from a wrapper module into <name>-<version>/<name>.
build_wrapped() {
	local name=$1 version=$2 module=$3 pkg=$4 ldflags=$5
	local dir=$cache/$name-$version
	[ -x "$dir/$name" ] && return 0
	log "building $name $version from the Go module proxy into $dir (cold: minutes)"
	mkdir -p "$dir"
	(cd "$root/hack/$module" && CGO_ENABLED=0 go build -trimpath -ldflags="$ldflags" \
		-o "$dir/$name.tmp.$$" "$pkg")
	mv "$dir/$name.tmp.$$" "$dir/$name"
}

install_kube_apiserver() {
	local v=$KUBERNETES_VERSION minor
	minor=${v#v1.}
	minor=${minor%%.*}
	local cb=k8s.io/component-base/version
	build_wrapped kube-apiserver "$v" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver \
		"-s -w -X $cb.gitVersion=$v -X $cb.gitMajor=1 -X $cb.gitMinor=$minor -X $cb.gitTreeState=clean"
}

install_etcd() {
	build_wrapped etcd "$ETCD_VERSION" etcd . "-s -w"
}

# install_helm builds helm for the chart tests. The -X flags give it the version
# string its release build has: without them `helm version` says v4.3 only.
install_helm() {
	local v=$HELM_VERSION hv=helm.sh/helm/v4/internal/version
	build_wrapped helm "$v" helm helm.sh/helm/v4/cmd/helm \
		"-s -w -X $hv.version=$v -X $hv.metadata= -X $hv.gitTreeState=clean"
}

install_staticcheck() {
	local dir=$cache/staticcheck-$STATICCHECK_VERSION
	[ -x "$dir/staticcheck" ] && return 0
	log "building staticcheck $STATICCHECK_VERSION into $dir"
	mkdir -p "$dir.tmp.$$"
	GOBIN=$dir.tmp.$$ go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
	rm -rf "$dir" && mv "$dir.tmp.$$" "$dir"
}

case "${1:-test}" in
test)
	apt_need ip:iproute2 iptables:iptables nft:nftables tc:iproute2 pgrep:procps /usr/bin/time:time skopeo:skopeo
	install_cni_plugins
	install_etcd
	install_kube_apiserver
	install_helm
	;;
lint)
	install_staticcheck
	;;
*)
	log "usage: $0 [test|lint]"
	exit 2
	;;
esac
log "ready in $cache"
