// Package nodeidentity names the per-node identity of the thick daemon
// (daemon-config.json's perNodeCertificate): the user and group a node's
// daemon authenticates as with its client certificate, and the signer that
// issues it. They are upstream Multus's, so that RBAC and approvers written for
// upstream keep working. The daemon's certificate requests and the approver's
// checks both read them from here, so the two cannot drift apart.
package nodeidentity

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

const (
	// Group is the organisation (O) of every per-node certificate, and so the
	// group RBAC grants the daemon's rules to.
	Group = "system:multus"
	// UserPrefix starts the common name (CN) of a per-node certificate, which
	// is the user name the API server sees: UserPrefix + node name.
	UserPrefix = Group + ":"
	// SignerName is the Kubernetes signer of API client certificates, which
	// kube-controller-manager signs with the cluster's client CA.
	SignerName = "kubernetes.io/kube-apiserver-client"
	// KubeletUserPrefix starts the user name of a node's kubelet, which may
	// request a node's certificate (upstream's DaemonSet bootstraps with the
	// kubelet's kubeconfig).
	KubeletUserPrefix = "system:node:"
	// KubeletGroup is the group every kubelet's user is in.
	KubeletGroup = "system:nodes"
	// NodeNameExtra is the key of the node name in the user information of a
	// ServiceAccount token bound to a pod: the API server adds the node the
	// pod runs on, which is how a ServiceAccount's request names its node.
	NodeNameExtra = "authentication.kubernetes.io/node-name"
	// NodeUIDExtra is the key of that node's UID beside it.
	NodeUIDExtra = "authentication.kubernetes.io/node-uid"
)

// UserName is the user (and certificate CN) of node's daemon.
func UserName(node string) string { return UserPrefix + node }

// NodeOf returns the node a per-node user name names, and whether the name is
// one: the prefix followed by a valid Node name.
func NodeOf(user string) (string, bool) {
	node, ok := strings.CutPrefix(user, UserPrefix)
	if !ok || !ValidNodeName(node) {
		return "", false
	}
	return node, true
}

// ValidNodeName reports whether name can be a Node's name (a DNS-1123
// subdomain), so that no CN with a colon, a slash or an empty node passes.
func ValidNodeName(name string) bool {
	return len(validation.IsDNS1123Subdomain(name)) == 0
}
