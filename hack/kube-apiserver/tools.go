//go:build tools

// Package tools pins kube-apiserver as a dependency of this wrapper module, so that
// `go mod tidy` resolves everything it needs; hack/testbed.sh builds the command.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
