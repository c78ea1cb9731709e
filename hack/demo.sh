#!/usr/bin/env bash
# demo.sh is `make demo`: on this one machine, as root, it starts a real
# Kubernetes node (kubelet, containerd, runc and a control plane, in network
# and mount namespaces of their own), installs us with the very manifest users
# apply, attaches two extra networks to two pods, shows what a user wants to
# see, deletes the pods, shows that nothing is left, and tears the node down
# (unless KEEP=1).
set -eEuo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export PATH=$PATH:/usr/local/go/bin
. hack/versions.env
cache=${POLYNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/polynet}
dir=${POLYNET_DEMO_DIR:-$root/bin/demo}
keep=${KEEP:-0}
polynode=$root/bin/polynode
kubectl=$cache/kubectl-$KUBERNETES_VERSION/kubectl
step_no=0
step_name=
step_start=0
demo_start=$(date +%s)

bold() { printf '\033[1m%s\033[0m\n' "$*"; }

step() {
	end_step
	step_no=$((step_no + 1))
	step_name=$1
	step_start=$(date +%s)
	echo
	bold "== [$step_no/6] $step_name"
}

end_step() {
	if [ "$step_no" -gt 0 ]; then
		printf '   (%s s)\n' $(($(date +%s) - step_start))
	fi
}

# show prints a command as a user would type it, then runs it.
show() {
	local shown=$*
	[ "$1" = k ] && shown="kubectl ${*:2}"
	printf '\n$ %s\n' "$shown"
	"$@"
}

k() { "$kubectl" --kubeconfig "$dir/kubeconfig" "$@"; }
in_node() { "$polynode" exec -dir "$dir" -- "$@"; }

teardown() {
	if [ -x "$polynode" ]; then
		"$polynode" down -dir "$dir" || true
	fi
}

finished=0
on_exit() {
	local code=$?
	[ "$finished" = 1 ] && return
	[ "$code" = 0 ] && code=1
	echo
	bold "demo failed at step $step_no ($step_name), exit $code"
	for log in "$dir/supervisor.log" "$dir"/node/*.log "$dir"/node/control-plane/kube-apiserver.log; do
		[ -s "$log" ] || continue
		echo "--- last lines of $log"
		tail -n 15 "$log"
	done
	if [ -f "$dir/kubeconfig" ] && [ -x "$kubectl" ]; then
		echo "--- pods"
		k get pods -A -o wide 2>&1 || true
		echo "--- the daemon's log"
		k -n kube-system logs ds/kube-multus-ds --tail 20 2>&1 || true
	fi
	teardown
	exit "$code"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" -ne 0 ]; then
	echo "make demo needs root: it runs a kubelet, containerd and network namespaces" >&2
	exit 1
fi

step "build what is missing"
if [ ! -x "$kubectl" ] || [ ! -x "$cache/kubelet-$KUBERNETES_VERSION/kubelet" ]; then
	echo "   first run: building Kubernetes, containerd and etcd from the Go module proxy;"
	echo "   20 to 40 minutes on 2 cores (later runs reuse $cache)"
fi
hack/testbed.sh node
make --no-print-directory build image >/dev/null
go build -o "$polynode" ./test/polynode
version=$(git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
image=$(ls -t bin/image/polynet-*.tar | head -n 1)
echo "   image archive $image"

step "start the node, import our image, install us with deployments/multus-daemonset-thick.yml"
"$polynode" down -dir "$dir" >/dev/null 2>&1 || true
"$polynode" up -dir "$dir" -image "$image" -image "$cache/node-images-$NODE_IMAGES_VERSION/toolbox.tar" >/dev/null
# The node's own pod network (what flannel or calico would install): a bridge
# with host-local addresses, the primary network we attach first.
in_node sh -c 'cat > /etc/cni/net.d/10-podnet.conflist' <<'EOF'
{"cniVersion":"0.3.1","name":"podnet","plugins":[{"type":"bridge","bridge":"cni0","isGateway":true,"ipMasq":false,
 "ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.0.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}
EOF
show k apply -f deployments/multus-daemonset-thick.yml
k -n kube-system rollout status ds/kube-multus-ds --timeout=3m
k wait node --all --for=condition=Ready --timeout=3m
show k get nodes -o wide

step "two networks: a bridge, and macvlan on a bridge master; two pods asking for both"
in_node ip link add br-red type bridge
in_node ip link set br-red up
k apply -f - <<'EOF'
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: blue
spec:
  config: '{"cniVersion":"1.0.0","name":"blue","type":"bridge","bridge":"br-blue","ipam":{"type":"host-local","subnet":"192.168.50.0/24"}}'
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: red
spec:
  config: '{"cniVersion":"1.0.0","name":"red","plugins":[{"type":"macvlan","master":"br-red","mode":"bridge","capabilities":{"ips":true},"ipam":{"type":"static"}}]}'
EOF
for pod in demo-a:192.168.60.10 demo-b:192.168.60.11; do
	name=${pod%%:*} ip=${pod#*:}
	k apply -f - <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $name
  annotations:
    k8s.v1.cni.cncf.io/networks: '[{"name":"blue"},{"name":"red","interface":"red0","ips":["$ip/24"]}]'
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: toolbox
      image: $TOOLBOX_IMAGE
      imagePullPolicy: Never
      command: ["sleep", "3600"]
EOF
done
k wait pod demo-a demo-b --for=condition=Ready --timeout=3m

step "what a user sees"
show k get pods -o wide
show k exec demo-a -- ip addr
show k exec demo-a -- ip route
printf '\n$ kubectl get pod demo-a -o jsonpath={.metadata.annotations.k8s\\.v1\\.cni\\.cncf\\.io/network-status}\n'
k get pod demo-a -o 'jsonpath={.metadata.annotations.k8s\.v1\.cni\.cncf\.io/network-status}' | "$polynode" json
show k exec demo-a -- ping -c 3 -W 2 192.168.60.11

step "delete the pods: nothing is left"
show k delete pod demo-a demo-b --wait=true --timeout=2m
k delete net-attach-def blue red >/dev/null
printf '\n$ ls /var/lib/cni/networks/*/   # host-local allocations on the node\n'
in_node sh -c 'ls -A /var/lib/cni/networks/*/ 2>/dev/null | grep -v -e "^last_reserved_ip" -e "^lock$" -e "^$" -e ":$" || echo "(none)"'
printf '\n$ ls /var/lib/cni/multus/attachments/   # our attachment records\n'
in_node sh -c 'ls /var/lib/cni/multus/attachments/ 2>/dev/null | grep . || echo "(none)"'
printf '\n$ ip -brief link show type veth   # pod links left on the node\n'
in_node sh -c 'ip -brief link show type veth | grep . || echo "(none)"'

step "tear down"
if [ "$keep" = 1 ]; then
	echo "   the node keeps running. Explore it with:"
	echo "     export KUBECONFIG=$dir/kubeconfig; $kubectl get pods -A"
	echo "     $polynode exec -dir $dir -- ip link     # a command on the node"
	echo "   and stop it with:"
	echo "     $polynode down -dir $dir"
else
	"$polynode" down -dir "$dir"
	echo "   the node is stopped; nothing of it runs, its mounts and sysctls are undone"
fi
end_step
finished=1
echo
bold "demo done in $(($(date +%s) - demo_start)) s"
