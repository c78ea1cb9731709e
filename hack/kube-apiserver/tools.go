//go:build tools

// Package tools pins the Kubernetes commands the test bed runs as dependencies of this
// wrapper module, so that `go mod tidy` resolves everything they need and they share
// one set of compiled packages; hack/testbed.sh builds each command.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
