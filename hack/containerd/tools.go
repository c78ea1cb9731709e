//go:build tools

// Package tools pins containerd's commands as dependencies of this wrapper module, so
// that `go mod tidy` resolves everything they need; hack/testbed.sh builds them.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
