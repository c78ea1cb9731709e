//go:build tools

// Package tools pins the helm command as a dependency of this wrapper module, so that
// `go mod tidy` resolves everything it needs; hack/testbed.sh builds the command.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
