// Package arch checks the direction of imports that the architecture depends on:
// the engine reaches the outside only through adapters, and the binaries the
// runtime starts for every pod link nothing they do not use.
package arch

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/polynet-cni/polynet"

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", module+"/"+pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestImportRules(t *testing.T) {
	tests := []struct {
		pkg       string
		forbidden []string
		why       string
	}{
		{
			pkg:       "internal/engine",
			forbidden: []string{"k8s.io/", "net/http", "github.com/vishvananda/netlink", "github.com/containernetworking/cni/libcni", "github.com/containernetworking/cni/pkg/invoke"},
			why:       "the engine declares interfaces; adapters implement them",
		},
		{
			pkg:       "cmd/multus",
			forbidden: []string{"k8s.io/client-go", "k8s.io/api/", "k8s.io/apimachinery"},
			why:       "every pod's ADD and DEL pays for what the thin plugin links",
		},
		{
			pkg:       "cmd/multus-shim",
			forbidden: []string{"k8s.io/", "github.com/prometheus/", "github.com/vishvananda/netlink", "github.com/containernetworking/cni/libcni"},
			why:       "the shim only forwards to the daemon, at every pod's ADD and DEL",
		},
		{
			pkg:       "internal/selection",
			forbidden: []string{"k8s.io/", "github.com/containernetworking/"},
			why:       "the annotation parser is pure",
		},
		{
			pkg:       "internal/config",
			forbidden: []string{"k8s.io/", "net/http", "os/exec"},
			why:       "configuration parsing does no I/O",
		},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			for _, d := range deps(t, tt.pkg) {
				for _, f := range tt.forbidden {
					if strings.HasPrefix(d, f) {
						t.Errorf("%s depends on %s: %s", tt.pkg, d, tt.why)
					}
				}
			}
		})
	}
}
