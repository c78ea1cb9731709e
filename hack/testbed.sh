#!/usr/bin/env bash
# testbed.sh installs everything the tests need, idempotently, into a cache folder
# keyed by version, so a second run costs a few stat calls:
#
#   - Debian packages the tests call (iproute2 for `ip netns`, iptables and nftables for
#     portmap, openssl, procps), installed only when a command is missing;
#   - the reference CNI plugins at CNI_PLUGINS_VERSION, static, as upstream ships them;
#   - kube-apiserver, etcd and helm, built from the Go module proxy through the
#     wrapper modules in hack/kube-apiserver, hack/etcd and hack/helm;
#   - staticcheck for `make lint` (only with the argument `lint`);
#   - what a real one-node cluster needs (also alone, with the argument `node`, for
#     `make demo`): kube-controller-manager,
#     kube-scheduler, kubelet and kubectl (hack/kube-apiserver, the same wrapper module
#     as kube-apiserver), containerd, its runc shim and ctr (hack/containerd), Debian's
#     runc, and the pause and toolbox image archives (tools/nodeimages).
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

# build_wrapped builds one command from a wrapper module into <dir>/<name>, where
# <dir> is <name>-<version>, or the optional seventh argument (a folder under the cache
# that several commands share). The optional sixth argument is a comma-separated list
# of build tags.
build_wrapped() {
	local name=$1 version=$2 module=$3 pkg=$4 ldflags=$5 tags=${6:-}
	local dir=$cache/${7:-$name-$version}
	[ -x "$dir/$name" ] && return 0
	log "building $name $version from the Go module proxy into $dir (cold: minutes)"
	mkdir -p "$dir"
	local start=$SECONDS
	(cd "$root/hack/$module" && CGO_ENABLED=0 go build -trimpath -tags="$tags" -ldflags="$ldflags" \
		-o "$dir/$name.tmp.$$" "$pkg")
	mv "$dir/$name.tmp.$$" "$dir/$name"
	log "built $name in $((SECONDS - start)) s"
}

install_kube_apiserver() {
	local v=$KUBERNETES_VERSION minor
	minor=${v#v1.}
	minor=${minor%%.*}
	local cb=k8s.io/component-base/version
	build_wrapped kube-apiserver "$v" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver \
		"-s -w -X $cb.gitVersion=$v -X $cb.gitMajor=1 -X $cb.gitMinor=$minor -X $cb.gitTreeState=clean"
}

# kube_ldflags are the version flags of a Kubernetes release build (component-base and
# client-go), so every binary reports the pinned version and `kubectl version` parses.
kube_ldflags() {
	local v=$KUBERNETES_VERSION minor flags="-s -w" pkg
	minor=${v#v1.}
	minor=${minor%%.*}
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
	done
	printf '%s' "$flags"
}

# install_kube_node builds the Kubernetes binaries of a node and its control plane,
# besides kube-apiserver, from the same wrapper module, one after the other (each
# build already compiles in parallel, and they share most packages).
install_kube_node() {
	local name flags
	flags=$(kube_ldflags)
	for name in kube-controller-manager kube-scheduler kubelet kubectl; do
		build_wrapped "$name" "$KUBERNETES_VERSION" kube-apiserver "k8s.io/kubernetes/cmd/$name" "$flags"
	done
}

# install_containerd builds containerd, its runc shim and ctr into
# containerd-<version>/, statically, with the version flags and build tags of
# containerd's own Makefile (the shim without gRPC, as upstream ships it). CGO_ENABLED=0
# leaves out the btrfs snapshotter by itself; no_devmapper and no_zfs drop two more
# snapshotters that the test bed never uses.
install_containerd() {
	local v=$CONTAINERD_VERSION pkg=github.com/containerd/containerd/v2
	local dir=containerd-$v tags=urfave_cli_no_docs,no_btrfs,no_devmapper,no_zfs
	local flags="-s -w -X $pkg/version.Version=$v -X $pkg/version.Package=$pkg"
	build_wrapped containerd "$v" containerd "$pkg/cmd/containerd" "$flags" "$tags" "$dir"
	build_wrapped ctr "$v" containerd "$pkg/cmd/ctr" "$flags" "$tags" "$dir"
	build_wrapped containerd-shim-runc-v2 "$v" containerd "$pkg/cmd/containerd-shim-runc-v2" \
		"$flags" "$tags,no_grpc" "$dir"
}

# deb_need installs Debian packages, by package name, that are not installed: for
# packages whose command another package also provides (busybox-static, not the
# dynamically linked busybox).
deb_need() {
	local missing=() p
	for p in "$@"; do
		[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		log "missing Debian packages ${missing[*]}; run as root to install them"
		return 1
	fi
	log "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# install_node_images writes the pause and toolbox image archives (tools/nodeimages)
# into node-images-<NODE_IMAGES_VERSION>/. The folder's .inputs file holds a hash of
# everything the archives are made from (tools/nodeimages, go.mod, the Go release, the
# busybox-static package, the references); when it differs, they are built again, into
# a temporary folder renamed into place.
install_node_images() {
	local dir=$cache/node-images-$NODE_IMAGES_VERSION inputs
	inputs=$(
		cd "$root"
		{
			go version
			dpkg-query -W -f='${Package} ${Version}\n' busybox-static
			printf '%s\n' "$PAUSE_IMAGE" "$TOOLBOX_IMAGE"
			find tools/nodeimages tools/scratchimage -type f -name '*.go' ! -name '*_test.go' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
			sha256sum go.mod
		} | sha256sum | cut -d' ' -f1
	)
	[ -f "$dir/.inputs" ] && [ "$(cat "$dir/.inputs")" = "$inputs" ] && return 0
	log "building the node images $PAUSE_IMAGE and $TOOLBOX_IMAGE into $dir"
	local tmp=$dir.tmp.$$
	rm -rf "$tmp" && mkdir -p "$tmp"
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$tmp/pause" ./tools/nodeimages/pause &&
		go run ./tools/nodeimages -out "$tmp" -pause-bin "$tmp/pause" -pause-ref "$PAUSE_IMAGE" \
			-busybox /bin/busybox -toolbox-ref "$TOOLBOX_IMAGE")
	rm "$tmp/pause"
	printf '%s\n' "$inputs" >"$tmp/.inputs"
	rm -rf "$dir" && mv "$tmp" "$dir"
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

# install_node installs what a real node needs (test/nodee2e, make demo).
install_node() {
	apt_need runc:runc mountpoint:util-linux nsenter:util-linux
	deb_need busybox-static
	install_kube_apiserver
	install_kube_node
	install_containerd
	install_node_images
}

case "${1:-test}" in
test)
	apt_need ip:iproute2 iptables:iptables nft:nftables tc:iproute2 pgrep:procps /usr/bin/time:time skopeo:skopeo
	install_cni_plugins
	install_etcd
	install_kube_apiserver
	install_helm
	install_node
	;;
lint)
	install_staticcheck
	;;
node)
	apt_need ip:iproute2 iptables:iptables
	install_cni_plugins
	install_etcd
	install_node
	;;
*)
	log "usage: $0 [test|lint|node]"
	exit 2
	;;
esac
log "ready in $cache"
